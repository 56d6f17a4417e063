/* ms_hist: buckets bound the relative error, quantiles against an exact
 * sort, merging equals adding everything to one histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "ms_hist.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Every value maps to a bucket whose range holds it, and reads back as a
 * midpoint within MS_HIST_REL_ERROR of it: small values exactly. */
static void test_buckets_hold_their_values(void **state)
{
    (void)state;
    for (int64_t v = 0; v < 128; v++)
        assert_int_equal(ms_hist_bucket_mid(ms_hist_bucket(v)), v);
    int64_t probes[] = {128, 129, 191, 192, 255, 256, 1000, 999999, 1000000, INT64_C(1) << 40,
                        INT64_MAX};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        int64_t v = probes[i];
        uint32_t b = ms_hist_bucket(v);
        assert_true(b < MS_HIST_BUCKETS);
        assert_true(ms_hist_bucket_low(b) <= v);
        assert_true(b + 1 == MS_HIST_BUCKETS || ms_hist_bucket_low(b + 1) > v);
    }
    for (int i = 0; i < 200000; i++) {
        int64_t v = (int64_t)(next() >> (1 + next() % 62));
        double mid = (double)ms_hist_bucket_mid(ms_hist_bucket(v));
        assert_true(fabs(mid - (double)v) <= MS_HIST_REL_ERROR * (double)v + 0.5);
    }
    assert_int_equal(ms_hist_bucket(-5), 0); /* a clock step back reads as 0 */
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Log-normal durations from 1 µs to ~1 s, in an order that moves the
 * window both ways: every quantile within the stated error of the exact
 * nearest-rank value. */
static void test_quantiles_within_the_stated_error(void **state)
{
    (void)state;
    enum { N = 50000 };
    int64_t *v = malloc(N * sizeof *v);
    ms_hist h = {0};
    for (int i = 0; i < N; i++) {
        double u = (double)(next() >> 11) / 9007199254740992.0;
        v[i] = (int64_t)(1000.0 * exp(u * 13.8));
        assert_int_equal(ms_hist_add(&h, v[i]), 0);
    }
    qsort(v, N, sizeof *v, cmp_i64);
    assert_int_equal(ms_hist_total(&h), N);
    double qs[] = {0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1};
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        long rank = (long)ceil(qs[i] * N);
        int64_t exact = v[rank < 1 ? 0 : rank - 1];
        int64_t got = ms_hist_quantile(&h, qs[i]);
        assert_true(fabs((double)(got - exact)) <= MS_HIST_REL_ERROR * (double)exact + 0.5);
    }
    assert_true(h.n < 2000); /* the window spans what was seen, not every bucket */
    ms_hist_free(&h);
    free(v);
}

static void test_merge_is_adding(void **state)
{
    (void)state;
    ms_hist a = {0}, b = {0}, all = {0};
    for (int i = 0; i < 10000; i++) {
        int64_t x = (int64_t)(next() % 5000000);
        ms_hist_add(i % 3 ? &a : &b, x);
        ms_hist_add(&all, x);
    }
    ms_hist_add(&b, 3); /* b reaches below a's window */
    ms_hist_add(&all, 3);
    assert_int_equal(ms_hist_merge(&a, &b), 0);
    assert_int_equal(ms_hist_total(&a), ms_hist_total(&all));
    for (double q = 0; q <= 1; q += 0.05)
        assert_int_equal(ms_hist_quantile(&a, q), ms_hist_quantile(&all, q));
    ms_hist empty = {0};
    assert_int_equal(ms_hist_quantile(&empty, 0.5), 0);
    /* a reset histogram keeps its memory; a window that large, placed
     * near the top, must still hold the value it was placed for */
    ms_hist_add(&a, 1);
    ms_hist_add(&a, INT64_MAX); /* a window over every bucket */
    ms_hist_reset(&a);
    assert_true(a.cap >= MS_HIST_BUCKETS);
    for (int64_t v = INT64_C(1) << 60; v > 0; v >>= 1) {
        ms_hist_reset(&a);
        assert_int_equal(ms_hist_add(&a, v), 0);
        assert_true(a.lo <= ms_hist_bucket(v) && ms_hist_bucket(v) < a.lo + a.n);
        assert_int_equal(ms_hist_total(&a), 1);
    }
    ms_hist_free(&a);
    ms_hist_free(&b);
    ms_hist_free(&all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_hold_their_values),
        cmocka_unit_test(test_quantiles_within_the_stated_error),
        cmocka_unit_test(test_merge_is_adding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
