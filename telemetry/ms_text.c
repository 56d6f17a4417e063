#include "ms_text.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), its code point
 * in *cp; 0 when s does not start a valid sequence (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        *cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        *cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return len;
}

static int shown_as_escape(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

void ms_buf_add_text(ms_buf *b, const char *s, size_t n, int flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        /* copy the longest run that needs nothing */
        const unsigned char *run = p;
        uint32_t cp = 0;
        size_t len = 0;
        while (p < end && (len = utf8_seq(p, (size_t)(end - p), &cp)) && !shown_as_escape(cp))
            p += len;
        if (p > run)
            ms_buf_add(b, run, (size_t)(p - run));
        if (p >= end)
            break;
        if (len == 0) { /* not UTF-8: one byte */
            char e[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
            ms_buf_add(b, e, 4);
            p++;
            continue;
        }
        p += len;
        if (cp == '\n' && (flags & MS_TEXT_NEWLINES))
            ms_buf_addc(b, '\n');
        else if (cp == '\n')
            ms_buf_adds(b, "\\n");
        else if (cp == '\r')
            ms_buf_adds(b, "\\r");
        else if (cp == '\t')
            ms_buf_adds(b, "\\t");
        else if (cp < 0x80) {
            char e[4] = {'\\', 'x', hex[cp >> 4], hex[cp & 15]};
            ms_buf_add(b, e, 4);
        } else {
            ms_buf_printf(b, "\\u{%04x}", (unsigned)cp);
        }
    }
}

void ms_buf_add_texts(ms_buf *b, const char *s, int flags)
{
    if (s)
        ms_buf_add_text(b, s, strlen(s), flags);
}

void ms_buf_add_text_max(ms_buf *b, const char *s, size_t n, size_t max, int flags)
{
    if (n <= max) {
        ms_buf_add_text(b, s, n, flags);
        return;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--; /* do not split a character */
    ms_buf_add_text(b, s, cut, flags);
    ms_buf_adds(b, "...");
}
