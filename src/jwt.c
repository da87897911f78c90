/* jwt.c: JSON Web Tokens for SMTP OAuth (SPEC section 5). Owns compact JWS parsing and
 * verification (RFC 7515 3.1, 5.2; RFC 7519 7.2), the algorithms RS256, ES256 and EdDSA with
 * Ed25519 (RFC 7518 3.3, 3.4; RFC 8037 3.1), the claim checks a tenant requires, signing for the
 * built-in issuer, and the strict base64url shared with jwk.c (JWK Sets, RFC 7517). Everything
 * here is a pure function of its arguments: no I/O, no clock. Only OpenSSL 3 EVP interfaces.
 *
 * Security decisions: the algorithm is taken from a whitelist (never "none", never HMAC); a key is
 * used only for the algorithm its type implies and its own "alg" names; keys are never taken from
 * the token ("jwk", "jku", "x5u", "x5c" headers are ignored); a "crit" header is refused since we
 * implement no extension; base64url is strict (no padding, canonical trailing bits); JSON with
 * duplicate member names is refused. */
#include "jwt.h"
#include "jwt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>

#define RAW_SIG_LEN 64 /* ES256 R||S (RFC 7518 3.4) and Ed25519 (RFC 8032) */
#define SCOPE_DEFAULT "SMTP.Send"
#define APP_ROLE_DEFAULT "SMTP.SendAsApp"

/* --- base64url (RFC 7515 2: RFC 4648 5 without padding) --- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t jwt_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes jwt_b64url_len(n) characters and a NUL. */
void jwt_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url_chars[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = b64url_chars[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

/* Strict: only the URL-safe alphabet, no '=', no whitespace, no impossible length, and the unused
 * trailing bits zero (RFC 4648 3.5), so every byte string has exactly one encoding. */
int jwt_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1)
        return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    *outlen = o;
    return 0;
}

/* --- small JSON helpers --- */

/* A string member: JWT_FIELD_BAD when it is not a string or holds a control character (which also
 * catches an embedded NUL). */
enum jwt_field jwt_json_str(const json_t *obj, const char *key, const char **s, size_t *n)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return JWT_FIELD_ABSENT;
    if (!json_is_string(v))
        return JWT_FIELD_BAD;
    *s = json_string_value(v);
    *n = json_string_length(v);
    for (size_t i = 0; i < *n; i++) {
        unsigned char c = (unsigned char)(*s)[i];
        if (c < 0x20 || c == 0x7f)
            return JWT_FIELD_BAD;
    }
    return JWT_FIELD_OK;
}

bool jwt_str_eq(const char *a, size_t an, const char *b)
{
    return b && strlen(b) == an && memcmp(a, b, an) == 0;
}

/* A NumericDate (RFC 7519 2): a JSON number of seconds, possibly fractional (truncated). */
static enum jwt_field json_date(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return JWT_FIELD_ABSENT;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return JWT_FIELD_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -4e18 && d < 4e18))
            return JWT_FIELD_BAD;
        *out = (int64_t)d;
        return JWT_FIELD_OK;
    }
    return JWT_FIELD_BAD;
}

/* Copies for the sign-in log: truncated, control characters replaced. */
static void copy_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[i] = '\0';
}

static json_t *json_parse(const uint8_t *buf, size_t n)
{
    json_error_t je;
    json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* --- algorithms and keys --- */

enum jwt_alg jwt_alg_from_name(const char *s, size_t n)
{
    if (jwt_str_eq(s, n, "RS256"))
        return JWT_ALG_RS256;
    if (jwt_str_eq(s, n, "ES256"))
        return JWT_ALG_ES256;
    /* "Ed25519" is the fully-specified name of the same algorithm (RFC 9864). */
    if (jwt_str_eq(s, n, "EdDSA") || jwt_str_eq(s, n, "Ed25519"))
        return JWT_ALG_EDDSA;
    return JWT_ALG_NONE;
}

static bool pkey_is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t n = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") || EVP_PKEY_get_group_name(pkey, group, sizeof group, &n) != 1)
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* The one algorithm a key may be used with, JWT_ALG_NONE for a key we do not use. */
enum jwt_alg jwt_pkey_alg(EVP_PKEY *pkey)
{
    if (!pkey)
        return JWT_ALG_NONE;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        return bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS ? JWT_ALG_RS256 : JWT_ALG_NONE;
    }
    if (pkey_is_p256(pkey))
        return JWT_ALG_ES256;
    if (EVP_PKEY_is_a(pkey, "ED25519"))
        return JWT_ALG_EDDSA;
    return JWT_ALG_NONE;
}

static bool key_fits(const struct jwk *k, enum jwt_alg alg)
{
    return alg != JWT_ALG_NONE && k->alg == alg && jwt_pkey_alg(k->pkey) == alg;
}

/* RFC 7518 3.4: the JWS signature is R||S, each 32 octets; OpenSSL speaks DER. */
static int ecdsa_raw_to_der(const uint8_t raw[RAW_SIG_LEN], uint8_t **der, size_t *derlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, P256_COORD_LEN, NULL);
    BIGNUM *s = BN_bin2bn(raw + P256_COORD_LEN, P256_COORD_LEN, NULL);
    int rc = -1;
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by sig now */
    *der = NULL;
    int n = i2d_ECDSA_SIG(sig, der);
    if (n > 0) {
        *derlen = (size_t)n;
        rc = 0;
    }
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return rc;
}

static int ecdsa_der_to_raw(const uint8_t *der, size_t derlen, uint8_t raw[RAW_SIG_LEN])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (!sig)
        return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int rc = BN_bn2binpad(r, raw, P256_COORD_LEN) == P256_COORD_LEN &&
                     BN_bn2binpad(s, raw + P256_COORD_LEN, P256_COORD_LEN) == P256_COORD_LEN
                 ? 0
                 : -1;
    ECDSA_SIG_free(sig);
    return rc;
}

static bool signature_ok(EVP_PKEY *pkey, enum jwt_alg alg, const char *msg, size_t msglen,
                         const uint8_t *sig, size_t siglen)
{
    uint8_t *der = NULL;
    const uint8_t *s = sig;
    size_t slen = siglen;
    if (alg == JWT_ALG_ES256) {
        if (siglen != RAW_SIG_LEN || ecdsa_raw_to_der(sig, &der, &slen) != 0)
            return false;
        s = der;
    } else if (alg == JWT_ALG_EDDSA) {
        if (siglen != RAW_SIG_LEN)
            return false;
    } else if (siglen != (size_t)EVP_PKEY_get_size(pkey)) {
        return false;
    }
    /* RSA keys default to PKCS #1 v1.5 padding; Ed25519 takes no digest (RFC 8032 PureEdDSA). */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx &&
              EVP_DigestVerifyInit_ex(ctx, NULL, alg == JWT_ALG_EDDSA ? NULL : "SHA256", NULL, NULL,
                                      pkey, NULL) == 1 &&
              EVP_DigestVerify(ctx, s, slen, (const unsigned char *)msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* --- compact JWS --- */

struct jws {
    const char *input; /* the signing input: header "." payload */
    size_t inputlen;
    json_t *header, *payload;
    uint8_t sig[SIG_MAX];
    size_t siglen;
    bool sig_too_long;
    enum jwt_alg alg; /* JWT_ALG_NONE: not one we accept */
    char kid[JWT_KID_MAX + 1];
};

static void jws_clear(struct jws *j)
{
    json_decref(j->header);
    json_decref(j->payload);
    j->header = j->payload = NULL;
}

static enum jwt_error jws_parse(const char *token, size_t len, struct jws *j)
{
    memset(j, 0, sizeof *j);
    if (len > JWT_MAX_LEN)
        return JWT_OVERSIZED;
    if (!token || len == 0)
        return JWT_MALFORMED;
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    if (!d1)
        return JWT_MALFORMED;
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return JWT_MALFORMED;

    uint8_t buf[JWT_MAX_LEN];
    size_t n;
    if (jwt_b64url_decode(token, (size_t)(d1 - token), buf, sizeof buf, &n) != 0 ||
        !(j->header = json_parse(buf, n)))
        return JWT_MALFORMED;
    if (jwt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof buf, &n) != 0 ||
        !(j->payload = json_parse(buf, n)))
        return JWT_MALFORMED;
    size_t slen = (size_t)(end - d2 - 1);
    if (slen > jwt_b64url_len(SIG_MAX)) {
        /* Well-formed perhaps, but longer than any key we accept could make. */
        for (size_t i = 0; i < slen; i++)
            if (b64url_value((unsigned char)d2[1 + i]) < 0)
                return JWT_MALFORMED;
        j->sig_too_long = true;
    } else if (jwt_b64url_decode(d2 + 1, slen, j->sig, sizeof j->sig, &j->siglen) != 0) {
        return JWT_MALFORMED;
    }
    j->input = token;
    j->inputlen = (size_t)(d2 - token);

    /* RFC 7515 4.1.11: we understand no extension, so any "crit" means we must refuse. */
    if (json_object_get(j->header, "crit"))
        return JWT_MALFORMED;
    const char *s;
    enum jwt_field f = jwt_json_str(j->header, "kid", &s, &n);
    if (f == JWT_FIELD_BAD || (f == JWT_FIELD_OK && n > JWT_KID_MAX))
        return JWT_MALFORMED;
    if (f == JWT_FIELD_OK) {
        memcpy(j->kid, s, n);
        j->kid[n] = '\0';
    }
    if (jwt_json_str(j->header, "alg", &s, &n) != JWT_FIELD_OK)
        return JWT_MALFORMED;
    j->alg = jwt_alg_from_name(s, n);
    return JWT_OK;
}

enum jwt_error jwt_peek(const char *token, size_t len, enum jwt_alg *alg, char kid[JWT_KID_MAX + 1])
{
    struct jws j;
    enum jwt_error e = jws_parse(token, len, &j);
    if (alg)
        *alg = j.alg;
    if (kid)
        memcpy(kid, j.kid, sizeof j.kid);
    if (e == JWT_OK && j.alg == JWT_ALG_NONE)
        e = JWT_ALG_REJECTED;
    jws_clear(&j);
    return e;
}

static enum jwt_error jws_check_signature(const struct jws *j, const struct jwks *keys)
{
    size_t same_kid = 0, tried = 0;
    for (size_t i = 0; keys && i < keys->n && i < JWKS_MAX_KEYS; i++) {
        const struct jwk *k = &keys->keys[i];
        if (j->kid[0] && strcmp(k->kid, j->kid) != 0)
            continue;
        same_kid++;
        if (!key_fits(k, j->alg))
            continue;
        tried++;
        if (!j->sig_too_long &&
            signature_ok(k->pkey, j->alg, j->input, j->inputlen, j->sig, j->siglen))
            return JWT_OK;
    }
    if (tried > 0)
        return JWT_BAD_SIGNATURE;
    return j->kid[0] && same_kid > 0 ? JWT_KEY_MISMATCH : JWT_UNKNOWN_KID;
}

/* --- claims --- */

static const char *const identity_claims[] = {"email", "upn", "preferred_username"};

static bool identity_any(const char *claim)
{
    return !claim || !*claim || strcmp(claim, "any") == 0;
}

/* What can be read for the sign-in log, before anything is checked. */
static bool peek_string(const json_t *p, const char *key, char *dst, size_t cap)
{
    const json_t *v = json_object_get(p, key);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    copy_printable(dst, cap, json_string_value(v), json_string_length(v));
    return true;
}

static void claims_peek(const json_t *p, const struct jwt_expect *x, struct jwt_claims *out)
{
    peek_string(p, "iss", out->iss, sizeof out->iss);
    peek_string(p, "sub", out->sub, sizeof out->sub);
    bool any = identity_any(x ? x->identity_claim : NULL);
    for (size_t i = 0; i < (any ? 3 : 1); i++)
        if (peek_string(p, any ? identity_claims[i] : x->identity_claim, out->identity,
                        sizeof out->identity))
            break;
    (void)json_date(p, "exp", &out->exp);
    (void)json_date(p, "nbf", &out->nbf);
    (void)json_date(p, "iat", &out->iat);
}

/* Does one granted value satisfy the wanted one? Exact, or (for scopes) the last path segment of
 * a URI-style scope, as Entra's "https://outlook.office.com/SMTP.Send". */
static bool grant_matches(const char *v, size_t n, const char *want, bool suffix_ok)
{
    size_t w = strlen(want);
    if (n == w && memcmp(v, want, w) == 0)
        return true;
    return suffix_ok && n > w + 1 && v[n - w - 1] == '/' && memcmp(v + n - w, want, w) == 0;
}

/* A claim holding granted values: a space-separated string or an array of strings.
 * Returns 1 when `want` is among them, 0 when not (or the claim is absent), -1 when ill-typed. */
static int claim_grants(const json_t *p, const char *key, const char *want, bool suffix_ok)
{
    const json_t *v = json_object_get(p, key);
    if (!v)
        return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        for (size_t i = 0; i < len;) {
            while (i < len && s[i] == ' ')
                i++;
            size_t start = i;
            while (i < len && s[i] != ' ')
                i++;
            if (i > start && grant_matches(s + start, i - start, want, suffix_ok))
                return 1;
        }
        return 0;
    }
    if (!json_is_array(v))
        return -1;
    size_t idx;
    const json_t *e;
    int found = 0;
    json_array_foreach(v, idx, e)
    {
        if (!json_is_string(e))
            return -1;
        if (grant_matches(json_string_value(e), json_string_length(e), want, suffix_ok))
            found = 1;
    }
    return found;
}

static enum jwt_error check_audience(const json_t *p, const char *want)
{
    const json_t *aud = json_object_get(p, "aud");
    if (!aud || !want || !*want)
        return JWT_WRONG_AUDIENCE;
    if (json_is_string(aud))
        return jwt_str_eq(json_string_value(aud), json_string_length(aud), want)
                   ? JWT_OK
                   : JWT_WRONG_AUDIENCE;
    if (!json_is_array(aud))
        return JWT_MALFORMED;
    size_t i;
    const json_t *e;
    enum jwt_error r = JWT_WRONG_AUDIENCE;
    json_array_foreach(aud, i, e)
    {
        if (!json_is_string(e))
            return JWT_MALFORMED;
        if (jwt_str_eq(json_string_value(e), json_string_length(e), want))
            r = JWT_OK;
    }
    return r;
}

static enum jwt_error check_identity(const json_t *p, const struct jwt_expect *x,
                                     struct jwt_claims *out)
{
    const char *const *names = identity_claims;
    size_t count = 3;
    const char *one[1];
    if (!identity_any(x->identity_claim)) {
        one[0] = x->identity_claim;
        names = one;
        count = 1;
    }
    const char *s = NULL;
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        enum jwt_field f = jwt_json_str(p, names[i], &s, &n);
        if (f == JWT_FIELD_BAD || (f == JWT_FIELD_OK && n > SMTP_PATH_MAX))
            return JWT_MALFORMED;
        if (f == JWT_FIELD_OK && n > 0)
            break;
        s = NULL;
    }
    if (!s && out->app_only) {
        enum jwt_field f = jwt_json_str(p, "sub", &s, &n);
        if (f == JWT_FIELD_BAD || (f == JWT_FIELD_OK && n > SMTP_PATH_MAX))
            return JWT_MALFORMED;
        if (f != JWT_FIELD_OK || n == 0)
            s = NULL;
    }
    if (!s)
        return JWT_NO_IDENTITY;
    memcpy(out->identity, s, n);
    out->identity[n] = '\0';
    return JWT_OK;
}

static enum jwt_error claims_check(const json_t *p, const struct jwt_expect *x,
                                   struct jwt_claims *out)
{
    int skew = x->skew < 0 ? 0 : x->skew > JWT_SKEW_MAX ? JWT_SKEW_MAX : x->skew;
    int64_t exp = 0, nbf = 0, iat = 0;
    enum jwt_field fnbf = json_date(p, "nbf", &nbf);
    if (json_date(p, "exp", &exp) != JWT_FIELD_OK || fnbf == JWT_FIELD_BAD ||
        json_date(p, "iat", &iat) == JWT_FIELD_BAD)
        return JWT_MALFORMED;
    if (x->now - skew > exp)
        return JWT_EXPIRED;
    if (fnbf == JWT_FIELD_OK && x->now + skew < nbf)
        return JWT_NOT_YET_VALID;

    const char *iss, *sub;
    size_t isslen, sublen;
    enum jwt_field f = jwt_json_str(p, "iss", &iss, &isslen);
    if (f == JWT_FIELD_BAD || jwt_json_str(p, "sub", &sub, &sublen) == JWT_FIELD_BAD)
        return JWT_MALFORMED;
    /* A missing iss is a wrong one; so is any iss when the tenant names none. */
    if (f != JWT_FIELD_OK || !x->issuer || !*x->issuer || !jwt_str_eq(iss, isslen, x->issuer))
        return JWT_WRONG_ISSUER;

    enum jwt_error e = check_audience(p, x->audience);
    if (e != JWT_OK)
        return e;

    const char *scope = x->scope && *x->scope ? x->scope : SCOPE_DEFAULT;
    const char *role = x->app_role && *x->app_role ? x->app_role : APP_ROLE_DEFAULT;
    int scp = claim_grants(p, "scp", scope, true);
    int scope2 = claim_grants(p, "scope", scope, true);
    int roles = claim_grants(p, "roles", role, false);
    if (scp < 0 || scope2 < 0 || roles < 0)
        return JWT_MALFORMED;
    if (scp == 0 && scope2 == 0) {
        if (roles == 0)
            return JWT_NO_SCOPE;
        out->app_only = true;
    }
    return check_identity(p, x, out);
}

enum jwt_error jwt_verify(const char *token, size_t len, const struct jwks *keys,
                          const struct jwt_expect *expect, struct jwt_claims *out)
{
    struct jwt_claims scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    struct jws j;
    enum jwt_error e = jws_parse(token, len, &j);
    out->alg = j.alg;
    memcpy(out->kid, j.kid, sizeof out->kid);
    if (j.payload)
        claims_peek(j.payload, expect, out);
    if (e == JWT_OK && j.alg == JWT_ALG_NONE)
        e = JWT_ALG_REJECTED;
    if (e == JWT_OK)
        e = jws_check_signature(&j, keys);
    if (e == JWT_OK)
        e = expect ? claims_check(j.payload, expect, out) : JWT_WRONG_ISSUER;
    jws_clear(&j);
    return e;
}

const char *jwt_error_name(enum jwt_error e)
{
    static const char *const names[JWT_ERROR_COUNT] = {
        [JWT_OK] = "ok",
        [JWT_MALFORMED] = "malformed",
        [JWT_OVERSIZED] = "oversized",
        [JWT_ALG_REJECTED] = "alg-rejected",
        [JWT_UNKNOWN_KID] = "unknown-kid",
        [JWT_KEY_MISMATCH] = "key-mismatch",
        [JWT_BAD_SIGNATURE] = "bad-signature",
        [JWT_EXPIRED] = "expired",
        [JWT_NOT_YET_VALID] = "not-yet-valid",
        [JWT_WRONG_ISSUER] = "wrong-issuer",
        [JWT_WRONG_AUDIENCE] = "wrong-audience",
        [JWT_NO_SCOPE] = "no-scope",
        [JWT_NO_IDENTITY] = "no-identity",
    };
    return (unsigned)e < JWT_ERROR_COUNT ? names[e] : "unknown";
}

const char *jwt_alg_name(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_ALG_RS256:
        return "RS256";
    case JWT_ALG_ES256:
        return "ES256";
    case JWT_ALG_EDDSA:
        return "EdDSA";
    default:
        return "none";
    }
}

/* --- signing --- */

static char *sign_input(EVP_PKEY *key, enum jwt_alg alg, const char *input, size_t n)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *sig = NULL, raw[RAW_SIG_LEN];
    size_t siglen = 0;
    char *out = NULL;
    if (!ctx ||
        EVP_DigestSignInit_ex(ctx, NULL, alg == JWT_ALG_EDDSA ? NULL : "SHA256", NULL, NULL, key,
                              NULL) != 1 ||
        EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)input, n) != 1 ||
        !(sig = OPENSSL_malloc(siglen)) ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, n) != 1)
        goto done;
    const uint8_t *s = sig;
    if (alg == JWT_ALG_ES256) {
        if (ecdsa_der_to_raw(sig, siglen, raw) != 0)
            goto done;
        s = raw;
        siglen = sizeof raw;
    }
    if ((out = malloc(jwt_b64url_len(siglen) + 1)))
        jwt_b64url_encode(s, siglen, out);
done:
    OPENSSL_free(sig);
    EVP_MD_CTX_free(ctx);
    return out;
}

char *jwt_sign(EVP_PKEY *key, const char *kid, const char *claims_json)
{
    enum jwt_alg alg = jwt_pkey_alg(key);
    if (alg == JWT_ALG_NONE || !claims_json || (kid && strlen(kid) > JWT_KID_MAX))
        return NULL;
    size_t plen = strlen(claims_json);
    json_t *claims = json_parse((const uint8_t *)claims_json, plen);
    if (!claims)
        return NULL;
    json_decref(claims);
    json_t *h = json_pack("{s:s, s:s}", "alg", jwt_alg_name(alg), "typ", "JWT");
    if (h && kid && *kid && json_object_set_new(h, "kid", json_string(kid)) != 0) {
        json_decref(h);
        h = NULL;
    }
    char *header = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!header)
        return NULL;
    size_t hlen = strlen(header);
    size_t cap = jwt_b64url_len(hlen) + 1 + jwt_b64url_len(plen) + 1 + jwt_b64url_len(SIG_MAX) + 1;
    char *token = malloc(cap), *sig = NULL;
    if (!token)
        goto fail;
    jwt_b64url_encode((const uint8_t *)header, hlen, token);
    size_t n = strlen(token);
    token[n++] = '.';
    jwt_b64url_encode((const uint8_t *)claims_json, plen, token + n);
    n += strlen(token + n);
    if (!(sig = sign_input(key, alg, token, n)))
        goto fail;
    token[n++] = '.';
    memcpy(token + n, sig, strlen(sig) + 1);
    free(sig);
    free(header);
    if (strlen(token) > JWT_MAX_LEN) { /* we would refuse it ourselves */
        free(token);
        return NULL;
    }
    return token;
fail:
    free(token);
    free(header);
    return NULL;
}
