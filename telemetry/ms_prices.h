/* ms_prices — what a model's tokens cost.
 *
 * A price table maps model names to USD per million tokens for input,
 * output, cache-read and cache-write tokens. The table shipped with
 * moonspan is compiled in (ms_prices_builtin); `--prices FILE` loads a file
 * of the same format whose entries take precedence over the shipped ones.
 *
 * File format (one model a line, whitespace-separated, `#` comments):
 *
 *     # model                    input   output  cache_read  cache_write
 *     claude-sonnet-4-5          3.00    15.00   0.30        3.75
 *     gpt-4o*                    2.50    10.00   1.25        -
 *
 * A name ending in `*` matches every model starting with what precedes it;
 * an exact name beats a prefix, a longer prefix beats a shorter one.
 * `-` in a cache column means "same as input". Lines with a wrong number
 * of columns or a value that is not a non-negative number are errors that
 * name the file and line. */
#ifndef MS_PRICES_H
#define MS_PRICES_H

#include <stddef.h>
#include <stdint.h>

typedef struct ms_price {
    double input, output, cache_read, cache_write; /* USD per 1M tokens */
} ms_price;

typedef struct ms_prices ms_prices;

/* The shipped table's text (telemetry/prices.tsv, embedded at build time). */
extern const char ms_prices_builtin[];

/* Creates a table from the built-in text. Returns 0 or an errno (ENOMEM). */
int ms_prices_new(ms_prices **out);

/* Parses `text` (named `origin` in errors) into the table; its entries
 * override entries of the same name. Returns 0, or EINVAL with a message
 * "FILE:LINE: problem; fix" in err. On error the table is unchanged. */
int ms_prices_load_text(ms_prices *p, const char *text, const char *origin,
                        char *err, size_t errlen);

/* Reads and loads a file; errors as ms_prices_load_text, plus an errno
 * from opening or reading the file (message names the file). */
int ms_prices_load_file(ms_prices *p, const char *path, char *err, size_t errlen);

/* Finds the price of `model`; NULL when the model is unknown. */
const ms_price *ms_prices_find(const ms_prices *p, const char *model);

/* Cost in USD of a call's tokens at `price`. `input` counts input tokens
 * that were neither read from nor written to the cache (as Anthropic and
 * the normalised usage report them). */
double ms_price_cost(const ms_price *price, int64_t input, int64_t output,
                     int64_t cache_read, int64_t cache_write);

void ms_prices_free(ms_prices *p);

#endif
