/* doctor_conn.h: smtp-doctor's connection to the server under test: name resolution (every
 * address), a connect bounded by a timeout, line I/O with timeouts, TLS (STARTTLS or implicit)
 * with the facts a diagnosis needs (version, cipher, chain verification, host name, expiry),
 * and the transcript of the conversation with secrets masked. Blocking API over non-blocking
 * sockets and poll(2); one connection at a time. */
#ifndef SUBMITD_DOCTOR_CONN_H
#define SUBMITD_DOCTOR_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "smtp_reply.h"

/* The conversation as text lines "C: ...", "S: ...", "-- note"; secrets already masked. */
struct dtranscript {
    char *buf;
    size_t len, cap;
};
void dtranscript_add(struct dtranscript *t, const char *prefix, const char *text);
void dtranscript_free(struct dtranscript *t);

#define DCONN_ADDRS_MAX 16

struct dconn_addr {
    int family; /* AF_INET or AF_INET6 */
    char text[64];
    unsigned char sa[128]; /* struct sockaddr_storage, kept opaque here */
    unsigned sa_len;
};

/* Resolves host and port (numeric or a service name) to every TCP address, IPv4 and IPv6.
 * Returns how many (0 with err). */
size_t dconn_resolve(const char *host, const char *port, struct dconn_addr *out, size_t max,
                     char *err, size_t errlen);

enum dconn_status {
    DCONN_OK = 0,
    DCONN_TIMEOUT,   /* nothing (more) within the timeout */
    DCONN_CLOSED,    /* the server closed the connection */
    DCONN_MALFORMED, /* a line that is not an SMTP reply line */
    DCONN_ERROR      /* a system call or TLS failure, said in err */
};

struct dconn;
struct dconn *dconn_new(int timeout_ms, struct dtranscript *t);
void dconn_free(struct dconn *c);

/* Waits give up within a quarter second once *cancel is true (a delivery thread at shutdown);
 * NULL: only the timeouts. */
void dconn_set_cancel(struct dconn *c, const atomic_bool *cancel);
/* Connects to one address. */
enum dconn_status dconn_connect(struct dconn *c, const struct dconn_addr *a, char *err,
                                size_t errlen);
/* Reads one whole reply (every line logged as "S: "). */
enum dconn_status dconn_read_reply(struct dconn *c, struct smtp_reply *r, char *err, size_t errlen);
/* Sends line + CRLF. The transcript gets `shown` instead when not NULL (masking secrets). */
enum dconn_status dconn_send(struct dconn *c, const char *line, const char *shown, char *err,
                             size_t errlen);
/* Sends len octets as they are (a pipelined group of lines, message data: the relay). The
 * transcript gets `shown` as one line when not NULL, else nothing. */
enum dconn_status dconn_write(struct dconn *c, const void *buf, size_t len, const char *shown,
                              char *err, size_t errlen);
/* Changes the timeout of the operations that follow (RFC 5321 4.5.3.2 differs per stage). */
void dconn_set_timeout(struct dconn *c, int timeout_ms);
/* Bytes already received and not yet read as replies (RFC 3207 5: must be none at STARTTLS). */
size_t dconn_buffered(const struct dconn *c);
/* The local address as an RFC 5321 address literal ("[192.0.2.1]", "[IPv6:::1]"). */
void dconn_local_literal(const struct dconn *c, char *out, size_t cap);

struct dtls_opts {
    const char *host;   /* the name or address the user gave: SNI and the host name check */
    const char *cafile; /* NULL: the system store */
    bool insecure;      /* accepted but still examined, to warn */
};

struct dtls_info {
    char version[32]; /* "TLSv1.3" */
    int version_num;  /* TLS1_2_VERSION ... */
    char cipher[96];
    bool have_cert;
    bool chain_ok; /* the chain verified against the store */
    char chain_error[200];
    bool host_ok;   /* the certificate names the host */
    long days_left; /* to notAfter; negative when expired */
    char not_after[40];
    char subject[256];
    char issuer[256];
    int chain_len;
    char plaintext[80]; /* what the server sent instead of a TLS handshake ("220 ..."), if any */
};

/* The TLS handshake on the open connection (after "220" to STARTTLS, or at once for implicit
 * TLS). Fills info as far as it got; DCONN_OK when the handshake completed (verification is
 * the caller's decision, from info). */
enum dconn_status dconn_start_tls(struct dconn *c, const struct dtls_opts *o,
                                  struct dtls_info *info, char *err, size_t errlen);

#endif
