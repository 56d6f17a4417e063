/* cli_budget — --budget-usd on `run` and `eval`: the budgets that stop a
 * run's LLM spending (scripts/budget.lua enforces them), parsed here and
 * handed to the Lua side once the runtime exists. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"

static const char FIX[] = "give e.g. --budget-usd 2, or --budget-usd request=0.05,run=2 (kinds: run, request, call)";

/* One amount: a finite number of dollars from 0 to 1e12. */
static double amount(ms_cli *c, const char *what, const char *v, size_t n)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        ms_cli_usage_error(c, "--budget-usd: %s needs an amount of dollars; %s", what, FIX);
    memcpy(buf, v, n);
    buf[n] = 0;
    char *end;
    double x = strtod(buf, &end);
    if (end == buf || *end || !(x >= 0 && x <= 1e12))
        ms_cli_usage_error(c, "--budget-usd: '%s' is not an amount of dollars >= 0 for %s; %s", buf, what, FIX);
    return x;
}

int ms_cli_budget(ms_cli *c)
{
    const char *v;
    if (!ms_cli_value(c, "--budget-usd", &v))
        return 0;
    ms_budget_opts *b = &c->budget;
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (n == 0)
            ms_cli_usage_error(c, "--budget-usd '%s' has an empty part; %s", v, FIX);
        size_t klen = eq ? (size_t)(eq - p) : 0;
        const char *val = eq ? eq + 1 : p;
        size_t vlen = eq ? n - klen - 1 : n;
        int kind;
        if (!eq || (klen == 3 && memcmp(p, "run", 3) == 0))
            kind = 0;
        else if (klen == 7 && memcmp(p, "request", 7) == 0)
            kind = 1;
        else if (klen == 4 && memcmp(p, "call", 4) == 0)
            kind = 2;
        else
            ms_cli_usage_error(c, "--budget-usd: unknown budget '%.*s'; %s", (int)klen, p, FIX);
        static const char *const names[] = {"run", "request", "call"};
        if (b->has[kind])
            ms_cli_usage_error(c, "--budget-usd gives the %s budget twice; give each kind once", names[kind]);
        b->has[kind] = 1;
        b->usd[kind] = amount(c, names[kind], val, vlen);
        if (!comma)
            break;
        p = comma + 1;
    }
    return 1;
}

/* Protected part of ms_budget_apply: sets moonspan.budget's fields and
 * llm.defaults.budget_usd. */
static int apply(lua_State *L)
{
    const ms_budget_opts *b = lua_touserdata(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moonspan.budget");
    lua_call(L, 1, 1);                                     /* budget */
    if (b->has[0]) {
        lua_pushnumber(L, b->usd[0]);
        lua_setfield(L, -2, "run_usd");
    }
    if (b->has[1]) {
        lua_pushnumber(L, b->usd[1]);
        lua_setfield(L, -2, "request_usd");
    }
    if (b->has[2]) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "moonspan.llm");
        lua_call(L, 1, 1);                                 /* budget llm */
        lua_getfield(L, -1, "defaults");                   /* budget llm defaults */
        lua_pushnumber(L, b->usd[2]);
        lua_setfield(L, -2, "budget_usd");
    }
    return 0;
}

int ms_budget_apply(lua_State *L, const ms_budget_opts *b)
{
    if (!b->has[0] && !b->has[1] && !b->has[2])
        return 0;
    ms_the_host.has_request_budget = b->has[1];
    ms_the_host.request_budget_usd = b->usd[1];
    lua_pushcfunction(L, apply);
    lua_pushlightuserdata(L, (void *)b);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}
