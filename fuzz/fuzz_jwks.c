/* fuzz_jwks.c: libFuzzer target for JWK Set parsing (src/jwk.c): jwks_parse of the input, then,
 * for every key it accepted, the public export and the RFC 7638 thumbprint, and a parse of the
 * exported document, which must give back one key of the same algorithm and kid (round trip).
 * Invariants (abort() on violation): 0 or -1; on 0 at most JWKS_MAX_KEYS keys, each with a public
 * key and a supported algorithm; on -1 an error message. RFC 7517, RFC 7518 6, RFC 8037, RFC 7638.
 */
#include <string.h>

#include "fuzz_util.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jwks set, back;
    char err[256];
    memset(err, 0xa5, sizeof err);
    int r = jwks_parse((const char *)data, size, &set, err, sizeof err);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(set.n <= JWKS_MAX_KEYS);
    for (size_t i = 0; i < set.n; i++) {
        const struct jwk *k = &set.keys[i];
        FUZZ_CHECK(k->pkey != NULL);
        FUZZ_CHECK(k->alg == JWT_ALG_RS256 || k->alg == JWT_ALG_ES256 || k->alg == JWT_ALG_EDDSA);
        FUZZ_CHECK(memchr(k->kid, '\0', sizeof k->kid) != NULL);
        char thumb[JWT_KID_MAX + 1];
        FUZZ_CHECK(jwk_thumbprint(k->pkey, thumb) == 0);
        char *doc = jwks_export_public(k->pkey, k->kid);
        FUZZ_CHECK(doc != NULL);
        FUZZ_CHECK(jwks_parse(doc, strlen(doc), &back, err, sizeof err) == 0);
        FUZZ_CHECK(back.n == 1 && strcmp(back.keys[0].kid, k->kid) == 0);
        /* the export names the key's own algorithm, which the JWK's "alg" may have narrowed */
        FUZZ_CHECK(back.keys[0].alg == k->alg);
        jwks_free(&back);
        free(doc);
    }
    jwks_free(&set);
    return 0;
}
