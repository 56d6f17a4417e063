/* ms_diff_out — `moonspan diff` written out: aligned text for people, or
 * the one JSON object `diff --json` promises (README: "moonspan diff").
 * Durations in ms, missing values "-" / null, never 0; store text (trace
 * and span names) escaped through ms_fmt. */
#include "ms_diff_data.h"

#include "ms_fmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum measure { M_TIME, M_MONEY, M_ERRORS };

static const char *verdict_word(enum diff_verdict v, enum measure m)
{
    static const char *const worse[] = {"slower", "costlier", "more errors"};
    static const char *const better[] = {"faster", "cheaper", "fewer errors"};
    switch (v) {
    case V_WORSE: return worse[m];
    case V_BETTER: return better[m];
    case V_FEW: return "too few";
    case V_SMALL: return "negligible";
    default: return "no evidence";
    }
}

/* How many steps to list. */
static size_t steps_listed(const diff *d, const ms_diff_opts *o)
{
    long max = o->max_steps;
    if (max == 0)
        max = o->json ? -1 : MS_DIFF_TEXT_STEPS;
    return max < 0 || (size_t)max >= d->nsteps ? d->nsteps : (size_t)max;
}

static const char *step_label(const diff_step_row *s)
{
    return s->s[0] ? s->s[0]->label : s->s[1]->label;
}

static int64_t steps_from(const diff_reqs *r)
{
    return r->requests - r->sampled_out;
}

/* --- text ------------------------------------------------------------------ */

enum unit { U_MS, U_COUNT, U_USD, U_RATE };

/* A value for people in its unit; signed for differences. */
static void fmt_value(char *out, size_t n, double v, enum unit u, int sign)
{
    if (isnan(v)) {
        snprintf(out, n, "-");
        return;
    }
    const char *s = !sign ? "" : v < 0 ? "-" : "+";
    double a = sign ? fabs(v) : v;
    char tmp[64];
    switch (u) {
    case U_MS:
        snprintf(out, n, "%s%s", s, ms_fmt_ms(tmp, sizeof tmp, a));
        break;
    case U_COUNT:
        snprintf(out, n, "%s%.1f", s, a);
        break;
    case U_USD:
        snprintf(out, n, "%s%s", s, ms_fmt_usd(tmp, sizeof tmp, a));
        break;
    case U_RATE:
        snprintf(out, n, "%s%.1f%s", s, a * 100, sign ? " pts" : "%");
        break;
    }
}

/* A signed number with three significant digits, no exponent. */
static void fmt_signed(char *out, size_t n, double v)
{
    double a = fabs(v);
    int dec = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    snprintf(out, n, "%s%.*f", v < 0 ? "-" : "+", dec, a);
}

/* A difference of milliseconds with its interval, in one unit chosen by
 * the largest of them: "+5.94 [+5.88, +5.99] ms", "+19.2 [+10.3, +35.3] µs". */
static void fmt_delta_ms(char *out, size_t n, const diff_cmp *c)
{
    double big = 0;
    const double v[3] = {c->d.est, c->d.lo, c->d.hi};
    for (int i = 0; i < 3; i++)
        if (!isnan(v[i]) && fabs(v[i]) > big)
            big = fabs(v[i]);
    double scale = big < 1 ? 1000 : big >= 1000 ? 0.001 : 1;
    const char *unit = big < 1 ? "µs" : big >= 1000 ? "s" : "ms";
    char e[32], lo[32], hi[32];
    if (isnan(c->d.est)) {
        snprintf(out, n, "-");
        return;
    }
    fmt_signed(e, sizeof e, c->d.est * scale);
    if (isnan(c->d.lo) || isnan(c->d.hi)) {
        snprintf(out, n, "%s %s", e, unit);
        return;
    }
    fmt_signed(lo, sizeof lo, c->d.lo * scale);
    fmt_signed(hi, sizeof hi, c->d.hi * scale);
    snprintf(out, n, "%s [%s, %s] %s", e, lo, hi, unit);
}

/* "+6.20 ms [+5.90 ms, +6.50 ms]", or just the difference when there is
 * no interval. */
static void fmt_delta(char *out, size_t n, const diff_cmp *c, enum unit u)
{
    if (u == U_MS) {
        fmt_delta_ms(out, n, c);
        return;
    }
    char e[48], lo[48], hi[48];
    fmt_value(e, sizeof e, c->d.est, u, 1);
    if (isnan(c->d.lo) || isnan(c->d.hi)) {
        snprintf(out, n, "%s", e);
        return;
    }
    fmt_value(lo, sizeof lo, c->d.lo, u, 1);
    fmt_value(hi, sizeof hi, c->d.hi, u, 1);
    snprintf(out, n, "%s [%s, %s]", e, lo, hi);
}

/* A side's value of a rate: "3/40 7.5%". */
static void fmt_rate_side(char *out, size_t n, int64_t k, int64_t of, double v)
{
    char r[32];
    fmt_value(r, sizeof r, v, U_RATE, 0);
    snprintf(out, n, "%lld/%lld %s", (long long)k, (long long)of, r);
}

static void measure_line(ms_buf *b, const char *what, const diff_cmp *c, enum unit u,
                         enum measure m)
{
    char a[64], bb[64], d[160];
    if (u == U_RATE) {
        fmt_rate_side(a, sizeof a, c->ka, c->na, c->a);
        fmt_rate_side(bb, sizeof bb, c->kb, c->nb, c->b);
    } else {
        fmt_value(a, sizeof a, c->a, u, 0);
        fmt_value(bb, sizeof bb, c->b, u, 0);
    }
    fmt_delta(d, sizeof d, c, u);
    if (!isnan(c->p)) {
        size_t l = strlen(d);
        snprintf(d + l, sizeof d - l, " p=%.2g", c->p);
    }
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, what, 15);
    ms_fmt_right(b, a, 16);
    ms_fmt_right(b, bb, 16);
    ms_buf_adds(b, "   ");
    ms_fmt_left(b, d, 44);
    ms_buf_adds(b, "  ");
    ms_buf_adds(b, verdict_word(c->v, m));
    ms_buf_addc(b, '\n');
}

static void side_text(ms_buf *b, const char *which, const ms_diff_side *sd, const diff_side *s)
{
    const diff_reqs *r = &s->all;
    ms_buf_printf(b, "  %s  ", which);
    ms_fmt_text(b, sd->arg, "");
    ms_buf_adds(b, ": ");
    ms_fmt_text(b, s->desc.data, "all traces");
    ms_buf_printf(b, "; %lld request%s", (long long)r->requests, r->requests == 1 ? "" : "s");
    if (r->interrupted || r->incomplete)
        ms_buf_printf(b, " (%lld interrupted, %lld incomplete: counted apart)",
                      (long long)r->interrupted, (long long)r->incomplete);
    if (s->evals_left_out)
        ms_buf_printf(b, "; %lld eval traces left out (--evals include counts them)",
                      (long long)s->evals_left_out);
    ms_buf_addc(b, '\n');
}

/* What the request rows after the first group by, as a word. */
static const char *rows_by_word(const ms_diff_opts *o)
{
    return o->rows_by == MS_DIFF_ROWS_USER ? "user" : o->rows_by == MS_DIFF_ROWS_SESSION ? "session" : "name";
}

/* A request row's name, quoted and escaped (after "user " or "session "
 * when grouped so; "(none)" for the traces given none); `all` for the row
 * of every request. */
static void request_name(ms_buf *b, const diff_req_row *row, const ms_diff_opts *o, const char *all)
{
    if (!row->name && !row->none) {
        ms_buf_adds(b, all);
        return;
    }
    if (o->rows_by != MS_DIFF_ROWS_NAME)
        ms_buf_printf(b, "%s ", rows_by_word(o));
    if (row->none) {
        ms_buf_adds(b, "(none)");
        return;
    }
    ms_buf_addc(b, '\'');
    ms_fmt_text(b, row->name, "");
    ms_buf_addc(b, '\'');
}

static void reqs_text(const diff_req_row *row, const ms_diff_opts *o, ms_buf *b)
{
    ms_buf_adds(b, "\nRequests: ");
    request_name(b, row, o, "all");
    ms_buf_printf(b, " (%lld completed in A, %lld in B): time %s; cost %s; errors %s\n",
                  (long long)row->r[0]->completed, (long long)row->r[1]->completed,
                  verdict_word(row->time, M_TIME), verdict_word(row->money, M_MONEY),
                  verdict_word(row->errors, M_ERRORS));
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, "", 15);
    ms_fmt_right(b, "A", 16);
    ms_fmt_right(b, "B", 16);
    ms_buf_adds(b, "   ");
    ms_fmt_left(b, "B - A [95% interval]", 44);
    ms_buf_adds(b, "  verdict\n");
    measure_line(b, "latency p50", &row->p50, U_MS, M_TIME);
    measure_line(b, "latency p95", &row->p95, U_MS, M_TIME);
    measure_line(b, "tokens/request", &row->tokens, U_COUNT, M_MONEY);
    measure_line(b, "cost/request", &row->cost, U_USD, M_MONEY);
    measure_line(b, "error rate", &row->err_rate, U_RATE, M_ERRORS);
    measure_line(b, "LLM failures", &row->llm_rate, U_RATE, M_ERRORS);
    if (row->r[0]->unpriced || row->r[1]->unpriced)
        ms_buf_printf(b, "  cost/request is over priced requests: %lld in A and %lld in B had no"
                      " known cost\n", (long long)row->r[0]->unpriced, (long long)row->r[1]->unpriced);
}

/* The header of one comparison's columns: "<what> A" and "<what> B"
 * right-aligned in `width`, then the difference left-aligned in
 * `delta_width`; cmp_cells writes the cells under it. */
static void cmp_heads(ms_buf *b, const char *what, int width, int delta_width)
{
    char h[32];
    snprintf(h, sizeof h, "%s A", what);
    ms_fmt_right(b, h, width);
    snprintf(h, sizeof h, "%s B", what);
    ms_fmt_right(b, h, width);
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, "B - A [95%]", delta_width);
}

static void cmp_cells(ms_buf *b, const diff_cmp *q, enum unit u, int width, int delta_width)
{
    char c[64], v[160];
    fmt_value(c, sizeof c, q->a, u, 0);
    ms_fmt_right(b, c, width);
    fmt_value(c, sizeof c, q->b, u, 0);
    ms_fmt_right(b, c, width);
    fmt_delta(v, sizeof v, q, u);
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, v, delta_width);
}

/* The LLM calls inside the listed steps that made any: tokens and cost
 * per span of the step. */
static void usage_text(const diff *d, size_t n, ms_buf *b)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        const diff_step_row *s = &d->steps[i];
        if (!s->has_llm)
            continue;
        if (!any) {
            ms_buf_adds(b, "\nLLM calls inside the steps, per span of the step (nested steps' included)\n  ");
            ms_fmt_left(b, "step", 24);
            cmp_heads(b, "tokens", 10, 24);
            cmp_heads(b, "cost", 12, 34);
            ms_buf_adds(b, "  verdict\n");
            any = 1;
        }
        ms_buf_adds(b, "  ");
        ms_fmt_padded_tail(b, step_label(s), 24);
        cmp_cells(b, &s->tokens, U_COUNT, 10, 24);
        cmp_cells(b, &s->cost, U_USD, 12, 34);
        ms_buf_adds(b, "  ");
        ms_buf_adds(b, verdict_word(s->money, M_MONEY));
        ms_buf_addc(b, '\n');
    }
}

static void steps_text(const diff *d, const ms_diff_opts *o, ms_buf *b)
{
    const diff_reqs *a = &d->side[0].all, *bb = &d->side[1].all;
    size_t n = steps_listed(d, o);
    ms_buf_printf(b, "\nSteps by %s, most changed first (steps from %lld of %lld requests in A,"
                  " %lld of %lld in B)\n", o->steps_by_name ? "name" : "path",
                  (long long)steps_from(a), (long long)a->requests,
                  (long long)steps_from(bb), (long long)bb->requests);
    if (!d->nsteps) {
        ms_buf_adds(b, "  (no steps: the requests have no spans under their own)\n");
        return;
    }
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, "step", 24);
    ms_fmt_right(b, "n A", 7);
    ms_fmt_right(b, "n B", 7);
    cmp_heads(b, "p50", 10, 27);
    cmp_heads(b, "p95", 10, 27);
    ms_buf_adds(b, "  verdict\n");
    int approx = 0;
    for (size_t i = 0; i < n; i++) {
        const diff_step_row *s = &d->steps[i];
        char c[64];
        ms_buf_adds(b, "  ");
        ms_fmt_padded_tail(b, step_label(s), s->approximate ? 23 : 24);
        if (s->approximate) {
            ms_buf_addc(b, '~');
            approx = 1;
        }
        snprintf(c, sizeof c, "%lld", (long long)s->p50.ca);
        ms_fmt_right(b, c, 7);
        snprintf(c, sizeof c, "%lld", (long long)s->p50.cb);
        ms_fmt_right(b, c, 7);
        cmp_cells(b, &s->p50, U_MS, 10, 27);
        cmp_cells(b, &s->p95, U_MS, 10, 27);
        ms_buf_adds(b, "  ");
        ms_buf_adds(b, !s->s[0] ? "new in B" : !s->s[1] ? "gone in B" : verdict_word(s->time, M_TIME));
        ms_buf_addc(b, '\n');
    }
    if (n < d->nsteps)
        ms_buf_printf(b, "  ... %zu more step%s (--steps all lists them)\n", d->nsteps - n,
                      d->nsteps - n == 1 ? "" : "s");
    if (approx)
        ms_buf_adds(b, "  ~ folded spans: percentiles from their histograms (within 0.8%), each"
                       " repetition counted as one value\n");
    usage_text(d, n, b);
}

static void fail_text(const diff *d, const ms_diff_opts *o, ms_buf *b)
{
    ms_buf_adds(b, "\n--fail-if");
    const char *sep = " ";
    static const char *const names[] = {"slower", "costlier", "errors"};
    for (int k = 0; k < 3; k++)
        if (o->fail_if & (1 << k)) {
            ms_buf_printf(b, "%s%s", sep, names[k]);
            sep = ",";
        }
    if (!d->failed) {
        ms_buf_adds(b, ": no row shows evidence of that (exit 0)\n");
        return;
    }
    ms_buf_adds(b, ": failed (exit 1) on\n");
    for (size_t i = 0; i < d->nreqs; i++) {
        const diff_req_row *r = &d->reqs[i];
        int f = ms_diff_req_fails(r, o->fail_if);
        if (!f)
            continue;
        ms_buf_adds(b, "  requests ");
        request_name(b, r, o, "(all)");
        const char *joint = ": ";
        if (f & MS_DIFF_FAIL_SLOWER)
            ms_buf_printf(b, "%sslower", joint), joint = ", ";
        if (f & MS_DIFF_FAIL_COSTLIER)
            ms_buf_printf(b, "%scostlier", joint), joint = ", ";
        if (f & MS_DIFF_FAIL_ERRORS)
            ms_buf_printf(b, "%smore errors", joint);
        ms_buf_addc(b, '\n');
    }
    for (size_t i = 0; i < d->nsteps; i++) {
        int f = ms_diff_step_fails(&d->steps[i], o->fail_if);
        if (!f)
            continue;
        ms_buf_adds(b, "  step '");
        ms_fmt_text(b, step_label(&d->steps[i]), "");
        ms_buf_printf(b, "': %s%s%s\n", f & MS_DIFF_FAIL_SLOWER ? "slower" : "",
                      f == (MS_DIFF_FAIL_SLOWER | MS_DIFF_FAIL_COSTLIER) ? ", " : "",
                      f & MS_DIFF_FAIL_COSTLIER ? "costlier" : "");
    }
}

void ms_diff_text(const diff *d, const ms_diff_opts *o, ms_buf *b)
{
    ms_buf_adds(b, "moonspan diff\n");
    side_text(b, "A", &o->side[0], &d->side[0]);
    side_text(b, "B", &o->side[1], &d->side[1]);
    ms_buf_printf(b, "Differences are B - A with 95%% intervals: percentile bootstrap (%d resamples,"
                  " seed %llu)\nfor latency percentiles and per-request means; Newcombe's interval"
                  " and Fisher's exact p for rates.\nA verdict needs the interval to exclude 0;"
                  " a latency, token or cost change under %g%% of A's is\n\"negligible\"; with"
                  " fewer than %d values on a side a row says \"too few\".\n",
                  o->resamples, (unsigned long long)o->seed, o->min_change * 100, MS_DIFF_MIN_N);
    for (size_t i = 0; i < d->nreqs; i++)
        reqs_text(&d->reqs[i], o, b);
    if (d->names_few)
        ms_buf_printf(b, "  (%lld %s%s on both sides with fewer than %d completed on a"
                      " side: no row of %s own)\n", (long long)d->names_few,
                      o->rows_by == MS_DIFF_ROWS_NAME ? "request name" : rows_by_word(o),
                      d->names_few == 1 ? "" : "s", MS_DIFF_MIN_N, d->names_few == 1 ? "its" : "their");
    steps_text(d, o, b);
    if (o->fail_if)
        fail_text(d, o, b);
}

/* --- JSON ------------------------------------------------------------------- */

/* {"a":, "b":, "diff":, "lo":, "hi":, ["p":,] ["k_a":, "n_a":, ...] "verdict":} */
static void cmp_json(ms_buf *b, int *f, const char *key, const diff_cmp *c, enum measure m,
                     int rate)
{
    int g = 1;
    ms_json_key(b, f, key);
    ms_buf_addc(b, '{');
    ms_kv_num(b, &g, "a", c->a);
    ms_kv_num(b, &g, "b", c->b);
    ms_kv_num(b, &g, "diff", c->d.est);
    ms_kv_num(b, &g, "lo", c->d.lo);
    ms_kv_num(b, &g, "hi", c->d.hi);
    if (rate) {
        ms_kv_int(b, &g, "k_a", c->ka);
        ms_kv_int(b, &g, "n_a", c->na);
        ms_kv_int(b, &g, "k_b", c->kb);
        ms_kv_int(b, &g, "n_b", c->nb);
        ms_kv_num(b, &g, "p", c->p);
    } else {
        ms_kv_int(b, &g, "n_a", c->ca);
        ms_kv_int(b, &g, "n_b", c->cb);
    }
    ms_kv_str(b, &g, "verdict", verdict_word(c->v, m));
    ms_buf_addc(b, '}');
}

static void reqs_counts_json(ms_buf *b, int *f, const char *key, const diff_reqs *r)
{
    int g = 1;
    ms_json_key(b, f, key);
    ms_buf_addc(b, '{');
    ms_kv_int(b, &g, "requests", r->requests);
    ms_kv_int(b, &g, "completed", r->completed);
    ms_kv_int(b, &g, "interrupted", r->interrupted);
    ms_kv_int(b, &g, "incomplete", r->incomplete);
    ms_kv_int(b, &g, "sampled_out", r->sampled_out);
    ms_kv_int(b, &g, "errors", r->errors);
    ms_kv_int(b, &g, "unpriced", r->unpriced);
    ms_kv_int(b, &g, "llm_calls", r->llm_calls);
    ms_kv_int(b, &g, "llm_failed", r->llm_failed);
    ms_buf_addc(b, '}');
}

static void side_json(ms_buf *b, int *f, const char *key, const ms_diff_side *sd, const diff_side *s)
{
    static const char *const kinds[] = {"run", "eval", "last", "window", "glob"};
    int g = 1;
    ms_json_key(b, f, key);
    ms_buf_addc(b, '{');
    ms_kv_str(b, &g, "arg", sd->arg);
    ms_kv_str(b, &g, "kind", kinds[sd->kind]);
    ms_kv_str(b, &g, "selection", s->desc.data ? s->desc.data : "all traces");
    ms_kv_int_or_null(b, &g, "run_id", s->sel.run_id != 0, s->sel.run_id);
    ms_kv_int_or_null(b, &g, "eval_run", s->sel.eval_run != 0, s->sel.eval_run);
    ms_kv_int_or_null(b, &g, "since_ns", s->sel.since_ns != 0, s->sel.since_ns);
    ms_kv_int_or_null(b, &g, "until_ns", s->sel.until_ns != 0, s->sel.until_ns);
    ms_kv_str(b, &g, "name_glob", s->sel.name_glob);
    ms_kv_int(b, &g, "requests", s->all.requests);
    ms_kv_int(b, &g, "evals_left_out", s->evals_left_out);
    ms_kv_int(b, &g, "steps_from_requests", steps_from(&s->all));
    ms_buf_addc(b, '}');
}

static void path_json(void *ud, const char *name)
{
    ms_buf *b = ud;
    if (b->data[b->len - 1] != '[')
        ms_buf_addc(b, ',');
    ms_json_str(b, name, strlen(name));
}

void ms_diff_json(const diff *d, const ms_diff_opts *o, ms_buf *b)
{
    int f = 1;
    ms_buf_addc(b, '{');
    side_json(b, &f, "a", &o->side[0], &d->side[0]);
    side_json(b, &f, "b", &o->side[1], &d->side[1]);

    int g = 1;
    ms_json_key(b, &f, "method");
    ms_buf_addc(b, '{');
    ms_kv_str(b, &g, "difference", "B - A");
    ms_kv_num(b, &g, "level", MS_STATS_LEVEL);
    ms_kv_str(b, &g, "latency", "percentile bootstrap of the quantile difference");
    ms_kv_str(b, &g, "means", "percentile bootstrap of the mean difference");
    ms_kv_str(b, &g, "rates", "Newcombe hybrid score interval; Fisher exact two-sided p");
    ms_kv_int(b, &g, "resamples", o->resamples);
    ms_kv_int(b, &g, "seed", (int64_t)o->seed);
    ms_kv_int(b, &g, "min_n", MS_DIFF_MIN_N);
    ms_kv_num(b, &g, "min_change", o->min_change);
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "requests");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < d->nreqs; i++) {
        const diff_req_row *r = &d->reqs[i];
        g = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        int all = !r->name && !r->none;
        ms_kv_raw(b, &g, "all", all ? "true" : "false");
        ms_kv_str(b, &g, "name", o->rows_by == MS_DIFF_ROWS_NAME ? r->name : NULL);
        if (o->rows_by != MS_DIFF_ROWS_NAME && !all)
            ms_kv_str(b, &g, rows_by_word(o), r->name);
        reqs_counts_json(b, &g, "count_a", r->r[0]);
        reqs_counts_json(b, &g, "count_b", r->r[1]);
        cmp_json(b, &g, "p50_ms", &r->p50, M_TIME, 0);
        cmp_json(b, &g, "p95_ms", &r->p95, M_TIME, 0);
        cmp_json(b, &g, "tokens_per_request", &r->tokens, M_MONEY, 0);
        cmp_json(b, &g, "cost_usd_per_request", &r->cost, M_MONEY, 0);
        cmp_json(b, &g, "error_rate", &r->err_rate, M_ERRORS, 1);
        cmp_json(b, &g, "llm_failure_rate", &r->llm_rate, M_ERRORS, 1);
        ms_kv_str(b, &g, "time", verdict_word(r->time, M_TIME));
        ms_kv_str(b, &g, "cost", verdict_word(r->money, M_MONEY));
        ms_kv_str(b, &g, "errors", verdict_word(r->errors, M_ERRORS));
        ms_kv_raw(b, &g, "fails", ms_diff_req_fails(r, o->fail_if) ? "true" : "false");
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    ms_kv_str(b, &f, "rows_by", rows_by_word(o));
    ms_kv_int(b, &f, "names_too_few", d->names_few);

    size_t n = steps_listed(d, o);
    ms_json_key(b, &f, "steps");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const diff_step_row *s = &d->steps[i];
        const ms_step *one = s->s[0] ? s->s[0] : s->s[1];
        g = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "name", ms_steps_name(s->of, one->name));
        ms_json_key(b, &g, "path");
        if (o->steps_by_name) {
            ms_buf_adds(b, "null");
        } else {
            ms_buf_addc(b, '[');
            if (!b->oom)
                ms_steps_path_each(s->of, one, path_json, b);
            ms_buf_addc(b, ']');
        }
        ms_kv_int(b, &g, "count_a", s->p50.ca);
        ms_kv_int(b, &g, "count_b", s->p50.cb);
        ms_kv_raw(b, &g, "approximate", s->approximate ? "true" : "false");
        cmp_json(b, &g, "p50_ms", &s->p50, M_TIME, 0);
        cmp_json(b, &g, "p95_ms", &s->p95, M_TIME, 0);
        ms_kv_str(b, &g, "verdict", !s->s[0] ? "new in B" : !s->s[1] ? "gone in B"
                                                                    : verdict_word(s->time, M_TIME));
        if (s->has_llm) {
            cmp_json(b, &g, "tokens_per_span", &s->tokens, M_MONEY, 0);
            cmp_json(b, &g, "cost_usd_per_span", &s->cost, M_MONEY, 0);
            ms_kv_str(b, &g, "cost", verdict_word(s->money, M_MONEY));
        } else {
            ms_kv_raw(b, &g, "tokens_per_span", "null");
            ms_kv_raw(b, &g, "cost_usd_per_span", "null");
            ms_kv_raw(b, &g, "cost", "null");
        }
        ms_kv_raw(b, &g, "fails", ms_diff_step_fails(s, o->fail_if) ? "true" : "false");
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    ms_kv_int(b, &f, "steps_omitted", (int64_t)(d->nsteps - n));

    ms_json_key(b, &f, "fail_if");
    ms_buf_addc(b, '[');
    static const char *const names[] = {"slower", "costlier", "errors"};
    int first = 1;
    for (int k = 0; k < 3; k++)
        if (o->fail_if & (1 << k)) {
            if (!first)
                ms_buf_addc(b, ',');
            first = 0;
            ms_json_str(b, names[k], strlen(names[k]));
        }
    ms_buf_addc(b, ']');
    ms_kv_raw(b, &f, "failed", d->failed ? "true" : "false");
    ms_buf_adds(b, "}\n");
}
