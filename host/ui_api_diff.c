/* GET /api/diff and /api/runs — the UI's compare page: `moonspan diff
 * --json` for two sides typed as on the command line (host/diff_side.h),
 * and `moonspan runs --json` to pick them from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diff_side.h"
#include "ms_clock.h"
#include "ms_diff.h"
#include "ms_runs.h"
#include "ms_stats.h"
#include "ui.h"

static int runs_view(sqlite3 *db, const void *opts, FILE *f, char *err, size_t errlen)
{
    return ms_runs_write(db, opts, f, err, errlen);
}

/* /api/runs[?limit=N] */
void ms_ui_api_runs(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui_params p = {0};
    char err[1024];
    int bad = 0, rc;
    ms_runs_opts o = {.limit = MS_RUNS_DEFAULT_LIMIT, .json = 1};
    const char *v = ms_ui_param(req, &p, "limit", 0, &bad, err, sizeof err);
    if (bad) {
        ms_ui_error(out, 400, "%s", err);
        return;
    }
    if (v && ms_parse_long(v, 1, 1000000, &o.limit)) {
        ms_ui_error(out, 400, "limit '%.40s' is not a count of runs; give one from 1 to 1000000, e.g. limit=50", v);
        return;
    }
    if (ms_ui_run_view(ms_ui_db(ui), runs_view, &o, out, &rc, err, sizeof err))
        ms_ui_error(out, 500, "%s", err);
}

typedef struct diff_call {
    ms_diff_opts o;
    int failed;
} diff_call;

static int diff_view(sqlite3 *db, const void *opts, FILE *f, char *err, size_t errlen)
{
    diff_call *d = (diff_call *)opts;
    return ms_diff_write(db, &d->o, f, &d->failed, err, errlen);
}

/* Whether a run or eval run side names a stored run: 0, or the reply's
 * status (404 unknown, 500 store error) with err. */
static int side_exists(sqlite3 *db, const ms_diff_side *sd, char *err, size_t errlen)
{
    ms_select s = {0};
    if (sd->kind == MS_SIDE_RUN)
        s.run_id = sd->id;
    else if (sd->kind == MS_SIDE_EVAL)
        s.eval_run = sd->id;
    else
        return 0;
    int rc = ms_select_check(db, &s, err, errlen);
    return rc == 0 ? 0 : rc == 1 ? 404 : 500;
}

/* /api/diff?a=SIDE&b=SIDE[&by=path|name|user|session][&<selection>] */
void ms_ui_api_diff(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui_params p = {0};
    char err[1024];
    diff_call d = {.o = {.seed = MS_STATS_SEED, .resamples = MS_STATS_RESAMPLES, .min_change = MS_DIFF_MIN_CHANGE,
                         .json = 1}};
    int rc = ms_ui_selection(ui, req, &p, &d.o.narrow, err, sizeof err);
    if (rc) {
        ms_ui_error(out, rc, "%s", err);
        return;
    }
    int bad = 0;
    const char *a = ms_ui_param(req, &p, "a", 0, &bad, err, sizeof err);
    const char *b = bad ? NULL : ms_ui_param(req, &p, "b", 0, &bad, err, sizeof err);
    const char *by = bad ? NULL : ms_ui_param(req, &p, "by", 0, &bad, err, sizeof err);
    if (bad) {
        ms_ui_error(out, 400, "%s", err);
        return;
    }
    if (!a || !b) {
        ms_ui_error(out, 400, "diff needs two sides, a and b; %s (e.g. /api/diff?a=run:3&b=run:4)", MS_DIFF_SIDES);
        return;
    }
    if (by && strcmp(by, "path") && strcmp(by, "name") && strcmp(by, "user") && strcmp(by, "session")) {
        ms_ui_error(out, 400, "by '%.40s' is not a grouping; give by=path or by=name (steps), or by=user or"
                              " by=session (requests)", by);
        return;
    }
    /* as `diff --by`: steps by path or name, or request rows by user or session */
    d.o.steps_by_name = by && !strcmp(by, "name");
    d.o.rows_by = !by                    ? MS_DIFF_ROWS_NAME
                  : !strcmp(by, "user")    ? MS_DIFF_ROWS_USER
                  : !strcmp(by, "session") ? MS_DIFF_ROWS_SESSION
                                           : MS_DIFF_ROWS_NAME;
    ms_clock_init();
    int64_t now = ms_epoch_ns();
    sqlite3 *db = ms_ui_db(ui);
    if (ms_diff_side_parse("A", a, now, &d.o.side[0], err, sizeof err) ||
        ms_diff_side_parse("B", b, now, &d.o.side[1], err, sizeof err)) {
        ms_ui_error(out, 400, "%s", err);
        return;
    }
    for (int i = 0; i < 2; i++) {
        int st = side_exists(db, &d.o.side[i], err, sizeof err);
        if (st) {
            ms_ui_error(out, st, "%s", err);
            return;
        }
    }
    if (ms_ui_run_view(db, diff_view, &d, out, &rc, err, sizeof err))
        ms_ui_error(out, rc == MS_DIFF_BAD_SIDE ? 400 : 500, "%s", err);
}
