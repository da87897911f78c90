/* test_lockout.c: smart lockout (lockout.c, issue 6) over a real sign-in log written through
 * eventlog.c: the account and address thresholds at their boundaries, the familiar-address
 * exception (the owner keeps getting in while an attacker's address is locked out), password
 * spraying across 40 accounts from one address, the window, clears of one account and of all,
 * policy denials not counted, the list, and the failure delay doubling up to its cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "eventlog.h"
#include "lockout.h"
#include "test_util.h"

#define T0 1700000000000LL
#define MIN_MS (60LL * 1000)
#define DAY_MS (86400LL * 1000)
#define WINDOW_MS (900LL * 1000)
#define OWNER_IP "192.0.2.10"
#define ATTACKER_IP "198.51.100.66"
#define OTHER_IP "203.0.113.5"
#define ALICE "alice@example.com"

struct fx {
    char dir[TU_DIR_MAX];
    struct eventlog *log;
    struct lockout *lo;
    struct lockout_config cfg;
    int seq;
};

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof f);
    if (tu_temp_dir(f.dir, "test_lockout") != 0)
        return -1;
    char err[512] = "";
    f.log = eventlog_open(f.dir, err, sizeof err);
    if (f.log == NULL) {
        fprintf(stderr, "eventlog_open: %s\n", err);
        return -1;
    }
    lockout_defaults(&f.cfg);
    f.lo = lockout_open(f.dir, &f.cfg, err, sizeof err);
    if (f.lo == NULL) {
        fprintf(stderr, "lockout_open: %s\n", err);
        return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lockout_close(f->lo);
    eventlog_close(f->log);
    tu_remove_dir(f->dir, EVENTLOG_FILE_NAME);
    return 0;
}

/* One sign-in event as the server logs it. */
static void signin(struct fx *f, int64_t t, const char *user, const char *ip, bool ok,
                   const char *gate)
{
    struct signin_event e;
    memset(&e, 0, sizeof e);
    e.time_ms = t;
    snprintf(e.ref, sizeof e.ref, "REF%08d", ++f->seq);
    snprintf(e.session, sizeof e.session, "S%08d", f->seq);
    snprintf(e.client_ip, sizeof e.client_ip, "%s", ip);
    e.client_port = 40000;
    snprintf(e.listener, sizeof e.listener, "submission");
    snprintf(e.tls, sizeof e.tls, "TLSv1.3");
    snprintf(e.mech, sizeof e.mech, "PLAIN");
    snprintf(e.user, sizeof e.user, "%s", user);
    e.success = ok;
    snprintf(e.gate, sizeof e.gate, "%s", gate);
    snprintf(e.level, sizeof e.level, "mailbox");
    e.reply_code = ok ? 235 : 535;
    assert_int_equal(eventlog_signin(f->log, &e), 0);
}

static void fail_n(struct fx *f, int n, int64_t t, const char *user, const char *ip)
{
    for (int i = 0; i < n; i++)
        signin(f, t + i, user, ip, false, "credentials");
}

static struct lockout_state check(struct fx *f, const char *user, const char *ip, int64_t now)
{
    struct lockout_state st;
    assert_int_equal(lockout_check(f->lo, user, ip, now, &st), 0);
    return st;
}

static void test_account_threshold(void **state)
{
    struct fx *f = *state;
    fail_n(f, 9, T0, ALICE, ATTACKER_IP);
    struct lockout_state st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 9);
    assert_int_equal(st.address_failures, 9);
    assert_int_equal(st.pair_failures, 9);
    assert_false(st.familiar);
    signin(f, T0 + 100, ALICE, ATTACKER_IP, false, "credentials");
    st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(st.account_failures, 10);
    assert_int_equal(st.until_ms, T0 + WINDOW_MS); /* the oldest failure leaves the window */
    /* the account as the client spelled it: compared case-insensitively */
    st = check(f, "Alice@Example.COM", OTHER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(st.account_failures, 10);
    assert_int_equal(st.pair_failures, 0);
    /* another account is not affected */
    st = check(f, "bob@example.com", OTHER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 0);
    assert_int_equal(st.until_ms, 0);
}

static void test_familiar_address_exception(void **state)
{
    struct fx *f = *state;
    /* the owner signed in from home yesterday, and from an old address 31 days ago */
    signin(f, T0 - DAY_MS, ALICE, OWNER_IP, true, "none");
    signin(f, T0 - 31 * DAY_MS, ALICE, OTHER_IP, true, "none");
    /* someone else succeeded from the attacker's address, as another account */
    signin(f, T0 - DAY_MS, "mallory@example.com", ATTACKER_IP, true, "none");
    fail_n(f, 12, T0, ALICE, ATTACKER_IP);

    struct lockout_state st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_false(st.familiar);
    /* the owner keeps getting in from where they signed in before */
    st = check(f, ALICE, OWNER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_true(st.familiar);
    assert_int_equal(st.account_failures, 12);
    st = check(f, "ALICE@example.com", OWNER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    /* an address used more than familiar_days ago is no longer familiar */
    st = check(f, ALICE, OTHER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_false(st.familiar);
    /* a failure from the owner's address does not make it familiar either */
    signin(f, T0 + 50, ALICE, "192.0.2.99", false, "credentials");
    st = check(f, ALICE, "192.0.2.99", T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
}

static void test_spraying(void **state)
{
    struct fx *f = *state;
    char user[64];
    for (int i = 0; i < 29; i++) {
        snprintf(user, sizeof user, "user%d@example.com", i);
        signin(f, T0 + i, user, ATTACKER_IP, false, "credentials");
    }
    struct lockout_state st = check(f, "user39@example.com", ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.address_failures, 29);
    for (int i = 29; i < 40; i++) {
        snprintf(user, sizeof user, "user%d@example.com", i);
        signin(f, T0 + i, user, ATTACKER_IP, false, "credentials");
    }
    for (int i = 0; i < 41; i++) {
        snprintf(user, sizeof user, "user%d@example.com", i);
        st = check(f, user, ATTACKER_IP, T0 + MIN_MS);
        assert_int_equal(st.verdict, LOCKOUT_ADDRESS);
        assert_int_equal(st.address_failures, 40);
        assert_true(st.account_failures <= 1); /* no account alone is under attack */
        assert_int_equal(st.until_ms, T0 + WINDOW_MS);
    }
    /* the same accounts from anywhere else are open */
    st = check(f, "user1@example.com", OTHER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.address_failures, 0);
    assert_int_equal(st.account_failures, 1);
    /* nobody is listed as a locked account */
    int n = lockout_list(f->lo, T0 + MIN_MS, NULL, NULL);
    assert_int_equal(n, 0);
}

static void test_window_expiry(void **state)
{
    struct fx *f = *state;
    fail_n(f, 10, T0, ALICE, ATTACKER_IP);
    struct lockout_state st = check(f, ALICE, ATTACKER_IP, T0 + WINDOW_MS - 1);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(st.until_ms, T0 + WINDOW_MS);
    /* at until_ms the oldest failure has left: 9 remain, below the threshold */
    st = check(f, ALICE, ATTACKER_IP, T0 + WINDOW_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 9);
    assert_int_equal(st.until_ms, T0 + 1 + WINDOW_MS);
    st = check(f, ALICE, ATTACKER_IP, T0 + 9 + WINDOW_MS);
    assert_int_equal(st.account_failures, 0);
    assert_int_equal(st.address_failures, 0);
    assert_int_equal(st.pair_failures, 0);
    /* a shorter window configured */
    lockout_close(f->lo);
    f->cfg.window_seconds = 60;
    char err[256];
    f->lo = lockout_open(f->dir, &f->cfg, err, sizeof err);
    assert_non_null(f->lo);
    st = check(f, ALICE, ATTACKER_IP, T0 + 60 * 1000 - 1);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    st = check(f, ALICE, ATTACKER_IP, T0 + 60 * 1000 + 9);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
}

static void test_clear_one_account(void **state)
{
    struct fx *f = *state;
    fail_n(f, 10, T0, ALICE, ATTACKER_IP);
    fail_n(f, 10, T0, "bob@example.com", ATTACKER_IP);
    struct lockout_state st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(st.address_failures, 20);
    assert_int_equal(lockout_clear(f->lo, "Alice@Example.com", T0 + MIN_MS), 0);
    st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS + 1);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 0);
    assert_int_equal(st.pair_failures, 0);
    assert_int_equal(st.address_failures, 10); /* alice's failures are forgotten there too */
    /* bob is still locked */
    st = check(f, "bob@example.com", ATTACKER_IP, T0 + MIN_MS + 1);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(st.account_failures, 10);
    /* failures after the clear count again */
    fail_n(f, 10, T0 + MIN_MS + 10, ALICE, ATTACKER_IP);
    st = check(f, ALICE, ATTACKER_IP, T0 + 2 * MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(st.account_failures, 10);
    assert_int_equal(st.until_ms, T0 + MIN_MS + 10 + WINDOW_MS);
    /* the sign-in log itself is not edited */
    sqlite3 *db = tu_raw_open(f->dir, EVENTLOG_FILE_NAME);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM signins", 0), 30);
    sqlite3_close(db);
}

static void test_clear_all(void **state)
{
    struct fx *f = *state;
    char user[64];
    for (int i = 0; i < 40; i++) {
        snprintf(user, sizeof user, "user%d@example.com", i);
        signin(f, T0 + i, user, ATTACKER_IP, false, "credentials");
    }
    fail_n(f, 10, T0, ALICE, OTHER_IP);
    assert_int_equal(check(f, ALICE, OTHER_IP, T0 + MIN_MS).verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(check(f, ALICE, ATTACKER_IP, T0 + MIN_MS).verdict, LOCKOUT_ACCOUNT);
    assert_int_equal(check(f, "x@example.com", ATTACKER_IP, T0 + MIN_MS).verdict, LOCKOUT_ADDRESS);
    assert_int_equal(lockout_clear(f->lo, NULL, T0 + MIN_MS), 0);
    struct lockout_state st = check(f, ALICE, OTHER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 0);
    st = check(f, "x@example.com", ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.address_failures, 0);
    assert_int_equal(lockout_list(f->lo, T0 + MIN_MS, NULL, NULL), 0);
    /* an older per-account clear does not bring anything back */
    assert_int_equal(lockout_clear(f->lo, ALICE, T0 + 5), 0);
    assert_int_equal(check(f, ALICE, OTHER_IP, T0 + MIN_MS).account_failures, 0);
}

static void test_policy_denials_not_counted(void **state)
{
    struct fx *f = *state;
    static const char *const gates[] = {"tls",        "account-enabled", "smtp-auth",
                                        "basic-auth", "access-rule",     "none"};
    for (int i = 0; i < 40; i++)
        signin(f, T0 + i, ALICE, ATTACKER_IP, false, gates[i % 6]);
    /* and many successes */
    for (int i = 0; i < 40; i++)
        signin(f, T0 + 100 + i, ALICE, OTHER_IP, true, "none");
    struct lockout_state st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 0);
    assert_int_equal(st.address_failures, 0);
    assert_int_equal(st.pair_failures, 0);
    /* answers of the lockout gate itself are attempts: they count */
    fail_n(f, 5, T0 + 200, ALICE, ATTACKER_IP);
    for (int i = 0; i < 5; i++)
        signin(f, T0 + 300 + i, ALICE, ATTACKER_IP, false, "lockout");
    st = check(f, ALICE, ATTACKER_IP, T0 + MIN_MS);
    assert_int_equal(st.account_failures, 10);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
}

struct listed {
    struct lockout_entry e[8];
    int n;
};

static void on_entry(const struct lockout_entry *e, void *arg)
{
    struct listed *l = arg;
    if (l->n < 8)
        l->e[l->n] = *e;
    l->n++;
}

static void test_list(void **state)
{
    struct fx *f = *state;
    fail_n(f, 10, T0, "Alice@Example.com", ATTACKER_IP);
    signin(f, T0 + 500, ALICE, "198.51.100.67", false, "credentials");
    fail_n(f, 15, T0 + 1000, "bob@example.com", OTHER_IP);
    fail_n(f, 9, T0 + 2000, "carol@example.com", OTHER_IP);      /* below the threshold */
    fail_n(f, 10, T0 - WINDOW_MS, "dave@example.com", OTHER_IP); /* outside the window */
    for (int i = 0; i < 10; i++)                                 /* not credential failures */
        signin(f, T0 + 3000 + i, "erin@example.com", OTHER_IP, false, "smtp-auth");
    struct listed out = {.n = 0};
    assert_int_equal(lockout_list(f->lo, T0 + MIN_MS, on_entry, &out), 2);
    assert_int_equal(out.n, 2);
    /* newest last failure first */
    assert_string_equal(out.e[0].account, "bob@example.com");
    assert_int_equal(out.e[0].failures, 15);
    assert_int_equal(out.e[0].last_failure_ms, T0 + 1014);
    assert_string_equal(out.e[0].last_address, OTHER_IP);
    assert_string_equal(out.e[1].account, ALICE);
    assert_int_equal(out.e[1].failures, 11);
    assert_int_equal(out.e[1].last_failure_ms, T0 + 500);
    assert_string_equal(out.e[1].last_address, "198.51.100.67");
    /* cleared: no longer listed */
    assert_int_equal(lockout_clear(f->lo, "bob@example.com", T0 + MIN_MS), 0);
    out.n = 0;
    assert_int_equal(lockout_list(f->lo, T0 + MIN_MS, on_entry, &out), 1);
    assert_string_equal(out.e[0].account, ALICE);
    /* the window moves on */
    out.n = 0;
    assert_int_equal(lockout_list(f->lo, T0 + WINDOW_MS + 1, on_entry, &out), 0);
}

static void test_delay(void **state)
{
    struct fx *f = *state;
    struct lockout_state st = check(f, ALICE, ATTACKER_IP, T0);
    assert_int_equal(lockout_delay_ms(f->lo, &st), 500);
    static const unsigned want[] = {1000, 2000, 4000, 4000, 4000};
    for (int i = 0; i < 5; i++) {
        signin(f, T0 + i, ALICE, ATTACKER_IP, false, "credentials");
        st = check(f, ALICE, ATTACKER_IP, T0 + 10);
        assert_int_equal(st.pair_failures, i + 1);
        assert_int_equal(lockout_delay_ms(f->lo, &st), want[i]);
    }
    /* failures of the account from elsewhere do not slow the owner at home */
    st = check(f, ALICE, OWNER_IP, T0 + 10);
    assert_int_equal(st.account_failures, 5);
    assert_int_equal(lockout_delay_ms(f->lo, &st), 500);
    /* the delay is configurable and never overflows */
    lockout_close(f->lo);
    f->cfg.delay_ms = UINT_MAX / 2;
    char err[256];
    f->lo = lockout_open(f->dir, &f->cfg, err, sizeof err);
    assert_non_null(f->lo);
    st = check(f, ALICE, ATTACKER_IP, T0 + 10);
    assert_int_equal(lockout_delay_ms(f->lo, &st), UINT_MAX);
    f->cfg.delay_ms = 0;
    lockout_close(f->lo);
    f->lo = lockout_open(f->dir, &f->cfg, err, sizeof err);
    assert_non_null(f->lo);
    st = check(f, ALICE, ATTACKER_IP, T0 + 10);
    assert_int_equal(lockout_delay_ms(f->lo, &st), 0);
}

static void test_thresholds_configurable(void **state)
{
    struct fx *f = *state;
    lockout_close(f->lo);
    f->cfg.account_failures = 3;
    f->cfg.address_failures = 0; /* off */
    char err[256];
    f->lo = lockout_open(f->dir, &f->cfg, err, sizeof err);
    assert_non_null(f->lo);
    fail_n(f, 2, T0, ALICE, ATTACKER_IP);
    assert_int_equal(check(f, ALICE, ATTACKER_IP, T0 + 10).verdict, LOCKOUT_OPEN);
    fail_n(f, 1, T0 + 5, ALICE, ATTACKER_IP);
    assert_int_equal(check(f, ALICE, ATTACKER_IP, T0 + 10).verdict, LOCKOUT_ACCOUNT);
    char user[64];
    for (int i = 0; i < 100; i++) {
        snprintf(user, sizeof user, "u%d@example.com", i);
        signin(f, T0 + i, user, OTHER_IP, false, "credentials");
    }
    assert_int_equal(check(f, "new@example.com", OTHER_IP, T0 + 200).verdict, LOCKOUT_OPEN);
}

/* Opened before the event log exists: nothing counted, and the log is found once it appears. */
static void test_before_the_log_exists(void **state)
{
    (void)state;
    char dir[TU_DIR_MAX], err[512] = "";
    assert_int_equal(tu_temp_dir(dir, "test_lockout_empty"), 0);
    struct lockout_config cfg;
    lockout_defaults(&cfg);
    struct lockout *lo = lockout_open(dir, &cfg, err, sizeof err);
    assert_non_null(lo);
    struct lockout_state st;
    assert_int_equal(lockout_check(lo, ALICE, ATTACKER_IP, T0, &st), 0);
    assert_int_equal(st.verdict, LOCKOUT_OPEN);
    assert_int_equal(st.account_failures, 0);
    assert_int_equal(lockout_list(lo, T0, NULL, NULL), 0);
    assert_int_equal(lockout_clear(lo, ALICE, T0 - 1000), 0);

    struct fx f;
    memset(&f, 0, sizeof f);
    f.log = eventlog_open(dir, err, sizeof err);
    assert_non_null(f.log);
    f.lo = lo;
    fail_n(&f, 10, T0, ALICE, ATTACKER_IP);
    st = check(&f, ALICE, ATTACKER_IP, T0 + 10);
    assert_int_equal(st.verdict, LOCKOUT_ACCOUNT);
    eventlog_close(f.log);
    lockout_close(lo);
    tu_remove_dir(dir, EVENTLOG_FILE_NAME);

    /* a data directory that does not exist: an error that names it */
    assert_null(lockout_open("/nonexistent/submitd-test", &cfg, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/submitd-test"));
}

/* The indexes that keep every lockout question one index range are made on the sign-in log. */
static void test_indexes_created(void **state)
{
    struct fx *f = *state;
    fail_n(f, 1, T0, ALICE, ATTACKER_IP);
    assert_int_equal(check(f, ALICE, ATTACKER_IP, T0).account_failures, 1);
    sqlite3 *db = tu_raw_open(f->dir, EVENTLOG_FILE_NAME);
    static const char *const idx[] = {"signins_failed_ip", "signins_failed_user",
                                      "signins_ok_user_ip"};
    for (size_t i = 0; i < 3; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'", idx[i]);
        assert_int_equal(tu_raw_int(db, sql, 0), 1);
    }
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_account_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_familiar_address_exception, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spraying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_one_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_denials_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thresholds_configurable, setup, teardown),
        cmocka_unit_test(test_before_the_log_exists),
        cmocka_unit_test_setup_teardown(test_indexes_created, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
