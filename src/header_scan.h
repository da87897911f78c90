/* header_scan.h: streaming scan of a message's header section (RFC 5322 2.2, 3.6) as it is
 * received, so that submission can add Message-ID: and Date: where missing (RFC 6409 8.2, 8.3)
 * at the end of the header section without buffering the message, and read the From: field.
 * Pure: no I/O, no allocation. */
#ifndef SUBMITD_HEADER_SCAN_H
#define SUBMITD_HEADER_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define HEADER_FROM_MAX 998

struct header_scan {
    int state;
    bool in_header; /* still inside the header section */
    bool has_message_id;
    bool has_date;
    bool has_from;
    bool blank_separator; /* the section ended with an empty line (else with a non-field
                           * line or at the end of the message: the inserter adds one) */
    char name[80];        /* field name being read */
    size_t name_len;
    bool capturing_from;
    char from[HEADER_FROM_MAX + 1]; /* unfolded value of the first From: field, truncated */
    size_t from_len;
    bool from_truncated; /* the first From: value was longer than HEADER_FROM_MAX: the caller
                          * must not trust `from` to list every author */
    bool from_multiple;  /* more than one From: field (RFC 5322 3.6 allows one) */
};

void header_scan_init(struct header_scan *h);

/* Scans the next chunk of message bytes (CRLF line ends, already dot-unstuffed). When the
 * header section ends inside this chunk, returns the offset in the chunk where the body
 * separator begins (the first byte of the empty line, or of the first line that is neither a
 * field nor a continuation, in which case there is no empty line) and in_header becomes false;
 * otherwise returns len. Field names are matched case-insensitively. */
size_t header_scan_feed(struct header_scan *h, const char *chunk, size_t len);

#endif
