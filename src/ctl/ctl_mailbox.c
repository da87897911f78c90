/* ctl_mailbox.c: `submitctl mailbox ...`: add and passwd (password from standard input, hashed
 * with argon2id, never printed or stored in clear), remove, set (smtp-auth, policy, enabled, the
 * submission limits of SPEC section 4), list, and show, which displays every setting with its
 * precedence (SPEC sections 2 and 8): the tenant value, the mailbox value, the effective value
 * and the level that decided it; and the mailbox's aliases, send-as and access grants and app
 * passwords. The grant commands are in ctl_grant.c. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "ctl.h"

static int check_address(const struct ctl *c, const char *address)
{
    if (!ctl_valid_address(address))
        return ctl_usage(c, "not a valid address: %s", address);
    return 0;
}

/* Opens the directory and reads the auth view of an address; the mailbox must exist unless
 * `want_missing` (then it must not). */
static int load_view(struct ctl *c, const char *address, struct dir_auth_view *v, bool want_missing)
{
    int rc = check_address(c, address);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    if ((rc = ctl_dir_status(c, dir_auth_view(c->dir, address, v), address)) != 0)
        return rc;
    const char *domain = strrchr(address, '@') + 1;
    if (!v->tenant_found)
        return ctl_fail(c, "%s is not an accepted domain of any tenant (submitctl tenant add %s)",
                        domain, domain);
    if (want_missing && v->mailbox_found)
        return ctl_fail(c, "mailbox %s already exists", address);
    if (!want_missing && !v->mailbox_found)
        return ctl_fail(c, "no such mailbox: %s", address);
    return 0;
}

/* Reads, hashes and wipes a new password. */
static int new_password_hash(const struct ctl *c, char hash[PASSWORD_HASH_MAX + 1])
{
    char pw[PASSWORD_MAX + 1];
    size_t len = 0;
    int rc = ctl_read_password(c, pw, &len);
    if (rc != 0)
        return rc;
    /* Hash at the cost the server is configured for (auth-memlimit): the server verifies
     * unknown users against a dummy hash of that cost, so equal cost means equal work. */
    struct config cfg;
    char err[512];
    if (config_load(c->datadir, &cfg, err, sizeof err) != 0)
        rc = ctl_fail(c, "%s", err);
    else if (password_init(cfg.auth_memlimit) != 0)
        rc = ctl_fail(c, "cannot initialise password hashing (libsodium)");
    else if (password_hash((const uint8_t *)pw, len, hash) != 0)
        rc = ctl_fail(c, "cannot hash the password: out of memory");
    sodium_memzero(pw, sizeof pw);
    return rc;
}

static int mailbox_add(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    struct dir_auth_view v;
    char hash[PASSWORD_HASH_MAX + 1];
    int rc = load_view(c, pos[0], &v, true);
    if (rc == 0)
        rc = new_password_hash(c, hash);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    rc = ctl_dir_status(c, dir_mailbox_add(c->dir, pos[0], hash), what);
    sodium_memzero(hash, sizeof hash);
    if (rc == 0)
        printf("mailbox %s added (tenant %s; smtp-auth inherit, policy inherit)\n", pos[0],
               v.tenant.domain);
    return rc;
}

static int mailbox_passwd(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    struct dir_auth_view v;
    char hash[PASSWORD_HASH_MAX + 1];
    int rc = load_view(c, pos[0], &v, false);
    if (rc == 0)
        rc = new_password_hash(c, hash);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    rc = ctl_dir_status(c, dir_mailbox_set_password(c->dir, pos[0], hash), what);
    sodium_memzero(hash, sizeof hash);
    if (rc == 0)
        printf("mailbox %s: password changed\n", v.mailbox.address);
    return rc;
}

static int mailbox_remove(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_address(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    rc = ctl_dir_status(c, dir_mailbox_remove(c->dir, pos[0]), what);
    if (rc == 0)
        printf("mailbox %s removed\n", pos[0]);
    return rc;
}

/* Settings `mailbox set` knows and the values each accepts (NULL: see `kind`). */
enum mailbox_value { VALUE_CHOICE, VALUE_POLICY, VALUE_LIMIT };
static const struct {
    const char *key;
    enum mailbox_value kind;
    const char *values[4];
    const char *must;
} mailbox_keys[] = {
    {"smtp-auth", VALUE_CHOICE, {"on", "off", "inherit", NULL}, "on, off or inherit"},
    {"policy", VALUE_POLICY, {NULL}, "a policy name or inherit"},
    {"enabled", VALUE_CHOICE, {"yes", "no", NULL}, "yes or no"},
    {"max-sessions", VALUE_LIMIT, {NULL}, "a number from 1 to 1000000, or inherit"},
    {"messages-per-minute", VALUE_LIMIT, {NULL}, "a number from 1 to 1000000, or inherit"},
    {"recipients-per-day", VALUE_LIMIT, {NULL}, "a number from 1 to 1000000, or inherit"},
    {"recipients-per-message", VALUE_LIMIT, {NULL}, "a number from 1 to 1000000, or inherit"},
};
#define N_MAILBOX_KEYS (sizeof mailbox_keys / sizeof mailbox_keys[0])

static int mailbox_set(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    const char *key = pos[1], *value = pos[2];
    size_t k = 0;
    while (k < N_MAILBOX_KEYS && strcmp(mailbox_keys[k].key, key) != 0)
        k++;
    if (k == N_MAILBOX_KEYS)
        return ctl_usage(c,
                         "unknown setting %s (smtp-auth, policy, enabled, max-sessions, "
                         "messages-per-minute, recipients-per-day, recipients-per-message)",
                         key);
    bool ok = false;
    long n;
    switch (mailbox_keys[k].kind) {
    case VALUE_CHOICE:
        for (size_t i = 0; i < 4 && mailbox_keys[k].values[i] != NULL; i++)
            ok = ok || strcmp(mailbox_keys[k].values[i], value) == 0;
        break;
    case VALUE_POLICY:
        ok = strcmp(value, "inherit") == 0 || ctl_valid_policy_name(value);
        break;
    case VALUE_LIMIT:
        ok = strcmp(value, "inherit") == 0 || ctl_parse_int(value, 1, CTL_LIMIT_MAX, &n);
        break;
    }
    if (!ok)
        return ctl_usage(c, "value must be %s", mailbox_keys[k].must);
    int rc = check_address(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    rc = ctl_dir_status(c, dir_mailbox_set(c->dir, pos[0], key, value), what);
    if (rc == 0)
        printf("mailbox %s: %s = %s\n", pos[0], key, value);
    return rc;
}

struct alias_rows {
    json_t *arr;
    char text[2048];
};

static void collect_alias(const char *alias, void *arg)
{
    struct alias_rows *rows = arg;
    json_array_append_new(rows->arr, json_string(alias));
    size_t used = strlen(rows->text);
    snprintf(rows->text + used, sizeof rows->text - used, "%s%s", used ? ", " : "", alias);
}

/* The effective values of a mailbox and the level that decided each (SPEC section 2). */
struct effective {
    bool smtp_auth;
    const char *smtp_auth_by; /* "mailbox" / "tenant" */
    const struct dir_policy *policy;
    const char *policy_by; /* "mailbox" / "tenant default" */
};

static struct effective effective_of(const struct dir_auth_view *v)
{
    struct effective e;
    bool by_mailbox = v->mailbox.smtp_auth != SWITCH_INHERIT;
    e.smtp_auth = by_mailbox ? v->mailbox.smtp_auth == SWITCH_ON : v->tenant.smtp_auth;
    e.smtp_auth_by = by_mailbox ? "mailbox" : "tenant";
    e.policy = v->mailbox_policy_inherit ? &v->tenant_policy : &v->mailbox_policy;
    e.policy_by = v->mailbox_policy_inherit ? "tenant" : "mailbox";
    return e;
}

/* What `mailbox show` lists besides the settings. */
struct mailbox_lists {
    struct alias_rows aliases, send_as, access;
    size_t app_passwords;
    struct dir_limits limits; /* effective */
};

static void count_app_password(const struct dir_app_password *p, void *arg)
{
    (void)p;
    (*(size_t *)arg)++;
}

static int read_lists(struct ctl *c, const struct dir_auth_view *v, struct mailbox_lists *l)
{
    const char *a = v->mailbox.address;
    memset(l, 0, sizeof *l);
    l->aliases.arr = json_array();
    l->send_as.arr = json_array();
    l->access.arr = json_array();
    dir_effective_limits(v, &l->limits);
    enum dir_status st = dir_alias_list(c->dir, a, collect_alias, &l->aliases);
    if (st == DIR_OK)
        st = dir_send_as_list(c->dir, a, collect_alias, &l->send_as);
    if (st == DIR_OK)
        st = dir_access_list(c->dir, a, collect_alias, &l->access);
    if (st == DIR_OK)
        st = dir_app_password_list(c->dir, a, count_app_password, &l->app_passwords);
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", a);
    return ctl_dir_status(c, st, what);
}

static void free_lists(struct mailbox_lists *l)
{
    json_decref(l->aliases.arr);
    json_decref(l->send_as.arr);
    json_decref(l->access.arr);
}

/* {"max_sessions": {"tenant": 3, "mailbox": "inherit"|N, "effective": 3, "decided_by": ...}} */
static json_t *limits_json(const struct dir_auth_view *v, const struct dir_limits *eff)
{
    json_t *j = json_object();
    for (size_t i = 0; i < CTL_LIMITS; i++) {
        unsigned own = ctl_limit_get(&v->mailbox.limits, i);
        json_object_set_new(j, ctl_limit_keys[i].json,
                            json_pack("{s:I, s:o, s:I, s:s}", "tenant",
                                      (json_int_t)ctl_limit_get(&v->tenant.limits, i), "mailbox",
                                      own ? json_integer((json_int_t)own) : json_string("inherit"),
                                      "effective", (json_int_t)ctl_limit_get(eff, i), "decided_by",
                                      own ? "mailbox" : "tenant"));
    }
    return j;
}

static int show_json(const struct dir_auth_view *v, const struct effective *e,
                     struct mailbox_lists *l)
{
    const struct dir_mailbox *m = &v->mailbox;
    char created[40], changed[40];
    ctl_time_s(m->created, created, sizeof created);
    ctl_time_s(m->password_changed, changed, sizeof changed);
    json_t *j = json_pack(
        "{s:s, s:s, s:b, s:b, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:b},"
        " s:s, s:s, s:s, s:O, s:s}",
        "address", m->address, "tenant", v->tenant.domain, "enabled", m->enabled, "password_set",
        m->password_hash[0] != '\0', "smtp_auth", "tenant", ctl_onoff(v->tenant.smtp_auth),
        "mailbox", ctl_switch_name(m->smtp_auth), "effective", ctl_onoff(e->smtp_auth),
        "decided_by", e->smtp_auth_by, "policy", "tenant_default", v->tenant_policy.name, "mailbox",
        v->mailbox_policy_inherit ? "inherit" : v->mailbox_policy.name, "effective",
        e->policy->name, "decided_by", e->policy_by, "allows_basic_smtp",
        e->policy->allow_basic_smtp, "security_defaults", ctl_onoff(v->tenant.security_defaults),
        "app_passwords", ctl_onoff(v->tenant.app_passwords), "reply_detail",
        v->tenant.reply_detail == REPLY_DETAIL_GENERIC ? "generic" : "full", "aliases",
        l->aliases.arr, "created", created);
    if (j != NULL && m->password_hash[0] != '\0')
        json_object_set_new(j, "password_changed", json_string(changed));
    if (j != NULL) {
        json_object_set(j, "send_as", l->send_as.arr);
        json_object_set(j, "access", l->access.arr);
        json_object_set_new(j, "app_password_count", json_integer((json_int_t)l->app_passwords));
        json_object_set_new(j, "limits", limits_json(v, &l->limits));
    }
    return ctl_json_print(j);
}

static void show_limits(const struct dir_auth_view *v, const struct dir_limits *eff)
{
    printf("limits (effective, and where each comes from)\n");
    for (size_t i = 0; i < CTL_LIMITS; i++) {
        unsigned own = ctl_limit_get(&v->mailbox.limits, i);
        char from[64];
        if (own)
            snprintf(from, sizeof from, "mailbox; tenant %u", ctl_limit_get(&v->tenant.limits, i));
        else
            snprintf(from, sizeof from, "tenant");
        printf("  %-24s%u (%s)\n", ctl_limit_keys[i].key, ctl_limit_get(eff, i), from);
    }
}

static int mailbox_show(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    static struct dir_auth_view v; /* large (every access rule); one per process */
    int rc = load_view(c, pos[0], &v, false);
    if (rc != 0)
        return rc;
    const struct dir_mailbox *m = &v.mailbox;
    static struct mailbox_lists l; /* three 2 KiB texts */
    rc = read_lists(c, &v, &l);
    if (rc != 0) {
        free_lists(&l);
        return rc;
    }
    struct effective e = effective_of(&v);
    if (c->json) {
        rc = show_json(&v, &e, &l);
        free_lists(&l);
        return rc;
    }
    free_lists(&l);
    char created[40], changed[40];
    ctl_time_s(m->created, created, sizeof created);
    ctl_time_s(m->password_changed, changed, sizeof changed);
    printf("mailbox             %s\n", m->address);
    printf("tenant              %s\n", v.tenant.domain);
    printf("enabled             %s\n", ctl_yesno(m->enabled));
    if (m->password_hash[0] != '\0')
        printf("password            set (changed %s)\n", changed);
    else
        printf("password            not set (every basic AUTH fails: submitctl mailbox passwd "
               "%s)\n",
               m->address);
    printf("smtp-auth\n");
    printf("  tenant            %s\n", ctl_onoff(v.tenant.smtp_auth));
    printf("  mailbox           %s\n", ctl_switch_name(m->smtp_auth));
    printf("  effective         %s (decided by the %s setting)\n", ctl_onoff(e.smtp_auth),
           e.smtp_auth_by);
    printf("policy\n");
    printf("  tenant default    %s (%s basic SMTP)\n", v.tenant_policy.name,
           v.tenant_policy.allow_basic_smtp ? "allows" : "blocks");
    if (v.mailbox_policy_inherit)
        printf("  mailbox           inherit\n");
    else
        printf("  mailbox           %s (%s basic SMTP)\n", v.mailbox_policy.name,
               v.mailbox_policy.allow_basic_smtp ? "allows" : "blocks");
    printf("  effective         %s (decided by the %s): basic SMTP %s\n", e.policy->name,
           v.mailbox_policy_inherit ? "tenant default" : "mailbox setting",
           e.policy->allow_basic_smtp ? "allowed" : "blocked");
    printf("security-defaults   %s (tenant)%s\n", ctl_onoff(v.tenant.security_defaults),
           v.tenant.security_defaults ? ": basic SMTP blocked" : "");
    printf("app-passwords       %s (tenant), %zu app password%s (submitctl app-password list "
           "%s)\n",
           ctl_onoff(v.tenant.app_passwords), l.app_passwords, l.app_passwords == 1 ? "" : "s",
           m->address);
    printf("reply-detail        %s (tenant)\n",
           v.tenant.reply_detail == REPLY_DETAIL_GENERIC ? "generic" : "full");
    printf("aliases             %s\n", l.aliases.text[0] ? l.aliases.text : "(none)");
    printf("send-as grants      %s\n", l.send_as.text[0] ? l.send_as.text : "(none)");
    printf("access grants       %s\n", l.access.text[0] ? l.access.text : "(none)");
    show_limits(&v, &l.limits);
    printf("created             %s\n", created);
    return CTL_EXIT_OK;
}

static void list_mailbox(const struct dir_mailbox *m, void *arg)
{
    json_t *arr = arg;
    const char *policy = m->policy[0] ? m->policy : "inherit";
    if (arr != NULL) {
        json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s, s:b}", "address", m->address,
                                             "enabled", m->enabled, "smtp_auth",
                                             ctl_switch_name(m->smtp_auth), "policy", policy,
                                             "password_set", m->password_hash[0] != '\0'));
        return;
    }
    printf("%-40s %-7s %-9s %-16s %s\n", m->address, ctl_yesno(m->enabled),
           ctl_switch_name(m->smtp_auth), policy, m->password_hash[0] ? "set" : "not set");
}

enum { MAILBOX_OPT_TENANT };
static const struct ctl_opt mailbox_list_opts[] = {{"--tenant", true}, {NULL, false}};

static int mailbox_list(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    const char *tenant = c->opt[MAILBOX_OPT_TENANT];
    if (tenant != NULL && !ctl_valid_domain(tenant))
        return ctl_usage(c, "not a valid domain: %s", tenant);
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    if (tenant != NULL) {
        struct dir_tenant t;
        char what[300];
        snprintf(what, sizeof what, "tenant %s", tenant);
        if ((rc = ctl_dir_status(c, dir_tenant_get(c->dir, tenant, &t), what)) != 0)
            return rc;
    }
    json_t *arr = c->json ? json_array() : NULL;
    if (!c->json)
        printf("%-40s %-7s %-9s %-16s %s\n", "ADDRESS", "ENABLED", "SMTP-AUTH", "POLICY",
               "PASSWORD");
    rc = ctl_dir_status(c, dir_mailbox_list(c->dir, tenant, list_mailbox, arr), "mailboxes");
    if (c->json)
        return rc == 0 ? ctl_json_print(arr) : (json_decref(arr), rc);
    return rc;
}

const struct ctl_command ctl_mailbox_commands[] = {
    {"mailbox", "add", "ADDRESS",
     "add a mailbox; its password is read from standard input (asked twice on a terminal)", 1, 1,
     CTL_WRITES, NULL, mailbox_add},
    {"mailbox", "passwd", "ADDRESS", "set a new password (read like mailbox add)", 1, 1, CTL_WRITES,
     NULL, mailbox_passwd},
    {"mailbox", "remove", "ADDRESS", "remove a mailbox and its aliases", 1, 1, CTL_WRITES, NULL,
     mailbox_remove},
    {"mailbox", "set", "ADDRESS KEY VALUE",
     "smtp-auth on|off|inherit, policy NAME|inherit, enabled yes|no, max-sessions N|inherit, "
     "messages-per-minute N|inherit, recipients-per-day N|inherit, recipients-per-message "
     "N|inherit",
     3, 3, CTL_WRITES, NULL, mailbox_set},
    {"mailbox", "show", "ADDRESS",
     "every setting: tenant value, mailbox value, effective value and who decided it; aliases, "
     "grants, app passwords, limits",
     1, 1, CTL_JSON, NULL, mailbox_show},
    {"mailbox", "list", "[--tenant DOMAIN]", "mailboxes (of one tenant)", 0, 0, CTL_JSON,
     mailbox_list_opts, mailbox_list},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
