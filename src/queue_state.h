/* queue_state.h: the delivery state of each queued message, DIR/spool/state/ID: an append-only
 * file of JSON lines, one per recipient outcome (docs/spool.md, "Delivery state"). The queue
 * file itself is never rewritten. Reading takes each recipient's last line; a final status
 * (delivered, relayed, bounced) is never undone by a later line; a last line without its LF (a
 * crash mid-write) is ignored. An outcome is written only after it happened (after the peer's
 * reply or the Maildir fsync), so a crash can cause a repeated delivery (SMTP's at-least-once)
 * but never a lost one. */
#ifndef SUBMITD_QUEUE_STATE_H
#define SUBMITD_QUEUE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

struct spool;

enum qs_status {
    QS_PENDING = 0, /* not tried yet */
    QS_DEFERRED,    /* tried, temporary failure: next_ms says when again */
    QS_DELIVERED,   /* final: the next hop (DSN-capable, or final delivery) took it */
    QS_RELAYED,     /* final: taken by a peer without DSN */
    QS_BOUNCED      /* final: permanent failure or expired; dsn_id names the notice, if any */
};

struct qs_rcpt {
    enum qs_status status;
    unsigned attempts;
    int64_t last_ms; /* last attempt, 0 = none */
    int64_t next_ms; /* QS_DEFERRED: next attempt */
    int code;        /* last reply */
    char enhanced[16];
    char text[512];
    char remote[300];
    char stage[12];
    bool delay_notified; /* a "delayed" notice was sent */
    char dsn_id[QUEUE_ID_LEN + 1];
};

static inline bool qs_final(enum qs_status s)
{
    return s == QS_DELIVERED || s == QS_RELAYED || s == QS_BOUNCED;
}

/* Reads state/ID into r[0..n) (n = the envelope's recipient count); a missing file means every
 * recipient pending. Returns 0, or -1 with errno (a damaged line other than a torn last one is
 * EBADMSG; the caller then treats the recipients as pending and logs it). */
int qstate_load(struct spool *s, const char *queue_id, struct qs_rcpt *r, size_t n);
/* Appends the state of recipients idx[0..k) (r[idx[i]] each), one line each, in one write(2);
 * with sync, fdatasync's the file (before a message's removal may depend on it). Returns 0 or
 * -1 with errno. */
int qstate_append(struct spool *s, const char *queue_id, const struct qs_rcpt *r, const size_t *idx,
                  size_t k, bool sync);
/* A status as written in the file and shown by submitctl ("pending", "deferred", ...). */
const char *qs_status_name(enum qs_status s);

#endif
