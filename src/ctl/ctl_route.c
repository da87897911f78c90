/* ctl_route.c: `submitctl tenant route`: shows a tenant's delivery route, or replaces it with a
 * relay to a smarthost (RFC 5321; STARTTLS RFC 3207 or implicit TLS RFC 8314; AUTH RFC 4954
 * PLAIN or LOGIN with a stored secret, or XOAUTH2 with a token from an OAuth 2.0 endpoint by the
 * client-credentials or refresh-token grant, RFC 6749 4.4 and 6), an LMTP server (RFC 2033), a
 * Maildir path template, or none. Checks the command line (syntax, which options go together);
 * the directory validates the route itself (directory_routes.c). Secrets come from standard input
 * like a mailbox password (ctl_read_password), are never printed ("(set)"), and are wiped after
 * use. */
#include "ctl_route.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The options, in the order of ctl_route_opts (their index in ctl.opt). */
enum route_opt {
    O_TLS,
    O_NO_VERIFY,
    O_CAFILE,
    O_AUTH,
    O_USER,
    O_SECRET_STDIN,
    O_TOKEN_URL,
    O_CLIENT_ID,
    O_SCOPE,
    O_REFRESH_TOKEN_STDIN,
    O_SECRET_IN_BODY,
    O_MAX_CONNECTIONS,
    O_COUNT
};
_Static_assert(O_COUNT <= CTL_OPTS_MAX, "ctl.opt holds every option of tenant route");

const struct ctl_opt ctl_route_opts[] = {
    [O_TLS] = {"--tls", true},
    [O_NO_VERIFY] = {"--no-verify", false},
    [O_CAFILE] = {"--cafile", true},
    [O_AUTH] = {"--auth", true},
    [O_USER] = {"--user", true},
    [O_SECRET_STDIN] = {"--secret-stdin", false},
    [O_TOKEN_URL] = {"--token-url", true},
    [O_CLIENT_ID] = {"--client-id", true},
    [O_SCOPE] = {"--scope", true},
    [O_REFRESH_TOKEN_STDIN] = {"--refresh-token-stdin", false},
    [O_SECRET_IN_BODY] = {"--secret-in-body", false},
    [O_MAX_CONNECTIONS] = {"--max-connections", true},
    [O_COUNT] = {NULL, false},
};

#define BIT(o) (1u << (o))
#define TRANSPORT_OPTS (BIT(O_TLS) | BIT(O_NO_VERIFY) | BIT(O_CAFILE))
#define AUTH_OPTS                                                                                  \
    (BIT(O_AUTH) | BIT(O_USER) | BIT(O_SECRET_STDIN) | BIT(O_TOKEN_URL) | BIT(O_CLIENT_ID) |       \
     BIT(O_SCOPE) | BIT(O_REFRESH_TOKEN_STDIN) | BIT(O_SECRET_IN_BODY))
#define OAUTH_OPTS                                                                                 \
    (BIT(O_TOKEN_URL) | BIT(O_CLIENT_ID) | BIT(O_SCOPE) | BIT(O_REFRESH_TOKEN_STDIN) |             \
     BIT(O_SECRET_IN_BODY))

static const struct {
    const char *name;
    enum dir_route_kind kind;
    int npos;         /* positionals after DOMAIN, the kind included */
    unsigned options; /* the options it takes */
} kinds[] = {
    {"relay", ROUTE_RELAY, 2, TRANSPORT_OPTS | AUTH_OPTS | BIT(O_MAX_CONNECTIONS)},
    {"lmtp", ROUTE_LMTP, 2, TRANSPORT_OPTS | BIT(O_MAX_CONNECTIONS)},
    {"maildir", ROUTE_MAILDIR, 2, BIT(O_MAX_CONNECTIONS)},
    {"none", ROUTE_NONE, 1, 0},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static const char *kind_name(enum dir_route_kind k)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "?";
}

static bool given(const struct ctl *c, enum route_opt o)
{
    return c->opt[o] != NULL;
}

/* --- showing --- */

/* HOST:PORT, an IPv6 address in brackets. */
static void host_port(const struct dir_route *r, char *buf, size_t cap)
{
    bool v6 = strchr(r->host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s:%d", v6 ? "[" : "", r->host, v6 ? "]" : "", r->port);
}

static const char *set_or_not(const char *secret)
{
    return secret[0] != '\0' ? "(set)" : "(not set)";
}

/* Appends printf output to buf (cap bytes) at *len, truncating at the end. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t cap, size_t *len,
                                                         const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap;
}

void ctl_route_summary(const struct dir_route *r, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (r->kind == ROUTE_MAILDIR) {
        append(buf, cap, &len, "maildir %s, max-connections %u", r->maildir, r->max_connections);
        return;
    }
    if (r->kind != ROUTE_RELAY && r->kind != ROUTE_LMTP) {
        append(buf, cap, &len, "none");
        return;
    }
    char hp[300];
    host_port(r, hp, sizeof hp);
    append(buf, cap, &len, "%s %s, tls %s", kind_name(r->kind), hp, r->tls);
    if (strcmp(r->tls, "none") != 0 && !r->verify)
        append(buf, cap, &len, " (no-verify)");
    if (r->cafile[0] != '\0')
        append(buf, cap, &len, ", cafile %s", r->cafile);
    if (strcmp(r->auth, "none") != 0 && r->auth[0] != '\0') {
        append(buf, cap, &len, ", auth %s, user %s, secret %s", r->auth, r->user,
               set_or_not(r->secret));
        if (strcmp(r->auth, "xoauth2") == 0)
            append(buf, cap, &len, ", grant %s%s", r->grant,
                   strcmp(r->grant, "refresh_token") == 0
                       ? (r->refresh_token[0] ? " (refresh token set)" : " (no refresh token)")
                       : "");
    }
    append(buf, cap, &len, ", max-connections %u", r->max_connections);
}

json_t *ctl_route_json(const struct dir_route *r)
{
    json_t *j = json_pack("{s:s}", "kind", kind_name(r->kind));
    if (j == NULL || r->kind == ROUTE_NONE)
        return j;
    if (r->kind == ROUTE_MAILDIR) {
        json_object_set_new(j, "maildir", json_string(r->maildir));
    } else {
        json_object_set_new(j, "host", json_string(r->host));
        json_object_set_new(j, "port", json_integer(r->port));
        json_object_set_new(j, "tls", json_string(r->tls));
        json_object_set_new(j, "verify", json_boolean(r->verify));
        json_object_set_new(j, "cafile", r->cafile[0] ? json_string(r->cafile) : json_null());
        json_object_set_new(j, "auth", json_string(r->auth));
    }
    if (r->kind == ROUTE_RELAY && strcmp(r->auth, "none") != 0) {
        json_object_set_new(j, "user", json_string(r->user));
        json_object_set_new(j, "secret_set", json_boolean(r->secret[0] != '\0'));
    }
    if (r->kind == ROUTE_RELAY && strcmp(r->auth, "xoauth2") == 0) {
        json_object_set_new(j, "token_url", json_string(r->token_url));
        json_object_set_new(j, "client_id", json_string(r->client_id));
        json_object_set_new(j, "scope", r->scope[0] ? json_string(r->scope) : json_null());
        json_object_set_new(j, "grant", json_string(r->grant));
        json_object_set_new(j, "refresh_token_set", json_boolean(r->refresh_token[0] != '\0'));
        json_object_set_new(j, "secret_in_body", json_boolean(r->secret_in_body));
    }
    json_object_set_new(j, "max_connections", json_integer((json_int_t)r->max_connections));
    return j;
}

static void show_text(const char *domain, const struct dir_route *r)
{
    printf("tenant            %s\n", domain);
    printf("route             %s\n", kind_name(r->kind));
    if (r->kind == ROUTE_NONE) {
        printf("                  (no delivery route: submitctl tenant route %s relay|lmtp|maildir "
               "...)\n",
               domain);
        return;
    }
    if (r->kind == ROUTE_MAILDIR) {
        printf("maildir           %s\n", r->maildir);
    } else {
        printf("host              %s\n", r->host);
        printf("port              %d\n", r->port);
        printf("tls               %s\n", r->tls);
        if (strcmp(r->tls, "none") != 0) {
            printf("verify            %s\n", ctl_onoff(r->verify));
            printf("cafile            %s\n", r->cafile[0] ? r->cafile : "(the system store)");
        }
        printf("auth              %s\n", r->auth);
    }
    if (r->kind == ROUTE_RELAY && strcmp(r->auth, "none") != 0) {
        printf("user              %s\n", r->user);
        printf("secret            %s\n", set_or_not(r->secret));
    }
    if (r->kind == ROUTE_RELAY && strcmp(r->auth, "xoauth2") == 0) {
        printf("token-url         %s\n", r->token_url);
        printf("client-id         %s\n", r->client_id);
        printf("scope             %s\n", r->scope[0] ? r->scope : "(none)");
        printf("grant             %s\n", r->grant);
        if (strcmp(r->grant, "refresh_token") == 0)
            printf("refresh-token     %s\n", set_or_not(r->refresh_token));
        printf("secret-in-body    %s\n", ctl_yesno(r->secret_in_body));
    }
    printf("max-connections   %u\n", r->max_connections);
}

/* Prints the tenant's route (text or JSON). Returns an exit code. */
static int print_route(struct ctl *c, const char *domain)
{
    struct dir_route r;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", domain);
    int rc = ctl_dir_status(c, dir_route_get(c->dir, domain, &r), what);
    if (rc == 0 && c->json) {
        json_t *j = ctl_route_json(&r);
        if (j != NULL)
            json_object_set_new(j, "tenant", json_string(domain));
        rc = ctl_json_print(j);
    } else if (rc == 0) {
        show_text(domain, &r);
    }
    sodium_memzero(&r, sizeof r);
    return rc;
}

static int route_show(struct ctl *c, const char *domain)
{
    /* Showing reads: a missing data directory is an error, not made. */
    struct ctl_command reading = *c->cmd;
    reading.flags &= ~(unsigned)CTL_WRITES;
    const struct ctl_command *saved = c->cmd;
    c->cmd = &reading;
    int rc = ctl_dir(c);
    c->cmd = saved;
    return rc != 0 ? rc : print_route(c, domain);
}

/* --- setting --- */

/* Copies an option's value into a field; usage error when it does not fit. */
static int copy_value(const struct ctl *c, enum route_opt o, char *field, size_t cap)
{
    const char *v = c->opt[o];
    if (v == NULL)
        return 0;
    if (v[0] == '\0' || strlen(v) >= cap)
        return ctl_usage(c, "%s must be 1-%zu characters", ctl_route_opts[o].name, cap - 1);
    memcpy(field, v, strlen(v) + 1);
    return 0;
}

/* HOST, HOST:PORT, [V6], [V6]:PORT or a bare V6 address (no port). */
static int parse_host_port(const struct ctl *c, const char *arg, struct dir_route *r)
{
    const char *host = arg, *port = NULL;
    size_t hlen = strlen(arg);
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return ctl_usage(c, "not HOST[:PORT]: %s", arg);
        host = arg + 1;
        hlen = (size_t)(close - host);
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(arg, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hlen = (size_t)(colon - arg);
            port = colon + 1;
        }
    }
    if (hlen == 0 || hlen >= sizeof r->host)
        return ctl_usage(c, "not HOST[:PORT]: %s", arg);
    memcpy(r->host, host, hlen);
    r->host[hlen] = '\0';
    long n = 0;
    if (port != NULL && !ctl_parse_int(port, 1, 65535, &n))
        return ctl_usage(c, "the port must be a number from 1 to 65535: %s", arg);
    r->port = (int)n;
    return 0;
}

/* Which options go with the kind and with --auth. */
static int check_options(const struct ctl *c, size_t k)
{
    for (int o = 0; o < O_COUNT; o++)
        if (given(c, (enum route_opt)o) && !(kinds[k].options & BIT(o)))
            return ctl_usage(c, "%s does not apply to %s routes", ctl_route_opts[o].name,
                             kinds[k].name);
    if (given(c, O_TLS)) {
        static const char *const modes[] = {"required", "opportunistic", "none", "implicit"};
        bool ok = false;
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            ok = ok || strcmp(c->opt[O_TLS], modes[i]) == 0;
        if (!ok)
            return ctl_usage(c, "--tls must be required, opportunistic, none or implicit");
    }
    bool tls_none =
        given(c, O_TLS) ? strcmp(c->opt[O_TLS], "none") == 0 : kinds[k].kind == ROUTE_LMTP;
    if (tls_none && (given(c, O_NO_VERIFY) || given(c, O_CAFILE)))
        return ctl_usage(c, "--no-verify and --cafile need TLS (--tls required, opportunistic "
                            "or implicit)");
    const char *auth = given(c, O_AUTH) ? c->opt[O_AUTH] : "none";
    bool xoauth2 = strcmp(auth, "xoauth2") == 0;
    bool password = strcmp(auth, "plain") == 0 || strcmp(auth, "login") == 0;
    if (!xoauth2 && !password && strcmp(auth, "none") != 0)
        return ctl_usage(c, "--auth must be none, plain, login or xoauth2");
    for (int o = O_USER; o <= O_SECRET_IN_BODY; o++) {
        if (!given(c, (enum route_opt)o))
            continue;
        if (!xoauth2 && !password)
            return ctl_usage(c, "%s needs --auth plain, login or xoauth2", ctl_route_opts[o].name);
        if (!xoauth2 && (OAUTH_OPTS & BIT(o)))
            return ctl_usage(c, "%s is for --auth xoauth2", ctl_route_opts[o].name);
    }
    if ((xoauth2 || password) && !given(c, O_USER))
        return ctl_usage(c, "--auth %s needs --user", auth);
    if (password && !given(c, O_SECRET_STDIN))
        return ctl_usage(c, "--auth %s needs --secret-stdin (the password, on standard input)",
                         auth);
    if (xoauth2 && (!given(c, O_TOKEN_URL) || !given(c, O_CLIENT_ID)))
        return ctl_usage(c, "--auth xoauth2 needs --token-url and --client-id");
    if (xoauth2 && !given(c, O_SECRET_STDIN) && !given(c, O_REFRESH_TOKEN_STDIN))
        return ctl_usage(c, "--auth xoauth2 needs --secret-stdin (client credentials) or "
                            "--refresh-token-stdin (a refresh token)");
    if (given(c, O_SECRET_IN_BODY) && !given(c, O_SECRET_STDIN))
        return ctl_usage(c, "--secret-in-body needs --secret-stdin (a client secret)");
    return 0;
}

/* The route the command line describes, without its secrets. */
static int parse_route(const struct ctl *c, char **pos, int npos, struct dir_route *r)
{
    size_t k = 0;
    while (k < N_KINDS && strcmp(kinds[k].name, pos[0]) != 0)
        k++;
    if (k == N_KINDS)
        return ctl_usage(c, "unknown route kind %s (relay, lmtp, maildir or none)", pos[0]);
    if (npos != kinds[k].npos)
        return ctl_usage(c, "%s",
                         kinds[k].kind == ROUTE_NONE ? "none takes no argument"
                         : kinds[k].kind == ROUTE_MAILDIR
                             ? "maildir needs one TEMPLATE (e.g. /srv/mail/%d/%u)"
                             : "relay and lmtp need one HOST[:PORT]");
    int rc = check_options(c, k);
    if (rc != 0)
        return rc;
    memset(r, 0, sizeof *r);
    r->kind = kinds[k].kind;
    r->verify = !given(c, O_NO_VERIFY);
    if (r->kind == ROUTE_NONE)
        return 0;
    if (r->kind == ROUTE_MAILDIR) {
        if (strlen(pos[1]) >= sizeof r->maildir)
            return ctl_usage(c, "the maildir template is longer than %zu characters",
                             sizeof r->maildir - 1);
        snprintf(r->maildir, sizeof r->maildir, "%s", pos[1]);
    } else if ((rc = parse_host_port(c, pos[1], r)) != 0) {
        return rc;
    }
    long n = 0;
    if (given(c, O_MAX_CONNECTIONS) && !ctl_parse_int(c->opt[O_MAX_CONNECTIONS], 1, 1000, &n))
        return ctl_usage(c, "--max-connections must be a number from 1 to 1000");
    r->max_connections = (unsigned)n;
    r->secret_in_body = given(c, O_SECRET_IN_BODY);
    if ((rc = copy_value(c, O_TLS, r->tls, sizeof r->tls)) == 0 &&
        (rc = copy_value(c, O_AUTH, r->auth, sizeof r->auth)) == 0 &&
        (rc = copy_value(c, O_USER, r->user, sizeof r->user)) == 0 &&
        (rc = copy_value(c, O_TOKEN_URL, r->token_url, sizeof r->token_url)) == 0 &&
        (rc = copy_value(c, O_CLIENT_ID, r->client_id, sizeof r->client_id)) == 0)
        rc = copy_value(c, O_SCOPE, r->scope, sizeof r->scope);
    if (rc == 0 && given(c, O_REFRESH_TOKEN_STDIN))
        snprintf(r->grant, sizeof r->grant, "refresh_token");
    return rc;
}

/* The CA file made absolute (the server does not run in this directory) and checked to exist. */
static int resolve_cafile(const struct ctl *c, struct dir_route *r)
{
    if (!given(c, O_CAFILE))
        return 0;
    char path[PATH_MAX];
    if (realpath(c->opt[O_CAFILE], path) == NULL)
        return ctl_fail(c, "cafile %s: %s", c->opt[O_CAFILE], strerror(errno));
    if (strlen(path) >= sizeof r->cafile)
        return ctl_usage(c, "cafile path longer than %zu characters", sizeof r->cafile - 1);
    snprintf(r->cafile, sizeof r->cafile, "%s", path);
    return 0;
}

/* One secret from standard input (a line; asked twice without echo on a terminal) into field. */
static int read_secret(const struct ctl *c, const char *what, char *field, size_t cap)
{
    size_t len = 0;
    return ctl_read_secret(c, what, field, cap, &len);
}

/* Opens the directory, checks the tenant, reads the secrets (client secret first, then the
 * refresh token) and stores the route. */
static int store_route(struct ctl *c, const char *domain, struct dir_route *r)
{
    char what[300];
    snprintf(what, sizeof what, "tenant %s", domain);
    struct dir_route old;
    memset(&old, 0, sizeof old);
    int rc = ctl_dir(c);
    if (rc == 0)
        rc = ctl_dir_status(c, dir_route_get(c->dir, domain, &old), what);
    bool had = old.kind != ROUTE_NONE;
    sodium_memzero(&old, sizeof old);
    if (rc != 0)
        return rc;
    if (r->kind == ROUTE_NONE && !had)
        return ctl_fail(c, "tenant %s has no delivery route", domain);
    if (given(c, O_SECRET_STDIN))
        rc = read_secret(c, "secret", r->secret, sizeof r->secret);
    if (rc == 0 && given(c, O_REFRESH_TOKEN_STDIN))
        rc = read_secret(c, "refresh token", r->refresh_token, sizeof r->refresh_token);
    if (rc == 0)
        rc = ctl_dir_status(c, dir_route_set(c->dir, domain, r), what);
    return rc;
}

int ctl_tenant_route(struct ctl *c, char **pos, int npos)
{
    const char *domain = pos[0];
    if (!ctl_valid_domain(domain))
        return ctl_usage(c, "not a valid domain: %s", domain);
    if (npos == 1) {
        for (int o = 0; o < O_COUNT; o++)
            if (given(c, (enum route_opt)o))
                return ctl_usage(c, "%s is for setting a route (relay, lmtp, maildir)",
                                 ctl_route_opts[o].name);
        return route_show(c, domain);
    }
    struct dir_route r;
    int rc = parse_route(c, pos + 1, npos - 1, &r);
    if (rc == 0)
        rc = resolve_cafile(c, &r);
    if (rc == 0)
        rc = store_route(c, domain, &r);
    sodium_memzero(&r, sizeof r);
    if (rc != 0)
        return rc;
    if (c->json)
        return print_route(c, domain);
    struct dir_route now;
    char line[2048];
    rc = ctl_dir_status(c, dir_route_get(c->dir, domain, &now), domain);
    if (rc == 0) {
        ctl_route_summary(&now, line, sizeof line);
        if (now.kind == ROUTE_NONE)
            printf("tenant %s: delivery route removed\n", domain);
        else
            printf("tenant %s: route %s\n", domain, line);
    }
    sodium_memzero(&now, sizeof now);
    return rc;
}
