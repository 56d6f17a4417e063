/* GET /api/meta — what the UI shows in its header and polls for changes:
 * the version, the store, its schema, a data_version that changes when
 * another process commits to the store, and the number of traces. */
#include <stdio.h>
#include <string.h>

#include "ms_fmt.h"
#include "ms_read.h"
#include "ui.h"

static int pragma_int(sqlite3 *db, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, sql, &st, err, errlen))
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : ms_errf(err, errlen, "cannot read the store: %s", sqlite3_errmsg(db));
}

void ms_ui_api_meta(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    (void)req;
    sqlite3 *db = ms_ui_db(ui);
    char err[512];
    int64_t schema = 0, version = 0;
    /* the count is read again only when the data changed: polled every
     * 2 s, it must not scan a store of millions each time. Requests are
     * answered one at a time (ui.h), so these need no lock. */
    static int64_t counted_at = -1, traces;
    if (pragma_int(db, "PRAGMA user_version", &schema, err, sizeof err) ||
        pragma_int(db, "PRAGMA data_version", &version, err, sizeof err) ||
        (version != counted_at && pragma_int(db, "SELECT count(*) FROM traces", &traces, err, sizeof err))) {
        ms_ui_error(out, 500, "%s", err);
        return;
    }
    counted_at = version;
    ms_ui_json_begin(out);
    int f = 1;
    ms_buf_addc(&out->body, '{');
    ms_kv_str(&out->body, &f, "version", MOONSPAN_VERSION);
    ms_kv_str(&out->body, &f, "db", ms_ui_db_path(ui));
    ms_kv_int(&out->body, &f, "schema_version", schema);
    ms_kv_int(&out->body, &f, "data_version", version);
    ms_kv_int(&out->body, &f, "traces", traces);
    ms_buf_adds(&out->body, "}\n");
}
