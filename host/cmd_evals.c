/* `moonspan evals`: read-only views of the stored eval runs. One
 * subcommand so far, `flaky` (the flake ledger, telemetry/ms_flaky.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_flaky.h"
#include "ms_store.h"

static const char EVALS_HELP[] =
    "usage: moonspan evals flaky SUITE [--runs N] [--json] [--db PATH]\n"
    "\n"
    "The flake ledger of SUITE (its name, as in suite \"NAME\"): each case over\n"
    "the suite's last N finished eval runs: attempts (every repeat), passes,\n"
    "the failure rate with its 95% Wilson interval, and whether the case is\n"
    "flaky (it both passed and failed) or newly flaky (flaky only once the\n"
    "latest run is counted). Most flaky first.\n"
    "\n"
    "  --runs N   the window: the last N finished runs (default 10)\n"
    "  --json     one JSON object instead of text\n"
    "\n"
    "Exit status: 0 written; 1 the store could not be read; 2 bad usage, a\n"
    "store that cannot be opened, or a suite with no finished run (the message\n"
    "lists the suites there are).\n";

static int usage_help(ms_cli *c)
{
    if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
        fputs(EVALS_HELP, stdout);
        return 1;
    }
    return 0;
}

int ms_cmd_evals(ms_cli *c)
{
    ms_flaky_opts o = {.runs = MS_FLAKY_RUNS};
    const char *v, *sub = NULL;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (usage_help(c))
            return 0;
        if (ms_cli_value(c, "--runs", &v))
            o.runs = (int)ms_cli_long(c, "--runs", v, 1, 100000);
        else if (ms_cli_flag(c, "--json"))
            o.json = 1;
        else if (c->argv[c->i][0] == '-' && c->argv[c->i][1])
            ms_cli_unknown(c);
        else if (!sub)
            sub = c->argv[c->i++];
        else if (!o.suite)
            o.suite = c->argv[c->i++];
        else
            ms_cli_unknown(c);
    }
    if (!sub)
        ms_cli_usage_error(c, "missing the subcommand: moonspan evals flaky SUITE");
    if (strcmp(sub, "flaky") != 0)
        ms_cli_usage_error(c, "unknown subcommand '%s'; the one there is: flaky (moonspan evals flaky SUITE)", sub);
    if (!o.suite || !*o.suite)
        ms_cli_usage_error(c, "missing SUITE, the suite's name as in suite \"NAME\" (moonspan evals flaky NAME)");
    ms_cli_refuse_prices(c);
    ms_store *s = ms_cli_open_read(c);
    if (!s)
        return MS_EXIT_USAGE;
    char err[2048];
    int rc = ms_flaky_write(ms_store_db(s), &o, stdout, err, sizeof err);
    c->verb = "evals flaky"; /* its messages name the subcommand, as before */
    int status = ms_cli_finish_view(c, s, rc, err);
    return rc == 1 ? MS_EXIT_USAGE : status; /* rc 1: the suite named is not there, bad input */
}
