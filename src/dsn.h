/* dsn.h: delivery status notifications (RFC 3464 in an RFC 6522 multipart/report; RFC 3461 for
 * when one is wanted; RFC 3834 Auto-Submitted; RFC 6533 message/global-delivery-status when the
 * original used SMTPUTF8). Pure composition: the queue runner commits the result to the spool
 * with the null sender. docs/delivery.md. */
#ifndef SUBMITD_DSN_H
#define SUBMITD_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spool.h"

enum dsn_action { DSN_FAILED = 0, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

/* Whether a recipient with these NOTIFY bits (0 = not given: FAILURE, and DELAY when
 * delay_default) gets a notice of this action; never for a null sender or a DSN itself. */
bool dsn_wanted(const struct spool_envelope *env, size_t index, enum dsn_action action,
                bool delay_default);

struct dsn_rcpt {
    size_t index; /* into env->rcpts (and notify/orcpt) */
    enum dsn_action action;
    const char *status;          /* RFC 3463 code, "5.1.1" */
    const char *remote_mta;      /* "smarthost.example" or "" */
    const char *diagnostic;      /* the peer's reply "550 5.1.1 No such user", or "" */
    int64_t last_attempt_ms;     /* 0 = none */
    int64_t will_retry_until_ms; /* DSN_DELAYED only */
};

struct dsn_report {
    const struct spool_envelope *env; /* the original message's envelope */
    const char *reporting_mta;        /* our host name */
    int64_t now_ms;
    const struct dsn_rcpt *rcpts;
    size_t n_rcpts;
    size_t full_limit; /* RET=FULL (or not given) returns the whole message only up to this
                        * many octets, else its header (default 50,000 as Postfix) */
};

/* Composes the notice: From: Mail Delivery System <MAILER-DAEMON@reporting_mta>, To: the
 * original sender, Subject by action, Date, Message-ID, Auto-Submitted: auto-replied,
 * MIME-Version, Content-Type: multipart/report; report-type=delivery-status; a text/plain
 * explanation, the message/delivery-status part, then message/rfc822 (RET=FULL or not given,
 * when within full_limit) or text/rfc822-headers. msg: the original, positioned at its first
 * octet (env->size octets). CRLF line ends, no line over 998 octets. Returns a malloc'd
 * message and its length, or NULL (errno) on failure. */
char *dsn_compose(const struct dsn_report *r, FILE *msg, size_t *len);

#endif
