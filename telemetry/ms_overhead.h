/* ms_overhead — `moonspan report --overhead`: what each run recorded and
 * what recording cost it, from the runs table (schema v5).
 *
 * Per run: its level, folding and sampling, the spans it kept, the
 * repetitions it folded, the spans it skipped below the level, the traces
 * sampling reduced to their summary, what one recorded / folded / skipped
 * span cost the script (measured when the run started) and their sum, the
 * script's time in telemetry, against the run's length. */
#ifndef MS_OVERHEAD_H
#define MS_OVERHEAD_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ms_overhead_opts {
    int64_t since_ns;   /* only runs started at or after this (epoch ns); 0: all */
    long limit;         /* the newest this many runs */
    int json;
} ms_overhead_opts;

/* Writes the table (or a JSON array) to out. Returns 0 or -1 with err. */
int ms_overhead_write(sqlite3 *db, const ms_overhead_opts *o, FILE *out, char *err, size_t errlen);

#endif
