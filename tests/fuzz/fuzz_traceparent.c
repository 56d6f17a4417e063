/* fuzz_traceparent — the W3C traceparent parser (telemetry/ms_ids.c).
 *
 * A header it accepts formats back to itself (ids and dashes; the
 * version and flags become our own "00" and "01") and parses again to the
 * same ids; ids it formats, it parses back, and refuses exactly the
 * all-zero ones the spec forbids. */
#include "fuzz.h"
#include "ms_ids.h"

static int is_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    ms_trace_id t, t2;
    uint64_t span, span2;
    char out[56];

    if (ms_traceparent_parse(s, &t, &span) == 0) {
        FUZZ_CHECK(!is_zero(t.b, 16) && span != 0, "accepted zero ids in \"%s\"", s);
        FUZZ_CHECK(!(s[0] == 'f' && s[1] == 'f'), "version ff in \"%s\"", s);
        ms_traceparent_format(&t, span, out);
        FUZZ_CHECK(strlen(out) == 55 && memcmp(out + 2, s + 2, 51) == 0,
                   "\"%s\" formats back as \"%s\"", s, out);
        FUZZ_CHECK(ms_traceparent_parse(out, &t2, &span2) == 0 &&
                   memcmp(&t, &t2, sizeof t) == 0 && span == span2,
                   "\"%s\" does not parse back", out);
    }

    if (size >= 24) {
        memcpy(t.b, data, 16);
        memcpy(&span, data + 16, 8);
        ms_traceparent_format(&t, span, out);
        int ok = ms_traceparent_parse(out, &t2, &span2) == 0;
        FUZZ_CHECK(ok == (!is_zero(t.b, 16) && span != 0), "\"%s\" %s", out,
                   ok ? "accepted" : "refused");
        FUZZ_CHECK(!ok || (memcmp(&t, &t2, sizeof t) == 0 && span == span2),
                   "\"%s\" parses to other ids", out);
    }
    free(s);
    return 0;
}
