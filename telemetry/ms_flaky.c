/* ms_flaky — the flake ledger (see ms_flaky.h): the window's runs, then
 * every result of them grouped by case, counted before and in the latest
 * run, sorted and written. */
#include "ms_flaky.h"

#include "ms_fmt.h"
#include "ms_read.h"
#include "ms_stats.h"

#include <stdlib.h>
#include <string.h>

#define FINISHED "status IN ('passed', 'failed')"

typedef struct fcase {
    size_t id;                  /* arena offset */
    int64_t attempts, passes;
    int64_t before_attempts, before_passes; /* in the window's runs before the latest */
    double flakiness;           /* min(passes, failures) / attempts */
    int flaky, newly;
    ms_ci rate;                 /* failure rate, Wilson */
} fcase;

typedef struct ledger {
    ms_buf arena;
    int64_t *runs;              /* oldest first */
    size_t nruns, capruns;
    fcase *cases;
    size_t ncases, capcases;
} ledger;

static void ledger_free(ledger *l)
{
    ms_buf_free(&l->arena);
    free(l->runs);
    free(l->cases);
}

/* "no eval run of suite X; ..." with the suites the store knows. */
static int unknown_suite(sqlite3 *db, const char *suite, int has_tables, char *err, size_t errlen)
{
    ms_buf known = {0};
    sqlite3_stmt *st = NULL;
    int n = 0, unfinished = 0;
    if (has_tables) {
        if (ms_read_prepare(db, "SELECT DISTINCT suite FROM eval_runs ORDER BY suite LIMIT 22", &st, err, errlen))
            return -1;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            if (name && strcmp(name, suite) == 0) {
                unfinished = 1;
                continue;
            }
            if (n++ == 20) {
                ms_buf_adds(&known, ", ...");
                break;
            }
            if (n > 1)
                ms_buf_adds(&known, ", ");
            ms_fmt_text(&known, name, "?");
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            ms_buf_free(&known);
            return ms_errf(err, errlen, "cannot read eval runs: %s", sqlite3_errmsg(db));
        }
    }
    ms_buf name = {0};
    ms_fmt_text(&name, suite, "");
    if (unfinished)
        ms_errf(err, errlen, "suite \"%s\" has no finished eval run yet (one still running, or cut short"
                " before it ended); run `moonspan eval` on it to the end first",
                name.data ? name.data : "");
    else if (n > 0)
        ms_errf(err, errlen, "no eval run of suite \"%s\" in this store; the suites it has: %s",
                name.data ? name.data : "", known.data ? known.data : "");
    else
        ms_errf(err, errlen, "no eval run of suite \"%s\": this store has no eval runs; run `moonspan eval"
                " SUITE.lua` first (or pass the store with --db)", name.data ? name.data : "");
    ms_buf_free(&name);
    ms_buf_free(&known);
    return 1;
}

/* The window's run ids, oldest first. 0, or -1 with err. */
static int load_runs(sqlite3 *db, const ms_flaky_opts *o, ledger *l, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT id FROM (SELECT id, start_ns FROM eval_runs WHERE suite = ?1 AND " FINISHED
                            " ORDER BY start_ns DESC, id DESC LIMIT ?2) ORDER BY start_ns, id",
                        &st, err, errlen))
        return -1;
    int ret = -1, rc;
    if (sqlite3_bind_text(st, 1, o->suite, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int(st, 2, o->runs) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the suite: %s", sqlite3_errmsg(db));
        goto done;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)&l->runs, &l->capruns, l->nruns, sizeof *l->runs)) {
            ms_errf(err, errlen, "out of memory reading eval runs");
            goto done;
        }
        l->runs[l->nruns++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read eval runs: %s", sqlite3_errmsg(db));
        goto done;
    }
    ret = 0;
done:
    sqlite3_finalize(st);
    return ret;
}

/* Every result of the window's runs, counted per case. 0 or -1 with err. */
static int load_cases(sqlite3 *db, ledger *l, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT case_id, eval_run, pass FROM eval_results WHERE eval_run >= ?1 AND"
                            " eval_run IN (SELECT value FROM json_each(?2)) ORDER BY case_id",
                        &st, err, errlen))
        return -1;
    ms_buf ids = {0};
    ms_buf_addc(&ids, '[');
    int64_t min = l->runs[0];
    for (size_t i = 0; i < l->nruns; i++) {
        ms_buf_printf(&ids, "%s%lld", i ? "," : "", (long long)l->runs[i]);
        if (l->runs[i] < min)
            min = l->runs[i];
    }
    ms_buf_addc(&ids, ']');
    int ret = -1, rc;
    int64_t latest = l->runs[l->nruns - 1];
    if (ids.oom) {
        ms_errf(err, errlen, "out of memory reading eval results");
        goto done;
    }
    if (sqlite3_bind_int64(st, 1, min) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, ids.data, (int)ids.len, SQLITE_TRANSIENT) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the runs: %s", sqlite3_errmsg(db));
        goto done;
    }
    const char *prev = NULL;
    size_t prev_len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (!id)
            continue;
        if (!prev || len != prev_len || memcmp(prev, id, len) != 0) {
            if (ms_grow((void **)&l->cases, &l->capcases, l->ncases, sizeof *l->cases)) {
                ms_errf(err, errlen, "out of memory reading eval results");
                goto done;
            }
            memset(&l->cases[l->ncases], 0, sizeof *l->cases);
            l->cases[l->ncases++].id = ms_arena_put(&l->arena, id, len);
            if (l->arena.oom) {
                ms_errf(err, errlen, "out of memory reading eval results");
                goto done;
            }
            prev = ms_arena_str(&l->arena, l->cases[l->ncases - 1].id);
            prev_len = len;
        }
        fcase *c = &l->cases[l->ncases - 1];
        int pass = sqlite3_column_int(st, 2) != 0;
        c->attempts++;
        c->passes += pass;
        if (sqlite3_column_int64(st, 1) != latest) {
            c->before_attempts++;
            c->before_passes += pass;
        }
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read eval results: %s", sqlite3_errmsg(db));
        goto done;
    }
    ret = 0;
done:
    ms_buf_free(&ids);
    sqlite3_finalize(st);
    return ret;
}

/* Sort records carry their keys: qsort passes no context. */
typedef struct case_key {
    double flakiness;
    int64_t failures;
    const char *id;
    size_t ix;
} case_key;

static int cmp_cases(const void *a, const void *b)
{
    const case_key *x = a, *y = b;
    if (x->flakiness != y->flakiness)
        return x->flakiness > y->flakiness ? -1 : 1;
    if (x->failures != y->failures)
        return x->failures > y->failures ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void pct(char *out, size_t n, double x)
{
    snprintf(out, n, "%.1f%%", x * 100);
}

static void write_text(const ms_flaky_opts *o, const ledger *l, const size_t *order, ms_buf *b,
                       int64_t counts[4])
{
    ms_buf_adds(b, "suite ");
    ms_fmt_text(b, o->suite, "");
    ms_buf_printf(b, ": %zu case%s over the last %zu finished run%s (eval run%s", l->ncases,
                  l->ncases == 1 ? "" : "s", l->nruns, l->nruns == 1 ? "" : "s", l->nruns == 1 ? "" : "s");
    for (size_t i = 0; i < l->nruns; i++)
        ms_buf_printf(b, "%s %lld", i ? "," : "", (long long)l->runs[i]);
    ms_buf_adds(b, ")\n");
    int w = 4;
    for (size_t i = 0; i < l->ncases; i++) {
        int cols = ms_fmt_text_cols(ms_arena_str(&l->arena, l->cases[i].id));
        if (cols > w)
            w = cols;
    }
    if (w > 40)
        w = 40;
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, "case", w);
    ms_buf_adds(b, "  attempts  passes  failure rate  95% interval (Wilson)\n");
    char x[32], lo[32], hi[32];
    for (size_t k = 0; k < l->ncases; k++) {
        const fcase *c = &l->cases[order[k]];
        ms_buf_adds(b, "  ");
        ms_fmt_padded(b, ms_arena_str(&l->arena, c->id), w);
        pct(x, sizeof x, c->rate.est);
        pct(lo, sizeof lo, c->rate.lo);
        pct(hi, sizeof hi, c->rate.hi);
        ms_buf_printf(b, "  %8lld  %6lld  %12s  [%s, %s]", (long long)c->attempts, (long long)c->passes, x, lo,
                      hi);
        if (c->flaky)
            ms_buf_adds(b, c->newly ? "  flaky (new)" : "  flaky");
        ms_buf_addc(b, '\n');
    }
    ms_buf_printf(b, "%lld flaky (%lld new), %lld always failing, %lld always passing\n", (long long)counts[0],
                  (long long)counts[1], (long long)counts[2], (long long)counts[3]);
}

static void write_json(const ms_flaky_opts *o, const ledger *l, const size_t *order, ms_buf *b,
                       int64_t counts[4])
{
    int f = 1;
    ms_buf_addc(b, '{');
    ms_kv_str(b, &f, "suite", o->suite);
    ms_json_key(b, &f, "runs");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < l->nruns; i++)
        ms_buf_printf(b, "%s%lld", i ? "," : "", (long long)l->runs[i]);
    ms_buf_addc(b, ']');
    ms_kv_num(b, &f, "level", MS_STATS_LEVEL);
    ms_json_key(b, &f, "cases");
    ms_buf_addc(b, '[');
    for (size_t k = 0; k < l->ncases; k++) {
        const fcase *c = &l->cases[order[k]];
        int g = 1;
        if (k)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "case_id", ms_arena_str(&l->arena, c->id));
        ms_kv_int(b, &g, "attempts", c->attempts);
        ms_kv_int(b, &g, "passes", c->passes);
        ms_kv_int(b, &g, "failures", c->attempts - c->passes);
        ms_kv_num(b, &g, "failure_rate", c->rate.est);
        ms_kv_num(b, &g, "failure_rate_lo", c->rate.lo);
        ms_kv_num(b, &g, "failure_rate_hi", c->rate.hi);
        ms_kv_raw(b, &g, "flaky", c->flaky ? "true" : "false");
        ms_kv_raw(b, &g, "newly_flaky", c->newly ? "true" : "false");
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    ms_kv_int(b, &f, "flaky", counts[0]);
    ms_kv_int(b, &f, "newly_flaky", counts[1]);
    ms_kv_int(b, &f, "always_failing", counts[2]);
    ms_kv_int(b, &f, "always_passing", counts[3]);
    ms_buf_adds(b, "}\n");
}

/* See ms_flaky.h. */
int ms_flaky_write(sqlite3 *db, const ms_flaky_opts *o, FILE *out, char *err, size_t errlen)
{
    ledger l = {0};
    ms_buf b = {0};
    case_key *keys = NULL;
    size_t *order = NULL;
    int own = 0, ret = -1;
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    int tables = ms_schema_has(db, "eval_runs", NULL, err, errlen);
    if (tables < 0)
        goto done;
    if (tables) {
        if (load_runs(db, o, &l, err, errlen))
            goto done;
    }
    if (l.nruns == 0) {
        ret = unknown_suite(db, o->suite, tables, err, errlen);
        goto done;
    }
    if (load_cases(db, &l, err, errlen))
        goto done;
    keys = malloc((l.ncases ? l.ncases : 1) * sizeof *keys);
    order = malloc((l.ncases ? l.ncases : 1) * sizeof *order);
    if (!keys || !order) {
        ms_errf(err, errlen, "out of memory");
        goto done;
    }
    int64_t counts[4] = {0}; /* flaky, newly flaky, always failing, always passing */
    for (size_t i = 0; i < l.ncases; i++) {
        fcase *c = &l.cases[i];
        int64_t fails = c->attempts - c->passes, before_fails = c->before_attempts - c->before_passes;
        c->flaky = c->passes > 0 && fails > 0;
        c->newly = c->flaky && !(c->before_passes > 0 && before_fails > 0);
        c->flakiness = (double)(c->passes < fails ? c->passes : fails) / (double)c->attempts;
        c->rate = ms_wilson(fails, c->attempts, MS_STATS_LEVEL);
        counts[0] += c->flaky;
        counts[1] += c->newly;
        counts[2] += c->passes == 0;
        counts[3] += fails == 0;
        keys[i] = (case_key){c->flakiness, fails, ms_arena_str(&l.arena, c->id), i};
    }
    qsort(keys, l.ncases, sizeof *keys, cmp_cases);
    for (size_t i = 0; i < l.ncases; i++)
        order[i] = keys[i].ix;
    if (o->json)
        write_json(o, &l, order, &b, counts);
    else
        write_text(o, &l, order, &b, counts);
    ret = 0;
done:
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0)
        ret = ms_buf_write(&b, out, err, errlen);
    ms_buf_free(&b);
    free(keys);
    free(order);
    ledger_free(&l);
    return ret;
}
