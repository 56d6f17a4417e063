/* `moonspan diff A B`: the command line of ms_diff (telemetry/ms_diff.h),
 * and the grammar of its two sides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ms_clock.h"
#include "ms_diff.h"
#include "ms_stats.h"
#include "ms_store.h"

static const char DIFF_HELP[] =
    "usage: moonspan diff [OPTIONS] A B\n"
    "\n"
    "Compares the traces of B against those of A: request latency p50 and p95,\n"
    "tokens and cost per request, error rate and LLM-call failure rate, and each\n"
    "step's p50 and p95, every difference B - A with its 95% interval. A row says\n"
    "slower/faster, costlier/cheaper or more/fewer errors only when its interval\n"
    "excludes 0, else \"no evidence\"; with fewer than 5 values on a side, \"too few\".\n"
    "\n"
    "A and B are each one of:\n"
    "  run:ID or ID      the traces of one `moonspan run`/`eval` process (runs.id)\n"
    "  eval:ID           the case traces of one eval run (eval_runs.id)\n"
    "  last, last~N      the newest run, or the run N before it\n"
    "  SINCE..UNTIL      traces started from SINCE ago until UNTIL ago: 14d..7d,\n"
    "                    7d.. (until now), ..1h (until an hour ago)\n"
    "  GLOB              traces whose name matches, e.g. 'answer_v2*'\n"
    "\n"
    "  --by path|name        steps by path (default) or by span name, as in report\n"
    "  --by user|session     request rows per user or per session (the traces given\n"
    "                        none as one row, (none)) instead of per trace name;\n"
    "                        cost per user, A against B\n"
    "  --steps N|all         list the N most changed steps (text default 20; --json all)\n"
    "  --fail-if LIST        exit 1 when a row shows evidence of any of: slower,\n"
    "                        costlier, errors (comma-separated)\n"
    "  --min-change PCT      a latency, token or cost change under PCT% of A's value\n"
    "                        is \"negligible\", not a verdict (default 5; 0 off)\n"
    "  --seed N              the bootstrap's seed (default 1): same seed, same output\n"
    "  --resamples N         bootstrap resamples, 100 to 100000 (default 2000)\n"
    "  --json                one JSON object instead of text (durations in ms)\n"
    "Narrowing both sides:\n";

static const char DIFF_HELP_END[] =
    "\n"
    "Exit status: 0; 1 when --fail-if matched (or the store cannot be read);\n"
    "2 for bad usage, an unknown id or a side with no traces.\n";

static const char SIDES[] = "give a run id (run:3 or 3), eval:ID, last or last~N, a window"
                            " like 14d..7d or 7d.., or a trace-name glob like 'answer_*'";

/* A side's id after `prefix`: a whole number from 1, or exit 2. */
static int64_t side_id(ms_cli *c, const char *which, const char *arg, const char *v,
                       const char *what)
{
    long n;
    if (ms_parse_long(v, 1, INT64_MAX, &n))
        ms_cli_usage_error(c, "side %s '%s': '%s' is not %s id; give a whole number from 1", which,
                           arg, v, what);
    return n;
}

/* One end of a window: empty (open) or a duration ago. */
static int64_t window_end(ms_cli *c, const char *which, const char *arg, const char *v,
                          size_t len, int64_t now)
{
    if (len == 0)
        return 0;
    char d[64];
    int64_t ns;
    if (len >= sizeof d || (memcpy(d, v, len), d[len] = 0, ms_parse_duration(d, &ns)))
        ms_cli_usage_error(c, "side %s '%s': '%.*s' is not a duration ago; a window is"
                              " SINCE..UNTIL with durations like 90s, 30m, 24h, 7d, 2w (e.g. 14d..7d)",
                           which, arg, (int)(len > 40 ? 40 : len), v);
    return now - ns;
}

/* Parses side `which` ("A" or "B") from arg, or exits 2 naming the fix. */
static void parse_side(ms_cli *c, const char *which, const char *arg, int64_t now,
                       ms_diff_side *sd)
{
    memset(sd, 0, sizeof *sd);
    sd->arg = arg;
    const char *dots = strstr(arg, "..");
    if (!arg[0]) {
        ms_cli_usage_error(c, "side %s is empty; %s", which, SIDES);
    } else if (strncmp(arg, "run:", 4) == 0) {
        sd->kind = MS_SIDE_RUN;
        sd->id = side_id(c, which, arg, arg + 4, "a run");
    } else if (strncmp(arg, "eval:", 5) == 0) {
        sd->kind = MS_SIDE_EVAL;
        sd->id = side_id(c, which, arg, arg + 5, "an eval run");
    } else if (arg[strspn(arg, "0123456789")] == 0) {
        sd->kind = MS_SIDE_RUN;
        sd->id = side_id(c, which, arg, arg, "a run");
    } else if (strcmp(arg, "last") == 0) {
        sd->kind = MS_SIDE_LAST;
    } else if (strncmp(arg, "last~", 5) == 0) {
        sd->kind = MS_SIDE_LAST;
        long n;
        if (ms_parse_long(arg + 5, 1, 1000000000, &n))
            ms_cli_usage_error(c, "side %s '%s': '%s' is not a number of runs back; give last~1"
                                  " for the run before the newest", which, arg, arg + 5);
        sd->id = n;
    } else if (dots) {
        sd->kind = MS_SIDE_WINDOW;
        const char *until = dots + 2;
        if (dots == arg && !*until)
            ms_cli_usage_error(c, "side %s '..' is a window with no ends; give at least one, e.g."
                                  " 7d.. or 14d..7d", which);
        sd->since_ns = window_end(c, which, arg, arg, (size_t)(dots - arg), now);
        sd->until_ns = window_end(c, which, arg, until, strlen(until), now);
        if (sd->since_ns && sd->until_ns && sd->since_ns >= sd->until_ns)
            ms_cli_usage_error(c, "side %s '%s' starts after it ends; put the further-ago"
                                  " duration first (e.g. 14d..7d)", which, arg);
    } else {
        sd->kind = MS_SIDE_GLOB;
    }
}

/* --fail-if slower,costlier,errors: the MS_DIFF_FAIL_* bits, or exit 2. */
static int fail_if_value(ms_cli *c, const char *v)
{
    int bits = 0;
    const char *p = v;
    do {
        size_t n = strcspn(p, ",");
        if (n == 6 && !strncmp(p, "slower", 6))
            bits |= MS_DIFF_FAIL_SLOWER;
        else if (n == 8 && !strncmp(p, "costlier", 8))
            bits |= MS_DIFF_FAIL_COSTLIER;
        else if (n == 6 && !strncmp(p, "errors", 6))
            bits |= MS_DIFF_FAIL_ERRORS;
        else
            ms_cli_usage_error(c, "--fail-if '%s': '%.*s' is not a condition; give any of slower,"
                                  " costlier, errors, comma-separated (e.g. --fail-if slower,errors)",
                               v, (int)(n > 40 ? 40 : n), p);
        p += n;
    } while (*p++ == ',');
    return bits;
}

/* --min-change PCT: a percentage from 0 to 1000, or exit 2. */
static double min_change_value(ms_cli *c, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || (*end && strcmp(end, "%")) || !(x >= 0 && x <= 1000))
        ms_cli_usage_error(c, "--min-change '%s' is not a percentage; give one from 0 to 1000,"
                              " e.g. --min-change 5 (0: every change the interval shows counts)", v);
    return x / 100;
}

int ms_cmd_diff(ms_cli *c)
{
    ms_diff_opts o = {.seed = MS_STATS_SEED, .resamples = MS_STATS_RESAMPLES,
                      .min_change = MS_DIFF_MIN_CHANGE};
    const char *sides[2] = {NULL, NULL};
    int nsides = 0;
    const char *v;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(DIFF_HELP, stdout);
            fputs(MS_SELECT_HELP, stdout);
            fputs(DIFF_HELP_END, stdout);
            return 0;
        }
        if (ms_cli_select(c, &o.narrow))
            continue;
        if (ms_cli_flag(c, "--json")) {
            o.json = 1;
        } else if (ms_cli_value(c, "--by", &v)) {
            if (strcmp(v, "path") && strcmp(v, "name") && strcmp(v, "user") && strcmp(v, "session"))
                ms_cli_usage_error(c, "--by '%s' is not a grouping; use --by path or --by name (steps),"
                                      " or --by user or --by session (requests)", v);
            o.steps_by_name = strcmp(v, "name") == 0;
            o.rows_by = !strcmp(v, "user")      ? MS_DIFF_ROWS_USER
                        : !strcmp(v, "session") ? MS_DIFF_ROWS_SESSION
                                                : MS_DIFF_ROWS_NAME;
        } else if (ms_cli_value(c, "--steps", &v)) {
            o.max_steps = strcmp(v, "all") == 0 ? -1 : ms_cli_long(c, "--steps", v, 1, 1000000000);
        } else if (ms_cli_value(c, "--fail-if", &v)) {
            o.fail_if = fail_if_value(c, v);
        } else if (ms_cli_value(c, "--min-change", &v)) {
            o.min_change = min_change_value(c, v);
        } else if (ms_cli_value(c, "--seed", &v)) {
            o.seed = (uint64_t)ms_cli_long(c, "--seed", v, 0, INT64_MAX);
        } else if (ms_cli_value(c, "--resamples", &v)) {
            o.resamples = (int)ms_cli_long(c, "--resamples", v, 100, 100000);
        } else if (c->argv[c->i][0] != '-' || c->argv[c->i][1] == '.' || c->argv[c->i][1] == 0) {
            /* a side: anything not an option ("..1h" and "-" included) */
            if (nsides == 2)
                ms_cli_usage_error(c, "a third side '%s'; diff compares two, A and B (e.g."
                                      " `moonspan diff run:3 run:4`)", c->argv[c->i]);
            sides[nsides++] = c->argv[c->i++];
        } else {
            ms_cli_unknown(c);
        }
    }
    if (nsides < 2)
        ms_cli_usage_error(c, "diff needs two sides, A and B, and got %d; %s (e.g. `moonspan diff"
                              " run:3 run:4`)", nsides, SIDES);
    ms_cli_refuse_prices(c);
    ms_clock_init();
    int64_t now = ms_epoch_ns();
    parse_side(c, "A", sides[0], now, &o.side[0]);
    parse_side(c, "B", sides[1], now, &o.side[1]);

    ms_store *s = ms_cli_open_read(c);
    if (!s)
        return MS_EXIT_USAGE;
    char err[1024];
    int failed = 0;
    int rc = ms_diff_write(ms_store_db(s), &o, stdout, &failed, err, sizeof err);
    int status = ms_cli_finish_view(c, s, rc, err);
    return rc == MS_DIFF_BAD_SIDE ? MS_EXIT_USAGE : status != 0 ? status : failed;
}
