/* ms_diff — `moonspan diff A B`: is B faster, cheaper, or more reliable
 * than A, with evidence that survives noise.
 *
 * Each side is a selection of traces (ms_select.h): a run, an eval run's
 * case traces, a time window, or a trace-name glob, narrowed by the
 * options both sides share. The two sides are independent samples; every
 * difference is B - A with a 95% interval: a percentile bootstrap
 * (ms_stats.h, seeded, so the same store and seed give the same output)
 * for latency quantiles and per-request means, Newcombe's interval with
 * Fisher's exact p for rates. A verdict is given only when the interval
 * excludes 0; a row with fewer than MS_DIFF_MIN_N values on a side says
 * "too few" instead. Two processes differ by a few percent whatever they
 * run (caches, the machine's load), and a few hundred spans resolve
 * that: a latency, token or cost difference under min_change of A's
 * value is "negligible" even when its interval excludes 0.
 *
 * Read-only, one snapshot for both sides, works on every schema version
 * the readers accept. Output is built whole and written once: nothing
 * reaches `out` on error. */
#ifndef MS_DIFF_H
#define MS_DIFF_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ms_select.h"

#define MS_DIFF_MIN_N 5       /* values a side needs before a verdict */
#define MS_DIFF_TEXT_STEPS 20 /* steps the text lists unless told */
#define MS_DIFF_MIN_CHANGE 0.05 /* see ms_diff_opts.min_change */

/* What a side argument names. */
enum ms_diff_side_kind {
    MS_SIDE_RUN,    /* run:ID or ID: the traces of one process (runs.id) */
    MS_SIDE_EVAL,   /* eval:ID: the case traces of one eval run */
    MS_SIDE_LAST,   /* last or last~N: the newest run, or the Nth before it */
    MS_SIDE_WINDOW, /* SINCE..UNTIL: traces started in that window ("ago") */
    MS_SIDE_GLOB    /* anything else: traces whose name matches the glob */
};

/* A parsed side (`moonspan diff` parses the arguments: host/cmd_diff.c). */
typedef struct ms_diff_side {
    enum ms_diff_side_kind kind;
    int64_t id;                 /* run or eval run id; N of last~N */
    int64_t since_ns, until_ns; /* epoch ns of a window; 0 = open end */
    const char *arg;            /* as given (the glob itself for MS_SIDE_GLOB) */
} ms_diff_side;

enum {
    MS_DIFF_FAIL_SLOWER = 1,
    MS_DIFF_FAIL_COSTLIER = 2,
    MS_DIFF_FAIL_ERRORS = 4
};

/* What the request rows after the first (all requests) group by. */
enum ms_diff_rows_by {
    MS_DIFF_ROWS_NAME,          /* the trace's name, when a side has several */
    MS_DIFF_ROWS_USER,          /* the trace's user (`diff --by user`); one row for those without */
    MS_DIFF_ROWS_SESSION        /* the trace's session (`diff --by session`) */
};

typedef struct ms_diff_opts {
    ms_diff_side side[2];       /* A, B */
    ms_select narrow;           /* what both sides are narrowed by */
    int steps_by_name;          /* steps grouped by span name, not path */
    enum ms_diff_rows_by rows_by;
    long max_steps;             /* steps listed: 0 the default (text 20, JSON all), < 0 all */
    int json;
    uint64_t seed;              /* MS_STATS_SEED unless told */
    int resamples;              /* MS_STATS_RESAMPLES unless told */
    int fail_if;                /* MS_DIFF_FAIL_* bits */
    double min_change;          /* a latency, token or cost difference smaller than
                                   this fraction of A's value is "negligible", not a
                                   verdict (MS_DIFF_MIN_CHANGE unless told) */
} ms_diff_opts;

/* The result of ms_diff_write besides 0: the store could not be read
 * (exit 1), or a side was wrong (unknown id, nothing in it, a filter
 * that clashes with it: exit 2). */
#define MS_DIFF_ERROR (-1)
#define MS_DIFF_BAD_SIDE (-2)

/* Writes the diff of the two sides to `out`. *failed is set to 1 when a
 * row with evidence matched opts->fail_if (the output says which).
 * Returns 0, MS_DIFF_ERROR or MS_DIFF_BAD_SIDE, with err. */
int ms_diff_write(sqlite3 *db, const ms_diff_opts *opts, FILE *out, int *failed,
                  char *err, size_t errlen);

#endif
