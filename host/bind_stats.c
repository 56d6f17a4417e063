/* bind_stats — moonspan.stats: the statistics of telemetry/ms_stats.h for
 * scripts, custom scorers and the Lua side of diff and eval baselines.
 *
 * Arguments are checked here, at the boundary, each error naming the
 * function, the argument and what to give instead; ms_stats is then
 * called on values it accepts. Samples are copied into userdata, so an
 * error raised part-way through reading a list leaks nothing. An interval
 * that cannot be computed (an empty sample) comes back as a table with
 * est, lo and hi all nil, never zeros. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "host.h"
#include "ms_stats.h"

/* The largest resample count accepted: 10^6 already takes seconds on a
 * 100,000-value mean; more is a typo, not a request. */
#define MAX_RESAMPLES 1000000

/* Reads the list at `arg` into GC-owned memory (pushed on the stack);
 * raises on anything but a list of finite numbers. */
static double *check_sample(lua_State *L, int arg, const char *fn, const char *name, size_t *n)
{
    if (!lua_istable(L, arg))
        luaL_error(L, "moonspan.stats.%s: %s must be a list of numbers, got %s", fn, name,
                   luaL_typename(L, arg));
    *n = lua_rawlen(L, arg);
    double *v = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *v, 0);
    for (size_t i = 0; i < *n; i++) {
        lua_rawgeti(L, arg, (lua_Integer)i + 1);
        int ok;
        v[i] = lua_tonumberx(L, -1, &ok);
        if (!ok || !isfinite(v[i]))
            luaL_error(L, "moonspan.stats.%s: %s[%d] is %s%s, not a finite number (give a list of numbers)",
                       fn, name, (int)i + 1, ok ? "" : "a ", ok ? lua_tostring(L, -1) : luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    return v;
}

static double check_level(lua_State *L, int arg, const char *fn, const char *name)
{
    if (lua_isnoneornil(L, arg))
        return MS_STATS_LEVEL;
    if (lua_type(L, arg) != LUA_TNUMBER)
        luaL_error(L, "moonspan.stats.%s: %s must be a number between 0 and 1 (e.g. 0.95), got %s",
                   fn, name, luaL_typename(L, arg));
    double level = lua_tonumber(L, arg);
    if (!(level > 0.0 && level < 1.0))
        luaL_error(L, "moonspan.stats.%s: %s must be between 0 and 1 exclusive (e.g. 0.95), got %s",
                   fn, name, lua_tostring(L, arg));
    return level;
}

/* A count: a non-negative integer (3.0 accepted, 3.5 not). */
static int64_t check_count(lua_State *L, int arg, const char *fn, const char *name)
{
    int ok = 0;
    lua_Integer k = lua_type(L, arg) == LUA_TNUMBER ? lua_tointegerx(L, arg, &ok) : 0;
    if (!ok || k < 0)
        luaL_error(L, "moonspan.stats.%s: %s must be a whole number >= 0, got %s", fn, name,
                   lua_type(L, arg) == LUA_TNUMBER ? lua_tostring(L, arg) : luaL_typename(L, arg));
    return (int64_t)k;
}

/* k and n of a proportion: counts with k <= n. */
static void check_proportion(lua_State *L, int arg, const char *fn, const char *kname,
                             const char *nname, int64_t *k, int64_t *n)
{
    *k = check_count(L, arg, fn, kname);
    *n = check_count(L, arg + 1, fn, nname);
    if (*k > *n)
        luaL_error(L, "moonspan.stats.%s: %s (%I) must not exceed %s (%I): give successes, then trials",
                   fn, kname, (lua_Integer)*k, nname, (lua_Integer)*n);
}

/* Resampling options; `stat` only for bootstrap_diff. */
typedef struct boot_opts {
    int mean;  /* stat = "mean" (the default) */
    double q;  /* else this percentile */
    int resamples;
    double level;
    uint64_t seed;
} boot_opts;

static void check_boot_opts(lua_State *L, int arg, const char *fn, int with_stat, boot_opts *o)
{
    *o = (boot_opts){1, 0.0, MS_STATS_RESAMPLES, MS_STATS_LEVEL, MS_STATS_SEED};
    if (lua_isnoneornil(L, arg))
        return;
    if (!lua_istable(L, arg))
        luaL_error(L, "moonspan.stats.%s: opts must be a table, got %s", fn, luaL_typename(L, arg));
    const char *known = with_stat ? "stat, resamples, level, seed" : "resamples, level, seed";
    lua_pushnil(L);
    while (lua_next(L, arg)) { /* opts key value */
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int top = lua_gettop(L);
        if (key && with_stat && strcmp(key, "stat") == 0) {
            if (lua_type(L, top) == LUA_TSTRING && strcmp(lua_tostring(L, top), "mean") == 0) {
                o->mean = 1;
            } else if (lua_type(L, top) == LUA_TNUMBER && lua_tonumber(L, top) >= 0.0 &&
                       lua_tonumber(L, top) <= 100.0) {
                o->mean = 0;
                o->q = lua_tonumber(L, top);
            } else {
                luaL_error(L, "moonspan.stats.%s: opts.stat must be \"mean\" or a percentile from 0 to 100 (e.g. 95), got %s",
                           fn, lua_type(L, top) == LUA_TSTRING || lua_type(L, top) == LUA_TNUMBER
                                   ? lua_tostring(L, top) : luaL_typename(L, top));
            }
        } else if (key && strcmp(key, "resamples") == 0) {
            int ok = 0;
            lua_Integer r = lua_type(L, top) == LUA_TNUMBER ? lua_tointegerx(L, top, &ok) : 0;
            if (!ok || r < 1 || r > MAX_RESAMPLES)
                luaL_error(L, "moonspan.stats.%s: opts.resamples must be a whole number from 1 to %d (default %d)",
                           fn, MAX_RESAMPLES, MS_STATS_RESAMPLES);
            o->resamples = (int)r;
        } else if (key && strcmp(key, "level") == 0) {
            o->level = check_level(L, top, fn, "opts.level");
        } else if (key && strcmp(key, "seed") == 0) {
            int ok = 0;
            lua_Integer s = lua_type(L, top) == LUA_TNUMBER ? lua_tointegerx(L, top, &ok) : 0;
            if (!ok || s < 0)
                luaL_error(L, "moonspan.stats.%s: opts.seed must be a whole number >= 0 (default %d)",
                           fn, MS_STATS_SEED);
            o->seed = (uint64_t)s;
        } else {
            luaL_error(L, "moonspan.stats.%s: unknown option '%s' (known: %s)", fn,
                       key ? key : luaL_typename(L, -2), known);
        }
        lua_pop(L, 1); /* opts key */
    }
}

/* Pushes {est =, lo =, hi =}; NaN fields stay nil. */
static void push_ci(lua_State *L, ms_ci ci)
{
    lua_createtable(L, 0, 3);
    const double v[3] = {ci.est, ci.lo, ci.hi};
    static const char *const names[3] = {"est", "lo", "hi"};
    for (int i = 0; i < 3; i++) {
        if (isnan(v[i]))
            continue;
        lua_pushnumber(L, v[i]);
        lua_setfield(L, -2, names[i]);
    }
}

static void push_number_or_nil(lua_State *L, double x)
{
    if (isnan(x))
        lua_pushnil(L);
    else
        lua_pushnumber(L, x);
}

/* --- resampling ------------------------------------------------------------ */

static int l_bootstrap_diff(lua_State *L)
{
    lua_settop(L, 3); /* a b opts: the samples' copies go above */
    size_t na, nb;
    double *a = check_sample(L, 1, "bootstrap_diff", "a", &na);
    double *b = check_sample(L, 2, "bootstrap_diff", "b", &nb);
    boot_opts o;
    check_boot_opts(L, 3, "bootstrap_diff", 1, &o);
    ms_ci ci;
    int rc = o.mean ? ms_boot_mean_diff(a, na, b, nb, o.resamples, o.level, o.seed, &ci)
                    : ms_boot_quantile_diff(a, na, b, nb, o.q, o.resamples, o.level, o.seed, &ci);
    if (rc != 0)
        return luaL_error(L, "moonspan.stats.bootstrap_diff: out of memory");
    push_ci(L, ci);
    return 1;
}

static int l_paired_mean(lua_State *L)
{
    lua_settop(L, 2); /* d opts */
    size_t n;
    double *d = check_sample(L, 1, "paired_mean", "d", &n);
    boot_opts o;
    check_boot_opts(L, 2, "paired_mean", 0, &o);
    ms_ci ci;
    if (ms_boot_paired_mean(d, n, o.resamples, o.level, o.seed, &ci) != 0)
        return luaL_error(L, "moonspan.stats.paired_mean: out of memory");
    push_ci(L, ci);
    return 1;
}

/* --- exact tests and proportions ------------------------------------------ */

static int l_mcnemar(lua_State *L)
{
    int64_t b = check_count(L, 1, "mcnemar", "b (pass -> fail pairs)");
    int64_t c = check_count(L, 2, "mcnemar", "c (fail -> pass pairs)");
    lua_pushnumber(L, ms_mcnemar_exact(b, c));
    return 1;
}

static int l_fisher(lua_State *L)
{
    int64_t k1, n1, k2, n2;
    check_proportion(L, 1, "fisher", "k1", "n1", &k1, &n1);
    check_proportion(L, 3, "fisher", "k2", "n2", &k2, &n2);
    lua_pushnumber(L, ms_fisher_exact(k1, n1, k2, n2));
    return 1;
}

static int l_wilson(lua_State *L)
{
    int64_t k, n;
    check_proportion(L, 1, "wilson", "k", "n", &k, &n);
    double level = check_level(L, 3, "wilson", "level");
    push_ci(L, ms_wilson(k, n, level));
    return 1;
}

static int l_prop_diff(lua_State *L)
{
    int64_t k1, n1, k2, n2;
    check_proportion(L, 1, "prop_diff", "k1", "n1", &k1, &n1);
    check_proportion(L, 3, "prop_diff", "k2", "n2", &k2, &n2);
    double level = check_level(L, 5, "prop_diff", "level");
    push_ci(L, ms_prop_diff(k1, n1, k2, n2, level));
    return 1;
}

/* --- sizes ----------------------------------------------------------------- */

static int l_mde_mean(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TNUMBER || !(lua_tonumber(L, 1) >= 0.0) || !isfinite(lua_tonumber(L, 1)))
        return luaL_error(L, "moonspan.stats.mde_mean: sd must be a finite number >= 0 (the standard deviation of the paired differences)");
    double sd = lua_tonumber(L, 1);
    int64_t n = check_count(L, 2, "mde_mean", "n");
    double level = check_level(L, 3, "mde_mean", "level");
    double power = 0.8;
    if (!lua_isnoneornil(L, 4)) {
        power = lua_type(L, 4) == LUA_TNUMBER ? lua_tonumber(L, 4) : NAN;
        if (!(power > 0.0 && power < 1.0))
            return luaL_error(L, "moonspan.stats.mde_mean: power must be between 0 and 1 exclusive (e.g. 0.8)");
    }
    push_number_or_nil(L, ms_mde_mean(sd, (size_t)n, level, power));
    return 1;
}

static int l_mde_mcnemar(lua_State *L)
{
    int64_t n = check_count(L, 1, "mde_mcnemar", "n");
    double level = check_level(L, 2, "mde_mcnemar", "level");
    push_number_or_nil(L, ms_mde_mcnemar(n, level));
    return 1;
}

void ms_open_stats(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"bootstrap_diff", l_bootstrap_diff}, {"paired_mean", l_paired_mean},
        {"mcnemar", l_mcnemar}, {"fisher", l_fisher}, {"wilson", l_wilson},
        {"prop_diff", l_prop_diff}, {"mde_mean", l_mde_mean}, {"mde_mcnemar", l_mde_mcnemar},
        {NULL, NULL}};
    lua_getglobal(L, "moonspan");
    luaL_newlib(L, fns);      /* moonspan stats */
    lua_pushinteger(L, MS_STATS_RESAMPLES);
    lua_setfield(L, -2, "RESAMPLES");
    lua_pushnumber(L, MS_STATS_LEVEL);
    lua_setfield(L, -2, "LEVEL");
    lua_pushinteger(L, MS_STATS_SEED);
    lua_setfield(L, -2, "SEED");
    lua_setfield(L, -2, "stats"); /* moonspan */
    lua_pop(L, 1);
}
