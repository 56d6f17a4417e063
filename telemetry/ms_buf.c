#include "ms_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(ms_buf *b, size_t need)
{
    if (b->oom)
        return 0;
    if (b->len + need + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void ms_buf_add(ms_buf *b, const void *p, size_t n)
{
    if (!grow(b, n))
        return;
    if (n) /* p may be NULL then: an empty buffer that never grew */
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ms_buf_adds(ms_buf *b, const char *s) { ms_buf_add(b, s, strlen(s)); }

void ms_buf_addc(ms_buf *b, char c) { ms_buf_add(b, &c, 1); }

void ms_buf_printf(ms_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        ms_buf_add(b, small, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int ms_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void ms_buf_free(ms_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

size_t ms_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

void ms_json_str(ms_buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    ms_buf_addc(b, '"');
    size_t run = 0; /* bytes that need no escaping, copied in one go */
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        const char *esc = NULL;
        char hex[8];
        size_t ulen = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7f) { snprintf(hex, sizeof hex, "\\u%04x", c); esc = hex; }
        else if (c >= 0x80) {
            ulen = ms_utf8_len(s + i, n - i);
            if (ulen == 0) {
                esc = "\xEF\xBF\xBD";
                ulen = 1;
            } else if (ulen == 2 && c == 0xC2 && s[i + 1] < 0xA0) {
                /* C1 controls (U+0080..U+009F; U+009B acts as CSI on some
                 * terminals): escaped, so `--json | cat` is as safe as text */
                snprintf(hex, sizeof hex, "\\u%04x", s[i + 1]);
                esc = hex;
            } else if (ulen == 3 && c == 0xE2 && ((s[i + 1] == 0x80 && s[i + 2] >= 0xAA && s[i + 2] <= 0xAE) ||
                                                   (s[i + 1] == 0x81 && s[i + 2] >= 0xA6 && s[i + 2] <= 0xA9))) {
                /* bidi overrides and isolates (U+202A..E, U+2066..9) */
                snprintf(hex, sizeof hex, "\\u%04x", 0x2000 | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
                esc = hex;
            }
        }
        if (esc) {
            ms_buf_add(b, s + i - run, run);
            run = 0;
            ms_buf_adds(b, esc);
            i += ulen;
        } else {
            run += ulen;
            i += ulen;
        }
    }
    ms_buf_add(b, s + n - run, run);
    ms_buf_addc(b, '"');
}

void ms_json_num(ms_buf *b, double v)
{
    if (!isfinite(v)) {
        ms_buf_adds(b, "null");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        ms_buf_printf(b, "%.0f", v);
        return;
    }
    char tmp[32];
    /* shortest of %.15g / %.17g that reads back as the same double */
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    ms_buf_adds(b, tmp);
}

void ms_json_int(ms_buf *b, int64_t v) { ms_buf_printf(b, "%lld", (long long)v); }

void ms_json_key(ms_buf *b, int *first, const char *key)
{
    if (!*first)
        ms_buf_addc(b, ',');
    *first = 0;
    ms_json_str(b, key, strlen(key));
    ms_buf_addc(b, ':');
}
