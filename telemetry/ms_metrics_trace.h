/* ms_metrics_trace — the live feeder of the Prometheus registry
 * (ms_metrics.h) from trace buffers. */
#ifndef MS_METRICS_TRACE_H
#define MS_METRICS_TRACE_H

#include <stddef.h>

#include "ms_metrics.h"

struct ms_trace;

/* Adds what the n buffers hold to registry `ud` (an ms_metrics *): each
 * ended span as a step (the root as the request), its retries, the error
 * raised in it, its LLM call; each error added by hand. A trace written in
 * parts is seen part by part, each span once. Its signature is the
 * tracer's observer's (ms_tracer_add_observer); takes the registry's lock
 * once. */
void ms_metrics_observe_traces(void *ud, struct ms_trace *const *traces, size_t n);

#endif
