/* xtext.h: RFC 3461 4 "xtext" (used by DSN's ENVID and ORCPT, and by RFC 4954's AUTH=):
 * printable US-ASCII except '+' and '=' stands for itself, anything else is "+" and two
 * upper-case hex digits. Pure. */
#ifndef SUBMITD_XTEXT_H
#define SUBMITD_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes in[0..len) into out (NUL-terminated). False on bad syntax ('+' without two upper-case
 * hex digits, '=', an octet outside 33..126) or when the result does not fit in cap. */
bool xtext_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len);
/* Encodes in[0..len) into out (NUL-terminated). Returns the encoded length; when that is >= cap
 * the output was cut (as snprintf). */
size_t xtext_encode(const char *in, size_t len, char *out, size_t cap);

#endif
