/* autospans — `moonspan run --auto-spans[=DEPTH]`: every Lua function
 * call of the script recorded as a span, up to DEPTH nested calls in each
 * coroutine, for short runs where nobody has written span() yet.
 *
 * A call opens a span named after the function (attributes auto = true
 * and source = "file:line" where it is defined) under the coroutine's
 * innermost open span, through the same span stack span() uses, so user
 * spans and auto spans nest in each other. Its return closes it. Skipped:
 * C functions, moonspan's own library (scripts/), main chunks, and the
 * body a span() or trace() calls (the span already records it).
 *
 * Lua reports no return for a frame an error unwinds. Each coroutine
 * keeps its open auto spans with the stack depth of their frame, and
 * every event first reconciles: a span whose frame is deeper than the
 * frame of the event was unwound. Where the error is seen leaving a span
 * (span_k, trace_k, the script's end), the auto spans inside close with
 * it as an error passing through (counted once, where it was raised, as
 * spans count errors); one that a pcall caught before any span saw it
 * leaves its frames' spans with status error, not counted. A tail call
 * ends the calling function's span and opens the callee's beside it. A
 * coroutine that dies of an error gets no more events: its auto spans are
 * closed when any other coroutine sees a C function return (resume,
 * pcall). Errors themselves are never touched: they propagate as they
 * would without auto-spans. */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct auto_frame {
    ms_trace *t;
    uint32_t gen, idx;
    int level;            /* depth of its frame on the coroutine's stack; 1 the bottom */
} auto_frame;

struct ms_autos {
    lua_State *L;
    int n;
    struct ms_autos *prev, *next; /* on the open list while n > 0 */
    auto_frame f[];               /* max_depth */
};

static int max_depth;             /* 0: auto-spans is off */
static struct ms_autos *open_list; /* coroutines with open auto spans */

void ms_autospans_start(lua_State *L, int depth)
{
    max_depth = depth;
    ms_hook_calls(L);
}

static void link_open(struct ms_autos *a)
{
    a->prev = NULL;
    a->next = open_list;
    if (open_list)
        open_list->prev = a;
    open_list = a;
}

static void unlink_open(struct ms_autos *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else if (open_list == a)
        open_list = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

void ms_autospans_free(struct ms_autos *a)
{
    if (!a)
        return;
    if (a->n)
        unlink_open(a);
    free(a);
}

static int alive(const auto_frame *f)
{
    return f->t->generation == f->gen && atomic_load(&f->t->state) == MS_TRACE_OPEN;
}

/* Closes the innermost auto span of `a` (see ms_span_close for `how`). */
static void pop(struct ms_autos *a, int how)
{
    auto_frame *f = &a->f[--a->n];
    if (alive(f))
        ms_span_close(a->L, f->t, f->idx, how);
    if (a->n == 0)
        unlink_open(a);
}

/* The number of frames on L's stack (level 0 is the running function). */
static int stack_depth(lua_State *L)
{
    lua_Debug ar;
    int lo = 0, hi = 1; /* level lo exists, level hi may not */
    while (lua_getstack(L, hi, &ar)) {
        lo = hi;
        hi *= 2;
    }
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (lua_getstack(L, mid, &ar))
            lo = mid;
        else
            hi = mid;
    }
    return lo + 1;
}

/* Closes, as unwound, the auto spans of frames deeper than `keep`: they
 * are gone without a return event. */
static void reconcile(struct ms_autos *a, int keep)
{
    while (a->n && a->f[a->n - 1].level > keep)
        pop(a, MS_CLOSE_UNWOUND);
}

/* Coroutines other than L's that died of an error with auto spans open. */
static void close_dead(lua_State *L)
{
    struct ms_autos *a = open_list, *next;
    for (; a; a = next) {
        next = a->next;
        int st = a->L == L ? LUA_OK : lua_status(a->L);
        while (st != LUA_OK && st != LUA_YIELD && a->n)
            pop(a, MS_CLOSE_UNWOUND);
    }
}

/* Whether the function at the event (ar, "S" filled) gets a span. */
static int recorded(lua_State *L, lua_Debug *ar)
{
    if (ar->what[0] != 'L' || strncmp(ar->source, "@scripts/", 9) == 0)
        return 0;
    return ar->event == LUA_HOOKTAILCALL || !ms_called_by_span(L);
}

static void open_frame(lua_State *L, lua_Debug *ar, struct ms_autos **slot, int level)
{
    struct ms_autos *a = *slot;
    if (!a) {
        a = calloc(1, sizeof *a + (size_t)max_depth * sizeof a->f[0]);
        if (!a)
            return;
        a->L = L;
        *slot = a;
    }
    char buf[256], src[LUA_IDSIZE + 16];
    const char *name = ms_frame_name(L, ar, buf, sizeof buf);
    ms_trace *t;
    uint32_t idx = ms_span_open(L, name, strlen(name), &t);
    if (idx == MS_NONE)
        return;
    ms_span_set_bool(t, idx, "auto", 4, 1);
    int n = snprintf(src, sizeof src, "%s:%d", ar->short_src, ar->linedefined);
    ms_span_set_str(t, idx, "source", 6, src, (size_t)(n < (int)sizeof src ? n : (int)sizeof src - 1));
    if (a->n == 0)
        link_open(a);
    a->f[a->n++] = (auto_frame){t, t->generation, idx, level};
}

void ms_autospans_hook(lua_State *L, lua_Debug *ar)
{
    struct ms_autos **slot = ms_span_autos(L);
    struct ms_autos *a = *slot;
    if (!lua_getinfo(L, "S", ar))
        return;
    if (ar->event == LUA_HOOKRET) {
        if (ar->what[0] == 'C' && open_list && (open_list != a || a->next))
            close_dead(L);
        if (!a || !a->n)
            return;
        int level = stack_depth(L);
        reconcile(a, level);
        if (a->n && a->f[a->n - 1].level == level)
            pop(a, MS_CLOSE_OK);
        return;
    }
    int rec = recorded(L, ar);
    if (!rec && (!a || !a->n))
        return;
    int level = stack_depth(L);
    if (a) {
        /* a call's frame is new at `level`; a tail call replaced the frame there */
        reconcile(a, ar->event == LUA_HOOKCALL ? level - 1 : level);
        if (ar->event == LUA_HOOKTAILCALL && a->n && a->f[a->n - 1].level == level)
            pop(a, MS_CLOSE_OK);
    }
    /* auto spans are of level "trace": moonspan.set_level("info") stops them */
    if (rec && (!a || a->n < max_depth) && ms_the_host.level >= MS_LEVEL_TRACE)
        open_frame(L, ar, slot, level);
}

void ms_autospans_unwind(lua_State *L, const ms_trace *t, uint32_t above, int errix)
{
    if (!max_depth)
        return;
    struct ms_autos *a = *ms_span_autos(L);
    while (a && a->n) {
        const auto_frame *f = &a->f[a->n - 1];
        if (alive(f) && (f->t != t || f->idx <= above))
            break;
        pop(a, errix);
    }
}
