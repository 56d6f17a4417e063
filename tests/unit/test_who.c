/* test_who — who a trace was for (ms_who.h) on real store files: a
 * version 5 store, made with the v5 schema verbatim (schema_v5.sql), read
 * as it is by a read open and upgraded to v6 by a write open, its traces'
 * session, user and tags filled from their attrs; and the readers' SQL for
 * them giving the same values on both versions.
 *
 *  row  attrs                                                  session user  tags
 *  1    {"session":"s1","user":"u7","tags":"beta","n":1}        s1      u7    ["beta"]
 *  2    {"user":42}                                            NULL    42    NULL
 *  3    {"tags":"[\"a\",\"b\"]"}                               NULL    NULL  ["a","b"]
 *  4    NULL                                                   NULL    NULL  NULL
 *  5    {"other":"user"}                                       NULL    NULL  NULL
 *  6    not JSON "user"                                        NULL    NULL  NULL */
#include "checks.h"

#include <unistd.h>

#include "ms_clock.h"
#include "ms_store.h"
#include "ms_who.h"

static char path[64];

static char *read_file(const char *p)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    assert_true(n > 0);
    fclose(f);
    return buf;
}

static const char *const ATTRS[] = {
    "'{\"session\":\"s1\",\"user\":\"u7\",\"tags\":\"beta\",\"n\":1}'",
    "'{\"user\":42}'",
    "'{\"tags\":\"[\\\"a\\\",\\\"b\\\"]\"}'",
    "NULL",
    "'{\"other\":\"user\"}'",
    "'not JSON \"user\"'",
};
#define NROWS (sizeof ATTRS / sizeof ATTRS[0])

/* What each row must read as: "session|user|tags", NULL as "-". */
static const char *const WHO[NROWS] = {
    "s1|u7|[\"beta\"]", "-|42|-", "-|-|[\"a\",\"b\"]", "-|-|-", "-|-|-", "-|-|-",
};

static int make_v5_store(void **state)
{
    (void)state;
    ms_clock_init();
    snprintf(path, sizeof path, "/tmp/ms_test_who_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *schema = read_file("tests/unit/schema_v5.sql");
    exec_sql(db, schema);
    free(schema);
    exec_sql(db, "PRAGMA application_id = 0x4d6f6f6e; PRAGMA user_version = 5;");
    for (size_t i = 0; i < NROWS; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO traces (id, trace_id, name, start_ns, duration_ns, status, error_count,"
                 " span_count, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
                 " unknown_cost_calls, attrs) VALUES (%zu, printf('%%032x', %zu), 'ask', %lld, 1000,"
                 " 'ok', 0, 1, 0, 0, 0, 0, 0, %s)",
                 i + 1, i + 1, (long long)(D1 + (int64_t)i * SEC), ATTRS[i]);
        exec_sql(db, sql);
    }
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return 0;
}

static int remove_store(void **state)
{
    (void)state;
    char p[96];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    return 0;
}

/* Checks every row against WHO, reading session, user and tags with the
 * three SQL expressions given (over traces aliased t). */
static void check_rows(sqlite3 *db, const char *session, const char *user, const char *tags)
{
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(%s, '-') || '|' || coalesce(%s, '-') || '|' || coalesce(%s, '-')"
             " FROM traces t ORDER BY t.id", session, user, tags);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    for (size_t i = 0; i < NROWS; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const char *got = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(got, WHO[i]))
            fail_msg("row %zu: got %s, want %s", i + 1, got, WHO[i]);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

static void check_reader_sql(sqlite3 *db)
{
    char err[256];
    ms_who_sql w;
    assert_int_equal(ms_who_sql_get(db, &w, err, sizeof err), 0);
    check_rows(db, w.session, w.user, w.tags);
}

/* A read open takes a v5 store as it is, and reads who from attrs. */
static void test_read_open_reads_v5_as_it_is(void **state)
{
    (void)state;
    char err[512] = "";
    ms_store *s = NULL;
    if (ms_store_open(path, MS_STORE_READ, &s, err, sizeof err))
        fail_msg("a read open refused a v5 store: %s", err);
    sqlite3 *db = ms_store_db(s);
    assert_int_equal(one_int(db, "PRAGMA user_version"), 5);
    assert_int_equal(one_int(db, "SELECT count(*) FROM pragma_table_info('traces') WHERE name = 'user_id'"), 0);
    check_reader_sql(db);
    ms_store_close(s);
}

/* A write open upgrades it: the columns exist and hold attrs' values,
 * every row kept, and the readers' SQL now reads the columns. */
static void test_write_open_upgrades_v5_filling_the_columns(void **state)
{
    (void)state;
    char err[512] = "";
    ms_store *s = NULL;
    if (ms_store_open(path, MS_STORE_WRITE, &s, err, sizeof err))
        fail_msg("upgrading: %s", err);
    ms_store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(one_int(db, "PRAGMA user_version"), 6);
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces"), (int64_t)NROWS);
    check_rows(db, "t.session", "t.user_id", "t.tags");
    check_reader_sql(db);
    /* the attrs themselves are left as they were */
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces WHERE attrs = 'not JSON \"user\"'"), 1);
    sqlite3_close(db);
}

/* The tags of a new row go through the same rule in the writer's SQL:
 * a JSON array as it is, anything else one tag. */
static void test_tags_rule(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    static const char *const in[] = {"'[\"x\",\"y\"]'", "'solo'", "'5'", "'[oops'", "NULL"};
    static const char *const want[] = {"[\"x\",\"y\"]", "[\"solo\"]", "[\"5\"]", "[\"[oops\"]", "-"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT coalesce(%s, '-')", MS_WHO_TAGS_OF("x"));
        char full[768];
        snprintf(full, sizeof full, "WITH v(x) AS (SELECT %s) %s FROM v", in[i], sql);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, full, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const char *got = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(got, want[i]))
            fail_msg("tags of %s: got %s, want %s", in[i], got, want[i]);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* in order: the read open must see the store before the upgrade */
        cmocka_unit_test(test_read_open_reads_v5_as_it_is),
        cmocka_unit_test(test_write_open_upgrades_v5_filling_the_columns),
        cmocka_unit_test(test_tags_rule),
    };
    return cmocka_run_group_tests(tests, make_v5_store, remove_store);
}
