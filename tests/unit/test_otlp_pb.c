/* ms_otlp_pb, ms_otlp_proto, ms_gzip: the protobuf bytes the exporter
 * writes, checked against bytes worked out by hand from the protobuf
 * encoding rules (varints, keys, fixed widths, nested lengths). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ms_gzip.h"
#include "ms_otlp_pb.h"
#include "ms_otlp_span.h"

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void expect(ms_buf *b, const uint8_t *want, size_t n)
{
    assert_false(b->oom);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
    ms_buf_reset(b);
}

static void test_varints(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_pb_varint(&b, 0);
    expect(&b, BYTES(0x00));
    ms_pb_varint(&b, 1);
    expect(&b, BYTES(0x01));
    ms_pb_varint(&b, 127);
    expect(&b, BYTES(0x7f));
    ms_pb_varint(&b, 128);
    expect(&b, BYTES(0x80, 0x01));
    ms_pb_varint(&b, 300); /* the protobuf guide's example: 1010 1100 0000 0010 */
    expect(&b, BYTES(0xac, 0x02));
    ms_pb_varint(&b, UINT64_MAX);
    expect(&b, BYTES(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    ms_buf_free(&b);
}

static void test_fields(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_pb_uint(&b, 1, 150); /* key 08, then 150 = 96 01 */
    expect(&b, BYTES(0x08, 0x96, 0x01));
    /* int64 -1: ten bytes, two's complement, no zigzag (proto3 int64) */
    ms_pb_int(&b, 3, -1);
    expect(&b, BYTES(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    /* fixed64 field 7: key (7 << 3) | 1 = 0x39, little-endian */
    ms_pb_fixed64(&b, 7, 0x0102030405060708ull);
    expect(&b, BYTES(0x39, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01));
    /* fixed32 field 16: key (16 << 3) | 5 = 133 = 85 01 */
    ms_pb_fixed32(&b, 16, 0x301);
    expect(&b, BYTES(0x85, 0x01, 0x01, 0x03, 0x00, 0x00));
    /* double 1.0 field 4: 0x3ff0000000000000 little-endian */
    ms_pb_double(&b, 4, 1.0);
    expect(&b, BYTES(0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f));
    ms_pb_str(&b, 2, "testing"); /* the guide's string: 12 07 74 65 73 74 69 6e 67 */
    expect(&b, BYTES(0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'));
    ms_buf_free(&b);
}

static void test_nested_lengths(void **state)
{
    (void)state;
    ms_buf b = {0};
    /* outer{1: "a", 2: inner{1: 150}}: inner is 08 96 01 (3 bytes), so
     * 12 03 08 96 01; outer holds 0a 01 61 and those 5: 8 bytes */
    size_t outer = ms_pb_begin(&b, 1);
    ms_pb_str(&b, 1, "a");
    size_t inner = ms_pb_begin(&b, 2);
    ms_pb_uint(&b, 1, 150);
    ms_pb_end(&b, inner);
    ms_pb_end(&b, outer);
    expect(&b, BYTES(0x0a, 0x08, 0x0a, 0x01, 0x61, 0x12, 0x03, 0x08, 0x96, 0x01));

    /* a message of 200 bytes: its length takes two bytes (c8 01) and the
     * content moves right by one more than the key's byte */
    char s[198];
    memset(s, 'x', sizeof s);
    size_t m = ms_pb_begin(&b, 5);
    ms_pb_bytes(&b, 1, s, sizeof s); /* 0a c6 01 + 198 = 201 bytes */
    ms_pb_end(&b, m);
    assert_int_equal(b.len, 1 + 2 + 201);
    assert_memory_equal(b.data, ((const uint8_t[]){0x2a, 0xc9, 0x01, 0x0a, 0xc6, 0x01, 'x'}), 7);
    assert_int_equal((uint8_t)b.data[b.len - 1], 'x');
    /* an empty message is its key and a zero length */
    ms_buf_reset(&b);
    ms_pb_end(&b, ms_pb_begin(&b, 15));
    expect(&b, BYTES(0x7a, 0x00));
    ms_buf_free(&b);
}

static void test_reader_and_bad_bytes(void **state)
{
    (void)state;
    const uint8_t msg[] = {0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i', 0x39, 1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t *p = msg, *end = msg + sizeof msg;
    ms_pb_field f;
    assert_int_equal(ms_pb_next(&p, end, &f), 1);
    assert_int_equal(f.number, 1);
    assert_int_equal(f.wire, MS_PB_VARINT);
    assert_int_equal(f.v, 150);
    assert_int_equal(ms_pb_next(&p, end, &f), 1);
    assert_int_equal(f.number, 2);
    assert_int_equal(f.len, 2);
    assert_memory_equal(f.p, "hi", 2);
    assert_int_equal(ms_pb_next(&p, end, &f), 1);
    assert_int_equal(f.number, 7);
    assert_int_equal(f.v, 0x0807060504030201ull);
    assert_int_equal(ms_pb_next(&p, end, &f), 0);

    const uint8_t cut_varint[] = {0x08, 0x96};
    p = cut_varint;
    assert_int_equal(ms_pb_next(&p, cut_varint + 2, &f), -1);
    const uint8_t long_len[] = {0x12, 0x05, 'h', 'i'};
    p = long_len;
    assert_int_equal(ms_pb_next(&p, long_len + 4, &f), -1);
    const uint8_t group[] = {0x0b}; /* field 1, wire type 3 (start group) */
    p = group;
    assert_int_equal(ms_pb_next(&p, group + 1, &f), -1);
    const uint8_t field0[] = {0x00, 0x00};
    p = field0;
    assert_int_equal(ms_pb_next(&p, field0 + 2, &f), -1);
}

/* A span walks back field by field: ids as bytes, kind, fixed64 times,
 * attributes as KeyValue{key, AnyValue}, the status, no parent for a root. */
static void test_span_fields(void **state)
{
    (void)state;
    ms_otlp_attr attrs[] = {
        {.key = "gen_ai.usage.input_tokens", .key_len = 25, .type = MS_OTLP_INT, .i = 1200},
        {.key = "gen_ai.response.finish_reasons", .key_len = 30, .type = MS_OTLP_STR_ARRAY1, .s = "stop", .s_len = 4},
    };
    ms_otlp_span s = {.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                                   0x47, 0x36},
                      .span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
                      .name = "chat gpt-4o", .name_len = 11, .kind = MS_OTLP_KIND_CLIENT,
                      .start_ns = 1767225600000000000, .end_ns = 1767225601250000000,
                      .status = MS_OTLP_STATUS_ERROR, .status_msg = "timeout", .status_msg_len = 7,
                      .attrs = attrs, .nattrs = 2};
    ms_buf b = {0};
    ms_otlp_proto_span(&b, &s);
    assert_false(b.oom);
    const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
    ms_pb_field f, g;
    assert_int_equal(ms_pb_next(&p, end, &f), 1);
    assert_int_equal(f.number, MS_PB_SCOPE_SPANS_SPANS);
    assert_true(p == end);
    const uint8_t *q = f.p, *qend = f.p + f.len;
    int seen[17] = {0}, nattrs = 0;
    while (ms_pb_next(&q, qend, &g) == 1) {
        assert_true(g.number < 17);
        seen[g.number]++;
        switch (g.number) {
        case MS_PB_SPAN_TRACE_ID:
            assert_int_equal(g.len, 16);
            assert_memory_equal(g.p, s.trace_id, 16);
            break;
        case MS_PB_SPAN_SPAN_ID:
            assert_int_equal(g.len, 8);
            assert_memory_equal(g.p, s.span_id, 8);
            break;
        case MS_PB_SPAN_NAME:
            assert_int_equal(g.len, 11);
            assert_memory_equal(g.p, "chat gpt-4o", 11);
            break;
        case MS_PB_SPAN_KIND:
            assert_int_equal(g.v, 3);
            break;
        case MS_PB_SPAN_START_TIME_UNIX_NANO:
            assert_int_equal(g.wire, MS_PB_FIXED64);
            assert_int_equal(g.v, 1767225600000000000ull);
            break;
        case MS_PB_SPAN_END_TIME_UNIX_NANO:
            assert_int_equal(g.v, 1767225601250000000ull);
            break;
        case MS_PB_SPAN_ATTRIBUTES:
            nattrs++;
            break;
        case MS_PB_SPAN_STATUS:
            /* message "timeout" (field 2), code 2 (field 3) */
            assert_int_equal(g.len, 11);
            assert_memory_equal(g.p, ((const uint8_t[]){0x12, 0x07, 't', 'i', 'm', 'e', 'o', 'u', 't', 0x18, 0x02}),
                                11);
            break;
        default:
            fail_msg("unexpected span field %u", g.number);
        }
    }
    assert_int_equal(nattrs, 2);
    assert_int_equal(seen[MS_PB_SPAN_PARENT_SPAN_ID], 0);
    assert_int_equal(seen[MS_PB_SPAN_TRACE_ID] + seen[MS_PB_SPAN_SPAN_ID] + seen[MS_PB_SPAN_KIND], 3);
    ms_buf_free(&b);

    /* the int attribute exactly: KeyValue{1: key (2 + 25 bytes), 2: AnyValue{3: 1200 = b0 09}
     * (2 + 3)}: 32 bytes */
    ms_otlp_span one = s;
    one.nattrs = 1;
    one.status = 0;
    one.status_msg_len = 0;
    ms_otlp_proto_span(&b, &one);
    const uint8_t kv[] = {0x4a, 0x20, 0x0a, 0x19, 'g', 'e', 'n', '_', 'a', 'i', '.', 'u', 's', 'a', 'g', 'e', '.', 'i', 'n',
                          'p', 'u', 't', '_', 't', 'o', 'k', 'e', 'n', 's', 0x12, 0x03, 0x18, 0xb0, 0x09};
    assert_non_null(memmem(b.data, b.len, kv, sizeof kv));
    /* an UNSET status is an empty Status message: 7a 00 */
    assert_memory_equal(b.data + b.len - 2, ((const uint8_t[]){0x7a, 0x00}), 2);
    ms_buf_free(&b);
}

static void test_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_otlp_utf8(&b, "a\xff" "b\xc3\xa9", 5);
    expect(&b, BYTES('a', 0xef, 0xbf, 0xbd, 'b', 0xc3, 0xa9));
    ms_otlp_utf8(&b, "\xe2\x82", 2); /* a cut sequence: each byte replaced */
    expect(&b, BYTES(0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd));
    ms_buf_free(&b);
}

static void test_gzip_round_trip(void **state)
{
    (void)state;
    ms_buf in = {0}, out = {0};
    for (int i = 0; i < 1000; i++)
        ms_buf_printf(&in, "span %d ", i);
    assert_int_equal(ms_gzip(in.data, in.len, &out), 0);
    assert_true(out.len < in.len);
    assert_int_equal((uint8_t)out.data[0], 0x1f); /* the gzip magic */
    assert_int_equal((uint8_t)out.data[1], 0x8b);
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    char *back = malloc(in.len + 16);
    z.next_in = (Bytef *)out.data;
    z.avail_in = (uInt)out.len;
    z.next_out = (Bytef *)back;
    z.avail_out = (uInt)(in.len + 16);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, in.len);
    assert_memory_equal(back, in.data, in.len);
    inflateEnd(&z);
    free(back);
    ms_buf_free(&in);
    ms_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varints),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_nested_lengths),
        cmocka_unit_test(test_reader_and_bad_bytes),
        cmocka_unit_test(test_span_fields),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
        cmocka_unit_test(test_gzip_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
