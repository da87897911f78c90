/* test_control.c: the control socket (control.c): each request round trip to a test control_fn,
 * refused requests answered "error" without reaching it, the line limit, CRLF, the socket's mode,
 * a stale socket replaced, a second server refused, the client with no server, and a prompt
 * stop (also while a client is connected and silent). */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "test_util.h"

#define ID "0123456789ABCDEF"

struct fixture {
    char dir[TU_DIR_MAX];
    char sock[100];
    struct control *c;
    int calls;
    enum control_cmd cmd;
    char id[32];
    int answer;       /* what fn returns */
    const char *text; /* what fn writes */
};

static int test_fn(enum control_cmd cmd, const char *queue_id, char *text, size_t cap, void *arg)
{
    struct fixture *f = arg;
    f->calls++;
    f->cmd = cmd;
    snprintf(f->id, sizeof f->id, "%s", queue_id);
    snprintf(text, cap, "%s", f->text);
    return f->answer;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || tu_temp_dir(f->dir, "test_control") != 0)
        return -1;
    snprintf(f->sock, sizeof f->sock, "%s/%s", f->dir, CONTROL_SOCKET_NAME);
    f->text = "done";
    char err[256] = "";
    f->c = control_start(f->dir, test_fn, f, err, sizeof err);
    if (f->c == NULL) {
        fprintf(stderr, "control_start: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    control_stop(f->c);
    unlink(f->sock);
    rmdir(f->dir);
    free(f);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int raw_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends raw bytes on a new connection and returns the server's whole answer (until it closes,
 * bounded by 10 s). */
static void raw_exchange(const char *path, const char *data, size_t len, char *out, size_t cap)
{
    int fd = raw_connect(path);
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t n = 0;
    double end = now_s() + 10;
    while (n + 1 < cap && now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0)
            continue;
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fd);
}

static void test_round_trip_each_command(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *req;
        enum control_cmd cmd;
        const char *id;
    } cases[] = {
        {"flush", CONTROL_FLUSH, ""},       {"flush " ID, CONTROL_FLUSH, ID},
        {"hold " ID, CONTROL_HOLD, ID},     {"release " ID, CONTROL_RELEASE, ID},
        {"delete " ID, CONTROL_DELETE, ID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char reply[256];
        f->cmd = (enum control_cmd)99;
        assert_int_equal(control_request(f->dir, cases[i].req, reply, sizeof reply), 0);
        assert_string_equal(reply, "ok done");
        assert_int_equal(f->cmd, cases[i].cmd);
        assert_string_equal(f->id, cases[i].id);
    }
    assert_int_equal(f->calls, 5);
}

static void test_fn_error_answered(void **state)
{
    struct fixture *f = *state;
    f->answer = -1;
    f->text = "no message " ID " in the queue";
    char reply[256];
    assert_int_equal(control_request(f->dir, "hold " ID, reply, sizeof reply), 0);
    assert_string_equal(reply, "error no message " ID " in the queue");
    /* an empty text: just the word */
    f->answer = 0;
    f->text = "";
    assert_int_equal(control_request(f->dir, "flush", reply, sizeof reply), 0);
    assert_string_equal(reply, "ok");
}

static void test_fn_text_kept_on_one_line(void **state)
{
    struct fixture *f = *state;
    f->text = "two\r\nlines";
    char reply[256];
    assert_int_equal(control_request(f->dir, "flush", reply, sizeof reply), 0);
    assert_string_equal(reply, "ok two  lines");
}

static void test_bad_requests_refused(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "",
        "FLUSH",
        "hold",
        "hold 0123456789abcdef",
        "hold 0123456789ABCDE",
        "hold 0123456789ABCDEF0",
        "hold 0123456789ABCDEG",
        "hold  " ID,
        "hold " ID " ",
        "hold " ID " extra",
        "flush ",
        "bounce " ID,
        "delete\t" ID,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char reply[256];
        assert_int_equal(control_request(f->dir, bad[i], reply, sizeof reply), 0);
        if (strncmp(reply, "error ", 6) != 0)
            fail_msg("request \"%s\" answered \"%s\"", bad[i], reply);
    }
    assert_int_equal(f->calls, 0);
    char reply[256];
    assert_int_equal(control_request(f->dir, "hold " ID, reply, sizeof reply), 0);
    assert_string_equal(reply, "ok done"); /* still serving */
}

static void test_crlf_and_raw_bytes(void **state)
{
    struct fixture *f = *state;
    char out[512];
    raw_exchange(f->sock, "release " ID "\r\n", strlen("release " ID "\r\n"), out, sizeof out);
    assert_string_equal(out, "ok done\n");
    assert_int_equal(f->cmd, CONTROL_RELEASE);
    /* a NUL or a bare CR in the line */
    raw_exchange(f->sock, "flush\0x\n", 8, out, sizeof out);
    assert_string_equal(out, "error malformed request line\n");
    raw_exchange(f->sock, "flush\rx\n", 8, out, sizeof out);
    assert_string_equal(out, "error malformed request line\n");
    assert_int_equal(f->calls, 1);
}

static void test_long_line_refused(void **state)
{
    struct fixture *f = *state;
    char line[400];
    memset(line, 'a', sizeof line);
    char out[512];
    raw_exchange(f->sock, line, sizeof line, out, sizeof out);
    assert_string_equal(out, "error request line longer than 256 octets\n");
    /* 255 octets + LF is the limit: answered (unknown command), not refused for length */
    line[255] = '\n';
    raw_exchange(f->sock, line, 256, out, sizeof out);
    assert_string_equal(out, "error unknown command\n");
    /* the client refuses to send one */
    memset(line, 'a', 300);
    line[300] = '\0';
    char reply[64];
    errno = 0;
    assert_int_equal(control_request(f->dir, line, reply, sizeof reply), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(f->calls, 0);
}

static void test_socket_mode_and_removal(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    control_stop(f->c);
    f->c = NULL;
    assert_int_equal(stat(f->sock, &st), -1);
    assert_int_equal(errno, ENOENT);
    char reply[64];
    assert_int_equal(control_request(f->dir, "flush", reply, sizeof reply), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_no_server(void **state)
{
    (void)state;
    char dir[TU_DIR_MAX];
    assert_int_equal(tu_temp_dir(dir, "test_control_none"), 0);
    char reply[64];
    errno = 0;
    assert_int_equal(control_request(dir, "flush", reply, sizeof reply), -1);
    assert_int_equal(errno, ENOENT);
    /* a socket file nobody listens on */
    char path[100];
    snprintf(path, sizeof path, "%s/%s", dir, CONTROL_SOCKET_NAME);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    errno = 0;
    assert_int_equal(control_request(dir, "flush", reply, sizeof reply), -1);
    assert_int_equal(errno, ECONNREFUSED);
    unlink(path);
    rmdir(dir);
}

static void test_stale_socket_replaced(void **state)
{
    struct fixture *f = *state;
    control_stop(f->c);
    f->c = NULL;
    /* leave a bound socket file behind, as a crashed server would */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", f->sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    char reply[64];
    assert_int_equal(control_request(f->dir, "flush", reply, sizeof reply), -1);
    assert_int_equal(errno, ECONNREFUSED);
    char err[256] = "";
    f->c = control_start(f->dir, test_fn, f, err, sizeof err);
    assert_non_null(f->c);
    assert_int_equal(control_request(f->dir, "flush", reply, sizeof reply), 0);
    assert_string_equal(reply, "ok done");
}

static void test_second_server_refused(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct control *c2 = control_start(f->dir, test_fn, f, err, sizeof err);
    assert_null(c2);
    assert_non_null(strstr(err, "another server answers"));
    /* the first one still serves, on its socket */
    char reply[64];
    assert_int_equal(control_request(f->dir, "delete " ID, reply, sizeof reply), 0);
    assert_string_equal(reply, "ok done");
}

static void test_path_too_long(void **state)
{
    (void)state;
    char dir[200];
    memset(dir, 'x', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    char err[512] = "";
    assert_null(control_start(dir, test_fn, NULL, err, sizeof err));
    assert_non_null(strstr(err, "too long"));
    char reply[64];
    assert_int_equal(control_request(dir, "flush", reply, sizeof reply), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static void test_stop_is_prompt(void **state)
{
    struct fixture *f = *state;
    double t0 = now_s();
    control_stop(f->c);
    f->c = NULL;
    assert_true(now_s() - t0 < 0.5);
    /* again, with a client connected that never sends its line */
    char err[256] = "";
    f->c = control_start(f->dir, test_fn, f, err, sizeof err);
    assert_non_null(f->c);
    int fd = raw_connect(f->sock);
    usleep(100 * 1000); /* the thread is now waiting for the line */
    t0 = now_s();
    control_stop(f->c);
    f->c = NULL;
    assert_true(now_s() - t0 < 0.5);
    close(fd);
}

static void test_silent_client_times_out(void **state)
{
    struct fixture *f = *state;
    char out[256];
    double t0 = now_s();
    raw_exchange(f->sock, "flu", 3, out, sizeof out);
    double took = now_s() - t0;
    assert_string_equal(out, "error no request line within 5 s\n");
    assert_true(took >= 4.5 && took < 8);
    assert_int_equal(f->calls, 0);
}

static void test_client_cut_off_before_line(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->sock);
    assert_int_equal(send(fd, "hold", 4, 0), 4);
    shutdown(fd, SHUT_WR);
    char buf[64];
    ssize_t r = read(fd, buf, sizeof buf); /* closed without an answer */
    assert_int_equal(r, 0);
    close(fd);
    assert_int_equal(f->calls, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip_each_command),      T(test_fn_error_answered),
        T(test_fn_text_kept_on_one_line),     T(test_bad_requests_refused),
        T(test_crlf_and_raw_bytes),           T(test_long_line_refused),
        T(test_socket_mode_and_removal),      cmocka_unit_test(test_no_server),
        T(test_stale_socket_replaced),        T(test_second_server_refused),
        cmocka_unit_test(test_path_too_long), T(test_stop_is_prompt),
        T(test_silent_client_times_out),      T(test_client_cut_off_before_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
