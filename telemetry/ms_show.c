/* ms_show — `moonspan show` (see ms_show.h): finds the trace, decodes its
 * packed spans and their events (ms_spans.h), links them into a tree
 * ordered by start, and writes it as nested JSON, or has ms_show_text.c
 * draw it for people. */
#include "ms_show.h"

#include "ms_fmt.h"
#include "ms_hist.h"
#include "ms_profile.h"
#include "ms_show_data.h"
#include "ms_read.h"
#include "ms_spans.h"
#include "ms_strmap.h"
#include "ms_who.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Frees what resolve_trace and load_spans filled in. */
static void trace_view_free(trace_view *v)
{
    ms_buf_free(&v->arena);
    free(v->nodes);
    free(v->order);
    free(v->by_id);
    free(v->evs);
    free(v->prof);
    free(v->pfns);
    ms_show_eval_free(&v->eval);
}

/* Sort records carry their keys, because qsort passes no context to get
 * at the node array (and a file-static pointer would not be thread-safe). */
typedef struct id_index {
    int64_t span_id;
    size_t node;
} id_index;

typedef struct child_key {
    size_t parent;      /* MS_NO_STR for the root: sorts last, nobody's child */
    int64_t start_ns, rowid;
    size_t node;
} child_key;

/* id_index by span id, for find_node's binary search. */
static int cmp_by_id(const void *a, const void *b)
{
    int64_t x = ((const id_index *)a)->span_id, y = ((const id_index *)b)->span_id;
    return (x > y) - (x < y);
}

/* Children grouped by parent, each group in start order (rowid breaks
 * ties, i.e. insertion order). */
static int cmp_children(const void *a, const void *b)
{
    const child_key *x = a, *y = b;
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return (x->rowid > y->rowid) - (x->rowid < y->rowid);
}

/* Events grouped by span, each group in time order. */
static int cmp_events(const void *a, const void *b)
{
    const span_event *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return (x->time_ns > y->time_ns) - (x->time_ns < y->time_ns);
}

/* Index of the node with `span_id`, or MS_NO_STR. */
static size_t find_node(const trace_view *v, int64_t span_id)
{
    size_t lo = 0, hi = v->nnodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t id = v->by_id[mid].span_id;
        if (id < span_id)
            lo = mid + 1;
        else if (id > span_id)
            hi = mid;
        else
            return v->by_id[mid].node;
    }
    return MS_NO_STR;
}

/* The range of trace ids starting with `id` (4 to 32 hex digits, any
 * case): [lo, hi). Ids are lowercase hex, all below 'g', so every id
 * with the prefix sorts in [prefix, prefix + "g"): a range on the index.
 * Returns 0, or -1 with err for an id that is not such a prefix. */
static int id_range(const char *id, char lo[40], char hi[40], char *err, size_t errlen)
{
    size_t n = strlen(id);
    if (n < 4 || n > 32)
        return ms_errf(err, errlen, "trace id '%s' must be 4 to 32 hex characters;"
                       " list ids with `moonspan traces`", id);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)id[i]))
            return ms_errf(err, errlen, "trace id '%s' is not hex; list ids with"
                           " `moonspan traces`", id);
        lo[i] = (char)tolower((unsigned char)id[i]);
    }
    lo[n] = 0;
    memcpy(hi, lo, n);
    hi[n] = 'g';
    hi[n + 1] = 0;
    return 0;
}

/* Prepares `sql` with ?1 ?2 bound to the id range. Returns 0 or -1 with err. */
static int prepare_range(sqlite3 *db, const char *sql, const char *lo, const char *hi,
                         sqlite3_stmt **st, char *err, size_t errlen)
{
    if (ms_read_prepare(db, sql, st, err, errlen))
        return -1;
    if (sqlite3_bind_text(*st, 1, lo, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(*st, 2, hi, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the trace id: %s", sqlite3_errmsg(db));
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    return 0;
}

#define MATCHES_LISTED 20 /* traces listed when an id matches several */

/* The root span's id of a trace row (salt at column salt_col, its own
 * packed spans at blob_col) as 16 hex, "-" when it is not stored (a trace
 * cut short while written in parts, whose ids came from elsewhere). */
static void root_span_hex(sqlite3_stmt *st, int salt_col, int blob_col, char out[17])
{
    uint64_t salt = (uint64_t)sqlite3_column_int64(st, salt_col);
    ms_pack_reader r = {0};
    ms_span_rec sp;
    uint64_t id = salt ? ms_span_id_derive(salt, 0) : 0;
    if (!salt && ms_pack_open(&r, sqlite3_column_blob(st, blob_col),
                              (size_t)sqlite3_column_bytes(st, blob_col), salt) == 0) {
        while (ms_pack_next(&r, &sp) == 1) {
            if (sp.gidx == 0) {
                id = ms_pack_span_id(&r, &sp);
                break;
            }
        }
    }
    ms_pack_reader_free(&r);
    if (id)
        ms_span_id_hex(id, out);
    else
        snprintf(out, 17, "-");
}

/* Appends the traces matching [lo, hi), numbered as --pick counts them
 * (by start, then row), at most MATCHES_LISTED: a table for people, or
 * {"error", "count", "matches": [...]} for programs. Returns 0 or -1. */
static int list_matches(sqlite3 *db, const char *lo, const char *hi, int64_t count,
                        const ms_show_opts *o, const char *why, ms_buf *b,
                        char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prepare_range(db,
                      "SELECT t.trace_id, t.name, t.start_ns, t.duration_ns, t.status,"
                      " t.span_salt, t.spans FROM traces t WHERE t.id IN"
                      " (SELECT id FROM traces WHERE trace_id >= ?1 AND trace_id < ?2"
                      "  ORDER BY start_ns, id LIMIT ?3)"
                      " ORDER BY t.start_ns, t.id",
                      lo, hi, &st, err, errlen))
        return -1;
    if (sqlite3_bind_int(st, 3, MATCHES_LISTED) != SQLITE_OK) {
        sqlite3_finalize(st);
        return ms_errf(err, errlen, "cannot bind the limit: %s", sqlite3_errmsg(db));
    }
    char iso[40], ms[40];
    int f = 1;
    if (o->json) {
        ms_buf_addc(b, '{');
        ms_kv_str(b, &f, "error", why);
        ms_kv_int(b, &f, "count", count);
        ms_json_key(b, &f, "matches");
        ms_buf_addc(b, '[');
    } else {
        ms_buf_printf(b, "  %-3s  %-32s  %-20s  %-20s  %10s  %-11s  %s\n", "#", "trace id", "name",
                      "start", "duration", "status", "root span");
    }
    int rc;
    int64_t k = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *tid = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        int64_t start = sqlite3_column_int64(st, 2);
        double dur = (double)sqlite3_column_int64(st, 3) / MS_NS_PER_MS;
        const char *status = (const char *)sqlite3_column_text(st, 4);
        char root[17];
        root_span_hex(st, 5, 6, root);
        ms_iso_utc(start, iso, sizeof iso);
        k++;
        if (o->json) {
            int g = 1;
            if (k > 1)
                ms_buf_addc(b, ',');
            ms_buf_addc(b, '{');
            ms_kv_int(b, &g, "pick", k);
            ms_kv_str(b, &g, "trace_id", tid);
            ms_kv_str(b, &g, "name", name);
            ms_kv_int(b, &g, "start_ns", start);
            ms_kv_str(b, &g, "start", iso);
            ms_kv_num(b, &g, "duration_ms", dur);
            ms_kv_str(b, &g, "status", status);
            ms_kv_str(b, &g, "root_span_id", root);
            ms_buf_addc(b, '}');
        } else {
            ms_buf_printf(b, "  %-3lld  ", (long long)k);
            ms_fmt_padded(b, tid ? tid : "?", 32);
            ms_buf_adds(b, "  ");
            ms_fmt_padded(b, name ? name : "?", 20);
            ms_buf_printf(b, "  %-20s  ", iso);
            ms_fmt_right(b, ms_fmt_ms(ms, sizeof ms, dur), 10);
            ms_buf_adds(b, "  ");
            ms_fmt_padded(b, status ? status : "?", 11);
            ms_buf_adds(b, "  ");
            ms_fmt_text(b, root, "-");
            ms_buf_addc(b, '\n');
        }
    }
    int ret = rc == SQLITE_DONE ? 0 : ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (o->json)
        ms_buf_adds(b, "]}\n");
    else if (count > k)
        ms_buf_printf(b, "  ... and %lld more (--pick up to %lld)\n", (long long)(count - k),
                      (long long)count);
    return ret;
}

/* Resolves o->id (a full id or a prefix) and o->pick to one trace row.
 * Returns 0; 1 when there is nothing to show: no trace matches, several
 * do and no pick chose one, or the pick is beyond them (err says which
 * and how to pick; the matches are appended to `matches`); -1 on an
 * invalid id or a database error. */
static int resolve_trace(sqlite3 *db, const ms_show_opts *o, trace_view *v, ms_buf *matches,
                         char *err, size_t errlen)
{
    char lo[40], hi[40];
    if (id_range(o->id, lo, hi, err, errlen))
        return -1;
    sqlite3_stmt *st;
    if (prepare_range(db, "SELECT count(*), count(DISTINCT trace_id) FROM traces"
                          " WHERE trace_id >= ?1 AND trace_id < ?2",
                      lo, hi, &st, err, errlen))
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    int64_t count = sqlite3_column_int64(st, 0), ids = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (count == 0) {
        ms_errf(err, errlen, "no trace with id %s; list ids with `moonspan traces`", o->id);
        return 1;
    }
    if ((count > 1 && o->pick == 0) || o->pick > count) {
        /* with TRACEPARENT set, every trace of a run joins one outer id */
        if (o->pick > count)
            ms_errf(err, errlen, "--pick %lld: only %lld trace%s match%s %s; pick one of those"
                    " listed", (long long)o->pick, (long long)count, count == 1 ? "" : "s",
                    count == 1 ? "es" : "", o->id);
        else if (ids > 1)
            ms_errf(err, errlen, "%lld traces of %lld different ids match the prefix %s; give"
                    " more characters, or pick one with `moonspan show %s --pick N`",
                    (long long)count, (long long)ids, o->id, o->id);
        else
            ms_errf(err, errlen, "%lld traces share the id %s (a run that joined an outer"
                    " trace through TRACEPARENT); pick one with `moonspan show %s --pick N`",
                    (long long)count, o->id, o->id);
        if (list_matches(db, lo, hi, count, o, err, matches, err, errlen))
            return -1;
        return 1;
    }
    v->pick = o->pick ? o->pick : 1;
    v->matches = count;
    ms_who_sql who;
    if (ms_who_sql_get(db, &who, err, errlen))
        return -1;
    ms_buf sql = {0};
    ms_buf_printf(&sql,
                  "SELECT id, trace_id, name, start_ns, duration_ns, status, error_count,"
                  " span_count, span_salt, input_tokens, output_tokens, cache_read_tokens,"
                  " cache_write_tokens, cost_usd, unknown_cost_calls,"
                  " CASE WHEN json_valid(attrs) THEN json(attrs) END, parts, parent_span, sampled_out,"
                  " %s, %s, %s"
                  " FROM traces t WHERE id = (SELECT id FROM traces WHERE trace_id >= ?1 AND trace_id < ?2"
                  " ORDER BY start_ns, id LIMIT 1 OFFSET ?3)",
                  who.session, who.user, who.tags);
    if (sql.oom) {
        ms_buf_free(&sql);
        return ms_errf(err, errlen, "out of memory building a query");
    }
    int prepared = prepare_range(db, sql.data, lo, hi, &st, err, errlen);
    ms_buf_free(&sql);
    if (prepared)
        return -1;
    int ret = -1;
    if (sqlite3_bind_int64(st, 3, v->pick - 1) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind --pick: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    v->row = sqlite3_column_int64(st, 0);
    v->id = ms_arena_col(&v->arena, st, 1);
    v->name = ms_arena_col(&v->arena, st, 2);
    v->start_ns = sqlite3_column_int64(st, 3);
    v->duration_ns = sqlite3_column_int64(st, 4);
    v->status = ms_arena_col(&v->arena, st, 5);
    v->error_count = sqlite3_column_int64(st, 6);
    v->span_count = sqlite3_column_int64(st, 7);
    v->salt = (uint64_t)sqlite3_column_int64(st, 8);
    v->in_tok = sqlite3_column_int64(st, 9);
    v->out_tok = sqlite3_column_int64(st, 10);
    v->cache_read = sqlite3_column_int64(st, 11);
    v->cache_write = sqlite3_column_int64(st, 12);
    v->has_cost = sqlite3_column_type(st, 13) != SQLITE_NULL;
    v->cost = sqlite3_column_double(st, 13);
    v->unknown = sqlite3_column_int64(st, 14);
    v->attrs = ms_arena_col(&v->arena, st, 15);
    v->parts = sqlite3_column_int64(st, 16);
    v->remote_parent = sqlite3_column_int64(st, 17);
    v->sampled_out = sqlite3_column_int64(st, 18);
    v->session = ms_arena_col(&v->arena, st, 19);
    v->user = ms_arena_col(&v->arena, st, 20);
    v->tags = ms_arena_col(&v->arena, st, 21);
    ret = 0;
done:
    sqlite3_finalize(st);
    return ret;
}

/* A fold's repetitions, with p50 and p95 read from its histogram. */
static int load_fold(span_node *s, const ms_span_rec *sp)
{
    ms_hist h = {0};
    if (ms_pack_fold_hist(sp, &h)) {
        ms_hist_free(&h);
        return -1;
    }
    s->is_fold = 1;
    s->fold_count = (int64_t)sp->fold_count;
    s->fold_errors = (int64_t)sp->fold_errors;
    s->fold_total = sp->fold_total;
    s->fold_min = sp->fold_min;
    s->fold_max = sp->fold_max;
    /* a midpoint never strays past the extremes, which are exact */
    int64_t q[2] = {ms_hist_quantile(&h, 0.5), ms_hist_quantile(&h, 0.95)};
    for (int i = 0; i < 2; i++)
        q[i] = q[i] < sp->fold_min ? sp->fold_min : q[i] > sp->fold_max ? sp->fold_max : q[i];
    s->fold_p50 = q[0];
    s->fold_p95 = q[1];
    ms_hist_free(&h);
    return 0;
}

typedef struct load_ctx {
    trace_view *v;
    int64_t start_ns;
    uint64_t span_id;
    int oom;
} load_ctx;

static int load_event(void *ud, const ms_event_rec *ev)
{
    load_ctx *c = ud;
    trace_view *v = c->v;
    if (ms_grow((void **)&v->evs, &v->capevs, v->nevs, sizeof *v->evs)) {
        c->oom = 1;
        return 1;
    }
    span_event *e = &v->evs[v->nevs++];
    e->span_id = (int64_t)c->span_id;
    e->name = ms_arena_put(&v->arena, ev->name.p, ev->name.len);
    e->time_ns = c->start_ns + ev->time;
    e->attrs = ev->attrs_json.len ? ms_arena_put(&v->arena, ev->attrs_json.p, ev->attrs_json.len) : MS_NO_STR;
    e->error_type = ev->has_error ? ms_arena_put(&v->arena, ev->error_type.p, ev->error_type.len) : MS_NO_STR;
    e->error_message = ev->has_error ? ms_arena_put(&v->arena, ev->error_message.p, ev->error_message.len)
                                     : MS_NO_STR;
    return 0;
}

static int cmp_gidx(const void *a, const void *b)
{
    const span_node *x = a, *y = b;
    return (x->rowid > y->rowid) - (x->rowid < y->rowid);
}

/* Loads the trace's spans and events from their packed parts, and links
 * the tree. Returns 0 or -1 with err. */
static int load_spans(sqlite3 *db, trace_view *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT spans FROM traces WHERE id = ?1", &st, err, errlen))
        return -1;
    ms_spans_walk w;
    if (ms_spans_walk_open(&w, db, err, errlen)) {
        sqlite3_finalize(st);
        return -1;
    }
    int ret = -1;
    size_t cap = 0;
    ms_buf attrs = {0};
    show_content content = {0};
    ms_strmap names = {0}; /* the text view folds siblings by name */
    if (sqlite3_bind_int64(st, 1, v->row) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read the trace: %s", sqlite3_errmsg(db));
        goto done;
    }
    ms_spans_walk_trace(&w, v->row, v->parts, v->salt, sqlite3_column_blob(st, 0),
                        (size_t)sqlite3_column_bytes(st, 0));
    ms_span_rec sp;
    int rc;
    while ((rc = ms_spans_walk_next(&w, &sp)) == 1) {
        if (ms_grow((void **)&v->nodes, &cap, v->nnodes, sizeof *v->nodes))
            goto oom;
        span_node *s = &v->nodes[v->nnodes++];
        memset(s, 0, sizeof *s);
        s->rowid = sp.gidx;
        s->span_id = (int64_t)ms_pack_span_id(&w.r, &sp);
        s->has_parent = sp.parent != MS_NONE || v->remote_parent;
        s->parent_id = sp.parent != MS_NONE ? (int64_t)ms_spans_walk_parent_id(&w, &sp) : v->remote_parent;
        s->name = ms_arena_put(&v->arena, sp.name.p, sp.name.len);
        int created;
        long nid = ms_strmap_get(&names, sp.name.p, sp.name.len, &created);
        if (nid < 0)
            goto oom;
        s->name_id = (uint32_t)nid;
        s->kind = ms_arena_put(&v->arena, ms_kind_name(sp.kind), strlen(ms_kind_name(sp.kind)));
        s->start_ns = v->start_ns + sp.start;
        s->duration_ns = sp.duration;
        const char *status = ms_status_name(sp.status);
        s->status = ms_arena_put(&v->arena, status, strlen(status));
        s->error_own = sp.has_error && sp.error_own;
        s->error_type = sp.has_error ? ms_arena_put(&v->arena, sp.error_type.p, sp.error_type.len) : MS_NO_STR;
        s->error_message = sp.has_error ? ms_arena_put(&v->arena, sp.error_message.p, sp.error_message.len)
                                        : MS_NO_STR;
        s->error_traceback = sp.has_error && sp.error_traceback.len
                                 ? ms_arena_put(&v->arena, sp.error_traceback.p, sp.error_traceback.len)
                                 : MS_NO_STR;
        ms_buf_reset(&attrs);
        if (ms_pack_attrs_json(&w.r, &sp, &attrs))
            goto corrupt;
        s->attrs = attrs.len ? ms_arena_put(&v->arena, attrs.data, attrs.len) : MS_NO_STR;
        s->provider = sp.has_llm ? ms_arena_put(&v->arena, sp.provider.p, sp.provider.len) : MS_NO_STR;
        s->model = sp.has_llm ? ms_arena_put(&v->arena, sp.model.p, sp.model.len) : MS_NO_STR;
        s->has_tokens = sp.has_llm;
        s->in_tok = sp.input;
        s->out_tok = sp.output;
        s->cache_read = sp.cache_read;
        s->cache_write = sp.cache_write;
        s->estimated = sp.estimated;
        s->has_cost = sp.has_llm && !isnan(sp.cost_usd);
        s->cost = sp.cost_usd;
        s->retries = sp.retries;
        s->backoff_ns = sp.backoff_ns > 0 ? sp.backoff_ns : 0;
        s->retry_succeeded = sp.retry_state == MS_RETRY_NONE ? -1 : sp.retry_state == MS_RETRY_SUCCEEDED;
        s->has_ttft = sp.has_llm && sp.ttft_ns >= 0;
        s->ttft_ns = sp.ttft_ns;
        s->replayed = sp.replayed;
        if (ms_show_content_load(&content, db, v, &w.r, &sp, s, err, errlen))
            goto done;
        if (sp.kind == MS_KIND_FOLD && load_fold(s, &sp))
            goto corrupt;
        if (sp.nevents) {
            load_ctx lc = {v, s->start_ns - sp.start, (uint64_t)s->span_id, 0};
            if (ms_pack_events(&w.r, &sp, load_event, &lc) < 0)
                goto corrupt;
            if (lc.oom)
                goto oom;
        }
    }
    if (rc < 0)
        goto corrupt;
    if (v->arena.oom)
        goto oom;
    /* the root first, then in begin order (parts come in the order they
     * were cut: a long trace's root ends, and is written, last) */
    size_t unsorted = 0;
    for (size_t i = 1; i < v->nnodes && !unsorted; i++)
        unsorted = v->nodes[i - 1].rowid > v->nodes[i].rowid;
    if (unsorted) /* only a trace written in parts */
        qsort(v->nodes, v->nnodes, sizeof *v->nodes, cmp_gidx);
    /* The root row shows the request's status, as the header does. */
    if (v->nnodes && v->nodes[0].rowid == 0)
        v->nodes[0].status = v->status;

    /* link: the root is the first row of the range (its parent_id may be
     * a remote TRACEPARENT span); a span whose parent is not in this
     * trace, or is itself, hangs off the root */
    size_t nn = v->nnodes;
    if (nn) {
        v->by_id = malloc(nn * sizeof *v->by_id);
        v->order = malloc(nn * sizeof *v->order);
        child_key *keys = malloc(nn * sizeof *keys);
        if (!v->by_id || !v->order || !keys) {
            free(keys);
            goto oom;
        }
        for (size_t i = 0; i < nn; i++)
            v->by_id[i] = (id_index){v->nodes[i].span_id, i};
        qsort(v->by_id, nn, sizeof *v->by_id, cmp_by_id);
        for (size_t i = 0; i < nn; i++) {
            span_node *s = &v->nodes[i];
            size_t p = (i > 0 && s->has_parent) ? find_node(v, s->parent_id) : MS_NO_STR;
            s->parent = i == 0 ? MS_NO_STR : (p == MS_NO_STR || p == i) ? 0 : p;
            keys[i] = (child_key){s->parent, s->start_ns, s->rowid, i};
        }
        qsort(keys, nn, sizeof *keys, cmp_children);
        for (size_t i = 0; i < nn; i++)
            v->order[i] = keys[i].node;
        free(keys);
        for (size_t i = 0; i < nn; i++) {
            span_node *s = &v->nodes[v->order[i]];
            if (s->parent == MS_NO_STR)
                continue;
            span_node *p = &v->nodes[s->parent];
            if (p->nchild++ == 0)
                p->child0 = i;
        }
        for (size_t i = 0; i < v->nevs; i++) {
            size_t k = find_node(v, v->evs[i].span_id);
            v->evs[i].node = k == MS_NO_STR ? 0 : k;
        }
        if (v->nevs)
            qsort(v->evs, v->nevs, sizeof *v->evs, cmp_events);
        for (size_t i = 0; i < v->nevs; i++) {
            span_node *s = &v->nodes[v->evs[i].node];
            if (s->nevent++ == 0)
                s->event0 = i;
        }
    }
    ret = 0;
    goto done;
corrupt:
    ms_errf(err, errlen, "trace %s: its stored spans are corrupt (%s)", ms_arena_str(&v->arena, v->id),
            w.error ? w.error : w.r.error ? w.r.error : "bad attributes or events");
    goto done;
oom:
    ms_errf(err, errlen, "out of memory reading the trace");
done:
    v->nnames = (uint32_t)names.n;
    ms_strmap_free(&names);
    ms_buf_free(&attrs);
    ms_show_content_close(&content);
    ms_spans_walk_close(&w);
    sqlite3_finalize(st);
    return ret;
}

/* Reads the trace's profile rows (--profile) and gives each span its
 * own: rows come by span index, nodes are in span index order. */
static int load_profile(sqlite3 *db, trace_view *v, char *err, size_t errlen)
{
    v->profile = 1;
    if (ms_profile_rows(db, v->row, &v->prof, &v->nprof, &v->capprof, &v->arena, err, errlen))
        return -1;
    for (size_t i = 0; i < v->nprof; i++) {
        const ms_prof_row *r = &v->prof[i];
        size_t lo = 0, hi = v->nnodes;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (v->nodes[mid].rowid < r->span_index)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == v->nnodes || v->nodes[lo].rowid != r->span_index)
            continue; /* a span the trace no longer has (it cannot be shown) */
        span_node *s = &v->nodes[lo];
        if (s->nprof++ == 0)
            s->prof0 = i;
        s->prof_samples += r->samples;
        s->prof_ns += r->self_ns;
        v->prof_samples += r->samples;
        v->prof_ns += r->self_ns;
    }
    if (v->nprof && !(v->pfns = malloc(v->nprof * sizeof *v->pfns)))
        return ms_errf(err, errlen, "out of memory reading the profile");
    for (size_t i = 0; i < v->nprof; i++) {
        const ms_prof_row *r = &v->prof[i];
        v->pfns[i] = (ms_prof_fn){ms_arena_str(&v->arena, r->function), ms_arena_str(&v->arena, r->source),
                                  r->line, r->samples, r->self_ns};
    }
    return 0;
}

#define A(off) ms_arena_str(&v->arena, (off))

/* One span as a JSON object with its events and a nested "children"
 * array. Token fields appear only on spans that have them (llm spans). */
static void show_json_span(const trace_view *v, size_t i, ms_buf *b)
{
    const span_node *s = &v->nodes[i];
    char hex[24];
    int f = 1;
    ms_buf_addc(b, '{');
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->span_id);
    ms_kv_str(b, &f, "span_id", hex);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->parent_id);
    ms_kv_str(b, &f, "parent_id", s->has_parent ? hex : NULL);
    ms_kv_str(b, &f, "name", A(s->name));
    ms_kv_str(b, &f, "kind", A(s->kind));
    ms_kv_int(b, &f, "start_ns", s->start_ns);
    /* exact in a double where start_ns is not (2^53 ns is 104 days) */
    ms_kv_num(b, &f, "offset_ms", (double)(s->start_ns - v->start_ns) / MS_NS_PER_MS);
    ms_kv_num(b, &f, "duration_ms", (double)s->duration_ns / MS_NS_PER_MS);
    ms_kv_str(b, &f, "status", A(s->status));
    if (s->is_fold) { /* the repetitions it stands for; p50/p95 within relative_error */
        int g = 1;
        ms_json_key(b, &f, "fold");
        ms_buf_addc(b, '{');
        ms_kv_int(b, &g, "count", s->fold_count);
        ms_kv_int(b, &g, "errors", s->fold_errors);
        ms_kv_num(b, &g, "total_ms", (double)s->fold_total / MS_NS_PER_MS);
        ms_kv_num(b, &g, "min_ms", (double)s->fold_min / MS_NS_PER_MS);
        ms_kv_num(b, &g, "p50_ms", (double)s->fold_p50 / MS_NS_PER_MS);
        ms_kv_num(b, &g, "p95_ms", (double)s->fold_p95 / MS_NS_PER_MS);
        ms_kv_num(b, &g, "max_ms", (double)s->fold_max / MS_NS_PER_MS);
        ms_kv_num(b, &g, "relative_error", MS_HIST_REL_ERROR);
        ms_buf_addc(b, '}');
    }
    ms_json_key(b, &f, "error");
    if (s->error_own) {
        int g = 1;
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "type", A(s->error_type));
        ms_kv_str(b, &g, "message", A(s->error_message));
        ms_kv_str(b, &g, "traceback", A(s->error_traceback));
        ms_buf_addc(b, '}');
    } else {
        ms_buf_adds(b, "null");
    }
    if (s->provider != MS_NO_STR || s->model != MS_NO_STR || s->has_tokens) {
        ms_kv_str(b, &f, "provider", A(s->provider));
        ms_kv_str(b, &f, "model", A(s->model));
        ms_kv_int(b, &f, "input_tokens", s->in_tok);
        ms_kv_int(b, &f, "output_tokens", s->out_tok);
        ms_kv_int(b, &f, "cache_read_tokens", s->cache_read);
        ms_kv_int(b, &f, "cache_write_tokens", s->cache_write);
        ms_kv_raw(b, &f, "usage_estimated", s->estimated ? "true" : "false");
        ms_kv_raw(b, &f, "replayed", s->replayed ? "true" : "false");
    }
    ms_kv_num(b, &f, "cost_usd", s->has_cost ? s->cost : NAN);
    ms_kv_int(b, &f, "retries", s->retries);
    ms_kv_num(b, &f, "backoff_ms", s->backoff_ns ? (double)s->backoff_ns / MS_NS_PER_MS : NAN);
    ms_kv_raw(b, &f, "retry_succeeded",
           s->retry_succeeded < 0 ? NULL : s->retry_succeeded ? "true" : "false");
    ms_kv_num(b, &f, "ttft_ms", s->has_ttft ? (double)s->ttft_ns / MS_NS_PER_MS : NAN);
    ms_kv_raw(b, &f, "attrs", A(s->attrs)); /* json(attrs): valid JSON or NULL */
    ms_json_key(b, &f, "events");
    ms_buf_addc(b, '[');
    for (size_t e = 0; e < s->nevent; e++) {
        const span_event *ev = &v->evs[s->event0 + e];
        int g = 1;
        if (e)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "name", A(ev->name));
        ms_kv_int(b, &g, "time_ns", ev->time_ns);
        ms_kv_num(b, &g, "offset_ms", (double)(ev->time_ns - v->start_ns) / MS_NS_PER_MS);
        ms_kv_raw(b, &g, "attrs", A(ev->attrs));
        if (ev->error_type != MS_NO_STR) {
            ms_kv_str(b, &g, "error_type", A(ev->error_type));
            ms_kv_str(b, &g, "error_message", A(ev->error_message));
        }
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    if (v->profile) {
        ms_json_key(b, &f, "profile");
        if (s->nprof) {
            int g = 1;
            ms_buf_addc(b, '{');
            ms_kv_int(b, &g, "samples", s->prof_samples);
            ms_kv_num(b, &g, "self_ms", (double)s->prof_ns / MS_NS_PER_MS);
            ms_json_key(b, &g, "functions");
            ms_profile_json_list(b, &v->pfns[s->prof0], s->nprof, s->prof_ns);
            ms_buf_addc(b, '}');
        } else {
            ms_buf_adds(b, "null");
        }
    }
    ms_json_key(b, &f, "children");
    ms_buf_addc(b, '[');
    for (size_t c = 0; c < s->nchild; c++) {
        if (c)
            ms_buf_addc(b, ',');
        show_json_span(v, v->order[s->child0 + c], b);
    }
    ms_buf_adds(b, "]}");
}

/* The trace object, its root span (and so the whole tree) in "spans". */
static void show_json(const trace_view *v, ms_buf *b)
{
    char iso[40];
    int f = 1;
    ms_buf_addc(b, '{');
    ms_kv_str(b, &f, "trace_id", A(v->id));
    ms_kv_str(b, &f, "name", A(v->name));
    ms_kv_int(b, &f, "start_ns", v->start_ns);
    ms_iso_utc(v->start_ns, iso, sizeof iso);
    ms_kv_str(b, &f, "start", iso);
    ms_kv_num(b, &f, "duration_ms", (double)v->duration_ns / MS_NS_PER_MS);
    ms_kv_str(b, &f, "status", A(v->status));
    ms_kv_int(b, &f, "error_count", v->error_count);
    ms_kv_int(b, &f, "span_count", v->span_count);
    ms_kv_int(b, &f, "input_tokens", v->in_tok);
    ms_kv_int(b, &f, "output_tokens", v->out_tok);
    ms_kv_int(b, &f, "cache_read_tokens", v->cache_read);
    ms_kv_int(b, &f, "cache_write_tokens", v->cache_write);
    ms_kv_num(b, &f, "cost_usd", v->has_cost ? v->cost : NAN);
    ms_kv_int(b, &f, "unknown_cost_calls", v->unknown);
    ms_kv_raw(b, &f, "attrs", A(v->attrs));
    ms_kv_str(b, &f, "session", A(v->session));
    ms_kv_str(b, &f, "user", A(v->user));
    ms_kv_raw(b, &f, "tags", A(v->tags)); /* a JSON array (ms_who.h) or NULL */
    ms_kv_int(b, &f, "pick", v->pick);
    ms_kv_int(b, &f, "matching_traces", v->matches);
    if (v->profile) {
        int g = 1;
        ms_json_key(b, &f, "profile");
        ms_buf_addc(b, '{');
        ms_kv_int(b, &g, "samples", v->prof_samples);
        ms_kv_num(b, &g, "self_ms", (double)v->prof_ns / MS_NS_PER_MS);
        ms_buf_addc(b, '}');
    }
    ms_json_key(b, &f, "spans");
    ms_buf_addc(b, '[');
    if (v->nnodes)
        show_json_span(v, 0, b);
    ms_buf_addc(b, ']');
    ms_show_eval_json(v, &f, b);
    ms_buf_adds(b, "}\n");
}

#undef A

/* See ms_show.h. All reads in one snapshot; output only on success. */
int ms_show_build(sqlite3 *db, const ms_show_opts *o, ms_buf *out, ms_buf *matches, char *err, size_t errlen)
{
    assert(db && o && o->id && o->pick >= 0 && out && matches);
    trace_view v;
    memset(&v, 0, sizeof v);
    int ret, own = 0;
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    ret = resolve_trace(db, o, &v, matches, err, errlen);
    if (ret == 0)
        ret = load_spans(db, &v, err, errlen);
    if (ret == 0 && o->profile)
        ret = load_profile(db, &v, err, errlen);
    if (ret == 0)
        ret = ms_show_eval_load(db, &v, err, errlen);
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0 && v.arena.oom)
        ret = ms_errf(err, errlen, "out of memory reading the trace");
    if (ret == 0) {
        if (o->json)
            show_json(&v, out);
        else
            ms_show_text(&v, o, out);
        if (out->oom)
            ret = ms_errf(err, errlen, "out of memory writing the trace");
    }
    if (matches->oom && ret == 1)
        ret = ms_errf(err, errlen, "out of memory listing the matching traces");
    trace_view_free(&v);
    return ret;
}

int ms_show_write(sqlite3 *db, const ms_show_opts *o, FILE *out, FILE *matches,
                  char *err, size_t errlen)
{
    assert(out && matches);
    ms_buf b = {0}, m = {0};
    int ret = ms_show_build(db, o, &b, &m, err, errlen);
    if (ret == 0) {
        ret = ms_buf_write(&b, out, err, errlen);
    } else if (ret == 1 && m.len) {
        /* the message in err stays the one to print */
        char werr[256];
        if (ms_buf_write(&m, matches, werr, sizeof werr))
            ret = ms_errf(err, errlen, "%s", werr);
    }
    ms_buf_free(&b);
    ms_buf_free(&m);
    return ret;
}

int ms_trace_show(sqlite3 *db, const char *id, int json, FILE *out, char *err, size_t errlen)
{
    ms_show_opts o = {.id = id, .json = json};
    return ms_show_write(db, &o, out, out, err, errlen);
}
