/* ms_redact — the built-in secret shapes and the user's patterns; see
 * ms_redact.h for what is masked and how. */
#include "ms_redact.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ms_redactor {
    regex_t *user;
    int nuser, cap;
};

ms_redactor *ms_redactor_new(void)
{
    return calloc(1, sizeof(ms_redactor));
}

int ms_redactor_add(ms_redactor *r, const char *regex, char *err, size_t errlen)
{
    if (r->nuser == r->cap) {
        int cap = r->cap ? r->cap * 2 : 4;
        regex_t *p = realloc(r->user, sizeof *p * (size_t)cap);
        if (!p)
            return ms_errf(err, errlen, "out of memory");
        r->user = p;
        r->cap = cap;
    }
    regex_t *re = &r->user[r->nuser];
    int rc = regcomp(re, regex, REG_EXTENDED);
    if (rc != 0) {
        char why[200];
        regerror(rc, re, why, sizeof why);
        return ms_errf(err, errlen, "'%s' is not a POSIX extended regular expression (%s)", regex, why);
    }
    regmatch_t m;
    if (regexec(re, "", 1, &m, 0) == 0) {
        regfree(re);
        return ms_errf(err, errlen, "'%s' matches the empty text, so it would mask nothing; give a pattern "
                                    "that needs at least one character (e.g. 'ACME-[0-9]+')", regex);
    }
    r->nuser++;
    return 0;
}

int ms_redactor_patterns(const ms_redactor *r)
{
    return r ? r->nuser : 0;
}

void ms_redactor_free(ms_redactor *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nuser; i++)
        regfree(&r->user[i]);
    free(r->user);
    free(r);
}

/* --- the built-in scanner ------------------------------------------------ */

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Length of the run of s[i..n) whose bytes are alnum or in `extra`. */
static size_t run_of(const char *s, size_t i, size_t n, const char *extra)
{
    size_t j = i;
    while (j < n && (is_alnum((unsigned char)s[j]) || (s[j] && strchr(extra, s[j]))))
        j++;
    return j - i;
}

typedef struct key_shape {
    const char *prefix;
    size_t min_body; /* bytes after the prefix for it to be a key, not prose */
    const char *body;  /* bytes allowed in the body besides letters and digits */
} key_shape;

/* sk- covers OpenAI's sk-/sk-proj- and Anthropic's sk-ant-; the lengths are
 * the shortest the vendors issue, so "sk-learn" or "task-list" stay. */
static const key_shape KEYS[] = {
    {"sk-", 16, "_-"},
    {"AKIA", 16, ""},      /* AWS access key id: AKIA + 16 */
    {"ASIA", 16, ""},      /* AWS temporary key id */
    {"ghp_", 30, ""},      /* GitHub tokens */
    {"gho_", 30, ""},
    {"ghu_", 30, ""},
    {"ghs_", 30, ""},
    {"ghr_", 30, ""},
    {"github_pat_", 20, "_"},
    {"xoxb-", 10, "-"},    /* Slack tokens */
    {"xoxp-", 10, "-"},
    {"xoxa-", 10, "-"},
    {"xoxr-", 10, "-"},
    {"xoxs-", 10, "-"},
};

/* An API key starting at s[i] (i at a word start): its length, else 0. */
static size_t api_key_at(const char *s, size_t i, size_t n)
{
    for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++) {
        size_t pl = strlen(KEYS[k].prefix);
        if (n - i < pl || memcmp(s + i, KEYS[k].prefix, pl) != 0)
            continue;
        size_t body = run_of(s, i + pl, n, KEYS[k].body);
        if (body >= KEYS[k].min_body)
            return pl + body;
    }
    return 0;
}

/* "Bearer " / "Basic " at s[i]: where the credential starts and its
 * length (at least 8 bytes: "Basic plan" is prose). */
static size_t auth_at(const char *s, size_t i, size_t n, size_t *value_at)
{
    static const char *const schemes[] = {"bearer", "basic"};
    for (int k = 0; k < 2; k++) {
        size_t sl = strlen(schemes[k]);
        if (n - i <= sl || strncasecmp(s + i, schemes[k], sl) != 0 || (s[i + sl] != ' ' && s[i + sl] != '\t'))
            continue;
        size_t v = i + sl;
        while (v < n && (s[v] == ' ' || s[v] == '\t'))
            v++;
        size_t len = run_of(s, v, n, "._~+/-=");
        if (len >= 8) {
            *value_at = v;
            return len;
        }
    }
    return 0;
}

/* A name ending at s[i-1] that contains key, token, secret or passw,
 * then ':' or '=' (quotes and spaces around), then a value of 16 or more
 * key-like bytes: where the value starts and its length. */
static size_t named_secret_at(const char *s, size_t i, size_t n, size_t name_start, size_t *value_at)
{
    static const char *const words[] = {"key", "token", "secret", "passw"};
    size_t nl = i - name_start;
    int named = 0;
    for (int k = 0; k < 4 && !named; k++) {
        size_t wl = strlen(words[k]);
        for (size_t p = name_start; p + wl <= i; p++)
            if (strncasecmp(s + p, words[k], wl) == 0) {
                named = 1;
                break;
            }
    }
    if (!named || nl == 0)
        return 0;
    size_t v = i;
    if (v < n && (s[v] == '"' || s[v] == '\''))
        v++;
    while (v < n && s[v] == ' ')
        v++;
    if (v >= n || (s[v] != ':' && s[v] != '='))
        return 0;
    v++;
    while (v < n && s[v] == ' ')
        v++;
    if (v < n && (s[v] == '"' || s[v] == '\''))
        v++;
    size_t len = run_of(s, v, n, "+/=_.-");
    if (len < 16)
        return 0;
    *value_at = v;
    return len;
}

/* An e-mail address around the '@' at s[at]: its start and length. */
static size_t email_at(const char *s, size_t at, size_t n, size_t floor, size_t *start)
{
    size_t b = at;
    while (b > floor && (is_alnum((unsigned char)s[b - 1]) || strchr("._%+-", s[b - 1])))
        b--;
    if (b == at)
        return 0;
    size_t e = at + 1, last_dot = 0;
    while (e < n && (is_alnum((unsigned char)s[e]) || s[e] == '-' || s[e] == '.'))
        e++;
    while (e > at + 1 && s[e - 1] == '.') /* "mail me at a@b.org." */
        e--;
    for (size_t d = e; d > at + 1; d--)
        if (s[d - 1] == '.') {
            last_dot = d - 1;
            break;
        }
    if (last_dot <= at + 1 || e - last_dot < 3)
        return 0; /* needs a domain with a dot and a TLD of 2+ letters */
    *start = b;
    return e - b;
}

static void mask(ms_buf *out, const char *kind)
{
    ms_buf_adds(out, "[REDACTED:");
    ms_buf_adds(out, kind);
    ms_buf_addc(out, ']');
}

/* Byte classes for the scanner's fast path: most bytes are neither a
 * possible first letter of a key or scheme nor a trigger, and cost one
 * table lookup. */
enum { WORD = 1, START = 2, TRIGGER = 4 };
static unsigned char class_of[256];

static void init_classes(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if (is_alnum((unsigned char)c) || c == '_' || c == '-')
            k |= WORD;
        if (strchr("sAgxbB", c) && c)
            k |= START;
        if (c && strchr("@:=\"'", c))
            k |= TRIGGER;
        class_of[c] = k;
    }
}

/* The built-in patterns, s into out; returns the masks made. */
static size_t builtin(const char *s, size_t n, ms_buf *out)
{
    if (!class_of['s'])
        init_classes(); /* idempotent: racing threads write the same bytes */
    size_t made = 0, copied = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        unsigned char k = class_of[c];
        if (!(k & (START | TRIGGER))) {
            i++;
            continue;
        }
        size_t len, v;
        int at_word = i == 0 || !(class_of[(unsigned char)s[i - 1]] & WORD);
        if ((k & START) && at_word) {
            if (c != 'b' && c != 'B' && (len = api_key_at(s, i, n)) > 0) {
                ms_buf_add(out, s + copied, i - copied);
                mask(out, "api_key");
                made++;
                i = copied = i + len;
                continue;
            }
            if ((c == 'b' || c == 'B') && (len = auth_at(s, i, n, &v)) > 0) {
                ms_buf_add(out, s + copied, v - copied);
                mask(out, "bearer");
                made++;
                i = copied = v + len;
                continue;
            }
        }
        if (c == '@' && (len = email_at(s, i, n, copied, &v)) > 0) {
            ms_buf_add(out, s + copied, v - copied);
            mask(out, "email");
            made++;
            i = copied = v + len;
            continue;
        }
        if ((k & TRIGGER) && c != '@' && !at_word) {
            size_t name = i; /* the name before it: back over word bytes */
            while (name > copied && (class_of[(unsigned char)s[name - 1]] & WORD))
                name--;
            if ((len = named_secret_at(s, i, n, name, &v)) > 0) {
                ms_buf_add(out, s + copied, v - copied);
                mask(out, "secret");
                made++;
                i = copied = v + len;
                continue;
            }
        }
        i++;
    }
    if (made)
        ms_buf_add(out, s + copied, n - copied);
    return made;
}

/* One user pattern over s, NUL-free and NUL-terminated, into out. */
static size_t user_pattern(const regex_t *re, const char *s, size_t n, ms_buf *out)
{
    size_t made = 0, at = 0;
    regmatch_t m;
    while (at <= n && regexec(re, s + at, 1, &m, at ? REG_NOTBOL : 0) == 0) {
        if (m.rm_eo == m.rm_so) { /* an empty match inside the text: step over it */
            ms_buf_add(out, s + at, (size_t)m.rm_so + (at + (size_t)m.rm_so < n));
            at += (size_t)m.rm_so + 1;
            continue;
        }
        ms_buf_add(out, s + at, (size_t)m.rm_so);
        mask(out, "pattern");
        made++;
        at += (size_t)m.rm_eo;
    }
    if (at < n)
        ms_buf_add(out, s + at, n - at);
    return made;
}

/* One round: the built-in patterns, then each user pattern, over
 * s[0..n). Returns the masks made; the result is in *res (swapped with
 * *tmp as needed), or is s itself when nothing matched. */
static size_t round_of(const ms_redactor *r, const char *s, size_t n, ms_buf *res, ms_buf *tmp)
{
    ms_buf_reset(res);
    size_t made = builtin(s, n, res);
    const char *cur = made ? res->data : s;
    size_t curlen = made ? res->len : n;
    ms_buf piece = {0}; /* regexec needs C strings: each NUL-separated piece in turn */
    for (int k = 0; r && k < r->nuser; k++) {
        size_t got = 0;
        ms_buf_reset(tmp);
        for (size_t p = 0; p <= curlen;) {
            const char *z = memchr(cur + p, 0, curlen - p);
            size_t e = z ? (size_t)(z - cur) : curlen;
            ms_buf_reset(&piece);
            ms_buf_add(&piece, cur + p, e - p);
            ms_buf_addc(&piece, 0);
            got += user_pattern(&r->user[k], piece.oom ? "" : piece.data, e - p, tmp);
            if (e < curlen)
                ms_buf_addc(tmp, 0);
            p = e + 1;
        }
        if (piece.oom)
            tmp->oom = 1;
        if (got) {
            ms_buf t = *res;
            *res = *tmp;
            *tmp = t;
            cur = res->data ? res->data : "";
            curlen = res->len;
            made += got;
        }
    }
    ms_buf_free(&piece);
    return made;
}

/* A mask can make a new match of another pattern (a user pattern masking
 * the digits before "sk-..." puts that key at a word start), so rounds
 * repeat until one masks nothing: a few at most, as every mask but a
 * user pattern matching the markers consumes text no later one sees. */
#define MAX_ROUNDS 4

size_t ms_redact(const ms_redactor *r, const char *s, size_t n, ms_buf *out)
{
    ms_buf cur = {0}, next = {0}, tmp = {0};
    size_t made = 0;
    const char *text = s;
    size_t len = n;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        size_t got = round_of(r, text, len, &next, &tmp);
        if (!got || next.oom || tmp.oom)
            break;
        made += got;
        ms_buf t = cur;
        cur = next;
        next = t;
        text = cur.data ? cur.data : "";
        len = cur.len;
    }
    if (made)
        ms_buf_add(out, text, len);
    if (cur.oom || next.oom || tmp.oom)
        out->oom = 1;
    ms_buf_free(&cur);
    ms_buf_free(&next);
    ms_buf_free(&tmp);
    return made;
}
