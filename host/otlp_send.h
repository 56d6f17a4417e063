/* otlp_send — POSTs OTLP request bodies to a receiver over libcurl, with
 * the OTLP/HTTP rules for what happens next:
 *
 *   2xx              sent; a partial_success in the answer (protobuf or
 *                    JSON) counts its rejected spans and is logged, never
 *                    retried
 *   429 502 503 504  retried, after Retry-After (seconds or an HTTP date,
 *   or no connection up to MS_OTLP_MAX_RETRY_AFTER_MS) or else an exponential
 *                    backoff with jitter, MS_OTLP_ATTEMPTS attempts in all
 *   anything else    failed, logged with the answer's first line
 *
 * Nothing is lost silently: every span (data point, log record: the
 * config's signal) handed over ends in exactly one of sent, rejected or
 * failed, and the caller reports the three. Messages go
 * to stderr, escaped; header values are never printed. */
#ifndef MS_OTLP_SEND_H
#define MS_OTLP_SEND_H

#include <stdatomic.h>
#include <stdint.h>

#include "ms_buf.h"
#include "otlp_config.h"

#define MS_OTLP_ATTEMPTS 5
#define MS_OTLP_BACKOFF_MS 250             /* first wait; doubles, jittered */
#define MS_OTLP_MAX_BACKOFF_MS 8000
#define MS_OTLP_MAX_RETRY_AFTER_MS 60000   /* a longer Retry-After waits this long */

typedef struct ms_otlp_sender {
    const ms_otlp_config *cfg;
    void *curl;                 /* CURL *, reused: one connection for the batches */
    void *headers;              /* struct curl_slist * */
    ms_buf gz, answer, answer_headers;
    int64_t sent, rejected, failed, retries;
    int down;                   /* a batch failed without an answer: later ones try once */
    const char *verb;           /* for messages: "export" */
    /* Set by the caller after init, for the live exporter (otlp_live.h): */
    const _Atomic int64_t *deadline; /* when it holds a monotonic time > 0 (ms_mono_ns):
                                   no attempt starts after it, a wait ends at it and a
                                   request still running is cut there (within about a
                                   second); what is left counts as failed */
    int quiet;                  /* failures are not logged, only kept in last_error;
                                   a partial success is logged the first time only */
    int partial_said;           /* a partial success was logged */
    char last_error[256];       /* why the last batch failed ("" when none has) */
} ms_otlp_sender;

/* Prepares a sender for cfg (which must outlive it). 0, or -1 with err. */
int ms_otlp_sender_init(ms_otlp_sender *s, const ms_otlp_config *cfg, const char *verb,
                        char *err, size_t errlen);
void ms_otlp_sender_free(ms_otlp_sender *s);

/* An ms_otlp_send_fn (ud is the sender): sends one body of n spans and
 * counts them. Always returns 0 (the export goes on; failures are counted). */
int ms_otlp_sender_send(void *ud, const ms_buf *body, int64_t n);

#endif
