/* lifecycle — a recording run from start to exit, in one place.
 *
 * Start: open the store and the tracer, record the run, watch signals.
 * End, whichever way it comes (the script returns or raises, os.exit, a
 * signal): every trace still open ends (interrupted or incomplete, with
 * its open spans), the on_exit functions run, every ended trace is
 * written, the timeline is printed, Lua and the tracer close.
 *
 * Signals. The first SIGINT/SIGTERM arms the debug hook (hook.c, which
 * the profiler and auto-spans share, the interrupt going first) on every
 * coroutine (not just the running one) to raise the interrupt error at
 * the next instruction, and keep raising it: a pcall in the script, in retry or
 * in llm.map's workers cannot swallow it, so the script unwinds through
 * its spans (stored as interrupted) to the end of the run. The second
 * signal wakes a watchdog thread that writes every trace that has ended
 * and leaves at once; the third gets the default action. A signal that
 * lands on another thread (curl's resolver) is passed to the Lua thread,
 * the only one allowed to touch Lua. A profiled run stops its profiler
 * first thing at the end, and prints the profiler's line after the
 * timeline. */
#include "host.h"

#include <errno.h>
#include <lauxlib.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms_buf.h"
#include "ms_clock.h"
#include "ms_text.h"
#include "ms_timeline.h"
#include "otlp_live.h"

#define QUEUE_TRACES 4096
/* How long the end of a run keeps retrying writes that fail (disk full)
 * before it counts what is left as lost. */
#define GIVE_UP_NS (INT64_C(10) * 1000000000)

ms_host ms_the_host;
volatile sig_atomic_t ms_interrupted;

static volatile sig_atomic_t signals_seen;
static volatile sig_atomic_t interrupts_armed; /* the script runs: signals interrupt it */
static pthread_t lua_thread;
static sem_t second_signal;
static pthread_t watchdog;
static int watchdog_running;
static volatile sig_atomic_t watchdog_quit; /* the run is over: the watchdog returns */
/* Held while the tracer is closed, so the watchdog never flushes a freed one. */
static pthread_mutex_t tracer_lock = PTHREAD_MUTEX_INITIALIZER;

static char interrupt_key; /* registry: the interrupt error table */
static char on_exit_key;   /* registry: {token = fn} of moonspan.on_exit */
static lua_Integer on_exit_seq; /* registration order of on_exit functions */

/* --- start ----------------------------------------------------------------- */

/* The run trace is named after the script: "examples/agent.lua" -> "agent". */
static char *script_name(const char *script)
{
    const char *base = strrchr(script, '/');
    base = base ? base + 1 : script;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
        n -= 4;
    return strndup(base, n);
}

static char *args_json(int argc, char **argv, int first_arg)
{
    ms_buf b = {0};
    ms_buf_addc(&b, '[');
    for (int i = first_arg; i < argc; i++) {
        if (i > first_arg)
            ms_buf_addc(&b, ',');
        ms_json_str(&b, argv[i], strlen(argv[i]));
    }
    ms_buf_addc(&b, ']');
    if (b.oom) {
        ms_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* The writer thread's word when writing starts failing or works again. */
static void writer_notice(const char *msg)
{
    fprintf(stderr, "moonspan: %s\n", msg);
}

static void watch_signals(void);

int ms_host_start(const char *db_path, const char *prices_path, const char *script,
                  int argc, char **argv, int first_arg, char *err, size_t errlen)
{
    ms_host *h = &ms_the_host;
    memset(h, 0, sizeof *h);
    ms_clock_init();

    const char *tp = getenv("TRACEPARENT");
    if (tp && *tp) {
        if (ms_traceparent_parse(tp, &h->join_id, &h->join_parent) != 0)
            return ms_errf(err, errlen, "TRACEPARENT='%s' is not a W3C traceparent "
                           "(00-<32 hex trace id>-<16 hex span id>-<2 hex flags>); fix it or unset it", tp);
        h->joined = 1;
    }
    if (ms_prices_new(&h->prices) != 0)
        return ms_errf(err, errlen, "out of memory loading the price table");
    if (prices_path && ms_prices_load_file(h->prices, prices_path, err, errlen) != 0)
        goto fail;

    ms_store *store;
    if (ms_store_open(db_path, MS_STORE_WRITE, &store, err, errlen) != 0)
        goto fail;
    char *args = args_json(argc, argv, first_arg);
    int rc = args ? ms_store_add_run(store, script, args, MOONSPAN_VERSION, ms_epoch_ns(),
                                     &h->run_id, err, errlen)
                  : ms_errf(err, errlen, "out of memory");
    free(args);
    if (rc != 0 || ms_tracer_open(store, QUEUE_TRACES, &h->tracer) != 0) {
        if (rc == 0)
            ms_errf(err, errlen, "cannot start the writer thread");
        ms_store_close(store);
        goto fail;
    }
    ms_tracer_set_notice(h->tracer, writer_notice);
    h->run_name = script_name(script);
    h->run_start = ms_mono_ns();
    watch_signals();
    return 0;
fail:
    ms_prices_free(h->prices);
    h->prices = NULL;
    return -1;
}

/* --- traces ---------------------------------------------------------------- */

static void keep_recent(ms_trace *t)
{
    ms_host *h = &ms_the_host;
    ms_tracer_retain(h->tracer, t);
    if (h->recent[0])
        ms_tracer_release(h->tracer, h->recent[0]);
    memmove(h->recent, h->recent + 1, sizeof h->recent[0] * (MS_RECENT_TRACES - 1));
    h->recent[MS_RECENT_TRACES - 1] = t;
}

void ms_host_trace_ended(ms_trace *t)
{
    ms_host *h = &ms_the_host;
    if (h->calibrating) { /* ms_host_calibrate's: never written */
        ms_tracer_release(h->tracer, t);
        return;
    }
    h->traces_ended++;
    ms_host_sample(t);
    keep_recent(t);
    ms_tracer_submit(h->tracer, t);
}

double ms_host_queue_depth(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&tracer_lock);
    double n = ms_the_host.tracer ? (double)ms_tracer_queued(ms_the_host.tracer) : 0;
    pthread_mutex_unlock(&tracer_lock);
    return n;
}

void ms_host_before_wait(int64_t wait_ns)
{
    if (ms_the_host.tracer)
        ms_tracer_cut_waiting(ms_the_host.tracer, ms_mono_ns(), wait_ns);
}

/* Ends the run trace and every trace still open. Spans still open were
 * cut off: interrupted by the signal, or incomplete (os.exit, a coroutine
 * never resumed). The run trace itself ended normally unless a signal
 * ended it. */
static void end_open_traces(enum ms_run_end how)
{
    ms_host *h = &ms_the_host;
    int cut = how == MS_END_INTERRUPT ? MS_STATUS_INTERRUPTED : MS_STATUS_INCOMPLETE;
    int64_t now = ms_mono_ns();
    if (h->implicit) {
        ms_trace *t = h->implicit;
        h->implicit = NULL;
        if (how == MS_END_INTERRUPT)
            ms_trace_abort(t, now, cut);
        else
            ms_trace_end(t, now);
        ms_host_trace_ended(t);
    }
    ms_trace *t;
    while ((t = ms_tracer_first_open(h->tracer))) {
        ms_trace_abort(t, now, cut);
        ms_host_trace_ended(t);
    }
}

/* --- signals --------------------------------------------------------------- */

static const char *signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

static void describe_interrupt(lua_State *L, int level);

int ms_raise_interrupt(lua_State *L)
{
    describe_interrupt(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &interrupt_key);
    return lua_error(L);
}

int ms_is_interrupt(lua_State *L, int idx)
{
    if (!ms_interrupted || lua_type(L, idx) != LUA_TTABLE)
        return 0;
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &interrupt_key);
    int is = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return is;
}

/* Fills in the interrupt error the first time it is raised: the signal,
 * and where the script was (the function at stack `level`, or the first
 * Lua function above it). */
static void describe_interrupt(lua_State *L, int level)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &interrupt_key);
    if (lua_getfield(L, -1, "signal") == LUA_TNIL) {
        const char *sig = signal_name(ms_interrupted);
        lua_pushstring(L, sig);
        lua_setfield(L, -3, "signal");
        /* the script's line, not one of moonspan's own library (scripts/) */
        lua_Debug ar;
        char where[LUA_IDSIZE + 16] = "";
        for (; lua_getstack(L, level, &ar); level++) {
            if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
                continue;
            int library = strncmp(ar.source, "@scripts/", 9) == 0;
            if (!where[0] || !library)
                snprintf(where, sizeof where, " at %s:%d", ar.short_src, ar.currentline);
            if (!library)
                break;
        }
        lua_pushfstring(L, "interrupted by %s%s", sig, where);
        lua_setfield(L, -3, "message");
    }
    lua_pop(L, 2);
}

int ms_interrupt_due(void)
{
    return ms_interrupted && interrupts_armed;
}

/* Raises the interrupt at every Lua instruction and call while the
 * script runs (the first part of the one debug hook, hook.c). Never on
 * entering a C function: that would raise inside a message handler (an
 * error while handling an error). */
int ms_interrupt_hook(lua_State *L, lua_Debug *ar)
{
    if (!interrupts_armed)
        return MS_HOOK_OFF;
    if (!ms_interrupted)
        return MS_HOOK_GO_ON;
    if (ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKTAILCALL) {
        if (!lua_getinfo(L, "S", ar) || ar->what[0] == 'C')
            return MS_HOOK_WAIT;
    }
    describe_interrupt(L, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &interrupt_key);
    return lua_error(L);
}

void ms_arm_interrupt(lua_State *co)
{
    if (ms_interrupt_due())
        ms_hook_arm(co);
}

static void disarm(lua_State *co)
{
    lua_sethook(co, NULL, 0, 0);
}

static void on_signal(int sig)
{
    if (!pthread_equal(pthread_self(), lua_thread)) {
        pthread_kill(lua_thread, sig); /* Lua is touched on its own thread only */
        return;
    }
    int seen = ++signals_seen; /* both signals are masked while this runs */
    if (seen == 1) {
        ms_interrupted = sig;
        if (interrupts_armed)
            ms_each_thread(ms_arm_interrupt);
    } else if (seen == 2) {
        sem_post(&second_signal);
    } else {
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

/* The second signal: write what has ended, then leave without waiting
 * for the script. */
static void *watchdog_main(void *arg)
{
    (void)arg;
    while (sem_wait(&second_signal) != 0 && errno == EINTR)
        ;
    if (watchdog_quit)
        return NULL;
    pthread_mutex_lock(&tracer_lock);
    ms_host *h = &ms_the_host;
    size_t left = h->tracer ? ms_tracer_flush(h->tracer, GIVE_UP_NS, NULL) : 0;
    size_t failed = h->tracer ? ms_tracer_failed(h->tracer) : 0;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "moonspan: second %s: every trace that had ended is written%s; "
                     "traces still open are lost\n", signal_name(ms_interrupted),
                     left + failed ? " but for those that could not be" : "");
    if (write(2, msg, (size_t)n) < 0) { /* nothing to do about it */
    }
    ms_otlp_live_abandon();
    _exit(128 + ms_interrupted);
}

static void watch_signals(void)
{
    static int started;
    lua_thread = pthread_self();
    ms_interrupted = 0;
    signals_seen = 0;
    if (!started) {
        sem_init(&second_signal, 0, 0);
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        watchdog_running = pthread_create(&watchdog, NULL, watchdog_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        started = 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* --- Lua: os.exit, moonspan.on_exit, moonspan.flush ------------------------ */

/* os.exit replacement: leaves through the one way out, so nothing that
 * was recorded is lost and on_exit functions run. */
static int l_exit(lua_State *L)
{
    int status;
    if (lua_isboolean(L, 1))
        status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
    else
        status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    exit(ms_lifecycle_end(L, ms_interrupted ? MS_END_INTERRUPT : MS_END_EXIT, status));
}

static int cancel_on_exit(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &on_exit_key);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushnil(L);
    lua_rawset(L, -3);
    return 0;
}

/* moonspan.on_exit(fn) -> cancel: fn({reason =, status =}) runs once when
 * the run ends, however it ends; calling cancel() unregisters it. */
static int l_on_exit(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &on_exit_key);
    lua_newtable(L);                      /* fns token: a fresh key, in registration order */
    lua_pushinteger(L, ++on_exit_seq);
    lua_setfield(L, -2, "order");
    lua_pushvalue(L, -1);
    lua_pushvalue(L, 1);
    lua_rawset(L, -4);                    /* fns[token] = fn */
    lua_pushcclosure(L, cancel_on_exit, 1);
    return 1;
}

/* moonspan.flush() -> n: waits until every trace that has ended is
 * written; returns how many traces of the run could not be written (0). */
static int l_flush(lua_State *L)
{
    ms_host *h = &ms_the_host;
    if (!h->tracer)
        return luaL_error(L, "moonspan.flush: no store is open");
    ms_tracer_flush(h->tracer, 0, (const volatile int *)&ms_interrupted);
    if (ms_interrupted)
        return ms_raise_interrupt(L);
    lua_pushinteger(L, (lua_Integer)ms_tracer_failed(h->tracer));
    return 1;
}

void ms_open_lifecycle(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "interrupted");
    lua_setfield(L, -2, "type");
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "moonspan.interrupt");
    lua_setfield(L, -2, "__name");
    luaL_loadstring(L, "local e = ... return e.message or 'interrupted'");
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &interrupt_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &on_exit_key);

    lua_getglobal(L, "os");
    lua_pushcfunction(L, l_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    lua_getglobal(L, "moonspan");
    lua_pushcfunction(L, l_on_exit);
    lua_setfield(L, -2, "on_exit");
    lua_pushcfunction(L, l_flush);
    lua_setfield(L, -2, "flush");
    lua_pop(L, 1);
    interrupts_armed = 1;
    ms_arm_interrupt(L); /* a signal that came while the state was made */
}

/* --- the end --------------------------------------------------------------- */

static const char *const END_REASONS[] = {"end", "error", "exit", "interrupt"};

static int traceback_msgh(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Runs the on_exit functions, the last registered first, each protected.
 * An integer one returns replaces a status of 0. */
static int run_on_exit(lua_State *L, enum ms_run_end how, int status)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &on_exit_key);            /* fns */
    lua_newtable(L);                                            /* fns list */
    lua_pushnil(L);
    while (lua_next(L, -3)) {                                   /* fns list token fn */
        lua_getfield(L, -2, "order");
        lua_pushvalue(L, -2);
        lua_rawset(L, -5);                                      /* list[order] = fn */
        lua_pop(L, 1);
    }
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_Integer k = lua_tointeger(L, -2);
        n = k > n ? k : n;
        lua_pop(L, 1);
    }
    int list = lua_gettop(L);
    for (lua_Integer i = n; i >= 1; i--) {
        lua_pushcfunction(L, traceback_msgh);                   /* fns list msgh */
        if (lua_rawgeti(L, list, i) != LUA_TFUNCTION) {
            lua_settop(L, list);
            continue;
        }
        lua_createtable(L, 0, 2);                               /* fns list msgh fn why */
        lua_pushstring(L, END_REASONS[how]);
        lua_setfield(L, -2, "reason");
        lua_pushinteger(L, status);
        lua_setfield(L, -2, "status");
        if (lua_pcall(L, 1, 1, list + 1) != LUA_OK) {
            ms_buf b = {0};
            ms_buf_adds(&b, "moonspan: an on_exit function failed: ");
            ms_buf_add_texts(&b, luaL_tolstring(L, -1, NULL), MS_TEXT_NEWLINES);
            if (!b.oom)
                fprintf(stderr, "%s\n", b.data);
            ms_buf_free(&b);
        }
        else if (lua_isinteger(L, -1) && status == 0)
            status = (int)lua_tointeger(L, -1);
        lua_settop(L, list);
    }
    lua_pop(L, 2);
    lua_newtable(L); /* each runs once */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &on_exit_key);
    return status;
}

static void print_timeline(void)
{
    ms_host *h = &ms_the_host;
    if (h->quiet || !h->traces_ended)
        return;
    ms_buf b = {0};
    size_t shown = 0;
    for (int i = 0; i < MS_RECENT_TRACES; i++)
        shown += h->recent[i] != NULL;
    if (h->traces_ended > shown)
        ms_buf_printf(&b, "(%zu earlier trace%s not shown; list them with `moonspan traces`)\n",
                      h->traces_ended - shown, h->traces_ended - shown == 1 ? "" : "s");
    for (int i = 0; i < MS_RECENT_TRACES; i++)
        if (h->recent[i])
            ms_trace_timeline(h->recent[i], ms_mono_ns(), MS_TIMELINE_LINES, &b);
    if (b.data)
        fputs(b.data, stderr);
    ms_buf_free(&b);
}

int ms_lifecycle_end(lua_State *L, enum ms_run_end how, int status)
{
    ms_host *h = &ms_the_host;
    fflush(stdout); /* the script's output first, then ours */
    ms_profile_stop();
    ms_hook_stop();
    interrupts_armed = 0;
    if (L) {
        ms_each_thread(disarm);
        if (h->tracer)
            end_open_traces(how);
        status = run_on_exit(L, how, status);
        if (h->tracer)
            end_open_traces(how); /* spans an on_exit function opened */
        lua_close(L);
    } else if (h->tracer) {
        end_open_traces(how);
    }
    if (!h->tracer)
        return status;
    ms_tracer_flush(h->tracer, GIVE_UP_NS, NULL);
    print_timeline();
    ms_profile_finish();
    for (int i = 0; i < MS_RECENT_TRACES; i++) {
        if (h->recent[i])
            ms_tracer_release(h->tracer, h->recent[i]);
        h->recent[i] = NULL;
    }
    size_t failed = ms_tracer_failed(h->tracer);
    if (failed)
        fprintf(stderr, "moonspan: %zu trace%s could not be written: %s\n", failed,
                failed == 1 ? "" : "s", ms_tracer_last_error(h->tracer));
    ms_run_stats stats;
    ms_host_run_stats(&stats, ms_tracer_written_spans(h->tracer));
    pthread_mutex_lock(&tracer_lock);
    size_t gave_up;
    ms_store *store = ms_tracer_detach(h->tracer, GIVE_UP_NS, &gave_up);
    h->tracer = NULL;
    pthread_mutex_unlock(&tracer_lock);
    char err[512];
    if (store && ms_store_end_run(store, h->run_id, &stats, err, sizeof err))
        fprintf(stderr, "moonspan: the run's summary could not be written: %s\n", err);
    ms_store_close(store);
    ms_otlp_live_end(); /* everything the run wrote is committed: its last chance to go */
    ms_sampler_free(h->sampler);
    h->sampler = NULL;
    ms_host_redaction_end();
    int log_failed = ms_host_log_end() != 0;
    if (watchdog_running) { /* a second signal from here on just ends the process */
        watchdog_quit = 1;
        sem_post(&second_signal);
        pthread_join(watchdog, NULL);
        watchdog_running = 0;
    }
    ms_http_shutdown();
    ms_prices_free(h->prices);
    h->prices = NULL;
    free((char *)h->run_name);
    h->run_name = NULL;
    if (ms_interrupted)
        return 128 + ms_interrupted;
    return status ? status : (failed || log_failed) ? 1 : 0;
}
