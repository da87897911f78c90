/* test_quota.c: the submission limits' windows (quota.c), kept in time order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "quota.h"

static void test_sessions(void **state)
{
    (void)state;
    struct quota *q = quota_new();
    assert_true(quota_session_acquire(q, "a@x", 2));
    assert_true(quota_session_acquire(q, "a@x", 2));
    assert_false(quota_session_acquire(q, "a@x", 2));
    assert_true(quota_session_acquire(q, "b@x", 2)); /* per mailbox */
    quota_session_release(q, "a@x");
    assert_true(quota_session_acquire(q, "a@x", 2));
    quota_session_release(q, "nobody@x"); /* unknown: harmless */
    quota_free(q);
}

static void test_message_rate(void **state)
{
    (void)state;
    struct quota *q = quota_new();
    int64_t t = 1000000;
    assert_int_equal(quota_message_wait(q, "a@x", 3, t), 0);
    quota_record(q, "a@x", 1, t);
    quota_record(q, "a@x", 1, t + 10000);
    quota_record(q, "a@x", 1, t + 20000);
    /* three in the last minute: the fourth waits until the first leaves the window */
    assert_int_equal(quota_message_wait(q, "a@x", 3, t + 30000), 30);
    assert_int_equal(quota_message_wait(q, "a@x", 3, t + 59500), 1);
    assert_int_equal(quota_message_wait(q, "a@x", 3, t + 60000), 0);
    assert_int_equal(quota_message_wait(q, "a@x", 4, t + 30000), 0);
    assert_int_equal(quota_message_wait(q, "b@x", 3, t + 30000), 0);
    quota_free(q);
}

static void test_recipients_day(void **state)
{
    (void)state;
    struct quota *q = quota_new();
    int64_t t = 5 * QUOTA_DAY_MS;
    for (int i = 0; i < 100; i++) /* more than the ring's first capacity */
        quota_record(q, "a@x", 10, t + i * 1000);
    assert_int_equal(quota_recipients_today(q, "a@x", t + 100000), 1000);
    /* 24 h after the first, it no longer counts */
    assert_int_equal(quota_recipients_today(q, "a@x", t + QUOTA_DAY_MS), 990);
    assert_int_equal(quota_recipients_today(q, "a@x", t + QUOTA_DAY_MS + 98999), 10);
    assert_int_equal(quota_recipients_today(q, "a@x", t + QUOTA_DAY_MS + 99000), 0);
    assert_int_equal(quota_recipients_today(q, "a@x", t + 2 * QUOTA_DAY_MS), 0);
    /* the ring keeps working after pruning and growth */
    quota_record(q, "a@x", 7, t + 2 * QUOTA_DAY_MS);
    assert_int_equal(quota_recipients_today(q, "a@x", t + 2 * QUOTA_DAY_MS + 1), 7);
    quota_free(q);
}

/* Records that arrive out of time order (two loops, a replay) are kept in order; a long window
 * (a busy mailbox) is counted exactly. */
static void test_order_and_long_windows(void **state)
{
    (void)state;
    struct quota *q = quota_new();
    int64_t t = 1000000;
    quota_record(q, "a@x", 1, t + 20000);
    quota_record(q, "a@x", 5, t + 10000); /* late */
    quota_record(q, "a@x", 1, t + 30000);
    /* at t + 70001 the one of t + 10000 has left the minute; t + 20000 leaves next */
    assert_int_equal(quota_message_wait(q, "a@x", 2, t + 70001), 10);
    assert_int_equal(quota_message_wait(q, "a@x", 3, t + 70001), 0);
    assert_int_equal(quota_recipients_today(q, "a@x", t + 70001), 7);
    assert_int_equal(quota_recipients_today(q, "a@x", t + QUOTA_DAY_MS + 15000), 2);

    for (int i = 0; i < 10000; i++)
        quota_record(q, "b@x", 2, t + i * 10);
    /* at t + 100000 the minute holds i = 4001..9999 */
    assert_int_equal(quota_message_wait(q, "b@x", 6000, t + 100000), 0);
    assert_int_equal(quota_message_wait(q, "b@x", 5999, t + 100000), 1);
    assert_int_equal(quota_recipients_today(q, "b@x", t + 100000), 20000);
    assert_int_equal(quota_recipients_today(q, "b@x", t + QUOTA_DAY_MS + 50000), 9998);
    quota_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_message_rate),
        cmocka_unit_test(test_recipients_day),
        cmocka_unit_test(test_order_and_long_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
