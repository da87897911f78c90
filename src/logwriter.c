/* logwriter.c: the event-log writer thread: queued events (sign-ins, submissions, deliveries),
 * written in batches; what a failed write kept is retried every second. */
#include "logwriter.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "logger.h"
#include "timed_wait.h"

#define BATCH_MAX 256
/* A transaction at most every PACE_MS while events keep coming: an event that finds the writer
 * idle is written at once, those that come while it writes wait up to PACE_MS for the next one.
 * Each transaction costs its locks and writes every page it touched (the four indexes on
 * submissions: with 20 mailboxes sending, a 10-message transaction wrote 27 pages); a few big
 * ones cost far less per event than many small ones. A sign-in is never held back: smart
 * lockout counts failures from the written log. */
#define PACE_MS 50

enum item_kind { ITEM_SUBMISSION = 0, ITEM_SIGNIN, ITEM_DELIVERY };

struct item {
    enum item_kind kind;
    union {
        struct signin_event s;
        struct submission_event m;
        struct delivery_event d;
    } u;
    struct item *next;
};

struct logwriter {
    struct eventlog *log;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;
    size_t queued;  /* events held (queued or kept for a retry) */
    size_t waiting; /* events in head..tail */
    bool urgent;    /* a sign-in is among them: no pacing */
    long pace_ms;   /* PACE_MS unless logwriter_set_pace */
    uint64_t transactions;
    bool stopping;
    unsigned stopping_tries;
};

/* Events held in memory at most while the log cannot be written (about 1 KiB each). */
#define QUEUED_MAX 200000

/* Frees the items of list before end (all of them, or all but the deliveries), counting them off
 * w->queued. Returns the new head: the deliveries kept, then end and what follows. */
static struct item *free_items(struct logwriter *w, struct item *list, const struct item *end,
                               bool deliveries_too)
{
    struct item *head = NULL, **tail = &head;
    size_t freed = 0;
    while (list != end) {
        struct item *next = list->next;
        if (deliveries_too || list->kind != ITEM_DELIVERY) {
            free(list);
            freed++;
        } else {
            *tail = list;
            tail = &list->next;
        }
        list = next;
    }
    *tail = list;
    pthread_mutex_lock(&w->mu);
    w->queued -= freed;
    pthread_mutex_unlock(&w->mu);
    return head;
}

/* Writes the list in transactions of up to BATCH_MAX events: per chunk, the sign-ins and
 * submissions in one, then the deliveries in another. Returns what could not be written (the
 * failed transaction's events and every later one; never one already written), for a retry: a
 * reference id a client was given must find its event once the disk has room again. */
static struct item *write_batch(struct logwriter *w, struct item *list)
{
    while (list) {
        const struct signin_event *s[BATCH_MAX];
        const struct submission_event *m[BATCH_MAX];
        const struct delivery_event *d[BATCH_MAX];
        size_t ns = 0, nm = 0, nd = 0;
        struct item *it = list;
        while (it && ns < BATCH_MAX && nm < BATCH_MAX && nd < BATCH_MAX) {
            if (it->kind == ITEM_SIGNIN)
                s[ns++] = &it->u.s;
            else if (it->kind == ITEM_SUBMISSION)
                m[nm++] = &it->u.m;
            else
                d[nd++] = &it->u.d;
            it = it->next;
        }
        if ((ns > 0 || nm > 0) && eventlog_write_batch(w->log, s, ns, m, nm) != 0) {
            log_error("event=eventlog-write-failed signins=%zu submissions=%zu reason=\"%s\" "
                      "action=\"kept, retrying\"",
                      ns, nm, eventlog_error(w->log));
            return list;
        }
        if (nd > 0 && eventlog_write_deliveries(w->log, d, nd) != 0) {
            log_error("event=eventlog-write-failed deliveries=%zu reason=\"%s\" "
                      "action=\"kept, retrying\"",
                      nd, eventlog_error(w->log));
            return free_items(w, list, it, false); /* keep only what was not written */
        }
        list = free_items(w, list, it, true);
    }
    return NULL;
}

static bool reached(const struct timespec *until)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > until->tv_sec ||
           (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec);
}

static void *logwriter_main(void *arg)
{
    struct logwriter *w = arg;
    struct item *retry = NULL;     /* events a failed write kept, oldest first */
    struct timespec last = {0, 0}; /* when the last transaction started (CLOCK_MONOTONIC) */
    (void)pthread_setname_np(pthread_self(), "submitd-log");
    for (;;) {
        pthread_mutex_lock(&w->mu);
        if (retry) {
            /* wait a second (or for the stop) before trying the disk again */
            struct timespec until = timed_wait_add_ms(last, 1000);
            while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
                ;
        } else {
            while (!w->head && !w->stopping)
                pthread_cond_wait(&w->cv, &w->mu);
            /* more events may join this transaction until PACE_MS after the last one began */
            struct timespec until = timed_wait_add_ms(last, w->pace_ms);
            while (!w->stopping && !w->urgent && w->waiting < BATCH_MAX && !reached(&until) &&
                   pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
                ;
        }
        clock_gettime(CLOCK_MONOTONIC, &last);
        struct item *list = w->head;
        w->head = w->tail = NULL;
        w->waiting = 0;
        w->urgent = false;
        if (list != NULL || retry != NULL)
            w->transactions++;
        bool stop = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (retry) { /* keep the order: what failed before goes first */
            struct item *t = retry;
            while (t->next)
                t = t->next;
            t->next = list;
            list = retry;
        }
        retry = write_batch(w, list);
        if (stop && (!retry || w->stopping_tries++ >= 3)) {
            size_t lost = 0;
            while (retry) {
                struct item *next = retry->next;
                free(retry);
                retry = next;
                lost++;
            }
            if (lost)
                log_error("event=eventlog-lost events=%zu reason=\"could not write at stop\"",
                          lost);
            pthread_mutex_lock(&w->mu);
            bool more = w->head != NULL;
            pthread_mutex_unlock(&w->mu);
            if (!more)
                break;
        }
    }
    return NULL;
}

struct logwriter *logwriter_start(const char *datadir, char *err, size_t errlen)
{
    struct logwriter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->log = eventlog_open(datadir, err, errlen);
    if (!w->log) {
        free(w);
        return NULL;
    }
    w->pace_ms = PACE_MS;
    pthread_mutex_init(&w->mu, NULL);
    /* its waits are timed by the monotonic clock: a wall clock stepped back stalls nothing */
    if (timed_wait_cond_init(&w->cv) != 0 ||
        pthread_create(&w->thread, NULL, logwriter_main, w) != 0) {
        eventlog_close(w->log);
        free(w);
        return NULL;
    }
    return w;
}

static void enqueue(struct logwriter *w, struct item *it)
{
    pthread_mutex_lock(&w->mu);
    if (w->queued >= QUEUED_MAX) {
        pthread_mutex_unlock(&w->mu);
        log_error("event=eventlog-dropped reason=\"%d events already wait for the log\"",
                  QUEUED_MAX);
        free(it);
        return;
    }
    w->queued++;
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    /* the writer waits for a first event, or paces itself until a batch is full or a sign-in
     * comes */
    bool wake =
        ++w->waiting == 1 || w->waiting == BATCH_MAX || (it->kind == ITEM_SIGNIN && !w->urgent);
    if (it->kind == ITEM_SIGNIN)
        w->urgent = true;
    if (wake)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void logwriter_signin(struct logwriter *w, const struct signin_event *e)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it) {
        log_error("event=eventlog-dropped kind=signin ref=%s reason=\"out of memory\"", e->ref);
        return;
    }
    it->kind = ITEM_SIGNIN;
    it->u.s = *e;
    enqueue(w, it);
}

void logwriter_submission(struct logwriter *w, const struct submission_event *e)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it) {
        log_error("event=eventlog-dropped kind=submission ref=%s reason=\"out of memory\"", e->ref);
        return;
    }
    it->kind = ITEM_SUBMISSION;
    it->u.m = *e;
    enqueue(w, it);
}

void logwriter_delivery(struct logwriter *w, const struct delivery_event *e)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it) {
        log_error("event=eventlog-dropped kind=delivery queue_id=%.*s reason=\"out of memory\"",
                  QUEUE_ID_LEN, e->queue_id);
        return;
    }
    it->kind = ITEM_DELIVERY;
    it->u.d = *e;
    enqueue(w, it);
}

void logwriter_set_pace(struct logwriter *w, long ms)
{
    pthread_mutex_lock(&w->mu);
    w->pace_ms = ms;
    pthread_mutex_unlock(&w->mu);
}

uint64_t logwriter_writes(struct logwriter *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->transactions;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void logwriter_stop(struct logwriter *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    eventlog_close(w->log);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
