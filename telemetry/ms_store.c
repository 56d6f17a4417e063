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
#include "ms_store_impl.h"
#include "ms_vtab.h"
#include "ms_who.h"

#define BUSY_TIMEOUT_MS 30000

int ms_store_int_(sqlite3 *db, const char *sql, int64_t *out)
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
    int rc = ms_store_int_(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_NOTADB)
        return ms_errf(err, errlen,
                    "%s is not a SQLite database, so it is not a moonspan store; "
                    "pass --db with a moonspan database or a new file name", path);
    if (rc != SQLITE_OK)
        return ms_errf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
    if ((rc = ms_store_int_(db, "PRAGMA user_version", &version)) != SQLITE_OK ||
        (rc = ms_store_int_(db, "SELECT count(*) FROM sqlite_master", &tables)) != SQLITE_OK)
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

int ms_store_exec_(ms_store *s, const char *sql, char *err, size_t errlen)
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
 * version v to v + 1. Each changes what CREATE TABLE IF NOT EXISTS cannot
 * (new columns, a repacking); new tables and indexes come from
 * ms_schema_sql, run after the steps. The SQL steps never rewrite rows, so
 * they are quick on a big store (ADD COLUMN only edits the schema); the v4
 * step repacks every trace, with progress shown by the host. */
typedef struct migration {
    const char *sql;
    int (*fn)(ms_store *s, char *err, size_t errlen);
} migration;

static const migration MIGRATE[] = {
    /* 1 -> 2: replayed LLM calls (eval --replay); eval tables via the schema */
    {"ALTER TABLE spans ADD COLUMN replayed INTEGER;"
     "ALTER TABLE traces ADD COLUMN replayed_cost_usd REAL;", NULL},
    /* 2 -> 3: backoff time, typed ctx:add_error events (the few error
     * events are moved out of their JSON here; nothing else is rewritten) */
    {"ALTER TABLE spans ADD COLUMN backoff_ns INTEGER;"
     "ALTER TABLE span_events ADD COLUMN error_type TEXT;"
     "ALTER TABLE span_events ADD COLUMN error_message TEXT;"
     "UPDATE span_events SET error_type = json_extract(attrs, '$.type'),"
     " error_message = json_extract(attrs, '$.message'), attrs = NULL"
     " WHERE name = 'error' AND json_valid(attrs) AND json_extract(attrs, '$.type') = 'manual';", NULL},
    /* 3 -> 4: spans packed into their trace's row (ms_migrate.c) */
    {"ALTER TABLE traces ADD COLUMN span_salt INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE traces ADD COLUMN parent_span INTEGER;"
     "ALTER TABLE traces ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE traces ADD COLUMN spans BLOB;", ms_migrate_v4_},
    /* 4 -> 5: sampling (a trace kept as its summary) and what each run's
     * telemetry did (levels, folds, sampling, its own cost) */
    {"ALTER TABLE traces ADD COLUMN sampled_out INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE runs ADD COLUMN end_ns INTEGER;"
     "ALTER TABLE runs ADD COLUMN level TEXT;"
     "ALTER TABLE runs ADD COLUMN fold_above INTEGER;"
     "ALTER TABLE runs ADD COLUMN sample_rate REAL;"
     "ALTER TABLE runs ADD COLUMN spans_kept INTEGER;"
     "ALTER TABLE runs ADD COLUMN fold_repetitions INTEGER;"
     "ALTER TABLE runs ADD COLUMN spans_skipped INTEGER;"
     "ALTER TABLE runs ADD COLUMN traces_sampled_out INTEGER;"
     "ALTER TABLE runs ADD COLUMN spans_sampled_out INTEGER;"
     "ALTER TABLE runs ADD COLUMN ns_per_span REAL;"
     "ALTER TABLE runs ADD COLUMN ns_per_fold REAL;"
     "ALTER TABLE runs ADD COLUMN ns_per_skip REAL;"
     "ALTER TABLE runs ADD COLUMN telemetry_ns INTEGER;", NULL},
    /* 5 -> 6: who a trace was for, as columns; older rows get them from
     * their root's attributes (ms_who.h), rewriting only the rows whose
     * attrs name one of them */
    {"ALTER TABLE traces ADD COLUMN session TEXT;"
     "ALTER TABLE traces ADD COLUMN user_id TEXT;"
     "ALTER TABLE traces ADD COLUMN tags TEXT;"
     "UPDATE traces SET session = " MS_WHO_SESSION_SQL("attrs") ", user_id = " MS_WHO_USER_SQL("attrs")
     ", tags = " MS_WHO_TAGS_SQL("attrs")
     " WHERE instr(attrs, '\"session\"') OR instr(attrs, '\"user\"') OR instr(attrs, '\"tags\"');", NULL},
};
_Static_assert(sizeof MIGRATE / sizeof MIGRATE[0] == MS_SCHEMA_VERSION - 1,
               "one migration step per schema version after the first");

static int migrate_step(ms_store *s, const migration *m, char *err, size_t errlen)
{
    return ms_store_exec_(s, m->sql, err, errlen) || (m->fn && m->fn(s, err, errlen));
}

/* Creates the schema, or migrates an older one, inside one write
 * transaction, re-checking the version under the lock: another process may
 * have done it meanwhile. On any failure the transaction is rolled back, so
 * the file keeps its old version and data. Returns 0 or -1 with err. */
static int create_schema(ms_store *s, char *err, size_t errlen)
{
    char ignore[8];
    if (ms_store_exec_(s, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    int64_t version = 0;
    if (ms_store_int_(s->db, "PRAGMA user_version", &version) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot read %s: %s", s->path, sqlite3_errmsg(s->db));
        ms_store_exec_(s, "ROLLBACK", ignore, sizeof ignore);
        return -1;
    }
    if (version < MS_SCHEMA_VERSION) {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                 MS_APPLICATION_ID, MS_SCHEMA_VERSION);
        int failed = 0;
        for (int64_t v = version; v >= 1 && v < MS_SCHEMA_VERSION && !failed; v++)
            failed = migrate_step(s, &MIGRATE[v - 1], err, errlen);
        failed = failed || ms_store_exec_(s, ms_schema_sql, err, errlen) || ms_store_exec_(s, pragmas, err, errlen);
        if (failed) {
            if (version > 0) {
                char why[384];
                snprintf(why, sizeof why, "%s", err && errlen ? err : "?");
                ms_errf(err, errlen, "cannot upgrade %s from schema version %lld to %d"
                        " (it stays at version %lld, its data untouched): %s", s->path,
                        (long long)version, MS_SCHEMA_VERSION, (long long)version, why);
            }
            ms_store_exec_(s, "ROLLBACK", ignore, sizeof ignore);
            return -1;
        }
    }
    if (ms_store_exec_(s, "COMMIT", err, errlen)) {
        ms_store_exec_(s, "ROLLBACK", ignore, sizeof ignore);
        return -1;
    }
    return 0;
}

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
        rc = ms_store_int_(*db, "SELECT count(*) FROM sqlite_master", &probe);
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
    static const ms_store_ops sqlite_ops = {ms_sqlite_add_run_, ms_sqlite_write_, ms_sqlite_checkpoint_,
                                            ms_sqlite_close_, ms_sqlite_end_run_};
    ms_store *s = calloc(1, sizeof *s);
    if (s)
        s->ops = &sqlite_ops;
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
    if (ms_vtab_register(s->db) != SQLITE_OK) {
        ms_errf(err, errlen, "%s: cannot register the spans tables: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (mode == MS_STORE_READ) {
        if (fresh) {
            ms_errf(err, errlen, "%s holds no moonspan data yet; record traces with `moonspan run SCRIPT`", path);
            goto fail;
        }
        if (version < MS_SCHEMA_READ_MIN) {
            ms_errf(err, errlen, "%s is a store of version %lld, older than this moonspan reads (%d); upgrade "
                    "it in place with `moonspan --db %s upgrade` (every trace is kept; `run`, `eval` and "
                    "`test` upgrade it too)", path, (long long)version, MS_SCHEMA_READ_MIN, path);
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
    if (fresh && ms_store_exec_(s, "PRAGMA page_size=8192;", err, errlen))
        goto fail;
    if (ms_store_exec_(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;"
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
    if (ms_store_writer_open_(s, err, errlen))
        goto fail;
    unlock_folder(dirfd);
    *out = s;
    return 0;
fail:
    unlock_folder(dirfd);
    ms_store_close(s);
    return -1;
}

int ms_store_version(const char *path, int64_t *version, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ms_errf(err, errlen, "no moonspan database at %s; point --db (or MOONSPAN_DB) at one", path);
    if (!S_ISREG(st.st_mode))
        return ms_errf(err, errlen, "%s is not a regular file; pass --db with a moonspan database file", path);
    sqlite3 *db = NULL;
    int fresh = 0, rc = open_for_reading(path, &db);
    if (rc != SQLITE_OK) {
        ms_errf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    rc = verify(db, path, &fresh, version, err, errlen);
    sqlite3_close(db);
    if (rc == 0 && fresh)
        return ms_errf(err, errlen, "%s holds no moonspan data yet; nothing to upgrade", path);
    return rc;
}

sqlite3 *ms_store_db(ms_store *s) { return s->db; }

int ms_sqlite_add_run_(ms_store *s, const char *script, const char *args_json,
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

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

int ms_sqlite_end_run_(ms_store *s, int64_t run_id, const ms_run_stats *r, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE runs SET end_ns = ?2, level = ?3, fold_above = ?4, sample_rate = ?5,"
                           " spans_kept = ?6, fold_repetitions = ?7, spans_skipped = ?8,"
                           " traces_sampled_out = ?9, spans_sampled_out = ?10, ns_per_span = ?11,"
                           " ns_per_fold = ?12, ns_per_skip = ?13, telemetry_ns = ?14 WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, r->end_ns);
    sqlite3_bind_text(st, 3, r->level, -1, SQLITE_STATIC);
    if (r->fold_above)
        sqlite3_bind_int64(st, 4, r->fold_above);
    sqlite3_bind_double(st, 5, r->sample_rate);
    const uint64_t counts[] = {r->spans_kept, r->fold_repetitions, r->spans_skipped, r->traces_sampled_out,
                               r->spans_sampled_out};
    for (int i = 0; i < 5; i++)
        sqlite3_bind_int64(st, 6 + i, (int64_t)counts[i]);
    bind_real(st, 11, r->ns_per_span);
    bind_real(st, 12, r->ns_per_fold);
    bind_real(st, 13, r->ns_per_skip);
    sqlite3_bind_int64(st, 14, r->telemetry_ns);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ms_errf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
    return 0;
}

int ms_store_end_run(ms_store *s, int64_t run_id, const ms_run_stats *st, char *err, size_t errlen)
{
    return s->ops->end_run(s, run_id, st, err, errlen);
}

void ms_sqlite_close_(ms_store *s)
{
    if (!s)
        return;
    ms_store_writer_close_(s);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* --- the interface ------------------------------------------------------------ */

int ms_store_add_run(ms_store *s, const char *script, const char *args_json, const char *version,
                     int64_t start_ns, int64_t *run_id, char *err, size_t errlen)
{
    return s->ops->add_run(s, script, args_json, version, start_ns, run_id, err, errlen);
}

int ms_store_write(ms_store *s, ms_trace *const *traces, size_t n, char *err, size_t errlen)
{
    return s->ops->write(s, traces, n, err, errlen);
}

void ms_store_checkpoint(ms_store *s)
{
    s->ops->checkpoint(s);
}

void ms_store_close(ms_store *s)
{
    if (s)
        s->ops->close(s);
}
