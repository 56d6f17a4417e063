/* ms_metrics — the Prometheus registry: what moonspan serves on /metrics,
 * as fixed families of counters and fixed-bucket histograms, and their
 * text exposition (format 0.0.4).
 *
 * Two feeders fill the same registry: ms_metrics_trace.c from trace
 * buffers as the writer thread takes them (the live metrics of a run),
 * and ms_metrics_store.c from the rows of a store (`moonspan serve`).
 *
 * Names follow the Prometheus conventions and the OpenTelemetry GenAI
 * metrics v1.41.0 as Prometheus sees them (dots become underscores, the
 * unit is a suffix, counters end in _total); the GenAI histograms use the
 * conventions' bucket boundaries. Each family holds at most
 * MS_METRICS_MAX_SERIES label sets: past that, new label sets are counted
 * in one series whose every label value is "_other", so a script that
 * names spans after its inputs cannot grow the registry without bound.
 *
 * Thread safety: the observe functions are called between
 * ms_metrics_lock and ms_metrics_unlock (one lock per batch of traces,
 * never per span); ms_metrics_write takes the lock itself. */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"

#define MS_METRICS_MAX_SERIES 200
#define MS_METRICS_OTHER "_other"

/* The text exposition's Content-Type. */
#define MS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct ms_metrics ms_metrics;

/* A byte string that need not be NUL-terminated; p NULL means absent. */
typedef struct ms_mstr {
    const char *p;
    size_t len;
} ms_mstr;

/* One LLM call. request_model is the model asked for (the span's
 * gen_ai.request.model, as llm.call sets it; absent when the span has
 * none: a call received over OTLP without one, or recorded by hand), model
 * the one stored (the one that answered; the one asked for when the
 * provider named none or the call failed). They become the labels
 * gen_ai.request.model (request_model, else model) and
 * gen_ai.response.model (model, on a call that succeeded), as the span
 * export names them. Tokens as moonspan stores them (input excludes cache
 * reads and writes); cost_usd NaN when unpriced; ttft_ns < 0 when not
 * streamed; error_type absent when the call succeeded. */
typedef struct ms_metrics_llm {
    ms_mstr provider, request_model, model, error_type;
    int64_t duration_ns;
    int64_t input, output, cache_read, cache_write;
    double cost_usd;
    int64_t ttft_ns;
    int replayed;          /* answered from a recording: nothing was spent */
} ms_metrics_llm;

/* A new, empty registry, or NULL when memory ran out. */
ms_metrics *ms_metrics_new(void);
void ms_metrics_free(ms_metrics *m);

void ms_metrics_lock(ms_metrics *m);
void ms_metrics_unlock(ms_metrics *m);

/* A request (a trace) ended after duration_ns with status `status`
 * (ms_status_name: "ok", "error", ...). */
void ms_metrics_request(ms_metrics *m, ms_mstr name, int64_t duration_ns, const char *status);
/* `count` repetitions of step `name` took total_ns together (count 1 for
 * a span; a fold's repetitions are each counted at their mean). */
void ms_metrics_step(ms_metrics *m, ms_mstr name, uint64_t count, int64_t total_ns);
void ms_metrics_llm_call(ms_metrics *m, const ms_metrics_llm *c);
/* An error raised (counted once, where it was raised) or added by hand. */
void ms_metrics_error(ms_metrics *m, ms_mstr type);
void ms_metrics_retries(ms_metrics *m, uint64_t n);

/* A gauge read at each exposition (the writer's queue depth): fn(ud)
 * returns its value. NULL: not exposed. Set before serving. */
void ms_metrics_set_queue_gauge(ms_metrics *m, double (*fn)(void *ud), void *ud);

/* Appends the whole exposition to out: every family with a HELP and a
 * TYPE line, histograms cumulative with a +Inf bucket equal to _count.
 * Families with no series yet are left out. Returns 0, or -1 when memory
 * ran out (out->oom). */
int ms_metrics_write(ms_metrics *m, ms_buf *out);

/* --- the registry as OpenTelemetry sees it (for OTLP, ms_otlp_metrics.h) --- */

enum ms_metric_kind { MS_METRIC_SUM, MS_METRIC_HISTOGRAM, MS_METRIC_GAUGE };

#define MS_METRICS_MAX_LABELS 5
#define MS_METRICS_MAX_BOUNDS 16

/* A family under its OpenTelemetry name and unit (UCUM: "s", "{token}"),
 * not the Prometheus-mangled one; attribute keys are the OpenTelemetry
 * ones ("gen_ai.request.model", not gen_ai_request_model). */
typedef struct ms_metrics_family {
    const char *name, *unit, *description;
    enum ms_metric_kind kind;   /* SUM: a monotonic counter */
    int integer;                /* values are counts (as_int), else dollars (as_double) */
    const double *bounds;       /* HISTOGRAM: explicit bounds, nb of them */
    size_t nb;
    const char *const *keys;    /* attribute keys, NULL-terminated */
} ms_metrics_family;

/* One series. attrs[i] is the value of keys[i], p NULL when absent (no
 * error.type on a call that succeeded); the series that takes label sets
 * past MS_METRICS_MAX_SERIES has every value "_other". A
 * histogram's buckets are per bucket, not cumulative: nb + 1 of them,
 * the last holding what lies above the last bound, summing to count. */
typedef struct ms_metrics_point {
    ms_mstr attrs[MS_METRICS_MAX_LABELS];
    double value;               /* SUM and GAUGE: the value; HISTOGRAM: the sum */
    uint64_t count;
    uint64_t buckets[MS_METRICS_MAX_BOUNDS + 1];
} ms_metrics_point;

/* Called once per family that has series, with all of them (the memory
 * is the registry's, valid during the call). Returns 0 to go on. */
typedef int (*ms_metrics_visit_fn)(void *ud, const ms_metrics_family *f, const ms_metrics_point *pts,
                                   size_t n);

/* Visits every family with series in the order of the exposition, then
 * the writer's queue depth as a GAUGE when a gauge is set, under the
 * registry's lock (fn must not call back into m). Returns 0, fn's first
 * non-zero result, or -1 when memory ran out. */
int ms_metrics_visit(ms_metrics *m, ms_metrics_visit_fn fn, void *ud);

#endif
