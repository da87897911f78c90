/* test_queue_state.c: unit tests for the per-message delivery state (src/queue_state.c,
 * docs/spool.md "Delivery state"): the exact line format, round trip of every field, last line
 * wins, final statuses sticky, a torn last line ignored and cut before the next append, damage
 * reported as EBADMSG while intact lines still count, indexes beyond the envelope ignored,
 * non-UTF-8 reply text, many appends, file mode, invalid ids, a reader's view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

#define ID "6614BB063E4879E1"

static int setup(void **state)
{
    return fixture_setup(state, "test_queue_state", true);
}

static void state_path(const struct fixture *fx, const char *id, char *path, size_t cap)
{
    snprintf(path, cap, "%s/spool/state/%s", fx->dir, id);
}

/* Replaces (or with `append`, extends) the state file with raw bytes. */
static void write_raw(const struct fixture *fx, const char *bytes, bool append)
{
    char path[160];
    state_path(fx, ID, path, sizeof path);
    FILE *fp = fopen(path, append ? "ab" : "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, strlen(bytes), fp), strlen(bytes));
    assert_int_equal(fclose(fp), 0);
}

/* Reads the state file whole into buf (NUL-terminated); returns its length. */
static size_t read_raw(const struct fixture *fx, char *buf, size_t cap)
{
    char path[160];
    state_path(fx, ID, path, sizeof path);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    assert_true(n < cap - 1);
    buf[n] = '\0';
    fclose(fp);
    return n;
}

static size_t count_lines(const char *buf)
{
    size_t n = 0;
    for (; *buf != '\0'; buf++)
        n += *buf == '\n';
    return n;
}

static struct qs_rcpt deferred(unsigned attempts, int64_t t)
{
    struct qs_rcpt r;
    memset(&r, 0, sizeof r);
    r.status = QS_DEFERRED;
    r.attempts = attempts;
    r.last_ms = t;
    r.next_ms = t + 60000;
    r.code = 451;
    snprintf(r.enhanced, sizeof r.enhanced, "4.3.0");
    snprintf(r.text, sizeof r.text, "try again later");
    snprintf(r.remote, sizeof r.remote, "mx.example.net:25");
    snprintf(r.stage, sizeof r.stage, "rcpt");
    return r;
}

static struct qs_rcpt final(enum qs_status s, int64_t t)
{
    struct qs_rcpt r;
    memset(&r, 0, sizeof r);
    r.status = s;
    r.attempts = 1;
    r.last_ms = t;
    r.code = s == QS_BOUNCED ? 550 : 250;
    snprintf(r.enhanced, sizeof r.enhanced, s == QS_BOUNCED ? "5.1.1" : "2.0.0");
    snprintf(r.stage, sizeof r.stage, s == QS_BOUNCED ? "rcpt" : "data");
    return r;
}

/* Appends r as recipient idx's line. */
static void append_one(struct fixture *fx, size_t idx, struct qs_rcpt r, bool sync)
{
    struct qs_rcpt v[8];
    assert_true(idx < 8);
    v[idx] = r;
    int rc = qstate_append(fx->spool, ID, v, &idx, 1, sync);
    if (rc != 0)
        fail_msg("qstate_append: %s", strerror(errno));
}

static void test_missing_file_all_pending(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt r[3];
    memset(r, 0x5a, sizeof r);
    assert_int_equal(qstate_load(fx->spool, ID, r, 3), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].status, QS_PENDING);
        assert_int_equal(r[i].attempts, 0);
        assert_int_equal(r[i].last_ms, 0);
        assert_string_equal(r[i].text, "");
    }
}

static void test_exact_line_format(void **state)
{
    struct fixture *fx = *state;
    char buf[1024];
    struct qs_rcpt r = deferred(2, 1700000000000);
    append_one(fx, 0, r, false);
    r = final(QS_BOUNCED, 1700000000500);
    r.delay_notified = true;
    snprintf(r.dsn_id, sizeof r.dsn_id, "6614BB063E4879F0");
    append_one(fx, 1, r, false);
    read_raw(fx, buf, sizeof buf);
    assert_string_equal(buf, "{\"i\":0,\"s\":\"deferred\",\"n\":2,\"t\":1700000000000,"
                             "\"next\":1700000060000,\"code\":451,\"enh\":\"4.3.0\","
                             "\"text\":\"try again later\",\"remote\":\"mx.example.net:25\","
                             "\"stage\":\"rcpt\"}\n"
                             "{\"i\":1,\"s\":\"bounced\",\"n\":1,\"t\":1700000000500,"
                             "\"code\":550,\"enh\":\"5.1.1\",\"stage\":\"rcpt\",\"dn\":true,"
                             "\"dsn\":\"6614BB063E4879F0\"}\n");
}

static void test_round_trip_every_field(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt r = deferred(7, 1700000001234), back[2];
    r.delay_notified = true;
    snprintf(r.text, sizeof r.text, "quote \" backslash \\ newline\n tab\t caf\xc3\xa9");
    append_one(fx, 1, r, true);
    assert_int_equal(qstate_load(fx->spool, ID, back, 2), 0);
    assert_int_equal(back[0].status, QS_PENDING);
    assert_int_equal(back[1].status, QS_DEFERRED);
    assert_int_equal(back[1].attempts, 7);
    assert_int_equal(back[1].last_ms, 1700000001234);
    assert_int_equal(back[1].next_ms, 1700000061234);
    assert_int_equal(back[1].code, 451);
    assert_string_equal(back[1].enhanced, "4.3.0");
    assert_string_equal(back[1].text, r.text);
    assert_string_equal(back[1].remote, "mx.example.net:25");
    assert_string_equal(back[1].stage, "rcpt");
    assert_true(back[1].delay_notified);
    assert_string_equal(back[1].dsn_id, "");
}

static void test_last_line_wins(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[1];
    for (unsigned n = 1; n <= 3; n++)
        append_one(fx, 0, deferred(n, 1000 * n), false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), 0);
    assert_int_equal(back[0].status, QS_DEFERRED);
    assert_int_equal(back[0].attempts, 3);
    assert_int_equal(back[0].last_ms, 3000);
}

static void test_final_is_sticky(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[3];
    append_one(fx, 0, final(QS_DELIVERED, 100), false);
    append_one(fx, 0, deferred(2, 200), false);
    append_one(fx, 1, final(QS_RELAYED, 100), false);
    append_one(fx, 1, final(QS_BOUNCED, 300), false);
    append_one(fx, 2, deferred(1, 50), false);
    append_one(fx, 2, final(QS_BOUNCED, 400), false);
    append_one(fx, 2, final(QS_DELIVERED, 500), false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 3), 0);
    assert_int_equal(back[0].status, QS_DELIVERED);
    assert_int_equal(back[0].last_ms, 100);
    assert_int_equal(back[1].status, QS_RELAYED);
    assert_int_equal(back[2].status, QS_BOUNCED);
    assert_int_equal(back[2].code, 550);
    assert_int_equal(back[2].last_ms, 400);
}

static void test_torn_last_line_ignored(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[2];
    append_one(fx, 0, deferred(1, 100), false);
    write_raw(fx, "{\"i\":0,\"s\":\"delivered\",\"n\":2,\"t\":200}", true); /* no LF */
    assert_int_equal(qstate_load(fx->spool, ID, back, 2), 0);
    assert_int_equal(back[0].status, QS_DEFERRED);
    assert_int_equal(back[0].attempts, 1);
    /* even a torn line that happens to be whole JSON never happened */
}

static void test_torn_line_cut_before_append(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[2];
    char buf[2048];
    append_one(fx, 0, deferred(1, 100), false);
    write_raw(fx, "{\"i\":1,\"s\":\"deliv", true);
    append_one(fx, 1, deferred(1, 150), false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 2), 0);
    assert_int_equal(back[1].status, QS_DEFERRED);
    assert_int_equal(back[1].last_ms, 150);
    read_raw(fx, buf, sizeof buf);
    assert_null(strstr(buf, "deliv\""));
    assert_null(strstr(buf, "\"deliv{"));
    assert_int_equal(count_lines(buf), 2);
}

static void test_file_of_one_torn_line(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[1];
    char buf[1024];
    write_raw(fx, "{\"i\":0,\"s\":\"bou", false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), 0);
    assert_int_equal(back[0].status, QS_PENDING);
    append_one(fx, 0, deferred(1, 10), false);
    read_raw(fx, buf, sizeof buf);
    assert_int_equal(buf[0], '{');
    assert_int_equal(count_lines(buf), 1);
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), 0);
    assert_int_equal(back[0].status, QS_DEFERRED);
}

static void test_damaged_line_is_ebadmsg(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[2];
    append_one(fx, 0, final(QS_DELIVERED, 100), false);
    write_raw(fx, "this is not json\n", true);
    append_one(fx, 1, deferred(3, 300), false);
    errno = 0;
    assert_int_equal(qstate_load(fx->spool, ID, back, 2), -1);
    assert_int_equal(errno, EBADMSG);
    /* the intact lines still count (the caller decides what to make of it) */
    assert_int_equal(back[0].status, QS_DELIVERED);
    assert_int_equal(back[1].status, QS_DEFERRED);
    assert_int_equal(back[1].attempts, 3);
}

/* Each of these lines, though whole, breaks the format. */
static void test_malformed_lines(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "\n",
        "[]\n",
        "{\"s\":\"deferred\"}\n",                                       /* no index */
        "{\"i\":\"0\",\"s\":\"deferred\"}\n",                           /* index not an integer */
        "{\"i\":-1,\"s\":\"deferred\"}\n",                              /* negative index */
        "{\"i\":0}\n",                                                  /* no status */
        "{\"i\":0,\"s\":\"sent\"}\n",                                   /* unknown status */
        "{\"i\":0,\"s\":\"deferred\",\"s\":\"bounced\"}\n",             /* duplicate key */
        "{\"i\":0,\"s\":\"deferred\",\"code\":1000}\n",                 /* code out of range */
        "{\"i\":0,\"s\":\"deferred\",\"n\":-2}\n",                      /* negative attempts */
        "{\"i\":0,\"s\":\"deferred\",\"text\":5}\n",                    /* text not a string */
        "{\"i\":0,\"s\":\"deferred\",\"enh\":\"4.3.0.0.0.0.0.0.0\"}\n", /* does not fit */
        "{\"i\":0,\"s\":\"deferred\",\"dn\":1}\n",                      /* dn not a boolean */
        "{\"i\":0,\"s\":\"deferred\"} trailing\n",
        "{\"i\":0,\"s\":\"deferred\",\"text\":\"a\\u0000b\"}\n", /* NUL inside */
    };
    struct qs_rcpt back[1];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_raw(fx, bad[i], false);
        errno = 0;
        if (qstate_load(fx->spool, ID, back, 1) != -1 || errno != EBADMSG)
            fail_msg("line %zu accepted: %s", i, bad[i]);
        assert_int_equal(back[0].status, QS_PENDING);
    }
    write_raw(fx, "{\"i\":0,\"s\":\"deferred\",\"future\":[1,2]}\n", false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), 0); /* unknown keys: later versions */
    assert_int_equal(back[0].status, QS_DEFERRED);
}

/* Decision: a line for an index the envelope does not have names nobody and is ignored (an
 * error would make the caller retry recipients whose outcomes were read fine). */
static void test_index_out_of_range_ignored(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[2];
    append_one(fx, 0, final(QS_DELIVERED, 100), false);
    write_raw(fx, "{\"i\":2,\"s\":\"bounced\"}\n{\"i\":99999999999,\"s\":\"bounced\"}\n", true);
    assert_int_equal(qstate_load(fx->spool, ID, back, 2), 0);
    assert_int_equal(back[0].status, QS_DELIVERED);
    assert_int_equal(back[1].status, QS_PENDING);
}

static void test_several_in_one_append(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt v[4], back[4];
    size_t idx[3] = {3, 0, 2};
    char buf[4096];
    v[0] = final(QS_DELIVERED, 10);
    v[2] = final(QS_DELIVERED, 10);
    v[3] = deferred(1, 10);
    memset(&v[1], 0x77, sizeof v[1]); /* not named: never read */
    assert_int_equal(qstate_append(fx->spool, ID, v, idx, 3, true), 0);
    read_raw(fx, buf, sizeof buf);
    assert_int_equal(count_lines(buf), 3);
    assert_memory_equal(buf, "{\"i\":3,", 7);
    assert_int_equal(qstate_load(fx->spool, ID, back, 4), 0);
    assert_int_equal(back[0].status, QS_DELIVERED);
    assert_int_equal(back[1].status, QS_PENDING);
    assert_int_equal(back[2].status, QS_DELIVERED);
    assert_int_equal(back[3].status, QS_DEFERRED);
}

static void test_zero_recipients_writes_nothing(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt v[1] = {deferred(1, 1)};
    char path[160];
    struct stat st;
    assert_int_equal(qstate_append(fx->spool, ID, v, NULL, 0, true), 0);
    state_path(fx, ID, path, sizeof path);
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_many_appends(void **state)
{
    struct fixture *fx = *state;
    enum { RCPTS = 10, ROUNDS = 200 };
    struct qs_rcpt v[RCPTS], back[RCPTS];
    char path[160];
    struct stat st;
    for (unsigned round = 1; round <= ROUNDS; round++)
        for (size_t i = 0; i < RCPTS; i++) {
            size_t idx = i;
            /* recipient i is delivered in round 10 * (i + 1), if that comes */
            v[i] = round == 10 * (i + 1) ? final(QS_DELIVERED, round) : deferred(round, round);
            assert_int_equal(qstate_append(fx->spool, ID, v, &idx, 1, false), 0);
        }
    assert_int_equal(qstate_load(fx->spool, ID, back, RCPTS), 0);
    for (size_t i = 0; i < RCPTS; i++) {
        assert_int_equal(back[i].status, QS_DELIVERED);
        assert_int_equal(back[i].last_ms, (int64_t)(10 * (i + 1)));
    }
    /* one line per append, none lost or merged */
    state_path(fx, ID, path, sizeof path);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    int c;
    size_t lines = 0;
    while ((c = getc(fp)) != EOF)
        lines += c == '\n';
    fclose(fp);
    assert_int_equal(lines, RCPTS * ROUNDS);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_text_not_utf8(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt r = deferred(1, 1), back[1];
    snprintf(r.text, sizeof r.text, "bad \xff\xfe octets \xc3\xa9");
    snprintf(r.remote, sizeof r.remote, "h\x80st:25");
    append_one(fx, 0, r, false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), 0);
    assert_string_equal(back[0].text, "bad ?? octets ??");
    assert_string_equal(back[0].remote, "h?st:25");
}

static void test_long_text_fits(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt r = deferred(1, 1), back[1];
    memset(r.text, '"', sizeof r.text - 1); /* every octet escaped in JSON */
    r.text[sizeof r.text - 1] = '\0';
    append_one(fx, 0, r, false);
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), 0);
    assert_int_equal(strlen(back[0].text), sizeof r.text - 1);
    assert_string_equal(back[0].text, r.text);
}

static void test_invalid_id(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt r = deferred(1, 1), back[1];
    size_t idx = 0;
    static const char *const ids[] = {"../state/x", "6614bb063e4879e1", "6614BB063E4879E",
                                      "6614BB063E4879E12", ""};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        errno = 0;
        assert_int_equal(qstate_append(fx->spool, ids[i], &r, &idx, 1, false), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(qstate_load(fx->spool, ids[i], back, 1), -1);
        assert_int_equal(errno, EINVAL);
    }
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(qs_status_name(QS_PENDING), "pending");
    assert_string_equal(qs_status_name(QS_DEFERRED), "deferred");
    assert_string_equal(qs_status_name(QS_DELIVERED), "delivered");
    assert_string_equal(qs_status_name(QS_RELAYED), "relayed");
    assert_string_equal(qs_status_name(QS_BOUNCED), "bounced");
    assert_string_equal(qs_status_name((enum qs_status)42), "unknown");
    assert_false(qs_final(QS_PENDING));
    assert_false(qs_final(QS_DEFERRED));
    assert_true(qs_final(QS_DELIVERED) && qs_final(QS_RELAYED) && qs_final(QS_BOUNCED));
}

/* What the server wrote, submitctl (a reader's spool) reads. */
static void test_reader_view(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[1];
    append_one(fx, 0, final(QS_RELAYED, 77), true);
    struct spool *reader = spool_open_reader(fx->dir, fx->err, sizeof fx->err);
    assert_non_null(reader);
    assert_int_equal(qstate_load(reader, ID, back, 1), 0);
    assert_int_equal(back[0].status, QS_RELAYED);
    assert_int_equal(back[0].last_ms, 77);
    spool_close(reader);
}

static void test_unreadable_state_is_an_error(void **state)
{
    struct fixture *fx = *state;
    struct qs_rcpt back[1];
    char path[160];
    state_path(fx, ID, path, sizeof path);
    assert_int_equal(mkdir(path, 0700), 0); /* a directory where the file should be */
    assert_int_equal(qstate_load(fx->spool, ID, back, 1), -1);
    assert_int_not_equal(errno, EBADMSG);
    struct qs_rcpt r = deferred(1, 1);
    size_t idx = 0;
    assert_int_equal(qstate_append(fx->spool, ID, &r, &idx, 1, false), -1);
    assert_int_equal(rmdir(path), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_missing_file_all_pending),
        T(test_exact_line_format),
        T(test_round_trip_every_field),
        T(test_last_line_wins),
        T(test_final_is_sticky),
        T(test_torn_last_line_ignored),
        T(test_torn_line_cut_before_append),
        T(test_file_of_one_torn_line),
        T(test_damaged_line_is_ebadmsg),
        T(test_malformed_lines),
        T(test_index_out_of_range_ignored),
        T(test_several_in_one_append),
        T(test_zero_recipients_writes_nothing),
        T(test_many_appends),
        T(test_text_not_utf8),
        T(test_long_text_fits),
        T(test_invalid_id),
        T(test_status_names),
        T(test_reader_view),
        T(test_unreadable_state_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
