/* ms_otlp_json — spans and ExportTraceServiceRequest in OTLP/JSON: the
 * proto3 JSON mapping with OTLP's exceptions (ids as lowercase hex, not
 * base64; enums as integers; int64 and fixed64 as decimal strings;
 * lowerCamelCase keys). */
#include "ms_otlp_span.h"

#include "ms_otlp_schema.h"

#include <inttypes.h>
#include <string.h>

void ms_otlp_json_hex(ms_buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char out[40];
    for (size_t i = 0; i < n && i < 16; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    ms_buf_addc(b, '"');
    ms_buf_add(b, out, 2 * n);
    ms_buf_addc(b, '"');
}

void ms_otlp_json_i64(ms_buf *b, int64_t v)
{
    ms_buf_printf(b, "\"%" PRId64 "\"", v);
}

static void value(ms_buf *b, const ms_otlp_attr *a)
{
    switch (a->type) {
    case MS_OTLP_STR:
        ms_buf_adds(b, "{\"stringValue\":");
        ms_json_str(b, a->s, a->s_len);
        break;
    case MS_OTLP_INT:
        ms_buf_adds(b, "{\"intValue\":");
        ms_otlp_json_i64(b, a->i);
        break;
    case MS_OTLP_DOUBLE:
        /* NaN and infinities have no JSON number; proto3 JSON spells them
         * as strings */
        ms_buf_adds(b, "{\"doubleValue\":");
        if (a->d != a->d)
            ms_buf_adds(b, "\"NaN\"");
        else if (a->d > 1.7976931348623157e308)
            ms_buf_adds(b, "\"Infinity\"");
        else if (a->d < -1.7976931348623157e308)
            ms_buf_adds(b, "\"-Infinity\"");
        else
            ms_json_num(b, a->d);
        break;
    case MS_OTLP_BOOL:
        ms_buf_adds(b, a->i ? "{\"boolValue\":true" : "{\"boolValue\":false");
        break;
    case MS_OTLP_STR_ARRAY1:
        ms_buf_adds(b, "{\"arrayValue\":{\"values\":[{\"stringValue\":");
        ms_json_str(b, a->s, a->s_len);
        ms_buf_adds(b, "}]}");
        break;
    case MS_OTLP_STR_LIST: {
        ms_buf_adds(b, "{\"arrayValue\":{\"values\":[");
        const char *s = a->s;
        for (int64_t k = 0; k < a->i; k++) {
            size_t n = strlen(s);
            ms_buf_adds(b, k ? ",{\"stringValue\":" : "{\"stringValue\":");
            ms_json_str(b, s, n);
            ms_buf_addc(b, '}');
            s += n + 1;
        }
        ms_buf_adds(b, "]}");
        break;
    }
    }
    ms_buf_addc(b, '}');
}

void ms_otlp_json_attrs(ms_buf *b, const ms_otlp_attr *list, size_t n)
{
    ms_buf_adds(b, "\"attributes\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_adds(b, "{\"key\":");
        ms_json_str(b, list[i].key, list[i].key_len);
        ms_buf_adds(b, ",\"value\":");
        value(b, &list[i]);
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
}

void ms_otlp_json_span(ms_buf *spans, const ms_otlp_span *s)
{
    ms_buf *b = spans;
    if (b->len)
        ms_buf_addc(b, ',');
    ms_buf_adds(b, "{\"traceId\":");
    ms_otlp_json_hex(b, s->trace_id, 16);
    ms_buf_adds(b, ",\"spanId\":");
    ms_otlp_json_hex(b, s->span_id, 8);
    if (s->has_parent) {
        ms_buf_adds(b, ",\"parentSpanId\":");
        ms_otlp_json_hex(b, s->parent_id, 8);
    }
    ms_buf_adds(b, ",\"name\":");
    ms_json_str(b, s->name, s->name_len);
    ms_buf_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":", s->kind);
    ms_otlp_json_i64(b, s->start_ns);
    ms_buf_adds(b, ",\"endTimeUnixNano\":");
    ms_otlp_json_i64(b, s->end_ns);
    ms_buf_addc(b, ',');
    ms_otlp_json_attrs(b, s->attrs, s->nattrs);
    ms_buf_adds(b, ",\"events\":[");
    for (size_t i = 0; i < s->nevents; i++) {
        const ms_otlp_event *e = &s->events[i];
        ms_buf_adds(b, i ? ",{\"timeUnixNano\":" : "{\"timeUnixNano\":");
        ms_otlp_json_i64(b, e->time_ns);
        ms_buf_adds(b, ",\"name\":");
        ms_json_str(b, e->name, e->name_len);
        ms_buf_addc(b, ',');
        ms_otlp_json_attrs(b, s->event_attrs + e->attr0, e->nattrs);
        ms_buf_addc(b, '}');
    }
    ms_buf_adds(b, "],\"status\":{");
    int first = 1;
    if (s->status_msg_len) {
        ms_buf_adds(b, "\"message\":");
        ms_json_str(b, s->status_msg, s->status_msg_len);
        first = 0;
    }
    if (s->status)
        ms_buf_printf(b, "%s\"code\":%d", first ? "" : ",", s->status);
    ms_buf_adds(b, "}}");
}

void ms_otlp_json_request(ms_buf *out, const ms_otlp_kv *resource, size_t nresource,
                          const ms_buf *spans)
{
    ms_otlp_json_envelope(out, MS_OTLP_TRACES, resource, nresource, spans);
}

void ms_otlp_json_envelope(ms_buf *out, enum ms_otlp_signal signal, const ms_otlp_kv *resource,
                           size_t nresource, const ms_buf *items)
{
    static const char *const keys[][3] = {
        [MS_OTLP_TRACES] = {"resourceSpans", "scopeSpans", "spans"},
        [MS_OTLP_METRICS] = {"resourceMetrics", "scopeMetrics", "metrics"},
        [MS_OTLP_LOGS] = {"resourceLogs", "scopeLogs", "logRecords"},
    };
    ms_buf_printf(out, "{\"%s\":[{\"resource\":{\"attributes\":[", keys[signal][0]);
    for (size_t i = 0; i < nresource; i++) {
        if (i)
            ms_buf_addc(out, ',');
        ms_buf_adds(out, "{\"key\":");
        ms_json_str(out, resource[i].key, strlen(resource[i].key));
        ms_buf_adds(out, ",\"value\":{\"stringValue\":");
        ms_json_str(out, resource[i].value, strlen(resource[i].value));
        ms_buf_adds(out, "}}");
    }
    ms_buf_printf(out, "]},\"%s\":[{\"scope\":{\"name\":\"" MS_OTLP_SCOPE_NAME "\"", keys[signal][1]);
#ifdef MOONSPAN_VERSION
    ms_buf_adds(out, ",\"version\":\"" MOONSPAN_VERSION "\"");
#endif
    ms_buf_printf(out, "},\"schemaUrl\":\"" MS_OTLP_SCHEMA_URL "\",\"%s\":[", keys[signal][2]);
    ms_buf_add(out, items->data, items->len);
    if (items->oom)
        out->oom = 1;
    ms_buf_adds(out, "]}]}]}");
}
