/* connlimit.c: a mutex-protected open-addressing table of per-address connection counts. */
#include "connlimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct slot {
    struct netaddr addr;
    unsigned count;
    bool used; /* used and count 0 = tombstone */
};

struct connlimit {
    pthread_mutex_t mu;
    struct slot *slots;
    size_t cap, used;
};

static uint64_t addr_hash(const struct netaddr *a)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)a->family;
    size_t n = a->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++)
        h = (h ^ a->bytes[i]) * 1099511628211ULL;
    return h;
}

static bool addr_eq(const struct netaddr *a, const struct netaddr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

struct connlimit *connlimit_new(void)
{
    struct connlimit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = 1024;
    c->slots = calloc(c->cap, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static struct slot *find(struct connlimit *c, const struct netaddr *a, bool insert)
{
    size_t mask = c->cap - 1, i = addr_hash(a) & mask;
    struct slot *free_slot = NULL;
    for (size_t n = 0; n < c->cap; n++, i = (i + 1) & mask) {
        struct slot *s = &c->slots[i];
        if (!s->used) {
            if (!insert)
                return NULL;
            return free_slot ? free_slot : s;
        }
        if (s->count == 0) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (addr_eq(&s->addr, a))
            return s;
    }
    return insert ? free_slot : NULL;
}

static void rehash(struct connlimit *c)
{
    struct slot *old = c->slots;
    size_t oldcap = c->cap;
    size_t cap = c->cap * 2;
    struct slot *n = calloc(cap, sizeof *n);
    if (!n)
        return; /* keep the old table; lookups still work, just slower */
    c->slots = n;
    c->cap = cap;
    c->used = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].used && old[i].count > 0) {
            struct slot *s = find(c, &old[i].addr, true);
            *s = old[i];
            c->used++;
        }
    }
    free(old);
}

bool connlimit_acquire(struct connlimit *c, const struct netaddr *a, unsigned max)
{
    pthread_mutex_lock(&c->mu);
    if (c->used * 2 >= c->cap)
        rehash(c);
    struct slot *s = find(c, a, true);
    bool ok = false;
    if (s) {
        if (!s->used || s->count == 0) {
            if (!s->used)
                c->used++;
            s->used = true;
            s->addr = *a;
            s->count = 0;
        }
        if (s->count < max) {
            s->count++;
            ok = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void connlimit_release(struct connlimit *c, const struct netaddr *a)
{
    pthread_mutex_lock(&c->mu);
    struct slot *s = find(c, a, false);
    if (s && s->count > 0)
        s->count--;
    pthread_mutex_unlock(&c->mu);
}

void connlimit_free(struct connlimit *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c);
}
