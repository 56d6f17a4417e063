/* The loadable SQLite extension: gives any SQLite client the spans and
 * span_events tables of a moonspan store (ms_vtab.h). Built by make as
 * build/moonspan_sql.so:
 *
 *   sqlite3 moonspan.db '.load build/moonspan_sql' 'SELECT name, duration_ns FROM spans'
 *
 * There is only one exported symbol in this file: the entry point SQLite
 * derives from the file name. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "ms_vtab.h"

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_moonspansql_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    (void)err;
    SQLITE_EXTENSION_INIT2(api);
    return ms_vtab_register(db);
}
