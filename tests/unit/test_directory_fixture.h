/* test_directory_fixture.h: what the two directory test files (test_directory.c,
 * test_directory_grants.c) share: the fixture (a fresh directory under /tmp per test), the
 * generation counter, an assertion on DIR_INVALID and its reason, and a collector of names from
 * the list functions. Include after <cmocka.h>. */
#ifndef SUBMITD_TEST_DIRECTORY_FIXTURE_H
#define SUBMITD_TEST_DIRECTORY_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "directory.h"
#include "test_util.h"

struct fixture {
    char dir[TU_DIR_MAX];
    struct directory *d;
};

/* A directory opened in /tmp/NAME.XXXXXX. */
static inline int dir_fixture_setup(void **state, const char *name)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    if (tu_temp_dir(f->dir, name) != 0)
        return -1;
    char err[256];
    f->d = directory_open(f->dir, err, sizeof err);
    if (f->d == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int dir_fixture_teardown(void **state)
{
    struct fixture *f = *state;
    directory_close(f->d);
    tu_remove_dir(f->dir, DIR_FILE_NAME);
    free(f);
    return 0;
}

/* A raw connection to the fixture's database, for what the API cannot do. */
static inline sqlite3 *raw_open(struct fixture *f)
{
    return tu_raw_open(f->dir, DIR_FILE_NAME);
}

static inline int64_t generation(struct directory *d)
{
    int64_t g = -1;
    assert_int_equal(dir_generation(d, &g), DIR_OK);
    return g;
}

#define assert_invalid(call, message)                                                              \
    do {                                                                                           \
        assert_int_equal((call), DIR_INVALID);                                                     \
        assert_string_equal(dir_error(f->d), (message));                                           \
    } while (0)

/* In a test with a local `int64_t g` (the generation so far): the call succeeds and bumps the
 * generation (BUMPS), or whatever it answers it leaves the generation (STILL). */
#define BUMPS(call)                                                                                \
    do {                                                                                           \
        assert_int_equal((call), DIR_OK);                                                          \
        int64_t now = generation(f->d);                                                            \
        assert_true(now > g);                                                                      \
        g = now;                                                                                   \
    } while (0)
#define STILL(call)                                                                                \
    do {                                                                                           \
        (void)(call);                                                                              \
        assert_int_equal(generation(f->d), g);                                                     \
    } while (0)

/* Names (domains, addresses, principals) from a list function, in the order given. */
struct names {
    int n;
    char v[16][SMTP_PATH_MAX + 1];
};

static inline void collect_name(const char *name, void *arg)
{
    struct names *c = arg;
    if (c->n < 16)
        snprintf(c->v[c->n++], sizeof c->v[0], "%s", name);
}

#endif
