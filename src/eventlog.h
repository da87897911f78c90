/* eventlog.h: the sign-in log (every AUTH attempt) and the submission log (every refused or
 * accepted MAIL/RCPT/DATA), in DIR/log.db (SQLite, WAL), searchable by reference id. Secrets
 * never reach it: no password, token or SASL payload is ever a field. One `struct eventlog` is
 * one connection, for one thread at a time. */
#ifndef SUBMITD_EVENTLOG_H
#define SUBMITD_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

#define EVENTLOG_FILE_NAME "log.db"

struct signin_event {
    int64_t time_ms;
    char ref[REF_ID_LEN + 1];
    char session[REF_ID_LEN + 1];
    char client_ip[64];
    int client_port;
    char listener[80];
    char tls[32];                 /* "TLSv1.3" or "none" */
    char mech[16];                /* "PLAIN", "LOGIN", ... */
    char user[SMTP_PATH_MAX + 1]; /* as given by the client (sanitized to printable) */
    char tenant[SMTP_DOMAIN_MAX + 1]; /* "" when the domain is no tenant's */
    bool success;
    char gate[24];                /* policy_gate_name() of the deciding gate, "none" */
    char level[16];               /* policy_level_name() */
    int reply_code;               /* what the client was told */
    char reply_enhanced[12];
    char reply_text[256];
    char reason[256];             /* the real reason when the reply was made generic */
    char detail[256];             /* e.g. "policy=block-basic", "rule=3", "credential=app-password" */
};

struct submission_event {
    int64_t time_ms;
    char ref[REF_ID_LEN + 1];
    char session[REF_ID_LEN + 1];
    char client_ip[64];
    int client_port;
    char user[SMTP_PATH_MAX + 1];   /* authenticated identity, "" when none */
    char stage[8];                  /* "mail", "rcpt", "data" */
    bool accepted;
    int reply_code;
    char reply_enhanced[12];
    char reply_text[512];
    char sender[SMTP_PATH_MAX + 1];
    char recipient[SMTP_PATH_MAX + 1]; /* rcpt stage */
    int recipients;                 /* data stage */
    int64_t size;                   /* data stage */
    char queue_id[QUEUE_ID_LEN + 1];
    char last_auth_ref[REF_ID_LEN + 1]; /* the session's last failed AUTH, for 530 5.7.57 */
};

/* One line of the delivery log: what happened to a recipient of a queued message (or to the
 * whole message: rcpt "" for held, released, deleted). */
struct delivery_event {
    int64_t time_ms;
    char queue_id[QUEUE_ID_LEN + 1];
    char ref[REF_ID_LEN + 1]; /* the reference of the submission that queued the message */
    char rcpt[SMTP_PATH_MAX + 1];
    char route[12];  /* relay, lmtp, maildir, none */
    char action[12]; /* delivered, relayed, deferred, bounced, expired, held, released, deleted,
                      * dsn (a notice was queued: dsn_queue_id) */
    int attempt;
    int reply_code;
    char reply_enhanced[16];
    char reply_text[512];
    char remote[300];
    char dsn_queue_id[QUEUE_ID_LEN + 1];
};

struct signin_filter {
    const char *mailbox; /* user as given, compared case-insensitively; NULL = any */
    const char *ref;     /* NULL = any */
    int64_t since_ms;    /* 0 = any */
    int limit;           /* 0 = 100; newest first */
};

struct eventlog;

struct eventlog *eventlog_open(const char *datadir, char *err, size_t errlen);
void eventlog_close(struct eventlog *l);
int eventlog_signin(struct eventlog *l, const struct signin_event *e);
int eventlog_submission(struct eventlog *l, const struct submission_event *e);
/* Writes several in one transaction (the server batches). */
int eventlog_write_batch(struct eventlog *l, const struct signin_event *const *s, size_t ns,
                         const struct submission_event *const *m, size_t nm);
/* Newest first. Returns the number of rows given to cb, or -1. */
int eventlog_query_signins(struct eventlog *l, const struct signin_filter *f,
                           void (*cb)(const struct signin_event *, void *), void *arg);
/* filter: mailbox matches user or sender; ref as above. */
int eventlog_query_submissions(struct eventlog *l, const struct signin_filter *f,
                               void (*cb)(const struct submission_event *, void *), void *arg);

int eventlog_delivery(struct eventlog *l, const struct delivery_event *e);
/* Writes several in one transaction (the log writer batches). 0 or -1. */
int eventlog_write_deliveries(struct eventlog *l, const struct delivery_event *const *d, size_t n);
/* Oldest first; key is a queue id or a submission reference (either matches). Returns the
 * number of rows given to cb, or -1. */
int eventlog_query_deliveries(struct eventlog *l, const char *key,
                              void (*cb)(const struct delivery_event *, void *), void *arg);

/* Why the last call on this connection failed (SQLite's message). */
const char *eventlog_error(struct eventlog *l);

/* Accepted messages (stage data) since since_ms, oldest first: the submission limits are rebuilt
 * from these at start, so counters survive a restart. Returns the number of rows, or -1. */
int eventlog_accepted_since(struct eventlog *l, int64_t since_ms,
                            void (*cb)(const char *user, int64_t time_ms, int recipients, void *),
                            void *arg);

#endif
