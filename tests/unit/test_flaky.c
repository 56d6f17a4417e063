/* test_flaky — the flake ledger (ms_flaky.h) on a real store: runs and
 * results written through ms_evals, the ledger read back as JSON and
 * text. Every count and interval is worked out here (the Wilson interval
 * from its formula).
 *
 * Suite "s", three finished runs (and one still running, not counted):
 *   case   run 1   run 2   run 3      (two repeats each)
 *   even   P P     P P     P P        always passing
 *   odd    F F     F F     F F        always failing
 *   mixed  P F     P F     P F        flaky all along
 *   turned P P     P P     P F        newly flaky: only once run 3 counts */
#include "store_fixture.h"

#include "ms_evals.h"
#include "ms_flaky.h"

static char err[1024];

static int ledger_store(void **state)
{
    fixture *fx = store_fixture_open("flaky");
    for (int k = 1; k <= 3; k++) {
        int64_t run = eval_run(fx->db, "s", k * 1000, "passed");
        for (int rep = 0; rep < 2; rep++) {
            eval_result(fx->db, run, "even", rep, 1);
            eval_result(fx->db, run, "odd", rep, 0);
            eval_result(fx->db, run, "mixed", rep, rep == 0);
            eval_result(fx->db, run, "turned", rep, !(k == 3 && rep == 1));
        }
    }
    int64_t running = eval_run(fx->db, "s", 9000, NULL); /* not finished: not counted */
    eval_result(fx->db, running, "even", 0, 0);
    eval_result(fx->db, eval_run(fx->db, "other\x1b[2J", 100, "passed"), "x", 0, 1);
    *state = fx;
    return 0;
}

static int ledger(fixture *fx, const char *suite, int runs, int json)
{
    free(fx->out);
    fx->out = NULL;
    FILE *out = open_memstream(&fx->out, &fx->outlen);
    assert_non_null(out);
    ms_flaky_opts o = {.suite = suite, .runs = runs, .json = json};
    err[0] = 0;
    int rc = ms_flaky_write(fx->db, &o, out, err, sizeof err);
    assert_int_equal(fclose(out), 0);
    return rc;
}

/* Wilson's interval, from its formula, z for 95%. */
static void wilson(int k, int n, double *lo, double *hi)
{
    double z = 1.959963984540054, p = (double)k / n, den = 1 + z * z / n;
    double mid = (p + z * z / (2.0 * n)) / den;
    double half = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / den;
    *lo = fmax(0, mid - half);
    *hi = fmin(1, mid + half);
}

/* The number after "key": in the object of case `id`. */
static double field(const char *doc, const char *id, const char *key)
{
    char anchor[96];
    snprintf(anchor, sizeof anchor, "{\"case_id\":\"%s\"", id);
    return jnum(doc, anchor, key);
}

static void test_counts_and_intervals(void **state)
{
    fixture *fx = *state;
    assert_int_equal(ledger(fx, "s", 10, 1), 0);
    const char *j = fx->out;
    has(j, "\"runs\":[1,2,3]");
    /* most flaky first: mixed (3 of 6 fail), turned (1 of 6), then odd, even */
    const char *m = strstr(j, "\"mixed\""), *t = strstr(j, "\"turned\""), *o = strstr(j, "\"odd\""),
               *e = strstr(j, "\"even\"");
    assert_true(m && t && o && e && m < t && t < o && o < e);
    has(j, "{\"case_id\":\"mixed\",\"attempts\":6,\"passes\":3,\"failures\":3");
    has(j, "{\"case_id\":\"turned\",\"attempts\":6,\"passes\":5,\"failures\":1");
    const char *tj = strstr(j, "{\"case_id\":\"turned\"");
    has(tj, "\"flaky\":true,\"newly_flaky\":true");
    has(strstr(j, "{\"case_id\":\"mixed\""), "\"flaky\":true,\"newly_flaky\":false");
    has(j, "\"flaky\":2,\"newly_flaky\":1,\"always_failing\":1,\"always_passing\":1");
    const char *ids[] = {"mixed", "turned", "odd", "even"};
    int fails[] = {3, 1, 6, 0};
    for (int i = 0; i < 4; i++) {
        double lo, hi;
        wilson(fails[i], 6, &lo, &hi);
        assert_true(fabs(field(j, ids[i], "failure_rate_lo") - lo) < 1e-12);
        assert_true(fabs(field(j, ids[i], "failure_rate_hi") - hi) < 1e-12);
        assert_true(fabs(field(j, ids[i], "failure_rate") - fails[i] / 6.0) < 1e-12);
    }
}

static void test_window(void **state)
{
    fixture *fx = *state;
    /* the last two runs: "turned" is flaky only in the latest, so new */
    assert_int_equal(ledger(fx, "s", 2, 1), 0);
    has(fx->out, "\"runs\":[2,3]");
    has(fx->out, "{\"case_id\":\"turned\",\"attempts\":4,\"passes\":3");
    /* the latest alone */
    assert_int_equal(ledger(fx, "s", 1, 0), 0);
    has(fx->out, "suite s: 4 cases over the last 1 finished run (eval run 3)");
    has(fx->out, "2 flaky (2 new), 1 always failing, 1 always passing");
}

static void test_text_escapes_and_unknown_suites(void **state)
{
    fixture *fx = *state;
    assert_int_equal(ledger(fx, "s", 10, 0), 0);
    has(fx->out, "  mixed          6       3         50.0%  [");
    has(fx->out, "flaky (new)");
    assert_int_equal(ledger(fx, "nope", 10, 0), 1);
    assert_int_equal(fx->outlen, 0);
    /* the known suites, their control characters made visible */
    has(err, "no eval run of suite \"nope\" in this store; the suites it has: other\\x1b[2J, s");
    assert_null(strchr(err, '\x1b'));
}

static void test_store_without_eval_tables(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    FILE *out = fopen("/dev/null", "w");
    ms_flaky_opts o = {.suite = "s", .runs = 10};
    assert_int_equal(ms_flaky_write(db, &o, out, err, sizeof err), 1);
    has(err, "this store has no eval runs");
    fclose(out);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_and_intervals, ledger_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(test_window, ledger_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(test_text_escapes_and_unknown_suites, ledger_store, store_fixture_close),
        cmocka_unit_test(test_store_without_eval_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
