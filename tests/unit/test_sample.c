/* ms_sample: the head decision keeps its share and depends on the id
 * alone; tail rules keep failures, slow, costly and the slowest share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ms_sample.h"
#include "ms_trace.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static void random_id(ms_trace_id *id)
{
    for (int i = 0; i < 16; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        id->b[i] = (uint8_t)rng;
    }
}

static void test_head_keeps_its_share_by_id(void **state)
{
    (void)state;
    ms_sampling s = {.rate = 0.1};
    enum { N = 100000 };
    int kept = 0;
    for (int i = 0; i < N; i++) {
        ms_trace_id id;
        random_id(&id);
        int k = ms_sample_head(&s, &id);
        kept += k;
        assert_int_equal(ms_sample_head(&s, &id), k); /* the same id, the same answer */
    }
    /* 10% of 100,000: a binomial sd is ~95, so 5 sd either side */
    assert_in_range(kept, 10000 - 475, 10000 + 475);
    ms_sampling all = {.rate = 1};
    ms_trace_id id;
    random_id(&id);
    assert_true(ms_sample_head(&all, &id));
}

/* An id the head sample drops, for the tail rules to decide on. */
static void dropped_id(const ms_sampling *s, ms_trace_id *id)
{
    do
        random_id(id);
    while (ms_sample_head(s, id));
}

static void test_tail_rules(void **state)
{
    (void)state;
    ms_sampling s = {.rate = 0.01, .slower_ns = 2000000000, .costlier_usd = 0.05};
    ms_trace_id id;
    dropped_id(&s, &id);
    assert_int_equal(ms_sample_decide(NULL, &s, &id, "r", 1, 1000, NAN, MS_STATUS_OK), MS_DROP);
    assert_int_equal(ms_sample_decide(NULL, &s, &id, "r", 1, 1000, NAN, MS_STATUS_ERROR), MS_KEEP_STATUS);
    assert_int_equal(ms_sample_decide(NULL, &s, &id, "r", 1, 1000, NAN, MS_STATUS_INTERRUPTED),
                     MS_KEEP_STATUS);
    assert_int_equal(ms_sample_decide(NULL, &s, &id, "r", 1, 2000000000, NAN, MS_STATUS_OK), MS_KEEP_SLOW);
    assert_int_equal(ms_sample_decide(NULL, &s, &id, "r", 1, 1000, 0.05, MS_STATUS_OK), MS_KEEP_COSTLY);
    assert_int_equal(ms_sample_decide(NULL, &s, &id, "r", 1, 1000, 0.049, MS_STATUS_OK), MS_DROP);
}

/* The slowest 10% per name: over a uniform spread of durations about a
 * tenth are kept, and a name's durations do not decide for another's. */
static void test_slowest_share_per_name(void **state)
{
    (void)state;
    ms_sampling s = {.rate = 0.001, .slowest_share = 0.1};
    ms_sampler *sm = ms_sampler_new();
    int kept = 0, late = 0;
    for (int i = 0; i < 20000; i++) {
        ms_trace_id id;
        dropped_id(&s, &id);
        int64_t d = 1000000 + (int64_t)((i * 7919) % 1000) * 1000; /* 1 .. 2 ms, evenly */
        int k = ms_sample_decide(sm, &s, &id, "fast", 4, d, NAN, MS_STATUS_OK);
        kept += k == MS_KEEP_SLOWEST;
        if (i >= 10000)
            late += k == MS_KEEP_SLOWEST;
    }
    assert_in_range(late, 800, 1250); /* once learned: ~10% of 10,000, give or take a bucket */
    /* a slow name's first trace is its own slowest: kept */
    ms_trace_id id;
    dropped_id(&s, &id);
    assert_int_equal(ms_sample_decide(sm, &s, &id, "slow", 4, 1000, NAN, MS_STATUS_OK), MS_KEEP_SLOWEST);
    ms_sampler_free(sm);
    (void)kept;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_keeps_its_share_by_id),
        cmocka_unit_test(test_tail_rules),
        cmocka_unit_test(test_slowest_share_per_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
