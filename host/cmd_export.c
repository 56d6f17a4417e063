/* `moonspan export otlp [URL]`: sends stored traces to an OTLP/HTTP
 * receiver (an OpenTelemetry Collector, Jaeger, Tempo, Langfuse,
 * Phoenix). Encoding is telemetry/ms_otlp.c's, configuration
 * otlp_config.c's, sending otlp_send.c's; this file is the command line. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_otlp.h"
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
    "\n"
    "  --protocol P       http/protobuf (default) or http/json\n"
    "                     ($OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL)\n"
    "  --compression C    gzip (default) or none ($OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION)\n"
    "  --header K=V       a request header, e.g. 'Authorization=Bearer%20KEY' (repeat;\n"
    "                     after $OTEL_EXPORTER_OTLP_[TRACES_]HEADERS; value %-encoded)\n"
    "  --timeout MS       per request (default 10000; $OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT)\n"
    "  --batch N          spans per request at most (default 512)\n"
    "Which traces (default: all production traces):\n";

static const char EXPORT_HELP_END[] =
    "\n"
    "The resource's service.name is $OTEL_SERVICE_NAME, else the one in\n"
    "$OTEL_RESOURCE_ATTRIBUTES (k=v,k2=v2: all of them are sent), else\n"
    "unknown_service:moonspan. OTEL_SDK_DISABLED=true refuses to export.\n"
    "Retries only on 429, 502, 503, 504 and lost connections, after Retry-After.\n"
    "Prints what was sent, rejected (a partial success) and failed.\n"
    "\n"
    "Exit status: 0 when every span was sent; 1 when some were rejected or\n"
    "failed (they stay in the store: run the command again) or the store cannot\n"
    "be read; 2 for bad usage or configuration.\n";

int ms_cmd_export(ms_cli *c)
{
    ms_otlp_flags f = {0};
    ms_select sel = {0};
    long batch = MS_OTLP_BATCH_SPANS;
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
        if (ms_cli_value(c, "--protocol", &v)) {
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

    char err[1024];
    ms_otlp_config cfg;
    if (ms_otlp_config_resolve(&cfg, &f, err, sizeof err)) {
        fprintf(stderr, "moonspan export: %s\n", err);
        return MS_EXIT_USAGE;
    }
    if (cfg.disabled) {
        fprintf(stderr, "moonspan export: OTEL_SDK_DISABLED=true turns OpenTelemetry export off;"
                        " unset it to export\n");
        ms_otlp_config_free(&cfg);
        return MS_EXIT_USAGE;
    }
    ms_store *s = ms_cli_open_read(c);
    if (!s) {
        ms_otlp_config_free(&cfg);
        return MS_EXIT_USAGE;
    }
    int rc = ms_select_check(ms_store_db(s), &sel, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "moonspan export: %s\n", err);
        ms_store_close(s);
        ms_otlp_config_free(&cfg);
        return rc > 0 ? MS_EXIT_USAGE : 1;
    }
    ms_otlp_sender snd;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        ms_otlp_sender_init(&snd, &cfg, "export", err, sizeof err)) {
        fprintf(stderr, "moonspan export: %s\n", err);
        ms_store_close(s);
        ms_otlp_config_free(&cfg);
        return 1;
    }
    ms_otlp_opts o = {.json = cfg.json, .resource = cfg.resource, .nresource = cfg.nresource,
                      .batch_spans = (size_t)batch};
    ms_otlp_totals tot;
    rc = ms_otlp_export(ms_store_db(s), &sel, &o, ms_otlp_sender_send, &snd, &tot, err, sizeof err);
    char url[512];
    ms_otlp_url_for_people(cfg.url, url, sizeof url);
    printf("%lld span%s of %lld trace%s to %s (%s%s) in %lld request%s: %lld sent, %lld rejected, %lld failed",
           (long long)tot.spans, tot.spans == 1 ? "" : "s", (long long)tot.traces, tot.traces == 1 ? "" : "s", url, cfg.json ? "http/json" : "http/protobuf",
           cfg.gzip ? ", gzip" : "", (long long)tot.requests, tot.requests == 1 ? "" : "s",
           (long long)snd.sent, (long long)snd.rejected, (long long)snd.failed);
    if (snd.retries)
        printf(", %lld retr%s", (long long)snd.retries, snd.retries == 1 ? "y" : "ies");
    putchar('\n');
    int status = 0;
    if (rc < 0) {
        fprintf(stderr, "moonspan export: %s\n", err);
        status = 1;
    }
    if (snd.rejected || snd.failed) {
        int64_t lost = snd.rejected + snd.failed;
        fprintf(stderr, "moonspan export: %lld span%s not delivered; %s still in the store:"
                        " run the same command again once the receiver accepts them\n",
                (long long)lost, lost == 1 ? " was" : "s were", lost == 1 ? "it is" : "they are");
        status = 1;
    }
    ms_otlp_sender_free(&snd);
    curl_global_cleanup();
    ms_otlp_config_free(&cfg);
    return ms_cli_finish_view(c, s, 0, NULL) ? 1 : status;
}
