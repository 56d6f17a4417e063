/* The digest of a trace's ended spans (ms_digest): what a cut moves out
 * of the buffer is summarized first, so the digest plus the buffer hold
 * every ended span, with paths, usage, errors, retries and folds; it is
 * off unless asked for, and bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ms_digest.h"
#include "ms_trace.h"

static const ms_digest_span *by_name(const ms_digest *d, const char *name)
{
    for (uint32_t i = 0; i < d->n; i++)
        if (strcmp(ms_digest_str(d, d->spans[i].name), name) == 0)
            return &d->spans[i];
    return NULL;
}

static void test_cut_spans_stay_in_the_digest(void **state)
{
    (void)state;
    ms_trace t = {0}, part = {0};
    assert_int_equal(ms_trace_start(&t, "req", 3, 1000, NULL, 0), 0);
    assert_int_equal(ms_trace_keep_digest(&t), 0);
    uint32_t outer = ms_span_begin(&t, 0, "retrieve", 8, 1100);
    uint32_t call = ms_span_begin(&t, outer, "generate", 8, 1200);
    ms_llm_usage u = {.provider = "mock", .model = "m1", .input = 40, .output = 7, .cost_usd = 0.25,
                      .ttft_ns = -1};
    ms_span_set_llm(&t, call, &u);
    ms_span_add_retries(&t, call, 2, 1, 500);
    ms_span_set_int(&t, call, "k", 1, 3);
    ms_span_end(&t, call, 1700);
    /* cut while `retrieve` is open: generate leaves the buffer */
    assert_int_equal(ms_trace_cut(&t, &part, 1800), 0);
    assert_null(ms_trace_span(&t, call));
    assert_int_equal(t.digest->n, 1);
    const ms_digest_span *g = by_name(t.digest, "generate");
    assert_non_null(g);
    assert_string_equal(ms_digest_str(t.digest, g->path), "retrieve/generate");
    assert_string_equal(ms_digest_str(t.digest, g->model), "m1");
    assert_int_equal(g->input_tokens, 40);
    assert_int_equal(g->output_tokens, 7);
    assert_true(g->cost_usd == 0.25);
    assert_int_equal(g->duration_ns, 500);
    assert_int_equal(g->start_ns, 200);
    assert_int_equal(g->retries, 2);
    assert_int_equal(g->retry_state, MS_RETRY_SUCCEEDED);
    assert_string_equal(ms_digest_str(t.digest, g->attrs_json), "{\"k\":3}");

    /* a failing child of the still-open span, then the span ends: read
     * from the buffer with the digest for what left it */
    uint32_t bad = ms_span_begin(&t, outer, "tool", 4, 1900);
    ms_span_fail(&t, bad, 1, "ValueError", "no such city", 12, NULL);
    ms_span_end(&t, bad, 2000);
    ms_span_end(&t, outer, 2100);
    ms_digest now = {0};
    ms_digest_add_ended(&now, &t, t.digest);
    assert_int_equal(now.n, 2);
    const ms_digest_span *tool = by_name(&now, "tool");
    assert_string_equal(ms_digest_str(&now, tool->path), "retrieve/tool");
    assert_int_equal(tool->status, MS_STATUS_ERROR);
    assert_string_equal(ms_digest_str(&now, tool->error_type), "ValueError");
    assert_string_equal(ms_digest_str(&now, tool->error_message), "no such city");
    assert_int_equal(tool->input_tokens, -1);
    assert_true(isnan(tool->cost_usd));
    assert_non_null(by_name(&now, "retrieve"));
    ms_digest_free(&now);

    /* reuse turns it off and empties it */
    ms_trace_reset(&t);
    assert_int_equal(t.keep_digest, 0);
    assert_int_equal(t.digest->n, 0);
    ms_trace_free(&t);
    ms_trace_free(&part);
}

static void test_off_unless_asked_and_folds(void **state)
{
    (void)state;
    ms_trace t = {0}, part = {0};
    assert_int_equal(ms_trace_start(&t, "req", 3, 0, NULL, 0), 0);
    uint32_t a = ms_span_begin(&t, 0, "a", 1, 10);
    ms_span_end(&t, a, 20);
    assert_int_equal(ms_trace_cut(&t, &part, 30), 0);
    assert_null(t.digest); /* nothing kept, nothing allocated */
    ms_trace_free(&part);

    ms_trace_start(&t, "req", 3, 0, NULL, 0);
    ms_trace_keep_digest(&t);
    uint32_t f = ms_fold_open(&t, 0, "score", 5, 100);
    for (int i = 1; i <= 4; i++) {
        ms_fold_begin(&t, f);
        ms_fold_end(&t, f, 100 * i, 100 * i + 10 * i, i == 4);
    }
    ms_trace_cut(&t, &part, 1000);
    const ms_digest_span *e = by_name(t.digest, "score");
    assert_non_null(e);
    assert_int_equal(e->kind, MS_KIND_FOLD);
    assert_int_equal(e->count, 4);
    assert_int_equal(e->errors, 1);
    assert_int_equal(e->duration_ns, 100);
    assert_int_equal(e->min_ns, 10);
    assert_int_equal(e->max_ns, 40);
    ms_trace_free(&t);
    ms_trace_free(&part);
}

static void test_bounded(void **state)
{
    (void)state;
    ms_trace t = {0}, part = {0};
    ms_trace_start(&t, "req", 3, 0, NULL, 0);
    ms_trace_keep_digest(&t);
    for (int i = 0; i < MS_DIGEST_MAX + 5; i++) {
        uint32_t s = ms_span_begin(&t, 0, "s", 1, i);
        ms_span_end(&t, s, i + 1);
        if (ms_trace_wants_cut(&t, i + 1)) {
            ms_trace_reset(&part);
            ms_trace_cut(&t, &part, i + 1);
        }
    }
    ms_trace_reset(&part);
    ms_trace_cut(&t, &part, MS_DIGEST_MAX + 10);
    assert_int_equal(t.digest->n, MS_DIGEST_MAX);
    assert_int_equal(t.digest->dropped, 5);
    ms_trace_free(&t);
    ms_trace_free(&part);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_spans_stay_in_the_digest),
        cmocka_unit_test(test_off_unless_asked_and_folds),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
