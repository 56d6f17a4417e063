/* The SQLite store's insides, shared by its files (ms_store.c opens and
 * migrates, ms_store_write.c writes, ms_migrate.c repacks v3 stores).
 * Nothing outside telemetry/ms_store*.c and ms_migrate.c includes this. */
#ifndef MS_STORE_IMPL_H
#define MS_STORE_IMPL_H

#include "ms_pack.h"
#include "ms_store.h"

/* A trace written in parts: the row its first part created. */
typedef struct ms_open_row {
    uint64_t uid;
    int64_t row;
} ms_open_row;

struct ms_store {
    const ms_store_ops *ops;    /* first: the interface dispatches through it */
    sqlite3 *db;
    char *path;
    /* the writer (write mode only) */
    sqlite3_stmt *ins_trace, *upd_trace, *ins_part, *ins_prof;
    ms_pack_encoder *enc;
    ms_buf blob, scratch;
    char hex[33];               /* the trace id being written, bound without a copy */
    char who_num[3][32];        /* a numeric session, user or tags as text, bound without a copy */
    ms_open_row *rows, *rows_saved;
    size_t nrows, caprows, nsaved;
};

/* Runs sql on the store's connection; -1 with "PATH: message" in err. */
int ms_store_exec_(ms_store *s, const char *sql, char *err, size_t errlen);
/* Reads one integer (the first column of the first row). SQLite code. */
int ms_store_int_(sqlite3 *db, const char *sql, int64_t *out);

/* The SQLite backend's operations. */
int ms_sqlite_add_run_(ms_store *s, const char *script, const char *args_json, const char *version,
                       int64_t start_ns, int64_t *run_id, char *err, size_t errlen);
int ms_sqlite_write_(ms_store *s, ms_trace *const *traces, size_t n, char *err, size_t errlen);
void ms_sqlite_checkpoint_(ms_store *s);
void ms_sqlite_close_(ms_store *s);
int ms_sqlite_end_run_(ms_store *s, int64_t run_id, const ms_run_stats *st, char *err, size_t errlen);

/* Prepares the writer's statements and memory. Returns 0 or -1 with err. */
int ms_store_writer_open_(ms_store *s, char *err, size_t errlen);
void ms_store_writer_close_(ms_store *s);

/* The v3 -> v4 step: every trace's spans and events, read from the old
 * spans and span_events tables, packed into traces.spans; then the old
 * tables go. Runs inside the migration's transaction. 0 or -1 with err. */
int ms_migrate_v4_(ms_store *s, char *err, size_t errlen);

#endif
