/* http — the HTTP client under llm.call, on libcurl's multi interface.
 *
 * Lua sees transfers, not sockets: moonspan.http.start(req) begins one and
 * returns a handle; moonspan.http.poll(ms) drives every transfer in flight
 * and returns those that finished; moonspan.http.wait(h) drives them until
 * h is done; h:result() gives {status, headers, body, ...} or raises a
 * transport error. One multi handle serves the whole process, so its
 * connection cache keeps connections alive from call to call, and the
 * scheduler in scripts/sched.lua can keep many transfers in flight from
 * coroutines without a thread per call.
 *
 * Streaming: a request with on_chunk gets each piece of the body as it
 * arrives. The callback runs under lua_pcall inside curl's write callback
 * (never raising through curl's frames); an error aborts the transfer and
 * h:result() raises that same error value afterwards. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "lua_fields.h"
#include "ms_buf.h"
#include "ms_clock.h"

#define HTTP_MT "moonspan.http"

typedef struct transfer {
    CURL *easy;             /* NULL once cleaned up */
    struct curl_slist *req_headers;
    char *req_body;
    ms_buf body, headers;   /* response */
    long status;
    int in_multi, done;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    int on_chunk_ref;       /* LUA_NOREF when not streaming */
    int error_ref;          /* error raised by on_chunk, LUA_NOREF when none */
    int self_ref;           /* keeps the handle alive while curl owns it */
    int64_t started, first_byte;
} transfer;

static CURLM *multi;
/* The Lua thread inside poll/wait, the only place curl calls back from:
 * on_chunk callbacks run on it. */
static lua_State *driving_L;

/* --- curl callbacks (never raise) ------------------------------------- */

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    transfer *t = ud;
    size_t len = size * n;
    /* a new status line (after a redirect or 100 Continue) starts over */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        ms_buf_reset(&t->headers);
    ms_buf_add(&t->headers, data, len);
    return t->headers.oom ? 0 : len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    transfer *t = ud;
    size_t len = size * n;
    if (!t->first_byte)
        t->first_byte = ms_mono_ns();
    ms_buf_add(&t->body, data, len);
    if (t->body.oom)
        return 0;
    if (t->on_chunk_ref != LUA_NOREF && driving_L) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 300)
            return len; /* an error body: kept whole for the adapter, not streamed */
        lua_State *L = driving_L;
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->on_chunk_ref);
        lua_pushlstring(L, data, len);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            t->error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            return 0; /* aborts the transfer; result() raises the error */
        }
    }
    return len;
}

/* --- transfers ---------------------------------------------------------- */

static void cleanup(lua_State *L, transfer *t)
{
    if (t->easy) {
        if (t->in_multi) {
            curl_multi_remove_handle(multi, t->easy);
        }
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    t->in_multi = 0;
    curl_slist_free_all(t->req_headers);
    t->req_headers = NULL;
    free(t->req_body);
    t->req_body = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, t->on_chunk_ref);
    t->on_chunk_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
    t->self_ref = LUA_NOREF;
}

static int transfer_gc(lua_State *L)
{
    transfer *t = luaL_checkudata(L, 1, HTTP_MT);
    cleanup(L, t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->error_ref);
    t->error_ref = LUA_NOREF;
    ms_buf_free(&t->body);
    ms_buf_free(&t->headers);
    return 0;
}

/* Copies the request's headers into a curl list. Values never appear in
 * errors: they may be API keys. */
static struct curl_slist *build_headers(lua_State *L, int ix)
{
    struct curl_slist *list = NULL;
    if (lua_getfield(L, ix, "headers") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
                struct curl_slist *n = curl_slist_append(list, lua_tostring(L, -1));
                lua_pop(L, 1);
                if (!n) {
                    curl_slist_free_all(list);
                    luaL_error(L, "http: out of memory");
                }
                list = n;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    /* no "Expect: 100-continue" round trip before a JSON body */
    struct curl_slist *n = curl_slist_append(list, "Expect:");
    if (!n) {
        curl_slist_free_all(list);
        luaL_error(L, "http: out of memory");
    }
    return n;
}

/* The URL as it may be shown: "user:password@" (a credential) left out. */
static const char *without_userinfo(lua_State *L, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *start = scheme ? scheme + 3 : url;
    size_t hostlen = strcspn(start, "/?#");
    const char *at = memchr(start, '@', hostlen);
    if (!at)
        return url;
    return lua_pushfstring(L, "%s%s", lua_pushlstring(L, url, (size_t)(start - url)), at + 1);
}

/* moonspan.http.start{url=, method=, headers=, body=, connect_timeout_ms=,
 * timeout_ms=, on_chunk=} -> handle */
static int l_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "url");
    const char *url = luaL_checkstring(L, -1);
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return luaL_error(L, "http: url must start with http:// or https://, got '%s'", without_userinfo(L, url));
    long connect_ms = (long)ms_field_int(L, 1, "connect_timeout_ms", 10000, 0, LONG_MAX);
    long total_ms = (long)ms_field_int(L, 1, "timeout_ms", 600000, 0, LONG_MAX);
    lua_getfield(L, 1, "body");
    size_t body_len = 0;
    const char *body = luaL_optlstring(L, -1, NULL, &body_len);
    lua_getfield(L, 1, "method");
    const char *method = luaL_optstring(L, -1, body ? "POST" : "GET");
    if (lua_getfield(L, 1, "on_chunk") != LUA_TNIL)
        luaL_checktype(L, -1, LUA_TFUNCTION);                /* req url body method on_chunk */

    if (!multi && !(multi = curl_multi_init()))
        return luaL_error(L, "http: cannot start libcurl");

    /* the handle exists (and owns cleanup) before any resource is taken */
    transfer *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    t->on_chunk_ref = t->error_ref = t->self_ref = LUA_NOREF;
    luaL_setmetatable(L, HTTP_MT);
    if (!lua_isnil(L, -2)) {
        lua_pushvalue(L, -2);
        t->on_chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    t->req_headers = build_headers(L, 1);
    if (body && !(t->req_body = malloc(body_len ? body_len : 1)))
        return luaL_error(L, "http: out of memory");
    if (body)
        memcpy(t->req_body, body, body_len);
    if (!(t->easy = curl_easy_init()))
        return luaL_error(L, "http: cannot create a transfer");

    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req_body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->req_headers);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "moonspan/" MOONSPAN_VERSION);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (curl_multi_add_handle(multi, e) != CURLM_OK)
        return luaL_error(L, "http: cannot start the transfer");
    t->in_multi = 1;
    t->started = ms_mono_ns();
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* Moves finished transfers out of the multi; pushes each onto the list at
 * `list` (when list != 0). */
static void collect(lua_State *L, int list)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->result = m->data.result;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        curl_multi_remove_handle(multi, t->easy);
        t->in_multi = 0;
        t->done = 1;
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
        if (list)
            lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
        else
            lua_pop(L, 1);
        /* curl no longer calls back: the handle's life is Lua's again */
        luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
        t->self_ref = LUA_NOREF;
    }
}

/* One round of work: transfers advance, finished ones are collected.
 * Waits at most timeout_ms for activity. */
static void drive(lua_State *L, long timeout_ms, int list)
{
    int running;
    driving_L = L;
    curl_multi_perform(multi, &running);
    collect(L, list);
    if (running && timeout_ms > 0) {
        ms_host_before_wait((int64_t)timeout_ms * 1000000);
        curl_multi_poll(multi, NULL, 0, (int)timeout_ms, NULL);
        curl_multi_perform(multi, &running);
        collect(L, list);
    }
    driving_L = NULL;
}

static void check_interrupt(lua_State *L)
{
    if (ms_interrupted)
        ms_raise_interrupt(L);
}

/* moonspan.http.poll(timeout_ms) -> {finished handles} */
static int l_poll(lua_State *L)
{
    lua_Integer ms = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, ms >= 0, 1, "timeout must be >= 0");
    lua_newtable(L);
    if (!multi)
        return 1;
    drive(L, (long)(ms > 100 ? 100 : ms), lua_gettop(L)); /* short slices: interrupts stay prompt */
    check_interrupt(L);
    return 1;
}

/* moonspan.http.wait(h): drives all transfers until h is done. */
static int l_wait(lua_State *L)
{
    transfer *t = luaL_checkudata(L, 1, HTTP_MT);
    while (!t->done && t->easy) {
        drive(L, 100, 0);
        check_interrupt(L);
    }
    return 0;
}

static int transfer_done(lua_State *L)
{
    transfer *t = luaL_checkudata(L, 1, HTTP_MT);
    lua_pushboolean(L, t->done);
    return 1;
}

/* Raises the transport error of a failed transfer as a table error. */
static int raise_transport_error(lua_State *L, transfer *t)
{
    const char *type = "connection_error";
    if (t->result == CURLE_OPERATION_TIMEDOUT)
        type = "timeout_error";
    lua_createtable(L, 0, 4);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "retryable");
    lua_pushinteger(L, (lua_Integer)t->body.len);
    lua_setfield(L, -2, "received_bytes");
    return lua_error(L);
}

/* Parses the raw header block into a table of lowercased names. */
static void push_headers(lua_State *L, const ms_buf *h)
{
    lua_newtable(L);
    const char *p = h->data ? h->data : "", *end = p + h->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && colon > p) {
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (const char *c = p; c < colon; c++)
                luaL_addchar(&name, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
            luaL_pushresult(&name);
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            lua_pushlstring(L, v, (size_t)(ve - v));
            lua_rawset(L, -3);
        }
        p = eol + 1;
    }
}

/* h:result() -> {status, headers, body, elapsed_ms, ttfb_ms}; raises the
 * on_chunk error or a transport error. */
static int transfer_result(lua_State *L)
{
    transfer *t = luaL_checkudata(L, 1, HTTP_MT);
    if (!t->done)
        return luaL_error(L, "http: the transfer has not finished; wait for it first");
    if (t->error_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->error_ref);
        return lua_error(L);
    }
    if (t->body.oom || t->headers.oom)
        return luaL_error(L, "http: out of memory reading the response");
    if (t->result != CURLE_OK)
        return raise_transport_error(L, t);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, t->status);
    lua_setfield(L, -2, "status");
    push_headers(L, &t->headers);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
    lua_setfield(L, -2, "body");
    double total = 0;
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &total);
    lua_pushnumber(L, total * 1000);
    lua_setfield(L, -2, "elapsed_ms");
    if (t->first_byte) {
        lua_pushnumber(L, (double)(t->first_byte - t->started) / 1e6);
        lua_setfield(L, -2, "ttfb_ms");
    }
    return 1;
}

static int transfer_cancel(lua_State *L)
{
    transfer *t = luaL_checkudata(L, 1, HTTP_MT);
    cleanup(L, t);
    return 0;
}

void ms_open_http(lua_State *L)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        luaL_error(L, "cannot initialise libcurl");
    static const luaL_Reg meta[] = {{"__gc", transfer_gc}, {"__close", transfer_gc}, {NULL, NULL}};
    static const luaL_Reg methods[] = {
        {"result", transfer_result}, {"done", transfer_done}, {"cancel", transfer_cancel}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"start", l_start}, {"poll", l_poll}, {"wait", l_wait}, {NULL, NULL}};
    luaL_newmetatable(L, HTTP_MT);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_getglobal(L, "moonspan");
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    lua_setfield(L, -2, "http");
    lua_pop(L, 1);
}

void ms_http_shutdown(void)
{
    if (multi)
        curl_multi_cleanup(multi);
    multi = NULL;
    curl_global_cleanup();
}
