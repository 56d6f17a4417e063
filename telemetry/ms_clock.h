/* ms_clock — the two clocks of moonspan.
 *
 * Durations come from CLOCK_MONOTONIC so they never go negative. A span's
 * start is reported as Unix epoch nanoseconds: the wall clock is read once
 * (ms_clock_init) and every later timestamp is that reading plus a
 * monotonic offset, so timestamps line up with other systems and stay
 * ordered even if the wall clock is stepped mid-run. */
#ifndef MS_CLOCK_H
#define MS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic nanoseconds (arbitrary origin). Hot path: one vDSO call. */
static inline int64_t ms_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads the wall clock once and pairs it with the monotonic clock.
 * Idempotent; call before the first ms_mono_to_epoch. */
void ms_clock_init(void);

/* Converts a ms_mono_ns() reading to Unix epoch nanoseconds. */
int64_t ms_mono_to_epoch(int64_t mono_ns);

/* The inverse of ms_mono_to_epoch: the monotonic reading that converts
 * to `epoch_ns` (for traces imported from elsewhere, whose times are
 * epoch). Exact, so ms_mono_to_epoch gives `epoch_ns` back. */
int64_t ms_epoch_to_mono(int64_t epoch_ns);

/* Current Unix epoch nanoseconds, on the same timeline as ms_mono_to_epoch. */
int64_t ms_epoch_ns(void);

#endif
