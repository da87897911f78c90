/* ctl_grant.c: `submitctl mailbox grant-... / revoke-...`: send-as grants (SPEC section 2: a
 * mailbox may use another mailbox or alias of its tenant as envelope sender and header From,
 * else 550 5.7.60) and access grants (SPEC section 5: an OAuth principal, such as a delegate's
 * address or an application's subject, may authenticate as the mailbox with XOAUTH2 user= or
 * OAUTHBEARER a=). The lists are shown by `mailbox show`. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* One grant command: which directory call, and how its object is checked and named. */
struct grant_kind {
    enum dir_status (*change)(struct directory *, const char *, const char *);
    bool principal;   /* the second argument is an OAuth principal, not necessarily an address */
    const char *done; /* "may now send as", ... */
    const char *what; /* "send-as grant", "access grant" */
};

static const struct grant_kind kinds[] = {
    {dir_send_as_grant, false, "may now send as", "send-as grant"},
    {dir_send_as_revoke, false, "may no longer send as", "send-as grant"},
    {dir_access_grant, true, "may now be used (OAuth) by", "access grant"},
    {dir_access_revoke, true, "may no longer be used (OAuth) by", "access grant"},
};
enum { GRANT_SEND_AS, REVOKE_SEND_AS, GRANT_ACCESS, REVOKE_ACCESS };

/* An OAuth principal: an address, or an application's subject (printable, no spaces). */
static bool valid_principal(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > SMTP_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] == 0x7f)
            return false;
    return strchr(p, '@') == NULL || ctl_valid_address(p);
}

static int run_grant(struct ctl *c, char **pos, const struct grant_kind *k)
{
    if (!ctl_valid_address(pos[0]))
        return ctl_usage(c, "not a valid address: %s", pos[0]);
    if (k->principal ? !valid_principal(pos[1]) : !ctl_valid_address(pos[1]))
        return ctl_usage(c, "not a valid %s: %s", k->principal ? "principal" : "address", pos[1]);
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    struct dir_mailbox m;
    char what[700];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_mailbox_get(c->dir, pos[0], &m), what)) != 0)
        return rc;
    snprintf(what, sizeof what, "%s of %s to %s", k->what, m.address, pos[1]);
    rc = ctl_dir_status(c, k->change(c->dir, m.address, pos[1]), what);
    if (rc == 0)
        printf("mailbox %s %s %s\n", m.address, k->done, pos[1]);
    return rc;
}

static int grant_send_as(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return run_grant(c, pos, &kinds[GRANT_SEND_AS]);
}

static int revoke_send_as(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return run_grant(c, pos, &kinds[REVOKE_SEND_AS]);
}

static int grant_access(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return run_grant(c, pos, &kinds[GRANT_ACCESS]);
}

static int revoke_access(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    return run_grant(c, pos, &kinds[REVOKE_ACCESS]);
}

const struct ctl_command ctl_grant_commands[] = {
    {"mailbox", "grant-send-as", "ADDRESS OTHER",
     "let mailbox ADDRESS send as OTHER (another mailbox or alias of its tenant)", 2, 2, CTL_WRITES,
     NULL, grant_send_as},
    {"mailbox", "revoke-send-as", "ADDRESS OTHER", "withdraw a send-as grant", 2, 2, CTL_WRITES,
     NULL, revoke_send_as},
    {"mailbox", "grant-access", "ADDRESS PRINCIPAL",
     "let the OAuth identity PRINCIPAL (a delegate's address or an app's subject) authenticate "
     "as ADDRESS",
     2, 2, CTL_WRITES, NULL, grant_access},
    {"mailbox", "revoke-access", "ADDRESS PRINCIPAL", "withdraw an access grant", 2, 2, CTL_WRITES,
     NULL, revoke_access},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
