/* ms_select — which traces a view reads: the one filter `report`,
 * `report --profile`, `traces` and `diff` share, so `--since`, `--until`,
 * `--name`, `--run`, `--eval-run`, `--evals`, `--attr`, `--user`,
 * `--session` and `--tag` mean the same thing everywhere.
 *
 * A selection becomes a WHERE clause over the traces table (alias `t`)
 * with named parameters, then is bound to the prepared statement. Only
 * the filters in use appear, so an unfiltered view still scans in rowid
 * order. Eval traces are the traces of a process that ran an eval suite
 * (their traces.run_id is some eval_runs.run_id): production numbers
 * leave them out unless asked, and a store without eval tables (schema
 * v1) has none. */
#ifndef MS_SELECT_H
#define MS_SELECT_H

#include "ms_buf.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum ms_evals_mode {
    MS_EVALS_DEFAULT = 0, /* EXCLUDE, or INCLUDE when run_id or eval_run is set */
    MS_EVALS_EXCLUDE,     /* production traces only */
    MS_EVALS_INCLUDE,     /* both */
    MS_EVALS_ONLY         /* eval traces only */
};

#define MS_SELECT_MAX_ATTRS 8
#define MS_SELECT_MAX_TAGS 8

typedef struct ms_select {
    int64_t since_ns;         /* traces started at or after; 0 = no bound */
    int64_t until_ns;         /* traces started before; 0 = no bound */
    const char *name_glob;    /* SQLite GLOB on traces.name; NULL = any */
    int64_t run_id;           /* traces of this process (runs.id); 0 = any */
    int64_t eval_run;         /* the case traces of this eval run
                                 (eval_results.trace_id); 0 = any */
    enum ms_evals_mode evals;
    int errors_only;          /* status 'error' only */
    const char *status;       /* traces.status equals ('ok', 'error', 'interrupted',
                                 'incomplete'); NULL = any (the UI's status=) */
    /* --attr key=value: the root span's attribute `key` (traces.attrs)
     * equals value, compared as text (5, true and "5" all read as text). */
    const char *attr_key[MS_SELECT_MAX_ATTRS];
    const char *attr_value[MS_SELECT_MAX_ATTRS];
    size_t nattrs;
    /* --user, --session, --tag: who the trace was for (ms_who.h), the
     * columns of schema v6 or, on a v5 store, the same values from attrs.
     * Every tag given must be among the trace's tags. */
    const char *user;         /* NULL = any */
    const char *session;      /* NULL = any */
    const char *tags[MS_SELECT_MAX_TAGS];
    size_t ntags;
    /* The live exporter's window (host/otlp_live.c), no option sets it:
     * rows past its watermark, plus the earlier rows it saw still open.
     * after_row > 0: t.id > after_row or t.id among also_rows (integers
     * written into the SQL text, never user input). ended_only: leave out
     * the traces still being written in parts (row made, spans not yet
     * final). */
    int64_t after_row;
    const int64_t *also_rows;
    size_t nalso_rows;
    int ended_only;
} ms_select;

/* The mode a selection resolves to: MS_EVALS_DEFAULT becomes INCLUDE
 * when run_id or eval_run picks traces, EXCLUDE otherwise. */
enum ms_evals_mode ms_select_evals(const ms_select *s);

/* Appends the WHERE clause of `s` (" WHERE ...", or nothing when no
 * filter is in use) to sql. `db` is asked whether the eval tables exist.
 * Returns 0, or -1 with err (out of memory, an SQL error). */
int ms_select_where(sqlite3 *db, const ms_select *s, ms_buf *sql, char *err, size_t errlen);

/* Completes `sql`, a "SELECT ... FROM traces t", with the WHERE clause of
 * `s` and then `tail` (" ORDER BY ...", " LIMIT ..."; NULL: nothing),
 * prepares it on db and frees sql. Returns 0 with *st (bind it with
 * ms_select_bind), or -1 with err (out of memory, an SQL error) and *st
 * NULL; sql is freed either way. */
int ms_select_prepare(sqlite3 *db, const ms_select *s, ms_buf *sql, const char *tail, sqlite3_stmt **st,
                      char *err, size_t errlen);

/* Binds the parameters ms_select_where wrote (those `st` names). Returns
 * 0 or -1 with err. */
int ms_select_bind(sqlite3 *db, sqlite3_stmt *st, const ms_select *s, char *err, size_t errlen);

/* Whether run_id and eval_run (when set) name rows of runs and
 * eval_runs. Returns 0; 1 with err naming the fix when one does not
 * ("no run 99 in moonspan.db; `moonspan runs` lists them"); -1 with err
 * on an SQL error. */
int ms_select_check(sqlite3 *db, const ms_select *s, char *err, size_t errlen);

/* How many eval traces the selection's default left out: the traces that
 * match every other filter and are eval traces, when ms_select_evals is
 * EXCLUDE because nothing asked for evals (s->evals DEFAULT); 0
 * otherwise. `also`, when not NULL, is one more condition over `t` the
 * view itself applies (SQL text of the view's, never user input; e.g.
 * "t.id IN (SELECT trace_row FROM span_profiles)"). Lets a view say what
 * it did not count and how to count it. Returns 0 with *n, or -1 with
 * err. */
int ms_select_evals_left_out(sqlite3 *db, const ms_select *s, const char *also, int64_t *n,
                             char *err, size_t errlen);

/* Parses one `--attr` value "key=value" into the next free slot of s
 * (pointers into `kv`, which must outlive s: the key is cut at '=' in
 * place). Returns 0, or -1 with err naming the fix (no '=', empty key,
 * more than MS_SELECT_MAX_ATTRS). */
int ms_select_add_attr(ms_select *s, char *kv, char *err, size_t errlen);

/* Adds one `--tag` value to s (the pointer is kept: it must outlive s).
 * Returns 0, or -1 with err naming the fix (empty, more than
 * MS_SELECT_MAX_TAGS). */
int ms_select_add_tag(ms_select *s, const char *tag, char *err, size_t errlen);

/* Whether anything but the default evals mode narrows the selection
 * (errors_only aside): for a view's "nothing matches" line. */
int ms_select_narrows(const ms_select *s);

/* The flags that widen a selection, for those "nothing matches" lines:
 * one list, so a new filter flag is named in every view. */
#define MS_SELECT_WIDEN "widen --since, --until, --name, --attr, --user, --session, --tag or --evals"

/* A one-line description of the selection for a view's heading, e.g.
 * "run 12, since 2026-11-20T00:00:00Z, name 'answer_*', evals excluded";
 * "all traces" when nothing filters. */
void ms_select_describe(const ms_select *s, ms_buf *out);

#endif
