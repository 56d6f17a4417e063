/* ms_dist — a distribution being accumulated (see ms_dist.h). */
#include "ms_dist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "ms_percentile.h"
#include "ms_read.h"

int ms_dist_grow_(ms_dist *d)
{
    return ms_grow((void **)&d->v, &d->cap, d->n, sizeof *d->v);
}

int ms_dist_add_hist(ms_dist *d, const ms_hist *h, double sum, double min, double max)
{
    uint64_t n = ms_hist_total(h);
    if (!n)
        return 0;
    if (ms_hist_merge(&d->hist, h))
        return -1;
    if (d->count == 0 || min < d->min)
        d->min = min;
    if (d->count == 0 || max > d->max)
        d->max = max;
    d->count += n;
    d->sum += sum;
    d->approximate = 1;
    return 0;
}

int ms_dist_percentiles(ms_dist *d, const double *qs, size_t nq, double *out, int *approximate)
{
    if (approximate)
        *approximate = d->approximate;
    if (!d->approximate)
        return ms_percentiles(d->v, d->n, qs, nq, out);
    for (size_t i = 0; i < nq; i++)
        if (!(qs[i] >= 0 && qs[i] <= 100))
            return EINVAL;
    /* the exact values join the buckets, once */
    for (size_t i = 0; i < d->n; i++)
        if (ms_hist_add(&d->hist, (int64_t)d->v[i]))
            return ENOMEM;
    d->n = 0;
    for (size_t i = 0; i < nq; i++) {
        double v = (double)ms_hist_quantile(&d->hist, qs[i] / 100);
        /* a midpoint never strays past the extremes, which are exact */
        out[i] = v < d->min ? d->min : v > d->max ? d->max : v;
    }
    return 0;
}

double ms_dist_mean(const ms_dist *d)
{
    return d->count ? d->sum / (double)d->count : NAN;
}

void ms_dist_free(ms_dist *d)
{
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
    ms_hist_free(&d->hist);
}
