/* ms_otlp_in_json — OTLP/JSON trace requests as the protobuf they stand for.
 *
 * There is only one exported function: ms_otlp_in_json_to_protobuf. It reads
 * an ExportTraceServiceRequest in the OTLP JSON encoding (proto3 JSON
 * with OTLP's exceptions: ids are hex strings, enums integers, 64-bit
 * integers decimal strings or numbers; lowerCamelCase keys, snake_case
 * accepted; unknown keys and null values ignored) and writes the same
 * request as protobuf, so one decoder (ms_otlp_in) serves both encodings.
 *
 * The reader is strict JSON (RFC 8259: no comments, no trailing commas, no
 * bare control characters, valid escapes and surrogate pairs), nests at
 * most MS_OTLP_IN_JSON_DEPTH deep, and never reads past `len`: malformed input
 * is an error naming the byte offset, never a crash. */
#ifndef MS_OTLP_IN_JSON_H
#define MS_OTLP_IN_JSON_H

#include <stddef.h>

#include "ms_buf.h"

#define MS_OTLP_IN_JSON_DEPTH 64

/* Transcodes `json` (len bytes) into out (appended). Returns 0, or -1 with
 * a one-line reason in err (out is then left partial: discard it). */
int ms_otlp_in_json_to_protobuf(const char *json, size_t len, ms_buf *out, char *err, size_t errlen);

#endif
