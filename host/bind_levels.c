/* bind_levels — how much span() records, for Lua: levels and folds.
 *
 * A span below the run's level (span(name, {level = "debug"}, fn) under
 * --level info) is not recorded: its body runs with a handle that records
 * nothing (moonspan._nospan, which scripts/levels.lua's span_at hands out
 * too), and the spans inside it nest under the nearest recorded one. A
 * folded span ({fold = true}, --fold N) is one repetition of a fold: one
 * record per (parent, name) with a mergeable histogram of durations.
 * moonspan.fold(name) times repetitions from Lua with one native call
 * each. The level itself is moonspan._set_level/_level, kept in the host
 * (ms_the_host.level) so a skipped span costs span() one comparison. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "bind_trace_impl.h"
#include "host.h"
#include "ms_clock.h"

#define NOSPAN_MT "moonspan.nospan"

/* --- below the level: the body alone ------------------------------------- */

static int skip_k(lua_State *L, int status, lua_KContext fix)
{
    (void)status;
    return lua_gettop(L) - (int)fix + 1;
}

int ms_run_unrecorded_(lua_State *L, int fix)
{
    ms_the_host.counts.skipped++;
    lua_pushvalue(L, lua_upvalueindex(UPV_NOSPAN));
    lua_insert(L, fix + 1);
    lua_callk(L, lua_gettop(L) - fix, LUA_MULTRET, fix, skip_k);
    return skip_k(L, LUA_OK, fix);
}

/* --- folds --------------------------------------------------------------- */

uint32_t ms_fold_for_(co_state *cs, ms_trace *t, uint32_t parent, const char *name, size_t len,
                      int64_t now)
{
    if (cs->fold_trace == t && cs->fold_gen == t->generation) {
        const ms_span *s = ms_trace_span(t, cs->fold_idx);
        if (s && s->kind == MS_KIND_FOLD && s->parent == parent && s->name.len == len &&
            memcmp(t->arena + s->name.off, name, len) == 0)
            return cs->fold_idx;
    }
    uint32_t idx = ms_fold_open(t, parent, name, len, now);
    cs->fold_trace = t;
    cs->fold_gen = t->generation;
    cs->fold_idx = idx;
    return idx;
}

/* --- folds timed by the script: moonspan.clock, moonspan.fold ------------ */

/* moonspan.clock() -> monotonic nanoseconds, an integer: the start of a
 * repetition for a function made by moonspan.fold. */
static int l_clock(lua_State *L)
{
    lua_pushinteger(L, ms_mono_ns());
    return 1;
}

/* A function made by moonspan.fold(name): rep(t0) adds one repetition,
 * from t0 (moonspan.clock()) to now, to the fold `name` under the span
 * open in the calling coroutine, and returns now: the start of the next
 * repetition when they follow each other. Upvalue 1 is the name. It never
 * calls back into Lua: one native call a repetition. */
static int l_fold_rep(lua_State *L)
{
    int64_t now = ms_mono_ns();
    lua_Integer t0 = luaL_checkinteger(L, 1);
    co_state *cs = costate(L);
    if (!trace_alive(cs)) { /* outside any trace: the run trace, as for span() */
        uint32_t root;
        cs->trace = run_trace(L, &root);
        cs->gen = cs->trace->generation;
        cs->top = root;
        cs->explicit_trace = 0;
    }
    size_t len;
    const char *name = lua_tolstring(L, lua_upvalueindex(1), &len);
    ms_trace *t = cs->trace;
    uint32_t idx = ms_fold_for_(cs, t, cs->top, name, len, t0);
    if (idx == MS_NONE)
        return luaL_error(L, "out of memory recording fold '%s'", name);
    ms_fold_end(t, idx, t0, now, 0);
    ms_the_host.counts.folded++;
    lua_pushinteger(L, now);
    return 1;
}

/* moonspan.fold(name) -> rep: see l_fold_rep. */
static int l_fold(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_pushcclosure(L, l_fold_rep, 1);
    return 1;
}

/* --- the handle of what is not recorded ---------------------------------- */

/* Methods of a span or ctx below the level: they do what they would on a
 * recorded one, minus the recording, so a body runs the same at any
 * level. Those that read return what an empty trace would. */
static int nospan_self(lua_State *L)
{
    lua_settop(L, 1);
    return 1;
}

static int nospan_nil(lua_State *L)
{
    lua_pushnil(L);
    return 1;
}

static int nospan_totals(lua_State *L)
{
    lua_newtable(L);
    return 1;
}

static int nospan_summary(lua_State *L)
{
    lua_pushliteral(L, "");
    return 1;
}

static int nospan_index(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    lua_CFunction fn = nospan_self;
    if (!k || strcmp(k, "id") == 0 || strcmp(k, "trace_id") == 0)
        return nospan_nil(L);
    if (strcmp(k, "record_llm") == 0)
        fn = nospan_nil;
    else if (strcmp(k, "totals") == 0)
        fn = nospan_totals;
    else if (strcmp(k, "summary") == 0)
        fn = nospan_summary;
    lua_pushcfunction(L, fn);
    return 1;
}

static int nospan_tostring(lua_State *L)
{
    lua_pushliteral(L, "span (not recorded: below the level)");
    return 1;
}

/* moonspan._set_level(rank) and moonspan._level(): the host's level, for
 * scripts/levels.lua, which keeps its own copy for span_at. */
static int l_set_level(lua_State *L)
{
    lua_Integer r = luaL_checkinteger(L, 1);
    luaL_argcheck(L, r >= MS_LEVEL_INFO && r <= MS_LEVEL_TRACE, 1, "not a level");
    ms_the_host.level = (int)r;
    return 0;
}

/* moonspan.keep_spans(on): traces started from now on keep a summary of
 * every span cut out of their buffer, so ctx:spans() is whole (eval). */
static int l_keep_spans(lua_State *L)
{
    ms_the_host.keep_spans = lua_toboolean(L, 1);
    return 0;
}

static int l_level(lua_State *L)
{
    lua_pushinteger(L, ms_the_host.level);
    return 1;
}

/* --- registration -------------------------------------------------------- */

void ms_open_levels_(lua_State *L)
{
    static const luaL_Reg nospan_meta[] = {
        {"__index", nospan_index}, {"__tostring", nospan_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, NOSPAN_MT);
    luaL_setfuncs(L, nospan_meta, 0);
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_newuserdatauv(L, 1, 0); /* the one handle every unrecorded span and trace gets */
    luaL_setmetatable(L, NOSPAN_MT);

    static const luaL_Reg moonspan_fns[] = {
        {"clock", l_clock}, {"fold", l_fold}, {"_set_level", l_set_level}, {"_level", l_level},
        {"keep_spans", l_keep_spans}, {NULL, NULL}};
    lua_getglobal(L, "moonspan");                             /* ... nospan moonspan */
    luaL_setfuncs(L, moonspan_fns, 0);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "_nospan");
    lua_pop(L, 1);                                            /* ... nospan */
}
