/* test_directory_routes.c: the delivery routes of the directory (directory_routes.c, migration 3
 * of directory_sqlite.c): each kind stored and read back with its defaults, replacing and
 * removing a route, every validation error with its reason, the rotated refresh token, the
 * generation, the cascade when a tenant's row goes, and the upgrade of a version-2 database.
 * Each test gets a fresh directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "directory.h"
#include "test_directory_fixture.h"

static int setup(void **state)
{
    if (dir_fixture_setup(state, "test_directory_routes") != 0)
        return -1;
    struct fixture *f = *state;
    if (dir_tenant_add(f->d, "example.com") != DIR_OK ||
        dir_domain_add(f->d, "example.com", "example.org") != DIR_OK ||
        dir_tenant_add(f->d, "other.test") != DIR_OK)
        return -1;
    return 0;
}

#define SET(field, value) snprintf((field), sizeof(field), "%s", (value))

static struct dir_route relay(const char *host)
{
    struct dir_route r;
    memset(&r, 0, sizeof r);
    r.kind = ROUTE_RELAY;
    r.verify = true;
    SET(r.host, host);
    return r;
}

static struct dir_route xoauth2(void)
{
    struct dir_route r = relay("smtp.office365.com");
    SET(r.auth, "xoauth2");
    SET(r.user, "relay@example.com");
    SET(r.token_url, "https://login.example.net/tenant/oauth2/v2.0/token");
    SET(r.client_id, "0d6f2e3a-client");
    SET(r.secret, "client secret value");
    return r;
}

static struct dir_route get(struct fixture *f, const char *domain)
{
    struct dir_route r;
    assert_int_equal(dir_route_get(f->d, domain, &r), DIR_OK);
    return r;
}

/* The route is refused with exactly this reason, and nothing changed. */
#define REFUSED(route, message)                                                                    \
    do {                                                                                           \
        struct dir_route r_ = (route);                                                             \
        int64_t g_ = generation(f->d);                                                             \
        assert_invalid(dir_route_set(f->d, "example.com", &r_), (message));                        \
        assert_int_equal(generation(f->d), g_);                                                    \
        assert_int_equal(get(f, "example.com").kind, ROUTE_NONE);                                  \
    } while (0)

/* --- reading --- */

static void test_no_route(void **state)
{
    struct fixture *f = *state;
    struct dir_route r;
    memset(&r, 0x55, sizeof r);
    assert_int_equal(dir_route_get(f->d, "example.com", &r), DIR_OK);
    assert_int_equal(r.kind, ROUTE_NONE);
    assert_string_equal(r.host, "");
    assert_string_equal(r.secret, "");
}

static void test_unknown_tenant(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("mx.example.net");
    int64_t g = generation(f->d);
    assert_int_equal(dir_route_get(f->d, "nobody.test", &r), DIR_NOTFOUND);
    assert_int_equal(r.kind, ROUTE_NONE);
    r = relay("mx.example.net");
    STILL(assert_int_equal(dir_route_set(f->d, "nobody.test", &r), DIR_NOTFOUND));
    STILL(assert_int_equal(dir_route_set_refresh_token(f->d, "nobody.test", "rt"), DIR_NOTFOUND));
    assert_invalid(dir_route_get(f->d, "not a domain", &r), "'not a domain' is not a valid domain");
    assert_int_equal(dir_route_set(f->d, "-bad.test", &r), DIR_INVALID);
    assert_int_equal(dir_route_set(f->d, "example.com", NULL), DIR_INVALID);
}

/* --- each kind --- */

static void test_relay_defaults(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("Smtp.Example.NET");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_int_equal(r.kind, ROUTE_RELAY);
    assert_string_equal(r.host, "smtp.example.net");
    assert_int_equal(r.port, 587);
    assert_string_equal(r.tls, "required");
    assert_true(r.verify);
    assert_string_equal(r.cafile, "");
    assert_string_equal(r.auth, "none");
    assert_string_equal(r.user, "");
    assert_string_equal(r.grant, "");
    assert_int_equal(r.max_connections, 10);
    assert_false(r.secret_in_body);
    /* the other tenant has none */
    assert_int_equal(get(f, "other.test").kind, ROUTE_NONE);
}

static void test_relay_implicit_and_addresses(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("192.0.2.25");
    SET(r.tls, "implicit");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_string_equal(r.host, "192.0.2.25");
    assert_int_equal(r.port, 465);
    assert_string_equal(r.tls, "implicit");

    r = relay("[2001:DB8::1]");
    r.port = 2525;
    SET(r.tls, "opportunistic");
    r.verify = false;
    SET(r.cafile, "/etc/ssl/relay-ca.pem");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_string_equal(r.host, "2001:DB8::1");
    assert_int_equal(r.port, 2525);
    assert_string_equal(r.tls, "opportunistic");
    assert_false(r.verify);
    assert_string_equal(r.cafile, "/etc/ssl/relay-ca.pem");
    r = relay("::1");
    r.port = 65535;
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    assert_int_equal(get(f, "example.com").port, 65535);
}

static void test_relay_plain_and_login(void **state)
{
    struct fixture *f = *state;
    const char *mechs[] = {"plain", "login"};
    for (size_t i = 0; i < 2; i++) {
        struct dir_route r = relay("smtp.example.net");
        SET(r.auth, mechs[i]);
        SET(r.user, "relay user@example.com");
        SET(r.secret, "p@ss word \xc3\xa9");
        r.max_connections = 3;
        assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
        r = get(f, "example.com");
        assert_string_equal(r.auth, mechs[i]);
        assert_string_equal(r.user, "relay user@example.com");
        assert_string_equal(r.secret, "p@ss word \xc3\xa9"); /* stored as given */
        assert_int_equal(r.max_connections, 3);
        assert_string_equal(r.token_url, "");
        assert_string_equal(r.grant, "");
    }
}

static void test_relay_xoauth2_client_credentials(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = xoauth2();
    SET(r.scope, "https://outlook.office365.com/.default offline_access");
    r.secret_in_body = true;
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_string_equal(r.auth, "xoauth2");
    assert_string_equal(r.user, "relay@example.com");
    assert_string_equal(r.token_url, "https://login.example.net/tenant/oauth2/v2.0/token");
    assert_string_equal(r.client_id, "0d6f2e3a-client");
    assert_string_equal(r.secret, "client secret value");
    assert_string_equal(r.scope, "https://outlook.office365.com/.default offline_access");
    assert_string_equal(r.grant, "client_credentials");
    assert_string_equal(r.refresh_token, "");
    assert_true(r.secret_in_body);
}

static void test_relay_xoauth2_refresh_token(void **state)
{
    struct fixture *f = *state;
    /* no grant named: a refresh token means that grant; no client secret (a public client) */
    struct dir_route r = xoauth2();
    SET(r.secret, "");
    SET(r.refresh_token, "0.AAAA-refresh.token_1");
    SET(r.token_url, "http://127.0.0.1:8080/token");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_string_equal(r.grant, "refresh_token");
    assert_string_equal(r.refresh_token, "0.AAAA-refresh.token_1");
    assert_string_equal(r.secret, "");
    /* named, with a client secret too (a confidential client) */
    r = xoauth2();
    SET(r.grant, "refresh_token");
    SET(r.refresh_token, "rt-2");
    SET(r.token_url, "http://[::1]/token");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_string_equal(r.grant, "refresh_token");
    assert_string_equal(r.secret, "client secret value");
    SET(r.token_url, "http://localhost/token");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
}

static void test_lmtp(void **state)
{
    struct fixture *f = *state;
    struct dir_route r;
    memset(&r, 0, sizeof r);
    r.kind = ROUTE_LMTP;
    r.verify = true;
    SET(r.host, "mailstore.internal");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_int_equal(r.kind, ROUTE_LMTP);
    assert_int_equal(r.port, 24);
    assert_string_equal(r.tls, "none");
    assert_string_equal(r.auth, "none");
    assert_int_equal(r.max_connections, 10);

    SET(r.tls, "required");
    SET(r.cafile, "/etc/ssl/store.pem");
    r.port = 2424;
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_string_equal(r.tls, "required");
    assert_string_equal(r.cafile, "/etc/ssl/store.pem");
    assert_int_equal(r.port, 2424);
}

static void test_maildir(void **state)
{
    struct fixture *f = *state;
    struct dir_route r;
    memset(&r, 0, sizeof r);
    r.kind = ROUTE_MAILDIR;
    SET(r.maildir, "/srv/mail/%d/%u/Maildir");
    r.max_connections = 1000;
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_int_equal(r.kind, ROUTE_MAILDIR);
    assert_string_equal(r.maildir, "/srv/mail/%d/%u/Maildir");
    assert_string_equal(r.host, "");
    assert_int_equal(r.port, 0);
    assert_int_equal(r.max_connections, 1000);
    SET(r.maildir, "/srv/mail/100%%/%a");
    SET(r.tls, "");
    SET(r.auth, "");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    assert_string_equal(get(f, "example.com").maildir, "/srv/mail/100%%/%a");
}

/* --- replacing and removing --- */

static void test_replace_clears_the_old_route(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = xoauth2();
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    memset(&r, 0, sizeof r);
    r.kind = ROUTE_MAILDIR;
    SET(r.maildir, "/var/mail/%a");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    r = get(f, "example.com");
    assert_int_equal(r.kind, ROUTE_MAILDIR);
    assert_string_equal(r.secret, "");
    assert_string_equal(r.user, "");
    assert_string_equal(r.token_url, "");
    sqlite3 *db = raw_open(f);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM routes", 0), 1);
    assert_int_equal(
        tu_raw_int(db, "SELECT count(*) FROM routes WHERE secret LIKE '%client secret%'", 0), 0);
    sqlite3_close(db);
}

static void test_remove(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("smtp.example.net");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    assert_int_equal(dir_route_set(f->d, "other.test", &r), DIR_OK);
    struct dir_route none;
    memset(&none, 0, sizeof none);
    assert_int_equal(dir_route_set(f->d, "example.com", &none), DIR_OK);
    assert_int_equal(get(f, "example.com").kind, ROUTE_NONE);
    assert_int_equal(get(f, "other.test").kind, ROUTE_RELAY); /* only that tenant's */
    /* removing what is not there is not an error */
    assert_int_equal(dir_route_set(f->d, "example.com", &none), DIR_OK);
    /* ROUTE_NONE ignores the other fields */
    r.kind = ROUTE_NONE;
    assert_int_equal(dir_route_set(f->d, "other.test", &r), DIR_OK);
    assert_int_equal(get(f, "other.test").kind, ROUTE_NONE);
}

static void test_extra_domain_names_the_tenant(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("smtp.example.net");
    assert_int_equal(dir_route_set(f->d, "EXAMPLE.ORG", &r), DIR_OK);
    assert_int_equal(get(f, "example.com").kind, ROUTE_RELAY);
    assert_string_equal(get(f, "example.org").host, "smtp.example.net");
}

/* --- validation --- */

static void test_invalid_host_and_port(void **state)
{
    struct fixture *f = *state;
    REFUSED(relay(""), "a relay or lmtp route needs a host name or address");
    REFUSED(relay("smtp example.net"), "a relay or lmtp route needs a host name or address");
    REFUSED(relay("exa_mple.com"), "'exa_mple.com' is not a valid host name or IP address");
    REFUSED(relay("-smtp.example.net"),
            "'-smtp.example.net' is not a valid host name or IP address");
    REFUSED(relay("[smtp.example.net]"),
            "'[smtp.example.net]' is not a valid host name or IP address");
    struct dir_route r = relay("smtp.example.net");
    r.port = 65536;
    REFUSED(r, "the port must be 1-65535");
    r.port = -1;
    REFUSED(r, "the port must be 1-65535");
    /* an unterminated field */
    r = relay("x");
    memset(r.host, 'a', sizeof r.host);
    REFUSED(r, "a relay or lmtp route needs a host name or address");
}

static void test_invalid_tls(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("smtp.example.net");
    SET(r.tls, "always");
    REFUSED(r, "tls must be required, opportunistic, none or implicit");
    r = relay("smtp.example.net");
    SET(r.cafile, "ca.pem");
    REFUSED(r, "the CA file must be an absolute path");
    SET(r.tls, "none");
    SET(r.cafile, "/etc/ca.pem");
    REFUSED(r, "a CA file needs TLS (tls is none)");
    SET(r.tls, "required");
    SET(r.cafile, "/etc/ca\n.pem");
    REFUSED(r, "the CA file must be at most 1023 printable characters");
}

static void test_invalid_auth(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("smtp.example.net");
    SET(r.auth, "cram-md5");
    REFUSED(r, "auth must be none, plain, login or xoauth2");
    SET(r.auth, "plain");
    SET(r.secret, "pw");
    REFUSED(r, "auth plain needs a user");
    SET(r.auth, "login");
    SET(r.user, "u");
    SET(r.secret, "");
    REFUSED(r, "auth login needs a secret (the upstream password)");
    SET(r.auth, "none");
    SET(r.secret, "pw");
    REFUSED(r, "a user or secret needs auth plain, login or xoauth2");
    SET(r.auth, "");
    REFUSED(r, "a user or secret needs auth plain, login or xoauth2");
    SET(r.auth, "plain");
    SET(r.user, "u\r\nRSET");
    REFUSED(r, "the user must be at most 256 printable characters");
    SET(r.user, "u");
    SET(r.secret, "pw\r\n");
    REFUSED(r, "the secret must be at most 1023 printable characters");
    SET(r.secret, "pw");
    SET(r.client_id, "id");
    REFUSED(r, "a token URL, client id, scope, grant, refresh token or secret-in-body needs "
               "auth xoauth2");
    SET(r.client_id, "");
    r.secret_in_body = true;
    REFUSED(r, "a token URL, client id, scope, grant, refresh token or secret-in-body needs "
               "auth xoauth2");
}

static void test_invalid_xoauth2(void **state)
{
    struct fixture *f = *state;
    const char *bad_urls[] = {"",
                              "ftp://login.example.net/token",
                              "http://login.example.net/token",
                              "http://localhost.example.net/token",
                              "http://127.0.0.10/token",
                              "https://",
                              "https:///token",
                              "https://login.example.net/to ken"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        struct dir_route r = xoauth2();
        SET(r.token_url, bad_urls[i]);
        REFUSED(r, "xoauth2 needs a token URL: https://... (http:// only to 127.0.0.1, [::1] or "
                   "localhost), without spaces");
    }
    struct dir_route r = xoauth2();
    SET(r.client_id, "");
    REFUSED(r, "xoauth2 needs a client id");
    r = xoauth2();
    SET(r.user, "");
    REFUSED(r, "auth xoauth2 needs a user");
    r = xoauth2();
    SET(r.secret, "");
    REFUSED(r, "the client_credentials grant needs a client secret");
    r = xoauth2();
    SET(r.grant, "client_credentials");
    SET(r.refresh_token, "rt");
    REFUSED(r, "a refresh token needs the refresh_token grant");
    r = xoauth2();
    SET(r.grant, "refresh_token");
    REFUSED(r, "the refresh_token grant needs a refresh token");
    r = xoauth2();
    SET(r.grant, "password");
    REFUSED(r, "the grant must be client_credentials or refresh_token");
    r = xoauth2();
    SET(r.scope, "a\tb");
    REFUSED(r, "the scope must be at most 511 printable characters");
    r = xoauth2();
    SET(r.refresh_token, "r t");
    REFUSED(r, "the refresh token must be at most 4095 printable characters without spaces");
}

static void test_invalid_lmtp(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("store.internal");
    r.kind = ROUTE_LMTP;
    SET(r.auth, "plain");
    SET(r.user, "u");
    SET(r.secret, "pw");
    REFUSED(r, "an lmtp route does not authenticate (auth must be none)");
    r = relay("");
    r.kind = ROUTE_LMTP;
    REFUSED(r, "a relay or lmtp route needs a host name or address");
    r = relay("store.internal");
    r.kind = ROUTE_LMTP;
    SET(r.maildir, "/srv/%u");
    REFUSED(r, "only a maildir route takes a path template");
}

static void test_invalid_maildir(void **state)
{
    struct fixture *f = *state;
    struct dir_route r;
    memset(&r, 0, sizeof r);
    r.kind = ROUTE_MAILDIR;
    const char *need =
        "a maildir route needs an absolute path template (at most 1023 characters) with %u or %a";
    REFUSED(r, need);
    SET(r.maildir, "srv/mail/%u");
    REFUSED(r, need);
    SET(r.maildir, "/srv/mail/%d");
    REFUSED(r, "the maildir template must contain %u or %a (one directory per recipient)");
    SET(r.maildir, "/srv/mail/%x/%u");
    REFUSED(r, "the maildir template may use only %d, %u, %a and %%");
    SET(r.maildir, "/srv/mail/%u%");
    REFUSED(r, "the maildir template may use only %d, %u, %a and %%");
    SET(r.maildir, "/srv/mail/../%u");
    REFUSED(r, "the maildir template may not contain . or .. segments");
    SET(r.maildir, "/srv/./mail/%u");
    REFUSED(r, "the maildir template may not contain . or .. segments");
    SET(r.maildir, "/srv/mail/%u/..");
    REFUSED(r, "the maildir template may not contain . or .. segments");
    SET(r.maildir, "/srv/mail/%u");
    SET(r.host, "smtp.example.net");
    REFUSED(r, "a maildir route takes only a path template (no host, port, TLS or "
               "authentication)");
    SET(r.host, "");
    SET(r.secret, "pw");
    REFUSED(r, "a maildir route takes only a path template (no host, port, TLS or "
               "authentication)");
    r = relay("smtp.example.net");
    SET(r.maildir, "/srv/%u");
    REFUSED(r, "only a maildir route takes a path template");
}

static void test_max_connections_and_kind(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("smtp.example.net");
    r.max_connections = 1001;
    REFUSED(r, "max connections must be 1-1000");
    r.max_connections = 1;
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    assert_int_equal(get(f, "example.com").max_connections, 1);
    struct dir_route none;
    memset(&none, 0, sizeof none);
    assert_int_equal(dir_route_set(f->d, "example.com", &none), DIR_OK);
    r.kind = (enum dir_route_kind)7;
    REFUSED(r, "unknown route kind 7");
}

/* --- the refresh token, the generation, the cascade --- */

static void test_refresh_token_rotation(void **state)
{
    struct fixture *f = *state;
    int64_t g = generation(f->d);
    STILL(assert_int_equal(dir_route_set_refresh_token(f->d, "example.com", "rt"), DIR_NOTFOUND));
    assert_string_equal(dir_error(f->d), "tenant example.com has no delivery route");
    struct dir_route r = xoauth2();
    BUMPS(dir_route_set(f->d, "example.com", &r));
    assert_invalid(dir_route_set_refresh_token(f->d, "example.com", "rt"),
                   "the route of tenant example.com does not use the refresh_token grant");
    assert_int_equal(generation(f->d), g);
    SET(r.refresh_token, "first");
    SET(r.grant, "refresh_token");
    BUMPS(dir_route_set(f->d, "example.com", &r));
    BUMPS(dir_route_set_refresh_token(f->d, "Example.ORG", "second-rotated"));
    r = get(f, "example.com");
    assert_string_equal(r.refresh_token, "second-rotated");
    assert_string_equal(r.secret, "client secret value"); /* nothing else changed */
    assert_string_equal(r.client_id, "0d6f2e3a-client");
    assert_invalid(dir_route_set_refresh_token(f->d, "example.com", ""),
                   "the refresh token must be 1-4095 printable characters without spaces");
    STILL(assert_int_equal(dir_route_set_refresh_token(f->d, "example.com", "a b"), DIR_INVALID));
    STILL(assert_int_equal(dir_route_set_refresh_token(f->d, "example.com", NULL), DIR_INVALID));
    assert_string_equal(get(f, "example.com").refresh_token, "second-rotated");
}

static void test_generation(void **state)
{
    struct fixture *f = *state;
    int64_t g = generation(f->d);
    struct dir_route r = relay("smtp.example.net");
    BUMPS(dir_route_set(f->d, "example.com", &r));
    r.port = 99999;
    STILL(dir_route_set(f->d, "example.com", &r));
    STILL(dir_route_get(f->d, "example.com", &r));
    memset(&r, 0, sizeof r);
    BUMPS(dir_route_set(f->d, "example.com", &r));
}

static void test_cascade_when_the_tenant_goes(void **state)
{
    struct fixture *f = *state;
    struct dir_route r = relay("smtp.example.net");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    assert_int_equal(dir_route_set(f->d, "other.test", &r), DIR_OK);
    sqlite3 *db = raw_open(f);
    tu_raw_exec(db, "PRAGMA foreign_keys=ON");
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM routes", 0), 2);
    tu_raw_exec(db, "DELETE FROM tenants WHERE domain = 'example.com'");
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM routes", 0), 1);
    /* the table's own checks hold without the API */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO routes (tenant_id, kind, updated) SELECT id,"
                                      " 'smtp', 0 FROM tenants",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "INSERT INTO routes (tenant_id, kind, updated) VALUES (999, 'relay', 0)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dir_route_get(f->d, "example.com", &r), DIR_NOTFOUND);
    assert_int_equal(get(f, "other.test").kind, ROUTE_RELAY);
}

static void test_migrate_from_v2(void **state)
{
    struct fixture *f = *state;
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_add(f->d, "alice@example.com", "$argon2id$alice"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "max-sessions", "7"), DIR_OK);
    directory_close(f->d);
    f->d = NULL;
    /* back to what version 2 had: no routes table, no version-3 row */
    sqlite3 *db = raw_open(f);
    tu_raw_exec(db, "DROP TABLE routes; DELETE FROM schema_version WHERE version = 3;"
                    " UPDATE generation SET value = 41");
    assert_int_equal(tu_raw_int(db, "SELECT max(version) FROM schema_version", 0), 2);
    sqlite3_close(db);

    char err[256];
    f->d = directory_open(f->dir, err, sizeof err);
    if (f->d == NULL)
        fail_msg("%s", err);
    assert_int_equal(dir_schema_version(f->d), 3);
    assert_int_equal(generation(f->d), 41); /* a migration is not a settings change */
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    assert_int_equal(t.limits.sessions, 7);
    assert_int_equal(get(f, "example.com").kind, ROUTE_NONE);
    struct dir_route r = relay("smtp.example.net");
    assert_int_equal(dir_route_set(f->d, "example.com", &r), DIR_OK);
    assert_int_equal(get(f, "example.org").kind, ROUTE_RELAY);

    directory_close(f->d);
    f->d = directory_open(f->dir, err, sizeof err);
    assert_non_null(f->d);
    assert_int_equal(dir_schema_version(f->d), 3);
    assert_int_equal(get(f, "example.com").kind, ROUTE_RELAY);
    db = raw_open(f);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM schema_version", 0), 3);
    sqlite3_close(db);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, dir_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_no_route),
        T(test_unknown_tenant),
        T(test_relay_defaults),
        T(test_relay_implicit_and_addresses),
        T(test_relay_plain_and_login),
        T(test_relay_xoauth2_client_credentials),
        T(test_relay_xoauth2_refresh_token),
        T(test_lmtp),
        T(test_maildir),
        T(test_replace_clears_the_old_route),
        T(test_remove),
        T(test_extra_domain_names_the_tenant),
        T(test_invalid_host_and_port),
        T(test_invalid_tls),
        T(test_invalid_auth),
        T(test_invalid_xoauth2),
        T(test_invalid_lmtp),
        T(test_invalid_maildir),
        T(test_max_connections_and_kind),
        T(test_refresh_token_rotation),
        T(test_generation),
        T(test_cascade_when_the_tenant_goes),
        T(test_migrate_from_v2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
