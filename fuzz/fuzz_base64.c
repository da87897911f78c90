/* fuzz_base64.c: libFuzzer target for strict base64 (src/base64.c). Two properties:
 * 1. decoding: whatever b64_decode accepts is canonical, so encoding the result gives back exactly
 *    the input; a decode into a buffer one octet too small fails; decoding never writes past cap.
 * 2. round trip: b64_encode of arbitrary bytes decodes to the same bytes, and the encoding has the
 *    length b64_encoded_len promises.
 * A violation calls abort(). RFC 4648 4. */
#include <string.h>

#include "base64.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    /* 1. decode the input as base64 text */
    size_t cap = size / 4 * 3 + 1;
    uint8_t *out = malloc(cap); /* exact-size heap buffers: ASan sees any overflow */
    size_t outlen = 12345;
    if (out == NULL)
        abort();
    if (b64_decode(text, size, out, cap, &outlen) == 0) {
        FUZZ_CHECK(outlen <= size / 4 * 3);
        size_t elen = b64_encoded_len(outlen);
        FUZZ_CHECK(elen == size);
        char *enc = malloc(elen + 1);
        if (enc == NULL)
            abort();
        FUZZ_CHECK(b64_encode(out, outlen, enc, elen + 1) == elen);
        FUZZ_CHECK(memcmp(enc, text, size) == 0); /* strict: only canonical text decodes */
        free(enc);
        if (outlen > 0) {
            /* exactly enough room works; one octet less does not */
            uint8_t *tight = malloc(outlen);
            size_t n2 = 0;
            if (tight == NULL)
                abort();
            FUZZ_CHECK(b64_decode(text, size, tight, outlen, &n2) == 0 && n2 == outlen);
            FUZZ_CHECK(memcmp(tight, out, outlen) == 0);
            FUZZ_CHECK(b64_decode(text, size, tight, outlen - 1, &n2) == -1);
            free(tight);
        }
    } else {
        FUZZ_CHECK(outlen == 0);
    }
    free(out);

    /* 2. encode the input as bytes, then decode: the same bytes come back */
    size_t elen = b64_encoded_len(size);
    char *enc = malloc(elen + 1);
    if (enc == NULL)
        abort();
    size_t got = b64_encode(data, size, enc, elen + 1);
    FUZZ_CHECK(got == elen);
    FUZZ_CHECK(strlen(enc) == elen);
    FUZZ_CHECK(b64_encode(data, size, enc, elen) == 0); /* no room for the NUL */
    got = b64_encode(data, size, enc, elen + 1);
    uint8_t *back = malloc(size > 0 ? size : 1);
    size_t blen = 0;
    if (back == NULL)
        abort();
    FUZZ_CHECK(b64_decode(enc, elen, back, size, &blen) == 0);
    FUZZ_CHECK(blen == size);
    FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
    free(back);
    free(enc);
    return 0;
}
