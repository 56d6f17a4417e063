/* ms_dist — a distribution being accumulated (a step's durations, a
 * model's times to first token): its count, sum, min, max and
 * percentiles.
 *
 * A contribution is one exact value (ms_dist_add_exact), or a histogram
 * of many (ms_dist_add_hist: a folded span record, standing for N
 * repetitions with their total, extremes and histogram). With exact values
 * only, the percentiles are exact, as ms_percentile.h defines them; once a
 * histogram is in, every value goes into its buckets and the percentiles
 * are bucket midpoints, within MS_HIST_REL_ERROR (0.78%) of the true
 * value, and `approximate` says so. Readers pass that flag on. */
#ifndef MS_DIST_H
#define MS_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "ms_hist.h"

/* Zero-initialised is an empty distribution. */
typedef struct ms_dist {
    double *v;          /* the exact values, in no particular order */
    size_t n, cap;
    uint64_t count;     /* values contributed, weights included */
    double sum, min, max;
    int approximate;    /* some contribution was not an exact value */
    ms_hist hist;       /* the histograms contributed (ns), when approximate */
} ms_dist;

int ms_dist_grow_(ms_dist *d);

/* Adds one value (not NaN). Returns 0, or -1 when memory ran out (then
 * nothing was added). Inline: the report calls it twice per span. */
static inline int ms_dist_add_exact(ms_dist *d, double x)
{
    if (__builtin_expect(d->n == d->cap, 0) && ms_dist_grow_(d))
        return -1;
    d->v[d->n++] = x;
    if (d->count == 0 || x < d->min)
        d->min = x;
    if (d->count == 0 || x > d->max)
        d->max = x;
    d->count++;
    d->sum += x;
    return 0;
}

/* Adds the `n` values of histogram h (ns), whose sum, min and max are
 * known exactly. Returns 0, or -1 when memory ran out. */
int ms_dist_add_hist(ms_dist *d, const ms_hist *h, double sum, double min, double max);

/* The percentiles qs[0..nq) (each in [0, 100]) into out[0..nq): NaN for
 * an empty distribution. Reorders the values. *approximate (when not
 * NULL) says whether they are estimates. Returns 0, or EINVAL for a q
 * outside [0, 100]. */
int ms_dist_percentiles(ms_dist *d, const double *qs, size_t nq, double *out, int *approximate);

/* The mean, NaN when empty. */
double ms_dist_mean(const ms_dist *d);

/* Frees the values; count, sum, min and max stay readable. */
void ms_dist_free(ms_dist *d);

#endif
