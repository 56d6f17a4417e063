/* ms_report — `moonspan report`, `traces` and `show` over a moonspan store.
 *
 * The report reads the filtered traces once (request latency, tokens, cost,
 * cost trend) and their spans once, through the rowid range each trace
 * points at (steps, errors, retries, estimated tokens); manual errors come
 * from span_events. Everything is grouped in C: a small hash map from a
 * step name to a growable array of durations, percentiles by selection
 * (ms_percentiles), so the whole report is two linear scans and no sort of
 * the spans. Output is built in an ms_buf and written with one fwrite.
 *
 * The store may be of an older schema, opened read-only and so not
 * upgraded (ms_store): what version 2 added (replayed calls, eval tables)
 * is looked up first (schema_has) and read only when it is there. */
#include "ms_report.h"

#include "ms_buf.h"
#include "ms_percentile.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1e6
#define NS_PER_DAY INT64_C(86400000000000)
#define TOP_ERRORS 5
#define TREND_TEXT_ROWS 31  /* cost trend rows in the text view */
#define NO_STR ((size_t)-1)

/* --- small helpers --------------------------------------------------- */


/* Prepares `sql`; on failure sets err (naming what was being read) and
 * returns -1 with *st NULL. */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
                   char *err, size_t errlen)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot read the store: %s (is this a moonspan database?)",
             sqlite3_errmsg(db));
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    return 0;
}

/* Binds :since and :glob when the statement names them (the SQL is built
 * with only the filters in use). Returns 0 or -1 with err. */
static int bind_filters(sqlite3 *db, sqlite3_stmt *st, const ms_report_opts *o,
                        char *err, size_t errlen)
{
    int i = sqlite3_bind_parameter_index(st, ":since");
    if (i > 0 && sqlite3_bind_int64(st, i, o->since_ns) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot bind --since: %s", sqlite3_errmsg(db));
    i = sqlite3_bind_parameter_index(st, ":glob");
    if (i > 0 && sqlite3_bind_text(st, i, o->name_glob, -1, SQLITE_STATIC) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot bind --name: %s", sqlite3_errmsg(db));
    return 0;
}

/* The WHERE clause over traces `t` for the filters in use, "" when none.
 * Only the used filters appear, so an unfiltered report scans traces in
 * rowid order instead of walking the start_ns index. */
static const char *where_clause(const ms_report_opts *o)
{
    int since = o->since_ns != 0, glob = o->name_glob != NULL;
    if (since && glob)
        return " WHERE t.start_ns >= :since AND t.name GLOB :glob";
    if (since)
        return " WHERE t.start_ns >= :since";
    if (glob)
        return " WHERE t.name GLOB :glob";
    return "";
}

/* Floor division, so times before 1970 still land in the right second/day. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Writes epoch ns as UTC ISO-8601 to seconds ("2024-05-01T12:00:00Z"). */
static void iso_utc(int64_t ns, char *out, size_t n)
{
    time_t s = (time_t)floor_div(ns, 1000000000);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "?");
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm): no
 * time_t/gmtime round trip per trace, and valid for any int64 day. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Milliseconds for people: fewer decimals as the value grows, seconds and
 * hours for step totals that run into millions of ms. "-" for NaN (no
 * data). */
static const char *fmt_ms(char *buf, size_t n, double ms)
{
    if (isnan(ms))
        snprintf(buf, n, "-");
    else if (ms >= 2 * 3600e3)
        snprintf(buf, n, "%.1f h", ms / 3600e3);
    else if (ms >= 100e3)
        snprintf(buf, n, "%.0f s", ms / 1e3);
    else if (ms >= 10e3)
        snprintf(buf, n, "%.1f s", ms / 1e3);
    else if (ms >= 100)
        snprintf(buf, n, "%.0f ms", ms);
    else if (ms >= 10)
        snprintf(buf, n, "%.1f ms", ms);
    else
        snprintf(buf, n, "%.2f ms", ms);
    return buf;
}

/* Dollars for people: LLM calls cost fractions of a cent, so small values
 * keep six decimals instead of rounding to a misleading $0.00. */
static const char *fmt_usd(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else if (v == 0)
        snprintf(buf, n, "$0");
    else if (fabs(v) >= 1)
        snprintf(buf, n, "$%.2f", v);
    else if (fabs(v) >= 0.01)
        snprintf(buf, n, "$%.4f", v);
    else
        snprintf(buf, n, "$%.6f", v);
    return buf;
}

/* Appends a string for a one-line text view: control characters (newlines
 * of a multi-line error message) become spaces so the table stays aligned. */
static void add_line_text(ms_buf *b, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++)
        ms_buf_addc(b, ((unsigned char)*p < 0x20) ? ' ' : *p);
}

/* Appends a JSON string, or null for NULL. */
static void json_str_or_null(ms_buf *b, const char *s)
{
    if (s)
        ms_json_str(b, s, strlen(s));
    else
        ms_buf_adds(b, "null");
}

/* "key":value members; ms_json_key handles the commas. */
static void kv_int(ms_buf *b, int *first, const char *k, int64_t v)
{
    ms_json_key(b, first, k);
    ms_json_int(b, v);
}

/* NaN (no data) becomes null. */
static void kv_num(ms_buf *b, int *first, const char *k, double v)
{
    ms_json_key(b, first, k);
    ms_json_num(b, v);
}

/* NULL becomes null. */
static void kv_str(ms_buf *b, int *first, const char *k, const char *s)
{
    ms_json_key(b, first, k);
    json_str_or_null(b, s);
}

/* `raw` is JSON text already (json(attrs) from SQLite); NULL becomes null. */
static void kv_raw(ms_buf *b, int *first, const char *k, const char *raw)
{
    ms_json_key(b, first, k);
    ms_buf_adds(b, raw ? raw : "null");
}

/* Appends `s` padded with spaces to `width` bytes (left-aligned). */
static void add_padded(ms_buf *b, const char *s, int width)
{
    int len = (int)strlen(s);
    ms_buf_adds(b, s);
    for (int i = len; i < width; i++)
        ms_buf_addc(b, ' ');
}

/* Writes the whole buffer to `out`; -1 with err on OOM or a write error. */
static int flush_buf(ms_buf *b, FILE *out, char *err, size_t errlen)
{
    if (b->oom)
        return ms_errf(err, errlen, "out of memory while formatting the output");
    if (b->len && fwrite(b->data, 1, b->len, out) != b->len)
        return ms_errf(err, errlen, "cannot write the output: %s", strerror(errno));
    if (fflush(out) != 0)
        return ms_errf(err, errlen, "cannot write the output: %s", strerror(errno));
    return 0;
}

/* Opens a read transaction unless the caller already has one open (then
 * *own stays 0 and the caller's transaction is left alone). Returns 0 or
 * -1 with err. */
static int begin_read(sqlite3 *db, int *own, char *err, size_t errlen)
{
    *own = 0;
    if (!sqlite3_get_autocommit(db))
        return 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot read the store: %s", sqlite3_errmsg(db));
    *own = 1;
    return 0;
}

/* Ends what begin_read opened. Nothing was written, so COMMIT cannot lose
 * data; a failure is still reported, since the connection would be left
 * inside a transaction. Returns 0 or -1 with err. */
static int end_read(sqlite3 *db, int own, char *err, size_t errlen)
{
    if (own && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return ms_errf(err, errlen, "cannot end the read: %s", sqlite3_errmsg(db));
    return 0;
}

/* Copies column `col` (text) into the arena; NO_STR when NULL. */
static size_t arena_col(ms_buf *arena, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    if (!s)
        return NO_STR;
    size_t off = arena->len;
    ms_buf_add(arena, s, (size_t)sqlite3_column_bytes(st, col));
    ms_buf_addc(arena, 0);
    return off;
}

/* The string at `off` in the arena, or NULL for NO_STR. */
static const char *arena_str(const ms_buf *arena, size_t off)
{
    return off == NO_STR || !arena->data ? NULL : arena->data + off;
}

/* A REAL column; NaN (null, "-") when NULL. */
static double col_num(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

/* Whether `table` exists and, when `column` is not NULL, has that column.
 * Lets the readers work on a store of an older schema. Returns 1, 0, or
 * -1 with err. */
static int schema_has(sqlite3 *db, const char *table, const char *column,
                      char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prepare(db, column ? "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2"
                           : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                &st, err, errlen))
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (column)
        sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    int ret;
    if (sqlite3_step(st) == SQLITE_ROW)
        ret = sqlite3_column_int64(st, 0) > 0;
    else
        ret = ms_errf(err, errlen, "cannot read the schema: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

/* --- string-keyed hash map ------------------------------------------- */

/* Maps byte strings to dense indices 0..n-1 (the caller keeps per-key data
 * in its own arrays, indexed the same way). Open addressing, power-of-two
 * table, load <= 1/2. Keys are copied once, on first sight, so the hot
 * lookup path allocates nothing. */
typedef struct strmap_ent {
    uint64_t hash;
    char *key;
    size_t klen;
} strmap_ent;

typedef struct strmap {
    strmap_ent *ent;
    size_t n, cap;
    uint32_t *slot;   /* 0 = empty, else entry index + 1 */
    size_t nslot;
} strmap;

/* FNV-1a: names are short, so a simple byte-at-a-time hash is enough. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

/* Frees the keys and tables; the map is empty and reusable afterwards. */
static void strmap_free(strmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->ent[i].key);
    free(m->ent);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* Doubles the slot table and re-inserts every entry. Returns 0 or -1 (OOM). */
static int strmap_rehash(strmap *m)
{
    size_t nslot = m->nslot ? m->nslot * 2 : 64;
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->ent[i].hash & (nslot - 1);
        while (slot[j])
            j = (j + 1) & (nslot - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(m->slot);
    m->slot = slot;
    m->nslot = nslot;
    return 0;
}

/* Index of key `k[0..klen)`, inserting it when new (*created set to 1).
 * Returns -1 on allocation failure. */
static long strmap_get(strmap *m, const char *k, size_t klen, int *created)
{
    *created = 0;
    if ((m->n + 1) * 2 > m->nslot && strmap_rehash(m) != 0)
        return -1;
    uint64_t h = hash_bytes(k, klen);
    size_t j = h & (m->nslot - 1);
    while (m->slot[j]) {
        strmap_ent *e = &m->ent[m->slot[j] - 1];
        if (e->hash == h && e->klen == klen && memcmp(e->key, k, klen) == 0)
            return (long)(m->slot[j] - 1);
        j = (j + 1) & (m->nslot - 1);
    }
    if (m->n == UINT32_MAX - 1)
        return -1;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        strmap_ent *ent = realloc(m->ent, cap * sizeof *ent);
        if (!ent)
            return -1;
        m->ent = ent;
        m->cap = cap;
    }
    char *key = malloc(klen + 1);
    if (!key)
        return -1;
    memcpy(key, k, klen);
    key[klen] = 0;
    m->ent[m->n] = (strmap_ent){h, key, klen};
    m->slot[j] = (uint32_t)(m->n + 1);
    *created = 1;
    return (long)m->n++;
}

/* Makes room for one more element in a growable array of `size`-byte
 * elements. Returns 0 or -1 (OOM; the array is unchanged). */
static int grow_array(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* --- report data ------------------------------------------------------ */

typedef struct step_stat {
    const char *name;   /* owned by the steps strmap */
    double *v;          /* durations in ns, freed once the percentiles are known */
    size_t n, cap;
    double total_ns;
    double p50, p95, p99; /* ms */
} step_stat;

typedef struct err_stat {
    const char *type, *message; /* point into the errors strmap's key */
    int64_t count;
} err_stat;

typedef struct trend_row {
    int64_t key;        /* day number since the epoch, or year*12 + month-1 */
    int64_t requests;
    int64_t priced;     /* requests with a known cost */
    int64_t unknown;    /* llm calls with no price */
    double cost;
} trend_row;

/* A failing case of an eval run; strings are offsets into report.ev_arena. */
typedef struct eval_fail {
    size_t case_id, reason, trace_id;
    int64_t repeat;
} eval_fail;

/* The latest finished run of one suite. */
typedef struct eval_sum {
    int64_t id, start_ns, cases, passed;
    double pass_rate, threshold, p50, p95, cost, replayed;
    size_t suite, status;       /* offsets into report.ev_arena */
    size_t fail0, nfail;        /* report.fails[fail0 .. fail0 + nfail) */
} eval_sum;

typedef struct report {
    int64_t requests;
    double lat[4];      /* p50, p95, p99, max in ms */
    int64_t first_start, last_start;
    int64_t in_tok, out_tok, cache_read, cache_write;
    double cost_total;  /* live spend: replayed calls excluded */
    double cost_replayed; /* recorded cost of replayed calls (not spent) */
    int64_t priced_requests, unknown_cost_calls;
    int64_t error_requests, error_count;

    strmap step_names;
    step_stat *steps;
    size_t nsteps, capsteps;
    double steps_total_ns;

    strmap err_keys;
    err_stat *errs;
    size_t nerrs, caperrs;

    int64_t llm_tokens, llm_tokens_est;
    int64_t retried, retry_ok;

    trend_row *trend;
    size_t ntrend, captrend;
    size_t trend_last;  /* index of the last period hit: traces come mostly in time order */

    ms_buf ev_arena;
    eval_sum *evals;
    size_t nevals, capevals;
    eval_fail *fails;
    size_t nfails, capfails;
} report;

/* Frees everything a report owns (safe on a partly filled report). */
static void report_free(report *r)
{
    for (size_t i = 0; i < r->nsteps; i++)
        free(r->steps[i].v);
    free(r->steps);
    free(r->errs);
    free(r->trend);
    free(r->evals);
    free(r->fails);
    ms_buf_free(&r->ev_arena);
    strmap_free(&r->step_names);
    strmap_free(&r->err_keys);
}

/* The trend row for period `key`, inserted in key order when new. NULL on
 * OOM. Periods are few (days of history), so a sorted array with a
 * last-hit cache beats a map. */
static trend_row *trend_at(report *r, int64_t key)
{
    if (r->ntrend && r->trend[r->trend_last].key == key)
        return &r->trend[r->trend_last];
    size_t lo = 0, hi = r->ntrend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->trend[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == r->ntrend || r->trend[lo].key != key) {
        if (grow_array((void **)&r->trend, &r->captrend, r->ntrend, sizeof *r->trend))
            return NULL;
        memmove(&r->trend[lo + 1], &r->trend[lo], (r->ntrend - lo) * sizeof *r->trend);
        r->trend[lo] = (trend_row){.key = key};
        r->ntrend++;
    }
    r->trend_last = lo;
    return &r->trend[lo];
}

/* Period key of a trace start: day number, or months since year 0. */
static int64_t period_key(int64_t start_ns, int by_month)
{
    int64_t day = floor_div(start_ns, NS_PER_DAY);
    if (!by_month)
        return day;
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    return y * 12 + (m - 1);
}

/* "YYYY-MM-DD" or "YYYY-MM" for a period key. */
static void period_name(int64_t key, int by_month, char *out, size_t n)
{
    if (by_month) {
        int64_t y = floor_div(key, 12);
        snprintf(out, n, "%04lld-%02d", (long long)y, (int)(key - y * 12) + 1);
    } else {
        int64_t y;
        unsigned m, d;
        civil_from_days(key, &y, &m, &d);
        snprintf(out, n, "%04lld-%02u-%02u", (long long)y, m, d);
    }
}

/* Pass 1 over the filtered traces: request latency, tokens, cost, error
 * rate and the cost trend. Cost is live spend: the trace's replayed part
 * (traces.replayed_cost_usd, schema v2) is taken out of it and counted
 * apart, so replays add nothing to the spend or its trend, and the spans
 * need not be read for it. Returns 0 or -1 with err. */
static int scan_traces(sqlite3 *db, const ms_report_opts *o, report *r,
                       char *err, size_t errlen)
{
    int replay_col = schema_has(db, "traces", "replayed_cost_usd", err, errlen);
    if (replay_col < 0)
        return -1;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT t.start_ns, t.duration_ns, t.status = 'error', t.input_tokens,"
             " t.output_tokens, t.cache_read_tokens, t.cache_write_tokens,"
             " t.cost_usd, t.unknown_cost_calls, %s FROM traces t%s",
             replay_col ? "t.replayed_cost_usd" : "NULL", where_clause(o));
    sqlite3_stmt *st;
    if (prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1;
    double *dur = NULL;
    size_t cap = 0;
    if (bind_filters(db, st, o, err, errlen))
        goto done;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)&dur, &cap, (size_t)r->requests, sizeof *dur)) {
            ms_errf(err, errlen, "out of memory reading traces");
            goto done;
        }
        int64_t start = sqlite3_column_int64(st, 0);
        dur[r->requests] = (double)sqlite3_column_int64(st, 1);
        if (r->requests == 0 || start < r->first_start)
            r->first_start = start;
        if (r->requests == 0 || start > r->last_start)
            r->last_start = start;
        r->requests++;
        r->error_requests += sqlite3_column_int(st, 2);
        r->in_tok += sqlite3_column_int64(st, 3);
        r->out_tok += sqlite3_column_int64(st, 4);
        r->cache_read += sqlite3_column_int64(st, 5);
        r->cache_write += sqlite3_column_int64(st, 6);
        int priced = sqlite3_column_type(st, 7) != SQLITE_NULL;
        double cost = priced ? sqlite3_column_double(st, 7) : 0;
        int64_t unknown = sqlite3_column_int64(st, 8);
        if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
            /* a trace whose priced calls were all replayed sums the same
             * values in the same order for both columns: exactly 0 left */
            double replayed = sqlite3_column_double(st, 9);
            cost -= replayed;
            r->cost_replayed += replayed;
        }
        r->cost_total += cost;
        r->priced_requests += priced;
        r->unknown_cost_calls += unknown;
        trend_row *tr = trend_at(r, period_key(start, o->by_month));
        if (!tr) {
            ms_errf(err, errlen, "out of memory reading traces");
            goto done;
        }
        tr->requests++;
        tr->priced += priced;
        tr->unknown += unknown;
        tr->cost += cost;
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    static const double qs[4] = {50, 95, 99, 100};
    if (ms_percentiles(dur, (size_t)r->requests, qs, 4, r->lat) != 0) {
        ms_errf(err, errlen, "percentile computation failed");
        goto done;
    }
    for (int i = 0; i < 4; i++)
        r->lat[i] = round(r->lat[i]) / NS_PER_MS; /* whole ns, as for steps */
    ret = 0;
done:
    free(dur);
    sqlite3_finalize(st);
    return ret;
}

/* Counts one error of (type, message) in the top-errors map. `key` is a
 * scratch buffer reused across calls. Returns 0 or -1 (OOM). */
static int count_error(report *r, ms_buf *key, const char *type, const char *msg)
{
    /* key = type NUL message, so "a:b"/"c" and "a"/"b:c" stay apart */
    ms_buf_reset(key);
    ms_buf_adds(key, type ? type : "");
    ms_buf_addc(key, 0);
    ms_buf_adds(key, msg ? msg : "");
    if (key->oom)
        return -1;
    int created;
    long i = strmap_get(&r->err_keys, key->data, key->len, &created);
    if (i < 0)
        return -1;
    if (created) {
        if (grow_array((void **)&r->errs, &r->caperrs, r->nerrs, sizeof *r->errs))
            return -1;
        const char *k = r->err_keys.ent[i].key;
        r->errs[r->nerrs++] = (err_stat){k, k + strlen(k) + 1, 0};
    }
    r->errs[i].count++;
    r->error_count++;
    return 0;
}

/* Pass 2 over the spans of the filtered traces (rowid ranges, no index):
 * step durations by name, raised errors, retries, estimated tokens.
 * Returns 0 or -1 with err. */
static int scan_spans(sqlite3 *db, const ms_report_opts *o, report *r,
                      char *err, size_t errlen)
{
    char sql[640];
    /* CROSS JOIN pins traces as the outer loop so each trace's spans are
     * one rowid range seek. */
    snprintf(sql, sizeof sql,
             "SELECT s.rowid = t.first_span, s.name, s.duration_ns, s.error_own,"
             " s.input_tokens, s.output_tokens, s.usage_estimated, s.retries,"
             " s.retry_succeeded, s.error_type, s.error_message"
             " FROM traces t CROSS JOIN spans s"
             " ON s.rowid BETWEEN t.first_span AND t.first_span + t.span_count - 1%s",
             where_clause(o));
    sqlite3_stmt *st;
    if (prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1;
    ms_buf key = {0};
    if (bind_filters(db, st, o, err, errlen))
        goto done;
    long last = -1; /* last step hit: names repeat in runs (loops, retries) */
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int is_root = sqlite3_column_int(st, 0);
        if (!is_root) {
            const char *name = (const char *)sqlite3_column_text(st, 1);
            size_t nlen = (size_t)sqlite3_column_bytes(st, 1);
            if (!name)
                name = "";
            long i;
            if (last >= 0 && r->step_names.ent[last].klen == nlen &&
                memcmp(r->step_names.ent[last].key, name, nlen) == 0) {
                i = last;
            } else {
                int created;
                i = strmap_get(&r->step_names, name, nlen, &created);
                if (i < 0)
                    goto oom;
                if (created) {
                    if (grow_array((void **)&r->steps, &r->capsteps, r->nsteps,
                                   sizeof *r->steps))
                        goto oom;
                    r->steps[r->nsteps++] =
                        (step_stat){.name = r->step_names.ent[i].key};
                }
                last = i;
            }
            step_stat *s = &r->steps[i];
            if (grow_array((void **)&s->v, &s->cap, s->n, sizeof *s->v))
                goto oom;
            double d = (double)sqlite3_column_int64(st, 2);
            s->v[s->n++] = d;
            s->total_ns += d;
        }
        if (sqlite3_column_int(st, 3)) {
            if (count_error(r, &key, (const char *)sqlite3_column_text(st, 9),
                            (const char *)sqlite3_column_text(st, 10)))
                goto oom;
        }
        int64_t tok = sqlite3_column_int64(st, 4) + sqlite3_column_int64(st, 5);
        r->llm_tokens += tok;
        if (sqlite3_column_int(st, 6))
            r->llm_tokens_est += tok;
        if (sqlite3_column_int64(st, 7) > 0) {
            r->retried++;
            r->retry_ok += sqlite3_column_int(st, 8) == 1;
        }
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read spans: %s", sqlite3_errmsg(db));
        goto done;
    }
    ret = 0;
    goto done;
oom:
    ms_errf(err, errlen, "out of memory reading spans");
done:
    ms_buf_free(&key);
    sqlite3_finalize(st);
    return ret;
}

/* Manual errors (ctx:add_error) are 'error' events with typed columns
 * error_type/error_message (v3); stores before v3 kept them as attrs
 * {"type":..., "message":...}. Events are few, so they are scanned once
 * and joined to traces by primary key (CROSS JOIN keeps that order; the
 * other order would rescan span_events per trace). */
static int scan_manual_errors(sqlite3 *db, const ms_report_opts *o, report *r,
                              char *err, size_t errlen)
{
    int typed = schema_has(db, "span_events", "error_type", err, errlen);
    if (typed < 0)
        return -1;
    char sql[640];
    snprintf(sql, sizeof sql,
             typed ? "SELECT e.error_type, e.error_message"
                     " FROM span_events e CROSS JOIN traces t ON t.id = e.trace_row"
                     " AND e.name = 'error' AND e.error_type IS NOT NULL%s"
                   : "SELECT coalesce(CASE WHEN json_valid(e.attrs)"
                     " THEN json_extract(e.attrs, '$.type') END, 'manual'),"
                     " CASE WHEN json_valid(e.attrs) THEN json_extract(e.attrs, '$.message') END"
                     " FROM span_events e CROSS JOIN traces t ON t.id = e.trace_row"
                     " AND e.name = 'error'%s",
             where_clause(o));
    sqlite3_stmt *st;
    if (prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1;
    ms_buf key = {0};
    if (bind_filters(db, st, o, err, errlen))
        goto done;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count_error(r, &key, (const char *)sqlite3_column_text(st, 0),
                        (const char *)sqlite3_column_text(st, 1))) {
            ms_errf(err, errlen, "out of memory reading error events");
            goto done;
        }
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read span events: %s", sqlite3_errmsg(db));
        goto done;
    }
    ret = 0;
done:
    ms_buf_free(&key);
    sqlite3_finalize(st);
    return ret;
}

/* The evals section: the latest finished run of each suite (started at or
 * after --since; --name is about trace names and does not apply), and its
 * failing results with a reason each: the error when the case raised, else
 * the first scorer that scored under 1, as "name: reason". Nothing when
 * the store predates eval tables. Returns 0 or -1 with err. */
static int scan_evals(sqlite3 *db, const ms_report_opts *o, report *r,
                      char *err, size_t errlen)
{
    int has = schema_has(db, "eval_runs", NULL, err, errlen);
    if (has <= 0)
        return has;
    if ((has = schema_has(db, "eval_results", NULL, err, errlen)) <= 0)
        return has;
    const char *since = o->since_ns ? " AND start_ns >= :since" : "";
    char sql[1024];
    /* the newest run of each suite by the (suite, start_ns) index; id
     * breaks ties between runs started in the same nanosecond */
    snprintf(sql, sizeof sql,
             "SELECT e.id, e.suite, e.start_ns, e.cases, e.passed, e.pass_rate, e.threshold,"
             " e.status, e.p50_ms, e.p95_ms, e.cost_usd, e.replayed_cost_usd"
             " FROM eval_runs e WHERE e.id = (SELECT id FROM eval_runs WHERE suite = e.suite"
             " AND status IN ('passed', 'failed')%s ORDER BY start_ns DESC, id DESC LIMIT 1)"
             " ORDER BY e.suite",
             since);
    sqlite3_stmt *st;
    if (prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1, rc;
    ms_buf *a = &r->ev_arena;
    if (bind_filters(db, st, o, err, errlen))
        goto done;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)&r->evals, &r->capevals, r->nevals, sizeof *r->evals))
            goto oom;
        eval_sum *e = &r->evals[r->nevals++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(st, 0);
        e->suite = arena_col(a, st, 1);
        e->start_ns = sqlite3_column_int64(st, 2);
        e->cases = sqlite3_column_int64(st, 3);
        e->passed = sqlite3_column_int64(st, 4);
        e->pass_rate = col_num(st, 5);
        e->threshold = col_num(st, 6);
        e->status = arena_col(a, st, 7);
        e->p50 = col_num(st, 8);
        e->p95 = col_num(st, 9);
        e->cost = col_num(st, 10);
        e->replayed = col_num(st, 11);
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read eval runs: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (r->nevals == 0) {
        ret = 0;
        goto done;
    }

    /* json_each over text that is not JSON raises; such scores give no reason */
    if (prepare(db,
                "SELECT r.case_id, r.repeat_index, r.trace_id, coalesce(r.error,"
                " (SELECT coalesce(json_extract(j.value, '$.name'), 'scorer') || CASE"
                "   WHEN json_extract(j.value, '$.reason') IS NOT NULL"
                "   THEN ': ' || json_extract(j.value, '$.reason')"
                "   ELSE ' scored ' || json_extract(j.value, '$.score') END"
                "  FROM json_each(CASE WHEN json_valid(r.scores) AND json_type(r.scores) = 'array'"
                "   THEN r.scores ELSE '[]' END) j"
                "  WHERE json_type(j.value) = 'object' AND json_extract(j.value, '$.score') < 1"
                "  ORDER BY j.key LIMIT 1))"
                " FROM eval_results r WHERE r.eval_run = ?1 AND r.pass = 0"
                " ORDER BY r.case_id, r.repeat_index, r.id",
                &st, err, errlen))
        goto done;
    for (size_t i = 0; i < r->nevals; i++) {
        eval_sum *e = &r->evals[i];
        e->fail0 = r->nfails;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, e->id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (grow_array((void **)&r->fails, &r->capfails, r->nfails, sizeof *r->fails))
                goto oom;
            eval_fail *f = &r->fails[r->nfails++];
            f->case_id = arena_col(a, st, 0);
            f->repeat = sqlite3_column_int64(st, 1);
            f->trace_id = arena_col(a, st, 2);
            f->reason = arena_col(a, st, 3);
            e->nfail++;
        }
        if (rc != SQLITE_DONE) {
            ms_errf(err, errlen, "cannot read eval results: %s", sqlite3_errmsg(db));
            goto done;
        }
    }
    if (a->oom)
        goto oom;
    ret = 0;
    goto done;
oom:
    ms_errf(err, errlen, "out of memory reading eval runs");
done:
    sqlite3_finalize(st);
    return ret;
}

/* Steps by total time, most first; ties by name, so output is stable. */
static int cmp_steps(const void *a, const void *b)
{
    const step_stat *x = a, *y = b;
    if (x->total_ns != y->total_ns)
        return x->total_ns < y->total_ns ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Errors by count, most first; ties by type then message. */
static int cmp_errs(const void *a, const void *b)
{
    const err_stat *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int c = strcmp(x->type, y->type);
    return c ? c : strcmp(x->message, y->message);
}

/* Percentiles per step, then the orderings the output wants. The step and
 * error arrays are sorted in place, so their indices no longer match the
 * strmaps afterwards (nothing looks them up again). */
static int finish_report(report *r, char *err, size_t errlen)
{
    static const double qs[3] = {50, 95, 99};
    for (size_t i = 0; i < r->nsteps; i++) {
        step_stat *s = &r->steps[i];
        double out[3];
        if (ms_percentiles(s->v, s->n, qs, 3, out) != 0)
            return ms_errf(err, errlen, "percentile computation failed");
        /* to whole ns first: the inputs are whole ns, finer digits are
         * interpolation noise (879.99999999999989 instead of 880) */
        s->p50 = round(out[0]) / NS_PER_MS;
        s->p95 = round(out[1]) / NS_PER_MS;
        s->p99 = round(out[2]) / NS_PER_MS;
        r->steps_total_ns += s->total_ns;
        free(s->v);
        s->v = NULL;
    }
    if (r->nsteps)
        qsort(r->steps, r->nsteps, sizeof *r->steps, cmp_steps);
    if (r->nerrs)
        qsort(r->errs, r->nerrs, sizeof *r->errs, cmp_errs);
    return 0;
}

/* The step with the highest p95; ties go to the one with more total time
 * (the earlier in the sorted array). NULL when there are no steps. */
static const step_stat *slowest_step(const report *r)
{
    const step_stat *best = NULL;
    for (size_t i = 0; i < r->nsteps; i++)
        if (!best || r->steps[i].p95 > best->p95)
            best = &r->steps[i];
    return best;
}

/* a / b, or NaN (JSON null, "-" in text) when there is nothing to divide by. */
static double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

/* --- report output ---------------------------------------------------- */

#define EV(off) arena_str(&r->ev_arena, (off))

/* The "evals" array: the latest run of each suite with every failing case. */
static void evals_json(const report *r, ms_buf *b)
{
    char iso[40];
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->nevals; i++) {
        const eval_sum *e = &r->evals[i];
        int g = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        kv_str(b, &g, "suite", EV(e->suite));
        kv_int(b, &g, "eval_run", e->id);
        iso_utc(e->start_ns, iso, sizeof iso);
        kv_str(b, &g, "start", iso);
        kv_int(b, &g, "cases", e->cases);
        kv_int(b, &g, "passed", e->passed);
        kv_num(b, &g, "pass_rate", e->pass_rate);
        kv_num(b, &g, "threshold", e->threshold);
        kv_str(b, &g, "status", EV(e->status));
        kv_num(b, &g, "p50_ms", e->p50);
        kv_num(b, &g, "p95_ms", e->p95);
        kv_num(b, &g, "cost_usd", e->cost);
        kv_num(b, &g, "replayed_cost_usd", e->replayed);
        ms_json_key(b, &g, "failing");
        ms_buf_addc(b, '[');
        for (size_t k = 0; k < e->nfail; k++) {
            const eval_fail *f = &r->fails[e->fail0 + k];
            int h = 1;
            if (k)
                ms_buf_addc(b, ',');
            ms_buf_addc(b, '{');
            kv_str(b, &h, "case_id", EV(f->case_id));
            kv_int(b, &h, "repeat_index", f->repeat);
            kv_str(b, &h, "error_or_reason", EV(f->reason));
            kv_str(b, &h, "trace_id", EV(f->trace_id));
            ms_buf_addc(b, '}');
        }
        ms_buf_adds(b, "]}");
    }
    ms_buf_addc(b, ']');
}

/* The report as one JSON object: window, requests, steps, slowest_step,
 * tokens, cost, errors, retries, cost_trend, evals (the keys `report
 * --json` promises). Missing data is null, never 0. */
static void report_json(const report *r, const ms_report_opts *o, ms_buf *b)
{
    char iso[40];
    double n = (double)r->requests;
    int f = 1, g;
    ms_buf_addc(b, '{');

    ms_json_key(b, &f, "window");
    g = 1;
    ms_buf_addc(b, '{');
    iso_utc(o->since_ns, iso, sizeof iso);
    if (o->since_ns)
        kv_int(b, &g, "since_ns", o->since_ns);
    else
        kv_raw(b, &g, "since_ns", NULL);
    kv_str(b, &g, "since", o->since_ns ? iso : NULL);
    kv_str(b, &g, "name_glob", o->name_glob);
    kv_str(b, &g, "group_by", o->by_month ? "month" : "day");
    iso_utc(r->first_start, iso, sizeof iso);
    kv_str(b, &g, "first_start", r->requests ? iso : NULL);
    iso_utc(r->last_start, iso, sizeof iso);
    kv_str(b, &g, "last_start", r->requests ? iso : NULL);
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "requests");
    g = 1;
    ms_buf_addc(b, '{');
    kv_int(b, &g, "count", r->requests);
    ms_json_key(b, &g, "latency_ms");
    {
        static const char *names[4] = {"p50", "p95", "p99", "max"};
        int h = 1;
        ms_buf_addc(b, '{');
        for (int i = 0; i < 4; i++)
            kv_num(b, &h, names[i], r->lat[i]);
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "steps");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->nsteps; i++) {
        const step_stat *s = &r->steps[i];
        if (i)
            ms_buf_addc(b, ',');
        g = 1;
        ms_buf_addc(b, '{');
        kv_str(b, &g, "name", s->name);
        kv_int(b, &g, "count", (int64_t)s->n);
        kv_num(b, &g, "p50_ms", s->p50);
        kv_num(b, &g, "p95_ms", s->p95);
        kv_num(b, &g, "p99_ms", s->p99);
        kv_num(b, &g, "total_ms", s->total_ns / NS_PER_MS);
        kv_num(b, &g, "share", ratio(s->total_ns, r->steps_total_ns));
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');

    ms_json_key(b, &f, "slowest_step");
    const step_stat *slow = slowest_step(r);
    if (slow) {
        g = 1;
        ms_buf_addc(b, '{');
        kv_str(b, &g, "name", slow->name);
        kv_num(b, &g, "p95_ms", slow->p95);
        ms_buf_addc(b, '}');
    } else {
        ms_buf_adds(b, "null");
    }

    ms_json_key(b, &f, "tokens");
    g = 1;
    ms_buf_addc(b, '{');
    kv_num(b, &g, "avg_input", ratio((double)r->in_tok, n));
    kv_num(b, &g, "avg_output", ratio((double)r->out_tok, n));
    kv_num(b, &g, "avg_total", ratio((double)(r->in_tok + r->out_tok), n));
    kv_int(b, &g, "total_input", r->in_tok);
    kv_int(b, &g, "total_output", r->out_tok);
    kv_int(b, &g, "total_cache_read", r->cache_read);
    kv_int(b, &g, "total_cache_write", r->cache_write);
    kv_num(b, &g, "estimated_share", ratio((double)r->llm_tokens_est, (double)r->llm_tokens));
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "cost");
    g = 1;
    ms_buf_addc(b, '{');
    kv_num(b, &g, "total_usd", r->cost_total);
    kv_num(b, &g, "avg_usd_per_request", ratio(r->cost_total, n));
    kv_int(b, &g, "unknown_cost_calls", r->unknown_cost_calls);
    kv_int(b, &g, "priced_requests", r->priced_requests);
    kv_num(b, &g, "replayed_usd", r->cost_replayed);
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "errors");
    g = 1;
    ms_buf_addc(b, '{');
    kv_num(b, &g, "rate", ratio((double)r->error_requests, n));
    kv_int(b, &g, "requests", r->error_requests);
    kv_int(b, &g, "count", r->error_count);
    ms_json_key(b, &g, "top");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->nerrs && i < TOP_ERRORS; i++) {
        const err_stat *e = &r->errs[i];
        int h = 1;
        if (i)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        kv_str(b, &h, "type", e->type);
        kv_str(b, &h, "message", e->message);
        kv_int(b, &h, "count", e->count);
        ms_buf_addc(b, '}');
    }
    ms_buf_adds(b, "]}");

    ms_json_key(b, &f, "retries");
    g = 1;
    ms_buf_addc(b, '{');
    kv_int(b, &g, "retried_calls", r->retried);
    kv_int(b, &g, "succeeded", r->retry_ok);
    kv_num(b, &g, "success_rate", ratio((double)r->retry_ok, (double)r->retried));
    ms_buf_addc(b, '}');

    ms_json_key(b, &f, "cost_trend");
    ms_buf_addc(b, '[');
    for (size_t i = 0; i < r->ntrend; i++) {
        const trend_row *t = &r->trend[i];
        char period[32];
        period_name(t->key, o->by_month, period, sizeof period);
        if (i)
            ms_buf_addc(b, ',');
        g = 1;
        ms_buf_addc(b, '{');
        kv_str(b, &g, "period", period);
        kv_int(b, &g, "requests", t->requests);
        kv_num(b, &g, "cost_usd", t->cost);
        kv_num(b, &g, "avg_usd_per_request", ratio(t->cost, (double)t->requests));
        kv_int(b, &g, "unknown_cost_calls", t->unknown);
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');

    ms_json_key(b, &f, "evals");
    evals_json(r, b);

    ms_buf_adds(b, "}\n");
}

/* "$0.0123" or, when some calls had no price, "$0.0123 + unknown for 3
 * calls" — an unknown cost is never shown as a number. `priced` counts
 * the requests (or calls) whose cost is known. */
static void add_cost_text(ms_buf *b, double cost, int64_t priced, int64_t unknown)
{
    char usd[32];
    const char *s = unknown == 1 ? "" : "s";
    if (unknown > 0 && priced == 0) {
        ms_buf_printf(b, "unknown for %lld call%s", (long long)unknown, s);
        return;
    }
    ms_buf_adds(b, fmt_usd(usd, sizeof usd, cost));
    if (unknown > 0)
        ms_buf_printf(b, " + unknown for %lld call%s", (long long)unknown, s);
}

#define EVAL_TEXT_FAILS 10 /* failing cases listed per suite; --json has them all */

/* "Evals": per suite its latest run's pass rate and status, then up to
 * EVAL_TEXT_FAILS failing cases, each with the trace id to open. */
static void evals_text(const report *r, ms_buf *b)
{
    char t1[40], t2[40], t3[40];
    if (r->nevals == 0)
        return;
    ms_buf_adds(b, "\nEvals (latest run per suite; open a case with `moonspan show TRACE_ID`)\n");
    for (size_t i = 0; i < r->nevals; i++) {
        const eval_sum *e = &r->evals[i];
        const char *status = EV(e->status) ? EV(e->status) : "?";
        iso_utc(e->start_ns, t1, sizeof t1);
        ms_buf_printf(b, "  %s  run %lld  %s  %s", EV(e->suite) ? EV(e->suite) : "?",
                      (long long)e->id, t1, strcmp(status, "failed") == 0 ? "FAILED" : status);
        if (isnan(e->pass_rate))
            ms_buf_printf(b, "  pass rate -  (%lld/%lld", (long long)e->passed,
                          (long long)e->cases);
        else
            ms_buf_printf(b, "  pass rate %.1f%% (%lld/%lld", 100 * e->pass_rate,
                          (long long)e->passed, (long long)e->cases);
        if (!isnan(e->threshold))
            ms_buf_printf(b, ", threshold %.1f%%", 100 * e->threshold);
        ms_buf_printf(b, ")  p50 %s  p95 %s  cost %s", fmt_ms(t1, sizeof t1, e->p50),
                      fmt_ms(t2, sizeof t2, e->p95), fmt_usd(t3, sizeof t3, e->cost));
        if (!isnan(e->replayed) && e->replayed != 0)
            ms_buf_printf(b, " (replayed, not spent: %s)", fmt_usd(t1, sizeof t1, e->replayed));
        ms_buf_addc(b, '\n');
        for (size_t k = 0; k < e->nfail && k < EVAL_TEXT_FAILS; k++) {
            const eval_fail *f = &r->fails[e->fail0 + k];
            ms_buf_adds(b, "    ");
            add_line_text(b, EV(f->case_id));
            if (f->repeat > 0)
                ms_buf_printf(b, " (repeat %lld)", (long long)f->repeat);
            ms_buf_printf(b, "  trace %s  ", EV(f->trace_id) ? EV(f->trace_id) : "-");
            /* a long error (a traceback) would push the next case off the
             * screen: one line each, cut at 120 bytes */
            const char *why = EV(f->reason) ? EV(f->reason) : "failed";
            size_t n = 0;
            for (; why[n] && n < 117; n++)
                ms_buf_addc(b, ((unsigned char)why[n] < 0x20) ? ' ' : why[n]);
            if (why[n])
                ms_buf_adds(b, "...");
            ms_buf_addc(b, '\n');
        }
        if (e->nfail > EVAL_TEXT_FAILS)
            ms_buf_printf(b, "    ... and %zu more failing (`moonspan report --json` lists all)\n",
                          e->nfail - EVAL_TEXT_FAILS);
    }
}

/* Everything of the text report but the evals. */
static void report_text_traces(const report *r, const ms_report_opts *o, ms_buf *b)
{
    char t1[40], t2[40], t3[40], t4[40];
    double n = (double)r->requests;

    ms_buf_printf(b, "moonspan report: %lld request%s", (long long)r->requests,
                  r->requests == 1 ? "" : "s");
    if (o->since_ns) {
        iso_utc(o->since_ns, t1, sizeof t1);
        ms_buf_printf(b, " since %s", t1);
    } else {
        ms_buf_adds(b, ", all time");
    }
    if (o->name_glob)
        ms_buf_printf(b, ", name GLOB '%s'", o->name_glob);
    if (r->requests) {
        iso_utc(r->first_start, t1, sizeof t1);
        iso_utc(r->last_start, t2, sizeof t2);
        ms_buf_printf(b, " (%s .. %s)", t1, t2);
    }
    ms_buf_addc(b, '\n');

    if (r->requests == 0) {
        if (o->since_ns || o->name_glob)
            ms_buf_adds(b, "\nno traces match this window (widen --since or --name;"
                           " list traces with `moonspan traces`)\n");
        else
            ms_buf_adds(b, "\nno traces recorded yet (run a script with `moonspan run`)\n");
        return;
    }

    ms_buf_printf(b, "\nRequests    p50 %s   p95 %s   p99 %s   max %s\n",
                  fmt_ms(t1, sizeof t1, r->lat[0]), fmt_ms(t2, sizeof t2, r->lat[1]),
                  fmt_ms(t3, sizeof t3, r->lat[2]), fmt_ms(t4, sizeof t4, r->lat[3]));

    if (r->nsteps) {
        int w = 4;
        for (size_t i = 0; i < r->nsteps; i++) {
            int l = (int)strlen(r->steps[i].name);
            if (l > w)
                w = l;
        }
        if (w > 40)
            w = 40;
        ms_buf_adds(b, "\nSteps\n  ");
        add_padded(b, "name", w);
        ms_buf_printf(b, " %8s %10s %10s %10s %12s %6s\n",
                      "count", "p50", "p95", "p99", "total", "share");
        for (size_t i = 0; i < r->nsteps; i++) {
            const step_stat *s = &r->steps[i];
            char tot[40];
            ms_buf_adds(b, "  ");
            add_padded(b, s->name, w);
            double share = ratio(s->total_ns, r->steps_total_ns);
            ms_buf_printf(b, " %8zu %10s %10s %10s %12s", s->n,
                          fmt_ms(t1, sizeof t1, s->p50), fmt_ms(t2, sizeof t2, s->p95),
                          fmt_ms(t3, sizeof t3, s->p99),
                          fmt_ms(tot, sizeof tot, s->total_ns / NS_PER_MS));
            if (isnan(share)) /* every step took 0 ns */
                ms_buf_adds(b, "      -\n");
            else
                ms_buf_printf(b, " %5.1f%%\n", 100 * share);
        }
        const step_stat *slow = slowest_step(r);
        ms_buf_printf(b, "  slowest step: %s (p95 %s)\n", slow->name,
                      fmt_ms(t1, sizeof t1, slow->p95));
    } else {
        ms_buf_adds(b, "\nSteps       none recorded (wrap the work in span(name, fn))\n");
    }

    ms_buf_printf(b, "\nTokens      per request %.1f in + %.1f out = %.1f;"
                     " total %lld in, %lld out",
                  r->in_tok / n, r->out_tok / n, (r->in_tok + r->out_tok) / n,
                  (long long)r->in_tok, (long long)r->out_tok);
    if (r->llm_tokens_est > 0)
        ms_buf_printf(b, "; %.1f%% of llm tokens estimated",
                      100 * ratio((double)r->llm_tokens_est, (double)r->llm_tokens));
    ms_buf_addc(b, '\n');

    ms_buf_adds(b, "Cost        total ");
    add_cost_text(b, r->cost_total, r->priced_requests, r->unknown_cost_calls);
    if (r->priced_requests)
        ms_buf_printf(b, "; per request %s", fmt_usd(t1, sizeof t1, r->cost_total / n));
    if (r->cost_replayed != 0)
        ms_buf_printf(b, "; replayed (not spent): %s",
                      fmt_usd(t1, sizeof t1, r->cost_replayed));
    ms_buf_addc(b, '\n');

    ms_buf_printf(b, "Errors      %.1f%% of requests (%lld); %lld error%s recorded\n",
                  100 * r->error_requests / n, (long long)r->error_requests,
                  (long long)r->error_count, r->error_count == 1 ? "" : "s");
    for (size_t i = 0; i < r->nerrs && i < TOP_ERRORS; i++) {
        const err_stat *e = &r->errs[i];
        ms_buf_printf(b, "  %6lld  %s: ", (long long)e->count,
                      e->type[0] ? e->type : "error");
        add_line_text(b, e->message);
        ms_buf_addc(b, '\n');
    }

    if (r->retried)
        ms_buf_printf(b, "Retries     %lld call%s retried, %lld succeeded (%.1f%%)\n",
                      (long long)r->retried, r->retried == 1 ? "" : "s",
                      (long long)r->retry_ok, 100.0 * r->retry_ok / r->retried);
    else
        ms_buf_adds(b, "Retries     none\n");

    /* a glance, not a dump: the latest periods; --json has them all */
    size_t from = r->ntrend > TREND_TEXT_ROWS ? r->ntrend - TREND_TEXT_ROWS : 0;
    ms_buf_printf(b, "\nCost trend (by %s, UTC)\n", o->by_month ? "month" : "day");
    if (from)
        ms_buf_printf(b, "  (%zu earlier %s not shown; --by month or --json for all)\n",
                      from, o->by_month ? "months" : "days");
    for (size_t i = from; i < r->ntrend; i++) {
        const trend_row *t = &r->trend[i];
        char period[32];
        period_name(t->key, o->by_month, period, sizeof period);
        ms_buf_printf(b, "  %-10s %8lld req   ", period, (long long)t->requests);
        add_cost_text(b, t->cost, t->priced, t->unknown);
        if (t->priced)
            ms_buf_printf(b, "   per request %s",
                          fmt_usd(t1, sizeof t1, t->cost / (double)t->requests));
        ms_buf_addc(b, '\n');
    }
}

/* The report for people: a header line, then one short aligned section
 * per checklist question, then the evals. An empty window says so and
 * how to fill it. */
static void report_text(const report *r, const ms_report_opts *o, ms_buf *b)
{
    report_text_traces(r, o, b);
    evals_text(r, b);
}

#undef EV

/* See ms_report.h. Reads inside one read transaction (unless the caller
 * has one open); writes nothing to `out` on error. */
int ms_report_write(sqlite3 *db, const ms_report_opts *opts, FILE *out,
                    char *err, size_t errlen)
{
    assert(db && opts && out);
    report r;
    memset(&r, 0, sizeof r);
    ms_buf b = {0};
    int ret = -1;
    /* One read transaction, so the passes see the same snapshot while a
     * writer keeps appending (WAL). */
    int own = 0;
    if (begin_read(db, &own, err, errlen))
        goto done;
    if (scan_traces(db, opts, &r, err, errlen) == 0 &&
        scan_spans(db, opts, &r, err, errlen) == 0 &&
        scan_manual_errors(db, opts, &r, err, errlen) == 0 &&
        scan_evals(db, opts, &r, err, errlen) == 0 &&
        finish_report(&r, err, errlen) == 0)
        ret = 0;
    if (end_read(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret != 0)
        goto done;
    if (opts->json)
        report_json(&r, opts, &b);
    else
        report_text(&r, opts, &b);
    ret = flush_buf(&b, out, err, errlen);
done:
    ms_buf_free(&b);
    report_free(&r);
    return ret;
}

/* --- traces ----------------------------------------------------------- */

/* One row of `moonspan traces`, its strings in the caller's arena (offsets,
 * since the arena may move while it grows). */
typedef struct trace_row {
    size_t id, name, status;
    int64_t start_ns, duration_ns, in_tok, out_tok, unknown, error_count, span_count;
    int has_cost;
    double cost;
} trace_row;

/* Cost of one trace for a table cell: "-" when unknown, ">=$x" when part
 * of it is unknown. */
static const char *trace_cost_cell(char *buf, size_t n, int has_cost, double cost,
                                   int64_t unknown)
{
    char usd[32];
    if (!has_cost) {
        snprintf(buf, n, "-");
        return buf;
    }
    fmt_usd(usd, sizeof usd, cost);
    snprintf(buf, n, "%s%s", unknown > 0 ? ">=" : "", usd);
    return buf;
}

/* See ms_report.h. The rows are buffered first so the name column can be
 * sized to the longest name shown. `limit` <= 0 means no limit. */
int ms_traces_write(sqlite3 *db, int limit, int errors_only, int json, FILE *out,
                    char *err, size_t errlen)
{
    assert(db && out);
    const char *sql = errors_only
        ? "SELECT trace_id, name, start_ns, duration_ns, input_tokens, output_tokens,"
          " cost_usd, unknown_cost_calls, status, error_count, span_count"
          " FROM traces WHERE status = 'error' ORDER BY start_ns DESC, id DESC LIMIT ?1"
        : "SELECT trace_id, name, start_ns, duration_ns, input_tokens, output_tokens,"
          " cost_usd, unknown_cost_calls, status, error_count, span_count"
          " FROM traces ORDER BY start_ns DESC, id DESC LIMIT ?1";
    sqlite3_stmt *st;
    if (prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1;
    ms_buf arena = {0}, b = {0};
    trace_row *rows = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_bind_int64(st, 1, limit > 0 ? limit : -1) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind --limit: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)&rows, &cap, n, sizeof *rows)) {
            ms_errf(err, errlen, "out of memory reading traces");
            goto done;
        }
        trace_row *t = &rows[n++];
        t->id = arena_col(&arena, st, 0);
        t->name = arena_col(&arena, st, 1);
        t->start_ns = sqlite3_column_int64(st, 2);
        t->duration_ns = sqlite3_column_int64(st, 3);
        t->in_tok = sqlite3_column_int64(st, 4);
        t->out_tok = sqlite3_column_int64(st, 5);
        t->has_cost = sqlite3_column_type(st, 6) != SQLITE_NULL;
        t->cost = sqlite3_column_double(st, 6);
        t->unknown = sqlite3_column_int64(st, 7);
        t->status = arena_col(&arena, st, 8);
        t->error_count = sqlite3_column_int64(st, 9);
        t->span_count = sqlite3_column_int64(st, 10);
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (arena.oom) {
        ms_errf(err, errlen, "out of memory reading traces");
        goto done;
    }

    char iso[40], c1[40], c2[40];
    if (json) {
        ms_buf_addc(&b, '[');
        for (size_t i = 0; i < n; i++) {
            const trace_row *t = &rows[i];
            int f = 1;
            if (i)
                ms_buf_addc(&b, ',');
            ms_buf_addc(&b, '{');
            kv_str(&b, &f, "trace_id", arena_str(&arena, t->id));
            kv_str(&b, &f, "name", arena_str(&arena, t->name));
            kv_int(&b, &f, "start_ns", t->start_ns);
            iso_utc(t->start_ns, iso, sizeof iso);
            kv_str(&b, &f, "start", iso);
            kv_num(&b, &f, "duration_ms", (double)t->duration_ns / NS_PER_MS);
            kv_int(&b, &f, "input_tokens", t->in_tok);
            kv_int(&b, &f, "output_tokens", t->out_tok);
            kv_num(&b, &f, "cost_usd", t->has_cost ? t->cost : NAN);
            kv_int(&b, &f, "unknown_cost_calls", t->unknown);
            kv_str(&b, &f, "status", arena_str(&arena, t->status));
            kv_int(&b, &f, "error_count", t->error_count);
            kv_int(&b, &f, "span_count", t->span_count);
            ms_buf_addc(&b, '}');
        }
        ms_buf_adds(&b, "]\n");
    } else if (n == 0) {
        ms_buf_adds(&b, errors_only ? "no traces with errors\n"
                                    : "no traces recorded yet (run a script with `moonspan run`)\n");
    } else {
        int w = 4;
        for (size_t i = 0; i < n; i++) {
            const char *nm = arena_str(&arena, rows[i].name);
            int l = nm ? (int)strlen(nm) : 0;
            if (l > w)
                w = l;
        }
        if (w > 40)
            w = 40;
        add_padded(&b, "trace id", 32);
        ms_buf_adds(&b, "  ");
        add_padded(&b, "name", w);
        ms_buf_printf(&b, "  %-20s  %10s  %15s  %11s  %s\n", "start", "duration",
                      "tokens in/out", "cost", "status");
        for (size_t i = 0; i < n; i++) {
            const trace_row *t = &rows[i];
            const char *id = arena_str(&arena, t->id);
            const char *nm = arena_str(&arena, t->name);
            const char *status = arena_str(&arena, t->status);
            char tok[48];
            iso_utc(t->start_ns, iso, sizeof iso);
            snprintf(tok, sizeof tok, "%lld/%lld", (long long)t->in_tok, (long long)t->out_tok);
            add_padded(&b, id ? id : "?", 32);
            ms_buf_adds(&b, "  ");
            add_padded(&b, nm ? nm : "", w);
            ms_buf_printf(&b, "  %-20s  %10s  %15s  %11s  %s\n", iso,
                          fmt_ms(c1, sizeof c1, (double)t->duration_ns / NS_PER_MS), tok,
                          trace_cost_cell(c2, sizeof c2, t->has_cost, t->cost, t->unknown),
                          status ? status : "?");
        }
    }
    ret = flush_buf(&b, out, err, errlen);
done:
    sqlite3_finalize(st);
    free(rows);
    ms_buf_free(&arena);
    ms_buf_free(&b);
    return ret;
}

/* --- show ------------------------------------------------------------- */

typedef struct span_node {
    int64_t rowid, span_id, parent_id, start_ns, duration_ns;
    int has_parent, error_own, has_tokens, estimated, has_cost, retry_succeeded;
    int has_ttft, replayed;
    int64_t in_tok, out_tok, cache_read, cache_write, retries, ttft_ns;
    double cost;
    size_t name, kind, status, error_type, error_message, attrs, provider, model;
    size_t parent;              /* index of the parent node, NO_STR for the root */
    size_t child0, nchild;      /* children: order[child0 .. child0 + nchild) */
    size_t event0, nevent;      /* events: evs[event0 .. event0 + nevent) */
} span_node;

typedef struct span_event {
    int64_t span_id, time_ns;
    size_t node, name, attrs;
} span_event;

typedef struct trace_view {
    ms_buf arena;
    size_t id, name, status, attrs;
    int64_t row, start_ns, duration_ns, in_tok, out_tok, cache_read, cache_write;
    int64_t unknown, error_count, span_count, first_span;
    int has_cost;
    double cost;
    span_node *nodes;
    size_t nnodes;
    size_t *order;              /* node indices grouped by parent, by start */
    struct id_index *by_id;     /* (span_id, node) sorted by span_id */
    span_event *evs;
    size_t nevs, capevs;
} trace_view;

/* Frees what resolve_trace and load_spans filled in. */
static void trace_view_free(trace_view *v)
{
    ms_buf_free(&v->arena);
    free(v->nodes);
    free(v->order);
    free(v->by_id);
    free(v->evs);
}

/* Sort records carry their keys, because qsort passes no context to get
 * at the node array (and a file-static pointer would not be thread-safe). */
typedef struct id_index {
    int64_t span_id;
    size_t node;
} id_index;

typedef struct child_key {
    size_t parent;      /* NO_STR for the root: sorts last, nobody's child */
    int64_t start_ns, rowid;
    size_t node;
} child_key;

/* id_index by span id, for find_node's binary search. */
static int cmp_by_id(const void *a, const void *b)
{
    int64_t x = ((const id_index *)a)->span_id, y = ((const id_index *)b)->span_id;
    return (x > y) - (x < y);
}

/* Children grouped by parent, each group in start order (rowid breaks
 * ties, i.e. insertion order). */
static int cmp_children(const void *a, const void *b)
{
    const child_key *x = a, *y = b;
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return (x->rowid > y->rowid) - (x->rowid < y->rowid);
}

/* Events grouped by span, each group in time order. */
static int cmp_events(const void *a, const void *b)
{
    const span_event *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return (x->time_ns > y->time_ns) - (x->time_ns < y->time_ns);
}

/* Index of the node with `span_id`, or NO_STR. */
static size_t find_node(const trace_view *v, int64_t span_id)
{
    size_t lo = 0, hi = v->nnodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t id = v->by_id[mid].span_id;
        if (id < span_id)
            lo = mid + 1;
        else if (id > span_id)
            hi = mid;
        else
            return v->by_id[mid].node;
    }
    return NO_STR;
}

/* Resolves `id` (full id or unique prefix) to a trace row. Returns 0, 1
 * when nothing matches, -1 on an invalid id, an ambiguous prefix or a
 * database error (err says which). */
static int resolve_trace(sqlite3 *db, const char *id, trace_view *v,
                         char *err, size_t errlen)
{
    char lo[40], hi[40];
    size_t n = strlen(id);
    if (n < 4 || n > 32)
        return ms_errf(err, errlen, "trace id '%s' must be 4 to 32 hex characters;"
                    " list ids with `moonspan traces`", id);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)id[i]))
            return ms_errf(err, errlen, "trace id '%s' is not hex; list ids with"
                        " `moonspan traces`", id);
        lo[i] = (char)tolower((unsigned char)id[i]);
    }
    lo[n] = 0;
    /* every id starting with the prefix sorts in [prefix, prefix + "g"):
     * ids are lowercase hex, all below 'g' — a range on the index */
    memcpy(hi, lo, n);
    hi[n] = 'g';
    hi[n + 1] = 0;

    sqlite3_stmt *st;
    /* distinct: traces that joined one outer trace (TRACEPARENT) share its id */
    if (prepare(db, "SELECT count(DISTINCT trace_id) FROM traces WHERE trace_id >= ?1 AND trace_id < ?2",
                &st, err, errlen))
        return -1;
    int ret = -1;
    if (sqlite3_bind_text(st, 1, lo, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, hi, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the trace id: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    int64_t count = sqlite3_column_int64(st, 0);
    if (count == 0) {
        ms_errf(err, errlen, "no trace with id %s; list ids with `moonspan traces`", id);
        ret = 1;
        goto done;
    }
    if (count > 1) {
        ms_errf(err, errlen, "trace id prefix %s is ambiguous: %lld traces match;"
             " give more characters", id, (long long)count);
        goto done;
    }
    sqlite3_finalize(st);
    if (prepare(db,
                "SELECT id, trace_id, name, start_ns, duration_ns, status, error_count,"
                " span_count, first_span, input_tokens, output_tokens, cache_read_tokens,"
                " cache_write_tokens, cost_usd, unknown_cost_calls,"
                " CASE WHEN json_valid(attrs) THEN json(attrs) END"
                " FROM traces WHERE trace_id >= ?1 AND trace_id < ?2 ORDER BY start_ns LIMIT 1",
                &st, err, errlen))
        return -1;
    if (sqlite3_bind_text(st, 1, lo, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, hi, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the trace id: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) { /* deleted between the two statements */
        ms_errf(err, errlen, "no trace with id %s; list ids with `moonspan traces`", id);
        ret = 1;
        goto done;
    }
    if (rc != SQLITE_ROW) {
        ms_errf(err, errlen, "cannot read traces: %s", sqlite3_errmsg(db));
        goto done;
    }
    v->row = sqlite3_column_int64(st, 0);
    v->id = arena_col(&v->arena, st, 1);
    v->name = arena_col(&v->arena, st, 2);
    v->start_ns = sqlite3_column_int64(st, 3);
    v->duration_ns = sqlite3_column_int64(st, 4);
    v->status = arena_col(&v->arena, st, 5);
    v->error_count = sqlite3_column_int64(st, 6);
    v->span_count = sqlite3_column_int64(st, 7);
    v->first_span = sqlite3_column_int64(st, 8);
    v->in_tok = sqlite3_column_int64(st, 9);
    v->out_tok = sqlite3_column_int64(st, 10);
    v->cache_read = sqlite3_column_int64(st, 11);
    v->cache_write = sqlite3_column_int64(st, 12);
    v->has_cost = sqlite3_column_type(st, 13) != SQLITE_NULL;
    v->cost = sqlite3_column_double(st, 13);
    v->unknown = sqlite3_column_int64(st, 14);
    v->attrs = arena_col(&v->arena, st, 15);
    ret = 0;
done:
    sqlite3_finalize(st);
    return ret;
}

/* Loads the trace's spans (its rowid range) and events, and links the
 * tree. Returns 0 or -1 with err. */
static int load_spans(sqlite3 *db, trace_view *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int replay_col = schema_has(db, "spans", "replayed", err, errlen);
    if (replay_col < 0)
        return -1;
    char sql[640];
    snprintf(sql, sizeof sql,
             "SELECT rowid, span_id, parent_id, name, kind, start_ns, duration_ns,"
             " status, error_own, error_type, error_message,"
             " CASE WHEN json_valid(attrs) THEN json(attrs) END, provider, model,"
             " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
             " usage_estimated, cost_usd, retries, retry_succeeded, ttft_ns, %s"
             " FROM spans WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid",
             replay_col ? "replayed" : "NULL");
    if (prepare(db, sql, &st, err, errlen))
        return -1;
    int ret = -1;
    size_t cap = 0;
    if (sqlite3_bind_int64(st, 1, v->first_span) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, v->first_span + v->span_count - 1) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the span range: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)&v->nodes, &cap, v->nnodes, sizeof *v->nodes))
            goto oom;
        span_node *s = &v->nodes[v->nnodes++];
        memset(s, 0, sizeof *s);
        s->rowid = sqlite3_column_int64(st, 0);
        s->span_id = sqlite3_column_int64(st, 1);
        s->has_parent = sqlite3_column_type(st, 2) != SQLITE_NULL;
        s->parent_id = sqlite3_column_int64(st, 2);
        s->name = arena_col(&v->arena, st, 3);
        s->kind = arena_col(&v->arena, st, 4);
        s->start_ns = sqlite3_column_int64(st, 5);
        s->duration_ns = sqlite3_column_int64(st, 6);
        s->status = arena_col(&v->arena, st, 7);
        s->error_own = sqlite3_column_int(st, 8);
        s->error_type = arena_col(&v->arena, st, 9);
        s->error_message = arena_col(&v->arena, st, 10);
        s->attrs = arena_col(&v->arena, st, 11);
        s->provider = arena_col(&v->arena, st, 12);
        s->model = arena_col(&v->arena, st, 13);
        s->has_tokens = sqlite3_column_type(st, 14) != SQLITE_NULL ||
                        sqlite3_column_type(st, 15) != SQLITE_NULL;
        s->in_tok = sqlite3_column_int64(st, 14);
        s->out_tok = sqlite3_column_int64(st, 15);
        s->cache_read = sqlite3_column_int64(st, 16);
        s->cache_write = sqlite3_column_int64(st, 17);
        s->estimated = sqlite3_column_int(st, 18);
        s->has_cost = sqlite3_column_type(st, 19) != SQLITE_NULL;
        s->cost = sqlite3_column_double(st, 19);
        s->retries = sqlite3_column_int64(st, 20);
        s->retry_succeeded = sqlite3_column_type(st, 21) == SQLITE_NULL
                                 ? -1 : sqlite3_column_int(st, 21);
        s->has_ttft = sqlite3_column_type(st, 22) != SQLITE_NULL;
        s->ttft_ns = sqlite3_column_int64(st, 22);
        s->replayed = sqlite3_column_int(st, 23) == 1;
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read spans: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;

    int typed = schema_has(db, "span_events", "error_type", err, errlen);
    if (typed < 0)
        goto done;
    /* a typed error event (ctx:add_error, v3) shows as its {type, message} */
    if (prepare(db,
                typed ? "SELECT span_id, name, time_ns,"
                        " coalesce(CASE WHEN json_valid(attrs) THEN json(attrs) END,"
                        " CASE WHEN error_type IS NOT NULL"
                        " THEN json_object('type', error_type, 'message', error_message) END)"
                        " FROM span_events WHERE trace_row = ?1"
                      : "SELECT span_id, name, time_ns,"
                        " CASE WHEN json_valid(attrs) THEN json(attrs) END"
                        " FROM span_events WHERE trace_row = ?1",
                &st, err, errlen))
        goto done;
    if (sqlite3_bind_int64(st, 1, v->row) != SQLITE_OK) {
        ms_errf(err, errlen, "cannot bind the trace row: %s", sqlite3_errmsg(db));
        goto done;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)&v->evs, &v->capevs, v->nevs, sizeof *v->evs))
            goto oom;
        span_event *e = &v->evs[v->nevs++];
        e->span_id = sqlite3_column_int64(st, 0);
        e->name = arena_col(&v->arena, st, 1);
        e->time_ns = sqlite3_column_int64(st, 2);
        e->attrs = arena_col(&v->arena, st, 3);
    }
    if (rc != SQLITE_DONE) {
        ms_errf(err, errlen, "cannot read span events: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (v->arena.oom)
        goto oom;

    /* link: the root is the first row of the range (its parent_id may be
     * a remote TRACEPARENT span); a span whose parent is not in this
     * trace, or is itself, hangs off the root */
    size_t nn = v->nnodes;
    if (nn) {
        v->by_id = malloc(nn * sizeof *v->by_id);
        v->order = malloc(nn * sizeof *v->order);
        child_key *keys = malloc(nn * sizeof *keys);
        if (!v->by_id || !v->order || !keys) {
            free(keys);
            goto oom;
        }
        for (size_t i = 0; i < nn; i++)
            v->by_id[i] = (id_index){v->nodes[i].span_id, i};
        qsort(v->by_id, nn, sizeof *v->by_id, cmp_by_id);
        for (size_t i = 0; i < nn; i++) {
            span_node *s = &v->nodes[i];
            size_t p = (i > 0 && s->has_parent) ? find_node(v, s->parent_id) : NO_STR;
            s->parent = i == 0 ? NO_STR : (p == NO_STR || p == i) ? 0 : p;
            keys[i] = (child_key){s->parent, s->start_ns, s->rowid, i};
        }
        qsort(keys, nn, sizeof *keys, cmp_children);
        for (size_t i = 0; i < nn; i++)
            v->order[i] = keys[i].node;
        free(keys);
        for (size_t i = 0; i < nn; i++) {
            span_node *s = &v->nodes[v->order[i]];
            if (s->parent == NO_STR)
                continue;
            span_node *p = &v->nodes[s->parent];
            if (p->nchild++ == 0)
                p->child0 = i;
        }
        for (size_t i = 0; i < v->nevs; i++) {
            size_t k = find_node(v, v->evs[i].span_id);
            v->evs[i].node = k == NO_STR ? 0 : k;
        }
        if (v->nevs)
            qsort(v->evs, v->nevs, sizeof *v->evs, cmp_events);
        for (size_t i = 0; i < v->nevs; i++) {
            span_node *s = &v->nodes[v->evs[i].node];
            if (s->nevent++ == 0)
                s->event0 = i;
        }
    }
    ret = 0;
    goto done;
oom:
    ms_errf(err, errlen, "out of memory reading the trace");
done:
    sqlite3_finalize(st);
    return ret;
}

#define A(off) arena_str(&v->arena, (off))

/* Width of the name column: the deepest indented name, capped. */
static int tree_width(const trace_view *v, size_t i, int depth)
{
    const span_node *s = &v->nodes[i];
    const char *nm = A(s->name);
    int w = 2 * depth + (nm ? (int)strlen(nm) : 0);
    for (size_t c = 0; c < s->nchild; c++) {
        int cw = tree_width(v, v->order[s->child0 + c], depth + 1);
        if (cw > w)
            w = cw;
    }
    return w > 60 ? 60 : w;
}

/* One span line (name indented by depth, duration, tokens, cost, status,
 * retries, own error), its events, then its children, recursively. */
static void show_text_span(const trace_view *v, size_t i, int depth, int w, ms_buf *b)
{
    const span_node *s = &v->nodes[i];
    char c1[48], c2[48];
    for (int d = 0; d < depth; d++)
        ms_buf_adds(b, "  ");
    add_padded(b, A(s->name) ? A(s->name) : "?", w - 2 * depth);
    ms_buf_printf(b, "  %10s", fmt_ms(c1, sizeof c1, (double)s->duration_ns / NS_PER_MS));
    if (s->has_tokens) {
        snprintf(c1, sizeof c1, "%lld/%lld tok%s", (long long)s->in_tok,
                 (long long)s->out_tok, s->estimated ? " (est)" : "");
        ms_buf_printf(b, "  %-22s", c1);
    } else {
        ms_buf_printf(b, "  %-22s", "");
    }
    const char *kind = A(s->kind);
    if (s->has_cost)
        ms_buf_printf(b, "  %-11s", fmt_usd(c2, sizeof c2, s->cost));
    else
        ms_buf_printf(b, "  %-11s", kind && strcmp(kind, "llm") == 0 ? "cost ?" : "");
    ms_buf_printf(b, "  %s", A(s->status) ? A(s->status) : "?");
    if (s->replayed)
        ms_buf_adds(b, "  replayed (not spent)");
    if (s->retries > 0)
        ms_buf_printf(b, "  retries %lld (%s)", (long long)s->retries,
                      s->retry_succeeded == 1 ? "succeeded"
                      : s->retry_succeeded == 0 ? "failed" : "?");
    if (s->error_own) {
        ms_buf_printf(b, "  %s: ", A(s->error_type) ? A(s->error_type) : "error");
        add_line_text(b, A(s->error_message));
    }
    ms_buf_addc(b, '\n');
    for (size_t e = 0; e < s->nevent; e++) {
        const span_event *ev = &v->evs[s->event0 + e];
        for (int d = 0; d <= depth; d++)
            ms_buf_adds(b, "  ");
        ms_buf_printf(b, "* event %s", A(ev->name) ? A(ev->name) : "?");
        if (A(ev->attrs)) {
            ms_buf_addc(b, ' ');
            add_line_text(b, A(ev->attrs));
        }
        ms_buf_addc(b, '\n');
    }
    for (size_t c = 0; c < s->nchild; c++)
        show_text_span(v, v->order[s->child0 + c], depth + 1, w, b);
}

/* One span as a JSON object with its events and a nested "children"
 * array. Token fields appear only on spans that have them (llm spans). */
static void show_json_span(const trace_view *v, size_t i, ms_buf *b)
{
    const span_node *s = &v->nodes[i];
    char hex[24];
    int f = 1;
    ms_buf_addc(b, '{');
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->span_id);
    kv_str(b, &f, "span_id", hex);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->parent_id);
    kv_str(b, &f, "parent_id", s->has_parent ? hex : NULL);
    kv_str(b, &f, "name", A(s->name));
    kv_str(b, &f, "kind", A(s->kind));
    kv_int(b, &f, "start_ns", s->start_ns);
    kv_num(b, &f, "duration_ms", (double)s->duration_ns / NS_PER_MS);
    kv_str(b, &f, "status", A(s->status));
    ms_json_key(b, &f, "error");
    if (s->error_own) {
        int g = 1;
        ms_buf_addc(b, '{');
        kv_str(b, &g, "type", A(s->error_type));
        kv_str(b, &g, "message", A(s->error_message));
        ms_buf_addc(b, '}');
    } else {
        ms_buf_adds(b, "null");
    }
    if (s->provider != NO_STR || s->model != NO_STR || s->has_tokens) {
        kv_str(b, &f, "provider", A(s->provider));
        kv_str(b, &f, "model", A(s->model));
        kv_int(b, &f, "input_tokens", s->in_tok);
        kv_int(b, &f, "output_tokens", s->out_tok);
        kv_int(b, &f, "cache_read_tokens", s->cache_read);
        kv_int(b, &f, "cache_write_tokens", s->cache_write);
        kv_raw(b, &f, "usage_estimated", s->estimated ? "true" : "false");
        kv_raw(b, &f, "replayed", s->replayed ? "true" : "false");
    }
    kv_num(b, &f, "cost_usd", s->has_cost ? s->cost : NAN);
    kv_int(b, &f, "retries", s->retries);
    kv_raw(b, &f, "retry_succeeded",
           s->retry_succeeded < 0 ? NULL : s->retry_succeeded ? "true" : "false");
    kv_num(b, &f, "ttft_ms", s->has_ttft ? (double)s->ttft_ns / NS_PER_MS : NAN);
    kv_raw(b, &f, "attrs", A(s->attrs)); /* json(attrs): valid JSON or NULL */
    ms_json_key(b, &f, "events");
    ms_buf_addc(b, '[');
    for (size_t e = 0; e < s->nevent; e++) {
        const span_event *ev = &v->evs[s->event0 + e];
        int g = 1;
        if (e)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        kv_str(b, &g, "name", A(ev->name));
        kv_int(b, &g, "time_ns", ev->time_ns);
        kv_raw(b, &g, "attrs", A(ev->attrs));
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
    ms_json_key(b, &f, "children");
    ms_buf_addc(b, '[');
    for (size_t c = 0; c < s->nchild; c++) {
        if (c)
            ms_buf_addc(b, ',');
        show_json_span(v, v->order[s->child0 + c], b);
    }
    ms_buf_adds(b, "]}");
}

/* The trace object, its root span (and so the whole tree) in "spans". */
static void show_json(const trace_view *v, ms_buf *b)
{
    char iso[40];
    int f = 1;
    ms_buf_addc(b, '{');
    kv_str(b, &f, "trace_id", A(v->id));
    kv_str(b, &f, "name", A(v->name));
    kv_int(b, &f, "start_ns", v->start_ns);
    iso_utc(v->start_ns, iso, sizeof iso);
    kv_str(b, &f, "start", iso);
    kv_num(b, &f, "duration_ms", (double)v->duration_ns / NS_PER_MS);
    kv_str(b, &f, "status", A(v->status));
    kv_int(b, &f, "error_count", v->error_count);
    kv_int(b, &f, "span_count", v->span_count);
    kv_int(b, &f, "input_tokens", v->in_tok);
    kv_int(b, &f, "output_tokens", v->out_tok);
    kv_int(b, &f, "cache_read_tokens", v->cache_read);
    kv_int(b, &f, "cache_write_tokens", v->cache_write);
    kv_num(b, &f, "cost_usd", v->has_cost ? v->cost : NAN);
    kv_int(b, &f, "unknown_cost_calls", v->unknown);
    kv_raw(b, &f, "attrs", A(v->attrs));
    ms_json_key(b, &f, "spans");
    ms_buf_addc(b, '[');
    if (v->nnodes)
        show_json_span(v, 0, b);
    ms_buf_adds(b, "]}\n");
}

/* Header (name, id, start, duration, tokens, cost, status), then the tree. */
static void show_text(const trace_view *v, ms_buf *b)
{
    char iso[40], c1[40];
    iso_utc(v->start_ns, iso, sizeof iso);
    ms_buf_printf(b, "%s  trace %s\n", A(v->name) ? A(v->name) : "?", A(v->id) ? A(v->id) : "?");
    ms_buf_printf(b, "  start %s   duration %s   tokens %lld in / %lld out   cost ",
                  iso, fmt_ms(c1, sizeof c1, (double)v->duration_ns / NS_PER_MS),
                  (long long)v->in_tok, (long long)v->out_tok);
    if (!v->has_cost && v->unknown == 0)
        ms_buf_adds(b, "-");  /* no priced call: nothing to state as a number */
    else
        add_cost_text(b, v->cost, v->has_cost, v->unknown);
    ms_buf_printf(b, "   status %s", A(v->status) ? A(v->status) : "?");
    if (v->error_count)
        ms_buf_printf(b, " (%lld error%s)", (long long)v->error_count,
                      v->error_count == 1 ? "" : "s");
    ms_buf_adds(b, "\n\n");
    if (!v->nnodes) {
        ms_buf_adds(b, "  (no spans stored for this trace)\n");
        return;
    }
    int w = tree_width(v, 0, 0);
    if (w < 4)
        w = 4;
    show_text_span(v, 0, 0, w, b);
}

#undef A

/* See ms_report.h. All reads in one snapshot; output only on success. */
int ms_trace_show(sqlite3 *db, const char *id, int json, FILE *out,
                  char *err, size_t errlen)
{
    assert(db && id && out);
    trace_view v;
    memset(&v, 0, sizeof v);
    ms_buf b = {0};
    int ret, own = 0;
    /* one snapshot for the trace row, its spans and its events */
    if (begin_read(db, &own, err, errlen))
        return -1;
    ret = resolve_trace(db, id, &v, err, errlen);
    if (ret == 0)
        ret = load_spans(db, &v, err, errlen);
    if (end_read(db, own, ret == 0 ? err : NULL, errlen) && ret == 0)
        ret = -1;
    if (ret == 0 && v.arena.oom)
        ret = ms_errf(err, errlen, "out of memory reading the trace");
    if (ret == 0) {
        if (json)
            show_json(&v, &b);
        else
            show_text(&v, &b);
        ret = flush_buf(&b, out, err, errlen);
    }
    ms_buf_free(&b);
    trace_view_free(&v);
    return ret;
}
