/* queue_runner.h: delivery of the queue (issue 4; docs/delivery.md). Delivery threads take
 * messages as they fall due (queue_sched.h), deliver each message's pending recipients over its
 * tenant's route (relay.h over SMTP or LMTP, maildir.h), record every outcome (queue_state.h)
 * and the delivery log, retry temporary failures with exponential backoff and jitter up to the
 * queue lifetime, send delivery status notifications (dsn.h) and remove a message once every
 * recipient is final. Also what `submitctl queue flush|hold|release|delete` ask for through the
 * control socket (control.h). Never on an event loop. */
#ifndef SUBMITD_QUEUE_RUNNER_H
#define SUBMITD_QUEUE_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "control.h"

struct spool;
struct logwriter;
struct config;

struct queue_runner_params {
    const char *datadir;
    const char *hostname; /* Reporting-MTA, EHLO name, Maildir file names */
    struct spool *spool;
    struct logwriter *log;
    unsigned threads;          /* delivery threads */
    int64_t lifetime_ms;       /* queue-lifetime */
    int64_t retry_min_ms;      /* first retry */
    int64_t retry_max_ms;      /* longest wait between attempts */
    int64_t delay_warning_ms;  /* 0 = no "delayed" notices */
    size_t bounce_size_limit;  /* a notice returns the whole message up to this size */
};

struct queue_runner;

/* Makes the runner (no threads yet): call before spool_start, and give queue_runner_ready to
 * spool_set_ready. */
struct queue_runner *queue_runner_new(const struct queue_runner_params *p);
/* Schedules the messages already queued (their state says when) and starts the threads. */
int queue_runner_start(struct queue_runner *r, char *err, size_t errlen);
/* spool_ready_fn: a new message may be delivered now. */
void queue_runner_ready(const char *queue_id, void *arg);
/* control_fn for control_start. */
int queue_runner_control(enum control_cmd cmd, const char *queue_id, char *text, size_t cap,
                         void *arg);
/* Stops the threads; attempts under way are abandoned within a quarter second (deferred, tried
 * again after the restart). */
void queue_runner_stop(struct queue_runner *r);
/* After spool_close (which may still announce messages). */
void queue_runner_free(struct queue_runner *r);

#endif
