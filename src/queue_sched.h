/* queue_sched.h: the queue runner's schedule, pure data (no threads, no I/O): every message
 * known to be waiting, by id, ordered by when it is due, with a limit of concurrent deliveries
 * per route (a tenant's smarthost, LMTP server or Maildir). The runner holds its lock around
 * every call. docs/delivery.md, "Queue runner". */
#ifndef SUBMITD_QUEUE_SCHED_H
#define SUBMITD_QUEUE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

struct qsched;

struct qsched_entry {
    char id[QUEUE_ID_LEN + 1];
    char route[SMTP_DOMAIN_MAX + 1]; /* the tenant whose route carries it */
    int64_t due_ms;
    bool in_flight;
    bool flush_after; /* flushed while in flight: due again at once when it comes back */
    bool forced;      /* flushed or released: try now even if its recipients are not due */
    size_t heap_index; /* private */
};

struct qsched *qsched_new(void);
void qsched_free(struct qsched *q);
size_t qsched_count(const struct qsched *q);

/* Adds id (or moves it earlier when known and not in flight). Returns false without memory. */
bool qsched_add(struct qsched *q, const char *id, const char *route, int64_t due_ms);
struct qsched_entry *qsched_find(struct qsched *q, const char *id);
/* Forgets id (held, deleted, finished). An entry in flight is forgotten when it is put back. */
void qsched_remove(struct qsched *q, const char *id);
/* Makes every entry not in flight due at now_ms (flush), and those in flight due at once after
 * their attempt. */
void qsched_flush_all(struct qsched *q, int64_t now_ms);

/* The limit of concurrent deliveries for a route (default 10), set before or between takes. */
void qsched_set_limit(struct qsched *q, const char *route, unsigned limit);
/* Takes the earliest due entry (due_ms <= now_ms) whose route has a free slot: marks it in
 * flight and returns it, or NULL; *next_due_ms is then the earliest due time of an entry not
 * in flight (INT64_MAX when none), for the caller's wait. */
struct qsched_entry *qsched_take(struct qsched *q, int64_t now_ms, int64_t *next_due_ms);
/* Moves an entry in flight to another route (known once its envelope is read). */
void qsched_set_route(struct qsched *q, struct qsched_entry *e, const char *route);
/* Ends an attempt: due_ms > 0 reschedules the entry, 0 forgets it (done, held, deleted). */
void qsched_put_back(struct qsched *q, struct qsched_entry *e, int64_t due_ms);

#endif
