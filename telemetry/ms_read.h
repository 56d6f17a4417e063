/* ms_read — what the store's readers (report, traces, show) share:
 * statements that name the failure, one snapshot per command, row strings
 * kept in an arena, and questions about an older schema.
 *
 * Readers open the store read-only and never upgrade it (ms_store), so a
 * column a later schema added may be missing: ask ms_schema_has before
 * naming it. Private to the readers; nothing here writes. */
#ifndef MS_READ_H
#define MS_READ_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"

/* Offset of a string absent from an arena (a NULL column). */
#define MS_NO_STR ((size_t)-1)

/* Prepares `sql`; on failure sets err ("cannot read the store: ...") and
 * returns -1 with *st NULL. */
int ms_read_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
                    char *err, size_t errlen);

/* Opens a read transaction, so every statement of one command sees the
 * same snapshot while writers append (WAL). When the caller already has
 * one open, *own stays 0 and that one is used. Returns 0 or -1 with err. */
int ms_read_begin(sqlite3 *db, int *own, char *err, size_t errlen);

/* Ends what ms_read_begin opened (nothing when own is 0). Returns 0 or -1
 * with err (err may be NULL when an earlier error is to be kept). */
int ms_read_end(sqlite3 *db, int own, char *err, size_t errlen);

/* Whether `table` exists and, when `column` is not NULL, has that column.
 * Returns 1, 0, or -1 with err. */
int ms_schema_has(sqlite3 *db, const char *table, const char *column,
                  char *err, size_t errlen);

/* SQL for the type and the message of a manual error (ctx:add_error) on
 * the span_events row aliased `e`; NULL on any other event. Schema v3
 * stores them in typed columns (`typed`: ms_schema_has(db, "span_events",
 * "error_type")); older stores as JSON attrs {"type":"manual",
 * "message":...} of an event named 'error'. */
const char *ms_sql_manual_error_type(int typed);
const char *ms_sql_manual_error_message(int typed);

/* Copies text column `col` of the current row, NUL-terminated, to the end
 * of `arena` and returns its offset (offsets survive the arena growing);
 * MS_NO_STR for NULL. An allocation failure sets arena->oom. */
size_t ms_arena_col(ms_buf *arena, sqlite3_stmt *st, int col);

/* The same for `len` bytes at p. */
size_t ms_arena_put(ms_buf *arena, const char *p, size_t len);

/* The string at `off`, or NULL for MS_NO_STR. Valid until the arena grows. */
static inline const char *ms_arena_str(const ms_buf *arena, size_t off)
{
    return off == MS_NO_STR || !arena->data ? NULL : arena->data + off;
}

/* A REAL column, NaN (printed "-", JSON null) when NULL. */
double ms_col_num(sqlite3_stmt *st, int col);

/* a + b for counts and durations, which are never negative: a blob's
 * values are checked one by one, not their sums, so a damaged one could
 * overflow them; the sum stops at INT64_MAX instead. */
static inline int64_t ms_sat_add(int64_t a, int64_t b)
{
    uint64_t c = (uint64_t)a + (uint64_t)b;
    return c > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)c;
}

/* Makes room for element n of a growable array of `size`-byte elements
 * whose capacity is *cap (doubling). Returns 0, or -1 on allocation
 * failure with the array unchanged. */
int ms_grow(void **arr, size_t *cap, size_t n, size_t size);

#endif
