/* smtp_client.h: the client side of one SMTP (RFC 5321) or LMTP (RFC 2033) transaction as a pure
 * state machine: the transport feeds it each complete reply and does what it answers (send these
 * lines, start TLS, send the message, quit). No I/O, no clock: relay.c is its blocking
 * transport; the troubleshooter can drive it too. Extensions: STARTTLS (RFC 3207), AUTH PLAIN /
 * LOGIN / XOAUTH2 (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531), DSN (RFC 3461). Verdicts go into a struct delivery_result, per recipient.
 *
 * Policy (docs/delivery.md): a refused AUTH is a temporary failure (4.7.0) unless
 * auth_failure_permanent says otherwise, because an upstream credential problem must not bounce
 * mail at once; failures of TLS, timeouts and lost connections are temporary; a verdict we make
 * without a reply (SIZE, SMTPUTF8, 8BITMIME, TLS not offered) has code 0 and our enhanced code. */
#ifndef SUBMITD_SMTP_CLIENT_H
#define SUBMITD_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery.h"
#include "relay.h"
#include "smtp_reply.h"
#include "spool.h"

struct smtp_client_config {
    bool lmtp;                   /* LHLO, one reply per accepted recipient after the dot */
    enum relay_tls tls;          /* IMPLICIT: the first action is SMTPC_STARTTLS */
    enum relay_auth auth;        /* NONE, PLAIN, LOGIN, XOAUTH2 */
    const char *user;            /* authentication identity ("" with NONE) */
    const char *secret;          /* password or access token; the caller keeps it alive */
    const char *helo;            /* our name in EHLO / LHLO / HELO */
    bool auth_failure_permanent; /* a 5xx to AUTH bounces (default false: 4.7.0, retried) */
};

enum smtp_client_do {
    SMTPC_SEND,     /* write out[0..out_len) (whole CRLF lines), then read a reply */
    SMTPC_READ,     /* read the next reply (the lines were sent already: PIPELINING) */
    SMTPC_STARTTLS, /* TLS handshake now, then call smtp_client_tls_done */
    SMTPC_DATA,     /* the message through smtp_client_stuff / _stuff_end, then read a reply */
    SMTPC_QUIT,     /* write out ("QUIT"), optionally read its reply, close: all verdicts made */
    SMTPC_CLOSE     /* close at once (after 421, or a failure of the transport or of TLS) */
};

enum smtp_client_wait { /* which RFC 5321 4.5.3.2 timeout the next reply gets */
                        SMTPC_WAIT_GREETING,
                        SMTPC_WAIT_COMMAND,
                        SMTPC_WAIT_DATA_INIT,
                        SMTPC_WAIT_DATA_FINAL
};

struct smtp_client_action {
    enum smtp_client_do what;
    const char *out; /* SEND, QUIT: the octets to write; valid until the next call */
    size_t out_len;
    const char *shown;          /* out with AUTH payloads masked ("AUTH PLAIN ****"), for logs */
    enum smtp_client_wait wait; /* SEND, READ, DATA: the timeout of the reply that follows */
};

struct smtp_client;

/* A machine for one transaction of env to its recipients; every result in res (res->rcpts has
 * env->n_rcpts entries, res->n_rcpts set by the caller) starts as "4.4.1 not attempted",
 * stage "connect". cfg's strings are copied except secret. NULL when out of memory. */
struct smtp_client *smtp_client_new(const struct smtp_client_config *cfg,
                                    const struct spool_envelope *env, struct delivery_result *res);
/* Wipes every buffer that held an AUTH payload and frees. */
void smtp_client_free(struct smtp_client *c);

/* The connection is open: wait for the greeting (or do implicit TLS first). */
struct smtp_client_action smtp_client_start(struct smtp_client *c);
/* A complete reply to what was sent (or the greeting). */
struct smtp_client_action smtp_client_reply(struct smtp_client *c, const struct smtp_reply *r);
/* The outcome of the TLS handshake (and of certificate verification): on failure enhanced is
 * ours ("4.7.5" verification, "4.7.0" handshake) and why says what went wrong. */
struct smtp_client_action smtp_client_tls_done(struct smtp_client *c, bool ok, const char *enhanced,
                                               const char *why);
/* The transport failed (connect, timeout, connection lost, malformed reply): every recipient
 * without a verdict yet gets TEMP with enhanced and why, at the current stage. */
void smtp_client_abort(struct smtp_client *c, const char *enhanced, const char *why);

/* "connect", "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "dot", "quit". */
const char *smtp_client_stage(const struct smtp_client *c);
/* Whether TLS is up (the transport reported a handshake that succeeded). */
bool smtp_client_tls_active(const struct smtp_client *c);
/* Whether the peer offered PIPELINING in its last EHLO (for tests and logs). */
bool smtp_client_pipelining(const struct smtp_client *c);

/* Dot-stuffing and line ends for the message (RFC 5321 4.5.2, 2.3.8): a '.' that starts a line
 * is doubled, a bare LF or CR becomes CRLF. Chunk by chunk: out must hold 2 * n + 2 octets.
 * Returns how many octets were written. */
struct smtp_stuffer {
    bool at_line_start;
    bool pending_cr;
};
void smtp_stuff_init(struct smtp_stuffer *s);
size_t smtp_client_stuff(struct smtp_stuffer *s, const char *in, size_t n, char *out);
/* Ends the data: CRLF when the message did not end with one, then ".CRLF". out: 8 octets. */
size_t smtp_client_stuff_end(struct smtp_stuffer *s, char *out);

#endif
