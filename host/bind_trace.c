/* bind_trace — span() and trace() for Lua, the run trace, and the spans
 * the debug hook opens (autospans.c). The handles their bodies get are in
 * bind_handles.c, each coroutine's state in bind_costate.c, what a span
 * records of an error in bind_errors.c, levels and folds in bind_levels.c;
 * they share bind_trace_impl.h.
 *
 * The stack of open spans belongs to the coroutine that opened them: each
 * Lua thread has a co_state (found through lua_getextraspace) holding its
 * trace and its innermost open span. Opening a span is one ms_span_begin
 * and a pcall; closing pops back to the span's parent. A coroutine created
 * inside a span starts with that span as its parent, never a sibling's.
 *
 * span and trace call their body with lua_pcallk and a continuation, so a
 * body may yield (llm.call inside parallel) and errors are seen on the way
 * out: recorded on the span, then raised again unchanged. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "bind_trace_impl.h"
#include "cli.h"
#include "host.h"
#include "ms_clock.h"
#include "ms_digest.h"

/* Spans nest at most this deep in one coroutine (and the coroutines it
 * starts). Each level of span() is one nested C call, and Lua allows 200
 * in all (LUAI_MAXCCALLS): the rest is left for pcall, coroutines and the
 * test runner, so that a deep recursion gets this clear error instead of
 * "C stack overflow". */
#define MAX_SPAN_DEPTH 150

/* A (trace, parent, name) and the spans of that name begun under that
 * parent so far; SIBLING_SLOTS of them per coroutine, a new key taking
 * its slot from an older one (which then counts from 1 again: at worst
 * something folds later than it could). */
typedef struct sibling_count {
    const ms_trace *t;
    uint32_t gen, parent, len, count;
    uint64_t hash;
} sibling_count;
#define SIBLING_SLOTS 256

/* --- the run trace ------------------------------------------------------- */

/* Ends `t` normally and hands it to the writer. */
static void finish_trace(ms_trace *t)
{
    ms_trace_end(t, ms_mono_ns());
    ms_host_trace_ended(t);
}

/* A new trace named `name`, or NULL when memory ran out. */
static ms_trace *start_trace(const char *name, size_t len)
{
    ms_host *h = &ms_the_host;
    ms_trace *t = ms_tracer_acquire(h->tracer);
    if (!t || ms_trace_start(t, name, len, ms_mono_ns(), h->joined ? &h->join_id : NULL, h->join_parent)) {
        if (t)
            ms_tracer_release(h->tracer, t);
        return NULL;
    }
    t->run_id = h->run_id;
    if (h->keep_spans && ms_trace_keep_digest(t))
        t->oom = 1; /* ctx:spans() says so */
    return t;
}

static ms_trace *new_trace(lua_State *L, const char *name, size_t len)
{
    ms_trace *t = start_trace(name, len);
    if (!t)
        luaL_error(L, "out of memory starting trace '%s'", name);
    return t;
}

ms_trace *ms_open_run_trace_(void)
{
    ms_host *h = &ms_the_host;
    if (!h->implicit) {
        const char *name = h->run_name ? h->run_name : "moonspan";
        if (!(h->implicit = start_trace(name, strlen(name))))
            return NULL;
        /* the run trace covers the whole run, not just from its first span */
        if (h->run_start && h->run_start < h->implicit->start)
            h->implicit->start = h->implicit->spans[0].start = h->run_start; /* the root is at 0 */
    }
    return h->implicit;
}

/* --- arguments of span() and trace(): attributes and options ------------- */

/* Raises unless kix/vix hold a string key and a scalar value, the only
 * attributes a span stores. */
static void check_attr(lua_State *L, int kix, int vix)
{
    if (lua_type(L, kix) != LUA_TSTRING)
        luaL_error(L, "attribute keys must be strings, got %s", luaL_typename(L, kix));
    int ty = lua_type(L, vix);
    if (ty != LUA_TSTRING && ty != LUA_TNUMBER && ty != LUA_TBOOLEAN)
        luaL_error(L, "attribute '%s' must be a string, number or boolean, got %s "
                      "(store tables as JSON strings)", lua_tostring(L, kix), luaL_typename(L, vix));
}

/* Records a checked attribute (see check_attr); never raises. */
static void put_attr(lua_State *L, ms_trace *t, uint32_t idx, int kix, int vix)
{
    size_t klen, vlen;
    const char *k = lua_tolstring(L, kix, &klen);
    switch (lua_type(L, vix)) {
    case LUA_TSTRING: {
        const char *v = lua_tolstring(L, vix, &vlen);
        ms_span_set_str(t, idx, k, klen, v, vlen);
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, vix))
            ms_span_set_int(t, idx, k, klen, lua_tointeger(L, vix));
        else
            ms_span_set_double(t, idx, k, klen, lua_tonumber(L, vix));
        break;
    default:
        ms_span_set_bool(t, idx, k, klen, lua_toboolean(L, vix));
        break;
    }
}

/* --- tags: the one attribute a trace's root takes as a list ---------------- */

/* Whether kix/vix hold `tags` = a table: a trace's tags (ms_who.h). */
static int is_tags(lua_State *L, int kix, int vix)
{
    return lua_type(L, vix) == LUA_TTABLE && lua_type(L, kix) == LUA_TSTRING &&
           strcmp(lua_tostring(L, kix), "tags") == 0;
}

/* Raises unless the table at vix is a list of strings. */
static void check_tags(lua_State *L, int vix)
{
    vix = lua_absindex(L, vix);
    lua_Integer n = (lua_Integer)lua_rawlen(L, vix), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, vix)) {
        keys++;
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n ||
            lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "tags must be a list of strings, e.g. tags = {\"beta\", \"eu\"}; found a %s "
                          "value at key %s", luaL_typename(L, -1), lua_tostring(L, -2) ? lua_tostring(L, -2)
                                                                                         : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
    if (keys != n)
        luaL_error(L, "tags must be a list of strings without holes, e.g. tags = {\"beta\", \"eu\"}");
}

/* Records a checked tags list as the attribute `tags`: the text of a JSON
 * array, which the writer keeps as traces.tags. Never raises. */
static void put_tags(lua_State *L, ms_trace *t, uint32_t idx, int vix)
{
    vix = lua_absindex(L, vix);
    ms_buf json = {0};
    ms_buf_addc(&json, '[');
    lua_Integer n = (lua_Integer)lua_rawlen(L, vix);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, vix, i);
        const char *tag = lua_tolstring(L, -1, &len); /* a string: check_tags saw to it */
        if (i > 1)
            ms_buf_addc(&json, ',');
        ms_json_str(&json, tag, len);
        lua_pop(L, 1);
    }
    ms_buf_addc(&json, ']');
    if (!json.oom) /* else the trace goes without its tags, as with any attribute out of memory */
        ms_span_set_str(t, idx, "tags", 4, json.data, json.len);
    ms_buf_free(&json);
}

void ms_set_attr_(lua_State *L, ms_trace *t, uint32_t idx, int kix, int vix)
{
    if (idx == 0 && is_tags(L, kix, vix)) {
        check_tags(L, vix);
        put_tags(L, t, idx, vix);
        return;
    }
    check_attr(L, kix, vix);
    put_attr(L, t, idx, kix, vix);
}

static int is_upvalue(lua_State *L, int ix, int upv)
{
    return lua_rawequal(L, ix, lua_upvalueindex(upv));
}

/* `level` and `fold` in the attrs table are options, not attributes. */
static int is_option(lua_State *L, int kix)
{
    return is_upvalue(L, kix, UPV_LEVEL) || is_upvalue(L, kix, UPV_FOLD);
}

/* The level named by the value at ix, or -1. */
static int level_of(lua_State *L, int ix)
{
    if (is_upvalue(L, ix, UPV_INFO))
        return MS_LEVEL_INFO;
    if (is_upvalue(L, ix, UPV_DEBUG))
        return MS_LEVEL_DEBUG;
    if (is_upvalue(L, ix, UPV_TRACE))
        return MS_LEVEL_TRACE;
    return -1;
}

/* Records an attrs table already checked by check_body_args. */
static void set_attrs_table(lua_State *L, ms_trace *t, uint32_t idx, int tix)
{
    lua_pushnil(L);
    while (lua_next(L, tix)) {
        if (lua_type(L, -1) == LUA_TTABLE) /* tags of a trace: read_table allowed nothing else */
            put_tags(L, t, idx, -1);
        else if (!is_option(L, -2))
            put_attr(L, t, idx, -2, -1);
        lua_pop(L, 1);
    }
}

typedef struct span_opts {
    int level;  /* enum ms_level */
    int fold;
    int nattrs; /* keys of the table that are attributes */
    int has_budget;
    double budget_usd; /* budget_usd: an attribute, and trace()'s request budget */
} span_opts;

/* Reads the table at tix in one pass: `level` and `fold` into *o, every
 * other key checked as an attribute and counted. Raises on a bad one. */
static void read_table(lua_State *L, int tix, span_opts *o, int is_trace)
{
    lua_pushnil(L);
    while (lua_next(L, tix)) {
        if (is_upvalue(L, -2, UPV_LEVEL)) {
            if ((o->level = level_of(L, -1)) < 0) {
                const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
                luaL_error(L, "level must be " MS_LEVEL_NAMES ", got %s", v);
            }
        } else if (is_upvalue(L, -2, UPV_FOLD)) {
            if (!lua_isboolean(L, -1))
                luaL_error(L, "fold must be true or false, got %s", luaL_typename(L, -1));
            o->fold = lua_toboolean(L, -1);
        } else if (is_trace && is_tags(L, -2, -1)) {
            check_tags(L, -1);
            o->nattrs++;
        } else {
            check_attr(L, -2, -1);
            if (is_upvalue(L, -2, UPV_BUDGET)) {
                double v = lua_tonumber(L, -1);
                if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0 && v <= 1e12))
                    luaL_error(L, "budget_usd must be an amount of US dollars >= 0, e.g. budget_usd = 0.05, "
                                  "got %s", luaL_tolstring(L, -1, NULL));
                o->has_budget = 1;
                o->budget_usd = v;
            }
            o->nattrs++;
        }
        lua_pop(L, 1);
    }
}

/* Checks span/trace's (name, [attrs,] fn) and returns fn's stack index;
 * the options, when there is a table, go to *o. Every attribute is
 * checked before any span or trace exists, whatever the level. */
static int check_body_args(lua_State *L, const char **name, size_t *len, span_opts *o, int is_trace)
{
    *name = luaL_checklstring(L, 1, len);
    o->level = MS_LEVEL_INFO;
    o->fold = 0;
    o->nattrs = 0;
    o->has_budget = 0;
    int fix = 2;
    if (lua_type(L, 2) == LUA_TTABLE) {
        fix = 3;
        read_table(L, 2, o, is_trace);
    }
    luaL_checktype(L, fix, LUA_TFUNCTION);
    return fix;
}

/* --- --fold N: a span past the Nth sibling of its name folds ------------- */

/* --fold N: whether this span is past the Nth of its name that its
 * parent has begun in `t`. */
static int past_fold_threshold(co_state *cs, const ms_trace *t, uint32_t parent, const char *name, size_t len)
{
    if (!cs->siblings && !(cs->siblings = calloc(SIBLING_SLOTS, sizeof *cs->siblings)))
        return 0;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * UINT64_C(0x100000001b3);
    sibling_count *c = &cs->siblings[(h ^ (uint64_t)parent * UINT64_C(0x9e3779b97f4a7c15)) >> 56];
    if (c->t == t && c->gen == t->generation && c->parent == parent && c->len == len && c->hash == h) {
        if (c->count < UINT32_MAX)
            c->count++;
    } else {
        *c = (sibling_count){t, t->generation, parent, (uint32_t)len, 1, h};
    }
    return c->count > ms_the_host.fold_above;
}

/* --- span() itself ------------------------------------------------------- */

/* The end of span_k and trace_k: the body's results, or its error again. */
static int body_results(lua_State *L, int status, int msgh)
{
    if (status != LUA_OK && status != LUA_YIELD)
        return lua_error(L);
    return lua_gettop(L) - msgh;
}

/* Closes span idx after its body returned (status LUA_OK/LUA_YIELD) or
 * raised; returns the body's results or raises its error again. The
 * context packs the span index, whether it is a fold (whose repetition
 * began at the integer below the handler) and the handler's stack index. */
#define SPAN_CTX(idx, fold, msgh) ((lua_KContext)(((uint64_t)(idx) << 32) | (uint64_t)(fold) << 31 | (uint32_t)(msgh)))

static int span_k(lua_State *L, int status, lua_KContext ctx)
{
    uint32_t idx = (uint32_t)((uint64_t)ctx >> 32);
    int fold = (int)((ctx >> 31) & 1);
    int msgh = (int)(ctx & 0x7fffffff);
    co_state *cs = costate(L);
    int64_t now = ms_mono_ns();
    int alive = trace_alive(cs);
    cs->depth--;
    if (alive) {
        ms_trace *t = cs->trace;
        int failed = status != LUA_OK && status != LUA_YIELD;
        int own = failed && fold && !ms_is_interrupt(L, -1) && !ms_is_propagation_(L, cs, idx, -1);
        if (failed) {
            ms_autospans_unwind(L, t, idx, lua_gettop(L)); /* calls the error left inside it */
            ms_span_failed_(L, cs, idx);
        }
        const ms_span *sp = ms_trace_span(t, idx);
        if (fold)
            ms_fold_end(t, idx, lua_tointeger(L, msgh - 1), now, own);
        else
            ms_span_end(t, idx, now);
        cs->top = sp ? sp->parent : 0;
        /* a long trace is written as it goes; the calibration's never is */
        if (__builtin_expect(ms_trace_wants_cut(t, now), 0) && !ms_the_host.calibrating)
            ms_tracer_cut(ms_the_host.tracer, t, now);
    }
    return body_results(L, status, msgh);
}

/* Pushes a new handle on span idx; a fold's is kept for its next
 * repetitions (push_fold_handle). */
static void push_handle(lua_State *L, co_state *cs, ms_trace *t, uint32_t idx, int fold)
{
    span_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->t = t;
    h->gen = t->generation;
    h->idx = idx;
    lua_pushvalue(L, lua_upvalueindex(UPV_MT));
    lua_setmetatable(L, -2);
    if (!fold)
        return;
    struct fold_handle *f = &cs->fold_handles[cs->fold_handle_next++ % FOLD_HANDLES];
    luaL_unref(L, LUA_REGISTRYINDEX, f->ref);
    lua_pushvalue(L, -1);
    *f = (struct fold_handle){luaL_ref(L, LUA_REGISTRYINDEX), t, t->generation, idx};
}

/* Pushes the handle fold idx's repetitions get, and returns 1; 0 when
 * none is kept. */
static int push_fold_handle(lua_State *L, co_state *cs, const ms_trace *t, uint32_t idx)
{
    for (int i = 0; i < FOLD_HANDLES; i++) {
        const struct fold_handle *f = &cs->fold_handles[i];
        if (f->ref != LUA_NOREF && f->t == t && f->gen == t->generation && f->idx == idx) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, f->ref);
            return 1;
        }
    }
    return 0;
}

static int l_span(lua_State *L)
{
    size_t len;
    const char *name;
    span_opts o;
    int fix = check_body_args(L, &name, &len, &o, 0);
    if (__builtin_expect(o.has_budget, 0))
        return luaL_error(L, "span('%s'): budget_usd is the budget of a whole request; give it to "
                             "trace(name, {budget_usd = ...}, fn), or to one call as llm.call{budget_usd = ...}",
                          name);
    if (__builtin_expect(o.level > ms_the_host.level, 0))
        return ms_run_unrecorded_(L, fix);
    int nargs = lua_gettop(L);
    co_state *cs = costate(L);
    int nextra = nargs - fix;
    luaL_checkstack(L, nextra + 4, "too many arguments to span()");
    if (__builtin_expect(cs->depth >= MAX_SPAN_DEPTH, 0))
        return luaL_error(L, "span('%s') would nest %d spans deep; moonspan allows %d (each level is a "
                             "nested C call and Lua allows 200 in all): turn the recursion into a loop, "
                             "or record fewer levels", name, MAX_SPAN_DEPTH + 1, MAX_SPAN_DEPTH);
    uint32_t parent;
    ms_trace *t;
    if (trace_alive(cs)) {
        t = cs->trace;
        parent = cs->top;
    } else {
        t = run_trace(L, &parent);
        cs->trace = t;
        cs->gen = t->generation;
        cs->explicit_trace = 0;
    }
    int fold = o.fold ||
               (__builtin_expect(ms_the_host.fold_above != 0, 0) && past_fold_threshold(cs, t, parent, name, len));
    int64_t now = ms_mono_ns();
    uint32_t idx;
    if (fold) {
        idx = ms_fold_for_(cs, t, parent, name, len, now);
        if (idx != MS_NONE)
            ms_fold_begin(t, idx);
        ms_the_host.counts.folded++;
    } else {
        idx = ms_span_begin(t, parent, name, len, now);
    }
    if (idx == MS_NONE)
        return luaL_error(L, "out of memory recording span '%s'", name);
    cs->top = idx;
    if (o.nattrs)
        set_attrs_table(L, t, idx, 2);

    if (fold)
        lua_pushinteger(L, now);                             /* ... start */
    lua_pushvalue(L, lua_upvalueindex(UPV_MSGH));           /* ... msgh */
    int msgh = lua_gettop(L);
    lua_pushvalue(L, fix);                                   /* ... msgh fn */
    /* A body that takes no parameters never sees the handle: skip making
     * it, which saves the one allocation a span would otherwise cost. */
    int want_handle = 1;
    if (nextra == 0) {
        lua_Debug ar;
        lua_pushvalue(L, fix);
        lua_getinfo(L, ">u", &ar);
        want_handle = ar.nparams > 0 || ar.isvararg;
    }
    if (want_handle && !(fold && push_fold_handle(L, cs, t, idx)))
        push_handle(L, cs, t, idx, fold);                    /* ... msgh fn s */
    for (int i = fix + 1; i <= nargs; i++)
        lua_pushvalue(L, i);                                 /* ... msgh fn [s] extra... */
    lua_KContext ctx = SPAN_CTX(idx, fold, msgh);
    cs->depth++; /* span_k takes it back, however the body ends */
    return span_k(L, lua_pcallk(L, want_handle + nextra, LUA_MULTRET, msgh, ctx, span_k), ctx);
}

/* --- trace() ------------------------------------------------------------- */

/* The request budgets of the open traces, by trace id (hex): a table
 * {limit = USD} per trace under a budget (its own budget_usd, else the
 * run's --budget-usd request=X), made when trace() starts and dropped
 * when its body ends, in which llm.call keeps the request's spend
 * (scripts/budget.lua reads it as moonspan._request_budgets). */
#define REQUEST_BUDGETS "moonspan.request_budgets"

/* Gives trace `id` the request budget `usd`: a new ledger, or a new
 * limit on the one it has (a pipeline's trace() inside an eval case). */
static void set_request_budget(lua_State *L, const char *id, double usd)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REQUEST_BUDGETS);   /* ... budgets */
    if (lua_getfield(L, -1, id) != LUA_TTABLE) {            /* ... budgets ledger|nil */
        lua_pop(L, 1);
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, id);
    }
    lua_pushnumber(L, usd);
    lua_setfield(L, -2, "limit");
    lua_pop(L, 2);
}

/* Drops the ledger of trace `id`: its request is over. */
static void drop_request_budget(lua_State *L, const char *id)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REQUEST_BUDGETS);
    lua_pushnil(L);
    lua_setfield(L, -2, id);
    lua_pop(L, 1);
}

/* After the body of trace(): end the trace (unless it joined an eval
 * case's, which the case ends), restore the caller's state, then return
 * the body's results or raise its error. The context is the stack index
 * of the handler; ctx sits right below it. */
static int trace_k(lua_State *L, int status, lua_KContext ctx)
{
    int msgh = (int)ctx;
    co_state *cs = costate(L);
    ctx_handle *h = lua_touserdata(L, msgh - 1);
    ms_trace *t = h->t;
    if (status != LUA_OK && status != LUA_YIELD && cs->trace == t) {
        ms_autospans_unwind(L, t, 0, lua_gettop(L));
        ms_span_failed_(L, cs, 0);
    }
    /* restore what the coroutine had before trace() */
    cs->trace = h->saved_trace;
    cs->gen = h->saved_gen;
    cs->top = h->saved_top;
    cs->depth = h->saved_depth;
    cs->explicit_trace = h->saved_explicit;
    cs->case_ctx = h->saved_case_ctx;
    cs->propagating = 0;
    if (h->budgeted && !h->joined) {
        h->budgeted = 0;
        drop_request_budget(L, h->id);
    }
    if (!h->joined && atomic_load(&t->state) == MS_TRACE_OPEN) /* not ended under it by the run's end */
        finish_trace(t);
    return body_results(L, status, msgh);
}

/* The eval case whose trace a trace() called here joins, or NULL: the
 * coroutine sits at the root of a live case trace (no span open). The
 * case's ctx is alive while its trace is open: its __gc aborts it. */
static ctx_handle *joinable_case(const co_state *cs)
{
    if (!cs->case_ctx || !trace_alive(cs) || cs->top != 0)
        return NULL;
    return cs->case_ctx->t == cs->trace ? cs->case_ctx : NULL;
}

/* A pipeline's trace() inside an eval case: the case's trace becomes the
 * pipeline's, so its spans sit where production puts them. The first
 * names the trace (while no part of it has been written); each sets its
 * attributes on it. */
static void join_case(lua_State *L, ctx_handle *c, const char *name, size_t len, const span_opts *o)
{
    ms_trace *t = c->t;
    if (!c->named && t->parts == 0) {
        ms_str s = ms_trace_put_(t, name, len);
        if (s.off != MS_NONE) /* else out of memory: the case keeps its name */
            ms_trace_span(t, 0)->name = s;
    }
    c->named = 1;
    if (o->nattrs)
        set_attrs_table(L, t, 0, 2);
}

static int l_trace(lua_State *L)
{
    size_t len;
    const char *name;
    span_opts o;
    int fix = check_body_args(L, &name, &len, &o, 1);
    if (o.level > ms_the_host.level) {
        lua_settop(L, fix); /* the body gets ctx only, as a recorded trace's does */
        return ms_run_unrecorded_(L, fix);
    }
    if (o.fold)
        return luaL_error(L, "trace('%s') cannot fold: a trace is one whole request; fold the "
                             "spans inside it", name);
    co_state *cs = costate(L);
    ctx_handle *join = joinable_case(cs);
    /* depth counts span()s: a function's auto span (--auto-spans) is no step to nest in */
    if (!join && trace_alive(cs) && (cs->explicit_trace || cs->depth != 0))
        return luaL_error(L, "trace('%s') called inside %s '%s': a trace is one whole request and "
                             "cannot nest; use span() for the steps inside it", name,
                          cs->explicit_trace ? "trace" : "span",
                          ms_trace_str(cs->trace, ms_trace_span(cs->trace, cs->explicit_trace ? 0 : cs->top)->name));
    lua_settop(L, fix);
    /* ctx, holding a reference so ctx:summary() works after the trace ends,
     * and the caller's state to restore. Made (empty, with its __gc) before
     * the trace is taken, so no error between the two can leak the trace. */
    ctx_handle *h = lua_newuserdatauv(L, sizeof *h, 0);    /* ... ctx */
    h->t = NULL;
    h->saved_trace = cs->trace;
    h->saved_gen = cs->gen;
    h->saved_top = cs->top;
    h->saved_depth = cs->depth;
    h->saved_explicit = cs->explicit_trace;
    h->saved_case_ctx = cs->case_ctx;
    h->joined = h->named = h->budgeted = 0;
    lua_pushvalue(L, lua_upvalueindex(UPV_MT));
    lua_setmetatable(L, -2);
    if (join) {
        h->t = join->t;
        h->joined = 1;
        ms_trace_id_hex(&h->t->id, h->id);
        ms_tracer_retain(ms_the_host.tracer, h->t);
        join_case(L, join, name, len, &o);
        cs->case_ctx = NULL; /* a trace() inside it nests, as in production: an error */
    } else {
        ms_trace *t = new_trace(L, name, len);
        h->t = t;
        ms_trace_id_hex(&t->id, h->id);
        ms_tracer_retain(ms_the_host.tracer, t);
        if (o.nattrs)
            set_attrs_table(L, t, 0, 2);
        cs->trace = t;
        cs->gen = t->generation;
        cs->top = 0;
        cs->depth = 1;
        cs->explicit_trace = 1;
        /* moonspan._case_trace: trace() calls at its root join it */
        cs->case_ctx = lua_toboolean(L, lua_upvalueindex(UPV_CASE)) ? h : NULL;
    }
    cs->propagating = 0;
    if (o.has_budget || (!join && ms_the_host.has_request_budget)) {
        set_request_budget(L, h->id, o.has_budget ? o.budget_usd : ms_the_host.request_budget_usd);
        /* a joined case's ledger is the case's: dropped when the case ends */
        (join ? join : h)->budgeted = 1;
    }

    lua_pushvalue(L, lua_upvalueindex(UPV_MSGH));           /* ... ctx msgh */
    int msgh = lua_gettop(L);
    lua_pushvalue(L, fix);                                   /* ... ctx msgh fn */
    lua_pushvalue(L, msgh - 1);                              /* ... ctx msgh fn ctx */
    return trace_k(L, lua_pcallk(L, 1, LUA_MULTRET, msgh, msgh, trace_k), msgh);
}

/* moonspan.current_span(): a handle on the calling coroutine's innermost
 * open span, or nil outside any span. */
static int l_current_span(lua_State *L)
{
    co_state *cs = costate(L);
    if (!trace_alive(cs) || cs->top == MS_NONE) {
        lua_pushnil(L);
        return 1;
    }
    span_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->t = cs->trace;
    h->gen = cs->trace->generation;
    h->idx = cs->top;
    luaL_setmetatable(L, SPAN_MT);
    return 1;
}

/* moonspan.traceparent(): the W3C header value for the current span. */
static int l_traceparent(lua_State *L)
{
    co_state *cs = costate(L);
    if (!trace_alive(cs) || cs->top == MS_NONE) {
        lua_pushnil(L);
        return 1;
    }
    char tp[56];
    ms_traceparent_format(&cs->trace->id, ms_span_id(cs->trace, cs->top), tp);
    lua_pushstring(L, tp);
    return 1;
}

/* --- spans for the debug hook (profile.c, autospans.c) ------------------- */

int ms_span_current(lua_State *L, ms_trace **t, uint32_t *idx)
{
    const co_state *cs = *(co_state **)lua_getextraspace(L);
    if (cs && trace_alive(cs) && cs->top != MS_NONE) {
        *t = cs->trace;
        *idx = cs->top;
        return 1;
    }
    ms_trace *run = ms_the_host.implicit;
    if (run && atomic_load(&run->state) == MS_TRACE_OPEN) {
        *t = run;
        *idx = 0;
        return 1;
    }
    return 0;
}

uint32_t ms_span_open(lua_State *L, const char *name, size_t len, ms_trace **out)
{
    co_state *cs = costate(L);
    ms_trace *t;
    uint32_t parent = 0;
    if (trace_alive(cs)) {
        t = cs->trace;
        parent = cs->top;
    } else {
        if (!ms_the_host.tracer || !(t = ms_open_run_trace_()))
            return MS_NONE;
        cs->trace = t;
        cs->gen = t->generation;
        cs->explicit_trace = 0;
    }
    uint32_t idx = ms_span_begin(t, parent, name, len, ms_mono_ns());
    if (idx != MS_NONE)
        cs->top = idx;
    *out = t;
    return idx;
}

void ms_span_close(lua_State *L, ms_trace *t, uint32_t idx, int how)
{
    static const char UNWOUND[] = "an error unwound this call (no span saw it: a pcall caught it, "
                                  "or it ended the coroutine)";
    co_state *cs = costate(L);
    int64_t now = ms_mono_ns();
    if (how > 0) {
        int top = lua_gettop(L);
        lua_pushvalue(L, how);                             /* ... err */
        ms_span_failed_(L, cs, idx);
        lua_settop(L, top);
    } else if (how == MS_CLOSE_UNWOUND) {
        if (ms_interrupted) /* what unwinds everything now is the interrupt */
            ms_span_interrupted(t, idx);
        else
            ms_span_fail(t, idx, 0, "error", UNWOUND, sizeof UNWOUND - 1, NULL);
    }
    const ms_span *sp = ms_trace_span(t, idx);
    if (cs->trace == t)
        cs->top = sp ? sp->parent : 0;
    ms_span_end(t, idx, now);
    if (__builtin_expect(ms_trace_wants_cut(t, now), 0))
        ms_tracer_cut(ms_the_host.tracer, t, now);
}

struct ms_autos **ms_span_autos(lua_State *L)
{
    return &costate(L)->autos;
}

int ms_called_by_span(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "f", &ar))
        return 0;
    lua_CFunction f = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    return f == l_span || f == l_trace;
}

/* --- registration -------------------------------------------------------- */

void ms_open_trace(lua_State *L)
{
    ms_open_handles_(L);
    ms_open_costates_(L);

    ms_open_levels_(L);                                       /* ... nospan */
    int nospan = lua_gettop(L);

    static const char *const names[] = {"level", "fold", "info", "debug", "trace", "budget_usd"};
    enum { NNAMES = sizeof names / sizeof *names };
    _Static_assert(NNAMES == UPV_COUNT - UPV_LEVEL + 1, "one name per option upvalue");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, REQUEST_BUDGETS);
    for (int k = 0; k < 2; k++) {
        lua_pushcfunction(L, ms_span_msgh_);
        luaL_getmetatable(L, k ? CTX_MT : SPAN_MT);
        lua_pushvalue(L, nospan);
        for (int i = 0; i < NNAMES; i++)
            lua_pushstring(L, names[i]);
        if (k) { /* moonspan._case_trace: the same upvalues and UPV_CASE */
            for (int i = 1; i <= UPV_COUNT; i++)
                lua_pushvalue(L, -UPV_COUNT);
            lua_pushboolean(L, 1);
            lua_pushcclosure(L, l_trace, UPV_CASE);
            lua_setfield(L, LUA_REGISTRYINDEX, "moonspan._case_trace");
        }
        lua_pushcclosure(L, k ? l_trace : l_span, UPV_COUNT);
        lua_setglobal(L, k ? "trace" : "span");
    }
    lua_pop(L, 1);

    static const luaL_Reg moonspan_fns[] = {
        {"current_span", l_current_span}, {"traceparent", l_traceparent}, {NULL, NULL}};
    lua_getglobal(L, "moonspan");
    luaL_setfuncs(L, moonspan_fns, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, "moonspan._case_trace");
    lua_setfield(L, -2, "_case_trace");
    lua_getfield(L, LUA_REGISTRYINDEX, REQUEST_BUDGETS);
    lua_setfield(L, -2, "_request_budgets");
    lua_pop(L, 1);
}
