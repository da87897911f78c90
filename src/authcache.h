/* authcache.h: the verified-credential cache (issue 6): a device that signs in again with the
 * same user and password does not pay a full argon2id verification every time. Entries are keyed
 * by a keyed BLAKE2b hash of (user, password) with a per-process random key (so the cache holds
 * no password and nothing reusable outside this process), remember the directory generation at
 * which they were verified, and count only while the directory has not changed since: any
 * password or setting change invalidates every entry at once. Bounded size (LRU), lifetime
 * default 15 minutes. Only successful verifications are cached. Thread-safe. */
#ifndef SUBMITD_AUTHCACHE_H
#define SUBMITD_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authcache;

struct authcache *authcache_new(size_t max_entries, unsigned lifetime_seconds);
void authcache_free(struct authcache *c);
/* True when (user, secret) was verified at directory generation `generation` within the
 * lifetime, for mailbox_id. */
bool authcache_hit(struct authcache *c, const char *user, const uint8_t *secret, size_t len,
                   int64_t generation, int64_t now_ms, int64_t *mailbox_id);
void authcache_store(struct authcache *c, const char *user, const uint8_t *secret, size_t len,
                     int64_t generation, int64_t mailbox_id, int64_t now_ms);
size_t authcache_size(struct authcache *c);

#endif
