/* random_ids.c: the per-thread pool of random octets for identifiers (random_ids.h). */
#include "random_ids.h"

#include <string.h>

#include <sodium.h>

#define POOL_SIZE 512

static _Thread_local unsigned char pool[POOL_SIZE];
static _Thread_local size_t used = POOL_SIZE; /* all used: refill before the first */

void random_ids_buf(void *buf, size_t n)
{
    unsigned char *out = buf;
    while (n > 0) {
        if (used == POOL_SIZE) {
            randombytes_buf(pool, sizeof pool);
            used = 0;
        }
        size_t take = POOL_SIZE - used < n ? POOL_SIZE - used : n;
        memcpy(out, pool + used, take);
        sodium_memzero(pool + used, take); /* each octet is given out once */
        used += take;
        out += take;
        n -= take;
    }
}

uint32_t random_ids_uniform(uint32_t upper)
{
    uint32_t r, min;
    if (upper < 2)
        return 0;
    min = (1U + ~upper) % upper; /* 2^32 mod upper: below it, r % upper would favour some */
    do
        random_ids_buf(&r, sizeof r);
    while (r < min);
    return r % upper;
}
