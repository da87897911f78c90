/* test_spool_journal.c: unit tests for the spool's journal, a log-structured queue
 * (src/spool_journal.c, src/spool_keeper.c, docs/spool.md "Journal"): the record codec (round
 * trip, a tombstone, every truncation, every bit of the header and a payload flip), journalled
 * commits found byte-exact by id after a restart without a file each (messages larger than the
 * buffer taking the file path), removed messages leaving the journal empty, what a crash leaves
 * (a torn tail ignored, later segments still read, tombstones honoured, a message moved to
 * queue/ before its tombstone kept once), a reader's view, the ready callback, old messages
 * moved to queue/ by the keeper, and many concurrent commits through the journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "spool.h"
#include "spool_fixture.h"
#include "spool_internal.h" /* SPOOL_SEGMENT_MAX, SPOOL_SPARE_NAME */
#include "spool_journal.h"

#define WAIT_SECONDS 60

static int setup(void **state)
{
    return fixture_setup(state, "test_journal", true);
}

static void write_file(const struct fixture *fx, const char *sub, const char *name, const void *buf,
                       size_t len)
{
    char path[160];
    snprintf(path, sizeof path, "%s/spool/%s/%s", fx->dir, sub, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static char rcpt_a[] = "alice@example.com";
static char *rcpts[1] = {rcpt_a};

static void fill_env(struct spool_envelope *env)
{
    memset(env, 0, sizeof *env);
    env->received_ms = 1700000000123;
    snprintf(env->sender, sizeof env->sender, "sender@example.com");
    env->rcpts = rcpts;
    env->n_rcpts = 1;
    snprintf(env->auth_user, sizeof env->auth_user, "user@tenant.example");
    snprintf(env->tenant, sizeof env->tenant, "tenant.example");
    snprintf(env->client_ip, sizeof env->client_ip, "127.0.0.1");
    snprintf(env->session, sizeof env->session, "0123456789ABCDEF");
    snprintf(env->body, sizeof env->body, "8BITMIME");
}

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, failed;
};

static void on_done(void *arg, int err, const char *id)
{
    struct waiter *w = arg;
    (void)id;
    pthread_mutex_lock(&w->lock);
    w->done++;
    if (err != 0)
        w->failed++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void waiter_init(struct waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void wait_for(struct waiter *w, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&w->lock);
    while (w->done < n)
        assert_int_equal(pthread_cond_timedwait(&w->cond, &w->lock, &until), 0);
    pthread_mutex_unlock(&w->lock);
}

/* The bytes message i consists of (size octets, CRLF lines). */
static void message(unsigned char *buf, size_t size, int i)
{
    for (size_t k = 0; k < size; k++)
        buf[k] = (k % 64 == 62)   ? '\r'
                 : (k % 64 == 63) ? '\n'
                                  : (unsigned char)('a' + (i + k) % 26);
}

/* Commits one message of `size` octets; returns its queue id in id. */
static void submit(struct fixture *fx, struct waiter *w, size_t size, int i,
                   char id[QUEUE_ID_LEN + 1])
{
    struct spool_envelope env;
    unsigned char *buf = malloc(size + 1);
    assert_non_null(buf);
    fill_env(&env);
    struct spool_file *f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    assert_non_null(f);
    message(buf, size, i);
    for (size_t off = 0; off < size; off += 1000)
        assert_int_equal(spool_write(f, buf + off, size - off < 1000 ? size - off : 1000), 0);
    memcpy(id, spool_file_id(f), QUEUE_ID_LEN + 1);
    spool_commit(f, on_done, w);
    free(buf);
}

/* Message id is queued (in the journal or queue/) holding exactly message i of `size` octets. */
static void assert_queued(struct fixture *fx, const char *id, size_t size, int i)
{
    struct spool_envelope env;
    long off;
    static unsigned char got[300000], want[300000];
    assert_int_equal(spool_load(fx->spool, id, &env, &off), 0);
    assert_int_equal(env.size, size);
    assert_string_equal(env.rcpts[0], "alice@example.com");
    spool_envelope_free(&env);
    FILE *fp = spool_open_message(fx->spool, id);
    assert_non_null(fp);
    size_t n = fread(got, 1, sizeof got, fp);
    fclose(fp);
    assert_int_equal(n, size);
    message(want, size, i);
    assert_memory_equal(got, want, size);
}

/* Whether name is a segment's (16 uppercase hex digits), not the spare's. */
static bool segment_name(const char *name)
{
    return strlen(name) == 16 && journal_is_hex((const unsigned char *)name, 16, true);
}

/* Octets in DIR/spool/journal's segments, all together (the spare is not one). */
static off_t journal_octets(const struct fixture *fx)
{
    char path[160];
    struct stat st;
    struct dirent *de;
    off_t total = 0;
    snprintf(path, sizeof path, "%s/spool/journal", fx->dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char p2[300];
        if (!segment_name(de->d_name))
            continue;
        snprintf(p2, sizeof p2, "%s/%s", path, de->d_name);
        if (stat(p2, &st) == 0)
            total += st.st_size;
    }
    closedir(d);
    return total;
}

static int count_ids(struct spool *sp)
{
    return spool_ids(sp, false, NULL, NULL);
}

/* Segment files in DIR/spool/journal. */
static int count_segments(const struct fixture *fx)
{
    char path[160];
    struct dirent *de;
    int n = 0;
    snprintf(path, sizeof path, "%s/spool/journal", fx->dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += segment_name(de->d_name);
    closedir(d);
    return n;
}

/* stat of DIR/spool/journal/name: 0, or -1 when there is none. */
static int journal_stat(const struct fixture *fx, const char *name, struct stat *st)
{
    char path[200];
    snprintf(path, sizeof path, "%s/spool/journal/%s", fx->dir, name);
    return stat(path, st);
}

/* ---- codec ---- */

static size_t make_record_in(unsigned char *out, const char *segment, const char *id,
                             const char *payload)
{
    size_t len = strlen(payload);
    char header[JOURNAL_HEADER_LEN];
    journal_header(header, id, segment, payload, len / 2, payload + len / 2, len - len / 2);
    memcpy(out, header, JOURNAL_HEADER_LEN);
    memcpy(out + JOURNAL_HEADER_LEN, payload, len);
    return JOURNAL_HEADER_LEN + len;
}

#define SEG "0000000000000010" /* the segment the codec tests' records are in */

static size_t make_record(unsigned char *out, const char *id, const char *payload)
{
    return make_record_in(out, SEG, id, payload);
}

static void test_codec_round_trip(void **state)
{
    (void)state;
    unsigned char buf[1024];
    size_t n = make_record(buf, "0123456789ABCDEF", "SUBMITD-QUEUE 1\n{}\nhello\r\n");
    n += make_record(buf + n, "00000000000000FF", "");
    struct journal_record r;
    size_t off = 0;
    assert_int_equal(journal_next(buf, n, &off, &r, SEG), 1);
    assert_string_equal(r.id, "0123456789ABCDEF");
    assert_int_equal(r.len, 26);
    assert_memory_equal(r.payload, "SUBMITD-QUEUE 1\n{}\nhello\r\n", 26);
    assert_int_equal(journal_next(buf, n, &off, &r, SEG), 1);
    assert_string_equal(r.id, "00000000000000FF");
    assert_int_equal(r.len, 0);
    assert_int_equal(journal_next(buf, n, &off, &r, SEG), 0);
    assert_int_equal(off, n);
}

static void test_codec_every_truncation(void **state)
{
    (void)state;
    unsigned char buf[512];
    size_t n = make_record(buf, "0123456789ABCDEF", "some payload\r\n.\r\n");
    for (size_t cut = 1; cut < n; cut++) {
        struct journal_record r;
        size_t off = 0;
        assert_int_equal(journal_next(buf, cut, &off, &r, SEG), -1);
        assert_int_equal(off, 0);
    }
}

static void test_codec_every_flip(void **state)
{
    (void)state;
    unsigned char buf[512];
    size_t n = make_record(buf, "0123456789ABCDEF", "payload");
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            struct journal_record r;
            size_t off = 0;
            buf[i] ^= (unsigned char)(1 << bit);
            assert_int_equal(journal_next(buf, n, &off, &r, SEG), -1);
            buf[i] ^= (unsigned char)(1 << bit);
        }
    /* zeros where a record should be (a file extended by a crash) are damage, not an end */
    memset(buf, 0, 100);
    size_t off = 0;
    struct journal_record r;
    assert_int_equal(journal_next(buf, 100, &off, &r, SEG), -1);
}

/* A record is keyed by its segment's name: in a file reused under another name it reads as
 * nothing; the zeros of a segment made ready ahead end the records before them. A J1 record
 * (unkeyed, written before segments were reused) is read in any segment. */
static void test_codec_keyed_by_segment(void **state)
{
    (void)state;
    unsigned char buf[1024];
    struct journal_record r;
    size_t off = 0;
    size_t n = make_record(buf, "0123456789ABCDEF", "in its segment");
    assert_int_equal(journal_next(buf, n, &off, &r, "0000000000000011"), -1);
    assert_int_equal(off, 0);
    memset(buf + n, 0, 200);
    assert_int_equal(journal_next(buf, n + 200, &off, &r, SEG), 1);
    assert_int_equal(off, n);
    assert_int_equal(journal_next(buf, n + 200, &off, &r, SEG), -1);
    assert_int_equal(off, n);

    /* J1, made here from the format's definition: BLAKE2b-128 of id, length (LE64), payload */
    const char *payload = "old format";
    unsigned char in[16 + 8 + 10], check[16];
    char hex[33], header[JOURNAL_HEADER_LEN + 1];
    memcpy(in, "0000000000000ABC", 16);
    for (int i = 0; i < 8; i++)
        in[16 + i] = (unsigned char)(i == 0 ? 10 : 0);
    memcpy(in + 24, payload, 10);
    crypto_generichash(check, sizeof check, in, sizeof in, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, check, sizeof check);
    snprintf(header, sizeof header, "J1 0000000000000ABC %016x %s\n", 10u, hex);
    memcpy(buf, header, JOURNAL_HEADER_LEN);
    memcpy(buf + JOURNAL_HEADER_LEN, payload, 10);
    off = 0;
    assert_int_equal(journal_next(buf, JOURNAL_HEADER_LEN + 10, &off, &r, "0000000000000099"), 1);
    assert_string_equal(r.id, "0000000000000ABC");
    assert_memory_equal(r.payload, payload, 10);
    buf[1] = '3'; /* no other version */
    off = 0;
    assert_int_equal(journal_next(buf, JOURNAL_HEADER_LEN + 10, &off, &r, SEG), -1);
}

/* ---- the spool with its journal ---- */

/* Journalled messages live in the journal (no file each) and are found byte-exact by id after
 * a restart; those larger than the buffer have their own file in queue/. */
static void test_commits_found_by_id(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    char ids[20][QUEUE_ID_LEN + 1];
    static const size_t sizes[] = {0, 1, 4096, 65535, 65536, 65537, 200000};
    const int n = (int)(sizeof sizes / sizeof sizes[0]);
    waiter_init(&w);
    assert_int_equal(spool_start(fx->spool), 0);
    for (int i = 0; i < n; i++)
        submit(fx, &w, sizes[i], i, ids[i]);
    wait_for(&w, n);
    assert_int_equal(w.failed, 0);
    for (int i = 0; i < n; i++)
        assert_queued(fx, ids[i], sizes[i], i);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 5); /* up to 65,536 octets */
    assert_int_equal(count_files(fx, "queue"), 2);
    assert_int_equal(count_files(fx, "tmp"), 0);
    assert_int_equal(count_ids(fx->spool), n);
    for (int i = 0; i < n; i++)
        assert_queued(fx, ids[i], sizes[i], i);
}

/* Removing every message (as delivery does) leaves nothing living in the journal: the active
 * segment stays for the next batches, and nothing comes back after a restart. */
static void test_removed_messages_leave_journal(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    char ids[10][QUEUE_ID_LEN + 1];
    const char *p[10];
    waiter_init(&w);
    assert_int_equal(spool_start(fx->spool), 0);
    for (int i = 0; i < 10; i++) {
        submit(fx, &w, 100, i, ids[i]);
        p[i] = ids[i];
    }
    wait_for(&w, 10);
    assert_true(journal_octets(fx) > 0);
    assert_int_equal(count_ids(fx->spool), 10);
    assert_int_equal(spool_remove(fx->spool, p, 4), 0);
    assert_int_equal(spool_remove(fx->spool, p + 4, 6), 0);
    assert_int_equal(count_ids(fx->spool), 0);
    assert_int_equal(count_segments(fx), 1); /* the active one: kept for the next batches */
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 0);
    assert_int_equal(count_ids(fx->spool), 0);
}

/* A queue file as the server writes it: the id, then the message. */
#define ENVELOPE_FMT                                                                               \
    "SUBMITD-QUEUE 1\n{\"id\":\"%s\",\"received_ms\":1,"                                           \
    "\"sender\":\"s@example.com\",\"rcpts\":[\"r@example.net\"],"                                  \
    "\"auth_user\":\"s@example.com\",\"tenant\":\"example.com\","                                  \
    "\"client_ip\":\"::1\",\"helo\":\"h\",\"session\":\"S\","                                      \
    "\"body\":\"7BIT\",\"client_port\":1,\"smtputf8\":false}\n%s"

static void test_replay_after_crash(void **state)
{
    struct fixture *fx = *state;
    unsigned char seg[4096], seg2[1024];
    const char *p1 = "SUBMITD-QUEUE 1\n{\"id\":\"0000000000000001\"}\nfirst\r\n";
    char p2[1024]; /* a whole envelope: this one is read back */
    snprintf(p2, sizeof p2, ENVELOPE_FMT, "0000000000000002", "second\r\n");
    const char *p3 = "SUBMITD-QUEUE 1\n{\"id\":\"0000000000000003\"}\nthird\r\n";
    const char *p4 = "SUBMITD-QUEUE 1\n{\"id\":\"0000000000000004\"}\nfourth\r\n";
    const char *p5 = "SUBMITD-QUEUE 1\n{\"id\":\"0000000000000005\"}\nfifth\r\n";
    size_t n = 0, n2 = 0;
    spool_close(fx->spool);
    fx->spool = NULL;
    n += make_record(seg + n, "0000000000000001", p1);
    n += make_record(seg + n, "0000000000000002", p2);
    n += make_record(seg + n, "0000000000000005", p5);
    size_t torn_at = n;
    n += make_record(seg + n, "0000000000000003", p3);
    write_file(fx, "journal", "0000000000000010", seg, torn_at + 30); /* 3 torn */
    n2 += make_record_in(seg2 + n2, "0000000000000011", "0000000000000004", p4);
    n2 += make_record_in(seg2 + n2, "0000000000000011", "0000000000000005", ""); /* delivered */
    write_file(fx, "journal", "0000000000000011", seg2, n2);
    /* 1 was moved to queue/ before the crash, its tombstone not yet written */
    write_file(fx, "queue", "0000000000000001", "already there", 13);
    write_file(fx, "journal", "not-a-segment", "x", 1);

    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 2); /* 2 and 4 */
    FILE *fp = spool_open_message(fx->spool, "0000000000000002");
    assert_non_null(fp);
    char line[64];
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "second\r\n");
    fclose(fp);
    assert_int_equal(count_files(fx, "queue"), 1); /* nothing written: 1 was there */
    assert_int_equal(count_ids(fx->spool), 3);     /* 1, 2, 4; 3 was never acknowledged */
    assert_int_equal(count_files(fx, "tmp"), 0);
    /* 1 is delivered from queue/: the tombstone written at open keeps the record away */
    const char *one[1] = {"0000000000000001"};
    assert_int_equal(spool_remove(fx->spool, one, 1), 0);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 2);
    assert_int_equal(count_ids(fx->spool), 2);
    /* the segment with the torn tail was never appended to */
    struct stat st;
    char path[160];
    snprintf(path, sizeof path, "%s/spool/journal/0000000000000010", fx->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)(torn_at + 30));
}

/* submitctl's view: a message living in the journal is listed and shown from its record, and
 * gone from the list once the server removed it. */
static void test_reader_sees_journal(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    char id[QUEUE_ID_LEN + 1], first[QUEUE_ID_LEN + 1];
    unsigned char rec[8192];
    waiter_init(&w);
    assert_int_equal(spool_start(fx->spool), 0);
    submit(fx, &w, 300, 7, first); /* a normal message, through the journal */
    wait_for(&w, 1);
    spool_close(fx->spool);
    fx->spool = NULL;
    /* a record as the server writes it, in a segment of its own */
    char payload[1024];
    snprintf(id, sizeof id, "%s", "0000000000000ABC");
    snprintf(payload, sizeof payload, ENVELOPE_FMT, id, "Subject: journal only\r\n\r\nhi\r\n");
    size_t n = make_record_in(rec, "00000000000000AA", id, payload);
    write_file(fx, "journal", "00000000000000AA", rec, n);

    struct spool *reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    assert_int_equal(spool_list(reader, NULL, NULL), 2);
    struct spool_envelope env;
    long off;
    assert_int_equal(spool_load(reader, id, &env, &off), 0);
    assert_string_equal(env.rcpts[0], "r@example.net");
    assert_int_equal(env.size, strlen("Subject: journal only\r\n\r\nhi\r\n"));
    spool_envelope_free(&env);
    FILE *fp = spool_open_message(reader, id);
    assert_non_null(fp);
    char line[64];
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "Subject: journal only\r\n");
    fclose(fp);
    errno = 0;
    assert_int_equal(spool_load(reader, "0000000000000ABD", &env, &off), -1);
    assert_int_equal(errno, ENOENT);
    spool_close(reader);
    assert_int_equal(count_files(fx, "journal"), 2);          /* a reader changes nothing */
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err); /* the server indexes both */
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 2);
    assert_int_equal(count_files(fx, "queue"), 0);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), 2);
    const char *gone[1] = {id};
    assert_int_equal(spool_remove(fx->spool, gone, 1), 0);
    reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    assert_int_equal(spool_list(reader, NULL, NULL), 1);
    errno = 0;
    assert_int_equal(spool_load(reader, id, &env, &off), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_load(reader, first, &env, &off), 0);
    spool_envelope_free(&env);
    spool_close(reader);
}

struct ready_log {
    struct fixture *fx;
    pthread_mutex_t lock;
    int n;
    int unloadable; /* announced before spool_load could find it: must stay 0 */
    char ids[300][QUEUE_ID_LEN + 1];
};

static void on_ready(const char *id, void *arg)
{
    struct ready_log *l = arg;
    struct spool_envelope env;
    long off;
    int rc = spool_load(l->fx->spool, id, &env, &off);
    if (rc == 0)
        spool_envelope_free(&env);
    pthread_mutex_lock(&l->lock);
    if (rc != 0)
        l->unloadable++;
    if (l->n < 300)
        memcpy(l->ids[l->n], id, QUEUE_ID_LEN + 1);
    l->n++;
    pthread_mutex_unlock(&l->lock);
}

/* Delivery may take a message once it is durable: the ready callback comes once for every
 * message, journalled or not, and the message can be loaded by then. */
static void test_ready_once_durable(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    static struct ready_log l;
    char id[QUEUE_ID_LEN + 1];
    memset(&l, 0, sizeof l);
    l.fx = fx;
    pthread_mutex_init(&l.lock, NULL);
    waiter_init(&w);
    spool_set_ready(fx->spool, on_ready, &l);
    assert_int_equal(spool_start(fx->spool), 0);
    for (int i = 0; i < 60; i++)
        submit(fx, &w, i % 10 == 9 ? 100000 : 300, i, id); /* some take the file path */
    wait_for(&w, 60);
    for (int tries = 0; tries < 1000; tries++) {
        pthread_mutex_lock(&l.lock);
        int n = l.n;
        pthread_mutex_unlock(&l.lock);
        if (n >= 60)
            break;
        usleep(10000);
    }
    assert_int_equal(l.n, 60);
    assert_int_equal(l.unloadable, 0);
    for (int i = 1; i < 60; i++)
        for (int k = 0; k < i; k++)
            assert_string_not_equal(l.ids[i], l.ids[k]); /* each once */
}

/* A message still queued when its segment is old is moved to queue/ by the keeper; the
 * segment goes (a younger one has the tombstones), and the message is intact and listed once, also
 * after a restart. */
static void test_old_messages_moved_to_queue(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    char ids[12][QUEUE_ID_LEN + 1];
    waiter_init(&w);
    spool_set_journal_age(fx->spool, 0);
    assert_int_equal(spool_start(fx->spool), 0);
    for (int i = 0; i < 12; i++)
        submit(fx, &w, 500 + (size_t)i, i, ids[i]);
    wait_for(&w, 12);
    for (int tries = 0; tries < 1000 && count_files(fx, "queue") < 12; tries++)
        usleep(10000);
    assert_int_equal(count_files(fx, "queue"), 12);
    /* what held them goes; the segment with their tombstones stays for the next batches */
    for (int tries = 0; tries < 1000 && count_segments(fx) > 1; tries++)
        usleep(10000);
    assert_int_equal(count_segments(fx), 1);
    assert_int_equal(count_ids(fx->spool), 12);
    for (int i = 0; i < 12; i++)
        assert_queued(fx, ids[i], 500 + (size_t)i, i);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 0);
    assert_int_equal(count_ids(fx->spool), 12);
    for (int i = 0; i < 12; i++)
        assert_queued(fx, ids[i], 500 + (size_t)i, i);
}

#define CONC_THREADS 8
#define CONC_EACH 100

struct producer {
    struct fixture *fx;
    struct waiter *w;
    int index;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    char id[QUEUE_ID_LEN + 1];
    for (int i = 0; i < CONC_EACH; i++)
        submit(p->fx, p->w, (size_t)(100 + (p->index * CONC_EACH + i) % 5000),
               p->index * CONC_EACH + i, id);
    return NULL;
}

static void test_concurrent_through_journal(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    struct producer prod[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    waiter_init(&w);
    assert_int_equal(spool_start(fx->spool), 0);
    for (int i = 0; i < CONC_THREADS; i++) {
        prod[i] = (struct producer){fx, &w, i};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);
    wait_for(&w, CONC_THREADS * CONC_EACH);
    assert_int_equal(w.failed, 0);
    assert_true(spool_batches(fx->spool) < CONC_THREADS * CONC_EACH);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(count_files(fx, "queue"), 0); /* every one lives in the journal */
    assert_int_equal(spool_replayed(fx->spool), CONC_THREADS * CONC_EACH);
    assert_int_equal(spool_list(fx->spool, NULL, NULL), CONC_THREADS * CONC_EACH);
    assert_int_equal(count_ids(fx->spool), CONC_THREADS * CONC_EACH);
}

/* Delivery's pattern under load: messages are removed as soon as they are ready while others
 * arrive, so segments fill (4 MiB), rotate, empty and go while the commit thread creates and
 * appends to new ones, and the keeper works beside both. Every commit succeeds; the messages
 * kept (the last few) are intact, and a restart finds exactly them. */
#define CHURN_PRODUCERS 4
#define CHURN_EACH 60
#define CHURN_SIZE 60000
#define CHURN_KEPT 5

struct churn {
    struct fixture *fx;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char (*ready)[QUEUE_ID_LEN + 1]; /* announced, not yet taken by the remover */
    size_t n_ready, taken, removed, kept, expected;
    char kept_ids[CHURN_PRODUCERS * CHURN_EACH][QUEUE_ID_LEN + 1];
};

static void churn_ready(const char *id, void *arg)
{
    struct churn *c = arg;
    pthread_mutex_lock(&c->lock);
    memcpy(c->ready[c->n_ready++], id, QUEUE_ID_LEN + 1);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *churn_remove(void *arg)
{
    struct churn *c = arg;
    for (;;) {
        char id[QUEUE_ID_LEN + 1];
        pthread_mutex_lock(&c->lock);
        while (c->taken == c->n_ready && c->taken < c->expected)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->taken == c->expected) {
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
        memcpy(id, c->ready[c->taken++], sizeof id);
        bool keep = c->taken > c->expected - CHURN_KEPT; /* the last ones: until then the
                                                             journal empties again and again */
        if (keep)
            memcpy(c->kept_ids[c->kept++], id, sizeof id);
        pthread_mutex_unlock(&c->lock);
        if (!keep) {
            const char *ids[1] = {id};
            assert_int_equal(spool_remove(c->fx->spool, ids, 1), 0);
            c->removed++;
        }
    }
}

static void *churn_produce(void *arg)
{
    struct producer *p = arg;
    char id[QUEUE_ID_LEN + 1];
    for (int i = 0; i < CHURN_EACH; i++)
        submit(p->fx, p->w, CHURN_SIZE, p->index * CHURN_EACH + i, id);
    return NULL;
}

static void test_churn_through_segments(void **state)
{
    struct fixture *fx = *state;
    static struct churn c;
    struct waiter w;
    struct producer prod[CHURN_PRODUCERS];
    pthread_t th[CHURN_PRODUCERS], remover;
    memset(&c, 0, sizeof c);
    c.fx = fx;
    c.expected = CHURN_PRODUCERS * CHURN_EACH;
    c.ready = calloc(c.expected, sizeof *c.ready);
    assert_non_null(c.ready);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    waiter_init(&w);
    spool_set_ready(fx->spool, churn_ready, &c);
    assert_int_equal(spool_start(fx->spool), 0);
    assert_int_equal(pthread_create(&remover, NULL, churn_remove, &c), 0);
    for (int i = 0; i < CHURN_PRODUCERS; i++) {
        prod[i] = (struct producer){fx, &w, i};
        assert_int_equal(pthread_create(&th[i], NULL, churn_produce, &prod[i]), 0);
    }
    for (int i = 0; i < CHURN_PRODUCERS; i++)
        pthread_join(th[i], NULL);
    wait_for(&w, (int)c.expected);
    assert_int_equal(w.failed, 0);
    pthread_join(remover, NULL);
    assert_int_equal(c.kept + c.removed, c.expected);
    assert_int_equal(count_ids(fx->spool), (int)c.kept);
    for (size_t i = 0; i < c.kept; i++) {
        struct spool_envelope env;
        long off;
        assert_int_equal(spool_load(fx->spool, c.kept_ids[i], &env, &off), 0);
        assert_int_equal(env.size, CHURN_SIZE);
        spool_envelope_free(&env);
    }
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), (int)c.kept);
    assert_int_equal(count_ids(fx->spool), (int)c.kept);
    free(c.ready);
}

/* The first batch after a start goes to a new segment that holds nothing live until the batch
 * is durable; a keeper looking all the time must still leave it alone (it once removed such a
 * segment under the append: a 451, or a 250 for a message then gone). */
static void test_new_segment_survives_busy_keeper(void **state)
{
    struct fixture *fx = *state;
    for (int round = 0; round < 30; round++) {
        struct waiter w;
        char id[QUEUE_ID_LEN + 1];
        waiter_init(&w);
        spool_set_keeper_tick(fx->spool, 0);
        assert_int_equal(spool_start(fx->spool), 0);
        submit(fx, &w, 2000, round, id);
        wait_for(&w, 1);
        assert_int_equal(w.failed, 0);
        assert_queued(fx, id, 2000, round);
        const char *ids[1] = {id};
        if (round % 2 == 0) /* half stay queued: older segments with live messages */
            assert_int_equal(spool_remove(fx->spool, ids, 1), 0);
        spool_close(fx->spool);
        fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
        assert_non_null(fx->spool);
        assert_int_equal(spool_replayed(fx->spool), (round + 1) / 2);
        if (round % 2 == 1)
            assert_queued(fx, id, 2000, round);
    }
}

/* The name of the newest segment (there must be one). */
static void newest_segment(const struct fixture *fx, char name[QUEUE_ID_LEN + 1])
{
    char path[160];
    struct dirent *de;
    name[0] = '\0';
    snprintf(path, sizeof path, "%s/spool/journal", fx->dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (segment_name(de->d_name) && strcmp(de->d_name, name) > 0)
            snprintf(name, QUEUE_ID_LEN + 1, "%s", de->d_name);
    closedir(d);
    assert_true(name[0] != '\0');
}

/* Waits (bounded) until the keeper has a spare ready; returns its inode. */
static ino_t wait_for_spare(const struct fixture *fx)
{
    struct stat st;
    for (int tries = 0; tries < 1000; tries++) {
        if (spool_spare_ready(fx->spool)) {
            assert_int_equal(journal_stat(fx, SPOOL_SPARE_NAME, &st), 0);
            assert_int_equal(st.st_size, SPOOL_SEGMENT_MAX);
            return st.st_ino;
        }
        usleep(10000);
    }
    fail_msg("no spare of %d octets in the journal", SPOOL_SEGMENT_MAX);
    return 0;
}

#define REUSE_SMALL 300   /* every small message's record has the same length */
#define REUSE_LARGE 50000 /* about 84 of these fill a segment */
#define REUSE_MAX 400     /* messages in all */

/* Commits message i of `size` octets and waits for it; the newest segment then. */
static void submit_one(struct fixture *fx, struct waiter *w, size_t size, int i,
                       char id[QUEUE_ID_LEN + 1], char newest[QUEUE_ID_LEN + 1])
{
    submit(fx, w, size, i, id);
    wait_for(w, i + 1);
    assert_int_equal(w->failed, 0);
    newest_segment(fx, newest);
}

/* Segment files are made ready ahead and reused. The keeper fills a spare with zeros to
 * SPOOL_SEGMENT_MAX: the first segment is the spare renamed, and records overwrite its zeros
 * (the file does not grow). A segment whose messages have all gone becomes the next spare (the
 * same inode) and starts again under a new name; the records of its earlier use then read as
 * nothing, even one that begins exactly where a new record ends and whose tombstone is in an
 * older segment (were it read, the message would come back at the next start). */
static void test_segments_made_ready_and_reused(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    static char ids[REUSE_MAX][QUEUE_ID_LEN + 1];
    char first[QUEUE_ID_LEN + 1], second[QUEUE_ID_LEN + 1], third[QUEUE_ID_LEN + 1];
    struct stat st;
    int i = 0, kept = 0;
    waiter_init(&w);
    spool_set_keeper_tick(fx->spool, 10);
    assert_int_equal(spool_start(fx->spool), 0);
    ino_t spare = wait_for_spare(fx);
    spool_set_keeper_paused(fx->spool, true); /* no new spare: the next segment is a new file */

    submit_one(fx, &w, REUSE_SMALL, i, ids[i], first);
    i++;
    assert_int_equal(journal_stat(fx, first, &st), 0);
    assert_int_equal(st.st_ino, spare);              /* the spare, renamed */
    assert_int_equal(st.st_size, SPOOL_SEGMENT_MAX); /* written over, not grown */
    do /* until it is full and the next segment has started */
        submit_one(fx, &w, REUSE_LARGE, i, ids[i], second);
    while (++i < REUSE_MAX && strcmp(second, first) == 0);
    assert_true(i < REUSE_MAX);
    /* submitctl's snapshot, taken now, outlives `first` */
    struct spool *reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    assert_int_equal(spool_list(reader, NULL, NULL), i);
    for (int k = 0; k < i; k++) { /* delivered: the tombstones are all in `second` */
        const char *one[1] = {ids[k]};
        assert_int_equal(spool_remove(fx->spool, one, 1), 0);
    }
    spool_set_keeper_paused(fx->spool, false);
    for (int tries = 0; tries < 1000 && journal_stat(fx, first, &st) == 0; tries++)
        usleep(10000);
    assert_int_equal(journal_stat(fx, first, &st), -1);
    assert_int_equal(wait_for_spare(fx), spare); /* emptied, it is the spare again */

    /* Fill `second` (a file that grows) with large messages while one more fits, then with
     * small ones: the small one that does not fit is the first record of the reused file, and
     * ends where `first`'s second record began. Half of these messages stay queued. */
    do {
        assert_int_equal(journal_stat(fx, second, &st), 0);
        bool large = SPOOL_SEGMENT_MAX - st.st_size > 2 * REUSE_LARGE;
        submit_one(fx, &w, large ? REUSE_LARGE : REUSE_SMALL, i, ids[i], third);
        if (i % 2 == 0 && strcmp(third, second) == 0) { /* (no tombstone after that one) */
            const char *one[1] = {ids[i]};
            assert_int_equal(spool_remove(fx->spool, one, 1), 0);
        } else {
            kept++;
        }
    } while (++i < REUSE_MAX && strcmp(third, second) == 0);
    assert_true(i < REUSE_MAX);
    assert_int_equal(journal_stat(fx, third, &st), 0);
    assert_int_equal(st.st_ino, spare);
    assert_int_equal(count_ids(fx->spool), kept);
    /* The snapshot's record of the first message is gone (the reused file's first record is
     * where it was): not found, and not read as that other message. Records not written over
     * are read as they were, or not found; never as anything else. */
    errno = 0;
    assert_null(spool_open_message(reader, ids[0]));
    assert_int_equal(errno, ENOENT);
    for (int k = 1; k < 3; k++) {
        static unsigned char got[REUSE_LARGE + 1], want[REUSE_LARGE];
        FILE *fp = spool_open_message(reader, ids[k]);
        if (fp == NULL) {
            assert_int_equal(errno, ENOENT);
            continue;
        }
        size_t got_n = fread(got, 1, sizeof got, fp);
        fclose(fp);
        message(want, REUSE_LARGE, k);
        assert_int_equal(got_n, REUSE_LARGE);
        assert_memory_equal(got, want, REUSE_LARGE);
    }
    spool_close(reader);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), kept); /* nothing of `first`'s earlier use */
    assert_int_equal(count_ids(fx->spool), kept);
}

/* Octets this process has had read from storage (/proc/self/io), or -1. */
static long long storage_reads(void)
{
    long long n = -1;
    char line[128];
    FILE *fp = fopen("/proc/self/io", "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof line, fp) != NULL)
        if (sscanf(line, "read_bytes: %lld", &n) == 1)
            break;
    fclose(fp);
    return n;
}

/* The keeper fills a new spare with direct I/O: none of its pages is in the page cache after
 * (a buffered fill dirtied and wrote back 1,024 pages a segment). Every batch written over the
 * spare's zeros is padded to a page's end, so none writes part of a page the cache does not
 * hold, which would read it from the disk first: 60 records of odd lengths, one batch each, go
 * in without the process reading anything from storage. Skipped where the file system has no
 * direct I/O (the keeper then fills through the page cache) or no I/O accounting. */
static void test_spare_filled_around_page_cache(void **state)
{
    struct fixture *fx = *state;
    struct waiter w;
    char id[QUEUE_ID_LEN + 1], path[200];
    unsigned char resident[SPOOL_SEGMENT_MAX / SPOOL_PAGE];
    waiter_init(&w);
    spool_set_keeper_tick(fx->spool, 10);
    assert_int_equal(spool_start(fx->spool), 0);
    (void)wait_for_spare(fx);
    spool_set_keeper_paused(fx->spool, true);
    snprintf(path, sizeof path, "%s/spool/journal/%s", fx->dir, SPOOL_SPARE_NAME);
    int probe = open(path, O_RDONLY | O_DIRECT);
    if (probe == -1 || storage_reads() < 0) {
        if (probe != -1)
            close(probe);
        skip();
    }
    close(probe);
    int fd = open(path, O_RDONLY);
    assert_true(fd != -1);
    void *map = mmap(NULL, SPOOL_SEGMENT_MAX, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mincore(map, SPOOL_SEGMENT_MAX, resident), 0);
    munmap(map, SPOOL_SEGMENT_MAX);
    close(fd);
    size_t cached = 0;
    for (size_t p = 0; p < sizeof resident; p++)
        cached += resident[p] & 1;
    assert_int_equal(cached, 0);

    long long before = storage_reads();
    for (int i = 0; i < 60; i++) {
        submit(fx, &w, 1000 + 37 * (size_t)i, i, id);
        wait_for(&w, i + 1);
        assert_int_equal(w.failed, 0);
    }
    assert_int_equal(storage_reads(), before);
    assert_queued(fx, id, 1000 + 37 * 59, 59);
}

/* A segment named after the clock's present (a clock stepped back since it was made): the
 * next segment's name still comes after it, so the tombstone written there is read after the
 * record it speaks for, and the message does not come back at the next start. */
static void test_segment_names_increase(void **state)
{
    struct fixture *fx = *state;
    unsigned char seg[4096];
    char a[1024], b[1024];
    const char *future = "7000000000000000";
    size_t n = 0;
    spool_close(fx->spool);
    snprintf(a, sizeof a, ENVELOPE_FMT, "0000000000000A01", "a\r\n");
    snprintf(b, sizeof b, ENVELOPE_FMT, "0000000000000B02", "b\r\n");
    n += make_record_in(seg + n, future, "0000000000000A01", a);
    n += make_record_in(seg + n, future, "0000000000000B02", b);
    write_file(fx, "journal", future, seg, n);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 2);
    assert_int_equal(spool_start(fx->spool), 0);
    const char *one[1] = {"0000000000000A01"};
    assert_int_equal(spool_remove(fx->spool, one, 1), 0); /* its tombstone: a new segment */
    char newest[QUEUE_ID_LEN + 1];
    newest_segment(fx, newest);
    assert_true(strcmp(newest, future) > 0);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), 1);
    assert_int_equal(count_ids(fx->spool), 1);
}

#define ROTATE_MESSAGES 400
#define ROTATE_SIZE 60000 /* about 70 a segment: a new segment from the spare every 70 */

/* Segments start from the spare again and again (about 6 times) while a keeper looks all the
 * time, making the next spare as soon as one is taken: every message acknowledged is there,
 * intact, after a restart. (The keeper once could make a new spare under the spare's name while
 * the commit thread was still renaming the one it took; that window is microseconds wide and
 * this test did not hit it in 20 runs without the fix: the guard is `spare_taking`.) */
static void test_rotation_under_busy_keeper(void **state)
{
    struct fixture *fx = *state;
    static char ids[ROTATE_MESSAGES][QUEUE_ID_LEN + 1];
    struct waiter w;
    waiter_init(&w);
    spool_set_keeper_tick(fx->spool, 0);
    assert_int_equal(spool_start(fx->spool), 0);
    for (int i = 0; i < ROTATE_MESSAGES; i++) {
        submit(fx, &w, ROTATE_SIZE, i, ids[i]);
        if (i % 8 == 7)
            wait_for(&w, i + 1); /* batches of up to 8: many appends, many rotations */
    }
    wait_for(&w, ROTATE_MESSAGES);
    assert_int_equal(w.failed, 0);
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(fx->spool);
    assert_int_equal(spool_replayed(fx->spool), ROTATE_MESSAGES);
    for (int i = 0; i < ROTATE_MESSAGES; i++)
        assert_queued(fx, ids[i], ROTATE_SIZE, i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_every_truncation),
        cmocka_unit_test(test_codec_every_flip),
        cmocka_unit_test(test_codec_keyed_by_segment),
        cmocka_unit_test_setup_teardown(test_commits_found_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_messages_leave_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_once_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_messages_moved_to_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_through_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_churn_through_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_segment_survives_busy_keeper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_made_ready_and_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spare_filled_around_page_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_names_increase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_under_busy_keeper, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
