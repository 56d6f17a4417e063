/* lua_fields — reading the fields of a table argument from C.
 *
 * Every binding that takes an options table (llm usage, eval rows, HTTP
 * requests, token counts) reads it through these, so a missing field
 * means the same thing everywhere and a field of the wrong type is an
 * error that names it. Each reads t[k] (t a stack index), checks it, and
 * leaves the stack as it was. */
#ifndef MS_LUA_FIELDS_H
#define MS_LUA_FIELDS_H

#include <lua.h>

/* t[k] as a string (a number is converted), or dflt when nil. The
 * pointer stays valid while the table holds the value (Lua strings do not
 * move), so it is good for the rest of the binding call. */
const char *ms_field_str(lua_State *L, int t, const char *k, const char *dflt);

/* t[k] as a number, or dflt when nil. */
lua_Number ms_field_num(lua_State *L, int t, const char *k, lua_Number dflt);

/* t[k] as an integer from min to max, or dflt when nil. */
lua_Integer ms_field_int(lua_State *L, int t, const char *k, lua_Integer dflt,
                         lua_Integer min, lua_Integer max);

/* t[k] as a truth value: false for nil and false, true otherwise. */
int ms_field_bool(lua_State *L, int t, const char *k);

#endif
