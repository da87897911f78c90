/* netmask.c: IPv4/IPv6 addresses and CIDR networks for access rules (RFC 4632 classless
 * prefixes, RFC 4291 IPv6 addressing and 2.5.5.2 IPv4-mapped addresses, RFC 5952 text form via
 * inet_ntop). Pure functions: parse, format, match. An IPv4-mapped IPv6 address is always
 * reduced to the IPv4 address it carries, so one rule matches a client however it connected. */
#include "netmask.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Longest text we accept for one address or network: an IPv6 address with an embedded IPv4
 * address (INET6_ADDRSTRLEN includes the NUL) plus "/128". */
#define NETMASK_TEXT_MAX (INET6_ADDRSTRLEN + 4)

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* Reduces ::ffff:a.b.c.d to a.b.c.d in place (RFC 4291 2.5.5.2). */
static void netaddr_unmap(struct netaddr *a)
{
    if (a->family != AF_INET6 || memcmp(a->bytes, v4_mapped_prefix, 12) != 0)
        return;
    uint8_t v4[4];
    memcpy(v4, a->bytes + 12, 4);
    memset(a->bytes, 0, sizeof a->bytes);
    memcpy(a->bytes, v4, 4);
    a->family = AF_INET;
}

int netaddr_parse(const char *s, struct netaddr *out)
{
    struct netaddr a;
    memset(&a, 0, sizeof a);
    if (s == NULL || *s == '\0')
        return -1;
    if (inet_pton(AF_INET, s, a.bytes) == 1) {
        a.family = AF_INET;
    } else if (inet_pton(AF_INET6, s, a.bytes) == 1) {
        a.family = AF_INET6;
        netaddr_unmap(&a);
    } else {
        return -1;
    }
    *out = a;
    return 0;
}

/* True when every bit of a.bytes after the first `prefix` bits is zero. */
static bool host_bits_clear(const struct netaddr *a, unsigned prefix)
{
    unsigned total = family_bits(a->family);
    for (unsigned bit = prefix; bit < total; bit++)
        if (a->bytes[bit / 8] & (0x80u >> (bit % 8)))
            return false;
    return true;
}

/* Parses a prefix length: 1 to 3 decimal digits, no sign, no leading zero except "0". */
static int parse_prefix(const char *s, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int netmask_parse(const char *s, struct netmask *out)
{
    if (s == NULL)
        return -1;
    size_t len = strlen(s);
    if (len == 0 || len >= NETMASK_TEXT_MAX)
        return -1;
    char text[NETMASK_TEXT_MAX];
    memcpy(text, s, len + 1);

    char *slash = strchr(text, '/');
    bool has_prefix = slash != NULL;
    if (has_prefix)
        *slash = '\0';

    /* Parse without unmapping first, so a mapped network's prefix can be converted. */
    struct netmask m;
    memset(&m, 0, sizeof m);
    if (inet_pton(AF_INET, text, m.addr.bytes) == 1)
        m.addr.family = AF_INET;
    else if (inet_pton(AF_INET6, text, m.addr.bytes) == 1)
        m.addr.family = AF_INET6;
    else
        return -1;

    unsigned prefix = family_bits(m.addr.family);
    if (has_prefix &&
        (parse_prefix(slash + 1, &prefix) != 0 || prefix > family_bits(m.addr.family)))
        return -1;

    if (m.addr.family == AF_INET6 && memcmp(m.addr.bytes, v4_mapped_prefix, 12) == 0) {
        /* ::ffff:a.b.c.d/P names IPv4 space only when P covers the whole mapped prefix. */
        if (prefix < 96)
            return -1;
        netaddr_unmap(&m.addr);
        prefix -= 96;
    }
    if (!host_bits_clear(&m.addr, prefix))
        return -1;
    m.prefix = prefix;
    *out = m;
    return 0;
}

bool netmask_contains(const struct netmask *m, const struct netaddr *a)
{
    struct netaddr c = *a;
    netaddr_unmap(&c);
    if (c.family == 0 || c.family != m->addr.family || m->prefix > family_bits(c.family))
        return false;
    unsigned whole = m->prefix / 8, rest = m->prefix % 8;
    if (memcmp(c.bytes, m->addr.bytes, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c.bytes[whole] & mask) == (m->addr.bytes[whole] & mask);
}

void netaddr_format(const struct netaddr *a, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    struct netaddr c = *a;
    netaddr_unmap(&c);
    if (c.family != AF_INET && c.family != AF_INET6) {
        snprintf(buf, cap, "(none)");
        return;
    }
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(c.family, c.bytes, text, sizeof text) == NULL)
        return; /* cannot happen: text is large enough for either family */
    snprintf(buf, cap, "%s", text);
}

void netmask_format(const struct netmask *m, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    char addr[INET6_ADDRSTRLEN];
    netaddr_format(&m->addr, addr, sizeof addr);
    snprintf(buf, cap, "%s/%u", addr, m->prefix);
}

static bool is_separator(char ch)
{
    return ch == ',' || ch == ' ' || ch == '\t';
}

int netmask_parse_list(const char *s, struct netmask *out, size_t max, char *bad, size_t badcap)
{
    size_t n = 0;
    if (bad != NULL && badcap > 0)
        bad[0] = '\0';
    if (s == NULL)
        return 0;
    const char *p = s;
    for (;;) {
        while (is_separator(*p))
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        while (*p != '\0' && !is_separator(*p))
            p++;
        size_t len = (size_t)(p - start);
        char entry[NETMASK_TEXT_MAX];
        bool ok = len < sizeof entry && n < max;
        if (ok) {
            memcpy(entry, start, len);
            entry[len] = '\0';
            ok = netmask_parse(entry, &out[n]) == 0;
        }
        if (!ok) {
            if (bad != NULL && badcap > 0)
                snprintf(bad, badcap, "%.*s", (int)len, start);
            return -1;
        }
        n++;
    }
    return (int)n;
}
