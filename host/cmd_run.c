/* `moonspan run` and `moonspan test`: both run Lua inside the host with
 * tracing on; test runs busted instead of a script. */
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <netinet/in.h>

#include "cli.h"
#include "host.h"
#include "live_metrics.h"
#include "otlp_live.h"
#include "serve.h"

static const char RUN_HELP[] =
    "usage: moonspan run [--quiet] [--profile[=HZ]] [--auto-spans[=DEPTH]] [--metrics-addr HOST:PORT]\n"
    "                    [--export otlp[=URL]] [RECORDING OPTIONS] [--budget-usd SPEC]\n"
    "                    [--db PATH] [--prices FILE]\n"
    "                    SCRIPT [ARGS...]\n"
    "\n"
    "Runs the Lua pipeline SCRIPT with span(), trace(), retry() and llm.call()\n"
    "available; `arg` holds ARGS as in `lua`. Every span is stored in the\n"
    "database. The run is one trace named after the script unless the script\n"
    "opens its own with trace(). On exit the trace timeline goes to stderr.\n"
    "\n"
    "  --quiet              do not print the timeline nor the profiler's line\n"
    "  --profile[=HZ]       sample the Lua stack HZ times per second of CPU time\n"
    "                       (default 1000) and store each span's self time per\n"
    "                       function; see `moonspan show --profile ID` and\n"
    "                       `moonspan report --profile`\n"
    "  --auto-spans[=DEPTH] record every Lua function call as a span, up to\n"
    "                       DEPTH nested calls (default 10); for short runs\n"
    "%s"
    "%s"
    "  --db PATH            the store (default: $MOONSPAN_DB, else ./moonspan.db)\n"
    "  --prices FILE        model prices overriding the built-in table\n"
    "  --budget-usd SPEC    stop LLM calls that could overspend, in US dollars:\n"
    "                       X or run=X (the whole run), request=X (each trace),\n"
    "                       call=X (each llm.call), comma-separated; a call that\n"
    "                       could go over is not sent and fails with budget_exceeded\n"
    "\n"
    "Recording options (also on `moonspan eval`):\n"
    "%s"
    "\n"
    "Exit status: 0 when the script finished, 1 when it raised an error (its\n"
    "spans are stored all the same), 130/143 when interrupted, 2 for bad usage.\n"
    "--export failures do not change it.\n";

static const char TEST_HELP[] =
    "usage: moonspan test [--db PATH] [--prices FILE] [BUSTED OPTIONS] [PATH...]\n"
    "\n"
    "Runs busted specs inside the host, so specs can use span, trace, retry\n"
    "and llm exactly as pipelines do. PATH defaults to ./spec. Options other\n"
    "than --db and --prices go to busted (`busted --help` lists them), e.g.\n"
    "-o TAP, --filter PATTERN. Spans recorded by the specs go to the store.\n"
    "\n"
    "Exit status: 0 when every spec passed, 1 otherwise, 2 for bad usage.\n";

/* Starts the host (store, tracer, Lua), runs `body`, then ends the run
 * (lifecycle.c) and returns the exit status. `label` names the run in
 * the runs table; ARGS for it start at argv[first_arg]. */
int ms_run_hosted(ms_cli *c, const char *label, int first_arg, const ms_run_opts *o,
                  ms_body_fn body, void *ud)
{
    char err[1024];
    if (ms_otlp_live_prepare(o, c->verb, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
        return MS_EXIT_USAGE;
    }
    if (o->metrics_addr && ms_live_metrics_start(o->metrics_addr, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: --metrics-addr: %s\n", c->verb, err);
        ms_otlp_live_end();
        return MS_EXIT_USAGE;
    }
    if (ms_host_start(c->db, c->prices, label, c->argc, c->argv, first_arg, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
        ms_live_metrics_stop();
        ms_otlp_live_end();
        return MS_EXIT_USAGE;
    }
    ms_live_metrics_attach();
    if (ms_otlp_live_start(ms_the_host.tracer, c->db, ms_the_host.run_id, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: live export: %s\n", c->verb, err);
        return ms_lifecycle_end(NULL, MS_END_ERROR, 1);
    }
    ms_the_host.quiet = o->quiet || o->no_timeline;
    ms_host_record(&c->rec);
    if (ms_host_log_start(c->rec.log_path, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
        return ms_lifecycle_end(NULL, MS_END_ERROR, MS_EXIT_USAGE);
    }
    if (ms_host_redaction(&c->rec) != 0) {
        fprintf(stderr, "moonspan %s: out of memory\n", c->verb);
        return ms_lifecycle_end(NULL, MS_END_ERROR, 1);
    }
    lua_State *L = ms_runtime_new();
    if (!L)
        return ms_lifecycle_end(NULL, MS_END_ERROR, 1);
    if (ms_budget_apply(L, &c->budget)) {
        fprintf(stderr, "moonspan %s: out of memory setting the budgets\n", c->verb);
        return ms_lifecycle_end(L, MS_END_ERROR, 1);
    }
    ms_host_calibrate(L); /* before the hook: what span() costs without auto-spans or samples */
    if (o->auto_depth)
        ms_autospans_start(L, (int)o->auto_depth);
    /* last, so that the profiler's calibration and samples see the hook as the script will */
    if (o->profile_hz && ms_profile_start(L, o->profile_hz, !o->quiet, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
        return ms_lifecycle_end(L, MS_END_ERROR, MS_EXIT_USAGE);
    }
    int rc = body(L, ud);
    rc = ms_lifecycle_end(L, ms_interrupted ? MS_END_INTERRUPT : rc ? MS_END_ERROR : MS_END_NORMAL, rc);
    ms_live_metrics_stop(); /* after the writer has stopped feeding it */
    return rc;
}

const char MS_METRICS_ADDR_HELP[] =
    "  --metrics-addr HOST:PORT  serve this process's live Prometheus metrics on\n"
    "                       http://HOST:PORT/metrics while it runs (README: Prometheus metrics)\n";

int ms_cli_metrics_addr(ms_cli *c, ms_run_opts *o)
{
    const char *v;
    if (!ms_cli_value(c, "--metrics-addr", &v))
        return 0;
    struct sockaddr_in sa;
    char err[256];
    if (ms_serve_parse_addr(v, &sa, err, sizeof err))
        ms_cli_usage_error(c, "--metrics-addr %s", err);
    o->metrics_addr = v;
    return 1;
}

typedef struct script_args {
    ms_cli *c;
    const char *script;
    int first_arg;
} script_args;

static int run_script_body(lua_State *L, void *ud)
{
    script_args *a = ud;
    return ms_runtime_run_file(L, a->script, a->c->argc, a->c->argv, a->first_arg);
}

static int run_busted_body(lua_State *L, void *ud)
{
    script_args *a = ud;
    return ms_runtime_run_busted(L, a->c->argc, a->c->argv, a->first_arg);
}

int ms_cmd_run(ms_cli *c)
{
    ms_run_opts o = {.export_allowed = 1};
    while (c->i < c->argc && c->argv[c->i][0] == '-') {
        if (ms_cli_global(c) || ms_cli_profile(c, &o) || ms_cli_auto_spans(c, &o) ||
            ms_cli_metrics_addr(c, &o) || ms_cli_export(c, &o))
            continue;
        if (ms_cli_flag(c, "--quiet") || ms_cli_flag(c, "-q")) {
            o.quiet = 1;
            continue;
        }
        if (ms_cli_record(c) || ms_cli_budget(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            printf(RUN_HELP, MS_METRICS_ADDR_HELP, MS_EXPORT_HELP, MS_RECORD_HELP);
            return 0;
        }
        if (ms_cli_flag(c, "--"))
            break;
        ms_cli_unknown(c);
    }
    if (c->i >= c->argc)
        ms_cli_usage_error(c, "missing SCRIPT, the Lua file to run");
    if (o.auto_depth && c->rec.level < 0)
        c->rec.level = MS_LEVEL_TRACE; /* auto spans are trace-level: asking for them asks for that */
    ms_cli_record_done(c);
    const char *script = c->argv[c->i];
    if (access(script, R_OK) != 0) {
        /* `--profile 500` reads 500 as the script */
        int number = script[0] && strspn(script, "0123456789") == strlen(script);
        fprintf(stderr, "moonspan run: cannot read script %s: %s; check the path%s\n", script, strerror(errno),
                number ? " (a rate or depth goes after '=': --profile=500, --auto-spans=5)" : "");
        return MS_EXIT_USAGE;
    }
    script_args a = {c, script, c->i + 1};
    return ms_run_hosted(c, script, c->i + 1, &o, run_script_body, &a);
}

int ms_cmd_test(ms_cli *c)
{
    /* keep --db/--prices for us; everything else is busted's */
    int first = c->i, out = c->i;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(TEST_HELP, stdout);
            return 0;
        }
        c->argv[out++] = c->argv[c->i++];
    }
    c->argc = out;
    ms_cli_record_done(c); /* test takes none of the options, but $MOONSPAN_LEVEL */
    script_args a = {c, NULL, first};
    ms_run_opts o = {.quiet = 1};
    return ms_run_hosted(c, "moonspan-test", first, &o, run_busted_body, &a);
}
