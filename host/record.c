/* record — how a run records (levels, folds, sampling) and what its
 * telemetry did and cost, for the runs row. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "host.h"
#include "ms_clock.h"

void ms_host_record(const ms_record_opts *o)
{
    ms_host *h = &ms_the_host;
    h->level = h->start_level = o->level < 0 ? MS_LEVEL_INFO : o->level;
    h->fold_above = o->fold_above;
    h->sampling = o->sampling;
    if (ms_sampling_on(&h->sampling) && h->sampling.slowest_share > 0)
        h->sampler = ms_sampler_new(); /* NULL when out of memory: that rule keeps everything */
}

int ms_host_sample(ms_trace *t)
{
    ms_host *h = &ms_the_host;
    if (!ms_sampling_on(&h->sampling) || t->parts > 0 || h->calibrating)
        return 1; /* a trace written in parts already stored some: kept whole */
    const ms_span *root = ms_trace_span(t, 0);
    if (!root)
        return 1;
    ms_trace_totals tot;
    ms_trace_totals_get(t, &tot);
    const char *name = ms_trace_str(t, root->name);
    int keep = ms_sample_decide(h->sampler, &h->sampling, &t->id, name, root->name.len,
                                root->end - root->start, tot.cost_usd, ms_trace_status(t));
    if (keep)
        return 1;
    t->sampled_out = 1;
    h->counts.traces_sampled_out++;
    h->counts.spans_sampled_out += t->nspans;
    return 0;
}

/* Times what span() costs the script, over a plain call of the body, in
 * the run's own Lua state: recorded, folded and below the level. The spans
 * go to a trace that is never written (ms_host_trace_ended drops it while
 * h->calibrating). Best of a few rounds, as anything else running can only
 * make a round slower. */
static const char CALIBRATE[] =
    "local n = ...\n"
    "local span, clock, body = span, moonspan.clock, function() end\n"
    "local FOLD, SKIP = {fold = true}, {level = 'trace'}\n"
    "local best = {math.huge, math.huge, math.huge, math.huge}\n"
    "trace('moonspan calibration', function()\n"
    "  for _ = 1, 3 do\n"
    "    local t0 = clock()\n"
    "    for _ = 1, n do body() end\n"
    "    local t1 = clock()\n"
    "    for _ = 1, n do span('c', body) end\n"
    "    local t2 = clock()\n"
    "    for _ = 1, n do span('c', FOLD, body) end\n"
    "    local t3 = clock()\n"
    "    for _ = 1, n do span('c', SKIP, body) end\n"
    "    local t4 = clock()\n"
    "    best[1] = math.min(best[1], t1 - t0); best[2] = math.min(best[2], t2 - t1)\n"
    "    best[3] = math.min(best[3], t3 - t2); best[4] = math.min(best[4], t4 - t3)\n"
    "  end\n"
    "end)\n"
    "return (best[2] - best[1]) / n, (best[3] - best[1]) / n, (best[4] - best[1]) / n\n";

void ms_host_calibrate(lua_State *L)
{
    ms_host *h = &ms_the_host;
    ms_run_counts saved = h->counts;
    int level = h->level;
    h->calibrating = 1;
    h->level = MS_LEVEL_DEBUG; /* so that 'trace' spans are below it */
    h->ns_per_span = h->ns_per_fold = h->ns_per_skip = NAN;
    int top = lua_gettop(L);
    if (luaL_loadbuffer(L, CALIBRATE, sizeof CALIBRATE - 1, "=calibration") == LUA_OK) {
        lua_pushinteger(L, 1000);
        if (lua_pcall(L, 1, 3, 0) == LUA_OK) {
            double *out[] = {&h->ns_per_span, &h->ns_per_fold, &h->ns_per_skip};
            for (int i = 0; i < 3; i++) {
                double v = lua_tonumber(L, top + 1 + i);
                *out[i] = v > 0 ? v : 0; /* noise can make a cheap one come out below the call */
            }
        }
    }
    lua_settop(L, top);
    h->level = level;
    h->calibrating = 0;
    h->counts = saved;
}

void ms_host_run_stats(ms_run_stats *st, size_t spans_kept)
{
    ms_host *h = &ms_the_host;
    st->end_ns = ms_epoch_ns();
    st->level = ms_level_name(h->start_level);
    st->fold_above = h->fold_above;
    st->sample_rate = h->sampling.rate;
    st->spans_kept = spans_kept;
    st->fold_repetitions = h->counts.folded;
    st->spans_skipped = h->counts.skipped;
    st->traces_sampled_out = h->counts.traces_sampled_out;
    st->spans_sampled_out = h->counts.spans_sampled_out;
    st->ns_per_span = h->ns_per_span;
    st->ns_per_fold = h->ns_per_fold;
    st->ns_per_skip = h->ns_per_skip;
    /* every span recorded, dropped by sampling or not, paid the recording */
    double ns = 0;
    if (!isnan(h->ns_per_span))
        ns += h->ns_per_span * (double)(spans_kept + h->counts.spans_sampled_out);
    if (!isnan(h->ns_per_fold))
        ns += h->ns_per_fold * (double)h->counts.folded;
    if (!isnan(h->ns_per_skip))
        ns += h->ns_per_skip * (double)h->counts.skipped;
    st->telemetry_ns = (int64_t)ns;
}
