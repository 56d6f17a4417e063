/* otlp_live — `--export otlp[=URL]` on run and eval: the run's traces go
 * to an OTLP/HTTP receiver while the script runs, never in its way.
 *
 * The tracer's writer thread tells the exporter how many ended spans it
 * took (the observer only adds and signals; it never waits on the
 * network). A thread of its own, with its own read-only connection to the
 * store, wakes every OTEL_BSP_SCHEDULE_DELAY ms, or sooner once
 * OTEL_BSP_MAX_EXPORT_BATCH_SIZE ended spans are waiting, reads the run's
 * *committed*, ended traces past its watermark (rows it has not read, and
 * earlier rows it saw still being written in parts) in one snapshot,
 * encodes them with telemetry/ms_otlp.c (the one mapping, the same as
 * `moonspan export otlp`) and sends them with otlp_send.c (retries on
 * 429/502/503/504 after Retry-After, partial success logged).
 *
 * What the caller may assume:
 * - The script's thread never waits on the exporter: the exporter holds
 *   no lock the script or the writer needs while it reads or sends.
 * - Every span of the run is sent once (twice only when a read of the
 *   store failed: repeated rather than lost), or counted as not sent: at the
 *   end (ms_otlp_live_end) one stderr line says how many spans of how
 *   many traces were sent and, when some were not, how many, the last
 *   error, and the `moonspan export otlp URL --run ID` command that sends
 *   the run again from the store.
 * - The end waits at most OTEL_BSP_EXPORT_TIMEOUT ms (default 30000) for
 *   the last batches, a request in flight included.
 * - Export failures never change the run's exit status.
 *
 * Metrics and logs go along when OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER
 * name otlp: the log records of the same window as the traces, each wake;
 * the live registry (fed by the same observer) every
 * OTEL_METRIC_EXPORT_INTERVAL ms and once at the end. Each signal has its
 * own sender and exit line.
 *
 * One exporter per process. The configuration is otlp_config.c's, so every
 * OTEL_EXPORTER_OTLP_* variable means what it means for `moonspan export`. */
#ifndef MS_OTLP_LIVE_H
#define MS_OTLP_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "ms_tracer.h"

#define MS_LIVE_SCHEDULE_DELAY_MS 5000 /* OTEL_BSP_SCHEDULE_DELAY's default */
#define MS_LIVE_EXPORT_TIMEOUT_MS 30000 /* OTEL_BSP_EXPORT_TIMEOUT's default */
#define MS_LIVE_METRIC_INTERVAL_MS 60000 /* OTEL_METRIC_EXPORT_INTERVAL's default */

/* If argv[c->i] is --export otlp or --export otlp=URL, notes it in *o,
 * advances and returns 1; any other value is a usage error (exits 2). */
int ms_cli_export(ms_cli *c, ms_run_opts *o);
/* The lines of --help that describe it. */
extern const char MS_EXPORT_HELP[];

/* Before the host starts: decides whether this run exports (--export, or
 * OTEL_TRACES_EXPORTER=otlp when o->export_allowed; OTEL_TRACES_EXPORTER=
 * none and OTEL_SDK_DISABLED=true turn it off with a one-line notice when
 * it was asked for) and resolves the configuration. Returns 0 (on or
 * off), or -1 with err naming the bad value and the fix: a usage error. */
int ms_otlp_live_prepare(const ms_run_opts *o, const char *verb, char *err, size_t errlen);

/* Once the host has started: opens db_path read-only, adds the tracer's
 * observer and starts the exporter thread for run `run_id`. Does nothing
 * when prepare left export off. Returns 0, or -1 with err. */
int ms_otlp_live_start(ms_tracer *tr, const char *db_path, int64_t run_id, char *err, size_t errlen);

/* At the end of the run, once the writer has stopped and everything it
 * took is committed (lifecycle.c): the last export, bounded by the
 * deadline, then the one stderr line, then everything is freed. Safe to
 * call when export is off or never started. */
void ms_otlp_live_end(void);

/* From the second-signal watchdog, which leaves at once: one line saying
 * the export was cut short and how to send the run from the store (made
 * when the exporter started, so nothing it reads can be freed under it). */
void ms_otlp_live_abandon(void);

#endif
