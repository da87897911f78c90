/* base64.c: strict base64 (RFC 4648 4: standard alphabet, '=' padding required, no whitespace,
 * no non-zero trailing bits) for SASL exchanges (RFC 4954 4). Built on libsodium's
 * constant-time codec (the payloads carry passwords and tokens), whose ORIGINAL variant without
 * an ignore set already refuses everything non-canonical; the checks here only make the
 * contract explicit (whole input consumed, length a multiple of 4, no sodium_misuse abort) and
 * refuse 8-bit characters, which libsodium 1.0.18 lets through. */
#include "base64.h"

#include <stdbool.h>

#include <sodium.h>

#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL

size_t b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = b64_encoded_len(n);
    if (cap == 0 || n > (SIZE_MAX - 1) / 4 * 3 || need >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    /* sodium_base64_ENCODED_LEN(n, ORIGINAL) == need + 1, checked above, so no abort */
    sodium_bin2base64(out, cap, in, n, B64_VARIANT);
    return need;
}

/* Every character from the alphabet or '=', checked without branching on the data. libsodium
 * 1.0.18 decodes some octets >= 0x80 as if they were letters, so its check alone is not enough. */
static bool alphabet_only(const char *in, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)in[i];
        unsigned ok = (unsigned)((c - 'A' < 26u) | (c - 'a' < 26u) | (c - '0' < 10u) | (c == '+') |
                                 (c == '/') | (c == '='));
        bad |= ok ^ 1u;
    }
    return bad == 0;
}

int b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    if (n % 4 != 0 || !alphabet_only(in, n))
        return -1;
    if (n == 0)
        return 0;
    const char *end = NULL;
    size_t len = 0;
    if (sodium_base642bin(out, cap, in, n, NULL, &len, &end, B64_VARIANT) != 0 || end != in + n) {
        /* a partial decode may have left secret bytes behind */
        sodium_memzero(out, cap < n / 4 * 3 ? cap : n / 4 * 3);
        return -1;
    }
    *outlen = len;
    return 0;
}
