/* ms_text — text for a terminal.
 *
 * Names, attributes, model ids and error messages come from scripts,
 * models and servers; printed raw, "\e]0;title\a" retitles the terminal
 * and "\e[2J" clears it. Every text view (report, traces, show, the run
 * timeline, eval output) writes such strings through ms_buf_add_text,
 * which makes every control character visible instead of acting on it.
 * JSON output needs none of this: ms_json_str escapes on its own. */
#ifndef MS_TEXT_H
#define MS_TEXT_H

#include <stddef.h>

#include "ms_buf.h"

/* Keep '\n' as a line break (tracebacks, multi-line messages); without
 * it a newline is written as the two characters "\n". */
#define MS_TEXT_NEWLINES 1

/* Appends s[0..n) with C0 controls, DEL, C1 controls (U+0080..U+009F),
 * the Unicode bidirectional overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069) and bytes that are not UTF-8 written as escapes:
 * \n \r \t for those three, \xHH for other bytes, \u{HHHH} for code
 * points. Everything else, valid UTF-8 included, is copied unchanged. */
void ms_buf_add_text(ms_buf *b, const char *s, size_t n, int flags);

/* The same for a NUL-terminated string; NULL appends nothing. */
void ms_buf_add_texts(ms_buf *b, const char *s, int flags);

/* Appends at most `max` bytes of s (cut at a UTF-8 character boundary),
 * escaped as above, then "..." when something was left out. */
void ms_buf_add_text_max(ms_buf *b, const char *s, size_t n, size_t max, int flags);

#endif
