/* test_spool_delivery.c: unit tests for the delivery side of the spool (src/spool_delivery.c,
 * docs/spool.md "Hold and removal"): hold and release round trip, missing and invalid ids, a
 * release that would replace, removal of queued and held messages with their state files (and
 * a message that cannot be removed keeping its state), spool_ids order, spool_load and
 * spool_open_message finding held messages, and the start-up clean-up: stale state files
 * removed (not by a reader), a message living in the journal keeping its state, held and
 * removed from the journal by the server (not by a reader) and not coming back after a restart,
 * and a message held out of the journal whose tombstone a crash stopped kept once (held). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_state.h"
#include "spool.h"
#include "spool_fixture.h"
#include "spool_journal.h"

static int setup(void **state)
{
    return fixture_setup(state, "test_spool_delivery", false);
}

static void reopen(struct fixture *fx)
{
    spool_close(fx->spool);
    fx->spool = spool_open(fx->dir, fx->err, sizeof fx->err);
    if (fx->spool == NULL)
        fail_msg("spool_open: %s", fx->err);
    spool_set_journal(fx->spool, false);
}

static bool exists(const struct fixture *fx, const char *sub, const char *name)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/spool/%s/%s", fx->dir, sub, name);
    if (stat(path, &st) == 0)
        return true;
    assert_int_equal(errno, ENOENT);
    return false;
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

static size_t read_file(const struct fixture *fx, const char *sub, const char *name, char *buf,
                        size_t cap)
{
    char path[160];
    snprintf(path, sizeof path, "%s/spool/%s/%s", fx->dir, sub, name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap, fp);
    assert_true(n < cap);
    fclose(fp);
    return n;
}

static char rcpt_a[] = "alice@example.com";
static char rcpt_b[] = "bob@example.org";
static char *rcpts[2] = {rcpt_a, rcpt_b};

static void on_done(void *arg, int err, const char *queue_id)
{
    char *id = arg;
    assert_int_equal(err, 0);
    memcpy(id, queue_id, QUEUE_ID_LEN + 1);
}

/* Queues a message whose body is `body`; its id into id. */
static void queue_message(struct fixture *fx, const char *body, char id[QUEUE_ID_LEN + 1])
{
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    env.received_ms = 1700000000123;
    snprintf(env.sender, sizeof env.sender, "sender@example.com");
    env.rcpts = rcpts;
    env.n_rcpts = 2;
    snprintf(env.auth_user, sizeof env.auth_user, "user@tenant.example");
    snprintf(env.tenant, sizeof env.tenant, "tenant.example");
    snprintf(env.client_ip, sizeof env.client_ip, "127.0.0.1");
    snprintf(env.session, sizeof env.session, "0123456789ABCDEF");
    snprintf(env.body, sizeof env.body, "7BIT");
    struct spool_file *f = spool_create(fx->spool, &env, fx->err, sizeof fx->err);
    if (f == NULL)
        fail_msg("spool_create: %s", fx->err);
    assert_int_equal(spool_write(f, body, strlen(body)), 0);
    id[0] = '\0';
    spool_commit(f, on_done, id);
    assert_int_equal(strlen(id), QUEUE_ID_LEN);
    assert_true(exists(fx, "queue", id));
}

/* Records one outcome for recipient 0 of id. */
static void record_state(struct fixture *fx, const char *id)
{
    struct qs_rcpt r;
    size_t idx = 0;
    memset(&r, 0, sizeof r);
    r.status = QS_DEFERRED;
    r.attempts = 1;
    r.code = 451;
    assert_int_equal(qstate_append(fx->spool, id, &r, &idx, 1, true), 0);
    assert_true(exists(fx, "state", id));
}

static void test_directories_made(void **state)
{
    struct fixture *fx = *state;
    static const char *const subs[] = {"hold", "state"};
    for (size_t i = 0; i < 2; i++) {
        char path[160];
        struct stat st;
        snprintf(path, sizeof path, "%s/spool/%s", fx->dir, subs[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
    }
}

static void test_hold_release_round_trip(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1], before[512], after[512];
    queue_message(fx, "Subject: hold me\r\n\r\nbody\r\n", id);
    size_t n = read_file(fx, "queue", id, before, sizeof before);
    assert_false(spool_is_held(fx->spool, id));

    assert_int_equal(spool_hold(fx->spool, id), 0);
    assert_false(exists(fx, "queue", id));
    assert_true(exists(fx, "hold", id));
    assert_true(spool_is_held(fx->spool, id));
    assert_int_equal(read_file(fx, "hold", id, after, sizeof after), n);
    assert_memory_equal(before, after, n);

    assert_int_equal(spool_release(fx->spool, id), 0);
    assert_true(exists(fx, "queue", id));
    assert_false(exists(fx, "hold", id));
    assert_false(spool_is_held(fx->spool, id));
    assert_int_equal(read_file(fx, "queue", id, after, sizeof after), n);
    assert_memory_equal(before, after, n);
}

static void test_missing_and_invalid_ids(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1];
    static const char *const bad[] = {"0000000000000001", "../queue/x", "", "6614bb063e4879e1",
                                      "6614BB063E4879E1X"};
    queue_message(fx, "x\r\n", id);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(spool_hold(fx->spool, bad[i]), -1);
        assert_int_equal(errno, ENOENT);
        errno = 0;
        assert_int_equal(spool_release(fx->spool, bad[i]), -1);
        assert_int_equal(errno, ENOENT);
        assert_false(spool_is_held(fx->spool, bad[i]));
    }
    /* release of a message that is not held; hold of one already held */
    errno = 0;
    assert_int_equal(spool_release(fx->spool, id), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_hold(fx->spool, id), 0);
    errno = 0;
    assert_int_equal(spool_hold(fx->spool, id), -1);
    assert_int_equal(errno, ENOENT);
    assert_true(exists(fx, "hold", id));
}

/* A release never replaces a file in queue/ (it would be a second copy of the message). */
static void test_release_does_not_replace(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1], buf[64];
    queue_message(fx, "x\r\n", id);
    assert_int_equal(spool_hold(fx->spool, id), 0);
    write_file(fx, "queue", id, "other", 5);
    errno = 0;
    assert_int_equal(spool_release(fx->spool, id), -1);
    assert_int_equal(errno, EEXIST);
    assert_true(exists(fx, "hold", id));
    assert_int_equal(read_file(fx, "queue", id, buf, sizeof buf), 5);
}

static void test_load_finds_held(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1], line[64];
    struct spool_envelope env;
    long off;
    queue_message(fx, "held body\r\n", id);
    assert_int_equal(spool_hold(fx->spool, id), 0);
    assert_int_equal(spool_load(fx->spool, id, &env, &off), 0);
    assert_string_equal(env.queue_id, id);
    assert_int_equal(env.n_rcpts, 2);
    assert_string_equal(env.rcpts[1], "bob@example.org");
    assert_int_equal(env.size, strlen("held body\r\n"));
    spool_envelope_free(&env);
    FILE *fp = spool_open_message(fx->spool, id);
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "held body\r\n");
    fclose(fp);
    /* a reader (submitctl) finds it too */
    struct spool *reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    assert_int_equal(spool_load(reader, id, &env, &off), 0);
    spool_envelope_free(&env);
    assert_true(spool_is_held(reader, id));
    spool_close(reader);
}

static void test_remove_queued(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1], other[QUEUE_ID_LEN + 1];
    struct spool_envelope env;
    long off;
    queue_message(fx, "one\r\n", id);
    queue_message(fx, "two\r\n", other);
    record_state(fx, id);
    record_state(fx, other);
    const char *ids[1] = {id};
    assert_int_equal(spool_remove(fx->spool, ids, 1), 0);
    assert_false(exists(fx, "queue", id));
    assert_false(exists(fx, "state", id));
    errno = 0;
    assert_int_equal(spool_load(fx->spool, id, &env, &off), -1);
    assert_int_equal(errno, ENOENT);
    /* the other message and its state are untouched */
    assert_true(exists(fx, "queue", other));
    assert_true(exists(fx, "state", other));
}

static void test_remove_held(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1];
    queue_message(fx, "held\r\n", id);
    record_state(fx, id);
    assert_int_equal(spool_hold(fx->spool, id), 0);
    const char *ids[1] = {id};
    assert_int_equal(spool_remove(fx->spool, ids, 1), 0);
    assert_false(exists(fx, "hold", id));
    assert_false(exists(fx, "queue", id));
    assert_false(exists(fx, "state", id));
    assert_false(spool_is_held(fx->spool, id));
}

/* A batch with queued, held and unknown ids: every message that exists goes; the call reports
 * ENOENT for the unknown one. */
static void test_remove_batch(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    queue_message(fx, "a\r\n", a);
    queue_message(fx, "b\r\n", b);
    queue_message(fx, "c\r\n", c);
    record_state(fx, a);
    record_state(fx, b);
    assert_int_equal(spool_hold(fx->spool, b), 0);
    const char *ids[4] = {a, "0000000000000001", b, "../x"};
    errno = 0;
    assert_int_equal(spool_remove(fx->spool, ids, 4), -1);
    assert_int_equal(errno, ENOENT);
    assert_false(exists(fx, "queue", a));
    assert_false(exists(fx, "hold", b));
    assert_false(exists(fx, "state", a));
    assert_false(exists(fx, "state", b));
    assert_true(exists(fx, "queue", c));
    assert_int_equal(spool_ids(fx->spool, false, NULL, NULL), 1);
    assert_int_equal(spool_ids(fx->spool, true, NULL, NULL), 0);
    assert_int_equal(spool_remove(fx->spool, NULL, 0), 0);
}

/* A message whose file cannot be removed stays whole: its state file stays with it. Here
 * queue/ID is a non-empty directory, so unlink(2) fails with EISDIR. */
static void test_remove_failure_keeps_state(void **state)
{
    struct fixture *fx = *state;
    const char *id = "6614BB063E4879E1";
    char path[160], other[QUEUE_ID_LEN + 1];
    snprintf(path, sizeof path, "%s/spool/queue/%s", fx->dir, id);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(fx, "queue", "6614BB063E4879E1/inside", "x", 1);
    record_state(fx, id);
    queue_message(fx, "fine\r\n", other);
    record_state(fx, other);
    const char *ids[2] = {id, other};
    errno = 0;
    assert_int_equal(spool_remove(fx->spool, ids, 2), -1);
    assert_true(errno == EISDIR || errno == EPERM);
    assert_true(exists(fx, "state", id));
    assert_true(exists(fx, "queue", id));
    assert_false(exists(fx, "queue", other));
    assert_false(exists(fx, "state", other));
}

/* After a crash between the directory flush and the state unlink, the message is gone and its
 * state is left: removing it again removes the state (and says ENOENT). */
static void test_remove_again_removes_leftover_state(void **state)
{
    struct fixture *fx = *state;
    const char *id = "6614BB063E4879E2";
    record_state(fx, id);
    const char *ids[1] = {id};
    errno = 0;
    assert_int_equal(spool_remove(fx->spool, ids, 1), -1);
    assert_int_equal(errno, ENOENT);
    assert_false(exists(fx, "state", id));
}

static void test_stale_state_removed_at_open(void **state)
{
    struct fixture *fx = *state;
    char queued[QUEUE_ID_LEN + 1], held[QUEUE_ID_LEN + 1];
    const char *stale = "6614BB063E4879E3";
    queue_message(fx, "q\r\n", queued);
    queue_message(fx, "h\r\n", held);
    assert_int_equal(spool_hold(fx->spool, held), 0);
    record_state(fx, queued);
    record_state(fx, held);
    record_state(fx, stale);
    write_file(fx, "state", "not-an-id", "x", 1);

    /* a reader removes nothing */
    struct spool *reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    spool_close(reader);
    assert_true(exists(fx, "state", stale));

    reopen(fx);
    assert_false(exists(fx, "state", stale));
    assert_true(exists(fx, "state", queued));
    assert_true(exists(fx, "state", held));
    assert_true(exists(fx, "state", "not-an-id"));
    struct qs_rcpt r[2];
    assert_int_equal(qstate_load(fx->spool, queued, r, 2), 0);
    assert_int_equal(r[0].status, QS_DEFERRED);
}

/* Journal record of a message acknowledged before a crash, as spool_journal.c writes it. */
static void write_segment(struct fixture *fx, const char *id, const char *body)
{
    char payload[512], seg[1024], header[JOURNAL_HEADER_LEN];
    int len = snprintf(payload, sizeof payload,
                       "SUBMITD-QUEUE 1\n{\"id\":\"%s\",\"received_ms\":1,\"sender\":\"\","
                       "\"rcpts\":[\"a@b\"],\"auth_user\":\"u\",\"tenant\":\"t\","
                       "\"client_ip\":\"::1\",\"client_port\":1,\"helo\":\"h\","
                       "\"session\":\"0123456789ABCDEF\",\"body\":\"7BIT\",\"smtputf8\":false}\n%s",
                       id, body);
    assert_true(len > 0 && (size_t)len < sizeof payload);
    journal_header(header, id, "0000000000000010", payload, (size_t)len, NULL, 0);
    memcpy(seg, header, JOURNAL_HEADER_LEN);
    memcpy(seg + JOURNAL_HEADER_LEN, payload, (size_t)len);
    write_file(fx, "journal", "0000000000000010", seg, JOURNAL_HEADER_LEN + (size_t)len);
}

/* The journal is indexed before stale state is sought: a message living in the journal at the
 * crash keeps the state recorded for it, and is found by its id without a file of its own. */
static void test_replayed_message_keeps_state(void **state)
{
    struct fixture *fx = *state;
    const char *id = "6614BB063E4879E4";
    record_state(fx, id);
    spool_close(fx->spool);
    fx->spool = NULL;
    write_segment(fx, id, "replayed\r\n");
    reopen(fx);
    assert_int_equal(spool_replayed(fx->spool), 1);
    assert_false(exists(fx, "queue", id));
    assert_true(exists(fx, "state", id));
    struct spool_envelope env;
    long off;
    assert_int_equal(spool_load(fx->spool, id, &env, &off), 0);
    assert_int_equal(env.size, strlen("replayed\r\n"));
    spool_envelope_free(&env);
}

struct collected {
    char ids[8][QUEUE_ID_LEN + 1];
    size_t n;
};

static void collect(const char *queue_id, void *arg)
{
    struct collected *c = arg;
    assert_true(c->n < 8);
    memcpy(c->ids[c->n++], queue_id, QUEUE_ID_LEN + 1);
}

/* Held out of the journal (hold/ID written, then a tombstone), then a crash that lost the
 * tombstone: the held copy wins, the record is forgotten at open, and the message is listed
 * once, as held. */
static void test_replayed_copy_of_held_dropped(void **state)
{
    struct fixture *fx = *state;
    const char *id = "6614BB063E4879E5";
    spool_close(fx->spool);
    fx->spool = NULL;
    write_segment(fx, id, "held\r\n");
    reopen(fx); /* indexed: it lives in the journal */
    assert_false(exists(fx, "queue", id));
    assert_int_equal(spool_hold(fx->spool, id), 0);
    assert_true(exists(fx, "hold", id));
    assert_true(spool_is_held(fx->spool, id));
    spool_close(fx->spool);
    fx->spool = NULL;
    write_segment(fx, id, "held\r\n"); /* the segment as it was before the tombstone */
    reopen(fx);
    assert_int_equal(spool_replayed(fx->spool), 0);
    assert_false(exists(fx, "queue", id));
    assert_true(exists(fx, "hold", id));
    struct collected q = {0}, h = {0};
    assert_int_equal(spool_ids(fx->spool, false, collect, &q), 0);
    assert_int_equal(spool_ids(fx->spool, true, collect, &h), 1);
    /* the tombstone written at open keeps it out once hold/ID is gone too */
    const char *ids[1] = {id};
    assert_int_equal(spool_remove(fx->spool, ids, 1), 0);
    reopen(fx);
    assert_int_equal(spool_replayed(fx->spool), 0);
    errno = 0;
    struct spool_envelope env;
    long off;
    assert_int_equal(spool_load(fx->spool, id, &env, &off), -1);
    assert_int_equal(errno, ENOENT);
}

/* Only the server writes the journal: a reader's spool cannot hold or remove a message living
 * there (EAGAIN); the server's can, durably (not back after a restart), and its state goes. */
static void test_journal_only_is_eagain(void **state)
{
    struct fixture *fx = *state;
    const char *id = "6614BB063E4879E6", *id2 = "6614BB063E4879E7";
    write_segment(fx, id, "soon\r\n");
    struct spool *reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    errno = 0;
    assert_int_equal(spool_hold(reader, id), -1);
    assert_int_equal(errno, EAGAIN);
    const char *ids[1] = {id};
    errno = 0;
    assert_int_equal(spool_remove(reader, ids, 1), -1);
    assert_int_equal(errno, EAGAIN);
    spool_close(reader);

    record_state(fx, id);
    reopen(fx);
    assert_int_equal(spool_replayed(fx->spool), 1);
    assert_int_equal(spool_remove(fx->spool, ids, 1), 0);
    assert_false(exists(fx, "state", id));
    reopen(fx);
    assert_int_equal(spool_replayed(fx->spool), 0);
    struct collected q = {0};
    assert_int_equal(spool_ids(fx->spool, false, collect, &q), 0);

    /* and a hold straight out of the journal, released into queue/ */
    spool_close(fx->spool);
    fx->spool = NULL;
    write_segment(fx, id2, "later\r\n");
    reopen(fx);
    assert_int_equal(spool_hold(fx->spool, id2), 0);
    assert_int_equal(spool_release(fx->spool, id2), 0);
    assert_true(exists(fx, "queue", id2));
    reopen(fx);
    assert_int_equal(spool_replayed(fx->spool), 0);
    assert_int_equal(spool_ids(fx->spool, false, collect, &q), 1);
    assert_string_equal(q.ids[0], id2);
}

static void test_ids_order(void **state)
{
    struct fixture *fx = *state;
    char ids[6][QUEUE_ID_LEN + 1];
    struct collected q = {0}, h = {0};
    for (int i = 0; i < 6; i++)
        queue_message(fx, "m\r\n", ids[i]);
    assert_int_equal(spool_hold(fx->spool, ids[4]), 0);
    assert_int_equal(spool_hold(fx->spool, ids[1]), 0);
    write_file(fx, "queue", "README", "x", 1);
    write_file(fx, "hold", "6614bb063e4879e1", "x", 1); /* lowercase: not an id */
    assert_int_equal(spool_ids(fx->spool, false, collect, &q), 4);
    assert_int_equal(spool_ids(fx->spool, true, collect, &h), 2);
    assert_int_equal(q.n, 4);
    assert_string_equal(q.ids[0], ids[0]);
    assert_string_equal(q.ids[1], ids[2]);
    assert_string_equal(q.ids[2], ids[3]);
    assert_string_equal(q.ids[3], ids[5]);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.ids[0], ids[1]);
    assert_string_equal(h.ids[1], ids[4]);
    for (size_t i = 1; i < q.n; i++)
        assert_true(strcmp(q.ids[i - 1], q.ids[i]) < 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_directories_made),
        T(test_hold_release_round_trip),
        T(test_missing_and_invalid_ids),
        T(test_release_does_not_replace),
        T(test_load_finds_held),
        T(test_remove_queued),
        T(test_remove_held),
        T(test_remove_batch),
        T(test_remove_failure_keeps_state),
        T(test_remove_again_removes_leftover_state),
        T(test_stale_state_removed_at_open),
        T(test_replayed_message_keeps_state),
        T(test_replayed_copy_of_held_dropped),
        T(test_journal_only_is_eagain),
        T(test_ids_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
