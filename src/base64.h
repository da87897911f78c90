/* base64.h: strict base64 (RFC 4648 4, with padding) for SASL exchanges (RFC 4954 4). */
#ifndef SUBMITD_BASE64_H
#define SUBMITD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of n bytes, without the terminating NUL. */
size_t b64_encoded_len(size_t n);

/* Encodes n bytes into out (NUL-terminated). Returns the length, or 0 when cap is too small
 * (an empty input also returns 0, with out = ""). */
size_t b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes exactly the n characters of `in`: the standard alphabet, correct '=' padding, no
 * whitespace or other characters, length a multiple of 4. Returns 0 and sets *outlen, or -1
 * when the input is malformed or does not fit in cap bytes. */
int b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

#endif
