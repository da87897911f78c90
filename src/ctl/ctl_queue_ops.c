/* ctl_queue_ops.c: `submitctl queue flush [ID]`, `hold ID`, `release ID`, `delete ID` and
 * `log ID|REF`. The first four are sent to the running server over its control socket
 * (control.h) and its answer printed; with no server running, hold, release and delete act on
 * the spool directly (spool.h) and write their delivery-log event themselves, while flush has
 * nothing to flush. `log` prints the delivery log (eventlog.h) of a message, by queue id or by
 * the reference id of the submission that queued it. docs/submitctl.md. */
#include "ctl_queue_ops.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "eventlog.h"
#include "spool.h"

#define REPLY_MAX 512

/* A queue id or reference: 16 hexadecimal digits, upper-cased into out. */
static bool parse_id(const char *arg, char out[QUEUE_ID_LEN + 1])
{
    if (strlen(arg) != QUEUE_ID_LEN)
        return false;
    for (size_t i = 0; i < QUEUE_ID_LEN; i++) {
        if (!isxdigit((unsigned char)arg[i]))
            return false;
        out[i] = (char)toupper((unsigned char)arg[i]);
    }
    out[QUEUE_ID_LEN] = '\0';
    return true;
}

enum sent { SENT_ANSWERED, SENT_NO_SERVER, SENT_FAILED };

/* Sends request to the server. SENT_ANSWERED: the answer is printed and *rc is the exit code;
 * SENT_NO_SERVER: nothing runs; SENT_FAILED: *rc holds the exit code (message printed). */
static enum sent send_request(const struct ctl *c, const char *request, int *rc)
{
    char reply[REPLY_MAX];
    if (control_request(c->datadir, request, reply, sizeof reply) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            return SENT_NO_SERVER;
        *rc = ctl_fail(c, "cannot reach submitd on %s/%s: %s", c->datadir, CONTROL_SOCKET_NAME,
                       strerror(errno));
        return SENT_FAILED;
    }
    if (strcmp(reply, "ok") == 0 || strncmp(reply, "ok ", 3) == 0) {
        if (reply[2] != '\0')
            printf("%s\n", reply + 3);
        *rc = CTL_EXIT_OK;
    } else if (strncmp(reply, "error", 5) == 0 && (reply[5] == '\0' || reply[5] == ' ')) {
        *rc = ctl_fail(c, "%s", reply[5] ? reply + 6 : "refused by submitd");
    } else {
        *rc = ctl_fail(c, "unexpected answer from submitd: %s", reply);
    }
    return SENT_ANSWERED;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes what was done to a message into the delivery log, as the server does for requests it
 * carries out. A failure is reported on stderr but changes nothing of what was done. */
static void log_action(const struct ctl *c, const char *id, const char *ref, const char *action)
{
    struct delivery_event e;
    memset(&e, 0, sizeof e);
    e.time_ms = wall_ms();
    snprintf(e.queue_id, sizeof e.queue_id, "%s", id);
    snprintf(e.ref, sizeof e.ref, "%s", ref);
    snprintf(e.action, sizeof e.action, "%s", action);
    snprintf(e.reply_text, sizeof e.reply_text, "by submitctl");
    char err[256] = "";
    struct eventlog *l = eventlog_open(c->datadir, err, sizeof err);
    if (l == NULL) {
        fprintf(stderr, "submitctl: queue %s: %s %s, but the delivery log cannot be opened: %s\n",
                c->cmd->name, action, id, err);
        return;
    }
    if (eventlog_delivery(l, &e) != 0)
        fprintf(stderr, "submitctl: queue %s: %s %s, but the delivery log was not written: %s\n",
                c->cmd->name, action, id, eventlog_error(l));
    eventlog_close(l);
}

/* The reference of a queued message's submission ("" when unknown). */
static void message_ref(struct spool *s, const char *id, char ref[REF_ID_LEN + 1])
{
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    long offset = 0;
    ref[0] = '\0';
    if (spool_load(s, id, &env, &offset) == 0) {
        snprintf(ref, REF_ID_LEN + 1, "%s", env.ref);
        spool_envelope_free(&env);
    }
}

/* Whether id is a message that is not held (in queue/ or only in the journal). */
static bool unheld_message(struct spool *s, const char *id)
{
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    long offset = 0;
    if (spool_load(s, id, &env, &offset) != 0)
        return false;
    spool_envelope_free(&env);
    return !spool_is_held(s, id);
}

#define JOURNAL_NOTE                                                                               \
    "it lives in the journal, which only submitd writes, and submitd holds the data directory "   \
    "but does not answer on control.sock yet (try again)"

/* Takes DIR/submitd.pid's lock as submitd does (so that no submitd starts meanwhile); -1 when a
 * submitd holds it. */
static int lock_datadir(const struct ctl *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/submitd.pid", c->datadir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd != -1 && flock(fd, LOCK_EX | LOCK_NB) == -1) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* hold, release or delete without a server: the same spool operations the server does. With the
 * data directory locked, the spool is opened as the server opens it (a message living in the
 * journal can be moved or removed); else read-only. */
static int offline(struct ctl *c, enum control_cmd cmd, const char *id)
{
    char err[256] = "";
    int lock = lock_datadir(c);
    struct spool *s = lock != -1 ? spool_open(c->datadir, err, sizeof err)
                                 : spool_open_reader(c->datadir, err, sizeof err);
    if (s == NULL) {
        if (lock != -1)
            close(lock);
        return ctl_fail(c, "cannot open the spool in %s: %s", c->datadir, err);
    }
    char ref[REF_ID_LEN + 1] = "";
    const char *action = NULL;
    int rc = CTL_EXIT_OK;
    if (cmd == CONTROL_HOLD) {
        /* why it failed, from the spool's state rather than from errno alone */
        int e = spool_hold(s, id) == 0 ? 0 : errno;
        if (e == 0)
            action = "held";
        else if (spool_is_held(s, id))
            rc = ctl_fail(c, "cannot hold %s: it is already held", id);
        else if (!unheld_message(s, id))
            rc = ctl_fail(c, "cannot hold %s: no such message in the queue", id);
        else /* loadable but not movable: only in the journal, or a real failure */
            rc = ctl_fail(c, "cannot hold %s: %s", id,
                          e == ENOENT || e == EAGAIN || e == 0 ? JOURNAL_NOTE : strerror(e));
        if (action != NULL)
            message_ref(s, id, ref);
    } else if (cmd == CONTROL_RELEASE) {
        int e = spool_release(s, id) == 0 ? 0 : errno;
        if (e == 0)
            action = "released";
        else
            rc = ctl_fail(c, "cannot release %s: %s", id,
                          e == ENOENT || !spool_is_held(s, id) ? "no such held message"
                                                               : strerror(e));
        if (action != NULL)
            message_ref(s, id, ref);
    } else {
        struct spool_envelope env;
        memset(&env, 0, sizeof env);
        long offset = 0;
        const char *ids[1] = {id};
        if (spool_load(s, id, &env, &offset) != 0) {
            rc = ctl_fail(c, "cannot delete %s: no such message", id);
        } else {
            snprintf(ref, sizeof ref, "%s", env.ref);
            spool_envelope_free(&env);
            int e = spool_remove(s, ids, 1) == 0 ? 0 : errno;
            if (e == 0)
                action = "deleted";
            else
                rc = ctl_fail(c, "cannot delete %s: %s", id,
                              e == EAGAIN   ? JOURNAL_NOTE
                              : e == ENOENT ? "no such message"
                                            : strerror(e));
        }
    }
    spool_close(s);
    if (lock != -1)
        close(lock);
    if (action == NULL)
        return rc;
    log_action(c, id, ref, action);
    printf("%s %s%s\n", action, id, cmd == CONTROL_DELETE ? " (no notice sent)" : "");
    return CTL_EXIT_OK;
}

static int queue_op(struct ctl *c, enum control_cmd cmd, const char *word, const char *arg)
{
    char id[QUEUE_ID_LEN + 1] = "";
    if (arg != NULL && !parse_id(arg, id))
        return ctl_usage(c, "not a queue id: %s (%d hexadecimal digits)", arg, QUEUE_ID_LEN);
    int rc = ctl_datadir_exists(c);
    if (rc != 0)
        return rc;
    char request[64];
    snprintf(request, sizeof request, "%s%s%s", word, id[0] ? " " : "", id);
    switch (send_request(c, request, &rc)) {
    case SENT_ANSWERED:
    case SENT_FAILED:
        return rc;
    case SENT_NO_SERVER:
        break;
    }
    if (cmd == CONTROL_FLUSH)
        return ctl_fail(c, "submitd is not running (nothing answers on %s/%s): nothing to flush",
                        c->datadir, CONTROL_SOCKET_NAME);
    return offline(c, cmd, id);
}

int ctl_queue_flush(struct ctl *c, char **pos, int npos)
{
    return queue_op(c, CONTROL_FLUSH, "flush", npos > 0 ? pos[0] : NULL);
}

int ctl_queue_hold(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return queue_op(c, CONTROL_HOLD, "hold", pos[0]);
}

int ctl_queue_release(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return queue_op(c, CONTROL_RELEASE, "release", pos[0]);
}

int ctl_queue_delete(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return queue_op(c, CONTROL_DELETE, "delete", pos[0]);
}

/* ---- queue log ---- */

static json_t *delivery_json(const struct delivery_event *e)
{
    char t[40];
    ctl_time_ms(e->time_ms, t, sizeof t);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s}", "time", t,
                     "queue_id", e->queue_id, "ref", e->ref, "rcpt", e->rcpt, "route", e->route,
                     "action", e->action, "attempt", e->attempt, "reply_code", e->reply_code,
                     "reply_enhanced", e->reply_enhanced, "reply_text", e->reply_text, "remote",
                     e->remote, "dsn_queue_id", e->dsn_queue_id);
}

struct log_out {
    json_t *arr; /* --json */
    int rows;
};

static void on_delivery(const struct delivery_event *e, void *arg)
{
    struct log_out *o = arg;
    o->rows++;
    if (o->arr != NULL) {
        json_array_append_new(o->arr, delivery_json(e));
        return;
    }
    if (o->rows == 1)
        printf("%-24s %-16s %-32s %-9s %-40s %s\n", "TIME", "QUEUE-ID", "RCPT", "ACTION", "REMOTE",
               "REPLY");
    char t[40], reply[700];
    ctl_time_ms(e->time_ms, t, sizeof t);
    if (e->reply_code != 0)
        snprintf(reply, sizeof reply, "%d%s%s %s", e->reply_code, e->reply_enhanced[0] ? " " : "",
                 e->reply_enhanced, e->reply_text);
    else
        snprintf(reply, sizeof reply, "%s", e->reply_text[0] ? e->reply_text : "-");
    if (e->dsn_queue_id[0] != '\0') {
        size_t n = strlen(reply);
        snprintf(reply + n, sizeof reply - n, " (notice %s)", e->dsn_queue_id);
    }
    printf("%-24s %-16s %-32s %-9s %-40s %s\n", t, e->queue_id, e->rcpt[0] ? e->rcpt : "-",
           e->action, e->remote[0] ? e->remote : "-", reply);
}

int ctl_queue_log(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    char key[QUEUE_ID_LEN + 1];
    if (!parse_id(pos[0], key))
        return ctl_usage(c, "not a queue id or reference: %s (%d hexadecimal digits)", pos[0],
                         QUEUE_ID_LEN);
    int rc = ctl_datadir_exists(c);
    if (rc != 0)
        return rc;
    char err[256] = "";
    struct eventlog *l = eventlog_open(c->datadir, err, sizeof err);
    if (l == NULL)
        return ctl_fail(c, "cannot open the event log in %s: %s", c->datadir, err);
    struct log_out out = {.arr = c->json ? json_array() : NULL};
    int n = eventlog_query_deliveries(l, key, on_delivery, &out);
    if (n < 0) {
        rc = ctl_fail(c, "cannot read the delivery log in %s: %s", c->datadir, eventlog_error(l));
        eventlog_close(l);
        json_decref(out.arr);
        return rc;
    }
    eventlog_close(l);
    return c->json ? ctl_json_print(out.arr) : CTL_EXIT_OK;
}
