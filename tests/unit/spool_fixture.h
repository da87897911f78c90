/* spool_fixture.h: what the spool's unit tests share (test_spool, test_spool_journal,
 * test_spool_delivery, test_queue_state): a fresh data directory under /tmp with an opened spool
 * (journal on or off), removed with everything in it afterwards, and a file count per spool
 * directory. Include after cmocka.h. */
#ifndef SUBMITD_TEST_SPOOL_FIXTURE_H
#define SUBMITD_TEST_SPOOL_FIXTURE_H

#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"

struct fixture {
    char dir[64];
    char err[512];
    struct spool *spool;
};

static int fixture_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Opens the spool of fx->dir with the journal on or off (NULL on failure, reason in fx->err). */
static inline struct spool *fixture_open(struct fixture *fx, bool journal)
{
    struct spool *sp = spool_open(fx->dir, fx->err, sizeof fx->err);
    if (sp != NULL && !journal)
        spool_set_journal(sp, false);
    return sp;
}

/* A cmocka setup: /tmp/NAME.XXXXXX with an opened spool in *state. */
static inline int fixture_setup(void **state, const char *name, bool journal)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/%s.XXXXXX", name);
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    fx->spool = fixture_open(fx, journal);
    if (fx->spool == NULL) {
        fprintf(stderr, "spool_open: %s\n", fx->err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    spool_close(fx->spool);
    nftw(fx->dir, fixture_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Files in DIR/spool/SUB (dot files excluded). */
static inline int count_files(const struct fixture *fx, const char *sub)
{
    char path[128];
    struct dirent *de;
    int n = 0;
    DIR *d;
    snprintf(path, sizeof path, "%s/spool/%s", fx->dir, sub);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

#endif
