/* test_logwriter.c: the event-log writer's pace (logwriter.c): an event that finds the writer
 * idle is written at once; events that come while it is busy wait for the next transaction, at
 * most one a pace; a sign-in is never held back by the pace (smart lockout counts the written
 * log); stopping writes everything still queued, in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "eventlog.h"
#include "logwriter.h"
#include "test_util.h"

#define LONG_PACE_MS 10000 /* longer than any wait below: what it holds back stays back */
#define WAIT_MS 5000       /* how long an event written at once may take to show */

struct fixture {
    char dir[TU_DIR_MAX];
    struct logwriter *w;
    sqlite3 *db; /* a reader of the log, as submitctl is */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || tu_temp_dir(f->dir, "test_logwriter") != 0)
        return -1;
    char err[256];
    f->w = logwriter_start(f->dir, err, sizeof err);
    if (f->w == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f->db = tu_raw_open(f->dir, EVENTLOG_FILE_NAME);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->w != NULL)
        logwriter_stop(f->w);
    sqlite3_close(f->db);
    tu_remove_dir(f->dir, EVENTLOG_FILE_NAME);
    free(f);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static void submit(struct logwriter *w, int i)
{
    struct submission_event e = {0};
    e.time_ms = 1000 + i;
    snprintf(e.ref, sizeof e.ref, "SUB%013d", i);
    snprintf(e.stage, sizeof e.stage, "data");
    e.accepted = true;
    e.reply_code = 250;
    snprintf(e.user, sizeof e.user, "user%d@example.com", i % 20);
    snprintf(e.sender, sizeof e.sender, "%s", e.user);
    logwriter_submission(w, &e);
}

static void sign_in(struct logwriter *w)
{
    struct signin_event e = {0};
    e.time_ms = 5000;
    snprintf(e.ref, sizeof e.ref, "SIGNIN0000000001");
    snprintf(e.user, sizeof e.user, "alice@example.com");
    snprintf(e.gate, sizeof e.gate, "credentials");
    e.reply_code = 535;
    logwriter_signin(w, &e);
}

static int count(sqlite3 *db, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return tu_raw_int(db, sql, 0);
}

/* Waits up to WAIT_MS for the table to hold n rows; returns what it holds. */
static int wait_rows(sqlite3 *db, const char *table, int n)
{
    double until = now_ms() + WAIT_MS;
    int have;
    while ((have = count(db, table)) < n && now_ms() < until)
        usleep(5 * 1000);
    return have;
}

static void test_events_wait_for_the_pace(void **state)
{
    struct fixture *f = *state;
    logwriter_set_pace(f->w, LONG_PACE_MS);
    submit(f->w, 0); /* the writer is idle: written at once */
    assert_int_equal(wait_rows(f->db, "submissions", 1), 1);
    assert_int_equal(logwriter_writes(f->w), 1);
    for (int i = 1; i < 100; i++)
        submit(f->w, i);
    usleep(300 * 1000);
    /* held for the next transaction, not one each */
    assert_int_equal(count(f->db, "submissions"), 1);
    assert_int_equal(logwriter_writes(f->w), 1);
    logwriter_stop(f->w); /* the stop writes them: one transaction */
    f->w = NULL;
    assert_int_equal(count(f->db, "submissions"), 100);
    assert_int_equal(tu_raw_int(f->db, "SELECT count(*) FROM submissions WHERE ref = "
                                       "printf('SUB%013d', id - 1)", 0),
                     100); /* in the order queued */
}

static void test_sign_in_is_not_held_back(void **state)
{
    struct fixture *f = *state;
    logwriter_set_pace(f->w, LONG_PACE_MS);
    submit(f->w, 0);
    assert_int_equal(wait_rows(f->db, "submissions", 1), 1);
    submit(f->w, 1); /* held by the pace... */
    sign_in(f->w);   /* ...until a sign-in comes: both go now */
    assert_int_equal(wait_rows(f->db, "signins", 1), 1);
    assert_int_equal(count(f->db, "submissions"), 2);
    assert_int_equal(logwriter_writes(f->w), 2);
}

static void test_at_most_one_transaction_a_pace(void **state)
{
    struct fixture *f = *state;
    /* 200 events 1 ms apart at the default pace: without it about one transaction each */
    double t0 = now_ms();
    for (int i = 0; i < 200; i++) {
        submit(f->w, i);
        usleep(1000);
    }
    uint64_t writes = logwriter_writes(f->w);
    double elapsed = now_ms() - t0;
    logwriter_stop(f->w);
    f->w = NULL;
    assert_int_equal(count(f->db, "submissions"), 200);
    /* the first at once, then at most one each 50 ms (however slow this machine is) */
    assert_true((double)writes <= 2 + elapsed / 50);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_events_wait_for_the_pace),
        T(test_sign_in_is_not_held_back),
        T(test_at_most_one_transaction_a_pace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
