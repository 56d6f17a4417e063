/* ms_select — the WHERE clause every trace view shares (see ms_select.h).
 *
 * Parameters are named (:sel_*), so a view can add its own numbered or
 * named ones around the clause and bind ours by name. */
#include "ms_select.h"

#include "ms_fmt.h"
#include "ms_read.h"
#include "ms_who.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

enum ms_evals_mode ms_select_evals(const ms_select *s)
{
    if (s->evals != MS_EVALS_DEFAULT)
        return s->evals;
    return s->run_id || s->eval_run ? MS_EVALS_INCLUDE : MS_EVALS_EXCLUDE;
}

/* The run ids of eval processes. NOT IN over a subquery that yields a
 * NULL is never true, hence the IS NOT NULL. SQLite builds the list once
 * per statement, not per row. */
#define EVAL_RUN_IDS "(SELECT run_id FROM eval_runs WHERE run_id IS NOT NULL)"
#define IS_EVAL "t.run_id IN " EVAL_RUN_IDS
#define NOT_EVAL "(t.run_id IS NULL OR t.run_id NOT IN " EVAL_RUN_IDS ")"

/* Appends " WHERE " before the first condition and " AND " before the others. */
static void cond(ms_buf *sql, int *n, const char *text)
{
    ms_buf_adds(sql, (*n)++ ? " AND " : " WHERE ");
    ms_buf_adds(sql, text);
}

/* Whether some eval run names the process that ran it: 1, 0, or -1. */
static int any_eval_process(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT 1 FROM eval_runs WHERE run_id IS NOT NULL LIMIT 1", &st, err, errlen))
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc == SQLITE_ROW;
    return ms_errf(err, errlen, "cannot read eval_runs: %s", sqlite3_errmsg(db));
}

/* The where clause with `mode` for the evals filter (the caller's own,
 * or ONLY to count what the default left out). */
static int where_mode(sqlite3 *db, const ms_select *s, enum ms_evals_mode mode, ms_buf *sql,
                      char *err, size_t errlen)
{
    int evals = 0, results = 0;
    if (mode != MS_EVALS_INCLUDE || s->eval_run) {
        if ((evals = ms_schema_has(db, "eval_runs", NULL, err, errlen)) < 0)
            return -1;
        /* A store where no process ran evals has no eval trace: leaving
         * the condition out spares a scan of every trace row (there is no
         * index on run_id), which is what keeps a count over millions of
         * traces fast. */
        if (evals && (evals = any_eval_process(db, err, errlen)) < 0)
            return -1;
        if (s->eval_run && (results = ms_schema_has(db, "eval_results", NULL, err, errlen)) < 0)
            return -1;
    }
    int n = 0;
    if (s->since_ns)
        cond(sql, &n, "t.start_ns >= :sel_since");
    if (s->until_ns)
        cond(sql, &n, "t.start_ns < :sel_until");
    if (s->name_glob)
        cond(sql, &n, "t.name GLOB :sel_name");
    if (s->run_id)
        cond(sql, &n, "t.run_id = :sel_run");
    if (s->eval_run)
        /* a store without eval tables has no eval run to select from */
        cond(sql, &n, results ? "t.trace_id IN (SELECT trace_id FROM eval_results"
                                " WHERE eval_run = :sel_eval_run)"
                              : "0");
    if (s->errors_only)
        cond(sql, &n, "t.status = 'error'");
    if (s->status)
        cond(sql, &n, "t.status = :sel_status");
    for (size_t i = 0; i < s->nattrs; i++) {
        /* The top-level member whose key is exactly the given text (no
         * JSON path, so "a.b" and keys with quotes need no escaping), its
         * value as text: strings as they are, true/false/null as those
         * words, numbers as SQLite prints them, objects and arrays as
         * JSON. */
        char c[512];
        snprintf(c, sizeof c,
                 "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(t.attrs) THEN t.attrs END) a"
                 " WHERE a.key = :sel_ak%zu AND CASE a.type WHEN 'true' THEN 'true'"
                 " WHEN 'false' THEN 'false' WHEN 'null' THEN 'null'"
                 " ELSE CAST(a.value AS TEXT) END = :sel_av%zu)",
                 i, i);
        cond(sql, &n, c);
    }
    if (s->user || s->session || s->ntags) {
        ms_who_sql w;
        if (ms_who_sql_get(db, &w, err, errlen))
            return -1;
        if (s->user) {
            cond(sql, &n, w.user);
            ms_buf_adds(sql, " = :sel_user");
        }
        if (s->session) {
            cond(sql, &n, w.session);
            ms_buf_adds(sql, " = :sel_session");
        }
        for (size_t i = 0; i < s->ntags; i++) {
            cond(sql, &n, "EXISTS (SELECT 1 FROM json_each(");
            ms_buf_adds(sql, w.tags);
            ms_buf_printf(sql, ") g WHERE g.value = :sel_tag%zu)", i);
        }
    }
    if (mode == MS_EVALS_EXCLUDE && evals)
        cond(sql, &n, NOT_EVAL);
    else if (mode == MS_EVALS_ONLY)
        cond(sql, &n, evals ? IS_EVAL : "0");
    if (sql->oom)
        return ms_errf(err, errlen, "out of memory building a query");
    return 0;
}

int ms_select_where(sqlite3 *db, const ms_select *s, ms_buf *sql, char *err, size_t errlen)
{
    assert(db && s && sql);
    return where_mode(db, s, ms_select_evals(s), sql, err, errlen);
}

/* Binds an integer to parameter `name` when `st` names it. */
static int bind_int(sqlite3 *db, sqlite3_stmt *st, const char *name, int64_t v, const char *opt,
                    char *err, size_t errlen)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0 && sqlite3_bind_int64(st, i, v) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot bind %s: %s", opt, sqlite3_errmsg(db));
    return 0;
}

static int bind_text(sqlite3 *db, sqlite3_stmt *st, const char *name, const char *v,
                     const char *opt, char *err, size_t errlen)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0 && sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot bind %s: %s", opt, sqlite3_errmsg(db));
    return 0;
}

int ms_select_prepare(sqlite3 *db, const ms_select *s, ms_buf *sql, const char *tail, sqlite3_stmt **st,
                      char *err, size_t errlen)
{
    *st = NULL;
    int ok = ms_select_where(db, s, sql, err, errlen) == 0;
    if (tail)
        ms_buf_adds(sql, tail);
    if (ok && sql->oom)
        ok = ms_errf(err, errlen, "out of memory building a query") == 0;
    ok = ok && ms_read_prepare(db, sql->data, st, err, errlen) == 0;
    ms_buf_free(sql);
    return ok ? 0 : -1;
}

int ms_select_bind(sqlite3 *db, sqlite3_stmt *st, const ms_select *s, char *err, size_t errlen)
{
    assert(db && st && s);
    if (bind_int(db, st, ":sel_since", s->since_ns, "--since", err, errlen) ||
        bind_int(db, st, ":sel_until", s->until_ns, "--until", err, errlen) ||
        bind_text(db, st, ":sel_name", s->name_glob, "--name", err, errlen) ||
        bind_int(db, st, ":sel_run", s->run_id, "--run", err, errlen) ||
        bind_int(db, st, ":sel_eval_run", s->eval_run, "--eval-run", err, errlen) ||
        bind_text(db, st, ":sel_user", s->user, "--user", err, errlen) ||
        bind_text(db, st, ":sel_session", s->session, "--session", err, errlen) ||
        bind_text(db, st, ":sel_status", s->status, "status", err, errlen))
        return -1;
    for (size_t i = 0; i < s->ntags; i++) {
        char k[32];
        snprintf(k, sizeof k, ":sel_tag%zu", i);
        if (bind_text(db, st, k, s->tags[i], "--tag", err, errlen))
            return -1;
    }
    for (size_t i = 0; i < s->nattrs; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, ":sel_ak%zu", i);
        snprintf(v, sizeof v, ":sel_av%zu", i);
        if (bind_text(db, st, k, s->attr_key[i], "--attr", err, errlen) ||
            bind_text(db, st, v, s->attr_value[i], "--attr", err, errlen))
            return -1;
    }
    return 0;
}

/* Whether `table` has a row whose id is `id`: 1, 0, or -1 with err. A
 * store without the table has none. */
static int has_row(sqlite3 *db, const char *table, int64_t id, char *err, size_t errlen)
{
    int has = ms_schema_has(db, table, NULL, err, errlen);
    if (has <= 0)
        return has;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE id = ?1", table);
    sqlite3_stmt *st;
    if (ms_read_prepare(db, sql, &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return ms_errf(err, errlen, "cannot read %s: %s", table, sqlite3_errmsg(db));
}

/* The store's file name for messages: the last part of its path. */
static const char *db_name(sqlite3 *db)
{
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !*path)
        return "the store";
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int ms_select_check(sqlite3 *db, const ms_select *s, char *err, size_t errlen)
{
    assert(db && s);
    int has;
    if (s->run_id) {
        if ((has = has_row(db, "runs", s->run_id, err, errlen)) < 0)
            return -1;
        if (!has) {
            snprintf(err, errlen, "no run %lld in %s; `moonspan runs` lists them",
                     (long long)s->run_id, db_name(db));
            return 1;
        }
    }
    if (s->eval_run) {
        if ((has = has_row(db, "eval_runs", s->eval_run, err, errlen)) < 0)
            return -1;
        if (!has) {
            snprintf(err, errlen, "no eval run %lld in %s; `moonspan runs` lists them"
                     " (nested under their process)", (long long)s->eval_run, db_name(db));
            return 1;
        }
    }
    return 0;
}

int ms_select_evals_left_out(sqlite3 *db, const ms_select *s, const char *also, int64_t *n,
                             char *err, size_t errlen)
{
    assert(db && s && n);
    *n = 0;
    if (s->evals != MS_EVALS_DEFAULT || ms_select_evals(s) != MS_EVALS_EXCLUDE)
        return 0;
    int has = ms_schema_has(db, "eval_runs", NULL, err, errlen);
    if (has <= 0)
        return has;
    int has_end = ms_schema_has(db, "runs", "end_ns", err, errlen);
    if (has_end < 0)
        return -1;
    /* Counted per eval process over the traces started while it ran (a
     * process's traces start after its run row and before its end_ns, on
     * one clock): the start_ns index reads the eval processes' windows
     * only, where a scan of every row's run_id would read the whole
     * store. CROSS JOIN keeps the few eval processes as the outer loop. */
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT count(*) FROM runs r CROSS JOIN traces t");
    size_t bare = sql.len;
    int ret = where_mode(db, s, MS_EVALS_INCLUDE, &sql, err, errlen);
    ms_buf_adds(&sql, sql.len > bare ? " AND " : " WHERE ");
    ms_buf_adds(&sql, "r.id IN " EVAL_RUN_IDS " AND t.start_ns >= r.start_ns AND t.run_id = r.id");
    if (has_end)
        ms_buf_adds(&sql, " AND t.start_ns <= coalesce(r.end_ns, 9223372036854775807)");
    if (also) {
        ms_buf_adds(&sql, " AND ");
        ms_buf_adds(&sql, also);
    }
    if (ret == 0 && sql.oom)
        ret = ms_errf(err, errlen, "out of memory building a query");
    sqlite3_stmt *st = NULL;
    if (ret == 0 && (ret = ms_read_prepare(db, sql.data, &st, err, errlen)) == 0 &&
        (ret = ms_select_bind(db, st, s, err, errlen)) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *n = sqlite3_column_int64(st, 0);
        else
            ret = ms_errf(err, errlen, "cannot count eval traces: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    ms_buf_free(&sql);
    return ret;
}

int ms_select_add_attr(ms_select *s, char *kv, char *err, size_t errlen)
{
    assert(s && kv);
    char *eq = strchr(kv, '=');
    if (!eq)
        return ms_errf(err, errlen, "--attr '%s' has no '='; give key=value, e.g. --attr user=alice", kv);
    if (eq == kv)
        return ms_errf(err, errlen, "--attr '%s' has an empty key; give key=value, e.g. --attr user=alice",
                       kv);
    if (s->nattrs >= MS_SELECT_MAX_ATTRS)
        return ms_errf(err, errlen, "more than %d --attr filters; narrow with fewer (they all must match)",
                       MS_SELECT_MAX_ATTRS);
    *eq = 0;
    s->attr_key[s->nattrs] = kv;
    s->attr_value[s->nattrs] = eq + 1;
    s->nattrs++;
    return 0;
}

int ms_select_add_tag(ms_select *s, const char *tag, char *err, size_t errlen)
{
    assert(s && tag);
    if (!*tag)
        return ms_errf(err, errlen, "--tag is empty; give a tag the traces were given, e.g. --tag beta");
    if (s->ntags >= MS_SELECT_MAX_TAGS)
        return ms_errf(err, errlen, "more than %d --tag filters; narrow with fewer (they all must match)",
                       MS_SELECT_MAX_TAGS);
    s->tags[s->ntags++] = tag;
    return 0;
}

int ms_select_narrows(const ms_select *s)
{
    return s->since_ns || s->until_ns || s->name_glob || s->run_id || s->eval_run || s->nattrs ||
           s->user || s->session || s->ntags || s->status || s->evals == MS_EVALS_ONLY;
}

/* Appends ", " between the parts of a description. */
static void part(ms_buf *out, int *n)
{
    if ((*n)++)
        ms_buf_adds(out, ", ");
}

void ms_select_describe(const ms_select *s, ms_buf *out)
{
    assert(s && out);
    int n = 0;
    char iso[40];
    if (s->run_id) {
        part(out, &n);
        ms_buf_printf(out, "run %lld", (long long)s->run_id);
    }
    if (s->eval_run) {
        part(out, &n);
        ms_buf_printf(out, "eval run %lld", (long long)s->eval_run);
    }
    if (s->since_ns) {
        part(out, &n);
        ms_iso_utc(s->since_ns, iso, sizeof iso);
        ms_buf_printf(out, "since %s", iso);
    }
    if (s->until_ns) {
        part(out, &n);
        ms_iso_utc(s->until_ns, iso, sizeof iso);
        ms_buf_printf(out, "until %s", iso);
    }
    if (s->name_glob) {
        part(out, &n);
        ms_buf_adds(out, "name '");
        ms_fmt_text(out, s->name_glob, "");
        ms_buf_addc(out, '\'');
    }
    for (size_t i = 0; i < s->nattrs; i++) {
        part(out, &n);
        ms_buf_adds(out, "attr ");
        ms_fmt_text(out, s->attr_key[i], "");
        ms_buf_addc(out, '=');
        ms_fmt_text(out, s->attr_value[i], "");
    }
    if (s->user) {
        part(out, &n);
        ms_buf_adds(out, "user '");
        ms_fmt_text(out, s->user, "");
        ms_buf_addc(out, '\'');
    }
    if (s->session) {
        part(out, &n);
        ms_buf_adds(out, "session '");
        ms_fmt_text(out, s->session, "");
        ms_buf_addc(out, '\'');
    }
    for (size_t i = 0; i < s->ntags; i++) {
        part(out, &n);
        ms_buf_adds(out, "tag '");
        ms_fmt_text(out, s->tags[i], "");
        ms_buf_addc(out, '\'');
    }
    if (s->errors_only) {
        part(out, &n);
        ms_buf_adds(out, "errors only");
    }
    if (s->status) {
        part(out, &n);
        ms_buf_adds(out, "status '");
        ms_fmt_text(out, s->status, "");
        ms_buf_addc(out, '\'');
    }
    switch (ms_select_evals(s)) {
    case MS_EVALS_EXCLUDE:
        part(out, &n);
        ms_buf_adds(out, "evals excluded");
        break;
    case MS_EVALS_ONLY:
        part(out, &n);
        ms_buf_adds(out, "eval traces only");
        break;
    case MS_EVALS_INCLUDE:
        /* "all traces" says it when nothing else filters */
        if (s->evals == MS_EVALS_INCLUDE && n) {
            part(out, &n);
            ms_buf_adds(out, "evals included");
        }
        break;
    case MS_EVALS_DEFAULT:
        break;
    }
    if (!n)
        ms_buf_adds(out, "all traces");
}
