/* timed_wait.h: deadlines for pthread_cond_timedwait: a time plus milliseconds, the clock now
 * plus milliseconds, and a condition variable timed by the monotonic clock (so that a wall clock
 * stepped back stalls no wait). */
#ifndef SUBMITD_TIMED_WAIT_H
#define SUBMITD_TIMED_WAIT_H

#include <pthread.h>
#include <time.h>

/* t + ms (ms >= 0), normalized. */
struct timespec timed_wait_add_ms(struct timespec t, long ms);
/* The clock's time now + ms; the epoch when the clock cannot be read (then nobody waits). */
struct timespec timed_wait_deadline(clockid_t clock, long ms);
/* pthread_cond_init with CLOCK_MONOTONIC: 0 or an error number. */
int timed_wait_cond_init(pthread_cond_t *cv);

#endif
