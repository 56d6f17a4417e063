/* ms_report_steps — the report's "Steps" and "Models" sections, as text
 * for people and as the JSON members `report --json` promises.
 *
 * A fine pipeline has hundreds of distinct steps: the text lists the
 * heaviest (opts->max_steps, MS_REPORT_TEXT_STEPS unless told) and says
 * how many more there are; JSON lists them all unless --steps was given,
 * and says how many it left out. */
#include "ms_report_data.h"

#include "ms_fmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* How many steps to list. */
static size_t steps_listed(const report *r, const ms_report_opts *o)
{
    size_t n = r->steps.nsteps;
    long max = o->max_steps;
    if (max == 0)
        max = o->json ? -1 : MS_REPORT_TEXT_STEPS;
    return max < 0 || (size_t)max >= n ? n : (size_t)max;
}

const ms_step *ms_report_slowest_step(const report *r)
{
    const ms_step *best = NULL;
    for (size_t i = 0; i < r->steps.nsteps; i++)
        if (!best || r->steps.steps[i].p95 > best->p95)
            best = &r->steps.steps[i];
    return best;
}

/* --- JSON ------------------------------------------------------------------ */

static void path_json(void *ud, const char *name)
{
    ms_buf *b = ud;
    if (b->data[b->len - 1] != '[')
        ms_buf_addc(b, ',');
    ms_json_str(b, name, strlen(name));
}

/* "path": the names from the request down, or null when grouped by name. */
static void step_path_json(const report *r, const ms_step *s, ms_buf *b, int *g)
{
    ms_json_key(b, g, "path");
    if (r->steps.by == MS_STEPS_BY_NAME) {
        ms_buf_adds(b, "null");
        return;
    }
    ms_buf_addc(b, '[');
    if (!b->oom)
        ms_steps_path_each(&r->steps, s, path_json, b);
    ms_buf_addc(b, ']');
}

void ms_report_steps_json(const report *r, const ms_report_opts *o, ms_buf *b, int *f)
{
    const ms_steps *st = &r->steps;
    size_t n = steps_listed(r, o);
    ms_json_key(b, f, "steps");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const ms_step *s = &st->steps[i];
        int g = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "name", ms_steps_name(st, s->name));
        step_path_json(r, s, b, &g);
        ms_kv_int(b, &g, "count", (int64_t)s->total.count);
        ms_kv_num(b, &g, "p50_ms", s->p50);
        ms_kv_num(b, &g, "p95_ms", s->p95);
        ms_kv_num(b, &g, "p99_ms", s->p99);
        ms_kv_num(b, &g, "total_ms", s->total.sum / MS_NS_PER_MS);
        ms_kv_num(b, &g, "share", ms_ratio(s->total.sum, st->total_ns));
        ms_kv_num(b, &g, "self_ms", (double)s->self_ns / MS_NS_PER_MS);
        ms_kv_num(b, &g, "self_avg_ms", (double)s->self_ns / (double)s->total.count / MS_NS_PER_MS);
        ms_kv_num(b, &g, "self_share", ms_ratio((double)s->self_ns, st->self_ns));
        ms_kv_raw(b, &g, "approximate", s->approximate ? "true" : "false");
        /* how far an estimated percentile may be from the true one, relatively */
        ms_kv_num(b, &g, "relative_error", s->approximate ? MS_HIST_REL_ERROR : 0);
        ms_kv_int(b, &g, "llm_calls", s->llm.calls);
        ms_kv_int(b, &g, "input_tokens", s->llm.in);
        ms_kv_int(b, &g, "output_tokens", s->llm.out);
        ms_kv_num(b, &g, "cost_usd", s->llm.priced ? s->llm.cost : NAN);
        ms_kv_int(b, &g, "unknown_cost_calls", s->llm.unknown);
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    ms_kv_int(b, f, "steps_omitted", (int64_t)(st->nsteps - n));
    /* steps come from the requests that kept their spans (--sample) */
    ms_kv_int(b, f, "steps_from_requests", r->requests - r->sampled_out);

    ms_json_key(b, f, "slowest_step");
    const ms_step *slow = ms_report_slowest_step(r);
    if (slow) {
        int g = 1;
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "name", ms_steps_name(st, slow->name));
        step_path_json(r, slow, b, &g);
        ms_kv_num(b, &g, "p95_ms", slow->p95);
        ms_buf_addc(b, '}');
    } else {
        ms_buf_adds(b, "null");
    }
}

void ms_report_models_json(const report *r, ms_buf *b, int *f)
{
    ms_json_key(b, f, "models");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->models.n; i++) {
        const ms_model *m = &r->models.rows[i];
        int g = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "provider", m->provider);
        ms_kv_str(b, &g, "model", m->model);
        ms_kv_int(b, &g, "calls", m->calls);
        ms_kv_int(b, &g, "failed", m->failed);
        ms_kv_int(b, &g, "input_tokens", m->in_tok);
        ms_kv_int(b, &g, "output_tokens", m->out_tok);
        ms_kv_num(b, &g, "cost_usd", m->priced ? m->cost : NAN);
        ms_kv_int(b, &g, "unknown_cost_calls", m->unknown_cost_calls);
        ms_kv_int(b, &g, "replayed_calls", m->replayed);
        ms_kv_int(b, &g, "streamed_calls", (int64_t)m->ttft.count);
        ms_kv_p50_p95(b, &g, "ttft_ms", m->ttft_p50, m->ttft_p95);
        ms_kv_raw(b, &g, "approximate", m->approximate ? "true" : "false");
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
}

/* --- text ------------------------------------------------------------------ */

/* A duration cell: ms_fmt_ms right-aligned in `w` columns after a space. */
static void ms_cell(ms_buf *b, double ms, int w)
{
    char t[48];
    ms_buf_addc(b, ' ');
    ms_fmt_right(b, ms_fmt_ms(t, sizeof t, ms), w);
}

/* What the LLM calls inside a row cost: "$0.0123", "$0.0123 +?" when
 * some had no price, "unknown" when none had, "-" without calls. */
static const char *cost_cell(char *buf, size_t n, int64_t calls, int64_t priced, int64_t unknown,
                             double cost)
{
    if (!calls || (!priced && !unknown))
        return snprintf(buf, n, "-"), buf;
    if (!priced)
        return snprintf(buf, n, "unknown"), buf;
    ms_fmt_usd(buf, n, cost);
    if (unknown)
        strncat(buf, " +?", n - strlen(buf) - 1);
    return buf;
}

#define STEP_COL_MAX 48 /* the step column's widest, a path cut at its start past it */

void ms_report_steps_text(const report *r, const ms_report_opts *o, ms_buf *b)
{
    const ms_steps *st = &r->steps;
    char t1[48], t2[48];
    if (!st->nsteps) {
        ms_buf_adds(b, "\nSteps       none recorded (wrap the work in span(name, fn))\n");
        return;
    }
    size_t n = steps_listed(r, o);
    int w = 4, llm = 0;
    for (size_t i = 0; i < n; i++) {
        int l = ms_fmt_text_cols(st->steps[i].label);
        if (l > w)
            w = l;
        llm |= st->steps[i].llm.calls > 0;
    }
    if (w > STEP_COL_MAX)
        w = STEP_COL_MAX;
    ms_buf_printf(b, "\nSteps by %s (total: with the steps inside; self: without its direct"
                     " children)\n",
                  st->by == MS_STEPS_BY_NAME ? "name" : "path");
    if (r->sampled_out)
        ms_buf_printf(b, "  from the %lld requests that kept their spans; %lld were sampled out (their"
                         " summary only: in the request figures, not here)\n",
                      (long long)(r->requests - r->sampled_out), (long long)r->sampled_out);
    ms_buf_adds(b, "  ");
    ms_fmt_padded(b, st->by == MS_STEPS_BY_NAME ? "name" : "path", w);
    ms_buf_printf(b, " %8s %9s %9s %9s %10s %10s %6s", "count", "p50", "p95", "p99", "total", "self",
                  "share");
    if (llm)
        ms_buf_printf(b, " %15s %11s", "tokens in/out", "cost");
    ms_buf_addc(b, '\n');
    for (size_t i = 0; i < n; i++) {
        const ms_step *s = &st->steps[i];
        ms_buf_adds(b, "  ");
        ms_fmt_padded_tail(b, s->label, w);
        ms_buf_printf(b, " %8llu", (unsigned long long)s->total.count);
        ms_cell(b, s->p50, 9);
        ms_cell(b, s->p95, 9);
        ms_cell(b, s->p99, 9);
        ms_cell(b, s->total.sum / MS_NS_PER_MS, 10);
        ms_cell(b, (double)s->self_ns / MS_NS_PER_MS, 10);
        double share = ms_ratio(s->total.sum, st->total_ns);
        if (isnan(share)) /* every step took 0 ns */
            ms_buf_adds(b, "      -");
        else
            ms_buf_printf(b, " %5.1f%%", 100 * share);
        if (llm) {
            if (s->llm.calls)
                snprintf(t1, sizeof t1, "%lld/%lld", (long long)s->llm.in, (long long)s->llm.out);
            else
                snprintf(t1, sizeof t1, "-");
            ms_buf_printf(b, " %15s %11s", t1,
                          cost_cell(t2, sizeof t2, s->llm.calls, s->llm.priced,
                                    s->llm.unknown, s->llm.cost));
        }
        if (s->approximate)
            ms_buf_adds(b, "  ~");
        ms_buf_addc(b, '\n');
    }
    for (size_t i = 0; i < n; i++)
        if (st->steps[i].approximate) {
            ms_buf_printf(b, "  ~ percentiles from folded spans' histograms: within %.1f%% of the true value\n",
                          100 * MS_HIST_REL_ERROR);
            break;
        }
    if (n < st->nsteps)
        ms_buf_printf(b, "  ... %zu more step%s (--steps N lists more, --steps all every one)\n",
                      st->nsteps - n, st->nsteps - n == 1 ? "" : "s");
    const ms_step *slow = ms_report_slowest_step(r);
    ms_buf_adds(b, "  slowest step: ");
    ms_fmt_text(b, slow->label, "");
    ms_buf_printf(b, " (p95 %s)\n", ms_fmt_ms(t1, sizeof t1, slow->p95));
}

void ms_report_models_text(const report *r, ms_buf *b)
{
    const ms_models *m = &r->models;
    char t1[48], t2[48];
    if (!m->n)
        return;
    int wp = 8, wm = 5;
    for (size_t i = 0; i < m->n; i++) {
        int l = ms_fmt_text_cols(m->rows[i].provider);
        wp = l > wp ? l : wp;
        l = ms_fmt_text_cols(m->rows[i].model);
        wm = l > wm ? l : wm;
    }
    wp = wp > 20 ? 20 : wp;
    wm = wm > 40 ? 40 : wm;
    ms_buf_adds(b, "\nModels (time to first token over streamed calls)\n  ");
    ms_fmt_padded(b, "provider", wp);
    ms_buf_adds(b, "  ");
    ms_fmt_padded(b, "model", wm);
    ms_buf_printf(b, " %7s %7s %15s %11s %9s %9s\n", "calls", "failed", "tokens in/out", "cost",
                  "TTFT p50", "TTFT p95");
    for (size_t i = 0; i < m->n; i++) {
        const ms_model *x = &m->rows[i];
        ms_buf_adds(b, "  ");
        ms_fmt_padded_tail(b, x->provider, wp);
        ms_buf_adds(b, "  ");
        ms_fmt_padded_tail(b, x->model, wm);
        snprintf(t1, sizeof t1, "%lld/%lld", (long long)x->in_tok, (long long)x->out_tok);
        ms_buf_printf(b, " %7lld %7lld %15s %11s", (long long)x->calls, (long long)x->failed, t1,
                      cost_cell(t2, sizeof t2, x->calls, x->priced, x->unknown_cost_calls, x->cost));
        ms_cell(b, x->ttft_p50, 9);
        ms_cell(b, x->ttft_p95, 9);
        if (x->replayed)
            ms_buf_printf(b, "  %lld replayed (not spent)", (long long)x->replayed);
        ms_buf_addc(b, '\n');
    }
}
