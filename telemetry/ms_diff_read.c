/* ms_diff_read — the two sides of `moonspan diff`: each side's argument
 * turned into a selection (ms_select.h) with the shared narrowing, then
 * its traces read as the report reads them (ms_report.c): request
 * numbers from each row, steps (ms_steps, keeping their values for the
 * bootstrap) and LLM call failures from its packed spans. */
#include "ms_diff_data.h"

#include "ms_read.h"
#include "ms_spans.h"
#include "ms_who.h"

#include <stdlib.h>
#include <string.h>

/* --- the sides ------------------------------------------------------------- */

static int bad_side(char *err, size_t errlen, const char *fmt, const char *which,
                    const char *arg, const char *fix)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, which, arg);
    ms_errf(err, errlen, "%s; %s", msg, fix);
    return MS_DIFF_BAD_SIDE;
}

/* The id of the run `back` runs before the newest, or 0 when the store
 * has fewer runs. Returns 0 or -1 with err. */
static int nth_last_run(sqlite3 *db, int64_t back, int64_t *id, int64_t *nruns,
                        char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT (SELECT id FROM runs ORDER BY start_ns DESC, id DESC"
                            " LIMIT 1 OFFSET ?1), (SELECT count(*) FROM runs)", &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, back);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        *nruns = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return ms_errf(err, errlen, "cannot read runs: %s", sqlite3_errmsg(db));
    return 0;
}

/* Whether the run and eval run a side names exist (ms_select_check).
 * Returns 0, MS_DIFF_ERROR or MS_DIFF_BAD_SIDE with err. */
static int check_ids(sqlite3 *db, const ms_select *s, const char *which, const char *arg,
                     char *err, size_t errlen)
{
    char why[512];
    int rc = ms_select_check(db, s, why, sizeof why);
    if (rc < 0) {
        ms_errf(err, errlen, "%s", why);
        return MS_DIFF_ERROR;
    }
    if (rc > 0) {
        ms_errf(err, errlen, "side %s '%s': %s", which, arg, why);
        return MS_DIFF_BAD_SIDE;
    }
    return 0;
}

/* See ms_diff_data.h: a filter given both ways is refused rather than
 * one silently winning. */
int ms_diff_side_select(sqlite3 *db, const ms_diff_side *sd, const char *which,
                        const ms_select *narrow, ms_select *out, char *err, size_t errlen)
{
    *out = *narrow;
    int64_t id = sd->id;
    switch (sd->kind) {
    case MS_SIDE_LAST: {
        int64_t nruns = 0;
        if (nth_last_run(db, sd->id, &id, &nruns, err, errlen))
            return MS_DIFF_ERROR;
        if (id == 0) {
            char fix[160];
            snprintf(fix, sizeof fix, "the store holds %lld run%s; `moonspan runs` lists them",
                     (long long)nruns, nruns == 1 ? "" : "s");
            return bad_side(err, errlen, "side %s '%s' names no run", which, sd->arg, fix);
        }
        __attribute__((fallthrough)); /* a run by its id now */
    }
    case MS_SIDE_RUN:
        if (narrow->run_id)
            return bad_side(err, errlen, "side %s '%s' is a run and --run names one too", which,
                            sd->arg, "drop --run, or give the sides as windows or globs");
        out->run_id = id;
        return check_ids(db, out, which, sd->arg, err, errlen);
    case MS_SIDE_EVAL:
        if (narrow->eval_run)
            return bad_side(err, errlen, "side %s '%s' is an eval run and --eval-run names one too",
                            which, sd->arg, "drop --eval-run");
        out->eval_run = id;
        return check_ids(db, out, which, sd->arg, err, errlen);
    case MS_SIDE_WINDOW:
        if (sd->since_ns && sd->since_ns > out->since_ns)
            out->since_ns = sd->since_ns;
        if (sd->until_ns && (!out->until_ns || sd->until_ns < out->until_ns))
            out->until_ns = sd->until_ns;
        return 0;
    case MS_SIDE_GLOB:
        if (narrow->name_glob)
            return bad_side(err, errlen, "side %s '%s' is a trace-name glob and --name gives another",
                            which, sd->arg, "put the whole pattern in the side, or give the sides"
                            " as runs or windows and keep --name");
        out->name_glob = sd->arg;
        return 0;
    }
    return ms_errf(err, errlen, "side %s: unknown kind", which);
}

/* --- reading a side -------------------------------------------------------- */

int ms_diff_vals_add(diff_vals *s, double x)
{
    if (ms_grow((void **)&s->v, &s->cap, s->n, sizeof *s->v))
        return -1;
    s->v[s->n++] = x;
    return 0;
}

static void reqs_free(diff_reqs *r)
{
    free(r->dur.v);
    free(r->tokens.v);
    free(r->cost.v);
}

void ms_diff_side_free(diff_side *s)
{
    reqs_free(&s->all);
    for (size_t i = 0; i < s->names.n; i++)
        reqs_free(&s->by_name[i]);
    free(s->by_name);
    ms_strmap_free(&s->names);
    ms_steps_free(&s->steps);
    ms_buf_free(&s->desc);
}

/* The requests of group n[0..len), made when new. NULL on OOM. */
static diff_reqs *reqs_of(diff_side *s, const char *n, size_t len)
{
    /* room first, so a name in the map always has its row */
    if (ms_grow((void **)&s->by_name, &s->cap_names, s->names.n, sizeof *s->by_name))
        return NULL;
    int created;
    long i = ms_strmap_get(&s->names, n, len, &created);
    if (i < 0)
        return NULL;
    if (created)
        memset(&s->by_name[i], 0, sizeof *s->by_name);
    return &s->by_name[i];
}

static inline int is(const unsigned char *s, const char *w)
{
    return s && strcmp((const char *)s, w) == 0;
}

/* What one trace row adds to a request group. llm/llm_failed come from
 * its spans. Returns 0 or -1 (OOM). */
static int reqs_add(diff_reqs *r, sqlite3_stmt *st, int64_t llm, int64_t llm_failed)
{
    const unsigned char *status = sqlite3_column_text(st, 2);
    r->requests++;
    r->sampled_out += sqlite3_column_int64(st, 11) != 0;
    r->llm_calls += llm;
    r->llm_failed += llm_failed;
    if (is(status, "interrupted")) {
        r->interrupted++;
        return 0;
    }
    if (is(status, "incomplete")) {
        r->incomplete++;
        return 0;
    }
    r->completed++;
    r->errors += is(status, "error");
    if (ms_diff_vals_add(&r->dur, (double)sqlite3_column_int64(st, 1)) ||
        ms_diff_vals_add(&r->tokens, (double)(sqlite3_column_int64(st, 3) + sqlite3_column_int64(st, 4))))
        return -1;
    if (sqlite3_column_type(st, 5) == SQLITE_NULL) {
        r->unpriced++;
        return 0;
    }
    /* live spend, as the report counts it: replayed calls cost nothing */
    double cost = sqlite3_column_double(st, 5);
    if (sqlite3_column_type(st, 6) != SQLITE_NULL)
        cost -= sqlite3_column_double(st, 6);
    return ms_diff_vals_add(&r->cost, cost);
}

/* The spans of the current row: steps, and the completed LLM calls with
 * how many failed. Returns 0 or -1 with err. */
static int read_spans(diff_side *s, ms_spans_walk *w, sqlite3_stmt *st, int64_t *llm,
                      int64_t *llm_failed, char *err, size_t errlen)
{
    int64_t row = ms_spans_walk_columns(w, st, 7);
    ms_span_rec sp;
    int got;
    while ((got = ms_spans_walk_next(w, &sp)) == 1) {
        if (ms_steps_add(&s->steps, w, &sp))
            goto steps_failed;
        if (sp.has_llm && sp.kind == MS_KIND_LLM &&
            (sp.status == MS_STATUS_OK || sp.status == MS_STATUS_ERROR)) {
            (*llm)++;
            *llm_failed += sp.status == MS_STATUS_ERROR;
        }
    }
    if (got < 0)
        return ms_errf(err, errlen, "trace row %lld: its stored spans are corrupt (%s); the rest of"
                       " the store reads, this trace cannot", (long long)row, w->error);
    if (ms_steps_trace_end(&s->steps))
        goto steps_failed;
    return 0;
steps_failed:
    return ms_errf(err, errlen, "trace row %lld: grouping its steps: %s", (long long)row,
                   s->steps.error ? s->steps.error : "out of memory");
}

/* A column of traces that an older schema may lack, or `fallback`. */
static int column_or(sqlite3 *db, const char *col, const char *fallback, ms_buf *sql,
                     char *err, size_t errlen)
{
    int has = ms_schema_has(db, "traces", col, err, errlen);
    if (has < 0)
        return -1;
    ms_buf_printf(sql, ", %s%s", has ? "t." : "", has ? col : fallback);
    return 0;
}

/* See ms_diff_data.h: one pass over the side's traces, in rowid order
 * unless the selection uses an index. */
int ms_diff_read_side(sqlite3 *db, diff_side *s, int by_name, enum ms_diff_rows_by rows_by,
                      char *err, size_t errlen)
{
    ms_buf sql = {0};
    const char *group = "t.name";
    ms_who_sql who;
    if (rows_by != MS_DIFF_ROWS_NAME) {
        if (ms_who_sql_get(db, &who, err, errlen))
            return -1;
        group = rows_by == MS_DIFF_ROWS_USER ? who.user : who.session;
    }
    ms_buf_printf(&sql, "SELECT %s, t.duration_ns, t.status, t.input_tokens, t.output_tokens,"
                        " t.cost_usd", group);
    if (column_or(db, "replayed_cost_usd", "NULL", &sql, err, errlen))
        goto fail_sql;
    ms_buf_adds(&sql, ", t.id, t.span_salt, t.parts, t.spans");
    if (column_or(db, "sampled_out", "0", &sql, err, errlen))
        goto fail_sql;
    ms_buf_adds(&sql, " FROM traces t");
    sqlite3_stmt *st;
    if (ms_select_prepare(db, &s->sel, &sql, NULL, &st, err, errlen))
        return -1;
    ms_spans_walk w;
    if (ms_spans_walk_open(&w, db, err, errlen)) {
        sqlite3_finalize(st);
        return -1;
    }
    int ret = -1, rc;
    ms_steps_init(&s->steps, by_name ? MS_STEPS_BY_NAME : MS_STEPS_BY_PATH);
    s->steps.keep_values = 1;
    if (ms_select_bind(db, st, &s->sel, err, errlen))
        goto done;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t llm = 0, llm_failed = 0;
        if (read_spans(s, &w, st, &llm, &llm_failed, err, errlen))
            goto done;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        diff_reqs *r = name ? reqs_of(s, name, (size_t)sqlite3_column_bytes(st, 0))
                     : rows_by == MS_DIFF_ROWS_NAME ? reqs_of(s, "", 0)
                                                    : reqs_of(s, DIFF_NO_GROUP, DIFF_NO_GROUP_LEN);
        if (!r || reqs_add(r, st, llm, llm_failed) || reqs_add(&s->all, st, llm, llm_failed)) {
            ms_errf(err, errlen, "out of memory reading traces");
            goto done;
        }
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (ms_steps_finish(&s->steps)) {
        ms_errf(err, errlen, "out of memory computing the step percentiles");
        goto done;
    }
    ret = 0;
done:
    ms_spans_walk_close(&w);
    sqlite3_finalize(st);
    return ret;
fail_sql:
    ms_buf_free(&sql);
    return -1;
}

