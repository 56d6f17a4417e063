/* ms_buf — a growable byte buffer, and a JSON writer on top of it.
 *
 * Used by the store (attributes as JSON text), the report (--json) and the
 * exporters. A buffer that fails to grow keeps its old contents and sets
 * `oom`; writers check it once at the end instead of after every append. */
#ifndef MS_BUF_H
#define MS_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct ms_buf {
    char *data;     /* always NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int oom;        /* set when an append could not grow the buffer */
} ms_buf;

/* Appends `n` bytes; on allocation failure sets b->oom and appends nothing. */
void ms_buf_add(ms_buf *b, const void *p, size_t n);
void ms_buf_adds(ms_buf *b, const char *s);
void ms_buf_addc(ms_buf *b, char c);
/* printf-style append. */
void ms_buf_printf(ms_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Forgets the contents but keeps the memory (for reuse without allocating). */
static inline void ms_buf_reset(ms_buf *b) { b->len = 0; if (b->data) b->data[0] = 0; }
void ms_buf_free(ms_buf *b);

/* Formats a message into err (when err is not NULL and errlen > 0) and
 * returns -1, so error paths read `return ms_errf(err, errlen, ...)`. */
int ms_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Length of the valid UTF-8 sequence starting at s (at most n bytes, n > 0),
 * or 0 when the bytes there are not one. */
size_t ms_utf8_len(const unsigned char *s, size_t n);

/* --- JSON ------------------------------------------------------------- */

/* Appends `s` as a JSON string literal, quotes included. Invalid UTF-8
 * bytes are replaced by U+FFFD so the output is always valid JSON. */
void ms_json_str(ms_buf *b, const char *s, size_t n);
/* Appends a number; NaN and infinities (not JSON) become null. Integral
 * values print without a fraction, others with up to 17 significant digits. */
void ms_json_num(ms_buf *b, double v);
void ms_json_int(ms_buf *b, int64_t v);

/* Object/array helpers that take care of commas. `first` is the caller's
 * "no member written yet" flag for the current object. */
void ms_json_key(ms_buf *b, int *first, const char *key);

#endif
