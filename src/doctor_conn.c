/* doctor_conn.c: smtp-doctor's connection layer: getaddrinfo over IPv4 and IPv6, a connect and
 * every read and write bounded by a timeout (non-blocking sockets and poll), SMTP reply lines
 * (RFC 5321 4.2), TLS for STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with OpenSSL,
 * certificate verification with the host name check of RFC 6125, and the transcript. */
#include "doctor_conn.h"

#include <stdatomic.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; leave room for servers that exceed it. */
#define DCONN_LINE_MAX 4096
#define DCONN_INBUF 16384

/* How often a wait looks at the cancel flag. */
#define DCONN_CANCEL_SLICE_MS 250

struct dconn {
    int fd;
    int timeout_ms;
    const atomic_bool *cancel; /* dconn_set_cancel */
    SSL_CTX *ctx;
    SSL *ssl;
    struct dtranscript *t;
    char in[DCONN_INBUF];
    size_t in_len;
    unsigned char first[16]; /* the first bytes OpenSSL read, to spot a plaintext greeting */
    size_t first_len;
};

void dtranscript_add(struct dtranscript *t, const char *prefix, const char *text)
{
    if (t == NULL)
        return;
    size_t need = strlen(prefix) + strlen(text) + 2;
    if (t->len + need + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + need + 1 > cap)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (b == NULL)
            return; /* the transcript is a convenience; a failure drops a line */
        t->buf = b;
        t->cap = cap;
    }
    t->len += (size_t)snprintf(t->buf + t->len, t->cap - t->len, "%s%s\n", prefix, text);
}

void dtranscript_free(struct dtranscript *t)
{
    free(t->buf);
    memset(t, 0, sizeof *t);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    const void *src = sa->sa_family == AF_INET6
                          ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                          : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    inet_ntop(sa->sa_family, src, host, sizeof host);
    snprintf(out, cap, "%s", host);
}

size_t dconn_resolve(const char *host, const char *port, struct dconn_addr *out, size_t max,
                     char *err, size_t errlen)
{
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY) {
        hints.ai_flags = 0; /* AI_ADDRCONFIG hides ::1 on hosts with only loopback IPv6 */
        rc = getaddrinfo(host, port, &hints, &res);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return 0;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof out[n].sa)
            continue;
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || (out[i].sa_len == ai->ai_addrlen &&
                          memcmp(out[i].sa, ai->ai_addr, ai->ai_addrlen) == 0);
        if (dup)
            continue;
        out[n].family = ai->ai_family;
        memcpy(out[n].sa, ai->ai_addr, ai->ai_addrlen);
        out[n].sa_len = (unsigned)ai->ai_addrlen;
        addr_text(ai->ai_addr, out[n].text, sizeof out[n].text);
        n++;
    }
    freeaddrinfo(res);
    if (n == 0)
        snprintf(err, errlen, "%s has no IPv4 or IPv6 address", host);
    return n;
}

struct dconn *dconn_new(int timeout_ms, struct dtranscript *t)
{
    struct dconn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    c->t = t;
    return c;
}

void dconn_free(struct dconn *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl); /* best effort close_notify; the socket is non-blocking */
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* Waits for events on the socket until deadline. 1 ready, 0 timeout, -1 error (in err). */
void dconn_set_cancel(struct dconn *c, const atomic_bool *cancel)
{
    c->cancel = cancel;
}

static int wait_fd(struct dconn *c, short events, long long deadline, char *err, size_t errlen)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = c->fd, .events = events};
        /* with a cancel flag, wake up a few times a second to look at it */
        int slice =
            c->cancel != NULL && left > DCONN_CANCEL_SLICE_MS ? DCONN_CANCEL_SLICE_MS : (int)left;
        int rc = poll(&p, 1, slice);
        if (rc > 0)
            return 1;
        if (c->cancel != NULL && atomic_load(c->cancel)) {
            snprintf(err, errlen, "abandoned: the server is stopping");
            return -1;
        }
        if (rc == 0) {
            if (slice < left)
                continue;
            return 0;
        }
        if (errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

enum dconn_status dconn_connect(struct dconn *c, const struct dconn_addr *a, char *err,
                                size_t errlen)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->in_len = 0;
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket for %s: %s", a->text, strerror(errno));
        return DCONN_ERROR;
    }
    c->fd = fd;
    long long deadline = now_ms() + c->timeout_ms;
    if (connect(fd, (const struct sockaddr *)a->sa, a->sa_len) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "connect to %s: %s", a->text, strerror(errno));
            return DCONN_ERROR;
        }
        int rc = wait_fd(c, POLLOUT, deadline, err, errlen);
        if (rc < 0)
            return DCONN_ERROR;
        if (rc == 0) {
            snprintf(err, errlen, "connect to %s: no answer within %d ms", a->text, c->timeout_ms);
            return DCONN_TIMEOUT;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
            snprintf(err, errlen, "getsockopt SO_ERROR on %s: %s", a->text, strerror(errno));
            return DCONN_ERROR;
        }
        if (soerr != 0) {
            snprintf(err, errlen, "connect to %s: %s", a->text, strerror(soerr));
            return DCONN_ERROR;
        }
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        snprintf(err, errlen, "setsockopt TCP_NODELAY: %s", strerror(errno));
        return DCONN_ERROR;
    }
    return DCONN_OK;
}

static void tls_reason(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[200] = "no detail";
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", what, reason);
}

/* Reads what is available into the input buffer. */
static enum dconn_status fill(struct dconn *c, long long deadline, char *err, size_t errlen)
{
    if (c->in_len >= sizeof c->in) {
        snprintf(err, errlen, "reply line longer than %d octets", DCONN_LINE_MAX);
        return DCONN_MALFORMED;
    }
    for (;;) {
        short want = POLLIN;
        if (c->ssl != NULL) {
            ERR_clear_error();
            int n = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof c->in - c->in_len));
            if (n > 0) {
                c->in_len += (size_t)n;
                return DCONN_OK;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN) {
                snprintf(err, errlen, "the server closed the TLS connection");
                return DCONN_CLOSED;
            }
            if (e == SSL_ERROR_WANT_WRITE)
                want = POLLOUT;
            else if (e != SSL_ERROR_WANT_READ) {
                if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                    snprintf(err, errlen, "the server closed the connection%s%s", errno ? ": " : "",
                             errno ? strerror(errno) : "");
                    return DCONN_CLOSED;
                }
                tls_reason(err, errlen, "TLS read");
                return DCONN_ERROR;
            }
        } else {
            ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
            if (n > 0) {
                c->in_len += (size_t)n;
                return DCONN_OK;
            }
            if (n == 0) {
                snprintf(err, errlen, "the server closed the connection");
                return DCONN_CLOSED;
            }
            if (errno == ECONNRESET) {
                snprintf(err, errlen, "the server reset the connection");
                return DCONN_CLOSED;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(err, errlen, "recv: %s", strerror(errno));
                return DCONN_ERROR;
            }
        }
        int rc = wait_fd(c, want, deadline, err, errlen);
        if (rc < 0)
            return DCONN_ERROR;
        if (rc == 0) {
            snprintf(err, errlen, "no reply within %d s", c->timeout_ms / 1000);
            return DCONN_TIMEOUT;
        }
    }
}

/* One line without its line end (CRLF, or a bare LF from a lax server). */
static enum dconn_status read_line(struct dconn *c, char *out, size_t cap, long long deadline,
                                   char *err, size_t errlen)
{
    for (;;) {
        char *nl = memchr(c->in, '\n', c->in_len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - c->in);
            size_t used = n + 1;
            if (n > 0 && c->in[n - 1] == '\r')
                n--;
            if (n >= cap || n > DCONN_LINE_MAX) {
                snprintf(err, errlen, "reply line longer than %d octets", DCONN_LINE_MAX);
                return DCONN_MALFORMED;
            }
            memcpy(out, c->in, n);
            out[n] = '\0';
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            return DCONN_OK;
        }
        enum dconn_status st = fill(c, deadline, err, errlen);
        if (st != DCONN_OK)
            return st;
    }
}

enum dconn_status dconn_read_reply(struct dconn *c, struct smtp_reply *r, char *err, size_t errlen)
{
    smtp_reply_init(r);
    long long deadline = now_ms() + c->timeout_ms;
    char line[DCONN_LINE_MAX + 1];
    for (;;) {
        enum dconn_status st = read_line(c, line, sizeof line, deadline, err, errlen);
        if (st != DCONN_OK)
            return st;
        dtranscript_add(c->t, "S: ", line);
        enum smtp_reply_status rs = smtp_reply_feed(r, line, strlen(line));
        if (rs == SMTP_REPLY_DONE)
            return DCONN_OK;
        if (rs == SMTP_REPLY_BAD) {
            snprintf(err, errlen, "not an SMTP reply line: \"%.120s\"", line);
            return DCONN_MALFORMED;
        }
    }
}

static enum dconn_status write_all(struct dconn *c, const char *buf, size_t len, char *err,
                                   size_t errlen)
{
    long long deadline = now_ms() + c->timeout_ms;
    size_t off = 0;
    while (off < len) {
        short want = POLLOUT;
        if (c->ssl != NULL) {
            ERR_clear_error();
            int n = SSL_write(c->ssl, buf + off, (int)(len - off));
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                want = POLLIN;
            else if (e != SSL_ERROR_WANT_WRITE) {
                tls_reason(err, errlen, "TLS write");
                return DCONN_ERROR;
            }
        } else {
            ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
                snprintf(err, errlen, "the server closed the connection");
                return DCONN_CLOSED;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(err, errlen, "send: %s", strerror(errno));
                return DCONN_ERROR;
            }
        }
        int rc = wait_fd(c, want, deadline, err, errlen);
        if (rc < 0)
            return DCONN_ERROR;
        if (rc == 0) {
            snprintf(err, errlen, "the server took nothing for %d s", c->timeout_ms / 1000);
            return DCONN_TIMEOUT;
        }
    }
    return DCONN_OK;
}

enum dconn_status dconn_send(struct dconn *c, const char *line, const char *shown, char *err,
                             size_t errlen)
{
    dtranscript_add(c->t, "C: ", shown ? shown : line);
    enum dconn_status st = write_all(c, line, strlen(line), err, errlen);
    if (st == DCONN_OK)
        st = write_all(c, "\r\n", 2, err, errlen);
    return st;
}

enum dconn_status dconn_write(struct dconn *c, const void *buf, size_t len, const char *shown,
                              char *err, size_t errlen)
{
    if (shown != NULL)
        dtranscript_add(c->t, "C: ", shown);
    return len == 0 ? DCONN_OK : write_all(c, buf, len, err, errlen);
}

void dconn_set_timeout(struct dconn *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

size_t dconn_buffered(const struct dconn *c)
{
    return c->in_len;
}

void dconn_local_literal(const struct dconn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char text[64];
    if (c->fd < 0 || getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, cap, "[127.0.0.1]");
        return;
    }
    addr_text((struct sockaddr *)&ss, text, sizeof text);
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[IPv6:%s]" : "[%s]", text);
}

/* Keeps the first bytes read from the server during the handshake: a plaintext "220" there
 * means the port speaks STARTTLS (or plain SMTP), not implicit TLS. */
static long first_bytes_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                           int ret, size_t *processed)
{
    (void)len;
    (void)argi;
    (void)argl;
    struct dconn *c = (struct dconn *)BIO_get_callback_arg(b);
    if (c != NULL && oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed != NULL) {
        size_t n = *processed;
        while (n > 0 && c->first_len < sizeof c->first) {
            c->first[c->first_len++] = (unsigned char)*argp++;
            n--;
        }
    }
    return ret;
}

/* The plaintext line the server sent where a handshake belongs: the bytes OpenSSL read, then
 * the rest of the line from the socket (briefly: it is only for the message). */
static void plaintext_line(struct dconn *c, char *out, size_t cap)
{
    char line[80];
    size_t n = c->first_len < sizeof line ? c->first_len : sizeof line - 1;
    memcpy(line, c->first, n);
    long long deadline = now_ms() + 300;
    char err[64];
    while (n < sizeof line - 1 && memchr(line, '\n', n) == NULL &&
           wait_fd(c, POLLIN, deadline, err, sizeof err) == 1) {
        ssize_t got = recv(c->fd, line + n, sizeof line - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    size_t k = 0;
    while (k < n && line[k] >= 0x20 && line[k] <= 0x7e)
        k++;
    snprintf(out, cap, "%.*s", (int)k, line);
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void cert_facts(struct dconn *c, const struct dtls_opts *o, struct dtls_info *info)
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert == NULL) {
        snprintf(info->chain_error, sizeof info->chain_error, "the server sent no certificate");
        return;
    }
    info->have_cert = true;
    X509_NAME_oneline(X509_get_subject_name(cert), info->subject, sizeof info->subject);
    X509_NAME_oneline(X509_get_issuer_name(cert), info->issuer, sizeof info->issuer);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl);
    info->chain_len = chain ? sk_X509_num(chain) : 1;

    long vr = SSL_get_verify_result(c->ssl);
    /* the host name is judged on its own below */
    info->chain_ok = vr == X509_V_OK || vr == X509_V_ERR_HOSTNAME_MISMATCH ||
                     vr == X509_V_ERR_IP_ADDRESS_MISMATCH;
    if (!info->chain_ok)
        snprintf(info->chain_error, sizeof info->chain_error, "%s (X509 error %ld)",
                 X509_verify_cert_error_string(vr), vr);
    info->host_ok = is_ip_literal(o->host) ? X509_check_ip_asc(cert, o->host, 0) == 1
                                           : X509_check_host(cert, o->host, 0, 0, NULL) == 1;

    const ASN1_TIME *na = X509_get0_notAfter(cert);
    int days = 0, secs = 0;
    if (na != NULL && ASN1_TIME_diff(&days, &secs, NULL, na) == 1)
        info->days_left = days - (secs < 0 ? 1 : 0);
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem != NULL && na != NULL && ASN1_TIME_print(mem, na) == 1) {
        int n = BIO_read(mem, info->not_after, (int)sizeof info->not_after - 1);
        info->not_after[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
    X509_free(cert);
}

enum dconn_status dconn_start_tls(struct dconn *c, const struct dtls_opts *o,
                                  struct dtls_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    ERR_clear_error();
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        tls_reason(err, errlen, "SSL_CTX_new");
        return DCONN_ERROR;
    }
    /* Accept old protocol versions so that they can be named and warned about, not just fail. */
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
    if (SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0") != 1) {
        tls_reason(err, errlen, "SSL_CTX_set_cipher_list");
        return DCONN_ERROR;
    }
    if (o->cafile != NULL) {
        if (SSL_CTX_load_verify_locations(c->ctx, o->cafile, NULL) != 1) {
            char what[300];
            snprintf(what, sizeof what, "cannot load CA file %s", o->cafile);
            tls_reason(err, errlen, what);
            return DCONN_ERROR;
        }
        /* a certificate in --cafile is trusted as it is, even when it is not a root */
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx), X509_V_FLAG_PARTIAL_CHAIN);
    } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        tls_reason(err, errlen, "cannot load the system certificate store");
        return DCONN_ERROR;
    }
    /* verification runs and is recorded; the caller decides (to report, not only abort) */
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        tls_reason(err, errlen, "SSL_new");
        return DCONN_ERROR;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (is_ip_literal(o->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, o->host);
    } else {
        X509_VERIFY_PARAM_set1_host(param, o->host, 0);
        SSL_set_tlsext_host_name(c->ssl, o->host);
    }
    BIO *rbio = SSL_get_rbio(c->ssl);
    BIO_set_callback_arg(rbio, (char *)c);
    BIO_set_callback_ex(rbio, first_bytes_cb);
    c->first_len = 0;

    long long deadline = now_ms() + c->timeout_ms;
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(c->ssl, rc);
        short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (want == 0) {
            /* A reply line where a ServerHello belongs: the port speaks plaintext SMTP. */
            if (c->first_len >= 4 && memcmp(c->first, "220", 3) == 0) {
                plaintext_line(c, info->plaintext, sizeof info->plaintext);
                snprintf(err, errlen,
                         "the server sent plaintext \"%s...\" instead of a TLS "
                         "handshake",
                         info->plaintext);
                ERR_clear_error();
                return DCONN_ERROR;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                snprintf(err, errlen, "the server closed the connection during the TLS handshake");
                return DCONN_CLOSED;
            }
            tls_reason(err, errlen, "TLS handshake failed");
            return DCONN_ERROR;
        }
        int w = wait_fd(c, want, deadline, err, errlen);
        if (w < 0)
            return DCONN_ERROR;
        if (w == 0) {
            snprintf(err, errlen, "no TLS handshake within %d s", c->timeout_ms / 1000);
            return DCONN_TIMEOUT;
        }
    }
    BIO_set_callback_ex(rbio, NULL);
    snprintf(info->version, sizeof info->version, "%s", SSL_get_version(c->ssl));
    info->version_num = SSL_version(c->ssl);
    snprintf(info->cipher, sizeof info->cipher, "%s", SSL_get_cipher_name(c->ssl));
    cert_facts(c, o, info);
    dtranscript_add(c->t, "-- ", "TLS handshake done");
    return DCONN_OK;
}
