#include "ms_clock.h"

#include <pthread.h>

static int64_t epoch_minus_mono;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_offset(void)
{
    struct timespec wall;
    int64_t before = ms_mono_ns();
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t after = ms_mono_ns();
    /* pair the wall reading with the midpoint of the two monotonic reads */
    epoch_minus_mono = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec - (before + (after - before) / 2);
}

void ms_clock_init(void) { pthread_once(&once, init_offset); }

int64_t ms_mono_to_epoch(int64_t mono_ns) { return mono_ns + epoch_minus_mono; }

int64_t ms_epoch_to_mono(int64_t epoch_ns) { return epoch_ns - epoch_minus_mono; }

int64_t ms_epoch_ns(void) { return ms_mono_to_epoch(ms_mono_ns()); }
