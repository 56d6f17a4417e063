/* ms_series — the report cut into hour or day buckets (see ms_series.h).
 *
 * One pass over the selected traces in start order. A bucket is open
 * while the traces read fall in it: its requests (all, and by name) keep
 * their completed durations for the percentiles, its spans go to an
 * ms_steps grouped by path, as the report's do. When a trace of a later
 * bucket comes, the open one is written out and freed, so memory is that
 * of the largest bucket. */
#include "ms_series.h"

#include "ms_fmt.h"
#include "ms_percentile.h"
#include "ms_read.h"
#include "ms_spans.h"
#include "ms_steps.h"
#include "ms_strmap.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_HOUR INT64_C(3600000000000)

/* What the report says of a set of requests, for one bucket. */
typedef struct req_stats {
    int64_t requests, completed, error_requests;
    int64_t in_tok, out_tok, priced, unknown;
    double cost;                 /* live spend over the priced requests */
    double *dur;                 /* ns, completed requests */
    size_t ndur, capdur;
} req_stats;

typedef struct bucket {
    int open;
    int64_t key;                 /* start_ns / bucket size, floored */
    req_stats all;
    ms_strmap names;             /* request names -> by_name index */
    req_stats *by_name;          /* rows 0 .. nby of names' keys */
    size_t nby, capnames;
    ms_steps steps;
    int64_t retried, retry_ok;
} bucket;

static void bucket_free(bucket *b)
{
    free(b->all.dur);
    for (size_t i = 0; i < b->nby; i++)
        free(b->by_name[i].dur);
    free(b->by_name);
    ms_strmap_free(&b->names);
    ms_steps_free(&b->steps);
    memset(b, 0, sizeof *b);
}

static void bucket_start(bucket *b, int64_t key)
{
    memset(b, 0, sizeof *b);
    b->open = 1;
    b->key = key;
    ms_steps_init(&b->steps, MS_STEPS_BY_PATH);
}

/* Adds one request to s. Returns 0 or -1 (OOM). */
static int req_add(req_stats *s, int completed, int error, int64_t dur, int64_t in, int64_t out,
                   int priced, double cost, int64_t unknown)
{
    if (completed) {
        if (ms_grow((void **)&s->dur, &s->capdur, s->ndur, sizeof *s->dur))
            return -1;
        s->dur[s->ndur++] = (double)dur;
        s->completed++;
    }
    s->requests++;
    s->error_requests += error;
    s->in_tok += in;
    s->out_tok += out;
    s->priced += priced;
    s->cost += cost;
    s->unknown += unknown;
    return 0;
}

/* The request members of s, as the report computes them. */
static int req_json(req_stats *s, ms_buf *b, int *g)
{
    static const double qs[3] = {50, 95, 99};
    double lat[3];
    if (ms_percentiles(s->dur, s->ndur, qs, 3, lat) != 0)
        return -1;
    ms_kv_int(b, g, "requests", s->requests);
    ms_kv_int(b, g, "completed", s->completed);
    ms_kv_int(b, g, "error_requests", s->error_requests);
    ms_kv_num(b, g, "error_rate", s->requests ? (double)s->error_requests / (double)s->requests : NAN);
    static const char *const names[3] = {"p50_ms", "p95_ms", "p99_ms"};
    for (int i = 0; i < 3; i++)
        ms_kv_num(b, g, names[i], round(lat[i]) / MS_NS_PER_MS); /* whole ns, as report */
    ms_kv_int(b, g, "input_tokens", s->in_tok);
    ms_kv_int(b, g, "output_tokens", s->out_tok);
    ms_kv_num(b, g, "cost_usd", s->priced ? s->cost : NAN);
    ms_kv_int(b, g, "priced_requests", s->priced);
    ms_kv_num(b, g, "avg_usd_per_request", s->priced ? s->cost / (double)s->requests : NAN);
    ms_kv_int(b, g, "unknown_cost_calls", s->unknown);
    return 0;
}

static void path_json(void *ud, const char *name)
{
    ms_buf *b = ud;
    if (b->data[b->len - 1] != '[')
        ms_buf_addc(b, ',');
    ms_json_str(b, name, strlen(name));
}

/* Writes the open bucket as one element of "buckets" and frees it.
 * Returns 0 or -1 with err. */
static int bucket_flush(bucket *bk, int64_t size, int first, ms_buf *b, char *err, size_t errlen)
{
    int ret = -1;
    if (ms_steps_finish(&bk->steps)) {
        ms_errf(err, errlen, "out of memory computing the step percentiles");
        goto done;
    }
    char iso[40];
    int g = 1;
    if (!first)
        ms_buf_addc(b, ',');
    ms_buf_addc(b, '{');
    ms_kv_int(b, &g, "start_ns", bk->key * size);
    ms_iso_utc(bk->key * size, iso, sizeof iso);
    ms_kv_str(b, &g, "start", iso);
    if (req_json(&bk->all, b, &g))
        goto pct;
    ms_kv_int(b, &g, "retried_calls", bk->retried);
    ms_kv_int(b, &g, "retry_succeeded", bk->retry_ok);
    ms_kv_num(b, &g, "retry_success_rate", bk->retried ? (double)bk->retry_ok / (double)bk->retried : NAN);

    ms_json_key(b, &g, "names");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < bk->nby; i++) {
        int h = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &h, "name", bk->names.ent[i].key);
        if (req_json(&bk->by_name[i], b, &h))
            goto pct;
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');

    const ms_steps *st = &bk->steps;
    size_t n = st->nsteps < MS_SERIES_MAX_STEPS ? st->nsteps : MS_SERIES_MAX_STEPS;
    ms_json_key(b, &g, "steps");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const ms_step *s = &st->steps[i];
        int h = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &h, "label", s->label);
        ms_kv_str(b, &h, "name", ms_steps_name(st, s->name));
        ms_json_key(b, &h, "path");
        ms_buf_addc(b, '[');
        if (!b->oom)
            ms_steps_path_each(st, s, path_json, b);
        ms_buf_addc(b, ']');
        ms_kv_int(b, &h, "count", (int64_t)s->total.count);
        ms_kv_num(b, &h, "p50_ms", s->p50);
        ms_kv_num(b, &h, "p95_ms", s->p95);
        ms_kv_num(b, &h, "p99_ms", s->p99);
        ms_kv_num(b, &h, "total_ms", s->total.sum / MS_NS_PER_MS);
        ms_kv_raw(b, &h, "approximate", s->approximate ? "true" : "false");
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    ms_kv_int(b, &g, "steps_omitted", (int64_t)(st->nsteps - n));
    ms_buf_addc(b, '}');
    ret = 0;
    goto done;
pct:
    ms_errf(err, errlen, "percentile computation failed");
done:
    bucket_free(bk);
    return ret;
}

/* Adds the spans of the trace in the current row of `st` (its row id,
 * salt, parts and own blob at columns 9..12) to the bucket's steps and
 * retries. Returns 0 or -1 with err. */
static int bucket_spans(bucket *bk, ms_spans_walk *w, sqlite3_stmt *st, char *err, size_t errlen)
{
    int64_t row = ms_spans_walk_columns(w, st, 9);
    ms_span_rec sp;
    int got;
    while ((got = ms_spans_walk_next(w, &sp)) == 1) {
        if (ms_steps_add(&bk->steps, w, &sp))
            goto steps_failed;
        if (sp.retries > 0) {
            bk->retried++;
            bk->retry_ok += sp.retry_state == MS_RETRY_SUCCEEDED;
        }
    }
    if (got == 0) {
        if (ms_steps_trace_end(&bk->steps))
            goto steps_failed;
        return 0;
    }
    return ms_errf(err, errlen, "trace row %lld: its stored spans are corrupt (%s); the rest of the"
                   " store reads, this trace cannot", (long long)row, w->error);
steps_failed:
    return ms_errf(err, errlen, "trace row %lld: grouping its steps: %s", (long long)row,
                   bk->steps.error ? bk->steps.error : "out of memory");
}

/* Adds the trace in the current row of `st` to the open bucket. */
static int bucket_add(bucket *bk, ms_spans_walk *w, sqlite3_stmt *st, char *err, size_t errlen)
{
    const char *status = (const char *)sqlite3_column_text(st, 2);
    int completed = !status || (strcmp(status, "interrupted") && strcmp(status, "incomplete"));
    int error = status && !strcmp(status, "error");
    int priced = sqlite3_column_type(st, 6) != SQLITE_NULL;
    double cost = priced ? sqlite3_column_double(st, 6) : 0;
    if (sqlite3_column_type(st, 8) != SQLITE_NULL)
        cost -= sqlite3_column_double(st, 8); /* live spend, as the report */
    int64_t dur = sqlite3_column_int64(st, 1), in = sqlite3_column_int64(st, 4),
            out = sqlite3_column_int64(st, 5), unknown = sqlite3_column_int64(st, 7);
    const char *name = (const char *)sqlite3_column_text(st, 3);
    size_t nlen = (size_t)sqlite3_column_bytes(st, 3);
    int created;
    long ix = ms_strmap_get(&bk->names, name ? name : "", name ? nlen : 0, &created);
    if (ix < 0)
        return ms_errf(err, errlen, "out of memory reading traces");
    if (created) {
        /* keys are dense and new ones come last: ix == nby */
        if (ms_grow((void **)&bk->by_name, &bk->capnames, bk->nby, sizeof *bk->by_name))
            return ms_errf(err, errlen, "out of memory reading traces");
        memset(&bk->by_name[bk->nby++], 0, sizeof *bk->by_name);
    }
    if (req_add(&bk->all, completed, error, dur, in, out, priced, cost, unknown) ||
        req_add(&bk->by_name[ix], completed, error, dur, in, out, priced, cost, unknown))
        return ms_errf(err, errlen, "out of memory reading traces");
    return bucket_spans(bk, w, st, err, errlen);
}

/* The pass, inside the caller's read transaction. */
static int scan(sqlite3 *db, const ms_select *sel, int64_t size, ms_buf *out, char *err, size_t errlen)
{
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT t.start_ns, t.duration_ns, t.status, t.name, t.input_tokens,"
                      " t.output_tokens, t.cost_usd, t.unknown_cost_calls, t.replayed_cost_usd,"
                      " t.id, t.span_salt, t.parts, t.spans FROM traces t");
    sqlite3_stmt *st;
    if (ms_select_prepare(db, sel, &sql, " ORDER BY t.start_ns, t.id", &st, err, errlen))
        return -1;
    ms_spans_walk w;
    if (ms_spans_walk_open(&w, db, err, errlen)) {
        sqlite3_finalize(st);
        return -1;
    }
    int ret = -1, rc;
    size_t nbuckets = 0;
    bucket bk;
    memset(&bk, 0, sizeof bk);
    if (ms_select_bind(db, st, sel, err, errlen))
        goto done;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t key = ms_floor_div(sqlite3_column_int64(st, 0), size);
        if (!bk.open || key != bk.key) {
            if (bk.open && bucket_flush(&bk, size, nbuckets == 1, out, err, errlen))
                goto done;
            if (++nbuckets > MS_SERIES_MAX_BUCKETS) {
                ms_errf(err, errlen, "the selection spans more than %d %s; narrow it with since/until"
                        " or use bucket=day", MS_SERIES_MAX_BUCKETS, size == NS_PER_HOUR ? "hours" : "days");
                ret = MS_SERIES_TOO_WIDE;
                goto done;
            }
            bucket_start(&bk, key);
        }
        if (bucket_add(&bk, &w, st, err, errlen))
            goto done;
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (bk.open && bucket_flush(&bk, size, nbuckets == 1, out, err, errlen))
        goto done;
    ret = 0;
done:
    bucket_free(&bk);
    ms_spans_walk_close(&w);
    sqlite3_finalize(st);
    return ret;
}

int ms_series_json(sqlite3 *db, const ms_select *sel, enum ms_series_bucket by, ms_buf *out,
                   char *err, size_t errlen)
{
    assert(db && sel && out);
    int64_t size = by == MS_SERIES_HOUR ? NS_PER_HOUR : MS_NS_PER_DAY;
    int own = 0;
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    ms_buf_adds(out, "{\"bucket\":");
    ms_buf_adds(out, by == MS_SERIES_HOUR ? "\"hour\"" : "\"day\"");
    ms_buf_adds(out, ",\"buckets\":[");
    int ret = scan(db, sel, size, out, err, errlen);
    ms_buf_adds(out, "]}");
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0 && out->oom)
        ret = ms_errf(err, errlen, "out of memory writing the series");
    return ret;
}
