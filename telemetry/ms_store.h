/* ms_store — where runs and traces are kept: the interface the tracer and
 * the host write through, and its SQLite backend.
 *
 * The interface is ms_store_add_run, ms_store_write, ms_store_checkpoint
 * and ms_store_close, dispatched through the store's ms_store_ops: nothing
 * above it (ms_tracer, host/) knows the backend, so another one (a
 * ClickHouse store, for teams that outgrow one machine) is one more file
 * implementing ms_store_ops, and ms_store_open choosing it by --db.
 *
 * The SQLite backend: the schema is telemetry/ms_schema.sql (documented in
 * the README), versioned with PRAGMA user_version and marked with PRAGMA
 * application_id so a file that is not a moonspan store is recognised and
 * left untouched. Writes happen in WAL mode with a busy timeout, so several
 * moonspan processes can write one file at once. The readers (report,
 * traces, show, sql, evals) query its connection (ms_store_db). */
#ifndef MS_STORE_H
#define MS_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_trace.h"

#define MS_SCHEMA_VERSION 6
/* The oldest version a read open accepts: readers look up what later
 * versions added (ms_schema_has); older stores need `moonspan upgrade`. */
#define MS_SCHEMA_READ_MIN 5
#define MS_APPLICATION_ID 0x4d6f6f6e /* "Moon" */

enum ms_store_mode {
    MS_STORE_READ,  /* open an existing store read-only; error if missing */
    MS_STORE_WRITE, /* open or create, and bring the schema up to date */
};

typedef struct ms_store ms_store;

/* What a run's telemetry did, for its runs row when it ends. */
typedef struct ms_run_stats {
    int64_t end_ns;             /* Unix epoch ns */
    const char *level;          /* at the start */
    uint32_t fold_above;        /* 0: off */
    double sample_rate;         /* 1: off */
    uint64_t spans_kept, fold_repetitions, spans_skipped, traces_sampled_out, spans_sampled_out;
    double ns_per_span, ns_per_fold, ns_per_skip; /* measured at the start; NaN: not measured */
    int64_t telemetry_ns;       /* the script's time in telemetry, from those */
} ms_run_stats;

/* A backend: what ms_store_add_run, ms_store_write, ms_store_checkpoint
 * and ms_store_close do for it (their contracts are below). A store's
 * first member points at its backend's ops. */
typedef struct ms_store_ops {
    int (*add_run)(ms_store *s, const char *script, const char *args_json, const char *version,
                   int64_t start_ns, int64_t *run_id, char *err, size_t errlen);
    int (*write)(ms_store *s, ms_trace *const *traces, size_t n, char *err, size_t errlen);
    void (*checkpoint)(ms_store *s);
    void (*close)(ms_store *s);
    int (*end_run)(ms_store *s, int64_t run_id, const ms_run_stats *st, char *err, size_t errlen);
} ms_store_ops;

/* The schema text (telemetry/ms_schema.sql, embedded at build time). */
extern const char ms_schema_sql[];

/* Opens the store at `path`. Refuses, without changing the file, a path
 * that is not a regular file (a FIFO would block forever), a file that is
 * not SQLite, a SQLite file that is not a moonspan store, a store from a
 * newer schema, and (in write mode) a file that cannot be written. Read
 * mode works on read-only files and folders (read-only media).
 * Returns 0, or -1 with a message naming the problem and the fix in err. */
int ms_store_open(const char *path, enum ms_store_mode mode, ms_store **out,
                  char *err, size_t errlen);

/* The schema version of the store at `path`, read without changing it
 * (0 for a new, empty file is refused as "nothing to upgrade"). Returns 0,
 * or -1 with err for a path that is not a moonspan store. */
int ms_store_version(const char *path, int64_t *version, char *err, size_t errlen);

/* Called while a migration repacks a store (version 3 to 4), so the
 * host can show progress; NULL (the default) says nothing. */
void ms_store_set_progress(void (*fn)(const char *what, int64_t done, int64_t total));

/* The underlying connection, for read-only queries (ms_report). */
sqlite3 *ms_store_db(ms_store *s);

/* Inserts a runs row. Returns 0 and its id in *run_id, or -1 with err. */
int ms_store_add_run(ms_store *s, const char *script, const char *args_json,
                     const char *version, int64_t start_ns, int64_t *run_id,
                     char *err, size_t errlen);

/* Completes run `run_id`'s row as it ends. Returns 0 or -1 with err. */
int ms_store_end_run(ms_store *s, int64_t run_id, const ms_run_stats *st, char *err, size_t errlen);

/* What ms_store_write did. */
enum ms_write_result {
    MS_WRITE_OK = 0,
    MS_WRITE_AGAIN = 1,   /* nothing written, for a reason that may pass: the disk
                           * is full, an I/O error, another process holds the lock */
    MS_WRITE_FAILED = -1, /* nothing written, and trying again will not help */
};

/* Writes `n` ended traces in one transaction, spans of each contiguous in
 * rowid order. Waits while another process writes (the busy timeout).
 * Returns an ms_write_result; err says what went wrong unless OK. */
int ms_store_write(ms_store *s, ms_trace *const *traces, size_t n,
                   char *err, size_t errlen);

/* Copies the WAL back into the database without waiting for anyone, so
 * the next write starts the WAL from its beginning. */
void ms_store_checkpoint(ms_store *s);

void ms_store_close(ms_store *s);

#endif
