#include "ms_overhead.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_fmt.h"
#include "ms_read.h"

/* columns of the query, in order */
enum { C_ID, C_SCRIPT, C_START, C_END, C_LEVEL, C_FOLD, C_RATE, C_KEPT, C_FOLDED, C_SKIPPED, C_TRACES_OUT,
       C_SPANS_OUT, C_NS_SPAN, C_NS_FOLD, C_NS_SKIP, C_TELEMETRY };

static const char SQL[] =
    "SELECT id, script, start_ns, end_ns, level, fold_above, sample_rate, spans_kept, fold_repetitions,"
    " spans_skipped, traces_sampled_out, spans_sampled_out, ns_per_span, ns_per_fold, ns_per_skip,"
    " telemetry_ns FROM runs WHERE start_ns >= ?1 ORDER BY start_ns DESC, id DESC LIMIT ?2";

static int64_t col_int(sqlite3_stmt *st, int c)
{
    return sqlite3_column_int64(st, c);
}

static int is_null(sqlite3_stmt *st, int c)
{
    return sqlite3_column_type(st, c) == SQLITE_NULL;
}

/* "1,234,567" */
static const char *grouped(char *buf, size_t n, int64_t v)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t o = 0;
    if (v < 0 && o + 1 < n)
        buf[o++] = '-';
    for (int i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

/* A per-span cost: "265 ns", or "-" when it was not measured. */
static const char *ns_cost(char *buf, size_t n, sqlite3_stmt *st, int c)
{
    if (is_null(st, c))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.0f ns", sqlite3_column_double(st, c));
    return buf;
}

static void text_row(ms_buf *b, sqlite3_stmt *st)
{
    char t[64], a[64];
    ms_buf_printf(b, "run %lld  ", (long long)col_int(st, C_ID));
    ms_iso_utc(col_int(st, C_START), t, sizeof t);
    ms_buf_adds(b, t);
    ms_buf_adds(b, "  ");
    ms_fmt_text_max(b, (const char *)sqlite3_column_text(st, C_SCRIPT), 60, "?");
    ms_buf_addc(b, '\n');
    if (is_null(st, C_END)) {
        ms_buf_adds(b, "  not recorded: the run is still going, ended before moonspan recorded this "
                       "(schema v5), or was killed\n");
        return;
    }
    ms_buf_printf(b, "  level %s", sqlite3_column_text(st, C_LEVEL));
    if (!is_null(st, C_FOLD))
        ms_buf_printf(b, ", --fold %lld", (long long)col_int(st, C_FOLD));
    if (sqlite3_column_double(st, C_RATE) < 1)
        ms_buf_printf(b, ", --sample %g", sqlite3_column_double(st, C_RATE));
    ms_buf_addc(b, '\n');
    ms_buf_printf(b, "  spans kept %s", grouped(t, sizeof t, col_int(st, C_KEPT)));
    ms_buf_printf(b, ", folded repetitions %s", grouped(t, sizeof t, col_int(st, C_FOLDED)));
    ms_buf_printf(b, ", skipped below the level %s", grouped(t, sizeof t, col_int(st, C_SKIPPED)));
    ms_buf_printf(b, ", traces sampled out %s", grouped(t, sizeof t, col_int(st, C_TRACES_OUT)));
    ms_buf_printf(b, " (%s spans)\n", grouped(a, sizeof a, col_int(st, C_SPANS_OUT)));
    char s1[32], s2[32], s3[32];
    ms_buf_printf(b, "  cost to the script per span: recorded %s, folded %s, below the level %s\n",
                ns_cost(s1, sizeof s1, st, C_NS_SPAN), ns_cost(s2, sizeof s2, st, C_NS_FOLD),
                ns_cost(s3, sizeof s3, st, C_NS_SKIP));
    double tele_ms = (double)col_int(st, C_TELEMETRY) / 1e6;
    double run_ms = (double)(col_int(st, C_END) - col_int(st, C_START)) / 1e6;
    ms_buf_printf(b, "  telemetry %s of the run's %s", ms_fmt_ms(t, sizeof t, tele_ms), ms_fmt_ms(a, sizeof a, run_ms));
    if (run_ms > 0)
        ms_buf_printf(b, " (%.1f%%)", 100 * tele_ms / run_ms);
    ms_buf_addc(b, '\n');
}

static void json_row(ms_buf *b, sqlite3_stmt *st, int *first_row)
{
    if (!*first_row)
        ms_buf_addc(b, ',');
    *first_row = 0;
    int f = 1;
    ms_buf_addc(b, '{');
    ms_kv_int(b, &f, "run_id", col_int(st, C_ID));
    ms_kv_str(b, &f, "script", (const char *)sqlite3_column_text(st, C_SCRIPT));
    ms_kv_int(b, &f, "start_ns", col_int(st, C_START));
    if (is_null(st, C_END)) {
        ms_kv_raw(b, &f, "recorded", "false");
        ms_buf_addc(b, '}');
        return;
    }
    ms_kv_raw(b, &f, "recorded", "true");
    ms_kv_int(b, &f, "end_ns", col_int(st, C_END));
    ms_kv_str(b, &f, "level", (const char *)sqlite3_column_text(st, C_LEVEL));
    if (is_null(st, C_FOLD))
        ms_kv_raw(b, &f, "fold_above", "null");
    else
        ms_kv_int(b, &f, "fold_above", col_int(st, C_FOLD));
    ms_kv_num(b, &f, "sample_rate", sqlite3_column_double(st, C_RATE));
    static const char *const counts[] = {"spans_kept", "fold_repetitions", "spans_skipped",
                                         "traces_sampled_out", "spans_sampled_out"};
    for (int i = 0; i < 5; i++)
        ms_kv_int(b, &f, counts[i], col_int(st, C_KEPT + i));
    static const char *const costs[] = {"ns_per_span", "ns_per_fold", "ns_per_skip"};
    for (int i = 0; i < 3; i++)
        ms_kv_num(b, &f, costs[i], is_null(st, C_NS_SPAN + i) ? NAN : sqlite3_column_double(st, C_NS_SPAN + i));
    ms_kv_num(b, &f, "telemetry_ms", (double)col_int(st, C_TELEMETRY) / 1e6);
    ms_kv_num(b, &f, "run_ms", (double)(col_int(st, C_END) - col_int(st, C_START)) / 1e6);
    ms_buf_addc(b, '}');
}

int ms_overhead_write(sqlite3 *db, const ms_overhead_opts *o, FILE *out, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (ms_read_prepare(db, SQL, &st, err, errlen))
        return -1;
    sqlite3_bind_int64(st, 1, o->since_ns);
    sqlite3_bind_int64(st, 2, o->limit > 0 ? o->limit : 20);
    ms_buf b = {0};
    int first = 1, rc;
    if (o->json)
        ms_buf_addc(&b, '[');
    else
        ms_buf_adds(&b, "moonspan report --overhead: what recording cost each run, newest first\n");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (o->json) {
            json_row(&b, st, &first);
        } else {
            ms_buf_addc(&b, '\n');
            text_row(&b, st);
            first = 0;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ms_buf_free(&b);
        snprintf(err, errlen, "cannot read the runs: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (o->json)
        ms_buf_adds(&b, "]\n");
    else if (first)
        ms_buf_adds(&b, "\nno runs in this window\n");
    int w = ms_buf_write(&b, out, err, errlen);
    ms_buf_free(&b);
    return w;
}
