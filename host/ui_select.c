/* ui_select — the selection parameters every list and aggregate endpoint
 * of `moonspan ui` takes (see ms_ui_selection in ui.h): the CLI's flags
 * without dashes, parsed by the CLI's own ms_select_param, plus status
 * and errors. */
#include <string.h>

#include "cli.h"
#include "ui.h"

/* The parameters that may repeat, and those given once. */
static const char *const REPEATED[] = {"attr", "tag"};
static const char *const ONCE[] = {"since", "until", "name", "run", "eval_run", "evals", "user", "session"};

static int one(const ms_serve_request *req, ms_ui_params *p, ms_select *sel, const char *key, int n,
               char *err, size_t errlen)
{
    int bad = 0;
    char *v = ms_ui_param(req, p, key, n, &bad, err, errlen);
    if (bad)
        return 400;
    if (!v || !*v) /* an empty field of a form is no filter */
        return -1;
    char why[512];
    if (ms_select_param(sel, key, key, v, why, sizeof why)) {
        ms_errf(err, errlen, "parameter %s: %s", key, why);
        return 400;
    }
    return 0;
}

int ms_ui_selection(void *ui, const ms_serve_request *req, ms_ui_params *p, ms_select *sel, char *err,
                    size_t errlen)
{
    memset(sel, 0, sizeof *sel);
    for (size_t i = 0; i < sizeof ONCE / sizeof ONCE[0]; i++) {
        int rc = one(req, p, sel, ONCE[i], 0, err, errlen);
        if (rc > 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof REPEATED / sizeof REPEATED[0]; i++) {
        int rc;
        for (int n = 0; (rc = one(req, p, sel, REPEATED[i], n, err, errlen)) == 0; n++)
            ;
        if (rc > 0)
            return rc;
    }
    int bad = 0;
    const char *status = ms_ui_param(req, p, "status", 0, &bad, err, errlen);
    const char *errors = bad ? NULL : ms_ui_param(req, p, "errors", 0, &bad, err, errlen);
    if (bad)
        return 400;
    static const char *const STATUSES[] = {"ok", "error", "interrupted", "incomplete"};
    if (status && *status) { /* empty: any */
        size_t i = 0;
        while (i < sizeof STATUSES / sizeof STATUSES[0] && strcmp(status, STATUSES[i]) != 0)
            i++;
        if (i == sizeof STATUSES / sizeof STATUSES[0]) {
            ms_errf(err, errlen, "parameter status '%.100s' is not a trace status; use status=ok, error,"
                                 " interrupted or incomplete, or leave it out for all", status);
            return 400;
        }
        sel->status = status;
    }
    if (errors && strcmp(errors, "1") && strcmp(errors, "0")) {
        ms_errf(err, errlen, "parameter errors '%.100s' is not 0 or 1; use errors=1 for failed traces only",
                errors);
        return 400;
    }
    sel->errors_only = errors && !strcmp(errors, "1");
    int rc = ms_select_check(ms_ui_db(ui), sel, err, errlen);
    return rc == 0 ? 0 : rc > 0 ? 404 : 500;
}
