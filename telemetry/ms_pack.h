/* ms_pack — the packed encoding of a trace's spans (format 2).
 *
 * The store keeps a trace as one row, its spans as one BLOB in this
 * encoding (a long trace as several parts, one BLOB each). It is written
 * by the writer thread from a trace buffer and read by every reader
 * (report, traces, show, the spans virtual table) without SQL rows.
 *
 * Layout. Integers are LEB128 varints ("v"); signed ones are zigzag
 * varints ("z"); "f8" is an IEEE double, little-endian; "s" is a string,
 * v length then the bytes (any bytes: Lua strings may hold NUL).
 *
 *   blob    := 0x01 (format) v(nstrings) s*nstrings  v(nspans) span*nspans
 *   span    := z(gidx - previous gidx)       first: from 0
 *              v(parent: 0 none, else gidx - parent gidx)
 *              v(name: string index)
 *              z(start - previous start)     ns; first: from the trace's start
 *              v(duration ns)
 *              u8 flags                      bits 0-1 kind (trace, span, llm, fold),
 *                                            2-3 status (ok, error, interrupted,
 *                                            incomplete), 4 attrs, 5 llm, 6 error,
 *                                            7 more
 *              [more]   u8 more-flags        bit 0 retries, 1 events, 2 explicit id,
 *                                            3 fold
 *              [id]     u64 little-endian    a span id not derived (imported data)
 *              [retries] v(retries) u8(retry state) v(backoff ns)
 *              [fold]   v(count) v(errors) v(total ns) v(min ns) v(max ns)
 *                       v(first bucket) v(buckets) v(bytes) v(count)*buckets
 *                                            (ms_hist buckets; kind is fold)
 *              [attrs]  v(n) v(bytes of the attrs) attr*n
 *              [llm]    v(provider) v(model) v(input) v(output) v(cache read)
 *                       v(cache write) u8(bits 0 estimated, 1 replayed, 2 has cost,
 *                       3 has ttft) [f8 cost] [v ttft ns]
 *              [error]  u8(own) v(type) s(message) s(traceback; empty: none)
 *              [events] v(n) v(bytes of the events) event*n
 *   attr    := v(key) u8(type: 0 string, 1 int, 2 double, 3 false, 4 true)
 *              string: s | int: z | double: f8
 *   event   := v(name) z(time - span start) u8(bits 0 attrs, 1 error)
 *              [attrs] s(JSON object) [error] v(type) s(message)
 *
 * Format 1 is format 2 without folds; both are read.
 *
 * Names, attribute keys, event names, providers, models and error types
 * are strings of the blob's table, referred to by index. Spans appear in
 * the order their part was cut; a span's id derives from the trace's salt
 * and its gidx (ms_span_id_derive) unless it carries one. Times are
 * offsets from the trace's start, so a reader adds traces.start_ns.
 *
 * Decoding never trusts the blob: every length and index is checked, and a
 * blob that is cut short or inconsistent is an error, never a crash. The
 * attributes and events of a span are sized, so a reader that does not
 * want them skips them; they are checked when they are read. */
#ifndef MS_PACK_H
#define MS_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_trace.h"

#define MS_PACK_FORMAT 2

/* Encodes the spans of `t` that have ended (all of them for a whole trace
 * or its last part; the ended ones of a cut part) into out. `scratch` is
 * the encoder's reusable memory. Returns the number of spans written, or
 * -1 when memory ran out. */
typedef struct ms_pack_encoder ms_pack_encoder;
ms_pack_encoder *ms_pack_encoder_new(void);
void ms_pack_encoder_free(ms_pack_encoder *e);
long ms_pack_encode(ms_pack_encoder *e, const ms_trace *t, ms_buf *out);

/* A string of a blob (not NUL-terminated). */
typedef struct ms_pstr {
    const char *p;
    uint32_t len;
} ms_pstr;

/* One span, decoded. Strings point into the blob. Attributes and events
 * are read with ms_pack_attrs / ms_pack_events from their raw bytes. */
typedef struct ms_span_rec {
    uint32_t gidx;
    uint32_t parent;            /* gidx; MS_NONE for the root */
    uint64_t explicit_id;       /* an id that does not derive (imported); 0: derived */
    int64_t start;              /* ns from the trace's start */
    int64_t duration;           /* ns */
    ms_pstr name;
    uint32_t name_ix;           /* the name's index in the blob's string table */
    uint8_t kind, status;       /* enum ms_kind, enum ms_status */
    uint32_t retries;
    uint8_t retry_state;        /* enum ms_retry_state */
    int64_t backoff_ns;
    int has_llm;
    ms_pstr provider, model;
    int64_t input, output, cache_read, cache_write;
    double cost_usd;            /* NaN: unknown */
    int64_t ttft_ns;            /* -1: none */
    uint8_t estimated, replayed;
    /* a fold (kind MS_KIND_FOLD): the repetitions it stands for; duration
     * is from the first one's start to the last one's end */
    uint64_t fold_count, fold_errors;
    int64_t fold_total, fold_min, fold_max;
    uint32_t hist_lo, hist_n;
    const uint8_t *hist, *hist_end; /* raw, for ms_pack_fold_hist */
    int has_error;
    uint8_t error_own;
    ms_pstr error_type, error_message, error_traceback; /* traceback.len 0: none */
    uint32_t nattrs, nevents;
    const uint8_t *attrs, *events; /* raw, for ms_pack_attrs / ms_pack_events */
    const uint8_t *attrs_end, *events_end;
} ms_span_rec;

typedef struct ms_pack_reader {
    const uint8_t *p, *end;
    ms_pstr *strings;
    uint32_t nstrings, cap_strings;
    uint32_t left;              /* spans not yet read */
    uint32_t gidx;
    int64_t start;
    uint64_t salt;
    const char *error;          /* why the blob was refused */
} ms_pack_reader;

/* Starts reading `blob` of a trace whose spans derive their ids from
 * `salt`. The reader's memory (its string table) is reused from blob to
 * blob; ms_pack_reader_free releases it. Returns 0, or -1 with r->error. */
int ms_pack_open(ms_pack_reader *r, const void *blob, size_t len, uint64_t salt);
/* The next span: 1, 0 at the end, -1 with r->error when the blob is corrupt. */
int ms_pack_next(ms_pack_reader *r, ms_span_rec *out);
void ms_pack_reader_free(ms_pack_reader *r);

/* The span's id: its own when it has one, else derived from the salt. */
static inline uint64_t ms_pack_span_id(const ms_pack_reader *r, const ms_span_rec *s)
{
    return s->explicit_id ? s->explicit_id : ms_span_id_derive(r->salt, s->gidx);
}

/* One attribute or event of a decoded span. */
typedef struct ms_attr_rec {
    ms_pstr key;
    uint8_t type;               /* enum ms_attr_type; booleans in i */
    int64_t i;
    double d;
    ms_pstr s;
} ms_attr_rec;

typedef struct ms_event_rec {
    ms_pstr name;
    int64_t time;               /* ns from the trace's start */
    ms_pstr attrs_json;         /* len 0: none */
    int has_error;
    ms_pstr error_type, error_message;
} ms_event_rec;

/* Calls fn for each attribute / event of `span` (read with reader r).
 * fn returns non-zero to stop. Returns 0, 1 when stopped, -1 when the
 * bytes are corrupt. */
int ms_pack_attrs(const ms_pack_reader *r, const ms_span_rec *span,
                  int (*fn)(void *ud, const ms_attr_rec *a), void *ud);
int ms_pack_events(const ms_pack_reader *r, const ms_span_rec *span,
                   int (*fn)(void *ud, const ms_event_rec *e), void *ud);

/* Reads the attribute / event at *pp (from span->attrs / span->events,
 * advanced past it, not beyond `end`: span->attrs_end / events_end): 0,
 * or -1 when the bytes are corrupt. For walking them one at a time. */
int ms_pack_attr_at(const ms_pack_reader *r, const uint8_t **pp, const uint8_t *end, ms_attr_rec *a);
int ms_pack_event_at(const ms_pack_reader *r, const uint8_t **pp, const uint8_t *end, int64_t span_start,
                     ms_event_rec *e);

/* Adds the histogram of fold `span` into *out (ms_hist_merge). Returns
 * 0, or -1 when the bytes are corrupt or memory ran out. */
int ms_pack_fold_hist(const ms_span_rec *span, ms_hist *out);

/* Appends the span's attributes as a JSON object (nothing when none).
 * Returns 0 or -1 (corrupt). */
int ms_pack_attrs_json(const ms_pack_reader *r, const ms_span_rec *span, ms_buf *out);

#endif
