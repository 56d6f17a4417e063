/* ms_report_by — `moonspan report --by user` and `--by session`: the
 * selected requests grouped by who they were for (ms_who.h), one line (or
 * one JSON object) per user or session with its requests, errors, latency
 * p50/p95, tokens and cost. There is only one exported function in this
 * file: ms_report_by_write (ms_report.h).
 *
 * One query over the trace rows alone (never their packed spans), ordered
 * by the group, so each group's latencies are gathered, reduced and
 * dropped before the next one's. Latency percentiles are over completed
 * requests, as in the report; traces with no user (or session) form one
 * group of their own, named null. */
#include "ms_report.h"

#include "ms_fmt.h"
#include "ms_percentile.h"
#include "ms_read.h"
#include "ms_report_data.h"
#include "ms_who.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct who_group {
    size_t key;                 /* offset into the arena; MS_NO_STR for the group without one */
    int64_t requests, error_requests, errors, completed;
    double p50, p95;            /* ms over completed requests; NaN when none */
    int64_t in_tok, out_tok, cache_read, cache_write;
    double cost;                /* over priced requests */
    int64_t priced, unknown_calls;
} who_group;

typedef struct who_report {
    who_group *groups;
    size_t n, cap;
    ms_buf arena;
    double *lat;                /* the current group's completed latencies, ms */
    size_t nlat, caplat;
} who_report;

static const char *key_of(const who_report *w, const who_group *g)
{
    return ms_arena_str(&w->arena, g->key);
}

/* Costliest first (unknown cost last), then most requests, then by name. */
static int by_cost(const void *pa, const void *pb, void *arena)
{
    const who_group *a = pa, *b = pb;
    if ((a->priced > 0) != (b->priced > 0))
        return a->priced > 0 ? -1 : 1;
    if (a->cost != b->cost)
        return a->cost > b->cost ? -1 : 1;
    if (a->requests != b->requests)
        return a->requests > b->requests ? -1 : 1;
    const char *ka = ms_arena_str(arena, a->key), *kb = ms_arena_str(arena, b->key);
    if (!ka || !kb)
        return !ka - !kb; /* the group without a name last */
    return strcmp(ka, kb);
}

/* Ends the current group: its percentiles from the gathered latencies. */
static void close_group(who_report *w)
{
    if (!w->n)
        return;
    who_group *g = &w->groups[w->n - 1];
    double out[2];
    static const double qs[2] = {50, 95};
    ms_percentiles(w->lat, w->nlat, qs, 2, out);
    g->p50 = out[0];
    g->p95 = out[1];
    g->completed = (int64_t)w->nlat;
    w->nlat = 0;
}

static int same_key(const who_report *w, sqlite3_stmt *st)
{
    if (!w->n)
        return 0;
    const char *k = key_of(w, &w->groups[w->n - 1]);
    const unsigned char *c = sqlite3_column_text(st, 0);
    if (!k || !c)
        return !k && !c;
    return strcmp(k, (const char *)c) == 0;
}

/* Reads the selected rows into w->groups. Returns 0 or -1 with err. */
static int scan(sqlite3 *db, const ms_report_opts *o, who_report *w, char *err, size_t errlen)
{
    ms_who_sql who;
    if (ms_who_sql_get(db, &who, err, errlen))
        return -1;
    ms_buf sql = {0};
    ms_buf_printf(&sql, "SELECT %s AS who, t.duration_ns, t.status, t.error_count, t.input_tokens,"
                        " t.output_tokens, t.cache_read_tokens, t.cache_write_tokens, t.cost_usd,"
                        " t.unknown_cost_calls FROM traces t",
                  o->by_who == MS_REPORT_BY_USER ? who.user : who.session);
    sqlite3_stmt *st;
    int ret = ms_select_prepare(db, &o->sel, &sql, " ORDER BY who", &st, err, errlen);
    if (ret == 0)
        ret = ms_select_bind(db, st, &o->sel, err, errlen);
    int rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!same_key(w, st)) {
            close_group(w);
            if (ms_grow((void **)&w->groups, &w->cap, w->n, sizeof *w->groups)) {
                ret = ms_errf(err, errlen, "out of memory grouping requests");
                break;
            }
            w->groups[w->n++] = (who_group){.key = ms_arena_col(&w->arena, st, 0)};
        }
        who_group *g = &w->groups[w->n - 1];
        const char *status = (const char *)sqlite3_column_text(st, 2);
        g->requests++;
        if (status && !strcmp(status, "error"))
            g->error_requests++;
        g->errors += sqlite3_column_int64(st, 3);
        g->in_tok += sqlite3_column_int64(st, 4);
        g->out_tok += sqlite3_column_int64(st, 5);
        g->cache_read += sqlite3_column_int64(st, 6);
        g->cache_write += sqlite3_column_int64(st, 7);
        if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
            g->cost += sqlite3_column_double(st, 8);
            g->priced++;
        }
        g->unknown_calls += sqlite3_column_int64(st, 9);
        /* interrupted and incomplete requests have no latency (see the report) */
        if (status && (!strcmp(status, "ok") || !strcmp(status, "error"))) {
            if (ms_grow((void **)&w->lat, &w->caplat, w->nlat, sizeof *w->lat)) {
                ret = ms_errf(err, errlen, "out of memory grouping requests");
                break;
            }
            w->lat[w->nlat++] = (double)sqlite3_column_int64(st, 1) / MS_NS_PER_MS;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
    if (ret == 0 && w->arena.oom)
        ret = ms_errf(err, errlen, "out of memory grouping requests");
    sqlite3_finalize(st);
    close_group(w);
    return ret;
}

/* Cost of a group for a table cell: "-" when nothing was priced, ">=$x"
 * when some calls had no price. */
static const char *cost_cell(char *buf, size_t n, double cost, int64_t priced, int64_t unknown)
{
    char usd[32];
    if (!priced)
        return snprintf(buf, n, "-"), buf;
    ms_fmt_usd(usd, sizeof usd, cost);
    snprintf(buf, n, "%s%s", unknown > 0 ? ">=" : "", usd);
    return buf;
}

static void write_text(const who_report *w, const ms_report_opts *o, int64_t left_out, ms_buf *b)
{
    const char *what = o->by_who == MS_REPORT_BY_USER ? "user" : "session";
    ms_buf_printf(b, "Requests by %s", what);
    ms_report_window_text(&o->sel, b);
    ms_buf_addc(b, '\n');
    ms_report_left_out_text(left_out, b);
    if (!w->n) {
        ms_buf_adds(b, ms_select_narrows(&o->sel)
                           ? "no traces match this selection (" MS_SELECT_WIDEN ")\n"
                           : "no traces recorded yet (run a script with `moonspan run`)\n");
        return;
    }
    int kw = (int)strlen(what);
    for (size_t i = 0; i < w->n; i++) {
        const char *k = key_of(w, &w->groups[i]);
        int l = k ? ms_fmt_text_cols(k) : 6; /* "(none)" */
        kw = l > kw ? l : kw;
    }
    kw = kw > 32 ? 32 : kw;
    ms_fmt_padded(b, what, kw);
    ms_buf_printf(b, "  %8s  %6s  %10s  %10s  %10s  %15s  %12s  %12s\n", "requests", "errors", "error rate",
                  "p50", "p95", "tokens in/out", "cost", "per request");
    for (size_t i = 0; i < w->n; i++) {
        const who_group *g = &w->groups[i];
        char rate[32], c1[40], c2[40], tok[48], cost[48], per[48];
        const char *k = key_of(w, g);
        ms_fmt_padded(b, k ? k : "(none)", kw);
        snprintf(rate, sizeof rate, "%.1f%%", 100.0 * (double)g->error_requests / (double)g->requests);
        snprintf(tok, sizeof tok, "%lld/%lld", (long long)g->in_tok, (long long)g->out_tok);
        ms_buf_printf(b, "  %8lld  %6lld  %10s  ", (long long)g->requests, (long long)g->error_requests, rate);
        ms_fmt_right(b, ms_fmt_ms(c1, sizeof c1, g->p50), 10);
        ms_buf_adds(b, "  ");
        ms_fmt_right(b, ms_fmt_ms(c2, sizeof c2, g->p95), 10);
        cost_cell(cost, sizeof cost, g->cost, g->priced, g->unknown_calls);
        cost_cell(per, sizeof per, g->priced ? g->cost / (double)g->priced : NAN, g->priced, g->unknown_calls);
        ms_buf_printf(b, "  %15s  %12s  %12s\n", tok, cost, per);
    }
}

static void write_json(const who_report *w, const ms_report_opts *o, int64_t left_out, ms_buf *b)
{
    const char *what = o->by_who == MS_REPORT_BY_USER ? "user" : "session";
    int f = 1;
    ms_buf_addc(b, '{');
    ms_json_key(b, &f, "window");
    int g = 1;
    ms_buf_addc(b, '{');
    ms_report_window_json(&o->sel, left_out, b, &g);
    ms_buf_addc(b, '}');
    ms_kv_str(b, &f, "by", what);
    ms_json_key(b, &f, "groups");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < w->n; i++) {
        const who_group *gr = &w->groups[i];
        int e = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &e, what, key_of(w, gr));
        ms_kv_int(b, &e, "requests", gr->requests);
        ms_kv_int(b, &e, "completed", gr->completed);
        ms_kv_int(b, &e, "error_requests", gr->error_requests);
        ms_kv_num(b, &e, "error_rate", (double)gr->error_requests / (double)gr->requests);
        ms_kv_int(b, &e, "error_count", gr->errors);
        ms_kv_p50_p95(b, &e, "latency_ms", gr->p50, gr->p95);
        ms_kv_int(b, &e, "input_tokens", gr->in_tok);
        ms_kv_int(b, &e, "output_tokens", gr->out_tok);
        ms_kv_int(b, &e, "cache_read_tokens", gr->cache_read);
        ms_kv_int(b, &e, "cache_write_tokens", gr->cache_write);
        ms_kv_num(b, &e, "cost_usd", gr->priced ? gr->cost : NAN);
        ms_kv_int(b, &e, "priced_requests", gr->priced);
        ms_kv_num(b, &e, "cost_per_request_usd", ms_ratio(gr->cost, (double)gr->priced));
        ms_kv_int(b, &e, "unknown_cost_calls", gr->unknown_calls);
        ms_buf_addc(b, '}');
    }
    ms_buf_adds(b, "]}\n");
}

int ms_report_by_write(sqlite3 *db, const ms_report_opts *o, FILE *out, char *err, size_t errlen)
{
    assert(db && o && out && o->by_who != MS_REPORT_BY_NONE);
    who_report w = {0};
    ms_buf b = {0};
    int64_t left_out = 0;
    int own = 0;
    int ret = ms_read_begin(db, &own, err, errlen);
    if (ret == 0)
        ret = scan(db, o, &w, err, errlen);
    if (ret == 0)
        ret = ms_select_evals_left_out(db, &o->sel, NULL, &left_out, err, errlen);
    if (own && ms_read_end(db, own, ret ? NULL : err, errlen) && ret == 0)
        ret = -1;
    if (ret == 0) {
        qsort_r(w.groups, w.n, sizeof *w.groups, by_cost, &w.arena);
        if (o->json)
            write_json(&w, o, left_out, &b);
        else
            write_text(&w, o, left_out, &b);
        ret = ms_buf_write(&b, out, err, errlen);
    }
    free(w.groups);
    free(w.lat);
    ms_buf_free(&w.arena);
    ms_buf_free(&b);
    return ret;
}
