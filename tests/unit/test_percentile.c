/* Unit tests for telemetry/ms_percentile.c and the distribution the
 * report accumulates through it (ms_dist.c).
 *
 * Expected values are worked out by hand in the comments with the
 * definition from the header: h = (n - 1) * q / 100, k = floor(h),
 * result = v[k] + (h - k) * (v[k + 1] - v[k]) over the sorted values. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checks.h"

#include "ms_dist.h"
#include "ms_percentile.h"

/* Bit-for-bit equality, for results that must match the reference. */
#define assert_same(a, b)                                                   \
    do {                                                                    \
        double a_ = (a), b_ = (b);                                          \
        if (!(a_ == b_))                                                    \
            fail_msg("%.17g != %.17g", a_, b_);                             \
    } while (0)

#define EPS 1e-12

/* Deterministic PRNG so a failure reproduces (xorshift64*). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The header's definition applied to an already sorted array. */
static double ref_percentile(const double *s, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * q / 100.0;
    size_t k = (size_t)h;
    if (k >= n - 1)
        return s[n - 1];
    double frac = h - (double)k;
    if (frac == 0.0 || s[k + 1] == s[k])
        return s[k];
    return s[k] + frac * (s[k + 1] - s[k]);
}

/* Checks every q in qs against a qsort reference, once through
 * ms_percentiles with all qs at once and once per q through
 * ms_percentile on a fresh copy. */
static void check_against_sort(const double *data, size_t n, const double *qs, size_t nq)
{
    double *sorted = malloc(n * sizeof *sorted);
    double *work = malloc(n * sizeof *work);
    double *out = malloc(nq * sizeof *out);
    assert_non_null(sorted);
    assert_non_null(work);
    assert_non_null(out);
    memcpy(sorted, data, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_double);

    memcpy(work, data, n * sizeof *work);
    assert_int_equal(ms_percentiles(work, n, qs, nq, out), 0);
    for (size_t i = 0; i < nq; i++)
        assert_same(out[i], ref_percentile(sorted, n, qs[i]));

    /* The reordering must be a permutation: nothing lost or duplicated. */
    qsort(work, n, sizeof *work, cmp_double);
    assert_memory_equal(work, sorted, n * sizeof *work);

    for (size_t i = 0; i < nq && i < 8; i++) {
        memcpy(work, data, n * sizeof *work);
        assert_same(ms_percentile(work, n, qs[i]), ref_percentile(sorted, n, qs[i]));
    }
    free(sorted);
    free(work);
    free(out);
}

/* ---------------------------------------------------------------------
 * Hand-computed cases
 * --------------------------------------------------------------------- */

static void test_one_to_ten(void **state)
{
    (void)state;
    /* Shuffled 1..10; sorted v[i] = i + 1. */
    double v[] = { 7, 3, 10, 1, 9, 2, 8, 5, 4, 6 };
    size_t n = 10;
    /* p50: h = 9 * 0.50 = 4.5  -> v[4] + 0.5  * (v[5] - v[4]) = 5 + 0.5  = 5.5
     * p95: h = 9 * 0.95 = 8.55 -> v[8] + 0.55 * (v[9] - v[8]) = 9 + 0.55 = 9.55
     * p99: h = 9 * 0.99 = 8.91 -> 9 + 0.91 = 9.91
     * p25: h = 2.25 -> 3 + 0.25 = 3.25
     * p0 = min = 1, p100 = max = 10 */
    assert_near(ms_percentile(v, n, 50), 5.5, EPS);
    assert_near(ms_percentile(v, n, 95), 9.55, EPS);
    assert_near(ms_percentile(v, n, 99), 9.91, EPS);
    assert_near(ms_percentile(v, n, 25), 3.25, EPS);
    assert_same(ms_percentile(v, n, 0), 1);
    assert_same(ms_percentile(v, n, 100), 10);
}

static void test_many_qs_any_order(void **state)
{
    (void)state;
    double v[] = { 7, 3, 10, 1, 9, 2, 8, 5, 4, 6 };
    /* Unsorted and repeated qs; each result lands at its own index.
     * p90: h = 8.1 -> 9.1;  p10: h = 0.9 -> 1.9. */
    const double qs[] = { 99, 50, 0, 95, 50, 100, 10, 90, 99 };
    const double want[] = { 9.91, 5.5, 1, 9.55, 5.5, 10, 1.9, 9.1, 9.91 };
    double out[9];
    assert_int_equal(ms_percentiles(v, 10, qs, 9, out), 0);
    for (int i = 0; i < 9; i++)
        assert_near(out[i], want[i], EPS);
}

static void test_empty(void **state)
{
    (void)state;
    const double qs[] = { 0, 50, 100 };
    double out[3] = { 1, 2, 3 };
    assert_int_equal(ms_percentiles(NULL, 0, qs, 3, out), 0);
    for (int i = 0; i < 3; i++)
        assert_true(isnan(out[i]));
    assert_true(isnan(ms_percentile(NULL, 0, 50)));
    /* No qs at all is not an error either. */
    assert_int_equal(ms_percentiles(NULL, 0, NULL, 0, NULL), 0);
}

static void test_one_value(void **state)
{
    (void)state;
    /* n = 1: h = 0 for every q, so every percentile is the value. */
    double v[] = { 42.25 };
    for (double q = 0; q <= 100; q += 12.5)
        assert_same(ms_percentile(v, 1, q), 42.25);
}

static void test_two_values(void **state)
{
    (void)state;
    /* Sorted [1, 3]; h = q / 100.
     * p0 = 1, p25 = 1 + 0.25 * 2 = 1.5, p50 = 2, p75 = 2.5, p100 = 3. */
    double v[] = { 3, 1 };
    const double qs[] = { 0, 25, 50, 75, 100 };
    const double want[] = { 1, 1.5, 2, 2.5, 3 };
    double out[5];
    assert_int_equal(ms_percentiles(v, 2, qs, 5, out), 0);
    for (int i = 0; i < 5; i++)
        assert_near(out[i], want[i], EPS);
}

static void test_duplicates(void **state)
{
    (void)state;
    /* Sorted [1, 1, 5, 5, 5]; h = 4q / 100.
     * p25: h = 1   -> v[1] = 1
     * p40: h = 1.6 -> 1 + 0.6 * (5 - 1) = 3.4
     * p50: h = 2   -> v[2] = 5
     * p60: h = 2.4 -> 5 + 0.4 * 0 = 5 */
    double v[] = { 5, 1, 5, 1, 5 };
    const double qs[] = { 25, 40, 50, 60, 0, 100 };
    const double want[] = { 1, 3.4, 5, 5, 1, 5 };
    double out[6];
    assert_int_equal(ms_percentiles(v, 5, qs, 6, out), 0);
    for (int i = 0; i < 6; i++)
        assert_near(out[i], want[i], EPS);

    /* All equal, larger than the insertion-sort cutoff. */
    static double same[1000];
    for (size_t i = 0; i < 1000; i++)
        same[i] = 0.125;
    for (double q = 0; q <= 100; q += 0.5)
        assert_same(ms_percentile(same, 1000, q), 0.125);
}

static void test_min_max(void **state)
{
    (void)state;
    /* q = 0 is the minimum and q = 100 the maximum, exactly. */
    enum { N = 5001 };
    static double v[N];
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < N; i++) {
        v[i] = (double)(rng() % 1000003) / 7.0 - 50000.0;
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    const double qs[] = { 100, 0 };
    double out[2];
    assert_int_equal(ms_percentiles(v, N, qs, 2, out), 0);
    assert_same(out[0], hi);
    assert_same(out[1], lo);
}

static void test_infinities(void **state)
{
    (void)state;
    /* Sorted [1, inf, inf]: p75 has h = 1.5 between two infinities and
     * must be inf, not inf - inf = NaN. p25: h = 0.5 -> 1 + 0.5 * inf. */
    double v[] = { INFINITY, 1, INFINITY };
    assert_same(ms_percentile(v, 3, 75), INFINITY);
    assert_same(ms_percentile(v, 3, 25), INFINITY);
    assert_same(ms_percentile(v, 3, 0), 1);
}

static void test_invalid_q(void **state)
{
    (void)state;
    double v[] = { 3, 1, 2 };
    const double orig[] = { 3, 1, 2 };
    const double bad[] = { -0.001, 100.001, NAN, -INFINITY, INFINITY };
    for (int b = 0; b < 5; b++) {
        /* The bad q is second, so a valid one comes first: still nothing
         * may be written or reordered. */
        const double qs[] = { 50, bad[b] };
        double out[2] = { -7, -7 };
        assert_int_equal(ms_percentiles(v, 3, qs, 2, out), EINVAL);
        assert_same(out[0], -7);
        assert_same(out[1], -7);
        assert_memory_equal(v, orig, sizeof v);

        errno = 0;
        assert_true(isnan(ms_percentile(v, 3, bad[b])));
        assert_int_equal(errno, EINVAL);
    }
    /* Also for an empty sample: the q is wrong whatever the data. */
    const double qs[] = { 101 };
    double out[1];
    assert_int_equal(ms_percentiles(NULL, 0, qs, 1, out), EINVAL);
}

/* ---------------------------------------------------------------------
 * Against a full sort
 * --------------------------------------------------------------------- */

static void test_random_vs_sort(void **state)
{
    (void)state;
    /* 100,001 values: h = 1000 q exactly for integral q, and duplicates
     * from drawing among 30,000 distinct values. */
    enum { N = 100001, NQ = 240 };
    double *data = malloc(N * sizeof *data);
    assert_non_null(data);
    for (size_t i = 0; i < N; i++)
        data[i] = (double)(rng() % 30000) * 0.37 - 1000.0;

    double qs[NQ];
    size_t nq = 0;
    const double fixed[] = { 0, 100, 50, 90, 95, 99, 99.9, 99.99, 1, 0.001, 25, 75 };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        qs[nq++] = fixed[i];
    while (nq < NQ)
        qs[nq++] = (double)(rng() % 1000001) / 10000.0;   /* 0.0000 .. 100.0000 */
    check_against_sort(data, N, qs, nq);

    /* Distinct continuous values as well. */
    for (size_t i = 0; i < N; i++)
        data[i] = (double)(rng() >> 11) * 0x1p-53 * 1e4;
    check_against_sort(data, N, qs, nq);
    free(data);
}

/* Inputs that make naive quickselect quadratic; at 1M values a quadratic
 * path would not finish, so these double as a performance guard. */
static void test_hard_patterns(void **state)
{
    (void)state;
    enum { N = 1000000 };
    const double qs[] = { 50, 95, 99, 100, 0, 99.9 };
    double *data = malloc(N * sizeof *data);
    assert_non_null(data);

    for (int pattern = 0; pattern < 7; pattern++) {
        for (size_t i = 0; i < N; i++) {
            switch (pattern) {
            case 0: data[i] = (double)i; break;                       /* sorted */
            case 1: data[i] = (double)(N - i); break;                  /* reversed */
            case 2: data[i] = (double)(i < N / 2 ? i : N - i); break;  /* organ pipe */
            case 3: data[i] = 1.0; break;                              /* all equal */
            case 4: data[i] = (double)(i % 1000); break;               /* sawtooth */
            case 5: data[i] = (double)(rng() % 3); break;              /* 3 values */
            case 6: data[i] = (double)(i % 2 ? i : N - i); break;      /* interleaved */
            }
        }
        check_against_sort(data, N, qs, sizeof qs / sizeof qs[0]);
    }
    free(data);
}

/* A distribution of exact values: count, sum, min, max and mean kept as
 * they come, exact percentiles at the end, and nothing approximate. */
static void test_dist_exact(void **state)
{
    (void)state;
    ms_dist d = {0};
    double out[3];
    int approx = -1;
    static const double qs[3] = {50, 95, 100};
    assert_int_equal(ms_dist_percentiles(&d, qs, 3, out, &approx), 0);
    assert_true(isnan(out[0]) && isnan(ms_dist_mean(&d)));
    for (int i = 10; i >= 1; i--) /* 10 .. 1 */
        assert_int_equal(ms_dist_add_exact(&d, i), 0);
    assert_int_equal(d.count, 10);
    assert_near(d.sum, 55, 0);
    assert_near(d.min, 1, 0);
    assert_near(d.max, 10, 0);
    assert_near(ms_dist_mean(&d), 5.5, 0);
    assert_int_equal(ms_dist_percentiles(&d, qs, 3, out, &approx), 0);
    assert_near(out[0], 5.5, 1e-12);  /* h = 4.5 */
    assert_near(out[1], 9.55, 1e-12); /* h = 8.55 */
    assert_near(out[2], 10, 0);
    assert_int_equal(approx, 0);
    ms_dist_free(&d);
    assert_int_equal(d.count, 10); /* the summary outlives the values */
    assert_near(d.sum, 55, 0);
    ms_dist_free(&d);                /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_to_ten),
        cmocka_unit_test(test_many_qs_any_order),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_value),
        cmocka_unit_test(test_two_values),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_min_max),
        cmocka_unit_test(test_infinities),
        cmocka_unit_test(test_invalid_q),
        cmocka_unit_test(test_random_vs_sort),
        cmocka_unit_test(test_hard_patterns),
        cmocka_unit_test(test_dist_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
