/* ms_profile_report — `moonspan report --profile`: where the CPU time
 * went in each step, over every profiled trace in the window (see
 * ms_profile.h).
 *
 * A step is a span name, as in the report; a request's own code (samples
 * taken outside any span of a trace) counts under the trace's name,
 * marked as the request. Only traces that have profile rows are read:
 * their rows, then their spans (to name each row's span), once each. */
#include "ms_profile.h"

#include "ms_fmt.h"
#include "ms_read.h"
#include "ms_report_data.h"
#include "ms_spans.h"
#include "ms_strmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct step_prof {
    const char *name;          /* owned by the steps map, after its kind byte */
    int request;               /* the trace's own code, not a span of it */
    int64_t spans, samples, self_ns;
    size_t fn0, nfn;           /* its functions: fns[fn0 .. fn0 + nfn) once sorted */
} step_prof;

typedef struct fn_prof {
    size_t step;
    ms_prof_fn f;              /* strings owned by the functions map's key */
} fn_prof;

typedef struct prof_report {
    ms_strmap step_keys, fn_keys;
    step_prof *steps;
    size_t nsteps, capsteps;
    fn_prof *fns;
    size_t nfns, capfns;
    ms_prof_fn *listed;        /* fns once sorted, as the lists take them */
    int64_t traces;
    int64_t evals_left_out;    /* profiled eval traces the selection's default left out */
    ms_buf key;
    /* the trace being read: its rows and their strings */
    ms_prof_row *rows;
    size_t nrows, caprows;
    ms_buf arena;
} prof_report;

static void prof_report_free(prof_report *p)
{
    ms_strmap_free(&p->step_keys);
    ms_strmap_free(&p->fn_keys);
    free(p->steps);
    free(p->fns);
    free(p->listed);
    free(p->rows);
    ms_buf_free(&p->key);
    ms_buf_free(&p->arena);
}

/* The step of a span: its name, and whether it is the request itself. */
static long step_of(prof_report *p, const char *name, size_t len, int request)
{
    ms_buf_reset(&p->key);
    ms_buf_addc(&p->key, request ? 'r' : 's');
    ms_buf_add(&p->key, name, len);
    if (p->key.oom)
        return -1;
    int created;
    long i = ms_strmap_get(&p->step_keys, p->key.data, p->key.len, &created);
    if (i < 0 || !created)
        return i;
    if (ms_grow((void **)&p->steps, &p->capsteps, p->nsteps, sizeof *p->steps))
        return -1;
    p->steps[p->nsteps++] = (step_prof){.name = p->step_keys.ent[i].key + 1, .request = request};
    return i;
}

/* Adds row r (of the trace being read) to step `step`'s function. */
static int add_row(prof_report *p, long step, const ms_prof_row *r)
{
    const char *fn = ms_arena_str(&p->arena, r->function), *src = ms_arena_str(&p->arena, r->source);
    ms_buf_reset(&p->key);
    ms_buf_printf(&p->key, "%ld %lld", step, (long long)r->line);
    ms_buf_addc(&p->key, 0);
    ms_buf_adds(&p->key, fn);
    ms_buf_addc(&p->key, 0);
    ms_buf_adds(&p->key, src);
    if (p->key.oom)
        return -1;
    int created;
    long i = ms_strmap_get(&p->fn_keys, p->key.data, p->key.len, &created);
    if (i < 0)
        return -1;
    if (created) {
        if (ms_grow((void **)&p->fns, &p->capfns, p->nfns, sizeof *p->fns))
            return -1;
        const char *k = p->fn_keys.ent[i].key;
        const char *kf = k + strlen(k) + 1;
        p->fns[p->nfns++] = (fn_prof){(size_t)step, {kf, kf + strlen(kf) + 1, r->line, 0, 0}};
    }
    p->fns[i].f.samples += r->samples;
    p->fns[i].f.self_ns += r->self_ns;
    p->steps[step].samples += r->samples;
    p->steps[step].self_ns += r->self_ns;
    return 0;
}

/* The rows of span `gidx` among the trace's rows (sorted by span):
 * [*first, return). */
static size_t rows_of(const prof_report *p, int64_t gidx, size_t *first)
{
    size_t lo = 0, hi = p->nrows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->rows[mid].span_index < gidx)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (hi < p->nrows && p->rows[hi].span_index == gidx)
        hi++;
    return hi;
}

/* One profiled trace (the current row of `st`: id, salt, parts, spans):
 * its rows, then each span that has rows, named by a walk of its spans. */
static int add_trace(sqlite3 *db, prof_report *p, ms_spans_walk *w, sqlite3_stmt *st,
                     char *err, size_t errlen)
{
    int64_t row = sqlite3_column_int64(st, 0);
    p->nrows = 0;
    ms_buf_reset(&p->arena);
    if (ms_profile_rows(db, row, &p->rows, &p->nrows, &p->caprows, &p->arena, err, errlen))
        return -1;
    p->traces++;
    ms_spans_walk_columns(w, st, 0);
    ms_span_rec sp;
    int got;
    while ((got = ms_spans_walk_next(w, &sp)) == 1) {
        size_t first, end = rows_of(p, sp.gidx, &first);
        if (first == end)
            continue;
        long step = step_of(p, sp.name.p, sp.name.len, sp.gidx == 0);
        if (step < 0)
            return ms_errf(err, errlen, "out of memory reading profiles");
        p->steps[step].spans++;
        for (size_t k = first; k < end; k++)
            if (add_row(p, step, &p->rows[k]))
                return ms_errf(err, errlen, "out of memory reading profiles");
    }
    if (got < 0)
        return ms_errf(err, errlen, "trace row %lld: its stored spans are corrupt (%s); the rest of the"
                       " store reads, this trace cannot", (long long)row, w->error);
    return 0;
}

#define PROFILED "t.id IN (SELECT DISTINCT trace_row FROM span_profiles)"

/* Every profiled trace within the filters, in one read snapshot, and how
 * many profiled eval traces the default left out. */
static int scan(sqlite3 *db, const ms_report_opts *o, prof_report *p, char *err, size_t errlen)
{
    int has = ms_schema_has(db, "span_profiles", NULL, err, errlen);
    if (has <= 0)
        return has;
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT t.id, t.span_salt, t.parts, t.spans FROM traces t");
    size_t bare = sql.len;
    sqlite3_stmt *st = NULL;
    int ok = ms_select_where(db, &o->sel, &sql, err, errlen) == 0;
    if (ok) {
        ms_buf_adds(&sql, sql.len > bare ? " AND " : " WHERE ");
        ms_buf_adds(&sql, PROFILED " ORDER BY t.id");
        ok = !sql.oom && ms_read_prepare(db, sql.data, &st, err, errlen) == 0;
        if (sql.oom)
            ms_errf(err, errlen, "out of memory building a query");
    }
    ms_buf_free(&sql);
    if (!ok)
        return -1;
    ms_spans_walk w;
    if (ms_spans_walk_open(&w, db, err, errlen)) {
        sqlite3_finalize(st);
        return -1;
    }
    int ret = ms_select_evals_left_out(db, &o->sel, PROFILED, &p->evals_left_out, err, errlen);
    int rc = SQLITE_DONE;
    if (ret == 0)
        ret = ms_select_bind(db, st, &o->sel, err, errlen);
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ret = add_trace(db, p, &w, st, err, errlen);
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
    ms_spans_walk_close(&w);
    sqlite3_finalize(st);
    return ret;
}

/* --- order and output ------------------------------------------------------ */

static int cmp_fns(const void *a, const void *b)
{
    const fn_prof *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    if (x->f.self_ns != y->f.self_ns)
        return x->f.self_ns < y->f.self_ns ? 1 : -1;
    int c = strcmp(x->f.function, y->f.function);
    return c ? c : strcmp(x->f.source, y->f.source);
}

static int cmp_steps(const void *a, const void *b)
{
    const step_prof *x = a, *y = b;
    if (x->self_ns != y->self_ns)
        return x->self_ns < y->self_ns ? 1 : -1;
    int c = strcmp(x->name, y->name);
    return c ? c : x->request - y->request;
}

/* Groups the functions under their step, hottest first, then orders the
 * steps the same way (their fn0 follow them). Returns 0 or -1 (memory). */
static int sort_report(prof_report *p)
{
    if (p->nfns)
        qsort(p->fns, p->nfns, sizeof *p->fns, cmp_fns);
    if (p->nfns && !(p->listed = malloc(p->nfns * sizeof *p->listed)))
        return -1;
    for (size_t i = 0; i < p->nfns; i++) {
        step_prof *s = &p->steps[p->fns[i].step];
        if (s->nfn++ == 0)
            s->fn0 = i;
        p->listed[i] = p->fns[i].f;
    }
    if (p->nsteps)
        qsort(p->steps, p->nsteps, sizeof *p->steps, cmp_steps);
    return 0;
}

static void report_text(const prof_report *p, const ms_report_opts *o, ms_buf *b)
{
    char ms[40];
    ms_buf_printf(b, "moonspan report --profile: %lld profiled trace%s", (long long)p->traces,
                  p->traces == 1 ? "" : "s");
    ms_report_window_text(&o->sel, b);
    ms_buf_addc(b, '\n');
    ms_report_left_out_text(p->evals_left_out, b);
    if (!p->nsteps) {
        ms_buf_adds(b, "\nno profiles recorded in this window; record some with `moonspan run --profile SCRIPT`\n");
        return;
    }
    ms_buf_adds(b, "\nSelf CPU time per step (its own code, not its child spans), hottest functions first\n");
    for (size_t i = 0; i < p->nsteps; i++) {
        const step_prof *s = &p->steps[i];
        ms_buf_addc(b, '\n');
        ms_fmt_text(b, s->name, "?");
        ms_buf_printf(b, "%s  %s in %lld span%s (%lld sample%s)\n", s->request ? " (the request's own code)" : "",
                      ms_fmt_ms(ms, sizeof ms, (double)s->self_ns / MS_NS_PER_MS), (long long)s->spans,
                      s->spans == 1 ? "" : "s", (long long)s->samples, s->samples == 1 ? "" : "s");
        ms_profile_text_list(b, 2, &p->listed[s->fn0], s->nfn, s->self_ns);
    }
}

static void report_json(const prof_report *p, const ms_report_opts *o, ms_buf *b)
{
    int f = 1, g = 1;
    ms_buf_addc(b, '{');
    ms_json_key(b, &f, "window");
    ms_buf_addc(b, '{');
    ms_report_window_json(&o->sel, p->evals_left_out, b, &g);
    ms_buf_addc(b, '}');
    ms_kv_int(b, &f, "traces", p->traces);
    ms_json_key(b, &f, "steps");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < p->nsteps; i++) {
        const step_prof *s = &p->steps[i];
        int h = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &h, "name", s->name);
        ms_kv_raw(b, &h, "request", s->request ? "true" : "false");
        ms_kv_int(b, &h, "spans", s->spans);
        ms_kv_int(b, &h, "samples", s->samples);
        ms_kv_num(b, &h, "self_ms", (double)s->self_ns / MS_NS_PER_MS);
        ms_json_key(b, &h, "functions");
        ms_profile_json_list(b, &p->listed[s->fn0], s->nfn, s->self_ns);
        ms_buf_addc(b, '}');
    }
    ms_buf_adds(b, "]}\n");
}

int ms_profile_report_write(sqlite3 *db, const ms_report_opts *o, FILE *out, char *err, size_t errlen)
{
    assert(db && o && out);
    prof_report p;
    memset(&p, 0, sizeof p);
    ms_buf b = {0};
    int own = 0, ret = -1;
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    ret = scan(db, o, &p, err, errlen);
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0 && sort_report(&p))
        ret = ms_errf(err, errlen, "out of memory sorting profiles");
    if (ret == 0) {
        if (o->json)
            report_json(&p, o, &b);
        else
            report_text(&p, o, &b);
        ret = ms_buf_write(&b, out, err, errlen);
    }
    ms_buf_free(&b);
    prof_report_free(&p);
    return ret;
}
