#include "ms_tracer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ms_tracer {
    ms_store *store;
    pthread_t writer;
    pthread_mutex_t lock;      /* guards everything below */
    pthread_cond_t not_empty;  /* writer waits for work */
    pthread_cond_t not_full;   /* producers wait for room */
    pthread_cond_t drained;    /* flushers wait for the writer to catch up */
    ms_trace *head, *tail;     /* submitted, not yet taken by the writer */
    size_t queued, queue_max;
    size_t submitted, done;    /* counts of traces; done includes failed */
    size_t failed;
    size_t written_spans;
    int stopping;
    ms_trace *pool;            /* free buffers */
    char last_error[512];
};

/* Takes the whole queue at once: one transaction for everything waiting. */
static void *writer_main(void *arg)
{
    ms_tracer *tr = arg;
    ms_trace **batch = NULL;
    size_t cap = 0;
    char err[512];
    pthread_mutex_lock(&tr->lock);
    for (;;) {
        while (!tr->head && !tr->stopping)
            pthread_cond_wait(&tr->not_empty, &tr->lock);
        if (!tr->head && tr->stopping)
            break;
        size_t n = tr->queued;
        if (n > cap) {
            ms_trace **nb = realloc(batch, n * sizeof *nb);
            if (nb) {
                batch = nb;
                cap = n;
            }
        }
        if (n > cap)
            n = cap ? cap : 0;
        ms_trace *t = tr->head;
        size_t spans = 0;
        ms_trace *single = NULL;
        if (n == 0) { /* no memory for a batch array: write one at a time */
            single = t;
            n = 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (!single)
                batch[i] = t;
            spans += t->nspans;
            t = t->next;
        }
        tr->head = t;
        if (!t)
            tr->tail = NULL;
        tr->queued -= n;
        pthread_cond_broadcast(&tr->not_full);
        pthread_mutex_unlock(&tr->lock);

        ms_trace *const *items = single ? &single : batch;
        int rc = ms_store_write(tr->store, items, n, err, sizeof err);

        pthread_mutex_lock(&tr->lock);
        if (rc) {
            tr->failed += n;
            memcpy(tr->last_error, err, sizeof err);
        } else {
            tr->written_spans += spans;
        }
        tr->done += n;
        pthread_mutex_unlock(&tr->lock);
        for (size_t i = 0; i < n; i++)
            ms_tracer_release(tr, items[i]);
        pthread_mutex_lock(&tr->lock);
        pthread_cond_broadcast(&tr->drained);
    }
    pthread_mutex_unlock(&tr->lock);
    free(batch);
    return NULL;
}

int ms_tracer_open(ms_store *store, size_t queue_max, ms_tracer **out)
{
    ms_tracer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return ENOMEM;
    tr->store = store;
    tr->queue_max = queue_max ? queue_max : 1;
    pthread_mutex_init(&tr->lock, NULL);
    pthread_cond_init(&tr->not_empty, NULL);
    pthread_cond_init(&tr->not_full, NULL);
    pthread_cond_init(&tr->drained, NULL);
    int rc = pthread_create(&tr->writer, NULL, writer_main, tr);
    if (rc) {
        pthread_mutex_destroy(&tr->lock);
        pthread_cond_destroy(&tr->not_empty);
        pthread_cond_destroy(&tr->not_full);
        pthread_cond_destroy(&tr->drained);
        free(tr);
        return rc;
    }
    *out = tr;
    return 0;
}

ms_trace *ms_tracer_acquire(ms_tracer *tr)
{
    pthread_mutex_lock(&tr->lock);
    ms_trace *t = tr->pool;
    if (t)
        tr->pool = t->next;
    pthread_mutex_unlock(&tr->lock);
    if (!t && !(t = calloc(1, sizeof *t)))
        return NULL;
    t->next = NULL;
    t->generation++;
    atomic_store(&t->refs, 1);
    atomic_store(&t->state, MS_TRACE_FREE);
    ms_trace_reset(t);
    return t;
}

void ms_tracer_submit(ms_tracer *tr, ms_trace *t)
{
    pthread_mutex_lock(&tr->lock);
    while (tr->queued >= tr->queue_max)
        pthread_cond_wait(&tr->not_full, &tr->lock);
    t->next = NULL;
    if (tr->tail)
        tr->tail->next = t;
    else
        tr->head = t;
    tr->tail = t;
    tr->queued++;
    tr->submitted++;
    pthread_cond_signal(&tr->not_empty);
    pthread_mutex_unlock(&tr->lock);
}

void ms_trace_retain(ms_trace *t) { atomic_fetch_add(&t->refs, 1); }

void ms_tracer_release(ms_tracer *tr, ms_trace *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    atomic_store(&t->state, MS_TRACE_FREE);
    pthread_mutex_lock(&tr->lock);
    t->next = tr->pool;
    tr->pool = t;
    pthread_mutex_unlock(&tr->lock);
}

size_t ms_tracer_flush(ms_tracer *tr)
{
    pthread_mutex_lock(&tr->lock);
    size_t target = tr->submitted;
    while (tr->done < target)
        pthread_cond_wait(&tr->drained, &tr->lock);
    size_t failed = tr->failed;
    pthread_mutex_unlock(&tr->lock);
    return failed;
}

const char *ms_tracer_last_error(ms_tracer *tr)
{
    return tr->last_error[0] ? tr->last_error : NULL;
}

size_t ms_tracer_written_spans(ms_tracer *tr)
{
    pthread_mutex_lock(&tr->lock);
    size_t n = tr->written_spans;
    pthread_mutex_unlock(&tr->lock);
    return n;
}

size_t ms_tracer_close(ms_tracer *tr)
{
    if (!tr)
        return 0;
    size_t failed = ms_tracer_flush(tr);
    pthread_mutex_lock(&tr->lock);
    tr->stopping = 1;
    pthread_cond_signal(&tr->not_empty);
    pthread_mutex_unlock(&tr->lock);
    pthread_join(tr->writer, NULL);
    ms_store_close(tr->store);
    for (ms_trace *t = tr->pool, *next; t; t = next) {
        next = t->next;
        ms_trace_free(t);
        free(t);
    }
    pthread_mutex_destroy(&tr->lock);
    pthread_cond_destroy(&tr->not_empty);
    pthread_cond_destroy(&tr->not_full);
    pthread_cond_destroy(&tr->drained);
    free(tr);
    return failed;
}
