/* ms_show_text — `moonspan show` for people: the trace's header, then its
 * spans as an indented tree, one line per span or per set of siblings of
 * one name (ms_siblings.h), within the depth and duration the options allow.
 *
 * There is only one exported symbol in this file: ms_show_text. */
#include "ms_show_data.h"

#include "ms_fmt.h"
#include "ms_hist.h"
#include "ms_siblings.h"
#include "ms_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define A(off) ms_arena_str(&v->arena, (off))

#define NAME_COL_MAX 60 /* the name column's widest */
#define DUR_COL 12
#define TOK_COL 24
#define COST_COL 13

static void indent(ms_buf *b, uint32_t depth)
{
    for (uint32_t d = 0; d < depth; d++)
        ms_buf_adds(b, "  ");
}

/* Width of the name column: the widest indented name of a line, folded
 * names with their count, capped. */
static int name_width(const trace_view *v, const ms_siblings *f)
{
    int w = 4;
    for (size_t i = 0; i < f->nlines; i++) {
        const ms_sib_line *l = &f->lines[i];
        if (l->kind == MS_SIB_HIDDEN)
            continue;
        int c = 2 * (int)l->depth + ms_fmt_text_cols(A(v->nodes[f->members[l->first]].name));
        if (l->kind == MS_SIB_GROUP) /* " ×N": × is one column, as x is */
            c += snprintf(NULL, 0, " x%zu", l->count);
        else if (v->nodes[f->members[l->first]].is_fold)
            c += snprintf(NULL, 0, " x%lld", (long long)v->nodes[f->members[l->first]].fold_count);
        if (c > w)
            w = c;
    }
    return w > NAME_COL_MAX ? NAME_COL_MAX : w;
}

/* A span's events, one line each under it. */
static void span_events(const trace_view *v, const span_node *s, uint32_t depth, ms_buf *b)
{
    for (size_t e = 0; e < s->nevent; e++) {
        const span_event *ev = &v->evs[s->event0 + e];
        indent(b, depth + 1);
        if (ev->error_type != MS_NO_STR) { /* as the run timeline shows it */
            ms_buf_adds(b, "* ERROR (ctx:add_error) ");
            ms_fmt_text(b, A(ev->error_type), "");
            ms_buf_adds(b, ": ");
            ms_fmt_text(b, A(ev->error_message), "");
        } else {
            ms_buf_adds(b, "* event ");
            ms_fmt_text(b, A(ev->name), "?");
            if (A(ev->attrs)) {
                ms_buf_addc(b, ' ');
                ms_fmt_text(b, A(ev->attrs), "");
            }
        }
        ms_buf_addc(b, '\n');
    }
}

/* The span's profile under its line (--profile): its self CPU time, then
 * its hottest functions, each with its share of that time. */
static void span_profile(const trace_view *v, const span_node *s, uint32_t depth, ms_buf *b)
{
    char ms[40];
    if (!s->nprof)
        return;
    indent(b, depth + 1);
    ms_buf_printf(b, "profile: %s of CPU in its own code (%lld sample%s)\n",
                  ms_fmt_ms(ms, sizeof ms, (double)s->prof_ns / MS_NS_PER_MS), (long long)s->prof_samples,
                  s->prof_samples == 1 ? "" : "s");
    ms_profile_text_list(b, 2 * ((int)depth + 1) + 2, &v->pfns[s->prof0], s->nprof, s->prof_ns);
}

/* "  +12 spans below" after a line whose children --depth left out. */
static void below_note(const ms_sib_line *l, ms_buf *b)
{
    if (l->below)
        ms_buf_printf(b, "  (+%zu span%s below)", l->below, l->below == 1 ? "" : "s");
}

/* A stored fold: "score_doc ×1000  Σ 2.50 ms  p50 ~2.00 µs  p95 ~4.10 µs
 * max 9.80 µs (±0.8%)", and how many repetitions failed. */
static void fold_line(const trace_view *v, const ms_sib_line *l, const span_node *s, int w, ms_buf *b)
{
    char c1[48], c2[48], c3[48];
    indent(b, l->depth);
    size_t start = b->len;
    ms_fmt_text(b, A(s->name), "?");
    ms_sib_mark(b, (size_t)s->fold_count);
    int cols = 0; /* pad by columns: the mark's × is two bytes */
    for (size_t i = start; i < b->len && !b->oom; i++)
        cols += ((unsigned char)b->data[i] & 0xC0) != 0x80;
    for (int i = cols; i < w - 2 * (int)l->depth; i++)
        ms_buf_addc(b, ' ');
    snprintf(c1, sizeof c1, "\xce\xa3 %s", ms_fmt_ms(c2, sizeof c2, (double)s->fold_total / MS_NS_PER_MS));
    ms_fmt_right(b, c1, DUR_COL + 1); /* Σ is two bytes, one column */
    ms_buf_adds(b, "  ");
    ms_fmt_left(b, "", TOK_COL + COST_COL);
    ms_buf_printf(b, "  folded: p50 ~%s  p95 ~%s  max %s (~: within %.1f%%)",
                  ms_fmt_ms(c1, sizeof c1, (double)s->fold_p50 / MS_NS_PER_MS),
                  ms_fmt_ms(c2, sizeof c2, (double)s->fold_p95 / MS_NS_PER_MS),
                  ms_fmt_ms(c3, sizeof c3, (double)s->fold_max / MS_NS_PER_MS), 100 * MS_HIST_REL_ERROR);
    if (s->fold_errors)
        ms_buf_printf(b, "  %lld failed", (long long)s->fold_errors);
    if (s->error_own) {
        ms_buf_adds(b, "  first error ");
        ms_fmt_text(b, A(s->error_type), "error");
        ms_buf_adds(b, ": ");
        ms_fmt_text_max(b, A(s->error_message), 100, "");
    }
    below_note(l, b);
    ms_buf_addc(b, '\n');
}

/* One span: name indented by depth, duration, tokens, cost, status,
 * retries, own error; then its events. */
static void span_line(const trace_view *v, const ms_sib_line *l, const span_node *s, int w, ms_buf *b)
{
    char c1[48], c2[48];
    if (s->is_fold) {
        fold_line(v, l, s, w, b);
        span_events(v, s, l->depth, b);
        return;
    }
    indent(b, l->depth);
    ms_fmt_padded(b, A(s->name) ? A(s->name) : "?", w - 2 * (int)l->depth);
    ms_fmt_right(b, ms_fmt_ms(c1, sizeof c1, (double)s->duration_ns / MS_NS_PER_MS), DUR_COL);
    ms_buf_adds(b, "  ");
    if (s->has_tokens) {
        snprintf(c1, sizeof c1, "%lld/%lld tok%s", (long long)s->in_tok,
                 (long long)s->out_tok, s->estimated ? " (est)" : "");
        ms_fmt_left(b, c1, TOK_COL);
    } else {
        ms_fmt_left(b, "", TOK_COL);
    }
    const char *kind = A(s->kind);
    if (s->has_cost)
        ms_fmt_left(b, ms_fmt_usd(c2, sizeof c2, s->cost), COST_COL);
    else
        ms_fmt_left(b, kind && strcmp(kind, "llm") == 0 ? "cost ?" : "", COST_COL);
    ms_buf_adds(b, "  ");
    ms_fmt_text(b, A(s->status), "?");
    if (s->replayed)
        ms_buf_adds(b, "  replayed (not spent)");
    if (s->retries > 0)
        ms_buf_printf(b, "  retries %lld (%s)", (long long)s->retries,
                      s->retry_succeeded == 1 ? "succeeded"
                      : s->retry_succeeded == 0 ? "failed" : "?");
    if (s->error_own) {
        ms_buf_adds(b, "  ");
        ms_fmt_text(b, A(s->error_type), "error");
        ms_buf_adds(b, ": ");
        ms_fmt_text(b, A(s->error_message), "");
    }
    below_note(l, b);
    ms_buf_addc(b, '\n');
    ms_show_content_text(v, s, l->depth, b);
    span_events(v, s, l->depth, b);
    span_profile(v, s, l->depth, b);
}

/* Siblings of one name as one line: "score_doc ×1000", their total, the
 * tokens and cost inside them, their spread, and how many did not end
 * ok, with the first error raised in one of them. */
static void group_line(const trace_view *v, const ms_siblings *f, const ms_sib_line *l,
                       const ms_sib_node *fn, int w, ms_buf *b)
{
    char c1[64], c2[48];
    ms_sib_stats st;
    if (ms_sib_stats_of(f, l, fn, &st)) {
        b->oom = 1;
        return;
    }
    const span_node *first = &v->nodes[f->members[l->first]];
    int64_t in = 0, out = 0, not_ok = 0, events = 0;
    int tokens = 0, est = 0, priced = 0, unpriced = 0;
    double cost = 0;
    const span_node *err = NULL;
    for (size_t i = 0; i < l->count; i++) {
        const span_node *s = &v->nodes[f->members[l->first + i]];
        const char *kind = A(s->kind), *status = A(s->status);
        if (s->has_tokens) { /* the token fields mean nothing on other spans */
            tokens = 1;
            est |= s->estimated;
            in = ms_sat_add(in, s->in_tok);
            out = ms_sat_add(out, s->out_tok);
        }
        if (s->has_cost) {
            priced = 1;
            cost += s->cost;
        } else if (kind && strcmp(kind, "llm") == 0) {
            unpriced = 1;
        }
        not_ok += !status || strcmp(status, "ok") != 0;
        events += (int64_t)s->nevent;
        if (!err && s->error_own)
            err = s;
    }
    indent(b, l->depth);
    size_t start = b->len;
    ms_fmt_text(b, A(first->name), "?");
    ms_sib_mark(b, l->count);
    /* pad what was written to the name column (ms_fmt_padded would
     * escape the mark's own bytes again) */
    int cols = 0;
    for (size_t i = start; i < b->len && !b->oom; i++)
        cols += ((unsigned char)b->data[i] & 0xC0) != 0x80;
    for (int i = cols; i < w - 2 * (int)l->depth; i++)
        ms_buf_addc(b, ' ');
    ms_sib_total(b, &st, DUR_COL);
    ms_buf_adds(b, "  ");
    if (tokens) {
        snprintf(c1, sizeof c1, "%lld/%lld tok%s", (long long)in, (long long)out, est ? " (est)" : "");
        ms_fmt_left(b, c1, TOK_COL);
    } else {
        ms_fmt_left(b, "", TOK_COL);
    }
    if (priced) {
        snprintf(c1, sizeof c1, "%s%s", ms_fmt_usd(c2, sizeof c2, cost), unpriced ? " +?" : "");
        ms_fmt_left(b, c1, COST_COL);
    } else {
        ms_fmt_left(b, unpriced ? "cost ?" : "", COST_COL);
    }
    ms_buf_adds(b, "  ");
    ms_sib_spread(b, &st);
    if (not_ok)
        ms_buf_printf(b, "  %lld not ok", (long long)not_ok);
    if (err) {
        ms_buf_adds(b, "  first error ");
        ms_fmt_text(b, A(err->error_type), "error");
        ms_buf_adds(b, ": ");
        ms_fmt_text_max(b, A(err->error_message), 100, "");
    }
    if (events)
        ms_buf_printf(b, "  %lld event%s (--all shows them)", (long long)events, events == 1 ? "" : "s");
    below_note(l, b);
    ms_buf_addc(b, '\n');
}

/* The tree, drawn through ms_siblings: nodes and their children lists are
 * the ones load_spans linked. */
static void tree(const trace_view *v, const ms_show_opts *o, ms_buf *b)
{
    ms_sib_node *fn = malloc(v->nnodes * sizeof *fn);
    ms_siblings f = {0};
    if (!fn) {
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < v->nnodes; i++) {
        const span_node *s = &v->nodes[i];
        fn[i] = (ms_sib_node){s->name_id, s->child0, s->nchild, s->duration_ns};
    }
    ms_sib_opts fo = {.max_depth = o->max_depth > 0 ? o->max_depth : -1,
                       .min_ns = (int64_t)(o->min_ms * MS_NS_PER_MS), .all = o->all};
    if (ms_sib_build(fn, v->nnodes, v->order, v->nnames, &fo, &f)) {
        b->oom = 1;
        goto done;
    }
    int w = name_width(v, &f);
    char t[48];
    for (size_t i = 0; i < f.nlines; i++) {
        const ms_sib_line *l = &f.lines[i];
        if (l->kind == MS_SIB_SPAN) {
            span_line(v, l, &v->nodes[f.members[l->first]], w, b);
        } else if (l->kind == MS_SIB_GROUP) {
            group_line(v, &f, l, fn, w, b);
        } else {
            indent(b, l->depth);
            ms_buf_printf(b, "... %zu span%s shorter than %s hidden", l->hidden, l->hidden == 1 ? "" : "s",
                          ms_fmt_ms(t, sizeof t, o->min_ms));
            if (l->hidden_inside)
                ms_buf_printf(b, " (and %zu inside them)", l->hidden_inside);
            ms_buf_addc(b, '\n');
        }
    }
done:
    ms_sib_free(&f);
    free(fn);
}

void ms_show_text(const trace_view *v, const ms_show_opts *o, ms_buf *b)
{
    char iso[40], c1[40];
    ms_iso_utc(v->start_ns, iso, sizeof iso);
    ms_fmt_text(b, A(v->name), "?");
    ms_buf_adds(b, "  trace ");
    ms_fmt_text(b, A(v->id), "?");
    if (v->matches > 1)
        ms_buf_printf(b, "  (--pick %lld of %lld matching traces)", (long long)v->pick,
                      (long long)v->matches);
    ms_buf_addc(b, '\n');
    ms_buf_printf(b, "  start %s   duration %s   tokens %lld in / %lld out   cost ",
                  iso, ms_fmt_ms(c1, sizeof c1, (double)v->duration_ns / MS_NS_PER_MS),
                  (long long)v->in_tok, (long long)v->out_tok);
    if (!v->has_cost && v->unknown == 0)
        ms_buf_adds(b, "-");  /* no priced call: nothing to state as a number */
    else
        ms_fmt_cost(b, v->cost, v->has_cost, v->unknown);
    ms_buf_adds(b, "   status ");
    ms_fmt_text(b, A(v->status), "?");
    const char *st = A(v->status);
    if (v->eval.found && !v->eval.pass && st && strcmp(st, "ok") == 0)
        ms_buf_adds(b, " (it raised no error, but the eval case FAILED)");
    else if (st && strcmp(st, "interrupted") == 0)
        ms_buf_adds(b, " (cut short by SIGINT/SIGTERM; not an error)");
    else if (st && strcmp(st, "incomplete") == 0)
        ms_buf_adds(b, " (still open when the run ended)");
    if (v->error_count)
        ms_buf_printf(b, " (%lld error%s)", (long long)v->error_count,
                      v->error_count == 1 ? "" : "s");
    ms_buf_addc(b, '\n');
    if (A(v->user) || A(v->session) || A(v->tags)) {
        const char *sep = "  ";
        if (A(v->user)) {
            ms_buf_adds(b, "  user ");
            ms_fmt_text(b, A(v->user), "");
            sep = "   ";
        }
        if (A(v->session)) {
            ms_buf_adds(b, sep);
            ms_buf_adds(b, "session ");
            ms_fmt_text(b, A(v->session), "");
            sep = "   ";
        }
        if (A(v->tags)) {
            ms_buf_adds(b, sep);
            ms_buf_adds(b, "tags ");
            ms_fmt_text(b, A(v->tags), "");
        }
        ms_buf_addc(b, '\n');
    }
    ms_show_eval_text(v, b);
    if (v->profile && v->prof_samples)
        ms_buf_printf(b, "  profile: %s of CPU sampled in %lld sample%s (each span: its own code, not its"
                         " child spans)\n", ms_fmt_ms(c1, sizeof c1, (double)v->prof_ns / MS_NS_PER_MS),
                      (long long)v->prof_samples, v->prof_samples == 1 ? "" : "s");
    else if (v->profile)
        ms_buf_adds(b, "  profile: none stored for this trace; record one with `moonspan run --profile"
                       " SCRIPT`\n");
    ms_buf_addc(b, '\n');
    if (!v->nnodes && v->sampled_out) {
        ms_buf_printf(b, "  sampled out (--sample): its summary only; its %lld span%s were not stored\n",
                      (long long)v->span_count, v->span_count == 1 ? "" : "s");
        return;
    }
    if (!v->nnodes) {
        ms_buf_adds(b, "  (no spans stored for this trace)\n");
        return;
    }
    tree(v, o, b);
}
