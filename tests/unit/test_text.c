/* ms_text: what a terminal is shown of text from scripts and servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ms_text.h"

static char *text(const char *s, size_t n, int flags)
{
    static ms_buf b;
    ms_buf_free(&b);
    ms_buf_add_text(&b, s, n, flags);
    return b.data ? b.data : "";
}
#define T(lit, flags) text(lit, sizeof lit - 1, flags)

static void test_terminal_controls_become_visible(void **state)
{
    (void)state;
    /* the title and clear-screen sequences of the hostile-name report */
    assert_string_equal(T("step\x1b]0;pwned\x07\x1b[2J", 0), "step\\x1b]0;pwned\\x07\\x1b[2J");
    assert_string_equal(T("a\tb\rc\nd\x7f", 0), "a\\tb\\rc\\nd\\x7f");
    assert_string_equal(T("a\nb", MS_TEXT_NEWLINES), "a\nb");
    assert_string_equal(T("nul\0x", 0), "nul\\x00x");
}

static void test_unicode_kept_c1_and_bidi_escaped(void **state)
{
    (void)state;
    /* é, 日本, an emoji: unchanged */
    assert_string_equal(T("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 0),
                        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    /* U+009B (8-bit CSI) and U+202E (right-to-left override) */
    assert_string_equal(T("x\xc2\x9b" "2Jy", 0), "x\\u{009b}2Jy");
    assert_string_equal(T("\xe2\x80\xae" "cod.exe", 0), "\\u{202e}cod.exe");
    assert_string_equal(T("\xe2\x81\xa6" "i", 0), "\\u{2066}i");
}

static void test_invalid_utf8_is_shown_byte_by_byte(void **state)
{
    (void)state;
    assert_string_equal(T("a\xff" "b", 0), "a\\xffb");
    assert_string_equal(T("\xc0\xaf", 0), "\\xc0\\xaf");             /* overlong '/' */
    assert_string_equal(T("\xed\xa0\x80", 0), "\\xed\\xa0\\x80");     /* a surrogate */
    assert_string_equal(T("\xe2\x82", 0), "\\xe2\\x82");             /* cut short */
    assert_string_equal(T("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
}

static void test_cut_at_a_character_boundary(void **state)
{
    (void)state;
    ms_buf b = {0};
    ms_buf_add_text_max(&b, "ab\xc3\xa9z", 5, 3, 0);
    assert_string_equal(b.data, "ab...");
    ms_buf_reset(&b);
    ms_buf_add_text_max(&b, "abc", 3, 3, 0);
    assert_string_equal(b.data, "abc");
    ms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminal_controls_become_visible),
        cmocka_unit_test(test_unicode_kept_c1_and_bidi_escaped),
        cmocka_unit_test(test_invalid_utf8_is_shown_byte_by_byte),
        cmocka_unit_test(test_cut_at_a_character_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
