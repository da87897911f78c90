/* ctl_log.c: `submitctl signins` and `submitctl submissions`: the sign-in log (every AUTH
 * attempt) and the submission log (MAIL/RCPT/DATA answers), newest first, by mailbox or by the
 * reference id a client saw in a reply (SPEC section 4). A reference is always findable: when
 * --ref names an event of the other log, that event is shown. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "eventlog.h"

enum { LOG_OPT_MAILBOX, LOG_OPT_REF, LOG_OPT_LIMIT };
static const struct ctl_opt log_opts[] = {
    {"--mailbox", true}, {"--ref", true}, {"--limit", true}, {NULL, false}};

#define LOG_LIMIT_MAX 100000

struct log_out {
    json_t *arr;   /* --json */
    bool detailed; /* --ref: one event, every field */
    int rows;
};

static json_t *signin_json(const struct signin_event *e)
{
    char t[40];
    ctl_time_ms(e->time_ms, t, sizeof t);
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:i, "
                     "s:s, s:s, s:s, s:s}",
                     "log", "signins", "time", t, "ref", e->ref, "client_ip", e->client_ip,
                     "client_port", e->client_port, "session", e->session, "listener", e->listener,
                     "tls", e->tls, "mech", e->mech, "user", e->user, "success", e->success,
                     "tenant", e->tenant, "gate", e->gate, "level", e->level, "reply_code",
                     e->reply_code, "reply_enhanced", e->reply_enhanced, "reply_text",
                     e->reply_text, "reason", e->reason, "detail", e->detail);
}

static json_t *submission_json(const struct submission_event *e)
{
    char t[40];
    ctl_time_ms(e->time_ms, t, sizeof t);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:b, s:i, s:s, s:s, s:s, s:s, "
        "s:i, s:I, s:s, s:s}",
        "log", "submissions", "time", t, "ref", e->ref, "client_ip", e->client_ip, "client_port",
        e->client_port, "session", e->session, "user", e->user, "stage", e->stage, "accepted",
        e->accepted, "reply_code", e->reply_code, "reply_enhanced", e->reply_enhanced, "reply_text",
        e->reply_text, "sender", e->sender, "recipient", e->recipient, "recipients", e->recipients,
        "size", (json_int_t)e->size, "queue_id", e->queue_id, "last_auth_ref", e->last_auth_ref);
}

/* One event, every field, one per line (for --ref). */
static void print_fields(json_t *event)
{
    const char *key;
    json_t *v;
    json_object_foreach(event, key, v)
    {
        if (json_is_string(v))
            printf("%-16s %s\n", key, json_string_value(v));
        else if (json_is_integer(v))
            printf("%-16s %lld\n", key, (long long)json_integer_value(v));
        else
            printf("%-16s %s\n", key, json_is_true(v) ? "yes" : "no");
    }
}

static void emit(struct log_out *o, json_t *event, const char *line)
{
    o->rows++;
    if (o->arr != NULL)
        json_array_append_new(o->arr, event);
    else if (o->detailed) {
        if (o->rows > 1)
            putchar('\n');
        print_fields(event);
        json_decref(event);
    } else {
        fputs(line, stdout);
        json_decref(event);
    }
}

static void on_signin(const struct signin_event *e, void *arg)
{
    char t[40], client[96], line[1400];
    ctl_time_ms(e->time_ms, t, sizeof t);
    snprintf(client, sizeof client, "%s:%d", e->client_ip, e->client_port);
    snprintf(line, sizeof line, "%-24s %-16s %-26s %-11s %-32s %-7s %-17s %d %-8s %s%s%s%s\n", t,
             e->ref, client, e->mech, e->user, e->success ? "success" : "failure", e->gate,
             e->reply_code, e->reply_enhanced, e->reason[0] ? e->reason : e->reply_text,
             e->detail[0] ? " (" : "", e->detail, e->detail[0] ? ")" : "");
    emit(arg, signin_json(e), line);
}

static void on_submission(const struct submission_event *e, void *arg)
{
    char t[40], client[96], line[1800], what[SMTP_PATH_MAX + 40];
    ctl_time_ms(e->time_ms, t, sizeof t);
    snprintf(client, sizeof client, "%s:%d", e->client_ip, e->client_port);
    if (strcmp(e->stage, "rcpt") == 0)
        snprintf(what, sizeof what, "to %s", e->recipient);
    else if (strcmp(e->stage, "data") == 0)
        snprintf(what, sizeof what, "%d rcpt, %lld octets%s%s", e->recipients, (long long)e->size,
                 e->queue_id[0] ? ", queue " : "", e->queue_id);
    else
        snprintf(what, sizeof what, "from <%s>", e->sender);
    snprintf(line, sizeof line, "%-24s %-16s %-26s %-32s %-4s %-8s %d %-8s %s; %s\n", t, e->ref,
             client, e->user[0] ? e->user : "-", e->stage, e->accepted ? "accepted" : "refused",
             e->reply_code, e->reply_enhanced, what, e->reply_text);
    emit(arg, submission_json(e), line);
}

static int log_run(struct ctl *c, bool signins)
{
    struct signin_filter f = {.mailbox = c->opt[LOG_OPT_MAILBOX], .ref = c->opt[LOG_OPT_REF]};
    long limit = 0;
    if (c->opt[LOG_OPT_LIMIT] != NULL &&
        !ctl_parse_int(c->opt[LOG_OPT_LIMIT], 1, LOG_LIMIT_MAX, &limit))
        return ctl_usage(c, "--limit must be a number from 1 to %d", LOG_LIMIT_MAX);
    f.limit = (int)limit;
    if (f.ref != NULL && (f.ref[0] == '\0' || strlen(f.ref) > REF_ID_LEN))
        return ctl_usage(c, "--ref: not a reference id: %s", f.ref);
    int rc = ctl_datadir_exists(c);
    if (rc != 0)
        return rc;
    char err[256] = "";
    struct eventlog *l = eventlog_open(c->datadir, err, sizeof err);
    if (l == NULL)
        return ctl_fail(c, "cannot open the event log in %s: %s", c->datadir, err);
    struct log_out out = {.arr = c->json ? json_array() : NULL, .detailed = f.ref != NULL};
    if (!c->json && !out.detailed) {
        if (signins)
            printf("%-24s %-16s %-26s %-11s %-32s %-7s %-17s %-12s %s\n", "TIME", "REF", "CLIENT",
                   "MECH", "USER", "RESULT", "GATE", "REPLY", "REASON");
        else
            printf("%-24s %-16s %-26s %-32s %-4s %-8s %-12s %s\n", "TIME", "REF", "CLIENT", "USER",
                   "STAGE", "RESULT", "REPLY", "DETAIL; REPLY TEXT");
    }
    int n = signins ? eventlog_query_signins(l, &f, on_signin, &out)
                    : eventlog_query_submissions(l, &f, on_submission, &out);
    /* A reference from a reply must always lead somewhere: try the other log. */
    if (n == 0 && f.ref != NULL)
        n = signins ? eventlog_query_submissions(l, &f, on_submission, &out)
                    : eventlog_query_signins(l, &f, on_signin, &out);
    eventlog_close(l);
    if (n < 0) {
        json_decref(out.arr);
        return ctl_fail(c, "cannot read the event log in %s", c->datadir);
    }
    if (n == 0 && f.ref != NULL) {
        json_decref(out.arr);
        return ctl_fail(c, "no event with reference %s in the sign-in or submission log", f.ref);
    }
    if (!c->json)
        return CTL_EXIT_OK;
    if (f.ref != NULL && json_array_size(out.arr) == 1) {
        json_t *one = json_incref(json_array_get(out.arr, 0));
        json_decref(out.arr);
        return ctl_json_print(one);
    }
    return ctl_json_print(out.arr);
}

static int signins_run(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    return log_run(c, true);
}

static int submissions_run(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    return log_run(c, false);
}

const struct ctl_command ctl_log_commands[] = {
    {"signins", NULL, "[--mailbox ADDRESS] [--ref ID] [--limit N]",
     "the sign-in log (every AUTH attempt), newest first; --ref finds the event of a reply", 0, 0,
     CTL_JSON, log_opts, signins_run},
    {"submissions", NULL, "[--mailbox ADDRESS] [--ref ID] [--limit N]",
     "the submission log (MAIL, RCPT, end of DATA), newest first", 0, 0, CTL_JSON, log_opts,
     submissions_run},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
