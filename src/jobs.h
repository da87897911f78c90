/* jobs.h: a pool of worker threads for work that must not run on an event loop (password
 * hashing, directory and log queries). Each worker owns a context made by `init` (e.g. its own
 * database connections); `done` runs back on the loop that submitted the job. */
#ifndef SUBMITD_JOBS_H
#define SUBMITD_JOBS_H

#include <stddef.h>

struct loop;
struct jobs;

typedef void *(*jobs_init_fn)(void *arg); /* per worker; NULL result is allowed */
typedef void (*jobs_fini_fn)(void *ctx);
typedef void (*job_work_fn)(void *job, void *ctx);
typedef void (*job_done_fn)(void *job);

struct jobs *jobs_new(unsigned threads, jobs_init_fn init, jobs_fini_fn fini, void *arg);
/* Queues work(job, ctx) on a worker, then done(job) on `origin`. */
void jobs_submit(struct jobs *j, struct loop *origin, job_work_fn work, job_done_fn done,
                 void *job);
/* Number of jobs queued or running (for logs and benchmarks). */
size_t jobs_pending(struct jobs *j);
/* Finishes the queued jobs, then stops and joins the workers. */
void jobs_free(struct jobs *j);

#endif
