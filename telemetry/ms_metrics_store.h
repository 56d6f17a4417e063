/* ms_metrics_store — the store's feeder of the Prometheus registry
 * (ms_metrics.h), for `moonspan serve --metrics`.
 *
 * Incremental: each update reads only the traces written since the last
 * one (rows in id order after the last seen), plus the rows it saw still
 * open (a trace written in parts) until they end, so a scrape costs what
 * was written since the previous scrape, not the size of the store. The
 * first update reads the whole store once.
 *
 * The store's readers open only the current schema (ms_store refuses an
 * older one with the upgrade to run); should that change, a store older
 * than v4 (spans in a table, not packed) gives the request families only. */
#ifndef MS_METRICS_STORE_H
#define MS_METRICS_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_metrics.h"

typedef struct ms_metrics_store ms_metrics_store;

/* A feeder of registry m from connection db (read-only is enough; both
 * stay the caller's). Returns 0, or -1 with err. */
int ms_metrics_store_open(sqlite3 *db, ms_metrics *m, ms_metrics_store **out, char *err, size_t errlen);
void ms_metrics_store_close(ms_metrics_store *ms);

/* Adds to the registry what was written since the last call, in one read
 * snapshot. Returns 0, or -1 with err (the registry then holds what was
 * read before the failure; the next call goes on from there). */
int ms_metrics_store_update(ms_metrics_store *ms, char *err, size_t errlen);

/* The registry of the finished traces `sel` picks, at once (for `moonspan
 * export otlp --signals metrics`): what `serve --metrics` would show for a
 * store holding those traces only. Sets *rows to the traces read and
 * *first_ns to the earliest start among them (epoch ns; 0 when none).
 * One read snapshot. Returns 0, or -1 with err. */
struct ms_select;
int ms_metrics_store_select(sqlite3 *db, const struct ms_select *sel, ms_metrics *m, uint64_t *rows,
                            int64_t *first_ns, char *err, size_t errlen);

/* Rows read so far (traces), for the measurements. */
uint64_t ms_metrics_store_rows(const ms_metrics_store *ms);

#endif
