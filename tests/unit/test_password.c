/* test_password.c: password hashing and verification (password.c): round trip, wrong and empty
 * passwords, the dummy path for unknown users and malformed hashes (false, after the same
 * work), length limits, and rehash detection. Uses an 8 MiB memlimit to stay fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <sodium.h>

#include "password.h"

#define TEST_MEMLIMIT (8u * 1024 * 1024)

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static int group_setup(void **state)
{
    (void)state;
    return password_init(TEST_MEMLIMIT);
}

static void test_round_trip(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX + 1];
    assert_int_equal(password_hash(u8("correct horse"), 13, h), 0);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_true(password_verify(h, u8("correct horse"), 13));
    assert_false(password_verify(h, u8("correct horsE"), 13));
    assert_false(password_verify(h, u8("correct hors"), 12));
    assert_false(password_verify(h, u8(""), 0));
}

static void test_salted(void **state)
{
    (void)state;
    char a[PASSWORD_HASH_MAX + 1];
    char b[PASSWORD_HASH_MAX + 1];
    assert_int_equal(password_hash(u8("same"), 4, a), 0);
    assert_int_equal(password_hash(u8("same"), 4, b), 0);
    assert_string_not_equal(a, b);
    assert_true(password_verify(a, u8("same"), 4));
    assert_true(password_verify(b, u8("same"), 4));
}

static void test_binary_and_empty(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX + 1];
    const uint8_t pw[] = {'a', 0, 'b'};
    const uint8_t other[] = {'a', 0, 'c'};
    assert_int_equal(password_hash(pw, sizeof pw, h), 0);
    assert_true(password_verify(h, pw, sizeof pw));
    assert_false(password_verify(h, other, sizeof other));
    assert_false(password_verify(h, pw, 1)); /* no truncation at the NUL */

    assert_int_equal(password_hash(u8(""), 0, h), 0);
    assert_true(password_verify(h, u8(""), 0));
    assert_false(password_verify(h, u8("x"), 1));
}

static void test_dummy_path(void **state)
{
    (void)state;
    assert_false(password_verify(NULL, u8("anything"), 8));
    assert_false(password_verify("", u8("anything"), 8));
    assert_false(password_verify("", u8(""), 0));
    assert_false(password_verify("not a hash", u8("anything"), 8));
    assert_false(password_verify("$argon2id$v=19$m=garbage", u8("anything"), 8));
    char h[PASSWORD_HASH_MAX + 1];
    assert_int_equal(password_hash(u8("pw"), 2, h), 0);
    assert_false(password_verify(h, NULL, 0));
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The dummy path does real argon2 work: an unknown user costs about what a wrong password
 * costs (we only require a third, to stay robust on a loaded machine). */
static void test_dummy_same_work(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX + 1];
    assert_int_equal(password_hash(u8("pw"), 2, h), 0);
    double real = 1e9;
    double dummy = 1e9;
    double malformed = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = seconds_now();
        assert_false(password_verify(h, u8("wrong"), 5));
        double t1 = seconds_now();
        assert_false(password_verify(NULL, u8("wrong"), 5));
        double t2 = seconds_now();
        assert_false(password_verify("$argon2id$broken", u8("wrong"), 5));
        double t3 = seconds_now();
        real = t1 - t0 < real ? t1 - t0 : real;
        dummy = t2 - t1 < dummy ? t2 - t1 : dummy;
        malformed = t3 - t2 < malformed ? t3 - t2 : malformed;
    }
    assert_true(dummy > real / 3);
    assert_true(malformed > real / 3);
}

static void test_too_long(void **state)
{
    (void)state;
    static uint8_t big[PASSWORD_MAX + 1];
    memset(big, 'a', sizeof big);
    char h[PASSWORD_HASH_MAX + 1];
    assert_int_equal(password_hash(big, sizeof big, h), -1);
    assert_int_equal(password_hash(big, PASSWORD_MAX, h), 0);
    assert_true(password_verify(h, big, PASSWORD_MAX));
    /* one more byte is a different (refused) password, not a truncated match */
    assert_false(password_verify(h, big, sizeof big));
}

static void test_needs_rehash(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX + 1];
    assert_int_equal(password_hash(u8("pw"), 2, h), 0);
    assert_false(password_needs_rehash(h));

    char old[crypto_pwhash_STRBYTES];
    assert_int_equal(
        crypto_pwhash_str(old, "pw", 2, crypto_pwhash_OPSLIMIT_INTERACTIVE + 1, TEST_MEMLIMIT), 0);
    assert_true(password_needs_rehash(old));
    assert_true(password_verify(old, u8("pw"), 2)); /* still verifies with its own parameters */
    assert_int_equal(
        crypto_pwhash_str(old, "pw", 2, crypto_pwhash_OPSLIMIT_INTERACTIVE, TEST_MEMLIMIT * 2), 0);
    assert_true(password_needs_rehash(old));

    assert_false(password_needs_rehash(NULL));
    assert_false(password_needs_rehash(""));
    assert_true(password_needs_rehash("garbage"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_salted),
        cmocka_unit_test(test_binary_and_empty), cmocka_unit_test(test_dummy_path),
        cmocka_unit_test(test_dummy_same_work),  cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_needs_rehash),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
