/* ms_vtab — the spans and span_events tables of a store, as SQLite
 * virtual tables that decode the packed spans (ms_pack.h) on the fly.
 *
 * Both are eponymous: nothing in the file's schema names them, and a
 * connection has them once they are registered: moonspan registers them
 * on every connection it opens, and the loadable extension (make builds
 * build/moonspan_sql.so; `.load build/moonspan_sql` in the sqlite3 CLI)
 * registers them for any SQLite client. Their columns are those of the
 * version-3 tables they replace, plus trace_id, span_index (the span's
 * gidx) on spans, and on spans the span's trace's session, user and tags
 * (traces.session, user_id, tags; read from the trace's attrs on a v5
 * store, as ms_who.h defines, so a query needs no join). Read-only. `WHERE trace_row = ?` (a join on traces.id)
 * reads one trace; other queries read every trace. */
#ifndef MS_VTAB_H
#define MS_VTAB_H

#include "ms_sqlite.h"

/* Registers the modules on db. Returns a SQLite result code. */
int ms_vtab_register(sqlite3 *db);

#endif
