/* spool_journal_codec.c: the journal record codec (spool_journal.h, docs/spool.md "Segments and
 * records"): a record's header line with its BLAKE2b-128 check, keyed by the segment's name, and
 * decoding with every field and the check verified, so a torn or damaged record, or one left
 * over from the file's use under another name, is recognised. Pure functions. */
#include "spool_journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define JOURNAL_CHECK_LEN 16 /* BLAKE2b-128 */

/* key: the segment's name (JOURNAL_SEGMENT_NAME_LEN octets) for a J2 record, NULL for J1. */
static void check_of(unsigned char out[JOURNAL_CHECK_LEN], const char *key, const char *id,
                     size_t total, const void *part1, size_t len1, const void *part2, size_t len2)
{
    crypto_generichash_state st;
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)total >> (8 * i));
    crypto_generichash_init(&st, (const unsigned char *)key, key ? JOURNAL_SEGMENT_NAME_LEN : 0,
                            JOURNAL_CHECK_LEN);
    crypto_generichash_update(&st, (const unsigned char *)id, QUEUE_ID_LEN);
    crypto_generichash_update(&st, n, sizeof n);
    if (len1 > 0)
        crypto_generichash_update(&st, part1, len1);
    if (len2 > 0)
        crypto_generichash_update(&st, part2, len2);
    crypto_generichash_final(&st, out, JOURNAL_CHECK_LEN);
}

void journal_header(char header[JOURNAL_HEADER_LEN], const char id[QUEUE_ID_LEN + 1],
                    const char segment[JOURNAL_SEGMENT_NAME_LEN + 1], const void *part1,
                    size_t len1, const void *part2, size_t len2)
{
    unsigned char check[JOURNAL_CHECK_LEN];
    char hex[2 * JOURNAL_CHECK_LEN + 1];
    char line[JOURNAL_HEADER_LEN + 1];
    check_of(check, segment, id, len1 + len2, part1, len1, part2, len2);
    sodium_bin2hex(hex, sizeof hex, check, sizeof check);
    snprintf(line, sizeof line, "J2 %.16s %016" PRIx64 " %s\n", id, (uint64_t)(len1 + len2), hex);
    memcpy(header, line, JOURNAL_HEADER_LEN);
}

bool journal_is_hex(const unsigned char *p, size_t n, bool upper)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        bool letter = upper ? (c >= 'A' && c <= 'F') : (c >= 'a' && c <= 'f');
        if (!((c >= '0' && c <= '9') || letter))
            return false;
    }
    return true;
}

int journal_next(const unsigned char *buf, size_t len, size_t *off, struct journal_record *rec,
                 const char segment[JOURNAL_SEGMENT_NAME_LEN + 1])
{
    const unsigned char *h = buf + *off;
    unsigned char want[JOURNAL_CHECK_LEN], got[JOURNAL_CHECK_LEN];
    uint64_t n = 0;
    if (*off >= len)
        return 0;
    if (len - *off < JOURNAL_HEADER_LEN)
        return -1;
    /* "J2 " id " " length " " check "\n" at offsets 0, 3, 19, 20, 36, 37, 69 */
    if (h[0] != 'J' || (h[1] != '1' && h[1] != '2') || h[2] != ' ' ||
        !journal_is_hex(h + 3, QUEUE_ID_LEN, true) || h[19] != ' ' ||
        !journal_is_hex(h + 20, 16, false) || h[36] != ' ' ||
        !journal_is_hex(h + 37, 2 * JOURNAL_CHECK_LEN, false) || h[69] != '\n')
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned char c = h[20 + i];
        n = n * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (n > JOURNAL_PAYLOAD_MAX || n > len - *off - JOURNAL_HEADER_LEN)
        return -1;
    memcpy(rec->id, h + 3, QUEUE_ID_LEN);
    rec->id[QUEUE_ID_LEN] = '\0';
    rec->payload = h + JOURNAL_HEADER_LEN;
    rec->len = (size_t)n;
    if (sodium_hex2bin(want, sizeof want, (const char *)h + 37, 2 * JOURNAL_CHECK_LEN, NULL, NULL,
                       NULL) != 0)
        return -1;
    check_of(got, h[1] == '2' ? segment : NULL, rec->id, rec->len, rec->payload, rec->len, NULL, 0);
    if (sodium_memcmp(want, got, sizeof got) != 0)
        return -1;
    *off += JOURNAL_HEADER_LEN + rec->len;
    return 1;
}
