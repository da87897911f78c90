/* ctl_policy.c: `submitctl policy ...`: authentication policies (SPEC section 2), which decide
 * whether basic (password) SMTP AUTH is allowed for the mailboxes they apply to, like Exchange
 * Online's New-AuthenticationPolicy -AllowBasicAuthSmtp. "block-basic" and "allow-basic" are
 * built in. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int check_name(const struct ctl *c, const char *name)
{
    if (!ctl_valid_policy_name(name))
        return ctl_usage(c, "not a valid policy name: %s (1-%d of A-Z a-z 0-9 . _ -, not inherit)",
                         name, POLICY_NAME_MAX);
    return 0;
}

enum { POLICY_OPT_ALLOW_BASIC };
static const struct ctl_opt policy_add_opts[] = {{"--allow-basic-smtp", false}, {NULL, false}};

static int policy_add(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    bool allow = c->opt[POLICY_OPT_ALLOW_BASIC] != NULL;
    int rc = check_name(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "policy %s", pos[0]);
    rc = ctl_dir_status(c, dir_policy_add(c->dir, pos[0], allow), what);
    if (rc == 0)
        printf("policy %s added (allow-basic-smtp %s)\n", pos[0], ctl_yesno(allow));
    return rc;
}

static int policy_set(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    if (strcmp(pos[1], "allow-basic-smtp") != 0)
        return ctl_usage(c, "unknown setting %s (allow-basic-smtp)", pos[1]);
    if (strcmp(pos[2], "yes") != 0 && strcmp(pos[2], "no") != 0)
        return ctl_usage(c, "value must be yes or no");
    int rc = check_name(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "policy %s", pos[0]);
    rc = ctl_dir_status(c, dir_policy_set(c->dir, pos[0], pos[1], pos[2]), what);
    if (rc == 0)
        printf("policy %s: allow-basic-smtp = %s\n", pos[0], pos[2]);
    return rc;
}

static int policy_remove(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_name(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "policy %s", pos[0]);
    rc = ctl_dir_status(c, dir_policy_remove(c->dir, pos[0]), what);
    if (rc == 0)
        printf("policy %s removed\n", pos[0]);
    return rc;
}

/* Who uses a policy: tenants (as their default) and mailboxes (explicitly). */
struct users {
    const char *name;
    json_t *tenants, *mailboxes;
};

static void tenant_user(const struct dir_tenant *t, void *arg)
{
    struct users *u = arg;
    if (strcmp(t->default_policy, u->name) == 0)
        json_array_append_new(u->tenants, json_string(t->domain));
}

static void mailbox_user(const struct dir_mailbox *m, void *arg)
{
    struct users *u = arg;
    if (strcmp(m->policy, u->name) == 0)
        json_array_append_new(u->mailboxes, json_string(m->address));
}

static void print_names(const char *label, json_t *arr)
{
    printf("%-19s ", label);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) printf("%s%s", i ? ", " : "", json_string_value(v));
    printf("%s\n", json_array_size(arr) ? "" : "(none)");
}

static int policy_show(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    int rc = check_name(c, pos[0]);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct dir_policy p;
    char what[300];
    snprintf(what, sizeof what, "policy %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_policy_get(c->dir, pos[0], &p), what)) != 0)
        return rc;
    struct users u = {.name = p.name, .tenants = json_array(), .mailboxes = json_array()};
    enum dir_status st = dir_tenant_list(c->dir, tenant_user, &u);
    if (st == DIR_OK)
        st = dir_mailbox_list(c->dir, NULL, mailbox_user, &u);
    if ((rc = ctl_dir_status(c, st, what)) != 0) {
        json_decref(u.tenants);
        json_decref(u.mailboxes);
        return rc;
    }
    if (c->json)
        return ctl_json_print(json_pack(
            "{s:s, s:b, s:b, s:o, s:o}", "name", p.name, "allow_basic_smtp", p.allow_basic_smtp,
            "builtin", p.builtin, "default_of_tenants", u.tenants, "mailboxes", u.mailboxes));
    printf("policy              %s%s\n", p.name, p.builtin ? " (built in)" : "");
    printf("allow-basic-smtp    %s (basic SMTP AUTH %s)\n", ctl_yesno(p.allow_basic_smtp),
           p.allow_basic_smtp ? "allowed" : "blocked");
    print_names("default of tenants", u.tenants);
    print_names("mailboxes", u.mailboxes);
    json_decref(u.tenants);
    json_decref(u.mailboxes);
    return CTL_EXIT_OK;
}

static void list_policy(const struct dir_policy *p, void *arg)
{
    json_t *arr = arg;
    if (arr != NULL)
        json_array_append_new(arr, json_pack("{s:s, s:b, s:b}", "name", p->name, "allow_basic_smtp",
                                             p->allow_basic_smtp, "builtin", p->builtin));
    else
        printf("%-24s %-16s %s\n", p->name, ctl_yesno(p->allow_basic_smtp),
               p->builtin ? "yes" : "no");
}

static int policy_list(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    json_t *arr = c->json ? json_array() : NULL;
    if (!c->json)
        printf("%-24s %-16s %s\n", "NAME", "ALLOW-BASIC-SMTP", "BUILTIN");
    rc = ctl_dir_status(c, dir_policy_list(c->dir, list_policy, arr), "policies");
    if (c->json)
        return rc == 0 ? ctl_json_print(arr) : (json_decref(arr), rc);
    return rc;
}

const struct ctl_command ctl_policy_commands[] = {
    {"policy", "add", "NAME [--allow-basic-smtp]",
     "add an authentication policy (blocks basic SMTP AUTH unless --allow-basic-smtp)", 1, 1,
     CTL_WRITES, policy_add_opts, policy_add},
    {"policy", "set", "NAME allow-basic-smtp yes|no", "change a policy", 3, 3, CTL_WRITES, NULL,
     policy_set},
    {"policy", "show", "NAME", "a policy and the tenants and mailboxes that use it", 1, 1, CTL_JSON,
     NULL, policy_show},
    {"policy", "list", "", "all authentication policies", 0, 0, CTL_JSON, NULL, policy_list},
    {"policy", "remove", "NAME", "remove a policy that nothing uses (not a built-in one)", 1, 1,
     CTL_WRITES, NULL, policy_remove},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
