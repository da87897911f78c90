/* directory_routes.c: owns the delivery routes of the SQLite directory (directory.h, "delivery
 * routes"; the `routes` table of migration 3 in directory_sqlite.c; docs/directory.md): one route
 * per tenant, read, validated into its canonical stored form, replaced, removed, and the rotated
 * refresh token stored. A route relays to a smarthost (RFC 5321; STARTTLS RFC 3207 or implicit
 * TLS RFC 8314; AUTH RFC 4954 PLAIN RFC 4616, LOGIN, or XOAUTH2 with a token from an OAuth 2.0
 * endpoint, RFC 6749 4.4 client credentials or 6 refresh token), or delivers over LMTP (RFC 2033)
 * or into Maildir directories. Secrets (the upstream password or client secret, the refresh
 * token) are stored as given, because they must be presented upstream; the copies this file
 * makes are wiped after use. Every change bumps the directory generation. */
#include "directory.h"
#include "directory_sqlite_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>
#include <sqlite3.h>

#define ROUTE_PORT_RELAY 587
#define ROUTE_PORT_RELAY_IMPLICIT 465 /* RFC 8314 3.3 submissions */
#define ROUTE_PORT_LMTP 24
#define ROUTE_MAX_CONNECTIONS_DEFAULT 10
#define ROUTE_MAX_CONNECTIONS_MAX 1000

static const char *const kind_names[] = {
    [ROUTE_NONE] = "none",
    [ROUTE_RELAY] = "relay",
    [ROUTE_LMTP] = "lmtp",
    [ROUTE_MAILDIR] = "maildir",
};
static const char *const tls_modes[] = {"required", "opportunistic", "none", "implicit"};
static const char *const auth_mechs[] = {"none", "plain", "login", "xoauth2"};
static const char *const grants[] = {"client_credentials", "refresh_token"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool one_of(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return true;
    return false;
}

/* A field of cap bytes holds a terminated string of octets >= `lowest` (0x20: spaces allowed,
 * 0x21: none), no DEL; octets >= 0x80 (UTF-8) only when utf8. */
static bool text_ok(const char *v, size_t cap, unsigned char lowest, bool utf8)
{
    size_t n = strnlen(v, cap);
    if (n == cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < lowest || ch == 0x7f || (ch >= 0x80 && !utf8))
            return false;
    }
    return true;
}

/* Checks a text field of the route: `name` for the message. */
static enum dir_status check_text(struct directory *d, const char *name, const char *v, size_t cap,
                                  unsigned char lowest, bool utf8)
{
    if (!text_ok(v, cap, lowest, utf8))
        return dsql_invalid(d, "the %s must be at most %zu printable characters%s", name, cap - 1,
                            lowest > 0x20 ? " without spaces" : "");
    return DIR_OK;
}

/* A host name (RFC 1035, lower-cased), an IPv4 address or an IPv6 address (brackets optional,
 * stored without). */
static enum dir_status check_host(struct directory *d, const char *in, char out[256])
{
    if (!text_ok(in, 256, 0x21, false) || in[0] == '\0')
        return dsql_invalid(d, "a relay or lmtp route needs a host name or address");
    char bare[256];
    size_t n = strlen(in);
    if (in[0] == '[' && n > 2 && in[n - 1] == ']') {
        memcpy(bare, in + 1, n - 2);
        bare[n - 2] = '\0';
    } else {
        snprintf(bare, sizeof bare, "%s", in);
    }
    unsigned char addr[16];
    if (inet_pton(AF_INET, bare, addr) == 1 || inet_pton(AF_INET6, bare, addr) == 1) {
        snprintf(out, 256, "%s", bare);
        return DIR_OK;
    }
    if (in[0] == '[') /* brackets hold an address literal only */
        return dsql_invalid(d, "'%.300s' is not a valid host name or IP address", in);
    _Static_assert(SMTP_DOMAIN_MAX + 1 == 256, "a route's host holds a domain");
    if (dsql_norm_domain(d, bare, out) != DIR_OK)
        return dsql_invalid(d, "'%.300s' is not a valid host name or IP address", in);
    return DIR_OK;
}

/* https://HOST..., or http:// to 127.0.0.1, [::1] or localhost (a token endpoint on the same
 * machine); no spaces or control characters. */
static bool token_url_ok(const char *url, size_t cap)
{
    if (!text_ok(url, cap, 0x21, false))
        return false;
    if (strncasecmp(url, "https://", 8) == 0)
        return url[8] != '\0' && url[8] != '/' && url[8] != ':';
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    static const char *const loopback[] = {"127.0.0.1", "[::1]", "localhost"};
    const char *host = url + 7;
    for (size_t i = 0; i < COUNT(loopback); i++) {
        size_t n = strlen(loopback[i]);
        if (strncasecmp(host, loopback[i], n) == 0 &&
            (host[n] == '\0' || host[n] == ':' || host[n] == '/'))
            return true;
    }
    return false;
}

/* An absolute path template with %u (local part) or %a (address), only the escapes %d, %u, %a
 * and %%, and no "." or ".." segment. */
static enum dir_status check_maildir(struct directory *d, const char *t, size_t cap)
{
    if (!text_ok(t, cap, 0x20, true) || t[0] != '/')
        return dsql_invalid(d,
                            "a maildir route needs an absolute path template (at most %zu "
                            "characters) with %%u or %%a",
                            cap - 1);
    bool user = false;
    for (const char *p = t; *p != '\0'; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == 'u' || *p == 'a')
            user = true;
        else if (*p != 'd' && *p != '%')
            return dsql_invalid(d, "the maildir template may use only %%d, %%u, %%a and %%%%");
    }
    if (!user)
        return dsql_invalid(d, "the maildir template must contain %%u or %%a (one directory "
                               "per recipient)");
    for (const char *seg = t; seg != NULL; seg = strchr(seg + 1, '/')) {
        const char *s = seg + 1;
        size_t len = strcspn(s, "/");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return dsql_invalid(d, "the maildir template may not contain . or .. segments");
    }
    return DIR_OK;
}

/* The transport part of a relay or lmtp route into out: host, port, TLS, verification, CA. */
static enum dir_status check_transport(struct directory *d, const struct dir_route *in,
                                       struct dir_route *out)
{
    enum dir_status st = check_host(d, in->host, out->host);
    if (st != DIR_OK)
        return st;
    if (!text_ok(in->tls, sizeof in->tls, 0x21, false) ||
        (in->tls[0] != '\0' && !one_of(in->tls, tls_modes, COUNT(tls_modes))))
        return dsql_invalid(d, "tls must be required, opportunistic, none or implicit");
    snprintf(out->tls, sizeof out->tls, "%s",
             in->tls[0] != '\0'        ? in->tls
             : in->kind == ROUTE_RELAY ? "required"
                                       : "none");
    if (in->port < 0 || in->port > 65535)
        return dsql_invalid(d, "the port must be 1-65535");
    out->port = in->port != 0                       ? in->port
                : in->kind == ROUTE_LMTP            ? ROUTE_PORT_LMTP
                : strcmp(out->tls, "implicit") == 0 ? ROUTE_PORT_RELAY_IMPLICIT
                                                    : ROUTE_PORT_RELAY;
    out->verify = in->verify;
    if ((st = check_text(d, "CA file", in->cafile, sizeof in->cafile, 0x20, true)) != DIR_OK)
        return st;
    if (in->cafile[0] != '\0' && in->cafile[0] != '/')
        return dsql_invalid(d, "the CA file must be an absolute path");
    if (in->cafile[0] != '\0' && strcmp(out->tls, "none") == 0)
        return dsql_invalid(d, "a CA file needs TLS (tls is none)");
    snprintf(out->cafile, sizeof out->cafile, "%s", in->cafile);
    return DIR_OK;
}

/* The XOAUTH2 settings of a relay route into out (user and secret are checked by the caller). */
static enum dir_status check_oauth(struct directory *d, const struct dir_route *in,
                                   struct dir_route *out)
{
    if (!token_url_ok(in->token_url, sizeof in->token_url))
        return dsql_invalid(d, "xoauth2 needs a token URL: https://... (http:// only to "
                               "127.0.0.1, [::1] or localhost), without spaces");
    if (in->client_id[0] == '\0')
        return dsql_invalid(d, "xoauth2 needs a client id");
    enum dir_status st =
        check_text(d, "client id", in->client_id, sizeof in->client_id, 0x21, false);
    if (st == DIR_OK)
        st = check_text(d, "scope", in->scope, sizeof in->scope, 0x20, false);
    if (st == DIR_OK)
        st = check_text(d, "refresh token", in->refresh_token, sizeof in->refresh_token, 0x21,
                        false);
    if (st != DIR_OK)
        return st;
    if (!text_ok(in->grant, sizeof in->grant, 0x21, false) ||
        (in->grant[0] != '\0' && !one_of(in->grant, grants, COUNT(grants))))
        return dsql_invalid(d, "the grant must be client_credentials or refresh_token");
    /* No grant named: a refresh token means that grant. */
    const char *grant = in->grant[0] != '\0'           ? in->grant
                        : in->refresh_token[0] != '\0' ? "refresh_token"
                                                       : "client_credentials";
    if (strcmp(grant, "client_credentials") == 0 && in->secret[0] == '\0')
        return dsql_invalid(d, "the client_credentials grant needs a client secret");
    if (strcmp(grant, "client_credentials") == 0 && in->refresh_token[0] != '\0')
        return dsql_invalid(d, "a refresh token needs the refresh_token grant");
    if (strcmp(grant, "refresh_token") == 0 && in->refresh_token[0] == '\0')
        return dsql_invalid(d, "the refresh_token grant needs a refresh token");
    snprintf(out->token_url, sizeof out->token_url, "%s", in->token_url);
    snprintf(out->client_id, sizeof out->client_id, "%s", in->client_id);
    snprintf(out->scope, sizeof out->scope, "%s", in->scope);
    snprintf(out->grant, sizeof out->grant, "%s", grant);
    snprintf(out->refresh_token, sizeof out->refresh_token, "%s", in->refresh_token);
    out->secret_in_body = in->secret_in_body;
    return DIR_OK;
}

static bool oauth_fields_set(const struct dir_route *r)
{
    return r->token_url[0] != '\0' || r->client_id[0] != '\0' || r->scope[0] != '\0' ||
           r->grant[0] != '\0' || r->refresh_token[0] != '\0' || r->secret_in_body;
}

/* The authentication of a relay route into out. */
static enum dir_status check_auth(struct directory *d, const struct dir_route *in,
                                  struct dir_route *out)
{
    if (!text_ok(in->auth, sizeof in->auth, 0x21, false) ||
        (in->auth[0] != '\0' && !one_of(in->auth, auth_mechs, COUNT(auth_mechs))))
        return dsql_invalid(d, "auth must be none, plain, login or xoauth2");
    const char *auth = in->auth[0] != '\0' ? in->auth : "none";
    snprintf(out->auth, sizeof out->auth, "%s", auth);
    bool xoauth2 = strcmp(auth, "xoauth2") == 0;
    if (!xoauth2 && oauth_fields_set(in))
        return dsql_invalid(d, "a token URL, client id, scope, grant, refresh token or "
                               "secret-in-body needs auth xoauth2");
    if (strcmp(auth, "none") == 0) {
        if (in->user[0] != '\0' || in->secret[0] != '\0')
            return dsql_invalid(d, "a user or secret needs auth plain, login or xoauth2");
        return DIR_OK;
    }
    enum dir_status st = check_text(d, "user", in->user, sizeof in->user, 0x20, true);
    if (st == DIR_OK)
        st = check_text(d, "secret", in->secret, sizeof in->secret, 0x20, true);
    if (st != DIR_OK)
        return st;
    if (in->user[0] == '\0')
        return dsql_invalid(d, "auth %s needs a user", auth);
    if (!xoauth2 && in->secret[0] == '\0')
        return dsql_invalid(d, "auth %s needs a secret (the upstream password)", auth);
    snprintf(out->user, sizeof out->user, "%s", in->user);
    snprintf(out->secret, sizeof out->secret, "%s", in->secret);
    return xoauth2 ? check_oauth(d, in, out) : DIR_OK;
}

/* Validates a route into its canonical stored form (defaults filled in, nothing that does not
 * apply to its kind). */
static enum dir_status route_check(struct directory *d, const struct dir_route *in,
                                   struct dir_route *out)
{
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return dsql_invalid(d, "no route given");
    if ((unsigned)in->kind > (unsigned)ROUTE_MAILDIR)
        return dsql_invalid(d, "unknown route kind %d", (int)in->kind);
    out->kind = in->kind;
    if (in->kind == ROUTE_NONE)
        return DIR_OK;
    if (in->max_connections > ROUTE_MAX_CONNECTIONS_MAX)
        return dsql_invalid(d, "max connections must be 1-%d", ROUTE_MAX_CONNECTIONS_MAX);
    out->max_connections =
        in->max_connections != 0 ? in->max_connections : ROUTE_MAX_CONNECTIONS_DEFAULT;
    if (in->kind == ROUTE_MAILDIR) {
        if (in->host[0] != '\0' || in->port != 0 || in->tls[0] != '\0' || in->cafile[0] != '\0' ||
            (in->auth[0] != '\0' && strcmp(in->auth, "none") != 0) || in->user[0] != '\0' ||
            in->secret[0] != '\0' || oauth_fields_set(in))
            return dsql_invalid(d, "a maildir route takes only a path template (no host, port, "
                                   "TLS or authentication)");
        enum dir_status st = check_maildir(d, in->maildir, sizeof in->maildir);
        if (st == DIR_OK)
            snprintf(out->maildir, sizeof out->maildir, "%s", in->maildir);
        out->verify = true;
        snprintf(out->auth, sizeof out->auth, "none");
        snprintf(out->tls, sizeof out->tls, "none");
        return st;
    }
    if (in->maildir[0] != '\0')
        return dsql_invalid(d, "only a maildir route takes a path template");
    enum dir_status st = check_transport(d, in, out);
    if (st != DIR_OK)
        return st;
    if (in->kind == ROUTE_LMTP) {
        if ((in->auth[0] != '\0' && strcmp(in->auth, "none") != 0) || in->user[0] != '\0' ||
            in->secret[0] != '\0' || oauth_fields_set(in))
            return dsql_invalid(d, "an lmtp route does not authenticate (auth must be none)");
        snprintf(out->auth, sizeof out->auth, "none");
        return DIR_OK;
    }
    return check_auth(d, in, out);
}

/* --- reads --- */

static enum dir_route_kind kind_of(const unsigned char *name)
{
    for (size_t i = ROUTE_RELAY; name != NULL && i < COUNT(kind_names); i++)
        if (strcmp((const char *)name, kind_names[i]) == 0)
            return (enum dir_route_kind)i;
    return ROUTE_NONE;
}

/* The route of the tenant that has `domain` (normalized) as an accepted domain: DIR_OK (kind
 * ROUTE_NONE when it has none), DIR_NOTFOUND for no tenant. *tenant_id when not NULL. */
static enum dir_status route_load(struct directory *d, const char *domain, int64_t *tenant_id,
                                  struct dir_route *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = dsql_stmt(d, ST_ROUTE_GET);
    dsql_bind_text(s, 1, domain);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (tenant_id != NULL)
            *tenant_id = sqlite3_column_int64(s, 0);
        out->kind = kind_of(sqlite3_column_text(s, 1));
    }
    if (rc == SQLITE_ROW && out->kind != ROUTE_NONE) {
        COL_COPY(s, 2, out->host);
        out->port = sqlite3_column_int(s, 3);
        COL_COPY(s, 4, out->tls);
        out->verify = sqlite3_column_int(s, 5) != 0;
        COL_COPY(s, 6, out->cafile);
        COL_COPY(s, 7, out->auth);
        COL_COPY(s, 8, out->user);
        COL_COPY(s, 9, out->secret);
        COL_COPY(s, 10, out->token_url);
        COL_COPY(s, 11, out->client_id);
        COL_COPY(s, 12, out->scope);
        COL_COPY(s, 13, out->grant);
        COL_COPY(s, 14, out->refresh_token);
        out->secret_in_body = sqlite3_column_int(s, 15) != 0;
        COL_COPY(s, 16, out->maildir);
        int64_t max = sqlite3_column_int64(s, 17);
        out->max_connections = max >= 1 && max <= ROUTE_MAX_CONNECTIONS_MAX
                                   ? (unsigned)max
                                   : ROUTE_MAX_CONNECTIONS_DEFAULT;
    }
    return dsql_found(d, s, rc, "reading a delivery route");
}

enum dir_status dir_route_get(struct directory *d, const char *tenant_domain, struct dir_route *out)
{
    memset(out, 0, sizeof *out);
    char dom[SMTP_DOMAIN_MAX + 1];
    enum dir_status st = dsql_norm_domain(d, tenant_domain, dom);
    if (st != DIR_OK)
        return st;
    st = route_load(d, dom, NULL, out);
    if (st == DIR_NOTFOUND)
        snprintf(d->err, sizeof d->err, "no tenant has the domain %s", dom);
    return st;
}

/* --- writes --- */

static enum dir_status route_write(struct directory *d, const char *domain, const void *arg)
{
    const struct dir_route *r = arg;
    struct dir_route old;
    int64_t tenant_id = 0;
    enum dir_status st = route_load(d, domain, &tenant_id, &old);
    sodium_memzero(&old, sizeof old);
    if (st != DIR_OK)
        return st;
    if (r->kind == ROUTE_NONE) {
        sqlite3_stmt *s = dsql_stmt(d, ST_ROUTE_DELETE);
        sqlite3_bind_int64(s, 1, tenant_id);
        return dsql_run(d, s, "removing a delivery route");
    }
    sqlite3_stmt *s = dsql_stmt(d, ST_ROUTE_PUT);
    sqlite3_bind_int64(s, 1, tenant_id);
    dsql_bind_text(s, 2, kind_names[r->kind]);
    dsql_bind_text(s, 3, r->host);
    sqlite3_bind_int(s, 4, r->port);
    dsql_bind_text(s, 5, r->tls);
    sqlite3_bind_int(s, 6, r->verify ? 1 : 0);
    dsql_bind_text(s, 7, r->cafile);
    dsql_bind_text(s, 8, r->auth);
    dsql_bind_text(s, 9, r->user);
    dsql_bind_text(s, 10, r->secret);
    dsql_bind_text(s, 11, r->token_url);
    dsql_bind_text(s, 12, r->client_id);
    dsql_bind_text(s, 13, r->scope);
    dsql_bind_text(s, 14, r->grant);
    dsql_bind_text(s, 15, r->refresh_token);
    sqlite3_bind_int(s, 16, r->secret_in_body ? 1 : 0);
    dsql_bind_text(s, 17, r->maildir);
    sqlite3_bind_int64(s, 18, (sqlite3_int64)r->max_connections);
    sqlite3_bind_int64(s, 19, (sqlite3_int64)time(NULL));
    return dsql_run(d, s, "storing a delivery route");
}

enum dir_status dir_route_set(struct directory *d, const char *tenant_domain,
                              const struct dir_route *r)
{
    struct dir_route canon;
    enum dir_status st = route_check(d, r, &canon);
    if (st == DIR_OK)
        st = dsql_domain_tx(d, tenant_domain, "changing a delivery route", route_write, &canon);
    if (st == DIR_NOTFOUND)
        snprintf(d->err, sizeof d->err, "no tenant has the domain %.300s",
                 tenant_domain != NULL ? tenant_domain : "");
    sodium_memzero(&canon, sizeof canon);
    return st;
}

static enum dir_status refresh_write(struct directory *d, const char *domain, const void *arg)
{
    struct dir_route cur;
    int64_t tenant_id = 0;
    enum dir_status st = route_load(d, domain, &tenant_id, &cur);
    if (st == DIR_OK && cur.kind == ROUTE_NONE) {
        snprintf(d->err, sizeof d->err, "tenant %s has no delivery route", domain);
        st = DIR_NOTFOUND;
    } else if (st == DIR_OK && strcmp(cur.grant, "refresh_token") != 0) {
        st = dsql_invalid(d, "the route of tenant %s does not use the refresh_token grant", domain);
    } else if (st == DIR_NOTFOUND) {
        snprintf(d->err, sizeof d->err, "no tenant has the domain %s", domain);
    }
    sodium_memzero(&cur, sizeof cur);
    if (st != DIR_OK)
        return st;
    sqlite3_stmt *s = dsql_stmt(d, ST_ROUTE_REFRESH);
    sqlite3_bind_int64(s, 1, tenant_id);
    dsql_bind_text(s, 2, arg);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL));
    return dsql_run(d, s, "storing a refresh token");
}

enum dir_status dir_route_set_refresh_token(struct directory *d, const char *tenant_domain,
                                            const char *token)
{
    struct dir_route probe;
    if (token == NULL || token[0] == '\0' ||
        !text_ok(token, sizeof probe.refresh_token, 0x21, false))
        return dsql_invalid(d,
                            "the refresh token must be 1-%zu printable characters without "
                            "spaces",
                            sizeof probe.refresh_token - 1);
    return dsql_domain_tx(d, tenant_domain, "storing a refresh token", refresh_write, token);
}
