/* runtime — the Lua state the host runs scripts in.
 *
 * Sets up the standard libraries, the scripts/ library (compiled in and
 * installed in package.preload), the `moonspan` table of host functions,
 * span/trace and the lifecycle's os.exit. Every call into Lua is protected
 * and errors come back with the traceback of where they were raised. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "embedded.h"
#include "host.h"
#include "lua_fields.h"
#include "ms_clock.h"
#include "ms_fmt.h"
#include "ms_percentile.h"
#include "ms_text.h"

int luaopen_cjson(lua_State *L);

/* --- host functions for scripts ----------------------------------------- */

/* moonspan.sleep_ms(ms): waits, but gives up at once on SIGINT/SIGTERM so
 * an interrupted script unwinds (and its spans are written) promptly. */
static int l_sleep_ms(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_argcheck(L, ms >= 0 && ms < 1e10, 1, "milliseconds must be between 0 and 1e10");
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    ms_host_before_wait((int64_t)(ms * 1e6));
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !ms_interrupted)
        ;
    if (ms_interrupted)
        return ms_raise_interrupt(L);
    return 0;
}

/* moonspan.now_ms(): monotonic milliseconds, for measuring inside scripts. */
static int l_now_ms(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)ms_mono_ns() / 1e6);
    return 1;
}

/* moonspan.cost(model, usage): USD for a usage table, or nil when the
 * model has no price. */
static int l_cost(lua_State *L)
{
    const char *model = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const ms_price *p = ms_the_host.prices ? ms_prices_find(ms_the_host.prices, model) : NULL;
    if (!p) {
        lua_pushnil(L);
        return 1;
    }
    int64_t v[4];
    static const char *const fields[] = {"input_tokens", "output_tokens", "cache_read_tokens",
                                         "cache_write_tokens"};
    for (int i = 0; i < 4; i++)
        v[i] = ms_field_int(L, 2, fields[i], 0, 0, MS_TOKENS_MAX);
    lua_pushnumber(L, ms_price_cost(p, v[0], v[1], v[2], v[3]));
    return 1;
}

/* moonspan.percentiles(values, qs) -> {p_q1, p_q2, ...}: exact, by linear
 * interpolation between closest ranks (the report's definition). */
static int l_percentiles(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_rawlen(L, 1), nq = lua_rawlen(L, 2);
    double *v = lua_newuserdatauv(L, (n + 2 * nq + 1) * sizeof *v, 0); /* freed by the GC */
    double *qs = v + n, *out = qs + nq;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        int ok;
        v[i] = lua_tonumberx(L, -1, &ok);
        if (!ok || isnan(v[i]))
            return luaL_error(L, "percentiles: values[%d] is not a number", (int)i + 1);
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < nq; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        qs[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    if (ms_percentiles(v, n, qs, nq, out) != 0)
        return luaL_error(L, "percentiles: each q must be a number from 0 to 100");
    lua_createtable(L, (int)nq, 0);
    for (size_t i = 0; i < nq; i++) {
        if (isnan(out[i]))
            lua_pushnil(L);
        else
            lua_pushnumber(L, out[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* moonspan.fmt_ms(ms): a duration as the report prints it ("370 ms",
 * "3.00 µs"), so eval output and the views agree on units. */
static int l_fmt_ms(lua_State *L)
{
    char buf[48];
    lua_pushstring(L, ms_fmt_ms(buf, sizeof buf, (double)luaL_checknumber(L, 1)));
    return 1;
}

static int push_lstring(lua_State *L)
{
    lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

void ms_push_buf_free(lua_State *L, ms_buf *b)
{
    lua_pushcfunction(L, push_lstring);
    lua_pushlightuserdata(L, b->data ? b->data : (char *)"");
    lua_pushinteger(L, (lua_Integer)b->len);
    int rc = lua_pcall(L, 2, 1, 0);
    ms_buf_free(b);
    if (rc != LUA_OK)
        lua_error(L);
}

/* moonspan.escape(s [, keep_newlines]): s with every control character
 * made visible (ms_text.h), for printing text from models and servers. */
static int l_escape(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    ms_buf b = {0};
    ms_buf_add_text(&b, s, n, lua_toboolean(L, 2) ? MS_TEXT_NEWLINES : 0);
    if (b.oom) {
        ms_buf_free(&b);
        return luaL_error(L, "out of memory");
    }
    ms_push_buf_free(L, &b);
    return 1;
}

/* moonspan.isatty(fd): is that descriptor a terminal (progress bars). */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* moonspan.git_commit(): the commit checked out in the current folder, or
 * nil outside a git work tree; read from .git directly, no subprocess. */
static int l_git_commit(lua_State *L)
{
    char head[512], path[600];
    FILE *f = fopen(".git/HEAD", "r");
    if (!f || !fgets(head, sizeof head, f)) {
        if (f)
            fclose(f);
        lua_pushnil(L);
        return 1;
    }
    fclose(f);
    head[strcspn(head, "\r\n")] = 0;
    if (strncmp(head, "ref: ", 5) != 0) { /* detached: HEAD is the sha */
        lua_pushstring(L, head);
        return 1;
    }
    snprintf(path, sizeof path, ".git/%s", head + 5);
    char sha[64] = "";
    if ((f = fopen(path, "r"))) {
        if (!fgets(sha, sizeof sha, f))
            sha[0] = 0;
        fclose(f);
    } else if ((f = fopen(".git/packed-refs", "r"))) { /* ref packed away */
        char line[700];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            char *sp = strchr(line, ' ');
            if (sp && strcmp(sp + 1, head + 5) == 0) {
                *sp = 0;
                snprintf(sha, sizeof sha, "%.63s", line);
                break;
            }
        }
        fclose(f);
    }
    sha[strcspn(sha, "\r\n")] = 0;
    if (sha[0])
        lua_pushstring(L, sha);
    else
        lua_pushnil(L);
    return 1;
}

/* Prints "who: msg" on stderr; msg (an error from a script, a model or a
 * server) with its control characters made visible, its lines kept. */
static void print_error(const char *who, const char *msg)
{
    ms_buf b = {0}, clean = {0};
    msg = msg ? msg : "(no message)";
    ms_host_redact(msg, strlen(msg), &clean); /* it may quote a key or an address */
    ms_buf_adds(&b, who);
    ms_buf_adds(&b, ": ");
    ms_buf_add_text(&b, clean.oom ? "(out of memory)" : clean.data ? clean.data : "", clean.len, MS_TEXT_NEWLINES);
    ms_buf_free(&clean);
    ms_buf_addc(&b, '\n');
    if (!b.oom)
        fputs(b.data, stderr);
    ms_buf_free(&b);
}

static int init_state(lua_State *L)
{
    luaL_openlibs(L);
    ms_embedded_preload(L);
    static const luaL_Reg host_fns[] = {
        {"sleep_ms", l_sleep_ms}, {"now_ms", l_now_ms}, {"cost", l_cost},
        {"percentiles", l_percentiles}, {"fmt_ms", l_fmt_ms}, {"isatty", l_isatty}, {"escape", l_escape}, {"git_commit", l_git_commit},
        {NULL, NULL}};
    luaL_newlib(L, host_fns);
    lua_pushliteral(L, MOONSPAN_VERSION);
    lua_setfield(L, -2, "version");
    lua_setglobal(L, "moonspan");
    ms_open_trace(L);
    ms_open_http(L);
    ms_open_exec(L);
    ms_open_sha256(L);
    ms_open_stats(L);
    ms_open_redact(L);
    ms_open_lifecycle(L);
    /* the Lua half of the API: retry, llm, ... */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moonspan.init");
    lua_call(L, 1, 0);
    return 0;
}

/* The message handler of the script's own pcall: records the failure on
 * the run trace, then gives the error as text with the traceback of where
 * it was raised (taken by the span it was raised in, when there was one:
 * the traceback here would start where span() raised it again). */
static int msghandler(lua_State *L)
{
    ms_host_run_failed(L, 1);
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (ms_is_interrupt(L, 1)) { /* where it was interrupted is in the message */
        lua_pushstring(L, msg);
        return 1;
    }
    if (ms_push_raise_traceback(L, 1)) {
        lua_pushfstring(L, "%s\n%s", msg, lua_tostring(L, -1));
        return 1;
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

lua_State *ms_runtime_new(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, init_state);
    if (lua_pcall(L, 0, 0, 1) != LUA_OK) {
        print_error("moonspan: cannot start the Lua runtime", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    lua_settop(L, 0);
    return L;
}

/* --- running a script ---------------------------------------------------- */

/* package.path gets the script's folder first, so a pipeline can require
 * its own modules wherever it is run from. */
static void add_script_dir(lua_State *L, const char *path)
{
    const char *slash = strrchr(path, '/');
    lua_getglobal(L, "package");                                /* package */
    if (slash)
        lua_pushlstring(L, path, (size_t)(slash - path));
    else
        lua_pushliteral(L, ".");                                /* package dir */
    lua_getfield(L, -2, "path");                                /* package dir path */
    lua_pushfstring(L, "%s/?.lua;%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_setfield(L, -4, "path");
    lua_pop(L, 3);
}

/* Whether a script failed because it calls suite "name" {...}, which only
 * `moonspan eval` defines: the first line of its error says so. */
static int is_eval_suite_error(const char *msg)
{
    static const char sig[] = "attempt to call a nil value (global 'suite')";
    if (!msg)
        return 0;
    const char *hit = strstr(msg, sig);
    if (!hit)
        return 0;
    const char *nl = strchr(msg, '\n');
    return !nl || hit < nl;
}

int ms_runtime_run_file(lua_State *L, const char *path, int argc, char **argv, int first_arg)
{
    /* arg as in the lua interpreter: arg[0] the script, arg[1..] its arguments */
    lua_createtable(L, argc - first_arg, first_arg + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - first_arg + 1);
    }
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");
    add_script_dir(L, path);

    lua_pushcfunction(L, msghandler);
    if (luaL_loadfile(L, path) != LUA_OK) {
        print_error("moonspan", lua_tostring(L, -1));
        lua_settop(L, 0);
        return 1;
    }
    int nargs = argc - first_arg;
    luaL_checkstack(L, nargs, "too many script arguments");
    for (int i = first_arg; i < argc; i++)
        lua_pushstring(L, argv[i]);
    int rc = lua_pcall(L, nargs, 0, 1);
    if (rc != LUA_OK && is_eval_suite_error(lua_tostring(L, -1))) {
        ms_buf b = {0};
        ms_buf_adds(&b, "moonspan run: ");
        ms_buf_add_texts(&b, path, 0);
        ms_buf_adds(&b, " is an eval suite: run it with `moonspan eval ");
        ms_buf_add_texts(&b, path, 0);
        ms_buf_adds(&b, "`\n");
        if (!b.oom)
            fputs(b.data, stderr);
        ms_buf_free(&b);
        lua_settop(L, 0);
        return MS_EXIT_USAGE;
    }
    if (rc != LUA_OK)
        print_error("moonspan", lua_tostring(L, -1));
    lua_settop(L, 0);
    return rc == LUA_OK ? 0 : 1;
}

int ms_runtime_run_busted(lua_State *L, int argc, char **argv, int first_arg)
{
    lua_createtable(L, argc - first_arg, 1);
    for (int i = first_arg; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - first_arg + 1);
    }
    lua_pushliteral(L, "moonspan test");
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");
    /* busted's runner inspects the Lua function that calls it, so call it
     * from a chunk rather than straight from C */
    static const char runner[] =
        "local ok, run = pcall(require, 'busted.runner')\n"
        "if not ok then error('cannot load busted (install the lua-busted package, "
        "e.g. with `make deps`): ' .. tostring(run), 0) end\n"
        "run({standalone = false})\n";
    lua_pushcfunction(L, msghandler);
    if (luaL_loadbuffer(L, runner, sizeof runner - 1, "=moonspan test") != LUA_OK) {
        print_error("moonspan test", lua_tostring(L, -1));
        lua_settop(L, 0);
        return 1;
    }
    int rc = lua_pcall(L, 0, 0, 1);
    if (rc != LUA_OK)
        print_error("moonspan test", lua_tostring(L, -1));
    lua_settop(L, 0);
    return rc == LUA_OK ? 0 : 1;
}

/* Calls require(module).main(opts) with the table on top of the stack
 * (popped), protected. Returns main's integer result (its exit status), or
 * 1 when it raised (message and traceback on stderr). */
int ms_runtime_call_main(lua_State *L, const char *module)
{
    int opts = lua_gettop(L);
    lua_pushcfunction(L, msghandler);                 /* opts msgh */
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    if (lua_pcall(L, 1, 1, opts + 1) != LUA_OK) {     /* opts msgh mod|err */
        print_error("moonspan", lua_tostring(L, -1));
        lua_settop(L, opts - 1);
        return 1;
    }
    lua_getfield(L, -1, "main");                      /* opts msgh mod main */
    lua_pushvalue(L, opts);
    int rc = lua_pcall(L, 1, 1, opts + 1);            /* opts msgh mod status|err */
    int status = 1;
    if (rc != LUA_OK)
        print_error("moonspan", lua_tostring(L, -1));
    else if (lua_isinteger(L, -1))
        status = (int)lua_tointeger(L, -1);
    lua_settop(L, opts - 1);
    return status;
}
