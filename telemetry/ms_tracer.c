#include "ms_tracer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_clock.h"

#define NS_PER_MS INT64_C(1000000)
#define RETRY_EVERY_MS 1000
/* The writer's speed before it has measured its own: slow on purpose, so
 * the first batches are small and the window holds from the start. */
#define INITIAL_WORK_PER_SEC 200000.0
/* Never wait for a queue this small: tiny traces come in bursts. */
#define MIN_BACKLOG_WORK 2048.0
/* Group commit: a writer woken for less work than this waits up to
 * GATHER_NS for more before it writes, so a fast producer is written in
 * batches, not a transaction per trace (and not woken per trace). */
#define GATHER_WORK 1024.0
#define GATHER_NS (INT64_C(3) * 1000000)

struct ms_tracer {
    ms_store *store;
    pthread_t writer;
    pthread_mutex_t lock;      /* guards everything below */
    pthread_cond_t not_empty;  /* writer waits for work (or a retry, or stop) */
    pthread_cond_t not_full;   /* producers wait for room */
    pthread_cond_t drained;    /* flushers wait for the writer to catch up */
    ms_trace *head, *tail;     /* submitted, not yet taken by the writer */
    size_t queued, queue_max;
    double queued_work;        /* write cost of the queue, in work units (trace_work) */
    double work_per_sec;       /* the writer's measured speed, moving average */
    size_t submitted, done;    /* counts of traces; done includes given-up ones */
    size_t failed;
    size_t written_spans;
    int stopping;
    int failing;               /* the batch in hand keeps failing; being retried */
    int64_t give_up_at;        /* monotonic ns after which a failing batch is given up; 0 never */
    int dirty;                 /* written since the last checkpoint */
    int gathering;             /* the writer waits for a batch to fill up */
    int flushing;              /* callers waiting in ms_tracer_flush */
    ms_trace *pool;            /* free buffers */
    ms_trace open;             /* sentinel of the open list (acquired, not submitted) */
    uint64_t last_uid;         /* traces acquired so far: their uids */
    void (*notice)(const char *msg);
    struct {
        void (*fn)(void *ud, ms_trace *const *traces, size_t n);
        void *ud;
    } observers[MS_TRACER_OBSERVERS_MAX];
    size_t nobservers;
    char last_error[512];
};

/* What writing a trace costs, roughly: rows, plus bytes of text. */
static double trace_work(const ms_trace *t)
{
    return (double)t->nspans + t->nattrs + t->nevents + t->arena_len / 64.0;
}

static double backlog_budget(const ms_tracer *tr)
{
    double b = tr->work_per_sec * MS_TRACER_BACKLOG_MS / 1000.0;
    return b > MIN_BACKLOG_WORK ? b : MIN_BACKLOG_WORK;
}

static void open_unlink(ms_trace *t)
{
    if (!t->open_next)
        return;
    t->open_prev->open_next = t->open_next;
    t->open_next->open_prev = t->open_prev;
    t->open_prev = t->open_next = NULL;
}

/* Waits on `cond` until `ns` (monotonic) at the latest. */
static void wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    pthread_cond_timedwait(cond, lock, &ts);
}

static void say(ms_tracer *tr, const char *fmt, const char *a, const char *b)
{
    if (!tr->notice)
        return;
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a, b);
    tr->notice(msg);
}

/* Writes one batch, retrying while the failure may pass. Called without
 * the lock. Returns 1 when written, 0 when given up. */
static int write_batch(ms_tracer *tr, ms_trace *const *items, size_t n)
{
    char err[512];
    for (;;) {
        int rc = ms_store_write(tr->store, items, n, err, sizeof err);
        pthread_mutex_lock(&tr->lock);
        if (rc == MS_WRITE_OK) {
            if (tr->failing)
                say(tr, "writing to the store works again; nothing was lost%s%s", "", "");
            tr->failing = 0;
            pthread_mutex_unlock(&tr->lock);
            return 1;
        }
        memcpy(tr->last_error, err, sizeof err);
        int64_t now = ms_mono_ns();
        if (rc == MS_WRITE_FAILED || (tr->give_up_at && now >= tr->give_up_at)) {
            tr->failing = 0;
            pthread_mutex_unlock(&tr->lock);
            return 0;
        }
        if (!tr->failing)
            say(tr, "%s; retrying every second, nothing is dropped: the script waits while the "
                    "queue is full (free space, or press Ctrl-C: what cannot be written is "
                    "counted at exit)%s", err, "");
        tr->failing = 1;
        int64_t at = now + RETRY_EVERY_MS * NS_PER_MS;
        if (tr->give_up_at && tr->give_up_at < at)
            at = tr->give_up_at;
        wait_until(&tr->not_empty, &tr->lock, at); /* a flush or close may bring the deadline */
        pthread_mutex_unlock(&tr->lock);
    }
}

/* Takes the whole queue at once (the admission rule keeps it within the
 * window) and writes it in one transaction. */
static void *writer_main(void *arg)
{
    ms_tracer *tr = arg;
    ms_trace **batch = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&tr->lock);
    for (;;) {
        while (!tr->head && !tr->stopping) {
            if (!tr->dirty) {
                pthread_cond_wait(&tr->not_empty, &tr->lock);
                continue;
            }
            wait_until(&tr->not_empty, &tr->lock, ms_mono_ns() + MS_TRACER_IDLE_MS * NS_PER_MS);
            if (!tr->head && !tr->stopping) { /* idle: fold the WAL back while nobody waits */
                tr->dirty = 0;
                pthread_mutex_unlock(&tr->lock);
                ms_store_checkpoint(tr->store);
                pthread_mutex_lock(&tr->lock);
            }
        }
        if (!tr->head && tr->stopping)
            break;
        if (tr->queued_work < GATHER_WORK && !tr->stopping && !tr->flushing) {
            int64_t until = ms_mono_ns() + GATHER_NS;
            tr->gathering = 1;
            while (tr->queued_work < GATHER_WORK && !tr->stopping && !tr->flushing && ms_mono_ns() < until)
                wait_until(&tr->not_empty, &tr->lock, until);
            tr->gathering = 0;
        }
        size_t n = tr->queued;
        if (n > cap) {
            ms_trace **nb = realloc(batch, n * sizeof *nb);
            if (nb) {
                batch = nb;
                cap = n;
            }
        }
        if (n > cap)
            n = cap;
        ms_trace *single = NULL, *t = tr->head;
        if (n == 0) { /* no memory for a batch array: write one at a time */
            single = t;
            n = 1;
        }
        size_t spans = 0;
        double work = 0;
        for (size_t i = 0; i < n; i++) {
            if (!single)
                batch[i] = t;
            spans += t->sampled_out ? 0 : t->nspans; /* the spans stored */
            work += trace_work(t);
            t = t->next;
        }
        tr->head = t;
        if (!t)
            tr->tail = NULL;
        tr->queued -= n;
        tr->queued_work = tr->queued ? tr->queued_work - work : 0;
        pthread_cond_broadcast(&tr->not_full);
        pthread_mutex_unlock(&tr->lock);

        ms_trace *const *items = single ? &single : batch;
        for (size_t i = 0; i < tr->nobservers; i++)
            tr->observers[i].fn(tr->observers[i].ud, items, n);
        int64_t t0 = ms_mono_ns();
        int ok = write_batch(tr, items, n);
        int64_t took = ms_mono_ns() - t0;

        pthread_mutex_lock(&tr->lock);
        if (ok) {
            tr->written_spans += spans;
            tr->dirty = 1;
            if (took > NS_PER_MS) { /* shorter batches measure the clock more than the disk */
                double speed = work / ((double)took / 1e9);
                tr->work_per_sec = 0.7 * tr->work_per_sec + 0.3 * speed;
            }
        } else {
            tr->failed += n;
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
    tr->work_per_sec = INITIAL_WORK_PER_SEC;
    tr->open.open_next = tr->open.open_prev = &tr->open;
    pthread_mutex_init(&tr->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* timed waits use ms_mono_ns */
    pthread_cond_init(&tr->not_empty, &ca);
    pthread_cond_init(&tr->not_full, NULL);
    pthread_cond_init(&tr->drained, &ca);
    pthread_condattr_destroy(&ca);
    /* The writer never takes SIGINT/SIGTERM: they are for the Lua thread,
     * and a writer interrupted in a syscall gains nothing. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&tr->writer, NULL, writer_main, tr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
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

void ms_tracer_set_notice(ms_tracer *tr, void (*notice)(const char *msg))
{
    pthread_mutex_lock(&tr->lock);
    tr->notice = notice;
    pthread_mutex_unlock(&tr->lock);
}

int ms_tracer_add_observer(ms_tracer *tr, void (*fn)(void *ud, ms_trace *const *traces, size_t n), void *ud)
{
    int rc = 0;
    pthread_mutex_lock(&tr->lock);
    if (tr->nobservers == MS_TRACER_OBSERVERS_MAX) {
        rc = ENOSPC;
    } else {
        tr->observers[tr->nobservers].fn = fn;
        tr->observers[tr->nobservers].ud = ud;
        tr->nobservers++;
    }
    pthread_mutex_unlock(&tr->lock);
    return rc;
}

size_t ms_tracer_queued(ms_tracer *tr)
{
    pthread_mutex_lock(&tr->lock);
    size_t n = tr->queued;
    pthread_mutex_unlock(&tr->lock);
    return n;
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
    pthread_mutex_lock(&tr->lock);
    t->uid = ++tr->last_uid;
    t->open_next = tr->open.open_next;
    t->open_prev = &tr->open;
    tr->open.open_next->open_prev = t;
    tr->open.open_next = t;
    pthread_mutex_unlock(&tr->lock);
    return t;
}

void ms_tracer_submit(ms_tracer *tr, ms_trace *t)
{
    double work = trace_work(t);
    pthread_mutex_lock(&tr->lock);
    open_unlink(t);
    while (tr->queued > 0 &&
           (tr->queued >= tr->queue_max || tr->queued_work + work > backlog_budget(tr)))
        pthread_cond_wait(&tr->not_full, &tr->lock);
    t->next = NULL;
    if (tr->tail)
        tr->tail->next = t;
    else
        tr->head = t;
    tr->tail = t;
    tr->queued++;
    tr->queued_work += work;
    tr->submitted++;
    if (!tr->gathering || tr->queued_work >= GATHER_WORK)
        pthread_cond_signal(&tr->not_empty);
    pthread_mutex_unlock(&tr->lock);
}

int ms_tracer_cut(ms_tracer *tr, ms_trace *t, int64_t now)
{
    ms_trace *part = ms_tracer_acquire(tr);
    if (!part)
        return ENOMEM;
    pthread_mutex_lock(&tr->lock);
    open_unlink(part); /* a part is never open: it is born ended */
    pthread_mutex_unlock(&tr->lock);
    int rc = ms_trace_cut(t, part, now);
    ms_tracer_submit(tr, part);
    return rc;
}

void ms_tracer_retain(ms_tracer *tr, ms_trace *t)
{
    (void)tr;
    atomic_fetch_add(&t->refs, 1);
}

void ms_tracer_release(ms_tracer *tr, ms_trace *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    atomic_store(&t->state, MS_TRACE_FREE);
    pthread_mutex_lock(&tr->lock);
    open_unlink(t); /* released without being submitted */
    t->next = tr->pool;
    tr->pool = t;
    pthread_mutex_unlock(&tr->lock);
}

int ms_tracer_cut_waiting(ms_tracer *tr, int64_t now, int64_t wait_ns)
{
    enum { BATCH = 64 };
    ms_trace *due[BATCH];
    int n = 0, cut = 0;
    do {
        /* gathered first: a cut takes a buffer, which edits the open list */
        n = 0;
        pthread_mutex_lock(&tr->lock);
        for (ms_trace *t = tr->open.open_next; t != &tr->open && n < BATCH; t = t->open_next)
            if (atomic_load(&t->state) == MS_TRACE_OPEN && now + wait_ns - t->last_cut >= MS_CUT_AGE_NS &&
                ms_trace_has_ended(t))
                due[n++] = t;
        pthread_mutex_unlock(&tr->lock);
        for (int i = 0; i < n; i++)
            if (ms_tracer_cut(tr, due[i], now) == 0)
                cut++;
    } while (n == BATCH); /* those cut now have last_cut == now: not gathered again */
    return cut;
}

ms_trace *ms_tracer_first_open(ms_tracer *tr)
{
    pthread_mutex_lock(&tr->lock);
    ms_trace *found = NULL;
    for (ms_trace *t = tr->open.open_next; t != &tr->open; t = t->open_next) {
        if (atomic_load(&t->state) == MS_TRACE_OPEN) {
            found = t;
            break;
        }
    }
    pthread_mutex_unlock(&tr->lock);
    return found;
}

size_t ms_tracer_flush(ms_tracer *tr, int64_t give_up_ns, const volatile int *cancel)
{
    pthread_mutex_lock(&tr->lock);
    size_t target = tr->submitted;
    if (give_up_ns > 0) {
        int64_t at = ms_mono_ns() + give_up_ns;
        if (!tr->give_up_at || at < tr->give_up_at)
            tr->give_up_at = at;
        pthread_cond_signal(&tr->not_empty); /* a writer waiting to retry sees the deadline */
    }
    tr->flushing++;
    pthread_cond_signal(&tr->not_empty); /* no gathering: someone waits */
    while (tr->done < target && !(cancel && *cancel))
        wait_until(&tr->drained, &tr->lock, ms_mono_ns() + 100 * NS_PER_MS);
    tr->flushing--;
    size_t left = tr->done < target ? target - tr->done : 0;
    if (give_up_ns > 0)
        tr->give_up_at = 0;
    pthread_mutex_unlock(&tr->lock);
    return left;
}

size_t ms_tracer_failed(ms_tracer *tr)
{
    pthread_mutex_lock(&tr->lock);
    size_t n = tr->failed;
    pthread_mutex_unlock(&tr->lock);
    return n;
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

size_t ms_tracer_close(ms_tracer *tr, int64_t give_up_ns)
{
    size_t failed = 0;
    ms_store_close(ms_tracer_detach(tr, give_up_ns, &failed));
    return failed;
}

ms_store *ms_tracer_detach(ms_tracer *tr, int64_t give_up_ns, size_t *failed_out)
{
    if (!tr)
        return NULL;
    ms_tracer_flush(tr, give_up_ns, NULL);
    pthread_mutex_lock(&tr->lock);
    tr->stopping = 1;
    tr->give_up_at = ms_mono_ns(); /* anything still failing now is given up */
    pthread_cond_signal(&tr->not_empty);
    pthread_mutex_unlock(&tr->lock);
    pthread_join(tr->writer, NULL);
    *failed_out = tr->failed;
    ms_store *store = tr->store;
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
    return store;
}
