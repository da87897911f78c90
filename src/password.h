/* password.h: password hashes (argon2id through libsodium's crypto_pwhash_str) and their
 * verification in constant work: an unknown user is verified against a dummy hash of the same
 * cost, so timing does not reveal whether a mailbox exists. Slow: call off the event loop. */
#ifndef SUBMITD_PASSWORD_H
#define SUBMITD_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWORD_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define PASSWORD_MAX 1024

/* sodium_init and the dummy hash; memlimit in bytes (0 = libsodium's interactive limit).
 * Returns 0 or -1. Call once, before threads start. */
int password_init(uint64_t memlimit);

/* Hashes pw into out (NUL-terminated). Returns 0, or -1 (out of memory). */
int password_hash(const uint8_t *pw, size_t len, char out[PASSWORD_HASH_MAX + 1]);

/* True when pw matches hash. With hash NULL or "" (unknown user, no password set) it does the
 * same work against the dummy hash and returns false. */
bool password_verify(const char *hash, const uint8_t *pw, size_t len);

/* True when the hash was made with other parameters than the current ones (rehash on login). */
bool password_needs_rehash(const char *hash);

#endif
