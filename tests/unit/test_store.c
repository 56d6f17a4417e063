/* The store's round trip: traces recorded into buffers, written by the
 * tracer's writer thread, read back with plain SQL from a real file; and
 * the files the store must refuse without changing them. */
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

#include "ms_clock.h"
#include "ms_store.h"
#include "ms_tracer.h"

static char dir[] = "/tmp/ms-store-test.XXXXXX";

static int setup(void **state)
{
    (void)state;
    ms_clock_init();
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
    unlink(out);
}

static sqlite3 *open_sql(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *one_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *v = t ? strdup((const char *)t) : NULL;
    sqlite3_finalize(st);
    return v;
}

static ms_tracer *open_tracer(const char *path, size_t queue)
{
    char err[512];
    ms_store *s;
    int rc = ms_store_open(path, MS_STORE_WRITE, &s, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    ms_tracer *tr;
    assert_int_equal(ms_tracer_open(s, queue, &tr), 0);
    return tr;
}

/* root "answer" > search (attrs, event), generate > chat (llm, retried), and
 * a failing "tool" whose error passes through "act". */
static ms_trace *record_one(ms_tracer *tr)
{
    ms_trace *t = ms_tracer_acquire(tr);
    int64_t t0 = 1000000000;
    assert_int_equal(ms_trace_start(t, "answer", 6, t0, NULL, 0), 0);
    ms_span_set_str(t, 0, "query", 5, "what \"is\" lua?", 14);
    uint32_t search = ms_span_begin(t, 0, "search", 6, t0 + 10);
    ms_span_set_int(t, search, "k", 1, 5);
    ms_span_set_double(t, search, "score", 5, 0.25);
    ms_span_set_bool(t, search, "cached", 6, 1);
    ms_span_set_int(t, search, "k", 1, 7); /* replaces, keeps one key */
    ms_span_event(t, search, t0 + 15, "hit", 3, "{\"n\":3}", 7);
    ms_span_end(t, search, t0 + 1010);
    uint32_t gen = ms_span_begin(t, 0, "generate", 8, t0 + 1020);
    uint32_t chat = ms_span_begin(t, gen, "chat mock", 9, t0 + 1030);
    ms_llm_usage u = {"mock", "mock", 1000, 200, 50, 10, 0.002, 123000, 0};
    ms_span_set_llm(t, chat, &u);
    ms_span_add_retries(t, chat, 2, 1);
    ms_span_end(t, chat, t0 + 5030);
    ms_span_end(t, gen, t0 + 5040);
    uint32_t act = ms_span_begin(t, 0, "act", 3, t0 + 5050);
    uint32_t tool = ms_span_begin(t, act, "tool", 4, t0 + 5060);
    ms_span_fail(t, tool, 1, "rate_limit_error", "slow down", 9, "stack traceback:\n\tx");
    ms_span_end(t, tool, t0 + 5070);
    ms_span_fail(t, act, 0, "rate_limit_error", "slow down", 9, NULL);
    ms_span_end(t, act, t0 + 5080);
    uint32_t unpriced = ms_span_begin(t, 0, "chat x", 6, t0 + 5090);
    ms_llm_usage u2 = {"other", "unknown-model", 10, 1, 0, 0, NAN, -1, 1};
    ms_span_set_llm(t, unpriced, &u2);
    ms_span_end(t, unpriced, t0 + 5100);
    ms_tokens manual = {5, 6, 0, 0};
    ms_trace_add_tokens(t, &manual);
    ms_trace_add_error(t, t0 + 5200, "manual \"oops\"", 13);
    ms_trace_end(t, t0 + 6000);
    return t;
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "round.db");
    ms_tracer *tr = open_tracer(path, 16);
    ms_trace *t = record_one(tr);
    char hex[33];
    ms_trace_id_hex(&t->id, hex);
    uint64_t tool_id = t->spans[5].id, act_id = t->spans[4].id; /* by order of begin */
    ms_tracer_submit(tr, t);
    assert_int_equal(ms_tracer_flush(tr), 0);
    assert_int_equal(ms_tracer_written_spans(tr), 7);
    assert_int_equal(ms_tracer_close(tr), 0);

    sqlite3 *db = open_sql(path);
    char sql[512];
    assert_int_equal(one_int(db, "PRAGMA user_version"), MS_SCHEMA_VERSION);
    assert_int_equal(one_int(db, "PRAGMA application_id"), MS_APPLICATION_ID);
    char *jm = one_text(db, "PRAGMA journal_mode");
    assert_string_equal(jm, "wal");
    free(jm);
    char *id = one_text(db, "SELECT trace_id FROM traces");
    assert_string_equal(id, hex);
    free(id);
    /* totals: llm spans + manual tokens; cost only from the priced call */
    assert_int_equal(one_int(db, "SELECT input_tokens FROM traces"), 1000 + 10 + 5);
    assert_int_equal(one_int(db, "SELECT output_tokens FROM traces"), 200 + 1 + 6);
    assert_int_equal(one_int(db, "SELECT cache_read_tokens FROM traces"), 50);
    assert_int_equal(one_int(db, "SELECT cache_write_tokens FROM traces"), 10);
    assert_int_equal(one_int(db, "SELECT cost_usd = 0.002 FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT unknown_cost_calls FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT duration_ns FROM traces"), 6000);
    /* error_count = own errors (tool) + manual errors; status from the manual error */
    assert_int_equal(one_int(db, "SELECT error_count FROM traces"), 2);
    char *status = one_text(db, "SELECT status FROM traces");
    assert_string_equal(status, "error");
    free(status);
    /* spans contiguous from first_span, root first */
    assert_int_equal(one_int(db, "SELECT span_count FROM traces"), 7);
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces t JOIN spans s ON s.rowid BETWEEN"
                                 " t.first_span AND t.first_span + t.span_count - 1"), 7);
    char *kind = one_text(db, "SELECT kind FROM spans s JOIN traces t ON s.rowid = t.first_span");
    assert_string_equal(kind, "trace");
    free(kind);
    assert_int_equal(one_int(db, "SELECT parent_id IS NULL FROM spans WHERE name = 'answer'"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans c JOIN spans p ON c.parent_id = p.span_id"
                                 " WHERE c.name = 'chat mock' AND p.name = 'generate'"), 1);
    snprintf(sql, sizeof sql, "SELECT parent_id = %lld FROM spans WHERE name = 'tool'", (long long)act_id);
    assert_int_equal(one_int(db, sql), 1);
    snprintf(sql, sizeof sql, "SELECT printf('%%016x', span_id) FROM spans WHERE span_id = %lld",
             (long long)tool_id);
    char *sh = one_text(db, sql), want[17];
    ms_span_id_hex(tool_id, want);
    assert_string_equal(sh, want);
    free(sh);
    /* start and duration from the monotonic readings */
    assert_int_equal(one_int(db, "SELECT duration_ns FROM spans WHERE name = 'search'"), 1000);
    assert_int_equal(one_int(db, "SELECT s.start_ns - t.start_ns FROM spans s, traces t WHERE s.name = 'search'"), 10);
    /* attributes as JSON, later value of a key wins */
    char *attrs = one_text(db, "SELECT attrs FROM spans WHERE name = 'search'");
    assert_string_equal(attrs, "{\"k\":7,\"score\":0.25,\"cached\":true}");
    free(attrs);
    attrs = one_text(db, "SELECT attrs FROM traces");
    assert_string_equal(attrs, "{\"query\":\"what \\\"is\\\" lua?\"}");
    free(attrs);
    /* llm columns */
    assert_int_equal(one_int(db, "SELECT input_tokens + output_tokens * 10 FROM spans WHERE name = 'chat mock'"), 3000);
    assert_int_equal(one_int(db, "SELECT retries FROM spans WHERE name = 'chat mock'"), 2);
    assert_int_equal(one_int(db, "SELECT retry_succeeded FROM spans WHERE name = 'chat mock'"), 1);
    assert_int_equal(one_int(db, "SELECT ttft_ns FROM spans WHERE name = 'chat mock'"), 123000);
    assert_int_equal(one_int(db, "SELECT retry_succeeded IS NULL FROM spans WHERE name = 'search'"), 1);
    assert_int_equal(one_int(db, "SELECT cost_usd IS NULL AND usage_estimated = 1 FROM spans WHERE name = 'chat x'"), 1);
    assert_int_equal(one_int(db, "SELECT ttft_ns IS NULL FROM spans WHERE name = 'chat x'"), 1);
    /* errors: own where raised, passed-through above */
    assert_int_equal(one_int(db, "SELECT error_own FROM spans WHERE name = 'tool'"), 1);
    assert_int_equal(one_int(db, "SELECT error_own FROM spans WHERE name = 'act'"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE status = 'error'"), 2);
    char *tb = one_text(db, "SELECT error_traceback FROM spans WHERE name = 'tool'");
    assert_string_equal(tb, "stack traceback:\n\tx");
    free(tb);
    /* events: the search hit and the manual error on the root */
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_events"), 2);
    char *ev = one_text(db, "SELECT attrs FROM span_events WHERE name = 'error'");
    assert_string_equal(ev, "{\"type\":\"manual\",\"message\":\"manual \\\"oops\\\"\"}");
    free(ev);
    sqlite3_close(db);
}

/* A queue of one trace forces the producer to wait on the writer again
 * and again: every trace must still arrive. */
static void test_full_queue_waits_and_drops_nothing(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "queue.db");
    ms_tracer *tr = open_tracer(path, 1);
    for (int i = 0; i < 2000; i++) {
        ms_trace *t = ms_tracer_acquire(tr);
        ms_trace_start(t, "t", 1, ms_mono_ns(), NULL, 0);
        for (int s = 0; s < 5; s++)
            ms_span_end(t, ms_span_begin(t, 0, "s", 1, ms_mono_ns()), ms_mono_ns());
        ms_trace_end(t, ms_mono_ns());
        ms_tracer_submit(tr, t);
    }
    assert_int_equal(ms_tracer_close(tr), 0);
    sqlite3 *db = open_sql(path);
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces"), 2000);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans"), 12000);
    /* every trace's range holds exactly its own spans */
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces t JOIN spans s ON s.rowid BETWEEN"
                                 " t.first_span AND t.first_span + t.span_count - 1"
                                 " WHERE s.trace_row <> t.id"), 0);
    sqlite3_close(db);
}

/* A trace retained past the write stays readable and is not reused. */
static void test_retained_trace_survives_the_write(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "retain.db");
    ms_tracer *tr = open_tracer(path, 4);
    ms_trace *t = ms_tracer_acquire(tr);
    ms_trace_start(t, "kept", 4, ms_mono_ns(), NULL, 0);
    ms_trace_end(t, ms_mono_ns());
    ms_trace_retain(t);
    uint32_t gen = t->generation;
    ms_tracer_submit(tr, t);
    ms_tracer_flush(tr);
    ms_trace *other = ms_tracer_acquire(tr); /* must not be t */
    assert_ptr_not_equal(other, t);
    assert_int_equal(t->generation, gen);
    assert_string_equal(ms_trace_str(t, t->spans[0].name), "kept");
    ms_tracer_release(tr, other);
    ms_tracer_release(tr, t);
    ms_trace *again = ms_tracer_acquire(tr); /* now reusable */
    ms_tracer_release(tr, again);
    ms_tracer_close(tr);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void assert_refused_unchanged(const char *path, enum ms_store_mode mode, const char *needle)
{
    size_t n0, n1;
    char *before = slurp(path, &n0);
    char err[512] = "";
    ms_store *s = NULL;
    assert_int_equal(ms_store_open(path, mode, &s, err, sizeof err), -1);
    assert_null(s);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_non_null(strstr(err, path));
    char *after = slurp(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

static void test_refuses_a_file_that_is_not_sqlite(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "notes.txt");
    write_file(path, "these are my notes, not a database\n");
    assert_refused_unchanged(path, MS_STORE_WRITE, "not a SQLite database");
    assert_refused_unchanged(path, MS_STORE_READ, "not a SQLite database");
}

static void test_refuses_a_foreign_sqlite_database(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "other.db");
    sqlite3 *db = open_sql(path);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);"
                                      "INSERT INTO invoices VALUES (1, 9.5);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_refused_unchanged(path, MS_STORE_WRITE, "not a moonspan store");
}

static void test_refuses_a_newer_schema(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "newer.db");
    ms_tracer_close(open_tracer(path, 1));
    sqlite3 *db = open_sql(path);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA user_version = 99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_refused_unchanged(path, MS_STORE_WRITE, "newer moonspan");
    assert_refused_unchanged(path, MS_STORE_READ, "newer moonspan");
}

static void test_read_mode_needs_an_existing_store(void **state)
{
    (void)state;
    char path[256], err[512];
    path_of(path, sizeof path, "missing.db");
    ms_store *s;
    assert_int_equal(ms_store_open(path, MS_STORE_READ, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "no moonspan database"));
    assert_int_equal(access(path, F_OK), -1); /* not created */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_full_queue_waits_and_drops_nothing),
        cmocka_unit_test(test_retained_trace_survives_the_write),
        cmocka_unit_test(test_refuses_a_file_that_is_not_sqlite),
        cmocka_unit_test(test_refuses_a_foreign_sqlite_database),
        cmocka_unit_test(test_refuses_a_newer_schema),
        cmocka_unit_test(test_read_mode_needs_an_existing_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
