/* ms_report — the production checklist over a moonspan store, and the
 * trace browsing views (`moonspan report`, `traces`, `show`).
 *
 * Read-only: these functions only SELECT from the schema in ms_schema.sql.
 * Output goes to a FILE*; text is aligned tables for people, JSON is one
 * object for programs. Durations in the JSON are milliseconds. */
#ifndef MS_REPORT_H
#define MS_REPORT_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ms_report_opts {
    int64_t since_ns;      /* only traces started at or after this epoch ns; 0 = all */
    const char *name_glob; /* only traces whose name matches (SQLite GLOB); NULL = all */
    int by_month;          /* cost_trend grouped by month (YYYY-MM) instead of day */
    int json;              /* JSON instead of text */
} ms_report_opts;

/* Writes the report: the traces within the filters, then the latest
 * finished eval run of each suite started since opts->since_ns (name_glob
 * does not apply to evals). Cost is live spend; calls replayed from a
 * recording are reported apart. Works on a store of schema version 1 too
 * (no evals, no replays there). Returns 0, or -1 with a message in err. */
int ms_report_write(sqlite3 *db, const ms_report_opts *opts, FILE *out,
                    char *err, size_t errlen);

/* The newest `limit` traces (only those with status error when
 * errors_only), one line each: id, name, start, duration, tokens, cost,
 * status. Returns 0 or -1 with err. */
int ms_traces_write(sqlite3 *db, int limit, int errors_only, int json, FILE *out,
                    char *err, size_t errlen);

/* One trace as an indented tree: each span's name, duration, tokens, cost,
 * retries, status and error. `id` is a full trace id or a unique prefix of
 * at least 4 hex characters. Returns 0; 1 when no trace matches (err
 * says so); -1 on other errors. */
int ms_trace_show(sqlite3 *db, const char *id, int json, FILE *out,
                  char *err, size_t errlen);

#endif
