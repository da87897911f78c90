/* ctl_explain.c: `submitctl explain ADDRESS`: what would happen if a client authenticated as
 * ADDRESS now. Builds the same policy_input the server builds (from dir_auth_view and
 * dir_rules_for_policy), runs policy_decide with a trace, and prints every gate of SPEC section
 * 3 in order, the setting and level that decided it, the submitctl command that would change a
 * failing gate, and the exact reply a client would get (RFC 4954 6, RFC 3463 codes). With
 * --token-stdin, the credentials gate is known for OAuth: the token is verified as the server
 * verifies it (RFC 7519, RFC 7515; ctl_token_verify) and each claim check is printed; the token
 * itself is never printed and is wiped after use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "netmask.h"
#include "policy.h"
#include "reply.h"
#include "sasl.h"

enum { EXPLAIN_OPT_MECH, EXPLAIN_OPT_IP, EXPLAIN_OPT_APP_PASSWORD, EXPLAIN_OPT_TOKEN_STDIN };
static const struct ctl_opt explain_opts[] = {{"--mech", true},
                                              {"--ip", true},
                                              {"--app-password", false},
                                              {"--token-stdin", false},
                                              {NULL, false}};

#define FIXES_MAX 3
#define FIX_LEN 320

/* Everything explain knows about one run. */
struct explain {
    const char *address; /* normalized, from the view */
    const char *domain;  /* the tenant's primary domain */
    enum sasl_mech mech;
    bool app_password;
    const char *ip; /* NULL = unknown */
    struct dir_auth_view view;
    struct policy_input in;
    struct policy_rule rules[DIR_RULES_MAX];
    struct netmask nets[DIR_RULES_MAX][DIR_RULE_NETS_MAX];
    struct gate_trace trace[GATE_COUNT];
    struct policy_decision decision;
    bool no_password; /* a basic attempt with the main password cannot succeed */
    bool have_token;  /* --token-stdin: the credentials gate is known */
    struct ctl_token_report token;
};

static const char *outcome_name(enum gate_outcome o)
{
    switch (o) {
    case GATE_PASS:
        return "pass";
    case GATE_FAIL:
        return "FAIL";
    case GATE_NOT_APPLICABLE:
        return "n/a";
    case GATE_UNKNOWN:
        return "unknown";
    }
    return "?";
}

static const char *check_outcome_name(enum ctl_check_outcome o)
{
    return o == CHECK_PASS ? "pass" : o == CHECK_FAIL ? "FAIL" : "-";
}

static const char *credential_name(const struct explain *x)
{
    if (!sasl_mech_is_basic(x->mech))
        return x->have_token ? "the OAuth token from standard input" : "an OAuth token";
    return x->app_password ? "an app password" : "the mailbox password";
}

/* The reply line a client sees: "535 5.7.139 Authentication unsuccessful, ...". */
static void reply_text(enum reply_id id, char *buf, size_t cap)
{
    const struct reply_entry *r = &reply_catalogue[id];
    snprintf(buf, cap, "%d %s %s", r->code, r->enhanced ? r->enhanced : "", r->text);
}

static void build_input(struct explain *x, const struct netaddr *client)
{
    const struct dir_auth_view *v = &x->view;
    struct policy_input *in = &x->in;
    memset(in, 0, sizeof *in);
    in->tls = true; /* explain assumes TLS; without it AUTH is not offered at all */
    in->client_known = client != NULL;
    if (client != NULL)
        in->client = *client;
    bool oauth = !sasl_mech_is_basic(x->mech);
    in->kind =
        oauth ? AUTH_KIND_OAUTH : (x->app_password ? AUTH_KIND_APP_PASSWORD : AUTH_KIND_PASSWORD);
    in->kind_known = oauth || x->app_password;
    x->no_password = !oauth && !x->app_password && v->mailbox.password_hash[0] == '\0';
    in->credentials_known = x->no_password || x->have_token;
    in->credentials_valid = x->have_token && x->token.valid;
    in->tenant_smtp_auth = v->tenant.smtp_auth;
    in->tenant_security_defaults = v->tenant.security_defaults;
    in->tenant_app_passwords = v->tenant.app_passwords;
    in->tenant_policy_name = v->tenant_policy.name;
    in->tenant_policy_allows_basic = v->tenant_policy.allow_basic_smtp;
    in->mailbox_enabled = v->mailbox.enabled;
    in->mailbox_smtp_auth = v->mailbox.smtp_auth;
    in->mailbox_policy_name = v->mailbox_policy_inherit ? NULL : v->mailbox_policy.name;
    in->mailbox_policy_allows_basic = v->mailbox_policy.allow_basic_smtp;
    in->n_rules = dir_rules_for_policy(v, v->mailbox.address, x->rules, x->nets);
    in->rules = x->rules;
    in->reply_generic = v->tenant.reply_detail == REPLY_DETAIL_GENERIC;
}

/* The token check that failed, or TOKEN_CHECK_COUNT. */
static int token_failed_check(const struct explain *x)
{
    for (int k = 0; k < TOKEN_CHECK_COUNT; k++)
        if (x->token.outcome[k] == CHECK_FAIL)
            return k;
    return TOKEN_CHECK_COUNT;
}

/* Explain's own view of the gates it cannot see or assumes (TLS, lockout, credentials). */
static void adjust_trace(struct explain *x)
{
    struct gate_trace *t = x->trace;
    snprintf(t[GATE_TLS].detail, sizeof t[GATE_TLS].detail,
             "assumed: the client uses TLS (without it AUTH is not offered and gets 538 5.7.11)");
    t[GATE_LOCKOUT].outcome = GATE_UNKNOWN;
    snprintf(t[GATE_LOCKOUT].detail, sizeof t[GATE_LOCKOUT].detail,
             "not known to explain (the server's failure counters decide it)");
    char *cred = t[GATE_CREDENTIALS].detail;
    size_t cap = sizeof t[GATE_CREDENTIALS].detail;
    int failed = token_failed_check(x);
    if (x->have_token && x->token.valid)
        snprintf(cred, cap, "token valid; %s", x->token.detail[TOKEN_CHECK_ACT_AS]);
    else if (x->have_token && failed < TOKEN_CHECK_COUNT)
        snprintf(cred, cap, "token fails check %s: %s",
                 ctl_token_check_name((enum ctl_token_check)failed), x->token.detail[failed]);
    else if (x->no_password)
        snprintf(cred, cap,
                 "the mailbox has no password: every basic attempt with a password fails");
    else
        snprintf(cred, cap, "unknown (explain takes no secret): %s is assumed valid",
                 credential_name(x));
}

/* The submitctl commands that would make a failing gate pass; the first is the direct one. */
static size_t fixes_for(const struct explain *x, enum policy_gate g, char fix[FIXES_MAX][FIX_LEN])
{
    const char *a = x->address, *d = x->domain;
    const struct gate_trace *t = &x->trace[g];
    size_t n = 0;
    switch (g) {
    case GATE_CREDENTIALS:
        if (!x->have_token)
            snprintf(fix[n++], FIX_LEN, "submitctl mailbox passwd %s", a);
        else if (token_failed_check(x) == TOKEN_CHECK_ACT_AS)
            snprintf(fix[n++], FIX_LEN, "submitctl mailbox grant-access %s %s", a,
                     x->token.principal);
        else if (x->view.tenant.oauth_issuer[0] == '\0' && !x->token.keys_unavailable)
            snprintf(fix[n++], FIX_LEN, "submitctl token issue %s", a);
        break;
    case GATE_ACCOUNT_ENABLED:
        snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s enabled yes", a);
        break;
    case GATE_SMTP_AUTH:
        if (t->level == LEVEL_MAILBOX) {
            snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s smtp-auth on", a);
            if (x->view.tenant.smtp_auth)
                snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s smtp-auth inherit", a);
        } else {
            snprintf(fix[n++], FIX_LEN, "submitctl tenant set %s smtp-auth on", d);
            snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s smtp-auth on", a);
        }
        break;
    case GATE_BASIC_POLICY:
        if (!x->view.mailbox_policy_inherit) {
            snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s policy allow-basic", a);
            if (!x->view.mailbox_policy.builtin)
                snprintf(fix[n++], FIX_LEN, "submitctl policy set %s allow-basic-smtp yes",
                         x->view.mailbox_policy.name);
            if (x->view.tenant_policy.allow_basic_smtp)
                snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s policy inherit", a);
        } else {
            snprintf(fix[n++], FIX_LEN, "submitctl tenant set %s default-policy allow-basic", d);
            snprintf(fix[n++], FIX_LEN, "submitctl mailbox set %s policy allow-basic", a);
            if (!x->view.tenant_policy.builtin)
                snprintf(fix[n++], FIX_LEN, "submitctl policy set %s allow-basic-smtp yes",
                         x->view.tenant_policy.name);
        }
        break;
    case GATE_SECURITY_DEFAULTS:
        snprintf(fix[n++], FIX_LEN, "submitctl tenant set %s security-defaults off", d);
        break;
    case GATE_ACCESS_RULE:
        snprintf(fix[n++], FIX_LEN, "submitctl rule remove %s %lld", d, (long long)t->rule_id);
        break;
    default:
        break;
    }
    return n;
}

/* The explanation of the result line when the decision depends on what explain cannot see. */
static void caveats(const struct explain *x, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t used = 0;
    for (int g = 0; g < GATE_COUNT; g++) {
        if (x->trace[g].outcome != GATE_UNKNOWN)
            continue;
        const char *what =
            g == GATE_CREDENTIALS
                ? (sasl_mech_is_basic(x->mech) ? "the password is right" : "the token is valid")
            : g == GATE_LOCKOUT     ? "the mailbox is not locked out"
            : g == GATE_ACCESS_RULE ? "no access rule blocks the client's address "
                                      "(give --ip)"
                                    : policy_gate_name((enum policy_gate)g);
        int k = snprintf(buf + used, cap - used, "%s%s", used ? ", and " : "", what);
        if (k < 0 || (size_t)k >= cap - used)
            return;
        used += (size_t)k;
    }
}

/* "tenant", "mailbox", "rule 3", "policy block-basic". */
static void level_text(enum policy_level level, int64_t rule_id, const char *policy, char *buf,
                       size_t cap)
{
    if (level == LEVEL_RULE && rule_id != 0)
        snprintf(buf, cap, "rule %lld", (long long)rule_id);
    else if (level == LEVEL_POLICY && policy != NULL)
        snprintf(buf, cap, "policy %s", policy);
    else
        snprintf(buf, cap, "%s", level == LEVEL_NONE ? "-" : policy_level_name(level));
}

static int print_text(const struct explain *x)
{
    char client[80];
    snprintf(client, sizeof client, "%s", x->ip ? x->ip : "unknown (give --ip)");
    printf("explain: AUTH %s as %s with %s from client %s over TLS (assumed)\n",
           sasl_mech_name(x->mech), x->address, credential_name(x), client);
    printf("tenant %s, mailbox %s\n\n", x->domain, x->address);
    if (x->have_token) {
        printf("token checks (as the server makes them; the token itself is not shown)\n");
        printf("   %-10s %-8s %s\n", "CHECK", "OUTCOME", "DETAIL");
        for (int k = 0; k < TOKEN_CHECK_COUNT; k++)
            printf("   %-10s %-8s %s\n", ctl_token_check_name((enum ctl_token_check)k),
                   check_outcome_name(x->token.outcome[k]),
                   x->token.outcome[k] == CHECK_SKIPPED ? "not reached" : x->token.detail[k]);
        putchar('\n');
    }
    printf("   %-18s %-8s %-20s %s\n", "GATE", "OUTCOME", "DECIDED BY", "SETTING");
    static const char *const step[GATE_COUNT] = {"1", "", "2", "3", "4", "5", "6", "7"};
    for (int g = 0; g < GATE_COUNT; g++) {
        const struct gate_trace *t = &x->trace[g];
        char level[POLICY_NAME_MAX + 16];
        level_text(t->level, t->rule_id, t->policy_name, level, sizeof level);
        printf("%-2s %-18s %-8s %-20s %s\n", step[g], policy_gate_name((enum policy_gate)g),
               outcome_name(t->outcome), level, t->detail);
        if (t->outcome != GATE_FAIL)
            continue;
        char fix[FIXES_MAX][FIX_LEN];
        size_t n = fixes_for(x, (enum policy_gate)g, fix);
        for (size_t i = 0; i < n; i++)
            printf("%-52s %s%s\n", "", i == 0 ? "fix: " : "or:  ", fix[i]);
    }
    char reply[600], reason[600], cav[400];
    reply_text(x->decision.reply, reply, sizeof reply);
    caveats(x, cav, sizeof cav);
    putchar('\n');
    if (x->decision.allowed) {
        printf("Result: ALLOWED%s%s: clients get `%s`\n", cav[0] ? " if " : "", cav, reply);
        return CTL_EXIT_OK;
    }
    reply_text(x->decision.reason, reason, sizeof reason);
    char level[POLICY_NAME_MAX + 16];
    level_text(x->decision.level, x->decision.rule_id, x->decision.policy_name, level,
               sizeof level);
    printf("Result: DENIED by gate %s (decided by %s): clients get `%s`",
           policy_gate_name(x->decision.gate), level, reply);
    if (x->decision.reply != x->decision.reason)
        printf(" (tenant reply-detail generic hides the real reason `%s`, which the sign-in log "
               "keeps)",
               reason);
    putchar('\n');
    return CTL_EXIT_NO;
}

static json_t *reply_json(enum reply_id id)
{
    const struct reply_entry *r = &reply_catalogue[id];
    return json_pack("{s:i, s:s, s:s}", "code", r->code, "enhanced", r->enhanced ? r->enhanced : "",
                     "text", r->text);
}

/* {"result", "valid", "checks": [{"check", "outcome", "detail"}], claims...}: never the token. */
static json_t *token_json(const struct explain *x)
{
    const struct ctl_token_report *r = &x->token;
    json_t *checks = json_array();
    for (int k = 0; k < TOKEN_CHECK_COUNT; k++)
        json_array_append_new(
            checks, json_pack("{s:s, s:s, s:s}", "check",
                              ctl_token_check_name((enum ctl_token_check)k), "outcome",
                              r->outcome[k] == CHECK_PASS   ? "pass"
                              : r->outcome[k] == CHECK_FAIL ? "FAIL"
                                                            : "not-reached",
                              "detail", r->outcome[k] == CHECK_SKIPPED ? "" : r->detail[k]));
    int failed = token_failed_check(x);
    return json_pack(
        "{s:s, s:b, s:b, s:b, s:s?, s:o, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "result",
        r->keys_unavailable ? "keys-unavailable" : jwt_error_name(r->error), "valid", r->valid,
        "delegated", r->delegated, "keys_unavailable", r->keys_unavailable, "failed_check",
        failed < TOKEN_CHECK_COUNT ? ctl_token_check_name((enum ctl_token_check)failed) : NULL,
        "checks", checks, "alg", jwt_alg_name(r->claims.alg), "kid", r->claims.kid, "iss",
        r->claims.iss, "sub", r->claims.sub, "identity", r->claims.identity, "exp",
        (json_int_t)r->claims.exp, "nbf", (json_int_t)r->claims.nbf, "iat",
        (json_int_t)r->claims.iat);
}

static int print_json(const struct explain *x)
{
    json_t *gates = json_array();
    for (int g = 0; g < GATE_COUNT; g++) {
        const struct gate_trace *t = &x->trace[g];
        json_t *fixes = json_array();
        char fix[FIXES_MAX][FIX_LEN];
        size_t n = t->outcome == GATE_FAIL ? fixes_for(x, (enum policy_gate)g, fix) : 0;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(fixes, json_string(fix[i]));
        json_t *row =
            json_pack("{s:s, s:s, s:s, s:s, s:o}", "gate", policy_gate_name((enum policy_gate)g),
                      "outcome", outcome_name(t->outcome), "level", policy_level_name(t->level),
                      "detail", t->detail, "fix", fixes);
        if (row != NULL && t->level == LEVEL_RULE && t->rule_id != 0)
            json_object_set_new(row, "rule_id", json_integer((json_int_t)t->rule_id));
        if (row != NULL && t->policy_name != NULL)
            json_object_set_new(row, "policy", json_string(t->policy_name));
        json_array_append_new(gates, row);
    }
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:o*, s:b, s:b, s:b, s:o, s:b, s:s, s:s, s:o, s:o}", "address",
        x->address, "tenant", x->domain, "mech", sasl_mech_name(x->mech), "credential",
        credential_name(x), "ip", x->ip ? json_string(x->ip) : json_null(), "tls_assumed", 1,
        "tenant_found", 1, "mailbox_found", 1, "gates", gates, "allowed", x->decision.allowed,
        "gate", policy_gate_name(x->decision.gate), "level", policy_level_name(x->decision.level),
        "reply", reply_json(x->decision.reply), "reason", reply_json(x->decision.reason));
    if (j != NULL)
        json_object_set_new(j, "generic", json_boolean(x->decision.reply != x->decision.reason));
    if (j != NULL && x->have_token)
        json_object_set_new(j, "token", token_json(x));
    int rc = ctl_json_print(j);
    return rc != 0 ? rc : (x->decision.allowed ? CTL_EXIT_OK : CTL_EXIT_NO);
}

/* An unknown domain or mailbox: the server answers exactly like a wrong password. */
static int explain_unknown(const struct ctl *c, const char *address, bool tenant_found)
{
    const char *domain = strrchr(address, '@') + 1;
    char reply[300];
    reply_text(REPLY_AUTH_FAILED, reply, sizeof reply);
    if (c->json) {
        json_t *j = json_pack("{s:s, s:b, s:b, s:b, s:s, s:o}", "address", address, "tenant_found",
                              tenant_found, "mailbox_found", 0, "allowed", 0, "gate", "credentials",
                              "reply", reply_json(REPLY_AUTH_FAILED));
        int rc = ctl_json_print(j);
        return rc != 0 ? rc : CTL_EXIT_NO;
    }
    if (!tenant_found)
        printf("explain: %s is not an accepted domain of any tenant (submitctl tenant add %s)\n",
               domain, domain);
    else
        printf("explain: no mailbox %s in tenant of %s (submitctl mailbox add %s)\n", address,
               domain, address);
    printf("Every AUTH as %s fails at the credentials gate, after the same work as a wrong "
           "password, so nothing about the directory is revealed.\n",
           address);
    printf("Result: DENIED by gate credentials (unknown %s): clients get `%s`\n",
           tenant_found ? "mailbox" : "domain", reply);
    return CTL_EXIT_NO;
}

/* Reads a bearer token from standard input: all of it, surrounding white space removed. A token
 * longer than JWT_MAX_LEN is kept as JWT_MAX_LEN + 1 octets (jwt_verify then names it
 * oversized). Returns 0 (buf holds *len octets, NUL-terminated) or an exit code. */
static int read_token(const struct ctl *c, char buf[JWT_MAX_LEN + 2], size_t *len)
{
    size_t n = 0;
    for (;;) {
        char sink[512];
        char *to = n <= JWT_MAX_LEN ? buf + n : sink;
        size_t room = n <= JWT_MAX_LEN ? JWT_MAX_LEN + 1 - n : sizeof sink;
        ssize_t r = read(STDIN_FILENO, to, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ctl_fail(c, "cannot read the token from standard input: %s", strerror(errno));
        if (r == 0)
            break;
        if (to == sink)
            sodium_memzero(sink, sizeof sink);
        else
            n += (size_t)r;
    }
    size_t start = 0;
    while (start < n &&
           (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\r' || buf[start] == '\n'))
        start++;
    while (n > start &&
           (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\r' || buf[n - 1] == '\n'))
        n--;
    memmove(buf, buf + start, n - start);
    sodium_memzero(buf + (n - start), JWT_MAX_LEN + 2 - (n - start));
    *len = n - start;
    if (*len == 0)
        return ctl_usage(c, "--token-stdin: no token on standard input");
    return 0;
}

/* Everything after the arguments were checked (and the token, if any, read). */
static int explain_with(struct ctl *c, const char *address, struct explain *x,
                        const struct netaddr *client, const char *token, size_t token_len)
{
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    if ((rc = ctl_dir_status(c, dir_auth_view(c->dir, address, &x->view), address)) != 0)
        return rc;
    if (!x->view.tenant_found || !x->view.mailbox_found)
        return explain_unknown(c, address, x->view.tenant_found);
    x->address = x->view.mailbox.address;
    x->domain = x->view.tenant.domain;
    if (x->have_token && ctl_token_verify(c, &x->view, token, token_len, &x->token) != 0)
        return CTL_EXIT_NO;
    build_input(x, client);
    x->decision = policy_decide(&x->in, x->trace);
    if (x->have_token && x->token.keys_unavailable) {
        /* The server cannot judge the token: a temporary failure, never a 535 (STYLE 4). */
        x->decision.reply = x->decision.reason = REPLY_AUTH_TEMPFAIL;
    }
    adjust_trace(x);
    return c->json ? print_json(x) : print_text(x);
}

static int explain_run(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    static struct explain x; /* large (networks of every rule); one per process */
    memset(&x, 0, sizeof x);
    x.have_token = c->opt[EXPLAIN_OPT_TOKEN_STDIN] != NULL;
    const char *mech = c->opt[EXPLAIN_OPT_MECH] ? c->opt[EXPLAIN_OPT_MECH]
                       : x.have_token           ? "xoauth2"
                                                : "plain";
    x.mech = sasl_mech_from_name(mech, strlen(mech));
    x.app_password = c->opt[EXPLAIN_OPT_APP_PASSWORD] != NULL;
    x.ip = c->opt[EXPLAIN_OPT_IP];
    if (!ctl_valid_address(pos[0]))
        return ctl_usage(c, "not a valid address: %s", pos[0]);
    if (x.mech == SASL_MECH_NONE)
        return ctl_usage(c, "--mech must be plain, login, xoauth2 or oauthbearer");
    if (x.app_password && !sasl_mech_is_basic(x.mech))
        return ctl_usage(c, "--app-password needs a basic mechanism (plain or login)");
    if (x.have_token && sasl_mech_is_basic(x.mech))
        return ctl_usage(c, "--token-stdin needs an OAuth mechanism (xoauth2 or oauthbearer)");
    struct netaddr client;
    if (x.ip != NULL && netaddr_parse(x.ip, &client) != 0)
        return ctl_usage(c, "--ip: not an IPv4 or IPv6 address: %s", x.ip);
    static char token[JWT_MAX_LEN + 2];
    size_t token_len = 0;
    if (x.have_token) {
        int rc = read_token(c, token, &token_len);
        if (rc != 0) {
            sodium_memzero(token, sizeof token);
            return rc;
        }
    }
    int rc = explain_with(c, pos[0], &x, x.ip != NULL ? &client : NULL, token, token_len);
    sodium_memzero(token, sizeof token);
    return rc;
}

const struct ctl_command ctl_explain_commands[] = {
    {"explain", NULL,
     "ADDRESS [--mech plain|login|xoauth2|oauthbearer] [--ip ADDR] "
     "[--app-password] [--token-stdin]",
     "every gate an AUTH attempt passes, the setting that decides it, the command that would "
     "change it, and the client's reply; exit 1 when it would be denied. --token-stdin reads an "
     "OAuth token and checks it as the server does (never printed)",
     1, 1, CTL_JSON, explain_opts, explain_run},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
