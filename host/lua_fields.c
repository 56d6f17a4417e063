#include "lua_fields.h"

#include <lauxlib.h>

const char *ms_field_str(lua_State *L, int t, const char *k, const char *dflt)
{
    int ty = lua_getfield(L, t, k);
    const char *v = dflt;
    if (ty == LUA_TSTRING || ty == LUA_TNUMBER)
        v = lua_tostring(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s must be a string, got %s", k, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

lua_Number ms_field_num(lua_State *L, int t, const char *k, lua_Number dflt)
{
    int ty = lua_getfield(L, t, k);
    lua_Number v = dflt;
    if (ty == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s must be a number, got %s", k, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

lua_Integer ms_field_int(lua_State *L, int t, const char *k, lua_Integer dflt,
                         lua_Integer min, lua_Integer max)
{
    int ty = lua_getfield(L, t, k);
    lua_Integer v = dflt;
    if (ty == LUA_TNUMBER) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < min || v > max)
            luaL_error(L, "%s must be a whole number from %I to %I, got %s", k, min, max,
                       lua_tostring(L, -1));
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "%s must be a number, got %s", k, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

int ms_field_bool(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}
