/* bind_trace_impl — the insides of span() and trace(), shared by the
 * files that bind them for Lua:
 *
 *   bind_trace.c    span() and trace() themselves, the run trace, the
 *                   spans the debug hook opens, and the registration
 *   bind_handles.c  the handles their bodies get (span s, trace ctx)
 *   bind_costate.c  the tracing state of each coroutine (co_state)
 *   bind_errors.c   what a span records of an error leaving it
 *   bind_levels.c   how much span() records: levels, folds, moonspan.fold
 *
 * Nothing else includes this: the rest of the host sees host.h. Names
 * ending in _ are shared only among these files. */
#ifndef MS_BIND_TRACE_IMPL_H
#define MS_BIND_TRACE_IMPL_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_trace.h"

/* Metatable names of the handles (luaL_checkudata checks them). */
#define SPAN_MT "moonspan.span"
#define CTX_MT "moonspan.ctx"

/* s, the handle span() gives its body: the span (t, idx) while t is at
 * generation gen (a recycled trace has moved on, and the handle says so). */
typedef struct span_handle {
    ms_trace *t;
    uint32_t gen;
    uint32_t idx;
} span_handle;

/* ctx, the handle trace() gives its body. It also keeps what the calling
 * coroutine had open before trace(), to restore when the trace ends. */
typedef struct ctx_handle {
    ms_trace *t;           /* retained; released by __gc */
    char id[33];
    ms_trace *saved_trace;
    uint32_t saved_gen, saved_top, saved_depth;
    int saved_explicit;
    struct ctx_handle *saved_case_ctx;
    int joined;            /* a trace() inside an eval case: ctx of the case's trace, which
                            * this handle neither ends nor aborts */
    int named;             /* on a case's ctx: a pipeline's trace() has named the trace */
    int budgeted;          /* trace() set a request budget under id, cleared when its body ends */
} ctx_handle;

/* Upvalues of span() and trace(): the message handler, the handle's
 * metatable, the handle of what is not recorded, then the option keys and
 * level names, interned once so that reading options compares pointers,
 * and the key budget_usd (trace's request budget, an attribute too). */
enum { UPV_MSGH = 1, UPV_MT, UPV_NOSPAN, UPV_LEVEL, UPV_FOLD, UPV_INFO, UPV_DEBUG, UPV_TRACE, UPV_BUDGET,
       UPV_COUNT = UPV_BUDGET };
/* moonspan._case_trace is trace() with one more upvalue, true: see l_trace */
#define UPV_CASE (UPV_COUNT + 1)

/* The handles of the last folds a coroutine used (co_state.fold_handles). */
#define FOLD_HANDLES 4

/* Per-coroutine tracing state. Lives in a userdata kept alive by a weak-
 * keyed registry table (thread -> co_state), so it dies with its thread;
 * it is also on a list of every thread, for signals (ms_each_thread). */
typedef struct co_state {
    lua_State *L;          /* the thread this state belongs to */
    ms_trace *trace;       /* trace of the innermost open span, or NULL */
    uint32_t gen;          /* trace->generation when `trace` was set */
    uint32_t top;          /* innermost open span of this coroutine */
    uint32_t depth;        /* spans open here and in the coroutines that started this one */
    int explicit_trace;    /* trace came from trace(), not the run trace */
    /* the eval case whose trace a pipeline's trace() would join: set at
     * the case trace's root, NULL inside any trace() body (see l_trace) */
    struct ctx_handle *case_ctx;
    /* the error last raised out of a span, to tell propagation from a new raise */
    int propagating;
    uint32_t prop_child;
    /* the fold last used here, so a loop finds it without a search */
    ms_trace *fold_trace;
    uint32_t fold_gen, fold_idx;
    /* the handles the bodies of the last folds used here got, so every
     * repetition of a fold gets the same one: nested folds alternate */
    struct fold_handle {
        int ref;               /* in the registry; LUA_NOREF: empty */
        const ms_trace *t;
        uint32_t gen, idx;
    } fold_handles[FOLD_HANDLES];
    unsigned fold_handle_next; /* the slot a new handle takes */
    /* --fold: how many spans of each name each parent has begun */
    struct sibling_count *siblings;
    struct ms_autos *autos; /* its open auto spans (autospans.c), or NULL */
    struct co_state *volatile next, *prev; /* the list of threads */
} co_state;

/* User values of a co_state userdata. */
enum {
    UV_PROPAGATING = 1, /* the error passing out of span prop_child */
    UV_RAISED,          /* the error last raised inside a span here ... */
    UV_TRACEBACK,       /* ... and the traceback taken where it was raised */
    UV_THREAD,          /* the thread, so that cs->L outlives it until __gc unlinks cs */
    UV_COUNT = UV_THREAD
};

/* --- bind_costate.c ------------------------------------------------------ */

/* Creates the co_state of `owner` (pushing nothing on L, which may be
 * owner), starting where `from` is when its trace is alive: its trace,
 * open span, depth and eval case. Raises only when memory runs out. */
co_state *ms_costate_new_(lua_State *L, lua_State *owner, const co_state *from);

/* Pushes the co_state userdata of L, whose user values (UV_*) hold the
 * errors a span keeps (bind_errors.c). */
void ms_push_costate_ud_(lua_State *L);

/* Registers the co_state metatable and the registry table of states,
 * makes the main thread's, and wraps coroutine.create/wrap so a new
 * coroutine starts from its creator's state. */
void ms_open_costates_(lua_State *L);

/* Whether cs's trace is the one it was set to and still open: a trace
 * ended (or recycled) under a coroutine leaves it at no trace. Inline:
 * every span() asks it. */
static inline int trace_alive(const co_state *cs)
{
    return cs->trace && cs->trace->generation == cs->gen &&
           atomic_load(&cs->trace->state) == MS_TRACE_OPEN;
}

/* The calling coroutine's state. A thread not created through our
 * coroutine.create/wrap starts from the main thread's state, whose pointer
 * Lua copied into its extra space. Inline: every span() calls it, and the
 * first time a thread calls it is the rare case. */
static inline co_state *costate(lua_State *L)
{
    co_state *cs = *(co_state **)lua_getextraspace(L);
    if (__builtin_expect(cs && cs->L == L, 1))
        return cs;
    return ms_costate_new_(L, L, cs);
}

/* --- bind_trace.c -------------------------------------------------------- */

/* The run trace (named after the script), opened on first use; NULL when
 * memory ran out. Shared with moonspan.fold's repetitions outside any
 * trace. */
ms_trace *ms_open_run_trace_(void);

/* The run trace with *root its root span; raises when memory ran out.
 * Inline, as it was in span(), which needs it once a run. */
static inline ms_trace *run_trace(lua_State *L, uint32_t *root)
{
    ms_trace *t = ms_open_run_trace_();
    if (!t)
        luaL_error(L, "out of memory starting the run trace");
    *root = 0;
    return t;
}

/* Records the attribute at (kix, vix) on span idx of t, as span(name,
 * attrs, fn) does; raises unless the key is a string and the value a
 * string, number or boolean. Shared with s:set and ctx:set. */
void ms_set_attr_(lua_State *L, ms_trace *t, uint32_t idx, int kix, int vix);

/* --- bind_errors.c ------------------------------------------------------- */

/* Message handler of every span's pcall (an upvalue of span() and
 * trace()): runs where the error was raised, so this is where the
 * traceback is taken (kept for the console too, see
 * ms_push_raise_traceback). Returns the error unchanged. An interrupt is
 * not an error of the span: it marks it interrupted. */
int ms_span_msgh_(lua_State *L);

/* Records the error on top of the stack on span idx of cs's trace and
 * remembers it, so the enclosing span sees it pass through rather than
 * count it again. Leaves the stack as it found it. */
void ms_span_failed_(lua_State *L, co_state *cs, uint32_t idx);

/* Is the error at `errix` one that a child span of `idx` raised (so it is
 * passing through, already counted), rather than a new raise? */
int ms_is_propagation_(lua_State *L, co_state *cs, uint32_t idx, int errix);

/* Error type and message of the value at errix, as the report groups them:
 * a table's `type`/`message` fields (LLM errors), else Lua's type names.
 * May push one value (a tostring result) that keeps *msg alive: the caller
 * restores its stack top when done. Shared with ctx:add_error. */
void ms_describe_error_(lua_State *L, int errix, const char **type, const char **msg, size_t *len);

/* --- bind_levels.c ------------------------------------------------------- */

/* Runs the body at stack index fix of span() or trace() (the running C
 * function, whose UPV_NOSPAN it passes) below the run's level: with the
 * handle that records nothing, unprotected, so its errors pass through
 * untouched and spans inside it nest under the span open here (the
 * nearest recorded ancestor). Returns the body's results, as a
 * lua_CFunction does. */
int ms_run_unrecorded_(lua_State *L, int fix);

/* The fold for `name` under `parent` in t: the one cs used last when it
 * is that one and still in the buffer, else found or made (ms_fold_open).
 * MS_NONE when memory ran out. Shared by span(name, {fold = true}, fn)
 * and moonspan.fold's repetitions. */
uint32_t ms_fold_for_(co_state *cs, ms_trace *t, uint32_t parent, const char *name, size_t len,
                      int64_t now);

/* Registers the metatable of the handle of what is not recorded, and
 * moonspan.clock, fold, _set_level, _level, keep_spans and _nospan; leaves
 * that handle on the stack, an upvalue of span() and trace(). */
void ms_open_levels_(lua_State *L);

/* --- bind_handles.c ------------------------------------------------------ */

/* Registers the metatables SPAN_MT and CTX_MT (with their methods), which
 * span() and trace() take as an upvalue: call before making them. */
void ms_open_handles_(lua_State *L);

#endif
