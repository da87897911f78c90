/* spool_index.c: the journal index (spool_index.h): a chained hash table over queue ids. */
#include "spool_index.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over the id's hex digits: ids are clock and random digits, evenly spread already. */
static size_t slot_of(const struct journal_index *ix, const char *id)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)h & (ix->n_slots - 1);
}

struct journal_entry *jindex_get(const struct journal_index *ix, const char *id)
{
    if (ix->n_slots == 0)
        return NULL;
    for (struct journal_entry *e = ix->slots[slot_of(ix, id)]; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

/* Doubles the table (one entry per slot on average at most). False when out of memory. */
static bool grow(struct journal_index *ix)
{
    size_t n = ix->n_slots ? ix->n_slots * 2 : 256;
    struct journal_entry **slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return false;
    struct journal_index bigger = {slots, n, ix->count};
    for (size_t i = 0; i < ix->n_slots; i++) {
        struct journal_entry *e, *next;
        for (e = ix->slots[i]; e != NULL; e = next) {
            next = e->next;
            size_t k = slot_of(&bigger, e->id);
            e->next = slots[k];
            slots[k] = e;
        }
    }
    free(ix->slots);
    *ix = bigger;
    return true;
}

struct journal_entry *jindex_put(struct journal_index *ix, const char *id,
                                 struct spool_segment *seg, uint64_t off, size_t len)
{
    struct journal_entry *e = jindex_get(ix, id);
    if (e == NULL) {
        if (ix->count >= ix->n_slots && !grow(ix))
            return NULL;
        if ((e = calloc(1, sizeof *e)) == NULL)
            return NULL;
        memcpy(e->id, id, QUEUE_ID_LEN);
        e->id[QUEUE_ID_LEN] = '\0';
        size_t k = slot_of(ix, e->id);
        e->next = ix->slots[k];
        ix->slots[k] = e;
        ix->count++;
    }
    e->seg = seg;
    e->off = off;
    e->len = len;
    return e;
}

bool jindex_del(struct journal_index *ix, const char *id, struct journal_entry *out)
{
    if (ix->n_slots == 0)
        return false;
    for (struct journal_entry **pp = &ix->slots[slot_of(ix, id)]; *pp != NULL; pp = &(*pp)->next) {
        struct journal_entry *e = *pp;
        if (strcmp(e->id, id) != 0)
            continue;
        *pp = e->next;
        if (out != NULL)
            *out = *e;
        free(e);
        ix->count--;
        return true;
    }
    return false;
}

void jindex_each(const struct journal_index *ix, void (*fn)(const struct journal_entry *, void *),
                 void *arg)
{
    for (size_t i = 0; i < ix->n_slots; i++)
        for (const struct journal_entry *e = ix->slots[i]; e != NULL; e = e->next)
            fn(e, arg);
}

void jindex_free(struct journal_index *ix)
{
    for (size_t i = 0; i < ix->n_slots; i++) {
        struct journal_entry *e, *next;
        for (e = ix->slots[i]; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(ix->slots);
    *ix = (struct journal_index){0};
}
