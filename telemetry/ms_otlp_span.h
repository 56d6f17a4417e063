/* ms_otlp_span — one span as OTLP sees it, between the mapping from the
 * store (ms_otlp_map.c) and the two encoders (ms_otlp_proto.c for
 * protobuf, ms_otlp_json.c for OTLP/JSON). Private to ms_otlp*.c.
 *
 * Strings are (pointer, length) and need not be NUL-terminated or valid
 * UTF-8 (they come from scripts): both encoders write invalid bytes as
 * U+FFFD, since OTLP strings are UTF-8. Everything points into memory
 * the mapper owns until its next span. */
#ifndef MS_OTLP_SPAN_H
#define MS_OTLP_SPAN_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_otlp.h"
#include "ms_otlp_schema.h"

enum ms_otlp_val { MS_OTLP_STR, MS_OTLP_INT, MS_OTLP_DOUBLE, MS_OTLP_BOOL, MS_OTLP_STR_ARRAY1, MS_OTLP_STR_LIST };

/* A key and an AnyValue. MS_OTLP_STR_ARRAY1 is an array of the one
 * string s (finish reasons are string[] in GenAI); MS_OTLP_STR_LIST an
 * array of the i strings in s, each ended by a NUL (a trace's tags). */
typedef struct ms_otlp_attr {
    const char *key;
    size_t key_len;
    enum ms_otlp_val type;
    const char *s;
    size_t s_len;
    int64_t i;          /* INT, and BOOL as 0/1 */
    double d;
} ms_otlp_attr;

typedef struct ms_otlp_event {
    const char *name;
    size_t name_len;
    int64_t time_ns;    /* Unix epoch */
    size_t attr0, nattrs; /* attrs[attr0 .. attr0 + nattrs) of the span */
} ms_otlp_event;

typedef struct ms_otlp_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    int has_parent;
    const char *name;
    size_t name_len;
    int kind;                 /* enum ms_otlp_kind */
    int64_t start_ns, end_ns; /* Unix epoch */
    int status;               /* enum ms_otlp_status */
    int ms_status;            /* enum ms_status, as `moonspan show` says it (log records) */
    const char *status_msg;
    size_t status_msg_len;
    const ms_otlp_attr *attrs; /* the span's: attrs[0 .. nattrs) */
    size_t nattrs;
    const ms_otlp_attr *event_attrs;
    const ms_otlp_event *events;
    size_t nevents;
} ms_otlp_span;

/* --- mapping (ms_otlp_map.c) ------------------------------------------------ */

struct ms_spans_walk;
struct ms_span_rec;

/* What a span needs of its trace's row. */
typedef struct ms_otlp_trace_row {
    uint8_t trace_id[16];
    int64_t start_ns, duration_ns;
    int status;                 /* enum ms_status of the trace (the root shows it) */
    uint64_t remote_parent;     /* the root's parent (TRACEPARENT); 0: none */
    uint64_t salt;
    const char *name;           /* sampled-out summaries only */
    int64_t span_count, error_count, input, output, cache_read, cache_write;
    int has_cost;
    double cost;
} ms_otlp_trace_row;

/* The mapper's memory, reused from span to span; zero-initialised. */
typedef struct ms_otlp_mapper {
    ms_otlp_attr *attrs, *ev_attrs;
    ms_otlp_event *evs;
    size_t nattrs, cap_attrs, nev_attrs, cap_ev_attrs, nevs, cap_evs;
    char completion_start[48];  /* ISO-8601 of the first token */
    char status_msg[32];
    ms_buf tags;                /* the root's tags, decoded for MS_OTLP_STR_LIST */
    int oom;
} ms_otlp_mapper;

/* Maps stored span sp (read by walk w) of trace t into *out, which
 * points into m and sp's blob until the next call. Returns 0, -1 when
 * the span's attributes or events are corrupt, -2 out of memory. */
int ms_otlp_map_span(ms_otlp_mapper *m, const ms_otlp_trace_row *t, const struct ms_spans_walk *w,
                     const struct ms_span_rec *sp, ms_otlp_span *out);

/* A sampled-out trace (its row kept, its spans not): one root span
 * carrying the row's totals, marked moonspan.sampled_out. 0 or -2. */
int ms_otlp_map_summary(ms_otlp_mapper *m, const ms_otlp_trace_row *t, ms_otlp_span *out);

void ms_otlp_mapper_free(ms_otlp_mapper *m);

/* --- encoders -------------------------------------------------------------
 * Spans are appended one at a time to a batch body (`spans`); the request
 * wraps a batch body with its resource and scope. */

/* KeyValue{key, AnyValue} as field `field` of the enclosing message. */
void ms_otlp_proto_attr(ms_buf *b, uint32_t field, const ms_otlp_attr *a);
/* `"attributes":[...]` of list[0..n). */
void ms_otlp_json_attrs(ms_buf *b, const ms_otlp_attr *list, size_t n);
/* p[0..n) (n <= 16) as a quoted lowercase hex string. */
void ms_otlp_json_hex(ms_buf *b, const uint8_t *p, size_t n);
/* An int64 as OTLP/JSON writes it: a quoted decimal. */
void ms_otlp_json_i64(ms_buf *b, int64_t v);

/* protobuf (ms_otlp_proto.c): appends span s as ScopeSpans.spans field. */
void ms_otlp_proto_span(ms_buf *spans, const ms_otlp_span *s);
/* The ExportTraceServiceRequest holding the spans of `spans`; also the
 * Export{Metrics,Logs}ServiceRequest holding the metrics or log records
 * of `spans`, since their envelopes have the same field numbers. */
void ms_otlp_proto_request(ms_buf *out, const ms_otlp_kv *resource, size_t nresource,
                           const ms_buf *spans);

/* OTLP/JSON (ms_otlp_json.c): appends span s as one element of the
 * "spans" array (a comma first when `spans` is not empty). */
void ms_otlp_json_span(ms_buf *spans, const ms_otlp_span *s);
void ms_otlp_json_request(ms_buf *out, const ms_otlp_kv *resource, size_t nresource,
                          const ms_buf *spans);
/* The same envelope for any signal: "resourceMetrics"/"scopeMetrics"/
 * "metrics", "resourceLogs"/"scopeLogs"/"logRecords" around `items` (the
 * elements of that array, comma-separated). */
void ms_otlp_json_envelope(ms_buf *out, enum ms_otlp_signal signal, const ms_otlp_kv *resource,
                           size_t nresource, const ms_buf *items);

/* Appends s[0..n) with invalid UTF-8 replaced by U+FFFD (protobuf strings
 * must be UTF-8). */
void ms_otlp_utf8(ms_buf *b, const char *s, size_t n);

#endif
