/* ms_show — `moonspan show`: one trace as a tree of spans.
 *
 * Read-only; the trace row, its spans and its events are read in one
 * snapshot; output is built whole and written once, nothing on error. */
#ifndef MS_SHOW_H
#define MS_SHOW_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

typedef struct ms_show_opts {
    const char *id;  /* a trace id, or a prefix of 4 or more hex characters */
    long pick;       /* which of the traces matching id (1 = earliest); 0: id must match one */
    int json;        /* one JSON object instead of text */
    int profile;     /* with each span, its self CPU time per function (--profile) */
    /* the text view only; JSON is always the whole trace */
    int max_depth;   /* spans up to this depth (the root is 0); 0: all */
    double min_ms;   /* hide spans shorter than this, counting them under their parent */
    int all;         /* one line per span: siblings of one name not folded */
} ms_show_opts;

/* One trace as an indented tree: each span's name, duration, tokens,
 * cost, retries, status and error, with its events. Siblings sharing a
 * name print as one line with their count, total and spread unless
 * o->all; o->max_depth and o->min_ms leave spans out, counted. With
 * o->profile, also the self CPU time the profiler sampled in each span
 * (not in its child spans), hottest function first (ms_profile.h).
 *
 * Several traces can match an id: those of a run that joined an outer
 * trace through TRACEPARENT share its id, and a prefix can start several
 * ids. Then pick N shows the Nth of them ordered by start (then by row);
 * without a pick nothing is shown: the matches, numbered as pick counts
 * them, are written to `matches` (a table, or with json the object
 * {"error", "count", "matches": [{pick, trace_id, name, start_ns, start,
 * duration_ms, status, root_span_id}]}) and err names the fix.
 *
 * Returns 0 when the trace was written to `out`; 1 when nothing matches,
 * or no single trace was chosen (err says why); -1 on other errors (an id
 * that is not 4 to 32 hex characters, the store). */
int ms_show_write(sqlite3 *db, const ms_show_opts *o, FILE *out, FILE *matches,
                  char *err, size_t errlen);

/* ms_show_write into memory: the trace appended to `out`, or the matches
 * to `matches`, with the same returns (an out-of-memory buffer is -1).
 * For callers that send the view elsewhere (the web UI's /api/trace). */
struct ms_buf;
int ms_show_build(sqlite3 *db, const ms_show_opts *o, struct ms_buf *out, struct ms_buf *matches,
                  char *err, size_t errlen);

/* ms_show_write of `id` with no pick, matches written to `out`. */
int ms_trace_show(sqlite3 *db, const char *id, int json, FILE *out, char *err, size_t errlen);

#endif
