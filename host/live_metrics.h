/* live_metrics — the live /metrics of a hosted run (--metrics-addr). */
#ifndef MS_LIVE_METRICS_H
#define MS_LIVE_METRICS_H

#include <stddef.h>

/* Serves /metrics on addr ("127.0.0.1:9464"), before the host starts, so
 * a port taken refuses the run before it records anything. Returns 0, or
 * -1 with err (bad address, port taken). */
int ms_live_metrics_start(const char *addr, char *err, size_t errlen);
/* Once the host has started: every trace and part its writer takes from
 * now on is counted. Nothing when not started. */
void ms_live_metrics_attach(void);
/* Stops serving and frees the registry (after the tracer has closed);
 * safe when never started. */
void ms_live_metrics_stop(void);

#endif
