/* app_password.c: app passwords (SPEC 2): generating the random secret shown once, and the hash
 * that is stored and looked up. The secret is 20 characters of RFC 4648 6 base32 in lower case
 * without padding (100 bits from libsodium's randombytes); the hash is unkeyed BLAKE2b-256
 * (RFC 7693) of the secret with spaces removed and upper case folded, in hex. */
#include "app_password.h"

#include <sodium.h>

static const char alphabet[32] = "abcdefghijklmnopqrstuvwxyz234567";

/* 5 bits a character */
#define RANDOM_BYTES ((APP_PASSWORD_LEN * 5 + 7) / 8)

void app_password_generate(char out[APP_PASSWORD_LEN + 1])
{
    uint8_t rnd[RANDOM_BYTES];
    randombytes_buf(rnd, sizeof rnd);
    /* each character takes the next 5 bits, most significant first, so every character is
     * uniform over the 32 letters */
    for (size_t i = 0; i < APP_PASSWORD_LEN; i++) {
        size_t bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)rnd[byte] << 8;
        if (byte + 1 < sizeof rnd)
            v |= rnd[byte + 1];
        out[i] = alphabet[(v >> (11 - shift)) & 31];
    }
    out[APP_PASSWORD_LEN] = '\0';
    sodium_memzero(rnd, sizeof rnd);
}

void app_password_hash(const uint8_t *secret, size_t len, char hex[APP_PASSWORD_HASH_HEX + 1])
{
    crypto_generichash_state st;
    uint8_t digest[APP_PASSWORD_HASH_HEX / 2];
    uint8_t chunk[64];
    size_t n = 0;
    crypto_generichash_init(&st, NULL, 0, sizeof digest);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = secret[i];
        if (c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        chunk[n++] = c;
        if (n == sizeof chunk) {
            crypto_generichash_update(&st, chunk, n);
            n = 0;
        }
    }
    crypto_generichash_update(&st, chunk, n);
    crypto_generichash_final(&st, digest, sizeof digest);
    sodium_bin2hex(hex, APP_PASSWORD_HASH_HEX + 1, digest, sizeof digest);
    sodium_memzero(chunk, sizeof chunk);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(digest, sizeof digest);
}
