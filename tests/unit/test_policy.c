/* test_policy.c: the SMTP AUTH decision (src/policy.c) against SPEC sections 2 and 3.
 * 1. Every combination of the settings of SPEC section 2 (and TLS, lockout, credentials, kind,
 *    rule sets, reply-detail generic), each checked against a reference model written here from
 *    the SPEC text, independently of policy.c: it lists every gate that fails and takes the
 *    first. Trace mode must give the same decision, and its per-gate outcomes must equal the
 *    model's list of failing gates.
 * 2. Hand-written rows, each citing the SPEC sentence it checks.
 * 3. Trace details and unknown inputs (`submitctl explain`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

/* ---- fixtures ------------------------------------------------------------------------------ */

static struct netmask net(const char *s)
{
    struct netmask m;
    if (netmask_parse(s, &m) != 0)
        fail_msg("bad test network %s", s);
    return m;
}

static struct netaddr ip(const char *s)
{
    struct netaddr a;
    if (netaddr_parse(s, &a) != 0)
        fail_msg("bad test address %s", s);
    return a;
}

/* The client in the table is 192.0.2.10. */
static struct netmask client_net[1], other_net[1], everything[1];

static void init_nets(void)
{
    client_net[0] = net("192.0.2.0/24");
    other_net[0] = net("198.51.100.0/24");
    everything[0] = net("0.0.0.0/0");
}

enum rule_set {
    RULES_NONE,
    RULES_BLOCK_MATCHING,         /* 1: block inside client_net */
    RULES_BLOCK_NOT_MATCHING,     /* 1: block inside other_net */
    RULES_ALLOW_THEN_BLOCK,       /* 1: allow inside client_net, 2: block everything */
    RULES_ALLOW_OTHER_THEN_BLOCK, /* 1: allow inside other_net, 2: block everything */
    RULES_BLOCK_OTHER_MAILBOX,    /* 1: block inside client_net, for other mailboxes only */
    RULES_BLOCK_OUTSIDE,          /* 1: block clients outside other_net */
    RULES_COUNT
};

static const char *const rule_set_names[RULES_COUNT] = {
    "none",
    "block-matching",
    "block-not-matching",
    "allow-then-block",
    "allow-other-then-block",
    "block-other-mailbox",
    "block-outside",
};

static size_t make_rules(enum rule_set set, struct policy_rule rules[2])
{
    memset(rules, 0, 2 * sizeof rules[0]);
    rules[0] = (struct policy_rule){.id = 1, .applies = true, .nets = client_net, .n_nets = 1};
    rules[1] = (struct policy_rule){.id = 2, .applies = true, .nets = everything, .n_nets = 1};
    switch (set) {
    case RULES_NONE:
        return 0;
    case RULES_BLOCK_MATCHING:
        return 1;
    case RULES_BLOCK_NOT_MATCHING:
        rules[0].nets = other_net;
        return 1;
    case RULES_ALLOW_THEN_BLOCK:
        rules[0].allow = true;
        return 2;
    case RULES_ALLOW_OTHER_THEN_BLOCK:
        rules[0].allow = true;
        rules[0].nets = other_net;
        return 2;
    case RULES_BLOCK_OTHER_MAILBOX:
        rules[0].applies = false;
        return 1;
    case RULES_BLOCK_OUTSIDE:
        rules[0].outside = true;
        rules[0].nets = other_net;
        return 1;
    case RULES_COUNT:
        break;
    }
    fail_msg("unknown rule set");
    return 0;
}

/* One row of the table: the settings, in SPEC words. */
struct row {
    bool tenant_smtp_auth;
    enum setting_switch mailbox_smtp_auth;
    bool enabled;
    bool tenant_policy_allows;
    int mailbox_policy; /* 0 inherit, 1 a policy that allows basic, 2 one that blocks it */
    bool security_defaults;
    bool app_passwords;
    enum auth_kind kind;
    bool credentials_valid;
    int transport; /* 0 TLS, 1 cleartext, 2 cleartext on a listener that allows cleartext AUTH */
    bool locked_out;
    enum rule_set rules;
    bool generic;
};

static struct policy_rule row_rules[2];

static struct policy_input input_of(const struct row *r)
{
    struct policy_input in = {
        .tls = r->transport == 0,
        .cleartext_auth_allowed = r->transport == 2,
        .client_known = true,
        .client = ip("192.0.2.10"),
        .kind = r->kind,
        .kind_known = true,
        .locked_out = r->locked_out,
        .credentials_known = true,
        .credentials_valid = r->credentials_valid,
        .tenant_smtp_auth = r->tenant_smtp_auth,
        .tenant_security_defaults = r->security_defaults,
        .tenant_app_passwords = r->app_passwords,
        .tenant_policy_name = "tenant-default",
        .tenant_policy_allows_basic = r->tenant_policy_allows,
        .mailbox_enabled = r->enabled,
        .mailbox_smtp_auth = r->mailbox_smtp_auth,
        .mailbox_policy_name = r->mailbox_policy == 0   ? NULL
                               : r->mailbox_policy == 1 ? "allow-basic"
                                                        : "block-basic",
        .mailbox_policy_allows_basic = r->mailbox_policy == 1,
        .reply_generic = r->generic,
    };
    in.n_rules = make_rules(r->rules, row_rules);
    in.rules = in.n_rules > 0 ? row_rules : NULL;
    return in;
}

static void describe_row(const struct row *r, char *buf, size_t cap)
{
    static const char *const sw[] = {"off", "on", "inherit"};
    static const char *const kinds[] = {"password", "app-password", "oauth"};
    static const char *const mp[] = {"inherit", "allow", "block"};
    static const char *const tr[] = {"tls", "cleartext", "cleartext-allowed"};
    snprintf(buf, cap,
             "tenant smtp-auth=%s mailbox smtp-auth=%s enabled=%d tenant-policy-allows=%d "
             "mailbox-policy=%s security-defaults=%d app-passwords=%d kind=%s credentials=%d "
             "transport=%s locked=%d rules=%s generic=%d",
             sw[r->tenant_smtp_auth], sw[r->mailbox_smtp_auth], r->enabled, r->tenant_policy_allows,
             mp[r->mailbox_policy], r->security_defaults, r->app_passwords, kinds[r->kind],
             r->credentials_valid, tr[r->transport], r->locked_out, rule_set_names[r->rules],
             r->generic);
}

/* ---- the reference model, from the SPEC text ----------------------------------------------- */

struct expected_failure {
    enum policy_gate gate;
    enum policy_level level;
    enum reply_id reason;
    int64_t rule_id;
    const char *policy_name;
};

struct model {
    struct expected_failure fails[GATE_COUNT];
    size_t n;
    bool failing[GATE_COUNT];
};

static void model_fail(struct model *m, enum policy_gate gate, enum policy_level level,
                       enum reply_id reason, int64_t rule_id, const char *policy_name)
{
    m->fails[m->n++] = (struct expected_failure){gate, level, reason, rule_id, policy_name};
    m->failing[gate] = true;
}

/* Lists every gate that fails for this row, in SPEC section 3 order. */
static struct model reference(const struct row *r)
{
    struct model m = {0};
    bool oauth = r->kind == AUTH_KIND_OAUTH;
    bool app = r->kind == AUTH_KIND_APP_PASSWORD;

    /* 1. "connection is TLS (or the listener explicitly allows cleartext AUTH)" */
    if (r->transport == 1)
        model_fail(&m, GATE_TLS, LEVEL_LISTENER, REPLY_AUTH_ENCRYPTION_REQUIRED, 0, NULL);
    /* "Account lockout ... is decided before step 2 and answers like step 2" */
    if (r->locked_out)
        model_fail(&m, GATE_LOCKOUT, LEVEL_MAILBOX, REPLY_AUTH_FAILED, 0, NULL);
    /* 2. credentials valid (password, app password or token) */
    if (!r->credentials_valid)
        model_fail(&m, GATE_CREDENTIALS, LEVEL_MAILBOX, REPLY_AUTH_FAILED, 0, NULL);
    /* 3. mailbox enabled */
    if (!r->enabled)
        model_fail(&m, GATE_ACCOUNT_ENABLED, LEVEL_MAILBOX, REPLY_AUTH_ACCOUNT_DISABLED, 0, NULL);
    /* 4. "the effective SMTP AUTH switch is the mailbox value unless it is inherit, else the
     * tenant value"; it "blocks OAuth as well as passwords" */
    if (r->mailbox_smtp_auth == SWITCH_OFF)
        model_fail(&m, GATE_SMTP_AUTH, LEVEL_MAILBOX, REPLY_AUTH_DISABLED_MAILBOX, 0, NULL);
    if (r->mailbox_smtp_auth == SWITCH_INHERIT && !r->tenant_smtp_auth)
        model_fail(&m, GATE_SMTP_AUTH, LEVEL_TENANT, REPLY_AUTH_DISABLED_TENANT, 0, NULL);
    if (oauth)
        return m; /* "OAuth ... is never blocked by" policies, security defaults, access rules */

    /* app passwords pass policies and security defaults only with tenant app-passwords on */
    bool app_bypass = app && r->app_passwords;
    /* 5. "The effective authentication policy is the mailbox's unless inherit, else the
     * tenant's default." */
    const char *policy = "tenant-default";
    bool allows = r->tenant_policy_allows;
    if (r->mailbox_policy == 1) {
        policy = "allow-basic";
        allows = true;
    } else if (r->mailbox_policy == 2) {
        policy = "block-basic";
        allows = false;
    }
    if (!allows && !app_bypass)
        model_fail(&m, GATE_BASIC_POLICY, LEVEL_POLICY, REPLY_AUTH_BASIC_DISABLED, 0, policy);
    /* 6. tenant security defaults off */
    if (r->security_defaults && !app_bypass)
        model_fail(&m, GATE_SECURITY_DEFAULTS, LEVEL_TENANT, REPLY_AUTH_SECURITY_DEFAULTS, 0, NULL);
    /* 7. no access rule blocks this client; app passwords never bypass the rules. The outcome
     * of each rule set for client 192.0.2.10, worked out by hand: */
    switch (r->rules) {
    case RULES_BLOCK_MATCHING:
    case RULES_BLOCK_OUTSIDE:
        model_fail(&m, GATE_ACCESS_RULE, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE, 1, NULL);
        break;
    case RULES_ALLOW_OTHER_THEN_BLOCK:
        model_fail(&m, GATE_ACCESS_RULE, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE, 2, NULL);
        break;
    case RULES_NONE:
    case RULES_BLOCK_NOT_MATCHING:
    case RULES_ALLOW_THEN_BLOCK:
    case RULES_BLOCK_OTHER_MAILBOX:
    case RULES_COUNT:
        break;
    }
    return m;
}

/* "reply-detail generic ... turns every 535 into 535 5.7.3" */
static enum reply_id generic_reply(enum reply_id reason)
{
    switch (reason) {
    case REPLY_AUTH_FAILED:
    case REPLY_AUTH_ACCOUNT_DISABLED:
    case REPLY_AUTH_DISABLED_MAILBOX:
    case REPLY_AUTH_DISABLED_TENANT:
    case REPLY_AUTH_BASIC_DISABLED:
    case REPLY_AUTH_SECURITY_DEFAULTS:
    case REPLY_AUTH_ACCESS_RULE:
        return REPLY_AUTH_FAILED;
    default:
        return reason;
    }
}

/* ---- checks -------------------------------------------------------------------------------- */

static bool same_decision(const struct policy_decision *a, const struct policy_decision *b)
{
    bool names = a->policy_name == b->policy_name ||
                 (a->policy_name && b->policy_name && !strcmp(a->policy_name, b->policy_name));
    return a->allowed == b->allowed && a->gate == b->gate && a->level == b->level &&
           a->reply == b->reply && a->reason == b->reason && a->rule_id == b->rule_id && names;
}

static void check_row(const struct row *r)
{
    char what[512];
    struct policy_input in = input_of(r);
    struct model m = reference(r);
    struct policy_decision d = policy_decide(&in, NULL);

    struct policy_decision want = {.allowed = true,
                                   .gate = GATE_NONE,
                                   .level = LEVEL_NONE,
                                   .reply = REPLY_AUTH_OK,
                                   .reason = REPLY_AUTH_OK};
    if (m.n > 0) {
        want.allowed = false;
        want.gate = m.fails[0].gate;
        want.level = m.fails[0].level;
        want.reason = m.fails[0].reason;
        want.reply = r->generic ? generic_reply(want.reason) : want.reason;
        want.rule_id = m.fails[0].rule_id;
        want.policy_name = m.fails[0].policy_name;
    }
    if (!same_decision(&d, &want)) {
        describe_row(r, what, sizeof what);
        fail_msg("%s\n got: allowed=%d gate=%s level=%s reply=%d reason=%d rule=%lld\n"
                 "want: allowed=%d gate=%s level=%s reply=%d reason=%d rule=%lld",
                 what, d.allowed, policy_gate_name(d.gate), policy_level_name(d.level), d.reply,
                 d.reason, (long long)d.rule_id, want.allowed, policy_gate_name(want.gate),
                 policy_level_name(want.level), want.reply, want.reason, (long long)want.rule_id);
    }

    /* trace mode: the same decision, and every gate's outcome as the model lists it */
    struct gate_trace trace[GATE_COUNT];
    memset(trace, 0xA5, sizeof trace);
    struct policy_decision t = policy_decide(&in, trace);
    if (!same_decision(&t, &d)) {
        describe_row(r, what, sizeof what);
        fail_msg("trace mode changed the decision: %s", what);
    }
    bool oauth = r->kind == AUTH_KIND_OAUTH;
    for (int g = 0; g < GATE_COUNT; g++) {
        enum gate_outcome want_outcome = m.failing[g] ? GATE_FAIL : GATE_PASS;
        if (oauth &&
            (g == GATE_BASIC_POLICY || g == GATE_SECURITY_DEFAULTS || g == GATE_ACCESS_RULE))
            want_outcome = GATE_NOT_APPLICABLE;
        if (trace[g].outcome != want_outcome || trace[g].detail[0] == '\0' ||
            strnlen(trace[g].detail, sizeof trace[g].detail) == sizeof trace[g].detail) {
            describe_row(r, what, sizeof what);
            fail_msg("%s\ntrace[%s]: outcome %d, want %d (detail '%.200s')", what,
                     policy_gate_name((enum policy_gate)g), trace[g].outcome, want_outcome,
                     trace[g].detail);
        }
    }
    /* "lets a mailbox's app passwords ... through the basic-auth gates": the trace says so */
    if (r->kind == AUTH_KIND_APP_PASSWORD && r->app_passwords) {
        bool policy_blocks =
            r->mailbox_policy == 2 || (r->mailbox_policy == 0 && !r->tenant_policy_allows);
        if (policy_blocks)
            assert_int_equal(trace[GATE_BASIC_POLICY].level, LEVEL_APP_PASSWORD);
        if (r->security_defaults)
            assert_int_equal(trace[GATE_SECURITY_DEFAULTS].level, LEVEL_APP_PASSWORD);
    }
    if (!d.allowed)
        assert_int_equal(trace[d.gate].level, d.level);
}

static void test_every_combination(void **state)
{
    (void)state;
    init_nets();
    static const enum setting_switch switches[] = {SWITCH_ON, SWITCH_OFF, SWITCH_INHERIT};
    static const enum auth_kind kinds[] = {AUTH_KIND_PASSWORD, AUTH_KIND_APP_PASSWORD,
                                           AUTH_KIND_OAUTH};
    size_t rows = 0, allowed = 0;
    size_t by_gate[GATE_COUNT + 1] = {0};
    struct row r;
    for (int ts = 0; ts < 2; ts++)
        for (int ms = 0; ms < 3; ms++)
            for (int en = 0; en < 2; en++)
                for (int tp = 0; tp < 2; tp++)
                    for (int mp = 0; mp < 3; mp++)
                        for (int sd = 0; sd < 2; sd++)
                            for (int ap = 0; ap < 2; ap++)
                                for (int k = 0; k < 3; k++)
                                    for (int cv = 0; cv < 2; cv++)
                                        for (int tr = 0; tr < 3; tr++)
                                            for (int lo = 0; lo < 2; lo++)
                                                for (int rs = 0; rs < RULES_COUNT; rs++)
                                                    for (int ge = 0; ge < 2; ge++) {
                                                        r = (struct row){
                                                            .tenant_smtp_auth = ts,
                                                            .mailbox_smtp_auth = switches[ms],
                                                            .enabled = en,
                                                            .tenant_policy_allows = tp,
                                                            .mailbox_policy = mp,
                                                            .security_defaults = sd,
                                                            .app_passwords = ap,
                                                            .kind = kinds[k],
                                                            .credentials_valid = cv,
                                                            .transport = tr,
                                                            .locked_out = lo,
                                                            .rules = (enum rule_set)rs,
                                                            .generic = ge,
                                                        };
                                                        check_row(&r);
                                                        struct policy_input in = input_of(&r);
                                                        struct policy_decision d =
                                                            policy_decide(&in, NULL);
                                                        allowed += d.allowed;
                                                        by_gate[d.gate]++;
                                                        rows++;
                                                    }
    printf("test_policy: %zu rows of the settings table checked (%zu allowed)\n", rows, allowed);
    assert_int_equal(rows, 2 * 3 * 2 * 2 * 3 * 2 * 2 * 3 * 2 * 3 * 2 * RULES_COUNT * 2);
    /* the table exercises every gate as the deciding one, and success */
    for (int g = 0; g <= GATE_COUNT; g++)
        if (by_gate[g] == 0)
            fail_msg("no row decided by gate %s", policy_gate_name((enum policy_gate)g));
}

/* ---- hand-written rows, each citing SPEC --------------------------------------------------- */

/* Everything allows basic auth over TLS; tests change one thing at a time. */
static struct policy_input permissive(void)
{
    return (struct policy_input){
        .tls = true,
        .client_known = true,
        .client = ip("192.0.2.10"),
        .kind = AUTH_KIND_PASSWORD,
        .kind_known = true,
        .credentials_known = true,
        .credentials_valid = true,
        .tenant_smtp_auth = true,
        .tenant_security_defaults = false,
        .tenant_policy_name = "tenant-default",
        .tenant_policy_allows_basic = true,
        .mailbox_enabled = true,
        .mailbox_smtp_auth = SWITCH_INHERIT,
    };
}

static void expect(const struct policy_input *in, enum policy_gate gate, enum policy_level level,
                   enum reply_id reply)
{
    struct policy_decision d = policy_decide(in, NULL);
    if (d.gate != gate || d.level != level || d.reply != reply || d.allowed != (gate == GATE_NONE))
        fail_msg("got gate=%s level=%s reply=%d, want gate=%s level=%s reply=%d",
                 policy_gate_name(d.gate), policy_level_name(d.level), d.reply,
                 policy_gate_name(gate), policy_level_name(level), reply);
    struct gate_trace trace[GATE_COUNT];
    struct policy_decision t = policy_decide(in, trace);
    assert_true(same_decision(&d, &t));
}

static void test_spec_precedence(void **state)
{
    (void)state;
    struct policy_input in = permissive();
    /* "a mailbox `on` beats a tenant `off`" */
    in.tenant_smtp_auth = false;
    in.mailbox_smtp_auth = SWITCH_ON;
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    /* "and a mailbox `off` beats a tenant `on`" */
    in.tenant_smtp_auth = true;
    in.mailbox_smtp_auth = SWITCH_OFF;
    expect(&in, GATE_SMTP_AUTH, LEVEL_MAILBOX, REPLY_AUTH_DISABLED_MAILBOX);
    /* "else the tenant value" ... "(or `for the Tenant`, naming the level that decided)" */
    in.tenant_smtp_auth = false;
    in.mailbox_smtp_auth = SWITCH_INHERIT;
    expect(&in, GATE_SMTP_AUTH, LEVEL_TENANT, REPLY_AUTH_DISABLED_TENANT);

    /* "The effective authentication policy is the mailbox's unless `inherit`, else the tenant's
     * default." */
    in = permissive();
    in.tenant_policy_allows_basic = false;
    expect(&in, GATE_BASIC_POLICY, LEVEL_POLICY, REPLY_AUTH_BASIC_DISABLED);
    in.mailbox_policy_name = "printers";
    in.mailbox_policy_allows_basic = true;
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    in.tenant_policy_allows_basic = true;
    in.mailbox_policy_allows_basic = false;
    expect(&in, GATE_BASIC_POLICY, LEVEL_POLICY, REPLY_AUTH_BASIC_DISABLED);
    struct policy_decision d = policy_decide(&in, NULL);
    assert_string_equal(d.policy_name, "printers");
    in.mailbox_policy_name = NULL;
    in.tenant_policy_allows_basic = false;
    d = policy_decide(&in, NULL);
    assert_string_equal(d.policy_name, "tenant-default");
}

static void test_spec_oauth(void **state)
{
    (void)state;
    init_nets();
    struct policy_rule block_all = {.id = 9, .applies = true, .nets = everything, .n_nets = 1};
    /* "OAuth (XOAUTH2, OAUTHBEARER) is never blocked by them" (security defaults, policies,
     * access rules) */
    struct policy_input in = permissive();
    in.kind = AUTH_KIND_OAUTH;
    in.tenant_security_defaults = true;
    in.tenant_policy_allows_basic = false;
    in.mailbox_policy_name = "block-basic";
    in.rules = &block_all;
    in.n_rules = 1;
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    /* "The SMTP AUTH switch gates the protocol itself: it blocks OAuth as well as passwords." */
    in.tenant_smtp_auth = false;
    expect(&in, GATE_SMTP_AUTH, LEVEL_TENANT, REPLY_AUTH_DISABLED_TENANT);
    /* "OAuth ...: 1, then token valid ... (else 535 5.7.3), then 3, then 4" */
    in.credentials_valid = false;
    expect(&in, GATE_CREDENTIALS, LEVEL_MAILBOX, REPLY_AUTH_FAILED);
    in.credentials_valid = true;
    in.tenant_smtp_auth = true;
    in.mailbox_enabled = false;
    expect(&in, GATE_ACCOUNT_ENABLED, LEVEL_MAILBOX, REPLY_AUTH_ACCOUNT_DISABLED);
    in.tls = false;
    expect(&in, GATE_TLS, LEVEL_LISTENER, REPLY_AUTH_ENCRYPTION_REQUIRED);
}

static void test_spec_app_passwords(void **state)
{
    (void)state;
    init_nets();
    struct policy_rule block_all = {.id = 4, .applies = true, .nets = everything, .n_nets = 1};
    /* "App passwords are basic authentication that security defaults and policies still
     * block" */
    struct policy_input in = permissive();
    in.kind = AUTH_KIND_APP_PASSWORD;
    in.tenant_policy_allows_basic = false;
    expect(&in, GATE_BASIC_POLICY, LEVEL_POLICY, REPLY_AUTH_BASIC_DISABLED);
    in.tenant_policy_allows_basic = true;
    in.tenant_security_defaults = true;
    expect(&in, GATE_SECURITY_DEFAULTS, LEVEL_TENANT, REPLY_AUTH_SECURITY_DEFAULTS);
    /* "unless the tenant has turned app-passwords on, which lets a mailbox's app passwords ...
     * through the basic-auth gates (security defaults and policies)" */
    in.tenant_app_passwords = true;
    in.tenant_policy_allows_basic = false;
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    struct gate_trace trace[GATE_COUNT];
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_BASIC_POLICY].outcome, GATE_PASS);
    assert_int_equal(trace[GATE_BASIC_POLICY].level, LEVEL_APP_PASSWORD);
    assert_int_equal(trace[GATE_SECURITY_DEFAULTS].outcome, GATE_PASS);
    assert_int_equal(trace[GATE_SECURITY_DEFAULTS].level, LEVEL_APP_PASSWORD);
    /* "(never its main password)" */
    in.kind = AUTH_KIND_PASSWORD;
    expect(&in, GATE_BASIC_POLICY, LEVEL_POLICY, REPLY_AUTH_BASIC_DISABLED);
    /* "app passwords never bypass the SMTP AUTH switch or the access rules" */
    in.kind = AUTH_KIND_APP_PASSWORD;
    in.rules = &block_all;
    in.n_rules = 1;
    expect(&in, GATE_ACCESS_RULE, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE);
    assert_int_equal(policy_decide(&in, NULL).rule_id, 4);
    in.mailbox_smtp_auth = SWITCH_OFF;
    expect(&in, GATE_SMTP_AUTH, LEVEL_MAILBOX, REPLY_AUTH_DISABLED_MAILBOX);
}

static void test_spec_order(void **state)
{
    (void)state;
    /* "nothing about a mailbox is revealed to a client that has not proved it owns it": a wrong
     * password on a disabled mailbox with SMTP AUTH off gets 535 5.7.3 */
    struct policy_input in = permissive();
    in.credentials_valid = false;
    in.mailbox_enabled = false;
    in.mailbox_smtp_auth = SWITCH_OFF;
    in.tenant_security_defaults = true;
    expect(&in, GATE_CREDENTIALS, LEVEL_MAILBOX, REPLY_AUTH_FAILED);
    /* "Account lockout ... is decided before step 2 and answers like step 2" */
    in.locked_out = true;
    in.credentials_valid = true;
    expect(&in, GATE_LOCKOUT, LEVEL_MAILBOX, REPLY_AUTH_FAILED);
    /* "1. connection is TLS ...: else AUTH is not offered and 538 5.7.11" comes first */
    in.tls = false;
    expect(&in, GATE_TLS, LEVEL_LISTENER, REPLY_AUTH_ENCRYPTION_REQUIRED);
    /* "(or the listener explicitly allows cleartext AUTH)" */
    in.cleartext_auth_allowed = true;
    expect(&in, GATE_LOCKOUT, LEVEL_MAILBOX, REPLY_AUTH_FAILED);
    /* 3 before 4 before 5 before 6 before 7 */
    in = permissive();
    in.mailbox_enabled = false;
    in.mailbox_smtp_auth = SWITCH_OFF;
    in.tenant_policy_allows_basic = false;
    in.tenant_security_defaults = true;
    expect(&in, GATE_ACCOUNT_ENABLED, LEVEL_MAILBOX, REPLY_AUTH_ACCOUNT_DISABLED);
    in.mailbox_enabled = true;
    expect(&in, GATE_SMTP_AUTH, LEVEL_MAILBOX, REPLY_AUTH_DISABLED_MAILBOX);
    in.mailbox_smtp_auth = SWITCH_ON;
    expect(&in, GATE_BASIC_POLICY, LEVEL_POLICY, REPLY_AUTH_BASIC_DISABLED);
    in.tenant_policy_allows_basic = true;
    expect(&in, GATE_SECURITY_DEFAULTS, LEVEL_TENANT, REPLY_AUTH_SECURITY_DEFAULTS);
}

static void test_spec_generic(void **state)
{
    (void)state;
    /* "A tenant may set reply-detail generic, which turns every 535 into 535 5.7.3
     * Authentication unsuccessful for clients (the sign-in log keeps the real reason)." */
    struct policy_input in = permissive();
    in.reply_generic = true;
    in.tenant_security_defaults = true;
    struct policy_decision d = policy_decide(&in, NULL);
    assert_int_equal(d.reply, REPLY_AUTH_FAILED);
    assert_int_equal(d.reason, REPLY_AUTH_SECURITY_DEFAULTS);
    assert_int_equal(d.gate, GATE_SECURITY_DEFAULTS);
    in.mailbox_smtp_auth = SWITCH_OFF;
    d = policy_decide(&in, NULL);
    assert_int_equal(d.reply, REPLY_AUTH_FAILED);
    assert_int_equal(d.reason, REPLY_AUTH_DISABLED_MAILBOX);
    /* 538 is not a 535: unchanged */
    in.tls = false;
    d = policy_decide(&in, NULL);
    assert_int_equal(d.reply, REPLY_AUTH_ENCRYPTION_REQUIRED);
    assert_int_equal(d.reason, REPLY_AUTH_ENCRYPTION_REQUIRED);
    /* success is success */
    in = permissive();
    in.reply_generic = true;
    d = policy_decide(&in, NULL);
    assert_true(d.allowed);
    assert_int_equal(d.reply, REPLY_AUTH_OK);
    /* without generic the client sees the real reason */
    in.mailbox_enabled = false;
    in.reply_generic = false;
    d = policy_decide(&in, NULL);
    assert_int_equal(d.reply, REPLY_AUTH_ACCOUNT_DISABLED);
    assert_int_equal(reply_catalogue[d.reply].code, 535);
    assert_string_equal(reply_catalogue[d.reply].enhanced, "5.7.139");
}

/* ---- access rules in detail ---------------------------------------------------------------- */

static void test_rules(void **state)
{
    (void)state;
    struct netmask v4[2] = {net("192.0.2.0/24"), net("203.0.113.0/24")};
    struct netmask v6[1] = {net("2001:db8::/32")};
    struct policy_rule rules[3] = {
        {.id = 10, .allow = false, .outside = true, .applies = true, .nets = v4, .n_nets = 2},
    };
    struct policy_input in = permissive();
    in.rules = rules;
    in.n_rules = 1;
    /* "block basic auth for clients whose IP is (not) in a list of networks" */
    in.client = ip("203.0.113.7"); /* in the second network: not outside */
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    in.client = ip("::ffff:192.0.2.1"); /* mapped IPv4 is the IPv4 client */
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    in.client = ip("2001:db8::1"); /* an IPv6 client is outside IPv4 networks */
    expect(&in, GATE_ACCESS_RULE, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE);
    /* a raw mapped address (from a dual-stack socket) is matched as IPv4 as well */
    in.client = (struct netaddr){.family = AF_INET6};
    in.client.bytes[10] = in.client.bytes[11] = 0xff;
    memcpy(in.client.bytes + 12, "\xc0\x00\x02\x05", 4);
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);

    /* "the first that matches decides": an allow rule for IPv6 before a block-everything rule */
    rules[0] =
        (struct policy_rule){.id = 1, .allow = true, .applies = true, .nets = v6, .n_nets = 1};
    rules[1] = (struct policy_rule){.id = 2, .outside = true, .applies = true};
    in.n_rules = 2;
    in.client = ip("2001:db8:1::5");
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    struct gate_trace trace[GATE_COUNT];
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_PASS);
    assert_int_equal(trace[GATE_ACCESS_RULE].level, LEVEL_RULE);
    assert_int_equal(trace[GATE_ACCESS_RULE].rule_id, 1);
    in.client = ip("192.0.2.1");
    expect(&in, GATE_ACCESS_RULE, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE);
    assert_int_equal(policy_decide(&in, NULL).rule_id, 2);
    /* "for all or listed mailboxes": a rule not covering this mailbox is skipped */
    rules[1].applies = false;
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].level, LEVEL_TENANT);
    assert_int_equal(trace[GATE_ACCESS_RULE].rule_id, 0);
}

/* ---- trace and unknown inputs (explain) ---------------------------------------------------- */

static void test_trace_details(void **state)
{
    (void)state;
    struct policy_input in = permissive();
    in.tenant_smtp_auth = false;
    in.tls = false;
    in.tenant_security_defaults = true;
    struct gate_trace trace[GATE_COUNT];
    struct policy_decision d = policy_decide(&in, trace);
    assert_int_equal(d.gate, GATE_TLS);
    /* every gate is evaluated, not only up to the first failure */
    assert_int_equal(trace[GATE_SMTP_AUTH].outcome, GATE_FAIL);
    assert_int_equal(trace[GATE_SMTP_AUTH].level, LEVEL_TENANT);
    assert_string_equal(trace[GATE_SMTP_AUTH].detail,
                        "tenant smtp-auth=off, mailbox smtp-auth=inherit -> off (decided by "
                        "tenant)");
    assert_int_equal(trace[GATE_SECURITY_DEFAULTS].outcome, GATE_FAIL);
    assert_string_equal(trace[GATE_SECURITY_DEFAULTS].detail, "tenant security-defaults=on");
    assert_int_equal(trace[GATE_TLS].outcome, GATE_FAIL);
    assert_int_equal(trace[GATE_TLS].level, LEVEL_LISTENER);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_PASS);

    in.mailbox_smtp_auth = SWITCH_ON;
    policy_decide(&in, trace);
    assert_string_equal(trace[GATE_SMTP_AUTH].detail,
                        "tenant smtp-auth=off, mailbox smtp-auth=on -> on (decided by mailbox)");
    assert_int_equal(trace[GATE_SMTP_AUTH].outcome, GATE_PASS);
    assert_int_equal(trace[GATE_SMTP_AUTH].level, LEVEL_MAILBOX);

    /* the policy gate names the policy */
    in.mailbox_policy_name = "legacy-printers";
    in.mailbox_policy_allows_basic = true;
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_BASIC_POLICY].level, LEVEL_POLICY);
    assert_string_equal(trace[GATE_BASIC_POLICY].policy_name, "legacy-printers");
    assert_non_null(strstr(trace[GATE_BASIC_POLICY].detail, "'legacy-printers'"));
    assert_non_null(strstr(trace[GATE_BASIC_POLICY].detail, "allow-basic-smtp=yes"));

    /* a long policy name is cut, never overflowing the detail */
    char longname[POLICY_NAME_MAX * 4];
    memset(longname, 'p', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    in.mailbox_policy_name = longname;
    policy_decide(&in, trace);
    assert_int_equal(strlen(trace[GATE_BASIC_POLICY].detail), sizeof trace[0].detail - 1);

    /* OAuth: the basic-auth gates are not applicable */
    in = permissive();
    in.kind = AUTH_KIND_OAUTH;
    policy_decide(&in, trace);
    for (int g = GATE_BASIC_POLICY; g <= GATE_ACCESS_RULE; g++) {
        assert_int_equal(trace[g].outcome, GATE_NOT_APPLICABLE);
        assert_non_null(strstr(trace[g].detail, "not applicable"));
    }
}

static void test_unknown_inputs(void **state)
{
    (void)state;
    /* explain without a secret: credentials UNKNOWN, which does not fail the decision */
    struct policy_input in = permissive();
    in.credentials_known = false;
    in.credentials_valid = false;
    struct gate_trace trace[GATE_COUNT];
    struct policy_decision d = policy_decide(&in, trace);
    assert_true(d.allowed);
    assert_int_equal(trace[GATE_CREDENTIALS].outcome, GATE_UNKNOWN);
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
    in.tenant_security_defaults = true;
    expect(&in, GATE_SECURITY_DEFAULTS, LEVEL_TENANT, REPLY_AUTH_SECURITY_DEFAULTS);

    /* explain without --ip: the access-rule gate depends on the rules */
    struct netmask nets[1] = {net("192.0.2.0/24")};
    struct policy_rule rules[3];
    in = permissive();
    in.client_known = false;
    in.client = (struct netaddr){0};
    in.rules = rules;

    in.n_rules = 0; /* no rules: PASS */
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_PASS);

    /* a block rule that covers another mailbox only: PASS */
    rules[0] = (struct policy_rule){.id = 1, .applies = false, .nets = nets, .n_nets = 1};
    in.n_rules = 1;
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_PASS);

    /* an applicable block rule that could match: UNKNOWN, and the decision does not fail */
    rules[0].applies = true;
    d = policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_UNKNOWN);
    assert_int_equal(trace[GATE_ACCESS_RULE].rule_id, 1);
    assert_non_null(strstr(trace[GATE_ACCESS_RULE].detail, "unknown"));
    assert_true(d.allowed);
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);

    /* allow rules only: whatever the client, it passes */
    rules[0].allow = true;
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_PASS);

    /* an allow rule that may match, then a block rule that certainly does: UNKNOWN */
    rules[1] = (struct policy_rule){.id = 2, .outside = true, .applies = true};
    in.n_rules = 2;
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_UNKNOWN);

    /* a rule blocking everyone (outside an empty list) blocks whatever the client: FAIL */
    rules[0] = rules[1];
    in.n_rules = 1;
    expect(&in, GATE_ACCESS_RULE, LEVEL_RULE, REPLY_AUTH_ACCESS_RULE);

    /* a rule inside an empty list never matches: PASS */
    rules[0].outside = false;
    policy_decide(&in, trace);
    assert_int_equal(trace[GATE_ACCESS_RULE].outcome, GATE_PASS);

    /* kind unknown: judged as the main password, noting what an app password would do */
    in = permissive();
    in.kind_known = false;
    in.kind = AUTH_KIND_APP_PASSWORD;
    in.tenant_app_passwords = true;
    in.tenant_policy_allows_basic = false;
    in.tenant_security_defaults = true;
    d = policy_decide(&in, trace);
    assert_int_equal(d.gate, GATE_BASIC_POLICY);
    assert_int_equal(trace[GATE_BASIC_POLICY].outcome, GATE_FAIL);
    assert_non_null(strstr(trace[GATE_BASIC_POLICY].detail, "an app password would pass"));
    assert_int_equal(trace[GATE_SECURITY_DEFAULTS].outcome, GATE_FAIL);
    assert_non_null(strstr(trace[GATE_SECURITY_DEFAULTS].detail, "an app password would pass"));
    in.tenant_app_passwords = false;
    policy_decide(&in, trace);
    assert_non_null(strstr(trace[GATE_BASIC_POLICY].detail, "an app password would fail too"));
    /* an unknown kind with an OAuth mechanism is still OAuth */
    in.kind = AUTH_KIND_OAUTH;
    expect(&in, GATE_NONE, LEVEL_NONE, REPLY_AUTH_OK);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const gates[] = {
        "tls",       "lockout",           "credentials",       "account-enabled",
        "smtp-auth", "basic-auth-policy", "security-defaults", "access-rule",
        "none"};
    for (int g = 0; g <= GATE_COUNT; g++)
        assert_string_equal(policy_gate_name((enum policy_gate)g), gates[g]);
    assert_string_equal(policy_gate_name((enum policy_gate)99), "?");
    static const char *const levels[] = {"none",   "listener", "tenant",      "mailbox",
                                         "policy", "rule",     "app-password"};
    for (int l = 0; l <= LEVEL_APP_PASSWORD; l++)
        assert_string_equal(policy_level_name((enum policy_level)l), levels[l]);
    assert_string_equal(policy_level_name((enum policy_level)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_combination),
        cmocka_unit_test(test_spec_precedence),
        cmocka_unit_test(test_spec_oauth),
        cmocka_unit_test(test_spec_app_passwords),
        cmocka_unit_test(test_spec_order),
        cmocka_unit_test(test_spec_generic),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_trace_details),
        cmocka_unit_test(test_unknown_inputs),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
