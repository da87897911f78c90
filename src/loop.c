/* loop.c: event-loop threads and cross-thread completion queues. */
#include "loop.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "logger.h"

struct posted {
    loop_fn fn;
    void *arg;
    struct posted *next;
};

struct loop {
    struct event_base *base;
    struct event *wake;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    struct posted *head, *tail;
};

static void loop_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct loop *l = arg;
    pthread_mutex_lock(&l->mu);
    struct posted *p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (p) {
        struct posted *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->base = event_base_new();
    if (!l->base) {
        free(l);
        return NULL;
    }
    /* A persistent event that is only ever activated by event_active: keeps the loop alive
     * while it waits for completions. */
    l->wake = event_new(l->base, -1, EV_PERSIST, loop_drain, l);
    if (!l->wake) {
        event_base_free(l->base);
        free(l);
        return NULL;
    }
    struct timeval forever = {86400 * 365, 0};
    event_add(l->wake, &forever);
    return l;
}

struct event_base *loop_base(struct loop *l)
{
    return l->base;
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    (void)pthread_setname_np(pthread_self(), "submitd-io");
    event_base_dispatch(l->base);
    return NULL;
}

int loop_start(struct loop *l)
{
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc != 0)
        return -1;
    l->started = true;
    return 0;
}

void loop_post(struct loop *l, loop_fn fn, void *arg)
{
    struct posted *p = malloc(sizeof *p);
    if (!p) {
        log_error("event=abort reason=\"out of memory posting a completion\"");
        abort();
    }
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&l->mu);
    bool first = l->head == NULL; /* else a wake-up is on its way and will take this too */
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    pthread_mutex_unlock(&l->mu);
    if (first)
        event_active(l->wake, EV_READ, 0);
}

static void loop_break(void *arg)
{
    struct loop *l = arg;
    event_base_loopbreak(l->base);
}

void loop_stop_and_join(struct loop *l)
{
    if (!l->started)
        return;
    loop_post(l, loop_break, l);
    pthread_join(l->thread, NULL);
    l->started = false;
    loop_drain(-1, 0, l);
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    event_free(l->wake);
    event_base_free(l->base);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

unsigned loop_least_loaded(const atomic_uint *load, unsigned n, unsigned own)
{
    unsigned best = own, least = atomic_load(&load[own]);
    for (unsigned i = 0; i < n; i++) {
        unsigned v = atomic_load(&load[i]);
        if (v < least) {
            least = v;
            best = i;
        }
    }
    return best;
}
