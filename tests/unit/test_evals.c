/* test_evals — the eval store API (ms_evals.h) on a real store file, and
 * what the report makes of it: the evals section and live spend apart
 * from the recorded cost of replayed calls.
 *
 * Costs in the replay tests are binary fractions (0.25, 0.0625) so sums and
 * differences are exact and the JSON can be matched as text. */
#include "store_fixture.h"

#include "ms_evals.h"
#include "ms_report.h"
#include "ms_show.h"
#include "ms_traces.h"
#include "ms_sha256.h"
#include "ms_tracer.h"

static char err[512];

static int open_store(void **state)
{
    fixture *fx = store_fixture_open("evals");
    *state = fx;
    return 0;
}

static void err_has(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* --- runs ------------------------------------------------------------- */

static void test_run_begin_finish_get(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    ms_eval_run_info info = {.run_id = 7, .suite = "capitals", .suite_file = "evals/qa.lua",
                             .git_commit = "0123abc", .start_ns = D1,
                             .config_json = "{\"concurrency\":4}", .threshold = 0.9,
                             .replay_of = 0, .recorded = 1};
    int64_t id = 0;
    assert_int_equal(ms_eval_run_begin(db, &info, &id, err, sizeof err), 0);
    assert_true(id > 0);

    ms_eval_run_row row;
    assert_int_equal(ms_eval_run_get(db, id, &row, err, sizeof err), 0);
    assert_int_equal(row.id, id);
    assert_int_equal(row.run_id, 7);
    assert_string_equal(row.suite, "capitals");
    assert_string_equal(row.suite_file, "evals/qa.lua");
    assert_string_equal(row.git_commit, "0123abc");
    assert_string_equal(row.config_json, "{\"concurrency\":4}");
    assert_string_equal(row.status, "running");
    assert_int_equal(row.start_ns, D1);
    assert_int_equal(row.end_ns, 0);
    assert_true(isnan(row.pass_rate) && isnan(row.p50_ms) && isnan(row.cost_usd));
    assert_true(row.threshold == 0.9);
    assert_int_equal(row.replay_of, 0);
    assert_int_equal(row.recorded, 1);
    ms_eval_run_row_free(&row);
    ms_eval_run_row_free(&row); /* twice is safe */

    ms_eval_summary s = {.end_ns = D1 + 5 * SEC, .cases = 4, .passed = 3, .pass_rate = 0.75,
                         .p50_ms = 120.5, .p95_ms = 900, .cost_usd = NAN,
                         .replayed_cost_usd = 0.25, .status = "failed"};
    assert_int_equal(ms_eval_run_finish(db, id, &s, err, sizeof err), 0);
    assert_int_equal(ms_eval_run_get(db, id, &row, err, sizeof err), 0);
    assert_string_equal(row.status, "failed");
    assert_int_equal(row.end_ns, D1 + 5 * SEC);
    assert_int_equal(row.cases, 4);
    assert_int_equal(row.passed, 3);
    assert_true(row.pass_rate == 0.75 && row.p50_ms == 120.5 && row.p95_ms == 900);
    assert_true(isnan(row.cost_usd)); /* unknown stays unknown */
    assert_true(row.replayed_cost_usd == 0.25);
    ms_eval_run_row_free(&row);
    assert_int_equal(one_int(db, "SELECT cost_usd IS NULL FROM eval_runs"), 1);

    /* defaults: no git commit, no config, no threshold, a replay of `id` */
    ms_eval_run_info bare = {.suite = "capitals", .suite_file = "evals/qa.lua", .start_ns = D1,
                             .threshold = NAN, .replay_of = id};
    int64_t id2;
    assert_int_equal(ms_eval_run_begin(db, &bare, &id2, err, sizeof err), 0);
    assert_int_equal(ms_eval_run_get(db, id2, &row, err, sizeof err), 0);
    assert_null(row.git_commit);
    assert_string_equal(row.config_json, "{}");
    assert_true(isnan(row.threshold));
    assert_int_equal(row.replay_of, id);
    assert_int_equal(row.recorded, 0);
    assert_int_equal(row.run_id, 0);
    ms_eval_run_row_free(&row);
    assert_int_equal(one_int(db, "SELECT run_id IS NULL AND git_commit IS NULL"
                                 " FROM eval_runs WHERE id = 2"), 1);
}

static void test_run_errors(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    int64_t id = 99;
    ms_eval_run_info info = {.suite = NULL, .suite_file = "x.lua"};
    assert_int_equal(ms_eval_run_begin(db, &info, &id, err, sizeof err), -1);
    err_has("needs a suite name");
    assert_int_equal(id, 0);
    info.suite = "";
    assert_int_equal(ms_eval_run_begin(db, &info, &id, err, sizeof err), -1);
    err_has("needs a suite name");
    info.suite = "s";
    info.suite_file = NULL;
    assert_int_equal(ms_eval_run_begin(db, &info, &id, err, sizeof err), -1);
    err_has("eval run of suite s: the suite file is missing");
    assert_int_equal(one_int(db, "SELECT count(*) FROM eval_runs"), 0);

    ms_eval_summary s = {.status = "passed", .pass_rate = 1};
    assert_int_equal(ms_eval_run_finish(db, 42, &s, err, sizeof err), -1);
    err_has("cannot finish eval run 42: there is no such run");
    id = eval_run(db, "s", D1, NULL);
    s.status = "done";
    assert_int_equal(ms_eval_run_finish(db, id, &s, err, sizeof err), -1);
    err_has("status must be \"passed\" or \"failed\", not \"done\"");
    s.status = NULL;
    assert_int_equal(ms_eval_run_finish(db, id, &s, err, sizeof err), -1);
    err_has("not NULL");
    assert_int_equal(one_int(db, "SELECT status = 'running' FROM eval_runs"), 1);

    ms_eval_run_row row;
    assert_int_equal(ms_eval_run_get(db, 999, &row, err, sizeof err), 1);
    err_has("no eval run 999 in this store");
    assert_null(row.suite);
    ms_eval_run_row_free(&row);
}

/* --- results ---------------------------------------------------------- */

typedef struct seen {
    int n, stop_at;
    char ids[8][32];
    int64_t repeats[8];
    double cost[8];
    char scores[8][64];
    int pass[8], replayed[8];
    int error_null[8];
} seen;

static int collect(void *ud, const ms_eval_result *r)
{
    seen *s = ud;
    int i = s->n++;
    snprintf(s->ids[i], sizeof s->ids[i], "%s", r->case_id);
    s->repeats[i] = r->repeat_index;
    s->cost[i] = r->cost_usd;
    snprintf(s->scores[i], sizeof s->scores[i], "%s", r->scores_json ? r->scores_json : "NULL");
    s->pass[i] = r->pass;
    s->replayed[i] = r->replayed;
    s->error_null[i] = r->error == NULL;
    return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static void test_results_add_and_each(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    int64_t a = eval_run(db, "s", D1, NULL), b = eval_run(db, "s", D1 + 1, NULL);
    ms_eval_result r = {.case_id = "paris", .repeat_index = 1, .input_json = "\"capital of France?\"",
                        .expected_json = "\"Paris\"", .output_json = "\"Paris.\"",
                        .scores_json = "[{\"name\":\"contains\",\"score\":1}]", .pass = 1,
                        .trace_id = "aaaa0000000000000000000000000001", .latency_ms = 12.5,
                        .input_tokens = 10, .output_tokens = 3, .cost_usd = 0.001, .replayed = 1};
    assert_int_equal(ms_eval_result_add(db, a, &r, err, sizeof err), 0);
    r.repeat_index = 0;
    r.cost_usd = NAN;
    r.replayed = 0;
    assert_int_equal(ms_eval_result_add(db, a, &r, err, sizeof err), 0);
    ms_eval_result bad = {.case_id = "berlin", .scores_json = NULL, .pass = 0,
                          .error = "scorer raised: boom", .latency_ms = NAN, .cost_usd = NAN};
    assert_int_equal(ms_eval_result_add(db, a, &bad, err, sizeof err), 0);
    r.case_id = "other-run";
    assert_int_equal(ms_eval_result_add(db, b, &r, err, sizeof err), 0);

    /* stored as given; NaN as NULL */
    assert_int_equal(one_int(db, "SELECT count(*) FROM eval_results WHERE cost_usd IS NULL"), 3);
    assert_int_equal(one_int(db, "SELECT latency_ms IS NULL AND input IS NULL FROM eval_results"
                                 " WHERE case_id = 'berlin'"), 1);
    assert_int_equal(one_int(db, "SELECT input_tokens * 100 + output_tokens FROM eval_results"
                                 " WHERE case_id = 'paris' AND repeat_index = 1"), 1003);

    seen s = {0};
    assert_int_equal(ms_eval_results_each(db, a, collect, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 3);
    /* by case id, then repeat */
    assert_string_equal(s.ids[0], "berlin");
    assert_string_equal(s.ids[1], "paris");
    assert_string_equal(s.ids[2], "paris");
    assert_int_equal(s.repeats[1], 0);
    assert_int_equal(s.repeats[2], 1);
    assert_true(isnan(s.cost[1]));
    assert_true(s.cost[2] == 0.001);
    assert_int_equal(s.replayed[2], 1);
    assert_int_equal(s.replayed[1], 0);
    assert_int_equal(s.pass[0], 0);
    assert_int_equal(s.error_null[0], 0);
    assert_int_equal(s.error_null[1], 1);
    assert_string_equal(s.scores[0], "NULL");
    assert_string_equal(s.scores[1], "[{\"name\":\"contains\",\"score\":1}]");

    /* a callback that stops: its value comes back */
    seen stop = {.stop_at = 2};
    assert_int_equal(ms_eval_results_each(db, a, collect, &stop, err, sizeof err), 7);
    assert_int_equal(stop.n, 2);
    /* a run without results visits nothing */
    seen none = {0};
    assert_int_equal(ms_eval_results_each(db, 12345, collect, &none, err, sizeof err), 0);
    assert_int_equal(none.n, 0);

    ms_eval_result noid = {.case_id = ""};
    assert_int_equal(ms_eval_result_add(db, a, &noid, err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "eval run %lld: a result needs a case id", (long long)a);
    err_has(want);
}

/* --- find_run --------------------------------------------------------- */

static void test_find_run(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    int64_t out = 5;
    assert_int_equal(ms_eval_find_run(db, "capitals", "last", 0, &out, err, sizeof err), 1);
    err_has("no earlier run of suite capitals to compare with; run it once without --baseline");
    assert_int_equal(out, 0);

    int64_t r1 = eval_run(db, "capitals", D1, "passed");
    int64_t r2 = eval_run(db, "capitals", D1 + 10, "failed");
    int64_t other = eval_run(db, "rivers", D1 + 20, "passed");
    int64_t running = eval_run(db, "capitals", D1 + 30, NULL); /* not finished: never "last" */
    int64_t tie = eval_run(db, "capitals", D1 + 10, "passed"); /* same start as r2, later id */

    assert_int_equal(ms_eval_find_run(db, "capitals", "last", running, &out, err, sizeof err), 0);
    assert_int_equal(out, tie);
    assert_int_equal(ms_eval_find_run(db, "capitals", "last", tie, &out, err, sizeof err), 0);
    assert_int_equal(out, r2);
    assert_int_equal(ms_eval_find_run(db, "rivers", "last", other, &out, err, sizeof err), 1);
    err_has("no earlier run of suite rivers");

    char which[32];
    snprintf(which, sizeof which, "%lld", (long long)r1);
    assert_int_equal(ms_eval_find_run(db, "capitals", which, 0, &out, err, sizeof err), 0);
    assert_int_equal(out, r1);
    /* an explicit id may be any run of the suite, finished or not */
    snprintf(which, sizeof which, "%lld", (long long)running);
    assert_int_equal(ms_eval_find_run(db, "capitals", which, 0, &out, err, sizeof err), 0);
    assert_int_equal(out, running);

    snprintf(which, sizeof which, "%lld", (long long)other);
    assert_int_equal(ms_eval_find_run(db, "capitals", which, 0, &out, err, sizeof err), 1);
    char want[96];
    snprintf(want, sizeof want, "eval run %lld is of suite rivers, not capitals", (long long)other);
    err_has(want);
    assert_int_equal(out, 0);

    assert_int_equal(ms_eval_find_run(db, "capitals", "77", 0, &out, err, sizeof err), 1);
    err_has("no eval run 77 in this store");

    static const char *const bad[] = {"", "abc", "0", "-1", "12x", " 1", "LAST",
                                      "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ms_eval_find_run(db, "capitals", bad[i], 0, &out, err, sizeof err), -1);
        err_has("is neither 'last' nor an eval run id");
    }
}

/* Collects what ms_eval_runs_each / ms_eval_case_ids_each visit. */
typedef struct visited {
    int n, stop_after;
    int64_t ids[8];
    char cfg[8][64];
    char case_ids[8][16];
} visited;

static int see_run(void *ud, const ms_eval_run_row *row)
{
    visited *s = ud;
    assert_true(s->n < 8);
    s->ids[s->n] = row->id;
    snprintf(s->cfg[s->n], sizeof s->cfg[0], "%s", row->config_json ? row->config_json : "(null)");
    s->n++;
    return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static int see_case(void *ud, const char *case_id)
{
    visited *s = ud;
    assert_true(s->n < 8);
    snprintf(s->case_ids[s->n++], sizeof s->case_ids[0], "%s", case_id);
    return 0;
}

static void test_runs_each_and_case_ids(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    visited s = {0};
    assert_int_equal(ms_eval_runs_each(db, "capitals", 0, see_run, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 0);

    ms_eval_run_info info = {.suite = "capitals", .suite_file = "s.lua", .start_ns = D1,
                             .config_json = "{\"filter\":\"case1\"}", .threshold = NAN};
    int64_t with_cfg;
    if (ms_eval_run_begin(db, &info, &with_cfg, err, sizeof err))
        fail_msg("%s", err);
    ms_eval_summary done = {.end_ns = D1 + SEC, .pass_rate = NAN, .p50_ms = NAN, .p95_ms = NAN,
                            .cost_usd = NAN, .status = "passed"};
    if (ms_eval_run_finish(db, with_cfg, &done, err, sizeof err))
        fail_msg("%s", err);
    int64_t newer = eval_run(db, "capitals", D1 + 20, "failed");
    int64_t tie = eval_run(db, "capitals", D1 + 20, "passed"); /* same start: the later id first */
    eval_run(db, "rivers", D1 + 30, "passed");                 /* another suite */
    eval_run(db, "capitals", D1 + 40, NULL);                   /* still running: no baseline */

    assert_int_equal(ms_eval_runs_each(db, "capitals", 0, see_run, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.ids[0], tie);
    assert_int_equal(s.ids[1], newer);
    assert_int_equal(s.ids[2], with_cfg);
    assert_string_equal(s.cfg[2], "{\"filter\":\"case1\"}");
    assert_string_equal(s.cfg[0], "{}");

    memset(&s, 0, sizeof s);
    assert_int_equal(ms_eval_runs_each(db, "capitals", 2, see_run, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 2); /* the limit */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(ms_eval_runs_each(db, "capitals", 0, see_run, &s, err, sizeof err), 7);
    assert_int_equal(s.n, 1); /* the callback's non-zero stops the walk and is returned */

    eval_result(db, newer, "paris", 0, 1);
    eval_result(db, newer, "lima", 0, 1);
    eval_result(db, newer, "paris", 1, 1); /* a repeat: one id */
    eval_result(db, tie, "oslo", 0, 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(ms_eval_case_ids_each(db, newer, see_case, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.case_ids[0], "lima");
    assert_string_equal(s.case_ids[1], "paris");
    memset(&s, 0, sizeof s);
    assert_int_equal(ms_eval_case_ids_each(db, with_cfg, see_case, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 0);
}

/* --- recordings ------------------------------------------------------- */

static void test_record_and_replay(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    int64_t rec = eval_run(db, "s", D1, "passed"), other = eval_run(db, "s", D1 + 1, "passed");
    const char *req = "{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"mock\"}";
    char hash[65], hash2[65];
    ms_sha256_hex(req, strlen(req), hash);
    ms_sha256_hex("{}", 2, hash2);
    assert_int_equal(ms_eval_record(db, rec, hash, req, "{\"text\":\"hello\"}", "qa.lua:12",
                                    err, sizeof err), 0);
    assert_int_equal(ms_eval_record(db, rec, hash2, "{}", "{\"text\":\"x\"}", NULL,
                                    err, sizeof err), 0);

    char *resp = NULL;
    assert_int_equal(ms_eval_replay_lookup(db, rec, hash, &resp, err, sizeof err), 0);
    assert_string_equal(resp, "{\"text\":\"hello\"}");
    free(resp);

    /* the same request recorded again replaces the answer */
    assert_int_equal(ms_eval_record(db, rec, hash, req, "{\"text\":\"hello again\"}", "qa.lua:12",
                                    err, sizeof err), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM llm_recordings"), 2);
    assert_int_equal(ms_eval_replay_lookup(db, rec, hash, &resp, err, sizeof err), 0);
    assert_string_equal(resp, "{\"text\":\"hello again\"}");
    free(resp);

    /* a request the run did not record, and a run that recorded nothing */
    char unseen[65];
    ms_sha256_hex("nope", 4, unseen);
    resp = (char *)"sentinel";
    assert_int_equal(ms_eval_replay_lookup(db, rec, unseen, &resp, err, sizeof err), 1);
    assert_null(resp);
    char want[128];
    snprintf(want, sizeof want, "eval run %lld recorded no call with this request (hash %.12s)",
             (long long)rec, unseen);
    err_has(want);
    assert_int_equal(ms_eval_replay_lookup(db, other, hash, &resp, err, sizeof err), 1);
    assert_null(resp);

    assert_int_equal(ms_eval_record(db, rec, "", req, "{}", NULL, err, sizeof err), -1);
    err_has("a recording needs a hash, a request and a response");
    assert_int_equal(ms_eval_record(db, rec, hash, req, NULL, NULL, err, sizeof err), -1);
    err_has("a recording needs");
    assert_int_equal(one_int(db, "SELECT count(*) FROM llm_recordings WHERE call_site IS NULL"), 1);
}

/* --- report: evals ---------------------------------------------------- */

/* Runs the report into a string (freed by the caller). */
static char *report(sqlite3 *db, int64_t since, int json)
{
    char *text = NULL;
    size_t len;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    ms_report_opts o = {.sel = {.since_ns = since}, .json = json};
    int rc = ms_report_write(db, &o, out, err, sizeof err);
    fclose(out);
    if (rc)
        fail_msg("report: %s", err);
    return text;
}

static void result(sqlite3 *db, int64_t run_id, const char *case_id, int64_t repeat, int pass,
                   const char *scores, const char *error, const char *trace_id)
{
    ms_eval_result r = {.case_id = case_id, .repeat_index = repeat, .scores_json = scores,
                        .pass = pass, .error = error, .trace_id = trace_id,
                        .latency_ms = 10, .cost_usd = NAN};
    if (ms_eval_result_add(db, run_id, &r, err, sizeof err))
        fail_msg("%s", err);
}

/* alpha: an old passed run and the latest, failed one (2 of 4 pass), whose
 * failures give a reason each way; beta: a passed run and a later one
 * still running (not shown); gamma: only before --since. */
static void eval_dataset(sqlite3 *db, int64_t *alpha_latest)
{
    int64_t old = eval_run(db, "alpha", D1, "passed");
    result(db, old, "c1", 0, 0, NULL, "old failure", "0ld0");
    ms_eval_run_info info = {.suite = "alpha", .suite_file = "alpha.lua", .start_ns = D1 + 3600 * SEC,
                             .threshold = 0.9};
    int64_t a;
    if (ms_eval_run_begin(db, &info, &a, err, sizeof err))
        fail_msg("%s", err);
    *alpha_latest = a;
    result(db, a, "c1", 0, 1, "[{\"name\":\"exact\",\"score\":1}]", NULL, "t1");
    result(db, a, "c2", 1, 0,
           "[{\"name\":\"exact\",\"score\":1,\"reason\":\"ok\"},"
           "{\"name\":\"contains\",\"score\":0,\"reason\":\"expected \\\"Paris\\\"\"},"
           "{\"name\":\"max_latency_ms\",\"score\":0,\"reason\":\"too slow\"}]", NULL,
           "bbbb0000000000000000000000000002");
    result(db, a, "c3", 0, 0, "[{\"name\":\"judge\",\"score\":0.25}]", NULL, "t3");
    result(db, a, "c0", 0, 0, "not json", "scorer raised: boom\nstack traceback", "t0");
    result(db, a, "c4", 0, 1, "[]", NULL, "t4");
    ms_eval_summary s = {.end_ns = D1 + 3601 * SEC, .cases = 4, .passed = 2, .pass_rate = 0.5,
                         .p50_ms = 120, .p95_ms = 950.5, .cost_usd = 0.03125,
                         .replayed_cost_usd = 0.5, .status = "failed"};
    if (ms_eval_run_finish(db, a, &s, err, sizeof err))
        fail_msg("%s", err);

    int64_t b = eval_run(db, "beta", D1 + 7200 * SEC, "passed");
    result(db, b, "only", 0, 1, "[]", NULL, "tb");
    eval_run(db, "beta", D1 + 9000 * SEC, NULL);
    eval_run(db, "gamma", D1 - 86400 * SEC, "passed");
}

static void test_report_evals_json(void **state)
{
    fixture *fx = *state;
    int64_t a;
    eval_dataset(fx->db, &a);
    char *j = report(fx->db, 0, 1);
    char want[512];
    snprintf(want, sizeof want,
             "\"evals\":[{\"suite\":\"alpha\",\"eval_run\":%lld,\"start\":\"2024-05-01T01:00:00Z\","
             "\"cases\":4,\"passed\":2,\"pass_rate\":0.5,\"threshold\":0.9,\"status\":\"failed\","
             "\"p50_ms\":120,\"p95_ms\":950.5,\"cost_usd\":0.03125,\"replayed_cost_usd\":0.5,"
             "\"gates\":null,\"failing\":[", (long long)a);
    has(j, want);
    /* failing in case order; the error first, else the first scorer under 1 */
    has(j, "\"failing\":[{\"case_id\":\"c0\",\"repeat_index\":0,"
           "\"error_or_reason\":\"scorer raised: boom\\nstack traceback\",\"trace_id\":\"t0\"},"
           "{\"case_id\":\"c2\",\"repeat_index\":1,"
           "\"error_or_reason\":\"contains: expected \\\"Paris\\\"\","
           "\"trace_id\":\"bbbb0000000000000000000000000002\"},"
           "{\"case_id\":\"c3\",\"repeat_index\":0,\"error_or_reason\":\"judge scored 0.25\","
           "\"trace_id\":\"t3\"}]}");
    has(j, "{\"suite\":\"beta\",");
    has(j, "\"status\":\"passed\",\"p50_ms\":1,\"p95_ms\":1,\"cost_usd\":0,"
           "\"replayed_cost_usd\":0,\"gates\":null,\"failing\":[]}");
    has(j, "{\"suite\":\"gamma\",");
    hasnt(j, "old failure"); /* an older run of alpha */
    hasnt(j, "\"status\":\"running\"");
    assert_true(strstr(j, "\"suite\":\"alpha\"") < strstr(j, "\"suite\":\"beta\""));
    free(j);

    /* --since applies to the runs' start: gamma goes */
    j = report(fx->db, D1, 1);
    has(j, "\"suite\":\"alpha\"");
    hasnt(j, "gamma");
    free(j);
    /* a window after the latest alpha leaves beta alone; after all, nothing */
    j = report(fx->db, D1 + 3601 * SEC, 1);
    hasnt(j, "alpha");
    has(j, "\"suite\":\"beta\"");
    free(j);
    j = report(fx->db, D1 + 86400 * SEC, 1);
    has(j, "\"evals\":[]}");
    free(j);
}

static void test_report_evals_text(void **state)
{
    fixture *fx = *state;
    int64_t a;
    eval_dataset(fx->db, &a);
    /* a dozen more failures on beta's latest finished run, to see the cut */
    int64_t b = eval_run(fx->db, "beta", D1 + 8000 * SEC, "failed");
    for (int i = 0; i < 12; i++) {
        char id[16];
        snprintf(id, sizeof id, "case%02d", i);
        result(fx->db, b, id, 0, 0, NULL, "wrong", "tt");
    }
    char *t = report(fx->db, 0, 0);
    has(t, "no traces recorded yet");
    has(t, "\nEvals (latest run per suite; open a case with `moonspan show TRACE_ID`)\n");
    char want[256];
    snprintf(want, sizeof want, "  alpha  run %lld  2024-05-01T01:00:00Z  FAILED"
             "  pass rate 50.0%% (2/4, threshold 90.0%%)  p50 120 ms  p95 950 ms  cost $0.0312"
             " (replayed, not spent: $0.5000)\n", (long long)a);
    has(t, want);
    has(t, "    c0  trace t0  scorer raised: boom stack traceback\n");
    has(t, "    c2 (repeat 1)  trace bbbb0000000000000000000000000002  contains: expected \"Paris\"\n");
    has(t, "    c3  trace t3  judge scored 0.25\n");
    has(t, "    case09  trace tt  wrong\n");
    hasnt(t, "case10");
    has(t, "    ... and 2 more failing (`moonspan report --json` lists all)\n");
    has(t, "  gamma  run ");
    free(t);
}

/* --- report: replayed cost -------------------------------------------- */

/* A tracer on its own connection, as the host has it: the writer thread
 * owns that connection, the report reads on the fixture's. */
static ms_tracer *tracer(fixture *fx)
{
    ms_store *s;
    if (ms_store_open(fx->path, MS_STORE_WRITE, &s, err, sizeof err))
        fail_msg("%s", err);
    ms_tracer *tr;
    assert_int_equal(ms_tracer_open(s, 8, &tr), 0);
    return tr;
}

static ms_trace *llm_trace(ms_tracer *tr, const char *name, const double *costs,
                           const int *replayed, int n)
{
    ms_trace *t = ms_tracer_acquire(tr);
    int64_t t0 = ms_mono_ns();
    assert_int_equal(ms_trace_start(t, name, strlen(name), t0, NULL, 0), 0);
    for (int i = 0; i < n; i++) {
        uint32_t sp = ms_span_begin(t, 0, "chat", 4, t0 + i + 1);
        ms_llm_usage u = {.provider = "mock", .model = "mock", .input = 100, .output = 10,
                          .cost_usd = costs[i], .ttft_ns = -1, .replayed = replayed[i]};
        ms_span_set_llm(t, sp, &u);
        ms_span_end(t, sp, t0 + i + 2);
    }
    ms_trace_end(t, t0 + 1000);
    return t;
}

static void test_report_replayed_cost_apart(void **state)
{
    fixture *fx = *state;
    ms_tracer *tr = tracer(fx);
    /* live 0.25; replayed 0.5 (all of the trace); mixed: 0.125 live + 0.0625 replayed */
    const double c1[] = {0.25}, c2[] = {0.5}, c3[] = {0.125, 0.0625};
    const int r1[] = {0}, r2[] = {1}, r3[] = {0, 1};
    ms_tracer_submit(tr, llm_trace(tr, "live", c1, r1, 1));
    ms_trace *t2 = llm_trace(tr, "replayed", c2, r2, 1);
    char hex2[33];
    ms_trace_id_hex(&t2->id, hex2);
    ms_tracer_submit(tr, t2);
    ms_tracer_submit(tr, llm_trace(tr, "mixed", c3, r3, 2));
    assert_int_equal(ms_tracer_flush(tr, 0, NULL), 0);

    char *j = report(fx->db, 0, 1);
    has(j, "\"cost\":{\"total_usd\":0.375,\"avg_usd_per_request\":0.125,"
           "\"unknown_cost_calls\":0,\"priced_requests\":3,\"replayed_usd\":0.5625}");
    /* the trend is live spend too */
    has(j, "\"requests\":3,\"cost_usd\":0.375,");
    free(j);
    char *t = report(fx->db, 0, 0);
    has(t, "Cost        total $0.3750; per request $0.1250; replayed (not spent): $0.5625\n");
    free(t);

    /* show marks the replayed span */
    size_t len;
    char *s = NULL;
    FILE *out = open_memstream(&s, &len);
    assert_int_equal(ms_trace_show(fx->db, hex2, 1, out, err, sizeof err), 0);
    fclose(out);
    has(s, "\"usage_estimated\":false,\"replayed\":true,\"cost_usd\":0.5");
    free(s);
    s = NULL;
    out = open_memstream(&s, &len);
    assert_int_equal(ms_trace_show(fx->db, hex2, 0, out, err, sizeof err), 0);
    fclose(out);
    has(s, "ok  replayed (not spent)");
    free(s);
    assert_int_equal(ms_tracer_close(tr, 0), 0);
}

/* No replayed call: nothing about replays in the text, 0 in the JSON. */
static void test_report_without_replays(void **state)
{
    fixture *fx = *state;
    ms_tracer *tr = tracer(fx);
    const double c[] = {0.25};
    const int r[] = {0};
    ms_tracer_submit(tr, llm_trace(tr, "live", c, r, 1));
    assert_int_equal(ms_tracer_close(tr, 0), 0);
    char *j = report(fx->db, 0, 1);
    has(j, "\"total_usd\":0.25,");
    has(j, "\"replayed_usd\":0}");
    has(j, "\"evals\":[]}");
    free(j);
    char *t = report(fx->db, 0, 0);
    hasnt(t, "replayed");
    hasnt(t, "Evals");
    free(t);
}

/* A suite's gates, written with the run's end (config.gates): the JSON
 * report gives them as stored; the text report counts them and lists the
 * failed ones, escaped; a config that is not JSON gives none. */
static void test_report_gates(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = fx->db;
    ms_eval_run_info info = {.suite = "g", .suite_file = "g.lua", .start_ns = D1, .threshold = 0.5,
                             .config_json = "{\"concurrency\":4}"};
    int64_t id;
    if (ms_eval_run_begin(db, &info, &id, err, sizeof err))
        fail_msg("%s", err);
    ms_eval_summary s = {.end_ns = D1 + SEC, .cases = 2, .passed = 2, .pass_rate = 1, .p50_ms = 1,
                         .p95_ms = 1, .cost_usd = 0, .status = "failed",
                         .config_json = "{\"concurrency\":4,\"gates\":["
                                        "{\"name\":\"p95_ms(\\\"generate\\\", 50)\",\"value\":68.9,"
                                        "\"limit\":50,\"pass\":false,\"reason\":\"68.9 ms > 50.0 ms\\u001b[2J\"},"
                                        "{\"name\":\"pass_rate(0.5)\",\"value\":1,\"limit\":0.5,\"pass\":true,"
                                        "\"reason\":\"ok\"}]}"};
    if (ms_eval_run_finish(db, id, &s, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(one_int(db, "SELECT json_extract(config, '$.concurrency') FROM eval_runs"), 4);
    char *j = report(db, 0, 1);
    has(j, "\"gates\":[{\"name\":\"p95_ms(\\\"generate\\\", 50)\",\"value\":68.9,\"limit\":50,"
           "\"pass\":false,");
    has(j, "{\"name\":\"pass_rate(0.5)\",\"value\":1,\"limit\":0.5,\"pass\":true,\"reason\":\"ok\"}]");
    free(j);
    char *t = report(db, 0, 0);
    has(t, "\n    gates: 1 of 2 failed\n      p95_ms(\"generate\", 50): 68.9 ms > 50.0 ms\\x1b[2J\n");
    hasnt(t, "pass_rate(0.5)");
    free(t);

    /* all passed; and a finish without config_json keeps the config */
    s.config_json = "{\"gates\":[{\"name\":\"pass_rate(0.5)\",\"pass\":true,\"reason\":\"ok\"}]}";
    if (ms_eval_run_finish(db, id, &s, err, sizeof err))
        fail_msg("%s", err);
    s.config_json = NULL;
    if (ms_eval_run_finish(db, id, &s, err, sizeof err))
        fail_msg("%s", err);
    t = report(db, 0, 0);
    has(t, "\n    gates: all 1 passed\n");
    free(t);
    /* a damaged config: no gates, no error */
    sqlite3_exec(db, "UPDATE eval_runs SET config = 'not json'", NULL, NULL, NULL);
    j = report(db, 0, 1);
    has(j, "\"gates\":null");
    free(j);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, open_store, store_fixture_close)
    const struct CMUnitTest tests[] = {
        T(test_run_begin_finish_get),
        T(test_run_errors),
        T(test_results_add_and_each),
        T(test_find_run),
        T(test_runs_each_and_case_ids),
        T(test_record_and_replay),
        T(test_report_evals_json),
        T(test_report_evals_text),
        T(test_report_replayed_cost_apart),
        T(test_report_without_replays),
        T(test_report_gates),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
