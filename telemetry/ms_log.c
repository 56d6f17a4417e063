/* ms_log — JSON log lines of ended spans and errors; see ms_log.h. */
#include "ms_log.h"

#include "ms_buf.h"
#include "ms_clock.h"
#include "ms_ids.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ms_log {
    FILE *f;
    int is_stderr;
    uint64_t records, lost;
    int write_errno;
    ms_buf line; /* the records of one trace, written at once */
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

/* The start of one record, up to and including `"attributes":{`. */
static void record_head(ms_buf *b, int64_t time_ns, int64_t observed_ns, int sev, const char *event,
                        const char *body, size_t body_len, const char *trace_hex, uint64_t span_id)
{
    char sid[17];
    ms_span_id_hex(span_id, sid);
    ms_buf_printf(b, "{\"timeUnixNano\":\"%lld\",\"observedTimeUnixNano\":\"%lld\",\"severityNumber\":%d,"
                     "\"severityText\":\"%s\",\"eventName\":\"%s\",\"body\":",
                  (long long)time_ns, (long long)observed_ns, sev, severity_text(sev), event);
    ms_json_str(b, body, body_len);
    ms_buf_printf(b, ",\"traceId\":\"%s\",\"spanId\":\"%s\",\"flags\":1,\"attributes\":{", trace_hex, sid);
}

static void attr_str(ms_buf *b, int *first, const char *key, const char *v, size_t n)
{
    ms_json_key(b, first, key);
    ms_json_str(b, v, n);
}

static void attr_num(ms_buf *b, int *first, const char *key, double v)
{
    ms_json_key(b, first, key);
    ms_json_num(b, v); /* NaN (unknown) is null */
}

static void attr_int(ms_buf *b, int *first, const char *key, int64_t v)
{
    ms_json_key(b, first, key);
    ms_json_int(b, v);
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
    char body[200], pid[17];
    const char *name = ms_trace_str(t, s->name);
    int status = s->gidx == 0 && t->part != MS_PART_CUT ? ms_trace_status(t) : s->status;
    double ms = (double)(s->end - s->start) / 1e6;
    int n = snprintf(body, sizeof body, "%.120s ended %s after %.3f ms", name ? name : "?",
                     ms_status_name(status), ms);
    record_head(b, ms_mono_to_epoch(s->end), observed, status == MS_STATUS_OK ? SEV_INFO : SEV_WARN,
                "moonspan.span.end", body, n < 0 ? 0 : (size_t)n < sizeof body ? (size_t)n : sizeof body - 1,
                trace_hex, ms_span_id(t, s->gidx));
    int first = 1;
    attr_str(b, &first, "moonspan.span.name", name ? name : "", s->name.len);
    attr_str(b, &first, "moonspan.span.kind", ms_kind_name(s->kind), strlen(ms_kind_name(s->kind)));
    attr_str(b, &first, "moonspan.span.status", ms_status_name(status), strlen(ms_status_name(status)));
    uint64_t parent = s->parent != MS_NONE ? ms_span_id(t, s->parent) : t->remote_parent;
    ms_json_key(b, &first, "moonspan.span.parent_id");
    if (parent) {
        ms_span_id_hex(parent, pid);
        ms_buf_printf(b, "\"%s\"", pid);
    } else {
        ms_buf_adds(b, "null");
    }
    ms_json_key(b, &first, "moonspan.span.start_time_unix_nano");
    ms_buf_printf(b, "\"%lld\"", (long long)ms_mono_to_epoch(s->start));
    attr_num(b, &first, "moonspan.span.duration_ms", ms);
    if (s->retries)
        attr_int(b, &first, "moonspan.span.retries", s->retries);
    if (s->kind == MS_KIND_FOLD && s->fold < t->nfolds)
        attr_int(b, &first, "moonspan.fold.count", (int64_t)t->folds[s->fold].count);
    if (s->llm != MS_NONE && s->llm < t->nllm) {
        const ms_llm *l = &t->llm[s->llm];
        const char *p = ms_trace_str(t, l->provider), *m = ms_trace_str(t, l->model);
        if (p)
            attr_str(b, &first, "gen_ai.provider.name", p, l->provider.len);
        if (m)
            attr_str(b, &first, "gen_ai.response.model", m, l->model.len);
        /* GenAI's input count includes the cache; moonspan's does not */
        attr_int(b, &first, "gen_ai.usage.input_tokens", l->input + l->cache_read + l->cache_write);
        attr_int(b, &first, "gen_ai.usage.output_tokens", l->output);
        attr_int(b, &first, "gen_ai.usage.cache_read.input_tokens", l->cache_read);
        attr_int(b, &first, "gen_ai.usage.cache_creation.input_tokens", l->cache_write);
        attr_num(b, &first, "gen_ai.usage.cost", l->cost_usd);
    }
    span_attrs(b, &first, t, s->gidx, scratch);
    ms_buf_adds(b, "}}\n");
}

static void error_record(ms_buf *b, const ms_trace *t, uint32_t gidx, int64_t time, const char *trace_hex,
                         int64_t observed, const char *span_name, ms_str type, ms_str message,
                         ms_str traceback)
{
    const char *msg = ms_trace_str(t, message), *ty = ms_trace_str(t, type);
    record_head(b, ms_mono_to_epoch(time), observed, SEV_ERROR, "moonspan.error", msg ? msg : "",
                msg ? message.len : 0, trace_hex, ms_span_id(t, gidx));
    int first = 1;
    attr_str(b, &first, "exception.type", ty ? ty : "error", ty ? type.len : 5);
    attr_str(b, &first, "exception.message", msg ? msg : "", msg ? message.len : 0);
    const char *tb = traceback.off != MS_NONE && traceback.len ? ms_trace_str(t, traceback) : NULL;
    if (tb)
        attr_str(b, &first, "exception.stacktrace", tb, traceback.len);
    if (span_name)
        attr_str(b, &first, "moonspan.span.name", span_name, strlen(span_name));
    ms_buf_adds(b, "}}\n");
}

void ms_log_trace(ms_log *l, const ms_trace *t)
{
    char trace_hex[33];
    ms_trace_id_hex(&t->id, trace_hex);
    int64_t observed = ms_epoch_ns();
    ms_buf *b = &l->line;
    ms_buf scratch = {0};
    ms_buf_reset(b);
    uint64_t n = 0;
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *s = &t->spans[i];
        if (!s->end || (t->sampled_out && s->gidx != 0))
            continue; /* open (a part keeps none), or sampled out: the summary only */
        span_record(b, t, s, trace_hex, observed, &scratch);
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
    ms_buf_free(&scratch);
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
    uint64_t lost = l->lost;
    free(l);
    if (e)
        return ms_errf(err, errlen, "%llu log records could not be written: %s", (unsigned long long)lost,
                       strerror(e));
    return 0;
}
