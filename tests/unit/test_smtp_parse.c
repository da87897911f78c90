/* test_smtp_parse.c: command splitting, MAIL/RCPT paths and parameters, mailbox and domain
 * validation (with RFC 6531 UTF-8), EHLO arguments, BDAT arguments and address normalization. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "smtp_parse.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- command line ---- */

static void expect_cmd(const char *line, size_t len, enum smtp_verb verb, const char *arg)
{
    struct smtp_command c;
    smtp_parse_command(line, len, &c);
    assert_int_equal(c.verb, verb);
    assert_int_equal(c.arg_len, strlen(arg));
    if (c.arg_len > 0)
        assert_memory_equal(c.arg, arg, c.arg_len);
}

static void test_command_verbs(void **state)
{
    (void)state;
    for (int v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
        const char *name = smtp_verb_name((enum smtp_verb)v);
        char lower[16];
        size_t n = strlen(name);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        expect_cmd(name, n, (enum smtp_verb)v, "");
        expect_cmd(lower, n, (enum smtp_verb)v, "");
    }
    assert_string_equal(smtp_verb_name(SMTP_VERB_EHLO), "EHLO");
    assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
    assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
    assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
    expect_cmd(S("MaIl FROM:<a@b>"), SMTP_VERB_MAIL, "FROM:<a@b>");
}

static void test_command_arguments(void **state)
{
    (void)state;
    expect_cmd(S("EHLO client.example"), SMTP_VERB_EHLO, "client.example");
    expect_cmd(S("EHLO    client.example   "), SMTP_VERB_EHLO, "client.example");
    expect_cmd(S("EHLO client.example \t "), SMTP_VERB_EHLO, "client.example");
    expect_cmd(S("AUTH PLAIN AHVAAHA="), SMTP_VERB_AUTH, "PLAIN AHVAAHA=");
    expect_cmd(S("DATA "), SMTP_VERB_DATA, "");
    expect_cmd(S("QUIT   "), SMTP_VERB_QUIT, "");
    expect_cmd(S("RCPT TO:<a@b>  NOTIFY=NEVER"), SMTP_VERB_RCPT, "TO:<a@b>  NOTIFY=NEVER");
    expect_cmd(S("NOOP anything"), SMTP_VERB_NOOP, "anything");
}

static void test_command_unknown(void **state)
{
    (void)state;
    expect_cmd(S("MAILX FROM:<a@b>"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S("MAI"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S(""), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S(" MAIL FROM:<a@b>"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S("MAIL\tFROM:<a@b>"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S("GET / HTTP/1.1"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S("STARTTLSX"), SMTP_VERB_UNKNOWN, "");
    /* a NUL anywhere makes the verb unknown */
    expect_cmd(S("MAIL FROM:<a@b>\0"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S("NO\0OP"), SMTP_VERB_UNKNOWN, "");
    expect_cmd(S("QUIT\0"), SMTP_VERB_UNKNOWN, "");
    /* the length is what counts, not a terminating NUL */
    expect_cmd("QUITTER", 4, SMTP_VERB_QUIT, "");
}

/* ---- UTF-8 ---- */

static void test_utf8(void **state)
{
    (void)state;
    assert_true(smtp_utf8_valid(S("")));
    assert_true(smtp_utf8_valid(S("plain ascii")));
    assert_true(smtp_utf8_valid(S("\xc2\x80")));         /* U+0080 */
    assert_true(smtp_utf8_valid(S("\xdf\xbf")));         /* U+07FF */
    assert_true(smtp_utf8_valid(S("\xe0\xa0\x80")));     /* U+0800 */
    assert_true(smtp_utf8_valid(S("\xed\x9f\xbf")));     /* U+D7FF */
    assert_true(smtp_utf8_valid(S("\xee\x80\x80")));     /* U+E000 */
    assert_true(smtp_utf8_valid(S("\xef\xbf\xbf")));     /* U+FFFF */
    assert_true(smtp_utf8_valid(S("\xf0\x90\x80\x80"))); /* U+10000 */
    assert_true(smtp_utf8_valid(S("\xf4\x8f\xbf\xbf"))); /* U+10FFFF */
    assert_true(smtp_utf8_valid(S("\xe4\xbe\x8b\xe3\x81\x88")));

    assert_false(smtp_utf8_valid(S("\x80"))); /* lone continuation */
    assert_false(smtp_utf8_valid(S("\xbf")));
    assert_false(smtp_utf8_valid(S("\xc0\xaf")));         /* overlong '/' */
    assert_false(smtp_utf8_valid(S("\xc1\xbf")));         /* overlong */
    assert_false(smtp_utf8_valid(S("\xe0\x80\xaf")));     /* overlong */
    assert_false(smtp_utf8_valid(S("\xe0\x9f\xbf")));     /* overlong */
    assert_false(smtp_utf8_valid(S("\xf0\x80\x80\xaf"))); /* overlong */
    assert_false(smtp_utf8_valid(S("\xf0\x8f\xbf\xbf"))); /* overlong */
    assert_false(smtp_utf8_valid(S("\xed\xa0\x80")));     /* U+D800 surrogate */
    assert_false(smtp_utf8_valid(S("\xed\xbf\xbf")));     /* U+DFFF surrogate */
    assert_false(smtp_utf8_valid(S("\xf4\x90\x80\x80"))); /* U+110000 */
    assert_false(smtp_utf8_valid(S("\xf5\x80\x80\x80")));
    assert_false(smtp_utf8_valid(S("\xff")));
    assert_false(smtp_utf8_valid(S("\xfe")));
    assert_false(smtp_utf8_valid(S("\xc3")));         /* truncated */
    assert_false(smtp_utf8_valid(S("\xe4\xbe")));     /* truncated */
    assert_false(smtp_utf8_valid(S("\xf0\x90\x80"))); /* truncated */
    assert_false(smtp_utf8_valid(S("\xc3"
                                   "a"))); /* bad continuation */
    assert_false(smtp_utf8_valid(S("\xe4\xbe"
                                   "a")));
    assert_false(smtp_utf8_valid(S("\xf0\x90\x80"
                                   "a")));
    assert_false(smtp_utf8_valid(S("\xe4\xc0\x8b")));
    /* truncation is by length, not by NUL */
    assert_false(smtp_utf8_valid("\xc3\xa9", 1));
}

/* ---- mailboxes ---- */

static bool mb(const char *s, bool utf8)
{
    return smtp_mailbox_valid(s, strlen(s), utf8);
}

static void test_mailbox_valid(void **state)
{
    (void)state;
    const char *good[] = {
        "a@b",
        "user@example.com",
        "first.last@sub.example.co.uk",
        "x!#$%&'*+-/=?^_`{|}~y@example.com",
        "\"john doe\"@example.com",
        "\"a@b\"@example.com",
        "\"quoted\\\"quote\"@example.com",
        "\"back\\\\slash\"@example.com",
        "\"a..b\"@example.com",
        "user@[192.0.2.1]",
        "user@[0.0.0.0]",
        "user@[255.255.255.255]",
        "user@[IPv6:2001:db8::1]",
        "user@[ipv6:::1]",
        "user@[IPv6:::ffff:192.0.2.1]",
        "user@a-b.example",
        "user@123.example",
        "user@localhost",
        "u@x1-y2-z3.example",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!mb(good[i], false) || !mb(good[i], true))
            fail_msg("should be valid: %s", good[i]);
    }
    const char *bad[] = {
        "",
        "@",
        "user",
        "user@",
        "@example.com",
        "a@b@c",
        ".user@example.com",
        "user.@example.com",
        "us..er@example.com",
        "us er@example.com",
        "us(er@example.com",
        "us\"er@example.com",
        "us,er@example.com",
        "user@exa mple.com",
        "user@-example.com",
        "user@example-.com",
        "user@example.com-",
        "user@-",
        "user@example..com",
        "user@.example.com",
        "user@example.com.",
        "user@exa_mple.com",
        "user@exam!ple.com",
        "\"\"@example.com",
        "\"unterminated@example.com",
        "\"a\"b@example.com",
        "\"ctl\x01\"@example.com",
        "\"bad\\\x01\"@example.com",
        "tab\tuser@example.com",
        "user\x7f@example.com",
        "user@[192.0.2.256]",
        "user@[192.0.2]",
        "user@[192.0.2.1.5]",
        "user@[1920.0.2.1]",
        "user@[192.0.2.1",
        "user@192.0.2.1]",
        "user@[]",
        "user@[IPv6:]",
        "user@[IPv6:2001:db8::g]",
        "user@[IPv6:1:2:3:4:5:6:7:8:9]",
        "user@[IPv7:::1]",
        "user@[tag:content]",
        "user@[ 192.0.2.1]",
        "user@[192.0.2.1]x",
        "r\xc3\xa9sum\xc3\xa9@example.com", /* non-ASCII without utf8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mb(bad[i], false))
            fail_msg("should be invalid: %s", bad[i]);
    }
    /* a NUL inside the given length */
    assert_false(smtp_mailbox_valid(S("a\0b@example.com"), false));
    assert_false(smtp_mailbox_valid(S("ab@example.com\0"), false));
}

static void test_mailbox_utf8(void **state)
{
    (void)state;
    assert_true(mb("r\xc3\xa9sum\xc3\xa9@example.com", true));
    assert_true(
        mb("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", true));
    assert_true(mb("user@b\xc3\xbc"
                   "cher.example",
                   true));
    assert_true(mb("\"\xc3\xa9 t\xc3\xa9\"@example.com", true));
    assert_false(mb("user@b\xc3\xbc"
                    "cher.example",
                    false));
    /* malformed UTF-8 is refused even with utf8 */
    assert_false(mb("r\xc0\xa9@example.com", true));
    assert_false(mb("r\xed\xa0\x80@example.com", true));
    assert_false(mb("r\xc3@example.com", true));
    assert_false(mb("user@b\xc3.example", true));
    assert_false(mb("user@b\xf4\x90\x80\x80.example", true));
    assert_false(mb("\xff@example.com", true));
}

/* Builds local@domain with the given lengths (domain made of 63-octet labels as needed). */
static void build_mailbox(char *buf, size_t local, size_t domain)
{
    memset(buf, 'l', local);
    buf[local] = '@';
    char *d = buf + local + 1;
    for (size_t i = 0; i < domain; i++)
        d[i] = (i % 64 == 63) ? '.' : 'd';
    if (domain > 0 && d[domain - 1] == '.')
        d[domain - 1] = 'e';
    d[domain] = '\0';
}

static void test_mailbox_lengths(void **state)
{
    (void)state;
    char buf[600];
    /* local part 64 ok, 65 not */
    build_mailbox(buf, 64, 10);
    assert_true(mb(buf, false));
    build_mailbox(buf, 65, 10);
    assert_false(mb(buf, false));
    /* a quoted local part counts its quotes */
    snprintf(buf, sizeof buf, "\"%062d\"@x.example", 0);
    assert_true(mb(buf, false));
    snprintf(buf, sizeof buf, "\"%063d\"@x.example", 0);
    assert_false(mb(buf, false));
    /* labels: 63 ok, 64 not */
    snprintf(buf, sizeof buf, "u@%0*d.example", 63, 0);
    assert_true(mb(buf, false));
    snprintf(buf, sizeof buf, "u@%0*d.example", 64, 0);
    assert_false(mb(buf, false));
    snprintf(buf, sizeof buf, "u@example.%0*d", 64, 0);
    assert_false(mb(buf, false));
    /* the whole mailbox fits in a 256-octet path with its brackets: 254 octets */
    build_mailbox(buf, 10, 243);
    assert_int_equal(strlen(buf), 254);
    assert_true(mb(buf, false));
    build_mailbox(buf, 10, 244);
    assert_false(mb(buf, false));
}

static void test_domain_length(void **state)
{
    (void)state;
    /* RFC 5321 4.5.3.1.2: 255 octets. Only the EHLO argument can be that long (a mailbox must
     * fit a 256-octet path). */
    char buf[400];
    for (size_t i = 0; i < 255; i++)
        buf[i] = (i % 64 == 63) ? '.' : 'd';
    assert_true(smtp_helo_valid(buf, 255));
    for (size_t i = 0; i < 256; i++)
        buf[i] = (i % 3 == 2) ? '.' : 'd';
    assert_false(smtp_helo_valid(buf, 256));
    /* 255 octets plus the root dot */
    buf[255] = '.';
    for (size_t i = 0; i < 255; i++)
        buf[i] = (i % 3 == 2) ? '.' : 'd';
    buf[254] = 'd';
    assert_true(smtp_helo_valid(buf, 256));
}

/* ---- HELO ---- */

static bool helo(const char *s)
{
    return smtp_helo_valid(s, strlen(s));
}

static void test_helo(void **state)
{
    (void)state;
    assert_true(helo("client.example"));
    assert_true(helo("localhost"));
    assert_true(helo("[192.0.2.1]"));
    assert_true(helo("[IPv6:2001:db8::1]"));
    assert_true(helo("client.example trailing words"));
    assert_true(helo("my_pc.lan"));       /* NetBIOS-style names are common */
    assert_true(helo("client.example.")); /* fully qualified with the root dot */
    assert_true(helo("b\xc3\xbc"
                     "cher.example"));
    assert_false(helo(""));
    assert_false(helo(" client.example"));
    assert_false(helo("."));
    assert_false(helo("client..example"));
    assert_false(helo("-client.example"));
    assert_false(helo("client-.example"));
    assert_false(helo("[192.0.2.300]"));
    assert_false(helo("[192.0.2.1"));
    assert_false(helo("cli\x01"
                      "ent"));
    assert_false(helo("client@example"));
    assert_false(helo("b\xc3"
                      "cher.example"));
    assert_false(smtp_helo_valid(S("client\0.example")));
}

/* ---- MAIL ---- */

static struct smtp_mail_args m;

static enum smtp_param_status mail(const char *s)
{
    return smtp_parse_mail(s, strlen(s), &m);
}

static void test_mail_basic(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a@b.example>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "a@b.example");
    assert_false(m.has_size);
    assert_false(m.smtputf8);
    assert_false(m.has_auth);
    assert_int_equal(m.body, SMTP_BODY_7BIT);

    assert_int_equal(mail("from:<a@b.example>"), SMTP_PARAM_OK);
    assert_int_equal(mail("From:   <a@b.example>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "a@b.example");
    assert_int_equal(mail("FROM:<a@b.example>   "), SMTP_PARAM_OK);

    /* the null reverse-path */
    assert_int_equal(mail("FROM:<>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "");
    assert_int_equal(mail("FROM:<> SIZE=100"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "");
    assert_int_equal(m.size, 100);

    /* quoted local part containing '>' and spaces */
    assert_int_equal(mail("FROM:<\"j> doe\"@b.example> SIZE=1"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "\"j> doe\"@b.example");
    assert_int_equal(mail("FROM:<\"a\\\">\"@b.example>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "\"a\\\">\"@b.example");

    /* address literals */
    assert_int_equal(mail("FROM:<u@[192.0.2.1]>"), SMTP_PARAM_OK);
    assert_int_equal(mail("FROM:<u@[IPv6:2001:db8::1]>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "u@[IPv6:2001:db8::1]");
}

static void test_mail_source_route(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<@a.example,@b.example:user@c.example>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "user@c.example");
    assert_int_equal(mail("FROM:<@a.example:user@c.example>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "user@c.example");
    assert_int_equal(mail("FROM:<@[192.0.2.1],@[IPv6:::1]:user@c.example>"), SMTP_PARAM_OK);
    assert_string_equal(m.address, "user@c.example");
    assert_int_equal(mail("FROM:<@a.example:>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@a.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@:user@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@a.example,:user@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@a.example,b.example:user@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@a..example:user@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@[192.0.2.1]x:user@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<@a.example:bad@@c.example>"), SMTP_PARAM_BAD_ADDRESS);
}

static void test_mail_syntax_errors(void **state)
{
    (void)state;
    assert_int_equal(mail(""), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM "), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM <a@b.example>"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("TO:<a@b.example>"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:a@b.example"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example>x"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example><c@d.example>"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<\"a>@b.example"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:\t<a@b.example>"), SMTP_PARAM_SYNTAX);
    assert_int_equal(smtp_parse_mail(S("FROM:<a@b.example>\0"), &m), SMTP_PARAM_SYNTAX);
    assert_int_equal(smtp_parse_mail(S("FROM:<a\0@b.example>"), &m), SMTP_PARAM_SYNTAX);
}

static void test_mail_bad_address(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<Postmaster>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<a@>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<a b@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<a\x01@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<a@c.example\r>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:< a@c.example>"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<a@c\xc3.example> SMTPUTF8"), SMTP_PARAM_BAD_ADDRESS);

    /* the path limit: 256 octets including the brackets */
    char line[600], addr[400];
    build_mailbox(addr, 10, 243); /* 254 */
    snprintf(line, sizeof line, "FROM:<%s>", addr);
    assert_int_equal(mail(line), SMTP_PARAM_OK);
    assert_string_equal(m.address, addr);
    build_mailbox(addr, 10, 244); /* 255 */
    snprintf(line, sizeof line, "FROM:<%s>", addr);
    assert_int_equal(mail(line), SMTP_PARAM_BAD_ADDRESS);
    /* a source route counts towards the path */
    build_mailbox(addr, 10, 230);
    snprintf(line, sizeof line, "FROM:<@route.example:%s>", addr);
    assert_int_equal(mail(line), SMTP_PARAM_BAD_ADDRESS);
    /* very long junk does not overflow anything */
    memset(addr, 'a', sizeof addr - 1);
    addr[sizeof addr - 1] = '\0';
    snprintf(line, sizeof line, "FROM:<%s>", addr);
    assert_int_equal(mail(line), SMTP_PARAM_BAD_ADDRESS);
}

static void test_mail_size(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a@b.example> SIZE=0"), SMTP_PARAM_OK);
    assert_true(m.has_size);
    assert_int_equal(m.size, 0);
    assert_int_equal(mail("FROM:<a@b.example> size=157286400"), SMTP_PARAM_OK);
    assert_int_equal(m.size, 157286400);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=18446744073709551615"), SMTP_PARAM_OK);
    assert_int_equal(m.size, UINT64_MAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=00000000000000000001"), SMTP_PARAM_OK);
    assert_int_equal(m.size, 1);
    /* 20 digits that overflow, 21 digits, non-digits, no value, twice */
    assert_int_equal(mail("FROM:<a@b.example> SIZE=18446744073709551616"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=99999999999999999999"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=000000000000000000001"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=-1"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=1k"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=+1"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE="), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=1 SIZE=2"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=1=2"), SMTP_PARAM_SYNTAX);
}

static void test_mail_body_and_utf8(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a@b.example> BODY=8BITMIME"), SMTP_PARAM_OK);
    assert_int_equal(m.body, SMTP_BODY_8BITMIME);
    assert_int_equal(mail("FROM:<a@b.example> body=binarymime"), SMTP_PARAM_OK);
    assert_int_equal(m.body, SMTP_BODY_BINARYMIME);
    assert_int_equal(mail("FROM:<a@b.example> BODY=7bit"), SMTP_PARAM_OK);
    assert_int_equal(m.body, SMTP_BODY_7BIT);
    assert_int_equal(mail("FROM:<a@b.example> BODY=8BIT"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> BODY="), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> BODY"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> BODY=7BIT BODY=8BITMIME"), SMTP_PARAM_SYNTAX);

    assert_int_equal(mail("FROM:<a@b.example> SMTPUTF8"), SMTP_PARAM_OK);
    assert_true(m.smtputf8);
    assert_int_equal(mail("FROM:<a@b.example> smtputf8"), SMTP_PARAM_OK);
    assert_true(m.smtputf8);
    assert_int_equal(mail("FROM:<a@b.example> SMTPUTF8=yes"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SMTPUTF8 SMTPUTF8"), SMTP_PARAM_SYNTAX);

    assert_int_equal(mail("FROM:<j\xc3\xb6rg@b\xc3\xbc"
                          "cher.example> SMTPUTF8 BODY=8BITMIME"),
                     SMTP_PARAM_OK);
    assert_string_equal(m.address, "j\xc3\xb6rg@b\xc3\xbc"
                                   "cher.example");
    assert_int_equal(m.body, SMTP_BODY_8BITMIME);
    assert_int_equal(mail("FROM:<j\xc3\xb6rg@x.example>"), SMTP_PARAM_UTF8_UNDECLARED);
    assert_int_equal(mail("FROM:<j\xc3\xb6rg@x.example> BODY=8BITMIME"),
                     SMTP_PARAM_UTF8_UNDECLARED);
    /* malformed UTF-8 is a bad address, declared or not */
    assert_int_equal(mail("FROM:<j\xc0\xb6rg@x.example> SMTPUTF8"), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(mail("FROM:<j\xed\xa0\x80@x.example>"), SMTP_PARAM_BAD_ADDRESS);
}

static void test_mail_auth_and_unknown(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a@b.example> AUTH=<>"), SMTP_PARAM_OK);
    assert_true(m.has_auth);
    assert_string_equal(m.auth, "");
    assert_int_equal(mail("FROM:<a@b.example> AUTH=e+3Dmc2@example.com"), SMTP_PARAM_OK);
    assert_true(m.has_auth);
    assert_string_equal(m.auth, "e=mc2@example.com");
    assert_int_equal(mail("FROM:<a@b.example> auth=a+2Bb@example.com"), SMTP_PARAM_OK);
    assert_string_equal(m.auth, "a+b@example.com");
    /* RFC 3461 4: hexchar is upper-case hex only (one xtext decoder: xtext.c) */
    assert_int_equal(mail("FROM:<a@b.example> auth=a+2bb@example.com"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH=a+2"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH=a+"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH=a+zz"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH=a+00b"), SMTP_PARAM_SYNTAX); /* NUL */
    assert_int_equal(mail("FROM:<a@b.example> AUTH=a+0Db"), SMTP_PARAM_SYNTAX); /* CR */
    assert_int_equal(mail("FROM:<a@b.example> AUTH=a+20b"), SMTP_PARAM_SYNTAX); /* space */
    assert_int_equal(mail("FROM:<a@b.example> AUTH="), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH=<> AUTH=<>"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> AUTH=\xc3\xa9"), SMTP_PARAM_SYNTAX);
    /* AUTH value longer than a path */
    char line[800];
    int n = snprintf(line, sizeof line, "FROM:<a@b.example> AUTH=");
    memset(line + n, 'a', SMTP_PATH_MAX);
    line[n + SMTP_PATH_MAX] = '\0';
    assert_int_equal(mail(line), SMTP_PARAM_OK);
    assert_int_equal(strlen(m.auth), SMTP_PATH_MAX);
    line[n + SMTP_PATH_MAX] = 'a';
    line[n + SMTP_PATH_MAX + 1] = '\0';
    assert_int_equal(mail(line), SMTP_PARAM_SYNTAX);

    /* unknown parameters */
    assert_int_equal(mail("FROM:<a@b.example> MT-PRIORITY=3"), SMTP_PARAM_UNKNOWN);
    assert_int_equal(mail("FROM:<a@b.example> NOTIFY=NEVER"), SMTP_PARAM_UNKNOWN); /* RCPT's */
    assert_int_equal(mail("FROM:<a@b.example> SIZE=10 X-FOO"), SMTP_PARAM_UNKNOWN);
    assert_int_equal(mail("FROM:<a@b.example> SIZES=10"), SMTP_PARAM_UNKNOWN);
    /* malformed keyword or value */
    assert_int_equal(mail("FROM:<a@b.example> -X=1"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> =1"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> X_Y=1"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> SIZE=1\x01"), SMTP_PARAM_SYNTAX);

    /* several, with runs of spaces, in any order */
    assert_int_equal(mail("FROM:<a@b.example>  SMTPUTF8   SIZE=42 BODY=8BITMIME AUTH=<>  "),
                     SMTP_PARAM_OK);
    assert_true(m.smtputf8);
    assert_true(m.has_size);
    assert_int_equal(m.size, 42);
    assert_int_equal(m.body, SMTP_BODY_8BITMIME);
    assert_true(m.has_auth);
}

/* ---- RCPT ---- */

static struct smtp_rcpt_args r;

static enum smtp_param_status rcpt(const char *s, bool utf8)
{
    return smtp_parse_rcpt(s, strlen(s), utf8, &r);
}

static void test_rcpt(void **state)
{
    (void)state;
    assert_int_equal(rcpt("TO:<a@b.example>", false), SMTP_PARAM_OK);
    assert_string_equal(r.address, "a@b.example");
    assert_int_equal(rcpt("to:   <a@b.example>  ", false), SMTP_PARAM_OK);
    assert_string_equal(r.address, "a@b.example");
    assert_int_equal(rcpt("TO:<Postmaster>", false), SMTP_PARAM_OK);
    assert_string_equal(r.address, "Postmaster");
    assert_int_equal(rcpt("TO:<postmaster>", false), SMTP_PARAM_OK);
    assert_int_equal(rcpt("TO:<POSTMASTER>", false), SMTP_PARAM_OK);
    assert_int_equal(rcpt("TO:<postmaster@b.example>", false), SMTP_PARAM_OK);
    assert_int_equal(rcpt("TO:<postmasterx>", false), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(rcpt("TO:<@a.example,@b.example:user@c.example>", false), SMTP_PARAM_OK);
    assert_string_equal(r.address, "user@c.example");
    assert_int_equal(rcpt("TO:<\"john doe\"@example.com>", false), SMTP_PARAM_OK);
    assert_string_equal(r.address, "\"john doe\"@example.com");
    assert_int_equal(rcpt("TO:<u@[192.0.2.1]>", false), SMTP_PARAM_OK);

    assert_int_equal(rcpt("TO:<>", false), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(rcpt("TO:<a>", false), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(rcpt("TO:<a@b..example>", false), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(rcpt("TO:<a@b.example> X-FOO", false), SMTP_PARAM_UNKNOWN);
    assert_int_equal(rcpt("TO:<a@b.example> RET=FULL", false), SMTP_PARAM_UNKNOWN); /* MAIL's */
    assert_int_equal(rcpt("TO:<a@b.example>x", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:a@b.example", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("FROM:<a@b.example>", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO <a@b.example>", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(smtp_parse_rcpt(S("TO:<a@b.example>\0"), false, &r), SMTP_PARAM_SYNTAX);

    /* UTF-8 only when the transaction declared SMTPUTF8 */
    assert_int_equal(rcpt("TO:<j\xc3\xb6rg@x.example>", true), SMTP_PARAM_OK);
    assert_string_equal(r.address, "j\xc3\xb6rg@x.example");
    assert_int_equal(rcpt("TO:<j\xc3\xb6rg@x.example>", false), SMTP_PARAM_UTF8_UNDECLARED);
    assert_int_equal(rcpt("TO:<j\xc3@x.example>", true), SMTP_PARAM_BAD_ADDRESS);
    assert_int_equal(rcpt("TO:<j\xef\xbf\xbf\xed\xbf\xbf@x.example>", true),
                     SMTP_PARAM_BAD_ADDRESS);

    /* path limit */
    char line[600], addr[400];
    build_mailbox(addr, 64, 189); /* 254 */
    snprintf(line, sizeof line, "TO:<%s>", addr);
    assert_int_equal(rcpt(line, false), SMTP_PARAM_OK);
    build_mailbox(addr, 64, 190); /* 255 */
    snprintf(line, sizeof line, "TO:<%s>", addr);
    assert_int_equal(rcpt(line, false), SMTP_PARAM_BAD_ADDRESS);
}

/* ---- DSN parameters (RFC 3461 4) ---- */

/* "KEY=" followed by n copies of c, after prefix. */
static const char *long_param(char *buf, size_t cap, const char *prefix, char c, size_t n)
{
    size_t p = (size_t)snprintf(buf, cap, "%s", prefix);
    assert_true(p + n < cap);
    memset(buf + p, c, n);
    buf[p + n] = '\0';
    return buf;
}

static void test_mail_ret(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a@b.example>"), SMTP_PARAM_OK);
    assert_int_equal(m.ret, SMTP_RET_NONE);
    assert_string_equal(m.envid, "");
    assert_int_equal(mail("FROM:<a@b.example> RET=FULL"), SMTP_PARAM_OK);
    assert_int_equal(m.ret, SMTP_RET_FULL);
    assert_int_equal(mail("FROM:<a@b.example> ret=hdrs"), SMTP_PARAM_OK);
    assert_int_equal(m.ret, SMTP_RET_HDRS);
    assert_int_equal(mail("FROM:<> RET=Hdrs"), SMTP_PARAM_OK);
    assert_int_equal(m.ret, SMTP_RET_HDRS);
    /* unknown value: 555; missing value or repeat: 501 */
    assert_int_equal(mail("FROM:<a@b.example> RET=FOO"), SMTP_PARAM_UNKNOWN);
    assert_int_equal(mail("FROM:<a@b.example> RET=FULLX"), SMTP_PARAM_UNKNOWN);
    assert_int_equal(mail("FROM:<a@b.example> RET=HDR"), SMTP_PARAM_UNKNOWN);
    assert_int_equal(mail("FROM:<a@b.example> RET"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> RET="), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> RET=FULL RET=FULL"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> RET=FULL ret=HDRS"), SMTP_PARAM_SYNTAX);
}

static void test_mail_envid(void **state)
{
    (void)state;
    assert_int_equal(mail("FROM:<a@b.example> ENVID=QQ314159"), SMTP_PARAM_OK);
    assert_string_equal(m.envid, "QQ314159");
    assert_int_equal(m.ret, SMTP_RET_NONE);
    assert_int_equal(mail("FROM:<a@b.example> envid=a+2Bb+3Dc+20d"), SMTP_PARAM_OK);
    assert_string_equal(m.envid, "a+b=c d"); /* space is printable ASCII (4.4) */
    assert_int_equal(mail("FROM:<a@b.example> RET=HDRS ENVID=x SIZE=5"), SMTP_PARAM_OK);
    assert_int_equal(m.ret, SMTP_RET_HDRS);
    assert_string_equal(m.envid, "x");
    assert_int_equal(m.size, 5);
    /* bad xtext */
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+2b"), SMTP_PARAM_SYNTAX); /* lower hex */
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+2"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+G0"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a=b"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID="), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=\xc3\xa9"), SMTP_PARAM_SYNTAX);
    /* decoded text must be printable US-ASCII */
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+0Db"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+00b"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+7Fb"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=a+C3+A9"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=x ENVID=x"), SMTP_PARAM_SYNTAX);
}

static void test_mail_envid_limit(void **state)
{
    (void)state;
    char line[1400];
    /* 100 characters as sent: accepted; 101: refused */
    assert_int_equal(
        mail(long_param(line, sizeof line, "FROM:<a@b.example> ENVID=", 'e', DSN_ENVID_MAX)),
        SMTP_PARAM_OK);
    assert_int_equal(strlen(m.envid), DSN_ENVID_MAX);
    assert_int_equal(
        mail(long_param(line, sizeof line, "FROM:<a@b.example> ENVID=", 'e', DSN_ENVID_MAX + 1)),
        SMTP_PARAM_SYNTAX);
    /* the limit is on the value as sent: 34 "+2B" are 102 characters for 34 decoded */
    size_t p = (size_t)snprintf(line, sizeof line, "FROM:<a@b.example> ENVID=");
    for (int i = 0; i < 34; i++)
        p += (size_t)snprintf(line + p, sizeof line - p, "+2B");
    assert_int_equal(mail(line), SMTP_PARAM_SYNTAX);
    line[p - 3] = '\0'; /* 33 of them: 99 characters */
    assert_int_equal(mail(line), SMTP_PARAM_OK);
    assert_int_equal(strlen(m.envid), 33);
    assert_int_equal(m.envid[32], '+');
}

static void test_rcpt_notify(void **state)
{
    (void)state;
    assert_int_equal(rcpt("TO:<a@b.example>", false), SMTP_PARAM_OK);
    assert_int_equal(r.notify, 0);
    assert_string_equal(r.orcpt, "");
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=NEVER", false), SMTP_PARAM_OK);
    assert_int_equal(r.notify, DSN_NOTIFY_NEVER);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS", false), SMTP_PARAM_OK);
    assert_int_equal(r.notify, DSN_NOTIFY_SUCCESS);
    assert_int_equal(rcpt("TO:<a@b.example> notify=failure,Delay", false), SMTP_PARAM_OK);
    assert_int_equal(r.notify, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=DELAY,SUCCESS,FAILURE", false), SMTP_PARAM_OK);
    assert_int_equal(r.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
    assert_int_equal(rcpt("TO:<postmaster> NOTIFY=never", false), SMTP_PARAM_OK);
    assert_int_equal(r.notify, DSN_NOTIFY_NEVER);
    /* NEVER only alone */
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=NEVER,SUCCESS", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=FAILURE,NEVER", false), SMTP_PARAM_SYNTAX);
    /* repeats and empty elements */
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,SUCCESS", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=NEVER,never", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=,SUCCESS", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,,DELAY", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=,", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS NOTIFY=FAILURE", false),
                     SMTP_PARAM_SYNTAX);
    /* unknown words: 555 */
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=ALWAYS", false), SMTP_PARAM_UNKNOWN);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,FAIL", false), SMTP_PARAM_UNKNOWN);
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS;FAILURE", false), SMTP_PARAM_UNKNOWN);
    /* nothing is kept from a refused command's parameters that a caller might use */
    assert_int_equal(rcpt("TO:<a@b.example> NOTIFY=SUCCESS X-FOO", false), SMTP_PARAM_UNKNOWN);
}

static void test_rcpt_orcpt(void **state)
{
    (void)state;
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a@b.example", false), SMTP_PARAM_OK);
    assert_string_equal(r.orcpt, "rfc822;a@b.example");
    assert_int_equal(r.notify, 0);
    assert_int_equal(
        rcpt("TO:<a@b.example> ORCPT=RFC822;Bob+2BTag@B.example NOTIFY=SUCCESS,FAILURE", false),
        SMTP_PARAM_OK);
    assert_string_equal(r.orcpt, "RFC822;Bob+Tag@B.example"); /* decoded, case kept */
    assert_int_equal(r.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
    assert_int_equal(rcpt("TO:<a@b.example> orcpt=utf-8;j\\x{00F6}rg@x.example", false),
                     SMTP_PARAM_OK);
    assert_string_equal(r.orcpt, "utf-8;j\\x{00F6}rg@x.example");
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a+20b@c", false), SMTP_PARAM_OK);
    assert_string_equal(r.orcpt, "rfc822;a b@c");
    /* decoded UTF-8 is kept; bytes that are not UTF-8 text are not */
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;j+C3+B6rg@x", false), SMTP_PARAM_OK);
    assert_string_equal(r.orcpt, "rfc822;j\xc3\xb6rg@x");
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;j+C3rg@x", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a+0Ab", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a+00b", false), SMTP_PARAM_SYNTAX);
    /* malformed: no addr-type, no ';', no address, addr-type not an atom, bad xtext */
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=a@b.example", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=;a@b.example", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc(822);a@b", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a+2b@b", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a+", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a=b", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT", false), SMTP_PARAM_SYNTAX);
    assert_int_equal(rcpt("TO:<a@b.example> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", false),
                     SMTP_PARAM_SYNTAX);
    /* the SMTPUTF8 rule for the address still applies after parameters */
    assert_int_equal(rcpt("TO:<j\xc3\xb6rg@x.example> NOTIFY=NEVER", false),
                     SMTP_PARAM_UTF8_UNDECLARED);
    assert_int_equal(rcpt("TO:<j\xc3\xb6rg@x.example> NOTIFY=NEVER", true), SMTP_PARAM_OK);
}

static void test_rcpt_orcpt_limit(void **state)
{
    (void)state;
    char line[1400];
    const char *prefix = "TO:<a@b.example> ORCPT=rfc822;";
    size_t type_len = strlen("rfc822;");
    /* the whole value ("rfc822;" included) at most 500 characters as sent */
    assert_int_equal(
        rcpt(long_param(line, sizeof line, prefix, 'x', DSN_ORCPT_MAX - type_len), false),
        SMTP_PARAM_OK);
    assert_int_equal(strlen(r.orcpt), DSN_ORCPT_MAX);
    assert_int_equal(
        rcpt(long_param(line, sizeof line, prefix, 'x', DSN_ORCPT_MAX - type_len + 1), false),
        SMTP_PARAM_SYNTAX);
    /* a long addr-type counts too */
    assert_int_equal(
        rcpt(long_param(line, sizeof line, "TO:<a@b.example> ORCPT=", 't', DSN_ORCPT_MAX), false),
        SMTP_PARAM_SYNTAX); /* and has no ';' */
    /* an ORCPT of 164 "+41" ("A") near the limit, with every NOTIFY word */
    size_t p =
        (size_t)snprintf(line, sizeof line, "TO:<a@b.example> NOTIFY=SUCCESS,FAILURE,DELAY ");
    p += (size_t)snprintf(line + p, sizeof line - p, "ORCPT=rfc822;");
    size_t n = (DSN_ORCPT_MAX - type_len) / 3;
    for (size_t i = 0; i < n; i++)
        p += (size_t)snprintf(line + p, sizeof line - p, "+41");
    assert_int_equal(rcpt(line, false), SMTP_PARAM_OK);
    assert_int_equal(strlen(r.orcpt), type_len + n);
    assert_int_equal(r.orcpt[type_len + n - 1], 'A');
    assert_int_equal(r.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
}

static void test_mail_full_dsn_line(void **state)
{
    (void)state;
    /* every MAIL parameter at once, in any order and case */
    assert_int_equal(mail("FROM:<a@b.example> envid=ID+2B1 SIZE=100 ret=full BODY=8BITMIME "
                          "AUTH=a@b.example SMTPUTF8"),
                     SMTP_PARAM_OK);
    assert_string_equal(m.envid, "ID+1");
    assert_int_equal(m.ret, SMTP_RET_FULL);
    assert_true(m.smtputf8);
    assert_true(m.has_auth);
    assert_int_equal(m.body, SMTP_BODY_8BITMIME);
    /* a malformed parameter after good ones still fails the command */
    assert_int_equal(mail("FROM:<a@b.example> RET=FULL ENVID=a+zz"), SMTP_PARAM_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example> ENVID=ok RET=NONE"), SMTP_PARAM_UNKNOWN);
}

/* ---- BDAT ---- */

static void test_bdat(void **state)
{
    (void)state;
    uint64_t size = 7;
    bool last = true;
    assert_true(smtp_parse_bdat(S("100"), &size, &last));
    assert_int_equal(size, 100);
    assert_false(last);
    assert_true(smtp_parse_bdat(S("0 LAST"), &size, &last));
    assert_int_equal(size, 0);
    assert_true(last);
    assert_true(smtp_parse_bdat(S("42 last"), &size, &last));
    assert_true(last);
    assert_true(smtp_parse_bdat(S("42   Last  "), &size, &last));
    assert_true(last);
    assert_int_equal(size, 42);
    assert_true(smtp_parse_bdat(S("18446744073709551615"), &size, &last));
    assert_int_equal(size, UINT64_MAX);
    assert_false(last);
    assert_true(smtp_parse_bdat(S("7 "), &size, &last));
    assert_false(last);

    size = 7;
    last = false;
    assert_false(smtp_parse_bdat(S(""), &size, &last));
    assert_false(smtp_parse_bdat(S("LAST"), &size, &last));
    assert_false(smtp_parse_bdat(S(" 10"), &size, &last));
    assert_false(smtp_parse_bdat(S("10LAST"), &size, &last));
    assert_false(smtp_parse_bdat(S("10 LASTX"), &size, &last));
    assert_false(smtp_parse_bdat(S("10 LAST x"), &size, &last));
    assert_false(smtp_parse_bdat(S("10 FIRST"), &size, &last));
    assert_false(smtp_parse_bdat(S("-1"), &size, &last));
    assert_false(smtp_parse_bdat(S("1x"), &size, &last));
    assert_false(smtp_parse_bdat(S("18446744073709551616"), &size, &last));
    assert_false(smtp_parse_bdat(S("000000000000000000001"), &size, &last));
    assert_false(smtp_parse_bdat(S("10\tLAST"), &size, &last));
    assert_false(smtp_parse_bdat(S("10 LAST\0"), &size, &last));
    assert_false(smtp_parse_bdat(S("1\0"), &size, &last));
    /* outputs untouched on failure */
    assert_int_equal(size, 7);
    assert_false(last);
}

/* ---- normalization ---- */

static void test_normalize(void **state)
{
    (void)state;
    char out[32];
    assert_true(smtp_address_normalize("John.Doe@Example.COM", out, sizeof out));
    assert_string_equal(out, "john.doe@example.com");
    assert_true(smtp_address_normalize("J\xc3\x96RG@X.example", out, sizeof out));
    assert_string_equal(out, "j\xc3\x96rg@x.example"); /* ASCII only */
    assert_true(smtp_address_normalize("", out, sizeof out));
    assert_string_equal(out, "");
    /* capacity: the NUL must fit */
    assert_true(smtp_address_normalize("abc", out, 4));
    assert_string_equal(out, "abc");
    assert_false(smtp_address_normalize("abcd", out, 4));
    assert_string_equal(out, "");
    assert_false(smtp_address_normalize("a", out, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_verbs),
        cmocka_unit_test(test_command_arguments),
        cmocka_unit_test(test_command_unknown),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_mailbox_valid),
        cmocka_unit_test(test_mailbox_utf8),
        cmocka_unit_test(test_mailbox_lengths),
        cmocka_unit_test(test_domain_length),
        cmocka_unit_test(test_helo),
        cmocka_unit_test(test_mail_basic),
        cmocka_unit_test(test_mail_source_route),
        cmocka_unit_test(test_mail_syntax_errors),
        cmocka_unit_test(test_mail_bad_address),
        cmocka_unit_test(test_mail_size),
        cmocka_unit_test(test_mail_body_and_utf8),
        cmocka_unit_test(test_mail_auth_and_unknown),
        cmocka_unit_test(test_rcpt),
        cmocka_unit_test(test_mail_ret),
        cmocka_unit_test(test_mail_envid),
        cmocka_unit_test(test_mail_envid_limit),
        cmocka_unit_test(test_mail_full_dsn_line),
        cmocka_unit_test(test_rcpt_notify),
        cmocka_unit_test(test_rcpt_orcpt),
        cmocka_unit_test(test_rcpt_orcpt_limit),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
