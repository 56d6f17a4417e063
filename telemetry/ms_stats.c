/* ms_stats — bootstrap intervals, exact tests and detectable effects (see
 * ms_stats.h for the contracts).
 *
 * The one idea worth stating here: a bootstrap quantile needs no
 * resample. Drawing n values with replacement from a sample is drawing n
 * indices uniformly from 0..n-1; index = floor(n * U) with U uniform on
 * [0, 1), and floor is monotone, so the resample's k-th smallest value is
 * sorted[floor(n * U_(k))] where U_(k) is the k-th smallest of n uniforms,
 * which is Beta(k + 1, n - k). Given U_(k) = u, the next one is u plus
 * (1 - u) times the least of n - k - 1 uniforms. So a resample quantile
 * (two neighbouring order statistics, interpolated as ms_percentile does)
 * costs two gamma variates and a power, not n draws and a selection: the
 * distribution is exactly the one resampling would give, ties included,
 * since ties only repeat values in `sorted`. */
#include "ms_stats.h"
#include "ms_percentile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ms_rng_seed(ms_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna). */
uint64_t ms_rng_next(ms_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ms_rng_unit(ms_rng *r)
{
    return (double)(ms_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Lemire's multiply-and-reject: the high word of x * n is uniform on
 * [0, n) once the few x whose low word falls below 2^64 mod n are
 * redrawn. */
uint64_t ms_rng_below(ms_rng *r, uint64_t n)
{
    __uint128_t m = (__uint128_t)ms_rng_next(r) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            m = (__uint128_t)ms_rng_next(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Uniform on (0, 1]: safe to take the log of. */
static double unit_open0(ms_rng *r)
{
    return (double)((ms_rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

/* Standard normal, Marsaglia's polar method (one of the pair is used:
 * keeping the other would make a draw depend on the call before it). */
static double normal_draw(ms_rng *r)
{
    for (;;) {
        double u = 2.0 * ms_rng_unit(r) - 1.0;
        double v = 2.0 * ms_rng_unit(r) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0)
            return u * sqrt(-2.0 * log(s) / s);
    }
}

/* Gamma(shape, 1) for shape >= 1: Marsaglia and Tsang's squeeze. */
static double gamma_draw(ms_rng *r, double shape)
{
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal_draw(r);
        double v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = unit_open0(r);
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return d * v;
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return d * v;
    }
}

/* Beta(a, b) for a, b >= 1. */
static double beta_draw(ms_rng *r, double a, double b)
{
    double x = gamma_draw(r, a);
    double y = gamma_draw(r, b);
    return x / (x + y);
}

/* --- intervals ------------------------------------------------------------ */

enum ms_direction ms_ci_direction(ms_ci ci)
{
    if (ci.lo > 0.0)
        return MS_UP;    /* false for NaN */
    if (ci.hi < 0.0)
        return MS_DOWN;
    return MS_NO_EVIDENCE;
}

static const ms_ci NO_CI = {NAN, NAN, NAN};

static int valid_level(double level)
{
    return level > 0.0 && level < 1.0; /* false for NaN */
}

/* Finite values only: one infinity makes a mean, and the differences
 * of resampled quantiles (inf - inf), NaN. */
static int valid_sample(const double *v, size_t n)
{
    if (n > 0 && !v)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The percentile interval of `stats[0..resamples)` at `level` (reorders
 * it), with `est` as the estimate. */
static ms_ci percentile_interval(double *stats, int resamples, double level, double est)
{
    double qs[2] = {50.0 * (1.0 - level), 50.0 * (1.0 + level)};
    double lh[2];
    ms_percentiles(stats, (size_t)resamples, qs, 2, lh);
    return (ms_ci){est, lh[0], lh[1]};
}

/* Where ms_percentile's definition reads quantile q of n sorted values:
 * index k and the weight of index k + 1. */
static void quantile_rank(size_t n, double q, size_t *k, double *frac)
{
    double h = (double)(n - 1) * q / 100.0;
    *k = (size_t)h;
    *frac = h - (double)*k;
    if (*k >= n - 1) {
        *k = n - 1;
        *frac = 0.0;
    }
}

static double interpolate(double lo, double hi, double frac)
{
    if (frac == 0.0 || lo == hi) /* keeps inf, inf from giving NaN */
        return lo;
    return lo + frac * (hi - lo);
}

static double sorted_quantile(const double *s, size_t n, double q)
{
    size_t k;
    double frac;
    quantile_rank(n, q, &k, &frac);
    return interpolate(s[k], frac > 0.0 ? s[k + 1] : s[k], frac);
}

static size_t index_of_unit(double u, size_t n)
{
    size_t i = (size_t)(u * (double)n);
    return i < n ? i : n - 1;
}

/* Quantile q of one resample of the sorted sample s[0..n), drawn through
 * its order statistics (see the top of the file). */
static double resample_quantile(ms_rng *r, const double *s, size_t n, size_t k, double frac)
{
    double u = beta_draw(r, (double)k + 1.0, (double)(n - k));
    double lo = s[index_of_unit(u, n)];
    if (frac == 0.0)
        return lo;
    /* The least of m = n - k - 1 uniforms is 1 - V^(1/m). */
    double m = (double)(n - k - 1);
    double least = -expm1(log(unit_open0(r)) / m);
    double hi = s[index_of_unit(u + (1.0 - u) * least, n)];
    return interpolate(lo, hi, frac);
}

static double *sorted_copy(const double *v, size_t n)
{
    double *s = malloc(n * sizeof *s);
    if (!s)
        return NULL;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    return s;
}

int ms_boot_quantile_diff(const double *a, size_t na, const double *b, size_t nb,
                          double q, int resamples, double level, uint64_t seed,
                          ms_ci *out)
{
    if (!out || !(q >= 0.0 && q <= 100.0) || resamples < 1 || !valid_level(level) ||
        !valid_sample(a, na) || !valid_sample(b, nb))
        return -1;
    if (na == 0 || nb == 0) {
        *out = NO_CI;
        return 0;
    }
    double *sa = sorted_copy(a, na);
    double *sb = sorted_copy(b, nb);
    double *stats = malloc((size_t)resamples * sizeof *stats);
    if (!sa || !sb || !stats) {
        free(sa);
        free(sb);
        free(stats);
        return -1;
    }
    size_t ka, kb;
    double fa, fb;
    quantile_rank(na, q, &ka, &fa);
    quantile_rank(nb, q, &kb, &fb);
    ms_rng r;
    ms_rng_seed(&r, seed);
    for (int i = 0; i < resamples; i++) {
        double qa = resample_quantile(&r, sa, na, ka, fa);
        double qb = resample_quantile(&r, sb, nb, kb, fb);
        stats[i] = qb - qa;
    }
    double est = sorted_quantile(sb, nb, q) - sorted_quantile(sa, na, q);
    *out = percentile_interval(stats, resamples, level, est);
    free(sa);
    free(sb);
    free(stats);
    return 0;
}

static double mean_of(const double *v, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    return sum / (double)n;
}

/* Samples up to this size are resampled value by value (exact); larger
 * ones through their order statistics, below. The two cost the same near
 * 10,000 values (about 35 us a resample). */
#define MEAN_EXACT_MAX 10000
/* Above it: this many order statistics drawn one by one at each end, and
 * this many strata between them. */
#define MEAN_TAIL_RANKS 128
#define MEAN_STRATA 128
#define MEAN_GAPS (MEAN_STRATA + 2 * MEAN_TAIL_RANKS + 1)

/* A sample prepared for resampling its mean. Large samples keep their
 * values sorted and centred on the sample mean, with prefix sums of the
 * centred values and of their squares (p1[i], p2[i]: over the first i). */
typedef struct mean_sample {
    const double *v;
    size_t n;
    double center;
    double *c, *p1, *p2; /* NULL for a sample resampled value by value */
} mean_sample;

static void mean_sample_free(mean_sample *m)
{
    free(m->c);
    free(m->p1);
    free(m->p2);
}

static int mean_sample_init(mean_sample *m, const double *v, size_t n)
{
    *m = (mean_sample){v, n, mean_of(v, n), NULL, NULL, NULL};
    if (n <= MEAN_EXACT_MAX)
        return 0;
    m->c = sorted_copy(v, n);
    m->p1 = malloc((n + 1) * sizeof *m->p1);
    m->p2 = malloc((n + 1) * sizeof *m->p2);
    if (!m->c || !m->p1 || !m->p2) {
        mean_sample_free(m);
        return -1;
    }
    m->p1[0] = m->p2[0] = 0.0;
    for (size_t i = 0; i < n; i++) {
        m->c[i] -= m->center;
        m->p1[i + 1] = m->p1[i] + m->c[i];
        m->p2[i + 1] = m->p2[i] + m->c[i] * m->c[i];
    }
    return 0;
}

/* The integral of c[floor(t)] (or its square) for t from 0 to x, x in
 * [0, n]: positions in the sorted sample as a continuous line. */
static double position_integral(const double *c, const double *prefix, size_t n, double x,
                                int squared)
{
    size_t i = (size_t)x;
    if (i >= n)
        return prefix[n];
    double ci = squared ? c[i] * c[i] : c[i];
    return prefix[i] + (x - (double)i) * ci;
}

/* The sum of `count` values drawn independently as c[floor(n U)], U
 * uniform on (u1, u2): a normal with that sum's exact mean and variance.
 * Only strata of a large sample come here (count ~ n / MEAN_STRATA, over
 * a narrow slice of the sorted values), where the sum is already normal
 * well past what a 2,000-resample interval can resolve. */
static double stratum_sum(ms_rng *r, const mean_sample *m, double u1, double u2, double count)
{
    if (count <= 0.0)
        return 0.0;
    double nn = (double)m->n;
    double x1 = nn * u1, x2 = nn * u2;
    if (!(x2 > x1)) /* both ends in one place: every draw is that value */
        return count * m->c[index_of_unit(u1, m->n)];
    double w = x2 - x1;
    double mu = (position_integral(m->c, m->p1, m->n, x2, 0) -
                 position_integral(m->c, m->p1, m->n, x1, 0)) / w;
    double sq = (position_integral(m->c, m->p2, m->n, x2, 1) -
                 position_integral(m->c, m->p2, m->n, x1, 1)) / w;
    double var = sq - mu * mu;
    if (var < 0.0) /* rounding on a slice of near-equal values */
        var = 0.0;
    return count * mu + sqrt(count * var) * normal_draw(r);
}

/* One resample's mean. A large sample's resample is walked in rank order
 * through its order statistics U_(0) < ... < U_(n-1) of n uniforms (see
 * the top of the file), drawn as the n + 1 spacings they cut (0, 1)
 * into: independent Exp(1) values divided by their total, so that the
 * spacing spanned by j ranks at once is one Gamma(j) draw. The lowest and
 * highest MEAN_TAIL_RANKS order statistics are drawn one at a time (the
 * tails, where one outlier can move a mean), the middle in MEAN_STRATA
 * jumps, the j - 1 values inside each jump summed by stratum_sum.
 * `gaps` is scratch for MEAN_STRATA + 2 * MEAN_TAIL_RANKS + 1 spacings. */
static double resample_mean(ms_rng *r, const mean_sample *m, double *gaps)
{
    size_t n = m->n;
    if (!m->c) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += m->v[ms_rng_below(r, n)];
        return sum / (double)n;
    }
    size_t middle = n - 2 * MEAN_TAIL_RANKS;
    size_t ng = 0;
    double total = 0.0;
    for (size_t i = 0; i < MEAN_TAIL_RANKS; i++)
        total += gaps[ng++] = -log(unit_open0(r));
    for (size_t g = 0; g < MEAN_STRATA; g++) {
        size_t j = (g + 1) * middle / MEAN_STRATA - g * middle / MEAN_STRATA;
        total += gaps[ng++] = gamma_draw(r, (double)j);
    }
    for (size_t i = 0; i <= MEAN_TAIL_RANKS; i++) /* and the one above the top */
        total += gaps[ng++] = -log(unit_open0(r));

    double cum = 0.0, u = 0.0, sum = 0.0;
    ng = 0;
    for (size_t i = 0; i < MEAN_TAIL_RANKS; i++) {
        cum += gaps[ng++];
        u = cum / total;
        sum += m->c[index_of_unit(u, n)];
    }
    for (size_t g = 0; g < MEAN_STRATA; g++) {
        size_t j = (g + 1) * middle / MEAN_STRATA - g * middle / MEAN_STRATA;
        cum += gaps[ng++];
        double next = cum / total;
        sum += stratum_sum(r, m, u, next, (double)(j - 1));
        sum += m->c[index_of_unit(next, n)];
        u = next;
    }
    for (size_t i = 0; i < MEAN_TAIL_RANKS; i++) {
        cum += gaps[ng++];
        sum += m->c[index_of_unit(cum / total, n)];
    }
    return m->center + sum / (double)n;
}

int ms_boot_mean_diff(const double *a, size_t na, const double *b, size_t nb,
                      int resamples, double level, uint64_t seed, ms_ci *out)
{
    if (!out || resamples < 1 || !valid_level(level) || !valid_sample(a, na) ||
        !valid_sample(b, nb))
        return -1;
    if (na == 0 || nb == 0) {
        *out = NO_CI;
        return 0;
    }
    mean_sample ma, mb;
    int rc = mean_sample_init(&ma, a, na);
    if (rc == 0 && (rc = mean_sample_init(&mb, b, nb)) != 0)
        mean_sample_free(&ma);
    double *stats = rc == 0 ? malloc((size_t)resamples * sizeof *stats) : NULL;
    double *gaps = stats ? malloc(MEAN_GAPS * sizeof *gaps) : NULL;
    if (!gaps) {
        free(stats);
        if (rc == 0) {
            mean_sample_free(&ma);
            mean_sample_free(&mb);
        }
        return -1;
    }
    ms_rng r;
    ms_rng_seed(&r, seed);
    for (int i = 0; i < resamples; i++) {
        double xa = resample_mean(&r, &ma, gaps);
        double xb = resample_mean(&r, &mb, gaps);
        stats[i] = xb - xa;
    }
    *out = percentile_interval(stats, resamples, level, mb.center - ma.center);
    free(gaps);
    mean_sample_free(&ma);
    mean_sample_free(&mb);
    free(stats);
    return 0;
}

int ms_boot_paired_mean(const double *d, size_t n, int resamples, double level,
                        uint64_t seed, ms_ci *out)
{
    if (!out || resamples < 1 || !valid_level(level) || !valid_sample(d, n))
        return -1;
    if (n == 0) {
        *out = NO_CI;
        return 0;
    }
    mean_sample md;
    if (mean_sample_init(&md, d, n) != 0)
        return -1;
    double *stats = malloc((size_t)resamples * sizeof *stats);
    double *gaps = malloc(MEAN_GAPS * sizeof *gaps);
    if (!stats || !gaps) {
        free(stats);
        free(gaps);
        mean_sample_free(&md);
        return -1;
    }
    ms_rng r;
    ms_rng_seed(&r, seed);
    for (int i = 0; i < resamples; i++)
        stats[i] = resample_mean(&r, &md, gaps);
    *out = percentile_interval(stats, resamples, level, md.center);
    free(gaps);
    mean_sample_free(&md);
    free(stats);
    return 0;
}

/* --- exact tests ---------------------------------------------------------- */

/* Loader's saddle-point binomial ("Fast and accurate computation of
 * binomial probabilities", 2000), as R's dbinom computes it: lgamma of
 * 10^7 carries an absolute error near 1e-8, which a pmf built from three
 * of them inherits as a relative one; these terms stay near 1e-15. */

/* log(n!) - log(sqrt(2 pi n) (n / e)^n): Stirling's error. */
static double stirlerr(double n)
{
    const double s0 = 1.0 / 12, s1 = 1.0 / 360, s2 = 1.0 / 1260, s3 = 1.0 / 1680,
                 s4 = 1.0 / 1188;
    if (n <= 15.0) /* small: the cancellation costs only ~1e-15 absolute */
        return lgamma(n + 1.0) - (n + 0.5) * log(n) + n - 0.5 * log(2.0 * M_PI);
    double nn = n * n;
    if (n > 500)
        return (s0 - s1 / nn) / n;
    if (n > 80)
        return (s0 - (s1 - s2 / nn) / nn) / n;
    if (n > 35)
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n;
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n;
}

/* x log(x / np) + np - x, without the cancellation when x is near np. */
static double bd0(double x, double np)
{
    if (fabs(x - np) < 0.1 * (x + np)) {
        double v = (x - np) / (x + np);
        double s = (x - np) * v;
        double ej = 2.0 * x * v;
        v = v * v;
        for (int j = 1; j < 1000; j++) {
            ej *= v;
            double s1 = s + ej / (double)(2 * j + 1);
            if (s1 == s)
                return s1;
            s = s1;
        }
        return s;
    }
    return x * log(x / np) + np - x;
}

/* P(X = x) for X ~ Binomial(n, p), q = 1 - p, 0 <= x <= n, 0 < p < 1. */
static double binom_pmf(double x, double n, double p, double q)
{
    if (x == 0.0) {
        if (n == 0.0)
            return 1.0;
        return exp(p < 0.1 ? -bd0(n, n * q) - n * p : n * log(q));
    }
    if (x == n)
        return exp(q < 0.1 ? -bd0(n, n * p) - n * q : n * log(p));
    double lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    double lf = log(2.0 * M_PI) + log(x) + log1p(-x / n);
    return exp(lc - 0.5 * lf);
}

/* Sums P(X = i) from i = from, stepping by `step` (+1 or -1) away from
 * the mode, until the terms stop mattering. Terms fall monotonically
 * away from the mode, so the first term is the largest and the sum
 * never loses more than rounding. */
static double binom_tail(int64_t from, int64_t n, double p, int step)
{
    double ratio_q_p = (1.0 - p) / p;
    double term = binom_pmf((double)from, (double)n, p, 1.0 - p);
    double sum = 0.0;
    int64_t i = from;
    while (term > 0.0) {
        sum += term;
        if (term < sum * 1e-17)
            break;
        if (step < 0) {
            if (i == 0)
                break;
            /* P(i-1) / P(i) = i / (n - i + 1) * (1 - p) / p */
            term *= (double)i / (double)(n - i + 1) * ratio_q_p;
            i--;
        } else {
            if (i == n)
                break;
            /* P(i+1) / P(i) = (n - i) / (i + 1) * p / (1 - p) */
            term *= (double)(n - i) / (double)(i + 1) / ratio_q_p;
            i++;
        }
    }
    return sum;
}

double ms_binom_cdf(int64_t k, int64_t n, double p)
{
    if (n < 0 || !(p >= 0.0 && p <= 1.0))
        return NAN;
    if (k < 0)
        return 0.0;
    if (k >= n)
        return 1.0;
    if (p == 0.0)
        return 1.0;
    if (p == 1.0)
        return 0.0;
    /* Sum the side of k away from the mode, where the terms fall. */
    double mode = floor((double)(n + 1) * p);
    if ((double)k < mode)
        return fmin(1.0, binom_tail(k, n, p, -1));
    return fmax(0.0, 1.0 - binom_tail(k + 1, n, p, +1));
}

double ms_mcnemar_exact(int64_t b, int64_t c)
{
    if (b < 0 || c < 0)
        return NAN;
    if (b + c == 0)
        return 1.0;
    double p = 2.0 * ms_binom_cdf(b < c ? b : c, b + c, 0.5);
    return p < 1.0 ? p : 1.0;
}

/* P(X = x), X the successes of group 1 in a table with margins n1, n2
 * (groups) and k (successes in all): hypergeometric, as the ratio of
 * binomial terms at p = k / (n1 + n2) (Loader; R's dhyper), which keeps
 * the saddle-point precision. */
static double hyper_pmf(int64_t x, int64_t n1, int64_t n2, int64_t k)
{
    double n = (double)(n1 + n2);
    double p = (double)k / n, q = 1.0 - p;
    if (k == 0 || k == n1 + n2)
        return 1.0; /* one table only */
    return binom_pmf((double)x, (double)n1, p, q) * binom_pmf((double)(k - x), (double)n2, p, q) /
           binom_pmf((double)k, n, p, q);
}

double ms_fisher_exact(int64_t k1, int64_t n1, int64_t k2, int64_t n2)
{
    if (n1 < 0 || n2 < 0 || k1 < 0 || k2 < 0 || k1 > n1 || k2 > n2)
        return NAN;
    int64_t k = k1 + k2;
    int64_t lo = k - n2 > 0 ? k - n2 : 0;
    int64_t hi = k < n1 ? k : n1;
    /* "No likelier than the one seen", with R's relative slack so tables
     * equally likely in exact arithmetic are not lost to rounding. */
    double bound = hyper_pmf(k1, n1, n2, k) * (1.0 + 1e-7);
    /* The hypergeometric is unimodal: walking out from its mode on each
     * side, the terms fall, so the tables counted on a side are the ones
     * past some point, and once a counted term no longer moves that
     * side's sum, none further out will. O(distance + sd), not O(range):
     * a million requests a side take milliseconds, not a second. */
    int64_t mode = (int64_t)(((double)n1 + 1.0) * ((double)k + 1.0) / ((double)(n1 + n2) + 2.0));
    if (mode < lo)
        mode = lo;
    if (mode > hi)
        mode = hi;
    double p = 0.0;
    for (int step = -1; step <= 1; step += 2) {
        double side = 0.0;
        for (int64_t x = step < 0 ? mode : mode + 1; x >= lo && x <= hi; x += step) {
            double px = hyper_pmf(x, n1, n2, k);
            if (px > bound)
                continue;
            side += px;
            if (px <= side * 1e-17)
                break;
        }
        p += side;
    }
    return p < 1.0 ? p : 1.0;
}

ms_ci ms_wilson(int64_t k, int64_t n, double level)
{
    if (n <= 0 || k < 0 || k > n || !valid_level(level))
        return NO_CI;
    double z = ms_normal_quantile(0.5 * (1.0 + level));
    double nn = (double)n;
    double p = (double)k / nn;
    double z2 = z * z;
    double denom = 1.0 + z2 / nn;
    double center = (p + z2 / (2.0 * nn)) / denom;
    double half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
    ms_ci ci = {p, center - half, center + half};
    /* Exact at the ends: rounding must not put 0 of n above zero. */
    if (k == 0 || ci.lo < 0.0)
        ci.lo = 0.0;
    if (k == n || ci.hi > 1.0)
        ci.hi = 1.0;
    return ci;
}

ms_ci ms_prop_diff(int64_t k1, int64_t n1, int64_t k2, int64_t n2, double level)
{
    ms_ci w1 = ms_wilson(k1, n1, level);
    ms_ci w2 = ms_wilson(k2, n2, level);
    if (isnan(w1.est) || isnan(w2.est))
        return NO_CI;
    double d = w2.est - w1.est;
    double below = sqrt((w2.est - w2.lo) * (w2.est - w2.lo) + (w1.hi - w1.est) * (w1.hi - w1.est));
    double above = sqrt((w2.hi - w2.est) * (w2.hi - w2.est) + (w1.est - w1.lo) * (w1.est - w1.lo));
    return (ms_ci){d, d - below, d + above};
}

/* --- sizes ---------------------------------------------------------------- */

/* For p <= 0.5: a rational start good to 4.5e-4 (Abramowitz and Stegun
 * 26.2.23), then Halley steps on Phi(z) - p with Phi from erfc, which
 * triple the correct digits each time; three reach double precision. */
static double lower_normal_quantile(double p)
{
    double t = sqrt(-2.0 * log(p));
    double z = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) /
                         (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))));
    for (int i = 0; i < 3; i++) {
        double e = 0.5 * erfc(-z / M_SQRT2) - p;
        double u = e * sqrt(2.0 * M_PI) * exp(0.5 * z * z);
        z = z - u / (1.0 + 0.5 * z * u);
    }
    return z;
}

double ms_normal_quantile(double p)
{
    if (!(p > 0.0 && p < 1.0))
        return NAN;
    if (p == 0.5)
        return 0.0;
    return p < 0.5 ? lower_normal_quantile(p) : -lower_normal_quantile(1.0 - p);
}

double ms_mde_mean(double sd, size_t n, double level, double power)
{
    if (n < 2 || !(sd >= 0.0) || !valid_level(level) || !(power > 0.0 && power < 1.0))
        return NAN;
    double z = ms_normal_quantile(0.5 * (1.0 + level)) + ms_normal_quantile(power);
    return z * sd / sqrt((double)n);
}

double ms_mde_mcnemar(int64_t n, double level)
{
    if (n < 1 || !valid_level(level))
        return NAN;
    double alpha = 1.0 - level;
    for (int64_t m = 1; m <= n; m++)
        if (ms_mcnemar_exact(m, 0) < alpha)
            return (double)m / (double)n;
    return NAN;
}
