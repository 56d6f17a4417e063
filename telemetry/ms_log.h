/* ms_log — JSON lines: one log record per ended span and one per error,
 * in the shape of the OpenTelemetry log data model with OTLP/JSON field
 * names (opentelemetry-proto LogRecord), one object per line:
 *
 *   {"timeUnixNano":"...","observedTimeUnixNano":"...","severityNumber":9,
 *    "severityText":"INFO","eventName":"moonspan.span.end","body":"...",
 *    "traceId":"<32 hex>","spanId":"<16 hex>","flags":1,
 *    "trace_id":"<32 hex>","span_id":"<16 hex>","trace_flags":"01","attributes":{...}}
 *
 * trace_id, span_id and trace_flags repeat the ids under the names the
 * OpenTelemetry specification gives JSON logs that are not OTLP
 * (compatibility/logging_trace_context.md), which log pipelines read.
 * Times are decimal strings of Unix epoch nanoseconds (int64 in OTLP/JSON);
 * attributes a plain JSON object. What each record carries is listed in
 * the README ("--log json"). The text it writes was redacted when it was
 * recorded (ms_trace filters); this module adds nothing that was not in
 * the trace.
 *
 * The writer thread calls ms_log_trace for every trace and part it takes
 * (an observer, ms_tracer_add_observer), so logging costs the script's thread nothing; a
 * record is written when its span's trace, or the part of a long trace
 * that holds it, goes to the store. */
#ifndef MS_LOG_H
#define MS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "ms_trace.h"

typedef struct ms_log ms_log;

/* Opens a log on `path`, appended to ("-": stderr). Returns 0, or -1
 * with why in err. */
int ms_log_open(const char *path, ms_log **out, char *err, size_t errlen);

/* Writes the records of the ended spans of t (a whole trace, or a part of
 * one), then its errors, and flushes: whole lines only. A sampled-out
 * trace gives its root's record and its errors. Not thread-safe: one
 * writer thread. */
void ms_log_trace(ms_log *l, const ms_trace *t);

/* Records written so far; records that could not be written (a full disk). */
uint64_t ms_log_records(const ms_log *l);
uint64_t ms_log_lost(const ms_log *l);

/* Closes the log (not stderr). Returns 0, or -1 when a write failed at
 * some point, with why in err. */
int ms_log_close(ms_log *l, char *err, size_t errlen);

#endif
