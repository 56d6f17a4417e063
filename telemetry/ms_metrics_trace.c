/* ms_metrics_trace — feeds the registry from trace buffers: the live
 * metrics of a run. There is only one exported symbol in this file.
 *
 * Called by the writer thread for each trace or part it takes (the
 * tracer's observer), so the script's thread pays nothing for metrics. */
#include "ms_metrics_trace.h"
#include "ms_otlp_schema.h"
#include "ms_trace.h"

#include <string.h>

static ms_mstr tstr(const ms_trace *t, ms_str s)
{
    if (s.off == MS_NONE)
        return (ms_mstr){0};
    return (ms_mstr){t->arena + s.off, s.len};
}

/* The string attribute `key` of span sp (absent when it has none). */
static ms_mstr str_attr(const ms_trace *t, const ms_span *sp, const char *key, size_t klen)
{
    const ms_attr *a = ms_span_attr(t, sp, key, klen);
    return a && a->type == MS_ATTR_STRING ? tstr(t, a->v.s) : (ms_mstr){0};
}

/* The spans of one buffer that have ended: a part's open spans stay in
 * their trace and are seen with a later part (as ms_pack_encode does). */
static void observe_spans(ms_metrics *m, const ms_trace *t)
{
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *sp = &t->spans[i];
        if (sp->end == 0)
            continue;
        int64_t dur = sp->end > sp->start ? sp->end - sp->start : 0;
        if (sp->parent == MS_NONE) {
            ms_metrics_request(m, tstr(t, sp->name), dur, ms_status_name(ms_trace_status(t)));
        } else if (sp->kind == MS_KIND_FOLD && sp->fold < t->nfolds) {
            const ms_fold *f = &t->folds[sp->fold];
            ms_metrics_step(m, tstr(t, sp->name), f->count, f->total);
        } else {
            ms_metrics_step(m, tstr(t, sp->name), 1, dur);
        }
        ms_metrics_retries(m, sp->retries);
        const ms_span_error *er = sp->error != MS_NONE && sp->error < t->nerrors ? &t->errors[sp->error] : 0;
        if (er && er->own)
            ms_metrics_error(m, tstr(t, er->type));
        if (sp->llm != MS_NONE && sp->llm < t->nllm) {
            const ms_llm *l = &t->llm[sp->llm];
            ms_metrics_llm c = {
                .provider = tstr(t, l->provider), .model = tstr(t, l->model),
                .request_model = str_attr(t, sp, MS_ATTR_GENAI_REQUEST_MODEL,
                                          sizeof MS_ATTR_GENAI_REQUEST_MODEL - 1),
                .error_type = er ? tstr(t, er->type) : (ms_mstr){0},
                .duration_ns = dur, .input = l->input, .output = l->output,
                .cache_read = l->cache_read, .cache_write = l->cache_write,
                .cost_usd = l->cost_usd, .ttft_ns = l->ttft_ns, .replayed = l->replayed,
            };
            if (er && !c.error_type.p)
                c.error_type = (ms_mstr){"", 0};
            ms_metrics_llm_call(m, &c);
        }
    }
    for (uint32_t i = 0; i < t->nevents; i++) {
        const ms_event *ev = &t->events[i];
        const ms_span *sp = ms_trace_span(t, ev->span);
        if (ev->error_type.off != MS_NONE && sp && sp->end != 0)
            ms_metrics_error(m, tstr(t, ev->error_type));
    }
}

void ms_metrics_observe_traces(void *ud, ms_trace *const *traces, size_t n)
{
    ms_metrics *m = ud;
    ms_metrics_lock(m);
    for (size_t i = 0; i < n; i++)
        observe_spans(m, traces[i]);
    ms_metrics_unlock(m);
}
