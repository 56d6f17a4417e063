/* ms_otlp_in_json — OTLP/JSON trace requests as protobuf (ms_otlp_in_json.h).
 * A strict JSON reader driven by a table of the trace messages' fields. */
#include "ms_otlp_in_json.h"
#include "ms_otlp_pb.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* --- the schema: the fields of the trace request's messages ----------------- */

enum ftype { F_MSG, F_STR, F_HEX, F_BYTES, F_INT, F_FIXED64, F_FIXED32, F_DOUBLE, F_BOOL };

typedef struct field {
    const char *json, *snake;
    unsigned num;
    enum ftype type;
    int repeated;
    const struct field *sub;   /* F_MSG: its fields, ended by a NULL json name */
} field;

/* AnyValue and KeyValue nest in each other: declared before defined, so
 * not static (C has no static forward declaration of an array) */
extern const field ms_otlp_in_json_any_value_[], ms_otlp_in_json_key_value_[];
#define ANY_VALUE ms_otlp_in_json_any_value_
#define KEY_VALUE ms_otlp_in_json_key_value_
static const field ARRAY_VALUE[] = {{"values", "values", 1, F_MSG, 1, ANY_VALUE}, {0}};
static const field KV_LIST[] = {{"values", "values", 1, F_MSG, 1, KEY_VALUE}, {0}};
const field ANY_VALUE[] = {
    {"stringValue", "string_value", 1, F_STR, 0, NULL}, {"boolValue", "bool_value", 2, F_BOOL, 0, NULL},
    {"intValue", "int_value", 3, F_INT, 0, NULL},       {"doubleValue", "double_value", 4, F_DOUBLE, 0, NULL},
    {"arrayValue", "array_value", 5, F_MSG, 0, ARRAY_VALUE},
    {"kvlistValue", "kvlist_value", 6, F_MSG, 0, KV_LIST},
    {"bytesValue", "bytes_value", 7, F_BYTES, 0, NULL}, {0}};
const field KEY_VALUE[] = {{"key", "key", 1, F_STR, 0, NULL}, {"value", "value", 2, F_MSG, 0, ANY_VALUE}, {0}};
static const field RESOURCE[] = {{"attributes", "attributes", 1, F_MSG, 1, KEY_VALUE},
                                 {"droppedAttributesCount", "dropped_attributes_count", 2, F_INT, 0, NULL},
                                 {0}};
static const field SCOPE[] = {{"name", "name", 1, F_STR, 0, NULL}, {"version", "version", 2, F_STR, 0, NULL},
                              {"attributes", "attributes", 3, F_MSG, 1, KEY_VALUE}, {0}};
static const field STATUS[] = {{"message", "message", 2, F_STR, 0, NULL}, {"code", "code", 3, F_INT, 0, NULL},
                               {0}};
static const field EVENT[] = {{"timeUnixNano", "time_unix_nano", 1, F_FIXED64, 0, NULL},
                              {"name", "name", 2, F_STR, 0, NULL},
                              {"attributes", "attributes", 3, F_MSG, 1, KEY_VALUE}, {0}};
static const field SPAN[] = {
    {"traceId", "trace_id", 1, F_HEX, 0, NULL},
    {"spanId", "span_id", 2, F_HEX, 0, NULL},
    {"traceState", "trace_state", 3, F_STR, 0, NULL},
    {"parentSpanId", "parent_span_id", 4, F_HEX, 0, NULL},
    {"name", "name", 5, F_STR, 0, NULL},
    {"kind", "kind", 6, F_INT, 0, NULL},
    {"startTimeUnixNano", "start_time_unix_nano", 7, F_FIXED64, 0, NULL},
    {"endTimeUnixNano", "end_time_unix_nano", 8, F_FIXED64, 0, NULL},
    {"attributes", "attributes", 9, F_MSG, 1, KEY_VALUE},
    {"events", "events", 11, F_MSG, 1, EVENT},
    {"status", "status", 15, F_MSG, 0, STATUS},
    {"flags", "flags", 16, F_FIXED32, 0, NULL},
    {0}};
static const field SCOPE_SPANS[] = {{"scope", "scope", 1, F_MSG, 0, SCOPE},
                                    {"spans", "spans", 2, F_MSG, 1, SPAN},
                                    {"schemaUrl", "schema_url", 3, F_STR, 0, NULL}, {0}};
static const field RESOURCE_SPANS[] = {{"resource", "resource", 1, F_MSG, 0, RESOURCE},
                                       {"scopeSpans", "scope_spans", 2, F_MSG, 1, SCOPE_SPANS},
                                       {"schemaUrl", "schema_url", 3, F_STR, 0, NULL}, {0}};
static const field REQUEST[] = {{"resourceSpans", "resource_spans", 1, F_MSG, 1, RESOURCE_SPANS}, {0}};

/* --- the reader ------------------------------------------------------------- */

typedef struct jr {
    const char *start, *p, *end;
    int depth;
    ms_buf str;                /* the last string read, decoded */
    char *err;
    size_t errlen;
} jr;

static int bad(jr *r, const char *what)
{
    return ms_errf(r->err, r->errlen, "%s at byte %zu; send a JSON ExportTraceServiceRequest", what,
                   (size_t)(r->p - r->start));
}

static void ws(jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex4(jr *r, unsigned *out)
{
    if (r->end - r->p < 4)
        return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = *r->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(ms_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xc0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 0x3f)); u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    ms_buf_add(b, u, n);
}

/* A string into r->str (decoded, not NUL-safe: use its len). */
static int string(jr *r)
{
    ms_buf_reset(&r->str);
    if (r->p >= r->end || *r->p != '"')
        return bad(r, "expected a string");
    r->p++;
    for (;;) {
        const char *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20)
            r->p++;
        ms_buf_add(&r->str, run, (size_t)(r->p - run));
        if (r->p >= r->end)
            return bad(r, "a string is not closed");
        char c = *r->p++;
        if (c == '"')
            break;
        if (c != '\\')
            return bad(r, "a control character inside a string");
        if (r->p >= r->end)
            return bad(r, "a string is not closed");
        c = *r->p++;
        switch (c) {
        case '"': case '\\': case '/': ms_buf_addc(&r->str, c); break;
        case 'b': ms_buf_addc(&r->str, '\b'); break;
        case 'f': ms_buf_addc(&r->str, '\f'); break;
        case 'n': ms_buf_addc(&r->str, '\n'); break;
        case 'r': ms_buf_addc(&r->str, '\r'); break;
        case 't': ms_buf_addc(&r->str, '\t'); break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(r, &cp))
                return bad(r, "a bad \\u escape");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return bad(r, "a lone low surrogate");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                    return bad(r, "a lone high surrogate");
                r->p += 2;
                if (hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return bad(r, "a bad surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(&r->str, cp);
            break;
        }
        default:
            return bad(r, "a bad escape in a string");
        }
    }
    return r->str.oom ? bad(r, "out of memory") : 0;
}

/* A JSON number token: its text in buf (NUL-terminated). */
static int number_text(jr *r, char *buf, size_t n)
{
    const char *s = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return bad(r, "expected a value");
    if (*r->p == '0')
        r->p++;
    else
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            return bad(r, "a number with nothing after its point");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            return bad(r, "a number with a bad exponent");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    size_t len = (size_t)(r->p - s);
    if (len >= n)
        return bad(r, "a number too long");
    memcpy(buf, s, len);
    buf[len] = 0;
    return 0;
}

static int literal(jr *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return bad(r, "expected a value");
    r->p += n;
    return 0;
}

/* Enters the object or array whose opening character r is at: 1 when it
 * is empty (then also left), 0 when a member or element follows, -1 when
 * nested too deep. */
static int enter(jr *r, char close)
{
    if (++r->depth > MS_OTLP_IN_JSON_DEPTH)
        return bad(r, "nesting too deep");
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return 1;
    }
    return 0;
}

/* After a member or element: 1 when a comma says another follows, 0 when
 * `close` ends the container (then left), -1 for anything else. */
static int next_or_leave(jr *r, char close)
{
    ws(r);
    if (r->p < r->end && *r->p == ',') {
        r->p++;
        ws(r);
        return 1;
    }
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return 0;
    }
    return bad(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int skip_value(jr *r);

static int skip_container(jr *r, char open, char close)
{
    int empty = enter(r, close);
    if (empty)
        return empty < 0 ? -1 : 0;
    int more;
    do {
        if (open == '{') {
            if (string(r))
                return -1;
            ws(r);
            if (r->p >= r->end || *r->p++ != ':')
                return bad(r, "expected ':'");
            ws(r);
        }
        if (skip_value(r))
            return -1;
    } while ((more = next_or_leave(r, close)) > 0);
    return more;
}

static int skip_value(jr *r)
{
    char num[64];
    if (r->p >= r->end)
        return bad(r, "the body ends where a value should be");
    switch (*r->p) {
    case '{': return skip_container(r, '{', '}');
    case '[': return skip_container(r, '[', ']');
    case '"': return string(r);
    case 't': return literal(r, "true");
    case 'f': return literal(r, "false");
    case 'n': return literal(r, "null");
    default: return number_text(r, num, sizeof num);
    }
}

/* --- the writer ------------------------------------------------------------- */

/* An integer given as a number or a decimal string (proto3 JSON's int64). */
static int integer(jr *r, int is_signed, uint64_t *out)
{
    char num[64];
    if (r->p < r->end && *r->p == '"') {
        if (string(r))
            return -1;
        if (r->str.len == 0 || r->str.len >= sizeof num)
            return bad(r, "expected an integer in a string");
        memcpy(num, r->str.data, r->str.len);
        num[r->str.len] = 0;
    } else if (number_text(r, num, sizeof num)) {
        return -1;
    }
    char *end;
    errno = 0;
    if (strpbrk(num, ".eE")) { /* 1e9 or 5.0: a whole number written as a float */
        double d = strtod(num, &end);
        if (*end || d != floor(d) || !(d >= (is_signed ? -9.2e18 : 0) && d <= 1.8e19))
            return bad(r, "expected a whole number");
        *out = d < 0 ? (uint64_t)(int64_t)d : (uint64_t)d;
        return 0;
    }
    if (is_signed) {
        long long v = strtoll(num, &end, 10);
        if (*end || errno)
            return bad(r, "expected a 64-bit integer");
        *out = (uint64_t)v;
    } else {
        if (num[0] == '-')
            return bad(r, "expected an unsigned integer");
        unsigned long long v = strtoull(num, &end, 10);
        if (*end || errno)
            return bad(r, "expected an unsigned 64-bit integer");
        *out = v;
    }
    return 0;
}

static int message(jr *r, const field *fields, ms_buf *out);

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One value of field f, written as that field. */
static int value(jr *r, const field *f, ms_buf *out)
{
    uint64_t v;
    switch (f->type) {
    case F_MSG: {
        ms_pb_tag(out, f->num, MS_PB_LEN);
        size_t at = out->len;
        ms_buf_add(out, "\x80\x80\x80\x80\x00", 5); /* the length, padded: patched below */
        if (message(r, f->sub, out))
            return -1;
        if (out->oom)
            return bad(r, "out of memory");
        size_t n = out->len - at - 5;
        if (n >= (size_t)1 << 35)
            return bad(r, "a message too large");
        for (int k = 0; k < 5; k++)
            out->data[at + k] = (char)((n >> (7 * k) & 0x7f) | (k < 4 ? 0x80 : 0));
        return 0;
    }
    case F_STR:
    case F_BYTES: /* bytes stay base64 text: the decoder drops bytes values anyway */
        if (string(r))
            return -1;
        ms_pb_bytes(out, f->num, r->str.data, r->str.len);
        return 0;
    case F_HEX: {
        if (string(r))
            return -1;
        if (r->str.len % 2 || r->str.len > 64)
            return bad(r, "an id that is not hex (32 characters for a trace id, 16 for a span id)");
        ms_pb_tag(out, f->num, MS_PB_LEN);
        ms_pb_varint(out, r->str.len / 2);
        for (size_t k = 0; k < r->str.len; k += 2) {
            int hi = hexval(r->str.data[k]), lo = hexval(r->str.data[k + 1]);
            if (hi < 0 || lo < 0)
                return bad(r, "an id that is not hex (32 characters for a trace id, 16 for a span id)");
            ms_buf_addc(out, (char)(hi << 4 | lo));
        }
        return 0;
    }
    case F_INT:
        if (integer(r, 1, &v))
            return -1;
        ms_pb_uint(out, f->num, v);
        return 0;
    case F_FIXED64:
    case F_FIXED32:
        if (integer(r, 0, &v))
            return -1;
        if (f->type == F_FIXED32 && v > UINT32_MAX)
            return bad(r, "a 32-bit field out of range");
        if (f->type == F_FIXED64)
            ms_pb_fixed64(out, f->num, v);
        else
            ms_pb_fixed32(out, f->num, (uint32_t)v);
        return 0;
    case F_DOUBLE: {
        double d;
        if (r->p < r->end && *r->p == '"') { /* proto3 JSON spells the non-finite ones */
            if (string(r))
                return -1;
            if (r->str.len == 3 && !memcmp(r->str.data, "NaN", 3)) d = NAN;
            else if (r->str.len == 8 && !memcmp(r->str.data, "Infinity", 8)) d = INFINITY;
            else if (r->str.len == 9 && !memcmp(r->str.data, "-Infinity", 9)) d = -INFINITY;
            else return bad(r, "expected a number");
        } else {
            char num[64];
            if (number_text(r, num, sizeof num))
                return -1;
            d = strtod(num, NULL);
        }
        ms_pb_double(out, f->num, d);
        return 0;
    }
    case F_BOOL:
        if (r->p < r->end && *r->p == 't') {
            if (literal(r, "true"))
                return -1;
            v = 1;
        } else {
            if (literal(r, "false"))
                return -1;
            v = 0;
        }
        ms_pb_uint(out, f->num, v);
        return 0;
    }
    return bad(r, "internal: unknown field type");
}

static const field *find_field(const field *fields, const char *key, size_t n)
{
    for (const field *f = fields; f->json; f++)
        if ((strlen(f->json) == n && !memcmp(f->json, key, n)) ||
            (strlen(f->snake) == n && !memcmp(f->snake, key, n)))
            return f;
    return NULL;
}

/* An object of message `fields`: its members, written as fields of out. */
static int message(jr *r, const field *fields, ms_buf *out)
{
    if (r->p >= r->end || *r->p != '{')
        return bad(r, "expected an object");
    int empty = enter(r, '}');
    if (empty)
        return empty < 0 ? -1 : 0;
    int more;
    do {
        char key[64];
        if (string(r))
            return -1;
        size_t kn = r->str.len < sizeof key ? r->str.len : sizeof key - 1;
        memcpy(key, r->str.data ? r->str.data : "", kn);
        const field *f = r->str.len < sizeof key ? find_field(fields, key, kn) : NULL;
        ws(r);
        if (r->p >= r->end || *r->p++ != ':')
            return bad(r, "expected ':'");
        ws(r);
        if (!f || (r->p < r->end && *r->p == 'n')) { /* unknown, or null: ignored */
            if (skip_value(r))
                return -1;
        } else if (f->repeated) {
            if (r->p >= r->end || *r->p != '[')
                return bad(r, "expected an array");
            int no_items = enter(r, ']');
            if (no_items < 0)
                return -1;
            if (!no_items) {
                int more_items;
                do {
                    if (value(r, f, out))
                        return -1;
                } while ((more_items = next_or_leave(r, ']')) > 0);
                if (more_items < 0)
                    return -1;
            }
        } else if (value(r, f, out)) {
            return -1;
        }
    } while ((more = next_or_leave(r, '}')) > 0);
    return more;
}

int ms_otlp_in_json_to_protobuf(const char *json, size_t len, ms_buf *out, char *err, size_t errlen)
{
    jr r = {.start = json, .p = json, .end = json + len, .err = err, .errlen = errlen};
    ws(&r);
    int rc = message(&r, REQUEST, out);
    if (rc == 0) {
        ws(&r);
        if (r.p != r.end)
            rc = bad(&r, "text after the request object");
    }
    if (rc == 0 && out->oom)
        rc = bad(&r, "out of memory");
    ms_buf_free(&r.str);
    return rc;
}
