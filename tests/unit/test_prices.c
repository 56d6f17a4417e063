/* Unit tests for telemetry/ms_prices.c and the shipped telemetry/prices.tsv.
 *
 * Test models are named acme-* so no built-in entry can match them by
 * accident. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ms_prices.h"

/* cmocka 1.1.5 only compares floats; this keeps double precision. */
#define assert_near(a, b)                                                   \
    do {                                                                    \
        double a_ = (a), b_ = (b);                                          \
        if (!(fabs(a_ - b_) <= 1e-12))                                      \
            fail_msg("%.17g != %.17g", a_, b_);                             \
    } while (0)

#define assert_price(pr, in, out, cr, cw)                                   \
    do {                                                                    \
        const ms_price *p_ = (pr);                                          \
        assert_non_null(p_);                                                \
        assert_near(p_->input, in);                                         \
        assert_near(p_->output, out);                                       \
        assert_near(p_->cache_read, cr);                                    \
        assert_near(p_->cache_write, cw);                                   \
    } while (0)

#define assert_contains(hay, needle)                                        \
    do {                                                                    \
        if (!strstr((hay), (needle)))                                       \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));    \
    } while (0)

/* A fresh table from the built-in text for each test. */
static int setup(void **state)
{
    ms_prices *p;
    if (ms_prices_new(&p) != 0)
        return -1;
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    ms_prices_free(*state);
    return 0;
}

/* Loads `text` as "prices.tsv" and fails the test on any error. */
static void load_ok(ms_prices *p, const char *text)
{
    char err[256] = "";
    int rc = ms_prices_load_text(p, text, "prices.tsv", err, sizeof err);
    if (rc)
        fail_msg("load failed (%d): %s", rc, err);
}

/* ---------------------------------------------------------------------
 * The shipped table
 * --------------------------------------------------------------------- */

static void test_builtin_table(void **state)
{
    ms_prices *p = *state;
    /* ms_prices_new asserts rather than reports a broken built-in table;
     * parse it again here for a message that names the line. */
    load_ok(p, ms_prices_builtin);

    /* The made-up offline price. */
    assert_price(ms_prices_find(p, "mock"), 1.00, 5.00, 0.10, 1.25);
    /* Exact alias and dated id through the prefix entry. */
    assert_price(ms_prices_find(p, "claude-sonnet-4-5"), 3, 15, 0.30, 3.75);
    assert_price(ms_prices_find(p, "claude-sonnet-4-5-20250929"), 3, 15, 0.30, 3.75);
    assert_price(ms_prices_find(p, "claude-opus-4-1-20250805"), 15, 75, 1.5, 18.75);
    assert_price(ms_prices_find(p, "claude-3-5-haiku-20241022"), 0.80, 4, 0.08, 1);
    assert_price(ms_prices_find(p, "claude-3-haiku-20240307"), 0.25, 1.25, 0.03, 0.30);
    /* gpt-4o* also matches gpt-4o-mini; the longer prefix must win. "-"
     * in the cache-write column reads as the input price. */
    assert_price(ms_prices_find(p, "gpt-4o-2024-08-06"), 2.50, 10, 1.25, 2.50);
    assert_price(ms_prices_find(p, "gpt-4o-mini-2024-07-18"), 0.15, 0.60, 0.075, 0.15);
    assert_price(ms_prices_find(p, "gpt-4.1-nano"), 0.10, 0.40, 0.025, 0.10);
    assert_price(ms_prices_find(p, "o4-mini-2025-04-16"), 1.10, 4.40, 0.275, 1.10);
    assert_price(ms_prices_find(p, "gpt-5-mini"), 0.25, 2, 0.025, 0.25);
    /* Siblings priced differently stay unknown instead of priced wrong. */
    assert_null(ms_prices_find(p, "o3-mini"));
    assert_null(ms_prices_find(p, "gpt-5-pro"));
    /* Local models are priced by the Ollama adapter, not the table. */
    assert_null(ms_prices_find(p, "llama3.2"));
}

/* ---------------------------------------------------------------------
 * Lookup
 * --------------------------------------------------------------------- */

static void test_exact_match(void **state)
{
    ms_prices *p = *state;
    load_ok(p, "acme-large 2 8 0.2 2.5\n");
    assert_price(ms_prices_find(p, "acme-large"), 2, 8, 0.2, 2.5);
    /* An exact entry does not match longer names. */
    assert_null(ms_prices_find(p, "acme-large-v2"));
    assert_null(ms_prices_find(p, "acme-larg"));
}

static void test_prefix_match(void **state)
{
    ms_prices *p = *state;
    load_ok(p, "acme-*\t1 2 3 4");   /* tab-separated, no final newline */
    assert_price(ms_prices_find(p, "acme-small-2025"), 1, 2, 3, 4);
    assert_price(ms_prices_find(p, "acme-"), 1, 2, 3, 4);   /* empty rest */
    assert_null(ms_prices_find(p, "acme"));
    assert_null(ms_prices_find(p, "xacme-small"));
}

static void test_longest_prefix_wins(void **state)
{
    ms_prices *p = *state;
    /* Listed longest first, so file order cannot be what decides. */
    load_ok(p, "acme-large-v2*  3 3 3 3\n"
               "acme-*          1 1 1 1\n"
               "acme-large-*    2 2 2 2\n");
    assert_price(ms_prices_find(p, "acme-large-v2-0101"), 3, 3, 3, 3);
    assert_price(ms_prices_find(p, "acme-large-v1"), 2, 2, 2, 2);
    assert_price(ms_prices_find(p, "acme-tiny"), 1, 1, 1, 1);
}

static void test_exact_beats_prefix(void **state)
{
    ms_prices *p = *state;
    load_ok(p, "acme-large*     1 1 1 1\n"
               "acme-large-v2*  4 4 4 4\n"
               "acme-large-v2   5 5 5 5\n");
    /* Both prefixes and the exact name match; exact wins, even over the
     * prefix entry spelled the same. */
    assert_price(ms_prices_find(p, "acme-large-v2"), 5, 5, 5, 5);
    assert_price(ms_prices_find(p, "acme-large-v2x"), 4, 4, 4, 4);
}

static void test_dash_means_input(void **state)
{
    ms_prices *p = *state;
    load_ok(p, "acme-a 2.5 10 - -\n"
               "acme-b 2.5 10 1.25 -\n");
    assert_price(ms_prices_find(p, "acme-a"), 2.5, 10, 2.5, 2.5);
    assert_price(ms_prices_find(p, "acme-b"), 2.5, 10, 1.25, 2.5);
}

static void test_unknown_model(void **state)
{
    ms_prices *p = *state;
    assert_null(ms_prices_find(p, "no-such-model"));
    assert_null(ms_prices_find(p, ""));
    assert_null(ms_prices_find(p, NULL));
    /* Unknown cost is NaN, never $0. */
    assert_true(isnan(ms_price_cost(NULL, 1000, 1000, 0, 0)));
}

/* ---------------------------------------------------------------------
 * Overriding
 * --------------------------------------------------------------------- */

static void test_override(void **state)
{
    ms_prices *p = *state;
    assert_price(ms_prices_find(p, "claude-sonnet-4-5-20250929"), 3, 15, 0.30, 3.75);
    load_ok(p, "claude-sonnet-4-5*  2.5 12 0.25 3\n");
    assert_price(ms_prices_find(p, "claude-sonnet-4-5-20250929"), 2.5, 12, 0.25, 3);
    /* Other built-in entries are untouched. */
    assert_price(ms_prices_find(p, "claude-sonnet-4"), 3, 15, 0.30, 3.75);

    /* A prefix entry does not replace the exact entry of the same name. */
    load_ok(p, "mock* 9 9 9 9\n");
    assert_price(ms_prices_find(p, "mock"), 1.00, 5.00, 0.10, 1.25);
    assert_price(ms_prices_find(p, "mock-2"), 9, 9, 9, 9);

    /* Within one text, and across loads, the later line wins. */
    load_ok(p, "acme 1 1 1 1\nacme 2 2 2 2\n");
    assert_price(ms_prices_find(p, "acme"), 2, 2, 2, 2);
    load_ok(p, "acme 3 3 3 3\n");
    assert_price(ms_prices_find(p, "acme"), 3, 3, 3, 3);
}

/* ---------------------------------------------------------------------
 * Cost
 * --------------------------------------------------------------------- */

static void test_cost(void **state)
{
    (void)state;
    const ms_price sonnet = { 3.00, 15.00, 0.30, 3.75 };
    /* 1,000,000 input at $3/M = $3; 500,000 output at $15/M = $7.50. */
    assert_near(ms_price_cost(&sonnet, 1000000, 500000, 0, 0), 10.5);
    /* + 2,000,000 cache reads at $0.30/M = $0.60
     * + 100,000 cache writes at $3.75/M = $0.375  -> $11.475 */
    assert_near(ms_price_cost(&sonnet, 1000000, 500000, 2000000, 100000), 11.475);
    /* 1234 * 3 + 567 * 15 = 3702 + 8505 = 12207 micro-dollars. */
    assert_near(ms_price_cost(&sonnet, 1234, 567, 0, 0), 0.012207);
    assert_near(ms_price_cost(&sonnet, 0, 0, 0, 0), 0);

    const ms_price free_price = { 0, 0, 0, 0 };
    assert_near(ms_price_cost(&free_price, 1000000, 1000000, 1, 1), 0);
}

/* ---------------------------------------------------------------------
 * Errors
 * --------------------------------------------------------------------- */

static void test_malformed_lines(void **state)
{
    (void)state;
    /* Each text starts with a good line, so "unchanged" is checked
     * against an entry that parsed fine before the bad line. */
    static const struct {
        const char *text;
        const char *want;   /* expected in the message */
    } cases[] = {
        { "acme-good 1 2 3 4\n# comment\n\nacme-bad 1 2 3\n",
          "prices.tsv:4: expected 5 columns (model input output cache_read cache_write), got 4" },
        { "acme-good 1 2 3 4\nacme-bad 1 2 3 4 5\n",
          "prices.tsv:2: expected 5 columns (model input output cache_read cache_write), got 6" },
        { "acme-good 1 2 3 4\nacme-bad\n",
          "prices.tsv:2: expected 5 columns (model input output cache_read cache_write), got 1" },
        { "acme-good 1 2 3 4\nacme-bad -1 2 3 4\n",
          "prices.tsv:2: input price \"-1\" is not a non-negative number" },
        { "acme-good 1 2 3 4\nacme-bad - 2 3 4\n",
          "prices.tsv:2: input price \"-\" is not a non-negative number" },
        { "acme-good 1 2 3 4\nacme-bad 1 x 3 4\n",
          "prices.tsv:2: output price \"x\"" },
        { "acme-good 1 2 3 4\nacme-bad 1 2 1.2.3 4\n",
          "prices.tsv:2: cache_read price \"1.2.3\"" },
        { "acme-good 1 2 3 4\nacme-bad 1 2 3 nan\n",
          "prices.tsv:2: cache_write price \"nan\"" },
        { "acme-good 1 2 3 4\nacme-bad inf 2 3 4\n", "prices.tsv:2: input price \"inf\"" },
        { "acme-good 1 2 3 4\nacme-bad 1e3 2 3 4\n", "prices.tsv:2: input price \"1e3\"" },
        { "acme-good 1 2 3 4\nacme-bad . 2 3 4\n", "prices.tsv:2: input price \".\"" },
        { "acme-good 1 2 3 4\nacme-bad 1 2 3 --\n", "prices.tsv:2: cache_write price \"--\"" },
        { "acme-good 1 2 3 4\nacme*bad 1 2 3 4\n",
          "prices.tsv:2: model \"acme*bad\" has a '*' before its end" },
        { "acme-good 1 2 3 4\r\nacme-bad 1 2 3\r\n", "prices.tsv:2: expected 5 columns" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_prices *p;
        assert_int_equal(ms_prices_new(&p), 0);
        load_ok(p, "acme-kept 7 7 7 7\n");

        char err[256] = "";
        int rc = ms_prices_load_text(p, cases[i].text, "prices.tsv", err, sizeof err);
        assert_int_equal(rc, EINVAL);
        assert_contains(err, cases[i].want);
        /* A message also says what to write instead. */
        assert_true(strstr(err, "expected") || strstr(err, "write") || strstr(err, "only"));

        /* Unchanged: nothing from the failed text, everything from before. */
        assert_null(ms_prices_find(p, "acme-good"));
        assert_price(ms_prices_find(p, "acme-kept"), 7, 7, 7, 7);
        assert_price(ms_prices_find(p, "mock"), 1.00, 5.00, 0.10, 1.25);
        ms_prices_free(p);
    }
}

static void test_error_without_buffer(void **state)
{
    ms_prices *p = *state;
    /* err may be NULL or empty: the return value still tells. */
    assert_int_equal(ms_prices_load_text(p, "acme 1 2\n", "x", NULL, 0), EINVAL);
    char err[1] = { 'z' };
    assert_int_equal(ms_prices_load_text(p, "acme 1 2\n", NULL, err, 0), EINVAL);
    assert_int_equal(err[0], 'z');
    /* A tiny buffer gets a truncated, terminated message. */
    char small[8];
    assert_int_equal(ms_prices_load_text(p, "acme 1 2\n", "prices.tsv", small, sizeof small), EINVAL);
    assert_string_equal(small, "prices.");
}

static void test_blank_and_comments(void **state)
{
    ms_prices *p = *state;
    load_ok(p, "");
    load_ok(p, "\n\n   \t\n# only a comment\n");
    load_ok(p, "  acme-c  1 2 3 4   # trailing comment\r\n");
    assert_price(ms_prices_find(p, "acme-c"), 1, 2, 3, 4);
}

/* ---------------------------------------------------------------------
 * Files
 * --------------------------------------------------------------------- */

static void test_load_file_missing(void **state)
{
    ms_prices *p = *state;
    const char *path = "/nonexistent-moonspan-dir/prices.tsv";
    char err[256] = "";
    assert_int_equal(ms_prices_load_file(p, path, err, sizeof err), ENOENT);
    assert_contains(err, path);
    assert_contains(err, "--prices");
    assert_price(ms_prices_find(p, "mock"), 1.00, 5.00, 0.10, 1.25);
}

/* Writes `text` to a new temporary file; returns its path (static). */
static const char *temp_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_prices_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_load_file(void **state)
{
    ms_prices *p = *state;
    char err[256] = "";

    const char *good = temp_file("# negotiated\nclaude-sonnet-4-5* 2 10 0.2 2.5\nacme-f 1 1 - -\n");
    assert_int_equal(ms_prices_load_file(p, good, err, sizeof err), 0);
    unlink(good);
    assert_price(ms_prices_find(p, "claude-sonnet-4-5-20250929"), 2, 10, 0.2, 2.5);
    assert_price(ms_prices_find(p, "acme-f"), 1, 1, 1, 1);

    /* Errors in a file name the file (its path) and the line. */
    const char *bad = temp_file("acme-g 1 1 1 1\nacme-h 1 1 1\n");
    assert_int_equal(ms_prices_load_file(p, bad, err, sizeof err), EINVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:2: expected 5 columns", bad);
    unlink(bad);
    assert_contains(err, want);
    assert_null(ms_prices_find(p, "acme-g"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtin_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_prefix_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_beats_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dash_means_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_override, setup, teardown),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test_setup_teardown(test_error_without_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blank_and_comments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
