/* fuzz_data_decoder.c: libFuzzer target for the DATA-phase decoder (src/data_decoder.c). The
 * input (after two split octets, see fuzz_util.h) is fed in random chunks and, separately, whole;
 * both runs are compared with a simple reference model. Invariants (abort() on violation):
 * - each call writes at most as many octets as it was given, and consumes all of them unless the
 *   end of data was found;
 * - done is set exactly when the input consumed so far first ends in CRLF "." CRLF (or is ".\r\n"
 *   at the very start), and never earlier;
 * - the result (consumed count, done, error) does not depend on how the input was split;
 * - an error is reported exactly when the consumed input has a bare CR, a bare LF or an unstuffed
 *   line over 998 octets, and without error the output is the dot-unstuffed message.
 * RFC 5321 4.1.1.4, 4.5.2, 2.3.8; RFC 5322 2.1.1. */
#include <string.h>

#include "data_decoder.h"
#include "fuzz_util.h"
#include "protocol_limits.h"

struct result {
    size_t consumed;
    bool done;
    enum data_error error;
    char *out;
    size_t out_len;
};

static void run(const char *in, size_t len, struct fuzz_split *sp, struct result *r)
{
    struct data_decoder d;
    data_decoder_init(&d);
    r->out = malloc(len > 0 ? len : 1);
    if (r->out == NULL)
        abort();
    r->out_len = 0;
    size_t off = 0;
    int idle = 0;
    while (off < len && !d.done) {
        size_t n = fuzz_split_next(sp, len - off);
        char *chunk_out = malloc(n > 0 ? n : 1); /* exactly n: the promised bound, for ASan */
        if (chunk_out == NULL)
            abort();
        size_t out_len = 99999;
        size_t used = data_decoder_feed(&d, in + off, n, chunk_out, &out_len);
        FUZZ_CHECK(used <= n);
        FUZZ_CHECK(out_len <= n);        /* output never longer than input */
        FUZZ_CHECK(out_len <= used);     /* nor than what was consumed */
        FUZZ_CHECK(used == n || d.done); /* a short count only at the end of data */
        memcpy(r->out + r->out_len, chunk_out, out_len);
        r->out_len += out_len;
        free(chunk_out);
        off += used;
        if (n == 0 && ++idle > 1000) /* bounded: a split that keeps choosing 0 */
            sp->whole = true;
    }
    if (d.done) { /* a done decoder takes nothing more */
        size_t out_len = 99999;
        char one;
        FUZZ_CHECK(data_decoder_feed(&d, "x", 1, &one, &out_len) == 0 && out_len == 0);
    }
    FUZZ_CHECK(d.out_total == r->out_len);
    r->consumed = off;
    r->done = d.done;
    r->error = d.error;
}

/* Where the reference says data ends: the offset just after the first CRLF.CRLF (or a ".\r\n"
 * at offset 0), or 0 when there is none. */
static size_t reference_end(const char *in, size_t len)
{
    if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
        return 3;
    for (size_t i = 0; i + 5 <= len; i++)
        if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
            return i + 5;
    return 0;
}

/* The reference decoder over in[0..len) (the consumed input): whether it holds an error, and
 * the unstuffed message (without the final ".\r\n") as the decoder writes it. A CR at the very
 * end of undone input is pending: written out (the decoder does so at once) unless it follows a
 * stuffing dot, and not counted in the line yet. */
static bool reference_error(const char *in, size_t len, bool done, char *out, size_t *out_len)
{
    size_t body = done ? len - 3 : len; /* the ".\r\n" of the end marker is not message */
    bool err = false, at_start = true, after_dot = false;
    size_t o = 0, line = 0;
    for (size_t i = 0; i < body; i++) {
        char c = in[i];
        if (at_start && c == '.') {
            at_start = false;
            after_dot = true;
            continue; /* stuffing */
        }
        at_start = false;
        bool dot = after_dot;
        after_dot = false;
        if (c == '\r' && i + 1 < len && in[i + 1] == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            i++;
            line = 0;
            at_start = true;
            continue;
        }
        if (c == '\r' && i + 1 == len) { /* pending */
            if (!dot)
                out[o++] = c;
            continue;
        }
        if (c == '\r' || c == '\n')
            err = true; /* a bare CR or a bare LF */
        out[o++] = c;
        if (++line > SMTP_TEXT_LINE_CONTENT_MAX)
            err = true;
    }
    *out_len = o;
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fuzz_split sp, whole;
    fuzz_split_init(&sp, data[0], data[1]);
    fuzz_split_init(&whole, 0x80, 0);
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    struct result a, b;
    run(in, len, &sp, &a);
    run(in, len, &whole, &b);

    /* the split does not matter */
    FUZZ_CHECK(a.consumed == b.consumed);
    FUZZ_CHECK(a.done == b.done);
    FUZZ_CHECK(a.error == b.error);
    if (a.error == DATA_OK)
        FUZZ_CHECK(a.out_len == b.out_len && memcmp(a.out, b.out, a.out_len) == 0);

    /* done only after CRLF.CRLF, and at the first one */
    size_t end = reference_end(in, len);
    if (end > 0) {
        FUZZ_CHECK(a.done);
        FUZZ_CHECK(a.consumed == end);
    } else {
        FUZZ_CHECK(!a.done);
        FUZZ_CHECK(a.consumed == len);
    }

    /* errors and output against the reference */
    char *ref = malloc(len > 0 ? len : 1);
    size_t ref_len = 0;
    if (ref == NULL)
        abort();
    bool ref_err = reference_error(in, a.consumed, a.done, ref, &ref_len);
    FUZZ_CHECK(ref_err == (a.error != DATA_OK));
    if (!ref_err) {
        FUZZ_CHECK(a.out_len == ref_len);
        FUZZ_CHECK(memcmp(a.out, ref, ref_len) == 0);
    }
    free(ref);
    free(a.out);
    free(b.out);
    return 0;
}
