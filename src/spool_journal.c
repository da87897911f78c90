/* spool_journal.c: the spool's journal (docs/spool.md, "Journal"), a log-structured queue.
 * Messages that fit in memory are appended, a batch at a time, to a segment file in
 * DIR/spool/journal/ and made durable with one fdatasync; that is when the client may get its
 * 250. The message then lives in its segment (found through an in-memory index) until it is
 * delivered, held or deleted: a tombstone record, group-committed the same way, says it is gone.
 * No file per message is ever made for it unless it stays queued long (spool_keeper.c). At open
 * the segments are read back into the index. Also the record codec of spool_journal.h. */
#include "spool_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "logger.h"
#include "spool_internal.h"

#define JOURNAL_CHECK_LEN 16 /* BLAKE2b-128 */

/* ---- the record codec ---- */

static void check_of(unsigned char out[JOURNAL_CHECK_LEN], const char *id, size_t total,
                     const void *part1, size_t len1, const void *part2, size_t len2)
{
    crypto_generichash_state st;
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)total >> (8 * i));
    crypto_generichash_init(&st, NULL, 0, JOURNAL_CHECK_LEN);
    crypto_generichash_update(&st, (const unsigned char *)id, QUEUE_ID_LEN);
    crypto_generichash_update(&st, n, sizeof n);
    if (len1 > 0)
        crypto_generichash_update(&st, part1, len1);
    if (len2 > 0)
        crypto_generichash_update(&st, part2, len2);
    crypto_generichash_final(&st, out, JOURNAL_CHECK_LEN);
}

void journal_header(char header[JOURNAL_HEADER_LEN], const char id[QUEUE_ID_LEN + 1],
                    const void *part1, size_t len1, const void *part2, size_t len2)
{
    unsigned char check[JOURNAL_CHECK_LEN];
    char hex[2 * JOURNAL_CHECK_LEN + 1];
    char line[JOURNAL_HEADER_LEN + 1];
    check_of(check, id, len1 + len2, part1, len1, part2, len2);
    sodium_bin2hex(hex, sizeof hex, check, sizeof check);
    snprintf(line, sizeof line, "J1 %.16s %016" PRIx64 " %s\n", id, (uint64_t)(len1 + len2), hex);
    memcpy(header, line, JOURNAL_HEADER_LEN);
}

static bool all_hex(const unsigned char *p, size_t n, bool upper)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        bool letter = upper ? (c >= 'A' && c <= 'F') : (c >= 'a' && c <= 'f');
        if (!((c >= '0' && c <= '9') || letter))
            return false;
    }
    return true;
}

int journal_next(const unsigned char *buf, size_t len, size_t *off, struct journal_record *rec)
{
    const unsigned char *h = buf + *off;
    unsigned char want[JOURNAL_CHECK_LEN], got[JOURNAL_CHECK_LEN];
    uint64_t n = 0;
    if (*off >= len)
        return 0;
    if (len - *off < JOURNAL_HEADER_LEN)
        return -1;
    /* "J1 " id " " length " " check "\n" at offsets 0, 3, 19, 20, 36, 37, 69 */
    if (memcmp(h, "J1 ", 3) != 0 || !all_hex(h + 3, QUEUE_ID_LEN, true) || h[19] != ' ' ||
        !all_hex(h + 20, 16, false) || h[36] != ' ' ||
        !all_hex(h + 37, 2 * JOURNAL_CHECK_LEN, false) || h[69] != '\n')
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned char c = h[20 + i];
        n = n * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (n > JOURNAL_PAYLOAD_MAX || n > len - *off - JOURNAL_HEADER_LEN)
        return -1;
    memcpy(rec->id, h + 3, QUEUE_ID_LEN);
    rec->id[QUEUE_ID_LEN] = '\0';
    rec->payload = h + JOURNAL_HEADER_LEN;
    rec->len = (size_t)n;
    if (sodium_hex2bin(want, sizeof want, (const char *)h + 37, 2 * JOURNAL_CHECK_LEN, NULL, NULL,
                       NULL) != 0)
        return -1;
    check_of(got, rec->id, rec->len, rec->payload, rec->len, NULL, 0);
    if (sodium_memcmp(want, got, sizeof got) != 0)
        return -1;
    *off += JOURNAL_HEADER_LEN + rec->len;
    return 1;
}

/* ---- segments ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Puts g at the young end of the segment list. Under lock. */
static void segment_link(struct spool *s, struct spool_segment *g)
{
    struct spool_segment **pp = &s->segs;
    while (*pp != NULL)
        pp = &(*pp)->next;
    g->next = NULL;
    *pp = g;
}

static struct spool_segment *segment_open(struct spool *s, int *err)
{
    struct spool_segment *seg = calloc(1, sizeof *seg);
    struct timespec ts;
    if (seg == NULL) {
        *err = errno;
        return NULL;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    for (int tries = 0; tries < 16; tries++, t++) {
        snprintf(seg->name, sizeof seg->name, "%016" PRIX64, t);
        seg->fd = openat(s->journal_fd, seg->name,
                         O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (seg->fd != -1 || errno != EEXIST)
            break;
    }
    if (seg->fd == -1) {
        *err = errno;
        log_error("event=journal-failed op=create path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                  seg->name, strerror(errno));
        free(seg);
        return NULL;
    }
    /* The segment's name must be durable before anything in it is acknowledged. */
    if (fsync(s->journal_fd) == -1) {
        *err = errno;
        log_error("event=journal-failed op=fsync path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
        close(seg->fd);
        (void)unlinkat(s->journal_fd, seg->name, 0);
        free(seg);
        return NULL;
    }
    seg->last_ms = now_ms();
    return seg;
}

/* Writes iov[0..n) completely (writev may stop early, and takes at most IOV_MAX at a time). */
static int writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Appends the batch's records (a tombstone is a header with length 0) to seg and flushes them.
 * Returns 0 or an errno. */
static int append_batch(struct spool_segment *seg, struct spool_file *batch, size_t count,
                        uint64_t *octets)
{
    struct iovec *iov = calloc(3 * count, sizeof *iov);
    struct spool_file *f;
    int n = 0, e = 0;
    if (iov == NULL)
        return ENOMEM;
    *octets = 0;
    for (f = batch; f != NULL; f = f->next) {
        journal_header(f->record, f->id, f->head, f->head_len, f->tomb ? NULL : f->buf,
                       f->tomb ? 0 : f->used);
        iov[n++] = (struct iovec){f->record, JOURNAL_HEADER_LEN};
        if (f->head_len > 0)
            iov[n++] = (struct iovec){f->head, f->head_len};
        if (!f->tomb && f->used > 0)
            iov[n++] = (struct iovec){f->buf, f->used};
        *octets += JOURNAL_HEADER_LEN + f->head_len + (f->tomb ? 0 : f->used);
    }
    if (writev_all(seg->fd, iov, n) == -1 || fdatasync(seg->fd) == -1)
        e = errno;
    free(iov);
    return e;
}

/* Drops id from the index (its segment holds one live message less). Under lock. */
static void index_drop(struct spool *s, const char *id)
{
    struct journal_entry gone;
    if (jindex_del(&s->index, id, &gone) && gone.seg->live > 0)
        gone.seg->live--;
}

/* A durable batch enters the index: messages point at their records in seg (whose first one
 * starts at `base`), tombstones drop theirs. False when the index ran out of memory (the
 * messages are durable; they are found at the next start). Under lock. */
static bool index_batch(struct spool *s, struct spool_segment *seg, uint64_t base,
                        struct spool_file *batch)
{
    bool ok = true;
    for (struct spool_file *f = batch; f != NULL; f = f->next) {
        size_t len = f->tomb ? 0 : f->head_len + f->used;
        if (f->tomb) {
            index_drop(s, f->id);
        } else if (jindex_put(&s->index, f->id, seg, base + JOURNAL_HEADER_LEN, len) != NULL) {
            seg->live++;
        } else {
            ok = false;
            f->journaled = false; /* not announced: delivered after the next start */
        }
        base += JOURNAL_HEADER_LEN + len;
    }
    return ok;
}

void spool_journal_commit(struct spool *s, struct spool_file *batch)
{
    struct spool_segment *seg;
    struct spool_file *f, *next;
    size_t count = 0;
    uint64_t octets = 0, base = 0;
    int e = 0;

    for (f = batch; f != NULL; f = f->next)
        count++;
    pthread_mutex_lock(&s->lock);
    while (s->resetting || s->appending)
        pthread_cond_wait(&s->journal_cond, &s->lock);
    seg = s->active;
    if (seg != NULL && seg->size >= SPOOL_SEGMENT_MAX)
        s->active = seg = NULL; /* full: the next one takes over */
    s->appending = true;
    pthread_mutex_unlock(&s->lock);

    if (seg == NULL && (seg = segment_open(s, &e)) != NULL) {
        pthread_mutex_lock(&s->lock);
        segment_link(s, seg);
        pthread_mutex_unlock(&s->lock);
    }
    if (seg != NULL) {
        base = seg->size;
        e = append_batch(seg, batch, count, &octets);
        if (e != 0)
            log_error("event=journal-failed op=append path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                      seg->name, strerror(e));
    }

    pthread_mutex_lock(&s->lock);
    s->appending = false;
    if (seg != NULL && e == 0) {
        seg->size += octets;
        seg->last_ms = now_ms();
        s->active = seg;
        if (!index_batch(s, seg, base, batch))
            log_error("event=journal-failed op=index path=\"%s/journal/%s\" error=\"%s\" "
                      "note=\"durable; delivered after the next start\"",
                      s->dir, seg->name, strerror(ENOMEM));
    } else if (seg != NULL) {
        /* Its tail may be torn: nothing more goes into it (the next start reads it up to the
         * torn record, after every record it held before). */
        s->active = NULL;
    }
    s->batches++;
    pthread_cond_broadcast(&s->journal_cond);
    pthread_mutex_unlock(&s->lock);

    for (f = batch; f != NULL; f = next) {
        next = f->next;
        if (f->done != NULL)
            f->done(f->arg, e, f->id);
        if (e == 0 && !f->tomb && f->journaled && s->ready != NULL)
            s->ready(f->id, s->ready_arg);
        spool_file_free(f);
    }
}

bool spool_journal_has_room(struct spool *s)
{
    return s->keeper_started && !s->keeper_stopping;
}

/* ---- leaving the journal ---- */

struct forget_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t left;
    int err;
};

static void forget_done(void *arg, int err, const char *queue_id)
{
    struct forget_wait *w = arg;
    (void)queue_id;
    pthread_mutex_lock(&w->lock);
    if (err != 0 && w->err == 0)
        w->err = err;
    w->left--;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int spool_journal_forget(struct spool *s, const char (*ids)[QUEUE_ID_LEN + 1], size_t n)
{
    struct forget_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n, 0};
    size_t i;
    for (i = 0; i < n; i++) {
        struct spool_file *f = spool_tombstone(s, ids[i]);
        if (f == NULL) {
            pthread_mutex_lock(&w.lock);
            w.left -= n - i;
            w.err = ENOMEM;
            pthread_mutex_unlock(&w.lock);
            break;
        }
        spool_commit(f, forget_done, &w);
    }
    pthread_mutex_lock(&w.lock);
    while (w.left > 0)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    if (w.err != 0) {
        errno = w.err;
        return -1;
    }
    return 0;
}

int spool_journal_extract(struct spool *s, const char *id, const unsigned char *payload,
                          size_t len, int dirfd)
{
    int fd = openat(s->tmp_fd, id, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    if (spool_write_all(fd, payload, len) == -1 || fdatasync(fd) == -1) {
        int e = errno;
        close(fd);
        (void)unlinkat(s->tmp_fd, id, 0);
        errno = e;
        return -1;
    }
    if (close(fd) == -1 ||
        (renameat2(s->tmp_fd, id, dirfd, id, RENAME_NOREPLACE) == -1 &&
         (errno != EINVAL || renameat(s->tmp_fd, id, dirfd, id) == -1))) {
        int e = errno;
        (void)unlinkat(s->tmp_fd, id, 0);
        errno = e;
        return -1;
    }
    return 0;
}

/* ---- reading ---- */

static int read_whole(int dirfd, const char *name, unsigned char **buf, size_t *len)
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
static char **segment_names(struct spool *s, size_t *n)
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
        if (strlen(de->d_name) != 16 || !all_hex((const unsigned char *)de->d_name, 16, true))
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

static void free_names(char **names, size_t n)
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
    names = segment_names(s, &n);
    if (names == NULL && errno != 0)
        return -1;
    for (i = 0; i < n && rc == 0; i++) {
        unsigned char *buf;
        size_t len = 0, off = 0;
        struct journal_record r;
        struct stat st;
        if (read_whole(s->journal_fd, names[i], &buf, &len) == -1) {
            if (errno == ENOENT)
                continue; /* removed meanwhile: nothing of it lives */
            rc = -1;
            break;
        }
        int64_t mtime_ms = 0;
        if (fstatat(s->journal_fd, names[i], &st, 0) == 0)
            mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        while (rc == 0 && journal_next(buf, len, &off, &r) == 1)
            rc = fn(&r, mtime_ms, arg);
        free(buf);
    }
    free_names(names, n);
    return rc;
}

/* A reader's pass over the journal: the ids that tombstones forgot, sorted. */
struct forgotten {
    char (*v)[QUEUE_ID_LEN + 1];
    size_t n, cap;
};

static int collect_tomb(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    struct forgotten *t = arg;
    (void)mtime_ms;
    if (r->len != 0)
        return 0;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char(*v)[QUEUE_ID_LEN + 1] = realloc(t->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    memcpy(t->v[t->n++], r->id, QUEUE_ID_LEN + 1);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

struct live_scan {
    struct forgotten tombs;
    spool_journal_fn fn;
    void *arg;
};

static int live_record(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    struct live_scan *ls = arg;
    if (r->len == 0 || (ls->tombs.n > 0 && bsearch(r->id, ls->tombs.v, ls->tombs.n,
                                                    sizeof *ls->tombs.v, cmp_id) != NULL))
        return 0;
    return ls->fn(r, mtime_ms, ls->arg);
}

int spool_journal_scan(struct spool *s, spool_journal_fn fn, void *arg)
{
    struct live_scan ls = {{0}, fn, arg};
    int rc = each_record(s, collect_tomb, &ls.tombs);
    if (rc == 0) {
        if (ls.tombs.n > 1)
            qsort(ls.tombs.v, ls.tombs.n, sizeof *ls.tombs.v, cmp_id);
        rc = each_record(s, live_record, &ls);
    }
    free(ls.tombs.v);
    return rc < 0 ? -1 : 0;
}

static int index_segment(struct spool *s, const char *name, char *err, size_t errlen);
static char **segment_names(struct spool *s, size_t *n);
static void free_names(char **names, size_t n);

/* A reader indexes the journal when first asked (a snapshot; submitctl runs briefly), so that a
 * listing does not read every segment once per message. Under lock. 0, or -1 with errno. */
static int reader_index(struct spool *s)
{
    char err[256];
    size_t n;
    if (s->reader_indexed)
        return 0;
    char **names = segment_names(s, &n);
    if (names == NULL && errno != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (index_segment(s, names[i], err, sizeof err) == -1 && errno != ENOENT) {
            int e = errno;
            free_names(names, n);
            errno = e;
            return -1;
        }
    free_names(names, n);
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
    if (e != NULL && payload != NULL) {
        /* under the lock: the keeper closes a segment only once nothing in it lives */
        *payload = malloc(e->len > 0 ? e->len : 1);
        if (*payload == NULL || read_at(e->seg->fd, *payload, e->len, e->off) == -1) {
            int er = errno;
            free(*payload);
            *payload = NULL;
            pthread_mutex_unlock(&s->lock);
            /* a reader's snapshot may be older than a segment the server emptied since */
            if (s->reader && er == EIO)
                return 0;
            errno = er;
            return -1;
        }
        *len = e->len;
    }
    rc = e != NULL;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

struct id_list {
    char (*v)[QUEUE_ID_LEN + 1];
    size_t n, cap;
    bool failed;
};

static void add_id(struct id_list *l, const char *id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char(*v)[QUEUE_ID_LEN + 1] = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            l->failed = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n++], id, QUEUE_ID_LEN + 1);
}

static void entry_id(const struct journal_entry *e, void *arg)
{
    add_id(arg, e->id);
}

int spool_journal_ids(struct spool *s, char (**ids)[QUEUE_ID_LEN + 1], size_t *n)
{
    struct id_list l = {0};
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
        qsort(l.v, l.n, sizeof *l.v, cmp_id);
    *ids = l.v;
    *n = l.n;
    return 0;
}

/* ---- open ---- */

/* Indexes one segment's records (the segment is kept, and nothing is appended to it: its tail
 * may be torn). A reader opens it read-only. */
static int index_segment(struct spool *s, const char *name, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len = 0, off = 0;
    struct journal_record r;
    struct stat st;
    struct spool_segment *g = calloc(1, sizeof *g);
    if (g == NULL || read_whole(s->journal_fd, name, &buf, &len) == -1) {
        snprintf(err, errlen, "read %s/journal/%s: %s", s->dir, name, strerror(errno));
        free(g);
        return -1;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    g->fd = openat(s->journal_fd, name, (s->reader ? O_RDONLY : O_RDWR | O_APPEND) | O_CLOEXEC);
    if (g->fd == -1 || fstat(g->fd, &st) == -1) {
        snprintf(err, errlen, "open %s/journal/%s: %s", s->dir, name, strerror(errno));
        goto fail;
    }
    g->size = len;
    g->last_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    segment_link(s, g);
    while (journal_next(buf, len, &off, &r) == 1) {
        if (r.len == 0) {
            index_drop(s, r.id);
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

static bool exists_in(int dirfd, const char *id)
{
    struct stat st;
    return fstatat(dirfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A message moved to queue/ or hold/ whose tombstone a crash stopped: the file wins, and the
 * tombstone is written now (else, once the file is delivered and removed, the record would
 * bring the message back at the next start). */
static int forget_moved(struct spool *s, char *err, size_t errlen)
{
    char(*ids)[QUEUE_ID_LEN + 1] = NULL;
    size_t n = 0, moved = 0;
    if (spool_journal_ids(s, &ids, &n) == -1) {
        snprintf(err, errlen, "index %s/journal: %s", s->dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (exists_in(s->queue_fd, ids[i]) || exists_in(s->hold_fd, ids[i]))
            memcpy(ids[moved++], ids[i], sizeof ids[i]);
    int rc = moved > 0 ? spool_journal_forget(s, (const char(*)[QUEUE_ID_LEN + 1])ids, moved) : 0;
    if (rc == -1)
        snprintf(err, errlen, "write %s/journal: %s", s->dir, strerror(errno));
    free(ids);
    return rc;
}

int spool_journal_open_reader(struct spool *s, int spool_fd)
{
    s->journal_fd = openat(spool_fd, "journal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s->journal_fd == -1 && errno != ENOENT ? -1 : 0;
}

int spool_journal_open(struct spool *s, int spool_fd, char *err, size_t errlen)
{
    bool created = false;
    size_t n;
    if (mkdirat(spool_fd, "journal", 0700) == 0)
        created = true;
    else if (errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s/journal: %s", s->dir, strerror(errno));
        return -1;
    }
    s->journal_fd = openat(spool_fd, "journal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->journal_fd == -1 || (created && fsync(spool_fd) == -1)) {
        snprintf(err, errlen, "%s %s/journal: %s", s->journal_fd == -1 ? "open" : "fsync", s->dir,
                 strerror(errno));
        return -1;
    }
    err[0] = '\0';
    char **names = segment_names(s, &n);
    if (names == NULL && errno != 0) {
        snprintf(err, errlen, "read %s/journal: %s", s->dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (index_segment(s, names[i], err, errlen) == -1) {
            free_names(names, n);
            return -1;
        }
    free_names(names, n);
    if (forget_moved(s, err, errlen) == -1)
        return -1;
    s->replayed = (int)s->index.count;
    return 0;
}
