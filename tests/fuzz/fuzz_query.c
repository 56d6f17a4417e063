/* fuzz_query — what `moonspan ui` does with a request's query string
 * (hostile: it comes from whoever reaches the port): host/serve.c's
 * %-decoding of each parameter, then host/cli_select.c's parsing of the
 * decoded value as a selection filter. Whatever the text, a decoded value
 * fits its buffer, is NUL-terminated and holds no NUL; a refused one
 * writes nothing the caller reads; a selection parameter is accepted,
 * refused with a message, or not a selection parameter. */
#include "cli.h"
#include "fuzz.h"
#include "serve.h"

static const char *const names[] = {"since", "until", "name", "run", "eval_run", "evals", "attr",
                                    "user", "session", "tag", "id", "", "a=b"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *query = fuzz_cstr(data, size);
    ms_serve_request req = {.method = "GET", .path = "/api/traces", .query = query};
    ms_select sel = {0};
    static char values[64][300]; /* ms_select keeps pointers into them */
    size_t nvalues = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        for (int nth = 0; nth < 4; nth++) {
            static const size_t lens[] = {1, 2, 9, sizeof values[0]};
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                char *buf = values[nvalues];
                memset(buf, 'X', sizeof values[0]);
                int rc = ms_serve_query_nth(&req, names[k], nth, buf, lens[l]);
                FUZZ_CHECK(rc >= -2, "rc %d", rc);
                if (rc < 0) {
                    FUZZ_CHECK(lens[l] == sizeof values[0] || buf[lens[l]] == 'X', "wrote past the buffer");
                    continue;
                }
                FUZZ_CHECK((size_t)rc < lens[l], "%d bytes in a buffer of %zu", rc, lens[l]);
                FUZZ_CHECK(buf[rc] == 0 && strlen(buf) == (size_t)rc, "not a C string of %d bytes", rc);
                FUZZ_CHECK((size_t)rc + 1 == sizeof values[0] || buf[rc + 1] == 'X', "wrote past the value");
                if (lens[l] != sizeof values[0] || nvalues + 1 == sizeof values / sizeof values[0])
                    continue;
                char err[256] = "";
                int r = ms_select_param(&sel, names[k], names[k], buf, err, sizeof err);
                FUZZ_CHECK(r == 0 || r == 1 || r == -1, "ms_select_param gave %d", r);
                FUZZ_CHECK(r != -1 || (err[0] && memchr(err, 0, sizeof err)), "refused without a message");
                FUZZ_CHECK(sel.nattrs <= MS_SELECT_MAX_ATTRS && sel.ntags <= MS_SELECT_MAX_TAGS,
                           "%zu attrs, %zu tags", sel.nattrs, sel.ntags);
                nvalues++; /* accepted or not, sel may point into it: keep it */
            }
        }
    }
    free(query);
    return 0;
}
