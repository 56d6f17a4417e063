/* GET /api/report — the UI's checklist page: `moonspan report --json` for
 * a selection, plus "series", the same numbers per hour or day
 * (telemetry/ms_series.h), so the page draws them over time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_report.h"
#include "ms_series.h"
#include "ui.h"

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
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        ms_ui_error(out, 500, "out of memory");
        return;
    }
    rc = ms_report_write(db, &o, f, err, sizeof err);
    if (fclose(f) != 0 && rc == 0)
        rc = -1, snprintf(err, sizeof err, "out of memory");
    /* the report is one object ending in "}\n": "series" joins it as its last member */
    while (rc == 0 && len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    if (rc == 0 && (len < 2 || text[len - 1] != '}')) {
        rc = -1;
        snprintf(err, sizeof err, "the report is not one JSON object");
    }
    if (rc) {
        free(text);
        ms_ui_error(out, 500, "%s", err);
        return;
    }
    ms_ui_json_begin(out);
    ms_buf_add(&out->body, text, len - 1);
    free(text);
    ms_buf_adds(&out->body, ",\"series\":");
    rc = ms_series_json(db, &sel, by, &out->body, err, sizeof err);
    if (rc) {
        ms_ui_error(out, rc == MS_SERIES_TOO_WIDE ? 400 : 500, "%s", err);
        return;
    }
    ms_buf_adds(&out->body, "}\n");
}
