/* ms_store_write — the writer side of the SQLite store: batches of ended
 * traces and of parts of open ones, each trace one row with its spans
 * packed (ms_pack.h), in one transaction per batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_clock.h"
#include "ms_store_impl.h"
#include "ms_who.h"

static const char INS_TRACE[] =
    "INSERT INTO traces (trace_id, run_id, name, start_ns, duration_ns, status, error_count,"
    " span_count, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,"
    " unknown_cost_calls, attrs, replayed_cost_usd, span_salt, parent_span, parts, spans, sampled_out,"
    " session, user_id, tags)"
    " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?22,?23,?24,"
    MS_WHO_TAGS_OF("?25") ")";
/* the same values, for the row of a trace written in parts */
static const char UPD_TRACE[] =
    "UPDATE traces SET duration_ns = ?5, status = ?6, error_count = ?7, span_count = ?8,"
    " input_tokens = ?9, output_tokens = ?10, cache_read_tokens = ?11, cache_write_tokens = ?12,"
    " cost_usd = ?13, unknown_cost_calls = ?14, attrs = ?15, replayed_cost_usd = ?16, parts = ?19,"
    " spans = ?20, session = ?23, user_id = ?24, tags = " MS_WHO_TAGS_OF("?25") " WHERE id = ?21";
static const char INS_PART[] = "INSERT INTO trace_parts (trace_row, seq, spans) VALUES (?1, ?2, ?3)";
/* profiler samples; a span already written (one a coroutine went on
 * sampling in after it ended) adds to its rows */
static const char INS_PROF[] =
    "INSERT INTO span_profiles (trace_row, span_index, function, source, line, samples, self_ns)"
    " VALUES (?1,?2,?3,?4,?5,?6,?7) ON CONFLICT DO UPDATE SET samples = samples + excluded.samples,"
    " self_ns = self_ns + excluded.self_ns";

int ms_store_writer_open_(ms_store *s, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(s->db, INS_TRACE, -1, &s->ins_trace, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, UPD_TRACE, -1, &s->upd_trace, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, INS_PART, -1, &s->ins_part, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, INS_PROF, -1, &s->ins_prof, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
    if (!(s->enc = ms_pack_encoder_new()))
        return ms_errf(err, errlen, "out of memory opening %s", s->path);
    return 0;
}

void ms_store_writer_close_(ms_store *s)
{
    sqlite3_finalize(s->ins_trace);
    sqlite3_finalize(s->upd_trace);
    sqlite3_finalize(s->ins_part);
    sqlite3_finalize(s->ins_prof);
    ms_pack_encoder_free(s->enc);
    ms_buf_free(&s->blob);
    ms_buf_free(&s->scratch);
    free(s->rows);
    free(s->rows_saved);
}

/* --- traces written in parts ----------------------------------------------- */

static int64_t find_row(const ms_store *s, uint64_t uid)
{
    for (size_t i = 0; i < s->nrows; i++)
        if (s->rows[i].uid == uid)
            return s->rows[i].row;
    return 0;
}

static int remember_row(ms_store *s, uint64_t uid, int64_t row)
{
    if (s->nrows == s->caprows) {
        size_t cap = s->caprows ? s->caprows * 2 : 8;
        ms_open_row *r = realloc(s->rows, cap * sizeof *r);
        if (!r)
            return -1;
        s->rows = r;
        s->caprows = cap;
    }
    s->rows[s->nrows++] = (ms_open_row){uid, row};
    return 0;
}

static void forget_row(ms_store *s, uint64_t uid)
{
    for (size_t i = 0; i < s->nrows; i++) {
        if (s->rows[i].uid == uid) {
            s->rows[i] = s->rows[--s->nrows];
            return;
        }
    }
}

/* A batch that rolls back must not keep the rows it remembered. */
static int save_rows(ms_store *s)
{
    ms_open_row *r = realloc(s->rows_saved, (s->nrows ? s->nrows : 1) * sizeof *r);
    if (!r)
        return -1;
    s->rows_saved = r;
    if (s->nrows)
        memcpy(r, s->rows, s->nrows * sizeof *r);
    s->nsaved = s->nrows;
    return 0;
}

static void restore_rows(ms_store *s)
{
    if (s->nsaved)
        memcpy(s->rows, s->rows_saved, s->nsaved * sizeof *s->rows);
    s->nrows = s->nsaved;
}

/* --- one item --------------------------------------------------------------- */

/* Runs a bound statement and resets it. Returns the SQLite result code. */
static int step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void bind_opt_double(sqlite3_stmt *st, int col, double v, int present)
{
    if (present && !isnan(v))
        sqlite3_bind_double(st, col, v);
    else
        sqlite3_bind_null(st, col);
}

/* Binds the root span's attribute `key` as text to parameter col (NULL
 * when the root has none): the session, user and tags columns, valued as
 * the migration values them from attrs (ms_who.h). `num` holds a
 * number's text until the statement has run. */
static void bind_root_attr(sqlite3_stmt *st, int col, const ms_trace *t, const char *key, char *num,
                           size_t numlen)
{
    const ms_attr *a = ms_span_attr(t, ms_trace_span(t, 0), key, strlen(key));
    if (!a) {
        sqlite3_bind_null(st, col);
        return;
    }
    switch (a->type) {
    case MS_ATTR_STRING:
        sqlite3_bind_text(st, col, ms_trace_str(t, a->v.s), (int)a->v.s.len, SQLITE_STATIC);
        return;
    case MS_ATTR_INT: snprintf(num, numlen, "%lld", (long long)a->v.i); break;
    case MS_ATTR_DOUBLE: snprintf(num, numlen, "%.15g", a->v.d); break;
    default: snprintf(num, numlen, "%d", a->v.i ? 1 : 0); break; /* JSON true reads as 1 */
    }
    sqlite3_bind_text(st, col, num, -1, SQLITE_STATIC);
}

/* Binds what INS_TRACE and UPD_TRACE share: the trace as it stands. */
static int bind_trace(ms_store *s, sqlite3_stmt *st, const ms_trace *t, const ms_trace_totals *tot,
                      int status, int64_t duration, int64_t span_count, int64_t parts, int with_spans)
{
    ms_trace_id_hex(&t->id, s->hex);
    const ms_span *root = ms_trace_span(t, 0);
    sqlite3_bind_text(st, 1, s->hex, 32, SQLITE_STATIC);
    if (t->run_id)
        sqlite3_bind_int64(st, 2, t->run_id);
    else
        sqlite3_bind_null(st, 2);
    if (root)
        sqlite3_bind_text(st, 3, ms_trace_str(t, root->name), (int)root->name.len, SQLITE_STATIC);
    else
        sqlite3_bind_text(st, 3, "?", 1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ms_mono_to_epoch(t->start));
    sqlite3_bind_int64(st, 5, duration > 0 ? duration : 0);
    sqlite3_bind_text(st, 6, ms_status_name(status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, tot->errors);
    sqlite3_bind_int64(st, 8, span_count);
    sqlite3_bind_int64(st, 9, tot->tokens.input);
    sqlite3_bind_int64(st, 10, tot->tokens.output);
    sqlite3_bind_int64(st, 11, tot->tokens.cache_read);
    sqlite3_bind_int64(st, 12, tot->tokens.cache_write);
    bind_opt_double(st, 13, tot->cost_usd, 1);
    sqlite3_bind_int64(st, 14, tot->unknown_cost_calls);
    ms_buf_reset(&s->scratch);
    ms_span_attrs_json(t, 0, &s->scratch);
    if (s->scratch.oom)
        return SQLITE_NOMEM;
    if (s->scratch.len)
        sqlite3_bind_text(st, 15, s->scratch.data, (int)s->scratch.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 15);
    bind_opt_double(st, 16, tot->replayed_cost_usd, tot->replayed_calls > 0);
    sqlite3_bind_int64(st, 17, (int64_t)t->salt);
    if (t->remote_parent)
        sqlite3_bind_int64(st, 18, (int64_t)t->remote_parent);
    else
        sqlite3_bind_null(st, 18);
    sqlite3_bind_int64(st, 19, parts);
    if (with_spans)
        sqlite3_bind_blob(st, 20, s->blob.data, (int)s->blob.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 20);
    bind_root_attr(st, 23, t, "session", s->who_num[0], sizeof s->who_num[0]);
    bind_root_attr(st, 24, t, "user", s->who_num[1], sizeof s->who_num[1]);
    bind_root_attr(st, 25, t, "tags", s->who_num[2], sizeof s->who_num[2]);
    return SQLITE_OK;
}

static int insert_trace(ms_store *s, const ms_trace *t, const ms_trace_totals *tot, int status,
                        int64_t duration, int64_t span_count, int64_t parts, int with_spans,
                        int64_t *row)
{
    int rc = bind_trace(s, s->ins_trace, t, tot, status, duration, span_count, parts, with_spans);
    sqlite3_bind_int(s->ins_trace, 22, t->sampled_out);
    if (rc == SQLITE_OK && (rc = step(s->ins_trace)) == SQLITE_OK)
        *row = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int update_trace(ms_store *s, const ms_trace *t, const ms_trace_totals *tot, int status,
                        int64_t duration, int64_t span_count, int64_t parts, int with_spans, int64_t row)
{
    int rc = bind_trace(s, s->upd_trace, t, tot, status, duration, span_count, parts, with_spans);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(s->upd_trace, 21, row);
    return step(s->upd_trace);
}

static int insert_part(ms_store *s, int64_t row, uint32_t seq)
{
    sqlite3_bind_int64(s->ins_part, 1, row);
    sqlite3_bind_int64(s->ins_part, 2, seq);
    sqlite3_bind_blob(s->ins_part, 3, s->blob.data, (int)s->blob.len, SQLITE_STATIC);
    return step(s->ins_part);
}

/* Writes the profiler samples the item carries, for its trace's `row`. */
static int insert_profile(ms_store *s, const ms_trace *t, int64_t row)
{
    sqlite3_stmt *st = s->ins_prof;
    for (uint32_t i = 0; i < t->nprof; i++) {
        const ms_prof *p = &t->prof[i];
        if (!p->samples)
            continue;
        sqlite3_bind_int64(st, 1, row);
        sqlite3_bind_int64(st, 2, p->span);
        sqlite3_bind_text(st, 3, ms_trace_str(t, p->function), (int)p->function.len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, ms_trace_str(t, p->source), (int)p->source.len, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, p->line);
        sqlite3_bind_int64(st, 6, p->samples);
        sqlite3_bind_int64(st, 7, p->self_ns);
        int rc = step(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Writes one item: a whole trace, a part cut from an open one (its row is
 * made by the first part, kept 'incomplete' and up to date by the next),
 * or the last part of one (the row gets its final state). */
static int write_item(ms_store *s, const ms_trace *t)
{
    const ms_span *root = ms_trace_span(t, 0);
    if (t->sampled_out && t->part == MS_PART_WHOLE) { /* its summary only */
        ms_trace_totals tot;
        ms_trace_totals_get(t, &tot);
        int64_t row;
        return insert_trace(s, t, &tot, ms_trace_status(t), root ? root->end - root->start : 0, t->nspans,
                            0, 0, &row);
    }
    ms_buf_reset(&s->blob);
    long n = ms_pack_encode(s->enc, t, &s->blob);
    if (n < 0)
        return SQLITE_NOMEM;
    int64_t row = t->part == MS_PART_WHOLE ? 0 : find_row(s, t->uid);
    int rc;
    if (t->part == MS_PART_CUT) {
        int64_t so_far = t->part_time - t->start;
        if (!row) {
            rc = insert_trace(s, t, &t->part_totals, MS_STATUS_INCOMPLETE, so_far, t->part_spans,
                              t->part_seq + 1, 0, &row);
            if (rc == SQLITE_OK && remember_row(s, t->uid, row))
                rc = SQLITE_NOMEM;
        } else {
            rc = update_trace(s, t, &t->part_totals, MS_STATUS_INCOMPLETE, so_far, t->part_spans,
                              t->part_seq + 1, 0, row);
        }
        if (rc == SQLITE_OK)
            rc = insert_part(s, row, t->part_seq);
    } else {
        ms_trace_totals tot;
        ms_trace_totals_get(t, &tot);
        int64_t duration = root ? root->end - root->start : 0;
        int64_t spans = (int64_t)t->cut_spans + n;
        if (!row) {
            rc = insert_trace(s, t, &tot, ms_trace_status(t), duration, spans, t->part_seq, 1, &row);
        } else {
            rc = update_trace(s, t, &tot, ms_trace_status(t), duration, spans, t->part_seq, 1, row);
            if (rc == SQLITE_OK)
                forget_row(s, t->uid);
        }
    }
    return rc == SQLITE_OK && t->nprof ? insert_profile(s, t, row) : rc;
}

/* One attempt at the whole batch in one transaction. */
static int write_batch(ms_store *s, ms_trace *const *traces, size_t n)
{
    if (save_rows(s))
        return SQLITE_NOMEM;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (traces[i]->nspans == 0)
            continue;
        if ((rc = write_item(s, traces[i])) != SQLITE_OK)
            goto rollback;
    }
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return rc;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    restore_rows(s);
    return rc;
}

int ms_sqlite_write_(ms_store *s, ms_trace *const *traces, size_t n, char *err, size_t errlen)
{
    int rc = SQLITE_OK;
    /* the busy timeout already waited; a few more rounds cover long writers elsewhere */
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = write_batch(s, traces, n);
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
    }
    if (rc == SQLITE_OK)
        return MS_WRITE_OK;
    ms_errf(err, errlen, "writing traces to %s failed: %s", s->path, sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
        return MS_WRITE_AGAIN;
    default:
        return MS_WRITE_FAILED;
    }
}

void ms_sqlite_checkpoint_(ms_store *s)
{
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}
