/* jwt_int.h: what jwt.c (JWS, claims, signing) shares with jwk.c (JWK Sets, thumbprints):
 * strict base64url (RFC 7515 2), typed JSON member access, and the key-type-to-algorithm rule.
 * Internal to those two files. */
#ifndef SUBMITD_JWT_INT_H
#define SUBMITD_JWT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "jwt.h"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192 /* bounds the work one token can cost */
#define RSA_E_MAX_BYTES 8
#define P256_COORD_LEN 32
#define ED25519_KEY_LEN 32
#define SIG_MAX (RSA_MAX_BITS / 8)        /* the longest signature we can check */
#define B64URL_MAX(n) (((n) + 2) / 3 * 4) /* at least jwt_b64url_len(n) */

/* Length of the unpadded encoding of n octets. */
size_t jwt_b64url_len(size_t n);
/* Writes jwt_b64url_len(n) characters and a NUL. */
void jwt_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Strict decoding: the URL-safe alphabet only, no '=', canonical trailing bits. 0 or -1. */
int jwt_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

enum jwt_field { JWT_FIELD_ABSENT, JWT_FIELD_OK, JWT_FIELD_BAD };
/* A string member; JWT_FIELD_BAD when not a string or it holds a control character. */
enum jwt_field jwt_json_str(const json_t *obj, const char *key, const char **s, size_t *n);
/* s (n octets, not NUL-terminated) equals the C string b. */
bool jwt_str_eq(const char *s, size_t n, const char *b);
/* "RS256", "ES256", "EdDSA" (or RFC 9864's "Ed25519"); JWT_ALG_NONE for anything else. */
enum jwt_alg jwt_alg_from_name(const char *s, size_t n);
/* The one algorithm a key may be used with (RSA 2048..8192 bits, P-256, Ed25519), else NONE. */
enum jwt_alg jwt_pkey_alg(EVP_PKEY *pkey);

#endif
