/* ms_profile — the profiler's rows (span_profiles, schema v5) for the
 * readers: `show --profile` (one trace, per span) and `report --profile`
 * (every profiled trace in the window, per step).
 *
 * Read-only, like every reader: a store of version 4 has no
 * span_profiles table and reads as a store with no profile. Function
 * names and sources come from scripts: text output escapes them
 * (ms_fmt_text), JSON carries them as they are. */
#ifndef MS_PROFILE_H
#define MS_PROFILE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ms_buf.h"
#include "ms_report.h"

/* Functions listed per span or step in text; --json lists them all. */
#define MS_PROFILE_TEXT_TOP 10

/* One row of span_profiles; strings are offsets into the caller's arena. */
typedef struct ms_prof_row {
    int64_t span_index, samples, self_ns;
    int64_t line;                 /* 0 a main chunk, -1 a C function */
    size_t function, source;
} ms_prof_row;

/* The rows of trace `row` (traces.id), by span, then most self time
 * first, appended to *rows (capacity *cap, count *n) with their strings
 * in `arena`. Nothing when the store predates profiles. Returns 0 or -1
 * with err. */
int ms_profile_rows(sqlite3 *db, int64_t row, ms_prof_row **rows, size_t *n, size_t *cap,
                    ms_buf *arena, char *err, size_t errlen);

/* A function of a profile as the views list it: its strings, and its
 * samples and self time in the span or step listed. */
typedef struct ms_prof_fn {
    const char *function, *source;
    int64_t line, samples, self_ns;
} ms_prof_fn;

/* Lists fns[0 .. n) (hottest first) for people, after `indent` spaces:
 * each one's share of `total_ns`, its time, its name, and where it is
 * defined ("script.lua:12", "script.lua" for a main chunk, "[C]"); the
 * first MS_PROFILE_TEXT_TOP, then how many more and their time. */
void ms_profile_text_list(ms_buf *b, int indent, const ms_prof_fn *fns, size_t n, int64_t total_ns);

/* All of them as a JSON array of {function, source, line, samples,
 * self_ms, share}. */
void ms_profile_json_list(ms_buf *b, const ms_prof_fn *fns, size_t n, int64_t total_ns);

/* `moonspan report --profile`: the hottest functions per step (span
 * name; a request's own code under its trace's name), over the profiled
 * traces within o's --since and --name, as text or JSON (o->json). Output
 * is built whole and written once. Returns 0 or -1 with err. */
int ms_profile_report_write(sqlite3 *db, const ms_report_opts *o, FILE *out, char *err, size_t errlen);

#endif
