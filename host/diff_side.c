/* diff_side — a `moonspan diff` side from its text (see diff_side.h). */
#include "diff_side.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_buf.h"

const char MS_DIFF_SIDES[] = "give a run id (run:3 or 3), eval:ID, last or last~N, a window"
                             " like 14d..7d or 7d.., or a trace-name glob like 'answer_*'";

/* A side's id after its prefix: a whole number from 1. */
static int side_id(const char *which, const char *arg, const char *v, const char *what, int64_t *id,
                   char *err, size_t errlen)
{
    long n;
    if (ms_parse_long(v, 1, INT64_MAX, &n))
        return ms_errf(err, errlen, "side %s '%s': '%s' is not %s id; give a whole number from 1", which, arg, v,
                       what);
    *id = n;
    return 0;
}

/* One end of a window: empty (open, 0) or a duration ago. */
static int window_end(const char *which, const char *arg, const char *v, size_t len, int64_t now, int64_t *at,
                      char *err, size_t errlen)
{
    *at = 0;
    if (len == 0)
        return 0;
    char d[64];
    int64_t ns;
    if (len >= sizeof d || (memcpy(d, v, len), d[len] = 0, ms_parse_duration(d, &ns)))
        return ms_errf(err, errlen, "side %s '%s': '%.*s' is not a duration ago; a window is"
                       " SINCE..UNTIL with durations like 90s, 30m, 24h, 7d, 2w (e.g. 14d..7d)",
                       which, arg, (int)(len > 40 ? 40 : len), v);
    *at = now - ns;
    return 0;
}

int ms_diff_side_parse(const char *which, const char *arg, int64_t now, ms_diff_side *sd, char *err,
                       size_t errlen)
{
    memset(sd, 0, sizeof *sd);
    sd->arg = arg;
    const char *dots = strstr(arg, "..");
    if (!arg[0])
        return ms_errf(err, errlen, "side %s is empty; %s", which, MS_DIFF_SIDES);
    if (strncmp(arg, "run:", 4) == 0) {
        sd->kind = MS_SIDE_RUN;
        return side_id(which, arg, arg + 4, "a run", &sd->id, err, errlen);
    }
    if (strncmp(arg, "eval:", 5) == 0) {
        sd->kind = MS_SIDE_EVAL;
        return side_id(which, arg, arg + 5, "an eval run", &sd->id, err, errlen);
    }
    if (arg[strspn(arg, "0123456789")] == 0) {
        sd->kind = MS_SIDE_RUN;
        return side_id(which, arg, arg, "a run", &sd->id, err, errlen);
    }
    if (strcmp(arg, "last") == 0) {
        sd->kind = MS_SIDE_LAST;
        return 0;
    }
    if (strncmp(arg, "last~", 5) == 0) {
        sd->kind = MS_SIDE_LAST;
        long n;
        if (ms_parse_long(arg + 5, 1, 1000000000, &n))
            return ms_errf(err, errlen, "side %s '%s': '%s' is not a number of runs back; give last~1"
                           " for the run before the newest", which, arg, arg + 5);
        sd->id = n;
        return 0;
    }
    if (dots) {
        sd->kind = MS_SIDE_WINDOW;
        const char *until = dots + 2;
        if (dots == arg && !*until)
            return ms_errf(err, errlen, "side %s '..' is a window with no ends; give at least one, e.g."
                           " 7d.. or 14d..7d", which);
        if (window_end(which, arg, arg, (size_t)(dots - arg), now, &sd->since_ns, err, errlen) ||
            window_end(which, arg, until, strlen(until), now, &sd->until_ns, err, errlen))
            return -1;
        if (sd->since_ns && sd->until_ns && sd->since_ns >= sd->until_ns)
            return ms_errf(err, errlen, "side %s '%s' starts after it ends; put the further-ago"
                           " duration first (e.g. 14d..7d)", which, arg);
        return 0;
    }
    sd->kind = MS_SIDE_GLOB;
    return 0;
}
