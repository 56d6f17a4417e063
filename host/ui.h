/* ui — `moonspan ui`'s server object: the store opened read-only, the
 * token check, the pages' assets compiled into the binary, and the table
 * of JSON endpoints (one host/ui_api_*.c file per area).
 *
 * Contract:
 * - Every request, assets included, passes the token check first when a
 *   token is set: `Authorization: Bearer TOKEN` or a `token=` query
 *   parameter; anything else is 401 with a JSON error.
 * - Only GET is routed: any other method is 405. An unknown path is 404.
 * - Every response carries the Content-Security-Policy and
 *   X-Content-Type-Options headers (MS_UI_CSP).
 * - Requests are answered one at a time on the server's thread, so the
 *   endpoints share the one read-only connection without locks. Nothing
 *   here writes the store.
 * - An endpoint answers JSON (ms_ui_json_begin), or an error with
 *   ms_ui_error: 400 for a bad parameter (the message names the fix), 404
 *   for an unknown id, 500 for a store error. */
#ifndef MS_UI_H
#define MS_UI_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ms_select.h"
#include "serve.h"

#define MS_UI_CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The characters a --token may hold: it travels in a URL and a header. */
#define MS_UI_TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-"

typedef struct ms_ui ms_ui;

/* Opens the store at db_path read-only (never upgrading it) for a UI
 * guarded by `token` (NULL: none; kept, not copied). Returns 0, or -1
 * with err naming the fix (a missing store, an older schema). */
int ms_ui_open(const char *db_path, const char *token, ms_ui **out, char *err, size_t errlen);
/* Routes every GET path of srv to the UI. 0, or -1 when srv is full. */
int ms_ui_attach(ms_ui *ui, ms_serve *srv);
/* Closes the store; NULL is a no-op. After the server stopped. */
void ms_ui_close(ms_ui *ui);

/* --- for the endpoints (host/ui_api_*.c) ------------------------------ */

/* Every endpoint has this shape (ud is the ms_ui). */
typedef void (*ms_ui_api_fn)(void *ui, const ms_serve_request *req, ms_serve_reply *out);

sqlite3 *ms_ui_db(void *ui);
const char *ms_ui_db_path(void *ui);

/* Makes out a 200 JSON reply (Content-Type, Cache-Control: no-store);
 * the endpoint then appends the JSON to out->body. */
void ms_ui_json_begin(ms_serve_reply *out);

/* A view that writes to a FILE* (the CLI's JSON writers, as `fn` adapts
 * them), run into memory: its output starts a JSON reply. `*rc` gets the
 * view's return (or -1 out of memory, with err). Returns 0 when the view
 * succeeded (its output is in out->body), -1 otherwise (out untouched). */
typedef int (*ms_ui_view_fn)(sqlite3 *db, const void *opts, FILE *f, char *err, size_t errlen);
int ms_ui_run_view(sqlite3 *db, ms_ui_view_fn fn, const void *opts, ms_serve_reply *out, int *rc, char *err,
                   size_t errlen);
/* Replaces out with `status` and {"error": message}. */
void ms_ui_error(ms_serve_reply *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strings a request's parameters were decoded into, kept while the
 * endpoint runs (an ms_select points into them). */
typedef struct ms_ui_params {
    char text[16384];
    size_t used;
} ms_ui_params;

/* Parameter `name` (n-th occurrence), decoded into p. Returns the string,
 * or NULL when absent; sets *bad (and err) when it is malformed or p is
 * full. */
char *ms_ui_param(const ms_serve_request *req, ms_ui_params *p, const char *name, int n, int *bad, char *err,
                  size_t errlen);

/* Reads the selection parameters (README, Web UI: since, until, name,
 * run, eval_run, evals, attr, user, session, tag, status, errors) into
 * sel, with the meanings of the CLI's flags, and checks that run and
 * eval_run name stored runs. Returns 0; 400 with err naming the fix for
 * a bad value; 404 for an unknown run; 500 on a store error. */
int ms_ui_selection(void *ui, const ms_serve_request *req, ms_ui_params *p, ms_select *sel, char *err,
                    size_t errlen);

/* The endpoints. */
void ms_ui_api_meta(void *ui, const ms_serve_request *req, ms_serve_reply *out);
void ms_ui_api_traces(void *ui, const ms_serve_request *req, ms_serve_reply *out);
void ms_ui_api_trace(void *ui, const ms_serve_request *req, ms_serve_reply *out);
/* the checklist, eval and compare pages (ui_api_report.c, ui_api_evals.c, ui_api_diff.c) */
void ms_ui_api_report(void *ui, const ms_serve_request *req, ms_serve_reply *out);
void ms_ui_api_evals(void *ui, const ms_serve_request *req, ms_serve_reply *out);
void ms_ui_api_eval(void *ui, const ms_serve_request *req, ms_serve_reply *out);
void ms_ui_api_diff(void *ui, const ms_serve_request *req, ms_serve_reply *out);
void ms_ui_api_runs(void *ui, const ms_serve_request *req, ms_serve_reply *out);

#endif
