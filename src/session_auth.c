/* session_auth.c: the AUTH command (RFC 4954): SASL framing on the event loop (334
 * continuations, base64, '*' cancels, the 12288-octet limit) and the decision on a worker
 * thread: directory snapshot, password verification (argon2id, constant work for unknown
 * users), then policy_decide over SPEC section 3's gates. Every attempt goes to the sign-in
 * log with the gate that decided it and the reference id the client sees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <sodium.h>

#include "app_password.h"
#include "base64.h"
#include "directory.h"
#include "authcache.h"
#include "issuer.h"
#include "jobs.h"
#include "jwks_cache.h"
#include "jwt.h"
#include "lockout.h"
#include "logger.h"
#include "loop.h"
#include "logwriter.h"
#include "password.h"
#include "policy.h"
#include "sasl.h"
#include "server.h"
#include "session.h"

struct auth_job {
    struct session *s;
    struct sasl_credentials cred; /* wiped as soon as it is verified */
    enum sasl_mech mech;
    bool tls;
    bool cleartext_allowed;
    struct netaddr client;
    bool client_known;
    char client_ip[64];
    /* results */
    bool tempfail;
    bool token_failed;           /* OAuth: the token itself was refused (RFC 7628 error) */
    struct policy_decision d;
    char address[SMTP_PATH_MAX + 1]; /* the mailbox, normalized */
    char tenant[SMTP_DOMAIN_MAX + 1];
    char scope[64];              /* the tenant's OAuth scope, for the RFC 7628 error */
    char openid[300];            /* the issuer's openid-configuration URL, when it has one */
    int64_t mailbox_id;
    struct dir_limits limits;
    bool locked_out;
    unsigned delay_ms;           /* smart lockout: wait this long before a failure reply */
    bool delayed;
    char detail[256];
};

/* ---- the sign-in log ---- */

static void auth_log(struct session *s, const char *mech, const char *user, bool success,
                     const char *gate, const char *level, enum reply_id told,
                     enum reply_id reason, const char *ref, const char *tenant,
                     const char *detail)
{
    struct signin_event e;
    memset(&e, 0, sizeof e);
    e.time_ms = session_now_ms();
    snprintf(e.ref, sizeof e.ref, "%s", ref ? ref : "");
    snprintf(e.session, sizeof e.session, "%s", s->id);
    snprintf(e.client_ip, sizeof e.client_ip, "%s", s->peer_ip);
    e.client_port = s->peer_port;
    snprintf(e.listener, sizeof e.listener, "%s", s->listener->lc.name);
    snprintf(e.tls, sizeof e.tls, "%s", s->tls ? s->tls_version : "none");
    snprintf(e.mech, sizeof e.mech, "%s", mech);
    log_sanitize(user, strlen(user), e.user, sizeof e.user);
    snprintf(e.tenant, sizeof e.tenant, "%s", tenant ? tenant : "");
    e.success = success;
    snprintf(e.gate, sizeof e.gate, "%s", gate);
    snprintf(e.level, sizeof e.level, "%s", level);
    const struct reply_entry *t = &reply_catalogue[told], *r = &reply_catalogue[reason];
    e.reply_code = t->code;
    snprintf(e.reply_enhanced, sizeof e.reply_enhanced, "%s", t->enhanced ? t->enhanced : "");
    snprintf(e.reply_text, sizeof e.reply_text, "%s", t->text);
    if (reason != told)
        snprintf(e.reason, sizeof e.reason, "%d %s %s", r->code, r->enhanced, r->text);
    snprintf(e.detail, sizeof e.detail, "%s", detail ? detail : "");
    logwriter_signin(s->srv->logw, &e);
    log_info("session=%s event=auth mech=%s user=\"%s\" result=%s gate=%s ref=%s", s->id, mech,
             e.user, success ? "pass" : "fail", gate, ref ? ref : "-");
}

/* Refuses an AUTH exchange at the SASL layer (not a policy gate) and logs it. */
static void auth_refuse(struct session *s, enum reply_id id, const char *gate, const char *user)
{
    char ref[REF_ID_LEN + 1] = "";
    const char *mech = s->sasl ? sasl_mech_name(s->sasl->mech) : "-";
    session_reply(s, id, NULL, ref);
    auth_log(s, mech, user ? user : "", false, gate, "none", id, id, ref, NULL, NULL);
    if (s->sasl) {
        sasl_wipe(s->sasl);
        free(s->sasl);
        s->sasl = NULL;
    }
    if (s->state == SESSION_SASL)
        s->state = SESSION_COMMAND;
}

/* ---- the decision, on a worker ---- */

/* What the client proved, and how (for the decision and the sign-in log). */
struct proof {
    bool valid;
    enum auth_kind kind;
};

/* PLAIN / LOGIN: the mailbox password, else one of its app passwords (SPEC 2). The argon2id
 * verification runs whether or not the mailbox exists: the same work either way. */
static struct proof prove_password(struct auth_job *j, struct worker_ctx *w,
                                   const struct dir_auth_view *v)
{
    struct proof p = {false, AUTH_KIND_PASSWORD};
    const char *hash = v->mailbox_found ? v->mailbox.password_hash : NULL;
    /* A device signing in again with credentials verified since the last directory change
     * skips argon2id (authcache.h); anyone else pays the full, equal cost. */
    int64_t generation = -1, cached_id = 0;
    bool password_ok = false;
    if (v->mailbox_found && dir_generation(w->dir, &generation) == DIR_OK &&
        authcache_hit(w->authcache, v->mailbox.address, j->cred.secret, j->cred.secret_len,
                      generation, session_now_ms(), &cached_id) &&
        cached_id == v->mailbox.id)
        password_ok = true;
    else
        password_ok = password_verify(hash, j->cred.secret, j->cred.secret_len);
    if (password_ok && generation >= 0 && !cached_id)
        authcache_store(w->authcache, v->mailbox.address, j->cred.secret, j->cred.secret_len,
                        generation, v->mailbox.id, session_now_ms());
    if (password_ok && password_needs_rehash(hash)) {
        /* A hash made at another cost (auth-memlimit changed, or made elsewhere) is redone at
         * the current one, so that every stored hash costs what the dummy hash costs. */
        char fresh[PASSWORD_HASH_MAX + 1];
        if (password_hash(j->cred.secret, j->cred.secret_len, fresh) == 0 &&
            dir_mailbox_set_password(w->dir, v->mailbox.address, fresh) == DIR_OK)
            log_info("event=password-rehashed mailbox=%s", v->mailbox.address);
        sodium_memzero(fresh, sizeof fresh);
    }
    int64_t app_id = 0;
    if (!password_ok && v->mailbox_found) {
        char h[APP_PASSWORD_HASH_HEX + 1];
        app_password_hash(j->cred.secret, j->cred.secret_len, h);
        if (dir_app_password_match(w->dir, v->mailbox.id, h, &app_id) == DIR_OK)
            p.kind = AUTH_KIND_APP_PASSWORD;
    }
    bool authzid_ok = true;
    if (j->cred.authzid[0]) {
        char a[SMTP_PATH_MAX + 1], b[SMTP_PATH_MAX + 1];
        authzid_ok = smtp_address_normalize(j->cred.authzid, a, sizeof a) &&
                     smtp_address_normalize(j->cred.authcid, b, sizeof b) && strcmp(a, b) == 0;
    }
    p.valid = (password_ok || app_id) && authzid_ok && v->mailbox_found;
    if (!v->tenant_found)
        snprintf(j->detail, sizeof j->detail, "no tenant has this domain");
    else if (!v->mailbox_found)
        snprintf(j->detail, sizeof j->detail, "no such mailbox");
    else if (!v->mailbox.password_hash[0] && !app_id)
        snprintf(j->detail, sizeof j->detail, "the mailbox has no password set");
    else if (!password_ok && !app_id)
        snprintf(j->detail, sizeof j->detail, "wrong password");
    else if (!authzid_ok)
        snprintf(j->detail, sizeof j->detail,
                 "authorization identity differs from the user (not permitted)");
    else if (app_id)
        snprintf(j->detail, sizeof j->detail, "credential=app-password id=%lld",
                 (long long)app_id);
    else
        snprintf(j->detail, sizeof j->detail, "credential=password");
    if (p.valid && app_id)
        dir_app_password_touch(w->dir, app_id, session_now_ms() / 1000);
    return p;
}

/* XOAUTH2 / OAUTHBEARER: the bearer token (SPEC 5), and whether its identity may act as the
 * SASL user. Sets j->tempfail when the keys cannot be had. */
static struct proof prove_token(struct auth_job *j, struct worker_ctx *w,
                                const struct dir_auth_view *v, struct jwks_cache *cache,
                                const char *datadir)
{
    (void)datadir;
    struct proof p = {false, AUTH_KIND_OAUTH};
    if (!v->tenant_found || !v->mailbox_found) {
        snprintf(j->detail, sizeof j->detail, "%s",
                 v->tenant_found ? "no such mailbox" : "no tenant has this domain");
        j->token_failed = true;
        return p;
    }
    const struct dir_tenant *t = &v->tenant;
    snprintf(j->scope, sizeof j->scope, "%s", t->oauth_scope[0] ? t->oauth_scope : "SMTP.Send");
    if (strncmp(t->oauth_issuer, "https://", 8) == 0)
        snprintf(j->openid, sizeof j->openid, "%s%s.well-known/openid-configuration",
                 t->oauth_issuer,
                 t->oauth_issuer[strlen(t->oauth_issuer) - 1] == '/' ? "" : "/");
    const char *token = (const char *)j->cred.secret;
    size_t len = j->cred.secret_len;
    enum jwt_alg alg = JWT_ALG_NONE;
    char kid[JWT_KID_MAX + 1] = "";
    enum jwt_error e = jwt_peek(token, len, &alg, kid);
    struct jwt_claims claims;
    memset(&claims, 0, sizeof claims);
    if (e == JWT_OK) {
        char err[256];
        struct jwks_ref *keys =
            jwks_cache_get(cache, t->domain, t->oauth_jwks, kid, session_now_ms() / 1000, err,
                           sizeof err);
        if (!keys) {
            j->tempfail = true;
            snprintf(j->detail, sizeof j->detail, "token keys unavailable: %s", err);
            return p;
        }
        char issuer[300];
        if (t->oauth_issuer[0])
            snprintf(issuer, sizeof issuer, "%s", t->oauth_issuer);
        else
            issuer_name(t->domain, issuer, sizeof issuer);
        struct jwt_expect expect = {
            .issuer = issuer,
            .audience = t->oauth_audience[0] ? t->oauth_audience : ISSUER_DEFAULT_AUDIENCE,
            .scope = j->scope,
            .app_role = "SMTP.SendAsApp",
            .identity_claim = t->oauth_identity_claim[0] ? t->oauth_identity_claim : NULL,
            .now = session_now_ms() / 1000,
            .skew = JWT_SKEW_MAX,
        };
        e = jwt_verify(token, len, jwks_ref_keys(keys), &expect, &claims);
        jwks_ref_release(keys);
    }
    char who[64];
    snprintf(who, sizeof who, "%.60s", claims.iss);
    if (e != JWT_OK) {
        j->token_failed = true;
        snprintf(j->detail, sizeof j->detail, "token=%s iss=%s kid=%s sub=%.60s",
                 jwt_error_name(e), who[0] ? who : "-", kid[0] ? kid : "-",
                 claims.sub[0] ? claims.sub : "-");
        return p;
    }
    char principal[SMTP_PATH_MAX + 1];
    if (!smtp_address_normalize(claims.identity, principal, sizeof principal))
        snprintf(principal, sizeof principal, "%s", claims.identity);
    bool self = strcmp(principal, v->mailbox.address) == 0;
    bool granted = !self && dir_may_act_as(w->dir, v->mailbox.id, principal) == DIR_OK;
    p.valid = self || granted;
    if (!p.valid)
        j->token_failed = true;
    snprintf(j->detail, sizeof j->detail, "%s principal=%.80s iss=%s kid=%s%s",
             p.valid ? "token=ok" : "token=principal-not-permitted", principal, who,
             kid[0] ? kid : "-", granted ? " (delegated)" : "");
    return p;
}

static void auth_work(void *job, void *ctx)
{
    struct auth_job *j = job;
    struct worker_ctx *w = ctx;
    struct dir_auth_view *v = calloc(1, sizeof *v);
    if (!w || !w->dir || !v || dir_auth_view(w->dir, j->cred.authcid, v) != DIR_OK) {
        j->tempfail = true;
        snprintf(j->detail, sizeof j->detail, "directory: %s",
                 w && w->dir ? dir_error(w->dir) : "unavailable");
        if (sasl_mech_is_basic(j->mech))
            password_verify(NULL, j->cred.secret, j->cred.secret_len);
        sodium_memzero(&j->cred, sizeof j->cred);
        free(v);
        return;
    }
    /* Smart lockout, before the credentials (SPEC 3): a locked attempt is answered like a wrong
     * password, without verifying. */
    struct lockout_state ls;
    memset(&ls, 0, sizeof ls);
    char account[SMTP_PATH_MAX + 1];
    if (!smtp_address_normalize(j->cred.authcid, account, sizeof account))
        snprintf(account, sizeof account, "%s", j->cred.authcid);
    if (w->lockout && lockout_check(w->lockout, account, j->client_ip, session_now_ms(), &ls) == 0)
        j->locked_out = ls.verdict != LOCKOUT_OPEN;
    struct proof p = {false, sasl_mech_is_basic(j->mech) ? AUTH_KIND_PASSWORD : AUTH_KIND_OAUTH};
    if (j->locked_out)
        snprintf(j->detail, sizeof j->detail, "locked: %u failures for the account, %u from %s%s",
                 ls.account_failures, ls.address_failures, j->client_ip,
                 ls.verdict == LOCKOUT_ADDRESS ? " (password spraying)" : "");
    else if (sasl_mech_is_basic(j->mech))
        p = prove_password(j, w, v);
    else
        p = prove_token(j, w, v, w->jwks, w->datadir);
    sodium_memzero(j->cred.secret, sizeof j->cred.secret);
    j->cred.secret_len = 0;
    if (j->tempfail) {
        free(v);
        return;
    }
    struct policy_rule rules[DIR_RULES_MAX];
    static _Thread_local struct netmask nets[DIR_RULES_MAX][DIR_RULE_NETS_MAX];
    size_t n_rules = 0;
    if (v->mailbox_found)
        n_rules = dir_rules_for_policy(v, v->mailbox.address, rules, nets);
    struct policy_input in = {
        .tls = j->tls,
        .cleartext_auth_allowed = j->cleartext_allowed,
        .client_known = j->client_known,
        .client = j->client,
        .kind = p.kind,
        .kind_known = true,
        .locked_out = j->locked_out,
        .credentials_known = true,
        .credentials_valid = p.valid,
        .tenant_smtp_auth = v->tenant.smtp_auth,
        .tenant_security_defaults = v->tenant.security_defaults,
        .tenant_app_passwords = v->tenant.app_passwords,
        .tenant_policy_name = v->tenant_policy.name,
        .tenant_policy_allows_basic = v->tenant_policy.allow_basic_smtp,
        .mailbox_enabled = v->mailbox.enabled,
        .mailbox_smtp_auth = v->mailbox.smtp_auth,
        .mailbox_policy_name = v->mailbox_policy_inherit ? NULL : v->mailbox_policy.name,
        .mailbox_policy_allows_basic = v->mailbox_policy.allow_basic_smtp,
        .rules = rules,
        .n_rules = n_rules,
        .reply_generic = v->tenant_found && v->tenant.reply_detail == REPLY_DETAIL_GENERIC,
    };
    j->d = policy_decide(&in, NULL);
    if (!j->d.allowed && (j->d.gate == GATE_CREDENTIALS || j->d.gate == GATE_LOCKOUT) &&
        w->lockout) {
        ls.account_failures++; /* this failure, not yet in the log */
        j->delay_ms = lockout_delay_ms(w->lockout, &ls);
    }
    if (j->d.allowed || j->d.gate != GATE_CREDENTIALS)
        j->token_failed = false; /* a gate after the token decided: no RFC 7628 error */
    if (j->d.gate == GATE_BASIC_POLICY && j->d.policy_name)
        snprintf(j->detail + strlen(j->detail), sizeof j->detail - strlen(j->detail),
                 " policy=%s", j->d.policy_name);
    else if (j->d.gate == GATE_ACCESS_RULE)
        snprintf(j->detail + strlen(j->detail), sizeof j->detail - strlen(j->detail),
                 " rule=%lld", (long long)j->d.rule_id);
    j->d.policy_name = NULL; /* points into *v */
    if (v->tenant_found)
        snprintf(j->tenant, sizeof j->tenant, "%s", v->tenant.domain);
    if (v->mailbox_found) {
        snprintf(j->address, sizeof j->address, "%s", v->mailbox.address);
        j->mailbox_id = v->mailbox.id;
        dir_effective_limits(v, &j->limits);
        /* SPEC 4 defaults where the directory has none */
        static const struct dir_limits spec = {3, 30, 10000, 500};
        if (!j->limits.sessions)
            j->limits.sessions = spec.sessions;
        if (!j->limits.messages_per_minute)
            j->limits.messages_per_minute = spec.messages_per_minute;
        if (!j->limits.recipients_per_day)
            j->limits.recipients_per_day = spec.recipients_per_day;
        if (!j->limits.recipients_per_message)
            j->limits.recipients_per_message = spec.recipients_per_message;
    }
    free(v);
}

static void auth_done(void *job);

static void auth_done_later(evutil_socket_t fd, short what, void *job)
{
    (void)fd;
    (void)what;
    auth_done(job);
}

static void auth_done(void *job)
{
    struct auth_job *j = job;
    struct session *s = j->s;
    if (j->delay_ms > 0 && !j->delayed && !s->dead) {
        /* Failure replies are delayed (smart lockout), on a timer: the loop never sleeps. */
        j->delayed = true;
        struct timeval tv = {j->delay_ms / 1000, (j->delay_ms % 1000) * 1000};
        if (event_base_once(loop_base(s->loop), -1, EV_TIMEOUT, auth_done_later, j, &tv) == 0)
            return;
    }
    if (!session_job_done(s)) {
        sodium_memzero(j, sizeof *j);
        free(j);
        return;
    }
    const char *mech = sasl_mech_name(j->mech);
    char ref[REF_ID_LEN + 1] = "";
    if (j->tempfail) {
        session_reply(s, REPLY_AUTH_TEMPFAIL, NULL, ref);
        auth_log(s, mech, j->cred.authcid, false, "directory", "none", REPLY_AUTH_TEMPFAIL,
                 REPLY_AUTH_TEMPFAIL, ref, j->tenant, j->detail);
    } else if (j->d.allowed) {
        session_reply(s, REPLY_AUTH_OK, NULL, NULL);
        s->authenticated = true;
        snprintf(s->auth_user, sizeof s->auth_user, "%s", j->address);
        snprintf(s->tenant, sizeof s->tenant, "%s", j->tenant);
        s->mailbox_id = j->mailbox_id;
        s->limits = j->limits;
        s->last_auth_error[0] = '\0';
        s->last_auth_ref[0] = '\0';
        auth_log(s, mech, j->cred.authcid, true, "none", policy_level_name(j->d.level),
                 REPLY_AUTH_OK, REPLY_AUTH_OK, NULL, j->tenant, j->detail);
    } else if (j->token_failed && j->mech == SASL_MECH_OAUTHBEARER) {
        /* RFC 7628 3.2.2: the error as a challenge; the client answers %x01, then 535. */
        char json[512], b64[1024];
        size_t n = sasl_oauthbearer_error(json, sizeof json, j->scope[0] ? j->scope : NULL,
                                          j->openid[0] ? j->openid : NULL);
        reply_new_id(ref);
        if (n == 0 || b64_encode((const uint8_t *)json, n, b64, sizeof b64) == 0)
            b64[0] = '\0';
        session_reply_text(s, 334, NULL, b64, false);
        s->oauth_failure_pending = true;
        s->oauth_failure_reply = j->d.reply;
        snprintf(s->oauth_failure_ref, sizeof s->oauth_failure_ref, "%s", ref);
        auth_log(s, mech, j->cred.authcid, false, policy_gate_name(j->d.gate),
                 policy_level_name(j->d.level), j->d.reply, j->d.reason, ref, j->tenant,
                 j->detail);
        sodium_memzero(j, sizeof *j);
        free(j);
        s->state = SESSION_SASL; /* before resuming: the next line is the client's answer */
        session_resume(s);
        return;
    } else {
        session_reply(s, j->d.reply, NULL, ref);
        const struct reply_entry *e = &reply_catalogue[j->d.reply];
        snprintf(s->last_auth_error, sizeof s->last_auth_error, "%d %s %s", e->code,
                 e->enhanced, e->text);
        snprintf(s->last_auth_ref, sizeof s->last_auth_ref, "%s", ref);
        auth_log(s, mech, j->cred.authcid, false, policy_gate_name(j->d.gate),
                 policy_level_name(j->d.level), j->d.reply, j->d.reason, ref, j->tenant,
                 j->detail);
    }
    sodium_memzero(j, sizeof *j);
    free(j);
    session_resume(s);
}

/* ---- SASL framing on the loop ---- */

static void auth_submit(struct session *s)
{
    struct auth_job *j = calloc(1, sizeof *j);
    if (!j) {
        auth_refuse(s, REPLY_AUTH_TEMPFAIL, "directory", s->sasl->cred.authcid);
        return;
    }
    j->s = s;
    j->mech = s->sasl->mech;
    j->cred = s->sasl->cred;
    j->tls = s->tls;
    j->cleartext_allowed = s->listener->lc.allow_cleartext_auth;
    j->client = s->client;
    j->client_known = s->client.family != 0;
    snprintf(j->client_ip, sizeof j->client_ip, "%s", s->peer_ip);
    sasl_wipe(s->sasl);
    free(s->sasl);
    s->sasl = NULL;
    session_suspend(s);
    jobs_submit(s->srv->jobs, s->loop, auth_work, auth_done, j);
}

/* Runs one step with a decoded response (or NULL: no initial response). */
static void auth_step(struct session *s, const uint8_t *resp, size_t len)
{
    const uint8_t *challenge = NULL;
    size_t clen = 0;
    enum sasl_status st = sasl_step(s->sasl, resp, len, &challenge, &clen);
    if (st == SASL_MALFORMED) {
        auth_refuse(s, REPLY_AUTH_MALFORMED, "sasl", s->sasl->cred.authcid);
        return;
    }
    if (st == SASL_DONE) {
        auth_submit(s);
        return;
    }
    char b64[256];
    if (clen > 0 && b64_encode(challenge, clen, b64, sizeof b64) == 0) {
        auth_refuse(s, REPLY_LOCAL_ERROR, "sasl", NULL);
        return;
    }
    if (clen == 0)
        b64[0] = '\0';
    session_reply_text(s, 334, NULL, b64, false);
    s->state = SESSION_SASL;
}

/* Decodes a base64 response into a wiped heap buffer and steps. */
static void auth_response(struct session *s, const char *text, size_t len)
{
    uint8_t *buf = malloc(SASL_RESPONSE_MAX);
    size_t n = 0;
    if (!buf) {
        auth_refuse(s, REPLY_LOCAL_ERROR, "sasl", NULL);
        return;
    }
    /* RFC 4954 4: "=" is an empty initial response. */
    bool empty = len == 1 && text[0] == '=';
    if (!empty && b64_decode(text, len, buf, SASL_RESPONSE_MAX, &n) != 0) {
        free(buf);
        auth_refuse(s, REPLY_AUTH_MALFORMED, "sasl", s->sasl ? s->sasl->cred.authcid : NULL);
        return;
    }
    auth_step(s, buf, empty ? 0 : n);
    sodium_memzero(buf, SASL_RESPONSE_MAX);
    free(buf);
}

/* The last reply of a failed OAUTHBEARER exchange, after the client's dummy response. */
static void auth_oauth_failure_final(struct session *s)
{
    s->oauth_failure_pending = false;
    s->state = SESSION_COMMAND;
    char ref[REF_ID_LEN + 1];
    snprintf(ref, sizeof ref, "%s", s->oauth_failure_ref);
    session_reply(s, s->oauth_failure_reply, NULL, ref);
    const struct reply_entry *e = &reply_catalogue[s->oauth_failure_reply];
    snprintf(s->last_auth_error, sizeof s->last_auth_error, "%d %s %s", e->code, e->enhanced,
             e->text);
    snprintf(s->last_auth_ref, sizeof s->last_auth_ref, "%s", ref);
}

void auth_sasl_line(struct session *s, const char *line, size_t len)
{
    if (s->oauth_failure_pending) {
        (void)line;
        (void)len;
        auth_oauth_failure_final(s);
        return;
    }
    if (len == 1 && line[0] == '*') {
        auth_refuse(s, REPLY_AUTH_CANCELLED, "cancelled", s->sasl->cred.authcid);
        return;
    }
    auth_response(s, line, len);
}

void cmd_auth(struct session *s, const struct smtp_command *c)
{
    if (!s->esmtp) {
        session_reply(s, REPLY_HELLO_FIRST, NULL, NULL);
        return;
    }
    if (s->authenticated) {
        auth_refuse(s, REPLY_AUTH_ALREADY, "sequence", s->auth_user);
        return;
    }
    if (s->tx) {
        auth_refuse(s, REPLY_AUTH_IN_TRANSACTION, "sequence", NULL);
        return;
    }
    if (!s->tls && !s->listener->lc.allow_cleartext_auth) {
        /* Gate 1 of SPEC section 3: AUTH is not offered before TLS. */
        auth_refuse(s, REPLY_AUTH_ENCRYPTION_REQUIRED, policy_gate_name(GATE_TLS), NULL);
        return;
    }
    size_t mlen = 0;
    while (mlen < c->arg_len && c->arg[mlen] != ' ')
        mlen++;
    enum sasl_mech mech = sasl_mech_from_name(c->arg, mlen);
    if (mech == SASL_MECH_NONE) {
        auth_refuse(s, mlen ? REPLY_AUTH_UNRECOGNIZED : REPLY_SYNTAX, "mechanism", NULL);
        return;
    }
    s->sasl = calloc(1, sizeof *s->sasl);
    if (!s->sasl) {
        auth_refuse(s, REPLY_LOCAL_ERROR, "sasl", NULL);
        return;
    }
    sasl_begin(s->sasl, mech);
    const char *ir = c->arg + mlen;
    size_t irlen = c->arg_len - mlen;
    while (irlen > 0 && *ir == ' ') {
        ir++;
        irlen--;
    }
    if (irlen == 0)
        auth_step(s, NULL, 0);
    else
        auth_response(s, ir, irlen);
}
