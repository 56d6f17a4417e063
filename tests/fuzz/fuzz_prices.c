/* fuzz_prices — the price-file parser (telemetry/ms_prices.c).
 *
 * Whatever text it accepts, every lookup gives prices that are finite
 * and non-negative, and so are the costs of any token counts llm.call can
 * record; every model the text names is found, at the prices of its last
 * line. Text it refuses comes with a message and leaves the table as it
 * was. */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "ms_prices.h"
#include "ms_trace.h"

static void check_price(const ms_price *p, const char *model)
{
    if (!p)
        return;
    double v[4] = {p->input, p->output, p->cache_read, p->cache_write};
    for (int i = 0; i < 4; i++)
        FUZZ_CHECK(isfinite(v[i]) && v[i] >= 0, "%s: price %d is %g", model, i, v[i]);
    const int64_t counts[] = {0, 1, 999999, MS_TOKENS_MAX};
    for (int i = 0; i < 4; i++) {
        int64_t n = counts[i];
        double c = ms_price_cost(p, n, n, n, n);
        FUZZ_CHECK(isfinite(c) && c >= 0, "%s: %lld tokens cost %g", model, (long long)n, c);
    }
}

static int same_price(const ms_price *a, const ms_price *b)
{
    return a == b || (a && b && memcmp(a, b, sizeof *a) == 0);
}

#define MAXTOK 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    ms_prices *p, *ref;
    if (ms_prices_new(&p) || ms_prices_new(&ref))
        abort();
    char err[256] = "";
    int rc = ms_prices_load_text(p, text, "fuzz.tsv", err, sizeof err);

    static const char *const fixed[] = {"claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini-2024",
                                        "llama3:8b", "", "x"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        const ms_price *got = ms_prices_find(p, fixed[i]);
        check_price(got, fixed[i]);
        if (rc)
            FUZZ_CHECK(same_price(got, ms_prices_find(ref, fixed[i])),
                       "a refused file changed the price of %s", fixed[i]);
    }
    if (rc) {
        FUZZ_CHECK(rc == EINVAL && strncmp(err, "fuzz.tsv:", 9) == 0, "rc %d, message \"%s\"", rc, err);
        goto done;
    }

    /* Every line of an accepted file is blank, a comment or an entry of
     * five columns: read them back and look each model up. */
    char *line = text, *next;
    for (; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *col[5];
        int n = 0;
        for (char *t = strtok(line, " \t\r"); t; t = strtok(NULL, " \t\r"))
            if (n < 5)
                col[n++] = t;
        if (n == 0)
            continue;
        FUZZ_CHECK(n == 5, "accepted a line of %d columns", n);
        const char *model = col[0];
        size_t len = strlen(model);
        if (model[len - 1] == '*') {
            /* any longer name starting with the prefix has some price */
            char *longer = malloc(len + sizeof "-fuzz");
            if (!longer)
                abort();
            memcpy(longer, model, len - 1);
            memcpy(longer + len - 1, "-fuzz", sizeof "-fuzz");
            const ms_price *got = ms_prices_find(p, longer);
            FUZZ_CHECK(got, "prefix %s does not match %s", model, longer);
            check_price(got, longer);
            free(longer);
            continue;
        }
        const ms_price *got = ms_prices_find(p, model);
        FUZZ_CHECK(got, "%s is not found", model);
        check_price(got, model);
        /* a later line for the same model wins: only the last is checked */
        int later = 0;
        for (char *l = next; l && *l && !later;) {
            size_t ll = strcspn(l, "\n");
            size_t skip = strspn(l, " \t\r");
            later = skip < ll && strncmp(l + skip, model, len) == 0 &&
                    (l[skip + len] == ' ' || l[skip + len] == '\t' || l[skip + len] == '\r');
            l = l[ll] ? l + ll + 1 : NULL;
        }
        if (later)
            continue;
        double in = strtod(col[1], NULL), out = strtod(col[2], NULL);
        double cr = strcmp(col[3], "-") ? strtod(col[3], NULL) : in;
        double cw = strcmp(col[4], "-") ? strtod(col[4], NULL) : in;
        FUZZ_CHECK(got->input == in && got->output == out && got->cache_read == cr &&
                   got->cache_write == cw,
                   "%s costs %g %g %g %g, its line says %s %s %s %s", model, got->input,
                   got->output, got->cache_read, got->cache_write, col[1], col[2], col[3], col[4]);
    }
done:
    ms_prices_free(p);
    ms_prices_free(ref);
    free(text);
    return 0;
}
