/* ms_gzip — see ms_gzip.h. */
#include "ms_gzip.h"

#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

int ms_gzip(const void *in, size_t n, ms_buf *out)
{
    ms_buf_reset(out);
    z_stream z = {0};
    /* 15 window bits + 16: a gzip header and trailer instead of zlib's */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong bound = deflateBound(&z, (uLong)n);
    if ((size_t)bound != bound || n != (uInt)n) {
        deflateEnd(&z);
        return -1;
    }
    char *dst = malloc(bound);
    if (!dst) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)dst;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t len = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc == Z_STREAM_END)
        ms_buf_add(out, dst, len);
    free(dst);
    return rc == Z_STREAM_END && !out->oom ? 0 : -1;
}
