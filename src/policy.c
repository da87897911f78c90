/* policy.c: the SMTP AUTH decision (SPEC sections 2 and 3). One table of gates in the order of
 * SPEC section 3; each gate is a pure function of the input that says pass / fail / not
 * applicable / unknown, which level of the settings model decided, and (for `explain`) why.
 * The decision is the first gate that fails; with a trace every gate is evaluated, which cannot
 * change that decision because no gate looks at another gate's result. Reply codes: RFC 4954 6
 * (535, 538), RFC 3463 / RFC 5248 enhanced codes via the reply catalogue. */
#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What one gate concluded. `reply` is meaningful only for GATE_FAIL. */
struct gate_result {
    enum gate_outcome outcome;
    enum policy_level level;
    enum reply_id reply;
    int64_t rule_id;
    const char *policy_name;
};

/* Evaluates one gate; writes a human description to detail when detail != NULL. */
typedef struct gate_result (*gate_fn)(const struct policy_input *in, char *detail, size_t cap);

static void describe(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void describe(char *detail, size_t cap, const char *fmt, ...)
{
    if (detail == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, cap, fmt, ap);
    va_end(ap);
}

static struct gate_result result(enum gate_outcome outcome, enum policy_level level,
                                 enum reply_id reply)
{
    return (struct gate_result){.outcome = outcome, .level = level, .reply = reply};
}

static const char *on_off(bool v)
{
    return v ? "on" : "off";
}

static const char *switch_name(enum setting_switch s)
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

static const char *kind_name(enum auth_kind kind)
{
    switch (kind) {
    case AUTH_KIND_PASSWORD:
        return "password";
    case AUTH_KIND_APP_PASSWORD:
        return "app password";
    case AUTH_KIND_OAUTH:
        return "OAuth token";
    }
    return "?";
}

/* The kind the gates act on. When the kind is not known (explain without a secret) the
 * mechanism still tells OAuth from basic; a basic attempt is judged as a main password. */
static enum auth_kind effective_kind(const struct policy_input *in)
{
    if (in->kind_known || in->kind == AUTH_KIND_OAUTH)
        return in->kind;
    return AUTH_KIND_PASSWORD;
}

/* True when the tenant lets this attempt's app password through the basic-auth gates
 * (security defaults and policies); never for a main password (SPEC section 2). */
static bool app_password_bypass(const struct policy_input *in)
{
    return effective_kind(in) == AUTH_KIND_APP_PASSWORD && in->tenant_app_passwords;
}

/* For explain when the kind is unknown: what an app password would do at a basic-auth gate. */
static const char *app_password_note(const struct policy_input *in)
{
    if (in->kind_known || in->kind == AUTH_KIND_OAUTH)
        return "";
    return in->tenant_app_passwords ? "; judged as the main password, an app password would pass "
                                      "(tenant app-passwords=on)"
                                    : "; judged as the main password, an app password would fail "
                                      "too (tenant app-passwords=off)";
}

/* 1: AUTH only over TLS unless the listener allows cleartext (RFC 4954 4, 538 5.7.11). */
static struct gate_result gate_tls(const struct policy_input *in, char *detail, size_t cap)
{
    if (in->tls) {
        describe(detail, cap, "connection is TLS");
        return result(GATE_PASS, LEVEL_LISTENER, REPLY_AUTH_OK);
    }
    if (in->cleartext_auth_allowed) {
        describe(detail, cap, "cleartext connection; the listener allows cleartext AUTH");
        return result(GATE_PASS, LEVEL_LISTENER, REPLY_AUTH_OK);
    }
    describe(detail, cap, "cleartext connection; the listener requires TLS before AUTH");
    return result(GATE_FAIL, LEVEL_LISTENER, REPLY_AUTH_ENCRYPTION_REQUIRED);
}

/* Before 2: a locked-out mailbox answers like bad credentials, without verifying. */
static struct gate_result gate_lockout(const struct policy_input *in, char *detail, size_t cap)
{
    if (in->locked_out) {
        describe(detail, cap, "mailbox is locked out after too many failed attempts");
        return result(GATE_FAIL, LEVEL_MAILBOX, REPLY_AUTH_FAILED);
    }
    describe(detail, cap, "mailbox is not locked out");
    return result(GATE_PASS, LEVEL_MAILBOX, REPLY_AUTH_OK);
}

/* 2: the password, app password or token is valid for this mailbox. */
static struct gate_result gate_credentials(const struct policy_input *in, char *detail, size_t cap)
{
    const char *what = in->kind_known || in->kind == AUTH_KIND_OAUTH ? kind_name(in->kind)
                                                                     : "password or app password";
    if (!in->credentials_known) {
        describe(detail, cap, "%s not checked (no secret given)", what);
        return result(GATE_UNKNOWN, LEVEL_MAILBOX, REPLY_AUTH_OK);
    }
    if (in->credentials_valid) {
        describe(detail, cap, "%s valid", what);
        return result(GATE_PASS, LEVEL_MAILBOX, REPLY_AUTH_OK);
    }
    describe(detail, cap, "%s not valid for this mailbox", what);
    return result(GATE_FAIL, LEVEL_MAILBOX, REPLY_AUTH_FAILED);
}

/* 3: the account is enabled. */
static struct gate_result gate_enabled(const struct policy_input *in, char *detail, size_t cap)
{
    describe(detail, cap, "mailbox enabled=%s", in->mailbox_enabled ? "yes" : "no");
    if (!in->mailbox_enabled)
        return result(GATE_FAIL, LEVEL_MAILBOX, REPLY_AUTH_ACCOUNT_DISABLED);
    return result(GATE_PASS, LEVEL_MAILBOX, REPLY_AUTH_OK);
}

/* 4: effective SMTP AUTH switch = mailbox value unless inherit, else tenant value. It gates the
 * protocol, so it applies to OAuth and app passwords alike. */
static struct gate_result gate_smtp_auth(const struct policy_input *in, char *detail, size_t cap)
{
    bool by_mailbox = in->mailbox_smtp_auth != SWITCH_INHERIT;
    bool on = by_mailbox ? in->mailbox_smtp_auth == SWITCH_ON : in->tenant_smtp_auth;
    enum policy_level level = by_mailbox ? LEVEL_MAILBOX : LEVEL_TENANT;
    describe(detail, cap, "tenant smtp-auth=%s, mailbox smtp-auth=%s -> %s (decided by %s)",
             on_off(in->tenant_smtp_auth), switch_name(in->mailbox_smtp_auth), on_off(on),
             by_mailbox ? "mailbox" : "tenant");
    if (on)
        return result(GATE_PASS, level, REPLY_AUTH_OK);
    return result(GATE_FAIL, level,
                  by_mailbox ? REPLY_AUTH_DISABLED_MAILBOX : REPLY_AUTH_DISABLED_TENANT);
}

/* 5: effective authentication policy (mailbox's unless inherit, else the tenant default) allows
 * basic SMTP; an app password passes when the tenant turned app-passwords on. */
static struct gate_result gate_basic_policy(const struct policy_input *in, char *detail, size_t cap)
{
    if (effective_kind(in) == AUTH_KIND_OAUTH) {
        describe(detail, cap, "not applicable: authentication policies gate only basic auth");
        return result(GATE_NOT_APPLICABLE, LEVEL_NONE, REPLY_AUTH_OK);
    }
    bool by_mailbox = in->mailbox_policy_name != NULL;
    const char *name = by_mailbox ? in->mailbox_policy_name : in->tenant_policy_name;
    bool allows = by_mailbox ? in->mailbox_policy_allows_basic : in->tenant_policy_allows_basic;
    if (name == NULL)
        name = "(unnamed)";

    struct gate_result r = result(GATE_PASS, LEVEL_POLICY, REPLY_AUTH_OK);
    r.policy_name = name;
    if (!allows && app_password_bypass(in)) {
        describe(detail, cap,
                 "policy '%s' (%s) allow-basic-smtp=no; app password let through by tenant "
                 "app-passwords=on",
                 name, by_mailbox ? "mailbox" : "tenant default");
        r.level = LEVEL_APP_PASSWORD;
        return r;
    }
    describe(detail, cap, "policy '%s' (%s) allow-basic-smtp=%s%s", name,
             by_mailbox ? "mailbox" : "tenant default", allows ? "yes" : "no",
             allows ? "" : app_password_note(in));
    if (!allows) {
        r.outcome = GATE_FAIL;
        r.reply = REPLY_AUTH_BASIC_DISABLED;
    }
    return r;
}

/* 6: tenant security defaults block basic auth; app passwords pass with tenant app-passwords. */
static struct gate_result gate_security_defaults(const struct policy_input *in, char *detail,
                                                 size_t cap)
{
    if (effective_kind(in) == AUTH_KIND_OAUTH) {
        describe(detail, cap, "not applicable: security defaults block only basic auth");
        return result(GATE_NOT_APPLICABLE, LEVEL_NONE, REPLY_AUTH_OK);
    }
    if (!in->tenant_security_defaults) {
        describe(detail, cap, "tenant security-defaults=off");
        return result(GATE_PASS, LEVEL_TENANT, REPLY_AUTH_OK);
    }
    if (app_password_bypass(in)) {
        describe(detail, cap,
                 "tenant security-defaults=on; app password let through by tenant "
                 "app-passwords=on");
        return result(GATE_PASS, LEVEL_APP_PASSWORD, REPLY_AUTH_OK);
    }
    describe(detail, cap, "tenant security-defaults=on%s", app_password_note(in));
    return result(GATE_FAIL, LEVEL_TENANT, REPLY_AUTH_SECURITY_DEFAULTS);
}

enum rule_match { MATCH_NO, MATCH_YES, MATCH_MAYBE };

/* Does the rule's network condition select this client? MAYBE when the client is unknown and
 * the answer depends on it. */
static enum rule_match rule_matches(const struct policy_rule *rule, const struct policy_input *in)
{
    if (!in->client_known) {
        if (rule->n_nets == 0) /* in no network: never; outside no network: always */
            return rule->outside ? MATCH_YES : MATCH_NO;
        return MATCH_MAYBE;
    }
    bool inside = false;
    for (size_t i = 0; i < rule->n_nets && !inside; i++)
        inside = netmask_contains(&rule->nets[i], &in->client);
    return inside != rule->outside ? MATCH_YES : MATCH_NO;
}

/* 7: the first rule that covers this mailbox and matches the client decides; none = allowed.
 * App passwords are basic auth here whatever the tenant's app-passwords setting. With an
 * unknown client the gate is UNKNOWN when the outcome depends on the address. */
static struct gate_result gate_access_rule(const struct policy_input *in, char *detail, size_t cap)
{
    if (effective_kind(in) == AUTH_KIND_OAUTH) {
        describe(detail, cap, "not applicable: access rules gate only basic auth");
        return result(GATE_NOT_APPLICABLE, LEVEL_NONE, REPLY_AUTH_OK);
    }
    char client[64];
    if (in->client_known)
        netaddr_format(&in->client, client, sizeof client);
    else
        snprintf(client, sizeof client, "(unknown)");

    bool may_pass = false, may_fail = false;
    size_t applicable = 0;
    const struct policy_rule *decider = NULL; /* first rule that certainly matches */
    const struct policy_rule *first_maybe = NULL;
    for (size_t i = 0; i < in->n_rules && decider == NULL; i++) {
        const struct policy_rule *rule = &in->rules[i];
        if (!rule->applies)
            continue;
        applicable++;
        enum rule_match m = rule_matches(rule, in);
        if (m == MATCH_NO)
            continue;
        if (rule->allow)
            may_pass = true;
        else
            may_fail = true;
        if (m == MATCH_YES)
            decider = rule;
        else if (first_maybe == NULL)
            first_maybe = rule;
    }
    if (decider == NULL)
        may_pass = true; /* no rule matched (or might not): allowed */

    if (may_pass && may_fail) {
        struct gate_result r = result(GATE_UNKNOWN, LEVEL_RULE, REPLY_AUTH_OK);
        r.rule_id = first_maybe->id;
        describe(detail, cap,
                 "client address unknown; rule %lld (%s) and later rules may decide depending "
                 "on it",
                 (long long)first_maybe->id, first_maybe->allow ? "allow" : "block");
        return r;
    }
    if (decider == NULL || !may_fail) {
        if (!in->client_known)
            describe(detail, cap,
                     "client address unknown; no access rule covering this mailbox can block it "
                     "(%zu of %zu rules cover it)",
                     applicable, in->n_rules);
        else if (decider == NULL)
            describe(detail, cap,
                     "client %s: no access rule matches (%zu of %zu rules cover this mailbox)",
                     client, applicable, in->n_rules);
        else
            describe(detail, cap,
                     "client %s: rule %lld (allow basic auth for clients %s its "
                     "networks) matches",
                     client, (long long)decider->id, decider->outside ? "outside" : "inside");
        struct gate_result r =
            result(GATE_PASS, decider ? LEVEL_RULE : LEVEL_TENANT, REPLY_AUTH_OK);
        r.rule_id = decider ? decider->id : 0;
        return r;
    }
    /* Certain to be blocked; with an unknown client the first rule that may match blocks. */
    const struct policy_rule *blocker = first_maybe != NULL ? first_maybe : decider;
    struct gate_result r = result(GATE_FAIL, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE);
    r.rule_id = blocker->id;
    describe(detail, cap,
             "client %s: rule %lld (block basic auth for clients %s its networks) "
             "matches",
             client, (long long)blocker->id, blocker->outside ? "outside" : "inside");
    return r;
}

/* SPEC section 3, in order. Lockout comes before credentials so that a locked-out mailbox is
 * answered without verifying. */
static const struct {
    enum policy_gate gate;
    gate_fn eval;
} gate_table[GATE_COUNT] = {
    {GATE_TLS, gate_tls},
    {GATE_LOCKOUT, gate_lockout},
    {GATE_CREDENTIALS, gate_credentials},
    {GATE_ACCOUNT_ENABLED, gate_enabled},
    {GATE_SMTP_AUTH, gate_smtp_auth},
    {GATE_BASIC_POLICY, gate_basic_policy},
    {GATE_SECURITY_DEFAULTS, gate_security_defaults},
    {GATE_ACCESS_RULE, gate_access_rule},
};

/* What the client is told: under tenant reply-detail generic every 535 becomes 535 5.7.3. */
static enum reply_id client_reply(const struct policy_input *in, enum reply_id reason)
{
    if (in->reply_generic && reply_catalogue[reason].code == 535)
        return REPLY_AUTH_FAILED;
    return reason;
}

struct policy_decision policy_decide(const struct policy_input *in,
                                     struct gate_trace trace[GATE_COUNT])
{
    struct policy_decision d = {
        .allowed = true,
        .gate = GATE_NONE,
        .level = LEVEL_NONE,
        .reply = REPLY_AUTH_OK,
        .reason = REPLY_AUTH_OK,
    };
    for (size_t i = 0; i < GATE_COUNT; i++) {
        enum policy_gate g = gate_table[i].gate;
        struct gate_trace *t = trace != NULL ? &trace[g] : NULL;
        if (t != NULL)
            memset(t, 0, sizeof *t);
        struct gate_result r =
            gate_table[i].eval(in, t != NULL ? t->detail : NULL, t != NULL ? sizeof t->detail : 0);
        if (t != NULL) {
            t->outcome = r.outcome;
            t->level = r.level;
            t->rule_id = r.rule_id;
            t->policy_name = r.policy_name;
        }
        if (r.outcome == GATE_FAIL && d.allowed) {
            d.allowed = false;
            d.gate = g;
            d.level = r.level;
            d.reason = r.reply;
            d.reply = client_reply(in, r.reply);
            d.rule_id = r.rule_id;
            d.policy_name = r.policy_name;
            if (trace == NULL)
                break;
        }
    }
    return d;
}

const char *policy_gate_name(enum policy_gate gate)
{
    static const char *const names[GATE_COUNT + 1] = {
        [GATE_TLS] = "tls",
        [GATE_LOCKOUT] = "lockout",
        [GATE_CREDENTIALS] = "credentials",
        [GATE_ACCOUNT_ENABLED] = "account-enabled",
        [GATE_SMTP_AUTH] = "smtp-auth",
        [GATE_BASIC_POLICY] = "basic-auth-policy",
        [GATE_SECURITY_DEFAULTS] = "security-defaults",
        [GATE_ACCESS_RULE] = "access-rule",
        [GATE_NONE] = "none",
    };
    if ((unsigned)gate > GATE_NONE)
        return "?";
    return names[gate];
}

const char *policy_level_name(enum policy_level level)
{
    switch (level) {
    case LEVEL_NONE:
        return "none";
    case LEVEL_LISTENER:
        return "listener";
    case LEVEL_TENANT:
        return "tenant";
    case LEVEL_MAILBOX:
        return "mailbox";
    case LEVEL_POLICY:
        return "policy";
    case LEVEL_RULE:
        return "rule";
    case LEVEL_APP_PASSWORD:
        return "app-password";
    }
    return "?";
}
