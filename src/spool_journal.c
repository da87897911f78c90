/* spool_journal.c: the spool's journal (docs/spool.md, "Journal"). Messages that fit in memory
 * are appended, a batch at a time, to a segment file in DIR/spool/journal/ and made durable with
 * one fdatasync; that is when the client may get its 250. The materializer thread then writes
 * each one to queue/ID (the same file the file path makes), and once every record of a segment
 * is in queue/, the segment is emptied (or, when full, removed). At open, segments left by a
 * crash are replayed into queue/. Also the record codec of spool_journal.h. */
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
/* The materializer's pause after a failure (a full disk), doubling up to the maximum. */
#define MAT_RETRY_MIN_MS 250
#define MAT_RETRY_MAX_MS 30000

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
                         O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
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

/* Appends the batch's records to seg and flushes them. Returns 0 or an errno. */
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
        journal_header(f->record, f->id, f->head, f->head_len, f->buf, f->used);
        iov[n++] = (struct iovec){f->record, JOURNAL_HEADER_LEN};
        iov[n++] = (struct iovec){f->head, f->head_len};
        if (f->used > 0)
            iov[n++] = (struct iovec){f->buf, f->used};
        *octets += JOURNAL_HEADER_LEN + f->head_len + f->used;
    }
    if (writev_all(seg->fd, iov, n) == -1 || fdatasync(seg->fd) == -1)
        e = errno;
    free(iov);
    return e;
}

void spool_journal_commit(struct spool *s, struct spool_file *batch)
{
    struct spool_segment *seg;
    struct spool_file *f, *next;
    size_t count = 0;
    uint64_t octets = 0;
    int e = 0;

    for (f = batch; f != NULL; f = f->next)
        count++;
    pthread_mutex_lock(&s->lock);
    while (s->resetting)
        pthread_cond_wait(&s->journal_cond, &s->lock);
    seg = s->active;
    if (seg != NULL && seg->size >= SPOOL_SEGMENT_MAX) { /* full: the next one takes over */
        seg->next = s->closed;
        s->closed = seg;
        s->active = seg = NULL;
    }
    s->appending = true;
    pthread_mutex_unlock(&s->lock);

    if (seg == NULL)
        seg = segment_open(s, &e);
    if (seg != NULL) {
        e = append_batch(seg, batch, count, &octets);
        if (e != 0)
            log_error("event=journal-failed op=append path=\"%s/journal/%s\" error=\"%s\"", s->dir,
                      seg->name, strerror(e));
    }

    pthread_mutex_lock(&s->lock);
    s->appending = false;
    if (seg != NULL && e == 0) {
        seg->size += octets;
        seg->appended += count;
        s->active = seg;
    } else if (seg != NULL) {
        /* Its tail may be torn: nothing more goes into it; it is removed once the records it
         * held before are in queue/ (replay stops at the torn record, after all of them). */
        s->active = NULL;
        seg->next = s->closed;
        s->closed = seg;
    }
    s->batches++;
    pthread_cond_broadcast(&s->journal_cond);
    pthread_mutex_unlock(&s->lock);

    for (f = batch; f != NULL; f = f->next) {
        f->err = e;
        f->segment = e == 0 ? seg : NULL;
        if (f->done != NULL)
            f->done(f->arg, e, f->id);
        f->done = NULL;
    }
    if (e != 0) {
        for (f = batch; f != NULL; f = next) {
            next = f->next;
            spool_file_free(f);
        }
        return;
    }
    pthread_mutex_lock(&s->lock);
    for (f = batch; f != NULL; f = next) {
        next = f->next;
        f->next = NULL;
        *s->mat_tail = f;
        s->mat_tail = &f->next;
        s->mat_backlog += f->head_len + f->used;
    }
    pthread_cond_broadcast(&s->journal_cond);
    pthread_mutex_unlock(&s->lock);
}

bool spool_journal_has_room(struct spool *s)
{
    return s->mat_started && !s->mat_stopping && s->mat_backlog < SPOOL_BACKLOG_MAX;
}

/* ---- the materializer ---- */

/* Segments whose every record is in queue/: closed ones to remove, the active one to empty.
 * Under lock. */
static bool tidy_needed(const struct spool *s)
{
    for (const struct spool_segment *g = s->closed; g != NULL; g = g->next)
        if (g->materialized == g->appended)
            return true;
    return s->active != NULL && s->active->appended > 0 && !s->appending &&
           s->active->materialized == s->active->appended;
}

/* The records of g are no longer in the journal: their messages may now be delivered. */
static void announce(struct spool *s, struct spool_segment *g)
{
    for (size_t i = 0; i < g->n_ids; i++)
        s->ready(g->ids[i], s->ready_arg);
    g->n_ids = 0;
}

static void tidy(struct spool *s)
{
    struct spool_segment *gone = NULL, **pp, *g, *reset = NULL;
    pthread_mutex_lock(&s->lock);
    for (pp = &s->closed; (g = *pp) != NULL;) {
        if (g->materialized == g->appended) {
            *pp = g->next;
            g->next = gone;
            gone = g;
        } else {
            pp = &g->next;
        }
    }
    if (s->active != NULL && s->active->appended > 0 && !s->appending &&
        s->active->materialized == s->active->appended) {
        reset = s->active;
        s->resetting = true;
    }
    pthread_mutex_unlock(&s->lock);

    if (reset != NULL) {
        /* Emptied, not removed: the next batch appends to it without creating a file. */
        if (ftruncate(reset->fd, 0) == -1 || fdatasync(reset->fd) == -1) {
            log_error("event=journal-failed op=truncate path=\"%s/journal/%s\" error=\"%s\"",
                      s->dir, reset->name, strerror(errno));
            pthread_mutex_lock(&s->lock);
            s->active = NULL;
            pthread_mutex_unlock(&s->lock);
            reset->next = gone;
            gone = reset;
        } else {
            announce(s, reset);
            reset->size = reset->appended = reset->materialized = 0;
        }
        pthread_mutex_lock(&s->lock);
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
    else
        for (g = gone; g != NULL; g = g->next)
            announce(s, g);
    while ((g = gone) != NULL) {
        gone = g->next;
        free(g->ids);
        free(g);
    }
}

/* Writes the batch to queue/. Returns the messages that could not be written (kept in the
 * journal, tried again later); frees the others. */
static struct spool_file *materialize(struct spool *s, struct spool_file *batch)
{
    struct spool_file *f, *next, *failed = NULL, *ok = NULL;
    int first_err = 0;
    for (f = batch; f != NULL; f = f->next) {
        f->err = 0;
        f->renamed = false;
        if (spool_file_materialize(f) == -1)
            f->err = errno;
    }
    spool_sync_files(s, batch); /* sets f->err */
    pthread_mutex_lock(&s->lock);
    for (f = batch; f != NULL; f = next) {
        next = f->next;
        if (f->err == 0) {
            struct spool_segment *g = f->segment;
            g->materialized++;
            if (s->ready != NULL && g->n_ids == g->cap_ids) {
                size_t cap = g->cap_ids ? g->cap_ids * 2 : 64;
                void *more = realloc(g->ids, cap * sizeof *g->ids);
                if (more != NULL) {
                    g->ids = more;
                    g->cap_ids = cap;
                }
            }
            /* without memory for the id, the message is found at the next start */
            if (s->ready != NULL && g->n_ids < g->cap_ids)
                memcpy(g->ids[g->n_ids++], f->id, QUEUE_ID_LEN + 1);
            s->mat_backlog -= f->head_len + f->used;
            f->next = ok;
            ok = f;
        } else {
            if (first_err == 0)
                first_err = f->err;
            f->next = failed;
            failed = f;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (first_err != 0)
        log_error("event=journal-failed op=materialize path=\"%s/queue\" error=\"%s\" "
                  "note=\"kept in the journal; retrying\"",
                  s->dir, strerror(first_err));
    while ((f = ok) != NULL) {
        ok = f->next;
        spool_file_free(f);
    }
    return failed;
}

static void *materializer(void *arg)
{
    struct spool *s = arg;
    struct spool_file *batch, *failed = NULL;
    long pause_ms = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->mat_pending == NULL && failed == NULL && !tidy_needed(s) && !s->mat_stopping)
            pthread_cond_wait(&s->journal_cond, &s->lock);
        if (failed != NULL && !s->mat_stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += pause_ms / 1000;
            until.tv_nsec += (pause_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            while (!s->mat_stopping &&
                   pthread_cond_timedwait(&s->journal_cond, &s->lock, &until) != ETIMEDOUT) {
            }
        }
        batch = s->mat_pending;
        s->mat_pending = NULL;
        s->mat_tail = &s->mat_pending;
        if (failed != NULL) { /* the earlier ones first */
            struct spool_file *t = failed;
            while (t->next != NULL)
                t = t->next;
            t->next = batch;
            batch = failed;
            failed = NULL;
        }
        if (batch == NULL && s->mat_stopping && !tidy_needed(s))
            break;
        pthread_mutex_unlock(&s->lock);
        if (batch != NULL)
            failed = materialize(s, batch);
        tidy(s);
        pthread_mutex_lock(&s->lock);
        if (failed != NULL && s->mat_stopping)
            break; /* still failing at shutdown: replayed at the next start */
        pause_ms = failed == NULL                    ? 0
                   : pause_ms == 0                   ? MAT_RETRY_MIN_MS
                   : pause_ms * 2 > MAT_RETRY_MAX_MS ? MAT_RETRY_MAX_MS
                                                     : pause_ms * 2;
    }
    pthread_mutex_unlock(&s->lock);
    while (failed != NULL) {
        batch = failed->next;
        spool_file_free(failed);
        failed = batch;
    }
    return NULL;
}

int spool_journal_start(struct spool *s)
{
    int rc = pthread_create(&s->mat_thread, NULL, materializer, s);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    s->mat_started = true;
    return 0;
}

void spool_journal_stop(struct spool *s)
{
    struct spool_segment *g;
    pthread_mutex_lock(&s->lock);
    bool started = s->mat_started;
    s->mat_stopping = true;
    pthread_cond_broadcast(&s->journal_cond);
    pthread_mutex_unlock(&s->lock);
    if (started)
        pthread_join(s->mat_thread, NULL);
    s->mat_started = false;
    /* What is left holds records not yet in queue/ (replayed at the next start). */
    if (s->active != NULL) {
        s->active->next = s->closed;
        s->closed = s->active;
        s->active = NULL;
    }
    bool removed = false;
    while ((g = s->closed) != NULL) {
        s->closed = g->next;
        close(g->fd);
        if (g->materialized == g->appended && unlinkat(s->journal_fd, g->name, 0) == 0)
            removed = true;
        free(g->ids);
        free(g);
    }
    if (removed && fsync(s->journal_fd) == -1)
        log_error("event=journal-failed op=fsync path=\"%s/journal\" error=\"%s\"", s->dir,
                  strerror(errno));
}

/* ---- replay at open ---- */

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

/* Writes one replayed record to queue/ID unless it is there already. */
static int replay_record(struct spool *s, const struct journal_record *r, char *err, size_t errlen)
{
    struct stat st;
    int fd;
    if (fstatat(s->queue_fd, r->id, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 0; /* written before the crash */
    fd = openat(s->tmp_fd, r->id, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1 || spool_write_all(fd, r->payload, r->len) == -1 || fdatasync(fd) == -1 ||
        close(fd) == -1 || renameat(s->tmp_fd, r->id, s->queue_fd, r->id) == -1) {
        snprintf(err, errlen, "replay %s/journal record %s into queue/: %s", s->dir, r->id,
                 strerror(errno));
        return -1;
    }
    s->replayed++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The segment names in journal/, sorted; NULL with *n = 0 when there are none. */
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

static int replay(struct spool *s, char *err, size_t errlen)
{
    size_t n, i;
    char **names = segment_names(s, &n);
    int rc = -1;
    if (names == NULL && errno != 0) {
        snprintf(err, errlen, "read %s/journal: %s", s->dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char *buf;
        size_t len = 0, off = 0;
        struct journal_record r;
        if (read_whole(s->journal_fd, names[i], &buf, &len) == -1) {
            snprintf(err, errlen, "read %s/journal/%s: %s", s->dir, names[i], strerror(errno));
            goto out;
        }
        /* Records after a torn or damaged one were never acknowledged (docs/spool.md). */
        while (journal_next(buf, len, &off, &r) == 1)
            if (replay_record(s, &r, err, errlen) == -1) {
                free(buf);
                goto out;
            }
        free(buf);
        if (fsync(s->queue_fd) == -1) {
            snprintf(err, errlen, "fsync %s/queue: %s", s->dir, strerror(errno));
            goto out;
        }
        if (unlinkat(s->journal_fd, names[i], 0) == -1) {
            snprintf(err, errlen, "remove %s/journal/%s: %s", s->dir, names[i], strerror(errno));
            goto out;
        }
    }
    if (n > 0 && fsync(s->journal_fd) == -1) {
        snprintf(err, errlen, "fsync %s/journal: %s", s->dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free_names(names, n);
    return rc;
}

int spool_journal_scan(struct spool *s, spool_journal_fn fn, void *arg)
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
                continue; /* removed meanwhile: its records are in queue/ */
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
    return rc < 0 ? -1 : 0;
}

int spool_journal_open_reader(struct spool *s, int spool_fd)
{
    s->journal_fd = openat(spool_fd, "journal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s->journal_fd == -1 && errno != ENOENT ? -1 : 0;
}

int spool_journal_open(struct spool *s, int spool_fd, char *err, size_t errlen)
{
    bool created = false;
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
    return replay(s, err, errlen);
}
