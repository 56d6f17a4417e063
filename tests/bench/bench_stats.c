/* bench_stats: what `moonspan diff` pays for its intervals on a large
 * store. Two samples of N latencies (lognormal, B about 5% slower),
 * RESAMPLES bootstrap resamples, the best of 3 runs of each statistic.
 * Usage: bench_stats [N] [RESAMPLES]. Prints; asserts nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ms_stats.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double normal(ms_rng *r)
{
    double u = 1.0 - ms_rng_unit(r), v = ms_rng_unit(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 100000;
    int resamples = argc > 2 ? atoi(argv[2]) : MS_STATS_RESAMPLES;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b)
        return 1;
    ms_rng r;
    ms_rng_seed(&r, 2026);
    for (size_t i = 0; i < n; i++) {
        a[i] = exp(6.0 + 0.5 * normal(&r));
        b[i] = 1.05 * exp(6.0 + 0.5 * normal(&r));
    }
    static const char *const names[] = {"p50", "p95", "mean", "paired mean"};
    double total = 0.0;
    for (int s = 0; s < 4; s++) {
        double best = INFINITY;
        ms_ci ci = {0, 0, 0};
        for (int run = 0; run < 3; run++) {
            double t0 = now_s();
            int rc = s == 0   ? ms_boot_quantile_diff(a, n, b, n, 50, resamples, 0.95, 1, &ci)
                     : s == 1 ? ms_boot_quantile_diff(a, n, b, n, 95, resamples, 0.95, 1, &ci)
                     : s == 2 ? ms_boot_mean_diff(a, n, b, n, resamples, 0.95, 1, &ci)
                              : ms_boot_paired_mean(b, n, resamples, 0.95, 1, &ci);
            double t = now_s() - t0;
            if (rc != 0)
                return 1;
            if (t < best)
                best = t;
        }
        if (s < 3)
            total += best;
        printf("  %-11s %zu %s, %d resamples: %6.1f ms  (est %.2f, 95%% [%.2f, %.2f])\n",
               names[s], n, s == 3 ? "pairs" : "values each", resamples, best * 1e3, ci.est, ci.lo,
               ci.hi);
    }
    printf("  p50 + p95 + mean of one diff row: %.1f ms\n", total * 1e3);
    free(a);
    free(b);
    return 0;
}
