/* test_loop.c: event-loop threads: work posted from other threads runs on the loop, in the
 * order posted; and a new session goes to the least loaded loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include <event2/thread.h>

#include "loop.h"

#define POSTS 10000

struct tally {
    pthread_t thread; /* the loop's, seen from the first callback */
    bool wrong_thread;
    int next; /* the value the next callback must carry */
    bool out_of_order;
};

struct one {
    struct tally *t;
    int value;
};

static struct one posts[2][POSTS];

static void on_post(void *arg)
{
    struct one *o = arg;
    struct tally *t = o->t;
    if (t->next == 0)
        t->thread = pthread_self();
    else if (!pthread_equal(t->thread, pthread_self()))
        t->wrong_thread = true;
    if (o->value != t->next)
        t->out_of_order = true;
    t->next++;
}

struct poster {
    struct loop *loop;
    struct one *mine;
};

static void *post_all(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < POSTS; i++)
        loop_post(p->loop, on_post, &p->mine[i]);
    return NULL;
}

/* Two threads each post 10,000 callbacks to one loop (each with its own tally): every one runs,
 * on the loop's thread, never the poster's, in the order its poster posted them. */
static void test_posts_run_on_loop_in_order(void **state)
{
    (void)state;
    struct loop *l = loop_new();
    assert_non_null(l);
    assert_int_equal(loop_start(l), 0);
    struct tally tallies[2] = {{0}, {0}};
    struct poster posters[2];
    pthread_t threads[2];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < POSTS; i++)
            posts[k][i] = (struct one){&tallies[k], i};
        posters[k] = (struct poster){l, posts[k]};
        assert_int_equal(pthread_create(&threads[k], NULL, post_all, &posters[k]), 0);
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_join(threads[k], NULL), 0);
    loop_stop_and_join(l); /* runs what is still queued first */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tallies[k].next, POSTS);
        assert_false(tallies[k].out_of_order);
        assert_false(tallies[k].wrong_thread);
        assert_false(pthread_equal(tallies[k].thread, threads[k]));
    }
    assert_true(pthread_equal(tallies[0].thread, tallies[1].thread));
    loop_free(l);
}

/* The least loaded loop takes a new session; the accepting loop keeps it on a tie. */
static void test_least_loaded(void **state)
{
    (void)state;
    atomic_uint two[2] = {5, 5};
    assert_int_equal(loop_least_loaded(two, 2, 0), 0);
    assert_int_equal(loop_least_loaded(two, 2, 1), 1);
    atomic_store(&two[1], 4);
    assert_int_equal(loop_least_loaded(two, 2, 0), 1);
    assert_int_equal(loop_least_loaded(two, 2, 1), 1);
    atomic_uint three[3] = {3, 1, 1};
    assert_int_equal(loop_least_loaded(three, 3, 0), 1); /* the first of the least */
    assert_int_equal(loop_least_loaded(three, 3, 2), 2);
    atomic_uint one[1] = {100};
    assert_int_equal(loop_least_loaded(one, 1, 0), 0);
}

int main(void)
{
    if (evthread_use_pthreads() != 0) /* as the server does: another thread may wake a loop */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posts_run_on_loop_in_order),
        cmocka_unit_test(test_least_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
