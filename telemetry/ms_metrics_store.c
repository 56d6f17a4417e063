/* ms_metrics_store — feeds the registry from a store's traces, reading
 * only what is new at each update (see ms_metrics_store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_metrics_store.h"
#include "ms_otlp_schema.h"
#include "ms_read.h"
#include "ms_select.h"
#include "ms_spans.h"
#include "ms_trace.h"

struct ms_metrics_store {
    sqlite3 *db;
    ms_metrics *m;
    int packed;              /* schema v4+: spans packed in traces.spans */
    int sampled;             /* traces.sampled_out exists (packed stores only) */
    sqlite3_stmt *after;     /* rows after the last seen */
    sqlite3_stmt *by_id;     /* a row seen open, again */
    ms_spans_walk walk;
    int64_t last_id;
    int64_t *pending;        /* rows seen open (written in parts), in id order */
    size_t npending, cap_pending;
    uint64_t rows;
};

/* Columns: id, name, duration_ns, status, parts, span_salt, spans, open */
#define COLS_PACKED "id, name, duration_ns, status, parts, span_salt, spans, " \
    "(spans IS NULL AND parts > 0 AND %s) AS open FROM traces "
#define COLS_OLD "id, name, duration_ns, status, 0, 0, NULL, 0 FROM traces "

int ms_metrics_store_open(sqlite3 *db, ms_metrics *m, ms_metrics_store **out, char *err, size_t errlen)
{
    *out = NULL;
    ms_metrics_store *ms = calloc(1, sizeof *ms);
    if (!ms)
        return ms_errf(err, errlen, "out of memory");
    ms->db = db;
    ms->m = m;
    int packed = ms_schema_has(db, "traces", "spans", err, errlen);
    int sampled = packed == 1 ? ms_schema_has(db, "traces", "sampled_out", err, errlen) : 0;
    if (packed < 0 || sampled < 0) {
        free(ms);
        return -1;
    }
    ms->packed = packed;
    ms->sampled = sampled;
    char cols[256], sql[512];
    if (packed)
        snprintf(cols, sizeof cols, COLS_PACKED, sampled ? "sampled_out = 0" : "1");
    else
        snprintf(cols, sizeof cols, "%s", COLS_OLD);
    snprintf(sql, sizeof sql, "SELECT %s WHERE id > ?1 ORDER BY id", cols);
    if (ms_read_prepare(db, sql, &ms->after, err, errlen))
        goto fail;
    snprintf(sql, sizeof sql, "SELECT %s WHERE id = ?1", cols);
    if (ms_read_prepare(db, sql, &ms->by_id, err, errlen))
        goto fail;
    if (packed && ms_spans_walk_open(&ms->walk, db, err, errlen))
        goto fail;
    *out = ms;
    return 0;
fail:
    ms_metrics_store_close(ms);
    return -1;
}

void ms_metrics_store_close(ms_metrics_store *ms)
{
    if (!ms)
        return;
    sqlite3_finalize(ms->after);
    sqlite3_finalize(ms->by_id);
    if (ms->walk.parts)
        ms_spans_walk_close(&ms->walk);
    free(ms->pending);
    free(ms);
}

uint64_t ms_metrics_store_rows(const ms_metrics_store *ms) { return ms->rows; }

static ms_mstr pstr(ms_pstr s) { return (ms_mstr){s.p ? s.p : "", s.len}; }

static int error_event(void *ud, const ms_event_rec *e)
{
    if (e->has_error)
        ms_metrics_error(ud, pstr(e->error_type));
    return 0;
}

/* The string attribute `key` of span s (absent when it has none, or its
 * attributes are damaged: the metrics then fall back on the stored model). */
static ms_mstr str_attr(const ms_pack_reader *r, const ms_span_rec *s, const char *key, size_t klen)
{
    const uint8_t *p = s->attrs;
    for (uint32_t i = 0; i < s->nattrs; i++) {
        ms_attr_rec a;
        if (ms_pack_attr_at(r, &p, s->attrs_end, &a))
            break;
        if (a.type == MS_ATTR_STRING && a.key.len == klen && memcmp(a.key.p, key, klen) == 0)
            return (ms_mstr){a.s.p ? a.s.p : "", a.s.len};
    }
    return (ms_mstr){0};
}

/* The spans of the trace on the current row of st. */
static int read_spans(ms_metrics_store *ms, sqlite3_stmt *st, char *err, size_t errlen)
{
    ms_metrics *m = ms->m;
    const void *blob = sqlite3_column_blob(st, 6);
    size_t len = (size_t)sqlite3_column_bytes(st, 6);
    ms_spans_walk_trace(&ms->walk, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 4),
                        (uint64_t)sqlite3_column_int64(st, 5), blob, blob ? len : 0);
    ms_span_rec s;
    int rc;
    while ((rc = ms_spans_walk_next(&ms->walk, &s)) == 1) {
        if (s.parent != MS_NONE) {
            if (s.kind == MS_KIND_FOLD)
                ms_metrics_step(m, pstr(s.name), s.fold_count, s.fold_total);
            else
                ms_metrics_step(m, pstr(s.name), 1, s.duration);
        }
        ms_metrics_retries(m, s.retries);
        if (s.has_error && s.error_own)
            ms_metrics_error(m, pstr(s.error_type));
        if (s.has_llm) {
            ms_metrics_llm c = {
                .provider = pstr(s.provider), .model = pstr(s.model),
                .request_model = str_attr(&ms->walk.r, &s, MS_ATTR_GENAI_REQUEST_MODEL,
                                          sizeof MS_ATTR_GENAI_REQUEST_MODEL - 1),
                .error_type = s.has_error ? pstr(s.error_type) : (ms_mstr){0},
                .duration_ns = s.duration, .input = s.input, .output = s.output,
                .cache_read = s.cache_read, .cache_write = s.cache_write,
                .cost_usd = s.cost_usd, .ttft_ns = s.ttft_ns, .replayed = s.replayed,
            };
            ms_metrics_llm_call(m, &c);
        }
        if (s.nevents && ms_pack_events(&ms->walk.r, &s, error_event, m) < 0)
            return ms_errf(err, errlen, "trace row %lld: damaged span events",
                           (long long)sqlite3_column_int64(st, 0));
    }
    if (rc < 0)
        return ms_errf(err, errlen, "trace row %lld: %s", (long long)sqlite3_column_int64(st, 0),
                       ms->walk.error ? ms->walk.error : "damaged spans");
    return 0;
}

/* The finished trace on the current row of st. */
static int read_trace(ms_metrics_store *ms, sqlite3_stmt *st, char *err, size_t errlen)
{
    ms->rows++;
    const char *name = (const char *)sqlite3_column_text(st, 1);
    ms_metrics_request(ms->m, (ms_mstr){name ? name : "", (size_t)sqlite3_column_bytes(st, 1)},
                       sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3));
    return ms->packed ? read_spans(ms, st, err, errlen) : 0;
}

static int add_pending(ms_metrics_store *ms, int64_t id)
{
    if (ms_grow((void **)&ms->pending, &ms->cap_pending, ms->npending, sizeof *ms->pending))
        return -1;
    ms->pending[ms->npending++] = id;
    return 0;
}

static int update(ms_metrics_store *ms, char *err, size_t errlen)
{
    /* rows seen open: those that ended since are read now, once */
    size_t keep = 0;
    for (size_t i = 0; i < ms->npending; i++) {
        sqlite3_stmt *st = ms->by_id;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ms->pending[i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_int(st, 7)) {
            ms->pending[keep++] = ms->pending[i];
            continue;
        }
        if (rc == SQLITE_ROW && read_trace(ms, st, err, errlen)) {
            /* keep the rest for the next update */
            memmove(ms->pending + keep, ms->pending + i + 1, (ms->npending - i - 1) * sizeof *ms->pending);
            ms->npending = keep + ms->npending - i - 1;
            return -1;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return ms_errf(err, errlen, "cannot read the store: %s", sqlite3_errmsg(ms->db));
    }
    ms->npending = keep;
    sqlite3_stmt *st = ms->after;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, ms->last_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ms->last_id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int(st, 7)) {
            if (add_pending(ms, ms->last_id))
                return ms_errf(err, errlen, "out of memory");
        } else if (read_trace(ms, st, err, errlen)) {
            return -1;
        }
    }
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "cannot read the store: %s", sqlite3_errmsg(ms->db));
    return 0;
}

int ms_metrics_store_update(ms_metrics_store *ms, char *err, size_t errlen)
{
    int own = 0;
    if (ms_read_begin(ms->db, &own, err, errlen))
        return -1;
    ms_metrics_lock(ms->m);
    int rc = update(ms, err, errlen);
    ms_metrics_unlock(ms->m);
    sqlite3_reset(ms->after);
    sqlite3_reset(ms->by_id);
    if (ms_read_end(ms->db, own, rc ? NULL : err, errlen))
        rc = -1;
    return rc;
}

int ms_metrics_store_select(sqlite3 *db, const ms_select *sel, ms_metrics *m, uint64_t *rows,
                            int64_t *first_ns, char *err, size_t errlen)
{
    *rows = 0;
    *first_ns = 0;
    ms_metrics_store *ms;
    if (ms_metrics_store_open(db, m, &ms, err, errlen))
        return -1;
    /* the feeder's columns, then the start; open traces (written in parts,
     * not ended) are left out, as an update leaves them for later */
    ms_buf sql = {0};
    if (ms->packed)
        ms_buf_printf(&sql, "SELECT t.id, t.name, t.duration_ns, t.status, t.parts, t.span_salt, t.spans,"
                            " (t.spans IS NULL AND t.parts > 0 AND %s) AS open, t.start_ns FROM traces t",
                      ms->sampled ? "t.sampled_out = 0" : "1");
    else
        ms_buf_adds(&sql, "SELECT t.id, t.name, t.duration_ns, t.status, 0, 0, NULL, 0, t.start_ns FROM traces t");
    sqlite3_stmt *st;
    if (ms_select_prepare(db, sel, &sql, " ORDER BY t.id", &st, err, errlen)) {
        ms_metrics_store_close(ms);
        return -1;
    }
    int own = 0, rc = -1;
    if (ms_read_begin(db, &own, err, errlen))
        goto done;
    if (ms_select_bind(db, st, sel, err, errlen))
        goto end;
    ms_metrics_lock(m);
    int step;
    rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 7))
            continue;
        int64_t start = sqlite3_column_int64(st, 8);
        if (*rows == 0 || start < *first_ns)
            *first_ns = start;
        ++*rows;
        if (read_trace(ms, st, err, errlen)) {
            rc = -1;
            break;
        }
    }
    ms_metrics_unlock(m);
    if (rc == 0 && step != SQLITE_DONE)
        rc = ms_errf(err, errlen, "cannot read the store: %s", sqlite3_errmsg(db));
end:
    if (ms_read_end(db, own, rc ? NULL : err, errlen))
        rc = -1;
done:
    sqlite3_finalize(st);
    ms_metrics_store_close(ms);
    return rc;
}
