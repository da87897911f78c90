/* ctl_queue.c: `submitctl queue list|show`: the messages in the durable queue (SPEC section 7),
 * read through spool.h without starting the group-commit thread. Shows envelopes (RFC 5321
 * reverse-path and forward-paths, with RFC 3461 ENVID/RET and per recipient NOTIFY/ORCPT) and,
 * with --body, the message as stored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"
#include "ctl_queue_state.h"
#include "ctl_queue_ops.h"
#include "spool.h"

enum { QUEUE_OPT_BODY };
static const struct ctl_opt queue_show_opts[] = {{"--body", false}, {NULL, false}};

static int open_spool(const struct ctl *c, struct spool **s)
{
    int rc = ctl_datadir_exists(c);
    if (rc != 0)
        return rc;
    char err[256] = "";
    *s = spool_open_reader(c->datadir, err, sizeof err);
    if (*s == NULL)
        return ctl_fail(c, "cannot open the spool in %s: %s", c->datadir, err);
    return 0;
}

static unsigned rcpt_notify(const struct spool_envelope *env, size_t i)
{
    return env->notify != NULL ? env->notify[i] : 0;
}

static const char *rcpt_orcpt(const struct spool_envelope *env, size_t i)
{
    return env->orcpt != NULL ? env->orcpt[i] : NULL;
}

/* "SUCCESS,FAILURE" into buf; "" when NOTIFY was not given. */
static const char *notify_text(unsigned bits, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t w = 0; w < SPOOL_NOTIFY_WORDS; w++)
        if (bits & spool_notify_words[w].bit)
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "",
                                  spool_notify_words[w].word);
    return buf;
}

static json_t *envelope_json(const struct spool_envelope *env)
{
    char t[40];
    ctl_time_ms(env->received_ms, t, sizeof t);
    json_t *rcpts = json_array(), *notify = json_array(), *orcpt = json_array();
    for (size_t i = 0; i < env->n_rcpts; i++) {
        json_array_append_new(rcpts, json_string(env->rcpts[i]));
        json_t *words = json_array();
        for (size_t w = 0; w < SPOOL_NOTIFY_WORDS; w++)
            if (rcpt_notify(env, i) & spool_notify_words[w].bit)
                json_array_append_new(words, json_string(spool_notify_words[w].word));
        json_array_append_new(notify, words);
        const char *o = rcpt_orcpt(env, i);
        json_array_append_new(orcpt, o != NULL ? json_string(o) : json_null());
    }
    /* notify and orcpt run parallel to recipients: [] and null = not given (RFC 3461) */
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:b, s:s, s:s, "
                     "s:s, s:o, s:o, s:b}",
                     "id", env->queue_id, "time", t, "size", (json_int_t)env->size, "sender",
                     env->sender, "recipients", rcpts, "auth_user", env->auth_user, "tenant",
                     env->tenant, "client_ip", env->client_ip, "client_port", env->client_port,
                     "helo", env->helo, "session", env->session, "body", env->body, "smtputf8",
                     env->smtputf8, "ref", env->ref, "envid", env->envid, "ret", env->ret, "notify",
                     notify, "orcpt", orcpt, "is_dsn", env->is_dsn);
}

struct listing {
    json_t *arr; /* --json */
    struct spool *spool;
};

static void list_entry(const struct spool_entry *e, void *arg)
{
    struct listing *l = arg;
    const struct spool_envelope *env = e->env;
    if (l->arr != NULL) {
        json_t *j = envelope_json(env);
        if (j != NULL) {
            json_object_set_new(j, "recipient_count", json_integer((json_int_t)env->n_rcpts));
            json_object_del(j, "recipients");
            json_object_del(j, "notify");
            json_object_del(j, "orcpt");
            ctl_queue_state_json(l->spool, env, j);
        }
        json_array_append_new(l->arr, j);
        return;
    }
    char t[40], state[96];
    ctl_time_ms(env->received_ms, t, sizeof t);
    printf("%-16s %-24s %10llu %-32s %5zu %s\n", env->queue_id, t, (unsigned long long)env->size,
           env->sender[0] ? env->sender : "<>", env->n_rcpts,
           ctl_queue_state_summary(l->spool, env, state, sizeof state));
}

static void list_held(const char *id, void *arg)
{
    struct listing *l = arg;
    struct spool_envelope env;
    long off;
    if (spool_load(l->spool, id, &env, &off) != 0)
        return; /* released or deleted meanwhile */
    struct spool_entry e = {.env = &env};
    list_entry(&e, l);
    spool_envelope_free(&env);
}

static int queue_list(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    struct spool *s = NULL;
    int rc = open_spool(c, &s);
    if (rc != 0)
        return rc;
    struct listing l = {c->json ? json_array() : NULL, s};
    if (!c->json)
        printf("%-16s %-24s %10s %-32s %5s %s\n", "ID", "TIME", "SIZE", "SENDER", "RCPTS", "STATE");
    int n = spool_list(s, list_entry, &l);
    int h = n < 0 ? -1 : spool_ids(s, true, list_held, &l);
    spool_close(s);
    if (n < 0 || h < 0) {
        json_decref(l.arr);
        return ctl_fail(c, "cannot list the queue in %s/spool", c->datadir);
    }
    return c->json ? ctl_json_print(l.arr) : CTL_EXIT_OK;
}

/* Reads the stored message (at most the envelope's size, plus a little) into memory. */
static char *read_message(struct spool *s, const char *id, size_t *len)
{
    FILE *f = spool_open_message(s, id);
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void print_envelope(const struct spool_envelope *env)
{
    char t[40];
    ctl_time_ms(env->received_ms, t, sizeof t);
    printf("id                  %s\n", env->queue_id);
    printf("received            %s\n", t);
    printf("size                %llu octets\n", (unsigned long long)env->size);
    printf("sender              <%s>\n", env->sender);
    for (size_t i = 0; i < env->n_rcpts; i++) {
        char words[40];
        const char *o = rcpt_orcpt(env, i);
        printf("%-19s <%s>", i == 0 ? "recipients" : "", env->rcpts[i]);
        if (rcpt_notify(env, i) != 0)
            printf(" NOTIFY=%s", notify_text(rcpt_notify(env, i), words, sizeof words));
        if (o != NULL)
            printf(" ORCPT=%s", o);
        putchar('\n');
    }
    printf("reference           %s\n", env->ref[0] ? env->ref : "-");
    printf("envid               %s\n", env->envid[0] ? env->envid : "-");
    printf("ret                 %s\n", env->ret[0] ? env->ret : "-");
    if (env->is_dsn)
        printf("dsn                 a delivery status notification made here\n");
    printf("auth user           %s\n", env->auth_user[0] ? env->auth_user : "-");
    printf("tenant              %s\n", env->tenant[0] ? env->tenant : "-");
    printf("client              %s:%d (helo %s)\n", env->client_ip, env->client_port, env->helo);
    printf("session             %s\n", env->session);
    printf("body                %s%s\n", env->body, env->smtputf8 ? ", SMTPUTF8" : "");
}

static int queue_show(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    const char *id = pos[0];
    bool body = c->opt[QUEUE_OPT_BODY] != NULL;
    bool ok = strlen(id) == QUEUE_ID_LEN;
    for (size_t i = 0; ok && i < QUEUE_ID_LEN; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F');
    if (!ok)
        return ctl_usage(c, "not a queue id: %s (%d upper-case hex digits)", id, QUEUE_ID_LEN);
    struct spool *s = NULL;
    int rc = open_spool(c, &s);
    if (rc != 0)
        return rc;
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    long offset = 0;
    if (spool_load(s, id, &env, &offset) != 0) {
        int e = errno;
        spool_close(s);
        if (e == ENOENT)
            return ctl_fail(c, "no message %s in the queue", id);
        return ctl_fail(c, "cannot read message %s: %s", id, strerror(e));
    }
    size_t len = 0;
    char *msg = body ? read_message(s, id, &len) : NULL;
    json_t *j = c->json ? envelope_json(&env) : NULL;
    if (j != NULL)
        ctl_queue_state_json(s, &env, j);
    else if (!c->json)
        print_envelope(&env);
    if (!c->json)
        ctl_queue_state_print(s, &env);
    spool_close(s);
    if (body && msg == NULL) {
        json_decref(j);
        spool_envelope_free(&env);
        return ctl_fail(c, "cannot read the message of %s: %s", id, strerror(errno));
    }
    if (c->json) {
        if (j != NULL && msg != NULL) {
            json_t *text = json_stringn(msg, len);
            if (text != NULL) {
                json_object_set_new(j, "message", text);
            } else { /* not UTF-8 (e.g. BINARYMIME): base64 keeps it exact */
                size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
                char *b64 = malloc(b64len);
                if (b64 != NULL) {
                    sodium_bin2base64(b64, b64len, (const unsigned char *)msg, len,
                                      sodium_base64_VARIANT_ORIGINAL);
                    json_object_set_new(j, "message_base64", json_string(b64));
                }
                free(b64);
            }
        }
        rc = ctl_json_print(j);
    } else {
        if (msg != NULL) {
            putchar('\n');
            fwrite(msg, 1, len, stdout);
        }
        rc = CTL_EXIT_OK;
    }
    free(msg);
    spool_envelope_free(&env);
    return rc;
}

const struct ctl_command ctl_queue_commands[] = {
    {"queue", "list", "", "messages in the queue, oldest first", 0, 0, CTL_JSON, NULL, queue_list},
    {"queue", "show", "ID [--body]", "a queued message's envelope (and with --body the message)", 1,
     1, CTL_JSON, queue_show_opts, queue_show},
    /* ctl_queue_ops.c */
    {"queue", "flush", "[ID]", "asks submitd to try every deferred message (or ID) now", 0, 1, 0,
     NULL, ctl_queue_flush},
    {"queue", "hold", "ID", "stops delivery of a message until it is released", 1, 1, 0, NULL,
     ctl_queue_hold},
    {"queue", "release", "ID", "returns a held message to the queue (tried at once)", 1, 1, 0, NULL,
     ctl_queue_release},
    {"queue", "delete", "ID", "removes a message from the queue without a notice", 1, 1, 0, NULL,
     ctl_queue_delete},
    {"queue", "log", "ID|REF", "the delivery log of a message, by queue id or submission reference",
     1, 1, CTL_JSON, NULL, ctl_queue_log},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
