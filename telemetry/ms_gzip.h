/* ms_gzip — gzip (RFC 1952) of a whole buffer with zlib, for request
 * bodies sent with Content-Encoding: gzip. There is only one exported
 * symbol in this file. */
#ifndef MS_GZIP_H
#define MS_GZIP_H

#include <stddef.h>

#include "ms_buf.h"

/* Replaces out's contents with the gzip of in[0..n). Returns 0, or -1
 * when zlib fails or memory runs out (out then holds nothing useful). */
int ms_gzip(const void *in, size_t n, ms_buf *out);

#endif
