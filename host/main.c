/* moonspan — write, trace and evaluate LLM agent pipelines in Lua.
 * main() only picks the verb; each verb lives in its own cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: moonspan [--db PATH] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  run SCRIPT [ARGS...]   run a Lua pipeline, tracing every span into the store\n"
    "  report                 the production checklist over stored traces\n"
    "  traces                 the newest traces, one line each\n"
    "  runs                   the runs and eval runs that recorded, with their ids\n"
    "  show TRACE_ID          one trace as a tree of spans\n"
    "  diff A B               is B slower, costlier or failing more than A, with evidence\n"
    "  eval SUITE.lua...      run eval suites: scores, baselines, JUnit, alerts\n"
    "  evals flaky SUITE      the flake ledger: each case's failure rate over recent runs\n"
    "  export otlp [URL]      send stored traces to an OpenTelemetry (OTLP/HTTP) receiver\n"
    "  sql \"SELECT ...\"       one read-only SQL statement over the store (spans included)\n"
    "  serve --otlp/--metrics  receive OpenTelemetry traces (OTLP/HTTP); serve the store's Prometheus metrics\n"
    "  ui [--addr HOST:PORT]  a local web view of traces, checklist, eval runs and comparisons\n"
    "  upgrade                bring a store from an older moonspan to the current layout\n"
    "  test [PATH...]         run busted specs inside the host\n"
    "\n"
    "Global options:\n"
    "  --db PATH       the store (default: $MOONSPAN_DB, else ./moonspan.db)\n"
    "  --prices FILE   extra model prices, overriding the built-in table\n"
    "  --help          this text; `moonspan COMMAND --help` for a command\n"
    "  --version       print the version\n";

int main(int argc, char **argv)
{
    ms_cli c = {.argc = argc, .argv = argv, .i = 1, .rec = {.level = -1, .sampling = {.rate = 1}}};
    c.db = getenv("MOONSPAN_DB");
    if (!c.db || !*c.db)
        c.db = "moonspan.db";
    while (c.i < argc && argv[c.i][0] == '-') {
        if (ms_cli_global(&c))
            continue;
        if (!strcmp(argv[c.i], "--help") || !strcmp(argv[c.i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[c.i], "--version")) {
            printf("moonspan %s\n", MOONSPAN_VERSION);
            return 0;
        }
        ms_cli_unknown(&c);
    }
    if (c.i >= argc) {
        fputs(USAGE, stderr);
        return MS_EXIT_USAGE;
    }
    static const struct {
        const char *name;
        int (*fn)(ms_cli *);
    } verbs[] = {
        {"run", ms_cmd_run}, {"report", ms_cmd_report}, {"traces", ms_cmd_traces},
        {"show", ms_cmd_show}, {"test", ms_cmd_test}, {"eval", ms_cmd_eval}, {"evals", ms_cmd_evals},
        {"sql", ms_cmd_sql}, {"upgrade", ms_cmd_upgrade}, {"runs", ms_cmd_runs},
        {"diff", ms_cmd_diff}, {"export", ms_cmd_export}, {"serve", ms_cmd_serve},
        {"ui", ms_cmd_ui},
    };
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
        if (strcmp(argv[c.i], verbs[v].name) == 0) {
            c.verb = verbs[v].name;
            c.i++;
            return verbs[v].fn(&c);
        }
    }
    fprintf(stderr, "moonspan: unknown command '%s'; commands are run, eval, evals, report, traces, runs, show,"
                     " diff, export, sql, serve, ui, upgrade, test "
                    "(see `moonspan --help`)\n", argv[c.i]);
    return MS_EXIT_USAGE;
}
