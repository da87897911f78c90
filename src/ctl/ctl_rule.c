/* ctl_rule.c: `submitctl rule ...`: a tenant's ordered access rules (SPEC section 2, gate 7):
 * block or allow basic SMTP AUTH for clients from (or outside) a list of networks (RFC 4632
 * CIDR, RFC 4291 IPv6), for all mailboxes or listed ones. The first matching rule decides. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "netmask.h"

enum { RULE_OPT_MAILBOXES, RULE_OPT_POSITION, RULE_OPT_COMMENT };
static const struct ctl_opt rule_add_opts[] = {
    {"--mailboxes", true}, {"--position", true}, {"--comment", true}, {NULL, false}};

/* Checks a comma-separated list of addresses. */
static int check_mailboxes(const struct ctl *c, const char *list)
{
    char copy[DIR_TEXT_MAX];
    if (strlen(list) >= sizeof copy)
        return ctl_usage(c, "--mailboxes: list longer than %d octets", DIR_TEXT_MAX - 1);
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    int n = 0;
    for (char *a = strtok_r(copy, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save), n++)
        if (!ctl_valid_address(a))
            return ctl_usage(c, "--mailboxes: not a valid address: %s", a);
    if (n == 0)
        return ctl_usage(c, "--mailboxes: no address given");
    return 0;
}

static int rule_add(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    struct dir_rule rule;
    memset(&rule, 0, sizeof rule);
    if (strcmp(pos[1], "block") != 0 && strcmp(pos[1], "allow") != 0)
        return ctl_usage(c, "action must be block or allow");
    if (strcmp(pos[2], "from") != 0 && strcmp(pos[2], "outside") != 0)
        return ctl_usage(c, "match must be from or outside");
    rule.allow = strcmp(pos[1], "allow") == 0;
    rule.outside = strcmp(pos[2], "outside") == 0;
    struct netmask nets[DIR_RULE_NETS_MAX];
    char bad[128] = "";
    if (strlen(pos[3]) >= sizeof rule.networks)
        return ctl_usage(c, "network list longer than %d octets", DIR_TEXT_MAX - 1);
    if (netmask_parse_list(pos[3], nets, DIR_RULE_NETS_MAX, bad, sizeof bad) <= 0)
        return ctl_usage(c,
                         "not a valid network: %s (e.g. 192.0.2.0/24 or 2001:db8::/32; at "
                         "most %d)",
                         bad[0] ? bad : pos[3], DIR_RULE_NETS_MAX);
    snprintf(rule.networks, sizeof rule.networks, "%s", pos[3]);
    const char *mailboxes = c->opt[RULE_OPT_MAILBOXES];
    const char *comment = c->opt[RULE_OPT_COMMENT];
    long position = 0;
    if (mailboxes != NULL && check_mailboxes(c, mailboxes) != 0)
        return CTL_EXIT_USAGE;
    if (c->opt[RULE_OPT_POSITION] != NULL &&
        !ctl_parse_int(c->opt[RULE_OPT_POSITION], 1, DIR_RULES_MAX, &position))
        return ctl_usage(c, "--position must be a number from 1 to %d", DIR_RULES_MAX);
    if (comment != NULL && strlen(comment) >= sizeof rule.comment)
        return ctl_usage(c, "--comment longer than %zu octets", sizeof rule.comment - 1);
    snprintf(rule.mailboxes, sizeof rule.mailboxes, "%s", mailboxes ? mailboxes : "");
    snprintf(rule.comment, sizeof rule.comment, "%s", comment ? comment : "");
    rule.position = (int)position;
    if (!ctl_valid_domain(pos[0]))
        return ctl_usage(c, "not a valid domain: %s", pos[0]);
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", pos[0]);
    rc = ctl_dir_status(c, dir_rule_add(c->dir, pos[0], &rule), what);
    if (rc == 0)
        printf("tenant %s: rule %lld added: %s basic auth for clients %s %s%s%s\n", pos[0],
               (long long)rule.id, pos[1], rule.outside ? "outside" : "from", rule.networks,
               mailboxes ? ", mailboxes " : "", mailboxes ? mailboxes : "");
    return rc;
}

static int rule_remove(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    long id = 0;
    if (!ctl_valid_domain(pos[0]))
        return ctl_usage(c, "not a valid domain: %s", pos[0]);
    if (!ctl_parse_int(pos[1], 1, 0x7fffffffL, &id))
        return ctl_usage(c, "not a rule id: %s (see submitctl rule list %s)", pos[1], pos[0]);
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "rule %ld in tenant %s", id, pos[0]);
    rc = ctl_dir_status(c, dir_rule_remove(c->dir, pos[0], id), what);
    if (rc == 0)
        printf("tenant %s: rule %ld removed\n", pos[0], id);
    return rc;
}

static void list_rule(const struct dir_rule *r, void *arg)
{
    json_t *arr = arg;
    const char *action = r->allow ? "allow" : "block";
    const char *match = r->outside ? "outside" : "from";
    if (arr != NULL) {
        json_array_append_new(arr, json_pack("{s:I, s:i, s:s, s:s, s:s, s:s, s:s}", "id",
                                             (json_int_t)r->id, "position", r->position, "action",
                                             action, "match", match, "networks", r->networks,
                                             "mailboxes", r->mailboxes, "comment", r->comment));
        return;
    }
    printf("%-5lld %-4d %-6s %-8s %-34s %-24s %s\n", (long long)r->id, r->position, action, match,
           r->networks, r->mailboxes[0] ? r->mailboxes : "(all)", r->comment);
}

static int rule_list(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    if (!ctl_valid_domain(pos[0]))
        return ctl_usage(c, "not a valid domain: %s", pos[0]);
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct dir_tenant t;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_tenant_get(c->dir, pos[0], &t), what)) != 0)
        return rc;
    json_t *arr = c->json ? json_array() : NULL;
    if (!c->json)
        printf("%-5s %-4s %-6s %-8s %-34s %-24s %s\n", "ID", "POS", "ACTION", "MATCH", "NETWORKS",
               "MAILBOXES", "COMMENT");
    rc = ctl_dir_status(c, dir_rule_list(c->dir, t.domain, list_rule, arr), what);
    if (!c->json)
        return rc;
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    return ctl_json_print(json_pack("{s:s, s:o}", "tenant", t.domain, "rules", arr));
}

const struct ctl_command ctl_rule_commands[] = {
    {"rule", "add",
     "DOMAIN block|allow from|outside NETWORKS [--mailboxes A,B] [--position N] [--comment "
     "TEXT]",
     "block or allow basic SMTP AUTH for clients from (or outside) the networks; the first "
     "matching rule decides",
     4, 4, CTL_WRITES, rule_add_opts, rule_add},
    {"rule", "list", "DOMAIN", "a tenant's access rules in evaluation order", 1, 1, CTL_JSON, NULL,
     rule_list},
    {"rule", "remove", "DOMAIN ID", "remove an access rule", 2, 2, CTL_WRITES, NULL, rule_remove},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
