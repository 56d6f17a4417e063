/* The Lua library in scripts/, compiled into the binary by host/embed.c. */
#ifndef MS_EMBEDDED_H
#define MS_EMBEDDED_H

#include <stddef.h>

typedef struct ms_embedded_module {
    const char *name;   /* require() name, e.g. "moonspan.retry" */
    const char *path;   /* source path in the repository, for error messages */
    const char *source;
    size_t len;
} ms_embedded_module;

/* Terminated by an entry whose name is NULL. */
extern const ms_embedded_module ms_embedded_modules[];

struct lua_State;
/* Makes every module above, and lua-cjson as "cjson", loadable with
 * require() by putting a loader for each in package.preload. */
void ms_embedded_preload(struct lua_State *L);

#endif
