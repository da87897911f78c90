/* quota.h: per-mailbox submission limits (SPEC 4), shared by every loop: concurrent sessions
 * submitting, messages a minute, recipients over any 24 hours. Kept in memory and rebuilt at
 * start from the submission log (eventlog_accepted_since), so they survive a restart. */
#ifndef SUBMITD_QUOTA_H
#define SUBMITD_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#define QUOTA_DAY_MS (24LL * 3600 * 1000)

struct quota;

struct quota *quota_new(void);
void quota_free(struct quota *q);
/* A session starts submitting for the mailbox (its first MAIL): false, and nothing counted, when
 * `max` sessions already are. */
bool quota_session_acquire(struct quota *q, const char *mailbox, unsigned max);
void quota_session_release(struct quota *q, const char *mailbox);
/* Seconds until one more message fits in `per_minute` a minute (0: now). */
unsigned quota_message_wait(struct quota *q, const char *mailbox, unsigned per_minute,
                            int64_t now_ms);
/* Recipients of the mailbox's messages accepted in the 24 hours before now_ms. */
unsigned quota_recipients_today(struct quota *q, const char *mailbox, int64_t now_ms);
/* Records an accepted message. */
void quota_record(struct quota *q, const char *mailbox, unsigned recipients, int64_t when_ms);

#endif
