/* ms_log — JSON log lines of ended spans and errors; see ms_log.h. */
#include "ms_log.h"

#include "ms_buf.h"
#include "ms_clock.h"
#include "ms_ids.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ms_log {
    FILE *f;
    int is_stderr;
    uint64_t records, lost;
    int write_errno;
    ms_buf line; /* the records of one trace, written at once */
    ms_buf scratch; /* a span's attributes, reused as line is */
};

/* OpenTelemetry severity numbers (log data model): INFO 9, WARN 13, ERROR 17. */
enum { SEV_INFO = 9, SEV_WARN = 13, SEV_ERROR = 17 };

int ms_log_open(const char *path, ms_log **out, char *err, size_t errlen)
{
    ms_log *l = calloc(1, sizeof *l);
    if (!l)
        return ms_errf(err, errlen, "out of memory");
    if (strcmp(path, "-") == 0) {
        l->f = stderr;
        l->is_stderr = 1;
    } else if (!(l->f = fopen(path, "a"))) {
        int e = errno;
        free(l);
        return ms_errf(err, errlen, "cannot open log file %s: %s; check the path and its folder's permissions",
                       path, strerror(e));
    }
    *out = l;
    return 0;
}

static const char *severity_text(int n)
{
    return n >= SEV_ERROR ? "ERROR" : n >= SEV_WARN ? "WARN" : "INFO";
}

/* --- fast appends: a record is ~30 fields, written for every span, so
 * the writer avoids printf for the numbers and escaping for the keys ---- */

static void add_u64(ms_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    ms_buf_add(b, tmp + i, sizeof tmp - i);
}

static void add_i64(ms_buf *b, int64_t v)
{
    if (v < 0) {
        ms_buf_addc(b, '-');
        add_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        add_u64(b, (uint64_t)v);
    }
}

/* ns as milliseconds with six decimals (exact: no floating point). */
static void add_ms(ms_buf *b, int64_t ns)
{
    if (ns < 0) {
        ms_buf_addc(b, '-');
        ns = -ns;
    }
    add_u64(b, (uint64_t)ns / 1000000);
    char frac[8] = ".000000";
    uint64_t f = (uint64_t)ns % 1000000;
    for (int i = 6; i >= 1; i--, f /= 10)
        frac[i] = (char)('0' + f % 10);
    ms_buf_add(b, frac, 7);
}

/* A member whose key needs no escaping (a literal of ours). */
#define KEY(b, first, lit) key_((b), (first), "\"" lit "\":", sizeof("\"" lit "\":") - 1)
static void key_(ms_buf *b, int *first, const char *k, size_t n)
{
    if (!*first)
        ms_buf_addc(b, ',');
    *first = 0;
    ms_buf_add(b, k, n);
}

/* Epoch ns as OTLP/JSON writes int64: a decimal string. */
static void add_time(ms_buf *b, int64_t ns)
{
    ms_buf_addc(b, '"');
    add_i64(b, ns);
    ms_buf_addc(b, '"');
}

static void add_hex_id(ms_buf *b, uint64_t id)
{
    char hex[17];
    ms_span_id_hex(id, hex);
    ms_buf_addc(b, '"');
    ms_buf_add(b, hex, 16);
    ms_buf_addc(b, '"');
}

/* The start of one record up to "body": (the caller writes the body). */
static void record_head(ms_buf *b, int64_t time_ns, int64_t observed_ns, int sev, const char *event)
{
    ms_buf_adds(b, "{\"timeUnixNano\":");
    add_time(b, time_ns);
    ms_buf_adds(b, ",\"observedTimeUnixNano\":");
    add_time(b, observed_ns);
    ms_buf_adds(b, ",\"severityNumber\":");
    add_i64(b, sev);
    ms_buf_adds(b, ",\"severityText\":\"");
    ms_buf_adds(b, severity_text(sev));
    ms_buf_adds(b, "\",\"eventName\":\"");
    ms_buf_adds(b, event);
    ms_buf_adds(b, "\",\"body\":");
}

/* After the body: ids, flags, and the opening of "attributes". The ids
 * twice: as OTLP/JSON's LogRecord names them, and as the specification's
 * "Trace Context in non-OTLP Log Formats" names them for JSON logs
 * (trace_id, span_id, trace_flags as two hex digits), which the
 * Collector's trace parser reads by default. */
static void record_ids(ms_buf *b, const char *trace_hex, uint64_t span_id)
{
    ms_buf_adds(b, ",\"traceId\":\"");
    ms_buf_add(b, trace_hex, 32);
    ms_buf_adds(b, "\",\"spanId\":");
    add_hex_id(b, span_id);
    ms_buf_adds(b, ",\"flags\":1,\"trace_id\":\"");
    ms_buf_add(b, trace_hex, 32);
    ms_buf_adds(b, "\",\"span_id\":");
    add_hex_id(b, span_id);
    ms_buf_adds(b, ",\"trace_flags\":\"01\",\"attributes\":{");
}

/* Appends the span's own attributes (a JSON object's members) to the
 * object being written. */
static void span_attrs(ms_buf *b, int *first, const ms_trace *t, uint32_t gidx, ms_buf *scratch)
{
    ms_buf_reset(scratch);
    ms_span_attrs_json(t, gidx, scratch);
    if (scratch->len > 2 && !scratch->oom) { /* "{...}": its members */
        if (!*first)
            ms_buf_addc(b, ',');
        ms_buf_add(b, scratch->data + 1, scratch->len - 2);
        *first = 0;
    }
}

static void span_record(ms_buf *b, const ms_trace *t, const ms_span *s, const char *trace_hex,
                        int64_t observed, ms_buf *scratch)
{
    const char *name = ms_trace_str(t, s->name);
    size_t name_len = name ? s->name.len : 1;
    name = name ? name : "?";
    int status = s->gidx == 0 && t->part != MS_PART_CUT ? ms_trace_status(t) : s->status;
    const char *status_name = ms_status_name(status), *kind = ms_kind_name(s->kind);
    int64_t dur = s->end - s->start;
    record_head(b, ms_mono_to_epoch(s->end), observed, status == MS_STATUS_OK ? SEV_INFO : SEV_WARN,
                "moonspan.span.end");
    /* body: "NAME ended STATUS after X ms", the name escaped as JSON */
    ms_json_str(b, name, name_len);
    if (!b->oom)
        b->data[--b->len] = 0; /* reopen the string after the name */
    ms_buf_adds(b, " ended ");
    ms_buf_adds(b, status_name);
    ms_buf_adds(b, " after ");
    add_ms(b, dur);
    ms_buf_adds(b, " ms\"");
    record_ids(b, trace_hex, ms_span_id(t, s->gidx));
    int first = 1;
    KEY(b, &first, "moonspan.span.name");
    ms_json_str(b, name, name_len);
    KEY(b, &first, "moonspan.span.kind");
    ms_buf_addc(b, '"');
    ms_buf_adds(b, kind);
    ms_buf_addc(b, '"');
    KEY(b, &first, "moonspan.span.status");
    ms_buf_addc(b, '"');
    ms_buf_adds(b, status_name);
    ms_buf_addc(b, '"');
    uint64_t parent = s->parent != MS_NONE ? ms_span_id(t, s->parent) : t->remote_parent;
    KEY(b, &first, "moonspan.span.parent_id");
    if (parent)
        add_hex_id(b, parent);
    else
        ms_buf_adds(b, "null");
    KEY(b, &first, "moonspan.span.start_time_unix_nano");
    add_time(b, ms_mono_to_epoch(s->start));
    KEY(b, &first, "moonspan.span.duration_ms");
    add_ms(b, dur);
    if (s->retries) {
        KEY(b, &first, "moonspan.span.retries");
        add_u64(b, s->retries);
    }
    if (s->kind == MS_KIND_FOLD && s->fold < t->nfolds) {
        KEY(b, &first, "moonspan.fold.count");
        add_u64(b, t->folds[s->fold].count);
    }
    if (s->llm != MS_NONE && s->llm < t->nllm) {
        const ms_llm *l = &t->llm[s->llm];
        const char *p = ms_trace_str(t, l->provider), *m = ms_trace_str(t, l->model);
        if (p) {
            KEY(b, &first, "gen_ai.provider.name");
            ms_json_str(b, p, l->provider.len);
        }
        if (m) {
            KEY(b, &first, "gen_ai.response.model");
            ms_json_str(b, m, l->model.len);
        }
        /* GenAI's input count includes the cache; moonspan's does not */
        KEY(b, &first, "gen_ai.usage.input_tokens");
        add_i64(b, l->input + l->cache_read + l->cache_write);
        KEY(b, &first, "gen_ai.usage.output_tokens");
        add_i64(b, l->output);
        KEY(b, &first, "gen_ai.usage.cache_read.input_tokens");
        add_i64(b, l->cache_read);
        KEY(b, &first, "gen_ai.usage.cache_creation.input_tokens");
        add_i64(b, l->cache_write);
        KEY(b, &first, "gen_ai.usage.cost");
        ms_json_num(b, l->cost_usd); /* NaN (unknown) is null */
    }
    span_attrs(b, &first, t, s->gidx, scratch);
    ms_buf_adds(b, "}}\n");
}

static void error_record(ms_buf *b, const ms_trace *t, uint32_t gidx, int64_t time, const char *trace_hex,
                         int64_t observed, const char *span_name, ms_str type, ms_str message,
                         ms_str traceback)
{
    const char *msg = ms_trace_str(t, message), *ty = ms_trace_str(t, type);
    size_t msg_len = msg ? message.len : 0;
    msg = msg ? msg : "";
    record_head(b, ms_mono_to_epoch(time), observed, SEV_ERROR, "moonspan.error");
    ms_json_str(b, msg, msg_len);
    record_ids(b, trace_hex, ms_span_id(t, gidx));
    int first = 1;
    KEY(b, &first, "exception.type");
    ms_json_str(b, ty ? ty : "error", ty ? type.len : 5);
    KEY(b, &first, "exception.message");
    ms_json_str(b, msg, msg_len);
    if (traceback.off != MS_NONE && traceback.len) {
        KEY(b, &first, "exception.stacktrace");
        ms_json_str(b, ms_trace_str(t, traceback), traceback.len);
    }
    if (span_name) {
        KEY(b, &first, "moonspan.span.name");
        ms_json_str(b, span_name, strlen(span_name));
    }
    ms_buf_adds(b, "}}\n");
}

void ms_log_trace(ms_log *l, const ms_trace *t)
{
    char trace_hex[33];
    ms_trace_id_hex(&t->id, trace_hex);
    int64_t observed = ms_epoch_ns();
    ms_buf *b = &l->line;
    ms_buf_reset(b);
    uint64_t n = 0;
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *s = &t->spans[i];
        if (!s->end || (t->sampled_out && s->gidx != 0))
            continue; /* open (a part keeps none), or sampled out: the summary only */
        span_record(b, t, s, trace_hex, observed, &l->scratch);
        n++;
    }
    /* errors: each where it was raised (own), and ctx:add_error's */
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *s = &t->spans[i];
        if (!s->end || s->error == MS_NONE || s->error >= t->nerrors || !t->errors[s->error].own)
            continue;
        const ms_span_error *e = &t->errors[s->error];
        error_record(b, t, s->gidx, s->end, trace_hex, observed, ms_trace_str(t, s->name), e->type, e->message,
                     e->traceback);
        n++;
    }
    for (uint32_t i = 0; i < t->nevents; i++) {
        const ms_event *e = &t->events[i];
        if (e->error_type.off == MS_NONE)
            continue;
        ms_str none = {MS_NONE, 0};
        error_record(b, t, e->span, e->time, trace_hex, observed, NULL, e->error_type, e->error_message, none);
        n++;
    }
    if (!b->len)
        return;
    if (b->oom || fwrite(b->data, 1, b->len, l->f) != b->len || fflush(l->f) != 0) {
        if (!l->write_errno)
            l->write_errno = b->oom ? ENOMEM : errno ? errno : EIO;
        l->lost += n;
        return;
    }
    l->records += n;
}

uint64_t ms_log_records(const ms_log *l)
{
    return l->records;
}

uint64_t ms_log_lost(const ms_log *l)
{
    return l->lost;
}

int ms_log_close(ms_log *l, char *err, size_t errlen)
{
    if (!l)
        return 0;
    int e = l->write_errno;
    if (!l->is_stderr && fclose(l->f) != 0 && !e)
        e = errno ? errno : EIO;
    ms_buf_free(&l->line);
    ms_buf_free(&l->scratch);
    uint64_t lost = l->lost;
    free(l);
    if (e)
        return ms_errf(err, errlen, "%llu log records could not be written: %s", (unsigned long long)lost,
                       strerror(e));
    return 0;
}
