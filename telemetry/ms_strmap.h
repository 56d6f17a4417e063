/* ms_strmap — byte strings to dense indices 0..n-1, for grouping rows by
 * name (report steps, top errors) without a sort.
 *
 * The caller keeps its per-key data in its own arrays, indexed the same
 * way, so the map stores nothing but keys. Keys are copied once, on first
 * sight; looking up a key already seen allocates nothing. */
#ifndef MS_STRMAP_H
#define MS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ms_strmap_ent {
    uint64_t hash;
    char *key;          /* NUL-terminated copy (the key may hold NULs too) */
    size_t klen;
} ms_strmap_ent;

/* Zero-initialised is an empty map. */
typedef struct ms_strmap {
    ms_strmap_ent *ent; /* ent[i] is the key of index i */
    size_t n, cap;
    uint32_t *slot;     /* open addressing: 0 = empty, else index + 1 */
    size_t nslot;
} ms_strmap;

/* Index of key k[0..klen), inserting it when new (then *created is 1).
 * Returns -1 on allocation failure (the map is unchanged and usable). */
long ms_strmap_get(ms_strmap *m, const char *k, size_t klen, int *created);

/* Index of key k[0..klen) when it is in the map, else -1; never inserts. */
long ms_strmap_find(const ms_strmap *m, const char *k, size_t klen);

/* Frees the keys and tables; the map is empty and reusable afterwards. */
void ms_strmap_free(ms_strmap *m);

#endif
