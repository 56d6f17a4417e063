/* ms_traces — `moonspan traces`: the traces a selection picks (ms_select.h),
 * newest, slowest or costliest first, one line (or one JSON object) each.
 *
 * Read-only; output is built whole and written once, nothing on error. */
#ifndef MS_TRACES_H
#define MS_TRACES_H

#include "ms_select.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

enum ms_traces_sort {
    MS_TRACES_BY_START = 0, /* newest first */
    MS_TRACES_BY_DURATION,  /* slowest first */
    MS_TRACES_BY_COST       /* costliest first; unknown cost last */
};

typedef struct ms_traces_opts {
    ms_select sel;             /* which traces; errors_only for --errors */
    int limit;                 /* how many; <= 0: all */
    enum ms_traces_sort sort;  /* ties: newest first */
    int json;                  /* a JSON array instead of text */
    int page;                  /* with json: one page of the list, as the object
                                  {"total", "eval_traces_left_out", "traces": [...]} */
    int64_t offset;            /* rows skipped before the first shown (paging) */
} ms_traces_opts;

/* The first o->limit traces that o->sel picks in o->sort order, after
 * o->offset of them: id, name, start, duration, tokens, cost, status, who
 * and run. The text ends with a line saying how many eval traces the
 * selection's default left out, when any (the JSON array is the traces
 * alone; the page object has the count as eval_traces_left_out, and the
 * number of traces the selection picks in all as total, from the same
 * snapshot). Sorting by duration or cost reads the trace rows' columns
 * only, never their packed spans. Returns 0 or -1 with err. */
int ms_traces_write(sqlite3 *db, const ms_traces_opts *o, FILE *out, char *err, size_t errlen);

#endif
