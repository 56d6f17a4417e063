/* ms_evals — eval runs, their case results and the LLM recordings of a
 * `--record` run, in the store (tables eval_runs, eval_results,
 * llm_recordings; schema version 2, see ms_schema.sql).
 *
 * Every function takes a `sqlite3 *` the host opened read-write on its own
 * connection (ms_store_open in MS_STORE_WRITE mode, then ms_store_db), not
 * the tracer's writer-thread connection: eval bookkeeping happens on the Lua
 * thread, and SQLite connections are not shared between threads here. The
 * busy timeout set by ms_store_open applies. No function keeps a statement
 * open after it returns. Errors: -1 with a message in err (err may be NULL
 * when errlen is 0). Nothing here is thread-safe beyond what SQLite gives
 * one connection used by one thread. */
#ifndef MS_EVALS_H
#define MS_EVALS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* What is known of an eval run when it starts. Strings are borrowed for
 * the call. */
typedef struct ms_eval_run_info {
    int64_t run_id;           /* runs.id of the moonspan process; 0 = none (NULL) */
    const char *suite;        /* suite name, required */
    const char *suite_file;   /* path of the suite file as given, required */
    const char *git_commit;   /* NULL when not in a git checkout */
    int64_t start_ns;         /* Unix epoch nanoseconds */
    const char *config_json;  /* JSON object of the run's options; NULL = "{}" */
    double threshold;         /* pass rate under which the suite fails; NaN = none (NULL) */
    int64_t replay_of;        /* eval_runs.id answered from; 0 = not a replay */
    int recorded;             /* 1 when this run records its LLM calls (--record) */
} ms_eval_run_info;

/* One case result (one repeat of one case). Strings are borrowed for the
 * call (ms_eval_result_add) or for the callback (ms_eval_results_each). */
typedef struct ms_eval_result {
    const char *case_id;
    int64_t repeat_index;     /* 1 for the first run of the case, up to K with --repeat K */
    const char *input_json;   /* JSON texts; NULL stored as NULL */
    const char *expected_json;
    const char *output_json;
    const char *scores_json;  /* JSON array of {name, score, reason} */
    int pass;                 /* 1 / 0 */
    const char *error;        /* NULL when the case ran to the end */
    const char *trace_id;     /* 32 hex, the case's trace */
    double latency_ms;
    int64_t input_tokens, output_tokens;
    double cost_usd;          /* NaN = unknown, stored as NULL */
    int replayed;             /* 1 when its LLM answers came from a recording */
} ms_eval_result;

/* Totals written when a run ends. */
typedef struct ms_eval_summary {
    int64_t end_ns;           /* Unix epoch nanoseconds */
    int64_t cases, passed;    /* results counted (case x repeat), and passing ones */
    double pass_rate;         /* passed / cases; NaN = no case, stored as NULL */
    double p50_ms, p95_ms;    /* latency over the results; NaN = NULL */
    double cost_usd;          /* live spend; NaN = unknown (NULL) */
    double replayed_cost_usd; /* recorded cost of replayed calls, not spent */
    const char *status;       /* "passed" | "failed" */
    const char *config_json;  /* replaces the run's config (with what only the end knows,
                               * such as the suite's gates); NULL keeps begin_run's */
} ms_eval_summary;

/* An eval_runs row read back; strings owned by the row, freed with
 * ms_eval_run_row_free. Numeric fields that are NULL in the store read as
 * NaN (doubles) or 0 (integers). */
typedef struct ms_eval_run_row {
    int64_t id, run_id;
    char *suite, *suite_file, *git_commit; /* git_commit NULL when unknown */
    char *config_json;
    char *status;             /* "running" | "passed" | "failed" */
    int64_t start_ns, end_ns; /* end_ns 0 while running */
    int64_t cases, passed;
    double pass_rate, threshold, p50_ms, p95_ms, cost_usd, replayed_cost_usd;
    int64_t replay_of;        /* 0 = not a replay */
    int recorded;
} ms_eval_run_row;

/* Inserts an eval_runs row with status 'running'. Returns 0 and its id in
 * *id, or -1 with err (suite or suite_file missing, SQL error). */
int ms_eval_run_begin(sqlite3 *db, const ms_eval_run_info *info, int64_t *id,
                      char *err, size_t errlen);

/* Inserts one eval_results row of run `eval_run`. Returns 0, or -1 with err
 * (case_id missing, SQL error). Does not check that the run exists. */
int ms_eval_result_add(sqlite3 *db, int64_t eval_run, const ms_eval_result *r,
                       char *err, size_t errlen);

/* Writes the end totals and status of run `eval_run`. Returns 0, or -1
 * with err (status not "passed"/"failed", no such run, SQL error). */
int ms_eval_run_finish(sqlite3 *db, int64_t eval_run, const ms_eval_summary *s,
                       char *err, size_t errlen);

/* Finds a run of `suite` to compare with or replay from.
 * which = "last": the newest finished run (status passed/failed) of the
 *   suite other than exclude_id (0 = exclude none).
 * which = a decimal id: that run, which must exist and be of `suite`.
 * Returns 0 with the id in *out; 1 when there is none, with err saying so
 * ("no earlier run of suite X to compare with; run it once without
 * --baseline", "no eval run 12", "eval run 12 is of suite Y, not X");
 * -1 with err on a bad `which` or an SQL error. */
int ms_eval_find_run(sqlite3 *db, const char *suite, const char *which,
                     int64_t exclude_id, int64_t *out, char *err, size_t errlen);

/* Reads eval run `id`. Returns 0 and fills *out (free it with
 * ms_eval_run_row_free); 1 when there is no such run (err set); -1 with
 * err otherwise. *out is zeroed first, so freeing it is always safe. */
int ms_eval_run_get(sqlite3 *db, int64_t id, ms_eval_run_row *out,
                    char *err, size_t errlen);

/* Frees the strings of a row filled by ms_eval_run_get; safe to call twice. */
void ms_eval_run_row_free(ms_eval_run_row *row);

/* Calls cb for each finished run (status passed or failed) of `suite`,
 * newest first (by start, then id), at most `limit` of them (0 = all):
 * the candidates for a baseline. The row lives until cb returns. cb
 * returns 0 to go on, non-zero to stop (then this returns that value).
 * Returns 0 when every row was visited, -1 with err on an SQL error or
 * out of memory. */
int ms_eval_runs_each(sqlite3 *db, const char *suite, int64_t limit,
                      int (*cb)(void *ud, const ms_eval_run_row *row), void *ud,
                      char *err, size_t errlen);

/* Calls cb with each distinct case id of run `eval_run`, in byte order
 * (what the run covered, whatever its --repeat). The string lives until cb
 * returns; cb returns as for ms_eval_runs_each. Returns 0, the value of a
 * cb that stopped, or -1 with err. A run with no results visits nothing. */
int ms_eval_case_ids_each(sqlite3 *db, int64_t eval_run,
                          int (*cb)(void *ud, const char *case_id), void *ud,
                          char *err, size_t errlen);

/* Calls cb for each result of run `eval_run`, ordered by case_id then
 * repeat_index. The result's strings live until cb returns. cb returns 0
 * to go on, non-zero to stop (then this returns that value). Returns 0
 * when every row was visited, -1 with err on an SQL error. */
int ms_eval_results_each(sqlite3 *db, int64_t eval_run,
                         int (*cb)(void *ud, const ms_eval_result *r), void *ud,
                         char *err, size_t errlen);

/* Stores one recorded LLM exchange of run `eval_run` under `hash` (the
 * ms_sha256_hex of the normalised request), replacing an earlier one with
 * the same hash. call_site may be NULL. Returns 0, or -1 with err. */
int ms_eval_record(sqlite3 *db, int64_t eval_run, const char *hash,
                   const char *request_json, const char *response_json,
                   const char *call_site, char *err, size_t errlen);

/* Looks up the recorded response for `hash` in run `eval_run`. Returns 0
 * with a malloc'd copy in *response_json (the caller frees it); 1 when
 * there is none (*response_json NULL, err says so); -1 with err. */
int ms_eval_replay_lookup(sqlite3 *db, int64_t eval_run, const char *hash,
                          char **response_json, char *err, size_t errlen);

#endif
