/* fuzz_lua — libFuzzer harness for the Lua side of the wire: the stream
 * framers of scripts/wire.lua and the provider adapters' parsers.
 *
 * Built once per target with -DFUZZ_TARGET="name": the input goes to
 * targets[name] of tests/fuzz/lua_targets.lua, which checks the
 * invariants and raises when one breaks; that error becomes an abort()
 * here, which libFuzzer records as a crash.
 *
 * The modules are the ones compiled into moonspan (build/gen/lua_modules.c),
 * loaded by the host's own ms_embedded_preload, so what is fuzzed is what
 * ships.
 *
 * Lua code is invisible to libFuzzer's compile-time instrumentation (the
 * interpreter is Debian's uninstrumented liblua5.4), so without help the
 * fuzzer would get no feedback from the code under test. A line hook
 * turns each pair of consecutive Lua lines into a slot of libFuzzer's
 * "extra counters" (the AFL edge scheme: previous location shifted, XOR
 * current), which libFuzzer treats as coverage features.
 *
 * The provider targets also get a mutator that knows JSON (T.mutators in
 * lua_targets.lua) for half of the mutations: libFuzzer's byte-level ones
 * rarely change the kind of a JSON value, which is what adapters trip on. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET='\"sse\"' (a key of tests/fuzz/lua_targets.lua)"
#endif

extern const char ms_fuzz_lua_targets[];

#define NCOUNTERS (1u << 16)
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t lua_edges[NCOUNTERS];
static uint32_t prev_loc;
static lua_State *L;

static void line_hook(lua_State *l, lua_Debug *ar)
{
    if (!lua_getinfo(l, "S", ar))
        return;
    /* The source string of a chunk is interned for the life of the state,
     * so its address names the chunk as well as its text would. */
    uint32_t loc = (uint32_t)((uintptr_t)ar->source * 2654435761u) ^
                   (uint32_t)ar->currentline * 40503u;
    loc &= NCOUNTERS - 1;
    lua_edges[loc ^ prev_loc]++;
    prev_loc = loc >> 1;
}

static int traceback(lua_State *l)
{
    const char *msg = lua_tostring(l, 1);
    luaL_traceback(l, l, msg ? msg : luaL_typename(l, 1), 1);
    return 1;
}

/* Leaves the message handler at stack index 1, the target at 2 and the
 * JSON mutator (or nil) at 3, for every input to reuse. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* The state lives across inputs and the collector frees when it
     * likes, so nearly every input ends with more mallocs than frees and
     * libFuzzer would run LeakSanitizer's full heap scan after each (a
     * hundred times slower). Lua's heap is the collector's business: turn
     * that off, before the command line so that one can turn it back on. */
    static char *args[256];
    static char no_leaks[] = "-detect_leaks=0";
    if (*argc < 250) {
        args[0] = (*argv)[0];
        args[1] = no_leaks;
        for (int i = 1; i < *argc; i++)
            args[i + 1] = (*argv)[i];
        args[++*argc] = NULL;
        *argv = args;
    }

    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    ms_embedded_preload(L);
    lua_pushcfunction(L, traceback);                            /* msgh */
    if (luaL_loadbuffer(L, ms_fuzz_lua_targets, strlen(ms_fuzz_lua_targets),
                        "@tests/fuzz/lua_targets.lua") != LUA_OK ||
        lua_pcall(L, 0, 1, 1) != LUA_OK) {                      /* msgh targets */
        fprintf(stderr, "lua_targets.lua: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (lua_getfield(L, -1, FUZZ_TARGET) != LUA_TFUNCTION) {    /* msgh targets fn */
        fprintf(stderr, "lua_targets.lua has no target %s\n", FUZZ_TARGET);
        abort();
    }
    lua_getfield(L, 2, "mutators");                             /* msgh targets fn mutators */
    lua_getfield(L, -1, FUZZ_TARGET);                           /* msgh targets fn mutators mutate|nil */
    lua_remove(L, -2);
    lua_remove(L, 2);                                           /* msgh fn mutate|nil */
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return 0;
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    if (seed % 2 || lua_isnil(L, 3))
        return LLVMFuzzerMutate(data, size, max_size);
    lua_sethook(L, NULL, 0, 0); /* mutating is not the code under test */
    lua_pushvalue(L, 3);                                        /* msgh fn mutate mutate */
    lua_pushlstring(L, (const char *)data, size);
    lua_pushinteger(L, seed);                                   /* ... mutate data seed */
    size_t n = 0;
    const char *out = NULL;
    if (lua_pcall(L, 2, 1, 1) == LUA_OK)                        /* msgh fn mutate bytes|nil|err */
        out = lua_tolstring(L, -1, &n);
    if (out && n <= max_size)
        memcpy(data, out, n);
    else
        n = LLVMFuzzerMutate(data, size, max_size);
    lua_settop(L, 3);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prev_loc = 0;
    lua_pushvalue(L, 2);                                        /* msgh fn fn */
    lua_pushlstring(L, (const char *)data, size);               /* msgh fn fn data */
    if (lua_pcall(L, 1, 0, 1) != LUA_OK) {                      /* msgh fn err */
        fprintf(stderr, "fuzz %s: %s\n", FUZZ_TARGET, lua_tostring(L, -1));
        abort();
    }
    return 0;
}
