/* bind_errors — what a span records of an error leaving it, for Lua.
 *
 * Errors are recorded, then raised again unchanged: the message handler
 * of every span's pcall (ms_span_msgh_) records an error on the span
 * where it was raised, with the traceback taken there; on the way out,
 * each enclosing span records it as passing through (ms_span_failed_),
 * so the error is counted once, where it was raised. The co_state's user
 * values (UV_*) keep the error in flight to tell the two apart. */
#include <lauxlib.h>
#include <lua.h>

#include "bind_trace_impl.h"
#include "host.h"

int ms_is_propagation_(lua_State *L, co_state *cs, uint32_t idx, int errix)
{
    const ms_span *child = cs->propagating ? ms_trace_span(cs->trace, cs->prop_child) : NULL;
    if (!child || child->parent != idx)
        return 0;
    errix = lua_absindex(L, errix);
    ms_push_costate_ud_(L);
    lua_getiuservalue(L, -1, UV_PROPAGATING);
    int same = lua_rawequal(L, -1, errix);
    lua_pop(L, 2);
    return same;
}

void ms_describe_error_(lua_State *L, int errix, const char **type, const char **msg, size_t *len)
{
    errix = lua_absindex(L, errix);
    *type = "error";
    *msg = NULL;
    *len = 0;
    if (lua_type(L, errix) == LUA_TSTRING) {
        *msg = lua_tolstring(L, errix, len);
        return;
    }
    if (lua_type(L, errix) == LUA_TTABLE) {
        *type = "table";
        if (lua_getfield(L, errix, "type") == LUA_TSTRING)
            *type = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
        if (lua_getfield(L, errix, "message") == LUA_TSTRING) {
            *msg = lua_tolstring(L, -1, len);
            lua_pop(L, 1);
            return;
        }
        lua_pop(L, 1);
    } else {
        *type = luaL_typename(L, errix);
    }
    /* no message field: tostring, protected, since a __tostring may raise */
    if (!luaL_getmetafield(L, errix, "__tostring")) {
        if (lua_type(L, errix) == LUA_TTABLE || lua_type(L, errix) >= LUA_TFUNCTION)
            lua_pushfstring(L, "%s: %p", luaL_typename(L, errix), lua_topointer(L, errix));
        else /* nil, boolean, number: their value is the message */
            luaL_tolstring(L, errix, NULL);
    } else {
        lua_pushvalue(L, errix);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
            lua_pop(L, 1);
            lua_pushstring(L, "(error object whose __tostring failed)");
        }
    }
    /* left on the stack until the caller's frame ends: keeps msg alive */
    *msg = lua_tolstring(L, -1, len);
}

int ms_span_msgh_(lua_State *L)
{
    co_state *cs = costate(L);
    if (!trace_alive(cs) || cs->top == MS_NONE)
        return 1;
    if (ms_is_interrupt(L, 1)) {
        ms_span_interrupted(cs->trace, cs->top);
        return 1;
    }
    const ms_span *open = ms_trace_span(cs->trace, cs->top);
    if (open && open->error == MS_NONE && !ms_is_propagation_(L, cs, cs->top, 1)) {
        const char *type, *msg;
        size_t len;
        int top = lua_gettop(L);
        ms_describe_error_(L, 1, &type, &msg, &len);
        luaL_traceback(L, L, NULL, 1);
        ms_span_fail(cs->trace, cs->top, 1, type, msg, len, lua_tostring(L, -1));
        ms_push_costate_ud_(L);                                  /* ... tb cs */
        lua_pushvalue(L, -2);
        lua_setiuservalue(L, -2, UV_TRACEBACK);
        lua_pushvalue(L, 1);
        lua_setiuservalue(L, -2, UV_RAISED);
        lua_settop(L, top);
    }
    return 1;
}

int ms_push_raise_traceback(lua_State *L, int errix)
{
    errix = lua_absindex(L, errix);
    ms_push_costate_ud_(L);
    lua_getiuservalue(L, -1, UV_RAISED);
    if (lua_isnil(L, -1) || !lua_rawequal(L, -1, errix)) {
        lua_pop(L, 2);
        return 0;
    }
    lua_getiuservalue(L, -2, UV_TRACEBACK);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 1;
}

void ms_span_failed_(lua_State *L, co_state *cs, uint32_t idx)
{
    ms_trace *t = cs->trace;
    int errix = lua_gettop(L);
    if (ms_is_interrupt(L, errix)) {
        ms_span_interrupted(t, idx);
        return;
    }
    const ms_span *sp = ms_trace_span(t, idx);
    if (sp && sp->error == MS_NONE) {
        const char *type, *msg;
        size_t len;
        int own = !ms_is_propagation_(L, cs, idx, errix);
        ms_describe_error_(L, errix, &type, &msg, &len);
        ms_span_fail(t, idx, own, type, msg, len, NULL);
        lua_settop(L, errix);
    }
    ms_push_costate_ud_(L);
    lua_pushvalue(L, errix);
    lua_setiuservalue(L, -2, UV_PROPAGATING);
    lua_pop(L, 1);
    cs->propagating = 1;
    cs->prop_child = idx;
}

/* The script failed at top level: the run trace failed with it. The error
 * is counted here only if no span counted it on the way out. */
void ms_host_run_failed(lua_State *L, int errix)
{
    ms_host *h = &ms_the_host;
    if (!h->implicit || ms_trace_span(h->implicit, 0)->status != MS_STATUS_OK)
        return;
    if (ms_is_interrupt(L, errix)) {
        ms_span_interrupted(h->implicit, 0);
        return;
    }
    co_state *cs = costate(L);
    if (cs->trace == h->implicit && trace_alive(cs))
        ms_autospans_unwind(L, h->implicit, 0, errix);
    int own = !(cs->trace == h->implicit && trace_alive(cs) && ms_is_propagation_(L, cs, 0, errix));
    const char *type, *msg;
    size_t len;
    int top = lua_gettop(L);
    ms_describe_error_(L, errix, &type, &msg, &len);
    ms_span_fail(h->implicit, 0, own, type, msg, len, NULL);
    lua_settop(L, top);
}
