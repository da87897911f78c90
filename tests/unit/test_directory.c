/* test_directory.c: the SQLite directory (directory_sqlite.c, directory_admin.c): SPEC section 2
 * defaults, every setter and its validation messages, duplicates, cascades, case-insensitive
 * lookups, access rules and their ordering, the generation counter, the one-snapshot auth view
 * (with a concurrent writer), temporary failures, and dir_rules_for_policy. Opening, the schema
 * and its migrations are in test_directory_schema.c; what issue 3 added (OAuth settings, limits,
 * grants, app passwords) is in test_directory_grants.c. Each test gets a fresh directory under
 * /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "directory.h"
#include "test_directory_fixture.h"

static int setup(void **state)
{
    return dir_fixture_setup(state, "test_directory");
}

/* example.com with alice and bob, example.net with carol. */
static void populate(struct fixture *f)
{
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    assert_int_equal(dir_tenant_add(f->d, "example.net"), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "alice@example.com", "$argon2id$alice"), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "bob@example.com", NULL), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "carol@example.net", "$argon2id$carol"), DIR_OK);
}

/* --- tenants and domains --- */

static void test_tenant_defaults(void **state)
{
    struct fixture *f = *state;
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(dir_tenant_add(f->d, "Example.COM"), DIR_OK);
    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    assert_string_equal(t.domain, "example.com");
    assert_false(t.smtp_auth);
    assert_true(t.security_defaults);
    assert_false(t.app_passwords);
    assert_string_equal(t.default_policy, "block-basic");
    assert_int_equal(t.reply_detail, REPLY_DETAIL_FULL);
    assert_true(t.created >= before && t.created <= (int64_t)time(NULL));
    assert_true(t.id > 0);
    assert_int_equal(dir_tenant_get(f->d, "EXAMPLE.com", &t), DIR_OK);
    assert_int_equal(dir_tenant_get(f->d, "example.org", &t), DIR_NOTFOUND);
}

static void test_tenant_add_errors(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    assert_int_equal(dir_tenant_add(f->d, "EXAMPLE.com"), DIR_EXISTS);
    assert_string_equal(dir_error(f->d), "example.com already belongs to the tenant example.com");
    const char *bad[] = {"",       "-a.com",  "a-.com",      "a..com",
                         "a.com.", "a b.com", "[192.0.2.1]", "a@b.com",
                         ".a.com", "a_b.com", "exämple.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dir_tenant_add(f->d, bad[i]), DIR_INVALID);
    assert_invalid(dir_tenant_add(f->d, "a..com"), "'a..com' is not a valid domain");
    assert_int_equal(dir_tenant_add(f->d, NULL), DIR_INVALID);
    char label[80];
    memset(label, 'a', 64);
    snprintf(label + 64, sizeof label - 64, ".com");
    assert_int_equal(dir_tenant_add(f->d, label), DIR_INVALID);
    label[63] = '.';
    label[64] = '\0';
    snprintf(label + 63, sizeof label - 63, ".com");
    assert_int_equal(dir_tenant_add(f->d, label), DIR_OK); /* 63-octet label */
    assert_int_equal(dir_tenant_add(f->d, "single"), DIR_OK);
    assert_int_equal(dir_tenant_add(f->d, "x-1.example2.org"), DIR_OK);
}

static void test_tenant_set(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    assert_int_equal(dir_policy_add(f->d, "Legacy", true), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "EXAMPLE.com", "smtp-auth", "on"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "security-defaults", "off"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "app-passwords", "ON"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "default-policy", "legacy"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "reply-detail", "generic"), DIR_OK);
    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    assert_true(t.smtp_auth);
    assert_false(t.security_defaults);
    assert_true(t.app_passwords);
    assert_string_equal(t.default_policy, "Legacy"); /* the policy's own spelling */
    assert_int_equal(t.reply_detail, REPLY_DETAIL_GENERIC);

    assert_int_equal(dir_tenant_set(f->d, "example.com", "smtp-auth", "off"), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "reply-detail", "full"), DIR_OK);
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    assert_false(t.smtp_auth);
    assert_false(t.security_defaults); /* untouched by other keys */
    assert_int_equal(t.reply_detail, REPLY_DETAIL_FULL);

    assert_invalid(dir_tenant_set(f->d, "example.com", "smtp-auth", "yes"),
                   "value must be on or off");
    assert_invalid(dir_tenant_set(f->d, "example.com", "security-defaults", ""),
                   "value must be on or off");
    assert_invalid(dir_tenant_set(f->d, "example.com", "app-passwords", "inherit"),
                   "value must be on or off");
    assert_invalid(dir_tenant_set(f->d, "example.com", "reply-detail", "terse"),
                   "value must be full or generic");
    assert_invalid(dir_tenant_set(f->d, "example.com", "default-policy", "x"),
                   "unknown policy 'x'");
    assert_invalid(dir_tenant_set(f->d, "example.com", "default-policy", "inherit"),
                   "unknown policy 'inherit'");
    assert_int_equal(dir_tenant_set(f->d, "example.com", "colour", "blue"), DIR_INVALID);
    assert_non_null(strstr(dir_error(f->d), "unknown tenant setting 'colour'"));
    assert_int_equal(dir_tenant_set(f->d, "example.com", "smtp-auth", NULL), DIR_INVALID);
    assert_int_equal(dir_tenant_set(f->d, "example.org", "smtp-auth", "on"), DIR_NOTFOUND);
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    assert_false(t.smtp_auth); /* failed sets changed nothing */
    assert_string_equal(t.default_policy, "Legacy");
}

static void collect_tenant(const struct dir_tenant *t, void *arg)
{
    collect_name(t->domain, arg);
}

static void collect_mailbox(const struct dir_mailbox *m, void *arg)
{
    collect_name(m->address, arg);
}

static void collect_policy(const struct dir_policy *p, void *arg)
{
    collect_name(p->name, arg);
}

static void test_tenant_list(void **state)
{
    struct fixture *f = *state;
    struct names c = {0};
    assert_int_equal(dir_tenant_list(f->d, collect_tenant, &c), DIR_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(dir_tenant_add(f->d, "zeta.example"), DIR_OK);
    assert_int_equal(dir_tenant_add(f->d, "alpha.example"), DIR_OK);
    assert_int_equal(dir_domain_add(f->d, "alpha.example", "beta.example"), DIR_OK);
    assert_int_equal(dir_tenant_list(f->d, collect_tenant, &c), DIR_OK);
    assert_int_equal(c.n, 2); /* extra domains are not tenants */
    assert_string_equal(c.v[0], "alpha.example");
    assert_string_equal(c.v[1], "zeta.example");
}

static void test_domains(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_domain_add(f->d, "example.com", "Example.ORG"), DIR_OK);
    assert_int_equal(dir_domain_add(f->d, "example.com", "a.example.com"), DIR_OK);
    assert_int_equal(dir_domain_add(f->d, "example.net", "example.org"), DIR_EXISTS);
    assert_string_equal(dir_error(f->d), "example.org already belongs to the tenant example.com");
    assert_int_equal(dir_domain_add(f->d, "example.net", "example.com"), DIR_EXISTS);
    assert_int_equal(dir_domain_add(f->d, "example.com", "example.com"), DIR_EXISTS);
    assert_int_equal(dir_domain_add(f->d, "nobody.example", "x.example"), DIR_NOTFOUND);
    assert_invalid(dir_domain_add(f->d, "example.com", "bad..example"),
                   "'bad..example' is not a valid domain");
    assert_int_equal(dir_tenant_add(f->d, "example.org"), DIR_EXISTS);

    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(f->d, "example.org", &t), DIR_OK);
    assert_string_equal(t.domain, "example.com");

    struct names c = {0};
    assert_int_equal(dir_domain_list(f->d, "EXAMPLE.ORG", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.v[0], "example.com"); /* the primary first */
    assert_string_equal(c.v[1], "a.example.com");
    assert_string_equal(c.v[2], "example.org");
    assert_int_equal(dir_domain_list(f->d, "nobody.example", collect_name, &c), DIR_NOTFOUND);

    assert_invalid(dir_domain_remove(f->d, "example.com"),
                   "example.com is the primary domain of its tenant and cannot be removed");
    assert_int_equal(dir_mailbox_add(f->d, "dave@example.org", NULL), DIR_OK);
    assert_invalid(dir_domain_remove(f->d, "example.org"),
                   "example.org still has 1 mailboxes or aliases; remove them first");
    assert_int_equal(dir_mailbox_remove(f->d, "dave@example.org"), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "info@example.org"), DIR_OK);
    assert_int_equal(dir_domain_remove(f->d, "example.org"), DIR_INVALID);
    assert_int_equal(dir_alias_remove(f->d, "info@example.org"), DIR_OK);
    /* a mailbox in a sub-domain does not hold the parent domain */
    assert_int_equal(dir_mailbox_add(f->d, "x@a.example.com", NULL), DIR_OK);
    assert_int_equal(dir_domain_remove(f->d, "Example.Org"), DIR_OK);
    assert_int_equal(dir_domain_remove(f->d, "example.org"), DIR_NOTFOUND);
    assert_int_equal(dir_tenant_get(f->d, "example.org", &t), DIR_NOTFOUND);
    assert_invalid(dir_mailbox_add(f->d, "dave@example.org", NULL),
                   "no tenant has the domain example.org");
}

/* --- mailboxes --- */

static void test_mailbox_defaults(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(dir_mailbox_add(f->d, "Alice@Example.COM", "$argon2id$hash"), DIR_OK);
    assert_int_equal(dir_mailbox_add(f->d, "bob@example.com", NULL), DIR_OK);
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_get(f->d, "ALICE@example.com", &m), DIR_OK);
    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    assert_true(m.id > 0);
    assert_int_equal(m.tenant_id, t.id);
    assert_string_equal(m.address, "alice@example.com");
    assert_true(m.enabled);
    assert_int_equal(m.smtp_auth, SWITCH_INHERIT);
    assert_string_equal(m.policy, "");
    assert_string_equal(m.password_hash, "$argon2id$hash");
    assert_true(m.created >= before);
    assert_true(m.password_changed >= before);
    assert_int_equal(dir_mailbox_get(f->d, "bob@example.com", &m), DIR_OK);
    assert_string_equal(m.password_hash, "");
    assert_int_equal(m.password_changed, 0);
    assert_int_equal(dir_mailbox_get(f->d, "nobody@example.com", &m), DIR_NOTFOUND);
}

static void test_mailbox_add_errors(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_mailbox_add(f->d, "ALICE@example.com", NULL), DIR_EXISTS);
    assert_string_equal(dir_error(f->d), "the mailbox alice@example.com exists");
    assert_invalid(dir_mailbox_add(f->d, "dave@example.org", NULL),
                   "no tenant has the domain example.org");
    assert_invalid(dir_mailbox_add(f->d, "dave@sub.example.com", NULL),
                   "no tenant has the domain sub.example.com");
    assert_invalid(dir_mailbox_add(f->d, "not an address", NULL),
                   "'not an address' is not a valid mailbox address");
    assert_int_equal(dir_mailbox_add(f->d, "@example.com", NULL), DIR_INVALID);
    assert_int_equal(dir_mailbox_add(f->d, "dave@", NULL), DIR_INVALID);
    assert_int_equal(dir_mailbox_add(f->d, "dave", NULL), DIR_INVALID);
    assert_int_equal(dir_mailbox_add(f->d, "da..ve@example.com", NULL), DIR_INVALID);
    assert_int_equal(dir_mailbox_add(f->d, NULL, NULL), DIR_INVALID);
    char local[80];
    memset(local, 'x', 65);
    snprintf(local + 65, sizeof local - 65, "@example.com");
    assert_int_equal(dir_mailbox_add(f->d, local, NULL), DIR_INVALID);
    char hash[DIR_HASH_MAX + 2];
    memset(hash, 'h', DIR_HASH_MAX + 1);
    hash[DIR_HASH_MAX + 1] = '\0';
    assert_int_equal(dir_mailbox_add(f->d, "dave@example.com", hash), DIR_INVALID);
    hash[DIR_HASH_MAX] = '\0';
    assert_int_equal(dir_mailbox_add(f->d, "dave@example.com", hash), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "sales@example.com"), DIR_OK);
    assert_invalid(dir_mailbox_add(f->d, "Sales@example.com", NULL),
                   "sales@example.com is already an alias of alice@example.com");
}

static void test_mailbox_set(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_mailbox m;
    const char *a = "Alice@example.com";
    assert_int_equal(dir_mailbox_set(f->d, a, "smtp-auth", "on"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_int_equal(m.smtp_auth, SWITCH_ON);
    assert_int_equal(dir_mailbox_set(f->d, a, "smtp-auth", "OFF"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_int_equal(m.smtp_auth, SWITCH_OFF);
    assert_int_equal(dir_mailbox_set(f->d, a, "smtp-auth", "inherit"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_int_equal(m.smtp_auth, SWITCH_INHERIT);
    assert_invalid(dir_mailbox_set(f->d, a, "smtp-auth", "maybe"),
                   "value must be on, off or inherit");

    assert_int_equal(dir_mailbox_set(f->d, a, "policy", "ALLOW-basic"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_string_equal(m.policy, "allow-basic");
    assert_invalid(dir_mailbox_set(f->d, a, "policy", "x"), "unknown policy 'x'");
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_string_equal(m.policy, "allow-basic");
    assert_int_equal(dir_mailbox_set(f->d, a, "policy", "inherit"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_string_equal(m.policy, "");

    assert_int_equal(dir_mailbox_set(f->d, a, "enabled", "no"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_false(m.enabled);
    assert_int_equal(m.smtp_auth, SWITCH_INHERIT); /* other columns untouched */
    assert_int_equal(dir_mailbox_set(f->d, a, "enabled", "yes"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, a, &m), DIR_OK);
    assert_true(m.enabled);
    assert_invalid(dir_mailbox_set(f->d, a, "enabled", "on"), "value must be yes or no");

    assert_int_equal(dir_mailbox_set(f->d, a, "colour", "blue"), DIR_INVALID);
    assert_non_null(strstr(dir_error(f->d), "unknown mailbox setting 'colour'"));
    assert_int_equal(dir_mailbox_set(f->d, a, "enabled", NULL), DIR_INVALID);
    assert_int_equal(dir_mailbox_set(f->d, "nobody@example.com", "enabled", "no"), DIR_NOTFOUND);
    assert_int_equal(dir_mailbox_set(f->d, "bad address", "enabled", "no"), DIR_INVALID);
}

static void test_mailbox_password(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_set_password(f->d, "BOB@example.com", "$argon2id$new"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "bob@example.com", &m), DIR_OK);
    assert_string_equal(m.password_hash, "$argon2id$new");
    assert_true(m.password_changed > 0);
    assert_int_equal(dir_mailbox_set_password(f->d, "bob@example.com", NULL), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "bob@example.com", &m), DIR_OK);
    assert_string_equal(m.password_hash, "");
    assert_int_equal(dir_mailbox_set_password(f->d, "nobody@example.com", "$x"), DIR_NOTFOUND);
    char hash[DIR_HASH_MAX + 2];
    memset(hash, 'h', DIR_HASH_MAX + 1);
    hash[DIR_HASH_MAX + 1] = '\0';
    assert_int_equal(dir_mailbox_set_password(f->d, "bob@example.com", hash), DIR_INVALID);
}

static void test_mailbox_remove_cascades(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "info@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, m.id, "info@example.com"), DIR_OK);
    assert_int_equal(dir_mailbox_remove(f->d, "ALICE@example.com"), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &m), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, m.id, "info@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_alias_remove(f->d, "info@example.com"), DIR_NOTFOUND);
    /* the alias is free again */
    assert_int_equal(dir_alias_add(f->d, "bob@example.com", "info@example.com"), DIR_OK);
    assert_int_equal(dir_mailbox_remove(f->d, "alice@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_mailbox_remove(f->d, "not an address"), DIR_INVALID);
    sqlite3 *db = raw_open(f);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM aliases", 0), 1);
    sqlite3_close(db);
}

static void test_mailbox_list(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct names c = {0};
    assert_int_equal(dir_mailbox_list(f->d, NULL, collect_mailbox, &c), DIR_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.v[0], "alice@example.com");
    assert_string_equal(c.v[1], "bob@example.com");
    assert_string_equal(c.v[2], "carol@example.net");
    memset(&c, 0, sizeof c);
    assert_int_equal(dir_mailbox_list(f->d, "EXAMPLE.net", collect_mailbox, &c), DIR_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.v[0], "carol@example.net");
    assert_int_equal(dir_mailbox_list(f->d, "example.org", collect_mailbox, &c), DIR_NOTFOUND);
    assert_int_equal(dir_mailbox_list(f->d, "bad..domain", collect_mailbox, &c), DIR_INVALID);
}

/* --- aliases --- */

static void test_aliases(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_domain_add(f->d, "example.com", "example.org"), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "Sales@Example.com"), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "ALICE@example.com", "alice@example.org"), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "sales@example.com"), DIR_EXISTS);
    assert_int_equal(dir_alias_add(f->d, "bob@example.com", "sales@example.com"), DIR_EXISTS);
    assert_string_equal(dir_error(f->d),
                        "sales@example.com is already an alias of alice@example.com");
    assert_invalid(dir_alias_add(f->d, "alice@example.com", "bob@example.com"),
                   "bob@example.com is a mailbox");
    assert_invalid(dir_alias_add(f->d, "alice@example.com", "alice@example.com"),
                   "alice@example.com is a mailbox");
    assert_invalid(dir_alias_add(f->d, "alice@example.com", "a@example.net"),
                   "example.net is not an accepted domain of the tenant example.com");
    assert_invalid(dir_alias_add(f->d, "alice@example.com", "a@nowhere.example"),
                   "nowhere.example is not an accepted domain of the tenant example.com");
    assert_int_equal(dir_alias_add(f->d, "nobody@example.com", "x@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "bad alias"), DIR_INVALID);

    struct names c = {0};
    assert_int_equal(dir_alias_list(f->d, "alice@EXAMPLE.com", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.v[0], "alice@example.org");
    assert_string_equal(c.v[1], "sales@example.com");
    memset(&c, 0, sizeof c);
    assert_int_equal(dir_alias_list(f->d, "bob@example.com", collect_name, &c), DIR_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(dir_alias_list(f->d, "nobody@example.com", collect_name, &c), DIR_NOTFOUND);

    assert_int_equal(dir_alias_remove(f->d, "SALES@example.com"), DIR_OK);
    assert_int_equal(dir_alias_remove(f->d, "sales@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_alias_remove(f->d, "bad"), DIR_INVALID);
}

static void test_may_send_as(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_mailbox alice;
    struct dir_mailbox bob;
    assert_int_equal(dir_mailbox_get(f->d, "alice@example.com", &alice), DIR_OK);
    assert_int_equal(dir_mailbox_get(f->d, "bob@example.com", &bob), DIR_OK);
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "info@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice.id, "alice@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice.id, "ALICE@Example.Com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice.id, "Info@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, alice.id, "bob@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, bob.id, "info@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, bob.id, "alice@example.com"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, alice.id, ""), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, alice.id, "garbage"), DIR_NOTFOUND);
    assert_int_equal(dir_may_send_as(f->d, 9999, "alice@example.com"), DIR_NOTFOUND);
}

/* --- policies --- */

static void test_policies(void **state)
{
    struct fixture *f = *state;
    struct dir_policy p;
    assert_int_equal(dir_policy_get(f->d, "block-basic", &p), DIR_OK);
    assert_false(p.allow_basic_smtp);
    assert_true(p.builtin);
    assert_int_equal(dir_policy_get(f->d, "Allow-Basic", &p), DIR_OK);
    assert_string_equal(p.name, "allow-basic");
    assert_true(p.allow_basic_smtp);
    assert_true(p.builtin);

    assert_int_equal(dir_policy_add(f->d, "printers", true), DIR_OK);
    assert_int_equal(dir_policy_add(f->d, "strict_1.0", false), DIR_OK);
    assert_int_equal(dir_policy_add(f->d, "PRINTERS", false), DIR_EXISTS);
    assert_int_equal(dir_policy_add(f->d, "block-basic", true), DIR_EXISTS);
    assert_int_equal(dir_policy_get(f->d, "printers", &p), DIR_OK);
    assert_true(p.allow_basic_smtp);
    assert_false(p.builtin);
    assert_int_equal(dir_policy_get(f->d, "nothing", &p), DIR_NOTFOUND);

    char longname[POLICY_NAME_MAX + 2];
    memset(longname, 'p', POLICY_NAME_MAX + 1);
    longname[POLICY_NAME_MAX + 1] = '\0';
    const char *bad[] = {"", "inherit", "INHERIT", "a b", "a/b", "ü", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dir_policy_add(f->d, bad[i], false), DIR_INVALID);
    assert_int_equal(dir_policy_add(f->d, NULL, false), DIR_INVALID);
    longname[POLICY_NAME_MAX] = '\0';
    assert_int_equal(dir_policy_add(f->d, longname, false), DIR_OK);

    assert_int_equal(dir_policy_set(f->d, "Printers", "allow-basic-smtp", "no"), DIR_OK);
    assert_int_equal(dir_policy_get(f->d, "printers", &p), DIR_OK);
    assert_false(p.allow_basic_smtp);
    assert_invalid(dir_policy_set(f->d, "printers", "allow-basic-smtp", "on"),
                   "value must be yes or no");
    assert_int_equal(dir_policy_set(f->d, "printers", "colour", "yes"), DIR_INVALID);
    assert_invalid(dir_policy_set(f->d, "block-basic", "allow-basic-smtp", "yes"),
                   "the policy 'block-basic' is built in and cannot be changed");
    assert_int_equal(dir_policy_set(f->d, "nothing", "allow-basic-smtp", "yes"), DIR_NOTFOUND);

    struct names c = {0};
    assert_int_equal(dir_policy_list(f->d, collect_policy, &c), DIR_OK);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.v[0], "allow-basic"); /* built-in ones first */
    assert_string_equal(c.v[1], "block-basic");
    assert_string_equal(c.v[2], longname);
    assert_string_equal(c.v[3], "printers");
    assert_string_equal(c.v[4], "strict_1.0");
}

static void test_policy_remove(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_policy_add(f->d, "printers", true), DIR_OK);
    assert_invalid(dir_policy_remove(f->d, "block-basic"),
                   "the policy 'block-basic' is built in and cannot be removed");
    assert_int_equal(dir_policy_remove(f->d, "allow-basic"), DIR_INVALID);
    assert_int_equal(dir_tenant_set(f->d, "example.net", "default-policy", "printers"), DIR_OK);
    assert_invalid(dir_policy_remove(f->d, "PRINTERS"),
                   "the policy 'printers' is the default policy of the tenant example.net");
    assert_int_equal(dir_tenant_set(f->d, "example.net", "default-policy", "block-basic"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "bob@example.com", "policy", "printers"), DIR_OK);
    assert_invalid(dir_policy_remove(f->d, "printers"),
                   "the policy 'printers' is assigned to the mailbox bob@example.com");
    assert_int_equal(dir_mailbox_set(f->d, "bob@example.com", "policy", "inherit"), DIR_OK);
    assert_int_equal(dir_policy_remove(f->d, "Printers"), DIR_OK);
    struct dir_policy p;
    assert_int_equal(dir_policy_get(f->d, "printers", &p), DIR_NOTFOUND);
    assert_int_equal(dir_policy_remove(f->d, "printers"), DIR_NOTFOUND);
}

/* --- access rules --- */

struct rules {
    int n;
    struct dir_rule r[DIR_RULES_MAX + 1];
};

static void collect_rule(const struct dir_rule *r, void *arg)
{
    struct rules *c = arg;
    if (c->n <= DIR_RULES_MAX)
        c->r[c->n++] = *r;
}

static struct dir_rule rule(bool allow, bool outside, const char *nets, const char *mailboxes,
                            int position)
{
    struct dir_rule r = {0};
    r.allow = allow;
    r.outside = outside;
    r.position = position;
    snprintf(r.networks, sizeof r.networks, "%s", nets);
    snprintf(r.mailboxes, sizeof r.mailboxes, "%s", mailboxes);
    snprintf(r.comment, sizeof r.comment, "comment %d", position);
    return r;
}

static void test_rules(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_rule a = rule(false, true, "192.0.2.0/24, 2001:DB8::/32", "", 0);
    assert_int_equal(dir_rule_add(f->d, "Example.com", &a), DIR_OK);
    assert_true(a.id > 0);
    assert_int_equal(a.position, 1);
    assert_string_equal(a.networks, "192.0.2.0/24,2001:db8::/32");
    struct dir_rule b = rule(true, false, "198.51.100.7", "Alice@Example.com bob@example.com", 0);
    assert_int_equal(dir_rule_add(f->d, "example.com", &b), DIR_OK);
    assert_int_equal(b.position, 2);
    assert_string_equal(b.networks, "198.51.100.7/32");
    assert_string_equal(b.mailboxes, "alice@example.com,bob@example.com");
    struct dir_rule c = rule(false, false, "10.0.0.0/8", "", 1);
    assert_int_equal(dir_rule_add(f->d, "example.com", &c), DIR_OK);
    assert_int_equal(c.position, 1);
    struct dir_rule e = rule(false, false, "10.0.0.0/8", "", 50); /* past the end: appended */
    assert_int_equal(dir_rule_add(f->d, "example.com", &e), DIR_OK);
    assert_int_equal(e.position, 4);

    struct rules got = {0};
    assert_int_equal(dir_rule_list(f->d, "example.com", collect_rule, &got), DIR_OK);
    assert_int_equal(got.n, 4);
    assert_int_equal(got.r[0].id, c.id);
    assert_int_equal(got.r[1].id, a.id);
    assert_int_equal(got.r[2].id, b.id);
    assert_int_equal(got.r[3].id, e.id);
    for (int i = 0; i < 4; i++)
        assert_int_equal(got.r[i].position, i + 1);
    assert_true(got.r[1].outside);
    assert_false(got.r[1].allow);
    assert_true(got.r[2].allow);
    assert_string_equal(got.r[2].comment, "comment 0");

    assert_int_equal(dir_rule_remove(f->d, "example.com", a.id), DIR_OK);
    assert_int_equal(dir_rule_remove(f->d, "example.com", a.id), DIR_NOTFOUND);
    memset(&got, 0, sizeof got);
    assert_int_equal(dir_rule_list(f->d, "example.com", collect_rule, &got), DIR_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.r[0].id, c.id);
    assert_int_equal(got.r[1].id, b.id);
    assert_int_equal(got.r[1].position, 2);
    assert_int_equal(got.r[2].position, 3);

    /* another tenant's rules are separate */
    memset(&got, 0, sizeof got);
    assert_int_equal(dir_rule_list(f->d, "example.net", collect_rule, &got), DIR_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(dir_rule_remove(f->d, "example.net", b.id), DIR_NOTFOUND);
    assert_int_equal(dir_rule_list(f->d, "example.org", collect_rule, &got), DIR_NOTFOUND);
    assert_int_equal(dir_rule_remove(f->d, "example.org", b.id), DIR_NOTFOUND);
}

static void test_rule_errors(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_rule r = rule(false, false, "192.0.2.0/33", "", 0);
    assert_invalid(dir_rule_add(f->d, "example.com", &r),
                   "'192.0.2.0/33' is not a network (use 192.0.2.0/24 or 2001:db8::/32)");
    r = rule(false, false, "10.0.0.1/8", "", 0); /* host bits set */
    assert_int_equal(dir_rule_add(f->d, "example.com", &r), DIR_INVALID);
    r = rule(false, false, "  ,  ", "", 0);
    assert_invalid(dir_rule_add(f->d, "example.com", &r), "a rule needs at least one network");
    r = rule(false, false, "192.0.2.0/24", "carol@example.net", 0);
    assert_invalid(dir_rule_add(f->d, "example.com", &r),
                   "the tenant example.com has no mailbox carol@example.net");
    r = rule(false, false, "192.0.2.0/24", "alice@example.com,nobody@example.com", 0);
    assert_invalid(dir_rule_add(f->d, "example.com", &r),
                   "the tenant example.com has no mailbox nobody@example.com");
    r = rule(false, false, "192.0.2.0/24", "not-an-address", 0);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r), DIR_INVALID);
    r = rule(false, false, "192.0.2.0/24", "", -1);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r), DIR_INVALID);
    r = rule(false, false, "192.0.2.0/24", "", 0);
    assert_int_equal(dir_rule_add(f->d, "example.org", &r), DIR_NOTFOUND);
    r = rule(false, false, "192.0.2.0/24", "", 0);
    memset(r.comment, 'c', sizeof r.comment); /* not terminated */
    assert_int_equal(dir_rule_add(f->d, "example.com", &r), DIR_INVALID);

    char nets[DIR_TEXT_MAX] = "";
    for (int i = 0; i <= DIR_RULE_NETS_MAX; i++) {
        char one[32];
        snprintf(one, sizeof one, "%s10.0.%d.0/24", i > 0 ? "," : "", i);
        strcat(nets, one);
    }
    r = rule(false, false, nets, "", 0);
    assert_invalid(dir_rule_add(f->d, "example.com", &r), "a rule may list at most 32 networks");

    struct rules got = {0};
    assert_int_equal(dir_rule_list(f->d, "example.com", collect_rule, &got), DIR_OK);
    assert_int_equal(got.n, 0); /* nothing half-added */

    for (int i = 0; i < DIR_RULES_MAX; i++) {
        r = rule(false, false, "192.0.2.0/24", "", 0);
        assert_int_equal(dir_rule_add(f->d, "example.com", &r), DIR_OK);
    }
    r = rule(false, false, "192.0.2.0/24", "", 0);
    assert_invalid(dir_rule_add(f->d, "example.com", &r),
                   "the tenant example.com already has 32 access rules, the most it may have");
}

/* --- generation and the auth view --- */

static void test_generation(void **state)
{
    struct fixture *f = *state;
    int64_t g = generation(f->d);
    struct dir_tenant t;
    struct dir_auth_view v;
    struct dir_rule r = rule(false, false, "192.0.2.0/24", "", 0);
    BUMPS(dir_tenant_add(f->d, "example.com"));
    BUMPS(dir_tenant_set(f->d, "example.com", "smtp-auth", "on"));
    BUMPS(dir_domain_add(f->d, "example.com", "example.org"));
    BUMPS(dir_mailbox_add(f->d, "alice@example.com", NULL));
    BUMPS(dir_mailbox_set(f->d, "alice@example.com", "enabled", "no"));
    BUMPS(dir_mailbox_set_password(f->d, "alice@example.com", "$h"));
    BUMPS(dir_alias_add(f->d, "alice@example.com", "a@example.org"));
    BUMPS(dir_alias_remove(f->d, "a@example.org"));
    BUMPS(dir_policy_add(f->d, "p", true));
    BUMPS(dir_policy_set(f->d, "p", "allow-basic-smtp", "no"));
    BUMPS(dir_policy_remove(f->d, "p"));
    BUMPS(dir_rule_add(f->d, "example.com", &r));
    BUMPS(dir_rule_remove(f->d, "example.com", r.id));
    BUMPS(dir_domain_remove(f->d, "example.org"));
    BUMPS(dir_mailbox_remove(f->d, "alice@example.com"));
    /* reads and failed writes leave it */
    STILL(dir_tenant_get(f->d, "example.com", &t));
    STILL(dir_auth_view(f->d, "alice@example.com", &v));
    STILL(dir_tenant_add(f->d, "example.com"));
    STILL(dir_tenant_set(f->d, "example.com", "smtp-auth", "maybe"));
    STILL(dir_mailbox_add(f->d, "x@example.net", NULL));
    STILL(dir_policy_remove(f->d, "block-basic"));
    STILL(dir_alias_remove(f->d, "none@example.com"));
    /* other connections see it */
    char err[256];
    struct directory *other = directory_open(f->dir, err, sizeof err);
    assert_non_null(other);
    assert_int_equal(generation(other), g);
    assert_int_equal(dir_tenant_add(other, "example.net"), DIR_OK);
    assert_true(generation(f->d) > g);
    directory_close(other);
}

static void test_auth_view(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_auth_view v;
    memset(&v, 0xAA, sizeof v);
    assert_int_equal(dir_auth_view(f->d, "someone@example.org", &v), DIR_OK);
    assert_false(v.tenant_found);
    assert_false(v.mailbox_found);
    assert_int_equal(v.n_rules, 0);
    assert_int_equal(dir_auth_view(f->d, "not an address", &v), DIR_OK);
    assert_false(v.tenant_found);
    assert_int_equal(dir_auth_view(f->d, "", &v), DIR_OK);
    assert_false(v.tenant_found);

    assert_int_equal(dir_auth_view(f->d, "nobody@example.com", &v), DIR_OK);
    assert_true(v.tenant_found);
    assert_false(v.mailbox_found);
    assert_string_equal(v.tenant.domain, "example.com");
    assert_string_equal(v.tenant_policy.name, "block-basic");
    assert_false(v.tenant_policy.allow_basic_smtp);

    assert_int_equal(dir_policy_add(f->d, "legacy", true), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "policy", "legacy"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "smtp-auth", "on"), DIR_OK);
    struct dir_rule r1 = rule(false, true, "192.0.2.0/24", "", 0);
    struct dir_rule r2 = rule(true, false, "2001:db8::/32", "alice@example.com", 0);
    struct dir_rule other = rule(false, false, "10.0.0.0/8", "", 0);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r1), DIR_OK);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r2), DIR_OK);
    assert_int_equal(dir_rule_add(f->d, "example.net", &other), DIR_OK);

    assert_int_equal(dir_auth_view(f->d, "Alice@EXAMPLE.com", &v), DIR_OK);
    assert_true(v.tenant_found);
    assert_true(v.mailbox_found);
    assert_string_equal(v.mailbox.address, "alice@example.com");
    assert_string_equal(v.mailbox.password_hash, "$argon2id$alice");
    assert_int_equal(v.mailbox.smtp_auth, SWITCH_ON);
    assert_false(v.mailbox_policy_inherit);
    assert_string_equal(v.mailbox_policy.name, "legacy");
    assert_true(v.mailbox_policy.allow_basic_smtp);
    assert_string_equal(v.tenant_policy.name, "block-basic");
    assert_int_equal(v.n_rules, 2);
    assert_int_equal(v.rules[0].id, r1.id);
    assert_int_equal(v.rules[1].id, r2.id);

    assert_int_equal(dir_auth_view(f->d, "bob@example.com", &v), DIR_OK);
    assert_true(v.mailbox_found);
    assert_true(v.mailbox_policy_inherit);
    assert_string_equal(v.mailbox_policy.name, "");

    /* an extra domain finds the tenant, and only mailboxes that exist */
    assert_int_equal(dir_domain_add(f->d, "example.net", "example.org"), DIR_OK);
    assert_int_equal(dir_auth_view(f->d, "carol@example.org", &v), DIR_OK);
    assert_true(v.tenant_found);
    assert_false(v.mailbox_found);
    assert_string_equal(v.tenant.domain, "example.net");
    assert_int_equal(v.n_rules, 1);
    assert_int_equal(v.rules[0].id, other.id);

    /* an alias is not a login name */
    assert_int_equal(dir_alias_add(f->d, "alice@example.com", "sales@example.com"), DIR_OK);
    assert_int_equal(dir_auth_view(f->d, "sales@example.com", &v), DIR_OK);
    assert_false(v.mailbox_found);
}

/* A writer that flips a tenant's default policy and a mailbox's policy together, in one
 * transaction each time, while the view is read: the view must never see one without the
 * other. */
struct flipper {
    const char *dir;
    volatile int stop;
    int flips;
};

static void *flip(void *arg)
{
    struct flipper *fl = arg;
    char path[128];
    snprintf(path, sizeof path, "%s/directory.db", fl->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return NULL;
    sqlite3_busy_timeout(db, 5000);
    const char *sql[2] = {
        "BEGIN IMMEDIATE; UPDATE tenants SET default_policy = 'p1';"
        " UPDATE mailboxes SET policy = 'p1'; UPDATE rules SET comment = 'p1'; COMMIT;",
        "BEGIN IMMEDIATE; UPDATE tenants SET default_policy = 'p2';"
        " UPDATE mailboxes SET policy = 'p2'; UPDATE rules SET comment = 'p2'; COMMIT;",
    };
    for (int i = 0; i < 20000 && !fl->stop; i++) {
        if (sqlite3_exec(db, sql[i % 2], NULL, NULL, NULL) != SQLITE_OK)
            break;
        fl->flips++;
    }
    sqlite3_close(db);
    return NULL;
}

static void test_auth_view_one_snapshot(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(dir_policy_add(f->d, "p1", true), DIR_OK);
    assert_int_equal(dir_policy_add(f->d, "p2", false), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "default-policy", "p1"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "alice@example.com", "policy", "p1"), DIR_OK);
    struct dir_rule r = rule(false, false, "192.0.2.0/24", "", 0);
    snprintf(r.comment, sizeof r.comment, "p1");
    assert_int_equal(dir_rule_add(f->d, "example.com", &r), DIR_OK);

    struct flipper fl = {.dir = f->dir};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flip, &fl), 0);
    int torn = 0;
    int seen[2] = {0, 0};
    for (int i = 0; i < 20000; i++) {
        struct dir_auth_view v;
        assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
        assert_true(v.mailbox_found);
        assert_int_equal(v.n_rules, 1);
        if (strcmp(v.tenant_policy.name, v.mailbox_policy.name) != 0 ||
            strcmp(v.tenant_policy.name, v.rules[0].comment) != 0 ||
            v.tenant_policy.allow_basic_smtp != v.mailbox_policy.allow_basic_smtp)
            torn++;
        seen[strcmp(v.tenant_policy.name, "p1") == 0 ? 0 : 1]++;
        if (i > 2000 && seen[0] > 0 && seen[1] > 0 && fl.flips > 2000)
            break;
    }
    fl.stop = 1;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(torn, 0);
    assert_true(seen[0] > 0 && seen[1] > 0); /* the writer really ran during the reads */
}

static void test_tempfail_when_locked(void **state)
{
    struct fixture *f = *state;
    populate(f);
    sqlite3 *db = raw_open(f);
    tu_raw_exec(db, "BEGIN EXCLUSIVE");
    time_t t0 = time(NULL);
    assert_int_equal(dir_tenant_add(f->d, "example.org"), DIR_TEMPFAIL);
    assert_true(time(NULL) - t0 >= 4); /* it waited busy_timeout first */
    assert_non_null(strstr(dir_error(f->d), "locked"));
    /* a reader in WAL mode is not blocked by a writer */
    struct dir_auth_view v;
    assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
    assert_true(v.mailbox_found);
    tu_raw_exec(db, "ROLLBACK");
    sqlite3_close(db);
    assert_int_equal(dir_tenant_add(f->d, "example.org"), DIR_OK);
}

static void test_rules_for_policy(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct dir_rule r1 = rule(false, true, "192.0.2.0/24,198.51.100.0/24", "", 0);
    struct dir_rule r2 = rule(true, false, "2001:db8::/32", "Alice@example.com", 0);
    struct dir_rule r3 = rule(false, false, "203.0.113.9", "bob@example.com", 0);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r1), DIR_OK);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r2), DIR_OK);
    assert_int_equal(dir_rule_add(f->d, "example.com", &r3), DIR_OK);
    struct dir_auth_view v;
    assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
    struct policy_rule out[DIR_RULES_MAX];
    static struct netmask nets[DIR_RULES_MAX][DIR_RULE_NETS_MAX];
    size_t n = dir_rules_for_policy(&v, "ALICE@example.com", out, nets);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, r1.id);
    assert_false(out[0].allow);
    assert_true(out[0].outside);
    assert_true(out[0].applies); /* all mailboxes */
    assert_int_equal(out[0].n_nets, 2);
    assert_ptr_equal(out[0].nets, nets[0]);
    assert_int_equal(out[0].nets[1].prefix, 24);
    struct netaddr in;
    struct netaddr out_addr;
    assert_int_equal(netaddr_parse("198.51.100.77", &in), 0);
    assert_int_equal(netaddr_parse("203.0.113.1", &out_addr), 0);
    assert_true(netmask_contains(&out[0].nets[1], &in));
    assert_false(netmask_contains(&out[0].nets[0], &out_addr));
    assert_int_equal(out[1].id, r2.id);
    assert_true(out[1].allow);
    assert_false(out[1].outside);
    assert_true(out[1].applies); /* alice is listed */
    assert_int_equal(out[1].n_nets, 1);
    assert_int_equal(out[1].nets[0].prefix, 32);
    assert_int_equal(out[2].id, r3.id);
    assert_false(out[2].applies); /* only bob */
    assert_int_equal(out[2].n_nets, 1);

    n = dir_rules_for_policy(&v, "bob@example.com", out, nets);
    assert_int_equal(n, 3);
    assert_true(out[0].applies);
    assert_false(out[1].applies);
    assert_true(out[2].applies);

    struct dir_auth_view empty;
    assert_int_equal(dir_auth_view(f->d, "x@example.org", &empty), DIR_OK);
    assert_int_equal(dir_rules_for_policy(&empty, "x@example.org", out, nets), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, dir_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tenant_defaults),
        T(test_tenant_add_errors),
        T(test_tenant_set),
        T(test_tenant_list),
        T(test_domains),
        T(test_mailbox_defaults),
        T(test_mailbox_add_errors),
        T(test_mailbox_set),
        T(test_mailbox_password),
        T(test_mailbox_remove_cascades),
        T(test_mailbox_list),
        T(test_aliases),
        T(test_may_send_as),
        T(test_policies),
        T(test_policy_remove),
        T(test_rules),
        T(test_rule_errors),
        T(test_generation),
        T(test_auth_view),
        T(test_auth_view_one_snapshot),
        T(test_tempfail_when_locked),
        T(test_rules_for_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
