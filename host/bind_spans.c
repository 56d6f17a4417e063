/* bind_spans — ctx:spans(): the ended spans of a trace as plain Lua
 * tables, for eval scorers (spans(ctx) in scripts/scorers.lua) and any
 * script that wants to look at what its trace did so far.
 *
 * A trace is cut into parts while it is open (ms_trace_cut), and a cut
 * span leaves the buffer; traces started while the host keeps span
 * digests (moonspan.keep_spans(true), which `moonspan eval` turns on)
 * keep a summary of each cut span (ms_digest.h), so the list is whole.
 * A trace cut without one cannot say what it lost: ctx:spans() raises
 * rather than return part of it. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "host.h"
#include "ms_digest.h"

static void set_str(lua_State *L, const ms_digest *d, ms_str s, const char *key)
{
    if (s.off == MS_NONE)
        return;
    lua_pushlstring(L, ms_digest_str(d, s), s.len);
    lua_setfield(L, -2, key);
}

static void set_num(lua_State *L, double v, const char *key)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static void set_int(lua_State *L, int64_t v, const char *key)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, int v, const char *key)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, key);
}

static void push_entry(lua_State *L, const ms_digest *d, const ms_digest_span *e)
{
    lua_createtable(L, 0, 16);
    set_str(L, d, e->name, "name");
    set_str(L, d, e->path, "path");
    set_int(L, e->gidx, "index"); /* in begin order; 0 is the trace's root */
    set_int(L, e->parent == MS_NONE ? 0 : e->parent, "parent");
    lua_pushstring(L, ms_kind_name(e->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, ms_status_name(e->status));
    lua_setfield(L, -2, "status");
    set_num(L, (double)e->start_ns / 1e6, "start_ms");
    set_num(L, (double)e->duration_ns / 1e6, "duration_ms");
    if (e->kind == MS_KIND_FOLD) {
        set_int(L, (int64_t)e->count, "count");
        set_int(L, (int64_t)e->errors, "errors");
        set_num(L, (double)e->duration_ns / 1e6, "total_ms");
        set_num(L, (double)e->min_ns / 1e6, "min_ms");
        set_num(L, (double)e->max_ns / 1e6, "max_ms");
        set_num(L, (double)e->p50_ns / 1e6, "p50_ms");
        set_num(L, (double)e->p95_ns / 1e6, "p95_ms");
    }
    if (e->error_type.off != MS_NONE || e->error_message.off != MS_NONE) {
        set_str(L, d, e->error_type, "error_type");
        set_str(L, d, e->error_message, "error");
        set_bool(L, e->error_own, "error_own");
    }
    set_str(L, d, e->model, "model");
    set_str(L, d, e->provider, "provider");
    if (e->input_tokens >= 0) {
        set_int(L, e->input_tokens, "input_tokens");
        set_int(L, e->output_tokens, "output_tokens");
        set_int(L, e->cache_read_tokens, "cache_read_tokens");
        set_int(L, e->cache_write_tokens, "cache_write_tokens");
        set_bool(L, e->estimated, "tokens_estimated");
        set_bool(L, e->replayed, "replayed");
        if (!isnan(e->cost_usd))
            set_num(L, e->cost_usd, "cost_usd");
    }
    set_int(L, e->retries, "retries");
    if (e->retry_state != MS_RETRY_NONE)
        set_bool(L, e->retry_state == MS_RETRY_SUCCEEDED, "retry_succeeded");
    if (e->backoff_ns)
        set_num(L, (double)e->backoff_ns / 1e6, "backoff_ms");
    set_str(L, d, e->attrs_json, "attrs_json");
}

/* The summaries of the spans still in the buffer live in a userdata
 * whose __gc frees them: a memory error while the list is built unwinds
 * without leaking them (ms_digest_free is safe to call twice). */
static int scratch_gc(lua_State *L)
{
    ms_digest_free(lua_touserdata(L, 1));
    return 0;
}

static ms_digest *new_scratch(lua_State *L)
{
    ms_digest *d = lua_newuserdatauv(L, sizeof *d, 0);
    memset(d, 0, sizeof *d);
    if (luaL_newmetatable(L, "moonspan.span_digest")) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return d;
}

int ms_push_trace_spans(lua_State *L, const ms_trace *t, const char *trace_name)
{
    const ms_digest *kept = t->keep_digest ? t->digest : NULL;
    if (t->cut_spans > 0 && !kept)
        return luaL_error(L, "ctx:spans(): trace '%s' was written in parts while open and %I of its spans "
                             "are no longer in memory; call moonspan.keep_spans(true) before the trace "
                             "starts (moonspan eval does) so every span is kept",
                          trace_name, (lua_Integer)t->cut_spans);
    ms_digest *fresh = new_scratch(L);                       /* ... scratch */
    ms_digest_add_ended(fresh, t, kept);
    uint64_t dropped = fresh->dropped + (kept ? kept->dropped : 0);
    int oom = fresh->oom || (kept && kept->oom) || t->oom;
    if (dropped || oom) {
        ms_digest_free(fresh);
        if (oom)
            return luaL_error(L, "ctx:spans(): memory ran out while trace '%s' kept its spans; the list "
                                 "would be incomplete", trace_name);
        return luaL_error(L, "ctx:spans(): trace '%s' has more than %d ended spans (%I not kept); fold "
                             "repeated spans (span(name, {fold = true}, fn)) so the list stays whole",
                          trace_name, MS_DIGEST_MAX, (lua_Integer)dropped);
    }
    uint32_t n = (kept ? kept->n : 0) + fresh->n;
    lua_createtable(L, (int)n, 0);                           /* ... scratch list */
    lua_Integer i = 0;
    for (uint32_t k = 0; kept && k < kept->n; k++) {
        push_entry(L, kept, &kept->spans[k]);
        lua_rawseti(L, -2, ++i);
    }
    for (uint32_t k = 0; k < fresh->n; k++) {
        push_entry(L, fresh, &fresh->spans[k]);
        lua_rawseti(L, -2, ++i);
    }
    ms_digest_free(fresh); /* now rather than at the next collection */
    lua_remove(L, -2);                                       /* ... list */
    return 1;
}
