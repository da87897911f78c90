/* jwks_cache.h: where a tenant's token keys come from, cached: the built-in issuer's key, a JWKS
 * file, or the issuer's jwks_uri over HTTPS (libcurl; certificate verified; 64 KiB, 5 s
 * bounds). Fetches block, so they run on worker threads, never on an event loop. A set is kept
 * for its lifetime (Cache-Control max-age, clamped to 5 min .. 24 h; default 1 h) and refetched
 * early when a token names a kid it does not hold, at most once per 30 s per source, so a flood
 * of unknown kids cannot make it fetch in a loop. When a refetch fails, the old set is used until
 * it is 24 h past its lifetime. Thread-safe. */
#ifndef SUBMITD_JWKS_CACHE_H
#define SUBMITD_JWKS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

#define JWKS_REFETCH_MIN_SECONDS 30

struct jwks_cache;
struct jwks_ref; /* a reference-counted snapshot */

/* Process-wide libcurl setup (curl_global_init). Call once at start, before any thread; later
 * calls do nothing. Returns 0 or -1. */
int jwks_cache_global_init(void);

/* datadir: where the built-in issuer keeps DIR/keys/DOMAIN.pem. The CA bundle for HTTPS is the
 * system's, or the file named by SUBMITD_JWKS_CAFILE when set (read here, once). */
struct jwks_cache *jwks_cache_new(const char *datadir);
void jwks_cache_free(struct jwks_cache *c);

/* source: "" (the built-in key of `domain`), an absolute file path, or an https:// URL (http://
 * only for 127.0.0.1/::1/localhost, for tests). want_kid: the token's kid ("" = none). Returns a
 * snapshot (release it) or NULL with err. now is unix seconds (a parameter, for tests). */
struct jwks_ref *jwks_cache_get(struct jwks_cache *c, const char *domain, const char *source,
                                const char *want_kid, int64_t now, char *err, size_t errlen);
const struct jwks *jwks_ref_keys(const struct jwks_ref *r);
void jwks_ref_release(struct jwks_ref *r);
/* Number of network fetches made so far (tests and logs). */
uint64_t jwks_cache_fetches(struct jwks_cache *c);

/* Test hook: replaces the network fetch (default: libcurl HTTPS GET). fetch returns 0 with a
 * malloc'd body (*len bytes; the cache frees it) and *max_age (seconds, -1 when the response
 * has none; preset to -1), or -1 with err. Set before the cache is shared between threads. */
typedef int (*jwks_fetch_fn)(void *arg, const char *url, char **body, size_t *len, int *max_age,
                             char *err, size_t errlen);
void jwks_cache_set_fetcher(struct jwks_cache *c, jwks_fetch_fn fetch, void *arg);

#endif
