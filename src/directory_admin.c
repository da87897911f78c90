/* directory_admin.c: owns the administrative side of the SQLite directory backend (directory.h):
 * adding, changing, listing and removing tenants (with their OAuth settings and submission
 * limits), accepted domains, mailboxes, aliases, authentication policies and access rules, with
 * every key and value validated on the way in (SPEC sections 2, 4 and 5; the checks of the new
 * OAuth and limit values are in directory_grants.c). Grants and app passwords are in
 * directory_grants.c. Each change is one write transaction that also bumps the generation counter.
 * Addresses per RFC 5321 4.1.2, networks per RFC 4632 / RFC 4291. List callbacks run while the
 * list's statement is active: a callback may call other directory functions on the same connection,
 * but not the same list function again. */
#include "directory.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "directory_sqlite_int.h"
#include "netmask.h"

/* A network as text: an IPv6 address with an embedded IPv4 one, then "/128". */
#define NET_TEXT_MAX 64

static int64_t now_seconds(void)
{
    return (int64_t)time(NULL);
}

static bool policy_name_valid(const char *name)
{
    if (name == NULL || strcasecmp(name, "inherit") == 0)
        return false;
    size_t len = strnlen(name, POLICY_NAME_MAX + 1);
    if (len == 0 || len > POLICY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* yes/no style values: 1, 0, or -1 when neither. */
static int parse_bool(const char *v, const char *yes, const char *no)
{
    if (v != NULL && strcasecmp(v, yes) == 0)
        return 1;
    if (v != NULL && strcasecmp(v, no) == 0)
        return 0;
    return -1;
}

/* An existing policy (looked up case-insensitively) by its stored name. */
static enum dir_status policy_existing(struct directory *d, const char *name,
                                       struct dir_policy *out)
{
    if (!policy_name_valid(name))
        return dsql_invalid(d, "unknown policy '%.100s'", name != NULL ? name : "");
    enum dir_status st = dsql_policy_load(d, name, out);
    if (st == DIR_NOTFOUND)
        return dsql_invalid(d, "unknown policy '%.100s'", name);
    return st;
}

static enum dir_status tenant_required(struct directory *d, const char *domain,
                                       struct dir_tenant *out)
{
    enum dir_status st = dsql_tenant_load(d, domain, out);
    if (st == DIR_NOTFOUND)
        snprintf(d->err, sizeof d->err, "no tenant has the domain %s", domain);
    return st;
}

/* --- tenants and their domains --- */

/* DIR_OK when no tenant has the domain yet; DIR_EXISTS naming the tenant that has it. */
static enum dir_status domain_unclaimed(struct directory *d, const char *domain)
{
    struct dir_tenant owner;
    enum dir_status st = dsql_tenant_load(d, domain, &owner);
    if (st == DIR_OK) {
        snprintf(d->err, sizeof d->err, "%s already belongs to the tenant %s", domain,
                 owner.domain);
        return DIR_EXISTS;
    }
    return st == DIR_NOTFOUND ? DIR_OK : st;
}

static enum dir_status tenant_add_tx(struct directory *d, const char *domain, const void *unused)
{
    (void)unused;
    enum dir_status st = domain_unclaimed(d, domain);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_TENANT_INSERT);
    dsql_bind_text(s, 1, domain);
    sqlite3_bind_int64(s, 2, now_seconds());
    st = dsql_run(d, s, "adding a tenant");
    if (st != DIR_OK)
        return st;
    s = dsql_stmt(d, ST_DOMAIN_INSERT);
    dsql_bind_text(s, 1, domain);
    sqlite3_bind_int64(s, 2, sqlite3_last_insert_rowid(d->db));
    return dsql_run(d, s, "adding a tenant's domain");
}

enum dir_status dir_tenant_add(struct directory *d, const char *domain)
{
    return dsql_domain_tx(d, domain, "adding a tenant", tenant_add_tx, NULL);
}

enum dir_status dir_tenant_get(struct directory *d, const char *domain, struct dir_tenant *out)
{
    char dom[SMTP_DOMAIN_MAX + 1];
    enum dir_status st = dsql_norm_domain(d, domain, dom);
    if (st != DIR_OK)
        return st;
    return tenant_required(d, dom, out);
}

/* The tenant settings: each key is a parameter of ST_TENANT_UPDATE (NULL leaves a column). */
enum tenant_kind { TK_SWITCH, TK_POLICY, TK_DETAIL, TK_TEXT, TK_LIMIT };

static const struct tenant_key {
    const char *key;
    int param;
    enum tenant_kind kind;
    enum dir_status (*check)(struct directory *, const char *, char *, size_t); /* TK_TEXT */
    size_t cap;                                                                 /* TK_TEXT */
} tenant_keys[] = {
    {"smtp-auth", 2, TK_SWITCH, NULL, 0},
    {"security-defaults", 3, TK_SWITCH, NULL, 0},
    {"app-passwords", 4, TK_SWITCH, NULL, 0},
    {"default-policy", 5, TK_POLICY, NULL, 0},
    {"reply-detail", 6, TK_DETAIL, NULL, 0},
    {"issuer", 7, TK_TEXT, dsql_check_issuer, sizeof((struct dir_tenant *)0)->oauth_issuer},
    {"jwks", 8, TK_TEXT, dsql_check_jwks, sizeof((struct dir_tenant *)0)->oauth_jwks},
    {"audience", 9, TK_TEXT, dsql_check_audience, sizeof((struct dir_tenant *)0)->oauth_audience},
    {"scope", 10, TK_TEXT, dsql_check_scope, sizeof((struct dir_tenant *)0)->oauth_scope},
    {"identity-claim", 11, TK_TEXT, dsql_check_claim,
     sizeof((struct dir_tenant *)0)->oauth_identity_claim},
    {"max-sessions", 12, TK_LIMIT, NULL, 0},
    {"messages-per-minute", 13, TK_LIMIT, NULL, 0},
    {"recipients-per-day", 14, TK_LIMIT, NULL, 0},
    {"recipients-per-message", 15, TK_LIMIT, NULL, 0},
};

/* Binds the key's validated value to s; DIR_INVALID (or a lookup's status) when it is bad. */
static enum dir_status tenant_bind(struct directory *d, sqlite3_stmt *s, const struct tenant_key *k,
                                   const char *value)
{
    struct dir_policy p;
    char text[DIR_TEXT_MAX];
    unsigned limit;
    int on;
    enum dir_status st = DIR_OK;
    switch (k->kind) {
    case TK_SWITCH:
        if ((on = parse_bool(value, "on", "off")) < 0)
            return dsql_invalid(d, "value must be on or off");
        sqlite3_bind_int(s, k->param, on);
        break;
    case TK_POLICY:
        if ((st = policy_existing(d, value, &p)) == DIR_OK)
            sqlite3_bind_text(s, k->param, p.name, -1, SQLITE_TRANSIENT);
        break;
    case TK_DETAIL:
        if ((on = parse_bool(value, "full", "generic")) < 0)
            return dsql_invalid(d, "value must be full or generic");
        dsql_bind_text(s, k->param, on ? "full" : "generic");
        break;
    case TK_TEXT:
        if ((st = k->check(d, value, text, k->cap)) == DIR_OK)
            sqlite3_bind_text(s, k->param, text, -1, SQLITE_TRANSIENT);
        break;
    case TK_LIMIT:
        if ((st = dsql_check_limit(d, value, false, &limit)) == DIR_OK)
            sqlite3_bind_int64(s, k->param, limit);
        break;
    }
    return st;
}

static enum dir_status tenant_set_tx(struct directory *d, const char *domain, const char *key,
                                     const char *value)
{
    struct dir_tenant t;
    enum dir_status st = tenant_required(d, domain, &t);
    if (st != DIR_OK)
        return st;
    const struct tenant_key *k = NULL;
    for (size_t i = 0; i < sizeof tenant_keys / sizeof tenant_keys[0] && k == NULL; i++)
        if (strcmp(key, tenant_keys[i].key) == 0)
            k = &tenant_keys[i];
    if (k == NULL)
        return dsql_invalid(d,
                            "unknown tenant setting '%.100s' (smtp-auth, security-defaults, "
                            "app-passwords, default-policy, reply-detail, issuer, jwks, audience, "
                            "scope, identity-claim, max-sessions, messages-per-minute, "
                            "recipients-per-day, recipients-per-message)",
                            key);
    sqlite3_stmt *s = dsql_stmt(d, ST_TENANT_UPDATE);
    sqlite3_bind_int64(s, 1, t.id);
    st = tenant_bind(d, s, k, value);
    if (st != DIR_OK) {
        sqlu_finish(s);
        return st;
    }
    return dsql_run(d, s, "changing a tenant");
}

enum dir_status dir_tenant_set(struct directory *d, const char *domain, const char *key,
                               const char *value)
{
    char dom[SMTP_DOMAIN_MAX + 1];
    enum dir_status st = dsql_norm_domain(d, domain, dom);
    if (st != DIR_OK)
        return st;
    if (key == NULL || value == NULL)
        return dsql_invalid(d, "a setting needs a key and a value");
    st = dsql_tx_begin(d, "changing a tenant");
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, tenant_set_tx(d, dom, key, value));
}

enum dir_status dir_tenant_list(struct directory *d, void (*cb)(const struct dir_tenant *, void *),
                                void *arg)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_TENANT_LIST);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct dir_tenant t;
        dsql_tenant_row(s, &t);
        cb(&t, arg);
    }
    return dsql_done(d, s, rc, "listing tenants");
}

static enum dir_status domain_add_tx(struct directory *d, const char *tenant_domain,
                                     const char *domain)
{
    struct dir_tenant t;
    enum dir_status st = tenant_required(d, tenant_domain, &t);
    if (st == DIR_OK)
        st = domain_unclaimed(d, domain);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_DOMAIN_INSERT);
    dsql_bind_text(s, 1, domain);
    sqlite3_bind_int64(s, 2, t.id);
    return dsql_run(d, s, "adding a domain");
}

enum dir_status dir_domain_add(struct directory *d, const char *tenant_domain, const char *domain)
{
    char tdom[SMTP_DOMAIN_MAX + 1];
    char dom[SMTP_DOMAIN_MAX + 1];
    enum dir_status st = dsql_norm_domain(d, tenant_domain, tdom);
    if (st == DIR_OK)
        st = dsql_norm_domain(d, domain, dom);
    if (st == DIR_OK)
        st = dsql_tx_begin(d, "adding a domain");
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, domain_add_tx(d, tdom, dom));
}

static enum dir_status domain_remove_tx(struct directory *d, const char *domain, const void *unused)
{
    (void)unused;
    struct dir_tenant t;
    enum dir_status st = dsql_tenant_load(d, domain, &t);
    if (st != DIR_OK)
        return st;
    if (strcmp(t.domain, domain) == 0)
        return dsql_invalid(d, "%s is the primary domain of its tenant and cannot be removed",
                            domain);
    sqlite3_stmt *s = dsql_stmt(d, ST_DOMAIN_IN_USE);
    dsql_bind_text(s, 1, domain);
    int rc = sqlite3_step(s);
    int64_t users = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return dsql_db_error(d, rc, "checking a domain's mailboxes");
    if (users > 0)
        return dsql_invalid(d, "%s still has %lld mailboxes or aliases; remove them first", domain,
                            (long long)users);
    s = dsql_stmt(d, ST_DOMAIN_DELETE);
    dsql_bind_text(s, 1, domain);
    return dsql_run(d, s, "removing a domain");
}

enum dir_status dir_domain_remove(struct directory *d, const char *domain)
{
    return dsql_domain_tx(d, domain, "removing a domain", domain_remove_tx, NULL);
}

enum dir_status dir_domain_list(struct directory *d, const char *tenant_domain,
                                void (*cb)(const char *domain, void *), void *arg)
{
    char tdom[SMTP_DOMAIN_MAX + 1];
    struct dir_tenant t;
    enum dir_status st = dsql_norm_domain(d, tenant_domain, tdom);
    if (st == DIR_OK)
        st = tenant_required(d, tdom, &t);
    if (st != DIR_OK)
        return st;
    return dsql_list_text(d, ST_DOMAIN_LIST, t.id, cb, arg, "listing domains");
}

/* --- mailboxes --- */

static enum dir_status hash_check(struct directory *d, const char *hash)
{
    if (hash != NULL && strnlen(hash, DIR_HASH_MAX + 1) > DIR_HASH_MAX)
        return dsql_invalid(d, "the password hash is longer than %d characters", DIR_HASH_MAX);
    return DIR_OK;
}

/* A write to the mailbox at address that stores a password hash (arg): the address, then the
 * hash, are checked first. */
static enum dir_status hash_write(struct directory *d, const char *address, const char *hash,
                                  const char *what, dsql_work_fn work)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st == DIR_OK)
        st = hash_check(d, hash);
    return dsql_write(d, st, addr, what, work, hash);
}

static enum dir_status mailbox_add_tx(struct directory *d, const char *address, const void *arg)
{
    const char *hash = arg;
    const char *domain = strrchr(address, '@') + 1;
    struct dir_tenant t;
    char owner[SMTP_PATH_MAX + 1];
    enum dir_status st = dsql_tenant_load(d, domain, &t);
    if (st == DIR_NOTFOUND)
        return dsql_invalid(d, "no tenant has the domain %s", domain);
    if (st != DIR_OK)
        return st;
    st = dsql_alias_load(d, address, owner);
    if (st == DIR_OK)
        return dsql_invalid(d, "%s is already an alias of %s", address, owner);
    if (st != DIR_NOTFOUND)
        return st;
    int64_t now = now_seconds();
    bool has_password = hash != NULL && hash[0] != '\0';
    sqlite3_stmt *s = dsql_stmt(d, ST_MAILBOX_INSERT);
    sqlite3_bind_int64(s, 1, t.id);
    dsql_bind_text(s, 2, address);
    dsql_bind_text(s, 3, has_password ? hash : "");
    sqlite3_bind_int64(s, 4, now);
    sqlite3_bind_int64(s, 5, has_password ? now : 0);
    st = dsql_run(d, s, "adding a mailbox");
    if (st == DIR_EXISTS)
        snprintf(d->err, sizeof d->err, "the mailbox %s exists", address);
    return st;
}

enum dir_status dir_mailbox_add(struct directory *d, const char *address, const char *hash)
{
    return hash_write(d, address, hash, "adding a mailbox", mailbox_add_tx);
}

enum dir_status dir_mailbox_get(struct directory *d, const char *address, struct dir_mailbox *out)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st != DIR_OK)
        return st;
    return dsql_mailbox_load(d, addr, out);
}

/* The mailbox limits: parameters 5-8 of ST_MAILBOX_UPDATE (0 = inherit). */
static const char *const mailbox_limit_keys[] = {"max-sessions", "messages-per-minute",
                                                 "recipients-per-day", "recipients-per-message"};

static enum dir_status mailbox_set_tx(struct directory *d, const char *address, const char *key,
                                      const char *value)
{
    struct dir_mailbox m;
    struct dir_policy p;
    unsigned limit = 0;
    int limit_param = 0;
    enum dir_status st = dsql_mailbox_load(d, address, &m);
    if (st != DIR_OK)
        return st;
    for (int i = 0; i < 4; i++)
        if (strcmp(key, mailbox_limit_keys[i]) == 0)
            limit_param = 5 + i;
    if (limit_param != 0) {
        if ((st = dsql_check_limit(d, value, true, &limit)) != DIR_OK)
            return st;
    } else if (strcmp(key, "smtp-auth") == 0) {
        if (value == NULL || (strcasecmp(value, "on") != 0 && strcasecmp(value, "off") != 0 &&
                              strcasecmp(value, "inherit") != 0))
            return dsql_invalid(d, "value must be on, off or inherit");
    } else if (strcmp(key, "policy") == 0) {
        if (strcasecmp(value, "inherit") != 0 && (st = policy_existing(d, value, &p)) != DIR_OK)
            return st;
    } else if (strcmp(key, "enabled") == 0) {
        if (parse_bool(value, "yes", "no") < 0)
            return dsql_invalid(d, "value must be yes or no");
    } else {
        return dsql_invalid(d,
                            "unknown mailbox setting '%.100s' (smtp-auth, policy, enabled, "
                            "max-sessions, messages-per-minute, recipients-per-day, "
                            "recipients-per-message)",
                            key);
    }
    sqlite3_stmt *s = dsql_stmt(d, ST_MAILBOX_UPDATE);
    sqlite3_bind_int64(s, 1, m.id);
    if (limit_param != 0)
        sqlite3_bind_int64(s, limit_param, limit);
    else if (strcmp(key, "smtp-auth") == 0)
        dsql_bind_text(s, 3,
                       strcasecmp(value, "on") == 0    ? "on"
                       : strcasecmp(value, "off") == 0 ? "off"
                                                       : "inherit");
    else if (strcmp(key, "policy") == 0)
        dsql_bind_text(s, 4, strcasecmp(value, "inherit") == 0 ? "" : p.name);
    else
        sqlite3_bind_int(s, 2, parse_bool(value, "yes", "no"));
    return dsql_run(d, s, "changing a mailbox");
}

enum dir_status dir_mailbox_set(struct directory *d, const char *address, const char *key,
                                const char *value)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st != DIR_OK)
        return st;
    if (key == NULL || value == NULL)
        return dsql_invalid(d, "a setting needs a key and a value");
    st = dsql_tx_begin(d, "changing a mailbox");
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, mailbox_set_tx(d, addr, key, value));
}

static enum dir_status mailbox_password_tx(struct directory *d, const char *address,
                                           const void *arg)
{
    const char *hash = arg;
    struct dir_mailbox m;
    enum dir_status st = dsql_mailbox_load(d, address, &m);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_MAILBOX_PASSWORD);
    sqlite3_bind_int64(s, 1, m.id);
    dsql_bind_text(s, 2, hash != NULL ? hash : "");
    sqlite3_bind_int64(s, 3, now_seconds());
    return dsql_run(d, s, "changing a password");
}

enum dir_status dir_mailbox_set_password(struct directory *d, const char *address, const char *hash)
{
    return hash_write(d, address, hash, "changing a password", mailbox_password_tx);
}

static enum dir_status mailbox_remove_tx(struct directory *d, const char *address,
                                         const void *unused)
{
    (void)unused;
    struct dir_mailbox m;
    enum dir_status st = dsql_mailbox_load(d, address, &m);
    if (st != DIR_OK)
        return st;
    /* send-as grants TO it or its aliases go; those it holds, its aliases, access grants and
     * app passwords cascade with the row */
    sqlite3_stmt *s = dsql_stmt(d, ST_SEND_AS_DROP_TARGET);
    dsql_bind_text(s, 1, m.address);
    sqlite3_bind_int64(s, 2, m.id);
    if ((st = dsql_run(d, s, "removing send-as grants to a mailbox")) != DIR_OK)
        return st;
    s = dsql_stmt(d, ST_MAILBOX_DELETE);
    sqlite3_bind_int64(s, 1, m.id);
    return dsql_run(d, s, "removing a mailbox");
}

enum dir_status dir_mailbox_remove(struct directory *d, const char *address)
{
    return dsql_address_tx(d, address, "removing a mailbox", mailbox_remove_tx, NULL);
}

enum dir_status dir_mailbox_list(struct directory *d, const char *tenant_domain,
                                 void (*cb)(const struct dir_mailbox *, void *), void *arg)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_MAILBOX_LIST_ALL);
    if (tenant_domain != NULL) {
        char tdom[SMTP_DOMAIN_MAX + 1];
        struct dir_tenant t;
        enum dir_status st = dsql_norm_domain(d, tenant_domain, tdom);
        if (st == DIR_OK)
            st = tenant_required(d, tdom, &t);
        if (st != DIR_OK)
            return st;
        s = dsql_stmt(d, ST_MAILBOX_LIST_TENANT);
        sqlite3_bind_int64(s, 1, t.id);
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct dir_mailbox m;
        dsql_mailbox_row(s, &m);
        cb(&m, arg);
    }
    return dsql_done(d, s, rc, "listing mailboxes");
}

/* --- aliases --- */

static enum dir_status alias_add_tx(struct directory *d, const char *address, const char *domain,
                                    const char *alias, const char *alias_domain)
{
    struct dir_mailbox m;
    struct dir_mailbox other;
    struct dir_tenant t;
    struct dir_tenant at;
    char owner[SMTP_PATH_MAX + 1];
    enum dir_status st = dsql_mailbox_load(d, address, &m);
    if (st == DIR_NOTFOUND)
        snprintf(d->err, sizeof d->err, "no mailbox %s", address);
    if (st != DIR_OK)
        return st;
    if ((st = dsql_tenant_load(d, domain, &t)) != DIR_OK)
        return st == DIR_NOTFOUND ? dsql_invalid(d, "no tenant has the domain %s", domain) : st;
    st = dsql_tenant_load(d, alias_domain, &at);
    if (st == DIR_NOTFOUND || (st == DIR_OK && at.id != t.id))
        return dsql_invalid(d, "%s is not an accepted domain of the tenant %s", alias_domain,
                            t.domain);
    if (st != DIR_OK)
        return st;
    st = dsql_mailbox_load(d, alias, &other);
    if (st == DIR_OK)
        return dsql_invalid(d, "%s is a mailbox", alias);
    if (st != DIR_NOTFOUND)
        return st;
    st = dsql_alias_load(d, alias, owner);
    if (st == DIR_OK) {
        snprintf(d->err, sizeof d->err, "%s is already an alias of %s", alias, owner);
        return DIR_EXISTS;
    }
    if (st != DIR_NOTFOUND)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_ALIAS_INSERT);
    dsql_bind_text(s, 1, alias);
    sqlite3_bind_int64(s, 2, m.id);
    return dsql_run(d, s, "adding an alias");
}

enum dir_status dir_alias_add(struct directory *d, const char *address, const char *alias)
{
    char addr[SMTP_PATH_MAX + 1];
    char al[SMTP_PATH_MAX + 1];
    const char *domain;
    const char *alias_domain;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st == DIR_OK)
        st = dsql_norm_address(d, alias, al, &alias_domain);
    if (st == DIR_OK)
        st = dsql_tx_begin(d, "adding an alias");
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, alias_add_tx(d, addr, domain, al, alias_domain));
}

static enum dir_status alias_remove_tx(struct directory *d, const char *alias, const void *unused)
{
    (void)unused;
    sqlite3_stmt *s = dsql_stmt(d, ST_ALIAS_DELETE);
    dsql_bind_text(s, 1, alias);
    enum dir_status st = dsql_run(d, s, "removing an alias");
    if (st == DIR_OK && sqlite3_changes(d->db) == 0)
        return DIR_NOTFOUND;
    if (st != DIR_OK)
        return st;
    s = dsql_stmt(d, ST_SEND_AS_DROP_TARGET); /* grants to send as it go with it */
    dsql_bind_text(s, 1, alias);
    return dsql_run(d, s, "removing send-as grants to an alias");
}

enum dir_status dir_alias_remove(struct directory *d, const char *alias)
{
    return dsql_address_tx(d, alias, "removing an alias", alias_remove_tx, NULL);
}

enum dir_status dir_alias_list(struct directory *d, const char *address,
                               void (*cb)(const char *alias, void *), void *arg)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    struct dir_mailbox m;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st == DIR_OK)
        st = dsql_mailbox_load(d, addr, &m);
    if (st != DIR_OK)
        return st;
    return dsql_list_text(d, ST_ALIAS_LIST, m.id, cb, arg, "listing aliases");
}

/* --- authentication policies --- */

static enum dir_status policy_name_check(struct directory *d, const char *name)
{
    if (!policy_name_valid(name))
        return dsql_invalid(d,
                            "'%.100s' is not a valid policy name (1-%d letters, digits, '-', "
                            "'_' or '.'; not 'inherit')",
                            name != NULL ? name : "", POLICY_NAME_MAX);
    return DIR_OK;
}

enum dir_status dir_policy_add(struct directory *d, const char *name, bool allow_basic_smtp)
{
    enum dir_status st = policy_name_check(d, name);
    if (st == DIR_OK)
        st = dsql_tx_begin(d, "adding a policy");
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_POLICY_INSERT);
    dsql_bind_text(s, 1, name);
    sqlite3_bind_int(s, 2, allow_basic_smtp ? 1 : 0);
    st = dsql_tx_end(d, dsql_run(d, s, "adding a policy"));
    if (st == DIR_EXISTS)
        snprintf(d->err, sizeof d->err, "the policy '%s' exists", name);
    return st;
}

enum dir_status dir_policy_get(struct directory *d, const char *name, struct dir_policy *out)
{
    enum dir_status st = policy_name_check(d, name);
    if (st != DIR_OK)
        return st;
    return dsql_policy_load(d, name, out);
}

static enum dir_status policy_set_tx(struct directory *d, const char *name, const char *key,
                                     const char *value)
{
    struct dir_policy p;
    enum dir_status st = dsql_policy_load(d, name, &p);
    if (st != DIR_OK)
        return st;
    if (strcmp(key, "allow-basic-smtp") != 0)
        return dsql_invalid(d, "unknown policy setting '%.100s' (allow-basic-smtp)", key);
    int allow = parse_bool(value, "yes", "no");
    if (allow < 0)
        return dsql_invalid(d, "value must be yes or no");
    if (p.builtin)
        return dsql_invalid(d, "the policy '%s' is built in and cannot be changed", p.name);
    sqlite3_stmt *s = dsql_stmt(d, ST_POLICY_UPDATE);
    dsql_bind_text(s, 1, p.name);
    sqlite3_bind_int(s, 2, allow);
    return dsql_run(d, s, "changing a policy");
}

enum dir_status dir_policy_set(struct directory *d, const char *name, const char *key,
                               const char *value)
{
    enum dir_status st = policy_name_check(d, name);
    if (st != DIR_OK)
        return st;
    if (key == NULL || value == NULL)
        return dsql_invalid(d, "a setting needs a key and a value");
    st = dsql_tx_begin(d, "changing a policy");
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, policy_set_tx(d, name, key, value));
}

/* The first tenant or mailbox (by statement) that uses a policy, into who; DIR_NOTFOUND when
 * none. */
static enum dir_status policy_user(struct directory *d, enum dir_stmt id, const char *name,
                                   char *who, size_t cap)
{
    sqlite3_stmt *s = dsql_stmt(d, id);
    dsql_bind_text(s, 1, name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        sqlu_col_copy(s, 0, who, cap);
    return dsql_found(d, s, rc, "checking a policy's users");
}

static enum dir_status policy_remove_tx(struct directory *d, const char *name)
{
    struct dir_policy p;
    char who[SMTP_PATH_MAX + 1];
    enum dir_status st = dsql_policy_load(d, name, &p);
    if (st != DIR_OK)
        return st;
    if (p.builtin)
        return dsql_invalid(d, "the policy '%s' is built in and cannot be removed", p.name);
    st = policy_user(d, ST_POLICY_TENANT_USER, p.name, who, sizeof who);
    if (st == DIR_OK)
        return dsql_invalid(d, "the policy '%s' is the default policy of the tenant %s", p.name,
                            who);
    if (st != DIR_NOTFOUND)
        return st;
    st = policy_user(d, ST_POLICY_MAILBOX_USER, p.name, who, sizeof who);
    if (st == DIR_OK)
        return dsql_invalid(d, "the policy '%s' is assigned to the mailbox %s", p.name, who);
    if (st != DIR_NOTFOUND)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_POLICY_DELETE);
    dsql_bind_text(s, 1, p.name);
    return dsql_run(d, s, "removing a policy");
}

enum dir_status dir_policy_remove(struct directory *d, const char *name)
{
    enum dir_status st = policy_name_check(d, name);
    if (st == DIR_OK)
        st = dsql_tx_begin(d, "removing a policy");
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, policy_remove_tx(d, name));
}

enum dir_status dir_policy_list(struct directory *d, void (*cb)(const struct dir_policy *, void *),
                                void *arg)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_POLICY_LIST);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct dir_policy p = {0};
        COL_COPY(s, 0, p.name);
        p.allow_basic_smtp = sqlite3_column_int(s, 1) != 0;
        p.builtin = sqlite3_column_int(s, 2) != 0;
        cb(&p, arg);
    }
    return dsql_done(d, s, rc, "listing policies");
}

/* --- access rules --- */

/* Appends item to a comma-separated list in buf; false when it does not fit. */
static bool list_append(char *buf, size_t cap, const char *item)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, cap - used, "%s%s", used > 0 ? "," : "", item);
    return n >= 0 && (size_t)n < cap - used;
}

/* Parses and re-formats the rule's networks into canon. */
static enum dir_status rule_networks(struct directory *d, const char *text, char *canon, size_t cap)
{
    struct netmask nets[DIR_RULE_NETS_MAX + 1];
    char bad[NET_TEXT_MAX];
    int n = netmask_parse_list(text, nets, DIR_RULE_NETS_MAX + 1, bad, sizeof bad);
    if (n < 0)
        return dsql_invalid(d, "'%s' is not a network (use 192.0.2.0/24 or 2001:db8::/32)", bad);
    if (n == 0)
        return dsql_invalid(d, "a rule needs at least one network");
    if (n > DIR_RULE_NETS_MAX)
        return dsql_invalid(d, "a rule may list at most %d networks", DIR_RULE_NETS_MAX);
    canon[0] = '\0';
    for (int i = 0; i < n; i++) {
        char one[NET_TEXT_MAX];
        netmask_format(&nets[i], one, sizeof one);
        if (!list_append(canon, cap, one))
            return dsql_invalid(d, "the list of networks is too long");
    }
    return DIR_OK;
}

/* Checks that every listed mailbox is one of the tenant's and writes the normalized list. */
static enum dir_status rule_mailboxes(struct directory *d, const struct dir_tenant *t,
                                      const char *text, char *canon, size_t cap)
{
    char copy[DIR_TEXT_MAX];
    snprintf(copy, sizeof copy, "%s", text);
    canon[0] = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        char addr[SMTP_PATH_MAX + 1];
        const char *domain;
        struct dir_mailbox m;
        enum dir_status st = dsql_norm_address(d, tok, addr, &domain);
        if (st != DIR_OK)
            return st;
        st = dsql_mailbox_load(d, addr, &m);
        if (st == DIR_NOTFOUND || (st == DIR_OK && m.tenant_id != t->id))
            return dsql_invalid(d, "the tenant %s has no mailbox %s", t->domain, addr);
        if (st != DIR_OK)
            return st;
        if (!list_append(canon, cap, addr))
            return dsql_invalid(d, "the list of mailboxes is too long");
    }
    return DIR_OK;
}

static enum dir_status rule_add_tx(struct directory *d, const char *tenant_domain,
                                   struct dir_rule *rule)
{
    struct dir_tenant t;
    char networks[DIR_TEXT_MAX];
    char mailboxes[DIR_TEXT_MAX];
    enum dir_status st = tenant_required(d, tenant_domain, &t);
    if (st == DIR_OK)
        st = rule_networks(d, rule->networks, networks, sizeof networks);
    if (st == DIR_OK)
        st = rule_mailboxes(d, &t, rule->mailboxes, mailboxes, sizeof mailboxes);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_RULE_COUNT);
    sqlite3_bind_int64(s, 1, t.id);
    int rc = sqlite3_step(s);
    int count = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    int last = rc == SQLITE_ROW ? sqlite3_column_int(s, 1) : 0;
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return dsql_db_error(d, rc, "counting access rules");
    if (count >= DIR_RULES_MAX)
        return dsql_invalid(d, "the tenant %s already has %d access rules, the most it may have",
                            t.domain, DIR_RULES_MAX);
    int position = rule->position == 0 || rule->position > last ? last + 1 : rule->position;
    if (position <= last) {
        s = dsql_stmt(d, ST_RULE_SHIFT);
        sqlite3_bind_int64(s, 1, t.id);
        sqlite3_bind_int(s, 2, position);
        sqlite3_bind_int(s, 3, 1);
        if ((st = dsql_run(d, s, "making room for an access rule")) != DIR_OK)
            return st;
    }
    s = dsql_stmt(d, ST_RULE_INSERT);
    sqlite3_bind_int64(s, 1, t.id);
    sqlite3_bind_int(s, 2, position);
    dsql_bind_text(s, 3, rule->allow ? "allow-basic" : "block-basic");
    sqlite3_bind_int(s, 4, rule->outside ? 1 : 0);
    dsql_bind_text(s, 5, networks);
    dsql_bind_text(s, 6, mailboxes);
    dsql_bind_text(s, 7, rule->comment);
    if ((st = dsql_run(d, s, "adding an access rule")) != DIR_OK)
        return st;
    rule->id = sqlite3_last_insert_rowid(d->db);
    rule->tenant_id = t.id;
    rule->position = position;
    memcpy(rule->networks, networks, sizeof networks);
    memcpy(rule->mailboxes, mailboxes, sizeof mailboxes);
    return DIR_OK;
}

enum dir_status dir_rule_add(struct directory *d, const char *tenant_domain, struct dir_rule *rule)
{
    char tdom[SMTP_DOMAIN_MAX + 1];
    enum dir_status st = dsql_norm_domain(d, tenant_domain, tdom);
    if (st != DIR_OK)
        return st;
    if (rule->position < 0)
        return dsql_invalid(d, "a rule's position must be 0 (the end) or 1 and up");
    if (strnlen(rule->networks, sizeof rule->networks) == sizeof rule->networks ||
        strnlen(rule->mailboxes, sizeof rule->mailboxes) == sizeof rule->mailboxes ||
        strnlen(rule->comment, sizeof rule->comment) == sizeof rule->comment)
        return dsql_invalid(d, "a rule's text is too long");
    st = dsql_tx_begin(d, "adding an access rule");
    if (st != DIR_OK)
        return st;
    struct dir_rule work = *rule;
    st = dsql_tx_end(d, rule_add_tx(d, tdom, &work));
    if (st == DIR_OK)
        *rule = work;
    return st;
}

static enum dir_status rule_remove_tx(struct directory *d, const char *tenant_domain,
                                      const void *arg)
{
    int64_t id = *(const int64_t *)arg;
    struct dir_tenant t;
    enum dir_status st = tenant_required(d, tenant_domain, &t);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_RULE_POSITION);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, t.id);
    int rc = sqlite3_step(s);
    int position = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlu_finish(s);
    if (rc == SQLITE_DONE) {
        snprintf(d->err, sizeof d->err, "the tenant %s has no access rule %lld", t.domain,
                 (long long)id);
        return DIR_NOTFOUND;
    }
    if (rc != SQLITE_ROW)
        return dsql_db_error(d, rc, "reading an access rule");
    s = dsql_stmt(d, ST_RULE_DELETE);
    sqlite3_bind_int64(s, 1, id);
    if ((st = dsql_run(d, s, "removing an access rule")) != DIR_OK)
        return st;
    s = dsql_stmt(d, ST_RULE_SHIFT); /* close the gap */
    sqlite3_bind_int64(s, 1, t.id);
    sqlite3_bind_int(s, 2, position + 1);
    sqlite3_bind_int(s, 3, -1);
    return dsql_run(d, s, "renumbering access rules");
}

enum dir_status dir_rule_remove(struct directory *d, const char *tenant_domain, int64_t id)
{
    return dsql_domain_tx(d, tenant_domain, "removing an access rule", rule_remove_tx, &id);
}

enum dir_status dir_rule_list(struct directory *d, const char *tenant_domain,
                              void (*cb)(const struct dir_rule *, void *), void *arg)
{
    char tdom[SMTP_DOMAIN_MAX + 1];
    struct dir_tenant t;
    enum dir_status st = dsql_norm_domain(d, tenant_domain, tdom);
    if (st == DIR_OK)
        st = tenant_required(d, tdom, &t);
    if (st != DIR_OK)
        return st;
    return dsql_rules_each(d, t.id, cb, arg);
}
