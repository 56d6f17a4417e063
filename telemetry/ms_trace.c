#include "ms_trace.h"

#include "ms_digest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Grows *arr to hold at least `need` elements. Returns 0 or ENOMEM. */
int ms_trace_grow_(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint64_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX - 1)
        return ENOMEM;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return ENOMEM;
    *arr = p;
    *cap = (uint32_t)ncap;
    return 0;
}

#define GROW(t, field, count, cap) \
    (ms_trace_grow_((void **)&(t)->field, &(t)->cap, (t)->count + 1, sizeof *(t)->field) ? ((t)->oom = 1) : 0)

/* --- filters (ms_trace_set_filters) ------------------------------------ */

static ms_trace_filter_fn filter_errors, filter_values;
static const void *filter_ctx;
static _Thread_local ms_buf filtered; /* reused: a filter allocates once per thread */

void ms_trace_set_filters(ms_trace_filter_fn errors, ms_trace_filter_fn values, const void *ctx)
{
    filter_errors = errors;
    filter_values = values;
    filter_ctx = ctx;
    if (!errors && !values)
        ms_buf_free(&filtered); /* this thread's: the one that records */
}

/* s[0..*n) through fn: the filtered text (valid until the next call on
 * this thread) with *n updated, or s itself when fn changed nothing. */
static const char *filter(ms_trace_filter_fn fn, const char *s, size_t *n)
{
    if (!fn || !s)
        return s;
    ms_buf_reset(&filtered);
    if (!fn(filter_ctx, s, *n, &filtered) || filtered.oom)
        return s;
    *n = filtered.len;
    return filtered.data ? filtered.data : "";
}

/* Copies s into the arena, NUL-terminated, so ms_trace_str gives a C string. */
ms_str ms_trace_put_(ms_trace *t, const char *s, size_t len)
{
    ms_str r = {MS_NONE, 0};
    uint64_t need = (uint64_t)t->arena_len + len + 1;
    if (need > UINT32_MAX - 1) {
        t->oom = 1;
        return r;
    }
    if (need > t->arena_cap) {
        uint64_t cap = t->arena_cap ? t->arena_cap : 512; /* a pooled buffer per queued trace: most need little */
        while (cap < need)
            cap *= 2;
        if (cap > UINT32_MAX - 1)
            cap = UINT32_MAX - 1;
        char *p = realloc(t->arena, cap);
        if (!p) {
            t->oom = 1;
            return r;
        }
        t->arena = p;
        t->arena_cap = (uint32_t)cap;
    }
    r.off = t->arena_len;
    r.len = (uint32_t)len;
    if (len)
        memcpy(t->arena + r.off, s, len);
    t->arena[r.off + len] = 0;
    t->arena_len += (uint32_t)len + 1;
    return r;
}

static ms_str put_cstr(ms_trace *t, const char *s)
{
    if (!s) {
        ms_str none = {MS_NONE, 0};
        return none;
    }
    return ms_trace_put_(t, s, strlen(s));
}

/* put_cstr of s[0..n) through filter fn. */
static ms_str put_filtered(ms_trace *t, ms_trace_filter_fn fn, const char *s, size_t n)
{
    if (!s)
        return put_cstr(t, NULL);
    s = filter(fn, s, &n);
    return ms_trace_put_(t, s, n);
}

void ms_trace_reset(ms_trace *t)
{
    t->nspans = t->nattrs = t->nevents = t->nllm = t->nerrors = t->nfolds = t->nprof = 0;
    t->prof_last = 0;
    t->base = t->npinned = 0;
    t->arena_len = 0;
    memset(&t->manual, 0, sizeof t->manual);
    t->manual_errors = 0;
    t->oom = 0;
    t->sampled_out = 0;
    t->remote_parent = 0;
    t->run_id = 0;
    t->start = t->last_cut = 0;
    t->parts = t->cut_spans = 0;
    memset(&t->cut_totals, 0, sizeof t->cut_totals);
    t->cut_totals.cost_usd = NAN;
    t->part = MS_PART_WHOLE;
    t->part_seq = 0;
    t->part_time = 0;
    free(t->ids); /* only migrated or imported traces have them */
    t->ids = NULL;
    if (t->digest)
        ms_digest_reset(t->digest);
    t->keep_digest = 0;
}

ms_span *ms_trace_pinned_(const ms_trace *t, uint32_t gidx)
{
    for (uint32_t i = 0; i < t->npinned; i++)
        if (t->spans[i].gidx == gidx)
            return &t->spans[i];
    return NULL;
}

uint64_t ms_span_id(const ms_trace *t, uint32_t gidx)
{
    return ms_span_id_derive(t->salt, gidx);
}

void ms_trace_free(ms_trace *t)
{
    free(t->spans);
    free(t->attrs);
    free(t->events);
    free(t->llm);
    free(t->errors);
    for (uint32_t i = 0; i < t->cap_folds; i++)
        ms_hist_free(&t->folds[i].hist);
    free(t->folds);
    free(t->prof);
    free(t->arena);
    free(t->ids);
    if (t->digest)
        ms_digest_free(t->digest);
    free(t->digest);
    memset(t, 0, sizeof *t);
}

int ms_trace_start(ms_trace *t, const char *name, size_t len, int64_t now,
                   const ms_trace_id *join, uint64_t remote_parent)
{
    ms_trace_reset(t);
    if (join) {
        t->id = *join;
        t->remote_parent = remote_parent;
    } else {
        ms_trace_id_new(&t->id);
    }
    t->salt = ms_span_id_new();
    t->start = t->last_cut = now;
    uint32_t root = ms_span_begin(t, MS_NONE, name, len, now);
    if (root == MS_NONE)
        return ENOMEM;
    t->spans[0].kind = MS_KIND_TRACE;
    atomic_store(&t->state, MS_TRACE_OPEN);
    return 0;
}

void ms_span_fail(ms_trace *t, uint32_t gidx, int own, const char *type,
                  const char *message, size_t message_len, const char *traceback)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (!s || s->error != MS_NONE || GROW(t, errors, nerrors, cap_errors))
        return;
    ms_span_error *e = &t->errors[t->nerrors];
    e->type = put_filtered(t, filter_errors, type, type ? strlen(type) : 0);
    if (message)
        e->message = put_filtered(t, filter_errors, message, message_len);
    else
        e->message = put_cstr(t, NULL);
    e->traceback = put_filtered(t, filter_errors, traceback, traceback ? strlen(traceback) : 0);
    e->own = own ? 1 : 0;
    s->error = t->nerrors++;
    s->status = MS_STATUS_ERROR;
}

void ms_span_interrupted(ms_trace *t, uint32_t gidx)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (s && s->status == MS_STATUS_OK)
        s->status = MS_STATUS_INTERRUPTED;
}

/* Finds attribute `key` of span gidx, or appends a new one; NULL on OOM
 * or when the span is no longer in the buffer. */
static ms_attr *attr_slot(ms_trace *t, uint32_t gidx, const char *key, size_t klen)
{
    ms_span *sp = ms_trace_span(t, gidx);
    if (!sp)
        return NULL;
    uint32_t *link = &sp->attrs;
    while (*link != MS_NONE) {
        ms_attr *a = &t->attrs[*link];
        if (a->key.len == klen && memcmp(t->arena + a->key.off, key, klen) == 0)
            return a;
        link = &a->next;
    }
    /* link points into t->attrs or at sp->attrs; remember which before growing */
    uint32_t link_attr = MS_NONE;
    if (link != &sp->attrs)
        link_attr = (uint32_t)(((char *)link - (char *)t->attrs - offsetof(ms_attr, next)) / sizeof(ms_attr));
    if (GROW(t, attrs, nattrs, cap_attrs))
        return NULL;
    ms_str k = ms_trace_put_(t, key, klen);
    if (k.off == MS_NONE)
        return NULL;
    uint32_t ai = t->nattrs++;
    ms_attr *a = &t->attrs[ai];
    a->next = MS_NONE;
    a->key = k;
    if (link_attr == MS_NONE)
        sp->attrs = ai;
    else
        t->attrs[link_attr].next = ai;
    return a;
}

/* Sets a string attribute as given (already filtered: copying a part). */
static void set_str(ms_trace *t, uint32_t i, const char *key, size_t klen, const char *v, size_t vlen)
{
    ms_str s = ms_trace_put_(t, v, vlen);
    ms_attr *a;
    if (s.off == MS_NONE || !(a = attr_slot(t, i, key, klen)))
        return;
    a->type = MS_ATTR_STRING;
    a->v.s = s;
}

/* The root's session, user and tags are the trace's identity columns
 * (ms_store_write.c): ids the script chose, which `--user` and `report
 * --by user` must see as given, so they are not filtered. */
static int identity_key(uint32_t i, const char *key, size_t klen)
{
    return i == 0 && ((klen == 4 && memcmp(key, "user", 4) == 0) || (klen == 7 && memcmp(key, "session", 7) == 0) ||
                      (klen == 4 && memcmp(key, "tags", 4) == 0));
}

void ms_span_set_str(ms_trace *t, uint32_t i, const char *key, size_t klen,
                     const char *v, size_t vlen)
{
    if (filter_values && !identity_key(i, key, klen))
        v = filter(filter_values, v, &vlen);
    set_str(t, i, key, klen, v, vlen);
}

void ms_span_set_int(ms_trace *t, uint32_t i, const char *key, size_t klen, int64_t v)
{
    ms_attr *a = attr_slot(t, i, key, klen);
    if (!a)
        return;
    a->type = MS_ATTR_INT;
    a->v.i = v;
}

void ms_span_set_double(ms_trace *t, uint32_t i, const char *key, size_t klen, double v)
{
    ms_attr *a = attr_slot(t, i, key, klen);
    if (!a)
        return;
    a->type = MS_ATTR_DOUBLE;
    a->v.d = v;
}

void ms_span_set_bool(ms_trace *t, uint32_t i, const char *key, size_t klen, int v)
{
    ms_attr *a = attr_slot(t, i, key, klen);
    if (!a)
        return;
    a->type = MS_ATTR_BOOL;
    a->v.i = v ? 1 : 0;
}

void ms_span_event(ms_trace *t, uint32_t gidx, int64_t now, const char *name,
                   size_t len, const char *attrs_json, size_t attrs_len)
{
    if (!ms_trace_span(t, gidx) || GROW(t, events, nevents, cap_events))
        return;
    ms_event *e = &t->events[t->nevents];
    e->span = gidx;
    e->time = now;
    e->name = ms_trace_put_(t, name, len);
    if (attrs_json)
        e->attrs_json = put_filtered(t, filter_values, attrs_json, attrs_len);
    else
        e->attrs_json = put_cstr(t, NULL);
    e->error_type = e->error_message = put_cstr(t, NULL);
    if (!t->oom)
        t->nevents++;
}

void ms_span_set_llm(ms_trace *t, uint32_t gidx, const ms_llm_usage *u)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (!s)
        return;
    if (s->llm == MS_NONE) {
        if (GROW(t, llm, nllm, cap_llm))
            return;
        s->llm = t->nllm++;
    }
    ms_llm *l = &t->llm[s->llm];
    l->provider = put_cstr(t, u->provider);
    l->model = put_cstr(t, u->model);
    l->input = u->input;
    l->output = u->output;
    l->cache_read = u->cache_read;
    l->cache_write = u->cache_write;
    l->cost_usd = u->cost_usd;
    l->ttft_ns = u->ttft_ns;
    l->estimated = u->estimated ? 1 : 0;
    l->replayed = u->replayed ? 1 : 0;
    s->kind = MS_KIND_LLM;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

void ms_span_add_retries(ms_trace *t, uint32_t gidx, uint32_t retries, int succeeded,
                         int64_t backoff_ns)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (!s || retries == 0)
        return;
    s->retries = retries > UINT32_MAX - s->retries ? UINT32_MAX : s->retries + retries;
    s->retry_state = succeeded ? MS_RETRY_SUCCEEDED : MS_RETRY_FAILED;
    if (backoff_ns > 0)
        s->backoff_ns = add_sat(s->backoff_ns, backoff_ns);
}

static void add_tokens(ms_tokens *to, const ms_tokens *tok)
{
    to->input = add_sat(to->input, tok->input);
    to->output = add_sat(to->output, tok->output);
    to->cache_read = add_sat(to->cache_read, tok->cache_read);
    to->cache_write = add_sat(to->cache_write, tok->cache_write);
}

void ms_trace_add_tokens(ms_trace *t, const ms_tokens *tok)
{
    add_tokens(&t->manual, tok);
}

void ms_trace_add_error(ms_trace *t, int64_t now, const char *type, const char *message, size_t len)
{
    uint32_t before = t->nevents;
    ms_span_event(t, 0, now, "error", 5, NULL, 0);
    if (t->nevents == before)
        return; /* out of memory: t->oom says the trace is incomplete */
    ms_event *e = &t->events[before];
    e->error_type = put_filtered(t, filter_errors, type ? type : "error", strlen(type ? type : "error"));
    e->error_message = put_filtered(t, filter_errors, message ? message : "", message ? len : 0);
    t->manual_errors++;
}

static void close_open_spans(ms_trace *t, int64_t now, int status)
{
    for (uint32_t i = 0; i < t->nspans; i++) {
        if (t->spans[i].end == 0) {
            t->spans[i].end = now;
            if (t->spans[i].status == MS_STATUS_OK)
                t->spans[i].status = (uint8_t)status;
        }
    }
}

/* The trace has ended: it goes to the writer whole, or as its last part. */
static void mark_ended(ms_trace *t)
{
    t->part = t->parts ? MS_PART_LAST : MS_PART_WHOLE;
    t->part_seq = t->parts;
    atomic_store(&t->state, MS_TRACE_ENDED);
}

void ms_trace_end(ms_trace *t, int64_t now)
{
    ms_span *root = ms_trace_span(t, 0);
    if (root && root->end == 0)
        root->end = now;
    close_open_spans(t, now, MS_STATUS_INCOMPLETE);
    mark_ended(t);
}

void ms_trace_abort(ms_trace *t, int64_t now, int status)
{
    close_open_spans(t, now, status);
    mark_ended(t);
}

/* Adds the llm records and own errors of the spans of `t` that `pick`
 * selects (all when NULL) to `out`. */
static void add_span_totals(const ms_trace *t, int ended_only, ms_trace_totals *out)
{
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *s = &t->spans[i];
        if (ended_only && s->end == 0)
            continue;
        if (s->llm != MS_NONE) {
            const ms_llm *l = &t->llm[s->llm];
            ms_tokens used = {l->input, l->output, l->cache_read, l->cache_write};
            add_tokens(&out->tokens, &used);
            if (isnan(l->cost_usd))
                out->unknown_cost_calls++;
            else
                out->cost_usd = isnan(out->cost_usd) ? l->cost_usd : out->cost_usd + l->cost_usd;
            if (l->replayed) {
                out->replayed_calls++;
                if (!isnan(l->cost_usd))
                    out->replayed_cost_usd += l->cost_usd;
            }
            out->llm_calls++;
        }
        if (s->kind == MS_KIND_FOLD)
            out->errors += (uint32_t)t->folds[s->fold].errors;
        else if (s->error != MS_NONE)
            out->errors += t->errors[s->error].own;
    }
}

void ms_trace_totals_get(const ms_trace *t, ms_trace_totals *out)
{
    *out = t->cut_totals;
    add_tokens(&out->tokens, &t->manual);
    out->errors += t->manual_errors;
    add_span_totals(t, 0, out);
}

int ms_trace_status(const ms_trace *t)
{
    if (t->manual_errors)
        return MS_STATUS_ERROR;
    const ms_span *root = ms_trace_span(t, 0);
    return root ? root->status : MS_STATUS_OK;
}

int ms_span_status(const ms_trace *t, uint32_t gidx)
{
    if (gidx == 0)
        return ms_trace_status(t);
    const ms_span *s = ms_trace_span(t, gidx);
    return s ? s->status : MS_STATUS_OK;
}

const char *ms_kind_name(int kind)
{
    static const char *const names[] = {"trace", "span", "llm", "fold"};
    return kind >= 0 && kind <= MS_KIND_FOLD ? names[kind] : "?";
}

const char *ms_status_name(int status)
{
    static const char *const names[] = {"ok", "error", "interrupted", "incomplete"};
    return status >= 0 && status <= MS_STATUS_INCOMPLETE ? names[status] : "?";
}

/* --- folds --------------------------------------------------------------- */

/* A new fold slot; slots past the old capacity start empty, so their
 * histograms can be freed whether or not they were used. */
static ms_fold *new_fold(ms_trace *t)
{
    if (t->nfolds == t->cap_folds) {
        uint32_t cap = t->cap_folds ? t->cap_folds * 2 : 4;
        ms_fold *f = realloc(t->folds, cap * sizeof *f);
        if (!f) {
            t->oom = 1;
            return NULL;
        }
        memset(f + t->cap_folds, 0, (cap - t->cap_folds) * sizeof *f);
        t->folds = f;
        t->cap_folds = cap;
    }
    ms_fold *f = &t->folds[t->nfolds];
    ms_hist_reset(&f->hist);
    f->count = f->errors = 0;
    f->total = 0;
    f->min = INT64_MAX;
    f->max = 0;
    return f;
}

uint32_t ms_fold_open(ms_trace *t, uint32_t parent, const char *name, size_t len, int64_t now)
{
    for (uint32_t i = t->nfolds; i-- > 0;) {
        const ms_span *s = ms_trace_span(t, t->folds[i].gidx);
        if (s && s->parent == parent && s->name.len == len &&
            memcmp(t->arena + s->name.off, name, len) == 0)
            return t->folds[i].gidx;
    }
    ms_fold *f = new_fold(t);
    if (!f)
        return MS_NONE;
    uint32_t gidx = ms_span_begin(t, parent, name, len, now);
    if (gidx == MS_NONE)
        return MS_NONE;
    ms_span *s = ms_trace_span(t, gidx);
    s->kind = MS_KIND_FOLD;
    s->fold = t->nfolds++;
    s->end = now; /* ended until a repetition runs */
    f->gidx = gidx;
    return gidx;
}

void ms_fold_end(ms_trace *t, uint32_t gidx, int64_t start, int64_t now, int failed)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (!s || s->kind != MS_KIND_FOLD)
        return;
    ms_fold *f = &t->folds[s->fold];
    int64_t d = now > start ? now - start : 0;
    f->count++;
    f->errors += failed != 0;
    f->total += d;
    if (d < f->min)
        f->min = d;
    if (d > f->max)
        f->max = d;
    if (ms_hist_add(&f->hist, d))
        t->oom = 1;
    s->end = now;
}

/* --- cutting a long trace into parts ------------------------------------ */

#define SWAP(a, b)                 \
    do {                           \
        __typeof__(a) tmp_ = (a);  \
        (a) = (b);                 \
        (b) = tmp_;                \
    } while (0)

/* Exchanges the recorded contents (not the identity) of two buffers. */
static void swap_storage(ms_trace *a, ms_trace *b)
{
    SWAP(a->spans, b->spans);
    SWAP(a->nspans, b->nspans);
    SWAP(a->cap_spans, b->cap_spans);
    SWAP(a->base, b->base);
    SWAP(a->npinned, b->npinned);
    SWAP(a->attrs, b->attrs);
    SWAP(a->nattrs, b->nattrs);
    SWAP(a->cap_attrs, b->cap_attrs);
    SWAP(a->events, b->events);
    SWAP(a->nevents, b->nevents);
    SWAP(a->cap_events, b->cap_events);
    SWAP(a->llm, b->llm);
    SWAP(a->nllm, b->nllm);
    SWAP(a->cap_llm, b->cap_llm);
    SWAP(a->errors, b->errors);
    SWAP(a->nerrors, b->nerrors);
    SWAP(a->cap_errors, b->cap_errors);
    SWAP(a->folds, b->folds);
    SWAP(a->nfolds, b->nfolds);
    SWAP(a->cap_folds, b->cap_folds);
    SWAP(a->prof, b->prof);
    SWAP(a->nprof, b->nprof);
    SWAP(a->cap_prof, b->cap_prof);
    SWAP(a->prof_last, b->prof_last);
    SWAP(a->arena, b->arena);
    SWAP(a->arena_len, b->arena_len);
    SWAP(a->arena_cap, b->arena_cap);
}

static ms_str copy_str(ms_trace *to, const ms_trace *from, ms_str s)
{
    if (s.off == MS_NONE)
        return s;
    return ms_trace_put_(to, from->arena + s.off, s.len);
}

/* Appends open span `src` of `from`, with everything recorded on it, to
 * the pinned spans of `to`. */
static void pin_span(ms_trace *to, const ms_trace *from, const ms_span *src)
{
    if (GROW(to, spans, nspans, cap_spans))
        return;
    ms_span *d = &to->spans[to->nspans];
    *d = *src;
    d->name = copy_str(to, from, src->name);
    d->attrs = d->llm = d->error = MS_NONE;
    d->fold = MS_NONE;
    to->nspans++;
    to->npinned++;
    if (src->kind == MS_KIND_FOLD) { /* a repetition is running: it goes on in `to` */
        ms_fold *f = new_fold(to);
        if (f) {
            const ms_fold *o = &from->folds[src->fold];
            ms_hist h = f->hist;
            *f = *o;
            f->hist = h;
            if (ms_hist_merge(&f->hist, &o->hist))
                to->oom = 1;
            to->spans[to->nspans - 1].fold = to->nfolds++;
        }
    }
    for (uint32_t ai = src->attrs; ai != MS_NONE; ai = from->attrs[ai].next) {
        const ms_attr *a = &from->attrs[ai];
        const char *k = from->arena + a->key.off;
        switch (a->type) {
        case MS_ATTR_STRING:
            set_str(to, d->gidx, k, a->key.len, from->arena + a->v.s.off, a->v.s.len);
            break;
        case MS_ATTR_INT: ms_span_set_int(to, d->gidx, k, a->key.len, a->v.i); break;
        case MS_ATTR_DOUBLE: ms_span_set_double(to, d->gidx, k, a->key.len, a->v.d); break;
        default: ms_span_set_bool(to, d->gidx, k, a->key.len, (int)a->v.i); break;
        }
    }
    if (src->llm != MS_NONE && !GROW(to, llm, nllm, cap_llm)) {
        ms_llm *l = &to->llm[to->nllm];
        *l = from->llm[src->llm];
        l->provider = copy_str(to, from, l->provider);
        l->model = copy_str(to, from, l->model);
        to->spans[to->nspans - 1].llm = to->nllm++;
    }
    if (src->error != MS_NONE && !GROW(to, errors, nerrors, cap_errors)) {
        ms_span_error *e = &to->errors[to->nerrors];
        *e = from->errors[src->error];
        e->type = copy_str(to, from, e->type);
        e->message = copy_str(to, from, e->message);
        e->traceback = copy_str(to, from, e->traceback);
        to->spans[to->nspans - 1].error = to->nerrors++;
    }
    for (uint32_t i = 0; i < from->nevents; i++) {
        const ms_event *ev = &from->events[i];
        if (ev->span != src->gidx || GROW(to, events, nevents, cap_events))
            continue;
        ms_event *e = &to->events[to->nevents];
        *e = *ev;
        e->name = copy_str(to, from, ev->name);
        e->attrs_json = copy_str(to, from, ev->attrs_json);
        e->error_type = copy_str(to, from, ev->error_type);
        e->error_message = copy_str(to, from, ev->error_message);
        to->nevents++;
    }
}

static void totals_add(ms_trace_totals *into, const ms_trace_totals *x)
{
    add_tokens(&into->tokens, &x->tokens);
    if (!isnan(x->cost_usd))
        into->cost_usd = isnan(into->cost_usd) ? x->cost_usd : into->cost_usd + x->cost_usd;
    into->replayed_cost_usd += x->replayed_cost_usd;
    into->replayed_calls += x->replayed_calls;
    into->unknown_cost_calls += x->unknown_cost_calls;
    into->llm_calls += x->llm_calls;
    into->errors += x->errors;
}

int ms_trace_cut(ms_trace *t, ms_trace *part, int64_t now)
{
    if (t->keep_digest) /* before the ended spans leave */
        ms_digest_add_ended(t->digest, t, t->digest);
    swap_storage(t, part);
    part->id = t->id;
    part->salt = t->salt;
    part->remote_parent = t->remote_parent;
    part->run_id = t->run_id;
    part->uid = t->uid;
    part->start = t->start;
    t->base = part->base + (part->nspans - part->npinned);
    for (uint32_t i = 0; i < part->nspans; i++)
        if (part->spans[i].end == 0)
            pin_span(t, part, &part->spans[i]);
    ms_trace_prof_keep_open_(t, part);
    ms_trace_totals moved;
    memset(&moved, 0, sizeof moved);
    moved.cost_usd = NAN;
    add_span_totals(part, 1, &moved);
    totals_add(&t->cut_totals, &moved);
    t->cut_spans += part->nspans - t->npinned;
    part->part = MS_PART_CUT;
    part->part_seq = t->parts++;
    part->part_time = now;
    part->part_spans = t->cut_spans;
    ms_trace_totals_get(t, &part->part_totals);
    t->last_cut = now;
    atomic_store(&part->state, MS_TRACE_ENDED);
    return t->oom ? ENOMEM : 0;
}

const ms_attr *ms_span_attr(const ms_trace *t, const ms_span *sp, const char *key, size_t klen)
{
    for (uint32_t ai = sp ? sp->attrs : MS_NONE; ai != MS_NONE && ai < t->nattrs; ai = t->attrs[ai].next) {
        const ms_attr *a = &t->attrs[ai];
        if (a->key.len == klen && memcmp(t->arena + a->key.off, key, klen) == 0)
            return a;
    }
    return NULL;
}

void ms_span_attrs_json(const ms_trace *t, uint32_t gidx, ms_buf *out)
{
    const ms_span *sp = ms_trace_span(t, gidx);
    uint32_t ai = sp ? sp->attrs : MS_NONE;
    if (ai == MS_NONE)
        return;
    int first = 1;
    ms_buf_addc(out, '{');
    for (; ai != MS_NONE; ai = t->attrs[ai].next) {
        const ms_attr *a = &t->attrs[ai];
        if (!first)
            ms_buf_addc(out, ',');
        first = 0;
        ms_json_str(out, t->arena + a->key.off, a->key.len);
        ms_buf_addc(out, ':');
        switch (a->type) {
        case MS_ATTR_STRING: ms_json_str(out, t->arena + a->v.s.off, a->v.s.len); break;
        case MS_ATTR_INT: ms_json_int(out, a->v.i); break;
        case MS_ATTR_DOUBLE: ms_json_num(out, a->v.d); break;
        default: ms_buf_adds(out, a->v.i ? "true" : "false"); break;
        }
    }
    ms_buf_addc(out, '}');
}
