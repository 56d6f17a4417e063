#include "ms_hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t ms_hist_bucket_low(uint32_t b)
{
    if (b < 128)
        return b;
    uint32_t k = b - 128;
    int m = 7 + (int)(k / 64);
    return (int64_t)((UINT64_C(64) + k % 64) << (m - 6));
}

int64_t ms_hist_bucket_mid(uint32_t b)
{
    if (b < 128)
        return b;
    int m = 7 + (int)((b - 128) / 64);
    return ms_hist_bucket_low(b) + (INT64_C(1) << (m - 6)) / 2;
}

/* Makes the window cover bucket b. */
static int cover(ms_hist *h, uint32_t b)
{
    if (b >= MS_HIST_BUCKETS)
        return -1;
    if (h->n == 0) {
        if (h->cap < 16) {
            uint64_t *c = realloc(h->counts, 16 * sizeof *c);
            if (!c)
                return -1;
            h->counts = c;
            h->cap = 16;
        }
        /* all the memory a reused histogram has, around b: neighbours come next */
        h->n = h->cap < MS_HIST_BUCKETS ? h->cap : MS_HIST_BUCKETS;
        h->lo = b >= 8 ? b - 8 : 0;
        if (h->lo + h->n > MS_HIST_BUCKETS)
            h->lo = MS_HIST_BUCKETS - h->n; /* still <= b: b - 8 + n was past the end */
        memset(h->counts, 0, h->n * sizeof *h->counts);
        return 0;
    }
    uint32_t lo = b < h->lo ? b : h->lo;
    uint32_t hi = b >= h->lo + h->n ? b + 1 : h->lo + h->n;
    uint32_t need = hi - lo;
    if (need > h->cap) {
        uint32_t cap = h->cap * 2;
        while (cap < need)
            cap *= 2;
        uint64_t *c = realloc(h->counts, cap * sizeof *c);
        if (!c)
            return -1;
        h->counts = c;
        h->cap = cap;
    }
    if (lo < h->lo) {
        uint32_t shift = h->lo - lo;
        memmove(h->counts + shift, h->counts, h->n * sizeof *h->counts);
        memset(h->counts, 0, shift * sizeof *h->counts);
    }
    memset(h->counts + (h->lo - lo) + h->n, 0, (need - (h->lo - lo) - h->n) * sizeof *h->counts);
    h->lo = lo;
    h->n = need;
    return 0;
}

int ms_hist_add_bucket(ms_hist *h, uint32_t b, uint64_t count)
{
    if (!(h->n && b >= h->lo && b < h->lo + h->n) && cover(h, b))
        return -1;
    h->counts[b - h->lo] += count;
    return 0;
}

int ms_hist_merge(ms_hist *h, const ms_hist *from)
{
    for (uint32_t i = 0; i < from->n; i++)
        if (from->counts[i] && ms_hist_add_bucket(h, from->lo + i, from->counts[i]))
            return -1;
    return 0;
}

uint64_t ms_hist_total(const ms_hist *h)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < h->n; i++)
        n += h->counts[i];
    return n;
}

int64_t ms_hist_quantile(const ms_hist *h, double q)
{
    uint64_t total = ms_hist_total(h);
    if (!total)
        return 0;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return ms_hist_bucket_mid(h->lo + i);
    }
    return ms_hist_bucket_mid(h->lo + h->n - 1);
}

void ms_hist_reset(ms_hist *h)
{
    h->n = 0;
}

void ms_hist_free(ms_hist *h)
{
    free(h->counts);
    memset(h, 0, sizeof *h);
}
