/* `moonspan eval`: runs eval suites. The command line is checked here;
 * the suites, scorers and runner are Lua (scripts/eval.lua). */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "ms_store.h"
#include "otlp_live.h"

static const char EVAL_HELP[] =
    "usage: moonspan eval [OPTIONS] SUITE.lua...\n"
    "\n"
    "Runs eval suites: every case of every suite as its own trace\n"
    "(eval:SUITE:CASE), scored, stored next to its spans, and summed up: failed\n"
    "cases with the trace to open with `moonspan show`, pass rate, p50/p95\n"
    "latency and cost per suite, and its gates (checks over all its cases).\n"
    "\n"
    "  --concurrency N         cases in flight at once (default 4)\n"
    "  --repeat K              run every case K times; shows per-case flakiness\n"
    "  --filter GLOB           only cases whose id matches GLOB (* and ?)\n"
    "  --baseline RUN_ID|last  compare with an earlier run of the same suite; last =\n"
    "                          the last one with the same cases (--filter, dataset,\n"
    "                          case ids), preferring the same --repeat. Cases are\n"
    "                          paired by id and repeat: McNemar on pass/fail,\n"
    "                          bootstrap intervals of score, latency and cost\n"
    "                          differences; regressed / improved / no evidence\n"
    "  --fail-under RATE       fail when the pass rate is below RATE (0 to 1)\n"
    "  --fail-if-regressed[=pass,scores,latency,cost|all]\n"
    "                          with --baseline: exit 1 when a paired test shows\n"
    "                          a regression against it (default: pass,scores);\n"
    "                          a change within noise does not fail\n"
    "  --junit FILE            write a JUnit XML report\n"
    "  --alert-webhook URL     POST {\"text\": ...} (Slack-compatible) when a suite\n"
    "                          fails or regresses against the baseline\n"
    "  --record                store every LLM request and response of this run\n"
    "  --replay RUN_ID|last    answer LLM calls from a recorded run, offline;\n"
    "                          replayed calls are timed as they were recorded\n"
    "  --replay-miss fail|live|record\n"
    "                          with --replay, a call the recording lacks: fails\n"
    "                          (default), goes to the provider, or goes to the provider\n"
    "                          and is recorded (this run then replays whole)\n"
    "  --profile[=HZ]          sample the Lua stack HZ times per second of CPU time\n"
    "                          (default 1000): each span's self time per function\n"
    "                          (`moonspan show --profile`, `moonspan report --profile`)\n"
    "  --budget-usd SPEC       stop LLM calls that could overspend, in US dollars:\n"
    "                          X or run=X (the whole eval run), request=X (each\n"
    "                          case), call=X (each llm.call), comma-separated; a\n"
    "                          call that could go over is not sent and fails with\n"
    "                          budget_exceeded (replayed calls spend nothing)\n"
    "  --db PATH, --prices FILE  as for every command\n"
    "%s"
    "%s"
    "%s"
    "\n"
    "Exit status: 0 when every suite reached its threshold (and --fail-under)\n"
    "and passed its gates and, with --fail-if-regressed, did not regress; 1 when\n"
    "one did not; 2 for bad usage or a suite/dataset that cannot be read or is\n"
    "refused (no scorers and no gates, a bad argument). --export failures do\n"
    "not change it.\n";

typedef struct eval_opts {
    int concurrency, repeat, record;
    const char *filter, *baseline, *junit, *webhook, *replay, *replay_miss;
    const char *fail_if_regressed; /* "" for the default metrics; NULL: off */
    double fail_under;
    int has_fail_under;
    int first_file, nfiles;
    ms_cli *c;
} eval_opts;

/* A run reference: "last" or a positive integer id. */
static const char *run_ref(ms_cli *c, const char *opt, const char *v)
{
    if (strcmp(v, "last") != 0)
        ms_cli_long(c, opt, v, 1, 0x7fffffffL);
    return v;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static int eval_body(lua_State *L, void *ud)
{
    eval_opts *o = ud;
    char err[1024];
    ms_store *store;
    /* the host's own connection for the eval tables; the tracer writes spans on its own */
    if (ms_store_open(o->c->db, MS_STORE_WRITE, &store, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan eval: %s\n", err);
        return MS_EXIT_USAGE;
    }
    ms_open_eval_store(L, ms_store_db(store), ms_the_host.run_id);
    lua_createtable(L, 0, 12);
    lua_createtable(L, o->nfiles, 0);
    for (int i = 0; i < o->nfiles; i++) {
        lua_pushstring(L, o->c->argv[o->first_file + i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "files");
    lua_pushinteger(L, o->concurrency);
    lua_setfield(L, -2, "concurrency");
    lua_pushinteger(L, o->repeat);
    lua_setfield(L, -2, "repeat_count");
    set_str(L, "filter", o->filter);
    set_str(L, "baseline", o->baseline);
    set_str(L, "junit", o->junit);
    set_str(L, "alert_webhook", o->webhook);
    set_str(L, "replay", o->replay);
    set_str(L, "replay_miss", o->replay_miss);
    set_str(L, "fail_if_regressed", o->fail_if_regressed);
    lua_pushboolean(L, o->record);
    lua_setfield(L, -2, "record");
    if (o->has_fail_under) {
        lua_pushnumber(L, o->fail_under);
        lua_setfield(L, -2, "fail_under");
    }
    lua_pushboolean(L, isatty(2));
    lua_setfield(L, -2, "tty");
    int rc = ms_runtime_call_main(L, "moonspan.eval");
    ms_close_eval_store(L);
    ms_store_close(store);
    return rc;
}

int ms_cmd_eval(ms_cli *c)
{
    eval_opts o = {.concurrency = 4, .repeat = 1, .c = c};
    ms_run_opts ro = {.no_timeline = 1, .export_allowed = 1}; /* eval prints its own summary */
    const char *v;
    int files_start = -1;
    /* options and files may mix; files are collected in place */
    int out = c->i;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            printf(EVAL_HELP, MS_METRICS_ADDR_HELP, MS_EXPORT_HELP, MS_RECORD_HELP);
            return 0;
        }
        if (ms_cli_record(c) || ms_cli_budget(c) || ms_cli_profile(c, &ro) || ms_cli_metrics_addr(c, &ro) ||
            ms_cli_export(c, &ro))
            continue;
        if (ms_cli_value(c, "--concurrency", &v))
            o.concurrency = (int)ms_cli_long(c, "--concurrency", v, 1, 1000);
        else if (ms_cli_value(c, "--repeat", &v))
            o.repeat = (int)ms_cli_long(c, "--repeat", v, 1, 10000);
        else if (ms_cli_value(c, "--filter", &v))
            o.filter = v;
        else if (ms_cli_value(c, "--baseline", &v))
            o.baseline = run_ref(c, "--baseline", v);
        else if (ms_cli_value(c, "--replay", &v))
            o.replay = run_ref(c, "--replay", v);
        else if (ms_cli_value(c, "--replay-miss", &v)) {
            if (strcmp(v, "fail") && strcmp(v, "live") && strcmp(v, "record"))
                ms_cli_usage_error(c, "--replay-miss '%s' is not fail, live or record", v);
            o.replay_miss = v;
        } else if (ms_cli_flag(c, "--fail-if-regressed"))
            o.fail_if_regressed = "";
        else if (strncmp(c->argv[c->i], "--fail-if-regressed=", 20) == 0)
            o.fail_if_regressed = c->argv[c->i++] + 20; /* the list is checked by the runner */
        else if (ms_cli_flag(c, "--record"))
            o.record = 1;
        else if (ms_cli_value(c, "--junit", &v))
            o.junit = v;
        else if (ms_cli_value(c, "--alert-webhook", &v)) {
            if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
                ms_cli_usage_error(c, "--alert-webhook '%s' is not an http:// or https:// URL", v);
            o.webhook = v;
        } else if (ms_cli_value(c, "--fail-under", &v)) {
            if (ms_parse_fraction(v, &o.fail_under))
                ms_cli_usage_error(c, "--fail-under '%s' is not a pass rate from 0 to 1 (e.g. 0.9)", v);
            o.has_fail_under = 1;
        } else if (c->argv[c->i][0] == '-' && c->argv[c->i][1]) {
            ms_cli_unknown(c);
        } else {
            const char *f = c->argv[c->i++];
            if (access(f, R_OK) != 0)
                ms_cli_usage_error(c, "cannot read suite %s: %s", f, strerror(errno));
            if (files_start < 0)
                files_start = out;
            c->argv[out++] = (char *)f;
        }
    }
    if (files_start < 0)
        ms_cli_usage_error(c, "missing SUITE.lua, the suite file(s) to run");
    if (o.fail_if_regressed && !o.baseline)
        ms_cli_usage_error(c, "--fail-if-regressed needs a run to compare with: add --baseline last"
                              " (or --baseline RUN_ID)");
    if (o.record && o.replay)
        ms_cli_usage_error(c, "--record and --replay exclude each other: a replayed run makes no new calls "
                              "to record (--replay-miss record records the calls the recording lacks)");
    if (o.replay_miss && !o.replay)
        ms_cli_usage_error(c, "--replay-miss %s needs --replay RUN_ID|last: it says what a replayed run does "
                              "with a call its recording lacks", o.replay_miss);
    ms_cli_record_done(c);
    o.first_file = files_start;
    o.nfiles = out - files_start;
    return ms_run_hosted(c, c->argv[files_start], files_start, &ro, eval_body, &o);
}
