/* ms_steps — the steps of `moonspan report`: the completed spans of the
 * traces read, grouped by name or by path, each group with its total and
 * self time and the tokens and cost of the LLM calls inside it.
 *
 * A path is the chain of span names from the request down to the span,
 * "rerank/score_doc": the request's own (root) span is left out, since
 * its name is the request's (an eval names each case's trace after the
 * case), so steps of requests with other names but the same shape share
 * a row; `report --name` narrows to one kind of request. Grouped by name,
 * "tokenize" called under "rerank" and under "embed" is one row; by path,
 * two.
 *
 * Self time is a span's duration minus the durations of its direct
 * children, clamped at 0 (concurrent children can add up to more than
 * their parent). A step's total time, tokens and cost include its nested
 * steps'; its self time does not.
 *
 * A fold (one record standing for many repetitions of a span) adds every
 * repetition: its count, its total and its histogram, which makes the
 * step's percentiles estimates (ms_dist.h); its total, not the time from
 * its first repetition to its last, is what its parent spent in it.
 *
 * A span's self time is only known once its children have been read, so
 * the spans of one trace are kept until ms_steps_trace_end. Memory is that
 * of the largest trace (40 bytes a span) plus one value per step span for
 * the percentiles (ms_dist). */
#ifndef MS_STEPS_H
#define MS_STEPS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_dist.h"
#include "ms_spans.h"
#include "ms_strmap.h"

enum ms_steps_by { MS_STEPS_BY_PATH, MS_STEPS_BY_NAME };

/* The LLM calls inside a step: the spans that recorded usage. */
typedef struct ms_steps_usage {
    int64_t in, out;            /* tokens */
    int64_t calls;
    int64_t unknown;            /* calls with no price */
    int64_t priced;             /* calls with a price, replayed ones excepted */
    double cost;                /* live spend: replayed calls left out */
} ms_steps_usage;

/* One row of the steps table. */
typedef struct ms_step {
    uint32_t key;               /* its path (MS_STEPS_BY_PATH) or name id */
    uint32_t name;              /* name id: the span name is ms_steps_name(s, name) */
    uint32_t depth;             /* 1 for a span directly under the request; 0 by name */
    ms_dist total;              /* ns */
    int64_t self_ns;            /* summed: its percentiles would cost as much again */
    ms_steps_usage llm;         /* the LLM calls inside it, its own included */
    /* with keep_values, per completed span that is not a fold: the tokens
     * (input + output) of the LLM calls inside it, and their live cost in
     * USD when every one was priced (0 for a span with no call). A step
     * with no call inside any of its spans keeps no values: no_llm counts
     * its spans until the first call, then they join as zeros. */
    ms_dist tokens, cost;
    uint64_t no_llm;
    /* filled by ms_steps_finish, in ms, whole ns */
    double p50, p95, p99;
    int approximate;            /* the percentiles are estimates (ms_dist.h) */
    const char *label;          /* "rerank/score_doc", or the name */
} ms_step;

typedef struct ms_steps_path {
    uint32_t parent, name;      /* the parent's path id, the last name's id */
} ms_steps_path;

typedef struct ms_steps_node ms_steps_node; /* a span of the trace being read */
typedef struct ms_steps_u64map ms_steps_u64map;

#define MS_STEPS_PCACHE_BITS 12
typedef struct ms_steps_pcache {
    uint32_t parent, name, path;
} ms_steps_pcache;

typedef struct ms_steps {
    enum ms_steps_by by;
    ms_strmap names;            /* span names -> name ids */
    ms_steps_path *paths;       /* by path id; 0 is the request itself */
    size_t npaths, cap_paths;
    ms_steps_u64map *path_ids;  /* (parent path, name id) -> path id */
    ms_steps_pcache pcache[1 << MS_STEPS_PCACHE_BITS]; /* its latest answers */
    ms_step *steps;             /* by key; after ms_steps_finish, the rows sorted */
    size_t nsteps, cap_steps;
    double total_ns, self_ns;   /* over every step */
    int keep_values;            /* ms_steps_finish leaves each step's values in
                                   its `total`, and `tokens` and `cost` are filled
                                   (diff resamples them); set after init */
    ms_buf labels;              /* the rows' labels */
    const char *error;          /* why ms_steps_add or ms_steps_trace_end failed */

    /* the trace being read */
    ms_steps_node *nodes;       /* by gidx */
    size_t cap_nodes;
    uint32_t end;               /* 1 + the highest gidx seen */
    int late;                   /* some span came before its parent */
    ms_steps_usage *usage;
    size_t nusage, cap_usage;
    /* the folds of the trace being read: their repetitions' histograms
     * (slots past nfolds keep their memory) */
    struct ms_steps_fold *folds;
    size_t nfolds, cap_folds;
    int64_t *name_of_ix;        /* a blob's string index -> name id; -1: not looked up */
    uint32_t cap_ix;
    uint64_t ix_blob;           /* the blob name_of_ix is for */
} ms_steps;

/* Starts empty, grouping `by`. */
void ms_steps_init(ms_steps *s, enum ms_steps_by by);
void ms_steps_free(ms_steps *s);

/* Adds span `sp` of the trace being walked by `w` (its blob's strings
 * are needed to name it). Returns 0, or -1 with s->error. */
int ms_steps_add(ms_steps *s, const ms_spans_walk *w, const ms_span_rec *sp);

/* Groups the spans added since the last call (one trace). 0 or -1 with
 * s->error. */
int ms_steps_trace_end(ms_steps *s);

/* Computes the percentiles and sorts the rows by total time, most first
 * (ties by path or name): afterwards steps[0 .. nsteps) are the groups
 * that have at least one span, and nothing may be added. Their values
 * are freed unless keep_values is set: then an exact step's are in
 * total.v[0 .. total.n) (reordered), an approximate one's in total.hist. Returns 0, or -1
 * when memory ran out. */
int ms_steps_finish(ms_steps *s);

/* A name id's text (NUL-terminated; names may hold NULs, which cut it). */
const char *ms_steps_name(const ms_steps *s, uint32_t name);

/* Calls fn(ud, name) for each name of the path of `step`, from the
 * request down (just the name when grouped by name). */
void ms_steps_path_each(const ms_steps *s, const ms_step *step,
                        void (*fn)(void *ud, const char *name), void *ud);

#endif
