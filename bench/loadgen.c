/* loadgen.c: submitd's load generator (`make bench`, bench/run.sh). One thread per simulated
 * client, blocking sockets, OpenSSL for TLS. Speaks SMTP submission as a strict client: greeting,
 * EHLO, STARTTLS (RFC 3207) or implicit TLS (RFC 8314), EHLO again, AUTH PLAIN with an initial
 * response (RFC 4954, RFC 4616), MAIL/RCPT/DATA with dot-stuffing (RFC 5321 4.5.2), NOOP, RSET,
 * QUIT. Every reply code is checked; a message counts as sent only after its 250 at end of DATA.
 *
 * Modes:
 *   mail  each client opens connections (claimed from a shared count) and sends --per-conn
 *         messages on each; reports messages/s and per-transaction latency (MAIL sent to the 250
 *         after DATA) and per-connection latency (connect to the 221 after QUIT).
 *   noop  --clients threads repeatedly connect and AUTH (AUTH latency is reported) while one more
 *         client, authenticated once, sends NOOPs and reports their round-trip time: it shows
 *         whether password hashing stalls other sessions.
 *   idle  one thread with non-blocking sockets and epoll (loadgen_idle.c) opens --connections
 *         sessions up to their 235, --inflight at a time, holds them all open for --hold seconds
 *         sending nothing (the caller samples the server's memory meanwhile: --ready-file),
 *         then QUITs them: memory per idle authenticated connection.
 * Every run is bounded in count (--connections, --noops) and in time (--duration, --timeout,
 * --hold). Built together with loadgen_idle.c (shared declarations in loadgen.h).
 * The last line of output is "RESULT key=value ..." for scripts; the exit status is 0 when
 * nothing failed, 1 when something did, 2 on bad usage. `loadgen --self-test` tests the pure
 * parts (dot-stuffing, reply parsing, message generation, percentiles, the PLAIN blob). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define LG_CLIENTS_MAX 1024
#define LG_DURATION_MAX 3600 /* seconds: no run may ask for more */
#define LG_CONNECTIONS_MAX 1000000
#define LG_MSG_SIZE_MIN 256
#define LG_MSG_SIZE_MAX (16 * 1024 * 1024)
#define LG_REPLY_TEXT_MAX 4096 /* all lines of one (EHLO) reply */
#define LG_BODY_LINE_LEN 76    /* characters per generated body line */

struct lg_stats {
    struct lg_vec txn, conn, auth, noop;
    long msgs_ok, msgs_failed, conns_ok, conns_failed, auths_ok, noops_ok, noops_failed;
    long fail_codes[600]; /* by reply code; LG_CODE_IO for I/O and protocol errors */
    double last_txn_end;  /* when this client's last message was accepted (ms) */
};

struct lg_conn {
    int fd;
    SSL *ssl;
    char buf[16384];
    size_t off, len;
    int code;                     /* the last reply's code, -1 after an I/O or protocol error */
    char text[LG_REPLY_TEXT_MAX]; /* the last reply, lines joined by '\n' */
};

struct lg_run {
    const struct lg_opts *o;
    SSL_CTX *ctx;
    double deadline;
    atomic_long next_conn;
    atomic_int auth_clients_running;
    pthread_barrier_t ready; /* --sync-start: every client's first session is open */
    pthread_barrier_t go;    /* --sync-start: the server's CPU was sampled; send */
    double mail_t0;          /* --sync-start: when the barrier let the clients go */
    double mail_cpu0;        /* --server-pid: the server's CPU ms then */
};

struct lg_client {
    struct lg_run *run;
    int index;
    bool noop_client;
    struct lg_stats st;
    pthread_t tid;
};

double lg_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        fprintf(stderr, "loadgen: clock_gettime(CLOCK_MONOTONIC) failed: %s\n", strerror(errno));
        exit(2);
    }
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* utime + stime of process pid in ms (fields 14 and 15 of /proc/PID/stat, after the ")" that
 * ends the command name), or NAN when it cannot be read. */
static double lg_proc_cpu_ms(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot open %s: %s\n", path, strerror(errno));
        return NAN;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    if (fclose(f) != 0)
        fprintf(stderr, "loadgen: close of %s failed: %s\n", path, strerror(errno));
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    long tick = sysconf(_SC_CLK_TCK);
    if (p == NULL || tick <= 0 ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        fprintf(stderr, "loadgen: cannot parse %s\n", path);
        return NAN;
    }
    return (double)(ut + st) * 1000.0 / (double)tick;
}

/* The first number printed by the shell command cmd (--cpu-cmd: the CPU ms of a server made of
 * several processes), or NAN when it cannot be run or prints no number. */
static double lg_cmd_cpu_ms(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        fprintf(stderr, "loadgen: cannot run --cpu-cmd %s: %s\n", cmd, strerror(errno));
        return NAN;
    }
    double ms = NAN;
    if (fscanf(p, "%lf", &ms) != 1)
        ms = NAN;
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || isnan(ms)) {
        fprintf(stderr, "loadgen: --cpu-cmd %s failed or printed no number\n", cmd);
        return NAN;
    }
    return ms;
}

/* The server's CPU ms: --cpu-cmd when given, else --server-pid. */
static double lg_server_cpu_ms(const struct lg_opts *o)
{
    return o->cpu_cmd != NULL ? lg_cmd_cpu_ms(o->cpu_cmd) : lg_proc_cpu_ms(o->server_pid);
}

void lg_vec_push(struct lg_vec *v, double x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        double *nv = realloc(v->v, cap * sizeof(*nv));
        if (nv == NULL) {
            fprintf(stderr, "loadgen: realloc of %zu samples failed: %s\n", cap, strerror(errno));
            exit(2);
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static void lg_vec_append(struct lg_vec *dst, const struct lg_vec *src)
{
    for (size_t i = 0; i < src->n; i++)
        lg_vec_push(dst, src->v[i]);
}

static int lg_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted vector; NAN when empty. */
static double lg_percentile(const struct lg_vec *v, double p)
{
    if (v->n == 0)
        return NAN;
    size_t rank = (size_t)ceil(p / 100.0 * (double)v->n);
    if (rank < 1)
        rank = 1;
    if (rank > v->n)
        rank = v->n;
    return v->v[rank - 1];
}

/* --- pure protocol helpers (tested by --self-test) --- */

/* Parses one reply line: "DDD " (last line), "DDD-" (more follow) or "DDD" alone (last).
 * Returns the code, or -1 when the line is not a reply line. */
int lg_parse_reply_line(const char *line, bool *last)
{
    for (int i = 0; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return -1;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code < 200 || code > 599)
        return -1;
    if (line[3] == '\0' || line[3] == ' ')
        *last = true;
    else if (line[3] == '-')
        *last = false;
    else
        return -1;
    return code;
}

/* Copies a message into out with RFC 5321 4.5.2 transparency: a '.' at the start of a line is
 * doubled. The message must end with CRLF; the ".\r\n" terminator is not added. out needs room
 * for 2 * n bytes. Returns the bytes written. */
static size_t lg_dot_stuff(const char *in, size_t n, char *out)
{
    size_t o = 0;
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        if (line_start && in[i] == '.')
            out[o++] = '.';
        out[o++] = in[i];
        line_start = in[i] == '\n';
    }
    return o;
}

/* Builds a message of exactly `size` octets into out (room for size bytes): headers, then body
 * lines of LG_BODY_LINE_LEN characters, every 7th starting with '.' and every 13th being a lone
 * '.', so dot-stuffing is exercised. Returns 0, or -1 when size cannot hold the headers. */
static int lg_make_message(size_t size, const char *from, const char *rcpt, char *out)
{
    int h = snprintf(out, size,
                     "From: <%s>\r\nTo: <%s>\r\nSubject: submitd bench message\r\n"
                     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
                     from, rcpt);
    if (h < 0 || (size_t)h + 2 >= size)
        return -1;
    size_t len = (size_t)h;
    for (unsigned line = 1; size - len > LG_BODY_LINE_LEN + 2 + 2; line++) {
        size_t n = LG_BODY_LINE_LEN;
        if (line % 13 == 0)
            n = 1;
        for (size_t i = 0; i < n; i++)
            out[len + i] = (char)('a' + (line + i) % 26);
        if (line % 7 == 0 || line % 13 == 0)
            out[len] = '.';
        len += n;
        out[len++] = '\r';
        out[len++] = '\n';
    }
    size_t rest = size - len - 2; /* the last line fills the message exactly */
    for (size_t i = 0; i < rest; i++)
        out[len + i] = 'z';
    len += rest;
    out[len++] = '\r';
    out[len++] = '\n';
    return 0;
}

/* base64("" NUL user NUL password) into out (NUL-terminated). Returns 0, or -1 when too long. */
int lg_plain_blob(const char *user, const char *password, char *out, size_t outlen)
{
    unsigned char raw[1024];
    size_t ul = strlen(user), pl = strlen(password);
    if (ul + pl + 2 > sizeof(raw) || 4 * ((ul + pl + 2 + 2) / 3) + 1 > outlen)
        return -1;
    raw[0] = '\0';
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, password, pl);
    EVP_EncodeBlock((unsigned char *)out, raw, (int)(ul + pl + 2));
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

/* Replaces the first "%d" in pattern with index. */
void lg_expand_user(const char *pattern, int index, char *out, size_t outlen)
{
    const char *p = strstr(pattern, "%d");
    if (p == NULL) {
        snprintf(out, outlen, "%s", pattern);
        return;
    }
    snprintf(out, outlen, "%.*s%d%s", (int)(p - pattern), pattern, index, p + 2);
}

/* True when an EHLO reply (lines joined by '\n', each "250-KEYWORD params") has the keyword,
 * and, when param is not NULL, that parameter after it. */
bool lg_ehlo_has(const char *text, const char *keyword, const char *param)
{
    size_t kl = strlen(keyword);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll >= 4 + kl && strncasecmp(line + 4, keyword, kl) == 0 &&
            (ll == 4 + kl || line[4 + kl] == ' ')) {
            if (param == NULL)
                return true;
            size_t pl = strlen(param);
            for (size_t i = 4 + kl; i + pl <= ll; i++)
                if (line[i - 1] == ' ' && strncasecmp(line + i, param, pl) == 0 &&
                    (i + pl == ll || line[i + pl] == ' '))
                    return true;
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

/* --- connection I/O --- */

static void lg_fail(struct lg_stats *st, int code)
{
    if (code < 0 || code >= 600)
        code = LG_CODE_IO;
    st->fail_codes[code]++;
}

static int lg_write(struct lg_conn *c, const char *buf, size_t n)
{
    while (n > 0) {
        if (c->ssl != NULL) {
            size_t w = 0;
            if (SSL_write_ex(c->ssl, buf, n, &w) != 1)
                return -1;
            buf += w;
            n -= w;
        } else {
            ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            buf += w;
            n -= (size_t)w;
        }
    }
    return 0;
}

/* Reads one CRLF-terminated line (without the CRLF). Returns 0, or -1 on error, EOF or a line
 * too long or ended by a bare LF. */
static int lg_read_line(struct lg_conn *c, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        while (c->off < c->len) {
            char ch = c->buf[c->off++];
            if (ch == '\n') {
                if (n == 0 || line[n - 1] != '\r')
                    return -1;
                line[n - 1] = '\0';
                return 0;
            }
            if (n + 1 >= cap)
                return -1;
            line[n++] = ch;
        }
        c->off = c->len = 0;
        if (c->ssl != NULL) {
            size_t r = 0;
            if (SSL_read_ex(c->ssl, c->buf, sizeof(c->buf), &r) != 1)
                return -1;
            c->len = r;
        } else {
            ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            c->len = (size_t)r;
        }
    }
}

/* Reads a whole (possibly multi-line) reply into c->text. Returns its code, or -1 on an I/O
 * error or a malformed reply (lines that disagree on the code count as malformed). */
static int lg_reply_read(struct lg_conn *c)
{
    char line[LG_LINE_MAX];
    size_t tl = 0;
    int code = -1;
    c->text[0] = '\0';
    for (int lines = 0; lines < 100; lines++) {
        bool last = false;
        if (lg_read_line(c, line, sizeof(line)) != 0)
            return -1;
        int lc = lg_parse_reply_line(line, &last);
        if (lc < 0 || (code >= 0 && lc != code))
            return -1;
        code = lc;
        int w = snprintf(c->text + tl, sizeof(c->text) - tl, "%s%s", tl ? "\n" : "", line);
        if (w > 0)
            tl = (size_t)w + tl < sizeof(c->text) ? tl + (size_t)w : sizeof(c->text) - 1;
        if (last)
            return code;
    }
    return -1;
}

static int lg_reply(struct lg_conn *c)
{
    c->code = lg_reply_read(c);
    return c->code;
}

/* Sends a command line (CRLF added) and reads the reply. Returns the code or -1. */
static int lg_cmd(struct lg_conn *c, const char *cmd)
{
    char line[LG_LINE_MAX];
    int n = snprintf(line, sizeof(line), "%s\r\n", cmd);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -1;
    int rc = lg_write(c, line, (size_t)n) == 0 ? lg_reply(c) : (c->code = -1);
    OPENSSL_cleanse(line, sizeof(line)); /* the line may have held a SASL response */
    return rc;
}

/* lg_cmd that expects `want`; records any other answer as a failure. */
static bool lg_expect(struct lg_conn *c, struct lg_stats *st, const char *cmd, int want,
                      const struct lg_opts *o, const char *what)
{
    int code = cmd ? lg_cmd(c, cmd) : lg_reply(c);
    if (code == want)
        return true;
    lg_fail(st, code);
    if (o->verbose)
        fprintf(stderr, "loadgen: %s: wanted %d, got %d: %s\n", what, want, code,
                code < 0 ? "I/O or protocol error" : c->text);
    return false;
}

static void lg_close(struct lg_conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0 && close(c->fd) != 0)
        fprintf(stderr, "loadgen: close(fd %d) failed: %s\n", c->fd, strerror(errno));
    c->fd = -1;
}

static int lg_connect(struct lg_conn *c, const struct lg_opts *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(o->host, o->port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "loadgen: getaddrinfo(%s, %s) failed: %s\n", o->host, o->port,
                gai_strerror(gai));
        return -1;
    }
    c->fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            fprintf(stderr, "loadgen: socket() failed: %s\n", strerror(errno));
            continue;
        }
        struct timeval tv = {.tv_sec = o->timeout};
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            fprintf(stderr, "loadgen: setsockopt on fd %d failed: %s\n", fd, strerror(errno));
            close(fd);
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (o->verbose)
                fprintf(stderr, "loadgen: connect to %s:%s failed: %s\n", o->host, o->port,
                        strerror(errno));
            close(fd);
            continue;
        }
        c->fd = fd;
    }
    freeaddrinfo(res);
    return c->fd >= 0 ? 0 : -1;
}

static int lg_tls_start(struct lg_conn *c, SSL_CTX *ctx, const struct lg_opts *o)
{
    if (c->off != c->len) /* the server sent something after 220 to STARTTLS: an injection */
        return -1;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, o->host) != 1 || SSL_connect(c->ssl) != 1) {
        if (o->verbose) {
            fprintf(stderr, "loadgen: TLS handshake with %s:%s failed: ", o->host, o->port);
            ERR_print_errors_fp(stderr);
            fputc('\n', stderr);
        }
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Opens a session up to the point where MAIL may be sent: connect, (implicit TLS), greeting,
 * EHLO, (STARTTLS, EHLO), (AUTH PLAIN). Returns true when every step got its expected reply. */
static bool lg_session_open(struct lg_conn *c, struct lg_client *cl, const char *user)
{
    const struct lg_opts *o = cl->run->o;
    struct lg_stats *st = &cl->st;
    char cmd[LG_LINE_MAX];
    if (lg_connect(c, o) != 0) {
        lg_fail(st, LG_CODE_IO);
        return false;
    }
    if (o->tls == LG_TLS_IMPLICIT && lg_tls_start(c, cl->run->ctx, o) != 0) {
        lg_fail(st, LG_CODE_IO);
        return false;
    }
    snprintf(cmd, sizeof(cmd), "EHLO %s", o->helo);
    if (!lg_expect(c, st, NULL, 220, o, "greeting") || !lg_expect(c, st, cmd, 250, o, "EHLO"))
        return false;
    if (o->tls == LG_TLS_STARTTLS) {
        if (!lg_ehlo_has(c->text, "STARTTLS", NULL)) {
            fprintf(stderr, "loadgen: the server does not offer STARTTLS\n");
            lg_fail(st, LG_CODE_IO);
            return false;
        }
        if (!lg_expect(c, st, "STARTTLS", 220, o, "STARTTLS"))
            return false;
        if (lg_tls_start(c, cl->run->ctx, o) != 0) {
            lg_fail(st, LG_CODE_IO);
            return false;
        }
        if (!lg_expect(c, st, cmd, 250, o, "EHLO after STARTTLS"))
            return false;
    }
    if (!o->auth)
        return true;
    if (!lg_ehlo_has(c->text, "AUTH", "PLAIN")) {
        fprintf(stderr, "loadgen: the server does not offer AUTH PLAIN here\n");
        lg_fail(st, LG_CODE_IO);
        return false;
    }
    char blob[1400];
    if (lg_plain_blob(user, o->password, blob, sizeof(blob)) != 0) {
        lg_fail(st, LG_CODE_IO);
        return false;
    }
    char auth[LG_LINE_MAX + 512];
    snprintf(auth, sizeof(auth), "AUTH PLAIN %s", blob);
    OPENSSL_cleanse(blob, sizeof(blob));
    double t0 = lg_now_ms();
    bool ok = lg_expect(c, st, auth, 235, o, "AUTH PLAIN");
    OPENSSL_cleanse(auth, sizeof(auth));
    if (ok) {
        lg_vec_push(&st->auth, lg_now_ms() - t0);
        st->auths_ok++;
    }
    return ok;
}

/* One transaction. Returns 1 when the message was accepted, 0 when refused with the session
 * still usable (after RSET), -1 when the session is unusable. */
static int lg_transaction(struct lg_conn *c, struct lg_client *cl, const char *from,
                          const char *rcpt, const char *wire, size_t wire_len)
{
    const struct lg_opts *o = cl->run->o;
    struct lg_stats *st = &cl->st;
    char cmd[LG_LINE_MAX];
    double t0 = lg_now_ms();
    snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", from);
    bool ok = lg_expect(c, st, cmd, 250, o, "MAIL");
    if (ok) {
        snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", rcpt);
        ok = lg_expect(c, st, cmd, 250, o, "RCPT");
    }
    if (ok)
        ok = lg_expect(c, st, "DATA", 354, o, "DATA");
    if (ok) {
        if (lg_write(c, wire, wire_len) != 0) {
            lg_fail(st, LG_CODE_IO);
            st->msgs_failed++;
            return -1;
        }
        ok = lg_expect(c, st, NULL, 250, o, "end of DATA");
    }
    if (ok) {
        st->last_txn_end = lg_now_ms();
        lg_vec_push(&st->txn, st->last_txn_end - t0);
        st->msgs_ok++;
        return 1;
    }
    st->msgs_failed++;
    /* After a refusal the session goes on only if it is still in step: RSET must answer 250. */
    if (c->code == 421 || c->code < 0)
        return -1;
    return lg_expect(c, st, "RSET", 250, o, "RSET") ? 0 : -1;
}

/* Runs one connection: open, per_conn messages (mail mode), QUIT. */
static void lg_connection(struct lg_client *cl, const char *user, const char *from,
                          const char *rcpt, const char *wire, size_t wire_len, int messages,
                          bool sync)
{
    const struct lg_opts *o = cl->run->o;
    struct lg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "loadgen: calloc of a connection failed: %s\n", strerror(errno));
        exit(2);
    }
    c->fd = -1;
    double t0 = lg_now_ms();
    bool ok = lg_session_open(c, cl, user);
    if (sync) { /* every client waits, failed or not, so that no one waits forever */
        int rc = pthread_barrier_wait(&cl->run->ready);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
            /* sampled while every client waits, so no message's work is in it (a --cpu-cmd
             * can take a while to run) */
            if (o->server_pid > 0 || o->cpu_cmd != NULL)
                cl->run->mail_cpu0 = lg_server_cpu_ms(o);
            cl->run->mail_t0 = lg_now_ms();
        } else if (rc != 0)
            fprintf(stderr, "loadgen: pthread_barrier_wait failed: %s\n", strerror(rc));
        rc = pthread_barrier_wait(&cl->run->go);
        if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
            fprintf(stderr, "loadgen: pthread_barrier_wait failed: %s\n", strerror(rc));
    }
    /* The first message of an open session is always sent (a connection that was started is
     * finished); later ones only before the deadline. */
    for (int m = 0; ok && m < messages && (m == 0 || lg_now_ms() < cl->run->deadline); m++)
        ok = lg_transaction(c, cl, from, rcpt, wire, wire_len) >= 0;
    if (ok)
        ok = lg_expect(c, &cl->st, "QUIT", 221, o, "QUIT");
    if (ok) {
        cl->st.conns_ok++;
        lg_vec_push(&cl->st.conn, lg_now_ms() - t0);
    } else {
        cl->st.conns_failed++;
    }
    lg_close(c);
    free(c);
}

/* The NOOP prober: one authenticated session, NOOPs until the AUTH clients are done, --noops
 * were sent, or the deadline. */
static void lg_noop_prober(struct lg_client *cl, const char *user)
{
    const struct lg_opts *o = cl->run->o;
    struct lg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "loadgen: calloc of a connection failed: %s\n", strerror(errno));
        exit(2);
    }
    c->fd = -1;
    bool ok = lg_session_open(c, cl, user);
    if (!ok)
        cl->st.conns_failed++;
    for (long i = 0; ok && i < o->noops && lg_now_ms() < cl->run->deadline; i++) {
        if (o->clients > 0 && atomic_load(&cl->run->auth_clients_running) == 0)
            break;
        double t0 = lg_now_ms();
        ok = lg_expect(c, &cl->st, "NOOP", 250, o, "NOOP");
        if (ok) {
            lg_vec_push(&cl->st.noop, lg_now_ms() - t0);
            cl->st.noops_ok++;
        } else {
            cl->st.noops_failed++;
            cl->st.conns_failed++;
        }
        if (ok && o->noop_interval_ms > 0) {
            struct timespec ts = {.tv_sec = o->noop_interval_ms / 1000,
                                  .tv_nsec = (long)(o->noop_interval_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
    }
    if (ok) {
        if (lg_expect(c, &cl->st, "QUIT", 221, o, "QUIT"))
            cl->st.conns_ok++;
        else
            cl->st.conns_failed++;
    }
    lg_close(c);
    free(c);
}

static void *lg_client_main(void *arg)
{
    struct lg_client *cl = arg;
    struct lg_run *run = cl->run;
    const struct lg_opts *o = run->o;
    char user[512], from[512], rcpt[512];
    lg_expand_user(o->user, cl->index, user, sizeof(user));
    lg_expand_user(o->from ? o->from : o->user, cl->index, from, sizeof(from));
    lg_expand_user(o->rcpt ? o->rcpt : o->user, cl->index, rcpt, sizeof(rcpt));
    if (cl->noop_client) {
        lg_noop_prober(cl, user);
        return NULL;
    }
    char *msg = NULL, *wire = NULL;
    size_t wire_len = 0;
    int messages = o->mode == LG_MODE_MAIL ? o->per_conn : 0;
    if (messages > 0) {
        msg = malloc(o->size);
        wire = malloc(2 * o->size + 3);
        if (msg == NULL || wire == NULL) {
            fprintf(stderr, "loadgen: malloc of a %zu-octet message failed\n", o->size);
            exit(2);
        }
        if (lg_make_message(o->size, from, rcpt, msg) != 0) {
            fprintf(stderr, "loadgen: --size %zu cannot hold the headers\n", o->size);
            exit(2);
        }
        wire_len = lg_dot_stuff(msg, o->size, wire);
        memcpy(wire + wire_len, ".\r\n", 3);
        wire_len += 3;
    }
    for (bool first = true;; first = false) {
        long n = atomic_fetch_add(&run->next_conn, 1);
        bool sync = first && o->sync_start; /* always run: the others wait for it */
        if (!sync && (n >= o->connections || lg_now_ms() >= run->deadline))
            break;
        lg_connection(cl, user, from, rcpt, wire, wire_len, messages, sync);
    }
    atomic_fetch_sub(&run->auth_clients_running, 1);
    free(msg);
    free(wire);
    return NULL;
}

/* --- self-test --- */

static int lg_checks, lg_check_failures;

static void lg_check(bool cond, const char *what)
{
    lg_checks++;
    if (!cond) {
        lg_check_failures++;
        fprintf(stderr, "self-test FAILED: %s\n", what);
    }
}

static bool lg_stuffed_is(const char *in, const char *want)
{
    char out[256];
    size_t n = lg_dot_stuff(in, strlen(in), out);
    return n == strlen(want) && memcmp(out, want, n) == 0;
}

static int lg_self_test(void)
{
    bool last = false;
    lg_check(lg_parse_reply_line("250 OK", &last) == 250 && last, "250 SP is a last line");
    lg_check(lg_parse_reply_line("250-SIZE", &last) == 250 && !last, "250- is not last");
    lg_check(lg_parse_reply_line("354", &last) == 354 && last, "bare code is a last line");
    lg_check(lg_parse_reply_line("25 OK", &last) == -1, "two digits are refused");
    lg_check(lg_parse_reply_line("2500OK", &last) == -1, "a 4th digit is refused");
    lg_check(lg_parse_reply_line("199 x", &last) == -1, "codes below 200 are refused");
    lg_check(lg_parse_reply_line("", &last) == -1, "an empty line is refused");

    lg_check(lg_stuffed_is(".\r\n", "..\r\n"), "a lone dot is doubled");
    lg_check(lg_stuffed_is("a\r\n.b\r\n", "a\r\n..b\r\n"), "a leading dot is doubled");
    lg_check(lg_stuffed_is("a.b\r\n", "a.b\r\n"), "an inner dot is kept");
    lg_check(lg_stuffed_is("..\r\n", "...\r\n"), "two leading dots become three");
    lg_check(lg_stuffed_is("x\r\n\r\n.\r\n", "x\r\n\r\n..\r\n"), "dot after an empty line");

    static char msg[4096], wire[2 * 4096];
    lg_check(lg_make_message(sizeof(msg), "a@b.example", "c@d.example", msg) == 0,
             "a 4 KiB message is made");
    bool crlf_only = msg[sizeof(msg) - 2] == '\r' && msg[sizeof(msg) - 1] == '\n';
    size_t longest = 0, cur = 0, dot_lines = 0, lone_dots = 0;
    for (size_t i = 0; i < sizeof(msg); i++) {
        if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
            crlf_only = false;
        if (msg[i] == '\r' && (i + 1 == sizeof(msg) || msg[i + 1] != '\n'))
            crlf_only = false;
        if (msg[i] == '\0')
            crlf_only = false;
        if ((i == 0 || msg[i - 1] == '\n') && msg[i] == '.') {
            dot_lines++;
            lone_dots += i + 2 < sizeof(msg) && msg[i + 1] == '\r';
        }
        cur = msg[i] == '\n' ? 0 : cur + 1;
        longest = cur > longest ? cur : longest;
    }
    lg_check(crlf_only, "the message has CRLF line ends only and ends with CRLF");
    lg_check(longest <= 999, "no message line is over 998 octets");
    lg_check(dot_lines >= 5 && lone_dots >= 2, "the message has lines that need stuffing");
    size_t wl = lg_dot_stuff(msg, sizeof(msg), wire);
    lg_check(wl == sizeof(msg) + dot_lines, "stuffing adds one octet per dot line");
    lg_check(strstr(wire, "\r\n.\r\n") == NULL, "a stuffed message has no end-of-data inside");
    lg_check(lg_make_message(40, "a@b.example", "c@d.example", msg) == -1, "too small refused");
    bool exact = true;
    for (size_t s = 300; s < 600; s++) {
        char *m = malloc(s);
        exact = exact && m != NULL && lg_make_message(s, "a@b", "c@d", m) == 0 &&
                m[s - 2] == '\r' && m[s - 1] == '\n' && memchr(m, '\0', s) == NULL;
        free(m);
    }
    lg_check(exact, "every size from 300 to 599 is made exactly");

    char blob[64];
    lg_check(lg_plain_blob("u@x", "pw", blob, sizeof(blob)) == 0 &&
                 strcmp(blob, "AHVAeABwdw==") == 0,
             "PLAIN blob is base64(NUL user NUL password)");
    lg_check(lg_plain_blob("u@x", "pw", blob, 8) == -1, "PLAIN blob refuses a short buffer");

    char u[64];
    lg_expand_user("bench%d@x", 7, u, sizeof(u));
    lg_check(strcmp(u, "bench7@x") == 0, "%d becomes the client index");
    lg_expand_user("user@x", 7, u, sizeof(u));
    lg_check(strcmp(u, "user@x") == 0, "a user without %d is kept");

    const char *ehlo = "250-mx.example\n250-STARTTLS\n250-AUTH LOGIN PLAIN XOAUTH2\n250 SIZE 1";
    lg_check(lg_ehlo_has(ehlo, "STARTTLS", NULL), "STARTTLS is found");
    lg_check(lg_ehlo_has(ehlo, "AUTH", "PLAIN"), "AUTH PLAIN is found");
    lg_check(!lg_ehlo_has(ehlo, "AUTH", "PLAINX"), "AUTH PLAINX is not found");
    lg_check(!lg_ehlo_has(ehlo, "AUTH", "OAUTHBEARER"), "AUTH OAUTHBEARER is not found");
    lg_check(!lg_ehlo_has(ehlo, "SIZ", NULL), "a keyword prefix is not a match");

    struct lg_vec v = {0};
    lg_check(isnan(lg_percentile(&v, 50)), "no samples give NAN");
    for (int i = 100; i >= 1; i--)
        lg_vec_push(&v, i);
    qsort(v.v, v.n, sizeof(double), lg_cmp_double);
    lg_check(lg_percentile(&v, 50) == 50 && lg_percentile(&v, 99) == 99 &&
                 lg_percentile(&v, 100) == 100 && lg_percentile(&v, 0) == 1,
             "nearest-rank percentiles of 1..100");
    free(v.v);

    printf("%d passed, %d failed\n", lg_checks - lg_check_failures, lg_check_failures);
    return lg_check_failures == 0 ? 0 : 1;
}

/* --- options, run, report --- */

static void lg_usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen --port PORT [options]\n"
            "       loadgen --self-test\n"
            "  --host HOST            server address (default 127.0.0.1)\n"
            "  --port PORT            server port\n"
            "  --tls none|starttls|implicit   (default starttls)\n"
            "  --mode mail|noop|idle  (default mail)\n"
            "  --user ADDRESS         SASL user and default sender; %%d = client index\n"
            "  --password PW          (default: $LOADGEN_PASSWORD)\n"
            "  --from ADDR --rcpt ADDR   envelope (default: the user)\n"
            "  --helo NAME            EHLO argument (default loadgen.invalid)\n"
            "  --no-auth              do not AUTH (default: AUTH once per connection)\n"
            "  --clients N            concurrent clients (default 20)\n"
            "  --per-conn N           messages per connection (default 50)\n"
            "  --connections N        total connections, all clients (default: clients)\n"
            "  --duration S           stop starting work after S seconds (default 30)\n"
            "  --timeout S            per-read/write socket timeout (default 15)\n"
            "  --size OCTETS          message size before stuffing (default 4096)\n"
            "  --noops N              noop mode: at most N NOOPs (default 100000)\n"
            "  --noop-interval-ms MS  pause between NOOPs (default 2)\n"
            "  --cafile FILE          verify the server certificate (default: not verified)\n"
            "  --sync-start           mail mode: open every client's first session (AUTH\n"
            "                         included), then start all transactions at once and\n"
            "                         report msgs/s from then on (needs connections >= clients)\n"
            "  --server-pid PID       with --sync-start: report the server's CPU ms per message\n"
            "                         from then on (from /proc/PID/stat)\n"
            "  --cpu-cmd CMD          like --server-pid for a server of several processes: the\n"
            "                         shell command CMD prints the server's CPU ms so far\n"
            "  --hold S               idle mode: hold the open connections S seconds (default 30)\n"
            "  --inflight N           idle mode: at most N sessions between connect and 235\n"
            "                         at once (default 200)\n"
            "  --ready-file FILE      idle mode: made (\"open=N\") once every connection is\n"
            "                         open; removing it ends the hold early\n"
            "  --verbose              print each failure\n");
}

static long lg_num(const char *name, const char *s, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "loadgen: %s must be a number from %ld to %ld, not '%s'\n", name, min, max,
                s);
        exit(2);
    }
    return v;
}

/* One row per option: 's' string, 'i' int, 'l' long, 'd' seconds as double, 't' flag true,
 * 'f' flag false. */
struct lg_optdef {
    const char *name;
    char kind;
    void *ptr;
    long min, max;
};

/* The index of value in the NULL-terminated names, or -1. */
static int lg_pick(const char *value, const char *const *names)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(value, names[i]) == 0)
            return i;
    return -1;
}

static void lg_parse_opts(int argc, char **argv, struct lg_opts *o)
{
    *o = (struct lg_opts){.host = "127.0.0.1",
                          .tls = LG_TLS_STARTTLS,
                          .mode = LG_MODE_MAIL,
                          .helo = "loadgen.invalid",
                          .clients = 20,
                          .per_conn = 50,
                          .connections = -1,
                          .duration = 30,
                          .timeout = 15,
                          .size = 4096,
                          .auth = true,
                          .noops = 100000,
                          .noop_interval_ms = 2,
                          .hold = 30,
                          .inflight = 200};
    const char *tls = "starttls", *mode = "mail";
    long size = 4096;
    bool help = false;
    const struct lg_optdef defs[] = {
        {"host", 's', &o->host, 0, 0},
        {"port", 's', &o->port, 0, 0},
        {"tls", 's', &tls, 0, 0},
        {"mode", 's', &mode, 0, 0},
        {"user", 's', &o->user, 0, 0},
        {"password", 's', &o->password, 0, 0},
        {"from", 's', &o->from, 0, 0},
        {"rcpt", 's', &o->rcpt, 0, 0},
        {"helo", 's', &o->helo, 0, 0},
        {"cafile", 's', &o->cafile, 0, 0},
        {"no-auth", 'f', &o->auth, 0, 0},
        {"verbose", 't', &o->verbose, 0, 0},
        {"sync-start", 't', &o->sync_start, 0, 0},
        {"server-pid", 'l', &o->server_pid, 1, LONG_MAX},
        {"cpu-cmd", 's', &o->cpu_cmd, 0, 0},
        {"help", 't', &help, 0, 0},
        {"clients", 'i', &o->clients, 0, LG_CLIENTS_MAX},
        {"per-conn", 'i', &o->per_conn, 0, 1000000},
        {"connections", 'l', &o->connections, 0, LG_CONNECTIONS_MAX},
        {"duration", 'd', &o->duration, 1, LG_DURATION_MAX},
        {"timeout", 'i', &o->timeout, 1, 600},
        {"size", 'l', &size, LG_MSG_SIZE_MIN, LG_MSG_SIZE_MAX},
        {"noops", 'l', &o->noops, 1, 10000000},
        {"noop-interval-ms", 'i', &o->noop_interval_ms, 0, 10000},
        {"hold", 'd', &o->hold, 0, LG_DURATION_MAX},
        {"inflight", 'i', &o->inflight, 1, 100000},
        {"ready-file", 's', &o->ready_file, 0, 0},
    };
    enum { N_DEFS = sizeof(defs) / sizeof(defs[0]) };
    struct option longopts[N_DEFS + 1];
    for (int i = 0; i < N_DEFS; i++) {
        bool flag = defs[i].kind == 't' || defs[i].kind == 'f';
        longopts[i] =
            (struct option){defs[i].name, flag ? no_argument : required_argument, NULL, i + 1};
    }
    longopts[N_DEFS] = (struct option){NULL, 0, NULL, 0};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch < 1 || ch > N_DEFS) {
            lg_usage(stderr);
            exit(2);
        }
        const struct lg_optdef *d = &defs[ch - 1];
        char name[40];
        snprintf(name, sizeof(name), "--%s", d->name);
        switch (d->kind) {
        case 's':
            *(const char **)d->ptr = optarg;
            break;
        case 'i':
            *(int *)d->ptr = (int)lg_num(name, optarg, d->min, d->max);
            break;
        case 'l':
            *(long *)d->ptr = lg_num(name, optarg, d->min, d->max);
            break;
        case 'd':
            *(double *)d->ptr = (double)lg_num(name, optarg, d->min, d->max);
            break;
        default:
            *(bool *)d->ptr = d->kind == 't';
        }
    }
    if (help) {
        lg_usage(stdout);
        exit(0);
    }
    o->size = (size_t)size;
    int t = lg_pick(tls, (const char *[]){"none", "starttls", "implicit", NULL});
    int m = lg_pick(mode, (const char *[]){"mail", "noop", "idle", NULL});
    if (t < 0 || m < 0) {
        fprintf(stderr,
                "loadgen: --tls is none, starttls or implicit; --mode is mail, noop or idle\n");
        exit(2);
    }
    o->tls = (enum lg_tls)t;
    o->mode = (enum lg_mode)m;
    if (optind != argc || o->port == NULL || o->user == NULL) {
        fprintf(stderr, "loadgen: --port and --user are required, and no other arguments\n");
        lg_usage(stderr);
        exit(2);
    }
    lg_num("--port", o->port, 1, 65535);
    if (o->password == NULL)
        o->password = getenv("LOADGEN_PASSWORD");
    if (o->auth && o->password == NULL) {
        fprintf(stderr, "loadgen: AUTH needs --password or $LOADGEN_PASSWORD\n");
        exit(2);
    }
    if (o->connections < 0)
        o->connections = o->clients;
    if (o->mode == LG_MODE_NOOP && !o->auth) {
        fprintf(stderr, "loadgen: --mode noop measures AUTH and needs it\n");
        exit(2);
    }
    if (o->sync_start && (o->mode != LG_MODE_MAIL || o->connections < o->clients)) {
        fprintf(stderr, "loadgen: --sync-start is for mail mode with connections >= clients\n");
        exit(2);
    }
    if (o->mode == LG_MODE_IDLE && (o->clients == 0 || o->connections == 0)) {
        fprintf(stderr, "loadgen: --mode idle needs --clients (users) and --connections >= 1\n");
        exit(2);
    }
    if (o->mode == LG_MODE_MAIL && o->clients == 0) {
        fprintf(stderr, "loadgen: --mode mail needs at least one client\n");
        exit(2);
    }
}

static SSL_CTX *lg_ssl_ctx(const struct lg_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        fprintf(stderr, "loadgen: cannot make a TLS context: ");
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    if (o->cafile != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
            fprintf(stderr, "loadgen: cannot load CA file %s: ", o->cafile);
            ERR_print_errors_fp(stderr);
            exit(2);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* a bench against a self-signed cert */
    }
    return ctx;
}

void lg_print_lat(const char *name, struct lg_vec *v, double *p50, double *p99)
{
    if (v->n > 0) /* qsort wants a valid pointer even for no elements */
        qsort(v->v, v->n, sizeof(double), lg_cmp_double);
    *p50 = lg_percentile(v, 50);
    *p99 = lg_percentile(v, 99);
    if (v->n > 0)
        printf("  %-22s n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms\n", name, v->n, *p50, *p99,
               v->v[v->n - 1]);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
        return lg_self_test();
    struct lg_opts o;
    lg_parse_opts(argc, argv, &o);
    struct sigaction sa = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        fprintf(stderr, "loadgen: sigaction(SIGPIPE) failed: %s\n", strerror(errno));
        return 2;
    }
    struct lg_run run = {.o = &o};
    if (o.tls != LG_TLS_NONE)
        run.ctx = lg_ssl_ctx(&o);
    if (o.mode == LG_MODE_IDLE) {
        int rc = lg_idle_run(&o, run.ctx);
        SSL_CTX_free(run.ctx);
        return rc;
    }
    int n_threads = o.clients + (o.mode == LG_MODE_NOOP ? 1 : 0);
    struct lg_client *cl = calloc((size_t)n_threads, sizeof(*cl));
    if (cl == NULL) {
        fprintf(stderr, "loadgen: calloc of %d clients failed: %s\n", n_threads, strerror(errno));
        return 2;
    }
    atomic_init(&run.next_conn, 0);
    atomic_init(&run.auth_clients_running, o.clients);
    double t0 = lg_now_ms();
    run.deadline = t0 + o.duration * 1000.0;
    int berr = o.sync_start ? pthread_barrier_init(&run.ready, NULL, (unsigned)o.clients) : 0;
    if (berr == 0 && o.sync_start)
        berr = pthread_barrier_init(&run.go, NULL, (unsigned)o.clients);
    if (berr != 0) {
        fprintf(stderr, "loadgen: pthread_barrier_init failed: %s\n", strerror(berr));
        return 2;
    }
    int started = 0;
    for (int i = 0; i < n_threads; i++) {
        cl[i].run = &run;
        cl[i].index = i;
        cl[i].noop_client = i == o.clients;
        int err = pthread_create(&cl[i].tid, NULL, lg_client_main, &cl[i]);
        if (err != 0) {
            fprintf(stderr, "loadgen: pthread_create for client %d failed: %s\n", i, strerror(err));
            if (o.sync_start)
                exit(2); /* the started clients would wait for it at the barrier forever */
            atomic_store(&run.next_conn, LONG_MAX / 2); /* the started ones stop early */
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        int err = pthread_join(cl[i].tid, NULL);
        if (err != 0)
            fprintf(stderr, "loadgen: pthread_join(%d) failed: %s\n", i, strerror(err));
    }
    double elapsed_s = (lg_now_ms() - t0) / 1000.0;

    struct lg_stats all = {0};
    for (int i = 0; i < started; i++) {
        struct lg_stats *s = &cl[i].st;
        lg_vec_append(&all.txn, &s->txn);
        lg_vec_append(&all.conn, &s->conn);
        lg_vec_append(&all.auth, &s->auth);
        lg_vec_append(&all.noop, &s->noop);
        all.msgs_ok += s->msgs_ok;
        all.msgs_failed += s->msgs_failed;
        all.conns_ok += s->conns_ok;
        all.conns_failed += s->conns_failed;
        all.auths_ok += s->auths_ok;
        all.noops_ok += s->noops_ok;
        all.noops_failed += s->noops_failed;
        if (s->last_txn_end > all.last_txn_end)
            all.last_txn_end = s->last_txn_end;
        for (int c = 0; c < 600; c++)
            all.fail_codes[c] += s->fail_codes[c];
        free(s->txn.v);
        free(s->conn.v);
        free(s->auth.v);
        free(s->noop.v);
    }
    bool incomplete = started < n_threads;
    long failures = all.msgs_failed + all.conns_failed + all.noops_failed + (incomplete ? 1 : 0);
    double msgs_per_s = elapsed_s > 0 ? (double)all.msgs_ok / elapsed_s : 0;
    /* --sync-start: from the barrier to the last accepted message, AUTH excluded */
    double mail_s = (all.last_txn_end - run.mail_t0) / 1000.0;
    double mail_msgs_per_s = o.sync_start && mail_s > 0 ? (double)all.msgs_ok / mail_s : NAN;
    double mail_cpu_per_msg = NAN;
    if (o.sync_start && (o.server_pid > 0 || o.cpu_cmd != NULL) && all.msgs_ok > 0)
        mail_cpu_per_msg = (lg_server_cpu_ms(&o) - run.mail_cpu0) / (double)all.msgs_ok;
    if (o.sync_start &&
        (pthread_barrier_destroy(&run.ready) != 0 || pthread_barrier_destroy(&run.go) != 0))
        fprintf(stderr, "loadgen: pthread_barrier_destroy failed\n");
    double auths_per_s = elapsed_s > 0 ? (double)all.auths_ok / elapsed_s : 0;

    printf("loadgen: mode=%s tls=%s clients=%d elapsed=%.2f s\n",
           o.mode == LG_MODE_MAIL ? "mail" : "noop",
           o.tls == LG_TLS_NONE       ? "none"
           : o.tls == LG_TLS_STARTTLS ? "starttls"
                                      : "implicit",
           o.clients, elapsed_s);
    printf("  messages ok=%ld failed=%ld (%.1f/s)  connections ok=%ld failed=%ld  AUTH ok=%ld "
           "(%.1f/s)  NOOP ok=%ld failed=%ld\n",
           all.msgs_ok, all.msgs_failed, msgs_per_s, all.conns_ok, all.conns_failed, all.auths_ok,
           auths_per_s, all.noops_ok, all.noops_failed);
    double tp50, tp99, cp50, cp99, ap50, ap99, np50, np99;
    lg_print_lat("transaction (MAIL..250)", &all.txn, &tp50, &tp99);
    lg_print_lat("connection", &all.conn, &cp50, &cp99);
    lg_print_lat("AUTH", &all.auth, &ap50, &ap99);
    lg_print_lat("NOOP", &all.noop, &np50, &np99);
    if (failures > 0) {
        printf("  failures by reply:");
        for (int c = 0; c < 600; c++)
            if (all.fail_codes[c] > 0)
                printf(" %s%.0d=%ld", c == LG_CODE_IO ? "io" : "", c, all.fail_codes[c]);
        printf("\n");
    }
    if (o.sync_start)
        printf("  after every session was open: %.1f msgs/s over %.2f s\n", mail_msgs_per_s,
               mail_s);
    printf("RESULT mode=%s elapsed_s=%.3f msgs_ok=%ld msgs_failed=%ld msgs_per_s=%.1f "
           "mail_msgs_per_s=%.1f server_cpu_ms_per_msg=%.2f "
           "txn_p50_ms=%.2f txn_p99_ms=%.2f conns_ok=%ld conns_failed=%ld conn_p50_ms=%.2f "
           "conn_p99_ms=%.2f auths_ok=%ld auths_per_s=%.1f auth_p50_ms=%.2f auth_p99_ms=%.2f "
           "noops_ok=%ld noop_p50_ms=%.2f noop_p99_ms=%.2f failures=%ld\n",
           o.mode == LG_MODE_MAIL ? "mail" : "noop", elapsed_s, all.msgs_ok, all.msgs_failed,
           msgs_per_s, mail_msgs_per_s, mail_cpu_per_msg, tp50, tp99, all.conns_ok,
           all.conns_failed, cp50, cp99, all.auths_ok, auths_per_s, ap50, ap99, all.noops_ok, np50,
           np99, failures);
    free(all.txn.v);
    free(all.conn.v);
    free(all.auth.v);
    free(all.noop.v);
    free(cl);
    if (run.ctx != NULL)
        SSL_CTX_free(run.ctx);
    return failures == 0 ? 0 : 1;
}
