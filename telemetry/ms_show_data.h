/* ms_show_data — one trace as `moonspan show` holds it: its row, its
 * spans linked into a tree ordered by start, and their events. Private
 * to ms_show.c, which loads it, and ms_show_text.c, which draws it. */
#ifndef MS_SHOW_DATA_H
#define MS_SHOW_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_profile.h"
#include "ms_show.h"

typedef struct span_node {
    int64_t rowid, span_id, parent_id, start_ns, duration_ns;
    int has_parent, error_own, has_tokens, estimated, has_cost, retry_succeeded;
    int has_ttft, replayed;
    int64_t in_tok, out_tok, cache_read, cache_write, retries, ttft_ns;
    int64_t backoff_ns;         /* waited between retry attempts; 0: none */
    double cost;
    size_t name, kind, status, error_type, error_message, attrs, provider, model;
    size_t error_traceback;     /* MS_NO_STR when none was taken */
    size_t input_role, input_text, output_text; /* captured content's excerpt (ms_show_content.c) */
    uint32_t name_id;           /* equal names, equal ids (names below trace_view.nnames) */
    size_t parent;              /* index of the parent node, MS_NO_STR for the root */
    size_t child0, nchild;      /* children: order[child0 .. child0 + nchild) */
    size_t event0, nevent;      /* events: evs[event0 .. event0 + nevent) */
    size_t prof0, nprof;        /* profile rows: pfns[prof0 .. prof0 + nprof), hottest first */
    int64_t prof_samples, prof_ns;
    /* a fold (kind "fold"): its repetitions; p50 and p95 from its histogram */
    int is_fold;
    int64_t fold_count, fold_errors, fold_total, fold_min, fold_max, fold_p50, fold_p95;
} span_node;

typedef struct span_event {
    int64_t span_id, time_ns;
    size_t node, name, attrs;
    size_t error_type, error_message; /* a manual error (ctx:add_error); else MS_NO_STR */
} span_event;

/* One scorer's result of an eval case (eval_results.scores). */
typedef struct eval_score {
    size_t name, reason;        /* arena offsets */
    double score;               /* NaN when absent */
    int pass, error;            /* error: the scorer raised */
} eval_score;

/* The eval result of a case's trace (eval_results by trace id): `found`
 * is 0 for a trace that is not a case. Texts are arena offsets; input,
 * expected, output and scores hold JSON text (a stored value that is not
 * JSON as a JSON string). */
typedef struct show_eval {
    int found;
    int64_t result_row, eval_run, repeat_index;
    int pass, replayed;
    double latency_ms, cost_usd; /* NaN when unknown */
    size_t suite, case_id, input, expected, output, scores, error;
    eval_score *list;
    size_t nlist, caplist;
} show_eval;

typedef struct trace_view {
    ms_buf arena;
    size_t id, name, status, attrs;
    size_t session, user, tags; /* who it was for (ms_who.h); MS_NO_STR when not given */
    int64_t row, start_ns, duration_ns, in_tok, out_tok, cache_read, cache_write;
    int64_t unknown, error_count, span_count, parts, remote_parent, sampled_out;
    uint64_t salt;
    int64_t pick, matches;      /* shown: number `pick` of the `matches` traces with the id */
    int has_cost;
    double cost;
    span_node *nodes;
    size_t nnodes;
    uint32_t nnames;            /* distinct span names */
    size_t *order;              /* node indices grouped by parent, by start */
    struct id_index *by_id;     /* (span_id, node) sorted by span_id */
    span_event *evs;
    size_t nevs, capevs;
    int profile;                /* --profile: rows loaded and shown */
    ms_prof_row *prof;          /* as read, strings in the arena ... */
    ms_prof_fn *pfns;           /* ... and as listed, once the arena is complete */
    size_t nprof, capprof;
    int64_t prof_samples, prof_ns;
    show_eval eval;             /* the eval result when the trace is an eval case */
} trace_view;

/* The trace as text: a header, then the tree (ms_show_text.c). */
void ms_show_text(const trace_view *v, const ms_show_opts *o, ms_buf *b);

/* --- ms_show_content.c --------------------------------------------------- */

struct ms_pack_reader;
struct ms_span_rec;

/* What reads captured content: a statement kept for the whole trace. */
typedef struct show_content {
    sqlite3_stmt *st;
} show_content;

/* Reads the excerpt of an llm span's captured content (the attributes
 * gen_ai.input.messages and gen_ai.output.messages, JSON text that
 * SQLite's JSON functions take apart): the last input message's role
 * and first text, and the answer's first text, into s. A span without
 * them keeps MS_NO_STR. Returns 0, or -1 with err. */
int ms_show_content_load(show_content *c, sqlite3 *db, trace_view *v, const struct ms_pack_reader *r,
                         const struct ms_span_rec *sp, span_node *s, char *err, size_t errlen);
void ms_show_content_close(show_content *c);

/* Two lines under span s at depth: "input  ROLE: text" and "output  text",
 * each cut at 120 bytes. Nothing for a span without captured content. */
void ms_show_content_text(const trace_view *v, const span_node *s, uint32_t depth, ms_buf *b);

/* --- ms_show_eval.c ------------------------------------------------------ */

/* Reads the eval result of the trace v (v->id, v->attrs read) into
 * v->eval. A case's trace carries its eval run in the attribute
 * eval_run, so the lookup uses the index on eval_results(eval_run)
 * rather than scanning for the trace id. A trace that is no case, or a
 * store without eval tables, leaves found 0. Returns 0 or -1 with err. */
int ms_show_eval_load(sqlite3 *db, trace_view *v, char *err, size_t errlen);

/* The member "eval": the result object, or null when the trace is no case. */
void ms_show_eval_json(const trace_view *v, int *first, ms_buf *b);

/* The text block under the header: the case, its verdict, input,
 * expected, output, each scorer and the error. Nothing when no case. */
void ms_show_eval_text(const trace_view *v, ms_buf *b);

void ms_show_eval_free(show_eval *e);

#endif
