/* timed_wait.c: deadlines and monotonic condition variables (timed_wait.h). */
#include "timed_wait.h"

struct timespec timed_wait_add_ms(struct timespec t, long ms)
{
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

struct timespec timed_wait_deadline(clockid_t clock, long ms)
{
    struct timespec now = {0, 0};
    if (clock_gettime(clock, &now) != 0)
        now = (struct timespec){0, 0};
    return timed_wait_add_ms(now, ms);
}

int timed_wait_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}
