/* ms_report — `moonspan report`: reads the traces within the filters into
 * a report (ms_report_data.h), then has ms_report_out.c write it.
 *
 * One pass over the filtered traces, each row read with its packed spans
 * (request latency, tokens, cost and cost trend from the row; steps,
 * models, errors, LLM call failures, retries and their backoff, estimated
 * tokens from the spans, manual errors from their events); eval runs come
 * from their own tables. Steps are grouped by ms_steps, models by
 * ms_models, errors with an ms_strmap; percentiles are found by
 * selection, so no sort of the spans is needed.
 *
 * The store may be of an older schema (read opens never upgrade): what a
 * later version added is looked up first (ms_schema_has) and read only
 * when it is there. */
#include "ms_report.h"

#include "ms_fmt.h"
#include "ms_percentile.h"
#include "ms_read.h"
#include "ms_report_data.h"
#include "ms_spans.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- scans --------------------------------------------------------------- */

/* Frees everything a report owns (safe on a partly filled report). */
static void report_free(report *r)
{
    ms_steps_free(&r->steps);
    ms_models_free(&r->models);
    free(r->errs);
    free(r->trend);
    free(r->evals);
    free(r->fails);
    ms_buf_free(&r->ev_arena);
    ms_strmap_free(&r->err_keys);
}

/* The trend row for period `key`, inserted in key order when new. NULL on
 * OOM. Periods are few (days of history), so a sorted array with a
 * last-hit cache beats a map. */
static trend_row *trend_at(report *r, int64_t key)
{
    if (r->ntrend && r->trend[r->trend_last].key == key)
        return &r->trend[r->trend_last];
    size_t lo = 0, hi = r->ntrend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->trend[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == r->ntrend || r->trend[lo].key != key) {
        if (ms_grow((void **)&r->trend, &r->captrend, r->ntrend, sizeof *r->trend))
            return NULL;
        memmove(&r->trend[lo + 1], &r->trend[lo], (r->ntrend - lo) * sizeof *r->trend);
        r->trend[lo] = (trend_row){.key = key};
        r->ntrend++;
    }
    r->trend_last = lo;
    return &r->trend[lo];
}

/* Period key of a trace start: day number, or months since year 0. */
static int64_t period_key(int64_t start_ns, int by_month)
{
    int64_t day = ms_floor_div(start_ns, MS_NS_PER_DAY);
    if (!by_month)
        return day;
    int64_t y;
    unsigned m, d;
    ms_civil_from_days(day, &y, &m, &d);
    return y * 12 + (m - 1);
}

/* Whether the text s is the word w: status and kind are short fixed
 * words, so the first byte settles almost every comparison of the hot
 * loop. */
static inline int is(const unsigned char *s, const char *w)
{
    return s && s[0] == (unsigned char)w[0] && strcmp((const char *)s, w) == 0;
}

enum { COMPLETED, INTERRUPTED, INCOMPLETE };

/* Whether a span or trace was cut short: still running when the run
 * ended, by a signal (INTERRUPTED) or otherwise (INCOMPLETE: os.exit, an
 * abandoned coroutine). Its duration is not a latency. */
static int cut_short(const unsigned char *status)
{
    return is(status, "interrupted") ? INTERRUPTED : is(status, "incomplete") ? INCOMPLETE
                                                                              : COMPLETED;
}

/* Counts one error of (type, message) in the top-errors map. `key` is a
 * scratch buffer reused across calls. Returns 0 or -1 (OOM). */
static int count_error(report *r, ms_buf *key, ms_pstr type, ms_pstr msg)
{
    /* key = type NUL message, so "a:b"/"c" and "a"/"b:c" stay apart */
    ms_buf_reset(key);
    ms_buf_add(key, type.p, type.len);
    ms_buf_addc(key, 0);
    ms_buf_add(key, msg.p, msg.len);
    if (key->oom)
        return -1;
    int created;
    long i = ms_strmap_get(&r->err_keys, key->data, key->len, &created);
    if (i < 0)
        return -1;
    if (created) {
        if (ms_grow((void **)&r->errs, &r->caperrs, r->nerrs, sizeof *r->errs))
            return -1;
        const char *k = r->err_keys.ent[i].key;
        r->errs[r->nerrs++] = (err_stat){k, k + strlen(k) + 1, 0};
    }
    r->errs[i].count++;
    r->error_count++;
    return 0;
}

typedef struct err_ctx {
    report *r;
    ms_buf *key;
    int oom;
} err_ctx;

/* ctx:add_error events (on the root span) are errors of the request. */
static int count_event_error(void *ud, const ms_event_rec *e)
{
    err_ctx *c = ud;
    if (e->has_error && count_error(c->r, c->key, e->error_type, e->error_message))
        c->oom = 1;
    return c->oom;
}

/* The budget a budget_exceeded span names in llm.budget.kind: its index
 * in MS_BUDGET_KINDS (-1: none yet; 3: another value). */
static int budget_kind(void *ud, const ms_attr_rec *a)
{
    static const char *const kinds[] = MS_BUDGET_KINDS;
    static const char KEY[] = "llm.budget.kind";
    if (a->key.len != sizeof KEY - 1 || memcmp(a->key.p, KEY, sizeof KEY - 1) != 0)
        return 0;
    int *kind = ud;
    *kind = 3;
    for (int i = 0; i < 3; i++)
        if (a->type == MS_ATTR_STRING && a->s.len == strlen(kinds[i]) && memcmp(a->s.p, kinds[i], a->s.len) == 0)
            *kind = i;
    return 1;
}

/* Counts a call a budget stopped (an own budget_exceeded error) by kind.
 * Returns 0 or -1 when its attributes are corrupt. */
static int count_budget_stop(report *r, const ms_pack_reader *pr, const ms_span_rec *sp)
{
    static const char TYPE[] = "budget_exceeded";
    if (sp->error_type.len != sizeof TYPE - 1 || memcmp(sp->error_type.p, TYPE, sizeof TYPE - 1) != 0)
        return 0;
    int kind = -1;
    if (sp->nattrs && ms_pack_attrs(pr, sp, budget_kind, &kind) < 0)
        return -1;
    r->budget_stops++;
    r->budget_by_kind[kind < 0 ? 3 : kind]++;
    return 0;
}

/* What reading the spans keeps from trace to trace. */
typedef struct span_scan {
    ms_spans_walk w;
    ms_buf key;
} span_scan;

/* Adds the spans of trace `row` (its salt, parts and own blob at columns
 * 10..13 of `st`): step durations by name (completed spans only), raised
 * and manual errors, LLM call failures, retries and their backoff,
 * estimated tokens. Returns 0 or -1 with err. */
static int add_spans(report *r, span_scan *ss, sqlite3_stmt *st, char *err, size_t errlen)
{
    ms_spans_walk *w = &ss->w;
    int64_t row = ms_spans_walk_columns(w, st, 10);
    ms_span_rec sp;
    int got;
    while ((got = ms_spans_walk_next(w, &sp)) == 1) {
        int completed = sp.status == MS_STATUS_OK || sp.status == MS_STATUS_ERROR;
        if (ms_steps_add(&r->steps, w, &sp) || ms_models_add(&r->models, &sp))
            goto steps_failed;
        if (sp.has_error && sp.error_own && count_error(r, &ss->key, sp.error_type, sp.error_message))
            goto oom;
        if (sp.has_error && sp.error_own && count_budget_stop(r, &w->r, &sp)) {
            w->error = "bad attributes";
            goto corrupt;
        }
        if (sp.nevents) {
            err_ctx ec = {r, &ss->key, 0};
            if (ms_pack_events(&w->r, &sp, count_event_error, &ec) < 0) {
                w->error = "bad events";
                goto corrupt;
            }
            if (ec.oom)
                goto oom;
        }
        if (sp.has_llm) {
            int64_t tok = sp.input + sp.output;
            r->llm_tokens += tok;
            if (sp.estimated)
                r->llm_tokens_est += tok;
            if (completed && sp.kind == MS_KIND_LLM) {
                r->llm_calls++;
                r->llm_failed += sp.status == MS_STATUS_ERROR;
            }
        }
        if (sp.retries > 0) {
            r->retried++;
            r->retry_ok += sp.retry_state == MS_RETRY_SUCCEEDED;
        }
        r->backoff_ns += sp.backoff_ns;
    }
    if (got == 0) {
        if (ms_steps_trace_end(&r->steps))
            goto steps_failed;
        return 0;
    }
corrupt:
    return ms_errf(err, errlen, "trace row %lld: its stored spans are corrupt (%s); the rest of the"
                   " store reads, this trace cannot", (long long)row, w->error);
oom:
    return ms_errf(err, errlen, "out of memory reading spans");
steps_failed:
    return ms_errf(err, errlen, "trace row %lld: grouping its steps: %s", (long long)row,
                   r->steps.error ? r->steps.error : "out of memory");
}

/* One pass over the filtered traces: request latency (over completed
 * requests only), tokens, cost, error rate and the cost trend from each
 * row, then its spans (add_spans). Cost is live spend: the trace's
 * replayed part (traces.replayed_cost_usd) is taken out of it and counted
 * apart, so replays add nothing to the spend or its trend. Returns 0 or -1
 * with err. */
static int scan_traces(sqlite3 *db, const ms_report_opts *o, report *r,
                       char *err, size_t errlen)
{
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT t.start_ns, t.duration_ns, t.status, t.input_tokens,"
                      " t.output_tokens, t.cache_read_tokens, t.cache_write_tokens,"
                      " t.cost_usd, t.unknown_cost_calls, t.replayed_cost_usd,"
                      " t.id, t.span_salt, t.parts, t.spans, t.sampled_out FROM traces t");
    sqlite3_stmt *st;
    if (ms_select_prepare(db, &o->sel, &sql, NULL, &st, err, errlen))
        return -1;
    span_scan ss;
    memset(&ss, 0, sizeof ss);
    if (ms_spans_walk_open(&ss.w, db, err, errlen)) {
        sqlite3_finalize(st);
        return -1;
    }
    int ret = -1;
    double *dur = NULL;
    size_t ndur = 0, cap = 0;
    ms_steps_init(&r->steps, o->steps_by_name ? MS_STEPS_BY_NAME : MS_STEPS_BY_PATH);
    if (ms_select_bind(db, st, &o->sel, err, errlen))
        goto done;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t start = sqlite3_column_int64(st, 0);
        const unsigned char *status = sqlite3_column_text(st, 2);
        int cut = cut_short(status);
        r->interrupted += cut == INTERRUPTED;
        r->incomplete += cut == INCOMPLETE;
        if (cut == COMPLETED) {
            if (ms_grow((void **)&dur, &cap, ndur, sizeof *dur)) {
                ms_errf(err, errlen, "out of memory reading traces");
                goto done;
            }
            dur[ndur++] = (double)sqlite3_column_int64(st, 1);
        }
        if (r->requests == 0 || start < r->first_start)
            r->first_start = start;
        if (r->requests == 0 || start > r->last_start)
            r->last_start = start;
        r->requests++;
        r->error_requests += is(status, "error");
        r->in_tok += sqlite3_column_int64(st, 3);
        r->out_tok += sqlite3_column_int64(st, 4);
        r->cache_read += sqlite3_column_int64(st, 5);
        r->cache_write += sqlite3_column_int64(st, 6);
        int priced = sqlite3_column_type(st, 7) != SQLITE_NULL;
        double cost = priced ? sqlite3_column_double(st, 7) : 0;
        int64_t unknown = sqlite3_column_int64(st, 8);
        if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
            /* a trace whose priced calls were all replayed sums the same
             * values in the same order for both columns: exactly 0 left */
            double replayed = sqlite3_column_double(st, 9);
            cost -= replayed;
            r->cost_replayed += replayed;
        }
        r->cost_total += cost;
        r->priced_requests += priced;
        r->unknown_cost_calls += unknown;
        trend_row *tr = trend_at(r, period_key(start, o->by_month));
        if (!tr) {
            ms_errf(err, errlen, "out of memory reading traces");
            goto done;
        }
        tr->requests++;
        tr->priced += priced;
        tr->unknown += unknown;
        tr->cost += cost;
        r->sampled_out += sqlite3_column_int64(st, 14) != 0;
        if (add_spans(r, &ss, st, err, errlen))
            goto done;
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    static const double qs[4] = {50, 95, 99, 100};
    if (ms_percentiles(dur, ndur, qs, 4, r->lat) != 0) {
        ms_errf(err, errlen, "percentile computation failed");
        goto done;
    }
    for (int i = 0; i < 4; i++)
        r->lat[i] = round(r->lat[i]) / MS_NS_PER_MS; /* whole ns, as for steps */
    ret = 0;
done:
    free(dur);
    ms_buf_free(&ss.key);
    ms_spans_walk_close(&ss.w);
    sqlite3_finalize(st);
    return ret;
}

/* The evals section: the latest finished run of each suite (started at or
 * after --since; the other filters are about traces and do not apply), and its
 * failing results with a reason each: the error when the case raised, else
 * the first scorer that scored under 1, as "name: reason". Nothing when
 * the store predates eval tables. Returns 0 or -1 with err. */
static int scan_evals(sqlite3 *db, const ms_report_opts *o, report *r,
                      char *err, size_t errlen)
{
    int has = ms_schema_has(db, "eval_runs", NULL, err, errlen);
    if (has <= 0)
        return has;
    if ((has = ms_schema_has(db, "eval_results", NULL, err, errlen)) <= 0)
        return has;
    const char *since = o->sel.since_ns ? " AND start_ns >= :sel_since" : "";
    char sql[2048];
    /* the newest run of each suite by the (suite, start_ns) index; id
     * breaks ties between runs started in the same nanosecond. Its gates
     * (config.gates, when the suite has them): the array, how many, and
     * the failed ones as "name: reason" pieces split on \x1f. */
    snprintf(sql, sizeof sql,
             "SELECT id, suite, start_ns, cases, passed, pass_rate, threshold,"
             " status, p50_ms, p95_ms, cost_usd, replayed_cost_usd, gates,"
             " (SELECT count(*) FROM json_each(gates)),"
             " (SELECT group_concat(coalesce(json_extract(j.value, '$.name'), 'gate') || ': '"
             "   || coalesce(json_extract(j.value, '$.reason'), 'failed'), char(31))"
             "  FROM json_each(gates) j WHERE json_type(j.value) = 'object'"
             "   AND coalesce(json_extract(j.value, '$.pass'), 0) = 0)"
             " FROM (SELECT e.*, CASE WHEN json_valid(e.config) THEN CASE WHEN"
             "   json_type(e.config, '$.gates') = 'array' THEN json_extract(e.config, '$.gates') END END AS gates"
             "  FROM eval_runs e WHERE e.id = (SELECT id FROM eval_runs WHERE suite = e.suite"
             "  AND status IN ('passed', 'failed')%s ORDER BY start_ns DESC, id DESC LIMIT 1))"
             " ORDER BY suite",
             since);
    sqlite3_stmt *st;
    if (ms_read_prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1, rc;
    ms_buf *a = &r->ev_arena;
    if (ms_select_bind(db, st, &o->sel, err, errlen))
        goto done;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)&r->evals, &r->capevals, r->nevals, sizeof *r->evals))
            goto oom;
        eval_sum *e = &r->evals[r->nevals++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(st, 0);
        e->suite = ms_arena_col(a, st, 1);
        e->start_ns = sqlite3_column_int64(st, 2);
        e->cases = sqlite3_column_int64(st, 3);
        e->passed = sqlite3_column_int64(st, 4);
        e->pass_rate = ms_col_num(st, 5);
        e->threshold = ms_col_num(st, 6);
        e->status = ms_arena_col(a, st, 7);
        e->p50 = ms_col_num(st, 8);
        e->p95 = ms_col_num(st, 9);
        e->cost = ms_col_num(st, 10);
        e->replayed = ms_col_num(st, 11);
        e->gates_json = ms_arena_col(a, st, 12);
        e->ngates = sqlite3_column_int64(st, 13);
        e->gates_failed = ms_arena_col(a, st, 14);
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read eval runs: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (r->nevals == 0) {
        ret = 0;
        goto done;
    }

    /* json_each over text that is not JSON raises; such scores give no reason */
    if (ms_read_prepare(db,
                "SELECT r.case_id, r.repeat_index, r.trace_id, coalesce(r.error,"
                " (SELECT coalesce(json_extract(j.value, '$.name'), 'scorer') || CASE"
                "   WHEN json_extract(j.value, '$.reason') IS NOT NULL"
                "   THEN ': ' || json_extract(j.value, '$.reason')"
                "   ELSE ' scored ' || json_extract(j.value, '$.score') END"
                "  FROM json_each(CASE WHEN json_valid(r.scores) AND json_type(r.scores) = 'array'"
                "   THEN r.scores ELSE '[]' END) j"
                "  WHERE json_type(j.value) = 'object' AND json_extract(j.value, '$.score') < 1"
                "  ORDER BY j.key LIMIT 1))"
                " FROM eval_results r WHERE r.eval_run = ?1 AND r.pass = 0"
                " ORDER BY r.case_id, r.repeat_index, r.id",
                &st, err, errlen))
        goto done;
    for (size_t i = 0; i < r->nevals; i++) {
        eval_sum *e = &r->evals[i];
        e->fail0 = r->nfails;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, e->id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (ms_grow((void **)&r->fails, &r->capfails, r->nfails, sizeof *r->fails))
                goto oom;
            eval_fail *f = &r->fails[r->nfails++];
            f->case_id = ms_arena_col(a, st, 0);
            f->repeat = sqlite3_column_int64(st, 1);
            f->trace_id = ms_arena_col(a, st, 2);
            f->reason = ms_arena_col(a, st, 3);
            e->nfail++;
        }
        if (rc != SQLITE_DONE) {
            ms_errf(err, errlen, "cannot read eval results: %s", sqlite3_errmsg(db));
            goto done;
        }
    }
    if (a->oom)
        goto oom;
    ret = 0;
    goto done;
oom:
    ms_errf(err, errlen, "out of memory reading eval runs");
done:
    sqlite3_finalize(st);
    return ret;
}

/* Errors by count, most first; ties by type then message. */
static int cmp_errs(const void *a, const void *b)
{
    const err_stat *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int c = strcmp(x->type, y->type);
    return c ? c : strcmp(x->message, y->message);
}

/* Percentiles per step and model, then the orderings the output wants.
 * The arrays are sorted in place, so their indices no longer match their
 * maps afterwards (nothing looks them up again). */
static int finish_report(report *r, char *err, size_t errlen)
{
    if (ms_steps_finish(&r->steps) || ms_models_finish(&r->models))
        return ms_errf(err, errlen, "out of memory computing the step percentiles");
    if (r->nerrs)
        qsort(r->errs, r->nerrs, sizeof *r->errs, cmp_errs);
    return 0;
}

/* --- the entry point ----------------------------------------------------- */

/* See ms_report.h. Reads inside one read transaction (unless the caller
 * has one open); writes nothing to `out` on error. */
int ms_report_write(sqlite3 *db, const ms_report_opts *opts, FILE *out,
                    char *err, size_t errlen)
{
    assert(db && opts && out);
    report r;
    memset(&r, 0, sizeof r);
    ms_buf b = {0};
    int ret = -1;
    /* One read transaction, so the passes see the same snapshot while a
     * writer keeps appending (WAL). */
    int own = 0;
    if (ms_read_begin(db, &own, err, errlen))
        goto done;
    if (scan_traces(db, opts, &r, err, errlen) == 0 &&
        ms_select_evals_left_out(db, &opts->sel, NULL, &r.evals_left_out, err, errlen) == 0 &&
        scan_evals(db, opts, &r, err, errlen) == 0 &&
        finish_report(&r, err, errlen) == 0)
        ret = 0;
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret != 0)
        goto done;
    if (opts->json)
        ms_report_json(&r, opts, &b);
    else
        ms_report_text(&r, opts, &b);
    ret = ms_buf_write(&b, out, err, errlen);
done:
    ms_buf_free(&b);
    report_free(&r);
    return ret;
}
