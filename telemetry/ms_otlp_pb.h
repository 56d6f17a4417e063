/* ms_otlp_pb — a protobuf wire writer (and the little reading OTLP
 * responses need), hand-written: no generated code, no library.
 *
 * Writers append to an ms_buf and rely on its sticky oom flag: check
 * b->oom once when the message is complete. A nested message is written
 * in place between ms_pb_begin and ms_pb_end, which then inserts its
 * length in front of it, so nothing is encoded twice. Integers are
 * written as proto3 does: int64 as a 10-byte varint when negative (two's
 * complement, no zigzag: OTLP has no sint fields), fixed64/double
 * little-endian. */
#ifndef MS_OTLP_PB_H
#define MS_OTLP_PB_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_otlp_schema.h"

/* A bare varint (LEB128, at most 10 bytes). */
void ms_pb_varint(ms_buf *b, uint64_t v);
/* A field's key: (field << 3) | wire type. */
void ms_pb_tag(ms_buf *b, uint32_t field, enum ms_pb_wire wt);

/* Whole fields: key, then the value. */
void ms_pb_uint(ms_buf *b, uint32_t field, uint64_t v);   /* uint64, enum, bool */
void ms_pb_int(ms_buf *b, uint32_t field, int64_t v);     /* int64 */
void ms_pb_fixed64(ms_buf *b, uint32_t field, uint64_t v);
void ms_pb_fixed32(ms_buf *b, uint32_t field, uint32_t v);
void ms_pb_double(ms_buf *b, uint32_t field, double v);
void ms_pb_bytes(ms_buf *b, uint32_t field, const void *p, size_t n); /* also strings */
void ms_pb_str(ms_buf *b, uint32_t field, const char *s);

/* Opens nested message `field`: returns the mark to pass to ms_pb_end,
 * which closes it by inserting its length. Pairs nest like brackets. */
size_t ms_pb_begin(ms_buf *b, uint32_t field);
void ms_pb_end(ms_buf *b, size_t mark);

/* --- reading ------------------------------------------------------------- */

/* One field of a message being read: its number, wire type and value
 * (v for VARINT/FIXED64/FIXED32, p/len for LEN). */
typedef struct ms_pb_field {
    uint32_t number;
    enum ms_pb_wire wire;
    uint64_t v;
    const uint8_t *p;
    size_t len;
} ms_pb_field;

/* Reads the field at *pp (not past end) and advances: 1, 0 at the end,
 * -1 when the bytes are not protobuf (cut short, a group, a bad wire
 * type). Never reads outside [*pp, end). */
int ms_pb_next(const uint8_t **pp, const uint8_t *end, ms_pb_field *f);

#endif
