/* jobs.c: the worker pool behind jobs.h: a mutex-protected FIFO and N threads. */
#include "jobs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "logger.h"
#include "loop.h"

struct job_item {
    struct loop *origin;
    job_work_fn work;
    job_done_fn done;
    void *job;
    struct job_item *next;
};

struct jobs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_item *head, *tail;
    size_t pending;
    bool stopping;
    unsigned n_threads;
    pthread_t *threads;
    jobs_init_fn init;
    jobs_fini_fn fini;
    void *arg;
};

static void *jobs_worker(void *arg)
{
    struct jobs *j = arg;
    void *ctx = j->init ? j->init(j->arg) : NULL;
    (void)pthread_setname_np(pthread_self(), "submitd-job");
    for (;;) {
        pthread_mutex_lock(&j->mu);
        while (!j->head && !j->stopping)
            pthread_cond_wait(&j->cv, &j->mu);
        struct job_item *it = j->head;
        if (!it) {
            pthread_mutex_unlock(&j->mu);
            break;
        }
        j->head = it->next;
        if (!j->head)
            j->tail = NULL;
        pthread_mutex_unlock(&j->mu);
        it->work(it->job, ctx);
        pthread_mutex_lock(&j->mu);
        j->pending--;
        pthread_mutex_unlock(&j->mu);
        loop_post(it->origin, it->done, it->job);
        free(it);
    }
    if (j->fini)
        j->fini(ctx);
    return NULL;
}

struct jobs *jobs_new(unsigned threads, jobs_init_fn init, jobs_fini_fn fini, void *arg)
{
    struct jobs *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->threads = calloc(threads, sizeof *j->threads);
    if (!j->threads) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->init = init;
    j->fini = fini;
    j->arg = arg;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&j->threads[i], NULL, jobs_worker, j) != 0)
            break;
        j->n_threads++;
    }
    if (j->n_threads == 0) {
        free(j->threads);
        free(j);
        return NULL;
    }
    return j;
}

void jobs_submit(struct jobs *j, struct loop *origin, job_work_fn work, job_done_fn done, void *job)
{
    struct job_item *it = malloc(sizeof *it);
    if (!it) {
        log_error("event=abort reason=\"out of memory queueing a job\"");
        abort();
    }
    *it = (struct job_item){origin, work, done, job, NULL};
    pthread_mutex_lock(&j->mu);
    if (j->tail)
        j->tail->next = it;
    else
        j->head = it;
    j->tail = it;
    j->pending++;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

size_t jobs_pending(struct jobs *j)
{
    pthread_mutex_lock(&j->mu);
    size_t n = j->pending;
    pthread_mutex_unlock(&j->mu);
    return n;
}

void jobs_free(struct jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    for (unsigned i = 0; i < j->n_threads; i++)
        pthread_join(j->threads[i], NULL);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j->threads);
    free(j);
}
