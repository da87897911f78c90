/* issuer.h: submitd's built-in OAuth issuer, so that OAuth works with no identity provider
 * (SPEC 5): one Ed25519 signing key per tenant in DIR/keys/DOMAIN.pem (0600, made when the
 * tenant is added or first needed), short-lived tokens for `submitctl token issue`, and the
 * public JWKS for `submitctl tenant jwks`. */
#ifndef SUBMITD_ISSUER_H
#define SUBMITD_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

#define ISSUER_DEFAULT_AUDIENCE "submitd"
#define ISSUER_DEFAULT_TTL 3600
#define ISSUER_TTL_MAX 86400

/* "submitd:DOMAIN": the iss of tokens the built-in issuer signs for a tenant. */
void issuer_name(const char *domain, char *out, size_t cap);
/* Makes DIR/keys (0700) and the tenant's key if missing. Returns 0 or -1 with err. */
int issuer_ensure_key(const char *datadir, const char *domain, char *err, size_t errlen);
/* The tenant's private key (caller frees) and its kid (RFC 7638 thumbprint). */
EVP_PKEY *issuer_load_key(const char *datadir, const char *domain, char kid[JWT_KID_MAX + 1],
                          char *err, size_t errlen);
/* The tenant's public keys as a parsed set (for verification). Returns 0 or -1 with err. */
int issuer_jwks(const char *datadir, const char *domain, struct jwks *out, char *err,
                size_t errlen);
/* A token for address: iss issuer_name(domain), aud audience, sub and email address, scp
 * scope (default "SMTP.Send"), iat now, nbf now, exp now+ttl, jti random. malloc'd or NULL. */
char *issuer_issue(const char *datadir, const char *domain, const char *address,
                   const char *audience, const char *scope, int64_t now, int ttl, char *err,
                   size_t errlen);

#endif
