/* ms_series — the report over time: the traces a selection picks, cut
 * into hour or day buckets by their start, with per bucket what `moonspan
 * report` says of the whole window. The UI's checklist page draws it
 * (`/api/report`, host/ui_api_report.c).
 *
 * Every number is the report's own, computed the same way over the
 * bucket's traces: request latency p50/p95/p99 over completed requests
 * (interrupted and incomplete ones counted apart), by linear
 * interpolation between closest ranks (ms_percentile.h) rounded to whole
 * nanoseconds; steps grouped by path by ms_steps, so a bucket's step row
 * equals the step row of `report --since B --until B+1h` (as instants);
 * cost is live spend (replayed calls taken out). So a bucket's numbers
 * are exactly `report`'s for that bucket's window.
 *
 * Read-only; one read transaction; the traces are read in start order,
 * one bucket held at a time (memory of the largest bucket). Built whole
 * into `out`: on error nothing is appended that matters (the caller
 * drops the buffer). Works on every schema version the readers accept. */
#ifndef MS_SERIES_H
#define MS_SERIES_H

#include "ms_buf.h"
#include "ms_select.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum ms_series_bucket { MS_SERIES_HOUR, MS_SERIES_DAY };

#define MS_SERIES_MAX_STEPS 50 /* step rows per bucket, the heaviest; the rest counted */
#define MS_SERIES_MAX_BUCKETS 10000 /* more is a selection too wide for the bucket */
#define MS_SERIES_TOO_WIDE (-2)     /* ms_series_json: more buckets than that */

/* Appends to `out` one JSON object:
 *   {"bucket": "hour"|"day", "buckets": [{
 *      "start_ns", "start" (ISO UTC of the bucket's first instant),
 *      "requests", "completed", "error_requests", "error_rate",
 *      "p50_ms", "p95_ms", "p99_ms", "input_tokens", "output_tokens",
 *      "cost_usd" (null when no request of the bucket was priced),
 *      "priced_requests", "avg_usd_per_request", "unknown_cost_calls",
 *      "retried_calls", "retry_succeeded", "retry_success_rate",
 *      "names": [{"name", the same request members}],   (by name)
 *      "steps": [{"label", "name", "path", "count", "p50_ms", "p95_ms",
 *                 "p99_ms", "total_ms", "approximate"}], (heaviest first)
 *      "steps_omitted"}]}
 * Buckets with no trace are left out (a gap, not a zero). Percentiles
 * with no completed request are null. More than MS_SERIES_MAX_BUCKETS
 * buckets is the caller's to fix: MS_SERIES_TOO_WIDE, with err naming
 * the fix (a coarser bucket or a narrower window). Returns 0,
 * MS_SERIES_TOO_WIDE, or -1 with err (the store could not be read). */
int ms_series_json(sqlite3 *db, const ms_select *sel, enum ms_series_bucket by, ms_buf *out,
                   char *err, size_t errlen);

#endif
