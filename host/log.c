/* log — --log json / --log-file: the run's JSON log lines (telemetry/ms_log.h),
 * written by the tracer's writer thread as it takes each trace. */
#include <stdio.h>

#include "host.h"
#include "ms_log.h"

/* The tracer's observer: the log's records for each trace of the batch. */
static void log_batch(void *ud, ms_trace *const *traces, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ms_log_trace(ud, traces[i]);
}

int ms_host_log_start(const char *path, char *err, size_t errlen)
{
    ms_host *h = &ms_the_host;
    if (!path)
        return 0;
    if (ms_log_open(path, &h->log, err, errlen))
        return -1;
    if (ms_tracer_add_observer(h->tracer, log_batch, h->log))
        return ms_errf(err, errlen, "--log-file: too many observers of the writer (at most %d)",
                       MS_TRACER_OBSERVERS_MAX);
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
