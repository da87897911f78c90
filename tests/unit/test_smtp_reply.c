/* test_smtp_reply.c: the client-side reply parser (RFC 5321 4.2, RFC 3463 via RFC 2034):
 * single and multi-line replies, mismatched codes, bare codes, malformed lines, enhanced code
 * detection, the first line, and EHLO extension lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

static enum smtp_reply_status feed(struct smtp_reply *r, const char *line)
{
    return smtp_reply_feed(r, line, strlen(line));
}

/* Feeds lines until one is not MORE; returns that status. */
static enum smtp_reply_status feed_all(struct smtp_reply *r, const char *const *lines, size_t n)
{
    enum smtp_reply_status st = SMTP_REPLY_MORE;
    for (size_t i = 0; i < n; i++) {
        st = feed(r, lines[i]);
        if (st != SMTP_REPLY_MORE)
            return st;
    }
    return st;
}

static void test_single_line(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "220 mx.example.com ESMTP ready"), SMTP_REPLY_DONE);
    assert_true(r.complete);
    assert_int_equal(r.code, 220);
    assert_int_equal(r.n_lines, 1);
    assert_string_equal(r.text, "mx.example.com ESMTP ready");
    assert_string_equal(r.enhanced, "");
    /* a complete reply takes no more lines */
    assert_int_equal(feed(&r, "250 OK"), SMTP_REPLY_BAD);
}

static void test_multi_line(void **state)
{
    (void)state;
    static const char *const ehlo[] = {"250-mx.example.com Hello [192.0.2.1]", "250-SIZE 35882577",
                                       "250-8BITMIME", "250-AUTH LOGIN XOAUTH2",
                                       "250 ENHANCEDSTATUSCODES"};
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, ehlo[0]), SMTP_REPLY_MORE);
    assert_int_equal(r.code, 0); /* incomplete */
    assert_false(r.complete);
    assert_int_equal(r.first_code, 250);
    assert_int_equal(feed_all(&r, ehlo + 1, 4), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_int_equal(r.n_lines, 5);
    assert_string_equal(r.text, "mx.example.com Hello [192.0.2.1]\nSIZE 35882577\n8BITMIME\n"
                                "AUTH LOGIN XOAUTH2\nENHANCEDSTATUSCODES");
}

static void test_mismatched_codes(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-first"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "251 second"), SMTP_REPLY_BAD);
    assert_false(r.complete);
    assert_int_equal(r.code, 0);

    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "451-4.7.0 wait"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "551 5.7.0 no"), SMTP_REPLY_BAD);
}

static void test_bare_code(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250"), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.text, "");
    assert_string_equal(r.enhanced, "");
    char first[64];
    smtp_reply_first_line(&r, first, sizeof first);
    assert_string_equal(first, "250");

    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "354 "), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 354);
    assert_string_equal(r.text, "");

    /* a bare code in the middle continues nothing: it ends the reply */
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-a"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250"), SMTP_REPLY_DONE);
    assert_int_equal(r.n_lines, 2);
    assert_string_equal(r.text, "a\n");
}

static void test_malformed_lines(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",      "25",      "2500 x", "25x ok", "250_x", "650 out of range",
        "160 x", "abc def", " 250 x", "270 x",  "2x0 y", "220\tmx",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct smtp_reply r;
        smtp_reply_init(&r);
        if (feed(&r, bad[i]) != SMTP_REPLY_BAD)
            fail_msg("\"%s\" was accepted as a reply line", bad[i]);
        assert_int_equal(r.n_lines, 0);
    }
    /* an embedded NUL is not a reply line */
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(smtp_reply_feed(&r, "250 a\0b", 7), SMTP_REPLY_BAD);
    /* len, not the NUL, bounds the line */
    smtp_reply_init(&r);
    assert_int_equal(smtp_reply_feed(&r, "250 OKtrailing", 6), SMTP_REPLY_DONE);
    assert_string_equal(r.text, "OK");
}

static void test_enhanced_detection(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *enhanced;
    } cases[] = {
        {"535 5.7.139 Authentication unsuccessful, basic authentication is disabled.", "5.7.139"},
        {"530 5.7.57 Client not authenticated to send mail.", "5.7.57"},
        {"250 2.0.0 OK 0123456789ABCDEF", "2.0.0"},
        {"535 5.7.3", "5.7.3"}, /* the code alone */
        {"451 4.7.0 Try later", "4.7.0"},
        {"220 mx.example.com ESMTP", ""}, /* a greeting has none */
        {"250 1.2.3 not a class", ""},    /* class must be 2, 4 or 5 */
        {"250 2.0 two parts", ""},        /* needs three parts */
        {"250 2.0.0.1 four parts", ""},
        {"250 2.0.1000 detail too long", ""},
        {"250 2.1000.0 subject too long", ""},
        {"250 2.0.0x glued", ""},
        {"250 5.7.8 class kept as sent", "5.7.8"}, /* disagreement is the caller's concern */
        {"535 5.7.8 Username and Password not accepted.", "5.7.8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtp_reply r;
        smtp_reply_init(&r);
        assert_int_equal(feed(&r, cases[i].line), SMTP_REPLY_DONE);
        if (strcmp(r.enhanced, cases[i].enhanced) != 0)
            fail_msg("\"%s\": enhanced \"%s\", want \"%s\"", cases[i].line, r.enhanced,
                     cases[i].enhanced);
    }
    /* the enhanced code is kept in the text, and only the first line's counts */
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "535-5.7.139 Authentication unsuccessful,"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "535 5.7.3 second"), SMTP_REPLY_DONE);
    assert_string_equal(r.enhanced, "5.7.139");
    assert_string_equal(r.text, "5.7.139 Authentication unsuccessful,\n5.7.3 second");
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-mx.example.com"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 2.0.0 late"), SMTP_REPLY_DONE);
    assert_string_equal(r.enhanced, "");
}

static void test_first_line(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    feed(&r, "535-5.7.139 Authentication unsuccessful, the request did not meet the criteria");
    feed(&r, "535 to be authenticated successfully.");
    char out[128];
    smtp_reply_first_line(&r, out, sizeof out);
    assert_string_equal(out, "535 5.7.139 Authentication unsuccessful, the request did not meet "
                             "the criteria");
    /* truncated to cap, always terminated */
    char small[8];
    smtp_reply_first_line(&r, small, sizeof small);
    assert_string_equal(small, "535 5.7");
}

static void test_extensions(void **state)
{
    (void)state;
    static const char *const ehlo[] = {"250-smtp.example.com Hello AUTH friend",
                                       "250-SIZE 35882577",
                                       "250-auth login plain xoauth2",
                                       "250-STARTTLSX",
                                       "250-AUTH=LOGIN",
                                       "250-8BITMIME",
                                       "250 PIPELINING"};
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed_all(&r, ehlo, 7), SMTP_REPLY_DONE);
    char params[64];
    assert_true(smtp_reply_has_extension(&r, "AUTH", params, sizeof params));
    assert_string_equal(params, "login plain xoauth2"); /* the standard line wins */
    assert_true(smtp_reply_has_extension(&r, "size", params, sizeof params));
    assert_string_equal(params, "35882577");
    assert_true(smtp_reply_has_extension(&r, "PIPELINING", params, sizeof params));
    assert_string_equal(params, "");
    assert_true(smtp_reply_has_extension(&r, "8BITMIME", NULL, 0));
    /* no prefix matches, and the greeting line is not a keyword line */
    assert_false(smtp_reply_has_extension(&r, "STARTTLS", NULL, 0));
    assert_false(smtp_reply_has_extension(&r, "smtp.example.com", NULL, 0));
    assert_false(smtp_reply_has_extension(&r, "SIZ", NULL, 0));
    assert_false(smtp_reply_has_extension(&r, "", NULL, 0));

    /* only the legacy "AUTH=" form */
    static const char *const old[] = {"250-old.example.com", "250-AUTH=LOGIN PLAIN",
                                      "250 STARTTLS"};
    smtp_reply_init(&r);
    assert_int_equal(feed_all(&r, old, 3), SMTP_REPLY_DONE);
    assert_true(smtp_reply_has_extension(&r, "AUTH", params, sizeof params));
    assert_string_equal(params, "LOGIN PLAIN");
    assert_true(smtp_reply_has_extension(&r, "starttls", params, sizeof params));

    /* a one-line EHLO reply advertises nothing */
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250 AUTH PLAIN"), SMTP_REPLY_DONE);
    assert_false(smtp_reply_has_extension(&r, "AUTH", NULL, 0));
}

static void test_limits(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    char line[40];
    for (size_t i = 0; i < SMTP_REPLY_LINES_MAX; i++) {
        snprintf(line, sizeof line, "250-line %zu", i);
        assert_int_equal(feed(&r, line), SMTP_REPLY_MORE);
    }
    /* one line too many is refused, not silently dropped */
    assert_int_equal(feed(&r, "250 last"), SMTP_REPLY_BAD);

    /* text longer than the buffer is cut, terminated, and flagged */
    static char big[1200];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "250-", 4);
    smtp_reply_init(&r);
    for (int i = 0; i < 10; i++)
        assert_int_equal(feed(&r, big), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 end"), SMTP_REPLY_DONE);
    assert_true(r.truncated);
    assert_int_equal(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
    assert_int_equal(r.code, 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),      cmocka_unit_test(test_multi_line),
        cmocka_unit_test(test_mismatched_codes), cmocka_unit_test(test_bare_code),
        cmocka_unit_test(test_malformed_lines),  cmocka_unit_test(test_enhanced_detection),
        cmocka_unit_test(test_first_line),       cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
