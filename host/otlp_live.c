/* otlp_live — live OTLP export during run and eval (otlp_live.h).
 *
 * Why read the store instead of encoding the writer's buffers: the store
 * is the one place a trace is whole (a long trace is written in parts),
 * ms_otlp.c's mapping then stays the only mapping, and what the exporter
 * could not send is exactly what `moonspan export otlp --run ID` sends
 * later. The cost is a read of rows just written, which SQLite's page
 * cache mostly serves. */
#include "otlp_live.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ms_buf.h"
#include "ms_clock.h"
#include "ms_metrics_trace.h"
#include "ms_otlp.h"
#include "ms_otlp_metrics.h"
#include "ms_read.h"
#include "ms_store.h"
#include "ms_text.h"
#include "otlp_config.h"
#include "otlp_send.h"

#define NS_PER_MS INT64_C(1000000)
#define MAX_MS 3600000L

/* The one exporter of this process. Fields under "thread" belong to the
 * exporter thread while it runs, and to ms_otlp_live_end after the join. */
static struct {
    int on;                     /* prepared: this run exports */
    _Atomic int started;        /* the thread runs (the watchdog reads it) */
    char abandon_line[1024];    /* made before the thread starts, never freed: the watchdog's */
    const char *verb;
    ms_otlp_config cfg;
    long delay_ms, timeout_ms, batch;
    char *db_path;
    int64_t run_id;

    pthread_t thread;
    pthread_mutex_t lock;       /* guards stopping and the wait; never held while reading or sending */
    pthread_cond_t wake;
    int stopping;
    _Atomic int64_t waiting;    /* ended spans the writer took since the last export */
    _Atomic int64_t deadline;   /* the end's deadline (ms_mono_ns), 0 until the end */

    /* thread */
    ms_store *store;
    ms_otlp_sender snd;
    int64_t watermark;          /* the highest row of the run read so far */
    int64_t *open_rows;         /* rows at or below it still being written in parts */
    size_t nopen;
    ms_otlp_totals tot;
    int64_t read_failures;      /* exports the store stopped (the error below) */
    char read_error[512];
    int announced;              /* the first failure was announced */

    /* metrics and logs, each when its OTEL_<SIGNAL>_EXPORTER names otlp */
    struct signal {
        int on;
        ms_otlp_config cfg;
        ms_otlp_sender snd;
        int64_t items, requests;    /* data points / log records handed to the sender */
        int64_t carried;            /* metrics: data points of failed requests that a later,
                                       delivered one carries (its totals are cumulative) */
    } metrics, logs;
    long metric_interval_ms, logs_batch;
    ms_metrics *registry;       /* fed by observe (the writer), read by the exporter thread */
    int64_t metrics_start_ns;   /* the cumulative series' start: the exporter's */
    int64_t logs_spans;         /* spans whose log records were made */
} live = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* --- the command line -------------------------------------------------------- */

const char MS_EXPORT_HELP[] =
    "  --export otlp[=URL]  send the run's traces to an OTLP/HTTP receiver while it\n"
    "                       runs, in batches from a background thread; URL as for\n"
    "                       `moonspan export otlp` (default: the OTEL_EXPORTER_OTLP_*\n"
    "                       variables). The exit line counts what was sent and says how\n"
    "                       to send the rest (README: OTLP export); metrics and logs too\n"
    "                       when OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER say otlp\n";

int ms_cli_export(ms_cli *c, ms_run_opts *o)
{
    const char *v;
    if (!ms_cli_value(c, "--export", &v))
        return 0;
    if (strcmp(v, "otlp") == 0) {
        o->export_url = NULL;
    } else if (strncmp(v, "otlp=", 5) == 0 && v[5]) {
        o->export_url = v + 5;
    } else if (strncmp(v, "otlp=", 5) == 0) {
        ms_cli_usage_error(c, "--export otlp= has no URL; give one (--export otlp=http://HOST:4318)"
                              " or none (--export otlp: the OTEL_EXPORTER_OTLP_* variables say where)");
    } else {
        ms_buf b = {0};
        ms_buf_add_text_max(&b, v, strlen(v), 80, 0);
        ms_cli_usage_error(c, "--export '%s' is not an exporter; the exporter is otlp:"
                              " --export otlp or --export otlp=URL", b.oom ? "?" : b.data);
    }
    o->export_asked = 1;
    return 1;
}

/* --- preparing ---------------------------------------------------------------- */

/* An OTEL_BSP_* number of milliseconds (or spans): the default when unset. */
static int env_long(const char *name, long min, long max, long def, long *out, char *err, size_t errlen)
{
    const char *v = ms_otlp_env(name);
    *out = def;
    if (v && ms_parse_long(v, min, max, out))
        return ms_errf(err, errlen, "%s='%s' is not a whole number from %ld to %ld; fix it or unset it"
                       " (default %ld)", name, v, min, max, def);
    return 0;
}

enum { EXPORTER_UNSET, EXPORTER_OTLP, EXPORTER_NONE };

/* OTEL_TRACES_EXPORTER: a comma-separated list; "none" wins, "otlp" asks
 * for export, the exporters moonspan does not have are named and ignored. */
static int traces_exporter(const char *verb)
{
    const char *v = ms_otlp_env("OTEL_TRACES_EXPORTER");
    if (!v)
        return EXPORTER_UNSET;
    int otlp, none, other;
    ms_otlp_exporter_names(MS_OTLP_TRACES, &otlp, &none, &other);
    if (other && !none) {
        ms_buf b = {0};
        ms_buf_add_text_max(&b, v, strlen(v), 80, 0);
        fprintf(stderr, "moonspan %s: OTEL_TRACES_EXPORTER='%s': moonspan exports otlp only;"
                        " the other exporters named are ignored\n", verb, b.oom ? "?" : b.data);
        ms_buf_free(&b);
    }
    return none ? EXPORTER_NONE : otlp ? EXPORTER_OTLP : EXPORTER_UNSET;
}

/* Metrics or logs go along when OTEL_<SIGNAL>_EXPORTER names otlp: a
 * receiver of traces only (Jaeger, Tempo, Phoenix, Langfuse) would answer
 * 404 to the others. The URL of --export, when given, is their base too. */
static int prepare_signal(struct signal *sg, enum ms_otlp_signal which, const ms_otlp_flags *f, char *err,
                          size_t errlen)
{
    sg->on = 0;
    if (!ms_otlp_signal_asked(which))
        return 0;
    const char *upper = which == MS_OTLP_METRICS ? "METRICS" : "LOGS";
    char var[48];
    snprintf(var, sizeof var, "OTEL_EXPORTER_OTLP_%s_ENDPOINT", upper);
    /* --export's full traces URL says nothing of this signal: its own
     * endpoint variable, when set, says where it goes */
    ms_otlp_flags own = *f;
    if (own.url && ms_otlp_url_is_signal(own.url, MS_OTLP_TRACES) && ms_otlp_env(var))
        own.url = NULL;
    char why[768];
    if (ms_otlp_config_resolve_signal(&sg->cfg, &own, which, why, sizeof why))
        return ms_errf(err, errlen, "OTEL_%s_EXPORTER=otlp: %s%s%s", upper, why,
                       own.url && ms_otlp_url_is_signal(own.url, MS_OTLP_TRACES) ? " with " : "",
                       own.url && ms_otlp_url_is_signal(own.url, MS_OTLP_TRACES) ? var : "");
    sg->on = 1;
    return 0;
}

static void free_signals(void)
{
    struct signal *all[] = {&live.metrics, &live.logs};
    for (int i = 0; i < 2; i++) {
        if (all[i]->snd.curl)
            ms_otlp_sender_free(&all[i]->snd);
        if (all[i]->on)
            ms_otlp_config_free(&all[i]->cfg);
        all[i]->on = 0;
    }
    ms_metrics_free(live.registry);
    live.registry = NULL;
}

int ms_otlp_live_prepare(const ms_run_opts *o, const char *verb, char *err, size_t errlen)
{
    live.on = 0;
    live.verb = verb;
    if (!o->export_allowed)
        return 0;
    int from_env = traces_exporter(verb);
    if (from_env == EXPORTER_NONE) {
        if (o->export_asked)
            fprintf(stderr, "moonspan %s: OTEL_TRACES_EXPORTER=none turns --export off; unset it to export\n",
                    verb);
        return 0;
    }
    if (!o->export_asked && from_env != EXPORTER_OTLP)
        return 0;
    const char *asked = o->export_asked ? "--export" : "OTEL_TRACES_EXPORTER=otlp";
    const char *dis = ms_otlp_env("OTEL_SDK_DISABLED");
    if (dis && strcasecmp(dis, "true") == 0) {
        fprintf(stderr, "moonspan %s: OTEL_SDK_DISABLED=true turns OpenTelemetry export off (%s);"
                        " unset it to export\n", verb, asked);
        return 0;
    }
    if (env_long("OTEL_BSP_SCHEDULE_DELAY", 1, MAX_MS, MS_LIVE_SCHEDULE_DELAY_MS, &live.delay_ms, err, errlen) ||
        env_long("OTEL_BSP_EXPORT_TIMEOUT", 1, MAX_MS, MS_LIVE_EXPORT_TIMEOUT_MS, &live.timeout_ms, err, errlen) ||
        env_long("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, 100000, MS_OTLP_BATCH_SPANS, &live.batch, err, errlen))
        return -1;
    ms_otlp_flags f = {.url = o->export_url};
    char why[768];
    if (ms_otlp_config_resolve(&live.cfg, &f, why, sizeof why))
        return ms_errf(err, errlen, "%s: %s", asked, why);
    live.on = 1;
    if (prepare_signal(&live.metrics, MS_OTLP_METRICS, &f, err, errlen) ||
        prepare_signal(&live.logs, MS_OTLP_LOGS, &f, err, errlen) ||
        env_long("OTEL_METRIC_EXPORT_INTERVAL", 1, MAX_MS, MS_LIVE_METRIC_INTERVAL_MS, &live.metric_interval_ms,
                 err, errlen) ||
        env_long("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 1, 100000, MS_OTLP_BATCH_SPANS, &live.logs_batch, err, errlen)) {
        free_signals();
        ms_otlp_config_free(&live.cfg);
        live.on = 0;
        return -1;
    }
    return 0;
}

/* --- the exporter thread ----------------------------------------------------- */

/* The tracer's observer, on the writer thread: counts the spans of the
 * traces that ended and wakes the exporter once a batch is waiting. The
 * lock it takes is held by the exporter only around its wait. */
static void observe(void *ud, ms_trace *const *traces, size_t n)
{
    (void)ud;
    if (live.registry)
        ms_metrics_observe_traces(live.registry, traces, n);
    int64_t spans = 0;
    for (size_t i = 0; i < n; i++)
        if (traces[i]->part != MS_PART_CUT)
            spans += traces[i]->sampled_out ? 1 : (int64_t)traces[i]->nspans;
    if (!spans)
        return;
    if (atomic_fetch_add(&live.waiting, spans) + spans >= live.batch) {
        pthread_mutex_lock(&live.lock);
        pthread_cond_signal(&live.wake);
        pthread_mutex_unlock(&live.lock);
    }
}

static void note_read_error(const char *err)
{
    live.read_failures++;
    snprintf(live.read_error, sizeof live.read_error, "%s", err);
}

/* The rows of the window still being written in parts, for the next
 * export to look at again. 0, or -1 with err. */
static int collect_open_rows(sqlite3 *db, const ms_select *window, char *err, size_t errlen)
{
    ms_buf sql = {0};
    ms_buf_adds(&sql, "SELECT t.id FROM traces t");
    sqlite3_stmt *st;
    /* the window always has run_id, so a WHERE clause comes first */
    if (ms_select_prepare(db, window, &sql, " AND t.spans IS NULL AND t.parts > 0 ORDER BY t.id", &st, err,
                          errlen))
        return -1;
    if (ms_select_bind(db, st, window, err, errlen)) {
        sqlite3_finalize(st);
        return -1;
    }
    int64_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            int64_t *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) {
                free(rows);
                sqlite3_finalize(st);
                return ms_errf(err, errlen, "out of memory");
            }
            rows = nr;
            cap = ncap;
        }
        rows[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(rows);
        return ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
    }
    free(live.open_rows);
    live.open_rows = rows;
    live.nopen = n;
    return 0;
}

/* The highest row of the run in this snapshot (0: none). -1 with err. */
static int64_t top_row(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT coalesce(max(id), 0) FROM traces WHERE run_id = ?1", &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, live.run_id);
    int64_t top = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (top < 0)
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return top;
}

/* Sends what ended since the last export: the rows past the watermark
 * and the open rows that have since ended. Which rows those are, and
 * which are still open, is read in one snapshot; their spans are then
 * read a batch at a time with no read transaction open while a request
 * is in flight (ms_otlp_export_rows), so a hung receiver never stops the
 * WAL's checkpoints. The last export (final) also sends a row still
 * open, as `export --run` would: after the writer stopped, nothing of
 * the run is left to come. */
static void export_once(int final)
{
    sqlite3 *db = ms_store_db(live.store);
    char err[512];
    int own;
    if (ms_read_begin(db, &own, err, sizeof err)) {
        note_read_error(err);
        return;
    }
    ms_otlp_rows rows = {0};
    int listed = 0, advance = 0;
    int64_t top = top_row(db, err, sizeof err);
    if (top < 0) {
        note_read_error(err);
    } else if (top > live.watermark || live.nopen) {
        ms_select window = {.run_id = live.run_id, .after_row = live.watermark, .also_rows = live.open_rows,
                            .nalso_rows = live.nopen, .ended_only = !final};
        if (ms_otlp_rows_select(db, &window, &rows, err, sizeof err)) {
            note_read_error(err); /* the watermark stays: the window is read again next time */
        } else {
            listed = 1;
            /* what is open now is looked at again next time. Without that
             * list the watermark stays: this window is read again, and sent
             * twice rather than a row still open forgotten. */
            window.ended_only = 0;
            if (!final && collect_open_rows(db, &window, err, sizeof err))
                note_read_error(err);
            else
                advance = 1;
        }
    }
    ms_read_end(db, own, NULL, 0);
    if (listed) {
        ms_otlp_opts o = {.json = live.cfg.json, .resource = live.cfg.resource, .nresource = live.cfg.nresource,
                          .batch_spans = (size_t)live.batch};
        ms_otlp_totals t;
        int rc = ms_otlp_export_rows(db, &rows, &o, ms_otlp_sender_send, &live.snd, &t, err, sizeof err);
        live.tot.traces += t.traces;
        live.tot.spans += t.spans;
        live.tot.requests += t.requests;
        if (rc < 0)
            note_read_error(err);
        if (live.logs.on) { /* the same rows: each span's records once */
            ms_otlp_opts lo = {.json = live.logs.cfg.json, .resource = live.logs.cfg.resource,
                               .nresource = live.logs.cfg.nresource, .batch_spans = (size_t)live.logs_batch,
                               .logs = 1};
            rc = ms_otlp_export_rows(db, &rows, &lo, ms_otlp_sender_send, &live.logs.snd, &t, err, sizeof err);
            live.logs.items += t.records;
            live.logs.requests += t.requests;
            live.logs_spans += t.spans;
            if (rc < 0)
                note_read_error(err);
        }
        if (advance)
            live.watermark = top;
    }
    ms_otlp_rows_free(&rows);
    /* once the end has begun, its own line says it all */
    if (!final && !atomic_load(&live.deadline) && !live.announced &&
        (live.snd.failed || live.logs.snd.failed || live.metrics.snd.failed || live.read_failures)) {
        live.announced = 1;
        fprintf(stderr, "moonspan %s: live export: %s; the script goes on, and what is not sent is counted"
                        " at exit and stays in the store\n", live.verb,
                live.snd.failed ? live.snd.last_error : live.logs.snd.failed ? live.logs.snd.last_error
                : live.metrics.snd.failed ? live.metrics.snd.last_error : live.read_error);
    }
}

/* The run's metrics so far, cumulative since the exporter started, in one
 * request (the registry is bounded). */
static void export_metrics(void)
{
    ms_otlp_metrics_opts o = {.json = live.metrics.cfg.json, .resource = live.metrics.cfg.resource,
                              .nresource = live.metrics.cfg.nresource, .start_ns = live.metrics_start_ns,
                              .time_ns = ms_epoch_ns()};
    ms_buf body = {0};
    int64_t points = 0;
    if (ms_otlp_metrics_encode(live.registry, &o, &body, &points)) {
        note_read_error("out of memory encoding the metrics");
    } else if (points) {
        const ms_otlp_sender *s = &live.metrics.snd;
        int64_t lost_before = s->failed + s->rejected;
        ms_otlp_sender_send(&live.metrics.snd, &body, points);
        live.metrics.items += points;
        live.metrics.requests++;
        if (s->failed + s->rejected == lost_before) /* delivered whole: what failed before is in it */
            live.metrics.carried = lost_before;
    }
    ms_buf_free(&body);
}

/* Waits for the schedule, a full batch, the metrics' interval or the end;
 * exports the traces (and their log records) on each wake, the metrics
 * when their interval has passed, and everything once more at the end. */
static void *exporter_main(void *arg)
{
    (void)arg;
    /* The script and the writer come first: on a busy machine the export
     * takes the CPU they leave (Linux's nice value is per thread). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    int64_t metrics_at = ms_mono_ns() + live.metric_interval_ms * NS_PER_MS;
    pthread_mutex_lock(&live.lock);
    while (!live.stopping) {
        int64_t wake_at = ms_mono_ns() + live.delay_ms * NS_PER_MS;
        if (live.metrics.on && metrics_at < wake_at)
            wake_at = metrics_at;
        while (!live.stopping && atomic_load(&live.waiting) < live.batch && ms_mono_ns() < wake_at) {
            struct timespec ts = {(time_t)(wake_at / 1000000000), (long)(wake_at % 1000000000)};
            pthread_cond_timedwait(&live.wake, &live.lock, &ts);
        }
        if (live.stopping)
            break;
        int full = atomic_load(&live.waiting) >= live.batch;
        pthread_mutex_unlock(&live.lock);
        if (full) {
            /* the observer runs before the writer commits; its window
             * (ms_tracer.h) is how long that takes while the disk keeps up */
            struct timespec settle = {0, MS_TRACER_WINDOW_MS * NS_PER_MS};
            nanosleep(&settle, NULL);
        }
        atomic_store(&live.waiting, 0);
        export_once(0);
        if (live.metrics.on && ms_mono_ns() >= metrics_at) { /* OTEL_METRIC_EXPORT_INTERVAL */
            export_metrics();
            metrics_at = ms_mono_ns() + live.metric_interval_ms * NS_PER_MS;
        }
        pthread_mutex_lock(&live.lock);
    }
    pthread_mutex_unlock(&live.lock);
    export_once(1);
    if (live.metrics.on) /* and once at the end, with every trace of the run in it */
        export_metrics();
    return NULL;
}

static void resend_command(ms_buf *b, const char *url, const char *signal);

/* The second signal's line, made while nothing else runs, so the watchdog
 * only writes it (the rest of the exporter may be freed under it). */
static void abandon_line_make(void)
{
    char url[512];
    ms_otlp_url_for_people(live.cfg.url, url, sizeof url);
    ms_buf b = {0};
    ms_buf_printf(&b, "moonspan %s: the live export was cut short; the run's traces are in the store: ", live.verb);
    resend_command(&b, url, "traces");
    ms_buf_adds(&b, " sends them\n");
    snprintf(live.abandon_line, sizeof live.abandon_line, "%s", b.oom ? "" : b.data);
    ms_buf_free(&b);
}

int ms_otlp_live_start(ms_tracer *tr, const char *db_path, int64_t run_id, char *err, size_t errlen)
{
    if (!live.on)
        return 0;
    live.run_id = run_id;
    if (!(live.db_path = strdup(db_path)))
        return ms_errf(err, errlen, "out of memory");
    if (ms_store_open(db_path, MS_STORE_READ, &live.store, err, errlen))
        return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ms_errf(err, errlen, "cannot start libcurl");
    if (ms_otlp_sender_init(&live.snd, &live.cfg, live.verb, err, errlen)) {
        curl_global_cleanup();
        return -1;
    }
    live.snd.deadline = &live.deadline;
    live.snd.quiet = 1; /* one notice, then the exit line: not a line per failed batch */
    struct signal *more[] = {&live.metrics, &live.logs};
    for (int i = 0; i < 2; i++) {
        if (!more[i]->on)
            continue;
        if (ms_otlp_sender_init(&more[i]->snd, &more[i]->cfg, live.verb, err, errlen))
            return -1;
        more[i]->snd.deadline = &live.deadline;
        more[i]->snd.quiet = 1;
    }
    if (live.metrics.on && !(live.registry = ms_metrics_new()))
        return ms_errf(err, errlen, "out of memory");
    ms_clock_init();
    live.metrics_start_ns = ms_epoch_ns();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* waits use ms_mono_ns */
    pthread_cond_init(&live.wake, &ca);
    pthread_condattr_destroy(&ca);
    if (ms_tracer_add_observer(tr, observe, NULL))
        return ms_errf(err, errlen, "too many observers of the writer (at most %d)", MS_TRACER_OBSERVERS_MAX);
    /* signals are the Lua thread's (lifecycle.c) */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&live.thread, NULL, exporter_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return ms_errf(err, errlen, "cannot start the export thread");
    abandon_line_make();
    atomic_store(&live.started, 1);
    return 0;
}

/* --- the end ------------------------------------------------------------------ */

/* Appends s as one POSIX shell word: as it is when it needs no quotes,
 * else in single quotes ('it'\''s'); escaped as every store text is. */
static void add_shell_word(ms_buf *b, const char *s)
{
    if (!s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+:,@%")]) {
        ms_buf_adds(b, s);
        return;
    }
    ms_buf q = {0};
    ms_buf_addc(&q, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            ms_buf_adds(&q, "'\\''");
        else
            ms_buf_addc(&q, *p);
    }
    ms_buf_addc(&q, '\'');
    if (q.oom)
        b->oom = 1;
    else
        ms_buf_add_texts(b, q.data, 0);
    ms_buf_free(&q);
}

/* Appends the command that sends the run again, with its store and, when
 * it is one `export` takes as it is, the endpoint (else the same OTEL_*
 * variables give it); each quoted for a POSIX shell when it needs it. */
static void resend_command(ms_buf *b, const char *url, const char *signal)
{
    ms_buf_adds(b, "`moonspan export otlp ");
    char path[16];
    snprintf(path, sizeof path, "/v1/%s", signal);
    size_t n = strlen(url), k = strlen(path);
    if (n >= k && strcmp(url + n - k, path) == 0) {
        add_shell_word(b, url);
        ms_buf_addc(b, ' ');
    }
    if (strcmp(signal, "traces") != 0)
        ms_buf_printf(b, "--signals %s ", signal);
    ms_buf_printf(b, "--run %lld --db ", (long long)live.run_id);
    add_shell_word(b, live.db_path);
    ms_buf_addc(b, '`');
}

/* The exit line: what was sent and, when anything was not, why and how to
 * send it. Built whole, escaped (store paths and receiver answers are
 * text from outside), written once. */
static void exit_line(void)
{
    char url[512];
    ms_otlp_url_for_people(live.cfg.url, url, sizeof url);
    ms_buf b = {0};
    const ms_otlp_sender *s = &live.snd;
    int64_t lost = s->failed + s->rejected;
    ms_buf_printf(&b, "moonspan %s: exported %lld of %lld span%s (%lld trace%s) to %s (%s%s) in %lld request%s",
                  live.verb, (long long)s->sent, (long long)live.tot.spans, live.tot.spans == 1 ? "" : "s",
                  (long long)live.tot.traces, live.tot.traces == 1 ? "" : "s", url,
                  live.cfg.json ? "http/json" : "http/protobuf", live.cfg.gzip ? ", gzip" : "",
                  (long long)live.tot.requests, live.tot.requests == 1 ? "" : "s");
    if (s->retries)
        ms_buf_printf(&b, ", %lld retr%s", (long long)s->retries, s->retries == 1 ? "y" : "ies");
    if (lost || live.read_failures) {
        ms_buf_adds(&b, "; ");
        if (lost) {
            ms_buf_printf(&b, "%lld not sent (", (long long)lost);
            if (s->rejected)
                ms_buf_printf(&b, "%lld rejected by the receiver%s", (long long)s->rejected,
                              s->failed ? ", " : "");
            if (s->failed) {
                ms_buf_adds(&b, "last error: ");
                ms_buf_add_text_max(&b, s->last_error, strlen(s->last_error), 300, 0);
            }
            ms_buf_adds(&b, ")");
        }
        if (live.read_failures) {
            ms_buf_printf(&b, "%sthe store could not be read %lld time%s (", lost ? " and " : "",
                          (long long)live.read_failures, live.read_failures == 1 ? "" : "s");
            ms_buf_add_text_max(&b, live.read_error, strlen(live.read_error), 300, 0);
            ms_buf_adds(&b, ")");
        }
        ms_buf_adds(&b, "; the run's traces are in the store: ");
        resend_command(&b, url, "traces");
        ms_buf_adds(&b, " sends them again");
    }
    ms_buf_addc(&b, '\n');
    if (!b.oom)
        fputs(b.data, stderr);
    ms_buf_free(&b);
}

/* The exit line of metrics or logs: what was sent, and what was not with
 * the command that sends it from the store. */
static void signal_line(const struct signal *sg, const char *signal, const char *what)
{
    char url[512];
    ms_otlp_url_for_people(sg->cfg.url, url, sizeof url);
    const ms_otlp_sender *s = &sg->snd;
    int64_t lost = s->failed + s->rejected - sg->carried;
    ms_buf b = {0};
    ms_buf_printf(&b, "moonspan %s: exported %lld of %lld %s to %s (%s%s) in %lld request%s", live.verb,
                  (long long)s->sent, (long long)sg->items, what, url, sg->cfg.json ? "http/json" : "http/protobuf",
                  sg->cfg.gzip ? ", gzip" : "", (long long)sg->requests, sg->requests == 1 ? "" : "s");
    if (s->retries)
        ms_buf_printf(&b, ", %lld retr%s", (long long)s->retries, s->retries == 1 ? "y" : "ies");
    if (sg->carried)
        ms_buf_printf(&b, "; the %lld %s of failed requests are in a later request's cumulative totals",
                      (long long)sg->carried, what);
    if (lost) {
        ms_buf_printf(&b, "; %lld not sent (", (long long)lost);
        if (s->rejected)
            ms_buf_printf(&b, "%lld rejected by the receiver%s", (long long)s->rejected, s->failed ? ", " : "");
        if (s->failed) {
            ms_buf_adds(&b, "last error: ");
            ms_buf_add_text_max(&b, s->last_error, strlen(s->last_error), 300, 0);
        }
        ms_buf_printf(&b, "); the store has the run's traces: ");
        resend_command(&b, url, signal);
        ms_buf_adds(&b, " sends them again");
    }
    ms_buf_addc(&b, '\n');
    if (!b.oom)
        fputs(b.data, stderr);
    ms_buf_free(&b);
}

void ms_otlp_live_end(void)
{
    if (atomic_load(&live.started)) {
        atomic_store(&live.deadline, ms_mono_ns() + live.timeout_ms * NS_PER_MS);
        pthread_mutex_lock(&live.lock);
        live.stopping = 1;
        pthread_cond_signal(&live.wake);
        pthread_mutex_unlock(&live.lock);
        pthread_join(live.thread, NULL); /* the deadline bounds the last export, a request in flight too */
        atomic_store(&live.started, 0);
        exit_line();
        if (live.logs.on)
            signal_line(&live.logs, "logs", "log records");
        if (live.metrics.on)
            signal_line(&live.metrics, "metrics", "data points");
        pthread_cond_destroy(&live.wake);
    }
    free_signals(); /* their curl handles before the global cleanup */
    if (live.snd.curl) {
        ms_otlp_sender_free(&live.snd);
        curl_global_cleanup();
    }
    ms_store_close(live.store);
    live.store = NULL;
    free(live.open_rows);
    live.open_rows = NULL;
    live.nopen = 0;
    free(live.db_path);
    live.db_path = NULL;
    if (live.on)
        ms_otlp_config_free(&live.cfg);
    live.on = 0;
}

void ms_otlp_live_abandon(void)
{
    if (atomic_load(&live.started))
        fputs(live.abandon_line, stderr);
}
