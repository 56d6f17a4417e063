/* ms_spans — the spans of a stored trace, read in C from their packed
 * parts (trace_parts rows in order, then traces.spans), for the readers
 * (report, show, the spans virtual table). */
#ifndef MS_SPANS_H
#define MS_SPANS_H

#include "ms_sqlite.h"
#include <stdint.h>

#include "ms_pack.h"

typedef struct ms_spans_walk {
    sqlite3_stmt *parts;          /* SELECT spans FROM trace_parts WHERE trace_row = ? */
    const void *own;              /* traces.spans of the trace (the caller's row) */
    size_t own_len;
    int stage;                    /* 0 parts, 1 own blob, 2 done */
    uint64_t salt;
    ms_pack_reader r;
    int reading;                  /* r holds an open blob */
    uint64_t *ids;                /* explicit ids seen, by gidx (migrated traces) */
    uint32_t cap_ids;
    int explicit_ids;
    uint64_t blob_seq;            /* bumped at each blob: name_ix values are per blob */
    const char *error;
} ms_spans_walk;

/* Prepares the walk on a connection. 0 or -1 with err. */
int ms_spans_walk_open(ms_spans_walk *w, sqlite3 *db, char *err, size_t errlen);
void ms_spans_walk_close(ms_spans_walk *w);

/* Starts on the trace of row `row` with `parts` earlier parts, span ids
 * derived from `salt`, and its own blob (NULL when none). The blob must
 * stay valid until the walk of this trace ends. */
void ms_spans_walk_trace(ms_spans_walk *w, int64_t row, int64_t parts, uint64_t salt,
                         const void *own, size_t own_len);

/* The same, for the trace in the current row of `st`, which selects its
 * row id, salt, parts and own blob as columns first .. first+3 (the
 * order the views' queries share). Returns the row id. */
int64_t ms_spans_walk_columns(ms_spans_walk *w, sqlite3_stmt *st, int first);

/* The next span of the trace: 1, 0 at the end, -1 with w->error when a
 * blob is corrupt or cannot be read. */
int ms_spans_walk_next(ms_spans_walk *w, ms_span_rec *out);

/* Ends the walk of the current trace and lets go of the rows it reads,
 * so the connection's read transaction can end (start another trace
 * with ms_spans_walk_trace). */
void ms_spans_walk_release(ms_spans_walk *w);

/* The span id of the parent of `s` (0 for the root). */
uint64_t ms_spans_walk_parent_id(const ms_spans_walk *w, const ms_span_rec *s);

#endif
