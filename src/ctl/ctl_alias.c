/* ctl_alias.c: `submitctl alias ...`: the addresses a mailbox may use as its envelope sender and
 * header From (SPEC section 2; checked at MAIL and end of DATA, 550 5.7.60 otherwise). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int check_addresses(const struct ctl *c, char **pos, int npos)
{
    for (int i = 0; i < npos; i++)
        if (!ctl_valid_address(pos[i]))
            return ctl_usage(c, "not a valid address: %s", pos[i]);
    return 0;
}

static int alias_add(struct ctl *c, char **pos, int npos)
{
    int rc = check_addresses(c, pos, npos);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[600];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    enum dir_status st = dir_alias_add(c->dir, pos[0], pos[1]);
    if (st == DIR_EXISTS)
        snprintf(what, sizeof what, "address %s", pos[1]);
    rc = ctl_dir_status(c, st, what);
    if (rc == 0)
        printf("mailbox %s: alias %s added\n", pos[0], pos[1]);
    return rc;
}

static int alias_remove(struct ctl *c, char **pos, int npos)
{
    int rc = check_addresses(c, pos, npos);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "alias %s", pos[0]);
    rc = ctl_dir_status(c, dir_alias_remove(c->dir, pos[0]), what);
    if (rc == 0)
        printf("alias %s removed\n", pos[0]);
    return rc;
}

static void list_alias(const char *alias, void *arg)
{
    json_t *arr = arg;
    if (arr != NULL)
        json_array_append_new(arr, json_string(alias));
    else
        printf("%s\n", alias);
}

static int alias_list(struct ctl *c, char **pos, int npos)
{
    int rc = check_addresses(c, pos, npos);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct dir_mailbox m;
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_mailbox_get(c->dir, pos[0], &m), what)) != 0)
        return rc;
    json_t *arr = c->json ? json_array() : NULL;
    rc = ctl_dir_status(c, dir_alias_list(c->dir, m.address, list_alias, arr), what);
    if (!c->json)
        return rc;
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    return ctl_json_print(json_pack("{s:s, s:o}", "address", m.address, "aliases", arr));
}

const struct ctl_command ctl_alias_commands[] = {
    {"alias", "add", "ADDRESS ALIAS",
     "let mailbox ADDRESS send as ALIAS (an address in an accepted domain of its tenant)", 2, 2,
     CTL_WRITES, NULL, alias_add},
    {"alias", "remove", "ALIAS", "remove an alias", 1, 1, CTL_WRITES, NULL, alias_remove},
    {"alias", "list", "ADDRESS", "the aliases of a mailbox", 1, 1, CTL_JSON, NULL, alias_list},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
