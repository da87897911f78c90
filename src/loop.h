/* loop.h: an event-loop thread (libevent event_base) and the one way other threads hand work
 * back to it: loop_post, which queues a callback and wakes the loop. */
#ifndef SUBMITD_LOOP_H
#define SUBMITD_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct event_base;

struct loop;

typedef void (*loop_fn)(void *arg);

/* Creates a loop (its event_base and wake-up event); the thread starts with loop_start. */
struct loop *loop_new(void);
struct event_base *loop_base(struct loop *l);
int loop_start(struct loop *l);
/* Runs fn(arg) on the loop's thread, soon. Thread-safe; never fails (allocation failure aborts:
 * a lost completion would leave a client hanging forever). */
void loop_post(struct loop *l, loop_fn fn, void *arg);
/* Of n loops with load[i] sessions each, the one a new session should go to: the least loaded,
 * `own` (the loop that accepted it) on a tie. */
unsigned loop_least_loaded(const atomic_uint *load, unsigned n, unsigned own);
/* Ends the loop once no events remain after `stop` is requested, and joins its thread. */
void loop_stop_and_join(struct loop *l);
void loop_free(struct loop *l);

#endif
