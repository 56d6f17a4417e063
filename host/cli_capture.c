/* cli_capture — the options that choose what text a run keeps and where
 * its lines go: --capture-content, --redact, --log, --log-file. Shared by
 * `run` and `eval` through ms_cli_record. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_redact.h"

int ms_cli_capture(ms_cli *c)
{
    const char *v;
    ms_record_opts *r = &c->rec;
    if (ms_cli_flag(c, "--capture-content")) {
        r->capture = 1;
        return 1;
    }
    if (ms_cli_value(c, "--redact", &v)) {
        char err[512];
        if (!r->redactor && !(r->redactor = ms_redactor_new()))
            ms_cli_usage_error(c, "out of memory");
        if (ms_redactor_add(r->redactor, v, err, sizeof err) != 0)
            ms_cli_usage_error(c, "--redact %s", err);
        return 1;
    }
    if (ms_cli_value(c, "--log", &v)) {
        if (strcmp(v, "json") != 0)
            ms_cli_usage_error(c, "--log '%s' is not a log format; give --log json (lines on stderr), or "
                                  "--log-file PATH for a file", v);
        if (r->log_path && strcmp(r->log_path, "-") != 0)
            ms_cli_usage_error(c, "--log json and --log-file both given; choose one");
        r->log_path = "-";
        return 1;
    }
    if (ms_cli_value(c, "--log-file", &v)) {
        if (r->log_path && strcmp(r->log_path, "-") == 0)
            ms_cli_usage_error(c, "--log json and --log-file both given; choose one");
        if (!*v)
            ms_cli_usage_error(c, "--log-file needs a path, e.g. --log-file run.jsonl");
        r->log_path = v;
        return 1;
    }
    return 0;
}
