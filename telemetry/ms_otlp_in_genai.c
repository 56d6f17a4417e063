/* ms_otlp_in_genai — what a received span's attributes say about an LLM call:
 * whether it is one, its model, provider, tokens, cost and time to first
 * token, read from the OpenTelemetry GenAI conventions (v1.41.0), OpenInference
 * (Phoenix) and Langfuse attributes, in the priority Langfuse uses. The
 * README's "moonspan serve --otlp" section lists every key. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_otlp_in_pb.h"

/* --- the attribute view ---------------------------------------------------- */

void ms_otlpin_read_any_(pb v, ms_otlpin_attr *a)
{
    a->type = AV_NONE;
    pb_field f;
    while (pb_next(&v, &f) > 0) {
        switch (f.num) {
        case 1: if (f.wt == WT_LEN) { a->type = AV_STR; a->s = f.s; } break;
        case 2: if (f.wt == WT_VARINT) { a->type = AV_BOOL; a->i = f.v != 0; } break;
        case 3: if (f.wt == WT_VARINT) { a->type = AV_INT; a->i = (int64_t)f.v; } break;
        case 4:
            if (f.wt == WT_I64) {
                a->type = AV_DOUBLE;
                memcpy(&a->d, &f.v, sizeof a->d);
            }
            break;
        case 5: if (f.wt == WT_LEN) { a->type = AV_ARRAY; a->s = f.s; } break;
        default: a->type = AV_OTHER; break;
        }
    }
}

static void read_kv(pb kv, ms_otlpin_attr *a)
{
    memset(a, 0, sizeof *a);
    pb_field f;
    while (pb_next(&kv, &f) > 0) {
        if (f.num == 1 && f.wt == WT_LEN)
            a->key = f.s;
        else if (f.num == 2 && f.wt == WT_LEN)
            ms_otlpin_read_any_(f.s, a);
    }
}

int ms_otlpin_collect_attrs_(ms_otlpin_attrs *as, pb m, uint32_t kvnum)
{
    as->n = 0;
    pb_field f;
    while (pb_next(&m, &f) > 0) {
        if (f.num != kvnum || f.wt != WT_LEN)
            continue;
        if (as->n == as->cap) {
            uint32_t cap = as->cap ? as->cap * 2 : 32;
            ms_otlpin_attr *p = realloc(as->a, cap * sizeof *p);
            if (!p)
                return ENOMEM;
            as->a = p;
            as->cap = cap;
        }
        read_kv(f.s, &as->a[as->n]);
        if (as->a[as->n].key.p)
            as->n++;
    }
    return 0;
}

const ms_otlpin_attr *ms_otlpin_attr_(const ms_otlpin_attrs *as, const char *key)
{
    size_t klen = strlen(key);
    for (uint32_t i = as->n; i-- > 0;) /* the last of a repeated key wins */
        if (pb_len(as->a[i].key) == klen && memcmp(as->a[i].key.p, key, klen) == 0 &&
            as->a[i].type != AV_NONE)
            return &as->a[i];
    return NULL;
}

/* A string attribute's value, or NULL. */
const ms_otlpin_attr *ms_otlpin_str_attr_(const ms_otlpin_attrs *as, const char *key)
{
    const ms_otlpin_attr *a = ms_otlpin_attr_(as, key);
    return a && a->type == AV_STR ? a : NULL;
}

/* The first of `keys` that holds a whole number (an int, an integral
 * double or a decimal string); 1 when found. */
static int int_attr(const ms_otlpin_attrs *as, const char *const *keys, int64_t *out)
{
    for (; *keys; keys++) {
        const ms_otlpin_attr *a = ms_otlpin_attr_(as, *keys);
        if (!a)
            continue;
        if (a->type == AV_INT && a->i >= 0) {
            *out = a->i;
            return 1;
        }
        if (a->type == AV_DOUBLE && a->d >= 0 && a->d <= 9e15 && a->d == floor(a->d)) {
            *out = (int64_t)a->d;
            return 1;
        }
        if (a->type == AV_STR && pb_len(a->s) > 0 && pb_len(a->s) < 19) {
            int64_t v = 0;
            const uint8_t *p = a->s.p;
            for (; p < a->s.end && *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
            if (p == a->s.end) {
                *out = v;
                return 1;
            }
        }
    }
    return 0;
}

static int num_attr(const ms_otlpin_attrs *as, const char *const *keys, double *out)
{
    for (; *keys; keys++) {
        const ms_otlpin_attr *a = ms_otlpin_attr_(as, *keys);
        if (a && a->type == AV_DOUBLE && isfinite(a->d) && a->d >= 0) {
            *out = a->d;
            return 1;
        }
        if (a && a->type == AV_INT && a->i >= 0) {
            *out = (double)a->i;
            return 1;
        }
    }
    return 0;
}


/* --- time ------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const uint8_t **p, const uint8_t *end, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* An ISO-8601 date-time ("2026-01-01T10:00:00.250Z", an offset instead of
 * Z allowed) as Unix epoch ns; -1 when it is not one. Langfuse's
 * completion_start_time. */
static int64_t parse_iso(pb s)
{
    const uint8_t *p = s.p, *e = s.end;
    int y, mo, d, h, mi, sec;
    if (digits(&p, e, 4, &y) || p >= e || *p++ != '-' || digits(&p, e, 2, &mo) || p >= e || *p++ != '-' ||
        digits(&p, e, 2, &d) || p >= e || (*p != 'T' && *p != 't' && *p != ' ') || !++p ||
        digits(&p, e, 2, &h) || p >= e || *p++ != ':' || digits(&p, e, 2, &mi) || p >= e || *p++ != ':' ||
        digits(&p, e, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    int64_t frac = 0, scale = 1000000000;
    if (p < e && *p == '.') {
        p++;
        for (; p < e && *p >= '0' && *p <= '9'; p++)
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
    }
    int64_t offset = 0;
    if (p < e && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < e && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, e, 2, &oh) || (p < e && *p == ':' && !++p) || digits(&p, e, 2, &om))
            return -1;
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    }
    if (p != e)
        return -1;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    int64_t ns;
    if (__builtin_mul_overflow(secs, INT64_C(1000000000), &ns) || __builtin_add_overflow(ns, frac, &ns))
        return -1; /* past 2262: not a time a span can hold */
    return ns;
}

/* --- the call -------------------------------------------------------------- */

/* Whether the span is an LLM call, by its own words first. */
int ms_otlpin_is_llm_(const ms_otlpin_attrs *as)
{
    const ms_otlpin_attr *a;
    if ((a = ms_otlpin_str_attr_(as, "langfuse.observation.type")))
        return str_is(a->s, "generation") || str_is(a->s, "GENERATION") || str_is(a->s, "embedding") ||
               str_is(a->s, "EMBEDDING");
    if ((a = ms_otlpin_str_attr_(as, "openinference.span.kind")))
        return str_is(a->s, "LLM") || str_is(a->s, "EMBEDDING");
    if ((a = ms_otlpin_str_attr_(as, "gen_ai.operation.name")))
        return str_is(a->s, "chat") || str_is(a->s, "text_completion") || str_is(a->s, "generate_content") ||
               str_is(a->s, "embeddings") || str_is(a->s, "completion") || str_is(a->s, "generate");
    static const char *const tokens[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                                         "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
                                         "llm.token_count.prompt", "llm.token_count.completion", NULL};
    int64_t n;
    return int_attr(as, tokens, &n) || ms_otlpin_str_attr_(as, "gen_ai.request.model") ||
           ms_otlpin_str_attr_(as, "llm.model_name");
}

void ms_otlpin_usage_(const ms_otlpin_attrs *as, uint64_t start, uint64_t end, const ms_prices *prices,
                    ms_llm_usage *usage, char *model, size_t model_len, char *provider, size_t provider_len)
{
    static const char *const model_keys[] = {"langfuse.observation.model.name", "gen_ai.response.model",
                                             "gen_ai.request.model", "llm.response.model", "llm.model_name",
                                             "model", NULL};
    static const char *const provider_keys[] = {"gen_ai.provider.name", "gen_ai.system", "llm.provider",
                                                "llm.system", NULL};
    static const char *const in_keys[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                          "llm.token_count.prompt", NULL};
    static const char *const out_keys[] = {"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                           "llm.token_count.completion", NULL};
    static const char *const cr_keys[] = {"gen_ai.usage.cache_read.input_tokens",
                                          "llm.token_count.prompt_details.cache_read", NULL};
    static const char *const cw_keys[] = {"gen_ai.usage.cache_creation.input_tokens",
                                          "gen_ai.usage.cache_write.input_tokens",
                                          "llm.token_count.prompt_details.cache_write", NULL};
    static const char *const cost_keys[] = {"gen_ai.usage.cost", "llm.cost.total", NULL};
    static const char *const ttft_keys[] = {"gen_ai.response.time_to_first_chunk", NULL};
    model[0] = provider[0] = 0;
    const ms_otlpin_attr *a;
    for (const char *const *k = model_keys; *k; k++)
        if ((a = ms_otlpin_str_attr_(as, *k)) && pb_len(a->s)) {
            cstr(a->s, model, model_len);
            break;
        }
    for (const char *const *k = provider_keys; *k; k++)
        if ((a = ms_otlpin_str_attr_(as, *k)) && pb_len(a->s)) {
            cstr(a->s, provider, provider_len);
            break;
        }
    int64_t in = 0, out = 0, cr = 0, cw = 0;
    int has_in = int_attr(as, in_keys, &in), has_out = int_attr(as, out_keys, &out);
    int_attr(as, cr_keys, &cr);
    int_attr(as, cw_keys, &cw);
    if (in > MS_TOKENS_MAX) in = MS_TOKENS_MAX;
    if (out > MS_TOKENS_MAX) out = MS_TOKENS_MAX;
    if (cr > MS_TOKENS_MAX) cr = MS_TOKENS_MAX;
    if (cw > MS_TOKENS_MAX) cw = MS_TOKENS_MAX;
    /* the conventions count cached tokens in the input; moonspan's input excludes them */
    in = in - cr - cw > 0 ? in - cr - cw : 0;
    ms_llm_usage u = {
        .provider = provider[0] ? provider : NULL,
        .model = model[0] ? model : NULL,
        .input = in, .output = out, .cache_read = cr, .cache_write = cw,
        .cost_usd = NAN, .ttft_ns = -1,
        .estimated = !has_in && !has_out, /* no usage sent: the zeros are not facts */
    };
    double v;
    if (num_attr(as, cost_keys, &v)) {
        u.cost_usd = v;
    } else if (prices && model[0]) {
        const ms_price *p = ms_prices_find(prices, model);
        if (p && !u.estimated)
            u.cost_usd = ms_price_cost(p, in, out, cr, cw);
    }
    if (num_attr(as, ttft_keys, &v) && v < 1e6) {
        u.ttft_ns = (int64_t)llround(v * 1e9);
    } else if ((a = ms_otlpin_str_attr_(as, "langfuse.observation.completion_start_time"))) {
        int64_t at = parse_iso(a->s);
        if (at >= (int64_t)start && at <= (int64_t)end)
            u.ttft_ns = at - (int64_t)start;
    }
    *usage = u;
}
