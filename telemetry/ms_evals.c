/* ms_evals — eval runs, results and LLM recordings in the store.
 *
 * Each function prepares its statements, runs them and finalizes them
 * before returning, on every path: these calls happen a few times per eval
 * case, far off any hot path, and a connection left with an open
 * statement would keep a read snapshot (and the WAL) pinned. */
#include "ms_evals.h"
#include "ms_buf.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- helpers ----------------------------------------------------------- */


/* Prepares `sql`. A failure here almost always means the tables are
 * missing (a store opened read-only before its upgrade), so the message
 * says what to do about that. Returns 0, or -1 with err and *st NULL. */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                   char *err, size_t errlen)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    ms_errf(err, errlen, "cannot %s: %s (open the store for writing once to upgrade it)",
         what, sqlite3_errmsg(db));
    sqlite3_finalize(*st);
    *st = NULL;
    return -1;
}

/* NULL strings bind as SQL NULL. The strings are the caller's and live
 * until the statement is stepped, so no copy is made. */
static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* NaN ("unknown") binds as NULL: SQLite would store NaN as NULL anyway, but
 * saying so keeps the rule in one place. */
static int bind_num(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

/* 0 means "none" for the reference columns (run_id, replay_of). */
static int bind_ref(sqlite3_stmt *st, int i, int64_t id)
{
    return id ? sqlite3_bind_int64(st, i, id) : sqlite3_bind_null(st, i);
}

/* A REAL column, NaN when NULL. */
static double col_num(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* A copy of a TEXT column; NULL when the column is NULL. *oom is set when
 * the copy could not be made. */
static char *col_dup(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    if (!s) {
        if (sqlite3_column_type(st, i) != SQLITE_NULL)
            *oom = 1; /* text conversion failed: only on OOM */
        return NULL;
    }
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = malloc(n + 1);
    if (!p) {
        *oom = 1;
        return NULL;
    }
    memcpy(p, s, n + 1);
    return p;
}

/* Steps a statement expected to finish with no row (INSERT, UPDATE) and
 * finalizes it. Returns 0 or -1 with err naming `what`. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot %s: %s", what, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

static int nonempty(const char *s) { return s && *s; }

/* --- runs -------------------------------------------------------------- */

int ms_eval_run_begin(sqlite3 *db, const ms_eval_run_info *info, int64_t *id,
                      char *err, size_t errlen)
{
    assert(db && info && id);
    *id = 0;
    if (!nonempty(info->suite))
        return ms_errf(err, errlen, "an eval run needs a suite name");
    if (!nonempty(info->suite_file))
        return ms_errf(err, errlen, "eval run of suite %s: the suite file is missing", info->suite);
    sqlite3_stmt *st;
    if (prepare(db,
                "INSERT INTO eval_runs (run_id, suite, suite_file, git_commit, start_ns,"
                " config, threshold, replay_of, recorded, status)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running')",
                &st, "record the eval run", err, errlen))
        return -1;
    bind_ref(st, 1, info->run_id);
    bind_text(st, 2, info->suite);
    bind_text(st, 3, info->suite_file);
    bind_text(st, 4, info->git_commit);
    sqlite3_bind_int64(st, 5, info->start_ns);
    bind_text(st, 6, info->config_json ? info->config_json : "{}");
    bind_num(st, 7, info->threshold);
    bind_ref(st, 8, info->replay_of);
    sqlite3_bind_int(st, 9, info->recorded ? 1 : 0);
    if (step_done(db, st, "record the eval run", err, errlen))
        return -1;
    *id = sqlite3_last_insert_rowid(db);
    return 0;
}

int ms_eval_result_add(sqlite3 *db, int64_t eval_run, const ms_eval_result *r,
                       char *err, size_t errlen)
{
    assert(db && r);
    if (!nonempty(r->case_id))
        return ms_errf(err, errlen, "eval run %lld: a result needs a case id", (long long)eval_run);
    sqlite3_stmt *st;
    if (prepare(db,
                "INSERT INTO eval_results (eval_run, case_id, repeat_index, input, expected,"
                " output, scores, pass, error, trace_id, latency_ms, input_tokens,"
                " output_tokens, cost_usd, replayed)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                &st, "record the eval result", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, eval_run);
    bind_text(st, 2, r->case_id);
    sqlite3_bind_int64(st, 3, r->repeat_index);
    bind_text(st, 4, r->input_json);
    bind_text(st, 5, r->expected_json);
    bind_text(st, 6, r->output_json);
    bind_text(st, 7, r->scores_json);
    sqlite3_bind_int(st, 8, r->pass ? 1 : 0);
    bind_text(st, 9, r->error);
    bind_text(st, 10, r->trace_id);
    bind_num(st, 11, r->latency_ms);
    sqlite3_bind_int64(st, 12, r->input_tokens);
    sqlite3_bind_int64(st, 13, r->output_tokens);
    bind_num(st, 14, r->cost_usd);
    sqlite3_bind_int(st, 15, r->replayed ? 1 : 0);
    char what[160];
    snprintf(what, sizeof what, "record the result of case %s", r->case_id);
    return step_done(db, st, what, err, errlen);
}

int ms_eval_run_finish(sqlite3 *db, int64_t eval_run, const ms_eval_summary *s,
                       char *err, size_t errlen)
{
    assert(db && s);
    if (!s->status || (strcmp(s->status, "passed") != 0 && strcmp(s->status, "failed") != 0))
        return ms_errf(err, errlen, "eval run %lld: status must be \"passed\" or \"failed\", not %s%s%s",
                    (long long)eval_run, s->status ? "\"" : "", s->status ? s->status : "NULL",
                    s->status ? "\"" : "");
    sqlite3_stmt *st;
    if (prepare(db,
                "UPDATE eval_runs SET end_ns = ?2, cases = ?3, passed = ?4, pass_rate = ?5,"
                " p50_ms = ?6, p95_ms = ?7, cost_usd = ?8, replayed_cost_usd = ?9, status = ?10,"
                " config = coalesce(?11, config) WHERE id = ?1",
                &st, "finish the eval run", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, eval_run);
    sqlite3_bind_int64(st, 2, s->end_ns);
    sqlite3_bind_int64(st, 3, s->cases);
    sqlite3_bind_int64(st, 4, s->passed);
    bind_num(st, 5, s->pass_rate);
    bind_num(st, 6, s->p50_ms);
    bind_num(st, 7, s->p95_ms);
    bind_num(st, 8, s->cost_usd);
    bind_num(st, 9, s->replayed_cost_usd);
    bind_text(st, 10, s->status);
    bind_text(st, 11, s->config_json);
    if (step_done(db, st, "finish the eval run", err, errlen))
        return -1;
    if (sqlite3_changes(db) == 0)
        return ms_errf(err, errlen, "cannot finish eval run %lld: there is no such run",
                    (long long)eval_run);
    return 0;
}

/* Parses a positive decimal eval run id, the whole string. Returns 0 or -1. */
static int parse_id(const char *s, int64_t *out)
{
    if (!*s)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

int ms_eval_find_run(sqlite3 *db, const char *suite, const char *which,
                     int64_t exclude_id, int64_t *out, char *err, size_t errlen)
{
    assert(db && suite && which && out);
    *out = 0;
    sqlite3_stmt *st;
    int ret = -1, rc;
    if (strcmp(which, "last") == 0) {
        /* id breaks ties between runs started in the same nanosecond */
        if (prepare(db,
                    "SELECT id FROM eval_runs WHERE suite = ?1 AND id != ?2"
                    " AND status IN ('passed', 'failed') ORDER BY start_ns DESC, id DESC LIMIT 1",
                    &st, "look up eval runs", err, errlen))
            return -1;
        bind_text(st, 1, suite);
        sqlite3_bind_int64(st, 2, exclude_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            ret = 0;
        } else if (rc == SQLITE_DONE) {
            ms_errf(err, errlen, "no earlier run of suite %s to compare with;"
                 " run it once without --baseline", suite);
            ret = 1;
        } else {
            ms_errf(err, errlen, "cannot look up eval runs: %s", sqlite3_errmsg(db));
        }
        sqlite3_finalize(st);
        return ret;
    }

    int64_t id;
    if (parse_id(which, &id))
        return ms_errf(err, errlen, "'%s' is neither 'last' nor an eval run id (a positive number)",
                    which);
    if (prepare(db, "SELECT suite FROM eval_runs WHERE id = ?1", &st, "look up eval runs",
                err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *other = (const char *)sqlite3_column_text(st, 0);
        if (other && strcmp(other, suite) == 0) {
            *out = id;
            ret = 0;
        } else {
            ms_errf(err, errlen, "eval run %lld is of suite %s, not %s", (long long)id,
                 other ? other : "?", suite);
            ret = 1;
        }
    } else if (rc == SQLITE_DONE) {
        ms_errf(err, errlen, "no eval run %lld in this store", (long long)id);
        ret = 1;
    } else {
        ms_errf(err, errlen, "cannot look up eval runs: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return ret;
}

void ms_eval_run_row_free(ms_eval_run_row *row)
{
    if (!row)
        return;
    free(row->suite);
    free(row->suite_file);
    free(row->git_commit);
    free(row->config_json);
    free(row->status);
    row->suite = row->suite_file = row->git_commit = row->config_json = row->status = NULL;
}

/* The eval_runs columns read_run_row reads, in its order. */
#define RUN_COLUMNS                                                                   \
    "id, run_id, suite, suite_file, git_commit, config, status, start_ns, end_ns,"   \
    " cases, passed, pass_rate, threshold, p50_ms, p95_ms, cost_usd,"                \
    " replayed_cost_usd, replay_of, recorded"

/* Fills *out (zeroed first) from the current row of a statement selecting
 * RUN_COLUMNS. Returns 0, or -1 (out of memory) with *out freed. */
static int read_run_row(sqlite3_stmt *st, ms_eval_run_row *out)
{
    int oom = 0;
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    out->run_id = sqlite3_column_int64(st, 1);
    out->suite = col_dup(st, 2, &oom);
    out->suite_file = col_dup(st, 3, &oom);
    out->git_commit = col_dup(st, 4, &oom);
    out->config_json = col_dup(st, 5, &oom);
    out->status = col_dup(st, 6, &oom);
    out->start_ns = sqlite3_column_int64(st, 7);
    out->end_ns = sqlite3_column_int64(st, 8);
    out->cases = sqlite3_column_int64(st, 9);
    out->passed = sqlite3_column_int64(st, 10);
    out->pass_rate = col_num(st, 11);
    out->threshold = col_num(st, 12);
    out->p50_ms = col_num(st, 13);
    out->p95_ms = col_num(st, 14);
    out->cost_usd = col_num(st, 15);
    out->replayed_cost_usd = col_num(st, 16);
    out->replay_of = sqlite3_column_int64(st, 17);
    out->recorded = sqlite3_column_int(st, 18);
    if (oom) {
        ms_eval_run_row_free(out);
        return -1;
    }
    return 0;
}

int ms_eval_run_get(sqlite3 *db, int64_t id, ms_eval_run_row *out, char *err, size_t errlen)
{
    assert(db && out);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (prepare(db, "SELECT " RUN_COLUMNS " FROM eval_runs WHERE id = ?1",
                &st, "read the eval run", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int ret = -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ms_errf(err, errlen, "no eval run %lld in this store", (long long)id);
        ret = 1;
    } else if (rc != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read eval run %lld: %s", (long long)id, sqlite3_errmsg(db));
    } else if (read_run_row(st, out) != 0) {
        ms_errf(err, errlen, "out of memory reading eval run %lld", (long long)id);
    } else {
        ret = 0;
    }
    sqlite3_finalize(st);
    return ret;
}

int ms_eval_runs_each(sqlite3 *db, const char *suite, int64_t limit,
                      int (*cb)(void *ud, const ms_eval_run_row *row), void *ud,
                      char *err, size_t errlen)
{
    assert(db && suite && cb);
    sqlite3_stmt *st;
    /* id breaks ties between runs started in the same nanosecond */
    if (prepare(db,
                "SELECT " RUN_COLUMNS " FROM eval_runs WHERE suite = ?1"
                " AND status IN ('passed', 'failed') ORDER BY start_ns DESC, id DESC LIMIT ?2",
                &st, "look up eval runs", err, errlen))
        return -1;
    bind_text(st, 1, suite);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ms_eval_run_row row;
        if (read_run_row(st, &row) != 0) {
            ret = ms_errf(err, errlen, "out of memory reading the eval runs of suite %s", suite);
            break;
        }
        ret = cb(ud, &row);
        ms_eval_run_row_free(&row);
        if (ret != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot look up the eval runs of suite %s: %s", suite,
                      sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

int ms_eval_case_ids_each(sqlite3 *db, int64_t eval_run,
                          int (*cb)(void *ud, const char *case_id), void *ud,
                          char *err, size_t errlen)
{
    assert(db && cb);
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT DISTINCT case_id FROM eval_results WHERE eval_run = ?1 ORDER BY case_id",
                &st, "read eval results", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, eval_run);
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if ((ret = cb(ud, id ? id : "")) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot read the case ids of eval run %lld: %s",
                      (long long)eval_run, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

/* --- results ----------------------------------------------------------- */

int ms_eval_results_each(sqlite3 *db, int64_t eval_run,
                         int (*cb)(void *ud, const ms_eval_result *r), void *ud,
                         char *err, size_t errlen)
{
    assert(db && cb);
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT case_id, repeat_index, input, expected, output, scores, pass, error,"
                " trace_id, latency_ms, input_tokens, output_tokens, cost_usd, replayed"
                " FROM eval_results WHERE eval_run = ?1 ORDER BY case_id, repeat_index, id",
                &st, "read eval results", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, eval_run);
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* column_text pointers stay valid until the next step: each
         * column is converted once, so none invalidates another */
        ms_eval_result r = {
            .case_id = (const char *)sqlite3_column_text(st, 0),
            .repeat_index = sqlite3_column_int64(st, 1),
            .input_json = (const char *)sqlite3_column_text(st, 2),
            .expected_json = (const char *)sqlite3_column_text(st, 3),
            .output_json = (const char *)sqlite3_column_text(st, 4),
            .scores_json = (const char *)sqlite3_column_text(st, 5),
            .pass = sqlite3_column_int(st, 6),
            .error = (const char *)sqlite3_column_text(st, 7),
            .trace_id = (const char *)sqlite3_column_text(st, 8),
            .latency_ms = col_num(st, 9),
            .input_tokens = sqlite3_column_int64(st, 10),
            .output_tokens = sqlite3_column_int64(st, 11),
            .cost_usd = col_num(st, 12),
            .replayed = sqlite3_column_int(st, 13),
        };
        if (!r.case_id)
            r.case_id = "";
        if ((ret = cb(ud, &r)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot read the results of eval run %lld: %s",
                   (long long)eval_run, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

/* --- recordings -------------------------------------------------------- */

int ms_eval_record(sqlite3 *db, int64_t eval_run, const char *hash,
                   const char *request_json, const char *response_json,
                   const char *call_site, char *err, size_t errlen)
{
    assert(db);
    if (!nonempty(hash) || !request_json || !response_json)
        return ms_errf(err, errlen, "eval run %lld: a recording needs a hash, a request and a response",
                    (long long)eval_run);
    sqlite3_stmt *st;
    if (prepare(db,
                "INSERT OR REPLACE INTO llm_recordings (eval_run, hash, request, response, call_site)"
                " VALUES (?1, ?2, ?3, ?4, ?5)",
                &st, "record the LLM call", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, eval_run);
    bind_text(st, 2, hash);
    bind_text(st, 3, request_json);
    bind_text(st, 4, response_json);
    bind_text(st, 5, call_site);
    return step_done(db, st, "record the LLM call", err, errlen);
}

int ms_eval_replay_lookup(sqlite3 *db, int64_t eval_run, const char *hash,
                          char **response_json, char *err, size_t errlen)
{
    assert(db && hash && response_json);
    *response_json = NULL;
    sqlite3_stmt *st;
    if (prepare(db, "SELECT response FROM llm_recordings WHERE eval_run = ?1 AND hash = ?2",
                &st, "look up recorded LLM calls", err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, eval_run);
    bind_text(st, 2, hash);
    int ret = -1, oom = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *response_json = col_dup(st, 0, &oom);
        if (oom || !*response_json) {
            free(*response_json);
            *response_json = NULL;
            ms_errf(err, errlen, "out of memory reading a recorded LLM call");
        } else {
            ret = 0;
        }
    } else if (rc == SQLITE_DONE) {
        ms_errf(err, errlen, "eval run %lld recorded no call with this request (hash %.12s)",
             (long long)eval_run, hash);
        ret = 1;
    } else {
        ms_errf(err, errlen, "cannot look up recorded LLM calls: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return ret;
}
