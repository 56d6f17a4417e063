/* ms_percentile — exact percentiles over a sample of doubles.
 *
 * Definition: linear interpolation between closest ranks, the one numpy
 * uses by default ("linear"): for q in [0, 100] and n sorted values v,
 * h = (n - 1) * q / 100, result = v[floor(h)] + (h - floor(h)) *
 * (v[floor(h) + 1] - v[floor(h)]).
 *
 * No full sort: each requested rank is found by selection (introselect),
 * and each later selection only searches the part of the array right of
 * the previous rank, so p50, p95, p99 and max over n values cost O(n). */
#ifndef MS_PERCENTILE_H
#define MS_PERCENTILE_H

#include <stddef.h>

/* Computes the percentiles `qs[0..nq)` (each in [0, 100], in any order) of
 * `v[0..n)` into `out[0..nq)`. Reorders `v` in place. With n == 0 every
 * output is NaN. Returns 0, or EINVAL for a q outside [0, 100] or NaN. */
int ms_percentiles(double *v, size_t n, const double *qs, size_t nq, double *out);

/* One percentile; same definition and contract. NaN when n == 0. */
double ms_percentile(double *v, size_t n, double q);

#endif
