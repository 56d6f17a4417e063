/* serve — a small HTTP server on libmicrohttpd for the host's endpoints
 * (/metrics, OTLP in, moonspan ui), one handler per route.
 *
 * Contract:
 * - Listens on an IPv4 address and port given as "HOST:PORT"
 *   (ms_serve_parse_addr); port 0 takes a free one (ms_serve_port).
 * - Requests are answered on the server's own thread, one at a time, so a
 *   handler needs no lock against other requests (it does against the
 *   rest of the program).
 * - A request body is read whole before the handler runs and is bounded:
 *   past max_body bytes the answer is 413 and the handler is not called.
 *   A path with no route is 404; a route asked with another method, 405.
 * - ms_serve_stop returns once no handler runs any more. */
#ifndef MS_SERVE_H
#define MS_SERVE_H

#include <stddef.h>

#include "ms_buf.h"

#define MS_SERVE_MAX_BODY_DEFAULT (4u << 20)
#define MS_SERVE_MAX_ROUTES 32
#define MS_SERVE_MAX_HEADERS 8

typedef struct ms_serve ms_serve;

typedef struct ms_serve_request {
    const char *method, *path;
    const char *query;         /* after '?', raw (still %-encoded); "" when none */
    const char *content_type, *content_encoding; /* NULL when absent */
    const char *body;
    size_t body_len;
    void *conn;                /* the server's, for ms_serve_header */
} ms_serve_request;

typedef struct ms_serve_reply {
    int status;                /* 200 unless the handler says otherwise */
    const char *content_type;  /* static text; default text/plain; charset=utf-8 */
    ms_buf body;               /* what to send (owned by the server) */
    ms_buf headers;            /* "name\0value\0" pairs (ms_serve_reply_header) */
} ms_serve_reply;

typedef void (*ms_serve_fn)(void *ud, const ms_serve_request *req, ms_serve_reply *out);

/* Parses "127.0.0.1:9464" (an IPv4 address or "localhost", a port 0 to
 * 65535). Returns 0, or -1 with a message that names the fix in err. */
struct sockaddr_in;
int ms_serve_parse_addr(const char *addr, struct sockaddr_in *out, char *err, size_t errlen);

/* A server with no route yet, or NULL when memory ran out. */
ms_serve *ms_serve_new(size_t max_body);
/* Adds route METHOD PATH (exact match). At most MS_SERVE_MAX_ROUTES;
 * before ms_serve_start. Returns 0 or -1 when full. */
int ms_serve_route(ms_serve *s, const char *method, const char *path, ms_serve_fn fn, void *ud);
/* Adds a header sent on every response (static strings: they are not
 * copied). At most MS_SERVE_MAX_HEADERS; before ms_serve_start. Returns 0
 * or -1 when full. */
int ms_serve_header_all(ms_serve *s, const char *name, const char *value);

/* The value of request header `name` (case-insensitive), or NULL. Valid
 * while the handler runs. */
const char *ms_serve_header(const ms_serve_request *req, const char *name);

/* Query parameter `name` of req->query, %-decoded ('+' is a space), its
 * first occurrence. Copies at most len - 1 bytes and a NUL into buf.
 * Returns the decoded length; -1 when the parameter is absent; -2 when it
 * does not fit in buf, or holds a NUL byte or a bad %-escape (answer 400). */
int ms_serve_query(const ms_serve_request *req, const char *name, char *buf, size_t len);
/* The same for the n-th occurrence (0 = the first), for parameters that
 * repeat (tag=a&tag=b). */
int ms_serve_query_nth(const ms_serve_request *req, const char *name, int n, char *buf, size_t len);

/* Adds response header `name: value` to the reply (both copied, so a
 * handler's own buffers will do). Returns 0, or -1 when memory ran out
 * (the reply is then a 500). */
int ms_serve_reply_header(ms_serve_reply *out, const char *name, const char *value);

/* Starts listening on addr. Returns 0, or -1 with err (bad address, port
 * taken). */
int ms_serve_start(ms_serve *s, const char *addr, char *err, size_t errlen);
/* The port listened on (the one taken when 0 was asked). */
int ms_serve_port(const ms_serve *s);
/* Stops listening, waits for the running handler, frees the server. NULL
 * is a no-op. */
void ms_serve_free(ms_serve *s);

#endif
