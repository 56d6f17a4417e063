/* fuzz_redact — the redaction scanner (telemetry/ms_redact.c) over text
 * from models and servers.
 *
 * The first byte picks which user patterns are added (none, one, both);
 * the rest is the text. Whatever it is: a result of 0 masks leaves the
 * output untouched; a masked text contains a marker for each mask and is
 * masked no further by a second pass (a marker never matches again, and
 * nothing a pattern matches survives); and masking never grows a text by
 * more than a marker per byte. */
#include "fuzz.h"
#include "ms_redact.h"

static const char *const PATTERNS[] = {"ACME-[0-9]+", "[0-9]{3}-[0-9]{4}"};

static size_t count(const char *s, size_t n, const char *needle)
{
    size_t c = 0, k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            c++;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    ms_redactor *r = ms_redactor_new();
    if (!r)
        return 0;
    char err[256];
    for (int k = 0; k < 2; k++)
        if (data[0] & (1 << k))
            FUZZ_CHECK(ms_redactor_add(r, PATTERNS[k], err, sizeof err) == 0, "%s", err);
    const char *text = (const char *)data + 1;
    size_t n = size - 1;

    ms_buf out = {0};
    size_t made = ms_redact(r, text, n, &out);
    if (made == 0) {
        FUZZ_CHECK(out.len == 0, "nothing masked, yet %zu bytes written", out.len);
    } else if (!out.oom) {
        FUZZ_CHECK(count(out.data, out.len, "[REDACTED:") >= made, "%zu masks, fewer markers", made);
        FUZZ_CHECK(out.len <= n + made * 20, "grew from %zu to %zu bytes with %zu masks", n, out.len, made);
        ms_buf again = {0};
        size_t more = ms_redact(r, out.data, out.len, &again);
        FUZZ_CHECK(more == 0, "a second pass masked %zu more in \"%.*s\"", more, (int)out.len, out.data);
        ms_buf_free(&again);
    }
    ms_buf_free(&out);
    ms_redactor_free(r);
    return 0;
}
