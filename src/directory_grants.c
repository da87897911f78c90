/* directory_grants.c: owns, in the SQLite directory backend (directory.h), the checks of the
 * values of the OAuth and limit settings (issuer, jwks, audience, scope, identity claim, limits;
 * RFC 7519 StringOrURI, RFC 6749 3.3 scope tokens, RFC 3986 URLs), and what a mailbox lends or
 * is lent: send-as grants (another mailbox or alias of the same tenant it may use as a
 * sender, SPEC 2 and 4), access grants (OAuth principals that may authenticate as it, SPEC 5) and
 * app passwords (per-device secrets, of which only a BLAKE2b-256 hash is stored, SPEC 2). Each
 * change is one write transaction that bumps the generation counter; the server-side reads
 * (dir_may_send_as, dir_may_act_as, dir_app_password_match/touch) are in directory_sqlite.c.
 * Addresses per RFC 5321 4.1.2 (normalized to lower case). List callbacks run while the list's
 * statement is active: a callback may call other directory functions on the same connection, but
 * not the same list function again. */
#include "directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "directory_sqlite_int.h"
#include "smtp_parse.h"

#define APP_PASSWORDS_MAX 20 /* per mailbox */
#define APP_PASSWORD_LABEL_MAX (sizeof((struct dir_app_password *)0)->label - 1)

/* The mailbox at a normalized address; DIR_NOTFOUND with "no mailbox ADDRESS". */
static enum dir_status mailbox_required(struct directory *d, const char *address,
                                        struct dir_mailbox *out)
{
    enum dir_status st = dsql_mailbox_load(d, address, out);
    if (st == DIR_NOTFOUND)
        snprintf(d->err, sizeof d->err, "no mailbox %s", address);
    return st;
}

/* Removes what the mailbox at a normalized address holds under key (a send-as address, a
 * principal, a label) with the DELETE statement id (?1 the mailbox's id, ?2 the key);
 * DIR_NOTFOUND with `missing` when it holds nothing under that key. */
static enum dir_status mailbox_delete(struct directory *d, const char *address, enum dir_stmt id,
                                      const char *key, const char *what, const char *missing)
{
    struct dir_mailbox m;
    enum dir_status st = mailbox_required(d, address, &m);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, id);
    sqlite3_bind_int64(s, 1, m.id);
    dsql_bind_text(s, 2, key);
    st = dsql_run(d, s, what);
    if (st == DIR_OK && sqlite3_changes(d->db) == 0) {
        snprintf(d->err, sizeof d->err, "%s", missing);
        return DIR_NOTFOUND;
    }
    return st;
}

/* Calls cb with column 0 (text) of each row of a list statement for one mailbox. */
static enum dir_status list_text(struct directory *d, const char *address, enum dir_stmt id,
                                 void (*cb)(const char *, void *), void *arg, const char *what)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    struct dir_mailbox m;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st == DIR_OK)
        st = mailbox_required(d, addr, &m);
    if (st != DIR_OK)
        return st;
    return dsql_list_text(d, id, m.id, cb, arg, what);
}

/* --- values of the OAuth and limit settings --- */

/* 1..max octets, each in [lo, 0x7e]: lo 0x21 for text without spaces, 0x20 with spaces. */
static bool ascii_text(const char *v, size_t max, unsigned char lo)
{
    size_t len = strnlen(v, max + 1);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < lo || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

static bool is_builtin(const char *v)
{
    return strcasecmp(v, "builtin") == 0;
}

/* An http:// or https:// URL (RFC 3986 3): 1 when valid, 0 when it is not one at all, -1 when
 * it is a bad one (the reason set as for DIR_INVALID). The host is a domain, an IPv4 address or
 * [IPv6]; no user information; an optional port 1-65535. http:// only for the loopback host: a
 * token key or issuer fetched in clear text could be replaced on the way. */
static int url_check(struct directory *d, const char *what, const char *v)
{
    bool tls = strncasecmp(v, "https://", 8) == 0;
    if (!tls && strncasecmp(v, "http://", 7) != 0)
        return 0;
    const char *host = v + (tls ? 8 : 7);
    size_t alen = strcspn(host, "/?#");
    size_t hlen = 0;
    if (host[0] == '[') {
        hlen = strspn(host + 1, "0123456789abcdefABCDEF:.") + 1;
        hlen = host[hlen] == ']' && hlen > 1 ? hlen + 1 : 0;
    } else {
        char dom[SMTP_DOMAIN_MAX + 1];
        char copy[SMTP_DOMAIN_MAX + 1];
        hlen = strcspn(host, ":/?#");
        snprintf(copy, sizeof copy, "%.*s", (int)hlen, host);
        if (hlen > SMTP_DOMAIN_MAX || dsql_norm_domain(d, copy, dom) != DIR_OK)
            hlen = 0;
    }
    bool port_ok = hlen == alen;
    if (hlen > 0 && host[hlen] == ':') {
        size_t digits = strspn(host + hlen + 1, "0123456789");
        long port = digits > 0 && digits <= 5 ? strtol(host + hlen + 1, NULL, 10) : 0;
        port_ok = hlen + 1 + digits == alen && port >= 1 && port <= 65535;
    }
    if (hlen == 0 || !port_ok) {
        dsql_invalid(d, "the %s '%.300s' is not a valid URL (https://HOST[:PORT][/PATH])", what, v);
        return -1;
    }
    if (!tls && !((hlen == 9 && strncasecmp(host, "localhost", 9) == 0) ||
                  (hlen == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
                  (hlen == 5 && strncmp(host, "[::1]", 5) == 0))) {
        dsql_invalid(d,
                     "the %s '%.300s' must use https:// (http:// is allowed only for "
                     "localhost, 127.0.0.1 and [::1])",
                     what, v);
        return -1;
    }
    return 1;
}

/* issuer: builtin (stored as "") or a StringOrURI (RFC 7519 2) without spaces: an http(s) URL
 * checked as such, another URI ("scheme:..." per RFC 3986 3.1), or a plain name. */
enum dir_status dsql_check_issuer(struct directory *d, const char *v, char *out, size_t cap)
{
    if (is_builtin(v)) {
        snprintf(out, cap, "%s", "");
        return DIR_OK;
    }
    if (!ascii_text(v, cap - 1, 0x21))
        return dsql_invalid(d,
                            "the issuer must be builtin, an https:// URL or a name of 1-%zu "
                            "printable characters without spaces",
                            cap - 1);
    int url = url_check(d, "issuer", v);
    if (url < 0)
        return DIR_INVALID;
    const char *colon = strchr(v, ':');
    if (url == 0 && colon != NULL) {
        size_t scheme = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789+-.");
        if (colon == v || !((v[0] | 0x20) >= 'a' && (v[0] | 0x20) <= 'z') || v + scheme != colon)
            return dsql_invalid(d,
                                "the issuer '%.300s' has a ':' but is not a URI (RFC 7519 "
                                "StringOrURI): start it with a scheme such as https:",
                                v);
    }
    snprintf(out, cap, "%s", v);
    return DIR_OK;
}

/* jwks: builtin (stored as ""), an absolute file path, or an http(s) URL as for the issuer. */
enum dir_status dsql_check_jwks(struct directory *d, const char *v, char *out, size_t cap)
{
    if (is_builtin(v)) {
        snprintf(out, cap, "%s", "");
        return DIR_OK;
    }
    if (v[0] == '/') {
        size_t len = strnlen(v, cap);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                return dsql_invalid(d, "the jwks file path has a control character");
        if (len >= cap)
            return dsql_invalid(d, "the jwks file path is longer than %zu characters", cap - 1);
        snprintf(out, cap, "%s", v);
        return DIR_OK;
    }
    int url = ascii_text(v, cap - 1, 0x21) ? url_check(d, "jwks", v) : 0;
    if (url < 0)
        return DIR_INVALID;
    if (url == 0)
        return dsql_invalid(d,
                            "the jwks must be builtin, an absolute file path or an https:// URL");
    snprintf(out, cap, "%s", v);
    return DIR_OK;
}

/* audience: a StringOrURI without spaces (Entra uses "api://..." or a GUID). */
enum dir_status dsql_check_audience(struct directory *d, const char *v, char *out, size_t cap)
{
    if (!ascii_text(v, cap - 1, 0x21))
        return dsql_invalid(d, "the audience must be 1-%zu printable characters without spaces",
                            cap - 1);
    snprintf(out, cap, "%s", v);
    return DIR_OK;
}

/* scope: one scope-token (RFC 6749 3.3): %x21 / %x23-5B / %x5D-7E. */
enum dir_status dsql_check_scope(struct directory *d, const char *v, char *out, size_t cap)
{
    if (!ascii_text(v, cap - 1, 0x21) || strpbrk(v, "\"\\") != NULL)
        return dsql_invalid(d,
                            "the scope must be one scope token (RFC 6749 3.3): 1-%zu printable "
                            "characters, no spaces, quotes or backslashes",
                            cap - 1);
    snprintf(out, cap, "%s", v);
    return DIR_OK;
}

/* identity-claim: email, upn, preferred_username, or any (stored as "": each in that order). */
enum dir_status dsql_check_claim(struct directory *d, const char *v, char *out, size_t cap)
{
    static const char *const claims[] = {"email", "upn", "preferred_username"};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++)
        if (strcasecmp(v, claims[i]) == 0) {
            snprintf(out, cap, "%s", claims[i]);
            return DIR_OK;
        }
    if (strcasecmp(v, "any") == 0) {
        snprintf(out, cap, "%s", "");
        return DIR_OK;
    }
    return dsql_invalid(d, "value must be email, upn, preferred_username or any");
}

/* A limit: decimal 1..DSQL_LIMIT_MAX; "inherit" gives 0 when inherit_ok. */
enum dir_status dsql_check_limit(struct directory *d, const char *v, bool inherit_ok, unsigned *out)
{
    if (inherit_ok && strcasecmp(v, "inherit") == 0) {
        *out = 0;
        return DIR_OK;
    }
    size_t digits = strspn(v, "0123456789");
    long n = digits > 0 && digits <= 7 && v[digits] == '\0' ? strtol(v, NULL, 10) : 0;
    if (n < 1 || n > DSQL_LIMIT_MAX)
        return dsql_invalid(d, "value must be a whole number from 1 to %d%s", DSQL_LIMIT_MAX,
                            inherit_ok ? ", or inherit" : "");
    *out = (unsigned)n;
    return DIR_OK;
}

/* --- send-as grants --- */

/* The mailbox that `other` is (a mailbox) or belongs to (an alias), in owner; *is_alias says
 * which. DIR_NOTFOUND when it is neither. */
static enum dir_status sender_owner(struct directory *d, const char *other,
                                    struct dir_mailbox *owner, bool *is_alias)
{
    char owner_address[SMTP_PATH_MAX + 1];
    *is_alias = false;
    enum dir_status st = dsql_mailbox_load(d, other, owner);
    if (st != DIR_NOTFOUND)
        return st;
    st = dsql_alias_load(d, other, owner_address);
    if (st != DIR_OK)
        return st;
    *is_alias = true;
    return dsql_mailbox_load(d, owner_address, owner);
}

static enum dir_status send_as_grant_tx(struct directory *d, const char *address, const void *arg)
{
    const char *other = arg;
    struct dir_mailbox m;
    struct dir_mailbox owner;
    struct dir_tenant t;
    bool is_alias;
    enum dir_status st = mailbox_required(d, address, &m);
    if (st != DIR_OK)
        return st;
    if (strcmp(other, address) == 0)
        return dsql_invalid(d, "%s is the mailbox itself; it may always send as itself", address);
    st = sender_owner(d, other, &owner, &is_alias);
    if (st == DIR_OK && owner.id == m.id)
        return dsql_invalid(d, "%s is already an alias of %s", other, address);
    if (st == DIR_NOTFOUND || (st == DIR_OK && owner.tenant_id != m.tenant_id)) {
        st = dsql_tenant_load(d, strrchr(address, '@') + 1, &t);
        if (st != DIR_OK && st != DIR_NOTFOUND)
            return st;
        return dsql_invalid(d, "%s is not a mailbox or alias of the tenant %s", other,
                            st == DIR_OK ? t.domain : strrchr(address, '@') + 1);
    }
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_SEND_AS_INSERT);
    sqlite3_bind_int64(s, 1, m.id);
    dsql_bind_text(s, 2, other);
    st = dsql_run(d, s, "adding a send-as grant");
    if (st == DIR_EXISTS)
        snprintf(d->err, sizeof d->err, "%s may already send as %s", address, other);
    return st;
}

/* Normalizes the other address, then runs work(d, address, other) as one write. */
static enum dir_status send_as_write(struct directory *d, const char *address, const char *other,
                                     const char *what, dsql_work_fn work)
{
    char oth[SMTP_PATH_MAX + 1];
    const char *domain;
    enum dir_status st = dsql_norm_address(d, other, oth, &domain);
    if (st != DIR_OK)
        return st;
    return dsql_address_tx(d, address, what, work, oth);
}

enum dir_status dir_send_as_grant(struct directory *d, const char *address, const char *other)
{
    return send_as_write(d, address, other, "adding a send-as grant", send_as_grant_tx);
}

static enum dir_status send_as_revoke_tx(struct directory *d, const char *address, const void *arg)
{
    char missing[2 * SMTP_PATH_MAX + 64];
    snprintf(missing, sizeof missing, "%s has no grant to send as %s", address, (const char *)arg);
    return mailbox_delete(d, address, ST_SEND_AS_DELETE, arg, "removing a send-as grant", missing);
}

enum dir_status dir_send_as_revoke(struct directory *d, const char *address, const char *other)
{
    return send_as_write(d, address, other, "removing a send-as grant", send_as_revoke_tx);
}

enum dir_status dir_send_as_list(struct directory *d, const char *address,
                                 void (*cb)(const char *other, void *), void *arg)
{
    return list_text(d, address, ST_SEND_AS_LIST, cb, arg, "listing send-as grants");
}

/* --- access grants --- */

/* An OAuth principal: 1-256 octets of printable UTF-8 without spaces or control characters
 * (an address, a UPN, an application's object id). */
static enum dir_status principal_check(struct directory *d, const char *principal)
{
    size_t len = principal != NULL ? strnlen(principal, DSQL_PRINCIPAL_MAX + 1) : 0;
    bool ok = len > 0 && len <= DSQL_PRINCIPAL_MAX && smtp_utf8_valid(principal, len);
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)principal[i] > 0x20 && principal[i] != 0x7f;
    if (!ok)
        return dsql_invalid(d,
                            "a principal must be 1-%d printable characters without spaces "
                            "(an address, a UPN or an application's id)",
                            DSQL_PRINCIPAL_MAX);
    return DIR_OK;
}

static enum dir_status access_grant_tx(struct directory *d, const char *address, const void *arg)
{
    const char *principal = arg;
    struct dir_mailbox m;
    enum dir_status st = mailbox_required(d, address, &m);
    if (st != DIR_OK)
        return st;
    if (strcasecmp(principal, address) == 0)
        return dsql_invalid(d, "%s is the mailbox itself; it needs no grant", address);
    sqlite3_stmt *s = dsql_stmt(d, ST_ACCESS_INSERT);
    sqlite3_bind_int64(s, 1, m.id);
    dsql_bind_text(s, 2, principal);
    st = dsql_run(d, s, "adding an access grant");
    if (st == DIR_EXISTS)
        snprintf(d->err, sizeof d->err, "%s may already act as %s", principal, address);
    return st;
}

enum dir_status dir_access_grant(struct directory *d, const char *address, const char *principal)
{
    enum dir_status st = principal_check(d, principal);
    if (st != DIR_OK)
        return st;
    return dsql_address_tx(d, address, "adding an access grant", access_grant_tx, principal);
}

static enum dir_status access_revoke_tx(struct directory *d, const char *address, const void *arg)
{
    char missing[SMTP_PATH_MAX + DSQL_PRINCIPAL_MAX + 64];
    snprintf(missing, sizeof missing, "%s has no access grant to %s", (const char *)arg, address);
    return mailbox_delete(d, address, ST_ACCESS_DELETE, arg, "removing an access grant", missing);
}

enum dir_status dir_access_revoke(struct directory *d, const char *address, const char *principal)
{
    enum dir_status st = principal_check(d, principal);
    if (st != DIR_OK)
        return st;
    return dsql_address_tx(d, address, "removing an access grant", access_revoke_tx, principal);
}

enum dir_status dir_access_list(struct directory *d, const char *address,
                                void (*cb)(const char *principal, void *), void *arg)
{
    return list_text(d, address, ST_ACCESS_LIST, cb, arg, "listing access grants");
}

/* --- app passwords --- */

/* 1-63 printable ASCII characters; inner spaces allowed ("Alice's iPhone"), not at either end. */
static enum dir_status label_check(struct directory *d, const char *label)
{
    size_t len = label != NULL ? strnlen(label, APP_PASSWORD_LABEL_MAX + 1) : 0;
    bool ok = len > 0 && len <= APP_PASSWORD_LABEL_MAX && label[0] != ' ' && label[len - 1] != ' ';
    for (size_t i = 0; ok && i < len; i++)
        ok = label[i] >= 0x20 && label[i] <= 0x7e;
    if (!ok)
        return dsql_invalid(d,
                            "an app password label must be 1-%zu printable ASCII characters, "
                            "not starting or ending with a space",
                            APP_PASSWORD_LABEL_MAX);
    return DIR_OK;
}

struct app_password_new {
    const char *label;
    const char *hash_hex;
};

static enum dir_status app_password_add_tx(struct directory *d, const char *address,
                                           const void *arg)
{
    const struct app_password_new *a = arg;
    struct dir_mailbox m;
    enum dir_status st = mailbox_required(d, address, &m);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_APP_PW_COUNT);
    sqlite3_bind_int64(s, 1, m.id);
    dsql_bind_text(s, 2, a->label);
    dsql_bind_text(s, 3, a->hash_hex);
    int rc = sqlite3_step(s);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    bool same_label = rc == SQLITE_ROW && sqlite3_column_int64(s, 1) > 0;
    bool same_hash = rc == SQLITE_ROW && sqlite3_column_int64(s, 2) > 0;
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return dsql_db_error(d, rc, "counting app passwords");
    if (same_label) {
        snprintf(d->err, sizeof d->err, "%s already has an app password labelled '%s'", address,
                 a->label);
        return DIR_EXISTS;
    }
    if (same_hash)
        return dsql_invalid(d, "%s already has this app password under another label", address);
    if (count >= APP_PASSWORDS_MAX)
        return dsql_invalid(d, "%s already has %d app passwords, the most it may have; revoke one",
                            address, APP_PASSWORDS_MAX);
    s = dsql_stmt(d, ST_APP_PW_INSERT);
    sqlite3_bind_int64(s, 1, m.id);
    dsql_bind_text(s, 2, a->label);
    dsql_bind_text(s, 3, a->hash_hex);
    sqlite3_bind_int64(s, 4, (int64_t)time(NULL));
    return dsql_run(d, s, "adding an app password");
}

enum dir_status dir_app_password_add(struct directory *d, const char *address, const char *label,
                                     const char *hash_hex)
{
    enum dir_status st = label_check(d, label);
    if (st != DIR_OK)
        return st;
    if (!dsql_hash_hex_valid(hash_hex))
        return dsql_invalid(d, "an app password hash must be %d lower-case hex digits",
                            DSQL_HASH_HEX);
    struct app_password_new a = {.label = label, .hash_hex = hash_hex};
    return dsql_address_tx(d, address, "adding an app password", app_password_add_tx, &a);
}

static enum dir_status app_password_revoke_tx(struct directory *d, const char *address,
                                              const void *arg)
{
    char missing[SMTP_PATH_MAX + APP_PASSWORD_LABEL_MAX + 64];
    snprintf(missing, sizeof missing, "%s has no app password labelled '%s'", address,
             (const char *)arg);
    return mailbox_delete(d, address, ST_APP_PW_DELETE, arg, "revoking an app password", missing);
}

enum dir_status dir_app_password_revoke(struct directory *d, const char *address, const char *label)
{
    enum dir_status st = label_check(d, label);
    if (st != DIR_OK)
        return st;
    return dsql_address_tx(d, address, "revoking an app password", app_password_revoke_tx, label);
}

enum dir_status dir_app_password_list(struct directory *d, const char *address,
                                      void (*cb)(const struct dir_app_password *, void *),
                                      void *arg)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    struct dir_mailbox m;
    enum dir_status st = dsql_norm_address(d, address, addr, &domain);
    if (st == DIR_OK)
        st = mailbox_required(d, addr, &m);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_APP_PW_LIST);
    sqlite3_bind_int64(s, 1, m.id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct dir_app_password p = {0};
        p.id = sqlite3_column_int64(s, 0);
        p.mailbox_id = sqlite3_column_int64(s, 1);
        COL_COPY(s, 2, p.label);
        p.created = sqlite3_column_int64(s, 3);
        p.last_used = sqlite3_column_int64(s, 4);
        cb(&p, arg);
    }
    return dsql_done(d, s, rc, "listing app passwords");
}
