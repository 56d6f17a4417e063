#include "ms_ids.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static _Thread_local uint64_t rng[4];
static _Thread_local int seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void seed(void)
{
    if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng) {
        /* no entropy source: fall back to time and pid, still unique enough per process */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        rng[1] = (uint64_t)ts.tv_sec * 0x9E3779B97F4A7C15ull;
        rng[2] = (uint64_t)(uintptr_t)&ts;
        rng[3] = 0x2545F4914F6CDD1Dull;
    }
    seeded = 1;
}

/* xoshiro256** (Blackman and Vigna, public domain reference algorithm) */
static uint64_t next(void)
{
    if (!seeded)
        seed();
    const uint64_t result = rotl(rng[1] * 5, 7) * 9;
    const uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

uint64_t ms_span_id_new(void)
{
    uint64_t id;
    do
        id = next();
    while (id == 0);
    return id;
}

/* splitmix64's finaliser: a bijection that scatters consecutive inputs,
 * so ids derived from (salt, index) look random and never repeat for one
 * salt. */
static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

uint64_t ms_span_id_derive(uint64_t salt, uint32_t index)
{
    uint64_t id = mix64(salt ^ index);
    return id ? id : 1; /* W3C: an all-zero id is invalid */
}

void ms_trace_id_new(ms_trace_id *out)
{
    uint64_t a = next(), b = ms_span_id_new();
    memcpy(out->b, &a, 8);
    memcpy(out->b + 8, &b, 8);
}

static const char hexdigits[] = "0123456789abcdef";

void ms_trace_id_hex(const ms_trace_id *id, char out[33])
{
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hexdigits[id->b[i] >> 4];
        out[2 * i + 1] = hexdigits[id->b[i] & 15];
    }
    out[32] = 0;
}

void ms_span_id_hex(uint64_t id, char out[17])
{
    for (int i = 15; i >= 0; i--) {
        out[i] = hexdigits[id & 15];
        id >>= 4;
    }
    out[16] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* W3C requires lowercase */
}

static int parse_hex(const char *s, uint8_t *out, size_t nbytes)
{
    int nonzero = 0;
    for (size_t i = 0; i < nbytes; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= out[i];
    }
    return nonzero ? 0 : -1;
}

int ms_traceparent_parse(const char *s, ms_trace_id *trace, uint64_t *parent_span)
{
    uint8_t span[8];
    size_t n = strlen(s);
    /* version 00 is exactly 55 characters; later versions may append fields */
    if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || (n > 55 && s[55] != '-'))
        return -1;
    if (hexval(s[0]) < 0 || hexval(s[1]) < 0 || (s[0] == 'f' && s[1] == 'f'))
        return -1;
    if (s[0] == '0' && s[1] == '0' && n != 55)
        return -1;
    if (parse_hex(s + 3, trace->b, 16) < 0 || parse_hex(s + 36, span, 8) < 0)
        return -1;
    if (hexval(s[53]) < 0 || hexval(s[54]) < 0)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | span[i];
    *parent_span = v;
    return 0;
}

void ms_traceparent_format(const ms_trace_id *trace, uint64_t span, char out[56])
{
    char th[33], sh[17];
    ms_trace_id_hex(trace, th);
    ms_span_id_hex(span, sh);
    memcpy(out, "00-", 3);
    memcpy(out + 3, th, 32);
    out[35] = '-';
    memcpy(out + 36, sh, 16);
    memcpy(out + 52, "-01", 3);
    out[55] = 0;
}
