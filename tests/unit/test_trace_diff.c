/* ms_trace_diff: which span changed between two traces of one eval case.
 * Every trace is the same case, built row by row (views_fixture.h) and
 * upgraded to the packed layout, differing from the baseline A in one
 * known way:
 *
 *   eval:s:c (trace, 30 ms)
 *     eval.run          1 ms, 25 ms
 *       generate        2 ms, 20 ms
 *         chat (llm)    3 ms, 10 ms, 100/12 tokens, $0.001
 *       search         23 ms,  2 ms, attrs {"q": "paris"}
 *     eval.score:x     27 ms,  1 ms, attrs {"eval.score": 1}
 */
#include "views_fixture.h"

#include "ms_trace_diff.h"

#define ID(n) "dddd00000000000000000000000000" n

typedef struct variant {
    int out_tokens;      /* chat's output tokens (12) */
    const char *q;       /* search's query ("paris") */
    int chat_ms;         /* chat's duration (10) */
    int search_ms;       /* search's duration (2) */
    int extra_search;    /* a second search span */
    int score;           /* the scorer's eval.score (1) */
    int retries;         /* chat's retries (0) */
} variant;

static const variant BASE = {12, "paris", 10, 2, 0, 1, 0};

static int64_t next_rowid = 1;

static void set_attrs(sqlite3 *db, int64_t rowid, const char *json)
{
    char *sql = sqlite3_mprintf("UPDATE spans SET attrs = %Q WHERE rowid = %lld", json, (long long)rowid);
    exec_sql(db, sql);
    sqlite3_free(sql);
}

/* Trace `row` with id `id`, built as BASE altered by v. */
static void case_trace(sqlite3 *db, int64_t row, const char *id, variant v)
{
    int64_t s = D1 + row * SEC, first = next_rowid;
    int64_t sid = row * 100;
    char in[16], out[16], parent[32], attrs[64];
    snprintf(in, sizeof in, "%d", 100);
    snprintf(out, sizeof out, "%d", v.out_tokens);
    span(db, row, sid, "NULL", "eval:s:c", "trace", s, 30, "ok", 0, NULL, NULL, "NULL", "NULL", "NULL", "NULL", 0,
         "NULL");
    snprintf(parent, sizeof parent, "%lld", (long long)sid);
    span(db, row, sid + 1, parent, "eval.run", "span", s + 1 * MS, 25 + v.chat_ms - 10, "ok", 0, NULL, NULL, "NULL",
         "NULL", "NULL", "NULL", 0, "NULL");
    snprintf(parent, sizeof parent, "%lld", (long long)sid + 1);
    span(db, row, sid + 2, parent, "generate", "span", s + 2 * MS, 20 + v.chat_ms - 10, "ok", 0, NULL, NULL, "NULL",
         "NULL", "NULL", "NULL", 0, "NULL");
    snprintf(parent, sizeof parent, "%lld", (long long)sid + 2);
    span(db, row, sid + 3, parent, "chat", "llm", s + 3 * MS, v.chat_ms, "ok", 0, NULL, NULL, in, out, "0", "0.001",
         v.retries, v.retries ? "1" : "NULL");
    snprintf(parent, sizeof parent, "%lld", (long long)sid + 1);
    span(db, row, sid + 4, parent, "search", "span", s + 23 * MS, v.search_ms, "ok", 0, NULL, NULL, "NULL", "NULL",
         "NULL", "NULL", 0, "NULL");
    snprintf(attrs, sizeof attrs, "{\"q\":\"%s\"}", v.q);
    set_attrs(db, first + 4, attrs);
    int n = 6;
    if (v.extra_search) {
        span(db, row, sid + 6, parent, "search", "span", s + 25 * MS, 1, "ok", 0, NULL, NULL, "NULL", "NULL", "NULL",
             "NULL", 0, "NULL");
        set_attrs(db, first + 5, attrs);
        n = 7;
    }
    snprintf(parent, sizeof parent, "%lld", (long long)sid);
    span(db, row, sid + 5, parent, "eval.score:x", "span", s + 27 * MS, 1, "ok", 0, NULL, NULL, "NULL", "NULL",
         "NULL", "NULL", 0, "NULL");
    snprintf(attrs, sizeof attrs, "{\"eval.score\":%d}", v.score);
    set_attrs(db, first + n - 1, attrs);
    trace_row(db, row, id, "eval:s:c", s, 30, "ok", 0, n, first, 100, v.out_tokens, "0.001", 0);
    next_rowid += n;
}

static int diff_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    next_rowid = 1;
    exec_sql(db, "BEGIN");
    variant v;
    case_trace(db, 1, ID("01"), BASE);
    v = BASE, v.out_tokens = 80, v.score = 0, v.search_ms = 20;
    case_trace(db, 2, ID("02"), v); /* tokens (and a later, slower search) */
    v = BASE, v.q = "london", v.score = 0;
    case_trace(db, 3, ID("03"), v); /* a tool call's argument */
    v = BASE, v.chat_ms = 50;
    case_trace(db, 4, ID("04"), v); /* the llm call got 5x slower; its parents with it */
    v = BASE, v.chat_ms = 15, v.score = 0;
    case_trace(db, 5, ID("05"), v); /* 1.5x: noise; only the score differs */
    v = BASE, v.extra_search = 1;
    case_trace(db, 6, ID("06"), v); /* one more step */
    v = BASE, v.retries = 2;
    case_trace(db, 7, ID("07"), v);
    exec_sql(db, "COMMIT");
    return seal(state);
}

static void expect(sqlite3 *db, const char *a, const char *b, const char *path, const char *what,
                   const char *before, const char *after)
{
    ms_trace_change c;
    err_[0] = 0; /* views_fixture's shared message buffer */
    rc_ = ms_trace_first_change(db, a, b, &c, err_, sizeof err_);
    if (rc_ != 0)
        fail_msg("%s -> %s: rc %d: %s", a, b, rc_, err_);
    assert_string_equal(c.path, path);
    assert_string_equal(c.what, what);
    assert_string_equal(c.before, before);
    assert_string_equal(c.after, after);
}

static void test_names_the_changed_step(void **state)
{
    sqlite3 *db = ((fixture *)*state)->db;
    /* tokens before the slower search, which starts later */
    expect(db, ID("01"), ID("02"), "eval.run/generate/chat", "output_tokens", "12", "80");
    expect(db, ID("01"), ID("03"), "eval.run/search", "attribute q", "paris", "london");
    /* the llm call, not eval.run or generate, which are slower only through it */
    expect(db, ID("01"), ID("04"), "eval.run/generate/chat", "latency", "10.00 ms", "50.00 ms");
    expect(db, ID("01"), ID("06"), "eval.run/search#2", "span", "absent", "present");
    expect(db, ID("06"), ID("01"), "eval.run/search#2", "span", "present", "absent");
    expect(db, ID("01"), ID("07"), "eval.run/generate/chat", "retries", "0", "2");
}

static void test_noise_and_scorers_are_no_change(void **state)
{
    sqlite3 *db = ((fixture *)*state)->db;
    ms_trace_change c;
    char err[512] = "";
    /* 10 -> 15 ms is within 2x; the scorer's span differs but is not a step */
    assert_int_equal(ms_trace_first_change(db, ID("01"), ID("05"), &c, err, sizeof err), 1);
    assert_non_null(strstr(err, "no span changed beyond noise"));
    assert_int_equal(ms_trace_first_change(db, ID("01"), ID("01"), &c, err, sizeof err), 1);
}

static void test_unknown_trace_is_an_error(void **state)
{
    sqlite3 *db = ((fixture *)*state)->db;
    ms_trace_change c;
    char err[512] = "";
    assert_int_equal(ms_trace_first_change(db, ID("01"), ID("99"), &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "no trace " ID("99") " in the store"));
    /* a sampled-out trace kept no spans: never read as "every step is gone" */
    exec_sql(db, "UPDATE traces SET sampled_out = 1 WHERE trace_id = '" ID("02") "'");
    assert_int_equal(ms_trace_first_change(db, ID("01"), ID("02"), &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "trace " ID("02") " was sampled out"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_the_changed_step, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_noise_and_scorers_are_no_change, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_unknown_trace_is_an_error, diff_dataset, close_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
