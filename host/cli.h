/* cli — the command line: option matching shared by every verb, and the
 * verbs themselves (one function each, in cmd_*.c). */
#ifndef MS_CLI_H
#define MS_CLI_H

#include <stdint.h>

#include "ms_sample.h"
#include "ms_select.h"

struct lua_State;

/* What a hosted run records (run, eval): set by --level, --fold,
 * --sample and --keep (cli_record.c), applied when the host starts. */
typedef struct ms_record_opts {
    int level;              /* enum ms_level; -1 when not given: $MOONSPAN_LEVEL, else info */
    uint32_t fold_above;    /* --fold N; 0: off */
    ms_sampling sampling;   /* rate 1 unless --sample */
    int keep_given;         /* --keep appeared */
    int capture;            /* --capture-content, or $MOONSPAN_CAPTURE_CONTENT=1: llm.call stores
                             * prompts and responses (redacted) on its span */
    struct ms_redactor *redactor; /* built-in patterns plus the --redact ones; made by the first
                             * --redact, else when the host starts */
    const char *log_path;   /* --log json: "-" (stderr); --log-file PATH; NULL: no log */
} ms_record_opts;

/* --budget-usd (cli_budget.c): the run, request and call budgets in USD. */
typedef struct ms_budget_opts {
    int has[3];      /* run, request, call */
    double usd[3];
} ms_budget_opts;

/* Exit codes: 0 ok, 1 the work failed (script error, failing tests),
 * 2 the command line was wrong. */
#define MS_EXIT_USAGE 2

typedef struct ms_cli {
    int argc;
    char **argv;
    int i;                /* next argument to look at */
    const char *verb;     /* for messages: "report" */
    const char *db;       /* --db, else $MOONSPAN_DB, else ./moonspan.db */
    const char *prices;   /* --prices */
    ms_record_opts rec;
    ms_budget_opts budget;
} ms_cli;

/* If argv[c->i] is option `name` taking a value ("--name V" or
 * "--name=V"), stores the value, advances and returns 1. A missing value
 * is a usage error (exits 2). */
int ms_cli_value(ms_cli *c, const char *name, const char **value);
/* If argv[c->i] is flag `name`, advances and returns 1. */
int ms_cli_flag(ms_cli *c, const char *name);
/* Handles --db and --prices wherever they appear. */
int ms_cli_global(ms_cli *c);
/* Handles --level, --fold, --sample and --keep into c->rec (cli_record.c). */
int ms_cli_record(ms_cli *c);
/* Handles --capture-content, --redact REGEX (repeatable; a bad regex is a
 * usage error naming it), --log json and --log-file PATH into c->rec
 * (cli_capture.c); called by ms_cli_record. */
int ms_cli_capture(ms_cli *c);
/* Checks c->rec once every option is read, and resolves the level from
 * $MOONSPAN_LEVEL when --level was not given; exits 2 on a bad value. */
void ms_cli_record_done(ms_cli *c);
/* The lines of --help that describe those options. */
extern const char MS_RECORD_HELP[];
/* Handles --budget-usd X | run=X,request=X,call=X into c->budget
 * (cli_budget.c); a bad amount or kind, or a kind given twice, exits 2. */
int ms_cli_budget(ms_cli *c);
/* Hands c->budget to the run once its Lua state exists: the run and
 * request budgets to moonspan.budget (and the request default to
 * trace()), the call budget to llm.defaults.budget_usd. 0, or -1 when
 * memory ran out. */
int ms_budget_apply(struct lua_State *L, const ms_budget_opts *b);
/* Handles --since, --until, --name, --run, --eval-run, --evals and
 * --attr (repeatable) into *s (cli_select.c): returns 1 when argv[c->i]
 * was one of them. Bad values and contradictions (--until not after
 * --since, --eval-run with --evals exclude) are usage errors (exit 2).
 * Whether --run/--eval-run name existing runs is for the view to ask
 * (ms_select_check) once the store is open. */
int ms_cli_select(ms_cli *c, ms_select *s);
/* The lines of --help that describe those options. */
extern const char MS_SELECT_HELP[];
/* Sets one selection parameter by its name without dashes (since, until,
 * name, run, eval_run, evals, attr, user, session, tag) to value v, as
 * the flags do, for the CLI and `moonspan ui`'s query parameters alike;
 * `shown` is how the caller's user wrote the name, for messages. since
 * and until take a duration ago or a UTC date (2026-11-01,
 * 2026-11-01T12:00:00Z). v must outlive s (attr's key is cut at '=' in
 * place). Returns 0; 1 when key is not a selection parameter; -1 with err
 * naming the fix for a bad value or a contradiction (until not after
 * since, eval_run with evals exclude). */
int ms_select_param(ms_select *s, const char *key, const char *shown, char *v, char *err, size_t errlen);
/* The steps every read-only view (report, traces, show, diff, runs, evals,
 * sql) takes around its writer (cli_view.c). */

/* Refuses --prices (exit 2): costs are priced when a call is recorded and
 * stored as they were; accepting it here would let someone believe the
 * view was repriced. */
void ms_cli_refuse_prices(ms_cli *c);

/* Opens c->db read-only, never upgrading it. On failure prints
 * "moonspan VERB: why" and returns NULL; the verb then exits 2. */
struct ms_store *ms_cli_open_read(ms_cli *c);

/* After a view's writer returned rc (err its message when rc != 0):
 * prints the message, closes s and flushes stdout. Returns 0 when the
 * view was written whole, else 1 (a write error to stdout included). */
int ms_cli_finish_view(ms_cli *c, struct ms_store *s, int rc, const char *err);

/* Reports an unknown option or unexpected argument and exits 2. */
_Noreturn void ms_cli_unknown(ms_cli *c);
/* Prints "moonspan VERB: message; see `moonspan VERB --help`" and exits 2. */
_Noreturn void ms_cli_usage_error(ms_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a positive integer option value, or exits 2 naming the option. */
long ms_cli_long(ms_cli *c, const char *opt, const char *v, long min, long max);
/* Parses "90s", "30m", "24h", "7d", "2w" into nanoseconds, or exits 2. */
int64_t ms_cli_duration(ms_cli *c, const char *opt, const char *v);

/* The parsers behind those, which print nothing and never exit. Each
 * returns 0 and stores the value, or -1 and leaves *out untouched. */

/* A whole number (strtol, base 10, nothing after it) from min to max. */
int ms_parse_long(const char *v, long min, long max, long *out);
/* A positive number and a unit (us, ms, s, m, h, d, w), e.g. "1.5h";
 * the result is from 1 ns to MS_DURATION_MAX_NS. */
#define MS_DURATION_MAX_NS (INT64_C(5200) * 7 * 86400 * 1000000000) /* 100 years */
int ms_parse_duration(const char *v, int64_t *ns);
/* A number from 0 to 1 (a pass rate); NaN is refused. */
int ms_parse_fraction(const char *v, double *out);
/* A span level: "info" 0, "debug" 1, "trace" 2 (enum ms_level); -1 for
 * anything else. */
int ms_parse_level(const char *v);
const char *ms_level_name(int level);
#define MS_LEVEL_NAMES "\"info\", \"debug\" or \"trace\""

/* How a hosted command (run, eval, test) records. */
typedef struct ms_run_opts {
    int quiet;          /* nothing at the end: no timeline, no profiler line */
    int no_timeline;    /* no closing timeline (eval and test print their own) */
    long profile_hz;    /* --profile: CPU-time samples per second; 0 off */
    long auto_depth;    /* --auto-spans: nested calls recorded as spans; 0 off */
    const char *metrics_addr; /* --metrics-addr: serve live /metrics there; NULL off */
} ms_run_opts;

/* 1000 Hz: 1 ms of self time per sample, enough samples for a function
 * taking 1% of a one-second span to show, at a calibrated cost well under
 * 1% (the README's figure). Kernels check CPU timers on their tick (250 Hz
 * on Debian's), so asking more than the tick costs no more signals. */
#define MS_PROFILE_HZ_DEFAULT 1000
#define MS_PROFILE_HZ_MAX 10000
#define MS_AUTO_DEPTH_DEFAULT 10
#define MS_AUTO_DEPTH_MAX 1000

/* If argv[c->i] is --profile or --profile=HZ (--auto-spans[=DEPTH]),
 * sets the option in *o, advances and returns 1. A bad value is a usage
 * error naming the range (exits 2). */
int ms_cli_profile(ms_cli *c, ms_run_opts *o);
int ms_cli_auto_spans(ms_cli *c, ms_run_opts *o);
/* --metrics-addr HOST:PORT into o->metrics_addr; a bad address is a usage
 * error (exits 2). The lines of --help that describe it. */
int ms_cli_metrics_addr(ms_cli *c, ms_run_opts *o);
extern const char MS_METRICS_ADDR_HELP[];

/* What a hosted command runs once the host is up; returns an exit status. */
typedef int (*ms_body_fn)(struct lua_State *L, void *ud);
int ms_run_hosted(ms_cli *c, const char *label, int first_arg, const ms_run_opts *o,
                  ms_body_fn body, void *ud);

int ms_cmd_run(ms_cli *c);
int ms_cmd_eval(ms_cli *c);
int ms_cmd_evals(ms_cli *c);
int ms_cmd_test(ms_cli *c);
int ms_cmd_report(ms_cli *c);
int ms_cmd_traces(ms_cli *c);
int ms_cmd_runs(ms_cli *c);
int ms_cmd_show(ms_cli *c);
int ms_cmd_sql(ms_cli *c);
int ms_cmd_upgrade(ms_cli *c);
int ms_cmd_diff(ms_cli *c);
int ms_cmd_serve(ms_cli *c);
int ms_cmd_export(ms_cli *c);
int ms_cmd_ui(ms_cli *c);

#endif
