/* ui — the UI's server object (see ui.h): one GET route for every path,
 * which checks the token, then answers from the assets or the endpoint
 * table below. */
#include "ui.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "ms_store.h"

/* The files of host/ui/, compiled in by host/embed.c (the Makefile's ui_assets rule):
 * name is the file's name, e.g. "app.js". */
extern const ms_embedded_module ms_ui_assets[];

/* The JSON endpoints; an area adds its line here (README, Web UI). */
static const struct {
    const char *path;
    ms_ui_api_fn fn;
} API[] = {
    {"/api/meta", ms_ui_api_meta},
    {"/api/traces", ms_ui_api_traces},
    {"/api/trace", ms_ui_api_trace},
    {"/api/report", ms_ui_api_report},
    {"/api/evals", ms_ui_api_evals},
    {"/api/eval", ms_ui_api_eval},
    {"/api/diff", ms_ui_api_diff},
    {"/api/runs", ms_ui_api_runs},
};

struct ms_ui {
    ms_store *store;
    const char *db_path;
    const char *token;
};

int ms_ui_open(const char *db_path, const char *token, ms_ui **out, char *err, size_t errlen)
{
    ms_ui *ui = calloc(1, sizeof *ui);
    if (!ui)
        return ms_errf(err, errlen, "out of memory");
    if (ms_store_open(db_path, MS_STORE_READ, &ui->store, err, errlen) != 0) {
        free(ui);
        return -1;
    }
    ui->db_path = db_path;
    ui->token = token;
    *out = ui;
    return 0;
}

void ms_ui_close(ms_ui *ui)
{
    if (!ui)
        return;
    ms_store_close(ui->store);
    free(ui);
}

sqlite3 *ms_ui_db(void *ui) { return ms_store_db(((ms_ui *)ui)->store); }
const char *ms_ui_db_path(void *ui) { return ((ms_ui *)ui)->db_path; }

void ms_ui_json_begin(ms_serve_reply *out)
{
    out->status = 200;
    out->content_type = "application/json";
    ms_serve_reply_header(out, "Cache-Control", "no-store");
}

int ms_ui_run_view(sqlite3 *db, ms_ui_view_fn fn, const void *opts, ms_serve_reply *out, int *rc, char *err,
                   size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        *rc = -1;
        return ms_errf(err, errlen, "out of memory");
    }
    *rc = fn(db, opts, f, err, errlen);
    if (fclose(f) != 0 && *rc == 0) {
        *rc = -1;
        ms_errf(err, errlen, "out of memory");
    }
    if (*rc == 0) {
        ms_ui_json_begin(out);
        ms_buf_add(&out->body, text, len);
    }
    free(text);
    return *rc ? -1 : 0;
}

void ms_ui_error(ms_serve_reply *out, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ms_buf_reset(&out->body);
    ms_buf_reset(&out->headers);
    ms_ui_json_begin(out);
    out->status = status;
    ms_buf_adds(&out->body, "{\"error\":");
    ms_json_str(&out->body, msg, strlen(msg));
    ms_buf_adds(&out->body, "}\n");
}

char *ms_ui_param(const ms_serve_request *req, ms_ui_params *p, const char *name, int n, int *bad, char *err,
                  size_t errlen)
{
    char *at = p->text + p->used;
    int len = ms_serve_query_nth(req, name, n, at, sizeof p->text - p->used);
    if (len == -1)
        return NULL;
    if (len < 0) {
        *bad = 1;
        ms_errf(err, errlen, "the parameter %s is malformed (a bad %%-escape, a NUL byte, or the parameters"
                             " are longer than %zu bytes in all); send it URL-encoded, e.g. with"
                             " encodeURIComponent", name, sizeof p->text);
        return NULL;
    }
    p->used += (size_t)len + 1;
    return at;
}

/* Compares without stopping at the first difference, so the time taken
 * says nothing about how much of a guess was right. */
static int same_secret(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    unsigned char d = alen != blen;
    for (size_t i = 0; i < blen; i++)
        d |= (unsigned char)(a[i < alen ? i : 0] ^ b[i]);
    return d == 0;
}

static int token_ok(const ms_ui *ui, const ms_serve_request *req)
{
    if (!ui->token)
        return 1;
    size_t tl = strlen(ui->token);
    const char *auth = ms_serve_header(req, "Authorization");
    if (auth && !strncmp(auth, "Bearer ", 7) && same_secret(auth + 7, ui->token, tl))
        return 1;
    char q[256];
    return ms_serve_query(req, "token", q, sizeof q) >= 0 && same_secret(q, ui->token, tl);
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},
    };
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

static const ms_embedded_module *asset(const char *name)
{
    for (const ms_embedded_module *a = ms_ui_assets; a->name; a++)
        if (!strcmp(a->name, name))
            return a;
    return NULL;
}

/* index.html with its placeholders filled: {{Q}} becomes the query the
 * assets need ("?token=..." or nothing), and <!--SCRIPTS--> a script
 * element for every other .js asset (chart.js, page_*.js: in name order,
 * after app.js), so a page is one more file in host/ui/. */
static void index_page(const ms_ui *ui, ms_buf *out)
{
    const ms_embedded_module *ix = asset("index.html");
    /* a token holds only MS_UI_TOKEN_CHARS: nothing to escape in a URL or an attribute */
    char q[300] = "";
    if (ui->token)
        snprintf(q, sizeof q, "?token=%s", ui->token);
    ms_buf scripts = {0};
    for (const ms_embedded_module *a = ms_ui_assets; a->name; a++) {
        size_t n = strlen(a->name);
        if (n > 3 && !strcmp(a->name + n - 3, ".js") && strcmp(a->name, "app.js") != 0)
            ms_buf_printf(&scripts, "<script defer src=\"/ui/%s%s\"></script>\n", a->name, q);
    }
    for (const char *p = ix->source; *p;) {
        if (!strncmp(p, "{{Q}}", 5)) {
            ms_buf_adds(out, q);
            p += 5;
        } else if (!strncmp(p, "<!--SCRIPTS-->", 14)) {
            if (scripts.data)
                ms_buf_adds(out, scripts.data);
            p += 14;
        } else {
            ms_buf_addc(out, *p++);
        }
    }
    if (scripts.oom)
        out->oom = 1;
    ms_buf_free(&scripts);
}

/* Every GET: the token, then the page, an asset or an endpoint. */
static void dispatch(void *ud, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_ui *ui = ud;
    if (!token_ok(ui, req)) {
        ms_ui_error(out, 401, "this UI needs its token: open the address `moonspan ui` printed (it ends in"
                              " ?token=...), or send the header Authorization: Bearer TOKEN");
        ms_serve_reply_header(out, "WWW-Authenticate", "Bearer");
        return;
    }
    if (!strcmp(req->path, "/") || !strcmp(req->path, "/index.html")) {
        out->content_type = content_type("index.html");
        ms_serve_reply_header(out, "Cache-Control", "no-store");
        index_page(ui, &out->body);
        return;
    }
    if (!strncmp(req->path, "/ui/", 4)) {
        const ms_embedded_module *a = asset(req->path + 4);
        if (a && strcmp(a->name, "index.html") != 0) {
            out->content_type = content_type(a->name);
            ms_serve_reply_header(out, "Cache-Control", "no-store");
            ms_buf_add(&out->body, a->source, a->len);
            return;
        }
    }
    for (size_t i = 0; i < sizeof API / sizeof API[0]; i++) {
        if (!strcmp(req->path, API[i].path)) {
            API[i].fn(ui, req, out);
            return;
        }
    }
    ms_ui_error(out, 404, "no page or endpoint at %.200s; the UI starts at /, the endpoints are listed in the"
                          " README (section Web UI)", req->path);
}

/* Any other method the pages or a script might send: the UI never
 * writes, and a script reading {"error"} gets one here too (the server's
 * own 405, for methods not listed below, is plain text). */
static void not_allowed(void *ud, const ms_serve_request *req, ms_serve_reply *out)
{
    (void)ud;
    ms_ui_error(out, 405, "method %.20s is not allowed: the UI only reads, so every page and endpoint is GET",
                req->method);
    ms_serve_reply_header(out, "Allow", "GET");
}

int ms_ui_attach(ms_ui *ui, ms_serve *srv)
{
    static const char *const others[] = {"HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    if (ms_serve_header_all(srv, "Content-Security-Policy", MS_UI_CSP) ||
        ms_serve_header_all(srv, "X-Content-Type-Options", "nosniff") ||
        ms_serve_header_all(srv, "Referrer-Policy", "no-referrer") ||
        ms_serve_route(srv, "GET", "/*", dispatch, ui))
        return -1;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (ms_serve_route(srv, others[i], "/*", not_allowed, ui))
            return -1;
    return 0;
}
