/* app_password.h: app passwords (SPEC 2): random per-device secrets, shown once. They carry
 * about 100 bits of entropy, so a fast keyed-free hash (BLAKE2b-256) is the right store: no
 * argon2id cost per attempt, and a match is an index lookup. */
#ifndef SUBMITD_APP_PASSWORD_H
#define SUBMITD_APP_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define APP_PASSWORD_LEN 20 /* characters of the secret (base32 lower case, no padding) */
#define APP_PASSWORD_HASH_HEX 64

/* A new secret: APP_PASSWORD_LEN characters from libsodium's randombytes, NUL-terminated. */
void app_password_generate(char out[APP_PASSWORD_LEN + 1]);
/* Hex BLAKE2b-256 of the secret with ASCII spaces removed and ASCII upper case folded to lower
 * (users paste "ABCD EFGH ..."), NUL-terminated. */
void app_password_hash(const uint8_t *secret, size_t len, char hex[APP_PASSWORD_HASH_HEX + 1]);

#endif
