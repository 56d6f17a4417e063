/* views_fixture — the stores the readers' tests run on (test_report.c,
 * test_show.c), each built row by row in a real SQLite file, so every
 * number can be worked out by hand: rows of the version-3 layout
 * (tests/unit/schema_v3.sql: one row per span), which seal() then upgrades
 * the way a user's store is upgraded (ms_store_open, the v4 repacking), so
 * every reader test also checks the migration. Included by one test file
 * each; tests run from the repo root.
 *
 * dataset (UTC):
 *
 *  trace  id prefix  name             start               dur    status  tokens in/out  cost     spans (non-root)
 *  T1     aaaa0000   answer_question  2024-05-01 00:00:10  100ms  ok      100/20         0.01     generate 50 (llm 100/20 $0.01), search 10, rerank 5
 *  T2     aaaa1111   answer_question  2024-05-01 01:00:00  200ms  error   200/40         0.02     search 20, generate 150 (llm, raises RateLimit "too many requests" with a traceback, 2 retries, failed)
 *  T3     abcd2222   answer_question  2024-05-02 00:01:40  300ms  ok      300/60 (est)   unknown  search 30, generate 200 (llm, unpriced model, estimated usage, 1 retry, succeeded)
 *  T4     bbbb3333   batch_eval       2024-06-15 00:00:00  400ms  error   0/0            NULL     judge 40 (raises RateLimit "too many requests"); ctx:add_error("wrong answer")
 *  T5     cccc4444   answer_question  2024-06-15 00:01:00  1000ms ok      400/80         0.04     search 40, generate 400 (llm 400/80 $0.04)
 *
 * cut_short_dataset, joined_dataset, v2_dataset and hostile_dataset are
 * described where they are built. */
#ifndef VIEWS_FIXTURE_H
#define VIEWS_FIXTURE_H

#include "checks.h"

#include <unistd.h>

#include "ms_store.h"
#include "ms_vtab.h"

#define D2 (INT64_C(1714608000) * SEC) /* 2024-05-02T00:00:00Z */
#define D3 (INT64_C(1718409600) * SEC) /* 2024-06-15T00:00:00Z */

#define T1_ID "aaaa0000000000000000000000000001"
#define T2_ID "aaaa1111000000000000000000000002"
#define T3_ID "abcd2222000000000000000000000003"
#define T4_ID "bbbb3333000000000000000000000004"
#define T5_ID "cccc4444000000000000000000000005"

typedef struct fixture {
    char path[64];
    sqlite3 *db;
    char *out;      /* last captured output */
    size_t outlen;
} fixture;

/* --- helpers ---------------------------------------------------------- */

/* Reads the schema from the repo (tests run from the repo root). */
FIXTURE char *read_schema(void)
{
    FILE *f = fopen("tests/unit/schema_v3.sql", "rb");
    assert_non_null(f);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        assert_int_equal(fwrite(buf, 1, n, m), n);
    assert_int_equal(ferror(f), 0);
    fclose(f);
    assert_int_equal(fclose(m), 0);
    return text;
}

FIXTURE int open_db(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->path, sizeof fx->path, "/tmp/ms_test_report_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(sqlite3_open(fx->path, &fx->db), SQLITE_OK);
    char *schema = read_schema();
    exec_sql(fx->db, schema);
    exec_sql(fx->db, "PRAGMA application_id = 0x4d6f6f6e; PRAGMA user_version = 3;");
    free(schema);
    *state = fx;
    return 0;
}

/* An empty store, upgraded as the others are (an empty v3 store too
 * becomes a v4 one). */
FIXTURE int empty_dataset(void **state);

/* The dataset is complete: upgrade it to the current layout as moonspan
 * does on a write open, and read it from then on with the spans tables
 * registered. */
FIXTURE int seal(void **state)
{
    fixture *fx = *state;
    char err[512];
    ms_store *s;
    assert_int_equal(sqlite3_close(fx->db), SQLITE_OK);
    if (ms_store_open(fx->path, MS_STORE_WRITE, &s, err, sizeof err))
        fail_msg("upgrading the fixture: %s", err);
    ms_store_close(s);
    assert_int_equal(sqlite3_open(fx->path, &fx->db), SQLITE_OK);
    assert_int_equal(ms_vtab_register(fx->db), SQLITE_OK);
    return 0;
}

FIXTURE int close_db(void **state)
{
    fixture *fx = *state;
    assert_int_equal(sqlite3_close(fx->db), SQLITE_OK);
    unlink(fx->path);
    free(fx->out);
    free(fx);
    return 0;
}

/* One span row; nullable numbers are passed as SQL text ("NULL", "0.01"). */
FIXTURE void span(sqlite3 *db, int64_t trace_row, int64_t sid, const char *parent,
                 const char *name, const char *kind, int64_t start_ns, int64_t dur_ms,
                 const char *status, int err_own, const char *etype, const char *emsg,
                 const char *in, const char *out, const char *est, const char *cost,
                 int retries, const char *retry_ok)
{
    char *sql = sqlite3_mprintf(
        "INSERT INTO spans (trace_row, span_id, parent_id, name, kind, start_ns,"
        " duration_ns, status, error_own, error_type, error_message, provider, model,"
        " input_tokens, output_tokens, usage_estimated, cost_usd, retries, retry_succeeded)"
        " VALUES (%lld, %lld, %s, %Q, %Q, %lld, %lld, %Q, %d, %Q, %Q, %s, %s,"
        " %s, %s, %s, %s, %d, %s)",
        (long long)trace_row, (long long)sid, parent, name, kind, (long long)start_ns,
        (long long)(dur_ms * MS), status, err_own, etype, emsg,
        strcmp(kind, "llm") == 0 ? "'mock'" : "NULL",
        strcmp(kind, "llm") == 0 ? "'mock-1'" : "NULL", in, out, est, cost, retries,
        retry_ok);
    assert_non_null(sql);
    exec_sql(db, sql);
    sqlite3_free(sql);
}

/* One trace row pointing at spans first_span .. first_span + nspans - 1. */
FIXTURE void trace_row(sqlite3 *db, int64_t row, const char *id, const char *name,
                      int64_t start_ns, int64_t dur_ms, const char *status, int errors,
                      int nspans, int64_t first_span, int in, int out, const char *cost,
                      int unknown)
{
    char *sql = sqlite3_mprintf(
        "INSERT INTO traces (id, trace_id, name, start_ns, duration_ns, status,"
        " error_count, span_count, first_span, input_tokens, output_tokens,"
        " cache_read_tokens, cache_write_tokens, cost_usd, unknown_cost_calls)"
        " VALUES (%lld, %Q, %Q, %lld, %lld, %Q, %d, %d, %lld, %d, %d, 0, 0, %s, %d)",
        (long long)row, id, name, (long long)start_ns, (long long)(dur_ms * MS), status,
        errors, nspans, (long long)first_span, in, out, cost, unknown);
    assert_non_null(sql);
    exec_sql(db, sql);
    sqlite3_free(sql);
}

/* The dataset of the header comment. Span rowids are 1.. in insert order. */
FIXTURE int dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");

    /* T1, rows 1-4: generate is stored before search, but starts after it,
     * so `show` must order children by start, not by rowid */
    int64_t s = D1 + 10 * SEC;
    span(db, 1, 10, "NULL", "answer_question", "trace", s, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "generate", "llm", s + 20 * MS, 50, "ok", 0, NULL, NULL,
         "100", "20", "0", "0.01", 0, "NULL");
    span(db, 1, 12, "10", "search", "span", s + 1 * MS, 10, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 13, "10", "rerank", "span", s + 80 * MS, 5, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, T1_ID, "answer_question", s, 100, "ok", 0, 4, 1, 100, 20, "0.01", 0);
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs)"
                 " VALUES (1, 12, 'cache_hit', 1714521610002000000, '{\"k\":5}')");

    /* T2, rows 5-7: the error is raised in generate and passes through root */
    s = D1 + 3600 * SEC;
    span(db, 2, 20, "NULL", "answer_question", "trace", s, 200, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 21, "20", "search", "span", s + 1 * MS, 20, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 22, "20", "generate", "llm", s + 30 * MS, 150, "error", 1, "RateLimit",
         "too many requests", "200", "40", "0", "0.02", 2, "0");
    trace_row(db, 2, T2_ID, "answer_question", s, 200, "error", 1, 3, 5, 200, 40, "0.02", 0);
    exec_sql(db, "UPDATE spans SET error_traceback = 'stack traceback:\n\tgen.lua:3: in main chunk'"
                 " WHERE span_id = 22");

    /* T3, rows 8-10: unpriced model, estimated usage, a retry that helped */
    s = D2 + 100 * SEC;
    span(db, 3, 30, "NULL", "answer_question", "trace", s, 300, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 31, "30", "search", "span", s + 1 * MS, 30, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 32, "30", "generate", "llm", s + 40 * MS, 200, "ok", 0, NULL, NULL,
         "300", "60", "1", "NULL", 1, "1");
    trace_row(db, 3, T3_ID, "answer_question", s, 300, "ok", 0, 3, 8, 300, 60, "NULL", 1);

    /* T4, rows 11-12: a raised error in judge plus a manual ctx:add_error */
    s = D3;
    span(db, 4, 40, "NULL", "batch_eval", "trace", s, 400, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 4, 41, "40", "judge", "span", s + 1 * MS, 40, "error", 1, "RateLimit",
         "too many requests", "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 4, T4_ID, "batch_eval", s, 400, "error", 2, 2, 11, 0, 0, "NULL", 0);
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, error_type, error_message)"
                 " VALUES (4, 40, 'error', 1718409600300000000, 'manual', 'wrong answer')");

    /* T5, rows 13-15 */
    s = D3 + 60 * SEC;
    span(db, 5, 50, "NULL", "answer_question", "trace", s, 1000, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 51, "50", "search", "span", s + 1 * MS, 40, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 52, "50", "generate", "llm", s + 50 * MS, 400, "ok", 0, NULL, NULL,
         "400", "80", "0", "0.04", 0, "NULL");
    trace_row(db, 5, T5_ID, "answer_question", s, 1000, "ok", 0, 3, 13, 400, 80, "0.04", 0);

    exec_sql(db, "COMMIT");
    return seal(state);
}

FIXTURE int empty_dataset(void **state)
{
    open_db(state);
    return seal(state);
}

/* Runs `fn` into a memory stream; the text lands in fx->out. */
#define CAPTURE(fx, call)                                                  \
    do {                                                                   \
        free((fx)->out);                                                   \
        (fx)->out = NULL;                                                  \
        FILE *out_ = open_memstream(&(fx)->out, &(fx)->outlen);            \
        assert_non_null(out_);                                             \
        FILE *out = out_;                                                  \
        rc_ = (call);                                                      \
        assert_int_equal(fclose(out_), 0);                                 \
    } while (0)

static int rc_;
static char err_[512];


/* A run joined through TRACEPARENT: the root has a parent id from the
 * outer system (999), and a corrupt parent link (a span its own parent). */
FIXTURE int joined_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    span(db, 1, 70, "999", "joined", "trace", D1, 30, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 71, "70", "step", "span", D1 + MS, 20, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 72, "72", "selfish", "span", D1 + 2 * MS, 10, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, T1_ID, "joined", D1, 30, "ok", 0, 3, 1, 0, 0, "NULL", 0);
    exec_sql(db, "COMMIT");
    return seal(state);
}

/* Requests cut short, and LLM calls that failed inside requests that did
 * not (the call's error caught by the script):
 *
 *  trace  status       dur    spans (non-root)
 *  U1     ok           100ms  call 40 (llm ok, 1 retry succeeded, 30 ms backoff), work 20
 *  U2     error        200ms  call 150 (llm error "server down", 2 retries failed, 100 ms backoff)
 *  U3     interrupted  5000ms work 4900 (interrupted), call 30 (llm ok)
 *  U4     incomplete   7000ms work 6000 (incomplete), call 10 (llm incomplete)
 *  U5     ok           300ms  bg 250 (incomplete: an abandoned coroutine), call 50 (llm error
 *                             "server down", caught; 1 retry failed, 20 ms backoff)
 */
FIXTURE int cut_short_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    int64_t s = D1;
    span(db, 1, 10, "NULL", "u", "trace", s, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "call", "llm", s + MS, 40, "ok", 0, NULL, NULL,
         "10", "1", "0", "0.001", 1, "1");
    span(db, 1, 12, "10", "work", "span", s + 50 * MS, 20, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, "dddd0001000000000000000000000001", "u", s, 100, "ok", 0, 3, 1, 10, 1,
              "0.001", 0);
    s += SEC;
    span(db, 2, 20, "NULL", "u", "trace", s, 200, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 21, "20", "call", "llm", s + MS, 150, "error", 1, "api_error", "server down",
         "0", "0", "0", "NULL", 2, "0");
    trace_row(db, 2, "dddd0002000000000000000000000002", "u", s, 200, "error", 1, 2, 4, 0, 0,
              "NULL", 0);
    s += SEC;
    span(db, 3, 30, "NULL", "u", "trace", s, 5000, "interrupted", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 31, "30", "work", "span", s + MS, 4900, "interrupted", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 3, 32, "30", "call", "llm", s + MS, 30, "ok", 0, NULL, NULL,
         "10", "1", "0", "0.001", 0, "NULL");
    trace_row(db, 3, "dddd0003000000000000000000000003", "u", s, 5000, "interrupted", 0, 3, 6,
              10, 1, "0.001", 0);
    s += 10 * SEC;
    span(db, 4, 40, "NULL", "u", "trace", s, 7000, "incomplete", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 4, 41, "40", "work", "span", s + MS, 6000, "incomplete", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 4, 42, "41", "call", "llm", s + 2 * MS, 10, "incomplete", 0, NULL, NULL,
         "0", "0", "0", "NULL", 0, "NULL");
    trace_row(db, 4, "dddd0004000000000000000000000004", "u", s, 7000, "incomplete", 0, 3, 9,
              0, 0, "NULL", 0);
    s += 10 * SEC;
    span(db, 5, 50, "NULL", "u", "trace", s, 300, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 51, "50", "bg", "span", s + MS, 250, "incomplete", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 5, 52, "50", "call", "llm", s + 2 * MS, 50, "error", 1, "api_error", "server down",
         "0", "0", "0", "NULL", 1, "0");
    trace_row(db, 5, "dddd0005000000000000000000000005", "u", s, 300, "ok", 1, 3, 12, 0, 0,
              "NULL", 0);
    exec_sql(db, "UPDATE spans SET backoff_ns = 30000000 WHERE span_id = 11;"
                 "UPDATE spans SET backoff_ns = 100000000 WHERE span_id = 21;"
                 "UPDATE spans SET backoff_ns = 20000000 WHERE span_id = 52;");
    exec_sql(db, "COMMIT");
    return seal(state);
}


/* A store from before schema v3, read as it is: no backoff_ns column, and
 * a ctx:add_error kept as the JSON attrs of an 'error' event on a root
 * span left 'ok' while its trace failed. */
FIXTURE int v2_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "PRAGMA user_version = 2; ALTER TABLE spans DROP COLUMN backoff_ns;"
                 "DROP TABLE span_events;"
                 "CREATE TABLE span_events (trace_row INTEGER NOT NULL, span_id INTEGER NOT NULL,"
                 " name TEXT NOT NULL, time_ns INTEGER NOT NULL, attrs TEXT);");
    exec_sql(db, "BEGIN");
    span(db, 1, 10, "NULL", "judged", "trace", D1, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "step", "span", D1 + MS, 50, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 2, "1");
    trace_row(db, 1, T1_ID, "judged", D1, 100, "error", 1, 2, 1, 0, 0, "NULL", 0);
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs) VALUES"
                 " (1, 10, 'error', 1714521600050000000, '{\"type\":\"manual\",\"message\":\"old way\"}'),"
                 " (1, 11, 'retry', 1714521600020000000, '{\"attempt\":1}')");
    exec_sql(db, "COMMIT");
    return seal(state);
}

/* Fine traces: the same name under several parents, nesting with known
 * self times, concurrent children, an LLM call deep inside, and a step
 * that took microseconds. All ok.
 *
 *  trace  name     dur    spans (parent: children, ms)
 *  N1     request  100ms  request: rerank 60, embed 30, parallel 10
 *                         rerank: score_doc 10 x3 (each: tokenize 2), tokenize 5
 *                         embed: tokenize 4, tokenize 6, chat mock 10 (llm 100/20
 *                                $0.01, ttft 3 ms)
 *                         parallel: a 8, b 8 (concurrent: 16 ms inside 10)
 *  N2     batch    5ms    batch: embed 3 (tokenize 1), chat mock 1 (llm 50/5 $0.02,
 *                         ttft 1 ms), tick 0.003 (3 us)
 *
 * By path (the request's own name left out): rerank 60 (self 60-35 = 25),
 * rerank/score_doc 3 x 10 (self 3 x 8), rerank/score_doc/tokenize 3 x 2,
 * rerank/tokenize 5, embed 30 + 3 (self 10 + 2), embed/tokenize 4 6 1,
 * embed/chat mock 10, parallel 10 (self 0: clamped), parallel/a 8,
 * parallel/b 8, chat mock 1, tick 0.003. By name: tokenize 7 spans, 22 ms. */
FIXTURE int nested_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    int64_t s = D1;
#define NS(id, parent, name, at, dur) \
    span(db, 1, id, #parent, name, "span", s + (at) * MS, dur, "ok", 0, NULL, NULL, \
         "NULL", "NULL", "NULL", "NULL", 0, "NULL")
    span(db, 1, 100, "NULL", "request", "trace", s, 100, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    NS(101, 100, "rerank", 0, 60);
    NS(102, 101, "score_doc", 1, 10);
    NS(103, 102, "tokenize", 1, 2);
    NS(104, 101, "score_doc", 11, 10);
    NS(105, 104, "tokenize", 11, 2);
    NS(106, 101, "score_doc", 21, 10);
    NS(107, 106, "tokenize", 21, 2);
    NS(108, 101, "tokenize", 31, 5);
    NS(109, 100, "embed", 60, 30);
    NS(110, 109, "tokenize", 60, 4);
    NS(111, 109, "tokenize", 64, 6);
    span(db, 1, 112, "109", "chat mock", "llm", s + 70 * MS, 10, "ok", 0, NULL, NULL,
         "100", "20", "0", "0.01", 0, "NULL");
    NS(113, 100, "parallel", 90, 10);
    NS(114, 113, "a", 90, 8);
    NS(115, 113, "b", 91, 8);
    trace_row(db, 1, T1_ID, "request", s, 100, "ok", 0, 16, 1, 100, 20, "0.01", 0);
    s = D1 + SEC;
    span(db, 2, 200, "NULL", "batch", "trace", s, 5, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 201, "200", "embed", "span", s, 3, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 202, "201", "tokenize", "span", s, 1, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 2, 203, "200", "chat mock", "llm", s + 3 * MS, 1, "ok", 0, NULL, NULL,
         "50", "5", "0", "0.02", 0, "NULL");
    span(db, 2, 204, "200", "tick", "span", s + 4 * MS, 0, "ok", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 2, T2_ID, "batch", s, 5, "ok", 0, 5, 17, 50, 5, "0.02", 0);
    exec_sql(db, "UPDATE spans SET duration_ns = 3000 WHERE span_id = 204;"
                 "UPDATE spans SET ttft_ns = 3000000 WHERE span_id = 112;"
                 "UPDATE spans SET ttft_ns = 1000000 WHERE span_id = 203;");
#undef NS
    exec_sql(db, "COMMIT");
    return seal(state);
}

/* What a script, a model or a server may put in a name or a message: a
 * terminal title (OSC ... BEL), clear screen (CSI 2J), an 8-bit CSI
 * (U+009B) and a right-to-left override (U+202E). */
#define HOSTILE "\x1b]0;pwned\x07\x1b[2J\xc2\x9b" "2J\xe2\x80\xae"
#define HOSTILE_SHOWN "\\x1b]0;pwned\\x07\\x1b[2J\\u{009b}2J\\u{202e}"

/* Fails when `doc` holds a byte or character that a terminal acts on:
 * C0 controls but '\n', DEL and, unless c0_only, C1 controls and
 * bidirectional overrides. */
FIXTURE void controls_check(const char *doc, size_t len, const char *what, int c0_only)
{
    const unsigned char *p = (const unsigned char *)doc;
    for (size_t i = 0; i < len; i++) {
        int c0 = (p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f;
        int c1 = p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f;
        int bidi = p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 && p[i + 2] >= 0xaa &&
                   p[i + 2] <= 0xae;
        int bad = c0 || (!c0_only && (c1 || bidi));
        if (bad) {
            fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
            fail_msg("%s: control byte 0x%02x at offset %zu", what, p[i], i);
        }
    }
}

FIXTURE void no_terminal_controls(const char *doc, size_t len, const char *what)
{
    controls_check(doc, len, what, 0);
}

/* JSON escapes C0 and DEL itself and leaves other characters to the
 * program that reads it. */
FIXTURE void no_c0_controls(const char *doc, size_t len, const char *what)
{
    controls_check(doc, len, what, 1);
}

/* One trace whose every text is hostile: its name, a span name, the
 * span's error type and message, an event name and its attributes, and
 * an eval suite, case id and reason pointing at it. */
FIXTURE int hostile_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    span(db, 1, 10, "NULL", "req" HOSTILE, "trace", D1, 100, "error", 0, NULL, NULL,
         "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    span(db, 1, 11, "10", "step" HOSTILE, "span", D1 + MS, 50, "error", 1, "type" HOSTILE,
         "line one\nmsg" HOSTILE, "NULL", "NULL", "NULL", "NULL", 0, "NULL");
    trace_row(db, 1, T1_ID, "req" HOSTILE, D1, 100, "error", 2, 2, 1, 0, 0, "NULL", 0);
    /* the JSON of an attribute escapes C0 itself, but not C1 or bidi */
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs) VALUES"
                 " (1, 11, 'ev" HOSTILE "', 1714521600002000000,"
                 " '{\"k\":\"\\u001b]0;t\\u0007 \xc2\x9b" "2J \xe2\x80\xae\"}')");
    exec_sql(db, "INSERT INTO span_events (trace_row, span_id, name, time_ns, error_type,"
                 " error_message) VALUES (1, 10, 'error', 1714521600003000000,"
                 " 'mtype" HOSTILE "', 'manual" HOSTILE "')");
    exec_sql(db, "INSERT INTO eval_runs (id, suite, suite_file, start_ns, end_ns, config, cases,"
                 " passed, pass_rate, threshold, status, recorded) VALUES (1, 'suite" HOSTILE "',"
                 " 's.lua', 1714521600000000000, 1714521601000000000, '{}', 1, 0, 0, 1,"
                 " 'failed', 0)");
    exec_sql(db, "INSERT INTO eval_results (eval_run, case_id, repeat_index, pass, error,"
                 " trace_id, replayed) VALUES (1, 'case" HOSTILE "', 0, 0, 'boom" HOSTILE "',"
                 " '" T1_ID "', 0)");
    exec_sql(db, "COMMIT");
    return seal(state);
}

#endif
