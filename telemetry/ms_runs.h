/* ms_runs — `moonspan runs`: the processes that wrote to a store (the runs
 * table: `moonspan run`, `eval` and `test`), newest first, with what each
 * recorded and, for an eval process, its eval runs nested under it.
 *
 * Read-only; one snapshot; output built whole and written once, nothing
 * on error. A run's command is not stored: it reads "eval" when the run
 * has eval runs, "test" when its script is `moonspan test`'s label
 * (moonspan-test), else "run". */
#ifndef MS_RUNS_H
#define MS_RUNS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ms_runs_opts {
    long limit;         /* the newest this many runs; <= 0: 20 */
    int64_t since_ns;   /* only runs started at or after this (epoch ns); 0: all */
    int json;           /* a JSON array instead of text */
} ms_runs_opts;

#define MS_RUNS_DEFAULT_LIMIT 20

/* Per run: id, command, script, start, duration (end_ns - start_ns; none
 * when the run is still going or died before writing its summary), its
 * traces with how many ended in error, were interrupted (SIGINT/SIGTERM)
 * or incomplete, and each eval run it ran (id, suite, cases, passed, pass
 * rate, status). The trace counts come from one grouped query over the
 * traces started since the oldest run listed (the start_ns index), so
 * listing recent runs reads recent traces only. Returns 0 or -1 with err. */
int ms_runs_write(sqlite3 *db, const ms_runs_opts *o, FILE *out, char *err, size_t errlen);

#endif
