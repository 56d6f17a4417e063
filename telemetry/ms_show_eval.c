/* ms_show_eval — the eval result `moonspan show` prints with a case's
 * trace: which suite, run, case and repeat it was, pass or FAIL, its
 * input, expected value, output, each scorer's score and reason, and the
 * error. Read in show's snapshot (ms_show_data.h). */
#include "ms_show_data.h"

#include "ms_fmt.h"
#include "ms_read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define A(off) ms_arena_str(&v->arena, (off))

/* A stored value as JSON text: JSON as it is (minified), anything else
 * as a JSON string, NULL as NULL. */
#define AS_JSON(col) "CASE WHEN " col " IS NULL THEN NULL WHEN json_valid(" col ") THEN json(" col ")" \
                     " ELSE json_quote(" col ") END"

/* Texts longer than this are cut in the text view; --json has them whole. */
#define VALUE_MAX 300

void ms_show_eval_free(show_eval *e)
{
    free(e->list);
    e->list = NULL;
    e->nlist = e->caplist = 0;
}

static int load_scores(sqlite3 *db, trace_view *v, char *err, size_t errlen)
{
    show_eval *e = &v->eval;
    sqlite3_stmt *st;
    if (ms_read_prepare(db,
                        "SELECT json_extract(j.value, '$.name'), json_extract(j.value, '$.score'),"
                        " json_extract(j.value, '$.pass'), json_extract(j.value, '$.reason'),"
                        " json_extract(j.value, '$.error')"
                        " FROM eval_results r, json_each(CASE WHEN json_valid(r.scores)"
                        "  AND json_type(r.scores) = 'array' THEN r.scores ELSE '[]' END) j"
                        " WHERE r.id = ?1 AND j.type = 'object' ORDER BY j.key",
                        &st, err, errlen))
        return -1;
    int rc, ret = 0;
    sqlite3_bind_int64(st, 1, e->result_row);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)&e->list, &e->caplist, e->nlist, sizeof *e->list)) {
            ret = ms_errf(err, errlen, "out of memory reading the eval result");
            break;
        }
        eval_score *sc = &e->list[e->nlist++];
        sc->name = ms_arena_col(&v->arena, st, 0);
        int ty = sqlite3_column_type(st, 1);
        sc->score = ty == SQLITE_INTEGER || ty == SQLITE_FLOAT ? sqlite3_column_double(st, 1) : NAN;
        sc->pass = sqlite3_column_int(st, 2) != 0;
        sc->reason = ms_arena_col(&v->arena, st, 3);
        sc->error = sqlite3_column_int(st, 4) != 0;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot read the eval result: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

int ms_show_eval_load(sqlite3 *db, trace_view *v, char *err, size_t errlen)
{
    show_eval *e = &v->eval;
    e->found = 0;
    const char *attrs = A(v->attrs);
    if (!attrs || !strstr(attrs, "\"eval_run\""))
        return 0; /* no case: not even a query */
    int has = ms_schema_has(db, "eval_results", NULL, err, errlen);
    if (has <= 0)
        return has;
    sqlite3_stmt *st;
    if (ms_read_prepare(db,
                        "SELECT r.id, r.eval_run, e.suite, r.case_id, r.repeat_index, r.pass,"
                        " " AS_JSON("r.input") ", " AS_JSON("r.expected") ", " AS_JSON("r.output") ","
                        " " AS_JSON("r.scores") ", r.error, r.latency_ms, r.cost_usd, r.replayed"
                        " FROM eval_results r LEFT JOIN eval_runs e ON e.id = r.eval_run"
                        " WHERE r.eval_run = json_extract(?1, '$.eval_run') AND r.trace_id = ?2"
                        " ORDER BY r.id LIMIT 1",
                        &st, err, errlen))
        return -1;
    int ret = 0;
    if (sqlite3_bind_text(st, 1, attrs, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, A(v->id), -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        sqlite3_finalize(st);
        return ms_errf(err, errlen, "cannot bind the trace: %s", sqlite3_errmsg(db));
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        e->found = 1;
        e->result_row = sqlite3_column_int64(st, 0);
        e->eval_run = sqlite3_column_int64(st, 1);
        e->suite = ms_arena_col(&v->arena, st, 2);
        e->case_id = ms_arena_col(&v->arena, st, 3);
        e->repeat_index = sqlite3_column_int64(st, 4);
        e->pass = sqlite3_column_int(st, 5) != 0;
        e->input = ms_arena_col(&v->arena, st, 6);
        e->expected = ms_arena_col(&v->arena, st, 7);
        e->output = ms_arena_col(&v->arena, st, 8);
        e->scores = ms_arena_col(&v->arena, st, 9);
        e->error = ms_arena_col(&v->arena, st, 10);
        e->latency_ms = ms_col_num(st, 11);
        e->cost_usd = ms_col_num(st, 12);
        e->replayed = sqlite3_column_int(st, 13) != 0;
    } else if (rc != SQLITE_DONE) {
        ret = ms_errf(err, errlen, "cannot read the eval result: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    if (ret == 0 && e->found)
        ret = load_scores(db, v, err, errlen);
    return ret;
}

void ms_show_eval_json(const trace_view *v, int *first, ms_buf *b)
{
    const show_eval *e = &v->eval;
    ms_json_key(b, first, "eval");
    if (!e->found) {
        ms_buf_adds(b, "null");
        return;
    }
    int f = 1;
    ms_buf_addc(b, '{');
    ms_kv_str(b, &f, "suite", A(e->suite));
    ms_kv_int(b, &f, "eval_run", e->eval_run);
    ms_kv_str(b, &f, "case_id", A(e->case_id));
    ms_kv_int(b, &f, "repeat_index", e->repeat_index);
    ms_json_key(b, &f, "pass");
    ms_buf_adds(b, e->pass ? "true" : "false");
    ms_kv_raw(b, &f, "input", A(e->input));
    ms_kv_raw(b, &f, "expected", A(e->expected));
    ms_kv_raw(b, &f, "output", A(e->output));
    ms_kv_raw(b, &f, "scores", A(e->scores));
    ms_kv_str(b, &f, "error", A(e->error));
    ms_kv_num(b, &f, "latency_ms", e->latency_ms);
    ms_kv_num(b, &f, "cost_usd", e->cost_usd);
    ms_json_key(b, &f, "replayed");
    ms_buf_adds(b, e->replayed ? "true" : "false");
    ms_buf_addc(b, '}');
}

/* "    label     value" with the value on one line, escaped, cut at VALUE_MAX. */
static void value_line(ms_buf *b, const char *label, const char *value, const char *missing)
{
    ms_buf_printf(b, "    %-9s ", label);
    ms_fmt_text_max(b, value, VALUE_MAX, missing);
    ms_buf_addc(b, '\n');
}

void ms_show_eval_text(const trace_view *v, ms_buf *b)
{
    const show_eval *e = &v->eval;
    if (!e->found)
        return;
    ms_buf_adds(b, e->pass ? "  eval case passed: suite " : "  eval case FAILED: suite ");
    ms_fmt_text(b, A(e->suite), "?");
    ms_buf_adds(b, ", case ");
    ms_fmt_text(b, A(e->case_id), "?");
    ms_buf_printf(b, ", repeat %lld, eval run %lld", (long long)e->repeat_index, (long long)e->eval_run);
    if (e->replayed)
        ms_buf_adds(b, " (LLM calls replayed)");
    ms_buf_addc(b, '\n');
    value_line(b, "input", A(e->input), "-");
    value_line(b, "expected", A(e->expected), "-");
    value_line(b, "output", A(e->output), "- (none: run() raised)");
    if (e->nlist == 0)
        ms_buf_adds(b, "    scores    none\n");
    for (size_t i = 0; i < e->nlist; i++) {
        const eval_score *sc = &e->list[i];
        char num[40];
        if (isnan(sc->score))
            snprintf(num, sizeof num, "-");
        else
            snprintf(num, sizeof num, "%.3g", sc->score);
        ms_buf_adds(b, "    score     ");
        ms_fmt_text(b, A(sc->name), "?");
        ms_buf_printf(b, "  %s  %s", sc->error ? "ERROR" : sc->pass ? "pass" : "FAIL", num);
        if (A(sc->reason)) {
            ms_buf_adds(b, "  ");
            ms_fmt_text_max(b, A(sc->reason), VALUE_MAX, "");
        }
        ms_buf_addc(b, '\n');
    }
    if (A(e->error))
        value_line(b, "error", A(e->error), "");
}
