/* fuzz_cli — the command line's value parsers (host/cli.c): whatever the
 * text, a value they accept is inside the bounds cli.h states, and a
 * value they refuse leaves the output alone. */
#include <limits.h>
#include <math.h>

#include "cli.h"
#include "fuzz.h"

/* The ranges the verbs ask for (cmd_report.c, cmd_eval.c), and the widest. */
static const long ranges[][2] = {
    {1, 1000000}, {1, 0x7fffffffL}, {1, 1000}, {1, 10000}, {LONG_MIN, LONG_MAX},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = fuzz_cstr(data, size);

    long widest, n;
    int any = ms_parse_long(v, LONG_MIN, LONG_MAX, &widest) == 0;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        long min = ranges[i][0], max = ranges[i][1];
        n = 12345;
        int ok = ms_parse_long(v, min, max, &n) == 0;
        FUZZ_CHECK(ok == (any && widest >= min && widest <= max),
                   "\"%s\" in [%ld, %ld]: %s", v, min, max, ok ? "accepted" : "refused");
        FUZZ_CHECK(ok ? n == widest : n == 12345, "\"%s\" gave %ld", v, n);
    }

    int64_t ns = -7;
    if (ms_parse_duration(v, &ns) == 0) {
        FUZZ_CHECK(ns >= 1 && ns <= MS_DURATION_MAX_NS, "\"%s\" gave %lld ns", v, (long long)ns);
        FUZZ_CHECK(strchr("smhdw", v[strlen(v) - 1]), "\"%s\" has no unit", v);
    } else {
        FUZZ_CHECK(ns == -7, "refused \"%s\" but wrote %lld", v, (long long)ns);
    }

    double x = -7;
    if (ms_parse_fraction(v, &x) == 0)
        FUZZ_CHECK(x >= 0 && x <= 1, "\"%s\" gave %g", v, x);
    else
        FUZZ_CHECK(x == -7, "refused \"%s\" but wrote %g", v, x);

    free(v);
    return 0;
}
