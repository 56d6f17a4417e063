#include "ms_digest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Strings past this many bytes are not kept either: attributes can be
 * large, and the digest must stay bounded like the buffer it outlives. */
#define MS_DIGEST_TEXT_MAX (64u << 20)

static ms_str put(ms_digest *d, const char *s, size_t len)
{
    ms_str r = {MS_NONE, 0};
    size_t off = d->text.len;
    if (off + len + 1 > UINT32_MAX - 1)
        return r;
    ms_buf_add(&d->text, s, len);
    ms_buf_addc(&d->text, 0);
    if (d->text.oom) {
        d->oom = 1;
        return r;
    }
    r.off = (uint32_t)off;
    r.len = (uint32_t)len;
    return r;
}

static ms_str put_trace_str(ms_digest *d, const ms_trace *t, ms_str s)
{
    if (s.off == MS_NONE) {
        ms_str none = {MS_NONE, 0};
        return none;
    }
    return put(d, t->arena + s.off, s.len);
}

static const ms_digest_span *find(const ms_digest *d, uint32_t gidx)
{
    if (!d)
        return NULL;
    for (uint32_t i = d->n; i-- > 0;)
        if (d->spans[i].gidx == gidx)
            return &d->spans[i];
    return NULL;
}

/* Appends the path of span `gidx` (root left out) to `out`. Nesting is
 * bounded by what Lua's C stack allows, far below the depth limit here. */
static void path_of(ms_buf *out, const ms_trace *t, const ms_digest *earlier, uint32_t gidx, int depth)
{
    if (gidx == 0 || gidx == MS_NONE || depth > 200)
        return;
    const ms_span *s = ms_trace_span(t, gidx);
    if (!s) {
        const ms_digest_span *e = find(earlier, gidx);
        ms_buf_adds(out, e ? ms_digest_str(earlier, e->path) : "?");
        return;
    }
    if (s->parent != 0 && s->parent != MS_NONE) {
        path_of(out, t, earlier, s->parent, depth + 1);
        ms_buf_addc(out, '/');
    }
    ms_buf_add(out, t->arena + s->name.off, s->name.len);
}

static void summarize(ms_digest *d, const ms_trace *t, const ms_span *s, const ms_digest *earlier, ms_buf *scratch)
{
    if (d->n >= MS_DIGEST_MAX || d->text.len >= MS_DIGEST_TEXT_MAX) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap && ms_trace_grow_((void **)&d->spans, &d->cap, d->n + 1, sizeof *d->spans)) {
        d->oom = 1;
        d->dropped++;
        return;
    }
    ms_digest_span *e = &d->spans[d->n];
    memset(e, 0, sizeof *e);
    ms_str none = {MS_NONE, 0};
    e->model = e->provider = e->error_type = e->error_message = e->attrs_json = none;
    e->gidx = s->gidx;
    e->parent = s->parent;
    e->kind = s->kind;
    e->status = (uint8_t)s->status;
    e->start_ns = s->start - t->start;
    e->duration_ns = s->end > s->start ? s->end - s->start : 0;
    e->retries = s->retries;
    e->retry_state = s->retry_state;
    e->backoff_ns = s->backoff_ns;
    e->count = 1;
    e->min_ns = e->max_ns = e->p50_ns = e->p95_ns = e->duration_ns;
    e->input_tokens = e->output_tokens = e->cache_read_tokens = e->cache_write_tokens = -1;
    e->cost_usd = NAN;
    e->name = put_trace_str(d, t, s->name);
    ms_buf_reset(scratch);
    path_of(scratch, t, earlier, s->gidx, 0);
    e->path = put(d, scratch->data ? scratch->data : "", scratch->len);
    if (s->kind == MS_KIND_FOLD && s->fold != MS_NONE) {
        const ms_fold *f = &t->folds[s->fold];
        e->count = f->count;
        e->errors = f->errors;
        e->duration_ns = f->total;
        e->min_ns = f->count ? f->min : 0;
        e->max_ns = f->max;
        e->p50_ns = ms_hist_quantile(&f->hist, 0.50);
        e->p95_ns = ms_hist_quantile(&f->hist, 0.95);
    }
    if (s->llm != MS_NONE) {
        const ms_llm *l = &t->llm[s->llm];
        e->model = put_trace_str(d, t, l->model);
        e->provider = put_trace_str(d, t, l->provider);
        e->input_tokens = l->input;
        e->cache_read_tokens = l->cache_read;
        e->cache_write_tokens = l->cache_write;
        e->output_tokens = l->output;
        e->cost_usd = l->cost_usd;
        e->estimated = l->estimated;
        e->replayed = l->replayed;
    }
    if (s->error != MS_NONE) {
        const ms_span_error *er = &t->errors[s->error];
        e->error_type = put_trace_str(d, t, er->type);
        e->error_message = put_trace_str(d, t, er->message);
        e->error_own = er->own;
    }
    if (s->attrs != MS_NONE) {
        ms_buf_reset(scratch);
        ms_span_attrs_json(t, s->gidx, scratch);
        if (scratch->len)
            e->attrs_json = put(d, scratch->data, scratch->len);
    }
    d->n++;
}

void ms_digest_add_ended(ms_digest *into, const ms_trace *t, const ms_digest *earlier)
{
    ms_buf scratch = {0};
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *s = &t->spans[i];
        if (s->end && s->gidx != 0)
            summarize(into, t, s, earlier, &scratch);
    }
    if (scratch.oom)
        into->oom = 1;
    ms_buf_free(&scratch);
}

void ms_digest_reset(ms_digest *d)
{
    d->n = 0;
    ms_buf_reset(&d->text);
    d->dropped = 0;
    d->oom = 0;
}

void ms_digest_free(ms_digest *d)
{
    free(d->spans);
    ms_buf_free(&d->text);
    memset(d, 0, sizeof *d);
}

int ms_trace_keep_digest(ms_trace *t)
{
    if (!t->digest) {
        t->digest = calloc(1, sizeof *t->digest);
        if (!t->digest)
            return -1;
    }
    t->keep_digest = 1;
    return 0;
}
