/* GET /api/report — the UI's checklist page: `moonspan report --json` for
 * a selection, plus "series", the same numbers per hour or day
 * (telemetry/ms_series.h), so the page draws them over time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_report.h"
#include "ms_series.h"
#include "ui.h"

static int report_view(sqlite3 *db, const void *opts, FILE *f, char *err, size_t errlen)
{
    return ms_report_write(db, opts, f, err, errlen);
}

/* /api/report?<selection>&bucket=hour|day */
void ms_ui_api_report(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui_params p = {0};
    char err[1024];
    ms_select sel = {0};
    int rc = ms_ui_selection(ui, req, &p, &sel, err, sizeof err);
    if (rc) {
        ms_ui_error(out, rc, "%s", err);
        return;
    }
    int bad = 0;
    const char *bucket = ms_ui_param(req, &p, "bucket", 0, &bad, err, sizeof err);
    if (bad) {
        ms_ui_error(out, 400, "%s", err);
        return;
    }
    if (bucket && strcmp(bucket, "hour") && strcmp(bucket, "day")) {
        ms_ui_error(out, 400, "bucket '%.40s' is not a bucket; give bucket=hour or bucket=day", bucket);
        return;
    }
    enum ms_series_bucket by = bucket && !strcmp(bucket, "hour") ? MS_SERIES_HOUR : MS_SERIES_DAY;

    sqlite3 *db = ms_ui_db(ui);
    ms_report_opts o = {.sel = sel, .json = 1};
    if (ms_ui_run_view(db, report_view, &o, out, &rc, err, sizeof err)) {
        ms_ui_error(out, 500, "%s", err);
        return;
    }
    /* the report is one object ending in "}\n": "series" joins it as its last member */
    ms_buf *b = &out->body;
    while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
        b->len--;
    if (b->len < 2 || b->data[b->len - 1] != '}') {
        ms_buf_reset(b);
        ms_ui_error(out, 500, "the report is not one JSON object");
        return;
    }
    b->len--;
    ms_buf_adds(b, ",\"series\":");
    rc = ms_series_json(db, &sel, by, &out->body, err, sizeof err);
    if (rc) {
        ms_ui_error(out, rc == MS_SERIES_TOO_WIDE ? 400 : 500, "%s", err);
        return;
    }
    ms_buf_adds(&out->body, "}\n");
}
