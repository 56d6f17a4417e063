/* ms_redact: the built-in secret shapes, e-mail addresses and user
 * patterns masked before text is stored, logged or exported; and the
 * trace filters that apply it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ms_redact.h"
#include "ms_trace.h"

/* s through r, as text: masked, or s itself when nothing matched. */
static const char *red(const ms_redactor *r, const char *s, size_t *made)
{
    static ms_buf b;
    ms_buf_free(&b);
    size_t m = ms_redact(r, s, strlen(s), &b);
    if (made)
        *made = m;
    if (m == 0) {
        assert_int_equal(b.len, 0); /* untouched when nothing matched */
        return s;
    }
    assert_false(b.oom);
    return b.data;
}

static void test_api_key_shapes(void **state)
{
    (void)state;
    ms_redactor *r = ms_redactor_new();
    size_t m;
    assert_string_equal(red(r, "key sk-proj-AbCdEfGhIjKlMnOpQrSt12 end", &m), "key [REDACTED:api_key] end");
    assert_int_equal(m, 1);
    assert_string_equal(red(r, "sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV_x-y", NULL), "[REDACTED:api_key]");
    assert_string_equal(red(r, "aws AKIAIOSFODNN7EXAMPLE.", NULL), "aws [REDACTED:api_key].");
    assert_string_equal(red(r, "gh ghp_0123456789abcdefghijABCDEFGHIJ0123", NULL), "gh [REDACTED:api_key]");
    assert_string_equal(red(r, "github_pat_11ABCDEFG0123456789_abcdefgh", NULL), "[REDACTED:api_key]");
    assert_string_equal(red(r, "slack xoxb-1234567890-abcdefghij", NULL), "slack [REDACTED:api_key]");
    /* prose and short words stay */
    const char *prose = "ask-me sk-learn task-list AKIA gh_x xox-y sk-short";
    assert_ptr_equal(red(r, prose, &m), prose);
    assert_int_equal(m, 0);
    ms_redactor_free(r);
}

static void test_bearer_named_secrets_and_email(void **state)
{
    (void)state;
    ms_redactor *r = ms_redactor_new();
    assert_string_equal(red(r, "Authorization: Bearer eyJhbGciOi.J9.x-y_z=", NULL),
                        "Authorization: Bearer [REDACTED:bearer]");
    assert_string_equal(red(r, "basic dXNlcjpwYXNzd29yZA==", NULL), "basic [REDACTED:bearer]");
    const char *plan = "the Basic plan, bearer bond";
    assert_ptr_equal(red(r, plan, NULL), plan);
    assert_string_equal(red(r, "api_key=0123456789abcdef0123456789abcdef&x=1", NULL),
                        "api_key=[REDACTED:secret]&x=1");
    assert_string_equal(red(r, "{\"access_token\": \"Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1\"}", NULL),
                        "{\"access_token\": \"[REDACTED:secret]\"}");
    assert_string_equal(red(r, "PASSWORD:'hunter2hunter2hunter2'", NULL), "PASSWORD:'[REDACTED:secret]'");
    const char *short_value = "token=abc, key: short";
    assert_ptr_equal(red(r, short_value, NULL), short_value);
    assert_string_equal(red(r, "mail bob.smith+x@mail.example.co.uk.", NULL), "mail [REDACTED:email].");
    assert_string_equal(red(r, "a@b.io and c@d.org", NULL), "[REDACTED:email] and [REDACTED:email]");
    const char *not_mail = "@home x@localhost 5@3 a@b.c";
    assert_ptr_equal(red(r, not_mail, NULL), not_mail);
    ms_redactor_free(r);
}

static void test_masking_twice_changes_nothing(void **state)
{
    (void)state;
    ms_redactor *r = ms_redactor_new();
    char err[256];
    assert_int_equal(ms_redactor_add(r, "ACME-[0-9]+", err, sizeof err), 0);
    char once[256];
    strcpy(once, red(r, "sk-ABCDEFGHIJKLMNOPQRSTUV Bearer abcdefghij a@b.io token=0123456789abcdef01 ACME-7", NULL));
    assert_string_equal(once, "[REDACTED:api_key] Bearer [REDACTED:bearer] [REDACTED:email] "
                              "token=[REDACTED:secret] [REDACTED:pattern]");
    assert_ptr_equal(red(r, once, NULL), once);
    ms_redactor_free(r);
}

static void test_user_patterns(void **state)
{
    (void)state;
    ms_redactor *r = ms_redactor_new();
    char err[256];
    assert_int_equal(ms_redactor_add(r, "ACME-[0-9]{4}", err, sizeof err), 0);
    assert_int_equal(ms_redactor_add(r, "patient [A-Z][a-z]+", err, sizeof err), 0);
    assert_int_equal(ms_redactor_patterns(r), 2);
    size_t m;
    assert_string_equal(red(r, "ACME-1234 and ACME-5678; patient Jones", &m),
                        "[REDACTED:pattern] and [REDACTED:pattern]; [REDACTED:pattern]");
    assert_int_equal(m, 3);
    /* a pattern sees each side of a NUL byte, which is kept */
    ms_buf b = {0};
    const char nul[] = "ACME-1111\0ACME-2222";
    assert_int_equal(ms_redact(r, nul, sizeof nul - 1, &b), 2);
    assert_int_equal(b.len, 2 * strlen("[REDACTED:pattern]") + 1);
    assert_memory_equal(b.data, "[REDACTED:pattern]\0[REDACTED:pattern]", b.len);
    ms_buf_free(&b);
    /* a user mask that puts a key at a word start: the key is masked too
     * (found by the redact fuzz target) */
    ms_redactor *digits = ms_redactor_new();
    assert_int_equal(ms_redactor_add(digits, "[0-9]{3}-[0-9]{4}", err, sizeof err), 0);
    assert_string_equal(red(digits, "call 555-1234sk-proj-ABCDEFGHIJKLMNOP now", &m),
                        "call [REDACTED:pattern][REDACTED:api_key] now");
    assert_int_equal(m, 2);
    ms_redactor_free(digits);
    /* refused: not ERE, or matching the empty text */
    assert_int_equal(ms_redactor_add(r, "(", err, sizeof err), -1);
    assert_non_null(strstr(err, "'(' is not a POSIX extended regular expression"));
    assert_int_equal(ms_redactor_add(r, "x*", err, sizeof err), -1);
    assert_non_null(strstr(err, "matches the empty text"));
    assert_int_equal(ms_redactor_patterns(r), 2);
    ms_redactor_free(r);
}

static size_t filter(const void *ctx, const char *s, size_t n, ms_buf *out)
{
    return ms_redact(ctx, s, n, out);
}

/* What the host sets up: errors always filtered, values when asked. */
static void test_trace_filters(void **state)
{
    (void)state;
    ms_redactor *r = ms_redactor_new();
    ms_trace t = {0};
    assert_int_equal(ms_trace_start(&t, "req", 3, 1000, NULL, 0), 0);
    ms_trace_set_filters(filter, NULL, r);
    const char *v = "to a@b.io";
    ms_span_set_str(&t, 0, "plain", 5, v, strlen(v));
    ms_span_fail(&t, 0, 1, "error", "sent sk-ABCDEFGHIJKLMNOPQRSTUV", 30, "at a@b.io");
    ms_trace_set_filters(filter, filter, r);
    ms_span_set_str(&t, 0, "masked", 6, v, strlen(v));
    ms_span_set_str(&t, 0, "user", 4, v, strlen(v)); /* the trace's identity: kept */
    ms_span_event(&t, 0, 1001, "ev", 2, "{\"who\":\"a@b.io\"}", 16);
    ms_trace_add_error(&t, 1002, "error", "mail a@b.io", 11);
    ms_trace_set_filters(NULL, NULL, NULL);
    ms_buf b = {0};
    ms_span_attrs_json(&t, 0, &b);
    assert_string_equal(b.data, "{\"plain\":\"to a@b.io\",\"masked\":\"to [REDACTED:email]\",\"user\":\"to a@b.io\"}");
    ms_buf_free(&b);
    const ms_span_error *e = &t.errors[t.spans[0].error];
    assert_string_equal(ms_trace_str(&t, e->message), "sent [REDACTED:api_key]");
    assert_string_equal(ms_trace_str(&t, e->traceback), "at [REDACTED:email]");
    assert_string_equal(ms_trace_str(&t, t.events[0].attrs_json), "{\"who\":\"[REDACTED:email]\"}");
    assert_string_equal(ms_trace_str(&t, t.events[1].error_message), "mail [REDACTED:email]");
    ms_trace_free(&t);
    ms_redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_key_shapes),
        cmocka_unit_test(test_bearer_named_secrets_and_email),
        cmocka_unit_test(test_masking_twice_changes_nothing),
        cmocka_unit_test(test_user_patterns),
        cmocka_unit_test(test_trace_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
