/* fuzz_jwt.c: libFuzzer target for JWT parsing and verification (src/jwt.c, src/jwk.c) against
 * a fixed JWK Set (an Ed25519, an EC P-256 and an RSA-2048 public key, parsed once with
 * jwks_parse from the constant below). Two modes, chosen by the first octet's bit 0:
 * 0: the rest is a compact token: jwt_peek, then jwt_verify (bits 1-2 pick the identity claim).
 *    Seeds are tokens validly signed by the three keys, so mutations reach every check.
 * 1: the rest is a claims JSON text, signed with the fixed Ed25519 key (bit 1: without kid), then
 *    verified: this reaches the claim checks behind the signature. A token we signed ourselves
 *    must never fail on size, algorithm, key or signature (abort() if it does).
 * Invariants everywhere: results are valid enum values; out strings are NUL-terminated.
 * RFC 7515, RFC 7519, RFC 7518 3.3-3.4, RFC 8037. The keys are test keys made for this target
 * (the Ed25519 seed is below; the EC and RSA private keys were discarded after signing the
 * seeds). */
#include <string.h>

#include <openssl/evp.h>

#include "fuzz_util.h"
#include "jwt.h"

static const char jwks_json[] =
    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"ONJxLfMxnox0ZIdS_"
    "Z0FgedNS4Gqf7XiHWOIKq2EnSY\","
    "\"use\":\"sig\",\"alg\":\"EdDSA\",\"kid\":\"ed1\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
    "\"woJ899-D8T5YT-Q857"
    "AK4HmhgR99Q_whBdtr9ne79gs\",\"y\":\"ZsYAyVLcw4EpIrqEQNIx8BjWn1fGk39uBr6BWX8pJkw\",\"use\":"
    "\"sig\""
    ",\"alg\":\"ES256\",\"kid\":\"ec1\"},{\"kty\":\"RSA\",\"n\":"
    "\"iPmjtToxOWhHTXKVlm0bgmCudYe7UQruAFc0M9eWH-"
    "ahNpiC-EyiVQd7LnjGL9rxTudy7a7zK0VWCJKY7THMuHyBNIokbxE8ZFd6U1AloZolfPs1ZXhfExkgt25MbybPv4"
    "PwtFgBqtQKuqdayGH1hM70HBJpHIpg_ouI9zwP8JeayKn1tG-JK9nBF4egPbaqAVwQ-hhVC6u_7_IsE__WguLV4E"
    "HeNcgk1LRLdJt-FuwclOcxThpLgjPsxlr6NbE4fKo6OAFx83LLCASovnWmEwEI_pflrJCKPd9yfGz9BSmK77f4-6"
    "DeZ2feiv1CNU6HCvKafP10mY587vNe6IbDQw\",\"e\":\"AQAB\",\"use\":\"sig\",\"alg\":\"RS256\","
    "\"kid\":\"rsa1\"}"
    "]}";

/* The private half of kid "ed1": a fixed, public test seed. */
static const unsigned char ed_seed[32] = {
    0x73, 0x75, 0x62, 0x6d, 0x69, 0x74, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x65, 0x64, 0x32,
    0x35, 0x35, 0x31, 0x39, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x6e, 0x6f, 0x74, 0x2d, 0x73, 0x65, 0x63};

static struct jwks keys;
static EVP_PKEY *ed_key;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    if (jwks_parse(jwks_json, strlen(jwks_json), &keys, err, sizeof err) != 0 || keys.n != 3) {
        fprintf(stderr, "fuzz_jwt: the fixed JWKS does not parse: %s\n", err);
        abort();
    }
    ed_key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, ed_seed, sizeof ed_seed);
    if (ed_key == NULL)
        abort();
    return 0;
}

static void check_claims(enum jwt_error e, const struct jwt_claims *c)
{
    FUZZ_CHECK(e >= JWT_OK && e < JWT_ERROR_COUNT);
    FUZZ_CHECK(strcmp(jwt_error_name(e), "") != 0);
    FUZZ_CHECK(c->alg == JWT_ALG_NONE || c->alg == JWT_ALG_RS256 || c->alg == JWT_ALG_ES256 ||
               c->alg == JWT_ALG_EDDSA);
    FUZZ_CHECK(memchr(c->kid, '\0', sizeof c->kid) != NULL);
    FUZZ_CHECK(memchr(c->iss, '\0', sizeof c->iss) != NULL);
    FUZZ_CHECK(memchr(c->sub, '\0', sizeof c->sub) != NULL);
    FUZZ_CHECK(memchr(c->identity, '\0', sizeof c->identity) != NULL);
    if (e == JWT_OK)
        FUZZ_CHECK(c->identity[0] != '\0' && c->alg != JWT_ALG_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const identity[4] = {NULL, "email", "upn", "preferred_username"};
    struct jwt_expect x = {
        .issuer = "https://login.example/tenant/v2.0",
        .audience = "https://outlook.office.com",
        .scope = NULL,
        .app_role = NULL,
        .identity_claim = identity[(data[0] >> 1) & 3],
        .now = 1700000000,
        .skew = 30,
    };
    struct jwt_claims c;
    if ((data[0] & 1) == 0) {
        const char *token = (const char *)data + 1;
        size_t len = size - 1;
        enum jwt_alg alg = JWT_ALG_NONE;
        char kid[JWT_KID_MAX + 1];
        memset(kid, 0xa5, sizeof kid);
        enum jwt_error e = jwt_peek(token, len, &alg, kid);
        FUZZ_CHECK(e >= JWT_OK && e < JWT_ERROR_COUNT);
        if (e == JWT_OK)
            FUZZ_CHECK(memchr(kid, '\0', sizeof kid) != NULL);
        e = jwt_verify(token, len, &keys, &x, &c);
        check_claims(e, &c);
        return 0;
    }
    char *claims = fuzz_strndup(data + 1, size - 1);
    char *token = jwt_sign(ed_key, (data[0] & 2) ? NULL : "ed1", claims);
    free(claims);
    if (token == NULL)
        return 0; /* not a JSON object, or too long to be a token */
    enum jwt_error e = jwt_verify(token, strlen(token), &keys, &x, &c);
    check_claims(e, &c);
    FUZZ_CHECK(e != JWT_OVERSIZED && e != JWT_ALG_REJECTED && e != JWT_UNKNOWN_KID &&
               e != JWT_KEY_MISMATCH && e != JWT_BAD_SIGNATURE);
    FUZZ_CHECK(c.alg == JWT_ALG_EDDSA);
    free(token);
    return 0;
}
