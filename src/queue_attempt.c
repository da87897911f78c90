/* queue_attempt.c: one delivery attempt of one queued message (docs/delivery.md): read its
 * envelope and state, deliver the recipients that are due over the tenant's route, decide each
 * outcome (delivered, relayed, deferred with backoff, bounced, expired), queue the delivery
 * status notifications they call for (RFC 3461/3464) before recording the outcomes that depend
 * on them, record the state and the delivery log, and remove the message once every recipient
 * is final. Runs on a delivery thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "delivery.h"
#include "directory.h"
#include "dsn.h"
#include "eventlog.h"
#include "logger.h"
#include "logwriter.h"
#include "maildir.h"
#include "oauth_client.h"
#include "queue_runner_int.h"
#include "queue_state.h"
#include "relay.h"
#include "spool.h"

void queue_log_event(struct queue_runner *r, const char *id, const char *ref, const char *rcpt,
                     const char *route, const char *action, int attempt, int code,
                     const char *enhanced, const char *text, const char *remote, const char *dsn_id)
{
    struct delivery_event ev;
    memset(&ev, 0, sizeof ev);
    ev.time_ms = queue_now_ms();
    snprintf(ev.queue_id, sizeof ev.queue_id, "%s", id);
    snprintf(ev.ref, sizeof ev.ref, "%s", ref);
    snprintf(ev.rcpt, sizeof ev.rcpt, "%s", rcpt);
    snprintf(ev.route, sizeof ev.route, "%s", route);
    snprintf(ev.action, sizeof ev.action, "%s", action);
    ev.attempt = attempt;
    ev.reply_code = code;
    snprintf(ev.reply_enhanced, sizeof ev.reply_enhanced, "%s", enhanced);
    snprintf(ev.reply_text, sizeof ev.reply_text, "%s", text);
    snprintf(ev.remote, sizeof ev.remote, "%s", remote);
    snprintf(ev.dsn_queue_id, sizeof ev.dsn_queue_id, "%s", dsn_id);
    if (r->p.log != NULL)
        logwriter_delivery(r->p.log, &ev);
}

/* Exponential backoff from retry-min doubling to retry-max, times a jitter of 0.8-1.2 so that
 * messages deferred together do not return together. */
static int64_t backoff_ms(const struct queue_runner *r, unsigned attempts)
{
    int64_t wait = r->p.retry_min_ms;
    for (unsigned i = 1; i < attempts && wait < r->p.retry_max_ms; i++)
        wait *= 2;
    if (wait > r->p.retry_max_ms)
        wait = r->p.retry_max_ms;
    return wait * (800 + (int64_t)randombytes_uniform(401)) / 1000;
}

static const char *route_name(enum dir_route_kind k)
{
    return k == ROUTE_RELAY     ? "relay"
           : k == ROUTE_LMTP    ? "lmtp"
           : k == ROUTE_MAILDIR ? "maildir"
                                : "none";
}

static enum relay_tls tls_of(const char *s)
{
    return strcmp(s, "opportunistic") == 0 ? RELAY_TLS_OPPORTUNISTIC
           : strcmp(s, "none") == 0        ? RELAY_TLS_NONE
           : strcmp(s, "implicit") == 0    ? RELAY_TLS_IMPLICIT
                                           : RELAY_TLS_REQUIRED;
}

static enum relay_auth auth_of(const char *s)
{
    return strcmp(s, "plain") == 0     ? RELAY_AUTH_PLAIN
           : strcmp(s, "login") == 0   ? RELAY_AUTH_LOGIN
           : strcmp(s, "xoauth2") == 0 ? RELAY_AUTH_XOAUTH2
                                       : RELAY_AUTH_NONE;
}

/* oauth_rotated_fn: tokens are cached per tenant (key), so key names the route to update. */
static void store_rotated(const char *key, const char *token, void *arg)
{
    struct directory *dir = arg;
    if (dir_route_set_refresh_token(dir, key, token) != DIR_OK)
        log_error("tenant=%s event=refresh-token-not-stored reason=\"%s\"", key, dir_error(dir));
}

/* Delivers the recipients sub->rcpts over the route; res has sub->n_rcpts entries. */
static void deliver(struct queue_runner *r, struct directory *dir, const struct dir_route *route,
                    const struct spool_envelope *sub, FILE *fp, long body_offset,
                    struct delivery_result *res)
{
    if (route->kind == ROUTE_NONE) {
        char text[300];
        snprintf(text, sizeof text,
                 "no delivery route for tenant %s (submitctl tenant route %s ...)", sub->tenant,
                 sub->tenant);
        delivery_result_all(res, DELIVERY_TEMP, 0, "4.3.5", "route", text);
        return;
    }
    if (route->kind == ROUTE_MAILDIR) {
        for (size_t k = 0; k < sub->n_rcpts; k++) {
            if (fseek(fp, body_offset, SEEK_SET) != 0) {
                delivery_result_all(res, DELIVERY_TEMP, 0, "4.3.0", "maildir", strerror(errno));
                return;
            }
            maildir_deliver(route->maildir, sub, k, fp, r->hostname, &res->rcpts[k]);
        }
        return;
    }
    struct relay_target t;
    memset(&t, 0, sizeof t);
    t.lmtp = route->kind == ROUTE_LMTP;
    snprintf(t.host, sizeof t.host, "%s", route->host);
    snprintf(t.port, sizeof t.port, "%d", route->port);
    t.tls = tls_of(route->tls);
    t.verify = route->verify;
    snprintf(t.cafile, sizeof t.cafile, "%s", route->cafile);
    t.auth = auth_of(route->auth);
    snprintf(t.user, sizeof t.user, "%s", route->user);
    snprintf(t.helo, sizeof t.helo, "%s", r->hostname);
    t.cancel = &r->cancel;
    char *token = NULL;
    if (t.auth == RELAY_AUTH_XOAUTH2) {
        struct oauth_client_params op = {
            .token_url = route->token_url,
            .client_id = route->client_id,
            .client_secret = route->secret,
            .refresh_token =
                strcmp(route->grant, "refresh_token") == 0 ? route->refresh_token : NULL,
            .scope = route->scope,
            .secret_in_body = route->secret_in_body,
            .cafile = route->cafile,
        };
        bool temporary = true;
        char err[300];
        /* Keyed by tenant; the cache itself refetches when the route's endpoint, client or
         * scope changed (oauth_client.c). */
        token = oauth_tokens_get(r->tokens, sub->tenant, &op, store_rotated, dir, &temporary, err,
                                 sizeof err);
        if (token == NULL) {
            char text[400];
            snprintf(text, sizeof text, "cannot get an OAuth token for the smarthost: %s", err);
            /* An upstream credential problem is the administrator's to fix: the mail waits
             * (and bounces only when it expires). */
            delivery_result_all(res, DELIVERY_TEMP, 0, "4.7.0", "auth", text);
            (void)temporary;
            return;
        }
        t.secret = token;
    } else {
        t.secret = route->secret;
    }
    if (fseek(fp, body_offset, SEEK_SET) != 0) {
        delivery_result_all(res, DELIVERY_TEMP, 0, "4.3.0", "connect", strerror(errno));
    } else {
        relay_deliver(&t, sub, fp, res);
        if (res->auth_rejected && token != NULL)
            oauth_tokens_invalidate(r->tokens, sub->tenant);
    }
    if (token != NULL) {
        sodium_memzero(token, strlen(token));
        free(token);
    }
}

/* ---- notices ---- */

struct commit_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int err;
    char id[QUEUE_ID_LEN + 1];
};

static void commit_done(void *arg, int err, const char *id)
{
    struct commit_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    w->err = err;
    if (err == 0)
        snprintf(w->id, sizeof w->id, "%s", id);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Queues a notice about rcpts to env's sender. Returns 0 with its queue id in dsn_id. */
static int send_notice(struct queue_runner *r, const struct spool_envelope *env, FILE *fp,
                       long body_offset, const struct dsn_rcpt *rcpts, size_t n,
                       char dsn_id[QUEUE_ID_LEN + 1])
{
    struct dsn_report rep = {.env = env,
                             .reporting_mta = r->hostname,
                             .now_ms = queue_now_ms(),
                             .rcpts = rcpts,
                             .n_rcpts = n,
                             .full_limit = r->p.bounce_size_limit};
    size_t len = 0;
    if (fseek(fp, body_offset, SEEK_SET) != 0)
        return -1;
    char *msg = dsn_compose(&rep, fp, &len);
    if (msg == NULL)
        return -1;
    struct spool_envelope denv;
    memset(&denv, 0, sizeof denv);
    char sender_copy[SMTP_PATH_MAX + 1];
    snprintf(sender_copy, sizeof sender_copy, "%s", env->sender);
    char *rcpt_list[1] = {sender_copy};
    denv.received_ms = rep.now_ms;
    denv.rcpts = rcpt_list;
    denv.n_rcpts = 1;
    snprintf(denv.auth_user, sizeof denv.auth_user, "MAILER-DAEMON@%s", r->hostname);
    snprintf(denv.tenant, sizeof denv.tenant, "%s", env->tenant);
    snprintf(denv.client_ip, sizeof denv.client_ip, "127.0.0.1");
    snprintf(denv.helo, sizeof denv.helo, "%s", r->hostname);
    snprintf(denv.body, sizeof denv.body, "%s", env->body[0] ? env->body : "7BIT");
    snprintf(denv.ref, sizeof denv.ref, "%s", env->ref);
    denv.smtputf8 = env->smtputf8;
    denv.is_dsn = true;
    char err[256];
    struct spool_file *f = spool_create(r->p.spool, &denv, err, sizeof err);
    if (f == NULL) {
        log_error("event=dsn-failed reason=\"%s\"", err);
        free(msg);
        return -1;
    }
    if (spool_write(f, msg, len) != 0) {
        spool_abort(f);
        free(msg);
        return -1;
    }
    free(msg);
    struct commit_wait w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    spool_commit(f, commit_done, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    if (w.err != 0)
        return -1;
    memcpy(dsn_id, w.id, QUEUE_ID_LEN + 1);
    return 0;
}

/* ---- the attempt ---- */

static bool all_final(const struct qs_rcpt *st, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!qs_final(st[i].status))
            return false;
    return true;
}

static void remove_message(struct queue_runner *r, const char *id)
{
    const char *ids[1] = {id};
    if (spool_remove(r->p.spool, ids, 1) != 0)
        log_error("queue=%s event=remove-failed reason=\"%s\"", id, strerror(errno));
    else
        log_info("queue=%s event=removed reason=\"every recipient is final\"", id);
}

void queue_attempt(struct queue_runner *r, struct directory *dir, const char *id, bool forced,
                   struct attempt_outcome *out)
{
    struct spool_envelope env;
    long body_offset;
    int64_t now = queue_now_ms();
    memset(out, 0, sizeof *out);
    if (spool_is_held(r->p.spool, id))
        return; /* held: forgotten until released */
    if (spool_load(r->p.spool, id, &env, &body_offset) != 0) {
        if (errno != ENOENT) {
            log_error("queue=%s event=unreadable reason=\"%s\"", id, strerror(errno));
            out->due_ms = now + r->p.retry_max_ms;
        }
        return;
    }
    snprintf(out->route, sizeof out->route, "%s", env.tenant);
    size_t n = env.n_rcpts;
    struct qs_rcpt *st = calloc(n ? n : 1, sizeof *st);
    struct delivery_rcpt_result *res = calloc(n ? n : 1, sizeof *res);
    size_t *pending = calloc(n ? n : 1, sizeof *pending),
           *changed = calloc(n ? n : 1, sizeof *changed);
    char **sub_rcpts = calloc(n ? n : 1, sizeof *sub_rcpts);
    unsigned *sub_notify = calloc(n ? n : 1, sizeof *sub_notify);
    char **sub_orcpt = calloc(n ? n : 1, sizeof *sub_orcpt);
    struct dsn_rcpt *notes = calloc(n ? n : 1, sizeof *notes);
    FILE *fp = NULL;
    if (!st || !res || !pending || !changed || !sub_rcpts || !sub_notify || !sub_orcpt || !notes) {
        out->due_ms = now + r->p.retry_min_ms;
        goto done;
    }
    if (qstate_load(r->p.spool, id, st, n) != 0 && errno != ENOENT)
        log_error("queue=%s event=state-unreadable reason=\"%s\" note=\"recipients not final "
                  "are tried again\"",
                  id, strerror(errno));
    if (all_final(st, n)) {
        remove_message(r, id);
        goto done;
    }
    /* Which recipients are due (all not final when flushed). */
    size_t np = 0;
    int64_t next_due = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (qs_final(st[i].status))
            continue;
        if (forced || st[i].status == QS_PENDING || st[i].next_ms <= now)
            pending[np++] = i;
        else if (st[i].next_ms < next_due)
            next_due = st[i].next_ms;
    }
    if (np == 0) {
        out->due_ms = next_due;
        goto done;
    }
    struct dir_route route;
    memset(&route, 0, sizeof route);
    if (dir_route_get(dir, env.tenant, &route) != DIR_OK)
        route.kind = ROUTE_NONE;
    out->route_limit = route.max_connections;
    fp = spool_open_message(r->p.spool, id);
    if (fp == NULL) {
        out->due_ms = errno == ENOENT ? 0 : now + r->p.retry_min_ms;
        goto done_route;
    }
    struct spool_envelope sub = env;
    for (size_t k = 0; k < np; k++) {
        sub_rcpts[k] = env.rcpts[pending[k]];
        sub_notify[k] = env.notify ? env.notify[pending[k]] : 0;
        sub_orcpt[k] = env.orcpt ? env.orcpt[pending[k]] : NULL;
    }
    sub.rcpts = sub_rcpts;
    sub.n_rcpts = np;
    sub.notify = sub_notify;
    sub.orcpt = sub_orcpt;
    struct delivery_result dres = {.rcpts = res, .n_rcpts = np};
    deliver(r, dir, &route, &sub, fp, body_offset, &dres);

    /* Outcomes. */
    bool expired = now >= env.received_ms + r->p.lifetime_ms;
    size_t nn = 0, nc = 0;
    bool any_final = false;
    for (size_t k = 0; k < np; k++) {
        size_t i = pending[k];
        struct qs_rcpt *s = &st[i];
        struct delivery_rcpt_result *x = &res[k];
        s->attempts++;
        s->last_ms = now;
        s->code = x->code;
        snprintf(s->enhanced, sizeof s->enhanced, "%s", x->enhanced);
        snprintf(s->text, sizeof s->text, "%s", x->text);
        snprintf(s->remote, sizeof s->remote, "%s", dres.remote);
        snprintf(s->stage, sizeof s->stage, "%s", x->stage);
        enum dsn_action action = DSN_FAILED;
        bool notify = false;
        if (x->outcome == DELIVERY_OK) {
            bool relayed = route.kind == ROUTE_RELAY && !x->dsn_passed;
            s->status = relayed ? QS_RELAYED : QS_DELIVERED;
            action = relayed ? DSN_RELAYED : DSN_DELIVERED;
            /* A peer that offered DSN notifies on our behalf from now on. */
            notify = !x->dsn_passed && dsn_wanted(&env, i, action, false);
        } else if (x->outcome == DELIVERY_PERM || expired) {
            s->status = QS_BOUNCED;
            if (x->outcome != DELIVERY_PERM) {
                char text[sizeof s->text];
                snprintf(text, sizeof text,
                         "message expired after %lld hours in the queue; "
                         "last error: %s",
                         (long long)(r->p.lifetime_ms / 3600000), s->text);
                snprintf(s->text, sizeof s->text, "%s", text);
                snprintf(s->enhanced, sizeof s->enhanced,
                         "5.4.7"); /* RFC 3463: delivery time expired */
            }
            notify = dsn_wanted(&env, i, DSN_FAILED, false);
        } else {
            s->status = QS_DEFERRED;
            int64_t next = now + backoff_ms(r, s->attempts);
            int64_t expiry = env.received_ms + r->p.lifetime_ms;
            s->next_ms = next > expiry ? expiry : next; /* one last try at expiry */
            if (r->p.delay_warning_ms > 0 && !s->delay_notified &&
                now - env.received_ms >= r->p.delay_warning_ms &&
                dsn_wanted(&env, i, DSN_DELAYED, true)) {
                action = DSN_DELAYED;
                notify = true;
            }
        }
        if (notify) {
            struct dsn_rcpt *d = &notes[nn++];
            d->index = i;
            d->action = action;
            d->status = s->enhanced[0]             ? s->enhanced
                        : s->status == QS_BOUNCED  ? "5.0.0"
                        : s->status == QS_DEFERRED ? "4.0.0"
                                                   : "2.0.0";
            d->remote_mta = dres.remote;
            d->diagnostic = s->code ? s->text : "";
            d->last_attempt_ms = now;
            d->will_retry_until_ms = action == DSN_DELAYED ? env.received_ms + r->p.lifetime_ms : 0;
        }
        changed[nc++] = i;
        any_final |= qs_final(s->status);
    }
    /* The notice is queued before the outcomes it reports are recorded: a crash in between
     * repeats the notice, never loses it. A notice that cannot be queued (disk full) keeps
     * its recipients deferred. */
    char dsn_id[QUEUE_ID_LEN + 1] = "";
    if (nn > 0) {
        /* diagnostics need the reply code in front: "550 5.1.1 text" */
        char(*diag)[600] = calloc(nn, sizeof *diag);
        for (size_t k = 0; diag != NULL && k < nn; k++) {
            struct qs_rcpt *s = &st[notes[k].index];
            if (s->code != 0) {
                snprintf(diag[k], sizeof diag[k], "%d %s%s%s", s->code, s->enhanced,
                         s->enhanced[0] ? " " : "", s->text);
                notes[k].diagnostic = diag[k];
            }
        }
        if (diag == NULL || send_notice(r, &env, fp, body_offset, notes, nn, dsn_id) != 0) {
            log_error("queue=%s event=dsn-failed note=\"recipients stay deferred\"", id);
            for (size_t k = 0; k < nn; k++) {
                struct qs_rcpt *s = &st[notes[k].index];
                if (s->status == QS_BOUNCED) {
                    s->status = QS_DEFERRED;
                    s->next_ms = now + r->p.retry_min_ms;
                }
            }
            dsn_id[0] = '\0';
            nn = 0;
        } else {
            for (size_t k = 0; k < nn; k++) {
                struct qs_rcpt *s = &st[notes[k].index];
                if (notes[k].action == DSN_DELAYED)
                    s->delay_notified = true;
                if (s->status == QS_BOUNCED)
                    snprintf(s->dsn_id, sizeof s->dsn_id, "%s", dsn_id);
            }
        }
        free(diag);
    }
    if (qstate_append(r->p.spool, id, st, changed, nc, any_final) != 0)
        log_error("queue=%s event=state-write-failed reason=\"%s\" note=\"outcomes may be "
                  "repeated after a restart\"",
                  id, strerror(errno));
    for (size_t k = 0; k < nc; k++) {
        struct qs_rcpt *s = &st[changed[k]];
        const char *action = s->status == QS_DELIVERED           ? "delivered"
                             : s->status == QS_RELAYED           ? "relayed"
                             : s->status == QS_DEFERRED          ? "deferred"
                             : strcmp(s->enhanced, "5.4.7") == 0 ? "expired"
                                                                 : "bounced";
        queue_log_event(r, id, env.ref, env.rcpts[changed[k]], route_name(route.kind), action,
                        (int)s->attempts, s->code, s->enhanced, s->text, s->remote, s->dsn_id);
        log_info("queue=%s event=%s rcpt=<%s> route=%s attempt=%u code=%d enhanced=%s "
                 "remote=\"%s\"",
                 id, action, env.rcpts[changed[k]], route_name(route.kind), s->attempts, s->code,
                 s->enhanced, s->remote);
    }
    if (dsn_id[0] != '\0')
        queue_log_event(r, id, env.ref, env.sender, route_name(route.kind), "dsn", 0, 0, "", "", "",
                        dsn_id);
    if (all_final(st, n)) {
        remove_message(r, id);
        out->due_ms = 0;
    } else {
        int64_t due = INT64_MAX;
        for (size_t i = 0; i < n; i++)
            if (!qs_final(st[i].status) && st[i].next_ms < due)
                due = st[i].next_ms;
        out->due_ms = due == INT64_MAX ? now + r->p.retry_min_ms : due;
    }
done_route:
    sodium_memzero(&route, sizeof route);
done:
    if (fp != NULL)
        fclose(fp);
    spool_envelope_free(&env);
    free(st);
    free(res);
    free(pending);
    free(changed);
    free(sub_rcpts);
    free(sub_notify);
    free(sub_orcpt);
    free(notes);
}
