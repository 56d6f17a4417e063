/* ms_otlp_in — OTLP trace requests made into moonspan traces (ms_otlp_in.h).
 * Reads the body twice: once to check all of it and index its spans, then
 * to build each trace, so a malformed body submits nothing. */
#include "ms_otlp_in.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_clock.h"
#include "ms_otlp_in_pb.h"

/* --- what the first pass keeps of each span ---------------------------------- */

typedef struct ospan {
    ms_trace_id trace;
    uint64_t id, parent;       /* parent 0: none */
    pb name, status_msg, body; /* body: the Span message, read again for attributes and events */
    uint64_t start, end;       /* Unix epoch ns */
    int kind, status;
    uint32_t resource;         /* index into the request's service names */
    uint32_t up;               /* index of its parent in the request; MS_NONE: a row's root */
    uint32_t first_child, next_sibling, gidx;
} ospan;

typedef struct reader {
    ospan *spans;
    uint32_t n, cap;
    pb *services;              /* service.name of each ResourceSpans ({NULL,NULL}: none) */
    uint32_t nres, capres;
    ms_otlp_result *res;
} reader;

static int fail(reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(reader *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->res->message, sizeof rd->res->message, fmt, ap);
    va_end(ap);
    return -1;
}

static void reject(reader *rd, const char *why)
{
    if (rd->res->rejected++ == 0)
        snprintf(rd->res->message, sizeof rd->res->message, "%s", why);
}

static int check_kv(pb kv, int depth);

/* Checks an AnyValue, and what nests in it to a bounded depth. */
static int check_any(pb v, int depth)
{
    if (depth > 16)
        return -1;
    pb_field f;
    int rc;
    while ((rc = pb_next(&v, &f)) > 0) {
        if (f.num != 5 && f.num != 6)
            continue;
        if (f.wt != WT_LEN) /* ArrayValue{values=1 AnyValue}, KeyValueList{values=1 KeyValue} */
            return -1;
        pb inner = f.s;
        pb_field g;
        while ((rc = pb_next(&inner, &g)) > 0) {
            if (g.num != 1)
                continue;
            if (g.wt != WT_LEN || (f.num == 5 ? check_any(g.s, depth + 1) : check_kv(g.s, depth + 1)))
                return -1;
        }
        if (rc < 0)
            return -1;
    }
    return rc;
}

/* Checks a KeyValue. */
static int check_kv(pb kv, int depth)
{
    pb_field f;
    int rc;
    while ((rc = pb_next(&kv, &f)) > 0)
        if ((f.num == 1 || f.num == 2) && f.wt != WT_LEN)
            return -1;
        else if (f.num == 2 && check_any(f.s, depth))
            return -1;
    return rc;
}

static int check_event(pb ev)
{
    pb_field f;
    int rc;
    while ((rc = pb_next(&ev, &f)) > 0) {
        if ((f.num == 1 && f.wt != WT_I64) || ((f.num == 2 || f.num == 3) && f.wt != WT_LEN))
            return -1;
        if (f.num == 3 && check_kv(f.s, 0))
            return -1;
    }
    return rc;
}

static int copy_id(pb s, uint8_t *out, size_t n)
{
    if (pb_len(s) != n)
        return -1;
    memcpy(out, s.p, n);
    for (size_t k = 0; k < n; k++)
        if (out[k])
            return 0;
    return -1; /* all zeros: invalid */
}

static uint64_t id64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | b[k];
    return v;
}

/* Reads one Span; a span that is well-formed but invalid is rejected,
 * one that is malformed fails the body. */
static int read_span(reader *rd, pb s, uint32_t resource)
{
    ospan o;
    memset(&o, 0, sizeof o);
    o.body = s;
    o.resource = resource;
    int have_trace = 0, have_id = 0, bad_id = 0;
    uint8_t b8[8];
    pb_field f;
    int rc;
    while ((rc = pb_next(&s, &f)) > 0) {
        switch (f.num) {
        case 1: case 2: case 4: case 5: case 9: case 11: case 15:
            if (f.wt != WT_LEN)
                return fail(rd, "Span field %u has wire type %d, not length-delimited", f.num, f.wt);
            break;
        case 6:
            if (f.wt != WT_VARINT)
                return fail(rd, "Span.kind is not a varint");
            break;
        case 7: case 8:
            if (f.wt != WT_I64)
                return fail(rd, "Span field %u (a time) is not fixed64", f.num);
            break;
        }
        switch (f.num) {
        case 1:
            have_trace = 1;
            bad_id |= copy_id(f.s, o.trace.b, 16) != 0;
            break;
        case 2:
            have_id = 1;
            if (copy_id(f.s, b8, 8) == 0)
                o.id = id64(b8);
            else
                bad_id = 1;
            break;
        case 4:
            if (pb_len(f.s) == 8) {
                memcpy(b8, f.s.p, 8);
                o.parent = id64(b8); /* all zeros: no parent */
            } else if (pb_len(f.s) != 0) {
                bad_id = 1;
            }
            break;
        case 5: o.name = f.s; break;
        case 6: o.kind = f.v <= 5 ? (int)f.v : 0; break;
        case 7: o.start = f.v; break;
        case 8: o.end = f.v; break;
        case 9:
            if (check_kv(f.s, 0))
                return fail(rd, "a span attribute is malformed");
            break;
        case 11:
            if (check_event(f.s))
                return fail(rd, "a span event is malformed");
            break;
        case 15: {
            pb st = f.s;
            pb_field g;
            int src;
            while ((src = pb_next(&st, &g)) > 0) {
                if (g.num == 2 && g.wt == WT_LEN)
                    o.status_msg = g.s;
                else if (g.num == 3 && g.wt == WT_VARINT)
                    o.status = g.v <= 2 ? (int)g.v : 0;
                else if (g.num == 2 || g.num == 3)
                    return fail(rd, "Status field %u has the wrong wire type", g.num);
            }
            if (src < 0)
                return fail(rd, "a span status is malformed");
            break;
        }
        }
    }
    if (rc < 0)
        return fail(rd, "a span is malformed (cut short or a bad tag)");
    if (!have_trace || !have_id || bad_id) {
        reject(rd, "a span without a valid trace id (16 bytes) or span id (8 bytes), or with an all-zero one");
        return 0;
    }
    if (!o.name.p || pb_len(o.name) == 0) {
        reject(rd, "a span without a name");
        return 0;
    }
    if (o.start == 0 || o.end < o.start || o.end > (uint64_t)INT64_MAX) {
        reject(rd, "a span without a start time, or ending before it starts");
        return 0;
    }
    if (rd->n == rd->cap) {
        uint32_t cap = rd->cap ? rd->cap * 2 : 64;
        ospan *p = realloc(rd->spans, cap * sizeof *p);
        if (!p)
            return ENOMEM;
        rd->spans = p;
        rd->cap = cap;
    }
    rd->spans[rd->n++] = o;
    return 0;
}

/* The string value of attribute `key` in a list of KeyValue fields
 * (field number `kvnum` of message m); {NULL, NULL} when absent. */
static pb find_str_attr(pb m, uint32_t kvnum, const char *key)
{
    pb none = {NULL, NULL};
    size_t klen = strlen(key);
    pb_field f;
    while (pb_next(&m, &f) > 0) {
        if (f.num != kvnum || f.wt != WT_LEN)
            continue;
        pb kv = f.s, k = none, v = none;
        pb_field g;
        while (pb_next(&kv, &g) > 0) {
            if (g.num == 1 && g.wt == WT_LEN)
                k = g.s;
            else if (g.num == 2 && g.wt == WT_LEN)
                v = g.s;
        }
        if (!k.p || pb_len(k) != klen || memcmp(k.p, key, klen) != 0 || !v.p)
            continue;
        pb_field h;
        while (pb_next(&v, &h) > 0)
            if (h.num == 1 && h.wt == WT_LEN)
                return h.s;
    }
    return none;
}

static int read_resource_spans(reader *rd, pb rs)
{
    pb service = {NULL, NULL};
    pb_field f;
    int rc;
    /* the resource first: it may follow the spans on the wire */
    pb scan = rs;
    while ((rc = pb_next(&scan, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != WT_LEN)
                return fail(rd, "ResourceSpans.resource is not a message");
            pb attrs = f.s;
            pb_field g;
            int arc;
            while ((arc = pb_next(&attrs, &g)) > 0)
                if (g.num == 1 && (g.wt != WT_LEN || check_kv(g.s, 0)))
                    return fail(rd, "a resource attribute is malformed");
            if (arc < 0)
                return fail(rd, "a resource is malformed");
            pb name = find_str_attr(f.s, 1, "service.name");
            if (name.p)
                service = name;
        }
    }
    if (rc < 0)
        return fail(rd, "a ResourceSpans is malformed (cut short or a bad tag)");
    if (rd->nres == rd->capres) {
        uint32_t cap = rd->capres ? rd->capres * 2 : 8;
        pb *p = realloc(rd->services, cap * sizeof *p);
        if (!p)
            return ENOMEM;
        rd->services = p;
        rd->capres = cap;
    }
    uint32_t ri = rd->nres++;
    rd->services[ri] = service;
    while ((rc = pb_next(&rs, &f)) > 0) {
        if (f.num != 2)
            continue;
        if (f.wt != WT_LEN)
            return fail(rd, "ResourceSpans.scope_spans is not a message");
        pb ss = f.s;
        pb_field g;
        int src;
        while ((src = pb_next(&ss, &g)) > 0) {
            if (g.num != 2)
                continue;
            if (g.wt != WT_LEN)
                return fail(rd, "ScopeSpans.spans is not a message");
            int e = read_span(rd, g.s, ri);
            if (e)
                return e;
        }
        if (src < 0)
            return fail(rd, "a ScopeSpans is malformed (cut short or a bad tag)");
    }
    return rc < 0 ? fail(rd, "a ResourceSpans is malformed") : 0;
}

/* --- grouping ------------------------------------------------------------- */

/* trace id, then start, then span id: a group is contiguous, in start order */
static int by_trace_start(const void *a, const void *b, void *ctx)
{
    const ospan *sp = ctx;
    const ospan *x = &sp[*(const uint32_t *)a], *y = &sp[*(const uint32_t *)b];
    int c = memcmp(x->trace.b, y->trace.b, 16);
    if (c)
        return c;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* span id, then position: the first of equal ids is the one that stays */
static int by_id(const void *a, const void *b, void *ctx)
{
    const ospan *sp = ctx;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (sp[i].id != sp[j].id)
        return sp[i].id < sp[j].id ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* The index of the span with id `id` in byid[0..n), or MS_NONE. */
static uint32_t find_id(const ospan *sp, const uint32_t *byid, uint32_t n, uint64_t id)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sp[byid[mid]].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sp[byid[lo]].id == id ? byid[lo] : MS_NONE;
}

/* An epoch time as the trace buffer's monotonic clock. */
static int64_t mono(uint64_t epoch) { return ms_epoch_to_mono((int64_t)epoch); }

/* --- building one trace ------------------------------------------------------ */

typedef struct builder {
    reader *rd;
    const ms_prices *prices;
    const ms_otlp_sink *sink;
    ms_otlpin_attrs as, evattrs;
    ms_buf json;
    uint8_t who_set[3];        /* the row's session, user, tags were found (see put_who) */
} builder;

/* An AnyValue array as JSON text (scalars; nested values become null). */
static void array_json(pb arr, ms_buf *out)
{
    ms_buf_addc(out, '[');
    int first = 1;
    pb_field f;
    while (pb_next(&arr, &f) > 0) {
        if (f.num != 1 || f.wt != WT_LEN)
            continue;
        ms_otlpin_attr v;
        ms_otlpin_read_any_(f.s, &v);
        if (!first)
            ms_buf_addc(out, ',');
        first = 0;
        switch (v.type) {
        case AV_STR: ms_json_str(out, (const char *)v.s.p, pb_len(v.s)); break;
        case AV_BOOL: ms_buf_adds(out, v.i ? "true" : "false"); break;
        case AV_INT: ms_json_int(out, v.i); break;
        case AV_DOUBLE: ms_json_num(out, v.d); break;
        default: ms_buf_adds(out, "null"); break;
        }
    }
    ms_buf_addc(out, ']');
}

static void put_attr(builder *b, ms_trace *t, uint32_t gidx, const ms_otlpin_attr *a)
{
    const char *k = (const char *)a->key.p;
    size_t kl = pb_len(a->key);
    switch (a->type) {
    case AV_STR: ms_span_set_str(t, gidx, k, kl, (const char *)a->s.p, pb_len(a->s)); break;
    case AV_BOOL: ms_span_set_bool(t, gidx, k, kl, (int)a->i); break;
    case AV_INT: ms_span_set_int(t, gidx, k, kl, a->i); break;
    case AV_DOUBLE: ms_span_set_double(t, gidx, k, kl, a->d); break;
    case AV_ARRAY:
        ms_buf_reset(&b->json);
        array_json(a->s, &b->json);
        if (!b->json.oom)
            ms_span_set_str(t, gidx, k, kl, b->json.data, b->json.len);
        break;
    default: break; /* key-value lists and bytes are not kept */
    }
}

/* The event attributes as a JSON object (NULL when none). */
static const char *event_json(builder *b, size_t *len)
{
    if (b->evattrs.n == 0)
        return NULL;
    ms_buf_reset(&b->json);
    ms_buf_addc(&b->json, '{');
    int first = 1;
    for (uint32_t i = 0; i < b->evattrs.n; i++) {
        const ms_otlpin_attr *a = &b->evattrs.a[i];
        if (a->type == AV_NONE || a->type == AV_OTHER)
            continue;
        if (!first)
            ms_buf_addc(&b->json, ',');
        first = 0;
        ms_json_str(&b->json, (const char *)a->key.p, pb_len(a->key));
        ms_buf_addc(&b->json, ':');
        switch (a->type) {
        case AV_STR: ms_json_str(&b->json, (const char *)a->s.p, pb_len(a->s)); break;
        case AV_BOOL: ms_buf_adds(&b->json, a->i ? "true" : "false"); break;
        case AV_INT: ms_json_int(&b->json, a->i); break;
        case AV_DOUBLE: ms_json_num(&b->json, a->d); break;
        case AV_ARRAY: array_json(a->s, &b->json); break;
        }
    }
    ms_buf_addc(&b->json, '}');
    *len = b->json.len;
    return b->json.oom ? NULL : b->json.data;
}

static const char *const KIND_NAMES[] = {NULL, "internal", "server", "client", "producer", "consumer"};


/* Who the trace was for: the root's session, user and tags attributes,
 * which the store keeps as the v6 columns (report --by user, --session,
 * --tag), from the first span of the row, depth first, that names them
 * (Langfuse's and OpenTelemetry's keys, in Langfuse's priority). */
static void put_who(builder *b, ms_trace *t)
{
    static const char *const keys[3][4] = {
        {"langfuse.session.id", "session.id", "gen_ai.conversation.id", NULL},
        {"langfuse.user.id", "user.id", NULL, NULL},
        {"langfuse.trace.tags", NULL, NULL, NULL},
    };
    static const char *const names[3] = {"session", "user", "tags"};
    for (int w = 0; w < 3; w++) {
        for (int k = 0; !b->who_set[w] && keys[w][k]; k++) {
            const ms_otlpin_attr *a = ms_otlpin_attr_(&b->as, keys[w][k]);
            if (!a || (a->type != AV_STR && a->type != AV_ARRAY) || (a->type == AV_STR && !pb_len(a->s)))
                continue;
            if (a->type == AV_ARRAY) { /* tags as a JSON array, as the tags column holds them */
                ms_buf_reset(&b->json);
                array_json(a->s, &b->json);
                if (!b->json.oom)
                    ms_span_set_str(t, 0, names[w], strlen(names[w]), b->json.data, b->json.len);
            } else {
                ms_span_set_str(t, 0, names[w], strlen(names[w]), (const char *)a->s.p, pb_len(a->s));
            }
            b->who_set[w] = 1;
        }
    }
}

/* Fills span gidx from span o: attributes, events, llm usage, error. */
static int fill_span(builder *b, ms_trace *t, uint32_t gidx, const ospan *o)
{
    if (ms_otlpin_collect_attrs_(&b->as, o->body, 9))
        return ENOMEM;
    for (uint32_t i = 0; i < b->as.n; i++)
        put_attr(b, t, gidx, &b->as.a[i]);
    if (o->kind >= 2 && o->kind <= 5)
        ms_span_set_str(t, gidx, "span.kind", 9, KIND_NAMES[o->kind], strlen(KIND_NAMES[o->kind]));
    if (gidx == 0 && b->rd->services[o->resource].p) {
        pb sv = b->rd->services[o->resource];
        ms_span_set_str(t, 0, "service.name", 12, (const char *)sv.p, pb_len(sv));
    }
    put_who(b, t);
    if (ms_otlpin_is_llm_(&b->as)) {
        char model[256], provider[128];
        ms_llm_usage u;
        ms_otlpin_usage_(&b->as, o->start, o->end, b->prices, &u, model, sizeof model, provider, sizeof provider);
        int kind = ms_trace_span(t, gidx)->kind;
        ms_span_set_llm(t, gidx, &u);
        if (gidx == 0)
            ms_trace_span(t, gidx)->kind = (uint8_t)kind; /* a root stays the trace's */
    }
    /* events, and the exception event that types an error */
    pb exc_type = {NULL, NULL}, exc_msg = {NULL, NULL}, exc_stack = {NULL, NULL};
    pb body = o->body;
    pb_field f;
    while (pb_next(&body, &f) > 0) {
        if (f.num != 11 || f.wt != WT_LEN)
            continue;
        pb ev = f.s, name = {NULL, NULL};
        uint64_t time = 0;
        pb_field g;
        while (pb_next(&ev, &g) > 0) {
            if (g.num == 1 && g.wt == WT_I64)
                time = g.v;
            else if (g.num == 2 && g.wt == WT_LEN)
                name = g.s;
        }
        if (ms_otlpin_collect_attrs_(&b->evattrs, f.s, 3))
            return ENOMEM;
        if (name.p && str_is(name, "exception") && !exc_type.p && !exc_msg.p) {
            const ms_otlpin_attr *a;
            if ((a = ms_otlpin_str_attr_(&b->evattrs, "exception.type")))
                exc_type = a->s;
            if ((a = ms_otlpin_str_attr_(&b->evattrs, "exception.message")))
                exc_msg = a->s;
            if ((a = ms_otlpin_str_attr_(&b->evattrs, "exception.stacktrace")))
                exc_stack = a->s;
        }
        if (time < o->start || time > (uint64_t)INT64_MAX)
            time = o->start; /* outside the span: at its start, not a time that cannot be */
        size_t jlen = 0;
        const char *json = event_json(b, &jlen);
        ms_span_event(t, gidx, mono(time), name.p ? (const char *)name.p : "event", name.p ? pb_len(name) : 5,
                      json, jlen);
    }
    if (o->status == 2) {
        char type[128], stack[4096];
        const ms_otlpin_attr *et = ms_otlpin_str_attr_(&b->as, "error.type");
        const char *ty = et && pb_len(et->s) ? cstr(et->s, type, sizeof type)
                         : exc_type.p ? cstr(exc_type, type, sizeof type) : "error";
        pb msg = pb_len(o->status_msg) ? o->status_msg : exc_msg;
        ms_span_fail(t, gidx, 1, ty, msg.p ? (const char *)msg.p : "", msg.p ? pb_len(msg) : 0,
                     exc_stack.p ? cstr(exc_stack, stack, sizeof stack) : NULL);
    }
    return t->oom ? ENOMEM : 0;
}

/* The next span of r's subtree after i, depth first; MS_NONE at its end. */
static uint32_t next_in_tree(const ospan *sp, uint32_t r, uint32_t i)
{
    if (sp[i].first_child != MS_NONE)
        return sp[i].first_child;
    while (i != r && sp[i].next_sibling == MS_NONE)
        i = sp[i].up;
    return i == r ? MS_NONE : sp[i].next_sibling;
}

/* Builds and submits the row rooted at span r: r and its descendants. */
static int build_row(builder *b, uint32_t r)
{
    reader *rd = b->rd;
    ospan *sp = rd->spans;
    ms_trace *t = b->sink->acquire(b->sink->ud);
    if (!t)
        return ENOMEM;
    ospan *root = &sp[r];
    int rc = ms_trace_start(t, (const char *)root->name.p, pb_len(root->name), mono(root->start), &root->trace,
                            root->parent);
    t->salt = 0; /* ids are the sender's (t->ids); readers take a salt of 0 to mean so */
    memset(b->who_set, 0, sizeof b->who_set);
    /* depth first, children in start order: a parent always precedes its children */
    uint32_t n = 0;
    for (uint32_t i = r; rc == 0 && i != MS_NONE;) {
        ospan *o = &sp[i];
        if (i == r) {
            o->gidx = 0;
        } else {
            o->gidx = ms_span_begin(t, sp[o->up].gidx, (const char *)o->name.p, pb_len(o->name), mono(o->start));
            if (o->gidx == MS_NONE)
                rc = ENOMEM;
        }
        n++;
        i = next_in_tree(sp, r, i);
    }
    if (rc == 0 && !(t->ids = malloc(t->cap_spans * sizeof *t->ids)))
        rc = ENOMEM;
    for (uint32_t i = r; rc == 0 && i != MS_NONE;) {
        ospan *o = &sp[i];
        t->ids[o->gidx] = o->id;
        int64_t end = mono(o->end);
        ms_trace_span(t, o->gidx)->end = end ? end : 1; /* 0 would mean open */
        rc = fill_span(b, t, o->gidx, o);
        i = next_in_tree(sp, r, i);
    }
    if (rc == 0) {
        ms_trace_end(t, ms_trace_span(t, 0)->end);
        rd->res->spans += n;
        rd->res->traces++;
    } else {
        ms_trace_reset(t); /* an empty trace: the writer skips it */
        atomic_store(&t->state, MS_TRACE_ENDED);
    }
    b->sink->submit(b->sink->ud, t);
    return rc;
}

/* gidx marks, before a span is built */
#define UNSEEN (MS_NONE - 1)   /* not (yet) reached from a root */
#define DROPPED MS_NONE        /* rejected */

/* Links the spans of group [lo, hi) of `order` into trees and builds a row
 * per root. `byid` is scratch for hi - lo indexes. */
static int build_group(builder *b, const uint32_t *order, uint32_t lo, uint32_t hi, uint32_t *byid)
{
    ospan *sp = b->rd->spans;
    uint32_t n = 0;
    for (uint32_t k = lo; k < hi; k++) {
        ospan *o = &sp[order[k]];
        o->up = o->first_child = o->next_sibling = MS_NONE;
        o->gidx = UNSEEN;
        byid[n++] = order[k];
    }
    qsort_r(byid, n, sizeof *byid, by_id, sp);
    /* a repeated span id: all but the first sent are rejected */
    uint32_t kept = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (kept && sp[byid[kept - 1]].id == sp[byid[k]].id) {
            sp[byid[k]].gidx = DROPPED;
            reject(b->rd, "a span repeating the span id of another span of its trace");
        } else {
            byid[kept++] = byid[k];
        }
    }
    for (uint32_t k = lo; k < hi; k++) {
        ospan *o = &sp[order[k]];
        if (o->gidx != DROPPED && o->parent && o->parent != o->id)
            o->up = find_id(sp, byid, kept, o->parent);
    }
    /* children lists in start order: linked in reverse */
    for (uint32_t k = hi; k-- > lo;) {
        ospan *o = &sp[order[k]];
        if (o->gidx == DROPPED || o->up == MS_NONE)
            continue;
        o->next_sibling = sp[o->up].first_child;
        sp[o->up].first_child = order[k];
    }
    /* what no root reaches sits in a cycle of parents */
    for (uint32_t k = lo; k < hi; k++) {
        uint32_t r = order[k];
        if (sp[r].gidx == DROPPED || sp[r].up != MS_NONE)
            continue;
        for (uint32_t i = r; i != MS_NONE; i = next_in_tree(sp, r, i))
            sp[i].gidx = 0;
    }
    for (uint32_t k = lo; k < hi; k++)
        if (sp[order[k]].gidx == UNSEEN) {
            sp[order[k]].gidx = DROPPED;
            reject(b->rd, "a span in a cycle of parents");
        }
    for (uint32_t k = lo; k < hi; k++) {
        ospan *o = &sp[order[k]];
        if (o->gidx != DROPPED && o->up == MS_NONE) {
            int rc = build_row(b, order[k]);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int ms_otlp_traces_ingest(const uint8_t *body, size_t len, const ms_prices *prices,
                          const ms_otlp_sink *sink, ms_otlp_result *res)
{
    memset(res, 0, sizeof *res);
    reader rd = {.res = res};
    pb req = {body, body + len};
    pb_field f;
    int rc;
    while ((rc = pb_next(&req, &f)) > 0) {
        if (f.num != 1)
            continue;
        if (f.wt != WT_LEN) {
            rc = fail(&rd, "ExportTraceServiceRequest.resource_spans is not a message");
            break;
        }
        if ((rc = read_resource_spans(&rd, f.s)) != 0)
            break;
    }
    if (rc < 0 && !res->message[0])
        fail(&rd, "a field is cut short or has a bad tag");
    uint32_t *order = NULL, *byid = NULL;
    if (rc == 0 && rd.n) {
        order = malloc(rd.n * sizeof *order);
        byid = malloc(rd.n * sizeof *byid);
        if (!order || !byid)
            rc = ENOMEM;
    }
    if (rc == 0 && rd.n) {
        ms_clock_init();
        for (uint32_t i = 0; i < rd.n; i++)
            order[i] = i;
        qsort_r(order, rd.n, sizeof *order, by_trace_start, rd.spans);
        builder b = {.rd = &rd, .prices = prices, .sink = sink};
        for (uint32_t lo = 0; rc == 0 && lo < rd.n;) {
            uint32_t hi = lo + 1;
            while (hi < rd.n && !memcmp(rd.spans[order[lo]].trace.b, rd.spans[order[hi]].trace.b, 16))
                hi++;
            rc = build_group(&b, order, lo, hi, byid);
            lo = hi;
        }
        free(b.as.a);
        free(b.evattrs.a);
        ms_buf_free(&b.json);
    }
    free(order);
    free(byid);
    free(rd.spans);
    free(rd.services);
    return rc;
}
