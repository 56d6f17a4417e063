/* ms_models — the report's LLM calls per model (see ms_models.h). */
#include "ms_models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_fmt.h"
#include "ms_read.h"

static int count_call(ms_model *r, const ms_span_rec *sp);

/* Whether row r is (provider, model) of sp. */
static int same_model(const ms_model *r, const ms_span_rec *sp)
{
    return strlen(r->provider) == sp->provider.len && strlen(r->model) == sp->model.len &&
           memcmp(r->provider, sp->provider.p, sp->provider.len) == 0 &&
           memcmp(r->model, sp->model.p, sp->model.len) == 0;
}

int ms_models_add(ms_models *m, const ms_span_rec *sp)
{
    if (!sp->has_llm)
        return 0;
    /* most calls of a store go to the model of the call before */
    if (m->n && same_model(&m->rows[m->last], sp))
        return count_call(&m->rows[m->last], sp);
    /* key = provider NUL model, so "a/b"+"c" and "a"+"b/c" stay apart */
    ms_buf_reset(&m->key);
    ms_buf_add(&m->key, sp->provider.p, sp->provider.len);
    ms_buf_addc(&m->key, 0);
    ms_buf_add(&m->key, sp->model.p, sp->model.len);
    if (m->key.oom)
        return -1;
    int created;
    long i = ms_strmap_get(&m->keys, m->key.data, m->key.len, &created);
    if (i < 0)
        return -1;
    if (created) {
        if (ms_grow((void **)&m->rows, &m->cap, m->n, sizeof *m->rows))
            return -1;
        const char *k = m->keys.ent[i].key;
        m->rows[m->n++] = (ms_model){.provider = k, .model = k + strlen(k) + 1};
    }
    m->last = (size_t)i;
    return count_call(&m->rows[i], sp);
}

/* Counts the call sp in row r. 0 or -1 (OOM). */
static int count_call(ms_model *r, const ms_span_rec *sp)
{
    if (sp->ttft_ns >= 0 && ms_dist_add_exact(&r->ttft, (double)sp->ttft_ns))
        return -1;
    r->calls++;
    r->failed += sp->status == MS_STATUS_ERROR;
    r->in_tok = ms_sat_add(r->in_tok, sp->input);
    r->out_tok = ms_sat_add(r->out_tok, sp->output);
    if (sp->replayed) {
        r->replayed++;
    } else if (isnan(sp->cost_usd)) {
        r->unknown_cost_calls++;
    } else {
        r->priced++;
        r->cost += sp->cost_usd;
    }
    return 0;
}

/* Most calls first; ties by model, then provider. */
static int cmp_models(const void *a, const void *b)
{
    const ms_model *x = a, *y = b;
    if (x->calls != y->calls)
        return x->calls < y->calls ? 1 : -1;
    int c = strcmp(x->model, y->model);
    return c ? c : strcmp(x->provider, y->provider);
}

int ms_models_finish(ms_models *m)
{
    static const double qs[2] = {50, 95};
    for (size_t i = 0; i < m->n; i++) {
        ms_model *r = &m->rows[i];
        double out[2];
        if (ms_dist_percentiles(&r->ttft, qs, 2, out, &r->approximate))
            return -1;
        r->ttft_p50 = round(out[0]) / MS_NS_PER_MS;
        r->ttft_p95 = round(out[1]) / MS_NS_PER_MS;
        ms_dist_free(&r->ttft);
    }
    if (m->n)
        qsort(m->rows, m->n, sizeof *m->rows, cmp_models);
    return 0;
}

void ms_models_free(ms_models *m)
{
    for (size_t i = 0; i < m->n; i++)
        ms_dist_free(&m->rows[i].ttft);
    free(m->rows);
    ms_strmap_free(&m->keys);
    ms_buf_free(&m->key);
    memset(m, 0, sizeof *m);
}
