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

#include "ms_evals.h"
#include "ms_flaky.h"
#include "ms_store.h"

typedef struct fixture {
    char path[64];
    ms_store *store;
    sqlite3 *db;
    char *out;
    size_t outlen;
} fixture;

static char err[1024];

static int64_t add_run(sqlite3 *db, const char *suite, int64_t start, int finish)
{
    ms_eval_run_info info = {.suite = suite, .suite_file = "s.lua", .start_ns = start, .threshold = NAN};
    int64_t id;
    if (ms_eval_run_begin(db, &info, &id, err, sizeof err))
        fail_msg("%s", err);
    if (finish) {
        ms_eval_summary s = {.end_ns = start + 1, .pass_rate = NAN, .p50_ms = NAN, .p95_ms = NAN,
                             .cost_usd = NAN, .status = "passed"};
        if (ms_eval_run_finish(db, id, &s, err, sizeof err))
            fail_msg("%s", err);
    }
    return id;
}

static void add(sqlite3 *db, int64_t run, const char *case_id, int repeat, int pass)
{
    ms_eval_result r = {.case_id = case_id, .repeat_index = repeat, .pass = pass, .latency_ms = 1,
                        .cost_usd = NAN};
    if (ms_eval_result_add(db, run, &r, err, sizeof err))
        fail_msg("%s", err);
}

static int ledger_store(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->path, sizeof fx->path, "/tmp/ms_test_flaky_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    close(fd);
    unlink(fx->path);
    if (ms_store_open(fx->path, MS_STORE_WRITE, &fx->store, err, sizeof err))
        fail_msg("%s", err);
    fx->db = ms_store_db(fx->store);
    for (int k = 1; k <= 3; k++) {
        int64_t run = add_run(fx->db, "s", k * 1000, 1);
        for (int rep = 0; rep < 2; rep++) {
            add(fx->db, run, "even", rep, 1);
            add(fx->db, run, "odd", rep, 0);
            add(fx->db, run, "mixed", rep, rep == 0);
            add(fx->db, run, "turned", rep, !(k == 3 && rep == 1));
        }
    }
    int64_t running = add_run(fx->db, "s", 9000, 0); /* not finished: not counted */
    add(fx->db, running, "even", 0, 0);
    add(fx->db, add_run(fx->db, "other\x1b[2J", 100, 1), "x", 0, 1);
    *state = fx;
    return 0;
}

static int close_store(void **state)
{
    fixture *fx = *state;
    ms_store_close(fx->store);
    unlink(fx->path);
    char p[96];
    snprintf(p, sizeof p, "%s-wal", fx->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", fx->path);
    unlink(p);
    free(fx->out);
    free(fx);
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

static void has(const char *doc, const char *needle)
{
    if (!strstr(doc, needle)) {
        fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
        fail_msg("missing \"%s\"", needle);
    }
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
    char pat[96];
    snprintf(pat, sizeof pat, "{\"case_id\":\"%s\"", id);
    const char *c = strstr(doc, pat);
    assert_non_null(c);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *k = strstr(c, pat);
    assert_non_null(k);
    return strtod(k + strlen(pat), NULL);
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
        cmocka_unit_test_setup_teardown(test_counts_and_intervals, ledger_store, close_store),
        cmocka_unit_test_setup_teardown(test_window, ledger_store, close_store),
        cmocka_unit_test_setup_teardown(test_text_escapes_and_unknown_suites, ledger_store, close_store),
        cmocka_unit_test(test_store_without_eval_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
