/* test_select — the trace selection every view shares (ms_select.h), on a
 * real store file: which traces each filter keeps, worked out by hand from
 * the rows below, and the errors and descriptions a view shows.
 *
 *  row  name          run  start    status  attrs
 *  1    answer        1    D1+10s   ok      {"user":"alice","n":5,"flag":true,"a.b":"dot","q\"k":"quote"}
 *  2    answer        1    D1+20s   error   {"user":"bob"}
 *  3    eval:s:c1     2    D1+30s   ok      NULL           eval run 7's case
 *  4    eval:s:c2     2    D1+40s   error   NULL           eval run 8's case
 *  5    batch         3    D1+50s   ok      {"n":"5"}
 *  6    orphan        NULL D1+60s   ok      not JSON
 *
 * Run 2 ran eval runs 7 and 8, so rows 3 and 4 are eval traces. */
#include "store_fixture.h"

#include "ms_select.h"

static char err[512];

static void trace_row(sqlite3 *db, int id, const char *name, int run, int sec, const char *status,
                      const char *attrs)
{
    char sql[1024], run_s[16], attrs_s[256];
    snprintf(run_s, sizeof run_s, run ? "%d" : "NULL", run);
    if (attrs)
        snprintf(attrs_s, sizeof attrs_s, "'%s'", attrs);
    else
        snprintf(attrs_s, sizeof attrs_s, "NULL");
    snprintf(sql, sizeof sql,
             "INSERT INTO traces (id, trace_id, run_id, name, start_ns, duration_ns, status,"
             " error_count, span_count, input_tokens, output_tokens, cache_read_tokens,"
             " cache_write_tokens, unknown_cost_calls, attrs)"
             " VALUES (%d, printf('%%032x', %d), %s, '%s', %lld, 1000, '%s', 0, 1, 0, 0, 0, 0, 0, %s)",
             id, id, run_s, name, (long long)(D1 + sec * SEC), status, attrs_s);
    exec_sql(db, sql);
}

static int open_store(void **state)
{
    fixture *fx = store_fixture_open("select");
    for (int r = 1; r <= 3; r++) {
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT INTO runs (id, script, args, host_version, start_ns, pid)"
                 " VALUES (%d, 'r%d.lua', '[]', 'test', %lld, 1)", r, r, (long long)D1);
        exec_sql(fx->db, sql);
    }
    trace_row(fx->db, 1, "answer", 1, 10, "ok",
              "{\"user\":\"alice\",\"n\":5,\"flag\":true,\"a.b\":\"dot\",\"q\\\"k\":\"quote\"}");
    trace_row(fx->db, 2, "answer", 1, 20, "error", "{\"user\":\"bob\"}");
    trace_row(fx->db, 3, "eval:s:c1", 2, 30, "ok", NULL);
    trace_row(fx->db, 4, "eval:s:c2", 2, 40, "error", NULL);
    trace_row(fx->db, 5, "batch", 3, 50, "ok", "{\"n\":\"5\"}");
    trace_row(fx->db, 6, "orphan", 0, 60, "ok", "not JSON");
    exec_sql(fx->db,
         "INSERT INTO eval_runs (id, run_id, suite, suite_file, start_ns, config, status, recorded)"
         " VALUES (7, 2, 's', 's.lua', 0, '{}', 'passed', 0), (8, 2, 't', 't.lua', 0, '{}', 'failed', 0);"
         "INSERT INTO eval_results (eval_run, case_id, repeat_index, pass, trace_id, replayed)"
         " VALUES (7, 'c1', 0, 1, printf('%032x', 3), 0), (8, 'c2', 0, 0, printf('%032x', 4), 0)");
    *state = fx;
    return 0;
}

/* The row ids the selection keeps, "1,2,5" ("" for none), through the
 * real WHERE clause and binding. */
static char *rows_of(sqlite3 *db, const ms_select *s)
{
    static char out[128];
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT t.id FROM traces t");
    if (ms_select_where(db, s, &sql, err, sizeof err))
        fail_msg("where: %s", err);
    ms_buf_adds(&sql, " ORDER BY t.id");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql.data, sqlite3_errmsg(db));
    if (ms_select_bind(db, st, s, err, sizeof err))
        fail_msg("bind: %s", err);
    out[0] = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%lld", out[0] ? "," : "",
                 (long long)sqlite3_column_int64(st, 0));
    if (rc != SQLITE_DONE)
        fail_msg("%s: %s", sql.data, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    ms_buf_free(&sql);
    return out;
}

static void evals_modes(void **state)
{
    fixture *fx = *state;
    ms_select s = {0};
    assert_string_equal(rows_of(fx->db, &s), "1,2,5,6"); /* default: production only */
    s.evals = MS_EVALS_EXCLUDE;
    assert_string_equal(rows_of(fx->db, &s), "1,2,5,6");
    s.evals = MS_EVALS_INCLUDE;
    assert_string_equal(rows_of(fx->db, &s), "1,2,3,4,5,6");
    s.evals = MS_EVALS_ONLY;
    assert_string_equal(rows_of(fx->db, &s), "3,4");
}

/* Nothing filtering: no WHERE at all, so the scan stays in rowid order. */
static void unfiltered_has_no_where(void **state)
{
    fixture *fx = *state;
    ms_select s = {.evals = MS_EVALS_INCLUDE};
    ms_buf sql = {0};
    assert_int_equal(ms_select_where(fx->db, &s, &sql, err, sizeof err), 0);
    assert_int_equal(sql.len, 0);
    ms_buf_free(&sql);
}

/* The default (evals excluded) needs no condition while no eval run names
 * a process, so an unfiltered count does not scan every row; once one
 * does, its traces are left out. */
static void no_eval_process_no_where(void **state)
{
    fixture *fx = *state;
    exec_sql(fx->db, "UPDATE eval_runs SET run_id = NULL");
    ms_select s = {0};
    ms_buf sql = {0};
    assert_int_equal(ms_select_where(fx->db, &s, &sql, err, sizeof err), 0);
    assert_int_equal(sql.len, 0);
    assert_string_equal(rows_of(fx->db, &s), "1,2,3,4,5,6");
    s.evals = MS_EVALS_ONLY;
    assert_string_equal(rows_of(fx->db, &s), "");
    exec_sql(fx->db, "UPDATE eval_runs SET run_id = 2 WHERE id = 7");
    s.evals = MS_EVALS_DEFAULT;
    assert_string_equal(rows_of(fx->db, &s), "1,2,5,6");
    ms_buf_free(&sql);
}

static void run_and_eval_run(void **state)
{
    fixture *fx = *state;
    ms_select s = {.run_id = 2}; /* picking a run includes its eval traces */
    assert_int_equal(ms_select_evals(&s), MS_EVALS_INCLUDE);
    assert_string_equal(rows_of(fx->db, &s), "3,4");
    s.evals = MS_EVALS_EXCLUDE;
    assert_string_equal(rows_of(fx->db, &s), "");
    s = (ms_select){.run_id = 1};
    assert_string_equal(rows_of(fx->db, &s), "1,2");
    s = (ms_select){.eval_run = 7};
    assert_string_equal(rows_of(fx->db, &s), "3");
    s = (ms_select){.eval_run = 8, .errors_only = 1};
    assert_string_equal(rows_of(fx->db, &s), "4");
    s = (ms_select){.eval_run = 8, .run_id = 1};
    assert_string_equal(rows_of(fx->db, &s), "");
}

static void time_name_errors(void **state)
{
    fixture *fx = *state;
    /* since is inclusive, until exclusive */
    ms_select s = {.since_ns = D1 + 20 * SEC, .until_ns = D1 + 50 * SEC, .evals = MS_EVALS_INCLUDE};
    assert_string_equal(rows_of(fx->db, &s), "2,3,4");
    s.evals = MS_EVALS_DEFAULT;
    assert_string_equal(rows_of(fx->db, &s), "2");
    s = (ms_select){.until_ns = D1 + 20 * SEC};
    assert_string_equal(rows_of(fx->db, &s), "1");
    s = (ms_select){.name_glob = "eval:*", .evals = MS_EVALS_INCLUDE};
    assert_string_equal(rows_of(fx->db, &s), "3,4");
    s = (ms_select){.name_glob = "[ab]*"};
    assert_string_equal(rows_of(fx->db, &s), "1,2,5");
    s = (ms_select){.errors_only = 1, .evals = MS_EVALS_INCLUDE};
    assert_string_equal(rows_of(fx->db, &s), "2,4");
    /* status (the UI's status=): one exact value, either way */
    s = (ms_select){.status = "ok", .evals = MS_EVALS_INCLUDE};
    assert_string_equal(rows_of(fx->db, &s), "1,3,5,6");
    s = (ms_select){.status = "error"};
    assert_string_equal(rows_of(fx->db, &s), "2");
    s = (ms_select){.status = "interrupted"};
    assert_string_equal(rows_of(fx->db, &s), "");
    assert_true(ms_select_narrows(&s));
}

/* Adds key=value as --attr would (a copy: the key is cut in place). */
static void attr(ms_select *s, const char *kv)
{
    /* s points into the copy for the rest of the test: a static pool
     * outlives it without a leak for LeakSanitizer to report */
    static char pool[32][64];
    static size_t used;
    assert_true(used < sizeof pool / sizeof pool[0] && strlen(kv) < sizeof pool[0]);
    char *copy = strcpy(pool[used++], kv);
    if (ms_select_add_attr(s, copy, err, sizeof err))
        fail_msg("%s: %s", kv, err);
}

static void attrs_as_text(void **state)
{
    fixture *fx = *state;
    ms_select s = {0};
    attr(&s, "user=alice");
    assert_string_equal(rows_of(fx->db, &s), "1");
    s = (ms_select){0};
    attr(&s, "n=5"); /* the number 5 and the string "5" */
    assert_string_equal(rows_of(fx->db, &s), "1,5");
    s = (ms_select){0};
    attr(&s, "flag=true");
    assert_string_equal(rows_of(fx->db, &s), "1");
    s = (ms_select){0};
    attr(&s, "a.b=dot"); /* a key with a dot is a key, not a path */
    assert_string_equal(rows_of(fx->db, &s), "1");
    s = (ms_select){0};
    attr(&s, "q\"k=quote");
    assert_string_equal(rows_of(fx->db, &s), "1");
    s = (ms_select){0};
    attr(&s, "user=alice=x"); /* the value is everything after the first '=' */
    assert_string_equal(s.attr_value[0], "alice=x");
    assert_string_equal(rows_of(fx->db, &s), "");
    s = (ms_select){0};
    attr(&s, "user=alice");
    attr(&s, "n=5");
    assert_string_equal(rows_of(fx->db, &s), "1");
    attr(&s, "n=6");
    assert_string_equal(rows_of(fx->db, &s), "");
    s = (ms_select){0};
    attr(&s, "user="); /* an empty value matches an empty string only */
    assert_string_equal(rows_of(fx->db, &s), "");
}

static void attr_errors(void **state)
{
    (void)state;
    ms_select s = {0};
    char a[] = "user";
    assert_int_equal(ms_select_add_attr(&s, a, err, sizeof err), -1);
    assert_non_null(strstr(err, "--attr 'user' has no '='; give key=value"));
    char b[] = "=x";
    assert_int_equal(ms_select_add_attr(&s, b, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty key"));
    assert_int_equal(s.nattrs, 0);
    char many[MS_SELECT_MAX_ATTRS + 1][16];
    for (int i = 0; i < MS_SELECT_MAX_ATTRS; i++) {
        snprintf(many[i], sizeof many[i], "k%d=v", i);
        assert_int_equal(ms_select_add_attr(&s, many[i], err, sizeof err), 0);
    }
    snprintf(many[MS_SELECT_MAX_ATTRS], sizeof many[0], "k=v");
    assert_int_equal(ms_select_add_attr(&s, many[MS_SELECT_MAX_ATTRS], err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 8 --attr"));
}

static void check_ids(void **state)
{
    fixture *fx = *state;
    ms_select s = {.run_id = 3, .eval_run = 8};
    assert_int_equal(ms_select_check(fx->db, &s, err, sizeof err), 0);
    s.run_id = 99;
    assert_int_equal(ms_select_check(fx->db, &s, err, sizeof err), 1);
    const char *base = strrchr(fx->path, '/') + 1;
    char want[128];
    snprintf(want, sizeof want, "no run 99 in %s; `moonspan runs` lists them", base);
    assert_string_equal(err, want);
    s = (ms_select){.eval_run = 6};
    assert_int_equal(ms_select_check(fx->db, &s, err, sizeof err), 1);
    assert_non_null(strstr(err, "no eval run 6 in "));
}

static void left_out(void **state)
{
    fixture *fx = *state;
    int64_t n = -1;
    ms_select s = {0};
    assert_int_equal(ms_select_evals_left_out(fx->db, &s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    s.errors_only = 1; /* the other filters apply to what is counted */
    assert_int_equal(ms_select_evals_left_out(fx->db, &s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    s = (ms_select){0}; /* the view's own condition applies too */
    assert_int_equal(ms_select_evals_left_out(fx->db, &s, "t.name GLOB '*c2'", &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    s = (ms_select){.evals = MS_EVALS_EXCLUDE}; /* asked for: nothing to point out */
    assert_int_equal(ms_select_evals_left_out(fx->db, &s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    s = (ms_select){.run_id = 2};
    assert_int_equal(ms_select_evals_left_out(fx->db, &s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
}

static void describe(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_select s = {.evals = MS_EVALS_INCLUDE};
    ms_select_describe(&s, &b);
    assert_string_equal(b.data, "all traces");
    ms_buf_reset(&b);
    s = (ms_select){0};
    ms_select_describe(&s, &b);
    assert_string_equal(b.data, "evals excluded");
    ms_buf_reset(&b);
    s = (ms_select){.run_id = 12, .since_ns = D1, .name_glob = "answer_*\x1b[2J"};
    attr(&s, "user=al\nice");
    ms_select_describe(&s, &b);
    /* store text is escaped: no escape sequence or newline gets through */
    assert_null(strchr(b.data, '\x1b'));
    assert_null(strchr(b.data, '\n'));
    assert_non_null(strstr(b.data, "run 12, since 2024-05-01T00:00:00Z, name 'answer_*"));
    assert_non_null(strstr(b.data, "attr user=al ice"));
    ms_buf_reset(&b);
    s = (ms_select){.eval_run = 3, .until_ns = D1, .errors_only = 1, .evals = MS_EVALS_ONLY};
    ms_select_describe(&s, &b);
    assert_string_equal(b.data, "eval run 3, until 2024-05-01T00:00:00Z, errors only, eval traces only");
    ms_buf_free(&b);
}

/* --user, --session, --tag over the v6 columns (set here apart from
 * attrs, so a clause reading attrs would fail), every tag required. */
static void who_columns(void **state)
{
    fixture *fx = *state;
    exec_sql(fx->db, "UPDATE traces SET user_id = 'u1', session = 's1', tags = '[\"beta\",\"eu\"]' WHERE id = 1;"
                     "UPDATE traces SET user_id = 'u2', session = 's1', tags = '[\"eu\"]' WHERE id = 2;"
                     "UPDATE traces SET user_id = 'u1', tags = '[\"beta\"]' WHERE id = 5;");
    ms_select s = {.user = "u1"};
    assert_string_equal(rows_of(fx->db, &s), "1,5");
    s = (ms_select){.user = "alice"}; /* attrs' user is not the column */
    assert_string_equal(rows_of(fx->db, &s), "");
    s = (ms_select){.session = "s1"};
    assert_string_equal(rows_of(fx->db, &s), "1,2");
    s = (ms_select){0};
    assert_int_equal(ms_select_add_tag(&s, "eu", err, sizeof err), 0);
    assert_string_equal(rows_of(fx->db, &s), "1,2");
    assert_int_equal(ms_select_add_tag(&s, "beta", err, sizeof err), 0);
    assert_string_equal(rows_of(fx->db, &s), "1");
    s.user = "u2";
    assert_string_equal(rows_of(fx->db, &s), "");
    assert_true(ms_select_narrows(&s));
}

/* A v5 store has no who columns: the same filters read attrs. */
static void who_from_attrs(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_sql(db, "CREATE TABLE traces (id INTEGER PRIMARY KEY, trace_id TEXT, run_id INTEGER, name TEXT,"
             " start_ns INTEGER, status TEXT, attrs TEXT);"
             "INSERT INTO traces VALUES (1, 'a', NULL, 'x', 5, 'ok', '{\"user\":\"alice\",\"tags\":\"beta\"}'),"
             " (2, 'b', NULL, 'y', 6, 'ok', '{\"user\":7,\"session\":\"s\",\"tags\":\"[\\\"beta\\\",\\\"eu\\\"]\"}'),"
             " (3, 'c', NULL, 'z', 7, 'ok', 'not JSON')");
    ms_select s = {.user = "alice"};
    assert_string_equal(rows_of(db, &s), "1");
    s = (ms_select){.user = "7"};
    assert_string_equal(rows_of(db, &s), "2");
    s = (ms_select){.session = "s"};
    assert_string_equal(rows_of(db, &s), "2");
    s = (ms_select){0};
    assert_int_equal(ms_select_add_tag(&s, "beta", err, sizeof err), 0);
    assert_string_equal(rows_of(db, &s), "1,2");
    assert_int_equal(ms_select_add_tag(&s, "eu", err, sizeof err), 0);
    assert_string_equal(rows_of(db, &s), "2");
    sqlite3_close(db);
}

static void who_errors_and_words(void **state)
{
    (void)state;
    ms_select s = {0};
    assert_int_equal(ms_select_add_tag(&s, "", err, sizeof err), -1);
    assert_non_null(strstr(err, "--tag is empty"));
    for (int i = 0; i < MS_SELECT_MAX_TAGS; i++)
        assert_int_equal(ms_select_add_tag(&s, "t", err, sizeof err), 0);
    assert_int_equal(ms_select_add_tag(&s, "t", err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 8 --tag filters"));
    s = (ms_select){.user = "u\x1b[2J", .session = "s1", .evals = MS_EVALS_INCLUDE};
    assert_int_equal(ms_select_add_tag(&s, "beta", err, sizeof err), 0);
    ms_buf b = {0};
    ms_select_describe(&s, &b);
    assert_null(strchr(b.data, '\x1b'));
    assert_non_null(strstr(b.data, "user 'u"));
    assert_non_null(strstr(b.data, "', session 's1', tag 'beta'"));
    ms_buf_free(&b);
}

/* A schema-1 store has no eval tables: no trace is an eval trace, and an
 * eval run selects nothing instead of failing. */
static void store_without_evals(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_sql(db, "CREATE TABLE runs (id INTEGER PRIMARY KEY);"
             "CREATE TABLE traces (id INTEGER PRIMARY KEY, trace_id TEXT, run_id INTEGER, name TEXT,"
             " start_ns INTEGER, status TEXT, attrs TEXT);"
             "INSERT INTO runs VALUES (1);"
             "INSERT INTO traces VALUES (1, 'a', 1, 'x', 5, 'ok', NULL), (2, 'b', NULL, 'y', 6, 'ok', NULL)");
    ms_select s = {0};
    assert_string_equal(rows_of(db, &s), "1,2");
    s.evals = MS_EVALS_ONLY;
    assert_string_equal(rows_of(db, &s), "");
    s = (ms_select){.eval_run = 1};
    assert_string_equal(rows_of(db, &s), "");
    assert_int_equal(ms_select_check(db, &s, err, sizeof err), 1);
    int64_t n = -1;
    s = (ms_select){0};
    assert_int_equal(ms_select_evals_left_out(db, &s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(evals_modes, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(unfiltered_has_no_where, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(no_eval_process_no_where, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(run_and_eval_run, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(time_name_errors, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(attrs_as_text, open_store, store_fixture_close),
        cmocka_unit_test(attr_errors),
        cmocka_unit_test_setup_teardown(check_ids, open_store, store_fixture_close),
        cmocka_unit_test_setup_teardown(left_out, open_store, store_fixture_close),
        cmocka_unit_test(describe),
        cmocka_unit_test_setup_teardown(who_columns, open_store, store_fixture_close),
        cmocka_unit_test(who_from_attrs),
        cmocka_unit_test(who_errors_and_words),
        cmocka_unit_test(store_without_evals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
