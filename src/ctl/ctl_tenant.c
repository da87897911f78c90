/* ctl_tenant.c: `submitctl tenant ...`: add (with the tenant's signing key for the built-in
 * OAuth issuer), show, list, set (smtp-auth, security-defaults, app-passwords, default-policy,
 * reply-detail; SPEC section 2; the OAuth settings of SPEC section 5; the submission limits of
 * SPEC section 4), the public JWKS of the built-in issuer (RFC 7517) and the tenant's extra
 * accepted domains. `tenant route` (the delivery route) is in ctl_route.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "ctl.h"
#include "ctl_route.h"
#include "issuer.h"
#include "jwt.h"

#define JWKS_FILE_MAX (64 * 1024) /* the bound jwks_cache puts on a key set */

/* How `tenant set` checks a value before the directory sees it. */
enum key_kind {
    KEY_CHOICE, /* one of values[] */
    KEY_POLICY, /* a policy name */
    KEY_TEXT,   /* printable, no spaces, 1..max octets (passed on as given) */
    KEY_JWKS,   /* builtin, an http(s) URL, or a file (made absolute and parsed here) */
    KEY_LIMIT   /* 1..CTL_LIMIT_MAX */
};

/* Settings `tenant set` knows. */
static const struct {
    const char *key;
    enum key_kind kind;
    const char *values[5]; /* KEY_CHOICE */
    size_t max;            /* KEY_TEXT */
    const char *must;      /* for the usage message */
} tenant_keys[] = {
    {"smtp-auth", KEY_CHOICE, {"on", "off", NULL}, 0, "on or off"},
    {"security-defaults", KEY_CHOICE, {"on", "off", NULL}, 0, "on or off"},
    {"app-passwords", KEY_CHOICE, {"on", "off", NULL}, 0, "on or off"},
    {"default-policy", KEY_POLICY, {NULL}, 0, "a policy name"},
    {"reply-detail", KEY_CHOICE, {"full", "generic", NULL}, 0, "full or generic"},
    {"issuer", KEY_TEXT, {NULL}, 255, "builtin or the issuer's URL (the exact iss of its tokens)"},
    {"jwks", KEY_JWKS, {NULL}, 1023, "builtin, an https:// URL or a JWKS file"},
    {"audience", KEY_TEXT, {NULL}, 255, "1-255 printable characters without spaces"},
    {"scope", KEY_TEXT, {NULL}, 63, "1-63 printable characters without spaces"},
    {"identity-claim",
     KEY_CHOICE,
     {"email", "upn", "preferred_username", "any", NULL},
     0,
     "email, upn, preferred_username or any"},
    {"max-sessions", KEY_LIMIT, {NULL}, 0, "a number from 1 to 1000000"},
    {"messages-per-minute", KEY_LIMIT, {NULL}, 0, "a number from 1 to 1000000"},
    {"recipients-per-day", KEY_LIMIT, {NULL}, 0, "a number from 1 to 1000000"},
    {"recipients-per-message", KEY_LIMIT, {NULL}, 0, "a number from 1 to 1000000"},
};
#define N_TENANT_KEYS (sizeof tenant_keys / sizeof tenant_keys[0])
#define TENANT_SET_PAIRS 9 /* (CTL_POS_MAX - 1) / 2, rounded down */

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
    struct dir_tenant t;
    rc = ctl_dir_status(c, dir_tenant_add(c->dir, pos[0]), what);
    if (rc == 0)
        rc = ctl_dir_status(c, dir_tenant_get(c->dir, pos[0], &t), what);
    if (rc != 0)
        return rc;
    printf("tenant %s added (smtp-auth off, security-defaults on, default-policy "
           "block-basic)\n",
           t.domain);
    char err[512] = "", iss[300];
    if (issuer_ensure_key(c->datadir, t.domain, err, sizeof err) != 0)
        return ctl_fail(c,
                        "tenant %s added, but its signing key could not be made: %s (retry "
                        "with submitctl tenant jwks %s)",
                        t.domain, err, t.domain);
    issuer_name(t.domain, iss, sizeof iss);
    printf("OAuth: built-in issuer %s, signing key in %s/keys (submitctl tenant jwks %s)\n", iss,
           c->datadir, t.domain);
    return CTL_EXIT_OK;
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

/* The OAuth settings of a tenant as shown, with the defaults the server applies filled in. */
struct oauth_shown {
    char issuer[300];      /* "builtin (submitd:DOMAIN)" or the URL */
    char issuer_name[300]; /* the iss tokens must carry */
    const char *jwks;      /* "builtin" or the source */
    const char *audience, *scope, *identity_claim;
};

static void oauth_shown_of(const struct dir_tenant *t, struct oauth_shown *o)
{
    if (t->oauth_issuer[0] != '\0') {
        snprintf(o->issuer_name, sizeof o->issuer_name, "%s", t->oauth_issuer);
        snprintf(o->issuer, sizeof o->issuer, "%s", t->oauth_issuer);
    } else {
        issuer_name(t->domain, o->issuer_name, sizeof o->issuer_name);
        snprintf(o->issuer, sizeof o->issuer, "builtin (%s)", o->issuer_name);
    }
    o->jwks = t->oauth_jwks[0] ? t->oauth_jwks : "builtin";
    o->audience = t->oauth_audience[0] ? t->oauth_audience : ISSUER_DEFAULT_AUDIENCE;
    o->scope = t->oauth_scope[0] ? t->oauth_scope : "SMTP.Send";
    o->identity_claim = t->oauth_identity_claim[0] && strcmp(t->oauth_identity_claim, "any") != 0
                            ? t->oauth_identity_claim
                            : "any";
}

static void show_oauth_and_limits(const struct dir_tenant *t)
{
    struct oauth_shown o;
    oauth_shown_of(t, &o);
    printf("oauth\n");
    printf("  issuer            %s\n", o.issuer);
    if (t->oauth_jwks[0])
        printf("  jwks              %s\n", o.jwks);
    else
        printf("  jwks              builtin (submitctl tenant jwks %s)\n", t->domain);
    printf("  audience          %s\n", o.audience);
    printf("  scope             %s (or role SMTP.SendAsApp)\n", o.scope);
    if (strcmp(o.identity_claim, "any") == 0)
        printf("  identity claim    any (email, then upn, then preferred_username)\n");
    else
        printf("  identity claim    %s\n", o.identity_claim);
    printf("limits (a mailbox may override each)\n");
    for (size_t i = 0; i < CTL_LIMITS; i++)
        printf("  %-24s%u\n", ctl_limit_keys[i].key, ctl_limit_get(&t->limits, i));
}

static void json_oauth_and_limits(json_t *j, const struct dir_tenant *t)
{
    struct oauth_shown o;
    oauth_shown_of(t, &o);
    json_object_set_new(j, "oauth",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "issuer",
                                  t->oauth_issuer[0] ? t->oauth_issuer : "builtin", "issuer_name",
                                  o.issuer_name, "jwks", o.jwks, "audience", o.audience, "scope",
                                  o.scope, "identity_claim", o.identity_claim));
    json_t *limits = json_object();
    for (size_t i = 0; i < CTL_LIMITS; i++)
        json_object_set_new(limits, ctl_limit_keys[i].json,
                            json_integer((json_int_t)ctl_limit_get(&t->limits, i)));
    json_object_set_new(j, "limits", limits);
}

/* Validates DOMAIN, opens the directory and reads the tenant (or says why not). */
static int load_tenant(struct ctl *c, const char *domain, struct dir_tenant *t)
{
    int rc = check_domain(c, domain);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", domain);
    return ctl_dir_status(c, dir_tenant_get(c->dir, domain, t), what);
}

static int tenant_show(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    struct dir_tenant t;
    int rc = load_tenant(c, pos[0], &t);
    if (rc != 0)
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
    struct dir_route route;
    memset(&route, 0, sizeof route);
    if (st == DIR_OK)
        st = dir_route_get(c->dir, t.domain, &route);
    char route_line[2048];
    ctl_route_summary(&route, route_line, sizeof route_line);
    json_t *route_json = c->json ? ctl_route_json(&route) : NULL;
    sodium_memzero(&route, sizeof route);
    char what[300];
    snprintf(what, sizeof what, "tenant %s", pos[0]);
    if ((rc = ctl_dir_status(c, st, what)) != 0) {
        json_decref(route_json);
        return rc;
    }
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
        json_object_set_new(j, "route", route_json);
        json_oauth_and_limits(j, &t);
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
    printf("route               %s\n", route_line);
    show_oauth_and_limits(&t);
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

static bool printable_word(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return false;
    return true;
}

/* Reads a JWKS file (at most JWKS_FILE_MAX octets) and checks that it parses and holds a key, so
 * that a typo is found now and not at the next OAuth attempt. Returns 0 or an exit code. */
static int check_jwks_file(const struct ctl *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ctl_fail(c, "jwks file %s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(JWKS_FILE_MAX + 1);
    size_t len = 0;
    ssize_t r = 0;
    while (buf != NULL && len <= JWKS_FILE_MAX &&
           ((r = read(fd, buf + len, JWKS_FILE_MAX + 1 - len)) > 0 || (r < 0 && errno == EINTR)))
        len += r > 0 ? (size_t)r : 0;
    int saved = errno;
    close(fd);
    int rc = 0;
    if (buf == NULL)
        rc = ctl_fail(c, "jwks file %s: out of memory", path);
    else if (r < 0)
        rc = ctl_fail(c, "jwks file %s: cannot read: %s", path, strerror(saved));
    else if (len > JWKS_FILE_MAX)
        rc = ctl_fail(c, "jwks file %s: larger than %d octets", path, JWKS_FILE_MAX);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    struct jwks set;
    char err[256] = "";
    memset(&set, 0, sizeof set);
    if (jwks_parse(buf, len, &set, err, sizeof err) != 0)
        rc = ctl_fail(c, "jwks file %s: %s", path, err);
    else if (set.n == 0)
        rc = ctl_fail(c, "jwks file %s: no usable signing key (RSA, EC P-256 or Ed25519)", path);
    jwks_free(&set);
    free(buf);
    return rc;
}

/* Checks one `KEY VALUE` pair; a jwks file is made absolute in `resolved`. Returns 0 or an exit
 * code. */
static int check_setting(const struct ctl *c, const char *key, const char **value,
                         char resolved[PATH_MAX])
{
    size_t k = 0;
    while (k < N_TENANT_KEYS && strcmp(tenant_keys[k].key, key) != 0)
        k++;
    if (k == N_TENANT_KEYS)
        return ctl_usage(c,
                         "unknown setting %s (smtp-auth, security-defaults, app-passwords, "
                         "default-policy, reply-detail, issuer, jwks, audience, scope, "
                         "identity-claim, max-sessions, messages-per-minute, recipients-per-day, "
                         "recipients-per-message)",
                         key);
    const char *v = *value;
    bool ok = false;
    long n;
    switch (tenant_keys[k].kind) {
    case KEY_CHOICE:
        for (size_t i = 0; i < 5 && tenant_keys[k].values[i] != NULL; i++)
            ok = ok || strcmp(tenant_keys[k].values[i], v) == 0;
        break;
    case KEY_POLICY:
        ok = ctl_valid_policy_name(v);
        break;
    case KEY_TEXT:
        ok = printable_word(v, tenant_keys[k].max);
        break;
    case KEY_LIMIT:
        ok = ctl_parse_int(v, 1, CTL_LIMIT_MAX, &n);
        break;
    case KEY_JWKS:
        ok = printable_word(v, tenant_keys[k].max);
        if (!ok || strcasecmp(v, "builtin") == 0 || strncasecmp(v, "https://", 8) == 0 ||
            strncasecmp(v, "http://", 7) == 0)
            break;
        if (realpath(v, resolved) == NULL)
            return ctl_fail(c, "jwks file %s: %s", v, strerror(errno));
        *value = resolved;
        return check_jwks_file(c, resolved);
    }
    if (!ok)
        return ctl_usage(c, "value must be %s (%s)", tenant_keys[k].must, key);
    return 0;
}

static int tenant_set(struct ctl *c, char **pos, int npos)
{
    const char *domain = pos[0];
    if (npos % 2 == 0)
        return ctl_usage(c, "%s has no value (settings come in KEY VALUE pairs)", pos[npos - 1]);
    static char resolved[TENANT_SET_PAIRS][PATH_MAX];
    const char *values[TENANT_SET_PAIRS];
    int pairs = (npos - 1) / 2;
    for (int i = 0; i < pairs; i++) {
        values[i] = pos[2 + 2 * i];
        int rc = check_setting(c, pos[1 + 2 * i], &values[i], resolved[i]);
        if (rc != 0)
            return rc;
    }
    int rc = check_domain(c, domain);
    if (rc == 0)
        rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof what, "tenant %s", domain);
    for (int i = 0; i < pairs && rc == 0; i++) {
        rc = ctl_dir_status(c, dir_tenant_set(c->dir, domain, pos[1 + 2 * i], values[i]), what);
        if (rc == 0)
            printf("tenant %s: %s = %s\n", domain, pos[1 + 2 * i], values[i]);
    }
    struct dir_tenant t;
    if (rc != 0 || dir_tenant_get(c->dir, domain, &t) != DIR_OK)
        return rc;
    /* A half-switched provider verifies no token; say so while the admin is here. */
    if (t.oauth_issuer[0] != '\0' && t.oauth_jwks[0] == '\0')
        printf("note: tokens of issuer %s are checked against the built-in key; give the "
               "issuer's keys: submitctl tenant set %s jwks FILE|URL\n",
               t.oauth_issuer, t.domain);
    else if (t.oauth_issuer[0] == '\0' && t.oauth_jwks[0] != '\0')
        printf("note: tokens of the built-in issuer are checked against %s, not the built-in "
               "key; submitctl token issue makes tokens only the built-in key verifies\n",
               t.oauth_jwks);
    return CTL_EXIT_OK;
}

static int tenant_jwks(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    struct dir_tenant t;
    int rc = load_tenant(c, pos[0], &t);
    if (rc != 0)
        return rc;
    char err[512] = "", kid[JWT_KID_MAX + 1] = "";
    /* A tenant made before the built-in issuer existed gets its key when first needed. */
    if (issuer_ensure_key(c->datadir, t.domain, err, sizeof err) != 0)
        return ctl_fail(c, "signing key of tenant %s: %s", t.domain, err);
    EVP_PKEY *key = issuer_load_key(c->datadir, t.domain, kid, err, sizeof err);
    if (key == NULL)
        return ctl_fail(c, "signing key of tenant %s: %s", t.domain, err);
    char *doc = jwks_export_public(key, kid);
    EVP_PKEY_free(key);
    if (doc == NULL)
        return ctl_fail(c, "cannot export the public key of tenant %s", t.domain);
    size_t n = strlen(doc);
    printf("%s%s", doc, n > 0 && doc[n - 1] == '\n' ? "" : "\n");
    free(doc);
    return CTL_EXIT_OK;
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
    {"tenant", "add", "DOMAIN",
     "add a tenant whose primary domain is DOMAIN, with its built-in issuer's signing key", 1, 1,
     CTL_WRITES, NULL, tenant_add},
    {"tenant", "show", "DOMAIN",
     "every setting of a tenant (OAuth and limits too), its domains and counts", 1, 1, CTL_JSON,
     NULL, tenant_show},
    {"tenant", "list", "", "all tenants and their settings", 0, 0, CTL_JSON, NULL, tenant_list},
    {"tenant", "set", "DOMAIN KEY VALUE [KEY VALUE ...]",
     "smtp-auth on|off, security-defaults on|off, app-passwords on|off, default-policy NAME, "
     "reply-detail full|generic, issuer URL|builtin, jwks FILE|URL|builtin, audience TEXT, "
     "scope TEXT, identity-claim email|upn|preferred_username|any, max-sessions N, "
     "messages-per-minute N, recipients-per-day N, recipients-per-message N",
     3, 1 + 2 * TENANT_SET_PAIRS, CTL_WRITES, NULL, tenant_set},
    {"tenant", "route", "DOMAIN [relay|lmtp HOST[:PORT] | maildir TEMPLATE | none] [options]",
     "show or replace the delivery route: --tls required|opportunistic|none|implicit, "
     "--no-verify, --cafile FILE, --auth plain|login|xoauth2, --user U, --secret-stdin, "
     "--token-url URL, --client-id ID, --scope S, --refresh-token-stdin, --secret-in-body, "
     "--max-connections N",
     1, 3, CTL_WRITES | CTL_JSON, ctl_route_opts, ctl_tenant_route},
    {"tenant", "jwks", "DOMAIN",
     "the public JWKS of the tenant's built-in OAuth issuer (for a relying party or a test)", 1, 1,
     0, NULL, tenant_jwks},
    {"tenant", "domain-add", "DOMAIN EXTRA", "add EXTRA as an accepted domain of tenant DOMAIN", 2,
     2, CTL_WRITES, NULL, tenant_domain_add},
    {"tenant", "domain-remove", "DOMAIN EXTRA", "remove the accepted domain EXTRA", 2, 2,
     CTL_WRITES, NULL, tenant_domain_remove},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
