/* ms_ids — W3C Trace Context ids: 16-byte trace ids, 8-byte span ids.
 *
 * Ids are random (xoshiro256** seeded from getrandom), never zero, and
 * printed as lowercase hex. The generator is per thread, so generating an
 * id takes no lock. */
#ifndef MS_IDS_H
#define MS_IDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ms_trace_id {
    uint8_t b[16];
} ms_trace_id;

/* A random, non-zero span id. */
uint64_t ms_span_id_new(void);
/* The span id of the span at `index` of a trace whose spans share the
 * random `salt`: non-zero, and distinct for distinct indexes (a
 * bijection), so a trace stores one salt instead of an id per span. */
uint64_t ms_span_id_derive(uint64_t salt, uint32_t index);
/* A random, non-zero trace id. */
void ms_trace_id_new(ms_trace_id *out);

/* Writes 32 lowercase hex characters and a NUL into out[33]. */
void ms_trace_id_hex(const ms_trace_id *id, char out[33]);
/* Writes 16 lowercase hex characters and a NUL into out[17]. */
void ms_span_id_hex(uint64_t id, char out[17]);

/* Parses a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"). Returns 0 on
 * success, -1 when the header is malformed or either id is all zeros. */
int ms_traceparent_parse(const char *s, ms_trace_id *trace, uint64_t *parent_span);
/* Formats a traceparent for (trace, span), sampled flag set, into out[56]. */
void ms_traceparent_format(const ms_trace_id *trace, uint64_t span, char out[56]);

#endif
