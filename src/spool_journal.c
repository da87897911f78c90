/* spool_journal.c: the spool's journal (docs/spool.md, "Journal"), a log-structured queue.
 * Messages that fit in memory are appended, a batch at a time, to a segment file in
 * DIR/spool/journal/ and made durable with one fdatasync; that is when the client may get its
 * 250. The message then lives in its segment (found through an in-memory index) until it is
 * delivered, held or deleted: a tombstone record, group-committed the same way, says it is gone.
 * No file per message is ever made for it unless it stays queued long (spool_keeper.c). At open
 * the segments are read back into the index (spool_journal_read.c). */
#include "spool_journal.h"

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

#include "logger.h"
#include "spool_internal.h"

/* ---- segments ---- */

int64_t spool_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Puts g at the young end of the segment list. Under lock. */
void spool_segment_link(struct spool *s, struct spool_segment *g)
{
    struct spool_segment **pp = &s->segs;
    while (*pp != NULL)
        pp = &(*pp)->next;
    g->next = NULL;
    *pp = g;
}

/* A name for a segment started now: the time in microseconds, and always past every segment
 * name there is (a clock stepped back must not put a younger segment before an older one: the
 * start reads them in name order, and a tombstone must come after its record). Only the commit
 * thread names segments. */
static void segment_name(struct spool *s, char name[JOURNAL_SEGMENT_NAME_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    s->segment_clock = t > s->segment_clock ? t : s->segment_clock + 1;
    snprintf(name, JOURNAL_SEGMENT_NAME_LEN + 1, "%016" PRIX64, s->segment_clock);
}

/* Gives the spare its segment name (a rename: its blocks are allocated already). Whatever the
 * file held is keyed by another name, so it reads as nothing in the new segment. 0 or an errno;
 * on failure the spare is discarded. */
static int spare_take(struct spool *s, struct spool_segment *seg)
{
    char name[JOURNAL_SEGMENT_NAME_LEN + 1];
    int e = EEXIST;
    for (int tries = 0; tries < 16 && e == EEXIST; tries++) {
        segment_name(s, name);
        e = spool_rename_noreplace(s->journal_fd, SPOOL_SPARE_NAME, s->journal_fd, name) == 0
                ? 0
                : errno;
    }
    if (e != 0) {
        log_error("event=journal-failed op=rename path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                  SPOOL_SPARE_NAME, strerror(e));
        close(seg->fd);
        (void)unlinkat(s->journal_fd, SPOOL_SPARE_NAME, 0);
        return e;
    }
    memcpy(seg->name, name, sizeof name);
    return 0;
}

/* A new segment file (no spare was ready): appends to it grow it. 0 or an errno. */
static int segment_create(struct spool *s, struct spool_segment *seg)
{
    for (int tries = 0; tries < 16; tries++) {
        segment_name(s, seg->name);
        seg->fd = openat(s->journal_fd, seg->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (seg->fd != -1 || errno != EEXIST)
            break;
    }
    if (seg->fd == -1) {
        int e = errno;
        log_error("event=journal-failed op=create path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                  seg->name, strerror(e));
        return e;
    }
    return 0;
}

/* Starts the next segment: the spare when the keeper has one ready (spare, else NULL), or a
 * new file. Its name is durable before anything in it is acknowledged. */
static struct spool_segment *segment_start(struct spool *s, struct spool_segment *spare, int *err)
{
    struct spool_segment *seg = spare;
    if (seg != NULL && (*err = spare_take(s, seg)) != 0) {
        free(seg);
        seg = NULL;
    }
    if (seg == NULL) {
        if ((seg = calloc(1, sizeof *seg)) == NULL) {
            *err = errno;
            return NULL;
        }
        if ((*err = segment_create(s, seg)) != 0) {
            free(seg);
            return NULL;
        }
    }
    if (fsync(s->journal_fd) == -1) {
        *err = errno;
        log_error("event=journal-failed op=fsync path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
        close(seg->fd);
        (void)unlinkat(s->journal_fd, seg->name, 0);
        free(seg);
        return NULL;
    }
    seg->size = 0;
    seg->live = 0;
    seg->reusable = true;
    seg->last_ms = spool_now_ms();
    *err = 0;
    return seg;
}

/* Writes iov[0..n) completely at offset off (pwritev may stop early, and takes at most IOV_MAX
 * at a time). */
static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (uint64_t)w;
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

/* The octets a batch's records take (a tombstone is a header with length 0). */
static uint64_t batch_octets(const struct spool_file *batch, size_t *count)
{
    uint64_t octets = 0;
    *count = 0;
    for (const struct spool_file *f = batch; f != NULL; f = f->next) {
        octets += JOURNAL_HEADER_LEN + f->head_len + (f->tomb ? 0 : f->used);
        (*count)++;
    }
    return octets;
}

/* Writes the batch's records into seg after what it holds and flushes them. Within the spare's
 * zeros this overwrites allocated blocks, and fdatasync has no size or extent to record.
 * Returns 0 or an errno. */
static int append_batch(struct spool_segment *seg, struct spool_file *batch, size_t count,
                        uint64_t octets)
{
    static const unsigned char zeros[SPOOL_PAGE];
    struct iovec *iov = calloc(3 * count + 1, sizeof *iov);
    struct spool_file *f;
    int n = 0, e = 0;
    if (iov == NULL)
        return ENOMEM;
    for (f = batch; f != NULL; f = f->next) {
        journal_header(f->record, f->id, seg->name, f->head, f->head_len, f->tomb ? NULL : f->buf,
                       f->tomb ? 0 : f->used);
        iov[n++] = (struct iovec){f->record, JOURNAL_HEADER_LEN};
        if (f->head_len > 0)
            iov[n++] = (struct iovec){f->head, f->head_len};
        if (!f->tomb && f->used > 0)
            iov[n++] = (struct iovec){f->buf, f->used};
    }
    /* Zeros over the spare's zeros up to the end of the last page: a page the keeper filled
     * directly is not in the page cache, and writing only part of it would read it first. */
    uint64_t end = seg->size + octets, pad = (SPOOL_PAGE - end % SPOOL_PAGE) % SPOOL_PAGE;
    if (pad > 0 && end + pad <= seg->filled)
        iov[n++] = (struct iovec){(void *)zeros, (size_t)pad};
    if (pwritev_all(seg->fd, iov, n, seg->size) == -1 || fdatasync(seg->fd) == -1)
        e = errno;
    free(iov);
    return e;
}

/* Drops id from the index (its segment holds one live message less). Under lock. */
void spool_index_drop(struct spool *s, const char *id)
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
            spool_index_drop(s, f->id);
        } else if (jindex_put(&s->index, f->id, seg, base + JOURNAL_HEADER_LEN, len) != NULL) {
            seg->live++;
        } else {
            ok = false;
            seg->pinned = true;   /* the keeper must not take the segment away */
            f->journaled = false; /* not announced: delivered after the next start */
        }
        base += JOURNAL_HEADER_LEN + len;
    }
    return ok;
}

void spool_journal_commit(struct spool *s, struct spool_file *batch)
{
    struct spool_segment *seg, *spare = NULL;
    struct spool_file *f, *next;
    size_t count;
    uint64_t octets = batch_octets(batch, &count), base = 0;
    int e = 0;

    pthread_mutex_lock(&s->lock);
    while (s->appending)
        pthread_cond_wait(&s->append_cond, &s->lock);
    seg = s->active;
    if (seg != NULL && seg->size > 0 && seg->size + octets > SPOOL_SEGMENT_MAX)
        s->active = seg = NULL; /* full: the next one takes over */
    if (seg == NULL) {
        spare = s->spare;
        s->spare = NULL;
        s->spare_taking = spare != NULL; /* the keeper makes no new spare until it is renamed */
    }
    s->appending = true;
    s->writing = seg; /* the keeper leaves it alone, even if it holds nothing live yet */
    pthread_mutex_unlock(&s->lock);

    bool started = seg == NULL;
    if (started) {
        seg = segment_start(s, spare, &e);
        pthread_mutex_lock(&s->lock);
        s->spare_taking = false;
        if (seg != NULL) {
            spool_segment_link(s, seg);
            s->writing = seg;
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (seg != NULL) {
        base = seg->size;
        e = append_batch(seg, batch, count, octets);
        if (e != 0)
            log_error("event=journal-failed op=append path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                      seg->name, strerror(e));
    }

    pthread_mutex_lock(&s->lock);
    s->appending = false;
    s->writing = NULL;
    if (seg != NULL && e == 0) {
        seg->size += octets;
        seg->last_ms = spool_now_ms();
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
    pthread_cond_broadcast(&s->append_cond);
    /* The keeper is woken only when a segment started (its spare went into it, or it may make
     * one now that the rename is done); its other work waits for its tick. Waking it after every
     * batch cost a thread switch and the lock per batch. */
    if (started)
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

int spool_journal_extract(struct spool *s, const char *id, const unsigned char *payload, size_t len,
                          int dirfd)
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
    if (close(fd) == -1 || (renameat2(s->tmp_fd, id, dirfd, id, RENAME_NOREPLACE) == -1 &&
                            (errno != EINVAL || renameat(s->tmp_fd, id, dirfd, id) == -1))) {
        int e = errno;
        (void)unlinkat(s->tmp_fd, id, 0);
        errno = e;
        return -1;
    }
    return 0;
}

/* ---- open ---- */

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
        if (spool_exists_in(s->queue_fd, ids[i]) || spool_exists_in(s->hold_fd, ids[i]))
            memcpy(ids[moved++], ids[i], sizeof ids[i]);
    int rc = moved > 0 ? spool_journal_forget(s, (const char(*)[QUEUE_ID_LEN + 1]) ids, moved) : 0;
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
    /* a spare the last run made ready: its content is unknown, the keeper makes a new one */
    if (unlinkat(s->journal_fd, SPOOL_SPARE_NAME, 0) == -1 && errno != ENOENT) {
        snprintf(err, errlen, "remove %s/journal/%s: %s", s->dir, SPOOL_SPARE_NAME,
                 strerror(errno));
        return -1;
    }
    err[0] = '\0';
    char **names = spool_journal_names(s, &n);
    if (names == NULL && errno != 0) {
        snprintf(err, errlen, "read %s/journal: %s", s->dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (spool_journal_index_segment(s, names[i], err, errlen) == -1) {
            spool_journal_free_names(names, n);
            return -1;
        }
    spool_journal_free_names(names, n);
    if (forget_moved(s, err, errlen) == -1)
        return -1;
    s->replayed = (int)s->index.count;
    return 0;
}
