/* test_reply.c: the reply catalogue (class agreement of every entry, the exact texts SPEC
 * section 4 prescribes), reply_format's refusals, reference and id formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"

#define UNSUCCESSFUL "Authentication unsuccessful"

static void test_catalogue_consistent(void **state)
{
    (void)state;
    char buf[1024];
    static const char ref[] = "[mx1.submit.example.com 2026-11-28T00:59:57.214Z 08DBB276B7E699C4]";
    for (int i = 0; i < REPLY_COUNT; i++) {
        const struct reply_entry *e = &reply_catalogue[i];
        if (e->code < 200 || e->code > 599 || e->text == NULL || e->text[0] == '\0')
            fail_msg("catalogue entry %d is empty or has code %d", i, e->code);
        if (strpbrk(e->text, "\r\n") != NULL)
            fail_msg("catalogue entry %d has a line break in its text", i);
        if (e->enhanced != NULL) {
            if (!reply_class_agrees(e->code, e->enhanced))
                fail_msg("catalogue entry %d: %d %s disagree", i, e->code, e->enhanced);
        } else if (e->code >= 400) {
            /* RFC 2034 3: only a few positive replies go without an enhanced code */
            fail_msg("catalogue entry %d: %d without an enhanced code", i, e->code);
        }
        /* every entry can be sent, with a reference of the usual length */
        size_t n = reply_format(buf, sizeof buf, e->code, e->enhanced, e->text, ref, false);
        if (n == 0)
            fail_msg("catalogue entry %d cannot be formatted", i);
        assert_int_equal(strlen(buf), n);
        assert_true(n <= SMTP_REPLY_LINE_MAX);
        assert_int_equal(buf[0] - '0', e->code / 100);
    }
}

static void expect(enum reply_id id, int code, const char *enhanced, const char *text_prefix)
{
    const struct reply_entry *e = &reply_catalogue[id];
    if (e->code != code || e->enhanced == NULL || strcmp(e->enhanced, enhanced) != 0 ||
        strncmp(e->text, text_prefix, strlen(text_prefix)) != 0)
        fail_msg("reply %d is %d %s %s; SPEC wants %d %s %s...", id, e->code,
                 e->enhanced ? e->enhanced : "(none)", e->text, code, enhanced, text_prefix);
}

static void test_spec_auth_replies(void **state)
{
    (void)state;
    /* SPEC sections 3 and 4 */
    expect(REPLY_AUTH_OK, 235, "2.7.0", "Authentication successful");
    expect(REPLY_AUTH_FAILED, 535, "5.7.3", UNSUCCESSFUL);
    assert_string_equal(reply_catalogue[REPLY_AUTH_FAILED].text, UNSUCCESSFUL);
    expect(REPLY_AUTH_ACCOUNT_DISABLED, 535, "5.7.139", UNSUCCESSFUL ", account is disabled");
    expect(REPLY_AUTH_DISABLED_MAILBOX, 535, "5.7.139",
           UNSUCCESSFUL ", SmtpClientAuthentication is disabled for the Mailbox");
    expect(REPLY_AUTH_DISABLED_TENANT, 535, "5.7.139",
           UNSUCCESSFUL ", SmtpClientAuthentication is disabled for the Tenant");
    expect(REPLY_AUTH_BASIC_DISABLED, 535, "5.7.139",
           UNSUCCESSFUL ", basic authentication is disabled");
    expect(REPLY_AUTH_SECURITY_DEFAULTS, 535, "5.7.139",
           UNSUCCESSFUL ", user is locked by your organization's security defaults policy");
    expect(REPLY_AUTH_ACCESS_RULE, 535, "5.7.139",
           UNSUCCESSFUL ", the request did not meet the criteria to be authenticated successfully");
    expect(REPLY_AUTH_ENCRYPTION_REQUIRED, 538, "5.7.11", "");
    expect(REPLY_AUTH_UNRECOGNIZED, 504, "5.5.4", "Unrecognized authentication type");
    expect(REPLY_AUTH_ALREADY, 503, "5.5.1", "");
    expect(REPLY_AUTH_IN_TRANSACTION, 503, "5.5.1", "");
    expect(REPLY_AUTH_CANCELLED, 501, "5.7.0", "Authentication cancelled");
    expect(REPLY_AUTH_MALFORMED, 501, "5.5.2", "");
    expect(REPLY_AUTH_TEMPFAIL, 454, "4.7.0", "");
    expect(REPLY_NOT_AUTHENTICATED, 530, "5.7.57", "Client not authenticated to send mail.");
    expect(REPLY_STARTTLS_FIRST, 530, "5.7.0", "Must issue a STARTTLS command first");

    /* every 5xx/4xx AUTH outcome: 535 replies all start with the same words */
    for (int i = 0; i < REPLY_COUNT; i++) {
        const struct reply_entry *e = &reply_catalogue[i];
        if (e->code == 535 &&
            (strncmp(e->text, UNSUCCESSFUL, strlen(UNSUCCESSFUL)) != 0 ||
             (strcmp(e->enhanced, "5.7.3") != 0 && strcmp(e->enhanced, "5.7.139") != 0)))
            fail_msg("535 reply %d does not read like SPEC: %s %s", i, e->enhanced, e->text);
    }
}

static void test_spec_other_replies(void **state)
{
    (void)state;
    expect(REPLY_SEND_AS_DENIED, 550, "5.7.60",
           "Client does not have permissions to send as this sender");
    expect(REPLY_TOO_MANY_RECIPIENTS, 452, "4.5.3", "Too many recipients");
    expect(REPLY_SIZE_EXCEEDED, 552, "5.3.4", "");
    expect(REPLY_NO_STORAGE, 452, "4.3.1", "Insufficient system storage");
    expect(REPLY_UNKNOWN_COMMAND, 500, "5.5.1", "");
    expect(REPLY_SYNTAX, 501, "5.5.4", "");
    expect(REPLY_BAD_SEQUENCE, 503, "5.5.1", "");
    expect(REPLY_TOO_MANY_ERRORS, 421, "4.7.0", "");
    expect(REPLY_OK, 250, "2.0.0", "OK");
    expect(REPLY_VRFY, 252, "2.5.0", "");
    expect(REPLY_BAD_SENDER_SYNTAX, 501, "5.1.7", "");
    expect(REPLY_BAD_RCPT_SYNTAX, 501, "5.1.3", "");
    expect(REPLY_UNKNOWN_PARAMETER, 555, "5.5.4", "");
    expect(REPLY_UTF8_NOT_DECLARED, 553, "5.6.7", "");
    const enum reply_id data_errors[] = {REPLY_DATA_BARE_LF, REPLY_DATA_BARE_CR,
                                         REPLY_DATA_LINE_TOO_LONG};
    for (size_t i = 0; i < 3; i++) {
        const struct reply_entry *e = &reply_catalogue[data_errors[i]];
        assert_int_equal(e->code, 550);
        assert_non_null(e->enhanced);
        assert_memory_equal(e->enhanced, "5.6.", 4);
    }
    assert_int_equal(reply_catalogue[REPLY_START_DATA].code, 354);
    assert_null(reply_catalogue[REPLY_START_DATA].enhanced);
}

static void test_class_agrees(void **state)
{
    (void)state;
    assert_true(reply_class_agrees(235, "2.7.0"));
    assert_true(reply_class_agrees(535, "5.7.3"));
    assert_true(reply_class_agrees(535, "5.7.139"));
    assert_true(reply_class_agrees(452, "4.5.3"));
    assert_true(reply_class_agrees(550, "5.999.999"));
    assert_false(reply_class_agrees(535, "4.7.3"));
    assert_false(reply_class_agrees(535, "2.7.3"));
    assert_false(reply_class_agrees(452, "5.5.3"));
    assert_false(reply_class_agrees(250, "5.0.0"));
    assert_false(reply_class_agrees(354, "3.0.0")); /* class 3 does not exist */
    assert_false(reply_class_agrees(199, "1.0.0"));
    assert_false(reply_class_agrees(600, "6.0.0"));
    assert_false(reply_class_agrees(550, NULL));
    assert_false(reply_class_agrees(550, ""));
    assert_false(reply_class_agrees(550, "5"));
    assert_false(reply_class_agrees(550, "5."));
    assert_false(reply_class_agrees(550, "5.1"));
    assert_false(reply_class_agrees(550, "5.1."));
    assert_false(reply_class_agrees(550, "5..1"));
    assert_false(reply_class_agrees(550, "5.1000.1"));
    assert_false(reply_class_agrees(550, "5.1.1000"));
    assert_false(reply_class_agrees(550, "5.1.1 "));
    assert_false(reply_class_agrees(550, "5.1.1.1"));
    assert_false(reply_class_agrees(550, "5.a.1"));
    assert_false(reply_class_agrees(550, "5-1-1"));
    assert_false(reply_class_agrees(550, "55.1.1"));
}

static void test_format(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = reply_format(buf, sizeof buf, 535, "5.7.3", UNSUCCESSFUL, "[h 1 X]", false);
    assert_string_equal(buf, "535 5.7.3 Authentication unsuccessful [h 1 X]\r\n");
    assert_int_equal(n, strlen(buf));
    n = reply_format(buf, sizeof buf, 250, "2.0.0", "first", NULL, true);
    assert_string_equal(buf, "250-2.0.0 first\r\n");
    n = reply_format(buf, sizeof buf, 250, "2.0.0", "last", "", false);
    assert_string_equal(buf, "250 2.0.0 last\r\n");
    n = reply_format(buf, sizeof buf, 354, NULL, "Go ahead", NULL, false);
    assert_string_equal(buf, "354 Go ahead\r\n");

    /* a 535 with a 4.x.x (or any disagreement) is refused */
    assert_int_equal(reply_format(buf, sizeof buf, 535, "4.7.3", UNSUCCESSFUL, NULL, false), 0);
    assert_int_equal(reply_format(buf, sizeof buf, 451, "5.3.0", "x", NULL, false), 0);
    assert_int_equal(reply_format(buf, sizeof buf, 550, "5.7", "x", NULL, false), 0);
    /* errors must carry an enhanced code */
    assert_int_equal(reply_format(buf, sizeof buf, 550, NULL, "x", NULL, false), 0);
    assert_int_equal(reply_format(buf, sizeof buf, 421, NULL, "x", NULL, false), 0);

    /* 512 octets including CRLF is the most (RFC 5321 4.5.3.1.5) */
    char text[600];
    memset(text, 'a', 500);
    text[500] = '\0'; /* "550 5.7.1 " (10) + 500 + CRLF = 512 */
    n = reply_format(buf, sizeof buf, 550, "5.7.1", text, NULL, false);
    assert_int_equal(n, 512);
    text[500] = 'a';
    text[501] = '\0';
    assert_int_equal(reply_format(buf, sizeof buf, 550, "5.7.1", text, NULL, false), 0);
    /* the reference counts too */
    text[492] = '\0'; /* 10 + 492 + " [h x ID]" (9) + 2 = 513 */
    assert_int_equal(reply_format(buf, sizeof buf, 550, "5.7.1", text, "[h x ID]", false), 0);
    text[491] = '\0';
    assert_int_equal(reply_format(buf, sizeof buf, 550, "5.7.1", text, "[h x ID]", false), 512);

    /* a buffer too small is refused, not overrun */
    char small[16];
    memset(small, 'Z', sizeof small);
    assert_int_equal(reply_format(small, 10, 250, "2.0.0", "OK", NULL, false), 0);
    assert_int_equal(small[10], 'Z');
    assert_int_equal(reply_format(small, 16, 250, "2.0.0", "OK", NULL, false), 14);
    assert_int_equal(reply_format(small, 14, 250, "2.0.0", "OK", NULL, false), 0);
}

static void test_reference(void **state)
{
    (void)state;
    char buf[128];
    size_t n =
        reply_reference(buf, sizeof buf, "mx1.submit.example", 1795827597214LL, "08DBB276B7E699C4");
    assert_string_equal(buf, "[mx1.submit.example 2026-11-28T00:59:57.214Z 08DBB276B7E699C4]");
    assert_int_equal(n, strlen(buf));
    /* milliseconds zero-padded, leap day */
    reply_reference(buf, sizeof buf, "h", 951865509005LL, "ID");
    assert_string_equal(buf, "[h 2000-02-29T23:05:09.005Z ID]");
    reply_reference(buf, sizeof buf, "h", 0, "0000000000000000");
    assert_string_equal(buf, "[h 1970-01-01T00:00:00.000Z 0000000000000000]");
    /* too small a buffer */
    assert_int_equal(reply_reference(buf, 20, "h", 0, "ID"), 0);
    assert_int_equal(reply_reference(buf, 31, "h", 951865509005LL, "ID"), 0);
    assert_int_equal(reply_reference(buf, 32, "h", 951865509005LL, "ID"), 31);
}

static void test_new_id(void **state)
{
    (void)state;
    char first[REF_ID_LEN + 1], id[REF_ID_LEN + 1];
    bool differs = false;
    reply_new_id(first);
    for (int k = 0; k < 200; k++) {
        memset(id, 'z', sizeof id);
        reply_new_id(id);
        assert_int_equal(strlen(id), REF_ID_LEN);
        assert_int_equal(REF_ID_LEN, 16);
        for (int i = 0; i < REF_ID_LEN; i++)
            if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
                fail_msg("id %s is not uppercase hex", id);
        if (strcmp(id, first) != 0)
            differs = true;
    }
    assert_true(differs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue_consistent),
        cmocka_unit_test(test_spec_auth_replies),
        cmocka_unit_test(test_spec_other_replies),
        cmocka_unit_test(test_class_agrees),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_new_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
