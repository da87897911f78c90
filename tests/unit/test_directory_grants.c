/* test_directory_grants.c: what issue 3 added to the SQLite directory (directory_sqlite.c,
 * directory_admin.c, directory_grants.c): the tenant OAuth settings and their validation, the
 * tenant and mailbox submission limits and dir_effective_limits, the auth view carrying them,
 * send-as grants (and dir_may_send_as with them), access grants and dir_may_act_as, app
 * passwords (add, match, touch, revoke, list, limits), the cascades when a mailbox or alias goes,
 * and the generation counter. Migration from a version-1 database is in test_directory_schema.c.
 * Each test gets a fresh directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "directory.h"
#include "test_directory_fixture.h"

static int setup(void **state)
{
    return dir_fixture_setup(state, "test_directory_grants");
}

/* A count from a raw connection to the same database. */
static int raw_count(struct fixture *f, const char *sql)
{
    sqlite3 *db = raw_open(f);
    int n = tu_raw_int(db, sql, 0);
    sqlite3_close(db);
    return n;
}

/* example.com (and example.org) with alice and bob, example.net with carol. */
static void populate(struct fixture *f)
{
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    assert_int_equal(dir_domain_add(f->d, "example.com", "example.org"), DIR_OK);
    assert_int_equal(dir_tenant_add(f->d, "example.net"), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "alice@example.com", "$argon2id$alice"), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "bob@example.com", NULL), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "carol@example.net", NULL), DIR_OK);
}

static int64_t mailbox_id(struct fixture *f, const char *address)
{
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_get(f->d, address, &m), DIR_OK);
    return m.id;
}

static struct dir_tenant tenant(struct fixture *f, const char *domain)
{
    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(f->d, domain, &t), DIR_OK);
    return t;
}

/* a distinct valid app password hash per n */
static const char *hash_of(int n, char out[65])
{
    for (int i = 0; i < 64; i++)
        out[i] = "0123456789abcdef"[(n * 7 + i) % 16];
    out[0] = "0123456789abcdef"[n % 16];
    out[1] = "0123456789abcdef"[(n / 16) % 16];
    out[64] = '\0';
    return out;
}

/* --- tenant OAuth settings --- */

static void test_tenant_oauth_defaults(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    struct dir_tenant t = tenant(f, "example.com");
    assert_string_equal(t.oauth_issuer, "");
    assert_string_equal(t.oauth_jwks, "");
    assert_string_equal(t.oauth_audience, "submitd");
    assert_string_equal(t.oauth_scope, "SMTP.Send");
    assert_string_equal(t.oauth_identity_claim, "");
    assert_int_equal(t.limits.sessions, 3);
    assert_int_equal(t.limits.messages_per_minute, 30);
    assert_int_equal(t.limits.recipients_per_day, 10000);
    assert_int_equal(t.limits.recipients_per_message, 500);
}

static void test_tenant_issuer(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    const char *good[] = {
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
        "https://accounts.google.com",
        "https://idp.example.com:8443/realms/mail",
        "HTTPS://idp.example.com?x=1",
        "http://127.0.0.1:8080/issuer",
        "http://localhost",
        "http://LOCALHOST:9000/",
        "http://[::1]:9000/realms/x",
        "submitd:example.org",
        "urn:example:issuer",
        "plain-issuer-name",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", good[i]), DIR_OK);
        assert_string_equal(tenant(f, "example.com").oauth_issuer, good[i]);
    }
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "BuiltIn"), DIR_OK);
    assert_string_equal(tenant(f, "example.com").oauth_issuer, "");
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "https://idp.example"), DIR_OK);

    const char *https_only = "the issuer 'http://idp.example.com/x' must use https:// (http:// "
                             "is allowed only for localhost, 127.0.0.1 and [::1])";
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", "http://idp.example.com/x"),
                   https_only);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "http://127.0.0.1.evil.example"),
                     DIR_INVALID);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "http://localhost.evil.example"),
                     DIR_INVALID);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "http://[::2]/"), DIR_INVALID);
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", "https://"),
                   "the issuer 'https://' is not a valid URL (https://HOST[:PORT][/PATH])");
    const char *bad_urls[] = {"https:///path",
                              "https://user@idp.example",
                              "https://idp:0",
                              "https://idp:65536",
                              "https://idp:80x",
                              "https://[::1",
                              "https://bad_host.example",
                              "https://idp..example"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++)
        assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", bad_urls[i]), DIR_INVALID);
    const char *not_text = "the issuer must be builtin, an https:// URL or a name of 1-255 "
                           "printable characters without spaces";
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", ""), not_text);
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", "my issuer"), not_text);
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", "iss\tuer"), not_text);
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", "issüer"), not_text);
    char longer[300];
    memset(longer, 'i', 256);
    longer[256] = '\0';
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", longer), not_text);
    longer[255] = '\0';
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", longer), DIR_OK);
    assert_invalid(dir_tenant_set(f->d, "example.com", "issuer", ":nothing"),
                   "the issuer ':nothing' has a ':' but is not a URI (RFC 7519 StringOrURI): "
                   "start it with a scheme such as https:");
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "1x:y"), DIR_INVALID);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "a/b:c"), DIR_INVALID);
    assert_string_equal(tenant(f, "example.com").oauth_issuer,
                        longer); /* failures changed nothing */
}

static void test_tenant_jwks(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    const char *good[] = {
        "/etc/submitd/jwks.json",
        "/srv/key files/jwks.json",
        "https://login.microsoftonline.com/common/discovery/v2.0/keys",
        "https://www.googleapis.com/oauth2/v3/certs",
        "http://127.0.0.1:8080/jwks",
        "http://[::1]/keys",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(dir_tenant_set(f->d, "example.com", "jwks", good[i]), DIR_OK);
        assert_string_equal(tenant(f, "example.com").oauth_jwks, good[i]);
    }
    assert_int_equal(dir_tenant_set(f->d, "example.com", "jwks", "builtin"), DIR_OK);
    assert_string_equal(tenant(f, "example.com").oauth_jwks, "");

    const char *neither = "the jwks must be builtin, an absolute file path or an https:// URL";
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", "keys/jwks.json"), neither);
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", "file:///etc/jwks.json"), neither);
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", ""), neither);
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", "https://idp.example/a b"), neither);
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", "http://idp.example/keys"),
                   "the jwks 'http://idp.example/keys' must use https:// (http:// is allowed "
                   "only for localhost, 127.0.0.1 and [::1])");
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", "/etc/jwks\n.json"),
                   "the jwks file path has a control character");
    char longer[1100];
    longer[0] = '/';
    memset(longer + 1, 'k', 1023);
    longer[1024] = '\0';
    assert_invalid(dir_tenant_set(f->d, "example.com", "jwks", longer),
                   "the jwks file path is longer than 1023 characters");
    longer[1023] = '\0';
    assert_int_equal(dir_tenant_set(f->d, "example.com", "jwks", longer), DIR_OK);
    assert_string_equal(tenant(f, "example.com").oauth_jwks, longer);
}

static void test_tenant_audience_scope_claim(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "audience", "api://2d1c-44aa"), DIR_OK);
    assert_string_equal(tenant(f, "example.com").oauth_audience, "api://2d1c-44aa");
    const char *aud = "the audience must be 1-255 printable characters without spaces";
    assert_invalid(dir_tenant_set(f->d, "example.com", "audience", ""), aud);
    assert_invalid(dir_tenant_set(f->d, "example.com", "audience", "my app"), aud);

    assert_int_equal(
        dir_tenant_set(f->d, "example.com", "scope", "https://outlook.office.com/SMTP.Send"),
        DIR_OK);
    assert_string_equal(tenant(f, "example.com").oauth_scope,
                        "https://outlook.office.com/SMTP.Send");
    const char *scope = "the scope must be one scope token (RFC 6749 3.3): 1-63 printable "
                        "characters, no spaces, quotes or backslashes";
    assert_invalid(dir_tenant_set(f->d, "example.com", "scope", "SMTP.Send Mail.Read"), scope);
    assert_invalid(dir_tenant_set(f->d, "example.com", "scope", "a\"b"), scope);
    assert_invalid(dir_tenant_set(f->d, "example.com", "scope", "a\\b"), scope);
    assert_invalid(dir_tenant_set(f->d, "example.com", "scope", ""), scope);
    char longer[80];
    memset(longer, 's', 64);
    longer[64] = '\0';
    assert_invalid(dir_tenant_set(f->d, "example.com", "scope", longer), scope);
    longer[63] = '\0';
    assert_int_equal(dir_tenant_set(f->d, "example.com", "scope", longer), DIR_OK);

    struct {
        const char *in, *stored;
    } claims[] = {{"email", "email"},
                  {"UPN", "upn"},
                  {"preferred_username", "preferred_username"},
                  {"any", ""}};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        assert_int_equal(dir_tenant_set(f->d, "example.com", "identity-claim", claims[i].in),
                         DIR_OK);
        assert_string_equal(tenant(f, "example.com").oauth_identity_claim, claims[i].stored);
    }
    assert_invalid(dir_tenant_set(f->d, "example.com", "identity-claim", "sub"),
                   "value must be email, upn, preferred_username or any");
    assert_int_equal(dir_tenant_set(f->d, "example.com", "identity-claim", "upn"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "identity-claim", ""), DIR_INVALID);

    /* the other settings are untouched by all of that */
    struct dir_tenant t = tenant(f, "example.com");
    assert_string_equal(t.oauth_identity_claim, "upn");
    assert_string_equal(t.oauth_audience, "api://2d1c-44aa");
    assert_string_equal(t.oauth_issuer, "");
    assert_false(t.smtp_auth);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "Issuer", "builtin"), DIR_INVALID);
    assert_non_null(strstr(dir_error(f->d), "identity-claim, max-sessions"));
    assert_int_equal(dir_tenant_set(f->d, "example.org", "audience", "x"), DIR_NOTFOUND);
}

/* --- limits --- */

static void test_tenant_limits(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "max-sessions", "1"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "messages-per-minute", "1000000"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "recipients-per-day", "250"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "recipients-per-message", "0042"), DIR_OK);
    struct dir_tenant t = tenant(f, "example.com");
    assert_int_equal(t.limits.sessions, 1);
    assert_int_equal(t.limits.messages_per_minute, 1000000);
    assert_int_equal(t.limits.recipients_per_day, 250);
    assert_int_equal(t.limits.recipients_per_message, 42);
    const char *bad[] = {
        "0", "1000001", "-1", "+5", " 5", "5 ", "5x", "", "inherit", "1e3", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_invalid(dir_tenant_set(f->d, "example.com", "max-sessions", bad[i]),
                       "value must be a whole number from 1 to 1000000");
    assert_int_equal(tenant(f, "example.com").limits.sessions, 1);
}

static void test_mailbox_limits(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    assert_int_equal(m.limits.sessions, 0); /* inherit */
    assert_int_equal(m.limits.messages_per_minute, 0);
    assert_int_equal(m.limits.recipients_per_day, 0);
    assert_int_equal(m.limits.recipients_per_message, 0);
    assert_int_equal(dir_mailbox_set(f->d, "Alice@example.com", "max-sessions", "10"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "messages-per-minute", "1"),
                     DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "recipients-per-day", "1000000"),
                     DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "recipients-per-message", "7"),
                     DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    assert_int_equal(m.limits.sessions, 10);
    assert_int_equal(m.limits.messages_per_minute, 1);
    assert_int_equal(m.limits.recipients_per_day, 1000000);
    assert_int_equal(m.limits.recipients_per_message, 7);
    assert_int_equal(m.smtp_auth, SWITCH_INHERIT); /* other columns untouched */
    assert_true(m.enabled);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "messages-per-minute", "INHERIT"),
                     DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    assert_int_equal(m.limits.messages_per_minute, 0);
    assert_int_equal(m.limits.sessions, 10);
    const char *bad[] = {"0", "1000001", "-3", "", "x", "on"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_invalid(dir_mailbox_set(f->d, "alice@example.com", "recipients-per-day", bad[i]),
                       "value must be a whole number from 1 to 1000000, or inherit");
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    assert_int_equal(m.limits.recipients_per_day, 1000000);
    assert_int_equal(dir_mailbox_set(f->d, "nobody@example.com", "max-sessions", "1"),
                     DIR_NOTFOUND);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "max_sessions", "1"), DIR_INVALID);
    assert_non_null(strstr(dir_error(f->d), "recipients-per-message"));
    /* a mailbox's smtp-auth still works alongside */
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "smtp-auth", "on"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    assert_int_equal(m.smtp_auth, SWITCH_ON);
    assert_int_equal(m.limits.sessions, 10);
}

static void test_effective_limits(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "max-sessions", "5"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "recipients-per-day", "200"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "recipients-per-day", "50"),
                     DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "recipients-per-message", "9"),
                     DIR_OK);
    struct dir_auth_view v;
    struct dir_limits l;
    assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.sessions, 5);               /* tenant */
    assert_int_equal(l.messages_per_minute, 30);   /* tenant default */
    assert_int_equal(l.recipients_per_day, 50);    /* mailbox */
    assert_int_equal(l.recipients_per_message, 9); /* mailbox */

    assert_int_equal(dir_auth_view(f->d, "bob@example.com", &v), DIR_OK);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.sessions, 5);
    assert_int_equal(l.recipients_per_day, 200);
    assert_int_equal(l.recipients_per_message, 500);

    /* a tenant change reaches an inheriting mailbox, not an overriding one */
    assert_int_equal(dir_tenant_set(f->d, "example.com", "recipients-per-message", "20"), DIR_OK);
    assert_int_equal(dir_auth_view(f->d, "bob@example.com", &v), DIR_OK);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.recipients_per_message, 20);
    assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.recipients_per_message, 9);
    assert_int_equal(
        dir_mailbox_set(f->d, "alice@example.com", "recipients-per-message", "inherit"), DIR_OK);
    assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.recipients_per_message, 20);

    /* no mailbox: the tenant's; no tenant: the SPEC defaults, never 0 */
    assert_int_equal(dir_auth_view(f->d, "nobody@example.com", &v), DIR_OK);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.sessions, 5);
    assert_int_equal(l.recipients_per_day, 200);
    assert_int_equal(dir_auth_view(f->d, "x@nowhere.example", &v), DIR_OK);
    assert_false(v.tenant_found);
    dir_effective_limits(&v, &l);
    assert_int_equal(l.sessions, 3);
    assert_int_equal(l.messages_per_minute, 30);
    assert_int_equal(l.recipients_per_day, 10000);
    assert_int_equal(l.recipients_per_message, 500);
}

static void test_auth_view_new_fields(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "issuer", "https://idp.example"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "jwks", "/etc/jwks.json"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "audience", "aud-1"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "scope", "mail.send"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "identity-claim", "email"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "messages-per-minute", "12"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "bob@example.com", "max-sessions", "2"), DIR_OK);
    struct dir_auth_view v;
    assert_int_equal(dir_auth_view(f->d, "BOB@example.org", &v), DIR_OK); /* not bob's domain */
    assert_true(v.tenant_found);
    assert_false(v.mailbox_found);
    assert_string_equal(v.tenant.oauth_issuer, "https://idp.example");
    assert_int_equal(dir_auth_view(f->d, "Bob@Example.com", &v), DIR_OK);
    assert_true(v.mailbox_found);
    assert_string_equal(v.tenant.oauth_issuer, "https://idp.example");
    assert_string_equal(v.tenant.oauth_jwks, "/etc/jwks.json");
    assert_string_equal(v.tenant.oauth_audience, "aud-1");
    assert_string_equal(v.tenant.oauth_scope, "mail.send");
    assert_string_equal(v.tenant.oauth_identity_claim, "email");
    assert_int_equal(v.tenant.limits.messages_per_minute, 12);
    assert_int_equal(v.tenant.limits.sessions, 3);
    assert_int_equal(v.mailbox.limits.sessions, 2);
    assert_int_equal(v.mailbox.limits.messages_per_minute, 0);
    /* another tenant keeps its defaults */
    assert_int_equal(dir_auth_view(f->d, "carol@example.net", &v), DIR_OK);
    assert_string_equal(v.tenant.oauth_issuer, "");
    assert_string_equal(v.tenant.oauth_audience, "submitd");
    assert_int_equal(v.tenant.limits.messages_per_minute, 30);
}

/* --- send-as grants --- */

static void test_send_as(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_mailbox_add(f->d, "shared@example.org", NULL), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "bob@example.com", "sales@example.com"), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "bob@example.com", "bob@example.org"), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "info@example.com"), DIR_OK);
    int64_t alice = mailbox_id(f, "alice@example.com");
    int64_t bob = mailbox_id(f, "bob@example.com");
    assert_int_equal(dir_may_send_as(f->d, alice, "shared@example.org"), DIR_NOTFOUND);

    assert_int_equal(dir_send_as_grant(f->d, "Alice@example.com", "Shared@Example.org"), DIR_OK);
    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "sales@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "shared@example.org"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "SALES@example.com"), DIR_OK);
    /* exactly the granted address: not bob himself, nor bob's other alias */
    assert_int_equal(dir_may_send_as(f->d, alice, "bob@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, alice, "bob@example.org"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, bob, "shared@example.org"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, alice, "alice@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "info@example.com"), DIR_OK);
    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "bob@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "bob@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "bob@example.org"), DIR_NOTFOUND);

    struct names c = {0};
    assert_int_equal(dir_send_as_list(f->d, "ALICE@example.com", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.v[0], "bob@example.com");
    assert_string_equal(c.v[1], "sales@example.com");
    assert_string_equal(c.v[2], "shared@example.org");
    memset(&c, 0, sizeof c);
    assert_int_equal(dir_send_as_list(f->d, "bob@example.com", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(dir_send_as_list(f->d, "nobody@example.com", collect_name, &c), DIR_NOTFOUND);
    assert_int_equal(dir_send_as_list(f->d, "bad", collect_name, &c), DIR_INVALID);

    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "SALES@example.com"), DIR_EXISTS);
    assert_string_equal(dir_error(f->d), "alice@example.com may already send as sales@example.com");
    assert_invalid(dir_send_as_grant(f->d, "alice@example.com", "alice@example.com"),
                   "alice@example.com is the mailbox itself; it may always send as itself");
    assert_invalid(dir_send_as_grant(f->d, "alice@example.com", "info@example.com"),
                   "info@example.com is already an alias of alice@example.com");
    assert_invalid(dir_send_as_grant(f->d, "alice@example.com", "carol@example.net"),
                   "carol@example.net is not a mailbox or alias of the tenant example.com");
    assert_invalid(dir_send_as_grant(f->d, "alice@example.com", "nobody@example.com"),
                   "nobody@example.com is not a mailbox or alias of the tenant example.com");
    assert_invalid(dir_send_as_grant(f->d, "carol@example.net", "bob@example.com"),
                   "bob@example.com is not a mailbox or alias of the tenant example.net");
    assert_invalid(dir_send_as_grant(f->d, "alice@example.com", "x y"),
                   "'x y' is not a valid mailbox address");
    assert_int_equal(dir_send_as_grant(f->d, "nobody@example.com", "bob@example.com"),
                     DIR_NOTFOUND);
    assert_string_equal(dir_error(f->d), "no mailbox nobody@example.com");

    assert_int_equal(dir_send_as_revoke(f->d, "alice@example.com", "Shared@example.org"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "shared@example.org"), DIR_NOTFOUND);
    assert_int_equal(dir_send_as_revoke(f->d, "alice@example.com", "shared@example.org"),
                     DIR_NOTFOUND);
    assert_string_equal(dir_error(f->d),
                        "alice@example.com has no grant to send as shared@example.org");
    assert_int_equal(dir_send_as_revoke(f->d, "nobody@example.com", "bob@example.com"),
                     DIR_NOTFOUND);
    assert_int_equal(dir_send_as_revoke(f->d, "alice@example.com", "bad"), DIR_INVALID);

    /* removing the alias removes the grant to it; a new alias of the same name is not granted */
    assert_int_equal(dir_alias_remove(f->d, "sales@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "sales@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_alias_add(f->d, "bob@example.com", "sales@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "sales@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, bob, "sales@example.com"), DIR_OK);
}

static void test_send_as_target_removed(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_alias_add(f->d, "bob@example.com", "sales@example.com"), DIR_OK);
    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "bob@example.com"), DIR_OK);
    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "sales@example.com"), DIR_OK);
    assert_int_equal(dir_send_as_grant(f->d, "bob@example.com", "alice@example.com"), DIR_OK);
    int64_t alice = mailbox_id(f, "alice@example.com");
    assert_int_equal(raw_count(f, "SELECT count(*) FROM send_as"), 3);
    /* bob goes: grants to bob and to his alias go, and so do the grants bob held */
    assert_int_equal(dir_mailbox_remove(f->d, "bob@example.com"), DIR_OK);
    assert_int_equal(raw_count(f, "SELECT count(*) FROM send_as"), 0);
    assert_int_equal(dir_may_send_as(f->d, alice, "bob@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_mailbox_add(f->d, "bob@example.com", NULL), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice, "bob@example.com"), DIR_NOTFOUND);
}

/* --- access grants --- */

static void test_access(void **state)
{
    struct fixture *f = *state;
    populate(f);
    int64_t alice = mailbox_id(f, "alice@example.com");
    int64_t bob = mailbox_id(f, "bob@example.com");
    assert_int_equal(dir_may_act_as(f->d, alice, "alice@example.com"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "ALICE@Example.COM"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "bob@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_may_act_as(f->d, alice, ""), DIR_NOTFOUND);
    assert_int_equal(dir_may_act_as(f->d, alice, NULL), DIR_NOTFOUND);
    assert_int_equal(dir_may_act_as(f->d, 9999, "alice@example.com"), DIR_NOTFOUND);

    assert_int_equal(dir_access_grant(f->d, "Alice@example.com", "Bob@Example.com"), DIR_OK);
    assert_int_equal(dir_access_grant(f->d, "alice@example.com", "8f2a-app-objectid"), DIR_OK);
    assert_int_equal(dir_access_grant(f->d, "alice@example.com", "carol@example.net"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "bob@example.com"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "BOB@EXAMPLE.COM"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "8F2A-APP-OBJECTID"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "carol@example.net"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "bob@example"), DIR_NOTFOUND);
    assert_int_equal(dir_may_act_as(f->d, bob, "alice@example.com"), DIR_NOTFOUND); /* one way */

    assert_int_equal(dir_access_grant(f->d, "alice@example.com", "BOB@example.com"), DIR_EXISTS);
    assert_string_equal(dir_error(f->d), "BOB@example.com may already act as alice@example.com");
    assert_invalid(dir_access_grant(f->d, "alice@example.com", "Alice@Example.com"),
                   "alice@example.com is the mailbox itself; it needs no grant");
    const char *bad_principal = "a principal must be 1-256 printable characters without spaces "
                                "(an address, a UPN or an application's id)";
    assert_invalid(dir_access_grant(f->d, "alice@example.com", ""), bad_principal);
    assert_invalid(dir_access_grant(f->d, "alice@example.com", NULL), bad_principal);
    assert_invalid(dir_access_grant(f->d, "alice@example.com", "a b"), bad_principal);
    assert_invalid(dir_access_grant(f->d, "alice@example.com", "a\tb"), bad_principal);
    assert_invalid(dir_access_grant(f->d, "alice@example.com", "a\x7f"), bad_principal);
    assert_invalid(dir_access_grant(f->d, "alice@example.com", "\xc3\x28"), bad_principal);
    assert_int_equal(dir_access_grant(f->d, "alice@example.com", "jürgen@example.com"), DIR_OK);
    char longer[300];
    memset(longer, 'p', 257);
    longer[257] = '\0';
    assert_invalid(dir_access_grant(f->d, "alice@example.com", longer), bad_principal);
    assert_int_equal(dir_may_act_as(f->d, alice, longer), DIR_NOTFOUND);
    longer[256] = '\0';
    assert_int_equal(dir_access_grant(f->d, "alice@example.com", longer), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, longer), DIR_OK);
    assert_int_equal(dir_access_grant(f->d, "nobody@example.com", "x"), DIR_NOTFOUND);
    assert_int_equal(dir_access_grant(f->d, "bad", "x"), DIR_INVALID);

    struct names c = {0};
    assert_int_equal(dir_access_list(f->d, "alice@example.com", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.v[0], "8f2a-app-objectid");
    assert_string_equal(c.v[1], "Bob@Example.com"); /* as first spelled */
    assert_string_equal(c.v[2], "carol@example.net");
    assert_string_equal(c.v[3], "jürgen@example.com");
    assert_string_equal(c.v[4], longer);
    assert_int_equal(dir_access_list(f->d, "nobody@example.com", collect_name, &c), DIR_NOTFOUND);

    assert_int_equal(dir_access_revoke(f->d, "alice@example.com", "bob@EXAMPLE.com"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "bob@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_access_revoke(f->d, "alice@example.com", "bob@example.com"), DIR_NOTFOUND);
    assert_string_equal(dir_error(f->d),
                        "bob@example.com has no access grant to alice@example.com");
    assert_int_equal(dir_access_revoke(f->d, "alice@example.com", "a b"), DIR_INVALID);
    assert_int_equal(dir_may_act_as(f->d, alice, "alice@example.com"), DIR_OK);
}

/* --- app passwords --- */

struct app_passwords {
    int n;
    struct dir_app_password p[24];
};

static void collect_app_password(const struct dir_app_password *p, void *arg)
{
    struct app_passwords *c = arg;
    if (c->n < 24)
        c->p[c->n++] = *p;
}

static void test_app_passwords(void **state)
{
    struct fixture *f = *state;
    populate(f);
    int64_t alice = mailbox_id(f, "alice@example.com");
    int64_t bob = mailbox_id(f, "bob@example.com");
    char h1[65];
    char h2[65];
    char h3[65];
    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    int64_t id = -1;
    assert_int_equal(dir_app_password_match(f->d, alice, h1, &id), DIR_NOTFOUND);
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(dir_app_password_add(f->d, "Alice@example.com", "Alice's iPhone", h1), DIR_OK);
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", "printer", h2), DIR_OK);
    assert_int_equal(dir_app_password_add(f->d, "bob@example.com", "printer", h3), DIR_OK);
    assert_int_equal(dir_app_password_match(f->d, alice, h1, &id), DIR_OK);
    int64_t iphone = id;
    assert_true(iphone > 0);
    assert_int_equal(dir_app_password_match(f->d, alice, h2, &id), DIR_OK);
    assert_true(id != iphone);
    assert_int_equal(dir_app_password_match(f->d, alice, h3, &id), DIR_NOTFOUND); /* bob's */
    assert_int_equal(dir_app_password_match(f->d, bob, h1, &id), DIR_NOTFOUND);
    assert_int_equal(dir_app_password_match(f->d, bob, h3, &id), DIR_OK);
    char upper[65];
    snprintf(upper, sizeof upper, "%s", h1);
    for (int i = 0; i < 64; i++)
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    assert_int_equal(dir_app_password_match(f->d, alice, upper, &id), DIR_NOTFOUND);
    assert_int_equal(dir_app_password_match(f->d, alice, "", &id), DIR_NOTFOUND);
    assert_int_equal(dir_app_password_match(f->d, alice, NULL, &id), DIR_NOTFOUND);

    struct app_passwords c = {0};
    assert_int_equal(dir_app_password_list(f->d, "alice@example.com", collect_app_password, &c),
                     DIR_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.p[0].label, "Alice's iPhone"); /* in the order added */
    assert_int_equal(c.p[0].id, iphone);
    assert_int_equal(c.p[0].mailbox_id, alice);
    assert_true(c.p[0].created >= before && c.p[0].created <= (int64_t)time(NULL));
    assert_int_equal(c.p[0].last_used, 0);
    assert_string_equal(c.p[1].label, "printer");

    /* touch: last used, never backwards, and not a setting (no generation bump) */
    int64_t g = generation(f->d);
    assert_int_equal(dir_app_password_touch(f->d, iphone, 1700000000), DIR_OK);
    assert_int_equal(dir_app_password_touch(f->d, iphone, 1600000000), DIR_OK);
    assert_int_equal(generation(f->d), g);
    assert_int_equal(dir_app_password_touch(f->d, 99999, 1700000000), DIR_NOTFOUND);
    memset(&c, 0, sizeof c);
    assert_int_equal(dir_app_password_list(f->d, "alice@example.com", collect_app_password, &c),
                     DIR_OK);
    assert_int_equal(c.p[0].last_used, 1700000000);
    assert_int_equal(c.p[1].last_used, 0);

    /* duplicates and validation */
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", "PRINTER", h3), DIR_EXISTS);
    assert_string_equal(dir_error(f->d),
                        "alice@example.com already has an app password labelled 'PRINTER'");
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "laptop", h2),
                   "alice@example.com already has this app password under another label");
    const char *bad_label = "an app password label must be 1-63 printable ASCII characters, not "
                            "starting or ending with a space";
    char longer[80];
    memset(longer, 'l', 64);
    longer[64] = '\0';
    const char *labels[] = {"", " lead", "trail ", "tab\there", "caf\xc3\xa9", longer};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        assert_invalid(dir_app_password_add(f->d, "alice@example.com", labels[i], h3), bad_label);
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", NULL, h3), bad_label);
    longer[63] = '\0';
    char h4[65];
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", longer, hash_of(4, h4)),
                     DIR_OK);
    const char *bad_hash = "an app password hash must be 64 lower-case hex digits";
    char hex[70];
    hash_of(5, hex);
    hex[63] = '\0';
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "x", hex), bad_hash);
    hash_of(5, hex);
    strcat(hex, "0");
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "x", hex), bad_hash);
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "x", upper), bad_hash);
    hash_of(5, hex);
    hex[10] = 'g';
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "x", hex), bad_hash);
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "x", NULL), bad_hash);
    assert_int_equal(dir_app_password_add(f->d, "nobody@example.com", "x", hash_of(5, hex)),
                     DIR_NOTFOUND);
    assert_int_equal(dir_app_password_list(f->d, "nobody@example.com", collect_app_password, &c),
                     DIR_NOTFOUND);

    /* revoke */
    assert_int_equal(dir_app_password_revoke(f->d, "alice@example.com", "alice's IPHONE"), DIR_OK);
    assert_int_equal(dir_app_password_match(f->d, alice, h1, &id), DIR_NOTFOUND);
    assert_int_equal(dir_app_password_revoke(f->d, "alice@example.com", "Alice's iPhone"),
                     DIR_NOTFOUND);
    assert_string_equal(dir_error(f->d),
                        "alice@example.com has no app password labelled 'Alice's iPhone'");
    assert_int_equal(dir_app_password_revoke(f->d, "alice@example.com", ""), DIR_INVALID);
    assert_int_equal(dir_app_password_match(f->d, bob, h3, &id), DIR_OK); /* bob's stays */
    /* the label is free again, and the secret too */
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", "Alice's iPhone", h1), DIR_OK);
}

static void test_app_passwords_max(void **state)
{
    struct fixture *f = *state;
    populate(f);
    char hex[65];
    char label[16];
    for (int i = 0; i < 20; i++) {
        snprintf(label, sizeof label, "device %d", i);
        assert_int_equal(dir_app_password_add(f->d, "alice@example.com", label, hash_of(i, hex)),
                         DIR_OK);
    }
    assert_invalid(dir_app_password_add(f->d, "alice@example.com", "one more", hash_of(20, hex)),
                   "alice@example.com already has 20 app passwords, the most it may have; "
                   "revoke one");
    assert_int_equal(dir_app_password_add(f->d, "bob@example.com", "one more", hash_of(20, hex)),
                     DIR_OK); /* per mailbox */
    assert_int_equal(dir_app_password_revoke(f->d, "alice@example.com", "device 3"), DIR_OK);
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", "one more", hash_of(21, hex)),
                     DIR_OK);
    struct app_passwords c = {0};
    assert_int_equal(dir_app_password_list(f->d, "alice@example.com", collect_app_password, &c),
                     DIR_OK);
    assert_int_equal(c.n, 20);
}

/* --- cascades and the generation --- */

static void test_mailbox_remove_cascades(void **state)
{
    struct fixture *f = *state;
    populate(f);
    char hex[65];
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "info@example.com"), DIR_OK);
    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "bob@example.com"), DIR_OK);
    assert_int_equal(dir_access_grant(f->d, "alice@example.com", "bob@example.com"), DIR_OK);
    assert_int_equal(dir_access_grant(f->d, "bob@example.com", "alice@example.com"), DIR_OK);
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", "phone", hash_of(1, hex)),
                     DIR_OK);
    assert_int_equal(dir_app_password_add(f->d, "bob@example.com", "phone", hash_of(2, hex)),
                     DIR_OK);
    int64_t alice = mailbox_id(f, "alice@example.com");
    int64_t bob = mailbox_id(f, "bob@example.com");
    assert_int_equal(dir_mailbox_remove(f->d, "alice@example.com"), DIR_OK);
    assert_int_equal(raw_count(f, "SELECT count(*) FROM send_as"), 0);
    assert_int_equal(raw_count(f, "SELECT count(*) FROM aliases"), 0);
    assert_int_equal(raw_count(f, "SELECT count(*) FROM app_passwords"), 1); /* bob's */
    /* bob's grant to the principal alice@example.com is not alice's row: it stays */
    assert_int_equal(raw_count(f, "SELECT count(*) FROM access"), 1);
    assert_int_equal(dir_may_act_as(f->d, bob, "alice@example.com"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, alice, "bob@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_app_password_match(f->d, alice, hash_of(1, hex), NULL), DIR_NOTFOUND);
    /* a new mailbox at the address starts with nothing */
    assert_int_equal(dir_mailbox_add(f->d, "alice@example.com", NULL), DIR_OK);
    struct names c = {0};
    assert_int_equal(dir_send_as_list(f->d, "alice@example.com", collect_name, &c), DIR_OK);
    assert_int_equal(dir_access_list(f->d, "alice@example.com", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 0);
    struct app_passwords a = {0};
    assert_int_equal(dir_app_password_list(f->d, "alice@example.com", collect_app_password, &a),
                     DIR_OK);
    assert_int_equal(a.n, 0);
}

static void test_generation(void **state)
{
    struct fixture *f = *state;
    populate(f);
    char hex[65];
    int64_t alice = mailbox_id(f, "alice@example.com");
    int64_t g = generation(f->d);
    const char *tenant_keys[][2] = {
        {"issuer", "https://idp.example"},
        {"jwks", "/etc/jwks.json"},
        {"audience", "aud"},
        {"scope", "s"},
        {"identity-claim", "upn"},
        {"max-sessions", "4"},
        {"messages-per-minute", "5"},
        {"recipients-per-day", "6"},
        {"recipients-per-message", "7"},
    };
    for (size_t i = 0; i < sizeof tenant_keys / sizeof tenant_keys[0]; i++)
        BUMPS(dir_tenant_set(f->d, "example.com", tenant_keys[i][0], tenant_keys[i][1]));
    BUMPS(dir_mailbox_set(f->d, "alice@example.com", "max-sessions", "9"));
    BUMPS(dir_mailbox_set(f->d, "alice@example.com", "max-sessions", "inherit"));
    BUMPS(dir_send_as_grant(f->d, "alice@example.com", "bob@example.com"));
    BUMPS(dir_send_as_revoke(f->d, "alice@example.com", "bob@example.com"));
    BUMPS(dir_access_grant(f->d, "alice@example.com", "app-1"));
    BUMPS(dir_access_revoke(f->d, "alice@example.com", "app-1"));
    BUMPS(dir_app_password_add(f->d, "alice@example.com", "phone", hash_of(1, hex)));
    int64_t id = 0;
    STILL(dir_app_password_match(f->d, alice, hex, &id));
    STILL(dir_app_password_touch(f->d, id, 1700000000));
    STILL(dir_may_act_as(f->d, alice, "app-1"));
    STILL(dir_may_send_as(f->d, alice, "bob@example.com"));
    STILL(dir_tenant_set(f->d, "example.com", "issuer", "http://idp.example"));
    STILL(dir_tenant_set(f->d, "example.com", "max-sessions", "0"));
    STILL(dir_mailbox_set(f->d, "alice@example.com", "max-sessions", "0"));
    STILL(dir_send_as_grant(f->d, "alice@example.com", "carol@example.net"));
    STILL(dir_send_as_revoke(f->d, "alice@example.com", "bob@example.com"));
    STILL(dir_access_grant(f->d, "alice@example.com", "a b"));
    STILL(dir_access_revoke(f->d, "alice@example.com", "app-1"));
    STILL(dir_app_password_add(f->d, "alice@example.com", "phone", hash_of(2, hex)));
    STILL(dir_app_password_revoke(f->d, "alice@example.com", "tablet"));
    BUMPS(dir_app_password_revoke(f->d, "alice@example.com", "phone"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, dir_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tenant_oauth_defaults),
        T(test_tenant_issuer),
        T(test_tenant_jwks),
        T(test_tenant_audience_scope_claim),
        T(test_tenant_limits),
        T(test_mailbox_limits),
        T(test_effective_limits),
        T(test_auth_view_new_fields),
        T(test_send_as),
        T(test_send_as_target_removed),
        T(test_access),
        T(test_app_passwords),
        T(test_app_passwords_max),
        T(test_mailbox_remove_cascades),
        T(test_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
