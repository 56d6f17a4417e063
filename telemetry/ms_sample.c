#include "ms_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_hist.h"
#include "ms_strmap.h"
#include "ms_trace.h"

struct ms_sampler {
    ms_strmap names;
    ms_hist *hist;              /* durations seen, per name index */
    size_t cap;
};

int ms_sample_head(const ms_sampling *s, const ms_trace_id *id)
{
    if (s->rate >= 1)
        return 1;
    /* the id's last 8 bytes as a number in [0, 1): W3C ids are random there
     * (the spec asks for randomness in the right-most bytes) */
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | id->b[i];
    return (double)(x >> 11) / 9007199254740992.0 < s->rate;
}

ms_sampler *ms_sampler_new(void)
{
    return calloc(1, sizeof(ms_sampler));
}

void ms_sampler_free(ms_sampler *sm)
{
    if (!sm)
        return;
    for (size_t i = 0; i < sm->names.n; i++)
        ms_hist_free(&sm->hist[i]);
    free(sm->hist);
    ms_strmap_free(&sm->names);
    free(sm);
}

/* Whether d is among the slowest `share` of the name's durations so far
 * (this one included). Memory running out keeps the trace. */
static int among_slowest(ms_sampler *sm, double share, const char *name, size_t len, int64_t d)
{
    int created;
    long i = ms_strmap_get(&sm->names, name, len, &created);
    if (i < 0)
        return 1;
    if ((size_t)i >= sm->cap) {
        size_t cap = sm->cap ? sm->cap * 2 : 16;
        ms_hist *h = realloc(sm->hist, cap * sizeof *h);
        if (!h)
            return 1;
        memset(h + sm->cap, 0, (cap - sm->cap) * sizeof *h);
        sm->hist = h;
        sm->cap = cap;
    }
    ms_hist *h = &sm->hist[i];
    if (ms_hist_add(h, d))
        return 1;
    /* the bucket of d reaches the top share: at or above the (1 - share)
     * quantile, bucket for bucket (ties keep) */
    return ms_hist_bucket(d) >= ms_hist_bucket(ms_hist_quantile(h, 1 - share));
}

int ms_sample_decide(ms_sampler *sm, const ms_sampling *s, const ms_trace_id *id, const char *name,
                     size_t len, int64_t duration_ns, double cost_usd, int status)
{
    /* every rule sees every trace: the slowest-share rule learns the
     * name's durations from all of them, kept or not */
    int slowest = s->slowest_share > 0 && sm && among_slowest(sm, s->slowest_share, name, len, duration_ns);
    if (ms_sample_head(s, id))
        return MS_KEEP_HEAD;
    if (status != MS_STATUS_OK)
        return MS_KEEP_STATUS;
    if (s->slower_ns > 0 && duration_ns >= s->slower_ns)
        return MS_KEEP_SLOW;
    if (s->costlier_usd > 0 && !isnan(cost_usd) && cost_usd >= s->costlier_usd)
        return MS_KEEP_COSTLY;
    if (slowest)
        return MS_KEEP_SLOWEST;
    return MS_DROP;
}
