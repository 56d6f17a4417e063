/* ms_who — who a trace was for: its session, user and tags.
 *
 * trace(name, {session = , user = , tags = {...}}, fn) sets them as the
 * root span's attributes `session`, `user` and `tags` (tags as the text of
 * a JSON array of strings); schema v6 also keeps them in the columns
 * traces.session, traces.user_id and traces.tags (a JSON array), so
 * filters and groupings read a column instead of parsing attrs.
 *
 * The expressions below are the one definition of how a trace's attrs
 * give those values. The v5 -> v6 migration fills the columns of older
 * rows with them, and a reader of a v5 store (read opens never upgrade)
 * uses them in place of the columns, so both read alike. `attrs` is the
 * SQL text naming the attrs column (e.g. "t.attrs"). Values read as text:
 * a number as SQLite prints it; a tags value that is not a JSON array is
 * one tag. */
#ifndef MS_WHO_H
#define MS_WHO_H

#include <sqlite3.h>
#include <stddef.h>

#define MS_WHO_JSON_(attrs) "(CASE WHEN json_valid(" attrs ") THEN " attrs " END)"
#define MS_WHO_SESSION_SQL(attrs) "CAST(json_extract(" MS_WHO_JSON_(attrs) ", '$.session') AS TEXT)"
#define MS_WHO_USER_SQL(attrs) "CAST(json_extract(" MS_WHO_JSON_(attrs) ", '$.user') AS TEXT)"
/* The tags column from a tags value x (an SQL expression): a JSON array
 * as it is, any other value as a one-tag array, NULL as NULL. */
#define MS_WHO_TAGS_OF(x)                                                                          \
    "(CASE WHEN " x " IS NULL THEN NULL WHEN json_valid(" x ") AND json_type(" x ") = 'array'"     \
    " THEN json(" x ") ELSE json_array(" x ") END)"
#define MS_WHO_TAGS_SQL(attrs) MS_WHO_TAGS_OF("json_extract(" MS_WHO_JSON_(attrs) ", '$.tags')")

/* The SQL expressions a reader uses for a trace's session, user and tags
 * over the traces table aliased `t`: the v6 columns, or on a v5 store the
 * same values from t.attrs. */
typedef struct ms_who_sql {
    const char *session, *user, *tags;
} ms_who_sql;

/* Fills *w for the store `db`. Returns 0, or -1 with err (an SQL error). */
int ms_who_sql_get(sqlite3 *db, ms_who_sql *w, char *err, size_t errlen);

#endif
