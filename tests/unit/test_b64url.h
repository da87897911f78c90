/* test_b64url.h: base64url (RFC 4648 5, no padding) for the JWT/JWKS tests, built on OpenSSL's
 * plain base64 and independent of src/jwt.c, so that the tests do not check jwt.c against
 * itself. Include after <cmocka.h>. */
#ifndef SUBMITD_TEST_B64URL_H
#define SUBMITD_TEST_B64URL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jwt.h"

/* A malloc'd base64url encoding of in. */
static char *t_b64(const void *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 8);
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* Decodes n base64url characters into out; returns the octets written. */
static size_t t_unb64(const char *in, size_t n, uint8_t *out)
{
    char buf[JWT_MAX_LEN + 4];
    uint8_t tmp[JWT_MAX_LEN];
    assert_true(n + 4 < sizeof buf);
    memcpy(buf, in, n);
    size_t pad = (4 - n % 4) % 4;
    for (size_t i = 0; i < n; i++)
        buf[i] = buf[i] == '-' ? '+' : buf[i] == '_' ? '/' : buf[i];
    memset(buf + n, '=', pad);
    int len = EVP_DecodeBlock(tmp, (unsigned char *)buf, (int)(n + pad));
    assert_true(len >= 0);
    memcpy(out, tmp, (size_t)len - pad);
    return (size_t)len - pad;
}

#endif
