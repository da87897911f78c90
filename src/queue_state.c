/* queue_state.c: each queued message's delivery state, DIR/spool/state/ID (docs/spool.md,
 * "Delivery state"): an append-only file of JSON lines, one per recipient outcome, written with
 * one write(2) per append (O_APPEND) and read back as each recipient's last line, a final status
 * never undone. Owns the line format and its reader. Implements no RFC; the outcomes it records
 * are RFC 5321 replies (code, RFC 3463 enhanced code, text). */
#include "queue_state.h"
#include "spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* A state file longer than this is damage (a line is at most a few KiB; a message of 100,000
 * recipients each deferred 50 times stays well under it). */
#define QS_FILE_MAX (1024 * 1024 * 1024)
/* Read back this much at a time when looking for the last LF of a torn file. */
#define QS_TAIL_CHUNK 4096

static const char *const status_names[] = {
    [QS_PENDING] = "pending", [QS_DEFERRED] = "deferred", [QS_DELIVERED] = "delivered",
    [QS_RELAYED] = "relayed", [QS_BOUNCED] = "bounced",
};
#define N_STATUS (sizeof status_names / sizeof status_names[0])

const char *qs_status_name(enum qs_status s)
{
    if ((unsigned)s < N_STATUS)
        return status_names[s];
    return "unknown";
}

static bool status_from_name(const char *name, enum qs_status *out)
{
    for (size_t i = 0; i < N_STATUS; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum qs_status)i;
            return true;
        }
    return false;
}

/* ---- writing ---- */

/* A JSON string of field (at most cap octets, NUL-terminated or not). Text from a peer may be
 * any octets; JSON holds only UTF-8, so when it is not valid UTF-8 every non-ASCII octet
 * becomes '?'. */
static json_t *field_string(const char *field, size_t cap)
{
    size_t len = strnlen(field, cap);
    char copy[512];
    json_t *j = json_stringn(field, len);
    if (j != NULL || len > sizeof copy)
        return j;
    for (size_t i = 0; i < len; i++)
        copy[i] = (unsigned char)field[i] >= 0x80 ? '?' : field[i];
    return json_stringn(copy, len);
}

/* Sets key to the string field unless it is empty. Returns false when out of memory. */
static bool set_string(json_t *o, const char *key, const char *field, size_t cap)
{
    json_t *v;
    if (cap == 0 || field[0] == '\0')
        return true;
    v = field_string(field, cap);
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

#define SET_FIELD(o, key, field) set_string(o, key, field, sizeof(field))

/* One recipient's line, without its LF, as a malloc'd string; NULL when out of memory. */
static char *render_line(const struct qs_rcpt *r, size_t idx)
{
    json_t *o = json_object();
    char *line = NULL;
    bool ok;
    if (o == NULL)
        return NULL;
    ok = json_object_set_new(o, "i", json_integer((json_int_t)idx)) == 0 &&
         json_object_set_new(o, "s", json_string(qs_status_name(r->status))) == 0 &&
         json_object_set_new(o, "n", json_integer((json_int_t)r->attempts)) == 0 &&
         json_object_set_new(o, "t", json_integer((json_int_t)r->last_ms)) == 0;
    if (ok && (r->status == QS_DEFERRED || r->next_ms != 0))
        ok = json_object_set_new(o, "next", json_integer((json_int_t)r->next_ms)) == 0;
    if (ok && r->code != 0)
        ok = json_object_set_new(o, "code", json_integer(r->code)) == 0;
    ok = ok && SET_FIELD(o, "enh", r->enhanced) && SET_FIELD(o, "text", r->text) &&
         SET_FIELD(o, "remote", r->remote) && SET_FIELD(o, "stage", r->stage);
    if (ok && r->delay_notified)
        ok = json_object_set_new(o, "dn", json_true()) == 0;
    ok = ok && SET_FIELD(o, "dsn", r->dsn_id);
    if (ok)
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return line;
}

/* The lines of r[idx[0..k)] in one buffer, each with its LF. */
static char *render(const struct qs_rcpt *r, const size_t *idx, size_t k, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (size_t i = 0; i < k; i++) {
        char *line = render_line(&r[idx[i]], idx[i]);
        size_t n;
        if (line == NULL) {
            free(buf);
            errno = ENOMEM;
            return NULL;
        }
        n = strlen(line);
        if (*len + n + 1 > cap) {
            size_t bigger = (*len + n + 1) * 2;
            char *p = realloc(buf, bigger);
            if (p == NULL) {
                free(line);
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = p;
            cap = bigger;
        }
        memcpy(buf + *len, line, n);
        buf[*len + n] = '\n';
        *len += n + 1;
        free(line);
    }
    return buf;
}

/* A crash during an append can leave a last line without its LF; the next append would glue
 * onto it and turn it into damage. Cuts the file back to its last LF. Returns the size. */
static off_t cut_torn_tail(int fd)
{
    char chunk[QS_TAIL_CHUNK];
    struct stat st;
    off_t end;
    if (fstat(fd, &st) == -1)
        return -1;
    end = st.st_size;
    while (end > 0) {
        size_t want = end > (off_t)sizeof chunk ? sizeof chunk : (size_t)end;
        ssize_t got = pread(fd, chunk, want, end - (off_t)want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)want) {
            if (got >= 0)
                errno = EIO;
            return -1;
        }
        for (size_t i = want; i > 0; i--)
            if (chunk[i - 1] == '\n') {
                off_t keep = end - (off_t)want + (off_t)i;
                if (keep != st.st_size && ftruncate(fd, keep) == -1)
                    return -1;
                return keep;
            }
        end -= (off_t)want;
    }
    if (st.st_size > 0 && ftruncate(fd, 0) == -1) /* one torn line and nothing else */
        return -1;
    return 0;
}

/* Opens state/ID to append (and read back its tail), creating it (0600) when missing; *created
 * says so. */
static int open_append(struct spool *s, const char *id, bool *created)
{
    int fd;
    *created = false;
    for (int tries = 0; tries < 3; tries++) {
        fd = openat(s->state_fd, id, O_RDWR | O_APPEND | O_CLOEXEC);
        if (fd != -1 || errno != ENOENT)
            return fd;
        fd = openat(s->state_fd, id, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd != -1) {
            *created = true;
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

int qstate_append(struct spool *s, const char *queue_id, const struct qs_rcpt *r, const size_t *idx,
                  size_t k, bool sync)
{
    size_t len;
    char *buf;
    off_t start = 0;
    bool created;
    int fd, e;
    if (!spool_valid_id(queue_id)) {
        errno = EINVAL;
        return -1;
    }
    if (k == 0)
        return 0;
    buf = render(r, idx, k, &len);
    if (buf == NULL)
        return -1;
    fd = open_append(s, queue_id, &created);
    if (fd == -1)
        goto fail_buf;
    if (!created && (start = cut_torn_tail(fd)) == -1)
        goto fail_fd;
    /* One write(2) normally; after a short one (a full disk) the rest is tried, and when that
     * fails the file is cut back to where it was, so no torn line stays behind. One writer per
     * message (the queue runner), so `start` is still the end of the file. */
    if (spool_write_all(fd, buf, len) == -1) {
        e = errno;
        if (ftruncate(fd, start) == -1) {
            /* the torn line is cut at the next append (cut_torn_tail) or ignored by a reader */
        }
        errno = e;
        goto fail_fd;
    }
    if (sync && fdatasync(fd) == -1)
        goto fail_fd;
    /* A new file's name must be durable too before the caller relies on its contents. */
    if (sync && created && fsync(s->state_fd) == -1)
        goto fail_fd;
    free(buf);
    if (close(fd) == -1)
        return -1;
    return 0;
fail_fd:
    e = errno;
    (void)close(fd); /* the failure being reported is the one that matters */
    errno = e;
fail_buf:
    e = errno;
    free(buf);
    errno = e;
    return -1;
}

/* ---- reading ---- */

/* Reads the whole file (at most QS_FILE_MAX octets). */
static char *read_all(int fd, size_t *len)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    if (fstat(fd, &st) == -1)
        return NULL;
    if (st.st_size > QS_FILE_MAX) {
        errno = EFBIG;
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        return NULL;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break; /* cut meanwhile */
        got += (size_t)n;
    }
    *len = got;
    return buf;
}

/* Copies JSON string member key (if present) into out[cap]; false when it is not a string or
 * does not fit. */
static bool get_string(json_t *o, const char *key, char *out, size_t cap)
{
    json_t *v = json_object_get(o, key);
    size_t n;
    if (v == NULL)
        return true;
    if (!json_is_string(v))
        return false;
    n = json_string_length(v);
    if (n >= cap || memchr(json_string_value(v), '\0', n) != NULL)
        return false;
    memcpy(out, json_string_value(v), n + 1);
    return true;
}

/* Integer member key (if present) in [min, max] into *out. */
static bool get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

#define GET_FIELD(o, key, field) get_string(o, key, field, sizeof(field))

/* Parses one line (without LF) into *idx and *out. False when it breaks the format. */
static bool parse_line(const char *line, size_t len, size_t *idx, struct qs_rcpt *out)
{
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *s, *dn;
    int64_t i = -1, n = 0, t = 0, next = 0, code = 0;
    bool ok;
    memset(out, 0, sizeof *out);
    if (o == NULL)
        return false;
    s = json_object_get(o, "s");
    dn = json_object_get(o, "dn");
    ok = json_is_object(o) && json_is_integer(json_object_get(o, "i")) &&
         get_int(o, "i", 0, INT64_MAX, &i) && json_is_string(s) &&
         status_from_name(json_string_value(s), &out->status) && get_int(o, "n", 0, UINT_MAX, &n) &&
         get_int(o, "t", 0, INT64_MAX, &t) && get_int(o, "next", 0, INT64_MAX, &next) &&
         get_int(o, "code", 0, 999, &code) && GET_FIELD(o, "enh", out->enhanced) &&
         GET_FIELD(o, "text", out->text) && GET_FIELD(o, "remote", out->remote) &&
         GET_FIELD(o, "stage", out->stage) && GET_FIELD(o, "dsn", out->dsn_id) &&
         (dn == NULL || json_is_boolean(dn));
    if (ok) {
        *idx = (uint64_t)i > SIZE_MAX ? SIZE_MAX : (size_t)i;
        out->attempts = (unsigned)n;
        out->last_ms = t;
        out->next_ms = next;
        out->code = (int)code;
        out->delay_notified = dn != NULL && json_is_true(dn);
    }
    json_decref(o);
    return ok;
}

int qstate_load(struct spool *s, const char *queue_id, struct qs_rcpt *r, size_t n)
{
    struct qs_rcpt line_state;
    size_t len = 0, pos = 0, idx;
    bool damaged = false;
    char *buf;
    int fd, e;
    for (size_t i = 0; i < n; i++)
        memset(&r[i], 0, sizeof r[i]); /* pending */
    if (!spool_valid_id(queue_id)) {
        errno = EINVAL;
        return -1;
    }
    fd = openat(s->state_fd, queue_id, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return errno == ENOENT ? 0 : -1; /* no outcome recorded yet */
    buf = read_all(fd, &len);
    e = errno;
    (void)close(fd); /* read-only: nothing to lose */
    if (buf == NULL) {
        errno = e;
        return -1;
    }
    /* A last line without its LF is a torn append: it never happened. */
    while (pos < len) {
        const char *lf = memchr(buf + pos, '\n', len - pos);
        if (lf == NULL)
            break;
        if (!parse_line(buf + pos, (size_t)(lf - (buf + pos)), &idx, &line_state))
            damaged = true;                           /* the other lines still count */
        else if (idx < n && !qs_final(r[idx].status)) /* final is sticky */
            r[idx] = line_state;
        /* an index beyond the envelope's recipients names nobody: ignored */
        pos = (size_t)(lf - buf) + 1;
    }
    free(buf);
    if (damaged) {
        errno = EBADMSG;
        return -1;
    }
    return 0;
}
