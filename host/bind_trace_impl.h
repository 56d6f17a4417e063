/* bind_trace_impl — the insides of span() and trace(), shared by the
 * files that bind them for Lua:
 *
 *   bind_trace.c    span() and trace() themselves, the run trace, the
 *                   spans the debug hook opens, and the registration
 *   bind_handles.c  the handles their bodies get (span s, trace ctx)
 *
 * Nothing else includes this: the rest of the host sees host.h. Names
 * ending in _ are shared only among these files. */
#ifndef MS_BIND_TRACE_IMPL_H
#define MS_BIND_TRACE_IMPL_H

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
} ctx_handle;

/* --- bind_trace.c ---------------------------------------------------------- */

/* Records the attribute at (kix, vix) on span idx of t, as span(name,
 * attrs, fn) does; raises unless the key is a string and the value a
 * string, number or boolean. Shared with s:set and ctx:set. */
void ms_set_attr_(lua_State *L, ms_trace *t, uint32_t idx, int kix, int vix);

/* Error type and message of the value at errix, as the report groups them:
 * a table's `type`/`message` fields (LLM errors), else Lua's type names.
 * May push one value (a tostring result) that keeps *msg alive: the caller
 * restores its stack top when done. Shared with ctx:add_error. */
void ms_describe_error_(lua_State *L, int errix, const char **type, const char **msg, size_t *len);

/* --- bind_handles.c -------------------------------------------------------- */

/* Registers the metatables SPAN_MT and CTX_MT (with their methods), which
 * span() and trace() take as an upvalue: call before making them. */
void ms_open_handles_(lua_State *L);

#endif
