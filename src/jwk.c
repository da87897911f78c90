/* jwk.c: JSON Web Keys for submitd's token verification (SPEC 5). Owns JWK Set parsing
 * (RFC 7517 5) of RSA (RFC 7518 6.3.1), EC P-256 (RFC 7518 6.2.1) and OKP Ed25519 (RFC 8037 2)
 * public keys into OpenSSL keys built with OSSL_PARAM_BLD / EVP_PKEY_fromdata; the public JWKS
 * export of one key; and JWK thumbprints (RFC 7638). Keys not meant for signatures, of other
 * types or curves, or weaker than 2048-bit RSA are skipped; a set carrying private or secret
 * members is refused whole. */
#include "jwt.h"
#include "jwt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

/* The public members of a key we support, base64url: RSA n and e; EC x and y; OKP x. */
struct jwk_public {
    enum jwt_alg alg;
    char a[B64URL_MAX(SIG_MAX) + 1];
    char b[64];
};

enum jwk_result { JWK_ADD, JWK_SKIP, JWK_BAD };

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey && EVP_PKEY_is_a(pkey, "EC")) {
        /* EC: the point is on the curve and not the identity. (RSA is checked by jwk_rsa with
         * deterministic tests: OpenSSL's RSA public check runs a randomized Miller-Rabin on the
         * modulus, so a crafted key would be accepted on some loads and refused on others.) */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
    return pkey;
}

/* Decodes a base64url member into out (exactly `want` bytes when want > 0). */
static int jwk_bytes(const json_t *k, const char *key, uint8_t *out, size_t cap, size_t want,
                     size_t *n)
{
    const char *s;
    size_t len;
    if (jwt_json_str(k, key, &s, &len) != JWT_FIELD_OK ||
        jwt_b64url_decode(s, len, out, cap, n) != 0 || *n == 0 || (want && *n != want))
        return -1;
    return 0;
}

static enum jwk_result jwk_rsa(const json_t *k, EVP_PKEY **pkey, char *why, size_t whylen)
{
    uint8_t n[SIG_MAX + 1], e[RSA_E_MAX_BYTES];
    size_t nlen, elen;
    if (jwk_bytes(k, "n", n, sizeof n, 0, &nlen) != 0 ||
        jwk_bytes(k, "e", e, sizeof e, 0, &elen) != 0) {
        snprintf(why, whylen, "RSA key without valid \"n\" and \"e\"");
        return JWK_BAD;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    enum jwk_result r = JWK_BAD;
    snprintf(why, whylen, "RSA key refused by OpenSSL");
    if (!bn || !be)
        goto out;
    int bits = BN_num_bits(bn);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        snprintf(why, whylen, "RSA modulus of %d bits (need %d to %d)", bits, RSA_MIN_BITS,
                 RSA_MAX_BITS);
        r = JWK_SKIP;
        goto out;
    }
    /* Deterministic sanity (the same answer on every load): n odd, e odd with 1 < e < n. */
    if (!BN_is_odd(bn) || !BN_is_odd(be) || BN_is_one(be) || BN_cmp(be, bn) >= 0) {
        snprintf(why, whylen, "RSA key with an even modulus or an invalid exponent");
        goto out;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
        (*pkey = pkey_from_params("RSA", bld)) != NULL)
        r = JWK_ADD;
    OSSL_PARAM_BLD_free(bld);
out:
    BN_free(bn);
    BN_free(be);
    return r;
}

static enum jwk_result jwk_ec(const json_t *k, EVP_PKEY **pkey, char *why, size_t whylen)
{
    const char *crv;
    size_t n;
    if (jwt_json_str(k, "crv", &crv, &n) != JWT_FIELD_OK || !jwt_str_eq(crv, n, "P-256")) {
        snprintf(why, whylen, "EC key not on P-256");
        return JWK_SKIP;
    }
    uint8_t point[1 + 2 * P256_COORD_LEN];
    point[0] = 0x04; /* SEC 1 2.3.3 uncompressed */
    if (jwk_bytes(k, "x", point + 1, P256_COORD_LEN, P256_COORD_LEN, &n) != 0 ||
        jwk_bytes(k, "y", point + 1 + P256_COORD_LEN, P256_COORD_LEN, P256_COORD_LEN, &n) != 0) {
        snprintf(why, whylen, "EC key without 32-octet \"x\" and \"y\"");
        return JWK_BAD;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    enum jwk_result r = JWK_BAD;
    snprintf(why, whylen, "EC point refused by OpenSSL (not on the curve?)");
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) == 1 &&
        (*pkey = pkey_from_params("EC", bld)) != NULL)
        r = JWK_ADD;
    OSSL_PARAM_BLD_free(bld);
    return r;
}

static enum jwk_result jwk_okp(const json_t *k, EVP_PKEY **pkey, char *why, size_t whylen)
{
    const char *crv;
    size_t n;
    if (jwt_json_str(k, "crv", &crv, &n) != JWT_FIELD_OK || !jwt_str_eq(crv, n, "Ed25519")) {
        snprintf(why, whylen, "OKP key not Ed25519");
        return JWK_SKIP;
    }
    uint8_t x[ED25519_KEY_LEN];
    if (jwk_bytes(k, "x", x, sizeof x, sizeof x, &n) != 0) {
        snprintf(why, whylen, "Ed25519 key without a 32-octet \"x\"");
        return JWK_BAD;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    enum jwk_result r = JWK_BAD;
    snprintf(why, whylen, "Ed25519 key refused by OpenSSL");
    if (bld && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, x, sizeof x) == 1 &&
        (*pkey = pkey_from_params("ED25519", bld)) != NULL)
        r = JWK_ADD;
    OSSL_PARAM_BLD_free(bld);
    return r;
}

/* Private or secret members (RFC 7518 6.3.2, 6.2.2, 6.4.1; RFC 8037 2). */
static bool jwk_has_private(const json_t *k)
{
    static const char *const members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (json_object_get(k, members[i]))
            return true;
    return false;
}

static enum jwk_result jwk_parse_one(const json_t *k, struct jwk *out, char *why, size_t whylen)
{
    const char *s;
    size_t n;
    memset(out, 0, sizeof *out);
    if (jwt_json_str(k, "kty", &s, &n) != JWT_FIELD_OK) {
        snprintf(why, whylen, "no \"kty\"");
        return JWK_BAD;
    }
    enum jwt_alg implied = jwt_str_eq(s, n, "RSA")   ? JWT_ALG_RS256
                           : jwt_str_eq(s, n, "EC")  ? JWT_ALG_ES256
                           : jwt_str_eq(s, n, "OKP") ? JWT_ALG_EDDSA
                                                     : JWT_ALG_NONE;
    if (implied == JWT_ALG_NONE) {
        snprintf(why, whylen, "unsupported kty");
        return JWK_SKIP;
    }
    enum jwt_field f = jwt_json_str(k, "use", &s, &n);
    if (f == JWT_FIELD_BAD) {
        snprintf(why, whylen, "\"use\" is not a string");
        return JWK_BAD;
    }
    if (f == JWT_FIELD_OK && !jwt_str_eq(s, n, "sig")) {
        snprintf(why, whylen, "use is not sig");
        return JWK_SKIP;
    }
    const json_t *ops = json_object_get(k, "key_ops");
    if (ops) {
        bool verify = false;
        size_t i;
        const json_t *op;
        if (!json_is_array(ops)) {
            snprintf(why, whylen, "\"key_ops\" is not an array");
            return JWK_BAD;
        }
        json_array_foreach(ops, i, op) if (json_is_string(op) &&
                                           strcmp(json_string_value(op), "verify") == 0) verify =
            true;
        if (!verify) {
            snprintf(why, whylen, "key_ops lacks verify");
            return JWK_SKIP;
        }
    }
    f = jwt_json_str(k, "alg", &s, &n);
    if (f == JWT_FIELD_BAD) {
        snprintf(why, whylen, "\"alg\" is not a string");
        return JWK_BAD;
    }
    out->alg = f == JWT_FIELD_OK ? jwt_alg_from_name(s, n) : implied;
    if (out->alg != implied) {
        snprintf(why, whylen, "alg does not fit the key type");
        return JWK_SKIP;
    }
    f = jwt_json_str(k, "kid", &s, &n);
    if (f == JWT_FIELD_BAD || (f == JWT_FIELD_OK && n > JWT_KID_MAX)) {
        snprintf(why, whylen, "\"kid\" is not a string of at most %d characters", JWT_KID_MAX);
        return JWK_BAD;
    }
    if (f == JWT_FIELD_OK) {
        memcpy(out->kid, s, n);
        out->kid[n] = '\0';
    }
    switch (implied) {
    case JWT_ALG_RS256:
        return jwk_rsa(k, &out->pkey, why, whylen);
    case JWT_ALG_ES256:
        return jwk_ec(k, &out->pkey, why, whylen);
    default:
        return jwk_okp(k, &out->pkey, why, whylen);
    }
}

int jwks_parse(const char *json, size_t len, struct jwks *out, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    json_error_t je;
    json_t *root = json ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!root || !json_is_object(root)) {
        snprintf(err, errlen, "JWKS is not a JSON object%s%s", root ? "" : ": ",
                 root ? "" : je.text);
        json_decref(root);
        return -1;
    }
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "JWKS has no \"keys\" array");
        json_decref(root);
        return -1;
    }
    size_t i, skipped = 0;
    const json_t *k;
    char note[128] = "";
    json_array_foreach(keys, i, k)
    {
        char why[128] = "";
        if (!json_is_object(k)) {
            snprintf(err, errlen, "JWKS key %zu is not an object", i);
            goto fail;
        }
        if (jwk_has_private(k)) {
            snprintf(err, errlen, "JWKS key %zu has private members: publish only public keys", i);
            goto fail;
        }
        struct jwk key;
        enum jwk_result r = jwk_parse_one(k, &key, why, sizeof why);
        if (r == JWK_BAD) {
            snprintf(err, errlen, "JWKS key %zu: %s", i, why);
            goto fail;
        }
        if (r == JWK_ADD && out->n == JWKS_MAX_KEYS) {
            EVP_PKEY_free(key.pkey);
            snprintf(why, sizeof why, "more than %d keys", JWKS_MAX_KEYS);
            r = JWK_SKIP;
        }
        if (r == JWK_SKIP) {
            if (skipped++ == 0)
                snprintf(note, sizeof note, "key %zu: %s", i, why);
            continue;
        }
        out->keys[out->n++] = key;
    }
    json_decref(root);
    /* On success err carries a note about skipped keys (or stays empty). */
    if (skipped > 0)
        snprintf(err, errlen, "skipped %zu key%s (first: %s)", skipped, skipped > 1 ? "s" : "",
                 note);
    return 0;
fail:
    json_decref(root);
    jwks_free(out);
    return -1;
}

void jwks_free(struct jwks *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n && i < JWKS_MAX_KEYS; i++)
        EVP_PKEY_free(set->keys[i].pkey);
    memset(set, 0, sizeof *set);
}

static int bn_member(EVP_PKEY *key, const char *param, char *out, size_t cap, int pad)
{
    BIGNUM *bn = NULL;
    uint8_t buf[SIG_MAX];
    int rc = -1;
    if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
        return -1;
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    if (n > 0 && BN_num_bytes(bn) <= (int)sizeof buf && jwt_b64url_len((size_t)n) < cap) {
        jwt_b64url_encode(buf, (size_t)n, out);
        rc = 0;
    }
    BN_free(bn);
    return rc;
}

static int jwk_public_members(EVP_PKEY *key, struct jwk_public *m)
{
    memset(m, 0, sizeof *m);
    m->alg = jwt_pkey_alg(key);
    switch (m->alg) {
    case JWT_ALG_RS256:
        return bn_member(key, OSSL_PKEY_PARAM_RSA_N, m->a, sizeof m->a, 0) == 0 &&
                       bn_member(key, OSSL_PKEY_PARAM_RSA_E, m->b, sizeof m->b, 0) == 0
                   ? 0
                   : -1;
    case JWT_ALG_ES256:
        /* RFC 7518 6.2.1.2: coordinates are the full 32 octets, leading zeros kept. */
        return bn_member(key, OSSL_PKEY_PARAM_EC_PUB_X, m->a, sizeof m->a, P256_COORD_LEN) == 0 &&
                       bn_member(key, OSSL_PKEY_PARAM_EC_PUB_Y, m->b, sizeof m->b,
                                 P256_COORD_LEN) == 0
                   ? 0
                   : -1;
    case JWT_ALG_EDDSA: {
        uint8_t x[ED25519_KEY_LEN];
        size_t n = 0;
        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, x, sizeof x, &n) != 1 ||
            n != sizeof x)
            return -1;
        jwt_b64url_encode(x, n, m->a);
        return 0;
    }
    default:
        return -1;
    }
}

int jwk_thumbprint(EVP_PKEY *key, char kid[JWT_KID_MAX + 1])
{
    struct jwk_public m;
    char canon[sizeof m.a + sizeof m.b + 64];
    if (jwk_public_members(key, &m) != 0)
        return -1;
    /* RFC 7638 3.2: the required members only, in lexicographic order, no whitespace. */
    if (m.alg == JWT_ALG_RS256)
        snprintf(canon, sizeof canon, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", m.b, m.a);
    else if (m.alg == JWT_ALG_ES256)
        snprintf(canon, sizeof canon,
                 "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", m.a, m.b);
    else
        snprintf(canon, sizeof canon, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", m.a);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) != 1)
        return -1;
    jwt_b64url_encode(md, mdlen, kid);
    return 0;
}

char *jwks_export_public(EVP_PKEY *key, const char *kid)
{
    struct jwk_public m;
    char thumb[JWT_KID_MAX + 1];
    if (jwk_public_members(key, &m) != 0)
        return NULL;
    if (!kid) {
        if (jwk_thumbprint(key, thumb) != 0)
            return NULL;
        kid = thumb;
    }
    if (strlen(kid) > JWT_KID_MAX)
        return NULL;
    json_t *k = json_object();
    int bad = !k;
    if (m.alg == JWT_ALG_RS256) {
        bad |= json_object_set_new(k, "kty", json_string("RSA"));
        bad |= json_object_set_new(k, "n", json_string(m.a));
        bad |= json_object_set_new(k, "e", json_string(m.b));
    } else if (m.alg == JWT_ALG_ES256) {
        bad |= json_object_set_new(k, "kty", json_string("EC"));
        bad |= json_object_set_new(k, "crv", json_string("P-256"));
        bad |= json_object_set_new(k, "x", json_string(m.a));
        bad |= json_object_set_new(k, "y", json_string(m.b));
    } else {
        bad |= json_object_set_new(k, "kty", json_string("OKP"));
        bad |= json_object_set_new(k, "crv", json_string("Ed25519"));
        bad |= json_object_set_new(k, "x", json_string(m.a));
    }
    bad |= json_object_set_new(k, "use", json_string("sig"));
    bad |= json_object_set_new(k, "alg", json_string(jwt_alg_name(m.alg)));
    if (*kid)
        bad |= json_object_set_new(k, "kid", json_string(kid));
    json_t *doc = bad ? NULL : json_pack("{s:[o]}", "keys", k);
    if (!doc)
        json_decref(k);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}
