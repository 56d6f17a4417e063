/* The host's process-wide state and the pieces of the Lua runtime that the
 * command files share. One lua_State per process; the writer thread never
 * touches Lua. */
#ifndef MS_HOST_H
#define MS_HOST_H

#include <lua.h>
#include <sqlite3.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_ids.h"
#include "ms_prices.h"
#include "ms_sample.h"
#include "ms_store.h"
#include "ms_trace.h"
#include "ms_tracer.h"

#define MS_RECENT_TRACES 3

/* Span levels: a span records when its level is at most the run's. */
enum ms_level { MS_LEVEL_INFO, MS_LEVEL_DEBUG, MS_LEVEL_TRACE };

/* What the run's telemetry did besides recording spans, for the runs row. */
typedef struct ms_run_counts {
    uint64_t skipped;       /* span() calls below the level: the body ran, nothing was recorded */
    uint64_t folded;        /* repetitions recorded in a fold rather than as spans */
    uint64_t traces_sampled_out, spans_sampled_out;
} ms_run_counts;

typedef struct ms_host {
    ms_tracer *tracer;
    ms_prices *prices;
    int64_t run_id;
    int64_t run_start;          /* monotonic ns when the run began */
    const char *run_name;       /* name of the implicit run trace (the script) */
    ms_trace *implicit;         /* the run trace, opened by the first span outside trace() */
    int joined;                 /* TRACEPARENT given: traces join that trace */
    ms_trace_id join_id;
    uint64_t join_parent;
    ms_trace *recent[MS_RECENT_TRACES]; /* retained, for the closing timeline */
    size_t traces_ended;
    int quiet;                  /* no closing timeline (run --quiet, test, eval) */
    int level;                  /* enum ms_level: what span() records */
    int start_level;            /* the level the run started with */
    uint32_t fold_above;        /* fold a parent's spans of one name past this many; 0: never */
    ms_sampling sampling;
    ms_sampler *sampler;        /* for the slowest-share rule; NULL otherwise */
    ms_run_counts counts;
    double ns_per_span, ns_per_fold, ns_per_skip; /* measured at the start (ms_host_calibrate) */
    int calibrating;            /* traces ending now are the calibration's: not written */
    int keep_spans;             /* traces keep a digest of cut spans (ms_digest.h): eval */
    struct ms_redactor *redactor; /* what every recorded error (and, when asked, value) goes through */
    int capture_content;        /* --capture-content: llm.call stores prompts and responses */
    struct ms_log *log;         /* --log json / --log-file; NULL: none */
    int has_request_budget;     /* --budget-usd request=X: every trace's budget unless it sets one */
    double request_budget_usd;
} ms_host;

extern ms_host ms_the_host;

/* The first SIGINT/SIGTERM received (0 before any); blocking waits check
 * it so they end promptly. */
extern volatile sig_atomic_t ms_interrupted;

/* --- lifecycle.c: the run from start to exit, in one place ------------- */

/* How a run ends. */
enum ms_run_end {
    MS_END_NORMAL,    /* the script returned */
    MS_END_ERROR,     /* the script raised */
    MS_END_EXIT,      /* os.exit */
    MS_END_INTERRUPT, /* SIGINT/SIGTERM */
};

/* Opens the store at db_path for writing, loads prices (built-in, then
 * prices_path when given), starts the tracer, records a runs row, and
 * starts watching SIGINT/SIGTERM. Returns 0, or -1 with a message in err. */
int ms_host_start(const char *db_path, const char *prices_path, const char *script,
                  int argc, char **argv, int first_arg, char *err, size_t errlen);

/* Registers os.exit, moonspan.on_exit and moonspan.flush, and makes
 * signals interrupt every coroutine of L from now on. */
void ms_open_lifecycle(lua_State *L);

/* Ends the run: every open trace ends (interrupted or incomplete, with
 * its open spans), the on_exit functions run, every ended trace is
 * written, the timeline is printed, L is closed and the host shut down.
 * Returns the exit status to use (`status`, or what an on_exit function
 * or unwritten traces turned it into). The one way out of a hosted run;
 * os.exit calls it too. L may be NULL when it was never created. */
int ms_lifecycle_end(lua_State *L, enum ms_run_end how, int status);

/* A trace has ended: counts it, keeps it for the closing timeline and
 * hands it to the writer. */
void ms_host_trace_ended(ms_trace *t);

/* Traces waiting for the writer (0 once the run has ended), for the live
 * metrics' gauge; the signature of ms_metrics_set_queue_gauge's. Any
 * thread. */
double ms_host_queue_depth(void *ud);

/* The Lua thread is about to block for up to wait_ns (a sleep, a wait on
 * transfers): spans that ended in traces still open, and would have
 * waited MS_CUT_AGE_NS by the end of it, are written first, so a long
 * wait never holds them in memory only (ms_tracer_cut_waiting). */
void ms_host_before_wait(int64_t wait_ns);

/* Raises the interrupt error (a table {type = "interrupted", signal =,
 * message =}, the same value every time) in L. */
int ms_raise_interrupt(lua_State *L);
/* Whether the value at idx is the interrupt error. */
int ms_is_interrupt(lua_State *L, int idx);
/* Arms the interrupt on coroutine `co` when a signal has arrived (for
 * coroutines that start after it). Async-signal-safe. */
void ms_arm_interrupt(lua_State *co);
/* Whether a signal has interrupted the script (and the run is not yet
 * ending): the hook must raise at every instruction. */
int ms_interrupt_due(void);
/* The interrupt's part of the debug hook (hook.c), always first: raises
 * the interrupt error when it is due, except on entering a C function
 * (MS_HOOK_WAIT: raise at the next instruction); MS_HOOK_OFF once the run
 * is ending; else MS_HOOK_GO_ON. */
enum { MS_HOOK_GO_ON, MS_HOOK_WAIT, MS_HOOK_OFF };
int ms_interrupt_hook(lua_State *L, lua_Debug *ar);

/* --- hook.c: the one debug hook every coroutine shares -------------------- */

/* Hooks the next instruction, call and return of `co` (a signal has
 * something for it: the interrupt, a profiler tick). Async-signal-safe. */
void ms_hook_arm(lua_State *co);
/* From now on every coroutine hooks its calls and returns (auto-spans);
 * hooks L's now. */
void ms_hook_calls(lua_State *L);
/* The run is ending: calls and returns are no longer hooked, and the
 * names found for functions are forgotten. */
void ms_hook_stop(void);
/* The name of the function of frame `ar` (lua_getinfo "S" done on it):
 * as its call site names it; else (a function called from C or by a tail
 * call) the global, or the local or upvalue of a frame below, holding it,
 * searched once per function; else "main chunk", "function <file:line>"
 * (as Lua's tracebacks say) or "[C]". May use `buf`; leaves L's stack as
 * it was. */
const char *ms_frame_name(lua_State *L, lua_Debug *ar, char *buf, size_t n);

/* --- profile.c: --profile, CPU-time samples of the Lua stack --------------- */

/* Starts sampling L's thread `hz` times per second of its CPU time, after
 * calibrating what one sample costs. `announce`: print the profiler's
 * line when the run ends. Returns 0, or -1 with err (no timer). */
int ms_profile_start(lua_State *L, long hz, int announce, char *err, size_t errlen);
/* Whether a tick waits for the hook to sample it. Async-signal-safe. */
int ms_profile_due(void);
/* The profiler's part of the debug hook: takes the pending sample. */
void ms_profile_hook(lua_State *L, lua_Debug *ar);
/* Stops sampling (the run is ending); then ms_profile_finish prints the
 * profiler's line (samples, overhead) when announced, and frees. */
void ms_profile_stop(void);
void ms_profile_finish(void);

/* --- autospans.c: --auto-spans, every Lua call as a span ------------------- */

struct ms_autos; /* a coroutine's open auto spans */

/* Records every Lua function call of the script as a span, up to `depth`
 * nested calls in each coroutine. */
void ms_autospans_start(lua_State *L, int depth);
/* The auto-spans part of the debug hook: a call, tail call or return. */
void ms_autospans_hook(lua_State *L, lua_Debug *ar);
/* The error at errix is leaving span `above` of trace t (span_k,
 * trace_k) or the script (above 0 of the run trace): the auto spans of
 * L's coroutine opened inside it close first, the error passing through
 * them. Nothing when auto-spans is off. */
void ms_autospans_unwind(lua_State *L, const ms_trace *t, uint32_t above, int errix);
/* Frees a coroutine's auto spans record (its thread is collected). */
void ms_autospans_free(struct ms_autos *a);

/* --- record.c: how the run records, and what that cost ------------------- */

struct ms_record_opts;
/* Applies --level, --fold, --sample and --keep (after ms_host_start). */
void ms_host_record(const struct ms_record_opts *o);
/* The sampling decision for an ended trace: 1 to keep its spans; 0 marks
 * it sampled out (its summary only) and counts it. */
int ms_host_sample(ms_trace *t);
/* Measures what span() costs in L (recorded, folded, below the level). */
void ms_host_calibrate(lua_State *L);
/* The run's figures for its runs row. */
void ms_host_run_stats(ms_run_stats *st, size_t spans_kept);

/* --- bind_redact.c: redaction (ms_redact.h) and content capture ---------- */

/* Takes o's redactor (or makes one with the built-in patterns) and
 * --capture-content, and sets the trace filters: error text always, string
 * attribute values and event attributes when content is captured or
 * --redact was given. Returns 0, or -1 when out of memory. */
int ms_host_redaction(struct ms_record_opts *o);
/* Unsets the filters and frees the redactor (the run has ended). */
void ms_host_redaction_end(void);
/* s[0..n) with the run's redaction appended to out (as it is when
 * nothing matched); returns the masks made. */
size_t ms_host_redact(const char *s, size_t n, ms_buf *out);
/* Registers moonspan.redact(text) and moonspan.capture_content. */
void ms_open_redact(lua_State *L);

/* --- log.c: --log json / --log-file ---------------------------------------- */

/* Opens the log at path ("-": stderr; NULL: no log) and has the writer
 * thread write every trace's lines to it (after ms_host_start). Returns
 * 0, or -1 with why in err. */
int ms_host_log_start(const char *path, char *err, size_t errlen);
/* Closes the log once the writer has stopped; a write that failed is
 * reported on stderr, and the result is -1. */
int ms_host_log_end(void);

/* --- bind_trace.c and its files: span(), trace(), handles ----------------- */

/* Registers span, trace and the moonspan table's tracing functions. */
void ms_open_trace(lua_State *L);

/* bind_spans.c: pushes the ended spans of `t` (named `trace_name` in
 * errors) as a list of plain tables; raises when the list would be
 * incomplete (cut without a digest, too many spans, out of memory). */
int ms_push_trace_spans(lua_State *L, const ms_trace *t, const char *trace_name);

/* bind_errors.c: the script failed at top level with the error at errix
 * (an interrupt included): the run trace records it. */
void ms_host_run_failed(lua_State *L, int errix);

/* bind_costate.c: calls fn on every Lua thread the host knows (the main
 * thread and every coroutine); safe inside a signal handler on the Lua
 * thread. */
void ms_each_thread(void (*fn)(lua_State *co));

/* bind_errors.c: when the error at errix was raised inside a span of L's
 * coroutine, pushes the traceback taken where it was raised and returns 1;
 * else 0. */
int ms_push_raise_traceback(lua_State *L, int errix);

/* bind_trace.c: spans for the debug hook (profile.c, autospans.c). None of
 * these raise. */

/* The innermost open span of L's coroutine, else the run trace's root
 * while it is open: 1 with *t and *idx set; 0 when there is none. Never
 * allocates. */
int ms_span_current(lua_State *L, ms_trace **t, uint32_t *idx);
/* Opens span `name` under L's innermost open span (in the run trace when
 * there is none) and makes it the innermost, as span() does. Returns its
 * index and trace, or MS_NONE (out of memory). */
uint32_t ms_span_open(lua_State *L, const char *name, size_t len, ms_trace **t);
/* How ms_span_close ends a span. */
enum {
    MS_CLOSE_OK = 0,       /* its function returned */
    MS_CLOSE_UNWOUND = -1, /* an error no span saw unwound it (caught by a pcall,
                            * or it ended the coroutine): status error, not counted */
};
/* Ends span idx of the open trace t, opened by ms_span_open in L's
 * coroutine, and makes its parent the innermost. `how` is MS_CLOSE_OK,
 * MS_CLOSE_UNWOUND, or the stack index of the error leaving it, recorded
 * as span() records an error passing through (counted once). */
void ms_span_close(lua_State *L, ms_trace *t, uint32_t idx, int how);
/* Where autospans.c keeps L's open auto spans; never NULL. */
struct ms_autos **ms_span_autos(lua_State *L);
/* Whether L's running function was called by span() or trace() (a
 * span's body, which the span itself already records). */
int ms_called_by_span(lua_State *L);

/* --- http.c: moonspan.http, the libcurl transport ------------------------ */

/* Registers moonspan.http (start/poll/wait and transfer handles). */
void ms_open_http(lua_State *L);
/* Frees the process-wide curl multi handle (after lua_close). */
void ms_http_shutdown(void);

/* --- exec.c: subprocesses ------------------------------------------------- */

/* Registers moonspan._exec_start and its handles (done/wait/result); the
 * moonspan.exec scripts call is scripts/sched.lua's, which yields on it. */
void ms_open_exec(lua_State *L);

/* --- bind_eval.c: moonspan.eval_store, the eval tables ----------------- */

/* Registers moonspan.eval_store on `db` (a read-write connection of the
 * host's own, not the writer thread's) for the run `run_id`. */
void ms_open_eval_store(lua_State *L, sqlite3 *db, int64_t run_id);
/* Detaches moonspan.eval_store from its connection (before closing it). */
void ms_close_eval_store(lua_State *L);
/* Registers moonspan.sha256(s), used to key recorded LLM requests. */
void ms_open_sha256(lua_State *L);

/* --- bind_stats.c: moonspan.stats, over telemetry/ms_stats.h ------------ */

/* Registers moonspan.stats (bootstrap_diff, paired_mean, mcnemar, fisher,
 * wilson, prop_diff, mde_mean, mde_mcnemar) into the moonspan table. */
void ms_open_stats(lua_State *L);

/* --- runtime.c ----------------------------------------------------------- */

/* A new Lua state with the standard libraries, the embedded scripts/
 * library in package.preload, and the moonspan globals. NULL on OOM. */
lua_State *ms_runtime_new(void);

/* Runs the chunk in `path` with `args` (arg table as in `lua`), protected,
 * with a traceback. Returns 0, or 1 (error printed to stderr), or
 * MS_EXIT_USAGE when the file is an eval suite (pointing to `moonspan eval`). */
int ms_runtime_run_file(lua_State *L, const char *path, int argc, char **argv, int first_arg);

/* Runs busted with argv[first_arg..] as its command line. Returns 0 when
 * it finished without calling os.exit (all specs passed), else 1. */
int ms_runtime_run_busted(lua_State *L, int argc, char **argv, int first_arg);

/* Calls require(module).main(opts), opts being the table on top of the
 * stack (popped). Returns main's integer result, or 1 when it raised. */
int ms_runtime_call_main(lua_State *L, const char *module);

/* Pushes b's text as a Lua string and frees b. The string is made under
 * lua_pcall: a memory error frees b first, then is raised. */
void ms_push_buf_free(lua_State *L, ms_buf *b);

#endif
