/* spool.c: the durable queue under DIR/spool/ (SPEC section 7; file format in docs/spool.md).
 * Owns: queue ids, the queue file format (header line, JSON envelope line, message bytes), the
 * tmp/ -> queue/ life cycle, and the group-commit thread that makes batches of messages durable
 * (fdatasync each file, rename into queue/, fsync queue/ once) before anyone may send 250.
 * Implements no RFC itself; it is what makes RFC 5321 4.2.5's "accepted responsibility" true. */
#include "spool.h"
#include "random_ids.h"
#include "spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

/* Longest envelope line spool_load accepts (a corrupt file must not make us read gigabytes). */
#define SPOOL_ENVELOPE_MAX (8 * 1024 * 1024)
/* Queue id: 13 hex digits of microseconds since 1970 (valid until 2112), then 3 random. */
#define SPOOL_ID_TIME_DIGITS 13
#define SPOOL_ID_TIME_MASK ((UINT64_C(1) << (4 * SPOOL_ID_TIME_DIGITS)) - 1)
#define SPOOL_ID_RANDOM_DIGITS (QUEUE_ID_LEN - SPOOL_ID_TIME_DIGITS)
/* How many fresh ids spool_create tries when an id is already taken. */
#define SPOOL_CREATE_TRIES 16

bool spool_exists_in(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int spool_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to)
{
    if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL)
        return -1;
    /* a file system without RENAME_NOREPLACE: look first (the callers' renames are rare) */
    if (spool_exists_in(to_dir, to)) {
        errno = EEXIST;
        return -1;
    }
    return renameat(from_dir, from, to_dir, to);
}

int spool_write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static bool valid_id(const char *id)
{
    size_t i;
    for (i = 0; i < QUEUE_ID_LEN; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return id[i] == '\0';
}

bool spool_valid_id(const char *id)
{
    return valid_id(id);
}

static void make_id(struct spool *s, char id[QUEUE_ID_LEN + 1])
{
    struct timespec ts;
    int64_t now_us;
    if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
        ts = (struct timespec){0}; /* cannot fail for CLOCK_REALTIME; last_us keeps order */
    now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    pthread_mutex_lock(&s->lock);
    if (now_us <= s->last_us)
        now_us = s->last_us + 1;
    s->last_us = now_us;
    pthread_mutex_unlock(&s->lock);
    snprintf(id, QUEUE_ID_LEN + 1, "%0*" PRIX64 "%0*" PRIX32, SPOOL_ID_TIME_DIGITS,
             (uint64_t)now_us & SPOOL_ID_TIME_MASK, SPOOL_ID_RANDOM_DIGITS,
             random_ids_uniform(1u << (4 * SPOOL_ID_RANDOM_DIGITS)));
}

/* Opens DIR/NAME as a directory, creating it (0700) first if needed. */
static int open_subdir(int parent, const char *parent_path, const char *name, bool *created,
                       char *err, size_t errlen)
{
    int fd;
    if (mkdirat(parent, name, 0700) == 0) {
        *created = true;
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s/%s: %s", parent_path, name, strerror(errno));
        return -1;
    }
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        snprintf(err, errlen, "open %s/%s: %s", parent_path, name, strerror(errno));
    return fd;
}

/* Removes every file in tmp/: messages for which no 250 was ever sent. */
static int clean_tmp(struct spool *s, char *err, size_t errlen)
{
    struct dirent *de;
    int dfd = openat(s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    if (dfd == -1) {
        snprintf(err, errlen, "open %s/tmp: %s", s->dir, strerror(errno));
        return -1;
    }
    d = fdopendir(dfd);
    if (d == NULL) {
        snprintf(err, errlen, "opendir %s/tmp: %s", s->dir, strerror(errno));
        close(dfd);
        return -1;
    }
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL)
            break;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(s->tmp_fd, de->d_name, 0) == -1 && errno != ENOENT) {
            snprintf(err, errlen, "remove %s/tmp/%s: %s", s->dir, de->d_name, strerror(errno));
            closedir(d);
            return -1;
        }
        s->recovered++;
    }
    if (errno != 0) {
        snprintf(err, errlen, "readdir %s/tmp: %s", s->dir, strerror(errno));
        closedir(d);
        return -1;
    }
    closedir(d);
    return 0;
}

static struct spool *spool_open_mode(const char *datadir, bool recover, char *err, size_t errlen)
{
    struct spool *s;
    int data_fd, spool_fd;
    bool created = false;
    size_t len = strlen(datadir) + sizeof "/spool";

    if (sodium_init() < 0) {
        snprintf(err, errlen, "sodium_init failed");
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = malloc(len)) == NULL) {
        snprintf(err, errlen, "spool: %s", strerror(errno));
        free(s);
        return NULL;
    }
    snprintf(s->dir, len, "%s/spool", datadir);
    s->tmp_fd = s->queue_fd = s->journal_fd = s->hold_fd = s->state_fd = -1;
    s->journal = true;
    s->pending_tail = &s->pending;
    s->reader = !recover;
    s->journal_age_ms = SPOOL_JOURNAL_AGE_MS;
    s->keeper_tick_ms = SPOOL_KEEPER_TICK_MS;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->move_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->journal_cond, NULL);
    pthread_cond_init(&s->append_cond, NULL);

    data_fd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (data_fd == -1) {
        snprintf(err, errlen, "open %s: %s", datadir, strerror(errno));
        goto fail;
    }
    spool_fd = open_subdir(data_fd, datadir, "spool", &created, err, errlen);
    if (spool_fd != -1 && created && fsync(data_fd) == -1) {
        snprintf(err, errlen, "fsync %s: %s", datadir, strerror(errno));
        close(spool_fd);
        spool_fd = -1;
    }
    close(data_fd);
    if (spool_fd == -1)
        goto fail;
    created = false;
    s->tmp_fd = open_subdir(spool_fd, s->dir, "tmp", &created, err, errlen);
    if (s->tmp_fd != -1)
        s->queue_fd = open_subdir(spool_fd, s->dir, "queue", &created, err, errlen);
    if (s->queue_fd != -1)
        s->hold_fd = open_subdir(spool_fd, s->dir, "hold", &created, err, errlen);
    if (s->hold_fd != -1)
        s->state_fd = open_subdir(spool_fd, s->dir, "state", &created, err, errlen);
    /* New directories must survive a crash too, or queue/ could vanish with its files. */
    if (s->state_fd != -1 && created && fsync(spool_fd) == -1) {
        snprintf(err, errlen, "fsync %s: %s", s->dir, strerror(errno));
        close(spool_fd);
        goto fail;
    }
    /* The journal is indexed before stale state files are sought: its messages count. */
    if (s->state_fd == -1 || (recover && clean_tmp(s, err, errlen) == -1) ||
        (recover && spool_journal_open(s, spool_fd, err, errlen) == -1) ||
        (recover && spool_delivery_recover(s, err, errlen) == -1)) {
        close(spool_fd);
        goto fail;
    }
    if (!recover && spool_journal_open_reader(s, spool_fd) == -1) {
        snprintf(err, errlen, "open %s/journal: %s", s->dir, strerror(errno));
        close(spool_fd);
        goto fail;
    }
    close(spool_fd);
    if (!recover)
        s->journal = false; /* a reader writes nothing */
    return s;
fail:
    spool_close(s);
    return NULL;
}

struct spool *spool_open(const char *datadir, char *err, size_t errlen)
{
    return spool_open_mode(datadir, true, err, errlen);
}

struct spool *spool_open_reader(const char *datadir, char *err, size_t errlen)
{
    return spool_open_mode(datadir, false, err, errlen);
}

int spool_recovered(const struct spool *s)
{
    return s->recovered;
}

int spool_replayed(const struct spool *s)
{
    return s->replayed;
}

void spool_set_ready(struct spool *s, spool_ready_fn fn, void *arg)
{
    s->ready = fn;
    s->ready_arg = arg;
}

void spool_set_journal(struct spool *s, bool on)
{
    s->journal = on && s->journal_fd != -1;
}

void spool_set_journal_age(struct spool *s, int64_t ms)
{
    s->journal_age_ms = ms;
}

void spool_set_keeper_tick(struct spool *s, long ms)
{
    s->keeper_tick_ms = ms;
}

void spool_set_keeper_paused(struct spool *s, bool paused)
{
    pthread_mutex_lock(&s->lock);
    s->keeper_paused = paused;
    pthread_cond_broadcast(&s->journal_cond);
    pthread_mutex_unlock(&s->lock);
}

bool spool_spare_ready(struct spool *s)
{
    pthread_mutex_lock(&s->lock);
    bool ready = s->spare != NULL;
    pthread_mutex_unlock(&s->lock);
    return ready;
}

uint64_t spool_batches(const struct spool *s)
{
    struct spool *m = (struct spool *)s; /* only the lock is touched */
    uint64_t n;
    pthread_mutex_lock(&m->lock);
    n = s->batches;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* Whether the journal holds a message with this id. */
static bool in_index(struct spool *s, const char *id)
{
    pthread_mutex_lock(&s->lock);
    bool found = jindex_get(&s->index, id) != NULL;
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* Picks a fresh id that is free in tmp/, queue/ and the journal; with `create`, creates tmp/ID
 * and returns its descriptor (else returns 0). The id is what keeps journalled messages apart:
 * they have no file of their own. */
static int new_id(struct spool *s, char id[QUEUE_ID_LEN + 1], bool create, char *err, size_t errlen)
{
    struct stat st;
    int tries, fd;
    for (tries = 0; tries < SPOOL_CREATE_TRIES; tries++) {
        make_id(s, id);
        if (fstatat(s->queue_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 || in_index(s, id))
            continue;
        if (errno != ENOENT) {
            snprintf(err, errlen, "stat %s/queue/%s: %s", s->dir, id, strerror(errno));
            return -1;
        }
        if (!create) {
            if (fstatat(s->tmp_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
            return 0;
        }
        fd = openat(s->tmp_fd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd != -1)
            return fd;
        if (errno != EEXIST) {
            snprintf(err, errlen, "create %s/tmp/%s: %s", s->dir, id, strerror(errno));
            return -1;
        }
    }
    snprintf(err, errlen, "create %s/tmp: no free queue id after %d tries", s->dir, tries);
    errno = EEXIST;
    return -1;
}

bool spool_idvec_add(struct spool_idvec *vec, const char *id)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        char(*v)[QUEUE_ID_LEN + 1] = realloc(vec->v, cap * sizeof *v);
        if (v == NULL) {
            vec->failed = true;
            return false;
        }
        vec->v = v;
        vec->cap = cap;
    }
    memcpy(vec->v[vec->n++], id, QUEUE_ID_LEN + 1);
    return true;
}

int spool_cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

struct spool_file *spool_tombstone(struct spool *s, const char *id)
{
    struct spool_file *f = malloc(sizeof *f); /* its buffer stays unused (and unwritten) */
    if (f == NULL)
        return NULL;
    memset(f, 0, offsetof(struct spool_file, buf));
    f->spool = s;
    f->fd = -1;
    f->tomb = f->journaled = true;
    memcpy(f->id, id, QUEUE_ID_LEN);
    f->id[QUEUE_ID_LEN] = '\0';
    return f;
}

void spool_file_free(struct spool_file *f)
{
    if (f == NULL)
        return;
    free(f->head);
    free(f);
}

struct spool_file *spool_create(struct spool *s, struct spool_envelope *env, char *err,
                                size_t errlen)
{
    struct spool_file *f = malloc(sizeof *f);
    char *json;
    size_t json_len;
    int e;
    if (f == NULL) {
        snprintf(err, errlen, "spool: %s", strerror(errno));
        return NULL;
    }
    memset(f, 0, offsetof(struct spool_file, buf));
    f->spool = s;
    /* With the journal, the file is made only if the message outgrows the buffer. */
    f->fd = new_id(s, f->id, !s->journal, err, errlen);
    if (f->fd == -1)
        goto fail;
    if (s->journal)
        f->fd = -1;
    json = spool_envelope_json(env, f->id, err, errlen);
    if (json == NULL)
        goto fail_unlink;
    json_len = strlen(json);
    f->head = malloc(SPOOL_MAGIC_LEN + json_len + 1);
    if (f->head == NULL) {
        snprintf(err, errlen, "spool: %s", strerror(errno));
        free(json);
        goto fail_unlink;
    }
    memcpy(f->head, SPOOL_MAGIC, SPOOL_MAGIC_LEN);
    memcpy(f->head + SPOOL_MAGIC_LEN, json, json_len);
    f->head[SPOOL_MAGIC_LEN + json_len] = '\n';
    f->head_len = SPOOL_MAGIC_LEN + json_len + 1;
    free(json);
    /* Without the journal it is written at once, so a full disk shows before the data. */
    if (f->fd != -1 && spool_write_all(f->fd, f->head, f->head_len) == -1) {
        snprintf(err, errlen, "write %s/tmp/%s: %s", s->dir, f->id, strerror(errno));
        goto fail_unlink;
    }
    memcpy(env->queue_id, f->id, sizeof f->id);
    return f;
fail_unlink:
    e = errno;
    if (f->fd != -1) {
        (void)close(f->fd); /* discarded: nothing to lose */
        if (unlinkat(s->tmp_fd, f->id, 0) == -1 && errno != ENOENT) {
            size_t used = strlen(err);
            if (used + 1 < errlen)
                snprintf(err + used, errlen - used, "; remove %s/tmp/%s: %s", s->dir, f->id,
                         strerror(errno));
        }
    }
    errno = e;
fail:
    e = errno;
    spool_file_free(f);
    errno = e;
    return NULL;
}

const char *spool_file_id(const struct spool_file *f)
{
    return f->id;
}

/* Writes the head and the buffered bytes into tmp/ID (creating it) and leaves f->fd open. */
static int spool_file_materialize(struct spool_file *f)
{
    struct spool *s = f->spool;
    int e;
    f->fd = openat(s->tmp_fd, f->id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f->fd == -1 && errno == EEXIST) { /* left by an earlier attempt of ours */
        (void)unlinkat(s->tmp_fd, f->id, 0);
        f->fd = openat(s->tmp_fd, f->id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (f->fd == -1)
        return -1;
    if (spool_write_all(f->fd, f->head, f->head_len) == -1 ||
        (f->used > 0 && spool_write_all(f->fd, f->buf, f->used) == -1)) {
        e = errno;
        (void)close(f->fd);
        (void)unlinkat(s->tmp_fd, f->id, 0);
        f->fd = -1;
        errno = e;
        return -1;
    }
    return 0;
}

static int flush_file(struct spool_file *f)
{
    if (f->err != 0) {
        errno = f->err;
        return -1;
    }
    if (f->fd == -1) { /* still only in memory: make the file now */
        if (spool_file_materialize(f) == -1) {
            f->err = errno;
            return -1;
        }
        f->used = 0;
        return 0;
    }
    if (f->used > 0 && spool_write_all(f->fd, f->buf, f->used) == -1) {
        f->err = errno;
        return -1;
    }
    f->used = 0;
    return 0;
}

int spool_write(struct spool_file *f, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    if (f->err != 0) {
        errno = f->err;
        return -1;
    }
    if (f->used + n > SPOOL_BUF_SIZE && flush_file(f) == -1)
        return -1;
    if (n >= SPOOL_BUF_SIZE) { /* buffer is empty now; large chunks go straight out */
        if (spool_write_all(f->fd, p, n) == -1) {
            f->err = errno;
            return -1;
        }
    } else {
        memcpy(f->buf + f->used, p, n);
        f->used += n;
    }
    f->size += n;
    return 0;
}

int spool_file_error(const struct spool_file *f)
{
    return f->err;
}

uint64_t spool_file_size(const struct spool_file *f)
{
    return f->size;
}

void spool_commit(struct spool_file *f, spool_done_fn done, void *arg)
{
    struct spool *s = f->spool;
    bool started;
    f->done = done;
    f->arg = arg;
    f->next = NULL;
    pthread_mutex_lock(&s->lock);
    started = s->started && !s->stopping;
    if (!f->tomb)
        f->journaled = started && f->fd == -1 && f->err == 0 && spool_journal_has_room(s);
    pthread_mutex_unlock(&s->lock);
    if (!f->journaled)
        (void)flush_file(f); /* a failure is in f->err; the batch reports it */
    pthread_mutex_lock(&s->lock);
    started = s->started && !s->stopping;
    if (started) {
        *s->pending_tail = f;
        s->pending_tail = &f->next;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    if (started)
        return;
    if (f->tomb) { /* no thread (an offline submitctl, or at open): here and now */
        spool_journal_commit(s, f);
        return;
    }
    if (f->journaled) { /* spool_close began meanwhile: the file path, here and now */
        f->journaled = false;
        (void)flush_file(f);
    }
    spool_commit_files(s, f); /* no thread (submitctl): a batch of one, here and now */
}

void spool_abort(struct spool_file *f)
{
    if (f == NULL)
        return;
    if (f->fd != -1) {
        (void)close(f->fd);                         /* discarded: nothing to lose */
        (void)unlinkat(f->spool->tmp_fd, f->id, 0); /* if it stays, the next start removes it */
    }
    spool_file_free(f);
}

/* Reads one line of at most `max` octets including its LF into a new string (LF kept). */
static char *read_line(FILE *fp, size_t max, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *line = malloc(cap);
    int c;
    if (line == NULL)
        return NULL;
    while ((c = getc(fp)) != EOF) {
        if (n + 1 >= cap) {
            char *bigger;
            if (cap >= max)
                break;
            cap = cap * 2 > max ? max : cap * 2;
            bigger = realloc(line, cap);
            if (bigger == NULL) {
                free(line);
                return NULL;
            }
            line = bigger;
        }
        line[n++] = (char)c;
        if (c == '\n') {
            line[n] = '\0';
            *len = n;
            return line;
        }
    }
    errno = ferror(fp) ? EIO : EBADMSG; /* too long, or no LF before the end */
    free(line);
    return NULL;
}

/* Reads the header and envelope of queue file FP (named ID), leaving FP at the message. */
static int read_envelope(FILE *fp, const char *id, struct spool_envelope *env, long *body_offset)
{
    char magic[SPOOL_MAGIC_LEN + 1];
    char *line;
    size_t len;
    int e, version;
    memset(env, 0, sizeof *env);
    if (fread(magic, 1, SPOOL_MAGIC_LEN, fp) != SPOOL_MAGIC_LEN) {
        errno = ferror(fp) ? EIO : EBADMSG;
        return -1;
    }
    if (memcmp(magic, SPOOL_MAGIC, SPOOL_MAGIC_LEN) == 0) {
        version = 2;
    } else if (memcmp(magic, SPOOL_MAGIC_V1, SPOOL_MAGIC_LEN) == 0) {
        version = 1; /* no DSN parameters: read as "not given" */
    } else {
        errno = EBADMSG;
        return -1;
    }
    line = read_line(fp, SPOOL_ENVELOPE_MAX, &len);
    if (line == NULL)
        return -1;
    if (!spool_envelope_parse(line, len - 1, id, version, env)) {
        e = errno == ENOMEM ? ENOMEM : EBADMSG;
        free(line);
        spool_envelope_free(env);
        errno = e;
        return -1;
    }
    free(line);
    *body_offset = (long)(SPOOL_MAGIC_LEN + len);
    return 0;
}

/* Opens queue/ID (or hold/ID, a held message) for reading, or a copy of its journal record (a
 * memfd); ENOENT for an id that cannot exist (also stops "../x"). */
static FILE *open_queued(struct spool *s, const char *queue_id)
{
    int fd, e;
    FILE *fp;
    if (!valid_id(queue_id)) {
        errno = ENOENT;
        return NULL;
    }
    fd = openat(s->queue_fd, queue_id, O_RDONLY | O_CLOEXEC);
    if (fd == -1 && errno == ENOENT)
        fd = openat(s->hold_fd, queue_id, O_RDONLY | O_CLOEXEC);
    if (fd == -1 && errno == ENOENT) {
        unsigned char *payload = NULL;
        size_t len = 0;
        int found = spool_journal_get(s, queue_id, &payload, &len);
        if (found == -1)
            return NULL;
        if (found == 1) {
            fd = memfd_create("submitd-journal-record", MFD_CLOEXEC);
            if (fd != -1 &&
                (spool_write_all(fd, payload, len) == -1 || lseek(fd, 0, SEEK_SET) == -1)) {
                e = errno;
                close(fd);
                fd = -1;
                errno = e;
            }
            free(payload);
        } else {
            /* moved to queue/ or hold/ while we looked, or no such message */
            fd = openat(s->queue_fd, queue_id, O_RDONLY | O_CLOEXEC);
            if (fd == -1 && errno == ENOENT)
                fd = openat(s->hold_fd, queue_id, O_RDONLY | O_CLOEXEC);
        }
    }
    if (fd == -1)
        return NULL;
    fp = fdopen(fd, "r");
    if (fp == NULL) {
        e = errno;
        close(fd);
        errno = e;
    }
    return fp;
}

static int load(struct spool *s, const char *queue_id, struct spool_envelope *env,
                long *body_offset, struct stat *st)
{
    FILE *fp = open_queued(s, queue_id);
    int e;
    if (fp == NULL)
        return -1;
    if (read_envelope(fp, queue_id, env, body_offset) == -1)
        goto fail;
    if (fstat(fileno(fp), st) == -1)
        goto fail_env;
    if (st->st_size < *body_offset) {
        errno = EBADMSG;
        goto fail_env;
    }
    env->size = (uint64_t)(st->st_size - *body_offset);
    fclose(fp);
    return 0;
fail_env:
    spool_envelope_free(env);
fail:
    e = errno;
    fclose(fp);
    errno = e;
    return -1;
}

int spool_load(struct spool *s, const char *queue_id, struct spool_envelope *env, long *body_offset)
{
    struct stat st;
    return load(s, queue_id, env, body_offset, &st);
}

FILE *spool_open_message(struct spool *s, const char *queue_id)
{
    struct spool_envelope env;
    long body_offset;
    int e;
    FILE *fp = open_queued(s, queue_id);
    if (fp == NULL)
        return NULL;
    if (read_envelope(fp, queue_id, &env, &body_offset) == -1) {
        e = errno;
        fclose(fp);
        errno = e;
        return NULL;
    }
    spool_envelope_free(&env);
    return fp; /* positioned at the first message octet */
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

int spool_read_ids(int dirfd, char **ids, size_t *n)
{
    size_t cap = 0;
    struct dirent *de;
    DIR *d;
    int e, dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *ids = NULL;
    *n = 0;
    if (dfd == -1)
        return -1;
    d = fdopendir(dfd);
    if (d == NULL) {
        e = errno;
        close(dfd);
        errno = e;
        return -1;
    }
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL)
            break;
        if (!valid_id(de->d_name))
            continue; /* ".", "..", anything not ours */
        if (*n == cap) {
            char *bigger;
            cap = cap ? cap * 2 : 64;
            bigger = realloc(*ids, cap * (QUEUE_ID_LEN + 1));
            if (bigger == NULL)
                break;
            *ids = bigger;
        }
        memcpy(*ids + *n * (QUEUE_ID_LEN + 1), de->d_name, QUEUE_ID_LEN + 1);
        (*n)++;
    }
    e = errno;
    closedir(d);
    if (e != 0) {
        free(*ids);
        *ids = NULL;
        errno = e;
        return -1;
    }
    if (*n > 0)
        qsort(*ids, *n, QUEUE_ID_LEN + 1, cmp_ids);
    return 0;
}

struct journal_id {
    char id[QUEUE_ID_LEN + 1];
    int64_t mtime_ms;
};

struct journal_ids {
    struct journal_id *v;
    size_t n, cap;
};

static int collect_record(const struct journal_record *r, int64_t mtime_ms, void *arg)
{
    struct journal_ids *j = arg;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        struct journal_id *v = realloc(j->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        j->v = v;
        j->cap = cap;
    }
    memcpy(j->v[j->n].id, r->id, QUEUE_ID_LEN + 1);
    j->v[j->n++].mtime_ms = mtime_ms;
    return 0;
}

static void list_one(struct spool *s, const char *id, const int64_t *journal_mtime_ms,
                     void (*cb)(const struct spool_entry *, void *), void *arg, int *count)
{
    struct spool_envelope env;
    struct spool_entry entry = {.env = &env};
    struct stat st;
    long off;
    /* Gone meanwhile (delivered) or unreadable: a listing shows what it can read. */
    if (load(s, id, &env, &off, &st) == -1)
        return;
    entry.queued_ms = journal_mtime_ms != NULL
                          ? *journal_mtime_ms
                          : (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    if (cb != NULL)
        cb(&entry, arg);
    spool_envelope_free(&env);
    (*count)++;
}

int spool_list(struct spool *s, void (*cb)(const struct spool_entry *, void *), void *arg)
{
    struct journal_ids j = {0};
    char *ids;
    size_t n, i, k = 0;
    int count = 0;
    /* The journal first: a message written to queue/ meanwhile is then still found there. */
    if (spool_journal_scan(s, collect_record, &j) == -1 ||
        spool_read_ids(s->queue_fd, &ids, &n) == -1) {
        int e = errno;
        free(j.v);
        errno = e;
        return -1;
    }
    if (j.n > 1) /* commit order is not id order (ids are given at DATA) */
        qsort(j.v, j.n, sizeof *j.v, cmp_ids);
    for (i = 0; i < n; i++) {
        const char *id = ids + i * (QUEUE_ID_LEN + 1);
        for (; k < j.n && strcmp(j.v[k].id, id) < 0; k++)
            list_one(s, j.v[k].id, &j.v[k].mtime_ms, cb, arg, &count);
        if (k < j.n && strcmp(j.v[k].id, id) == 0)
            k++; /* in both: queue/ is the record of it */
        list_one(s, id, NULL, cb, arg, &count);
    }
    for (; k < j.n; k++)
        list_one(s, j.v[k].id, &j.v[k].mtime_ms, cb, arg, &count);
    free(ids);
    free(j.v);
    return count;
}
