/* ms_query — `moonspan sql`: one SQL statement over a store (its tables,
 * and the spans and span_events virtual tables), its rows written as an
 * aligned text table, JSON or CSV. Read-only: the store is opened so. */
#ifndef MS_QUERY_H
#define MS_QUERY_H

#include <sqlite3.h>
#include <stdio.h>

enum ms_query_format { MS_QUERY_TEXT, MS_QUERY_JSON, MS_QUERY_CSV };

/* Runs `sql` (exactly one statement) on db and writes its rows to out:
 * TEXT, an aligned table (cells escaped for a terminal, long ones cut,
 * NULL as empty; the rows are held until all are read, to size the
 * columns); JSON, an array of objects, one per row, streamed (NULL as
 * null, blobs as hex strings); CSV, RFC 4180 with a header row, streamed.
 * Returns 0; 1 when the statement is wrong (err names the problem); -1 on
 * other errors. */
int ms_query_write(sqlite3 *db, const char *sql, enum ms_query_format format, FILE *out,
                   char *err, size_t errlen);

#endif
