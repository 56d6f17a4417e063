/* ms_otlp_in — OTLP trace requests (ExportTraceServiceRequest, protobuf)
 * made into moonspan traces.
 *
 * There is only one entry point: ms_otlp_traces_ingest. It reads the body
 * (never trusting it: every length, tag and wire type is checked, and a
 * body that is cut short or malformed is refused whole, never a crash),
 * checks each span (16-byte non-zero trace id, 8-byte non-zero span id,
 * a name, start and end with end >= start), and turns the valid ones into
 * trace buffers handed to the sink, the store's normal writer path.
 *
 * Grouping. Spans are grouped by trace id within one request. In a group,
 * a span whose parent is absent, or not in the group, begins a trace row
 * of its own (its parent id kept as the row's remote parent), with its
 * descendants under it; so a trace sent in several requests (or several
 * services' parts of one trace) is stored as several rows sharing the
 * trace id, each a complete subtree with ids, parents and times as sent.
 * A span that repeats a span id of its group, or sits in a parent cycle,
 * is rejected.
 *
 * Mapping. Every attribute is kept on its span (arrays as JSON text;
 * key-value lists and bytes are dropped). An LLM call is recognised and
 * made an llm span (tokens, model, provider, cost, TTFT) from the GenAI,
 * OpenInference and Langfuse attributes (ms_otlp_in_genai.c); an ERROR status makes the span
 * failed, typed from error.type or its exception event. The README's
 * "moonspan serve --otlp" section lists each attribute read. */
#ifndef MS_OTLP_IN_H
#define MS_OTLP_IN_H

#include <stddef.h>
#include <stdint.h>

#include "ms_prices.h"
#include "ms_trace.h"

/* Where traces go: acquire gives a reset trace buffer (NULL: out of
 * memory), submit takes an ended one over. ms_tracer_acquire and
 * ms_tracer_submit, or a test's own. */
typedef struct ms_otlp_sink {
    ms_trace *(*acquire)(void *ud);
    void (*submit)(void *ud, ms_trace *t);
    void *ud;
} ms_otlp_sink;

/* What a request did. */
typedef struct ms_otlp_result {
    uint64_t spans;            /* stored */
    uint64_t rejected;         /* refused one by one (partial success) */
    uint64_t traces;           /* trace rows made */
    char message[256];         /* why the body was refused, or why the first span was */
} ms_otlp_result;

/* Reads ExportTraceServiceRequest `body` (protobuf) and submits its
 * traces. Costs of llm spans without a cost attribute come from `prices`
 * (may be NULL: cost unknown). Returns 0 when the body was read (some
 * spans may be rejected: res->rejected and res->message), -1 when it is
 * malformed (nothing was submitted; res->message says where), or ENOMEM. */
int ms_otlp_traces_ingest(const uint8_t *body, size_t len, const ms_prices *prices,
                          const ms_otlp_sink *sink, ms_otlp_result *res);

#endif
