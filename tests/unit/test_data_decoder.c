/* test_data_decoder.c: the DATA decoder (end of data at CRLF.CRLF only, dot-unstuffing, bare
 * CR / bare LF / long line detection), fed whole, byte by byte, and in every 2- and 3-chunk
 * split, which must all give the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_decoder.h"

#define BIG 4096

struct result {
    char out[BIG];
    size_t out_len;
    size_t consumed; /* input octets consumed in total */
    bool done;
    enum data_error error;
    uint64_t out_total;
};

/* Feeds in[0..len) cut at cuts[0..ncuts) (ascending). Stops at the end of data, checking that
 * every chunk before it is consumed whole. */
static void run(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct result *r)
{
    struct data_decoder d;
    data_decoder_init(&d);
    memset(r, 0, sizeof *r);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        char out[BIG];
        size_t out_len = 12345;
        size_t n = data_decoder_feed(&d, in + start, end - start, out, &out_len);
        assert_true(n <= end - start);
        assert_true(out_len <= end - start); /* out needs no more room than the input */
        assert_true(r->out_len + out_len <= sizeof r->out);
        memcpy(r->out + r->out_len, out, out_len);
        r->out_len += out_len;
        r->consumed += n;
        if (d.done) {
            r->done = true;
            break;
        }
        assert_int_equal(n, end - start);
        start = end;
    }
    r->error = d.error;
    r->out_total = d.out_total;
    assert_int_equal(r->out_total, r->out_len);
}

static void assert_same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->out_len, b->out_len);
    assert_memory_equal(a->out, b->out, a->out_len);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->error, b->error);
}

/* Runs the input whole, then byte by byte, then in every 2-chunk and (for short inputs) every
 * 3-chunk split, and checks all against the expectation. expect_out may be NULL (after errors
 * the output is not specified, but it must still not depend on the split). */
static void check(const char *in, size_t len, const char *expect_out, size_t expect_out_len,
                  size_t expect_consumed, bool expect_done, enum data_error expect_error)
{
    struct result whole, other;
    run(in, len, NULL, 0, &whole);
    if (expect_out != NULL) {
        assert_int_equal(whole.out_len, expect_out_len);
        assert_memory_equal(whole.out, expect_out, whole.out_len);
    }
    assert_int_equal(whole.consumed, expect_consumed);
    assert_int_equal(whole.done, expect_done);
    assert_int_equal(whole.error, expect_error);

    size_t *cuts = malloc((len + 2) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    run(in, len, cuts, len > 0 ? len - 1 : 0, &other);
    assert_same(&whole, &other);
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        run(in, len, cuts, 1, &other);
        assert_same(&whole, &other);
    }
    if (len <= 64) {
        for (size_t j = 0; j <= len; j++) {
            for (size_t k = j; k <= len; k++) {
                cuts[0] = j;
                cuts[1] = k;
                run(in, len, cuts, 2, &other);
                assert_same(&whole, &other);
            }
        }
    }
    free(cuts);
}

#define CHECK(in, out, consumed, done, err)                                                        \
    check(in, sizeof(in) - 1, out, sizeof(out) - 1, consumed, done, err)
#define CHECK_ERR(in, consumed, done, err) check(in, sizeof(in) - 1, NULL, 0, consumed, done, err)

static void test_simple_message(void **state)
{
    (void)state;
    static const char in[] = "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";
    CHECK(in, "Subject: x\r\n\r\nhello\r\n", sizeof in - 1 - 6, true, DATA_OK);
}

static void test_empty_message(void **state)
{
    (void)state;
    CHECK(".\r\n", "", 3, true, DATA_OK);
    CHECK(".\r\nRSET\r\n", "", 3, true, DATA_OK);
    CHECK("\r\n.\r\n", "\r\n", 5, true, DATA_OK);
}

static void test_dot_unstuffing(void **state)
{
    (void)state;
    CHECK("a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 13, true, DATA_OK);
    CHECK("..\r\n.\r\n", ".\r\n", 7, true, DATA_OK);
    CHECK("..x\r\n.\r\n", ".x\r\n", 8, true, DATA_OK);
    CHECK(".x\r\n.\r\n", "x\r\n", 7, true, DATA_OK);
    CHECK("...\r\n.\r\n", "..\r\n", 8, true, DATA_OK);
    /* a dot inside a line is not stuffing */
    CHECK("a.b\r\nc.\r\n.\r\n", "a.b\r\nc.\r\n", 12, true, DATA_OK);
}

static void test_no_end_without_crlf_dot_crlf(void **state)
{
    (void)state;
    /* incomplete endings: everything consumed, not done */
    CHECK("x\r\n.\r", "x\r\n", 5, false, DATA_OK);
    CHECK("x\r\n.", "x\r\n", 4, false, DATA_OK);
    CHECK("x\r\n", "x\r\n", 3, false, DATA_OK);
    CHECK("", "", 0, false, DATA_OK);
    /* "x.\r\n" is not an end: the dot is not at the start of a line */
    CHECK("x.\r\n", "x.\r\n", 4, false, DATA_OK);
}

static void test_bare_lf_never_ends(void **state)
{
    (void)state;
    /* a bare LF followed by ".\r\n" is not an end of data; the real end is found later */
    static const char in1[] = "a\n.\r\nb\r\n.\r\nNOOP\r\n";
    CHECK_ERR(in1, sizeof in1 - 1 - 6, true, DATA_ERR_BARE_LF);
    static const char in2[] = "\n.\r\n";
    CHECK_ERR(in2, 4, false, DATA_ERR_BARE_LF);
    static const char in3[] = "a\r\n\n.\r\n\r\n.\r\n";
    CHECK_ERR(in3, sizeof in3 - 1, true, DATA_ERR_BARE_LF);
    /* "." then a bare LF: not an end either */
    static const char in4[] = ".\n.\r\n.\r\n";
    CHECK_ERR(in4, sizeof in4 - 1, true, DATA_ERR_BARE_LF);
    /* a bare LF line end followed by "." LF: never an end */
    static const char in5[] = "a\n.\n";
    CHECK_ERR(in5, 4, false, DATA_ERR_BARE_LF);
}

static void test_bare_cr(void **state)
{
    (void)state;
    static const char in1[] = "a\rb\r\n.\r\n";
    CHECK_ERR(in1, sizeof in1 - 1, true, DATA_ERR_BARE_CR);
    /* CR CR LF: the first CR is bare, the second ends the line */
    static const char in2[] = "a\r\r\n.\r\n";
    CHECK_ERR(in2, sizeof in2 - 1, true, DATA_ERR_BARE_CR);
    /* "." CR x: bare CR right after a leading dot */
    static const char in3[] = ".\rx\r\n.\r\n";
    CHECK_ERR(in3, sizeof in3 - 1, true, DATA_ERR_BARE_CR);
    /* "\r.\r\n" is not CRLF "." CRLF */
    static const char in4[] = "a\r.\r\nb\r\n.\r\n";
    CHECK_ERR(in4, sizeof in4 - 1, true, DATA_ERR_BARE_CR);
    static const char in5[] = ".\r.\r\n";
    CHECK_ERR(in5, sizeof in5 - 1, false, DATA_ERR_BARE_CR);
}

static void test_first_error_is_sticky(void **state)
{
    (void)state;
    static const char in1[] = "a\nb\rc\r\n.\r\n";
    CHECK_ERR(in1, sizeof in1 - 1, true, DATA_ERR_BARE_LF);
    static const char in2[] = "a\rb\nc\r\n.\r\n";
    CHECK_ERR(in2, sizeof in2 - 1, true, DATA_ERR_BARE_CR);
}

/* Builds prefix + n times 'x' + suffix into buf. */
static size_t build(char *buf, const char *prefix, size_t n, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix);
    memcpy(buf, prefix, p);
    memset(buf + p, 'x', n);
    memcpy(buf + p + n, suffix, s);
    return p + n + s;
}

static void test_line_length(void **state)
{
    (void)state;
    static char in[2 * BIG], expect[2 * BIG];
    size_t n;

    n = build(in, "", 998, "\r\n.\r\n");
    size_t e = build(expect, "", 998, "\r\n");
    check(in, n, expect, e, n, true, DATA_OK);

    n = build(in, "", 999, "\r\n.\r\n");
    check(in, n, NULL, 0, n, true, DATA_ERR_LINE_TOO_LONG);

    /* a stuffed dot does not count: the message line is 998 octets */
    n = build(in, ".", 998, "\r\n.\r\n");
    check(in, n, expect, e, n, true, DATA_OK);
    n = build(in, ".", 999, "\r\n.\r\n");
    check(in, n, NULL, 0, n, true, DATA_ERR_LINE_TOO_LONG);

    /* the count restarts after each CRLF */
    n = build(in, "", 998, "\r\n");
    n += build(in + n, "", 998, "\r\n.\r\n");
    check(in, n, NULL, 0, n, true, DATA_OK);

    /* a too-long last line without its CRLF is flagged as soon as it is too long */
    n = build(in, "a\r\n", 999, "");
    check(in, n, NULL, 0, n, false, DATA_ERR_LINE_TOO_LONG);
    n = build(in, "a\r\n", 998, "");
    check(in, n, NULL, 0, n, false, DATA_OK);
}

static void test_feed_after_done(void **state)
{
    (void)state;
    struct data_decoder d;
    char out[16];
    size_t out_len;
    data_decoder_init(&d);
    assert_int_equal(data_decoder_feed(&d, "a\r\n.\r\nQUIT", 10, out, &out_len), 6);
    assert_true(d.done);
    assert_int_equal(out_len, 3);
    assert_int_equal(data_decoder_feed(&d, "QUIT", 4, out, &out_len), 0);
    assert_int_equal(out_len, 0);
    assert_int_equal(d.out_total, 3);

    /* init resets everything */
    data_decoder_init(&d);
    assert_false(d.done);
    assert_int_equal(d.error, DATA_OK);
    assert_int_equal(d.out_total, 0);
    assert_int_equal(data_decoder_feed(&d, "b\r\n", 3, out, &out_len), 3);
    assert_int_equal(out_len, 3);
}

static void test_binary_and_long_message(void **state)
{
    (void)state;
    /* 8-bit octets and NULs pass through untouched */
    static const char in[] = "\xff\x00\x80\r\n.\r\n";
    CHECK(in, "\xff\x00\x80\r\n", sizeof in - 1, true, DATA_OK);
    assert_int_equal(in[1], 0);

    /* many lines, stuffing everywhere, byte by byte vs whole */
    static char big[BIG], expect[BIG];
    size_t n = 0, e = 0;
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(big + n, sizeof big - n, "..line %d\r\n", i);
        e += (size_t)snprintf(expect + e, sizeof expect - e, ".line %d\r\n", i);
    }
    memcpy(big + n, ".\r\n", 3);
    n += 3;
    check(big, n, expect, e, n, true, DATA_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_message),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_no_end_without_crlf_dot_crlf),
        cmocka_unit_test(test_bare_lf_never_ends),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_first_error_is_sticky),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_feed_after_done),
        cmocka_unit_test(test_binary_and_long_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
