/* ctl_tenant.c: `submitctl tenant ...`: add, show, list, set (smtp-auth, security-defaults,
 * app-passwords, default-policy, reply-detail; SPEC section 2) and the tenant's extra accepted
 * domains. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

/* Settings `tenant set` knows, with the values each accepts (NULL: a policy name). */
static const struct {
    const char *key;
    const char *values[3];
    const char *must; /* for the usage message */
} tenant_keys[] = {
    {"smtp-auth", {"on", "off", NULL}, "on or off"},
    {"security-defaults", {"on", "off", NULL}, "on or off"},
    {"app-passwords", {"on", "off", NULL}, "on or off"},
    {"default-policy", {NULL}, "a policy name"},
    {"reply-detail", {"full", "generic", NULL}, "full or generic"},
};

static int check_domain(const struct ctl *c, const char *domain)
{
    if (!ctl_valid_domain(domain))
        return ctl_usage(c, "not a valid domain: %s", domain);
    return 0;
}

static int tenant_add(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_domain(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", pos[0]);
    rc = ctl_dir_status(c, dir_tenant_add(c->dir, pos[0]), what);
    if (rc == 0)
        printf("tenant %s added (smtp-auth off, security-defaults on, default-policy "
               "block-basic)\n",
               pos[0]);
    return rc;
}

struct domain_list {
    char names[64][SMTP_DOMAIN_MAX + 1];
    size_t n;
};

static void collect_domain(const char *domain, void *arg)
{
    struct domain_list *l = arg;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], domain) == 0)
            return;
    if (l->n < sizeof l->names / sizeof l->names[0])
        snprintf(l->names[l->n++], sizeof l->names[0], "%s", domain);
}

static void count_mailbox(const struct dir_mailbox *m, void *arg)
{
    (void)m;
    (*(size_t *)arg)++;
}

static void count_rule(const struct dir_rule *r, void *arg)
{
    (void)r;
    (*(size_t *)arg)++;
}

static json_t *tenant_json(const struct dir_tenant *t)
{
    char created[40];
    ctl_time_s(t->created, created, sizeof created);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "domain", t->domain, "smtp_auth",
                     ctl_onoff(t->smtp_auth), "security_defaults", ctl_onoff(t->security_defaults),
                     "app_passwords", ctl_onoff(t->app_passwords), "default_policy",
                     t->default_policy, "reply_detail",
                     t->reply_detail == REPLY_DETAIL_GENERIC ? "generic" : "full", "created",
                     created);
}

static int tenant_show(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_domain(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct dir_tenant t;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_tenant_get(c->dir, pos[0], &t), what)) != 0)
        return rc;
    struct domain_list domains = {.n = 0};
    collect_domain(t.domain, &domains);
    size_t mailboxes = 0, rules = 0;
    struct dir_policy policy = {.allow_basic_smtp = false};
    enum dir_status st = dir_domain_list(c->dir, t.domain, collect_domain, &domains);
    if (st == DIR_OK)
        st = dir_mailbox_list(c->dir, t.domain, count_mailbox, &mailboxes);
    if (st == DIR_OK)
        st = dir_rule_list(c->dir, t.domain, count_rule, &rules);
    if (st == DIR_OK)
        st = dir_policy_get(c->dir, t.default_policy, &policy);
    if ((rc = ctl_dir_status(c, st, what)) != 0)
        return rc;
    if (c->json) {
        json_t *j = tenant_json(&t);
        json_t *arr = json_array();
        for (size_t i = 0; i < domains.n; i++)
            json_array_append_new(arr, json_string(domains.names[i]));
        json_object_set_new(j, "domains", arr);
        json_object_set_new(j, "default_policy_allows_basic_smtp",
                            json_boolean(policy.allow_basic_smtp));
        json_object_set_new(j, "mailboxes", json_integer((json_int_t)mailboxes));
        json_object_set_new(j, "rules", json_integer((json_int_t)rules));
        return ctl_json_print(j);
    }
    char created[40];
    ctl_time_s(t.created, created, sizeof created);
    printf("tenant              %s\n", t.domain);
    printf("domains             ");
    for (size_t i = 0; i < domains.n; i++)
        printf("%s%s", i ? ", " : "", domains.names[i]);
    printf("\nsmtp-auth           %s\n", ctl_onoff(t.smtp_auth));
    printf("security-defaults   %s%s\n", ctl_onoff(t.security_defaults),
           t.security_defaults ? " (blocks basic SMTP AUTH)" : "");
    printf("app-passwords       %s\n", ctl_onoff(t.app_passwords));
    printf("default-policy      %s (%s basic SMTP)\n", t.default_policy,
           policy.allow_basic_smtp ? "allows" : "blocks");
    printf("reply-detail        %s\n", t.reply_detail == REPLY_DETAIL_GENERIC ? "generic" : "full");
    printf("mailboxes           %zu\n", mailboxes);
    printf("access rules        %zu\n", rules);
    printf("created             %s\n", created);
    return CTL_EXIT_OK;
}

struct tenant_rows {
    json_t *arr; /* NULL for text */
    size_t n;
};

static void list_tenant(const struct dir_tenant *t, void *arg)
{
    struct tenant_rows *rows = arg;
    rows->n++;
    if (rows->arr != NULL) {
        json_array_append_new(rows->arr, tenant_json(t));
        return;
    }
    printf("%-32s %-9s %-17s %-13s %-14s %s\n", t->domain, ctl_onoff(t->smtp_auth),
           ctl_onoff(t->security_defaults), ctl_onoff(t->app_passwords), t->default_policy,
           t->reply_detail == REPLY_DETAIL_GENERIC ? "generic" : "full");
}

static int tenant_list(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct tenant_rows rows = {.arr = c->json ? json_array() : NULL, .n = 0};
    if (!c->json)
        printf("%-32s %-9s %-17s %-13s %-14s %s\n", "DOMAIN", "SMTP-AUTH", "SECURITY-DEFAULTS",
               "APP-PASSWORDS", "DEFAULT-POLICY", "REPLY-DETAIL");
    rc = ctl_dir_status(c, dir_tenant_list(c->dir, list_tenant, &rows), "tenants");
    if (c->json)
        return rc == 0 ? ctl_json_print(rows.arr) : (json_decref(rows.arr), rc);
    return rc;
}

static int tenant_set(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    const char *domain = pos[0], *key = pos[1], *value = pos[2];
    size_t k = 0, nkeys = sizeof tenant_keys / sizeof tenant_keys[0];
    while (k < nkeys && strcmp(tenant_keys[k].key, key) != 0)
        k++;
    if (k == nkeys)
        return ctl_usage(c,
                         "unknown setting %s (smtp-auth, security-defaults, app-passwords, "
                         "default-policy, reply-detail)",
                         key);
    bool ok = tenant_keys[k].values[0] == NULL && ctl_valid_policy_name(value);
    for (size_t v = 0; v < 3 && tenant_keys[k].values[v] != NULL; v++)
        ok = ok || strcmp(tenant_keys[k].values[v], value) == 0;
    if (!ok)
        return ctl_usage(c, "value must be %s", tenant_keys[k].must);
    int rc = check_domain(c, domain);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", domain);
    rc = ctl_dir_status(c, dir_tenant_set(c->dir, domain, key, value), what);
    if (rc == 0)
        printf("tenant %s: %s = %s\n", domain, key, value);
    return rc;
}

static int tenant_domain_add(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_domain(c, pos[0]);
    if (rc == 0)
        rc = check_domain(c, pos[1]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[600];
    snprintf(what, sizeof what, "tenant %s (or domain %s)", pos[0], pos[1]);
    enum dir_status st = dir_domain_add(c->dir, pos[0], pos[1]);
    if (st == DIR_EXISTS)
        snprintf(what, sizeof what, "domain %s", pos[1]);
    rc = ctl_dir_status(c, st, what);
    if (rc == 0)
        printf("tenant %s: domain %s added\n", pos[0], pos[1]);
    return rc;
}

static int tenant_domain_remove(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_domain(c, pos[0]);
    if (rc == 0)
        rc = check_domain(c, pos[1]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct dir_tenant t;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_tenant_get(c->dir, pos[0], &t), what)) != 0)
        return rc;
    if (strcasecmp(t.domain, pos[1]) == 0)
        return ctl_fail(c, "%s is the primary domain of the tenant and cannot be removed", pos[1]);
    struct domain_list domains = {.n = 0};
    if ((rc = ctl_dir_status(c, dir_domain_list(c->dir, t.domain, collect_domain, &domains),
                             what)) != 0)
        return rc;
    bool found = false;
    for (size_t i = 0; i < domains.n; i++)
        found = found || strcasecmp(domains.names[i], pos[1]) == 0;
    if (!found)
        return ctl_fail(c, "%s is not a domain of tenant %s", pos[1], t.domain);
    snprintf(what, sizeof what, "domain %s", pos[1]);
    rc = ctl_dir_status(c, dir_domain_remove(c->dir, pos[1]), what);
    if (rc == 0)
        printf("tenant %s: domain %s removed\n", t.domain, pos[1]);
    return rc;
}

const struct ctl_command ctl_tenant_commands[] = {
    {"tenant", "add", "DOMAIN", "add a tenant whose primary domain is DOMAIN", 1, 1, CTL_WRITES,
     NULL, tenant_add},
    {"tenant", "show", "DOMAIN", "every setting of a tenant, its domains and counts", 1, 1,
     CTL_JSON, NULL, tenant_show},
    {"tenant", "list", "", "all tenants and their settings", 0, 0, CTL_JSON, NULL, tenant_list},
    {"tenant", "set", "DOMAIN KEY VALUE",
     "smtp-auth on|off, security-defaults on|off, app-passwords on|off, default-policy NAME, "
     "reply-detail full|generic",
     3, 3, CTL_WRITES, NULL, tenant_set},
    {"tenant", "domain-add", "DOMAIN EXTRA", "add EXTRA as an accepted domain of tenant DOMAIN", 2,
     2, CTL_WRITES, NULL, tenant_domain_add},
    {"tenant", "domain-remove", "DOMAIN EXTRA", "remove the accepted domain EXTRA", 2, 2,
     CTL_WRITES, NULL, tenant_domain_remove},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
