/* ms_fmt: durations for people, and cells that line up when they hold
 * "µs". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ms_fmt.h"

static const char *ms(double v)
{
    static char buf[48];
    return ms_fmt_ms(buf, sizeof buf, v);
}

static void test_milliseconds_and_up_as_before(void **state)
{
    (void)state;
    assert_string_equal(ms(NAN), "-");
    assert_string_equal(ms(1), "1.00 ms");
    assert_string_equal(ms(9.5), "9.50 ms");
    assert_string_equal(ms(25.04), "25.0 ms");
    assert_string_equal(ms(370), "370 ms");
    assert_string_equal(ms(950.5), "950 ms"); /* half to even, as printf */
    assert_string_equal(ms(12500), "12.5 s");
    assert_string_equal(ms(250e3), "250 s");
    assert_string_equal(ms(3.1 * 3600e3), "3.1 h");
    assert_string_equal(ms(-2), "-2.00 ms");
}

/* Where "0.00 ms" said nothing: a 3 µs span prints in µs, a 400 ns one
 * in ns, and a value that rounds up to the next unit takes that unit. */
static void test_below_a_millisecond_the_unit_follows(void **state)
{
    (void)state;
    assert_string_equal(ms(0.25), "250 \xc2\xb5s");
    assert_string_equal(ms(0.0253), "25.3 \xc2\xb5s");
    assert_string_equal(ms(0.003), "3.00 \xc2\xb5s");
    assert_string_equal(ms(0.001), "1.00 \xc2\xb5s");
    assert_string_equal(ms(0.0004), "400 ns");
    assert_string_equal(ms(0.000001), "1 ns");
    assert_string_equal(ms(0), "0 ns");
    assert_string_equal(ms(0.9997), "1.00 ms");
    assert_string_equal(ms(0.0009997), "1.00 \xc2\xb5s");
    assert_string_equal(ms(0.0999), "99.9 \xc2\xb5s");
    assert_string_equal(ms(0.09996), "100 \xc2\xb5s");
}

/* "µ" is two bytes and one column: a printf width would be one short. */
static void test_cells_count_columns_not_bytes(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_fmt_right(&b, ms(0.003), 10);
    ms_buf_addc(&b, '|');
    ms_fmt_left(&b, ms(0.003), 10);
    ms_buf_addc(&b, '|');
    ms_fmt_right(&b, ms(3), 10);
    ms_buf_addc(&b, '|');
    assert_string_equal(b.data, "   3.00 \xc2\xb5s|3.00 \xc2\xb5s   |   3.00 ms|");
    ms_buf_free(&b);
}

/* A missing id or time is null, never 0; a present 0 stays 0. */
static void test_int_or_null(void **state)
{
    (void)state;
    ms_buf b = {0};
    int first = 1;
    ms_buf_addc(&b, '{');
    ms_kv_int_or_null(&b, &first, "run_id", 1, 7);
    ms_kv_int_or_null(&b, &first, "end_ns", 0, 123);
    ms_kv_int_or_null(&b, &first, "zero", 1, 0);
    ms_buf_addc(&b, '}');
    assert_string_equal(b.data, "{\"run_id\":7,\"end_ns\":null,\"zero\":0}");
    ms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_milliseconds_and_up_as_before),
        cmocka_unit_test(test_below_a_millisecond_the_unit_follows),
        cmocka_unit_test(test_cells_count_columns_not_bytes),
        cmocka_unit_test(test_int_or_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
