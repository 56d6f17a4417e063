/* `moonspan serve --otlp ADDR`: an OTLP/HTTP receiver writing what other
 * services send into the store. This file is the libmicrohttpd glue: it
 * collects each request and hands it to serve_otlp.c; it runs until
 * SIGINT or SIGTERM, then writes what it holds and exits 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ms_clock.h"
#include "ms_prices.h"
#include "ms_store.h"
#include "ms_tracer.h"
#include "serve_otlp.h"

static const char SERVE_HELP[] =
    "usage: moonspan serve --otlp HOST:PORT [--max-body BYTES] [--db PATH] [--prices FILE]\n"
    "\n"
    "Receives OpenTelemetry traces over OTLP/HTTP (POST /v1/traces, protobuf or\n"
    "JSON, gzip or not) from any service and stores them like moonspan's own, so\n"
    "report, traces, show and diff cover them. GenAI, OpenInference and Langfuse\n"
    "attributes become llm spans with tokens, cost (from the price table unless\n"
    "the span carries one) and time to first token. Runs until SIGINT or SIGTERM,\n"
    "then writes what it holds and exits 0. A 200 is sent once the spans are\n"
    "stored; refused requests get the Collector's statuses (400, 404, 405, 413,\n"
    "415, 503 with Retry-After).\n"
    "\n"
    "  --otlp HOST:PORT   where to listen: an IPv4 address (127.0.0.1 for this\n"
    "                     machine only) and a port; port 0 picks a free one.\n"
    "                     The address is printed on stdout once listening.\n"
    "  --max-body BYTES   the largest request body, after gzip (default 20971520)\n"
    "  --db PATH          the store (default: $MOONSPAN_DB, else ./moonspan.db)\n"
    "  --prices FILE      extra model prices for the cost of received llm spans\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 the store failed, 2 bad usage or the\n"
    "address cannot be listened on.\n";

#define QUEUE_TRACES 256

/* One request being collected. */
typedef struct request {
    int refused;               /* a reply was queued from the headers */
    int too_big;
    ms_buf body;
} request;

typedef struct server {
    ms_otlp_receiver rx;
    pthread_mutex_t lock;      /* the receiver is not thread-safe; MHD may call from its threads */
} server;

static enum MHD_Result send_reply(struct MHD_Connection *conn, ms_http_reply *rep)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(rep->body.len, rep->body.len ? rep->body.data : (void *)"",
                                        MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", rep->content_type ? rep->content_type : "application/json");
    if (rep->status == 405)
        MHD_add_response_header(resp, "Allow", "POST");
    if (rep->retry_after)
        MHD_add_response_header(resp, "Retry-After", rep->retry_after);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    server *sv = cls;
    request *rq = *con_cls;
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *cenc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    if (!rq) { /* the headers are in */
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        int64_t len = cl ? strtoll(cl, NULL, 10) : -1;
        ms_http_reply rep = {0};
        pthread_mutex_lock(&sv->lock);
        rq->refused = ms_otlp_refuse(&sv->rx, method, url, ctype, cenc, len, &rep);
        pthread_mutex_unlock(&sv->lock);
        if (rq->refused) {
            enum MHD_Result r = send_reply(conn, &rep);
            ms_buf_free(&rep.body);
            return r;
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (!rq->refused && !rq->too_big) {
            if (rq->body.len + *upload_size > sv->rx.max_body) {
                rq->too_big = 1;
                ms_buf_free(&rq->body);
            } else {
                ms_buf_add(&rq->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->refused)
        return MHD_YES;
    ms_http_reply rep = {0};
    pthread_mutex_lock(&sv->lock);
    ms_otlp_handle(&sv->rx, ctype, cenc, (const uint8_t *)rq->body.data, rq->body.len,
                   rq->too_big || rq->body.oom, &rep);
    pthread_mutex_unlock(&sv->lock);
    enum MHD_Result r = send_reply(conn, &rep);
    ms_buf_free(&rep.body);
    return r;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    request *rq = *con_cls;
    if (rq) {
        ms_buf_free(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* "HOST:PORT" with an IPv4 HOST; 0 or -1. */
static int parse_addr(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    char host[64];
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    long port;
    if (ms_parse_long(colon + 1, 0, 65535, &port))
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int ms_cmd_serve(ms_cli *c)
{
    const char *otlp = NULL, *v;
    long max_body = MS_OTLP_MAX_BODY_DEFAULT;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(SERVE_HELP, stdout);
            return 0;
        }
        if (ms_cli_value(c, "--otlp", &v))
            otlp = v;
        else if (ms_cli_value(c, "--max-body", &v))
            max_body = ms_cli_long(c, "--max-body", v, 1024, 1L << 30);
        else
            ms_cli_unknown(c);
    }
    if (!otlp)
        ms_cli_usage_error(c, "nothing to serve; give --otlp HOST:PORT (e.g. --otlp 127.0.0.1:4318)");
    struct sockaddr_in sa;
    if (parse_addr(otlp, &sa))
        ms_cli_usage_error(c, "--otlp '%s' is not HOST:PORT with an IPv4 host and a port from 0 to 65535"
                              " (e.g. 127.0.0.1:4318)", otlp);

    char err[1024];
    ms_clock_init();
    ms_prices *prices = NULL;
    if (ms_prices_new(&prices) != 0) {
        fprintf(stderr, "moonspan serve: out of memory\n");
        return 1;
    }
    if (c->prices && ms_prices_load_file(prices, c->prices, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan serve: %s\n", err);
        ms_prices_free(prices);
        return MS_EXIT_USAGE;
    }
    ms_store *store;
    if (ms_store_open(c->db, MS_STORE_WRITE, &store, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan serve: %s\n", err);
        ms_prices_free(prices);
        return MS_EXIT_USAGE;
    }
    server sv = {.rx = {.prices = prices, .max_body = (size_t)max_body}};
    pthread_mutex_init(&sv.lock, NULL);
    if (ms_tracer_open(store, QUEUE_TRACES, &sv.rx.tracer) != 0) {
        fprintf(stderr, "moonspan serve: cannot start the store's writer: out of memory\n");
        ms_store_close(store);
        ms_prices_free(prices);
        return 1;
    }
    /* the signals are waited for here; every thread started after this inherits the block */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, &sv, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "moonspan serve: cannot listen on %s (%s); pick a free port, or 0 for any\n", otlp,
                errno ? strerror(errno) : "in use or not this machine's address");
        ms_tracer_close(sv.rx.tracer, 0);
        ms_prices_free(prices);
        return MS_EXIT_USAGE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    printf("moonspan serve: OTLP/HTTP on http://%s:%u%s, into %s\n", ip, info ? info->port : 0, MS_OTLP_PATH,
           c->db);
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    size_t failed = ms_tracer_close(sv.rx.tracer, INT64_C(10) * 1000000000);
    fprintf(stderr, "moonspan serve: %llu requests, %llu spans stored, %llu rejected, %llu requests refused%s\n",
            (unsigned long long)sv.rx.requests, (unsigned long long)sv.rx.spans,
            (unsigned long long)sv.rx.rejected, (unsigned long long)sv.rx.refused,
            failed ? "; some traces could not be written" : "");
    ms_prices_free(prices);
    pthread_mutex_destroy(&sv.lock);
    return failed ? 1 : 0;
}
