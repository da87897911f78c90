/* ctl_mailbox.c: `submitctl mailbox ...`: add and passwd (password from standard input, hashed
 * with argon2id, never printed or stored in clear), remove, set (smtp-auth, policy, enabled),
 * list, and show, which displays every setting with its precedence (SPEC sections 2 and 8): the
 * tenant value, the mailbox value, the effective value and the level that decided it. */
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

static int mailbox_set(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    const char *key = pos[1], *value = pos[2];
    if (strcmp(key, "smtp-auth") == 0) {
        if (strcmp(value, "on") && strcmp(value, "off") && strcmp(value, "inherit"))
            return ctl_usage(c, "value must be on, off or inherit");
    } else if (strcmp(key, "policy") == 0) {
        if (strcmp(value, "inherit") != 0 && !ctl_valid_policy_name(value))
            return ctl_usage(c, "value must be a policy name or inherit");
    } else if (strcmp(key, "enabled") == 0) {
        if (strcmp(value, "yes") && strcmp(value, "no"))
            return ctl_usage(c, "value must be yes or no");
    } else {
        return ctl_usage(c, "unknown setting %s (smtp-auth, policy, enabled)", key);
    }
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

static int show_json(const struct dir_auth_view *v, const struct effective *e,
                     struct alias_rows *aliases)
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
        aliases->arr, "created", created);
    if (j != NULL && m->password_hash[0] != '\0')
        json_object_set_new(j, "password_changed", json_string(changed));
    return ctl_json_print(j);
}

static int mailbox_show(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    struct dir_auth_view v;
    int rc = load_view(c, pos[0], &v, false);
    if (rc != 0)
        return rc;
    const struct dir_mailbox *m = &v.mailbox;
    struct alias_rows aliases = {.arr = json_array(), .text = ""};
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", m->address);
    rc = ctl_dir_status(c, dir_alias_list(c->dir, m->address, collect_alias, &aliases), what);
    if (rc != 0) {
        json_decref(aliases.arr);
        return rc;
    }
    struct effective e = effective_of(&v);
    if (c->json) {
        rc = show_json(&v, &e, &aliases);
        json_decref(aliases.arr);
        return rc;
    }
    json_decref(aliases.arr);
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
    printf("app-passwords       %s (tenant)\n", ctl_onoff(v.tenant.app_passwords));
    printf("reply-detail        %s (tenant)\n",
           v.tenant.reply_detail == REPLY_DETAIL_GENERIC ? "generic" : "full");
    printf("aliases             %s\n", aliases.text[0] ? aliases.text : "(none)");
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
     "smtp-auth on|off|inherit, policy NAME|inherit, enabled yes|no", 3, 3, CTL_WRITES, NULL,
     mailbox_set},
    {"mailbox", "show", "ADDRESS",
     "every setting: tenant value, mailbox value, effective value and who decided it", 1, 1,
     CTL_JSON, NULL, mailbox_show},
    {"mailbox", "list", "[--tenant DOMAIN]", "mailboxes (of one tenant)", 0, 0, CTL_JSON,
     mailbox_list_opts, mailbox_list},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
