/* ms_sample — which ended traces keep their spans.
 *
 * Head sampling keeps a share of traces, decided from the trace id alone,
 * so every process that joins one trace (TRACEPARENT) decides alike. Tail
 * rules, decided when a trace ends, keep more: every trace that did not
 * end ok, traces slower or costlier than a threshold, and the slowest
 * share of each trace name (against the durations of that name seen so
 * far in this process). A trace no rule keeps is stored as its summary
 * only (duration, tokens, cost, status, counts), so request-level figures
 * stay exact; its spans are dropped. */
#ifndef MS_SAMPLE_H
#define MS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "ms_ids.h"

typedef struct ms_sampling {
    double rate;            /* head: the share of traces kept, 0 < rate <= 1; 1: every one */
    int64_t slower_ns;      /* keep traces lasting at least this; 0: no such rule */
    double costlier_usd;    /* keep traces costing at least this; 0: no such rule */
    double slowest_share;   /* keep the slowest share of each name, 0 < s < 1; 0: no such rule */
} ms_sampling;

/* Why a trace kept its spans. */
enum ms_keep {
    MS_DROP = 0,            /* summary only */
    MS_KEEP_HEAD,           /* the head sample took it (or there is no sampling) */
    MS_KEEP_STATUS,         /* it failed, was interrupted or is incomplete */
    MS_KEEP_SLOW,
    MS_KEEP_COSTLY,
    MS_KEEP_SLOWEST,
};

/* Whether sampling is on at all (else every trace is kept). */
static inline int ms_sampling_on(const ms_sampling *s)
{
    return s->rate < 1;
}

/* The head decision for a trace id: deterministic, uniform over ids. */
int ms_sample_head(const ms_sampling *s, const ms_trace_id *id);

/* The tail state (durations per name, for the slowest-share rule). */
typedef struct ms_sampler ms_sampler;
ms_sampler *ms_sampler_new(void);
void ms_sampler_free(ms_sampler *sm);

/* The decision for an ended trace. `status` is enum ms_status; cost is
 * NaN when unknown. Returns an enum ms_keep. */
int ms_sample_decide(ms_sampler *sm, const ms_sampling *s, const ms_trace_id *id, const char *name,
                     size_t len, int64_t duration_ns, double cost_usd, int status);

#endif
