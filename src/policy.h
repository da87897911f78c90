/* policy.h: the SMTP AUTH decision, one pure function over the settings model of SPEC section 2
 * evaluated in the order of SPEC section 3. The caller does the I/O (directory lookup, password
 * or token verification, lockout) and passes the results in; the function decides which gate
 * fails first and which reply the client gets, and can trace every gate for `explain`. */
#ifndef SUBMITD_POLICY_H
#define SUBMITD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"
#include "netmask.h"
#include "reply.h"

enum setting_switch { SWITCH_OFF = 0, SWITCH_ON = 1, SWITCH_INHERIT = 2 };

/* What kind of secret the client proved. */
enum auth_kind {
    AUTH_KIND_PASSWORD = 0, /* PLAIN/LOGIN with the mailbox password (basic) */
    AUTH_KIND_APP_PASSWORD, /* PLAIN/LOGIN with one of the mailbox's app passwords (basic) */
    AUTH_KIND_OAUTH         /* XOAUTH2/OAUTHBEARER with a bearer token */
};

enum policy_gate {
    GATE_TLS = 0,           /* 1: TLS, or a listener that allows cleartext AUTH */
    GATE_LOCKOUT,           /* before 2: smart lockout (answers like 2) */
    GATE_CREDENTIALS,       /* 2: password / token valid, identity may act as the user */
    GATE_ACCOUNT_ENABLED,   /* 3 */
    GATE_SMTP_AUTH,         /* 4: effective SMTP AUTH switch (mailbox, else tenant) */
    GATE_BASIC_POLICY,      /* 5: effective authentication policy allows basic SMTP */
    GATE_SECURITY_DEFAULTS, /* 6 */
    GATE_ACCESS_RULE,       /* 7 */
    GATE_COUNT,
    GATE_NONE = GATE_COUNT  /* no gate failed */
};

/* Which level of the settings model decided a gate. */
enum policy_level {
    LEVEL_NONE = 0,
    LEVEL_LISTENER,
    LEVEL_TENANT,
    LEVEL_MAILBOX,
    LEVEL_POLICY,    /* an authentication policy (named) */
    LEVEL_RULE,      /* an access rule (by id) */
    LEVEL_APP_PASSWORD /* the tenant's app-passwords setting let an app password through */
};

enum gate_outcome {
    GATE_PASS = 0,
    GATE_FAIL,
    GATE_NOT_APPLICABLE, /* e.g. basic-auth gates for OAuth */
    GATE_UNKNOWN         /* input not known (explain without a password or client address) */
};

struct policy_rule {
    int64_t id;
    bool allow;           /* action: allow basic auth, or block it */
    bool outside;         /* matches clients NOT in nets (else clients in nets) */
    bool applies;         /* the rule covers this mailbox (all mailboxes, or listed) */
    const struct netmask *nets;
    size_t n_nets;
};

struct policy_input {
    /* connection */
    bool tls;
    bool cleartext_auth_allowed; /* listener setting */
    bool client_known;           /* false in explain without --ip */
    struct netaddr client;
    enum auth_kind kind;
    bool kind_known;             /* false in explain: basic vs app password not known */
    /* results of the I/O steps */
    bool locked_out;
    bool credentials_known;      /* false in explain (no secret given) */
    bool credentials_valid;
    /* tenant */
    bool tenant_smtp_auth;
    bool tenant_security_defaults;
    bool tenant_app_passwords;
    const char *tenant_policy_name;
    bool tenant_policy_allows_basic;
    /* mailbox */
    bool mailbox_enabled;
    enum setting_switch mailbox_smtp_auth;
    const char *mailbox_policy_name; /* NULL = inherit the tenant default */
    bool mailbox_policy_allows_basic;
    /* access rules, in order; the first that matches decides; none matching = allowed */
    const struct policy_rule *rules;
    size_t n_rules;
    /* tenant reply-detail generic: every 535 becomes 535 5.7.3 for the client */
    bool reply_generic;
};

struct gate_trace {
    enum gate_outcome outcome;
    enum policy_level level;
    int64_t rule_id;         /* LEVEL_RULE */
    const char *policy_name; /* LEVEL_POLICY (points into the input) */
    char detail[200];        /* e.g. "tenant smtp-auth=off, mailbox smtp-auth=inherit" */
};

struct policy_decision {
    bool allowed;
    enum policy_gate gate;   /* the gate that failed first, GATE_NONE when allowed */
    enum policy_level level; /* the level that decided that gate */
    enum reply_id reply;     /* what the client is told (after reply_generic) */
    enum reply_id reason;    /* the real reason (for the sign-in log), before reply_generic */
    int64_t rule_id;
    const char *policy_name;
};

/* Decides. With trace != NULL, every gate is evaluated (not only up to the first failure) and
 * described in trace[gate], for `submitctl explain`; the decision is the same either way. */
struct policy_decision policy_decide(const struct policy_input *in,
                                     struct gate_trace trace[GATE_COUNT]);

/* Short stable names for logs and JSON: "tls", "lockout", "credentials", "account-enabled",
 * "smtp-auth", "basic-auth-policy", "security-defaults", "access-rule", "none". */
const char *policy_gate_name(enum policy_gate gate);
const char *policy_level_name(enum policy_level level); /* "tenant", "mailbox", ... */

#endif
