/* ms_who — the SQL a reader uses for a trace's session, user and tags
 * (see ms_who.h). There is only one exported function in this file. */
#include "ms_who.h"

#include "ms_read.h"

#include <assert.h>

int ms_who_sql_get(sqlite3 *db, ms_who_sql *w, char *err, size_t errlen)
{
    assert(db && w);
    int has = ms_schema_has(db, "traces", "user_id", err, errlen);
    if (has < 0)
        return -1;
    if (has)
        *w = (ms_who_sql){"t.session", "t.user_id", "t.tags"};
    else
        *w = (ms_who_sql){MS_WHO_SESSION_SQL("t.attrs"), MS_WHO_USER_SQL("t.attrs"), MS_WHO_TAGS_SQL("t.attrs")};
    return 0;
}
