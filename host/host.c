/* host — the lifetime of a recording process: open the store and the
 * tracer, record the run, and on the way out make sure every ended trace
 * is on disk before saying what was recorded. */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_clock.h"

#define QUEUE_TRACES 4096

/* The run trace is named after the script: "examples/agent.lua" -> "agent". */
static char *script_name(const char *script)
{
    const char *base = strrchr(script, '/');
    base = base ? base + 1 : script;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
        n -= 4;
    return strndup(base, n);
}

static char *args_json(int argc, char **argv, int first_arg)
{
    ms_buf b = {0};
    ms_buf_addc(&b, '[');
    for (int i = first_arg; i < argc; i++) {
        if (i > first_arg)
            ms_buf_addc(&b, ',');
        ms_json_str(&b, argv[i], strlen(argv[i]));
    }
    ms_buf_addc(&b, ']');
    if (b.oom) {
        ms_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int ms_host_start(const char *db_path, const char *prices_path, const char *script,
                  int argc, char **argv, int first_arg, char *err, size_t errlen)
{
    ms_host *h = &ms_the_host;
    memset(h, 0, sizeof *h);
    ms_clock_init();

    const char *tp = getenv("TRACEPARENT");
    if (tp && *tp) {
        if (ms_traceparent_parse(tp, &h->join_id, &h->join_parent) != 0) {
            snprintf(err, errlen, "TRACEPARENT='%s' is not a W3C traceparent "
                     "(00-<32 hex trace id>-<16 hex span id>-<2 hex flags>); fix it or unset it", tp);
            return -1;
        }
        h->joined = 1;
    }
    if (ms_prices_new(&h->prices) != 0) {
        snprintf(err, errlen, "out of memory loading the price table");
        return -1;
    }
    if (prices_path && ms_prices_load_file(h->prices, prices_path, err, errlen) != 0)
        goto fail;

    ms_store *store;
    if (ms_store_open(db_path, MS_STORE_WRITE, &store, err, errlen) != 0)
        goto fail;
    char *args = args_json(argc, argv, first_arg);
    int rc = args ? ms_store_add_run(store, script, args, MOONSPAN_VERSION, ms_epoch_ns(),
                                     &h->run_id, err, errlen)
                  : (snprintf(err, errlen, "out of memory"), -1);
    free(args);
    if (rc != 0 || ms_tracer_open(store, QUEUE_TRACES, &h->tracer) != 0) {
        if (rc == 0)
            snprintf(err, errlen, "cannot start the writer thread");
        ms_store_close(store);
        goto fail;
    }
    h->run_name = script_name(script);
    h->run_start = ms_mono_ns();
    return 0;
fail:
    ms_prices_free(h->prices);
    h->prices = NULL;
    return -1;
}

size_t ms_host_finish(void)
{
    ms_host *h = &ms_the_host;
    if (h->finished || !h->tracer)
        return 0;
    h->finished = 1;
    ms_host_end_open_traces();
    size_t failed = ms_tracer_flush(h->tracer);
    fflush(stdout); /* the script's output first, then the timeline */
    if (!h->quiet && h->traces_ended) {
        ms_buf b = {0};
        size_t shown = 0;
        for (int i = 0; i < MS_RECENT_TRACES; i++)
            shown += h->recent[i] != NULL;
        if (h->traces_ended > shown)
            ms_buf_printf(&b, "(%zu earlier trace%s not shown; list them with `moonspan traces`)\n",
                          h->traces_ended - shown, h->traces_ended - shown == 1 ? "" : "s");
        for (int i = 0; i < MS_RECENT_TRACES; i++)
            if (h->recent[i])
                ms_trace_summary(h->recent[i], ms_mono_ns(), &b);
        if (b.data)
            fputs(b.data, stderr);
        ms_buf_free(&b);
    }
    for (int i = 0; i < MS_RECENT_TRACES; i++) {
        if (h->recent[i])
            ms_tracer_release(h->tracer, h->recent[i]);
        h->recent[i] = NULL;
    }
    if (failed)
        fprintf(stderr, "moonspan: %zu trace%s could not be written: %s\n", failed,
                failed == 1 ? "" : "s", ms_tracer_last_error(h->tracer));
    return failed;
}

void ms_host_shutdown(void)
{
    ms_host *h = &ms_the_host;
    ms_tracer_close(h->tracer);
    h->tracer = NULL;
    ms_http_shutdown();
    ms_prices_free(h->prices);
    h->prices = NULL;
    free((char *)h->run_name);
    h->run_name = NULL;
}
