/* ms_digest — a compact list of the ended spans of one trace that cutting
 * does not drop, for readers that need the whole trace while it is still
 * open (an eval case's scorers: spans(ctx)).
 *
 * A trace keeps one only when asked (ms_trace_keep_digest): ms_trace_cut
 * then summarizes every ended span it moves into a part before it goes,
 * so the digest plus the ended spans still in the buffer are every ended
 * span of the trace. A summary is small (no events, no traceback, the
 * attributes as one JSON text) and a digest holds at most MS_DIGEST_MAX
 * of them: past that, spans are counted in `dropped` instead of kept, so
 * a reader can say the list is incomplete rather than present it whole.
 *
 * A fold is one summary with its count, total, extremes and the p50/p95
 * of its histogram (estimates, ms_hist). A trace whose fold was cut in
 * the middle of its repetitions has two summaries of that fold (same
 * path): readers merge them.
 *
 * Paths are the span names from the trace's root down to the span, the
 * root's own name left out ("rerank/score_doc"), as `report --by path`
 * names steps (ms_steps.h). */
#ifndef MS_DIGEST_H
#define MS_DIGEST_H

#include <stdint.h>

#include "ms_buf.h"
#include "ms_trace.h"

#define MS_DIGEST_MAX 100000

typedef struct ms_digest_span {
    uint32_t gidx, parent;     /* as in the trace (parent MS_NONE for the root) */
    ms_str name, path;         /* into the digest's text */
    ms_str model, provider;    /* llm spans; absent otherwise */
    ms_str error_type, error_message; /* absent when the span did not fail */
    ms_str attrs_json;         /* a JSON object; absent when the span has no attributes */
    int64_t start_ns;          /* from the trace's start */
    int64_t duration_ns;       /* a fold: the time its repetitions took, summed */
    int64_t backoff_ns;
    int64_t input_tokens, output_tokens; /* -1 when not an llm span; input excludes the cache */
    int64_t cache_read_tokens, cache_write_tokens;
    double cost_usd;           /* NaN when unknown or not an llm span */
    uint64_t count, errors;    /* a fold's repetitions and their own errors; 1/0 otherwise */
    int64_t min_ns, max_ns, p50_ns, p95_ns; /* a fold's; a plain span's duration */
    uint32_t retries;
    uint8_t kind, status, retry_state, error_own, estimated, replayed;
} ms_digest_span;

typedef struct ms_digest {
    ms_digest_span *spans;
    uint32_t n, cap;
    ms_buf text;               /* the strings, each NUL-terminated */
    uint64_t dropped;          /* ended spans past MS_DIGEST_MAX */
    int oom;                   /* an allocation failed: spans are missing */
} ms_digest;

/* Summarizes every ended span in t's buffer into `into`. Paths of spans
 * whose parent is no longer in the buffer are found in `earlier` (the
 * trace's own digest, which may be `into`), or NULL. */
void ms_digest_add_ended(ms_digest *into, const ms_trace *t, const ms_digest *earlier);

/* Makes trace `t` keep a digest from now on (t->digest); ms_trace_reset
 * turns it off again. Returns 0, or -1 when memory ran out. Call it before
 * the first cut: spans cut earlier are not in the digest. */
int ms_trace_keep_digest(ms_trace *t);

/* A string of the digest; "" when absent. */
static inline const char *ms_digest_str(const ms_digest *d, ms_str s)
{
    return s.off == MS_NONE ? "" : d->text.data + s.off;
}

/* Empties the digest, keeping its memory. */
void ms_digest_reset(ms_digest *d);
void ms_digest_free(ms_digest *d);

#endif
