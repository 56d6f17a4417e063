/* otlp_config — the OTEL_* environment and the export flags (see
 * otlp_config.h). Rules from the OpenTelemetry specification
 * (protocol/exporter.md, configuration/sdk-environment-variables.md). */
#include "otlp_config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_otlp_schema.h"
#include "ms_text.h"

const char *ms_otlp_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The per-signal variable, else the generic one; *from names which. */
static const char *env2(const char *signal, const char *generic, const char **from)
{
    const char *v = ms_otlp_env(signal);
    *from = signal;
    if (!v) {
        v = ms_otlp_env(generic);
        *from = generic;
    }
    return v;
}

static const char *const SIGNAL_UPPER[] = {"TRACES", "METRICS", "LOGS"};
static const char *const SIGNAL_PATH[] = {MS_OTLP_PATH_TRACES, MS_OTLP_PATH_METRICS, MS_OTLP_PATH_LOGS};

/* "OTEL_EXPORTER_OTLP_<SIGNAL>_<what>" in buf. */
static const char *signal_var(const ms_otlp_config *c, const char *what, char *buf, size_t n)
{
    snprintf(buf, n, "OTEL_EXPORTER_OTLP_%s_%s", SIGNAL_UPPER[c->signal], what);
    return buf;
}

static int hexdig(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* s[0..n) trimmed of spaces and tabs, %XX decoded, as a new string.
 * NULL on a bad escape or no memory (*bad set for the escape). */
static char *decode(const char *s, size_t n, int *bad)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) {
                free(out);
                *bad = 1;
                return NULL;
            }
            int a = hexdig((unsigned char)s[i + 1]), b = hexdig((unsigned char)s[i + 2]);
            if (a < 0 || b < 0) {
                free(out);
                *bad = 1;
                return NULL;
            }
            *o++ = (char)(a << 4 | b);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

/* Calls add(key, value) for each "k=v" of a comma-separated list (the
 * W3C baggage form the OTEL_* lists use). Returns 0, or -1 with *entry
 * set to the offset of the bad entry. add returns non-zero to fail. */
typedef int (*kv_fn)(void *ud, char *key, char *value);
static int each_kv(const char *list, kv_fn add, void *ud, size_t *entry, int *oom)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        *entry = (size_t)(p - list);
        int bad = 0;
        int blank = 1;
        for (size_t i = 0; i < n; i++)
            blank &= p[i] == ' ' || p[i] == '\t';
        if (!blank) {
            if (!eq)
                return -1;
            char *k = decode(p, (size_t)(eq - p), &bad);
            char *v = k ? decode(eq + 1, n - (size_t)(eq - p) - 1, &bad) : NULL;
            if (!k || !v || !*k) {
                *oom = !bad && (!k || !v);
                free(k);
                free(v);
                return -1;
            }
            if (add(ud, k, v))
                return -1;
        }
        p += n + (end ? 1 : 0);
    }
    return 0;
}

/* A header, replacing one of the same name (case-insensitive): later
 * sources win. Takes ownership of k and v. */
static int add_header(void *ud, char *k, char *v)
{
    ms_otlp_config *c = ud;
    for (size_t i = 0; i < c->nheaders; i++) {
        if (strcasecmp(c->header_key[i], k) == 0) {
            free(c->header_key[i]);
            free(c->header_value[i]);
            c->header_key[i] = k;
            c->header_value[i] = v;
            return 0;
        }
    }
    if (c->nheaders == MS_OTLP_MAX_HEADERS || strpbrk(k, ":\r\n") || strpbrk(v, "\r\n")) {
        free(k);
        free(v);
        return -1;
    }
    c->header_key[c->nheaders] = k;
    c->header_value[c->nheaders++] = v;
    return 0;
}

static int add_resource(void *ud, char *k, char *v)
{
    ms_otlp_config *c = ud;
    for (size_t i = 0; i < c->nresource; i++) {
        if (strcmp(c->resource[i].key, k) == 0) {
            free((char *)c->resource[i].key);
            free((char *)c->resource[i].value);
            c->resource[i] = (ms_otlp_kv){k, v};
            return 0;
        }
    }
    if (c->nresource == MS_OTLP_MAX_RESOURCE) {
        free(k);
        free(v);
        return -1;
    }
    c->resource[c->nresource++] = (ms_otlp_kv){k, v};
    return 0;
}

static void free_resource(ms_otlp_config *c)
{
    for (size_t i = 0; i < c->nresource; i++) {
        free((char *)c->resource[i].key);
        free((char *)c->resource[i].value);
    }
    c->nresource = 0;
}

void ms_otlp_config_free(ms_otlp_config *c)
{
    free(c->url);
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->header_key[i]);
        free(c->header_value[i]);
    }
    free_resource(c);
    memset(c, 0, sizeof *c);
}

/* Where u's path ends: at its query or fragment, else at its end. */
static size_t path_end(const char *u)
{
    const char *scheme = strstr(u, "://");
    const char *host = scheme ? scheme + 3 : u;
    return (size_t)(host - u) + strcspn(host, "?#");
}

/* base + "v1/<signal>" with exactly one '/' between them, appended to the
 * base's path: a query or fragment stays after it. */
static char *join_path(const char *base, const char *path)
{
    size_t end = path_end(base), n = end, k = strlen(path), rest = strlen(base + end);
    while (n && base[n - 1] == '/')
        n--;
    char *out = malloc(n + k + rest + 1);
    if (out) {
        memcpy(out, base, n);
        memcpy(out + n, path, k);
        memcpy(out + n + k, base + end, rest + 1);
    }
    return out;
}

static int http_url(const char *u)
{
    return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

/* Whether URL u's path (its query and fragment aside) ends in suffix. */
static int ends_with(const char *u, const char *suffix)
{
    size_t n = path_end(u), k = strlen(suffix);
    return n >= k && strncmp(u + n - k, suffix, k) == 0;
}

/* A URL for a message, in out: without its user:password@ and query (a
 * mistyped one still carries them), its text escaped. */
static const char *url_shown(const char *u, char *out, size_t n)
{
    char bare[512];
    ms_otlp_url_for_people(u, bare, sizeof bare);
    ms_buf b = {0};
    ms_buf_add_text_max(&b, bare, strlen(bare), 200, 0);
    snprintf(out, n, "%s", b.oom ? "?" : b.data);
    ms_buf_free(&b);
    return out;
}

/* What is wrong with u as curl reads it (no host, a port out of range),
 * or NULL. */
static const char *url_problem(const char *u)
{
    CURLU *h = curl_url();
    if (!h)
        return "out of memory";
    char *host = NULL;
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, u, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
    const char *why = rc == CURLUE_NO_HOST || (rc == CURLUE_OK && (!host || !*host)) ? "no host"
                      : rc != CURLUE_OK ? curl_url_strerror(rc) : NULL;
    curl_free(host);
    curl_url_cleanup(h);
    return why;
}

static int resolve_url(ms_otlp_config *c, const ms_otlp_flags *f, char *err, size_t errlen)
{
    const char *from, *u, *path = SIGNAL_PATH[c->signal];
    char var[64];
    if (f->url) {
        from = "the URL";
        u = f->url;
        /* a full URL of this signal as given, else a base URL as the generic variable */
        for (int s = MS_OTLP_TRACES; s <= MS_OTLP_LOGS; s++)
            if (s != (int)c->signal && ends_with(u, SIGNAL_PATH[s])) {
                char shown[512];
                return ms_errf(err, errlen, "the URL '%s' ends in %s, which takes %s only; give the base URL"
                               " (like http://127.0.0.1:4318) to send %s too, or send each signal to its own URL",
                               url_shown(u, shown, sizeof shown), SIGNAL_PATH[s], SIGNAL_PATH[s] + 4,
                               SIGNAL_PATH[c->signal] + 4);
            }
        c->url = ends_with(u, path) ? strdup(u) : join_path(u, path);
    } else if ((u = ms_otlp_env(signal_var(c, "ENDPOINT", var, sizeof var)))) {
        from = var;
        c->url = strdup(u);
    } else {
        u = ms_otlp_env("OTEL_EXPORTER_OTLP_ENDPOINT");
        from = u ? "OTEL_EXPORTER_OTLP_ENDPOINT" : "the default";
        if (!u)
            u = MS_OTLP_DEFAULT_ENDPOINT;
        c->url = join_path(u, path);
    }
    if (!c->url)
        return ms_errf(err, errlen, "out of memory");
    if (!http_url(u) || strpbrk(u, " \t\r\n")) {
        char shown[512];
        return ms_errf(err, errlen, "%s '%s' is not an http:// or https:// URL; give one like"
                       " http://127.0.0.1:4318 (grpc endpoints are not supported)", from,
                       url_shown(u, shown, sizeof shown));
    }
    /* caught here, before anything runs, rather than as failed requests */
    const char *why = url_problem(u);
    if (!why)
        why = url_problem(c->url);
    if (why) {
        char shown[512];
        return ms_errf(err, errlen, "%s '%s' is not a usable URL (%s); give one like http://127.0.0.1:4318",
                       from, url_shown(u, shown, sizeof shown), why);
    }
    return 0;
}

int ms_otlp_url_is_signal(const char *url, enum ms_otlp_signal signal)
{
    return ends_with(url, SIGNAL_PATH[signal]);
}

void ms_otlp_exporter_names(enum ms_otlp_signal signal, int *otlp, int *none, int *other)
{
    char var[48];
    snprintf(var, sizeof var, "OTEL_%s_EXPORTER", SIGNAL_UPPER[signal]);
    const char *v = ms_otlp_env(var);
    *otlp = *none = *other = 0;
    for (const char *p = v ? v : ""; *p;) {
        size_t n = strcspn(p, ",");
        const char *a = p, *b = p + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) == 4 && strncasecmp(a, "otlp", 4) == 0)
            *otlp = 1;
        else if ((size_t)(b - a) == 4 && strncasecmp(a, "none", 4) == 0)
            *none = 1;
        else if (b > a)
            *other = 1;
        p += n + (p[n] == ',');
    }
}

/* "none" (without "otlp") turns the signal off; names of exporters
 * moonspan does not have (console, prometheus) are ignored, as the
 * specification says, and noted for the caller to say so. */
static void resolve_exporter(ms_otlp_config *c)
{
    int otlp, none, other;
    ms_otlp_exporter_names(c->signal, &otlp, &none, &other);
    c->off = none && !otlp;
    c->other_exporters = other;
}

int ms_otlp_signal_asked(enum ms_otlp_signal signal)
{
    int otlp, none, other;
    ms_otlp_exporter_names(signal, &otlp, &none, &other);
    return otlp;
}

static int resolve_protocol(ms_otlp_config *c, const ms_otlp_flags *f, char *err, size_t errlen)
{
    const char *from = "--protocol", *p = f->protocol;
    char var[64];
    if (!p)
        p = env2(signal_var(c, "PROTOCOL", var, sizeof var), "OTEL_EXPORTER_OTLP_PROTOCOL", &from);
    if (!p || strcmp(p, "http/protobuf") == 0)
        c->json = 0;
    else if (strcmp(p, "http/json") == 0)
        c->json = 1;
    else if (strcmp(p, "grpc") == 0)
        return ms_errf(err, errlen, "%s grpc: moonspan speaks OTLP over HTTP only; use http/protobuf"
                       " (port 4318 on a Collector)", from);
    else
        return ms_errf(err, errlen, "%s '%s' is not a protocol; use http/protobuf or http/json", from, p);
    return 0;
}

static int resolve_compression(ms_otlp_config *c, const ms_otlp_flags *f, char *err, size_t errlen)
{
    const char *from = "--compression", *p = f->compression;
    char var[64];
    if (!p)
        p = env2(signal_var(c, "COMPRESSION", var, sizeof var), "OTEL_EXPORTER_OTLP_COMPRESSION", &from);
    if (!p || strcmp(p, "gzip") == 0)
        c->gzip = 1;
    else if (strcmp(p, "none") == 0)
        c->gzip = 0;
    else
        return ms_errf(err, errlen, "%s '%s' is not a compression; use gzip or none", from, p);
    return 0;
}

static int resolve_timeout(ms_otlp_config *c, const ms_otlp_flags *f, char *err, size_t errlen)
{
    c->timeout_ms = MS_OTLP_TIMEOUT_MS_DEFAULT;
    if (f->timeout_ms) {
        c->timeout_ms = f->timeout_ms;
        return 0;
    }
    char var[64];
    const char *from, *p = env2(signal_var(c, "TIMEOUT", var, sizeof var), "OTEL_EXPORTER_OTLP_TIMEOUT", &from);
    if (!p)
        return 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (*end || v < 1 || v > 3600000)
        return ms_errf(err, errlen, "%s '%s' is not a timeout; give milliseconds from 1 to 3600000", from, p);
    c->timeout_ms = v;
    return 0;
}

static int resolve_headers(ms_otlp_config *c, const ms_otlp_flags *f, char *err, size_t errlen)
{
    char var[64];
    const char *const vars[] = {"OTEL_EXPORTER_OTLP_HEADERS", signal_var(c, "HEADERS", var, sizeof var)};
    for (size_t i = 0; i < 2; i++) {
        const char *v = ms_otlp_env(vars[i]);
        size_t at;
        int oom = 0;
        if (v && each_kv(v, add_header, c, &at, &oom))
            /* the value is not printed: headers carry credentials */
            return ms_errf(err, errlen, oom ? "out of memory" : "%s: entry %zu characters in is not"
                           " key=value (percent-encode ',' '=' '%%' in values; at most %d headers);"
                           " write it as key1=value1,key2=value2", vars[i], at, MS_OTLP_MAX_HEADERS);
    }
    for (size_t i = 0; i < f->nheaders; i++) {
        size_t at;
        int oom = 0;
        const char *h = f->headers[i];
        if (!strchr(h, ',') && strchr(h, '=') && each_kv(h, add_header, c, &at, &oom) == 0)
            continue;
        /* the key only: the value may be a secret */
        const char *eq = strchr(h, '=');
        return ms_errf(err, errlen, oom ? "out of memory" : "--header '%.*s...' is not one key=value"
                       " (percent-encode ',' '%%' in the value); give --header 'Authorization=Bearer%%20KEY'",
                       (int)(eq ? eq - h : 0), h);
    }
    return 0;
}

static void resolve_resource(ms_otlp_config *c)
{
    const char *v = ms_otlp_env("OTEL_RESOURCE_ATTRIBUTES");
    size_t at;
    int oom = 0;
    if (v && each_kv(v, add_resource, c, &at, &oom)) {
        fprintf(stderr, "moonspan: OTEL_RESOURCE_ATTRIBUTES is ignored: the entry %zu characters in is not"
                        " key=value (percent-encode ',' and '='); write it as key1=value1,key2=value2\n", at);
        free_resource(c);
    }
    const char *svc = ms_otlp_env("OTEL_SERVICE_NAME");
    char *k = strdup(MS_ATTR_SERVICE_NAME), *val = NULL;
    if (svc)
        val = strdup(svc);
    else {
        int found = 0;
        for (size_t i = 0; i < c->nresource; i++)
            found |= strcmp(c->resource[i].key, MS_ATTR_SERVICE_NAME) == 0;
        if (!found)
            val = strdup("unknown_service:moonspan");
    }
    if (k && val)
        add_resource(c, k, val);
    else {
        free(k);
        free(val);
    }
    /* service.name first, as people read it */
    for (size_t i = 1; i < c->nresource; i++) {
        if (strcmp(c->resource[i].key, MS_ATTR_SERVICE_NAME) == 0) {
            ms_otlp_kv t = c->resource[i];
            memmove(&c->resource[1], &c->resource[0], i * sizeof t);
            c->resource[0] = t;
        }
    }
}

int ms_otlp_config_resolve(ms_otlp_config *c, const ms_otlp_flags *f, char *err, size_t errlen)
{
    return ms_otlp_config_resolve_signal(c, f, MS_OTLP_TRACES, err, errlen);
}

int ms_otlp_config_resolve_signal(ms_otlp_config *c, const ms_otlp_flags *f, enum ms_otlp_signal signal,
                                  char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->signal = signal;
    const char *dis = ms_otlp_env("OTEL_SDK_DISABLED");
    c->disabled = dis && strcasecmp(dis, "true") == 0;
    resolve_exporter(c);
    if (resolve_url(c, f, err, errlen) || resolve_protocol(c, f, err, errlen) ||
        resolve_compression(c, f, err, errlen) || resolve_timeout(c, f, err, errlen) ||
        resolve_headers(c, f, err, errlen)) {
        ms_otlp_config_free(c);
        return -1;
    }
    resolve_resource(c);
    return 0;
}

void ms_otlp_url_for_people(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host));
    size_t head = (size_t)(host - url);
    const char *rest = at ? at + 1 : host;
    size_t rest_len = strcspn(rest, "?#");
    snprintf(out, n, "%.*s%.*s", (int)head, url, (int)rest_len, rest);
}
