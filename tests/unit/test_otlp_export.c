/* ms_otlp_export: every stored span is handed over exactly once when the
 * batches cut traces (and a sampled-out summary) apart, and no read
 * transaction is open while a batch is being sent: from inside the send
 * callback another connection writes and then checkpoints the WAL in
 * TRUNCATE mode, which an open reader's snapshot would make busy. */
#include "store_fixture.h"

#include "ms_otlp.h"
#include "ms_tracer.h"

#define TRACES 5
#define SPANS 7 /* a root and six children */
#define BATCH 4

typedef struct sent {
    sqlite3 *reader;   /* the export's connection */
    sqlite3 *writer;   /* another process's, in effect */
    int calls;
    int64_t spans;
    char ids[TRACES * SPANS + 8][17];
    int nids;
} sent;

/* Collects the span ids of an OTLP/JSON body and, while the export waits
 * for this call, writes and checkpoints through the other connection. */
static int on_send(void *ud, const ms_buf *body, int64_t nspans)
{
    sent *s = ud;
    s->calls++;
    s->spans += nspans;
    assert_true(sqlite3_get_autocommit(s->reader));
    for (sqlite3_stmt *st = sqlite3_next_stmt(s->reader, NULL); st; st = sqlite3_next_stmt(s->reader, st))
        assert_false(sqlite3_stmt_busy(st));
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO meanwhile VALUES (%d)", s->calls);
    assert_int_equal(sqlite3_exec(s->writer, sql, NULL, NULL, NULL), SQLITE_OK);
    int log = -1, done = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(s->writer, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done),
                     SQLITE_OK);
    assert_int_equal(log, 0); /* truncated: every frame was copied back */

    char *text = strndup(body->data, body->len);
    assert_non_null(text);
    int64_t found = 0;
    for (const char *p = text; (p = strstr(p, "\"spanId\":\"")); p += 10) {
        assert_true(s->nids < (int)(sizeof s->ids / sizeof s->ids[0]));
        memcpy(s->ids[s->nids], p + 10, 16);
        s->ids[s->nids++][16] = '\0';
        found++;
    }
    free(text);
    assert_int_equal(found, nspans);
    return 0;
}

static void write_traces(const char *path)
{
    char err[512];
    ms_store *st;
    if (ms_store_open(path, MS_STORE_WRITE, &st, err, sizeof err))
        fail_msg("%s", err);
    ms_tracer *tr;
    assert_int_equal(ms_tracer_open(st, 8, &tr), 0);
    for (int i = 0; i < TRACES; i++) {
        ms_trace *t = ms_tracer_acquire(tr);
        int64_t t0 = D1 + i * SEC;
        assert_int_equal(ms_trace_start(t, "answer", 6, t0, NULL, 0), 0);
        for (int k = 1; k < SPANS; k++)
            ms_span_end(t, ms_span_begin(t, 0, "step", 4, t0 + k * MS), t0 + k * MS + MS / 2);
        ms_trace_end(t, t0 + SPANS * MS);
        ms_tracer_submit(tr, t);
    }
    assert_int_equal(ms_tracer_close(tr, 0), 0);
}

static void test_batches_between_snapshots(void **state)
{
    (void)state;
    char path[64] = "/tmp/ms_test_otlp_export_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    write_traces(path);

    sent s = {0};
    assert_int_equal(sqlite3_open(path, &s.writer), SQLITE_OK);
    sqlite3_busy_timeout(s.writer, 2000);
    /* the second trace kept as its summary only, as sampling leaves it:
     * with BATCH 4 it is the last span of the second request */
    assert_int_equal(sqlite3_exec(s.writer,
                                  "CREATE TABLE meanwhile (n);"
                                  "UPDATE traces SET sampled_out = 1, spans = NULL, parts = 0"
                                  " WHERE id = (SELECT id FROM traces ORDER BY start_ns LIMIT 1 OFFSET 1)",
                                  NULL, NULL, NULL), SQLITE_OK);

    char err[512];
    ms_store *rs;
    if (ms_store_open(path, MS_STORE_READ, &rs, err, sizeof err))
        fail_msg("%s", err);
    s.reader = ms_store_db(rs);
    ms_select sel = {0};
    ms_otlp_opts o = {.json = 1, .batch_spans = BATCH};
    ms_otlp_totals tot;
    int rc = ms_otlp_export(s.reader, &sel, &o, on_send, &s, &tot, err, sizeof err);
    if (rc)
        fail_msg("%d: %s", rc, err);

    int64_t want = (TRACES - 1) * SPANS + 1;
    assert_int_equal(tot.traces, TRACES);
    assert_int_equal(tot.spans, want);
    assert_int_equal(s.spans, want);
    assert_int_equal(s.nids, want);
    assert_int_equal(tot.requests, (want + BATCH - 1) / BATCH);
    assert_int_equal(s.calls, tot.requests);
    for (int i = 0; i < s.nids; i++)
        for (int j = i + 1; j < s.nids; j++)
            if (strcmp(s.ids[i], s.ids[j]) == 0)
                fail_msg("span %s sent twice", s.ids[i]);

    ms_store_close(rs);
    sqlite3_close(s.writer);
    char p[96];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_between_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
