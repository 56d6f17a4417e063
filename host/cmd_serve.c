/* `moonspan serve --metrics ADDR`: the store's Prometheus metrics on
 * /metrics, read incrementally at each scrape, until SIGINT/SIGTERM. */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_metrics.h"
#include "ms_metrics_store.h"
#include "ms_store.h"
#include "serve.h"

static const char SERVE_HELP[] =
    "usage: moonspan serve --metrics HOST:PORT [--db PATH]\n"
    "\n"
    "Serves the store's metrics for Prometheus on http://HOST:PORT/metrics\n"
    "(text format 0.0.4) until interrupted (Ctrl-C, SIGTERM). Each scrape adds\n"
    "what was written since the previous one, so it stays cheap on a large\n"
    "store; the first reads the whole store once, before the port opens. The\n"
    "store is opened read-only and never upgraded. Metric names, labels and\n"
    "buckets: README, section Prometheus metrics.\n"
    "\n"
    "  --metrics HOST:PORT  where to listen, e.g. 127.0.0.1:9464 (port 0: any free\n"
    "                       port; the one taken is printed)\n"
    "  --db PATH            the store (default: $MOONSPAN_DB, else ./moonspan.db)\n"
    "\n"
    "Exit status: 0 when stopped by SIGINT/SIGTERM, 1 when the store cannot be\n"
    "read, 2 for bad usage (no --metrics, a bad address, a port taken, no store).\n";

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

int ms_cmd_serve(ms_cli *c)
{
    const char *metrics = NULL;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(SERVE_HELP, stdout);
            return 0;
        }
        if (!ms_cli_value(c, "--metrics", &metrics))
            ms_cli_unknown(c);
    }
    ms_cli_refuse_prices(c);
    if (!metrics)
        ms_cli_usage_error(c, "nothing to serve; give --metrics HOST:PORT, e.g. --metrics 127.0.0.1:9464");
    char err[1024];
    struct sockaddr_in sa;
    if (ms_serve_parse_addr(metrics, &sa, err, sizeof err))
        ms_cli_usage_error(c, "--metrics %s", err);

    /* signals are taken by sigwait below, never by a handler: the server's
     * threads inherit the mask */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    ms_store *s = ms_cli_open_read(c);
    if (!s)
        return MS_EXIT_USAGE;
    store_metrics sm = {ms_metrics_new(), NULL};
    int rc = 1;
    ms_serve *srv = NULL;
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
    int sig;
    sigwait(&stop, &sig);
    rc = 0;
done:
    ms_serve_free(srv);
    ms_metrics_store_close(sm.feed);
    ms_metrics_free(sm.m);
    ms_store_close(s);
    return rc;
}
