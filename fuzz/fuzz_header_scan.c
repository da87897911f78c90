/* fuzz_header_scan.c: libFuzzer target for the streaming header scanner (src/header_scan.c).
 * The message (after two split octets, see fuzz_util.h) is scanned in random chunks and whole.
 * Invariants (abort() on violation): offsets stay inside their chunk; what was found (Message-ID,
 * Date, From, the captured From value and its flags) does not depend on the split; the end of the
 * header section is the same, except in the one case header_scan.c documents (a non-field line
 * recognized only after a chunk boundary inside it: the section then ends after that line, at the
 * start of the next one, or is still open if the message stops there); the captured From value
 * is NUL-terminated and within its bound.
 * RFC 5322 2.2, 3.6. */
#include <string.h>

#include "fuzz_util.h"
#include "header_scan.h"

struct scan {
    struct header_scan h;
    size_t end; /* offset in the message where the section ended, or SIZE_MAX */
};

static void run(const char *msg, size_t len, struct fuzz_split *sp, struct scan *s)
{
    header_scan_init(&s->h);
    s->end = SIZE_MAX;
    size_t off = 0;
    int idle = 0;
    while (off < len) {
        size_t n = fuzz_split_next(sp, len - off);
        bool was_in = s->h.in_header;
        size_t r = header_scan_feed(&s->h, msg + off, n);
        FUZZ_CHECK(r <= n);
        if (was_in && !s->h.in_header) {
            FUZZ_CHECK(s->end == SIZE_MAX);
            s->end = off + r;
        } else {
            FUZZ_CHECK(r == n); /* len unless the section ended in this chunk */
        }
        FUZZ_CHECK(s->h.from_len <= HEADER_FROM_MAX && s->h.from[s->h.from_len] == '\0');
        off += n;
        if (n == 0 && ++idle > 1000)
            sp->whole = true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fuzz_split sp, whole;
    fuzz_split_init(&sp, data[0], data[1]);
    fuzz_split_init(&whole, 0x80, 0);
    const char *msg = (const char *)data + 2;
    size_t len = size - 2;

    static struct scan a, b; /* about 1 KB each */
    run(msg, len, &sp, &a);
    run(msg, len, &whole, &b);

    FUZZ_CHECK(a.h.has_message_id == b.h.has_message_id);
    FUZZ_CHECK(a.h.has_date == b.h.has_date);
    FUZZ_CHECK(a.h.has_from == b.h.has_from);
    FUZZ_CHECK(a.h.from_multiple == b.h.from_multiple);
    FUZZ_CHECK(a.h.from_truncated == b.h.from_truncated);
    FUZZ_CHECK(a.h.from_len == b.h.from_len && memcmp(a.h.from, b.h.from, a.h.from_len) == 0);

    if (b.end == SIZE_MAX) {
        FUZZ_CHECK(a.end == SIZE_MAX && a.h.in_header);
        return 0;
    }
    FUZZ_CHECK(b.end <= len && !b.h.in_header);
    /* the section ends at a line start */
    FUZZ_CHECK(b.end == 0 || (b.end >= 2 && memcmp(msg + b.end - 2, "\r\n", 2) == 0));
    if (a.end == b.end) {
        FUZZ_CHECK(!a.h.in_header && a.h.blank_separator == b.h.blank_separator);
        return 0;
    }
    /* The documented exception: a non-field line seen as such only after a chunk boundary
     * inside it is kept whole, and the section ends at the start of the next line, or not at
     * all yet when the message stops right after that line. */
    size_t a_end = a.end == SIZE_MAX ? len : a.end;
    FUZZ_CHECK(!b.h.blank_separator);
    FUZZ_CHECK(a_end > b.end);
    const char *crlf = memmem(msg + b.end, a_end - b.end, "\r\n", 2);
    if (a.end != SIZE_MAX)
        FUZZ_CHECK(crlf == msg + a_end - 2);
    else /* the message stopped inside that line or right after its CRLF */
        FUZZ_CHECK(a.h.in_header && (crlf == NULL || crlf == msg + a_end - 2));
    return 0;
}
