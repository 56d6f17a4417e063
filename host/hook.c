/* hook — the one Lua debug hook of every coroutine.
 *
 * Lua gives each thread one hook. Three parts of the host need it: the
 * interrupt (lifecycle.c) raises at the next instruction after SIGINT or
 * SIGTERM, in every coroutine, and keeps raising; the profiler
 * (profile.c) takes a sample at the next event after its timer's signal;
 * auto-spans (autospans.c) follows calls and returns. So there is one
 * hook function, and one rule for its mask:
 *
 *   - a signal hooks every instruction, call and return of every
 *     coroutine (ms_hook_arm: only sets fields, so async-signal-safe);
 *   - after each event the hook settles its thread's mask to what is
 *     still due: everything while an interrupt or a sample is due, calls
 *     and returns while auto-spans records, nothing otherwise.
 *
 * The interrupt goes first: while it is due, nothing else runs, and the
 * mask stays armed, so a pcall cannot swallow it. The profiler samples
 * before auto-spans acts on the same event, so a sample belongs to the
 * span that was innermost when it was taken.
 *
 * Also here: how the profiler and auto-spans name a frame's function. */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARMED (LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT)
#define CALLS (LUA_MASKCALL | LUA_MASKRET)

static volatile sig_atomic_t calls_on; /* auto-spans records */

static void hook(lua_State *L, lua_Debug *ar);

void ms_hook_arm(lua_State *co)
{
    lua_sethook(co, hook, ARMED, 1);
}

static int wanted(void)
{
    if (ms_interrupt_due() || ms_profile_due())
        return ARMED;
    return calls_on ? CALLS : 0;
}

/* Gives L the mask of what is still due. A signal that comes while the
 * mask is being set may have its arming overwritten: checked once more
 * after, since the handler raises its flag before it arms. */
static void settle(lua_State *L)
{
    int want = wanted();
    if (lua_gethookmask(L) == want)
        return;
    if (want)
        lua_sethook(L, hook, want, 1);
    else
        lua_sethook(L, NULL, 0, 0);
    if (want != ARMED && wanted() == ARMED)
        ms_hook_arm(L);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    switch (ms_interrupt_hook(L, ar)) {
    case MS_HOOK_OFF:
        lua_sethook(L, NULL, 0, 0);
        return;
    case MS_HOOK_WAIT:
        return;
    }
    if (ms_profile_due())
        ms_profile_hook(L, ar);
    if (calls_on && ar->event != LUA_HOOKCOUNT)
        ms_autospans_hook(L, ar);
    settle(L);
}

/* --- naming a frame's function ------------------------------------------- */

/* Names found by searching, by where the function is defined: the call
 * site names most calls, so this holds the few functions that are only
 * called from C (pcall(f), a coroutine's body) or by tail calls. */
typedef struct found_name {
    char *source, *name;
    int line;
} found_name;

static found_name *found;
static size_t nfound, capfound;

/* Whether the value at idx is the function at fix. */
static int holds(lua_State *L, int idx, int fix, const char *var)
{
    return var && var[0] != '(' && lua_rawequal(L, idx, fix); /* "(temporary)", "(C temporary)" */
}

/* A name for the function on top of the stack: the global holding it, or
 * a local or an upvalue holding it in one of the few frames below the
 * running one (the code that called or tail-called it, and its callers).
 * Copied to buf; NULL when none. The function stays on the stack. */
static const char *search_name(lua_State *L, char *buf, size_t n)
{
    int fix = lua_gettop(L);
    const char *hit = NULL; /* a string of _G's keys or of a function prototype: it outlives the stack */
    lua_pushglobaltable(L);                                   /* fn _G */
    lua_pushnil(L);
    while (!hit && lua_next(L, -2)) {                         /* fn _G k v */
        if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, fix))
            hit = lua_tostring(L, -2);
        lua_pop(L, 1);
    }
    lua_settop(L, fix);
    lua_Debug up;
    for (int level = 1; !hit && level <= 4 && lua_getstack(L, level, &up); level++) {
        /* its locals, then the upvalues of its function */
        int upvalues = 0;
        for (int i = 1; !hit; i++) {
            const char *var = upvalues ? lua_getupvalue(L, fix + 1, i) : lua_getlocal(L, &up, i);
            if (!var && !upvalues && lua_getinfo(L, "f", &up)) {  /* fn f */
                upvalues = 1;
                i = 0;
                continue;
            }
            if (!var)
                break;
            if (holds(L, -1, fix, var))
                hit = var;
            lua_pop(L, 1);
        }
        lua_settop(L, fix);
    }
    if (hit)
        snprintf(buf, n, "%s", hit);
    return hit ? buf : NULL;
}

/* The name found for the function defined at source:line before, or NULL. */
static const char *found_before(const char *source, int line)
{
    for (size_t i = 0; i < nfound; i++)
        if (found[i].line == line && strcmp(found[i].source, source) == 0)
            return found[i].name;
    return NULL;
}

static void remember(const char *source, int line, const char *name)
{
    if (nfound == capfound) {
        size_t cap = capfound ? capfound * 2 : 16;
        found_name *f = realloc(found, cap * sizeof *f);
        if (!f)
            return;
        found = f;
        capfound = cap;
    }
    found_name *f = &found[nfound];
    f->line = line;
    if (!(f->source = strdup(source)) || !(f->name = strdup(name))) {
        free(f->source);
        return;
    }
    nfound++;
}

const char *ms_frame_name(lua_State *L, lua_Debug *ar, char *buf, size_t n)
{
    if (ar->what[0] == 'm')
        return "main chunk";
    if (lua_getinfo(L, "n", ar) && ar->name && ar->name[0]) {
        snprintf(buf, n, "%s", ar->name);
        return buf;
    }
    int lua = ar->what[0] != 'C';
    const char *name = lua ? found_before(ar->short_src, ar->linedefined) : NULL;
    if (name)
        return name;
    if (lua_getinfo(L, "f", ar)) {
        name = search_name(L, buf, n);
        lua_pop(L, 1);
    }
    if (!name && !lua)
        return "[C]";
    if (!name) {
        snprintf(buf, n, "function <%s:%d>", ar->short_src, ar->linedefined); /* as Lua's tracebacks say */
        name = buf;
    }
    if (lua)
        remember(ar->short_src, ar->linedefined, name);
    return name;
}

static void forget_names(void)
{
    for (size_t i = 0; i < nfound; i++) {
        free(found[i].source);
        free(found[i].name);
    }
    free(found);
    found = NULL;
    nfound = capfound = 0;
}

/* --- start and end ----------------------------------------------------------- */

void ms_hook_calls(lua_State *L)
{
    calls_on = 1;
    settle(L);
}

void ms_hook_stop(void)
{
    calls_on = 0;
    forget_names();
}
