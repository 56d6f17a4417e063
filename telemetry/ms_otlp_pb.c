/* ms_otlp_pb — the protobuf wire writer and field reader (ms_otlp_pb.h). */
#include "ms_otlp_pb.h"

#include <string.h>

void ms_pb_varint(ms_buf *b, uint64_t v)
{
    uint8_t out[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        out[n++] = v ? (uint8_t)(byte | 0x80) : byte;
    } while (v);
    ms_buf_add(b, out, n);
}

void ms_pb_tag(ms_buf *b, uint32_t field, enum ms_pb_wire wt)
{
    ms_pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

void ms_pb_uint(ms_buf *b, uint32_t field, uint64_t v)
{
    ms_pb_tag(b, field, MS_PB_VARINT);
    ms_pb_varint(b, v);
}

void ms_pb_int(ms_buf *b, uint32_t field, int64_t v)
{
    ms_pb_uint(b, field, (uint64_t)v); /* negative: 10 bytes, as proto3 int64 */
}

static void put_le(ms_buf *b, uint64_t v, size_t n)
{
    uint8_t out[8];
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    ms_buf_add(b, out, n);
}

void ms_pb_fixed64(ms_buf *b, uint32_t field, uint64_t v)
{
    ms_pb_tag(b, field, MS_PB_FIXED64);
    put_le(b, v, 8);
}

void ms_pb_fixed32(ms_buf *b, uint32_t field, uint32_t v)
{
    ms_pb_tag(b, field, MS_PB_FIXED32);
    put_le(b, v, 4);
}

void ms_pb_double(ms_buf *b, uint32_t field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    ms_pb_fixed64(b, field, bits);
}

void ms_pb_bytes(ms_buf *b, uint32_t field, const void *p, size_t n)
{
    ms_pb_tag(b, field, MS_PB_LEN);
    ms_pb_varint(b, n);
    ms_buf_add(b, p, n);
}

void ms_pb_str(ms_buf *b, uint32_t field, const char *s)
{
    ms_pb_bytes(b, field, s, strlen(s));
}

size_t ms_pb_begin(ms_buf *b, uint32_t field)
{
    ms_pb_tag(b, field, MS_PB_LEN);
    return b->len;
}

void ms_pb_end(ms_buf *b, size_t mark)
{
    if (b->oom || mark > b->len)
        return;
    size_t n = b->len - mark;
    ms_buf len = {0};
    ms_pb_varint(&len, n);
    if (len.oom) {
        b->oom = 1;
        return;
    }
    /* grow by the length's size, then shift the message right over it */
    ms_buf_add(b, len.data, len.len);
    if (!b->oom) {
        memmove(b->data + mark + len.len, b->data + mark, n);
        memcpy(b->data + mark, len.data, len.len);
    }
    ms_buf_free(&len);
}

/* --- reading ------------------------------------------------------------- */

static int read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pp >= end)
            return -1;
        uint8_t byte = *(*pp)++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int read_le(const uint8_t **pp, const uint8_t *end, size_t n, uint64_t *out)
{
    if ((size_t)(end - *pp) < n)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)(*pp)[i] << (8 * i);
    *pp += n;
    *out = v;
    return 0;
}

int ms_pb_next(const uint8_t **pp, const uint8_t *end, ms_pb_field *f)
{
    if (*pp >= end)
        return 0;
    uint64_t key;
    if (read_varint(pp, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    memset(f, 0, sizeof *f);
    f->number = (uint32_t)(key >> 3);
    f->wire = (enum ms_pb_wire)(key & 7);
    switch (f->wire) {
    case MS_PB_VARINT:
        return read_varint(pp, end, &f->v) ? -1 : 1;
    case MS_PB_FIXED64:
        return read_le(pp, end, 8, &f->v) ? -1 : 1;
    case MS_PB_FIXED32:
        return read_le(pp, end, 4, &f->v) ? -1 : 1;
    case MS_PB_LEN:
        if (read_varint(pp, end, &f->v) || f->v > (uint64_t)(end - *pp))
            return -1;
        f->p = *pp;
        f->len = (size_t)f->v;
        *pp += f->len;
        return 1;
    }
    return -1; /* groups (3, 4) and wire types 6, 7 */
}
