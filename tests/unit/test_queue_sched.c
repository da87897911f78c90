/* test_queue_sched.c: unit tests for the queue runner's schedule (src/queue_sched.c): due order,
 * per-route concurrency limits, flush, removal while in flight, many entries against a sorted
 * reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_sched.h"

static const char *id_of(int i)
{
    static char buf[8][QUEUE_ID_LEN + 1];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, QUEUE_ID_LEN + 1, "%016X", (unsigned)i);
    return b;
}

static void test_due_order(void **state)
{
    (void)state;
    struct qsched *q = qsched_new();
    int64_t next;
    assert_true(qsched_add(q, id_of(1), "a.example", 300));
    assert_true(qsched_add(q, id_of(2), "a.example", 100));
    assert_true(qsched_add(q, id_of(3), "a.example", 200));
    assert_null(qsched_take(q, 50, &next));
    assert_int_equal(next, 100);
    struct qsched_entry *e = qsched_take(q, 1000, &next);
    assert_string_equal(e->id, id_of(2));
    assert_true(e->in_flight);
    assert_string_equal(qsched_take(q, 1000, &next)->id, id_of(3));
    assert_string_equal(qsched_take(q, 1000, &next)->id, id_of(1));
    assert_null(qsched_take(q, 1000, &next));
    assert_int_equal(next, INT64_MAX);
    assert_int_equal(qsched_count(q), 3);
    qsched_free(q);
}

static void test_route_limit(void **state)
{
    (void)state;
    struct qsched *q = qsched_new();
    int64_t next;
    qsched_set_limit(q, "busy.example", 2);
    for (int i = 0; i < 5; i++)
        assert_true(qsched_add(q, id_of(i), "busy.example", i));
    assert_true(qsched_add(q, id_of(10), "other.example", 10));
    struct qsched_entry *a = qsched_take(q, 100, &next), *b = qsched_take(q, 100, &next);
    assert_string_equal(a->id, id_of(0));
    assert_string_equal(b->id, id_of(1));
    struct qsched_entry *c = qsched_take(q, 100, &next); /* busy is full: other goes */
    assert_string_equal(c->id, id_of(10));
    assert_null(qsched_take(q, 100, &next));
    assert_true(next > 100);  /* every due route busy: wake later (or at a put_back) */
    qsched_put_back(q, a, 0); /* done */
    struct qsched_entry *d = qsched_take(q, 100, &next);
    assert_string_equal(d->id, id_of(2));
    assert_int_equal(qsched_count(q), 5);
    qsched_put_back(q, b, 5000); /* deferred */
    qsched_put_back(q, c, 0);
    qsched_put_back(q, d, 0);
    assert_string_equal(qsched_take(q, 100, &next)->id, id_of(3));
    qsched_free(q);
}

static void test_flush_and_remove(void **state)
{
    (void)state;
    struct qsched *q = qsched_new();
    int64_t next;
    assert_true(qsched_add(q, id_of(1), "r", 10000));
    assert_true(qsched_add(q, id_of(2), "r", 20000));
    assert_null(qsched_take(q, 500, &next));
    qsched_flush_all(q, 500);
    struct qsched_entry *e = qsched_take(q, 500, &next);
    assert_non_null(e);
    /* removed while in flight: forgotten when put back, even if rescheduled */
    qsched_remove(q, e->id);
    assert_null(qsched_find(q, e->id));
    qsched_put_back(q, e, 99999);
    assert_int_equal(qsched_count(q), 1);
    /* flushed while in flight: due at once when put back */
    e = qsched_take(q, 500, &next);
    assert_string_equal(e->id, id_of(2));
    qsched_flush_all(q, 500);
    qsched_put_back(q, e, 99999);
    assert_non_null(qsched_take(q, 600, &next));
    /* adding a known id moves it earlier, never later */
    assert_true(qsched_add(q, id_of(7), "r", 5000));
    assert_true(qsched_add(q, id_of(7), "r", 9000));
    assert_int_equal(qsched_find(q, id_of(7))->due_ms, 5000);
    assert_true(qsched_add(q, id_of(7), "r", 1000));
    assert_int_equal(qsched_find(q, id_of(7))->due_ms, 1000);
    qsched_remove(q, id_of(7));
    assert_null(qsched_find(q, id_of(7)));
    qsched_free(q);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_many_against_reference(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct qsched *q = qsched_new();
    static int64_t due[N];
    int64_t next;
    srand(7);
    for (int i = 0; i < N; i++) {
        due[i] = rand() % 100000;
        assert_true(qsched_add(q, id_of(i), i % 3 ? "a" : "b", due[i]));
    }
    for (int i = 0; i < N; i += 5) /* remove every fifth */
        qsched_remove(q, id_of(i));
    int64_t want[N];
    size_t n = 0;
    for (int i = 0; i < N; i++)
        if (i % 5 != 0)
            want[n++] = due[i];
    qsort(want, n, sizeof *want, cmp64);
    qsched_set_limit(q, "a", 1000000);
    qsched_set_limit(q, "b", 1000000);
    for (size_t k = 0; k < n; k++) {
        struct qsched_entry *e = qsched_take(q, 200000, &next);
        assert_non_null(e);
        assert_int_equal(e->due_ms, want[k]);
    }
    assert_null(qsched_take(q, 200000, &next));
    qsched_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_order),
        cmocka_unit_test(test_route_limit),
        cmocka_unit_test(test_flush_and_remove),
        cmocka_unit_test(test_many_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
