/* ms_tracer — hands out trace buffers and persists ended traces.
 *
 * The thread that records (the Lua thread) acquires a buffer, fills it and
 * submits it; a writer thread batches submitted traces into SQLite
 * transactions and returns the buffers to a pool.
 *
 * What a producer may assume:
 * - Nothing is dropped to keep up: when the writer is behind, submit waits.
 * - The loss on a crash is bounded by time, not by queue length: submit
 *   admits a trace only while the queue holds at most MS_TRACER_BACKLOG_MS
 *   of the writer's measured work, and the writer commits everything it
 *   took before taking more, so a submitted trace is committed within
 *   about MS_TRACER_WINDOW_MS while the disk keeps up.
 * - A write that fails for a reason that may pass (disk full, I/O error,
 *   a lock held elsewhere) is retried, the first failure is announced
 *   through the notice callback, and the producer waits once the queue is
 *   full. Only a flush with a deadline, or a permanent error, gives a
 *   batch up, and every trace given up is counted.
 * - The writer checkpoints the WAL whenever it has been idle for
 *   MS_TRACER_IDLE_MS, so trickled traces do not grow it.
 *
 * Every trace acquired and not yet submitted is on the tracer's open list,
 * so a run that ends under open traces can end and write all of them. */
#ifndef MS_TRACER_H
#define MS_TRACER_H

#include <stddef.h>
#include <stdint.h>

#include "ms_store.h"
#include "ms_trace.h"

#define MS_TRACER_WINDOW_MS 200
#define MS_TRACER_BACKLOG_MS 100
#define MS_TRACER_IDLE_MS 200

typedef struct ms_tracer ms_tracer;

/* Starts a tracer writing to `store` (the tracer takes ownership of it)
 * with a queue of at most `queue_max` traces. Returns 0 or an errno. */
int ms_tracer_open(ms_store *store, size_t queue_max, ms_tracer **out);

/* Called from the writer thread with a one-line message when writing
 * starts failing and when it works again; NULL (the default) says
 * nothing. Set before the first submit. */
void ms_tracer_set_notice(ms_tracer *tr, void (*notice)(const char *msg));

/* The most observers one tracer calls. */
#define MS_TRACER_OBSERVERS_MAX 4

/* Adds an observer: called from the writer thread, without the tracer's
 * lock, with each batch of traces and parts it takes, before writing
 * them, in the order observers were added (the live metrics,
 * ms_metrics_trace.h; the JSON log, ms_log.h). The buffers are read-only
 * and valid for the call only. Add before the first submit. Returns 0, or
 * ENOSPC when MS_TRACER_OBSERVERS_MAX are already added. */
int ms_tracer_add_observer(ms_tracer *tr, void (*fn)(void *ud, ms_trace *const *traces, size_t n), void *ud);

/* Traces and parts submitted and not yet taken by the writer. Thread-safe. */
size_t ms_tracer_queued(ms_tracer *tr);

/* A reset trace buffer with one reference (the caller's), on the open
 * list until submitted or released. Never NULL unless memory is
 * exhausted. Thread-safe. */
ms_trace *ms_tracer_acquire(ms_tracer *tr);

/* Hands an ended trace to the writer; takes over the caller's reference.
 * Blocks while the queue is full (see above). Thread-safe. */
void ms_tracer_submit(ms_tracer *tr, ms_trace *t);

/* Cuts the spans of open trace `t` that have ended into a part and hands
 * it to the writer (ms_trace_cut), so a long trace is written as it goes.
 * Blocks like submit. Returns 0, or ENOMEM (t is then marked oom). */
int ms_tracer_cut(ms_tracer *tr, ms_trace *t, int64_t now);

/* Cuts every open trace with ended spans whose last cut will be
 * MS_CUT_AGE_NS old by now + wait_ns. Called by the thread that records
 * the traces (the only one that may cut them) before it blocks for up to
 * wait_ns, so what ended before a long wait is on disk during it. Returns
 * how many traces were cut. */
int ms_tracer_cut_waiting(ms_tracer *tr, int64_t now, int64_t wait_ns);

/* An extra reference keeps an ended trace readable (ctx:summary()) after
 * the writer is done with it. Each retain needs one release; the last
 * release returns the buffer to the pool. */
void ms_tracer_retain(ms_tracer *tr, ms_trace *t);
void ms_tracer_release(ms_tracer *tr, ms_trace *t);

/* The first trace on the open list that has started (state OPEN), or
 * NULL. For ending everything still open when a run ends. */
ms_trace *ms_tracer_first_open(ms_tracer *tr);

/* Waits until every trace submitted before the call has been written or
 * given up. `give_up_ns` > 0: a write still failing that long after the
 * call is given up (counted as failed) instead of retried. `cancel`, when
 * not NULL, ends the wait early once *cancel becomes non-zero. Returns the
 * number of traces submitted before the call that are not yet written
 * (0 when all were), so a cancelled wait says what is left. */
size_t ms_tracer_flush(ms_tracer *tr, int64_t give_up_ns, const volatile int *cancel);

/* Traces given up so far, and the message of the last failed write
 * (NULL when none failed). */
size_t ms_tracer_failed(ms_tracer *tr);
const char *ms_tracer_last_error(ms_tracer *tr);

/* Totals since open, for the closing line and `make bench`. */
size_t ms_tracer_written_spans(ms_tracer *tr);

/* Flushes (giving up on failing writes after `give_up_ns`), stops the
 * writer, closes the store and frees every buffer. Returns the number of
 * traces that could not be written. */
size_t ms_tracer_close(ms_tracer *tr, int64_t give_up_ns);
/* The same, but the store stays open and is returned, for the caller to
 * finish (the run's row) and close; the traces given up go to *failed. */
ms_store *ms_tracer_detach(ms_tracer *tr, int64_t give_up_ns, size_t *failed);

#endif
