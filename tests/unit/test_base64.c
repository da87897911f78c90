/* test_base64.c: strict base64 (RFC 4648 4): the test vectors of RFC 4648 10, round trips of
 * every length, and refusal of everything non-canonical (whitespace, missing or extra padding,
 * non-zero trailing bits, the URL alphabet, short output buffers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "base64.h"

static const struct {
    const char *plain, *enc;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const char *p = vectors[i].plain, *e = vectors[i].enc;
        char enc[32];
        uint8_t dec[32];
        size_t n;
        assert_int_equal(b64_encoded_len(strlen(p)), strlen(e));
        assert_int_equal(b64_encode((const uint8_t *)p, strlen(p), enc, sizeof enc), strlen(e));
        assert_string_equal(enc, e);
        assert_int_equal(b64_decode(e, strlen(e), dec, sizeof dec, &n), 0);
        assert_int_equal(n, strlen(p));
        assert_memory_equal(dec, p, n);
    }
}

static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    uint8_t in[300], dec[300];
    char enc[420];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(255 - i);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t e = b64_encode(in, n, enc, sizeof enc);
        assert_int_equal(e, b64_encoded_len(n));
        assert_int_equal(strlen(enc), e);
        size_t out;
        assert_int_equal(b64_decode(enc, e, dec, sizeof dec, &out), 0);
        assert_int_equal(out, n);
        assert_memory_equal(dec, in, n);
    }
}

static void test_encode_capacity(void **state)
{
    (void)state;
    char out[9];
    /* "foobar" needs 8 characters and the NUL */
    assert_int_equal(b64_encode((const uint8_t *)"foobar", 6, out, 9), 8);
    memset(out, 'X', sizeof out);
    assert_int_equal(b64_encode((const uint8_t *)"foobar", 6, out, 8), 0);
    assert_string_equal(out, "");
    assert_int_equal(b64_encode((const uint8_t *)"f", 1, out, 4), 0);
    assert_int_equal(b64_encode((const uint8_t *)"f", 1, out, 5), 4);
    assert_int_equal(b64_encode((const uint8_t *)"", 0, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(b64_encode((const uint8_t *)"", 0, out, 0), 0);
}

static void assert_rejected(const char *s)
{
    uint8_t out[64];
    size_t n = 99;
    assert_int_equal(b64_decode(s, strlen(s), out, sizeof out, &n), -1);
}

static void test_rejects_malformed(void **state)
{
    (void)state;
    /* missing padding, or too much */
    assert_rejected("Zg");
    assert_rejected("Zg=");
    assert_rejected("Zg===");
    assert_rejected("Zm8");
    assert_rejected("Zm8==");
    assert_rejected("Zm9v=");
    assert_rejected("Zm9v====");
    assert_rejected("=");
    assert_rejected("====");
    assert_rejected("Z===");
    /* padding in the middle, or data after it */
    assert_rejected("Zg==Zg==");
    assert_rejected("Zm=v");
    assert_rejected("Zg==Zm9v");
    /* non-zero trailing bits */
    assert_rejected("Zh==");
    assert_rejected("Zm9=");
    assert_rejected("QR==");
    assert_rejected("QUJ=");
    /* whitespace anywhere */
    assert_rejected(" Zm9v");
    assert_rejected("Zm9v ");
    assert_rejected("Zm 9v");
    assert_rejected("Zm9v\r\n");
    assert_rejected("Zm9v\n");
    assert_rejected("Zm\t9v");
    /* other alphabets and characters */
    assert_rejected("-_==");
    assert_rejected("Zm9*");
    assert_rejected("Zm9\x80");
    assert_rejected("\xc1\xc1\xc1\xc1");
    assert_rejected("Zm9vYmFy\x80\x80\x80\x80");
    /* every octet value in the last position: only the alphabet and '=' are accepted */
    for (int c = 0; c < 256; c++) {
        char s[4] = {'Z', 'm', '8', (char)c};
        uint8_t o[4];
        size_t on;
        bool valid = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/' || c == '=';
        assert_int_equal(b64_decode(s, 4, o, sizeof o, &on), valid ? 0 : -1);
        s[0] = (char)c; /* and in the first position ('=' is never valid there) */
        s[3] = '=';
        valid = valid && c != '=';
        assert_int_equal(b64_decode(s, 4, o, sizeof o, &on) == 0, valid);
    }
    /* a length that is not a multiple of 4 */
    assert_rejected("Z");
    assert_rejected("Zm9vY");
    /* an embedded NUL: the length is explicit, the NUL is not skipped */
    uint8_t out[8];
    size_t n;
    assert_int_equal(b64_decode("Zm\0v", 4, out, sizeof out, &n), -1);
    assert_int_equal(b64_decode("Zm9v", 3, out, sizeof out, &n), -1);
}

static void test_decode_capacity(void **state)
{
    (void)state;
    uint8_t out[6];
    size_t n = 99;
    assert_int_equal(b64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(b64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
    assert_int_equal(b64_decode("Zm8=", 4, out, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(b64_decode("Zm8=", 4, out, 1, &n), -1);
    assert_int_equal(b64_decode("", 0, out, 0, &n), 0);
    assert_int_equal(n, 0);
    /* 0xff bytes decode exactly */
    assert_int_equal(b64_decode("//8=", 4, out, sizeof out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[1], 0xff);
    /* a SASL PLAIN message with its NULs */
    assert_int_equal(b64_decode("AHVzZXIAcGFzcw==", 16, (uint8_t[16]){0}, 16, &n), 0);
    assert_int_equal(n, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_round_trip_all_bytes),
        cmocka_unit_test(test_encode_capacity), cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_decode_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
