/* `moonspan export otlp [URL]`: sends stored traces, and with --signals
 * their metrics and log records, to an OTLP/HTTP receiver (an
 * OpenTelemetry Collector, Jaeger, Tempo, Langfuse, Phoenix). Encoding is
 * telemetry/ms_otlp.c's (spans, log records) and ms_otlp_metrics.c's,
 * configuration otlp_config.c's, sending otlp_send.c's; this file is the
 * command line. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_clock.h"
#include "ms_metrics_store.h"
#include "ms_otlp.h"
#include "ms_otlp_metrics.h"
#include "ms_store.h"
#include "otlp_config.h"
#include "otlp_send.h"

static const char EXPORT_HELP[] =
    "usage: moonspan export otlp [URL] [OPTIONS]\n"
    "\n"
    "Sends stored traces to an OTLP/HTTP receiver (an OpenTelemetry Collector,\n"
    "Jaeger, Tempo, Langfuse, Phoenix), oldest first, in batches: the same ids,\n"
    "parents and times as `moonspan show`, LLM calls with the GenAI attributes.\n"
    "URL is a base (http://host:4318: /v1/traces is appended) or a full URL\n"
    "ending in /v1/traces; without it, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is),\n"
    "else OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces), else http://localhost:4318.\n"
    "Metrics and logs alike: /v1/metrics, /v1/logs, OTEL_EXPORTER_OTLP_METRICS_*,\n"
    "OTEL_EXPORTER_OTLP_LOGS_*; a URL ending in /v1/traces takes traces only.\n"
    "Below, [SIGNAL_] is the per-signal variable (TRACES_, METRICS_, LOGS_), which\n"
    "wins over the generic one.\n"
    "\n"
    "  --signals LIST     what to send, any of traces,metrics,logs (default: traces):\n"
    "                     metrics are the `serve --metrics` registry of the selected\n"
    "                     traces; logs one record per span end and per error;\n"
    "                     OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none skips a signal\n"
    "  --protocol P       http/protobuf (default) or http/json\n"
    "                     ($OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL)\n"
    "  --compression C    gzip (default) or none ($OTEL_EXPORTER_OTLP_[SIGNAL_]COMPRESSION)\n"
    "  --header K=V       a request header, e.g. 'Authorization=Bearer%20KEY' (repeat;\n"
    "                     after $OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS; value %-encoded)\n"
    "  --timeout MS       per request (default 10000; $OTEL_EXPORTER_OTLP_[SIGNAL_]TIMEOUT)\n"
    "  --batch N          spans (log records) per request at most (default 512)\n"
    "Which traces (default: all production traces):\n";

static const char EXPORT_HELP_END[] =
    "\n"
    "The resource's service.name is $OTEL_SERVICE_NAME, else the one in\n"
    "$OTEL_RESOURCE_ATTRIBUTES (k=v,k2=v2: all of them are sent), else\n"
    "unknown_service:moonspan. OTEL_SDK_DISABLED=true refuses to export.\n"
    "Retries only on 429, 502, 503, 504 and lost connections, after Retry-After.\n"
    "Prints, a line per signal, what was sent, rejected (a partial success) and\n"
    "failed.\n"
    "\n"
    "Exit status: 0 when everything was sent; 1 when some was rejected or failed\n"
    "(it stays in the store: run the command again) or the store cannot be read;\n"
    "2 for bad usage or configuration (every signal asked turned off included).\n";

static const char *const SIGNAL_NAME[] = {"traces", "metrics", "logs"};

/* --signals: a comma-separated list of traces, metrics, logs, as a bit set. */
static unsigned parse_signals(ms_cli *c, const char *v)
{
    unsigned set = 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int s = MS_OTLP_TRACES; s <= MS_OTLP_LOGS; s++) {
            if (n == strlen(SIGNAL_NAME[s]) && strncmp(p, SIGNAL_NAME[s], n) == 0) {
                set |= 1u << s;
                found = 1;
            }
        }
        if (!found)
            ms_cli_usage_error(c, "--signals: '%.*s' is not a signal; give any of traces,metrics,logs"
                                  " (e.g. --signals traces,metrics)", (int)n, p);
        p += n;
        if (*p == ',')
            p++;
    }
    if (!set)
        ms_cli_usage_error(c, "--signals is empty; give any of traces,metrics,logs (e.g. --signals traces,logs)");
    return set;
}

/* The line every signal prints: "... to URL (protocol, gzip) in N requests: ...". */
static void print_delivery(const ms_otlp_config *cfg, const ms_otlp_sender *snd, int64_t requests)
{
    char url[512];
    ms_otlp_url_for_people(cfg->url, url, sizeof url);
    printf(" to %s (%s%s) in %lld request%s: %lld sent, %lld rejected, %lld failed", url,
           cfg->json ? "http/json" : "http/protobuf", cfg->gzip ? ", gzip" : "", (long long)requests,
           requests == 1 ? "" : "s", (long long)snd->sent, (long long)snd->rejected, (long long)snd->failed);
    if (snd->retries)
        printf(", %lld retr%s", (long long)snd->retries, snd->retries == 1 ? "y" : "ies");
    putchar('\n');
}

/* Says what was not delivered (and that it is still in the store): 1, else 0. */
static int undelivered(const ms_otlp_sender *snd, const char *one, const char *many)
{
    if (!snd->rejected && !snd->failed)
        return 0;
    int64_t lost = snd->rejected + snd->failed;
    fprintf(stderr, "moonspan export: %lld %s not delivered; %s still in the store:"
                    " run the same command again once the receiver accepts them\n",
            (long long)lost, lost == 1 ? one : many, lost == 1 ? "it is" : "they are");
    return 1;
}

/* Metrics: the registry of the selected traces, in one request. 0, or 1
 * when it was not all delivered or the store could not be read. */
static int export_metrics(sqlite3 *db, const ms_select *sel, const ms_otlp_config *cfg, ms_otlp_sender *snd)
{
    char err[1024];
    ms_metrics *m = ms_metrics_new();
    if (!m) {
        fprintf(stderr, "moonspan export: out of memory\n");
        return 1;
    }
    uint64_t rows;
    int64_t first;
    ms_buf body = {0};
    int64_t points = 0, requests = 0;
    int status = 0;
    if (ms_metrics_store_select(db, sel, m, &rows, &first, err, sizeof err)) {
        fprintf(stderr, "moonspan export: %s\n", err);
        status = 1;
    } else {
        ms_clock_init();
        ms_otlp_metrics_opts o = {.json = cfg->json, .resource = cfg->resource, .nresource = cfg->nresource,
                                  .start_ns = first, .time_ns = ms_epoch_ns()};
        if (ms_otlp_metrics_encode(m, &o, &body, &points)) {
            fprintf(stderr, "moonspan export: out of memory encoding the metrics\n");
            status = 1;
        } else if (points) {
            ms_otlp_sender_send(snd, &body, points);
            requests = 1;
        }
    }
    printf("%lld data point%s of %llu trace%s", (long long)points, points == 1 ? "" : "s",
           (unsigned long long)rows, rows == 1 ? "" : "s");
    print_delivery(cfg, snd, requests);
    ms_buf_free(&body);
    ms_metrics_free(m);
    return undelivered(snd, "data point was", "data points were") || status;
}

/* Traces, or the log records of their spans. 0, or 1. */
static int export_spans(sqlite3 *db, const ms_select *sel, const ms_otlp_config *cfg, ms_otlp_sender *snd,
                        long batch)
{
    char err[1024];
    int logs = cfg->signal == MS_OTLP_LOGS;
    ms_otlp_opts o = {.json = cfg->json, .resource = cfg->resource, .nresource = cfg->nresource,
                      .batch_spans = (size_t)batch, .logs = logs};
    ms_otlp_totals tot;
    int rc = ms_otlp_export(db, sel, &o, ms_otlp_sender_send, snd, &tot, err, sizeof err);
    if (logs)
        printf("%lld log record%s of %lld span%s of %lld trace%s", (long long)tot.records,
               tot.records == 1 ? "" : "s", (long long)tot.spans, tot.spans == 1 ? "" : "s",
               (long long)tot.traces, tot.traces == 1 ? "" : "s");
    else
        printf("%lld span%s of %lld trace%s", (long long)tot.spans, tot.spans == 1 ? "" : "s",
               (long long)tot.traces, tot.traces == 1 ? "" : "s");
    print_delivery(cfg, snd, tot.requests);
    int status = 0;
    if (rc < 0) {
        fprintf(stderr, "moonspan export: %s\n", err);
        status = 1;
    }
    if (logs ? undelivered(snd, "log record was", "log records were") : undelivered(snd, "span was", "spans were"))
        status = 1;
    return status;
}

int ms_cmd_export(ms_cli *c)
{
    ms_otlp_flags f = {0};
    ms_select sel = {0};
    long batch = MS_OTLP_BATCH_SPANS;
    unsigned signals = 1u << MS_OTLP_TRACES;
    const char *v, *format = NULL;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(EXPORT_HELP, stdout);
            fputs(MS_SELECT_HELP, stdout);
            fputs(EXPORT_HELP_END, stdout);
            return 0;
        }
        if (ms_cli_select(c, &sel))
            continue;
        if (ms_cli_value(c, "--signals", &v)) {
            signals = parse_signals(c, v);
        } else if (ms_cli_value(c, "--protocol", &v)) {
            f.protocol = v;
        } else if (ms_cli_value(c, "--compression", &v)) {
            f.compression = v;
        } else if (ms_cli_value(c, "--header", &v)) {
            if (f.nheaders == MS_OTLP_MAX_HEADERS)
                ms_cli_usage_error(c, "more than %d --header options; send fewer headers", MS_OTLP_MAX_HEADERS);
            f.headers[f.nheaders++] = v;
        } else if (ms_cli_value(c, "--timeout", &v)) {
            f.timeout_ms = ms_cli_long(c, "--timeout", v, 1, 3600000);
        } else if (ms_cli_value(c, "--batch", &v)) {
            batch = ms_cli_long(c, "--batch", v, 1, 100000);
        } else if (c->argv[c->i][0] != '-' && !format) {
            format = c->argv[c->i++];
        } else if (c->argv[c->i][0] != '-' && !f.url) {
            f.url = c->argv[c->i++];
        } else {
            ms_cli_unknown(c);
        }
    }
    if (!format)
        ms_cli_usage_error(c, "say what to export: `moonspan export otlp [URL]`");
    if (strcmp(format, "otlp") != 0)
        ms_cli_usage_error(c, "'%s' is not an export format; the format is otlp"
                              " (`moonspan export otlp URL`)", format);
    ms_cli_refuse_prices(c);

    /* every signal's configuration first: a bad one sends nothing */
    char err[1024];
    ms_otlp_config cfg[3];
    int have[3] = {0}, sending = 0, disabled = 0;
    for (int sg = MS_OTLP_TRACES; sg <= MS_OTLP_LOGS; sg++) {
        if (!(signals & (1u << sg)))
            continue;
        if (ms_otlp_config_resolve_signal(&cfg[sg], &f, (enum ms_otlp_signal)sg, err, sizeof err)) {
            fprintf(stderr, "moonspan export: %s\n", err);
            for (int k = 0; k < sg; k++)
                if (have[k])
                    ms_otlp_config_free(&cfg[k]);
            return MS_EXIT_USAGE;
        }
        have[sg] = 1;
        disabled |= cfg[sg].disabled;
        sending += !cfg[sg].off;
    }
    int status = 0;
    if (disabled) {
        fprintf(stderr, "moonspan export: OTEL_SDK_DISABLED=true turns OpenTelemetry export off;"
                        " unset it to export\n");
        status = MS_EXIT_USAGE;
    } else if (!sending) {
        fprintf(stderr, "moonspan export: every signal asked for is turned off by its OTEL_*_EXPORTER=none;"
                        " unset it, or ask for another with --signals\n");
        status = MS_EXIT_USAGE;
    }
    for (int sg = MS_OTLP_TRACES; sg <= MS_OTLP_LOGS && !status; sg++) {
        const char *var = sg == MS_OTLP_TRACES ? "TRACES" : sg == MS_OTLP_METRICS ? "METRICS" : "LOGS";
        if (have[sg] && cfg[sg].off)
            fprintf(stderr, "moonspan export: %s not sent: OTEL_%s_EXPORTER=none turns them off\n",
                    SIGNAL_NAME[sg], var);
        else if (have[sg] && cfg[sg].other_exporters)
            fprintf(stderr, "moonspan export: OTEL_%s_EXPORTER names exporters moonspan does not have;"
                            " they are ignored and the %s go over OTLP\n", var, SIGNAL_NAME[sg]);
    }
    ms_store *s = status ? NULL : ms_cli_open_read(c);
    if (!status && !s)
        status = MS_EXIT_USAGE;
    if (!status) {
        int rc = ms_select_check(ms_store_db(s), &sel, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "moonspan export: %s\n", err);
            status = rc > 0 ? MS_EXIT_USAGE : 1;
        }
    }
    if (!status && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "moonspan export: cannot start libcurl\n");
        status = 1;
    } else if (!status) {
        for (int sg = MS_OTLP_TRACES; sg <= MS_OTLP_LOGS; sg++) {
            if (!have[sg] || cfg[sg].off)
                continue;
            ms_otlp_sender snd;
            if (ms_otlp_sender_init(&snd, &cfg[sg], "export", err, sizeof err)) {
                fprintf(stderr, "moonspan export: %s\n", err);
                status = 1;
                continue;
            }
            int rc = sg == MS_OTLP_METRICS ? export_metrics(ms_store_db(s), &sel, &cfg[sg], &snd)
                                           : export_spans(ms_store_db(s), &sel, &cfg[sg], &snd, batch);
            status |= rc;
            ms_otlp_sender_free(&snd);
        }
        curl_global_cleanup();
    }
    for (int sg = MS_OTLP_TRACES; sg <= MS_OTLP_LOGS; sg++)
        if (have[sg])
            ms_otlp_config_free(&cfg[sg]);
    if (!s)
        return status;
    return ms_cli_finish_view(c, s, 0, NULL) ? 1 : status;
}
