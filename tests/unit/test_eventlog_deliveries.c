/* test_eventlog_deliveries.c: the delivery log (eventlog.c, logwriter.c): every field
 * round-trips, oldest first, found by queue id, by the ref an event carries and by the reference
 * of the accepted submission that queued the message (and not by a refused one), batches, the
 * table added to a log.db made before it existed, its indexes used, and the log writer: queued
 * deliveries written, and a delivery write failure retried without writing the submissions of
 * the same batch twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "eventlog.h"
#include "logwriter.h"
#include "test_util.h"

#define QID1 "00000000000000A1"
#define QID2 "00000000000000B2"
#define REF1 "REF0000000000001"

struct fixture {
    char dir[TU_DIR_MAX];
    struct eventlog *log;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || tu_temp_dir(f->dir, "test_eventlog_del") != 0)
        return -1;
    char err[256];
    f->log = eventlog_open(f->dir, err, sizeof err);
    if (f->log == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    eventlog_close(f->log);
    tu_remove_dir(f->dir, EVENTLOG_FILE_NAME);
    free(f);
    return 0;
}

static struct delivery_event delivery(int64_t t, const char *qid, const char *ref, const char *rcpt,
                                      const char *action)
{
    struct delivery_event e = {0};
    e.time_ms = t;
    snprintf(e.queue_id, sizeof e.queue_id, "%s", qid);
    snprintf(e.ref, sizeof e.ref, "%s", ref);
    snprintf(e.rcpt, sizeof e.rcpt, "%s", rcpt);
    snprintf(e.route, sizeof e.route, "relay");
    snprintf(e.action, sizeof e.action, "%s", action);
    return e;
}

static struct submission_event accepted(int64_t t, const char *ref, const char *qid, bool ok,
                                        const char *stage)
{
    struct submission_event e = {0};
    e.time_ms = t;
    snprintf(e.ref, sizeof e.ref, "%s", ref);
    snprintf(e.stage, sizeof e.stage, "%s", stage);
    e.accepted = ok;
    e.reply_code = ok ? 250 : 554;
    snprintf(e.queue_id, sizeof e.queue_id, "%s", qid);
    snprintf(e.sender, sizeof e.sender, "alice@example.com");
    return e;
}

#define MAX_ROWS 16
struct rows {
    int n;
    struct delivery_event e[MAX_ROWS];
};

static void collect(const struct delivery_event *e, void *arg)
{
    struct rows *r = arg;
    if (r->n < MAX_ROWS)
        r->e[r->n] = *e;
    r->n++;
}

static int query(struct eventlog *l, const char *key, struct rows *r)
{
    memset(r, 0, sizeof *r);
    int n = eventlog_query_deliveries(l, key, collect, r);
    assert_int_equal(n, r->n);
    return n;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct delivery_event e = delivery(1700000000123, QID1, REF1, "bob@example.net", "bounced");
    snprintf(e.route, sizeof e.route, "lmtp");
    e.attempt = 3;
    e.reply_code = 550;
    snprintf(e.reply_enhanced, sizeof e.reply_enhanced, "5.1.1");
    snprintf(e.reply_text, sizeof e.reply_text, "User unknown; it's \"quoted\"");
    snprintf(e.remote, sizeof e.remote, "mx.example.net[192.0.2.1]:25");
    snprintf(e.dsn_queue_id, sizeof e.dsn_queue_id, QID2);
    assert_int_equal(eventlog_delivery(f->log, &e), 0);
    struct rows r;
    assert_int_equal(query(f->log, QID1, &r), 1);
    assert_memory_equal(&r.e[0], &e, sizeof e);
}

static void test_unterminated_fields_bounded(void **state)
{
    struct fixture *f = *state;
    struct delivery_event e;
    memset(&e, 'x', sizeof e);
    memcpy(e.queue_id, QID1, QUEUE_ID_LEN); /* no NUL after it */
    e.time_ms = 5;
    e.attempt = 1;
    e.reply_code = 250;
    assert_int_equal(eventlog_delivery(f->log, &e), 0);
    struct rows r;
    assert_int_equal(query(f->log, QID1, &r), 0);     /* bound with its whole array */
    assert_int_equal(query(f->log, QID1 "x", &r), 1); /* 17 octets, not more */
    assert_int_equal(strlen(r.e[0].reply_text), sizeof e.reply_text - 1);
    assert_int_equal(strlen(r.e[0].action), sizeof e.action - 1);
}

static void test_oldest_first_and_only_that_message(void **state)
{
    struct fixture *f = *state;
    struct delivery_event a = delivery(300, QID1, "", "a@example.net", "delivered");
    struct delivery_event b = delivery(100, QID1, "", "b@example.net", "deferred");
    struct delivery_event c = delivery(200, QID2, "", "c@example.net", "deferred");
    struct delivery_event d = delivery(300, QID1, "", "d@example.net", "delivered");
    const struct delivery_event *batch[] = {&a, &b, &c, &d};
    assert_int_equal(eventlog_write_deliveries(f->log, batch, 4), 0);
    struct rows r;
    assert_int_equal(query(f->log, QID1, &r), 3);
    assert_string_equal(r.e[0].rcpt, "b@example.net");
    assert_string_equal(r.e[1].rcpt, "a@example.net"); /* same time: in the order written */
    assert_string_equal(r.e[2].rcpt, "d@example.net");
    assert_int_equal(query(f->log, QID2, &r), 1);
    assert_string_equal(r.e[0].rcpt, "c@example.net");
    assert_int_equal(query(f->log, "FFFFFFFFFFFFFFFF", &r), 0);
    assert_int_equal(query(f->log, "", &r), 0);
}

static void test_by_event_ref(void **state)
{
    struct fixture *f = *state;
    struct delivery_event a = delivery(1, QID1, REF1, "a@example.net", "relayed");
    struct delivery_event b = delivery(2, QID2, "", "b@example.net", "relayed");
    assert_int_equal(eventlog_delivery(f->log, &a), 0);
    assert_int_equal(eventlog_delivery(f->log, &b), 0);
    struct rows r;
    assert_int_equal(query(f->log, REF1, &r), 1);
    assert_string_equal(r.e[0].queue_id, QID1);
}

static void test_by_submission_ref(void **state)
{
    struct fixture *f = *state;
    struct submission_event ok = accepted(10, REF1, QID1, true, "data");
    assert_int_equal(eventlog_submission(f->log, &ok), 0);
    /* the deliveries carry no ref: found through the submission */
    struct delivery_event a = delivery(20, QID1, "", "a@example.net", "deferred");
    struct delivery_event b = delivery(30, QID1, "", "a@example.net", "delivered");
    struct delivery_event other = delivery(25, QID2, "", "x@example.net", "delivered");
    assert_int_equal(eventlog_delivery(f->log, &a), 0);
    assert_int_equal(eventlog_delivery(f->log, &b), 0);
    assert_int_equal(eventlog_delivery(f->log, &other), 0);
    struct rows r;
    assert_int_equal(query(f->log, REF1, &r), 2);
    assert_string_equal(r.e[0].action, "deferred");
    assert_string_equal(r.e[1].action, "delivered");
}

static void test_refused_submission_ref_finds_nothing(void **state)
{
    struct fixture *f = *state;
    /* a refused DATA and an accepted RCPT carrying the queue id: neither queued that message */
    struct submission_event refused = accepted(10, "REF0000000000002", QID1, false, "data");
    struct submission_event rcpt = accepted(11, "REF0000000000003", QID1, true, "rcpt");
    assert_int_equal(eventlog_submission(f->log, &refused), 0);
    assert_int_equal(eventlog_submission(f->log, &rcpt), 0);
    struct delivery_event a = delivery(20, QID1, "", "a@example.net", "delivered");
    assert_int_equal(eventlog_delivery(f->log, &a), 0);
    struct rows r;
    assert_int_equal(query(f->log, "REF0000000000002", &r), 0);
    assert_int_equal(query(f->log, "REF0000000000003", &r), 0);
    /* an accepted submission without a queue id matches no delivery with an empty one */
    struct submission_event noqid = accepted(12, "REF0000000000004", "", true, "data");
    assert_int_equal(eventlog_submission(f->log, &noqid), 0);
    struct delivery_event empty = delivery(21, "", "", "b@example.net", "delivered");
    assert_int_equal(eventlog_delivery(f->log, &empty), 0);
    assert_int_equal(query(f->log, "REF0000000000004", &r), 0);
}

static void test_table_added_to_old_log(void **state)
{
    (void)state;
    char dir[TU_DIR_MAX];
    assert_int_equal(tu_temp_dir(dir, "test_eventlog_old"), 0);
    sqlite3 *db = tu_raw_open(dir, EVENTLOG_FILE_NAME);
    tu_raw_exec(db, "CREATE TABLE submissions (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
                    " ref TEXT NOT NULL, session TEXT NOT NULL, client_ip TEXT NOT NULL,"
                    " client_port INTEGER NOT NULL, user TEXT NOT NULL, stage TEXT NOT NULL,"
                    " accepted INTEGER NOT NULL, reply_code INTEGER NOT NULL,"
                    " reply_enhanced TEXT NOT NULL, reply_text TEXT NOT NULL, sender TEXT NOT NULL,"
                    " recipient TEXT NOT NULL, recipients INTEGER NOT NULL, size INTEGER NOT NULL,"
                    " queue_id TEXT NOT NULL, last_auth_ref TEXT NOT NULL);"
                    "INSERT INTO submissions VALUES (1, 5, '" REF1 "', '', '', 0, '', 'data', 1,"
                    " 250, '', '', '', '', 1, 10, '" QID1 "', '')");
    sqlite3_close(db);
    char err[256];
    struct eventlog *l = eventlog_open(dir, err, sizeof err);
    assert_non_null(l);
    struct delivery_event a = delivery(20, QID1, "", "a@example.net", "delivered");
    assert_int_equal(eventlog_delivery(l, &a), 0);
    struct rows r;
    assert_int_equal(query(l, REF1, &r), 1);
    eventlog_close(l);
    tu_remove_dir(dir, EVENTLOG_FILE_NAME);
}

static void assert_plan_uses(const char *dir, const char *sql, const char *index)
{
    sqlite3 *db = tu_raw_open(dir, EVENTLOG_FILE_NAME);
    char explain[512];
    snprintf(explain, sizeof explain, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, explain, -1, &s, NULL), SQLITE_OK);
    bool found = false;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(s, 3);
        if (detail != NULL && strstr(detail, index) != NULL)
            found = true;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    if (!found)
        fail_msg("%s does not use %s", sql, index);
}

static void test_indexes_used(void **state)
{
    struct fixture *f = *state;
    const char *q = "SELECT * FROM deliveries WHERE queue_id = ?1 OR ref = ?1 OR queue_id IN"
                    " (SELECT queue_id FROM submissions WHERE ref = ?1)";
    assert_plan_uses(f->dir, q, "deliveries_queue_id");
    assert_plan_uses(f->dir, q, "deliveries_ref");
    assert_plan_uses(f->dir, q, "submissions_ref");
}

static void test_logwriter_writes_deliveries(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct logwriter *w = logwriter_start(f->dir, err, sizeof err);
    assert_non_null(w);
    struct submission_event s = accepted(1, REF1, QID1, true, "data");
    logwriter_submission(w, &s);
    for (int i = 0; i < 5; i++) {
        struct delivery_event d = delivery(10 + i, QID1, "", "a@example.net", "deferred");
        d.attempt = i + 1;
        logwriter_delivery(w, &d);
    }
    logwriter_stop(w);
    struct rows r;
    assert_int_equal(query(f->log, REF1, &r), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r.e[i].attempt, i + 1);
}

static void test_logwriter_retries_failed_deliveries_only(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = tu_raw_open(f->dir, EVENTLOG_FILE_NAME);
    /* the delivery insert fails (as on a full disk) while the submissions still go in */
    tu_raw_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON deliveries"
                    " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    char err[256];
    struct logwriter *w = logwriter_start(f->dir, err, sizeof err);
    assert_non_null(w);
    struct submission_event s = accepted(1, REF1, QID1, true, "data");
    struct delivery_event d = delivery(2, QID1, "", "a@example.net", "delivered");
    logwriter_submission(w, &s);
    logwriter_delivery(w, &d);
    usleep(300 * 1000); /* the first write happened and failed */
    struct rows r;
    assert_int_equal(query(f->log, QID1, &r), 0);
    tu_raw_exec(db, "DROP TRIGGER refuse");
    usleep(1500 * 1000); /* the retry a second later */
    assert_int_equal(query(f->log, QID1, &r), 1);
    logwriter_stop(w);
    assert_int_equal(query(f->log, QID1, &r), 1);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM submissions", 0), 1);
    sqlite3_close(db);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_unterminated_fields_bounded),
        T(test_oldest_first_and_only_that_message),
        T(test_by_event_ref),
        T(test_by_submission_ref),
        T(test_refused_submission_ref_finds_nothing),
        cmocka_unit_test(test_table_added_to_old_log),
        T(test_indexes_used),
        T(test_logwriter_writes_deliveries),
        T(test_logwriter_retries_failed_deliveries_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
