/* fuzz_pack — the packed span encoding (telemetry/ms_pack.c).
 *
 * The first byte picks one of two games.
 *
 * Odd: the rest is a blob from a damaged or hostile store. Decoding it
 * ends in spans or an error, never a crash, and every string it hands out
 * lies inside the blob.
 *
 * Even: the rest is a program that builds a trace (open, end, set
 * attributes, add events, fail, account an LLM call, cut a part), run on
 * the real trace buffer. Its parts, encoded and decoded, give back each
 * span exactly once, with the parent, name, times and attribute count the
 * program gave it. */
#include <math.h>

#include "fuzz.h"
#include "ms_pack.h"

#define MAX_SPANS 512

static int inside(const uint8_t *blob, size_t len, ms_pstr s)
{
    return s.len == 0 ||
           ((const uint8_t *)s.p >= blob && (const uint8_t *)s.p + s.len <= blob + len);
}

static int count(void *ud, const void *rec)
{
    (void)rec;
    ++*(uint32_t *)ud;
    return 0;
}

static int count_attr(void *ud, const ms_attr_rec *a) { return count(ud, a); }
static int count_event(void *ud, const ms_event_rec *e) { return count(ud, e); }

static void decode_hostile(const uint8_t *blob, size_t len)
{
    ms_pack_reader r = {0};
    ms_span_rec sp;
    int rc = ms_pack_open(&r, blob, len, 7);
    if (rc == 0) {
        while ((rc = ms_pack_next(&r, &sp)) == 1) {
            /* the llm and error fields are set only when the span has them */
            FUZZ_CHECK(inside(blob, len, sp.name) &&
                       (!sp.has_llm || (inside(blob, len, sp.provider) && inside(blob, len, sp.model))) &&
                       (!sp.has_error || (inside(blob, len, sp.error_type) &&
                                          inside(blob, len, sp.error_message) &&
                                          inside(blob, len, sp.error_traceback))),
                       "span %u: a string outside the blob", sp.gidx);
            FUZZ_CHECK(ms_pack_span_id(&r, &sp) != 0, "span %u: id 0", sp.gidx);
            uint32_t n = 0;
            ms_pack_attrs(&r, &sp, count_attr, &n);
            ms_pack_events(&r, &sp, count_event, &n);
            ms_buf json = {0};
            ms_pack_attrs_json(&r, &sp, &json);
            ms_buf_free(&json);
        }
    }
    FUZZ_CHECK(rc == 0 || (rc == -1 && r.error), "rc %d without a reason", rc);
    ms_pack_reader_free(&r);
}

/* What the program did to each span, to compare with what decodes. */
typedef struct expect {
    uint32_t parent;
    int64_t start, end;
    char name[8];
    uint8_t name_len;
    uint8_t keys;               /* attribute keys set, one bit each: a set
                                 * replaces, so a key counts once */
    int seen;
} expect;

typedef struct program {
    const uint8_t *p, *end;
    ms_trace t;
    ms_trace parts[8];
    int nparts;
    expect spans[MAX_SPANS];
    uint32_t nspans;
    int64_t now;
} program;

static uint8_t next_byte(program *g)
{
    return g->p < g->end ? *g->p++ : 0;
}

/* An open span of the program, picked by the next byte; 0 (the root) when
 * none other is open. */
static uint32_t pick_open(program *g)
{
    uint32_t open[MAX_SPANS], n = 0;
    for (uint32_t i = 0; i < g->nspans; i++)
        if (g->spans[i].end == 0)
            open[n++] = i;
    return n ? open[next_byte(g) % n] : 0;
}

static void step(program *g)
{
    uint8_t op = next_byte(g);
    g->now += 1 + (op >> 4);
    uint32_t s = pick_open(g);
    switch (op % 8) {
    case 0: case 1: { /* open a span */
        if (g->nspans == MAX_SPANS)
            break;
        expect *x = &g->spans[g->nspans];
        x->name_len = next_byte(g) % sizeof x->name;
        for (int i = 0; i < x->name_len; i++)
            x->name[i] = (char)next_byte(g);
        uint32_t gidx = ms_span_begin(&g->t, s, x->name, x->name_len, g->now);
        FUZZ_CHECK(gidx == g->nspans, "span %u got gidx %u", g->nspans, gidx);
        x->parent = s;
        x->start = g->now;
        g->nspans++;
        break;
    }
    case 2: /* end one (never the root: the trace ends it) */
        if (s) {
            ms_span_end(&g->t, s, g->now);
            g->spans[s].end = g->now;
        }
        break;
    case 3: {
        int k = next_byte(g) % 4;
        char key[2] = {(char)('a' + k), 0};
        ms_span_set_int(&g->t, s, key, 1, (int64_t)((uint64_t)next_byte(g) << 56));
        g->spans[s].keys |= (uint8_t)(1 << k);
        break;
    }
    case 4:
        ms_span_set_str(&g->t, s, "k", 1, (const char *)g->p, (size_t)(g->end - g->p) % 5);
        g->spans[s].keys |= 1 << 4;
        break;
    case 5:
        ms_span_event(&g->t, s, g->now, "e", 1, next_byte(g) & 1 ? "{}" : NULL, 2);
        break;
    case 6:
        if (next_byte(g) & 1)
            ms_span_fail(&g->t, s, 1, "tool_error", "m\0x", 3, NULL);
        else {
            ms_llm_usage u = {"p", "m", next_byte(g), next_byte(g), 0, 0, NAN, -1, 0, 0};
            ms_span_set_llm(&g->t, s, &u);
        }
        break;
    case 7:
        if (g->nparts < 8 && ms_trace_cut(&g->t, &g->parts[g->nparts], g->now) == 0)
            g->nparts++;
        break;
    }
}

static void check_part(program *g, ms_pack_encoder *e, ms_pack_reader *r, const ms_trace *part)
{
    ms_buf blob = {0};
    long n = ms_pack_encode(e, part, &blob);
    FUZZ_CHECK(n >= 0, "encode failed");
    FUZZ_CHECK(ms_pack_open(r, blob.data, blob.len, g->t.salt) == 0, "open: %s", r->error);
    ms_span_rec sp;
    int rc;
    long got = 0;
    while ((rc = ms_pack_next(r, &sp)) == 1) {
        got++;
        FUZZ_CHECK(sp.gidx < g->nspans, "gidx %u of %u", sp.gidx, g->nspans);
        expect *x = &g->spans[sp.gidx];
        FUZZ_CHECK(!x->seen++, "span %u in two parts", sp.gidx);
        FUZZ_CHECK(sp.gidx ? sp.parent == x->parent : sp.parent == MS_NONE,
                   "span %u: parent %u, not %u", sp.gidx, sp.parent, x->parent);
        FUZZ_CHECK(sp.start == x->start - g->spans[0].start, "span %u: start %lld", sp.gidx,
                   (long long)sp.start);
        if (sp.gidx && x->end)
            FUZZ_CHECK(sp.duration == x->end - x->start, "span %u: duration %lld, not %lld",
                       sp.gidx, (long long)sp.duration, (long long)(x->end - x->start));
        if (sp.gidx)
            FUZZ_CHECK(sp.name.len == x->name_len && memcmp(sp.name.p, x->name, x->name_len) == 0,
                       "span %u: another name", sp.gidx);
        uint32_t na = 0;
        uint32_t want = (uint32_t)__builtin_popcount(x->keys);
        FUZZ_CHECK(ms_pack_attrs(r, &sp, count_attr, &na) == 0 && na == want,
                   "span %u: %u attributes, not %u", sp.gidx, na, want);
        uint32_t ne = 0;
        FUZZ_CHECK(ms_pack_events(r, &sp, count_event, &ne) == 0 && ne == sp.nevents,
                   "span %u: events unreadable", sp.gidx);
    }
    FUZZ_CHECK(rc == 0 && got == n, "decoded %ld of %ld spans: %s", got, n,
               r->error ? r->error : "");
    ms_buf_free(&blob);
}

static void build_and_read(const uint8_t *data, size_t size)
{
    program *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->p = data;
    g->end = data + size;
    g->now = 1000;
    FUZZ_CHECK(ms_trace_start(&g->t, "root", 4, g->now, NULL, 0) == 0, "start");
    g->spans[0] = (expect){.parent = MS_NONE, .start = g->now};
    g->nspans = 1;
    while (g->p < g->end)
        step(g);
    ms_trace_end(&g->t, ++g->now);

    ms_pack_encoder *e = ms_pack_encoder_new();
    ms_pack_reader r = {0};
    for (int i = 0; i < g->nparts; i++)
        check_part(g, e, &r, &g->parts[i]);
    check_part(g, e, &r, &g->t);
    for (uint32_t i = 0; i < g->nspans; i++)
        FUZZ_CHECK(g->spans[i].seen == 1, "span %u decoded %d times", i, g->spans[i].seen);
    ms_pack_reader_free(&r);
    ms_pack_encoder_free(e);
    for (int i = 0; i < g->nparts; i++)
        ms_trace_free(&g->parts[i]);
    ms_trace_free(&g->t);
    free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        /* an exact-size copy, so a read one byte past the blob is caught */
        uint8_t *blob = malloc(size - 1 ? size - 1 : 1);
        memcpy(blob, data + 1, size - 1);
        decode_hostile(blob, size - 1);
        free(blob);
    } else {
        build_and_read(data + 1, size - 1);
    }
    return 0;
}
