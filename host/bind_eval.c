/* bind_eval — moonspan.eval_store: the eval tables (ms_evals) for the Lua
 * runner in scripts/eval.lua, and the LLM recordings behind --record and
 * --replay. Values cross as JSON text: encoded once by the runner (the
 * *_json fields), stored as they are, decoded with lua-cjson on the way
 * back; the C side stores and reads rows, nothing more. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "lua_fields.h"
#include "ms_clock.h"
#include "ms_evals.h"
#include "ms_sha256.h"
#include "ms_trace_diff.h"

static sqlite3 *eval_db;    /* the host's own connection; NULL outside `moonspan eval` */
static int64_t eval_run_id; /* runs.id of this process */
static char cjson_key;      /* registry: the cjson module */

static sqlite3 *check_db(lua_State *L)
{
    if (!eval_db)
        luaL_error(L, "moonspan.eval_store is only available under `moonspan eval`");
    return eval_db;
}

/* Decodes JSON text (or pushes nil for NULL). */
static void push_decoded(lua_State *L, const char *json)
{
    if (!json) {
        lua_pushnil(L);
        return;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &cjson_key);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_pushstring(L, json);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushstring(L, json);
    }
}

static int fail(lua_State *L, const char *err)
{
    return luaL_error(L, "eval store: %s", err);
}

/* begin_run{suite=, suite_file=, git_commit=, config_json=, threshold=, replay_of=, record=} -> id */
static int l_begin_run(lua_State *L)
{
    sqlite3 *db = check_db(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    ms_eval_run_info info = {0};
    info.run_id = eval_run_id;
    info.suite = ms_field_str(L, 1, "suite", NULL);
    info.suite_file = ms_field_str(L, 1, "suite_file", NULL);
    info.git_commit = ms_field_str(L, 1, "git_commit", NULL);
    info.config_json = ms_field_str(L, 1, "config_json", NULL);
    info.threshold = ms_field_num(L, 1, "threshold", NAN);
    info.replay_of = ms_field_int(L, 1, "replay_of", 0, 0, INT64_MAX);
    info.recorded = ms_field_bool(L, 1, "record");
    info.start_ns = ms_epoch_ns();
    char err[512];
    int64_t id;
    if (ms_eval_run_begin(db, &info, &id, err, sizeof err) != 0)
        return fail(L, err);
    lua_pushinteger(L, id);
    return 1;
}

/* add_result(id, {case_id=, repeat_index=, input_json=, expected_json=,
 * output_json=, scores_json=, pass=, error=, trace_id=, latency_ms=,
 * input_tokens=, output_tokens=, cost_usd=, replayed=}) */
static int l_add_result(lua_State *L)
{
    sqlite3 *db = check_db(L);
    int64_t run = luaL_checkinteger(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    ms_eval_result r = {0};
    r.case_id = ms_field_str(L, 2, "case_id", NULL);
    r.repeat_index = ms_field_int(L, 2, "repeat_index", 1, 0, INT64_MAX);
    r.input_json = ms_field_str(L, 2, "input_json", NULL);
    r.expected_json = ms_field_str(L, 2, "expected_json", NULL);
    r.output_json = ms_field_str(L, 2, "output_json", NULL);
    r.scores_json = ms_field_str(L, 2, "scores_json", NULL);
    r.pass = ms_field_bool(L, 2, "pass");
    r.error = ms_field_str(L, 2, "error", NULL);
    r.trace_id = ms_field_str(L, 2, "trace_id", NULL);
    r.latency_ms = ms_field_num(L, 2, "latency_ms", NAN);
    r.input_tokens = ms_field_int(L, 2, "input_tokens", 0, 0, INT64_MAX);
    r.output_tokens = ms_field_int(L, 2, "output_tokens", 0, 0, INT64_MAX);
    r.cost_usd = ms_field_num(L, 2, "cost_usd", NAN);
    r.replayed = ms_field_bool(L, 2, "replayed");
    char err[512];
    if (ms_eval_result_add(db, run, &r, err, sizeof err) != 0)
        return fail(L, err);
    return 0;
}

/* finish_run(id, {cases=, passed=, pass_rate=, p50_ms=, p95_ms=, cost_usd=,
 * replayed_cost_usd=, status= [, config_json=]}) */
static int l_finish_run(lua_State *L)
{
    sqlite3 *db = check_db(L);
    int64_t run = luaL_checkinteger(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    ms_eval_summary s = {0};
    s.end_ns = ms_epoch_ns();
    s.cases = ms_field_int(L, 2, "cases", 0, 0, INT64_MAX);
    s.passed = ms_field_int(L, 2, "passed", 0, 0, INT64_MAX);
    s.pass_rate = ms_field_num(L, 2, "pass_rate", NAN);
    s.p50_ms = ms_field_num(L, 2, "p50_ms", NAN);
    s.p95_ms = ms_field_num(L, 2, "p95_ms", NAN);
    s.cost_usd = ms_field_num(L, 2, "cost_usd", NAN);
    s.replayed_cost_usd = ms_field_num(L, 2, "replayed_cost_usd", 0);
    s.status = ms_field_str(L, 2, "status", NULL);
    s.config_json = ms_field_str(L, 2, "config_json", NULL);
    char err[512];
    if (ms_eval_run_finish(db, run, &s, err, sizeof err) != 0)
        return fail(L, err);
    return 0;
}

/* find_run(suite, which, exclude_id) -> id | nil, message */
static int l_find_run(lua_State *L)
{
    sqlite3 *db = check_db(L);
    const char *suite = luaL_checkstring(L, 1);
    const char *which = luaL_checkstring(L, 2);
    int64_t exclude = luaL_optinteger(L, 3, 0);
    char err[512];
    int64_t id;
    int rc = ms_eval_find_run(db, suite, which, exclude, &id, err, sizeof err);
    if (rc < 0)
        return fail(L, err);
    if (rc == 1) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, id);
    return 1;
}

static void set_num(lua_State *L, const char *k, double v)
{
    if (isnan(v))
        return;
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* Pushes eval run row (a light userdata) as a table, its config decoded;
 * runs under lua_pcall when called from inside an SQLite walk (each_run),
 * so an allocation error cannot jump over SQLite's frames. */
static int push_run(lua_State *L)
{
    const ms_eval_run_row *row = lua_touserdata(L, 1);
    lua_createtable(L, 0, 18);
    set_int(L, "id", row->id);
    set_str(L, "suite", row->suite);
    set_str(L, "suite_file", row->suite_file);
    set_str(L, "git_commit", row->git_commit);
    set_str(L, "status", row->status);
    set_int(L, "start_ns", row->start_ns);
    if (row->end_ns)
        set_int(L, "end_ns", row->end_ns);
    set_int(L, "cases", row->cases);
    set_int(L, "passed", row->passed);
    set_num(L, "pass_rate", row->pass_rate);
    set_num(L, "threshold", row->threshold);
    set_num(L, "p50_ms", row->p50_ms);
    set_num(L, "p95_ms", row->p95_ms);
    set_num(L, "cost_usd", row->cost_usd);
    set_num(L, "replayed_cost_usd", row->replayed_cost_usd);
    lua_pushboolean(L, row->recorded);
    lua_setfield(L, -2, "recorded");
    if (row->replay_of)
        set_int(L, "replay_of", row->replay_of);
    push_decoded(L, row->config_json);
    lua_setfield(L, -2, "config");
    return 1;
}

/* run(id) -> {id, suite, suite_file, status, cases, passed, pass_rate, ..., config} | nil, message */
static int l_run(lua_State *L)
{
    sqlite3 *db = check_db(L);
    int64_t id = luaL_checkinteger(L, 1);
    ms_eval_run_row row;
    char err[512];
    int rc = ms_eval_run_get(db, id, &row, err, sizeof err);
    if (rc != 0) {
        ms_eval_run_row_free(&row);
        if (rc < 0)
            return fail(L, err);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushcfunction(L, push_run);
    lua_pushlightuserdata(L, &row);
    int prc = lua_pcall(L, 1, 1, 0);
    ms_eval_run_row_free(&row);
    if (prc != LUA_OK)
        return lua_error(L);
    return 1;
}

/* append_row(list, push, row): appends push(row) to list. Both the
 * making and the appending (whose table growth can raise a memory error)
 * run under the caller's lua_pcall, inside an SQLite walk. */
static int append_row(lua_State *L)
{
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_call(L, 1, 1);
    lua_rawseti(L, 1, (lua_Integer)lua_rawlen(L, 1) + 1);
    return 0;
}

/* Appends push(row) to the list on top of the stack, protected; returns
 * non-zero with the error left on the stack (for the walk to stop and
 * its caller to raise once the statement is finalized). */
static int append_protected(lua_State *L, lua_CFunction push, const void *row)
{
    lua_pushcfunction(L, append_row);
    lua_pushvalue(L, -2);
    lua_pushcfunction(L, push);
    lua_pushlightuserdata(L, (void *)row);
    return lua_pcall(L, 3, 0, 0) != LUA_OK;
}

/* ms_eval_runs_each callback: appends the run to the list on top of the
 * stack; a Lua error stops the walk, left on the stack (see each_result). */
static int each_run(void *ud, const ms_eval_run_row *row)
{
    return append_protected(ud, push_run, row);
}

/* list_runs(suite [, limit]) -> the finished runs of suite, newest first,
 * as run() gives them (limit 0 or none: all) */
static int l_list_runs(lua_State *L)
{
    sqlite3 *db = check_db(L);
    const char *suite = luaL_checkstring(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, limit >= 0, 2, "limit must be >= 0");
    lua_newtable(L);
    char err[512];
    int rc = ms_eval_runs_each(db, suite, limit, each_run, L, err, sizeof err);
    if (rc > 0)
        return lua_error(L);
    if (rc < 0)
        return fail(L, err);
    return 1;
}

static int push_string(lua_State *L)
{
    lua_pushstring(L, lua_touserdata(L, 1));
    return 1;
}

static int each_case_id(void *ud, const char *case_id)
{
    return append_protected(ud, push_string, case_id);
}

/* case_ids(id) -> the distinct case ids of the run's results, sorted */
static int l_case_ids(lua_State *L)
{
    sqlite3 *db = check_db(L);
    int64_t id = luaL_checkinteger(L, 1);
    lua_newtable(L);
    char err[512];
    int rc = ms_eval_case_ids_each(db, id, each_case_id, L, err, sizeof err);
    if (rc > 0)
        return lua_error(L);
    if (rc < 0)
        return fail(L, err);
    return 1;
}

/* Pushes one result row as a table; runs under lua_pcall (see
 * each_result) so an allocation error cannot jump over SQLite's frames. */
static int push_result(lua_State *L)
{
    const ms_eval_result *r = lua_touserdata(L, 1);
    lua_createtable(L, 0, 14);
    set_str(L, "case_id", r->case_id);
    set_int(L, "repeat_index", r->repeat_index);
    push_decoded(L, r->input_json);
    lua_setfield(L, -2, "input");
    push_decoded(L, r->expected_json);
    lua_setfield(L, -2, "expected");
    push_decoded(L, r->output_json);
    lua_setfield(L, -2, "output");
    push_decoded(L, r->scores_json);
    lua_setfield(L, -2, "scores");
    lua_pushboolean(L, r->pass);
    lua_setfield(L, -2, "pass");
    set_str(L, "error", r->error);
    set_str(L, "trace_id", r->trace_id);
    set_num(L, "latency_ms", r->latency_ms);
    set_int(L, "input_tokens", r->input_tokens);
    set_int(L, "output_tokens", r->output_tokens);
    set_num(L, "cost_usd", r->cost_usd);
    lua_pushboolean(L, r->replayed);
    lua_setfield(L, -2, "replayed");
    return 1;
}

/* ms_eval_results_each callback: appends the row to the list on top of
 * the stack. A Lua error stops the walk (non-zero) with the error left on
 * the stack, for l_results to raise once the statement is finalized. */
static int each_result(void *ud, const ms_eval_result *r)
{
    return append_protected(ud, push_result, r);
}

/* results(id) -> list of result tables (decoded) */
static int l_results(lua_State *L)
{
    sqlite3 *db = check_db(L);
    int64_t id = luaL_checkinteger(L, 1);
    lua_newtable(L);
    char err[512];
    int rc = ms_eval_results_each(db, id, each_result, L, err, sizeof err);
    if (rc > 0)
        return lua_error(L); /* the error each_result left */
    if (rc < 0)
        return fail(L, err);
    return 1;
}

/* record(eval_run, hash, request_json, response_json, call_site) */
static int l_record(lua_State *L)
{
    sqlite3 *db = check_db(L);
    char err[512];
    if (ms_eval_record(db, luaL_checkinteger(L, 1), luaL_checkstring(L, 2), luaL_checkstring(L, 3),
                       luaL_checkstring(L, 4), luaL_optstring(L, 5, NULL), err, sizeof err) != 0)
        return fail(L, err);
    return 0;
}

/* replay(eval_run, hash) -> response_json | nil */
static int l_replay(lua_State *L)
{
    sqlite3 *db = check_db(L);
    char err[512], *json = NULL;
    int rc = ms_eval_replay_lookup(db, luaL_checkinteger(L, 1), luaL_checkstring(L, 2), &json, err, sizeof err);
    if (rc < 0)
        return fail(L, err);
    if (rc == 1) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, json);
    free(json);
    return 1;
}

/* first_change(before_trace_id, after_trace_id) -> {path, what, before,
 * after, text} | nil, why (no span changed; a trace not in the store).
 * Which span of a case changed against its baseline (ms_trace_diff.h). */
static int l_first_change(lua_State *L)
{
    sqlite3 *db = check_db(L);
    const char *a = luaL_checkstring(L, 1), *b = luaL_checkstring(L, 2);
    ms_trace_change c;
    char err[512];
    int rc = ms_trace_first_change(db, a, b, &c, err, sizeof err);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 5);
    set_str(L, "path", c.path);
    set_str(L, "what", c.what);
    set_str(L, "before", c.before);
    set_str(L, "after", c.after);
    lua_pushfstring(L, "%s: %s %s -> %s", c.path, c.what, c.before, c.after);
    lua_setfield(L, -2, "text");
    return 1;
}

/* moonspan.sha256(s) -> 64 hex characters */
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    ms_sha256_hex(s, n, hex);
    lua_pushstring(L, hex);
    return 1;
}

void ms_open_eval_store(lua_State *L, sqlite3 *db, int64_t run_id)
{
    static const luaL_Reg fns[] = {
        {"begin_run", l_begin_run}, {"add_result", l_add_result}, {"finish_run", l_finish_run},
        {"find_run", l_find_run}, {"run", l_run}, {"list_runs", l_list_runs},
        {"case_ids", l_case_ids}, {"results", l_results}, {"record", l_record},
        {"replay", l_replay}, {"first_change", l_first_change}, {NULL, NULL}};
    eval_db = db;
    eval_run_id = run_id;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cjson_key);
    lua_getglobal(L, "moonspan");
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "eval_store");
    lua_pop(L, 1);
}

void ms_close_eval_store(lua_State *L)
{
    (void)L;
    eval_db = NULL;
}

void ms_open_sha256(lua_State *L)
{
    lua_getglobal(L, "moonspan");
    lua_pushcfunction(L, l_sha256);
    lua_setfield(L, -2, "sha256");
    lua_pop(L, 1);
}
