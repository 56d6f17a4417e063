/* ms_otlp — `moonspan export otlp`'s reading side (ms_otlp.h): lists the
 * selected traces, then walks them a batch at a time, each batch in a
 * snapshot of its own that ends before the batch is sent; maps each span
 * (ms_otlp_map.c), encodes it into the batch (ms_otlp_proto.c or
 * ms_otlp_json.c), and hands full batches to the caller's sender. */
#include "ms_otlp.h"

#include "ms_clock.h"
#include "ms_otlp_logs.h"
#include "ms_otlp_span.h"
#include "ms_read.h"
#include "ms_spans.h"

#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
    const ms_otlp_opts *o;
    ms_otlp_send_fn send;
    void *ud;
    ms_buf spans, body;
    int64_t nspans;     /* in the batch: spans, or log records */
    ms_otlp_totals *tot;
    ms_otlp_logs logs;
    int64_t observed_ns; /* the log records' observed time: the export's */
} batch;

/* Sends the batch when it holds spans. Returns 0, or 1 when the sender
 * stopped the export, -2 out of memory. */
static int flush(batch *b)
{
    if (b->nspans == 0)
        return 0;
    ms_buf_reset(&b->body);
    if (b->o->json)
        ms_otlp_json_envelope(&b->body, b->o->logs ? MS_OTLP_LOGS : MS_OTLP_TRACES, b->o->resource,
                              b->o->nresource, &b->spans);
    else
        ms_otlp_proto_request(&b->body, b->o->resource, b->o->nresource, &b->spans);
    if (b->body.oom)
        return -2;
    int64_t n = b->nspans;
    ms_buf_reset(&b->spans);
    b->nspans = 0;
    b->tot->requests++;
    if (b->o->logs)
        b->tot->records += n;
    else
        b->tot->spans += n;
    return b->send(b->ud, &b->body, n) ? 1 : 0;
}

/* Encodes one span into the batch: 0, 2 once the batch is full (to be
 * sent), -2 out of memory. */
static int add(batch *b, const ms_otlp_span *s)
{
    int64_t n = 1;
    if (b->o->logs) {
        b->tot->spans++;
        n = ms_otlp_logs_of_span(&b->logs, &b->spans, b->o->json, s, b->observed_ns);
    } else if (b->o->json) {
        ms_otlp_json_span(&b->spans, s);
    } else {
        ms_otlp_proto_span(&b->spans, s);
    }
    if (b->spans.oom || n < 0)
        return -2;
    size_t max = b->o->batch_spans ? b->o->batch_spans : MS_OTLP_BATCH_SPANS;
    if ((size_t)(b->nspans += n) >= max || b->spans.len >= MS_OTLP_BATCH_BYTES)
        return 2;
    return 0;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* The 32 hex digits of a stored trace id as 16 bytes. 0, or -1. */
static int parse_trace_id(const unsigned char *s, uint8_t out[16])
{
    if (!s || strlen((const char *)s) != 32)
        return -1;
    int nonzero = 0;
    for (int i = 0; i < 16; i++) {
        if (!isxdigit(s[2 * i]) || !isxdigit(s[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
        nonzero |= out[i];
    }
    return nonzero ? 0 : -1;
}

static int parse_status(const unsigned char *s)
{
    for (int st = MS_STATUS_OK; st <= MS_STATUS_INCOMPLETE; st++)
        if (s && strcmp((const char *)s, ms_status_name(st)) == 0)
            return st;
    return MS_STATUS_ERROR;
}

enum { C_ROW, C_TRACE_ID, C_NAME, C_START, C_DURATION, C_STATUS, C_SALT, C_PARTS, C_PARENT, C_SAMPLED,
       C_SPANS, C_SPAN_COUNT, C_ERRORS, C_IN, C_OUT, C_CACHE_READ, C_CACHE_WRITE, C_COST };

static const char ROW_SQL[] =
    "SELECT t.id, t.trace_id, t.name, t.start_ns, t.duration_ns, t.status, t.span_salt,"
    " t.parts, t.parent_span, t.sampled_out, t.spans, t.span_count, t.error_count,"
    " t.input_tokens, t.output_tokens, t.cache_read_tokens, t.cache_write_tokens,"
    " t.cost_usd FROM traces t WHERE t.id = ?1";

int ms_otlp_rows_select(sqlite3 *db, const ms_select *sel, ms_otlp_rows *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT t.id FROM traces t");
    sqlite3_stmt *st;
    if (ms_select_prepare(db, sel, &sql, " ORDER BY t.start_ns, t.id", &st, err, errlen))
        return -1;
    int own, ret = -1;
    if (ms_read_begin(db, &own, err, errlen))
        goto done;
    if (ms_select_bind(db, st, sel, err, errlen))
        goto end;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)&out->row, &out->cap, out->n, sizeof *out->row)) {
            ms_errf(err, errlen, "out of memory listing the traces");
            goto end;
        }
        out->row[out->n++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE)
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
    else
        ret = 0;
end:
    sqlite3_reset(st);
    ms_read_end(db, own, NULL, 0);
done:
    sqlite3_finalize(st);
    if (ret)
        ms_otlp_rows_free(out);
    return ret;
}

void ms_otlp_rows_free(ms_otlp_rows *r)
{
    free(r->row);
    memset(r, 0, sizeof *r);
}

/* Where filling goes on: row rows[i], past the first `skip` spans of it
 * already in a batch (a trace may span two). */
typedef struct cursor {
    size_t i;
    int64_t skip;
} cursor;

/* Encodes rows from c on into the batch, in the caller's snapshot, until
 * the batch is full (2; c says where to go on) or every row is in (0).
 * -1 with err (the store, a corrupt trace, out of memory). */
static int fill(batch *b, sqlite3 *db, sqlite3_stmt *st, ms_spans_walk *w, ms_otlp_mapper *m,
                const ms_otlp_rows *rows, cursor *c, char *err, size_t errlen)
{
    for (; c->i < rows->n; c->i++, c->skip = 0) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, rows->row[c->i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) /* nothing deletes a trace row; were one gone, there is nothing to send */
            continue;
        if (rc != SQLITE_ROW)
            return ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        ms_otlp_trace_row t = {0};
        const unsigned char *tid = sqlite3_column_text(st, C_TRACE_ID);
        if (parse_trace_id(tid, t.trace_id))
            return ms_errf(err, errlen, "trace row %lld has no valid trace id ('%s'); the store is damaged",
                           (long long)sqlite3_column_int64(st, C_ROW), tid ? (const char *)tid : "");
        t.start_ns = sqlite3_column_int64(st, C_START);
        t.duration_ns = sqlite3_column_int64(st, C_DURATION);
        t.status = parse_status(sqlite3_column_text(st, C_STATUS));
        t.salt = (uint64_t)sqlite3_column_int64(st, C_SALT);
        t.remote_parent = (uint64_t)sqlite3_column_int64(st, C_PARENT);
        if (c->skip == 0)
            b->tot->traces++;
        ms_otlp_span span;
        int mrc;
        if (sqlite3_column_int64(st, C_SAMPLED) && sqlite3_column_type(st, C_SPANS) == SQLITE_NULL &&
            sqlite3_column_int64(st, C_PARTS) == 0) {
            if (c->skip) /* its one span went in the last batch */
                continue;
            const unsigned char *name = sqlite3_column_text(st, C_NAME);
            t.name = name ? (const char *)name : "";
            t.span_count = sqlite3_column_int64(st, C_SPAN_COUNT);
            t.error_count = sqlite3_column_int64(st, C_ERRORS);
            t.input = sqlite3_column_int64(st, C_IN);
            t.output = sqlite3_column_int64(st, C_OUT);
            t.cache_read = sqlite3_column_int64(st, C_CACHE_READ);
            t.cache_write = sqlite3_column_int64(st, C_CACHE_WRITE);
            t.has_cost = sqlite3_column_type(st, C_COST) != SQLITE_NULL;
            t.cost = sqlite3_column_double(st, C_COST);
            if ((mrc = ms_otlp_map_summary(m, &t, &span)) != 0)
                goto map_failed;
            if ((mrc = add(b, &span)) < 0)
                goto oom;
            if (mrc == 2) {
                c->skip = 1;
                return 2;
            }
            continue;
        }
        ms_spans_walk_trace(w, sqlite3_column_int64(st, C_ROW), sqlite3_column_int64(st, C_PARTS), t.salt,
                            sqlite3_column_blob(st, C_SPANS), (size_t)sqlite3_column_bytes(st, C_SPANS));
        ms_span_rec sp;
        int wrc;
        int64_t k = 0;
        while ((wrc = ms_spans_walk_next(w, &sp)) == 1) {
            if (k++ < c->skip) /* in an earlier batch: walked again for the ids it gives its children */
                continue;
            if ((mrc = ms_otlp_map_span(m, &t, w, &sp, &span)) != 0)
                goto map_failed;
            if ((mrc = add(b, &span)) < 0)
                goto oom;
            if (mrc == 2) {
                c->skip = k;
                return 2;
            }
        }
        if (wrc < 0)
            return ms_errf(err, errlen, "trace %s: its stored spans are corrupt (%s)", tid,
                           w->error ? w->error : w->r.error ? w->r.error : "?");
        continue;
    map_failed:
        if (mrc == -1)
            return ms_errf(err, errlen, "trace %s: a span's stored attributes or events are corrupt", tid);
    oom:
        return ms_errf(err, errlen, "out of memory encoding trace %s", tid);
    }
    return 0;
}

int ms_otlp_export_rows(sqlite3 *db, const ms_otlp_rows *rows, const ms_otlp_opts *o, ms_otlp_send_fn send,
                        void *ud, ms_otlp_totals *tot, char *err, size_t errlen)
{
    memset(tot, 0, sizeof *tot);
    /* inside the caller's transaction, its snapshot would stay open while
     * a request is in flight */
    assert(sqlite3_get_autocommit(db));
    ms_clock_init();
    int ret = -1, walking = 0;
    sqlite3_stmt *st = NULL;
    ms_spans_walk w;
    ms_otlp_mapper m = {0};
    batch b = {.o = o, .send = send, .ud = ud, .tot = tot, .observed_ns = ms_epoch_ns()};
    if (ms_read_prepare(db, ROW_SQL, &st, err, errlen))
        goto done;
    if (ms_spans_walk_open(&w, db, err, errlen))
        goto done;
    walking = 1;
    cursor c = {0};
    for (;;) {
        int own;
        if (ms_read_begin(db, &own, err, errlen))
            goto done;
        int rc = fill(&b, db, st, &w, &m, rows, &c, err, errlen);
        /* the snapshot ends before the batch is sent: a receiver that
         * takes its time must not hold back the WAL's checkpoints */
        sqlite3_reset(st);
        ms_spans_walk_release(&w);
        ms_read_end(db, own, NULL, 0);
        if (rc < 0)
            goto done;
        int frc = flush(&b);
        if (frc == -2) {
            ms_errf(err, errlen, "out of memory encoding a batch");
            goto done;
        }
        if (frc == 1) {
            ret = 1;
            goto done;
        }
        if (rc == 0)
            break;
    }
    ret = 0;
done:
    if (walking)
        ms_spans_walk_close(&w);
    sqlite3_finalize(st);
    ms_otlp_mapper_free(&m);
    ms_buf_free(&b.spans);
    ms_buf_free(&b.body);
    ms_otlp_logs_free(&b.logs);
    return ret;
}

int ms_otlp_export(sqlite3 *db, const ms_select *sel, const ms_otlp_opts *o,
                   ms_otlp_send_fn send, void *ud, ms_otlp_totals *tot, char *err, size_t errlen)
{
    ms_otlp_rows rows;
    memset(tot, 0, sizeof *tot);
    if (ms_otlp_rows_select(db, sel, &rows, err, errlen))
        return -1;
    int rc = ms_otlp_export_rows(db, &rows, o, send, ud, tot, err, errlen);
    ms_otlp_rows_free(&rows);
    return rc;
}
