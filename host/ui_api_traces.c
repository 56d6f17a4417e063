/* GET /api/traces — one page of the traces a selection picks, sorted,
 * with how many it picks in all: `moonspan traces --json`'s rows, from
 * the same view (ms_traces.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ms_traces.h"
#include "ui.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 1000

/* A whole-number parameter from min to max; def when absent. 0, or 400
 * with err. */
static int whole(const ms_serve_request *req, ms_ui_params *p, const char *name, long min, long max, long def,
                 long *out, char *err, size_t errlen)
{
    int bad = 0;
    const char *v = ms_ui_param(req, p, name, 0, &bad, err, errlen);
    if (bad)
        return 400;
    *out = def;
    if (v && *v && ms_parse_long(v, min, max, out)) {
        ms_errf(err, errlen, "parameter %s '%.100s' is not a whole number from %ld to %ld; e.g. %s=%ld", name, v,
                min, max, name, def);
        return 400;
    }
    return 0;
}

static int traces_view(sqlite3 *db, const void *opts, FILE *f, char *err, size_t errlen)
{
    return ms_traces_write(db, opts, f, err, errlen);
}

void ms_ui_api_traces(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui_params p = {.used = 0};
    ms_traces_opts o = {.json = 1, .page = 1};
    char err[1024];
    long limit, offset;
    int rc = ms_ui_selection(ui, req, &p, &o.sel, err, sizeof err);
    if (!rc)
        rc = whole(req, &p, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit, err, sizeof err);
    if (!rc)
        rc = whole(req, &p, "offset", 0, 1000000000, 0, &offset, err, sizeof err);
    int bad = 0;
    const char *sort = rc ? NULL : ms_ui_param(req, &p, "sort", 0, &bad, err, sizeof err);
    if (bad)
        rc = 400;
    if (!rc && sort && *sort) {
        if (!strcmp(sort, "start"))
            o.sort = MS_TRACES_BY_START;
        else if (!strcmp(sort, "duration"))
            o.sort = MS_TRACES_BY_DURATION;
        else if (!strcmp(sort, "cost"))
            o.sort = MS_TRACES_BY_COST;
        else
            rc = 400, ms_errf(err, sizeof err, "parameter sort '%.100s' is not an order; use sort=start (newest"
                                               " first), duration (slowest first) or cost (costliest first)", sort);
    }
    if (rc) {
        ms_ui_error(out, rc, "%s", err);
        return;
    }
    o.limit = (int)limit;
    o.offset = offset;
    if (ms_ui_run_view(ms_ui_db(ui), traces_view, &o, out, &rc, err, sizeof err))
        ms_ui_error(out, 500, "%s", err);
}
