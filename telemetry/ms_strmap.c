/* ms_strmap — open addressing over a power-of-two slot table kept at most
 * half full, FNV-1a hashes (see ms_strmap.h). */
#include "ms_strmap.h"

#include <stdlib.h>
#include <string.h>

/* Names are short, so a simple byte-at-a-time hash is enough. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

void ms_strmap_free(ms_strmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->ent[i].key);
    free(m->ent);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* Doubles the slot table and re-inserts every entry. Returns 0 or -1 (OOM). */
static int rehash(ms_strmap *m)
{
    size_t nslot = m->nslot ? m->nslot * 2 : 64;
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->ent[i].hash & (nslot - 1);
        while (slot[j])
            j = (j + 1) & (nslot - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(m->slot);
    m->slot = slot;
    m->nslot = nslot;
    return 0;
}

/* The slot of key k (hash h): the one that holds it, or the empty one
 * where it would go. m->nslot > 0. */
static size_t probe(const ms_strmap *m, uint64_t h, const char *k, size_t klen)
{
    size_t j = h & (m->nslot - 1);
    while (m->slot[j]) {
        const ms_strmap_ent *e = &m->ent[m->slot[j] - 1];
        if (e->hash == h && e->klen == klen && memcmp(e->key, k, klen) == 0)
            break;
        j = (j + 1) & (m->nslot - 1);
    }
    return j;
}

long ms_strmap_get(ms_strmap *m, const char *k, size_t klen, int *created)
{
    *created = 0;
    if ((m->n + 1) * 2 > m->nslot && rehash(m) != 0)
        return -1;
    uint64_t h = hash_bytes(k, klen);
    size_t j = probe(m, h, k, klen);
    if (m->slot[j])
        return (long)(m->slot[j] - 1);
    if (m->n == UINT32_MAX - 1)
        return -1;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        ms_strmap_ent *ent = realloc(m->ent, cap * sizeof *ent);
        if (!ent)
            return -1;
        m->ent = ent;
        m->cap = cap;
    }
    char *key = malloc(klen + 1);
    if (!key)
        return -1;
    memcpy(key, k, klen);
    key[klen] = 0;
    m->ent[m->n] = (ms_strmap_ent){h, key, klen};
    m->slot[j] = (uint32_t)(m->n + 1);
    *created = 1;
    return (long)m->n++;
}

long ms_strmap_find(const ms_strmap *m, const char *k, size_t klen)
{
    if (!m->nslot)
        return -1;
    size_t j = probe(m, hash_bytes(k, klen), k, klen);
    return m->slot[j] ? (long)(m->slot[j] - 1) : -1;
}
