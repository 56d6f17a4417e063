/* diff_side — the grammar of a `moonspan diff` side (run:ID or ID,
 * eval:ID, last or last~N, SINCE..UNTIL, a trace-name glob), shared by
 * the command (host/cmd_diff.c) and the UI's /api/diff
 * (host/ui_api_diff.c), so a side means the same thing typed in either. */
#ifndef MS_DIFF_SIDE_H
#define MS_DIFF_SIDE_H

#include <stddef.h>
#include <stdint.h>

#include "ms_diff.h"

/* What every side error message ends with: the forms a side takes. */
extern const char MS_DIFF_SIDES[];

/* Parses side `which` ("A" or "B") from arg (kept in sd->arg: it must
 * outlive sd), windows counted back from `now` (epoch ns). Returns 0, or
 * -1 with err naming the problem and the fix (the same one-line messages
 * `moonspan diff` exits 2 with). */
int ms_diff_side_parse(const char *which, const char *arg, int64_t now, ms_diff_side *sd, char *err,
                       size_t errlen);

#endif
