/* ms_dist — a distribution being accumulated (see ms_dist.h). */
#include "ms_dist.h"

#include <math.h>
#include <stdlib.h>

#include "ms_percentile.h"
#include "ms_read.h"

int ms_dist_grow_(ms_dist *d)
{
    return ms_grow((void **)&d->v, &d->cap, d->n, sizeof *d->v);
}

int ms_dist_percentiles(ms_dist *d, const double *qs, size_t nq, double *out, int *approximate)
{
    if (approximate)
        *approximate = d->approximate;
    return ms_percentiles(d->v, d->n, qs, nq, out);
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
}
