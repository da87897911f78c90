/* authcache.c: owns the verified-credential cache (issue 6, Performance item 3): a hash table of
 * recently verified (user, secret) pairs with an LRU list, behind one mutex. An entry holds only
 * a BLAKE2b-256 hash of user || 0x00 || secret keyed with 32 random octets made at
 * authcache_new (so the cache holds no password and nothing usable outside this process), the
 * mailbox id, the directory generation at verification and the verification time. A hit needs
 * the same generation (any directory change invalidates every entry at once) and an entry
 * younger than the lifetime; a hit does not extend the lifetime. Keys are compared in constant
 * time and wiped when evicted and at free. max_entries 0 or lifetime 0 turns the cache off.
 * No RFC (BLAKE2 is RFC 7693). */
#include "authcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define AC_HASH_LEN crypto_generichash_BYTES /* 32: BLAKE2b-256 */
#define AC_KEY_LEN crypto_generichash_KEYBYTES
#define AC_BUCKETS_MAX ((size_t)1 << 20)

struct ac_entry {
    uint8_t hash[AC_HASH_LEN];
    int64_t mailbox_id;
    int64_t generation;
    int64_t time_ms;
    struct ac_entry *chain;       /* next in the bucket */
    struct ac_entry *prev, *next; /* LRU list: head is the most recently used */
};

struct authcache {
    pthread_mutex_t mu;
    uint8_t key[AC_KEY_LEN]; /* immutable after authcache_new: read without the lock */
    size_t max_entries;
    int64_t lifetime_ms;
    struct ac_entry **bucket;
    size_t mask; /* buckets - 1 (a power of two) */
    struct ac_entry *head, *tail;
    size_t size;
};

struct authcache *authcache_new(size_t max_entries, unsigned lifetime_seconds)
{
    if (sodium_init() < 0)
        return NULL;
    struct authcache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    size_t buckets = 1;
    while (buckets < max_entries && buckets < AC_BUCKETS_MAX)
        buckets <<= 1;
    c->bucket = calloc(buckets, sizeof *c->bucket);
    if (c->bucket == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->bucket);
        free(c);
        return NULL;
    }
    c->mask = buckets - 1;
    c->max_entries = max_entries;
    c->lifetime_ms = (int64_t)lifetime_seconds * 1000;
    randombytes_buf(c->key, sizeof c->key);
    return c;
}

void authcache_free(struct authcache *c)
{
    if (c == NULL)
        return;
    struct ac_entry *e = c->head;
    while (e != NULL) {
        struct ac_entry *next = e->next;
        sodium_memzero(e, sizeof *e);
        free(e);
        e = next;
    }
    sodium_memzero(c->key, sizeof c->key);
    pthread_mutex_destroy(&c->mu);
    free(c->bucket);
    free(c);
}

/* The keyed hash of user || 0x00 || secret. The user is a C string, so the separator makes the
 * split unambiguous. */
static void ac_hash(const struct authcache *c, const char *user, const uint8_t *secret, size_t len,
                    uint8_t out[AC_HASH_LEN])
{
    crypto_generichash_state st;
    static const uint8_t sep = 0;
    crypto_generichash_init(&st, c->key, sizeof c->key, AC_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)user, strlen(user));
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, secret, len);
    crypto_generichash_final(&st, out, AC_HASH_LEN);
    sodium_memzero(&st, sizeof st);
}

static size_t ac_slot(const struct authcache *c, const uint8_t hash[AC_HASH_LEN])
{
    uint64_t v;
    memcpy(&v, hash, sizeof v); /* the hash is keyed and uniform: any 8 octets will do */
    return (size_t)v & c->mask;
}

/* The entry with this hash, or NULL; *link is where it hangs in its bucket. Called locked. */
static struct ac_entry *ac_find(struct authcache *c, const uint8_t hash[AC_HASH_LEN],
                                struct ac_entry ***link)
{
    struct ac_entry **p = &c->bucket[ac_slot(c, hash)];
    for (; *p != NULL; p = &(*p)->chain)
        if (sodium_memcmp((*p)->hash, hash, AC_HASH_LEN) == 0) {
            *link = p;
            return *p;
        }
    *link = p;
    return NULL;
}

static void lru_unlink(struct authcache *c, struct ac_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct authcache *c, struct ac_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

/* Takes e out of its bucket (link points at it) and the LRU list. Called locked. */
static void ac_detach(struct authcache *c, struct ac_entry **link, struct ac_entry *e)
{
    *link = e->chain;
    e->chain = NULL;
    lru_unlink(c, e);
    c->size--;
}

static void ac_remove(struct authcache *c, struct ac_entry **link, struct ac_entry *e)
{
    ac_detach(c, link, e);
    sodium_memzero(e, sizeof *e);
    free(e);
}

bool authcache_hit(struct authcache *c, const char *user, const uint8_t *secret, size_t len,
                   int64_t generation, int64_t now_ms, int64_t *mailbox_id)
{
    if (c == NULL || c->max_entries == 0 || c->lifetime_ms == 0)
        return false;
    uint8_t hash[AC_HASH_LEN];
    ac_hash(c, user, secret, len, hash);
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    struct ac_entry **link;
    struct ac_entry *e = ac_find(c, hash, &link);
    if (e != NULL) {
        int64_t age = now_ms - e->time_ms;
        if (e->generation == generation && age >= 0 && age < c->lifetime_ms) {
            hit = true;
            *mailbox_id = e->mailbox_id;
            lru_unlink(c, e);
            lru_push_front(c, e);
        } else if (e->generation != generation || age >= c->lifetime_ms) {
            ac_remove(c, link, e); /* stale for good; a clock step back only misses */
        }
    }
    pthread_mutex_unlock(&c->mu);
    sodium_memzero(hash, sizeof hash);
    return hit;
}

void authcache_store(struct authcache *c, const char *user, const uint8_t *secret, size_t len,
                     int64_t generation, int64_t mailbox_id, int64_t now_ms)
{
    if (c == NULL || c->max_entries == 0 || c->lifetime_ms == 0)
        return;
    uint8_t hash[AC_HASH_LEN];
    ac_hash(c, user, secret, len, hash);
    pthread_mutex_lock(&c->mu);
    struct ac_entry **link;
    struct ac_entry *e = ac_find(c, hash, &link);
    if (e != NULL) {
        lru_unlink(c, e);
    } else {
        if (c->size >= c->max_entries) {
            /* Evict the least recently used entry and reuse its memory. */
            struct ac_entry *old = c->tail;
            struct ac_entry **old_link;
            ac_find(c, old->hash, &old_link);
            ac_detach(c, old_link, old);
            sodium_memzero(old, sizeof *old);
            e = old;
            /* the bucket of the new hash may have changed under the detach: find it again */
            ac_find(c, hash, &link);
        } else {
            e = calloc(1, sizeof *e);
            if (e == NULL) {
                /* Not caching costs one more full verification; nothing else. */
                pthread_mutex_unlock(&c->mu);
                sodium_memzero(hash, sizeof hash);
                return;
            }
        }
        memcpy(e->hash, hash, AC_HASH_LEN);
        e->chain = NULL;
        *link = e;
        c->size++;
    }
    e->mailbox_id = mailbox_id;
    e->generation = generation;
    e->time_ms = now_ms;
    lru_push_front(c, e);
    pthread_mutex_unlock(&c->mu);
    sodium_memzero(hash, sizeof hash);
}

size_t authcache_size(struct authcache *c)
{
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->size;
    pthread_mutex_unlock(&c->mu);
    return n;
}
