/* loadgen_idle.c: loadgen's idle mode (`--mode idle`; scenario d of bench/run.sh and
 * bench/peers.sh): many authenticated SMTP submission sessions held open at once, to measure the
 * server's memory per idle connection. One thread, non-blocking sockets, epoll (level-triggered),
 * OpenSSL in non-blocking mode. Each connection is a small state machine that speaks as strictly
 * as the other modes: connect, (implicit TLS, RFC 8314), greeting 220, EHLO 250, (STARTTLS 220
 * (RFC 3207), TLS handshake, EHLO 250), AUTH PLAIN with an initial response 235 (RFC 4954,
 * RFC 4616); then it sends nothing until the hold ends, and finally QUIT 221. No pipelining: a
 * reply followed by more octets is a protocol error (after STARTTLS it would be an injection).
 *
 * Sessions are opened --inflight at a time. When every one is open (or failed), the line
 * "READY open=N" goes to stdout and --ready-file is made; the connections are then held for
 * --hold seconds or until the caller removes the ready file, whichever comes first. A connection
 * the server closes or writes to while held counts as dropped (a failure). Every step has the
 * --timeout; no session is started after --duration. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

#define IDLE_BUF 2048      /* one reply (an EHLO reply is a few hundred octets) */
#define IDLE_FD_RESERVE 32 /* stdio, the epoll descriptor, the ready file */
#define IDLE_EVENTS 256    /* epoll events per wait */
#define IDLE_TICK_MS 100   /* timeouts and the ready file are checked this often */

enum idle_state {
    ST_CONNECTING, /* non-blocking connect() in progress */
    ST_TLS,        /* TLS handshake (implicit or after STARTTLS) */
    ST_GREETING,
    ST_EHLO,
    ST_STARTTLS,
    ST_EHLO_TLS,
    ST_AUTH,
    ST_OPEN, /* authenticated and held: nothing is sent, nothing is expected */
    ST_QUIT,
    ST_DONE,  /* 221 after QUIT */
    ST_FAILED /* closed after a failure */
};

static const char *const idle_state_names[] = {
    "connect",    "TLS handshake", "greeting", "EHLO", "STARTTLS", "EHLO after STARTTLS",
    "AUTH PLAIN", "held",          "QUIT",     "done", "failed"};

struct idle_conn {
    int fd;
    SSL *ssl;
    enum idle_state state;
    int index;          /* the user is --user with %d = index modulo --clients */
    uint32_t events;    /* registered with epoll */
    double deadline;    /* of the current step (ms) */
    double auth_sent;   /* when AUTH was sent (ms) */
    size_t len;         /* octets in buf */
    char buf[IDLE_BUF]; /* the reply being read */
};

struct idle_run {
    const struct lg_opts *o;
    SSL_CTX *ctx;
    int ep;
    struct addrinfo *addr;
    struct idle_conn *conns;
    long started, inflight, open, dropped, quit_ok, failed;
    long fail_codes[600]; /* by reply code; LG_CODE_IO for I/O, timeouts, protocol errors */
    struct lg_vec auth;
};

/* Raises the soft RLIMIT_NOFILE to the hard limit; -1 when even that is below need. */
static int idle_fd_limit(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "loadgen: getrlimit(RLIMIT_NOFILE) failed: %s\n", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t soft = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "loadgen: setrlimit(RLIMIT_NOFILE, %llu) failed: %s\n",
                    (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = soft;
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
        fprintf(stderr,
                "loadgen: --connections needs %ld file descriptors, but RLIMIT_NOFILE is %llu "
                "(hard limit %llu): raise it (ulimit -n) or open fewer\n",
                need, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
        return -1;
    }
    return 0;
}

static void idle_close(struct idle_conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0 && close(c->fd) != 0)
        fprintf(stderr, "loadgen: close(fd %d) failed: %s\n", c->fd, strerror(errno));
    c->fd = -1;
}

/* Counts a failure of c (reply code, or LG_CODE_IO with why) and closes it. */
static void idle_fail(struct idle_run *r, struct idle_conn *c, int code, const char *why)
{
    if (c->state < ST_OPEN)
        r->inflight--;
    else if (c->state == ST_OPEN)
        r->dropped++;
    if (r->o->verbose)
        fprintf(stderr, "loadgen: connection %d: %s: %s (code %d)\n", c->index,
                idle_state_names[c->state], why, code);
    r->fail_codes[code > 0 && code < 600 ? code : LG_CODE_IO]++;
    r->failed++;
    c->state = ST_FAILED;
    idle_close(c);
}

/* Registers interest in events with epoll (EPOLL_CTL_MOD when it changed). */
static int idle_want(struct idle_run *r, struct idle_conn *c, uint32_t events)
{
    if (c->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        fprintf(stderr, "loadgen: epoll_ctl(MOD, fd %d) failed: %s\n", c->fd, strerror(errno));
        return -1;
    }
    c->events = events;
    return 0;
}

/* Sends a command line (CRLF added) in one piece. A short write of a command this small means
 * the socket's buffer is full, which an idle client never sees: -1. */
static int idle_send(struct idle_conn *c, const char *cmd)
{
    char line[LG_LINE_MAX + 512];
    int n = snprintf(line, sizeof(line), "%s\r\n", cmd);
    int rc = -1;
    if (n > 0 && (size_t)n < sizeof(line)) {
        if (c->ssl != NULL) {
            size_t w = 0;
            rc = SSL_write_ex(c->ssl, line, (size_t)n, &w) == 1 && w == (size_t)n ? 0 : -1;
            ERR_clear_error();
        } else {
            ssize_t w = send(c->fd, line, (size_t)n, MSG_NOSIGNAL);
            rc = w == n ? 0 : -1;
        }
    }
    OPENSSL_cleanse(line, sizeof(line)); /* it may have held a SASL response */
    return rc;
}

/* Reads what is there into c->buf. Returns 1 when something was read, 0 when it would block
 * (interest updated for what TLS wants), -1 on EOF, an error or a full buffer. */
static int idle_fill(struct idle_run *r, struct idle_conn *c)
{
    size_t room = sizeof(c->buf) - c->len;
    if (room == 0)
        return -1;
    if (c->ssl != NULL) {
        size_t n = 0;
        if (SSL_read_ex(c->ssl, c->buf + c->len, room, &n) == 1) {
            c->len += n;
            return 1;
        }
        int e = SSL_get_error(c->ssl, 0);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ)
            return idle_want(r, c, EPOLLIN) == 0 ? 0 : -1;
        if (e == SSL_ERROR_WANT_WRITE)
            return idle_want(r, c, EPOLLOUT) == 0 ? 0 : -1;
        return -1;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
    if (n > 0) {
        c->len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

/* Looks for one whole reply at the start of c->buf. Returns its code and puts its lines, joined
 * by '\n', into text (for lg_ehlo_has); 0 when more is needed; -1 when malformed (a bad line,
 * lines that disagree on the code, a line without CRLF, or octets after the reply). */
static int idle_reply(struct idle_conn *c, char *text, size_t cap)
{
    size_t pos = 0, tl = 0;
    int code = -1;
    text[0] = '\0';
    for (;;) {
        char *nl = memchr(c->buf + pos, '\n', c->len - pos);
        if (nl == NULL)
            return 0;
        size_t ll = (size_t)(nl - (c->buf + pos));
        if (ll == 0 || c->buf[pos + ll - 1] != '\r' || ll - 1 >= LG_LINE_MAX)
            return -1;
        char line[LG_LINE_MAX];
        memcpy(line, c->buf + pos, ll - 1);
        line[ll - 1] = '\0';
        bool last = false;
        int lc = lg_parse_reply_line(line, &last);
        if (lc < 0 || (code >= 0 && lc != code))
            return -1;
        code = lc;
        int w = snprintf(text + tl, cap - tl, "%s%s", tl ? "\n" : "", line);
        if (w < 0 || (size_t)w >= cap - tl)
            return -1;
        tl += (size_t)w;
        pos += ll + 1;
        if (last) {
            if (pos != c->len)
                return -1;
            c->len = 0;
            return code;
        }
    }
}

/* Starts the TLS handshake on c's socket. */
static int idle_tls_start(struct idle_run *r, struct idle_conn *c)
{
    c->ssl = SSL_new(r->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, r->o->host) != 1) {
        ERR_clear_error();
        return -1;
    }
    /* an idle session needs no 16 KiB read and write buffers of its own between records */
    SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    c->state = ST_TLS;
    return 0;
}

/* After EHLO (after STARTTLS, when TLS is used): AUTH PLAIN, or open without --no-auth. */
static int idle_auth(struct idle_run *r, struct idle_conn *c, const char *ehlo)
{
    const struct lg_opts *o = r->o;
    if (!o->auth) {
        c->state = ST_OPEN;
        r->inflight--;
        r->open++;
        return 0;
    }
    if (!lg_ehlo_has(ehlo, "AUTH", "PLAIN")) {
        fprintf(stderr, "loadgen: the server does not offer AUTH PLAIN here\n");
        return -1;
    }
    char user[512], blob[1400], cmd[LG_LINE_MAX + 512];
    lg_expand_user(o->user, c->index % o->clients, user, sizeof(user));
    int rc = lg_plain_blob(user, o->password, blob, sizeof(blob));
    if (rc == 0) {
        snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s", blob);
        c->auth_sent = lg_now_ms();
        c->state = ST_AUTH;
        rc = idle_send(c, cmd);
    }
    OPENSSL_cleanse(blob, sizeof(blob));
    OPENSSL_cleanse(cmd, sizeof(cmd));
    return rc;
}

/* Acts on one whole reply in the state c is in. Returns 0, or -1 (counted, closed). */
static int idle_on_reply(struct idle_run *r, struct idle_conn *c, int code, const char *text)
{
    const struct lg_opts *o = r->o;
    static const int want[] = {[ST_GREETING] = 220, [ST_EHLO] = 250, [ST_STARTTLS] = 220,
                               [ST_EHLO_TLS] = 250, [ST_AUTH] = 235, [ST_QUIT] = 221};
    if (c->state == ST_OPEN) {
        idle_fail(r, c, code, "the server spoke to an idle session");
        return -1;
    }
    if (code != want[c->state]) {
        idle_fail(r, c, code, text);
        return -1;
    }
    char ehlo[LG_LINE_MAX];
    snprintf(ehlo, sizeof(ehlo), "EHLO %s", o->helo);
    int rc = 0;
    switch (c->state) {
    case ST_GREETING:
        c->state = ST_EHLO;
        rc = idle_send(c, ehlo);
        break;
    case ST_EHLO:
        if (o->tls != LG_TLS_STARTTLS) {
            rc = idle_auth(r, c, text);
        } else if (!lg_ehlo_has(text, "STARTTLS", NULL)) {
            fprintf(stderr, "loadgen: the server does not offer STARTTLS\n");
            rc = -1;
        } else {
            c->state = ST_STARTTLS;
            rc = idle_send(c, "STARTTLS");
        }
        break;
    case ST_STARTTLS:
        rc = idle_tls_start(r, c);
        break;
    case ST_EHLO_TLS:
        rc = idle_auth(r, c, text);
        break;
    case ST_AUTH:
        lg_vec_push(&r->auth, lg_now_ms() - c->auth_sent);
        c->state = ST_OPEN;
        r->inflight--;
        r->open++;
        break;
    case ST_QUIT:
        c->state = ST_DONE;
        r->quit_ok++;
        idle_close(c);
        return 0;
    default:
        rc = -1;
    }
    if (rc != 0)
        idle_fail(r, c, LG_CODE_IO, "could not send the next command");
    return rc;
}

/* Drives c as far as it goes without blocking. */
static void idle_advance(struct idle_run *r, struct idle_conn *c)
{
    const struct lg_opts *o = r->o;
    for (;;) {
        if (c->state == ST_CONNECTING) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                idle_fail(r, c, LG_CODE_IO, err ? strerror(err) : "getsockopt failed");
                return;
            }
            if (idle_want(r, c, EPOLLIN) != 0) {
                idle_fail(r, c, LG_CODE_IO, "epoll_ctl failed");
                return;
            }
            c->state = ST_GREETING;
            if (o->tls == LG_TLS_IMPLICIT && idle_tls_start(r, c) != 0) {
                idle_fail(r, c, LG_CODE_IO, "cannot start TLS");
                return;
            }
            continue;
        }
        if (c->state == ST_TLS) {
            int rc = SSL_connect(c->ssl);
            if (rc == 1) {
                ERR_clear_error();
                if (idle_want(r, c, EPOLLIN) != 0) {
                    idle_fail(r, c, LG_CODE_IO, "epoll_ctl failed");
                    return;
                }
                if (o->tls == LG_TLS_IMPLICIT) {
                    c->state = ST_GREETING;
                    continue;
                }
                char ehlo[LG_LINE_MAX];
                snprintf(ehlo, sizeof(ehlo), "EHLO %s", o->helo);
                c->state = ST_EHLO_TLS;
                if (idle_send(c, ehlo) != 0) {
                    idle_fail(r, c, LG_CODE_IO, "could not send EHLO");
                    return;
                }
                continue;
            }
            int e = SSL_get_error(c->ssl, rc);
            ERR_clear_error();
            uint32_t ev = e == SSL_ERROR_WANT_READ    ? EPOLLIN
                          : e == SSL_ERROR_WANT_WRITE ? EPOLLOUT
                                                      : 0;
            if (ev == 0 || idle_want(r, c, ev) != 0)
                idle_fail(r, c, LG_CODE_IO, "TLS handshake failed");
            return;
        }
        if (c->state == ST_DONE || c->state == ST_FAILED)
            return;
        int got = idle_fill(r, c);
        if (got < 0) {
            idle_fail(r, c, LG_CODE_IO,
                      c->state == ST_OPEN ? "the server closed an idle session" : "read failed");
            return;
        }
        char text[IDLE_BUF];
        int code = idle_reply(c, text, sizeof(text));
        if (code < 0) {
            idle_fail(r, c, LG_CODE_IO, "malformed reply");
            return;
        }
        if (code == 0) {
            if (got == 0)
                return; /* wait for more */
            continue;
        }
        if (idle_on_reply(r, c, code, text) != 0 || c->state == ST_DONE)
            return;
        c->deadline = lg_now_ms() + o->timeout * 1000.0; /* the next step's */
    }
}

/* Starts connection i: a non-blocking connect(). */
static int idle_start(struct idle_run *r, long i)
{
    struct idle_conn *c = &r->conns[i];
    c->index = (int)i;
    c->fd = -1;
    c->state = ST_CONNECTING;
    c->deadline = lg_now_ms() + r->o->timeout * 1000.0;
    r->started++;
    r->inflight++;
    int fd = socket(r->addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loadgen: socket() for connection %ld failed: %s\n", i, strerror(errno));
        idle_fail(r, c, LG_CODE_IO, "socket failed");
        return -1;
    }
    c->fd = fd;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        fprintf(stderr, "loadgen: setsockopt(TCP_NODELAY) failed: %s\n", strerror(errno));
        idle_fail(r, c, LG_CODE_IO, "setsockopt failed");
        return -1;
    }
    if (connect(fd, r->addr->ai_addr, r->addr->ai_addrlen) != 0 && errno != EINPROGRESS) {
        idle_fail(r, c, LG_CODE_IO, strerror(errno));
        return 0; /* refused: counted, the others go on */
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fprintf(stderr, "loadgen: epoll_ctl(ADD, fd %d) failed: %s\n", fd, strerror(errno));
        idle_fail(r, c, LG_CODE_IO, "epoll_ctl failed");
        return -1;
    }
    c->events = EPOLLOUT;
    return 0;
}

/* Waits up to IDLE_TICK_MS for events and drives the connections that have some; then fails
 * every connection in a step whose deadline passed. */
static int idle_poll(struct idle_run *r)
{
    struct epoll_event evs[IDLE_EVENTS];
    int n = epoll_wait(r->ep, evs, IDLE_EVENTS, IDLE_TICK_MS);
    if (n < 0 && errno != EINTR) {
        fprintf(stderr, "loadgen: epoll_wait failed: %s\n", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        idle_advance(r, evs[i].data.ptr);
    double now = lg_now_ms();
    for (long i = 0; i < r->started; i++) {
        struct idle_conn *c = &r->conns[i];
        if ((c->state < ST_OPEN || c->state == ST_QUIT) && now > c->deadline)
            idle_fail(r, c, LG_CODE_IO, "timed out");
    }
    return 0;
}

/* Makes the ready file (through a temporary name, so the caller never reads half of it). */
static int idle_ready_file(const char *path, long n_open)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "open=%ld\n", n_open);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "loadgen: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void idle_report(struct idle_run *r, double elapsed_s, double open_s)
{
    const struct lg_opts *o = r->o;
    double ap50, ap99;
    printf("loadgen: mode=idle tls=%s connections=%ld elapsed=%.2f s\n",
           o->tls == LG_TLS_NONE       ? "none"
           : o->tls == LG_TLS_STARTTLS ? "starttls"
                                       : "implicit",
           o->connections, elapsed_s);
    printf("  opened %ld of %ld in %.2f s (%.0f/s); dropped while held %ld; QUIT ok %ld; "
           "failed %ld\n",
           r->open, o->connections, open_s, open_s > 0 ? (double)r->open / open_s : 0, r->dropped,
           r->quit_ok, r->failed);
    lg_print_lat("AUTH", &r->auth, &ap50, &ap99);
    long not_started = o->connections - r->started;
    long failures = r->failed + not_started;
    if (failures > 0) {
        printf("  failures by reply:");
        for (int c = 0; c < 600; c++)
            if (r->fail_codes[c] > 0)
                printf(" %s%.0d=%ld", c == LG_CODE_IO ? "io" : "", c, r->fail_codes[c]);
        if (not_started > 0)
            printf(" not-started=%ld", not_started);
        printf("\n");
    }
    printf("RESULT mode=idle elapsed_s=%.3f open_s=%.3f held=%ld conns_ok=%ld conns_failed=%ld "
           "dropped=%ld auths_ok=%zu auth_p50_ms=%.2f auth_p99_ms=%.2f failures=%ld\n",
           elapsed_s, open_s, r->open, r->quit_ok, failures, r->dropped, r->auth.n, ap50, ap99,
           failures);
}

int lg_idle_run(const struct lg_opts *o, SSL_CTX *ctx)
{
    if (idle_fd_limit(o->connections + IDLE_FD_RESERVE) != 0)
        return 2;
    struct idle_run r = {.o = o, .ctx = ctx};
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(o->host, o->port, &hints, &r.addr);
    if (gai != 0) {
        fprintf(stderr, "loadgen: getaddrinfo(%s, %s) failed: %s\n", o->host, o->port,
                gai_strerror(gai));
        return 2;
    }
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    r.conns = calloc((size_t)o->connections, sizeof(*r.conns));
    if (r.ep < 0 || r.conns == NULL) {
        fprintf(stderr, "loadgen: cannot set up %ld connections: %s\n", o->connections,
                strerror(errno));
        return 2;
    }
    double t0 = lg_now_ms(), start_by = t0 + o->duration * 1000.0;
    /* open: --inflight at a time, none started after --duration */
    int rc = 0;
    while (rc == 0 && (r.inflight > 0 || (r.started < o->connections && lg_now_ms() < start_by))) {
        while (rc == 0 && r.started < o->connections && r.inflight < o->inflight &&
               lg_now_ms() < start_by)
            rc = idle_start(&r, r.started);
        if (rc == 0)
            rc = idle_poll(&r);
    }
    double open_s = (lg_now_ms() - t0) / 1000.0;
    /* hold */
    printf("READY open=%ld\n", r.open);
    if (fflush(stdout) != 0)
        fprintf(stderr, "loadgen: cannot write stdout: %s\n", strerror(errno));
    bool have_file = o->ready_file != NULL && idle_ready_file(o->ready_file, r.open) == 0;
    double hold_end = lg_now_ms() + o->hold * 1000.0;
    while (rc == 0 && lg_now_ms() < hold_end) {
        if (have_file && access(o->ready_file, F_OK) != 0)
            break; /* the caller is done sampling */
        rc = idle_poll(&r);
    }
    if (have_file && unlink(o->ready_file) != 0 && errno != ENOENT)
        fprintf(stderr, "loadgen: cannot remove %s: %s\n", o->ready_file, strerror(errno));
    /* QUIT every held connection */
    double quit_by = lg_now_ms() + o->timeout * 1000.0;
    for (long i = 0; i < r.started; i++) {
        struct idle_conn *c = &r.conns[i];
        if (c->state != ST_OPEN)
            continue;
        c->state = ST_QUIT;
        c->deadline = quit_by;
        if (idle_send(c, "QUIT") != 0)
            idle_fail(&r, c, LG_CODE_IO, "could not send QUIT");
    }
    while (rc == 0 && r.quit_ok + r.failed < r.started && lg_now_ms() <= quit_by + IDLE_TICK_MS)
        rc = idle_poll(&r);
    for (long i = 0; i < r.started; i++)
        if (r.conns[i].state == ST_QUIT)
            idle_fail(&r, &r.conns[i], LG_CODE_IO, "no reply to QUIT");
        else
            idle_close(&r.conns[i]);
    idle_report(&r, (lg_now_ms() - t0) / 1000.0, open_s);
    long failures = r.failed + (o->connections - r.started);
    free(r.auth.v);
    free(r.conns);
    freeaddrinfo(r.addr);
    if (close(r.ep) != 0)
        fprintf(stderr, "loadgen: close(epoll) failed: %s\n", strerror(errno));
    if (rc != 0)
        return 2;
    return failures == 0 ? 0 : 1;
}
