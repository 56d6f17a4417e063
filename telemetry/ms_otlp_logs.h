/* ms_otlp_logs — OTLP log records (opentelemetry-proto LogRecord), in
 * protobuf or OTLP/JSON: the records `--log json` writes (ms_log.h), as
 * an ExportLogsServiceRequest, so `moonspan export otlp --signals logs`
 * can send them again from the store.
 *
 * A stored span gives (ms_otlp_logs_of_span, from the span ms_otlp_map.c
 * made of it, so ids, times and attributes are the exported span's):
 *   - its end: eventName "moonspan.span.end", time = the span's end,
 *     severity INFO (WARN when its status is not ok), body "NAME ended
 *     STATUS after X ms", the span's OTLP attributes plus
 *     moonspan.span.{name,status,parent_id,duration_ms};
 *   - each error on it (the one raised there, ctx:add_error's): eventName
 *     "moonspan.error", time = when it was recorded, severity ERROR, body
 *     the message, exception.{type,message[,stacktrace]} and
 *     moonspan.span.name.
 * Every record carries the span's trace_id and span_id, flags 1
 * (sampled: it was kept) and observed time = the time of the export. */
#ifndef MS_OTLP_LOGS_H
#define MS_OTLP_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_otlp_span.h"

/* One LogRecord. Strings are (pointer, length), made valid UTF-8 when
 * encoded; attrs[0 .. nattrs). */
typedef struct ms_otlp_log {
    int64_t time_ns, observed_ns;   /* Unix epoch */
    int severity;                   /* MS_OTLP_SEVERITY_* */
    const char *event_name;
    const char *body;
    size_t body_len;
    const ms_otlp_attr *attrs;
    size_t nattrs;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint32_t flags;                 /* W3C trace flags: 1 sampled */
} ms_otlp_log;

/* "INFO", "WARN", "ERROR" for a severity number. */
const char *ms_otlp_severity_text(int severity);

/* Appends l as ScopeLogs.log_records (protobuf), or as one element of
 * "logRecords" (JSON: a comma first when `recs` is not empty). Wrap with
 * ms_otlp_proto_request / ms_otlp_json_envelope(MS_OTLP_LOGS). */
void ms_otlp_proto_log(ms_buf *recs, const ms_otlp_log *l);
void ms_otlp_json_log(ms_buf *recs, const ms_otlp_log *l);

/* Scratch memory of ms_otlp_logs_of_span, reused; zero-initialised. */
typedef struct ms_otlp_logs {
    ms_otlp_attr *attrs;
    size_t cap;
    ms_buf text;        /* the body and the parent id */
} ms_otlp_logs;

/* Appends the records of span s (its end, then its errors; see above) to
 * recs in the given encoding. Returns how many, or -1 when memory ran out. */
int ms_otlp_logs_of_span(ms_otlp_logs *lg, ms_buf *recs, int json, const ms_otlp_span *s, int64_t observed_ns);
void ms_otlp_logs_free(ms_otlp_logs *lg);

#endif
