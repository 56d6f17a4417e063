/* otlp_send — OTLP/HTTP requests with the exporter rules (otlp_send.h).
 * The retry statuses are OTLP's own list (opentelemetry-proto
 * docs/specification.md), not the LLM client's (scripts/llm.lua): a
 * receiver answering 500 must not be sent the batch again. */
#include "otlp_send.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_clock.h"
#include "ms_gzip.h"
#include "ms_otlp_pb.h"
#include "ms_otlp_schema.h"
#include "ms_text.h"

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    ms_buf *b = ud;
    size_t len = size * n;
    if (b->len + len > MS_OTLP_MAX_RESPONSE) /* a client reads no more than this */
        return 0;
    ms_buf_add(b, data, len);
    return b->oom ? 0 : len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    ms_buf *b = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        ms_buf_reset(b);
    ms_buf_add(b, data, len);
    return b->oom ? 0 : len;
}

/* The deadline as it stands (0: none). */
static int64_t deadline_of(const ms_otlp_sender *s)
{
    return s->deadline ? atomic_load(s->deadline) : 0;
}

static int past_deadline(const ms_otlp_sender *s)
{
    int64_t d = deadline_of(s);
    return d > 0 && ms_mono_ns() >= d;
}

/* libcurl's progress callback: non-zero aborts the transfer. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return past_deadline(ud);
}

int ms_otlp_sender_init(ms_otlp_sender *s, const ms_otlp_config *cfg, const char *verb,
                        char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->verb = verb;
    CURL *c = curl_easy_init();
    if (!c)
        return ms_errf(err, errlen, "cannot start libcurl");
    s->curl = c;
    struct curl_slist *h = NULL, *next;
    char line[256];
#define ADD(...)                                                                                   \
    do {                                                                                           \
        snprintf(line, sizeof line, __VA_ARGS__);                                                  \
        if (!(next = curl_slist_append(h, line)))                                                  \
            goto oom;                                                                              \
        h = next;                                                                                  \
    } while (0)
    ADD("Content-Type: %s", cfg->json ? MS_OTLP_MEDIA_JSON : MS_OTLP_MEDIA_PROTOBUF);
    if (cfg->gzip)
        ADD("Content-Encoding: gzip");
    ADD("Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; i < cfg->nheaders; i++) {
        ms_buf hl = {0};
        ms_buf_printf(&hl, "%s: %s", cfg->header_key[i], cfg->header_value[i]);
        next = hl.oom ? NULL : curl_slist_append(h, hl.data);
        ms_buf_free(&hl);
        if (!next)
            goto oom;
        h = next;
    }
#undef ADD
    s->headers = h;
    curl_easy_setopt(c, CURLOPT_URL, cfg->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "moonspan-otlp/" MOONSPAN_VERSION " (C; libcurl)");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s->answer);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s->answer_headers);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    return 0;
oom:
    curl_slist_free_all(h);
    ms_otlp_sender_free(s); /* the curl handle too: callers free only a sender that started */
    return ms_errf(err, errlen, "out of memory");
}

void ms_otlp_sender_free(ms_otlp_sender *s)
{
    if (s->curl)
        curl_easy_cleanup(s->curl);
    curl_slist_free_all(s->headers);
    ms_buf_free(&s->gz);
    ms_buf_free(&s->answer);
    ms_buf_free(&s->answer_headers);
    memset(s, 0, sizeof *s);
}

/* The value of header `name` in the answer's headers (NUL-terminated into
 * out), or NULL. */
static const char *answer_header(const ms_otlp_sender *s, const char *name, char *out, size_t n)
{
    const char *p = s->answer_headers.data;
    size_t k = strlen(name);
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > k && strncasecmp(p, name, k) == 0 && p[k] == ':') {
            const char *v = p + k + 1;
            size_t vl = len - k - 1;
            while (vl && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            snprintf(out, n, "%.*s", (int)vl, v);
            return out;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* Retry-After as milliseconds from now: delta seconds or an HTTP date.
 * -1 when absent or not understood. */
static long retry_after_ms(const ms_otlp_sender *s)
{
    char v[128];
    if (!answer_header(s, "Retry-After", v, sizeof v) || !*v)
        return -1;
    char *end;
    long secs = strtol(v, &end, 10);
    if (!*end && secs >= 0)
        return secs > MS_OTLP_MAX_RETRY_AFTER_MS / 1000 ? MS_OTLP_MAX_RETRY_AFTER_MS : secs * 1000;
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    double d = difftime(when, time(NULL));
    return d <= 0 ? 0 : d * 1000 > MS_OTLP_MAX_RETRY_AFTER_MS ? MS_OTLP_MAX_RETRY_AFTER_MS : (long)(d * 1000);
}

/* Sleeps ms, or until the deadline when that comes first. */
static void sleep_ms(const ms_otlp_sender *s, long ms)
{
    int64_t until = ms_mono_ns() + (int64_t)ms * 1000000;
    for (;;) {
        int64_t now = ms_mono_ns(), d = deadline_of(s);
        int64_t end = d > 0 && d < until ? d : until;
        if (now >= end)
            return;
        int64_t step = end - now < 100000000 ? end - now : 100000000; /* a deadline set meanwhile is seen */
        struct timespec ts = {(time_t)(step / 1000000000), (long)(step % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

/* The JSON string value after "key": in s (raw, escapes left as they are),
 * or len 0. A partial success is a flat object; a full JSON parser would
 * buy nothing here. */
static const char *json_member(const char *s, size_t n, const char *key, size_t *len)
{
    *len = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = memmem(s, n, pat, strlen(pat));
    if (!p)
        return NULL;
    p += strlen(pat);
    const char *end = s + n;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p < end && *p == '"') {
        const char *q = ++p;
        while (q < end && *q != '"')
            q += *q == '\\' ? 2 : 1;
        *len = q > end ? (size_t)(end - p) : (size_t)(q - p);
        return p;
    }
    const char *q = p;
    while (q < end && (*q == '-' || (*q >= '0' && *q <= '9')))
        q++;
    *len = (size_t)(q - p);
    return p;
}

/* What the signal's requests hold, singular and plural, and the JSON name
 * of its partial success's count. */
static const char *noun(const ms_otlp_sender *s, int64_t n)
{
    static const char *const names[][2] = {{"span", "spans"}, {"data point", "data points"},
                                           {"log record", "log records"}};
    return names[s->cfg->signal][n != 1];
}

/* Reads partial_success from a 2xx answer: *rejected spans and the
 * receiver's message. Protobuf or JSON by the answer's Content-Type. */
static void partial_success(ms_otlp_sender *s, int64_t *rejected, const char **msg, size_t *msg_len)
{
    *rejected = 0;
    *msg = NULL;
    *msg_len = 0;
    char ct[128];
    const char *body = s->answer.data ? s->answer.data : "";
    size_t n = s->answer.len;
    if (answer_header(s, "Content-Type", ct, sizeof ct) && strstr(ct, "protobuf")) {
        const uint8_t *p = (const uint8_t *)body, *end = p + n;
        ms_pb_field f, g;
        while (ms_pb_next(&p, end, &f) == 1) {
            if (f.number != MS_PB_EXPORT_TRACE_RESPONSE_PARTIAL_SUCCESS || f.wire != MS_PB_LEN)
                continue;
            const uint8_t *q = f.p, *qend = f.p + f.len;
            while (ms_pb_next(&q, qend, &g) == 1) {
                if (g.number == MS_PB_TRACE_PARTIAL_REJECTED_SPANS && g.wire == MS_PB_VARINT)
                    *rejected = (int64_t)g.v;
                else if (g.number == MS_PB_TRACE_PARTIAL_ERROR_MESSAGE && g.wire == MS_PB_LEN) {
                    *msg = (const char *)g.p;
                    *msg_len = g.len;
                }
            }
        }
        return;
    }
    size_t len;
    static const char *const keys[] = {"rejectedSpans", "rejectedDataPoints", "rejectedLogRecords"};
    const char *v = json_member(body, n, keys[s->cfg->signal], &len);
    if (v && len)
        *rejected = strtoll(v, NULL, 10);
    *msg = json_member(body, n, "errorMessage", msg_len);
}

/* One line for the log: "moonspan VERB: " + what, then the escaped text.
 * A failure's line is also kept as last_error; a quiet sender keeps it
 * only there. */
static void log_line(ms_otlp_sender *s, int failure, const char *what, const char *text, size_t n)
{
    ms_buf b = {0};
    ms_buf_printf(&b, "moonspan %s: ", s->verb);
    size_t from = b.len;
    ms_buf_adds(&b, what);
    if (text && n) {
        ms_buf_adds(&b, ": ");
        ms_buf_add_text_max(&b, text, n, 300, 0);
    }
    if (b.oom) {
        ms_buf_free(&b);
        return;
    }
    if (failure)
        snprintf(s->last_error, sizeof s->last_error, "%s", b.data + from);
    if (!failure || !s->quiet)
        fprintf(stderr, "%s\n", b.data);
    ms_buf_free(&b);
}

static int retryable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

int ms_otlp_sender_send(void *ud, const ms_buf *body, int64_t n)
{
    ms_otlp_sender *s = ud;
    CURL *c = s->curl;
    const char *data = body->data;
    size_t len = body->len;
    char why[512];
    if (s->cfg->gzip) {
        if (ms_gzip(body->data, body->len, &s->gz)) {
            snprintf(why, sizeof why, "cannot gzip a request; its %s are counted as failed", noun(s, 2));
            log_line(s, 1, why, NULL, 0);
            s->failed += n;
            return 0;
        }
        data = s->gz.data;
        len = s->gz.len;
    }
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    long backoff = MS_OTLP_BACKOFF_MS;
    int attempts = s->down ? 1 : MS_OTLP_ATTEMPTS;
    for (int attempt = 1;; attempt++) {
        int64_t deadline = deadline_of(s), now = ms_mono_ns();
        if (deadline > 0 && now >= deadline) {
            snprintf(why, sizeof why, "%lld %s not sent: the export deadline passed%s", (long long)n,
                     noun(s, n), attempt > 1 ? " while retrying" : "");
            log_line(s, 1, why, NULL, 0);
            s->failed += n;
            return 0;
        }
        long timeout = s->cfg->timeout_ms;
        if (deadline > 0 && (deadline - now) / 1000000 + 1 < timeout)
            timeout = (long)((deadline - now) / 1000000 + 1);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
        ms_buf_reset(&s->answer);
        ms_buf_reset(&s->answer_headers);
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK && past_deadline(s)) {
            snprintf(why, sizeof why, "%lld %s not sent: the export deadline passed during a request",
                     (long long)n, noun(s, n));
            log_line(s, 1, why, NULL, 0);
            s->failed += n;
            return 0;
        }
        long status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status >= 200 && status < 300) {
            int64_t rejected;
            const char *msg;
            size_t msg_len;
            partial_success(s, &rejected, &msg, &msg_len);
            if (rejected < 0 || rejected > n)
                rejected = rejected < 0 ? 0 : n;
            /* quiet: a line per batch would bury the script's output; the
             * exit line counts them all */
            if ((rejected || msg_len) && !(s->quiet && s->partial_said)) {
                snprintf(why, sizeof why, "the receiver accepted %lld of %lld %s and rejected %lld"
                         " (partial success; not retried%s)", (long long)(n - rejected), (long long)n,
                         noun(s, n), (long long)rejected, s->quiet ? "; later ones are counted at exit" : "");
                log_line(s, 0, why, msg, msg_len);
                s->partial_said = 1;
            }
            s->sent += n - rejected;
            s->rejected += rejected;
            s->down = 0;
            return 0;
        }
        int again = rc != CURLE_OK ? 1 : retryable(status);
        if (!again || attempt >= attempts) {
            if (rc != CURLE_OK) {
                snprintf(why, sizeof why, "%lld %s not sent after %d attempt%s: %s", (long long)n, noun(s, n), attempt,
                         attempt == 1 ? "" : "s", *errbuf ? errbuf : curl_easy_strerror(rc));
                s->down = 1;
                log_line(s, 1, why, NULL, 0);
            } else {
                snprintf(why, sizeof why, "%lld %s not sent after %d attempt%s: HTTP %ld", (long long)n,
                         noun(s, n), attempt, attempt == 1 ? "" : "s", status);
                size_t first = strcspn(s->answer.data ? s->answer.data : "", "\n");
                log_line(s, 1, why, s->answer.data, first);
            }
            s->failed += n;
            return 0;
        }
        long wait = rc == CURLE_OK ? retry_after_ms(s) : -1;
        if (wait < 0) {
            /* full jitter over the upper half: retries of many exporters spread out */
            wait = backoff / 2 + rand() % (backoff / 2 + 1);
            backoff = backoff * 2 > MS_OTLP_MAX_BACKOFF_MS ? MS_OTLP_MAX_BACKOFF_MS : backoff * 2;
        }
        s->retries++;
        sleep_ms(s, wait);
    }
}
