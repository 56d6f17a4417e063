/* serve_otlp — the OTLP/HTTP trace receiver of `moonspan serve --otlp`:
 * the route POST /v1/traces of the host's HTTP server (serve.h), which
 * has read the body whole (at most max_body bytes, else 413) and answers
 * 404 for other paths and 405 for other methods, as the OpenTelemetry
 * Collector does. This route answers:
 * - 415 for another media type or Content-Encoding;
 * - 413 for a gzip body that inflates past max_body;
 * - 400 for a body that is not an ExportTraceServiceRequest;
 * - 503 with Retry-After when the store could not take the spans within
 *   a few seconds (a full disk, an I/O error: they are given up, for the
 *   client to send again) or memory ran out;
 * - else 200 with an ExportTraceServiceResponse in the request's encoding,
 *   its partial_success saying how many spans were rejected and why.
 * Errors carry a google.rpc.Status (code, message) in the request's
 * encoding (JSON when the media type is unknown). A 200 is sent once the
 * spans are committed to the store. */
#ifndef MS_SERVE_OTLP_H
#define MS_SERVE_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "ms_prices.h"
#include "ms_tracer.h"
#include "serve.h"

#define MS_OTLP_PATH "/v1/traces"
/* The Collector's own default limit: 20 MiB. */
#define MS_OTLP_MAX_BODY_DEFAULT (20u << 20)

typedef struct ms_otlp_receiver {
    ms_tracer *tracer;
    const ms_prices *prices;
    size_t max_body;           /* bytes, after inflating; the server's bound too */
    uint64_t requests, spans, rejected, refused; /* refused: requests this route answered 4xx/5xx */
} ms_otlp_receiver;

/* The route (an ms_serve_fn); ud is the receiver. Requests come one at a
 * time (serve.h), so the receiver needs no lock. */
void ms_otlp_route(void *ud, const ms_serve_request *req, ms_serve_reply *out);

#endif
