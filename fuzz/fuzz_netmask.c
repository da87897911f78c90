/* fuzz_netmask.c: libFuzzer target for address and network parsing (src/netmask.c):
 * netmask_parse_list of the input (as a C string), and netaddr_parse / netmask_parse of it alone.
 * Invariants (abort() on violation): the count is -1 or 0..max; prefixes are within 32/128 with
 * no host bits; every network contains its own address; formatting then parsing gives the same
 * address or network back (round trip). RFC 4632, RFC 4291, RFC 5952. */
#include <string.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "netmask.h"

#define LIST_MAX 8

static void check_mask(const struct netmask *m)
{
    FUZZ_CHECK(m->addr.family == AF_INET || m->addr.family == AF_INET6);
    FUZZ_CHECK(m->prefix <= (m->addr.family == AF_INET ? 32u : 128u));
    FUZZ_CHECK(netmask_contains(m, &m->addr));
    char text[64];
    netmask_format(m, text, sizeof text);
    struct netmask back;
    memset(&back, 0, sizeof back);
    FUZZ_CHECK(netmask_parse(text, &back) == 0);
    FUZZ_CHECK(back.addr.family == m->addr.family && back.prefix == m->prefix);
    FUZZ_CHECK(memcmp(back.addr.bytes, m->addr.bytes, m->addr.family == AF_INET ? 4 : 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    struct netmask list[LIST_MAX];
    char bad[64];
    memset(bad, 0xa5, sizeof bad);
    int n = netmask_parse_list(s, list, LIST_MAX, bad, sizeof bad);
    FUZZ_CHECK(n >= -1 && n <= LIST_MAX);
    if (n == -1)
        FUZZ_CHECK(memchr(bad, '\0', sizeof bad) != NULL);
    for (int i = 0; i < n; i++)
        check_mask(&list[i]);

    struct netmask m;
    if (netmask_parse(s, &m) == 0)
        check_mask(&m);
    struct netaddr a;
    if (netaddr_parse(s, &a) == 0) {
        FUZZ_CHECK(a.family == AF_INET || a.family == AF_INET6);
        char text[64];
        netaddr_format(&a, text, sizeof text);
        struct netaddr back;
        memset(&back, 0, sizeof back);
        FUZZ_CHECK(netaddr_parse(text, &back) == 0 && back.family == a.family);
        FUZZ_CHECK(memcmp(back.bytes, a.bytes, a.family == AF_INET ? 4 : 16) == 0);
    }
    free(s);
    return 0;
}
