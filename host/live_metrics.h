/* live_metrics — the live /metrics of a hosted run (--metrics-addr). */
#ifndef MS_LIVE_METRICS_H
#define MS_LIVE_METRICS_H

#include <stddef.h>

/* Serves /metrics on addr ("127.0.0.1:9464") for the running host (after
 * ms_host_start): every trace and part the writer takes from then on is
 * counted. Returns 0, or -1 with err (bad address, port taken). */
int ms_live_metrics_start(const char *addr, char *err, size_t errlen);
/* Stops serving and frees the registry (after the tracer has closed);
 * safe when never started. */
void ms_live_metrics_stop(void);

#endif
