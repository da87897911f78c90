/* test_address_list.c: the From: address-list parser. A table of valid and invalid values with the
 * addresses each must yield (display names, quoted strings, comments, groups, obsolete forms,
 * UTF-8), hostile values (display-name spoofing, addresses in comments and quoted strings,
 * escapes, CR/LF remnants, NUL bytes, malformed UTF-8), and the limits: 16 addresses, 256-octet
 * addresses, comments nested 8 deep, an input that is not NUL-terminated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "address_list.h"

#define BAD NULL /* marks an invalid value: expect -1 */

struct parse_case {
    const char *in;
    size_t len;                             /* 0: strlen(in) */
    const char *want[ADDRESS_LIST_MAX + 1]; /* expected addresses, NULL-terminated */
    int rc;                                 /* 0 or -1 */
};

#define OK(in, ...)                                                                                \
    {                                                                                              \
        (in), 0, {__VA_ARGS__, NULL}, 0                                                            \
    }
#define FAIL(in)                                                                                   \
    {                                                                                              \
        (in), 0, {NULL}, -1                                                                        \
    }
/* A literal with embedded NUL bytes: its length comes from sizeof. */
#define FAIL_BYTES(lit)                                                                            \
    {                                                                                              \
        (lit), sizeof(lit) - 1, {NULL}, -1                                                         \
    }

static const struct parse_case cases[] = {
    /* the forms named in the interface */
    OK("Alice <alice@example.com>", "alice@example.com"),
    OK("alice@example.com", "alice@example.com"),
    OK("\"Smith, Al\" <al@example.com>, bob@example.com", "al@example.com", "bob@example.com"),
    OK("(comment) a@b.example (c)", "a@b.example"),
    OK("Team: a@b.example, c@d.example;", "a@b.example", "c@d.example"),
    OK("\"john doe\"@example.com", "\"john doe\"@example.com"),
    OK("Al <\"john doe\"@example.com>", "\"john doe\"@example.com"),
    /* whitespace and CFWS wherever RFC 5322 allows it */
    OK("<alice@example.com>", "alice@example.com"),
    OK("  alice@example.com \t ", "alice@example.com"),
    OK("Alice\t<alice@example.com>", "alice@example.com"),
    OK("Alice<alice@example.com>", "alice@example.com"),
    OK("a (x) @ (y) b.example", "a@b.example"),
    OK("Alice < alice@example.com >", "alice@example.com"),
    OK("\"john doe\" @example.com", "\"john doe\"@example.com"),
    OK("Alice <a@b.example> (work), Bob <b@c.example>", "a@b.example", "b@c.example"),
    OK("a@b.example (\\) still (nested) comment)", "a@b.example"),
    OK("(1(2(3(4(5(6(7(8)))))))) a@b.example", "a@b.example"),
    /* display names */
    OK("John Q. Public <jqp@example.com>", "jqp@example.com"),
    OK("\"\" <a@b.example>", "a@b.example"),
    OK("=?utf-8?q?J=C3=B6rg?= <jorg@example.com>", "jorg@example.com"),
    OK("J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc"
       "cher.example>",
       "j\xc3\xb6rg@b\xc3\xbc"
       "cher.example"),
    OK("\"\xe6\x9d\x8e\xe5\x9b\x9b\" <\xe6\x9d\x8e@example.com>", "\xe6\x9d\x8e@example.com"),
    /* addresses in other forms */
    OK("a@[192.0.2.1]", "a@[192.0.2.1]"),
    OK("Lit <a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]"),
    OK("<@relay.example,@r2.example:user@example.com>", "user@example.com"),
    OK("\"a,b <c@d.example>\"@example.com", "\"a,b <c@d.example>\"@example.com"),
    OK("\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com"),
    OK("first.last+tag@sub.example.com", "first.last+tag@sub.example.com"),
    /* groups and the empty elements of the obsolete list syntax */
    OK("Team:;, a@b.example", "a@b.example"),
    OK("Team: ;, Other: (none) ;, a@b.example", "a@b.example"),
    OK("Team: , a@b.example, , ;", "a@b.example"),
    OK("Team: Alice <a@b.example>, \"x;y\" <c@d.example>; , e@f.example", "a@b.example",
       "c@d.example", "e@f.example"),
    OK("Team: a@b.example; (after)", "a@b.example"),
    OK(", a@b.example,, c@d.example,", "a@b.example", "c@d.example"),
    /* hostile: display-name spoofing, addresses inside comments and quoted strings */
    OK("a@b.example <evil@x.example>", "evil@x.example"),
    OK("\"a@b.example\" <evil@x.example>", "evil@x.example"),
    OK("a@b.example@c.example <evil@x.example>", "evil@x.example"),
    OK("\"<a@b.example>\" <evil@x.example>", "evil@x.example"),
    OK("\"Boss, <a@b.example>\" <evil@x.example>", "evil@x.example"),
    OK("\"Smith \\\"Al\\\" <x@y.example>\" <al@example.com>", "al@example.com"),
    OK("(a@b.example) evil@x.example", "evil@x.example"),
    OK("evil@x.example (<a@b.example>)", "evil@x.example"),
    OK("Alice (x@y.example, <z@w.example>) <alice@example.com>", "alice@example.com"),
    OK("<@a.example:evil@x.example>", "evil@x.example"),
    FAIL("<evil@x.example> a@b.example"),
    FAIL("Alice <a@b.example> <evil@x.example>"),
    FAIL("a@b.example evil@x.example"),
    FAIL("a@b.example, \"unterminated <evil@x.example>"),
    FAIL("\"\\\"@x.example"),
    FAIL("a\\@b.example@x.example"),
    FAIL("Smith, Al <al@example.com>"),
    FAIL("\"a@b.example\""),
    FAIL("a@b.example <>"),
    FAIL("<<a@b.example>>"),
    FAIL("<a@b.example>>"),
    FAIL("Alice <a@b.example> x"),
    /* CR/LF remnants, NUL and other control bytes, malformed UTF-8 */
    FAIL("a@b.example\r\n"),
    FAIL("Alice\r\n <a@b.example>"),
    FAIL("a@b.example\n, evil@x.example"),
    FAIL("a@b.example\r"),
    FAIL("\"A\r\nB\" <a@b.example>"),
    FAIL_BYTES("a@b.example\0evil@x.example"),
    FAIL_BYTES("\"A\0\" <a@b.example>"),
    FAIL_BYTES("a@b.example (\0)"),
    FAIL_BYTES("\0"),
    FAIL("a@b.example\x7f"),
    FAIL("\x01"
         "a@b.example"),
    FAIL("a@b.ex\x1b"
         "ample"),
    FAIL("\xc3(@b.example"),
    FAIL("\xc0\xae@b.example"),
    FAIL("\xed\xa0\x80@b.example"),
    FAIL("\xf4\x90\x80\x80@b.example"),
    FAIL("a@b.example (\xff)"),
    FAIL("\"\xe6\x9d\" <a@b.example>"),
    /* empty lists */
    FAIL(""),
    FAIL("   "),
    FAIL("(just a comment)"),
    FAIL(",,,"),
    FAIL("Team:;"),
    FAIL("Team: , ;"),
    FAIL("undisclosed-recipients:;, , Other:;"),
    /* unbalanced quotes, brackets, comments; nesting */
    FAIL("\"Alice <a@b.example>"),
    FAIL("Alice <a@b.example"),
    FAIL("Alice a@b.example>"),
    FAIL("(comment a@b.example"),
    FAIL("a@b.example (c))"),
    FAIL("a@b.example (nested (comment) paren"),
    FAIL("(1(2(3(4(5(6(7(8(9))))))))) a@b.example"),
    FAIL("a@[192.0.2.1"),
    FAIL("a@192.0.2.1]"),
    FAIL("a@[]"),
    FAIL("a@[1.2 .3.4]"),
    FAIL("Team: a@b.example"),
    FAIL("A: B: a@b.example;;"),
    FAIL("a@b.example; c@d.example"),
    FAIL("a@b.example:"),
    FAIL("Alice <a@b.example>;"),
    FAIL("Team: a@b.example;;"),
    FAIL("a@b.example@c.example: x@y.example;"),
    /* malformed addr-specs */
    FAIL("alice"),
    FAIL("Alice <alice>"),
    FAIL("a..b@example.com"),
    FAIL(".a@example.com"),
    FAIL("a.@example.com"),
    FAIL("a . b@example.com"),
    FAIL("a@example.com."),
    FAIL("a@example . com"),
    FAIL("a@"),
    FAIL("@example.com"),
    FAIL("a@@b.example"),
    FAIL("a@b@c.example"),
    FAIL("\"a\"b@example.com"),
    FAIL("<@relay.example user@example.com>"),
    FAIL("<@:user@example.com>"),
};

static void check_case(const struct parse_case *c)
{
    size_t len = c->len ? c->len : strlen(c->in);
    struct address_list out;
    memset(&out, 0x5a, sizeof out); /* garbage: the parser must set n */
    int rc = address_list_parse(c->in, len, &out);
    if (rc != c->rc)
        fail_msg("\"%s\": returned %d, want %d", c->in, rc, c->rc);
    if (rc != 0) {
        assert_int_equal(out.n, 0);
        return;
    }
    size_t want_n = 0;
    while (c->want[want_n])
        want_n++;
    if (out.n != want_n)
        fail_msg("\"%s\": %zu addresses, want %zu", c->in, out.n, want_n);
    for (size_t i = 0; i < want_n; i++)
        if (strcmp(out.addr[i], c->want[i]) != 0)
            fail_msg("\"%s\": address %zu is \"%s\", want \"%s\"", c->in, i, out.addr[i],
                     c->want[i]);
}

static void test_table(void **state)
{
    (void)state;
    assert_true(sizeof cases / sizeof cases[0] >= 40);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

/* "a1@b.example, a2@b.example, ..." with n addresses, optionally inside a group. */
static void make_list(char *buf, size_t cap, size_t n, bool group)
{
    size_t off = (size_t)snprintf(buf, cap, "%s", group ? "Team: " : "");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%sa%zu@b.example", i ? ", " : "", i + 1);
    if (group)
        snprintf(buf + off, cap - off, ";");
}

static void test_address_count(void **state)
{
    (void)state;
    char buf[1024];
    struct address_list out;
    for (int g = 0; g < 2; g++) {
        make_list(buf, sizeof buf, ADDRESS_LIST_MAX, g == 1);
        assert_int_equal(address_list_parse(buf, strlen(buf), &out), 0);
        assert_int_equal(out.n, ADDRESS_LIST_MAX);
        assert_string_equal(out.addr[0], "a1@b.example");
        assert_string_equal(out.addr[ADDRESS_LIST_MAX - 1], "a16@b.example");

        make_list(buf, sizeof buf, ADDRESS_LIST_MAX + 1, g == 1);
        assert_int_equal(address_list_parse(buf, strlen(buf), &out), -1);
        assert_int_equal(out.n, 0);
    }
    /* the 17th in a second group counts too */
    make_list(buf, sizeof buf, ADDRESS_LIST_MAX, true);
    strcat(buf, ", Other: x@y.example;");
    assert_int_equal(address_list_parse(buf, strlen(buf), &out), -1);
}

/* An address of total length `total`, with a 64-octet local part. */
static void make_long(char *buf, size_t total, const char *display)
{
    size_t off = (size_t)sprintf(buf, "%s<", display);
    memset(buf + off, 'l', 64);
    off += 64;
    buf[off++] = '@';
    memset(buf + off, 'd', total - 65);
    off += total - 65;
    strcpy(buf + off, ">");
}

static void test_address_length(void **state)
{
    (void)state;
    char buf[600];
    struct address_list out;
    make_long(buf, SMTP_PATH_MAX, "Long ");
    assert_int_equal(address_list_parse(buf, strlen(buf), &out), 0);
    assert_int_equal(out.n, 1);
    assert_int_equal(strlen(out.addr[0]), SMTP_PATH_MAX);
    assert_memory_equal(out.addr[0], buf + 6, SMTP_PATH_MAX);

    make_long(buf, SMTP_PATH_MAX + 1, "Long ");
    assert_int_equal(address_list_parse(buf, strlen(buf), &out), -1);
    assert_int_equal(out.n, 0);
}

/* Only `len` octets are read: the bytes after them are not part of the value. */
static void test_length_bound(void **state)
{
    (void)state;
    struct address_list out;
    const char *s = "a@b.example, evil@x.example";
    assert_int_equal(address_list_parse(s, strlen("a@b.example"), &out), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.addr[0], "a@b.example");

    char unterminated[11];
    memcpy(unterminated, "a@b.example", sizeof unterminated); /* no NUL */
    assert_int_equal(address_list_parse(unterminated, sizeof unterminated, &out), 0);
    assert_string_equal(out.addr[0], "a@b.example");

    /* a cut inside a quoted string, a comment or an angle-addr is unbalanced */
    const char *t = "\"Al\" <al@example.com> (x)";
    assert_int_equal(address_list_parse(t, 3, &out), -1);
    assert_int_equal(address_list_parse(t, strlen(t) - 1, &out), -1);
    assert_int_equal(address_list_parse(t, strlen("\"Al\" <al@example.com"), &out), -1);
    assert_int_equal(address_list_parse(t, 0, &out), -1);
    assert_int_equal(address_list_parse(NULL, 0, &out), -1);
    assert_int_equal(address_list_parse(t, strlen(t), NULL), -1);
}

/* Every prefix of a valid value either fails or yields a prefix of its addresses, never
 * something else (cut values come from truncated header fields). */
static void test_prefixes(void **state)
{
    (void)state;
    const char *s = "\"Smith, Al\" <al@example.com>, (c@d.example) Team: b@c.example;, "
                    "x@y.example <evil@x.example>";
    const char *all[] = {"al@example.com", "b@c.example", "evil@x.example"};
    struct address_list out;
    assert_int_equal(address_list_parse(s, strlen(s), &out), 0);
    assert_int_equal(out.n, 3);
    for (size_t len = 0; len <= strlen(s); len++) {
        if (address_list_parse(s, len, &out) != 0)
            continue;
        assert_true(out.n >= 1 && out.n <= 3);
        for (size_t i = 0; i < out.n; i++) {
            bool cut_last = i == 2 && strncmp(out.addr[i], "x@y.example", strlen(out.addr[i])) == 0;
            if (strcmp(out.addr[i], all[i]) != 0 && !cut_last)
                fail_msg("prefix %zu: address %zu is \"%s\"", len, i, out.addr[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_address_count),
        cmocka_unit_test(test_address_length), cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
