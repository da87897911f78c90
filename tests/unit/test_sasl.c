/* test_sasl.c: mechanism names, the PLAIN decoder (RFC 4616), the PLAIN and LOGIN exchanges
 * with and without an initial response (RFC 4954 4), the XOAUTH2 and OAUTHBEARER (RFC 7628)
 * decoders and exchanges against tables of good and malformed messages, and the RFC 7628 3.2.2
 * JSON error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sasl.h"

#define MSG(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void test_mech_names(void **state)
{
    (void)state;
    assert_int_equal(sasl_mech_from_name("PLAIN", 5), SASL_MECH_PLAIN);
    assert_int_equal(sasl_mech_from_name("plain", 5), SASL_MECH_PLAIN);
    assert_int_equal(sasl_mech_from_name("Login", 5), SASL_MECH_LOGIN);
    assert_int_equal(sasl_mech_from_name("XOAUTH2", 7), SASL_MECH_XOAUTH2);
    assert_int_equal(sasl_mech_from_name("xoauth2", 7), SASL_MECH_XOAUTH2);
    assert_int_equal(sasl_mech_from_name("OAUTHBEARER", 11), SASL_MECH_OAUTHBEARER);
    assert_int_equal(sasl_mech_from_name("oauthbearer", 11), SASL_MECH_OAUTHBEARER);
    /* lengths are exact: prefixes, extensions and embedded NULs do not match */
    assert_int_equal(sasl_mech_from_name("PLAIN", 4), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("PLAINX", 6), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("PLAIN\0", 6), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("", 0), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("NONE", 4), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("CRAM-MD5", 8), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("XOAUTH", 6), SASL_MECH_NONE);
    assert_int_equal(sasl_mech_from_name("PL\xc1IN", 5), SASL_MECH_NONE);

    for (int m = SASL_MECH_NONE + 1; m < SASL_MECH_COUNT; m++) {
        const char *name = sasl_mech_name((enum sasl_mech)m);
        assert_int_equal(sasl_mech_from_name(name, strlen(name)), m);
    }
    assert_string_equal(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
    assert_string_equal(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
    assert_string_equal(sasl_mech_name(SASL_MECH_XOAUTH2), "XOAUTH2");
    assert_string_equal(sasl_mech_name(SASL_MECH_OAUTHBEARER), "OAUTHBEARER");
    assert_string_equal(sasl_mech_name(SASL_MECH_COUNT), "NONE");

    assert_true(sasl_mech_is_basic(SASL_MECH_PLAIN));
    assert_true(sasl_mech_is_basic(SASL_MECH_LOGIN));
    assert_false(sasl_mech_is_basic(SASL_MECH_XOAUTH2));
    assert_false(sasl_mech_is_basic(SASL_MECH_OAUTHBEARER));
    assert_false(sasl_mech_is_basic(SASL_MECH_NONE));
}

static struct sasl_credentials cred;

static void test_plain_decode_valid(void **state)
{
    (void)state;
    assert_true(sasl_plain_decode(MSG("\0user@x.example\0secret"), &cred));
    assert_string_equal(cred.authzid, "");
    assert_string_equal(cred.authcid, "user@x.example");
    assert_int_equal(cred.secret_len, 6);
    assert_memory_equal(cred.secret, "secret", 6);

    assert_true(sasl_plain_decode(MSG("boss@x.example\0user@x.example\0p"), &cred));
    assert_string_equal(cred.authzid, "boss@x.example");
    assert_string_equal(cred.authcid, "user@x.example");
    assert_int_equal(cred.secret_len, 1);

    /* UTF-8 identities; any password octets but NUL */
    assert_true(sasl_plain_decode(MSG("\0j\xc3\xb6rg@x.example\0\xff\x01 pw"), &cred));
    assert_string_equal(cred.authcid, "j\xc3\xb6rg@x.example");
    assert_int_equal(cred.secret_len, 5);
    assert_memory_equal(cred.secret, "\xff\x01 pw", 5);
}

static void test_plain_decode_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        size_t len;
    } bad[] = {
#define B(lit) {lit, sizeof(lit) - 1}
        B(""),                     /* nothing */
        B("user\0pass"),           /* one NUL */
        B("userpass"),             /* no NUL */
        B("\0\0pass"),             /* empty authcid */
        B("\0user\0"),             /* empty password */
        B("a\0user\0pa\0ss"),      /* three NULs */
        B("\0user\0pass\0"),       /* trailing NUL */
        B("\0\0"),                 /* all empty */
        B("\0u\xc3\0pass"),        /* truncated UTF-8 in authcid */
        B("\xc0\xaf\0user\0pass"), /* overlong UTF-8 in authzid */
        B("\0\xed\xa0\x80\0pass"), /* surrogate in authcid */
#undef B
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&cred, 0x55, sizeof cred);
        assert_false(sasl_plain_decode((const uint8_t *)bad[i].msg, bad[i].len, &cred));
        /* nothing left behind on failure */
        assert_int_equal(cred.secret_len, 0);
        assert_int_equal(cred.secret[0], 0);
        assert_int_equal(cred.authcid[0], 0);
    }
}

static void test_plain_decode_lengths(void **state)
{
    (void)state;
    static uint8_t msg[2 * SASL_ID_MAX + SASL_RESPONSE_MAX + 8];
    /* authcid of exactly SASL_ID_MAX octets: accepted; one more: refused */
    for (size_t n = SASL_ID_MAX; n <= SASL_ID_MAX + 1; n++) {
        size_t len = 0;
        msg[len++] = 0;
        memset(msg + len, 'u', n);
        len += n;
        msg[len++] = 0;
        msg[len++] = 'p';
        assert_int_equal(sasl_plain_decode(msg, len, &cred), n == SASL_ID_MAX);
        if (n == SASL_ID_MAX)
            assert_int_equal(strlen(cred.authcid), SASL_ID_MAX);
    }
    /* same for authzid */
    for (size_t n = SASL_ID_MAX; n <= SASL_ID_MAX + 1; n++) {
        size_t len = 0;
        memset(msg, 'z', n);
        len += n;
        memcpy(msg + len, "\0u\0p", 4);
        len += 4;
        assert_int_equal(sasl_plain_decode(msg, len, &cred), n == SASL_ID_MAX);
    }
    /* long passwords are fine (no 255 limit) up to the secret buffer */
    for (size_t n = 255; n <= SASL_RESPONSE_MAX + 1; n += SASL_RESPONSE_MAX - 255) {
        memcpy(msg, "\0u\0", 3);
        memset(msg + 3, 'p', n);
        assert_int_equal(sasl_plain_decode(msg, 3 + n, &cred), n <= SASL_RESPONSE_MAX);
        if (n <= SASL_RESPONSE_MAX)
            assert_int_equal(cred.secret_len, n);
    }
    memcpy(msg, "\0u\0", 3);
    memset(msg + 3, 'p', SASL_RESPONSE_MAX + 1);
    assert_false(sasl_plain_decode(msg, 3 + SASL_RESPONSE_MAX + 1, &cred));
}

static struct sasl_exchange x;

static void test_plain_with_initial_response(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 99;
    sasl_begin(&x, SASL_MECH_PLAIN);
    assert_int_equal(sasl_step(&x, MSG("\0me@x.example\0pw"), &ch, &chlen), SASL_DONE);
    assert_string_equal(x.cred.authcid, "me@x.example");
    assert_int_equal(x.cred.secret_len, 2);
    /* nothing more is accepted */
    assert_int_equal(sasl_step(&x, MSG("\0me@x.example\0pw"), &ch, &chlen), SASL_MALFORMED);
    sasl_wipe(&x);
    assert_int_equal(x.cred.secret_len, 0);
    assert_int_equal(x.cred.secret[0], 0);
    assert_string_equal(x.cred.authcid, "");
}

static void test_plain_without_initial_response(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 99;
    sasl_begin(&x, SASL_MECH_PLAIN);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(chlen, 0); /* "334 " */
    assert_non_null(ch);
    assert_int_equal(sasl_step(&x, MSG("authz\0me\0pw"), &ch, &chlen), SASL_DONE);
    assert_string_equal(x.cred.authzid, "authz");
    assert_string_equal(x.cred.authcid, "me");

    /* a second NULL is not a response */
    sasl_begin(&x, SASL_MECH_PLAIN);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_MALFORMED);

    /* an empty initial response ("=") is a malformed PLAIN message */
    sasl_begin(&x, SASL_MECH_PLAIN);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_MALFORMED);

    /* a malformed message wipes what was there and ends the exchange */
    sasl_begin(&x, SASL_MECH_PLAIN);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, MSG("\0me\0"), &ch, &chlen), SASL_MALFORMED);
    assert_int_equal(x.cred.secret_len, 0);
    assert_int_equal(sasl_step(&x, MSG("\0me\0pw"), &ch, &chlen), SASL_MALFORMED);
}

static void test_login_without_initial_response(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 0;
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(chlen, 9);
    assert_memory_equal(ch, "Username:", 9);
    assert_int_equal(sasl_step(&x, MSG("me@x.example"), &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(chlen, 9);
    assert_memory_equal(ch, "Password:", 9);
    assert_int_equal(sasl_step(&x, MSG("s3cret"), &ch, &chlen), SASL_DONE);
    assert_string_equal(x.cred.authcid, "me@x.example");
    assert_string_equal(x.cred.authzid, "");
    assert_int_equal(x.cred.secret_len, 6);
    assert_memory_equal(x.cred.secret, "s3cret", 6);
    assert_int_equal(sasl_step(&x, MSG("more"), &ch, &chlen), SASL_MALFORMED);
}

static void test_login_with_initial_response(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 0;
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("me@x.example"), &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(chlen, 9);
    assert_memory_equal(ch, "Password:", 9);
    assert_int_equal(sasl_step(&x, MSG("pw"), &ch, &chlen), SASL_DONE);
    assert_string_equal(x.cred.authcid, "me@x.example");
    assert_int_equal(x.cred.secret_len, 2);
}

static void test_login_invalid(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 0;
    /* empty user name, as initial response ("=") or later */
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_MALFORMED);
    /* NULL where a response is due */
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("u"), &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_MALFORMED);
    /* empty password, password with NUL */
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("u"), &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_MALFORMED);
    assert_string_equal(x.cred.authcid, ""); /* wiped */
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("u"), &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, MSG("p\0w"), &ch, &chlen), SASL_MALFORMED);
    /* user names: NUL, bad UTF-8, too long */
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("u\0v"), &ch, &chlen), SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("\xe0\x80\x80"), &ch, &chlen), SASL_MALFORMED);
    static uint8_t longname[SASL_ID_MAX + 1];
    memset(longname, 'u', sizeof longname);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, longname, SASL_ID_MAX + 1, &ch, &chlen), SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, longname, SASL_ID_MAX, &ch, &chlen), SASL_CONTINUE);
    /* a password up to the whole buffer; one more octet is refused */
    static uint8_t longpw[SASL_RESPONSE_MAX + 1];
    memset(longpw, 'p', sizeof longpw);
    assert_int_equal(sasl_step(&x, longpw, SASL_RESPONSE_MAX + 1, &ch, &chlen), SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(sasl_step(&x, MSG("u"), &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, longpw, SASL_RESPONSE_MAX, &ch, &chlen), SASL_DONE);
    assert_int_equal(x.cred.secret_len, SASL_RESPONSE_MAX);
}

static void test_none_mechanism(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 0;
    sasl_begin(&x, SASL_MECH_NONE);
    assert_int_equal(sasl_step(&x,
                               MSG("user=a\x01"
                                   "auth=Bearer t\x01\x01"),
                               &ch, &chlen),
                     SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_NONE);
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_MALFORMED);
}

/* XOAUTH2 and OAUTHBEARER. Literals are split after "\x01" so that a following hex digit is not
 * taken into the escape. */

struct good_case {
    const char *msg;
    size_t len;
    const char *user;
    const char *token;
};

struct bad_case {
    const char *msg;
    size_t len;
    const char *why;
};

#define G(lit, user, token)                                                                        \
    {                                                                                              \
        lit, sizeof(lit) - 1, user, token                                                          \
    }
#define B(lit, why)                                                                                \
    {                                                                                              \
        lit, sizeof(lit) - 1, why                                                                  \
    }

static const struct good_case xoauth2_good[] = {
    /* the format of the reference (Microsoft's documentation; Google's is the same) */
    G("user=someuser@example.com\x01"
      "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01",
      "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
    G("user=test@contoso.onmicrosoft.com\x01"
      "auth=Bearer EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA\x01\x01",
      "test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"),
    /* a JWT, as Entra ID and submitd's own issuer mint them */
    G("user=me@x.example\x01"
      "auth=Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2ln-_~+/==\x01\x01",
      "me@x.example", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2ln-_~+/=="),
    /* the scheme is case-insensitive; RFC 6750's 1*SP */
    G("user=a@b\x01"
      "auth=bearer t\x01\x01",
      "a@b", "t"),
    G("user=a@b\x01"
      "auth=BEARER t\x01\x01",
      "a@b", "t"),
    G("user=a@b\x01"
      "auth=Bearer   t\x01\x01",
      "a@b", "t"),
    /* order is free; unknown keys are ignored */
    G("auth=Bearer tok\x01user=a@b\x01\x01", "a@b", "tok"),
    G("user=a@b\x01host=mail.example\x01"
      "auth=Bearer tok\x01port=587\x01\x01",
      "a@b", "tok"),
    /* a UTF-8 mailbox */
    G("user=j\xc3\xb6rg@x.example\x01"
      "auth=Bearer tok\x01\x01",
      "j\xc3\xb6rg@x.example", "tok"),
};

static const struct bad_case xoauth2_bad[] = {
    B("", "empty"),
    B("\x01", "only the final separator"),
    B("\x01\x01", "no pairs"),
    B("user=a@b\x01"
      "auth=Bearer tok\x01",
      "missing final ^A"),
    B("user=a@b\x01"
      "auth=Bearer tok",
      "missing both ^A"),
    B("user=a@b\x01"
      "auth=Bearer tok\x01\x01\x01",
      "extra ^A"),
    B("user=a@b\x01"
      "auth=Bearer tok\x01\x01x",
      "data after the end"),
    B("user=a@b\x01\x01", "missing auth"),
    B("auth=Bearer tok\x01\x01", "missing user"),
    B("user=a@b\x01"
      "auth=Basic dTpw\x01\x01",
      "wrong scheme"),
    B("user=a@b\x01"
      "auth=Bearer a\x01"
      "auth=Bearer b\x01\x01",
      "two auth keys"),
    B("user=a@b\x01user=c@d\x01"
      "auth=Bearer tok\x01\x01",
      "two user keys"),
    B("user=a@b\x01"
      "auth=Bearer \x01\x01",
      "empty token"),
    B("user=a@b\x01"
      "auth=Bearer\x01\x01",
      "no token"),
    B("user=a@b\x01"
      "auth=Bearertok\x01\x01",
      "no space after the scheme"),
    B("user=a@b\x01"
      "auth=Bearer tok en\x01\x01",
      "space inside the token"),
    B("user=a@b\x01"
      "auth=Bearer tok \x01\x01",
      "trailing space"),
    B("user=a@b\x01"
      "auth=Bearer to=k\x01\x01",
      "'=' inside the token"),
    B("user=a@b\x01"
      "auth=Bearer =\x01\x01",
      "only padding"),
    B("user=a@b\x01"
      "auth=Bearer t@k\x01\x01",
      "'@' in the token"),
    B("user=a@b\x01"
      "auth=Bearer t\xc3\xa9\x01\x01",
      "non-ASCII in the token"),
    B("user=a@b\x01"
      "auth=\tBearer tok\x01\x01",
      "junk before the scheme"),
    B("user=\x01"
      "auth=Bearer tok\x01\x01",
      "empty user"),
    B("user=a\xc3@b\x01"
      "auth=Bearer tok\x01\x01",
      "truncated UTF-8 user"),
    B("user=a\0b\x01"
      "auth=Bearer tok\x01\x01",
      "NUL in the user"),
    B("user=a\tb\x01"
      "auth=Bearer tok\x01\x01",
      "control character in the user"),
    B("User=a@b\x01"
      "auth=Bearer tok\x01\x01",
      "keys are case-sensitive"),
    B("user=a@b\x01"
      "auth=Bearer tok\x01"
      "x1=y\x01\x01",
      "digit in a key"),
    B("user=a@b\x01=y\x01"
      "auth=Bearer tok\x01\x01",
      "empty key"),
    B("user=a@b\x01junk\x01"
      "auth=Bearer tok\x01\x01",
      "pair without '='"),
    B("user=a@b\x01host=a\x02\x01"
      "auth=Bearer tok\x01\x01",
      "control character in another value"),
    B("n,a=a@b,\x01"
      "auth=Bearer tok\x01\x01",
      "an OAUTHBEARER message"),
};

static const struct good_case oauthbearer_good[] = {
    /* RFC 7628 3.1 as in the reference, and curl's test-suite message */
    G("n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
      "auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01",
      "user@example.com", "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="),
    G("n,a=user@example.com,\x01host=127.0.0.1\x01port=587\x01"
      "auth=Bearer mF_9.B5f-4.1JqM\x01\x01",
      "user@example.com", "mF_9.B5f-4.1JqM"),
    /* auth alone; "y" flag; lower-case scheme; auth before host */
    G("n,a=a@b,\x01"
      "auth=Bearer t\x01\x01",
      "a@b", "t"),
    G("y,a=a@b,\x01"
      "auth=Bearer t\x01\x01",
      "a@b", "t"),
    G("n,a=a@b,\x01"
      "auth=bEaReR t~+/=\x01\x01",
      "a@b", "t~+/="),
    G("n,a=a@b,\x01"
      "auth=Bearer t\x01host=h\x01\x01",
      "a@b", "t"),
    /* escapes in the saslname (RFC 5801 4) */
    G("n,a=odd=2Cname=3Dx@b,\x01"
      "auth=Bearer t\x01\x01",
      "odd,name=x@b", "t"),
    G("n,a==3D=2C,\x01"
      "auth=Bearer t\x01\x01",
      "=,", "t"),
    /* values may hold VCHAR, SP, HTAB, CR, LF; unknown keys are ignored; user is UTF-8 */
    G("n,a=j\xc3\xb6rg@x.example,\x01"
      "foo=a b\tc\r\n~!\x01"
      "auth=Bearer t\x01\x01",
      "j\xc3\xb6rg@x.example", "t"),
    G("n,a=a@b,\x01host=\x01"
      "auth=Bearer t\x01\x01",
      "a@b", "t"),
};

static const struct bad_case oauthbearer_bad[] = {
    B("", "empty"),
    B("\x01", "the reply to an error challenge is not a first message"),
    B("n,a=user@example.com,\x01host=127.0.0.1\x01port=587\x01"
      "auth=Bearer mF_9.B5f-4.1JqM\x01",
      "missing final ^A"),
    B("n,a=a@b,\x01"
      "auth=Bearer t\x01\x01\x01",
      "extra ^A"),
    B("n,a=a@b,\x01"
      "auth=Bearer t\x01\x01 ",
      "data after the end"),
    B("n,a=a@b,\x01host=h\x01\x01", "missing auth"),
    B("n,a=a@b,\x01\x01", "no pairs at all"),
    B("n,a=a@b,\x01"
      "auth=Basic dTpw\x01\x01",
      "wrong scheme"),
    B("n,a=a@b,\x01"
      "auth=Bearer t\x01"
      "auth=Bearer t\x01\x01",
      "two auth keys"),
    B("n,a=a@b,\x01"
      "AUTH=Bearer t\x01\x01",
      "keys are case-sensitive"),
    B("n,a=a@b,\x01"
      "auth=Bearer \x01\x01",
      "empty token"),
    B("n,a=a@b,\x01"
      "auth=Bearer t!k\x01\x01",
      "'!' in the token"),
    B("n,a=a@b,\x01"
      "auth=Bearer t=k\x01\x01",
      "'=' inside the token"),
    B("n,a=a@b,\x01"
      "auth=Bearer t,k\x01\x01",
      "',' in the token"),
    B("n,a=a=2c@b,\x01"
      "auth=Bearer t\x01\x01",
      "lower-case escape"),
    B("n,a=a=41@b,\x01"
      "auth=Bearer t\x01\x01",
      "escape of another character"),
    B("n,a=a=@b,\x01"
      "auth=Bearer t\x01\x01",
      "bare '='"),
    B("n,a=a=2,\x01"
      "auth=Bearer t\x01\x01",
      "truncated escape"),
    B("n,a=a=", "'=' ending the message"),
    B("n,a=a=2", "escape cut by the end of the message"),
    B("n,a=a=2C", "name cut by the end of the message"),
    B("n,a=a@b=,\x01"
      "auth=Bearer t\x01\x01",
      "'=' at the end of the name"),
    B("p=tls-unique,a=a@b,\x01"
      "auth=Bearer t\x01\x01",
      "channel binding"),
    B("x,a=a@b,\x01"
      "auth=Bearer t\x01\x01",
      "unknown GS2 flag"),
    B("n,,\x01"
      "auth=Bearer t\x01\x01",
      "missing a="),
    B("n,a=,\x01"
      "auth=Bearer t\x01\x01",
      "empty a="),
    B("n,a=a@b\x01"
      "auth=Bearer t\x01\x01",
      "GS2 header without its closing ','"),
    B("n,a=a@b,"
      "auth=Bearer t\x01\x01",
      "no ^A after the GS2 header"),
    B("n,a=a@b,xauth=Bearer t\x01\x01", "a pair where the ^A after the GS2 header belongs"),
    B("a=a@b,\x01"
      "auth=Bearer t\x01\x01",
      "no GS2 flag"),
    B("n,A=a@b,\x01"
      "auth=Bearer t\x01\x01",
      "upper-case A="),
    B("n,a=a\xff@b,\x01"
      "auth=Bearer t\x01\x01",
      "non-UTF-8 user"),
    B("n,a=a\x7f@b,\x01"
      "auth=Bearer t\x01\x01",
      "DEL in the user"),
    B("n,a=a@b,\x01host=h\x02\x01"
      "auth=Bearer t\x01\x01",
      "control character in a value"),
    B("n,a=a@b,\x01host=h\xc3\xa9\x01"
      "auth=Bearer t\x01\x01",
      "non-ASCII in a value"),
    B("n,a=a@b,\x01host=h\0\x01"
      "auth=Bearer t\x01\x01",
      "NUL in a value"),
    B("n,a=a@b,\x01h0st=h\x01"
      "auth=Bearer t\x01\x01",
      "digit in a key"),
    B("n,a=a@b,\x01host\x01"
      "auth=Bearer t\x01\x01",
      "pair without '='"),
    B("user=a@b\x01"
      "auth=Bearer t\x01\x01",
      "an XOAUTH2 message"),
};

#undef G
#undef B

static void check_good(enum sasl_mech mech, const struct good_case *g, size_t n)
{
    bool (*decode)(const uint8_t *, size_t, struct sasl_credentials *) =
        mech == SASL_MECH_XOAUTH2 ? sasl_xoauth2_decode : sasl_oauthbearer_decode;
    for (size_t i = 0; i < n; i++) {
        print_message("good %s case %zu\n", sasl_mech_name(mech), i);
        size_t tlen = strlen(g[i].token);
        /* the pure decoder */
        memset(&cred, 0x55, sizeof cred);
        assert_true(decode((const uint8_t *)g[i].msg, g[i].len, &cred));
        assert_string_equal(cred.authcid, g[i].user);
        assert_string_equal(cred.authzid, "");
        assert_int_equal(cred.secret_len, tlen);
        assert_memory_equal(cred.secret, g[i].token, tlen);
        assert_int_equal(cred.secret[tlen], 0);

        /* as an initial response: done in one step */
        const uint8_t *ch = NULL;
        size_t chlen = 99;
        sasl_begin(&x, mech);
        assert_int_equal(sasl_step(&x, (const uint8_t *)g[i].msg, g[i].len, &ch, &chlen),
                         SASL_DONE);
        assert_string_equal(x.cred.authcid, g[i].user);
        assert_int_equal(x.cred.secret_len, tlen);
        assert_memory_equal(x.cred.secret, g[i].token, tlen);

        /* after an empty challenge */
        sasl_begin(&x, mech);
        assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
        assert_int_equal(chlen, 0);
        assert_non_null(ch);
        assert_int_equal(sasl_step(&x, (const uint8_t *)g[i].msg, g[i].len, &ch, &chlen),
                         SASL_DONE);
        assert_string_equal(x.cred.authcid, g[i].user);
        assert_memory_equal(x.cred.secret, g[i].token, tlen);
        /* the exchange is one message: nothing more is accepted, and a refusal wipes */
        assert_int_equal(sasl_step(&x, (const uint8_t *)g[i].msg, g[i].len, &ch, &chlen),
                         SASL_MALFORMED);
        assert_int_equal(x.cred.secret_len, 0);
        assert_string_equal(x.cred.authcid, "");
    }
}

static void check_bad(enum sasl_mech mech, const struct bad_case *b, size_t n)
{
    bool (*decode)(const uint8_t *, size_t, struct sasl_credentials *) =
        mech == SASL_MECH_XOAUTH2 ? sasl_xoauth2_decode : sasl_oauthbearer_decode;
    for (size_t i = 0; i < n; i++) {
        print_message("bad %s case %zu: %s\n", sasl_mech_name(mech), i, b[i].why);
        memset(&cred, 0x55, sizeof cred);
        /* from a buffer of exactly the message's size, so a sanitizer sees any overread */
        uint8_t *copy = malloc(b[i].len > 0 ? b[i].len : 1);
        assert_non_null(copy);
        memcpy(copy, b[i].msg, b[i].len);
        bool ok = decode(copy, b[i].len, &cred);
        free(copy);
        assert_false(ok);
        /* nothing left behind */
        assert_int_equal(cred.secret_len, 0);
        assert_int_equal(cred.secret[0], 0);
        assert_int_equal(cred.authcid[0], 0);

        const uint8_t *ch = NULL;
        size_t chlen = 0;
        sasl_begin(&x, mech);
        assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
        assert_int_equal(sasl_step(&x, (const uint8_t *)b[i].msg, b[i].len, &ch, &chlen),
                         SASL_MALFORMED);
        assert_int_equal(x.cred.secret_len, 0);
        assert_int_equal(x.cred.authcid[0], 0);
        /* an empty initial response is XOAUTH2's "no initial response" (below) */
        if (b[i].len == 0 && mech == SASL_MECH_XOAUTH2)
            continue;
        sasl_begin(&x, mech);
        assert_int_equal(sasl_step(&x, (const uint8_t *)b[i].msg, b[i].len, &ch, &chlen),
                         SASL_MALFORMED);
    }
}

static void test_xoauth2_good(void **state)
{
    (void)state;
    check_good(SASL_MECH_XOAUTH2, xoauth2_good, sizeof xoauth2_good / sizeof xoauth2_good[0]);
}

static void test_xoauth2_bad(void **state)
{
    (void)state;
    check_bad(SASL_MECH_XOAUTH2, xoauth2_bad, sizeof xoauth2_bad / sizeof xoauth2_bad[0]);
}

static void test_oauthbearer_good(void **state)
{
    (void)state;
    check_good(SASL_MECH_OAUTHBEARER, oauthbearer_good,
               sizeof oauthbearer_good / sizeof oauthbearer_good[0]);
}

static void test_oauthbearer_bad(void **state)
{
    (void)state;
    check_bad(SASL_MECH_OAUTHBEARER, oauthbearer_bad,
              sizeof oauthbearer_bad / sizeof oauthbearer_bad[0]);
}

static void test_oauth_exchange_steps(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 99;
    /* XOAUTH2: an empty initial response ("=") asks for the empty challenge, once */
    sasl_begin(&x, SASL_MECH_XOAUTH2);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(chlen, 0);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_MALFORMED);
    sasl_begin(&x, SASL_MECH_XOAUTH2);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x,
                               MSG("user=a@b\x01"
                                   "auth=Bearer t\x01\x01"),
                               &ch, &chlen),
                     SASL_DONE);
    /* OAUTHBEARER: an empty message is malformed (RFC 7628 3.1 has no empty client-resp) */
    sasl_begin(&x, SASL_MECH_OAUTHBEARER);
    assert_int_equal(sasl_step(&x, (const uint8_t *)"", 0, &ch, &chlen), SASL_MALFORMED);
    /* a second NULL is not a response, for either */
    enum sasl_mech mechs[] = {SASL_MECH_XOAUTH2, SASL_MECH_OAUTHBEARER};
    for (size_t i = 0; i < 2; i++) {
        sasl_begin(&x, mechs[i]);
        assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
        assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_MALFORMED);
    }
    /* OAUTHBEARER after SASL_DONE: the client's ^A after an error challenge belongs to the
     * session, not to the mechanism */
    sasl_begin(&x, SASL_MECH_OAUTHBEARER);
    assert_int_equal(sasl_step(&x,
                               MSG("n,a=a@b,\x01"
                                   "auth=Bearer t\x01\x01"),
                               &ch, &chlen),
                     SASL_DONE);
    assert_int_equal(sasl_step(&x, MSG("\x01"), &ch, &chlen), SASL_MALFORMED);
    /* sasl_wipe erases the token and the user */
    sasl_begin(&x, SASL_MECH_XOAUTH2);
    assert_int_equal(sasl_step(&x,
                               MSG("user=a@b\x01"
                                   "auth=Bearer secrettoken\x01\x01"),
                               &ch, &chlen),
                     SASL_DONE);
    sasl_wipe(&x);
    assert_int_equal(x.cred.secret_len, 0);
    static const uint8_t zero[sizeof x.cred.secret];
    assert_memory_equal(x.cred.secret, zero, sizeof zero);
    assert_string_equal(x.cred.authcid, "");
}

/* Builds "user=" USER ^A "auth=Bearer " TOKEN ^A ^A (XOAUTH2) or the OAUTHBEARER equivalent with
 * a user of ulen 'u' octets and a token of tlen 't' octets. */
static size_t build_oauth(uint8_t *buf, enum sasl_mech mech, size_t ulen, size_t tlen)
{
    size_t n = 0;
    const char *pre = mech == SASL_MECH_XOAUTH2 ? "user=" : "n,a=";
    const char *mid = mech == SASL_MECH_XOAUTH2 ? "\x01" : ",\x01";
    memcpy(buf + n, pre, strlen(pre));
    n += strlen(pre);
    memset(buf + n, 'u', ulen);
    n += ulen;
    memcpy(buf + n, mid, strlen(mid));
    n += strlen(mid);
    memcpy(buf + n, "auth=Bearer ", 12);
    n += 12;
    memset(buf + n, 't', tlen);
    n += tlen;
    memcpy(buf + n, "\x01\x01", 2);
    return n + 2;
}

static void test_oauth_lengths(void **state)
{
    (void)state;
    static uint8_t msg[SASL_ID_MAX + SASL_RESPONSE_MAX + 64];
    enum sasl_mech mechs[] = {SASL_MECH_XOAUTH2, SASL_MECH_OAUTHBEARER};
    for (size_t i = 0; i < 2; i++) {
        bool (*decode)(const uint8_t *, size_t, struct sasl_credentials *) =
            mechs[i] == SASL_MECH_XOAUTH2 ? sasl_xoauth2_decode : sasl_oauthbearer_decode;
        /* user of SASL_ID_MAX octets: accepted; one more: malformed */
        assert_true(decode(msg, build_oauth(msg, mechs[i], SASL_ID_MAX, 8), &cred));
        assert_int_equal(strlen(cred.authcid), SASL_ID_MAX);
        assert_false(decode(msg, build_oauth(msg, mechs[i], SASL_ID_MAX + 1, 8), &cred));
        /* a token filling the secret buffer: accepted; one more octet: malformed */
        assert_true(decode(msg, build_oauth(msg, mechs[i], 3, SASL_RESPONSE_MAX), &cred));
        assert_int_equal(cred.secret_len, SASL_RESPONSE_MAX);
        assert_false(decode(msg, build_oauth(msg, mechs[i], 3, SASL_RESPONSE_MAX + 1), &cred));
        assert_int_equal(cred.secret_len, 0);
    }
    /* OAUTHBEARER: the limit is on the decoded name: SASL_ID_MAX octets written with escapes */
    size_t n = 0;
    memcpy(msg, "n,a=", 4);
    n = 4;
    for (size_t k = 0; k < SASL_ID_MAX; k++) {
        memcpy(msg + n, "=2C", 3);
        n += 3;
    }
    memcpy(msg + n,
           ",\x01"
           "auth=Bearer t\x01\x01",
           17);
    assert_true(sasl_oauthbearer_decode(msg, n + 17, &cred));
    assert_int_equal(strlen(cred.authcid), SASL_ID_MAX);
    assert_int_equal(cred.authcid[0], ',');
    /* a name far over the limit stops being copied */
    memset(msg, 'u', sizeof msg);
    memcpy(msg, "n,a=", 4);
    memcpy(msg + 4 + 4 * SASL_ID_MAX,
           ",\x01"
           "auth=Bearer t\x01\x01",
           17);
    assert_false(sasl_oauthbearer_decode(msg, 4 + 4 * SASL_ID_MAX + 17, &cred));
    assert_int_equal(cred.authcid[0], 0);
    /* rebuild the SASL_ID_MAX escaped commas and put one more escape in front */
    memcpy(msg, "n,a=", 4);
    for (size_t k = 0; k < SASL_ID_MAX; k++)
        memcpy(msg + 4 + 3 * k, "=2C", 3);
    memcpy(msg + n,
           ",\x01"
           "auth=Bearer t\x01\x01",
           17);
    assert_true(sasl_oauthbearer_decode(msg, n + 17, &cred));
    memmove(msg + 7, msg + 4, n + 17 - 4);
    memcpy(msg + 4, "=3D", 3);
    assert_false(sasl_oauthbearer_decode(msg, n + 20, &cred));
}

static void test_oauthbearer_error(void **state)
{
    (void)state;
    char out[512];
    size_t n = sasl_oauthbearer_error(out, sizeof out, "https://outlook.office.com/SMTP.Send",
                                      "https://login.example/.well-known/openid-configuration");
    static const char want[] = "{\"status\":\"invalid_token\","
                               "\"scope\":\"https://outlook.office.com/SMTP.Send\","
                               "\"openid-configuration\":"
                               "\"https://login.example/.well-known/openid-configuration\"}";
    assert_int_equal(n, sizeof want - 1);
    assert_string_equal(out, want);

    /* only what is given */
    n = sasl_oauthbearer_error(out, sizeof out, "SMTP.Send", NULL);
    assert_string_equal(out, "{\"status\":\"invalid_token\",\"scope\":\"SMTP.Send\"}");
    assert_int_equal(n, strlen(out));
    n = sasl_oauthbearer_error(out, sizeof out, NULL, NULL);
    assert_string_equal(out, "{\"status\":\"invalid_token\"}");
    n = sasl_oauthbearer_error(out, sizeof out, "", "");
    assert_string_equal(out, "{\"status\":\"invalid_token\"}");
    n = sasl_oauthbearer_error(out, sizeof out, NULL, "https://i/");
    assert_string_equal(out,
                        "{\"status\":\"invalid_token\",\"openid-configuration\":\"https://i/\"}");

    /* escaping: quotes, backslashes and control characters; UTF-8 passes through */
    const char *scope = "a\"b\\c\nd\x01 \xc3\xa9/";
    n = sasl_oauthbearer_error(out, sizeof out, scope, NULL);
    assert_string_equal(out, "{\"status\":\"invalid_token\",\"scope\":\"a\\\"b\\\\c\\u000ad\\u0001 "
                             "\xc3\xa9/\"}");
    /* ... and it parses back to the same values */
    json_error_t err;
    json_t *j = json_loadb(out, n, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "invalid_token");
    assert_string_equal(json_string_value(json_object_get(j, "scope")), scope);
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);

    /* not UTF-8: refused */
    assert_int_equal(sasl_oauthbearer_error(out, sizeof out, "a\xff", NULL), 0);
    assert_int_equal(sasl_oauthbearer_error(out, sizeof out, "a", "\xc3"), 0);

    /* it fits exactly with its NUL; every smaller buffer gets 0 and an empty string */
    size_t full = sasl_oauthbearer_error(out, sizeof out, scope, "u");
    assert_true(full > 0);
    char exact[128];
    assert_true(full + 1 <= sizeof exact);
    assert_int_equal(sasl_oauthbearer_error(exact, full + 1, scope, "u"), full);
    assert_string_equal(exact, out);
    for (size_t cap = 0; cap <= full; cap++) {
        memset(exact, 'X', sizeof exact);
        assert_int_equal(sasl_oauthbearer_error(exact, cap, scope, "u"), 0);
        if (cap > 0)
            assert_int_equal(exact[0], '\0');
        for (size_t k = cap; k < sizeof exact; k++)
            assert_int_equal(exact[k], 'X'); /* nothing written past cap */
    }
}

static void test_begin_resets(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 0;
    sasl_begin(&x, SASL_MECH_PLAIN);
    assert_int_equal(sasl_step(&x, MSG("\0me\0pw"), &ch, &chlen), SASL_DONE);
    sasl_begin(&x, SASL_MECH_LOGIN);
    assert_int_equal(x.step, 0);
    assert_int_equal(x.cred.secret_len, 0);
    assert_string_equal(x.cred.authcid, "");
    assert_int_equal(sasl_step(&x, NULL, 0, &ch, &chlen), SASL_CONTINUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mech_names),
        cmocka_unit_test(test_plain_decode_valid),
        cmocka_unit_test(test_plain_decode_invalid),
        cmocka_unit_test(test_plain_decode_lengths),
        cmocka_unit_test(test_plain_with_initial_response),
        cmocka_unit_test(test_plain_without_initial_response),
        cmocka_unit_test(test_login_without_initial_response),
        cmocka_unit_test(test_login_with_initial_response),
        cmocka_unit_test(test_login_invalid),
        cmocka_unit_test(test_none_mechanism),
        cmocka_unit_test(test_xoauth2_good),
        cmocka_unit_test(test_xoauth2_bad),
        cmocka_unit_test(test_oauthbearer_good),
        cmocka_unit_test(test_oauthbearer_bad),
        cmocka_unit_test(test_oauth_exchange_steps),
        cmocka_unit_test(test_oauth_lengths),
        cmocka_unit_test(test_oauthbearer_error),
        cmocka_unit_test(test_begin_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
