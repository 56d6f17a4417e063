/* cli_select — the options that choose which traces a view reads
 * (ms_select.h), parsed the same way for report, traces and diff. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_clock.h"

const char MS_SELECT_HELP[] =
    "  --since DURATION  only traces started within DURATION ago (30m, 24h, 7d, 2w)\n"
    "  --until DURATION  only traces started more than DURATION ago (with --since:\n"
    "                    a window, e.g. --since 2d --until 1d is yesterday)\n"
    "  --name GLOB       only traces whose name matches GLOB (e.g. 'answer_*')\n"
    "  --run ID          only the traces of run ID (`moonspan runs` lists them)\n"
    "  --eval-run ID     only the case traces of eval run ID\n"
    "  --evals MODE      exclude (default), include or only: eval traces (those of\n"
    "                    `moonspan eval`) are left out of production numbers unless\n"
    "                    asked, or unless --run/--eval-run picks them\n"
    "  --attr KEY=VALUE  only traces whose root span has attribute KEY equal to\n"
    "                    VALUE, compared as text; repeat to require several\n"
    "  --user ID         only traces of user ID (trace's user option)\n"
    "  --session ID      only traces of session ID (trace's session option)\n"
    "  --tag TAG         only traces tagged TAG (trace's tags option); repeat to\n"
    "                    require several\n";

/* "Now" read once per command, so --since and --until given as the same
 * duration name the same instant. */
static int64_t now_ns(void)
{
    static int64_t now;
    if (!now) {
        ms_clock_init();
        now = ms_epoch_ns();
    }
    return now;
}

/* Refuses combinations that select nothing by construction, whichever
 * order their options came in. */
static void cross_check(ms_cli *c, const ms_select *s)
{
    if (s->since_ns && s->until_ns && s->until_ns <= s->since_ns)
        ms_cli_usage_error(c, "--until must be a shorter time ago than --since (the window runs from"
                              " --since ago to --until ago); e.g. --since 2d --until 1d");
    if (s->eval_run && s->evals == MS_EVALS_EXCLUDE)
        ms_cli_usage_error(c, "--eval-run selects eval traces and --evals exclude leaves them out;"
                              " drop --evals exclude");
}

int ms_cli_select(ms_cli *c, ms_select *s)
{
    const char *v;
    if (ms_cli_value(c, "--since", &v)) {
        s->since_ns = now_ns() - ms_cli_duration(c, "--since", v);
    } else if (ms_cli_value(c, "--until", &v)) {
        s->until_ns = now_ns() - ms_cli_duration(c, "--until", v);
    } else if (ms_cli_value(c, "--name", &v)) {
        s->name_glob = v;
    } else if (ms_cli_value(c, "--run", &v)) {
        long n;
        if (ms_parse_long(v, 1, LONG_MAX, &n))
            ms_cli_usage_error(c, "--run '%s' is not a run id; give a number from `moonspan runs`", v);
        s->run_id = n;
    } else if (ms_cli_value(c, "--eval-run", &v)) {
        long n;
        if (ms_parse_long(v, 1, LONG_MAX, &n))
            ms_cli_usage_error(c, "--eval-run '%s' is not an eval run id; give a number from"
                                  " `moonspan runs` (the eval runs nested under a process)", v);
        s->eval_run = n;
    } else if (ms_cli_value(c, "--evals", &v)) {
        if (!strcmp(v, "exclude"))
            s->evals = MS_EVALS_EXCLUDE;
        else if (!strcmp(v, "include"))
            s->evals = MS_EVALS_INCLUDE;
        else if (!strcmp(v, "only"))
            s->evals = MS_EVALS_ONLY;
        else
            ms_cli_usage_error(c, "--evals '%s' is not a mode; use --evals exclude, include or only", v);
    } else if (ms_cli_value(c, "--attr", &v)) {
        char err[256];
        /* argv's strings belong to the program (C11 5.1.2.2.1): the key is
         * cut at '=' in place, and argv outlives the selection */
        if (ms_select_add_attr(s, (char *)v, err, sizeof err))
            ms_cli_usage_error(c, "%s", err);
    } else if (ms_cli_value(c, "--user", &v)) {
        if (!*v)
            ms_cli_usage_error(c, "--user is empty; give the user id traces were given, e.g. --user u7");
        s->user = v;
    } else if (ms_cli_value(c, "--session", &v)) {
        if (!*v)
            ms_cli_usage_error(c, "--session is empty; give the session id traces were given,"
                                  " e.g. --session s1");
        s->session = v;
    } else if (ms_cli_value(c, "--tag", &v)) {
        char err[256];
        if (ms_select_add_tag(s, v, err, sizeof err))
            ms_cli_usage_error(c, "%s", err);
    } else {
        return 0;
    }
    cross_check(c, s);
    return 1;
}
