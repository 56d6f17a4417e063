/* ms_eval_view — eval runs as JSON for readers of the store (the UI's
 * /api/evals and /api/eval, host/ui_api_evals.c): the runs newest first,
 * and one run's cases with their scores, reasons and traces, and the
 * comparison with its baseline.
 *
 * The comparison is not computed here: `moonspan eval --baseline` keeps
 * the one it printed in the run's config (config.comparison, written by
 * scripts/eval_compare.lua's stored()), and this view passes it on as it
 * is, so the UI shows the very numbers the run printed and the statistics
 * live in one place. A run made without --baseline (or by a moonspan
 * before that) has none: null.
 *
 * Read-only, one read transaction; JSON text from the store (scores,
 * gates, the comparison) is re-serialised by SQLite's json() when valid
 * and null when not, so nothing but JSON reaches the reply. A store
 * without eval tables (schema v1) has no runs. Output is appended to
 * `out`; on error the caller drops it. */
#ifndef MS_EVAL_VIEW_H
#define MS_EVAL_VIEW_H

#include "ms_buf.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define MS_EVAL_VIEW_LIMIT 500 /* runs listed unless told */

/* Appends {"runs": [RUN...], "more": bool} with the newest `limit` eval
 * runs (<= 0: MS_EVAL_VIEW_LIMIT), by start then id, newest first. RUN is
 * {id, run_id, suite, suite_file, git_commit, start_ns, start, end_ns,
 * duration_ms, status, cases, passed, pass_rate, threshold, p50_ms,
 * p95_ms, cost_usd, replayed_cost_usd, replay_of, repeat_count,
 * baseline_id (the run the stored comparison is against; null when
 * none), pass_verdict (its pass-rate verdict; null when none)}; what the
 * store does not have is null (cases, passed and the rest while a run is
 * running). Returns 0 or -1 with err. */
int ms_eval_view_runs(sqlite3 *db, long limit, ms_buf *out, char *err, size_t errlen);

/* Appends {"run": RUN, "cases": [CASE...], "gates": [...]|null,
 * "comparison": {...}|null} for eval run `id`. CASE is {case_id, repeat,
 * pass, error, scores (the stored array of {name, score, reason}),
 * latency_ms, cost_usd, input_tokens, output_tokens, trace_id, replayed,
 * baseline_pass, baseline_trace_id (the same case and repeat in the
 * baseline run; null without a comparison or a partner)}, ordered by case
 * id then repeat. Returns 0; 1 when there is no such run (err says so);
 * -1 with err. */
int ms_eval_view_run(sqlite3 *db, int64_t id, ms_buf *out, char *err, size_t errlen);

#endif
