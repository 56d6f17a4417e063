#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void ms_cli_usage_error(ms_cli *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "moonspan%s%s: ", c->verb ? " " : "", c->verb ? c->verb : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see `moonspan%s%s --help`\n", c->verb ? " " : "", c->verb ? c->verb : "");
    exit(MS_EXIT_USAGE);
}

int ms_cli_value(ms_cli *c, const char *name, const char **value)
{
    const char *a = c->argv[c->i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        c->i++;
        return 1;
    }
    if (a[n] != 0)
        return 0;
    if (c->i + 1 >= c->argc)
        ms_cli_usage_error(c, "%s needs a value", name);
    *value = c->argv[c->i + 1];
    c->i += 2;
    return 1;
}

int ms_cli_flag(ms_cli *c, const char *name)
{
    if (strcmp(c->argv[c->i], name) != 0)
        return 0;
    c->i++;
    return 1;
}

int ms_cli_global(ms_cli *c)
{
    return ms_cli_value(c, "--db", &c->db) || ms_cli_value(c, "--prices", &c->prices);
}

/* "--name" (*value NULL) or "--name=V". Returns 1 and advances when
 * argv[c->i] is either. */
static int optional_value(ms_cli *c, const char *name, const char **value)
{
    const char *a = c->argv[c->i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != 0 && a[n] != '='))
        return 0;
    *value = a[n] ? a + n + 1 : NULL;
    c->i++;
    return 1;
}

/* "--name" gives *out the default, "--name=N" a whole number N from 1 to
 * max; any other N is a usage error saying what N is and where it goes. */
static int optional_long(ms_cli *c, const char *name, long deflt, long max, const char *what,
                         const char *alone, long *out)
{
    const char *v;
    if (!optional_value(c, name, &v))
        return 0;
    *out = deflt;
    if (v && ms_parse_long(v, 1, max, out))
        ms_cli_usage_error(c, "%s=%s is not %s, a whole number from 1 to %ld (%s alone %s %ld)",
                           name, v, what, max, name, alone, deflt);
    return 1;
}

int ms_cli_profile(ms_cli *c, ms_run_opts *o)
{
    return optional_long(c, "--profile", MS_PROFILE_HZ_DEFAULT, MS_PROFILE_HZ_MAX,
                         "a sampling rate; give samples per second of CPU time", "samples at", &o->profile_hz);
}

int ms_cli_auto_spans(ms_cli *c, ms_run_opts *o)
{
    return optional_long(c, "--auto-spans", MS_AUTO_DEPTH_DEFAULT, MS_AUTO_DEPTH_MAX,
                         "a depth; give how many nested calls to record as spans", "records", &o->auto_depth);
}

_Noreturn void ms_cli_unknown(ms_cli *c)
{
    const char *a = c->argv[c->i];
    if (a[0] == '-')
        ms_cli_usage_error(c, "unknown option %s", a);
    ms_cli_usage_error(c, "unexpected argument '%s'", a);
}

/* --- value parsers ------------------------------------------------------
 * Pure: they print nothing and never exit, so tests/fuzz/fuzz_cli.c can
 * call them; the ms_cli_* wrappers turn a refusal into a usage error. */

int ms_parse_long(const char *v, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

int ms_parse_duration(const char *v, int64_t *ns)
{
    char *end;
    errno = 0;
    double n = strtod(v, &end);
    double unit = 0;
    if (end != v && !errno && n > 0 && end[0] && !end[1]) {
        switch (end[0]) {
        case 's': unit = 1e9; break;
        case 'm': unit = 60e9; break;
        case 'h': unit = 3600e9; break;
        case 'd': unit = 86400e9; break;
        case 'w': unit = 7 * 86400e9; break;
        }
    } else if (end != v && !errno && n > 0 && strcmp(end, "ms") == 0) {
        unit = 1e6;
    } else if (end != v && !errno && n > 0 && strcmp(end, "us") == 0) {
        unit = 1e3;
    }
    /* Bounded as a double, before the cast: a double beyond int64_t does
     * not convert (undefined behaviour), and one under 1 ns would become
     * a zero that no positive duration should give. */
    double d = n * unit;
    if (!(d >= 1 && d <= (double)MS_DURATION_MAX_NS))
        return -1;
    *ns = (int64_t)d;
    return 0;
}

int ms_parse_fraction(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0 && x <= 1))
        return -1;
    *out = x;
    return 0;
}

int ms_parse_level(const char *v)
{
    static const char *const names[] = {"info", "debug", "trace"};
    for (int i = 0; i < 3; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

const char *ms_level_name(int level)
{
    static const char *const names[] = {"info", "debug", "trace"};
    return level >= 0 && level < 3 ? names[level] : "?";
}

long ms_cli_long(ms_cli *c, const char *opt, const char *v, long min, long max)
{
    long n;
    if (ms_parse_long(v, min, max, &n))
        ms_cli_usage_error(c, "%s '%s' is not a whole number from %ld to %ld", opt, v, min, max);
    return n;
}

int64_t ms_cli_duration(ms_cli *c, const char *opt, const char *v)
{
    int64_t ns;
    if (ms_parse_duration(v, &ns))
        ms_cli_usage_error(c, "%s '%s' is not a duration; give a number and a unit "
                              "(us, ms, s, m, h, d, w), e.g. 500ms, 30m, 24h or 7d, up to 5200w", opt, v);
    return ns;
}
