/* embedded — installs the Lua library compiled into the binary (see
 * embedded.h) in package.preload. There is only one exported symbol in
 * this file: the host's runtime and the fuzz targets (tests/fuzz/) load
 * the modules the same way through it. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>

#include "embedded.h"

int luaopen_cjson(lua_State *L);

static int load_embedded(lua_State *L)
{
    const ms_embedded_module *m = lua_touserdata(L, lua_upvalueindex(1));
    char chunkname[256];
    snprintf(chunkname, sizeof chunkname, "@%s", m->path);
    if (luaL_loadbuffer(L, m->source, m->len, chunkname) != LUA_OK)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1);
    return 1;
}

void ms_embedded_preload(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* preload */
    for (const ms_embedded_module *m = ms_embedded_modules; m->name; m++) {
        lua_pushlightuserdata(L, (void *)m);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, m->name);
    }
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
}
