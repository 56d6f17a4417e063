/* cli_select — the options that choose which traces a view reads
 * (ms_select.h), parsed the same way for report, traces and diff. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ms_clock.h"

const char MS_SELECT_HELP[] =
    "  --since WHEN      only traces started within WHEN ago (30m, 24h, 7d, 2w), or\n"
    "                    since a UTC date (2026-11-01, 2026-11-01T12:00:00Z)\n"
    "  --until WHEN      only traces started more than WHEN ago, or before a UTC\n"
    "                    date (with --since: a window, e.g. --since 2d --until 1d\n"
    "                    is yesterday)\n"
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

/* A UTC date or date and time: 2026-11-01, 2026-11-01T12:30[:45[.123]][Z]
 * (a space for the T too). 0 with *ns, or -1. */
static int parse_date(const char *v, int64_t *ns)
{
    int y, mo, d, h = 0, mi = 0, n = 0;
    double sec = 0;
    if (sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    const char *p = v + n;
    if (*p == 'T' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
            return -1;
        p += 1 + m;
        if (*p == ':') {
            char *end;
            sec = strtod(p + 1, &end);
            if (end == p + 1 || !(sec >= 0 && sec < 61))
                return -1;
            p = end;
        }
        if (*p == 'Z')
            p++;
    }
    if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* 2026-02-30 rolls over into March */
        return -1;
    if (t >= INT64_MAX / 1000000000 - 1) /* epoch nanoseconds end in 2262 */
        return -1;
    *ns = (int64_t)t * 1000000000 + (int64_t)(sec * 1e9);
    return 0;
}

int ms_select_param(ms_select *s, const char *key, const char *shown, char *v, char *err, size_t errlen)
{
    if (!strcmp(key, "since") || !strcmp(key, "until")) {
        int64_t ns, at;
        if (!ms_parse_duration(v, &ns))
            at = now_ns() - ns;
        else if (parse_date(v, &at))
            return ms_errf(err, errlen, "%s '%s' is not a duration; give a number and a unit (us, ms, s, m,"
                                        " h, d, w), e.g. 30m, 24h or 7d ago, or a UTC date such as 2026-11-01"
                                        " or 2026-11-01T12:00:00Z", shown, v);
        *(key[0] == 's' ? &s->since_ns : &s->until_ns) = at;
    } else if (!strcmp(key, "name")) {
        s->name_glob = v;
    } else if (!strcmp(key, "run")) {
        long n;
        if (ms_parse_long(v, 1, LONG_MAX, &n))
            return ms_errf(err, errlen, "%s '%s' is not a run id; give a number from `moonspan runs`", shown, v);
        s->run_id = n;
    } else if (!strcmp(key, "eval_run")) {
        long n;
        if (ms_parse_long(v, 1, LONG_MAX, &n))
            return ms_errf(err, errlen, "%s '%s' is not an eval run id; give a number from `moonspan runs`"
                                        " (the eval runs nested under a process)", shown, v);
        s->eval_run = n;
    } else if (!strcmp(key, "evals")) {
        if (!strcmp(v, "exclude"))
            s->evals = MS_EVALS_EXCLUDE;
        else if (!strcmp(v, "include"))
            s->evals = MS_EVALS_INCLUDE;
        else if (!strcmp(v, "only"))
            s->evals = MS_EVALS_ONLY;
        else
            return ms_errf(err, errlen, "%s '%s' is not a mode; use %s exclude, include or only", shown, v,
                           shown);
    } else if (!strcmp(key, "attr")) {
        if (ms_select_add_attr(s, v, err, errlen))
            return -1;
    } else if (!strcmp(key, "user")) {
        if (!*v)
            return ms_errf(err, errlen, "%s is empty; give the user id traces were given, e.g. %s u7", shown,
                           shown);
        s->user = v;
    } else if (!strcmp(key, "session")) {
        if (!*v)
            return ms_errf(err, errlen, "%s is empty; give the session id traces were given, e.g. %s s1",
                           shown, shown);
        s->session = v;
    } else if (!strcmp(key, "tag")) {
        if (ms_select_add_tag(s, v, err, errlen))
            return -1;
    } else {
        return 1;
    }
    /* Refuses combinations that select nothing by construction, whichever
     * order their parameters came in. */
    if (s->since_ns && s->until_ns && s->until_ns <= s->since_ns)
        return ms_errf(err, errlen, "--until must be a shorter time ago than --since (the window runs from"
                                    " --since ago to --until ago); e.g. --since 2d --until 1d");
    if (s->eval_run && s->evals == MS_EVALS_EXCLUDE)
        return ms_errf(err, errlen, "--eval-run selects eval traces and --evals exclude leaves them out;"
                                    " drop --evals exclude");
    return 0;
}

int ms_cli_select(ms_cli *c, ms_select *s)
{
    static const struct {
        const char *flag, *key;
    } flags[] = {
        {"--since", "since"}, {"--until", "until"}, {"--name", "name"}, {"--run", "run"},
        {"--eval-run", "eval_run"}, {"--evals", "evals"}, {"--attr", "attr"}, {"--user", "user"},
        {"--session", "session"}, {"--tag", "tag"},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const char *v;
        if (!ms_cli_value(c, flags[i].flag, &v))
            continue;
        char err[512];
        /* argv's strings belong to the program (C11 5.1.2.2.1): --attr's
         * key is cut at '=' in place, and argv outlives the selection */
        if (ms_select_param(s, flags[i].key, flags[i].flag, (char *)v, err, sizeof err))
            ms_cli_usage_error(c, "%s", err);
        return 1;
    }
    return 0;
}
