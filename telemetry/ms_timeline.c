/* ms_timeline — a trace in memory as text (see ms_timeline.h): the
 * header, then the spans of the buffer linked into a tree and drawn
 * through ms_siblings. */
#include "ms_timeline.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_fmt.h"
#include "ms_siblings.h"
#include "ms_strmap.h"
#include "ms_text.h"

#define OFFSET_COL 12
#define DUR_COL 10
#define ADD_ERRORS_SHOWN 10 /* ctx:add_error lines in a bounded timeline */

/* Appends a string of the trace for a terminal (see ms_text.h). */
static void add_str(ms_buf *out, const ms_trace *t, ms_str s)
{
    if (s.off != MS_NONE)
        ms_buf_add_text(out, t->arena + s.off, s.len, 0);
}

/* "  +1.20 ms" then the duration cell, as every span line starts. */
static void time_cells(ms_buf *out, int64_t offset_ns, const char *dur)
{
    char t[48], c[56];
    snprintf(c, sizeof c, "+%s", ms_fmt_ms(t, sizeof t, (double)offset_ns / MS_NS_PER_MS));
    ms_buf_adds(out, "  ");
    ms_fmt_right(out, c, OFFSET_COL);
    ms_buf_addc(out, ' ');
    ms_fmt_right(out, dur, DUR_COL);
    ms_buf_adds(out, "  ");
}

static void indent(ms_buf *out, uint32_t depth)
{
    for (uint32_t d = 0; d < depth; d++)
        ms_buf_adds(out, "  ");
}

/* One span: offset, duration, name, and what it carries. */
static void span_line(const ms_trace *t, const ms_span *s, uint32_t depth, int64_t t0, int64_t now,
                      ms_buf *out)
{
    char d[48];
    int64_t end = s->end ? s->end : now;
    const ms_fold *fold = s->kind == MS_KIND_FOLD ? &t->folds[s->fold] : NULL;
    /* a fold: the sum of its repetitions, not the time they spread over */
    int64_t dur = fold ? fold->total : end - s->start;
    time_cells(out, s->start - t0, ms_fmt_ms(d, sizeof d, (double)dur / MS_NS_PER_MS));
    indent(out, depth);
    add_str(out, t, s->name);
    if (fold) {
        char p50[48], max[48];
        ms_sib_mark(out, (size_t)fold->count);
        ms_buf_printf(out, "  folded: p50 ~%s  max %s",
                      ms_fmt_ms(p50, sizeof p50, (double)ms_hist_quantile(&fold->hist, 0.5) / MS_NS_PER_MS),
                      ms_fmt_ms(max, sizeof max, (double)fold->max / MS_NS_PER_MS));
        if (fold->errors)
            ms_buf_printf(out, "  %llu failed", (unsigned long long)fold->errors);
    }
    if (!s->end)
        ms_buf_adds(out, "  (open)");
    if (s->llm != MS_NONE) {
        const ms_llm *l = &t->llm[s->llm];
        ms_buf_adds(out, "  [");
        add_str(out, t, l->provider);
        ms_buf_addc(out, '/');
        add_str(out, t, l->model);
        ms_buf_printf(out, " %" PRId64 " in, %" PRId64 " out%s", l->input, l->output,
                      l->estimated ? " (estimated)" : "");
        if (isnan(l->cost_usd))
            ms_buf_adds(out, ", cost unknown");
        else
            ms_buf_printf(out, ", $%.6f", l->cost_usd);
        ms_buf_adds(out, l->replayed ? ", replayed]" : "]");
    }
    if (s->retries)
        ms_buf_printf(out, "  retries %u (%s)", s->retries,
                      s->retry_state == MS_RETRY_SUCCEEDED ? "succeeded" : "failed");
    if (s->error != MS_NONE) {
        const ms_span_error *e = &t->errors[s->error];
        if (e->own) {
            ms_buf_adds(out, "  ERROR ");
            add_str(out, t, e->type);
            ms_buf_adds(out, ": ");
            ms_buf_add_text_max(out, ms_trace_str(t, e->message), e->message.len, 200, 0);
        } else {
            ms_buf_adds(out, "  error (raised below)");
        }
    } else if (s->status != MS_STATUS_OK) {
        ms_buf_printf(out, "  %s", ms_status_name(s->status));
    }
    ms_buf_addc(out, '\n');
}

/* Siblings of one name: the first one's offset, their total, "name ×N",
 * their spread, and what they carry between them. */
static void group_line(const ms_trace *t, const ms_siblings *f, const ms_sib_line *l,
                       const ms_sib_node *fn, int64_t t0, ms_buf *out)
{
    ms_sib_stats st;
    if (ms_sib_stats_of(f, l, fn, &st)) {
        out->oom = 1;
        return;
    }
    const ms_span *first = &t->spans[f->members[l->first]];
    int64_t in = 0, outt = 0, calls = 0, errors = 0, open = 0, unpriced = 0;
    double cost = 0;
    for (size_t i = 0; i < l->count; i++) {
        const ms_span *s = &t->spans[f->members[l->first + i]];
        open += !s->end;
        errors += s->error != MS_NONE && t->errors[s->error].own;
        if (s->llm != MS_NONE) {
            const ms_llm *x = &t->llm[s->llm];
            calls++;
            in += x->input;
            outt += x->output;
            if (isnan(x->cost_usd))
                unpriced++;
            else
                cost += x->cost_usd;
        }
    }
    ms_buf_adds(out, "  ");
    char t1[48], c[56];
    snprintf(c, sizeof c, "+%s", ms_fmt_ms(t1, sizeof t1, (double)(first->start - t0) / MS_NS_PER_MS));
    ms_fmt_right(out, c, OFFSET_COL);
    ms_buf_addc(out, ' ');
    ms_sib_total(out, &st, DUR_COL);
    ms_buf_adds(out, "  ");
    indent(out, l->depth);
    add_str(out, t, first->name);
    ms_sib_mark(out, l->count);
    ms_buf_adds(out, "  ");
    ms_sib_spread(out, &st);
    if (open)
        ms_buf_printf(out, "  %" PRId64 " open", open);
    if (calls) {
        ms_buf_printf(out, "  [%" PRId64 " calls, %" PRId64 " in, %" PRId64 " out", calls, in, outt);
        if (calls > unpriced)
            ms_buf_printf(out, ", $%.6f", cost);
        if (unpriced)
            ms_buf_printf(out, ", cost unknown for %" PRId64, unpriced);
        ms_buf_addc(out, ']');
    }
    if (errors)
        ms_buf_printf(out, "  %" PRId64 " ERROR%s", errors, errors == 1 ? "" : "S");
    ms_buf_addc(out, '\n');
}

/* The spans of the buffer as ms_siblings's tree: node i is t->spans[i] (0
 * the root), children in buffer order, which is start order. A span
 * whose parent was cut already hangs off the root. Returns 0 or -1. */
static int fold_tree(const ms_trace *t, int64_t now, ms_sib_node *fn, size_t *kids, uint32_t *nnames)
{
    uint32_t n = t->nspans;
    size_t *parent = malloc(n * sizeof *parent);
    ms_strmap names = {0};
    int ret = -1;
    if (!parent)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const ms_span *s = &t->spans[i];
        int created;
        long id = ms_strmap_get(&names, t->arena + s->name.off, s->name.len, &created);
        if (id < 0)
            goto done;
        fn[i] = (ms_sib_node){.name = (uint32_t)id,
                               .duration_ns = (s->end ? s->end : now) - s->start};
    }
    *nnames = (uint32_t)names.n;
    /* a parent began before its child, so it sits earlier in the buffer */
    for (uint32_t i = 1; i < n; i++) {
        const ms_span *ps = t->spans[i].parent == MS_NONE ? NULL : ms_trace_span(t, t->spans[i].parent);
        size_t p = ps ? (size_t)(ps - t->spans) : 0;
        parent[i] = p < i ? p : 0;
        fn[parent[i]].nchild++;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        fn[i].child0 = off;
        off += fn[i].nchild;
        fn[i].nchild = 0;
    }
    for (uint32_t i = 1; i < n; i++) {
        ms_sib_node *p = &fn[parent[i]];
        kids[p->child0 + p->nchild++] = i;
    }
    ret = 0;
done:
    ms_strmap_free(&names);
    free(parent);
    return ret;
}

void ms_trace_timeline(const ms_trace *t, int64_t now, size_t max_lines, ms_buf *out)
{
    if (t->nspans == 0)
        return;
    ms_trace_totals tot;
    ms_trace_totals_get(t, &tot);
    char hex[33], d[48];
    ms_trace_id_hex(&t->id, hex);
    const ms_span *root = &t->spans[0];
    int64_t end = root->end ? root->end : now;
    int status = ms_trace_status(t);
    ms_buf_adds(out, "trace ");
    add_str(out, t, root->name);
    ms_buf_printf(out, "  %s  %s  %s\n", hex, ms_fmt_ms(d, sizeof d, (double)(end - root->start) / MS_NS_PER_MS),
                  status == MS_STATUS_ERROR ? "ERROR" : ms_status_name(status));
    ms_buf_printf(out, "  tokens %" PRId64 " in / %" PRId64 " out", tot.tokens.input, tot.tokens.output);
    if (tot.tokens.cache_read || tot.tokens.cache_write)
        ms_buf_printf(out, " (cache %" PRId64 " read, %" PRId64 " written)", tot.tokens.cache_read,
                      tot.tokens.cache_write);
    if (!isnan(tot.cost_usd))
        ms_buf_printf(out, ", cost $%.6f", tot.cost_usd);
    if (tot.unknown_cost_calls)
        ms_buf_printf(out, "%s cost unknown for %u call%s", isnan(tot.cost_usd) ? "," : " +",
                      tot.unknown_cost_calls, tot.unknown_cost_calls == 1 ? "" : "s");
    ms_buf_printf(out, ", %u error%s\n", tot.errors, tot.errors == 1 ? "" : "s");
    if (t->cut_spans)
        ms_buf_printf(out, "  (%u earlier span%s already written: `moonspan show %s`)\n", t->cut_spans,
                      t->cut_spans == 1 ? "" : "s", hex);

    uint32_t n = t->nspans, nnames = 0;
    ms_sib_node *fn = malloc(n * sizeof *fn);
    size_t *kids = malloc(n * sizeof *kids);
    ms_siblings f = {0};
    ms_sib_opts o = {.max_depth = -1, .max_lines = max_lines, .skip_root = 1};
    if (!fn || !kids || fold_tree(t, now, fn, kids, &nnames) ||
        ms_sib_build(fn, n, kids, nnames, &o, &f)) {
        out->oom = 1;
        goto done;
    }
    for (size_t i = 0; i < f.nlines; i++) {
        const ms_sib_line *l = &f.lines[i];
        if (l->kind == MS_SIB_SPAN)
            span_line(t, &t->spans[f.members[l->first]], l->depth, root->start, now, out);
        else
            group_line(t, &f, l, fn, root->start, out);
    }
    if (f.omitted)
        ms_buf_printf(out, "  ... %zu more span%s (`moonspan show %s` has them all)\n", f.omitted,
                      f.omitted == 1 ? "" : "s", hex);

    size_t shown = 0, more = 0;
    for (uint32_t e = 0; e < t->nevents; e++) {
        const ms_event *ev = &t->events[e];
        if (ev->error_type.off == MS_NONE)
            continue;
        if (max_lines && shown == ADD_ERRORS_SHOWN) {
            more++;
            continue;
        }
        shown++;
        ms_buf_adds(out, "  ERROR (ctx:add_error) ");
        add_str(out, t, ev->error_type);
        ms_buf_adds(out, ": ");
        ms_buf_add_text_max(out, ms_trace_str(t, ev->error_message), ev->error_message.len, 200, 0);
        ms_buf_addc(out, '\n');
    }
    if (more)
        ms_buf_printf(out, "  ... %zu more ctx:add_error error%s\n", more, more == 1 ? "" : "s");
done:
    ms_sib_free(&f);
    free(fn);
    free(kids);
}

void ms_trace_summary(const ms_trace *t, int64_t now, ms_buf *out)
{
    ms_trace_timeline(t, now, 0, out);
}
