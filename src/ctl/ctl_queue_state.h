/* ctl_queue_state.h: the delivery state of a queued message as `submitctl queue list|show`
 * print it (queue_state.h: per recipient status, attempts, last reply, next attempt; held). */
#ifndef SUBMITD_CTL_QUEUE_STATE_H
#define SUBMITD_CTL_QUEUE_STATE_H

#include <stddef.h>

#include <jansson.h>

#include "spool.h"

/* Adds "held" and "delivery" (one object per recipient) to j. */
void ctl_queue_state_json(struct spool *s, const struct spool_envelope *env, json_t *j);
/* The per-recipient lines of `queue show`. */
void ctl_queue_state_print(struct spool *s, const struct spool_envelope *env);
/* "held", or counts like "1 pending, 2 deferred" for `queue list`. */
const char *ctl_queue_state_summary(struct spool *s, const struct spool_envelope *env, char *buf,
                                    size_t cap);

#endif
