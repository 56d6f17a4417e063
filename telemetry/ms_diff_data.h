/* ms_diff_data — the numbers of one `moonspan diff`, as the reading
 * (ms_diff_read.c) and comparisons (ms_diff.c) leave them for the output
 * (ms_diff_out.c). Private to those three files. */
#ifndef MS_DIFF_DATA_H
#define MS_DIFF_DATA_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_diff.h"
#include "ms_stats.h"
#include "ms_steps.h"
#include "ms_strmap.h"

/* A growable sample. */
typedef struct diff_vals {
    double *v;
    size_t n, cap;
} diff_vals;

/* One side's requests of one kind (a trace name), or all of them. The
 * samples are over completed requests (status ok or error): a request cut
 * short (interrupted, incomplete) has no meaningful latency, tokens or
 * error, and is counted apart, as the report does. */
typedef struct diff_reqs {
    diff_vals dur;              /* ns */
    diff_vals tokens;           /* input + output tokens of each request */
    diff_vals cost;             /* live USD of each request whose cost is known */
    int64_t requests;           /* every trace, cut short ones included */
    int64_t completed, interrupted, incomplete;
    int64_t sampled_out;        /* stored as their summary: no spans, so no steps */
    int64_t errors;             /* completed requests whose status is error */
    int64_t unpriced;           /* completed requests whose cost is unknown */
    int64_t llm_calls, llm_failed; /* completed LLM calls in their spans, of them failed */
} diff_reqs;

/* One side: its selection and what was read. */
typedef struct diff_side {
    ms_select sel;
    ms_buf desc;                /* the selection in words */
    int64_t evals_left_out;     /* eval traces the default left out (ms_select_evals_left_out) */
    diff_reqs all;
    ms_strmap names;            /* group (trace name, user or session) -> by_name[];
                                   DIFF_NO_GROUP for the traces without a user or session */
    diff_reqs *by_name;
    size_t cap_names;
    ms_steps steps;
} diff_side;

/* The key of the group of traces given no user (or session): a NUL byte,
 * which no value read as text holds. */
#define DIFF_NO_GROUP "\0"
#define DIFF_NO_GROUP_LEN 1

/* How a difference reads. WORSE is slower, costlier, more errors; SMALL
 * is a difference the interval shows but under --min-change. */
enum diff_verdict { V_NONE = 0, V_FEW, V_SMALL, V_WORSE, V_BETTER };

/* One measure compared: the statistic on each side and B - A. */
typedef struct diff_cmp {
    double a, b;
    ms_ci d;
    double p;                   /* rates: Fisher's exact p; NaN otherwise */
    int64_t ka, na, kb, nb;     /* rates: k of n on each side */
    int64_t ca, cb;             /* values on each side */
    enum diff_verdict v;
} diff_cmp;

/* A request row: all requests, or the requests of one name on both sides. */
typedef struct diff_req_row {
    const char *name;           /* the group's name, user or session; NULL: all requests, or
                                   (none set) the group without a user or session */
    int none;                   /* the group of traces given no user or session */
    const diff_reqs *r[2];
    diff_cmp p50, p95, tokens, cost, err_rate, llm_rate;
    enum diff_verdict time, money, errors; /* the row's verdicts */
} diff_req_row;

/* A step row: a path (or name) seen on either side. */
typedef struct diff_step_row {
    const ms_step *s[2];        /* NULL on a side that has no such step */
    const ms_steps *of;         /* whose names spell its path */
    diff_cmp p50, p95;
    enum diff_verdict time;
    /* the LLM calls inside each span of the step (has_llm: some were made
     * on a side): mean tokens and live cost per span */
    int has_llm;
    diff_cmp tokens, cost;
    enum diff_verdict money;
    int approximate;            /* some side's values came from folds */
    double size;                /* the ordering key: how much it changed */
} diff_step_row;

typedef struct diff {
    diff_side side[2];
    diff_req_row *reqs;
    size_t nreqs, cap_reqs;
    int64_t names_few;          /* names on both sides left without a row: too few */
    diff_step_row *steps;
    size_t nsteps, cap_steps;
    int failed;                 /* a row with evidence matched --fail-if */
} diff;

/* --- ms_diff_read.c ---------------------------------------------------- */

/* The selection of side `sd` ("A" or "B" in messages): the shared
 * narrowing with the side's own filter added; `last~N` is resolved and
 * ids are checked against the store. A filter given both ways (a run side
 * and --run) is refused; windows intersect. Returns 0, MS_DIFF_ERROR or
 * MS_DIFF_BAD_SIDE with err. */
int ms_diff_side_select(sqlite3 *db, const ms_diff_side *sd, const char *which,
                        const ms_select *narrow, ms_select *out, char *err, size_t errlen);

/* Reads the traces of side s (s->sel set), grouping its requests as
 * rows_by says and its steps by span name when by_name. Returns 0 or -1
 * with err. */
int ms_diff_read_side(sqlite3 *db, diff_side *s, int by_name, enum ms_diff_rows_by rows_by,
                      char *err, size_t errlen);

/* Frees what a side holds (safe on a side partly read or never read). */
void ms_diff_side_free(diff_side *s);

/* Appends x to a sample. Returns 0, or -1 on OOM (nothing added). */
int ms_diff_vals_add(diff_vals *s, double x);

/* --- ms_diff_out.c ------------------------------------------------------ */

/* The diff as text for people, or as the one JSON object `diff --json`
 * promises, appended to b. */
void ms_diff_text(const diff *d, const ms_diff_opts *o, ms_buf *b);
void ms_diff_json(const diff *d, const ms_diff_opts *o, ms_buf *b);

/* What matched --fail-if in a row, as MS_DIFF_FAIL_* bits. */
int ms_diff_req_fails(const diff_req_row *r, int fail_if);
int ms_diff_step_fails(const diff_step_row *s, int fail_if);

#endif
