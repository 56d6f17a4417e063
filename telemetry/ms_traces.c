/* ms_traces — `moonspan traces` (see ms_traces.h): one query over the
 * selected rows, the rows buffered so the name column fits the longest
 * name shown. */
#include "ms_traces.h"

#include "ms_fmt.h"
#include "ms_read.h"
#include "ms_who.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One row of `moonspan traces`, its strings in the caller's arena (offsets,
 * since the arena may move while it grows). */
typedef struct trace_row {
    size_t id, name, status;
    size_t session, user, tags; /* MS_NO_STR when the trace has none */
    int has_run;
    int64_t run_id;
    int64_t start_ns, duration_ns, in_tok, out_tok, unknown, error_count, span_count;
    int has_cost;
    double cost;
} trace_row;

/* Cost of one trace for a table cell: "-" when unknown, ">=$x" when part
 * of it is unknown. */
static const char *trace_cost_cell(char *buf, size_t n, int has_cost, double cost,
                                   int64_t unknown)
{
    char usd[32];
    if (!has_cost) {
        snprintf(buf, n, "-");
        return buf;
    }
    ms_fmt_usd(usd, sizeof usd, cost);
    snprintf(buf, n, "%s%s", unknown > 0 ? ">=" : "", usd);
    return buf;
}

/* ORDER BY of each sort: newest first breaks ties (the rowid last, for
 * traces started in the same nanosecond). Newest first walks the
 * (start_ns, trace_id) index; the others scan the rows with a sorter
 * bounded by the limit. */
static const char *order_by(enum ms_traces_sort sort)
{
    switch (sort) {
    case MS_TRACES_BY_DURATION:
        return " ORDER BY t.duration_ns DESC, t.start_ns DESC, t.id DESC";
    case MS_TRACES_BY_COST:
        return " ORDER BY t.cost_usd IS NULL, t.cost_usd DESC, t.start_ns DESC, t.id DESC";
    case MS_TRACES_BY_START:
        break;
    }
    return " ORDER BY t.start_ns DESC, t.id DESC";
}

/* How many traces `sel` picks in all: a count over the index SQLite
 * chooses for the filters, never the packed spans. */
static int count_selected(sqlite3 *db, const ms_select *sel, int64_t *n, char *err, size_t errlen)
{
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT count(*) FROM traces t");
    sqlite3_stmt *st;
    if (ms_select_prepare(db, sel, &sql, NULL, &st, err, errlen))
        return -1;
    int rc = SQLITE_ERROR;
    if (ms_select_bind(db, st, sel, err, errlen) == 0) {
        if ((rc = sqlite3_step(st)) == SQLITE_ROW)
            *n = sqlite3_column_int64(st, 0);
        else
            ms_errf(err, errlen, "cannot count traces: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* See ms_traces.h. The rows are buffered first so the name column can be
 * sized to the longest name shown. */
int ms_traces_write(sqlite3 *db, const ms_traces_opts *o, FILE *out, char *err, size_t errlen)
{
    assert(db && o && out);
    const ms_select *sel = &o->sel;
    int64_t left_out = 0;
    ms_buf sql = {0};
    ms_who_sql who;
    if (ms_who_sql_get(db, &who, err, errlen))
        return -1;
    ms_buf_printf(&sql, "SELECT t.trace_id, t.name, t.start_ns, t.duration_ns, t.input_tokens,"
                        " t.output_tokens, t.cost_usd, t.unknown_cost_calls, t.status, t.error_count,"
                        " t.span_count, %s, %s, %s, t.run_id FROM traces t", who.session, who.user, who.tags);
    char tail[160];
    snprintf(tail, sizeof tail, "%s LIMIT :limit OFFSET :offset", order_by(o->sort));
    sqlite3_stmt *st;
    if (ms_select_prepare(db, sel, &sql, tail, &st, err, errlen))
        return -1;
    int ret = -1;
    int64_t total = 0;
    ms_buf arena = {0}, b = {0};
    trace_row *rows = NULL;
    size_t n = 0, cap = 0;
    /* one snapshot: the count of what was left out agrees with the list */
    int own = 0;
    if (ms_read_begin(db, &own, err, errlen))
        goto done;
    if (ms_select_bind(db, st, sel, err, errlen))
        goto done;
    if (sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"),
                           o->limit > 0 ? o->limit : -1) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind --limit: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"), o->offset > 0 ? o->offset : 0) !=
        SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the offset: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)&rows, &cap, n, sizeof *rows)) {
            ms_errf(err, errlen, "out of memory reading traces");
            goto done;
        }
        trace_row *t = &rows[n++];
        t->id = ms_arena_col(&arena, st, 0);
        t->name = ms_arena_col(&arena, st, 1);
        t->start_ns = sqlite3_column_int64(st, 2);
        t->duration_ns = sqlite3_column_int64(st, 3);
        t->in_tok = sqlite3_column_int64(st, 4);
        t->out_tok = sqlite3_column_int64(st, 5);
        t->has_cost = sqlite3_column_type(st, 6) != SQLITE_NULL;
        t->cost = sqlite3_column_double(st, 6);
        t->unknown = sqlite3_column_int64(st, 7);
        t->status = ms_arena_col(&arena, st, 8);
        t->error_count = sqlite3_column_int64(st, 9);
        t->span_count = sqlite3_column_int64(st, 10);
        t->session = ms_arena_col(&arena, st, 11);
        t->user = ms_arena_col(&arena, st, 12);
        t->tags = ms_arena_col(&arena, st, 13);
        t->has_run = sqlite3_column_type(st, 14) != SQLITE_NULL;
        t->run_id = sqlite3_column_int64(st, 14);
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (arena.oom) {
        ms_errf(err, errlen, "out of memory reading traces");
        goto done;
    }
    if ((!o->json || o->page) && ms_select_evals_left_out(db, sel, NULL, &left_out, err, errlen))
        goto done;
    if (o->json && o->page && count_selected(db, sel, &total, err, errlen))
        goto done;

    char iso[40], c1[40], c2[40];
    if (o->json) {
        if (o->page)
            ms_buf_printf(&b, "{\"total\":%lld,\"eval_traces_left_out\":%lld,\"traces\":", (long long)total,
                          (long long)left_out);
        ms_buf_addc(&b, '[');
        for (size_t i = 0; i < n; i++) {
            const trace_row *t = &rows[i];
            int f = 1;
            if (i)
                ms_buf_addc(&b, ',');
            ms_buf_addc(&b, '{');
            ms_kv_str(&b, &f, "trace_id", ms_arena_str(&arena, t->id));
            ms_kv_str(&b, &f, "name", ms_arena_str(&arena, t->name));
            ms_kv_int(&b, &f, "start_ns", t->start_ns);
            ms_iso_utc(t->start_ns, iso, sizeof iso);
            ms_kv_str(&b, &f, "start", iso);
            ms_kv_num(&b, &f, "duration_ms", (double)t->duration_ns / MS_NS_PER_MS);
            ms_kv_int(&b, &f, "input_tokens", t->in_tok);
            ms_kv_int(&b, &f, "output_tokens", t->out_tok);
            ms_kv_num(&b, &f, "cost_usd", t->has_cost ? t->cost : NAN);
            ms_kv_int(&b, &f, "unknown_cost_calls", t->unknown);
            ms_kv_str(&b, &f, "status", ms_arena_str(&arena, t->status));
            ms_kv_int(&b, &f, "error_count", t->error_count);
            ms_kv_int(&b, &f, "span_count", t->span_count);
            ms_kv_str(&b, &f, "session", ms_arena_str(&arena, t->session));
            ms_kv_str(&b, &f, "user", ms_arena_str(&arena, t->user));
            /* the column holds a JSON array (ms_who.h) */
            ms_kv_raw(&b, &f, "tags", t->tags == MS_NO_STR ? "null" : ms_arena_str(&arena, t->tags));
            ms_kv_int_or_null(&b, &f, "run_id", t->has_run, t->run_id);
            ms_buf_addc(&b, '}');
        }
        ms_buf_adds(&b, o->page ? "]}\n" : "]\n");
    } else if (n == 0) {
        if (ms_select_narrows(sel))
            ms_buf_adds(&b, "no traces match this selection (" MS_SELECT_WIDEN ")\n");
        else if (sel->errors_only)
            ms_buf_adds(&b, "no traces with errors\n");
        else if (!left_out)
            ms_buf_adds(&b, "no traces recorded yet (run a script with `moonspan run`)\n");
    } else {
        int w = 4;
        for (size_t i = 0; i < n; i++) {
            const char *nm = ms_arena_str(&arena, rows[i].name);
            int l = ms_fmt_text_cols(nm);
            if (l > w)
                w = l;
        }
        if (w > 40)
            w = 40;
        /* user and session columns only when some trace shown has one */
        int wu = 0, ws = 0;
        for (size_t i = 0; i < n; i++) {
            int l = rows[i].user == MS_NO_STR ? 0 : ms_fmt_text_cols(ms_arena_str(&arena, rows[i].user));
            wu = l > wu ? l : wu;
            l = rows[i].session == MS_NO_STR ? 0 : ms_fmt_text_cols(ms_arena_str(&arena, rows[i].session));
            ws = l > ws ? l : ws;
        }
        wu = wu ? (wu < 4 ? 4 : wu > 24 ? 24 : wu) : 0;
        ws = ws ? (ws < 7 ? 7 : ws > 24 ? 24 : ws) : 0;
        ms_fmt_padded(&b, "trace id", 32);
        ms_buf_adds(&b, "  ");
        ms_fmt_padded(&b, "name", w);
        if (wu) {
            ms_buf_adds(&b, "  ");
            ms_fmt_padded(&b, "user", wu);
        }
        if (ws) {
            ms_buf_adds(&b, "  ");
            ms_fmt_padded(&b, "session", ws);
        }
        ms_buf_printf(&b, "  %-20s  %10s  %15s  %11s  %s\n", "start", "duration",
                      "tokens in/out", "cost", "status");
        for (size_t i = 0; i < n; i++) {
            const trace_row *t = &rows[i];
            const char *id = ms_arena_str(&arena, t->id);
            const char *nm = ms_arena_str(&arena, t->name);
            const char *status = ms_arena_str(&arena, t->status);
            char tok[48];
            ms_iso_utc(t->start_ns, iso, sizeof iso);
            snprintf(tok, sizeof tok, "%lld/%lld", (long long)t->in_tok, (long long)t->out_tok);
            ms_fmt_padded(&b, id ? id : "?", 32);
            ms_buf_adds(&b, "  ");
            ms_fmt_padded(&b, nm ? nm : "", w);
            if (wu) {
                ms_buf_adds(&b, "  ");
                ms_fmt_padded(&b, t->user == MS_NO_STR ? "-" : ms_arena_str(&arena, t->user), wu);
            }
            if (ws) {
                ms_buf_adds(&b, "  ");
                ms_fmt_padded(&b, t->session == MS_NO_STR ? "-" : ms_arena_str(&arena, t->session), ws);
            }
            ms_buf_printf(&b, "  %-20s  ", iso);
            ms_fmt_right(&b, ms_fmt_ms(c1, sizeof c1, (double)t->duration_ns / MS_NS_PER_MS), 10);
            ms_buf_printf(&b, "  %15s  %11s  ", tok,
                          trace_cost_cell(c2, sizeof c2, t->has_cost, t->cost, t->unknown));
            ms_fmt_text(&b, status, "?");
            ms_buf_addc(&b, '\n');
        }
    }
    if (!o->json && left_out > 0)
        ms_buf_printf(&b, "%lld eval trace%s left out (`--evals include` lists them too,"
                          " `--evals only` alone)\n",
                      (long long)left_out, left_out == 1 ? "" : "s");
    if (ms_read_end(db, own, err, errlen))
        goto done;
    own = 0;
    ret = ms_buf_write(&b, out, err, errlen);
done:
    if (own)
        ms_read_end(db, own, NULL, 0);
    sqlite3_finalize(st);
    free(rows);
    ms_buf_free(&arena);
    ms_buf_free(&b);
    return ret;
}
