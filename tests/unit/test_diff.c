/* test_diff — `moonspan diff` over a hand-made store (views_fixture.h)
 * whose numbers are known exactly: 10 "old_*" requests whose step "work"
 * takes 10..19 ms and 10 "new_*" requests where it takes 30..39 ms, a step
 * "same" of 5 ms in every request, and 5 of the new requests failing. The
 * sides are globs, so no run rows are needed.
 *
 * JSON is read with jnum and NEAR (checks.h): a number after an anchor and a key. */
#include "views_fixture.h"

#include "ms_diff.h"
#include "ms_stats.h"

static int64_t row_, span_;

/* One request `name` of `dur_ms`, with steps work (work_ms) and same (5 ms). */
static void request(sqlite3 *db, const char *name, int64_t start, int64_t dur_ms, int64_t work_ms,
                    const char *status, int in, int out)
{
    char id[33];
    int64_t row = ++row_, first = span_ + 1;
    snprintf(id, sizeof id, "%032llx", (long long)row);
    int64_t root = ++span_ * 10;
    span(db, row, root, "NULL", name, "trace", start, dur_ms, status, 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    char parent[32];
    snprintf(parent, sizeof parent, "%lld", (long long)root);
    span(db, row, ++span_ * 10, parent, "work", "span", start + MS, work_ms, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, row, ++span_ * 10, parent, "same", "span", start + 2 * MS, 5, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, row, id, name, start, dur_ms, status, strcmp(status, "error") == 0, 3, first,
              in, out, "NULL", 0);
}

static int diff_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    row_ = span_ = 0;
    exec_sql(db, "BEGIN");
    for (int i = 0; i < 10; i++) {
        request(db, "old_answer", D1 + i * SEC, 50 + i, 10 + i, "ok", 100, 10);
        request(db, "new_answer", D2 + i * SEC, 70 + i, 30 + i, i < 5 ? "error" : "ok", 100, 10);
    }
    exec_sql(db, "COMMIT");
    return seal(state);
}

static int failed_;

static ms_diff_opts opts(const char *a, const char *b, int json)
{
    ms_diff_opts o = {.seed = MS_STATS_SEED, .resamples = MS_STATS_RESAMPLES,
                      .min_change = MS_DIFF_MIN_CHANGE, .json = json};
    o.side[0] = (ms_diff_side){.kind = MS_SIDE_GLOB, .arg = a};
    o.side[1] = (ms_diff_side){.kind = MS_SIDE_GLOB, .arg = b};
    return o;
}

static void run(fixture *fx, const ms_diff_opts *o)
{
    err_[0] = 0;
    CAPTURE(fx, ms_diff_write(fx->db, o, out, &failed_, err_, sizeof err_));
    if (rc_ != 0)
        fail_msg("diff failed: %s", err_);
}

/* Percentiles of each side are the data's own; the interval of the
 * shifted step lies above 0, the unchanged one's is the point 0. */
static void test_diff_steps(void **state)
{
    fixture *fx = *state;
    ms_diff_opts o = opts("old_*", "new_*", 1);
    run(fx, &o);
    const char *j = fx->out;
    /* work: 10..19 ms against 30..39: p50 14.5 and 34.5, p95 18.55 and 38.55 */
    NEAR(j, "\"name\":\"work\"", "count_a", 10);
    NEAR(j, "\"name\":\"work\",\"path\":[\"work\"]", "count_b", 10);
    const char *w = strstr(j, "\"name\":\"work\"");
    assert_non_null(w);
    NEAR(w, "\"p50_ms\"", "a", 14.5);
    NEAR(w, "\"p50_ms\"", "b", 34.5);
    NEAR(w, "\"p50_ms\"", "diff", 20);
    NEAR(w, "\"p95_ms\"", "a", 18.55);
    NEAR(w, "\"p95_ms\"", "b", 38.55);
    /* every resample of 10..19 against 30..39 differs by 11 to 29 ms */
    double lo = jnum(w, "\"p50_ms\"", "lo"), hi = jnum(w, "\"p50_ms\"", "hi");
    assert_true(lo >= 11 && lo <= 20 && hi >= 20 && hi <= 29);
    has(w, "\"verdict\":\"slower\"");
    /* the most changed step comes first */
    assert_true(strstr(j, "\"name\":\"work\"") < strstr(j, "\"name\":\"same\""));
    const char *s = strstr(j, "\"name\":\"same\"");
    assert_non_null(s);
    NEAR(s, "\"p50_ms\"", "diff", 0);
    NEAR(s, "\"p50_ms\"", "lo", 0);
    NEAR(s, "\"p50_ms\"", "hi", 0);
    has(s, "\"verdict\":\"no evidence\"");
    has(j, "\"steps_omitted\":0");
    assert_int_equal(failed_, 0); /* no --fail-if */
}

/* Requests: latency from the rows, error rate 0/10 against 5/10 with
 * Fisher's p = 2 * C(10,5) / C(20,5) = 504/15504. */
static void test_diff_requests(void **state)
{
    fixture *fx = *state;
    ms_diff_opts o = opts("old_*", "new_*", 1);
    o.fail_if = MS_DIFF_FAIL_ERRORS;
    run(fx, &o);
    const char *j = fx->out;
    const char *r = strstr(j, "\"requests\":[");
    assert_non_null(r);
    has(r, "\"name\":null");
    NEAR(r, "\"p50_ms\"", "a", 54.5);
    NEAR(r, "\"p50_ms\"", "b", 74.5);
    NEAR(r, "\"tokens_per_request\"", "diff", 0);
    assert_true(isnan(jnum(r, "\"cost_usd_per_request\"", "a")));
    has(r, "\"unpriced\":10");
    NEAR(r, "\"error_rate\"", "k_b", 5);
    NEAR(r, "\"error_rate\"", "n_b", 10);
    NEAR(r, "\"error_rate\"", "diff", 0.5);
    NEAR(r, "\"error_rate\"", "p", 2.0 * 252 / 15504);
    has(r, "\"errors\":\"more errors\"");
    has(r, "\"time\":\"slower\"");
    has(j, "\"fail_if\":[\"errors\"],\"failed\":true");
    assert_int_equal(failed_, 1);
}

/* The text states the method and escapes nothing it need not. */
static void test_diff_text(void **state)
{
    fixture *fx = *state;
    ms_diff_opts o = opts("old_*", "new_*", 0);
    o.fail_if = MS_DIFF_FAIL_SLOWER | MS_DIFF_FAIL_COSTLIER;
    run(fx, &o);
    has(fx->out, "percentile bootstrap (2000 resamples, seed 1)");
    has(fx->out, "error rate");
    has(fx->out, "0/10 0.0%");
    has(fx->out, "5/10 50.0%");
    has(fx->out, "--fail-if slower,costlier: failed (exit 1) on");
    has(fx->out, "  step 'work': slower\n");
    hasnt(fx->out, "step 'same'");
}

/* A side with no traces, an unknown run: MS_DIFF_BAD_SIDE, nothing written. */
static void test_diff_bad_sides(void **state)
{
    fixture *fx = *state;
    ms_diff_opts o = opts("old_*", "nothing_*", 1);
    CAPTURE(fx, ms_diff_write(fx->db, &o, out, &failed_, err_, sizeof err_));
    assert_int_equal(rc_, MS_DIFF_BAD_SIDE);
    assert_int_equal(fx->outlen, 0);
    has(err_, "side B 'nothing_*' has no traces");
    o = opts("old_*", "new_*", 1);
    o.side[0] = (ms_diff_side){.kind = MS_SIDE_RUN, .id = 99, .arg = "run:99"};
    CAPTURE(fx, ms_diff_write(fx->db, &o, out, &failed_, err_, sizeof err_));
    assert_int_equal(rc_, MS_DIFF_BAD_SIDE);
    assert_int_equal(fx->outlen, 0);
    has(err_, "side A 'run:99'");
    o.side[0] = (ms_diff_side){.kind = MS_SIDE_LAST, .id = 0, .arg = "last"};
    CAPTURE(fx, ms_diff_write(fx->db, &o, out, &failed_, err_, sizeof err_));
    assert_int_equal(rc_, MS_DIFF_BAD_SIDE);
    has(err_, "side A 'last' names no run; the store holds 0 runs");
}

/* --min-change: a shift under the floor is negligible, and fails nothing. */
static void test_diff_min_change(void **state)
{
    fixture *fx = *state;
    ms_diff_opts o = opts("old_*", "new_*", 1);
    o.min_change = 2.0; /* 200%: work moved 20 ms on 14.5 */
    o.fail_if = MS_DIFF_FAIL_SLOWER;
    run(fx, &o);
    const char *w = strstr(fx->out, "\"name\":\"work\"");
    assert_non_null(w);
    has(w, "\"verdict\":\"negligible\"");
    has(w, "\"fails\":false");
}

/* A window side's bounds are whole nanoseconds in the JSON, as in the
 * report's window: 2^53 < D1, so a double would round them. */
static void test_diff_window_bounds_exact(void **state)
{
    fixture *fx = *state;
    ms_diff_opts o = opts("old_*", "new_*", 1);
    o.side[0] = (ms_diff_side){.kind = MS_SIDE_WINDOW, .since_ns = D1 + 1, .until_ns = D2 - 1,
                               .arg = "window"};
    run(fx, &o);
    has(fx->out, "\"since_ns\":1714521600000000001,\"until_ns\":1714607999999999999,");
    has(fx->out, "\"run_id\":null,\"eval_run\":null,");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_diff_steps, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_diff_requests, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_diff_text, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_diff_bad_sides, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_diff_min_change, diff_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_diff_window_bounds_exact, diff_dataset, close_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
