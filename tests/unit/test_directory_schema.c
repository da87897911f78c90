/* test_directory_schema.c: opening the SQLite directory (directory_sqlite.c): the schema in WAL
 * mode, opening a database twice and again, what an open that fails says, and the migrations,
 * including the upgrade of a version-1 (issue-2) database with its data. The rest of the
 * directory is in test_directory.c and test_directory_grants.c. Each test gets a fresh directory
 * under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "directory.h"
#include "test_directory_fixture.h"

static int setup(void **state)
{
    return dir_fixture_setup(state, "test_directory_schema");
}

/* --- schema --- */

static void test_open_schema(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_schema_version(f->d), 3);
    sqlite3 *db = raw_open(f);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM schema_version", 0), 3);
    sqlite3_close(db);
}

static void test_open_twice(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dir_tenant_add(f->d, "example.com"), DIR_OK);
    char err[256];
    struct directory *second = directory_open(f->dir, err, sizeof err);
    assert_non_null(second);
    assert_int_equal(dir_schema_version(second), 3);
    struct dir_tenant t;
    assert_int_equal(dir_tenant_get(second, "example.com", &t), DIR_OK);
    directory_close(second);
    directory_close(f->d);
    f->d = directory_open(f->dir, err, sizeof err);
    assert_non_null(f->d);
    assert_int_equal(dir_schema_version(f->d), 3);
    assert_int_equal(dir_tenant_get(f->d, "example.com", &t), DIR_OK);
    struct dir_policy p;
    assert_int_equal(dir_policy_get(f->d, "block-basic", &p), DIR_OK); /* not inserted twice */
    sqlite3 *db = raw_open(f);
    assert_int_equal(tu_raw_int(db, "SELECT count(*) FROM policies", 0), 2);
    sqlite3_close(db);
}

static void test_open_failures(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_null(directory_open("/nonexistent/submitd-test", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/submitd-test/directory.db"));

    sqlite3 *db = raw_open(f);
    tu_raw_exec(db, "INSERT INTO schema_version (version, applied) VALUES (99, 0)");
    sqlite3_close(db);
    err[0] = '\0';
    assert_null(directory_open(f->dir, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

/* The schema exactly as migration 1 shipped it (issue 2), for the upgrade test. Kept here, not
 * taken from directory_sqlite.c, so that an accidental edit of the shipped step shows. */
static const char v1_schema[] =
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL);"
    "INSERT INTO schema_version (version, applied) VALUES (1, 1700000000);"
    "CREATE TABLE policies ("
    " name TEXT PRIMARY KEY COLLATE NOCASE,"
    " allow_basic_smtp INTEGER NOT NULL DEFAULT 0 CHECK (allow_basic_smtp IN (0, 1)),"
    " builtin INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1)));"
    "INSERT INTO policies (name, allow_basic_smtp, builtin) VALUES"
    " ('block-basic', 0, 1), ('allow-basic', 1, 1);"
    "CREATE TABLE tenants ("
    " id INTEGER PRIMARY KEY,"
    " domain TEXT NOT NULL UNIQUE,"
    " smtp_auth INTEGER NOT NULL DEFAULT 0 CHECK (smtp_auth IN (0, 1)),"
    " security_defaults INTEGER NOT NULL DEFAULT 1 CHECK (security_defaults IN (0, 1)),"
    " app_passwords INTEGER NOT NULL DEFAULT 0 CHECK (app_passwords IN (0, 1)),"
    " default_policy TEXT NOT NULL DEFAULT 'block-basic' REFERENCES policies(name),"
    " reply_detail TEXT NOT NULL DEFAULT 'full' CHECK (reply_detail IN ('full', 'generic')),"
    " created INTEGER NOT NULL);"
    "CREATE TABLE domains ("
    " domain TEXT PRIMARY KEY,"
    " tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE);"
    "CREATE INDEX domains_tenant ON domains(tenant_id);"
    "CREATE TABLE mailboxes ("
    " id INTEGER PRIMARY KEY,"
    " tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    " address TEXT NOT NULL UNIQUE,"
    " enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    " smtp_auth TEXT NOT NULL DEFAULT 'inherit' CHECK (smtp_auth IN ('on', 'off', 'inherit')),"
    " policy TEXT REFERENCES policies(name),"
    " password_hash TEXT NOT NULL DEFAULT '',"
    " created INTEGER NOT NULL,"
    " password_changed INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX mailboxes_tenant ON mailboxes(tenant_id);"
    "CREATE TABLE aliases ("
    " alias TEXT PRIMARY KEY,"
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE);"
    "CREATE INDEX aliases_mailbox ON aliases(mailbox_id);"
    "CREATE TABLE rules ("
    " id INTEGER PRIMARY KEY,"
    " tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    " position INTEGER NOT NULL,"
    " action TEXT NOT NULL CHECK (action IN ('allow-basic', 'block-basic')),"
    " outside INTEGER NOT NULL DEFAULT 0 CHECK (outside IN (0, 1)),"
    " networks TEXT NOT NULL,"
    " mailboxes TEXT NOT NULL DEFAULT '',"
    " comment TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX rules_tenant ON rules(tenant_id, position);"
    "CREATE TABLE generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);"
    "INSERT INTO generation (id, value) VALUES (1, 0);"
    /* what an issue-2 installation holds */
    "INSERT INTO tenants (id, domain, smtp_auth, default_policy, created)"
    " VALUES (1, 'example.com', 1, 'allow-basic', 1700000000);"
    "INSERT INTO domains (domain, tenant_id) VALUES ('example.com', 1), ('example.org', 1);"
    "INSERT INTO mailboxes (id, tenant_id, address, smtp_auth, password_hash, created)"
    " VALUES (7, 1, 'alice@example.com', 'on', '$argon2id$alice', 1700000000),"
    " (8, 1, 'bob@example.com', 'inherit', '', 1700000000);"
    "INSERT INTO aliases (alias, mailbox_id) VALUES ('info@example.org', 7);"
    "INSERT INTO rules (tenant_id, position, action, networks) VALUES"
    " (1, 1, 'block-basic', '192.0.2.0/24');"
    "UPDATE generation SET value = 41;";

static void test_migrate_from_v1(void **state)
{
    struct fixture *f = *state;
    /* the fixture's database is replaced by a version-1 one */
    directory_close(f->d);
    f->d = NULL;
    tu_remove_dir(f->dir, DIR_FILE_NAME);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    sqlite3 *db = raw_open(f);
    tu_raw_exec(db, "PRAGMA journal_mode=WAL");
    tu_raw_exec(db, v1_schema);
    sqlite3_close(db);

    char err[256];
    f->d = directory_open(f->dir, err, sizeof err);
    if (f->d == NULL)
        fail_msg("%s", err);
    assert_int_equal(dir_schema_version(f->d), 3);
    assert_int_equal(generation(f->d), 41); /* a migration is not a settings change */

    /* the old data, with the new settings at their defaults */
    struct dir_auth_view v;
    assert_int_equal(dir_auth_view(f->d, "alice@example.com", &v), DIR_OK);
    assert_true(v.tenant_found);
    assert_true(v.mailbox_found);
    assert_true(v.tenant.smtp_auth);
    assert_string_equal(v.tenant_policy.name, "allow-basic");
    assert_int_equal(v.mailbox.id, 7);
    assert_int_equal(v.mailbox.smtp_auth, SWITCH_ON);
    assert_string_equal(v.mailbox.password_hash, "$argon2id$alice");
    assert_int_equal(v.n_rules, 1);
    assert_string_equal(v.tenant.oauth_issuer, "");
    assert_string_equal(v.tenant.oauth_jwks, "");
    assert_string_equal(v.tenant.oauth_audience, "submitd");
    assert_string_equal(v.tenant.oauth_scope, "SMTP.Send");
    assert_string_equal(v.tenant.oauth_identity_claim, "");
    assert_int_equal(v.tenant.limits.sessions, 3);
    assert_int_equal(v.tenant.limits.messages_per_minute, 30);
    assert_int_equal(v.tenant.limits.recipients_per_day, 10000);
    assert_int_equal(v.tenant.limits.recipients_per_message, 500);
    assert_int_equal(v.mailbox.limits.sessions, 0);
    assert_int_equal(v.mailbox.limits.recipients_per_message, 0);
    assert_int_equal(dir_may_send_as(f->d, 7, "info@example.org"), DIR_OK);

    /* the new tables work and cascade */
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    assert_int_equal(dir_send_as_grant(f->d, "alice@example.com", "bob@example.com"), DIR_OK);
    assert_int_equal(dir_may_send_as(f->d, 7, "bob@example.com"), DIR_OK);
    assert_int_equal(dir_access_grant(f->d, "alice@example.com", "delegate@example.net"), DIR_OK);
    assert_int_equal(dir_may_act_as(f->d, 7, "Delegate@example.net"), DIR_OK);
    assert_int_equal(dir_app_password_add(f->d, "alice@example.com", "phone", hex), DIR_OK);
    int64_t id = 0;
    assert_int_equal(dir_app_password_match(f->d, 7, hex, &id), DIR_OK);
    assert_int_equal(dir_tenant_set(f->d, "example.com", "max-sessions", "8"), DIR_OK);
    assert_int_equal(dir_mailbox_set(f->d, "bob@example.com", "max-sessions", "2"), DIR_OK);
    assert_int_equal(dir_mailbox_remove(f->d, "alice@example.com"), DIR_OK);
    assert_int_equal(dir_app_password_match(f->d, 7, hex, &id), DIR_NOTFOUND);
    assert_int_equal(dir_may_act_as(f->d, 7, "delegate@example.net"), DIR_NOTFOUND);

    /* opening again changes nothing */
    directory_close(f->d);
    f->d = directory_open(f->dir, err, sizeof err);
    assert_non_null(f->d);
    assert_int_equal(dir_schema_version(f->d), 3);
    struct dir_mailbox m;
    assert_int_equal(dir_mailbox_get(f->d, "bob@example.com", &m), DIR_OK);
    assert_int_equal(m.limits.sessions, 2);
    db = raw_open(f);
    assert_int_equal(tu_raw_int(db, "SELECT count(*), max(version) FROM schema_version", 0), 3);
    assert_int_equal(tu_raw_int(db, "SELECT count(*), max(version) FROM schema_version", 1), 3);
    sqlite3_close(db);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, dir_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_schema),
        T(test_open_twice),
        T(test_open_failures),
        T(test_migrate_from_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
