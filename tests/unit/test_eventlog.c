/* test_eventlog.c: the sign-in and submission logs (eventlog.c): every field round-trips, the
 * filters (mailbox case-insensitively, ref, since, limit) and newest-first order, a reference id
 * found by its own table's query, batches, bounded reads of unterminated fields, each field in
 * the column of its name, and that the ref and mailbox lookups use their indexes. Each test gets a
 * fresh directory under /tmp. */
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
#include "test_util.h"

struct fixture {
    char dir[TU_DIR_MAX];
    struct eventlog *log;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    if (tu_temp_dir(f->dir, "test_eventlog") != 0)
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

static struct signin_event signin(int64_t t, const char *ref, const char *user, bool ok)
{
    struct signin_event e = {0};
    e.time_ms = t;
    snprintf(e.ref, sizeof e.ref, "%s", ref);
    snprintf(e.session, sizeof e.session, "5e55100000000000");
    snprintf(e.client_ip, sizeof e.client_ip, "192.0.2.7");
    e.client_port = 40000 + (int)(t % 1000);
    snprintf(e.listener, sizeof e.listener, "submission");
    snprintf(e.tls, sizeof e.tls, "TLSv1.3");
    snprintf(e.mech, sizeof e.mech, "PLAIN");
    snprintf(e.user, sizeof e.user, "%s", user);
    snprintf(e.tenant, sizeof e.tenant, "example.com");
    e.success = ok;
    snprintf(e.gate, sizeof e.gate, "%s", ok ? "none" : "smtp-auth");
    snprintf(e.level, sizeof e.level, "tenant");
    e.reply_code = ok ? 235 : 535;
    snprintf(e.reply_enhanced, sizeof e.reply_enhanced, "%s", ok ? "2.7.0" : "5.7.139");
    snprintf(e.reply_text, sizeof e.reply_text, "reply text");
    snprintf(e.reason, sizeof e.reason, "reason text");
    snprintf(e.detail, sizeof e.detail, "policy=block-basic");
    return e;
}

static struct submission_event submission(int64_t t, const char *ref, const char *user,
                                          const char *sender)
{
    struct submission_event e = {0};
    e.time_ms = t;
    snprintf(e.ref, sizeof e.ref, "%s", ref);
    snprintf(e.session, sizeof e.session, "aaaabbbbccccdddd");
    snprintf(e.client_ip, sizeof e.client_ip, "2001:db8::1");
    e.client_port = 50001;
    snprintf(e.user, sizeof e.user, "%s", user);
    snprintf(e.stage, sizeof e.stage, "data");
    e.accepted = true;
    e.reply_code = 250;
    snprintf(e.reply_enhanced, sizeof e.reply_enhanced, "2.0.0");
    snprintf(e.reply_text, sizeof e.reply_text, "OK 0123456789ABCDEF");
    snprintf(e.sender, sizeof e.sender, "%s", sender);
    snprintf(e.recipient, sizeof e.recipient, "rcpt@example.net");
    e.recipients = 3;
    e.size = 123456789012LL;
    snprintf(e.queue_id, sizeof e.queue_id, "0123456789ABCDEF");
    snprintf(e.last_auth_ref, sizeof e.last_auth_ref, "feedfacefeedface");
    return e;
}

#define MAX_ROWS 200

struct signins {
    int n;
    struct signin_event e[MAX_ROWS];
};

struct submissions {
    int n;
    struct submission_event e[MAX_ROWS];
};

static void collect_signin(const struct signin_event *e, void *arg)
{
    struct signins *c = arg;
    if (c->n < MAX_ROWS)
        c->e[c->n++] = *e;
}

static void collect_submission(const struct submission_event *e, void *arg)
{
    struct submissions *c = arg;
    if (c->n < MAX_ROWS)
        c->e[c->n++] = *e;
}

static struct signins *query_signins(struct eventlog *l, const struct signin_filter *f, int *rc)
{
    static struct signins c;
    memset(&c, 0, sizeof c);
    *rc = eventlog_query_signins(l, f, collect_signin, &c);
    return &c;
}

static struct submissions *query_submissions(struct eventlog *l, const struct signin_filter *f,
                                             int *rc)
{
    static struct submissions c;
    memset(&c, 0, sizeof c);
    *rc = eventlog_query_submissions(l, f, collect_submission, &c);
    return &c;
}

static void test_signin_round_trip(void **state)
{
    struct fixture *f = *state;
    struct signin_event e = signin(1700000000123LL, "0123456789abcdef", "Alice@Example.com", false);
    assert_int_equal(eventlog_signin(f->log, &e), 0);
    int rc;
    struct signins *c = query_signins(f->log, NULL, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(c->n, 1);
    const struct signin_event *g = &c->e[0];
    assert_int_equal(g->time_ms, e.time_ms);
    assert_string_equal(g->ref, e.ref);
    assert_string_equal(g->session, e.session);
    assert_string_equal(g->client_ip, e.client_ip);
    assert_int_equal(g->client_port, e.client_port);
    assert_string_equal(g->listener, e.listener);
    assert_string_equal(g->tls, e.tls);
    assert_string_equal(g->mech, e.mech);
    assert_string_equal(g->user, "Alice@Example.com"); /* kept as given */
    assert_string_equal(g->tenant, e.tenant);
    assert_false(g->success);
    assert_string_equal(g->gate, e.gate);
    assert_string_equal(g->level, e.level);
    assert_int_equal(g->reply_code, 535);
    assert_string_equal(g->reply_enhanced, e.reply_enhanced);
    assert_string_equal(g->reply_text, e.reply_text);
    assert_string_equal(g->reason, e.reason);
    assert_string_equal(g->detail, e.detail);
}

static void test_submission_round_trip(void **state)
{
    struct fixture *f = *state;
    struct submission_event e =
        submission(1700000000999LL, "1111222233334444", "bob@example.com", "bob@example.com");
    assert_int_equal(eventlog_submission(f->log, &e), 0);
    int rc;
    struct submissions *c = query_submissions(f->log, NULL, &rc);
    assert_int_equal(rc, 1);
    const struct submission_event *g = &c->e[0];
    assert_int_equal(g->time_ms, e.time_ms);
    assert_string_equal(g->ref, e.ref);
    assert_string_equal(g->session, e.session);
    assert_string_equal(g->client_ip, e.client_ip);
    assert_int_equal(g->client_port, e.client_port);
    assert_string_equal(g->user, e.user);
    assert_string_equal(g->stage, e.stage);
    assert_true(g->accepted);
    assert_int_equal(g->reply_code, 250);
    assert_string_equal(g->reply_enhanced, e.reply_enhanced);
    assert_string_equal(g->reply_text, e.reply_text);
    assert_string_equal(g->sender, e.sender);
    assert_string_equal(g->recipient, e.recipient);
    assert_int_equal(g->recipients, 3);
    assert_int_equal(g->size, 123456789012LL);
    assert_string_equal(g->queue_id, e.queue_id);
    assert_string_equal(g->last_auth_ref, e.last_auth_ref);
}

/* Each field is stored in the column of its name: the writes and the reads follow one column
 * list, so a round trip alone would not show two fields in each other's columns. */
static void test_columns_on_disk(void **state)
{
    struct fixture *f = *state;
    struct signin_event e = signin(1700000000123LL, "0123456789abcdef", "Alice@Example.com", false);
    struct submission_event m =
        submission(1700000000999LL, "1111222233334444", "bob@example.com", "sender@example.com");
    assert_int_equal(eventlog_signin(f->log, &e), 0);
    assert_int_equal(eventlog_submission(f->log, &m), 0);
    sqlite3 *db = tu_raw_open(f->dir, EVENTLOG_FILE_NAME);
    assert_int_equal(
        tu_raw_int(db,
                   "SELECT count(*) FROM signins WHERE time_ms = 1700000000123"
                   " AND ref = '0123456789abcdef' AND session = '5e55100000000000'"
                   " AND client_ip = '192.0.2.7' AND client_port = 40123"
                   " AND listener = 'submission' AND tls = 'TLSv1.3' AND mech = 'PLAIN'"
                   " AND user = 'Alice@Example.com' AND tenant = 'example.com'"
                   " AND success = 0 AND gate = 'smtp-auth' AND level = 'tenant'"
                   " AND reply_code = 535 AND reply_enhanced = '5.7.139'"
                   " AND reply_text = 'reply text' AND reason = 'reason text'"
                   " AND detail = 'policy=block-basic'",
                   0),
        1);
    assert_int_equal(tu_raw_int(db,
                                "SELECT count(*) FROM submissions WHERE time_ms = 1700000000999"
                                " AND ref = '1111222233334444' AND session = 'aaaabbbbccccdddd'"
                                " AND client_ip = '2001:db8::1' AND client_port = 50001"
                                " AND user = 'bob@example.com' AND stage = 'data' AND accepted = 1"
                                " AND reply_code = 250 AND reply_enhanced = '2.0.0'"
                                " AND reply_text = 'OK 0123456789ABCDEF'"
                                " AND sender = 'sender@example.com'"
                                " AND recipient = 'rcpt@example.net' AND recipients = 3"
                                " AND size = 123456789012 AND queue_id = '0123456789ABCDEF'"
                                " AND last_auth_ref = 'feedfacefeedface'",
                                0),
                     1);
    sqlite3_close(db);
}

static void test_filters_and_order(void **state)
{
    struct fixture *f = *state;
    struct signin_event a = signin(1000, "aaaaaaaaaaaaaaaa", "alice@example.com", true);
    struct signin_event b = signin(3000, "bbbbbbbbbbbbbbbb", "ALICE@example.COM", false);
    struct signin_event c = signin(2000, "cccccccccccccccc", "carol@example.com", false);
    assert_int_equal(eventlog_signin(f->log, &a), 0);
    assert_int_equal(eventlog_signin(f->log, &b), 0);
    assert_int_equal(eventlog_signin(f->log, &c), 0);
    int rc;
    struct signins *r = query_signins(f->log, &(struct signin_filter){0}, &rc);
    assert_int_equal(rc, 3);
    assert_int_equal(r->e[0].time_ms, 3000); /* newest first */
    assert_int_equal(r->e[1].time_ms, 2000);
    assert_int_equal(r->e[2].time_ms, 1000);

    r = query_signins(f->log, &(struct signin_filter){.mailbox = "Alice@EXAMPLE.com"}, &rc);
    assert_int_equal(rc, 2);
    assert_string_equal(r->e[0].ref, "bbbbbbbbbbbbbbbb");
    assert_string_equal(r->e[1].ref, "aaaaaaaaaaaaaaaa");

    r = query_signins(f->log, &(struct signin_filter){.ref = "cccccccccccccccc"}, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(r->e[0].user, "carol@example.com");

    r = query_signins(
        f->log, &(struct signin_filter){.ref = "cccccccccccccccc", .mailbox = "alice@example.com"},
        &rc);
    assert_int_equal(rc, 0);

    r = query_signins(f->log, &(struct signin_filter){.since_ms = 2000}, &rc);
    assert_int_equal(rc, 2);
    r = query_signins(
        f->log, &(struct signin_filter){.since_ms = 2000, .mailbox = "alice@example.com"}, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(r->e[0].time_ms, 3000);

    r = query_signins(f->log, &(struct signin_filter){.limit = 1}, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(r->e[0].time_ms, 3000);

    r = query_signins(f->log, &(struct signin_filter){.mailbox = "nobody@example.com"}, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r->n, 0);
}

static void test_ref_in_its_own_table(void **state)
{
    struct fixture *f = *state;
    struct signin_event s = signin(10, "5151515151515151", "a@example.com", false);
    struct submission_event m =
        submission(20, "5252525252525252", "a@example.com", "a@example.com");
    assert_int_equal(eventlog_signin(f->log, &s), 0);
    assert_int_equal(eventlog_submission(f->log, &m), 0);
    int rc;
    query_signins(f->log, &(struct signin_filter){.ref = "5151515151515151"}, &rc);
    assert_int_equal(rc, 1);
    query_signins(f->log, &(struct signin_filter){.ref = "5252525252525252"}, &rc);
    assert_int_equal(rc, 0);
    struct submissions *r =
        query_submissions(f->log, &(struct signin_filter){.ref = "5252525252525252"}, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(r->e[0].queue_id, "0123456789ABCDEF");
    query_submissions(f->log, &(struct signin_filter){.ref = "5151515151515151"}, &rc);
    assert_int_equal(rc, 0);
}

static void test_submission_mailbox_user_or_sender(void **state)
{
    struct fixture *f = *state;
    struct submission_event a = submission(1, "0000000000000001", "", "Dave@Example.com");
    struct submission_event b =
        submission(2, "0000000000000002", "dave@example.com", "other@x.org");
    struct submission_event c =
        submission(3, "0000000000000003", "eve@example.com", "eve@example.com");
    const struct submission_event *all[] = {&a, &b, &c};
    assert_int_equal(eventlog_write_batch(f->log, NULL, 0, all, 3), 0);
    int rc;
    struct submissions *r =
        query_submissions(f->log, &(struct signin_filter){.mailbox = "DAVE@example.com"}, &rc);
    assert_int_equal(rc, 2);
    assert_string_equal(r->e[0].ref, "0000000000000002");
    assert_string_equal(r->e[1].ref, "0000000000000001");
    query_submissions(
        f->log, &(struct signin_filter){.mailbox = "dave@example.com", .ref = "0000000000000003"},
        &rc);
    assert_int_equal(rc, 0);
}

static void test_batch_and_default_limit(void **state)
{
    struct fixture *f = *state;
    static struct signin_event ev[120];
    const struct signin_event *ptr[120];
    for (int i = 0; i < 120; i++) {
        char ref[REF_ID_LEN + 1];
        snprintf(ref, sizeof ref, "%016x", i);
        ev[i] = signin(i, ref, "bulk@example.com", true);
        ptr[i] = &ev[i];
    }
    struct submission_event m = submission(5, "9999999999999999", "bulk@example.com", "");
    const struct submission_event *mp = &m;
    assert_int_equal(eventlog_write_batch(f->log, ptr, 120, &mp, 1), 0);
    int rc;
    struct signins *r = query_signins(f->log, &(struct signin_filter){0}, &rc);
    assert_int_equal(rc, 100);
    assert_int_equal(r->e[0].time_ms, 119);
    r = query_signins(f->log, &(struct signin_filter){.limit = 150}, &rc);
    assert_int_equal(rc, 120);
    query_submissions(f->log, NULL, &rc);
    assert_int_equal(rc, 1);
}

static void test_unterminated_fields(void **state)
{
    struct fixture *f = *state;
    struct signin_event e = signin(1, "0123456789abcdef", "u@example.com", true);
    memset(e.reason, 'r', sizeof e.reason); /* no NUL */
    memset(e.mech, 'M', sizeof e.mech);
    assert_int_equal(eventlog_signin(f->log, &e), 0);
    int rc;
    struct signins *r = query_signins(f->log, NULL, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(strlen(r->e[0].reason), sizeof e.reason - 1);
    assert_int_equal(strlen(r->e[0].mech), sizeof e.mech - 1);
}

static void test_overlong_mailbox_filter(void **state)
{
    struct fixture *f = *state;
    char longname[SMTP_PATH_MAX + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct signin_event e = signin(1, "0123456789abcdef", "", true);
    memset(e.user, 'a', SMTP_PATH_MAX);
    e.user[SMTP_PATH_MAX] = '\0';
    assert_int_equal(eventlog_signin(f->log, &e), 0);
    int rc;
    query_signins(f->log, &(struct signin_filter){.mailbox = longname}, &rc);
    assert_int_equal(rc, 0); /* not a prefix match on the stored 256 characters */
    query_signins(f->log, &(struct signin_filter){.mailbox = e.user}, &rc);
    assert_int_equal(rc, 1);
}

static void test_reopen_keeps_rows(void **state)
{
    struct fixture *f = *state;
    struct signin_event e = signin(1, "0123456789abcdef", "u@example.com", true);
    assert_int_equal(eventlog_signin(f->log, &e), 0);
    eventlog_close(f->log);
    char err[256];
    f->log = eventlog_open(f->dir, err, sizeof err);
    assert_non_null(f->log);
    int rc;
    query_signins(f->log, NULL, &rc);
    assert_int_equal(rc, 1);
}

static void test_open_failure(void **state)
{
    (void)state;
    char err[256] = "";
    struct eventlog *l = eventlog_open("/nonexistent/submitd-test", err, sizeof err);
    assert_null(l);
    assert_non_null(strstr(err, "/nonexistent/submitd-test/log.db"));
}

/* The plan of a query contains the index name. */
static void assert_plan_uses(const char *dir, const char *sql, const char *index)
{
    char path[128];
    snprintf(path, sizeof path, "%s/log.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char q[512];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    bool found = false;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(s, 3);
        if (detail != NULL && strstr(detail, index) != NULL)
            found = true;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_true(found);
}

static void test_indexes_used(void **state)
{
    struct fixture *f = *state;
    assert_plan_uses(f->dir, "SELECT * FROM signins WHERE ref = 'x'", "signins_ref");
    assert_plan_uses(f->dir, "SELECT * FROM signins WHERE lower(user) = 'x' ORDER BY time_ms DESC",
                     "signins_user_time");
    assert_plan_uses(f->dir, "SELECT * FROM submissions WHERE ref = 'x'", "submissions_ref");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_signin_round_trip),
        T(test_submission_round_trip),
        T(test_columns_on_disk),
        T(test_filters_and_order),
        T(test_ref_in_its_own_table),
        T(test_submission_mailbox_user_or_sender),
        T(test_batch_and_default_limit),
        T(test_unterminated_fields),
        T(test_overlong_mailbox_filter),
        T(test_reopen_keeps_rows),
        cmocka_unit_test(test_open_failure),
        T(test_indexes_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
