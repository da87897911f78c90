/* fuzz_util.h: helpers shared by the libFuzzer targets in fuzz/: a deterministic split of the
 * input into chunks (so that streaming parsers see every boundary the fuzzer can think of, and a
 * crash reproduces from its input alone), a NUL-terminated copy, and the invariant check that
 * turns a broken promise into a crash libFuzzer records. Header-only: each target is one file. */
#ifndef SUBMITD_FUZZ_UTIL_H
#define SUBMITD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant the code under test promises; a violation aborts so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Chunk sizes drawn from a small PRNG seeded by two control octets taken from the input:
 * ctl0 & 0x80 means "one chunk"; otherwise chunks are 0..(ctl0 & 0x7f)+1 octets long
 * (empty chunks included: a feed of nothing must be harmless). */
struct fuzz_split {
    uint32_t state;
    bool whole;
    size_t max;
};

static inline void fuzz_split_init(struct fuzz_split *s, uint8_t ctl0, uint8_t ctl1)
{
    s->state = 0x9e3779b9u ^ ((uint32_t)ctl0 << 8) ^ ctl1;
    if (s->state == 0)
        s->state = 1;
    s->whole = (ctl0 & 0x80) != 0;
    s->max = (size_t)(ctl0 & 0x7f) + 1;
}

/* The length of the next chunk, at most `left`. */
static inline size_t fuzz_split_next(struct fuzz_split *s, size_t left)
{
    if (s->whole)
        return left;
    s->state ^= s->state << 13; /* xorshift32 */
    s->state ^= s->state >> 17;
    s->state ^= s->state << 5;
    size_t n = s->state % (s->max + 1);
    return n < left ? n : left;
}

/* A malloc'd NUL-terminated copy of data (which may itself hold NULs). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A malloc'd copy of exactly size octets (so ASan sees reads past the end). */
static inline char *fuzz_dup(const uint8_t *data, size_t size)
{
    char *s = malloc(size > 0 ? size : 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
