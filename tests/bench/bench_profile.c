/* make bench: what `--profile` costs a CPU-bound script, measured in one
 * process. The workload (tests/bench/profile_cpu.lua, span and trace as
 * plain calls) runs in chunks timed in the thread's CPU time, alternately
 * with the profiler running at the default 1000 Hz and stopped, so the
 * machine's drift and its neighbours weigh on both sides alike: run to
 * run, this VM's speed moves by far more than the profiler costs.
 *
 * The profiler is the binary's own: host/profile.c and host/hook.c are
 * linked in; the rest of the host is stubbed below (one coroutine, one
 * open trace that every sample goes to, no interrupt, no auto-spans).
 *
 * usage: bench_profile SCRIPT [PAIRS] [N]; writes its lines on stderr, as
 * the profiler writes its own. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "host.h"

/* --- the host, stubbed ------------------------------------------------------ */

volatile sig_atomic_t ms_interrupted;
static lua_State *the_state;
static ms_trace the_trace;

void ms_each_thread(void (*fn)(lua_State *co)) { fn(the_state); }
int ms_interrupt_due(void) { return 0; }
int ms_interrupt_hook(lua_State *L, lua_Debug *ar) { (void)L; (void)ar; return MS_HOOK_GO_ON; }
void ms_autospans_hook(lua_State *L, lua_Debug *ar) { (void)L; (void)ar; }

int ms_span_current(lua_State *L, ms_trace **t, uint32_t *idx)
{
    (void)L;
    *t = &the_trace;
    *idx = 0;
    return 1;
}

/* --- the measurement --------------------------------------------------------- */

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One chunk: the script with argument n; CPU ns it took. */
static int64_t chunk(lua_State *L, int fix, int n)
{
    int64_t t0 = cpu_ns();
    lua_pushvalue(L, fix);
    lua_pushinteger(L, n);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "bench_profile: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    return cpu_ns() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_profile SCRIPT [PAIRS] [N]\n");
        return 2;
    }
    int pairs = argc > 2 ? atoi(argv[2]) : 40;
    int n = argc > 3 ? atoi(argv[3]) : 60;
    lua_State *L = the_state = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, "function span(name, fn) return fn() end trace = span") != LUA_OK ||
        luaL_loadfile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "bench_profile: %s\n", lua_tostring(L, -1));
        return 1;
    }
    int fix = lua_gettop(L);
    ms_trace_start(&the_trace, "bench", 5, 0, NULL, 0);
    chunk(L, fix, n); /* warm */
    int64_t with = 0, without = 0;
    double *ratio = calloc((size_t)pairs, sizeof *ratio);
    char err[256];
    for (int i = 0; i < pairs; i++) {
        /* which goes first alternates, so a trend favours neither */
        int64_t wo = i % 2 ? chunk(L, fix, n) : 0;
        /* a start calibrates (a few ms), outside the timed chunk */
        if (ms_profile_start(L, MS_PROFILE_HZ_DEFAULT, i == pairs - 1, err, sizeof err) != 0) {
            fprintf(stderr, "bench_profile: %s\n", err);
            return 1;
        }
        int64_t w = chunk(L, fix, n);
        ms_profile_stop();
        if (i < pairs - 1)
            ms_profile_finish();
        if (!(i % 2))
            wo = chunk(L, fix, n);
        with += w;
        without += wo;
        ratio[i] = (double)w / (double)wo;
    }
    qsort(ratio, (size_t)pairs, sizeof *ratio, cmp_double);
    fprintf(stderr, "  in one process, %d pairs of chunks (%.2f s of CPU with --profile at %d Hz, %.2f s without):"
                    " %+.2f%% in all, %+.2f%% the median pair (quartiles %+.1f%% .. %+.1f%%)\n",
            pairs, (double)with / 1e9, MS_PROFILE_HZ_DEFAULT, (double)without / 1e9,
            100.0 * (double)(with - without) / (double)without, 100 * (ratio[pairs / 2] - 1),
            100 * (ratio[pairs / 4] - 1), 100 * (ratio[3 * pairs / 4] - 1));
    fputs("  its own estimate, last chunk: ", stderr);
    ms_profile_finish(); /* the profiler's line */
    free(ratio);
    ms_trace_free(&the_trace);
    lua_close(L);
    return 0;
}
