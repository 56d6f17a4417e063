/* serve_otlp — the OTLP/HTTP trace receiver, one request at a time
 * (serve_otlp.h). Decoding is telemetry/'s (ms_otlp_in, ms_otlp_in_json);
 * this file speaks HTTP's part: media types, gzip, limits, replies. */
#include "serve_otlp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "ms_otlp_in.h"
#include "ms_otlp_in_json.h"
#include "ms_otlp_pb.h"

enum { FMT_NONE, FMT_PROTOBUF, FMT_JSON };
/* google.rpc.Code values the Collector uses in its error bodies */
enum { RPC_INVALID_ARGUMENT = 3, RPC_RESOURCE_EXHAUSTED = 8, RPC_UNIMPLEMENTED = 12, RPC_UNAVAILABLE = 14 };

/* How long a request waits for a store that fails to take its spans (a
 * full disk, an I/O error) before it is answered 503: well inside the
 * 10 s an OpenTelemetry exporter waits by default, so the client hears
 * "retry" rather than timing out. A lock held by another writer is waited
 * for as every writer waits (the store's busy timeout) before that. */
#define STORE_WAIT_NS (INT64_C(5) * 1000000000)
/* The Retry-After of a 503, in seconds: the OTLP specification has the
 * client wait that long before it sends the request again. */
#define RETRY_AFTER_S "5"

/* The media type without parameters, compared without case. */
static int format_of(const char *content_type)
{
    if (!content_type)
        return FMT_NONE;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    if (n == 22 && !strncasecmp(content_type, "application/x-protobuf", n))
        return FMT_PROTOBUF;
    if (n == 16 && !strncasecmp(content_type, "application/json", n))
        return FMT_JSON;
    return FMT_NONE;
}

/* 1 gzip, 0 none, -1 an encoding this receiver does not take */
static int gzip_of(const char *enc)
{
    if (!enc || !*enc || !strcasecmp(enc, "identity"))
        return 0;
    return !strcasecmp(enc, "gzip") ? 1 : -1;
}

/* A google.rpc.Status{code, message} in the request's encoding. */
static void error_reply(ms_otlp_receiver *r, ms_serve_reply *out, int status, int fmt, int code, const char *msg)
{
    r->refused++;
    out->status = status;
    ms_buf_reset(&out->body);
    if (fmt == FMT_PROTOBUF) {
        out->content_type = "application/x-protobuf";
        ms_pb_uint(&out->body, 1, (uint64_t)code); /* google.rpc.Status{code=1, message=2} */
        ms_pb_str(&out->body, 2, msg);
    } else {
        out->content_type = "application/json";
        ms_buf_printf(&out->body, "{\"code\":%d,\"message\":", code);
        ms_json_str(&out->body, msg, strlen(msg));
        ms_buf_addc(&out->body, '}');
    }
}

/* Inflates gzip `in` into out, at most `max` bytes. 0, 1 over max, -1 not gzip. */
static int gunzip(const uint8_t *in, size_t len, size_t max, ms_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return -1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    unsigned char chunk[16384];
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END)
            break;
        size_t got = sizeof chunk - z.avail_out;
        if (out->len + got > max) {
            inflateEnd(&z);
            return 1;
        }
        ms_buf_add(out, chunk, got);
    } while (rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
    inflateEnd(&z);
    /* the whole body must be one complete gzip stream */
    return rc == Z_STREAM_END && z.avail_in == 0 && !out->oom ? 0 : -1;
}

static ms_trace *sink_acquire(void *ud) { return ms_tracer_acquire(ud); }
static void sink_submit(void *ud, ms_trace *t) { ms_tracer_submit(ud, t); }

void ms_otlp_route(void *ud, const ms_serve_request *req, ms_serve_reply *out)
{
    ms_otlp_receiver *r = ud;
    const uint8_t *body = (const uint8_t *)req->body;
    size_t len = req->body_len;
    int fmt = format_of(req->content_type);
    char msg[512];
    r->requests++;
    if (fmt == FMT_NONE) {
        error_reply(r, out, 415, FMT_JSON, RPC_INVALID_ARGUMENT,
                    "unsupported Content-Type; send application/x-protobuf or application/json");
        return;
    }
    int gz = gzip_of(req->content_encoding);
    if (gz < 0) {
        error_reply(r, out, 415, fmt, RPC_INVALID_ARGUMENT, "unsupported Content-Encoding; send gzip or none");
        return;
    }
    ms_buf inflated = {0}, transcoded = {0};
    if (gz) {
        int g = gunzip(body, len, r->max_body, &inflated);
        if (g) {
            if (g > 0)
                snprintf(msg, sizeof msg, "the body inflates to over %zu bytes; send smaller batches or raise"
                                          " serve --max-body", r->max_body);
            error_reply(r, out, g > 0 ? 413 : 400, fmt, g > 0 ? RPC_RESOURCE_EXHAUSTED : RPC_INVALID_ARGUMENT,
                        g > 0 ? msg : "Content-Encoding is gzip but the body is not a complete gzip stream");
            ms_buf_free(&inflated);
            return;
        }
        body = (const uint8_t *)inflated.data;
        len = inflated.len;
    }
    if (fmt == FMT_JSON) {
        char err[256];
        if (ms_otlp_in_json_to_protobuf((const char *)body, len, &transcoded, err, sizeof err) != 0) {
            snprintf(msg, sizeof msg, "the body is not OTLP JSON: %s", err);
            error_reply(r, out, 400, fmt, RPC_INVALID_ARGUMENT, msg);
            ms_buf_free(&inflated);
            ms_buf_free(&transcoded);
            return;
        }
        body = (const uint8_t *)transcoded.data;
        len = transcoded.len;
    }
    size_t failed_before = ms_tracer_failed(r->tracer);
    ms_otlp_sink sink = {sink_acquire, sink_submit, r->tracer};
    ms_otlp_result res;
    int rc = ms_otlp_traces_ingest(body ? body : (const uint8_t *)"", len, r->prices, &sink, &res);
    ms_buf_free(&inflated);
    ms_buf_free(&transcoded);
    if (rc < 0) {
        snprintf(msg, sizeof msg, "the body is not an OTLP ExportTraceServiceRequest (%s); send one encoded as"
                                  " the Content-Type says", res.message);
        error_reply(r, out, 400, fmt, RPC_INVALID_ARGUMENT, msg);
        return;
    }
    /* a 200 promises the spans are stored: wait for the writer, and give
     * them up when the store keeps failing (the client sends them again) */
    ms_tracer_flush(r->tracer, STORE_WAIT_NS, NULL);
    if (rc == ENOMEM || ms_tracer_failed(r->tracer) > failed_before) {
        const char *why = rc == ENOMEM ? "out of memory" : ms_tracer_last_error(r->tracer);
        snprintf(msg, sizeof msg, "the spans could not be stored (%s); retry after %s s", why ? why : "write failed",
                 RETRY_AFTER_S);
        error_reply(r, out, 503, fmt, RPC_UNAVAILABLE, msg);
        ms_serve_reply_header(out, "Retry-After", RETRY_AFTER_S);
        return;
    }
    r->spans += res.spans;
    r->rejected += res.rejected;
    out->status = 200;
    ms_buf_reset(&out->body);
    if (fmt == FMT_PROTOBUF) {
        out->content_type = "application/x-protobuf";
        if (res.rejected) { /* ExportTraceServiceResponse{partial_success=1{rejected_spans=1, error_message=2}} */
            size_t part = ms_pb_begin(&out->body, 1);
            ms_pb_uint(&out->body, 1, res.rejected);
            ms_pb_str(&out->body, 2, res.message);
            ms_pb_end(&out->body, part);
        }
    } else {
        out->content_type = "application/json";
        if (res.rejected) {
            ms_buf_printf(&out->body, "{\"partialSuccess\":{\"rejectedSpans\":\"%llu\",\"errorMessage\":",
                          (unsigned long long)res.rejected);
            ms_json_str(&out->body, res.message, strlen(res.message));
            ms_buf_adds(&out->body, "}}");
        } else {
            ms_buf_adds(&out->body, "{}");
        }
    }
}
