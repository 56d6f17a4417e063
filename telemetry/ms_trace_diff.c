/* ms_trace_diff — the first span that changed between two traces (see
 * ms_trace_diff.h): both traces are decoded from their packed spans
 * (ms_spans.h), each span given its path, and the newer trace's spans
 * are looked up by path in the older one. */
#include "ms_trace_diff.h"

#include "ms_read.h"
#include "ms_spans.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_IX ((size_t)-1)

typedef struct dattr {
    size_t key, val;            /* arena offsets; val rendered as text */
} dattr;

typedef struct dnode {
    uint32_t gidx, parent_gidx; /* parent_gidx MS_NONE for the root */
    size_t parent;              /* index of the parent node; NO_IX for the root */
    int64_t start, dur;
    size_t name, path, model;   /* arena offsets (model MS_NO_STR unless an llm span) */
    int status, has_llm, has_cost, skip, child_moved;
    uint32_t occurrence;        /* 1 + earlier siblings of the same name */
    int64_t in, out, retries;
    double cost;
    size_t attr0, nattr;
} dnode;

typedef struct dtrace {
    ms_buf arena;
    dnode *nodes;
    size_t n, cap;
    dattr *attrs;
    size_t nattrs, capattrs;
    size_t *by_path;            /* node indices sorted by path */
    int oom;
} dtrace;

static void dtrace_free(dtrace *t)
{
    ms_buf_free(&t->arena);
    free(t->nodes);
    free(t->attrs);
    free(t->by_path);
}

#define S(t, off) ms_arena_str(&(t)->arena, (off))

/* --- loading -------------------------------------------------------------- */

static int add_attr(void *ud, const ms_attr_rec *a)
{
    dtrace *t = ud;
    char num[64];
    const char *v = num;
    size_t vlen;
    switch (a->type) {
    case MS_ATTR_STRING:
        v = a->s.p;
        vlen = a->s.len;
        break;
    case MS_ATTR_INT:
        vlen = (size_t)snprintf(num, sizeof num, "%" PRId64, a->i);
        break;
    case MS_ATTR_DOUBLE:
        vlen = (size_t)snprintf(num, sizeof num, "%.17g", a->d);
        break;
    default:
        vlen = (size_t)snprintf(num, sizeof num, "%s", a->i ? "true" : "false");
        break;
    }
    if (ms_grow((void **)&t->attrs, &t->capattrs, t->nattrs, sizeof *t->attrs)) {
        t->oom = 1;
        return 1;
    }
    dattr *d = &t->attrs[t->nattrs++];
    d->key = ms_arena_put(&t->arena, a->key.p, a->key.len);
    d->val = ms_arena_put(&t->arena, v, vlen);
    return 0;
}

static int cmp_gidx(const void *a, const void *b)
{
    const dnode *x = a, *y = b;
    return (x->gidx > y->gidx) - (x->gidx < y->gidx);
}

static size_t find_gidx(const dtrace *t, uint32_t gidx)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->nodes[mid].gidx < gidx)
            lo = mid + 1;
        else if (t->nodes[mid].gidx > gidx)
            hi = mid;
        else
            return mid;
    }
    return NO_IX;
}

/* Sort records carry their keys: qsort passes no context. */
typedef struct sib_key {
    size_t parent;
    const char *name;
    int64_t start;
    uint32_t gidx;
    size_t node;
} sib_key;

static int cmp_sib(const void *a, const void *b)
{
    const sib_key *x = a, *y = b;
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->gidx > y->gidx) - (x->gidx < y->gidx);
}

typedef struct path_key {
    const char *path;
    size_t node;
} path_key;

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const path_key *)a)->path, ((const path_key *)b)->path);
}

/* Links parents, marks the scorers' spans, numbers repeated names and
 * builds each span's path, then the index by path. 0 or -1 (memory). */
static int link(dtrace *t)
{
    qsort(t->nodes, t->n, sizeof *t->nodes, cmp_gidx);
    for (size_t i = 0; i < t->n; i++) {
        dnode *s = &t->nodes[i];
        s->parent = s->parent_gidx == MS_NONE ? NO_IX : find_gidx(t, s->parent_gidx);
        if (s->parent_gidx != MS_NONE && (s->parent == NO_IX || s->parent == i))
            s->parent = 0; /* a parent the trace lacks: hang it off the root */
        if (i == 0)
            s->parent = NO_IX;
    }
    /* gidx order is begin order: a parent comes before its children */
    for (size_t i = 0; i < t->n; i++) {
        dnode *s = &t->nodes[i];
        s->skip = strncmp(S(t, s->name), "eval.score:", 11) == 0 ||
                  (s->parent != NO_IX && t->nodes[s->parent].skip);
    }
    sib_key *keys = malloc((t->n ? t->n : 1) * sizeof *keys);
    path_key *pk = malloc((t->n ? t->n : 1) * sizeof *pk);
    t->by_path = malloc((t->n ? t->n : 1) * sizeof *t->by_path);
    ms_buf path = {0};
    int ret = -1;
    if (!keys || !pk || !t->by_path)
        goto done;
    for (size_t i = 0; i < t->n; i++)
        keys[i] = (sib_key){t->nodes[i].parent, S(t, t->nodes[i].name), t->nodes[i].start, t->nodes[i].gidx, i};
    qsort(keys, t->n, sizeof *keys, cmp_sib);
    for (size_t i = 0; i < t->n; i++) {
        int same = i > 0 && keys[i].parent == keys[i - 1].parent && strcmp(keys[i].name, keys[i - 1].name) == 0;
        t->nodes[keys[i].node].occurrence = same ? t->nodes[keys[i - 1].node].occurrence + 1 : 1;
    }
    /* paths below the root, parents first; the arena grows, so offsets */
    for (size_t i = 0; i < t->n; i++) {
        dnode *s = &t->nodes[i];
        ms_buf_reset(&path);
        if (s->parent != NO_IX && s->parent != 0) {
            ms_buf_adds(&path, S(t, t->nodes[s->parent].path));
            ms_buf_addc(&path, '/');
        }
        ms_buf_adds(&path, S(t, s->name));
        if (s->occurrence > 1)
            ms_buf_printf(&path, "#%u", (unsigned)s->occurrence);
        if (path.oom)
            goto done;
        s->path = ms_arena_put(&t->arena, path.data, path.len);
    }
    if (t->arena.oom)
        goto done;
    for (size_t i = 0; i < t->n; i++)
        pk[i] = (path_key){S(t, t->nodes[i].path), i};
    qsort(pk, t->n, sizeof *pk, cmp_path);
    for (size_t i = 0; i < t->n; i++)
        t->by_path[i] = pk[i].node;
    ret = 0;
done:
    ms_buf_free(&path);
    free(keys);
    free(pk);
    return ret;
}

/* Reads the latest trace with id `id` into t. 0 or -1 with err. */
static int load(sqlite3 *db, ms_spans_walk *w, const char *id, dtrace *t, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    /* sampled_out came with schema 5; older stores kept every trace whole */
    int sampling = ms_schema_has(db, "traces", "sampled_out", err, errlen);
    if (sampling < 0)
        return -1;
    if (ms_read_prepare(db, sampling ? "SELECT id, parts, span_salt, spans, sampled_out FROM traces"
                                       " WHERE trace_id = ?1 ORDER BY start_ns DESC, id DESC LIMIT 1"
                                     : "SELECT id, parts, span_salt, spans, 0 FROM traces"
                                       " WHERE trace_id = ?1 ORDER BY start_ns DESC, id DESC LIMIT 1",
                        &st, err, errlen))
        return -1;
    int ret = -1;
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the trace id: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ms_errf(err, errlen, "no trace %s in the store (sampled out, or written to another store?)", id);
        goto done;
    }
    if (rc != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_column_int64(st, 4)) {
        /* its spans were dropped: comparing nothing with something would
         * blame every step */
        ms_errf(err, errlen, "trace %s was sampled out (only its summary was kept), so its spans cannot"
                " be compared; record evals without --sample", id);
        goto done;
    }
    ms_spans_walk_trace(w, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                        (uint64_t)sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                        (size_t)sqlite3_column_bytes(st, 3));
    ms_span_rec sp;
    while ((rc = ms_spans_walk_next(w, &sp)) == 1) {
        if (ms_grow((void **)&t->nodes, &t->cap, t->n, sizeof *t->nodes))
            goto oom;
        dnode *s = &t->nodes[t->n++];
        memset(s, 0, sizeof *s);
        s->gidx = sp.gidx;
        s->parent_gidx = sp.parent;
        s->start = sp.start;
        s->dur = sp.duration;
        s->name = ms_arena_put(&t->arena, sp.name.p, sp.name.len);
        s->status = sp.status;
        s->has_llm = sp.has_llm;
        s->model = sp.has_llm ? ms_arena_put(&t->arena, sp.model.p, sp.model.len) : MS_NO_STR;
        s->in = sp.has_llm ? sp.input : 0;
        s->out = sp.has_llm ? sp.output : 0;
        s->has_cost = sp.has_llm && !isnan(sp.cost_usd);
        s->cost = sp.cost_usd;
        s->retries = sp.retries;
        s->attr0 = t->nattrs;
        if (sp.nattrs && ms_pack_attrs(&w->r, &sp, add_attr, t) < 0) {
            ms_errf(err, errlen, "trace %s: its stored attributes are corrupt", id);
            goto done;
        }
        if (t->oom)
            goto oom;
        s->nattr = t->nattrs - s->attr0;
    }
    if (rc < 0) {
        ms_errf(err, errlen, "trace %s: its stored spans are corrupt (%s)", id,
                w->error ? w->error : w->r.error ? w->r.error : "?");
        goto done;
    }
    if (t->arena.oom || link(t))
        goto oom;
    ret = 0;
    goto done;
oom:
    ms_errf(err, errlen, "out of memory reading trace %s", id);
done:
    sqlite3_finalize(st);
    return ret;
}

/* --- comparing ------------------------------------------------------------ */

static size_t find_path(const dtrace *t, const char *path)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(S(t, t->nodes[t->by_path[mid]].path), path);
        if (c < 0)
            lo = mid + 1;
        else if (c > 0)
            hi = mid;
        else
            return t->by_path[mid];
    }
    return NO_IX;
}

static int latency_moved(int64_t a, int64_t b)
{
    int64_t lo = a < b ? a : b, hi = a < b ? b : a;
    return hi - lo > MS_TRACE_DIFF_MIN_NS && (double)hi > MS_TRACE_DIFF_RATIO * (double)lo;
}

static void set_change(ms_trace_change *c, const char *path, const char *what, const char *before,
                       const char *after)
{
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->what, sizeof c->what, "%s", what);
    snprintf(c->before, sizeof c->before, "%s", before);
    snprintf(c->after, sizeof c->after, "%s", after);
}

static const char *status_text(int s)
{
    return s == MS_STATUS_OK ? "ok" : s == MS_STATUS_ERROR ? "error" : s == MS_STATUS_INTERRUPTED ? "interrupted"
                                                                                                 : "incomplete";
}

/* The value of attribute `key` of node n, or NULL. */
static const char *attr_of(const dtrace *t, const dnode *n, const char *key)
{
    for (size_t i = 0; i < n->nattr; i++)
        if (strcmp(S(t, t->attrs[n->attr0 + i].key), key) == 0)
            return S(t, t->attrs[n->attr0 + i].val);
    return NULL;
}

/* Whether span b (of the newer trace) differs from span a on anything
 * but latency; fills c with the first difference. */
static int differs(const dtrace *ta, const dnode *a, const dtrace *tb, const dnode *b, ms_trace_change *c)
{
    char x[64], y[64];
    const char *path = S(tb, b->path);
    if (a->status != b->status) {
        set_change(c, path, "status", status_text(a->status), status_text(b->status));
        return 1;
    }
    if (a->retries != b->retries) {
        snprintf(x, sizeof x, "%" PRId64, a->retries);
        snprintf(y, sizeof y, "%" PRId64, b->retries);
        set_change(c, path, "retries", x, y);
        return 1;
    }
    if (a->has_llm && b->has_llm && strcmp(S(ta, a->model), S(tb, b->model)) != 0) {
        set_change(c, path, "model", S(ta, a->model), S(tb, b->model));
        return 1;
    }
    if (a->in != b->in || a->out != b->out) {
        int input = a->in != b->in;
        snprintf(x, sizeof x, "%" PRId64, input ? a->in : a->out);
        snprintf(y, sizeof y, "%" PRId64, input ? b->in : b->out);
        set_change(c, path, input ? "input_tokens" : "output_tokens", x, y);
        return 1;
    }
    if (a->has_cost != b->has_cost || (a->has_cost && fabs(a->cost - b->cost) > 1e-9 * fmax(fabs(a->cost), 1e-6))) {
        snprintf(x, sizeof x, a->has_cost ? "$%.6f" : "unknown", a->cost);
        snprintf(y, sizeof y, b->has_cost ? "$%.6f" : "unknown", b->cost);
        set_change(c, path, "cost_usd", x, y);
        return 1;
    }
    /* attributes in the newer span's order, then any the newer one lost */
    char what[128];
    for (size_t i = 0; i < b->nattr; i++) {
        const char *key = S(tb, tb->attrs[b->attr0 + i].key), *vb = S(tb, tb->attrs[b->attr0 + i].val);
        const char *va = attr_of(ta, a, key);
        if (!va || strcmp(va, vb) != 0) {
            snprintf(what, sizeof what, "attribute %s", key);
            set_change(c, path, what, va ? va : "(none)", vb);
            return 1;
        }
    }
    for (size_t i = 0; i < a->nattr; i++) {
        const char *key = S(ta, ta->attrs[a->attr0 + i].key);
        if (!attr_of(tb, b, key)) {
            snprintf(what, sizeof what, "attribute %s", key);
            set_change(c, path, what, S(ta, ta->attrs[a->attr0 + i].val), "(none)");
            return 1;
        }
    }
    return 0;
}

typedef struct start_key {
    int64_t start;
    uint32_t gidx;
    size_t node;
} start_key;

static int cmp_start(const void *a, const void *b)
{
    const start_key *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->gidx > y->gidx) - (x->gidx < y->gidx);
}

/* Node indices of t in start order, or NULL (memory). */
static start_key *by_start(const dtrace *t)
{
    start_key *k = malloc((t->n ? t->n : 1) * sizeof *k);
    if (!k)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        k[i] = (start_key){t->nodes[i].start, t->nodes[i].gidx, i};
    qsort(k, t->n, sizeof *k, cmp_start);
    return k;
}

static void fmt_dur(char *out, size_t n, int64_t ns)
{
    snprintf(out, n, "%.2f ms", (double)ns / 1e6);
}

/* See ms_trace_diff.h. */
int ms_trace_first_change(sqlite3 *db, const char *before_id, const char *after_id,
                          ms_trace_change *out, char *err, size_t errlen)
{
    dtrace ta = {0}, tb = {0};
    ms_spans_walk w;
    start_key *order_a = NULL, *order_b = NULL;
    size_t *match = NULL;
    int own = 0, ret = -1;
    memset(out, 0, sizeof *out);
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    if (ms_spans_walk_open(&w, db, err, errlen)) {
        ms_read_end(db, own, NULL, 0);
        return -1;
    }
    if (load(db, &w, before_id, &ta, err, errlen) || load(db, &w, after_id, &tb, err, errlen))
        goto done;
    order_a = by_start(&ta);
    order_b = by_start(&tb);
    match = malloc((tb.n ? tb.n : 1) * sizeof *match);
    if (!order_a || !order_b || !match) {
        ms_errf(err, errlen, "out of memory comparing traces");
        goto done;
    }
    /* the newer trace's spans matched by path; then which moved in latency,
     * so that a parent is not blamed for its child's time */
    for (size_t i = 0; i < tb.n; i++) {
        match[i] = i == 0 || tb.nodes[i].skip ? NO_IX : find_path(&ta, S(&tb, tb.nodes[i].path));
        if (match[i] != NO_IX && (ta.nodes[match[i]].skip || match[i] == 0))
            match[i] = NO_IX;
    }
    for (size_t i = 1; i < tb.n; i++) {
        if (match[i] == NO_IX || !latency_moved(ta.nodes[match[i]].dur, tb.nodes[i].dur))
            continue;
        for (size_t p = tb.nodes[i].parent; p != NO_IX; p = tb.nodes[p].parent)
            tb.nodes[p].child_moved = 1;
    }
    char x[64], y[64];
    for (size_t k = 0; k < tb.n; k++) {
        size_t i = order_b[k].node;
        const dnode *b = &tb.nodes[i];
        if (i == 0 || b->skip)
            continue;
        if (match[i] == NO_IX) {
            set_change(out, S(&tb, b->path), "span", "absent", "present");
            ret = 0;
            goto done;
        }
        const dnode *a = &ta.nodes[match[i]];
        if (differs(&ta, a, &tb, b, out)) {
            ret = 0;
            goto done;
        }
        if (!b->child_moved && latency_moved(a->dur, b->dur)) {
            fmt_dur(x, sizeof x, a->dur);
            fmt_dur(y, sizeof y, b->dur);
            set_change(out, S(&tb, b->path), "latency", x, y);
            ret = 0;
            goto done;
        }
    }
    for (size_t k = 0; k < ta.n; k++) {
        size_t i = order_a[k].node;
        const dnode *a = &ta.nodes[i];
        if (i == 0 || a->skip)
            continue;
        if (find_path(&tb, S(&ta, a->path)) == NO_IX) {
            set_change(out, S(&ta, a->path), "span", "present", "absent");
            ret = 0;
            goto done;
        }
    }
    ms_errf(err, errlen, "no span changed beyond noise (tokens, cost, retries, status, attributes equal;"
                         " latency within %gx or %g ms)", MS_TRACE_DIFF_RATIO,
            (double)MS_TRACE_DIFF_MIN_NS / 1e6);
    ret = 1;
done:
    free(order_a);
    free(order_b);
    free(match);
    ms_spans_walk_close(&w);
    if (ms_read_end(db, own, ret >= 0 ? err : NULL, ret >= 0 ? errlen : 0) && ret >= 0)
        ret = -1;
    dtrace_free(&ta);
    dtrace_free(&tb);
    return ret;
}
