/* ms_tracer — hands out trace buffers and persists ended traces.
 *
 * The thread that records (the Lua thread) acquires a buffer, fills it and
 * submits it; a writer thread batches submitted traces into SQLite
 * transactions and returns the buffers to a pool. Recording therefore never
 * waits for disk, except when the queue is full: then the producer waits
 * rather than drop anything. ms_tracer_flush and ms_tracer_close return
 * only when every submitted trace is on disk (or its write failed). */
#ifndef MS_TRACER_H
#define MS_TRACER_H

#include <stddef.h>

#include "ms_store.h"
#include "ms_trace.h"

typedef struct ms_tracer ms_tracer;

/* Starts a tracer writing to `store` (the tracer takes ownership of it)
 * with a queue of at most `queue_max` traces. Returns 0 or an errno. */
int ms_tracer_open(ms_store *store, size_t queue_max, ms_tracer **out);

/* A reset trace buffer with one reference (the caller's). Never NULL
 * unless memory is exhausted. Thread-safe. */
ms_trace *ms_tracer_acquire(ms_tracer *tr);

/* Hands an ended trace to the writer; takes over the caller's reference.
 * Blocks while the queue is full. Thread-safe. */
void ms_tracer_submit(ms_tracer *tr, ms_trace *t);

/* An extra reference keeps an ended trace readable (ctx:summary()) after
 * the writer is done with it. Each retain needs one release. */
void ms_trace_retain(ms_trace *t);
void ms_tracer_release(ms_tracer *tr, ms_trace *t);

/* Waits until every submitted trace has been written. Returns the number
 * of traces whose write failed so far. */
size_t ms_tracer_flush(ms_tracer *tr);

/* The message of the last failed write, or NULL. */
const char *ms_tracer_last_error(ms_tracer *tr);

/* Totals since open, for the closing line and `make bench`. */
size_t ms_tracer_written_spans(ms_tracer *tr);

/* Flushes, stops the writer, closes the store and frees every buffer.
 * Returns the number of traces whose write failed. */
size_t ms_tracer_close(ms_tracer *tr);

#endif
