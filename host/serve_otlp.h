/* serve_otlp — the OTLP/HTTP trace receiver of `moonspan serve --otlp`,
 * apart from any HTTP server: the server glue (cmd_serve.c) asks
 * ms_otlp_refuse once the headers are in, collects the body (at most
 * max_body bytes), and hands it to ms_otlp_handle; each gives a whole
 * reply. Statuses are the OpenTelemetry Collector's: 405 not POST, 404
 * another path, 415 another media type or encoding, 413 a body over the
 * limit (gzip counted inflated), 400 a malformed body, 503 when the store
 * could not be written (retryable), else 200 with an
 * ExportTraceServiceResponse in the request's encoding, partial_success
 * saying how many spans were rejected and why. A 200 is sent once the
 * spans are committed to the store. */
#ifndef MS_SERVE_OTLP_H
#define MS_SERVE_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_prices.h"
#include "ms_tracer.h"

#define MS_OTLP_PATH "/v1/traces"
/* The Collector's own default limit is 20 MiB of decoded body. */
#define MS_OTLP_MAX_BODY_DEFAULT (20u << 20)

typedef struct ms_otlp_receiver {
    ms_tracer *tracer;
    const ms_prices *prices;
    size_t max_body;           /* bytes, after inflating */
    uint64_t requests, spans, rejected, refused; /* refused: requests answered 4xx/5xx */
} ms_otlp_receiver;

typedef struct ms_http_reply {
    int status;
    const char *content_type;  /* static */
    const char *retry_after;   /* seconds, or NULL */
    ms_buf body;
} ms_http_reply;

/* After the headers: a reply (1) when the request is refused before its
 * body is read (wrong method, path, media type or encoding, or a declared
 * length over the limit), else 0. content_length is -1 when not given. */
int ms_otlp_refuse(ms_otlp_receiver *r, const char *method, const char *path, const char *content_type,
                   const char *content_encoding, int64_t content_length, ms_http_reply *out);

/* The whole request: body (as received, maybe gzip) and its headers.
 * `too_big` says the server stopped collecting past max_body. */
void ms_otlp_handle(ms_otlp_receiver *r, const char *content_type, const char *content_encoding,
                    const uint8_t *body, size_t len, int too_big, ms_http_reply *out);

#endif
