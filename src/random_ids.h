/* random_ids.h: randomness for identifiers (queue ids, reference ids, Message-IDs) from a
 * per-thread pool that libsodium's randombytes_buf fills 512 octets at a time: one getrandom(2)
 * for dozens of ids instead of one each (three a message were 8% of the server's system calls).
 * The octets are the kernel's CSPRNG output all the same, but they wait in memory until used:
 * never use this for keys, salts, passwords or anything else secret. */
#ifndef SUBMITD_RANDOM_IDS_H
#define SUBMITD_RANDOM_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random octets. */
void random_ids_buf(void *buf, size_t n);
/* A uniformly distributed number in [0, upper) (0 when upper < 2). */
uint32_t random_ids_uniform(uint32_t upper);

#endif
