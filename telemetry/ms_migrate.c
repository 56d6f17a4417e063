/* ms_migrate — the one migration step that is not SQL: a version 3
 * store's spans and span_events rows become each trace's packed BLOB
 * (ms_pack.h). Every field is kept, span ids included (stored explicitly:
 * they were random); the old tables are dropped at the end. It runs inside
 * the migration's transaction, so a store is either all version 3 or all
 * version 4. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_store_impl.h"

static void (*progress_fn)(const char *what, int64_t done, int64_t total);

void ms_store_set_progress(void (*fn)(const char *what, int64_t done, int64_t total))
{
    progress_fn = fn;
}

/* span id -> gidx within one trace: open addressing, reused across traces */
typedef struct id_map {
    uint64_t *keys;
    uint32_t *vals;
    uint32_t cap, n;
} id_map;

static int map_reset(id_map *m, uint32_t want)
{
    uint32_t cap = 64;
    while (cap < want * 2)
        cap *= 2;
    if (cap > m->cap) {
        uint64_t *k = realloc(m->keys, cap * sizeof *k);
        if (!k)
            return -1;
        m->keys = k;
        uint32_t *v = realloc(m->vals, cap * sizeof *v);
        if (!v)
            return -1;
        m->vals = v;
        m->cap = cap;
    }
    memset(m->vals, 0xff, m->cap * sizeof *m->vals);
    m->n = 0;
    return 0;
}

static uint32_t *map_slot(id_map *m, uint64_t key)
{
    uint32_t j = (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (m->cap - 1);
    while (m->vals[j] != MS_NONE && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    m->keys[j] = key;
    return &m->vals[j];
}

static uint32_t map_get(id_map *m, uint64_t key)
{
    uint32_t j = (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (m->cap - 1);
    while (m->vals[j] != MS_NONE) {
        if (m->keys[j] == key)
            return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return MS_NONE;
}

static int parse_status(const unsigned char *s)
{
    if (!s)
        return MS_STATUS_OK;
    static const char *const names[] = {"ok", "error", "interrupted", "incomplete"};
    for (int i = 0; i < 4; i++)
        if (strcmp((const char *)s, names[i]) == 0)
            return i;
    return MS_STATUS_OK;
}

static int parse_kind(const unsigned char *s)
{
    if (s && strcmp((const char *)s, "trace") == 0)
        return MS_KIND_TRACE;
    if (s && strcmp((const char *)s, "llm") == 0)
        return MS_KIND_LLM;
    return MS_KIND_SPAN;
}

typedef struct migrator {
    ms_store *s;
    sqlite3_stmt *traces, *spans, *attrs, *events, *update;
    ms_trace t;
    id_map ids;
    uint32_t cap_ids;
} migrator;

static const char *text(sqlite3_stmt *st, int col) { return (const char *)sqlite3_column_text(st, col); }

/* Sets the attributes of span gidx from a JSON object text. */
static int put_attrs(migrator *m, uint32_t gidx, const char *json)
{
    sqlite3_stmt *st = m->attrs;
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = text(st, 0), *type = text(st, 1);
        if (!k || !type)
            continue;
        size_t kl = strlen(k);
        if (!strcmp(type, "integer"))
            ms_span_set_int(&m->t, gidx, k, kl, sqlite3_column_int64(st, 2));
        else if (!strcmp(type, "real"))
            ms_span_set_double(&m->t, gidx, k, kl, sqlite3_column_double(st, 2));
        else if (!strcmp(type, "true") || !strcmp(type, "false"))
            ms_span_set_bool(&m->t, gidx, k, kl, type[0] == 't');
        else if (sqlite3_column_type(st, 2) != SQLITE_NULL)
            ms_span_set_str(&m->t, gidx, k, kl, text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Rebuilds one trace from its rows into m->t. */
static int load_trace(migrator *m, int64_t row, int64_t first, int64_t count)
{
    ms_trace *t = &m->t;
    ms_trace_reset(t); /* frees t->ids */
    m->cap_ids = 0;
    if (map_reset(&m->ids, count > 0 ? (uint32_t)count : 1))
        return SQLITE_NOMEM;
    sqlite3_stmt *st = m->spans;
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, first + count - 1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
        uint32_t parent = MS_NONE;
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            parent = map_get(&m->ids, (uint64_t)sqlite3_column_int64(st, 1));
            if (parent == MS_NONE && t->nspans == 0)
                t->remote_parent = (uint64_t)sqlite3_column_int64(st, 1);
            else if (parent == MS_NONE)
                parent = 0; /* a parent outside the trace: hang it off the root */
        }
        int64_t start = sqlite3_column_int64(st, 4);
        const char *name = text(st, 2);
        if (t->nspans == 0)
            t->start = start;
        uint32_t gidx = ms_span_begin(t, parent, name ? name : "", name ? (size_t)sqlite3_column_bytes(st, 2) : 0,
                                      start);
        if (gidx == MS_NONE)
            return SQLITE_NOMEM;
        if (t->cap_spans > m->cap_ids) {
            uint64_t *ids = realloc(t->ids, t->cap_spans * sizeof *ids);
            if (!ids)
                return SQLITE_NOMEM;
            t->ids = ids;
            m->cap_ids = t->cap_spans;
        }
        t->ids[gidx] = id;
        *map_slot(&m->ids, id) = gidx;
        ms_span *sp = ms_trace_span(t, gidx);
        sp->kind = (uint8_t)parse_kind(sqlite3_column_text(st, 3));
        int64_t dur = sqlite3_column_int64(st, 5);
        sp->end = start + (dur > 0 ? dur : 0);
        if (sp->end == 0)
            sp->end = 1; /* 0 means open */
        int status = parse_status(sqlite3_column_text(st, 6));
        if (sqlite3_column_type(st, 8) != SQLITE_NULL || sqlite3_column_int(st, 7))
            ms_span_fail(t, gidx, sqlite3_column_int(st, 7), text(st, 8), text(st, 9),
                         (size_t)sqlite3_column_bytes(st, 9), text(st, 10));
        sp = ms_trace_span(t, gidx);
        sp->status = (uint8_t)status;
        if (sqlite3_column_type(st, 11) != SQLITE_NULL && (rc = put_attrs(m, gidx, text(st, 11))) != SQLITE_OK)
            break;
        if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
            ms_llm_usage u = {
                .provider = text(st, 12), .model = text(st, 13),
                .input = sqlite3_column_int64(st, 14), .output = sqlite3_column_int64(st, 15),
                .cache_read = sqlite3_column_int64(st, 16), .cache_write = sqlite3_column_int64(st, 17),
                .estimated = sqlite3_column_int(st, 18),
                .cost_usd = sqlite3_column_type(st, 19) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 19),
                .ttft_ns = sqlite3_column_type(st, 22) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 22),
                .replayed = sqlite3_column_int(st, 23),
            };
            ms_span_set_llm(t, gidx, &u);
            ms_trace_span(t, gidx)->kind = (uint8_t)parse_kind(sqlite3_column_text(st, 3));
        }
        if (sqlite3_column_int64(st, 20) > 0)
            ms_span_add_retries(t, gidx, (uint32_t)sqlite3_column_int64(st, 20), sqlite3_column_int(st, 21) == 1,
                                sqlite3_column_int64(st, 24));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rc;
    st = m->events;
    sqlite3_bind_int64(st, 1, row);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t gidx = map_get(&m->ids, (uint64_t)sqlite3_column_int64(st, 0));
        if (gidx == MS_NONE)
            continue;
        uint32_t before = t->nevents;
        const char *name = text(st, 1), *attrs = text(st, 3);
        ms_span_event(t, gidx, sqlite3_column_int64(st, 2), name ? name : "", name ? strlen(name) : 0,
                      attrs, attrs ? (size_t)sqlite3_column_bytes(st, 3) : 0);
        if (t->nevents > before && sqlite3_column_type(st, 4) != SQLITE_NULL) {
            ms_event *e = &t->events[before];
            e->error_type = ms_trace_put_(t, text(st, 4), (size_t)sqlite3_column_bytes(st, 4));
            const char *msg = text(st, 5);
            e->error_message = ms_trace_put_(t, msg ? msg : "", msg ? (size_t)sqlite3_column_bytes(st, 5) : 0);
            if (gidx == 0)
                t->manual_errors++;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rc;
    atomic_store(&t->state, MS_TRACE_ENDED);
    return t->oom ? SQLITE_NOMEM : SQLITE_OK;
}

int ms_migrate_v4_(ms_store *s, char *err, size_t errlen)
{
    migrator m;
    memset(&m, 0, sizeof m);
    m.s = s;
    int64_t total = 0;
    int rc = ms_store_int_(s->db, "SELECT count(*) FROM traces", &total);
    ms_pack_encoder *enc = ms_pack_encoder_new();
    ms_buf blob = {0};
    if (rc == SQLITE_OK && !enc)
        rc = SQLITE_NOMEM;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "SELECT id, first_span, span_count FROM traces ORDER BY id", -1,
                                &m.traces, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db,
            "SELECT span_id, parent_id, name, kind, start_ns, duration_ns, status, error_own,"
            " error_type, error_message, error_traceback, attrs, provider, model, input_tokens,"
            " output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, cost_usd,"
            " retries, retry_succeeded, ttft_ns, replayed, backoff_ns"
            " FROM spans WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid", -1, &m.spans, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "SELECT key, type, atom FROM json_each(?1)", -1, &m.attrs, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db,
            "SELECT span_id, name, time_ns, attrs, error_type, error_message FROM span_events"
            " WHERE trace_row = ?1 ORDER BY rowid", -1, &m.events, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db,
            "UPDATE traces SET spans = ?2, span_salt = 0, parent_span = ?3, parts = 0 WHERE id = ?1", -1,
            &m.update, NULL);
    int64_t done = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(m.traces)) == SQLITE_ROW) {
        int64_t row = sqlite3_column_int64(m.traces, 0);
        rc = load_trace(&m, row, sqlite3_column_int64(m.traces, 1), sqlite3_column_int64(m.traces, 2));
        if (rc != SQLITE_OK)
            break;
        ms_buf_reset(&blob);
        if (m.t.nspans && ms_pack_encode(enc, &m.t, &blob) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        sqlite3_bind_int64(m.update, 1, row);
        if (m.t.nspans)
            sqlite3_bind_blob(m.update, 2, blob.data, (int)blob.len, SQLITE_STATIC);
        else
            sqlite3_bind_null(m.update, 2);
        if (m.t.remote_parent)
            sqlite3_bind_int64(m.update, 3, (int64_t)m.t.remote_parent);
        else
            sqlite3_bind_null(m.update, 3);
        rc = sqlite3_step(m.update);
        sqlite3_reset(m.update);
        if (rc != SQLITE_DONE)
            break;
        rc = SQLITE_OK;
        if (++done % 2000 == 0 && progress_fn)
            progress_fn("repacking traces", done, total);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    int failed = rc != SQLITE_OK;
    if (failed)
        ms_errf(err, errlen, "%s: repacking the spans failed: %s", s->path,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
    sqlite3_finalize(m.traces);
    sqlite3_finalize(m.spans);
    sqlite3_finalize(m.attrs);
    sqlite3_finalize(m.events);
    sqlite3_finalize(m.update);
    ms_trace_free(&m.t);
    free(m.ids.keys);
    free(m.ids.vals);
    ms_pack_encoder_free(enc);
    ms_buf_free(&blob);
    if (failed)
        return -1;
    if (progress_fn && total)
        progress_fn("repacking traces", total, total);
    return ms_store_exec_(s, "DROP TABLE spans; DROP TABLE span_events;"
                             " DROP INDEX IF EXISTS traces_by_trace_id; DROP INDEX IF EXISTS traces_by_start;"
                             " ALTER TABLE traces DROP COLUMN first_span;", err, errlen);
}
