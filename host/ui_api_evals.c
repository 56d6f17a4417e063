/* GET /api/evals and /api/eval — the UI's eval pages: the eval runs
 * newest first, and one run's cases with the comparison its `moonspan
 * eval --baseline` stored (telemetry/ms_eval_view.h). */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "ms_eval_view.h"
#include "ui.h"

/* /api/evals[?limit=N]: {"runs": [...], "more": bool}. */
void ms_ui_api_evals(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui_params p = {0};
    char err[1024];
    int bad = 0;
    long limit = MS_EVAL_VIEW_LIMIT;
    const char *v = ms_ui_param(req, &p, "limit", 0, &bad, err, sizeof err);
    if (bad) {
        ms_ui_error(out, 400, "%s", err);
        return;
    }
    if (v && ms_parse_long(v, 1, 1000000, &limit)) {
        ms_ui_error(out, 400, "limit '%.40s' is not a count of runs; give one from 1 to 1000000, e.g. limit=50", v);
        return;
    }
    ms_ui_json_begin(out);
    if (ms_eval_view_runs(ms_ui_db(ui), limit, &out->body, err, sizeof err)) {
        ms_ui_error(out, 500, "%s", err);
        return;
    }
    ms_buf_addc(&out->body, '\n');
}

/* /api/eval?id=N: {"run", "gates", "comparison", "cases"}. */
void ms_ui_api_eval(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui_params p = {0};
    char err[1024];
    int bad = 0;
    long id;
    const char *v = ms_ui_param(req, &p, "id", 0, &bad, err, sizeof err);
    if (bad) {
        ms_ui_error(out, 400, "%s", err);
        return;
    }
    if (!v || ms_parse_long(v, 1, LONG_MAX, &id)) {
        ms_ui_error(out, 400, "%s; give an eval run's id, e.g. /api/eval?id=3 (/api/evals lists them)",
                    v ? "id is not a whole number from 1" : "id is missing");
        return;
    }
    ms_ui_json_begin(out);
    int rc = ms_eval_view_run(ms_ui_db(ui), id, &out->body, err, sizeof err);
    if (rc) {
        ms_ui_error(out, rc == 1 ? 404 : 500, "%s", err);
        return;
    }
    ms_buf_addc(&out->body, '\n');
}
