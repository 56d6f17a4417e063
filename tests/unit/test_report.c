/* test_report — `moonspan report` over the hand-made stores of
 * views_fixture.h, every number worked out by hand.
 *
 * JSON numbers are read with jnum and compared with NEAR (checks.h).
 * Integral values print without a fraction (ms_json_num), which the exact
 * fragment checks rely on. */
#include "views_fixture.h"

#include "ms_report.h"

static int report_with(fixture *fx, const ms_report_opts *o)
{
    err_[0] = 0;
    CAPTURE(fx, ms_report_write(fx->db, o, out, err_, sizeof err_));
    if (rc_ != 0)
        fail_msg("report failed: %s", err_);
    return rc_;
}

static int report(fixture *fx, int64_t since, const char *glob, int by_month, int json)
{
    ms_report_opts o = {.sel = {.since_ns = since, .name_glob = glob}, .by_month = by_month,
                        .json = json};
    return report_with(fx, &o);
}

/* --- report ----------------------------------------------------------- */

static void test_report_requests_and_steps(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    const char *j = fx->out;
    has(j, "\"requests\":{\"count\":5,");
    /* request durations 100 200 300 400 1000 (n=5, numpy linear):
     * p50 h=2 -> 300; p95 h=3.8 -> 400+0.8*600 = 880; p99 h=3.96 -> 976 */
    NEAR(j, "\"latency_ms\"", "p50", 300);
    NEAR(j, "\"latency_ms\"", "p95", 880);
    NEAR(j, "\"latency_ms\"", "p99", 976);
    NEAR(j, "\"latency_ms\"", "max", 1000);

    /* generate: 50 150 200 400 -> p50 h=1.5 -> 175; p95 h=2.85 -> 200+0.85*200
     * = 370; p99 h=2.97 -> 394; total 800. search: 10 20 30 40 -> 25, 38.5,
     * 39.7, total 100. judge 40, rerank 5. All steps 945 ms. Root spans
     * (answer_question, batch_eval) are not steps. */
    NEAR(j, "\"name\":\"generate\"", "count", 4);
    NEAR(j, "\"name\":\"generate\"", "p50_ms", 175);
    NEAR(j, "\"name\":\"generate\"", "p95_ms", 370);
    NEAR(j, "\"name\":\"generate\"", "p99_ms", 394);
    NEAR(j, "\"name\":\"generate\"", "total_ms", 800);
    NEAR(j, "\"name\":\"generate\"", "share", 800.0 / 945);
    NEAR(j, "\"name\":\"search\"", "p50_ms", 25);
    NEAR(j, "\"name\":\"search\"", "p95_ms", 38.5);
    NEAR(j, "\"name\":\"search\"", "p99_ms", 39.7);
    NEAR(j, "\"name\":\"search\"", "share", 100.0 / 945);
    NEAR(j, "\"name\":\"judge\"", "p99_ms", 40);
    NEAR(j, "\"name\":\"rerank\"", "total_ms", 5);
    hasnt(j, "\"name\":\"answer_question\"");
    hasnt(j, "\"name\":\"batch_eval\"");
    /* sorted by total_ms desc: generate 800, search 100, judge 40, rerank 5 */
    const char *g = strstr(j, "\"name\":\"generate\""), *se = strstr(j, "\"name\":\"search\"");
    const char *ju = strstr(j, "\"name\":\"judge\""), *re = strstr(j, "\"name\":\"rerank\"");
    assert_true(g && se && ju && re && g < se && se < ju && ju < re);
    NEAR(j, "\"slowest_step\"", "p95_ms", 370);
    has(j, "\"slowest_step\":{\"name\":\"generate\"");
}

static void test_report_tokens_cost_errors_retries(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    const char *j = fx->out;
    /* tokens: in 100+200+300+0+400 = 1000, out 200, over 5 requests;
     * llm tokens 120+240+360+480 = 1200, of which T3's 360 estimated */
    has(j, "\"avg_input\":200,\"avg_output\":40,\"avg_total\":240,"
           "\"total_input\":1000,\"total_output\":200");
    NEAR(j, "\"tokens\"", "estimated_share", 0.3);
    /* cost: 0.01 + 0.02 + 0.04 over 5 requests; T3's call is unpriced */
    NEAR(j, "\"cost\"", "total_usd", 0.07);
    NEAR(j, "\"cost\"", "avg_usd_per_request", 0.014);
    has(j, "\"unknown_cost_calls\":1");
    /* errors: T2 and T4 have status error -> 2/5; raised in T2.generate and
     * T4.judge + T4's manual event = 3; top: RateLimit x2, manual x1 */
    NEAR(j, "\"errors\"", "rate", 0.4);
    has(j, "\"count\":3,\"top\":[{\"type\":\"RateLimit\",\"message\":\"too many requests\","
           "\"count\":2},{\"type\":\"manual\",\"message\":\"wrong answer\",\"count\":1}]");
    /* retries: T2.generate (2, failed), T3.generate (1, succeeded) */
    has(j, "\"retries\":{\"retried_calls\":2,\"succeeded\":1,\"success_rate\":0.5,"
           "\"backoff_ms_total\":0,\"backoff_ms_per_request\":0}");
    /* llm calls: T1, T2 (failed after its retries), T3, T5 */
    has(j, "\"llm_calls\":{\"count\":4,\"failed\":1,\"failure_rate\":0.25}");
    has(j, "\"requests\":{\"count\":5,\"interrupted\":0,\"incomplete\":0,");
}

static void test_report_cost_trend(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    const char *j = fx->out;
    /* by day: 05-01 T1+T2 $0.03; 05-02 T3 unknown only; 06-15 T4+T5 $0.04 */
    NEAR(j, "\"period\":\"2024-05-01\"", "cost_usd", 0.03);
    NEAR(j, "\"period\":\"2024-05-01\"", "avg_usd_per_request", 0.015);
    has(j, "{\"period\":\"2024-05-01\",\"requests\":2,");
    has(j, "{\"period\":\"2024-05-02\",\"requests\":1,\"cost_usd\":0,"
           "\"avg_usd_per_request\":0,\"unknown_cost_calls\":1}");
    NEAR(j, "\"period\":\"2024-06-15\"", "cost_usd", 0.04);
    NEAR(j, "\"period\":\"2024-06-15\"", "avg_usd_per_request", 0.02);
    assert_true(strstr(j, "2024-05-01\",") < strstr(j, "2024-05-02\",") &&
                strstr(j, "2024-05-02\",") < strstr(j, "2024-06-15\","));

    report(fx, 0, NULL, 1, 1);
    j = fx->out;
    /* by month: 2024-05 T1..T3 $0.03 over 3; 2024-06 T4+T5 $0.04 over 2 */
    has(j, "{\"period\":\"2024-05\",\"requests\":3,");
    NEAR(j, "\"period\":\"2024-05\"", "avg_usd_per_request", 0.01);
    has(j, "{\"period\":\"2024-06\",\"requests\":2,");
    NEAR(j, "\"period\":\"2024-06\"", "cost_usd", 0.04);
    hasnt(j, "\"period\":\"2024-05-01\"");
}

static void test_report_filters(void **state)
{
    fixture *fx = *state;
    /* --since 2024-05-02: T3 T4 T5, durations 300 400 1000 -> p50 400 */
    report(fx, D2, NULL, 0, 1);
    const char *j = fx->out;
    has(j, "\"requests\":{\"count\":3,");
    NEAR(j, "\"latency_ms\"", "p50", 400);
    has(j, "\"since_ns\":1714608000000000000,\"since\":\"2024-05-02T00:00:00Z\"");
    /* steps only from T3..T5: search 30 40 -> total 70; no rerank */
    NEAR(j, "\"name\":\"search\"", "total_ms", 70);
    hasnt(j, "\"name\":\"rerank\"");
    NEAR(j, "\"errors\"", "rate", 1.0 / 3);
    hasnt(j, "\"period\":\"2024-05-01\"");

    /* --name 'answer*': T1 T2 T3 T5, durations 100 200 300 1000 -> p50 250;
     * one error request (T2), one raised error; T4's manual one is out */
    report(fx, 0, "answer*", 0, 1);
    j = fx->out;
    has(j, "\"requests\":{\"count\":4,");
    NEAR(j, "\"latency_ms\"", "p50", 250);
    NEAR(j, "\"errors\"", "rate", 0.25);
    has(j, "\"count\":1,\"top\":[{\"type\":\"RateLimit\"");
    hasnt(j, "wrong answer");
    hasnt(j, "\"name\":\"judge\"");
    has(j, "\"name_glob\":\"answer*\"");

    /* both: T3 T5 */
    report(fx, D2, "answer*", 0, 1);
    has(fx->out, "\"requests\":{\"count\":2,");

    /* nothing matches: zero counts and nulls, still success */
    report(fx, 0, "nope*", 0, 1);
    j = fx->out;
    has(j, "\"requests\":{\"count\":0,\"interrupted\":0,\"incomplete\":0,\"sampled_out\":0,"
           "\"latency_ms\":{\"p50\":null,\"p95\":null,"
           "\"p99\":null,\"max\":null}}");
    has(j, "\"steps\":[],\"steps_omitted\":0,\"steps_from_requests\":0,\"slowest_step\":null");
    has(j, "\"rate\":null");
    report(fx, 0, "nope*", 0, 0);
    has(fx->out, "no traces match");
}

static void test_report_text(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 0);
    const char *t = fx->out;
    has(t, "moonspan report: 5 requests, all time");
    has(t, "Requests    p50 300 ms   p95 880 ms   p99 976 ms   max 1000 ms");
    has(t, "slowest step: generate (p95 370 ms)");
    /* generate: 4 calls, 800 ms of 945 -> 84.7%, all of it its own; the
     * LLM calls inside it: 1000/200 tokens, $0.07 and one unpriced */
    has(t, "Steps by path (total: with the steps inside; self: without its direct children)\n"
           "  path        count       p50       p95       p99      total       self  share"
           "   tokens in/out        cost\n"
           "  generate        4    175 ms    370 ms    394 ms     800 ms     800 ms  84.7%"
           "        1000/200  $0.0700 +?\n");
    has(t, "  search          4   25.0 ms   38.5 ms   39.7 ms     100 ms     100 ms  10.6%"
           "               -           -\n");
    has(t, "unknown for 1 call");
    has(t, "Errors      40.0% of requests (2); 3 errors recorded");
    has(t, "RateLimit: too many requests");
    has(t, "manual: wrong answer");
    has(t, "LLM calls   4, 1 failed (25.0%, after their retries)\n");
    has(t, "Retries     2 calls retried, 1 succeeded (50.0%)\n");
    hasnt(t, "Cut short");
    hasnt(t, "backoff");
    has(t, "Cost trend (by day, UTC)");
    /* a day whose only call is unpriced is not shown as $0 */
    has(t, "2024-05-02        1 req   unknown for 1 call\n");
    has(t, "30.0% of llm tokens estimated");
}

static void test_report_empty(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 0);
    has(fx->out, "no traces recorded yet (run a script with `moonspan run`)");
    report(fx, 0, NULL, 0, 1);
    const char *j = fx->out;
    has(j, "\"requests\":{\"count\":0,");
    has(j, "\"slowest_step\":null");
    has(j, "\"avg_input\":null");
    has(j, "\"total_usd\":0,\"avg_usd_per_request\":null,\"unknown_cost_calls\":0");
    has(j, "\"errors\":{\"rate\":null,\"requests\":0,\"count\":0,\"top\":[]}");
    has(j, "\"success_rate\":null,\"backoff_ms_total\":0,\"backoff_ms_per_request\":null}");
    has(j, "\"llm_calls\":{\"count\":0,\"failed\":0,\"failure_rate\":null}");
    has(j, "\"cost_trend\":[]");
    /* schema v2 keys: no replayed calls, no eval runs */
    has(j, "\"priced_requests\":0,\"replayed_usd\":0}");
    has(j, "\"evals\":[]}");
}

static void test_report_not_a_store(void **state)
{
    /* a database without the schema: a clear error, not a crash */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    ms_report_opts o = {0};
    char err[256] = "";
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(ms_report_write(db, &o, out, err, sizeof err), -1);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(err, "no such table"));
    assert_int_equal(len, 0);
    free(buf);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    (void)state;
}

static void test_report_remote_parent_root(void **state)
{
    /* the root of a joined run is still the request (first row of the
     * range), not a step */
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    hasnt(fx->out, "\"name\":\"joined\"");
    has(fx->out, "\"steps\":[{\"name\":\"step\",\"path\":[\"step\"],\"count\":1,");
    /* no priced and no unpriced call: total 0, nothing unknown */
    has(fx->out, "\"total_usd\":0,\"avg_usd_per_request\":0,\"unknown_cost_calls\":0");
}

/* --- interrupted and incomplete work ---------------------------------- */

static void test_report_cut_short_work(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    const char *j = fx->out;
    /* 5 requests, 2 cut short; latency over U1 U2 U5 (100 200 300):
     * p50 200, p95 h=1.9 -> 290, p99 h=1.98 -> 298, max 300 */
    has(j, "\"requests\":{\"count\":5,\"interrupted\":1,\"incomplete\":1,");
    NEAR(j, "\"latency_ms\"", "p50", 200);
    NEAR(j, "\"latency_ms\"", "p95", 290);
    NEAR(j, "\"latency_ms\"", "p99", 298);
    NEAR(j, "\"latency_ms\"", "max", 300);
    /* one failed request of all five; interruptions are not errors */
    NEAR(j, "\"errors\"", "rate", 0.2);
    has(j, "\"errors\":{\"rate\":0.2,\"requests\":1,\"count\":2,\"top\":[{\"type\":\"api_error\","
           "\"message\":\"server down\",\"count\":2}]}");
    /* steps over completed spans: call 40 150 30 50, work 20; no bg */
    has(j, "{\"name\":\"call\",\"path\":[\"call\"],\"count\":4,");
    NEAR(j, "\"name\":\"call\"", "total_ms", 270);
    has(j, "{\"name\":\"work\",\"path\":[\"work\"],\"count\":1,");
    NEAR(j, "\"name\":\"work\"", "p99_ms", 20);
    hasnt(j, "\"name\":\"bg\"");
    /* completed llm calls U1 U2 U3 U5, two failed: U5's although its
     * request succeeded */
    has(j, "\"llm_calls\":{\"count\":4,\"failed\":2,\"failure_rate\":0.5}");
    /* backoff 30 + 100 + 20 ms over 5 requests */
    has(j, "\"retries\":{\"retried_calls\":3,\"succeeded\":1,");
    NEAR(j, "\"retries\"", "backoff_ms_total", 150);
    NEAR(j, "\"retries\"", "backoff_ms_per_request", 30);

    report(fx, 0, NULL, 0, 0);
    const char *t = fx->out;
    has(t, "Requests    p50 200 ms   p95 290 ms   p99 298 ms   max 300 ms\n");
    has(t, "Cut short   1 interrupted (SIGINT/SIGTERM), 1 incomplete (still open when the run"
           " ended); not errors, and not in the percentiles\n");
    has(t, "Errors      20.0% of requests (1); 2 errors recorded\n");
    has(t, "LLM calls   4, 2 failed (50.0%, after their retries)\n");
    has(t, "Retries     3 calls retried, 1 succeeded (33.3%); 150 ms waiting in backoff"
           " (30.0 ms per request)\n");
}

/* --- fine traces: paths, self time, usage per step and per model ---------- */

#define ROW(path) "{\"name\":" path

/* The same name under two parents is two rows by path; the request's own
 * name is not part of a path, so embed of "request" and of "batch" is one
 * row. Numbers from nested_dataset in views_fixture.h. */
static void test_report_steps_by_path(void **state)
{
    fixture *fx = *state;
    ms_report_opts o = {.json = 1};
    report_with(fx, &o);
    const char *j = fx->out;
    has(j, "\"steps_by\":\"path\"");
    has(j, ROW("\"tokenize\",\"path\":[\"rerank\",\"tokenize\"],\"count\":1,"));
    has(j, ROW("\"tokenize\",\"path\":[\"embed\",\"tokenize\"],\"count\":3,"));
    has(j, ROW("\"tokenize\",\"path\":[\"rerank\",\"score_doc\",\"tokenize\"],\"count\":3,"));
    /* the request's own name is in no step's name or path (budget_stops
     * has a "request" key of its own) */
    hasnt(j, "\"name\":\"request\"");
    hasnt(j, "[\"request\"");
    hasnt(j, "\"batch\"");
    NEAR(j, "[\"embed\",\"tokenize\"]", "total_ms", 11);
    NEAR(j, "[\"rerank\",\"tokenize\"]", "total_ms", 5);
    /* self: rerank 60 - (3 x 10 + 5); each score_doc 10 - 2; embed 30 -
     * (4 + 6 + 10) and 3 - 1 */
    NEAR(j, "[\"rerank\"]", "self_ms", 25);
    NEAR(j, "[\"rerank\"]", "total_ms", 60);
    NEAR(j, "[\"rerank\",\"score_doc\"]", "self_ms", 24);
    NEAR(j, "[\"rerank\",\"score_doc\"]", "self_avg_ms", 8);
    NEAR(j, "[\"embed\"]", "count", 2);
    NEAR(j, "[\"embed\"]", "self_ms", 12);
    NEAR(j, "[\"embed\"]", "self_avg_ms", 6);
    /* a and b ran at once, 16 ms inside 10: clamped, not -6 */
    NEAR(j, "[\"parallel\"]", "self_ms", 0);
    NEAR(j, "[\"parallel\",\"a\"]", "self_ms", 8);
    /* every ms of the steps is someone's self time once: 33 + 2 + ... */
    NEAR(j, "[\"rerank\"]", "self_share", 25.0 / 110.003);
    /* an LLM call's usage counts in the steps it is inside */
    NEAR(j, "[\"embed\"]", "input_tokens", 100);
    NEAR(j, "[\"embed\"]", "output_tokens", 20);
    NEAR(j, "[\"embed\"]", "cost_usd", 0.01);
    NEAR(j, "[\"embed\",\"chat mock\"]", "llm_calls", 1);
    NEAR(j, "[\"chat mock\"]", "cost_usd", 0.02);
    assert_true(isnan(jnum(j, "[\"rerank\"]", "cost_usd"))); /* no call inside: null, not $0 */
    has(j, "\"approximate\":false");
    has(j, "\"steps_omitted\":0,\"steps_from_requests\":2,\"slowest_step\":{\"name\":\"rerank\",\"path\":[\"rerank\"],");
}

/* By name, "tokenize" is one row again: 7 spans, 22 ms. */
static void test_report_steps_by_name(void **state)
{
    fixture *fx = *state;
    ms_report_opts o = {.json = 1, .steps_by_name = 1};
    report_with(fx, &o);
    const char *j = fx->out;
    has(j, "\"steps_by\":\"name\"");
    has(j, ROW("\"tokenize\",\"path\":null,\"count\":7,"));
    NEAR(j, ROW("\"tokenize\""), "total_ms", 22);
    NEAR(j, ROW("\"tokenize\""), "self_ms", 22);
    has(j, ROW("\"chat mock\",\"path\":null,\"count\":2,"));
    NEAR(j, ROW("\"chat mock\""), "cost_usd", 0.03);

    o.json = 0;
    report_with(fx, &o);
    has(fx->out, "Steps by name (");
    has(fx->out, "\n  tokenize         7   2.00 ms   5.70 ms   5.94 ms    22.0 ms    22.0 ms  12.1%");
}

/* Text: a path per row, a 3 us step in us, the LLM usage inside a step,
 * and the table of models with the time to first token. */
static void test_report_steps_text(void **state)
{
    fixture *fx = *state;
    ms_report_opts o = {0};
    report_with(fx, &o);
    const char *t = fx->out;
    has(t, "\n  rerank/score_doc/tokenize        3   2.00 ms   2.00 ms   2.00 ms    6.00 ms"
           "    6.00 ms   3.3%               -           -\n");
    has(t, "\n  embed                            2   16.5 ms   28.6 ms   29.7 ms    33.0 ms"
           "    12.0 ms  18.1%          100/20     $0.0100\n");
    has(t, "\n  parallel                         1   10.0 ms   10.0 ms   10.0 ms    10.0 ms"
           "       0 ns   5.5%");
    has(t, "\n  tick                             1   3.00 \xc2\xb5s   3.00 \xc2\xb5s   3.00 \xc2\xb5s"
           "    3.00 \xc2\xb5s    3.00 \xc2\xb5s   0.0%");
    hasnt(t, "more step");
    has(t, "Models (time to first token over streamed calls)\n"
           "  provider  model    calls  failed   tokens in/out        cost  TTFT p50  TTFT p95\n"
           "  mock      mock-1       2       0          150/25     $0.0300   2.00 ms   2.90 ms\n");

    o.json = 1;
    report_with(fx, &o);
    has(fx->out, "\"models\":[{\"provider\":\"mock\",\"model\":\"mock-1\",\"calls\":2,\"failed\":0,"
                 "\"input_tokens\":150,\"output_tokens\":25,\"cost_usd\":0.03,\"unknown_cost_calls\":0,"
                 "\"replayed_calls\":0,\"streamed_calls\":2,\"ttft_ms\":{\"p50\":2,\"p95\":2.9},"
                 "\"approximate\":false}]");
}

/* --steps N: the text lists the N heaviest and says how many it left;
 * JSON lists all unless told, and says how many it left out. */
static void test_report_steps_limit(void **state)
{
    fixture *fx = *state;
    ms_report_opts o = {.max_steps = 3};
    report_with(fx, &o);
    const char *t = fx->out;
    has(t, "\n  rerank/score_doc ");
    hasnt(t, "embed/tokenize");
    has(t, "  ... 9 more steps (--steps N lists more, --steps all every one)\n"
           "  slowest step: rerank (p95 60.0 ms)\n");

    o.json = 1;
    report_with(fx, &o);
    has(fx->out, "\"steps_omitted\":9,");
    hasnt(fx->out, "[\"embed\",\"tokenize\"]");

    o.max_steps = 0; /* the default: JSON complete */
    report_with(fx, &o);
    has(fx->out, "\"steps_omitted\":0,");
    has(fx->out, "[\"tick\"]");

    o.max_steps = -1; /* all */
    o.json = 0;
    report_with(fx, &o);
    has(fx->out, "\n  tick ");
}

/* A damaged blob whose one span claims index 3,000,000,000: the report
 * says which trace it cannot read, rather than sizing memory by it. */
static void test_report_refuses_a_span_index_beyond_reason(void **state)
{
    fixture *fx = *state;
    /* format 1, one string "a", one span: gidx 3e9 (zigzag 6e9), no
     * parent, name 0, start 0, 5 ns, kind span, ok */
    exec_sql(fx->db, "UPDATE traces SET parts = 0, spans = X'01' || X'0101' || X'61' || X'01'"
                     " || X'80f882ad16' || X'00000005' || X'01' WHERE id = 1");
    ms_report_opts o = {.json = 1};
    err_[0] = 0;
    CAPTURE(fx, ms_report_write(fx->db, &o, out, err_, sizeof err_));
    assert_int_equal(rc_, -1);
    assert_int_equal(fx->outlen, 0);
    has(err_, "trace row 1: grouping its steps: a span index far beyond the spans read");
}

/* --- stores before schema v3 --------------------------------------------- */

static void test_report_reads_an_upgraded_v2_store(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    has(fx->out, "\"top\":[{\"type\":\"manual\",\"message\":\"old way\",\"count\":1}]");
    has(fx->out, "\"backoff_ms_total\":0,\"backoff_ms_per_request\":0}");
}

/* --- hostile text ------------------------------------------------------ */

static void test_report_escapes_hostile_text(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 0);
    no_terminal_controls(fx->out, fx->outlen, "report");
    has(fx->out, "step" HOSTILE_SHOWN);
    has(fx->out, "type" HOSTILE_SHOWN ": line one msg" HOSTILE_SHOWN);
    has(fx->out, "mtype" HOSTILE_SHOWN ": manual" HOSTILE_SHOWN);
    has(fx->out, "suite" HOSTILE_SHOWN);
    has(fx->out, "case" HOSTILE_SHOWN);
    has(fx->out, "boom" HOSTILE_SHOWN);
    report(fx, 0, "req" HOSTILE "*", 0, 0);
    no_terminal_controls(fx->out, fx->outlen, "report --name");
    has(fx->out, "name 'req" HOSTILE_SHOWN "*'");
    report(fx, 0, NULL, 0, 1);
    no_c0_controls(fx->out, fx->outlen, "report --json");
}

/* --- budget stops ------------------------------------------------------ */

/* One request whose calls budgets stopped: rows 2-5 are llm spans that
 * raised budget_exceeded with llm.budget.kind request, run, run and none;
 * row 6 raised another error; the root (row 1) only saw one pass through.
 * A second trace's call raised budget_exceeded too, but it is caught and
 * re-raised by a span (own there, passing through the call: counted once,
 * at the call). */
static int budget_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    int64_t s = D1;
    span(db, 1, 10, "NULL", "agent", "trace", s, 100, "error", 0, "budget_exceeded", "stopped",
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    static const char *const kinds[] = {"'{\"llm.budget.kind\":\"request\"}'",
                                        "'{\"llm.budget.kind\":\"run\",\"llm.budget.limit_usd\":2}'",
                                        "'{\"llm.budget.kind\":\"run\"}'", "'{\"other\":1}'"};
    for (int i = 0; i < 4; i++) {
        span(db, 1, 11 + i, "10", "chat mock", "llm", s + (1 + i) * MS, 1, "error", 1, "budget_exceeded",
             "stopped", "0", "0", "0", "NULL", 0, "NULL");
        char *sql = sqlite3_mprintf("UPDATE spans SET attrs = %s WHERE span_id = %d", kinds[i], 11 + i);
        exec_sql(db, sql);
        sqlite3_free(sql);
    }
    span(db, 1, 15, "10", "chat mock", "llm", s + 6 * MS, 1, "error", 1, "rate_limit_error", "slow down",
         "0", "0", "0", "NULL", 0, "NULL");
    trace_row(db, 1, T1_ID, "agent", s, 100, "error", 5, 6, 1, 0, 0, "NULL", 0);
    exec_sql(db, "COMMIT");
    return seal(state);
}

static void test_report_budget_stops(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    has(fx->out, "\"budget_stops\":{\"count\":4,\"call\":0,\"request\":1,\"run\":2,\"other\":1}");
    /* they are errors and failed calls like any other */
    has(fx->out, "\"llm_calls\":{\"count\":5,\"failed\":5,");
    report(fx, 0, NULL, 0, 0);
    has(fx->out, "\nBudgets     4 calls stopped before sending: request 1, run 2, other 1\n");
}

static void test_report_no_budget_stops(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    has(fx->out, "\"budget_stops\":{\"count\":0,\"call\":0,\"request\":0,\"run\":0,\"other\":0}");
    report(fx, 0, NULL, 0, 0);
    hasnt(fx->out, "Budgets ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_requests_and_steps, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_tokens_cost_errors_retries, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_cost_trend, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_filters, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_text, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_empty, empty_dataset, close_db),
        cmocka_unit_test(test_report_not_a_store),
        cmocka_unit_test_setup_teardown(test_report_remote_parent_root, joined_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_cut_short_work, cut_short_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_steps_by_path, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_steps_by_name, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_steps_text, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_steps_limit, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_refuses_a_span_index_beyond_reason, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_reads_an_upgraded_v2_store, v2_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_escapes_hostile_text, hostile_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_budget_stops, budget_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_no_budget_stops, dataset, close_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
