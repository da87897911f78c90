/* loadgen.h: what bench/loadgen.c (options, the thread-per-client mail and noop modes, the
 * report, the pure SMTP helpers) shares with bench/loadgen_idle.c (the idle mode: many
 * authenticated connections held open by one epoll thread). Both are compiled into one program;
 * see the top of loadgen.c. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#define LG_LINE_MAX 1024 /* a reply line: 512 by RFC 5321 4.5.3.1.5, with slack */
#define LG_CODE_IO 0     /* failure slot for I/O errors, timeouts, malformed replies */

enum lg_tls { LG_TLS_NONE, LG_TLS_STARTTLS, LG_TLS_IMPLICIT };
enum lg_mode { LG_MODE_MAIL, LG_MODE_NOOP, LG_MODE_IDLE };

struct lg_opts {
    const char *host;
    const char *port;
    enum lg_tls tls;
    enum lg_mode mode;
    const char *user; /* "%d" is replaced by the client's index */
    const char *password;
    const char *from; /* default: the user */
    const char *rcpt; /* default: the user */
    const char *helo;
    const char *cafile; /* verify the server against it; default: no verification */
    int clients;
    int per_conn;
    long connections;
    double duration;
    int timeout;
    size_t size;
    bool auth;
    long noops;
    int noop_interval_ms;
    bool verbose;
    bool sync_start;
    long server_pid;     /* --sync-start: the server's CPU time is sampled at the barrier and end */
    const char *cpu_cmd; /* like server_pid, but a shell command that prints the CPU ms */
    /* idle mode */
    double hold;            /* seconds to hold every connection open once all are */
    int inflight;           /* connections at most between connect() and their 235 */
    const char *ready_file; /* made when every connection is open; removing it ends the hold */
};

/* A growing vector of latency samples (ms). */
struct lg_vec {
    double *v;
    size_t n, cap;
};

/* Appends x; exits on out of memory. */
void lg_vec_push(struct lg_vec *v, double x);
/* Sorts v, sets its nearest-rank p50 and p99 (NAN when empty) and prints them under name. */
void lg_print_lat(const char *name, struct lg_vec *v, double *p50, double *p99);
/* Monotonic milliseconds. */
double lg_now_ms(void);
/* Parses one reply line: "DDD " (last line), "DDD-" (more follow) or "DDD" alone (last).
 * Returns the code, or -1 when the line is not a reply line. */
int lg_parse_reply_line(const char *line, bool *last);
/* base64("" NUL user NUL password) into out (NUL-terminated). Returns 0, or -1 when too long. */
int lg_plain_blob(const char *user, const char *password, char *out, size_t outlen);
/* Replaces the first "%d" in pattern with index. */
void lg_expand_user(const char *pattern, int index, char *out, size_t outlen);
/* True when an EHLO reply (lines joined by '\n', each "250-KEYWORD params") has the keyword,
 * and, when param is not NULL, that parameter after it. */
bool lg_ehlo_has(const char *text, const char *keyword, const char *param);

/* The idle mode (loadgen_idle.c): opens o->connections sessions up to their 235 (o->inflight at
 * a time), holds them all for o->hold seconds, QUITs them, prints the report and its RESULT
 * line. Returns the exit status: 0 when nothing failed, 1 otherwise. */
int lg_idle_run(const struct lg_opts *o, SSL_CTX *ctx);

#endif
