/* ms_flaky — the flake ledger, `moonspan evals flaky SUITE`: each case of
 * a suite over its last N finished eval runs (status passed or failed):
 * attempts (every repeat of every run), passes, the failure rate with
 * its Wilson interval (ms_wilson, 95%), and whether it is flaky.
 *
 *   flaky        it both passed and failed within the window
 *   newly flaky  flaky, but not over the window's runs before the latest
 *                one: its flakiness shows up first in the latest run
 *
 * Cases are listed most flaky first: by min(passes, failures) / attempts
 * (0.5 is a coin toss, 0 is stable), then more failures, then case id.
 *
 * Read-only: opens nothing, writes nothing; a store without eval tables
 * (schema 1) has no runs. All reads in one snapshot; output built whole
 * and written once, nothing on error. */
#ifndef MS_FLAKY_H
#define MS_FLAKY_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

#define MS_FLAKY_RUNS 10 /* the window unless told */

typedef struct ms_flaky_opts {
    const char *suite; /* the suite's name, as `suite "NAME"` gave it */
    int runs;          /* the window: the last `runs` finished runs, >= 1 */
    int json;          /* one JSON object instead of text */
} ms_flaky_opts;

/* Writes the ledger to `out`. JSON: {"suite", "runs": [eval run ids,
 * oldest first], "level": 0.95, "cases": [{"case_id", "attempts",
 * "passes", "failures", "failure_rate", "failure_rate_lo",
 * "failure_rate_hi", "flaky", "newly_flaky"}], "flaky", "newly_flaky",
 * "always_failing", "always_passing"}.
 * Returns 0; 1 when the suite has no finished run (err names the known
 * suites, or says the store has none); -1 with err on a store error. */
int ms_flaky_write(sqlite3 *db, const ms_flaky_opts *o, FILE *out, char *err, size_t errlen);

#endif
