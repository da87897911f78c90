/* address_list.h: pure parser for the addresses a message header field names (the value of
 * From:), so that submission can check every author against what the authenticated mailbox may
 * send as (SPEC 4: header From not allowed, 550 5.7.60 at end of DATA).
 * RFC 5322 3.2-3.4 and 4.4 (address-list, mailbox-list, groups, CFWS, obsolete forms), RFC 6532
 * 3.2 (UTF-8 in header fields), RFC 3629 (well-formed UTF-8). */
#ifndef SUBMITD_ADDRESS_LIST_H
#define SUBMITD_ADDRESS_LIST_H

#include <stddef.h>

#include "protocol_limits.h"

#define ADDRESS_LIST_MAX 16
struct address_list {
    size_t n;
    char addr[ADDRESS_LIST_MAX][SMTP_PATH_MAX + 1];
};

/* Parses an unfolded RFC 5322 3.4 address-list / mailbox-list (the value of From:, after the colon)
 * into the addr-specs it names, in order: "Alice <alice@example.com>", "alice@example.com",
 * "\"Smith, Al\" <al@example.com>, bob@example.com", "(comment) a@b.example (c)", group syntax
 * "Team: a@b.example, c@d.example;", obsolete forms where cheap (obs-local-part with dots/CFWS is
 * not needed). RFC 6532 UTF-8 in display names and addresses is allowed. Quoted local parts are
 * returned with their quotes as written ("\"john doe\"@example.com"). Returns 0, or -1 when the
 * value is not a valid list (unbalanced quotes, brackets or comments, nested comments beyond depth
 * 8, an empty list, no @ in an addr-spec, more than ADDRESS_LIST_MAX addresses, an address longer
 * than SMTP_PATH_MAX). Pure: no I/O, no allocation. */
int address_list_parse(const char *value, size_t len, struct address_list *out);

#endif
