/* maildir.c: final delivery into a Maildir (maildir.h; docs/delivery.md, "Maildir"). Owns the
 * recipient -> directory template and the qmail delivery procedure (maildir(5),
 * cr.yp.to/proto/maildir.html): write tmp/UNIQUE with O_EXCL, fsync it, link it into new/ as
 * UNIQUE,S=<size>, fsync new/, unlink tmp/. Adds Return-Path (RFC 5321 4.4) and Delivered-To,
 * and stores LF line ends. Blocking (fsync): runs on a worker thread, never on an I/O loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include "maildir.h"
#include "protocol_limits.h"

/* Longest Maildir path we make (its files add "/new/" and a name of at most NAME_MAX). */
#define MAILDIR_DIR_MAX 3072
/* A piece (%d, %u, %a) becomes at most one path component. */
#define MAILDIR_PIECE_MAX 255
/* The host part of a unique name, after escaping, is cut to this. */
#define MAILDIR_HOST_MAX 128
/* Attempts at a unique name before giving up (another writer can only collide by accident). */
#define MAILDIR_NAME_TRIES 8
#define MAILDIR_IO_CHUNK 65536

/* What expand() found wrong: the address (permanent) or the template (configuration). */
enum expand_status { EXPAND_OK = 0, EXPAND_ADDRESS = -1, EXPAND_TEMPLATE = -2 };

/* Checks one substituted value: what it may not contain to stay one safe path component. */
static int piece_check(const char *what, const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "the %s is empty", what);
        return -1;
    }
    if (n > MAILDIR_PIECE_MAX) {
        snprintf(err, errlen, "the %s is longer than %d octets", what, MAILDIR_PIECE_MAX);
        return -1;
    }
    if (s[0] == '.') {
        snprintf(err, errlen, "the %s begins with a dot", what);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') {
            snprintf(err, errlen, "the %s contains '/'", what);
            return -1;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "the %s contains a control character", what);
            return -1;
        }
    }
    return 0;
}

/* Appends n octets of s to out at *pos, lower-cased (ASCII) when lower. */
static int put_piece(char *out, size_t cap, size_t *pos, const char *s, size_t n, bool lower)
{
    if (*pos + n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        out[(*pos)++] = (lower && c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[*pos] = '\0';
    return 0;
}

static enum expand_status expand(const char *template, const char *rcpt, char *out, size_t cap,
                                 char *err, size_t errlen)
{
    if (template == NULL || template[0] != '/') {
        snprintf(err, errlen, "maildir template \"%s\" is not an absolute path",
                 template ? template : "");
        return EXPAND_TEMPLATE;
    }
    if (rcpt == NULL || cap == 0) {
        snprintf(err, errlen, "no recipient");
        return EXPAND_ADDRESS;
    }
    const char *at = strrchr(rcpt, '@');
    size_t rlen = strlen(rcpt);
    size_t llen = at ? (size_t)(at - rcpt) : rlen;
    const char *domain = at ? at + 1 : "";
    size_t pos = 0;
    out[0] = '\0';
    for (const char *t = template; *t; t++) {
        const char *s = t;
        size_t n = 1;
        bool piece = *t == '%' && t[1] != '%';
        if (*t == '%') {
            t++;
            if (*t == 'd') {
                s = domain, n = strlen(domain);
                if (piece_check("domain", s, n, err, errlen) == -1)
                    return EXPAND_ADDRESS;
            } else if (*t == 'u') {
                s = rcpt, n = llen;
                if (piece_check("local part", s, n, err, errlen) == -1)
                    return EXPAND_ADDRESS;
            } else if (*t == 'a') {
                s = rcpt, n = rlen;
                if (piece_check("address", s, n, err, errlen) == -1)
                    return EXPAND_ADDRESS;
            } else if (*t == '%') {
                s = t;
            } else {
                snprintf(err, errlen, "maildir template \"%s\" has an unknown escape %%%c",
                         template, *t ? *t : ' ');
                return EXPAND_TEMPLATE;
            }
        }
        if (put_piece(out, cap, &pos, s, n, piece) == -1 || pos > MAILDIR_DIR_MAX) {
            snprintf(err, errlen, "the maildir path for this address is too long");
            return EXPAND_ADDRESS;
        }
    }
    while (pos > 1 && out[pos - 1] == '/')
        out[--pos] = '\0';
    return EXPAND_OK;
}

int maildir_path(const char *template, const char *rcpt, char *out, size_t cap, char *err,
                 size_t errlen)
{
    return expand(template, rcpt, out, cap, err, errlen) == EXPAND_OK ? 0 : -1;
}

/* Sets res to a temporary failure for errno e in `what` on `path`: 4.3.1 when the disk or the
 * quota is full (RFC 3463 X.3.1), else 4.3.0. */
static void fail_io(struct delivery_rcpt_result *res, int e, const char *what, const char *path)
{
    res->outcome = DELIVERY_TEMP;
    res->code = 0;
    snprintf(res->enhanced, sizeof res->enhanced, "%s",
             (e == ENOSPC || e == EDQUOT) ? "4.3.1" : "4.3.0");
    snprintf(res->text, sizeof res->text, "maildir: %s %s: %s", what, path, strerror(e));
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* mkdir -p with mode 0700; each directory made has its parent fsynced, so that the new entry
 * is durable before a message inside it is reported delivered. */
static int make_dirs(char *path, struct delivery_rcpt_result *res)
{
    size_t n = strlen(path);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        int rc = mkdir(path, 0700);
        int e = errno;
        if (rc == 0) {
            char *slash = strrchr(path, '/');
            char keep = slash[1];
            slash[1] = '\0'; /* the parent ("/" for a top-level directory) */
            rc = fsync_dir(path);
            e = errno;
            slash[1] = keep;
            if (rc == -1) {
                fail_io(res, e, "fsync the parent of", path);
                path[i] = saved;
                return -1;
            }
        } else if (e != EEXIST) {
            fail_io(res, e, "mkdir", path);
            path[i] = saved;
            return -1;
        }
        path[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) == -1) {
        fail_io(res, errno, "stat", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fail_io(res, ENOTDIR, "use", path);
        return -1;
    }
    return 0;
}

/* The host name with '/' and ':' escaped as qmail does (\057, \072), cut to MAILDIR_HOST_MAX. */
static void escape_host(char *out, size_t cap, const char *host)
{
    size_t pos = 0;
    if (host == NULL || host[0] == '\0')
        host = "localhost";
    for (; *host && pos + 5 < cap && pos + 5 < MAILDIR_HOST_MAX; host++) {
        unsigned char c = (unsigned char)*host;
        if (c == '/' || c == ':' || c < 0x21 || c == 0x7f || c == '\\')
            pos += (size_t)snprintf(out + pos, cap - pos, "\\%03o", c);
        else
            out[pos++] = (char)c;
    }
    out[pos] = '\0';
}

/* Per-process delivery counter (the Q part of the name); workers deliver concurrently. */
static atomic_ulong maildir_counter;

static void unique_name(char *out, size_t cap, const char *host_escaped)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long q = atomic_fetch_add(&maildir_counter, 1);
    snprintf(out, cap, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
             (long)getpid(), q, host_escaped);
}

/* Writes all of buf, retrying short writes and EINTR. */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the delivery headers and the message (size octets from msg, CRLF -> LF; a lone CR
 * stays) to fd. Returns the octets written, or -1 with errno and *stage saying what failed
 * ("write" or "read"). */
static int64_t write_message(int fd, const struct spool_envelope *env, const char *rcpt, FILE *msg,
                             const char **stage)
{
    char chunk[8192];
    size_t cap = MAILDIR_IO_CHUNK + sizeof chunk + 2 * SMTP_PATH_MAX + 64;
    char *out = malloc(cap);
    if (out == NULL) {
        *stage = "allocate a buffer for";
        return -1;
    }
    int64_t total = 0;
    int n = snprintf(out, cap, "Return-Path: <%s>\nDelivered-To: %s\n", env->sender, rcpt);
    size_t used = (size_t)n;
    uint64_t left = env->size;
    bool cr = false; /* a CR seen last, not yet written: it may start a CRLF */
    *stage = "write";
    while (left > 0) {
        size_t ask = left < sizeof chunk ? (size_t)left : sizeof chunk;
        size_t got = fread(chunk, 1, ask, msg);
        if (got == 0) {
            *stage = "read the queued message for";
            errno = ferror(msg) && errno != 0 ? errno : EIO; /* EOF: shorter than its size */
            goto fail;
        }
        left -= got;
        for (size_t i = 0; i < got; i++) {
            if (cr && chunk[i] != '\n')
                out[used++] = '\r';
            cr = chunk[i] == '\r';
            if (!cr)
                out[used++] = chunk[i];
        }
        if (used >= MAILDIR_IO_CHUNK) {
            if (write_all(fd, out, used) == -1)
                goto fail;
            total += (int64_t)used;
            used = 0;
        }
    }
    if (cr)
        out[used++] = '\r';
    if (write_all(fd, out, used) == -1)
        goto fail;
    free(out);
    return total + (int64_t)used;
fail:;
    int e = errno;
    free(out);
    errno = e;
    return -1;
}

void maildir_deliver(const char *template, const struct spool_envelope *env, size_t index,
                     FILE *msg, const char *hostname, struct delivery_rcpt_result *res)
{
    memset(res, 0, sizeof *res);
    snprintf(res->stage, sizeof res->stage, "maildir");
    if (env == NULL || msg == NULL || index >= env->n_rcpts) {
        res->outcome = DELIVERY_TEMP;
        snprintf(res->enhanced, sizeof res->enhanced, "4.3.0");
        snprintf(res->text, sizeof res->text, "maildir: no such recipient");
        return;
    }
    const char *rcpt = env->rcpts[index];
    char dir[MAILDIR_DIR_MAX + 8], err[300];
    switch (expand(template, rcpt, dir, sizeof dir, err, sizeof err)) {
    case EXPAND_OK:
        break;
    case EXPAND_ADDRESS:
        res->outcome = DELIVERY_PERM;
        snprintf(res->enhanced, sizeof res->enhanced, "5.1.3");
        snprintf(res->text, sizeof res->text, "maildir: cannot deliver to <%s>: %s", rcpt, err);
        return;
    case EXPAND_TEMPLATE: /* the administrator can fix it: keep the mail */
        res->outcome = DELIVERY_TEMP;
        snprintf(res->enhanced, sizeof res->enhanced, "4.3.5");
        snprintf(res->text, sizeof res->text, "maildir: %s", err);
        return;
    }

    char path[MAILDIR_DIR_MAX + 600], tmp[MAILDIR_DIR_MAX + 600], final[MAILDIR_DIR_MAX + 640];
    char host[MAILDIR_HOST_MAX + 8], name[MAILDIR_HOST_MAX + 96];
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    if (make_dirs(dir, res) == -1)
        return;
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
        if (make_dirs(path, res) == -1)
            return;
    }

    escape_host(host, sizeof host, hostname);
    int fd = -1;
    for (int tries = 0; fd == -1; tries++) {
        unique_name(name, sizeof name, host);
        snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd == -1 && (errno != EEXIST || tries + 1 >= MAILDIR_NAME_TRIES)) {
            fail_io(res, errno, "create", tmp);
            return;
        }
    }

    const char *stage = "write";
    int64_t size = write_message(fd, env, rcpt, msg, &stage);
    if (size == -1) {
        fail_io(res, errno, stage, tmp);
        close(fd);
        unlink(tmp);
        return;
    }
    if (fsync(fd) == -1) {
        fail_io(res, errno, "fsync", tmp);
        close(fd);
        unlink(tmp);
        return;
    }
    if (close(fd) == -1) {
        fail_io(res, errno, "close", tmp);
        unlink(tmp);
        return;
    }

    /* link() never replaces an existing file; the name is only ever complete in new/ */
    snprintf(final, sizeof final, "%s/new/%s,S=%lld", dir, name, (long long)size);
    if (link(tmp, final) == -1) {
        fail_io(res, errno, "link into new/ as", final);
        unlink(tmp);
        return;
    }
    snprintf(path, sizeof path, "%s/new", dir);
    if (fsync_dir(path) == -1) {
        /* not known to be durable: take it back so that a retry cannot make a duplicate */
        fail_io(res, errno, "fsync", path);
        unlink(final);
        unlink(tmp);
        return;
    }
    res->outcome = DELIVERY_OK;
    snprintf(res->enhanced, sizeof res->enhanced, "2.0.0");
    if (unlink(tmp) == -1)
        snprintf(res->text, sizeof res->text, "delivered to %s (could not remove %s: %s)", final,
                 tmp, strerror(errno));
    else
        snprintf(res->text, sizeof res->text, "delivered to %s", final);
}
