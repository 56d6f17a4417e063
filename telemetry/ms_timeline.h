/* ms_timeline — a trace in memory as the text a run prints when it ends
 * (and ctx:summary() returns): a header with its totals, then its spans
 * by start, each with its offset from the request's start and its
 * duration, siblings of one name folded into one line (ms_siblings.h).
 *
 * A trace written in parts while it ran holds only its last spans: the
 * header says how many were written before, and where to see them. */
#ifndef MS_TIMELINE_H
#define MS_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_trace.h"

/* Lines of spans `moonspan run` prints per trace: a fine trace stays a
 * glance, and `moonspan show` has the rest. */
#define MS_TIMELINE_LINES 40

/* Appends the timeline of `t` as of `now` (monotonic; open spans end
 * there) to `out`: at most `max_lines` lines of spans (0: all), then
 * "... N more spans" when some did not fit. */
void ms_trace_timeline(const ms_trace *t, int64_t now, size_t max_lines, ms_buf *out);

#endif
