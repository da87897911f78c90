/* fuzz_address_list.c: libFuzzer target for the From: address-list parser
 * (src/address_list.c). Invariants (abort() on violation): on success there are 1 to
 * ADDRESS_LIST_MAX addresses, each NUL-terminated within SMTP_PATH_MAX octets, non-empty and
 * holding an '@'; on failure the count is meaningless but nothing was written out of bounds.
 * Parsing is deterministic: a second parse gives the same list. RFC 5322 3.2-3.4, RFC 6532. */
#include <string.h>

#include "address_list.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct address_list a, b; /* 4 KB each */
    memset(&a, 0xa5, sizeof a);      /* an unterminated result shows */
    int r = address_list_parse((const char *)data, size, &a);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r != 0)
        return 0;
    FUZZ_CHECK(a.n >= 1 && a.n <= ADDRESS_LIST_MAX);
    for (size_t i = 0; i < a.n; i++) {
        size_t n = strnlen(a.addr[i], sizeof a.addr[i]);
        FUZZ_CHECK(n > 0 && n <= SMTP_PATH_MAX);
        FUZZ_CHECK(memchr(a.addr[i], '@', n) != NULL);
    }
    memset(&b, 0, sizeof b);
    FUZZ_CHECK(address_list_parse((const char *)data, size, &b) == 0 && b.n == a.n);
    for (size_t i = 0; i < a.n; i++)
        FUZZ_CHECK(strcmp(a.addr[i], b.addr[i]) == 0);
    return 0;
}
