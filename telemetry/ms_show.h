/* ms_show — `moonspan show`: one trace as a tree of spans.
 *
 * Read-only; the trace row, its spans and its events are read in one
 * snapshot; output is built whole and written once, nothing on error. */
#ifndef MS_SHOW_H
#define MS_SHOW_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

/* One trace as an indented tree: each span's name, duration, tokens, cost,
 * retries, status and error. `id` is a full trace id or a unique prefix of
 * at least 4 hex characters. Returns 0; 1 when no trace matches (err
 * says so); -1 on other errors. */
int ms_trace_show(sqlite3 *db, const char *id, int json, FILE *out,
                  char *err, size_t errlen);

#endif
