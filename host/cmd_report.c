/* `moonspan report`, `traces` and `show`: read-only views of the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ms_clock.h"
#include "ms_overhead.h"
#include "ms_profile.h"
#include "ms_report.h"
#include "ms_show.h"
#include "ms_store.h"
#include "ms_traces.h"

static const char REPORT_HELP[] =
    "usage: moonspan report [--since DURATION] [--until DURATION] [--name GLOB] [--run ID]\n"
    "                       [--eval-run ID] [--evals exclude|include|only] [--attr KEY=VALUE]...\n"
    "                       [--user ID] [--session ID] [--tag TAG]...\n"
    "                       [--by path|name|user|session] [--steps N|all] [--trend day|month]\n"
    "                       [--profile | --overhead] [--json] [--db PATH]\n"
    "\n"
    "The production checklist over stored traces: request latency p50/p95/p99,\n"
    "per-step latency, total and self time, tokens and cost, the slowest step,\n"
    "LLM calls per model (tokens, cost, time to first token), tokens and cost per\n"
    "request and their trend, error rate and most common errors, LLM calls that\n"
    "failed, retry success and time spent in backoff. Requests cut short by a\n"
    "signal or still open when their run ended are counted apart, not as errors,\n"
    "and left out of the latency percentiles. Eval traces (of `moonspan eval`)\n"
    "are left out unless asked for; a line says how many. Then the latest run\n"
    "of each eval suite.\n"
    "\n";

static const char REPORT_HELP_OPTIONS[] =
    "  --by path|name    group steps by path, the span names from the request down\n"
    "                    (rerank/tokenize apart from embed/tokenize; the default),\n"
    "                    or by span name alone\n"
    "  --by user|session instead: requests per user (or session), costliest first:\n"
    "                    requests, errors, p50/p95, tokens, cost, cost per request\n"
    "  --steps N|all     list the N heaviest steps (text default 20; --json lists\n"
    "                    all unless --steps is given)\n"
    "  --trend day|month group the cost trend by day (default) or month;\n"
    "                    --by day|month is the older spelling\n"
    "  --json            one JSON object instead of text (durations in ms)\n"
    "  --overhead        instead: what recording cost each run (spans kept, folded,\n"
    "                    skipped, sampled out, the script's time in telemetry);\n"
    "                    --since and --limit N (default 20) choose the runs\n"
    "  --profile         instead: the hottest functions of each step, by self CPU\n"
    "                    time, over traces recorded with `moonspan run --profile`\n"
    "\n"
    "An unknown --run or --eval-run id is an error (exit 2).\n";

static const char TRACES_HELP[] =
    "usage: moonspan traces [--limit N] [--errors] [--sort start|duration|cost]\n"
    "                       [--since DURATION] [--until DURATION] [--name GLOB] [--run ID]\n"
    "                       [--eval-run ID] [--evals exclude|include|only] [--attr KEY=VALUE]...\n"
    "                       [--user ID] [--session ID] [--tag TAG]... [--json] [--db PATH]\n"
    "\n"
    "Traces one line each, newest first: id, name, start, duration, tokens, cost,\n"
    "status. Eval traces (of `moonspan eval`) are left out unless asked for; a\n"
    "last line says how many.\n"
    "\n";

static const char TRACES_HELP_OPTIONS[] =
    "  --limit N         how many (default 20)\n"
    "  --errors          only traces whose status is error (an interrupted one is not)\n"
    "  --sort ORDER      start: newest first (default); duration: slowest first;\n"
    "                    cost: costliest first, unknown cost last\n"
    "  --json            a JSON array instead of text\n"
    "\n"
    "An unknown --run or --eval-run id is an error (exit 2).\n";

static const char SHOW_HELP[] =
    "usage: moonspan show [--depth N] [--min-ms X] [--all] [--profile] [--json] [--pick N] [--db PATH]\n"
    "                     TRACE_ID\n"
    "\n"
    "One trace as an indented tree: each span's name, duration, tokens, cost,\n"
    "retries, status and error. Sibling spans of one name print as one line:\n"
    "their count, total, p50, p95 and max (score_doc x1000). TRACE_ID may be a\n"
    "prefix (4+ characters) of an id from `moonspan traces`. The trace of an eval\n"
    "case comes with its result: passed or FAILED, input, expected, output, each\n"
    "scorer's score and reason, the error (`eval` in --json, null for other traces).\n"
    "\n"
    "  --depth N   only spans up to depth N (the request is 0); a line says how\n"
    "              many spans are below it\n"
    "  --min-ms X  hide spans shorter than X ms (e.g. 0.5), saying how many under\n"
    "              each parent\n"
    "  --all       one line per span, siblings of one name not folded\n"
    "  --pick N    when several traces match TRACE_ID (the traces of a run that\n"
    "              joined an outer trace through TRACEPARENT share its id), show\n"
    "              the Nth, counted by start time; without it they are listed\n"
    "  --profile   with each span, its self CPU time and hottest functions (file:line),\n"
    "              from a run with --profile\n"
    "  --json      a JSON object instead of text: always the whole trace\n";

static int help(ms_cli *c, const char *text)
{
    if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
        fputs(text, stdout);
        return 1;
    }
    return 0;
}

/* --help of a view that selects traces: its text, the selection's
 * options, then its own. */
static int help_select(ms_cli *c, const char *text, const char *options)
{
    if (!help(c, text))
        return 0;
    fputs(MS_SELECT_HELP, stdout);
    fputs(options, stdout);
    return 1;
}

/* Opens the store and checks that --run and --eval-run name runs it has:
 * an unknown id is a wrong command line (exit 2), not an empty view. */
static ms_store *open_selected(ms_cli *c, const ms_select *sel, int *status)
{
    ms_store *s = ms_cli_open_read(c);
    *status = MS_EXIT_USAGE;
    if (!s)
        return NULL;
    char err[1024];
    int rc = ms_select_check(ms_store_db(s), sel, err, sizeof err);
    if (rc == 0)
        return s;
    fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
    ms_store_close(s);
    *status = rc > 0 ? MS_EXIT_USAGE : 1;
    return NULL;
}

/* --steps N: a whole number of rows, or a usage error naming the fix. */
static long steps_value(ms_cli *c, const char *v)
{
    long n;
    if (ms_parse_long(v, 1, 1000000000, &n))
        ms_cli_usage_error(c, "--steps '%s' is not a number of steps; give a whole number from 1"
                              " (e.g. --steps 50), or --steps all", v);
    return n;
}

int ms_cmd_report(ms_cli *c)
{
    ms_report_opts o = {0};
    ms_overhead_opts ov = {0};
    int overhead = 0;
    int profile = 0;
    const char *v;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (help_select(c, REPORT_HELP, REPORT_HELP_OPTIONS))
            return 0;
        if (ms_cli_flag(c, "--overhead")) {
            overhead = 1;
        } else if (ms_cli_value(c, "--limit", &v)) {
            ov.limit = ms_cli_long(c, "--limit", v, 1, 1000000);
        } else if (ms_cli_select(c, &o.sel)) {
            continue;
        } else if (ms_cli_value(c, "--by", &v)) {
            /* day and month are what --by grouped before steps had paths */
            if (!strcmp(v, "path") || !strcmp(v, "name"))
                o.steps_by_name = strcmp(v, "name") == 0;
            else if (!strcmp(v, "day") || !strcmp(v, "month"))
                o.by_month = strcmp(v, "month") == 0;
            else if (!strcmp(v, "user") || !strcmp(v, "session"))
                o.by_who = strcmp(v, "user") == 0 ? MS_REPORT_BY_USER : MS_REPORT_BY_SESSION;
            else
                ms_cli_usage_error(c, "--by '%s' is not a grouping; use --by path or --by name for"
                                      " the steps, --by user or --by session for requests per user or"
                                      " session (--trend day or --trend month for the cost trend)", v);
        } else if (ms_cli_value(c, "--trend", &v)) {
            if (strcmp(v, "day") && strcmp(v, "month"))
                ms_cli_usage_error(c, "--trend '%s' is not a period; use --trend day or --trend month", v);
            o.by_month = strcmp(v, "month") == 0;
        } else if (ms_cli_value(c, "--steps", &v)) {
            o.max_steps = strcmp(v, "all") == 0 ? -1 : steps_value(c, v);
        } else if (ms_cli_flag(c, "--json")) {
            o.json = 1;
        } else if (ms_cli_flag(c, "--profile")) {
            profile = 1;
        } else {
            ms_cli_unknown(c);
        }
    }
    ms_cli_refuse_prices(c);
    if (ov.limit && !overhead)
        ms_cli_usage_error(c, "--limit chooses runs for --overhead; the report covers every trace "
                              "(narrow it with --since or --name)");
    const ms_select *sel = &o.sel;
    if (overhead && (sel->name_glob || sel->until_ns || sel->run_id || sel->eval_run || sel->nattrs ||
                     sel->evals || o.by_month || sel->user || sel->session || sel->ntags))
        ms_cli_usage_error(c, "--overhead reports runs, not traces: only --since and --limit apply"
                              " (--name, --until, --run, --eval-run, --evals, --attr, --user, --session,"
                              " --tag and --by do not)");
    if (o.by_who && (overhead || profile))
        ms_cli_usage_error(c, "--by %s groups the requests; it does not combine with --%s (run them"
                              " as two reports)", o.by_who == MS_REPORT_BY_USER ? "user" : "session",
                           overhead ? "overhead" : "profile");
    int status;
    ms_store *s = open_selected(c, sel, &status);
    if (!s)
        return status;
    char err[1024];
    int rc;
    if (o.by_who) {
        rc = ms_report_by_write(ms_store_db(s), &o, stdout, err, sizeof err);
    } else if (overhead) {
        ov.since_ns = sel->since_ns;
        ov.json = o.json;
        rc = ms_overhead_write(ms_store_db(s), &ov, stdout, err, sizeof err);
    } else if (profile) {
        rc = ms_profile_report_write(ms_store_db(s), &o, stdout, err, sizeof err);
    } else {
        rc = ms_report_write(ms_store_db(s), &o, stdout, err, sizeof err);
    }
    return ms_cli_finish_view(c, s, rc, err);
}

int ms_cmd_traces(ms_cli *c)
{
    ms_traces_opts o = {.limit = 20};
    const char *v;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (help_select(c, TRACES_HELP, TRACES_HELP_OPTIONS))
            return 0;
        if (ms_cli_value(c, "--limit", &v)) {
            o.limit = (int)ms_cli_long(c, "--limit", v, 1, 1000000);
        } else if (ms_cli_flag(c, "--errors")) {
            o.sel.errors_only = 1;
        } else if (ms_cli_flag(c, "--json")) {
            o.json = 1;
        } else if (ms_cli_value(c, "--sort", &v)) {
            if (!strcmp(v, "start"))
                o.sort = MS_TRACES_BY_START;
            else if (!strcmp(v, "duration"))
                o.sort = MS_TRACES_BY_DURATION;
            else if (!strcmp(v, "cost"))
                o.sort = MS_TRACES_BY_COST;
            else
                ms_cli_usage_error(c, "--sort '%s' is not an order; use --sort start (newest first),"
                                      " duration (slowest first) or cost (costliest first)", v);
        } else if (!ms_cli_select(c, &o.sel)) {
            ms_cli_unknown(c);
        }
    }
    ms_cli_refuse_prices(c);
    int status;
    ms_store *s = open_selected(c, &o.sel, &status);
    if (!s)
        return status;
    char err[1024];
    int rc = ms_traces_write(ms_store_db(s), &o, stdout, err, sizeof err);
    return ms_cli_finish_view(c, s, rc, err);
}

/* --min-ms X: milliseconds, 0 or more, or a usage error naming the fix. */
static double min_ms_value(ms_cli *c, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0 && x <= 1e12))
        ms_cli_usage_error(c, "--min-ms '%s' is not a number of milliseconds; give one from 0,"
                              " e.g. --min-ms 1 or --min-ms 0.05", v);
    return x;
}

int ms_cmd_show(ms_cli *c)
{
    ms_show_opts o = {0};
    const char *v, *shaped = NULL;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (help(c, SHOW_HELP))
            return 0;
        if (ms_cli_flag(c, "--json")) {
            o.json = 1;
        } else if (ms_cli_flag(c, "--profile")) {
            o.profile = 1;
        } else if (ms_cli_value(c, "--depth", &v)) {
            o.max_depth = (int)ms_cli_long(c, "--depth", v, 1, 1000000);
            shaped = "--depth";
        } else if (ms_cli_value(c, "--min-ms", &v)) {
            o.min_ms = min_ms_value(c, v);
            shaped = "--min-ms";
        } else if (ms_cli_flag(c, "--all")) {
            o.all = 1;
            shaped = "--all";
        } else if (ms_cli_value(c, "--pick", &v)) {
            o.pick = ms_cli_long(c, "--pick", v, 1, 1000000000);
        } else if (c->argv[c->i][0] != '-' && !o.id) {
            o.id = c->argv[c->i++];
        } else {
            ms_cli_unknown(c);
        }
    }
    if (!o.id)
        ms_cli_usage_error(c, "missing TRACE_ID; list ids with `moonspan traces`");
    if (o.json && shaped)
        ms_cli_usage_error(c, "%s shapes the text view, and --json is always the whole trace;"
                              " drop one of them", shaped);
    size_t n = strspn(o.id, "0123456789abcdefABCDEF");
    if (o.id[n] || n < 4 || n > 32)
        ms_cli_usage_error(c, "TRACE_ID '%s' must be 4 to 32 hex characters (an id or its prefix "
                              "from `moonspan traces`)", o.id);
    ms_cli_refuse_prices(c);
    ms_store *s = ms_cli_open_read(c);
    if (!s)
        return MS_EXIT_USAGE;
    char err[1024];
    /* several matches are the answer of --json; for people they explain the error */
    int rc = ms_show_write(ms_store_db(s), &o, stdout, o.json ? stdout : stderr, err, sizeof err);
    return ms_cli_finish_view(c, s, rc, err);
}
