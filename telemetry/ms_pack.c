#include "ms_pack.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- bytes ------------------------------------------------------------------ */

/* A growable byte vector written through a cursor: the encoder's hot loop
 * reserves room once per span and writes without checks. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    int oom;
} bytes;

static uint8_t *reserve(bytes *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

static inline uint8_t *put_v(uint8_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

static inline uint64_t zig(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzig(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static inline uint8_t *put_f8(uint8_t *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        *w++ = (uint8_t)(u >> (8 * i));
    return w;
}

/* Appends a string (v length, bytes). */
static void add_s(bytes *b, const char *s, uint32_t len)
{
    uint8_t *w = reserve(b, 10 + (size_t)len);
    if (!w)
        return;
    w = put_v(w, len);
    if (len)
        memcpy(w, s, len);
    b->len = (size_t)(w - b->p) + len;
}

/* --- encoder -------------------------------------------------------------------- */

/* A slot of the string table's hash: in use for the blob being encoded
 * when its gen is the encoder's, so starting a blob clears nothing. */
typedef struct slot {
    uint64_t hash;
    const char *p;
    uint32_t len, index;
    uint32_t gen;
} slot;

struct ms_pack_encoder {
    slot *slots;
    uint32_t cap;           /* power of two */
    uint32_t gen;           /* of the blob being encoded; never 0 */
    uint32_t nstrings;
    const char *last_p;     /* the last string interned, and its index: */
    uint32_t last_len, last_index; /* sibling spans often share a name */
    const char **strs;
    uint32_t *lens, capstrs;
    bytes head, body, part;     /* the string table; the spans; a span's attrs or events */
};

ms_pack_encoder *ms_pack_encoder_new(void)
{
    return calloc(1, sizeof(ms_pack_encoder));
}

void ms_pack_encoder_free(ms_pack_encoder *e)
{
    if (!e)
        return;
    free(e->slots);
    free(e->strs);
    free(e->lens);
    free(e->head.p);
    free(e->body.p);
    free(e->part.p);
    free(e);
}

static uint64_t hash_bytes(const char *p, uint32_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static int grow_slots(ms_pack_encoder *e)
{
    uint32_t ncap = e->cap ? e->cap * 2 : 64;
    slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (uint32_t i = 0; i < e->cap; i++) {
        slot *o = &e->slots[i];
        if (o->gen != e->gen)
            continue;
        uint32_t j = (uint32_t)o->hash & (ncap - 1);
        while (ns[j].gen == e->gen)
            j = (j + 1) & (ncap - 1);
        ns[j] = *o;
    }
    free(e->slots);
    e->slots = ns;
    e->cap = ncap;
    return 0;
}

/* The string's index in the blob's table, adding it when new; UINT32_MAX
 * on OOM. */
static uint32_t intern(ms_pack_encoder *e, const char *p, uint32_t len)
{
    if (len == e->last_len && e->last_p && memcmp(p, e->last_p, len) == 0)
        return e->last_index;
    if ((e->nstrings + 1) * 2 > e->cap && grow_slots(e))
        return UINT32_MAX;
    uint64_t h = hash_bytes(p, len);
    uint32_t j = (uint32_t)h & (e->cap - 1);
    for (;;) {
        slot *s = &e->slots[j];
        if (s->gen != e->gen)
            break;
        if (s->hash == h && s->len == len && memcmp(s->p, p, len) == 0) {
            e->last_p = s->p;
            e->last_len = len;
            return e->last_index = s->index;
        }
        j = (j + 1) & (e->cap - 1);
    }
    if (e->nstrings == e->capstrs) {
        uint32_t nc = e->capstrs ? e->capstrs * 2 : 64;
        const char **ns = realloc(e->strs, nc * sizeof *ns);
        if (!ns)
            return UINT32_MAX;
        e->strs = ns;
        uint32_t *nl = realloc(e->lens, nc * sizeof *nl);
        if (!nl)
            return UINT32_MAX;
        e->lens = nl;
        e->capstrs = nc;
    }
    e->strs[e->nstrings] = p;
    e->lens[e->nstrings] = len;
    e->slots[j] = (slot){h, p, len, e->nstrings, e->gen};
    e->last_p = p;
    e->last_len = len;
    return e->last_index = e->nstrings++;
}

static uint32_t intern_str(ms_pack_encoder *e, const ms_trace *t, ms_str s)
{
    if (s.off == MS_NONE)
        return intern(e, "", 0);
    return intern(e, t->arena + s.off, s.len);
}

static void reset_encoder(ms_pack_encoder *e)
{
    if (++e->gen == 0) { /* wrapped: slots of 2^32 blobs ago would look in use */
        if (e->cap)
            memset(e->slots, 0, e->cap * sizeof *e->slots);
        e->gen = 1;
    }
    e->last_p = NULL;
    e->nstrings = 0;
    e->body.len = 0;
    e->body.oom = 0;
    e->part.oom = 0;
}

/* Events of the trace, grouped by span: next[i] links the events of one
 * span in order; first[] is found by a scan (events are few). */
/* Appends v(n) v(bytes) and the section built in e->part to the body. */
static void add_section(ms_pack_encoder *e, uint32_t n)
{
    bytes *b = &e->body;
    if (e->part.oom) {
        b->oom = 1;
        return;
    }
    uint8_t *w = reserve(b, 20 + e->part.len);
    if (!w)
        return;
    w = put_v(w, n);
    w = put_v(w, e->part.len);
    memcpy(w, e->part.p, e->part.len);
    b->len = (size_t)(w - b->p) + e->part.len;
}

static void encode_events(ms_pack_encoder *e, const ms_trace *t, const ms_span *sp, uint32_t n)
{
    bytes *b = &e->part;
    uint8_t *w;
    b->len = 0;
    for (uint32_t i = 0; i < t->nevents; i++) {
        const ms_event *ev = &t->events[i];
        if (ev->span != sp->gidx)
            continue;
        uint32_t name = intern_str(e, t, ev->name);
        int has_err = ev->error_type.off != MS_NONE;
        uint32_t etype = has_err ? intern_str(e, t, ev->error_type) : 0;
        if (name == UINT32_MAX || etype == UINT32_MAX) {
            e->body.oom = 1;
            return;
        }
        int has_attrs = ev->attrs_json.off != MS_NONE;
        if (!(w = reserve(b, 32)))
            return;
        w = put_v(w, name);
        w = put_v(w, zig(ev->time - t->start - (sp->start - t->start)));
        *w++ = (uint8_t)(has_attrs | (has_err << 1));
        b->len = (size_t)(w - b->p);
        if (has_attrs)
            add_s(b, t->arena + ev->attrs_json.off, ev->attrs_json.len);
        if (has_err) {
            if (!(w = reserve(b, 10)))
                return;
            b->len = (size_t)(put_v(w, etype) - b->p);
            add_s(b, ms_trace_str(t, ev->error_message), ev->error_message.len);
        }
    }
    add_section(e, n);
}

static void encode_attrs(ms_pack_encoder *e, const ms_trace *t, const ms_span *sp, uint32_t n)
{
    bytes *b = &e->part;
    uint8_t *w;
    b->len = 0;
    for (uint32_t ai = sp->attrs; ai != MS_NONE; ai = t->attrs[ai].next) {
        const ms_attr *a = &t->attrs[ai];
        uint32_t key = intern_str(e, t, a->key);
        if (key == UINT32_MAX || !(w = reserve(b, 24))) {
            e->body.oom = 1;
            return;
        }
        w = put_v(w, key);
        switch (a->type) {
        case MS_ATTR_STRING:
            *w++ = 0;
            b->len = (size_t)(w - b->p);
            add_s(b, t->arena + a->v.s.off, a->v.s.len);
            continue;
        case MS_ATTR_INT:
            *w++ = 1;
            w = put_v(w, zig(a->v.i));
            break;
        case MS_ATTR_DOUBLE:
            *w++ = 2;
            w = put_f8(w, a->v.d);
            break;
        default:
            *w++ = a->v.i ? 4 : 3;
            break;
        }
        b->len = (size_t)(w - b->p);
    }
    add_section(e, n);
}

/* A fold's counts and histogram; see ms_pack.h. */
static int encode_fold(ms_pack_encoder *e, const ms_fold *f)
{
    bytes *b = &e->body, *h = &e->part;
    uint32_t lo = 0, n = 0;
    for (uint32_t i = 0; i < f->hist.n; i++) /* trim the window's empty ends */
        if (f->hist.counts[i]) {
            if (!n)
                lo = i;
            n = i - lo + 1;
        }
    h->len = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *w = reserve(h, 10);
        if (!w)
            return -1;
        h->len = (size_t)(put_v(w, f->hist.counts[lo + i]) - h->p);
    }
    uint8_t *w = reserve(b, 80 + h->len);
    if (!w)
        return -1;
    w = put_v(w, f->count);
    w = put_v(w, f->errors);
    w = put_v(w, (uint64_t)f->total);
    w = put_v(w, f->count ? (uint64_t)f->min : 0);
    w = put_v(w, (uint64_t)f->max);
    w = put_v(w, n ? f->hist.lo + lo : 0);
    w = put_v(w, n);
    w = put_v(w, h->len);
    if (h->len)
        memcpy(w, h->p, h->len);
    b->len = (size_t)(w - b->p) + h->len;
    return 0;
}

long ms_pack_encode(ms_pack_encoder *e, const ms_trace *t, ms_buf *out)
{
    reset_encoder(e);
    bytes *b = &e->body;
    uint32_t prev_gidx = 0;
    int64_t prev_start = t->start;
    long n = 0;
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *sp = &t->spans[i];
        if (sp->end == 0)
            continue; /* open: stays in the trace for a later part */
        uint32_t name = intern_str(e, t, sp->name);
        if (name == UINT32_MAX)
            return -1;
        uint32_t nattrs = 0, nevents = 0;
        for (uint32_t ai = sp->attrs; ai != MS_NONE; ai = t->attrs[ai].next)
            nattrs++;
        for (uint32_t k = 0; k < t->nevents; k++)
            nevents += t->events[k].span == sp->gidx;
        int explicit_id = t->ids != NULL;
        int fold = sp->kind == MS_KIND_FOLD;
        int more = sp->retries || nevents || explicit_id || fold;
        int status = sp->gidx == 0 ? ms_trace_status(t) : sp->status;
        uint8_t flags = (uint8_t)(sp->kind | status << 2 | (nattrs > 0) << 4 | (sp->llm != MS_NONE) << 5 |
                                  (sp->error != MS_NONE) << 6 | more << 7);
        uint8_t *w = reserve(b, 96);
        if (!w)
            return -1;
        w = put_v(w, zig((int64_t)sp->gidx - (int64_t)prev_gidx));
        w = put_v(w, sp->parent == MS_NONE ? 0 : (uint64_t)(sp->gidx - sp->parent));
        w = put_v(w, name);
        w = put_v(w, zig(sp->start - prev_start));
        w = put_v(w, (uint64_t)(sp->end > sp->start ? sp->end - sp->start : 0));
        *w++ = flags;
        if (more) {
            *w++ = (uint8_t)((sp->retries > 0) | (nevents > 0) << 1 | explicit_id << 2 | fold << 3);
            if (explicit_id) {
                uint64_t id = t->ids[i];
                for (int k = 0; k < 8; k++)
                    *w++ = (uint8_t)(id >> (8 * k));
            }
            if (sp->retries) {
                w = put_v(w, sp->retries);
                *w++ = sp->retry_state;
                w = put_v(w, (uint64_t)(sp->backoff_ns > 0 ? sp->backoff_ns : 0));
            }
        }
        b->len = (size_t)(w - b->p);
        if (fold && encode_fold(e, &t->folds[sp->fold]))
            return -1;
        prev_gidx = sp->gidx;
        prev_start = sp->start;
        if (nattrs)
            encode_attrs(e, t, sp, nattrs);
        if (sp->llm != MS_NONE) {
            const ms_llm *l = &t->llm[sp->llm];
            uint32_t prov = intern_str(e, t, l->provider), model = intern_str(e, t, l->model);
            if (prov == UINT32_MAX || model == UINT32_MAX || !(w = reserve(b, 80)))
                return -1;
            int has_cost = !isnan(l->cost_usd), has_ttft = l->ttft_ns >= 0;
            w = put_v(w, prov);
            w = put_v(w, model);
            w = put_v(w, (uint64_t)l->input);
            w = put_v(w, (uint64_t)l->output);
            w = put_v(w, (uint64_t)l->cache_read);
            w = put_v(w, (uint64_t)l->cache_write);
            *w++ = (uint8_t)(l->estimated | l->replayed << 1 | has_cost << 2 | has_ttft << 3);
            if (has_cost)
                w = put_f8(w, l->cost_usd);
            if (has_ttft)
                w = put_v(w, (uint64_t)l->ttft_ns);
            b->len = (size_t)(w - b->p);
        }
        if (sp->error != MS_NONE) {
            const ms_span_error *er = &t->errors[sp->error];
            uint32_t type = intern_str(e, t, er->type);
            if (type == UINT32_MAX || !(w = reserve(b, 12)))
                return -1;
            *w++ = er->own;
            w = put_v(w, type);
            b->len = (size_t)(w - b->p);
            add_s(b, ms_trace_str(t, er->message), er->message.off == MS_NONE ? 0 : er->message.len);
            add_s(b, ms_trace_str(t, er->traceback), er->traceback.off == MS_NONE ? 0 : er->traceback.len);
        }
        if (nevents)
            encode_events(e, t, sp, nevents);
        if (b->oom)
            return -1;
        n++;
    }
    /* the blob: format, string table, spans */
    bytes *head = &e->head;
    head->len = 0;
    head->oom = 0;
    uint8_t *w = reserve(head, 20);
    if (!w)
        return -1;
    *w++ = MS_PACK_FORMAT;
    head->len = (size_t)(put_v(w, e->nstrings) - head->p);
    for (uint32_t i = 0; i < e->nstrings; i++)
        add_s(head, e->strs[i], e->lens[i]);
    if ((w = reserve(head, 10)))
        head->len = (size_t)(put_v(w, (uint64_t)n) - head->p);
    if (head->oom)
        return -1;
    ms_buf_add(out, head->p, head->len);
    ms_buf_add(out, b->p, b->len);
    return out->oom ? -1 : n;
}

/* --- decoder -------------------------------------------------------------------- */

#define CORRUPT(r, why) ((r)->error = (why), -1)



static int get_v_slow(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    if (end - p >= 10) { /* room for the longest: no bound to check per byte */
        for (int i = 0; i < 10; i++) {
            v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
            if (p[i] < 0x80) {
                *pp = p + i + 1;
                *out = v;
                return 0;
            }
        }
        return -1;
    }
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Most varints of a blob are one byte (deltas, indexes, short lengths). */
static inline int get_v(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    return get_v_slow(pp, end, out);
}

static inline int get_u8(const uint8_t **pp, const uint8_t *end, uint8_t *out)
{
    if (*pp >= end)
        return -1;
    *out = *(*pp)++;
    return 0;
}

static int get_f8(const uint8_t **pp, const uint8_t *end, double *out)
{
    if (end - *pp < 8)
        return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)(*pp)[i] << (8 * i);
    memcpy(out, &u, 8);
    *pp += 8;
    return 0;
}

static int get_s(const uint8_t **pp, const uint8_t *end, ms_pstr *out)
{
    uint64_t len;
    if (get_v(pp, end, &len) || len > (uint64_t)(end - *pp))
        return -1;
    out->p = (const char *)*pp;
    out->len = (uint32_t)len;
    *pp += len;
    return 0;
}

/* A string of the table by index (its index in *ix when ix is given). */
static inline int get_ref_ix(const ms_pack_reader *r, const uint8_t **pp, ms_pstr *out, uint32_t *ix)
{
    uint64_t i;
    if (get_v(pp, r->end, &i) || i >= r->nstrings)
        return -1;
    *out = r->strings[i];
    if (ix)
        *ix = (uint32_t)i;
    return 0;
}

static int get_ref(const ms_pack_reader *r, const uint8_t **pp, ms_pstr *out)
{
    return get_ref_ix(r, pp, out, NULL);
}

int ms_pack_open(ms_pack_reader *r, const void *blob, size_t len, uint64_t salt)
{
    r->p = blob;
    r->end = r->p + len;
    r->nstrings = 0;
    r->left = 0;
    r->gidx = 0;
    r->start = 0;
    r->salt = salt;
    r->error = NULL;
    uint8_t format;
    uint64_t n;
    if (!blob || get_u8(&r->p, r->end, &format))
        return CORRUPT(r, "empty spans blob");
    if (format < 1 || format > MS_PACK_FORMAT)
        return CORRUPT(r, "spans blob of an unknown format (from a newer moonspan?)");
    if (get_v(&r->p, r->end, &n) || n > (uint64_t)(r->end - r->p))
        return CORRUPT(r, "spans blob: bad string table");
    if (n > r->cap_strings) {
        ms_pstr *ns = realloc(r->strings, n * sizeof *ns);
        if (!ns)
            return CORRUPT(r, "out of memory reading spans");
        r->strings = ns;
        r->cap_strings = (uint32_t)n;
    }
    for (uint64_t i = 0; i < n; i++)
        if (get_s(&r->p, r->end, &r->strings[i]))
            return CORRUPT(r, "spans blob: a string is cut short");
    r->nstrings = (uint32_t)n;
    if (get_v(&r->p, r->end, &n) || n > (uint64_t)(r->end - r->p))
        return CORRUPT(r, "spans blob: bad span count");
    r->left = (uint32_t)n;
    return 0;
}

/* Reads a section's count and size, and moves past it: its bytes are
 * checked when they are read. Returns 0 or -1. */
static int skip_section(ms_pack_reader *r, uint32_t *n, const uint8_t **start, const uint8_t **end)
{
    uint64_t count, size;
    if (get_v(&r->p, r->end, &count) || get_v(&r->p, r->end, &size) || count > UINT32_MAX ||
        size > (uint64_t)(r->end - r->p) || count > size)
        return -1;
    *n = (uint32_t)count;
    *start = r->p;
    *end = r->p + size;
    r->p += size;
    return 0;
}

static int get_fold(ms_pack_reader *r, ms_span_rec *s)
{
    const uint8_t **pp = &r->p, *end = r->end;
    uint64_t v[8];
    for (int i = 0; i < 8; i++)
        if (get_v(pp, end, &v[i]))
            return -1;
    /* count, errors, total, min, max, first bucket, buckets, bytes */
    if (v[1] > v[0] || v[2] > INT64_MAX || v[3] > v[4] || v[4] > v[2] || v[5] >= MS_HIST_BUCKETS ||
        v[6] > MS_HIST_BUCKETS - v[5] || v[7] > (uint64_t)(end - *pp) || v[6] > v[7])
        return -1;
    s->fold_count = v[0];
    s->fold_errors = v[1];
    s->fold_total = (int64_t)v[2];
    s->fold_min = (int64_t)v[3];
    s->fold_max = (int64_t)v[4];
    s->hist_lo = (uint32_t)v[5];
    s->hist_n = (uint32_t)v[6];
    s->hist = *pp;
    s->hist_end = *pp + v[7];
    *pp += v[7];
    return 0;
}

int ms_pack_fold_hist(const ms_span_rec *s, ms_hist *out)
{
    const uint8_t *p = s->hist;
    for (uint32_t i = 0; i < s->hist_n; i++) {
        uint64_t c;
        if (get_v(&p, s->hist_end, &c))
            return -1;
        if (c && ms_hist_add_bucket(out, s->hist_lo + i, c))
            return -1;
    }
    return p == s->hist_end ? 0 : -1;
}

int ms_pack_next(ms_pack_reader *r, ms_span_rec *s)
{
    if (r->left == 0)
        return r->p == r->end ? 0 : CORRUPT(r, "spans blob: bytes after the last span");
    r->left--;
    const uint8_t **pp = &r->p, *end = r->end;
    uint64_t dg, parent, dstart, dur;
    uint8_t flags, more = 0;
    /* what the optional parts below fill in, absent unless they do */
    s->explicit_id = 0;
    s->retries = 0;
    s->retry_state = MS_RETRY_NONE;
    s->backoff_ns = 0;
    s->has_llm = s->has_error = 0;
    s->error_own = 0;
    s->estimated = s->replayed = 0;
    s->nattrs = s->nevents = 0;
    s->attrs = s->events = s->attrs_end = s->events_end = NULL;
    s->fold_count = s->fold_errors = 0;
    s->fold_total = s->fold_min = s->fold_max = 0;
    s->hist_lo = s->hist_n = 0;
    s->hist = s->hist_end = NULL;
    if (get_v(pp, end, &dg) || get_v(pp, end, &parent) || get_ref_ix(r, pp, &s->name, &s->name_ix) ||
        get_v(pp, end, &dstart) || get_v(pp, end, &dur) || get_u8(pp, end, &flags))
        return CORRUPT(r, "spans blob: a span is cut short");
    int64_t gidx = (int64_t)r->gidx + unzig(dg);
    if (gidx < 0 || gidx > UINT32_MAX - 1 || parent > (uint64_t)gidx || dur > INT64_MAX)
        return CORRUPT(r, "spans blob: a span index is out of range");
    s->gidx = (uint32_t)gidx;
    s->parent = parent ? (uint32_t)(gidx - (int64_t)parent) : MS_NONE;
    r->gidx = s->gidx;
    r->start += unzig(dstart);
    s->start = r->start;
    s->duration = (int64_t)dur;
    s->kind = flags & 3;
    s->status = (flags >> 2) & 3;

    s->cost_usd = NAN;
    s->ttft_ns = -1;
    if (flags & 0x80) {
        if (get_u8(pp, end, &more) || more > 15)
            return CORRUPT(r, "spans blob: bad flags");
        if (more & 4) {
            if (end - *pp < 8)
                return CORRUPT(r, "spans blob: a span id is cut short");
            uint64_t id = 0;
            for (int i = 0; i < 8; i++)
                id |= (uint64_t)(*pp)[i] << (8 * i);
            *pp += 8;
            if (!id)
                return CORRUPT(r, "spans blob: a span id of 0");
            s->explicit_id = id;
        }
        if (more & 1) {
            uint64_t n, backoff;
            if (get_v(pp, end, &n) || n > UINT32_MAX || get_u8(pp, end, &s->retry_state) ||
                s->retry_state > MS_RETRY_FAILED || get_v(pp, end, &backoff) || backoff > INT64_MAX)
                return CORRUPT(r, "spans blob: bad retries");
            s->retries = (uint32_t)n;
            s->backoff_ns = (int64_t)backoff;
        }
        if ((more & 8) && get_fold(r, s))
            return CORRUPT(r, "spans blob: bad fold");
    }
    if ((s->kind == MS_KIND_FOLD) != ((more & 8) != 0))
        return CORRUPT(r, "spans blob: a fold without its counts, or counts on a span");
    if ((flags & 0x10) && skip_section(r, &s->nattrs, &s->attrs, &s->attrs_end))
        return CORRUPT(r, "spans blob: bad attributes");
    if (flags & 0x20) {
        uint64_t tok[4], ttft;
        uint8_t lf;
        s->has_llm = 1;
        if (get_ref(r, pp, &s->provider) || get_ref(r, pp, &s->model))
            return CORRUPT(r, "spans blob: bad llm record");
        for (int i = 0; i < 4; i++)
            if (get_v(pp, end, &tok[i]) || tok[i] > (uint64_t)MS_TOKENS_MAX)
                return CORRUPT(r, "spans blob: bad token count");
        if (get_u8(pp, end, &lf) || lf > 15)
            return CORRUPT(r, "spans blob: bad llm flags");
        s->input = (int64_t)tok[0];
        s->output = (int64_t)tok[1];
        s->cache_read = (int64_t)tok[2];
        s->cache_write = (int64_t)tok[3];
        s->estimated = lf & 1;
        s->replayed = (lf >> 1) & 1;
        if ((lf & 4) && get_f8(pp, end, &s->cost_usd))
            return CORRUPT(r, "spans blob: bad cost");
        if (lf & 8) {
            if (get_v(pp, end, &ttft) || ttft > INT64_MAX)
                return CORRUPT(r, "spans blob: bad time to first token");
            s->ttft_ns = (int64_t)ttft;
        }
    }
    if (flags & 0x40) {
        s->has_error = 1;
        if (get_u8(pp, end, &s->error_own) || s->error_own > 1 || get_ref(r, pp, &s->error_type) ||
            get_s(pp, end, &s->error_message) || get_s(pp, end, &s->error_traceback))
            return CORRUPT(r, "spans blob: bad error record");
    }
    if ((more & 2) && skip_section(r, &s->nevents, &s->events, &s->events_end))
        return CORRUPT(r, "spans blob: bad events");
    return 1;
}

void ms_pack_reader_free(ms_pack_reader *r)
{
    free(r->strings);
    r->strings = NULL;
    r->cap_strings = r->nstrings = 0;
}

/* A string of the table by index, read within `end`. */
static int get_ref_in(const ms_pack_reader *r, const uint8_t **pp, const uint8_t *end, ms_pstr *out)
{
    uint64_t i;
    if (get_v(pp, end, &i) || i >= r->nstrings)
        return -1;
    *out = r->strings[i];
    return 0;
}

int ms_pack_attr_at(const ms_pack_reader *r, const uint8_t **pp, const uint8_t *end, ms_attr_rec *a)
{
    uint8_t type;
    uint64_t v;
    memset(a, 0, sizeof *a);
    if (get_ref_in(r, pp, end, &a->key) || get_u8(pp, end, &type))
        return -1;
    switch (type) {
    case 0:
        a->type = MS_ATTR_STRING;
        return get_s(pp, end, &a->s);
    case 1:
        a->type = MS_ATTR_INT;
        if (get_v(pp, end, &v))
            return -1;
        a->i = unzig(v);
        return 0;
    case 2:
        a->type = MS_ATTR_DOUBLE;
        return get_f8(pp, end, &a->d);
    case 3:
    case 4:
        a->type = MS_ATTR_BOOL;
        a->i = type == 4;
        return 0;
    default:
        return -1;
    }
}

int ms_pack_event_at(const ms_pack_reader *r, const uint8_t **pp, const uint8_t *end, int64_t span_start,
                     ms_event_rec *e)
{
    uint64_t dt;
    uint8_t f;
    memset(e, 0, sizeof *e);
    if (get_ref_in(r, pp, end, &e->name) || get_v(pp, end, &dt) || get_u8(pp, end, &f) || f > 3)
        return -1;
    e->time = span_start + unzig(dt);
    if ((f & 1) && get_s(pp, end, &e->attrs_json))
        return -1;
    if (f & 2) {
        e->has_error = 1;
        if (get_ref_in(r, pp, end, &e->error_type) || get_s(pp, end, &e->error_message))
            return -1;
    }
    return 0;
}

int ms_pack_attrs(const ms_pack_reader *r, const ms_span_rec *span,
                  int (*fn)(void *ud, const ms_attr_rec *a), void *ud)
{
    const uint8_t *p = span->attrs;
    for (uint32_t i = 0; i < span->nattrs; i++) {
        ms_attr_rec a;
        if (ms_pack_attr_at(r, &p, span->attrs_end, &a))
            return -1;
        if (fn(ud, &a))
            return 1;
    }
    return p == span->attrs_end || span->nattrs == 0 ? 0 : -1;
}

int ms_pack_events(const ms_pack_reader *r, const ms_span_rec *span,
                   int (*fn)(void *ud, const ms_event_rec *e), void *ud)
{
    const uint8_t *p = span->events;
    for (uint32_t i = 0; i < span->nevents; i++) {
        ms_event_rec e;
        if (ms_pack_event_at(r, &p, span->events_end, span->start, &e))
            return -1;
        if (fn(ud, &e))
            return 1;
    }
    return p == span->events_end || span->nevents == 0 ? 0 : -1;
}

typedef struct json_out {
    ms_buf *b;
    int first;
} json_out;

static int attr_json(void *ud, const ms_attr_rec *a)
{
    json_out *j = ud;
    if (!j->first)
        ms_buf_addc(j->b, ',');
    j->first = 0;
    ms_json_str(j->b, a->key.p, a->key.len);
    ms_buf_addc(j->b, ':');
    switch (a->type) {
    case MS_ATTR_STRING: ms_json_str(j->b, a->s.p, a->s.len); break;
    case MS_ATTR_INT: ms_json_int(j->b, a->i); break;
    case MS_ATTR_DOUBLE: ms_json_num(j->b, a->d); break;
    default: ms_buf_adds(j->b, a->i ? "true" : "false"); break;
    }
    return 0;
}

int ms_pack_attrs_json(const ms_pack_reader *r, const ms_span_rec *span, ms_buf *out)
{
    if (span->nattrs == 0)
        return 0;
    json_out j = {out, 1};
    ms_buf_addc(out, '{');
    if (ms_pack_attrs(r, span, attr_json, &j) < 0)
        return -1;
    ms_buf_addc(out, '}');
    return out->oom ? -1 : 0;
}
