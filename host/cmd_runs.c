/* `moonspan runs`: the processes that wrote to the store, newest first. */
#include <stdio.h>

#include "cli.h"
#include "ms_clock.h"
#include "ms_runs.h"
#include "ms_store.h"

static const char RUNS_HELP[] =
    "usage: moonspan runs [--limit N] [--since DURATION] [--json] [--db PATH]\n"
    "\n"
    "The processes that recorded into the store, newest first, one line each:\n"
    "id, command (run, eval or test), script, start, duration, traces, and how\n"
    "many of them ended in error, were interrupted or incomplete. Under an eval\n"
    "process, each eval run: its id, suite, cases, pass rate and status. The ids\n"
    "are what --run and --eval-run of report, traces and diff take.\n"
    "\n"
    "  --limit N         how many runs (default 20)\n"
    "  --since DURATION  only runs started within DURATION ago (30m, 24h, 7d)\n"
    "  --json            a JSON array instead of text\n";

int ms_cmd_runs(ms_cli *c)
{
    ms_runs_opts o = {.limit = MS_RUNS_DEFAULT_LIMIT};
    const char *v;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(RUNS_HELP, stdout);
            return 0;
        }
        if (ms_cli_value(c, "--limit", &v)) {
            o.limit = ms_cli_long(c, "--limit", v, 1, 1000000);
        } else if (ms_cli_value(c, "--since", &v)) {
            ms_clock_init();
            o.since_ns = ms_epoch_ns() - ms_cli_duration(c, "--since", v);
        } else if (ms_cli_flag(c, "--json")) {
            o.json = 1;
        } else {
            ms_cli_unknown(c);
        }
    }
    ms_cli_refuse_prices(c);
    ms_store *s = ms_cli_open_read(c);
    if (!s)
        return MS_EXIT_USAGE;
    char err[1024];
    int rc = ms_runs_write(ms_store_db(s), &o, stdout, err, sizeof err);
    return ms_cli_finish_view(c, s, rc, err);
}
