/* ms_profile_read — one trace's profile rows, and how both profile views
 * list functions (see ms_profile.h). */
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

static double share_of(int64_t part, int64_t whole)
{
    return whole ? (double)part / (double)whole : 0;
}

void ms_profile_text_list(ms_buf *b, int indent, const ms_prof_fn *fns, size_t n, int64_t total_ns)
{
    char pct[16], ms[40];
    size_t shown = n < MS_PROFILE_TEXT_TOP ? n : MS_PROFILE_TEXT_TOP;
    int w = 8;
    for (size_t k = 0; k < shown; k++) {
        int cw = ms_fmt_text_cols(fns[k].function);
        w = cw > w ? cw : w;
    }
    w = w > 40 ? 40 : w;
    int64_t rest = total_ns;
    for (size_t k = 0; k < shown; k++) {
        const ms_prof_fn *f = &fns[k];
        snprintf(pct, sizeof pct, "%.1f%%", 100 * share_of(f->self_ns, total_ns));
        ms_buf_printf(b, "%*s", indent, "");
        ms_fmt_right(b, pct, 6);
        ms_fmt_right(b, ms_fmt_ms(ms, sizeof ms, (double)f->self_ns / MS_NS_PER_MS), 11);
        ms_buf_adds(b, "  ");
        ms_fmt_padded(b, f->function, w);
        ms_buf_adds(b, "  ");
        ms_fmt_text(b, f->source, "?");
        if (f->line > 0)
            ms_buf_printf(b, ":%lld", (long long)f->line);
        ms_buf_addc(b, '\n');
        rest -= f->self_ns;
    }
    if (n > shown)
        ms_buf_printf(b, "%*s... and %zu more function%s (%s; --json lists all)\n", indent, "", n - shown,
                      n - shown == 1 ? "" : "s", ms_fmt_ms(ms, sizeof ms, (double)rest / MS_NS_PER_MS));
}

void ms_profile_json_list(ms_buf *b, const ms_prof_fn *fns, size_t n, int64_t total_ns)
{
    ms_buf_addc(b, '[');
    for (size_t k = 0; k < n; k++) {
        const ms_prof_fn *fn = &fns[k];
        int f = 1;
        if (k)
            ms_buf_addc(b, ',');
        ms_buf_addc(b, '{');
        ms_kv_str(b, &f, "function", fn->function);
        ms_kv_str(b, &f, "source", fn->source);
        ms_kv_int(b, &f, "line", fn->line);
        ms_kv_int(b, &f, "samples", fn->samples);
        ms_kv_num(b, &f, "self_ms", (double)fn->self_ns / MS_NS_PER_MS);
        ms_kv_num(b, &f, "share", share_of(fn->self_ns, total_ns));
        ms_buf_addc(b, '}');
    }
    ms_buf_addc(b, ']');
}
