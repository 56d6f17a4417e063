/* ms_report — `moonspan report`: the production checklist over a store.
 *
 * Read-only: only SELECTs from the schema in ms_schema.sql, all in one
 * snapshot, so a writer appending meanwhile cannot make the sections
 * disagree. Output is built whole and written once: nothing reaches `out`
 * on error. Text is aligned sections for people; JSON is one object for
 * programs, durations in milliseconds, missing data null (never 0). */
#ifndef MS_REPORT_H
#define MS_REPORT_H

#include "ms_select.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ms_report_by {
    MS_REPORT_BY_NONE = 0,   /* the report itself */
    MS_REPORT_BY_USER,       /* requests grouped by traces' user (ms_who.h) */
    MS_REPORT_BY_SESSION     /* by traces' session */
};

typedef struct ms_report_opts {
    ms_select sel;         /* the traces reported (ms_select.h): eval traces left out
                              unless sel asks for them */
    int by_month;          /* cost_trend grouped by month (YYYY-MM) instead of day */
    int steps_by_name;     /* steps grouped by span name instead of by path */
    long max_steps;        /* steps listed: 0 the default (text 20, JSON all), < 0 all */
    int json;              /* JSON instead of text */
    enum ms_report_by by_who; /* --by user|session: ms_report_by_write instead */
} ms_report_opts;

#define MS_REPORT_TEXT_STEPS 20 /* steps the text lists unless told */

/* Writes the report: the traces opts->sel selects, with how many eval
 * traces its default left out, then the latest finished eval run of each
 * suite started since opts->sel.since_ns (the other filters are about
 * traces and do not apply to that section). Latency percentiles, of requests and of steps,
 * are over completed work: traces and spans whose status is interrupted
 * or incomplete are counted apart, and are not errors. Cost is live
 * spend; calls replayed from a recording are reported apart. Steps are
 * grouped by path or by name with their self time and the LLM usage
 * inside them (ms_steps.h), LLM calls per model (ms_models.h). Works on a
 * store of schema version 1 too (no evals, replays or backoff there).
 * Returns 0, or -1 with a message in err. */
int ms_report_write(sqlite3 *db, const ms_report_opts *opts, FILE *out,
                    char *err, size_t errlen);

/* The kinds of budget llm.call enforces (scripts/budget.lua), in the
 * report's order. */
#define MS_BUDGET_KINDS {"call", "request", "run"}

/* `report --by user` or `--by session` (opts->by_who): the requests
 * opts->sel selects grouped by their user or session, costliest first,
 * the group of traces without one named null ("(none)" in text). Each
 * group: requests, completed ones, requests with status error and their
 * rate, errors counted, latency p50/p95 over completed requests, tokens,
 * cost over priced requests and per priced request (null when none was
 * priced), unknown-cost calls. Reads trace rows only; works on a v5 store
 * (who from attrs). Output built whole, written once. Returns 0, or -1
 * with err. */
int ms_report_by_write(sqlite3 *db, const ms_report_opts *opts, FILE *out, char *err, size_t errlen);

#endif
