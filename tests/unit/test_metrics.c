/* ms_metrics: the text exposition (buckets cumulative with le inclusive,
 * +Inf equal to _count, label values escaped and made UTF-8), the bound on
 * series per family, and the families left out while empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ms_metrics.h"

static ms_mstr S(const char *s) { return (ms_mstr){s, strlen(s)}; }

static char *expose(ms_metrics *m, ms_buf *b)
{
    ms_buf_reset(b);
    assert_int_equal(ms_metrics_write(m, b), 0);
    assert_non_null(b->data);
    return b->data;
}

/* The exposition goes to stderr in full when a line is missing. */
static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line)) {
        fprintf(stderr, "---- exposition ----\n%s\n--------------------\n", text);
        fail_msg("missing %s", line);
    }
}

static void assert_hasnt(const char *text, const char *part)
{
    if (strstr(text, part))
        fail_msg("unexpected %s", part);
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, pl) == 0;
    return n;
}

static void test_empty_registry_writes_nothing(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    ms_buf b = {0};
    assert_int_equal(ms_metrics_write(m, &b), 0);
    assert_int_equal(b.len, 0);
    ms_buf_free(&b);
    ms_metrics_free(m);
}

/* 0.01 s lands in le="0.01" (a value on a bound counts in it), 0.011 in
 * the next; a value past the last bound only in +Inf. */
static void test_histogram_buckets_are_cumulative_and_inclusive(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    ms_metrics_lock(m);
    ms_metrics_request(m, S("r"), 10000000, "ok");   /* 0.01 s */
    ms_metrics_request(m, S("r"), 11000000, "ok");   /* 0.011 s */
    ms_metrics_request(m, S("r"), INT64_C(100) * 1000000000, "ok"); /* 100 s */
    ms_metrics_unlock(m);
    ms_buf b = {0};
    const char *t = expose(m, &b);
    assert_non_null(strstr(t, "# TYPE moonspan_request_duration_seconds histogram\n"));
    assert_non_null(strstr(t, "moonspan_request_duration_seconds_bucket{trace_name=\"r\",le=\"0.01\"} 1\n"));
    assert_non_null(strstr(t, "moonspan_request_duration_seconds_bucket{trace_name=\"r\",le=\"0.02\"} 2\n"));
    assert_non_null(strstr(t, "moonspan_request_duration_seconds_bucket{trace_name=\"r\",le=\"81.92\"} 2\n"));
    assert_non_null(strstr(t, "moonspan_request_duration_seconds_bucket{trace_name=\"r\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "moonspan_request_duration_seconds_count{trace_name=\"r\"} 3\n"));
    assert_non_null(strstr(t, "moonspan_requests_total{trace_name=\"r\",status=\"ok\"} 3\n"));
    assert_int_equal(count_lines(t, "moonspan_request_duration_seconds_bucket{"), 15); /* 14 bounds + Inf */
    assert_int_equal(t[b.len - 1], '\n');
    ms_buf_free(&b);
    ms_metrics_free(m);
}

static void test_label_values_escaped_and_utf8(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    ms_metrics_lock(m);
    ms_metrics_error(m, (ms_mstr){"a\\b\"c\nd\xff" "e", 9});
    ms_metrics_unlock(m);
    ms_buf b = {0};
    const char *t = expose(m, &b);
    assert_non_null(strstr(t, "moonspan_errors_total{error_type=\"a\\\\b\\\"c\\nd\xEF\xBF\xBD" "e\"} 1\n"));
    ms_buf_free(&b);
    ms_metrics_free(m);
}

/* Past MS_METRICS_MAX_SERIES label sets, new ones go to one _other
 * series; the known ones keep counting. */
static void test_series_are_bounded(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    char name[32];
    ms_metrics_lock(m);
    for (int i = 0; i < MS_METRICS_MAX_SERIES + 50; i++) {
        snprintf(name, sizeof name, "step%d", i);
        ms_metrics_step(m, S(name), 1, 1000000);
    }
    ms_metrics_step(m, S("step0"), 1, 1000000);
    ms_metrics_unlock(m);
    ms_buf b = {0};
    const char *t = expose(m, &b);
    assert_int_equal(count_lines(t, "moonspan_step_duration_seconds_count{"), MS_METRICS_MAX_SERIES + 1);
    assert_non_null(strstr(t, "moonspan_step_duration_seconds_count{span_name=\"_other\"} 50\n"));
    assert_non_null(strstr(t, "moonspan_step_duration_seconds_count{span_name=\"step0\"} 2\n"));
    ms_buf_free(&b);
    ms_metrics_free(m);
}

/* Input tokens include cache reads and writes (GenAI); an unpriced or
 * replayed call adds no cost; TTFT only when streamed; error_type only
 * on a failed call. gen_ai_request_model is the model asked for,
 * gen_ai_response_model the one that answered (not on a failed call). */
static void test_llm_call_families(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    ms_metrics_lock(m);
    ms_metrics_llm ok = {.provider = S("openai"), .request_model = S("gpt-4o"), .model = S("gpt-4o-2024-08-06"),
                         .duration_ns = 300000000, .input = 100, .output = 20, .cache_read = 50,
                         .cache_write = 5, .cost_usd = 0.25, .ttft_ns = 50000000};
    ms_metrics_llm_call(m, &ok);
    ms_metrics_llm replayed = ok;
    replayed.replayed = 1;
    replayed.ttft_ns = -1;
    ms_metrics_llm_call(m, &replayed);
    ms_metrics_llm failed = {.provider = S("openai"), .request_model = S("gpt-4o"), .model = S("gpt-4o"),
                             .error_type = S("timeout"), .duration_ns = 1000000000, .cost_usd = NAN,
                             .ttft_ns = -1};
    ms_metrics_llm_call(m, &failed);
    /* no gen_ai.request.model on the span (received without one): the
     * stored model is both */
    ms_metrics_llm bare = {.provider = S("house"), .model = S("house-1"), .duration_ns = 1000000,
                           .cost_usd = 0.5, .ttft_ns = -1};
    ms_metrics_llm_call(m, &bare);
    ms_metrics_unlock(m);
    ms_buf b = {0};
    const char *t = expose(m, &b);
    const char *l = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o\"";
    const char *r = "gen_ai_response_model=\"gpt-4o-2024-08-06\"";
    char want[512];
    snprintf(want, sizeof want, "gen_ai_client_token_usage_sum{%s,%s,gen_ai_token_type=\"input\"} 310\n", l, r);
    assert_has(t, want);
    snprintf(want, sizeof want, "gen_ai_client_token_usage_bucket{%s,%s,gen_ai_token_type=\"input\",le=\"256\"} 2\n",
             l, r);
    assert_has(t, want);
    snprintf(want, sizeof want, "gen_ai_client_token_usage_count{%s,gen_ai_token_type=\"input\"} 1\n", l);
    assert_has(t, want); /* the failed call: no response model */
    snprintf(want, sizeof want, "gen_ai_client_operation_duration_seconds_count{%s,%s} 2\n", l, r);
    assert_has(t, want);
    snprintf(want, sizeof want, "gen_ai_client_operation_duration_seconds_count{%s,error_type=\"timeout\"} 1\n", l);
    assert_has(t, want);
    snprintf(want, sizeof want, "gen_ai_client_operation_time_to_first_chunk_seconds_count{%s,%s} 1\n", l, r);
    assert_has(t, want);
    assert_has(t, "moonspan_cost_usd_total{gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o\","
           "gen_ai_response_model=\"gpt-4o-2024-08-06\"} 0.25\n");
    assert_has(t, "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\","
           "gen_ai_provider_name=\"house\",gen_ai_request_model=\"house-1\",gen_ai_response_model=\"house-1\"} 1\n");
    assert_hasnt(t, "gen_ai_request_model=\"gpt-4o-2024-08-06\"");
    ms_buf_free(&b);
    ms_metrics_free(m);
}

/* A provider answering each call with another model name cannot grow the
 * LLM families past the bound either. */
static void test_answered_models_are_bounded(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    char name[32];
    ms_metrics_lock(m);
    for (int i = 0; i < MS_METRICS_MAX_SERIES + 30; i++) {
        snprintf(name, sizeof name, "gpt-4o-%d", i);
        ms_metrics_llm c = {.provider = S("openai"), .request_model = S("gpt-4o"), .model = S(name),
                            .duration_ns = 1000000, .cost_usd = NAN, .ttft_ns = -1};
        ms_metrics_llm_call(m, &c);
    }
    ms_metrics_unlock(m);
    ms_buf b = {0};
    const char *t = expose(m, &b);
    assert_int_equal(count_lines(t, "gen_ai_client_operation_duration_seconds_count{"), MS_METRICS_MAX_SERIES + 1);
    assert_has(t, "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"_other\","
           "gen_ai_provider_name=\"_other\",gen_ai_request_model=\"_other\",gen_ai_response_model=\"_other\"} 30\n");
    ms_buf_free(&b);
    ms_metrics_free(m);
}

static double depth(void *ud) { return *(double *)ud; }

static void test_queue_gauge(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    double d = 7;
    ms_metrics_set_queue_gauge(m, depth, &d);
    ms_buf b = {0};
    const char *t = expose(m, &b);
    assert_non_null(strstr(t, "# TYPE moonspan_writer_queue_depth gauge\nmoonspan_writer_queue_depth 7\n"));
    ms_buf_free(&b);
    ms_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry_writes_nothing),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_and_inclusive),
        cmocka_unit_test(test_label_values_escaped_and_utf8),
        cmocka_unit_test(test_series_are_bounded),
        cmocka_unit_test(test_llm_call_families),
        cmocka_unit_test(test_answered_models_are_bounded),
        cmocka_unit_test(test_queue_gauge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
