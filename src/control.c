/* control.c: owns the server's control socket DIR/control.sock (AF_UNIX stream, mode 0600) and
 * its client side: how `submitctl queue flush|hold|release|delete` reach a running server. One
 * request line (at most CONTROL_LINE_MAX octets with its CRLF or LF) per connection, answered by
 * one line "ok TEXT" or "error TEXT". The server side is one thread that polls the listening
 * socket and a stop pipe, so control_stop is prompt even while a client is slow. No RFC: a
 * private protocol (docs/delivery.md, docs/submitctl.md). */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol_limits.h"

#define CONTROL_LINE_MAX 256         /* a request line with its line end */
#define CONTROL_REPLY_MAX 512        /* a reply line with its line end */
#define CONTROL_READ_TIMEOUT_MS 5000 /* the server waits this long for a request line */
#define CONTROL_CLIENT_TIMEOUT_MS 30000
#define CONTROL_BACKLOG 16

struct control {
    int lfd;
    int stop[2]; /* a byte written to stop[1] ends the thread */
    pthread_t thread;
    control_fn fn;
    void *arg;
    dev_t dev; /* the socket file we bound, removed at stop only if it is still ours */
    ino_t ino;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static const struct {
    const char *word;
    enum control_cmd cmd;
    bool id_optional;
} control_cmds[] = {
    {"flush", CONTROL_FLUSH, true},
    {"hold", CONTROL_HOLD, false},
    {"release", CONTROL_RELEASE, false},
    {"delete", CONTROL_DELETE, false},
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* DIR/control.sock into addr. -1 with ENAMETOOLONG when it does not fit sun_path. */
static int socket_address(const char *datadir, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    int n = snprintf(addr->sun_path, sizeof addr->sun_path, "%s/%s", datadir, CONTROL_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof addr->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Reads one line (up to and including LF) into buf within deadline (monotonic ms), giving up
 * early when stopfd (>= 0) becomes readable. Returns the length with the LF, 0 when the peer
 * closed before a line, or -1 with errno: EMSGSIZE (cap octets without LF), ETIMEDOUT, ECANCELED
 * (stop), or the read's errno. Reads byte by byte: the line is short and nothing follows it. */
static ssize_t read_line(int fd, char *buf, size_t cap, int64_t deadline, int stopfd)
{
    size_t n = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = stopfd, .events = POLLIN}};
        int r = poll(p, stopfd >= 0 ? 2 : 1, (int)left);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            continue; /* the deadline check above ends it */
        if (stopfd >= 0 && p[1].revents != 0) {
            errno = ECANCELED;
            return -1;
        }
        ssize_t got = read(fd, buf + n, 1);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        if (got == 0)
            return 0;
        n++;
        if (buf[n - 1] == '\n')
            return (ssize_t)n;
        if (n == cap) {
            errno = EMSGSIZE;
            return -1;
        }
    }
}

/* Writes all of buf (the socket may be non-blocking; bounded by deadline). 0 or -1. */
static int write_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static bool valid_queue_id(const char *id)
{
    if (strlen(id) != QUEUE_ID_LEN)
        return false;
    for (size_t i = 0; i < QUEUE_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
            return false;
    return true;
}

/* Parses a request line without its line end: "WORD" or "WORD ID", one space. Fills *cmd and
 * id ("" when absent). Returns NULL, or why the request is refused. */
static const char *parse_request(char *line, enum control_cmd *cmd, char id[QUEUE_ID_LEN + 1])
{
    char *arg = strchr(line, ' ');
    if (arg != NULL)
        *arg++ = '\0';
    size_t i = 0, n = sizeof control_cmds / sizeof control_cmds[0];
    while (i < n && strcmp(line, control_cmds[i].word) != 0)
        i++;
    if (i == n)
        return "unknown command";
    *cmd = control_cmds[i].cmd;
    id[0] = '\0';
    if (arg == NULL)
        return control_cmds[i].id_optional ? NULL : "a queue id is required";
    if (!valid_queue_id(arg))
        return "not a queue id (16 upper-case hex digits)";
    memcpy(id, arg, QUEUE_ID_LEN + 1);
    return NULL;
}

/* Reads a request from a connected client, carries it out, answers. */
static void serve(struct control *c, int fd)
{
    char line[CONTROL_LINE_MAX + 1];
    char text[CONTROL_REPLY_MAX - 16] = "";
    bool ok = false;
    ssize_t n =
        read_line(fd, line, CONTROL_LINE_MAX, now_ms() + CONTROL_READ_TIMEOUT_MS, c->stop[0]);
    if (n < 0 && errno == ECANCELED)
        return;
    if (n < 0 && errno == EMSGSIZE) {
        snprintf(text, sizeof text, "request line longer than %d octets", CONTROL_LINE_MAX);
    } else if (n < 0 && errno == ETIMEDOUT) {
        snprintf(text, sizeof text, "no request line within %d s", CONTROL_READ_TIMEOUT_MS / 1000);
    } else if (n <= 0) {
        return; /* the client went away */
    } else {
        size_t len = (size_t)n - 1; /* without the LF */
        if (len > 0 && line[len - 1] == '\r')
            len--;
        line[len] = '\0';
        enum control_cmd cmd = CONTROL_FLUSH;
        char id[QUEUE_ID_LEN + 1];
        const char *why = memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL
                              ? "malformed request line"
                              : parse_request(line, &cmd, id);
        if (why != NULL) {
            snprintf(text, sizeof text, "%s", why);
        } else {
            ok = c->fn(cmd, id, text, sizeof text, c->arg) == 0;
            text[sizeof text - 1] = '\0';
        }
    }
    for (char *p = text; *p != '\0'; p++) /* one line, whatever fn wrote */
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    char reply[CONTROL_REPLY_MAX];
    int len =
        snprintf(reply, sizeof reply, "%s%s%s\n", ok ? "ok" : "error", text[0] ? " " : "", text);
    if (len > 0)
        (void)write_all(fd, reply, (size_t)len, now_ms() + CONTROL_READ_TIMEOUT_MS);
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    (void)pthread_setname_np(pthread_self(), "submitd-control");
    for (;;) {
        struct pollfd p[2] = {{.fd = c->lfd, .events = POLLIN},
                              {.fd = c->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents != 0)
            break;
        if (p[0].revents == 0)
            continue;
        int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue; /* EAGAIN, ECONNABORTED, EMFILE...: poll again */
        serve(c, fd);
        close(fd);
    }
    return NULL;
}

/* Whether a server answers on addr: 1 yes, 0 no (nothing there, or a stale socket file), -1 on
 * another error (errno). */
static int server_answers(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int r = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
    int e = errno;
    close(fd);
    if (r == 0)
        return 1;
    if (e == ENOENT || e == ECONNREFUSED)
        return 0;
    errno = e;
    return -1;
}

static void control_free(struct control *c)
{
    if (c->lfd >= 0)
        close(c->lfd);
    for (int i = 0; i < 2; i++)
        if (c->stop[i] >= 0)
            close(c->stop[i]);
    free(c);
}

struct control *control_start(const char *datadir, control_fn fn, void *arg, char *err,
                              size_t errlen)
{
    struct sockaddr_un addr;
    if (socket_address(datadir, &addr) != 0) {
        snprintf(err, errlen, "control socket path too long: %s/%s", datadir, CONTROL_SOCKET_NAME);
        return NULL;
    }
    int answers = server_answers(&addr);
    if (answers != 0) {
        if (answers > 0)
            snprintf(err, errlen,
                     "another server answers on %s: is submitd already running "
                     "with this data directory?",
                     addr.sun_path);
        else
            snprintf(err, errlen, "probing the control socket %s: %s", addr.sun_path,
                     strerror(errno));
        return NULL;
    }
    if (unlink(addr.sun_path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "removing the stale control socket %s: %s", addr.sun_path,
                 strerror(errno));
        return NULL;
    }
    struct control *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "control socket %s: out of memory", addr.sun_path);
        return NULL;
    }
    c->lfd = c->stop[0] = c->stop[1] = -1;
    c->fn = fn;
    c->arg = arg;
    memcpy(c->path, addr.sun_path, sizeof c->path);
    const char *what = "socket";
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->lfd < 0)
        goto fail;
    what = "bind";
    if (bind(c->lfd, (const struct sockaddr *)&addr, sizeof addr) != 0)
        goto fail;
    /* Before listen: until then a connect is refused, so nobody reaches it with a wider mode. */
    what = "chmod 0600";
    struct stat st;
    if (chmod(c->path, S_IRUSR | S_IWUSR) != 0)
        goto fail_bound;
    what = "stat";
    if (stat(c->path, &st) != 0)
        goto fail_bound;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    what = "listen";
    if (listen(c->lfd, CONTROL_BACKLOG) != 0)
        goto fail_bound;
    what = "pipe";
    if (pipe2(c->stop, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail_bound;
    int e = pthread_create(&c->thread, NULL, control_main, c);
    if (e != 0) {
        errno = e;
        what = "starting the control thread";
        goto fail_bound;
    }
    return c;
fail_bound:;
    int saved = errno;
    unlink(c->path);
    errno = saved;
fail:
    snprintf(err, errlen, "control socket %s: %s: %s", c->path, what, strerror(errno));
    control_free(c);
    return NULL;
}

void control_stop(struct control *c)
{
    if (c == NULL)
        return;
    char b = 1;
    while (write(c->stop[1], &b, 1) < 0 && errno == EINTR)
        ;
    pthread_join(c->thread, NULL);
    struct stat st;
    if (stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        unlink(c->path);
    control_free(c);
}

int control_request(const char *datadir, const char *request, char *reply, size_t cap)
{
    int64_t deadline = now_ms() + CONTROL_CLIENT_TIMEOUT_MS;
    struct sockaddr_un addr;
    if (socket_address(datadir, &addr) != 0)
        return -1;
    size_t len = strlen(request);
    if (len + 1 > CONTROL_LINE_MAX || memchr(request, '\n', len) != NULL || cap == 0) {
        errno = EINVAL;
        return -1;
    }
    char line[CONTROL_LINE_MAX];
    memcpy(line, request, len);
    line[len++] = '\n';
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int r = connect(fd, (const struct sockaddr *)&addr, sizeof addr);
    if (r == 0) {
        int fl = fcntl(fd, F_GETFL);
        r = fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
    if (r == 0)
        r = write_all(fd, line, len, deadline);
    char buf[CONTROL_REPLY_MAX];
    ssize_t n = 0;
    if (r == 0) {
        n = read_line(fd, buf, sizeof buf - 1, deadline, -1);
        if (n == 0)
            errno = ECONNRESET; /* closed without an answer */
        r = n > 0 ? 0 : -1;
    }
    int e = errno;
    close(fd);
    if (r != 0) {
        errno = e;
        return -1;
    }
    size_t l = (size_t)n - 1;
    if (l > 0 && buf[l - 1] == '\r')
        l--;
    if (l >= cap)
        l = cap - 1;
    memcpy(reply, buf, l);
    reply[l] = '\0';
    return 0;
}
