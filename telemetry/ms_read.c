/* ms_read — statements, snapshots, arena columns and schema questions for
 * the store's readers (see ms_read.h). */
#include "ms_read.h"

#include <math.h>
#include <stdlib.h>

int ms_read_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
                    char *err, size_t errlen)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot read the store: %s (is this a moonspan database?)",
                sqlite3_errmsg(db));
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    return 0;
}

int ms_read_begin(sqlite3 *db, int *own, char *err, size_t errlen)
{
    *own = 0;
    if (!sqlite3_get_autocommit(db))
        return 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot read the store: %s", sqlite3_errmsg(db));
    *own = 1;
    return 0;
}

/* Nothing was written, so COMMIT cannot lose data; a failure is still
 * reported, since the connection would be left inside a transaction. */
int ms_read_end(sqlite3 *db, int own, char *err, size_t errlen)
{
    if (own && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot end the read: %s", sqlite3_errmsg(db));
    return 0;
}

int ms_schema_has(sqlite3 *db, const char *table, const char *column,
                  char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, column ? "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2"
                                   : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        &st, err, errlen))
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (column)
        sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    int ret;
    if (sqlite3_step(st) == SQLITE_ROW)
        ret = sqlite3_column_int64(st, 0) > 0;
    else
        ret = ms_errf(err, errlen, "cannot read the schema: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

const char *ms_sql_manual_error_type(int typed)
{
    return typed ? "e.error_type"
                 : "CASE WHEN e.name = 'error' THEN coalesce(CASE WHEN json_valid(e.attrs)"
                   " THEN json_extract(e.attrs, '$.type') END, 'manual') END";
}

const char *ms_sql_manual_error_message(int typed)
{
    return typed ? "e.error_message"
                 : "CASE WHEN e.name = 'error' AND json_valid(e.attrs)"
                   " THEN json_extract(e.attrs, '$.message') END";
}

size_t ms_arena_col(ms_buf *arena, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    if (!s)
        return MS_NO_STR;
    size_t off = arena->len;
    ms_buf_add(arena, s, (size_t)sqlite3_column_bytes(st, col));
    ms_buf_addc(arena, 0);
    return off;
}

size_t ms_arena_put(ms_buf *arena, const char *p, size_t len)
{
    size_t off = arena->len;
    ms_buf_add(arena, p, len);
    ms_buf_addc(arena, 0);
    return off;
}

double ms_col_num(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

int ms_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}
