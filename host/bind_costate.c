/* bind_costate — the tracing state of each coroutine: its trace, its
 * innermost open span, how deep its spans nest, and where a span's error
 * is kept while it propagates (bind_trace_impl.h, co_state).
 *
 * The state lives in a userdata kept alive by a weak-keyed registry table
 * (thread -> co_state), so it dies with its thread; it is also on a list
 * of every thread, which signal handlers walk (ms_each_thread). A
 * coroutine made by coroutine.create/wrap starts where its creator is:
 * its spans nest under the span open in the creator, never a sibling's. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "bind_trace_impl.h"
#include "host.h"

#define COSTATE_MT "moonspan.costate"

static char costates_key; /* registry: weak table thread -> co_state userdata */
static co_state *threads;  /* every co_state, newest first */

/* Links cs at the head of the thread list in one store, so a signal
 * handler walking the list sees it whole or not at all. */
static void threads_link(co_state *cs)
{
    cs->prev = NULL;
    cs->next = threads;
    if (threads)
        threads->prev = cs;
    atomic_signal_fence(memory_order_seq_cst);
    threads = cs;
}

static int costate_gc(lua_State *L)
{
    co_state *cs = lua_touserdata(L, 1);
    free(cs->siblings);
    cs->siblings = NULL;
    for (int i = 0; i < FOLD_HANDLES; i++) {
        luaL_unref(L, LUA_REGISTRYINDEX, cs->fold_handles[i].ref);
        cs->fold_handles[i].ref = LUA_NOREF;
    }
    if (!cs->L)
        return 0;
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        threads = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    atomic_signal_fence(memory_order_seq_cst);
    cs->L = NULL;
    ms_autospans_free(cs->autos);
    cs->autos = NULL;
    return 0;
}

void ms_each_thread(void (*fn)(lua_State *co))
{
    for (co_state *cs = threads; cs; cs = cs->next)
        if (cs->L)
            fn(cs->L);
}

co_state *ms_costate_new_(lua_State *L, lua_State *owner, const co_state *from)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &costates_key);          /* costates */
    co_state *cs = lua_newuserdatauv(L, sizeof *cs, UV_COUNT);  /* costates cs */
    memset(cs, 0, sizeof *cs);
    for (int i = 0; i < FOLD_HANDLES; i++)
        cs->fold_handles[i].ref = LUA_NOREF;
    luaL_setmetatable(L, COSTATE_MT);
    cs->L = owner;
    cs->top = MS_NONE;
    if (from && trace_alive(from)) {
        cs->trace = from->trace;
        cs->gen = from->gen;
        cs->top = from->top;
        cs->depth = from->depth;
        cs->explicit_trace = from->explicit_trace;
        cs->case_ctx = from->case_ctx;
    }
    lua_pushthread(owner);
    if (owner != L)
        lua_xmove(owner, L, 1);                                 /* costates cs thread */
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, -3, UV_THREAD);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);                                          /* costates cs */
    lua_pop(L, 2);
    *(co_state **)lua_getextraspace(owner) = cs;
    threads_link(cs);
    ms_arm_interrupt(owner); /* started after a signal: interrupted like the rest */
    return cs;
}

void ms_push_costate_ud_(lua_State *L)
{
    costate(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &costates_key);
    lua_pushthread(L);
    lua_rawget(L, -2);
    lua_remove(L, -2);
}

/* coroutine.create/wrap wrappers: the new coroutine's spans nest under the
 * span open in its creator. Upvalue 1 is the original function. */
static int co_create(lua_State *L)
{
    int n = lua_gettop(L);
    co_state *mine = costate(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, 1);
    if (lua_isthread(L, 1)) {
        ms_costate_new_(L, lua_tothread(L, 1), mine);
    } else if (lua_getupvalue(L, 1, 1)) { /* coroutine.wrap: a closure over the thread */
        if (lua_isthread(L, -1))
            ms_costate_new_(L, lua_tothread(L, -1), mine);
        lua_pop(L, 1);
    }
    return 1;
}

static void wrap_coroutine_fn(lua_State *L, const char *field)
{
    lua_getglobal(L, "coroutine");
    lua_getfield(L, -1, field);
    lua_pushcclosure(L, co_create, 1);
    lua_setfield(L, -2, field);
    lua_pop(L, 1);
}

void ms_open_costates_(lua_State *L)
{
    luaL_newmetatable(L, COSTATE_MT);
    lua_pushcfunction(L, costate_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_newtable(L);                                          /* costates */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &costates_key);
    ms_costate_new_(L, L, NULL);                              /* main thread */

    wrap_coroutine_fn(L, "create");
    wrap_coroutine_fn(L, "wrap");
}
