/* `moonspan serve --otlp ADDR --metrics ADDR`: OTLP/HTTP traces from other
 * services into the store (serve_otlp.c), and the store's Prometheus
 * metrics on /metrics, read incrementally at each scrape; either or both,
 * each on its own address, until SIGINT/SIGTERM. */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_clock.h"
#include "ms_metrics.h"
#include "ms_metrics_store.h"
#include "ms_store.h"
#include "ms_prices.h"
#include "ms_tracer.h"
#include "serve.h"
#include "serve_otlp.h"

static const char SERVE_HELP[] =
    "usage: moonspan serve [--otlp HOST:PORT [--max-body BYTES]] [--metrics HOST:PORT] [--db PATH]\n"
    "                      [--prices FILE]\n"
    "\n"
    "With --otlp, receives OpenTelemetry traces over OTLP/HTTP (POST /v1/traces,\n"
    "protobuf or JSON, gzip or not) from any service and stores them like\n"
    "moonspan's own, so report, traces, show and diff cover them. GenAI,\n"
    "OpenInference and Langfuse attributes become llm spans with tokens, cost\n"
    "(from the price table unless the span carries one) and time to first\n"
    "token. A 200 is sent once the spans are stored; refused requests get the\n"
    "Collector's statuses (400, 404, 405, 413, 415, 503). A 503 (the store\n"
    "failing to take the spans for 5 s, e.g. a full disk) carries Retry-After: 5.\n"
    "The address is printed on stdout once listening. README, section\n"
    "moonspan serve --otlp.\n"
    "\n"
    "With --metrics, serves the store's metrics for Prometheus on\n"
    "http://HOST:PORT/metrics (text format 0.0.4). Each scrape adds what was\n"
    "written since the previous one, so it stays cheap on a large store; the\n"
    "first reads the whole store once, before the port opens. Without --otlp the\n"
    "store is opened read-only and never upgraded. Metric names, labels and\n"
    "buckets: README, section Prometheus metrics.\n"
    "\n"
    "Runs until interrupted (Ctrl-C, SIGTERM), then writes what it holds.\n"
    "\n"
    "  --otlp HOST:PORT     where to receive traces, e.g. 127.0.0.1:4318\n"
    "  --max-body BYTES     the largest OTLP request body, after gzip (default\n"
    "                       20971520, from 1024 to 1073741824)\n"
    "  --metrics HOST:PORT  where to serve metrics, e.g. 127.0.0.1:9464\n"
    "                       (port 0 on either: any free port; the one taken is printed)\n"
    "  --db PATH            the store (default: $MOONSPAN_DB, else ./moonspan.db)\n"
    "  --prices FILE        extra model prices for received llm spans (with --otlp)\n"
    "\n"
    "Exit status: 0 when stopped by SIGINT/SIGTERM, 1 when the store cannot be\n"
    "read or written, 2 for bad usage (nothing to serve, a bad address, a port\n"
    "taken, no store for --metrics alone).\n";

#define QUEUE_TRACES 256

typedef struct store_metrics {
    ms_metrics *m;
    ms_metrics_store *feed;
} store_metrics;

static void metrics_route(void *ud, const ms_serve_request *req, ms_serve_reply *out)
{
    (void)req;
    store_metrics *sm = ud;
    char err[512];
    if (ms_metrics_store_update(sm->feed, err, sizeof err)) {
        out->status = 500;
        ms_buf_printf(&out->body, "moonspan serve: %s\n", err);
        fprintf(stderr, "moonspan serve: %s\n", err);
        return;
    }
    out->content_type = MS_METRICS_CONTENT_TYPE;
    if (ms_metrics_write(sm->m, &out->body))
        out->status = 500;
}

/* The OTLP side: its store opened for writing, its writer thread, prices. */
typedef struct otlp_side {
    ms_otlp_receiver rx;
    ms_prices *prices;
} otlp_side;

static int otlp_open(ms_cli *c, otlp_side *o, size_t max_body, char *err, size_t errlen)
{
    ms_clock_init();
    o->rx.max_body = max_body;
    if (ms_prices_new(&o->prices) != 0)
        return ms_errf(err, errlen, "out of memory");
    o->rx.prices = o->prices;
    if (c->prices && ms_prices_load_file(o->prices, c->prices, err, errlen) != 0)
        return -1;
    ms_store *store;
    if (ms_store_open(c->db, MS_STORE_WRITE, &store, err, errlen) != 0)
        return -1;
    if (ms_tracer_open(store, QUEUE_TRACES, &o->rx.tracer) != 0) {
        ms_store_close(store);
        return ms_errf(err, errlen, "cannot start the store's writer: out of memory");
    }
    return 0;
}

/* Writes what the receiver holds; returns the traces that could not be. */
static size_t otlp_close(otlp_side *o)
{
    size_t failed = o->rx.tracer ? ms_tracer_close(o->rx.tracer, INT64_C(10) * 1000000000) : 0;
    if (o->rx.tracer)
        fprintf(stderr, "moonspan serve: %llu OTLP requests, %llu spans stored, %llu rejected, %llu requests"
                        " refused%s\n", (unsigned long long)o->rx.requests, (unsigned long long)o->rx.spans,
                (unsigned long long)o->rx.rejected, (unsigned long long)o->rx.refused,
                failed ? "; some traces could not be written" : "");
    ms_prices_free(o->prices);
    return failed;
}

int ms_cmd_serve(ms_cli *c)
{
    const char *metrics = NULL, *otlp = NULL, *v;
    long max_body = MS_OTLP_MAX_BODY_DEFAULT;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(SERVE_HELP, stdout);
            return 0;
        }
        if (ms_cli_value(c, "--otlp", &otlp))
            continue;
        if (ms_cli_value(c, "--max-body", &v)) {
            max_body = ms_cli_long(c, "--max-body", v, 1024, 1L << 30);
            continue;
        }
        if (!ms_cli_value(c, "--metrics", &metrics))
            ms_cli_unknown(c);
    }
    if (!otlp)
        ms_cli_refuse_prices(c);
    if (!metrics && !otlp)
        ms_cli_usage_error(c, "nothing to serve; give --metrics HOST:PORT for Prometheus (e.g. --metrics"
                              " 127.0.0.1:9464), or --otlp HOST:PORT to receive traces (e.g. 127.0.0.1:4318)");
    char err[1024];
    struct sockaddr_in sa;
    if (metrics && ms_serve_parse_addr(metrics, &sa, err, sizeof err))
        ms_cli_usage_error(c, "--metrics %s", err);
    if (otlp && ms_serve_parse_addr(otlp, &sa, err, sizeof err))
        ms_cli_usage_error(c, "--otlp %s", err);

    /* signals are taken by sigwait below, never by a handler: the server's
     * threads inherit the mask */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int rc = 1;
    otlp_side o = {0};
    ms_serve *osrv = NULL, *srv = NULL;
    ms_store *s = NULL;
    store_metrics sm = {NULL, NULL};
    /* the store for writing first: it may create or upgrade the file the metrics read */
    if (otlp && otlp_open(c, &o, (size_t)max_body, err, sizeof err)) {
        fprintf(stderr, "moonspan serve: %s\n", err);
        rc = MS_EXIT_USAGE;
        goto done;
    }
    if (metrics) {
        if (!(s = ms_cli_open_read(c))) {
            rc = MS_EXIT_USAGE;
            goto done;
        }
        sm.m = ms_metrics_new();
        if (!sm.m || ms_metrics_store_open(ms_store_db(s), sm.m, &sm.feed, err, sizeof err) ||
            ms_metrics_store_update(sm.feed, err, sizeof err)) {
            fprintf(stderr, "moonspan serve: %s\n", sm.m ? err : "out of memory");
            goto done;
        }
        if (!(srv = ms_serve_new(0)) || ms_serve_route(srv, "GET", "/metrics", metrics_route, &sm)) {
            fprintf(stderr, "moonspan serve: out of memory\n");
            goto done;
        }
        if (ms_serve_start(srv, metrics, err, sizeof err)) {
            fprintf(stderr, "moonspan serve: %s\n", err);
            rc = MS_EXIT_USAGE;
            goto done;
        }
        fprintf(stderr, "moonspan serve: metrics of %s on http://%.*s:%d/metrics (%llu traces read)\n", c->db,
                (int)(strrchr(metrics, ':') - metrics), metrics, ms_serve_port(srv),
                (unsigned long long)ms_metrics_store_rows(sm.feed));
    }
    if (otlp) {
        if (!(osrv = ms_serve_new((size_t)max_body)) ||
            ms_serve_route(osrv, "POST", MS_OTLP_PATH, ms_otlp_route, &o.rx)) {
            fprintf(stderr, "moonspan serve: out of memory\n");
            goto done;
        }
        if (ms_serve_start(osrv, otlp, err, sizeof err)) {
            fprintf(stderr, "moonspan serve: %s\n", err);
            rc = MS_EXIT_USAGE;
            goto done;
        }
        printf("moonspan serve: OTLP/HTTP on http://%.*s:%d%s, into %s\n", (int)(strrchr(otlp, ':') - otlp), otlp,
               ms_serve_port(osrv), MS_OTLP_PATH, c->db);
        fflush(stdout);
    }
    int sig;
    sigwait(&stop, &sig);
    rc = 0;
done:
    ms_serve_free(osrv); /* no request runs after this: the receiver can close */
    ms_serve_free(srv);
    if (otlp_close(&o) && rc == 0)
        rc = 1;
    ms_metrics_store_close(sm.feed);
    ms_metrics_free(sm.m);
    ms_store_close(s);
    return rc;
}
