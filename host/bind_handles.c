/* bind_handles — the handles span() and trace() give their bodies: a
 * span's (s:set, s:event, s:record_llm, s:add_retries, s.id) and a
 * trace's ctx (ctx:set, ctx:add_tokens, ctx:add_error, ctx:summary,
 * ctx:totals, ctx:spans, ctx.id), and their metatables.
 *
 * A handle names its span by (trace, generation, index), so it outlives
 * what it names safely: a method on a span whose trace has ended, or that
 * was written already, raises an error that says so. ctx holds a
 * reference on its trace; its __gc ends a trace left open by an abandoned
 * coroutine (see ctx_gc). */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "bind_trace_impl.h"
#include "host.h"
#include "lua_fields.h"
#include "ms_clock.h"

/* --- span handle methods ------------------------------------------------- */

/* The handle's span, or an error when its trace is over. */
static span_handle *check_span(lua_State *L)
{
    span_handle *h = luaL_checkudata(L, 1, SPAN_MT);
    if (h->t->generation != h->gen || atomic_load(&h->t->state) != MS_TRACE_OPEN)
        luaL_error(L, "this span's trace has ended; record on a span while its trace is open");
    if (!ms_trace_span(h->t, h->idx))
        luaL_error(L, "this span has ended and was written already (a long trace is written as it "
                      "goes); record on a span while it is open");
    return h;
}

static int span_set(lua_State *L)
{
    span_handle *h = check_span(L);
    luaL_checkany(L, 3);
    ms_set_attr_(L, h->t, h->idx, 2, 3);
    lua_settop(L, 1);
    return 1;
}

/* Encodes the table at ix as a JSON object of scalar values. */
static void attrs_to_json(lua_State *L, int ix, ms_buf *b)
{
    int first = 1;
    ms_buf_addc(b, '{');
    lua_pushnil(L);
    while (lua_next(L, ix)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            ms_buf_free(b);
            luaL_error(L, "event attribute keys must be strings");
        }
        size_t n;
        const char *k = lua_tolstring(L, -2, &n);
        ms_json_key(b, &first, k);
        switch (lua_type(L, -1)) {
        case LUA_TSTRING: {
            const char *v = lua_tolstring(L, -1, &n);
            ms_json_str(b, v, n);
            break;
        }
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1))
                ms_json_int(b, lua_tointeger(L, -1));
            else
                ms_json_num(b, lua_tonumber(L, -1));
            break;
        case LUA_TBOOLEAN: ms_buf_adds(b, lua_toboolean(L, -1) ? "true" : "false"); break;
        default:
            lua_pop(L, 2);
            ms_buf_free(b);
            luaL_error(L, "event attribute '%s' must be a string, number or boolean", k);
        }
        lua_pop(L, 1);
    }
    ms_buf_addc(b, '}');
}

static int span_event(lua_State *L)
{
    span_handle *h = check_span(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    ms_buf b = {0};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        attrs_to_json(L, 3, &b);
    }
    ms_span_event(h->t, h->idx, ms_mono_ns(), name, len, b.len ? b.data : NULL, b.len);
    ms_buf_free(&b);
    lua_settop(L, 1);
    return 1;
}

static int64_t opt_tokens(lua_State *L, int ix, const char *field)
{
    return ms_field_int(L, ix, field, 0, 0, MS_TOKENS_MAX);
}

/* s:record_llm{provider=, model=, input_tokens=, output_tokens=,
 * cache_read_tokens=, cache_write_tokens=, estimated=, cost_usd=, ttft_ms=}
 * Makes the span an llm span. Cost comes from the price table unless
 * given (providers that know their own cost, e.g. local models at $0). */
static int span_record_llm(lua_State *L)
{
    span_handle *h = check_span(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    ms_llm_usage u = {0};
    u.provider = ms_field_str(L, 2, "provider", "unknown");
    u.model = ms_field_str(L, 2, "model", "unknown");
    u.input = opt_tokens(L, 2, "input_tokens");
    u.output = opt_tokens(L, 2, "output_tokens");
    u.cache_read = opt_tokens(L, 2, "cache_read_tokens");
    u.cache_write = opt_tokens(L, 2, "cache_write_tokens");
    u.estimated = ms_field_bool(L, 2, "estimated");
    u.replayed = ms_field_bool(L, 2, "replayed");
    double ttft_ms = ms_field_num(L, 2, "ttft_ms", -1);
    u.ttft_ns = ttft_ms >= 0 && ttft_ms < 1e12 ? (int64_t)(ttft_ms * 1e6) : -1;
    u.cost_usd = ms_field_num(L, 2, "cost_usd", NAN);
    int given = lua_getfield(L, 2, "cost_usd") != LUA_TNIL; /* a given NaN is refused, not "unknown" */
    lua_pop(L, 1);
    if (given && !(u.cost_usd >= 0 && u.cost_usd < 1e12))
        return luaL_error(L, "cost_usd must be a finite number of dollars >= 0, got %f", u.cost_usd);
    if (!given) {
        const ms_price *p = ms_the_host.prices ? ms_prices_find(ms_the_host.prices, u.model) : NULL;
        u.cost_usd = p ? ms_price_cost(p, u.input, u.output, u.cache_read, u.cache_write) : NAN;
    }
    ms_span_set_llm(h->t, h->idx, &u);
    if (isnan(u.cost_usd))
        lua_pushnil(L);
    else
        lua_pushnumber(L, u.cost_usd);
    return 1;
}

/* s:add_retries(n, succeeded [, backoff_ms]) — used by retry() and
 * llm.call; backoff_ms is the time spent waiting between the attempts. */
static int span_add_retries(lua_State *L)
{
    span_handle *h = check_span(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= UINT32_MAX, 2, "retries must be a non-negative integer");
    lua_Number wait = luaL_optnumber(L, 4, 0);
    luaL_argcheck(L, wait >= 0 && wait < 1e12, 4, "backoff_ms must be a finite number >= 0");
    ms_span_add_retries(h->t, h->idx, (uint32_t)n, lua_toboolean(L, 3), (int64_t)(wait * 1e6));
    lua_settop(L, 1);
    return 1;
}

static int span_index(lua_State *L)
{
    span_handle *h = luaL_checkudata(L, 1, SPAN_MT);
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "id") == 0) {
        char hex[17];
        if (h->t->generation != h->gen)
            return luaL_error(L, "this span's trace has ended; read s.id inside the span");
        ms_span_id_hex(ms_span_id(h->t, h->idx), hex);
        lua_pushstring(L, hex);
        return 1;
    }
    if (k && strcmp(k, "trace_id") == 0) {
        char hex[33];
        if (h->t->generation != h->gen)
            return luaL_error(L, "this span's trace has ended; read s.trace_id inside the span");
        ms_trace_id_hex(&h->t->id, hex);
        lua_pushstring(L, hex);
        return 1;
    }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int span_tostring(lua_State *L)
{
    span_handle *h = luaL_checkudata(L, 1, SPAN_MT);
    if (h->t->generation != h->gen)
        lua_pushliteral(L, "span (ended)");
    else if (!ms_trace_span(h->t, h->idx))
        lua_pushliteral(L, "span (written)");
    else
        lua_pushfstring(L, "span '%s'", ms_trace_str(h->t, ms_trace_span(h->t, h->idx)->name));
    return 1;
}

/* --- ctx, the handle of trace() ------------------------------------------ */

static ctx_handle *check_ctx(lua_State *L)
{
    return luaL_checkudata(L, 1, CTX_MT);
}

static ms_trace *check_open_ctx(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    if (atomic_load(&h->t->state) != MS_TRACE_OPEN)
        luaL_error(L, "trace %s has ended; only ctx:summary() and ctx.id work after it ends", h->id);
    return h->t;
}

static int ctx_set(lua_State *L)
{
    ms_trace *t = check_open_ctx(L);
    luaL_checkany(L, 3);
    ms_set_attr_(L, t, 0, 2, 3);
    lua_settop(L, 1);
    return 1;
}

static int ctx_add_tokens(lua_State *L)
{
    ms_trace *t = check_open_ctx(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    ms_tokens tok = {
        .input = opt_tokens(L, 2, "input"),
        .output = opt_tokens(L, 2, "output"),
        .cache_read = opt_tokens(L, 2, "cache_read"),
        .cache_write = opt_tokens(L, 2, "cache_write"),
    };
    ms_trace_add_tokens(t, &tok);
    lua_settop(L, 1);
    return 1;
}

/* ctx:add_error(message [, type]) or ctx:add_error(err) with err a table
 * such as an llm.call error ({type =, message =}): the request failed,
 * without raising. The type defaults to "error", as for a raised string. */
static int ctx_add_error(lua_State *L)
{
    ms_trace *t = check_open_ctx(L);
    const char *type = luaL_optstring(L, 3, NULL), *msg;
    size_t len;
    if (lua_type(L, 2) == LUA_TTABLE) {
        const char *ttype;
        ms_describe_error_(L, 2, &ttype, &msg, &len);
        if (!type)
            type = ttype;
    } else {
        msg = luaL_tolstring(L, 2, &len);
    }
    ms_trace_add_error(t, ms_mono_ns(), type, msg, len);
    lua_settop(L, 1);
    return 1;
}

static int ctx_summary(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    ms_buf b = {0};
    ms_trace_summary(h->t, ms_mono_ns(), &b);
    if (b.oom) {
        ms_buf_free(&b);
        return luaL_error(L, "out of memory building the summary");
    }
    ms_push_buf_free(L, &b);
    return 1;
}

/* ctx:totals() -> {duration_ms, input_tokens, output_tokens,
 * cache_read_tokens, cache_write_tokens, cost_usd (nil when unknown),
 * llm_calls, errors} — the trace so far, or as it ended. */
static int ctx_totals(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    ms_trace *t = h->t;
    ms_trace_totals tot;
    ms_trace_totals_get(t, &tot);
    const ms_span *root = ms_trace_span(t, 0);
    int64_t end = root->end ? root->end : ms_mono_ns();
    lua_createtable(L, 0, 8);
    lua_pushnumber(L, (double)(end - root->start) / 1e6);
    lua_setfield(L, -2, "duration_ms");
    lua_pushinteger(L, tot.tokens.input);
    lua_setfield(L, -2, "input_tokens");
    lua_pushinteger(L, tot.tokens.output);
    lua_setfield(L, -2, "output_tokens");
    lua_pushinteger(L, tot.tokens.cache_read);
    lua_setfield(L, -2, "cache_read_tokens");
    lua_pushinteger(L, tot.tokens.cache_write);
    lua_setfield(L, -2, "cache_write_tokens");
    if (!isnan(tot.cost_usd)) {
        lua_pushnumber(L, tot.cost_usd);
        lua_setfield(L, -2, "cost_usd");
    }
    lua_pushinteger(L, tot.llm_calls);
    lua_setfield(L, -2, "llm_calls");
    lua_pushnumber(L, tot.replayed_cost_usd);
    lua_setfield(L, -2, "replayed_cost_usd");
    lua_pushinteger(L, tot.replayed_calls);
    lua_setfield(L, -2, "replayed_calls");
    lua_pushinteger(L, tot.errors);
    lua_setfield(L, -2, "errors");
    return 1;
}

/* ctx:spans() -> the trace's ended spans so far (bind_spans.c). */
static int ctx_spans(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    return ms_push_trace_spans(L, h->t, ms_trace_str(h->t, ms_trace_span(h->t, 0)->name));
}

static int ctx_index(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "id") == 0) {
        lua_pushstring(L, h->id);
        return 1;
    }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* The last reference to ctx is gone. If its trace is still open, the
 * coroutine running the body was abandoned (never resumed, or cut off):
 * the trace can never end by itself, so it ends here, incomplete, and is
 * written. */
static int ctx_gc(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    ms_trace *t = h->t;
    h->t = NULL;
    if (!t)
        return 0;
    if (!h->joined && atomic_load(&t->state) == MS_TRACE_OPEN) {
        ms_trace_abort(t, ms_mono_ns(), ms_interrupted ? MS_STATUS_INTERRUPTED : MS_STATUS_INCOMPLETE);
        ms_host_trace_ended(t);
    }
    ms_tracer_release(ms_the_host.tracer, t);
    return 0;
}

static int ctx_tostring(lua_State *L)
{
    ctx_handle *h = check_ctx(L);
    lua_pushfstring(L, "trace %s", h->id);
    return 1;
}

/* --- registration -------------------------------------------------------- */

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "methods");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

void ms_open_handles_(lua_State *L)
{
    static const luaL_Reg span_meta[] = {
        {"__index", span_index}, {"__tostring", span_tostring}, {NULL, NULL}};
    static const luaL_Reg span_methods[] = {
        {"set", span_set}, {"event", span_event}, {"record_llm", span_record_llm},
        {"add_retries", span_add_retries}, {NULL, NULL}};
    static const luaL_Reg ctx_meta[] = {
        {"__index", ctx_index}, {"__gc", ctx_gc}, {"__tostring", ctx_tostring}, {NULL, NULL}};
    static const luaL_Reg ctx_methods[] = {
        {"set", ctx_set}, {"add_tokens", ctx_add_tokens}, {"add_error", ctx_add_error},
        {"summary", ctx_summary}, {"totals", ctx_totals}, {"spans", ctx_spans}, {NULL, NULL}};
    new_class(L, SPAN_MT, span_meta, span_methods);
    new_class(L, CTX_MT, ctx_meta, ctx_methods);
}
