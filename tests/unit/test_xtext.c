/* test_xtext.c: RFC 3461 4 xtext (xtext.c): every octet value encoded and decoded back, the
 * "+XX" forms (upper-case hex only), octets that may not appear raw, and output capacity on both
 * sides (decoding refuses, encoding cuts as snprintf does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "xtext.h"

#define S(lit) lit, sizeof(lit) - 1

static bool decode(const char *in, char *out, size_t cap, size_t *len)
{
    return xtext_decode(in, strlen(in), out, cap, len);
}

static void test_every_octet(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char in[1] = {(char)c}, enc[8], dec[8];
        size_t n = xtext_encode(in, 1, enc, sizeof enc), m = 99;
        bool literal = c >= 33 && c <= 126 && c != '+' && c != '=';
        if (literal) {
            assert_int_equal(n, 1);
            assert_int_equal((unsigned char)enc[0], c);
        } else {
            char want[4];
            snprintf(want, sizeof want, "+%02X", c);
            assert_int_equal(n, 3);
            assert_string_equal(enc, want);
        }
        assert_int_equal(enc[n], '\0');
        /* and back */
        assert_true(xtext_decode(enc, n, dec, sizeof dec, &m));
        assert_int_equal(m, 1);
        assert_int_equal((unsigned char)dec[0], c);
        assert_int_equal(dec[1], '\0');
        /* a raw octet decodes to itself only when it is an xchar */
        m = 99;
        assert_int_equal(xtext_decode(in, 1, dec, sizeof dec, &m), literal);
        if (literal)
            assert_int_equal(m, 1);
    }
}

static void test_round_trip_all_octets(void **state)
{
    (void)state;
    char in[256], enc[3 * 256 + 1], dec[257];
    for (int c = 0; c < 256; c++)
        in[c] = (char)c;
    size_t n = xtext_encode(in, sizeof in, enc, sizeof enc), m = 0;
    /* 92 xchars (94 printable minus '+' and '='), 164 octets as "+XX" */
    assert_int_equal(n, 92 + 3 * 164);
    assert_int_equal(strlen(enc), n);
    assert_true(xtext_decode(enc, n, dec, sizeof dec, &m));
    assert_int_equal(m, 256);
    assert_memory_equal(dec, in, 256);
}

static void test_hexchar(void **state)
{
    (void)state;
    char out[32];
    size_t len = 0;
    assert_true(decode("a+2Bb+3Dc", out, sizeof out, &len));
    assert_string_equal(out, "a+b=c");
    assert_int_equal(len, 5);
    assert_true(decode("+00+FF+7F+20", out, sizeof out, &len));
    assert_int_equal(len, 4);
    assert_memory_equal(out, "\x00\xff\x7f\x20", 4);
    assert_true(decode("+41+42", out, sizeof out, &len));
    assert_string_equal(out, "AB");
    /* the empty string is valid xtext */
    len = 7;
    assert_true(decode("", out, sizeof out, &len));
    assert_string_equal(out, "");
    assert_int_equal(len, 0);
    /* out_len may be NULL */
    assert_true(xtext_decode(S("x+2By"), out, sizeof out, NULL));
    assert_string_equal(out, "x+y");
}

static void test_hexchar_errors(void **state)
{
    (void)state;
    char out[32];
    size_t len;
    /* lower-case hex is not hexchar (RFC 3461 4) */
    assert_false(decode("+2b", out, sizeof out, &len));
    assert_false(decode("+a0", out, sizeof out, &len));
    assert_false(decode("+fF", out, sizeof out, &len));
    /* not hex at all */
    assert_false(decode("+G0", out, sizeof out, &len));
    assert_false(decode("+0G", out, sizeof out, &len));
    assert_false(decode("+ 1", out, sizeof out, &len));
    assert_false(decode("++20", out, sizeof out, &len));
    assert_false(decode("+-1", out, sizeof out, &len));
    /* truncated at the end */
    assert_false(decode("+", out, sizeof out, &len));
    assert_false(decode("+4", out, sizeof out, &len));
    assert_false(decode("abc+", out, sizeof out, &len));
    assert_false(decode("abc+4", out, sizeof out, &len));
    /* the length bounds the input, not a NUL: "+41" cut to "+4" */
    assert_false(xtext_decode("+41", 2, out, sizeof out, &len));
    assert_true(xtext_decode("ab+41", 2, out, sizeof out, &len));
    assert_string_equal(out, "ab");
    /* raw '=' and octets outside 33..126 */
    assert_false(decode("a=b", out, sizeof out, &len));
    assert_false(decode("a b", out, sizeof out, &len));
    assert_false(decode("a\tb", out, sizeof out, &len));
    assert_false(decode("a\x7f", out, sizeof out, &len));
    assert_false(decode("\xc3\xa9", out, sizeof out, &len));
    assert_false(xtext_decode(S("a\0b"), out, sizeof out, &len));
}

static void test_decode_capacity(void **state)
{
    (void)state;
    char out[8];
    size_t len = 0;
    /* 7 octets and the NUL fit in 8; 8 do not */
    assert_true(decode("abcdefg", out, sizeof out, &len));
    assert_int_equal(len, 7);
    assert_false(decode("abcdefgh", out, sizeof out, &len));
    assert_true(decode("+41+42+43+44+45+46+47", out, sizeof out, &len));
    assert_string_equal(out, "ABCDEFG");
    assert_false(decode("+41+42+43+44+45+46+47+48", out, sizeof out, &len));
    /* capacity 1: only the empty string; capacity 0: nothing */
    assert_true(decode("", out, 1, &len));
    assert_false(decode("a", out, 1, &len));
    assert_false(decode("", out, 0, &len));
}

static void test_encode_capacity(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'X', sizeof out);
    /* fits exactly: 7 characters and the NUL */
    assert_int_equal(xtext_encode(S("abcd="), out, sizeof out), 7);
    assert_string_equal(out, "abcd+3D");
    /* one more does not: cut inside the "+3D", the full length returned */
    assert_int_equal(xtext_encode(S("abcde="), out, sizeof out), 8);
    assert_string_equal(out, "abcde+3");
}

static void test_encode_truncation(void **state)
{
    (void)state;
    char out[6];
    /* "a+3Db+2B" is 8 characters: cut to 5 and NUL-terminated, the full length returned */
    memset(out, 'X', sizeof out);
    assert_int_equal(xtext_encode(S("a=b+"), out, sizeof out), 8);
    assert_string_equal(out, "a+3Db");
    /* cap 1: only the NUL */
    memset(out, 'X', sizeof out);
    assert_int_equal(xtext_encode(S("abc"), out, 1), 3);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[1], 'X');
    /* cap 0: nothing written, the length still returned */
    memset(out, 'X', sizeof out);
    assert_int_equal(xtext_encode(S("abc"), out, 0), 3);
    assert_int_equal(out[0], 'X');
    /* the empty input */
    assert_int_equal(xtext_encode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_octet),       cmocka_unit_test(test_round_trip_all_octets),
        cmocka_unit_test(test_hexchar),           cmocka_unit_test(test_hexchar_errors),
        cmocka_unit_test(test_decode_capacity),   cmocka_unit_test(test_encode_capacity),
        cmocka_unit_test(test_encode_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
