/* ctl.c: submitctl's shared helpers: one-line errors with the exit codes of SPEC section 8, the
 * data directory (created 0700 by writing commands), directory answers turned into messages,
 * JSON output, argument syntax checks (RFC 5321 4.1.2 through smtp_parse), the submission limits'
 * names (SPEC 4), UTC ISO-8601 times and reading a new password without echo (termios). */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "smtp_parse.h"

static void ctl_vmessage(const struct ctl *c, const char *fmt, va_list ap)
{
    fputs("submitctl: ", stderr);
    if (c != NULL && c->cmd != NULL)
        fprintf(stderr, "%s%s%s: ", c->cmd->group, c->cmd->name ? " " : "",
                c->cmd->name ? c->cmd->name : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int ctl_usage(const struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctl_vmessage(c, fmt, ap);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

int ctl_fail(const struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctl_vmessage(c, fmt, ap);
    va_end(ap);
    return CTL_EXIT_NO;
}

int ctl_datadir_exists(const struct ctl *c)
{
    struct stat st;
    if (stat(c->datadir, &st) != 0)
        return ctl_fail(c, "data directory %s: %s", c->datadir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ctl_fail(c, "data directory %s: not a directory", c->datadir);
    return 0;
}

int ctl_dir(struct ctl *c)
{
    if (c->cmd->flags & CTL_WRITES) {
        if (mkdir(c->datadir, 0700) != 0 && errno != EEXIST)
            return ctl_fail(c, "cannot create data directory %s: %s", c->datadir, strerror(errno));
    }
    int rc = ctl_datadir_exists(c);
    if (rc != 0)
        return rc;
    char err[256] = "";
    c->dir = directory_open(c->datadir, err, sizeof err);
    if (c->dir == NULL)
        return ctl_fail(c, "cannot open the directory in %s: %s", c->datadir, err);
    return 0;
}

int ctl_dir_status(const struct ctl *c, enum dir_status st, const char *what)
{
    switch (st) {
    case DIR_OK:
        return CTL_EXIT_OK;
    case DIR_NOTFOUND:
        return ctl_fail(c, "no such %s", what);
    case DIR_EXISTS:
        return ctl_fail(c, "%s already exists", what);
    case DIR_INVALID:
        return ctl_fail(c, "%s", dir_error(c->dir));
    case DIR_TEMPFAIL:
        return ctl_fail(c, "temporary failure: %s", dir_error(c->dir));
    }
    return ctl_fail(c, "unexpected directory answer %d", (int)st);
}

int ctl_json_print(json_t *j)
{
    if (j == NULL) {
        fputs("submitctl: out of memory building JSON\n", stderr);
        return CTL_EXIT_NO;
    }
    int rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (rc != 0 || fputc('\n', stdout) == EOF) {
        fprintf(stderr, "submitctl: cannot write JSON to standard output: %s\n", strerror(errno));
        return CTL_EXIT_NO;
    }
    return CTL_EXIT_OK;
}

bool ctl_valid_domain(const char *domain)
{
    char probe[SMTP_PATH_MAX + 8];
    int n = snprintf(probe, sizeof probe, "x@%s", domain);
    if (n < 0 || (size_t)n >= sizeof probe || domain[0] == '[')
        return false;
    return strlen(domain) <= SMTP_DOMAIN_MAX && smtp_mailbox_valid(probe, (size_t)n, false);
}

bool ctl_valid_address(const char *address)
{
    size_t n = strlen(address);
    return n <= SMTP_PATH_MAX && strchr(address, '@') != NULL &&
           smtp_mailbox_valid(address, n, true);
}

bool ctl_valid_policy_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > POLICY_NAME_MAX || strcmp(name, "inherit") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

bool ctl_parse_int(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

const struct ctl_limit_key ctl_limit_keys[CTL_LIMITS] = {
    {"max-sessions", "max_sessions"},
    {"messages-per-minute", "messages_per_minute"},
    {"recipients-per-day", "recipients_per_day"},
    {"recipients-per-message", "recipients_per_message"},
};

unsigned ctl_limit_get(const struct dir_limits *l, size_t i)
{
    switch (i) {
    case 0:
        return l->sessions;
    case 1:
        return l->messages_per_minute;
    case 2:
        return l->recipients_per_day;
    case 3:
        return l->recipients_per_message;
    }
    return 0;
}

int ctl_limit_index(const char *key)
{
    for (int i = 0; i < CTL_LIMITS; i++)
        if (strcmp(ctl_limit_keys[i].key, key) == 0)
            return i;
    return -1;
}

const char *ctl_onoff(bool v)
{
    return v ? "on" : "off";
}

const char *ctl_yesno(bool v)
{
    return v ? "yes" : "no";
}

const char *ctl_switch_name(enum setting_switch s)
{
    switch (s) {
    case SWITCH_ON:
        return "on";
    case SWITCH_OFF:
        return "off";
    case SWITCH_INHERIT:
        return "inherit";
    }
    return "?";
}

void ctl_time_ms(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, cap, "-");
        return;
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void ctl_time_s(int64_t secs64, char *buf, size_t cap)
{
    time_t secs = (time_t)secs64;
    struct tm tm;
    if (secs64 <= 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, cap, "-");
        return;
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Reads one line from fd a byte at a time (so no stdio buffer keeps a copy of the secret).
 * Returns 0 (line in out, end of line removed), 1 when longer than PASSWORD_MAX, -1 on error. */
static int read_line(int fd, char *out, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0 || ch == '\n')
            break;
        if (n + 1 >= cap)
            return 1;
        out[n++] = ch;
    }
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    *len = n;
    return 0;
}

/* Prompts on stderr and reads a line from the terminal on fd with echo off. */
static int read_quietly(int fd, const char *prompt, char *out, size_t cap, size_t *len)
{
    struct termios saved, quiet;
    if (tcgetattr(fd, &saved) != 0)
        return -1;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
        return -1;
    int rc = read_line(fd, out, cap, len);
    int saved_errno = errno;
    if (tcsetattr(fd, TCSAFLUSH, &saved) != 0 && rc == 0)
        rc = -1;
    else
        errno = saved_errno;
    fputc('\n', stderr);
    return rc;
}

static int secret_result(const struct ctl *c, const char *what, int rc, size_t len, size_t cap)
{
    if (rc < 0)
        return ctl_fail(c, "cannot read the %s from standard input: %s", what, strerror(errno));
    if (rc > 0)
        return ctl_usage(c, "%s longer than %zu octets", what, cap - 1);
    if (len == 0)
        return ctl_usage(c, "empty %s refused", what);
    return 0;
}

int ctl_read_secret(const struct ctl *c, const char *what, char *out, size_t cap, size_t *len)
{
    *len = 0;
    if (!isatty(STDIN_FILENO)) {
        int got = read_line(STDIN_FILENO, out, cap, len);
        int rc = secret_result(c, what, got, *len, cap);
        if (rc != 0)
            sodium_memzero(out, cap);
        return rc;
    }
    char *again = malloc(cap);
    if (again == NULL)
        return ctl_fail(c, "out of memory");
    char prompt[80];
    size_t again_len = 0;
    snprintf(prompt, sizeof prompt, "New %s: ", what);
    int got = read_quietly(STDIN_FILENO, prompt, out, cap, len);
    int rc = secret_result(c, what, got, *len, cap);
    if (rc == 0) {
        snprintf(prompt, sizeof prompt, "Repeat the %s: ", what);
        got = read_quietly(STDIN_FILENO, prompt, again, cap, &again_len);
        rc = secret_result(c, what, got, again_len, cap);
    }
    if (rc == 0 && (again_len != *len || sodium_memcmp(out, again, *len) != 0))
        rc = ctl_usage(c, "the %ss do not match", what);
    sodium_memzero(again, cap);
    free(again);
    if (rc != 0)
        sodium_memzero(out, cap);
    return rc;
}

int ctl_read_password(const struct ctl *c, char out[PASSWORD_MAX + 1], size_t *len)
{
    return ctl_read_secret(c, "password", out, PASSWORD_MAX + 1, len);
}
