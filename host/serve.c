/* serve — the HTTP server (see serve.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

#if MHD_VERSION < 0x00097100 /* enum MHD_Result came with 0.9.71 */
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

typedef struct route {
    const char *method, *path;
    ms_serve_fn fn;
    void *ud;
} route;

struct ms_serve {
    struct MHD_Daemon *d;
    size_t max_body;
    route routes[MS_SERVE_MAX_ROUTES];
    int nroutes;
    const char *header_name[MS_SERVE_MAX_HEADERS], *header_value[MS_SERVE_MAX_HEADERS];
    int nheaders;
    int port;
};

/* What one request gathered: its raw query string (from the URI, which
 * libmicrohttpd hands over once, before the headers) and its body. */
typedef struct conn {
    char *query;
    int started; /* the handler's first call (headers only) has happened */
    ms_buf body;
    int too_big;
} conn;

int ms_serve_parse_addr(const char *addr, struct sockaddr_in *out, char *err, size_t errlen)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr)
        return ms_errf(err, errlen, "'%s' is not HOST:PORT; give e.g. 127.0.0.1:9464", addr ? addr : "");
    char host[64];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return ms_errf(err, errlen, "'%s': the host is too long; give an IPv4 address such as 127.0.0.1", addr);
    memcpy(host, addr, hl);
    host[hl] = 0;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port < 0 || port > 65535)
        return ms_errf(err, errlen, "'%s': the port must be a number from 0 to 65535, e.g. 127.0.0.1:9464",
                       addr);
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return ms_errf(err, errlen, "'%s': '%s' is not an IPv4 address; give e.g. 127.0.0.1:9464", addr, host);
    return 0;
}

ms_serve *ms_serve_new(size_t max_body)
{
    ms_serve *s = calloc(1, sizeof *s);
    if (s)
        s->max_body = max_body ? max_body : MS_SERVE_MAX_BODY_DEFAULT;
    return s;
}

int ms_serve_route(ms_serve *s, const char *method, const char *path, ms_serve_fn fn, void *ud)
{
    if (s->nroutes >= MS_SERVE_MAX_ROUTES)
        return -1;
    s->routes[s->nroutes++] = (route){method, path, fn, ud};
    return 0;
}

int ms_serve_header_all(ms_serve *s, const char *name, const char *value)
{
    if (s->nheaders >= MS_SERVE_MAX_HEADERS)
        return -1;
    s->header_name[s->nheaders] = name;
    s->header_value[s->nheaders++] = value;
    return 0;
}

const char *ms_serve_header(const ms_serve_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Decodes p[0..n) (%XX and '+') into buf; -2 when it does not fit, holds
 * a NUL or a bad escape. */
static int decode(const char *p, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    if (len == 0)
        return -2;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -2;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= len)
            return -2;
        buf[o++] = (char)ch;
    }
    buf[o] = 0;
    return (int)o;
}

int ms_serve_query_nth(const ms_serve_request *req, const char *name, int n, char *buf, size_t len)
{
    size_t nl = strlen(name);
    const char *p = req->query ? req->query : "";
    while (*p) {
        size_t seg = strcspn(p, "&");
        const char *eq = memchr(p, '=', seg);
        size_t kl = eq ? (size_t)(eq - p) : seg;
        /* names are matched as sent: the UI's own are plain ASCII */
        if (kl == nl && !memcmp(p, name, nl) && n-- == 0)
            return eq ? decode(eq + 1, seg - kl - 1, buf, len) : decode("", 0, buf, len);
        p += seg;
        if (*p)
            p++;
    }
    return -1;
}

int ms_serve_query(const ms_serve_request *req, const char *name, char *buf, size_t len)
{
    return ms_serve_query_nth(req, name, 0, buf, len);
}

int ms_serve_reply_header(ms_serve_reply *out, const char *name, const char *value)
{
    ms_buf_add(&out->headers, name, strlen(name) + 1);
    ms_buf_add(&out->headers, value, strlen(value) + 1);
    return out->headers.oom ? -1 : 0;
}

static MHD_Result_t send_reply(ms_serve *s, struct MHD_Connection *c, int status, const char *type,
                               const char *body, size_t len, const ms_buf *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type ? type : "text/plain; charset=utf-8");
    for (int i = 0; i < s->nheaders; i++)
        MHD_add_response_header(r, s->header_name[i], s->header_value[i]);
    for (size_t o = 0; headers && !headers->oom && o < headers->len;) {
        const char *name = headers->data + o, *value = name + strlen(name) + 1;
        MHD_add_response_header(r, name, value);
        o = (size_t)(value + strlen(value) + 1 - headers->data);
    }
    MHD_Result_t rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static MHD_Result_t send_text(ms_serve *s, struct MHD_Connection *c, int status, const char *text)
{
    return send_reply(s, c, status, NULL, text, strlen(text), NULL);
}

/* Whether route path `rp` matches `url`: exactly, or as a prefix when it
 * ends in '*'. */
static int path_matches(const char *rp, const char *url, int prefix)
{
    size_t n = strlen(rp);
    if (!prefix)
        return strcmp(rp, url) == 0;
    return n > 0 && rp[n - 1] == '*' && strncmp(rp, url, n - 1) == 0;
}

/* Called with the whole URI before anything else of the request: keeps
 * its query string, which libmicrohttpd otherwise only hands over
 * decoded and one value per name. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls, (void)c;
    conn *k = calloc(1, sizeof *k);
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (k && q && !(k->query = strdup(q + 1))) {
        free(k);
        return NULL;
    }
    return k;
}

static MHD_Result_t on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **state)
{
    ms_serve *s = cls;
    (void)version;
    conn *k = *state;
    if (!k) /* on_uri ran out of memory */
        return MHD_NO;
    if (!k->started) { /* first call: headers only */
        k->started = 1;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (k->body.len + *upload_size > s->max_body)
            k->too_big = 1;
        else
            ms_buf_add(&k->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    const route *match = NULL;
    int path_known = 0;
    /* exact routes first, then prefixes, each in the order added */
    for (int prefix = 0; prefix < 2 && !path_known; prefix++) {
        for (int i = 0; i < s->nroutes; i++) {
            if (!path_matches(s->routes[i].path, url, prefix))
                continue;
            path_known = 1;
            if (!match && !strcmp(s->routes[i].method, method))
                match = &s->routes[i];
        }
    }
    if (!path_known)
        return send_text(s, c, 404, "not found\n");
    if (!match)
        return send_text(s, c, 405, "method not allowed\n");
    if (k->too_big)
        return send_text(s, c, 413, "request body too large\n");
    if (k->body.oom)
        return send_text(s, c, 500, "out of memory reading the request\n");
    ms_serve_request req = {
        .method = method, .path = url, .query = k->query ? k->query : "", .conn = c,
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
        .content_encoding = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding"),
        .body = k->body.data ? k->body.data : "", .body_len = k->body.len,
    };
    ms_serve_reply rep = {.status = 200};
    match->fn(match->ud, &req, &rep);
    MHD_Result_t rc = rep.body.oom || rep.headers.oom
                          ? send_text(s, c, 500, "out of memory\n")
                          : send_reply(s, c, rep.status, rep.content_type, rep.body.data ? rep.body.data : "",
                                       rep.body.len, &rep.headers);
    ms_buf_free(&rep.body);
    ms_buf_free(&rep.headers);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;
    conn *k = *state;
    if (k) {
        free(k->query);
        ms_buf_free(&k->body);
        free(k);
        *state = NULL;
    }
}

int ms_serve_start(ms_serve *s, const char *addr, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (ms_serve_parse_addr(addr, &sa, err, errlen))
        return -1;
    /* the server's thread never takes SIGINT/SIGTERM: they are for the
     * program's main thread (the run's lifecycle, serve's sigwait) */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                            on_done, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->d)
        return ms_errf(err, errlen, "cannot listen on %s (the port is taken, or the address is not this "
                       "machine's); choose another, e.g. 127.0.0.1:0 for any free port", addr);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    return 0;
}

int ms_serve_port(const ms_serve *s) { return s->port; }

void ms_serve_free(ms_serve *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    free(s);
}
