/* test_runs — `moonspan runs` (ms_runs.h) on a real store file, every
 * count worked out from the rows below:
 *
 *  run  script         start  end     traces (status)                      eval runs
 *  1    a.lua          D1     D1+2s   ok, error, interrupted, incomplete    -
 *  2    suite.lua      D1+10s D1+11s  ok, ok                                5 "qa" 2 cases 1 passed, failed
 *                                                                           6 "qb" running
 *  3    moonspan-test  D1+20s NULL    -                                     -
 *  4    old.lua        D1-1d  D1-1d   ok                                    -   (before --since D1) */
#include "store_fixture.h"

#include "ms_runs.h"

static char err[512];

static void run_row(sqlite3 *db, int id, const char *script, int64_t start, int64_t end)
{
    char sql[512], end_s[32];
    snprintf(end_s, sizeof end_s, end ? "%lld" : "NULL", (long long)end);
    snprintf(sql, sizeof sql, "INSERT INTO runs (id, script, args, host_version, start_ns, pid, end_ns)"
             " VALUES (%d, '%s', '[\"x\"]', '0.1.0', %lld, 77, %s)", id, script, (long long)start, end_s);
    exec_sql(db, sql);
}

static void trace_row(sqlite3 *db, int id, int run, int64_t start, const char *status)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO traces (id, trace_id, run_id, name, start_ns, duration_ns, status, error_count,"
             " span_count, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
             " unknown_cost_calls) VALUES (%d, printf('%%032x', %d), %d, 't', %lld, 1, '%s', 0, 1, 0, 0,"
             " 0, 0, 0)", id, id, run, (long long)start, status);
    exec_sql(db, sql);
}

static int open_store(void **state)
{
    fixture *fx = store_fixture_open("runs");
    run_row(fx->db, 1, "a.lua", D1, D1 + 2 * SEC);
    run_row(fx->db, 2, "suite.lua", D1 + 10 * SEC, D1 + 11 * SEC);
    run_row(fx->db, 3, "moonspan-test", D1 + 20 * SEC, 0);
    run_row(fx->db, 4, "old.lua", D1 - 86400 * SEC, D1 - 86400 * SEC + SEC);
    trace_row(fx->db, 1, 1, D1 + 1, "ok");
    trace_row(fx->db, 2, 1, D1 + 2, "error");
    trace_row(fx->db, 3, 1, D1 + 3, "interrupted");
    trace_row(fx->db, 4, 1, D1 + 4, "incomplete");
    trace_row(fx->db, 5, 2, D1 + 10 * SEC + 1, "ok");
    trace_row(fx->db, 6, 2, D1 + 10 * SEC + 2, "ok");
    trace_row(fx->db, 7, 4, D1 - 86400 * SEC + 1, "ok");
    exec_sql(fx->db,
         "INSERT INTO eval_runs (id, run_id, suite, suite_file, start_ns, config, cases, passed, pass_rate,"
         " status, recorded) VALUES"
         " (5, 2, 'qa', 'suite.lua', 1, '{}', 2, 1, 0.5, 'failed', 0),"
         " (6, 2, 'qb', 'suite.lua', 2, '{}', NULL, NULL, NULL, 'running', 0)");
    *state = fx;
    return 0;
}

static const char *runs(fixture *fx, long limit, int64_t since, int json)
{
    free(fx->out);
    fx->out = NULL;
    FILE *f = open_memstream(&fx->out, &fx->outlen);
    assert_non_null(f);
    ms_runs_opts o = {.limit = limit, .since_ns = since, .json = json};
    if (ms_runs_write(fx->db, &o, f, err, sizeof err))
        fail_msg("runs: %s", err);
    assert_int_equal(fclose(f), 0);
    return fx->out;
}

static void json_fields(void **state)
{
    fixture *fx = *state;
    const char *j = runs(fx, 0, D1, 1);
    /* newest first: 3, 2, 1; run 4 started before --since */
    has(j, "[{\"id\":3,\"command\":\"test\",\"script\":\"moonspan-test\",\"args\":[\"x\"],"
           "\"host_version\":\"0.1.0\",\"pid\":77,\"start_ns\":1714521620000000000,"
           "\"start\":\"2024-05-01T00:00:20Z\",\"end_ns\":null,\"duration_ms\":null,\"traces\":0,"
           "\"errors\":0,\"interrupted\":0,\"incomplete\":0,\"eval_runs\":[]}");
    has(j, "{\"id\":2,\"command\":\"eval\",\"script\":\"suite.lua\"");
    has(j, "\"duration_ms\":1000,\"traces\":2,\"errors\":0,\"interrupted\":0,\"incomplete\":0,"
           "\"eval_runs\":[{\"id\":5,\"suite\":\"qa\",\"suite_file\":\"suite.lua\","
           "\"start\":\"1970-01-01T00:00:00Z\",\"cases\":2,\"passed\":1,\"pass_rate\":0.5,\"status\":\"failed\"},"
           "{\"id\":6,\"suite\":\"qb\",\"suite_file\":\"suite.lua\",\"start\":\"1970-01-01T00:00:00Z\","
           "\"cases\":null,\"passed\":null,\"pass_rate\":null,\"status\":\"running\"}]}");
    has(j, "{\"id\":1,\"command\":\"run\",\"script\":\"a.lua\"");
    has(j, "\"duration_ms\":2000,\"traces\":4,\"errors\":1,\"interrupted\":1,\"incomplete\":1,\"eval_runs\":[]}]\n");
    assert_null(strstr(j, "old.lua"));
}

static void limit_and_all(void **state)
{
    fixture *fx = *state;
    const char *j = runs(fx, 1, 0, 1);
    has(j, "[{\"id\":3,");
    assert_null(strstr(j, "\"id\":2,"));
    j = runs(fx, 0, 0, 1); /* all four; run 4's trace counted though it is the oldest */
    has(j, "\"script\":\"old.lua\"");
    has(j, "\"duration_ms\":1000,\"traces\":1,\"errors\":0");
}

static void text(void **state)
{
    fixture *fx = *state;
    const char *t = runs(fx, 0, D1, 0);
    has(t, "moonspan runs: 3 runs, newest first\n");
    has(t, "     3  test     moonspan-test  2024-05-01T00:00:20Z           -        0");
    has(t, "     2  eval     suite.lua      2024-05-01T00:00:10Z     1000 ms        2       0            0           0\n"
           "        eval run 5  qa  2 cases, 1 passed (50.0%)  failed\n"
           "        eval run 6  qb  running\n");
    has(t, "     1  run      a.lua          2024-05-01T00:00:00Z     2000 ms        4       1            1           1\n");
    has(t, "duration -: still running, or ended without writing its summary");
    t = runs(fx, 0, D1 + 3600 * SEC, 0);
    assert_string_equal(t, "no runs in this window (widen --since)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(json_fields, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(limit_and_all, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(text, open_store, store_fixture_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
