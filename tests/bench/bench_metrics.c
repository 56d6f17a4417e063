/* bench_metrics — what the Prometheus metrics cost.
 *
 *   bench_metrics [STORE.db]
 *
 * 1. The live registry: ns of the writer thread's CPU per span to observe
 *    100,000 traces of 10 spans (one an LLM call), shaped as bench_store's;
 *    the script's thread pays nothing (the writer observes), so this is
 *    the whole cost, on the other thread.
 * 2. With a store (bench_store's 1M-span one): `serve --metrics`'s first
 *    read of the whole store, then a scrape (incremental read plus the
 *    exposition), each timed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_clock.h"
#include "ms_metrics.h"
#include "ms_metrics_store.h"
#include "ms_metrics_trace.h"
#include "ms_store.h"
#include "ms_trace.h"

static const char *const STEPS[] = {"plan", "search", "rerank", "generate", "tool:calc",
                                    "tool:web", "summarize", "validate", "answer"};

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void fill(ms_trace *t, long i)
{
    ms_trace_reset(t);
    ms_trace_start(t, "answer_question", 15, 0, NULL, 0);
    int64_t at = 0;
    for (long s = 1; s < 10; s++) {
        const char *name = STEPS[s - 1];
        uint32_t idx = ms_span_begin(t, 0, name, strlen(name), at);
        at += 1000000 * (s + i % 7);
        if (s == 4) {
            ms_llm_usage u = {.provider = "mock", .model = "mock", .input = 400 + i % 200, .output = 150,
                              .cost_usd = 0.001, .ttft_ns = -1};
            ms_span_set_llm(t, idx, &u);
        }
        ms_span_end(t, idx, at);
    }
    ms_trace_end(t, at);
}

int main(int argc, char **argv)
{
    ms_clock_init();
    ms_metrics *m = ms_metrics_new();
    enum { BATCH = 1000, ROUNDS = 100 }; /* 1,000 traces observed 100 times: 1M spans */
    ms_trace *t = calloc(BATCH, sizeof *t);
    ms_trace *batch[BATCH];
    for (long i = 0; i < BATCH; i++) {
        fill(&t[i], i);
        batch[i] = &t[i];
    }
    double c0 = thread_cpu_ns();
    for (int r = 0; r < ROUNDS; r++)
        ms_metrics_observe_traces(m, batch, BATCH);
    double cpu = thread_cpu_ns() - c0;
    printf("live registry: %.0f ns of writer-thread CPU per span (%d spans)\n", cpu / (BATCH * ROUNDS * 10.0),
           BATCH * ROUNDS * 10);
    for (long i = 0; i < BATCH; i++)
        ms_trace_free(&t[i]);
    free(t);
    ms_metrics_free(m);
    if (argc < 2)
        return 0;

    char err[512];
    ms_store *s;
    if (ms_store_open(argv[1], MS_STORE_READ, &s, err, sizeof err)) {
        fprintf(stderr, "bench_metrics: %s\n", err);
        return 1;
    }
    m = ms_metrics_new();
    ms_metrics_store *feed;
    int64_t t0 = ms_mono_ns();
    if (ms_metrics_store_open(ms_store_db(s), m, &feed, err, sizeof err) ||
        ms_metrics_store_update(feed, err, sizeof err)) {
        fprintf(stderr, "bench_metrics: %s\n", err);
        return 1;
    }
    int64_t t1 = ms_mono_ns();
    ms_buf out = {0};
    if (ms_metrics_store_update(feed, err, sizeof err) || ms_metrics_write(m, &out)) {
        fprintf(stderr, "bench_metrics: %s\n", err);
        return 1;
    }
    int64_t t2 = ms_mono_ns();
    printf("serve --metrics on %llu traces: first read %.0f ms, then a scrape %.2f ms (%zu bytes)\n",
           (unsigned long long)ms_metrics_store_rows(feed), (t1 - t0) / 1e6, (t2 - t1) / 1e6, out.len);
    ms_buf_free(&out);
    ms_metrics_store_close(feed);
    ms_metrics_free(m);
    ms_store_close(s);
    return 0;
}
