/* cli_view — what every read-only view does around its writer: refuse
 * --prices, open the store read-only, and report, close and flush after. */
#include "cli.h"

#include <stdio.h>

#include "ms_store.h"

void ms_cli_refuse_prices(ms_cli *c)
{
    if (c->prices)
        ms_cli_usage_error(c, "--prices applies when traces are recorded (moonspan run, eval, test);"
                              " stored costs stay as they were recorded, so drop --prices here and"
                              " pass it to the run that records");
}

ms_store *ms_cli_open_read(ms_cli *c)
{
    char err[1024];
    ms_store *s;
    if (ms_store_open(c->db, MS_STORE_READ, &s, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
        return NULL;
    }
    return s;
}

int ms_cli_finish_view(ms_cli *c, ms_store *s, int rc, const char *err)
{
    if (rc != 0)
        fprintf(stderr, "moonspan %s: %s\n", c->verb, err);
    ms_store_close(s);
    if (fflush(stdout) != 0) {
        perror("moonspan: writing output");
        return 1;
    }
    return rc == 0 ? 0 : 1;
}
