#include "ms_query.h"

#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_text.h"

#define MAX_CELL 60 /* bytes of a text cell before it is cut */

/* Writes b to out and empties it; -1 when the write failed. */
static int flush_out(ms_buf *b, FILE *out)
{
    if (b->len && fwrite(b->data, 1, b->len, out) != b->len)
        return -1;
    ms_buf_reset(b);
    return 0;
}

static void hex_blob(ms_buf *b, const unsigned char *p, int n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        ms_buf_addc(b, hex[p[i] >> 4]);
        ms_buf_addc(b, hex[p[i] & 15]);
    }
}

static void json_value(ms_buf *b, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: ms_buf_adds(b, "null"); break;
    case SQLITE_INTEGER: ms_json_int(b, sqlite3_column_int64(st, col)); break;
    case SQLITE_FLOAT: ms_json_num(b, sqlite3_column_double(st, col)); break;
    case SQLITE_BLOB:
        ms_buf_addc(b, '"');
        hex_blob(b, sqlite3_column_blob(st, col), sqlite3_column_bytes(st, col));
        ms_buf_addc(b, '"');
        break;
    default:
        ms_json_str(b, (const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
        break;
    }
}

static void csv_field(ms_buf *b, const char *s, size_t n)
{
    if (!memchr(s, '"', n) && !memchr(s, ',', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n)) {
        ms_buf_add(b, s, n);
        return;
    }
    ms_buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            ms_buf_addc(b, '"');
        ms_buf_addc(b, s[i]);
    }
    ms_buf_addc(b, '"');
}

static void csv_value(ms_buf *b, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: break;
    case SQLITE_BLOB: hex_blob(b, sqlite3_column_blob(st, col), sqlite3_column_bytes(st, col)); break;
    default:
        csv_field(b, (const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
        break;
    }
}

/* The text of a cell as shown: escaped, cut at MAX_CELL bytes. */
static void text_cell(ms_buf *b, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_BLOB) {
        int n = sqlite3_column_bytes(st, col);
        ms_buf_printf(b, "(%d byte blob)", n);
        return;
    }
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (s)
        ms_buf_add_text_max(b, s, (size_t)sqlite3_column_bytes(st, col), MAX_CELL, 0);
}

/* Columns on a terminal: UTF-8 lead bytes. */
static int cols(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

int ms_query_write(sqlite3 *db, const char *sql, enum ms_query_format format, FILE *out,
                   char *err, size_t errlen)
{
    sqlite3_stmt *st;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
        ms_errf(err, errlen, "%s", sqlite3_errmsg(db));
        return 1;
    }
    if (!st) {
        ms_errf(err, errlen, "no SQL statement given; e.g. \"SELECT name, duration_ns FROM spans LIMIT 5\"");
        return 1;
    }
    while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        sqlite3_finalize(st);
        ms_errf(err, errlen, "one statement at a time: \"%.40s\" follows the first", tail);
        return 1;
    }
    int n = sqlite3_column_count(st);
    ms_buf b = {0}, cells = {0};
    size_t *offs = NULL, noffs = 0, capoffs = 0;
    int *width = calloc((size_t)(n ? n : 1), sizeof *width);
    int ret = -1, rc;
    long rows = 0;
    if (!width)
        goto oom;
    if (format == MS_QUERY_JSON) {
        ms_buf_addc(&b, '[');
    } else if (format == MS_QUERY_CSV) {
        for (int c = 0; c < n; c++) {
            if (c)
                ms_buf_addc(&b, ',');
            const char *name = sqlite3_column_name(st, c);
            csv_field(&b, name, strlen(name));
        }
        ms_buf_adds(&b, "\r\n");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (format == MS_QUERY_JSON) {
            ms_buf_adds(&b, rows ? ",\n{" : "\n{");
            int first = 1;
            for (int c = 0; c < n; c++) {
                ms_json_key(&b, &first, sqlite3_column_name(st, c));
                json_value(&b, st, c);
            }
            ms_buf_addc(&b, '}');
        } else if (format == MS_QUERY_CSV) {
            for (int c = 0; c < n; c++) {
                if (c)
                    ms_buf_addc(&b, ',');
                csv_value(&b, st, c);
            }
            ms_buf_adds(&b, "\r\n");
        } else { /* kept: the widths are known at the end */
            for (int c = 0; c < n; c++) {
                if (noffs + 2 > capoffs) {
                    size_t cap = capoffs ? capoffs * 2 : 256;
                    size_t *no = realloc(offs, cap * sizeof *no);
                    if (!no)
                        goto oom;
                    offs = no;
                    capoffs = cap;
                }
                size_t at = cells.len;
                text_cell(&cells, st, c);
                offs[noffs++] = at;
                int w = cols(cells.data ? cells.data + at : "", cells.len - at);
                if (w > width[c])
                    width[c] = w;
                ms_buf_addc(&cells, 0);
            }
        }
        rows++;
        if (b.oom || cells.oom)
            goto oom;
        if (b.len > 65536 && flush_out(&b, out))
            goto write_failed;
    }
    if (rc != SQLITE_DONE) {
        ret = 1;
        ms_errf(err, errlen, "%s", sqlite3_errmsg(db));
        goto done;
    }
    if (format == MS_QUERY_JSON) {
        ms_buf_adds(&b, rows ? "\n]\n" : "]\n");
    } else if (format == MS_QUERY_TEXT) {
        for (int c = 0; c < n; c++) {
            int w = cols(sqlite3_column_name(st, c), strlen(sqlite3_column_name(st, c)));
            if (w > width[c])
                width[c] = w;
        }
        for (int c = 0; c < n; c++) {
            size_t at = b.len;
            ms_buf_add_texts(&b, sqlite3_column_name(st, c), 0);
            if (c + 1 < n)
                ms_buf_printf(&b, "%*s", width[c] - cols(b.data + at, b.len - at) + 2, "");
        }
        ms_buf_addc(&b, '\n');
        for (long r = 0; r < rows; r++) {
            for (int c = 0; c < n; c++) {
                const char *cell = cells.data + offs[r * n + c];
                ms_buf_adds(&b, cell);
                if (c + 1 < n)
                    ms_buf_printf(&b, "%*s", width[c] - cols(cell, strlen(cell)) + 2, "");
            }
            ms_buf_addc(&b, '\n');
            if (b.len > 65536 && flush_out(&b, out))
                goto write_failed;
        }
        ms_buf_printf(&b, "(%ld row%s)\n", rows, rows == 1 ? "" : "s");
    }
    if (b.oom)
        goto oom;
    if (flush_out(&b, out) || fflush(out))
        goto write_failed;
    ret = 0;
    goto done;
write_failed:
    ms_errf(err, errlen, "cannot write the result");
    goto done;
oom:
    ms_errf(err, errlen, "out of memory holding the result; --csv and --json stream it instead");
done:
    free(width);
    free(offs);
    ms_buf_free(&b);
    ms_buf_free(&cells);
    sqlite3_finalize(st);
    return ret;
}
