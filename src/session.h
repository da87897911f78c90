/* session.h: one SMTP session (RFC 5321, RFC 6409): the state of the connection kept apart from
 * the state of the mail transaction. session.c owns the connection, line framing, the command
 * table and the simple commands; session_auth.c owns AUTH (RFC 4954), session_mail.c MAIL and
 * RCPT, session_data.c DATA and BDAT (RFC 3030) and the hand-off to the spool. */
#ifndef SUBMITD_SESSION_H
#define SUBMITD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "data_decoder.h"
#include "directory.h"
#include "header_scan.h"
#include "netmask.h"
#include "protocol_limits.h"
#include "reply.h"
#include "smtp_parse.h"

struct bufferevent;
struct loop;
struct server;
struct runtime;
struct listener;
struct sasl_exchange;
struct spool_file;

enum session_state {
    SESSION_COMMAND = 0, /* reading command lines */
    SESSION_SASL,        /* reading a SASL response line */
    SESSION_DATA,        /* reading DATA content */
    SESSION_BDAT,        /* reading a BDAT chunk */
    SESSION_WAIT,        /* a job (AUTH, send-as check, spool commit) is in flight */
    SESSION_CLOSING      /* last reply queued; closing once written */
};

/* The mail transaction: from MAIL to the end of DATA/BDAT LAST, or RSET. */
struct smtp_tx {
    struct smtp_mail_args mail; /* with RET and ENVID (RFC 3461 4.3, 4.4) */
    char **rcpts;
    /* parallel to rcpts (RFC 3461 4.1, 4.2): NOTIFY bits (0 = not given) and ORCPT
     * ("addr-type;address", NULL = not given) */
    unsigned *notify;
    char **orcpt;
    size_t n_rcpts, cap_rcpts;
    char ref[REF_ID_LEN + 1]; /* reference of the submission, made when the message is opened */
    struct spool_file *file;
    struct data_decoder dec;
    struct header_scan hs;
    uint64_t size; /* message octets received (without what we add) */
    bool too_big;
    bool in_data;     /* DATA or BDAT begun: the spool file is open */
    bool bdat;        /* the message is being sent with BDAT */
    bool bdat_failed; /* a BDAT failed: later chunks are read and refused */
    /* line checks for BDAT content (DATA has them in the decoder) */
    bool bdat_prev_cr;
    size_t bdat_line_len;
    enum data_error bdat_error;
    char last2[2]; /* last two message octets written (CRLF at the end?) */
};

struct session {
    struct server *srv;
    struct loop *loop;
    struct runtime *rt;
    struct listener *listener;
    struct bufferevent *bev;
    int fd;
    char id[REF_ID_LEN + 1];
    struct sockaddr_storage peer;
    char peer_ip[64];
    char peer_literal[72]; /* RFC 5321 4.1.3 address literal: "[192.0.2.1]", "[IPv6:2001:db8::1]" */
    int peer_port;
    struct netaddr client;
    enum session_state state;
    bool tls;
    bool tls_bulk_reads; /* TLS input read in 16 KiB pieces (DATA, BDAT), else small ones */
    char tls_version[16];
    char tls_cipher[64];
    bool helo_seen;
    bool esmtp;
    char helo[SMTP_DOMAIN_MAX + 1];
    unsigned errors;
    bool skipping_line; /* discarding the rest of an over-long line */
    bool counted_ip;
    int pending;               /* jobs in flight that point at this session */
    bool dead;                 /* connection gone; free when pending reaches 0 */
    bool closing;              /* last reply queued: read nothing more */
    struct event *close_timer; /* re-checks that the last reply left (TLS filter layers) */
    struct event *idle_timer;  /* RFC 5321 4.5.3.2: no input and no output progress */
    bool output_blocked;       /* reading paused until the client reads our replies */
    unsigned loop_idx;
    struct session *prev, *next; /* the loop's session list (touched only on that loop) */
    /* authentication */
    bool authenticated;
    char auth_user[SMTP_PATH_MAX + 1];
    int64_t mailbox_id;
    char tenant[SMTP_DOMAIN_MAX + 1];
    struct sasl_exchange *sasl;
    char last_auth_error[320]; /* "535 5.7.139 Authentication unsuccessful, ..." */
    char last_auth_ref[REF_ID_LEN + 1];
    struct dir_limits limits; /* the authenticated mailbox's effective limits */
    bool submitting;          /* counted in the mailbox's concurrent sessions (quota) */
    /* OAUTHBEARER failure (RFC 7628 3.2.2): the JSON challenge was sent; the client's dummy
     * response is answered with this reply and reference. */
    bool oauth_failure_pending;
    enum reply_id oauth_failure_reply;
    char oauth_failure_ref[REF_ID_LEN + 1];
    /* BDAT chunk being read (its data must be consumed even when the command failed) */
    uint64_t chunk_remaining;
    bool chunk_last;
    enum reply_id chunk_refusal; /* REPLY_COUNT = the chunk goes into the message */
    /* transaction */
    struct smtp_tx *tx;
};

/* Takes over an accepted socket, on loop loop_idx's thread; the caller has counted it in
 * srv->loop_load[loop_idx], which the session gives back when it is freed. */
void session_accept(struct server *srv, unsigned loop_idx, struct listener *l, int fd,
                    const struct sockaddr *sa, int salen);
/* On SIGTERM (called on each loop): idle sessions get 421 and close; a session inside a
 * transaction finishes it first. With force, every session is dropped now. */
void session_shutdown_loop(struct server *srv, unsigned loop_idx, bool force);

/* The one reply path. Builds "code enhanced text[ extra][ reference]" from the catalogue.
 * With ref != NULL the reply carries a reference (ref is filled with a new id when it is "")
 * and is counted as a failure in the operational log. 5xx replies count toward the error limit. */
void session_reply(struct session *s, enum reply_id id, const char *extra, char *ref);
/* A reply with free text (EHLO lines, 334 challenges, 250 with a queue id). */
void session_reply_text(struct session *s, int code, const char *enhanced, const char *text,
                        bool more);
/* The reference suffix "[host time id]" for id. */
void session_reference(struct session *s, const char *id, char *buf, size_t cap);

/* Jobs: a session waiting for a job processes no input; session_resume continues. */
void session_suspend(struct session *s);
/* Called by a job's completion on the loop: returns false when the session died meanwhile
 * (and has now been freed if nothing else is pending): the caller must not touch it then. */
bool session_job_done(struct session *s);
void session_resume(struct session *s);
void session_close(struct session *s, enum reply_id final); /* REPLY_COUNT = no reply */

void session_tx_reset(struct session *s);
/* Restarts the idle timer with the timeout of the current state (command or data). */
void session_touch(struct session *s);
int64_t session_now_ms(void);

/* Commands implemented outside session.c. */
void cmd_auth(struct session *s, const struct smtp_command *c);
void auth_sasl_line(struct session *s, const char *line, size_t len);
void cmd_mail(struct session *s, const struct smtp_command *c);
void cmd_rcpt(struct session *s, const struct smtp_command *c);
void cmd_data(struct session *s, const struct smtp_command *c);
void cmd_bdat(struct session *s, const struct smtp_command *c);
/* Feeds buffered input to the DATA decoder or the BDAT chunk; returns when it needs more. */
void data_read(struct session *s);
void bdat_read(struct session *s);
/* Logs a submission event (MAIL/RCPT/DATA refusal or acceptance). */
void session_log_submission(struct session *s, const char *stage, bool accepted, int code,
                            const char *enhanced, const char *text, const char *ref,
                            const char *recipient, const char *queue_id);

#endif
