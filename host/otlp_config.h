/* otlp_config — where and how OTLP goes, resolved the way every
 * OpenTelemetry SDK resolves it, for each signal (traces, metrics, logs):
 * command-line flags, then the per-signal OTEL_EXPORTER_OTLP_{TRACES,
 * METRICS,LOGS}_* variables (the endpoint used verbatim), then the generic
 * OTEL_EXPORTER_OTLP_* ones (the endpoint a base, v1/<signal> appended),
 * then the defaults (an empty variable counts as unset); and
 * OTEL_{TRACES,METRICS,LOGS}_EXPORTER (none: the signal is off; names
 * other than otlp and none are ignored, as the specification says).
 * Used by `moonspan export otlp` and by `run`/`eval --export` (otlp_live.h). */
#ifndef MS_OTLP_CONFIG_H
#define MS_OTLP_CONFIG_H

#include <stddef.h>

#include "ms_otlp.h"

#define MS_OTLP_MAX_HEADERS 32
#define MS_OTLP_MAX_RESOURCE 32
#define MS_OTLP_TIMEOUT_MS_DEFAULT 10000

/* What the command line said; NULL / 0 when not given. */
typedef struct ms_otlp_flags {
    const char *url;          /* a base URL (v1/<signal> appended) or a full .../v1/<signal> */
    const char *protocol;     /* "http/protobuf" or "http/json" */
    const char *compression;  /* "gzip" or "none" */
    long timeout_ms;
    const char *headers[MS_OTLP_MAX_HEADERS]; /* "key=value" */
    size_t nheaders;
} ms_otlp_flags;

typedef struct ms_otlp_config {
    enum ms_otlp_signal signal;
    char *url;                /* the signal's endpoint, used as is */
    int json;                 /* http/json; else http/protobuf */
    int gzip;                 /* Content-Encoding: gzip (the default) */
    long timeout_ms;          /* per request */
    char *header_key[MS_OTLP_MAX_HEADERS], *header_value[MS_OTLP_MAX_HEADERS];
    size_t nheaders;
    ms_otlp_kv resource[MS_OTLP_MAX_RESOURCE]; /* service.name first; strings owned */
    size_t nresource;
    int disabled;             /* OTEL_SDK_DISABLED=true */
    int off;                  /* OTEL_<SIGNAL>_EXPORTER=none */
    int other_exporters;      /* it also named exporters moonspan lacks (ignored) */
} ms_otlp_config;

/* Resolves *cfg from f and the environment. A bad value, given or in a
 * variable, is an error naming where it came from and the fix; an
 * OTEL_RESOURCE_ATTRIBUTES that does not parse is dropped whole, as the
 * specification says, with a warning on stderr. Returns 0, or -1 with
 * err (cfg then needs no free). */
int ms_otlp_config_resolve_signal(ms_otlp_config *cfg, const ms_otlp_flags *f, enum ms_otlp_signal signal,
                                  char *err, size_t errlen);
/* The same for traces (ms_otlp_config_resolve_signal(..., MS_OTLP_TRACES, ...)).
 * A URL given for one signal that ends in another's path (/v1/traces when
 * resolving metrics) is an error naming the fix (give the base URL). */
int ms_otlp_config_resolve(ms_otlp_config *cfg, const ms_otlp_flags *f, char *err, size_t errlen);
void ms_otlp_config_free(ms_otlp_config *cfg);

/* Whether url's path (its query aside) ends in the signal's /v1/<signal>:
 * a full URL of that signal, not a base. */
int ms_otlp_url_is_signal(const char *url, enum ms_otlp_signal signal);

/* Whether OTEL_<SIGNAL>_EXPORTER names otlp (the live export sends
 * metrics and logs only when asked so). */
int ms_otlp_signal_asked(enum ms_otlp_signal signal);

/* What OTEL_<SIGNAL>_EXPORTER, a comma-separated list, names: otlp,
 * none, others (case-insensitive, blanks around names ignored); all 0
 * when the variable is unset or empty. */
void ms_otlp_exporter_names(enum ms_otlp_signal signal, int *otlp, int *none, int *other);

/* The environment variable's value; NULL when unset or empty (the
 * specification treats an empty OTEL_* as unset). */
const char *ms_otlp_env(const char *name);

/* The URL for messages: its user:password@ and its query left out. */
void ms_otlp_url_for_people(const char *url, char *out, size_t n);

#endif
