/* Unit tests for telemetry/ms_stats.c.
 *
 * Every reference value is worked out here, independently of the code
 * under test: binomial and hypergeometric probabilities by exact products
 * in long double, Wilson and Newcombe by their textbook formulas, and the
 * bootstrap against a plain resample-and-sort bootstrap written below and
 * against the truth of simulated data (coverage and power). Simulations
 * use their own generator (xorshift64*), never ms_rng. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checks.h"

#include "ms_stats.h"

/* Relative closeness, for probabilities spanning many magnitudes. */
#define assert_rel(a, b, rel)                                               \
    do {                                                                    \
        double a_ = (a), b_ = (b);                                          \
        if (!(fabs(a_ - b_) <= (rel) * fabs(b_)))                           \
            fail_msg("%.17g != %.17g (rel %g)", a_, b_, (double)(rel));     \
    } while (0)

#define assert_nan(a)                                                       \
    do {                                                                    \
        double a_ = (a);                                                    \
        if (!isnan(a_))                                                     \
            fail_msg("%.17g is not NaN", a_);                               \
    } while (0)

/* ---------------------------------------------------------------------
 * The test's own randomness and reference formulas
 * --------------------------------------------------------------------- */

static uint64_t sim_state;

static uint64_t sim_next(void)
{
    sim_state ^= sim_state >> 12;
    sim_state ^= sim_state << 25;
    sim_state ^= sim_state >> 27;
    return sim_state * 0x2545F4914F6CDD1Dull;
}

static double sim_unit(void) /* (0, 1) */
{
    return ((double)(sim_next() >> 11) + 0.5) * 0x1.0p-53;
}

static double sim_normal(void) /* Box-Muller */
{
    return sqrt(-2.0 * log(sim_unit())) * cos(2.0 * M_PI * sim_unit());
}

/* C(n, k) as a long double product: exact for the sizes used here up to
 * the rounding of each step. */
static long double choose(int n, int k)
{
    long double c = 1.0L;
    if (k > n - k)
        k = n - k;
    for (int i = 1; i <= k; i++)
        c = c * (long double)(n - k + i) / (long double)i;
    return c;
}

/* P(X <= k), X ~ Binomial(n, p): the terms summed one by one, each term
 * C(n, i) p^i (1-p)^(n-i) in long double (powl keeps 0.5^1000). */
static double ref_binom_cdf(int k, int n, double p)
{
    long double sum = 0.0L;
    for (int i = 0; i <= k; i++)
        sum += choose(n, i) * powl(p, i) * powl(1.0L - p, n - i);
    return (double)sum;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* numpy's linear percentile of sorted s[0..n), written out again. */
static double ref_percentile_sorted(const double *s, size_t n, double q)
{
    double h = (double)(n - 1) * q / 100.0;
    size_t k = (size_t)h;
    if (k >= n - 1)
        return s[n - 1];
    return s[k] + (h - (double)k) * (s[k + 1] - s[k]);
}

/* ---------------------------------------------------------------------
 * Exact tests
 * --------------------------------------------------------------------- */

static void test_binom_cdf_against_term_sums(void **state)
{
    (void)state;
    static const struct { int k, n; double p; } cases[] = {
        {3, 10, 0.3},   {0, 5, 0.5},     {7, 20, 0.9},    {19, 20, 0.9},
        {2, 7, 0.01},   {480, 1000, 0.5}, {500, 1000, 0.5}, {520, 1000, 0.5},
        {30, 1000, 0.05}, {60, 1000, 0.05}, {400, 1000, 0.5}, {999, 1000, 0.999},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double want = ref_binom_cdf(cases[i].k, cases[i].n, cases[i].p);
        double got = ms_binom_cdf(cases[i].k, cases[i].n, cases[i].p);
        /* Relative in the lower tail (down to 1e-10 at 400 of 1000),
         * absolute near 1 where 1 - tail is all double can say. */
        if (want < 0.5)
            assert_rel(got, want, 1e-12);
        else
            assert_near(got, want, 1e-13);
    }
}

static void test_binom_cdf_edges(void **state)
{
    (void)state;
    assert_near(ms_binom_cdf(-1, 10, 0.5), 0.0, 0);
    assert_near(ms_binom_cdf(10, 10, 0.5), 1.0, 0);
    assert_near(ms_binom_cdf(3, 10, 0.0), 1.0, 0);
    assert_near(ms_binom_cdf(3, 10, 1.0), 0.0, 0);
    /* 0 of 10 at p: (1 - p)^10 */
    assert_rel(ms_binom_cdf(0, 10, 0.2), pow(0.8, 10), 1e-13);
    /* Huge n: the median of Binomial(10^7, 1/2) sits at n/2, and by
     * symmetry P(X <= n/2 - 1) = (1 - P(X = n/2)) / 2, with P(X = n/2)
     * ~ sqrt(2 / (pi n)) (1 - 1/(4n)). */
    int64_t n = 10000000;
    double mid = sqrt(2.0 / (M_PI * (double)n)) * (1.0 - 1.0 / (4.0 * (double)n));
    assert_rel(ms_binom_cdf(n / 2 - 1, n, 0.5), (1.0 - mid) / 2.0, 1e-12);
    assert_nan(ms_binom_cdf(1, -1, 0.5));
    assert_nan(ms_binom_cdf(1, 10, 1.5));
}

static void test_mcnemar(void **state)
{
    (void)state;
    /* 0 against 6: 2 * 0.5^6 */
    assert_rel(ms_mcnemar_exact(0, 6), 0.03125, 1e-14);
    assert_rel(ms_mcnemar_exact(6, 0), 0.03125, 1e-14);
    /* 1 against 9: 2 * (C(10,0) + C(10,1)) / 2^10 */
    assert_rel(ms_mcnemar_exact(1, 9), 2.0 * 11.0 / 1024.0, 1e-14);
    /* 3 against 12: 2 * sum_{i<=3} C(15,i) / 2^15 = 2 * 576 / 32768 */
    assert_rel(ms_mcnemar_exact(3, 12), 2.0 * (1 + 15 + 105 + 455) / 32768.0, 1e-13);
    assert_near(ms_mcnemar_exact(4, 4), 1.0, 0);
    assert_near(ms_mcnemar_exact(0, 0), 1.0, 0);
    assert_near(ms_mcnemar_exact(0, 1), 1.0, 0);
    assert_nan(ms_mcnemar_exact(-1, 3));
}

/* Two-sided Fisher by enumerating every table with the same margins,
 * each probability an exact product. */
static double ref_fisher(int k1, int n1, int k2, int n2)
{
    int k = k1 + k2;
    long double total = choose(n1 + n2, k);
    long double seen = choose(n1, k1) * choose(n2, k2) / total;
    long double p = 0.0L;
    for (int x = 0; x <= n1 && x <= k; x++) {
        if (k - x > n2)
            continue;
        long double px = choose(n1, x) * choose(n2, k - x) / total;
        if (px <= seen * (1.0L + 1e-7L))
            p += px;
    }
    return (double)p;
}

static void test_fisher(void **state)
{
    (void)state;
    /* 3 of 4 against 1 of 4: tables x = 0..4 weigh 1, 16, 36, 16, 1 of 70;
     * those no likelier than 16/70: 34/70. */
    assert_rel(ms_fisher_exact(3, 4, 1, 4), 34.0 / 70.0, 1e-12);
    assert_rel(ms_fisher_exact(3, 4, 1, 4), 0.4857142857, 1e-9);
    /* 0 of 10 against 10 of 10: only the two extreme tables. */
    assert_rel(ms_fisher_exact(0, 10, 10, 10), 2.0 / 184756.0, 1e-12);
    assert_near(ms_fisher_exact(5, 10, 5, 10), 1.0, 1e-12);
    assert_rel(ms_fisher_exact(7, 30, 18, 35), ref_fisher(7, 30, 18, 35), 1e-10);
    assert_rel(ms_fisher_exact(40, 120, 61, 110), ref_fisher(40, 120, 61, 110), 1e-9);
    /* Large tables (long double holds C(4000, 1880) ~ 1e1200); the walk
     * out from the mode must still find both tails. */
    assert_rel(ms_fisher_exact(900, 2000, 980, 2000), ref_fisher(900, 2000, 980, 2000), 1e-9);
    assert_rel(ms_fisher_exact(30, 2000, 3, 1500), ref_fisher(30, 2000, 3, 1500), 1e-9);
    assert_near(ms_fisher_exact(0, 0, 0, 0), 1.0, 0);
    assert_nan(ms_fisher_exact(5, 4, 1, 4));
    assert_nan(ms_fisher_exact(-1, 4, 1, 4));
}

/* ---------------------------------------------------------------------
 * Intervals of proportions, normal quantile, sizes
 * --------------------------------------------------------------------- */

static void test_wilson(void **state)
{
    (void)state;
    ms_ci w = ms_wilson(0, 10, 0.95);
    assert_near(w.est, 0.0, 0);
    assert_near(w.lo, 0.0, 0);
    assert_near(w.hi, 0.2775, 5e-5);
    w = ms_wilson(5, 10, 0.95);
    assert_near(w.est, 0.5, 0);
    assert_near(w.lo, 0.2366, 5e-5);
    assert_near(w.hi, 0.7634, 5e-5);
    /* 81 of 100 at 90% from the formula with z = 1.6448536269514722. */
    double z = 1.6448536269514722, n = 100, p = 0.81;
    double c = (p + z * z / (2 * n)) / (1 + z * z / n);
    double h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n);
    w = ms_wilson(81, 100, 0.90);
    assert_near(w.lo, c - h, 1e-12);
    assert_near(w.hi, c + h, 1e-12);
    w = ms_wilson(10, 10, 0.95);
    assert_near(w.hi, 1.0, 0);
    assert_nan(ms_wilson(0, 0, 0.95).est);
    assert_nan(ms_wilson(11, 10, 0.95).lo);
    assert_nan(ms_wilson(1, 10, 1.0).hi);
}

static void test_prop_diff_is_newcombe(void **state)
{
    (void)state;
    /* Newcombe's method 10 from the two Wilson intervals: d = p2 - p1,
     * lo = d - sqrt((p2 - l2)^2 + (u1 - p1)^2),
     * hi = d + sqrt((u2 - p2)^2 + (p1 - l1)^2). */
    static const int cases[][4] = {{56, 70, 48, 80}, {9, 10, 3, 10}, {0, 20, 0, 20}, {5, 50, 17, 40}};
    for (size_t i = 0; i < 4; i++) {
        int k1 = cases[i][0], n1 = cases[i][1], k2 = cases[i][2], n2 = cases[i][3];
        ms_ci w1 = ms_wilson(k1, n1, 0.95), w2 = ms_wilson(k2, n2, 0.95);
        double p1 = (double)k1 / n1, p2 = (double)k2 / n2, d = p2 - p1;
        ms_ci got = ms_prop_diff(k1, n1, k2, n2, 0.95);
        assert_near(got.est, d, 1e-15);
        assert_near(got.lo, d - sqrt(pow(p2 - w2.lo, 2) + pow(w1.hi - p1, 2)), 1e-14);
        assert_near(got.hi, d + sqrt(pow(w2.hi - p2, 2) + pow(p1 - w1.lo, 2)), 1e-14);
    }
    /* Newcombe (1998), table II, method 10: 56/70 against 48/80 differ
     * by 0.2 with 95% interval 0.0524 to 0.3339; read as p2 - p1 here. */
    ms_ci t = ms_prop_diff(56, 70, 48, 80, 0.95);
    assert_near(t.lo, -0.3339, 1e-4);
    assert_near(t.hi, -0.0524, 1e-4);
    assert_nan(ms_prop_diff(1, 0, 1, 2, 0.95).est);
}

static void test_normal_quantile(void **state)
{
    (void)state;
    assert_near(ms_normal_quantile(0.975), 1.959963985, 1e-9);
    assert_near(ms_normal_quantile(0.8), 0.841621234, 1e-9);
    assert_near(ms_normal_quantile(0.5), 0.0, 0);
    assert_near(ms_normal_quantile(0.025), -1.959963985, 1e-9);
    assert_near(ms_normal_quantile(1e-10), -6.361340902404056, 1e-9);
    for (double p = 0.001; p < 0.5; p += 0.0371) {
        assert_near(ms_normal_quantile(p), -ms_normal_quantile(1.0 - p), 1e-9);
        /* It inverts the normal CDF. */
        assert_near(0.5 * erfc(-ms_normal_quantile(p) / M_SQRT2), p, 1e-14);
    }
    assert_nan(ms_normal_quantile(0.0));
    assert_nan(ms_normal_quantile(1.0));
    assert_nan(ms_normal_quantile(NAN));
}

static void test_mde(void **state)
{
    (void)state;
    /* (1.959963985 + 0.841621234) * 2 / sqrt(100) */
    assert_near(ms_mde_mean(2.0, 100, 0.95, 0.8), 0.5603170438, 1e-9);
    assert_nan(ms_mde_mean(2.0, 1, 0.95, 0.8));
    assert_nan(ms_mde_mean(-1.0, 10, 0.95, 0.8));
    /* 2 * 0.5^m < 0.05 first at m = 6 (0.03125; m = 5 gives 0.0625). */
    assert_near(ms_mde_mcnemar(100, 0.95), 0.06, 1e-15);
    assert_near(ms_mde_mcnemar(6, 0.95), 1.0, 0);
    assert_nan(ms_mde_mcnemar(5, 0.95));
    /* At 99%: 2 * 0.5^m < 0.01 first at m = 8 (0.0078125). */
    assert_near(ms_mde_mcnemar(40, 0.99), 0.2, 1e-15);
    assert_nan(ms_mde_mcnemar(0, 0.95));
}

static void test_direction(void **state)
{
    (void)state;
    assert_int_equal(ms_ci_direction((ms_ci){1, 0.5, 2}), MS_UP);
    assert_int_equal(ms_ci_direction((ms_ci){-1, -2, -0.5}), MS_DOWN);
    assert_int_equal(ms_ci_direction((ms_ci){0.1, -0.1, 0.3}), MS_NO_EVIDENCE);
    assert_int_equal(ms_ci_direction((ms_ci){0.1, 0.0, 0.3}), MS_NO_EVIDENCE);
    assert_int_equal(ms_ci_direction((ms_ci){NAN, NAN, NAN}), MS_NO_EVIDENCE);
}

static void test_rng(void **state)
{
    (void)state;
    ms_rng r1, r2;
    ms_rng_seed(&r1, 42);
    ms_rng_seed(&r2, 42);
    for (int i = 0; i < 100; i++)
        assert_true(ms_rng_next(&r1) == ms_rng_next(&r2));
    /* ms_rng_below(7): every face about 1/7 of 70,000 draws (sd ~ 91). */
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t x = ms_rng_below(&r1, 7);
        assert_true(x < 7);
        counts[x]++;
    }
    for (int i = 0; i < 7; i++)
        assert_true(counts[i] > 9600 && counts[i] < 10400);
    for (int i = 0; i < 1000; i++) {
        double u = ms_rng_unit(&r1);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

/* ---------------------------------------------------------------------
 * Bootstrap
 * --------------------------------------------------------------------- */

static void test_bootstrap_determinism(void **state)
{
    (void)state;
    double a[80], b[90];
    sim_state = 0x1234567ull;
    for (int i = 0; i < 80; i++)
        a[i] = 100 + 10 * sim_normal();
    for (int i = 0; i < 90; i++)
        b[i] = 104 + 10 * sim_normal();
    ms_ci x, y, z;
    for (int stat = 0; stat < 3; stat++) {
        int rc;
        if (stat == 0) {
            rc = ms_boot_mean_diff(a, 80, b, 90, 500, 0.95, 7, &x);
            rc |= ms_boot_mean_diff(a, 80, b, 90, 500, 0.95, 7, &y);
            rc |= ms_boot_mean_diff(a, 80, b, 90, 500, 0.95, 8, &z);
        } else if (stat == 1) {
            rc = ms_boot_quantile_diff(a, 80, b, 90, 95, 500, 0.95, 7, &x);
            rc |= ms_boot_quantile_diff(a, 80, b, 90, 95, 500, 0.95, 7, &y);
            rc |= ms_boot_quantile_diff(a, 80, b, 90, 95, 500, 0.95, 8, &z);
        } else {
            rc = ms_boot_paired_mean(b, 80, 500, 0.95, 7, &x);
            rc |= ms_boot_paired_mean(b, 80, 500, 0.95, 7, &y);
            rc |= ms_boot_paired_mean(b, 80, 500, 0.95, 8, &z);
        }
        assert_int_equal(rc, 0);
        assert_true(x.est == y.est && x.lo == y.lo && x.hi == y.hi);
        assert_true(x.est == z.est);
        assert_true(x.lo != z.lo || x.hi != z.hi);
        assert_true(x.lo < x.est && x.est < x.hi);
    }
}

static void test_bootstrap_estimates_and_edges(void **state)
{
    (void)state;
    double a[] = {1, 2, 3, 4, 5};
    double b[] = {10, 20, 30, 40, 50, 60};
    ms_ci ci;
    assert_int_equal(ms_boot_mean_diff(a, 5, b, 6, 200, 0.95, 1, &ci), 0);
    assert_near(ci.est, 35.0 - 3.0, 1e-12);
    /* p50 of b: h = 2.5 -> 35; of a: 3. p95 of b: h = 4.75 -> 57.5; a: 4.8. */
    assert_int_equal(ms_boot_quantile_diff(a, 5, b, 6, 50, 200, 0.95, 1, &ci), 0);
    assert_near(ci.est, 32.0, 1e-12);
    assert_int_equal(ms_boot_quantile_diff(a, 5, b, 6, 95, 200, 0.95, 1, &ci), 0);
    assert_near(ci.est, 57.5 - 4.8, 1e-12);
    /* Resampled quantiles can only be values between the sample's own
     * extremes: the interval lies within [min b - max a, max b - min a]. */
    assert_true(ci.lo >= 10 - 5 && ci.hi <= 60 - 1);
    /* A constant sample has a zero-width interval. */
    double c[] = {7, 7, 7, 7};
    assert_int_equal(ms_boot_quantile_diff(c, 4, c, 4, 50, 100, 0.95, 1, &ci), 0);
    assert_true(ci.est == 0 && ci.lo == 0 && ci.hi == 0);
    assert_int_equal(ms_boot_paired_mean(c, 4, 100, 0.95, 1, &ci), 0);
    assert_true(ci.est == 7 && ci.lo == 7 && ci.hi == 7);
    /* Empty: NaN, not an error. */
    assert_int_equal(ms_boot_mean_diff(a, 0, b, 6, 100, 0.95, 1, &ci), 0);
    assert_nan(ci.est);
    assert_nan(ci.lo);
    assert_int_equal(ms_boot_paired_mean(a, 0, 100, 0.95, 1, &ci), 0);
    assert_nan(ci.hi);
    /* Bad arguments. */
    double with_nan[] = {1, NAN, 3};
    double with_inf[] = {1, INFINITY, 3};
    assert_int_equal(ms_boot_mean_diff(with_inf, 3, b, 6, 100, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_quantile_diff(a, 5, with_inf, 3, 50, 100, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_mean_diff(a, 5, b, 6, 0, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_mean_diff(a, 5, b, 6, 100, 1.0, 1, &ci), -1);
    assert_int_equal(ms_boot_quantile_diff(a, 5, b, 6, 101, 100, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_quantile_diff(a, 5, b, 6, -1, 100, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_quantile_diff(with_nan, 3, b, 6, 50, 100, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_paired_mean(with_nan, 3, 100, 0.95, 1, &ci), -1);
    assert_int_equal(ms_boot_paired_mean(a, 5, 100, 0.0, 1, &ci), -1);
}

/* The plain bootstrap the fast quantile path must agree with: resample
 * n values with replacement, sort, read the percentile; the 2.5th and
 * 97.5th percentiles of `reps` such differences. */
static void naive_quantile_interval(const double *a, size_t na, const double *b, size_t nb,
                                    double q, int reps, double *lo, double *hi)
{
    double *ra = malloc(na * sizeof *ra), *rb = malloc(nb * sizeof *rb);
    double *d = malloc((size_t)reps * sizeof *d);
    assert_non_null(ra);
    assert_non_null(rb);
    assert_non_null(d);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < na; i++)
            ra[i] = a[sim_next() % na];
        for (size_t i = 0; i < nb; i++)
            rb[i] = b[sim_next() % nb];
        qsort(ra, na, sizeof *ra, cmp_double);
        qsort(rb, nb, sizeof *rb, cmp_double);
        d[r] = ref_percentile_sorted(rb, nb, q) - ref_percentile_sorted(ra, na, q);
    }
    qsort(d, (size_t)reps, sizeof *d, cmp_double);
    *lo = ref_percentile_sorted(d, (size_t)reps, 2.5);
    *hi = ref_percentile_sorted(d, (size_t)reps, 97.5);
    free(ra);
    free(rb);
    free(d);
}

/* The order-statistic draw is the same distribution as resampling: on
 * skewed data with ties, the fast interval's ends match the plain
 * bootstrap's to within Monte Carlo error (4,000 resamples each). */
static void test_quantile_matches_plain_bootstrap(void **state)
{
    (void)state;
    enum { NA = 150, NB = 120, REPS = 4000 };
    double a[NA], b[NB];
    sim_state = 0xBADC0FFEEull;
    for (int i = 0; i < NA; i++)
        a[i] = round(exp(4.0 + 0.6 * sim_normal())); /* integers: ties */
    for (int i = 0; i < NB; i++)
        b[i] = round(exp(4.2 + 0.6 * sim_normal()));
    static const double qs[] = {50, 95, 10};
    for (int i = 0; i < 3; i++) {
        double lo, hi;
        naive_quantile_interval(a, NA, b, NB, qs[i], REPS, &lo, &hi);
        ms_ci ci;
        assert_int_equal(ms_boot_quantile_diff(a, NA, b, NB, qs[i], REPS, 0.95, 3, &ci), 0);
        double width = hi - lo;
        assert_near(ci.lo, lo, 0.08 * width);
        assert_near(ci.hi, hi, 0.08 * width);
    }
}

/* For a sample of 4 the bootstrap distribution is known exactly: all
 * 4^4 = 256 resamples, equally likely. Where that distribution's CDF is
 * not within 2 points of a percentile the interval reads, 20,000 draws
 * must land on exactly its value: the order-statistic draw has to be the
 * resampling distribution itself (a rank off by one moves it by 20+). */
static void test_quantile_is_exact_bootstrap_distribution(void **state)
{
    (void)state;
    const double sample[4] = {0, 1, 3, 7};
    const double zero[1] = {0};
    static const double qs[] = {50, 90, 25};
    static const double levels[] = {0.2, 0.4, 0.5, 0.6, 0.8, 0.9};
    int checked = 0;
    for (size_t qi = 0; qi < 3; qi++) {
        double dist[256];
        for (int r = 0; r < 256; r++) {
            double v[4];
            for (int i = 0; i < 4; i++)
                v[i] = sample[(r >> (2 * i)) & 3];
            qsort(v, 4, sizeof *v, cmp_double);
            dist[r] = ref_percentile_sorted(v, 4, qs[qi]);
        }
        qsort(dist, 256, sizeof *dist, cmp_double);
        for (size_t li = 0; li < 6; li++) {
            ms_ci ci;
            assert_int_equal(ms_boot_quantile_diff(zero, 1, sample, 4, qs[qi], 20000, levels[li],
                                                   9, &ci), 0);
            double ends[2] = {0.5 * (1 - levels[li]), 0.5 * (1 + levels[li])};
            double got[2] = {ci.lo, ci.hi};
            for (int e = 0; e < 2; e++) {
                /* The value at CDF position ends[e], and how close the
                 * CDF comes to it. */
                int idx = (int)(ends[e] * 256);
                double below = 0, above = 0;
                while (idx > 0 && dist[idx - 1] == dist[idx])
                    idx--;
                below = idx / 256.0;
                int j = idx;
                while (j < 256 && dist[j] == dist[idx])
                    j++;
                above = j / 256.0;
                if (ends[e] - below < 0.02 || above - ends[e] < 0.02)
                    continue;
                assert_near(got[e], dist[idx], 0);
                checked++;
            }
        }
    }
    assert_true(checked >= 12);
}

/* The plain bootstrap of a mean: `reps` resample means of v[0..n),
 * their 2.5th and 97.5th percentiles. */
static void naive_mean_interval(const double *v, size_t n, int reps, double *lo, double *hi)
{
    double *m = malloc((size_t)reps * sizeof *m);
    assert_non_null(m);
    for (int r = 0; r < reps; r++) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += v[sim_next() % n];
        m[r] = sum / (double)n;
    }
    qsort(m, (size_t)reps, sizeof *m, cmp_double);
    *lo = ref_percentile_sorted(m, (size_t)reps, 2.5);
    *hi = ref_percentile_sorted(m, (size_t)reps, 97.5);
    free(m);
}

/* Samples above 10,000 values take the stratified order-statistic path;
 * on heavy-tailed data (lognormal, sigma 1.5: a few values 100x the
 * median) its interval must match the plain bootstrap's to within Monte
 * Carlo error (4,000 resamples each: ~3% of the half-width), and a
 * difference of a large and a small sample must mix both paths right. */
static void test_large_mean_matches_plain_bootstrap(void **state)
{
    (void)state;
    enum { N = 12000, SMALL = 60, REPS = 4000 };
    double *v = malloc(N * sizeof *v);
    assert_non_null(v);
    sim_state = 0xFEEDF00Dull;
    for (int i = 0; i < N; i++)
        v[i] = exp(1.5 * sim_normal());
    double lo, hi;
    naive_mean_interval(v, N, REPS, &lo, &hi);
    ms_ci ci;
    assert_int_equal(ms_boot_paired_mean(v, N, REPS, 0.95, 5, &ci), 0);
    double half = 0.5 * (hi - lo);
    print_message("large mean: plain [%.5f, %.5f], fast [%.5f, %.5f]\n", lo, hi, ci.lo, ci.hi);
    assert_near(ci.lo, lo, 0.10 * half);
    assert_near(ci.hi, hi, 0.10 * half);

    /* small - large: the small sample's own plain interval, shifted by
     * the large one's mean, dominates; the ends must agree likewise. */
    double w[SMALL];
    for (int i = 0; i < SMALL; i++)
        w[i] = exp(1.5 * sim_normal());
    double wlo, whi, vmean = 0.0;
    for (int i = 0; i < N; i++)
        vmean += v[i];
    vmean /= N;
    assert_int_equal(ms_boot_mean_diff(v, N, w, SMALL, REPS, 0.95, 5, &ci), 0);
    naive_mean_interval(w, SMALL, REPS, &wlo, &whi);
    double whalf = 0.5 * (whi - wlo);
    assert_near(ci.lo, wlo - vmean, 0.12 * whalf);
    assert_near(ci.hi, whi - vmean, 0.12 * whalf);
    free(v);
}

/* Coverage on simulated data: `EXPERIMENTS` pairs of samples with a
 * known true difference; the 95% interval must contain the truth about
 * 95% of the time (the band allows for the percentile bootstrap's known
 * small-sample undercoverage and for 400 experiments' binomial noise,
 * sd ~ 1.1 points), and must exclude a truth shifted by 0.6 sd nearly
 * always (power). */
enum { EXPERIMENTS = 400, RESAMPLES = 1000 };

static void test_coverage_mean_lognormal(void **state)
{
    (void)state;
    enum { N = 80 };
    double a[N], b[N];
    /* lognormal(mu, 0.5): mean exp(mu + 0.125); mu 3.0 against 3.1 */
    double truth = exp(3.1 + 0.125) - exp(3.0 + 0.125);
    double sd_a = exp(3.0 + 0.125) * sqrt(exp(0.25) - 1.0);
    int covered = 0, covered_wrong = 0;
    sim_state = 0x5EED0001ull;
    for (int e = 0; e < EXPERIMENTS; e++) {
        for (int i = 0; i < N; i++) {
            a[i] = exp(3.0 + 0.5 * sim_normal());
            b[i] = exp(3.1 + 0.5 * sim_normal());
        }
        ms_ci ci;
        assert_int_equal(ms_boot_mean_diff(a, N, b, N, RESAMPLES, 0.95, (uint64_t)e, &ci), 0);
        covered += ci.lo <= truth && truth <= ci.hi;
        double wrong = truth + 0.6 * sd_a;
        covered_wrong += ci.lo <= wrong && wrong <= ci.hi;
    }
    print_message("mean, lognormal n=%d: %d of %d covered; shifted truth %d\n", N, covered,
                  EXPERIMENTS, covered_wrong);
    assert_in_range(covered, EXPERIMENTS * 91 / 100, EXPERIMENTS * 98 / 100);
    assert_true(covered_wrong < EXPERIMENTS / 10);
}

static void test_coverage_median_normal(void **state)
{
    (void)state;
    enum { N = 120 };
    double a[N], b[N];
    double truth = 5.0; /* normal(50, 10) against normal(55, 10) */
    int covered = 0, covered_wrong = 0;
    sim_state = 0x5EED0002ull;
    for (int e = 0; e < EXPERIMENTS; e++) {
        for (int i = 0; i < N; i++) {
            a[i] = 50 + 10 * sim_normal();
            b[i] = 55 + 10 * sim_normal();
        }
        ms_ci ci;
        assert_int_equal(
            ms_boot_quantile_diff(a, N, b, N, 50, RESAMPLES, 0.95, (uint64_t)e, &ci), 0);
        covered += ci.lo <= truth && truth <= ci.hi;
        covered_wrong += ci.lo <= 0.0 && 0.0 <= ci.hi; /* the null: no change */
    }
    print_message("median, normal n=%d: %d of %d covered; zero covered %d\n", N, covered,
                  EXPERIMENTS, covered_wrong);
    assert_in_range(covered, EXPERIMENTS * 91 / 100, EXPERIMENTS * 98 / 100);
    /* The sample median's sd is 1.2533 * 10 / sqrt(120), so the
     * difference's is 1.62 and 5 points is 3.1 of them: power ~0.87,
     * zero must stay inside rarely. */
    assert_true(covered_wrong < EXPERIMENTS / 4);
}

static void test_coverage_paired_mean(void **state)
{
    (void)state;
    enum { N = 50 };
    double d[N];
    double truth = 0.2; /* differences ~ exponential(1) - 0.8: skewed */
    int covered = 0, covered_zero = 0;
    sim_state = 0x5EED0003ull;
    for (int e = 0; e < EXPERIMENTS; e++) {
        for (int i = 0; i < N; i++)
            d[i] = -log(sim_unit()) - 0.8;
        ms_ci ci;
        assert_int_equal(ms_boot_paired_mean(d, N, RESAMPLES, 0.95, (uint64_t)e, &ci), 0);
        covered += ci.lo <= truth && truth <= ci.hi;
        covered_zero += ci.lo <= truth + 0.6 && truth + 0.6 <= ci.hi;
    }
    print_message("paired mean, n=%d: %d of %d covered; shifted truth %d\n", N, covered,
                  EXPERIMENTS, covered_zero);
    assert_in_range(covered, EXPERIMENTS * 90 / 100, EXPERIMENTS * 98 / 100);
    assert_true(covered_zero < EXPERIMENTS / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binom_cdf_against_term_sums),
        cmocka_unit_test(test_binom_cdf_edges),
        cmocka_unit_test(test_mcnemar),
        cmocka_unit_test(test_fisher),
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_prop_diff_is_newcombe),
        cmocka_unit_test(test_normal_quantile),
        cmocka_unit_test(test_mde),
        cmocka_unit_test(test_direction),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_bootstrap_determinism),
        cmocka_unit_test(test_bootstrap_estimates_and_edges),
        cmocka_unit_test(test_quantile_matches_plain_bootstrap),
        cmocka_unit_test(test_quantile_is_exact_bootstrap_distribution),
        cmocka_unit_test(test_large_mean_matches_plain_bootstrap),
        cmocka_unit_test(test_coverage_mean_lognormal),
        cmocka_unit_test(test_coverage_median_normal),
        cmocka_unit_test(test_coverage_paired_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
