/* profile — `moonspan run --profile[=HZ]`: where the CPU time went inside
 * each span, without editing the script.
 *
 * A CPU-time timer of the Lua thread (timer_create on its
 * CLOCK_THREAD_CPUTIME_ID, the signal sent to that thread only) ticks HZ
 * times per second of CPU the script uses. Waits (sleeps, LLM calls) use
 * none and get no samples: what they cost is already their spans'. The
 * writer thread's work is not counted either. The kernel checks CPU
 * timers on its scheduler tick, so on a kernel of CONFIG_HZ=250 a signal
 * comes every 4 ms carrying 4 ticks of 1 ms (timer_getoverrun): totals
 * stay exact, each signal weighs its ticks.
 *
 * The signal handler only does what is async-signal-safe: it counts the
 * ticks and arms the debug hook of every coroutine (hook.c). At the next
 * hook event the running coroutine takes the sample: the function that
 * was running, the innermost open span of that coroutine, and ticks x
 * 1/HZ s of self time added to the span for that function
 * (ms_span_add_samples). Which function was running: the one at the hook
 * for an instruction (count) or a return (a C function that ran when the
 * signal came returns before any Lua instruction), the caller for a call
 * (Lua code meets its next instruction first, so a call comes first only
 * when C code was running and is calling: pcall, span, table.sort).
 *
 * Overhead is measured, not guessed: at start, the same small Lua
 * function is timed (thread CPU time) with and without a tick before each
 * call; the difference is what one signal and its sample cost. The
 * profiler's line at the end multiplies it by the signals of the run. */
#include "host.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CALIBRATION_CALLS 200
#define CALIBRATION_ROUNDS 5

static volatile sig_atomic_t profiling; /* the timer runs: ticks count */
static volatile sig_atomic_t calibrating;
static _Atomic int pending;             /* ticks the hook has not sampled yet */
static volatile long signals;           /* timer signals handled */
static pthread_t lua_thread;
static timer_t timer;
static int have_timer, announce;
static long rate_hz;
static int64_t period_ns;               /* self time of one tick */
static int64_t cpu_start, cpu_used;     /* the Lua thread's CPU time while sampling */
static double per_signal_ns;            /* calibrated cost of one signal and its sample */
static int64_t ticks, outside;          /* sampled; of those, outside any span */
static ms_trace *calibration;           /* while calibrating, samples go here */

/* --- functions sampled --------------------------------------------------- */

/* A function seen by the sampler: a Lua function by its chunk and the
 * line it is defined on, a C function by its address. Its index + 1 is
 * the key traces group its samples by. Kept for the run. */
typedef struct fn_info {
    lua_CFunction cfn;
    int line;
    char *name, *source;
    size_t namelen, srclen;
} fn_info;

static fn_info *fns;
static size_t nfns, capfns;
static uint32_t *slots; /* open addressing: 0 empty, else index + 1 */
static size_t nslots;

static uint64_t fn_hash(lua_CFunction cfn, const char *src, int line)
{
    uint64_t h = UINT64_C(1469598103934665603) ^ (uint64_t)(uintptr_t)cfn ^ (uint64_t)(uint32_t)line;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return h ^ (h >> 29);
}

static int same_fn(const fn_info *f, lua_CFunction cfn, const char *src, int line)
{
    return f->cfn == cfn && f->line == line && strcmp(f->source, src) == 0;
}

static int grow_slots(void)
{
    size_t n = nslots ? nslots * 2 : 256;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < nfns; i++) {
        const fn_info *f = &fns[i];
        size_t j = fn_hash(f->cfn, f->source, f->line) & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(slots);
    slots = s;
    nslots = n;
    return 0;
}

/* The function of frame `ar` ("S" filled; cfn its C function or NULL),
 * named on first sight; NULL when memory ran out. */
static const fn_info *fn_of(lua_State *L, lua_Debug *ar, lua_CFunction cfn)
{
    const char *src = cfn ? "[C]" : ar->short_src;
    int line = cfn ? -1 : ar->linedefined;
    if (nfns * 2 >= nslots && grow_slots())
        return NULL;
    size_t j = fn_hash(cfn, src, line) & (nslots - 1);
    for (; slots[j]; j = (j + 1) & (nslots - 1))
        if (same_fn(&fns[slots[j] - 1], cfn, src, line))
            return &fns[slots[j] - 1];
    if (nfns == capfns) {
        size_t cap = capfns ? capfns * 2 : 64;
        fn_info *n = realloc(fns, cap * sizeof *n);
        if (!n)
            return NULL;
        fns = n;
        capfns = cap;
    }
    char buf[256];
    const char *name = ms_frame_name(L, ar, buf, sizeof buf);
    fn_info *f = &fns[nfns];
    f->cfn = cfn;
    f->line = line;
    f->name = strdup(name);
    f->source = strdup(src);
    if (!f->name || !f->source) {
        free(f->name);
        free(f->source);
        return NULL;
    }
    f->namelen = strlen(f->name);
    f->srclen = strlen(f->source);
    slots[j] = (uint32_t)++nfns;
    return f;
}

static void free_fns(void)
{
    for (size_t i = 0; i < nfns; i++) {
        free(fns[i].name);
        free(fns[i].source);
    }
    free(fns);
    free(slots);
    fns = NULL;
    slots = NULL;
    nfns = capfns = nslots = 0;
}

/* --- the signal and the sample -------------------------------------------- */

static void on_tick(int sig)
{
    (void)sig;
    if (!profiling || !pthread_equal(pthread_self(), lua_thread))
        return;
    int saved = errno;
    int over = calibrating ? 0 : timer_getoverrun(timer);
    atomic_fetch_add_explicit(&pending, 1 + (over > 0 ? over : 0), memory_order_relaxed);
    signals++;
    ms_each_thread(ms_hook_arm);
    errno = saved;
}

int ms_profile_due(void)
{
    return atomic_load_explicit(&pending, memory_order_relaxed) != 0;
}

void ms_profile_hook(lua_State *L, lua_Debug *ar)
{
    int n = atomic_exchange(&pending, 0);
    if (n <= 0)
        return;
    lua_Debug caller, *f = ar;
    if (ar->event == LUA_HOOKCALL && lua_getstack(L, 1, &caller))
        f = &caller;
    if (!lua_getinfo(L, "S", f))
        return;
    lua_CFunction cfn = NULL;
    if (f->what[0] == 'C' && lua_getinfo(L, "f", f)) {
        cfn = lua_tocfunction(L, -1);
        lua_pop(L, 1);
    }
    const fn_info *fn = fn_of(L, f, cfn);
    ms_trace *t;
    uint32_t idx = 0;
    if (calibration)
        t = calibration;
    else if (!ms_span_current(L, &t, &idx))
        t = NULL;
    if (!calibration) {
        ticks += n;
        outside += t ? 0 : n;
    }
    if (t && fn)
        ms_span_add_samples(t, idx, (uint64_t)(fn - fns) + 1, fn->name, fn->namelen, fn->source,
                            fn->srclen, fn->line, (uint32_t)n, n * period_ns);
}

/* --- start, calibration, end ------------------------------------------------ */

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU ns of CALIBRATION_CALLS calls of the function at fix, each after a
 * signal when `tick`. */
static int64_t time_calls(lua_State *L, int fix, int tick)
{
    int64_t t0 = thread_cpu_ns();
    for (int i = 0; i < CALIBRATION_CALLS && !ms_interrupted; i++) {
        if (tick)
            raise(SIGPROF);
        lua_pushvalue(L, fix);
        lua_pushinteger(L, 100);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK)
            lua_pop(L, 1);
    }
    return thread_cpu_ns() - t0;
}

/* What one signal and the sample it leads to cost the Lua thread, in ns:
 * the least difference over a few rounds (the noise only adds). */
static double calibrate(lua_State *L)
{
    static const char spin[] = "local n = ... local x = 0 for i = 1, n do x = x + i end return x";
    if (luaL_loadstring(L, spin) != LUA_OK) {
        lua_pop(L, 1);
        return NAN;
    }
    int fix = lua_gettop(L);
    ms_trace scratch;
    memset(&scratch, 0, sizeof scratch);
    if (ms_trace_start(&scratch, "calibration", 11, 0, NULL, 0) != 0) {
        ms_trace_free(&scratch);
        lua_settop(L, fix - 1);
        return NAN;
    }
    calibration = &scratch;
    calibrating = 1;
    double best = INFINITY;
    for (int r = 0; r < CALIBRATION_ROUNDS; r++) {
        int64_t plain = time_calls(L, fix, 0);
        int64_t ticked = time_calls(L, fix, 1);
        double per = (double)(ticked - plain) / CALIBRATION_CALLS;
        if (per < best)
            best = per;
    }
    calibrating = 0;
    calibration = NULL;
    atomic_store(&pending, 0);
    ms_trace_free(&scratch);
    lua_settop(L, fix - 1);
    return best > 0 ? best : 0;
}

int ms_profile_start(lua_State *L, long hz, int announce_at_end, char *err, size_t errlen)
{
    lua_thread = pthread_self();
    rate_hz = hz;
    period_ns = 1000000000 / hz;
    announce = announce_at_end;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, NULL) != 0)
        return ms_errf(err, errlen, "--profile: cannot handle SIGPROF: %s; run without --profile", strerror(errno));
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &timer) != 0)
        return ms_errf(err, errlen, "--profile: cannot create a CPU-time timer: %s; run without --profile",
                       strerror(errno));
    have_timer = 1;
    profiling = 1;
    per_signal_ns = calibrate(L);
    signals = 0;
    ticks = outside = 0;
    cpu_start = thread_cpu_ns();
    struct timespec every = {(time_t)(period_ns / 1000000000), (long)(period_ns % 1000000000)};
    struct itimerspec its = {every, every};
    if (timer_settime(timer, 0, &its, NULL) != 0) {
        int e = errno;
        ms_profile_stop();
        free_fns();
        rate_hz = 0;
        return ms_errf(err, errlen, "--profile: cannot start the CPU-time timer: %s; run without --profile",
                       strerror(e));
    }
    return 0;
}

void ms_profile_stop(void)
{
    if (!have_timer)
        return;
    profiling = 0; /* the handler stays installed: a late signal does nothing */
    timer_delete(timer);
    have_timer = 0;
    cpu_used = thread_cpu_ns() - cpu_start;
    atomic_store(&pending, 0);
}

/* n with thousands separators: "12,345". */
static const char *grouped(int64_t n, char *buf, size_t size)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && digits[i - 1] != '-' && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

void ms_profile_finish(void)
{
    if (!rate_hz)
        return;
    if (announce) {
        char a[32], b[32];
        double cpu = (double)cpu_used;
        double cost = per_signal_ns * (double)signals;
        /* overhead: of what the script would have used without the profiler */
        double share = cpu > cost ? 100.0 * cost / (cpu - cost) : NAN;
        fprintf(stderr, "profiler: %s samples at %ld Hz over %.2f s of CPU (%s signals), ",
                grouped(ticks, a, sizeof a), rate_hz, cpu / 1e9, grouped(signals, b, sizeof b));
        if (isnan(share))
            fputs("overhead unknown (no calibration)", stderr);
        else
            fprintf(stderr, "overhead ~%.1f%% (calibrated: %.1f us per signal)", share, per_signal_ns / 1e3);
        if (outside)
            fprintf(stderr, "; %s outside any trace, not stored", grouped(outside, a, sizeof a));
        fputs("\n", stderr);
    }
    free_fns();
    rate_hz = 0;
}
