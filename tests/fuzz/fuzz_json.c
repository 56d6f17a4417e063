/* fuzz_json — the JSON the store writes: ms_json_str and ms_json_num
 * (telemetry/ms_buf.c) and a span's attributes as ms_span_attrs_json
 * (telemetry/ms_trace.c) gives them.
 *
 * The output is always valid JSON, by a strict RFC 8259 reader below and
 * by SQLite's json_valid() (what `moonspan sql` and users' json_extract
 * queries read it with); strings read back as the bytes given, invalid
 * UTF-8 bytes each as U+FFFD; numbers read back as the same double, bit
 * for bit; attributes read back as the last value set for each key, in
 * the order keys were first set.
 *
 * Input: the first 8 bytes are a double for ms_json_num; the whole input
 * is a string for ms_json_str; and the input read as records
 *   op (bits 0-1: string, int, double, bool; bit 2: root or child span),
 *   key length (% 24), key, value (string: length byte and bytes;
 *   int, double: 8 bytes; bool: 1 byte)
 * sets attributes on two spans of a trace. */
#include <math.h>
#include <sqlite3.h>

#include "fuzz.h"
#include "ms_buf.h"
#include "ms_trace.h"

/* --- a strict reader ----------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or 0.
 * Written apart from ms_buf.c's decoder on purpose: it is the reference. */
static size_t utf8_ok(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

typedef struct reader {
    const unsigned char *p, *end;
} reader;

static void ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int lit(reader *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n))
        return 0;
    r->p += n;
    return 1;
}

static int hex4(reader *r, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++, r->p++) {
        if (r->p >= r->end)
            return 0;
        unsigned c = *r->p;
        unsigned d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
        if (d == 16)
            return 0;
        *v = *v << 4 | d;
    }
    return 1;
}

static void put_utf8(ms_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 63)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 63));
        u[2] = (char)(0x80 | (cp & 63)); n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 63));
        u[2] = (char)(0x80 | (cp >> 6 & 63)); u[3] = (char)(0x80 | (cp & 63)); n = 4;
    }
    ms_buf_add(b, u, n);
}

/* A string literal, decoded into out (a lone surrogate escape as U+FFFD). */
static int string(reader *r, ms_buf *out)
{
    if (!lit(r, "\""))
        return 0;
    for (;;) {
        if (r->p >= r->end || *r->p < 0x20)
            return 0;
        if (*r->p == '"') {
            r->p++;
            return 1;
        }
        if (*r->p != '\\') {
            size_t n = utf8_ok(r->p, (size_t)(r->end - r->p));
            if (!n)
                return 0;
            ms_buf_add(out, r->p, n);
            r->p += n;
            continue;
        }
        if (++r->p >= r->end)
            return 0;
        const char *esc = strchr("\"\\/bfnrtu", *r->p);
        if (!esc || !*r->p)
            return 0;
        static const char plain[] = "\"\\/\b\f\n\r\t";
        if (*r->p != 'u') {
            ms_buf_addc(out, plain[esc - "\"\\/bfnrtu"]);
            r->p++;
            continue;
        }
        r->p++;
        unsigned cp, lo;
        if (!hex4(r, &cp))
            return 0;
        if (cp >= 0xD800 && cp <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' &&
            r->p[1] == 'u') {
            reader save = *r;
            r->p += 2;
            if (hex4(r, &lo) && lo >= 0xDC00 && lo <= 0xDFFF)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
                *r = save;
        }
        put_utf8(out, cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp);
    }
}

static int digits(reader *r)
{
    const unsigned char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > start;
}

static int number(reader *r)
{
    lit(r, "-");
    if (!lit(r, "0") && !(r->p < r->end && *r->p >= '1' && *r->p <= '9' && digits(r)))
        return 0;
    if (lit(r, ".") && !digits(r))
        return 0;
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (!lit(r, "+"))
            lit(r, "-");
        if (!digits(r))
            return 0;
    }
    return 1;
}

static int value(reader *r, int depth)
{
    ms_buf scratch = {0};
    int ok = 0;
    ws(r);
    if (depth > 64 || r->p >= r->end)
        return 0;
    switch (*r->p) {
    case '"':
        ok = string(r, &scratch);
        break;
    case '{':
    case '[': {
        int obj = *r->p++ == '{';
        ws(r);
        if (lit(r, obj ? "}" : "]")) {
            ok = 1;
            break;
        }
        do {
            if (obj) {
                ws(r);
                ms_buf_reset(&scratch);
                if (!string(r, &scratch))
                    goto out;
                ws(r);
                if (!lit(r, ":"))
                    goto out;
            }
            if (!value(r, depth + 1))
                goto out;
            ws(r);
        } while (lit(r, ","));
        ok = lit(r, obj ? "}" : "]");
        break;
    }
    default:
        ok = lit(r, "true") || lit(r, "false") || lit(r, "null") || number(r);
    }
out:
    ms_buf_free(&scratch);
    return ok;
}

/* The whole of text is one JSON value. */
static int valid(const char *text, size_t n)
{
    reader r = {(const unsigned char *)text, (const unsigned char *)text + n};
    if (!value(&r, 0))
        return 0;
    ws(&r);
    return r.p == r.end;
}

/* --- SQLite's opinion ------------------------------------------------------- */

static sqlite3_stmt *json_valid_stmt;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT json_valid(?1)", -1, &json_valid_stmt, NULL) != SQLITE_OK)
        abort();
    return 0;
}

static void check_json(const ms_buf *b)
{
    FUZZ_CHECK(!b->oom, "out of memory");
    FUZZ_CHECK(valid(b->data, b->len), "not JSON: %.*s", (int)b->len, b->data);
    sqlite3_bind_text(json_valid_stmt, 1, b->data, (int)b->len, SQLITE_STATIC);
    FUZZ_CHECK(sqlite3_step(json_valid_stmt) == SQLITE_ROW &&
               sqlite3_column_int(json_valid_stmt, 0) == 1,
               "SQLite's json_valid() refuses %.*s", (int)b->len, b->data);
    sqlite3_reset(json_valid_stmt);
}

/* --- the checks ---------------------------------------------------------- */

static int same_bytes(const ms_buf *a, const ms_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* s[0..n) with every byte that does not start a well-formed sequence
 * replaced by U+FFFD: what a string must read back as. */
static void expected_string(const unsigned char *s, size_t n, ms_buf *out)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_ok(s + i, n - i);
        if (k) {
            ms_buf_add(out, s + i, k);
            i += k;
        } else {
            ms_buf_adds(out, "\xEF\xBF\xBD");
            i++;
        }
    }
}

static void check_string(const unsigned char *s, size_t n)
{
    ms_buf b = {0}, got = {0}, want = {0};
    ms_json_str(&b, (const char *)s, n);
    check_json(&b);
    reader r = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len};
    FUZZ_CHECK(string(&r, &got), "unreadable string");
    expected_string(s, n, &want);
    FUZZ_CHECK(same_bytes(&got, &want),
               "string of %zu bytes reads back as %zu bytes: %.*s", n, got.len, (int)b.len, b.data);
    ms_buf_free(&b);
    ms_buf_free(&got);
    ms_buf_free(&want);
}

/* The text of a number at r, checked against v. */
static void check_number_at(reader *r, double v)
{
    const unsigned char *start = r->p;
    if (!isfinite(v)) {
        FUZZ_CHECK(lit(r, "null"), "%g is not written as null", v);
        return;
    }
    FUZZ_CHECK(number(r), "%g: not a number", v);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(r->p - start), (const char *)start);
    double back = strtod(tmp, NULL);
    FUZZ_CHECK(memcmp(&back, &v, sizeof v) == 0, "%.17g is written as %s", v, tmp);
}

static void check_num(double v)
{
    ms_buf b = {0};
    ms_json_num(&b, v);
    check_json(&b);
    reader r = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len};
    check_number_at(&r, v);
    FUZZ_CHECK(r.p == r.end, "%g is written as %s", v, b.data);
    ms_buf_free(&b);
}

/* What a span's attributes should be: keys in first-set order, last value. */
typedef struct attr {
    const uint8_t *key, *str;
    size_t klen, slen;
    int type;
    int64_t i;
    double d;
} attr;

#define MAXATTRS 512

static void check_attrs(const ms_trace *t, uint32_t span, const attr *want, size_t n)
{
    ms_buf b = {0}, key = {0}, str = {0};
    ms_span_attrs_json(t, span, &b);
    if (n == 0) {
        FUZZ_CHECK(b.len == 0, "no attributes, yet %s", b.data);
        return;
    }
    check_json(&b);
    reader r = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len};
    FUZZ_CHECK(lit(&r, "{"), "not an object: %s", b.data);
    for (size_t i = 0; i < n; i++) {
        const attr *a = &want[i];
        FUZZ_CHECK(i == 0 || lit(&r, ","), "member %zu missing in %s", i, b.data);
        ms_buf_reset(&key);
        FUZZ_CHECK(string(&r, &key) && lit(&r, ":"), "member %zu of %s", i, b.data);
        ms_buf_reset(&str);
        expected_string(a->key, a->klen, &str);
        FUZZ_CHECK(same_bytes(&key, &str), "member %zu has another key: %s", i, b.data);
        char tmp[32];
        switch (a->type) {
        case MS_ATTR_STRING:
            ms_buf_reset(&key);
            ms_buf_reset(&str);
            expected_string(a->str, a->slen, &str);
            FUZZ_CHECK(string(&r, &key) && same_bytes(&key, &str),
                       "member %zu has another string: %s", i, b.data);
            break;
        case MS_ATTR_INT:
            snprintf(tmp, sizeof tmp, "%lld", (long long)a->i);
            FUZZ_CHECK(lit(&r, tmp), "member %zu is not %s: %s", i, tmp, b.data);
            break;
        case MS_ATTR_DOUBLE:
            check_number_at(&r, a->d);
            break;
        default:
            FUZZ_CHECK(lit(&r, a->i ? "true" : "false"), "member %zu: %s", i, b.data);
        }
    }
    FUZZ_CHECK(lit(&r, "}") && r.p == r.end, "more members than set: %s", b.data);
    ms_buf_free(&b);
    ms_buf_free(&key);
    ms_buf_free(&str);
}

static void set(attr *list, size_t *n, const attr *a)
{
    for (size_t i = 0; i < *n; i++) {
        if (list[i].klen == a->klen && memcmp(list[i].key, a->key, a->klen) == 0) {
            list[i] = *a;
            return;
        }
    }
    if (*n < MAXATTRS)
        list[(*n)++] = *a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_string(data, size);
    if (size >= 8) {
        double d;
        memcpy(&d, data, 8);
        check_num(d);
    }

    static ms_trace t;
    if (ms_trace_start(&t, "fuzz", 4, 1, NULL, 0))
        abort();
    uint32_t spans[2] = {0, ms_span_begin(&t, 0, "child", 5, 2)};
    static attr want[2][MAXATTRS];
    size_t nwant[2] = {0, 0};
    const uint8_t *p = data, *end = data + size;
    while (end - p >= 2 && nwant[0] < MAXATTRS && nwant[1] < MAXATTRS) {
        attr a = {0};
        int which = p[0] >> 2 & 1;
        a.type = p[0] & 3;
        a.klen = p[1] % 24;
        p += 2;
        if ((size_t)(end - p) < a.klen)
            a.klen = (size_t)(end - p);
        a.key = p;
        p += a.klen;
        uint8_t raw[8] = {0};
        size_t take;
        switch (a.type) {
        case MS_ATTR_STRING:
            a.slen = p < end ? *p++ : 0;
            if ((size_t)(end - p) < a.slen)
                a.slen = (size_t)(end - p);
            a.str = p;
            p += a.slen;
            ms_span_set_str(&t, spans[which], (const char *)a.key, a.klen, (const char *)a.str, a.slen);
            break;
        case MS_ATTR_INT:
        case MS_ATTR_DOUBLE:
            take = (size_t)(end - p) < 8 ? (size_t)(end - p) : 8;
            memcpy(raw, p, take);
            p += take;
            if (a.type == MS_ATTR_INT) {
                memcpy(&a.i, raw, 8);
                ms_span_set_int(&t, spans[which], (const char *)a.key, a.klen, a.i);
            } else {
                memcpy(&a.d, raw, 8);
                ms_span_set_double(&t, spans[which], (const char *)a.key, a.klen, a.d);
            }
            break;
        default:
            a.i = p < end ? *p++ & 1 : 0;
            ms_span_set_bool(&t, spans[which], (const char *)a.key, a.klen, (int)a.i);
        }
        set(want[which], &nwant[which], &a);
    }
    FUZZ_CHECK(!t.oom, "trace out of memory");
    check_attrs(&t, spans[0], want[0], nwant[0]);
    check_attrs(&t, spans[1], want[1], nwant[1]);
    return 0;
}
