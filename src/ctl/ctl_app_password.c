/* ctl_app_password.c: `submitctl app-password ...` (SPEC section 2): per-device secrets of a
 * mailbox, accepted through PLAIN and LOGIN (RFC 4616, RFC 4954). `add` generates one, stores
 * only its hash and prints it once; `list` shows label, created and last used (never the secret
 * or its hash); `revoke` removes one, effective at the next AUTH attempt. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "app_password.h"
#include "ctl.h"

#define LABEL_MAX 63 /* struct dir_app_password.label */

static int check_args(const struct ctl *c, char **pos, int npos)
{
    if (!ctl_valid_address(pos[0]))
        return ctl_usage(c, "not a valid address: %s", pos[0]);
    if (npos < 2)
        return 0;
    size_t n = strlen(pos[1]);
    bool ok = n > 0 && n <= LABEL_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)pos[1][i] >= 0x20 && (unsigned char)pos[1][i] != 0x7f;
    if (!ok)
        return ctl_usage(c, "a label is 1-%d characters without control characters", LABEL_MAX);
    return 0;
}

/* Opens the directory and reads the mailbox (which must exist) and its tenant. */
static int load_mailbox(struct ctl *c, char **pos, int npos, struct dir_mailbox *m,
                        struct dir_tenant *t)
{
    int rc = check_args(c, pos, npos);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", pos[0]);
    if ((rc = ctl_dir_status(c, dir_mailbox_get(c->dir, pos[0], m), what)) != 0)
        return rc;
    static struct dir_auth_view v; /* large (every access rule); one per process */
    if ((rc = ctl_dir_status(c, dir_auth_view(c->dir, m->address, &v), what)) != 0)
        return rc;
    *t = v.tenant;
    return 0;
}

static int app_password_add(struct ctl *c, char **pos, int npos)
{
    struct dir_mailbox m;
    struct dir_tenant t;
    int rc = load_mailbox(c, pos, npos, &m, &t);
    if (rc != 0)
        return rc;
    char secret[APP_PASSWORD_LEN + 1], hash[APP_PASSWORD_HASH_HEX + 1];
    app_password_generate(secret);
    app_password_hash((const uint8_t *)secret, strlen(secret), hash);
    char what[400];
    snprintf(what, sizeof what, "app password \"%s\" of %s", pos[1], m.address);
    rc = ctl_dir_status(c, dir_app_password_add(c->dir, m.address, pos[1], hash), what);
    sodium_memzero(hash, sizeof hash);
    if (rc != 0) {
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    if (c->json) {
        char created[40];
        ctl_time_s((int64_t)time(NULL), created, sizeof created);
        rc = ctl_json_print(json_pack("{s:s, s:s, s:s, s:s, s:s}", "address", m.address, "label",
                                      pos[1], "secret", secret, "created", created,
                                      "tenant_app_passwords", ctl_onoff(t.app_passwords)));
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    printf("mailbox %s: app password \"%s\" added\n", m.address, pos[1]);
    printf("secret: %s\n", secret);
    sodium_memzero(secret, sizeof secret);
    printf("Enter it in the device instead of the mailbox password (PLAIN or LOGIN). It is shown "
           "only now and cannot be shown again: only its hash is stored.\n");
    if (t.app_passwords)
        printf("Tenant %s has app-passwords on: it passes security defaults and authentication "
               "policies (never the SMTP AUTH switch or access rules).\n",
               t.domain);
    else
        printf("Tenant %s has app-passwords off: security defaults and authentication policies "
               "block it like any basic authentication until submitctl tenant set %s "
               "app-passwords on.\n",
               t.domain, t.domain);
    return CTL_EXIT_OK;
}

struct rows {
    json_t *arr; /* NULL for text */
};

static void list_one(const struct dir_app_password *p, void *arg)
{
    struct rows *rows = arg;
    char created[40], used[40];
    ctl_time_s(p->created, created, sizeof created);
    ctl_time_s(p->last_used, used, sizeof used);
    if (rows->arr != NULL) {
        json_array_append_new(rows->arr,
                              json_pack("{s:s, s:s, s:s?}", "label", p->label, "created", created,
                                        "last_used", p->last_used ? used : NULL));
        return;
    }
    printf("%-32s %-20s %s\n", p->label, created, p->last_used ? used : "never");
}

static int app_password_list(struct ctl *c, char **pos, int npos)
{
    struct dir_mailbox m;
    struct dir_tenant t;
    int rc = load_mailbox(c, pos, npos, &m, &t);
    if (rc != 0)
        return rc;
    struct rows rows = {.arr = c->json ? json_array() : NULL};
    if (!c->json)
        printf("%-32s %-20s %s\n", "LABEL", "CREATED", "LAST-USED");
    char what[300];
    snprintf(what, sizeof what, "mailbox %s", m.address);
    rc = ctl_dir_status(c, dir_app_password_list(c->dir, m.address, list_one, &rows), what);
    if (!c->json)
        return rc;
    if (rc != 0) {
        json_decref(rows.arr);
        return rc;
    }
    return ctl_json_print(json_pack("{s:s, s:s, s:o}", "address", m.address, "tenant_app_passwords",
                                    ctl_onoff(t.app_passwords), "app_passwords", rows.arr));
}

static int app_password_revoke(struct ctl *c, char **pos, int npos)
{
    struct dir_mailbox m;
    struct dir_tenant t;
    int rc = load_mailbox(c, pos, npos, &m, &t);
    if (rc != 0)
        return rc;
    char what[400];
    snprintf(what, sizeof what, "app password \"%s\" of %s", pos[1], m.address);
    rc = ctl_dir_status(c, dir_app_password_revoke(c->dir, m.address, pos[1]), what);
    if (rc == 0)
        printf("mailbox %s: app password \"%s\" revoked (refused from the next AUTH on)\n",
               m.address, pos[1]);
    return rc;
}

const struct ctl_command ctl_app_password_commands[] = {
    {"app-password", "add", "ADDRESS LABEL",
     "make an app password for a device; the secret is printed once and cannot be shown again", 2,
     2, CTL_WRITES | CTL_JSON, NULL, app_password_add},
    {"app-password", "list", "ADDRESS",
     "a mailbox's app passwords: label, created, last used (never the secret)", 1, 1, CTL_JSON,
     NULL, app_password_list},
    {"app-password", "revoke", "ADDRESS LABEL", "remove an app password", 2, 2, CTL_WRITES, NULL,
     app_password_revoke},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
