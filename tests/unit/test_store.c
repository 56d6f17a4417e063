/* The store's round trip: traces recorded into buffers, written by the
 * tracer's writer thread, read back with plain SQL from a real file; the
 * files the store must refuse without changing them; and stores of schema
 * version 1 upgraded on a write open and read as they are on a read open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"

#include "ms_clock.h"
#include "ms_evals.h"
#include "ms_report.h"
#include "ms_show.h"
#include "ms_store.h"
#include "ms_traces.h"
#include "ms_tracer.h"
#include "ms_vtab.h"

static char dir[] = "/tmp/ms-store-test.XXXXXX";

static int setup(void **state)
{
    (void)state;
    ms_clock_init();
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
    unlink(out);
}

/* A plain connection, with the spans tables moonspan registers. */
static sqlite3 *open_sql(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(ms_vtab_register(db), SQLITE_OK);
    return db;
}

static char *one_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *v = t ? strdup((const char *)t) : NULL;
    sqlite3_finalize(st);
    return v;
}

/* The schema of version 1, verbatim from telemetry/ms_schema.sql as it was
 * before version 2: the migration tests build old stores with it. Never
 * edit it to follow the current schema; that would test nothing. */
static const char SCHEMA_V1[] =
    "-- moonspan store, schema version 1 (PRAGMA user_version = 1,\n"
    "-- PRAGMA application_id = 0x4d6f6f6e, \"Moon\").\n"
    "--\n"
    "-- Shape: spans are appended in rowid order with no secondary index; the\n"
    "-- spans of one trace are written in one transaction, so they occupy the\n"
    "-- contiguous rowid range traces.first_span .. first_span + span_count - 1.\n"
    "-- Reading a trace is a rowid range scan; writing a span touches one b-tree.\n"
    "-- Ids: trace ids are 32 lowercase hex characters; span ids are 64-bit\n"
    "-- integers (printf('%016x', span_id) gives the W3C hex form).\n"
    "\n"
    "CREATE TABLE IF NOT EXISTS runs (\n"
    "  id           INTEGER PRIMARY KEY,\n"
    "  script       TEXT NOT NULL,           -- path as given to `moonspan run`\n"
    "  args         TEXT NOT NULL,           -- JSON array of the script's arguments\n"
    "  host_version TEXT NOT NULL,\n"
    "  start_ns     INTEGER NOT NULL,        -- Unix epoch nanoseconds\n"
    "  pid          INTEGER NOT NULL\n"
    ");\n"
    "\n"
    "CREATE TABLE IF NOT EXISTS traces (\n"
    "  id                 INTEGER PRIMARY KEY,\n"
    "  trace_id           TEXT NOT NULL,     -- 32 hex\n"
    "  run_id             INTEGER REFERENCES runs(id),\n"
    "  name               TEXT NOT NULL,\n"
    "  start_ns           INTEGER NOT NULL,  -- Unix epoch nanoseconds\n"
    "  duration_ns        INTEGER NOT NULL,\n"
    "  status             TEXT NOT NULL,     -- 'ok' | 'error'\n"
    "  error_count        INTEGER NOT NULL,  -- errors raised in this trace (each counted once) + ctx:add_error calls\n"
    "  span_count         INTEGER NOT NULL,  -- including the root span\n"
    "  first_span         INTEGER NOT NULL,  -- rowid of the root span in spans\n"
    "  input_tokens       INTEGER NOT NULL,  -- llm spans + ctx:add_tokens\n"
    "  output_tokens      INTEGER NOT NULL,\n"
    "  cache_read_tokens  INTEGER NOT NULL,\n"
    "  cache_write_tokens INTEGER NOT NULL,\n"
    "  cost_usd           REAL,              -- sum over priced llm calls; NULL when there was no priced call\n"
    "  unknown_cost_calls INTEGER NOT NULL,  -- llm calls whose model has no price\n"
    "  attrs              TEXT               -- JSON object, or NULL\n"
    ");\n"
    "-- not unique: with TRACEPARENT set, every trace of a run joins the outer trace id\n"
    "CREATE INDEX IF NOT EXISTS traces_by_trace_id ON traces(trace_id);\n"
    "CREATE INDEX IF NOT EXISTS traces_by_start ON traces(start_ns);\n"
    "\n"
    "CREATE TABLE IF NOT EXISTS spans (\n"
    "  trace_row          INTEGER NOT NULL,  -- traces.id\n"
    "  span_id            INTEGER NOT NULL,\n"
    "  parent_id          INTEGER,           -- NULL for the root span\n"
    "  name               TEXT NOT NULL,\n"
    "  kind               TEXT NOT NULL,     -- 'trace' (root) | 'span' | 'llm'\n"
    "  start_ns           INTEGER NOT NULL,  -- Unix epoch nanoseconds\n"
    "  duration_ns        INTEGER NOT NULL,\n"
    "  status             TEXT NOT NULL,     -- 'ok' | 'error'\n"
    "  error_own          INTEGER NOT NULL,  -- 1 where the error was raised, 0 on spans it only passed through\n"
    "  error_type         TEXT,\n"
    "  error_message      TEXT,\n"
    "  error_traceback    TEXT,\n"
    "  attrs              TEXT,              -- JSON object, or NULL\n"
    "  provider           TEXT,              -- llm spans only, from here down\n"
    "  model              TEXT,\n"
    "  input_tokens       INTEGER,\n"
    "  output_tokens      INTEGER,\n"
    "  cache_read_tokens  INTEGER,\n"
    "  cache_write_tokens INTEGER,\n"
    "  usage_estimated    INTEGER,           -- 1 when the provider gave no usage and tokens were estimated\n"
    "  cost_usd           REAL,              -- NULL when the model has no price\n"
    "  retries            INTEGER NOT NULL,  -- retries (attempts - 1) made inside this span\n"
    "  retry_succeeded    INTEGER,           -- NULL when there was no retry; else 1/0\n"
    "  ttft_ns            INTEGER            -- time to first token, streaming llm spans\n"
    ");\n"
    "\n"
    "CREATE TABLE IF NOT EXISTS span_events (\n"
    "  trace_row INTEGER NOT NULL,\n"
    "  span_id   INTEGER NOT NULL,\n"
    "  name      TEXT NOT NULL,\n"
    "  time_ns   INTEGER NOT NULL,           -- Unix epoch nanoseconds\n"
    "  attrs     TEXT                        -- JSON object, or NULL\n"
    ");\n"
    "-- Events are few (retries, failed attempts, manual errors), so indexing\n"
    "-- them by trace costs little and makes `moonspan show` independent of the\n"
    "-- store's size.\n"
    "CREATE INDEX IF NOT EXISTS span_events_by_trace ON span_events(trace_row);\n";

static ms_tracer *open_tracer(const char *path, size_t queue)
{
    char err[512];
    ms_store *s;
    int rc = ms_store_open(path, MS_STORE_WRITE, &s, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    ms_tracer *tr;
    assert_int_equal(ms_tracer_open(s, queue, &tr), 0);
    return tr;
}

/* root "answer" > search (attrs, event), generate > chat (llm, retried), and
 * a failing "tool" whose error passes through "act". */
static ms_trace *record_one(ms_tracer *tr)
{
    ms_trace *t = ms_tracer_acquire(tr);
    int64_t t0 = 1000000000;
    assert_int_equal(ms_trace_start(t, "answer", 6, t0, NULL, 0), 0);
    ms_span_set_str(t, 0, "query", 5, "what \"is\" lua?", 14);
    uint32_t search = ms_span_begin(t, 0, "search", 6, t0 + 10);
    ms_span_set_int(t, search, "k", 1, 5);
    ms_span_set_double(t, search, "score", 5, 0.25);
    ms_span_set_bool(t, search, "cached", 6, 1);
    ms_span_set_int(t, search, "k", 1, 7); /* replaces, keeps one key */
    ms_span_event(t, search, t0 + 15, "hit", 3, "{\"n\":3}", 7);
    ms_span_end(t, search, t0 + 1010);
    uint32_t gen = ms_span_begin(t, 0, "generate", 8, t0 + 1020);
    uint32_t chat = ms_span_begin(t, gen, "chat mock", 9, t0 + 1030);
    ms_llm_usage u = {"mock", "mock", 1000, 200, 50, 10, 0.002, 123000, 0, 0};
    ms_span_set_llm(t, chat, &u);
    ms_span_add_retries(t, chat, 2, 1, 750000000);
    ms_span_end(t, chat, t0 + 5030);
    ms_span_end(t, gen, t0 + 5040);
    uint32_t act = ms_span_begin(t, 0, "act", 3, t0 + 5050);
    uint32_t tool = ms_span_begin(t, act, "tool", 4, t0 + 5060);
    ms_span_fail(t, tool, 1, "rate_limit_error", "slow down", 9, "stack traceback:\n\tx");
    ms_span_end(t, tool, t0 + 5070);
    ms_span_fail(t, act, 0, "rate_limit_error", "slow down", 9, NULL);
    ms_span_end(t, act, t0 + 5080);
    uint32_t unpriced = ms_span_begin(t, 0, "chat x", 6, t0 + 5090);
    ms_llm_usage u2 = {"other", "unknown-model", 10, 1, 0, 0, NAN, -1, 1, 0};
    ms_span_set_llm(t, unpriced, &u2);
    ms_span_end(t, unpriced, t0 + 5100);
    ms_tokens manual = {5, 6, 0, 0};
    ms_trace_add_tokens(t, &manual);
    ms_trace_add_error(t, t0 + 5200, NULL, "manual \"oops\"", 13);
    ms_trace_end(t, t0 + 6000);
    return t;
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "round.db");
    ms_tracer *tr = open_tracer(path, 16);
    ms_trace *t = record_one(tr);
    char hex[33];
    ms_trace_id_hex(&t->id, hex);
    uint64_t tool_id = ms_span_id(t, 5), act_id = ms_span_id(t, 4); /* by order of begin */
    ms_tracer_submit(tr, t);
    assert_int_equal(ms_tracer_flush(tr, 0, NULL), 0);
    assert_int_equal(ms_tracer_written_spans(tr), 7);
    assert_int_equal(ms_tracer_close(tr, 0), 0);

    sqlite3 *db = open_sql(path);
    char sql[512];
    assert_int_equal(one_int(db, "PRAGMA user_version"), MS_SCHEMA_VERSION);
    assert_int_equal(one_int(db, "PRAGMA application_id"), MS_APPLICATION_ID);
    char *jm = one_text(db, "PRAGMA journal_mode");
    assert_string_equal(jm, "wal");
    free(jm);
    char *id = one_text(db, "SELECT trace_id FROM traces");
    assert_string_equal(id, hex);
    free(id);
    /* totals: llm spans + manual tokens; cost only from the priced call */
    assert_int_equal(one_int(db, "SELECT input_tokens FROM traces"), 1000 + 10 + 5);
    assert_int_equal(one_int(db, "SELECT output_tokens FROM traces"), 200 + 1 + 6);
    assert_int_equal(one_int(db, "SELECT cache_read_tokens FROM traces"), 50);
    assert_int_equal(one_int(db, "SELECT cache_write_tokens FROM traces"), 10);
    assert_int_equal(one_int(db, "SELECT cost_usd = 0.002 FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT unknown_cost_calls FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT duration_ns FROM traces"), 6000);
    /* error_count = own errors (tool) + manual errors; status from the manual error */
    assert_int_equal(one_int(db, "SELECT error_count FROM traces"), 2);
    char *status = one_text(db, "SELECT status FROM traces");
    assert_string_equal(status, "error");
    free(status);
    /* one row, its spans packed in it; every one comes back through the spans table */
    assert_int_equal(one_int(db, "SELECT span_count FROM traces"), 7);
    assert_int_equal(one_int(db, "SELECT parts = 0 AND spans IS NOT NULL FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces t JOIN spans s ON s.trace_row = t.id"), 7);
    char *kind = one_text(db, "SELECT kind FROM spans s JOIN traces t ON s.trace_row = t.id"
                              " WHERE s.span_index = 0");
    assert_string_equal(kind, "trace");
    free(kind);
    assert_int_equal(one_int(db, "SELECT parent_id IS NULL FROM spans WHERE name = 'answer'"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans c JOIN spans p ON c.parent_id = p.span_id"
                                 " WHERE c.name = 'chat mock' AND p.name = 'generate'"), 1);
    snprintf(sql, sizeof sql, "SELECT parent_id = %lld FROM spans WHERE name = 'tool'", (long long)act_id);
    assert_int_equal(one_int(db, sql), 1);
    snprintf(sql, sizeof sql, "SELECT printf('%%016x', span_id) FROM spans WHERE span_id = %lld",
             (long long)tool_id);
    char *sh = one_text(db, sql), want[17];
    ms_span_id_hex(tool_id, want);
    assert_string_equal(sh, want);
    free(sh);
    /* start and duration from the monotonic readings */
    assert_int_equal(one_int(db, "SELECT duration_ns FROM spans WHERE name = 'search'"), 1000);
    assert_int_equal(one_int(db, "SELECT s.start_ns - t.start_ns FROM spans s, traces t WHERE s.name = 'search'"), 10);
    /* attributes as JSON, later value of a key wins */
    char *attrs = one_text(db, "SELECT attrs FROM spans WHERE name = 'search'");
    assert_string_equal(attrs, "{\"k\":7,\"score\":0.25,\"cached\":true}");
    free(attrs);
    attrs = one_text(db, "SELECT attrs FROM traces");
    assert_string_equal(attrs, "{\"query\":\"what \\\"is\\\" lua?\"}");
    free(attrs);
    /* llm columns */
    assert_int_equal(one_int(db, "SELECT input_tokens + output_tokens * 10 FROM spans WHERE name = 'chat mock'"), 3000);
    assert_int_equal(one_int(db, "SELECT retries FROM spans WHERE name = 'chat mock'"), 2);
    assert_int_equal(one_int(db, "SELECT retry_succeeded FROM spans WHERE name = 'chat mock'"), 1);
    assert_int_equal(one_int(db, "SELECT ttft_ns FROM spans WHERE name = 'chat mock'"), 123000);
    assert_int_equal(one_int(db, "SELECT retry_succeeded IS NULL FROM spans WHERE name = 'search'"), 1);
    assert_int_equal(one_int(db, "SELECT cost_usd IS NULL AND usage_estimated = 1 FROM spans WHERE name = 'chat x'"), 1);
    assert_int_equal(one_int(db, "SELECT ttft_ns IS NULL FROM spans WHERE name = 'chat x'"), 1);
    /* live calls: replayed is NULL (not 0), and so is the trace's replayed cost */
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE replayed IS NOT NULL"), 0);
    assert_int_equal(one_int(db, "SELECT replayed_cost_usd IS NULL FROM traces"), 1);
    /* errors: own where raised, passed-through above */
    assert_int_equal(one_int(db, "SELECT error_own FROM spans WHERE name = 'tool'"), 1);
    assert_int_equal(one_int(db, "SELECT error_own FROM spans WHERE name = 'act'"), 0);
    /* the root carries the trace's status: error, from ctx:add_error */
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE status = 'error'"), 3);
    char *tb = one_text(db, "SELECT error_traceback FROM spans WHERE name = 'tool'");
    assert_string_equal(tb, "stack traceback:\n\tx");
    free(tb);
    /* events: the search hit and the manual error on the root */
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_events"), 2);
    char *ev = one_text(db, "SELECT error_type || ': ' || error_message FROM span_events"
                            " WHERE name = 'error' AND attrs IS NULL");
    assert_string_equal(ev, "error: manual \"oops\"");
    free(ev);
    /* backoff: 750 ms on the span that retried, NULL elsewhere */
    assert_int_equal(one_int(db, "SELECT backoff_ns FROM spans WHERE name = 'chat mock'"), 750000000);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE backoff_ns IS NULL"), 6);
    sqlite3_close(db);
}

/* A queue of one trace forces the producer to wait on the writer again
 * and again: every trace must still arrive. */
static void test_full_queue_waits_and_drops_nothing(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "queue.db");
    ms_tracer *tr = open_tracer(path, 1);
    for (int i = 0; i < 2000; i++) {
        ms_trace *t = ms_tracer_acquire(tr);
        ms_trace_start(t, "t", 1, ms_mono_ns(), NULL, 0);
        for (int s = 0; s < 5; s++)
            ms_span_end(t, ms_span_begin(t, 0, "s", 1, ms_mono_ns()), ms_mono_ns());
        ms_trace_end(t, ms_mono_ns());
        ms_tracer_submit(tr, t);
    }
    assert_int_equal(ms_tracer_close(tr, 0), 0);
    sqlite3 *db = open_sql(path);
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces"), 2000);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans"), 12000);
    /* every trace holds exactly its own spans */
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces t JOIN spans s ON s.trace_row = t.id"
                                 " WHERE t.span_count = 6"), 12000);
    sqlite3_close(db);
}

/* What an observer saw: traces, spans, and its order among the observers. */
typedef struct {
    int *clock;
    int traces, spans, last_turn;
} seen;

static void count_batch(void *ud, ms_trace *const *traces, size_t n)
{
    seen *o = ud;
    o->last_turn = ++*o->clock;
    o->traces += (int)n;
    for (size_t i = 0; i < n; i++)
        o->spans += (int)traces[i]->nspans;
}

/* Every observer added sees every trace, in the order added; one past the
 * most is refused and changes nothing. */
static void test_observers_all_see_every_trace(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "observers.db");
    ms_tracer *tr = open_tracer(path, 4);
    int clock = 0;
    seen obs[MS_TRACER_OBSERVERS_MAX + 1] = {{0}};
    for (int i = 0; i < MS_TRACER_OBSERVERS_MAX; i++) {
        obs[i].clock = &clock;
        assert_int_equal(ms_tracer_add_observer(tr, count_batch, &obs[i]), 0);
    }
    obs[MS_TRACER_OBSERVERS_MAX].clock = &clock;
    assert_int_equal(ms_tracer_add_observer(tr, count_batch, &obs[MS_TRACER_OBSERVERS_MAX]), ENOSPC);
    for (int i = 0; i < 50; i++) {
        ms_trace *t = ms_tracer_acquire(tr);
        ms_trace_start(t, "t", 1, ms_mono_ns(), NULL, 0);
        ms_span_end(t, ms_span_begin(t, 0, "s", 1, ms_mono_ns()), ms_mono_ns());
        ms_trace_end(t, ms_mono_ns());
        ms_tracer_submit(tr, t);
    }
    assert_int_equal(ms_tracer_close(tr, 0), 0);
    for (int i = 0; i < MS_TRACER_OBSERVERS_MAX; i++) {
        assert_int_equal(obs[i].traces, 50);
        assert_int_equal(obs[i].spans, 100);
        if (i)
            assert_int_equal(obs[i].last_turn, obs[i - 1].last_turn + 1);
    }
    assert_int_equal(obs[MS_TRACER_OBSERVERS_MAX].traces, 0);
}

/* A trace retained past the write stays readable and is not reused. */
static void test_retained_trace_survives_the_write(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "retain.db");
    ms_tracer *tr = open_tracer(path, 4);
    ms_trace *t = ms_tracer_acquire(tr);
    ms_trace_start(t, "kept", 4, ms_mono_ns(), NULL, 0);
    ms_trace_end(t, ms_mono_ns());
    ms_tracer_retain(tr, t);
    uint32_t gen = t->generation;
    ms_tracer_submit(tr, t);
    ms_tracer_flush(tr, 0, NULL);
    ms_trace *other = ms_tracer_acquire(tr); /* must not be t */
    assert_ptr_not_equal(other, t);
    assert_int_equal(t->generation, gen);
    assert_string_equal(ms_trace_str(t, t->spans[0].name), "kept");
    ms_tracer_release(tr, other);
    ms_tracer_release(tr, t);
    ms_trace *again = ms_tracer_acquire(tr); /* now reusable */
    ms_tracer_release(tr, again);
    ms_tracer_close(tr, 0);
}

/* A replayed call is marked on its span; its recorded cost stays in the
 * trace's cost (the case scores as it did when recorded) and is also
 * stated apart in replayed_cost_usd, for the report to leave out. */
static void test_replayed_calls(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "replayed.db");
    ms_tracer *tr = open_tracer(path, 4);
    ms_trace *t = ms_tracer_acquire(tr);
    int64_t t0 = 1000;
    assert_int_equal(ms_trace_start(t, "eval:s:c1", 9, t0, NULL, 0), 0);
    uint32_t live = ms_span_begin(t, 0, "live", 4, t0 + 1);
    ms_llm_usage u1 = {.provider = "mock", .model = "mock", .input = 10, .output = 2,
                       .cost_usd = 0.25, .ttft_ns = -1};
    ms_span_set_llm(t, live, &u1);
    ms_span_end(t, live, t0 + 2);
    uint32_t rep = ms_span_begin(t, 0, "replayed", 8, t0 + 3);
    ms_llm_usage u2 = {.provider = "mock", .model = "mock", .input = 30, .output = 4,
                       .cost_usd = 0.5, .ttft_ns = -1, .replayed = 1};
    ms_span_set_llm(t, rep, &u2);
    ms_span_end(t, rep, t0 + 4);
    uint32_t unpriced = ms_span_begin(t, 0, "replayed unpriced", 17, t0 + 5);
    ms_llm_usage u3 = {.provider = "x", .model = "x", .cost_usd = NAN, .ttft_ns = -1,
                       .replayed = 1};
    ms_span_set_llm(t, unpriced, &u3);
    ms_span_end(t, unpriced, t0 + 6);
    ms_trace_end(t, t0 + 10);

    ms_trace_totals tot;
    ms_trace_totals_get(t, &tot);
    assert_true(tot.cost_usd == 0.75);
    assert_true(tot.replayed_cost_usd == 0.5);
    assert_int_equal(tot.replayed_calls, 2);
    assert_int_equal(tot.unknown_cost_calls, 1);
    ms_buf sum = {0};
    ms_trace_summary(t, t0 + 10, &sum);
    assert_non_null(strstr(sum.data, "$0.500000, replayed]"));
    assert_non_null(strstr(sum.data, "cost unknown, replayed]"));
    assert_non_null(strstr(sum.data, "$0.250000]"));
    ms_buf_free(&sum);

    ms_tracer_submit(tr, t);
    assert_int_equal(ms_tracer_close(tr, 0), 0);
    sqlite3 *db = open_sql(path);
    assert_int_equal(one_int(db, "SELECT replayed FROM spans WHERE name = 'replayed'"), 1);
    assert_int_equal(one_int(db, "SELECT replayed FROM spans WHERE name = 'replayed unpriced'"), 1);
    assert_int_equal(one_int(db, "SELECT replayed IS NULL FROM spans WHERE name = 'live'"), 1);
    assert_int_equal(one_int(db, "SELECT replayed IS NULL FROM spans WHERE kind = 'trace'"), 1);
    assert_int_equal(one_int(db, "SELECT cost_usd = 0.75 FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT replayed_cost_usd = 0.5 FROM traces"), 1);
    sqlite3_close(db);
}

/* A store as version 1 of moonspan left it: the v1 DDL, one run, one trace
 * of two spans (one llm) and an event. */
static void make_v1_store(const char *path)
{
    sqlite3 *db = open_sql(path);
    char *msg = NULL;
    int rc = sqlite3_exec(db, SCHEMA_V1, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
            "PRAGMA application_id = 1299148654; PRAGMA user_version = 1;"
            "INSERT INTO runs VALUES (1, 'old.lua', '[]', '0.0.9', 1000, 42);"
            "INSERT INTO traces VALUES (1, 'abcd0000000000000000000000000001', 1, 'old trace',"
            " 1714521600000000000, 5000000, 'ok', 0, 2, 1, 10, 2, 0, 0, 0.125, 0, NULL);"
            "INSERT INTO spans (trace_row, span_id, parent_id, name, kind, start_ns, duration_ns,"
            " status, error_own, retries) VALUES (1, 16, NULL, 'old trace', 'trace',"
            " 1714521600000000000, 5000000, 'ok', 0, 0);"
            "INSERT INTO spans (trace_row, span_id, parent_id, name, kind, start_ns, duration_ns,"
            " status, error_own, provider, model, input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_tokens, usage_estimated, cost_usd, retries) VALUES (1, 17, 16, 'chat',"
            " 'llm', 1714521600001000000, 3000000, 'ok', 0, 'mock', 'mock', 10, 2, 0, 0, 0,"
            " 0.125, 0);"
            "INSERT INTO span_events VALUES (1, 17, 'hit', 1714521600002000000, '{\"n\":1}');",
            NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("v1 fixture: %s", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int table_exists(sqlite3 *db, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
    return (int)one_int(db, sql);
}

/* Write open of a v1 store: the current version, the old rows intact
 * (repacked: the same spans with the same ids, parents, fields and
 * events, read back through the spans tables), the new tables there, and
 * it takes new traces and eval runs. */
static void test_migrates_v1_on_write_open(void **state)
{
    (void)state;
    char path[256], err[512];
    path_of(path, sizeof path, "v1.db");
    make_v1_store(path);
    sqlite3 *old = open_sql(path); /* a ctx:add_error of before v3: JSON attrs */
    assert_int_equal(sqlite3_exec(old, "INSERT INTO span_events VALUES (1, 16, 'error', 1714521600003000000,"
                                       " '{\"type\":\"manual\",\"message\":\"was wrong\"}')",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(old);
    ms_store *s;
    if (ms_store_open(path, MS_STORE_WRITE, &s, err, sizeof err))
        fail_msg("%s", err);
    sqlite3 *sdb = ms_store_db(s);
    assert_int_equal(one_int(sdb, "PRAGMA user_version"), MS_SCHEMA_VERSION);
    assert_int_equal(one_int(sdb, "PRAGMA application_id"), MS_APPLICATION_ID);
    int64_t id;
    ms_eval_run_info info = {.suite = "s", .suite_file = "s.lua", .start_ns = 5,
                             .threshold = 0.5};
    if (ms_eval_run_begin(sdb, &info, &id, err, sizeof err))
        fail_msg("%s", err);
    ms_store_close(s);

    sqlite3 *db = open_sql(path);
    assert_int_equal(one_int(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans"), 2);
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_events"), 2);
    /* v3: the manual error moved into typed columns, other events untouched */
    char *typed = one_text(db, "SELECT error_type || ': ' || error_message FROM span_events"
                               " WHERE name = 'error' AND attrs IS NULL");
    assert_string_equal(typed, "manual: was wrong");
    free(typed);
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_events WHERE name = 'hit'"
                                 " AND attrs IS NOT NULL AND error_type IS NULL"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE backoff_ns IS NULL"), 2);
    char *name = one_text(db, "SELECT name FROM traces");
    assert_string_equal(name, "old trace");
    free(name);
    assert_int_equal(one_int(db, "SELECT cost_usd = 0.125 FROM traces"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE replayed IS NULL"), 2);
    assert_int_equal(one_int(db, "SELECT replayed_cost_usd IS NULL FROM traces"), 1);
    /* v4: packed, with the ids they had; the old tables gone */
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE span_id = 16 AND parent_id IS NULL"
                                 " AND kind = 'trace' AND start_ns = 1714521600000000000"
                                 " AND duration_ns = 5000000"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans WHERE span_id = 17 AND parent_id = 16"
                                 " AND kind = 'llm' AND provider = 'mock' AND input_tokens = 10"
                                 " AND output_tokens = 2 AND cost_usd = 0.125"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_events WHERE span_id = 17 AND name = 'hit'"
                                 " AND time_ns = 1714521600002000000 AND attrs = '{\"n\":1}'"), 1);
    assert_int_equal(table_exists(db, "spans"), 0);
    assert_int_equal(table_exists(db, "span_events"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM pragma_table_info('traces')"
                                 " WHERE name = 'first_span'"), 0);
    assert_int_equal(table_exists(db, "eval_runs"), 1);
    assert_int_equal(table_exists(db, "eval_results"), 1);
    assert_int_equal(table_exists(db, "llm_recordings"), 1);
    assert_int_equal(table_exists(db, "eval_results_by_run"), 1);
    assert_int_equal(table_exists(db, "eval_runs_by_suite"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM eval_runs"), 1);
    char *ck = one_text(db, "PRAGMA integrity_check");
    assert_string_equal(ck, "ok");
    free(ck);
    sqlite3_close(db);

    /* the upgraded store takes traces from the writer, after the old rows */
    ms_tracer *tr = open_tracer(path, 4);
    ms_trace *t = ms_tracer_acquire(tr);
    ms_trace_start(t, "new", 3, ms_mono_ns(), NULL, 0);
    ms_span_end(t, ms_span_begin(t, 0, "step", 4, ms_mono_ns()), ms_mono_ns());
    ms_trace_end(t, ms_mono_ns());
    ms_tracer_submit(tr, t);
    assert_int_equal(ms_tracer_close(tr, 0), 0);
    db = open_sql(path);
    assert_int_equal(one_int(db, "PRAGMA user_version"), MS_SCHEMA_VERSION);
    assert_int_equal(one_int(db, "SELECT id FROM traces WHERE name = 'new'"), 2);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans"), 4);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans s JOIN traces t ON s.trace_row = t.id"
                                 " WHERE t.name = 'new'"), 2);
    sqlite3_close(db);
}

/* A migration that cannot finish leaves the store at version 1 with its
 * data: here a v1 store someone already gave a `replayed` column by hand,
 * so the ALTER TABLE fails halfway through the steps. */
static void test_failed_migration_changes_nothing(void **state)
{
    (void)state;
    char path[256], err[512] = "";
    path_of(path, sizeof path, "v1-odd.db");
    make_v1_store(path);
    sqlite3 *db = open_sql(path);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE traces ADD COLUMN replayed_cost_usd TEXT",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ms_store *s = NULL;
    assert_int_equal(ms_store_open(path, MS_STORE_WRITE, &s, err, sizeof err), -1);
    assert_null(s);
    char to[64];
    snprintf(to, sizeof to, "from schema version 1 to %d", MS_SCHEMA_VERSION);
    if (!strstr(err, "cannot upgrade") || !strstr(err, to) ||
        !strstr(err, "duplicate column") || !strstr(err, path))
        fail_msg("unexpected error: %s", err);
    db = open_sql(path);
    assert_int_equal(one_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM pragma_table_info('spans')"
                                 " WHERE name = 'replayed'"), 0); /* the first step undone */
    assert_int_equal(table_exists(db, "eval_runs"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM spans"), 2);
    sqlite3_close(db);
}

/* Runs a report function into a string; fails the test on error. */
#define CAPTURE_OK(buf, call)                                              \
    do {                                                                   \
        size_t len_;                                                       \
        FILE *out = open_memstream(&(buf), &len_);                         \
        assert_non_null(out);                                              \
        int rc_ = (call);                                                  \
        fclose(out);                                                       \
        if (rc_ != 0)                                                      \
            fail_msg("%s failed: %s", #call, err);                         \
    } while (0)

/* Read open of a store from before spans were packed: refused, naming
 * the upgrade, and the file is left as it was (a reader never writes). */
static void test_read_open_of_an_old_store_names_the_upgrade(void **state)
{
    (void)state;
    char path[256], err[512] = "";
    path_of(path, sizeof path, "v1-read.db");
    make_v1_store(path);
    ms_store *s = NULL;
    assert_int_equal(ms_store_open(path, MS_STORE_READ, &s, err, sizeof err), -1);
    assert_null(s);
    if (!strstr(err, "is a store of version 1") || !strstr(err, "upgrade"))
        fail_msg("unexpected error: %s", err);
    sqlite3 *db = open_sql(path);
    assert_int_equal(one_int(db, "PRAGMA user_version"), 1); /* untouched */
    assert_int_equal(table_exists(db, "eval_runs"), 0);
    sqlite3_close(db);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void assert_refused_unchanged(const char *path, enum ms_store_mode mode, const char *needle)
{
    size_t n0, n1;
    char *before = slurp(path, &n0);
    char err[512] = "";
    ms_store *s = NULL;
    assert_int_equal(ms_store_open(path, mode, &s, err, sizeof err), -1);
    assert_null(s);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_non_null(strstr(err, path));
    char *after = slurp(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

static void test_refuses_a_file_that_is_not_sqlite(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "notes.txt");
    write_file(path, "these are my notes, not a database\n");
    assert_refused_unchanged(path, MS_STORE_WRITE, "not a SQLite database");
    assert_refused_unchanged(path, MS_STORE_READ, "not a SQLite database");
}

static void test_refuses_a_foreign_sqlite_database(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "other.db");
    sqlite3 *db = open_sql(path);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);"
                                      "INSERT INTO invoices VALUES (1, 9.5);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_refused_unchanged(path, MS_STORE_WRITE, "not a moonspan store");
}

static void test_refuses_a_newer_schema(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "newer.db");
    ms_tracer_close(open_tracer(path, 1), 0);
    sqlite3 *db = open_sql(path);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA user_version = 99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_refused_unchanged(path, MS_STORE_WRITE, "newer moonspan");
    assert_refused_unchanged(path, MS_STORE_READ, "newer moonspan");
}

static void test_read_mode_needs_an_existing_store(void **state)
{
    (void)state;
    char path[256], err[512];
    path_of(path, sizeof path, "missing.db");
    ms_store *s;
    assert_int_equal(ms_store_open(path, MS_STORE_READ, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "no moonspan database"));
    assert_int_equal(access(path, F_OK), -1); /* not created */
}

/* Profiler samples are written with their trace: one row per (span,
 * function), in the trace's transaction; a long trace's parts carry the
 * samples of the spans they hold, and samples a span gets after it was
 * written (a coroutine that went on in it) add to its rows. */
static void test_profiles_are_written_with_their_spans(void **state)
{
    (void)state;
    char path[256];
    path_of(path, sizeof path, "prof.db");
    ms_tracer *tr = open_tracer(path, 4);
    ms_trace *t = ms_tracer_acquire(tr);
    int64_t t0 = ms_mono_ns();
    ms_trace_start(t, "profiled", 8, t0, NULL, 0);
    uint32_t work = ms_span_begin(t, 0, "work", 4, t0 + 1);
    ms_span_add_samples(t, work, 1, "hot", 3, "s.lua", 5, 3, 40, 40000000);
    ms_span_add_samples(t, work, 2, "cheap", 5, "s.lua", 5, 9, 2, 2000000);
    ms_span_add_samples(t, 0, 3, "rep", 3, "[C]", 3, -1, 1, 1000000);
    ms_span_end(t, work, t0 + 2);
    assert_int_equal(ms_tracer_cut(tr, t, t0 + 3), 0); /* work goes in a part */
    ms_span_add_samples(t, work, 1, "hot", 3, "s.lua", 5, 3, 5, 5000000); /* after its part */
    ms_trace_end(t, t0 + 4);
    ms_tracer_submit(tr, t);
    assert_int_equal(ms_tracer_close(tr, 0), 0);

    sqlite3 *db = open_sql(path);
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_profiles"), 3);
    assert_int_equal(one_int(db, "SELECT samples FROM span_profiles WHERE function = 'hot'"), 45);
    assert_int_equal(one_int(db, "SELECT self_ns FROM span_profiles WHERE function = 'hot'"), 45000000);
    assert_int_equal(one_int(db, "SELECT p.span_index = s.span_index FROM span_profiles p"
                                 " JOIN spans s ON s.trace_row = p.trace_row AND s.name = 'work'"
                                 " WHERE p.function = 'cheap'"), 1);
    assert_int_equal(one_int(db, "SELECT line FROM span_profiles WHERE function = 'rep'"), -1);
    assert_int_equal(one_int(db, "SELECT span_index FROM span_profiles WHERE source = '[C]'"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM span_profiles p JOIN traces t"
                                 " ON t.id = p.trace_row WHERE t.name = 'profiled'"), 3);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_profiles_are_written_with_their_spans),
        cmocka_unit_test(test_full_queue_waits_and_drops_nothing),
        cmocka_unit_test(test_retained_trace_survives_the_write),
        cmocka_unit_test(test_observers_all_see_every_trace),
        cmocka_unit_test(test_refuses_a_file_that_is_not_sqlite),
        cmocka_unit_test(test_refuses_a_foreign_sqlite_database),
        cmocka_unit_test(test_refuses_a_newer_schema),
        cmocka_unit_test(test_read_mode_needs_an_existing_store),
        cmocka_unit_test(test_replayed_calls),
        cmocka_unit_test(test_migrates_v1_on_write_open),
        cmocka_unit_test(test_failed_migration_changes_nothing),
        cmocka_unit_test(test_read_open_of_an_old_store_names_the_upgrade),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
