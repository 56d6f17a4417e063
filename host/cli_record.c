/* cli_record — the options that choose what a run records: span levels,
 * folding, sampling. Shared by `run` and `eval`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char MS_RECORD_HELP[] =
    "  --level LEVEL   record spans up to LEVEL: info (default), debug or trace;\n"
    "                  also $MOONSPAN_LEVEL, and moonspan.set_level() in the script\n"
    "  --fold N        after N spans of one name under one parent, fold the\n"
    "                  rest into one record (count, total, extremes, histogram)\n"
    "  --sample RATE   keep the spans of this share of traces (0 < RATE <= 1),\n"
    "                  chosen by trace id; the others keep their summary only\n"
    "  --keep RULES    keep more when sampling, comma-separated: errors (always),\n"
    "                  slower=DURATION, costlier=USD, slowest=PERCENT%\n"
    "  --capture-content  store prompts and responses of llm.call on its span\n"
    "                  (redacted, 16 KiB each at most); also $MOONSPAN_CAPTURE_CONTENT=1\n"
    "  --redact REGEX  also mask text matching REGEX (POSIX extended; repeatable)\n"
    "                  in captured content, attributes, events and errors\n"
    "  --log json      one JSON line per ended span and per error on stderr\n"
    "  --log-file PATH the same lines appended to PATH\n";

/* One --keep rule. */
static void keep_rule(ms_cli *c, const char *rule, size_t n)
{
    char buf[128];
    if (n >= sizeof buf)
        ms_cli_usage_error(c, "--keep rule '%.40s...' is too long", rule);
    memcpy(buf, rule, n);
    buf[n] = 0;
    ms_sampling *s = &c->rec.sampling;
    char *eq = strchr(buf, '=');
    const char *v = eq ? eq + 1 : NULL;
    if (eq)
        *eq = 0;
    char *end;
    if (strcmp(buf, "errors") == 0 && !v)
        return; /* always on: named for scripts that want to say so */
    if (strcmp(buf, "slower") == 0 && v) {
        if (ms_parse_duration(v, &s->slower_ns))
            ms_cli_usage_error(c, "--keep slower='%s' is not a duration; give e.g. slower=500ms or slower=2s", v);
        return;
    }
    if (strcmp(buf, "costlier") == 0 && v) {
        s->costlier_usd = strtod(v, &end);
        if (end == v || *end || !(s->costlier_usd > 0 && s->costlier_usd < 1e9))
            ms_cli_usage_error(c, "--keep costlier='%s' is not an amount of dollars above 0; give e.g. costlier=0.01", v);
        return;
    }
    if (strcmp(buf, "slowest") == 0 && v) {
        double pct = strtod(v, &end);
        if (end == v || strcmp(end, "%") != 0 || !(pct > 0 && pct < 100))
            ms_cli_usage_error(c, "--keep slowest='%s' is not a percentage between 0 and 100; give e.g. slowest=5%%", v);
        s->slowest_share = pct / 100;
        return;
    }
    ms_cli_usage_error(c, "--keep rule '%s%s%s' is unknown; rules are errors, slower=DURATION, costlier=USD, "
                          "slowest=PERCENT%%", buf, v ? "=" : "", v ? v : "");
}

int ms_cli_record(ms_cli *c)
{
    const char *v;
    ms_record_opts *r = &c->rec;
    if (ms_cli_capture(c))
        return 1;
    if (ms_cli_value(c, "--level", &v)) {
        if ((r->level = ms_parse_level(v)) < 0)
            ms_cli_usage_error(c, "--level '%s' is not a level; give info, debug or trace", v);
        return 1;
    }
    if (ms_cli_value(c, "--fold", &v)) {
        r->fold_above = (uint32_t)ms_cli_long(c, "--fold", v, 1, 1000000000L);
        return 1;
    }
    if (ms_cli_value(c, "--sample", &v)) {
        char *end;
        double rate = strtod(v, &end);
        if (end == v || *end || !(rate > 0 && rate <= 1))
            ms_cli_usage_error(c, "--sample '%s' is not a share of traces above 0 and up to 1; give e.g. 0.1 "
                                  "to keep the spans of one trace in ten", v);
        r->sampling.rate = rate;
        return 1;
    }
    if (ms_cli_value(c, "--keep", &v)) {
        r->keep_given = 1;
        for (const char *p = v;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (n == 0)
                ms_cli_usage_error(c, "--keep '%s' has an empty rule; separate rules with single commas", v);
            keep_rule(c, p, n);
            if (!comma)
                break;
            p = comma + 1;
        }
        return 1;
    }
    return 0;
}

void ms_cli_record_done(ms_cli *c)
{
    ms_record_opts *r = &c->rec;
    const char *capture = getenv("MOONSPAN_CAPTURE_CONTENT");
    if (!r->capture && capture && *capture) {
        if (strcmp(capture, "1") != 0 && strcmp(capture, "0") != 0)
            ms_cli_usage_error(c, "MOONSPAN_CAPTURE_CONTENT='%s' is not 1 or 0; set it to 1 to store prompts and "
                                  "responses, or unset it", capture);
        r->capture = capture[0] == '1';
    }
    if (r->keep_given && !ms_sampling_on(&r->sampling))
        ms_cli_usage_error(c, "--keep adds to what --sample keeps, and every trace is kept without it; "
                              "give --sample RATE too (e.g. --sample 0.1)");
    if (r->level < 0) {
        const char *env = getenv("MOONSPAN_LEVEL");
        if (env && *env) {
            if ((r->level = ms_parse_level(env)) < 0)
                ms_cli_usage_error(c, "MOONSPAN_LEVEL='%s' is not a level; set it to info, debug or trace, "
                                      "or unset it", env);
        } else {
            r->level = 0;
        }
    }
}
