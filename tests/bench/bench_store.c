/* bench_store — how fast the telemetry core persists spans.
 *
 *   bench_store DB [TRACES] [SPANS_PER_TRACE] [--blocks N]
 *
 * With --blocks, also times every N traces to the point the writer has
 * them on disk, prints every block, and compares the last three with the
 * first three: writing should stay as fast when the store is big. Three
 * blocks, not one: a block that happens to hold a WAL checkpoint is slower
 * wherever it falls.
 * Fills trace buffers the way the Lua binding does (names, an attribute,
 * llm usage on some spans, errors on a few), submits them to the tracer
 * and times until the writer has everything on disk. Durations are
 * synthetic (log-normal-ish) so the database doubles as a realistic input
 * for timing `moonspan report`. Prints one line: spans/s sustained. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_clock.h"
#include "ms_store.h"
#include "ms_tracer.h"

static const char *const STEPS[] = {"plan", "search", "rerank", "generate", "tool:calc",
                                    "tool:web", "summarize", "validate"};

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_store DB [TRACES] [SPANS_PER_TRACE]\n");
        return 2;
    }
    long traces = argc > 2 ? atol(argv[2]) : 100000;
    long per = argc > 3 ? atol(argv[3]) : 10;
    long block = argc > 5 && strcmp(argv[4], "--blocks") == 0 ? atol(argv[5]) : 0;
    enum { MAX_BLOCKS = 1000 };
    double blocks[MAX_BLOCKS];
    int nblocks = 0;
    int64_t block_t0 = 0;
    char err[512];
    ms_clock_init();
    ms_store *store;
    if (ms_store_open(argv[1], MS_STORE_WRITE, &store, err, sizeof err)) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    ms_tracer *tr;
    if (ms_tracer_open(store, 4096, &tr)) {
        fprintf(stderr, "bench_store: cannot start the tracer\n");
        return 1;
    }
    /* spread traces over the last 60 days so the cost trend has rows */
    int64_t now = ms_mono_ns();
    int64_t t0 = ms_mono_ns();
    block_t0 = t0;
    for (long i = 0; i < traces; i++) {
        if (block && i > 0 && i % block == 0) {
            ms_tracer_flush(tr, 0, NULL);
            int64_t now_b = ms_mono_ns();
            if (nblocks < MAX_BLOCKS)
                blocks[nblocks++] = (double)(now_b - block_t0) / (double)(block * per);
            block_t0 = now_b;
        }
        ms_trace *t = ms_tracer_acquire(tr);
        int64_t start = now - (int64_t)((double)(traces - i) / (double)traces * 60 * 86400e9);
        ms_trace_start(t, "answer_question", 15, start, NULL, 0);
        int64_t at = start;
        for (long s = 1; s < per; s++) {
            const char *name = STEPS[(s - 1) % 8];
            uint32_t idx = ms_span_begin(t, 0, name, strlen(name), at);
            double ms = exp(1.5 + (s % 8) * 0.4 + uniform());
            int64_t dur = (int64_t)(ms * 1e6);
            ms_span_set_int(t, idx, "k", 1, s);
            if (s % 8 == 4) {
                ms_llm_usage u = {.provider = "mock", .model = "mock",
                                  .input = 400 + (int64_t)(uniform() * 200), .output = 150,
                                  .ttft_ns = -1};
                u.cost_usd = (u.input * 1.0 + u.output * 5.0) / 1e6;
                ms_span_set_llm(t, idx, &u);
                if (uniform() < 0.05)
                    ms_span_add_retries(t, idx, 1, uniform() < 0.8, 200000000);
            }
            if (uniform() < 0.002)
                ms_span_fail(t, idx, 1, "rate_limit_error", "simulated 429", 13, NULL);
            ms_span_end(t, idx, at + dur);
            at += dur;
        }
        ms_trace_end(t, at);
        ms_tracer_submit(tr, t);
    }
    ms_tracer_flush(tr, 0, NULL);
    size_t failed = ms_tracer_failed(tr);
    double secs = (double)(ms_mono_ns() - t0) / 1e9;
    size_t spans = ms_tracer_written_spans(tr);
    ms_tracer_close(tr, 0);
    if (failed) {
        fprintf(stderr, "bench_store: %zu traces failed\n", failed);
        return 1;
    }
    printf("%zu spans in %.2f s: %.0f spans/s sustained into SQLite\n", spans, secs, (double)spans / secs);
    if (nblocks >= 6) {
        printf("  ns per span of each %ld-span block:", block * per);
        for (int i = 0; i < nblocks; i++)
            printf(" %.0f", blocks[i]);
        double first = (blocks[0] + blocks[1] + blocks[2]) / 3;
        double last = (blocks[nblocks - 3] + blocks[nblocks - 2] + blocks[nblocks - 1]) / 3;
        printf("\n  the last three blocks against the first three: x%.2f at %zu spans\n", last / first, spans);
    }
    return 0;
}
