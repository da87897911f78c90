/* spool_keeper.c: the journal's keeper thread (docs/spool.md, "Journal"). Messages live in the
 * journal segments until they are delivered, held or deleted; the keeper reclaims the space:
 * segments whose messages have all gone are removed, oldest first (a tombstone in a younger
 * segment may speak for a record in an older one, so an older segment always goes first), and
 * the active segment, once nothing in the journal lives, is emptied and reused instead of a new
 * file being made. A message still queued when its segment is journal_age_ms old, or when
 * the journal holds more than SPOOL_SEGMENTS_MAX segments, is moved to queue/ID (a file of its
 * own, as a large message has), so one deferred message never pins a segment of delivered ones. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logger.h"
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

/* Unlinks the oldest segments that hold nothing live (never the active one, nor one the commit
 * thread is appending to: a new segment holds nothing live until its first batch is durable),
 * and empties the active one when it is the only segment and holds nothing live. */
static void tidy(struct spool *s)
{
    struct spool_segment *gone = NULL, **tail = &gone, *reset = NULL, *g;
    pthread_mutex_lock(&s->lock);
    while ((g = s->segs) != NULL && g->live == 0 && !g->pinned && g != s->active &&
           g != s->writing) {
        s->segs = g->next;
        g->next = NULL;
        *tail = g;
        tail = &g->next;
    }
    g = s->segs;
    if (g != NULL && g == s->active && g->next == NULL && g->live == 0 && !g->pinned &&
        g->size > 0 && !s->appending) {
        reset = g;
        s->resetting = true;
    }
    pthread_mutex_unlock(&s->lock);

    if (reset != NULL) {
        /* Emptied, not removed: the next batch appends to it without creating a file. */
        bool failed = ftruncate(reset->fd, 0) == -1 || fdatasync(reset->fd) == -1;
        if (failed)
            log_error("event=journal-failed op=truncate path=\"%s/journal/%s\" error=\"%s\"",
                      s->dir, reset->name, strerror(errno));
        pthread_mutex_lock(&s->lock);
        if (failed)
            s->active = NULL; /* no more appends; removed once nothing lives in it (now) */
        else
            reset->size = 0;
        s->resetting = false;
        pthread_cond_broadcast(&s->journal_cond);
        pthread_mutex_unlock(&s->lock);
    }
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
        spool_journal_forget(s, (const char(*)[QUEUE_ID_LEN + 1])c.ids.v, moved) == -1) {
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
    pthread_mutex_lock(&s->lock);
    while (!s->keeper_stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long tick = s->keeper_tick_ms;
        until.tv_sec += tick / 1000;
        until.tv_nsec += (tick % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        (void)pthread_cond_timedwait(&s->journal_cond, &s->lock, &until);
        if (s->keeper_stopping)
            break;
        int64_t now = spool_now_ms();
        struct spool_segment *g = now >= retry_at ? move_candidate(s, now) : NULL;
        pthread_mutex_unlock(&s->lock);
        if (g != NULL) {
            if (move_out(s, g) == 0) {
                pause_ms = 0;
            } else {
                pause_ms = pause_ms == 0                       ? MOVE_RETRY_MIN_MS
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
    if (removed && fsync(s->journal_fd) == -1)
        log_error("event=journal-failed op=fsync path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
    jindex_free(&s->index);
}
