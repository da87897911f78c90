/* session_data.c: DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030): the message is streamed into a
 * spool file as it arrives, with a Received: line first (RFC 5321 4.4, "with ESMTPSA" per
 * RFC 3848) and Message-ID: and Date: added at the end of the header section when missing
 * (RFC 6409 8.2, 8.3); bare CR, bare LF and over-long lines are refused at the end of the data
 * (SPEC 4); 250 is sent only once the spool's group commit has made the message durable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "address_list.h"
#include "directory.h"
#include "jobs.h"
#include "logger.h"
#include "quota.h"
#include "random_ids.h"
#include "loop.h"
#include "server.h"
#include "session.h"
#include "spool.h"

#define DATA_CHUNK 16384

struct commit_job {
    struct session *s;
    struct loop *loop;
    struct quota *quota;
    char user[SMTP_PATH_MAX + 1];
    unsigned recipients;
    char queue_id[QUEUE_ID_LEN + 1];
    char ref[REF_ID_LEN + 1]; /* the submission's reference (also in the envelope) */
    int err;
};

/* ---- writing the message ---- */

static void msg_put(struct smtp_tx *tx, const char *buf, size_t n)
{
    if (n == 0 || !tx->file)
        return;
    spool_write(tx->file, buf, n);
    if (n >= 2) {
        tx->last2[0] = buf[n - 2];
        tx->last2[1] = buf[n - 1];
    } else {
        tx->last2[0] = tx->last2[1];
        tx->last2[1] = buf[0];
    }
}

static void format_date(char *buf, size_t cap, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(buf, cap, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* RFC 6409 8.2 and 8.3: a submission server may add what the client left out. */
static void msg_add_missing_fields(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    char line[SMTP_DOMAIN_MAX + 128];
    if (!tx->hs.has_message_id) {
        unsigned char r[8];
        random_ids_buf(r, sizeof r);
        int n =
            snprintf(line, sizeof line, "Message-ID: <%s.%02x%02x%02x%02x%02x%02x%02x%02x@%s>\r\n",
                     spool_file_id(tx->file), r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                     s->rt->cfg.hostname);
        msg_put(tx, line, (size_t)n);
    }
    if (!tx->hs.has_date) {
        char date[64];
        format_date(date, sizeof date, time(NULL));
        int n = snprintf(line, sizeof line, "Date: %s\r\n", date);
        msg_put(tx, line, (size_t)n);
    }
}

/* Message octets as the client sent them (after dot-unstuffing). */
static void msg_write(struct session *s, const char *buf, size_t n)
{
    struct smtp_tx *tx = s->tx;
    tx->size += n;
    if (tx->size > s->rt->cfg.max_message_size)
        tx->too_big = true;
    if (tx->too_big || n == 0)
        return;
    if (!tx->hs.in_header) {
        msg_put(tx, buf, n);
        return;
    }
    size_t off = header_scan_feed(&tx->hs, buf, n);
    msg_put(tx, buf, off);
    if (!tx->hs.in_header) {
        bool adding = !tx->hs.has_message_id || !tx->hs.has_date;
        msg_add_missing_fields(s);
        if (adding && !tx->hs.blank_separator)
            msg_put(tx, "\r\n", 2);
        msg_put(tx, buf + off, n - off);
    }
}

/* The message ended inside its header section: add the missing fields at the end. */
static void msg_finish(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    if (!tx->hs.in_header || tx->too_big)
        return;
    if (tx->size > 0 && !(tx->last2[0] == '\r' && tx->last2[1] == '\n'))
        msg_put(tx, "\r\n", 2);
    msg_add_missing_fields(s);
}

static void msg_received(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    char date[64], line[2048];
    format_date(date, sizeof date, time(NULL));
    const char *proto = s->tls ? "ESMTPSA" : "ESMTPA";
    char tls[128] = "";
    if (s->tls)
        snprintf(tls, sizeof tls, "%s %s; ", s->tls_version, s->tls_cipher);
    char helo[SMTP_DOMAIN_MAX * 4 + 1];
    log_sanitize(s->helo, strlen(s->helo), helo, sizeof helo);
    int n =
        snprintf(line, sizeof line,
                 "Received: from %s (%s port %d)\r\n"
                 "\tby %s (submitd) with %s id %s\r\n"
                 "\t(%sauthenticated sender %s)%s%s%s;\r\n"
                 "\t%s\r\n",
                 helo, s->peer_literal, s->peer_port, s->rt->cfg.hostname, proto,
                 spool_file_id(tx->file), tls, s->auth_user, tx->n_rcpts == 1 ? "\r\n\tfor <" : "",
                 tx->n_rcpts == 1 ? tx->rcpts[0] : "", tx->n_rcpts == 1 ? ">" : "", date);
    if (n > 0 && (size_t)n < sizeof line)
        msg_put(tx, line, (size_t)n);
}

/* Opens the spool file for the transaction. Returns false after refusing. */
static bool tx_open(struct session *s, const char *stage)
{
    struct smtp_tx *tx = s->tx;
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    env.received_ms = session_now_ms();
    snprintf(env.sender, sizeof env.sender, "%s", tx->mail.address);
    env.rcpts = tx->rcpts;
    env.n_rcpts = tx->n_rcpts;
    snprintf(env.auth_user, sizeof env.auth_user, "%s", s->auth_user);
    snprintf(env.tenant, sizeof env.tenant, "%s", s->tenant);
    snprintf(env.client_ip, sizeof env.client_ip, "%s", s->peer_ip);
    env.client_port = s->peer_port;
    log_sanitize(s->helo, strlen(s->helo), env.helo, sizeof env.helo);
    snprintf(env.session, sizeof env.session, "%s", s->id);
    snprintf(env.body, sizeof env.body, "%s",
             tx->mail.body == SMTP_BODY_8BITMIME ? "8BITMIME" : "7BIT");
    env.smtputf8 = tx->mail.smtputf8;
    /* RFC 3461: RET and ENVID for the message, NOTIFY and ORCPT per recipient */
    snprintf(env.envid, sizeof env.envid, "%s", tx->mail.envid);
    snprintf(env.ret, sizeof env.ret, "%s",
             tx->mail.ret == SMTP_RET_FULL   ? "FULL"
             : tx->mail.ret == SMTP_RET_HDRS ? "HDRS"
                                             : "");
    env.notify = tx->notify;
    env.orcpt = tx->orcpt;
    /* The accepted submission gets a reference as refusals do: the envelope and the log's
     * accepted "data" event carry it, so the delivery log can be found from it. */
    reply_new_id(tx->ref);
    snprintf(env.ref, sizeof env.ref, "%s", tx->ref);
    char err[256];
    int saved = 0;
    tx->file = spool_create(s->srv->spool, &env, err, sizeof err);
    if (!tx->file) {
        saved = errno;
        log_error("session=%s event=spool-create-failed reason=\"%s\"", s->id, err);
        char ref[REF_ID_LEN + 1] = "";
        enum reply_id id =
            (saved == ENOSPC || saved == EDQUOT) ? REPLY_NO_STORAGE : REPLY_LOCAL_ERROR;
        session_reply(s, id, NULL, ref);
        const struct reply_entry *e = &reply_catalogue[id];
        session_log_submission(s, stage, false, e->code, e->enhanced, e->text, ref, NULL, NULL);
        return false;
    }
    tx->in_data = true;
    header_scan_init(&tx->hs);
    msg_received(s);
    return true;
}

/* ---- the end of a message ---- */

static void tx_refuse(struct session *s, enum reply_id id)
{
    char ref[REF_ID_LEN + 1] = "";
    session_reply(s, id, NULL, ref);
    const struct reply_entry *e = &reply_catalogue[id];
    session_log_submission(s, "data", false, e->code, e->enhanced, e->text, ref, NULL, NULL);
}

static void commit_done(void *arg)
{
    struct commit_job *j = arg;
    struct session *s = j->s;
    if (j->err == 0) {
        /* counted even when the client is gone: the message is queued */
        quota_record(j->quota, j->user, j->recipients, session_now_ms());
        log_info("queue=%s event=queued session=%s ref=%s", j->queue_id, s->id, j->ref);
    }
    if (!session_job_done(s)) {
        free(j);
        return;
    }
    if (j->err == 0) {
        char text[64];
        snprintf(text, sizeof text, "OK %s", j->queue_id);
        session_reply_text(s, 250, "2.0.0", text, false);
        session_log_submission(s, "data", true, 250, "2.0.0", text, j->ref, NULL, j->queue_id);
    } else {
        log_error("session=%s event=spool-commit-failed reason=\"%s\"", s->id, strerror(j->err));
        tx_refuse(s, (j->err == ENOSPC || j->err == EDQUOT) ? REPLY_NO_STORAGE : REPLY_LOCAL_ERROR);
    }
    free(j);
    session_tx_reset(s);
    session_resume(s);
}

static void commit_cb(void *arg, int err, const char *queue_id)
{
    struct commit_job *j = arg;
    j->err = err;
    (void)queue_id;
    loop_post(j->loop, commit_done, j);
}

static void tx_commit(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    struct commit_job *j = calloc(1, sizeof *j);
    if (!j) {
        tx_refuse(s, REPLY_LOCAL_ERROR);
        session_tx_reset(s);
        return;
    }
    j->s = s;
    j->loop = s->loop;
    j->quota = s->srv->quota;
    snprintf(j->user, sizeof j->user, "%s", s->auth_user);
    j->recipients = (unsigned)tx->n_rcpts;
    snprintf(j->queue_id, sizeof j->queue_id, "%s", spool_file_id(tx->file));
    snprintf(j->ref, sizeof j->ref, "%s", tx->ref);
    struct spool_file *f = tx->file;
    tx->file = NULL;
    session_suspend(s);
    spool_commit(f, commit_cb, j);
}

/* ---- the header From: may the mailbox send as it? (SPEC 4: 550 5.7.60 at end of DATA) ---- */

struct from_job {
    struct session *s;
    int64_t mailbox_id;
    struct address_list list; /* the addresses other than the mailbox itself */
    enum dir_status status;
};

static void from_work(void *job, void *ctx)
{
    struct from_job *j = job;
    struct worker_ctx *w = ctx;
    j->status = w && w->dir ? DIR_OK : DIR_TEMPFAIL;
    for (size_t i = 0; i < j->list.n && j->status == DIR_OK; i++)
        j->status = dir_may_send_as(w->dir, j->mailbox_id, j->list.addr[i]);
}

static void from_done(void *job)
{
    struct from_job *j = job;
    struct session *s = j->s;
    if (session_job_done(s)) {
        s->state = SESSION_COMMAND;
        if (j->status == DIR_OK) {
            tx_commit(s);
        } else {
            tx_refuse(s, j->status == DIR_NOTFOUND ? REPLY_SEND_AS_DENIED : REPLY_LOCAL_ERROR);
            session_tx_reset(s);
            session_resume(s);
        }
    }
    free(j);
}

/* Returns REPLY_COUNT when the header From is fine or needs a lookup (then *pending is a job
 * with the addresses to look up), else the refusal. */
static enum reply_id from_check(struct session *s, struct from_job **pending)
{
    struct smtp_tx *tx = s->tx;
    *pending = NULL;
    if (!tx->hs.has_from)
        return REPLY_COUNT; /* nothing claimed, nothing to impersonate */
    if (tx->hs.from_multiple || tx->hs.from_truncated)
        return REPLY_SEND_AS_DENIED; /* RFC 5322 3.6: one From; a cut one may hide an address */
    struct address_list list;
    if (address_list_parse(tx->hs.from, tx->hs.from_len, &list) != 0)
        return REPLY_SEND_AS_DENIED;
    struct from_job *j = calloc(1, sizeof *j);
    if (!j)
        return REPLY_LOCAL_ERROR;
    for (size_t i = 0; i < list.n; i++) {
        char norm[SMTP_PATH_MAX + 1];
        if (!smtp_address_normalize(list.addr[i], norm, sizeof norm)) {
            free(j);
            return REPLY_SEND_AS_DENIED;
        }
        if (strcmp(norm, s->auth_user) != 0)
            snprintf(j->list.addr[j->list.n++], sizeof j->list.addr[0], "%s", norm);
    }
    if (j->list.n == 0) {
        free(j);
        return REPLY_COUNT;
    }
    j->s = s;
    j->mailbox_id = s->mailbox_id;
    *pending = j;
    return REPLY_COUNT;
}

/* The whole message is in: refuse it, or make it durable and answer when it is. */
static void tx_complete(struct session *s, enum data_error derr)
{
    struct smtp_tx *tx = s->tx;
    enum reply_id refusal = REPLY_COUNT;
    if (derr == DATA_ERR_BARE_LF)
        refusal = REPLY_DATA_BARE_LF;
    else if (derr == DATA_ERR_BARE_CR)
        refusal = REPLY_DATA_BARE_CR;
    else if (derr == DATA_ERR_LINE_TOO_LONG)
        refusal = REPLY_DATA_LINE_TOO_LONG;
    else if (tx->too_big)
        refusal = REPLY_SIZE_EXCEEDED;
    if (refusal == REPLY_COUNT) {
        msg_finish(s);
        int werr = spool_file_error(tx->file);
        if (werr)
            refusal = (werr == ENOSPC || werr == EDQUOT) ? REPLY_NO_STORAGE : REPLY_LOCAL_ERROR;
    }
    struct from_job *lookup = NULL;
    if (refusal == REPLY_COUNT)
        refusal = from_check(s, &lookup);
    s->state = SESSION_COMMAND;
    if (refusal != REPLY_COUNT) {
        tx_refuse(s, refusal);
        session_tx_reset(s);
        return;
    }
    if (lookup) {
        session_suspend(s);
        jobs_submit(s->srv->jobs, s->loop, from_work, from_done, lookup);
        return;
    }
    tx_commit(s);
}

/* ---- DATA ---- */

void cmd_data(struct session *s, const struct smtp_command *c)
{
    (void)c;
    struct smtp_tx *tx = s->tx;
    if (!tx || tx->bdat) {
        tx_refuse(s, tx ? REPLY_BAD_SEQUENCE : REPLY_MAIL_FIRST);
        return;
    }
    if (tx->n_rcpts == 0) {
        tx_refuse(s, REPLY_RCPT_FIRST);
        return;
    }
    if (!tx_open(s, "data"))
        return;
    data_decoder_init(&tx->dec);
    session_reply(s, REPLY_START_DATA, NULL, NULL);
    s->state = SESSION_DATA;
    session_touch(s);
}

void data_read(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    char out[DATA_CHUNK];
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t len = v.iov_len < DATA_CHUNK ? v.iov_len : DATA_CHUNK, out_len = 0;
        size_t used = data_decoder_feed(&tx->dec, v.iov_base, len, out, &out_len);
        if (memchr(v.iov_base, '\n', used))
            session_touch(s); /* progress: at least one line */
        if (tx->dec.error == DATA_OK)
            msg_write(s, out, out_len);
        evbuffer_drain(in, used);
        if (tx->dec.done) {
            tx_complete(s, tx->dec.error);
            return;
        }
    }
}

/* ---- BDAT ---- */

/* RFC 5321 2.3.8 and 4.5.3.1.6 apply to text sent with BDAT too (BINARYMIME is not offered). */
static void bdat_check_lines(struct smtp_tx *tx, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && tx->bdat_error == DATA_OK; i++) {
        char ch = buf[i];
        if (tx->bdat_prev_cr && ch != '\n')
            tx->bdat_error = DATA_ERR_BARE_CR;
        else if (ch == '\n' && !tx->bdat_prev_cr)
            tx->bdat_error = DATA_ERR_BARE_LF;
        else if (ch == '\n')
            tx->bdat_line_len = 0;
        else if (ch != '\r' && ++tx->bdat_line_len > SMTP_TEXT_LINE_CONTENT_MAX)
            tx->bdat_error = DATA_ERR_LINE_TOO_LONG;
        tx->bdat_prev_cr = ch == '\r';
    }
}

static void bdat_chunk_end(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    s->state = SESSION_COMMAND;
    if (s->chunk_refusal != REPLY_COUNT) {
        tx_refuse(s, s->chunk_refusal);
        if (tx)
            tx->bdat_failed = true;
        if (tx && s->chunk_last)
            session_tx_reset(s);
        return;
    }
    if (tx->too_big) {
        tx_refuse(s, REPLY_SIZE_EXCEEDED);
        tx->bdat_failed = true;
        if (tx->file) {
            spool_abort(tx->file);
            tx->file = NULL;
        }
        if (s->chunk_last)
            session_tx_reset(s);
        return;
    }
    if (!s->chunk_last) {
        char text[80];
        snprintf(text, sizeof text, "%llu octets received", (unsigned long long)tx->size);
        session_reply_text(s, 250, "2.0.0", text, false);
        return;
    }
    enum data_error derr = tx->bdat_error;
    if (derr == DATA_OK && tx->bdat_prev_cr)
        derr = DATA_ERR_BARE_CR;
    tx_complete(s, derr);
}

void bdat_read(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    char buf[DATA_CHUNK];
    while (s->chunk_remaining > 0 && evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_length(in);
        if (n > sizeof buf)
            n = sizeof buf;
        if (n > s->chunk_remaining)
            n = (size_t)s->chunk_remaining;
        evbuffer_remove(in, buf, n);
        s->chunk_remaining -= n;
        if (n >= 512 || s->chunk_remaining == 0)
            session_touch(s); /* progress */
        if (s->chunk_refusal == REPLY_COUNT) {
            bdat_check_lines(s->tx, buf, n);
            msg_write(s, buf, n);
        }
    }
    if (s->chunk_remaining == 0)
        bdat_chunk_end(s);
}

void cmd_bdat(struct session *s, const struct smtp_command *c)
{
    uint64_t size = 0;
    bool last = false;
    if (!smtp_parse_bdat(c->arg, c->arg_len, &size, &last)) {
        /* Without a size the chunk cannot be skipped; what follows will be read as commands. */
        tx_refuse(s, REPLY_SYNTAX);
        return;
    }
    struct smtp_tx *tx = s->tx;
    s->chunk_remaining = size;
    s->chunk_last = last;
    s->chunk_refusal = REPLY_COUNT;
    if (!tx)
        s->chunk_refusal = REPLY_MAIL_FIRST;
    else if (tx->bdat_failed)
        s->chunk_refusal = REPLY_BDAT_AFTER_FAILURE;
    else if (tx->n_rcpts == 0)
        s->chunk_refusal = REPLY_RCPT_FIRST;
    else if (tx->in_data && !tx->bdat)
        s->chunk_refusal = REPLY_BAD_SEQUENCE;
    else if (!tx->in_data) {
        if (!tx_open(s, "data")) {
            /* already answered: swallow the chunk without a second reply */
            tx->bdat_failed = true;
            s->chunk_refusal = REPLY_COUNT;
            s->state = SESSION_BDAT;
            s->chunk_refusal = REPLY_BDAT_AFTER_FAILURE;
            struct evbuffer *in = bufferevent_get_input(s->bev);
            size_t n = evbuffer_get_length(in);
            if (n > size)
                n = (size_t)size;
            evbuffer_drain(in, n);
            s->chunk_remaining = size - n;
            if (s->chunk_remaining == 0) {
                s->state = SESSION_COMMAND;
                if (last)
                    session_tx_reset(s);
            } else {
                s->chunk_refusal = REPLY_COUNT;
                s->chunk_last = last;
            }
            return;
        }
        tx->bdat = true;
    }
    s->state = SESSION_BDAT;
    session_touch(s);
}
