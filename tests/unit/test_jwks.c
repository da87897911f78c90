/* test_jwks.c: JWK Sets (RFC 7517) and thumbprints (RFC 7638): export and parse round trips for
 * RSA, P-256 and Ed25519 keys, the RFC 7638 3.1 example thumbprint, full-length EC coordinates
 * (RFC 7518 6.2.1.2), which keys are skipped (use=enc, key_ops, foreign alg, curve or kty, RSA
 * under 2048 bits, more than JWKS_MAX_KEYS) and which documents are refused (private or secret
 * members, bad JSON, points off the curve, wrong lengths, padding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "jwt.h"
#include "test_b64url.h"

static EVP_PKEY *rsa, *ec, *ed;

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static int setup(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return rsa && ec && ed ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    return 0;
}

/* RFC 7638 3.1 */
static void test_rfc7638_thumbprint(void **state)
{
    (void)state;
    const char *jwks =
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx"
        "4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9y"
        "BXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6q"
        "MQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqb"
        "w0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\","
        "\"kid\":\"2011-04-29\"}]}";
    struct jwks s;
    char err[128];
    assert_int_equal(jwks_parse(jwks, strlen(jwks), &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0].kid, "2011-04-29");
    char kid[JWT_KID_MAX + 1];
    assert_int_equal(jwk_thumbprint(s.keys[0].pkey, kid), 0);
    assert_string_equal(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    /* exported again, the members are the same */
    char *doc = jwks_export_public(s.keys[0].pkey, NULL);
    assert_non_null(strstr(doc, "\"e\":\"AQAB\""));
    assert_non_null(strstr(doc, "\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78"));
    assert_non_null(strstr(doc, "\"kid\":\"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs\""));
    free(doc);
    jwks_free(&s);
}

static void test_jwks_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa, ec, ed};
    const enum jwt_alg algs[] = {JWT_ALG_RS256, JWT_ALG_ES256, JWT_ALG_EDDSA};
    const char *kty[] = {"\"kty\":\"RSA\"", "\"crv\":\"P-256\"", "\"crv\":\"Ed25519\""};
    for (size_t k = 0; k < 3; k++) {
        char *doc = jwks_export_public(keys[k], "k1");
        assert_non_null(strstr(doc, kty[k]));
        assert_non_null(strstr(doc, "\"use\":\"sig\""));
        assert_null(strstr(doc, "\"d\""));
        struct jwks s;
        char err[128];
        assert_int_equal(jwks_parse(doc, strlen(doc), &s, err, sizeof err), 0);
        assert_string_equal(err, "");
        assert_int_equal(s.n, 1);
        assert_string_equal(s.keys[0].kid, "k1");
        assert_int_equal(s.keys[0].alg, algs[k]);
        assert_int_equal(EVP_PKEY_eq(s.keys[0].pkey, keys[k]), 1);
        char t1[JWT_KID_MAX + 1], t2[JWT_KID_MAX + 1];
        assert_int_equal(jwk_thumbprint(keys[k], t1), 0);
        assert_int_equal(jwk_thumbprint(s.keys[0].pkey, t2), 0);
        assert_string_equal(t1, t2);
        assert_int_equal(strlen(t1), 43);
        jwks_free(&s);
        free(doc);
        /* kid NULL: the thumbprint */
        doc = jwks_export_public(keys[k], NULL);
        char want[80];
        snprintf(want, sizeof want, "\"kid\":\"%s\"", t1);
        assert_non_null(strstr(doc, want));
        free(doc);
    }
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char kid[JWT_KID_MAX + 1];
    assert_null(jwks_export_public(p384, "x"));
    assert_int_equal(jwk_thumbprint(p384, kid), -1);
    EVP_PKEY_free(p384);
}

/* RFC 7518 6.2.1.2: x and y keep their leading zero octets. */
static void test_ec_leading_zero(void **state)
{
    (void)state;
    EVP_PKEY *k = NULL;
    for (int i = 0; i < 4000 && !k; i++) {
        EVP_PKEY *c = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        BIGNUM *bx = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(c, OSSL_PKEY_PARAM_EC_PUB_X, &bx), 1);
        if (BN_num_bytes(bx) < 32)
            k = c;
        else
            EVP_PKEY_free(c);
        BN_free(bx);
    }
    assert_non_null(k);
    char *doc = jwks_export_public(k, "z");
    json_t *j = json_loads(doc, 0, NULL);
    const char *xs =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "keys"), 0), "x"));
    uint8_t xb[40];
    assert_int_equal(t_unb64(xs, strlen(xs), xb), 32);
    assert_int_equal(xb[0], 0);
    struct jwks s;
    assert_int_equal(jwks_parse(doc, strlen(doc), &s, NULL, 0), 0);
    assert_int_equal(EVP_PKEY_eq(s.keys[0].pkey, k), 1);
    jwks_free(&s);
    json_decref(j);
    free(doc);
    EVP_PKEY_free(k);
}

static int parse(const char *doc, struct jwks *s, char *err, size_t errlen)
{
    return jwks_parse(doc, strlen(doc), s, err, errlen);
}

static void test_jwks_selection(void **state)
{
    (void)state;
    char *eddoc = jwks_export_public(ed, "e1");
    json_t *root = json_loads(eddoc, 0, NULL);
    json_t *edjwk = json_incref(json_array_get(json_object_get(root, "keys"), 0));
    json_decref(root);
    char *rsadoc = jwks_export_public(rsa, "r1");
    root = json_loads(rsadoc, 0, NULL);
    json_t *rsajwk = json_incref(json_array_get(json_object_get(root, "keys"), 0));
    json_decref(root);
    struct jwks s;
    char err[256];

    /* use=enc and key_ops without verify are skipped; the signing key stays */
    json_t *enc = json_deep_copy(rsajwk);
    json_object_set_new(enc, "use", json_string("enc"));
    json_object_set_new(enc, "alg", json_string("RSA-OAEP"));
    json_t *ops = json_deep_copy(edjwk);
    json_object_del(ops, "use");
    json_object_set_new(ops, "key_ops", json_pack("[s]", "encrypt"));
    char *doc = dump(json_pack("{s:[o,o,O]}", "keys", enc, ops, edjwk));
    assert_int_equal(parse(doc, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0].kid, "e1");
    assert_non_null(strstr(err, "skipped 2 keys"));
    assert_non_null(strstr(err, "use is not sig"));
    jwks_free(&s);
    free(doc);

    /* a JWK's alg must fit its kty; unknown algs and curves are skipped */
    const char *skipped[] = {
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"oct\",\"alg\":\"HS256\"}]}",
        "{\"keys\":[{\"kty\":\"XYZ\"}]}",
    };
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        assert_int_equal(parse(skipped[i], &s, err, sizeof err), 0);
        assert_int_equal(s.n, 0);
    }
    const char *algs[] = {"ES256", "RS384", "PS256", "HS256", "EdDSA"};
    for (size_t i = 0; i < 5; i++) {
        json_t *k = json_deep_copy(rsajwk);
        json_object_set_new(k, "alg", json_string(algs[i]));
        doc = dump(json_pack("{s:[o]}", "keys", k));
        assert_int_equal(parse(doc, &s, err, sizeof err), 0);
        assert_int_equal(s.n, 0);
        free(doc);
    }
    json_t *k = json_deep_copy(edjwk);
    json_object_set_new(k, "alg", json_string("Ed25519"));
    doc = dump(json_pack("{s:[o]}", "keys", k));
    assert_int_equal(parse(doc, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.keys[0].alg, JWT_ALG_EDDSA);
    jwks_free(&s);
    free(doc);

    /* private members refuse the whole set */
    const char *privs[] = {"d", "p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < sizeof privs / sizeof privs[0]; i++) {
        k = json_deep_copy(i == 0 ? edjwk : rsajwk);
        json_object_set_new(k, privs[i], json_string("AQAB"));
        doc = dump(json_pack("{s:[O,o]}", "keys", edjwk, k));
        assert_int_equal(parse(doc, &s, err, sizeof err), -1);
        assert_non_null(strstr(err, "private"));
        assert_int_equal(s.n, 0);
        free(doc);
    }
    assert_int_equal(
        parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", &s, err, sizeof err), -1);

    /* RSA under 2048 bits is skipped, with a note */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    BIGNUM *n = NULL, *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    uint8_t nb[128], eb[8];
    BN_bn2bin(n, nb);
    int elen = BN_bn2bin(e, eb);
    char *n64 = t_b64(nb, 128), *e64 = t_b64(eb, (size_t)elen);
    doc = dump(json_pack("{s:[{s:s,s:s,s:s,s:s}]}", "keys", "kty", "RSA", "kid", "small", "n", n64,
                         "e", e64));
    assert_int_equal(parse(doc, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 0);
    assert_non_null(strstr(err, "1024 bits"));
    free(doc);
    free(n64);
    free(e64);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(small);

    /* broken keys and documents refuse the set */
    json_t *badpt = json_deep_copy(edjwk);
    json_object_set_new(badpt, "x", json_string("AAAA"));
    json_t *longkid = json_deep_copy(edjwk);
    char kidbuf[JWT_KID_MAX + 2];
    memset(kidbuf, 'k', sizeof kidbuf - 1);
    kidbuf[sizeof kidbuf - 1] = '\0';
    json_object_set_new(longkid, "kid", json_string(kidbuf));
    char *d1 = dump(json_pack("{s:[o]}", "keys", badpt));
    char *d2 = dump(json_pack("{s:[o]}", "keys", longkid));
    const char *broken[] = {
        d1,
        d2,
        "",
        "[]",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[1]}",
        "{\"keys\":[{}]}",
        "{\"keys\":[],\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPa"
        "piMlrwIaaPcHURo=\"}]}",
        /* RFC 7515 A.3's key with y changed: not on the curve */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tu"
        "s9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tu"
        "s9uPHvRV\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        if (parse(broken[i], &s, err, sizeof err) != -1)
            fail_msg("accepted %s", broken[i]);
        assert_int_equal(s.n, 0);
        assert_true(err[0] != '\0');
    }
    free(d1);
    free(d2);
    assert_int_equal(jwks_parse(NULL, 0, &s, err, sizeof err), -1);

    /* at most JWKS_MAX_KEYS keys are kept */
    json_t *many = json_array();
    for (int i = 0; i < JWKS_MAX_KEYS + 4; i++) {
        json_t *c = json_deep_copy(edjwk);
        json_object_set_new(c, "kid", json_sprintf("k%d", i));
        json_array_append_new(many, c);
    }
    doc = dump(json_pack("{s:o}", "keys", many));
    assert_int_equal(parse(doc, &s, err, sizeof err), 0);
    assert_int_equal(s.n, JWKS_MAX_KEYS);
    assert_string_equal(s.keys[JWKS_MAX_KEYS - 1].kid, "k15");
    jwks_free(&s);
    free(doc);

    json_decref(edjwk);
    json_decref(rsajwk);
    free(eddoc);
    free(rsadoc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_jwks_round_trip),
        cmocka_unit_test(test_ec_leading_zero),
        cmocka_unit_test(test_jwks_selection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
