/* ms_sha256 — SHA-256 (FIPS 180-4), used to key LLM recordings by a hash
 * of the normalised request. Small and dependency-free on purpose: the
 * store needs a stable content hash, not a crypto library. */
#ifndef MS_SHA256_H
#define MS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct ms_sha256 {
    uint32_t h[8];
    uint64_t len;          /* bytes hashed so far */
    unsigned char buf[64];
    size_t nbuf;           /* bytes waiting in buf */
} ms_sha256;

/* Streaming use: init, update any number of times, final. */
void ms_sha256_init(ms_sha256 *c);
void ms_sha256_update(ms_sha256 *c, const void *data, size_t len);
void ms_sha256_final(ms_sha256 *c, unsigned char out[32]);

/* The digest of data[0..len) as 64 lowercase hex characters + NUL. */
void ms_sha256_hex(const void *data, size_t len, char out[65]);

#endif
