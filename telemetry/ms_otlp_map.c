/* ms_otlp_map — a stored span as an OTLP span (ms_otlp_span.h).
 *
 * What goes where (the README's attribute table says the same):
 *   every span    moonspan.kind; openinference.span.kind CHAIN (LLM for
 *                 calls), so Phoenix lists it; kind INTERNAL
 *   an llm call   kind CLIENT and the GenAI v1.41.0 attributes: operation
 *                 "chat", provider, response model (request model: the
 *                 span's own, else the stored one), usage (input counts the
 *                 cache, as GenAI defines it; moonspan stores it apart),
 *                 cost and TTFT when known (absent when unknown, never 0),
 *                 plus what Phoenix (llm.*) and Langfuse
 *                 (completion_start_time) read
 *   an error      status ERROR with the message, error.type, and an
 *                 "exception" event on the span that raised it
 *   a fold        one span over its repetitions, with moonspan.fold.*
 * The span's own attributes follow; a key already written is skipped
 * (OTLP wants unique keys) and gen_ai.response.finish_reasons becomes
 * the string[] GenAI defines. */
#include "ms_otlp_span.h"

#include "ms_fmt.h"
#include "ms_otlp_schema.h"
#include "ms_read.h"
#include "ms_spans.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_id(uint8_t out[8], uint64_t id)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(id & 0xff);
        id >>= 8;
    }
}

static ms_otlp_attr *new_attr(ms_otlp_mapper *m, const char *key)
{
    if (ms_grow((void **)&m->attrs, &m->cap_attrs, m->nattrs, sizeof *m->attrs)) {
        m->oom = 1;
        return NULL;
    }
    ms_otlp_attr *a = &m->attrs[m->nattrs++];
    memset(a, 0, sizeof *a);
    a->key = key;
    a->key_len = strlen(key);
    return a;
}

static void attr_str(ms_otlp_mapper *m, const char *key, const char *s, size_t n)
{
    ms_otlp_attr *a = new_attr(m, key);
    if (a) {
        a->type = MS_OTLP_STR;
        a->s = s;
        a->s_len = n;
    }
}

static void attr_int(ms_otlp_mapper *m, const char *key, int64_t v)
{
    ms_otlp_attr *a = new_attr(m, key);
    if (a) {
        a->type = MS_OTLP_INT;
        a->i = v;
    }
}

static void attr_double(ms_otlp_mapper *m, const char *key, double v)
{
    ms_otlp_attr *a = new_attr(m, key);
    if (a) {
        a->type = MS_OTLP_DOUBLE;
        a->d = v;
    }
}

static void attr_bool(ms_otlp_mapper *m, const char *key, int v)
{
    ms_otlp_attr *a = new_attr(m, key);
    if (a) {
        a->type = MS_OTLP_BOOL;
        a->i = v != 0;
    }
}

static int has_key(const ms_otlp_mapper *m, const char *k, size_t n)
{
    for (size_t i = 0; i < m->nattrs; i++)
        if (m->attrs[i].key_len == n && memcmp(m->attrs[i].key, k, n) == 0)
            return 1;
    return 0;
}

/* Epoch ns as ISO-8601 UTC to the millisecond ("2026-01-01T00:00:01.250Z"),
 * the form Langfuse parses. */
static void iso_ms(int64_t ns, char *out, size_t n)
{
    char sec[40];
    ms_iso_utc(ns, sec, sizeof sec);
    size_t len = strlen(sec);
    if (len && sec[len - 1] == 'Z')
        sec[len - 1] = 0;
    int64_t ms = ms_floor_div(ns, 1000000) - ms_floor_div(ns, 1000000000) * 1000;
    snprintf(out, n, "%s.%03dZ", sec, (int)ms);
}

static const char *status_text(int status)
{
    return status == MS_STATUS_INTERRUPTED ? "interrupted" : status == MS_STATUS_INCOMPLETE ? "incomplete" : NULL;
}

/* Status, and moonspan.status for what OTLP has no code for. */
static void set_status(ms_otlp_mapper *m, ms_otlp_span *out, int status, const char *msg, size_t len)
{
    out->status = status == MS_STATUS_OK ? MS_OTLP_STATUS_UNSET : MS_OTLP_STATUS_ERROR;
    out->ms_status = status;
    const char *why = status_text(status);
    if (why)
        attr_str(m, MS_ATTR_MS_STATUS, why, strlen(why));
    if (msg && len) {
        out->status_msg = msg;
        out->status_msg_len = len;
    } else if (why) {
        snprintf(m->status_msg, sizeof m->status_msg, "%s", why);
        out->status_msg = m->status_msg;
        out->status_msg_len = strlen(m->status_msg);
    }
}

/* The usage of an llm call, under the names GenAI, Phoenix and Langfuse
 * read. input excludes the cache in the store; GenAI and OpenInference
 * count it in. */
static void usage_attrs(ms_otlp_mapper *m, int64_t input, int64_t output, int64_t cache_read,
                        int64_t cache_write)
{
    int64_t in = input + cache_read + cache_write;
    attr_int(m, MS_ATTR_GENAI_INPUT_TOKENS, in);
    attr_int(m, MS_ATTR_GENAI_OUTPUT_TOKENS, output);
    attr_int(m, MS_ATTR_GENAI_CACHE_READ, cache_read);
    attr_int(m, MS_ATTR_GENAI_CACHE_CREATION, cache_write);
    attr_int(m, MS_ATTR_OI_TOKENS_PROMPT, in);
    attr_int(m, MS_ATTR_OI_TOKENS_COMPLETION, output);
    attr_int(m, MS_ATTR_OI_TOKENS_TOTAL, in + output);
    attr_int(m, MS_ATTR_OI_CACHE_READ, cache_read);
    attr_int(m, MS_ATTR_OI_CACHE_WRITE, cache_write);
}

static void llm_attrs(ms_otlp_mapper *m, const ms_otlp_trace_row *t, const ms_span_rec *sp)
{
    attr_str(m, MS_ATTR_GENAI_OPERATION, "chat", 4);
    if (sp->provider.len) {
        attr_str(m, MS_ATTR_GENAI_PROVIDER, sp->provider.p, sp->provider.len);
        attr_str(m, MS_ATTR_OI_PROVIDER, sp->provider.p, sp->provider.len);
    }
    /* the stored model is the one the provider answered with (the one
     * asked for when it named none, or the call failed); the one asked
     * for is the span's own gen_ai.request.model, after these */
    if (sp->model.len) {
        if (!sp->has_error)
            attr_str(m, MS_ATTR_GENAI_RESPONSE_MODEL, sp->model.p, sp->model.len);
        attr_str(m, MS_ATTR_OI_MODEL_NAME, sp->model.p, sp->model.len);
    }
    usage_attrs(m, sp->input, sp->output, sp->cache_read, sp->cache_write);
    if (sp->estimated)
        attr_bool(m, MS_ATTR_MS_ESTIMATED, 1);
    if (sp->replayed)
        attr_bool(m, MS_ATTR_MS_REPLAYED, 1);
    if (!isnan(sp->cost_usd))
        attr_double(m, MS_ATTR_GENAI_COST, sp->cost_usd);
    if (sp->ttft_ns >= 0) {
        attr_double(m, MS_ATTR_GENAI_TTFC, (double)sp->ttft_ns / 1e9);
        iso_ms(t->start_ns + sp->start + sp->ttft_ns, m->completion_start, sizeof m->completion_start);
        attr_str(m, MS_ATTR_LANGFUSE_COMPLETION_START, m->completion_start, strlen(m->completion_start));
    }
}

static void fold_attrs(ms_otlp_mapper *m, const ms_span_rec *sp)
{
    attr_int(m, MS_ATTR_MS_FOLD_COUNT, (int64_t)sp->fold_count);
    attr_int(m, MS_ATTR_MS_FOLD_ERRORS, (int64_t)sp->fold_errors);
    attr_double(m, MS_ATTR_MS_FOLD_TOTAL_MS, (double)sp->fold_total / 1e6);
    attr_double(m, MS_ATTR_MS_FOLD_MIN_MS, (double)sp->fold_min / 1e6);
    attr_double(m, MS_ATTR_MS_FOLD_MAX_MS, (double)sp->fold_max / 1e6);
}

static ms_otlp_attr *new_ev_attr(ms_otlp_mapper *m, const char *key, const char *s, size_t n)
{
    if (ms_grow((void **)&m->ev_attrs, &m->cap_ev_attrs, m->nev_attrs, sizeof *m->ev_attrs)) {
        m->oom = 1;
        return NULL;
    }
    ms_otlp_attr *a = &m->ev_attrs[m->nev_attrs++];
    *a = (ms_otlp_attr){.key = key, .key_len = strlen(key), .type = MS_OTLP_STR, .s = s, .s_len = n};
    return a;
}

static ms_otlp_event *new_event(ms_otlp_mapper *m, const char *name, size_t n, int64_t time_ns)
{
    if (ms_grow((void **)&m->evs, &m->cap_evs, m->nevs, sizeof *m->evs)) {
        m->oom = 1;
        return NULL;
    }
    ms_otlp_event *e = &m->evs[m->nevs++];
    *e = (ms_otlp_event){.name = name, .name_len = n, .time_ns = time_ns, .attr0 = m->nev_attrs};
    return e;
}

/* The span's stored events; a manual error (ctx:add_error) carries
 * exception.type/message, other attributes travel as their JSON text. */
static int events(ms_otlp_mapper *m, const ms_otlp_trace_row *t, const ms_spans_walk *w, const ms_span_rec *sp)
{
    const uint8_t *p = sp->events;
    for (uint32_t i = 0; i < sp->nevents; i++) {
        ms_event_rec ev;
        if (ms_pack_event_at(&w->r, &p, sp->events_end, sp->start, &ev))
            return -1;
        ms_otlp_event *e = new_event(m, ev.name.p, ev.name.len, t->start_ns + ev.time);
        if (!e)
            return -2;
        if (ev.has_error) {
            new_ev_attr(m, "exception.type", ev.error_type.p, ev.error_type.len);
            new_ev_attr(m, "exception.message", ev.error_message.p, ev.error_message.len);
        }
        if (ev.attrs_json.len)
            new_ev_attr(m, "moonspan.attrs", ev.attrs_json.p, ev.attrs_json.len);
        e->nattrs = m->nev_attrs - e->attr0; /* new_ev_attr grows ev_attrs, never evs */
    }
    return m->oom ? -2 : 0;
}

/* Appends the UTF-8 of code point cp to b, U+FFFD for a NUL (the list's
 * separator) or a lone surrogate. */
static void put_cp(ms_buf *b, unsigned long cp)
{
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    ms_buf_add(b, u, n);
}

static int hex4(const char *p, const char *end, unsigned long *out)
{
    if (end - p < 4)
        return -1;
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned long)d;
    }
    *out = v;
    return 0;
}

/* Decodes text, the JSON array of strings trace() stores as a root's
 * `tags`, into out: the strings one after another, each ended by a NUL.
 * Returns how many, or -1 when text is not such an array (then the tags
 * are sent as the one string they are). */
static long json_string_list(const char *p, size_t len, ms_buf *out)
{
    const char *end = p + len;
    long n = 0;
#define SKIP_WS() while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++
    SKIP_WS();
    if (p == end || *p++ != '[')
        return -1;
    SKIP_WS();
    if (p < end && *p == ']')
        p++;
    else
        for (;;) {
            if (p == end || *p++ != '"')
                return -1;
            while (p < end && *p != '"') {
                if ((unsigned char)*p < 0x20)
                    return -1;
                if (*p != '\\') {
                    ms_buf_addc(out, *p++);
                    continue;
                }
                if (++p == end)
                    return -1;
                char e = *p++;
                unsigned long cp, lo;
                switch (e) {
                case '"': case '\\': case '/': ms_buf_addc(out, e); break;
                case 'b': ms_buf_addc(out, '\b'); break;
                case 'f': ms_buf_addc(out, '\f'); break;
                case 'n': ms_buf_addc(out, '\n'); break;
                case 'r': ms_buf_addc(out, '\r'); break;
                case 't': ms_buf_addc(out, '\t'); break;
                case 'u':
                    if (hex4(p, end, &cp))
                        return -1;
                    p += 4;
                    if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                        !hex4(p + 2, end, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                    put_cp(out, cp);
                    break;
                default:
                    return -1;
                }
            }
            if (p == end)
                return -1;
            p++; /* the closing quote */
            ms_buf_addc(out, '\0');
            n++;
            SKIP_WS();
            if (p < end && *p == ',') {
                p++;
                SKIP_WS();
                continue;
            }
            if (p < end && *p == ']') {
                p++;
                break;
            }
            return -1;
        }
    SKIP_WS();
#undef SKIP_WS
    return p == end ? n : -1;
}

/* langfuse.trace.tags, the string[] Langfuse reads a trace's tags from,
 * beside the root's own `tags` (the JSON text trace() stores). */
static int tags_alias(ms_otlp_mapper *m, const ms_otlp_attr *own)
{
    static const char key[] = MS_ATTR_LANGFUSE_TRACE_TAGS;
    if (own->type != MS_OTLP_STR || has_key(m, key, sizeof key - 1))
        return 0;
    ms_buf_reset(&m->tags);
    m->tags.oom = 0;
    long n = json_string_list(own->s, own->s_len, &m->tags);
    if (n < 0) {
        ms_buf_reset(&m->tags);
        ms_buf_add(&m->tags, own->s, own->s_len);
        ms_buf_addc(&m->tags, '\0');
        n = 1;
    }
    if (m->tags.oom)
        return -2;
    ms_otlp_attr *a = new_attr(m, key);
    if (!a)
        return -2;
    a->type = MS_OTLP_STR_LIST;
    a->s = m->tags.data ? m->tags.data : "";
    a->s_len = m->tags.len;
    a->i = n;
    return 0;
}

/* The span's own attributes, after moonspan's (first key wins). */
/* The names other tools read a request's session and user under
 * (otel-export.md: Langfuse reads session.id or gen_ai.conversation.id,
 * and user.id; Phoenix reads session.id), added beside the root's own
 * `session` and `user` attributes that trace() stores. */
static int who_aliases(ms_otlp_mapper *m, const ms_otlp_attr *own)
{
    static const char *const session[] = {"session.id", "gen_ai.conversation.id"};
    static const char *const user[] = {"user.id"};
    const char *const *names = NULL;
    size_t n = 0;
    if (own->key_len == 4 && memcmp(own->key, "tags", 4) == 0)
        return tags_alias(m, own);
    if (own->key_len == 7 && memcmp(own->key, "session", 7) == 0)
        names = session, n = 2;
    else if (own->key_len == 4 && memcmp(own->key, "user", 4) == 0)
        names = user, n = 1;
    const ms_otlp_attr value = *own; /* new_attr may move m->attrs, and `own` with it */
    for (size_t i = 0; i < n; i++) {
        if (has_key(m, names[i], strlen(names[i])))
            continue;
        ms_otlp_attr copy = value;
        ms_otlp_attr *a = new_attr(m, names[i]);
        if (!a)
            return -2;
        copy.key = a->key;
        copy.key_len = a->key_len;
        *a = copy;
    }
    return 0;
}

static int own_attrs(ms_otlp_mapper *m, const ms_spans_walk *w, const ms_span_rec *sp)
{
    int root = sp->parent == MS_NONE && sp->gidx == 0;
    const uint8_t *p = sp->attrs;
    static const char finish[] = MS_ATTR_GENAI_FINISH_REASONS;
    for (uint32_t i = 0; i < sp->nattrs; i++) {
        ms_attr_rec a;
        if (ms_pack_attr_at(&w->r, &p, sp->attrs_end, &a))
            return -1;
        if (has_key(m, a.key.p, a.key.len))
            continue;
        ms_otlp_attr *o = new_attr(m, "");
        if (!o)
            return -2;
        o->key = a.key.p;
        o->key_len = a.key.len;
        switch (a.type) {
        case MS_ATTR_STRING:
            o->type = a.key.len == sizeof finish - 1 && memcmp(a.key.p, finish, a.key.len) == 0
                          ? MS_OTLP_STR_ARRAY1 : MS_OTLP_STR;
            o->s = a.s.p;
            o->s_len = a.s.len;
            break;
        case MS_ATTR_INT:
            o->type = MS_OTLP_INT;
            o->i = a.i;
            break;
        case MS_ATTR_DOUBLE:
            o->type = MS_OTLP_DOUBLE;
            o->d = a.d;
            break;
        default:
            o->type = MS_OTLP_BOOL;
            o->i = a.i;
            break;
        }
        if (root && who_aliases(m, &m->attrs[m->nattrs - 1]))
            return -2;
    }
    return 0;
}

static void reset(ms_otlp_mapper *m, ms_otlp_span *out)
{
    m->nattrs = m->nev_attrs = m->nevs = 0;
    m->oom = 0;
    memset(out, 0, sizeof *out);
}

static void finish(ms_otlp_mapper *m, ms_otlp_span *out)
{
    out->attrs = m->attrs;
    out->nattrs = m->nattrs;
    out->event_attrs = m->ev_attrs;
    out->events = m->evs;
    out->nevents = m->nevs;
}

int ms_otlp_map_span(ms_otlp_mapper *m, const ms_otlp_trace_row *t, const ms_spans_walk *w,
                     const ms_span_rec *sp, ms_otlp_span *out)
{
    reset(m, out);
    memcpy(out->trace_id, t->trace_id, 16);
    put_id(out->span_id, ms_pack_span_id(&w->r, sp));
    uint64_t parent = sp->parent != MS_NONE ? ms_spans_walk_parent_id(w, sp) : t->remote_parent;
    if (parent) {
        out->has_parent = 1;
        put_id(out->parent_id, parent);
    }
    out->name = sp->name.p;
    out->name_len = sp->name.len;
    out->kind = sp->kind == MS_KIND_LLM ? MS_OTLP_KIND_CLIENT : MS_OTLP_KIND_INTERNAL;
    out->start_ns = t->start_ns + sp->start;
    out->end_ns = out->start_ns + sp->duration;

    const char *kind = ms_kind_name(sp->kind);
    attr_str(m, MS_ATTR_MS_KIND, kind, strlen(kind));
    attr_str(m, MS_ATTR_OI_SPAN_KIND, sp->kind == MS_KIND_LLM ? "LLM" : "CHAIN",
             sp->kind == MS_KIND_LLM ? 3 : 5);
    if (sp->has_llm)
        llm_attrs(m, t, sp);
    if (sp->kind == MS_KIND_FOLD)
        fold_attrs(m, sp);
    if (sp->retries)
        attr_int(m, MS_ATTR_RESEND_COUNT, sp->retries);
    /* the root shows the request's status, as `moonspan show` does */
    int status = sp->parent == MS_NONE && sp->gidx == 0 ? t->status : sp->status;
    if (sp->has_error) {
        attr_str(m, MS_ATTR_ERROR_TYPE, sp->error_type.p, sp->error_type.len);
        if (sp->error_own) {
            ms_otlp_event *e = new_event(m, "exception", 9, out->end_ns);
            if (e) {
                new_ev_attr(m, "exception.type", sp->error_type.p, sp->error_type.len);
                new_ev_attr(m, "exception.message", sp->error_message.p, sp->error_message.len);
                if (sp->error_traceback.len)
                    new_ev_attr(m, "exception.stacktrace", sp->error_traceback.p, sp->error_traceback.len);
                m->evs[m->nevs - 1].nattrs = m->nev_attrs - m->evs[m->nevs - 1].attr0;
            }
        }
        set_status(m, out, status == MS_STATUS_OK ? MS_STATUS_ERROR : status, sp->error_message.p,
                   sp->error_message.len);
    } else {
        set_status(m, out, status, NULL, 0);
    }
    int rc = own_attrs(m, w, sp);
    /* a call stored without the model it asked for (received over OTLP
     * without one, an older store): the model it has */
    if (rc == 0 && sp->has_llm && sp->model.len && !has_key(m, MS_ATTR_GENAI_REQUEST_MODEL,
                                                             sizeof MS_ATTR_GENAI_REQUEST_MODEL - 1))
        attr_str(m, MS_ATTR_GENAI_REQUEST_MODEL, sp->model.p, sp->model.len);
    if (rc == 0 && sp->nevents)
        rc = events(m, t, w, sp);
    if (rc == 0 && m->oom)
        rc = -2;
    finish(m, out);
    return rc;
}

int ms_otlp_map_summary(ms_otlp_mapper *m, const ms_otlp_trace_row *t, ms_otlp_span *out)
{
    reset(m, out);
    memcpy(out->trace_id, t->trace_id, 16);
    /* the root's id as the trace would have derived it */
    uint64_t salt = t->salt;
    if (!salt)
        for (int i = 0; i < 8; i++)
            salt = (salt << 8) | t->trace_id[8 + i];
    put_id(out->span_id, ms_span_id_derive(salt, 0));
    if (t->remote_parent) {
        out->has_parent = 1;
        put_id(out->parent_id, t->remote_parent);
    }
    out->name = t->name;
    out->name_len = strlen(t->name);
    out->kind = MS_OTLP_KIND_INTERNAL;
    out->start_ns = t->start_ns;
    out->end_ns = t->start_ns + t->duration_ns;
    attr_str(m, MS_ATTR_MS_KIND, "trace", 5);
    attr_str(m, MS_ATTR_OI_SPAN_KIND, "CHAIN", 5);
    attr_bool(m, MS_ATTR_MS_SAMPLED_OUT, 1);
    attr_int(m, MS_ATTR_MS_SPAN_COUNT, t->span_count);
    if (t->input || t->output || t->cache_read || t->cache_write)
        usage_attrs(m, t->input, t->output, t->cache_read, t->cache_write);
    if (t->has_cost)
        attr_double(m, MS_ATTR_GENAI_COST, t->cost);
    set_status(m, out, t->status, NULL, 0);
    finish(m, out);
    return m->oom ? -2 : 0;
}

void ms_otlp_mapper_free(ms_otlp_mapper *m)
{
    free(m->attrs);
    free(m->ev_attrs);
    free(m->evs);
    ms_buf_free(&m->tags);
    memset(m, 0, sizeof *m);
}
