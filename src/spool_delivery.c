/* spool_delivery.c: the delivery side of the spool (docs/spool.md, "Hold and removal"): moving a
 * message between DIR/spool/queue/ and DIR/spool/hold/, removing finished or deleted messages
 * in the order that keeps a removed message from coming back without its state (queue/ID
 * unlinked, the directory fsynced, only then state/ID unlinked), listing the ids of either
 * directory, and the start-up clean-up of hold/ and state/. Implements no RFC; it keeps RFC 5321
 * 4.2.5's responsibility for a message until it is delivered, bounced or deleted. */
#include "spool.h"
#include "spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logger.h"

void spool_delivery_close(struct spool *s)
{
    if (s->hold_fd != -1)
        (void)close(s->hold_fd); /* directories opened read-only: nothing to flush */
    if (s->state_fd != -1)
        (void)close(s->state_fd);
    s->hold_fd = s->state_fd = -1;
}

static bool exists_in(int dirfd, const char *id)
{
    struct stat st;
    return fstatat(dirfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

struct journal_look {
    const char *id;
    bool found;
};

static int look_for_id(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    struct journal_look *look = arg;
    (void)mtime_ms;
    if (strcmp(r->id, look->id) != 0)
        return 0;
    look->found = true;
    return 1;
}

/* Whether id has an intact record in the journal: acknowledged, not yet (or only just) written
 * to queue/. A journal that cannot be read counts as "no". */
static bool in_journal(struct spool *s, const char *id)
{
    struct journal_look look = {id, false};
    int e = errno; /* the caller's: the scan sets errno even when it succeeds */
    if (spool_journal_scan(s, look_for_id, &look) == -1)
        look.found = false;
    errno = e;
    return look.found;
}

/* from/ID -> to/ID, never replacing a file, then fsyncs both directories (the new name first).
 * -1 with ENOENT when from/ID does not exist (EAGAIN when a message to hold is still only in
 * the journal), EEXIST when to/ID does. */
static int move(struct spool *s, int from, const char *from_name, int to, const char *to_name,
                const char *id)
{
    if (!spool_valid_id(id)) {
        errno = ENOENT;
        return -1;
    }
    if (renameat2(from, id, to, id, RENAME_NOREPLACE) == -1) {
        if (errno != EINVAL)
            goto fail;
        /* a file system without RENAME_NOREPLACE: look first (hold and release are rare) */
        if (exists_in(to, id)) {
            errno = EEXIST;
            goto fail;
        }
        if (renameat(from, id, to, id) == -1)
            goto fail;
    }
    const char *failed = fsync(to) == -1 ? to_name : fsync(from) == -1 ? from_name : NULL;
    if (failed != NULL) {
        int e = errno;
        log_error("event=spool-failed op=fsync path=\"%s/%s\" error=\"%s\"", s->dir, failed,
                  strerror(e));
        errno = e;
        return -1;
    }
    return 0;
fail: {
    int e = errno;
    if (e == ENOENT && from == s->queue_fd && in_journal(s, id))
        e = EAGAIN;
    errno = e; /* in_journal may have changed it */
    return -1;
}
}

int spool_hold(struct spool *s, const char *queue_id)
{
    return move(s, s->queue_fd, "queue", s->hold_fd, "hold", queue_id);
}

int spool_release(struct spool *s, const char *queue_id)
{
    return move(s, s->hold_fd, "hold", s->queue_fd, "queue", queue_id);
}

bool spool_is_held(struct spool *s, const char *queue_id)
{
    return spool_valid_id(queue_id) && exists_in(s->hold_fd, queue_id);
}

/* What spool_remove did with one id. */
enum fate {
    FATE_KEPT = 0,   /* not removed (an error, or only in the journal): state stays */
    FATE_FROM_QUEUE, /* queue/ID unlinked */
    FATE_FROM_HOLD,  /* hold/ID unlinked */
    FATE_ABSENT      /* no message (removed before): its state file may go */
};

/* Unlinks queue/ID or hold/ID (queue/ again: released meanwhile). Returns the fate; *err gets
 * the errno of a failure. */
static enum fate unlink_message(struct spool *s, const char *id, int *err)
{
    const char *where = "queue";
    if (!spool_valid_id(id)) {
        *err = ENOENT;
        return FATE_KEPT; /* never a path: nothing of ours to touch */
    }
    if (unlinkat(s->queue_fd, id, 0) == 0)
        return FATE_FROM_QUEUE;
    if (errno == ENOENT) {
        where = "hold";
        if (unlinkat(s->hold_fd, id, 0) == 0)
            return FATE_FROM_HOLD;
    }
    if (errno == ENOENT) {
        where = "queue";
        if (unlinkat(s->queue_fd, id, 0) == 0)
            return FATE_FROM_QUEUE;
    }
    if (errno != ENOENT) {
        *err = errno;
        log_error("event=spool-failed op=remove path=\"%s/%s/%s\" error=\"%s\"", s->dir, where, id,
                  strerror(errno));
        return FATE_KEPT;
    }
    if (in_journal(s, id)) { /* acknowledged, not yet in queue/: not ours to remove yet */
        *err = EAGAIN;
        return FATE_KEPT;
    }
    *err = ENOENT;
    return FATE_ABSENT;
}

int spool_remove(struct spool *s, const char *const *queue_ids, size_t n)
{
    unsigned char *fate;
    bool sync_queue = false, sync_hold = false;
    int err = 0, absent = 0;
    size_t i;
    if (n == 0)
        return 0;
    fate = calloc(n, 1);
    if (fate == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        int e = 0;
        fate[i] = (unsigned char)unlink_message(s, queue_ids[i], &e);
        sync_queue |= fate[i] == FATE_FROM_QUEUE;
        sync_hold |= fate[i] == FATE_FROM_HOLD;
        if (e == ENOENT)
            absent = e;
        else if (e != 0 && err == 0)
            err = e;
    }
    /* Only once the unlinks are durable may the state go: else a crash could bring a message
     * back without its state, and it would be delivered again to every recipient. */
    const char *failed = sync_queue && fsync(s->queue_fd) == -1 ? "queue"
                         : sync_hold && fsync(s->hold_fd) == -1 ? "hold"
                                                                : NULL;
    if (failed != NULL) {
        int e = errno;
        log_error("event=spool-failed op=fsync path=\"%s/%s\" error=\"%s\"", s->dir, failed,
                  strerror(e));
        free(fate);
        errno = e;
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (fate[i] == FATE_KEPT)
            continue;
        /* A state file left behind is harmless: spool_open removes it (its message is gone). */
        if (unlinkat(s->state_fd, queue_ids[i], 0) == -1 && errno != ENOENT)
            log_error("event=spool-failed op=remove path=\"%s/state/%s\" error=\"%s\"", s->dir,
                      queue_ids[i], strerror(errno));
    }
    free(fate);
    if (err == 0)
        err = absent;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int spool_ids(struct spool *s, bool held, void (*cb)(const char *queue_id, void *arg), void *arg)
{
    char *ids;
    size_t n, i;
    if (spool_read_ids(held ? s->hold_fd : s->queue_fd, &ids, &n) == -1)
        return -1;
    for (i = 0; i < n; i++)
        if (cb != NULL)
            cb(ids + i * (QUEUE_ID_LEN + 1), arg);
    free(ids);
    return (int)n;
}

struct id_set {
    char (*v)[QUEUE_ID_LEN + 1];
    size_t n, cap;
};

static int collect_id(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    struct id_set *set = arg;
    (void)mtime_ms;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        char(*v)[QUEUE_ID_LEN + 1] = realloc(set->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        set->v = v;
        set->cap = cap;
    }
    memcpy(set->v[set->n++], r->id, QUEUE_ID_LEN + 1);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* A journal record replayed at open for a message held before the crash recreates queue/ID
 * next to hold/ID (release never makes both: it does not replace). The hold came later: the
 * copy in queue/ goes. */
static int drop_held_copies(struct spool *s, char *err, size_t errlen)
{
    char *ids;
    size_t n, i;
    bool dropped = false;
    if (spool_read_ids(s->hold_fd, &ids, &n) == -1) {
        snprintf(err, errlen, "read %s/hold: %s", s->dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        const char *id = ids + i * (QUEUE_ID_LEN + 1);
        if (unlinkat(s->queue_fd, id, 0) == 0) {
            dropped = true;
        } else if (errno != ENOENT) {
            snprintf(err, errlen, "remove %s/queue/%s: %s", s->dir, id, strerror(errno));
            free(ids);
            return -1;
        }
    }
    free(ids);
    if (dropped && fsync(s->queue_fd) == -1) {
        snprintf(err, errlen, "fsync %s/queue: %s", s->dir, strerror(errno));
        return -1;
    }
    return 0;
}

int spool_delivery_recover(struct spool *s, char *err, size_t errlen)
{
    struct id_set journal = {0};
    char *ids;
    size_t n, i;
    if (drop_held_copies(s, err, errlen) == -1)
        return -1;
    /* The replay has emptied the journal; what a reader could still see there counts anyway. */
    if (spool_journal_scan(s, collect_id, &journal) == -1) {
        snprintf(err, errlen, "read %s/journal: %s", s->dir, strerror(errno));
        free(journal.v);
        return -1;
    }
    if (journal.n > 1)
        qsort(journal.v, journal.n, sizeof *journal.v, cmp_id);
    if (spool_read_ids(s->state_fd, &ids, &n) == -1) {
        snprintf(err, errlen, "read %s/state: %s", s->dir, strerror(errno));
        free(journal.v);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const char *id = ids + i * (QUEUE_ID_LEN + 1);
        const char *op = NULL;
        struct stat st;
        if (fstatat(s->queue_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
            (errno == ENOENT && fstatat(s->hold_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0) ||
            (journal.n > 0 && bsearch(id, journal.v, journal.n, sizeof *journal.v, cmp_id)))
            continue;
        /* Its message was removed durably before the state file went (spool_remove); a
         * message that cannot be looked up keeps its state. */
        if (errno != ENOENT)
            op = "look up message of";
        else if (unlinkat(s->state_fd, id, 0) == -1 && errno != ENOENT)
            op = "remove";
        if (op != NULL) {
            snprintf(err, errlen, "%s %s/state/%s: %s", op, s->dir, id, strerror(errno));
            free(ids);
            free(journal.v);
            return -1;
        }
    }
    free(ids);
    free(journal.v);
    return 0;
}
