/* ms_profile_read — one trace's profile rows, and how both profile views
 * write a function (see ms_profile.h). */
#include "ms_profile.h"

#include "ms_fmt.h"
#include "ms_read.h"

int ms_profile_rows(sqlite3 *db, int64_t row, ms_prof_row **rows, size_t *n, size_t *cap,
                    ms_buf *arena, char *err, size_t errlen)
{
    int has = ms_schema_has(db, "span_profiles", NULL, err, errlen);
    if (has <= 0)
        return has;
    sqlite3_stmt *st;
    if (ms_read_prepare(db, "SELECT span_index, function, source, line, samples, self_ns"
                            " FROM span_profiles WHERE trace_row = ?1"
                            " ORDER BY span_index, self_ns DESC, function, source, line",
                        &st, err, errlen))
        return -1;
    int rc, ret = 0;
    sqlite3_bind_int64(st, 1, row);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ms_grow((void **)rows, cap, *n, sizeof **rows)) {
            ret = ms_errf(err, errlen, "out of memory reading the profile");
            break;
        }
        ms_prof_row *r = &(*rows)[(*n)++];
        r->span_index = sqlite3_column_int64(st, 0);
        r->function = ms_arena_col(arena, st, 1);
        r->source = ms_arena_col(arena, st, 2);
        r->line = sqlite3_column_int64(st, 3);
        r->samples = sqlite3_column_int64(st, 4);
        r->self_ns = sqlite3_column_int64(st, 5);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = ms_errf(err, errlen, "cannot read the profile: %s", sqlite3_errmsg(db));
    if (ret == 0 && arena->oom)
        ret = ms_errf(err, errlen, "out of memory reading the profile");
    sqlite3_finalize(st);
    return ret;
}

void ms_profile_text_fn(ms_buf *b, int indent, double share, int64_t self_ns, const char *function,
                        int width, const char *source, int64_t line)
{
    char pct[16], ms[40];
    snprintf(pct, sizeof pct, "%.1f%%", 100 * share);
    ms_buf_printf(b, "%*s", indent, "");
    ms_fmt_right(b, pct, 6);
    ms_fmt_right(b, ms_fmt_ms(ms, sizeof ms, (double)self_ns / MS_NS_PER_MS), 11);
    ms_buf_adds(b, "  ");
    ms_fmt_padded(b, function, width);
    ms_buf_adds(b, "  ");
    ms_fmt_text(b, source, "?");
    if (line > 0)
        ms_buf_printf(b, ":%lld", (long long)line);
    ms_buf_addc(b, '\n');
}

void ms_profile_json_fn(ms_buf *b, const char *function, const char *source, int64_t line,
                        int64_t samples, int64_t self_ns, double share)
{
    int f = 1;
    ms_buf_addc(b, '{');
    ms_kv_str(b, &f, "function", function);
    ms_kv_str(b, &f, "source", source);
    ms_kv_int(b, &f, "line", line);
    ms_kv_int(b, &f, "samples", samples);
    ms_kv_num(b, &f, "self_ms", (double)self_ns / MS_NS_PER_MS);
    ms_kv_num(b, &f, "share", share);
    ms_buf_addc(b, '}');
}
