/* ms_trace — one trace being recorded: its spans, attributes, events, LLM
 * usage and errors, in memory.
 *
 * A trace buffer is reused from trace to trace (ms_tracer keeps a pool), so
 * in the steady state beginning and ending a span allocates nothing: the
 * span goes into an array that has already grown to size, its name and
 * strings into an arena that is rewound, not freed. Strings are stored as
 * (offset, length) into the arena because the arena may move when it grows.
 *
 * A span is known by its index in the trace, in the order spans began
 * (gidx; 0 is the root); its W3C id derives from that and the trace's
 * salt. A long or long-open trace is written in parts: ms_trace_cut moves
 * every span that has ended into a part for the writer and keeps only the
 * open ones (pinned), so the buffer of an open trace stays bounded and a
 * crash loses little of it. Spans of a part already cut are gone from the
 * buffer: ms_trace_span says so (NULL).
 *
 * A trace is written by one thread (the Lua thread that owns it) until
 * ms_trace_end; after that it is read-only and may be read by the writer
 * thread and by holders of a reference (ms_tracer_retain). A part is
 * read-only from the moment it is cut. */
#ifndef MS_TRACE_H
#define MS_TRACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_hist.h"
#include "ms_ids.h"

#define MS_NONE UINT32_MAX

/* A fold is one record standing for many repetitions of a span (same
 * name, same parent): their count, total, extremes and histogram. */
enum ms_kind { MS_KIND_TRACE, MS_KIND_SPAN, MS_KIND_LLM, MS_KIND_FOLD };
/* A span's or trace's outcome. Interrupted (SIGINT/SIGTERM) and
 * incomplete (still open when the run ended: os.exit, an abandoned
 * coroutine) are not errors of the application: the report counts them
 * apart. */
enum ms_status { MS_STATUS_OK, MS_STATUS_ERROR, MS_STATUS_INTERRUPTED, MS_STATUS_INCOMPLETE };
enum ms_retry_state { MS_RETRY_NONE, MS_RETRY_SUCCEEDED, MS_RETRY_FAILED };
enum ms_attr_type { MS_ATTR_STRING, MS_ATTR_INT, MS_ATTR_DOUBLE, MS_ATTR_BOOL };
enum ms_trace_state { MS_TRACE_FREE, MS_TRACE_OPEN, MS_TRACE_ENDED };

/* A string in the trace's arena; off == MS_NONE means "absent". */
typedef struct ms_str {
    uint32_t off, len;
} ms_str;

typedef struct ms_span {
    int64_t start;       /* monotonic ns */
    int64_t end;         /* monotonic ns; 0 while the span is open */
    ms_str name;
    uint32_t gidx;       /* index in the trace, in begin order */
    uint32_t parent;     /* gidx of the parent span; MS_NONE for the root */
    uint32_t attrs;      /* index of the first attribute; MS_NONE when none */
    uint32_t llm;        /* index into the trace's llm records; MS_NONE when none */
    uint32_t error;      /* index into the trace's error records; MS_NONE when ok */
    uint32_t retries;
    int64_t backoff_ns;  /* time spent waiting between retry attempts */
    uint32_t fold;       /* index into the trace's folds when kind is MS_KIND_FOLD */
    uint8_t kind;        /* enum ms_kind */
    uint8_t retry_state; /* enum ms_retry_state */
    uint8_t status;      /* enum ms_status */
} ms_span;

/* The repetitions a fold stands for. Its span starts with the first and
 * ends with the last; it is open (end 0) while one runs. */
typedef struct ms_fold {
    uint64_t count;      /* repetitions */
    uint64_t errors;     /* repetitions that raised an error of their own */
    uint32_t gidx;       /* its span */
    int64_t total, min, max; /* ns */
    ms_hist hist;
} ms_fold;

typedef struct ms_span_error {
    ms_str type, message, traceback;
    uint8_t own;         /* 1 where raised, 0 where the error only passed through */
} ms_span_error;

/* What an LLM call used; filled by the provider layer. */
typedef struct ms_llm_usage {
    const char *provider, *model;
    int64_t input, output, cache_read, cache_write; /* tokens; input excludes cache reads/writes */
    double cost_usd;     /* NaN when the model has no known price */
    int64_t ttft_ns;     /* time to first token; -1 when not streamed */
    int estimated;       /* tokens were estimated: the provider reported none */
    int replayed;        /* the answer came from a recording (eval --replay): tokens and
                          * cost are the recorded ones, nothing was spent */
} ms_llm_usage;

typedef struct ms_llm {
    ms_str provider, model;
    int64_t input, output, cache_read, cache_write;
    double cost_usd;
    int64_t ttft_ns;
    uint8_t estimated;
    uint8_t replayed;    /* see ms_llm_usage */
} ms_llm;

typedef struct ms_attr {
    uint32_t next;       /* next attribute of the same span, MS_NONE at the end */
    ms_str key;
    uint8_t type;        /* enum ms_attr_type */
    union {
        double d;
        int64_t i;
        ms_str s;
    } v;
} ms_attr;

typedef struct ms_event {
    uint32_t span;       /* gidx */
    int64_t time;        /* monotonic ns */
    ms_str name;
    ms_str attrs_json;   /* a JSON object, or absent */
    ms_str error_type;   /* ctx:add_error: the error, typed; absent on other events */
    ms_str error_message;
} ms_event;

typedef struct ms_tokens {
    int64_t input, output, cache_read, cache_write;
} ms_tokens;

/* Self time the profiler sampled in one function while span `span` was
 * the innermost open span of the running coroutine (host/profile.c). */
typedef struct ms_prof {
    uint64_t key;        /* the function, as the profiler keys it: one key, one function */
    uint32_t span;       /* gidx */
    uint32_t samples;    /* 0: moved to another buffer (see ms_trace_cut) */
    int64_t self_ns;     /* samples x the sampling period */
    int32_t line;        /* where the function is defined: Lua's linedefined,
                          * 0 for a main chunk, -1 for a C function */
    ms_str function;     /* its name, as the profiler labels it */
    ms_str source;       /* its chunk (Lua's short_src), "[C]" for a C function */
} ms_prof;

/* Token and cost totals of a trace: its llm spans plus manual accounting. */
typedef struct ms_trace_totals {
    ms_tokens tokens;
    double cost_usd;           /* sum over priced calls, replayed ones included (a replayed
                                * case scores as the recorded one did); NaN when none priced */
    double replayed_cost_usd;  /* the part of cost_usd from replayed calls; 0 when none */
    uint32_t replayed_calls;   /* llm calls answered from a recording */
    uint32_t unknown_cost_calls;
    uint32_t llm_calls;
    uint32_t errors;           /* own span errors + manual errors */
} ms_trace_totals;

/* A part of a trace cut for the writer (ms_trace_cut). */
enum ms_part { MS_PART_WHOLE, MS_PART_CUT, MS_PART_LAST };

typedef struct ms_trace {
    ms_trace_id id;
    uint64_t salt;             /* span ids derive from (salt, gidx) */
    uint64_t remote_parent;    /* span id from TRACEPARENT; 0 when none */
    int64_t run_id;            /* runs.id of the run that recorded it; 0 when none */
    uint64_t uid;              /* this trace in this process: its parts carry it */
    uint32_t generation;       /* bumped on every reuse, to catch stale handles */
    _Atomic int refs;          /* writer + retained handles; back to the pool at 0 */
    _Atomic int state;         /* enum ms_trace_state */

    /* spans[0 .. npinned) are open spans that began before `base` (their
     * parts were cut); spans[npinned ..] have gidx base, base + 1, ... */
    ms_span *spans;
    uint32_t nspans, cap_spans;
    uint32_t base, npinned;
    ms_attr *attrs;
    uint32_t nattrs, cap_attrs;
    ms_event *events;
    uint32_t nevents, cap_events;
    ms_llm *llm;
    uint32_t nllm, cap_llm;
    ms_span_error *errors;
    uint32_t nerrors, cap_errors;
    ms_fold *folds;            /* slots past nfolds keep their histograms' memory */
    uint32_t nfolds, cap_folds;
    ms_prof *prof;             /* profiler samples, by (span, function) */
    uint32_t nprof, cap_prof;
    uint32_t prof_last;        /* the entry hit last: a hot loop hits it again */
    char *arena;
    uint32_t arena_len, arena_cap;
    /* span ids given from outside (a migrated or imported trace), parallel
     * to spans[]; NULL when they derive from the salt */
    uint64_t *ids;

    int64_t start;             /* monotonic ns the root began: span times are stored from here */
    ms_tokens manual;          /* ctx:add_tokens */
    uint32_t manual_errors;    /* ctx:add_error */
    int oom;                   /* an allocation failed; the trace is incomplete */
    uint8_t sampled_out;       /* sampling keeps its summary only: no spans are written */

    /* parts: how many were cut, and the totals of the spans they took */
    uint32_t parts;
    int64_t last_cut;          /* monotonic ns of the last cut, or the start */
    ms_trace_totals cut_totals;
    uint32_t cut_spans;
    /* set on a part: which it is, its number, and (for a cut one) the trace
     * as it stood then: totals and end time so far */
    uint8_t part;              /* enum ms_part */
    uint32_t part_seq;
    ms_trace_totals part_totals;
    uint32_t part_spans;       /* spans written with this part and before it */
    int64_t part_time;

    /* ended-span summaries kept across cuts (ms_digest.h), when keep_digest;
     * the memory stays with the buffer from trace to trace */
    struct ms_digest *digest;
    uint8_t keep_digest;

    struct ms_trace *next;     /* pool / queue link, owned by ms_tracer */
    struct ms_trace *open_prev, *open_next; /* ms_tracer's list of acquired, unsubmitted traces */
} ms_trace;

/* A trace that has taken this many spans since its last cut, or holds
 * this many bytes of strings, or has had ended spans for this long, is
 * cut (ms_trace_wants_cut). So an open trace holds at most about
 * MS_CUT_SPANS spans of ~100 bytes plus MS_CUT_BYTES of strings, besides
 * its open spans: ~1.5 MB. */
#define MS_CUT_SPANS 4096
#define MS_CUT_BYTES (1u << 20)
#define MS_CUT_AGE_NS (INT64_C(200) * 1000000)

/* Starts the trace in a reset buffer: new id (or `join` with its remote
 * parent), root span at index 0 named `name`, started at `now` (monotonic).
 * Returns 0, or ENOMEM. */
int ms_trace_start(ms_trace *t, const char *name, size_t len, int64_t now,
                   const ms_trace_id *join, uint64_t remote_parent);

/* Opens a span under `parent` (a gidx of this trace) at `now`. Returns
 * its gidx, or MS_NONE when memory ran out (the trace is marked oom and
 * the caller should go on without a span). */
static inline uint32_t ms_span_begin(ms_trace *t, uint32_t parent,
                                     const char *name, size_t len, int64_t now);

/* Span `gidx` in the buffer, or NULL when its part was already cut. The
 * functions below that take a gidx ignore one whose span is gone. */
static inline ms_span *ms_trace_span(const ms_trace *t, uint32_t gidx);

/* The W3C span id of span `gidx` (never 0). */
uint64_t ms_span_id(const ms_trace *t, uint32_t gidx);

/* Closes span `gidx` at `now`. */
static inline void ms_span_end(ms_trace *t, uint32_t gidx, int64_t now)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (s)
        s->end = now;
}

/* Whether the trace should be cut now: enough spans or bytes since the
 * last cut, or ended spans waiting longer than MS_CUT_AGE_NS. */
static inline int ms_trace_wants_cut(const ms_trace *t, int64_t now)
{
    uint32_t fresh = t->nspans - t->npinned;
    return fresh >= MS_CUT_SPANS || t->arena_len >= MS_CUT_BYTES ||
           (fresh > 0 && now - t->last_cut >= MS_CUT_AGE_NS);
}

/* Whether `t` holds a span that has ended and is not yet cut (pinned
 * spans count: one that ended since the last cut goes with the next). */
static inline int ms_trace_has_ended(const ms_trace *t)
{
    for (uint32_t i = 0; i < t->nspans; i++)
        if (t->spans[i].end)
            return 1;
    return 0;
}

/* Moves every span of `t` that has ended, with its attributes, events and
 * records, into `part` (a reset buffer), and keeps the open ones in `t`.
 * `part` becomes an MS_PART_CUT ready for the writer, carrying the
 * trace's identity, its totals so far and `now`. Returns 0, or ENOMEM
 * (then nothing moved). */
int ms_trace_cut(ms_trace *t, ms_trace *part, int64_t now);

/* The most tokens one call may report (a trillion): larger values are
 * refused at the API, so sums over a trace and a store stay far inside
 * int64. Totals saturate at INT64_MAX all the same. */
#define MS_TOKENS_MAX INT64_C(1000000000000)

/* Marks span `i` as failed. `own` says whether the error was raised in
 * this span's body (1) or passed through from a child (0). Strings are
 * copied; any may be NULL. Re-marking a span keeps the first error. */
void ms_span_fail(ms_trace *t, uint32_t i, int own, const char *type,
                  const char *message, size_t message_len, const char *traceback);

/* A filter for text before it enters a trace (ms_redact.h behind it):
 * appends s[0..n) or what replaces it to out and returns non-zero when it
 * changed something. Set once, before any trace starts, by the host. */
typedef size_t (*ms_trace_filter_fn)(const void *ctx, const char *s, size_t n, ms_buf *out);
/* `errors` filters error types, messages and tracebacks (ms_span_fail,
 * ms_trace_add_error); `values` string attribute values and event
 * attributes (ms_span_set_str, ms_span_event). Either may be NULL: text
 * stored as given, at no cost. Keys and span names are not filtered, nor
 * the root's user, session and tags (the trace's identity columns). */
void ms_trace_set_filters(ms_trace_filter_fn errors, ms_trace_filter_fn values, const void *ctx);

/* Sets attribute `key` on span `i`, replacing an earlier value of that key. */
void ms_span_set_str(ms_trace *t, uint32_t i, const char *key, size_t klen,
                     const char *v, size_t vlen);
void ms_span_set_int(ms_trace *t, uint32_t i, const char *key, size_t klen, int64_t v);
void ms_span_set_double(ms_trace *t, uint32_t i, const char *key, size_t klen, double v);
void ms_span_set_bool(ms_trace *t, uint32_t i, const char *key, size_t klen, int v);

/* Adds an event to span `i`; attrs_json is a JSON object text or NULL. */
void ms_span_event(ms_trace *t, uint32_t i, int64_t now, const char *name,
                   size_t len, const char *attrs_json, size_t attrs_len);

/* Makes span `i` an llm span with this usage (replacing an earlier one). */
void ms_span_set_llm(ms_trace *t, uint32_t i, const ms_llm_usage *u);

/* Marks span `i` interrupted (a signal unwound through it); a span that
 * already failed keeps its error. */
void ms_span_interrupted(ms_trace *t, uint32_t i);

/* The fold named `name` under `parent` that is still in the buffer,
 * made (empty, starting at `now`) when there is none. Returns its gidx, or
 * MS_NONE when memory ran out. */
uint32_t ms_fold_open(ms_trace *t, uint32_t parent, const char *name, size_t len, int64_t now);
/* A repetition of fold `gidx` begins at `now`: the fold is open while it
 * runs (a cut keeps it). */
static inline void ms_fold_begin(ms_trace *t, uint32_t gidx)
{
    ms_span *s = ms_trace_span(t, gidx);
    if (s)
        s->end = 0;
}
/* It ended: adds its duration; `failed` when it raised an error of its
 * own. */
void ms_fold_end(ms_trace *t, uint32_t gidx, int64_t start, int64_t now, int failed);

/* Records `retries` retries made inside span `i`, whether the last
 * attempt succeeded, and `backoff_ns` spent waiting between attempts.
 * Adds to what was recorded earlier on the span. */
void ms_span_add_retries(ms_trace *t, uint32_t i, uint32_t retries, int succeeded,
                         int64_t backoff_ns);

/* Adds `n` profiler samples worth `ns` of self time in function `key`
 * (named `fn`, defined at `src`:`line`, see ms_prof) to span `gidx`. The
 * strings are copied the first time the trace sees (gidx, key); later
 * calls with that pair only add. Samples of a span go to the store with
 * the span: a cut (ms_trace_cut) moves those of ended spans into the part
 * and keeps those of open ones. Never fails loudly: out of memory marks
 * the trace oom and drops the samples. */
void ms_span_add_samples(ms_trace *t, uint32_t gidx, uint64_t key, const char *fn, size_t fnlen,
                         const char *src, size_t srclen, int32_t line, uint32_t n, int64_t ns);

/* Trace-level accounting (ctx:add_tokens, ctx:add_error). An added error
 * marks the request failed; `type` NULL means "error". */
void ms_trace_add_tokens(ms_trace *t, const ms_tokens *tok);
void ms_trace_add_error(ms_trace *t, int64_t now, const char *type, const char *message, size_t len);

/* Ends the trace normally at `now`: the root span closes, any other span
 * still open (its coroutine was abandoned) closes as incomplete. */
void ms_trace_end(ms_trace *t, int64_t now);

/* Ends the trace at `now` because the run is ending under it (a signal,
 * os.exit, a coroutine never resumed): every open span, the root
 * included, closes with `status` (MS_STATUS_INTERRUPTED/INCOMPLETE). */
void ms_trace_abort(ms_trace *t, int64_t now, int status);

/* The status of span `i` as stored: the root span carries the trace's. */
int ms_span_status(const ms_trace *t, uint32_t i);
/* "ok", "error", "interrupted", "incomplete". */
const char *ms_status_name(int status);
/* "trace", "span", "llm" or "fold" (enum ms_kind). */
const char *ms_kind_name(int kind);

/* Totals of tokens, cost and errors over the trace. */
void ms_trace_totals_get(const ms_trace *t, ms_trace_totals *out);

/* The trace's status: error when the root span failed or ctx:add_error
 * was called, else the root span's (interrupted, incomplete, ok). */
int ms_trace_status(const ms_trace *t);

/* Writes the span's attributes as a JSON object; nothing when it has none. */
void ms_span_attrs_json(const ms_trace *t, uint32_t gidx, ms_buf *out);

/* Span sp's attribute `key` (klen bytes), or NULL when it has none. */
const ms_attr *ms_span_attr(const ms_trace *t, const ms_span *sp, const char *key, size_t klen);

/* Appends the human-readable timeline (ctx:summary()) to `out`: every
 * line, as ms_trace_timeline draws them (ms_timeline.h). Works on open and
 * ended traces. */
void ms_trace_summary(const ms_trace *t, int64_t now, ms_buf *out);

/* A string of the arena; "" for an absent string. */
static inline const char *ms_trace_str(const ms_trace *t, ms_str s)
{
    return s.off == MS_NONE ? "" : t->arena + s.off;
}

/* Empties the buffer for reuse, keeping its memory. */
void ms_trace_reset(ms_trace *t);
/* Frees the buffer's memory. */
void ms_trace_free(ms_trace *t);

/* --- internals of the inline hot path ---------------------------------- */

int ms_trace_grow_(void **arr, uint32_t *cap, uint32_t need, size_t elem);
ms_str ms_trace_put_(ms_trace *t, const char *s, size_t len);
ms_span *ms_trace_pinned_(const ms_trace *t, uint32_t gidx);
/* ms_trace_cut's part for profiler samples (ms_trace_prof.c): the entries
 * of spans still open (pinned in `t`) go back to `t`. */
void ms_trace_prof_keep_open_(ms_trace *t, ms_trace *part);

static inline ms_span *ms_trace_span(const ms_trace *t, uint32_t gidx)
{
    if (__builtin_expect(gidx >= t->base, 1)) {
        uint32_t i = t->npinned + (gidx - t->base);
        return i < t->nspans ? &t->spans[i] : NULL;
    }
    return ms_trace_pinned_(t, gidx);
}

static inline uint32_t ms_span_begin(ms_trace *t, uint32_t parent,
                                     const char *name, size_t len, int64_t now)
{
    if (__builtin_expect(t->nspans == t->cap_spans, 0) &&
        ms_trace_grow_((void **)&t->spans, &t->cap_spans, t->nspans + 1, sizeof(ms_span))) {
        t->oom = 1;
        return MS_NONE;
    }
    ms_str nm = ms_trace_put_(t, name, len);
    if (__builtin_expect(nm.off == MS_NONE, 0))
        return MS_NONE;
    uint32_t gidx = t->base + (t->nspans - t->npinned);
    ms_span *s = &t->spans[t->nspans++];
    s->start = now;
    s->end = 0;
    s->name = nm;
    s->gidx = gidx;
    s->parent = parent;
    s->attrs = MS_NONE;
    s->llm = MS_NONE;
    s->error = MS_NONE;
    s->retries = 0;
    s->backoff_ns = 0;
    s->kind = MS_KIND_SPAN;
    s->retry_state = MS_RETRY_NONE;
    s->status = MS_STATUS_OK;
    s->fold = MS_NONE;
    return gidx;
}

#endif
