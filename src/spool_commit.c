/* spool_commit.c: the spool's group-commit thread (docs/spool.md, "Life of a message"). It
 * takes every commit pending at a moment as one batch: messages still in memory go to the
 * journal (spool_journal.c) with one append and one fdatasync; messages with a file of their own
 * are made durable together (fdatasync each, rename into queue/, fsync queue/ once). Only then
 * is each caller told, so the 250 follows durability. Also spool_start and spool_close. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "spool.h"
#include "spool_internal.h"

void spool_sync_files(struct spool *s, struct spool_file *batch)
{
    struct spool_file *f;
    bool any_renamed = false;

    /* Start writeback of every file first so the device works on all of them at once; the
     * fdatasync below reports any error, so a failing hint only matters if it says so. */
    for (f = batch; f != NULL; f = f->next)
        if (f->err == 0 && sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE) == -1 &&
            errno != EINVAL && errno != ENOSYS && errno != ESPIPE)
            f->err = errno;
    for (f = batch; f != NULL; f = f->next)
        if (f->err == 0 && fdatasync(f->fd) == -1)
            f->err = errno;
    for (f = batch; f != NULL; f = f->next) {
        if (f->fd != -1 && close(f->fd) == -1 && f->err == 0)
            f->err = errno;
        f->fd = -1;
    }
    for (f = batch; f != NULL; f = f->next) {
        if (f->err != 0)
            continue;
        if (renameat2(s->tmp_fd, f->id, s->queue_fd, f->id, RENAME_NOREPLACE) == -1 &&
            (errno != EINVAL || renameat(s->tmp_fd, f->id, s->queue_fd, f->id) == -1)) {
            f->err = errno;
            continue;
        }
        f->renamed = any_renamed = true;
    }
    if (any_renamed && fsync(s->queue_fd) == -1) {
        int e = errno;
        for (f = batch; f != NULL; f = f->next)
            if (f->renamed)
                f->err = e;
    }
    /* A failed message leaves nothing behind. Should the unlink itself fail, a leftover in tmp/
     * is removed at the next start; one in queue/ may be delivered although the client was
     * told to retry: a duplicate, never a loss. Nobody is left to tell either way. */
    for (f = batch; f != NULL; f = f->next)
        if (f->err != 0)
            (void)unlinkat(f->renamed ? s->queue_fd : s->tmp_fd, f->id, 0);
}

void spool_commit_files(struct spool *s, struct spool_file *batch)
{
    struct spool_file *f, *next;
    if (batch == NULL)
        return;
    spool_sync_files(s, batch);
    pthread_mutex_lock(&s->lock);
    s->batches++;
    pthread_mutex_unlock(&s->lock);
    for (f = batch; f != NULL; f = next) {
        next = f->next;
        if (f->done != NULL)
            f->done(f->arg, f->err, f->id);
        if (f->err == 0 && s->ready != NULL)
            s->ready(f->id, s->ready_arg);
        spool_file_free(f);
    }
}

/* Journalled messages first (one append and one fdatasync for all of them), then the ones with
 * a file of their own. */
static void commit_split(struct spool *s, struct spool_file *batch)
{
    struct spool_file *journaled = NULL, **jt = &journaled, *files = NULL, **ft = &files, *next;
    for (; batch != NULL; batch = next) {
        next = batch->next;
        batch->next = NULL;
        if (batch->journaled) {
            *jt = batch;
            jt = &batch->next;
        } else {
            *ft = batch;
            ft = &batch->next;
        }
    }
    if (journaled != NULL)
        spool_journal_commit(s, journaled);
    spool_commit_files(s, files);
}

static void *commit_thread(void *arg)
{
    struct spool *s = arg;
    struct spool_file *batch;
    (void)pthread_setname_np(pthread_self(), "submitd-commit");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->pending == NULL && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->pending == NULL)
            break; /* stopping, and every commit handed to us is done */
        batch = s->pending;
        s->pending = NULL;
        s->pending_tail = &s->pending;
        pthread_mutex_unlock(&s->lock);
        commit_split(s, batch);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int spool_start(struct spool *s)
{
    int rc;
    pthread_mutex_lock(&s->lock);
    if (s->started) {
        pthread_mutex_unlock(&s->lock);
        errno = EALREADY;
        return -1;
    }
    if (!s->reader && s->journal_fd != -1 && spool_keeper_start(s) == -1) {
        rc = errno;
        pthread_mutex_unlock(&s->lock);
        errno = rc;
        return -1;
    }
    rc = pthread_create(&s->thread, NULL, commit_thread, s);
    if (rc == 0)
        s->started = true;
    pthread_mutex_unlock(&s->lock);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

void spool_close(struct spool *s)
{
    bool started;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    started = s->started;
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (started)
        pthread_join(s->thread, NULL);
    spool_keeper_stop(s);
    spool_journal_close(s); /* after both threads: nothing more reaches the journal */
    if (s->journal_fd != -1)
        close(s->journal_fd);
    spool_delivery_close(s);
    if (s->tmp_fd != -1)
        close(s->tmp_fd);
    if (s->queue_fd != -1)
        close(s->queue_fd);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->journal_cond);
    pthread_cond_destroy(&s->append_cond);
    pthread_mutex_destroy(&s->move_lock);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}
