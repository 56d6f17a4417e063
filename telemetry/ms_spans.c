#include "ms_spans.h"

#include <stdlib.h>
#include <string.h>

int ms_spans_walk_open(ms_spans_walk *w, sqlite3 *db, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (sqlite3_prepare_v2(db, "SELECT spans FROM trace_parts WHERE trace_row = ?1 ORDER BY seq", -1,
                           &w->parts, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot read the spans: %s", sqlite3_errmsg(db));
    return 0;
}

void ms_spans_walk_close(ms_spans_walk *w)
{
    sqlite3_finalize(w->parts);
    ms_pack_reader_free(&w->r);
    free(w->ids);
    memset(w, 0, sizeof *w);
}

void ms_spans_walk_trace(ms_spans_walk *w, int64_t row, int64_t parts, uint64_t salt,
                         const void *own, size_t own_len)
{
    sqlite3_reset(w->parts);
    w->stage = parts > 0 ? 0 : 1;
    if (parts > 0)
        sqlite3_bind_int64(w->parts, 1, row);
    w->own = own;
    w->own_len = own_len;
    w->salt = salt;
    w->reading = 0;
    if (w->explicit_ids)
        memset(w->ids, 0, w->cap_ids * sizeof *w->ids);
    w->explicit_ids = 0;
    w->error = NULL;
}

void ms_spans_walk_release(ms_spans_walk *w)
{
    sqlite3_reset(w->parts);
    w->own = NULL;
    w->own_len = 0;
    w->reading = 0;
    w->stage = 2;
}

int64_t ms_spans_walk_columns(ms_spans_walk *w, sqlite3_stmt *st, int first)
{
    int64_t row = sqlite3_column_int64(st, first);
    ms_spans_walk_trace(w, row, sqlite3_column_int64(st, first + 2), (uint64_t)sqlite3_column_int64(st, first + 1),
                        sqlite3_column_blob(st, first + 3), (size_t)sqlite3_column_bytes(st, first + 3));
    return row;
}

/* Opens the next blob of the trace: 1, 0 when there is none left, -1. */
static int next_blob(ms_spans_walk *w)
{
    for (;;) {
        if (w->stage == 0) {
            int rc = sqlite3_step(w->parts);
            if (rc == SQLITE_ROW) {
                const void *b = sqlite3_column_blob(w->parts, 0);
                int n = sqlite3_column_bytes(w->parts, 0);
                if (ms_pack_open(&w->r, b, (size_t)n, w->salt)) {
                    w->error = w->r.error;
                    return -1;
                }
                return 1;
            }
            if (rc != SQLITE_DONE) {
                w->error = "cannot read a part of the trace";
                return -1;
            }
            w->stage = 1;
        }
        if (w->stage == 1) {
            w->stage = 2;
            if (!w->own)
                continue;
            if (ms_pack_open(&w->r, w->own, w->own_len, w->salt)) {
                w->error = w->r.error;
                return -1;
            }
            return 1;
        }
        return 0;
    }
}

int ms_spans_walk_next(ms_spans_walk *w, ms_span_rec *out)
{
    for (;;) {
        if (!w->reading) {
            int rc = next_blob(w);
            if (rc <= 0)
                return rc;
            w->reading = 1;
            w->blob_seq++;
        }
        int rc = ms_pack_next(&w->r, out);
        if (rc < 0) {
            w->error = w->r.error;
            return -1;
        }
        if (rc == 0) {
            w->reading = 0;
            continue;
        }
        if (out->explicit_id) {
            /* an id from outside (a migrated trace): keep it for its children */
            if (out->gidx >= w->cap_ids) {
                uint32_t cap = w->cap_ids ? w->cap_ids : 64;
                while (cap <= out->gidx)
                    cap *= 2;
                uint64_t *ids = realloc(w->ids, cap * sizeof *ids);
                if (!ids) {
                    w->error = "out of memory reading spans";
                    return -1;
                }
                memset(ids + w->cap_ids, 0, (cap - w->cap_ids) * sizeof *ids);
                w->ids = ids;
                w->cap_ids = cap;
            }
            w->ids[out->gidx] = out->explicit_id;
            w->explicit_ids = 1;
        }
        return 1;
    }
}

uint64_t ms_spans_walk_parent_id(const ms_spans_walk *w, const ms_span_rec *s)
{
    if (s->parent == MS_NONE)
        return 0;
    if (w->explicit_ids && s->parent < w->cap_ids && w->ids[s->parent])
        return w->ids[s->parent];
    return ms_span_id_derive(w->salt, s->parent);
}
