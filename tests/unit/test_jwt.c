/* test_jwt.c: JWT verification (RFC 7515, RFC 7519) against a table of good and bad tokens made
 * here with OpenSSL: RS256, ES256 and EdDSA keys generated at start; tokens signed both with
 * jwt_sign and with this file's own signer (so hostile headers can be made), and the published
 * examples of RFC 7515 A.3 (ES256) and RFC 8037 A (Ed25519). JWK Sets: test_jwks.c. */
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
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "jwt.h"
#include "test_b64url.h"

#define NOW 1700000000
#define ISS "https://idp.example.com/"
#define AUD "submitd"

static EVP_PKEY *rsa, *ec, *ed, *evil;
static struct jwks set; /* rsa1, ec1, ed1 */

/* --- this file's own signer, independent of jwt.c (base64url from test_b64url.h) --- */

/* Signs like a JWS library would: RSA PKCS #1 v1.5, ECDSA as R||S, Ed25519. der: leave ECDSA in
 * DER (a common mistake of foreign implementations). */
static size_t t_sign_raw(EVP_PKEY *k, const char *input, uint8_t *out, bool der)
{
    bool edkey = EVP_PKEY_is_a(k, "ED25519");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t sig[1024];
    size_t n = sizeof sig;
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, edkey ? NULL : "SHA256", NULL, NULL, k, NULL),
                     1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const uint8_t *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_is_a(k, "EC") && !der) {
        const uint8_t *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        assert_int_equal(BN_bn2binpad(r, out, 32), 32);
        assert_int_equal(BN_bn2binpad(s, out + 32, 32), 32);
        ECDSA_SIG_free(es);
        return 64;
    }
    memcpy(out, sig, n);
    return n;
}

static char *t_join(const char *h64, const char *p64, const uint8_t *sig, size_t siglen)
{
    char *s64 = t_b64(sig, siglen);
    size_t n = strlen(h64) + strlen(p64) + strlen(s64) + 3;
    char *tok = malloc(n);
    snprintf(tok, n, "%s.%s.%s", h64, p64, s64);
    free(s64);
    return tok;
}

/* header and payload are JSON texts, used byte for byte; key NULL = empty signature. */
static char *t_token(const char *header, const char *payload, EVP_PKEY *k)
{
    char *h64 = t_b64(header, strlen(header)), *p64 = t_b64(payload, strlen(payload));
    char input[JWT_MAX_LEN * 2];
    snprintf(input, sizeof input, "%s.%s", h64, p64);
    uint8_t sig[1024];
    size_t n = k ? t_sign_raw(k, input, sig, false) : 0;
    char *tok = t_join(h64, p64, sig, n);
    free(h64);
    free(p64);
    return tok;
}

static json_t *claims_base(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", ISS, "aud", AUD, "sub",
                     "u-1", "email", "alice@example.com", "scp", "SMTP.Send", "iat",
                     (json_int_t)NOW - 10, "nbf", (json_int_t)NOW - 10, "exp",
                     (json_int_t)NOW + 600);
}

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static struct jwt_expect expect_base(void)
{
    struct jwt_expect x = {.issuer = ISS, .audience = AUD, .now = NOW, .skew = 60};
    return x;
}

static struct jwt_claims out;

static enum jwt_error verify_with(const char *tok, const struct jwt_expect *x)
{
    return jwt_verify(tok, strlen(tok), &set, x, &out);
}

static enum jwt_error verify(const char *tok)
{
    struct jwt_expect x = expect_base();
    return verify_with(tok, &x);
}

static void add_key(struct jwks *s, EVP_PKEY *k, const char *kid)
{
    struct jwks one;
    char err[256];
    char *doc = jwks_export_public(k, kid);
    assert_non_null(doc);
    assert_int_equal(jwks_parse(doc, strlen(doc), &one, err, sizeof err), 0);
    assert_int_equal(one.n, 1);
    s->keys[s->n++] = one.keys[0];
    free(doc);
}

static int setup(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    evil = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!rsa || !ec || !ed || !evil)
        return -1;
    add_key(&set, rsa, "rsa1");
    add_key(&set, ec, "ec1");
    add_key(&set, ed, "ed1");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jwks_free(&set);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(evil);
    return 0;
}

/* --- the table --- */

static void set_int(json_t *c, const char *k, json_int_t v)
{
    json_object_set_new(c, k, json_integer(v));
}
static void m_none(json_t *c)
{
    (void)c;
}
static void m_no_exp(json_t *c)
{
    json_object_del(c, "exp");
}
static void m_exp_string(json_t *c)
{
    json_object_set_new(c, "exp", json_string("tomorrow"));
}
static void m_exp_real(json_t *c)
{
    json_object_set_new(c, "exp", json_real(NOW + 600.75));
}
static void m_nbf_61(json_t *c)
{
    set_int(c, "nbf", NOW + 61);
}
static void m_nbf_60(json_t *c)
{
    set_int(c, "nbf", NOW + 60);
}
static void m_no_nbf_iat(json_t *c)
{
    json_object_del(c, "nbf");
    json_object_del(c, "iat");
}
static void m_iat_string(json_t *c)
{
    json_object_set_new(c, "iat", json_string("now"));
}
static void m_iss_wrong(json_t *c)
{
    json_object_set_new(c, "iss", json_string("https://idp.example.com"));
}
static void m_iss_missing(json_t *c)
{
    json_object_del(c, "iss");
}
static void m_iss_number(json_t *c)
{
    set_int(c, "iss", 7);
}
static void m_aud_wrong(json_t *c)
{
    json_object_set_new(c, "aud", json_string("submitd2"));
}
static void m_aud_missing(json_t *c)
{
    json_object_del(c, "aud");
}
static void m_aud_array(json_t *c)
{
    json_object_set_new(c, "aud", json_pack("[s,s]", "https://outlook.office.com", AUD));
}
static void m_aud_array_not(json_t *c)
{
    json_object_set_new(c, "aud", json_pack("[s,s]", "a", "b"));
}
static void m_aud_array_bad(json_t *c)
{
    json_object_set_new(c, "aud", json_pack("[s,i]", AUD, 1));
}
static void m_no_scope(json_t *c)
{
    json_object_del(c, "scp");
}
static void m_scp_list(json_t *c)
{
    json_object_set_new(c, "scp", json_string("openid  SMTP.Send profile"));
}
static void m_scope_string(json_t *c)
{
    json_object_del(c, "scp");
    json_object_set_new(c, "scope", json_string("email SMTP.Send"));
}
static void m_scope_array(json_t *c)
{
    json_object_del(c, "scp");
    json_object_set_new(c, "scope", json_pack("[s,s]", "openid", "SMTP.Send"));
}
static void m_scp_url(json_t *c)
{
    json_object_set_new(c, "scp", json_string("https://outlook.office.com/SMTP.Send"));
}
static void m_scp_near(json_t *c)
{
    json_object_set_new(
        c, "scp",
        json_string("SMTP.Sendx xSMTP.Send fooSMTP.Send https://x/SMTP.Sendy SMTP smtp.send"));
}
static void m_scp_number(json_t *c)
{
    set_int(c, "scp", 1);
}
static void m_app(json_t *c)
{
    json_object_del(c, "scp");
    json_object_del(c, "email");
    json_object_set_new(c, "sub", json_string("app-123"));
    json_object_set_new(c, "roles", json_pack("[s,s]", "Other", "SMTP.SendAsApp"));
}
static void m_app_email(json_t *c)
{
    json_object_del(c, "scp");
    json_object_set_new(c, "roles", json_pack("[s]", "SMTP.SendAsApp"));
}
static void m_app_no_sub(json_t *c)
{
    m_app(c);
    json_object_del(c, "sub");
}
static void m_role_other(json_t *c)
{
    json_object_del(c, "scp");
    json_object_set_new(c, "roles", json_pack("[s,s]", "Mail.Read", "api://x/SMTP.SendAsApp"));
}
static void m_upn(json_t *c)
{
    json_object_del(c, "email");
    json_object_set_new(c, "upn", json_string("bob@example.com"));
}
static void m_preferred(json_t *c)
{
    json_object_del(c, "email");
    json_object_set_new(c, "preferred_username", json_string("carol@example.com"));
}
static void m_all_ids(json_t *c)
{
    json_object_set_new(c, "upn", json_string("bob@example.com"));
    json_object_set_new(c, "preferred_username", json_string("carol@example.com"));
}
static void m_no_identity(json_t *c)
{
    json_object_del(c, "email");
}
static void m_identity_long(json_t *c)
{
    char a[400];
    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    json_object_set_new(c, "email", json_string(a));
}
static void m_identity_ctl(json_t *c)
{
    json_object_set_new(c, "email", json_string("alice@example.com\r\nX: y"));
}

enum { K_RSA, K_EC, K_ED, K_EVIL };

static const struct tcase {
    const char *name, *alg;
    int key;
    const char *kid;
    void (*mutate)(json_t *);
    int64_t now_off;
    const char *identity_claim;
    enum jwt_error want;
    const char *want_identity;
    bool app_only;
} cases[] = {
    {"RS256 valid", "RS256", K_RSA, "rsa1", m_none, 0, NULL, JWT_OK, "alice@example.com", 0},
    {"ES256 valid", "ES256", K_EC, "ec1", m_none, 0, NULL, JWT_OK, "alice@example.com", 0},
    {"EdDSA valid", "EdDSA", K_ED, "ed1", m_none, 0, NULL, JWT_OK, "alice@example.com", 0},
    {"Ed25519 alg name", "Ed25519", K_ED, "ed1", m_none, 0, NULL, JWT_OK, NULL, 0},
    {"no kid, one fitting RSA key", "RS256", K_RSA, NULL, m_none, 0, NULL, JWT_OK, NULL, 0},
    {"no kid, one fitting EC key", "ES256", K_EC, NULL, m_none, 0, NULL, JWT_OK, NULL, 0},
    {"expired", "EdDSA", K_ED, "ed1", m_none, 600 + 61, NULL, JWT_EXPIRED, NULL, 0},
    {"expired within skew", "EdDSA", K_ED, "ed1", m_none, 600 + 60, NULL, JWT_OK, NULL, 0},
    {"exp missing", "EdDSA", K_ED, "ed1", m_no_exp, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"exp a string", "EdDSA", K_ED, "ed1", m_exp_string, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"exp fractional", "EdDSA", K_ED, "ed1", m_exp_real, 600 + 60, NULL, JWT_OK, NULL, 0},
    {"exp fractional, past", "EdDSA", K_ED, "ed1", m_exp_real, 600 + 61, NULL, JWT_EXPIRED, NULL,
     0},
    {"not yet valid", "EdDSA", K_ED, "ed1", m_nbf_61, 0, NULL, JWT_NOT_YET_VALID, NULL, 0},
    {"nbf within skew", "EdDSA", K_ED, "ed1", m_nbf_60, 0, NULL, JWT_OK, NULL, 0},
    {"nbf and iat optional", "EdDSA", K_ED, "ed1", m_no_nbf_iat, 0, NULL, JWT_OK, NULL, 0},
    {"iat ill-typed", "EdDSA", K_ED, "ed1", m_iat_string, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"wrong issuer", "EdDSA", K_ED, "ed1", m_iss_wrong, 0, NULL, JWT_WRONG_ISSUER, NULL, 0},
    {"issuer missing", "EdDSA", K_ED, "ed1", m_iss_missing, 0, NULL, JWT_WRONG_ISSUER, NULL, 0},
    {"issuer a number", "EdDSA", K_ED, "ed1", m_iss_number, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"wrong audience", "EdDSA", K_ED, "ed1", m_aud_wrong, 0, NULL, JWT_WRONG_AUDIENCE, NULL, 0},
    {"audience missing", "EdDSA", K_ED, "ed1", m_aud_missing, 0, NULL, JWT_WRONG_AUDIENCE, NULL, 0},
    {"audience array with it", "ES256", K_EC, "ec1", m_aud_array, 0, NULL, JWT_OK, NULL, 0},
    {"audience array without it", "EdDSA", K_ED, "ed1", m_aud_array_not, 0, NULL,
     JWT_WRONG_AUDIENCE, NULL, 0},
    {"audience array ill-typed", "EdDSA", K_ED, "ed1", m_aud_array_bad, 0, NULL, JWT_MALFORMED,
     NULL, 0},
    {"scope missing", "EdDSA", K_ED, "ed1", m_no_scope, 0, NULL, JWT_NO_SCOPE, NULL, 0},
    {"scp list", "EdDSA", K_ED, "ed1", m_scp_list, 0, NULL, JWT_OK, NULL, 0},
    {"scope string", "EdDSA", K_ED, "ed1", m_scope_string, 0, NULL, JWT_OK, NULL, 0},
    {"scope array", "EdDSA", K_ED, "ed1", m_scope_array, 0, NULL, JWT_OK, NULL, 0},
    {"scp Entra URL", "RS256", K_RSA, "rsa1", m_scp_url, 0, NULL, JWT_OK, NULL, 0},
    {"scp near misses", "EdDSA", K_ED, "ed1", m_scp_near, 0, NULL, JWT_NO_SCOPE, NULL, 0},
    {"scp a number", "EdDSA", K_ED, "ed1", m_scp_number, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"app role, identity from sub", "RS256", K_RSA, "rsa1", m_app, 0, NULL, JWT_OK, "app-123", 1},
    {"app role with email", "EdDSA", K_ED, "ed1", m_app_email, 0, NULL, JWT_OK, "alice@example.com",
     1},
    {"app role, no sub", "EdDSA", K_ED, "ed1", m_app_no_sub, 0, NULL, JWT_NO_IDENTITY, NULL, 1},
    {"other role only", "EdDSA", K_ED, "ed1", m_role_other, 0, NULL, JWT_NO_SCOPE, NULL, 0},
    {"identity upn", "EdDSA", K_ED, "ed1", m_upn, 0, NULL, JWT_OK, "bob@example.com", 0},
    {"identity preferred_username", "EdDSA", K_ED, "ed1", m_preferred, 0, NULL, JWT_OK,
     "carol@example.com", 0},
    {"email before upn", "EdDSA", K_ED, "ed1", m_all_ids, 0, NULL, JWT_OK, "alice@example.com", 0},
    {"configured upn", "EdDSA", K_ED, "ed1", m_all_ids, 0, "upn", JWT_OK, "bob@example.com", 0},
    {"configured preferred_username", "EdDSA", K_ED, "ed1", m_all_ids, 0, "preferred_username",
     JWT_OK, "carol@example.com", 0},
    {"configured upn missing", "EdDSA", K_ED, "ed1", m_none, 0, "upn", JWT_NO_IDENTITY, NULL, 0},
    {"configured any", "EdDSA", K_ED, "ed1", m_upn, 0, "any", JWT_OK, "bob@example.com", 0},
    {"no identity", "EdDSA", K_ED, "ed1", m_no_identity, 0, NULL, JWT_NO_IDENTITY, NULL, 0},
    {"identity too long", "EdDSA", K_ED, "ed1", m_identity_long, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"identity with CRLF", "EdDSA", K_ED, "ed1", m_identity_ctl, 0, NULL, JWT_MALFORMED, NULL, 0},
    {"unknown kid", "EdDSA", K_ED, "ed9", m_none, 0, NULL, JWT_UNKNOWN_KID, NULL, 0},
    {"RS256 header, EC key", "RS256", K_EC, "ec1", m_none, 0, NULL, JWT_KEY_MISMATCH, NULL, 0},
    {"ES256 header, RSA key", "ES256", K_RSA, "rsa1", m_none, 0, NULL, JWT_KEY_MISMATCH, NULL, 0},
    {"EdDSA header, RSA key", "EdDSA", K_ED, "rsa1", m_none, 0, NULL, JWT_KEY_MISMATCH, NULL, 0},
    {"ES256 header, Ed25519 key", "ES256", K_ED, "ed1", m_none, 0, NULL, JWT_KEY_MISMATCH, NULL, 0},
    {"foreign key, our kid", "EdDSA", K_EVIL, "ed1", m_none, 0, NULL, JWT_BAD_SIGNATURE, NULL, 0},
    {"foreign key, no kid", "EdDSA", K_EVIL, NULL, m_none, 0, NULL, JWT_BAD_SIGNATURE, NULL, 0},
    {"RS256 signed by EC, no kid", "RS256", K_EC, NULL, m_none, 0, NULL, JWT_BAD_SIGNATURE, NULL,
     0},
};

static EVP_PKEY *key_of(int k)
{
    return k == K_RSA ? rsa : k == K_EC ? ec : k == K_ED ? ed : evil;
}

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *t = &cases[i];
        json_t *h = json_pack("{s:s, s:s}", "alg", t->alg, "typ", "JWT");
        if (t->kid)
            json_object_set_new(h, "kid", json_string(t->kid));
        json_t *c = claims_base();
        t->mutate(c);
        char *hs = dump(h), *cs = dump(c);
        char *tok = t_token(hs, cs, key_of(t->key));
        struct jwt_expect x = expect_base();
        x.now = NOW + t->now_off;
        x.identity_claim = t->identity_claim;
        enum jwt_error got = verify_with(tok, &x);
        bool ok = got == t->want;
        if (ok && got == JWT_OK)
            ok = out.app_only == t->app_only &&
                 (!t->want_identity || strcmp(out.identity, t->want_identity) == 0);
        if (!ok) {
            print_error("case \"%s\": got %s (identity \"%s\", app_only %d), want %s\n", t->name,
                        jwt_error_name(got), out.identity, out.app_only, jwt_error_name(t->want));
            failures++;
        }
        free(hs);
        free(cs);
        free(tok);
    }
    assert_int_equal(failures, 0);
}

/* --- algorithms --- */

static void test_alg_rejected(void **state)
{
    (void)state;
    char *cs = dump(claims_base());
    const char *names[] = {"none",  "None",  "NONE",  "HS256", "HS384",  "HS512",
                           "RS384", "RS512", "PS256", "ES384", "ES256K", "Ed448"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"ed1\"}", names[i]);
        char *tok = t_token(h, cs, NULL);
        assert_int_equal(verify(tok), JWT_ALG_REJECTED);
        enum jwt_alg alg = JWT_ALG_EDDSA;
        char kid[JWT_KID_MAX + 1];
        assert_int_equal(jwt_peek(tok, strlen(tok), &alg, kid), JWT_ALG_REJECTED);
        assert_int_equal(alg, JWT_ALG_NONE);
        assert_string_equal(kid, "ed1");
        free(tok);
    }
    /* alg "none" with a real signature appended changes nothing */
    char *tok = t_token("{\"alg\":\"none\"}", cs, ed);
    assert_int_equal(verify(tok), JWT_ALG_REJECTED);
    free(tok);
    free(cs);
}

/* The classic confusion: HS256 with the verifier's public key as the HMAC secret. */
static void test_hmac_confusion(void **state)
{
    (void)state;
    char *cs = dump(claims_base());
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, rsa), 1);
    char *pem;
    long pemlen = BIO_get_mem_data(b, &pem);
    const char *hdrs[] = {"{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", "{\"alg\":\"HS256\"}"};
    for (size_t i = 0; i < 2; i++) {
        char *h64 = t_b64(hdrs[i], strlen(hdrs[i])), *p64 = t_b64(cs, strlen(cs));
        char input[JWT_MAX_LEN];
        snprintf(input, sizeof input, "%s.%s", h64, p64);
        uint8_t mac[32];
        size_t maclen = 0;
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, (size_t)pemlen,
                                  (const uint8_t *)input, strlen(input), mac, sizeof mac, &maclen));
        char *tok = t_join(h64, p64, mac, maclen);
        assert_int_equal(verify(tok), JWT_ALG_REJECTED);
        free(tok);
        free(h64);
        free(p64);
    }
    BIO_free(b);
    free(cs);
}

/* A key that names its own alg is used for that alg only, whatever its type would allow. */
static void test_jwk_alg_mismatch(void **state)
{
    (void)state;
    struct jwks odd = {.n = 1};
    strcpy(odd.keys[0].kid, "x");
    odd.keys[0].alg = JWT_ALG_ES256;
    odd.keys[0].pkey = rsa;
    char *cs = dump(claims_base());
    char *tok = t_token("{\"alg\":\"RS256\",\"kid\":\"x\"}", cs, rsa);
    struct jwt_expect x = expect_base();
    assert_int_equal(jwt_verify(tok, strlen(tok), &odd, &x, &out), JWT_KEY_MISMATCH);
    free(tok);
    /* without a kid, no key fits */
    tok = t_token("{\"alg\":\"RS256\"}", cs, rsa);
    assert_int_equal(jwt_verify(tok, strlen(tok), &odd, &x, &out), JWT_UNKNOWN_KID);
    free(tok);
    /* an empty set knows no kid */
    struct jwks none = {.n = 0};
    tok = t_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", cs, ed);
    assert_int_equal(jwt_verify(tok, strlen(tok), &none, &x, &out), JWT_UNKNOWN_KID);
    assert_int_equal(jwt_verify(tok, strlen(tok), NULL, &x, &out), JWT_UNKNOWN_KID);
    free(tok);
    free(cs);
}

/* Keys named by the token itself are never fetched nor trusted. */
static void test_token_supplied_keys_ignored(void **state)
{
    (void)state;
    char *doc = jwks_export_public(evil, "evil");
    json_t *root = json_loads(doc, 0, NULL);
    json_t *jwk = json_array_get(json_object_get(root, "keys"), 0);
    char thumb[JWT_KID_MAX + 1];
    assert_int_equal(jwk_thumbprint(evil, thumb), 0);
    char *cs = dump(claims_base());
    const char *kids[] = {"ed1", NULL, thumb};
    const enum jwt_error want[] = {JWT_BAD_SIGNATURE, JWT_BAD_SIGNATURE, JWT_UNKNOWN_KID};
    for (size_t i = 0; i < 3; i++) {
        json_t *h = json_pack("{s:s, s:O, s:s, s:s, s:[s]}", "alg", "EdDSA", "jwk", jwk, "jku",
                              "https://127.0.0.1/evil.json", "x5u", "https://127.0.0.1/evil.pem",
                              "x5c", "MIIB");
        if (kids[i])
            json_object_set_new(h, "kid", json_string(kids[i]));
        char *hs = dump(h);
        char *tok = t_token(hs, cs, evil);
        assert_int_equal(verify(tok), want[i]);
        free(tok);
        free(hs);
    }
    json_decref(root);
    free(cs);
    free(doc);
}

/* --- structure --- */

static char *good_token(EVP_PKEY *k, const char *kid)
{
    char *cs = dump(claims_base());
    char *tok = jwt_sign(k, kid, cs);
    free(cs);
    assert_non_null(tok);
    return tok;
}

static void test_structure(void **state)
{
    (void)state;
    char *tok = good_token(ed, "ed1");
    size_t len = strlen(tok);
    assert_int_equal(verify(tok), JWT_OK);
    assert_int_equal(jwt_verify("", 0, &set, NULL, &out), JWT_MALFORMED);
    const char *junk[] = {"abc", "abc.def", "a.b.c.d", "..", "...", ".e30.", "e30..", "e30.e30"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert_int_equal(verify(junk[i]), JWT_MALFORMED);
    /* every truncation fails; some specific ones say why */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(jwt_verify(tok, cut, &set, NULL, &out), JWT_OK);
    const char *dot2 = strrchr(tok, '.');
    assert_int_equal(jwt_verify(tok, (size_t)(dot2 - tok), &set, NULL, &out), JWT_MALFORMED);
    struct jwt_expect x = expect_base();
    assert_int_equal(jwt_verify(tok, (size_t)(dot2 - tok) + 1, &set, &x, &out), JWT_BAD_SIGNATURE);
    assert_int_equal(jwt_verify(tok, len - 2, &set, &x, &out), JWT_BAD_SIGNATURE);
    /* three dots */
    char buf[JWT_MAX_LEN + 16];
    snprintf(buf, sizeof buf, "%s.", tok);
    assert_int_equal(verify(buf), JWT_MALFORMED);
    /* characters outside the base64url alphabet, anywhere */
    const char bad[] = {'+', '/', '=', ' ', '\n', '\0', '\xc3'};
    size_t where[] = {3, (size_t)(strchr(tok, '.') - tok) + 5, len - 5};
    for (size_t w = 0; w < 3; w++)
        for (size_t i = 0; i < sizeof bad; i++) {
            memcpy(buf, tok, len + 1);
            buf[where[w]] = bad[i];
            assert_int_equal(jwt_verify(buf, len, &set, &x, &out), JWT_MALFORMED);
        }
    /* padding after the signature (86 characters: "==" would complete it) */
    snprintf(buf, sizeof buf, "%s==", tok);
    assert_int_equal(verify(buf), JWT_MALFORMED);
    /* non-canonical trailing bits in the signature */
    memcpy(buf, tok, len + 1);
    buf[len - 1] = buf[len - 1] == 'A' ? 'B' : buf[len - 1] == 'Q' ? 'R' : buf[len - 1] + 1;
    assert_int_equal(verify(buf), JWT_MALFORMED);
    free(tok);

    /* padding in a header that is otherwise correctly signed */
    char *cs = dump(claims_base());
    const char *h = "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"} "; /* 28 octets: 38 characters */
    char *h64 = t_b64(h, strlen(h)), *p64 = t_b64(cs, strlen(cs));
    assert_int_equal(strlen(h64) % 4, 2);
    char input[JWT_MAX_LEN];
    snprintf(input, sizeof input, "%s==.%s", h64, p64);
    uint8_t sig[64];
    t_sign_raw(ed, input, sig, false);
    char *s64 = t_b64(sig, 64);
    snprintf(buf, sizeof buf, "%s.%s", input, s64);
    assert_int_equal(verify(buf), JWT_MALFORMED);
    /* the same header without padding is fine */
    tok = t_token(h, cs, ed);
    assert_int_equal(verify(tok), JWT_OK);
    free(tok);
    free(s64);
    free(h64);
    free(p64);

    /* hostile or broken headers, each correctly signed */
    const struct {
        const char *h;
        enum jwt_error want;
    } hdrs[] = {
        {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"crit\":[\"exp\"],\"exp\":1}", JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"crit\":[]}", JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"b64\":false,\"crit\":[\"b64\"]}", JWT_MALFORMED},
        {"{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", JWT_MALFORMED},
        {"{\"kid\":\"ed1\"}", JWT_MALFORMED},
        {"{\"alg\":7,\"kid\":\"ed1\"}", JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"kid\":7}", JWT_MALFORMED},
        {"[\"EdDSA\"]", JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\"", JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}x", JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"typ\":\"at+jwt\",\"cty\":\"x\"}", JWT_OK},
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        tok = t_token(hdrs[i].h, cs, ed);
        if (verify(tok) != hdrs[i].want)
            fail_msg("header %s: got %s", hdrs[i].h, jwt_error_name(verify(tok)));
        free(tok);
    }
    char longkid[JWT_KID_MAX + 40];
    snprintf(longkid, sizeof longkid, "{\"alg\":\"EdDSA\",\"kid\":\"%0*d\"}", JWT_KID_MAX + 1, 0);
    tok = t_token(longkid, cs, ed);
    assert_int_equal(verify(tok), JWT_MALFORMED);
    free(tok);
    /* payloads that are not one JSON object */
    const char *payloads[] = {"[1,2]", "\"x\"", "", "{\"exp\":1,\"exp\":2}", "{\"a\":1} {}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        tok = t_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", payloads[i], ed);
        assert_int_equal(verify(tok), JWT_MALFORMED);
        free(tok);
    }
    free(cs);
}

static void test_oversized(void **state)
{
    (void)state;
    char pad[JWT_MAX_LEN];
    size_t last_ok = 0;
    bool saw_over = false;
    for (size_t n = 5800; n < 6300 && !saw_over; n++) {
        json_t *c = claims_base();
        memset(pad, 'p', n);
        pad[n] = '\0';
        json_object_set_new(c, "pad", json_string(pad));
        char *cs = dump(c);
        char *tok = t_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", cs, ed);
        size_t len = strlen(tok);
        if (len <= JWT_MAX_LEN) {
            assert_int_equal(verify(tok), JWT_OK);
            last_ok = len;
        } else {
            assert_int_equal(verify(tok), JWT_OVERSIZED);
            enum jwt_alg alg;
            char kid[JWT_KID_MAX + 1];
            assert_int_equal(jwt_peek(tok, len, &alg, kid), JWT_OVERSIZED);
            saw_over = true;
        }
        free(tok);
        free(cs);
    }
    assert_true(saw_over);
    assert_true(last_ok > JWT_MAX_LEN - 4);
    /* size is checked before anything else: garbage that is too long is "oversized" */
    static char junk[JWT_MAX_LEN + 2];
    memset(junk, '!', sizeof junk - 1);
    assert_int_equal(verify(junk), JWT_OVERSIZED);
}

/* A changed bit in any of the three parts breaks the signature, for every algorithm. */
static void test_bit_flips(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa, ec, ed};
    const char *kids[] = {"rsa1", "ec1", "ed1"};
    for (size_t k = 0; k < 3; k++) {
        char *cs = dump(claims_base());
        char h[80];
        const char *algs[] = {"RS256", "ES256", "EdDSA"};
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", algs[k], kids[k]);
        char *tok = t_token(h, cs, keys[k]);
        assert_int_equal(verify(tok), JWT_OK);
        char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
        char *p64 = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
        uint8_t sig[1024];
        size_t siglen = t_unb64(d2 + 1, strlen(d2 + 1), sig);

        /* header: "JWT" -> "JWS", payload: one letter of the address, both re-encoded */
        char h2[80];
        snprintf(h2, sizeof h2, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWS\"}", algs[k],
                 kids[k]);
        char *h264 = t_b64(h2, strlen(h2));
        char *t2 = t_join(h264, p64, sig, siglen);
        assert_int_equal(verify(t2), JWT_BAD_SIGNATURE);
        free(t2);
        char *c2 = strdup(cs);
        *strstr(c2, "alice") = 'b';
        char *c264 = t_b64(c2, strlen(c2));
        char *h64 = strndup(tok, (size_t)(d1 - tok));
        t2 = t_join(h64, c264, sig, siglen);
        assert_int_equal(verify(t2), JWT_BAD_SIGNATURE);
        free(t2);
        /* signature: first, middle and last bit */
        size_t bits[] = {0, siglen * 4 + 3, siglen * 8 - 1};
        for (size_t b = 0; b < 3; b++) {
            sig[bits[b] / 8] ^= (uint8_t)(1u << (bits[b] % 8));
            t2 = t_join(h64, p64, sig, siglen);
            assert_int_equal(verify(t2), JWT_BAD_SIGNATURE);
            free(t2);
            sig[bits[b] / 8] ^= (uint8_t)(1u << (bits[b] % 8));
        }
        /* one octet short or long */
        t2 = t_join(h64, p64, sig, siglen - 1);
        assert_int_equal(verify(t2), JWT_BAD_SIGNATURE);
        free(t2);
        sig[siglen] = 0;
        t2 = t_join(h64, p64, sig, siglen + 1);
        assert_int_equal(verify(t2), JWT_BAD_SIGNATURE);
        free(t2);
        /* the unmodified parts still verify (the test changed nothing else) */
        t2 = t_join(h64, p64, sig, siglen);
        assert_int_equal(verify(t2), JWT_OK);
        free(t2);
        free(h64);
        free(c264);
        free(c2);
        free(h264);
        free(p64);
        free(tok);
        free(cs);
    }
}

/* ES256 signatures are R||S (RFC 7518 3.4); a DER signature, as some libraries wrongly send, is
 * refused. */
static void test_es256_der_refused(void **state)
{
    (void)state;
    char *cs = dump(claims_base());
    const char *h = "{\"alg\":\"ES256\",\"kid\":\"ec1\"}";
    char *h64 = t_b64(h, strlen(h)), *p64 = t_b64(cs, strlen(cs));
    char input[JWT_MAX_LEN];
    snprintf(input, sizeof input, "%s.%s", h64, p64);
    uint8_t sig[128];
    size_t n = t_sign_raw(ec, input, sig, true);
    assert_int_not_equal(n, 64);
    char *tok = t_join(h64, p64, sig, n);
    assert_int_equal(verify(tok), JWT_BAD_SIGNATURE);
    free(tok);
    free(h64);
    free(p64);
    free(cs);
}

/* --- what is reported --- */

static void test_claims_reported_on_failure(void **state)
{
    (void)state;
    json_t *c = claims_base();
    m_aud_wrong(c);
    char *cs = dump(c);
    char *tok = t_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", cs, ed);
    assert_int_equal(verify(tok), JWT_WRONG_AUDIENCE);
    assert_int_equal(out.alg, JWT_ALG_EDDSA);
    assert_string_equal(out.kid, "ed1");
    assert_string_equal(out.iss, ISS);
    assert_string_equal(out.sub, "u-1");
    assert_string_equal(out.identity, "alice@example.com");
    assert_int_equal(out.exp, NOW + 600);
    assert_int_equal(out.nbf, NOW - 10);
    assert_int_equal(out.iat, NOW - 10);
    free(tok);
    /* even an unverified token's claims are readable for the log, with controls masked */
    json_t *c2 = claims_base();
    json_object_set_new(c2, "sub", json_string("a\nb"));
    char *cs2 = dump(c2);
    tok = t_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", cs2, evil);
    assert_int_equal(verify(tok), JWT_BAD_SIGNATURE);
    assert_string_equal(out.iss, ISS);
    assert_string_equal(out.sub, "a?b");
    free(tok);
    /* and a success fills everything */
    tok = good_token(ec, "ec1");
    assert_int_equal(verify(tok), JWT_OK);
    assert_int_equal(out.alg, JWT_ALG_ES256);
    assert_string_equal(out.kid, "ec1");
    assert_false(out.app_only);
    free(tok);
    free(cs);
    free(cs2);
}

static void test_expect_settings(void **state)
{
    (void)state;
    char *tok = good_token(ed, "ed1");
    struct jwt_expect x = expect_base();
    x.skew = 3600; /* clamped to JWT_SKEW_MAX */
    x.now = NOW + 600 + JWT_SKEW_MAX + 1;
    assert_int_equal(verify_with(tok, &x), JWT_EXPIRED);
    x.skew = -5; /* clamped to 0 */
    x.now = NOW + 601;
    assert_int_equal(verify_with(tok, &x), JWT_EXPIRED);
    x.now = NOW + 600;
    assert_int_equal(verify_with(tok, &x), JWT_OK);
    x = expect_base();
    x.issuer = NULL;
    assert_int_equal(verify_with(tok, &x), JWT_WRONG_ISSUER);
    x = expect_base();
    x.audience = "";
    assert_int_equal(verify_with(tok, &x), JWT_WRONG_AUDIENCE);
    x = expect_base();
    x.scope = "Mail.Submit";
    assert_int_equal(verify_with(tok, &x), JWT_NO_SCOPE);
    free(tok);
    json_t *c = claims_base();
    json_object_set_new(c, "scp", json_string("Mail.Submit"));
    json_object_set_new(c, "roles", json_pack("[s]", "Mailer"));
    char *cs = dump(c);
    tok = jwt_sign(ed, "ed1", cs);
    assert_int_equal(verify_with(tok, &x), JWT_OK);
    assert_false(out.app_only);
    x.scope = "Other";
    x.app_role = "Mailer";
    assert_int_equal(verify_with(tok, &x), JWT_OK);
    assert_true(out.app_only);
    assert_int_equal(verify_with(tok, NULL), JWT_WRONG_ISSUER);
    free(tok);
    free(cs);
}

/* --- signing and peeking --- */

static void test_sign_each_alg(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa, ec, ed};
    const char *kids[] = {"rsa1", "ec1", "ed1"};
    const enum jwt_alg algs[] = {JWT_ALG_RS256, JWT_ALG_ES256, JWT_ALG_EDDSA};
    const size_t sig64[] = {342, 86, 86};
    for (size_t k = 0; k < 3; k++) {
        char *tok = good_token(keys[k], kids[k]);
        enum jwt_alg alg;
        char kid[JWT_KID_MAX + 1];
        assert_int_equal(jwt_peek(tok, strlen(tok), &alg, kid), JWT_OK);
        assert_int_equal(alg, algs[k]);
        assert_string_equal(kid, kids[k]);
        assert_int_equal(strlen(strrchr(tok, '.') + 1), sig64[k]);
        assert_int_equal(verify(tok), JWT_OK);
        /* the header is what RFC 7515 expects: alg, typ, kid */
        uint8_t hb[256];
        size_t hn = t_unb64(tok, (size_t)(strchr(tok, '.') - tok), hb);
        json_t *h = json_loadb((const char *)hb, hn, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(h, "alg")), jwt_alg_name(algs[k]));
        assert_string_equal(json_string_value(json_object_get(h, "kid")), kids[k]);
        json_decref(h);
        /* the independent verifier in this file accepts ES256 as R||S; EdDSA is deterministic,
         * so our signer and this file's must agree bit for bit */
        if (keys[k] != rsa) {
            char *dot = strrchr(tok, '.');
            *dot = '\0';
            uint8_t mine[64], theirs[128];
            size_t n = t_unb64(dot + 1, strlen(dot + 1), theirs);
            assert_int_equal(n, 64);
            if (keys[k] == ed) {
                t_sign_raw(ed, tok, mine, false);
                assert_memory_equal(mine, theirs, 64);
            } else {
                ECDSA_SIG *es = ECDSA_SIG_new();
                ECDSA_SIG_set0(es, BN_bin2bn(theirs, 32, NULL), BN_bin2bn(theirs + 32, 32, NULL));
                uint8_t *der = NULL;
                int dn = i2d_ECDSA_SIG(es, &der);
                EVP_MD_CTX *ctx = EVP_MD_CTX_new();
                assert_int_equal(EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, ec, NULL),
                                 1);
                assert_int_equal(
                    EVP_DigestVerify(ctx, der, (size_t)dn, (uint8_t *)tok, strlen(tok)), 1);
                EVP_MD_CTX_free(ctx);
                OPENSSL_free(der);
                ECDSA_SIG_free(es);
            }
        }
        free(tok);
    }
    /* no kid: none in the header, and the set's only fitting key is used */
    char *cs = dump(claims_base());
    char *tok = jwt_sign(ec, NULL, cs);
    enum jwt_alg alg;
    char kid[JWT_KID_MAX + 1];
    assert_int_equal(jwt_peek(tok, strlen(tok), &alg, kid), JWT_OK);
    assert_string_equal(kid, "");
    assert_int_equal(verify(tok), JWT_OK);
    free(tok);
    /* what cannot be signed */
    assert_null(jwt_sign(ed, "ed1", "[1]"));
    assert_null(jwt_sign(ed, "ed1", "{\"a\":1,\"a\":2}"));
    assert_null(jwt_sign(ed, "ed1", NULL));
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_null(jwt_sign(p384, "k", cs));
    EVP_PKEY_free(p384);
    free(cs);
}

/* --- published examples --- */

/* RFC 7515 A.3: the ES256 example verifies (it then fails on the audience it does not have). */
static void test_rfc7515_es256(void **state)
{
    (void)state;
    const char *jwks = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                       "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                       "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
    char tok[] = "eyJhbGciOiJFUzI1NiJ9."
                 "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc1"
                 "9yb290Ijp0cnVlfQ."
                 "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
                 "Kg6NU1Q";
    struct jwks s;
    char err[128];
    assert_int_equal(jwks_parse(jwks, strlen(jwks), &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0].kid, "");
    assert_int_equal(s.keys[0].alg, JWT_ALG_ES256);
    struct jwt_expect x = {.issuer = "joe", .audience = "x", .now = 1300819000, .skew = 60};
    assert_int_equal(jwt_verify(tok, strlen(tok), &s, &x, &out), JWT_WRONG_AUDIENCE);
    assert_int_equal(out.exp, 1300819380);
    x.now = 1300819380 + 61;
    assert_int_equal(jwt_verify(tok, strlen(tok), &s, &x, &out), JWT_EXPIRED);
    tok[strlen(tok) - 10] = tok[strlen(tok) - 10] == 'A' ? 'B' : 'A';
    assert_int_equal(jwt_verify(tok, strlen(tok), &s, &x, &out), JWT_BAD_SIGNATURE);
    jwks_free(&s);
}

/* RFC 8037 A: the Ed25519 key's thumbprint, and the A.4 signature reproduced. */
static void test_rfc8037_ed25519(void **state)
{
    (void)state;
    uint8_t d[32], x[32];
    assert_int_equal(t_unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", 43, d), 32);
    assert_int_equal(t_unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", 43, x), 32);
    EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, 32);
    assert_non_null(priv);
    const char *input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    uint8_t sig[64];
    t_sign_raw(priv, input, sig, false);
    char *s64 = t_b64(sig, 64);
    assert_string_equal(s64, "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5Bh"
                             "VsPt9g7sVvpAr_MuM0KAg");
    free(s64);
    char kid[JWT_KID_MAX + 1];
    assert_int_equal(jwk_thumbprint(priv, kid), 0);
    assert_string_equal(kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    const char *jwks = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                       "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
    struct jwks s;
    char err[128];
    assert_int_equal(jwks_parse(jwks, strlen(jwks), &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(jwk_thumbprint(s.keys[0].pkey, kid), 0);
    assert_string_equal(kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    /* a token from jwt_sign with this key verifies against the published public key */
    char *cs = dump(claims_base());
    char *tok = jwt_sign(priv, NULL, cs);
    struct jwt_expect e = expect_base();
    assert_int_equal(jwt_verify(tok, strlen(tok), &s, &e, &out), JWT_OK);
    free(tok);
    free(cs);
    jwks_free(&s);
    EVP_PKEY_free(priv);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < JWT_ERROR_COUNT; i++) {
        assert_non_null(jwt_error_name((enum jwt_error)i));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(jwt_error_name((enum jwt_error)i),
                                    jwt_error_name((enum jwt_error)j));
    }
    assert_string_equal(jwt_error_name(JWT_OK), "ok");
    assert_string_equal(jwt_error_name(JWT_KEY_MISMATCH), "key-mismatch");
    assert_string_equal(jwt_error_name(JWT_NO_IDENTITY), "no-identity");
    assert_string_equal(jwt_error_name(JWT_ERROR_COUNT), "unknown");
    assert_string_equal(jwt_alg_name(JWT_ALG_RS256), "RS256");
    assert_string_equal(jwt_alg_name(JWT_ALG_ES256), "ES256");
    assert_string_equal(jwt_alg_name(JWT_ALG_EDDSA), "EdDSA");
    assert_string_equal(jwt_alg_name(JWT_ALG_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_alg_rejected),
        cmocka_unit_test(test_hmac_confusion),
        cmocka_unit_test(test_jwk_alg_mismatch),
        cmocka_unit_test(test_token_supplied_keys_ignored),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_es256_der_refused),
        cmocka_unit_test(test_claims_reported_on_failure),
        cmocka_unit_test(test_expect_settings),
        cmocka_unit_test(test_sign_each_alg),
        cmocka_unit_test(test_rfc7515_es256),
        cmocka_unit_test(test_rfc8037_ed25519),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
