/* ms_models — the LLM calls of `moonspan report` per model: how many,
 * how many failed, tokens, cost, and the time to first token of the
 * streamed ones.
 *
 * A call is a span that recorded LLM usage; a model is its (provider,
 * model) pair, so the same model name at two providers is two rows. Cost
 * is live spend, as in the report's cost: a call answered from a
 * recording (eval --replay) spent nothing, and is counted apart. */
#ifndef MS_MODELS_H
#define MS_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_dist.h"
#include "ms_pack.h"
#include "ms_strmap.h"

typedef struct ms_model {
    const char *provider, *model;  /* owned by the map */
    int64_t calls, failed;         /* failed: ended in error after their retries */
    int64_t in_tok, out_tok;
    double cost;                   /* live spend of the priced calls */
    int64_t priced, unknown_cost_calls, replayed;
    ms_dist ttft;                  /* ns, streamed calls only */
    /* filled by ms_models_finish, in ms, whole ns */
    double ttft_p50, ttft_p95;
    int approximate;
} ms_model;

/* Zero-initialised is empty. */
typedef struct ms_models {
    ms_strmap keys;                /* provider NUL model -> index */
    ms_model *rows;
    size_t n, cap;
    size_t last;                   /* the row of the last call */
    ms_buf key;                    /* scratch */
} ms_models;

/* Counts span `sp` when it recorded LLM usage. Returns 0, or -1 when
 * memory ran out. */
int ms_models_add(ms_models *m, const ms_span_rec *sp);

/* Percentiles, then rows by calls, most first (ties by model, provider).
 * Returns 0, or -1 when memory ran out. */
int ms_models_finish(ms_models *m);

void ms_models_free(ms_models *m);

#endif
