/* relay.c: the blocking transport of relay.h for a delivery thread. It resolves the next hop,
 * connects to each address in turn (RFC 5321 5.1), then carries out smtp_client.c's actions over
 * doctor_conn.c's connection: command lines (a PIPELINING group in one write, RFC 2920), the TLS
 * handshake for STARTTLS (RFC 3207) or implicit TLS (RFC 8314) with certificate verification
 * (chain and host name, RFC 6125), and the message, streamed from the queue file with
 * dot-stuffing and CRLF line ends (RFC 5321 4.5.2). Every wait is bounded by the timeouts of
 * RFC 5321 4.5.3.2. Nothing here decides a verdict: the state machine does. */
#include "relay.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor_conn.h"
#include "smtp_client.h"

/* RFC 5321 4.5.3.2 (and Postfix's smtp_connect_timeout for the connect). */
#define RELAY_CONNECT_MS (30 * 1000)
#define RELAY_GREETING_MS (5 * 60 * 1000)
#define RELAY_COMMAND_MS (5 * 60 * 1000)
#define RELAY_DATA_INIT_MS (2 * 60 * 1000)
#define RELAY_DATA_BLOCK_MS (3 * 60 * 1000)
#define RELAY_DATA_FINAL_MS (10 * 60 * 1000)
/* After QUIT the verdicts are made: wait for 221 only briefly. */
#define RELAY_QUIT_WAIT_MS (10 * 1000)
/* Message octets read from the queue file per write (the stuffed chunk is at most twice that). */
#define RELAY_CHUNK 16384

struct relay_run {
    const struct relay_target *t;
    struct relay_timeouts to;
    struct dconn *conn;
    struct smtp_client *sc;
    struct smtp_reply reply;
    char err[512];
};

static int or_default(int ms, int def)
{
    return ms > 0 ? ms : def;
}

static int wait_ms(const struct relay_run *r, enum smtp_client_wait w)
{
    switch (w) {
    case SMTPC_WAIT_GREETING:
        return r->to.greeting;
    case SMTPC_WAIT_DATA_INIT:
        return r->to.data_init;
    case SMTPC_WAIT_DATA_FINAL:
        return r->to.data_final;
    case SMTPC_WAIT_COMMAND:
        break;
    }
    return r->to.command;
}

/* The connection failed while doing `doing`: every recipient still open is a temporary failure. */
static void transport_failed(struct relay_run *r, enum dconn_status st, const char *doing,
                             int timeout_ms)
{
    char text[700];
    const char *enh = st == DCONN_MALFORMED ? "4.5.0" : "4.4.2";
    if (st == DCONN_TIMEOUT)
        snprintf(text, sizeof text, "timeout: nothing within %d ms %s", timeout_ms, doing);
    else
        snprintf(text, sizeof text, "%s %s", r->err, doing);
    smtp_client_abort(r->sc, enh, text);
}

static bool read_reply(struct relay_run *r, enum smtp_client_wait w)
{
    int ms = wait_ms(r, w);
    dconn_set_timeout(r->conn, ms);
    enum dconn_status st = dconn_read_reply(r->conn, &r->reply, r->err, sizeof r->err);
    if (st == DCONN_OK)
        return true;
    char doing[64];
    snprintf(doing, sizeof doing, "(waiting for the reply, stage %s)", smtp_client_stage(r->sc));
    transport_failed(r, st, doing, ms);
    return false;
}

static bool write_out(struct relay_run *r, const char *buf, size_t len, const char *shown, int ms)
{
    dconn_set_timeout(r->conn, ms);
    enum dconn_status st = dconn_write(r->conn, buf, len, shown, r->err, sizeof r->err);
    if (st == DCONN_OK)
        return true;
    char doing[64];
    snprintf(doing, sizeof doing, "(sending, stage %s)", smtp_client_stage(r->sc));
    transport_failed(r, st, doing, ms);
    return false;
}

/* The TLS handshake, then the verification the route asks for. */
static struct smtp_client_action do_tls(struct relay_run *r)
{
    const struct relay_target *t = r->t;
    char why[600];
    if (dconn_buffered(r->conn) > 0) /* RFC 3207 5: nothing may follow 220 before TLS */
        return smtp_client_tls_done(r->sc, false, "4.7.0",
                                    "the peer sent data after its reply to STARTTLS");
    dconn_set_timeout(r->conn, r->to.command);
    struct dtls_opts o = {
        .host = t->host, .cafile = t->cafile[0] != '\0' ? t->cafile : NULL, .insecure = !t->verify};
    struct dtls_info info;
    enum dconn_status st = dconn_start_tls(r->conn, &o, &info, r->err, sizeof r->err);
    if (st != DCONN_OK) {
        snprintf(why, sizeof why, "TLS handshake failed: %s", r->err);
        return smtp_client_tls_done(r->sc, false, "4.7.0", why);
    }
    if (t->verify && !info.chain_ok) {
        snprintf(why, sizeof why, "certificate verification failed: %s", info.chain_error);
        return smtp_client_tls_done(r->sc, false, "4.7.5", why);
    }
    if (t->verify && !info.host_ok) {
        snprintf(why, sizeof why,
                 "certificate verification failed: the certificate (%.200s) does not name %s",
                 info.subject, t->host);
        return smtp_client_tls_done(r->sc, false, "4.7.5", why);
    }
    return smtp_client_tls_done(r->sc, true, NULL, NULL);
}

/* size octets of the queue file, dot-stuffed, then the final dot. False when it failed (the dot
 * is then never sent, so the peer discards what it got). */
static bool send_message(struct relay_run *r, FILE *msg, uint64_t size)
{
    char in[RELAY_CHUNK];
    char out[2 * RELAY_CHUNK + 8];
    struct smtp_stuffer s;
    smtp_stuff_init(&s);
    uint64_t left = size;
    while (left > 0) {
        size_t want = left < sizeof in ? (size_t)left : sizeof in;
        size_t got = fread(in, 1, want, msg);
        if (got == 0) {
            char text[200];
            if (ferror(msg))
                snprintf(text, sizeof text, "reading the queued message: %s", strerror(errno));
            else
                snprintf(text, sizeof text, "the queued message ended after %llu of %llu octets",
                         (unsigned long long)(size - left), (unsigned long long)size);
            smtp_client_abort(r->sc, "4.3.0", text);
            return false;
        }
        left -= got;
        size_t n = smtp_client_stuff(&s, in, got, out);
        if (!write_out(r, out, n, NULL, r->to.data_block))
            return false;
    }
    size_t n = smtp_client_stuff_end(&s, out);
    return write_out(r, out, n, NULL, r->to.data_block);
}

/* Connects to the first address that answers. False when none did (verdicts made). */
static bool connect_any(struct relay_run *r, struct delivery_result *res)
{
    const struct relay_target *t = r->t;
    struct dconn_addr addrs[DCONN_ADDRS_MAX];
    size_t n = dconn_resolve(t->host, t->port, addrs, DCONN_ADDRS_MAX, r->err, sizeof r->err);
    if (n == 0) {
        smtp_client_abort(r->sc, "4.4.3", r->err);
        return false;
    }
    char errs[512] = "";
    for (size_t i = 0; i < n; i++) {
        snprintf(res->remote, sizeof res->remote, "%s[%s]:%s", t->host, addrs[i].text, t->port);
        dconn_set_timeout(r->conn, r->to.connect);
        enum dconn_status st = dconn_connect(r->conn, &addrs[i], r->err, sizeof r->err);
        if (st == DCONN_OK)
            return true;
        size_t used = strlen(errs);
        snprintf(errs + used, sizeof errs - used, "%s%s", used ? "; " : "", r->err);
    }
    smtp_client_abort(r->sc, "4.4.1", errs);
    return false;
}

void relay_deliver(const struct relay_target *target, const struct spool_envelope *env, FILE *msg,
                   struct delivery_result *res)
{
    res->remote[0] = '\0';
    res->auth_rejected = false;
    res->n_rcpts = env->n_rcpts;
    struct smtp_client_config cfg = {.lmtp = target->lmtp,
                                     .tls = target->tls,
                                     .auth = target->auth,
                                     .user = target->user,
                                     .secret = target->secret,
                                     .helo = target->helo};
    struct relay_run *r = calloc(1, sizeof *r);
    struct smtp_client *sc = smtp_client_new(&cfg, env, res);
    struct dconn *conn = dconn_new(RELAY_CONNECT_MS, NULL);
    if (conn != NULL)
        dconn_set_cancel(conn, target->cancel);
    if (r == NULL || sc == NULL || conn == NULL) {
        delivery_result_all(res, DELIVERY_TEMP, 0, "4.3.0", "connect",
                            "out of memory starting a delivery");
        goto out;
    }
    r->t = target;
    r->sc = sc;
    r->conn = conn;
    r->to.connect = or_default(target->timeouts.connect, RELAY_CONNECT_MS);
    r->to.greeting = or_default(target->timeouts.greeting, RELAY_GREETING_MS);
    r->to.command = or_default(target->timeouts.command, RELAY_COMMAND_MS);
    r->to.data_init = or_default(target->timeouts.data_init, RELAY_DATA_INIT_MS);
    r->to.data_block = or_default(target->timeouts.data_block, RELAY_DATA_BLOCK_MS);
    r->to.data_final = or_default(target->timeouts.data_final, RELAY_DATA_FINAL_MS);

    if (!connect_any(r, res))
        goto out;
    struct smtp_client_action a = smtp_client_start(sc);
    /* Each step answers one reply or one handshake; a transaction needs a few per recipient. */
    size_t steps_max = 64 + 4 * env->n_rcpts;
    for (size_t step = 0;; step++) {
        if (step >= steps_max) {
            smtp_client_abort(sc, "4.5.0", "the SMTP conversation did not end");
            break;
        }
        if (a.what == SMTPC_CLOSE)
            break;
        if (a.what == SMTPC_QUIT) {
            int ms = r->to.command < RELAY_QUIT_WAIT_MS ? r->to.command : RELAY_QUIT_WAIT_MS;
            dconn_set_timeout(conn, ms);
            if (dconn_write(conn, a.out, a.out_len, a.shown, r->err, sizeof r->err) == DCONN_OK)
                (void)dconn_read_reply(conn, &r->reply, r->err, sizeof r->err); /* 221 */
            break;
        }
        if (a.what == SMTPC_STARTTLS) {
            a = do_tls(r);
            continue;
        }
        if (a.what == SMTPC_SEND && !write_out(r, a.out, a.out_len, a.shown, r->to.command))
            break;
        if (a.what == SMTPC_DATA && !send_message(r, msg, env->size))
            break;
        if (!read_reply(r, a.wait))
            break;
        a = smtp_client_reply(sc, &r->reply);
    }
out:
    dconn_free(conn);
    smtp_client_free(sc);
    free(r);
}
