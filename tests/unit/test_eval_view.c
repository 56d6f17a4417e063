/* test_eval_view — eval runs as the UI reads them (ms_eval_view.h) on a
 * real store: the list newest first with what is missing as null, a
 * run's cases paired with its baseline's, the stored comparison passed
 * on (empty lists as arrays), and text that is not JSON kept out. */
#include "store_fixture.h"

#include "ms_eval_view.h"

static char err[512];

static int open_store(void **state)
{
    *state = store_fixture_open("eval_view");
    return 0;
}

static char *view_runs(sqlite3 *db, long limit)
{
    ms_buf b = {0};
    if (ms_eval_view_runs(db, limit, &b, err, sizeof err))
        fail_msg("%s", err);
    return b.data;
}

static char *view_run(sqlite3 *db, int64_t id, int want)
{
    ms_buf b = {0};
    int rc = ms_eval_view_run(db, id, &b, err, sizeof err);
    if (rc != want)
        fail_msg("ms_eval_view_run(%lld) = %d, want %d: %s", (long long)id, rc, want, err);
    if (rc) {
        ms_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static void test_runs_newest_first(void **state)
{
    fixture *fx = *state;
    int64_t a = eval_run(fx->db, "qa", D1, "passed");
    int64_t b = eval_run(fx->db, "qa", D1 + 60 * SEC, "failed");
    int64_t c = eval_run(fx->db, "rag", D1 + 120 * SEC, NULL); /* still running */
    char *j = view_runs(fx->db, 0);
    char ka[32], kb[32], kc[32];
    snprintf(ka, sizeof ka, "{\"id\":%lld,", (long long)a);
    snprintf(kb, sizeof kb, "{\"id\":%lld,", (long long)b);
    snprintf(kc, sizeof kc, "{\"id\":%lld,", (long long)c);
    const char *pa = strstr(j, ka), *pb = strstr(j, kb), *pc = strstr(j, kc);
    assert_true(pa && pb && pc && pc < pb && pb < pa);
    /* the running one: no cases, pass rate or end yet, null not 0 */
    has(pc, "\"end_ns\":null,\"duration_ms\":null,\"status\":\"running\",\"cases\":null,\"passed\":null,"
            "\"pass_rate\":null");
    has(pa, "\"start\":\"2024-05-01T00:00:00.000Z\"");
    has(pa, "\"duration_ms\":1000,\"status\":\"passed\",\"cases\":1,\"passed\":1,\"pass_rate\":1,\"threshold\":0.9");
    /* no comparison stored: no baseline */
    has(pa, "\"baseline_id\":null,\"pass_verdict\":null}");
    has(j, "\"more\":false}");
    free(j);
    /* a limit says there are more */
    j = view_runs(fx->db, 2);
    hasnt(j, ka);
    has(j, "\"more\":true}");
    free(j);
}

static void test_run_cases_and_comparison(void **state)
{
    fixture *fx = *state;
    int64_t base = eval_run(fx->db, "qa", D1, "passed");
    eval_result(fx->db, base, "c1", 1, 1);
    eval_result(fx->db, base, "c2", 1, 1);
    int64_t cur = eval_run(fx->db, "qa", D1 + 60 * SEC, "failed");
    ms_eval_result r = {.case_id = "c1", .repeat_index = 1, .pass = 0, .latency_ms = 2.5, .cost_usd = 0.25,
                        .scores_json = "[{\"name\":\"exact\",\"score\":0,\"reason\":\"<b>no</b>\"}]",
                        .trace_id = "0123456789abcdef0123456789abcdef", .input_tokens = 3, .output_tokens = 4};
    assert_int_equal(ms_eval_result_add(fx->db, cur, &r, err, sizeof err), 0);
    r = (ms_eval_result){.case_id = "c3", .repeat_index = 1, .pass = 1, .latency_ms = 1, .cost_usd = NAN,
                         .scores_json = "not json", .error = NULL};
    assert_int_equal(ms_eval_result_add(fx->db, cur, &r, err, sizeof err), 0);
    /* the comparison as eval_compare.stored() leaves it: lists Lua wrote as {} */
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE eval_runs SET config = '{\"repeat_count\":1,\"comparison\":{\"baseline_run\":%lld,"
             "\"pairs\":1,\"pass\":{\"verdict\":\"regressed\",\"p\":0.5},\"scorers\":{},\"worse\":{}}}'"
             " WHERE id = %lld",
             (long long)base, (long long)cur);
    exec_sql(fx->db, sql);

    char *j = view_run(fx->db, cur, 0);
    has(j, "\"run\":{\"id\":");
    has(j, "\"repeat_count\":1,\"baseline_id\":");
    has(j, "\"pass_verdict\":\"regressed\"}");
    has(j, "\"gates\":null");
    has(j, "\"comparison\":{\"baseline_run\":");
    has(j, "\"scorers\":[],\"worse\":[]}");
    /* c1 failed against a baseline that passed: both traces named */
    has(j, "{\"case_id\":\"c1\",\"repeat\":1,\"pass\":false,\"error\":null,"
           "\"scores\":[{\"name\":\"exact\",\"score\":0,\"reason\":\"<b>no</b>\"}],\"latency_ms\":2.5,"
           "\"cost_usd\":0.25,\"input_tokens\":3,\"output_tokens\":4,"
           "\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"replayed\":false,\"baseline_pass\":true,");
    /* c3 is new: no partner; its scores were not JSON: null, never raw text */
    has(j, "{\"case_id\":\"c3\",\"repeat\":1,\"pass\":true,\"error\":null,\"scores\":null,");
    has(j, "\"baseline_pass\":null,\"baseline_trace_id\":null}");
    hasnt(j, "not json");
    free(j);

    /* without a comparison nothing is paired */
    j = view_run(fx->db, base, 0);
    has(j, "\"comparison\":null");
    hasnt(j, "\"baseline_pass\":true");
    free(j);

    assert_null(view_run(fx->db, 999, 1));
    has(err, "no eval run 999");
}

static void test_config_not_json(void **state)
{
    fixture *fx = *state;
    int64_t id = eval_run(fx->db, "qa", D1, "passed");
    exec_sql(fx->db, "UPDATE eval_runs SET config = '{broken'");
    char *j = view_run(fx->db, id, 0);
    has(j, "\"gates\":null,\"comparison\":null");
    has(j, "\"repeat_count\":null,\"baseline_id\":null");
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runs_newest_first, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(test_run_cases_and_comparison, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(test_config_not_json, open_store, store_fixture_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
