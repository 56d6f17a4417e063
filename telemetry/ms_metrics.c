/* ms_metrics — the registry's families, series and text exposition. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_metrics.h"
#include "ms_strmap.h"

/* Bucket boundaries (seconds, tokens). GenAI v1.41.0 gen-ai-metrics.md:
 * D for durations and time to first chunk, T for token usage. Requests
 * are pipelines of such calls, so they use D too; steps are often far
 * shorter than a call, so theirs start at 0.5 ms. */
static const double BUCKETS_D[] = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64,
                                   1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double BUCKETS_T[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
                                   1048576, 4194304, 16777216, 67108864};
static const double BUCKETS_STEP[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NB(a) (sizeof a / sizeof a[0])
_Static_assert(NB(BUCKETS_D) <= MS_METRICS_MAX_BOUNDS && NB(BUCKETS_T) <= MS_METRICS_MAX_BOUNDS &&
               NB(BUCKETS_STEP) <= MS_METRICS_MAX_BOUNDS, "ms_metrics_point holds the buckets");

enum { COUNTER, HISTOGRAM };

typedef struct series {
    double value;          /* a counter's value; a histogram's sum */
    uint64_t count;        /* a histogram's observations */
    uint64_t *buckets;     /* per bucket (not cumulative), nb of them */
    char *labels;          /* `name="value",...` as exposed; NULL: not made yet */
} series;

typedef struct family {
    const char *name, *help;
    int type;
    const double *bounds;
    size_t nb;
    const char *const *labels; /* label names, NULL-terminated */
    const char *otel_name, *unit;   /* as OpenTelemetry names it (ms_metrics_visit) */
    const char *const *otel_keys;   /* the labels' attribute keys, in the same order */
    int integer;                    /* a count: OTLP as_int */
    ms_strmap keys;            /* label values, length-prefixed -> series index */
    long last;                 /* the series found last; -1 none */
    series *s;
    size_t cap;
} family;

static const char *const L_TRACE[] = {"trace_name", NULL};
static const char *const L_TRACE_STATUS[] = {"trace_name", "status", NULL};
static const char *const L_STEP[] = {"span_name", NULL};
/* the model asked for and the one that answered (GenAI v1.41.0 metrics'
 * attributes): a provider answers a model name with its dated version,
 * so the two stay one-to-one, and MS_METRICS_MAX_SERIES bounds them anyway */
static const char *const L_GENAI[] = {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
                                      "gen_ai_response_model", "error_type", NULL};
static const char *const L_TOKENS[] = {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
                                       "gen_ai_response_model", "gen_ai_token_type", NULL};
static const char *const L_COST[] = {"gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model",
                                     NULL};
static const char *const L_ERROR[] = {"error_type", NULL};
static const char *const L_NONE[] = {NULL};
/* the same labels as OpenTelemetry attribute keys */
static const char *const K_TRACE[] = {"moonspan.trace.name", NULL};
static const char *const K_TRACE_STATUS[] = {"moonspan.trace.name", "moonspan.trace.status", NULL};
static const char *const K_STEP[] = {"moonspan.span.name", NULL};
static const char *const K_GENAI[] = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                                      "gen_ai.response.model", "error.type", NULL};
static const char *const K_TOKENS[] = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                                       "gen_ai.response.model", "gen_ai.token.type", NULL};
static const char *const K_COST[] = {"gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
                                     NULL};
static const char *const K_ERROR[] = {"error.type", NULL};

enum { F_REQ_DUR, F_REQ, F_STEP, F_OP_DUR, F_TTFT, F_TOKENS, F_COST, F_ERRORS, F_RETRIES, NFAM };

struct ms_metrics {
    pthread_mutex_t lock;
    family f[NFAM];
    ms_buf key;            /* scratch: the label set being looked up */
    ms_buf raw;            /* scratch: its values, length-prefixed, unescaped */
    double (*queue_fn)(void *ud);
    void *queue_ud;
};

ms_metrics *ms_metrics_new(void)
{
    ms_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    const family init[NFAM] = {
        [F_REQ_DUR] = {"moonspan_request_duration_seconds",
                       "Duration of a request (a trace), by trace name.", HISTOGRAM, BUCKETS_D,
                       NB(BUCKETS_D), L_TRACE, "moonspan.request.duration", "s", K_TRACE, 0},
        [F_REQ] = {"moonspan_requests_total", "Requests (traces) that ended, by trace name and status.",
                   COUNTER, NULL, 0, L_TRACE_STATUS, "moonspan.requests", "{request}", K_TRACE_STATUS, 1},
        [F_STEP] = {"moonspan_step_duration_seconds", "Duration of a step (a span below the root), "
                    "by span name.", HISTOGRAM, BUCKETS_STEP, NB(BUCKETS_STEP), L_STEP, "moonspan.step.duration", "s", K_STEP, 0},
        [F_OP_DUR] = {"gen_ai_client_operation_duration_seconds", "GenAI operation duration.",
                      HISTOGRAM, BUCKETS_D, NB(BUCKETS_D), L_GENAI, "gen_ai.client.operation.duration", "s", K_GENAI, 0},
        [F_TTFT] = {"gen_ai_client_operation_time_to_first_chunk_seconds",
                    "Time to the first chunk of a streamed GenAI response.", HISTOGRAM, BUCKETS_D,
                    NB(BUCKETS_D), L_GENAI, "gen_ai.client.operation.time_to_first_chunk", "s", K_GENAI, 0},
        [F_TOKENS] = {"gen_ai_client_token_usage", "Tokens used per GenAI call, by direction "
                      "(input includes cache reads and writes).", HISTOGRAM, BUCKETS_T, NB(BUCKETS_T),
                      L_TOKENS, "gen_ai.client.token.usage", "{token}", K_TOKENS, 0},
        [F_COST] = {"moonspan_cost_usd_total", "Dollars spent on priced LLM calls (replayed calls "
                    "excluded).", COUNTER, NULL, 0, L_COST, "moonspan.cost.usd", "{USD}", K_COST, 0},
        [F_ERRORS] = {"moonspan_errors_total", "Errors, each counted once where it was raised, "
                      "by type.", COUNTER, NULL, 0, L_ERROR, "moonspan.errors", "{error}", K_ERROR, 1},
        [F_RETRIES] = {"moonspan_retries_total", "Retried attempts of spans and LLM calls.", COUNTER,
                       NULL, 0, L_NONE, "moonspan.retries", "{retry}", L_NONE, 1},
    };
    for (int i = 0; i < NFAM; i++) {
        m->f[i] = init[i];
        m->f[i].last = -1;
    }
    return m;
}

void ms_metrics_free(ms_metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < NFAM; i++) {
        for (size_t k = 0; k < m->f[i].keys.n && k < m->f[i].cap; k++) {
            free(m->f[i].s[k].buckets);
            free(m->f[i].s[k].labels);
        }
        free(m->f[i].s);
        ms_strmap_free(&m->f[i].keys);
    }
    ms_buf_free(&m->key);
    ms_buf_free(&m->raw);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void ms_metrics_lock(ms_metrics *m) { pthread_mutex_lock(&m->lock); }
void ms_metrics_unlock(ms_metrics *m) { pthread_mutex_unlock(&m->lock); }

void ms_metrics_set_queue_gauge(ms_metrics *m, double (*fn)(void *ud), void *ud)
{
    m->queue_fn = fn;
    m->queue_ud = ud;
}

/* --- label sets -------------------------------------------------------------- */

/* A label value as the text format wants it: \\, \" and \n escaped, and
 * bytes that are not UTF-8 (Prometheus refuses them) as U+FFFD. */
static void add_label_value(ms_buf *b, ms_mstr v)
{
    const unsigned char *s = (const unsigned char *)v.p;
    for (size_t i = 0; i < v.len;) {
        unsigned c = s[i];
        if (c == '\\' || c == '"') {
            ms_buf_addc(b, '\\');
            ms_buf_addc(b, (char)c);
            i++;
        } else if (c == '\n') {
            ms_buf_adds(b, "\\n");
            i++;
        } else if (c < 0x80) {
            ms_buf_addc(b, (char)c);
            i++;
        } else {
            size_t n = ms_utf8_len(s + i, v.len - i);
            if (n == 0) {
                ms_buf_adds(b, "\xEF\xBF\xBD");
                n = 1;
            } else {
                ms_buf_add(b, s + i, n);
            }
            i += n;
        }
    }
}

/* Renders `name="value",...` of the family's labels (values[i] absent:
 * the label is left out, as error_type is on a call that succeeded). */
static void render(ms_buf *b, const family *f, const ms_mstr *values, int other)
{
    ms_buf_reset(b);
    int first = 1;
    for (size_t i = 0; f->labels[i]; i++) {
        if (!values[i].p)
            continue;
        if (!first)
            ms_buf_addc(b, ',');
        first = 0;
        ms_buf_adds(b, f->labels[i]);
        ms_buf_adds(b, "=\"");
        if (other)
            ms_buf_adds(b, MS_METRICS_OTHER);
        else
            add_label_value(b, values[i]);
        ms_buf_addc(b, '"');
    }
}

/* The raw key of the series that takes label sets past the bound: raw
 * keys of label sets begin with a size_t length, never with this byte. */
static const char OTHER_RAW[] = "\xff_other";

/* The series of label set `values` in f, created when new; past
 * MS_METRICS_MAX_SERIES the "_other" series. Looked up by the values as
 * they are (length-prefixed): escaping is done once, when a series is
 * made. NULL when memory ran out (the observation is lost, the registry
 * stays consistent). */
static series *find(ms_metrics *m, family *f, const ms_mstr *values)
{
    /* the key in a stack buffer when it fits (labels are short) */
    char small[256];
    size_t klen = 0;
    for (size_t i = 0; f->labels[i]; i++)
        klen += sizeof(size_t) + (values[i].p ? values[i].len : 0);
    const char *key = small;
    if (klen > sizeof small) {
        ms_buf_reset(&m->raw);
        for (size_t i = 0; f->labels[i]; i++) {
            size_t len = values[i].p ? values[i].len : SIZE_MAX;
            ms_buf_add(&m->raw, &len, sizeof len);
            if (values[i].p)
                ms_buf_add(&m->raw, values[i].p, values[i].len);
        }
        if (m->raw.oom)
            return NULL;
        key = m->raw.data;
    } else {
        char *w = small;
        for (size_t i = 0; f->labels[i]; i++) {
            size_t len = values[i].p ? values[i].len : SIZE_MAX;
            memcpy(w, &len, sizeof len);
            w += sizeof len;
            if (values[i].p) {
                memcpy(w, values[i].p, values[i].len);
                w += values[i].len;
            }
        }
    }
    /* the label set looked up last: an LLM call's families see the same one
     * call after call */
    if (f->last >= 0) {
        const ms_strmap_ent *e = &f->keys.ent[f->last];
        if (e->klen == klen && memcmp(e->key, key, klen) == 0 && f->s[f->last].labels)
            return &f->s[f->last];
    }
    int other = 0;
    long ix = ms_strmap_find(&f->keys, key, klen);
    if (ix < 0 && f->keys.n >= MS_METRICS_MAX_SERIES) { /* full: a new label set counts as _other */
        key = OTHER_RAW;
        klen = sizeof OTHER_RAW - 1;
        other = 1;
    }
    int created = 0;
    if (ix < 0)
        ix = ms_strmap_get(&f->keys, key, klen, &created);
    if (ix < 0)
        return NULL;
    if ((size_t)ix >= f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        series *ns = realloc(f->s, cap * sizeof *ns);
        if (!ns)
            return NULL; /* the key stays without a series: created again below next time */
        memset(ns + f->cap, 0, (cap - f->cap) * sizeof *ns);
        f->s = ns;
        f->cap = cap;
    }
    series *s = &f->s[ix];
    if (!s->labels) {
        render(&m->key, f, values, other);
        if (m->key.oom || !(s->labels = strdup(m->key.data ? m->key.data : "")))
            return NULL;
        if (f->nb && !(s->buckets = calloc(f->nb, sizeof *s->buckets))) {
            free(s->labels);
            s->labels = NULL;
            return NULL;
        }
    }
    f->last = ix;
    return s;
}

static void observe(family *f, series *s, double v, uint64_t count)
{
    if (!s)
        return;
    s->value += v * (double)count;
    s->count += count;
    size_t b = 0;
    while (b < f->nb && v > f->bounds[b]) /* le: a value on a boundary counts in it */
        b++;
    if (b < f->nb)
        s->buckets[b] += count;
}

static void add(series *s, double v)
{
    if (s)
        s->value += v;
}

/* --- observations -------------------------------------------------------------- */

static ms_mstr cstr(const char *s) { return (ms_mstr){s, s ? strlen(s) : 0}; }
static ms_mstr or_unknown(ms_mstr s) { return s.p && s.len ? s : cstr("unknown"); }

void ms_metrics_request(ms_metrics *m, ms_mstr name, int64_t duration_ns, const char *status)
{
    ms_mstr v[] = {name, cstr(status)};
    observe(&m->f[F_REQ_DUR], find(m, &m->f[F_REQ_DUR], v), (double)duration_ns / 1e9, 1);
    add(find(m, &m->f[F_REQ], v), 1);
}

void ms_metrics_step(ms_metrics *m, ms_mstr name, uint64_t count, int64_t total_ns)
{
    if (count == 0)
        return;
    observe(&m->f[F_STEP], find(m, &m->f[F_STEP], &name), (double)total_ns / 1e9 / (double)count, count);
}

void ms_metrics_llm_call(ms_metrics *m, const ms_metrics_llm *c)
{
    /* as the span export names them (ms_otlp_map.c): asked for, else the
     * stored one; the one that answered, on a call that did not fail */
    ms_mstr asked = c->request_model.p && c->request_model.len ? c->request_model : c->model;
    ms_mstr answered = !c->error_type.p && c->model.p && c->model.len ? c->model : (ms_mstr){0};
    ms_mstr v[] = {cstr("chat"), or_unknown(c->provider), or_unknown(asked), answered, c->error_type};
    if (v[4].p && !v[4].len)
        v[4] = cstr("_OTHER");
    observe(&m->f[F_OP_DUR], find(m, &m->f[F_OP_DUR], v), (double)c->duration_ns / 1e9, 1);
    if (c->ttft_ns >= 0)
        observe(&m->f[F_TTFT], find(m, &m->f[F_TTFT], v), (double)c->ttft_ns / 1e9, 1);
    ms_mstr t[] = {v[0], v[1], v[2], v[3], cstr("input")};
    observe(&m->f[F_TOKENS], find(m, &m->f[F_TOKENS], t),
            (double)(c->input + c->cache_read + c->cache_write), 1);
    t[4] = cstr("output");
    observe(&m->f[F_TOKENS], find(m, &m->f[F_TOKENS], t), (double)c->output, 1);
    if (!isnan(c->cost_usd) && !c->replayed) {
        ms_mstr k[] = {v[1], v[2], v[3]};
        add(find(m, &m->f[F_COST], k), c->cost_usd);
    }
}

void ms_metrics_error(ms_metrics *m, ms_mstr type)
{
    ms_mstr v[] = {or_unknown(type)};
    add(find(m, &m->f[F_ERRORS], v), 1);
}

void ms_metrics_retries(ms_metrics *m, uint64_t n)
{
    if (n)
        add(find(m, &m->f[F_RETRIES], NULL), (double)n);
}

/* --- exposition ---------------------------------------------------------------- */

static void add_num(ms_buf *b, double v)
{
    if (isnan(v))
        ms_buf_adds(b, "NaN");
    else if (isinf(v))
        ms_buf_adds(b, v > 0 ? "+Inf" : "-Inf");
    else if (fabs(v) < 1e15 && v == (double)(int64_t)v)
        ms_buf_printf(b, "%lld", (long long)v);
    else { /* the shortest of 15 or 17 digits that reads back as v */
        char n[32];
        snprintf(n, sizeof n, "%.15g", v);
        if (strtod(n, NULL) != v)
            snprintf(n, sizeof n, "%.17g", v);
        ms_buf_adds(b, n);
    }
}

/* name{labels[,extra]} */
static void sample_name(ms_buf *b, const char *name, const char *suffix, const char *labels,
                        const char *extra)
{
    ms_buf_adds(b, name);
    ms_buf_adds(b, suffix);
    int has = labels && *labels;
    if (!has && !extra)
        return;
    ms_buf_addc(b, '{');
    if (has)
        ms_buf_adds(b, labels);
    if (extra) {
        if (has)
            ms_buf_addc(b, ',');
        ms_buf_adds(b, extra);
    }
    ms_buf_addc(b, '}');
}

static void write_family(ms_buf *b, const family *f)
{
    if (f->keys.n == 0)
        return;
    ms_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                  f->type == HISTOGRAM ? "histogram" : "counter");
    for (size_t k = 0; k < f->keys.n; k++) {
        if (k >= f->cap || !f->s[k].labels)
            continue;
        const char *labels = f->s[k].labels;
        const series *s = &f->s[k];
        if (f->type == COUNTER) {
            sample_name(b, f->name, "", labels, NULL);
            ms_buf_addc(b, ' ');
            add_num(b, s->value);
            ms_buf_addc(b, '\n');
            continue;
        }
        if (!s->buckets)
            continue;
        uint64_t cum = 0;
        char le[48];
        for (size_t i = 0; i < f->nb; i++) {
            cum += s->buckets[i];
            snprintf(le, sizeof le, "le=\"%.15g\"", f->bounds[i]);
            sample_name(b, f->name, "_bucket", labels, le);
            ms_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        sample_name(b, f->name, "_bucket", labels, "le=\"+Inf\"");
        ms_buf_printf(b, " %llu\n", (unsigned long long)s->count);
        sample_name(b, f->name, "_sum", labels, NULL);
        ms_buf_addc(b, ' ');
        add_num(b, s->value);
        ms_buf_addc(b, '\n');
        sample_name(b, f->name, "_count", labels, NULL);
        ms_buf_printf(b, " %llu\n", (unsigned long long)s->count);
    }
}

int ms_metrics_write(ms_metrics *m, ms_buf *out)
{
    /* read before the registry's lock: the gauge takes the tracer's */
    double depth = m->queue_fn ? m->queue_fn(m->queue_ud) : NAN;
    ms_metrics_lock(m);
    for (int i = 0; i < NFAM; i++)
        write_family(out, &m->f[i]);
    if (m->queue_fn) {
        ms_buf_adds(out, "# HELP moonspan_writer_queue_depth Traces waiting for the writer thread.\n"
                         "# TYPE moonspan_writer_queue_depth gauge\nmoonspan_writer_queue_depth ");
        add_num(out, depth);
        ms_buf_addc(out, '\n');
    }
    ms_metrics_unlock(m);
    return out->oom ? -1 : 0;
}

/* --- the registry for OTLP ------------------------------------------------------ */

/* The label values of series k, from its raw key (length-prefixed values,
 * SIZE_MAX for an absent one; see find). */
static void raw_values(const family *f, size_t k, ms_mstr *out)
{
    const ms_strmap_ent *e = &f->keys.ent[k];
    int other = e->klen == sizeof OTHER_RAW - 1 && memcmp(e->key, OTHER_RAW, e->klen) == 0;
    const char *p = e->key, *end = e->key + e->klen;
    for (size_t i = 0; f->labels[i] && i < MS_METRICS_MAX_LABELS; i++) {
        out[i] = (ms_mstr){0};
        if (other) {
            out[i] = cstr(MS_METRICS_OTHER);
            continue;
        }
        size_t len;
        if ((size_t)(end - p) < sizeof len)
            break;
        memcpy(&len, p, sizeof len);
        p += sizeof len;
        if (len == SIZE_MAX || len > (size_t)(end - p))
            continue;
        out[i] = (ms_mstr){p, len};
        p += len;
    }
}

static int visit_family(const family *f, ms_metrics_point **pts, size_t *cap, ms_metrics_visit_fn fn, void *ud)
{
    if (f->keys.n == 0)
        return 0;
    if (*cap < f->keys.n) {
        ms_metrics_point *np = realloc(*pts, f->keys.n * sizeof *np);
        if (!np)
            return -1;
        *pts = np;
        *cap = f->keys.n;
    }
    size_t n = 0;
    for (size_t k = 0; k < f->keys.n; k++) {
        if (k >= f->cap || !f->s[k].labels || (f->nb && !f->s[k].buckets))
            continue; /* a key whose series could not be made (out of memory) */
        const series *s = &f->s[k];
        ms_metrics_point *p = &(*pts)[n++];
        memset(p, 0, sizeof *p);
        raw_values(f, k, p->attrs);
        p->value = s->value;
        p->count = s->count;
        uint64_t below = 0;
        for (size_t i = 0; i < f->nb; i++)
            below += p->buckets[i] = s->buckets[i];
        if (f->nb)
            p->buckets[f->nb] = s->count - below;
    }
    ms_metrics_family info = {f->otel_name, f->unit, f->help,
                              f->type == HISTOGRAM ? MS_METRIC_HISTOGRAM : MS_METRIC_SUM,
                              f->integer, f->bounds, f->nb, f->otel_keys};
    return n ? fn(ud, &info, *pts, n) : 0;
}

int ms_metrics_visit(ms_metrics *m, ms_metrics_visit_fn fn, void *ud)
{
    double depth = m->queue_fn ? m->queue_fn(m->queue_ud) : NAN; /* before the lock, as in ms_metrics_write */
    ms_metrics_point *pts = NULL;
    size_t cap = 0;
    int rc = 0;
    ms_metrics_lock(m);
    for (int i = 0; i < NFAM && rc == 0; i++)
        rc = visit_family(&m->f[i], &pts, &cap, fn, ud);
    ms_metrics_unlock(m);
    if (rc == 0 && m->queue_fn) {
        static const char *const none[] = {NULL};
        ms_metrics_family q = {"moonspan.writer.queue_depth", "{trace}", "Traces waiting for the writer thread.",
                               MS_METRIC_GAUGE, 1, NULL, 0, none};
        ms_metrics_point p = {.value = depth};
        rc = fn(ud, &q, &p, 1);
    }
    free(pts);
    return rc;
}
