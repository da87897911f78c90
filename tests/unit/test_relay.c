/* test_relay.c: relay_deliver() against a scripted SMTP / LMTP server on 127.0.0.1 run in a
 * thread of the test: the exact bytes the relay sends (pipelined groups, dot-stuffing, CRLF,
 * the final dot), STARTTLS and implicit TLS with a throwaway self-signed certificate (made with
 * `openssl req`), certificate verification failures, AUTH PLAIN, LMTP per-recipient replies, and
 * transport failures: connection refused, timeouts, a peer that hangs up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base64.h"
#include "relay.h"

#define STEPS_MAX 16
#define IO_WAIT_MS 5000

struct step {
    const char *expect; /* the exact octets the relay must send next, or NULL */
    const char *reply;  /* what the server answers, or NULL */
    bool starttls;      /* after the reply: the TLS handshake (server side) */
    bool hang_up;       /* close after the reply */
    int hold_ms;        /* wait this long before replying */
};

struct server {
    int lfd;
    int port;
    bool implicit_tls;
    SSL_CTX *ctx;
    struct step steps[STEPS_MAX];
    size_t n_steps;
    pthread_t th;
    char got[65536]; /* every octet received */
    size_t got_len;
    char why[512]; /* "" when every step saw exactly what it expected */
};

static char g_dir[64];
static char g_cert[128], g_key[128];
static bool g_have_cert;

/* ---------------------------------------------------------------- the scripted server */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int srv_read(SSL *ssl, int fd, char *buf, size_t n)
{
    if (ssl != NULL)
        return SSL_read(ssl, buf, (int)n);
    return (int)recv(fd, buf, n, 0);
}

static int srv_write(SSL *ssl, int fd, const char *buf, size_t n)
{
    if (ssl != NULL)
        return SSL_write(ssl, buf, (int)n);
    return (int)send(fd, buf, n, MSG_NOSIGNAL);
}

/* Reads exactly n octets (appended to s->got). */
static bool srv_expect(struct server *s, SSL *ssl, int fd, size_t n)
{
    size_t have = 0;
    while (have < n) {
        if (s->got_len + 1 >= sizeof s->got)
            return false;
        size_t want = n - have;
        if (want > sizeof s->got - 1 - s->got_len)
            want = sizeof s->got - 1 - s->got_len;
        int r = srv_read(ssl, fd, s->got + s->got_len, want);
        if (r <= 0)
            return false;
        s->got_len += (size_t)r;
        have += (size_t)r;
    }
    s->got[s->got_len] = '\0';
    return true;
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    SSL *ssl = NULL;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, IO_WAIT_MS) != 1) {
        snprintf(s->why, sizeof s->why, "no connection");
        return NULL;
    }
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        snprintf(s->why, sizeof s->why, "accept: %s", strerror(errno));
        return NULL;
    }
    struct timeval tv = {.tv_sec = IO_WAIT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (s->implicit_tls) {
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
            snprintf(s->why, sizeof s->why, "implicit TLS handshake failed");
            goto done;
        }
    }
    for (size_t i = 0; i < s->n_steps; i++) {
        const struct step *st = &s->steps[i];
        if (st->expect != NULL) {
            size_t before = s->got_len;
            size_t n = strlen(st->expect);
            if (!srv_expect(s, ssl, fd, n) || memcmp(s->got + before, st->expect, n) != 0) {
                snprintf(s->why, sizeof s->why, "step %zu: expected \"%.200s\", got \"%.200s\"", i,
                         st->expect, s->got + before);
                goto done;
            }
        }
        if (st->hold_ms > 0)
            usleep((useconds_t)st->hold_ms * 1000);
        if (st->reply != NULL && srv_write(ssl, fd, st->reply, strlen(st->reply)) <= 0) {
            snprintf(s->why, sizeof s->why, "step %zu: write failed", i);
            goto done;
        }
        if (st->hang_up)
            goto done;
        if (st->starttls) {
            ssl = SSL_new(s->ctx);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) != 1) {
                snprintf(s->why, sizeof s->why, "step %zu: TLS handshake failed", i);
                goto done;
            }
        }
    }
    /* whatever follows the script (nothing, when it is complete) */
    char extra[256];
    int r = srv_read(ssl, fd, extra, sizeof extra);
    if (r > 0 && s->why[0] == '\0')
        snprintf(s->why, sizeof s->why, "unexpected after the script: \"%.*s\"", r, extra);
done:
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    return NULL;
}

static struct server *server_new(void)
{
    struct server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
    return s;
}

static void server_tls(struct server *s)
{
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(s->ctx, g_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(s->ctx, g_key, SSL_FILETYPE_PEM), 1);
}

static void step(struct server *s, const char *expect, const char *reply)
{
    assert_true(s->n_steps < STEPS_MAX);
    s->steps[s->n_steps++] = (struct step){.expect = expect, .reply = reply};
}

static void server_run(struct server *s)
{
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void server_join_free(struct server *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    free(s);
}

/* ---------------------------------------------------------------- the client side */

struct job {
    struct relay_target t;
    struct spool_envelope env;
    char *rcpts[4];
    char rbuf[4][64];
    struct delivery_rcpt_result rr[4];
    struct delivery_result res;
    const char *msg;
};

static struct job *job_new(const struct server *s, size_t n_rcpts, const char *msg)
{
    struct job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    snprintf(j->t.host, sizeof j->t.host, "127.0.0.1");
    snprintf(j->t.port, sizeof j->t.port, "%d", s ? s->port : 1);
    j->t.tls = RELAY_TLS_NONE;
    j->t.verify = true;
    snprintf(j->t.helo, sizeof j->t.helo, "client.test");
    j->t.timeouts = (struct relay_timeouts){.connect = 3000,
                                            .greeting = 3000,
                                            .command = 3000,
                                            .data_init = 3000,
                                            .data_block = 3000,
                                            .data_final = 3000};
    snprintf(j->env.sender, sizeof j->env.sender, "a@x.test");
    for (size_t i = 0; i < n_rcpts; i++) {
        snprintf(j->rbuf[i], sizeof j->rbuf[i], "%c@y.test", (char)('b' + i));
        j->rcpts[i] = j->rbuf[i];
    }
    j->env.rcpts = j->rcpts;
    j->env.n_rcpts = n_rcpts;
    snprintf(j->env.body, sizeof j->env.body, "7BIT");
    j->msg = msg;
    j->env.size = strlen(msg);
    j->res.rcpts = j->rr;
    j->res.n_rcpts = n_rcpts;
    return j;
}

static void run(struct job *j)
{
    FILE *f = fmemopen((void *)j->msg, strlen(j->msg) ? strlen(j->msg) : 1, "r");
    assert_non_null(f);
    relay_deliver(&j->t, &j->env, f, &j->res);
    fclose(f);
}

static void expect_rcpt(const struct job *j, size_t i, enum delivery_outcome o, int code,
                        const char *enh, const char *stage)
{
    assert_int_equal(j->rr[i].outcome, o);
    assert_int_equal(j->rr[i].code, code);
    assert_string_equal(j->rr[i].enhanced, enh);
    assert_string_equal(j->rr[i].stage, stage);
}

/* The server's verdict on the bytes, checked after the join. */
static void run_checked(struct server *s, struct job *j)
{
    server_run(s);
    run(j);
    pthread_join(s->th, NULL);
    char why[512];
    snprintf(why, sizeof why, "%s", s->why);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    free(s);
    if (why[0] != '\0')
        fail_msg("server: %s", why);
}

static const char MSG[] = "Subject: t\r\n\r\n.hidden\r\n..two\r\nend.\r\n.\r\n";
static const char MSG_STUFFED[] = "Subject: t\r\n\r\n..hidden\r\n...two\r\nend.\r\n..\r\n.\r\n";

/* ---------------------------------------------------------------- tests */

static void test_pipelined_relay(void **state)
{
    (void)state;
    struct server *s = server_new();
    char mail[200];
    snprintf(mail, sizeof mail,
             "MAIL FROM:<a@x.test> SIZE=%zu\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
             "DATA\r\n",
             strlen(MSG));
    step(s, NULL, "220 sink ESMTP\r\n");
    step(s, "EHLO client.test\r\n", "250-sink\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 \r\n");
    step(s, mail, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
    step(s, MSG_STUFFED, "250 2.0.0 queued as 1\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 2, MSG);
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    expect_rcpt(j, 1, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    char remote[64];
    snprintf(remote, sizeof remote, "127.0.0.1[127.0.0.1]:%s", j->t.port);
    assert_string_equal(j->res.remote, remote);
    free(j);
}

static void test_no_pipelining_bare_lf(void **state)
{
    (void)state;
    struct server *s = server_new();
    step(s, NULL, "220 old\r\n");
    step(s, "EHLO client.test\r\n", "250-old\r\n250 8BITMIME\r\n");
    step(s, "MAIL FROM:<a@x.test>\r\n", "250 ok\r\n");
    step(s, "RCPT TO:<b@y.test>\r\n", "250 ok\r\n");
    step(s, "DATA\r\n", "354 go\r\n");
    step(s, "a\r\n..b\r\n..c\r\n.\r\n", "250 ok\r\n"); /* bare LF, no final CRLF */
    step(s, "QUIT\r\n", "221 bye\r\n");
    /* the queue holds CRLF; this message checks the repairs anyway */
    struct job *j = job_new(s, 1, "a\n.b\r\n.c");
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    free(j);
}

static void tls_steps(struct server *s, bool auth)
{
    step(s, NULL, "220 tls.test\r\n");
    step(s, "EHLO client.test\r\n", "250-tls.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
    s->steps[s->n_steps] =
        (struct step){.expect = "STARTTLS\r\n", .reply = "220 2.0.0 ready\r\n", .starttls = true};
    s->n_steps++;
    step(s, "EHLO client.test\r\n",
         auth ? "250-tls.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"
              : "250-tls.test\r\n250 PIPELINING\r\n");
}

static void test_starttls_verified(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    tls_steps(s, false);
    step(s, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n354 go\r\n");
    step(s, MSG_STUFFED, "250 2.0.0 ok\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_REQUIRED;
    snprintf(j->t.cafile, sizeof j->t.cafile, "%s", g_cert);
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    free(j);
}

static void test_starttls_auth_plain(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    tls_steps(s, true);
    char b64[64], line[100];
    b64_encode((const uint8_t *)"\0u@x.test\0pw", 12, b64, sizeof b64);
    snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", b64);
    step(s, line, "235 2.7.0 ok\r\n");
    step(s, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n354 go\r\n");
    step(s, MSG_STUFFED, "250 2.0.0 ok\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_REQUIRED;
    snprintf(j->t.cafile, sizeof j->t.cafile, "%s", g_cert);
    j->t.auth = RELAY_AUTH_PLAIN;
    snprintf(j->t.user, sizeof j->t.user, "u@x.test");
    j->t.secret = "pw";
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    assert_false(j->res.auth_rejected);
    free(j);
}

static void test_starttls_auth_rejected(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    tls_steps(s, true);
    char b64[64], line[100];
    b64_encode((const uint8_t *)"\0u@x.test\0wrong", 15, b64, sizeof b64);
    snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", b64);
    step(s, line, "535 5.7.8 bad credentials\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 2, MSG);
    j->t.tls = RELAY_TLS_REQUIRED;
    snprintf(j->t.cafile, sizeof j->t.cafile, "%s", g_cert);
    j->t.auth = RELAY_AUTH_PLAIN;
    snprintf(j->t.user, sizeof j->t.user, "u@x.test");
    j->t.secret = "wrong";
    run_checked(s, j);
    assert_true(j->res.auth_rejected);
    expect_rcpt(j, 0, DELIVERY_TEMP, 535, "4.7.0", "auth");
    expect_rcpt(j, 1, DELIVERY_TEMP, 535, "4.7.0", "auth");
    assert_null(strstr(j->rr[0].text, "wrong"));
    free(j);
}

static void test_starttls_unverified_chain(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    tls_steps(s, false);
    s->n_steps--; /* the handshake is where it ends */
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_REQUIRED; /* the system store does not know the throwaway cert */
    server_run(s);
    run(j);
    server_join_free(s);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.7.5", "starttls");
    assert_non_null(strstr(j->rr[0].text, "certificate"));
    free(j);
}

static void test_starttls_wrong_name(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    tls_steps(s, false);
    s->n_steps--;
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_REQUIRED;
    snprintf(j->t.host, sizeof j->t.host, "localhost"); /* the cert names 127.0.0.1 only */
    snprintf(j->t.cafile, sizeof j->t.cafile, "%s", g_cert);
    server_run(s);
    run(j);
    server_join_free(s);
    /* localhost may resolve to ::1 first (refused): the relay goes on to 127.0.0.1 */
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.7.5", "starttls");
    assert_non_null(strstr(j->rr[0].text, "does not name localhost"));
    free(j);
}

static void test_starttls_unverified_allowed(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    tls_steps(s, false);
    step(s, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n354 go\r\n");
    step(s, MSG_STUFFED, "250 2.0.0 ok\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_OPPORTUNISTIC;
    j->t.verify = false;
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    free(j);
}

static void test_implicit_tls(void **state)
{
    (void)state;
    if (!g_have_cert)
        skip();
    struct server *s = server_new();
    server_tls(s);
    s->implicit_tls = true;
    step(s, NULL, "220 tls.test\r\n");
    step(s, "EHLO client.test\r\n", "250 tls.test\r\n");
    step(s, "MAIL FROM:<a@x.test>\r\n", "250 ok\r\n");
    step(s, "RCPT TO:<b@y.test>\r\n", "250 ok\r\n");
    step(s, "DATA\r\n", "354 go\r\n");
    step(s, MSG_STUFFED, "250 2.0.0 ok\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_IMPLICIT;
    snprintf(j->t.cafile, sizeof j->t.cafile, "%s", g_cert);
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    free(j);
}

static void test_tls_required_not_offered(void **state)
{
    (void)state;
    struct server *s = server_new();
    step(s, NULL, "220 x\r\n");
    step(s, "EHLO client.test\r\n", "250-x\r\n250 PIPELINING\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 1, MSG);
    j->t.tls = RELAY_TLS_REQUIRED;
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.7.4", "starttls");
    free(j);
}

static void test_lmtp(void **state)
{
    (void)state;
    struct server *s = server_new();
    step(s, NULL, "220 lmtp ready\r\n");
    step(s, "LHLO client.test\r\n", "250-lmtp\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n");
    step(s,
         "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
         "RCPT TO:<d@y.test>\r\nDATA\r\n",
         "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 <c@y.test> User doesn't exist\r\n"
         "250 2.1.5 ok\r\n354 go\r\n");
    step(s, MSG_STUFFED, "250 2.0.0 <b@y.test> Saved\r\n451 4.2.0 <d@y.test> Internal error\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 3, MSG);
    j->t.lmtp = true;
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    expect_rcpt(j, 1, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    expect_rcpt(j, 2, DELIVERY_TEMP, 451, "4.2.0", "dot");
    free(j);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct server *s = server_new();
    int port = s->port;
    close(s->lfd); /* nobody listens there now */
    free(s);
    struct job *j = job_new(NULL, 2, MSG);
    snprintf(j->t.port, sizeof j->t.port, "%d", port);
    run(j);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.4.1", "connect");
    expect_rcpt(j, 1, DELIVERY_TEMP, 0, "4.4.1", "connect");
    assert_non_null(strstr(j->rr[0].text, "refused"));
    free(j);
}

static void test_unresolvable(void **state)
{
    (void)state;
    struct job *j = job_new(NULL, 1, MSG);
    snprintf(j->t.host, sizeof j->t.host, "no-such-host.invalid");
    run(j);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.4.3", "connect");
    free(j);
}

static void test_greeting_timeout(void **state)
{
    (void)state;
    struct server *s = server_new();
    s->steps[s->n_steps++] = (struct step){.hold_ms = 1500, .hang_up = true};
    struct job *j = job_new(s, 1, MSG);
    j->t.timeouts.greeting = 200;
    server_run(s);
    long long t0 = now_ms();
    run(j);
    long long took = now_ms() - t0;
    server_join_free(s);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.4.2", "greeting");
    assert_non_null(strstr(j->rr[0].text, "200 ms"));
    assert_true(took < 1400);
    free(j);
}

static void test_data_final_timeout(void **state)
{
    (void)state;
    struct server *s = server_new();
    step(s, NULL, "220 x\r\n");
    step(s, "EHLO client.test\r\n", "250-x\r\n250 PIPELINING\r\n");
    step(s, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n354 go\r\n");
    s->steps[s->n_steps++] = (struct step){.expect = MSG_STUFFED, .hold_ms = 1500, .hang_up = true};
    struct job *j = job_new(s, 1, MSG);
    j->t.timeouts.data_final = 300;
    server_run(s);
    run(j);
    server_join_free(s);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.4.2", "dot");
    free(j);
}

static void test_peer_hangs_up(void **state)
{
    (void)state;
    struct server *s = server_new();
    step(s, NULL, "220 x\r\n");
    step(s, "EHLO client.test\r\n", "250 x\r\n");
    s->steps[s->n_steps++] = (struct step){.expect = "MAIL FROM:<a@x.test>\r\n", .hang_up = true};
    struct job *j = job_new(s, 2, MSG);
    server_run(s);
    run(j);
    server_join_free(s);
    expect_rcpt(j, 0, DELIVERY_TEMP, 0, "4.4.2", "mail");
    assert_non_null(strstr(j->rr[0].text, "closed"));
    free(j);
}

static void test_421_greeting(void **state)
{
    (void)state;
    struct server *s = server_new();
    s->steps[s->n_steps++] = (struct step){.reply = "421 4.3.2 too busy\r\n", .hang_up = false};
    struct job *j = job_new(s, 1, MSG);
    run_checked(s, j); /* no QUIT after 421: the server sees nothing more */
    expect_rcpt(j, 0, DELIVERY_TEMP, 421, "4.3.2", "greeting");
    free(j);
}

static void test_large_message(void **state)
{
    (void)state;
    /* several chunks: 3000 lines, every one starting with a dot */
    size_t lines = 3000;
    char *msg = malloc(lines * 12 + 1);
    char *stuffed = malloc(lines * 13 + 8);
    assert_non_null(msg);
    assert_non_null(stuffed);
    size_t m = 0, o = 0;
    for (size_t i = 0; i < lines; i++) {
        m += (size_t)sprintf(msg + m, ".line%05zu\r\n", i % 100000);
        o += (size_t)sprintf(stuffed + o, "..line%05zu\r\n", i % 100000);
    }
    memcpy(stuffed + o, ".\r\n", 4);
    struct server *s = server_new();
    step(s, NULL, "220 x\r\n");
    step(s, "EHLO client.test\r\n", "250-x\r\n250 PIPELINING\r\n");
    step(s, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n354 go\r\n");
    step(s, stuffed, "250 ok\r\n");
    step(s, "QUIT\r\n", "221 bye\r\n");
    struct job *j = job_new(s, 1, msg);
    run_checked(s, j);
    expect_rcpt(j, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    free(j);
    free(msg);
    free(stuffed);
}

/* ---------------------------------------------------------------- fixture */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_dir, sizeof g_dir, "/tmp/test_relay.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=relay.test -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             g_key, g_cert);
    g_have_cert = system(cmd) == 0;
    if (!g_have_cert)
        fprintf(stderr, "test_relay: openssl req failed; TLS tests skipped\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_cert);
    unlink(g_key);
    rmdir(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_relay),
        cmocka_unit_test(test_no_pipelining_bare_lf),
        cmocka_unit_test(test_starttls_verified),
        cmocka_unit_test(test_starttls_auth_plain),
        cmocka_unit_test(test_starttls_auth_rejected),
        cmocka_unit_test(test_starttls_unverified_chain),
        cmocka_unit_test(test_starttls_wrong_name),
        cmocka_unit_test(test_starttls_unverified_allowed),
        cmocka_unit_test(test_implicit_tls),
        cmocka_unit_test(test_tls_required_not_offered),
        cmocka_unit_test(test_lmtp),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_unresolvable),
        cmocka_unit_test(test_greeting_timeout),
        cmocka_unit_test(test_data_final_timeout),
        cmocka_unit_test(test_peer_hangs_up),
        cmocka_unit_test(test_421_greeting),
        cmocka_unit_test(test_large_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
