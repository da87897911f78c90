/* queue_runner.c: the queue runner's threads and schedule (queue_runner.h; docs/delivery.md).
 * Each delivery thread takes the earliest due message whose route has a free connection slot,
 * runs one attempt (queue_attempt.c) without the lock, and puts the message back with its next
 * due time. New messages come from the spool's ready callback; messages queued before a start
 * are scheduled from the queue directory. Requests from the control socket (flush, hold,
 * release, delete) act on the spool and the schedule. */
#include "queue_runner.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory.h"
#include "logger.h"
#include "oauth_client.h"
#include "queue_runner_int.h"
#include "spool.h"

/* A thread with nothing due looks again after at most this long. */
#define IDLE_WAIT_MS 60000

int64_t queue_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct queue_runner *queue_runner_new(const struct queue_runner_params *p)
{
    struct queue_runner *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->p = *p;
    snprintf(r->hostname, sizeof r->hostname, "%s", p->hostname);
    snprintf(r->datadir, sizeof r->datadir, "%s", p->datadir);
    r->p.hostname = r->hostname;
    r->p.datadir = r->datadir;
    r->sched = qsched_new();
    r->tokens = oauth_tokens_new();
    if (r->sched == NULL || r->tokens == NULL) {
        qsched_free(r->sched);
        oauth_tokens_free(r->tokens);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    return r;
}

void queue_runner_ready(const char *queue_id, void *arg)
{
    struct queue_runner *r = arg;
    pthread_mutex_lock(&r->lock);
    if (!qsched_add(r->sched, queue_id, "", queue_now_ms()))
        log_error("queue=%s event=schedule-failed reason=\"out of memory\" note=\"tried again "
                  "at the next start\"",
                  queue_id);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void abs_time(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
}

static void *delivery_thread(void *arg)
{
    struct queue_runner *r = arg;
    char err[256];
    struct directory *dir = directory_open(r->datadir, err, sizeof err);
    (void)pthread_setname_np(pthread_self(), "submitd-deliver");
    if (dir == NULL)
        log_error("event=delivery-thread-failed reason=\"%s\"", err);
    pthread_mutex_lock(&r->lock);
    while (!r->stopping && dir != NULL) {
        int64_t now = queue_now_ms(), next;
        struct qsched_entry *e = qsched_take(r->sched, now, &next);
        if (e == NULL) {
            struct timespec until;
            abs_time(next - now > IDLE_WAIT_MS ? now + IDLE_WAIT_MS : next, &until);
            pthread_cond_timedwait(&r->cond, &r->lock, &until);
            continue;
        }
        char id[QUEUE_ID_LEN + 1];
        bool forced = e->forced;
        memcpy(id, e->id, sizeof id);
        pthread_mutex_unlock(&r->lock);

        struct attempt_outcome out = {0};
        queue_attempt(r, dir, id, forced, &out);

        pthread_mutex_lock(&r->lock);
        if (out.route[0] != '\0') {
            qsched_set_route(r->sched, e, out.route);
            if (out.route_limit > 0)
                qsched_set_limit(r->sched, out.route, out.route_limit);
        }
        qsched_put_back(r->sched, e, out.due_ms);
        pthread_cond_broadcast(&r->cond); /* a route slot is free again */
    }
    pthread_mutex_unlock(&r->lock);
    if (dir != NULL)
        directory_close(dir);
    return NULL;
}

static void schedule_existing(const char *queue_id, void *arg)
{
    struct queue_runner *r = arg;
    /* Due now: the attempt reads the state and, when no recipient is due yet, only answers
     * when it is. */
    (void)qsched_add(r->sched, queue_id, "", queue_now_ms());
}

int queue_runner_start(struct queue_runner *r, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->lock);
    int n = spool_ids(r->p.spool, false, schedule_existing, r);
    pthread_mutex_unlock(&r->lock);
    if (n < 0) {
        snprintf(err, errlen, "queue runner: cannot list the queue: %s", strerror(errno));
        return -1;
    }
    if (n > 0)
        log_info("event=queue-loaded messages=%d", n);
    if (r->p.threads == 0)
        log_warn("event=delivery-paused reason=\"delivery-threads = 0: messages are queued and "
                 "kept, none is delivered\"");
    r->threads = calloc(r->p.threads ? r->p.threads : 1, sizeof *r->threads);
    if (r->threads == NULL) {
        snprintf(err, errlen, "queue runner: out of memory");
        return -1;
    }
    for (unsigned i = 0; i < r->p.threads; i++) {
        int rc = pthread_create(&r->threads[i], NULL, delivery_thread, r);
        if (rc != 0) {
            snprintf(err, errlen, "queue runner: cannot start a delivery thread: %s", strerror(rc));
            queue_runner_stop(r);
            return -1;
        }
        r->n_threads++;
    }
    r->started = true;
    return 0;
}

void queue_runner_stop(struct queue_runner *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    atomic_store(&r->cancel, true);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    r->n_threads = 0;
    free(r->threads);
    r->threads = NULL;
}

void queue_runner_free(struct queue_runner *r)
{
    if (r == NULL)
        return;
    queue_runner_stop(r);
    qsched_free(r->sched);
    oauth_tokens_free(r->tokens);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- control requests (the control socket's thread) ---- */

static void log_admin(struct queue_runner *r, const char *id, const char *action)
{
    struct spool_envelope env;
    long off;
    char ref[REF_ID_LEN + 1] = "";
    if (spool_load(r->p.spool, id, &env, &off) == 0) {
        snprintf(ref, sizeof ref, "%s", env.ref);
        spool_envelope_free(&env);
    }
    queue_log_event(r, id, ref, "", "", action, 0, 0, "", "by submitctl", "", "");
    log_info("queue=%s event=%s by=submitctl", id, action);
}

int queue_runner_control(enum control_cmd cmd, const char *queue_id, char *text, size_t cap,
                         void *arg)
{
    struct queue_runner *r = arg;
    int64_t now = queue_now_ms();
    switch (cmd) {
    case CONTROL_FLUSH:
        pthread_mutex_lock(&r->lock);
        if (queue_id[0] == '\0') {
            qsched_flush_all(r->sched, now);
            snprintf(text, cap, "flushing %zu messages", qsched_count(r->sched));
        } else if (spool_is_held(r->p.spool, queue_id)) {
            pthread_mutex_unlock(&r->lock);
            snprintf(text, cap, "%s is held (release it first)", queue_id);
            return -1;
        } else {
            struct qsched_entry *e = qsched_find(r->sched, queue_id);
            if (e == NULL) {
                pthread_mutex_unlock(&r->lock);
                snprintf(text, cap, "no message %s in the queue", queue_id);
                return -1;
            }
            (void)qsched_add(r->sched, queue_id, e->route, now);
            e->forced = true;
            snprintf(text, cap, "flushing %s", queue_id);
        }
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        return 0;
    case CONTROL_HOLD:
        if (spool_hold(r->p.spool, queue_id) != 0) {
            snprintf(text, cap, "cannot hold %s: %s", queue_id,
                     errno == ENOENT   ? "no such message in the queue"
                     : errno == EAGAIN ? "it was accepted a moment ago; try again"
                                       : strerror(errno));
            return -1;
        }
        pthread_mutex_lock(&r->lock);
        qsched_remove(r->sched, queue_id);
        pthread_mutex_unlock(&r->lock);
        log_admin(r, queue_id, "held");
        snprintf(text, cap, "held %s", queue_id);
        return 0;
    case CONTROL_RELEASE:
        if (spool_release(r->p.spool, queue_id) != 0) {
            snprintf(text, cap, "cannot release %s: %s", queue_id,
                     errno == ENOENT ? "no such held message" : strerror(errno));
            return -1;
        }
        pthread_mutex_lock(&r->lock);
        (void)qsched_add(r->sched, queue_id, "", now);
        struct qsched_entry *e = qsched_find(r->sched, queue_id);
        if (e != NULL)
            e->forced = true;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        log_admin(r, queue_id, "released");
        snprintf(text, cap, "released %s", queue_id);
        return 0;
    case CONTROL_DELETE: {
        const char *ids[1] = {queue_id};
        struct spool_envelope env;
        long off;
        char ref[REF_ID_LEN + 1] = "";
        bool known = spool_load(r->p.spool, queue_id, &env, &off) == 0;
        if (known) {
            snprintf(ref, sizeof ref, "%s", env.ref);
            spool_envelope_free(&env);
        }
        if (!known || spool_remove(r->p.spool, ids, 1) != 0) {
            snprintf(text, cap, "cannot delete %s: %s", queue_id,
                     !known || errno == ENOENT ? "no such message"
                     : errno == EAGAIN         ? "it was accepted a moment ago; try again"
                                               : strerror(errno));
            return -1;
        }
        pthread_mutex_lock(&r->lock);
        qsched_remove(r->sched, queue_id);
        pthread_mutex_unlock(&r->lock);
        queue_log_event(r, queue_id, ref, "", "", "deleted", 0, 0, "", "by submitctl", "", "");
        log_info("queue=%s event=deleted by=submitctl", queue_id);
        snprintf(text, cap, "deleted %s (no notice sent)", queue_id);
        return 0;
    }
    }
    snprintf(text, cap, "unknown request");
    return -1;
}
