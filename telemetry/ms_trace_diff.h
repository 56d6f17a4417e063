/* ms_trace_diff — which span changed between two traces of the same work
 * (an eval case and its baseline's run of that case): the answer to "which
 * span regressed".
 *
 * Spans are aligned by path: the names from below the root down, joined
 * by '/', a name repeated among siblings numbered by start order
 * ("search#2"). The root (the case itself) and the scorers' spans (a span
 * named "eval.score:..." and everything under it) are not compared: they
 * measure the case, they are not steps of it.
 *
 * A span of the newer trace (in start order) has changed when, against
 * the span of the same path in the older one:
 *   - it has none there ("span absent -> present"), or
 *   - its status, retries, model, input or output tokens, or cost differ,
 *     or one of its attributes (a tool call's arguments) differs, or
 *   - its latency moved beyond noise: the longer of the two is more than
 *     MS_TRACE_DIFF_RATIO times the shorter AND they differ by more than
 *     MS_TRACE_DIFF_MIN_NS; a span's latency counts only when none of the
 *     spans under it moved so (the parent of a slower step is slower too).
 * The first such span is the answer; when there is none, the first span
 * of the older trace missing from the newer one is ("span present ->
 * absent"). Checks run in the order listed, so a span whose tokens and
 * latency both changed reports its tokens.
 *
 * Read-only; both traces are read in one snapshot. Text is returned as
 * stored (callers escape it for a terminal). */
#ifndef MS_TRACE_DIFF_H
#define MS_TRACE_DIFF_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define MS_TRACE_DIFF_RATIO 2.0
#define MS_TRACE_DIFF_MIN_NS INT64_C(1000000) /* 1 ms */

typedef struct ms_trace_change {
    char path[256];    /* e.g. "eval.run/generate/chat mock" (cut short when longer) */
    char what[128];    /* "output_tokens", "latency", "status", "retries", "model",
                        * "input_tokens", "cost_usd", "attribute KEY", "span" */
    char before[128];  /* the value in the older trace, as text ("absent" for a span) */
    char after[128];
} ms_trace_change;

/* Compares trace `before_id` with trace `after_id` (full 32-hex ids; of
 * several traces sharing an id, the latest). Returns 0 with the first
 * change in *out; 1 when no compared span changed (err says so); -1 with
 * err when a trace is not in the store or was sampled out (its spans not
 * kept), its spans are corrupt, or on an SQL or memory error. */
int ms_trace_first_change(sqlite3 *db, const char *before_id, const char *after_id,
                          ms_trace_change *out, char *err, size_t errlen);

#endif
