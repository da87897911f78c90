/* oauth_client.h: access tokens for delivering with XOAUTH2 to a smarthost (e.g. Exchange
 * Online), from an OAuth 2.0 token endpoint: the client-credentials grant (RFC 6749 4.4) or the
 * refresh-token grant (RFC 6749 6), client authentication by HTTP Basic (2.3.1, the default) or
 * in the form body. HTTPS only (a token endpoint on 127.0.0.1 or ::1 may be plain http, for
 * tests), verified, bounded in time (10 s) and size (64 KiB). Tokens are cached per key until
 * 60 s before they expire. Secrets and tokens are never logged and are wiped after use. */
#ifndef SUBMITD_OAUTH_CLIENT_H
#define SUBMITD_OAUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct oauth_client_params {
    const char *token_url;
    const char *client_id;
    const char *client_secret; /* may be "" (a public client with a refresh token) */
    const char *refresh_token; /* NULL or "": client credentials; else the refresh grant */
    const char *scope;         /* e.g. "https://outlook.office365.com/.default"; "" = none */
    bool secret_in_body;       /* client_secret_post instead of HTTP Basic */
    const char *cafile;        /* NULL or "": the system store */
};

/* Called when the endpoint answered with a new refresh token (Entra rotates them); the caller
 * stores it for the next time. */
typedef void (*oauth_rotated_fn)(const char *key, const char *refresh_token, void *arg);

struct oauth_tokens;
struct oauth_tokens *oauth_tokens_new(void);
void oauth_tokens_free(struct oauth_tokens *c);

/* A valid access token for key (e.g. the tenant's domain): the cached one, or a fresh one from
 * the endpoint (blocking: call on a delivery thread; callers of the same key wait for one
 * fetch). Returns a malloc'd token (the caller wipes and frees it), or NULL with a reason in
 * err (no secret in it) and *temporary saying whether trying later may help (endpoint
 * unreachable or 5xx) or not (invalid_client, invalid_grant). */
char *oauth_tokens_get(struct oauth_tokens *c, const char *key, const struct oauth_client_params *p,
                       oauth_rotated_fn rotated, void *arg, bool *temporary, char *err,
                       size_t errlen);
/* Forgets key's token (the peer refused it). */
void oauth_tokens_invalidate(struct oauth_tokens *c, const char *key);

#endif
