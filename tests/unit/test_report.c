/* test_report — `moonspan report`, `traces` and `show` over a hand-made
 * store whose every number is worked out by hand below.
 *
 * Runs from the repo root (the schema is read from telemetry/ms_schema.sql).
 * The JSON is checked by looking up a key after an anchor string and
 * reading the number with strtod, compared with a tolerance: percentiles
 * go through floating point (e.g. 370.00000000000006), so exact text
 * matching would test the last ulp, not the report. Integral values print
 * without a fraction (ms_json_num), which the exact fragment checks rely on.
 *
 * The dataset (UTC):
 *
 *  trace  id prefix  name             start               dur    status  tokens in/out  cost     spans (non-root)
 *  T1     aaaa0000   answer_question  2024-05-01 00:00:10  100ms  ok      100/20         0.01     generate 50 (llm 100/20 $0.01), search 10, rerank 5
 *  T2     aaaa1111   answer_question  2024-05-01 01:00:00  200ms  error   200/40         0.02     search 20, generate 150 (llm, raises RateLimit "too many requests", 2 retries, failed)
 *  T3     abcd2222   answer_question  2024-05-02 00:01:40  300ms  ok      300/60 (est)   unknown  search 30, generate 200 (llm, unpriced model, estimated usage, 1 retry, succeeded)
 *  T4     bbbb3333   batch_eval       2024-06-15 00:00:00  400ms  error   0/0            NULL     judge 40 (raises RateLimit "too many requests"); ctx:add_error("wrong answer")
 *  T5     cccc4444   answer_question  2024-06-15 00:01:00  1000ms ok      400/80         0.04     search 40, generate 400 (llm 400/80 $0.04)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ms_report.h"
#include "ms_show.h"
#include "ms_traces.h"

#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)
#define D1 (INT64_C(1714521600) * SEC) /* 2024-05-01T00:00:00Z */
#define D2 (INT64_C(1714608000) * SEC) /* 2024-05-02T00:00:00Z */
#define D3 (INT64_C(1718409600) * SEC) /* 2024-06-15T00:00:00Z */

#define T1_ID "aaaa0000000000000000000000000001"
#define T2_ID "aaaa1111000000000000000000000002"
#define T3_ID "abcd2222000000000000000000000003"
#define T4_ID "bbbb3333000000000000000000000004"
#define T5_ID "cccc4444000000000000000000000005"

typedef struct fixture {
    char path[64];
    sqlite3 *db;
    char *out;      /* last captured output */
    size_t outlen;
} fixture;

/* --- helpers ---------------------------------------------------------- */

/* Reads the schema from the repo (tests run from the repo root). */
static char *read_schema(void)
{
    FILE *f = fopen("telemetry/ms_schema.sql", "rb");
    assert_non_null(f);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        assert_int_equal(fwrite(buf, 1, n, m), n);
    assert_int_equal(ferror(f), 0);
    fclose(f);
    assert_int_equal(fclose(m), 0);
    return text;
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("sql failed: %s\n%s", msg ? msg : "?", sql);
    sqlite3_free(msg);
}

static int open_db(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->path, sizeof fx->path, "/tmp/ms_test_report_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(sqlite3_open(fx->path, &fx->db), SQLITE_OK);
    char *schema = read_schema();
    exec_sql(fx->db, schema);
    free(schema);
    *state = fx;
    return 0;
}

static int close_db(void **state)
{
    fixture *fx = *state;
    assert_int_equal(sqlite3_close(fx->db), SQLITE_OK);
    unlink(fx->path);
    free(fx->out);
    free(fx);
    return 0;
}

/* One span row; nullable numbers are passed as SQL text ("NULL", "0.01"). */
static void span(sqlite3 *db, int64_t trace_row, int64_t sid, const char *parent,
                 const char *name, const char *kind, int64_t start_ns, int64_t dur_ms,
                 const char *status, int err_own, const char *etype, const char *emsg,
                 const char *in, const char *out, const char *est, const char *cost,
                 int retries, const char *retry_ok)
{
    char *sql = sqlite3_mprintf(
        "INSERT INTO spans (trace_row, span_id, parent_id, name, kind, start_ns,"
        " duration_ns, status, error_own, error_type, error_message, provider, model,"
        " input_tokens, output_tokens, usage_estimated, cost_usd, retries, retry_succeeded)"
        " VALUES (%lld, %lld, %s, %Q, %Q, %lld, %lld, %Q, %d, %Q, %Q, %s, %s,"
        " %s, %s, %s, %s, %d, %s)",
        (long long)trace_row, (long long)sid, parent, name, kind, (long long)start_ns,
        (long long)(dur_ms * MS), status, err_own, etype, emsg,
        strcmp(kind, "llm") == 0 ? "'mock'" : "NULL",
        strcmp(kind, "llm") == 0 ? "'mock-1'" : "NULL", in, out, est, cost, retries,
        retry_ok);
    assert_non_null(sql);
    exec_sql(db, sql);
    sqlite3_free(sql);
}

/* One trace row pointing at spans first_span .. first_span + nspans - 1. */
static void trace_row(sqlite3 *db, int64_t row, const char *id, const char *name,
                      int64_t start_ns, int64_t dur_ms, const char *status, int errors,
                      int nspans, int64_t first_span, int in, int out, const char *cost,
                      int unknown)
{
    char *sql = sqlite3_mprintf(
        "INSERT INTO traces (id, trace_id, name, start_ns, duration_ns, status,"
        " error_count, span_count, first_span, input_tokens, output_tokens,"
        " cache_read_tokens, cache_write_tokens, cost_usd, unknown_cost_calls)"
        " VALUES (%lld, %Q, %Q, %lld, %lld, %Q, %d, %d, %lld, %d, %d, 0, 0, %s, %d)",
        (long long)row, id, name, (long long)start_ns, (long long)(dur_ms * MS), status,
        errors, nspans, (long long)first_span, in, out, cost, unknown);
    assert_non_null(sql);
    exec_sql(db, sql);
    sqlite3_free(sql);
}

/* The dataset of the header comment. Span rowids are 1.. in insert order. */
static int dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");

    /* T1, rows 1-4: generate is stored before search, but starts after it,
     * so `show` must order children by start, not by rowid */
    int64_t s = D1 + 10 * SEC;
    span(db, 1, 10, "NULL", "answer_question", "trace", s, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "generate", "llm", s + 20 * MS, 50, "ok", 0, NULL, NULL,
         "100", "20", "0", "0.01", 0, "NULL");
    span(db, 1, 12, "10", "search", "span", s + 1 * MS, 10, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 13, "10", "rerank", "span", s + 80 * MS, 5, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, T1_ID, "answer_question", s, 100, "ok", 0, 4, 1, 100, 20, "0.01", 0);
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs)"
                 " VALUES (1, 12, 'cache_hit', 1714521610002000000, '{\"k\":5}')");

    /* T2, rows 5-7: the error is raised in generate and passes through root */
    s = D1 + 3600 * SEC;
    span(db, 2, 20, "NULL", "answer_question", "trace", s, 200, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 21, "20", "search", "span", s + 1 * MS, 20, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 22, "20", "generate", "llm", s + 30 * MS, 150, "error", 1, "RateLimit",
         "too many requests", "200", "40", "0", "0.02", 2, "0");
    trace_row(db, 2, T2_ID, "answer_question", s, 200, "error", 1, 3, 5, 200, 40, "0.02", 0);

    /* T3, rows 8-10: unpriced model, estimated usage, a retry that helped */
    s = D2 + 100 * SEC;
    span(db, 3, 30, "NULL", "answer_question", "trace", s, 300, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 31, "30", "search", "span", s + 1 * MS, 30, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 32, "30", "generate", "llm", s + 40 * MS, 200, "ok", 0, NULL, NULL,
         "300", "60", "1", "NULL", 1, "1");
    trace_row(db, 3, T3_ID, "answer_question", s, 300, "ok", 0, 3, 8, 300, 60, "NULL", 1);

    /* T4, rows 11-12: a raised error in judge plus a manual ctx:add_error */
    s = D3;
    span(db, 4, 40, "NULL", "batch_eval", "trace", s, 400, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 4, 41, "40", "judge", "span", s + 1 * MS, 40, "error", 1, "RateLimit",
         "too many requests", "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 4, T4_ID, "batch_eval", s, 400, "error", 2, 2, 11, 0, 0, "NULL", 0);
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, error_type, error_message)"
                 " VALUES (4, 40, 'error', 1718409600300000000, 'manual', 'wrong answer')");

    /* T5, rows 13-15 */
    s = D3 + 60 * SEC;
    span(db, 5, 50, "NULL", "answer_question", "trace", s, 1000, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 51, "50", "search", "span", s + 1 * MS, 40, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 52, "50", "generate", "llm", s + 50 * MS, 400, "ok", 0, NULL, NULL,
         "400", "80", "0", "0.04", 0, "NULL");
    trace_row(db, 5, T5_ID, "answer_question", s, 1000, "ok", 0, 3, 13, 400, 80, "0.04", 0);

    exec_sql(db, "COMMIT");
    return 0;
}

/* Runs `fn` into a memory stream; the text lands in fx->out. */
#define CAPTURE(fx, call)                                                  \
    do {                                                                   \
        free((fx)->out);                                                   \
        (fx)->out = NULL;                                                  \
        FILE *out_ = open_memstream(&(fx)->out, &(fx)->outlen);            \
        assert_non_null(out_);                                             \
        FILE *out = out_;                                                  \
        rc_ = (call);                                                      \
        assert_int_equal(fclose(out_), 0);                                 \
    } while (0)

static int rc_;
static char err_[512];

static int report(fixture *fx, int64_t since, const char *glob, int by_month, int json)
{
    ms_report_opts o = {.since_ns = since, .name_glob = glob, .by_month = by_month,
                        .json = json};
    err_[0] = 0;
    CAPTURE(fx, ms_report_write(fx->db, &o, out, err_, sizeof err_));
    if (rc_ != 0)
        fail_msg("report failed: %s", err_);
    return rc_;
}

/* The number after `"key":` that follows `anchor` (NULL = from the start);
 * NaN for null. Fails the test when either is missing. */
static double jnum(const char *doc, const char *anchor, const char *key)
{
    const char *p = anchor ? strstr(doc, anchor) : doc;
    if (!p)
        fail_msg("anchor %s not in %s", anchor, doc);
    char k[96];
    snprintf(k, sizeof k, "\"%s\":", key);
    p = strstr(p, k);
    if (!p)
        fail_msg("key %s not after %s in %s", key, anchor ? anchor : "start", doc);
    p += strlen(k);
    if (strncmp(p, "null", 4) == 0)
        return NAN;
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        fail_msg("no number for %s after %s: %.40s", key, anchor ? anchor : "start", p);
    return v;
}

static void near(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= 1e-9 * fmax(1, fabs(want))))
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

#define NEAR(doc, anchor, key, want) near(jnum(doc, anchor, key), want, anchor " " key)

/* The document goes to stderr in full: cmocka truncates long messages. */
static void has(const char *doc, const char *needle)
{
    if (!strstr(doc, needle)) {
        fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
        fail_msg("missing \"%s\"", needle);
    }
}

static void hasnt(const char *doc, const char *needle)
{
    if (strstr(doc, needle)) {
        fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
        fail_msg("unexpected \"%s\"", needle);
    }
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
    has(j, "\"requests\":{\"count\":0,\"interrupted\":0,\"incomplete\":0,"
           "\"latency_ms\":{\"p50\":null,\"p95\":null,"
           "\"p99\":null,\"max\":null}}");
    has(j, "\"steps\":[],\"slowest_step\":null");
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
    /* generate: 4 calls, 800 ms of 945 -> 84.7% */
    has(t, "  generate        4     175 ms     370 ms     394 ms       800 ms  84.7%");
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

/* --- traces ----------------------------------------------------------- */

static void test_traces_list(void **state)
{
    fixture *fx = *state;
    err_[0] = 0;
    CAPTURE(fx, ms_traces_write(fx->db, 10, 0, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    /* newest first */
    const char *p5 = strstr(t, T5_ID), *p4 = strstr(t, T4_ID), *p3 = strstr(t, T3_ID);
    const char *p2 = strstr(t, T2_ID), *p1 = strstr(t, T1_ID);
    assert_true(p5 && p4 && p3 && p2 && p1);
    assert_true(p5 < p4 && p4 < p3 && p3 < p2 && p2 < p1);
    has(t, T1_ID "  answer_question  2024-05-01T00:00:10Z      100 ms           100/20"
           "      $0.0100  ok\n");
    /* unknown cost is "-", never $0 */
    has(t, T3_ID "  answer_question  2024-05-02T00:01:40Z      300 ms           300/60"
           "            -  ok\n");
    has(t, T4_ID "  batch_eval       2024-06-15T00:00:00Z      400 ms              0/0"
           "            -  error\n");

    CAPTURE(fx, ms_traces_write(fx->db, 2, 0, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, T5_ID);
    has(fx->out, T4_ID);
    hasnt(fx->out, T3_ID);

    CAPTURE(fx, ms_traces_write(fx->db, 10, 1, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *j = fx->out;
    assert_int_equal(j[0], '[');
    has(j, "{\"trace_id\":\"" T4_ID "\",\"name\":\"batch_eval\",\"start_ns\":1718409600000000000,"
           "\"start\":\"2024-06-15T00:00:00Z\",\"duration_ms\":400,\"input_tokens\":0,"
           "\"output_tokens\":0,\"cost_usd\":null,\"unknown_cost_calls\":0,"
           "\"status\":\"error\",\"error_count\":2,\"span_count\":2}");
    has(j, T2_ID);
    hasnt(j, T1_ID);
    hasnt(j, T5_ID);
    assert_true(strstr(j, T4_ID) < strstr(j, T2_ID));
}

static void test_traces_empty(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_traces_write(fx->db, 10, 0, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "no traces recorded yet");
    CAPTURE(fx, ms_traces_write(fx->db, 10, 0, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    assert_string_equal(fx->out, "[]\n");
}

/* --- show ------------------------------------------------------------- */

static void test_show_tree(void **state)
{
    fixture *fx = *state;
    err_[0] = 0;
    /* unique prefix, any case */
    CAPTURE(fx, ms_trace_show(fx->db, "AAAA0", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    has(t, "answer_question  trace " T1_ID "\n");
    has(t, "start 2024-05-01T00:00:10Z   duration 100 ms   tokens 100 in / 20 out"
           "   cost $0.0100   status ok");
    /* children by start: search (+1 ms) before generate (+20 ms) before
     * rerank (+80 ms), although generate was stored first */
    const char *se = strstr(t, "\n  search"), *ge = strstr(t, "\n  generate");
    const char *re = strstr(t, "\n  rerank");
    assert_true(se && ge && re && se < ge && ge < re);
    has(t, "100/20 tok");
    has(t, "    * event cache_hit {\"k\":5}\n");

    /* error, retries */
    CAPTURE(fx, ms_trace_show(fx->db, "aaaa1111", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "status error (1 error)");
    has(fx->out, "error  retries 2 (failed)  RateLimit: too many requests\n");

    /* estimated tokens, unpriced call */
    CAPTURE(fx, ms_trace_show(fx->db, "abcd", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "300/60 tok (est)");
    has(fx->out, "cost ?");
    has(fx->out, "retries 1 (succeeded)");
    has(fx->out, "cost unknown for 1 call");

    /* the manual error event sits under the root */
    CAPTURE(fx, ms_trace_show(fx->db, T4_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "  * ERROR (ctx:add_error) manual: wrong answer\n");
    has(fx->out, "  judge");
}

static void test_show_json(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *j = fx->out;
    has(j, "{\"trace_id\":\"" T1_ID "\",\"name\":\"answer_question\"");
    has(j, "\"spans\":[{\"span_id\":\"000000000000000a\",\"parent_id\":null,"
           "\"name\":\"answer_question\",\"kind\":\"trace\"");
    /* nested: the root's children array holds search, generate, rerank */
    has(j, "\"children\":[{\"span_id\":\"000000000000000c\",\"parent_id\":\"000000000000000a\","
           "\"name\":\"search\"");
    has(j, "\"events\":[{\"name\":\"cache_hit\",\"time_ns\":1714521610002000000,"
           "\"attrs\":{\"k\":5}}]");
    has(j, "\"provider\":\"mock\",\"model\":\"mock-1\",\"input_tokens\":100,"
           "\"output_tokens\":20");
    assert_true(strstr(j, "\"name\":\"search\"") < strstr(j, "\"name\":\"generate\""));
    assert_string_equal(j + strlen(j) - 3, "]}\n");
}

static void test_show_lookup_errors(void **state)
{
    fixture *fx = *state;
    err_[0] = 0;
    /* a prefix of two ids: both listed, numbered for --pick */
    CAPTURE(fx, ms_trace_show(fx->db, "aaaa", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    assert_string_equal(err_, "2 traces of 2 different ids match the prefix aaaa; give more"
                              " characters, or pick one with `moonspan show aaaa --pick N`");
    has(fx->out, "  1    " T1_ID "  answer_question       2024-05-01T00:00:10Z      100 ms"
                 "  ok           000000000000000a\n");
    has(fx->out, "  2    " T2_ID "  answer_question       2024-05-01T01:00:00Z      200 ms"
                 "  error        0000000000000014\n");
    ms_show_opts o = {.id = "aaaa", .pick = 2};
    CAPTURE(fx, ms_show_write(fx->db, &o, out, stderr, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "answer_question  trace " T2_ID "  (--pick 2 of 2 matching traces)\n");

    CAPTURE(fx, ms_trace_show(fx->db, "ffff", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    assert_string_equal(err_, "no trace with id ffff; list ids with `moonspan traces`");

    CAPTURE(fx, ms_trace_show(fx->db, "abc", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, -1);
    has(err_, "4 to 32 hex characters");

    CAPTURE(fx, ms_trace_show(fx->db, "zzzz", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, -1);
    has(err_, "not hex");
}

static void test_remote_parent_root(void **state)
{
    /* a run joined through TRACEPARENT: the root has a parent id from the
     * outer system. It is still the root (first row of the range), not a
     * step, and show still starts the tree at it. */
    fixture *fx = *state;
    exec_sql(fx->db, "BEGIN");
    span(fx->db, 1, 70, "999", "joined", "trace", D1, 30, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(fx->db, 1, 71, "70", "step", "span", D1 + MS, 20, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    /* a corrupt parent link (itself) hangs off the root instead of vanishing */
    span(fx->db, 1, 72, "72", "selfish", "span", D1 + 2 * MS, 10, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(fx->db, 1, T1_ID, "joined", D1, 30, "ok", 0, 3, 1, 0, 0, "NULL", 0);
    exec_sql(fx->db, "COMMIT");

    report(fx, 0, NULL, 0, 1);
    hasnt(fx->out, "\"name\":\"joined\"");
    has(fx->out, "\"steps\":[{\"name\":\"step\",\"count\":1,");
    /* no priced and no unpriced call: total 0, nothing unknown */
    has(fx->out, "\"total_usd\":0,\"avg_usd_per_request\":0,\"unknown_cost_calls\":0");

    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\n\njoined ");
    has(fx->out, "\n  step ");
    has(fx->out, "\n  selfish ");
    has(fx->out, "cost -   status ok");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"parent_id\":\"00000000000003e7\",\"name\":\"joined\"");
}

/* --- interrupted and incomplete work ---------------------------------- */

/* Requests cut short, and LLM calls that failed inside requests that did
 * not (the call's error caught by the script):
 *
 *  trace  status       dur    spans (non-root)
 *  U1     ok           100ms  call 40 (llm ok, 1 retry succeeded, 30 ms backoff), work 20
 *  U2     error        200ms  call 150 (llm error "server down", 2 retries failed, 100 ms backoff)
 *  U3     interrupted  5000ms work 4900 (interrupted), call 30 (llm ok)
 *  U4     incomplete   7000ms work 6000 (incomplete), call 10 (llm incomplete)
 *  U5     ok           300ms  bg 250 (incomplete: an abandoned coroutine), call 50 (llm error
 *                             "server down", caught; 1 retry failed, 20 ms backoff)
 */
static int cut_short_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    int64_t s = D1;
    span(db, 1, 10, "NULL", "u", "trace", s, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "call", "llm", s + MS, 40, "ok", 0, NULL, NULL,
         "10", "1", "0", "0.001", 1, "1");
    span(db, 1, 12, "10", "work", "span", s + 50 * MS, 20, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, "dddd0001000000000000000000000001", "u", s, 100, "ok", 0, 3, 1, 10, 1,
              "0.001", 0);
    s += SEC;
    span(db, 2, 20, "NULL", "u", "trace", s, 200, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 21, "20", "call", "llm", s + MS, 150, "error", 1, "api_error", "server down",
         "0", "0", "0", "NULL", 2, "0");
    trace_row(db, 2, "dddd0002000000000000000000000002", "u", s, 200, "error", 1, 2, 4, 0, 0,
              "NULL", 0);
    s += SEC;
    span(db, 3, 30, "NULL", "u", "trace", s, 5000, "interrupted", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 31, "30", "work", "span", s + MS, 4900, "interrupted", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 32, "30", "call", "llm", s + MS, 30, "ok", 0, NULL, NULL,
         "10", "1", "0", "0.001", 0, "NULL");
    trace_row(db, 3, "dddd0003000000000000000000000003", "u", s, 5000, "interrupted", 0, 3, 6,
              10, 1, "0.001", 0);
    s += 10 * SEC;
    span(db, 4, 40, "NULL", "u", "trace", s, 7000, "incomplete", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 4, 41, "40", "work", "span", s + MS, 6000, "incomplete", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 4, 42, "41", "call", "llm", s + 2 * MS, 10, "incomplete", 0, NULL, NULL,
         "0", "0", "0", "NULL", 0, "NULL");
    trace_row(db, 4, "dddd0004000000000000000000000004", "u", s, 7000, "incomplete", 0, 3, 9,
              0, 0, "NULL", 0);
    s += 10 * SEC;
    span(db, 5, 50, "NULL", "u", "trace", s, 300, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 51, "50", "bg", "span", s + MS, 250, "incomplete", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 52, "50", "call", "llm", s + 2 * MS, 50, "error", 1, "api_error", "server down",
         "0", "0", "0", "NULL", 1, "0");
    trace_row(db, 5, "dddd0005000000000000000000000005", "u", s, 300, "ok", 1, 3, 12, 0, 0,
              "NULL", 0);
    exec_sql(db, "UPDATE spans SET backoff_ns = 30000000 WHERE span_id = 11;"
                 "UPDATE spans SET backoff_ns = 100000000 WHERE span_id = 21;"
                 "UPDATE spans SET backoff_ns = 20000000 WHERE span_id = 52;");
    exec_sql(db, "COMMIT");
    return 0;
}

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
    has(j, "{\"name\":\"call\",\"count\":4,");
    NEAR(j, "\"name\":\"call\"", "total_ms", 270);
    has(j, "{\"name\":\"work\",\"count\":1,");
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

/* --- statuses and manual errors in show and traces ---------------------- */

static void test_show_manual_error_event(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T4_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"events\":[{\"name\":\"error\",\"time_ns\":1718409600300000000,\"attrs\":null,"
                 "\"error_type\":\"manual\",\"error_message\":\"wrong answer\"}]");
    /* other events carry no error keys */
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    hasnt(fx->out, "error_type");
}

static void test_show_and_traces_cut_short(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0003", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    has(t, "   status interrupted (cut short by SIGINT/SIGTERM; not an error)\n");
    has(t, "\nu  ");
    has(t, "  interrupted\n  work ");
    has(t, "  interrupted\n  call ");
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0004", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "   status incomplete (still open when the run ended)\n");
    has(fx->out, "\n    call ");
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0004", 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"status\":\"incomplete\",\"error_count\":0");

    CAPTURE(fx, ms_traces_write(fx->db, 10, 0, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "dddd0003000000000000000000000003  u     2024-05-01T00:00:02Z     5000 ms"
                 "             10/1    $0.001000  interrupted\n");
    has(fx->out, "  incomplete\n");
    /* --errors lists failed requests: interruptions are not failures */
    CAPTURE(fx, ms_traces_write(fx->db, 10, 1, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "dddd0002");
    hasnt(fx->out, "dddd0003");
    hasnt(fx->out, "dddd0004");
}

/* A store from before schema v3, read as it is: no backoff_ns column, and
 * a ctx:add_error kept as the JSON attrs of an 'error' event on a root
 * span left 'ok' while its trace failed. */
static int v2_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "ALTER TABLE spans DROP COLUMN backoff_ns;"
                 "DROP TABLE span_events;"
                 "CREATE TABLE span_events (trace_row INTEGER NOT NULL, span_id INTEGER NOT NULL,"
                 " name TEXT NOT NULL, time_ns INTEGER NOT NULL, attrs TEXT);");
    exec_sql(db, "BEGIN");
    span(db, 1, 10, "NULL", "judged", "trace", D1, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "step", "span", D1 + MS, 50, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 2, "1");
    trace_row(db, 1, T1_ID, "judged", D1, 100, "error", 1, 2, 1, 0, 0, "NULL", 0);
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs) VALUES"
                 " (1, 10, 'error', 1714521600050000000, '{\"type\":\"manual\",\"message\":\"old way\"}'),"
                 " (1, 11, 'retry', 1714521600020000000, '{\"attempt\":1}')");
    exec_sql(db, "COMMIT");
    return 0;
}

static void test_reads_a_store_before_v3(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    has(fx->out, "\"top\":[{\"type\":\"manual\",\"message\":\"old way\",\"count\":1}]");
    has(fx->out, "\"backoff_ms_total\":0,\"backoff_ms_per_request\":0}");

    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    has(t, "   status error (1 error)\n");
    /* the root row agrees with the header, not with the stored root span */
    has(t, "\njudged ");
    hasnt(t, "  ok\n  * ERROR");
    has(t, "  error\n  * ERROR (ctx:add_error) manual: old way\n");
    has(t, "    * event retry {\"attempt\":1}\n");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"name\":\"judged\",\"kind\":\"trace\",\"start_ns\":1714521600000000000,"
                 "\"duration_ms\":100,\"status\":\"error\"");
    has(fx->out, "\"attrs\":{\"type\":\"manual\",\"message\":\"old way\"},"
                 "\"error_type\":\"manual\",\"error_message\":\"old way\"}");
}

/* --- traces sharing one id (TRACEPARENT) --------------------------------- */

#define SHARED_ID "5ea7ed00000000000000000000000001"

/* Three runs that joined one outer trace: rows 1..3, with rows 2 and 3
 * starting at the same nanosecond and row 1 after both. */
static int shared_id_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    static const struct { const char *name; int64_t start; const char *status; } t[] = {
        {"late", D1 + 9 * SEC, "ok"}, {"early_a", D1, "error"}, {"early_b", D1, "ok"}};
    for (int i = 0; i < 3; i++) {
        span(db, i + 1, 100 + i, "777", t[i].name, "trace", t[i].start, 10 * (i + 1), t[i].status,
             0, NULL, NULL, "NULL", "NULL", "NULL", "NULL", 0, "NULL");
        trace_row(db, i + 1, SHARED_ID, t[i].name, t[i].start, 10 * (i + 1), t[i].status, 0, 1,
                  i + 1, 0, 0, "NULL", 0);
    }
    exec_sql(db, "COMMIT");
    return 0;
}

static void test_show_traces_sharing_an_id(void **state)
{
    fixture *fx = *state;
    char *list = NULL;
    size_t listlen = 0;
    FILE *matches = open_memstream(&list, &listlen);
    assert_non_null(matches);
    ms_show_opts o = {.id = SHARED_ID};
    CAPTURE(fx, ms_show_write(fx->db, &o, out, matches, err_, sizeof err_));
    assert_int_equal(fclose(matches), 0);
    /* nothing shown, the three listed by start then row, the fix named */
    assert_int_equal(rc_, 1);
    assert_int_equal(fx->outlen, 0);
    assert_string_equal(err_, "3 traces share the id " SHARED_ID " (a run that joined an outer"
                              " trace through TRACEPARENT); pick one with `moonspan show "
                              SHARED_ID " --pick N`");
    has(list, "  #    trace id                          name                  start ");
    const char *a = strstr(list, "  1    " SHARED_ID "  early_a  ");
    const char *b = strstr(list, "  2    " SHARED_ID "  early_b  ");
    const char *c = strstr(list, "  3    " SHARED_ID "  late  ");
    if (!a || !b || !c)
        fail_msg("not listed in order:\n%s", list);
    has(list, "  error        0000000000000065\n");
    free(list);

    o.json = 1;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    has(fx->out, "{\"error\":\"3 traces share the id " SHARED_ID);
    has(fx->out, "\"count\":3,\"matches\":[{\"pick\":1,\"trace_id\":\"" SHARED_ID "\","
                 "\"name\":\"early_a\",\"start_ns\":1714521600000000000,"
                 "\"start\":\"2024-05-01T00:00:00Z\",\"duration_ms\":20,\"status\":\"error\","
                 "\"root_span_id\":\"0000000000000065\"},{\"pick\":2,");
    has(fx->out, "\"pick\":3,\"trace_id\":\"" SHARED_ID "\",\"name\":\"late\"");

    /* --pick N shows the Nth as listed */
    o.pick = 3;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, stderr, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"trace_id\":\"" SHARED_ID "\",\"name\":\"late\"");
    has(fx->out, "\"pick\":3,\"matching_traces\":3,\"spans\":[");
    o.json = 0;
    o.pick = 2;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, stderr, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "early_b  trace " SHARED_ID "  (--pick 2 of 3 matching traces)\n");
    has(fx->out, "\n\nearly_b ");

    /* beyond the matches: listed again, nothing shown */
    o.pick = 4;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    assert_string_equal(err_, "--pick 4: only 3 traces match " SHARED_ID "; pick one of those listed");
    has(fx->out, "  3    " SHARED_ID "  late  ");
    hasnt(fx->out, "trace " SHARED_ID);
}

/* --- hostile text ------------------------------------------------------ */

/* What a script, a model or a server may put in a name or a message: a
 * terminal title (OSC ... BEL), clear screen (CSI 2J), an 8-bit CSI
 * (U+009B) and a right-to-left override (U+202E). */
#define HOSTILE "\x1b]0;pwned\x07\x1b[2J\xc2\x9b" "2J\xe2\x80\xae"
#define HOSTILE_SHOWN "\\x1b]0;pwned\\x07\\x1b[2J\\u{009b}2J\\u{202e}"

/* Fails when `doc` holds a byte or character that a terminal acts on:
 * C0 controls but '\n', DEL and, unless c0_only, C1 controls and
 * bidirectional overrides. */
static void controls_check(const char *doc, size_t len, const char *what, int c0_only)
{
    const unsigned char *p = (const unsigned char *)doc;
    for (size_t i = 0; i < len; i++) {
        int c0 = (p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f;
        int c1 = p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f;
        int bidi = p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 && p[i + 2] >= 0xaa &&
                   p[i + 2] <= 0xae;
        int bad = c0 || (!c0_only && (c1 || bidi));
        if (bad) {
            fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
            fail_msg("%s: control byte 0x%02x at offset %zu", what, p[i], i);
        }
    }
}

static void no_terminal_controls(const char *doc, size_t len, const char *what)
{
    controls_check(doc, len, what, 0);
}

/* JSON escapes C0 and DEL itself and leaves other characters to the
 * program that reads it. */
static void no_c0_controls(const char *doc, size_t len, const char *what)
{
    controls_check(doc, len, what, 1);
}

/* One trace whose every text is hostile: its name, a span name, the
 * span's error type and message, an event name and its attributes, and
 * an eval suite, case id and reason pointing at it. */
static int hostile_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    span(db, 1, 10, "NULL", "req" HOSTILE, "trace", D1, 100, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "step" HOSTILE, "span", D1 + MS, 50, "error", 1, "type" HOSTILE,
         "line one\nmsg" HOSTILE, "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, T1_ID, "req" HOSTILE, D1, 100, "error", 2, 2, 1, 0, 0, "NULL", 0);
    /* the JSON of an attribute escapes C0 itself, but not C1 or bidi */
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs) VALUES"
                 " (1, 11, 'ev" HOSTILE "', 1714521600002000000,"
                 " '{\"k\":\"\\u001b]0;t\\u0007 \xc2\x9b" "2J \xe2\x80\xae\"}')");
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, error_type,"
                 " error_message) VALUES (1, 10, 'error', 1714521600003000000,"
                 " 'mtype" HOSTILE "', 'manual" HOSTILE "')");
    exec_sql(db, "INSERT INTO eval_runs (id, suite, suite_file, start_ns, end_ns, config, cases,"
                 " passed, pass_rate, threshold, status, recorded) VALUES (1, 'suite" HOSTILE "',"
                 " 's.lua', 1714521600000000000, 1714521601000000000, '{}', 1, 0, 0, 1,"
                 " 'failed', 0)");
    exec_sql(db, "INSERT INTO eval_results (eval_run, case_id, repeat_index, pass, error,"
                 " trace_id, replayed) VALUES (1, 'case" HOSTILE "', 0, 0, 'boom" HOSTILE "',"
                 " '" T1_ID "', 0)");
    exec_sql(db, "COMMIT");
    return 0;
}

static void test_text_views_escape_hostile_text(void **state)
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
    has(fx->out, "name GLOB 'req" HOSTILE_SHOWN "*'");

    CAPTURE(fx, ms_traces_write(fx->db, 10, 0, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    no_terminal_controls(fx->out, fx->outlen, "traces");
    has(fx->out, "req" HOSTILE_SHOWN);

    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    no_terminal_controls(fx->out, fx->outlen, "show");
    has(fx->out, "req" HOSTILE_SHOWN "  trace " T1_ID "\n");
    has(fx->out, "  step" HOSTILE_SHOWN);
    has(fx->out, "type" HOSTILE_SHOWN ": line one msg" HOSTILE_SHOWN "\n");
    has(fx->out, "ev" HOSTILE_SHOWN);
    has(fx->out, "\\u{009b}2J \\u{202e}");
}

static void test_json_views_escape_hostile_text(void **state)
{
    fixture *fx = *state;
    report(fx, 0, NULL, 0, 1);
    no_c0_controls(fx->out, fx->outlen, "report --json");
    CAPTURE(fx, ms_traces_write(fx->db, 10, 0, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    no_c0_controls(fx->out, fx->outlen, "traces --json");
    has(fx->out, "\"name\":\"req\\u001b]0;pwned\\u0007\\u001b[2J");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    /* JSON leaves C1 and bidi characters to the program that reads it */
    has(fx->out, "\"name\":\"step\\u001b]0;pwned\\u0007\\u001b[2J");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_requests_and_steps, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_tokens_cost_errors_retries, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_cost_trend, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_filters, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_text, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_report_empty, open_db, close_db),
        cmocka_unit_test(test_report_not_a_store),
        cmocka_unit_test_setup_teardown(test_traces_list, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_traces_empty, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_show_tree, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_json, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_lookup_errors, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_remote_parent_root, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_report_cut_short_work, cut_short_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_manual_error_event, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_and_traces_cut_short, cut_short_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_reads_a_store_before_v3, v2_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_traces_sharing_an_id, shared_id_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_text_views_escape_hostile_text, hostile_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_json_views_escape_hostile_text, hostile_dataset, close_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
