/* ms_otlp_metrics and ms_otlp_logs: the ExportMetricsServiceRequest of a
 * registry with known observations and the log records of a span, read
 * back field by field (protobuf with ms_pb_next, JSON as text), against
 * the numbers of opentelemetry-proto's metrics.proto and logs.proto. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_metrics.h"
#include "ms_otlp_logs.h"
#include "ms_otlp_metrics.h"
#include "ms_otlp_pb.h"

/* The n-th (from 0) field `number` of message [p, p + len); fails the test when absent. */
static ms_pb_field field(const uint8_t *p, size_t len, uint32_t number, int nth)
{
    const uint8_t *end = p + len;
    ms_pb_field f;
    int rc;
    while ((rc = ms_pb_next(&p, end, &f)) == 1)
        if (f.number == number && nth-- == 0)
            return f;
    assert_int_equal(rc, 0);
    fail_msg("field %u not found", number);
    return f;
}

static int count(const uint8_t *p, size_t len, uint32_t number)
{
    const uint8_t *end = p + len;
    ms_pb_field f;
    int n = 0;
    while (ms_pb_next(&p, end, &f) == 1)
        n += f.number == number;
    return n;
}

static int has(const uint8_t *p, size_t len, uint32_t number) { return count(p, len, number) > 0; }

static int str_is(ms_pb_field f, const char *s)
{
    return f.wire == MS_PB_LEN && f.len == strlen(s) && memcmp(f.p, s, f.len) == 0;
}

static double as_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* The value of string attribute `key` among the KeyValue fields `number` of a message; NULL-len 0 when absent. */
static ms_pb_field attr(const uint8_t *p, size_t len, uint32_t number, const char *key)
{
    int n = count(p, len, number);
    for (int i = 0; i < n; i++) {
        ms_pb_field kv = field(p, len, number, i);
        if (str_is(field(kv.p, kv.len, MS_PB_KEY_VALUE_KEY, 0), key))
            return field(kv.p, kv.len, MS_PB_KEY_VALUE_VALUE, 0);
    }
    fail_msg("no attribute %s", key);
    return (ms_pb_field){0};
}

static int attr_str_is(const uint8_t *p, size_t len, uint32_t number, const char *key, const char *want)
{
    ms_pb_field any = attr(p, len, number, key);
    return str_is(field(any.p, any.len, MS_PB_ANY_STRING, 0), want);
}

/* The Metric named `name` in an ExportMetricsServiceRequest. */
static ms_pb_field metric(const ms_buf *body, const char *name)
{
    ms_pb_field rm = field((const uint8_t *)body->data, body->len, 1, 0);
    ms_pb_field sm = field(rm.p, rm.len, 2, 0);
    int n = count(sm.p, sm.len, 2);
    for (int i = 0; i < n; i++) {
        ms_pb_field m = field(sm.p, sm.len, 2, i);
        if (str_is(field(m.p, m.len, MS_PB_METRIC_NAME, 0), name))
            return m;
    }
    fail_msg("no metric %s", name);
    return (ms_pb_field){0};
}

static ms_metrics *registry(void)
{
    ms_metrics *m = ms_metrics_new();
    assert_non_null(m);
    ms_metrics_lock(m);
    ms_metrics_request(m, (ms_mstr){"answer", 6}, 1500000000, "ok");
    ms_metrics_llm c = {.provider = {"anthropic", 9}, .request_model = {"claude-sonnet-4", 15},
                        .model = {"claude-sonnet-4-20250514", 24}, .duration_ns = 500000000,
                        .input = 100, .output = 20, .cache_read = 30, .cache_write = 10, .cost_usd = 0.0123,
                        .ttft_ns = 250000000};
    ms_metrics_llm_call(m, &c);
    ms_metrics_llm slow = c; /* above the last bound, 81.92 s: the overflow bucket */
    slow.duration_ns = 100000000000;
    slow.cost_usd = NAN;
    slow.ttft_ns = -1;
    ms_metrics_llm_call(m, &slow);
    ms_metrics_error(m, (ms_mstr){"bad_json", 8});
    ms_metrics_retries(m, 3);
    ms_metrics_unlock(m);
    return m;
}

static const ms_otlp_kv RESOURCE[] = {{"service.name", "svc"}};

static void test_metrics_protobuf(void **state)
{
    (void)state;
    ms_metrics *m = registry();
    ms_otlp_metrics_opts o = {.resource = RESOURCE, .nresource = 1, .start_ns = 1000, .time_ns = 2000};
    ms_buf body = {0};
    int64_t points;
    assert_int_equal(ms_otlp_metrics_encode(m, &o, &body, &points), 0);
    /* request 1 + requests 1 + op duration 1 + ttft 1 + tokens 2 + cost 1 + errors 1 + retries 1 */
    assert_int_equal(points, 9);
    ms_pb_field rm = field((const uint8_t *)body.data, body.len, 1, 0);
    ms_pb_field res = field(rm.p, rm.len, 1, 0);
    assert_true(attr_str_is(res.p, res.len, MS_PB_RESOURCE_ATTRIBUTES, "service.name", "svc"));
    ms_pb_field sm = field(rm.p, rm.len, 2, 0);
    assert_true(str_is(field(field(sm.p, sm.len, 1, 0).p, field(sm.p, sm.len, 1, 0).len, 1, 0), "moonspan"));
    assert_true(str_is(field(sm.p, sm.len, 3, 0), MS_OTLP_SCHEMA_URL));
    assert_int_equal(count(sm.p, sm.len, 2), 8);

    /* the GenAI duration histogram: unit, cumulative, times, count, sum, buckets, bounds */
    ms_pb_field d = metric(&body, "gen_ai.client.operation.duration");
    assert_true(str_is(field(d.p, d.len, MS_PB_METRIC_UNIT, 0), "s"));
    ms_pb_field h = field(d.p, d.len, MS_PB_METRIC_HISTOGRAM, 0);
    assert_int_equal(field(h.p, h.len, MS_PB_HISTOGRAM_AGGREGATION_TEMPORALITY, 0).v, 2);
    ms_pb_field dp = field(h.p, h.len, MS_PB_HISTOGRAM_DATA_POINTS, 0);
    assert_int_equal(count(h.p, h.len, MS_PB_HISTOGRAM_DATA_POINTS), 1);
    assert_int_equal(field(dp.p, dp.len, MS_PB_HIST_POINT_START_TIME_UNIX_NANO, 0).v, 1000);
    assert_int_equal(field(dp.p, dp.len, MS_PB_HIST_POINT_TIME_UNIX_NANO, 0).v, 2000);
    ms_pb_field cnt = field(dp.p, dp.len, MS_PB_HIST_POINT_COUNT, 0);
    assert_int_equal(cnt.wire, MS_PB_FIXED64);
    assert_int_equal(cnt.v, 2);
    assert_true(fabs(as_double(field(dp.p, dp.len, MS_PB_HIST_POINT_SUM, 0).v) - 100.5) < 1e-9);
    ms_pb_field bc = field(dp.p, dp.len, MS_PB_HIST_POINT_BUCKET_COUNTS, 0);
    ms_pb_field eb = field(dp.p, dp.len, MS_PB_HIST_POINT_EXPLICIT_BOUNDS, 0);
    assert_int_equal(eb.len, 14 * 8);
    assert_int_equal(bc.len, 15 * 8);
    uint64_t buckets[15];
    for (int i = 0; i < 15; i++) {
        buckets[i] = 0;
        for (int k = 0; k < 8; k++)
            buckets[i] |= (uint64_t)bc.p[8 * i + k] << (8 * k);
    }
    uint64_t bound6 = 0;
    for (int k = 0; k < 8; k++)
        bound6 |= (uint64_t)eb.p[8 * 6 + k] << (8 * k);
    assert_true(as_double(bound6) == 0.64);
    for (int i = 0; i < 15; i++) /* 0.5 s in (0.32, 0.64]; 100 s above 81.92 */
        assert_int_equal(buckets[i], i == 6 || i == 14 ? 1 : 0);
    assert_true(attr_str_is(dp.p, dp.len, MS_PB_HIST_POINT_ATTRIBUTES, "gen_ai.operation.name", "chat"));
    assert_true(attr_str_is(dp.p, dp.len, MS_PB_HIST_POINT_ATTRIBUTES, "gen_ai.provider.name", "anthropic"));
    assert_true(attr_str_is(dp.p, dp.len, MS_PB_HIST_POINT_ATTRIBUTES, "gen_ai.request.model", "claude-sonnet-4"));
    assert_true(attr_str_is(dp.p, dp.len, MS_PB_HIST_POINT_ATTRIBUTES, "gen_ai.response.model",
                            "claude-sonnet-4-20250514"));
    assert_int_equal(count(dp.p, dp.len, MS_PB_HIST_POINT_ATTRIBUTES), 4); /* no error.type: it succeeded */

    /* tokens: {token}, one series per type, input with the cache */
    ms_pb_field t = metric(&body, "gen_ai.client.token.usage");
    assert_true(str_is(field(t.p, t.len, MS_PB_METRIC_UNIT, 0), "{token}"));
    ms_pb_field th = field(t.p, t.len, MS_PB_METRIC_HISTOGRAM, 0);
    assert_int_equal(count(th.p, th.len, MS_PB_HISTOGRAM_DATA_POINTS), 2);
    for (int i = 0; i < 2; i++) {
        ms_pb_field p = field(th.p, th.len, MS_PB_HISTOGRAM_DATA_POINTS, i);
        double sum = as_double(field(p.p, p.len, MS_PB_HIST_POINT_SUM, 0).v);
        if (attr_str_is(p.p, p.len, MS_PB_HIST_POINT_ATTRIBUTES, "gen_ai.token.type", "input"))
            assert_true(sum == 280); /* (100 + 30 + 10) twice */
        else
            assert_true(attr_str_is(p.p, p.len, MS_PB_HIST_POINT_ATTRIBUTES, "gen_ai.token.type", "output") &&
                        sum == 40);
    }

    /* counters: monotonic cumulative sums, counts as_int (sfixed64), dollars as_double */
    ms_pb_field e = metric(&body, "moonspan.errors");
    assert_true(str_is(field(e.p, e.len, MS_PB_METRIC_UNIT, 0), "{error}"));
    ms_pb_field es = field(e.p, e.len, MS_PB_METRIC_SUM, 0);
    assert_int_equal(field(es.p, es.len, MS_PB_SUM_IS_MONOTONIC, 0).v, 1);
    assert_int_equal(field(es.p, es.len, MS_PB_SUM_AGGREGATION_TEMPORALITY, 0).v, 2);
    ms_pb_field ep = field(es.p, es.len, MS_PB_SUM_DATA_POINTS, 0);
    ms_pb_field ei = field(ep.p, ep.len, MS_PB_NUMBER_POINT_AS_INT, 0);
    assert_int_equal(ei.wire, MS_PB_FIXED64);
    assert_int_equal(ei.v, 1);
    assert_false(has(ep.p, ep.len, MS_PB_NUMBER_POINT_AS_DOUBLE));
    assert_int_equal(field(ep.p, ep.len, MS_PB_NUMBER_POINT_START_TIME_UNIX_NANO, 0).v, 1000);
    assert_true(attr_str_is(ep.p, ep.len, MS_PB_NUMBER_POINT_ATTRIBUTES, "error.type", "bad_json"));
    ms_pb_field c = metric(&body, "moonspan.cost.usd");
    ms_pb_field cs = field(c.p, c.len, MS_PB_METRIC_SUM, 0);
    ms_pb_field cp = field(cs.p, cs.len, MS_PB_SUM_DATA_POINTS, 0);
    assert_true(as_double(field(cp.p, cp.len, MS_PB_NUMBER_POINT_AS_DOUBLE, 0).v) == 0.0123); /* unpriced left out */
    ms_pb_field r = metric(&body, "moonspan.retries");
    ms_pb_field rs = field(r.p, r.len, MS_PB_METRIC_SUM, 0);
    ms_pb_field rp = field(rs.p, rs.len, MS_PB_SUM_DATA_POINTS, 0);
    assert_int_equal(field(rp.p, rp.len, MS_PB_NUMBER_POINT_AS_INT, 0).v, 3);
    assert_false(has(rp.p, rp.len, MS_PB_NUMBER_POINT_ATTRIBUTES));
    ms_buf_free(&body);
    ms_metrics_free(m);
}

static void test_metrics_json(void **state)
{
    (void)state;
    ms_metrics *m = registry();
    ms_otlp_metrics_opts o = {.json = 1, .resource = RESOURCE, .nresource = 1, .start_ns = 1000, .time_ns = 2000};
    ms_buf body = {0};
    int64_t points;
    assert_int_equal(ms_otlp_metrics_encode(m, &o, &body, &points), 0);
    assert_int_equal(points, 9);
    const char *j = body.data;
    assert_non_null(strstr(j, "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                              "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeMetrics\":[{\"scope\":{\"name\":\"moonspan\""));
    assert_non_null(strstr(j, "\"name\":\"moonspan.errors\",\"description\":\"Errors, each counted once where it was "
                              "raised, by type.\",\"unit\":\"{error}\",\"sum\":{\"dataPoints\":[{\"attributes\":[{\"key\":"
                              "\"error.type\",\"value\":{\"stringValue\":\"bad_json\"}}],\"startTimeUnixNano\":\"1000\","
                              "\"timeUnixNano\":\"2000\",\"asInt\":\"1\"}],\"aggregationTemporality\":2,"
                              "\"isMonotonic\":true}"));
    assert_non_null(strstr(j, "\"count\":\"2\",\"sum\":100.5,\"bucketCounts\":[\"0\",\"0\",\"0\",\"0\",\"0\",\"0\",\"1\","
                              "\"0\",\"0\",\"0\",\"0\",\"0\",\"0\",\"0\",\"1\"],\"explicitBounds\":[0.01,0.02,0.04,0.08,"
                              "0.16,0.32,0.64,1.28,2.56,5.12,10.24,20.48,40.96,81.92]"));
    assert_non_null(strstr(j, "\"name\":\"moonspan.cost.usd\""));
    assert_non_null(strstr(j, "\"asDouble\":0.0123"));
    assert_null(strstr(j, "gen_ai_")); /* no Prometheus names */
    ms_buf_free(&body);
    ms_metrics_free(m);
}

static void test_metrics_empty(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    ms_otlp_metrics_opts o = {.resource = RESOURCE, .nresource = 1};
    ms_buf body = {0};
    int64_t points = -1;
    assert_int_equal(ms_otlp_metrics_encode(m, &o, &body, &points), 0);
    assert_int_equal(points, 0);
    ms_buf_free(&body);
    ms_metrics_free(m);
}

static double queue_depth(void *ud) { return *(double *)ud; }

static void test_metrics_gauge(void **state)
{
    (void)state;
    ms_metrics *m = ms_metrics_new();
    double depth = 7;
    ms_metrics_set_queue_gauge(m, queue_depth, &depth);
    ms_otlp_metrics_opts o = {.resource = RESOURCE, .nresource = 1, .start_ns = 1, .time_ns = 5};
    ms_buf body = {0};
    int64_t points;
    assert_int_equal(ms_otlp_metrics_encode(m, &o, &body, &points), 0);
    assert_int_equal(points, 1);
    ms_pb_field q = metric(&body, "moonspan.writer.queue_depth");
    ms_pb_field g = field(q.p, q.len, MS_PB_METRIC_GAUGE, 0);
    ms_pb_field p = field(g.p, g.len, MS_PB_GAUGE_DATA_POINTS, 0);
    assert_int_equal(field(p.p, p.len, MS_PB_NUMBER_POINT_AS_INT, 0).v, 7);
    assert_int_equal(field(p.p, p.len, MS_PB_NUMBER_POINT_TIME_UNIX_NANO, 0).v, 5);
    assert_false(has(p.p, p.len, MS_PB_NUMBER_POINT_START_TIME_UNIX_NANO));
    ms_buf_free(&body);
    ms_metrics_free(m);
}

/* A failed span "parse" with one attribute and the exception event its error made. */
static ms_otlp_span failed_span(ms_otlp_attr *attrs, ms_otlp_attr *ev_attrs, ms_otlp_event *ev)
{
    attrs[0] = (ms_otlp_attr){.key = "k", .key_len = 1, .type = MS_OTLP_INT, .i = 3};
    ev_attrs[0] = (ms_otlp_attr){.key = "exception.type", .key_len = 14, .type = MS_OTLP_STR, .s = "bad_json", .s_len = 8};
    ev_attrs[1] = (ms_otlp_attr){.key = "exception.message", .key_len = 17, .type = MS_OTLP_STR, .s = "bad }", .s_len = 5};
    *ev = (ms_otlp_event){.name = "exception", .name_len = 9, .time_ns = 4500000, .attr0 = 0, .nattrs = 2};
    ms_otlp_span s = {.has_parent = 1, .name = "parse", .name_len = 5, .start_ns = 3000000, .end_ns = 4500000,
                      .status = MS_OTLP_STATUS_ERROR, .ms_status = 1 /* MS_STATUS_ERROR */, .attrs = attrs,
                      .nattrs = 1, .event_attrs = ev_attrs, .events = ev, .nevents = 1};
    for (int i = 0; i < 16; i++)
        s.trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++) {
        s.span_id[i] = (uint8_t)(0xa0 + i);
        s.parent_id[i] = (uint8_t)(0xb0 + i);
    }
    return s;
}

static void test_logs_protobuf(void **state)
{
    (void)state;
    ms_otlp_attr attrs[1], ev_attrs[2];
    ms_otlp_event ev;
    ms_otlp_span s = failed_span(attrs, ev_attrs, &ev);
    ms_otlp_logs lg = {0};
    ms_buf recs = {0}, body = {0};
    assert_int_equal(ms_otlp_logs_of_span(&lg, &recs, 0, &s, 9000000), 2);
    ms_otlp_proto_request(&body, RESOURCE, 1, &recs);
    ms_pb_field rl = field((const uint8_t *)body.data, body.len, 1, 0);
    ms_pb_field sl = field(rl.p, rl.len, 2, 0);
    assert_int_equal(count(sl.p, sl.len, 2), 2);
    for (int i = 0; i < 2; i++) {
        ms_pb_field r = field(sl.p, sl.len, 2, i);
        ms_pb_field tid = field(r.p, r.len, MS_PB_LOG_TRACE_ID, 0), sid = field(r.p, r.len, MS_PB_LOG_SPAN_ID, 0);
        assert_int_equal(tid.len, 16);
        assert_memory_equal(tid.p, s.trace_id, 16);
        assert_int_equal(sid.len, 8);
        assert_memory_equal(sid.p, s.span_id, 8);
        ms_pb_field flags = field(r.p, r.len, MS_PB_LOG_FLAGS, 0);
        assert_int_equal(flags.wire, MS_PB_FIXED32);
        assert_int_equal(flags.v, 1);
        assert_int_equal(field(r.p, r.len, MS_PB_LOG_OBSERVED_TIME_UNIX_NANO, 0).v, 9000000);
        assert_int_equal(field(r.p, r.len, MS_PB_LOG_TIME_UNIX_NANO, 0).v, 4500000);
        ms_pb_field body_any = field(r.p, r.len, MS_PB_LOG_BODY, 0);
        ms_pb_field text = field(body_any.p, body_any.len, MS_PB_ANY_STRING, 0);
        if (i == 0) { /* the span's end: WARN, it failed */
            assert_int_equal(field(r.p, r.len, MS_PB_LOG_SEVERITY_NUMBER, 0).v, 13);
            assert_true(str_is(field(r.p, r.len, MS_PB_LOG_SEVERITY_TEXT, 0), "WARN"));
            assert_true(str_is(field(r.p, r.len, MS_PB_LOG_EVENT_NAME, 0), "moonspan.span.end"));
            assert_true(str_is(text, "parse ended error after 1.500000 ms"));
            assert_true(attr_str_is(r.p, r.len, MS_PB_LOG_ATTRIBUTES, "moonspan.span.parent_id", "b0b1b2b3b4b5b6b7"));
            assert_true(attr_str_is(r.p, r.len, MS_PB_LOG_ATTRIBUTES, "moonspan.span.status", "error"));
            ms_pb_field k = attr(r.p, r.len, MS_PB_LOG_ATTRIBUTES, "k");
            assert_int_equal(field(k.p, k.len, MS_PB_ANY_INT, 0).v, 3);
            ms_pb_field dur = attr(r.p, r.len, MS_PB_LOG_ATTRIBUTES, "moonspan.span.duration_ms");
            assert_true(as_double(field(dur.p, dur.len, MS_PB_ANY_DOUBLE, 0).v) == 1.5);
        } else { /* its error */
            assert_int_equal(field(r.p, r.len, MS_PB_LOG_SEVERITY_NUMBER, 0).v, 17);
            assert_true(str_is(field(r.p, r.len, MS_PB_LOG_SEVERITY_TEXT, 0), "ERROR"));
            assert_true(str_is(field(r.p, r.len, MS_PB_LOG_EVENT_NAME, 0), "moonspan.error"));
            assert_true(str_is(text, "bad }"));
            assert_true(attr_str_is(r.p, r.len, MS_PB_LOG_ATTRIBUTES, "exception.type", "bad_json"));
            assert_true(attr_str_is(r.p, r.len, MS_PB_LOG_ATTRIBUTES, "moonspan.span.name", "parse"));
            assert_int_equal(count(r.p, r.len, MS_PB_LOG_ATTRIBUTES), 3);
        }
    }
    ms_buf_free(&recs);
    ms_buf_free(&body);
    ms_otlp_logs_free(&lg);
}

static void test_logs_json(void **state)
{
    (void)state;
    ms_otlp_attr attrs[1], ev_attrs[2];
    ms_otlp_event ev;
    ms_otlp_span s = failed_span(attrs, ev_attrs, &ev);
    s.name = "bad \xff name\"";
    s.name_len = strlen(s.name);
    ms_otlp_logs lg = {0};
    ms_buf recs = {0}, body = {0};
    assert_int_equal(ms_otlp_logs_of_span(&lg, &recs, 1, &s, 9000000), 2);
    ms_otlp_json_envelope(&body, MS_OTLP_LOGS, RESOURCE, 1, &recs);
    const char *j = body.data;
    assert_non_null(strstr(j, "{\"resourceLogs\":[{\"resource\":"));
    assert_non_null(strstr(j, "\"scopeLogs\":[{\"scope\":{\"name\":\"moonspan\""));
    assert_non_null(strstr(j, "\"logRecords\":[{\"timeUnixNano\":\"4500000\",\"observedTimeUnixNano\":\"9000000\","
                              "\"severityNumber\":13,\"severityText\":\"WARN\",\"eventName\":\"moonspan.span.end\","
                              "\"body\":{\"stringValue\":\"bad \xef\xbf\xbd" " name\\\" ended error after 1.500000 ms\"}"));
    assert_non_null(strstr(j, "\"flags\":1,\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                              "\"spanId\":\"a0a1a2a3a4a5a6a7\"}"));
    assert_non_null(strstr(j, "\"severityNumber\":17,\"severityText\":\"ERROR\",\"eventName\":\"moonspan.error\","
                              "\"body\":{\"stringValue\":\"bad }\"}"));
    ms_buf_free(&recs);
    ms_buf_free(&body);
    ms_otlp_logs_free(&lg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_protobuf), cmocka_unit_test(test_metrics_json),
        cmocka_unit_test(test_metrics_empty),    cmocka_unit_test(test_metrics_gauge),
        cmocka_unit_test(test_logs_protobuf),    cmocka_unit_test(test_logs_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
