/* ms_otlp_proto — spans and ExportTraceServiceRequest in protobuf
 * (opentelemetry-proto trace.proto, field numbers in ms_otlp_schema.h). */
#include "ms_otlp_span.h"

#include "ms_otlp_pb.h"
#include "ms_otlp_schema.h"

#include <string.h>

void ms_otlp_utf8(ms_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* valid bytes not yet copied, ending at i */
    for (size_t i = 0; i < n;) {
        size_t len = ms_utf8_len(u + i, n - i);
        if (len) {
            i += len;
            run += len;
            continue;
        }
        ms_buf_add(b, s + i - run, run);
        ms_buf_add(b, "\xEF\xBF\xBD", 3);
        run = 0;
        i++;
    }
    ms_buf_add(b, s + n - run, run);
}

/* A string field, UTF-8 made valid. Its length is known only after, so
 * it is written as a nested message (the same bytes on the wire). */
static void text_field(ms_buf *b, uint32_t field, const char *s, size_t n)
{
    size_t m = ms_pb_begin(b, field);
    ms_otlp_utf8(b, s, n);
    ms_pb_end(b, m);
}

void ms_otlp_proto_attr(ms_buf *b, uint32_t field, const ms_otlp_attr *a)
{
    size_t kv = ms_pb_begin(b, field);
    text_field(b, MS_PB_KEY_VALUE_KEY, a->key, a->key_len);
    size_t any = ms_pb_begin(b, MS_PB_KEY_VALUE_VALUE);
    switch (a->type) {
    case MS_OTLP_STR:
        text_field(b, MS_PB_ANY_STRING, a->s, a->s_len);
        break;
    case MS_OTLP_INT:
        ms_pb_int(b, MS_PB_ANY_INT, a->i);
        break;
    case MS_OTLP_DOUBLE:
        ms_pb_double(b, MS_PB_ANY_DOUBLE, a->d);
        break;
    case MS_OTLP_BOOL:
        ms_pb_uint(b, MS_PB_ANY_BOOL, a->i != 0);
        break;
    case MS_OTLP_STR_ARRAY1: {
        size_t arr = ms_pb_begin(b, MS_PB_ANY_ARRAY);
        size_t v = ms_pb_begin(b, MS_PB_ARRAY_VALUES);
        text_field(b, MS_PB_ANY_STRING, a->s, a->s_len);
        ms_pb_end(b, v);
        ms_pb_end(b, arr);
        break;
    }
    case MS_OTLP_STR_LIST: {
        size_t arr = ms_pb_begin(b, MS_PB_ANY_ARRAY);
        const char *s = a->s;
        for (int64_t k = 0; k < a->i; k++) {
            size_t n = strlen(s);
            size_t v = ms_pb_begin(b, MS_PB_ARRAY_VALUES);
            text_field(b, MS_PB_ANY_STRING, s, n);
            ms_pb_end(b, v);
            s += n + 1;
        }
        ms_pb_end(b, arr);
        break;
    }
    }
    ms_pb_end(b, any);
    ms_pb_end(b, kv);
}

void ms_otlp_proto_span(ms_buf *spans, const ms_otlp_span *s)
{
    ms_buf *b = spans;
    size_t m = ms_pb_begin(b, MS_PB_SCOPE_SPANS_SPANS);
    ms_pb_bytes(b, MS_PB_SPAN_TRACE_ID, s->trace_id, 16);
    ms_pb_bytes(b, MS_PB_SPAN_SPAN_ID, s->span_id, 8);
    if (s->has_parent)
        ms_pb_bytes(b, MS_PB_SPAN_PARENT_SPAN_ID, s->parent_id, 8);
    text_field(b, MS_PB_SPAN_NAME, s->name, s->name_len);
    ms_pb_uint(b, MS_PB_SPAN_KIND, (uint64_t)s->kind);
    ms_pb_fixed64(b, MS_PB_SPAN_START_TIME_UNIX_NANO, (uint64_t)s->start_ns);
    ms_pb_fixed64(b, MS_PB_SPAN_END_TIME_UNIX_NANO, (uint64_t)s->end_ns);
    for (size_t i = 0; i < s->nattrs; i++)
        ms_otlp_proto_attr(b, MS_PB_SPAN_ATTRIBUTES, &s->attrs[i]);
    for (size_t i = 0; i < s->nevents; i++) {
        const ms_otlp_event *e = &s->events[i];
        size_t ev = ms_pb_begin(b, MS_PB_SPAN_EVENTS);
        ms_pb_fixed64(b, MS_PB_EVENT_TIME_UNIX_NANO, (uint64_t)e->time_ns);
        text_field(b, MS_PB_EVENT_NAME, e->name, e->name_len);
        for (size_t k = 0; k < e->nattrs; k++)
            ms_otlp_proto_attr(b, MS_PB_EVENT_ATTRIBUTES, &s->event_attrs[e->attr0 + k]);
        ms_pb_end(b, ev);
    }
    size_t st = ms_pb_begin(b, MS_PB_SPAN_STATUS);
    if (s->status_msg_len)
        text_field(b, MS_PB_STATUS_MESSAGE, s->status_msg, s->status_msg_len);
    if (s->status)
        ms_pb_uint(b, MS_PB_STATUS_CODE, (uint64_t)s->status);
    ms_pb_end(b, st);
    ms_pb_end(b, m);
}

void ms_otlp_proto_request(ms_buf *out, const ms_otlp_kv *resource, size_t nresource,
                           const ms_buf *spans)
{
    size_t rs = ms_pb_begin(out, MS_PB_EXPORT_TRACE_REQUEST_RESOURCE_SPANS);
    size_t res = ms_pb_begin(out, MS_PB_RESOURCE_SPANS_RESOURCE);
    for (size_t i = 0; i < nresource; i++) {
        ms_otlp_attr a = {.key = resource[i].key, .key_len = strlen(resource[i].key), .type = MS_OTLP_STR,
                          .s = resource[i].value, .s_len = strlen(resource[i].value)};
        ms_otlp_proto_attr(out, MS_PB_RESOURCE_ATTRIBUTES, &a);
    }
    ms_pb_end(out, res);
    size_t ss = ms_pb_begin(out, MS_PB_RESOURCE_SPANS_SCOPE_SPANS);
    size_t scope = ms_pb_begin(out, MS_PB_SCOPE_SPANS_SCOPE);
    ms_pb_str(out, MS_PB_SCOPE_NAME, MS_OTLP_SCOPE_NAME);
#ifdef MOONSPAN_VERSION
    ms_pb_str(out, MS_PB_SCOPE_VERSION, MOONSPAN_VERSION);
#endif
    ms_pb_end(out, scope);
    ms_buf_add(out, spans->data, spans->len);
    if (spans->oom)
        out->oom = 1;
    ms_pb_str(out, MS_PB_SCOPE_SPANS_SCHEMA_URL, MS_OTLP_SCHEMA_URL);
    ms_pb_end(out, ss);
    ms_pb_end(out, rs);
}
