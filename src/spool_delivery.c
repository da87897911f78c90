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

/* Whether the journal holds id (acknowledged, living in its segment). A journal that cannot be
 * read counts as "no". */
static bool in_journal(struct spool *s, const char *id)
{
    int e = errno; /* the caller's: the lookup may set errno even when it succeeds */
    bool found = spool_journal_get(s, id, NULL, NULL) == 1;
    errno = e;
    return found;
}

/* Moves a message living in the journal to hold/ID: the file is written and made durable
 * (hold/ fsynced), then a tombstone takes it out of the journal. -1 with ENOENT when the
 * journal does not hold it (any more), EAGAIN for a reader's spool (only the server writes the
 * journal). */
static int hold_from_journal(struct spool *s, const char *id)
{
    unsigned char *payload = NULL;
    size_t len = 0;
    int rc = -1, found;
    if (s->reader) {
        errno = in_journal(s, id) ? EAGAIN : ENOENT;
        return -1;
    }
    pthread_mutex_lock(&s->move_lock);
    found = spool_journal_get(s, id, &payload, &len);
    if (found == 0)
        errno = ENOENT;
    if (found == 1 && spool_journal_extract(s, id, payload, len, s->hold_fd) == 0) {
        char ids[1][QUEUE_ID_LEN + 1];
        snprintf(ids[0], sizeof ids[0], "%s", id);
        if (fsync(s->hold_fd) == -1)
            log_error("event=spool-failed op=fsync path=\"%s/hold\" error=\"%s\"", s->dir,
                      strerror(errno));
        else if (spool_journal_forget(s, (const char(*)[QUEUE_ID_LEN + 1])ids, 1) == 0)
            rc = 0;
        /* On a failure hold/ID stays next to the record: the next start keeps the held copy. */
    }
    free(payload);
    pthread_mutex_unlock(&s->move_lock);
    return rc;
}

/* from/ID -> to/ID, never replacing a file, then fsyncs both directories (the new name first).
 * -1 with ENOENT when from/ID does not exist, EEXIST when to/ID does. */
static int move(struct spool *s, int from, const char *from_name, int to, const char *to_name,
                const char *id)
{
    if (!spool_valid_id(id)) {
        errno = ENOENT;
        return -1;
    }
    if (spool_rename_noreplace(from, id, to, id) == -1)
        return -1;
    const char *failed = fsync(to) == -1 ? to_name : fsync(from) == -1 ? from_name : NULL;
    if (failed != NULL) {
        int e = errno;
        log_error("event=spool-failed op=fsync path=\"%s/%s\" error=\"%s\"", s->dir, failed,
                  strerror(e));
        errno = e;
        return -1;
    }
    return 0;
}

int spool_hold(struct spool *s, const char *queue_id)
{
    if (move(s, s->queue_fd, "queue", s->hold_fd, "hold", queue_id) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    if (hold_from_journal(s, queue_id) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    /* moved from the journal to queue/ meanwhile */
    return move(s, s->queue_fd, "queue", s->hold_fd, "hold", queue_id);
}

int spool_release(struct spool *s, const char *queue_id)
{
    return move(s, s->hold_fd, "hold", s->queue_fd, "queue", queue_id);
}

bool spool_is_held(struct spool *s, const char *queue_id)
{
    return spool_valid_id(queue_id) && spool_exists_in(s->hold_fd, queue_id);
}

/* What spool_remove did with one id. */
enum fate {
    FATE_KEPT = 0,     /* not removed (an error; a reader and a journal record): state stays */
    FATE_FROM_QUEUE,   /* queue/ID unlinked */
    FATE_FROM_JOURNAL, /* living in the journal: a tombstone will say it is gone */
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
    if (in_journal(s, id)) { /* only the server writes the journal */
        if (!s->reader)
            return FATE_FROM_JOURNAL;
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
    char(*tombs)[QUEUE_ID_LEN + 1] = calloc(n, sizeof *tombs);
    size_t n_tombs = 0;
    if (fate == NULL || tombs == NULL) {
        free(fate);
        free(tombs);
        return -1;
    }
    /* The keeper does not move a message out of the journal while we look where it is. */
    pthread_mutex_lock(&s->move_lock);
    for (i = 0; i < n; i++) {
        int e = 0;
        fate[i] = (unsigned char)unlink_message(s, queue_ids[i], &e);
        sync_queue |= fate[i] == FATE_FROM_QUEUE;
        sync_hold |= fate[i] == FATE_FROM_HOLD;
        if (fate[i] == FATE_FROM_JOURNAL)
            memcpy(tombs[n_tombs++], queue_ids[i], QUEUE_ID_LEN + 1);
        if (e == ENOENT)
            absent = e;
        else if (e != 0 && err == 0)
            err = e;
    }
    /* Only once the unlinks (and tombstones) are durable may the state go: else a crash could
     * bring a message back without its state, and it would be delivered again to every
     * recipient. */
    const char *failed = sync_queue && fsync(s->queue_fd) == -1 ? "queue"
                         : sync_hold && fsync(s->hold_fd) == -1 ? "hold"
                         : n_tombs > 0 &&
                                 spool_journal_forget(
                                     s, (const char(*)[QUEUE_ID_LEN + 1])tombs, n_tombs) == -1
                             ? "journal"
                             : NULL;
    pthread_mutex_unlock(&s->move_lock);
    free(tombs);
    if (failed != NULL) {
        int e = errno;
        log_error("event=spool-failed op=%s path=\"%s/%s\" error=\"%s\"",
                  strcmp(failed, "journal") == 0 ? "forget" : "fsync", s->dir, failed,
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
    char(*journal)[QUEUE_ID_LEN + 1] = NULL;
    size_t n, n_journal = 0, i, j = 0;
    int count = 0;
    if (spool_read_ids(held ? s->hold_fd : s->queue_fd, &ids, &n) == -1)
        return -1;
    /* not held: queue/ and the journal, merged in id order (an id in both is a message moved
     * out of the journal whose tombstone is not written yet: once) */
    if (!held && spool_journal_ids(s, &journal, &n_journal) == -1) {
        free(ids);
        return -1;
    }
    for (i = 0; i < n || j < n_journal;) {
        const char *a = i < n ? ids + i * (QUEUE_ID_LEN + 1) : NULL;
        const char *b = j < n_journal ? journal[j] : NULL;
        int c = a == NULL ? 1 : b == NULL ? -1 : strcmp(a, b);
        const char *id = c <= 0 ? a : b;
        i += c <= 0;
        j += c >= 0;
        count++;
        if (cb != NULL)
            cb(id, arg);
    }
    free(ids);
    free(journal);
    return count;
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
    char(*journal)[QUEUE_ID_LEN + 1] = NULL;
    char *ids;
    size_t n, n_journal = 0, i;
    if (drop_held_copies(s, err, errlen) == -1)
        return -1;
    /* the messages living in the journal, from the index spool_journal_open just built */
    if (spool_journal_ids(s, &journal, &n_journal) == -1) {
        snprintf(err, errlen, "index %s/journal: %s", s->dir, strerror(errno));
        return -1;
    }
    if (spool_read_ids(s->state_fd, &ids, &n) == -1) {
        snprintf(err, errlen, "read %s/state: %s", s->dir, strerror(errno));
        free(journal);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const char *id = ids + i * (QUEUE_ID_LEN + 1);
        const char *op = NULL;
        struct stat st;
        if (fstatat(s->queue_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
            (errno == ENOENT && fstatat(s->hold_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0) ||
            (n_journal > 0 && bsearch(id, journal, n_journal, sizeof *journal, spool_cmp_id)))
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
            free(journal);
            return -1;
        }
    }
    free(ids);
    free(journal);
    return 0;
}
