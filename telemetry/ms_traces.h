/* ms_traces — `moonspan traces`: the newest traces of a store, one line
 * (or one JSON object) each.
 *
 * Read-only; output is built whole and written once, nothing on error. */
#ifndef MS_TRACES_H
#define MS_TRACES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

/* The newest `limit` traces (<= 0: all; only those with status error when
 * errors_only), newest first: id, name, start, duration, tokens, cost,
 * status. Returns 0 or -1 with err. */
int ms_traces_write(sqlite3 *db, int limit, int errors_only, int json, FILE *out,
                    char *err, size_t errlen);

#endif
