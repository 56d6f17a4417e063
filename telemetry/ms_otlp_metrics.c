/* ms_otlp_metrics — the registry as an ExportMetricsServiceRequest (see
 * ms_otlp_metrics.h). There is only one exported symbol in this file. */
#include "ms_otlp_metrics.h"

#include "ms_otlp_pb.h"
#include "ms_otlp_schema.h"
#include "ms_otlp_span.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

typedef struct encoder {
    const ms_otlp_metrics_opts *o;
    ms_buf items;       /* the Metric messages (or JSON objects) so far */
    int64_t npoints;
} encoder;

/* A point's attributes as ms_otlp_attr (string values), absent ones left out. */
static size_t point_attrs(const ms_metrics_family *f, const ms_metrics_point *p, ms_otlp_attr *out)
{
    size_t n = 0;
    for (size_t i = 0; f->keys[i] && i < MS_METRICS_MAX_LABELS; i++) {
        if (!p->attrs[i].p)
            continue;
        out[n++] = (ms_otlp_attr){.key = f->keys[i], .key_len = strlen(f->keys[i]), .type = MS_OTLP_STR,
                                  .s = p->attrs[i].p, .s_len = p->attrs[i].len};
    }
    return n;
}

/* --- protobuf ---------------------------------------------------------------- */

static void pb_number_point(encoder *e, const ms_metrics_family *f, const ms_metrics_point *p)
{
    ms_buf *b = &e->items;
    size_t dp = ms_pb_begin(b, f->kind == MS_METRIC_GAUGE ? MS_PB_GAUGE_DATA_POINTS : MS_PB_SUM_DATA_POINTS);
    if (f->kind != MS_METRIC_GAUGE)
        ms_pb_fixed64(b, MS_PB_NUMBER_POINT_START_TIME_UNIX_NANO, (uint64_t)e->o->start_ns);
    ms_pb_fixed64(b, MS_PB_NUMBER_POINT_TIME_UNIX_NANO, (uint64_t)e->o->time_ns);
    if (f->integer)
        ms_pb_fixed64(b, MS_PB_NUMBER_POINT_AS_INT, (uint64_t)(int64_t)llround(p->value)); /* sfixed64 */
    else
        ms_pb_double(b, MS_PB_NUMBER_POINT_AS_DOUBLE, p->value);
    ms_otlp_attr a[MS_METRICS_MAX_LABELS];
    size_t na = point_attrs(f, p, a);
    for (size_t i = 0; i < na; i++)
        ms_otlp_proto_attr(b, MS_PB_NUMBER_POINT_ATTRIBUTES, &a[i]);
    ms_pb_end(b, dp);
}

static void pb_histogram_point(encoder *e, const ms_metrics_family *f, const ms_metrics_point *p)
{
    ms_buf *b = &e->items;
    size_t dp = ms_pb_begin(b, MS_PB_HISTOGRAM_DATA_POINTS);
    ms_pb_fixed64(b, MS_PB_HIST_POINT_START_TIME_UNIX_NANO, (uint64_t)e->o->start_ns);
    ms_pb_fixed64(b, MS_PB_HIST_POINT_TIME_UNIX_NANO, (uint64_t)e->o->time_ns);
    ms_pb_fixed64(b, MS_PB_HIST_POINT_COUNT, p->count);
    ms_pb_double(b, MS_PB_HIST_POINT_SUM, p->value);
    /* packed: one length, then the values back to back */
    ms_pb_tag(b, MS_PB_HIST_POINT_BUCKET_COUNTS, MS_PB_LEN);
    ms_pb_varint(b, (f->nb + 1) * 8);
    for (size_t i = 0; i <= f->nb; i++) {
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(p->buckets[i] >> (8 * k));
        ms_buf_add(b, le, 8);
    }
    ms_pb_tag(b, MS_PB_HIST_POINT_EXPLICIT_BOUNDS, MS_PB_LEN);
    ms_pb_varint(b, f->nb * 8);
    for (size_t i = 0; i < f->nb; i++) {
        uint64_t bits;
        memcpy(&bits, &f->bounds[i], sizeof bits);
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(bits >> (8 * k));
        ms_buf_add(b, le, 8);
    }
    ms_otlp_attr a[MS_METRICS_MAX_LABELS];
    size_t na = point_attrs(f, p, a);
    for (size_t i = 0; i < na; i++)
        ms_otlp_proto_attr(b, MS_PB_HIST_POINT_ATTRIBUTES, &a[i]);
    ms_pb_end(b, dp);
}

static void pb_metric(encoder *e, const ms_metrics_family *f, const ms_metrics_point *pts, size_t n)
{
    ms_buf *b = &e->items;
    size_t m = ms_pb_begin(b, MS_PB_SCOPE_SPANS_SPANS); /* ScopeMetrics.metrics, the same number */
    ms_pb_str(b, MS_PB_METRIC_NAME, f->name);
    ms_pb_str(b, MS_PB_METRIC_DESCRIPTION, f->description);
    ms_pb_str(b, MS_PB_METRIC_UNIT, f->unit);
    uint32_t field = f->kind == MS_METRIC_HISTOGRAM ? MS_PB_METRIC_HISTOGRAM
                     : f->kind == MS_METRIC_GAUGE ? MS_PB_METRIC_GAUGE : MS_PB_METRIC_SUM;
    size_t data = ms_pb_begin(b, field);
    for (size_t i = 0; i < n; i++) {
        if (f->kind == MS_METRIC_HISTOGRAM)
            pb_histogram_point(e, f, &pts[i]);
        else
            pb_number_point(e, f, &pts[i]);
    }
    if (f->kind != MS_METRIC_GAUGE)
        ms_pb_uint(b, MS_PB_SUM_AGGREGATION_TEMPORALITY, MS_OTLP_TEMPORALITY_CUMULATIVE);
    if (f->kind == MS_METRIC_SUM)
        ms_pb_uint(b, MS_PB_SUM_IS_MONOTONIC, 1);
    ms_pb_end(b, data);
    ms_pb_end(b, m);
}

/* --- OTLP/JSON ----------------------------------------------------------------- */

/* A double as a JSON number; NaN and infinities as proto3 JSON's strings. */
static void json_double(ms_buf *b, double v)
{
    if (isnan(v))
        ms_buf_adds(b, "\"NaN\"");
    else if (isinf(v))
        ms_buf_adds(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        ms_json_num(b, v);
}

static void json_point_head(encoder *e, const ms_metrics_family *f, const ms_metrics_point *p, int start)
{
    ms_buf *b = &e->items;
    ms_otlp_attr a[MS_METRICS_MAX_LABELS];
    size_t na = point_attrs(f, p, a);
    ms_buf_addc(b, '{');
    ms_otlp_json_attrs(b, a, na);
    if (start) {
        ms_buf_adds(b, ",\"startTimeUnixNano\":");
        ms_otlp_json_i64(b, e->o->start_ns);
    }
    ms_buf_adds(b, ",\"timeUnixNano\":");
    ms_otlp_json_i64(b, e->o->time_ns);
}

static void json_metric(encoder *e, const ms_metrics_family *f, const ms_metrics_point *pts, size_t n)
{
    ms_buf *b = &e->items;
    if (b->len)
        ms_buf_addc(b, ',');
    ms_buf_adds(b, "{\"name\":");
    ms_json_str(b, f->name, strlen(f->name));
    ms_buf_adds(b, ",\"description\":");
    ms_json_str(b, f->description, strlen(f->description));
    ms_buf_adds(b, ",\"unit\":");
    ms_json_str(b, f->unit, strlen(f->unit));
    ms_buf_adds(b, f->kind == MS_METRIC_HISTOGRAM ? ",\"histogram\":{\"dataPoints\":["
                   : f->kind == MS_METRIC_GAUGE ? ",\"gauge\":{\"dataPoints\":[" : ",\"sum\":{\"dataPoints\":[");
    for (size_t i = 0; i < n; i++) {
        const ms_metrics_point *p = &pts[i];
        if (i)
            ms_buf_addc(b, ',');
        json_point_head(e, f, p, f->kind != MS_METRIC_GAUGE);
        if (f->kind == MS_METRIC_HISTOGRAM) {
            ms_buf_adds(b, ",\"count\":");
            ms_otlp_json_i64(b, (int64_t)p->count);
            ms_buf_adds(b, ",\"sum\":");
            json_double(b, p->value);
            ms_buf_adds(b, ",\"bucketCounts\":[");
            for (size_t k = 0; k <= f->nb; k++) {
                if (k)
                    ms_buf_addc(b, ',');
                ms_otlp_json_i64(b, (int64_t)p->buckets[k]);
            }
            ms_buf_adds(b, "],\"explicitBounds\":[");
            for (size_t k = 0; k < f->nb; k++) {
                if (k)
                    ms_buf_addc(b, ',');
                json_double(b, f->bounds[k]);
            }
            ms_buf_addc(b, ']');
        } else if (f->integer) {
            ms_buf_adds(b, ",\"asInt\":");
            ms_otlp_json_i64(b, (int64_t)llround(p->value));
        } else {
            ms_buf_adds(b, ",\"asDouble\":");
            json_double(b, p->value);
        }
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    if (f->kind != MS_METRIC_GAUGE)
        ms_buf_printf(b, ",\"aggregationTemporality\":%d", MS_OTLP_TEMPORALITY_CUMULATIVE);
    if (f->kind == MS_METRIC_SUM)
        ms_buf_adds(b, ",\"isMonotonic\":true");
    ms_buf_adds(b, "}}");
}

static int on_family(void *ud, const ms_metrics_family *f, const ms_metrics_point *pts, size_t n)
{
    encoder *e = ud;
    if (e->o->json)
        json_metric(e, f, pts, n);
    else
        pb_metric(e, f, pts, n);
    e->npoints += (int64_t)n;
    return e->items.oom ? -1 : 0;
}

int ms_otlp_metrics_encode(ms_metrics *m, const ms_otlp_metrics_opts *o, ms_buf *out, int64_t *npoints)
{
    encoder e = {.o = o};
    *npoints = 0;
    int rc = ms_metrics_visit(m, on_family, &e);
    if (rc == 0) {
        if (o->json)
            ms_otlp_json_envelope(out, MS_OTLP_METRICS, o->resource, o->nresource, &e.items);
        else
            ms_otlp_proto_request(out, o->resource, o->nresource, &e.items);
        *npoints = e.npoints;
    }
    ms_buf_free(&e.items);
    return rc || out->oom ? -1 : 0;
}
