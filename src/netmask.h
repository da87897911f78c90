/* netmask.h: IPv4/IPv6 addresses and networks (CIDR, RFC 4632, RFC 4291) for access rules.
 * Pure parsers and matching. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as the
 * IPv4 address it carries, so rules match the same client on dual-stack listeners. */
#ifndef SUBMITD_NETMASK_H
#define SUBMITD_NETMASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct netaddr {
    int family; /* AF_INET or AF_INET6; 0 = none */
    uint8_t bytes[16];
};

struct netmask {
    struct netaddr addr; /* host bits cleared */
    unsigned prefix;     /* 0-32 or 0-128 */
};

/* "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (becomes IPv4). Returns 0 or -1. */
int netaddr_parse(const char *s, struct netaddr *out);
/* "192.0.2.0/24", "2001:db8::/32", or a lone address (a /32 or /128). Host bits set in the
 * address are an error (a typo such as 10.0.0.1/8 is refused, not silently widened). */
int netmask_parse(const char *s, struct netmask *out);
bool netmask_contains(const struct netmask *m, const struct netaddr *a);
void netaddr_format(const struct netaddr *a, char *buf, size_t cap);
void netmask_format(const struct netmask *m, char *buf, size_t cap);

/* Parses a comma- or space-separated list of networks into out (at most max). Returns the
 * number parsed, or -1 on the first bad entry (its text copied to bad, if not NULL). */
int netmask_parse_list(const char *s, struct netmask *out, size_t max, char *bad, size_t badcap);

#endif
