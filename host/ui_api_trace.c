/* GET /api/trace?id=HEX[&pick=N] — one trace for the waterfall page: the
 * object `moonspan show --json` writes (ms_show_build), whose spans carry
 * offset_ms from the trace's start. An id several traces match answers
 * 409 with the numbered list, as `show` prints it, so the page can offer
 * a pick. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_show.h"
#include "ui.h"

/* 4 to 32 hex characters: what ms_show accepts, checked here so that a
 * bad id is the caller's 400 and not the store's 500. */
static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n < 4 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)id[i]))
            return 0;
    return 1;
}

/* pick: absent (0), or a whole number from 1. Returns 0, or -1. */
static int read_pick(const ms_serve_request *req, long *pick)
{
    char buf[16];
    int n = ms_serve_query(req, "pick", buf, sizeof buf);
    *pick = 0;
    if (n == -1)
        return 0;
    if (n <= 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)buf[i]))
            return -1;
    *pick = strtol(buf, NULL, 10);
    return *pick >= 1 && *pick <= 1000000000L ? 0 : -1;
}

void ms_ui_api_trace(void *ui, const ms_serve_request *req, ms_serve_reply *out)
{
    char id[40], err[1024];
    int n = ms_serve_query(req, "id", id, sizeof id);
    if (n == -1) {
        ms_ui_error(out, 400, "id is missing: ask /api/trace?id=TRACE_ID, with an id (or a prefix of 4 or"
                              " more hex characters) as /api/traces lists them");
        return;
    }
    if (n < 0 || !valid_id(id)) {
        ms_ui_error(out, 400, "id must be a trace id or a prefix of it, 4 to 32 hex characters, as"
                              " /api/traces lists them");
        return;
    }
    long pick;
    if (read_pick(req, &pick)) {
        ms_ui_error(out, 400, "pick must be a whole number from 1: the `pick` of one of the traces"
                              " /api/trace lists when several match the id");
        return;
    }
    ms_show_opts o = {.id = id, .pick = pick, .json = 1};
    ms_buf b = {0}, m = {0};
    int rc = ms_show_build(ms_ui_db(ui), &o, &b, &m, err, sizeof err);
    if (rc == 0 || (rc == 1 && m.len)) {
        ms_buf *body = rc == 0 ? &b : &m;
        ms_ui_json_begin(out);
        /* several traces match: 409 when no pick chose one, 404 when the
         * pick is beyond them; either way the list says what to pick */
        if (rc == 1)
            out->status = pick ? 404 : 409;
        ms_buf_add(&out->body, body->data, body->len);
        if (out->body.oom)
            ms_ui_error(out, 500, "out of memory sending the trace");
    } else if (rc == 1) {
        ms_ui_error(out, 404, "%s", err);
    } else {
        ms_ui_error(out, 500, "%s", err);
    }
    ms_buf_free(&b);
    ms_buf_free(&m);
}
