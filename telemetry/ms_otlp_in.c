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

/* --- protobuf reading ------------------------------------------------------ */

/* A slice of the body. */
typedef struct pb {
    const uint8_t *p, *end;
} pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One field: its number, wire type and value (a slice for WT_LEN). */
typedef struct pb_field {
    uint32_t num;
    int wt;
    uint64_t v;
    pb s;
} pb_field;

static int pb_varint(pb *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The next field of message r: 1, 0 at its end, -1 when malformed. */
static int pb_next(pb *r, pb_field *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t tag;
    if (pb_varint(r, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case WT_VARINT:
        return pb_varint(r, &f->v) ? -1 : 1;
    case WT_I64:
    case WT_I32: {
        size_t n = f->wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return -1;
        f->v = 0;
        for (size_t k = 0; k < n; k++)
            f->v |= (uint64_t)r->p[k] << (8 * k);
        r->p += n;
        return 1;
    }
    case WT_LEN: {
        uint64_t n;
        if (pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return -1;
        f->s.p = r->p;
        f->s.end = r->p + n;
        r->p += n;
        return 1;
    }
    default:
        return -1; /* groups (3, 4) are not in the OTLP schema; 6, 7 do not exist */
    }
}

static size_t pb_len(pb s) { return (size_t)(s.end - s.p); }

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

/* --- one attribute view, for the mapping ---------------------------------- */

enum { AV_NONE, AV_STR, AV_BOOL, AV_INT, AV_DOUBLE, AV_ARRAY, AV_OTHER };

typedef struct oattr {
    pb key;
    int type;
    pb s;        /* AV_STR, AV_ARRAY (the ArrayValue) */
    int64_t i;   /* AV_INT, AV_BOOL */
    double d;    /* AV_DOUBLE */
} oattr;

static void read_any(pb v, oattr *a)
{
    a->type = AV_NONE;
    pb_field f;
    while (pb_next(&v, &f) > 0) {
        switch (f.num) {
        case 1: if (f.wt == WT_LEN) { a->type = AV_STR; a->s = f.s; } break;
        case 2: if (f.wt == WT_VARINT) { a->type = AV_BOOL; a->i = f.v != 0; } break;
        case 3: if (f.wt == WT_VARINT) { a->type = AV_INT; a->i = (int64_t)f.v; } break;
        case 4:
            if (f.wt == WT_I64) {
                a->type = AV_DOUBLE;
                memcpy(&a->d, &f.v, sizeof a->d);
            }
            break;
        case 5: if (f.wt == WT_LEN) { a->type = AV_ARRAY; a->s = f.s; } break;
        default: a->type = AV_OTHER; break;
        }
    }
}

static void read_kv(pb kv, oattr *a)
{
    memset(a, 0, sizeof *a);
    pb_field f;
    while (pb_next(&kv, &f) > 0) {
        if (f.num == 1 && f.wt == WT_LEN)
            a->key = f.s;
        else if (f.num == 2 && f.wt == WT_LEN)
            read_any(f.s, a);
    }
}

/* The attributes of one span, for looking keys up. */
typedef struct attrs {
    oattr *a;
    uint32_t n, cap;
} attrs;

static int collect_attrs(attrs *as, pb m, uint32_t kvnum)
{
    as->n = 0;
    pb_field f;
    while (pb_next(&m, &f) > 0) {
        if (f.num != kvnum || f.wt != WT_LEN)
            continue;
        if (as->n == as->cap) {
            uint32_t cap = as->cap ? as->cap * 2 : 32;
            oattr *p = realloc(as->a, cap * sizeof *p);
            if (!p)
                return ENOMEM;
            as->a = p;
            as->cap = cap;
        }
        read_kv(f.s, &as->a[as->n]);
        if (as->a[as->n].key.p)
            as->n++;
    }
    return 0;
}

static const oattr *attr(const attrs *as, const char *key)
{
    size_t klen = strlen(key);
    for (uint32_t i = as->n; i-- > 0;) /* the last of a repeated key wins */
        if (pb_len(as->a[i].key) == klen && memcmp(as->a[i].key.p, key, klen) == 0 &&
            as->a[i].type != AV_NONE)
            return &as->a[i];
    return NULL;
}

static int str_is(pb s, const char *v)
{
    size_t n = strlen(v);
    return pb_len(s) == n && memcmp(s.p, v, n) == 0;
}

/* A string attribute's value, or NULL. */
static const oattr *str_attr(const attrs *as, const char *key)
{
    const oattr *a = attr(as, key);
    return a && a->type == AV_STR ? a : NULL;
}

/* The first of `keys` that holds a whole number (an int, an integral
 * double or a decimal string); 1 when found. */
static int int_attr(const attrs *as, const char *const *keys, int64_t *out)
{
    for (; *keys; keys++) {
        const oattr *a = attr(as, *keys);
        if (!a)
            continue;
        if (a->type == AV_INT && a->i >= 0) {
            *out = a->i;
            return 1;
        }
        if (a->type == AV_DOUBLE && a->d >= 0 && a->d <= 9e15 && a->d == floor(a->d)) {
            *out = (int64_t)a->d;
            return 1;
        }
        if (a->type == AV_STR && pb_len(a->s) > 0 && pb_len(a->s) < 19) {
            int64_t v = 0;
            const uint8_t *p = a->s.p;
            for (; p < a->s.end && *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
            if (p == a->s.end) {
                *out = v;
                return 1;
            }
        }
    }
    return 0;
}

static int num_attr(const attrs *as, const char *const *keys, double *out)
{
    for (; *keys; keys++) {
        const oattr *a = attr(as, *keys);
        if (a && a->type == AV_DOUBLE && isfinite(a->d) && a->d >= 0) {
            *out = a->d;
            return 1;
        }
        if (a && a->type == AV_INT && a->i >= 0) {
            *out = (double)a->i;
            return 1;
        }
    }
    return 0;
}

/* Copies a string value into buf (NUL-terminated, cut at n - 1). */
static const char *cstr(pb s, char *buf, size_t n)
{
    size_t len = pb_len(s) < n - 1 ? pb_len(s) : n - 1;
    memcpy(buf, s.p, len);
    buf[len] = 0;
    return buf;
}

/* --- time ------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const uint8_t **p, const uint8_t *end, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* An ISO-8601 date-time ("2026-01-01T10:00:00.250Z", an offset instead of
 * Z allowed) as Unix epoch ns; -1 when it is not one. Langfuse's
 * completion_start_time. */
static int64_t parse_iso(pb s)
{
    const uint8_t *p = s.p, *e = s.end;
    int y, mo, d, h, mi, sec;
    if (digits(&p, e, 4, &y) || p >= e || *p++ != '-' || digits(&p, e, 2, &mo) || p >= e || *p++ != '-' ||
        digits(&p, e, 2, &d) || p >= e || (*p != 'T' && *p != 't' && *p != ' ') || !++p ||
        digits(&p, e, 2, &h) || p >= e || *p++ != ':' || digits(&p, e, 2, &mi) || p >= e || *p++ != ':' ||
        digits(&p, e, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    int64_t frac = 0, scale = 1000000000;
    if (p < e && *p == '.') {
        p++;
        for (; p < e && *p >= '0' && *p <= '9'; p++)
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
    }
    int64_t offset = 0;
    if (p < e && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < e && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, e, 2, &oh) || (p < e && *p == ':' && !++p) || digits(&p, e, 2, &om))
            return -1;
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    }
    if (p != e)
        return -1;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    int64_t ns;
    if (__builtin_mul_overflow(secs, INT64_C(1000000000), &ns) || __builtin_add_overflow(ns, frac, &ns))
        return -1; /* past 2262: not a time a span can hold */
    return ns;
}

/* An epoch time as the trace buffer's monotonic clock. */
static int64_t mono(uint64_t epoch) { return ms_epoch_to_mono((int64_t)epoch); }

/* --- building one trace ------------------------------------------------------ */

typedef struct builder {
    reader *rd;
    const ms_prices *prices;
    const ms_otlp_sink *sink;
    attrs as, evattrs;
    ms_buf json;
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
        oattr v;
        read_any(f.s, &v);
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

static void put_attr(builder *b, ms_trace *t, uint32_t gidx, const oattr *a)
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
        const oattr *a = &b->evattrs.a[i];
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

/* Whether the span is an LLM call, by its own words first. */
static int is_llm(const attrs *as)
{
    const oattr *a;
    if ((a = str_attr(as, "langfuse.observation.type")))
        return str_is(a->s, "generation") || str_is(a->s, "GENERATION") || str_is(a->s, "embedding") ||
               str_is(a->s, "EMBEDDING");
    if ((a = str_attr(as, "openinference.span.kind")))
        return str_is(a->s, "LLM") || str_is(a->s, "EMBEDDING");
    if ((a = str_attr(as, "gen_ai.operation.name")))
        return str_is(a->s, "chat") || str_is(a->s, "text_completion") || str_is(a->s, "generate_content") ||
               str_is(a->s, "embeddings") || str_is(a->s, "completion") || str_is(a->s, "generate");
    static const char *const tokens[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                                         "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
                                         "llm.token_count.prompt", "llm.token_count.completion", NULL};
    int64_t n;
    return int_attr(as, tokens, &n) || str_attr(as, "gen_ai.request.model") || str_attr(as, "llm.model_name");
}

static void map_llm(builder *b, ms_trace *t, uint32_t gidx, const ospan *o)
{
    const attrs *as = &b->as;
    static const char *const model_keys[] = {"langfuse.observation.model.name", "gen_ai.response.model",
                                             "gen_ai.request.model", "llm.response.model", "llm.model_name",
                                             "model", NULL};
    static const char *const provider_keys[] = {"gen_ai.provider.name", "gen_ai.system", "llm.provider",
                                                "llm.system", NULL};
    static const char *const in_keys[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                          "llm.token_count.prompt", NULL};
    static const char *const out_keys[] = {"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                           "llm.token_count.completion", NULL};
    static const char *const cr_keys[] = {"gen_ai.usage.cache_read.input_tokens",
                                          "llm.token_count.prompt_details.cache_read", NULL};
    static const char *const cw_keys[] = {"gen_ai.usage.cache_creation.input_tokens",
                                          "gen_ai.usage.cache_write.input_tokens",
                                          "llm.token_count.prompt_details.cache_write", NULL};
    static const char *const cost_keys[] = {"gen_ai.usage.cost", "llm.cost.total", NULL};
    static const char *const ttft_keys[] = {"gen_ai.response.time_to_first_chunk", NULL};
    char model[256] = "", provider[128] = "";
    const oattr *a;
    for (const char *const *k = model_keys; *k; k++)
        if ((a = str_attr(as, *k)) && pb_len(a->s)) {
            cstr(a->s, model, sizeof model);
            break;
        }
    for (const char *const *k = provider_keys; *k; k++)
        if ((a = str_attr(as, *k)) && pb_len(a->s)) {
            cstr(a->s, provider, sizeof provider);
            break;
        }
    int64_t in = 0, out = 0, cr = 0, cw = 0;
    int has_in = int_attr(as, in_keys, &in), has_out = int_attr(as, out_keys, &out);
    int_attr(as, cr_keys, &cr);
    int_attr(as, cw_keys, &cw);
    if (in > MS_TOKENS_MAX) in = MS_TOKENS_MAX;
    if (out > MS_TOKENS_MAX) out = MS_TOKENS_MAX;
    if (cr > MS_TOKENS_MAX) cr = MS_TOKENS_MAX;
    if (cw > MS_TOKENS_MAX) cw = MS_TOKENS_MAX;
    /* the conventions count cached tokens in the input; moonspan's input excludes them */
    in = in - cr - cw > 0 ? in - cr - cw : 0;
    ms_llm_usage u = {
        .provider = provider[0] ? provider : NULL,
        .model = model[0] ? model : NULL,
        .input = in, .output = out, .cache_read = cr, .cache_write = cw,
        .cost_usd = NAN, .ttft_ns = -1,
        .estimated = !has_in && !has_out, /* no usage sent: the zeros are not facts */
    };
    double v;
    if (num_attr(as, cost_keys, &v)) {
        u.cost_usd = v;
    } else if (b->prices && model[0]) {
        const ms_price *p = ms_prices_find(b->prices, model);
        if (p && !u.estimated)
            u.cost_usd = ms_price_cost(p, in, out, cr, cw);
    }
    if (num_attr(as, ttft_keys, &v) && v < 1e6) {
        u.ttft_ns = (int64_t)llround(v * 1e9);
    } else if ((a = str_attr(as, "langfuse.observation.completion_start_time"))) {
        int64_t at = parse_iso(a->s);
        if (at >= (int64_t)o->start && at <= (int64_t)o->end)
            u.ttft_ns = at - (int64_t)o->start;
    }
    int kind = ms_trace_span(t, gidx)->kind;
    ms_span_set_llm(t, gidx, &u);
    if (gidx == 0)
        ms_trace_span(t, gidx)->kind = (uint8_t)kind; /* a root stays the trace's */
}

/* Fills span gidx from span o: attributes, events, llm usage, error. */
static int fill_span(builder *b, ms_trace *t, uint32_t gidx, const ospan *o)
{
    if (collect_attrs(&b->as, o->body, 9))
        return ENOMEM;
    for (uint32_t i = 0; i < b->as.n; i++)
        put_attr(b, t, gidx, &b->as.a[i]);
    if (o->kind >= 2 && o->kind <= 5)
        ms_span_set_str(t, gidx, "span.kind", 9, KIND_NAMES[o->kind], strlen(KIND_NAMES[o->kind]));
    if (gidx == 0 && b->rd->services[o->resource].p) {
        pb sv = b->rd->services[o->resource];
        ms_span_set_str(t, 0, "service.name", 12, (const char *)sv.p, pb_len(sv));
    }
    if (is_llm(&b->as))
        map_llm(b, t, gidx, o);
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
        if (collect_attrs(&b->evattrs, f.s, 3))
            return ENOMEM;
        if (name.p && str_is(name, "exception") && !exc_type.p && !exc_msg.p) {
            const oattr *a;
            if ((a = str_attr(&b->evattrs, "exception.type")))
                exc_type = a->s;
            if ((a = str_attr(&b->evattrs, "exception.message")))
                exc_msg = a->s;
            if ((a = str_attr(&b->evattrs, "exception.stacktrace")))
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
        const oattr *et = str_attr(&b->as, "error.type");
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
