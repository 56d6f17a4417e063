/* ms_runs — `moonspan runs` (see ms_runs.h): the run rows, then two
 * grouped reads (trace counts, eval runs) matched to them by run id. */
#include "ms_runs.h"

#include "ms_fmt.h"
#include "ms_read.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The label `moonspan test` records as its script (host/cmd_run.c). */
#define TEST_LABEL "moonspan-test"

typedef struct run_row {
    int64_t id, start_ns, end_ns, pid;
    int has_end;
    size_t script, args, version;   /* arena offsets */
    int64_t traces, errors, interrupted, incomplete;
    size_t ev0, nev;                /* its eval runs: evs[ev0 .. ev0 + nev) */
} run_row;

typedef struct eval_row {
    int64_t id, run_id, start_ns, cases, passed;
    int has_cases;
    double pass_rate;               /* NaN while running */
    size_t suite, suite_file, status;
} eval_row;

typedef struct runs_view {
    run_row *rows;
    size_t n, cap;
    eval_row *evs;
    size_t nev, capev;
    ms_buf arena;
} runs_view;

static void view_free(runs_view *v)
{
    free(v->rows);
    free(v->evs);
    ms_buf_free(&v->arena);
}

static const char *str(const runs_view *v, size_t off) { return ms_arena_str(&v->arena, off); }

static const char *command(const runs_view *v, const run_row *r)
{
    if (r->nev)
        return "eval";
    const char *s = str(v, r->script);
    return s && strcmp(s, TEST_LABEL) == 0 ? "test" : "run";
}

/* The index of the run with id `id`, or -1. `order` holds row indices
 * sorted by id. */
static long find_run(const runs_view *v, const size_t *order, int64_t id)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t m = v->rows[order[mid]].id;
        if (m == id)
            return (long)order[mid];
        if (m < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Row indices by their run's id (qsort_r: the rows are the argument). */
static int cmp_by_id(const void *a, const void *b, void *rows)
{
    const run_row *r = rows;
    int64_t x = r[*(const size_t *)a].id, y = r[*(const size_t *)b].id;
    return (x > y) - (x < y);
}

/* --- reads ----------------------------------------------------------------- */

static int read_runs(sqlite3 *db, const ms_runs_opts *o, runs_view *v, char *err, size_t errlen)
{
    /* end_ns came with schema v5; a reader may meet an older store */
    int has_end = ms_schema_has(db, "runs", "end_ns", err, errlen);
    if (has_end < 0)
        return -1;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, script, CASE WHEN json_valid(args) THEN args END, host_version, start_ns,"
             " pid, %s FROM runs WHERE start_ns >= ?1 ORDER BY start_ns DESC, id DESC LIMIT ?2",
             has_end ? "end_ns" : "NULL");
    sqlite3_stmt *st;
    if (ms_read_prepare(db, sql, &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, o->since_ns);
    sqlite3_bind_int64(st, 2, o->limit > 0 ? o->limit : MS_RUNS_DEFAULT_LIMIT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)&v->rows, &v->cap, v->n, sizeof *v->rows)) {
            sqlite3_finalize(st);
            return ms_errf(err, errlen, "out of memory reading runs");
        }
        run_row *r = &v->rows[v->n++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        r->script = ms_arena_col(&v->arena, st, 1);
        r->args = ms_arena_col(&v->arena, st, 2);
        r->version = ms_arena_col(&v->arena, st, 3);
        r->start_ns = sqlite3_column_int64(st, 4);
        r->pid = sqlite3_column_int64(st, 5);
        r->has_end = sqlite3_column_type(st, 6) != SQLITE_NULL;
        r->end_ns = sqlite3_column_int64(st, 6);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "cannot read the runs: %s", sqlite3_errmsg(db));
    return v->arena.oom ? ms_errf(err, errlen, "out of memory reading runs") : 0;
}

/* Trace counts of the listed runs in one grouped query. A trace starts
 * after its run did, so only traces since the oldest listed run are read
 * (through the start_ns index); rows of runs not listed are skipped. */
static int read_counts(sqlite3 *db, runs_view *v, const size_t *order, char *err, size_t errlen)
{
    int64_t oldest = v->rows[v->n - 1].start_ns, min_id = v->rows[order[0]].id;
    sqlite3_stmt *st;
    if (ms_read_prepare(db,
                        "SELECT t.run_id, count(*), sum(t.status = 'error'), sum(t.status = 'interrupted'),"
                        " sum(t.status = 'incomplete') FROM traces t"
                        " WHERE t.start_ns >= ?1 AND t.run_id >= ?2 GROUP BY t.run_id",
                        &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, oldest);
    sqlite3_bind_int64(st, 2, min_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long i = find_run(v, order, sqlite3_column_int64(st, 0));
        if (i < 0)
            continue;
        run_row *r = &v->rows[i];
        r->traces = sqlite3_column_int64(st, 1);
        r->errors = sqlite3_column_int64(st, 2);
        r->interrupted = sqlite3_column_int64(st, 3);
        r->incomplete = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "cannot count the runs' traces: %s", sqlite3_errmsg(db));
    return 0;
}

/* The eval runs of the listed runs, grouped by run (in start order within
 * one); none on a store without eval tables. */
static int read_evals(sqlite3 *db, runs_view *v, const size_t *order, char *err, size_t errlen)
{
    int has = ms_schema_has(db, "eval_runs", NULL, err, errlen);
    if (has <= 0)
        return has;
    sqlite3_stmt *st;
    if (ms_read_prepare(db,
                        "SELECT run_id, id, suite, suite_file, start_ns, cases, passed, pass_rate, status"
                        " FROM eval_runs WHERE run_id >= ?1 ORDER BY run_id, start_ns, id",
                        &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, v->rows[order[0]].id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long i = find_run(v, order, sqlite3_column_int64(st, 0));
        if (i < 0)
            continue;
        if (ms_grow((void **)&v->evs, &v->capev, v->nev, sizeof *v->evs)) {
            sqlite3_finalize(st);
            return ms_errf(err, errlen, "out of memory reading eval runs");
        }
        run_row *r = &v->rows[i];
        if (!r->nev)
            r->ev0 = v->nev;
        r->nev++;
        eval_row *e = &v->evs[v->nev++];
        e->run_id = r->id;
        e->id = sqlite3_column_int64(st, 1);
        e->suite = ms_arena_col(&v->arena, st, 2);
        e->suite_file = ms_arena_col(&v->arena, st, 3);
        e->start_ns = sqlite3_column_int64(st, 4);
        e->has_cases = sqlite3_column_type(st, 5) != SQLITE_NULL;
        e->cases = sqlite3_column_int64(st, 5);
        e->passed = sqlite3_column_int64(st, 6);
        e->pass_rate = ms_col_num(st, 7);
        e->status = ms_arena_col(&v->arena, st, 8);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "cannot read eval runs: %s", sqlite3_errmsg(db));
    return v->arena.oom ? ms_errf(err, errlen, "out of memory reading eval runs") : 0;
}

/* --- output ---------------------------------------------------------------- */

static void json_view(const runs_view *v, ms_buf *b)
{
    char iso[40];
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < v->n; i++) {
        const run_row *r = &v->rows[i];
        int f = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_int(b, &f, "id", r->id);
        ms_kv_str(b, &f, "command", command(v, r));
        ms_kv_str(b, &f, "script", str(v, r->script));
        ms_kv_raw(b, &f, "args", str(v, r->args));
        ms_kv_str(b, &f, "host_version", str(v, r->version));
        ms_kv_int(b, &f, "pid", r->pid);
        ms_kv_int(b, &f, "start_ns", r->start_ns);
        ms_iso_utc(r->start_ns, iso, sizeof iso);
        ms_kv_str(b, &f, "start", iso);
        ms_kv_int_or_null(b, &f, "end_ns", r->has_end, r->end_ns);
        ms_kv_num(b, &f, "duration_ms", r->has_end ? (double)(r->end_ns - r->start_ns) / MS_NS_PER_MS : NAN);
        ms_kv_int(b, &f, "traces", r->traces);
        ms_kv_int(b, &f, "errors", r->errors);
        ms_kv_int(b, &f, "interrupted", r->interrupted);
        ms_kv_int(b, &f, "incomplete", r->incomplete);
        ms_json_key(b, &f, "eval_runs");
        ms_buf_addc(b, '[');
        for (size_t k = 0; k < r->nev; k++) {
            const eval_row *e = &v->evs[r->ev0 + k];
            int g = 1;
            if (k)
                ms_buf_addc(b, ',');
            ms_buf_addc(b, '{');
            ms_kv_int(b, &g, "id", e->id);
            ms_kv_str(b, &g, "suite", str(v, e->suite));
            ms_kv_str(b, &g, "suite_file", str(v, e->suite_file));
            ms_iso_utc(e->start_ns, iso, sizeof iso);
            ms_kv_str(b, &g, "start", iso);
            ms_kv_num(b, &g, "cases", e->has_cases ? (double)e->cases : NAN);
            ms_kv_num(b, &g, "passed", e->has_cases ? (double)e->passed : NAN);
            ms_kv_num(b, &g, "pass_rate", e->pass_rate);
            ms_kv_str(b, &g, "status", str(v, e->status));
            ms_buf_addc(b, '}');
        }
        ms_buf_adds(b, "]}");
    }
    ms_buf_adds(b, "]\n");
}

static void text_view(const runs_view *v, ms_buf *b)
{
    char iso[40], cell[48];
    ms_buf_printf(b, "moonspan runs: %zu run%s, newest first\n\n", v->n, v->n == 1 ? "" : "s");
    int w = 6;
    for (size_t i = 0; i < v->n; i++) {
        int l = ms_fmt_text_cols(str(v, v->rows[i].script));
        if (l > w)
            w = l;
    }
    if (w > 40)
        w = 40;
    ms_buf_printf(b, "%6s  %-7s  ", "id", "command");
    ms_fmt_padded(b, "script", w);
    ms_buf_printf(b, "  %-20s  %10s  %7s  %6s  %11s  %10s\n", "start", "duration", "traces", "errors",
                  "interrupted", "incomplete");
    int unended = 0;
    for (size_t i = 0; i < v->n; i++) {
        const run_row *r = &v->rows[i];
        ms_buf_printf(b, "%6lld  %-7s  ", (long long)r->id, command(v, r));
        ms_fmt_padded_tail(b, str(v, r->script), w);
        ms_iso_utc(r->start_ns, iso, sizeof iso);
        ms_buf_printf(b, "  %-20s  ", iso);
        unended += !r->has_end;
        ms_fmt_right(b, r->has_end ? ms_fmt_ms(cell, sizeof cell, (double)(r->end_ns - r->start_ns) / MS_NS_PER_MS)
                                   : "-", 10);
        ms_buf_printf(b, "  %7lld  %6lld  %11lld  %10lld\n", (long long)r->traces, (long long)r->errors,
                      (long long)r->interrupted, (long long)r->incomplete);
        for (size_t k = 0; k < r->nev; k++) {
            const eval_row *e = &v->evs[r->ev0 + k];
            ms_buf_printf(b, "%6s  eval run %lld  ", "", (long long)e->id);
            ms_fmt_text(b, str(v, e->suite), "?");
            if (e->has_cases)
                ms_buf_printf(b, "  %lld case%s, %lld passed (%.1f%%)", (long long)e->cases,
                              e->cases == 1 ? "" : "s", (long long)e->passed,
                              isnan(e->pass_rate) ? 0.0 : 100 * e->pass_rate);
            ms_buf_adds(b, "  ");
            ms_fmt_text(b, str(v, e->status), "?");
            ms_buf_addc(b, '\n');
        }
    }
    if (unended)
        ms_buf_adds(b, "\nduration -: still running, or ended without writing its summary"
                       " (killed, or the store was not writable)\n");
}

int ms_runs_write(sqlite3 *db, const ms_runs_opts *o, FILE *out, char *err, size_t errlen)
{
    assert(db && o && out);
    runs_view v;
    memset(&v, 0, sizeof v);
    size_t *order = NULL;
    ms_buf b = {0};
    int own = 0, ret = -1;
    if (ms_read_begin(db, &own, err, errlen))
        goto done;
    int rc = read_runs(db, o, &v, err, errlen);
    if (rc == 0 && v.n) {
        order = malloc(v.n * sizeof *order);
        if (!order) {
            rc = ms_errf(err, errlen, "out of memory reading runs");
        } else {
            for (size_t i = 0; i < v.n; i++)
                order[i] = i;
            qsort_r(order, v.n, sizeof *order, cmp_by_id, v.rows);
            rc = read_counts(db, &v, order, err, errlen);
            if (rc == 0)
                rc = read_evals(db, &v, order, err, errlen);
        }
    }
    if (ms_read_end(db, own, rc == 0 ? err : NULL, errlen) || rc)
        goto done;
    if (o->json)
        json_view(&v, &b);
    else if (!v.n)
        ms_buf_adds(&b, o->since_ns ? "no runs in this window (widen --since)\n"
                                    : "no runs recorded yet (run a script with `moonspan run`)\n");
    else
        text_view(&v, &b);
    ret = ms_buf_write(&b, out, err, errlen);
done:
    free(order);
    ms_buf_free(&b);
    view_free(&v);
    return ret;
}
