/* data_decoder.h: incremental decoder of the DATA phase (RFC 5321 4.1.1.4, 4.5.2): finds the end
 * of data only at CRLF "." CRLF (the start of data counts as the start of a line), removes
 * dot-stuffing, and flags bare CR, bare LF (RFC 5321 2.3.8) and lines over 998 octets. Input may
 * be split anywhere across calls. Pure: no I/O, no allocation. */
#ifndef SUBMITD_DATA_DECODER_H
#define SUBMITD_DATA_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum data_error {
    DATA_OK = 0,
    DATA_ERR_BARE_LF,      /* a LF not preceded by CR */
    DATA_ERR_BARE_CR,      /* a CR not followed by LF */
    DATA_ERR_LINE_TOO_LONG /* a line of more than 998 octets before its CRLF */
};

struct data_decoder {
    int state;
    size_t line_len;
    enum data_error error; /* the first error seen; sticky */
    bool done;             /* end of data seen */
    uint64_t out_total;    /* octets of message produced so far */
};

void data_decoder_init(struct data_decoder *d);

/* Consumes input up to and including the end-of-data marker. Writes the unstuffed message to
 * out (which must have room for len bytes) and sets *out_len. The message keeps its CRLFs,
 * including the CRLF that ends the last line; the terminating ".\r\n" is not part of it.
 * Returns the number of input bytes consumed: less than len only when the end of data was found
 * (the rest is the next command, which the caller keeps). After an error the decoder keeps
 * looking for the end of data (so the session stays in sync) and the output should be
 * discarded; a bare LF followed by ".\r\n" is never an end of data. */
size_t data_decoder_feed(struct data_decoder *d, const char *in, size_t len, char *out,
                         size_t *out_len);

#endif
