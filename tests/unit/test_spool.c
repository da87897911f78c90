/* test_spool.c: unit tests for the durable spool (src/spool.c, SPEC section 7): byte-exact round
 * trip, group commit under concurrency, abort, recovery of tmp/, sticky write errors (ENOSPC via
 * /dev/full), close draining pending commits, listing order, missing and corrupt queue files,
 * queue file version 2 (reference and RFC 3461 DSN parameters) and reading version 1.
 * Ends with a small benchmark (printed, not asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "spool_fixture.h"

#define WAIT_SECONDS 120 /* bound on every wait for done callbacks */

static int setup(void **state)
{
    return fixture_setup(state, "test_spool", false);
}

/* Counts done callbacks and remembers their results. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t done;
    size_t failed;
    int last_err;
    char (*ids)[QUEUE_ID_LEN + 1]; /* successful ids, if wanted */
    size_t ids_cap;
};

static void waiter_init(struct waiter *w, size_t ids_cap)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (ids_cap > 0) {
        w->ids = calloc(ids_cap, sizeof *w->ids);
        assert_non_null(w->ids);
        w->ids_cap = ids_cap;
    }
}

static void waiter_free(struct waiter *w)
{
    free(w->ids);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

static void on_done(void *arg, int err, const char *queue_id)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    if (err != 0) {
        w->failed++;
        w->last_err = err;
    } else if (w->ids != NULL && w->done < w->ids_cap) {
        memcpy(w->ids[w->done - w->failed], queue_id, QUEUE_ID_LEN + 1);
    }
    w->done++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Waits until `n` callbacks ran; false on timeout. */
static bool waiter_wait(struct waiter *w, size_t n)
{
    struct timespec deadline;
    bool ok = true;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&w->lock);
    while (w->done < n && ok)
        ok = pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0;
    ok = w->done >= n;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

/* These tests cover the file path (every message its own file from the start);
 * test_spool_journal.c covers the journal. */
static struct spool *open_file_mode(struct fixture *fx)
{
    return fixture_open(fx, false);
}

static void reopen(struct fixture *fx)
{
    spool_close(fx->spool);
    fx->spool = open_file_mode(fx);
    assert_non_null(fx->spool);
}

static char rcpt_a[] = "alice@example.com";
static char rcpt_b[] = "b\xc3\xb6rje@example.org"; /* UTF-8 */
static char *rcpts[2] = {rcpt_a, rcpt_b};

static void fill_env(struct spool_envelope *env)
{
    memset(env, 0, sizeof *env);
    env->received_ms = 1700000000123;
    snprintf(env->sender, sizeof env->sender, "sender@example.com");
    env->rcpts = rcpts;
    env->n_rcpts = 2;
    snprintf(env->auth_user, sizeof env->auth_user, "user@tenant.example");
    snprintf(env->tenant, sizeof env->tenant, "tenant.example");
    snprintf(env->client_ip, sizeof env->client_ip, "::1");
    env->client_port = 58123;
    snprintf(env->helo, sizeof env->helo, "evil\"helo\nwith\rcontrol\\chars");
    snprintf(env->session, sizeof env->session, "0123456789ABCDEF");
    snprintf(env->body, sizeof env->body, "BINARYMIME");
    env->smtputf8 = true;
}

static bool is_queue_id(const char *id)
{
    size_t i;
    for (i = 0; id[i] != '\0'; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
            return false;
    return i == QUEUE_ID_LEN;
}

/* Commits F and waits for its result. */
static int commit_wait(struct spool_file *f)
{
    struct waiter w;
    int err;
    waiter_init(&w, 0);
    spool_commit(f, on_done, &w);
    assert_true(waiter_wait(&w, 1));
    err = w.failed ? w.last_err : 0;
    waiter_free(&w);
    return err;
}

static void test_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env, back;
    struct spool_file *f;
    unsigned char *msg, *got;
    size_t len = 0, n, chunks[] = {1, 255, 70000, 3, 65536, 65535, 10, 4096};
    char path[256], line[64];
    struct stat st;
    long off;
    FILE *fp;

    assert_int_equal(spool_start(fx->spool), 0);
    msg = malloc(300000);
    got = malloc(300001);
    assert_non_null(msg);
    assert_non_null(got);
    for (n = 0; n < sizeof chunks / sizeof chunks[0]; n++)
        len += chunks[n];
    for (n = 0; n < len; n++)
        msg[n] = (unsigned char)(n * 7); /* every byte value 0x00-0xFF */
    memcpy(msg + 100, "\r\n.\r\n\r\n", 7);
    memcpy(msg + len - 2, "\r\n", 2);

    fill_env(&env);
    f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    assert_string_equal(env.queue_id, spool_file_id(f));
    assert_true(is_queue_id(env.queue_id));
    off = 0;
    for (n = 0; n < sizeof chunks / sizeof chunks[0]; n++) {
        assert_int_equal(spool_write(f, msg + off, chunks[n]), 0);
        off += (long)chunks[n];
    }
    assert_int_equal(spool_file_error(f), 0);
    assert_int_equal(spool_file_size(f), len);
    assert_int_equal(count_files(fx, "tmp"), 1);
    assert_int_equal(commit_wait(f), 0);
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), 1);

    /* Modes: 0700 directories, 0600 file; the header as docs/spool.md says. */
    snprintf(path, sizeof path, "%s/spool/queue", fx->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/spool/queue/%s", fx->dir, env.queue_id);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "SUBMITD-QUEUE 2\n");
    assert_int_equal(fgetc(fp), '{');
    fclose(fp);

    assert_int_equal(spool_load(fx->spool, env.queue_id, &back, &off), 0);
    assert_string_equal(back.queue_id, env.queue_id);
    assert_int_equal(back.received_ms, env.received_ms);
    assert_string_equal(back.sender, env.sender);
    assert_int_equal(back.n_rcpts, 2);
    assert_string_equal(back.rcpts[0], rcpt_a);
    assert_string_equal(back.rcpts[1], rcpt_b);
    assert_string_equal(back.auth_user, env.auth_user);
    assert_string_equal(back.tenant, env.tenant);
    assert_string_equal(back.client_ip, env.client_ip);
    assert_int_equal(back.client_port, env.client_port);
    assert_string_equal(back.helo, env.helo);
    assert_string_equal(back.session, env.session);
    assert_string_equal(back.body, env.body);
    assert_true(back.smtputf8);
    assert_int_equal(back.size, len);
    assert_int_equal(st.st_size - off, len);
    /* version 2 fields not given: read back as not given */
    assert_string_equal(back.ref, "");
    assert_string_equal(back.envid, "");
    assert_string_equal(back.ret, "");
    assert_false(back.is_dsn);
    assert_non_null(back.notify);
    assert_non_null(back.orcpt);
    for (n = 0; n < 2; n++) {
        assert_int_equal(back.notify[n], 0);
        assert_null(back.orcpt[n]);
    }
    spool_envelope_free(&back);
    assert_null(back.rcpts);
    assert_null(back.notify);
    assert_null(back.orcpt);

    fp = spool_open_message(fx->spool, env.queue_id);
    assert_non_null(fp);
    n = fread(got, 1, 300001, fp);
    fclose(fp);
    assert_int_equal(n, len);
    assert_memory_equal(got, msg, len);
    free(msg);
    free(got);
}

#define CONC_THREADS 8
#define CONC_MESSAGES 200

struct producer {
    struct spool *spool;
    struct waiter *w;
    int index;
    int failures;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct spool_envelope env;
    char err[256], body[64];
    int i;
    fill_env(&env);
    for (i = 0; i < CONC_MESSAGES; i++) {
        struct spool_file *f = spool_create(p->spool, &env, err, sizeof err);
        int n = snprintf(body, sizeof body, "thread %d message %d\r\n", p->index, i);
        if (f == NULL || spool_write(f, body, (size_t)n) != 0) {
            p->failures++;
            if (f != NULL)
                spool_abort(f);
            continue;
        }
        spool_commit(f, on_done, p->w);
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void count_entry(const struct spool_entry *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
}

static void test_concurrent_commits(void **state)
{
    struct fixture *fx = *state;
    const size_t total = CONC_THREADS * CONC_MESSAGES;
    struct producer prod[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    struct waiter w;
    int i, listed = 0;
    size_t k;

    waiter_init(&w, total);
    assert_int_equal(spool_start(fx->spool), 0);
    for (i = 0; i < CONC_THREADS; i++) {
        prod[i] = (struct producer){.spool = fx->spool, .w = &w, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
    }
    for (i = 0; i < CONC_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(prod[i].failures, 0);
    }
    assert_true(waiter_wait(&w, total));
    assert_int_equal(w.failed, 0);
    assert_int_equal(w.done, total);

    /* Every message exactly once: distinct ids, all in queue/, none in tmp/. */
    qsort(w.ids, total, sizeof *w.ids, cmp_id);
    for (k = 1; k < total; k++)
        assert_true(strcmp(w.ids[k - 1], w.ids[k]) < 0);
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), (int)total);
    assert_int_equal(spool_list(fx->spool, count_entry, &listed), (int)total);
    assert_int_equal(listed, (int)total);

    /* Group commit really grouped. */
    printf("# group commit: %zu messages in %llu batches\n", total,
           (unsigned long long)spool_batches(fx->spool));
    assert_true(spool_batches(fx->spool) >= 1);
    assert_true(spool_batches(fx->spool) < total);
    waiter_free(&w);
}

static void test_abort_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    struct spool_file *f;
    fill_env(&env);
    f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    assert_int_equal(spool_write(f, "hello\r\n", 7), 0);
    assert_int_equal(count_files(fx, "tmp"), 1);
    spool_abort(f);
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), 0);
}

static void test_recovery_removes_tmp(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    struct spool_file *f;
    char path[256];
    int i, fd;

    fill_env(&env);
    f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    assert_int_equal(commit_wait(f), 0); /* no thread: synchronous */
    for (i = 0; i < 3; i++) {            /* what a crash before 250 leaves */
        snprintf(path, sizeof path, "%s/spool/tmp/00000000000000%02d", fx->dir, i);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "partial", 7), 7);
        close(fd);
    }
    assert_int_equal(count_files(fx, "tmp"), 3);
    reopen(fx);
    assert_int_equal(spool_recovered(fx->spool), 3);
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), 1);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), 1);
}

/* Points the spool file's descriptor at /dev/full, found through /proc/self/fd. */
static void redirect_to_dev_full(const struct fixture *fx, const char *id)
{
    char want[PATH_MAX + 64], base[PATH_MAX], link[300], target[PATH_MAX + 64];
    struct dirent *de;
    int found = -1, full;
    ssize_t n;
    DIR *d;

    assert_non_null(realpath(fx->dir, base));
    snprintf(want, sizeof want, "%s/spool/tmp/%s", base, id);
    d = opendir("/proc/self/fd");
    if (d == NULL)
        skip();
    while ((de = readdir(d)) != NULL && found < 0) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, want) == 0)
                found = atoi(de->d_name);
        }
    }
    closedir(d);
    assert_true(found >= 0);
    full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (full < 0)
        skip();
    assert_int_equal(dup2(full, found), found);
    close(full);
}

static void test_write_error_sticky(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    struct spool_file *f;
    static unsigned char big[70000];

    assert_int_equal(spool_start(fx->spool), 0);
    fill_env(&env);
    f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    redirect_to_dev_full(fx, spool_file_id(f));
    assert_int_equal(spool_write(f, "buffered\r\n", 10), 0); /* only in memory yet */
    errno = 0;
    assert_int_equal(spool_write(f, big, sizeof big), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(spool_file_error(f), ENOSPC);
    errno = 0;
    assert_int_equal(spool_write(f, "x", 1), -1); /* sticky */
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(spool_file_size(f), 10);
    assert_int_equal(commit_wait(f), ENOSPC);
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), 0);
}

static void test_write_error_at_commit(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    struct spool_file *f;

    assert_int_equal(spool_start(fx->spool), 0);
    fill_env(&env);
    f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    redirect_to_dev_full(fx, spool_file_id(f));
    assert_int_equal(spool_write(f, "small\r\n", 7), 0);
    assert_int_equal(spool_file_error(f), 0);
    assert_int_equal(commit_wait(f), ENOSPC); /* the final flush fails */
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), 0);
}

static void test_close_waits_for_commits(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    struct waiter w;
    int i;

    waiter_init(&w, 0);
    assert_int_equal(spool_start(fx->spool), 0);
    fill_env(&env);
    for (i = 0; i < 50; i++) {
        struct spool_file *f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
        assert_non_null(f);
        assert_int_equal(spool_write(f, "m\r\n", 3), 0);
        spool_commit(f, on_done, &w);
    }
    spool_close(fx->spool);
    fx->spool = NULL;
    assert_int_equal(w.done, 50); /* no waiting: close drained them all */
    assert_int_equal(w.failed, 0);
    fx->spool = open_file_mode(fx);
    assert_non_null(fx->spool);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), 50);
    waiter_free(&w);
}

struct listing {
    char ids[8][QUEUE_ID_LEN + 1];
    int n;
};

static void collect(const struct spool_entry *e, void *arg)
{
    struct listing *l = arg;
    assert_true(l->n < 8);
    assert_true(e->queued_ms > 1600000000000);
    assert_int_equal(e->env->n_rcpts, 2);
    memcpy(l->ids[l->n++], e->env->queue_id, QUEUE_ID_LEN + 1);
}

static void test_list_oldest_first(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    char made[5][QUEUE_ID_LEN + 1], path[256];
    struct listing l = {.n = 0};
    struct waiter w;
    int i, fd;

    waiter_init(&w, 0);
    fill_env(&env);
    for (i = 0; i < 5; i++) {
        struct spool_file *f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
        assert_non_null(f);
        memcpy(made[i], spool_file_id(f), sizeof made[i]);
        spool_commit(f, on_done, &w);
        assert_int_equal(w.done, (size_t)i + 1); /* no thread: done before commit returned */
        if (i > 0)
            assert_true(strcmp(made[i - 1], made[i]) < 0); /* ids sort by time */
    }
    snprintf(path, sizeof path, "%s/spool/queue/README", fx->dir); /* not a queue id */
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(spool_list(fx->spool, collect, &l), 5);
    assert_int_equal(l.n, 5);
    for (i = 0; i < 5; i++)
        assert_string_equal(l.ids[i], made[i]);
    waiter_free(&w);
}

static void test_load_missing(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    long off;
    errno = 0;
    assert_int_equal(spool_load(fx->spool, "0123456789ABCDEF", &env, &off), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(spool_load(fx->spool, "../../etc/passwd", &env, &off), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_null(spool_open_message(fx->spool, "0123456789ABCDEF"));
    assert_int_equal(errno, ENOENT);
}

static void put_queue_file(const struct fixture *fx, const char *id, const char *content)
{
    char path[256];
    FILE *fp;
    snprintf(path, sizeof path, "%s/spool/queue/%s", fx->dir, id);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(content, fp) >= 0, 1);
    fclose(fp);
}

static void test_corrupt_queue_file(void **state)
{
    struct fixture *fx = *state;
    static const char *bad[][2] = {
        {"00000000000000A1", "GARBAGE 1\n{}\nbody"},
        {"00000000000000A2", "SUBMITD-QUEUE 1\n{\"id\":\"00000000000000A2\",\n"},
        {"00000000000000A3", "SUBMITD-QUEUE 1\n{\"id\":\"00000000000000A2\",\"received_ms\":1,"
                             "\"sender\":\"\",\"rcpts\":[],\"auth_user\":\"\",\"tenant\":\"\","
                             "\"client_ip\":\"\",\"client_port\":1,\"helo\":\"\",\"session\":"
                             "\"\",\"body\":\"7BIT\",\"smtputf8\":false}\nbody"},
        {"00000000000000A4", "SUBMITD-QUEUE 1\n{\"id\":\"00000000000000A4\""},
        {"00000000000000A5", "SUBMITD-QUEUE 1\n[1,2,3]\n"},
        {"00000000000000A6", ""},
    };
    const char *good = "00000000000000B1";
    struct spool_envelope env;
    size_t i;
    long off;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        put_queue_file(fx, bad[i][0], bad[i][1]);
    put_queue_file(fx, good,
                   "SUBMITD-QUEUE 1\n{\"id\":\"00000000000000B1\",\"received_ms\":1,"
                   "\"sender\":\"\",\"rcpts\":[\"a@b\"],\"auth_user\":\"u\",\"tenant\":\"t\","
                   "\"client_ip\":\"127.0.0.1\",\"client_port\":25,\"helo\":\"h\",\"session\":"
                   "\"S\",\"body\":\"7BIT\",\"smtputf8\":false}\nbody\r\n");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(spool_load(fx->spool, bad[i][0], &env, &off), -1);
        assert_int_equal(errno, EBADMSG);
        assert_null(spool_open_message(fx->spool, bad[i][0]));
    }
    assert_int_equal(spool_load(fx->spool, good, &env, &off), 0);
    assert_int_equal(env.size, 6);
    assert_string_equal(env.rcpts[0], "a@b");
    spool_envelope_free(&env);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), 1); /* the readable one */
}

static void test_envelope_not_utf8(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    fill_env(&env);
    snprintf(env.sender, sizeof env.sender, "bad\xff@example.com");
    assert_null(spool_create(fx->spool, &env, fx->err, sizeof fx->err));
    assert_non_null(strstr(fx->err, "sender"));
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_files(fx, "queue"), 0);
}

/* ---- queue file version 2: the submission's reference and RFC 3461 DSN parameters ---- */

static char rcpt_c[] = "carol@example.net";
static char *rcpts3[3] = {rcpt_a, rcpt_b, rcpt_c};
static char orcpt_a[] = "rfc822;Alice+Tag@Example.com";
static char orcpt_c[] = "utf-8;c\xc3\xa4rol@example.net";
static char *orcpts3[3] = {orcpt_a, NULL, orcpt_c};
static unsigned notify3[3] = {DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, 0, DSN_NOTIFY_NEVER};

static void fill_dsn_env(struct spool_envelope *env)
{
    fill_env(env);
    env->rcpts = rcpts3;
    env->n_rcpts = 3;
    env->notify = notify3;
    env->orcpt = orcpts3;
    snprintf(env->ref, sizeof env->ref, "FEDCBA9876543210");
    snprintf(env->envid, sizeof env->envid, "QQ314159 \"x\\y\"");
    snprintf(env->ret, sizeof env->ret, "HDRS");
    env->is_dsn = true;
}

/* The envelope line (line 2) of queue file ID. */
static void read_envelope_line(const struct fixture *fx, const char *id, char *buf, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/spool/queue/%s", fx->dir, id);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, (int)cap, fp));
    assert_string_equal(buf, "SUBMITD-QUEUE 2\n");
    assert_non_null(fgets(buf, (int)cap, fp));
    fclose(fp);
}

static void test_dsn_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env, back;
    char line[4096];
    long off;
    fill_dsn_env(&env);
    struct spool_file *f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    assert_int_equal(spool_write(f, "Subject: x\r\n\r\nhi\r\n", 18), 0);
    assert_int_equal(commit_wait(f), 0);

    read_envelope_line(fx, env.queue_id, line, sizeof line);
    assert_non_null(strstr(line, "\"ref\":\"FEDCBA9876543210\""));
    assert_non_null(strstr(line, "\"envid\":\"QQ314159 \\\"x\\\\y\\\"\""));
    assert_non_null(strstr(line, "\"ret\":\"HDRS\""));
    assert_non_null(strstr(line, "\"notify\":[[\"SUCCESS\",\"FAILURE\"],[],[\"NEVER\"]]"));
    assert_non_null(
        strstr(line, "\"orcpt\":[\"rfc822;Alice+Tag@Example.com\",null,\"utf-8;c\xc3\xa4rol@"));
    assert_non_null(strstr(line, "\"is_dsn\":true"));

    assert_int_equal(spool_load(fx->spool, env.queue_id, &back, &off), 0);
    assert_int_equal(back.n_rcpts, 3);
    assert_string_equal(back.rcpts[2], rcpt_c);
    assert_string_equal(back.ref, env.ref);
    assert_string_equal(back.envid, env.envid);
    assert_string_equal(back.ret, "HDRS");
    assert_true(back.is_dsn);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(back.notify[i], notify3[i]);
    assert_string_equal(back.orcpt[0], orcpt_a);
    assert_null(back.orcpt[1]);
    assert_string_equal(back.orcpt[2], orcpt_c);
    assert_int_equal(back.size, 18);
    spool_envelope_free(&back);

    /* NOTIFY with every word but NEVER, RET=FULL, an envelope with no recipients' DSN arrays */
    unsigned all[3] = {DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, DSN_NOTIFY_DELAY,
                       0};
    env.notify = all;
    env.orcpt = NULL;
    snprintf(env.ret, sizeof env.ret, "FULL");
    env.is_dsn = false;
    f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    assert_int_equal(commit_wait(f), 0);
    read_envelope_line(fx, env.queue_id, line, sizeof line);
    assert_non_null(
        strstr(line, "\"notify\":[[\"SUCCESS\",\"FAILURE\",\"DELAY\"],[\"DELAY\"],[]]"));
    assert_non_null(strstr(line, "\"orcpt\":[null,null,null]"));
    assert_int_equal(spool_load(fx->spool, env.queue_id, &back, &off), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(back.notify[i], all[i]);
        assert_null(back.orcpt[i]);
    }
    assert_string_equal(back.ret, "FULL");
    assert_false(back.is_dsn);
    assert_int_equal(back.size, 0);
    spool_envelope_free(&back);
}

static void test_dsn_orcpt_not_utf8(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    char bad[] = "rfc822;a\xff@b";
    char *orcpt[3] = {NULL, NULL, bad};
    fill_dsn_env(&env);
    env.orcpt = orcpt;
    assert_null(spool_create(fx->spool, &env, fx->err, sizeof fx->err));
    assert_non_null(strstr(fx->err, "orcpt[2]"));
    assert_int_equal(count_files(fx, "queue"), 0);
}

#define V1_FIELDS                                                                                  \
    "\"received_ms\":1,\"sender\":\"s@x\",\"rcpts\":[\"a@b\",\"c@d\"],\"auth_user\":\"u\","        \
    "\"tenant\":\"t\",\"client_ip\":\"127.0.0.1\",\"client_port\":25,\"helo\":\"h\","              \
    "\"session\":\"S\",\"body\":\"7BIT\",\"smtputf8\":false"
#define V2_OK_DSN                                                                                  \
    "\"ref\":\"R\",\"envid\":\"E\",\"ret\":\"FULL\",\"notify\":[[\"FAILURE\"],[]],"                \
    "\"orcpt\":[null,\"rfc822;c@d\"],\"is_dsn\":false"

static void test_read_version_1(void **state)
{
    struct fixture *fx = *state;
    struct spool_envelope env;
    long off;
    /* a version 1 file (written before DSN support): the DSN fields read as not given */
    put_queue_file(fx, "00000000000000C1",
                   "SUBMITD-QUEUE 1\n{\"id\":\"00000000000000C1\"," V1_FIELDS "}\nbody\r\n");
    assert_int_equal(spool_load(fx->spool, "00000000000000C1", &env, &off), 0);
    assert_int_equal(env.n_rcpts, 2);
    assert_string_equal(env.rcpts[1], "c@d");
    assert_null(env.notify);
    assert_null(env.orcpt);
    assert_string_equal(env.ref, "");
    assert_string_equal(env.envid, "");
    assert_string_equal(env.ret, "");
    assert_false(env.is_dsn);
    assert_int_equal(env.size, 6);
    spool_envelope_free(&env);
    FILE *fp = spool_open_message(fx->spool, "00000000000000C1");
    assert_non_null(fp);
    char body[16] = "";
    assert_int_equal(fread(body, 1, sizeof body - 1, fp), 6);
    assert_string_equal(body, "body\r\n");
    fclose(fp);
    /* and the same envelope with the version 2 keys under version 2 */
    put_queue_file(fx, "00000000000000C2",
                   "SUBMITD-QUEUE 2\n{\"id\":\"00000000000000C2\"," V1_FIELDS "," V2_OK_DSN
                   "}\nbody\r\n");
    assert_int_equal(spool_load(fx->spool, "00000000000000C2", &env, &off), 0);
    assert_int_equal(env.notify[0], DSN_NOTIFY_FAILURE);
    assert_int_equal(env.notify[1], 0);
    assert_null(env.orcpt[0]);
    assert_string_equal(env.orcpt[1], "rfc822;c@d");
    assert_string_equal(env.ret, "FULL");
    spool_envelope_free(&env);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), 2);
}

static void test_corrupt_version_2(void **state)
{
    struct fixture *fx = *state;
#define V2(id, dsn) "SUBMITD-QUEUE 2\n{\"id\":\"" id "\"," V1_FIELDS dsn "}\nbody"
    static const char *bad[][2] = {
        /* a version 1 envelope under the version 2 line: the new keys are required */
        {"00000000000000D1", V2("00000000000000D1", "")},
        {"00000000000000D2", V2("00000000000000D2", ",\"ref\":\"R\",\"envid\":\"\",\"ret\":\"\","
                                                    "\"notify\":[[],[]],\"orcpt\":[null,null]")},
        /* unknown RET, NOTIFY word, NEVER combined, a word twice */
        {"00000000000000D3",
         V2("00000000000000D3", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"SOME\",\"notify\":[[],[]],"
                                "\"orcpt\":[null,null],\"is_dsn\":false")},
        {"00000000000000D4",
         V2("00000000000000D4",
            ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[\"ALWAYS\"],"
            "[]],\"orcpt\":[null,null],\"is_dsn\":false")},
        {"00000000000000D5",
         V2("00000000000000D5", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[\"NEVER\","
                                "\"DELAY\"],[]],\"orcpt\":[null,null],\"is_dsn\":false")},
        {"00000000000000D6",
         V2("00000000000000D6", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[\"DELAY\","
                                "\"DELAY\"],[]],\"orcpt\":[null,null],\"is_dsn\":false")},
        /* arrays that do not match the recipients, or of the wrong type */
        {"00000000000000D7",
         V2("00000000000000D7", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[]],"
                                "\"orcpt\":[null,null],\"is_dsn\":false")},
        {"00000000000000D8",
         V2("00000000000000D8", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[],[]],"
                                "\"orcpt\":[null,null,null],\"is_dsn\":false")},
        {"00000000000000D9",
         V2("00000000000000D9", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[],\"X\"],"
                                "\"orcpt\":[null,null],\"is_dsn\":false")},
        {"00000000000000DA",
         V2("00000000000000DA", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[],[]],"
                                "\"orcpt\":[null,7],\"is_dsn\":false")},
        {"00000000000000DB",
         V2("00000000000000DB", ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[],[]],"
                                "\"orcpt\":[null,null],\"is_dsn\":0")},
        /* a reference longer than REF_ID_LEN, a duplicate key */
        {"00000000000000DC",
         V2("00000000000000DC", ",\"ref\":\"0123456789ABCDEF0\",\"envid\":\"\",\"ret\":\"\","
                                "\"notify\":[[],[]],\"orcpt\":[null,null],\"is_dsn\":false")},
        {"00000000000000DD", V2("00000000000000DD", "," V2_OK_DSN ",\"is_dsn\":true")},
        /* an unknown version */
        {"00000000000000DE",
         "SUBMITD-QUEUE 3\n{\"id\":\"00000000000000DE\"," V1_FIELDS "," V2_OK_DSN "}\nbody"},
    };
#undef V2
    struct spool_envelope env;
    long off;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_queue_file(fx, bad[i][0], bad[i][1]);
        errno = 0;
        assert_int_equal(spool_load(fx->spool, bad[i][0], &env, &off), -1);
        assert_int_equal(errno, EBADMSG);
    }
    /* an ORCPT longer than DSN_ORCPT_MAX */
    char big[2048];
    int n = snprintf(big, sizeof big,
                     "SUBMITD-QUEUE 2\n{\"id\":\"00000000000000DF\"," V1_FIELDS
                     ",\"ref\":\"\",\"envid\":\"\",\"ret\":\"\",\"notify\":[[],[]],"
                     "\"orcpt\":[null,\"rfc822;");
    memset(big + n, 'x', DSN_ORCPT_MAX);
    snprintf(big + n + DSN_ORCPT_MAX, sizeof big - (size_t)n - DSN_ORCPT_MAX,
             "\"],\"is_dsn\":false}\nbody");
    put_queue_file(fx, "00000000000000DF", big);
    errno = 0;
    assert_int_equal(spool_load(fx->spool, "00000000000000DF", &env, &off), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), 0);
}

#define BENCH_THREADS 20
#define BENCH_SECONDS 2.0

struct bench_worker {
    struct spool *spool;
    double deadline;
    long commits;
    int failures;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One SMTP client: sends a 4 KiB message and waits for "250" (done) before the next. */
static void *bench_client(void *arg)
{
    struct bench_worker *b = arg;
    static const char block[4096] = {'x'};
    struct spool_envelope env;
    struct waiter w;
    char err[256];
    waiter_init(&w, 0);
    fill_env(&env);
    while (now_s() < b->deadline) {
        struct spool_file *f = spool_create(b->spool, &env, err, sizeof err);
        if (f == NULL || spool_write(f, block, sizeof block) != 0) {
            b->failures++;
            break;
        }
        spool_commit(f, on_done, &w);
        if (!waiter_wait(&w, (size_t)b->commits + 1)) {
            b->failures++;
            break;
        }
        b->commits++;
    }
    b->failures += (int)w.failed;
    waiter_free(&w);
    return NULL;
}

static void test_bench_group_commit(void **state)
{
    struct fixture *fx = *state;
    struct bench_worker work[BENCH_THREADS];
    pthread_t th[BENCH_THREADS];
    double start, elapsed;
    long total = 0;
    uint64_t batches;
    int i;

    assert_int_equal(spool_start(fx->spool), 0);
    start = now_s();
    for (i = 0; i < BENCH_THREADS; i++) {
        work[i] = (struct bench_worker){.spool = fx->spool, .deadline = start + BENCH_SECONDS};
        assert_int_equal(pthread_create(&th[i], NULL, bench_client, &work[i]), 0);
    }
    for (i = 0; i < BENCH_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(work[i].failures, 0);
        total += work[i].commits;
    }
    elapsed = now_s() - start;
    batches = spool_batches(fx->spool);
    printf("# bench: %d clients x 4 KiB: %ld commits in %.2f s = %.0f commits/s, "
           "%llu batches (%.1f messages per fsync of queue/)\n",
           BENCH_THREADS, total, elapsed, (double)total / elapsed, (unsigned long long)batches,
           batches ? (double)total / (double)batches : 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_removes_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_at_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_waits_for_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_oldest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_queue_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_not_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dsn_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dsn_orcpt_not_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_version_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bench_group_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
