/* spool_journal_read.c: reading the journal (docs/spool.md, "Journal"): a segment indexed into
 * the in-memory index (at the server's start, or a reader's first question), one message's
 * record by id, the ids living there, and a reader's scan of every live record (intact records
 * not forgotten by a later tombstone). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_internal.h"

int spool_journal_read_whole(int dirfd, const char *name, unsigned char **buf, size_t *len)
{
    struct stat st;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    *buf = NULL;
    if (fd == -1)
        return -1;
    if (fstat(fd, &st) == -1 || (*buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL)
        goto fail;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, *buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *len = got;
    close(fd);
    return 0;
fail : {
    int e = errno;
    free(*buf);
    *buf = NULL;
    close(fd);
    errno = e;
    return -1;
}
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The segment names in journal/, sorted (oldest first); NULL with *n = 0 when there are none. */
char **spool_journal_names(struct spool *s, size_t *n)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t cap = 0;
    int dfd = openat(s->journal_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *n = 0;
    if (dfd == -1 || (d = fdopendir(dfd)) == NULL) {
        int e = errno;
        if (dfd != -1)
            close(dfd);
        errno = e;
        return NULL;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 16 ||
            !journal_is_hex((const unsigned char *)de->d_name, 16, true))
            continue; /* ".", "..", nothing of ours */
        if (*n == cap) {
            char **more = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
            if (more == NULL)
                goto fail;
            names = more;
        }
        if ((names[*n] = strdup(de->d_name)) == NULL)
            goto fail;
        (*n)++;
        errno = 0;
    }
    if (errno != 0)
        goto fail;
    closedir(d);
    if (*n > 1)
        qsort(names, *n, sizeof *names, cmp_names);
    errno = 0;
    return names;
fail : {
    int e = errno ? errno : ENOMEM;
    for (size_t i = 0; i < *n; i++)
        free(names[i]);
    free(names);
    *n = 0;
    closedir(d);
    errno = e;
    return NULL;
}
}

void spool_journal_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Every intact record of every segment, oldest first, read from disk, with its segment's mtime.
 * fn returns 0 to go on, non-zero to stop (and that is returned); -1 with errno on a failure.
 * Records after a torn or damaged one were never acknowledged (docs/spool.md). */
typedef int (*record_fn)(const struct journal_record *r, int64_t mtime_ms, void *arg);
static int each_record(struct spool *s, record_fn fn, void *arg)
{
    size_t n, i;
    char **names;
    int rc = 0;
    if (s->journal_fd == -1)
        return 0;
    names = spool_journal_names(s, &n);
    if (names == NULL && errno != 0)
        return -1;
    for (i = 0; i < n && rc == 0; i++) {
        unsigned char *buf;
        size_t len = 0, off = 0;
        struct journal_record r;
        struct stat st;
        if (spool_journal_read_whole(s->journal_fd, names[i], &buf, &len) == -1) {
            if (errno == ENOENT)
                continue; /* removed meanwhile: nothing of it lives */
            rc = -1;
            break;
        }
        int64_t mtime_ms = 0;
        if (fstatat(s->journal_fd, names[i], &st, 0) == 0)
            mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        while (rc == 0 && journal_next(buf, len, &off, &r, names[i]) == 1)
            rc = fn(&r, mtime_ms, arg);
        free(buf);
    }
    spool_journal_free_names(names, n);
    return rc;
}

/* A reader's pass over the journal: the ids that tombstones forgot. */
static int collect_tomb(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    (void)mtime_ms;
    return r->len != 0 || spool_idvec_add(arg, r->id) ? 0 : -1;
}

struct live_scan {
    struct spool_idvec tombs; /* sorted */
    spool_journal_fn fn;
    void *arg;
};

static int live_record(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    struct live_scan *ls = arg;
    if (r->len == 0 || (ls->tombs.n > 0 && bsearch(r->id, ls->tombs.v, ls->tombs.n,
                                                   sizeof *ls->tombs.v, spool_cmp_id) != NULL))
        return 0;
    return ls->fn(r, mtime_ms, ls->arg);
}

int spool_journal_scan(struct spool *s, spool_journal_fn fn, void *arg)
{
    struct live_scan ls = {{0}, fn, arg};
    int rc = each_record(s, collect_tomb, &ls.tombs);
    if (rc == 0) {
        if (ls.tombs.n > 1)
            qsort(ls.tombs.v, ls.tombs.n, sizeof *ls.tombs.v, spool_cmp_id);
        rc = each_record(s, live_record, &ls);
    }
    free(ls.tombs.v);
    return rc < 0 ? -1 : 0;
}

/* A reader indexes the journal when first asked (a snapshot; submitctl runs briefly), so that a
 * listing does not read every segment once per message. Under lock. 0, or -1 with errno. */
static int reader_index(struct spool *s)
{
    char err[256];
    size_t n;
    if (s->reader_indexed)
        return 0;
    char **names = spool_journal_names(s, &n);
    if (names == NULL && errno != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (spool_journal_index_segment(s, names[i], err, sizeof err) == -1 && errno != ENOENT) {
            int e = errno;
            spool_journal_free_names(names, n);
            errno = e;
            return -1;
        }
    spool_journal_free_names(names, n);
    s->reader_indexed = true;
    return 0;
}

/* pread of exactly len octets at off. */
static int read_at(int fd, unsigned char *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* shorter than indexed: cannot be */
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* A reader's record, read with its header and checked again: the server may have emptied and
 * reused its segment file since the reader's snapshot (docs/spool.md, "The keeper"). 1 with the
 * payload, 0 when the record is not there any more, -1 with errno. */
static int reader_record(const struct journal_entry *e, unsigned char **payload)
{
    size_t total = JOURNAL_HEADER_LEN + e->len, off = 0;
    struct journal_record r;
    unsigned char *buf = malloc(total);
    if (buf == NULL)
        return -1;
    if (read_at(e->seg->fd, buf, total, e->off - JOURNAL_HEADER_LEN) == -1) {
        int er = errno;
        free(buf);
        errno = er;
        return er == EIO ? 0 : -1; /* shorter now */
    }
    if (journal_next(buf, total, &off, &r, e->seg->name) != 1 || strcmp(r.id, e->id) != 0 ||
        r.len != e->len) {
        free(buf);
        return 0;
    }
    memmove(buf, buf + JOURNAL_HEADER_LEN, e->len);
    *payload = buf;
    return 1;
}

int spool_journal_get(struct spool *s, const char *id, unsigned char **payload, size_t *len)
{
    int rc = 0;
    if (s->journal_fd == -1)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (s->reader && reader_index(s) == -1) {
        int e = errno;
        pthread_mutex_unlock(&s->lock);
        errno = e;
        return -1;
    }
    const struct journal_entry *e = jindex_get(&s->index, id);
    rc = e != NULL;
    if (e != NULL && payload != NULL && s->reader) {
        rc = reader_record(e, payload);
    } else if (e != NULL && payload != NULL) {
        /* under the lock: the keeper closes a segment only once nothing in it lives */
        *payload = malloc(e->len > 0 ? e->len : 1);
        if (*payload == NULL || read_at(e->seg->fd, *payload, e->len, e->off) == -1) {
            free(*payload);
            *payload = NULL;
            rc = -1;
        }
    }
    if (rc == 1 && payload != NULL)
        *len = e->len;
    int er = errno;
    pthread_mutex_unlock(&s->lock);
    errno = er;
    return rc;
}

static void entry_id(const struct journal_entry *e, void *arg)
{
    (void)spool_idvec_add(arg, e->id); /* a failure is in `failed` */
}

int spool_journal_ids(struct spool *s, char (**ids)[QUEUE_ID_LEN + 1], size_t *n)
{
    struct spool_idvec l = {0};
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->journal_fd != -1 && s->reader)
        rc = reader_index(s);
    if (rc == 0)
        jindex_each(&s->index, entry_id, &l);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0 && l.failed) {
        errno = ENOMEM;
        rc = -1;
    }
    if (rc == -1) {
        free(l.v);
        return -1;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, spool_cmp_id);
    *ids = l.v;
    *n = l.n;
    return 0;
}

/* Indexes one segment's records (the segment is kept, and nothing is appended to it: its tail
 * may be torn). A reader opens it read-only. */
int spool_journal_index_segment(struct spool *s, const char *name, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len = 0, off = 0;
    struct journal_record r;
    struct stat st;
    struct spool_segment *g = calloc(1, sizeof *g);
    if (g == NULL || spool_journal_read_whole(s->journal_fd, name, &buf, &len) == -1) {
        snprintf(err, errlen, "read %s/journal/%s: %s", s->dir, name, strerror(errno));
        free(g);
        return -1;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    g->fd = openat(s->journal_fd, name, (s->reader ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (g->fd == -1 || fstat(g->fd, &st) == -1) {
        snprintf(err, errlen, "open %s/journal/%s: %s", s->dir, name, strerror(errno));
        goto fail;
    }
    g->size = len;
    g->last_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    spool_segment_link(s, g);
    uint64_t number = strtoull(name, NULL, 16); /* 16 hex digits (spool_journal_names) */
    if (number > s->segment_clock)
        s->segment_clock = number; /* the next segment's name comes after it */
    while (journal_next(buf, len, &off, &r, g->name) == 1) {
        if (r.len == 0) {
            spool_index_drop(s, r.id);
        } else if (jindex_put(&s->index, r.id, g, (uint64_t)(r.payload - buf), r.len) != NULL) {
            g->live++;
        } else {
            snprintf(err, errlen, "index %s/journal/%s: %s", s->dir, name, strerror(ENOMEM));
            free(buf);
            return -1; /* g is linked: spool_journal_close frees it */
        }
    }
    free(buf);
    return 0;
fail:
    if (g->fd != -1)
        close(g->fd);
    free(buf);
    free(g);
    return -1;
}
