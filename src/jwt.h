/* jwt.h: JSON Web Tokens for SMTP OAuth (SPEC section 5): compact JWS parsing and verification
 * (RFC 7515, RFC 7519) with RS256, ES256 and EdDSA (RFC 7518 3.3/3.4, RFC 8037) through OpenSSL,
 * JWK Sets (RFC 7517), the claim checks submitd requires, and signing for the built-in issuer.
 * Parsing and verification are pure functions of their inputs (the clock is a parameter). */
#ifndef SUBMITD_JWT_H
#define SUBMITD_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol_limits.h"

#define JWT_MAX_LEN 8192      /* longest token accepted (header.payload.signature) */
#define JWKS_MAX_KEYS 16
#define JWT_KID_MAX 128
#define JWT_SKEW_MAX 60       /* seconds of clock skew tolerated on exp/nbf (SPEC 5) */

enum jwt_alg { JWT_ALG_NONE = 0, JWT_ALG_RS256, JWT_ALG_ES256, JWT_ALG_EDDSA };

struct jwk {
    char kid[JWT_KID_MAX + 1]; /* "" when the key has none */
    enum jwt_alg alg;          /* from "alg" when present, else implied by kty/crv (RSA: RS256,
                                * EC P-256: ES256, OKP Ed25519: EdDSA) */
    EVP_PKEY *pkey;            /* public key */
};

struct jwks {
    size_t n;
    struct jwk keys[JWKS_MAX_KEYS];
};

/* Parses a JWK Set ({"keys":[...]}): RSA (n, e; at least 2048 bits), EC P-256 (x, y, crv), OKP
 * Ed25519 (x). Keys with "use" other than "sig", unknown kty/crv or private parts are skipped
 * (a private key in a JWKS file is refused: -1). Returns 0 (out->n may be 0) or -1 with err. */
int jwks_parse(const char *json, size_t len, struct jwks *out, char *err, size_t errlen);
void jwks_free(struct jwks *set);
/* The public JWKS document ({"keys":[{...}]}) for one key, malloc'd, NUL-terminated. */
char *jwks_export_public(EVP_PKEY *key, const char *kid);
/* RFC 7638 thumbprint of the public key, base64url, as a kid. Returns 0 or -1. */
int jwk_thumbprint(EVP_PKEY *key, char kid[JWT_KID_MAX + 1]);

enum jwt_error {
    JWT_OK = 0,
    JWT_MALFORMED,        /* not three base64url parts, bad JSON, missing/ill-typed claim */
    JWT_OVERSIZED,        /* longer than JWT_MAX_LEN */
    JWT_ALG_REJECTED,     /* "none", HMAC (HS*), or anything but RS256/ES256/EdDSA */
    JWT_UNKNOWN_KID,      /* no key with the header's kid (or, without kid, no key fits) */
    JWT_KEY_MISMATCH,     /* the header's alg does not fit the key's type or its own alg */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,          /* now > exp + skew (exp is required) */
    JWT_NOT_YET_VALID,    /* now < nbf - skew (nbf optional) */
    JWT_WRONG_ISSUER,
    JWT_WRONG_AUDIENCE,   /* aud (string or array) does not contain the audience */
    JWT_NO_SCOPE,         /* scp/scope lacks the scope and roles lacks the app role */
    JWT_NO_IDENTITY,      /* no identity claim (and no sub for an app-only token) */
    JWT_ERROR_COUNT
};

/* What a tenant requires of a token. */
struct jwt_expect {
    const char *issuer;
    const char *audience;
    const char *scope;          /* default "SMTP.Send": one of the space-separated "scp" or
                                 * "scope" values (or an element of an array), compared exactly,
                                 * or ending in "/SMTP.Send" (Entra's "https://outlook.office.com/SMTP.Send") */
    const char *app_role;       /* default "SMTP.SendAsApp", in "roles" */
    const char *identity_claim; /* "email", "upn", "preferred_username", or NULL = the first
                                 * present of those three */
    int64_t now;                /* unix seconds */
    int skew;                   /* seconds, at most JWT_SKEW_MAX */
};

struct jwt_claims {
    enum jwt_alg alg;
    char kid[JWT_KID_MAX + 1];
    char iss[256];
    char sub[256];
    char identity[SMTP_PATH_MAX + 1]; /* the identity claim's value; for an app-only token
                                       * without one, the sub */
    bool app_only;                    /* authorized through roles (SMTP.SendAsApp) */
    int64_t exp, nbf, iat;
};

/* Reads the protected header without verifying: alg and kid (to pick the key source). */
enum jwt_error jwt_peek(const char *token, size_t len, enum jwt_alg *alg,
                        char kid[JWT_KID_MAX + 1]);
/* Verifies signature and claims, in this order: size, structure, alg, key (by kid; without kid,
 * every key whose type fits is tried), signature, exp, nbf, iss, aud, scope/role, identity.
 * On any result `out` holds what could be read (for the sign-in log). */
enum jwt_error jwt_verify(const char *token, size_t len, const struct jwks *keys,
                          const struct jwt_expect *expect, struct jwt_claims *out);
/* "ok", "malformed", "oversized", "alg-rejected", "unknown-kid", "key-mismatch",
 * "bad-signature", "expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "no-scope",
 * "no-identity". */
const char *jwt_error_name(enum jwt_error e);
const char *jwt_alg_name(enum jwt_alg alg); /* "RS256", "ES256", "EdDSA", "none" */

/* Signs claims_json (a JSON object text) with key (Ed25519 -> EdDSA, EC P-256 -> ES256,
 * RSA -> RS256) and kid. Returns a malloc'd compact JWS or NULL. */
char *jwt_sign(EVP_PKEY *key, const char *kid, const char *claims_json);

#endif
