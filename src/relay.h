/* relay.h: delivers one queued message to one next hop over SMTP (RFC 5321, a smarthost) or
 * LMTP (RFC 2033, a mailbox server), with STARTTLS (RFC 3207) or implicit TLS (RFC 8314), AUTH
 * PLAIN/LOGIN/XOAUTH2 (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870), DSN (RFC 3461),
 * 8BITMIME and SMTPUTF8 when the peer offers them; dot-stuffing and CRLF on the way out. The
 * protocol is smtp_client.c's state machine; this file is its blocking transport (resolve,
 * connect to each address in turn, timeouts of RFC 5321 4.5.3.2) for a delivery thread. */
#ifndef SUBMITD_RELAY_H
#define SUBMITD_RELAY_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "delivery.h"
#include "protocol_limits.h"
#include "spool.h"

enum relay_tls {
    RELAY_TLS_REQUIRED = 0,  /* STARTTLS or nothing (a temporary failure without it) */
    RELAY_TLS_OPPORTUNISTIC, /* STARTTLS when offered; verification still as `verify` says */
    RELAY_TLS_NONE,          /* never (LMTP on a trusted network) */
    RELAY_TLS_IMPLICIT       /* TLS from the first byte (port 465) */
};

enum relay_auth { RELAY_AUTH_NONE = 0, RELAY_AUTH_PLAIN, RELAY_AUTH_LOGIN, RELAY_AUTH_XOAUTH2 };

struct relay_timeouts { /* milliseconds; 0 = RFC 5321 4.5.3.2's value */
    int connect;        /* 30 s */
    int greeting;       /* 5 min */
    int command;        /* MAIL, RCPT, EHLO, AUTH...: 5 min */
    int data_init;      /* DATA's 354: 2 min */
    int data_block;     /* each write of message data: 3 min */
    int data_final;     /* the reply after the final dot: 10 min */
};

struct relay_target {
    bool lmtp;
    char host[256]; /* name or address literal */
    char port[8];
    enum relay_tls tls;
    bool verify;           /* the certificate must chain to cafile (or the system store) and
                            * name the host; default on */
    char cafile[PATH_MAX]; /* "" = the system store */
    enum relay_auth auth;
    char user[SMTP_PATH_MAX + 1];
    const char *secret; /* password, or the OAuth access token for XOAUTH2; the caller owns and
                         * wipes it; never logged */
    char helo[256];     /* our name in EHLO/LHLO */
    struct relay_timeouts timeouts;
    const atomic_bool *cancel; /* true: give up at once (the server is stopping); may be NULL */
};

/* Delivers the message of env (msg positioned at its first octet; env->size octets follow) to
 * target. Fills res->rcpts (n_rcpts = env->n_rcpts, the caller's array) with a verdict for every
 * recipient; res->remote with the peer. Never blocks longer than the timeouts. */
void relay_deliver(const struct relay_target *target, const struct spool_envelope *env, FILE *msg,
                   struct delivery_result *res);

#endif
