/* spool_keeper.c: the journal's keeper thread (docs/spool.md, "Journal"). Messages live in the
 * journal segments until they are delivered, held or deleted; the keeper reclaims the space:
 * segments whose messages have all gone are removed, oldest first (a tombstone in a younger
 * segment may speak for a record in an older one, so an older segment always goes first). It
 * keeps a spare ready for the next segment: the oldest emptied segment, or a new file, filled
 * with zeros to SPOOL_SEGMENT_MAX, so that the commit thread's appends overwrite allocated
 * blocks and its fdatasync writes no file-system metadata. A message still queued when its
 * segment is journal_age_ms old, or when the journal holds more than SPOOL_SEGMENTS_MAX
 * segments, is moved to queue/ID (a file of its own, as a large message has), so one deferred
 * message never pins a segment of delivered ones. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "logger.h"
#include "timed_wait.h"
#include "spool_internal.h"

/* The pause after a failed move (a full disk), doubling up to the maximum. */
#define MOVE_RETRY_MIN_MS 250
#define MOVE_RETRY_MAX_MS 30000

static size_t segment_count(const struct spool *s)
{
    size_t n = 0;
    for (const struct spool_segment *g = s->segs; g != NULL; g = g->next)
        n++;
    return n;
}

/* Writes fd from *at up to `to` with the zeros in zeros[0..chunk), chunk octets at most a write;
 * *at follows what was written. 0 or -1. */
static int write_zeros(int fd, const void *zeros, size_t chunk, uint64_t *at, uint64_t to)
{
    while (*at < to) {
        size_t n = to - *at < chunk ? (size_t)(to - *at) : chunk;
        ssize_t w = pwrite(fd, zeros, n, (off_t)*at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        *at += (uint64_t)w;
    }
    return 0;
}

/* Writes zeros to fd from *at up to `to` through the page cache; *at follows. 0 or -1. */
static int zeros_buffered(int fd, uint64_t *at, uint64_t to)
{
    static const unsigned char zeros[64 * 1024];
    return write_zeros(fd, zeros, sizeof zeros, at, to);
}

/* Writes zeros to the spare from *at (a multiple of SPOOL_PAGE) up to SPOOL_SEGMENT_MAX with
 * O_DIRECT, so no page-cache pages are filled, dirtied and written back for them: through the
 * page cache a 4 MiB fill cost the keeper about 25 ms of CPU, 15% of the server's per message
 * under a steady load. *at follows what was written; where direct I/O cannot be had (a file
 * system without it; a short write leaves an offset it refuses) it stops early and the caller
 * goes on buffered. */
static void zeros_direct(struct spool *s, uint64_t *at)
{
    enum { CHUNK = 1024 * 1024 };
    void *zeros = NULL;
    int fd = openat(s->journal_fd, SPOOL_SPARE_NAME, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd == -1)
        return;
    if (posix_memalign(&zeros, SPOOL_PAGE, CHUNK) == 0) {
        memset(zeros, 0, CHUNK);
        (void)write_zeros(fd, zeros, CHUNK, at, SPOOL_SEGMENT_MAX); /* a failure: see above */
        free(zeros);
    }
    close(fd);
}

/* Fills the spare (open as fd) with zeros from its end up to SPOOL_SEGMENT_MAX and flushes it:
 * up to a page boundary through the page cache, the rest direct where it can be. 0 or -1. */
static int fill_zeros(struct spool *s, int fd)
{
    struct stat st;
    if (fstat(fd, &st) == -1)
        return -1;
    uint64_t at = (uint64_t)st.st_size;
    uint64_t page_end = (at + SPOOL_PAGE - 1) / SPOOL_PAGE * SPOOL_PAGE;
    if (zeros_buffered(fd, &at, page_end < SPOOL_SEGMENT_MAX ? page_end : SPOOL_SEGMENT_MAX) != 0)
        return -1;
    zeros_direct(s, &at);
    if (zeros_buffered(fd, &at, SPOOL_SEGMENT_MAX) != 0)
        return -1;
    return fdatasync(fd);
}

/* Whether the file system has room to spare for a spare: SPOOL_SPARE_ROOM octets free besides
 * the segment. On a nearly full one the journal takes no space ahead of need. */
static bool room_for_spare(const struct spool *s)
{
    struct statvfs st;
    return fstatvfs(s->journal_fd, &st) == 0 &&
           (uint64_t)st.f_bavail * st.f_frsize >= SPOOL_SPARE_ROOM + SPOOL_SEGMENT_MAX;
}

/* Makes the spare from `from` (an emptied segment, already out of the list: renamed, its
 * records are keyed by its old name and read as nothing) or, when NULL, from a new file; fills
 * it with zeros when there is room; and makes it durable. Without a spare (a nearly full disk)
 * the commit thread makes new files itself. */
static void make_spare(struct spool *s, struct spool_segment *from)
{
    struct spool_segment *g = from;
    const char *op = "rename";
    bool roomy = room_for_spare(s);
    if (g == NULL && !roomy)
        return;
    if (g == NULL) {
        op = "create";
        if ((g = calloc(1, sizeof *g)) == NULL)
            goto fail;
        g->fd =
            openat(s->journal_fd, SPOOL_SPARE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (g->fd == -1)
            goto fail;
    } else if (renameat(s->journal_fd, g->name, s->journal_fd, SPOOL_SPARE_NAME) == -1) {
        goto fail;
    }
    snprintf(g->name, sizeof g->name, "%s", SPOOL_SPARE_NAME);
    op = "fill";
    if (roomy && fill_zeros(s, g->fd) == -1)
        goto fail;
    struct stat st;
    g->filled = fstat(g->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    op = "fsync";
    if (fsync(s->journal_fd) == -1)
        goto fail;
    g->next = NULL; /* (nothing in it lives, and it is not pinned; it starts at size 0) */
    pthread_mutex_lock(&s->lock);
    s->spare = g;
    pthread_mutex_unlock(&s->lock);
    return;
fail:
    log_error("event=journal-failed op=spare-%s path=\"%s/journal/%s\" error=\"%s\"", op, s->dir,
              g != NULL ? g->name : SPOOL_SPARE_NAME, strerror(errno));
    if (g != NULL) {
        if (g->fd != -1)
            close(g->fd);
        (void)unlinkat(s->journal_fd, g->name, 0);
        free(g);
    }
}

/* Takes away the oldest segments that hold nothing live (never the active one, nor one the
 * commit thread is appending to: a new segment holds nothing live until its first batch is
 * durable): the first of them becomes the spare when none is ready, the others are removed. */
static void tidy(struct spool *s)
{
    struct spool_segment *gone = NULL, **tail = &gone, *g, *reuse = NULL;
    pthread_mutex_lock(&s->lock);
    while ((g = s->segs) != NULL && g->live == 0 && !g->pinned && g != s->active &&
           g != s->writing) {
        s->segs = g->next;
        g->next = NULL;
        *tail = g;
        tail = &g->next;
    }
    bool want_spare = s->spare == NULL && !s->spare_taking && s->journal;
    pthread_mutex_unlock(&s->lock);

    if (want_spare && gone != NULL && gone->reusable) {
        reuse = gone;
        gone = gone->next;
    }
    if (want_spare)
        make_spare(s, reuse); /* first: older segments go first, even this way */
    if (gone == NULL)
        return;
    for (g = gone; g != NULL; g = g->next) {
        close(g->fd);
        if (unlinkat(s->journal_fd, g->name, 0) == -1)
            log_error("event=journal-failed op=remove path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                      g->name, strerror(errno));
    }
    if (fsync(s->journal_fd) == -1)
        log_error("event=journal-failed op=fsync path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
    while ((g = gone) != NULL) {
        gone = g->next;
        free(g);
    }
}

/* The oldest segment when its live messages should move out; NULL otherwise. Under lock. */
static struct spool_segment *move_candidate(struct spool *s, int64_t now)
{
    struct spool_segment *g = s->segs;
    if (g == NULL || g->live == 0 || (g == s->active && s->appending))
        return NULL;
    if (now - g->last_ms < s->journal_age_ms && segment_count(s) <= SPOOL_SEGMENTS_MAX)
        return NULL;
    return g;
}

struct collect {
    const struct spool_segment *seg;
    struct spool_idvec ids;
};

static void collect_entry(const struct journal_entry *e, void *arg)
{
    struct collect *c = arg;
    if (e->seg == c->seg && !c->ids.failed)
        (void)spool_idvec_add(&c->ids, e->id); /* a failure is in `failed` */
}

/* Moves the live messages of segment g to queue/: each written to tmp/ID, fdatasync'd and
 * renamed, queue/ fsynced once, then tombstones for all of them. A message removed meanwhile
 * (move_lock keeps that from happening during the move) is simply not there any more. Returns
 * 0 or -1 (retried later). */
static int move_out(struct spool *s, struct spool_segment *g)
{
    struct collect c = {g, {0}};
    size_t moved = 0, i;
    int rc = 0;
    pthread_mutex_lock(&s->move_lock);
    pthread_mutex_lock(&s->lock);
    if (g == s->active)
        s->active = NULL; /* retired: new messages go to a new segment */
    jindex_each(&s->index, collect_entry, &c);
    pthread_mutex_unlock(&s->lock);
    if (c.ids.failed) {
        errno = ENOMEM;
        rc = -1;
    }
    for (i = 0; rc == 0 && i < c.ids.n; i++) {
        unsigned char *payload = NULL;
        size_t len = 0;
        int found = spool_journal_get(s, c.ids.v[i], &payload, &len);
        if (found == 1 && spool_journal_extract(s, c.ids.v[i], payload, len, s->queue_fd) == -1 &&
            errno != EEXIST) /* EEXIST: moved before a crash stopped its tombstone */
            found = -1;
        free(payload);
        if (found == -1) {
            log_error("event=journal-failed op=move path=\"%s/queue/%s\" error=\"%s\"", s->dir,
                      c.ids.v[i], strerror(errno));
            rc = -1;
        } else if (found == 1) {
            memcpy(c.ids.v[moved++], c.ids.v[i], sizeof c.ids.v[i]);
        }
    }
    if (moved > 0 && fsync(s->queue_fd) == -1) {
        log_error("event=journal-failed op=fsync path=\"%s/queue\" error=\"%s\"", s->dir,
                  strerror(errno));
        rc = -1;
        moved = 0; /* not durable yet: the records stay authoritative */
    }
    if (moved > 0 &&
        spool_journal_forget(s, (const char(*)[QUEUE_ID_LEN + 1]) c.ids.v, moved) == -1) {
        log_error("event=journal-failed op=forget path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
        rc = -1;
    }
    pthread_mutex_unlock(&s->move_lock);
    if (moved > 0)
        log_info("event=journal-moved segment=%s messages=%zu", g->name, moved);
    free(c.ids.v);
    return rc;
}

static void *keeper(void *arg)
{
    struct spool *s = arg;
    long pause_ms = 0;
    int64_t retry_at = 0;
    (void)pthread_setname_np(pthread_self(), "submitd-keeper");
    pthread_mutex_lock(&s->lock);
    while (!s->keeper_stopping) {
        struct timespec until = timed_wait_deadline(CLOCK_REALTIME, s->keeper_tick_ms);
        (void)pthread_cond_timedwait(&s->journal_cond, &s->lock, &until);
        if (s->keeper_stopping)
            break;
        if (s->keeper_paused)
            continue;
        int64_t now = spool_now_ms();
        struct spool_segment *g = now >= retry_at ? move_candidate(s, now) : NULL;
        pthread_mutex_unlock(&s->lock);
        if (g != NULL) {
            if (move_out(s, g) == 0) {
                pause_ms = 0;
            } else {
                pause_ms = pause_ms == 0                      ? MOVE_RETRY_MIN_MS
                           : pause_ms * 2 > MOVE_RETRY_MAX_MS ? MOVE_RETRY_MAX_MS
                                                              : pause_ms * 2;
                retry_at = spool_now_ms() + pause_ms;
            }
        }
        tidy(s);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int spool_keeper_start(struct spool *s)
{
    int rc = pthread_create(&s->keeper_thread, NULL, keeper, s);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    s->keeper_started = true;
    return 0;
}

void spool_keeper_stop(struct spool *s)
{
    pthread_mutex_lock(&s->lock);
    bool started = s->keeper_started;
    s->keeper_stopping = true;
    pthread_cond_broadcast(&s->journal_cond);
    pthread_mutex_unlock(&s->lock);
    if (started)
        pthread_join(s->keeper_thread, NULL);
    s->keeper_started = false;
}

void spool_journal_close(struct spool *s)
{
    struct spool_segment *g;
    bool removed = false, oldest = true;
    /* What holds live messages stays for the next start; from the oldest on, segments that hold
     * nothing live go (a younger one may hold tombstones for an older one that stays). */
    while ((g = s->segs) != NULL) {
        s->segs = g->next;
        close(g->fd);
        if (oldest && !s->reader && g->live == 0 && !g->pinned &&
            unlinkat(s->journal_fd, g->name, 0) == 0)
            removed = true;
        else
            oldest = false;
        free(g);
    }
    s->active = NULL;
    if ((g = s->spare) != NULL) {
        close(g->fd);
        if (unlinkat(s->journal_fd, SPOOL_SPARE_NAME, 0) == 0)
            removed = true;
        free(g);
        s->spare = NULL;
    }
    if (removed && fsync(s->journal_fd) == -1)
        log_error("event=journal-failed op=fsync path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
    jindex_free(&s->index);
}
