/* test_netmask.c: address and CIDR parsing, IPv4-mapped IPv6 handling, matching, formatting,
 * list parsing (src/netmask.c; RFC 4632, RFC 4291). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "netmask.h"

static struct netaddr addr(const char *s)
{
    struct netaddr a;
    assert_int_equal(netaddr_parse(s, &a), 0);
    return a;
}

static struct netmask mask(const char *s)
{
    struct netmask m;
    assert_int_equal(netmask_parse(s, &m), 0);
    return m;
}

static void test_addr_parse(void **state)
{
    (void)state;
    struct netaddr a = addr("192.0.2.1");
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.bytes, "\xc0\x00\x02\x01", 4);

    a = addr("2001:db8::1");
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.bytes[0], 0x20);
    assert_int_equal(a.bytes[1], 0x01);
    assert_int_equal(a.bytes[15], 0x01);

    /* RFC 4291 2.5.5.2: the mapped form becomes the IPv4 address it carries */
    a = addr("::ffff:192.0.2.1");
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.bytes, "\xc0\x00\x02\x01", 4);
    a = addr("::FFFF:c000:0201");
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.bytes, "\xc0\x00\x02\x01", 4);

    const char *bad[] = {"",         "192.0.2",        "192.0.2.256",  "192.0.2.1/32", "1.2.3.4 ",
                         " 1.2.3.4", "2001:db8::1::2", "fe80::1%eth0", "host.example", "01.2.3.4",
                         "::g"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct netaddr x = {.family = 99};
        assert_int_equal(netaddr_parse(bad[i], &x), -1);
        assert_int_equal(x.family, 99); /* untouched on error */
    }
    assert_int_equal(netaddr_parse(NULL, &a), -1);
}

static void test_mask_parse(void **state)
{
    (void)state;
    struct netmask m = mask("192.0.2.0/24");
    assert_int_equal(m.addr.family, AF_INET);
    assert_int_equal(m.prefix, 24);

    m = mask("10.1.2.3");
    assert_int_equal(m.prefix, 32);
    m = mask("2001:db8::1");
    assert_int_equal(m.prefix, 128);
    m = mask("2001:db8::/32");
    assert_int_equal(m.addr.family, AF_INET6);
    assert_int_equal(m.prefix, 32);
    m = mask("0.0.0.0/0");
    assert_int_equal(m.prefix, 0);
    m = mask("::/0");
    assert_int_equal(m.prefix, 0);
    assert_int_equal(m.addr.family, AF_INET6);

    /* mapped networks become IPv4 networks */
    m = mask("::ffff:10.0.0.0/104");
    assert_int_equal(m.addr.family, AF_INET);
    assert_int_equal(m.prefix, 8);
    m = mask("::ffff:0.0.0.0/96");
    assert_int_equal(m.addr.family, AF_INET);
    assert_int_equal(m.prefix, 0);

    const char *bad[] = {
        "10.0.0.1/8",        /* host bits set: a typo, not silently widened */
        "192.0.2.128/24",    /* host bits set */
        "2001:db8::1/32",    /* host bits set */
        "192.0.2.0/33",      /* prefix out of range */
        "2001:db8::/129",    /* prefix out of range */
        "192.0.2.0/",        /* empty prefix */
        "192.0.2.0/-1",      /* sign */
        "192.0.2.0/+24",     /* sign */
        "192.0.2.0/024",     /* leading zero */
        "192.0.2.0/24/",     /* junk */
        "192.0.2.0/2x",      /* junk */
        "/24",               /* no address */
        "",                  /* empty */
        "::ffff:0.0.0.0/95", /* mapped prefix shorter than the mapping */
        "example.com/24",    /* not numeric */
        "2001:0db8:0000:0000:0000:0000:0000:0000:0000/128", /* too long */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct netmask x;
        if (netmask_parse(bad[i], &x) != -1)
            fail_msg("netmask_parse accepted '%s'", bad[i]);
    }
}

static void test_contains(void **state)
{
    (void)state;
    struct netmask m = mask("192.0.2.0/24");
    struct netaddr in = addr("192.0.2.200"), out = addr("192.0.3.1");
    assert_true(netmask_contains(&m, &in));
    assert_false(netmask_contains(&m, &out));
    struct netaddr mapped = addr("::ffff:192.0.2.7");
    assert_true(netmask_contains(&m, &mapped));

    /* an address built from a sockaddr may still be in mapped form: matched as IPv4 */
    struct netaddr raw = {.family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.9", raw.bytes), 1);
    assert_true(netmask_contains(&m, &raw));

    /* prefix not on a byte boundary */
    m = mask("10.0.0.0/13");
    struct netaddr edge_in = addr("10.7.255.255"), edge_out = addr("10.8.0.0");
    assert_true(netmask_contains(&m, &edge_in));
    assert_false(netmask_contains(&m, &edge_out));

    /* /0 matches its family only */
    m = mask("0.0.0.0/0");
    struct netaddr v6 = addr("2001:db8::1");
    assert_true(netmask_contains(&m, &out));
    assert_false(netmask_contains(&m, &v6));
    m = mask("::/0");
    assert_true(netmask_contains(&m, &v6));
    assert_false(netmask_contains(&m, &out));

    m = mask("2001:db8:8000::/33");
    struct netaddr v6_in = addr("2001:db8:ffff::1"), v6_out = addr("2001:db8:7fff::1");
    assert_true(netmask_contains(&m, &v6_in));
    assert_false(netmask_contains(&m, &v6_out));

    /* host masks */
    m = mask("192.0.2.5");
    struct netaddr five = addr("192.0.2.5"), six = addr("192.0.2.6");
    assert_true(netmask_contains(&m, &five));
    assert_false(netmask_contains(&m, &six));

    struct netaddr none = {0};
    assert_false(netmask_contains(&m, &none));
}

static void test_format(void **state)
{
    (void)state;
    char buf[64];
    struct netaddr a = addr("::ffff:192.0.2.1");
    netaddr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "192.0.2.1");
    a = addr("2001:0db8:0000:0000:0000:0000:0000:0001");
    netaddr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "2001:db8::1"); /* RFC 5952 canonical form */

    struct netmask m = mask("2001:db8::/32");
    netmask_format(&m, buf, sizeof buf);
    assert_string_equal(buf, "2001:db8::/32");
    m = mask("::ffff:10.0.0.0/104");
    netmask_format(&m, buf, sizeof buf);
    assert_string_equal(buf, "10.0.0.0/8");
    m = mask("192.0.2.1");
    netmask_format(&m, buf, sizeof buf);
    assert_string_equal(buf, "192.0.2.1/32");

    /* a short buffer truncates, always terminated */
    char small[5];
    netmask_format(&m, small, sizeof small);
    assert_string_equal(small, "192.");

    struct netaddr none = {0};
    netaddr_format(&none, buf, sizeof buf);
    assert_string_equal(buf, "(none)");

    /* round trip */
    const char *nets[] = {"198.51.100.0/22", "2001:db8:abcd::/48", "0.0.0.0/0", "::/0"};
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        struct netmask x = mask(nets[i]), y;
        netmask_format(&x, buf, sizeof buf);
        assert_string_equal(buf, nets[i]);
        assert_int_equal(netmask_parse(buf, &y), 0);
        assert_memory_equal(&x, &y, sizeof x);
    }
}

static void test_list(void **state)
{
    (void)state;
    struct netmask out[4];
    char bad[64];
    assert_int_equal(
        netmask_parse_list("192.0.2.0/24, 2001:db8::/32  10.0.0.1,,", out, 4, bad, sizeof bad), 3);
    assert_int_equal(out[0].prefix, 24);
    assert_int_equal(out[1].addr.family, AF_INET6);
    assert_int_equal(out[2].prefix, 32);
    assert_string_equal(bad, "");

    assert_int_equal(netmask_parse_list("", out, 4, bad, sizeof bad), 0);
    assert_int_equal(netmask_parse_list(" , ", out, 4, bad, sizeof bad), 0);

    assert_int_equal(netmask_parse_list("192.0.2.0/24,10.0.0.1/8,1.2.3.4", out, 4, bad, sizeof bad),
                     -1);
    assert_string_equal(bad, "10.0.0.1/8");

    /* more entries than room: the first that does not fit is reported */
    assert_int_equal(netmask_parse_list("1.0.0.0/8 2.0.0.0/8 3.0.0.0/8", out, 2, bad, sizeof bad),
                     -1);
    assert_string_equal(bad, "3.0.0.0/8");

    /* an overlong entry is reported (truncated to bad's size), not overflowed */
    char longer[200];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    char tiny[8];
    assert_int_equal(netmask_parse_list(longer, out, 4, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "1111111");
    assert_int_equal(netmask_parse_list("junk", out, 4, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse), cmocka_unit_test(test_mask_parse),
        cmocka_unit_test(test_contains),   cmocka_unit_test(test_format),
        cmocka_unit_test(test_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
