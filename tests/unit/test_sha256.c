/* test_sha256 — the FIPS 180-4 / NIST CAVP example vectors, and the
 * streaming interface cut at every awkward place (block and padding
 * boundaries), which must give the same digest as one call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_sha256.h"

static void hex_of(const char *s, char out[65])
{
    ms_sha256_hex(s, strlen(s), out);
}

static void test_empty(void **state)
{
    (void)state;
    char h[65];
    hex_of("", h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_abc(void **state)
{
    (void)state;
    char h[65];
    hex_of("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* 448 bits: the padding no longer fits in the block, a second one is made */
static void test_448_bits(void **state)
{
    (void)state;
    char h[65];
    hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_896_bits(void **state)
{
    (void)state;
    char h[65];
    hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
           "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu", h);
    assert_string_equal(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **state)
{
    (void)state;
    size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    char h[65];
    ms_sha256_hex(a, n, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* the same in odd-sized pieces through the streaming interface */
    ms_sha256 c;
    unsigned char d1[32], d2[32];
    ms_sha256_init(&c);
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 7 % 997 + 1)
        ms_sha256_update(&c, a + off, off + step > n ? n - off : step);
    ms_sha256_final(&c, d1);
    ms_sha256_init(&c);
    ms_sha256_update(&c, a, n);
    ms_sha256_final(&c, d2);
    assert_memory_equal(d1, d2, 32);
    free(a);
}

/* Every length around the 55/56/64-byte padding edges, fed in two pieces
 * split at every point, matches the one-call digest. */
static void test_split_points(void **state)
{
    (void)state;
    unsigned char msg[130];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(i * 31 + 7);
    for (size_t len = 0; len <= sizeof msg; len++) {
        char whole[65];
        ms_sha256_hex(msg, len, whole);
        for (size_t cut = 0; cut <= len; cut++) {
            ms_sha256 c;
            unsigned char d[32];
            ms_sha256_init(&c);
            ms_sha256_update(&c, msg, cut);
            ms_sha256_update(&c, msg + cut, len - cut);
            ms_sha256_final(&c, d);
            char hex[65];
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
            assert_string_equal(hex, whole);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_abc),
        cmocka_unit_test(test_448_bits),
        cmocka_unit_test(test_896_bits),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_split_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
