/* ms_prices — model price table (see ms_prices.h).
 *
 * The table is one array of entries sorted by (name, is-prefix), so an
 * exact lookup is a binary search and the longest-prefix lookup is one
 * binary search per prefix length of the model name, longest first. It
 * is built once per process and read once per LLM call: a sorted array is
 * plenty, and loading a file rebuilds the array rather than patching it,
 * which is also what makes "on error the table is unchanged" easy. */
#include "ms_prices.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *name;     /* owned; without the trailing '*' of a prefix entry */
    int prefix;     /* 1: matches every model starting with name */
    size_t seq;     /* load order, only meaningful while merging */
    ms_price price;
} entry;

struct ms_prices {
    entry *e;       /* sorted by (name, prefix), no two with the same key */
    size_t n;
};

#define NCOLS 5
static const char *const price_col[4] = {
    "input", "output", "cache_read", "cache_write"
};

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* printf into err, when the caller gave room for a message. */
__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void free_entries(entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/* Orders a key (s, len, prefix) against an entry, as strcmp would order
 * the names, exact entries before prefix entries of the same name. */
static int key_cmp(const char *s, size_t len, int prefix, const entry *e)
{
    size_t elen = strlen(e->name);
    int c = memcmp(s, e->name, len < elen ? len : elen);
    if (c)
        return c;
    if (len != elen)
        return len < elen ? -1 : 1;
    return prefix - e->prefix;
}

/* qsort order for merging: by key, then by load order so the last one
 * loaded ends each run of equal keys. */
static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = key_cmp(x->name, strlen(x->name), x->prefix, y);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The entry with key (s, len, prefix), or NULL. */
static const entry *lookup(const ms_prices *p, const char *s, size_t len, int prefix)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(s, len, prefix, &p->e[mid]);
        if (c == 0)
            return &p->e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * Parsing
 * --------------------------------------------------------------------- */

/* Parses a price column: digits with at most one '.', or "-" when
 * `dash_ok`. Deliberately narrower than strtod, which would also take
 * "-1", "inf", "nan", "0x10" and leading junk. Returns 0 on success. */
static int parse_price(const char *s, size_t len, int dash_ok, int *dash, double *out)
{
    *dash = 0;
    if (len == 1 && s[0] == '-') {
        *dash = 1;
        return dash_ok ? 0 : -1;
    }
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    int digits = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (s[i] == '.' && dots == 0)
            dots++;
        else
            return -1;
    }
    if (digits == 0)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    /* The host never calls setlocale(LC_NUMERIC), so '.' is the point. */
    *out = strtod(buf, NULL);
    return isfinite(*out) ? 0 : -1;
}

/* Appends an entry named by a copy of s[0..len) to a growing array.
 * Returns 0 or ENOMEM (the array is then as it was). */
static int push_entry(entry **arr, size_t *n, size_t *cap,
                      const char *s, size_t len, int prefix, const ms_price *pr)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        entry *a = realloc(*arr, ncap * sizeof *a);
        if (!a)
            return ENOMEM;
        *arr = a;
        *cap = ncap;
    }
    char *name = malloc(len + 1);
    if (!name)
        return ENOMEM;
    memcpy(name, s, len);
    name[len] = 0;
    (*arr)[*n] = (entry){ .name = name, .prefix = prefix, .price = *pr };
    (*n)++;
    return 0;
}

/* Parses the whole of `text` into a new unsorted array (*out, *outn).
 * Returns 0, EINVAL with a "origin:line: problem; fix" message, or
 * ENOMEM. On error nothing is allocated. */
static int parse_text(const char *text, const char *origin, entry **out, size_t *outn,
                      char *err, size_t errlen)
{
    entry *arr = NULL;
    size_t n = 0, cap = 0;
    size_t lineno = 0;
    const char *line = text;
    int rc = 0;

    while (*line) {
        lineno++;
        const char *end = strchr(line, '\n');
        const char *next = end ? end + 1 : line + strlen(line);
        if (!end)
            end = next;
        const char *hash = memchr(line, '#', (size_t)(end - line));
        if (hash)
            end = hash;

        /* Split on blanks; count every column so the error can say how
         * many there were, keep the first NCOLS. */
        const char *tok[NCOLS];
        size_t tlen[NCOLS];
        size_t ntok = 0;
        for (const char *c = line; c < end;) {
            while (c < end && (*c == ' ' || *c == '\t' || *c == '\r'))
                c++;
            if (c == end)
                break;
            const char *t = c;
            while (c < end && *c != ' ' && *c != '\t' && *c != '\r')
                c++;
            if (ntok < NCOLS) {
                tok[ntok] = t;
                tlen[ntok] = (size_t)(c - t);
            }
            ntok++;
        }
        line = next;
        if (ntok == 0)
            continue;   /* blank or comment-only line */
        if (ntok != NCOLS) {
            set_err(err, errlen,
                    "%s:%zu: expected 5 columns (model input output cache_read cache_write), got %zu",
                    origin, lineno, ntok);
            rc = EINVAL;
            break;
        }

        const char *name = tok[0];
        size_t nlen = tlen[0];
        int prefix = name[nlen - 1] == '*';
        if (prefix)
            nlen--;
        if (memchr(name, '*', nlen)) {
            set_err(err, errlen,
                    "%s:%zu: model \"%.*s\" has a '*' before its end; "
                    "only a trailing '*' (prefix match) is allowed",
                    origin, lineno, (int)tlen[0], tok[0]);
            rc = EINVAL;
            break;
        }

        double val[4];
        for (int col = 0; col < 4 && rc == 0; col++) {
            int dash_ok = col >= 2, dash;
            if (parse_price(tok[col + 1], tlen[col + 1], dash_ok, &dash, &val[col])) {
                set_err(err, errlen,
                        "%s:%zu: %s price \"%.*s\" is not a non-negative number; "
                        "write USD per million tokens, e.g. 3.00%s",
                        origin, lineno, price_col[col], (int)tlen[col + 1], tok[col + 1],
                        dash_ok ? ", or - for \"same as input\"" : "");
                rc = EINVAL;
            } else if (dash) {
                val[col] = val[0];
            }
        }
        if (rc)
            break;

        ms_price pr = { val[0], val[1], val[2], val[3] };
        rc = push_entry(&arr, &n, &cap, name, nlen, prefix, &pr);
        if (rc) {
            set_err(err, errlen, "%s:%zu: out of memory", origin, lineno);
            break;
        }
    }

    if (rc) {
        free_entries(arr, n);
        return rc;
    }
    *out = arr;
    *outn = n;
    return 0;
}

/* ---------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

/* Contract in the header. Builds the merged array aside and swaps it in
 * only once nothing can fail any more. */
int ms_prices_load_text(ms_prices *p, const char *text, const char *origin,
                        char *err, size_t errlen)
{
    assert(p && text);
    if (!origin)
        origin = "prices";
    entry *add = NULL;
    size_t nadd = 0;
    int rc = parse_text(text, origin, &add, &nadd, err, errlen);
    if (rc)
        return rc;

    size_t total = p->n + nadd;
    entry *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) {
        free_entries(add, nadd);
        set_err(err, errlen, "%s: out of memory", origin);
        return ENOMEM;
    }
    if (p->n)
        memcpy(all, p->e, p->n * sizeof *all);
    if (nadd)
        memcpy(all + p->n, add, nadd * sizeof *all);
    free(add);  /* the names now belong to `all` */
    for (size_t i = 0; i < total; i++)
        all[i].seq = i;
    qsort(all, total, sizeof *all, entry_cmp);

    /* Keep the last of each run of equal keys: a later line or file
     * overrides an earlier one. */
    size_t kept = 0;
    for (size_t i = 0; i < total; i++) {
        if (i + 1 < total && all[i].prefix == all[i + 1].prefix &&
            strcmp(all[i].name, all[i + 1].name) == 0) {
            free(all[i].name);
            continue;
        }
        all[kept++] = all[i];
    }
    free(p->e);
    p->e = all;
    p->n = kept;
    return 0;
}

/* Contract in the header. */
int ms_prices_new(ms_prices **out)
{
    *out = NULL;
    ms_prices *p = calloc(1, sizeof *p);
    if (!p)
        return ENOMEM;
    char err[256];
    int rc = ms_prices_load_text(p, ms_prices_builtin, "prices.tsv (built in)",
                                 err, sizeof err);
    /* EINVAL here is a broken telemetry/prices.tsv: a build defect that
     * the unit tests catch, not a runtime condition. */
    assert(rc != EINVAL);
    if (rc) {
        ms_prices_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Contract in the header. Reads the whole file first so a read error
 * also leaves the table unchanged. */
int ms_prices_load_file(ms_prices *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        set_err(err, errlen, "%s: cannot open price file: %s; check the --prices path",
                path, strerror(e));
        return e;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - len < 4096 + 1) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *b = realloc(buf, ncap);
            if (!b) {
                rc = ENOMEM;
                set_err(err, errlen, "%s: out of memory reading price file", path);
                break;
            }
            buf = b;
            cap = ncap;
        }
        errno = 0;
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                rc = errno ? errno : EIO;
                set_err(err, errlen, "%s: cannot read price file: %s", path, strerror(rc));
            }
            break;
        }
    }
    fclose(f);
    if (rc == 0) {
        buf[len] = 0;
        if (memchr(buf, 0, len)) {
            set_err(err, errlen, "%s: contains a NUL byte; expected a text price table "
                    "(model input output cache_read cache_write)", path);
            rc = EINVAL;
        } else {
            rc = ms_prices_load_text(p, buf, path, err, errlen);
        }
    }
    free(buf);
    return rc;
}

/* Contract in the header: exact name first, then the longest prefix. */
const ms_price *ms_prices_find(const ms_prices *p, const char *model)
{
    if (!p || !model)
        return NULL;
    size_t len = strlen(model);
    const entry *e = lookup(p, model, len, 0);
    for (size_t l = len; !e; l--) {
        e = lookup(p, model, l, 1);
        if (l == 0)
            break;
    }
    return e ? &e->price : NULL;
}

/* Contract in the header. A NULL price (model unknown) gives NaN, so an
 * unknown cost cannot pass for $0 in a sum. */
double ms_price_cost(const ms_price *price, int64_t input, int64_t output,
                     int64_t cache_read, int64_t cache_write)
{
    if (!price)
        return NAN;
    return ((double)input * price->input + (double)output * price->output +
            (double)cache_read * price->cache_read +
            (double)cache_write * price->cache_write) / 1e6;
}

void ms_prices_free(ms_prices *p)
{
    if (!p)
        return;
    free_entries(p->e, p->n);
    free(p);
}
