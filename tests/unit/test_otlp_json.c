/* ms_otlp_json: a span and its request in OTLP/JSON, compared whole with
 * the trace example of the reference (opentelemetry-proto's JSON rules:
 * hex ids, integer enums, int64 as strings, lowerCamelCase keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ms_otlp_schema.h"
#include "ms_otlp_span.h"

static const ms_otlp_attr EXAMPLE_ATTRS[] = {
    {.key = "gen_ai.operation.name", .key_len = 21, .type = MS_OTLP_STR, .s = "chat", .s_len = 4},
    {.key = "gen_ai.provider.name", .key_len = 20, .type = MS_OTLP_STR, .s = "openai", .s_len = 6},
    {.key = "gen_ai.request.model", .key_len = 20, .type = MS_OTLP_STR, .s = "gpt-4o", .s_len = 6},
    {.key = "gen_ai.usage.input_tokens", .key_len = 25, .type = MS_OTLP_INT, .i = 1200},
    {.key = "gen_ai.usage.output_tokens", .key_len = 26, .type = MS_OTLP_INT, .i = 310},
    {.key = "gen_ai.response.finish_reasons", .key_len = 30, .type = MS_OTLP_STR_ARRAY1, .s = "stop", .s_len = 4},
};

static ms_otlp_span example(void)
{
    return (ms_otlp_span){
        .trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
        .span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
        .name = "chat gpt-4o", .name_len = 11, .kind = MS_OTLP_KIND_CLIENT,
        .start_ns = 1767225600000000000, .end_ns = 1767225601250000000,
        .attrs = EXAMPLE_ATTRS, .nattrs = 6};
}

/* The reference's example, plus the empty events list moonspan always writes. */
static void test_reference_trace_example(void **state)
{
    (void)state;
    ms_otlp_span s = example();
    ms_buf spans = {0}, req = {0};
    ms_otlp_json_span(&spans, &s);
    ms_otlp_kv res[] = {{"service.name", "llm-pipeline"}};
    ms_otlp_json_request(&req, res, 1, &spans);
    assert_false(req.oom);
    const char *want =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
        "\"llm-pipeline\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"moonspan\",\"version\":\"" MOONSPAN_VERSION "\"},"
        "\"schemaUrl\":\"https://opentelemetry.io/schemas/1.41.0\",\"spans\":[{\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\",\"name\":\"chat gpt-4o\",\"kind\":3,"
        "\"startTimeUnixNano\":\"1767225600000000000\",\"endTimeUnixNano\":\"1767225601250000000\","
        "\"attributes\":[{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.provider.name\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}},"
        "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"1200\"}},"
        "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"310\"}},"
        "{\"key\":\"gen_ai.response.finish_reasons\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":"
        "\"stop\"}]}}}],\"events\":[],\"status\":{}}]}]}]}";
    assert_string_equal(req.data, want);
    ms_buf_free(&spans);
    ms_buf_free(&req);
}

/* A child with an error: parentSpanId, status code 2 with its message, an
 * event, doubles, booleans, negative ints, and text that needs escaping
 * or is not UTF-8. A second span is comma-separated. */
static void test_error_child_and_escapes(void **state)
{
    (void)state;
    ms_otlp_attr attrs[] = {
        {.key = "error.type", .key_len = 10, .type = MS_OTLP_STR, .s = "time\"out\n", .s_len = 9},
        {.key = "ratio", .key_len = 5, .type = MS_OTLP_DOUBLE, .d = 0.5},
        {.key = "nan", .key_len = 3, .type = MS_OTLP_DOUBLE, .d = NAN},
        {.key = "hit", .key_len = 3, .type = MS_OTLP_BOOL, .i = 1},
        {.key = "delta", .key_len = 5, .type = MS_OTLP_INT, .i = -7},
        {.key = "bytes", .key_len = 5, .type = MS_OTLP_STR, .s = "a\xff", .s_len = 2},
        {.key = "exception.type", .key_len = 14, .type = MS_OTLP_STR, .s = "timeout", .s_len = 7},
    };
    ms_otlp_event ev = {.name = "exception", .name_len = 9, .time_ns = 5, .attr0 = 6, .nattrs = 1};
    ms_otlp_span s = example();
    s.has_parent = 1;
    memcpy(s.parent_id, (uint8_t[]){0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89}, 8);
    s.kind = MS_OTLP_KIND_INTERNAL;
    s.attrs = attrs;
    s.nattrs = 6;
    s.event_attrs = attrs;
    s.events = &ev;
    s.nevents = 1;
    s.status = MS_OTLP_STATUS_ERROR;
    s.status_msg = "upstream timeout";
    s.status_msg_len = 16;
    ms_buf b = {0};
    ms_otlp_json_span(&b, &s);
    ms_otlp_json_span(&b, &s);
    assert_false(b.oom);
    assert_non_null(strstr(b.data, "\"parentSpanId\":\"abcdef0123456789\",\"name\""));
    assert_non_null(strstr(b.data, "\"kind\":1,"));
    assert_non_null(strstr(b.data, "{\"stringValue\":\"time\\\"out\\n\"}"));
    assert_non_null(strstr(b.data, "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.5}}"));
    assert_non_null(strstr(b.data, "{\"key\":\"nan\",\"value\":{\"doubleValue\":\"NaN\"}}"));
    assert_non_null(strstr(b.data, "{\"key\":\"hit\",\"value\":{\"boolValue\":true}}"));
    assert_non_null(strstr(b.data, "{\"key\":\"delta\",\"value\":{\"intValue\":\"-7\"}}"));
    assert_non_null(strstr(b.data, "{\"stringValue\":\"a\xef\xbf\xbd\"}"));
    assert_non_null(strstr(b.data, "\"events\":[{\"timeUnixNano\":\"5\",\"name\":\"exception\",\"attributes\":"
                                   "[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"timeout\"}}]}]"));
    assert_non_null(strstr(b.data, "\"status\":{\"message\":\"upstream timeout\",\"code\":2}}"));
    assert_non_null(strstr(b.data, "}},{\"traceId\"")); /* the second span after a comma */
    assert_int_equal(b.data[0], '{');
    ms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_trace_example),
        cmocka_unit_test(test_error_child_and_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
