/* ms_eval_view — eval runs and one run's cases as JSON (see
 * ms_eval_view.h). Each query's columns are named after the JSON member
 * they become and typed by a one-letter prefix, so one loop writes any
 * row: i_ integer, n_ number, s_ string, j_ JSON text (already valid:
 * the SQL passes it through json()), b_ boolean; NULL is null. */
#include "ms_eval_view.h"

#include "ms_fmt.h"
#include "ms_read.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* The run's config when it is JSON, else NULL (json_extract raises on
 * text that is not JSON). */
#define CONFIG "CASE WHEN json_valid(e.config) THEN e.config END"

/* The run columns both views share. */
#define RUN_COLS                                                                                          \
    "e.id AS i_id, e.run_id AS i_run_id, e.suite AS s_suite, e.suite_file AS s_suite_file,"              \
    " e.git_commit AS s_git_commit, e.start_ns AS i_start_ns,"                                          \
    " strftime('%Y-%m-%dT%H:%M:%fZ', e.start_ns / 1e9, 'unixepoch') AS s_start,"                        \
    " e.end_ns AS i_end_ns, (e.end_ns - e.start_ns) / 1e6 AS n_duration_ms, e.status AS s_status,"      \
    " e.cases AS i_cases, e.passed AS i_passed, e.pass_rate AS n_pass_rate, e.threshold AS n_threshold," \
    " e.p50_ms AS n_p50_ms, e.p95_ms AS n_p95_ms, e.cost_usd AS n_cost_usd,"                            \
    " e.replayed_cost_usd AS n_replayed_cost_usd, e.replay_of AS i_replay_of,"                          \
    " json_extract(" CONFIG ", '$.repeat_count') AS i_repeat_count,"                                    \
    " json_extract(" CONFIG ", '$.comparison.baseline_run') AS i_baseline_id,"                          \
    " json_extract(" CONFIG ", '$.comparison.pass.verdict') AS s_pass_verdict"

#define RUN_FROM " FROM eval_runs e"

/* json_set arguments that make the comparison's list `k` an array: the
 * run wrote an empty one as {} (Lua's tables do not tell). */
#define EMPTY_LIST(k)                                                                                     \
    "'$." k "', CASE WHEN json_type(" CONFIG ", '$.comparison." k "') = 'array'"                        \
    " THEN json_extract(" CONFIG ", '$.comparison." k "') ELSE json('[]') END"

/* Writes the current row of st as a JSON object, from column `from` on. */
static void row_json(sqlite3_stmt *st, int from, ms_buf *b)
{
    int f = 1;
    ms_buf_addc(b, '{');
    for (int i = from; i < sqlite3_column_count(st); i++) {
        const char *col = sqlite3_column_name(st, i);
        const char *key = col + 2;
        int null = sqlite3_column_type(st, i) == SQLITE_NULL;
        ms_json_key(b, &f, key);
        if (null) {
            ms_buf_adds(b, "null");
            continue;
        }
        switch (col[0]) {
        case 'i':
            ms_json_int(b, sqlite3_column_int64(st, i));
            break;
        case 'n':
            ms_json_num(b, sqlite3_column_double(st, i));
            break;
        case 'b':
            ms_buf_adds(b, sqlite3_column_int64(st, i) ? "true" : "false");
            break;
        case 'j':
            ms_buf_add(b, sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
            break;
        default:
            ms_json_str(b, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
        }
    }
    ms_buf_addc(b, '}');
}

static int has_evals(sqlite3 *db, char *err, size_t errlen)
{
    int has = ms_schema_has(db, "eval_runs", NULL, err, errlen);
    if (has <= 0)
        return has;
    return ms_schema_has(db, "eval_results", NULL, err, errlen);
}

static int runs(sqlite3 *db, long limit, ms_buf *out, char *err, size_t errlen)
{
    int has = has_evals(db, err, errlen);
    if (has < 0)
        return -1;
    ms_buf_adds(out, "{\"runs\":[");
    if (!has) {
        ms_buf_adds(out, "],\"more\":false}");
        return 0;
    }
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT " RUN_COLS RUN_FROM " ORDER BY e.start_ns DESC, e.id DESC LIMIT ?1", &st, err,
                        errlen))
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)limit + 1); /* one more says whether there are more */
    int rc;
    long n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
        if (n++)
            ms_buf_addc(out, ',');
        row_json(st, 0, out);
    }
    ms_buf_printf(out, "],\"more\":%s}", rc == SQLITE_ROW ? "true" : "false");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read eval runs: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int ms_eval_view_runs(sqlite3 *db, long limit, ms_buf *out, char *err, size_t errlen)
{
    assert(db && out);
    if (limit <= 0)
        limit = MS_EVAL_VIEW_LIMIT;
    int own = 0;
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    int ret = runs(db, limit, out, err, errlen);
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0 && out->oom)
        ret = ms_errf(err, errlen, "out of memory writing eval runs");
    return ret;
}

/* The run row, its gates and comparison (columns 0 and 1 are j_gates and
 * j_comparison, written apart), then its cases. */
static int one_run(sqlite3 *db, int64_t id, ms_buf *out, char *err, size_t errlen)
{
    int has = has_evals(db, err, errlen);
    if (has < 0)
        return -1;
    if (!has) {
        snprintf(err, errlen, "no eval run %lld: this store has no eval runs (`moonspan eval` makes them)",
                 (long long)id);
        return 1;
    }
    sqlite3_stmt *st;
    if (ms_read_prepare(db,
                        "SELECT CASE WHEN json_type(" CONFIG ", '$.gates') = 'array'"
                        "  THEN json(json_extract(" CONFIG ", '$.gates')) END AS j_gates,"
                        " CASE WHEN json_type(" CONFIG ", '$.comparison') = 'object'"
                        "  THEN json_set(json_extract(" CONFIG ", '$.comparison'), " EMPTY_LIST("scorers") ", "
                        EMPTY_LIST("worse") ") END AS j_comparison, " RUN_COLS
                        RUN_FROM " WHERE e.id = ?1",
                        &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) {
            snprintf(err, errlen, "no eval run %lld in this store; /api/evals lists them", (long long)id);
            return 1;
        }
        return ms_errf(err, errlen, "cannot read eval run %lld: %s", (long long)id, sqlite3_errmsg(db));
    }
    int64_t baseline = 0;
    for (int i = 0; i < sqlite3_column_count(st); i++)
        if (!strcmp(sqlite3_column_name(st, i), "i_baseline_id"))
            baseline = sqlite3_column_int64(st, i); /* 0 when NULL: no run has id 0 */
    ms_buf_adds(out, "{\"run\":");
    row_json(st, 2, out);
    for (int i = 0; i < 2; i++) {
        ms_buf_adds(out, i ? ",\"comparison\":" : ",\"gates\":");
        if (sqlite3_column_type(st, i) == SQLITE_NULL)
            ms_buf_adds(out, "null");
        else
            ms_buf_add(out, sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
    }
    sqlite3_finalize(st);

    if (ms_read_prepare(db,
                        "SELECT r.case_id AS s_case_id, r.repeat_index AS i_repeat, r.pass AS b_pass,"
                        " r.error AS s_error,"
                        " CASE WHEN json_valid(r.scores) THEN json(r.scores) END AS j_scores,"
                        " r.latency_ms AS n_latency_ms, r.cost_usd AS n_cost_usd,"
                        " r.input_tokens AS i_input_tokens, r.output_tokens AS i_output_tokens,"
                        " r.trace_id AS s_trace_id, r.replayed AS b_replayed,"
                        " b.pass AS b_baseline_pass, b.trace_id AS s_baseline_trace_id"
                        " FROM eval_results r LEFT JOIN eval_results b ON b.id = (SELECT b2.id FROM eval_results b2"
                        "  WHERE b2.eval_run = ?2 AND b2.case_id = r.case_id AND b2.repeat_index = r.repeat_index"
                        "  ORDER BY b2.id LIMIT 1)"
                        " WHERE r.eval_run = ?1 ORDER BY r.case_id, r.repeat_index, r.id",
                        &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, baseline); /* 0: no run, so no partner */
    ms_buf_adds(out, ",\"cases\":[");
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            ms_buf_addc(out, ',');
        row_json(st, 0, out);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "cannot read the results of eval run %lld: %s", (long long)id,
                       sqlite3_errmsg(db));
    ms_buf_adds(out, "]}");
    return 0;
}

int ms_eval_view_run(sqlite3 *db, int64_t id, ms_buf *out, char *err, size_t errlen)
{
    assert(db && out);
    int own = 0;
    if (ms_read_begin(db, &own, err, errlen))
        return -1;
    int ret = one_run(db, id, out, err, errlen);
    if (ms_read_end(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0 && out->oom)
        ret = ms_errf(err, errlen, "out of memory writing eval run %lld", (long long)id);
    return ret;
}
