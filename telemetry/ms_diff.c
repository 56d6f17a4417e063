/* ms_diff — `moonspan diff A B` (see ms_diff.h): both sides read in one
 * snapshot (ms_diff_read.c), then compared row by row here, requests by
 * name and steps by path, with the intervals of ms_stats; ms_diff_out.c
 * writes the result. */
#include "ms_diff.h"

#include "ms_diff_data.h"
#include "ms_fmt.h"
#include "ms_percentile.h"
#include "ms_read.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A folded step's repetitions are a histogram, not values: the bootstrap
 * gets at most this many values spread evenly over it, so memory and
 * time stay bounded whatever the fold counts. */
#define FOLD_VALUES_MAX 100000

/* a / b, or NaN ("-", null) when there is nothing to divide by */
static double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

/* --- comparisons ----------------------------------------------------------- */

/* The verdict of difference d of a statistic whose value on side A is
 * `base`: a direction when the interval excludes 0, unless the change is
 * under min_change of |base| (then negligible). */
static enum diff_verdict verdict_of(ms_ci d, double base, double min_change)
{
    enum ms_direction dir = ms_ci_direction(d);
    if (dir == MS_NO_EVIDENCE)
        return V_NONE;
    if (!isnan(base) && fabs(d.est) < min_change * fabs(base))
        return V_SMALL;
    return dir == MS_UP ? V_WORSE : V_BETTER;
}

/* Quantile q of two samples (reordered) and the bootstrap interval of
 * their difference, all times `scale`. Returns 0 or -1 (OOM). */
static int cmp_quantile(double *a, size_t na, double *b, size_t nb, double q, double scale,
                        const ms_diff_opts *o, diff_cmp *c)
{
    memset(c, 0, sizeof *c);
    c->ca = (int64_t)na;
    c->cb = (int64_t)nb;
    c->p = NAN;
    c->a = c->b = NAN;
    c->d = (ms_ci){NAN, NAN, NAN};
    if (na && ms_percentiles(a, na, &q, 1, &c->a))
        return -1;
    if (nb && ms_percentiles(b, nb, &q, 1, &c->b))
        return -1;
    /* whole ns first, as the report rounds step percentiles */
    c->a = round(c->a) * scale;
    c->b = round(c->b) * scale;
    if (na < MS_DIFF_MIN_N || nb < MS_DIFF_MIN_N) {
        c->v = V_FEW;
        c->d.est = c->b - c->a;
        return 0;
    }
    ms_ci ci;
    if (ms_boot_quantile_diff(a, na, b, nb, q, o->resamples, MS_STATS_LEVEL, o->seed, &ci))
        return -1;
    c->d = (ms_ci){ci.est * scale, ci.lo * scale, ci.hi * scale};
    c->v = verdict_of(c->d, c->a, o->min_change);
    return 0;
}

static int constant(const double *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[0])
            return 0;
    return 1;
}

/* The means of two samples and the bootstrap interval of their
 * difference. Returns 0 or -1 (OOM). */
static int cmp_mean(const double *a, size_t na, const double *b, size_t nb,
                    const ms_diff_opts *o, diff_cmp *c)
{
    memset(c, 0, sizeof *c);
    c->ca = (int64_t)na;
    c->cb = (int64_t)nb;
    c->p = NAN;
    double sa = 0, sb = 0;
    for (size_t i = 0; i < na; i++)
        sa += a[i];
    for (size_t i = 0; i < nb; i++)
        sb += b[i];
    c->a = na ? sa / (double)na : NAN;
    c->b = nb ? sb / (double)nb : NAN;
    c->d = (ms_ci){c->b - c->a, NAN, NAN};
    if (na < MS_DIFF_MIN_N || nb < MS_DIFF_MIN_N) {
        c->v = V_FEW;
        return 0;
    }
    if (constant(a, na) && constant(b, nb)) {
        /* every resample's mean is the mean: the interval is the point
         * (tokens of requests that make no LLM call), found without
         * resampling */
        c->d.lo = c->d.hi = c->d.est;
        c->v = verdict_of(c->d, c->a, o->min_change);
        return 0;
    }
    if (ms_boot_mean_diff(a, na, b, nb, o->resamples, MS_STATS_LEVEL, o->seed, &c->d))
        return -1;
    c->v = verdict_of(c->d, c->a, o->min_change);
    return 0;
}

/* k of n against k of n: Newcombe's interval of the difference, Fisher's
 * exact p. */
static void cmp_rate(int64_t ka, int64_t na, int64_t kb, int64_t nb, diff_cmp *c)
{
    memset(c, 0, sizeof *c);
    c->ka = ka, c->na = na, c->kb = kb, c->nb = nb;
    c->ca = na, c->cb = nb;
    c->a = ratio((double)ka, (double)na);
    c->b = ratio((double)kb, (double)nb);
    c->p = NAN;
    c->d = (ms_ci){c->b - c->a, NAN, NAN};
    if (na < MS_DIFF_MIN_N || nb < MS_DIFF_MIN_N) {
        c->v = V_FEW;
        return;
    }
    c->d = ms_prop_diff(ka, na, kb, nb, MS_STATS_LEVEL);
    c->p = ms_fisher_exact(ka, na, kb, nb);
    c->v = verdict_of(c->d, NAN, 0); /* every real change of a rate counts */
}

/* One verdict of two measures: worse when either is, better when either
 * is and neither is worse, too few or negligible when both are. */
static enum diff_verdict combine(enum diff_verdict x, enum diff_verdict y)
{
    if (x == V_WORSE || y == V_WORSE)
        return V_WORSE;
    if (x == V_BETTER || y == V_BETTER)
        return V_BETTER;
    return x == y ? x : V_NONE;
}

static int compare_reqs(diff_req_row *row, const ms_diff_opts *o)
{
    diff_reqs *a = (diff_reqs *)row->r[0], *b = (diff_reqs *)row->r[1];
    if (cmp_quantile(a->dur.v, a->dur.n, b->dur.v, b->dur.n, 50, 1 / MS_NS_PER_MS, o, &row->p50) ||
        cmp_quantile(a->dur.v, a->dur.n, b->dur.v, b->dur.n, 95, 1 / MS_NS_PER_MS, o, &row->p95) ||
        cmp_mean(a->tokens.v, a->tokens.n, b->tokens.v, b->tokens.n, o, &row->tokens) ||
        cmp_mean(a->cost.v, a->cost.n, b->cost.v, b->cost.n, o, &row->cost))
        return -1;
    cmp_rate(a->errors, a->completed, b->errors, b->completed, &row->err_rate);
    cmp_rate(a->llm_failed, a->llm_calls, b->llm_failed, b->llm_calls, &row->llm_rate);
    row->time = combine(row->p50.v, row->p95.v);
    row->money = combine(row->tokens.v, row->cost.v);
    row->errors = combine(row->err_rate.v, row->llm_rate.v);
    return 0;
}

/* none: the group of traces given no user or session (name NULL). */
static int add_req_row(diff *d, const char *name, int none, const diff_reqs *a, const diff_reqs *b,
                       const ms_diff_opts *o)
{
    if (ms_grow((void **)&d->reqs, &d->cap_reqs, d->nreqs, sizeof *d->reqs))
        return -1;
    diff_req_row *row = &d->reqs[d->nreqs++];
    memset(row, 0, sizeof *row);
    row->none = none;
    row->name = name;
    row->r[0] = a;
    row->r[1] = b;
    return compare_reqs(row, o);
}

/* A name both sides have: its row index on each. */
typedef struct name_pair {
    const char *name;           /* NULL for the group without a user or session */
    size_t a, b;
} name_pair;

/* By name; the group without a user or session last. */
static int cmp_pairs(const void *x, const void *y)
{
    const char *a = ((const name_pair *)x)->name, *b = ((const name_pair *)y)->name;
    if (!a || !b)
        return !a - !b;
    return strcmp(a, b);
}

/* All requests; then, when a side holds more than one kind of request
 * (or always, grouped by user or session: they were asked for), each
 * group both sides have with at least MS_DIFF_MIN_N completed requests,
 * by name (an eval names each case's trace after the case: a row of "too
 * few" per case would bury the rest; d->names_few counts them). Groups
 * are few (kinds of request, users), so finding them on the other side is
 * a scan. */
static int request_rows(diff *d, const ms_diff_opts *o)
{
    diff_side *a = &d->side[0], *b = &d->side[1];
    if (add_req_row(d, NULL, 0, &a->all, &b->all, o))
        return -1;
    if (a->names.n <= 1 && b->names.n <= 1 && o->rows_by == MS_DIFF_ROWS_NAME)
        return 0;
    name_pair *pairs = malloc((a->names.n ? a->names.n : 1) * sizeof *pairs);
    if (!pairs)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < a->names.n; i++) {
        const ms_strmap_ent *e = &a->names.ent[i];
        for (size_t j = 0; j < b->names.n; j++) {
            const ms_strmap_ent *f = &b->names.ent[j];
            if (f->klen == e->klen && memcmp(f->key, e->key, e->klen) == 0) {
                int none = o->rows_by != MS_DIFF_ROWS_NAME && e->klen == DIFF_NO_GROUP_LEN &&
                           memcmp(e->key, DIFF_NO_GROUP, DIFF_NO_GROUP_LEN) == 0;
                if (a->by_name[i].completed >= MS_DIFF_MIN_N && b->by_name[j].completed >= MS_DIFF_MIN_N)
                    pairs[n++] = (name_pair){none ? NULL : e->key, i, j};
                else
                    d->names_few++;
                break;
            }
        }
    }
    qsort(pairs, n, sizeof *pairs, cmp_pairs);
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++)
        ret = add_req_row(d, pairs[i].name, !pairs[i].name, &a->by_name[pairs[i].a],
                          &b->by_name[pairs[i].b], o);
    free(pairs);
    return ret;
}

/* The values of a step for the bootstrap: its exact values, or, for a
 * step with folds, up to FOLD_VALUES_MAX values laid evenly over its
 * histogram (bucket midpoints, clamped to its exact extremes). `tmp`
 * holds the latter. NULL and *n 0 for no step. */
static double *step_values(const ms_step *s, diff_vals *tmp, size_t *n)
{
    *n = 0;
    if (!s)
        return NULL;
    if (!s->approximate) {
        *n = s->total.n;
        return s->total.v;
    }
    const ms_hist *h = &s->total.hist;
    uint64_t total = ms_hist_total(h);
    uint64_t m = total < FOLD_VALUES_MAX ? total : FOLD_VALUES_MAX;
    tmp->n = 0;
    uint64_t cum = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        uint64_t c = h->counts[i];
        if (!c)
            continue;
        /* copies of this bucket: its share of m, rounded so they add up */
        uint64_t from = (uint64_t)((double)cum * (double)m / (double)total);
        cum += c;
        uint64_t to = (uint64_t)((double)cum * (double)m / (double)total);
        double v = (double)ms_hist_bucket_mid(h->lo + i);
        v = v < s->total.min ? s->total.min : v > s->total.max ? s->total.max : v;
        for (uint64_t k = from; k < to; k++)
            if (ms_diff_vals_add(tmp, v))
                return NULL;
    }
    *n = tmp->n;
    return tmp->v;
}

/* The key pairing a step across sides: its names from the request down,
 * each ended by a NUL (a name may hold '/', so the label will not do). */
static void key_name(void *ud, const char *name)
{
    ms_buf *k = ud;
    ms_buf_adds(k, name);
    ms_buf_addc(k, 0);
}

static int step_row_of(diff *d, ms_strmap *keys, const ms_steps *st, const ms_step *s, ms_buf *k)
{
    ms_buf_reset(k);
    ms_buf_addc(k, 1); /* never empty */
    ms_steps_path_each(st, s, key_name, k);
    if (k->oom)
        return -1;
    int created;
    long i = ms_strmap_get(keys, k->data, k->len, &created);
    if (i < 0)
        return -1;
    if (created) {
        if (ms_grow((void **)&d->steps, &d->cap_steps, d->nsteps, sizeof *d->steps))
            return -1;
        memset(&d->steps[d->nsteps++], 0, sizeof *d->steps);
    }
    return (int)i;
}

/* 0 for a step with evidence of worse (slower or costlier), 1 of
 * better, 2 for none. */
static int evidence(const diff_step_row *s)
{
    if (s->time == V_WORSE || s->money == V_WORSE)
        return 0;
    return s->time == V_BETTER || s->money == V_BETTER ? 1 : 2;
}

/* Steps with evidence first (worse, then better), then by how much
 * their p95 moved, the largest first; ties by label. */
static int cmp_step_rows(const void *x, const void *y)
{
    const diff_step_row *a = x, *b = y;
    int ea = evidence(a), eb = evidence(b);
    if (ea != eb)
        return ea - eb;
    if (a->size != b->size)
        return a->size < b->size ? 1 : -1;
    const ms_step *sa = a->s[0] ? a->s[0] : a->s[1], *sb = b->s[0] ? b->s[0] : b->s[1];
    return strcmp(sa->label, sb->label);
}

static int step_rows(diff *d, const ms_diff_opts *o)
{
    ms_strmap keys = {0};
    ms_buf k = {0};
    diff_vals ta = {0}, tb = {0};
    int ret = -1;
    for (int side = 0; side < 2; side++) {
        const ms_steps *st = &d->side[side].steps;
        for (size_t i = 0; i < st->nsteps; i++) {
            int r = step_row_of(d, &keys, st, &st->steps[i], &k);
            if (r < 0)
                goto done;
            d->steps[r].s[side] = &st->steps[i];
            if (!d->steps[r].of)
                d->steps[r].of = st;
        }
    }
    for (size_t i = 0; i < d->nsteps; i++) {
        diff_step_row *row = &d->steps[i];
        size_t na, nb;
        double *a = step_values(row->s[0], &ta, &na), *b = step_values(row->s[1], &tb, &nb);
        if ((row->s[0] && !a && na) || (row->s[1] && !b && nb))
            goto done;
        row->approximate = (row->s[0] && row->s[0]->approximate) || (row->s[1] && row->s[1]->approximate);
        if (cmp_quantile(a, na, b, nb, 50, 1 / MS_NS_PER_MS, o, &row->p50) ||
            cmp_quantile(a, na, b, nb, 95, 1 / MS_NS_PER_MS, o, &row->p95))
            goto done;
        /* counted in repetitions, not in the values a fold was spread to */
        row->p50.ca = row->p95.ca = row->s[0] ? (int64_t)row->s[0]->total.count : 0;
        row->p50.cb = row->p95.cb = row->s[1] ? (int64_t)row->s[1]->total.count : 0;
        row->time = combine(row->p50.v, row->p95.v);
        const ms_step *sa = row->s[0], *sb = row->s[1];
        row->has_llm = (sa && sa->llm.calls) || (sb && sb->llm.calls);
        if (row->has_llm) {
            if (cmp_mean(sa ? sa->tokens.v : NULL, sa ? sa->tokens.n : 0, sb ? sb->tokens.v : NULL,
                         sb ? sb->tokens.n : 0, o, &row->tokens) ||
                cmp_mean(sa ? sa->cost.v : NULL, sa ? sa->cost.n : 0, sb ? sb->cost.v : NULL,
                         sb ? sb->cost.n : 0, o, &row->cost))
                goto done;
            row->money = combine(row->tokens.v, row->cost.v);
        }
        double moved = fabs(row->p95.d.est);
        row->size = isnan(moved) ? (isnan(row->p95.a) ? row->p95.b : row->p95.a) : moved;
        if (isnan(row->size))
            row->size = 0;
    }
    if (d->nsteps)
        qsort(d->steps, d->nsteps, sizeof *d->steps, cmp_step_rows);
    ret = 0;
done:
    free(ta.v);
    free(tb.v);
    ms_buf_free(&k);
    ms_strmap_free(&keys);
    return ret;
}

/* --- verdicts against --fail-if ---------------------------------------------- */

int ms_diff_req_fails(const diff_req_row *r, int fail_if)
{
    return ((fail_if & MS_DIFF_FAIL_SLOWER) && r->time == V_WORSE ? MS_DIFF_FAIL_SLOWER : 0) |
           ((fail_if & MS_DIFF_FAIL_COSTLIER) && r->money == V_WORSE ? MS_DIFF_FAIL_COSTLIER : 0) |
           ((fail_if & MS_DIFF_FAIL_ERRORS) && r->errors == V_WORSE ? MS_DIFF_FAIL_ERRORS : 0);
}

int ms_diff_step_fails(const diff_step_row *s, int fail_if)
{
    return ((fail_if & MS_DIFF_FAIL_SLOWER) && s->time == V_WORSE ? MS_DIFF_FAIL_SLOWER : 0) |
           ((fail_if & MS_DIFF_FAIL_COSTLIER) && s->money == V_WORSE ? MS_DIFF_FAIL_COSTLIER : 0);
}

/* --- the entry point --------------------------------------------------------- */

static void diff_free(diff *d)
{
    ms_diff_side_free(&d->side[0]);
    ms_diff_side_free(&d->side[1]);
    free(d->reqs);
    free(d->steps);
}

/* Both sides read, checked for emptiness and compared. Returns 0,
 * MS_DIFF_ERROR or MS_DIFF_BAD_SIDE. */
static int build(sqlite3 *db, const ms_diff_opts *o, diff *d, char *err, size_t errlen)
{
    static const char *const which[2] = {"A", "B"};
    char why[512];
    int rc = ms_select_check(db, &o->narrow, why, sizeof why);
    if (rc) {
        ms_errf(err, errlen, "%s", why);
        return rc < 0 ? MS_DIFF_ERROR : MS_DIFF_BAD_SIDE;
    }
    for (int i = 0; i < 2; i++) {
        rc = ms_diff_side_select(db, &o->side[i], which[i], &o->narrow, &d->side[i].sel, err, errlen);
        if (rc)
            return rc;
        ms_select_describe(&d->side[i].sel, &d->side[i].desc);
        if (d->side[i].desc.oom)
            return ms_errf(err, errlen, "out of memory");
        if (ms_select_evals_left_out(db, &d->side[i].sel, NULL, &d->side[i].evals_left_out, err,
                                     errlen))
            return MS_DIFF_ERROR;
    }
    for (int i = 0; i < 2; i++) {
        if (ms_diff_read_side(db, &d->side[i], o->steps_by_name, o->rows_by, err, errlen))
            return MS_DIFF_ERROR;
        if (d->side[i].all.requests == 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "side %s '%s' has no traces (%s)", which[i],
                     o->side[i].arg, d->side[i].desc.data ? d->side[i].desc.data : "");
            if (d->side[i].evals_left_out)
                ms_errf(err, errlen, "%s but %lld eval traces, left out by default; add --evals"
                        " include or only", msg, (long long)d->side[i].evals_left_out);
            else
                ms_errf(err, errlen, "%s; check it with `moonspan traces` and the same filters,"
                        " or widen it", msg);
            return MS_DIFF_BAD_SIDE;
        }
    }
    if (request_rows(d, o) || step_rows(d, o))
        return ms_errf(err, errlen, "out of memory comparing the sides");
    for (size_t i = 0; i < d->nreqs; i++)
        d->failed |= ms_diff_req_fails(&d->reqs[i], o->fail_if) != 0;
    for (size_t i = 0; i < d->nsteps; i++)
        d->failed |= ms_diff_step_fails(&d->steps[i], o->fail_if) != 0;
    return 0;
}

int ms_diff_write(sqlite3 *db, const ms_diff_opts *o, FILE *out, int *failed,
                  char *err, size_t errlen)
{
    assert(db && o && out && failed);
    *failed = 0;
    diff d;
    memset(&d, 0, sizeof d);
    ms_buf b = {0};
    int own = 0;
    int ret = ms_read_begin(db, &own, err, errlen) ? MS_DIFF_ERROR : 0;
    if (ret == 0)
        ret = build(db, o, &d, err, errlen);
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = MS_DIFF_ERROR;
    if (ret == 0) {
        if (o->json)
            ms_diff_json(&d, o, &b);
        else
            ms_diff_text(&d, o, &b);
        ret = ms_buf_write(&b, out, err, errlen) ? MS_DIFF_ERROR : 0;
        *failed = ret == 0 && d.failed;
    }
    ms_buf_free(&b);
    diff_free(&d);
    return ret;
}
