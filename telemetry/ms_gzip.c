/* ms_gzip — see ms_gzip.h. */
#include "ms_gzip.h"

#include <stdint.h>
#include <zlib.h>

int ms_gzip(const void *in, size_t n, ms_buf *out)
{
    ms_buf_reset(out);
    if (n != (uInt)n)
        return -1;
    z_stream z = {0};
    /* 15 window bits + 16: a gzip header and trailer instead of zlib's */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    /* straight into out, a chunk at a time: out's memory is the caller's
     * to reuse from body to body, so no buffer of its own per call */
    unsigned char chunk[16384];
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        if (rc == Z_OK || rc == Z_STREAM_END)
            ms_buf_add(out, chunk, sizeof chunk - z.avail_out);
    } while (rc == Z_OK && !out->oom);
    deflateEnd(&z);
    return rc == Z_STREAM_END && !out->oom ? 0 : -1;
}
