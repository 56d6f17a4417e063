/* The in-memory trace buffer (reuse without allocation, attributes,
 * totals, the timeline text) and the JSON writer it uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_timeline.h"
#include "ms_trace.h"

static void test_json_string_escapes(void **state)
{
    (void)state;
    ms_buf b = {0};
    const char in[] = "a\"b\\c\nd\te\x01 \xC3\xA9 \xFF end";
    ms_json_str(&b, in, sizeof in - 1);
    /* control characters escaped, valid UTF-8 kept, an invalid byte replaced by U+FFFD */
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\te\\u0001 \xC3\xA9 \xEF\xBF\xBD end\"");
    /* what a terminal would act on even inside a JSON string: DEL, C1 (CSI), bidi overrides */
    ms_buf_reset(&b);
    const char term[] = "x\x7f\xC2\x9B" "2J\xE2\x80\xAE" "y\xE2\x81\xA6" "z\xC2\xA0";
    ms_json_str(&b, term, sizeof term - 1);
    assert_string_equal(b.data, "\"x\\u007f\\u009b2J\\u202ey\\u2066z\xC2\xA0\"");
    ms_buf_free(&b);
}

static void test_json_numbers(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_json_num(&b, 12.0);
    ms_buf_addc(&b, ' ');
    ms_json_num(&b, 0.1);
    ms_buf_addc(&b, ' ');
    ms_json_num(&b, NAN);
    ms_buf_addc(&b, ' ');
    ms_json_int(&b, -42);
    assert_string_equal(b.data, "12 0.1 null -42");
    ms_buf_free(&b);
}

static void test_reuse_allocates_nothing_new(void **state)
{
    (void)state;
    ms_trace t = {0};
    for (int round = 0; round < 3; round++) {
        assert_int_equal(ms_trace_start(&t, "root", 4, 100, NULL, 0), 0);
        for (int i = 0; i < 1000; i++) {
            uint32_t s = ms_span_begin(&t, 0, "step", 4, 100 + i);
            ms_span_set_int(&t, s, "i", 1, i);
            ms_span_end(&t, s, 101 + i);
        }
        ms_trace_end(&t, 5000);
    }
    /* after the first round the arrays are big enough: same memory after a reset */
    void *spans = t.spans, *arena = t.arena, *attrs = t.attrs;
    uint32_t cap = t.cap_spans;
    assert_int_equal(ms_trace_start(&t, "root", 4, 100, NULL, 0), 0);
    for (int i = 0; i < 1000; i++)
        ms_span_end(&t, ms_span_begin(&t, 0, "step", 4, 100 + i), 101 + i);
    assert_ptr_equal(t.spans, spans);
    assert_ptr_equal(t.arena, arena);
    assert_ptr_equal(t.attrs, attrs);
    assert_int_equal(t.cap_spans, cap);
    assert_int_equal(t.nspans, 1001);
    ms_trace_free(&t);
}

static void test_end_closes_open_spans(void **state)
{
    (void)state;
    ms_trace t = {0};
    ms_trace_start(&t, "r", 1, 10, NULL, 0);
    uint32_t a = ms_span_begin(&t, 0, "a", 1, 20);
    ms_span_begin(&t, a, "b", 1, 30);
    ms_trace_end(&t, 90);
    assert_int_equal(t.spans[0].end, 90);
    assert_int_equal(t.spans[1].end, 90);
    assert_int_equal(t.spans[2].end, 90);
    ms_trace_free(&t);
}

static void test_totals_and_status(void **state)
{
    (void)state;
    ms_trace t = {0};
    ms_trace_start(&t, "r", 1, 0, NULL, 0);
    ms_trace_totals tot;
    ms_trace_totals_get(&t, &tot);
    assert_true(isnan(tot.cost_usd)); /* no priced call: unknown, not $0 */
    assert_int_equal(ms_trace_status(&t), MS_STATUS_OK);
    uint32_t a = ms_span_begin(&t, 0, "a", 1, 1);
    ms_llm_usage u = {"p", "m", 100, 10, 0, 0, 0.5, -1, 0, 0};
    ms_span_set_llm(&t, a, &u);
    uint32_t b = ms_span_begin(&t, 0, "b", 1, 1);
    ms_llm_usage u2 = {"p", "x", 1, 1, 0, 0, NAN, -1, 0, 0};
    ms_span_set_llm(&t, b, &u2);
    ms_span_fail(&t, b, 1, "e", "m", 1, NULL);
    ms_trace_totals_get(&t, &tot);
    assert_int_equal(tot.tokens.input, 101);
    assert_true(tot.cost_usd == 0.5);
    assert_int_equal(tot.unknown_cost_calls, 1);
    assert_int_equal(tot.errors, 1);
    /* an error that a child raised and the request survived: still ok */
    assert_int_equal(ms_trace_status(&t), MS_STATUS_OK);
    ms_span_fail(&t, 0, 0, "e", "m", 1, NULL);
    assert_int_equal(ms_trace_status(&t), MS_STATUS_ERROR);
    ms_trace_totals_get(&t, &tot);
    assert_int_equal(tot.errors, 1); /* passed through, not counted again */
    ms_trace_free(&t);
}

static void test_summary_is_a_timeline(void **state)
{
    (void)state;
    ms_trace t = {0};
    ms_trace_start(&t, "answer", 6, 0, NULL, 0);
    uint32_t s = ms_span_begin(&t, 0, "search", 6, 1000000);
    ms_span_end(&t, s, 13000000);
    uint32_t g = ms_span_begin(&t, 0, "generate", 8, 13000000);
    uint32_t c = ms_span_begin(&t, g, "chat mock", 9, 13000000);
    ms_llm_usage u = {"mock", "mock", 12, 3, 0, 0, NAN, -1, 1, 0};
    ms_span_set_llm(&t, c, &u);
    ms_span_add_retries(&t, c, 2, 1, 0);
    ms_span_end(&t, c, 133000000);
    ms_span_end(&t, g, 133000000);
    ms_trace_end(&t, 133000000);
    ms_buf b = {0};
    ms_trace_summary(&t, 133000000, &b);
    assert_non_null(strstr(b.data, "trace answer "));
    assert_non_null(strstr(b.data, "  133 ms  ok\n"));
    assert_non_null(strstr(b.data, "tokens 12 in / 3 out"));
    assert_non_null(strstr(b.data, "cost unknown for 1 call"));
    assert_non_null(strstr(b.data, "\n      +1.00 ms    12.0 ms  search\n"));
    assert_non_null(strstr(b.data, "  generate\n"));
    assert_non_null(strstr(b.data, "    chat mock  [mock/mock 12 in, 3 out (estimated), cost unknown]  retries 2 (succeeded)"));
    /* children follow their parent, indented one level more */
    assert_true(strstr(b.data, "generate") < strstr(b.data, "chat mock"));
    ms_buf_free(&b);
    ms_trace_free(&t);
}

/* Profiler samples add up by (span, function); a cut moves those of
 * ended spans into the part and keeps those of open spans, once each. */
static void test_samples_follow_their_span_through_a_cut(void **state)
{
    (void)state;
    ms_trace t = {0}, part = {0};
    assert_int_equal(ms_trace_start(&t, "root", 4, 100, NULL, 0), 0);
    uint32_t done = ms_span_begin(&t, 0, "done", 4, 110);
    uint32_t open = ms_span_begin(&t, 0, "open", 4, 120);
    ms_span_add_samples(&t, done, 7, "hot", 3, "a.lua", 5, 3, 2, 2000000);
    ms_span_add_samples(&t, done, 7, "hot", 3, "a.lua", 5, 3, 3, 3000000);
    ms_span_add_samples(&t, done, 8, "cheap", 5, "a.lua", 5, 9, 1, 1000000);
    ms_span_add_samples(&t, open, 7, "hot", 3, "a.lua", 5, 3, 4, 4000000);
    assert_int_equal(t.nprof, 3);
    assert_int_equal(t.prof[0].samples, 5);
    assert_int_equal(t.prof[0].self_ns, 5000000);
    ms_span_end(&t, done, 130);
    assert_int_equal(ms_trace_cut(&t, &part, 140), 0);
    /* the part writes done's two entries; open's went back to the trace */
    uint32_t in_part = 0;
    for (uint32_t i = 0; i < part.nprof; i++) {
        if (!part.prof[i].samples)
            continue;
        in_part += part.prof[i].samples;
        assert_int_equal(part.prof[i].span, done);
    }
    assert_int_equal(in_part, 6);
    assert_int_equal(t.nprof, 1);
    assert_int_equal(t.prof[0].span, open);
    assert_int_equal(t.prof[0].samples, 4);
    assert_string_equal(ms_trace_str(&t, t.prof[0].function), "hot");
    assert_string_equal(ms_trace_str(&t, t.prof[0].source), "a.lua");
    /* more samples of the open span add to the entry it kept */
    ms_span_add_samples(&t, open, 7, "hot", 3, "a.lua", 5, 3, 1, 1000000);
    assert_int_equal(t.nprof, 1);
    assert_int_equal(t.prof[0].samples, 5);
    ms_trace_reset(&t);
    assert_int_equal(t.nprof, 0);
    ms_trace_free(&t);
    ms_trace_free(&part);
}

/* The closing timeline of a fine trace: siblings of one name folded
 * into one line with their spread, times in the unit that fits, and no
 * more lines than asked for, the rest counted. */
static void test_timeline_folds_and_stays_bounded(void **state)
{
    (void)state;
    ms_trace t = {0};
    ms_trace_start(&t, "request", 7, 0, NULL, 0);
    uint32_t r = ms_span_begin(&t, 0, "rerank", 6, 1000);
    int64_t at = 1000;
    for (int i = 0; i < 1000; i++) { /* 2 us each, but every 100th 9 us */
        uint32_t d = ms_span_begin(&t, r, "score_doc", 9, at);
        ms_span_end(&t, ms_span_begin(&t, d, "tokenize", 8, at), at + 1000);
        at += i % 100 == 99 ? 9000 : 2000;
        ms_span_end(&t, d, at);
    }
    ms_span_end(&t, r, at);
    char name[16];
    for (int i = 0; i < 100; i++) { /* 100 names: no folding helps */
        snprintf(name, sizeof name, "tool%d", i);
        ms_span_end(&t, ms_span_begin(&t, 0, name, strlen(name), at), at + 3000);
        at += 3000;
    }
    ms_trace_end(&t, at);

    ms_buf b = {0};
    ms_trace_timeline(&t, at, 40, &b);
    const char *x = b.data;
    assert_non_null(strstr(x, "\n      +1.00 \xc2\xb5s    2.07 ms  rerank\n"));
    /* 990 of 2 us and 10 of 9 us: p50 2, p95 2, max 9 */
    assert_non_null(strstr(x, "\n      +1.00 \xc2\xb5s  \xce\xa3 2.07 ms    score_doc \xc3\x97" "1000"
                              "  p50 2.00 \xc2\xb5s  p95 2.00 \xc2\xb5s  max 9.00 \xc2\xb5s\n"));
    assert_non_null(strstr(x, "tokenize \xc3\x97" "1000  p50 1.00 \xc2\xb5s"));
    assert_non_null(strstr(x, "  tool36\n"));
    assert_null(strstr(x, "tool37"));
    /* 3 header lines, 40 of spans, one saying what is left */
    int lines = 0;
    for (const char *p = x; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2 + 40 + 1);
    assert_non_null(strstr(x, "  ... 63 more spans (`moonspan show "));

    /* ctx:summary() keeps every line, still folded */
    ms_buf_reset(&b);
    ms_trace_summary(&t, at, &b);
    assert_non_null(strstr(b.data, "  tool99\n"));
    assert_null(strstr(b.data, "more spans"));
    assert_non_null(strstr(b.data, "score_doc \xc3\x97" "1000"));
    ms_buf_free(&b);
    ms_trace_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string_escapes),
        cmocka_unit_test(test_json_numbers),
        cmocka_unit_test(test_reuse_allocates_nothing_new),
        cmocka_unit_test(test_end_closes_open_spans),
        cmocka_unit_test(test_totals_and_status),
        cmocka_unit_test(test_summary_is_a_timeline),
        cmocka_unit_test(test_samples_follow_their_span_through_a_cut),
        cmocka_unit_test(test_timeline_folds_and_stays_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
