/* delivery.h: what a delivery attempt tells the queue runner, per recipient, whatever carried it
 * (relay.c over SMTP or LMTP, maildir.c). Shared by the transports and queue_runner.c;
 * docs/delivery.md. */
#ifndef SUBMITD_DELIVERY_H
#define SUBMITD_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

enum delivery_outcome {
    DELIVERY_OK = 0, /* the next hop (or the Maildir) took responsibility */
    DELIVERY_TEMP,   /* try again later (4xx, connection or TLS trouble, timeouts, disk) */
    DELIVERY_PERM    /* give up and bounce (5xx, invalid recipient, policy) */
};

struct delivery_rcpt_result {
    enum delivery_outcome outcome;
    int code;          /* the reply that decided; 0 when none came (we say why in text) */
    char enhanced[16]; /* "5.1.1" from the reply, or ours ("4.4.1" no answer, ...) */
    char text[512];    /* the reply's text (lines joined by "; ") or our own reason */
    char stage[12];    /* connect, greeting, ehlo, starttls, auth, mail, rcpt, data, dot, maildir */
    bool dsn_passed;   /* OK by a peer that offered DSN: notifications are now its job */
};

struct delivery_result {
    char remote[300];   /* "host[address]:port" of the last peer spoken to; "" = none */
    bool auth_rejected; /* the peer refused our credentials (an OAuth token is then dropped) */
    struct delivery_rcpt_result *rcpts; /* the caller's array, one per envelope recipient */
    size_t n_rcpts;
};

/* Sets every recipient's result to the same verdict (a connection-level failure). */
void delivery_result_all(struct delivery_result *r, enum delivery_outcome outcome, int code,
                         const char *enhanced, const char *stage, const char *text);

#endif
