/* ms_pack: every field of a trace through the packed encoding and back,
 * a trace cut into parts, and blobs that are cut short or damaged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms_pack.h"

#define PSTR_EQ(ps, lit) \
    do { assert_int_equal((ps).len, sizeof(lit) - 1); assert_memory_equal((ps).p, lit, sizeof(lit) - 1); } while (0)

typedef struct decoded {
    ms_span_rec spans[64];
    int n;
} decoded;

static void decode_all(ms_pack_reader *r, const ms_buf *blob, uint64_t salt, decoded *d)
{
    assert_int_equal(ms_pack_open(r, blob->data, blob->len, salt), 0);
    d->n = 0;
    int rc;
    while ((rc = ms_pack_next(r, &d->spans[d->n])) == 1)
        d->n++;
    assert_int_equal(rc, 0);
}

static const ms_span_rec *by_gidx(const decoded *d, uint32_t g)
{
    for (int i = 0; i < d->n; i++)
        if (d->spans[i].gidx == g)
            return &d->spans[i];
    fail_msg("no span %u", g);
    return NULL;
}

typedef struct seen {
    ms_attr_rec a[8];
    ms_event_rec e[8];
    int na, ne;
} seen;

static int take_attr(void *ud, const ms_attr_rec *a)
{
    seen *s = ud;
    s->a[s->na++] = *a;
    return 0;
}

static int take_event(void *ud, const ms_event_rec *e)
{
    seen *s = ud;
    s->e[s->ne++] = *e;
    return 0;
}

/* root > work (attrs of every type, an event) > call (llm, retried);
 * root > fail (own error with traceback, typed error event on root) */
static void build(ms_trace *t)
{
    memset(t, 0, sizeof *t);
    ms_trace_start(t, "request \xe2\x9c\x93", 11, 1000, NULL, 0);
    uint32_t work = ms_span_begin(t, 0, "work", 4, 1100);
    ms_span_set_str(t, work, "s", 1, "a\0b\xff" "c", 5);
    ms_span_set_int(t, work, "min", 3, INT64_MIN);
    ms_span_set_int(t, work, "max", 3, INT64_MAX);
    ms_span_set_double(t, work, "d", 1, -0.125);
    ms_span_set_bool(t, work, "yes", 3, 1);
    ms_span_set_bool(t, work, "no", 2, 0);
    ms_span_event(t, work, 1150, "hit", 3, "{\"n\":1}", 7);
    uint32_t call = ms_span_begin(t, work, "chat m", 6, 1200);
    ms_llm_usage u = {"prov", "model-x", 100, 20, 3, 4, 0.00125, 42, 1, 1};
    ms_span_set_llm(t, call, &u);
    ms_span_add_retries(t, call, 2, 1, 700);
    ms_span_end(t, call, 1900);
    ms_span_end(t, work, 2000);
    uint32_t fail = ms_span_begin(t, 0, "fail", 4, 2100);
    ms_span_fail(t, fail, 1, "rate_limit_error", "too\nmany", 8, "stack traceback:\n\tx");
    ms_span_end(t, fail, 2200);
    ms_trace_add_error(t, 2300, "judge", "wrong", 5);
    uint32_t cut = ms_span_begin(t, 0, "cut", 3, 2400);
    ms_span_interrupted(t, cut);
    uint32_t fold = ms_fold_open(t, 0, "f", 1, 2500); /* two repetitions */
    for (int i = 0; i < 2; i++) {
        ms_fold_begin(t, fold);
        ms_fold_end(t, fold, 2500 + i * 100, 2550 + i * 100, 0);
    }
    ms_trace_end(t, 3000);
}

static void test_every_field_round_trips(void **state)
{
    (void)state;
    ms_trace t;
    build(&t);
    ms_pack_encoder *e = ms_pack_encoder_new();
    ms_buf blob = {0};
    assert_int_equal(ms_pack_encode(e, &t, &blob), 6);
    ms_pack_reader r = {0};
    decoded d;
    decode_all(&r, &blob, t.salt, &d);
    assert_int_equal(d.n, 6);

    const ms_span_rec *root = by_gidx(&d, 0);
    PSTR_EQ(root->name, "request \xe2\x9c\x93");
    assert_int_equal(root->parent, MS_NONE);
    assert_int_equal(root->kind, MS_KIND_TRACE);
    assert_int_equal(root->status, MS_STATUS_ERROR); /* the trace's: ctx:add_error */
    assert_int_equal(root->start, 0);
    assert_int_equal(root->duration, 2000);
    assert_true(ms_pack_span_id(&r, root) == ms_span_id(&t, 0) && root->explicit_id == 0);
    seen s = {0};
    assert_int_equal(ms_pack_events(&r, root, take_event, &s), 0);
    assert_int_equal(s.ne, 1);
    PSTR_EQ(s.e[0].name, "error");
    assert_int_equal(s.e[0].time, 1300);
    assert_true(s.e[0].has_error);
    PSTR_EQ(s.e[0].error_type, "judge");
    PSTR_EQ(s.e[0].error_message, "wrong");
    assert_int_equal(s.e[0].attrs_json.len, 0);

    const ms_span_rec *work = by_gidx(&d, 1);
    assert_int_equal(work->parent, 0);
    assert_int_equal(work->start, 100);
    assert_int_equal(work->duration, 900);
    assert_int_equal(work->kind, MS_KIND_SPAN);
    assert_int_equal(work->status, MS_STATUS_OK);
    memset(&s, 0, sizeof s);
    assert_int_equal(ms_pack_attrs(&r, work, take_attr, &s), 0);
    assert_int_equal(s.na, 6);
    PSTR_EQ(s.a[0].key, "s");
    assert_int_equal(s.a[0].type, MS_ATTR_STRING);
    PSTR_EQ(s.a[0].s, "a\0b\xff" "c"); /* any bytes, NUL and invalid UTF-8 too */
    assert_true(s.a[1].type == MS_ATTR_INT && s.a[1].i == INT64_MIN);
    assert_true(s.a[2].type == MS_ATTR_INT && s.a[2].i == INT64_MAX);
    assert_true(s.a[3].type == MS_ATTR_DOUBLE && s.a[3].d == -0.125);
    assert_true(s.a[4].type == MS_ATTR_BOOL && s.a[4].i == 1);
    assert_true(s.a[5].type == MS_ATTR_BOOL && s.a[5].i == 0);
    ms_buf json = {0};
    assert_int_equal(ms_pack_attrs_json(&r, work, &json), 0);
    assert_string_equal(json.data, "{\"s\":\"a\\u0000b\xef\xbf\xbd" "c\",\"min\":-9223372036854775808,"
                                   "\"max\":9223372036854775807,\"d\":-0.125,\"yes\":true,\"no\":false}");
    ms_buf_free(&json);
    assert_int_equal(ms_pack_events(&r, work, take_event, &s), 0);
    PSTR_EQ(s.e[0].name, "hit");
    PSTR_EQ(s.e[0].attrs_json, "{\"n\":1}");
    assert_int_equal(s.e[0].time, 150);
    assert_false(s.e[0].has_error);

    const ms_span_rec *call = by_gidx(&d, 2);
    assert_int_equal(call->parent, 1);
    assert_int_equal(call->kind, MS_KIND_LLM);
    assert_true(call->has_llm);
    PSTR_EQ(call->provider, "prov");
    PSTR_EQ(call->model, "model-x");
    assert_true(call->input == 100 && call->output == 20 && call->cache_read == 3 && call->cache_write == 4);
    assert_true(call->cost_usd == 0.00125);
    assert_int_equal(call->ttft_ns, 42);
    assert_true(call->estimated && call->replayed);
    assert_int_equal(call->retries, 2);
    assert_int_equal(call->retry_state, MS_RETRY_SUCCEEDED);
    assert_int_equal(call->backoff_ns, 700);

    const ms_span_rec *fail = by_gidx(&d, 3);
    assert_true(fail->has_error && fail->error_own);
    assert_int_equal(fail->status, MS_STATUS_ERROR);
    PSTR_EQ(fail->error_type, "rate_limit_error");
    PSTR_EQ(fail->error_message, "too\nmany");
    PSTR_EQ(fail->error_traceback, "stack traceback:\n\tx");
    assert_false(fail->has_llm);
    assert_true(isnan(fail->cost_usd) && fail->ttft_ns == -1);

    const ms_span_rec *cut = by_gidx(&d, 4);
    assert_int_equal(cut->status, MS_STATUS_INTERRUPTED);
    assert_false(cut->has_error);

    const ms_span_rec *fold = by_gidx(&d, 5);
    assert_int_equal(fold->kind, MS_KIND_FOLD);
    assert_true(fold->fold_count == 2 && fold->fold_total == 100 && fold->fold_min == 50 &&
                fold->fold_max == 50 && fold->duration == 150);

    /* ids: all distinct, derived from the salt */
    for (int i = 0; i < d.n; i++)
        for (int j = i + 1; j < d.n; j++)
            assert_true(ms_pack_span_id(&r, &d.spans[i]) != ms_pack_span_id(&r, &d.spans[j]));

    ms_pack_reader_free(&r);
    ms_buf_free(&blob);
    ms_pack_encoder_free(e);
    ms_trace_free(&t);
}

/* A trace cut twice while open, then ended: every span is in exactly one
 * part, the open ones (root, outer) in the last, with their attributes. */
static void test_a_trace_cut_into_parts(void **state)
{
    (void)state;
    ms_trace t, p1, p2;
    memset(&t, 0, sizeof t);
    memset(&p1, 0, sizeof p1);
    memset(&p2, 0, sizeof p2);
    ms_trace_start(&t, "long", 4, 0, NULL, 0);
    ms_span_set_str(&t, 0, "user", 4, "u1", 2);
    uint32_t outer = ms_span_begin(&t, 0, "outer", 5, 10);
    ms_span_set_int(&t, outer, "k", 1, 7);
    for (int i = 0; i < 3; i++)
        ms_span_end(&t, ms_span_begin(&t, outer, "a", 1, 20 + i), 30 + i);
    assert_int_equal(ms_trace_cut(&t, &p1, 40), 0);
    assert_int_equal(p1.part, MS_PART_CUT);
    assert_int_equal(p1.part_seq, 0);
    assert_int_equal(p1.part_spans, 3);
    assert_null(ms_trace_span(&t, 1 + 1)); /* "a", written: gone from the buffer */
    assert_non_null(ms_trace_span(&t, outer)); /* open: kept */
    for (int i = 0; i < 2; i++)
        ms_span_end(&t, ms_span_begin(&t, outer, "b", 1, 50 + i), 60 + i);
    assert_int_equal(ms_trace_cut(&t, &p2, 70), 0);
    assert_int_equal(p2.part_seq, 1);
    ms_span_end(&t, outer, 80);
    ms_trace_end(&t, 90);
    assert_int_equal(t.part, MS_PART_LAST);
    assert_int_equal(t.part_seq, 2);

    ms_pack_encoder *e = ms_pack_encoder_new();
    ms_pack_reader r = {0};
    ms_trace *parts[3] = {&p1, &p2, &t};
    int count[8] = {0}, total = 0;
    for (int k = 0; k < 3; k++) {
        ms_buf blob = {0};
        assert_true(ms_pack_encode(e, parts[k], &blob) >= 0);
        decoded d;
        decode_all(&r, &blob, t.salt, &d);
        for (int i = 0; i < d.n; i++) {
            count[d.spans[i].gidx]++;
            total++;
            if (d.spans[i].gidx == 1) { /* outer: its attribute went along with it */
                assert_int_equal(k, 2);
                assert_int_equal(d.spans[i].duration, 70);
                ms_buf json = {0};
                ms_pack_attrs_json(&r, &d.spans[i], &json);
                assert_string_equal(json.data, "{\"k\":7}");
                ms_buf_free(&json);
            }
            if (d.spans[i].gidx >= 2)
                assert_int_equal(d.spans[i].parent, 1);
        }
        ms_buf_free(&blob);
    }
    assert_int_equal(total, 7);
    for (int g = 0; g < 7; g++)
        assert_int_equal(count[g], 1);
    ms_pack_reader_free(&r);
    ms_pack_encoder_free(e);
    ms_trace_free(&t);
    ms_trace_free(&p1);
    ms_trace_free(&p2);
}

/* Reads a decoded span's attributes and events, as the readers do. */
static void attrs_of(const ms_pack_reader *r, const ms_span_rec *sp)
{
    ms_buf j = {0};
    ms_pack_attrs_json(r, sp, &j);
    ms_buf_free(&j);
    seen s = {0};
    if (sp->nevents <= 8)
        ms_pack_events(r, sp, take_event, &s);
}

/* Every prefix of a blob, and every single-byte change of it, decodes to
 * an error or to spans: never a crash (ASan watches the reads). */
static void test_damaged_blobs_are_errors(void **state)
{
    (void)state;
    ms_trace t;
    build(&t);
    ms_pack_encoder *e = ms_pack_encoder_new();
    ms_buf blob = {0};
    ms_pack_encode(e, &t, &blob);
    ms_pack_reader r = {0};
    ms_span_rec sp;
    for (size_t n = 0; n < blob.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: a read past them is caught */
        memcpy(copy, blob.data, n);
        int rc = ms_pack_open(&r, copy, n, t.salt);
        if (rc == 0)
            while ((rc = ms_pack_next(&r, &sp)) == 1)
                attrs_of(&r, &sp);
        assert_int_equal(rc, -1); /* a prefix is never a whole blob: it ends in an error */
        assert_non_null(r.error);
        free(copy);
    }
    for (size_t i = 0; i < blob.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *copy = malloc(blob.len);
            memcpy(copy, blob.data, blob.len);
            copy[i] ^= (uint8_t)(1 << bit);
            if (ms_pack_open(&r, copy, blob.len, t.salt) == 0)
                while (ms_pack_next(&r, &sp) == 1)
                    attrs_of(&r, &sp);
            free(copy);
        }
    }
    assert_int_equal(ms_pack_open(&r, NULL, 0, 0), -1);
    const uint8_t future[] = {MS_PACK_FORMAT + 1, 0, 0};
    assert_int_equal(ms_pack_open(&r, future, sizeof future, 0), -1);
    assert_non_null(strstr(r.error, "unknown format"));
    ms_pack_reader_free(&r);
    ms_buf_free(&blob);
    ms_pack_encoder_free(e);
    ms_trace_free(&t);
}

/* A fold of 1,000 repetitions under a span: counts, extremes, errors and
 * its histogram round trip; a cut while a repetition runs keeps the fold
 * open in the trace, and the part it lands in at the end holds them all. */
static void test_a_fold_round_trips(void **state)
{
    (void)state;
    ms_trace t, part;
    memset(&t, 0, sizeof t);
    memset(&part, 0, sizeof part);
    ms_trace_start(&t, "rerank", 6, 0, NULL, 0);
    uint32_t loop = ms_span_begin(&t, 0, "loop", 4, 10);
    int64_t now = 100;
    uint32_t f = MS_NONE;
    for (int i = 0; i < 1000; i++) {
        uint32_t g = ms_fold_open(&t, loop, "score_doc", 9, now);
        assert_true(f == MS_NONE || g == f); /* one fold for every repetition */
        f = g;
        ms_fold_begin(&t, f);
        if (i == 500) /* a cut in the middle of a repetition */
            assert_int_equal(ms_trace_cut(&t, &part, now), 0);
        int64_t d = 1000 + (i % 10) * 100; /* 1.0 .. 1.9 µs */
        ms_fold_end(&t, f, now, now + d, i % 250 == 0);
        now += d + 10;
    }
    ms_span_end(&t, loop, now);
    ms_trace_end(&t, now + 5);

    ms_pack_encoder *e = ms_pack_encoder_new();
    ms_buf blob = {0};
    ms_pack_encode(e, &part, &blob);
    ms_pack_reader r = {0};
    decoded d;
    decode_all(&r, &blob, t.salt, &d);
    for (int i = 0; i < d.n; i++) /* the cut took nothing of the running fold */
        assert_int_not_equal(d.spans[i].kind, MS_KIND_FOLD);
    ms_buf_free(&blob);
    blob = (ms_buf){0};
    ms_pack_encode(e, &t, &blob);
    decode_all(&r, &blob, t.salt, &d);
    const ms_span_rec *fold = by_gidx(&d, f);
    assert_int_equal(fold->kind, MS_KIND_FOLD);
    assert_int_equal(fold->parent, loop);
    PSTR_EQ(fold->name, "score_doc");
    assert_int_equal(fold->fold_count, 1000);
    assert_int_equal(fold->fold_errors, 4);
    assert_int_equal(fold->fold_min, 1000);
    assert_int_equal(fold->fold_max, 1900);
    assert_int_equal(fold->fold_total, 1000 * 1450);
    assert_int_equal(fold->start, 100);
    assert_int_equal(fold->start + fold->duration, now - 10);
    ms_hist h = {0};
    assert_int_equal(ms_pack_fold_hist(fold, &h), 0);
    assert_int_equal(ms_hist_total(&h), 1000);
    assert_int_equal(ms_hist_quantile(&h, 0.5), ms_hist_bucket_mid(ms_hist_bucket(1400)));
    ms_hist_free(&h);
    /* the trace counts the repetitions that failed, not the fold once */
    ms_trace_totals tot;
    ms_trace_totals_get(&t, &tot);
    assert_int_equal(tot.errors, 4);

    /* a fold whose counts are damaged is an error, never a crash: the
     * damaged-blob test below walks every byte of this blob too */
    ms_buf_free(&blob);
    ms_pack_reader_free(&r);
    ms_pack_encoder_free(e);
    ms_trace_free(&t);
    ms_trace_free(&part);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Span ids derived from (salt, index): never 0, never repeated in a trace. */
static void test_derived_ids_are_distinct(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint64_t *ids = malloc(N * sizeof *ids);
    for (uint32_t i = 0; i < N; i++) {
        ids[i] = ms_span_id_derive(UINT64_C(0x1234567890abcdef), i);
        assert_true(ids[i] != 0);
    }
    qsort(ids, N, sizeof *ids, cmp_u64);
    for (int i = 1; i < N; i++)
        assert_true(ids[i - 1] != ids[i]);
    /* and two traces with one id (TRACEPARENT) but their own salts differ */
    assert_true(ms_span_id_derive(1, 0) != ms_span_id_derive(2, 0));
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_round_trips),
        cmocka_unit_test(test_a_trace_cut_into_parts),
        cmocka_unit_test(test_damaged_blobs_are_errors),
        cmocka_unit_test(test_a_fold_round_trips),
        cmocka_unit_test(test_derived_ids_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
