/* fuzz_otlp — the OTLP trace receiver's decoders (telemetry/ms_otlp_in.c,
 * telemetry/ms_otlp_in_json.c): what `moonspan serve --otlp` does with a body
 * from the network, without the HTTP around it.
 *
 * The first byte picks the encoding: even, the rest is a protobuf
 * ExportTraceServiceRequest; odd, it is OTLP/JSON, transcoded to protobuf
 * first. Either way: an error or traces, never a crash; a body refused
 * as malformed submits nothing; the spans stored plus those rejected are
 * the spans read; every trace handed over is ended, has its root first
 * and parents before children, and encodes into a packed blob that
 * decodes back to the same number of spans. */
#include <errno.h>

#include "fuzz.h"
#include "ms_otlp_in.h"
#include "ms_otlp_in_json.h"
#include "ms_pack.h"

static ms_trace trace_buf;
static ms_pack_encoder *enc;
static ms_buf blob;
static uint64_t submitted, spans_seen;

static ms_trace *acquire(void *ud)
{
    (void)ud;
    return &trace_buf;
}

static void submit(void *ud, ms_trace *t)
{
    (void)ud;
    submitted++;
    FUZZ_CHECK(atomic_load(&t->state) == MS_TRACE_ENDED, "a trace handed over open");
    for (uint32_t i = 1; i < t->nspans; i++)
        FUZZ_CHECK(t->spans[i].parent < t->spans[i].gidx, "span %u before its parent", i);
    if (t->nspans) {
        FUZZ_CHECK(t->spans[0].parent == MS_NONE, "the first span is not a root");
        ms_buf_reset(&blob);
        long n = ms_pack_encode(enc, t, &blob);
        FUZZ_CHECK(n == (long)t->nspans, "encoded %ld of %u spans", n, t->nspans);
        ms_pack_reader r = {0};
        ms_span_rec sp;
        uint32_t back = 0;
        int rc = ms_pack_open(&r, (const uint8_t *)blob.data, blob.len, 1);
        if (rc == 0)
            while ((rc = ms_pack_next(&r, &sp)) == 1)
                back++;
        ms_pack_reader_free(&r);
        FUZZ_CHECK(rc == 0 && back == t->nspans, "decoded %u of %u spans (rc %d)", back, t->nspans, rc);
        spans_seen += t->nspans;
    }
    ms_trace_reset(&trace_buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!enc && !(enc = ms_pack_encoder_new()))
        abort();
    ms_buf pbody = {0};
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        char err[256];
        if (ms_otlp_in_json_to_protobuf((const char *)body, len, &pbody, err, sizeof err) != 0) {
            FUZZ_CHECK(err[0], "a JSON error without a reason");
            ms_buf_free(&pbody);
            return 0;
        }
        body = (const uint8_t *)pbody.data;
        len = pbody.len;
    }
    ms_otlp_sink sink = {acquire, submit, NULL};
    ms_otlp_result res;
    submitted = spans_seen = 0;
    int rc = ms_otlp_traces_ingest(body ? body : (const uint8_t *)"", len, NULL, &sink, &res);
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == ENOMEM, "rc %d", rc);
    if (rc == -1)
        FUZZ_CHECK(submitted == 0 && res.message[0], "a malformed body submitted %llu traces, or no reason",
                   (unsigned long long)submitted);
    if (rc == 0) {
        FUZZ_CHECK(res.traces == submitted && res.spans == spans_seen, "counted %llu traces / %llu spans, handed"
                   " over %llu / %llu", (unsigned long long)res.traces, (unsigned long long)res.spans,
                   (unsigned long long)submitted, (unsigned long long)spans_seen);
        FUZZ_CHECK(!res.rejected || res.message[0], "spans rejected without a reason");
    }
    ms_buf_free(&pbody);
    return 0;
}
