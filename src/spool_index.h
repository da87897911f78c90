/* spool_index.h: the server's in-memory index of the messages that live in the journal
 * (docs/spool.md, "Journal"): queue id -> the segment holding the record and where its payload
 * starts. A chained hash table that doubles as it fills; not thread-safe (the spool's lock
 * guards it). Exported for the unit tests. */
#ifndef SUBMITD_SPOOL_INDEX_H
#define SUBMITD_SPOOL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

struct spool_segment;

struct journal_entry {
    struct journal_entry *next; /* in its hash chain */
    char id[QUEUE_ID_LEN + 1];
    struct spool_segment *seg;
    uint64_t off; /* where the payload (the queue file) starts in the segment */
    size_t len;   /* payload octets */
};

struct journal_index {
    struct journal_entry **slots;
    size_t n_slots; /* a power of two, or 0 before the first put */
    size_t count;
};

/* The entry for id, or NULL. */
struct journal_entry *jindex_get(const struct journal_index *ix, const char *id);
/* Adds (or replaces) id's entry. Returns the entry, or NULL when out of memory. */
struct journal_entry *jindex_put(struct journal_index *ix, const char *id,
                                 struct spool_segment *seg, uint64_t off, size_t len);
/* Removes id's entry; copies it to *out first when out is not NULL. False when absent. */
bool jindex_del(struct journal_index *ix, const char *id, struct journal_entry *out);
/* Calls fn for every entry (in no particular order); fn must not change the index. */
void jindex_each(const struct journal_index *ix, void (*fn)(const struct journal_entry *, void *),
                 void *arg);
void jindex_free(struct journal_index *ix);

#endif
