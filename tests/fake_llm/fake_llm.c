/*
 * fake_llm — a loopback HTTP server that answers like the LLM providers.
 *
 * It speaks three wire formats (Anthropic Messages, OpenAI Chat Completions,
 * Ollama chat) from recorded payloads in a fixtures directory, and injects
 * faults chosen per request by headers, so each test controls its own calls.
 * The server holds no knowledge of any payload: adding a provider quirk is
 * adding a fixture file (curl's "tests as data"). See README.md next to this
 * file for the full contract.
 *
 *   fake_llm [--port N] [--fixtures DIR] [--quiet] [--exit-on-stdin-eof]
 *
 * Prints one line "port=N" on stdout once listening; serves until
 * SIGTERM/SIGINT, or until stdin reaches EOF with --exit-on-stdin-eof.
 *
 * Threading: libmicrohttpd with one thread per connection, so a delayed,
 * hanging or slowly streamed answer never holds up another connection. All
 * shared state sits under one mutex; fixtures are read once at start-up and
 * are immutable afterwards. Every wait is bounded and wakes on shutdown.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

/* ---------------------------------------------------------------- limits */

#define MAX_BODY         (8u * 1024u * 1024u) /* request body kept, bytes */
#define MAX_FIXTURE      (1024u * 1024u)      /* one fixture file, bytes */
#define MAX_FIXTURES     64                   /* files per provider dir */
#define MAX_NAME         64                   /* fixture file name length */
#define MAX_KEYS         1024                 /* distinct x-fake-key values */
#define MAX_KEY_LEN      128
#define MAX_HEADERS      128                  /* headers kept for /last */
#define MAX_DELAY_MS     600000u              /* delay=MS upper bound */
#define HANG_MS          30000u               /* how long "hang" hangs */
#define STREAM_GAP_MS    5u                   /* default pause between events */
#define MAX_GAP_MS       10000u
#define TRUNCATE_PARTS   2u                   /* events sent before "truncate" */
#define READ_BLOCK       (64u * 1024u)        /* callback buffer size */

/* A body that is not JSON, for the "malformed" fault. */
static const char MALFORMED_BODY[] =
    "{\"id\": \"fake-malformed\", \"content\": [{\"type\": \"text\", \"text\": \"cut";

/* -------------------------------------------------------------- providers */

enum { P_ANTHROPIC, P_OPENAI, P_OLLAMA, P_COUNT };

struct provider {
    const char *dir;         /* fixtures subdirectory */
    const char *route;       /* POST path */
    const char *plain;       /* fixture names: plain answer, */
    const char *stream;      /*   "stream": true, */
    const char *tools;       /*   "tools": [...] */
    const char *stream_type; /* Content-Type of the stream */
    const char *id_header;   /* response header carrying a request id */
};

static const struct provider PROVIDERS[P_COUNT] = {
    [P_ANTHROPIC] = {"anthropic", "/v1/messages", "message.json",
                     "message_stream.sse", "tool_use.json",
                     "text/event-stream; charset=utf-8", "request-id"},
    [P_OPENAI] = {"openai", "/v1/chat/completions", "chat.json",
                  "chat_stream.sse", "tool_calls.json",
                  "text/event-stream; charset=utf-8", "x-request-id"},
    [P_OLLAMA] = {"ollama", "/api/chat", "chat.json", "chat_stream.ndjson",
                  "tool_calls.json", "application/x-ndjson", NULL},
};

/* Fixture files that must exist for the server to start (besides the three
 * per provider above). Other files are optional and found by name. */
static const char *const REQUIRED_EXTRA[P_COUNT][4] = {
    [P_ANTHROPIC] = {"error_overloaded.json", "error_rate_limit.json",
                     "error_invalid_request.json", NULL},
    [P_OPENAI] = {"error_rate_limit.json", "error_invalid_request.json", NULL},
    [P_OLLAMA] = {"chat_no_usage.json", "error.json", NULL},
};

/* ---------------------------------------------------------------- fixtures */

/* One file, split into parts: SSE events (each ends at a blank line), NDJSON
 * lines, or the whole file for anything else. Part i is [ends[i-1], ends[i]). */
struct fixture {
    char name[MAX_NAME];
    char *data;
    size_t len;
    size_t nparts;
    size_t *ends;
};

struct fixture_set {
    struct fixture items[MAX_FIXTURES];
    size_t n;
};

static struct fixture_set fixtures[P_COUNT];

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static const struct fixture *fixture_find(int p, const char *name)
{
    for (size_t i = 0; i < fixtures[p].n; i++)
        if (strcmp(fixtures[p].items[i].name, name) == 0)
            return &fixtures[p].items[i];
    return NULL;
}

/* Splits f->data into parts after each occurrence of sep. */
static int fixture_split(struct fixture *f, const char *sep)
{
    size_t seplen = strlen(sep), n = 0, cap = 8;
    f->ends = malloc(cap * sizeof *f->ends);
    if (!f->ends)
        return -1;
    size_t pos = 0;
    while (pos < f->len) {
        const char *hit = memmem(f->data + pos, f->len - pos, sep, seplen);
        size_t end = hit ? (size_t)(hit - f->data) + seplen : f->len;
        /* A run of blank lines belongs to the event before it. */
        while (hit && end < f->len && f->data[end] == '\n')
            end++;
        if (n == cap) {
            size_t *grown = realloc(f->ends, 2 * cap * sizeof *f->ends);
            if (!grown)
                return -1;
            f->ends = grown;
            cap *= 2;
        }
        f->ends[n++] = end;
        pos = end;
    }
    f->nparts = n;
    return 0;
}

/* Reads path into f. SSE files are made to end with a blank line and NDJSON
 * files with a newline, so the last event is always complete. */
static int fixture_load(struct fixture *f, const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -1;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fake_llm: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || st.st_size < 0 ||
        (unsigned long long)st.st_size > MAX_FIXTURE) {
        fprintf(stderr, "fake_llm: %s: unreadable or larger than %u bytes\n",
                path, MAX_FIXTURE);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    f->data = malloc(size + 3);
    if (!f->data)
        goto out;
    f->len = fread(f->data, 1, size, fp);
    if (f->len != size || ferror(fp)) {
        fprintf(stderr, "fake_llm: %s: short read\n", path);
        goto out;
    }
    size_t namelen = strlen(name);
    if (namelen >= sizeof f->name)
        goto out;
    memcpy(f->name, name, namelen + 1);
    if (ends_with(name, ".sse")) {
        while (f->len < 2 || memcmp(f->data + f->len - 2, "\n\n", 2) != 0) {
            if (f->len >= size + 2)
                break;
            f->data[f->len++] = '\n';
        }
        rc = fixture_split(f, "\n\n");
    } else if (ends_with(name, ".ndjson")) {
        if (f->len == 0 || f->data[f->len - 1] != '\n')
            f->data[f->len++] = '\n';
        rc = fixture_split(f, "\n");
    } else {
        f->ends = malloc(sizeof *f->ends); /* one part: the whole file */
        if (f->ends) {
            f->ends[0] = f->len;
            f->nparts = f->len > 0;
            rc = 0;
        }
    }
    f->data[f->len] = '\0';
out:
    fclose(fp);
    return rc;
}

static void fixtures_free(void)
{
    for (int p = 0; p < P_COUNT; p++) {
        for (size_t i = 0; i < fixtures[p].n; i++) {
            free(fixtures[p].items[i].data);
            free(fixtures[p].items[i].ends);
        }
        fixtures[p].n = 0;
    }
}

static int fixtures_load_all(const char *root)
{
    for (int p = 0; p < P_COUNT; p++) {
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", root, PROVIDERS[p].dir) >=
            (int)sizeof dir)
            return -1;
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "fake_llm: %s: %s\n", dir, strerror(errno));
            return -1;
        }
        struct dirent *e;
        int rc = 0;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || strlen(e->d_name) >= MAX_NAME)
                continue;
            char path[PATH_MAX];
            struct stat st;
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
                    (int)sizeof path ||
                stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (fixtures[p].n == MAX_FIXTURES) {
                fprintf(stderr, "fake_llm: %s: more than %d files\n", dir,
                        MAX_FIXTURES);
                rc = -1;
                break;
            }
            struct fixture *f = &fixtures[p].items[fixtures[p].n++];
            memset(f, 0, sizeof *f);
            rc = fixture_load(f, dir, e->d_name);
        }
        closedir(d);
        if (rc != 0)
            return -1;
        const char *need[8] = {PROVIDERS[p].plain, PROVIDERS[p].stream,
                               PROVIDERS[p].tools};
        size_t nneed = 3;
        for (size_t i = 0; REQUIRED_EXTRA[p][i]; i++)
            need[nneed++] = REQUIRED_EXTRA[p][i];
        for (size_t i = 0; i < nneed; i++) {
            if (!fixture_find(p, need[i])) {
                fprintf(stderr, "fake_llm: missing fixture %s/%s\n", dir,
                        need[i]);
                return -1;
            }
        }
    }
    return 0;
}

/* -------------------------------------------------------- string building */

struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(struct sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->oom = 1; /* only ever used for short, bounded texts */
    else
        sb_add(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD. */
static void sb_json_str(struct sb *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    sb_add(b, "\"", 1);
    size_t i = 0;
    while (i < n && !b->oom) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': sb_puts(b, "\\n"); break;
            case '\r': sb_puts(b, "\\r"); break;
            case '\t': sb_puts(b, "\\t"); break;
            default: sb_printf(b, "\\u%04x", c); break;
            }
            i++;
        } else {
            size_t len = utf8_len(u + i, n - i);
            if (len == 0) {
                sb_puts(b, "\\ufffd");
                i++;
            } else {
                sb_add(b, s + i, len);
                i += len;
            }
        }
    }
    sb_add(b, "\"", 1);
}

/* ------------------------------------------------------------ shared state */

struct key_count {
    char key[MAX_KEY_LEN + 1];
    unsigned long seen;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* broadcast on shutdown */
    int stopping;
    int quiet;
    unsigned long requests;   /* provider requests */
    unsigned long connections;/* connections that carried a provider request */
    unsigned long accepted;   /* TCP connections accepted */
    unsigned long faults;     /* provider requests answered with a fault */
    unsigned long generation; /* bumped by /reset */
    unsigned long next_id;    /* request ids in response headers */
    struct key_count *keys;   /* x-fake-key counters */
    size_t nkeys;
    char *last;               /* rendered /last document */
} g = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

/* Per-connection state, owned by the connection (NOTIFY_CONNECTION). */
struct conn {
    unsigned long counted_gen; /* generation + 1 in which it was counted */
};

/* Sleeps ms milliseconds; returns early, with 0, when the server is stopping.
 * Returns 1 when the full time passed. */
static int nap_ms(unsigned int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g.mu);
    while (!g.stopping) {
        if (pthread_cond_timedwait(&g.wake, &g.mu, &t) == ETIMEDOUT)
            break;
    }
    int ok = !g.stopping;
    pthread_mutex_unlock(&g.mu);
    return ok;
}

/* -------------------------------------------------------- request bodies */

struct req {
    char *body; /* always NUL-terminated when non-NULL */
    size_t len, cap;
    int too_large;
};

static int req_append(struct req *r, const char *data, size_t n)
{
    if (r->too_large || n > MAX_BODY - r->len) {
        r->too_large = 1;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p)
            return -1;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Finds the member "key" (a quoted name followed by ':') in a JSON text and
 * returns a pointer to its value, or NULL. A simple scan, good enough for
 * the request bodies a test client sends; a quote preceded by a backslash is
 * inside a string and is skipped. */
static const char *json_member(const char *body, size_t len, const char *key,
                               const char *from)
{
    char pat[64];
    int n = snprintf(pat, sizeof pat, "\"%s\"", key);
    if (n < 0 || (size_t)n >= sizeof pat)
        return NULL;
    const char *end = body + len;
    const char *p = from ? from : body;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), pat, (size_t)n);
        if (!hit)
            return NULL;
        p = hit + n;
        if (hit > body && hit[-1] == '\\')
            continue;
        const char *v = skip_ws(p, end);
        if (v < end && *v == ':')
            return skip_ws(v + 1, end);
    }
    return NULL;
}

static int body_wants_stream(const struct req *r)
{
    if (!r->body)
        return 0;
    const char *end = r->body + r->len;
    for (const char *v = json_member(r->body, r->len, "stream", NULL); v;
         v = json_member(r->body, r->len, "stream", v)) {
        if ((size_t)(end - v) >= 4 && memcmp(v, "true", 4) == 0)
            return 1;
    }
    return 0;
}

static int body_has_tools(const struct req *r)
{
    if (!r->body)
        return 0;
    const char *end = r->body + r->len;
    for (const char *v = json_member(r->body, r->len, "tools", NULL); v;
         v = json_member(r->body, r->len, "tools", v)) {
        if (v < end && *v == '[') {
            const char *w = skip_ws(v + 1, end);
            if (w < end && *w != ']')
                return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ /last record */

struct hdr {
    char name[128];
    const char *value;
};

struct hdr_list {
    struct hdr items[MAX_HEADERS];
    size_t n;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
    (void)kind;
    struct hdr_list *l = cls;
    if (l->n == MAX_HEADERS || !key)
        return MHD_YES;
    struct hdr *h = &l->items[l->n++];
    size_t i = 0;
    for (; key[i] && i + 1 < sizeof h->name; i++)
        h->name[i] = (char)tolower((unsigned char)key[i]);
    h->name[i] = '\0';
    h->value = value ? value : "";
    return MHD_YES;
}

/* The request's headers, names lowercased (malloc'd; NULL when out of
 * memory). */
static struct hdr_list *request_headers(struct MHD_Connection *c)
{
    struct hdr_list *l = calloc(1, sizeof *l);
    if (l)
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, l);
    return l;
}

/* Renders {"method","path","headers":{lowercased: value},"body"}; repeated
 * headers are joined with ", ". Returns a malloc'd string or NULL. */
static char *render_last(struct MHD_Connection *c, const char *method,
                         const char *url, const struct req *r)
{
    struct hdr_list *l = request_headers(c);
    if (!l)
        return NULL;
    struct sb b = {0};
    sb_puts(&b, "{\"method\":");
    sb_json_str(&b, method, strlen(method));
    sb_puts(&b, ",\"path\":");
    sb_json_str(&b, url, strlen(url));
    sb_puts(&b, ",\"headers\":{");
    int first = 1;
    for (size_t i = 0; i < l->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(l->items[j].name, l->items[i].name) == 0;
        if (seen)
            continue;
        if (!first)
            sb_puts(&b, ",");
        first = 0;
        sb_json_str(&b, l->items[i].name, strlen(l->items[i].name));
        sb_puts(&b, ":");
        struct sb v = {0};
        for (size_t j = i; j < l->n; j++) {
            if (strcmp(l->items[j].name, l->items[i].name) != 0)
                continue;
            if (v.len)
                sb_puts(&v, ", ");
            sb_puts(&v, l->items[j].value);
        }
        if (v.oom)
            b.oom = 1;
        sb_json_str(&b, v.p ? v.p : "", v.len);
        free(v.p);
    }
    sb_puts(&b, "},\"body\":");
    sb_json_str(&b, r->body ? r->body : "", r->len);
    sb_puts(&b, "}\n");
    free(l);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* --------------------------------------------------------------- responses */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned int status,
                                const char *type, const char *data, size_t len,
                                enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *rs =
        MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!rs)
        return MHD_NO;
    MHD_add_response_header(rs, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, rs);
    MHD_destroy_response(rs);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned int status,
                                 const char *json)
{
    return send_buf(c, status, "application/json", json, strlen(json),
                    MHD_RESPMEM_MUST_COPY);
}

/* An error of the fake server itself (bad fault header, missing fixture),
 * distinct from any provider's error shape. */
static enum MHD_Result send_fake_error(struct MHD_Connection *c,
                                       unsigned int status, const char *msg)
{
    struct sb b = {0};
    sb_puts(&b, "{\"error\":{\"type\":\"fake_llm_error\",\"message\":");
    sb_json_str(&b, msg, strlen(msg));
    sb_puts(&b, "}}\n");
    enum MHD_Result ret =
        b.oom ? MHD_NO : send_json(c, status, b.p);
    free(b.p);
    return ret;
}

/* Streams fixture parts as separate writes, pausing between them; with
 * truncate, the connection is dropped after stop_parts parts (or after
 * byte_limit bytes of a single-part fixture). */
struct stream {
    const struct fixture *fx;
    size_t part;       /* next part to send */
    size_t off;        /* bytes of that part already sent */
    size_t stop_parts; /* parts to send in all */
    size_t byte_limit; /* bytes of the fixture to send in all */
    size_t sent;
    unsigned int gap_ms;
    int truncate;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    if (s->part >= s->stop_parts || s->sent >= s->byte_limit)
        return s->truncate ? MHD_CONTENT_READER_END_WITH_ERROR
                           : MHD_CONTENT_READER_END_OF_STREAM;
    if (s->off == 0 && s->part > 0 && s->gap_ms > 0 && !nap_ms(s->gap_ms))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t start = s->part ? s->fx->ends[s->part - 1] : 0;
    size_t plen = s->fx->ends[s->part] - start;
    size_t n = plen - s->off;
    if (n > max)
        n = max;
    if (n > s->byte_limit - s->sent)
        n = s->byte_limit - s->sent;
    memcpy(buf, s->fx->data + start + s->off, n);
    s->off += n;
    s->sent += n;
    if (s->off == plen) {
        s->part++;
        s->off = 0;
    }
    return (ssize_t)n;
}

static void add_id_header(struct MHD_Response *rs, int p)
{
    if (!PROVIDERS[p].id_header)
        return;
    pthread_mutex_lock(&g.mu);
    unsigned long id = ++g.next_id;
    pthread_mutex_unlock(&g.mu);
    char v[48];
    snprintf(v, sizeof v, "req_fake_%06lu", id);
    MHD_add_response_header(rs, PROVIDERS[p].id_header, v);
}

static enum MHD_Result send_stream(struct MHD_Connection *c, int p,
                                   const struct fixture *fx, const char *type,
                                   unsigned int gap_ms, int truncate,
                                   size_t truncate_parts)
{
    struct stream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->fx = fx;
    s->gap_ms = gap_ms;
    s->truncate = truncate;
    s->stop_parts = fx->nparts;
    s->byte_limit = fx->len;
    if (truncate) {
        if (fx->nparts > 1)
            s->stop_parts = truncate_parts < fx->nparts ? truncate_parts
                                                        : fx->nparts - 1;
        else
            s->byte_limit = fx->len / 2; /* a JSON body cut in half */
    }
    struct MHD_Response *rs = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, READ_BLOCK, stream_read, s, free);
    if (!rs) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(rs, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(rs, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    add_id_header(rs, p);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, rs);
    MHD_destroy_response(rs);
    return ret;
}

/* ------------------------------------------------------------------ faults */

enum action {
    A_NONE,
    A_STATUS, /* an error status with the provider's error body */
    A_RESET,
    A_TRUNCATE,
    A_MALFORMED,
    A_HANG,
    A_ECHO,   /* 401 whose message repeats the request's headers */
};

struct fault {
    unsigned int delay_ms;
    enum action action;
    unsigned int status;
    int no_usage;
};

/* Parses a whole unsigned decimal number no greater than max. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses x-fake-fault ("delay=50,429"). On error writes a message to err. */
static int parse_fault(const char *spec, struct fault *f, char *err,
                       size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (!spec)
        return 0;
    size_t n = strlen(spec);
    if (n > 256) {
        snprintf(err, errlen, "x-fake-fault is too long");
        return -1;
    }
    char buf[257];
    memcpy(buf, spec, n + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (*tok == '\0' || strcmp(tok, "none") == 0)
            continue;
        enum action a = A_NONE;
        unsigned int status = 0;
        unsigned long v;
        if (strncmp(tok, "delay=", 6) == 0) {
            if (parse_uint(tok + 6, MAX_DELAY_MS, &v) != 0) {
                snprintf(err, errlen,
                         "bad delay in x-fake-fault: '%.60s' (0..%u ms)", tok,
                         MAX_DELAY_MS);
                return -1;
            }
            f->delay_ms = (unsigned int)v;
            continue;
        } else if (strcmp(tok, "no_usage") == 0) {
            f->no_usage = 1;
            continue;
        } else if (strcmp(tok, "429") == 0 || strcmp(tok, "529") == 0 ||
                   strcmp(tok, "500") == 0 || strcmp(tok, "400") == 0 ||
                   strcmp(tok, "401") == 0) {
            a = A_STATUS;
            status = (unsigned int)atoi(tok);
        } else if (strcmp(tok, "reset") == 0) {
            a = A_RESET;
        } else if (strcmp(tok, "truncate") == 0) {
            a = A_TRUNCATE;
        } else if (strcmp(tok, "malformed") == 0) {
            a = A_MALFORMED;
        } else if (strcmp(tok, "hang") == 0) {
            a = A_HANG;
        } else if (strcmp(tok, "echo") == 0) {
            a = A_ECHO;
        } else {
            snprintf(err, errlen,
                     "unknown fault '%.60s' in x-fake-fault (known: delay=MS, "
                     "429, 529, 500, 400, 401, reset, truncate, malformed, "
                     "hang, echo, no_usage)",
                     tok);
            return -1;
        }
        if (f->action != A_NONE) {
            snprintf(err, errlen,
                     "x-fake-fault names two outcomes; combine at most one "
                     "with delay=MS and no_usage");
            return -1;
        }
        f->action = a;
        f->status = status;
    }
    return 0;
}

/* Counts one request carrying key; returns 1 if it is among the first
 * `times` such requests (so it gets the fault), 0 if not, -1 if the key
 * table is full. */
static int fault_due(const char *key, unsigned long times)
{
    int due = -1;
    pthread_mutex_lock(&g.mu);
    struct key_count *k = NULL;
    for (size_t i = 0; i < g.nkeys && !k; i++)
        if (strcmp(g.keys[i].key, key) == 0)
            k = &g.keys[i];
    if (!k && g.nkeys < MAX_KEYS) {
        k = &g.keys[g.nkeys++];
        snprintf(k->key, sizeof k->key, "%s", key);
        k->seen = 0;
    }
    if (k) {
        k->seen++;
        due = k->seen <= times;
    }
    pthread_mutex_unlock(&g.mu);
    return due;
}

static const char *error_kind(unsigned int status)
{
    switch (status) {
    case 400: return "error_invalid_request.json";
    case 401: return "error_authentication.json";
    case 429: return "error_rate_limit.json";
    case 529: return "error_overloaded.json";
    default: return "error_server.json";
    }
}

/* The provider's error body for status: error_<kind>.json, else error.json,
 * else error_server.json. */
static const struct fixture *error_fixture(int p, unsigned int status)
{
    const struct fixture *fx = fixture_find(p, error_kind(status));
    if (!fx)
        fx = fixture_find(p, "error.json");
    if (!fx)
        fx = fixture_find(p, "error_server.json");
    return fx;
}

/* The fixture name with "_no_usage" before its extension. */
static void no_usage_name(const char *name, char *out, size_t outlen)
{
    const char *dot = strrchr(name, '.');
    int stem = dot ? (int)(dot - name) : (int)strlen(name);
    snprintf(out, outlen, "%.*s_no_usage%s", stem, name, dot ? dot : "");
}

/* Ends the connection with a TCP reset and no response at all, so the client
 * sees ECONNRESET (curl: "Recv failure: Connection reset by peer"). MHD would
 * shutdown(SHUT_WR) first, and the client would read a clean EOF instead;
 * connect(AF_UNSPEC) on an established socket makes Linux send the RST at
 * once while the descriptor stays MHD's to close. */
static enum MHD_Result drop_connection(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg,
                         sizeof lg);
        struct sockaddr unspec;
        memset(&unspec, 0, sizeof unspec);
        unspec.sa_family = AF_UNSPEC;
        (void)connect(ci->connect_fd, &unspec, sizeof unspec);
    }
    return MHD_NO; /* MHD closes the socket without answering */
}

static void log_request(const char *method, const char *url, const char *what)
{
    if (!g.quiet)
        fprintf(stderr, "fake_llm: %s %s -> %s\n", method, url, what);
}

/* Decodes standard base64 into out (NUL-terminated); returns its length, or
 * -1 for anything that is not base64 or does not fit. */
static int base64_decode(const char *in, char *out, size_t outlen)
{
    static const char A[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned int acc = 0, bits = 0;
    size_t n = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *hit = strchr(A, *p);
        if (!hit)
            return -1;
        acc = (acc << 6) | (unsigned int)(hit - A);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= outlen)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return (int)n;
}

/* The "echo" fault: a careless gateway's 401 whose message repeats every
 * request header, and the user:password of a Basic Authorization header
 * decoded (how credentials in a URL reach the server), so the specs can
 * check that the client keeps none of it. */
static enum MHD_Result send_echo(struct MHD_Connection *c)
{
    struct hdr_list *l = request_headers(c);
    if (!l)
        return MHD_NO;
    struct sb msg = {0};
    sb_puts(&msg, "gateway refused the request; it carried");
    for (size_t i = 0; i < l->n; i++) {
        sb_printf(&msg, "%s %s: ", i ? ";" : "", l->items[i].name);
        sb_puts(&msg, l->items[i].value);
        if (strcmp(l->items[i].name, "authorization") == 0 &&
            strncasecmp(l->items[i].value, "Basic ", 6) == 0) {
            char plain[512];
            if (base64_decode(l->items[i].value + 6, plain, sizeof plain) >= 0) {
                sb_puts(&msg, " (user:password ");
                sb_puts(&msg, plain);
                sb_puts(&msg, ")");
            }
        }
    }
    free(l);
    struct sb b = {0};
    sb_puts(&b, "{\"error\":{\"type\":\"gateway_error\",\"message\":");
    sb_json_str(&b, msg.p ? msg.p : "", msg.len);
    sb_puts(&b, "}}\n");
    enum MHD_Result ret = MHD_NO;
    if (!msg.oom && !b.oom)
        ret = send_json(c, MHD_HTTP_UNAUTHORIZED, b.p);
    free(msg.p);
    free(b.p);
    return ret;
}

/* ---------------------------------------------------------------- handlers */

static void count_request(struct MHD_Connection *c, char *last)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *cs = ci ? ci->socket_context : NULL;
    pthread_mutex_lock(&g.mu);
    g.requests++;
    if (!cs) {
        g.connections++;
    } else if (cs->counted_gen != g.generation + 1) {
        cs->counted_gen = g.generation + 1;
        g.connections++;
    }
    if (last) {
        free(g.last);
        g.last = last;
    }
    pthread_mutex_unlock(&g.mu);
}

static enum MHD_Result handle_provider(struct MHD_Connection *c, int p,
                                       const char *method, const char *url,
                                       struct req *r)
{
    count_request(c, render_last(c, method, url, r));
    if (r->too_large) {
        log_request(method, url, "413");
        return send_fake_error(c, 413,
                               "request body larger than 8 MiB");
    }

    struct fault f;
    char err[256];
    const char *spec =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-fake-fault");
    if (parse_fault(spec, &f, err, sizeof err) != 0) {
        log_request(method, url, "400 (bad x-fake-fault)");
        return send_fake_error(c, MHD_HTTP_BAD_REQUEST, err);
    }
    unsigned long gap = STREAM_GAP_MS, keep = TRUNCATE_PARTS;
    const char *v =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-fake-stream-gap-ms");
    if (v && parse_uint(v, MAX_GAP_MS, &gap) != 0)
        return send_fake_error(c, MHD_HTTP_BAD_REQUEST,
                               "bad x-fake-stream-gap-ms (0..10000)");
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                    "x-fake-truncate-after");
    if (v && (parse_uint(v, 1000000, &keep) != 0 || keep == 0))
        return send_fake_error(c, MHD_HTTP_BAD_REQUEST,
                               "bad x-fake-truncate-after (1..1000000)");

    int faulted = f.action != A_NONE || f.delay_ms || f.no_usage;
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-fake-fault-times");
    if (faulted && v) {
        unsigned long times;
        if (parse_uint(v, ULONG_MAX / 2, &times) != 0)
            return send_fake_error(c, MHD_HTTP_BAD_REQUEST,
                                   "bad x-fake-fault-times (an integer >= 0)");
        const char *key =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-fake-key");
        if (!key)
            key = "";
        if (strlen(key) > MAX_KEY_LEN)
            return send_fake_error(c, MHD_HTTP_BAD_REQUEST,
                                   "x-fake-key longer than 128 bytes");
        int due = fault_due(key, times);
        if (due < 0)
            return send_fake_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                   "too many distinct x-fake-key values; "
                                   "POST /reset");
        if (!due) {
            memset(&f, 0, sizeof f);
            faulted = 0;
        }
    }
    if (faulted) {
        pthread_mutex_lock(&g.mu);
        g.faults++;
        pthread_mutex_unlock(&g.mu);
    }

    if (f.delay_ms && !nap_ms(f.delay_ms))
        return MHD_NO; /* shutting down */

    const struct provider *pv = &PROVIDERS[p];
    int stream = body_wants_stream(r);
    switch (f.action) {
    case A_HANG:
        log_request(method, url, "hang");
        nap_ms(HANG_MS);
        return drop_connection(c);
    case A_RESET:
        log_request(method, url, "reset");
        return drop_connection(c);
    case A_ECHO:
        log_request(method, url, "401 echo");
        return send_echo(c);
    case A_MALFORMED:
        log_request(method, url, "200 malformed");
        return send_buf(c, MHD_HTTP_OK, "application/json", MALFORMED_BODY,
                        sizeof MALFORMED_BODY - 1, MHD_RESPMEM_PERSISTENT);
    case A_STATUS: {
        const struct fixture *fx = error_fixture(p, f.status);
        struct MHD_Response *rs =
            fx ? MHD_create_response_from_buffer(fx->len, fx->data,
                                                 MHD_RESPMEM_PERSISTENT)
               : NULL;
        if (!rs)
            return send_fake_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                   "no error fixture for this provider");
        MHD_add_response_header(rs, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json");
        add_id_header(rs, p);
        const char *ms = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "x-fake-retry-after-ms");
        const char *sec = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      "x-fake-retry-after");
        unsigned long n;
        if ((ms && parse_uint(ms, ULONG_MAX / 2, &n) != 0) ||
            (sec && parse_uint(sec, ULONG_MAX / 2, &n) != 0)) {
            MHD_destroy_response(rs);
            return send_fake_error(c, MHD_HTTP_BAD_REQUEST,
                                   "bad x-fake-retry-after[-ms] (an integer)");
        }
        if (ms)
            MHD_add_response_header(rs, "retry-after-ms", ms);
        else if (sec)
            MHD_add_response_header(rs, "retry-after", sec);
        else if (f.status == 429)
            MHD_add_response_header(rs, "retry-after", "1");
        char what[32];
        snprintf(what, sizeof what, "%u", f.status);
        log_request(method, url, what);
        enum MHD_Result ret = MHD_queue_response(c, f.status, rs);
        MHD_destroy_response(rs);
        return ret;
    }
    case A_NONE:
    case A_TRUNCATE:
        break;
    }

    const char *name = stream ? pv->stream
                       : body_has_tools(r) ? pv->tools
                                           : pv->plain;
    const char *chosen =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-fake-fixture");
    if (chosen) {
        if (strchr(chosen, '/') || !fixture_find(p, chosen)) {
            snprintf(err, sizeof err, "x-fake-fixture: no fixture %s/%.60s",
                     pv->dir, chosen);
            log_request(method, url, err);
            return send_fake_error(c, MHD_HTTP_BAD_REQUEST, err);
        }
        name = chosen;
    }
    char nu[MAX_NAME + 16];
    if (f.no_usage && !chosen) {
        no_usage_name(name, nu, sizeof nu);
        name = nu;
    }
    const struct fixture *fx = fixture_find(p, name);
    if (!fx) {
        snprintf(err, sizeof err, "no fixture %s/%s", pv->dir, name);
        log_request(method, url, err);
        return send_fake_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
    }
    int truncate = f.action == A_TRUNCATE;
    log_request(method, url,
                truncate ? "200 truncated"
                         : stream ? "200 stream" : "200");
    if (stream || truncate)
        return send_stream(c, p, fx,
                           stream ? pv->stream_type : "application/json",
                           stream ? (unsigned int)gap : 0, truncate,
                           (size_t)keep);
    struct MHD_Response *rs =
        MHD_create_response_from_buffer(fx->len, fx->data,
                                        MHD_RESPMEM_PERSISTENT);
    if (!rs)
        return MHD_NO;
    MHD_add_response_header(rs, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    add_id_header(rs, p);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, rs);
    MHD_destroy_response(rs);
    return ret;
}

static enum MHD_Result handle_stats(struct MHD_Connection *c)
{
    char buf[256];
    pthread_mutex_lock(&g.mu);
    snprintf(buf, sizeof buf,
             "{\"requests\": %lu, \"connections\": %lu, \"accepted\": %lu, "
             "\"faults\": %lu}\n",
             g.requests, g.connections, g.accepted, g.faults);
    pthread_mutex_unlock(&g.mu);
    return send_json(c, MHD_HTTP_OK, buf);
}

static enum MHD_Result handle_reset(struct MHD_Connection *c)
{
    pthread_mutex_lock(&g.mu);
    g.requests = g.connections = g.accepted = g.faults = 0;
    g.generation++;
    g.nkeys = 0;
    free(g.last);
    g.last = NULL;
    pthread_mutex_unlock(&g.mu);
    return send_json(c, MHD_HTTP_OK, "{\"reset\": true}\n");
}

static enum MHD_Result handle_last(struct MHD_Connection *c)
{
    pthread_mutex_lock(&g.mu);
    char *copy = g.last ? strdup(g.last) : NULL;
    int none = g.last == NULL;
    pthread_mutex_unlock(&g.mu);
    if (none)
        return send_json(c, MHD_HTTP_OK,
                         "{\"path\": null, \"headers\": {}, \"body\": null}\n");
    if (!copy)
        return MHD_NO;
    return send_buf(c, MHD_HTTP_OK, "application/json", copy, strlen(copy),
                    MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)version;
    struct req *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (req_append(r, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    for (int p = 0; p < P_COUNT; p++)
        if (post && strcmp(url, PROVIDERS[p].route) == 0)
            return handle_provider(c, p, method, url, r);
    if (get && strcmp(url, "/stats") == 0)
        return handle_stats(c);
    if (post && strcmp(url, "/reset") == 0)
        return handle_reset(c);
    if (get && strcmp(url, "/last") == 0)
        return handle_last(c);
    char msg[160];
    snprintf(msg, sizeof msg, "no route for %.16s %.120s", method, url);
    log_request(method, url, "404");
    struct sb b = {0};
    sb_puts(&b, "{\"error\":{\"type\":\"not_found_error\",\"message\":");
    sb_json_str(&b, msg, strlen(msg));
    sb_puts(&b, "}}\n");
    enum MHD_Result ret = b.oom ? MHD_NO : send_json(c, MHD_HTTP_NOT_FOUND, b.p);
    free(b.p);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *r = *req_cls;
    if (r) {
        free(r->body);
        free(r);
        *req_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct conn));
        pthread_mutex_lock(&g.mu);
        g.accepted++;
        pthread_mutex_unlock(&g.mu);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* -------------------------------------------------------------------- main */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char b = 1;
    ssize_t n = write(sig_pipe[1], &b, 1);
    (void)n;
    errno = saved;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: fake_llm [--port N] [--fixtures DIR] [--quiet] "
            "[--exit-on-stdin-eof]\n"
            "  --port N             listen on 127.0.0.1:N (0, the default: "
            "any free port)\n"
            "  --fixtures DIR       recorded payloads (default: tests/fixtures,"
            " or ../tests/fixtures\n"
            "                       next to the binary)\n"
            "  --quiet              no per-request log on stderr\n"
            "  --exit-on-stdin-eof  exit when stdin reaches end of file\n"
            "Prints \"port=N\" on stdout once listening.\n");
}

/* The default fixtures directory: tests/fixtures under the current
 * directory, else ../tests/fixtures relative to the binary (build/fake_llm). */
static int default_fixtures(char *out, size_t outlen)
{
    struct stat st;
    if (stat("tests/fixtures", &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(out, outlen, "tests/fixtures");
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if (snprintf(out, outlen, "%s/../tests/fixtures", exe) >= (int)outlen)
        return -1;
    return stat(out, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int main(int argc, char **argv)
{
    unsigned long port = 0;
    const char *fixtures_dir = NULL;
    int exit_on_eof = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], 65535, &port) != 0) {
                fprintf(stderr, "fake_llm: bad --port '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc) {
            fixtures_dir = argv[++i];
        } else if (strcmp(argv[i], "--quiet") == 0) {
            g.quiet = 1;
        } else if (strcmp(argv[i], "--exit-on-stdin-eof") == 0) {
            exit_on_eof = 1;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "fake_llm: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    char dirbuf[PATH_MAX];
    if (!fixtures_dir) {
        if (default_fixtures(dirbuf, sizeof dirbuf) != 0) {
            fprintf(stderr, "fake_llm: no tests/fixtures here; pass "
                            "--fixtures DIR\n");
            return 2;
        }
        fixtures_dir = dirbuf;
    }
    if (fixtures_load_all(fixtures_dir) != 0) {
        fixtures_free();
        return 2;
    }

    g.keys = calloc(MAX_KEYS, sizeof *g.keys);
    pthread_condattr_t ca;
    if (!g.keys || pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&g.wake, &ca) != 0) {
        fprintf(stderr, "fake_llm: out of memory\n");
        free(g.keys);
        fixtures_free();
        return 1;
    }
    pthread_condattr_destroy(&ca);

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        perror("fake_llm: pipe");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_AUTO | (g.quiet ? 0 : MHD_USE_ERROR_LOG),
        (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *di =
        d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!di || di->port == 0) {
        fprintf(stderr, "fake_llm: cannot listen on 127.0.0.1:%lu\n", port);
        if (d)
            MHD_stop_daemon(d);
        free(g.keys);
        fixtures_free();
        return 1;
    }
    printf("port=%u\n", (unsigned int)di->port);
    fflush(stdout);

    struct pollfd pf[2] = {{.fd = sig_pipe[0], .events = POLLIN},
                           {.fd = STDIN_FILENO, .events = POLLIN}};
    for (;;) {
        int n = poll(pf, exit_on_eof ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || pf[0].revents)
            break;
        if (exit_on_eof && pf[1].revents) {
            char buf[4096];
            ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN) ||
                (pf[1].revents & POLLNVAL))
                break;
        }
    }

    /* Wake every delayed, hanging or streaming request, then stop. */
    pthread_mutex_lock(&g.mu);
    g.stopping = 1;
    pthread_cond_broadcast(&g.wake);
    pthread_mutex_unlock(&g.mu);
    MHD_stop_daemon(d);

    free(g.last);
    free(g.keys);
    fixtures_free();
    pthread_cond_destroy(&g.wake);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    return 0;
}
