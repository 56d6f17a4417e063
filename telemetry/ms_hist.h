/* ms_hist — a mergeable histogram of durations with a bounded relative
 * error, for folded spans (one record standing for N repetitions).
 *
 * Buckets are log-linear, as in HdrHistogram: values below 128 ns have a
 * bucket each (exact); above, every power of two is cut into 64 equal
 * buckets, so a bucket is at most 1/64 of its lower bound wide. A value
 * read back is its bucket's midpoint, hence within MS_HIST_REL_ERROR
 * (1/128, 0.78%) of the true value. Two histograms merge by adding counts.
 *
 * Only the buckets between the lowest and highest one used are kept (a
 * dense window that grows as needed): a span's repetitions mostly fall
 * within an octave or two, so a histogram is a few hundred bytes. */
#ifndef MS_HIST_H
#define MS_HIST_H

#include <stddef.h>
#include <stdint.h>

#define MS_HIST_REL_ERROR (1.0 / 128)
#define MS_HIST_BUCKETS (128 + (63 - 7) * 64) /* every int64 duration: octaves 7 to 62 */

typedef struct ms_hist {
    uint32_t lo;        /* bucket index of counts[0] */
    uint32_t n, cap;    /* buckets in the window; allocated */
    uint64_t *counts;
} ms_hist;

/* The bucket of v (ns, clamped at 0) and the values a bucket stands for. */
static inline uint32_t ms_hist_bucket(int64_t v)
{
    if (v < 128)
        return v < 0 ? 0 : (uint32_t)v;
    int m = 63 - __builtin_clzll((uint64_t)v); /* 7 .. 62 */
    return (uint32_t)(128 + (m - 7) * 64) + (uint32_t)(((uint64_t)v >> (m - 6)) & 63);
}
int64_t ms_hist_bucket_low(uint32_t b);
int64_t ms_hist_bucket_mid(uint32_t b);

/* Adds `count` values in bucket b. Returns 0, or -1 when memory ran out
 * (the histogram is unchanged). */
int ms_hist_add_bucket(ms_hist *h, uint32_t b, uint64_t count);
static inline int ms_hist_add(ms_hist *h, int64_t v)
{
    uint32_t b = ms_hist_bucket(v);
    if (__builtin_expect(h->n && b >= h->lo && b < h->lo + h->n, 1)) {
        h->counts[b - h->lo]++;
        return 0;
    }
    return ms_hist_add_bucket(h, b, 1);
}

/* Adds every count of `from` into h. Returns 0 or -1 (out of memory). */
int ms_hist_merge(ms_hist *h, const ms_hist *from);

/* The number of values, and the value at quantile q (0..1, nearest rank:
 * the smallest bucket whose cumulative count reaches q of the total) as
 * its bucket's midpoint; 0 when empty. */
uint64_t ms_hist_total(const ms_hist *h);
int64_t ms_hist_quantile(const ms_hist *h, double q);

void ms_hist_reset(ms_hist *h);
void ms_hist_free(ms_hist *h);

#endif
