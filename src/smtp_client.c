/* smtp_client.c: the SMTP / LMTP client state machine of smtp_client.h. It owns the order of
 * commands (RFC 5321 3.3, 4.1.1; LMTP: RFC 2033 4.1-4.3), the choice of extensions from the EHLO
 * reply (STARTTLS RFC 3207 4.2 with capabilities forgotten after TLS, AUTH RFC 4954 4 with the
 * 512-octet initial-response rule, PIPELINING RFC 2920 3.1 groups MAIL + RCPT* + DATA, SIZE RFC
 * 1870, BODY=8BITMIME RFC 6152, SMTPUTF8 RFC 6531 3.4, DSN RFC 3461 4 with xtext), the reading of
 * every reply into per-recipient verdicts, and dot-stuffing (RFC 5321 4.5.2). XOAUTH2 follows
 * Google's "XOAUTH2 protocol" (a 334 JSON error is answered with an empty line). */
#include "smtp_client.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "base64.h"
#include "protocol_limits.h"
#include "xtext.h"

enum state {
    ST_CONNECT,
    ST_TLS,      /* handshake (implicit, or after 220 to STARTTLS) */
    ST_GREETING, /* 220 */
    ST_EHLO,     /* EHLO or LHLO */
    ST_HELO,     /* fallback after a 5xx to EHLO */
    ST_STARTTLS,
    ST_AUTH,
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_DOT,
    ST_QUIT
};

static const char *const stage_names[] = {
    [ST_CONNECT] = "connect", [ST_TLS] = "starttls", [ST_GREETING] = "greeting",
    [ST_EHLO] = "ehlo",       [ST_HELO] = "ehlo",    [ST_STARTTLS] = "starttls",
    [ST_AUTH] = "auth",       [ST_MAIL] = "mail",    [ST_RCPT] = "rcpt",
    [ST_DATA] = "data",       [ST_DOT] = "dot",      [ST_QUIT] = "quit",
};

enum auth_phase {
    AP_FINAL,      /* the whole response was sent: 235 expected */
    AP_CONTINUE,   /* "AUTH MECH" without initial response: 334 expected, then the response */
    AP_LOGIN_USER, /* AUTH LOGIN: 334 "Username:" */
    AP_LOGIN_PASS, /* 334 "Password:" */
    AP_CANCELLED   /* we answered a 334 challenge with "" or "*": the failure reply follows */
};

struct smtp_client {
    struct smtp_client_config cfg;
    char user[SMTP_PATH_MAX + 1];
    char helo[256];
    const struct spool_envelope *env;
    struct delivery_result *res;
    bool *decided;  /* per recipient: the verdict is final */
    bool *accepted; /* per recipient: RCPT got 2xx */
    size_t n_accepted;

    enum state state;
    struct smtp_reply caps; /* the last EHLO reply ("" after HELO) */
    bool have_caps;
    bool tls_active;
    bool greeted;
    bool auth_done;
    bool pipelining;
    bool dsn;         /* the peer offers DSN: parameters sent, DSNs become its job */
    bool mail_failed; /* MAIL refused: the rest of a pipelined group is only read */
    bool lone_dot;    /* 354 with no accepted recipient: "." alone was sent */
    size_t rcpt_i;    /* next RCPT reply expected */
    size_t dot_i;     /* LMTP: next accepted recipient whose final reply is expected */
    enum auth_phase auth_phase;
    char auth_error[300]; /* XOAUTH2's JSON error (decoded), for the verdict's text */

    char *out; /* what the action asks to send */
    size_t out_len, out_cap;
    bool out_secret; /* out holds an AUTH payload: wipe before reuse */
    bool oom;
    char *auth_resp; /* the base64 SASL response waiting for a 334, wiped after use */
    char shown[64];
};

/* ---------------------------------------------------------------- output buffer */

static void out_wipe(struct smtp_client *c)
{
    if (c->out_secret && c->out != NULL)
        sodium_memzero(c->out, c->out_cap);
    c->out_secret = false;
    c->out_len = 0;
    if (c->out != NULL)
        c->out[0] = '\0';
}

static void auth_resp_free(struct smtp_client *c)
{
    if (c->auth_resp != NULL) {
        sodium_memzero(c->auth_resp, strlen(c->auth_resp));
        free(c->auth_resp);
        c->auth_resp = NULL;
    }
}

static void out_reserve(struct smtp_client *c, size_t need)
{
    if (c->oom || c->out_len + need + 1 <= c->out_cap)
        return;
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (c->out_len + need + 1 > cap)
        cap *= 2;
    char *b = malloc(cap);
    if (b == NULL) {
        c->oom = true;
        return;
    }
    if (c->out != NULL) {
        memcpy(b, c->out, c->out_len + 1);
        sodium_memzero(c->out, c->out_cap);
        free(c->out);
    } else {
        b[0] = '\0';
    }
    c->out = b;
    c->out_cap = cap;
}

static void out_add(struct smtp_client *c, const char *s, size_t n)
{
    out_reserve(c, n);
    if (c->oom)
        return;
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
    c->out[c->out_len] = '\0';
}

static void out_str(struct smtp_client *c, const char *s)
{
    out_add(c, s, strlen(s));
}

static void out_fmt(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_fmt(struct smtp_client *c, const char *fmt, ...)
{
    char buf[SMTP_DSN_COMMAND_LINE_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_add(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* xtext (RFC 3461 4) of s, appended. */
static void out_xtext(struct smtp_client *c, const char *s)
{
    char buf[4 * DSN_ORCPT_MAX + 8];
    size_t n = xtext_encode(s, strlen(s), buf, sizeof buf);
    if (n >= sizeof buf)
        n = sizeof buf - 1; /* stored values are bounded far below this */
    out_add(c, buf, n);
}

/* ---------------------------------------------------------------- verdicts */

static void set_verdict(struct smtp_client *c, size_t i, enum delivery_outcome o, int code,
                        const char *enhanced, const char *text)
{
    struct delivery_rcpt_result *x = &c->res->rcpts[i];
    x->outcome = o;
    x->code = code;
    snprintf(x->enhanced, sizeof x->enhanced, "%s", enhanced);
    snprintf(x->stage, sizeof x->stage, "%s", stage_names[c->state]);
    snprintf(x->text, sizeof x->text, "%s", text);
    x->dsn_passed = o == DELIVERY_OK && c->dsn;
    c->decided[i] = true;
}

/* Every recipient not yet decided. */
static void decide_rest(struct smtp_client *c, enum delivery_outcome o, int code,
                        const char *enhanced, const char *text)
{
    for (size_t i = 0; i < c->env->n_rcpts; i++)
        if (!c->decided[i])
            set_verdict(c, i, o, code, enhanced, text);
}

/* The reply's lines joined by "; ", printable ASCII only. */
static void reply_text(const struct smtp_reply *r, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = r->text; *p != '\0' && o + 3 < cap; p++) {
        if (*p == '\n') {
            out[o++] = ';';
            out[o++] = ' ';
        } else {
            out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        }
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, cap, "(no text)");
}

static enum delivery_outcome outcome_of(int code)
{
    return code / 100 == 2 ? DELIVERY_OK : code / 100 == 5 ? DELIVERY_PERM : DELIVERY_TEMP;
}

/* The reply's enhanced code when its class agrees with the outcome, else "X.0.0". */
static void enhanced_of(const struct smtp_reply *r, enum delivery_outcome o, char *out, size_t cap)
{
    char cls = o == DELIVERY_OK ? '2' : o == DELIVERY_PERM ? '5' : '4';
    if (r->enhanced[0] == cls)
        snprintf(out, cap, "%s", r->enhanced);
    else
        snprintf(out, cap, "%c.0.0", cls);
}

static void verdict_from_reply(struct smtp_client *c, size_t i, const struct smtp_reply *r)
{
    char text[512], enh[16];
    enum delivery_outcome o = outcome_of(r->code);
    reply_text(r, text, sizeof text);
    enhanced_of(r, o, enh, sizeof enh);
    set_verdict(c, i, o, r->code, enh, text);
}

static void rest_from_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    for (size_t i = 0; i < c->env->n_rcpts; i++)
        if (!c->decided[i])
            verdict_from_reply(c, i, r);
}

/* ---------------------------------------------------------------- actions */

static struct smtp_client_action act(enum smtp_client_do what, enum smtp_client_wait wait)
{
    return (struct smtp_client_action){.what = what, .wait = wait};
}

static struct smtp_client_action act_close(struct smtp_client *c)
{
    out_wipe(c);
    c->state = ST_QUIT;
    return act(SMTPC_CLOSE, SMTPC_WAIT_COMMAND);
}

/* Sends what is in out (built by the caller), or gives up when building ran out of memory. */
static struct smtp_client_action act_send(struct smtp_client *c, enum smtp_client_wait wait)
{
    if (c->oom) {
        decide_rest(c, DELIVERY_TEMP, 0, "4.3.0", "out of memory building a command");
        return act_close(c);
    }
    struct smtp_client_action a = act(SMTPC_SEND, wait);
    a.out = c->out;
    a.out_len = c->out_len;
    a.shown = c->out_secret ? c->shown : c->out;
    return a;
}

static struct smtp_client_action send_line(struct smtp_client *c, const char *line,
                                           enum smtp_client_wait wait)
{
    out_wipe(c);
    out_str(c, line);
    out_str(c, "\r\n");
    return act_send(c, wait);
}

static struct smtp_client_action quit(struct smtp_client *c)
{
    out_wipe(c);
    out_str(c, "QUIT\r\n");
    c->state = ST_QUIT;
    if (c->oom)
        return act_close(c);
    struct smtp_client_action a = act(SMTPC_QUIT, SMTPC_WAIT_COMMAND);
    a.out = a.shown = c->out;
    a.out_len = c->out_len;
    return a;
}

/* Our own verdict for every undecided recipient, then QUIT. */
static struct smtp_client_action fail(struct smtp_client *c, enum delivery_outcome o,
                                      const char *enhanced, const char *text)
{
    decide_rest(c, o, 0, enhanced, text);
    return quit(c);
}

/* ---------------------------------------------------------------- the machine */

struct smtp_client *smtp_client_new(const struct smtp_client_config *cfg,
                                    const struct spool_envelope *env, struct delivery_result *res)
{
    struct smtp_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    size_t n = env->n_rcpts ? env->n_rcpts : 1;
    c->decided = calloc(n, sizeof *c->decided);
    c->accepted = calloc(n, sizeof *c->accepted);
    if (c->decided == NULL || c->accepted == NULL) {
        free(c->decided);
        free(c->accepted);
        free(c);
        return NULL;
    }
    c->cfg = *cfg;
    snprintf(c->user, sizeof c->user, "%s", cfg->user ? cfg->user : "");
    snprintf(c->helo, sizeof c->helo, "%s", cfg->helo && cfg->helo[0] ? cfg->helo : "localhost");
    c->cfg.user = c->user;
    c->cfg.helo = c->helo;
    c->env = env;
    c->res = res;
    c->state = ST_CONNECT;
    res->auth_rejected = false;
    for (size_t i = 0; i < env->n_rcpts && i < res->n_rcpts; i++)
        set_verdict(c, i, DELIVERY_TEMP, 0, "4.4.1", "delivery not attempted");
    memset(c->decided, 0, n * sizeof *c->decided);
    return c;
}

void smtp_client_free(struct smtp_client *c)
{
    if (c == NULL)
        return;
    if (c->out != NULL) {
        sodium_memzero(c->out, c->out_cap);
        free(c->out);
    }
    auth_resp_free(c);
    free(c->decided);
    free(c->accepted);
    free(c);
}

const char *smtp_client_stage(const struct smtp_client *c)
{
    return stage_names[c->state];
}

bool smtp_client_tls_active(const struct smtp_client *c)
{
    return c->tls_active;
}

bool smtp_client_pipelining(const struct smtp_client *c)
{
    return c->pipelining;
}

struct smtp_client_action smtp_client_start(struct smtp_client *c)
{
    if (c->cfg.tls == RELAY_TLS_IMPLICIT) {
        c->state = ST_TLS;
        return act(SMTPC_STARTTLS, SMTPC_WAIT_COMMAND);
    }
    c->state = ST_GREETING;
    return act(SMTPC_READ, SMTPC_WAIT_GREETING);
}

void smtp_client_abort(struct smtp_client *c, const char *enhanced, const char *why)
{
    out_wipe(c);
    auth_resp_free(c);
    decide_rest(c, DELIVERY_TEMP, 0, enhanced ? enhanced : "4.4.2", why ? why : "");
    c->state = ST_QUIT;
}

static struct smtp_client_action send_hello(struct smtp_client *c)
{
    char line[300];
    snprintf(line, sizeof line, "%s %s", c->cfg.lmtp ? "LHLO" : "EHLO", c->helo);
    c->state = ST_EHLO;
    c->have_caps = false;
    c->pipelining = c->dsn = false;
    return send_line(c, line, SMTPC_WAIT_COMMAND);
}

struct smtp_client_action smtp_client_tls_done(struct smtp_client *c, bool ok, const char *enhanced,
                                               const char *why)
{
    out_wipe(c);
    if (!ok) {
        decide_rest(c, DELIVERY_TEMP, 0, enhanced ? enhanced : "4.7.0",
                    why ? why : "TLS handshake failed");
        return act_close(c);
    }
    c->tls_active = true;
    if (!c->greeted) { /* implicit TLS: the greeting comes over TLS */
        c->state = ST_GREETING;
        return act(SMTPC_READ, SMTPC_WAIT_GREETING);
    }
    return send_hello(c); /* RFC 3207 4.2: forget what was learnt before TLS */
}

static bool has_ext(struct smtp_client *c, const char *kw, char *params, size_t cap)
{
    return c->have_caps && smtp_reply_has_extension(&c->caps, kw, params, cap);
}

/* Whether the AUTH line lists mech (space separated, case-insensitive). */
static bool mech_offered(const char *list, const char *mech)
{
    size_t n = strlen(mech);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == n && strncasecmp(p, mech, n) == 0)
            return true;
        p += w;
    }
    return false;
}

static const char *mech_name(enum relay_auth a)
{
    return a == RELAY_AUTH_PLAIN ? "PLAIN" : a == RELAY_AUTH_LOGIN ? "LOGIN" : "XOAUTH2";
}

/* base64 of n octets into a new buffer (wiped and freed by the caller). */
static char *b64_new(const uint8_t *in, size_t n)
{
    size_t cap = b64_encoded_len(n) + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    if (n > 0 && b64_encode(in, n, out, cap) == 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The SASL response of PLAIN (RFC 4616) or XOAUTH2, base64-encoded. */
static char *sasl_response(struct smtp_client *c)
{
    const char *secret = c->cfg.secret ? c->cfg.secret : "";
    size_t ul = strlen(c->user), sl = strlen(secret);
    size_t n = ul + sl + 32;
    uint8_t *raw = malloc(n);
    if (raw == NULL)
        return NULL;
    size_t len;
    if (c->cfg.auth == RELAY_AUTH_PLAIN) {
        raw[0] = '\0'; /* no authorization identity */
        memcpy(raw + 1, c->user, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, secret, sl);
        len = 2 + ul + sl;
    } else {
        len =
            (size_t)snprintf((char *)raw, n, "user=%s\001auth=Bearer %s\001\001", c->user, secret);
    }
    char *b = b64_new(raw, len);
    sodium_memzero(raw, n);
    free(raw);
    return b;
}

static struct smtp_client_action send_secret(struct smtp_client *c, const char *cmd,
                                             const char *payload, const char *shown)
{
    out_wipe(c);
    c->out_secret = true;
    if (cmd != NULL) {
        out_str(c, cmd);
        out_str(c, " ");
    }
    out_str(c, payload);
    out_str(c, "\r\n");
    snprintf(c->shown, sizeof c->shown, "%s", shown);
    return act_send(c, SMTPC_WAIT_COMMAND);
}

static struct smtp_client_action start_mail(struct smtp_client *c);

static struct smtp_client_action start_auth(struct smtp_client *c)
{
    char list[256] = "";
    const char *mech = mech_name(c->cfg.auth);
    c->state = ST_AUTH;
    if (!c->tls_active && c->cfg.tls != RELAY_TLS_NONE)
        return fail(c, DELIVERY_TEMP, "4.7.0",
                    "not sending credentials without TLS (the peer did not offer STARTTLS)");
    if (!has_ext(c, "AUTH", list, sizeof list) || !mech_offered(list, mech)) {
        char text[300];
        snprintf(text, sizeof text, "the peer does not offer AUTH %s (it offers \"%s\")", mech,
                 list);
        return fail(c, DELIVERY_TEMP, "4.7.0", text);
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "AUTH %s", mech);
    snprintf(c->shown, sizeof c->shown, "%s", cmd);
    if (c->cfg.auth == RELAY_AUTH_LOGIN) {
        c->auth_phase = AP_LOGIN_USER;
        return send_line(c, cmd, SMTPC_WAIT_COMMAND);
    }
    auth_resp_free(c);
    c->auth_resp = sasl_response(c);
    if (c->auth_resp == NULL)
        return fail(c, DELIVERY_TEMP, "4.3.0", "out of memory building the AUTH response");
    /* RFC 4954 4: no initial response when the line would exceed 512 octets */
    if (strlen(cmd) + 1 + strlen(c->auth_resp) + 2 > SMTP_COMMAND_LINE_MAX) {
        c->auth_phase = AP_CONTINUE;
        return send_line(c, cmd, SMTPC_WAIT_COMMAND);
    }
    c->auth_phase = AP_FINAL;
    char shown[64];
    snprintf(shown, sizeof shown, "%s ****", cmd);
    struct smtp_client_action a = send_secret(c, cmd, c->auth_resp, shown);
    auth_resp_free(c);
    return a;
}

/* After EHLO / HELO (and after TLS): STARTTLS, AUTH, or the transaction. */
static struct smtp_client_action after_hello(struct smtp_client *c)
{
    if (!c->tls_active &&
        (c->cfg.tls == RELAY_TLS_REQUIRED || c->cfg.tls == RELAY_TLS_OPPORTUNISTIC)) {
        if (has_ext(c, "STARTTLS", NULL, 0)) {
            c->state = ST_STARTTLS;
            return send_line(c, "STARTTLS", SMTPC_WAIT_COMMAND);
        }
        if (c->cfg.tls == RELAY_TLS_REQUIRED) {
            c->state = ST_STARTTLS;
            return fail(c, DELIVERY_TEMP, "4.7.4", "STARTTLS not offered, and TLS is required");
        }
    }
    if (c->cfg.auth != RELAY_AUTH_NONE && !c->auth_done)
        return start_auth(c);
    return start_mail(c);
}

static bool body_8bit(const struct spool_envelope *env)
{
    return strcasecmp(env->body, "8BITMIME") == 0 || strcasecmp(env->body, "BINARYMIME") == 0;
}

static bool ascii_only(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static void add_rcpt(struct smtp_client *c, size_t i)
{
    const struct spool_envelope *env = c->env;
    out_fmt(c, "RCPT TO:<%s>", env->rcpts[i]);
    if (c->dsn) {
        unsigned nf = env->notify ? env->notify[i] : 0;
        if (nf & DSN_NOTIFY_NEVER) {
            out_str(c, " NOTIFY=NEVER");
        } else if (nf != 0) {
            out_str(c, " NOTIFY=");
            const char *sep = "";
            static const struct {
                unsigned bit;
                const char *name;
            } names[] = {{DSN_NOTIFY_SUCCESS, "SUCCESS"},
                         {DSN_NOTIFY_FAILURE, "FAILURE"},
                         {DSN_NOTIFY_DELAY, "DELAY"}};
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                if (nf & names[k].bit) {
                    out_fmt(c, "%s%s", sep, names[k].name);
                    sep = ",";
                }
        }
        const char *orcpt = env->orcpt ? env->orcpt[i] : NULL;
        const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
        if (semi != NULL) {
            out_fmt(c, " ORCPT=%.*s;", (int)(semi - orcpt), orcpt);
            out_xtext(c, semi + 1);
        } else if (ascii_only(env->rcpts[i])) { /* RFC 3461 5.2.1: keep the original */
            out_str(c, " ORCPT=rfc822;");
            out_xtext(c, env->rcpts[i]);
        }
    }
    out_str(c, "\r\n");
}

/* MAIL (and with PIPELINING every RCPT and DATA in the same group). */
static struct smtp_client_action start_mail(struct smtp_client *c)
{
    const struct spool_envelope *env = c->env;
    char text[300], size_param[32] = "";
    c->state = ST_MAIL;
    if (env->smtputf8 && !has_ext(c, "SMTPUTF8", NULL, 0))
        return fail(c, DELIVERY_PERM, "5.6.7",
                    "the message needs SMTPUTF8 and the peer does not offer it (RFC 6531 3.4)");
    bool eight = body_8bit(env);
    if (eight && !has_ext(c, "8BITMIME", NULL, 0))
        return fail(c, DELIVERY_PERM, "5.6.3",
                    "the message is 8-bit and the peer does not offer 8BITMIME (RFC 6152 3)");
    if (has_ext(c, "SIZE", size_param, sizeof size_param)) {
        unsigned long long max = strtoull(size_param, NULL, 10);
        if (max > 0 && env->size > max) {
            snprintf(text, sizeof text,
                     "message size %llu exceeds the peer's fixed maximum message size %llu",
                     (unsigned long long)env->size, max);
            return fail(c, DELIVERY_PERM, "5.3.4", text);
        }
    }
    c->pipelining = has_ext(c, "PIPELINING", NULL, 0);
    c->dsn = has_ext(c, "DSN", NULL, 0);

    out_wipe(c);
    out_fmt(c, "MAIL FROM:<%s>", env->sender);
    if (has_ext(c, "SIZE", NULL, 0))
        out_fmt(c, " SIZE=%llu", (unsigned long long)env->size);
    if (eight)
        out_str(c, " BODY=8BITMIME");
    if (env->smtputf8)
        out_str(c, " SMTPUTF8");
    if (c->dsn && env->ret[0] != '\0')
        out_fmt(c, " RET=%s", env->ret);
    if (c->dsn && env->envid[0] != '\0') {
        out_str(c, " ENVID=");
        out_xtext(c, env->envid);
    }
    out_str(c, "\r\n");
    if (c->pipelining) {
        for (size_t i = 0; i < env->n_rcpts; i++)
            add_rcpt(c, i);
        out_str(c, "DATA\r\n");
    }
    c->rcpt_i = 0;
    return act_send(c, SMTPC_WAIT_COMMAND);
}

static struct smtp_client_action send_rcpt(struct smtp_client *c)
{
    out_wipe(c);
    add_rcpt(c, c->rcpt_i);
    return act_send(c, SMTPC_WAIT_COMMAND);
}

/* ---------------------------------------------------------------- replies per state */

static struct smtp_client_action on_greeting(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code / 100 != 2) {
        rest_from_reply(c, r);
        return quit(c);
    }
    c->greeted = true;
    return send_hello(c);
}

static struct smtp_client_action on_hello(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code / 100 == 2) {
        if (c->state == ST_EHLO) {
            c->caps = *r;
            c->have_caps = true;
        }
        return after_hello(c);
    }
    if (c->state == ST_EHLO && r->code / 100 == 5 && !c->cfg.lmtp) {
        char line[300];
        snprintf(line, sizeof line, "HELO %s", c->helo);
        c->state = ST_HELO;
        return send_line(c, line, SMTPC_WAIT_COMMAND);
    }
    rest_from_reply(c, r);
    return quit(c);
}

static struct smtp_client_action on_starttls(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code == 220) {
        c->state = ST_TLS;
        out_wipe(c);
        return act(SMTPC_STARTTLS, SMTPC_WAIT_COMMAND);
    }
    if (c->cfg.tls == RELAY_TLS_OPPORTUNISTIC) { /* carry on in clear */
        if (c->cfg.auth != RELAY_AUTH_NONE && !c->auth_done)
            return start_auth(c);
        return start_mail(c);
    }
    char text[512], enh[16];
    reply_text(r, text, sizeof text);
    snprintf(enh, sizeof enh, "%s", r->enhanced[0] == '4' ? r->enhanced : "4.7.0");
    decide_rest(c, DELIVERY_TEMP, r->code, enh, text);
    return quit(c);
}

/* A failed AUTH: every recipient, TEMP 4.7.0 unless configured permanent (see the header). */
static struct smtp_client_action auth_failed(struct smtp_client *c, const struct smtp_reply *r)
{
    char text[512], rt[512];
    reply_text(r, rt, sizeof rt);
    if (r->code / 100 == 2)
        snprintf(text, sizeof text, "unexpected reply to AUTH: %d %s", r->code, rt);
    else if (c->auth_error[0] != '\0')
        snprintf(text, sizeof text, "%s (%s)", rt, c->auth_error);
    else
        snprintf(text, sizeof text, "%s", rt);
    c->res->auth_rejected = r->code / 100 == 5;
    enum delivery_outcome o =
        r->code / 100 == 5 && c->cfg.auth_failure_permanent ? DELIVERY_PERM : DELIVERY_TEMP;
    char enh[16];
    if (o == DELIVERY_PERM)
        enhanced_of(r, o, enh, sizeof enh);
    else
        snprintf(enh, sizeof enh, "4.7.0");
    decide_rest(c, o, r->code, enh, text);
    auth_resp_free(c);
    return quit(c);
}

/* XOAUTH2's challenge carries a base64 JSON error: keep a printable copy for the verdict. */
static void keep_auth_error(struct smtp_client *c, const struct smtp_reply *r)
{
    uint8_t buf[256];
    size_t n = 0;
    const char *t = r->text;
    c->auth_error[0] = '\0';
    if (b64_decode(t, strcspn(t, "\n"), buf, sizeof buf, &n) != 0)
        return;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < sizeof c->auth_error; i++)
        if (buf[i] >= 0x20 && buf[i] < 0x7f)
            c->auth_error[o++] = (char)buf[i];
    c->auth_error[o] = '\0';
}

static struct smtp_client_action on_auth(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code == 235 && (c->auth_phase == AP_FINAL)) {
        c->auth_done = true;
        return start_mail(c);
    }
    if (r->code != 334 || c->auth_phase == AP_CANCELLED)
        return auth_failed(c, r);
    switch (c->auth_phase) {
    case AP_CONTINUE: {
        c->auth_phase = AP_FINAL;
        struct smtp_client_action a = send_secret(c, NULL, c->auth_resp, "****");
        auth_resp_free(c);
        return a;
    }
    case AP_LOGIN_USER: {
        char *u = b64_new((const uint8_t *)c->user, strlen(c->user));
        if (u == NULL)
            return fail(c, DELIVERY_TEMP, "4.3.0", "out of memory building the AUTH response");
        c->auth_phase = AP_LOGIN_PASS;
        struct smtp_client_action a = send_secret(c, NULL, u, "****");
        sodium_memzero(u, strlen(u));
        free(u);
        return a;
    }
    case AP_LOGIN_PASS: {
        const char *s = c->cfg.secret ? c->cfg.secret : "";
        c->auth_resp = b64_new((const uint8_t *)s, strlen(s));
        if (c->auth_resp == NULL)
            return fail(c, DELIVERY_TEMP, "4.3.0", "out of memory building the AUTH response");
        c->auth_phase = AP_FINAL;
        struct smtp_client_action a = send_secret(c, NULL, c->auth_resp, "****");
        auth_resp_free(c);
        return a;
    }
    case AP_FINAL:
    case AP_CANCELLED:
        break;
    }
    /* 334 after the whole response: a challenge we cannot answer. XOAUTH2 sends its error this
     * way and wants an empty line; anything else is cancelled with "*" (RFC 4954 4). */
    c->auth_phase = AP_CANCELLED;
    if (c->cfg.auth == RELAY_AUTH_XOAUTH2) {
        keep_auth_error(c, r);
        return send_line(c, "", SMTPC_WAIT_COMMAND);
    }
    return send_line(c, "*", SMTPC_WAIT_COMMAND);
}

static struct smtp_client_action on_mail(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code / 100 != 2) {
        rest_from_reply(c, r);
        c->mail_failed = true;
        if (!c->pipelining)
            return quit(c);
    }
    c->state = ST_RCPT;
    c->rcpt_i = 0;
    if (c->env->n_rcpts == 0) { /* nothing to send: RFC 5321 needs one RCPT for DATA */
        return c->pipelining ? act(SMTPC_READ, SMTPC_WAIT_DATA_INIT) : quit(c);
    }
    return c->pipelining ? act(SMTPC_READ, SMTPC_WAIT_COMMAND) : send_rcpt(c);
}

static struct smtp_client_action on_rcpt(struct smtp_client *c, const struct smtp_reply *r)
{
    size_t i = c->rcpt_i++;
    if (!c->mail_failed) {
        if (r->code / 100 == 2) {
            c->accepted[i] = true;
            c->n_accepted++;
        } else {
            verdict_from_reply(c, i, r);
        }
    }
    if (c->rcpt_i < c->env->n_rcpts)
        return c->pipelining ? act(SMTPC_READ, SMTPC_WAIT_COMMAND) : send_rcpt(c);
    c->state = ST_DATA;
    if (c->pipelining)
        return act(SMTPC_READ, SMTPC_WAIT_DATA_INIT);
    if (c->n_accepted == 0)
        return quit(c); /* every recipient refused: no DATA */
    return send_line(c, "DATA", SMTPC_WAIT_DATA_INIT);
}

static struct smtp_client_action on_data(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code == 354) {
        c->state = ST_DOT;
        if (c->n_accepted == 0 || c->mail_failed) { /* RFC 2920 3.1: "." alone, no message */
            c->lone_dot = true;
            return send_line(c, ".", SMTPC_WAIT_DATA_FINAL);
        }
        out_wipe(c);
        return act(SMTPC_DATA, SMTPC_WAIT_DATA_FINAL);
    }
    if (!c->mail_failed && c->n_accepted > 0)
        rest_from_reply(c, r);
    return quit(c);
}

static struct smtp_client_action on_dot(struct smtp_client *c, const struct smtp_reply *r)
{
    if (c->lone_dot)
        return quit(c);
    if (!c->cfg.lmtp) {
        rest_from_reply(c, r);
        return quit(c);
    }
    /* RFC 2033 4.2: one reply per accepted recipient, in RCPT order */
    while (c->dot_i < c->env->n_rcpts && !c->accepted[c->dot_i])
        c->dot_i++;
    if (c->dot_i < c->env->n_rcpts)
        verdict_from_reply(c, c->dot_i++, r);
    while (c->dot_i < c->env->n_rcpts && !c->accepted[c->dot_i])
        c->dot_i++;
    if (c->dot_i < c->env->n_rcpts)
        return act(SMTPC_READ, SMTPC_WAIT_DATA_FINAL);
    return quit(c);
}

struct smtp_client_action smtp_client_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    out_wipe(c);
    if (c->state == ST_QUIT || c->state == ST_CONNECT || c->state == ST_TLS) {
        decide_rest(c, DELIVERY_TEMP, r->code, "4.5.0", "a reply where none was expected");
        return act_close(c);
    }
    if (r->code == 421) { /* RFC 5321 3.8: the peer is closing; temporary for the rest */
        rest_from_reply(c, r);
        auth_resp_free(c);
        return act_close(c);
    }
    switch (c->state) {
    case ST_GREETING:
        return on_greeting(c, r);
    case ST_EHLO:
    case ST_HELO:
        return on_hello(c, r);
    case ST_STARTTLS:
        return on_starttls(c, r);
    case ST_AUTH:
        return on_auth(c, r);
    case ST_MAIL:
        return on_mail(c, r);
    case ST_RCPT:
        return on_rcpt(c, r);
    case ST_DATA:
        return on_data(c, r);
    case ST_DOT:
        return on_dot(c, r);
    case ST_CONNECT:
    case ST_TLS:
    case ST_QUIT:
        break;
    }
    return act_close(c);
}

/* ---------------------------------------------------------------- dot-stuffing */

void smtp_stuff_init(struct smtp_stuffer *s)
{
    s->at_line_start = true;
    s->pending_cr = false;
}

size_t smtp_client_stuff(struct smtp_stuffer *s, const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char b = in[i];
        if (s->pending_cr) {
            s->pending_cr = false;
            out[o++] = '\r';
            out[o++] = '\n';
            s->at_line_start = true;
            if (b == '\n')
                continue;
        }
        if (b == '\r') {
            s->pending_cr = true;
            continue;
        }
        if (b == '\n') { /* a bare LF: never sent as such */
            out[o++] = '\r';
            out[o++] = '\n';
            s->at_line_start = true;
            continue;
        }
        if (s->at_line_start && b == '.')
            out[o++] = '.';
        out[o++] = b;
        s->at_line_start = false;
    }
    return o;
}

size_t smtp_client_stuff_end(struct smtp_stuffer *s, char *out)
{
    size_t o = 0;
    if (s->pending_cr || !s->at_line_start) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    s->pending_cr = false;
    s->at_line_start = true;
    return o + 3;
}
