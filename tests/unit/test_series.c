/* test_series — the report over time (ms_series.h) on the hand-made store
 * of views_fixture.h: each bucket's numbers worked out by hand, and equal
 * to `report` over the bucket's window. */
#include "views_fixture.h"

#include "ms_report.h"
#include "ms_series.h"

#define HOUR (INT64_C(3600) * SEC)

/* NEAR with an anchor that need not be a literal (a bucket found at run time) */
#define AT(doc, anchor, key, want) near(jnum(doc, anchor, key), want, key)

/* The series of the selection `sel` by `bucket`, in fx->out. */
static void series(fixture *fx, const ms_select *sel, enum ms_series_bucket bucket)
{
    ms_buf b = {0};
    err_[0] = 0;
    if (ms_series_json(fx->db, sel, bucket, &b, err_, sizeof err_) != 0)
        fail_msg("series failed: %s", err_);
    free(fx->out);
    fx->out = strdup(b.data);
    ms_buf_free(&b);
}

/* The bucket object of the series that starts at `start_ns`. */
static const char *bucket_at(const char *doc, int64_t start_ns)
{
    char k[64];
    snprintf(k, sizeof k, "{\"start_ns\":%lld,", (long long)start_ns);
    const char *p = strstr(doc, k);
    if (!p)
        fail_msg("no bucket %s in %s", k, doc);
    return p;
}

static void test_series_days(void **state)
{
    fixture *fx = *state;
    ms_select sel = {0};
    series(fx, &sel, MS_SERIES_DAY);
    const char *j = fx->out;
    has(j, "{\"bucket\":\"day\",\"buckets\":[");
    /* three days have traces: 05-01 (T1, T2), 05-02 (T3), 06-15 (T4, T5);
     * the days between are gaps, not zeros */
    has(j, "\"start\":\"2024-05-01T00:00:00Z\"");
    hasnt(j, "2024-05-03T00:00:00Z");
    const char *d1 = bucket_at(j, D1), *d2 = bucket_at(j, D2), *d3 = bucket_at(j, D3);
    assert_true(d1 < d2 && d2 < d3);

    /* 05-01: durations 100, 200: p50 150, p95 195, p99 199; T2 an error */
    AT(d1, NULL, "requests", 2);
    AT(d1, NULL, "error_requests", 1);
    AT(d1, NULL, "error_rate", 0.5);
    AT(d1, NULL, "p50_ms", 150);
    AT(d1, NULL, "p95_ms", 195);
    AT(d1, NULL, "p99_ms", 199);
    AT(d1, NULL, "input_tokens", 300);
    AT(d1, NULL, "cost_usd", 0.03);
    AT(d1, NULL, "avg_usd_per_request", 0.015);
    /* T2's call retried twice and failed */
    AT(d1, NULL, "retried_calls", 1);
    AT(d1, NULL, "retry_succeeded", 0);
    AT(d1, NULL, "retry_success_rate", 0);
    /* its steps: generate 50 and 150 -> p50 100, p95 145 */
    AT(d1, "\"label\":\"generate\"", "count", 2);
    AT(d1, "\"label\":\"generate\"", "p50_ms", 100);
    AT(d1, "\"label\":\"generate\"", "p95_ms", 145);

    /* 05-02: T3 alone, its call unpriced: cost null, not 0; its retry saved it */
    AT(d2, NULL, "p99_ms", 300);
    assert_true(isnan(jnum(d2, NULL, "cost_usd")));
    assert_true(isnan(jnum(d2, NULL, "avg_usd_per_request")));
    AT(d2, NULL, "unknown_cost_calls", 1);
    AT(d2, NULL, "retry_success_rate", 1);

    /* 06-15: T4 (batch_eval, 400) and T5 (answer_question, 1000), by name too */
    AT(d3, NULL, "p50_ms", 700);
    AT(d3, "\"name\":\"batch_eval\"", "p95_ms", 400);
    AT(d3, "\"name\":\"batch_eval\"", "error_rate", 1);
    AT(d3, "\"name\":\"answer_question\"", "p95_ms", 1000);
    AT(d3, "\"name\":\"answer_question\"", "cost_usd", 0.04);
    /* no retry that day: the rate is null, not 0 */
    assert_true(isnan(jnum(d3, NULL, "retry_success_rate")));
}

static void test_series_hours_and_selection(void **state)
{
    fixture *fx = *state;
    ms_select sel = {.name_glob = "answer_*"};
    series(fx, &sel, MS_SERIES_HOUR);
    const char *j = fx->out;
    has(j, "{\"bucket\":\"hour\"");
    /* T1 at 00:00:10 and T2 at 01:00:00 fall in two hours */
    AT(bucket_at(j, D1), NULL, "p50_ms", 100);
    AT(bucket_at(j, D1 + HOUR), NULL, "p50_ms", 200);
    /* the selection applies: batch_eval is not read */
    hasnt(j, "batch_eval");
    AT(bucket_at(j, D3), NULL, "requests", 1);
}

/* A bucket's request and step percentiles are the report's over the
 * bucket's window, to the last digit of the JSON. */
static void test_series_equals_report(void **state)
{
    fixture *fx = *state;
    ms_select sel = {0};
    series(fx, &sel, MS_SERIES_DAY);
    char *s = strdup(fx->out);
    ms_report_opts o = {.sel = {.since_ns = D1, .until_ns = D1 + 86400 * SEC}, .json = 1};
    CAPTURE(fx, ms_report_write(fx->db, &o, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *d1 = bucket_at(s, D1);
    for (int i = 0; i < 3; i++) {
        static const char *const rk[3] = {"p50", "p95", "p99"}, *const sk[3] = {"p50_ms", "p95_ms", "p99_ms"};
        near(jnum(d1, NULL, sk[i]), jnum(fx->out, "\"latency_ms\"", rk[i]), rk[i]);
        near(jnum(d1, "\"label\":\"search\"", sk[i]), jnum(fx->out, "\"name\":\"search\"", sk[i]), sk[i]);
    }
    near(jnum(d1, NULL, "avg_usd_per_request"), jnum(fx->out, "\"cost\"", "avg_usd_per_request"), "cost");
    near(jnum(d1, NULL, "error_rate"), jnum(fx->out, "\"errors\"", "rate"), "error rate");
    free(s);
}

static void test_series_empty_and_too_many(void **state)
{
    fixture *fx = *state;
    ms_select sel = {.name_glob = "nothing*"};
    series(fx, &sel, MS_SERIES_DAY);
    has(fx->out, "{\"bucket\":\"day\",\"buckets\":[]}");

    /* 10,001 traces in as many hours (summary rows: no spans) are more
     * buckets than a reply holds: refused with the fix */
    exec_sql(fx->db, "WITH RECURSIVE h(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM h WHERE i <= 10000)"
                     " INSERT INTO traces (trace_id, name, start_ns, duration_ns, status, error_count,"
                     " span_count, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
                     " unknown_cost_calls, sampled_out)"
                     " SELECT printf('%032x', i), 'hourly', 1600000000000000000 + i * 3600000000000, 1000,"
                     " 'ok', 0, 1, 0, 0, 0, 0, 0, 1 FROM h");
    ms_select all = {0};
    ms_buf b = {0};
    assert_int_equal(ms_series_json(fx->db, &all, MS_SERIES_HOUR, &b, err_, sizeof err_), MS_SERIES_TOO_WIDE);
    has(err_, "more than 10000 hours");
    has(err_, "bucket=day");
    /* by day they fit */
    ms_buf_reset(&b);
    assert_int_equal(ms_series_json(fx->db, &all, MS_SERIES_DAY, &b, err_, sizeof err_), 0);
    ms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_series_days, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_series_hours_and_selection, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_series_equals_report, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_series_empty_and_too_many, dataset, close_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
