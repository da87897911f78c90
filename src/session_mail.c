/* session_mail.c: MAIL and RCPT (RFC 5321 4.1.1.2-3, RFC 6409 4 and 5): authentication and TLS
 * required before MAIL (530 5.7.57 with the session's last AUTH failure appended, SPEC 4), the
 * envelope sender checked against the mailbox and its aliases (550 5.7.60, SPEC 4), SIZE at MAIL
 * (RFC 1870), the recipient limit (452 4.5.3), the DSN parameters RET, ENVID, NOTIFY and ORCPT
 * (RFC 3461 4) kept on the transaction. Every refusal carries a reference id that finds it
 * in the submission log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "jobs.h"
#include "logger.h"
#include "logwriter.h"
#include "quota.h"
#include "server.h"
#include "session.h"

void session_log_submission(struct session *s, const char *stage, bool accepted, int code,
                            const char *enhanced, const char *text, const char *ref,
                            const char *recipient, const char *queue_id)
{
    struct submission_event e;
    memset(&e, 0, sizeof e);
    e.time_ms = session_now_ms();
    snprintf(e.ref, sizeof e.ref, "%s", ref ? ref : "");
    snprintf(e.session, sizeof e.session, "%s", s->id);
    snprintf(e.client_ip, sizeof e.client_ip, "%s", s->peer_ip);
    e.client_port = s->peer_port;
    snprintf(e.user, sizeof e.user, "%s", s->auth_user);
    snprintf(e.stage, sizeof e.stage, "%s", stage);
    e.accepted = accepted;
    e.reply_code = code;
    snprintf(e.reply_enhanced, sizeof e.reply_enhanced, "%s", enhanced ? enhanced : "");
    snprintf(e.reply_text, sizeof e.reply_text, "%s", text);
    if (s->tx) {
        snprintf(e.sender, sizeof e.sender, "%s", s->tx->mail.address);
        e.recipients = (int)s->tx->n_rcpts;
        e.size = (int64_t)s->tx->size;
    }
    if (recipient)
        log_sanitize(recipient, strlen(recipient), e.recipient, sizeof e.recipient);
    snprintf(e.queue_id, sizeof e.queue_id, "%s", queue_id ? queue_id : "");
    snprintf(e.last_auth_ref, sizeof e.last_auth_ref, "%s", s->last_auth_ref);
    logwriter_submission(s->srv->logw, &e);
}

/* Refuses a MAIL or RCPT: reply with a reference, log the event. */
static void mail_refuse(struct session *s, const char *stage, enum reply_id id, const char *extra,
                        const char *recipient)
{
    char ref[REF_ID_LEN + 1] = "";
    session_reply(s, id, extra, ref);
    const struct reply_entry *e = &reply_catalogue[id];
    char text[SMTP_REPLY_LINE_MAX];
    snprintf(text, sizeof text, "%s%s%s", e->text, extra ? " " : "", extra ? extra : "");
    session_log_submission(s, stage, false, e->code, e->enhanced, text, ref, recipient, NULL);
}

static enum reply_id param_reply(enum smtp_param_status st, bool sender)
{
    switch (st) {
    case SMTP_PARAM_BAD_ADDRESS:
        return sender ? REPLY_BAD_SENDER_SYNTAX : REPLY_BAD_RCPT_SYNTAX;
    case SMTP_PARAM_UNKNOWN:
        return REPLY_UNKNOWN_PARAMETER;
    case SMTP_PARAM_UTF8_UNDECLARED:
        return REPLY_UTF8_NOT_DECLARED;
    default:
        return REPLY_SYNTAX;
    }
}

static void mail_begin(struct session *s, const struct smtp_mail_args *args)
{
    s->tx = calloc(1, sizeof *s->tx);
    if (!s->tx) {
        mail_refuse(s, "mail", REPLY_LOCAL_ERROR, NULL, NULL);
        return;
    }
    atomic_fetch_add(&s->srv->in_transaction, 1);
    s->tx->mail = *args;
    session_reply(s, REPLY_SENDER_OK, NULL, NULL);
}

struct sendas_job {
    struct session *s;
    int64_t mailbox_id;
    struct smtp_mail_args args;
    enum dir_status status;
};

static void sendas_work(void *job, void *ctx)
{
    struct sendas_job *j = job;
    struct worker_ctx *w = ctx;
    j->status =
        w && w->dir ? dir_may_send_as(w->dir, j->mailbox_id, j->args.address) : DIR_TEMPFAIL;
}

static void sendas_done(void *job)
{
    struct sendas_job *j = job;
    struct session *s = j->s;
    if (session_job_done(s)) {
        s->state = SESSION_COMMAND;
        if (j->status == DIR_OK)
            mail_begin(s, &j->args);
        else if (j->status == DIR_NOTFOUND)
            mail_refuse(s, "mail", REPLY_SEND_AS_DENIED, NULL, j->args.address);
        else
            mail_refuse(s, "mail", REPLY_LOCAL_ERROR, NULL, j->args.address);
        session_resume(s);
    }
    free(j);
}

void cmd_mail(struct session *s, const struct smtp_command *c)
{
    if (s->tx) {
        mail_refuse(s, "mail", REPLY_NESTED_MAIL, NULL, NULL);
        return;
    }
    if (!s->authenticated) {
        char extra[sizeof s->last_auth_error + 16] = "";
        if (s->last_auth_error[0])
            snprintf(extra, sizeof extra, "Error: %s", s->last_auth_error);
        mail_refuse(s, "mail", REPLY_NOT_AUTHENTICATED, extra[0] ? extra : NULL, NULL);
        return;
    }
    struct smtp_mail_args args;
    enum smtp_param_status st = smtp_parse_mail(c->arg, c->arg_len, &args);
    if (st == SMTP_PARAM_OK && args.body == SMTP_BODY_BINARYMIME)
        st = SMTP_PARAM_UNKNOWN; /* BINARYMIME is not offered */
    if (st != SMTP_PARAM_OK) {
        mail_refuse(s, "mail", param_reply(st, true), NULL, NULL);
        return;
    }
    if (args.has_size && args.size > s->rt->cfg.max_message_size) {
        mail_refuse(s, "mail", REPLY_SIZE_EXCEEDED, NULL, args.address);
        return;
    }
    /* SPEC 4 limits: sessions submitting at once, then messages a minute. */
    if (!s->submitting) {
        if (!quota_session_acquire(s->srv->quota, s->auth_user, s->limits.sessions)) {
            mail_refuse(s, "mail", REPLY_SENDER_THREAD_LIMIT, NULL, args.address);
            return;
        }
        s->submitting = true;
    }
    unsigned wait = quota_message_wait(s->srv->quota, s->auth_user, s->limits.messages_per_minute,
                                       session_now_ms());
    if (wait > 0) {
        char extra[96];
        snprintf(extra, sizeof extra, "at most %u messages a minute; try again in %u seconds",
                 s->limits.messages_per_minute, wait);
        mail_refuse(s, "mail", REPLY_RATE_LIMITED, extra, args.address);
        return;
    }
    char normalized[SMTP_PATH_MAX + 1];
    /* The null sender (bounces, receipts) names no one, so there is no one to impersonate. */
    if (args.address[0] == '\0' ||
        (smtp_address_normalize(args.address, normalized, sizeof normalized) &&
         strcmp(normalized, s->auth_user) == 0)) {
        mail_begin(s, &args);
        return;
    }
    struct sendas_job *j = calloc(1, sizeof *j);
    if (!j) {
        mail_refuse(s, "mail", REPLY_LOCAL_ERROR, NULL, NULL);
        return;
    }
    j->s = s;
    j->mailbox_id = s->mailbox_id;
    j->args = args;
    session_suspend(s);
    jobs_submit(s->srv->jobs, s->loop, sendas_work, sendas_done, j);
}

/* Grows the recipient arrays (address, NOTIFY, ORCPT side by side) to hold one more. */
static bool rcpt_grow(struct smtp_tx *tx)
{
    if (tx->n_rcpts < tx->cap_rcpts)
        return true;
    size_t cap = tx->cap_rcpts ? tx->cap_rcpts * 2 : 8;
    char **r = realloc(tx->rcpts, cap * sizeof *r);
    if (!r)
        return false;
    tx->rcpts = r;
    unsigned *n = realloc(tx->notify, cap * sizeof *n);
    if (!n)
        return false;
    tx->notify = n;
    char **o = realloc(tx->orcpt, cap * sizeof *o);
    if (!o)
        return false;
    tx->orcpt = o;
    tx->cap_rcpts = cap;
    return true;
}

/* Appends a recipient with its DSN parameters (RFC 3461 4.1, 4.2). */
static bool rcpt_add(struct smtp_tx *tx, const struct smtp_rcpt_args *args)
{
    if (!rcpt_grow(tx))
        return false;
    char *addr = strdup(args->address);
    char *orcpt = args->orcpt[0] ? strdup(args->orcpt) : NULL;
    if (!addr || (args->orcpt[0] && !orcpt)) {
        free(addr);
        free(orcpt);
        return false;
    }
    tx->rcpts[tx->n_rcpts] = addr;
    tx->notify[tx->n_rcpts] = args->notify;
    tx->orcpt[tx->n_rcpts] = orcpt;
    tx->n_rcpts++;
    return true;
}

void cmd_rcpt(struct session *s, const struct smtp_command *c)
{
    struct smtp_tx *tx = s->tx;
    if (!tx) {
        mail_refuse(s, "rcpt", REPLY_MAIL_FIRST, NULL, NULL);
        return;
    }
    if (tx->in_data) {
        mail_refuse(s, "rcpt", REPLY_BAD_SEQUENCE, NULL, NULL);
        return;
    }
    struct smtp_rcpt_args args;
    enum smtp_param_status st = smtp_parse_rcpt(c->arg, c->arg_len, tx->mail.smtputf8, &args);
    if (st != SMTP_PARAM_OK) {
        mail_refuse(s, "rcpt", param_reply(st, false), NULL, NULL);
        return;
    }
    unsigned per_message = s->rt->cfg.max_recipients;
    if (s->limits.recipients_per_message && s->limits.recipients_per_message < per_message)
        per_message = s->limits.recipients_per_message;
    if (tx->n_rcpts >= per_message) {
        mail_refuse(s, "rcpt", REPLY_TOO_MANY_RECIPIENTS, NULL, args.address);
        return;
    }
    unsigned today = quota_recipients_today(s->srv->quota, s->auth_user, session_now_ms());
    if (today + tx->n_rcpts + 1 > s->limits.recipients_per_day) {
        char extra[64];
        snprintf(extra, sizeof extra, "(%u)", s->limits.recipients_per_day);
        mail_refuse(s, "rcpt", REPLY_QUOTA_EXCEEDED, extra, args.address);
        return;
    }
    if (!rcpt_add(tx, &args)) {
        mail_refuse(s, "rcpt", REPLY_LOCAL_ERROR, NULL, args.address);
        return;
    }
    session_reply(s, REPLY_RCPT_OK, NULL, NULL);
}
