/* ms_siblings — a tree of spans as the lines a person reads (see ms_siblings.h).
 *
 * One walk down the tree, a line at a time: a line stands for a set of
 * sibling spans (one, or all those of a name), and the children of the
 * whole set are gathered, filtered by duration and grouped by name into
 * the lines below it. Grouping keeps the order in which each name first
 * appears, with a slot per name id shared by every level (a level is
 * done with it before the one below starts). Recursion is as deep as the
 * tree, which Lua keeps to a few hundred levels of nested span() calls. */
#include "ms_siblings.h"

#include <stdlib.h>
#include <string.h>

#include "ms_fmt.h"
#include "ms_percentile.h"
#include "ms_read.h"

#define NO_SLOT SIZE_MAX

typedef struct walk {
    const ms_sib_node *nodes;
    const size_t *kids;
    const ms_sib_opts *o;
    ms_siblings *f;
    size_t *size;           /* spans in each node's subtree, itself included */
    size_t *slot;           /* name id -> its group in the level being grouped */
    size_t covered;         /* spans shown or counted on a line */
    int oom;
} walk;

/* Subtree sizes, children before parents. */
static size_t subtree(walk *w, size_t i)
{
    const ms_sib_node *nd = &w->nodes[i];
    size_t s = 1;
    for (size_t k = 0; k < nd->nchild; k++)
        s += subtree(w, w->kids[nd->child0 + k]);
    return w->size[i] = s;
}

static int room(const walk *w)
{
    return !w->oom && (!w->o->max_lines || w->f->nlines < w->o->max_lines);
}

/* A new line; its index, or SIZE_MAX when memory ran out. */
static size_t add_line(walk *w, ms_sib_line l)
{
    ms_siblings *f = w->f;
    if (ms_grow((void **)&f->lines, &f->cap_lines, f->nlines, sizeof *f->lines)) {
        w->oom = 1;
        return SIZE_MAX;
    }
    f->lines[f->nlines] = l;
    return f->nlines++;
}

static void line_of(walk *w, const size_t *mem, size_t m, uint32_t depth);

/* The lines under the spans mem[0..m), at `depth`; `parent` is their
 * line (SIZE_MAX for none: what cannot be shown is then omitted). */
static void children_of(walk *w, const size_t *mem, size_t m, uint32_t depth, size_t parent)
{
    const ms_sib_opts *o = w->o;
    size_t nk = 0;
    for (size_t i = 0; i < m; i++)
        nk += w->nodes[mem[i]].nchild;
    if (!nk)
        return;
    if (o->max_depth >= 0 && depth > (uint32_t)o->max_depth) {
        if (parent != SIZE_MAX) {
            size_t below = 0;
            for (size_t i = 0; i < m; i++)
                below += w->size[mem[i]] - 1;
            w->f->lines[parent].below = below;
            w->covered += below;
        }
        return;
    }
    /* kids: the children in the order shown; order: the same, by group */
    size_t *kids = malloc(2 * nk * sizeof *kids);
    if (!kids) {
        w->oom = 1;
        return;
    }
    size_t *order = kids + nk;
    size_t nkept = 0, hidden = 0, inside = 0;
    for (size_t i = 0; i < m; i++) {
        const ms_sib_node *nd = &w->nodes[mem[i]];
        for (size_t k = 0; k < nd->nchild; k++) {
            size_t c = w->kids[nd->child0 + k];
            if (w->nodes[c].duration_ns < o->min_ns) {
                hidden++;
                inside += w->size[c] - 1;
            } else {
                kids[nkept++] = c;
            }
        }
    }
    if (o->all) {
        for (size_t i = 0; i < nkept && room(w); i++)
            line_of(w, &kids[i], 1, depth);
    } else {
        /* counting sort by group, groups in order of first appearance:
         * slot[name] counts its members, then becomes its offset */
        size_t ngroups = 0;
        for (size_t i = 0; i < nkept; i++) {
            size_t *s = &w->slot[w->nodes[kids[i]].name];
            if (*s == NO_SLOT) {
                *s = 0;
                order[ngroups++] = kids[i]; /* a group's first member, for now */
            }
            (*s)++;
        }
        size_t off = 0;
        for (size_t g = 0; g < ngroups; g++) {
            size_t *s = &w->slot[w->nodes[order[g]].name];
            size_t cnt = *s;
            *s = off;
            off += cnt;
        }
        size_t *grouped = malloc((nkept ? nkept : 1) * sizeof *grouped);
        size_t *starts = malloc((ngroups ? ngroups : 1) * sizeof *starts);
        if (!grouped || !starts) {
            w->oom = 1;
        } else {
            for (size_t g = 0; g < ngroups; g++)
                starts[g] = w->slot[w->nodes[order[g]].name];
            for (size_t i = 0; i < nkept; i++)
                grouped[w->slot[w->nodes[kids[i]].name]++] = kids[i];
        }
        for (size_t i = 0; i < nkept; i++)
            w->slot[w->nodes[kids[i]].name] = NO_SLOT;
        for (size_t g = 0; g < ngroups && room(w); g++) {
            size_t end = g + 1 < ngroups ? starts[g + 1] : nkept;
            line_of(w, grouped + starts[g], end - starts[g], depth);
        }
        free(grouped);
        free(starts);
    }
    if (hidden && room(w)) {
        add_line(w, (ms_sib_line){.kind = MS_SIB_HIDDEN, .depth = depth, .hidden = hidden,
                                   .hidden_inside = inside});
        w->covered += hidden + inside;
    }
    free(kids);
}

/* The line of the spans mem[0..m) (siblings of one name, or one span),
 * then the lines under it. */
static void line_of(walk *w, const size_t *mem, size_t m, uint32_t depth)
{
    ms_siblings *f = w->f;
    if (!room(w))
        return;
    for (size_t i = 0; i < m; i++) {
        if (ms_grow((void **)&f->members, &f->cap_members, f->nmembers, sizeof *f->members)) {
            w->oom = 1;
            return;
        }
        f->members[f->nmembers++] = mem[i];
    }
    size_t l = add_line(w, (ms_sib_line){.kind = m == 1 ? MS_SIB_SPAN : MS_SIB_GROUP,
                                          .depth = depth, .first = f->nmembers - m, .count = m});
    if (l == SIZE_MAX)
        return;
    w->covered += m;
    /* `members` moves as lines are added below: children_of reads this
     * line's members before it adds any */
    children_of(w, f->members + f->lines[l].first, m, depth + 1, l);
}

int ms_sib_build(const ms_sib_node *nodes, size_t n, const size_t *kids, uint32_t nnames,
                  const ms_sib_opts *o, ms_siblings *out)
{
    out->nlines = out->nmembers = out->omitted = 0;
    if (!n)
        return 0;
    walk w = {nodes, kids, o, out, malloc(n * sizeof(size_t)),
              malloc((nnames ? nnames : 1) * sizeof(size_t)), 0, 0};
    if (!w.size || !w.slot) {
        free(w.size);
        free(w.slot);
        return -1;
    }
    for (uint32_t i = 0; i < nnames; i++)
        w.slot[i] = NO_SLOT;
    subtree(&w, 0);
    size_t root = 0;
    if (o->skip_root)
        children_of(&w, &root, 1, 0, SIZE_MAX);
    else
        line_of(&w, &root, 1, 0);
    size_t total = w.size[0] - (o->skip_root ? 1 : 0);
    out->omitted = total - w.covered;
    free(w.size);
    free(w.slot);
    return w.oom ? -1 : 0;
}

void ms_sib_free(ms_siblings *f)
{
    free(f->lines);
    free(f->members);
    memset(f, 0, sizeof *f);
}

int ms_sib_stats_of(const ms_siblings *f, const ms_sib_line *l, const ms_sib_node *nodes,
                     ms_sib_stats *out)
{
    double *v = malloc((l->count ? l->count : 1) * sizeof *v);
    if (!v)
        return -1;
    out->total_ns = 0;
    for (size_t i = 0; i < l->count; i++) {
        int64_t d = nodes[f->members[l->first + i]].duration_ns;
        out->total_ns = ms_sat_add(out->total_ns, d);
        v[i] = (double)d;
    }
    static const double qs[3] = {50, 95, 100};
    double q[3];
    ms_percentiles(v, l->count, qs, 3, q);
    out->p50 = q[0];
    out->p95 = q[1];
    out->max = q[2];
    free(v);
    return 0;
}

void ms_sib_mark(ms_buf *b, size_t count)
{
    ms_buf_printf(b, " \xc3\x97%zu", count); /* U+00D7 */
}

void ms_sib_total(ms_buf *b, const ms_sib_stats *s, int width)
{
    char t[48], cell[64];
    snprintf(cell, sizeof cell, "\xce\xa3 %s", ms_fmt_ms(t, sizeof t, (double)s->total_ns / MS_NS_PER_MS));
    ms_fmt_right(b, cell, width); /* U+03A3 */
}

void ms_sib_spread(ms_buf *b, const ms_sib_stats *s)
{
    char t1[48], t2[48], t3[48];
    ms_buf_printf(b, "p50 %s  p95 %s  max %s", ms_fmt_ms(t1, sizeof t1, s->p50 / MS_NS_PER_MS),
                  ms_fmt_ms(t2, sizeof t2, s->p95 / MS_NS_PER_MS),
                  ms_fmt_ms(t3, sizeof t3, s->max / MS_NS_PER_MS));
}
