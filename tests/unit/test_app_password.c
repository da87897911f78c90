/* test_app_password.c: app password generation (length, alphabet, uniqueness, spread over the
 * alphabet) and the stored hash (BLAKE2b-256 known answer, stability, space and case folding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app_password.h"

#define N_SECRETS 1000

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static int cmp_secret(const void *a, const void *b)
{
    return memcmp(a, b, APP_PASSWORD_LEN + 1);
}

static void test_generate_shape_and_uniqueness(void **state)
{
    (void)state;
    static char secrets[N_SECRETS][APP_PASSWORD_LEN + 1];
    unsigned counts[32] = {0};
    for (size_t i = 0; i < N_SECRETS; i++) {
        memset(secrets[i], 'X', sizeof secrets[i]);
        app_password_generate(secrets[i]);
        assert_int_equal(strlen(secrets[i]), APP_PASSWORD_LEN);
        for (size_t j = 0; j < APP_PASSWORD_LEN; j++) {
            const char *p = strchr(alphabet, secrets[i][j]);
            assert_non_null(p);
            assert_true(secrets[i][j] != '\0');
            counts[p - alphabet]++;
        }
    }
    qsort(secrets, N_SECRETS, sizeof secrets[0], cmp_secret);
    for (size_t i = 1; i < N_SECRETS; i++)
        assert_true(memcmp(secrets[i - 1], secrets[i], sizeof secrets[0]) != 0);
    /* 20000 characters over 32 letters: 625 expected each. A generator that never used some
     * letter (or used a biased mapping such as a byte modulo 26) fails; a uniform one falls
     * outside [450, 800] with a probability far below 1e-12. */
    for (size_t k = 0; k < 32; k++) {
        assert_true(counts[k] >= 450);
        assert_true(counts[k] <= 800);
    }
}

static void test_generate_every_position_varies(void **state)
{
    (void)state;
    /* each position is drawn from its own 5 bits: over 2000 secrets every position takes all
     * 32 letters (a wrong bit offset shows up as a constant or restricted position). A uniform
     * generator misses a letter somewhere with probability below 20 * 32 * (31/32)^2000. */
    uint32_t seen[APP_PASSWORD_LEN] = {0}; /* bit mask of letters seen at the position */
    /* neighbours are independent: a character's lowest bit agrees with the next one's highest
     * bit half the time (overlapping bit windows would make them always agree) */
    unsigned agree = 0, pairs = 0;
    for (int round = 0; round < 2000; round++) {
        char s[APP_PASSWORD_LEN + 1];
        app_password_generate(s);
        for (size_t j = 0; j < APP_PASSWORD_LEN; j++) {
            unsigned v = (unsigned)(strchr(alphabet, s[j]) - alphabet);
            seen[j] |= (uint32_t)1 << v;
            if (j + 1 < APP_PASSWORD_LEN) {
                unsigned w = (unsigned)(strchr(alphabet, s[j + 1]) - alphabet);
                agree += (v & 1) == (w >> 4);
                pairs++;
            }
        }
    }
    for (size_t j = 0; j < APP_PASSWORD_LEN; j++)
        assert_int_equal(seen[j], 0xffffffffu);
    /* 38000 pairs: 19000 expected, standard deviation about 97 */
    assert_int_equal(pairs, 2000 * (APP_PASSWORD_LEN - 1));
    assert_true(agree > pairs / 2 - 1500);
    assert_true(agree < pairs / 2 + 1500);
}

static void hash_str(const char *s, char hex[APP_PASSWORD_HASH_HEX + 1])
{
    app_password_hash((const uint8_t *)s, strlen(s), hex);
}

static void test_hash_known_answer(void **state)
{
    (void)state;
    char hex[APP_PASSWORD_HASH_HEX + 1];
    /* BLAKE2b-256 of "abc" (the RFC 7693 test input; this 256-bit output from Python's hashlib) */
    hash_str("abc", hex);
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    /* the empty input */
    app_password_hash((const uint8_t *)"", 0, hex);
    assert_string_equal(hex, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    assert_int_equal(strlen(hex), APP_PASSWORD_HASH_HEX);
}

static void test_hash_stable_and_distinct(void **state)
{
    (void)state;
    char s1[APP_PASSWORD_LEN + 1], s2[APP_PASSWORD_LEN + 1];
    char h1[APP_PASSWORD_HASH_HEX + 1], h1b[APP_PASSWORD_HASH_HEX + 1],
        h2[APP_PASSWORD_HASH_HEX + 1];
    app_password_generate(s1);
    app_password_generate(s2);
    assert_string_not_equal(s1, s2);
    hash_str(s1, h1);
    hash_str(s1, h1b);
    hash_str(s2, h2);
    assert_string_equal(h1, h1b);
    assert_string_not_equal(h1, h2);
    for (size_t i = 0; i < APP_PASSWORD_HASH_HEX; i++)
        assert_non_null(strchr("0123456789abcdef", h1[i]));

    /* one character different, or one more or fewer, is a different hash */
    char t[APP_PASSWORD_LEN + 2];
    memcpy(t, s1, sizeof s1);
    t[5] = t[5] == 'a' ? 'b' : 'a';
    hash_str(t, h2);
    assert_string_not_equal(h1, h2);
    memcpy(t, s1, sizeof s1);
    t[APP_PASSWORD_LEN - 1] = '\0';
    hash_str(t, h2);
    assert_string_not_equal(h1, h2);
    memcpy(t, s1, sizeof s1);
    t[APP_PASSWORD_LEN] = 'a';
    t[APP_PASSWORD_LEN + 1] = '\0';
    hash_str(t, h2);
    assert_string_not_equal(h1, h2);
}

static void test_hash_folds_spaces_and_case(void **state)
{
    (void)state;
    char h[APP_PASSWORD_HASH_HEX + 1], g[APP_PASSWORD_HASH_HEX + 1];
    hash_str("abcdefghijklmnopqrst", h);
    static const char *const same[] = {
        "abcd efgh ijkl mnop qrst",
        "ABCD EFGH IJKL MNOP QRST",
        "AbCdEfGhIjKlMnOpQrSt",
        " abcdefghijklmnopqrst ",
        "a b c d e f g h i j k l m n o p q r s t",
        "abcd  efgh    ijklmnopqrst",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        hash_str(same[i], g);
        assert_string_equal(h, g);
    }
    /* only ASCII spaces and letters fold: tabs, dashes and digits are part of the secret */
    static const char *const differ[] = {
        "abcd\tefgh ijkl mnop qrst",
        "abcd-efgh-ijkl-mnop-qrst",
        "abcdefghijklmnopqrs",
        "abcdefghijklmnopqrsu",
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        hash_str(differ[i], g);
        assert_string_not_equal(h, g);
    }
    /* digits are not letters: "2" is not folded into anything */
    char d1[APP_PASSWORD_HASH_HEX + 1], d2[APP_PASSWORD_HASH_HEX + 1];
    hash_str("abcd2345", d1);
    hash_str("ABCD 2345", d2);
    assert_string_equal(d1, d2);
    /* a long input (more than the internal chunk) with spaces folds the same */
    static char longa[400], longb[800];
    for (size_t i = 0; i < sizeof longa - 1; i++) {
        longa[i] = alphabet[i % 32];
        longb[2 * i] = (char)(longa[i] >= 'a' ? longa[i] - 'a' + 'A' : longa[i]);
        longb[2 * i + 1] = ' ';
    }
    hash_str(longa, d1);
    hash_str(longb, d2);
    assert_string_equal(d1, d2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_shape_and_uniqueness),
        cmocka_unit_test(test_generate_every_position_varies),
        cmocka_unit_test(test_hash_known_answer),
        cmocka_unit_test(test_hash_stable_and_distinct),
        cmocka_unit_test(test_hash_folds_spaces_and_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
