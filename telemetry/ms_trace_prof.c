/* ms_trace_prof — the profiler's samples in a trace buffer: self time by
 * (span, function), added on the Lua thread and written with the span
 * they belong to (see ms_span_add_samples in ms_trace.h). */
#include <string.h>

#include "ms_trace.h"

/* The entry of (gidx, key), or MS_NONE. The entry hit last is tried
 * first: samples come in runs from one loop. Otherwise newest first:
 * a trace cut as it grows holds few entries besides its open spans'. */
static uint32_t find(const ms_trace *t, uint32_t gidx, uint64_t key)
{
    if (t->prof_last < t->nprof) {
        const ms_prof *p = &t->prof[t->prof_last];
        if (p->span == gidx && p->key == key)
            return t->prof_last;
    }
    for (uint32_t i = t->nprof; i-- > 0;)
        if (t->prof[i].span == gidx && t->prof[i].key == key)
            return i;
    return MS_NONE;
}

/* Appends an entry copying `src`'s strings into t's arena; MS_NONE on OOM. */
static uint32_t append(ms_trace *t, uint32_t gidx, uint64_t key, const char *fn, size_t fnlen,
                       const char *source, size_t srclen, int32_t line)
{
    if (ms_trace_grow_((void **)&t->prof, &t->cap_prof, t->nprof + 1, sizeof *t->prof)) {
        t->oom = 1;
        return MS_NONE;
    }
    ms_str f = ms_trace_put_(t, fn, fnlen);
    ms_str s = ms_trace_put_(t, source, srclen);
    if (f.off == MS_NONE || s.off == MS_NONE)
        return MS_NONE;
    ms_prof *p = &t->prof[t->nprof];
    memset(p, 0, sizeof *p);
    p->key = key;
    p->span = gidx;
    p->line = line;
    p->function = f;
    p->source = s;
    return t->nprof++;
}

void ms_span_add_samples(ms_trace *t, uint32_t gidx, uint64_t key, const char *fn, size_t fnlen,
                         const char *src, size_t srclen, int32_t line, uint32_t n, int64_t ns)
{
    uint32_t i = find(t, gidx, key);
    if (i == MS_NONE && (i = append(t, gidx, key, fn, fnlen, src, srclen, line)) == MS_NONE)
        return;
    ms_prof *p = &t->prof[i];
    p->samples = p->samples > UINT32_MAX - n ? UINT32_MAX : p->samples + n;
    p->self_ns += ns;
    t->prof_last = i;
}

/* After a cut the part holds every entry; those of spans still open
 * (pinned in t) go back to t, zeroed in the part so that they are written
 * once, with their span. */
void ms_trace_prof_keep_open_(ms_trace *t, ms_trace *part)
{
    for (uint32_t i = 0; i < part->nprof; i++) {
        ms_prof *p = &part->prof[i];
        if (!p->samples || !ms_trace_span(t, p->span))
            continue;
        uint32_t j = append(t, p->span, p->key, part->arena + p->function.off, p->function.len,
                            part->arena + p->source.off, p->source.len, p->line);
        if (j == MS_NONE)
            return; /* t is marked oom; the part keeps them and writes them now */
        t->prof[j].samples = p->samples;
        t->prof[j].self_ns = p->self_ns;
        p->samples = 0;
    }
}
