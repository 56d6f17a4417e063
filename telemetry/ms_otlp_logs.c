/* ms_otlp_logs — log records in OTLP, and the records of a stored span
 * (see ms_otlp_logs.h). */
#include "ms_otlp_logs.h"

#include "ms_otlp_pb.h"
#include "ms_otlp_schema.h"
#include "ms_trace.h"

#include <stdlib.h>
#include <string.h>

const char *ms_otlp_severity_text(int severity)
{
    return severity >= MS_OTLP_SEVERITY_ERROR ? "ERROR" : severity >= MS_OTLP_SEVERITY_WARN ? "WARN" : "INFO";
}

/* --- encoders ---------------------------------------------------------------- */

void ms_otlp_proto_log(ms_buf *recs, const ms_otlp_log *l)
{
    ms_buf *b = recs;
    size_t m = ms_pb_begin(b, MS_PB_SCOPE_SPANS_SPANS); /* ScopeLogs.log_records, the same number */
    ms_pb_fixed64(b, MS_PB_LOG_TIME_UNIX_NANO, (uint64_t)l->time_ns);
    ms_pb_uint(b, MS_PB_LOG_SEVERITY_NUMBER, (uint64_t)l->severity);
    ms_pb_str(b, MS_PB_LOG_SEVERITY_TEXT, ms_otlp_severity_text(l->severity));
    size_t any = ms_pb_begin(b, MS_PB_LOG_BODY); /* an AnyValue holding the string */
    size_t str = ms_pb_begin(b, MS_PB_ANY_STRING);
    ms_otlp_utf8(b, l->body, l->body_len);
    ms_pb_end(b, str);
    ms_pb_end(b, any);
    for (size_t i = 0; i < l->nattrs; i++)
        ms_otlp_proto_attr(b, MS_PB_LOG_ATTRIBUTES, &l->attrs[i]);
    ms_pb_fixed32(b, MS_PB_LOG_FLAGS, l->flags);
    ms_pb_bytes(b, MS_PB_LOG_TRACE_ID, l->trace_id, 16);
    ms_pb_bytes(b, MS_PB_LOG_SPAN_ID, l->span_id, 8);
    ms_pb_fixed64(b, MS_PB_LOG_OBSERVED_TIME_UNIX_NANO, (uint64_t)l->observed_ns);
    ms_pb_str(b, MS_PB_LOG_EVENT_NAME, l->event_name);
    ms_pb_end(b, m);
}

void ms_otlp_json_log(ms_buf *recs, const ms_otlp_log *l)
{
    ms_buf *b = recs;
    if (b->len)
        ms_buf_addc(b, ',');
    ms_buf_adds(b, "{\"timeUnixNano\":");
    ms_otlp_json_i64(b, l->time_ns);
    ms_buf_adds(b, ",\"observedTimeUnixNano\":");
    ms_otlp_json_i64(b, l->observed_ns);
    ms_buf_printf(b, ",\"severityNumber\":%d,\"severityText\":\"%s\",\"eventName\":", l->severity,
                  ms_otlp_severity_text(l->severity));
    ms_json_str(b, l->event_name, strlen(l->event_name));
    ms_buf_adds(b, ",\"body\":{\"stringValue\":");
    ms_json_str(b, l->body, l->body_len);
    ms_buf_adds(b, "},");
    ms_otlp_json_attrs(b, l->attrs, l->nattrs);
    ms_buf_printf(b, ",\"flags\":%u,\"traceId\":", (unsigned)l->flags);
    ms_otlp_json_hex(b, l->trace_id, 16);
    ms_buf_adds(b, ",\"spanId\":");
    ms_otlp_json_hex(b, l->span_id, 8);
    ms_buf_addc(b, '}');
}

/* --- the records of a stored span --------------------------------------------- */

static ms_otlp_attr *room(ms_otlp_logs *lg, size_t n)
{
    if (n > lg->cap) {
        ms_otlp_attr *a = realloc(lg->attrs, n * sizeof *a);
        if (!a)
            return NULL;
        lg->attrs = a;
        lg->cap = n;
    }
    return lg->attrs;
}

static ms_otlp_attr str_attr(const char *key, const char *s, size_t n)
{
    return (ms_otlp_attr){.key = key, .key_len = strlen(key), .type = MS_OTLP_STR, .s = s, .s_len = n};
}

static int has_key(const ms_otlp_attr *a, size_t n, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (a[i].key_len == k && memcmp(a[i].key, key, k) == 0)
            return 1;
    return 0;
}

/* Appends the attributes of `from` that `a[0..n)` has no key of; new n. */
static size_t merge(ms_otlp_attr *a, size_t n, const ms_otlp_attr *from, size_t nfrom)
{
    for (size_t i = 0; i < nfrom; i++) {
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = a[k].key_len == from[i].key_len && memcmp(a[k].key, from[i].key, a[k].key_len) == 0;
        if (!dup)
            a[n++] = from[i];
    }
    return n;
}

static void encode(ms_buf *recs, int json, const ms_otlp_log *l)
{
    if (json)
        ms_otlp_json_log(recs, l);
    else
        ms_otlp_proto_log(recs, l);
}

int ms_otlp_logs_of_span(ms_otlp_logs *lg, ms_buf *recs, int json, const ms_otlp_span *s, int64_t observed_ns)
{
    /* the end's list: 4 of ours and the span's; an error's: its event's and 1 */
    size_t most = s->nattrs + 4;
    for (size_t i = 0; i < s->nevents; i++)
        if (s->events[i].nattrs + 1 > most)
            most = s->events[i].nattrs + 1;
    ms_otlp_attr *a = room(lg, most);
    if (!a)
        return -1;

    /* the texts first: a's strings point into lg->text, which must not move after */
    const char *status = ms_status_name(s->ms_status);
    int64_t dur = s->end_ns - s->start_ns;
    int64_t whole = dur / 1000000, frac = (dur < 0 ? -dur : dur) % 1000000;
    ms_buf *t = &lg->text;
    ms_buf_reset(t);
    ms_otlp_utf8(t, s->name, s->name_len);
    ms_buf_printf(t, " ended %s after %lld.%06lld ms", status, (long long)whole, (long long)frac);
    size_t body_len = t->len;
    size_t parent_at = t->len;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; s->has_parent && i < 8; i++) {
        ms_buf_addc(t, digits[s->parent_id[i] >> 4]);
        ms_buf_addc(t, digits[s->parent_id[i] & 15]);
    }
    if (t->oom)
        return -1;

    ms_otlp_log l = {.time_ns = s->end_ns, .observed_ns = observed_ns, .flags = 1, .event_name = "moonspan.span.end",
                     .severity = s->ms_status == MS_STATUS_OK ? MS_OTLP_SEVERITY_INFO : MS_OTLP_SEVERITY_WARN,
                     .body = t->data, .body_len = body_len};
    memcpy(l.trace_id, s->trace_id, 16);
    memcpy(l.span_id, s->span_id, 8);
    size_t n = 0;
    a[n++] = str_attr("moonspan.span.name", s->name, s->name_len);
    a[n++] = str_attr("moonspan.span.status", status, strlen(status));
    if (s->has_parent)
        a[n++] = str_attr("moonspan.span.parent_id", t->data + parent_at, 16);
    a[n++] = (ms_otlp_attr){.key = "moonspan.span.duration_ms", .key_len = 25, .type = MS_OTLP_DOUBLE,
                            .d = (double)dur / 1e6};
    n = merge(a, n, s->attrs, s->nattrs);
    l.attrs = a;
    l.nattrs = n;
    encode(recs, json, &l);
    int records = 1;

    /* its errors: the events the mapper gave an exception.type */
    for (size_t i = 0; i < s->nevents; i++) {
        const ms_otlp_event *e = &s->events[i];
        const ms_otlp_attr *ea = s->event_attrs + e->attr0;
        if (!has_key(ea, e->nattrs, "exception.type"))
            continue;
        const ms_otlp_attr *msg = NULL;
        for (size_t k = 0; k < e->nattrs; k++)
            if (ea[k].key_len == 17 && memcmp(ea[k].key, "exception.message", 17) == 0)
                msg = &ea[k];
        size_t m = merge(a, 0, ea, e->nattrs);
        a[m++] = str_attr("moonspan.span.name", s->name, s->name_len);
        ms_otlp_log el = l;
        el.time_ns = e->time_ns;
        el.severity = MS_OTLP_SEVERITY_ERROR;
        el.event_name = "moonspan.error";
        el.body = msg ? msg->s : "";
        el.body_len = msg ? msg->s_len : 0;
        el.attrs = a;
        el.nattrs = m;
        encode(recs, json, &el);
        records++;
    }
    return recs->oom ? -1 : records;
}

void ms_otlp_logs_free(ms_otlp_logs *lg)
{
    free(lg->attrs);
    ms_buf_free(&lg->text);
    memset(lg, 0, sizeof *lg);
}
