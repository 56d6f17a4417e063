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
#include "ms_trace.h"
#include "ms_tracer.h"

#define MS_RECENT_TRACES 3

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
    int finished;               /* ms_host_finish ran */
    int quiet;                  /* no closing timeline (run --quiet, test) */
} ms_host;

extern ms_host ms_the_host;

/* Set by SIGINT/SIGTERM; checked by blocking waits so they end promptly. */
extern volatile sig_atomic_t ms_interrupted;

/* --- bind_trace.c: span(), trace(), handles ------------------------------ */

/* Registers span, trace and the moonspan table's tracing functions. */
void ms_open_trace(lua_State *L);

/* Marks the run trace failed with the error at errix (a script error or
 * an interrupt that reached the top level). */
void ms_host_run_failed(lua_State *L, int errix);

/* Ends every trace still open (the run trace, an unfinished trace()) so
 * that it reaches the store, e.g. before exit. */
void ms_host_end_open_traces(void);

/* --- http.c: moonspan.http, the libcurl transport ------------------------ */

/* Registers moonspan.http (start/poll/wait and transfer handles). */
void ms_open_http(lua_State *L);
/* Frees the process-wide curl multi handle (after lua_close). */
void ms_http_shutdown(void);

/* --- bind_eval.c: moonspan.eval_store, the eval tables ----------------- */

/* Registers moonspan.eval_store on `db` (a read-write connection of the
 * host's own, not the writer thread's) for the run `run_id`. */
void ms_open_eval_store(lua_State *L, sqlite3 *db, int64_t run_id);
/* Detaches moonspan.eval_store from its connection (before closing it). */
void ms_close_eval_store(lua_State *L);
/* Registers moonspan.sha256(s), used to key recorded LLM requests. */
void ms_open_sha256(lua_State *L);

/* --- runtime.c ----------------------------------------------------------- */

/* A new Lua state with the standard libraries, the embedded scripts/
 * library in package.preload, and the moonspan globals. NULL on OOM. */
lua_State *ms_runtime_new(void);

/* Runs the chunk in `path` with `args` (arg table as in `lua`), protected,
 * with a traceback. Returns 0 or 1 (error printed to stderr). */
int ms_runtime_run_file(lua_State *L, const char *path, int argc, char **argv, int first_arg);

/* Runs busted with argv[first_arg..] as its command line. Returns 0 when
 * it finished without calling os.exit (all specs passed), else 1. */
int ms_runtime_run_busted(lua_State *L, int argc, char **argv, int first_arg);

/* Calls require(module).main(opts), opts being the table on top of the
 * stack (popped). Returns main's integer result, or 1 when it raised. */
int ms_runtime_call_main(lua_State *L, const char *module);

/* Flushes telemetry, prints the run's closing timeline (unless h->quiet) and
 * closes the tracer. Safe to call twice. Returns the number of traces that
 * could not be written. */
size_t ms_host_finish(void);

/* Closes the tracer (after lua_close, whose __gc may release traces). */
void ms_host_shutdown(void);

/* Opens the store at db_path for writing, loads prices (built-in, then
 * prices_path when given), starts the tracer and records a runs row.
 * Returns 0, or -1 with a message in err. */
int ms_host_start(const char *db_path, const char *prices_path, const char *script,
                  int argc, char **argv, int first_arg, char *err, size_t errlen);

/* Installs SIGINT/SIGTERM handlers that interrupt the running script. */
void ms_runtime_handle_signals(lua_State *L);

#endif
