/* ms_report_out — the report (ms_report_data.h) written for people, as
 * aligned text with one short section per checklist question, or for
 * programs, as the one JSON object whose keys the README lists. */
#include "ms_report_data.h"

#include "ms_fmt.h"
#include "ms_read.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TOP_ERRORS 5        /* most common errors listed */
#define TREND_TEXT_ROWS 31  /* cost trend rows in the text view; --json has all */

/* "YYYY-MM-DD" or "YYYY-MM" for a period key. */
static void period_name(int64_t key, int by_month, char *out, size_t n)
{
    if (by_month) {
        int64_t y = ms_floor_div(key, 12);
        snprintf(out, n, "%04lld-%02d", (long long)y, (int)(key - y * 12) + 1);
    } else {
        int64_t y;
        unsigned m, d;
        ms_civil_from_days(key, &y, &m, &d);
        snprintf(out, n, "%04lld-%02u-%02u", (long long)y, m, d);
    }
}

void ms_report_window_text(const ms_select *s, ms_buf *b)
{
    char iso[40];
    if (s->since_ns) {
        ms_iso_utc(s->since_ns, iso, sizeof iso);
        ms_buf_printf(b, " since %s", iso);
    }
    if (s->until_ns) {
        ms_iso_utc(s->until_ns, iso, sizeof iso);
        ms_buf_printf(b, " until %s", iso);
    }
    if (!s->since_ns && !s->until_ns)
        ms_buf_adds(b, ", all time");
    /* the rest as the selection words it, the times said above */
    ms_select rest = *s;
    rest.since_ns = rest.until_ns = 0;
    ms_buf words = {0};
    ms_select_describe(&rest, &words);
    if (words.len && strcmp(words.data, "all traces") != 0) {
        ms_buf_adds(b, ", ");
        ms_buf_add(b, words.data, words.len);
    }
    if (words.oom)
        b->oom = 1;
    ms_buf_free(&words);
}

void ms_report_left_out_text(int64_t n, ms_buf *b)
{
    if (n > 0)
        ms_buf_printf(b, "%lld eval trace%s left out (`--evals include` counts them,"
                         " `--evals only` reports them alone)\n",
                      (long long)n, n == 1 ? "" : "s");
}

void ms_report_window_json(const ms_select *s, int64_t evals_left_out, ms_buf *b, int *first)
{
    static const char *const modes[] = {"exclude", "exclude", "include", "only"};
    char iso[40];
    ms_kv_int_or_null(b, first, "since_ns", s->since_ns != 0, s->since_ns);
    ms_iso_utc(s->since_ns, iso, sizeof iso);
    ms_kv_str(b, first, "since", s->since_ns ? iso : NULL);
    ms_kv_int_or_null(b, first, "until_ns", s->until_ns != 0, s->until_ns);
    ms_iso_utc(s->until_ns, iso, sizeof iso);
    ms_kv_str(b, first, "until", s->until_ns ? iso : NULL);
    ms_kv_str(b, first, "name_glob", s->name_glob);
    ms_kv_int_or_null(b, first, "run_id", s->run_id != 0, s->run_id);
    ms_kv_int_or_null(b, first, "eval_run", s->eval_run != 0, s->eval_run);
    ms_kv_str(b, first, "evals", modes[ms_select_evals(s)]);
    ms_json_key(b, first, "attrs");
    int g = 1;
    ms_buf_addc(b, '{');
    for (size_t i = 0; i < s->nattrs; i++)
        ms_kv_str(b, &g, s->attr_key[i], s->attr_value[i]);
    ms_buf_addc(b, '}');
    ms_kv_str(b, first, "user", s->user);
    ms_kv_str(b, first, "session", s->session);
    ms_json_key(b, first, "tags");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < s->ntags; i++) {
        if (i)
            ms_buf_addc(b, ',');
        ms_json_str(b, s->tags[i], strlen(s->tags[i]));
    }
    ms_buf_addc(b, ']');
    ms_kv_int(b, first, "evals_left_out", evals_left_out);
    ms_buf desc = {0};
    ms_select_describe(s, &desc);
    ms_kv_str(b, first, "description", desc.data);
    if (desc.oom)
        b->oom = 1;
    ms_buf_free(&desc);
}

/* --- report output ---------------------------------------------------- */

#define EV(off) ms_arena_str(&r->ev_arena, (off))

/* The "evals" array: the latest run of each suite with every failing case. */
static void evals_json(const report *r, ms_buf *b)
{
    char iso[40];
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->nevals; i++) {
        const eval_sum *e = &r->evals[i];
        int g = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "suite", EV(e->suite));
        ms_kv_int(b, &g, "eval_run", e->id);
        ms_iso_utc(e->start_ns, iso, sizeof iso);
        ms_kv_str(b, &g, "start", iso);
        ms_kv_int(b, &g, "cases", e->cases);
        ms_kv_int(b, &g, "passed", e->passed);
        ms_kv_num(b, &g, "pass_rate", e->pass_rate);
        ms_kv_num(b, &g, "threshold", e->threshold);
        ms_kv_str(b, &g, "status", EV(e->status));
        ms_kv_num(b, &g, "p50_ms", e->p50);
        ms_kv_num(b, &g, "p95_ms", e->p95);
        ms_kv_num(b, &g, "cost_usd", e->cost);
        ms_kv_num(b, &g, "replayed_cost_usd", e->replayed);
        ms_kv_raw(b, &g, "gates", EV(e->gates_json));
        ms_json_key(b, &g, "failing");
        ms_buf_addc(b, '[');
        for (size_t k = 0; k < e->nfail; k++) {
            const eval_fail *f = &r->fails[e->fail0 + k];
            int h = 1;
            if (k)
                ms_buf_addc(b, ',');
            ms_buf_addc(b, '{');
            ms_kv_str(b, &h, "case_id", EV(f->case_id));
            ms_kv_int(b, &h, "repeat_index", f->repeat);
            ms_kv_str(b, &h, "error_or_reason", EV(f->reason));
            ms_kv_str(b, &h, "trace_id", EV(f->trace_id));
            ms_buf_addc(b, '}');
        }
        ms_buf_adds(b, "]}");
    }
    ms_buf_addc(b, ']');
}

/* The report as one JSON object: window, requests, steps, slowest_step,
 * tokens, cost, errors, retries, cost_trend, evals (the keys `report
 * --json` promises). Missing data is null, never 0. */
void ms_report_json(const report *r, const ms_report_opts *o, ms_buf *b)
{
    char iso[40];
    double n = (double)r->requests;
    int f = 1, g;
    ms_buf_addc(b, '{');

    ms_json_key(b, &f, "window");
    g = 1;
    ms_buf_addc(b, '{');
    ms_report_window_json(&o->sel, r->evals_left_out, b, &g);
    ms_kv_str(b, &g, "group_by", o->by_month ? "month" : "day");
    ms_kv_str(b, &g, "steps_by", o->steps_by_name ? "name" : "path");
    ms_iso_utc(r->first_start, iso, sizeof iso);
    ms_kv_str(b, &g, "first_start", r->requests ? iso : NULL);
    ms_iso_utc(r->last_start, iso, sizeof iso);
    ms_kv_str(b, &g, "last_start", r->requests ? iso : NULL);
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "requests");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_int(b, &g, "count", r->requests);
    ms_kv_int(b, &g, "interrupted", r->interrupted);
    ms_kv_int(b, &g, "incomplete", r->incomplete);
    ms_kv_int(b, &g, "sampled_out", r->sampled_out);
    ms_json_key(b, &g, "latency_ms");
    {
        static const char *names[4] = {"p50", "p95", "p99", "max"};
        int h = 1;
        ms_buf_addc(b, '{');
        for (int i = 0; i < 4; i++)
            ms_kv_num(b, &h, names[i], r->lat[i]);
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, '}');

    ms_report_steps_json(r, o, b, &f);

    ms_json_key(b, &f, "tokens");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_num(b, &g, "avg_input", ms_ratio((double)r->in_tok, n));
    ms_kv_num(b, &g, "avg_output", ms_ratio((double)r->out_tok, n));
    ms_kv_num(b, &g, "avg_total", ms_ratio((double)(r->in_tok + r->out_tok), n));
    ms_kv_int(b, &g, "total_input", r->in_tok);
    ms_kv_int(b, &g, "total_output", r->out_tok);
    ms_kv_int(b, &g, "total_cache_read", r->cache_read);
    ms_kv_int(b, &g, "total_cache_write", r->cache_write);
    ms_kv_num(b, &g, "estimated_share", ms_ratio((double)r->llm_tokens_est, (double)r->llm_tokens));
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "cost");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_num(b, &g, "total_usd", r->cost_total);
    ms_kv_num(b, &g, "avg_usd_per_request", ms_ratio(r->cost_total, n));
    ms_kv_int(b, &g, "unknown_cost_calls", r->unknown_cost_calls);
    ms_kv_int(b, &g, "priced_requests", r->priced_requests);
    ms_kv_num(b, &g, "replayed_usd", r->cost_replayed);
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "errors");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_num(b, &g, "rate", ms_ratio((double)r->error_requests, n));
    ms_kv_int(b, &g, "requests", r->error_requests);
    ms_kv_int(b, &g, "count", r->error_count);
    ms_json_key(b, &g, "top");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->nerrs && i < TOP_ERRORS; i++) {
        const err_stat *e = &r->errs[i];
        int h = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &h, "type", e->type);
        ms_kv_str(b, &h, "message", e->message);
        ms_kv_int(b, &h, "count", e->count);
        ms_buf_addc(b, '}');
    }
    ms_buf_adds(b, "]}");

    ms_json_key(b, &f, "llm_calls");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_int(b, &g, "count", r->llm_calls);
    ms_kv_int(b, &g, "failed", r->llm_failed);
    ms_kv_num(b, &g, "failure_rate", ms_ratio((double)r->llm_failed, (double)r->llm_calls));
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "budget_stops");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_int(b, &g, "count", r->budget_stops);
    static const char *const kinds[] = MS_BUDGET_KINDS;
    for (int i = 0; i < 3; i++)
        ms_kv_int(b, &g, kinds[i], r->budget_by_kind[i]);
    ms_kv_int(b, &g, "other", r->budget_by_kind[3]);
    ms_buf_addc(b, '}');

    ms_report_models_json(r, b, &f);

    ms_json_key(b, &f, "retries");
    g = 1;
    ms_buf_addc(b, '{');
    ms_kv_int(b, &g, "retried_calls", r->retried);
    ms_kv_int(b, &g, "succeeded", r->retry_ok);
    ms_kv_num(b, &g, "success_rate", ms_ratio((double)r->retry_ok, (double)r->retried));
    ms_kv_num(b, &g, "backoff_ms_total", (double)r->backoff_ns / MS_NS_PER_MS);
    ms_kv_num(b, &g, "backoff_ms_per_request", ms_ratio((double)r->backoff_ns / MS_NS_PER_MS, n));
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "cost_trend");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->ntrend; i++) {
        const trend_row *t = &r->trend[i];
        char period[32];
        period_name(t->key, o->by_month, period, sizeof period);
        if (i)
            ms_buf_addc(b, ',');
        g = 1;
        ms_buf_addc(b, '{');
        ms_kv_str(b, &g, "period", period);
        ms_kv_int(b, &g, "requests", t->requests);
        ms_kv_num(b, &g, "cost_usd", t->cost);
        ms_kv_num(b, &g, "avg_usd_per_request", ms_ratio(t->cost, (double)t->requests));
        ms_kv_int(b, &g, "unknown_cost_calls", t->unknown);
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');

    ms_json_key(b, &f, "evals");
    evals_json(r, b);

    ms_buf_adds(b, "}\n");
}

#define EVAL_TEXT_FAILS 10 /* failing cases listed per suite; --json has them all */

/* The suite's gates in one line, then each failed one with its reason:
 * "    gates: 1 of 4 failed" / "      p95_ms(...): 68.9 ms ... > 50.0 ms". */
static void gates_text(const report *r, const eval_sum *e, ms_buf *b)
{
    if (e->ngates <= 0)
        return;
    char *failed = (char *)EV(e->gates_failed); /* our arena's copy: split in place */
    int64_t nfailed = 0;
    for (char *p = failed; p && *p; p++)
        nfailed += *p == '\x1f';
    nfailed += failed && *failed;
    if (nfailed == 0) {
        ms_buf_printf(b, "    gates: all %lld passed\n", (long long)e->ngates);
        return;
    }
    ms_buf_printf(b, "    gates: %lld of %lld failed\n", (long long)nfailed, (long long)e->ngates);
    for (char *p = failed; p;) {
        char *sep = strchr(p, '\x1f');
        if (sep)
            *sep = 0;
        ms_buf_adds(b, "      ");
        ms_fmt_text_max(b, p, 117, "failed");
        ms_buf_addc(b, '\n');
        if (sep)
            *sep = '\x1f'; /* the arena stays as read, should the text be drawn twice */
        p = sep ? sep + 1 : NULL;
    }
}

/* "Evals": per suite its latest run's pass rate and status, then up to
 * EVAL_TEXT_FAILS failing cases, each with the trace id to open. */
static void evals_text(const report *r, ms_buf *b)
{
    char t1[40], t2[40], t3[40];
    if (r->nevals == 0)
        return;
    ms_buf_adds(b, "\nEvals (latest run per suite; open a case with `moonspan show TRACE_ID`)\n");
    for (size_t i = 0; i < r->nevals; i++) {
        const eval_sum *e = &r->evals[i];
        const char *status = EV(e->status) ? EV(e->status) : "?";
        ms_iso_utc(e->start_ns, t1, sizeof t1);
        ms_buf_adds(b, "  ");
        ms_fmt_text(b, EV(e->suite), "?");
        ms_buf_printf(b, "  run %lld  %s  ", (long long)e->id, t1);
        ms_fmt_text(b, strcmp(status, "failed") == 0 ? "FAILED" : status, "");
        if (isnan(e->pass_rate))
            ms_buf_printf(b, "  pass rate -  (%lld/%lld", (long long)e->passed,
                          (long long)e->cases);
        else
            ms_buf_printf(b, "  pass rate %.1f%% (%lld/%lld", 100 * e->pass_rate,
                          (long long)e->passed, (long long)e->cases);
        if (!isnan(e->threshold))
            ms_buf_printf(b, ", threshold %.1f%%", 100 * e->threshold);
        ms_buf_printf(b, ")  p50 %s  p95 %s  cost %s", ms_fmt_ms(t1, sizeof t1, e->p50),
                      ms_fmt_ms(t2, sizeof t2, e->p95), ms_fmt_usd(t3, sizeof t3, e->cost));
        if (!isnan(e->replayed) && e->replayed != 0)
            ms_buf_printf(b, " (replayed, not spent: %s)", ms_fmt_usd(t1, sizeof t1, e->replayed));
        ms_buf_addc(b, '\n');
        gates_text(r, e, b);
        for (size_t k = 0; k < e->nfail && k < EVAL_TEXT_FAILS; k++) {
            const eval_fail *f = &r->fails[e->fail0 + k];
            ms_buf_adds(b, "    ");
            ms_fmt_text(b, EV(f->case_id), "?");
            if (f->repeat > 0)
                ms_buf_printf(b, " (repeat %lld)", (long long)f->repeat);
            ms_buf_adds(b, "  trace ");
            ms_fmt_text(b, EV(f->trace_id), "-");
            ms_buf_adds(b, "  ");
            /* a long error (a traceback) would push the next case off the
             * screen: one line each, cut at 120 bytes */
            ms_fmt_text_max(b, EV(f->reason), 117, "failed");
            ms_buf_addc(b, '\n');
        }
        if (e->nfail > EVAL_TEXT_FAILS)
            ms_buf_printf(b, "    ... and %zu more failing (`moonspan report --json` lists all)\n",
                          e->nfail - EVAL_TEXT_FAILS);
    }
}

/* Everything of the text report but the evals. */
static void report_text_traces(const report *r, const ms_report_opts *o, ms_buf *b)
{
    char t1[40], t2[40], t3[40], t4[40];
    double n = (double)r->requests;

    ms_buf_printf(b, "moonspan report: %lld request%s", (long long)r->requests,
                  r->requests == 1 ? "" : "s");
    ms_report_window_text(&o->sel, b);
    if (r->requests) {
        ms_iso_utc(r->first_start, t1, sizeof t1);
        ms_iso_utc(r->last_start, t2, sizeof t2);
        ms_buf_printf(b, " (%s .. %s)", t1, t2);
    }
    ms_buf_addc(b, '\n');
    ms_report_left_out_text(r->evals_left_out, b);

    if (r->requests == 0) {
        const ms_select *s = &o->sel;
        if (r->evals_left_out)
            ms_buf_adds(b, "\nno production traces match; the eval traces above are left out\n");
        else if (ms_select_narrows(s))
            ms_buf_adds(b, "\nno traces match this selection (" MS_SELECT_WIDEN
                           "; list traces with `moonspan traces`)\n");
        else
            ms_buf_adds(b, "\nno traces recorded yet (run a script with `moonspan run`)\n");
        return;
    }

    ms_buf_printf(b, "\nRequests    p50 %s   p95 %s   p99 %s   max %s\n",
                  ms_fmt_ms(t1, sizeof t1, r->lat[0]), ms_fmt_ms(t2, sizeof t2, r->lat[1]),
                  ms_fmt_ms(t3, sizeof t3, r->lat[2]), ms_fmt_ms(t4, sizeof t4, r->lat[3]));
    if (r->interrupted || r->incomplete)
        ms_buf_printf(b, "Cut short   %lld interrupted (SIGINT/SIGTERM), %lld incomplete (still open"
                         " when the run ended); not errors, and not in the percentiles\n",
                      (long long)r->interrupted, (long long)r->incomplete);

    ms_report_steps_text(r, o, b);

    ms_buf_printf(b, "\nTokens      per request %.1f in + %.1f out = %.1f;"
                     " total %lld in, %lld out",
                  r->in_tok / n, r->out_tok / n, (r->in_tok + r->out_tok) / n,
                  (long long)r->in_tok, (long long)r->out_tok);
    if (r->llm_tokens_est > 0)
        ms_buf_printf(b, "; %.1f%% of llm tokens estimated",
                      100 * ms_ratio((double)r->llm_tokens_est, (double)r->llm_tokens));
    ms_buf_addc(b, '\n');

    ms_buf_adds(b, "Cost        total ");
    ms_fmt_cost(b, r->cost_total, r->priced_requests, r->unknown_cost_calls);
    if (r->priced_requests)
        ms_buf_printf(b, "; per request %s", ms_fmt_usd(t1, sizeof t1, r->cost_total / n));
    if (r->cost_replayed != 0)
        ms_buf_printf(b, "; replayed (not spent): %s",
                      ms_fmt_usd(t1, sizeof t1, r->cost_replayed));
    ms_buf_addc(b, '\n');

    ms_buf_printf(b, "Errors      %.1f%% of requests (%lld); %lld error%s recorded\n",
                  100 * r->error_requests / n, (long long)r->error_requests,
                  (long long)r->error_count, r->error_count == 1 ? "" : "s");
    for (size_t i = 0; i < r->nerrs && i < TOP_ERRORS; i++) {
        const err_stat *e = &r->errs[i];
        ms_buf_printf(b, "  %6lld  ", (long long)e->count);
        ms_fmt_text(b, e->type[0] ? e->type : "error", "");
        ms_buf_adds(b, ": ");
        ms_fmt_text(b, e->message, "");
        ms_buf_addc(b, '\n');
    }

    if (r->llm_calls)
        ms_buf_printf(b, "LLM calls   %lld, %lld failed (%.1f%%, after their retries)\n",
                      (long long)r->llm_calls, (long long)r->llm_failed,
                      100.0 * r->llm_failed / r->llm_calls);
    else
        ms_buf_adds(b, "LLM calls   none\n");
    if (r->budget_stops) {
        static const char *const kinds[] = MS_BUDGET_KINDS;
        ms_buf_printf(b, "Budgets     %lld call%s stopped before sending:", (long long)r->budget_stops,
                      r->budget_stops == 1 ? "" : "s");
        const char *sep = " ";
        for (int i = 0; i < 4; i++) {
            if (r->budget_by_kind[i]) {
                ms_buf_printf(b, "%s%s %lld", sep, i < 3 ? kinds[i] : "other", (long long)r->budget_by_kind[i]);
                sep = ", ";
            }
        }
        ms_buf_addc(b, '\n');
    }

    if (r->retried)
        ms_buf_printf(b, "Retries     %lld call%s retried, %lld succeeded (%.1f%%)",
                      (long long)r->retried, r->retried == 1 ? "" : "s",
                      (long long)r->retry_ok, 100.0 * r->retry_ok / r->retried);
    else
        ms_buf_adds(b, "Retries     none");
    if (r->backoff_ns > 0)
        ms_buf_printf(b, "; %s waiting in backoff (%s per request)",
                      ms_fmt_ms(t1, sizeof t1, (double)r->backoff_ns / MS_NS_PER_MS),
                      ms_fmt_ms(t2, sizeof t2, (double)r->backoff_ns / MS_NS_PER_MS / n));
    ms_buf_addc(b, '\n');

    ms_report_models_text(r, b);

    /* a glance, not a dump: the latest periods; --json has them all */
    size_t from = r->ntrend > TREND_TEXT_ROWS ? r->ntrend - TREND_TEXT_ROWS : 0;
    ms_buf_printf(b, "\nCost trend (by %s, UTC)\n", o->by_month ? "month" : "day");
    if (from)
        ms_buf_printf(b, "  (%zu earlier %s not shown; --trend month or --json for all)\n",
                      from, o->by_month ? "months" : "days");
    for (size_t i = from; i < r->ntrend; i++) {
        const trend_row *t = &r->trend[i];
        char period[32];
        period_name(t->key, o->by_month, period, sizeof period);
        ms_buf_printf(b, "  %-10s %8lld req   ", period, (long long)t->requests);
        ms_fmt_cost(b, t->cost, t->priced, t->unknown);
        if (t->priced)
            ms_buf_printf(b, "   per request %s",
                          ms_fmt_usd(t1, sizeof t1, t->cost / (double)t->requests));
        ms_buf_addc(b, '\n');
    }
}

/* The report for people: a header line, then one short aligned section
 * per checklist question, then the evals. An empty window says so and
 * how to fill it. */
void ms_report_text(const report *r, const ms_report_opts *o, ms_buf *b)
{
    report_text_traces(r, o, b);
    evals_text(r, b);
}

#undef EV
