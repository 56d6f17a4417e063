/* live_metrics — `--metrics-addr` on run and eval: /metrics of the running
 * process, from a registry the writer thread feeds as it takes traces
 * (ms_metrics_trace.h), so the script's thread pays nothing per span. */
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "live_metrics.h"
#include "ms_metrics_trace.h"
#include "serve.h"

static ms_metrics *registry;
static ms_serve *server;

static void metrics_route(void *ud, const ms_serve_request *req, ms_serve_reply *out)
{
    (void)req;
    out->content_type = MS_METRICS_CONTENT_TYPE;
    if (ms_metrics_write(ud, &out->body))
        out->status = 500;
}

int ms_live_metrics_start(const char *addr, char *err, size_t errlen)
{
    if (!(registry = ms_metrics_new()) || !(server = ms_serve_new(0))) {
        ms_live_metrics_stop();
        return ms_errf(err, errlen, "out of memory");
    }
    ms_metrics_set_queue_gauge(registry, ms_host_queue_depth, NULL);
    ms_serve_route(server, "GET", "/metrics", metrics_route, registry);
    if (ms_serve_start(server, addr, err, errlen)) {
        ms_live_metrics_stop();
        return -1;
    }
    /* the port, which 0 leaves to the system, is for the scraper to know */
    fprintf(stderr, "moonspan: live metrics on http://%.*s:%d/metrics\n", (int)(strrchr(addr, ':') - addr), addr,
            ms_serve_port(server));
    return 0;
}

void ms_live_metrics_attach(void)
{
    if (registry && ms_the_host.tracer)
        (void)ms_tracer_add_observer(ms_the_host.tracer, ms_metrics_observe_traces, registry); /* the first: room */
}

void ms_live_metrics_stop(void)
{
    ms_serve_free(server); /* first: no scrape reads the registry after this */
    server = NULL;
    ms_metrics_free(registry);
    registry = NULL;
}
