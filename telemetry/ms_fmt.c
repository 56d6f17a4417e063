/* ms_fmt — numbers, times, cells and JSON members for the readers (see
 * ms_fmt.h). */
#include "ms_fmt.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

int64_t ms_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* H. Hinnant's days_from_civil inverse. */
void ms_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = ms_floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void ms_iso_utc(int64_t ns, char *out, size_t n)
{
    time_t s = (time_t)ms_floor_div(ns, 1000000000);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "?");
}

/* "µs": U+00B5 in UTF-8, one column on a terminal (see pad below). */
#define MS_MICROS "\xc2\xb5s"

/* Step totals run into millions of ms, hence seconds and hours. */
/* Writes v / 10^decimals with that many decimals, rounded half up, and
 * the unit: what snprintf("%.*f") gives for these values, without its
 * cost (show prints one per span). */
static const char *fixed(char *buf, size_t n, double v, int decimals, const char *unit)
{
    static const int64_t pow10[] = {1, 10, 100};
    /* llrint rounds half to even, as printf does: the same value prints
     * the same here and in the JSON report. */
    int64_t x = llrint(v * (double)pow10[decimals]);
    int64_t whole = x / pow10[decimals], frac = x % pow10[decimals];
    if (decimals)
        snprintf(buf, n, "%lld.%0*lld %s", (long long)whole, decimals, (long long)frac, unit);
    else
        snprintf(buf, n, "%lld %s", (long long)whole, unit);
    return buf;
}

const char *ms_fmt_ms(char *buf, size_t n, double ms)
{
    /* A fine span takes microseconds: in ms it would print 0.00, so below
     * a millisecond the unit follows the value. The unit is chosen on the
     * rounded value, so 999.7 us prints "1.00 ms", never "1000 us". */
    if (isnan(ms))
        snprintf(buf, n, "-");
    else if (ms < 0)
        snprintf(buf, n, "%.2f ms", ms);
    else if (ms >= 2 * 3600e3)
        fixed(buf, n, ms / 3600e3, 1, "h");
    else if (ms >= 100e3)
        fixed(buf, n, ms / 1e3, 0, "s");
    else if (ms >= 10e3)
        fixed(buf, n, ms / 1e3, 1, "s");
    else if (ms >= 100)
        fixed(buf, n, ms, 0, "ms");
    else if (ms >= 10)
        fixed(buf, n, ms, 1, "ms");
    else if (ms >= 0.9995)
        fixed(buf, n, ms, 2, "ms");
    else if (ms >= 0.09995)
        fixed(buf, n, ms * 1e3, 0, MS_MICROS);
    else if (ms >= 0.009995)
        fixed(buf, n, ms * 1e3, 1, MS_MICROS);
    else if (ms >= 0.0009995)
        fixed(buf, n, ms * 1e3, 2, MS_MICROS);
    else
        fixed(buf, n, ms * 1e6, 0, "ns");
    return buf;
}

/* LLM calls cost fractions of a cent. */
const char *ms_fmt_usd(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else if (v == 0)
        snprintf(buf, n, "$0");
    else if (fabs(v) >= 1)
        snprintf(buf, n, "$%.2f", v);
    else if (fabs(v) >= 0.01)
        snprintf(buf, n, "$%.4f", v);
    else
        snprintf(buf, n, "$%.6f", v);
    return buf;
}

void ms_fmt_cost(ms_buf *b, double cost, int64_t priced, int64_t unknown)
{
    char usd[32];
    const char *s = unknown == 1 ? "" : "s";
    if (unknown > 0 && priced == 0) {
        ms_buf_printf(b, "unknown for %lld call%s", (long long)unknown, s);
        return;
    }
    ms_buf_adds(b, ms_fmt_usd(usd, sizeof usd, cost));
    if (unknown > 0)
        ms_buf_printf(b, " + unknown for %lld call%s", (long long)unknown, s);
}

#define LINE_BREAKS "\r\n\t"

/* A multi-line message reads better in a one-line cell with its breaks
 * as spaces than as a row of "\n"; everything else is left to ms_text. */
void ms_fmt_text_max(ms_buf *b, const char *s, size_t max, const char *missing)
{
    ms_buf line = {0};
    if (!s)
        s = missing;
    while (s && *s) {
        size_t n = strcspn(s, "\r\n\t");
        ms_buf_add(&line, s, n);
        s += n;
        if (*s) {
            ms_buf_addc(&line, ' ');
            s += strspn(s, "\r\n\t");
        }
    }
    if (line.oom)
        b->oom = 1;
    else if (line.len)
        ms_buf_add_text_max(b, line.data, line.len, max, 0);
    ms_buf_free(&line);
}

void ms_fmt_text(ms_buf *b, const char *s, const char *missing)
{
    ms_fmt_text_max(b, s, SIZE_MAX, missing);
}

/* Characters, not bytes: a UTF-8 continuation byte adds no column. */
static int cols(const char *p, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

int ms_fmt_text_cols(const char *s)
{
    ms_buf t = {0};
    ms_fmt_text(&t, s, "");
    int c = cols(t.data, t.len);
    ms_buf_free(&t);
    return c;
}

/* n spaces, in one append. */
static void pad(ms_buf *b, int n)
{
    static const char spaces[] = "                                                                ";
    while (n > 0) {
        int k = n < (int)sizeof spaces - 1 ? n : (int)sizeof spaces - 1;
        ms_buf_add(b, spaces, (size_t)k);
        n -= k;
    }
}

void ms_fmt_right(ms_buf *b, const char *s, int width)
{
    size_t n = strlen(s);
    pad(b, width - cols(s, n));
    ms_buf_add(b, s, n);
}

void ms_fmt_left(ms_buf *b, const char *s, int width)
{
    size_t n = strlen(s);
    ms_buf_add(b, s, n);
    pad(b, width - cols(s, n));
}

void ms_fmt_padded(ms_buf *b, const char *s, int width)
{
    size_t start = b->len;
    ms_fmt_text(b, s, "");
    if (!b->oom)
        pad(b, width - cols(b->data + start, b->len - start));
}

void ms_fmt_padded_tail(ms_buf *b, const char *s, int width)
{
    ms_buf t = {0};
    ms_fmt_text(&t, s, "");
    if (t.oom) {
        b->oom = 1;
        return;
    }
    const char *p = t.data ? t.data : "";
    size_t n = t.len;
    int c = cols(p, n);
    if (c > width && width > 3) {
        /* drop whole characters from the front until "..." and the rest fit */
        while (c > width - 3) {
            do {
                p++;
                n--;
            } while (n && ((unsigned char)*p & 0xC0) == 0x80);
            c--;
        }
        ms_buf_adds(b, "...");
        c += 3;
    }
    ms_buf_add(b, p, n);
    pad(b, width - c);
    ms_buf_free(&t);
}

void ms_kv_int(ms_buf *b, int *first, const char *k, int64_t v)
{
    ms_json_key(b, first, k);
    ms_json_int(b, v);
}

void ms_kv_int_or_null(ms_buf *b, int *first, const char *k, int has, int64_t v)
{
    if (has)
        ms_kv_int(b, first, k, v);
    else
        ms_kv_raw(b, first, k, NULL);
}

void ms_kv_num(ms_buf *b, int *first, const char *k, double v)
{
    ms_json_key(b, first, k);
    ms_json_num(b, v);
}

void ms_kv_p50_p95(ms_buf *b, int *first, const char *k, double p50, double p95)
{
    int inner = 1;
    ms_json_key(b, first, k);
    ms_buf_addc(b, '{');
    ms_kv_num(b, &inner, "p50", p50);
    ms_kv_num(b, &inner, "p95", p95);
    ms_buf_addc(b, '}');
}

void ms_kv_str(ms_buf *b, int *first, const char *k, const char *s)
{
    ms_json_key(b, first, k);
    if (s)
        ms_json_str(b, s, strlen(s));
    else
        ms_buf_adds(b, "null");
}

void ms_kv_raw(ms_buf *b, int *first, const char *k, const char *raw)
{
    ms_json_key(b, first, k);
    ms_buf_adds(b, raw ? raw : "null");
}

int ms_buf_write(ms_buf *b, FILE *out, char *err, size_t errlen)
{
    if (b->oom)
        return ms_errf(err, errlen, "out of memory while formatting the output");
    if (b->len && fwrite(b->data, 1, b->len, out) != b->len)
        return ms_errf(err, errlen, "cannot write the output: %s", strerror(errno));
    if (fflush(out) != 0)
        return ms_errf(err, errlen, "cannot write the output: %s", strerror(errno));
    return 0;
}
