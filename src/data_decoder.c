/* data_decoder.c: incremental decoder of the DATA phase. Finds the end of data only at
 * CRLF "." CRLF (the start of data counts as the start of a line), removes dot-stuffing, and
 * flags bare CR, bare LF and lines of more than 998 octets. Input may be split anywhere.
 * RFC 5321 4.1.1.4 and 4.5.2 (end of data, transparency), 2.3.8 (CRLF only), RFC 5322 2.1.1
 * (998-octet lines).
 *
 * Only CRLF ends a line: a bare LF is flagged and the line goes on, so "\n.\r\n" is never an end
 * of data. Line length counts the octets of the unstuffed line (what the message stores), without
 * its CRLF. Every input byte produces at most one output byte within the same call, so `out`
 * never needs more than `len` bytes; after an error the output is not exact (it is discarded). */
#include "data_decoder.h"

#include <string.h>

#include "protocol_limits.h"

enum data_state {
    DS_LINE_START = 0, /* at the start of a line (and of data) */
    DS_TEXT,           /* inside a line */
    DS_CR,             /* inside a line, after a CR (already written out) */
    DS_DOT,            /* a line started with '.', not written out */
    DS_DOT_CR          /* a line is "." CR so far, neither written out */
};

void data_decoder_init(struct data_decoder *d)
{
    memset(d, 0, sizeof *d);
    d->state = DS_LINE_START;
    d->error = DATA_OK;
}

static void fail(struct data_decoder *d, enum data_error e)
{
    if (d->error == DATA_OK)
        d->error = e;
}

/* A content octet of the current line. */
static void put_text(struct data_decoder *d, char c, char *out, size_t *o)
{
    out[(*o)++] = c;
    if (c == '\n')
        fail(d, DATA_ERR_BARE_LF);
    if (++d->line_len > SMTP_TEXT_LINE_CONTENT_MAX)
        fail(d, DATA_ERR_LINE_TOO_LONG);
    d->state = DS_TEXT;
}

/* An octet in a state where a CR starts a possible line end and anything else is content. */
static void text_octet(struct data_decoder *d, char c, char *out, size_t *o)
{
    if (c == '\r') {
        out[(*o)++] = c;
        d->state = DS_CR;
    } else {
        put_text(d, c, out, o);
    }
}

/* How many octets from p on are neither CR nor LF (a line's content, unchanged). */
static size_t plain_run(const char *p, size_t n)
{
    const char *cr = memchr(p, '\r', n);
    size_t m = cr != NULL ? (size_t)(cr - p) : n;
    const char *lf = memchr(p, '\n', m);
    return lf != NULL ? (size_t)(lf - p) : m;
}

size_t data_decoder_feed(struct data_decoder *d, const char *in, size_t len, char *out,
                         size_t *out_len)
{
    size_t o = 0, i = 0;
    while (i < len && !d->done) {
        if (d->state == DS_TEXT) {
            /* inside a line, the content up to its CR is copied in one go: what put_text does
             * octet by octet (a 4 KiB message is some 60 lines of 70 octets) */
            size_t run = plain_run(in + i, len - i);
            if (run > 0) {
                memcpy(out + o, in + i, run);
                o += run;
                i += run;
                d->line_len += run;
                if (d->line_len > SMTP_TEXT_LINE_CONTENT_MAX)
                    fail(d, DATA_ERR_LINE_TOO_LONG);
                continue;
            }
        }
        char c = in[i++];
        switch (d->state) {
        case DS_LINE_START:
            if (c == '.')
                d->state = DS_DOT;
            else
                text_octet(d, c, out, &o);
            break;
        case DS_TEXT:
            text_octet(d, c, out, &o);
            break;
        case DS_CR:
            if (c == '\n') {
                out[o++] = c;
                d->line_len = 0;
                d->state = DS_LINE_START;
            } else {
                /* the CR already written is content: count it, then handle c */
                fail(d, DATA_ERR_BARE_CR);
                d->line_len++;
                d->state = DS_TEXT;
                text_octet(d, c, out, &o);
            }
            break;
        case DS_DOT:
            if (c == '\r')
                d->state = DS_DOT_CR;
            else
                text_octet(d, c, out, &o); /* the leading dot is the stuffing: dropped */
            break;
        case DS_DOT_CR:
            if (c == '\n') {
                d->done = true;
            } else {
                /* "." CR x: a bare CR. The CR is dropped from the (discarded) output so that
                 * output never outgrows input within one call. */
                fail(d, DATA_ERR_BARE_CR);
                d->line_len++;
                d->state = DS_TEXT;
                text_octet(d, c, out, &o);
            }
            break;
        }
    }
    *out_len = o;
    d->out_total += o;
    return i;
}
