/* test_sasl.c: mechanism names, the PLAIN decoder (RFC 4616), and the PLAIN and LOGIN exchanges
 * with and without an initial response (RFC 4954 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

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

static void test_oauth_and_none_not_yet(void **state)
{
    (void)state;
    const uint8_t *ch = NULL;
    size_t chlen = 0;
    enum sasl_mech mechs[] = {SASL_MECH_XOAUTH2, SASL_MECH_OAUTHBEARER, SASL_MECH_NONE};
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
        sasl_begin(&x, mechs[i]);
        assert_int_equal(x.mech, mechs[i]);
        assert_int_equal(sasl_step(&x,
                                   MSG("user=a\x01"
                                       "auth=Bearer t\x01\x01"),
                                   &ch, &chlen),
                         SASL_MALFORMED);
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
        cmocka_unit_test(test_oauth_and_none_not_yet),
        cmocka_unit_test(test_begin_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
