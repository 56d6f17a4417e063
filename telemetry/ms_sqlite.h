/* The SQLite API for the files that also go into the loadable extension
 * (ms_vtab.c, ms_spans.c): built with -DMS_SQLITE_EXTENSION they call
 * SQLite through the table the host passes to the extension, as
 * sqlite3ext.h arranges; otherwise directly. */
#ifndef MS_SQLITE_H
#define MS_SQLITE_H

#ifdef MS_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#else
#include <sqlite3.h>
#endif

#endif
