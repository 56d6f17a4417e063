/* Ids (W3C format, randomness, traceparent) and the two clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "ms_clock.h"
#include "ms_ids.h"

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == 0;
}

static void test_span_id_hex_format(void **state)
{
    (void)state;
    char hex[17];
    ms_span_id_hex(0x00f067aa0ba902b7ull, hex);
    assert_string_equal(hex, "00f067aa0ba902b7");
    ms_span_id_hex(UINT64_MAX, hex);
    assert_string_equal(hex, "ffffffffffffffff");
    for (int i = 0; i < 1000; i++) {
        uint64_t id = ms_span_id_new();
        assert_true(id != 0);
        ms_span_id_hex(id, hex);
        assert_true(is_lower_hex(hex, 16));
    }
}

static void test_trace_id_hex_format(void **state)
{
    (void)state;
    ms_trace_id id;
    char hex[33];
    for (int i = 0; i < 1000; i++) {
        ms_trace_id_new(&id);
        ms_trace_id_hex(&id, hex);
        assert_int_equal(strlen(hex), 32);
        assert_true(is_lower_hex(hex, 32));
        assert_string_not_equal(hex, "00000000000000000000000000000000");
    }
}

static void test_ids_do_not_repeat(void **state)
{
    (void)state;
    enum { N = 20000 };
    static uint64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = ms_span_id_new();
    /* 20,000 random 64-bit ids collide with probability ~1e-11 */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j += 97)
            assert_true(ids[i] != ids[j]);
    for (int i = 1; i < N; i++)
        assert_true(ids[i] != ids[i - 1]);
}

static void test_traceparent_round_trip(void **state)
{
    (void)state;
    ms_trace_id t;
    uint64_t parent;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_int_equal(ms_traceparent_parse(tp, &t, &parent), 0);
    char hex[33];
    ms_trace_id_hex(&t, hex);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_true(parent == 0x00f067aa0ba902b7ull);
    char out[56];
    ms_traceparent_format(&t, parent, out);
    assert_string_equal(out, tp);
}

static void test_traceparent_rejects_malformed(void **state)
{
    (void)state;
    ms_trace_id t;
    uint64_t p;
    const char *bad[] = {
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* no flags */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* invalid version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* v00 with extra */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_traceparent_parse(bad[i], &t, &p), -1);
}

static void test_monotonic_clock_never_goes_back(void **state)
{
    (void)state;
    int64_t prev = ms_mono_ns();
    for (int i = 0; i < 100000; i++) {
        int64_t now = ms_mono_ns();
        assert_true(now >= prev);
        prev = now;
    }
    struct timespec ts = {0, 2000000};
    int64_t a = ms_mono_ns();
    nanosleep(&ts, NULL);
    assert_true(ms_mono_ns() - a >= 2000000);
}

static void test_epoch_matches_wall_clock(void **state)
{
    (void)state;
    ms_clock_init();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t wall_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
    int64_t ours = ms_epoch_ns();
    /* same timeline, read a few microseconds apart */
    assert_true(ours - wall_ns < 50000000 && wall_ns - ours < 50000000);
    int64_t m = ms_mono_ns();
    assert_true(ms_mono_to_epoch(m + 1000) - ms_mono_to_epoch(m) == 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_id_hex_format),
        cmocka_unit_test(test_trace_id_hex_format),
        cmocka_unit_test(test_ids_do_not_repeat),
        cmocka_unit_test(test_traceparent_round_trip),
        cmocka_unit_test(test_traceparent_rejects_malformed),
        cmocka_unit_test(test_monotonic_clock_never_goes_back),
        cmocka_unit_test(test_epoch_matches_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
