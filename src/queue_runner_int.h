/* queue_runner_int.h: what queue_runner.c (threads, schedule, control) and queue_attempt.c (one
 * delivery attempt of one message) share. */
#ifndef SUBMITD_QUEUE_RUNNER_INT_H
#define SUBMITD_QUEUE_RUNNER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue_runner.h"
#include "queue_sched.h"

struct directory;
struct oauth_tokens;

struct queue_runner {
    struct queue_runner_params p;
    char hostname[256];
    char datadir[4096];
    struct oauth_tokens *tokens;
    atomic_bool cancel;   /* stopping: attempts under way give up (relay.h) */
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* work may be due; stopping */
    struct qsched *sched;
    bool started, stopping;
    pthread_t *threads;
    unsigned n_threads;
};

/* What an attempt decided for the schedule. */
struct attempt_outcome {
    int64_t due_ms;       /* next attempt; 0 = forget the message (done, held, gone) */
    char route[256];      /* the tenant whose route carries it ("" when unknown) */
    unsigned route_limit; /* that route's max_connections (0 = unknown) */
};

int64_t queue_now_ms(void);
/* One attempt at message id (forced: flushed, so recipients not yet due are tried too).
 * Runs on a delivery thread with its own directory connection. */
void queue_attempt(struct queue_runner *r, struct directory *dir, const char *id, bool forced,
                   struct attempt_outcome *out);
/* Logs one delivery event (the delivery log in log.db). */
void queue_log_event(struct queue_runner *r, const char *id, const char *ref, const char *rcpt,
                     const char *route, const char *action, int attempt, int code,
                     const char *enhanced, const char *text, const char *remote,
                     const char *dsn_id);

#endif
