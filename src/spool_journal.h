/* spool_journal.h: the journal record format (docs/spool.md, "Journal"), pure functions that
 * encode and decode it, exported for the unit tests. A record is a 70-octet header line
 *   "J2 " ID(16) " " LENGTH(16 hex) " " CHECK(32 hex) "\n"
 * followed by LENGTH octets: the queue file exactly as it will be written to queue/ID. CHECK
 * is BLAKE2b-128, keyed by the name of the segment the record is in, over the id, the length
 * and the payload, so a torn or damaged record is recognised, and so is a record left from the
 * file's earlier use under another name (segment files are reused); reading a segment stops at
 * the first such record. "J1" records (written before segments were reused) have an unkeyed
 * check and are still read. A record of length 0 is a tombstone: the message with that id has
 * left the journal. Implemented in spool_journal_codec.c. */
#ifndef SUBMITD_SPOOL_JOURNAL_H
#define SUBMITD_SPOOL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

#define JOURNAL_HEADER_LEN 70
/* A segment's name: 16 uppercase hex digits, increasing with the time the segment was started. */
#define JOURNAL_SEGMENT_NAME_LEN 16
/* A record's payload can be no longer than this (a 64 KiB message and an envelope of up to
 * 100,000 recipients); a longer length field is damage. */
#define JOURNAL_PAYLOAD_MAX (64 * 1024 * 1024)

/* Hashes the payload given in pieces (head, body) into header[JOURNAL_HEADER_LEN], for a record
 * in the segment of that name. */
void journal_header(char header[JOURNAL_HEADER_LEN], const char id[QUEUE_ID_LEN + 1],
                    const char segment[JOURNAL_SEGMENT_NAME_LEN + 1], const void *part1,
                    size_t len1, const void *part2, size_t len2);

struct journal_record {
    char id[QUEUE_ID_LEN + 1];
    const unsigned char *payload;
    size_t len;
};

/* Whether p[0..n) are hex digits (uppercase letters when upper, else lowercase). */
bool journal_is_hex(const unsigned char *p, size_t n, bool upper);

/* Decodes the record at buf[*off..len) of the segment of that name. Returns 1 and advances *off,
 * 0 at the end of the data, -1 when what follows is not a whole, intact record of this segment
 * (zeros of a segment made ready ahead, a torn tail, damage, or a record of its earlier use). */
int journal_next(const unsigned char *buf, size_t len, size_t *off, struct journal_record *rec,
                 const char segment[JOURNAL_SEGMENT_NAME_LEN + 1]);

#endif
