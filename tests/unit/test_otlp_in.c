/* Unit tests for telemetry/ms_otlp_in.c (OTLP protobuf into trace buffers)
 * and telemetry/ms_otlp_in_json.c (OTLP/JSON to that protobuf). Requests are
 * written as OTLP/JSON and transcoded, except where the protobuf bytes
 * themselves are the point. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ms_clock.h"
#include "ms_otlp_in.h"
#include "ms_otlp_in_json.h"

#define MAX_TRACES 8

/* A sink that keeps what it is given. */
typedef struct keep {
    ms_trace traces[MAX_TRACES];
    int n;
} keep;

static ms_trace *acquire(void *ud)
{
    keep *k = ud;
    return k->n < MAX_TRACES ? &k->traces[k->n] : NULL;
}

static void submit(void *ud, ms_trace *t)
{
    keep *k = ud;
    assert_ptr_equal(t, &k->traces[k->n]);
    k->n++;
}

static void keep_free(keep *k)
{
    for (int i = 0; i < MAX_TRACES; i++)
        ms_trace_free(&k->traces[i]);
    free(k);
}

/* Transcodes `json` and ingests it; returns the ingest's result code. */
static int ingest_json(const char *json, const ms_prices *prices, keep *k, ms_otlp_result *res)
{
    ms_buf pb = {0};
    char err[256];
    if (ms_otlp_in_json_to_protobuf(json, strlen(json), &pb, err, sizeof err) != 0)
        fail_msg("transcoding failed: %s", err);
    ms_otlp_sink sink = {acquire, submit, k};
    int rc = ms_otlp_traces_ingest((const uint8_t *)pb.data, pb.len, prices, &sink, res);
    ms_buf_free(&pb);
    return rc;
}

static const char *span_name(const ms_trace *t, uint32_t gidx)
{
    return ms_trace_str(t, ms_trace_span(t, gidx)->name);
}

/* the attribute `key` of span gidx, or NULL */
static const ms_attr *find_attr(const ms_trace *t, uint32_t gidx, const char *key)
{
    for (uint32_t a = ms_trace_span(t, gidx)->attrs; a != MS_NONE; a = t->attrs[a].next)
        if (!strcmp(ms_trace_str(t, t->attrs[a].key), key))
            return &t->attrs[a];
    return NULL;
}

#define T0 "17672256000"
#define TRACE "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\""
#define REQ(spans) "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":" \
                   "{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"spans\":[" spans "]}]}]}"

static void test_tree_ids_and_times(void **state)
{
    (void)state;
    ms_clock_init();
    keep *k = calloc(1, sizeof *k);
    ms_otlp_result res;
    /* the child comes first on the wire; the grandchild's parent is the child */
    int rc = ingest_json(REQ(
        "{" TRACE ",\"spanId\":\"0000000000000002\",\"parentSpanId\":\"0000000000000001\",\"name\":\"child\","
        "\"kind\":3,\"startTimeUnixNano\":\"" T0 "10000000\",\"endTimeUnixNano\":\"" T0 "20000000\"},"
        "{" TRACE ",\"spanId\":\"0000000000000001\",\"name\":\"root\","
        "\"startTimeUnixNano\":\"" T0 "00000001\",\"endTimeUnixNano\":\"" T0 "90000000\"},"
        "{" TRACE ",\"spanId\":\"0000000000000003\",\"parentSpanId\":\"0000000000000002\",\"name\":\"grandchild\","
        "\"startTimeUnixNano\":\"" T0 "11000000\",\"endTimeUnixNano\":\"" T0 "12000000\"}"), NULL, k, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(k->n, 1);
    assert_int_equal(res.spans, 3);
    assert_int_equal(res.rejected, 0);
    ms_trace *t = &k->traces[0];
    assert_int_equal(atomic_load(&t->state), MS_TRACE_ENDED);
    assert_int_equal(t->nspans, 3);
    assert_string_equal(span_name(t, 0), "root");
    assert_string_equal(span_name(t, 1), "child");
    assert_string_equal(span_name(t, 2), "grandchild");
    assert_int_equal(ms_trace_span(t, 1)->parent, 0);
    assert_int_equal(ms_trace_span(t, 2)->parent, 1);
    assert_int_equal(t->ids[0], 1);
    assert_int_equal(t->ids[1], 2);
    assert_int_equal(t->ids[2], 3);
    assert_int_equal(t->salt, 0);
    assert_int_equal(t->remote_parent, 0);
    /* times exact to the nanosecond, back through the store's conversion */
    assert_int_equal(ms_mono_to_epoch(t->start), INT64_C(1767225600000000001));
    assert_int_equal(ms_mono_to_epoch(ms_trace_span(t, 1)->end), INT64_C(1767225600020000000));
    assert_string_equal(ms_trace_str(t, find_attr(t, 0, "service.name")->v.s), "svc");
    assert_string_equal(ms_trace_str(t, find_attr(t, 1, "span.kind")->v.s), "client");
    assert_null(find_attr(t, 0, "span.kind")); /* INTERNAL says nothing */
    keep_free(k);
}

static void test_llm_mapping(void **state)
{
    (void)state;
    ms_prices *prices;
    assert_int_equal(ms_prices_new(&prices), 0);
    char err[256];
    assert_int_equal(ms_prices_load_text(prices, "acme-chat  2.00  8.00  1.00  4.00\n", "t", err, sizeof err), 0);
    keep *k = calloc(1, sizeof *k);
    ms_otlp_result res;
#define A(k, v) "{\"key\":\"" k "\",\"value\":" v "}"
    int rc = ingest_json(REQ(
        "{" TRACE ",\"spanId\":\"0000000000000001\",\"name\":\"root\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "90000000\"},"
        "{" TRACE ",\"spanId\":\"0000000000000002\",\"parentSpanId\":\"0000000000000001\",\"name\":\"chat\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "50000000\",\"attributes\":["
        A("gen_ai.operation.name", "{\"stringValue\":\"chat\"}") ","
        A("gen_ai.request.model", "{\"stringValue\":\"acme-chat\"}") ","
        A("gen_ai.usage.input_tokens", "{\"intValue\":\"1000\"}") ","
        A("gen_ai.usage.output_tokens", "{\"intValue\":100}") ","
        A("gen_ai.usage.cache_read.input_tokens", "{\"intValue\":\"300\"}") ","
        A("gen_ai.usage.cache_creation.input_tokens", "{\"intValue\":\"200\"}") ","
        A("gen_ai.response.time_to_first_chunk", "{\"doubleValue\":0.125}") "]},"
        "{" TRACE ",\"spanId\":\"0000000000000003\",\"parentSpanId\":\"0000000000000001\",\"name\":\"tool\","
        "\"startTimeUnixNano\":\"" T0 "50000000\",\"endTimeUnixNano\":\"" T0 "60000000\",\"attributes\":["
        A("gen_ai.operation.name", "{\"stringValue\":\"execute_tool\"}") ","
        A("gen_ai.request.model", "{\"stringValue\":\"acme-chat\"}") "],"
        "\"status\":{\"code\":2,\"message\":\"tool broke\"},\"events\":[{\"name\":\"exception\","
        "\"timeUnixNano\":\"" T0 "55000000\",\"attributes\":["
        A("exception.type", "{\"stringValue\":\"KeyError\"}") ","
        A("exception.stacktrace", "{\"stringValue\":\"at tool.py:3\"}") "]}]}"), prices, k, &res);
    assert_int_equal(rc, 0);
    ms_trace *t = &k->traces[0];
    const ms_span *chat = ms_trace_span(t, 1), *tool = ms_trace_span(t, 2);
    assert_int_equal(chat->kind, MS_KIND_LLM);
    const ms_llm *l = &t->llm[chat->llm];
    assert_string_equal(ms_trace_str(t, l->model), "acme-chat");
    assert_int_equal(l->input, 500); /* 1000 - 300 read - 200 written */
    assert_int_equal(l->output, 100);
    assert_int_equal(l->cache_read, 300);
    assert_int_equal(l->cache_write, 200);
    assert_int_equal(l->estimated, 0);
    assert_true(fabs(l->cost_usd - (500 * 2.0 + 100 * 8.0 + 300 * 1.0 + 200 * 4.0) / 1e6) < 1e-15);
    assert_int_equal(l->ttft_ns, 125000000);
    /* a tool naming a model is still a tool */
    assert_int_equal(tool->kind, MS_KIND_SPAN);
    assert_int_equal(tool->status, MS_STATUS_ERROR);
    const ms_span_error *e = &t->errors[tool->error];
    assert_string_equal(ms_trace_str(t, e->type), "KeyError");
    assert_string_equal(ms_trace_str(t, e->message), "tool broke");
    assert_string_equal(ms_trace_str(t, e->traceback), "at tool.py:3");
    assert_int_equal(t->nevents, 1);
    assert_string_equal(ms_trace_str(t, t->events[0].name), "exception");
    keep_free(k);
    ms_prices_free(prices);
}

static void test_rejects_and_rows(void **state)
{
    (void)state;
    keep *k = calloc(1, sizeof *k);
    ms_otlp_result res;
    int rc = ingest_json(REQ(
        /* a parent elsewhere: a row of its own with the parent kept */
        "{" TRACE ",\"spanId\":\"0000000000000005\",\"parentSpanId\":\"00000000000000aa\",\"name\":\"part\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "10000000\"},"
        /* a second root of the same trace: another row */
        "{" TRACE ",\"spanId\":\"0000000000000006\",\"name\":\"other\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "10000000\"},"
        /* the same id again, no name, backwards, a short span id: rejected */
        "{" TRACE ",\"spanId\":\"0000000000000006\",\"name\":\"again\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "10000000\"},"
        "{" TRACE ",\"spanId\":\"0000000000000007\",\"name\":\"\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "10000000\"},"
        "{" TRACE ",\"spanId\":\"0000000000000008\",\"name\":\"backwards\","
        "\"startTimeUnixNano\":\"" T0 "10000000\",\"endTimeUnixNano\":\"" T0 "00000000\"},"
        "{" TRACE ",\"spanId\":\"0001\",\"name\":\"short id\","
        "\"startTimeUnixNano\":\"" T0 "00000000\",\"endTimeUnixNano\":\"" T0 "10000000\"}"), NULL, k, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(k->n, 2);
    assert_int_equal(res.traces, 2);
    assert_int_equal(res.spans, 2);
    assert_int_equal(res.rejected, 4);
    assert_string_equal(res.message, "a span without a name"); /* the first met, in wire order */
    int part = strcmp(span_name(&k->traces[0], 0), "part") == 0 ? 0 : 1;
    assert_string_equal(span_name(&k->traces[part], 0), "part");
    assert_int_equal(k->traces[part].remote_parent, 0xaa);
    assert_string_equal(span_name(&k->traces[1 - part], 0), "other");
    keep_free(k);
}

static void test_malformed_protobuf_submits_nothing(void **state)
{
    (void)state;
    /* resource_spans whose length runs past the end; a group wire type; a span
     * whose name field says varint */
    static const uint8_t cut[] = {0x0a, 0x10, 0x12, 0x02};
    static const uint8_t group[] = {0x0b};
    static const uint8_t varint_name[] = {0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0x28, 0x01};
    const struct { const uint8_t *p; size_t n; } bodies[] = {{cut, sizeof cut}, {group, sizeof group},
                                                           {varint_name, sizeof varint_name}};
    for (size_t i = 0; i < 3; i++) {
        keep *k = calloc(1, sizeof *k);
        ms_otlp_sink sink = {acquire, submit, k};
        ms_otlp_result res;
        assert_int_equal(ms_otlp_traces_ingest(bodies[i].p, bodies[i].n, NULL, &sink, &res), -1);
        assert_int_equal(k->n, 0);
        assert_true(res.message[0] != 0);
        keep_free(k);
    }
    /* an empty request is a request with no spans */
    keep *k = calloc(1, sizeof *k);
    ms_otlp_sink sink = {acquire, submit, k};
    ms_otlp_result res;
    assert_int_equal(ms_otlp_traces_ingest((const uint8_t *)"", 0, NULL, &sink, &res), 0);
    assert_int_equal(k->n, 0);
    keep_free(k);
}

static void json_fails(const char *json, const char *why)
{
    ms_buf out = {0};
    char err[256] = "";
    int rc = ms_otlp_in_json_to_protobuf(json, strlen(json), &out, err, sizeof err);
    ms_buf_free(&out);
    if (rc != -1)
        fail_msg("accepted: %s", json);
    if (!strstr(err, why))
        fail_msg("for %s: \"%s\" does not say \"%s\"", json, err, why);
}

static void test_json_strict(void **state)
{
    (void)state;
    json_fails("{\"resourceSpans\":[],}", "expected a string");
    json_fails("{\"resourceSpans\":[]} x", "text after the request object");
    json_fails("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\\ud800\"}]}]}]}", "lone high surrogate");
    json_fails("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\nb\"}]}]}]}", "control character");
    json_fails("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"xyz1\"}]}]}]}", "not hex");
    json_fails("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":1.5}]}]}]}", "whole number");
    json_fails("{\"resourceSpans\":{}}", "expected an array");
    /* the separators, in the fields read and in the ones skipped */
    json_fails("{\"resourceSpans\":[{} {}]}", "expected ',' or ']'");
    json_fails("{\"resourceSpans\":[] \"x\":1}", "expected ',' or '}'");
    json_fails("{\"unknown\":[1 2]}", "expected ',' or ']'");
    json_fails("{\"unknown\":{\"a\":1 \"b\":2}}", "expected ',' or '}'");
    json_fails("{\"unknown\":{\"a\" 1}}", "expected ':'");
    json_fails("{\"unknown\":[1,", "the body ends where a value should be");
    char deep[400];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"x\":");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = 0;
    json_fails(deep, "nesting too deep");
    /* unknown keys and nulls are ignored; snake_case is accepted */
    ms_buf out = {0};
    char err[256];
    const char *ok = "{\"resource_spans\":[{\"unknown\":{\"a\":[1,2,{\"b\":null}]},\"resource\":null}]}";
    assert_int_equal(ms_otlp_in_json_to_protobuf(ok, strlen(ok), &out, err, sizeof err), 0);
    /* one resource_spans (field 1) holding nothing: 0a, then the padded length 0 */
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "\x0a\x80\x80\x80\x80\x00", 6);
    ms_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_ids_and_times),
        cmocka_unit_test(test_llm_mapping),
        cmocka_unit_test(test_rejects_and_rows),
        cmocka_unit_test(test_malformed_protobuf_submits_nothing),
        cmocka_unit_test(test_json_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
