/* ms_otlp_metrics — a metrics registry (ms_metrics.h, the one /metrics
 * renders) as one ExportMetricsServiceRequest, in protobuf or OTLP/JSON.
 *
 * Names, units and attribute keys are OpenTelemetry's, not Prometheus's
 * (ms_metrics_visit): the GenAI v1.41.0 histograms with their bucket
 * boundaries, moonspan's own as moonspan.*. Counters are monotonic Sums,
 * histograms explicit-bucket Histograms, both CUMULATIVE from the
 * caller's start time; the writer's queue depth is a Gauge. The values
 * are the registry's as they are: a histogram's bucket counts and sum
 * equal the _bucket (de-cumulated) and _sum lines of the exposition.
 * The registry is bounded (its families, MS_METRICS_MAX_SERIES series
 * each), so one request holds all of it. Sending is the caller's. */
#ifndef MS_OTLP_METRICS_H
#define MS_OTLP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_metrics.h"
#include "ms_otlp.h"

typedef struct ms_otlp_metrics_opts {
    int json;                   /* OTLP/JSON; else protobuf */
    const ms_otlp_kv *resource; /* resource attributes, service.name among them */
    size_t nresource;
    int64_t start_ns;           /* epoch ns the cumulative series start from */
    int64_t time_ns;            /* epoch ns the values were read at */
} ms_otlp_metrics_opts;

/* Appends the request holding every series of m to out and sets
 * *npoints to the number of data points in it (0: the registry is empty,
 * and out holds a request with no metrics, which a caller need not send).
 * Takes the registry's lock (ms_metrics_visit). Returns 0, or -1 when
 * memory ran out. */
int ms_otlp_metrics_encode(ms_metrics *m, const ms_otlp_metrics_opts *o, ms_buf *out, int64_t *npoints);

#endif
