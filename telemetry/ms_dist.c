/* ms_dist — a distribution being accumulated (see ms_dist.h). */
#include "ms_dist.h"

#include <math.h>
#include <stdlib.h>

#include "ms_percentile.h"

int ms_dist_grow_(ms_dist *d)
{
    size_t cap = d->cap ? d->cap * 2 : 8;
    double *v = realloc(d->v, cap * sizeof *v);
    if (!v)
        return -1;
    d->v = v;
    d->cap = cap;
    return 0;
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
