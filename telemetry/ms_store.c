#include "ms_store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ms_clock.h"

struct ms_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *ins_trace, *ins_span, *ins_event;
    ms_buf scratch; /* attributes JSON of the span being written */
};

#define BUSY_TIMEOUT_MS 30000

/* Reads one integer PRAGMA. Returns the SQLite result code. */
static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Decides whether an open connection holds a moonspan store we can use,
 * reading only. *fresh is set for an empty file that still needs a schema;
 * *version is the store's schema version (0 when fresh): older than
 * MS_SCHEMA_VERSION means a write open must migrate it, a read open reads
 * it as it is. */
static int verify(sqlite3 *db, const char *path, int *fresh, int64_t *version_out,
                  char *err, size_t errlen)
{
    int64_t app = 0, version = 0, tables = 0;
    int rc = pragma_int(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_NOTADB)
        return ms_errf(err, errlen,
                    "%s is not a SQLite database, so it is not a moonspan store; "
                    "pass --db with a moonspan database or a new file name", path);
    if (rc != SQLITE_OK)
        return ms_errf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
    if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != SQLITE_OK ||
        (rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables)) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
    *version_out = version;
    if (app == 0 && version == 0 && tables == 0) {
        *fresh = 1;
        return 0;
    }
    if (app != MS_APPLICATION_ID)
        return ms_errf(err, errlen,
                    "%s is a SQLite database but not a moonspan store (it holds other data); "
                    "pass --db with a moonspan database or a new file name", path);
    if (version > MS_SCHEMA_VERSION) {
        char v[64];
        snprintf(v, sizeof v, "%lld; this moonspan reads up to %d", (long long)version, MS_SCHEMA_VERSION);
        return ms_errf(err, errlen,
                    "%s was written by a newer moonspan (schema version %s); "
                    "upgrade moonspan to read it", path, v);
    }
    /* a store of ours always has a version; 0 would be a half-made file
     * from before the schema transaction committed, made again below */
    *fresh = version == 0;
    return 0;
}

static int exec(ms_store *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        ms_errf(err, errlen, "%s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Migration steps, one per version: MIGRATE[v - 1] brings a store of
 * version v to v + 1. Each adds to the existing tables only what CREATE
 * TABLE IF NOT EXISTS cannot (new columns); new tables and indexes come
 * from ms_schema_sql, run after the steps. Steps never rewrite rows, so a
 * migration is quick on a big store (ADD COLUMN only edits the schema). */
static const char *const MIGRATE[] = {
    /* 1 -> 2: replayed LLM calls (eval --replay); eval tables via the schema */
    "ALTER TABLE spans ADD COLUMN replayed INTEGER;"
    "ALTER TABLE traces ADD COLUMN replayed_cost_usd REAL;",
    /* 2 -> 3: backoff time, typed ctx:add_error events (the few error
     * events are moved out of their JSON here; nothing else is rewritten) */
    "ALTER TABLE spans ADD COLUMN backoff_ns INTEGER;"
    "ALTER TABLE span_events ADD COLUMN error_type TEXT;"
    "ALTER TABLE span_events ADD COLUMN error_message TEXT;"
    "UPDATE span_events SET error_type = 'manual', error_message = json_extract(attrs, '$.message'),"
    " attrs = NULL WHERE name = 'error' AND json_valid(attrs) AND json_extract(attrs, '$.type') = 'manual';",
};
_Static_assert(sizeof MIGRATE / sizeof MIGRATE[0] == MS_SCHEMA_VERSION - 1,
               "one migration step per schema version after the first");

/* Creates the schema, or migrates an older one, inside one write
 * transaction, re-checking the version under the lock: another process may
 * have done it meanwhile. On any failure the transaction is rolled back, so
 * the file keeps its old version and data. Returns 0 or -1 with err. */
static int create_schema(ms_store *s, char *err, size_t errlen)
{
    char ignore[8];
    if (exec(s, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    int64_t version = 0;
    if (pragma_int(s->db, "PRAGMA user_version", &version) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot read %s: %s", s->path, sqlite3_errmsg(s->db));
        exec(s, "ROLLBACK", ignore, sizeof ignore);
        return -1;
    }
    if (version < MS_SCHEMA_VERSION) {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                 MS_APPLICATION_ID, MS_SCHEMA_VERSION);
        int failed = 0;
        for (int64_t v = version; v >= 1 && v < MS_SCHEMA_VERSION && !failed; v++)
            failed = exec(s, MIGRATE[v - 1], err, errlen);
        failed = failed || exec(s, ms_schema_sql, err, errlen) || exec(s, pragmas, err, errlen);
        if (failed) {
            if (version > 0) {
                char why[384];
                snprintf(why, sizeof why, "%s", err && errlen ? err : "?");
                ms_errf(err, errlen, "cannot upgrade %s from schema version %lld to %d"
                        " (it stays at version %lld, its data untouched): %s", s->path,
                        (long long)version, MS_SCHEMA_VERSION, (long long)version, why);
            }
            exec(s, "ROLLBACK", ignore, sizeof ignore);
            return -1;
        }
    }
    if (exec(s, "COMMIT", err, errlen)) {
        exec(s, "ROLLBACK", ignore, sizeof ignore);
        return -1;
    }
    return 0;
}

static const char INS_TRACE[] =
    "INSERT INTO traces (id, trace_id, run_id, name, start_ns, duration_ns, status, error_count,"
    " span_count, first_span, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
    " cost_usd, unknown_cost_calls, attrs, replayed_cost_usd)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char INS_SPAN[] =
    "INSERT INTO spans (rowid, trace_row, span_id, parent_id, name, kind, start_ns, duration_ns,"
    " status, error_own, error_type, error_message, error_traceback, attrs, provider, model,"
    " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated,"
    " cost_usd, retries, retry_succeeded, ttft_ns, replayed, backoff_ns)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char INS_EVENT[] =
    "INSERT INTO span_events (trace_row, span_id, name, time_ns, attrs, error_type, error_message)"
    " VALUES (?,?,?,?,?,?,?)";

/* Takes an exclusive flock on the folder holding `path`; returns the fd to
 * pass to unlock_folder, or -1 when the folder cannot be locked (then the
 * busy timeout is all the protection there is). */
static int lock_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void unlock_folder(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the descriptor releases the flock */
}

/* Memory statistics take a global mutex on every allocation SQLite makes;
 * nothing here reads them. Must run before the first connection opens. */
static void configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* A WAL store in a folder we cannot write, with no -wal file beside it,
 * is quiescent: nobody writes it (a writer would have made the -wal), so
 * it can be read as immutable, which needs no -shm file. */
static int no_pending_wal(const char *path)
{
    char wal[4200];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", path);
    return stat(wal, &st) != 0 || st.st_size == 0;
}

/* Opens the connection of a read open: as usual, or, on read-only media,
 * immutable. Returns the SQLite result code; *db is set either way. */
static int open_for_reading(const char *path, sqlite3 **db)
{
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    int64_t probe;
    if (rc == SQLITE_OK) {
        rc = pragma_int(*db, "SELECT count(*) FROM sqlite_master", &probe);
        if (rc == SQLITE_OK || rc == SQLITE_NOTADB)
            return SQLITE_OK; /* verify() says what a non-database is */
    }
    if ((rc & 0xff) != SQLITE_READONLY && (rc & 0xff) != SQLITE_CANTOPEN)
        return rc;
    if (!no_pending_wal(path))
        return rc;
    sqlite3_close(*db);
    *db = NULL;
    /* file: URI with the characters that end a URI path (?, #) and the
     * escape character itself percent-encoded */
    ms_buf uri = {0};
    ms_buf_adds(&uri, "file:");
    for (const char *c = path; *c; c++) {
        if (*c == '?' || *c == '#' || *c == '%')
            ms_buf_printf(&uri, "%%%02X", (unsigned char)*c);
        else
            ms_buf_addc(&uri, *c);
    }
    ms_buf_adds(&uri, "?immutable=1");
    if (uri.oom) {
        ms_buf_free(&uri);
        return SQLITE_NOMEM;
    }
    rc = sqlite3_open_v2(uri.data, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    ms_buf_free(&uri);
    return rc;
}

int ms_store_open(const char *path, enum ms_store_mode mode, ms_store **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (!exists && mode == MS_STORE_READ)
        return ms_errf(err, errlen,
                    "no moonspan database at %s; record traces first with `moonspan run SCRIPT`, "
                    "or point --db (or MOONSPAN_DB) at an existing one", path);
    if (exists && S_ISDIR(st.st_mode))
        return ms_errf(err, errlen, "%s is a directory; pass --db with a file path", path);
    if (exists && !S_ISREG(st.st_mode))
        return ms_errf(err, errlen, "%s is not a regular file (a %s); pass --db with a moonspan "
                    "database file", path, S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket"
                    : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device" : "special file");
    if (exists && mode == MS_STORE_WRITE && access(path, W_OK) != 0)
        return ms_errf(err, errlen, "cannot write %s: %s; pass --db with a writable path", path, strerror(errno));

    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
    ms_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return ms_errf(err, errlen, "out of memory opening %s", path);
    }
    /* Writers serialise opening on a lock of the folder: two processes
     * creating one new store would otherwise race between "empty file" and
     * "schema written" (and on switching it to WAL). A folder lock leaves
     * SQLite's own locks on the file alone. */
    int dirfd = mode == MS_STORE_WRITE ? lock_folder(path) : -1;
    int rc = mode == MS_STORE_READ
                 ? open_for_reading(path, &s->db)
                 : sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                     SQLITE_OPEN_NOMUTEX, NULL);
    int fresh = 0;
    int64_t version = 0;
    if (rc != SQLITE_OK) {
        if (mode == MS_STORE_READ && !no_pending_wal(path))
            ms_errf(err, errlen, "cannot read %s: %s; its last writes are still in %s-wal and reading "
                    "them needs a folder this user can write; copy %s and %s-wal somewhere writable",
                    path, s->db ? sqlite3_errmsg(s->db) : "out of memory", path, path, path);
        else
            ms_errf(err, errlen, "cannot open %s: %s; pass --db with a %s path", path,
                    s->db ? sqlite3_errmsg(s->db) : "out of memory",
                    mode == MS_STORE_READ ? "readable" : "writable");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (verify(s->db, path, &fresh, &version, err, errlen))
        goto fail;
    if (mode == MS_STORE_READ) {
        if (fresh) {
            ms_errf(err, errlen, "%s holds no moonspan data yet; record traces with `moonspan run SCRIPT`", path);
            goto fail;
        }
        *out = s;
        return 0;
    }
    /* WAL lets readers (report) run while a writer appends; NORMAL sync is
     * durable across process crashes, which is what a tracer must survive.
     * A larger page cache and fewer, larger checkpoints keep the writer
     * appending instead of copying WAL frames back every 4 MB; the writer
     * checkpoints on its own when idle, and a WAL grown by a burst is cut
     * back to 16 MB when it restarts. Page size can only change before
     * the file has content. */
    if (fresh && exec(s, "PRAGMA page_size=8192;", err, errlen))
        goto fail;
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;"
                "PRAGMA wal_autocheckpoint=8192; PRAGMA journal_size_limit=16777216;", err, errlen)) {
        ms_errf(err, errlen, "cannot write %s: %s; pass --db with a writable path", path,
                sqlite3_errmsg(s->db));
        goto fail;
    }
    if (version < MS_SCHEMA_VERSION && create_schema(s, err, errlen)) {
        if (fresh) /* a new file: the likely cause is where it is */
            ms_errf(err, errlen, "cannot write %s: %s; pass --db with a writable path", path,
                    sqlite3_errmsg(s->db));
        goto fail;
    }
    if (sqlite3_prepare_v2(s->db, INS_TRACE, -1, &s->ins_trace, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, INS_SPAN, -1, &s->ins_span, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, INS_EVENT, -1, &s->ins_event, NULL) != SQLITE_OK) {
        ms_errf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    unlock_folder(dirfd);
    *out = s;
    return 0;
fail:
    unlock_folder(dirfd);
    ms_store_close(s);
    return -1;
}

sqlite3 *ms_store_db(ms_store *s) { return s->db; }

int ms_store_add_run(ms_store *s, const char *script, const char *args_json,
                     const char *version, int64_t start_ns, int64_t *run_id,
                     char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO runs (script, args, host_version, start_ns, pid) VALUES (?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, script, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, args_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, start_ns);
    sqlite3_bind_int64(st, 5, (int64_t)getpid());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
    *run_id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static void bind_str(sqlite3_stmt *st, int col, const ms_trace *t, ms_str s)
{
    if (s.off == MS_NONE)
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_text(st, col, t->arena + s.off, (int)s.len, SQLITE_STATIC);
}

static void bind_json(sqlite3_stmt *st, int col, const ms_buf *b)
{
    if (b->len)
        sqlite3_bind_text(st, col, b->data, (int)b->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

/* Runs a bound insert and resets it. Returns the SQLite result code. */
static int step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_spans(ms_store *s, const ms_trace *t, int64_t trace_row, int64_t first_span)
{
    sqlite3_stmt *st = s->ins_span;
    for (uint32_t i = 0; i < t->nspans; i++) {
        const ms_span *sp = &t->spans[i];
        sqlite3_bind_int64(st, 1, first_span + i);
        sqlite3_bind_int64(st, 2, trace_row);
        sqlite3_bind_int64(st, 3, (int64_t)sp->id);
        if (sp->parent != MS_NONE)
            sqlite3_bind_int64(st, 4, (int64_t)t->spans[sp->parent].id);
        else if (t->remote_parent)
            sqlite3_bind_int64(st, 4, (int64_t)t->remote_parent);
        else
            sqlite3_bind_null(st, 4);
        bind_str(st, 5, t, sp->name);
        static const char *const kinds[] = {"trace", "span", "llm"};
        sqlite3_bind_text(st, 6, kinds[sp->kind], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, ms_mono_to_epoch(sp->start));
        sqlite3_bind_int64(st, 8, sp->end - sp->start);
        sqlite3_bind_text(st, 9, ms_status_name(ms_span_status(t, i)), -1, SQLITE_STATIC);
        if (sp->error == MS_NONE) {
            sqlite3_bind_int(st, 10, 0);
            for (int c = 11; c <= 13; c++)
                sqlite3_bind_null(st, c);
        } else {
            const ms_span_error *e = &t->errors[sp->error];
            sqlite3_bind_int(st, 10, e->own);
            bind_str(st, 11, t, e->type);
            bind_str(st, 12, t, e->message);
            bind_str(st, 13, t, e->traceback);
        }
        ms_buf_reset(&s->scratch);
        ms_span_attrs_json(t, i, &s->scratch);
        if (s->scratch.oom)
            return SQLITE_NOMEM;
        bind_json(st, 14, &s->scratch);
        if (sp->llm == MS_NONE) {
            for (int c = 15; c <= 22; c++)
                sqlite3_bind_null(st, c);
            sqlite3_bind_null(st, 25);
            sqlite3_bind_null(st, 26);
        } else {
            const ms_llm *l = &t->llm[sp->llm];
            bind_str(st, 15, t, l->provider);
            bind_str(st, 16, t, l->model);
            sqlite3_bind_int64(st, 17, l->input);
            sqlite3_bind_int64(st, 18, l->output);
            sqlite3_bind_int64(st, 19, l->cache_read);
            sqlite3_bind_int64(st, 20, l->cache_write);
            sqlite3_bind_int(st, 21, l->estimated);
            if (isnan(l->cost_usd))
                sqlite3_bind_null(st, 22);
            else
                sqlite3_bind_double(st, 22, l->cost_usd);
            if (l->ttft_ns >= 0)
                sqlite3_bind_int64(st, 25, l->ttft_ns);
            else
                sqlite3_bind_null(st, 25);
            /* NULL, not 0, for live calls: the column reads "replayed or not
             * known to be", and v1 rows (NULL) mean live */
            if (l->replayed)
                sqlite3_bind_int(st, 26, 1);
            else
                sqlite3_bind_null(st, 26);
        }
        sqlite3_bind_int64(st, 23, sp->retries);
        if (sp->retry_state == MS_RETRY_NONE)
            sqlite3_bind_null(st, 24);
        else
            sqlite3_bind_int(st, 24, sp->retry_state == MS_RETRY_SUCCEEDED);
        if (sp->backoff_ns > 0)
            sqlite3_bind_int64(st, 27, sp->backoff_ns);
        else
            sqlite3_bind_null(st, 27);
        int rc = step(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int write_trace(ms_store *s, const ms_trace *t, int64_t trace_row, int64_t first_span)
{
    ms_trace_totals tot;
    ms_trace_totals_get(t, &tot);
    char hex[33];
    ms_trace_id_hex(&t->id, hex);
    const ms_span *root = &t->spans[0];
    sqlite3_stmt *st = s->ins_trace;
    sqlite3_bind_int64(st, 1, trace_row);
    sqlite3_bind_text(st, 2, hex, 32, SQLITE_TRANSIENT);
    if (t->run_id)
        sqlite3_bind_int64(st, 3, t->run_id);
    else
        sqlite3_bind_null(st, 3);
    bind_str(st, 4, t, root->name);
    sqlite3_bind_int64(st, 5, ms_mono_to_epoch(root->start));
    sqlite3_bind_int64(st, 6, root->end - root->start);
    sqlite3_bind_text(st, 7, ms_status_name(ms_trace_status(t)), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, tot.errors);
    sqlite3_bind_int64(st, 9, t->nspans);
    sqlite3_bind_int64(st, 10, first_span);
    sqlite3_bind_int64(st, 11, tot.tokens.input);
    sqlite3_bind_int64(st, 12, tot.tokens.output);
    sqlite3_bind_int64(st, 13, tot.tokens.cache_read);
    sqlite3_bind_int64(st, 14, tot.tokens.cache_write);
    if (isnan(tot.cost_usd))
        sqlite3_bind_null(st, 15);
    else
        sqlite3_bind_double(st, 15, tot.cost_usd);
    sqlite3_bind_int64(st, 16, tot.unknown_cost_calls);
    ms_buf_reset(&s->scratch);
    ms_span_attrs_json(t, 0, &s->scratch);
    if (s->scratch.oom)
        return SQLITE_NOMEM;
    bind_json(st, 17, &s->scratch);
    if (tot.replayed_calls)
        sqlite3_bind_double(st, 18, tot.replayed_cost_usd);
    else
        sqlite3_bind_null(st, 18);
    int rc = step(st);
    if (rc != SQLITE_OK)
        return rc;
    if ((rc = write_spans(s, t, trace_row, first_span)) != SQLITE_OK)
        return rc;
    for (uint32_t e = 0; e < t->nevents; e++) {
        const ms_event *ev = &t->events[e];
        st = s->ins_event;
        sqlite3_bind_int64(st, 1, trace_row);
        sqlite3_bind_int64(st, 2, (int64_t)t->spans[ev->span].id);
        bind_str(st, 3, t, ev->name);
        sqlite3_bind_int64(st, 4, ms_mono_to_epoch(ev->time));
        bind_str(st, 5, t, ev->attrs_json);
        bind_str(st, 6, t, ev->error_type);
        bind_str(st, 7, t, ev->error_message);
        if ((rc = step(st)) != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* One attempt at the whole batch in one transaction. Row ids are assigned
 * here, under the write lock, so each trace's spans are contiguous. */
static int write_batch(ms_store *s, ms_trace *const *traces, size_t n)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    int64_t trace_row = 0, span_row = 0;
    if ((rc = pragma_int(s->db, "SELECT coalesce(max(rowid), 0) FROM traces", &trace_row)) != SQLITE_OK ||
        (rc = pragma_int(s->db, "SELECT coalesce(max(rowid), 0) FROM spans", &span_row)) != SQLITE_OK)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        const ms_trace *t = traces[i];
        if (t->nspans == 0)
            continue;
        if ((rc = write_trace(s, t, ++trace_row, span_row + 1)) != SQLITE_OK)
            goto rollback;
        span_row += t->nspans;
    }
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return rc;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int ms_store_write(ms_store *s, ms_trace *const *traces, size_t n, char *err, size_t errlen)
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

void ms_store_checkpoint(ms_store *s)
{
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

void ms_store_close(ms_store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->ins_trace);
    sqlite3_finalize(s->ins_span);
    sqlite3_finalize(s->ins_event);
    sqlite3_close(s->db);
    ms_buf_free(&s->scratch);
    free(s->path);
    free(s);
}
