/* ms_report_data — the numbers of one `moonspan report`, as the scans
 * (ms_report.c) leave them for the output (ms_report_out.c). Private to
 * those two files, and `report --profile` (ms_profile_report.c), which
 * states its window the same way. */
#ifndef MS_REPORT_DATA_H
#define MS_REPORT_DATA_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_models.h"
#include "ms_report.h"
#include "ms_steps.h"
#include "ms_strmap.h"

typedef struct err_stat {
    const char *type, *message; /* point into the errors strmap's key */
    int64_t count;
} err_stat;

typedef struct trend_row {
    int64_t key;        /* day number since the epoch, or year*12 + month-1 */
    int64_t requests;
    int64_t priced;     /* requests with a known cost */
    int64_t unknown;    /* llm calls with no price */
    double cost;
} trend_row;

/* A failing case of an eval run; strings are offsets into report.ev_arena. */
typedef struct eval_fail {
    size_t case_id, reason, trace_id;
    int64_t repeat;
} eval_fail;

/* The latest finished run of one suite. */
typedef struct eval_sum {
    int64_t id, start_ns, cases, passed;
    double pass_rate, threshold, p50, p95, cost, replayed;
    size_t suite, status;       /* offsets into report.ev_arena */
    size_t gates_json;          /* the suite's gates (eval_runs.config): a JSON array, or MS_NO_STR */
    int64_t ngates;
    size_t gates_failed;        /* "name: reason" of each failed gate, separated by \x1f; MS_NO_STR when none */
    size_t fail0, nfail;        /* report.fails[fail0 .. fail0 + nfail) */
} eval_sum;

/* Steps, models and errors are sorted for output once scanned (most
 * first), after which their indices no longer match their maps. */
typedef struct report {
    int64_t requests;   /* every trace in the window */
    int64_t interrupted, incomplete; /* of those, not completed */
    int64_t sampled_out; /* of those, stored as their summary only (--sample): no steps */
    int64_t evals_left_out; /* eval traces the selection's default left out */
    double lat[4];      /* p50, p95, p99, max in ms, over completed requests */
    int64_t first_start, last_start;
    int64_t in_tok, out_tok, cache_read, cache_write;
    double cost_total;  /* live spend: replayed calls excluded */
    double cost_replayed; /* recorded cost of replayed calls (not spent) */
    int64_t priced_requests, unknown_cost_calls;
    int64_t error_requests, error_count;

    ms_steps steps;
    ms_models models;

    ms_strmap err_keys;
    err_stat *errs;
    size_t nerrs, caperrs;

    int64_t llm_tokens, llm_tokens_est;
    int64_t llm_calls, llm_failed; /* llm spans that completed, of them status error */
    /* calls a budget stopped before sending (own errors of type
     * budget_exceeded), by the budget's kind (their llm.budget.kind):
     * MS_BUDGET_KINDS, then any other or missing kind */
    int64_t budget_stops, budget_by_kind[4];
    int64_t retried, retry_ok;
    int64_t backoff_ns;  /* waited between retry attempts */

    trend_row *trend;
    size_t ntrend, captrend;
    size_t trend_last;  /* index of the last period hit: traces come mostly in time order */

    ms_buf ev_arena;
    eval_sum *evals;
    size_t nevals, capevals;
    eval_fail *fails;
    size_t nfails, capfails;
} report;

/* a / b, or NaN (JSON null, "-" in text) when there is nothing to divide by. */
static inline double ms_ratio(double a, double b) { return b > 0 ? a / b : NAN; }

/* The "Steps" and "Models" sections (ms_report_steps.c): as text, or as
 * the JSON members steps, steps_omitted and slowest_step / models of the
 * object whose "first member" flag is *first. */
void ms_report_steps_text(const report *r, const ms_report_opts *o, ms_buf *b);
void ms_report_models_text(const report *r, ms_buf *b);
void ms_report_steps_json(const report *r, const ms_report_opts *o, ms_buf *b, int *first);
void ms_report_models_json(const report *r, ms_buf *b, int *first);

/* The step with the highest p95; ties go to the one with more total time
 * (the earlier in the sorted rows). NULL when there are no steps. */
const ms_step *ms_report_slowest_step(const report *r);

/* The report as text for people, or as the one JSON object `report
 * --json` promises, appended to b. */
void ms_report_text(const report *r, const ms_report_opts *o, ms_buf *b);
void ms_report_json(const report *r, const ms_report_opts *o, ms_buf *b);

/* The selection (ms_select.h) for a heading: " since DATE" (and " until
 * DATE") or ", all time", then the other filters as ms_select_describe
 * words them (", name 'answer_*', evals excluded"). As JSON members of the
 * object being written (`first` its flag, see ms_json_key): since_ns,
 * since, until_ns, until, name_glob, run_id, eval_run, evals ("exclude",
 * "include" or "only"), attrs (an object), user, session, tags (an
 * array), evals_left_out and description. */
void ms_report_window_text(const ms_select *s, ms_buf *b);
void ms_report_window_json(const ms_select *s, int64_t evals_left_out, ms_buf *b, int *first);

/* A line saying how many eval traces the default left out and how to
 * count them; nothing when n is 0. */
void ms_report_left_out_text(int64_t n, ms_buf *b);

#endif
