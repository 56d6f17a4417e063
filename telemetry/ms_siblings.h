/* ms_siblings — a tree of spans as the lines a person reads.
 *
 * A fine trace has thousands of spans, most of them the same few steps
 * repeated: printed one per line they bury the shape of the request. So
 * the siblings that share a name (under one parent, wherever they fall
 * among the others) become one line, "score_doc x1000", placed where the
 * first of them was; their children are merged the same way, so the line
 * under it is "tokenize x1000". Spans deeper than a limit, or shorter
 * than a limit, are counted instead of shown, and the lines can be capped
 * with the rest counted. `moonspan show` and `moonspan run`'s closing
 * timeline both draw through this; each formats the lines its own way.
 *
 * The caller describes its tree as nodes with children lists in the
 * order they are to be shown (by start), and a name id per node (equal
 * names, equal ids). */
#ifndef MS_SIBLINGS_H
#define MS_SIBLINGS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"

typedef struct ms_sib_node {
    uint32_t name;          /* name id: siblings with equal ids fold together */
    size_t child0, nchild;  /* children: kids[child0 .. child0 + nchild) */
    int64_t duration_ns;
} ms_sib_node;

typedef struct ms_sib_opts {
    int max_depth;          /* spans deeper are counted, not shown; < 0: no limit */
    int64_t min_ns;         /* spans shorter are counted, not shown; 0: none */
    int all;                /* one line per span: no folding */
    size_t max_lines;       /* at most this many lines; 0: no limit */
    int skip_root;          /* start with the root's children, at depth 0 */
} ms_sib_opts;

enum ms_sib_kind {
    MS_SIB_SPAN,           /* one span: members[first] */
    MS_SIB_GROUP,          /* `count` siblings of one name, folded */
    MS_SIB_HIDDEN          /* after a line's children: `hidden` of them were
                             * shorter than min_ns, `hidden_inside` spans inside those */
};

typedef struct ms_sib_line {
    uint8_t kind;           /* enum ms_sib_kind */
    uint32_t depth;
    size_t first, count;    /* the spans of the line: members[first .. first + count) */
    size_t below;           /* spans under it, deeper than max_depth, not shown */
    size_t hidden, hidden_inside;
} ms_sib_line;

typedef struct ms_siblings {
    ms_sib_line *lines;
    size_t nlines, cap_lines;
    size_t *members;        /* node indices */
    size_t nmembers, cap_members;
    size_t omitted;         /* spans not shown because max_lines was reached */
} ms_siblings;

/* The lines of the tree of `n` nodes (node 0 the root) whose children
 * lists are in `kids`, names ids below `nnames`. Returns 0, or -1 when
 * memory ran out. `out` is reset first and reusable. */
int ms_sib_build(const ms_sib_node *nodes, size_t n, const size_t *kids, uint32_t nnames,
                  const ms_sib_opts *o, ms_siblings *out);

void ms_sib_free(ms_siblings *f);

/* The durations of a folded line's spans: total, exact percentiles and
 * max, in ns. */
typedef struct ms_sib_stats {
    int64_t total_ns;
    double p50, p95, max;
} ms_sib_stats;

/* Returns 0, or -1 when memory ran out. */
int ms_sib_stats_of(const ms_siblings *f, const ms_sib_line *l, const ms_sib_node *nodes,
                     ms_sib_stats *out);

/* Appends " ×N" (the fold mark after a name). */
void ms_sib_mark(ms_buf *b, size_t count);
/* Appends "Σ 2.50 ms" right-aligned in `width` columns. */
void ms_sib_total(ms_buf *b, const ms_sib_stats *s, int width);
/* Appends "p50 2.00 µs  p95 4.00 µs  max 9.00 µs". */
void ms_sib_spread(ms_buf *b, const ms_sib_stats *s);

#endif
