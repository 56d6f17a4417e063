/* ms_otlp_in_pb — what the OTLP receiver's files share (ms_otlp_in.c reads
 * requests and builds traces, ms_otlp_in_genai.c reads what the attributes
 * say about an LLM call): a bounds-checked protobuf reader over a slice of
 * the body, and a view of a message's attributes. Private to them. */
#ifndef MS_OTLP_IN_PB_H
#define MS_OTLP_IN_PB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ms_prices.h"
#include "ms_trace.h"

typedef struct pb {
    const uint8_t *p, *end;
} pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One field: its number, wire type and value (a slice for WT_LEN). */
typedef struct pb_field {
    uint32_t num;
    int wt;
    uint64_t v;
    pb s;
} pb_field;

static inline int pb_varint(pb *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The next field of message r: 1, 0 at its end, -1 when malformed. */
static inline int pb_next(pb *r, pb_field *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t tag;
    if (pb_varint(r, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case WT_VARINT:
        return pb_varint(r, &f->v) ? -1 : 1;
    case WT_I64:
    case WT_I32: {
        size_t n = f->wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return -1;
        f->v = 0;
        for (size_t k = 0; k < n; k++)
            f->v |= (uint64_t)r->p[k] << (8 * k);
        r->p += n;
        return 1;
    }
    case WT_LEN: {
        uint64_t n;
        if (pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return -1;
        f->s.p = r->p;
        f->s.end = r->p + n;
        r->p += n;
        return 1;
    }
    default:
        return -1; /* groups (3, 4) are not in the OTLP schema; 6, 7 do not exist */
    }
}

static inline size_t pb_len(pb s) { return (size_t)(s.end - s.p); }

/* --- a message's attributes, for looking keys up --------------------------- */

enum { AV_NONE, AV_STR, AV_BOOL, AV_INT, AV_DOUBLE, AV_ARRAY, AV_OTHER };

typedef struct ms_otlpin_attr {
    pb key;
    int type;
    pb s;        /* AV_STR, AV_ARRAY (the ArrayValue) */
    int64_t i;   /* AV_INT, AV_BOOL */
    double d;    /* AV_DOUBLE */
} ms_otlpin_attr;

/* The attributes of one span, for looking keys up. */
typedef struct ms_otlpin_attrs {
    ms_otlpin_attr *a;
    uint32_t n, cap;
} ms_otlpin_attrs;

/* Reads the KeyValue fields numbered kvnum of message m into as (reusing
 * its memory). Returns 0 or ENOMEM. */
int ms_otlpin_collect_attrs_(ms_otlpin_attrs *as, pb m, uint32_t kvnum);
/* Reads an AnyValue into a (its key untouched). */
void ms_otlpin_read_any_(pb v, ms_otlpin_attr *a);
/* The value of attribute `key` (the last when repeated), or NULL. */
const ms_otlpin_attr *ms_otlpin_attr_(const ms_otlpin_attrs *as, const char *key);
/* The same, only when the value is a string. */
const ms_otlpin_attr *ms_otlpin_str_attr_(const ms_otlpin_attrs *as, const char *key);

/* Whether the attributes make the span an LLM call (GenAI, OpenInference,
 * Langfuse; the README's table). */
int ms_otlpin_is_llm_(const ms_otlpin_attrs *as);
/* The call's usage from the attributes of a span from `start` to `end`
 * (Unix epoch ns): provider and model (written into the buffers given,
 * cut to fit), tokens with cached ones out of the input, cost (the span's
 * own, else `prices`, else NaN), TTFT (-1 when none). */
void ms_otlpin_usage_(const ms_otlpin_attrs *as, uint64_t start, uint64_t end, const ms_prices *prices,
                    ms_llm_usage *u, char *model, size_t model_len, char *provider, size_t provider_len);

static inline int str_is(pb s, const char *v)
{
    size_t n = strlen(v);
    return pb_len(s) == n && memcmp(s.p, v, n) == 0;
}

/* Copies a string value into buf (NUL-terminated, cut at n - 1). */
static inline const char *cstr(pb s, char *buf, size_t n)
{
    size_t len = pb_len(s) < n - 1 ? pb_len(s) : n - 1;
    memcpy(buf, s.p, len);
    buf[len] = 0;
    return buf;
}

#endif
