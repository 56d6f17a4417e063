/* ms_vtab — the spans and span_events virtual tables (see ms_vtab.h). One
 * cursor walks the traces rows (one row, or a range of them, when the
 * query constrains trace_row), decodes each trace's packed parts, and
 * yields a row per span, or per event of each span. */
#include "ms_vtab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_ids.h"
#include "ms_spans.h"
#include "ms_who.h"

enum span_col {
    SC_TRACE_ROW, SC_TRACE_ID, SC_SPAN_ID, SC_PARENT_ID, SC_NAME, SC_KIND, SC_START_NS, SC_DURATION_NS,
    SC_STATUS, SC_ERROR_OWN, SC_ERROR_TYPE, SC_ERROR_MESSAGE, SC_ERROR_TRACEBACK, SC_ATTRS, SC_PROVIDER,
    SC_MODEL, SC_INPUT, SC_OUTPUT, SC_CACHE_READ, SC_CACHE_WRITE, SC_ESTIMATED, SC_COST, SC_RETRIES,
    SC_RETRY_SUCCEEDED, SC_TTFT, SC_REPLAYED, SC_BACKOFF, SC_SPAN_INDEX, SC_FOLD_COUNT, SC_FOLD_ERRORS,
    SC_FOLD_TOTAL, SC_FOLD_MIN, SC_FOLD_MAX, SC_SESSION, SC_USER, SC_TAGS
};

static const char SPANS_SCHEMA[] =
    "CREATE TABLE x(trace_row INTEGER, trace_id TEXT, span_id INTEGER, parent_id INTEGER, name TEXT,"
    " kind TEXT, start_ns INTEGER, duration_ns INTEGER, status TEXT, error_own INTEGER, error_type TEXT,"
    " error_message TEXT, error_traceback TEXT, attrs TEXT, provider TEXT, model TEXT, input_tokens INTEGER,"
    " output_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER, usage_estimated INTEGER,"
    " cost_usd REAL, retries INTEGER, retry_succeeded INTEGER, ttft_ns INTEGER, replayed INTEGER,"
    " backoff_ns INTEGER, span_index INTEGER, fold_count INTEGER, fold_errors INTEGER,"
    " fold_total_ns INTEGER, fold_min_ns INTEGER, fold_max_ns INTEGER, session TEXT, user TEXT, tags TEXT)";

enum event_col { EC_TRACE_ROW, EC_SPAN_ID, EC_NAME, EC_TIME_NS, EC_ATTRS, EC_ERROR_TYPE, EC_ERROR_MESSAGE };

static const char EVENTS_SCHEMA[] =
    "CREATE TABLE x(trace_row INTEGER, span_id INTEGER, name TEXT, time_ns INTEGER, attrs TEXT,"
    " error_type TEXT, error_message TEXT)";

typedef struct vtab {
    sqlite3_vtab base;
    sqlite3 *db;
    int events;                 /* span_events rather than spans */
    int who_columns;            /* traces has session/user_id/tags (v6): 1, 0, or -1 not asked yet */
} vtab;

typedef struct cursor {
    sqlite3_vtab_cursor base;
    vtab *vt;
    sqlite3_stmt *traces;       /* the traces rows to walk */
    ms_spans_walk walk;
    int walk_open;
    int eof;
    /* the current trace */
    int64_t row, start_ns;
    char trace_id[33];
    /* the current span, and (span_events) its current event */
    ms_span_rec span;
    ms_event_rec event;
    uint32_t event_i;
    const uint8_t *event_p;
    int64_t rowid;
    ms_buf text;                /* attrs JSON of the current row */
} cursor;

/* --- the table -------------------------------------------------------------- */

static int vt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **err)
{
    (void)argc;
    (void)argv;
    (void)err;
    int events = aux != NULL;
    int rc = sqlite3_declare_vtab(db, events ? EVENTS_SCHEMA : SPANS_SCHEMA);
    if (rc != SQLITE_OK)
        return rc;
    vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->db = db;
    vt->events = events;
    vt->who_columns = -1;
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    *out = &vt->base;
    return SQLITE_OK;
}

static int vt_disconnect(sqlite3_vtab *v)
{
    sqlite3_free(v);
    return SQLITE_OK;
}

/* idxNum bits: 1 trace_row =, 2 trace_row >=/>, 4 trace_row <=/<. The
 * arguments come in that order. 8: the query reads session, user or tags,
 * so the walk over traces fetches them (on a v5 store they are parsed
 * from attrs: a cost a query that does not name them should not pay). */
#define IDX_WHO 8
static int vt_best_index(sqlite3_vtab *v, sqlite3_index_info *info)
{
    vtab *vt = (vtab *)v;
    int eq = -1, lo = -1, hi = -1;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->iColumn != 0) /* trace_row is column 0 of both tables */
            continue;
        if (c->op == SQLITE_INDEX_CONSTRAINT_EQ)
            eq = i;
        else if (c->op == SQLITE_INDEX_CONSTRAINT_GE || c->op == SQLITE_INDEX_CONSTRAINT_GT)
            lo = i;
        else if (c->op == SQLITE_INDEX_CONSTRAINT_LE || c->op == SQLITE_INDEX_CONSTRAINT_LT)
            hi = i;
    }
    int n = 0, idx = 0;
    if (eq >= 0) {
        idx = 1;
        info->aConstraintUsage[eq].argvIndex = ++n;
        info->aConstraintUsage[eq].omit = 1;
        info->estimatedCost = 20;
        info->estimatedRows = 20;
    } else {
        if (lo >= 0) {
            idx |= 2;
            info->aConstraintUsage[lo].argvIndex = ++n; /* > is checked again by SQLite */
        }
        if (hi >= 0) {
            idx |= 4;
            info->aConstraintUsage[hi].argvIndex = ++n;
        }
        info->estimatedCost = idx ? 1e5 : 1e7;
        info->estimatedRows = idx ? 100000 : 10000000;
    }
    const sqlite3_uint64 who = (sqlite3_uint64)1 << SC_SESSION | (sqlite3_uint64)1 << SC_USER |
                               (sqlite3_uint64)1 << SC_TAGS;
    if (!vt->events && (info->colUsed & who))
        idx |= IDX_WHO;
    info->idxNum = idx;
    /* rows come in trace_row order */
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == 0 && !info->aOrderBy[0].desc)
        info->orderByConsumed = 1;
    return SQLITE_OK;
}

/* --- the cursor --------------------------------------------------------------- */

static int vt_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
    cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->vt = (vtab *)v;
    *out = &c->base;
    return SQLITE_OK;
}

static int vt_close(sqlite3_vtab_cursor *cur)
{
    cursor *c = (cursor *)cur;
    sqlite3_finalize(c->traces);
    if (c->walk_open)
        ms_spans_walk_close(&c->walk);
    ms_buf_free(&c->text);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int fail(cursor *c, const char *msg)
{
    sqlite3_free(c->vt->base.zErrMsg);
    c->vt->base.zErrMsg = sqlite3_mprintf("%s", msg);
    return SQLITE_ERROR;
}

/* Moves to the next trace row with spans; sets eof at the end. */
static int next_trace(cursor *c)
{
    for (;;) {
        int rc = sqlite3_step(c->traces);
        if (rc == SQLITE_DONE) {
            c->eof = 1;
            return SQLITE_OK;
        }
        if (rc != SQLITE_ROW)
            return fail(c, sqlite3_errmsg(c->vt->db));
        c->row = sqlite3_column_int64(c->traces, 0);
        const char *id = (const char *)sqlite3_column_text(c->traces, 1);
        snprintf(c->trace_id, sizeof c->trace_id, "%s", id ? id : "");
        c->start_ns = sqlite3_column_int64(c->traces, 2);
        const void *own = sqlite3_column_blob(c->traces, 5);
        ms_spans_walk_trace(&c->walk, c->row, sqlite3_column_int64(c->traces, 4),
                            (uint64_t)sqlite3_column_int64(c->traces, 3), own,
                            (size_t)sqlite3_column_bytes(c->traces, 5));
        return SQLITE_OK;
    }
}

/* Reads the next event of the current span into c->event: 0, or -1. */
static int next_event(cursor *c)
{
    return ms_pack_event_at(&c->walk.r, &c->event_p, c->span.events_end, c->span.start, &c->event);
}

static int vt_next(sqlite3_vtab_cursor *cur);

/* Whether the store's traces rows have the v6 columns session, user_id
 * and tags: 1, 0, or -1 when the schema cannot be read. Asked once per
 * connection (ms_read.c's ms_schema_has is not in the extension). */
static int has_who_columns(vtab *vt)
{
    if (vt->who_columns >= 0)
        return vt->who_columns;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(vt->db, "SELECT count(*) FROM pragma_table_info('traces') WHERE name = 'user_id'",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int has = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        has = vt->who_columns = sqlite3_column_int64(st, 0) > 0;
    sqlite3_finalize(st);
    return has;
}

/* Prepares c->traces: the traces rows with ids from ?1 to ?2, columns 0-6
 * what the walk needs, 7-9 the trace's session, user and tags when `who`
 * (read as ms_who.h defines them on a v5 store), else NULL. */
static int prepare_traces(cursor *c, int who)
{
    static const char head[] = "SELECT t.id, t.trace_id, t.start_ns, t.span_salt, t.parts, t.spans, t.parent_span, ";
    static const char tail[] = " FROM traces t WHERE t.id >= ?1 AND t.id <= ?2 ORDER BY t.id";
    static const char none[] = "NULL, NULL, NULL";
    static const char v6[] = "t.session, t.user_id, t.tags";
    static const char v5[] = MS_WHO_SESSION_SQL("t.attrs") ", " MS_WHO_USER_SQL("t.attrs") ", "
                             MS_WHO_TAGS_SQL("t.attrs");
    const char *cols = none;
    if (who) {
        int has = has_who_columns(c->vt);
        if (has < 0)
            return fail(c, sqlite3_errmsg(c->vt->db));
        cols = has ? v6 : v5;
    }
    char *sql = sqlite3_mprintf("%s%s%s", head, cols, tail);
    if (!sql)
        return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(c->vt->db, sql, -1, &c->traces, NULL);
    sqlite3_free(sql);
    return rc;
}

static int vt_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxstr, int argc, sqlite3_value **argv)
{
    (void)idxstr;
    (void)argc;
    cursor *c = (cursor *)cur;
    sqlite3_finalize(c->traces);
    c->traces = NULL;
    c->eof = 0;
    c->rowid = 0;
    if (!c->walk_open) {
        char err[256];
        if (ms_spans_walk_open(&c->walk, c->vt->db, err, sizeof err))
            return fail(c, err);
        c->walk_open = 1;
    }
    int rc = prepare_traces(c, idx & IDX_WHO);
    if (rc != SQLITE_OK)
        return fail(c, sqlite3_errmsg(c->vt->db));
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    int a = 0;
    if (idx & 1) {
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
            c->eof = 1;
            return SQLITE_OK;
        }
        lo = hi = sqlite3_value_int64(argv[a++]);
    } else {
        if (idx & 2)
            lo = sqlite3_value_int64(argv[a++]);
        if (idx & 4)
            hi = sqlite3_value_int64(argv[a++]);
    }
    sqlite3_bind_int64(c->traces, 1, lo);
    sqlite3_bind_int64(c->traces, 2, hi);
    if ((rc = next_trace(c)) != SQLITE_OK || c->eof)
        return rc;
    c->span.nevents = 0;
    c->event_i = 0;
    return vt_next(cur);
}

static int vt_next(sqlite3_vtab_cursor *cur)
{
    cursor *c = (cursor *)cur;
    for (;;) {
        if (c->vt->events && c->event_i < c->span.nevents) {
            int rc = next_event(c);
            if (rc < 0)
                return fail(c, "a span's events are corrupt");
            c->event_i++;
            c->rowid++;
            return SQLITE_OK;
        }
        int rc = ms_spans_walk_next(&c->walk, &c->span);
        if (rc < 0)
            return fail(c, c->walk.error ? c->walk.error : "cannot read spans");
        if (rc == 0) {
            if ((rc = next_trace(c)) != SQLITE_OK || c->eof)
                return rc;
            continue;
        }
        c->event_i = 0;
        c->event_p = c->span.events;
        if (c->vt->events)
            continue; /* its events, if any, are the rows */
        c->rowid++;
        return SQLITE_OK;
    }
}

static int vt_eof(sqlite3_vtab_cursor *cur)
{
    return ((cursor *)cur)->eof;
}

static int vt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out)
{
    *out = ((cursor *)cur)->rowid;
    return SQLITE_OK;
}

static void result_pstr(sqlite3_context *ctx, ms_pstr s)
{
    sqlite3_result_text(ctx, s.p ? s.p : "", (int)s.len, SQLITE_TRANSIENT);
}

static const char *const STATUSES[] = {"ok", "error", "interrupted", "incomplete"};

static int span_column(cursor *c, sqlite3_context *ctx, int col)
{
    const ms_span_rec *s = &c->span;
    switch (col) {
    case SC_TRACE_ROW: sqlite3_result_int64(ctx, c->row); break;
    case SC_TRACE_ID: sqlite3_result_text(ctx, c->trace_id, -1, SQLITE_TRANSIENT); break;
    case SC_SPAN_ID: sqlite3_result_int64(ctx, (int64_t)ms_pack_span_id(&c->walk.r, s)); break;
    case SC_PARENT_ID:
        if (s->parent == MS_NONE) {
            int64_t remote = sqlite3_column_int64(c->traces, 6);
            if (remote)
                sqlite3_result_int64(ctx, remote);
            else
                sqlite3_result_null(ctx);
        } else {
            sqlite3_result_int64(ctx, (int64_t)ms_spans_walk_parent_id(&c->walk, s));
        }
        break;
    case SC_NAME: result_pstr(ctx, s->name); break;
    case SC_KIND: sqlite3_result_text(ctx, ms_kind_name(s->kind), -1, SQLITE_STATIC); break;
    case SC_START_NS: sqlite3_result_int64(ctx, c->start_ns + s->start); break;
    case SC_DURATION_NS: sqlite3_result_int64(ctx, s->duration); break;
    case SC_STATUS: sqlite3_result_text(ctx, STATUSES[s->status], -1, SQLITE_STATIC); break;
    case SC_ERROR_OWN: sqlite3_result_int(ctx, s->has_error && s->error_own); break;
    case SC_ERROR_TYPE: if (s->has_error) result_pstr(ctx, s->error_type); break;
    case SC_ERROR_MESSAGE: if (s->has_error) result_pstr(ctx, s->error_message); break;
    case SC_ERROR_TRACEBACK:
        if (s->has_error && s->error_traceback.len)
            result_pstr(ctx, s->error_traceback);
        break;
    case SC_ATTRS:
        if (s->nattrs) {
            ms_buf_reset(&c->text);
            if (ms_pack_attrs_json(&c->walk.r, s, &c->text) != 0)
                return fail(c, "a span's attributes are corrupt");
            sqlite3_result_text(ctx, c->text.data, (int)c->text.len, SQLITE_TRANSIENT);
        }
        break;
    case SC_PROVIDER: if (s->has_llm) result_pstr(ctx, s->provider); break;
    case SC_MODEL: if (s->has_llm) result_pstr(ctx, s->model); break;
    case SC_INPUT: if (s->has_llm) sqlite3_result_int64(ctx, s->input); break;
    case SC_OUTPUT: if (s->has_llm) sqlite3_result_int64(ctx, s->output); break;
    case SC_CACHE_READ: if (s->has_llm) sqlite3_result_int64(ctx, s->cache_read); break;
    case SC_CACHE_WRITE: if (s->has_llm) sqlite3_result_int64(ctx, s->cache_write); break;
    case SC_ESTIMATED: if (s->has_llm) sqlite3_result_int(ctx, s->estimated); break;
    case SC_COST: if (s->has_llm && !isnan(s->cost_usd)) sqlite3_result_double(ctx, s->cost_usd); break;
    case SC_RETRIES: sqlite3_result_int64(ctx, s->retries); break;
    case SC_RETRY_SUCCEEDED:
        if (s->retry_state != MS_RETRY_NONE)
            sqlite3_result_int(ctx, s->retry_state == MS_RETRY_SUCCEEDED);
        break;
    case SC_TTFT: if (s->has_llm && s->ttft_ns >= 0) sqlite3_result_int64(ctx, s->ttft_ns); break;
    case SC_REPLAYED: if (s->has_llm && s->replayed) sqlite3_result_int(ctx, 1); break;
    case SC_BACKOFF: if (s->backoff_ns > 0) sqlite3_result_int64(ctx, s->backoff_ns); break;
    case SC_SPAN_INDEX: sqlite3_result_int64(ctx, s->gidx); break;
    /* a fold's repetitions; NULL on other spans */
    case SC_FOLD_COUNT: if (s->kind == MS_KIND_FOLD) sqlite3_result_int64(ctx, (int64_t)s->fold_count); break;
    case SC_FOLD_ERRORS: if (s->kind == MS_KIND_FOLD) sqlite3_result_int64(ctx, (int64_t)s->fold_errors); break;
    case SC_FOLD_TOTAL: if (s->kind == MS_KIND_FOLD) sqlite3_result_int64(ctx, s->fold_total); break;
    case SC_FOLD_MIN: if (s->kind == MS_KIND_FOLD) sqlite3_result_int64(ctx, s->fold_min); break;
    case SC_FOLD_MAX: if (s->kind == MS_KIND_FOLD) sqlite3_result_int64(ctx, s->fold_max); break;
    /* who the span's request was for: its trace's, on every span of it */
    case SC_SESSION: sqlite3_result_value(ctx, sqlite3_column_value(c->traces, 7)); break;
    case SC_USER: sqlite3_result_value(ctx, sqlite3_column_value(c->traces, 8)); break;
    case SC_TAGS: sqlite3_result_value(ctx, sqlite3_column_value(c->traces, 9)); break;
    }
    return SQLITE_OK;
}

static int event_column(cursor *c, sqlite3_context *ctx, int col)
{
    const ms_event_rec *e = &c->event;
    switch (col) {
    case EC_TRACE_ROW: sqlite3_result_int64(ctx, c->row); break;
    case EC_SPAN_ID: sqlite3_result_int64(ctx, (int64_t)ms_pack_span_id(&c->walk.r, &c->span)); break;
    case EC_NAME: result_pstr(ctx, e->name); break;
    case EC_TIME_NS: sqlite3_result_int64(ctx, c->start_ns + e->time); break;
    case EC_ATTRS: if (e->attrs_json.len) result_pstr(ctx, e->attrs_json); break;
    case EC_ERROR_TYPE: if (e->has_error) result_pstr(ctx, e->error_type); break;
    case EC_ERROR_MESSAGE: if (e->has_error) result_pstr(ctx, e->error_message); break;
    }
    return SQLITE_OK;
}

static int vt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    cursor *c = (cursor *)cur;
    return c->vt->events ? event_column(c, ctx, col) : span_column(c, ctx, col);
}

static sqlite3_module MODULE = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only */
    .xConnect = vt_connect,
    .xBestIndex = vt_best_index,
    .xDisconnect = vt_disconnect,
    .xDestroy = vt_disconnect,
    .xOpen = vt_open,
    .xClose = vt_close,
    .xFilter = vt_filter,
    .xNext = vt_next,
    .xEof = vt_eof,
    .xColumn = vt_column,
    .xRowid = vt_rowid,
};

int ms_vtab_register(sqlite3 *db)
{
    static char events_tag;
    int rc = sqlite3_create_module(db, "spans", &MODULE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_module(db, "span_events", &MODULE, &events_tag);
    return rc;
}
