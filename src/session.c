/* session.c: an SMTP session's connection (TCP or TLS through libevent bufferevents), line
 * framing (CRLF only, RFC 5321 2.3.8; 512-octet command lines, 4.5.3.1.4), the command table,
 * the one reply path, timeouts (4.5.3.2), the error limit, STARTTLS (RFC 3207) and the simple
 * commands: EHLO, HELO, RSET, NOOP, QUIT, VRFY, EXPN, HELP. */
#include "session.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "connlimit.h"
#include "quota.h"
#include "logger.h"
#include "logwriter.h"
#include "loop.h"
#include "sasl.h"
#include "server.h"
#include "spool.h"

/* Command-table flags (after Postfix's smtpd command table). */
#define F_PRE_TLS 0x01    /* allowed before STARTTLS on a listener that requires TLS */
#define F_NEEDS_HELO 0x02 /* needs EHLO or HELO first */
#define F_NO_ARG 0x04     /* takes no argument */

typedef void (*command_fn)(struct session *, const struct smtp_command *);

struct command_row {
    unsigned flags;
    command_fn run;
};

static void cmd_ehlo(struct session *s, const struct smtp_command *c);
static void cmd_helo(struct session *s, const struct smtp_command *c);
static void cmd_starttls(struct session *s, const struct smtp_command *c);
static void cmd_rset(struct session *s, const struct smtp_command *c);
static void cmd_noop(struct session *s, const struct smtp_command *c);
static void cmd_quit(struct session *s, const struct smtp_command *c);
static void cmd_vrfy(struct session *s, const struct smtp_command *c);
static void cmd_help(struct session *s, const struct smtp_command *c);

static const struct command_row commands[SMTP_VERB_COUNT] = {
    [SMTP_VERB_EHLO] = {F_PRE_TLS, cmd_ehlo},
    [SMTP_VERB_HELO] = {F_PRE_TLS, cmd_helo},
    [SMTP_VERB_STARTTLS] = {F_PRE_TLS | F_NEEDS_HELO | F_NO_ARG, cmd_starttls},
    [SMTP_VERB_AUTH] = {F_PRE_TLS | F_NEEDS_HELO, cmd_auth},
    [SMTP_VERB_MAIL] = {F_NEEDS_HELO, cmd_mail},
    [SMTP_VERB_RCPT] = {0, cmd_rcpt},
    [SMTP_VERB_DATA] = {F_NO_ARG, cmd_data},
    [SMTP_VERB_BDAT] = {0, cmd_bdat},
    [SMTP_VERB_RSET] = {F_PRE_TLS | F_NO_ARG, cmd_rset},
    [SMTP_VERB_NOOP] = {F_PRE_TLS, cmd_noop},
    [SMTP_VERB_QUIT] = {F_PRE_TLS | F_NO_ARG, cmd_quit},
    [SMTP_VERB_VRFY] = {F_PRE_TLS, cmd_vrfy},
    [SMTP_VERB_EXPN] = {F_PRE_TLS, cmd_vrfy},
    [SMTP_VERB_HELP] = {F_PRE_TLS, cmd_help},
};

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_process(struct session *s);

int64_t session_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Input buffered per session at most (RFC 2920 pipelining of whole transactions fits easily):
 * past it libevent stops reading and TCP flow control holds the client back. */
#define SESSION_INPUT_MAX (64 * 1024 + SASL_RESPONSE_MAX)

/* TLS input is read in pieces of at most SESSION_TLS_READ_IDLE between transactions and of
 * libevent's default 16 KiB inside DATA and BDAT. libevent's TLS filter reserves a whole piece in
 * the input buffer each time the session drains it, and an idle session keeps that empty
 * reservation: with the chain header (<= 64 octets on 64-bit) this one fits libevent's smallest
 * chain, 1 KiB, where 16 KiB takes a 32 KiB allocation (docs/performance.md, scenario d-tls). */
#define SESSION_TLS_READ_IDLE (1024 - 64)
#define SESSION_TLS_READ_BULK 16384

/* Message content on a plaintext socket is read on by the session itself, this much at most a
 * read, when a read brought at least libevent's most (see session_read_more). */
#define SESSION_READ_MORE (64 * 1024)
#define LIBEVENT_READ_MAX 4096

/* Replies queued at most before the session stops reading: a client that sends but never reads
 * cannot make the server buffer without bound. */
#define SESSION_OUTPUT_MAX (256 * 1024)

void session_touch(struct session *s)
{
    if (!s->idle_timer)
        return;
    const struct config *cfg = &s->rt->cfg;
    unsigned secs = (s->state == SESSION_DATA || s->state == SESSION_BDAT) ? cfg->data_timeout
                                                                           : cfg->command_timeout;
    struct timeval tv = {(time_t)secs, 0};
    evtimer_add(s->idle_timer, &tv);
}

/* ---- the reply path ---- */

/* A session whose earlier replies have all gone out sends a reply straight to the socket:
 * through the bufferevent each reply costs two epoll_ctl calls (write interest added, then
 * dropped once flushed) and a pass of the loop. Returns the octets the socket took (0 on EAGAIN
 * or an error, which the bufferevent then meets and reports).
 *
 * Over TLS (on the socket, once the handshake is done) the reply is one SSL_write. Without
 * SSL_MODE_ENABLE_PARTIAL_WRITE it either takes the whole reply or none of it: when the socket
 * is full (SSL_ERROR_WANT_WRITE) OpenSSL keeps the record it made and must be called again with
 * the same octets first. The reply then goes into the bufferevent's empty output, whose next
 * SSL_write starts with exactly those octets, at least as many (libevent sets
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, so the copy may live elsewhere). Any other failure is the
 * bufferevent's to meet and report in the same way. */
static size_t session_send_direct(struct session *s, const char *line, size_t n)
{
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
        return 0;
    if (!s->tls) {
        ssize_t w = send(bufferevent_getfd(s->bev), line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        return w > 0 ? (size_t)w : 0;
    }
    /* not under the STARTTLS filter: its SSL writes into the plaintext bufferevent */
    bool on_socket = bufferevent_get_underlying(s->bev) == NULL;
    SSL *ssl = on_socket ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    if (ssl == NULL || !SSL_is_init_finished(ssl))
        return 0;
    ERR_clear_error();
    int w = SSL_write(ssl, line, (int)n);
    if (w > 0)
        return (size_t)w;
    ERR_clear_error(); /* the bufferevent's own SSL_write finds the error again, if any */
    return 0;
}

static void session_emit(struct session *s, int code, const char *enhanced, const char *text,
                         const char *ref, bool more)
{
    char line[SMTP_REPLY_LINE_MAX + 1];
    size_t n = reply_format(line, sizeof line, code, enhanced, text, ref, more);
    if (n == 0 && (enhanced == NULL || reply_class_agrees(code, enhanced))) {
        /* Too long (an extra text or a long host name): clip the text, keep code and ref. */
        char clipped[SMTP_REPLY_LINE_MAX];
        size_t room = SMTP_REPLY_LINE_MAX - 24 - (ref ? strlen(ref) : 0);
        snprintf(clipped, room < sizeof clipped ? room : sizeof clipped, "%s", text);
        n = reply_format(line, sizeof line, code, enhanced, clipped, ref, more);
    }
    if (n == 0) {
        log_error("session=%s event=bad-reply code=%d enhanced=%s", s->id, code,
                  enhanced ? enhanced : "-");
        const struct reply_entry *e = &reply_catalogue[REPLY_LOCAL_ERROR];
        n = reply_format(line, sizeof line, e->code, e->enhanced, e->text, ref, more);
    }
    /* a reply of several lines (EHLO's) goes through the bufferevent whole */
    size_t sent = more ? 0 : session_send_direct(s, line, n);
    if (sent < n && bufferevent_write(s->bev, line + sent, n - sent) != 0)
        log_error("session=%s event=write-failed reason=\"out of memory\"", s->id);
    if (code >= 400) {
        char safe[SMTP_REPLY_LINE_MAX * 4];
        log_info("session=%s event=reply client=%s reply=\"%s\"", s->id, s->peer_ip,
                 log_sanitize(line, n - 2, safe, sizeof safe));
    }
}

void session_reference(struct session *s, const char *id, char *buf, size_t cap)
{
    reply_reference(buf, cap, s->rt->cfg.hostname, session_now_ms(), id);
}

static void session_count_error(struct session *s, int code)
{
    if (code < 500 || s->closing)
        return;
    if (++s->errors >= s->rt->cfg.max_errors) {
        log_info("session=%s event=error-limit errors=%u", s->id, s->errors);
        session_close(s, REPLY_TOO_MANY_ERRORS);
    }
}

void session_reply(struct session *s, enum reply_id id, const char *extra, char *ref)
{
    const struct reply_entry *e = &reply_catalogue[id];
    char text[SMTP_REPLY_LINE_MAX];
    snprintf(text, sizeof text, "%s%s%s", e->text, extra ? " " : "", extra ? extra : "");
    char refbuf[SMTP_DOMAIN_MAX + 64] = "";
    if (ref) {
        if (!*ref)
            reply_new_id(ref);
        session_reference(s, ref, refbuf, sizeof refbuf);
    }
    session_emit(s, e->code, e->enhanced, text, ref ? refbuf : NULL, false);
    session_count_error(s, e->code);
}

void session_reply_text(struct session *s, int code, const char *enhanced, const char *text,
                        bool more)
{
    session_emit(s, code, enhanced, text, NULL, more);
    session_count_error(s, code);
}

/* ---- lifetime ---- */

static void session_unlink(struct session *s)
{
    struct session **head = &s->srv->loop_sessions[s->loop_idx];
    if (s->prev)
        s->prev->next = s->next;
    else if (*head == s)
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

void session_tx_reset(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    if (!tx)
        return;
    if (tx->file)
        spool_abort(tx->file);
    for (size_t i = 0; i < tx->n_rcpts; i++) {
        free(tx->rcpts[i]);
        free(tx->orcpt[i]);
    }
    free(tx->rcpts);
    free(tx->notify);
    free(tx->orcpt);
    free(tx);
    s->tx = NULL;
    atomic_fetch_sub(&s->srv->in_transaction, 1);
}

/* A session that is closing, or starts over, stops counting against its mailbox's sessions
 * submitting at once (SPEC 4) then, not when its memory is freed: the client that has read
 * the 221 may open its next session before this one's last job has finished. */
static void session_stop_submitting(struct session *s)
{
    if (s->submitting) {
        quota_session_release(s->srv->quota, s->auth_user);
        s->submitting = false;
    }
}

static void session_free(struct session *s)
{
    session_tx_reset(s);
    if (s->sasl) {
        sasl_wipe(s->sasl);
        free(s->sasl);
        s->sasl = NULL;
    }
    if (s->bev)
        bufferevent_free(s->bev);
    if (s->close_timer)
        event_free(s->close_timer);
    if (s->idle_timer)
        event_free(s->idle_timer);
    if (s->counted_ip)
        connlimit_release(s->srv->limits, &s->client);
    session_stop_submitting(s);
    atomic_fetch_sub(&s->listener->conns, 1);
    listener_release(s->listener);
    runtime_release(s->rt);
    atomic_fetch_sub(&s->srv->sessions, 1);
    atomic_fetch_sub(&s->srv->loop_load[s->loop_idx], 1);
    free(s);
}

/* The connection is gone (or must go now): free, or defer while a job points at us. */
static void session_destroy(struct session *s)
{
    if (s->dead)
        return;
    s->dead = true;
    session_unlink(s);
    session_stop_submitting(s);
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    if (s->close_timer) {
        event_free(s->close_timer);
        s->close_timer = NULL;
    }
    if (s->idle_timer) {
        event_free(s->idle_timer);
        s->idle_timer = NULL;
    }
    log_info("session=%s event=disconnect client=%s:%d", s->id, s->peer_ip, s->peer_port);
    if (s->pending == 0)
        session_free(s);
}

/* True when everything queued has reached the kernel (through every filter layer). */
static bool session_flushed(struct session *s)
{
    for (struct bufferevent *b = s->bev; b; b = bufferevent_get_underlying(b))
        if (evbuffer_get_length(bufferevent_get_output(b)) > 0)
            return false;
    return true;
}

static void session_finish_closing(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (session_flushed(s)) {
        session_destroy(s);
        return;
    }
    struct timeval t = {0, 10 * 1000};
    if (!s->close_timer)
        s->close_timer = evtimer_new(loop_base(s->loop), session_finish_closing, s);
    if (s->close_timer)
        evtimer_add(s->close_timer, &t);
    else
        session_destroy(s);
}

void session_close(struct session *s, enum reply_id final)
{
    if (s->dead || s->closing)
        return;
    /* before the final reply, which may reach the client at once (sent straight to the
     * socket): a client that has read the 221 finds the place free in its next session */
    session_stop_submitting(s);
    if (final != REPLY_COUNT) {
        const struct reply_entry *e = &reply_catalogue[final];
        session_emit(s, e->code, e->enhanced, e->text, NULL, false);
    }
    s->closing = true;
    s->state = SESSION_CLOSING;
    bufferevent_disable(s->bev, EV_READ);
    /* Never freed here: the caller (session_process, in the middle of its loop) still uses s,
     * and with replies sent straight to the socket the output is often empty already. The
     * loop's next pass frees it once its output has gone (session_finish_closing); without a
     * timer, the write callback or the idle timeout does. */
    struct timeval now = {0, 0};
    if (!s->close_timer)
        s->close_timer = evtimer_new(loop_base(s->loop), session_finish_closing, s);
    if (s->close_timer)
        evtimer_add(s->close_timer, &now);
}

void session_suspend(struct session *s)
{
    s->pending++;
    s->state = SESSION_WAIT;
}

bool session_job_done(struct session *s)
{
    s->pending--;
    if (s->dead) {
        if (s->pending == 0)
            session_free(s);
        return false;
    }
    return true;
}

void session_resume(struct session *s)
{
    if (s->dead || s->closing)
        return;
    if (s->state == SESSION_WAIT)
        s->state = SESSION_COMMAND;
    if (atomic_load(&s->srv->stopping) && !s->tx) {
        session_close(s, REPLY_SHUTTING_DOWN);
        return;
    }
    session_touch(s);
    session_process(s);
}

/* ---- input ---- */

static void session_command_line(struct session *s, char *line, size_t len)
{
    struct smtp_command c;
    smtp_parse_command(line, len, &c);
    if (c.verb == SMTP_VERB_UNKNOWN || !commands[c.verb].run) {
        session_reply(s, REPLY_UNKNOWN_COMMAND, NULL, NULL);
        return;
    }
    const struct command_row *row = &commands[c.verb];
    if (!(row->flags & F_PRE_TLS) && !s->tls && s->listener->lc.require_tls) {
        char ref[REF_ID_LEN + 1] = "";
        session_reply(s, REPLY_STARTTLS_FIRST, NULL, ref);
        const struct reply_entry *e = &reply_catalogue[REPLY_STARTTLS_FIRST];
        session_log_submission(s, smtp_verb_name(c.verb), false, e->code, e->enhanced, e->text, ref,
                               NULL, NULL);
        return;
    }
    if ((row->flags & F_NEEDS_HELO) && !s->helo_seen) {
        session_reply(s, REPLY_HELLO_FIRST, NULL, NULL);
        return;
    }
    if ((row->flags & F_NO_ARG) && c.arg_len > 0) {
        session_reply(s, REPLY_SYNTAX, NULL, NULL);
        return;
    }
    row->run(s, &c);
}

/* Reads one CRLF-terminated line of at most max octets (without CRLF) into buf. Returns 1 with
 * *len set, 0 when more input is needed, -1 when a line was refused (already answered). */
static int session_read_line(struct session *s, struct evbuffer *in, char *buf, size_t max,
                             size_t *len)
{
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (p.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have > max + 1) {
            /* No line end within the limit: refuse once, then discard up to the next LF. */
            evbuffer_drain(in, have);
            if (!s->skipping_line) {
                s->skipping_line = true;
                return -2;
            }
        }
        return 0;
    }
    size_t n = (size_t)p.pos;
    if (s->skipping_line) {
        evbuffer_drain(in, n + 1);
        s->skipping_line = false;
        return -1;
    }
    if (n > max + 1) {
        evbuffer_drain(in, n + 1);
        return -2;
    }
    evbuffer_remove(in, buf, n + 1);
    if (n == 0 || buf[n - 1] != '\r') {
        sodium_memzero(buf, n + 1);
        return -3;
    }
    buf[n - 1] = '\0';
    *len = n - 1;
    return 1;
}

/* Message content over TLS is read in large pieces, everything else in small ones (see
 * SESSION_TLS_READ_IDLE). */
static void session_tls_read_size(struct session *s)
{
    bool bulk = s->state == SESSION_DATA || s->state == SESSION_BDAT;
    if (!s->tls || bulk == s->tls_bulk_reads)
        return;
    if (bufferevent_set_max_single_read(s->bev,
                                        bulk ? SESSION_TLS_READ_BULK : SESSION_TLS_READ_IDLE) != 0)
        log_warn("session=%s event=tls-read-size reason=\"cannot set the read size\"", s->id);
    s->tls_bulk_reads = bulk;
}

/* The longest command line (with CRLF) a verb may have: 512 (RFC 5321 4.5.3.1.4); MAIL and RCPT
 * with DSN parameters more (RFC 3461 5); AUTH with an initial response as long as a SASL
 * response (RFC 4954 4, the read limit). */
static size_t command_line_max(const char *line, size_t len)
{
    if (len >= 5 && strncasecmp(line, "AUTH ", 5) == 0)
        return SASL_RESPONSE_MAX + sizeof "AUTH OAUTHBEARER " + 2;
    if (len >= 5 && (strncasecmp(line, "MAIL ", 5) == 0 || strncasecmp(line, "RCPT ", 5) == 0))
        return SMTP_DSN_COMMAND_LINE_MAX;
    return SMTP_COMMAND_LINE_MAX;
}

/* libevent 2.1 reads at most 4096 octets at a time from a socket (EVBUFFER_MAX_READ; 2.2 makes
 * it a setting) and comes back for the rest only through the event loop: an epoll_wait, a
 * FIONREAD ioctl and a readv more for every 4 KiB of message content (two reads for a 4 KiB
 * message, 256 for 1 MiB). While message content comes on a plaintext socket and a read has
 * just brought a full 4096 octets or more (so more is likely waiting), the session reads on by
 * itself once its input is used up: one readv of up to SESSION_READ_MORE octets into the input
 * buffer, within the input limit, and only while reading is enabled. True when it got
 * something; an error or the end of the stream is left for the bufferevent's next read to find
 * (the socket stays readable). TLS records are read through OpenSSL, 16 KiB a time. */
static bool session_read_more(struct session *s)
{
    if (s->tls || !(bufferevent_get_enabled(s->bev) & EV_READ))
        return false;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in);
    if (have >= SESSION_INPUT_MAX)
        return false;
    size_t want =
        SESSION_INPUT_MAX - have < SESSION_READ_MORE ? SESSION_INPUT_MAX - have : SESSION_READ_MORE;
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    ssize_t got = -1;
    /* A socket bufferevent keeps the end of its input frozen but while it reads itself. */
    evbuffer_unfreeze(in, 0);
    int n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
    if (n > 0) {
        size_t room = want; /* the space reserved may be larger than asked for */
        for (int i = 0; i < n; i++) {
            iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len < room ? v[i].iov_len : room};
            room -= iov[i].iov_len;
        }
        do
            got = readv(s->fd, iov, n);
        while (got < 0 && errno == EINTR);
    }
    if (got > 0) { /* else the reservation lapses */
        size_t left = (size_t)got;
        for (int i = 0; i < n; i++) {
            v[i].iov_len = left < iov[i].iov_len ? left : iov[i].iov_len;
            left -= v[i].iov_len;
        }
        if (evbuffer_commit_space(in, v, n) != 0)
            got = -1;
    }
    evbuffer_freeze(in, 0);
    return got > 0;
}

static void session_process(struct session *s)
{
    char line[SASL_RESPONSE_MAX + sizeof "AUTH OAUTHBEARER " + 4];
    while (!s->dead && !s->closing) {
        session_tls_read_size(s);
        struct evbuffer *in = bufferevent_get_input(s->bev);
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_MAX) {
            s->output_blocked = true;
            bufferevent_disable(s->bev, EV_READ);
            return;
        }
        /* (a read that brought less than libevent's most found the socket drained) */
        bool full = evbuffer_get_length(in) >= LIBEVENT_READ_MAX;
        if (s->state == SESSION_DATA) {
            data_read(s);
            if (s->state == SESSION_DATA && !(full && session_read_more(s)))
                return;
            continue;
        }
        if (s->state == SESSION_BDAT) {
            bdat_read(s);
            if (s->state == SESSION_BDAT && !(full && session_read_more(s)))
                return;
            continue;
        }
        if (s->state != SESSION_COMMAND && s->state != SESSION_SASL)
            return;
        bool sasl = s->state == SESSION_SASL;
        /* RFC 4954 4: an AUTH command with an initial response may be as long as a SASL
         * response (12288 octets); every other command line stays within its limit. */
        size_t max = SASL_RESPONSE_MAX + sizeof "AUTH OAUTHBEARER ", len = 0;
        int r = session_read_line(s, in, line, max, &len);
        if (r == 1 && !sasl && len > command_line_max(line, len) - 2) {
            sodium_memzero(line, len);
            r = -2;
        }
        if (r == 0)
            return;
        if (r == 1) {
            session_touch(s);
            if (sasl)
                auth_sasl_line(s, line, len);
            else
                session_command_line(s, line, len);
            sodium_memzero(line, len);
            continue;
        }
        if (r == -1)
            continue;
        if (sasl) {
            sasl_wipe(s->sasl);
            free(s->sasl);
            s->sasl = NULL;
            s->state = SESSION_COMMAND;
        }
        session_reply(
            s, r == -2 ? (sasl ? REPLY_AUTH_TOO_LONG : REPLY_LINE_TOO_LONG) : REPLY_BARE_LF_COMMAND,
            NULL, NULL);
    }
}

/* The idle timer restarts on progress, not on any byte: a whole command line, a whole line of
 * DATA, 512 octets of a BDAT chunk. A client that trickles a byte every few seconds is cut off
 * after the timeout (issue 6, slow clients). */
static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            session_finish_closing(-1, 0, s);
        return;
    }
    session_touch(s);
    if (s->output_blocked) {
        s->output_blocked = false;
        bufferevent_enable(s->bev, EV_READ);
        session_process(s);
    }
}

static void session_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    log_info("session=%s event=timeout state=%d", s->id, (int)s->state);
    if (s->closing) {
        session_destroy(s); /* the client did not even read our last reply */
        return;
    }
    session_close(s, REPLY_TIMEOUT);
    if (!s->dead)
        session_touch(s);
}

static void session_tls_established(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    if (!ssl)
        return;
    snprintf(s->tls_version, sizeof s->tls_version, "%s", SSL_get_version(ssl));
    snprintf(s->tls_cipher, sizeof s->tls_cipher, "%s", SSL_get_cipher_name(ssl));
    /* layer: TLS on the socket itself, or (a STARTTLS whose 220 the socket could not take at
     * once) a filter over the plaintext bufferevent */
    log_info("session=%s event=tls version=%s cipher=%s resumed=%s layer=%s", s->id, s->tls_version,
             s->tls_cipher, SSL_session_reused(ssl) ? "yes" : "no",
             bufferevent_get_underlying(s->bev) != NULL ? "filter" : "socket");
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        session_tls_established(s);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(s->bev);
        char reason[160] = "";
        if (e)
            ERR_error_string_n(e, reason, sizeof reason);
        else if (EVUTIL_SOCKET_ERROR())
            snprintf(reason, sizeof reason, "%s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        log_info("session=%s event=connection-error reason=\"%s\"", s->id, reason);
    }
    session_destroy(s);
}

/* ---- accept ---- */

static void session_greet(struct session *s)
{
    char text[SMTP_DOMAIN_MAX + 64];
    snprintf(text, sizeof text, "%s %s", s->rt->cfg.hostname, reply_catalogue[REPLY_GREETING].text);
    session_emit(s, 220, NULL, text, NULL, false);
}

/* A TLS bufferevent over `under` (a filter) or, when under is NULL, on fd; it owns ssl (freed
 * here when the bufferevent cannot be made). */
static struct bufferevent *session_tls_bev(struct session *s, struct event_base *base,
                                           struct bufferevent *under, int fd, SSL *ssl)
{
    struct bufferevent *bev =
        under ? bufferevent_openssl_filter_new(base, under, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
              : bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    if (bufferevent_set_max_single_read(bev, SESSION_TLS_READ_IDLE) != 0)
        log_warn("session=%s event=tls-read-size reason=\"cannot set the read size\"", s->id);
    s->tls_bulk_reads = false;
    return bev;
}

void session_accept(struct server *srv, unsigned loop_idx, struct listener *l, int fd,
                    const struct sockaddr *sa, int salen)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        log_error("event=accept-failed reason=\"out of memory\"");
        close(fd);
        atomic_fetch_sub(&srv->loop_load[loop_idx], 1);
        return;
    }
    s->srv = srv;
    s->loop = srv->loops[loop_idx];
    s->loop_idx = loop_idx;
    s->listener = l;
    atomic_fetch_add(&l->refs, 1);
    unsigned conns = atomic_fetch_add(&l->conns, 1) + 1;
    atomic_fetch_add(&srv->sessions, 1);
    s->rt = server_runtime(srv);
    s->fd = fd;
    reply_new_id(s->id);
    memcpy(&s->peer, sa, (size_t)salen < sizeof s->peer ? (size_t)salen : sizeof s->peer);
    char port[16] = "0";
    if (getnameinfo(sa, (socklen_t)salen, s->peer_ip, sizeof s->peer_ip, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(s->peer_ip, sizeof s->peer_ip, "unknown");
    s->peer_port = atoi(port);
    if (netaddr_parse(s->peer_ip, &s->client) != 0)
        memset(&s->client, 0, sizeof s->client);
    snprintf(s->peer_literal, sizeof s->peer_literal, "[%s%s]",
             s->client.family == AF_INET6 ? "IPv6:" : "", s->peer_ip);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    const struct config *cfg = &s->rt->cfg;
    bool over = conns > cfg->max_connections;
    if (!over) {
        s->counted_ip = connlimit_acquire(srv->limits, &s->client, cfg->max_connections_per_ip);
        over = !s->counted_ip;
    }
    struct event_base *base = loop_base(s->loop);
    if (l->lc.tls == LISTENER_IMPLICIT_TLS && !over) {
        SSL *ssl = SSL_new(s->rt->ssl);
        s->bev = ssl ? session_tls_bev(s, base, NULL, fd, ssl) : NULL;
        s->tls = true;
    } else {
        s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (!s->bev) {
        log_error("session=%s event=accept-failed reason=\"cannot set up the connection\"", s->id);
        close(fd);
        s->dead = true;
        session_free(s);
        return;
    }
    struct session **head = &srv->loop_sessions[loop_idx];
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
    s->idle_timer = evtimer_new(base, session_idle_cb, s);
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX);
    bufferevent_setwatermark(s->bev, EV_WRITE, SESSION_OUTPUT_MAX / 4, 0);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    session_touch(s);
    log_info("session=%s event=connect client=%s:%d listener=%s", s->id, s->peer_ip, s->peer_port,
             l->lc.name);
    if (over) {
        log_warn("session=%s event=connection-limit client=%s listener_connections=%u", s->id,
                 s->peer_ip, conns);
        session_close(s, l->lc.tls == LISTENER_IMPLICIT_TLS ? REPLY_COUNT
                                                            : REPLY_TOO_MANY_CONNECTIONS);
        return;
    }
    if (atomic_load(&srv->stopping)) {
        session_close(s, REPLY_SHUTTING_DOWN);
        return;
    }
    session_greet(s);
}

void session_shutdown_loop(struct server *srv, unsigned loop_idx, bool force)
{
    struct session *s = srv->loop_sessions[loop_idx];
    while (s) {
        struct session *next = s->next;
        if (force)
            session_destroy(s);
        else if (!s->tx && s->state != SESSION_WAIT)
            session_close(s, REPLY_SHUTTING_DOWN);
        s = next;
    }
}

/* ---- simple commands ---- */

static void session_forget(struct session *s)
{
    session_tx_reset(s);
    session_stop_submitting(s);
    s->helo_seen = false;
    s->esmtp = false;
    s->helo[0] = '\0';
    s->authenticated = false;
    s->auth_user[0] = '\0';
    s->tenant[0] = '\0';
    s->mailbox_id = 0;
    s->last_auth_error[0] = '\0';
    s->last_auth_ref[0] = '\0';
}

static bool session_hello(struct session *s, const struct smtp_command *c)
{
    if (!smtp_helo_valid(c->arg, c->arg_len)) {
        session_reply(s, REPLY_SYNTAX, NULL, NULL);
        return false;
    }
    size_t n = 0;
    while (n < c->arg_len && c->arg[n] != ' ' && n < sizeof s->helo - 1)
        n++;
    memcpy(s->helo, c->arg, n);
    s->helo[n] = '\0';
    session_tx_reset(s); /* RFC 5321 4.1.4: EHLO resets the transaction */
    s->helo_seen = true;
    return true;
}

static void cmd_ehlo(struct session *s, const struct smtp_command *c)
{
    if (!session_hello(s, c))
        return;
    s->esmtp = true;
    const struct config *cfg = &s->rt->cfg;
    bool auth = s->tls || s->listener->lc.allow_cleartext_auth;
    char first[SMTP_DOMAIN_MAX + 80], size[40];
    snprintf(first, sizeof first, "%s Hello %s", cfg->hostname, s->peer_literal);
    snprintf(size, sizeof size, "SIZE %llu", (unsigned long long)cfg->max_message_size);
    const char *lines[12];
    size_t n = 0;
    lines[n++] = first;
    lines[n++] = size;
    lines[n++] = "PIPELINING";
    lines[n++] = "ENHANCEDSTATUSCODES";
    lines[n++] = "8BITMIME";
    lines[n++] = "SMTPUTF8";
    lines[n++] = "CHUNKING";
    lines[n++] = "DSN";
    if (!s->tls)
        lines[n++] = "STARTTLS";
    if (auth && !s->authenticated)
        lines[n++] = "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER";
    for (size_t i = 0; i < n; i++)
        session_emit(s, 250, NULL, lines[i], NULL, i + 1 < n);
}

static void cmd_helo(struct session *s, const struct smtp_command *c)
{
    if (!session_hello(s, c))
        return;
    s->esmtp = false;
    session_emit(s, 250, NULL, s->rt->cfg.hostname, NULL, false);
}

static void cmd_starttls(struct session *s, const struct smtp_command *c)
{
    (void)c;
    if (s->tls) {
        session_reply(s, REPLY_TLS_ALREADY, NULL, NULL);
        return;
    }
    SSL *ssl = SSL_new(s->rt->ssl);
    if (!ssl) {
        session_reply(s, REPLY_TLS_UNAVAILABLE, NULL, NULL);
        return;
    }
    struct bufferevent *under = s->bev;
    /* RFC 3207 4.2 / CVE-2011-0411: nothing the client pipelined after STARTTLS is a command. */
    bufferevent_disable(under, EV_READ);
    struct evbuffer *in = bufferevent_get_input(under);
    evbuffer_drain(in, evbuffer_get_length(in));
    /* The 220 goes into the plaintext stream, ahead of the handshake. */
    const struct reply_entry *e = &reply_catalogue[REPLY_TLS_READY];
    char line[128];
    size_t n = reply_format(line, sizeof line, e->code, e->enhanced, e->text, NULL, false);
    struct evbuffer *out = bufferevent_get_output(under);
    evbuffer_add(out, line, n);
    /* Usually the socket takes the 220 (and anything before it) at once: then TLS runs on the
     * socket itself, as on the implicit-TLS port. Otherwise a TLS filter over the plaintext
     * bufferevent sends the 220 first: one more buffer layer for the session's life. */
    evutil_socket_t fd = bufferevent_getfd(under);
    /* a socket bufferevent keeps the start of its output frozen (only it may drain it): thawed
     * for these writes, frozen again if the filter is to send the rest */
    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
        ;
    bool direct = evbuffer_get_length(out) == 0;
    if (!direct)
        evbuffer_freeze(out, 1);
    struct bufferevent *bev =
        session_tls_bev(s, loop_base(s->loop), direct ? NULL : under, direct ? fd : -1, ssl);
    if (!bev) { /* out of memory, after the 220: the client's handshake cannot succeed */
        log_error("session=%s event=starttls-failed reason=\"cannot set up TLS\"", s->id);
        session_close(s, REPLY_COUNT);
        return;
    }
    if (direct) { /* the plaintext bufferevent goes, the socket stays */
        bufferevent_setfd(under, -1);
        bufferevent_free(under);
    }
    s->bev = bev;
    s->tls = true;
    session_forget(s); /* RFC 3207 4.2: discard all knowledge obtained from the client */
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX);
    bufferevent_setwatermark(s->bev, EV_WRITE, SESSION_OUTPUT_MAX / 4, 0);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    session_touch(s);
}

static void cmd_rset(struct session *s, const struct smtp_command *c)
{
    (void)c;
    session_tx_reset(s);
    session_reply(s, REPLY_RESET_OK, NULL, NULL);
    if (atomic_load(&s->srv->stopping))
        session_close(s, REPLY_SHUTTING_DOWN);
}

static void cmd_noop(struct session *s, const struct smtp_command *c)
{
    (void)c;
    session_reply(s, REPLY_OK, NULL, NULL);
}

static void cmd_quit(struct session *s, const struct smtp_command *c)
{
    (void)c;
    session_close(s, REPLY_BYE);
}

static void cmd_vrfy(struct session *s, const struct smtp_command *c)
{
    (void)c;
    session_reply(s, REPLY_VRFY, NULL, NULL);
}

static void cmd_help(struct session *s, const struct smtp_command *c)
{
    (void)c;
    session_reply(s, REPLY_HELP, NULL, NULL);
}
