/* ms_fmt — how the store's readers write numbers, times and members:
 * milliseconds and dollars for people, UTC dates, padded table cells,
 * JSON members, and the one write of a finished output.
 *
 * Conventions every view keeps: NaN means "no data" and prints as "-"
 * (JSON null); an unknown cost is never printed as $0. */
#ifndef MS_FMT_H
#define MS_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ms_buf.h"
#include "ms_text.h"

#define MS_NS_PER_MS 1e6
#define MS_NS_PER_DAY INT64_C(86400000000000)

/* Floor division, so times before 1970 still land in the right day. */
int64_t ms_floor_div(int64_t a, int64_t b);

/* Civil date (proleptic Gregorian) of day z since 1970-01-01, for any
 * int64 day: no time_t round trip per row. */
void ms_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Epoch ns as UTC ISO-8601 to the second ("2024-05-01T12:00:00Z"). */
void ms_iso_utc(int64_t ns, char *out, size_t n);

/* Milliseconds for people ("370 ms", "12.5 s", "3.1 h"; "250 µs", "3.00
 * µs" and "400 ns" below a millisecond, where ms would print 0.00): three
 * significant digits at most, fewer decimals as the value grows. "-" for
 * NaN. The text holds "µ" (two bytes, one column): align it with
 * ms_fmt_right / ms_fmt_left, not printf widths. Returns buf. */
const char *ms_fmt_ms(char *buf, size_t n, double ms);

/* Dollars for people: small values keep six decimals rather than round
 * to a misleading $0.00. "-" for NaN. Returns buf. */
const char *ms_fmt_usd(char *buf, size_t n, double v);

/* Appends "$0.0123" or, when `unknown` calls had no price, "$0.0123 +
 * unknown for 3 calls", or only "unknown for 3 calls" when nothing was
 * priced (`priced` counts requests or calls whose cost is known). */
void ms_fmt_cost(ms_buf *b, double cost, int64_t priced, int64_t unknown);

/* Appends text read from the store for a terminal, on one line. Names,
 * attributes and error messages were written by scripts, models and
 * servers: each run of \r, \n and \t becomes one space, and every other
 * control character is made visible (ms_buf_add_text), so none can
 * retitle, clear or garble the terminal. NULL appends `missing`. */
void ms_fmt_text(ms_buf *b, const char *s, const char *missing);

/* The same, cut after at most `max` bytes of the one-line text (at a
 * character boundary), "..." marking the cut. */
void ms_fmt_text_max(ms_buf *b, const char *s, size_t max, const char *missing);

/* The columns `s` takes once written by ms_fmt_text: one per character
 * of its escaped form. */
int ms_fmt_text_cols(const char *s);

/* `s`, our own numbers and words (nothing from the store: ASCII, and the
 * "µ", "Σ", "×" of durations and folded spans), right- or left-aligned
 * in `width` columns, a UTF-8 character counting as one. */
void ms_fmt_right(ms_buf *b, const char *s, int width);
void ms_fmt_left(ms_buf *b, const char *s, int width);

/* ms_fmt_text of `s`, left-aligned and padded with spaces to `width`
 * columns. */
void ms_fmt_padded(ms_buf *b, const char *s, int width);

/* The same, but a text wider than `width` keeps its end, "..." marking
 * the cut: the last names of a path say the most. */
void ms_fmt_padded_tail(ms_buf *b, const char *s, int width);

/* JSON members "key":value; `first` is the object's "nothing written
 * yet" flag (see ms_json_key). NaN and NULL become null; `raw` is JSON
 * text already. */
void ms_kv_int(ms_buf *b, int *first, const char *k, int64_t v);
void ms_kv_num(ms_buf *b, int *first, const char *k, double v);
void ms_kv_str(ms_buf *b, int *first, const char *k, const char *s);
void ms_kv_raw(ms_buf *b, int *first, const char *k, const char *raw);

/* "key":{"p50":p50,"p95":p95}: a latency's median and tail (ms; NaN
 * becomes null). */
void ms_kv_p50_p95(ms_buf *b, int *first, const char *k, double p50, double p95);

/* "key":v when `has`, else "key":null: an id or a time that may be
 * missing, where 0 would read as a value. */
void ms_kv_int_or_null(ms_buf *b, int *first, const char *k, int has, int64_t v);

/* Writes the finished output to `out` in one go and flushes it. Returns
 * 0, or -1 with err when the buffer ran out of memory (nothing written)
 * or the write failed. */
int ms_buf_write(ms_buf *b, FILE *out, char *err, size_t errlen);

#endif
