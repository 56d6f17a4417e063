/* ms_steps — the report's steps by name or by path, with self time and
 * the LLM usage inside them (see ms_steps.h).
 *
 * A trace's spans are kept by gidx, the order they began: a parent began
 * before its children, so its gidx is lower (the decoder checks it). A
 * span's group is found when it is read, its parent's being known by
 * then in all but traces written in parts (a child can be cut before its
 * parent ends); those are grouped at the end of the trace, up the gidx
 * order. Then one pass down the gidx order: every span is complete with
 * its children (all of higher gidx) when it is reached, so its self time
 * and the usage inside it are known, and are handed to its parent. No
 * sort, no recursion. */
#include "ms_steps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_fmt.h"
#include "ms_read.h"

/* A fold of the trace being read. */
struct ms_steps_fold {
    ms_hist hist;
    int64_t min, max;
};

struct ms_steps_node {
    int64_t dur, child_ns;      /* ns (a fold's: its total); child_ns: its direct children's, summed */
    uint32_t fold;              /* s->folds[] when it is a fold; MS_NONE otherwise */
    uint32_t parent;            /* gidx; MS_NONE for the root */
    uint32_t name;              /* name id; MS_NONE: no span of this gidx was read */
    uint32_t key;               /* the group it adds to (pass up) */
    uint32_t usage;             /* usage[] inside it; MS_NONE when none */
    uint8_t step;               /* completed and not the request itself */
};

/* (parent path, name id) -> path id: open addressing on a power-of-two
 * table kept at most half full. Path ids are dense, so the map holds
 * only the keys. */
struct ms_steps_u64map {
    uint64_t *keys;             /* key + 1: 0 is an empty slot */
    uint32_t *vals;
    size_t nslot, n;
};

/* Path id 0 is the request itself: the paths of its children start there. */
#define ROOT_PATH 0u

/* A gidx this far beyond the spans read so far is a damaged blob, not a
 * trace (a cut trace's parts come in gidx order but for the spans open
 * at a cut): refused rather than sizing an array by it. */
#define GIDX_SLACK (UINT32_C(1) << 20)

static inline uint64_t mix(uint64_t k)
{
    return k * UINT64_C(0x9E3779B97F4A7C15);
}

static int map_grow(struct ms_steps_u64map *m)
{
    size_t nslot = m->nslot ? m->nslot * 2 : 256;
    uint64_t *keys = calloc(nslot, sizeof *keys);
    uint32_t *vals = malloc(nslot * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < m->nslot; i++) {
        if (!m->keys[i])
            continue;
        size_t j = (size_t)(mix(m->keys[i] - 1) >> 32) & (nslot - 1);
        while (keys[j])
            j = (j + 1) & (nslot - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->nslot = nslot;
    return 0;
}

void ms_steps_init(ms_steps *s, enum ms_steps_by by)
{
    memset(s, 0, sizeof *s);
    s->by = by;
    for (size_t i = 0; i < sizeof s->pcache / sizeof s->pcache[0]; i++)
        s->pcache[i].parent = MS_NONE; /* no path has that parent */
}

void ms_steps_free(ms_steps *s)
{
    for (size_t i = 0; i < s->nsteps; i++) {
        ms_dist_free(&s->steps[i].total);
        ms_dist_free(&s->steps[i].tokens);
        ms_dist_free(&s->steps[i].cost);
    }
    free(s->steps);
    ms_strmap_free(&s->names);
    free(s->paths);
    if (s->path_ids) {
        free(s->path_ids->keys);
        free(s->path_ids->vals);
        free(s->path_ids);
    }
    free(s->nodes);
    for (size_t i = 0; i < s->cap_folds; i++)
        ms_hist_free(&s->folds[i].hist);
    free(s->folds);
    free(s->usage);
    free(s->name_of_ix);
    ms_buf_free(&s->labels);
    ms_steps_init(s, s->by);
}

/* A new group for key `key` (the next one), named `name` at `depth`. */
static int new_step(ms_steps *s, uint32_t key, uint32_t name, uint32_t depth)
{
    if (ms_grow((void **)&s->steps, &s->cap_steps, s->nsteps, sizeof *s->steps))
        return -1;
    s->steps[s->nsteps++] = (ms_step){.key = key, .name = name, .depth = depth};
    return 0;
}

/* The name id of sp's name, the first time the string is met in a blob
 * (name_id below serves the other times). MS_NONE on OOM. */
static uint32_t __attribute__((noinline)) name_lookup(ms_steps *s, const ms_spans_walk *w,
                                                      const ms_span_rec *sp)
{
    if (w->blob_seq != s->ix_blob) {
        if (s->cap_ix < w->r.nstrings) {
            int64_t *n = realloc(s->name_of_ix, w->r.nstrings * sizeof *n);
            if (!n)
                return MS_NONE;
            s->name_of_ix = n;
            s->cap_ix = w->r.nstrings;
        }
        memset(s->name_of_ix, 0xff, w->r.nstrings * sizeof *s->name_of_ix);
        s->ix_blob = w->blob_seq;
    }
    int64_t id = s->name_of_ix[sp->name_ix];
    if (id >= 0)
        return (uint32_t)id;
    int created;
    long i = ms_strmap_get(&s->names, sp->name.p, sp->name.len, &created);
    if (i < 0 || (created && s->by == MS_STEPS_BY_NAME && new_step(s, (uint32_t)i, (uint32_t)i, 0)))
        return MS_NONE;
    s->name_of_ix[sp->name_ix] = i;
    return (uint32_t)i;
}

/* The name id of sp's name: names are indexes into the blob's string
 * table, so a name is hashed once per blob, not once per span. */
static inline uint32_t name_id(ms_steps *s, const ms_spans_walk *w, const ms_span_rec *sp)
{
    if (w->blob_seq == s->ix_blob && s->name_of_ix[sp->name_ix] >= 0)
        return (uint32_t)s->name_of_ix[sp->name_ix];
    return name_lookup(s, w, sp);
}

/* The path id of (parent path, name) from the map, made when new.
 * MS_NONE on OOM. */
static uint32_t __attribute__((noinline)) path_lookup(ms_steps *s, uint32_t parent, uint32_t name)
{
    struct ms_steps_u64map *m = s->path_ids;
    if (!m && !(m = s->path_ids = calloc(1, sizeof *m)))
        return MS_NONE;
    if ((m->n + 1) * 2 > m->nslot && map_grow(m))
        return MS_NONE;
    uint64_t k = ((uint64_t)parent << 32 | name) + 1;
    size_t j = (size_t)(mix(k - 1) >> 32) & (m->nslot - 1);
    while (m->keys[j]) {
        if (m->keys[j] == k)
            return m->vals[j];
        j = (j + 1) & (m->nslot - 1);
    }
    if (s->npaths == 0) { /* path 0, the request, comes first */
        if (ms_grow((void **)&s->paths, &s->cap_paths, 0, sizeof *s->paths) ||
            new_step(s, ROOT_PATH, MS_NONE, 0))
            return MS_NONE;
        s->paths[s->npaths++] = (ms_steps_path){MS_NONE, MS_NONE};
    }
    uint32_t id = (uint32_t)s->npaths;
    if (ms_grow((void **)&s->paths, &s->cap_paths, s->npaths, sizeof *s->paths) ||
        new_step(s, id, name, s->steps[parent].depth + 1))
        return MS_NONE;
    s->paths[s->npaths++] = (ms_steps_path){parent, name};
    m->keys[j] = k;
    m->vals[j] = id;
    m->n++;
    return id;
}

/* The path id of (parent path, name). Traces repeat their shape, so the
 * last few thousand answers are kept in a direct-mapped cache in front
 * of the map: most spans cost one compare. */
static inline uint32_t path_of(ms_steps *s, uint32_t parent, uint32_t name)
{
    ms_steps_pcache *c =
        &s->pcache[((parent << 16 ^ name) * UINT32_C(0x9E3779B1)) >> (32 - MS_STEPS_PCACHE_BITS)];
    if (c->parent == parent && c->name == name)
        return c->path;
    uint32_t id = path_lookup(s, parent, name);
    if (id != MS_NONE)
        *c = (ms_steps_pcache){parent, name, id};
    return id;
}

/* Makes room for the span of gidx g. 0, or -1 with s->error. */
static int __attribute__((noinline)) grow_nodes(ms_steps *s, uint32_t g)
{
    if ((uint64_t)g > (uint64_t)s->end + GIDX_SLACK) {
        s->error = "a span index far beyond the spans read (a damaged blob)";
        return -1;
    }
    size_t cap = s->cap_nodes ? s->cap_nodes : 64;
    while (cap <= g)
        cap *= 2;
    ms_steps_node *n = realloc(s->nodes, cap * sizeof *n);
    if (!n) {
        s->error = "out of memory";
        return -1;
    }
    for (size_t i = s->cap_nodes; i < cap; i++)
        n[i] = (ms_steps_node){.name = MS_NONE, .usage = MS_NONE};
    s->nodes = n;
    s->cap_nodes = cap;
    return 0;
}

/* The LLM usage of sp, kept for the steps it is inside. 0 or -1 (OOM). */
static int add_llm(ms_steps *s, ms_steps_node *n, const ms_span_rec *sp)
{
    if (ms_grow((void **)&s->usage, &s->cap_usage, s->nusage, sizeof *s->usage))
        return -1;
    /* the report's cost is live spend: a replayed call's recorded cost
     * was not spent, and is not unknown either */
    int priced = !sp->replayed && !isnan(sp->cost_usd);
    s->usage[s->nusage] = (ms_steps_usage){
        .in = sp->input, .out = sp->output, .calls = 1,
        .unknown = !sp->replayed && isnan(sp->cost_usd), .priced = priced,
        .cost = priced ? sp->cost_usd : 0};
    n->usage = (uint32_t)s->nusage++;
    return 0;
}

/* Keeps fold sp's histogram for its node: its blob is gone by the
 * trace's end. A damaged histogram counts as failing to read it. */
static int add_fold(ms_steps *s, ms_steps_node *n, const ms_span_rec *sp)
{
    if (s->nfolds == s->cap_folds) {
        size_t cap = s->cap_folds ? s->cap_folds * 2 : 8;
        struct ms_steps_fold *f = realloc(s->folds, cap * sizeof *f);
        if (!f)
            return -1;
        memset(f + s->cap_folds, 0, (cap - s->cap_folds) * sizeof *f);
        s->folds = f;
        s->cap_folds = cap;
    }
    struct ms_steps_fold *f = &s->folds[s->nfolds];
    ms_hist_reset(&f->hist);
    if (ms_pack_fold_hist(sp, &f->hist))
        return -1;
    f->min = sp->fold_min;
    f->max = sp->fold_max;
    n->fold = (uint32_t)s->nfolds++;
    n->dur = sp->fold_total;
    return 0;
}

int ms_steps_add(ms_steps *s, const ms_spans_walk *w, const ms_span_rec *sp)
{
    uint32_t g = sp->gidx, parent = sp->parent;
    if (__builtin_expect(g >= s->cap_nodes, 0) && grow_nodes(s, g))
        return -1;
    uint32_t name = name_id(s, w, sp);
    if (name == MS_NONE)
        goto oom;
    ms_steps_node *n = &s->nodes[g];
    n->dur = sp->duration;
    n->parent = parent;
    n->name = name;
    n->fold = MS_NONE;
    if (sp->kind == MS_KIND_FOLD && add_fold(s, n, sp))
        goto oom;
    if (s->by == MS_STEPS_BY_NAME) {
        n->key = name;
    } else if (parent == MS_NONE) {
        n->key = ROOT_PATH;
    } else if (s->nodes[parent].name != MS_NONE && s->nodes[parent].key != MS_NONE) {
        if ((n->key = path_of(s, s->nodes[parent].key, name)) == MS_NONE)
            goto oom;
    } else {
        n->key = MS_NONE; /* its parent comes later (a part cut while it was open) */
        s->late = 1;
    }
    n->step = (sp->status == MS_STATUS_OK || sp->status == MS_STATUS_ERROR) && sp->kind != MS_KIND_TRACE;
    if (sp->has_llm && add_llm(s, n, sp))
        goto oom;
    if (g >= s->end)
        s->end = g + 1;
    return 0;
oom:
    s->error = "out of memory";
    return -1;
}

static void add_usage(ms_steps_usage *to, const ms_steps_usage *u)
{
    to->in = ms_sat_add(to->in, u->in);
    to->out = ms_sat_add(to->out, u->out);
    to->calls += u->calls;
    to->unknown += u->unknown;
    to->priced += u->priced;
    to->cost += u->cost;
}

/* The tokens and cost inside one span of step st (u NULL: no LLM call). */
static int keep_usage(ms_step *st, const ms_steps_usage *u)
{
    if (!u && st->tokens.count == 0) {
        st->no_llm++; /* most steps never call: no value kept per span */
        return 0;
    }
    for (; u && st->no_llm; st->no_llm--)
        if (ms_dist_add_exact(&st->tokens, 0) || ms_dist_add_exact(&st->cost, 0))
            return -1;
    if (ms_dist_add_exact(&st->tokens, u ? (double)ms_sat_add(u->in, u->out) : 0))
        return -1;
    if (u && u->unknown)
        return 0;
    return ms_dist_add_exact(&st->cost, u ? u->cost : 0);
}

int ms_steps_trace_end(ms_steps *s)
{
    ms_steps_node *nodes = s->nodes;
    int ret = 0;
    s->error = "out of memory";
    /* up, for spans read before their parent: each one's group. A span
     * whose parent was never read (a trace cut short) hangs off the
     * request, as `show` draws it. */
    for (uint32_t g = 0; s->late && g < s->end; g++) {
        ms_steps_node *n = &nodes[g];
        if (n->name == MS_NONE || n->parent == MS_NONE)
            continue;
        uint32_t pk = nodes[n->parent].name != MS_NONE ? nodes[n->parent].key : ROOT_PATH;
        if ((n->key = path_of(s, pk, n->name)) == MS_NONE) {
            ret = -1;
            break;
        }
    }
    s->late = 0;
    /* down: children before parents; every node is left empty behind */
    for (uint32_t g = s->end; g-- > 0;) {
        ms_steps_node *n = &nodes[g];
        if (n->name != MS_NONE && ret == 0) {
            ms_steps_node *p = n->parent != MS_NONE && nodes[n->parent].name != MS_NONE
                                   ? &nodes[n->parent] : NULL;
            if (n->step) {
                ms_step *st = &s->steps[n->key];
                const struct ms_steps_fold *f = n->fold != MS_NONE ? &s->folds[n->fold] : NULL;
                if (f ? ms_dist_add_hist(&st->total, &f->hist, (double)n->dur, (double)f->min, (double)f->max)
                      : ms_dist_add_exact(&st->total, (double)n->dur))
                    ret = -1;
                st->self_ns = ms_sat_add(st->self_ns, n->dur > n->child_ns ? n->dur - n->child_ns : 0);
                if (n->usage != MS_NONE)
                    add_usage(&st->llm, &s->usage[n->usage]);
                if (s->keep_values && !f && keep_usage(st, n->usage != MS_NONE ? &s->usage[n->usage] : NULL))
                    ret = -1;
            }
            if (p) {
                p->child_ns = ms_sat_add(p->child_ns, n->dur);
                if (n->usage != MS_NONE) {
                    if (p->usage == MS_NONE)
                        p->usage = n->usage; /* n is done with it */
                    else
                        add_usage(&s->usage[p->usage], &s->usage[n->usage]);
                }
            }
        }
        *n = (ms_steps_node){.name = MS_NONE, .usage = MS_NONE};
    }
    s->end = 0;
    s->nusage = 0;
    s->nfolds = 0;
    return ret;
}

const char *ms_steps_name(const ms_steps *s, uint32_t name)
{
    return name < s->names.n ? s->names.ent[name].key : "";
}

void ms_steps_path_each(const ms_steps *s, const ms_step *step,
                        void (*fn)(void *ud, const char *name), void *ud)
{
    if (s->by == MS_STEPS_BY_NAME) {
        fn(ud, ms_steps_name(s, step->name));
        return;
    }
    /* the chain runs child to parent: walk it once per level, root first */
    for (uint32_t d = 1; d <= step->depth; d++) {
        uint32_t k = step->key;
        for (uint32_t up = step->depth; up > d; up--)
            k = s->paths[k].parent;
        fn(ud, ms_steps_name(s, s->paths[k].name));
    }
}

/* --- finishing ------------------------------------------------------------- */

typedef struct label_ctx {
    ms_buf *b;
    int first;
} label_ctx;

static void label_add(void *ud, const char *name)
{
    label_ctx *c = ud;
    if (!c->first)
        ms_buf_addc(c->b, '/');
    c->first = 0;
    ms_buf_adds(c->b, name);
}

/* Rows by total time, most first; ties by label, so output is stable. */
static int cmp_steps(const void *a, const void *b)
{
    const ms_step *x = a, *y = b;
    if (x->total.sum != y->total.sum)
        return x->total.sum < y->total.sum ? 1 : -1;
    return strcmp(x->label, y->label);
}

int ms_steps_finish(ms_steps *s)
{
    static const double qs[3] = {50, 95, 99};
    size_t n = 0;
    size_t *label_off = NULL;
    int ret = -1;
    for (size_t i = 0; i < s->nsteps; i++) {
        ms_step st = s->steps[i];
        if (st.total.count == 0) {
            ms_dist_free(&st.total);
            ms_dist_free(&st.tokens);
            ms_dist_free(&st.cost);
            continue;
        }
        s->steps[n++] = st;
    }
    s->nsteps = n;
    if (n && !(label_off = malloc(n * sizeof *label_off)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        ms_step *st = &s->steps[i];
        double out[3];
        if (ms_dist_percentiles(&st->total, qs, 3, out, &st->approximate))
            goto done;
        /* to whole ns first: the inputs are whole ns, finer digits are
         * interpolation noise (879.99999999999989 instead of 880) */
        st->p50 = round(out[0]) / MS_NS_PER_MS;
        st->p95 = round(out[1]) / MS_NS_PER_MS;
        st->p99 = round(out[2]) / MS_NS_PER_MS;
        if (!s->keep_values)
            ms_dist_free(&st->total);
        s->total_ns += st->total.sum;
        s->self_ns += (double)st->self_ns;
        label_off[i] = s->labels.len;
        label_ctx lc = {&s->labels, 1};
        ms_steps_path_each(s, st, label_add, &lc);
        ms_buf_addc(&s->labels, 0);
    }
    if (s->labels.oom)
        goto done;
    for (size_t i = 0; i < n; i++)
        s->steps[i].label = s->labels.data + label_off[i];
    if (n)
        qsort(s->steps, n, sizeof *s->steps, cmp_steps);
    ret = 0;
done:
    free(label_off);
    return ret;
}
