/* ms_otlp — stored traces as OTLP: ExportTraceServiceRequest bodies in
 * protobuf or OTLP/JSON, in batches, for `moonspan export otlp`.
 *
 * Read-only. The traces to send are listed in one snapshot; their spans
 * are then read a batch at a time, each batch in a snapshot that ends
 * before the batch is handed to the sender, so a slow or hung receiver
 * never keeps a read transaction open (which would stop the WAL's
 * checkpoints and let it grow while writers go on). Ids, parents and
 * times exactly as stored, so a receiver draws the tree `moonspan show` draws. What a span
 * becomes (GenAI v1.41.0 attributes, Langfuse's and Phoenix's, folds,
 * sampled-out traces) is in the README's "OTLP export" section and in
 * ms_otlp_map.c. Sending is the caller's: this file knows no HTTP. */
#ifndef MS_OTLP_H
#define MS_OTLP_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_select.h"

/* A resource attribute (string valued), e.g. service.name. */
typedef struct ms_otlp_kv {
    const char *key;
    const char *value;
} ms_otlp_kv;

/* The three OTLP signals: which Export*ServiceRequest a body is. */
enum ms_otlp_signal { MS_OTLP_TRACES, MS_OTLP_METRICS, MS_OTLP_LOGS };

#define MS_OTLP_BATCH_SPANS 512           /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE's default */
#define MS_OTLP_BATCH_BYTES (4u << 20)    /* a request is cut before it grows past this */

typedef struct ms_otlp_opts {
    int json;                   /* OTLP/JSON; else protobuf */
    const ms_otlp_kv *resource; /* resource attributes, service.name among them */
    size_t nresource;
    size_t batch_spans;         /* spans (log records) per request at most; 0: MS_OTLP_BATCH_SPANS */
    int logs;                   /* the spans' log records (ms_otlp_logs.h), not the spans */
} ms_otlp_opts;

/* Receives each request body (not compressed) and the number of spans
 * (log records, with opts.logs) in it. Returns 0 to go on, non-zero to stop the export (ms_otlp_export
 * then returns 1). */
typedef int (*ms_otlp_send_fn)(void *ud, const ms_buf *body, int64_t nspans);

typedef struct ms_otlp_totals {
    int64_t traces, spans, requests;
    int64_t records;            /* log records, with opts.logs */
} ms_otlp_totals;

/* The rows of the traces an export sends, in the order it sends them. */
typedef struct ms_otlp_rows {
    int64_t *row;       /* traces.id */
    size_t n, cap;
} ms_otlp_rows;

/* Lists the traces `sel` picks, oldest first (start, then row), in the
 * caller's read transaction when it has one (so other reads of that
 * snapshot agree with the list), else in one of its own. Returns 0 with
 * *out (free it with ms_otlp_rows_free), or -1 with err. */
int ms_otlp_rows_select(sqlite3 *db, const ms_select *sel, ms_otlp_rows *out, char *err, size_t errlen);
void ms_otlp_rows_free(ms_otlp_rows *r);

/* Sends the traces of `rows` as ms_otlp_export does. Must be called
 * outside any transaction on db (asserted): each batch is read in its own
 * snapshot, ended before send is called. A row read in two snapshots
 * gives the same spans since a stored trace only grows (parts are
 * appended, its last blob written once). Returns as ms_otlp_export. */
int ms_otlp_export_rows(sqlite3 *db, const ms_otlp_rows *rows, const ms_otlp_opts *o, ms_otlp_send_fn send,
                        void *ud, ms_otlp_totals *tot, char *err, size_t errlen);

/* Encodes the traces `sel` picks (oldest first) and hands them to send in
 * requests of at most o->batch_spans spans (with o->logs: an
 * ExportLogsServiceRequest of as many log records, each span's end and
 * errors, ms_otlp_logs.h). A trace may span two
 * requests; every span is in exactly one. Fills *tot with what was
 * handed over. The list is ms_otlp_rows_select's, made before anything
 * is sent, so traces written meanwhile wait for the next export. Must be
 * called outside any transaction on db (ms_otlp_export_rows). Returns 0;
 * 1 when send stopped it; -1 with err (the store, a corrupt trace, out of
 * memory). */
int ms_otlp_export(sqlite3 *db, const ms_select *sel, const ms_otlp_opts *o,
                   ms_otlp_send_fn send, void *ud, ms_otlp_totals *tot, char *err, size_t errlen);

#endif
