/* log — --log json / --log-file: the run's JSON log lines (telemetry/ms_log.h),
 * written by the tracer's writer thread as it takes each trace. */
#include <stdio.h>

#include "host.h"
#include "ms_log.h"

static void sink(void *ctx, const ms_trace *t)
{
    ms_log_trace(ctx, t);
}

int ms_host_log_start(const char *path, char *err, size_t errlen)
{
    ms_host *h = &ms_the_host;
    if (!path)
        return 0;
    if (ms_log_open(path, &h->log, err, errlen))
        return -1;
    ms_tracer_set_sink(h->tracer, sink, h->log);
    return 0;
}

int ms_host_log_end(void)
{
    ms_host *h = &ms_the_host;
    char err[256];
    int rc = ms_log_close(h->log, err, sizeof err);
    h->log = NULL;
    if (rc)
        fprintf(stderr, "moonspan: %s\n", err);
    return rc;
}
