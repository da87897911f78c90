/* directory_sqlite.c: owns the SQLite backend of the directory (directory.h) in DIR/directory.db:
 * the connection, the versioned schema and its migrations, the prepared statements, validation
 * helpers (names, addresses), row loaders, the write transaction (keyed by an address or a
 * domain), the generation counter, the one-snapshot read that every AUTH does (dir_auth_view)
 * and the other reads the server makes (send-as, act-as, app passwords, effective limits). The
 * administrative writes are in directory_admin.c and directory_grants.c, the delivery routes in
 * directory_routes.c. Addresses are RFC 5321
 * 4.1.2 mailboxes (RFC 6531 local parts allowed), domains RFC 1035 / RFC 5321 4.1.2 names,
 * networks RFC 4632 / RFC 4291. The schema is documented in docs/directory.md. One connection per
 * thread; every statement is prepared once per connection and reset after each use. */
#include "directory.h"
#include "directory_sqlite_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "netmask.h"
#include "smtp_parse.h"

#define DIR_BUSY_TIMEOUT_MS 5000

/* Migrations, in order: step i takes the schema from version i to version i + 1. Never edit a
 * step that has shipped; append a new one. */
static const char *const dir_migrations[] = {
    /* 1: the initial schema */
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
    "INSERT INTO generation (id, value) VALUES (1, 0);",
    /* 2: OAuth settings and submission limits (tenants; NULL = inherit in mailboxes), send-as
     * and access grants, app passwords */
    "ALTER TABLE tenants ADD COLUMN oauth_issuer TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tenants ADD COLUMN oauth_jwks TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tenants ADD COLUMN oauth_audience TEXT NOT NULL DEFAULT 'submitd';"
    "ALTER TABLE tenants ADD COLUMN oauth_scope TEXT NOT NULL DEFAULT 'SMTP.Send';"
    "ALTER TABLE tenants ADD COLUMN oauth_identity_claim TEXT NOT NULL DEFAULT ''"
    " CHECK (oauth_identity_claim IN ('', 'email', 'upn', 'preferred_username'));"
    "ALTER TABLE tenants ADD COLUMN max_sessions INTEGER NOT NULL DEFAULT 3"
    " CHECK (max_sessions BETWEEN 1 AND 1000000);"
    "ALTER TABLE tenants ADD COLUMN messages_per_minute INTEGER NOT NULL DEFAULT 30"
    " CHECK (messages_per_minute BETWEEN 1 AND 1000000);"
    "ALTER TABLE tenants ADD COLUMN recipients_per_day INTEGER NOT NULL DEFAULT 10000"
    " CHECK (recipients_per_day BETWEEN 1 AND 1000000);"
    "ALTER TABLE tenants ADD COLUMN recipients_per_message INTEGER NOT NULL DEFAULT 500"
    " CHECK (recipients_per_message BETWEEN 1 AND 1000000);"
    "ALTER TABLE mailboxes ADD COLUMN max_sessions INTEGER"
    " CHECK (max_sessions BETWEEN 1 AND 1000000);"
    "ALTER TABLE mailboxes ADD COLUMN messages_per_minute INTEGER"
    " CHECK (messages_per_minute BETWEEN 1 AND 1000000);"
    "ALTER TABLE mailboxes ADD COLUMN recipients_per_day INTEGER"
    " CHECK (recipients_per_day BETWEEN 1 AND 1000000);"
    "ALTER TABLE mailboxes ADD COLUMN recipients_per_message INTEGER"
    " CHECK (recipients_per_message BETWEEN 1 AND 1000000);"
    "CREATE TABLE send_as ("
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " address TEXT NOT NULL,"
    " PRIMARY KEY (mailbox_id, address)) WITHOUT ROWID;"
    "CREATE INDEX send_as_address ON send_as(address);"
    "CREATE TABLE access ("
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " principal TEXT NOT NULL COLLATE NOCASE,"
    " PRIMARY KEY (mailbox_id, principal)) WITHOUT ROWID;"
    "CREATE TABLE app_passwords ("
    " id INTEGER PRIMARY KEY,"
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " label TEXT NOT NULL COLLATE NOCASE,"
    " hash TEXT NOT NULL CHECK (length(hash) = 64),"
    " created INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (mailbox_id, label),"
    " UNIQUE (mailbox_id, hash));",
    /* 3: delivery routes, one per tenant (directory_routes.c); secret and refresh_token are
     * stored as given: they must be presented upstream */
    "CREATE TABLE routes ("
    " tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL CHECK (kind IN ('relay', 'lmtp', 'maildir')),"
    " host TEXT NOT NULL DEFAULT '',"
    " port INTEGER NOT NULL DEFAULT 0 CHECK (port BETWEEN 0 AND 65535),"
    " tls TEXT NOT NULL DEFAULT 'none'"
    " CHECK (tls IN ('required', 'opportunistic', 'none', 'implicit')),"
    " verify INTEGER NOT NULL DEFAULT 1 CHECK (verify IN (0, 1)),"
    " cafile TEXT NOT NULL DEFAULT '',"
    " auth TEXT NOT NULL DEFAULT 'none' CHECK (auth IN ('none', 'plain', 'login', 'xoauth2')),"
    " auth_user TEXT NOT NULL DEFAULT '',"
    " secret TEXT NOT NULL DEFAULT '',"
    " token_url TEXT NOT NULL DEFAULT '',"
    " client_id TEXT NOT NULL DEFAULT '',"
    " scope TEXT NOT NULL DEFAULT '',"
    " grant_type TEXT NOT NULL DEFAULT ''"
    " CHECK (grant_type IN ('', 'client_credentials', 'refresh_token')),"
    " refresh_token TEXT NOT NULL DEFAULT '',"
    " secret_in_body INTEGER NOT NULL DEFAULT 0 CHECK (secret_in_body IN (0, 1)),"
    " maildir TEXT NOT NULL DEFAULT '',"
    " max_connections INTEGER NOT NULL DEFAULT 10 CHECK (max_connections BETWEEN 1 AND 1000),"
    " updated INTEGER NOT NULL);",
};
#define DIR_MIGRATIONS (int)(sizeof dir_migrations / sizeof dir_migrations[0])

#define TENANT_COLS                                                                                \
    "t.id, t.domain, t.smtp_auth, t.security_defaults, t.app_passwords, t.default_policy, "        \
    "t.reply_detail, t.created, t.oauth_issuer, t.oauth_jwks, t.oauth_audience, t.oauth_scope, "   \
    "t.oauth_identity_claim, t.max_sessions, t.messages_per_minute, t.recipients_per_day, "        \
    "t.recipients_per_message"
#define MAILBOX_COLS                                                                               \
    "id, tenant_id, address, enabled, smtp_auth, coalesce(policy, ''), password_hash, created, "   \
    "password_changed, coalesce(max_sessions, 0), coalesce(messages_per_minute, 0), "              \
    "coalesce(recipients_per_day, 0), coalesce(recipients_per_message, 0)"
#define RULE_COLS "id, tenant_id, position, action, outside, networks, mailboxes, comment"
#define ROUTE_COLS                                                                                 \
    "r.kind, r.host, r.port, r.tls, r.verify, r.cafile, r.auth, r.auth_user, r.secret, "           \
    "r.token_url, r.client_id, r.scope, r.grant_type, r.refresh_token, r.secret_in_body, "         \
    "r.maildir, r.max_connections"

static const char *const dir_sql[ST_COUNT] = {
    [ST_BEGIN_READ] = "BEGIN",
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GEN_GET] = "SELECT value FROM generation WHERE id = 1",
    [ST_GEN_BUMP] = "UPDATE generation SET value = value + 1 WHERE id = 1",
    [ST_TENANT_BY_DOMAIN] = "SELECT " TENANT_COLS " FROM domains d JOIN tenants t"
                            " ON t.id = d.tenant_id WHERE d.domain = ?1",
    [ST_TENANT_LIST] = "SELECT " TENANT_COLS " FROM tenants t ORDER BY t.domain",
    [ST_TENANT_INSERT] = "INSERT INTO tenants (domain, created) VALUES (?1, ?2)",
    /* NULL leaves a column as it is */
    [ST_TENANT_UPDATE] = "UPDATE tenants SET smtp_auth = coalesce(?2, smtp_auth),"
                         " security_defaults = coalesce(?3, security_defaults),"
                         " app_passwords = coalesce(?4, app_passwords),"
                         " default_policy = coalesce(?5, default_policy),"
                         " reply_detail = coalesce(?6, reply_detail),"
                         " oauth_issuer = coalesce(?7, oauth_issuer),"
                         " oauth_jwks = coalesce(?8, oauth_jwks),"
                         " oauth_audience = coalesce(?9, oauth_audience),"
                         " oauth_scope = coalesce(?10, oauth_scope),"
                         " oauth_identity_claim = coalesce(?11, oauth_identity_claim),"
                         " max_sessions = coalesce(?12, max_sessions),"
                         " messages_per_minute = coalesce(?13, messages_per_minute),"
                         " recipients_per_day = coalesce(?14, recipients_per_day),"
                         " recipients_per_message = coalesce(?15, recipients_per_message)"
                         " WHERE id = ?1",
    [ST_DOMAIN_INSERT] = "INSERT INTO domains (domain, tenant_id) VALUES (?1, ?2)",
    [ST_DOMAIN_DELETE] = "DELETE FROM domains WHERE domain = ?1",
    [ST_DOMAIN_LIST] = "SELECT d.domain FROM domains d JOIN tenants t ON t.id = d.tenant_id"
                       " WHERE d.tenant_id = ?1 ORDER BY d.domain = t.domain DESC, d.domain",
    [ST_DOMAIN_IN_USE] = "SELECT (SELECT count(*) FROM mailboxes"
                         "  WHERE substr(address, -length(?1) - 1) = '@' || ?1)"
                         " + (SELECT count(*) FROM aliases"
                         "  WHERE substr(alias, -length(?1) - 1) = '@' || ?1)",
    [ST_MAILBOX_GET] = "SELECT " MAILBOX_COLS " FROM mailboxes WHERE address = ?1",
    [ST_MAILBOX_INSERT] = "INSERT INTO mailboxes (tenant_id, address, password_hash, created,"
                          " password_changed) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* ?4: NULL leaves the policy, '' makes it inherit, else a policy name; ?5-?8 (limits):
     * NULL leaves the limit, 0 makes it inherit, else the limit */
    [ST_MAILBOX_UPDATE] = "UPDATE mailboxes SET enabled = coalesce(?2, enabled),"
                          " smtp_auth = coalesce(?3, smtp_auth),"
                          " policy = CASE WHEN ?4 IS NULL THEN policy WHEN ?4 = '' THEN NULL"
                          " ELSE ?4 END,"
                          " max_sessions = CASE WHEN ?5 IS NULL THEN max_sessions"
                          " WHEN ?5 = 0 THEN NULL ELSE ?5 END,"
                          " messages_per_minute = CASE WHEN ?6 IS NULL THEN messages_per_minute"
                          " WHEN ?6 = 0 THEN NULL ELSE ?6 END,"
                          " recipients_per_day = CASE WHEN ?7 IS NULL THEN recipients_per_day"
                          " WHEN ?7 = 0 THEN NULL ELSE ?7 END,"
                          " recipients_per_message = CASE WHEN ?8 IS NULL"
                          " THEN recipients_per_message WHEN ?8 = 0 THEN NULL ELSE ?8 END"
                          " WHERE id = ?1",
    [ST_MAILBOX_PASSWORD] = "UPDATE mailboxes SET password_hash = ?2, password_changed = ?3"
                            " WHERE id = ?1",
    [ST_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = ?1",
    [ST_MAILBOX_LIST_ALL] = "SELECT " MAILBOX_COLS " FROM mailboxes ORDER BY address",
    [ST_MAILBOX_LIST_TENANT] = "SELECT " MAILBOX_COLS " FROM mailboxes WHERE tenant_id = ?1"
                               " ORDER BY address",
    [ST_MAY_SEND_AS] = "SELECT 1 FROM mailboxes WHERE id = ?1 AND address = ?2"
                       " UNION ALL SELECT 1 FROM aliases WHERE mailbox_id = ?1 AND alias = ?2"
                       " UNION ALL SELECT 1 FROM send_as WHERE mailbox_id = ?1 AND address = ?2",
    [ST_MAY_ACT_AS] = "SELECT 1 FROM mailboxes WHERE id = ?1 AND address = ?2 COLLATE NOCASE"
                      " UNION ALL SELECT 1 FROM access WHERE mailbox_id = ?1 AND principal = ?2",
    [ST_APP_PW_MATCH] = "SELECT id FROM app_passwords WHERE mailbox_id = ?1 AND hash = ?2",
    [ST_APP_PW_TOUCH] = "UPDATE app_passwords SET last_used = max(last_used, ?2) WHERE id = ?1",
    [ST_APP_PW_COUNT] = "SELECT count(*), coalesce(sum(label = ?2), 0),"
                        " coalesce(sum(hash = ?3), 0) FROM app_passwords WHERE mailbox_id = ?1",
    [ST_APP_PW_INSERT] = "INSERT INTO app_passwords (mailbox_id, label, hash, created)"
                         " VALUES (?1, ?2, ?3, ?4)",
    [ST_APP_PW_DELETE] = "DELETE FROM app_passwords WHERE mailbox_id = ?1 AND label = ?2",
    [ST_APP_PW_LIST] = "SELECT id, mailbox_id, label, created, last_used FROM app_passwords"
                       " WHERE mailbox_id = ?1 ORDER BY id",
    [ST_SEND_AS_INSERT] = "INSERT INTO send_as (mailbox_id, address) VALUES (?1, ?2)",
    [ST_SEND_AS_DELETE] = "DELETE FROM send_as WHERE mailbox_id = ?1 AND address = ?2",
    [ST_SEND_AS_LIST] = "SELECT address FROM send_as WHERE mailbox_id = ?1 ORDER BY address",
    /* grants TO an address that stops existing go with it: ?1 an alias, or a mailbox's address
     * with ?2 its id (run before the mailbox's aliases cascade away) */
    [ST_SEND_AS_DROP_TARGET] = "DELETE FROM send_as WHERE address = ?1 OR address IN"
                               " (SELECT alias FROM aliases WHERE mailbox_id = ?2)",
    [ST_ACCESS_INSERT] = "INSERT INTO access (mailbox_id, principal) VALUES (?1, ?2)",
    [ST_ACCESS_DELETE] = "DELETE FROM access WHERE mailbox_id = ?1 AND principal = ?2",
    [ST_ACCESS_LIST] = "SELECT principal FROM access WHERE mailbox_id = ?1"
                       " ORDER BY principal",
    [ST_ALIAS_GET] = "SELECT m.address FROM aliases a JOIN mailboxes m ON m.id = a.mailbox_id"
                     " WHERE a.alias = ?1",
    [ST_ALIAS_INSERT] = "INSERT INTO aliases (alias, mailbox_id) VALUES (?1, ?2)",
    [ST_ALIAS_DELETE] = "DELETE FROM aliases WHERE alias = ?1",
    [ST_ALIAS_LIST] = "SELECT alias FROM aliases WHERE mailbox_id = ?1 ORDER BY alias",
    [ST_POLICY_GET] = "SELECT name, allow_basic_smtp, builtin FROM policies WHERE name = ?1",
    [ST_POLICY_INSERT] = "INSERT INTO policies (name, allow_basic_smtp, builtin)"
                         " VALUES (?1, ?2, 0)",
    [ST_POLICY_UPDATE] = "UPDATE policies SET allow_basic_smtp = ?2 WHERE name = ?1",
    [ST_POLICY_DELETE] = "DELETE FROM policies WHERE name = ?1",
    [ST_POLICY_LIST] = "SELECT name, allow_basic_smtp, builtin FROM policies"
                       " ORDER BY builtin DESC, name",
    [ST_POLICY_TENANT_USER] = "SELECT domain FROM tenants WHERE default_policy = ?1"
                              " ORDER BY domain LIMIT 1",
    [ST_POLICY_MAILBOX_USER] = "SELECT address FROM mailboxes WHERE policy = ?1"
                               " ORDER BY address LIMIT 1",
    [ST_RULE_LIST] = "SELECT " RULE_COLS " FROM rules WHERE tenant_id = ?1"
                     " ORDER BY position, id",
    [ST_RULE_COUNT] = "SELECT count(*), coalesce(max(position), 0) FROM rules"
                      " WHERE tenant_id = ?1",
    [ST_RULE_SHIFT] = "UPDATE rules SET position = position + ?3"
                      " WHERE tenant_id = ?1 AND position >= ?2",
    [ST_RULE_INSERT] = "INSERT INTO rules (tenant_id, position, action, outside, networks,"
                       " mailboxes, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_RULE_POSITION] = "SELECT position FROM rules WHERE id = ?1 AND tenant_id = ?2",
    [ST_RULE_DELETE] = "DELETE FROM rules WHERE id = ?1",
    /* a row for every accepted domain of a tenant; r.kind NULL = no route */
    [ST_ROUTE_GET] = "SELECT t.id, " ROUTE_COLS " FROM domains d JOIN tenants t"
                     " ON t.id = d.tenant_id LEFT JOIN routes r ON r.tenant_id = t.id"
                     " WHERE d.domain = ?1",
    [ST_ROUTE_PUT] = "INSERT OR REPLACE INTO routes (tenant_id, kind, host, port, tls, verify,"
                     " cafile, auth, auth_user, secret, token_url, client_id, scope, grant_type,"
                     " refresh_token, secret_in_body, maildir, max_connections, updated) VALUES"
                     " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
                     " ?17, ?18, ?19)",
    [ST_ROUTE_DELETE] = "DELETE FROM routes WHERE tenant_id = ?1",
    [ST_ROUTE_REFRESH] = "UPDATE routes SET refresh_token = ?2, updated = ?3 WHERE tenant_id = ?1",
};

/* --- errors and statements --- */

enum dir_status dsql_invalid(struct directory *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    return DIR_INVALID;
}

/* A database error: a unique-key violation is DIR_EXISTS (an add of something that exists),
 * any other constraint DIR_INVALID; busy, locked, I/O, full and everything else DIR_TEMPFAIL. */
enum dir_status dsql_db_error(struct directory *d, int rc, const char *what)
{
    snprintf(d->err, sizeof d->err, "%s: %s (%s)", what, sqlite3_errmsg(d->db), sqlite3_errstr(rc));
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return DIR_EXISTS;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return DIR_INVALID;
    return DIR_TEMPFAIL;
}

sqlite3_stmt *dsql_stmt(struct directory *d, enum dir_stmt id)
{
    return d->st[id];
}

enum dir_status dsql_done(struct directory *d, sqlite3_stmt *s, int rc, const char *what)
{
    sqlu_finish(s);
    return rc == SQLITE_DONE ? DIR_OK : dsql_db_error(d, rc, what);
}

enum dir_status dsql_found(struct directory *d, sqlite3_stmt *s, int rc, const char *what)
{
    sqlu_finish(s);
    if (rc == SQLITE_ROW)
        return DIR_OK;
    return rc == SQLITE_DONE ? DIR_NOTFOUND : dsql_db_error(d, rc, what);
}

/* Steps a statement that returns no rows. */
enum dir_status dsql_run(struct directory *d, sqlite3_stmt *s, const char *what)
{
    return dsql_done(d, s, sqlite3_step(s), what);
}

void dsql_bind_text(sqlite3_stmt *s, int i, const char *text)
{
    sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}

/* A write: BEGIN IMMEDIATE, the work, then (when it succeeded) the generation bump and COMMIT;
 * else ROLLBACK. */
enum dir_status dsql_tx_begin(struct directory *d, const char *what)
{
    return dsql_run(d, dsql_stmt(d, ST_BEGIN_WRITE), what);
}

void dsql_tx_rollback(struct directory *d)
{
    if (!sqlite3_get_autocommit(d->db)) {
        int rc = sqlite3_step(dsql_stmt(d, ST_ROLLBACK));
        (void)rc; /* nothing more to undo; the error that led here is reported */
        sqlu_finish(dsql_stmt(d, ST_ROLLBACK));
    }
}

enum dir_status dsql_tx_end(struct directory *d, enum dir_status st)
{
    if (st == DIR_OK)
        st = dsql_run(d, dsql_stmt(d, ST_GEN_BUMP), "updating the directory generation");
    if (st == DIR_OK)
        st = dsql_run(d, dsql_stmt(d, ST_COMMIT), "committing a directory change");
    if (st != DIR_OK)
        dsql_tx_rollback(d);
    return st;
}

enum dir_status dsql_write(struct directory *d, enum dir_status st, const char *key,
                           const char *what, dsql_work_fn work, const void *arg)
{
    if (st == DIR_OK)
        st = dsql_tx_begin(d, what);
    if (st != DIR_OK)
        return st;
    return dsql_tx_end(d, work(d, key, arg));
}

enum dir_status dsql_address_tx(struct directory *d, const char *address, const char *what,
                                dsql_work_fn work, const void *arg)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    return dsql_write(d, dsql_norm_address(d, address, addr, &domain), addr, what, work, arg);
}

enum dir_status dsql_domain_tx(struct directory *d, const char *domain, const char *what,
                               dsql_work_fn work, const void *arg)
{
    char dom[SMTP_DOMAIN_MAX + 1];
    return dsql_write(d, dsql_norm_domain(d, domain, dom), dom, what, work, arg);
}

/* --- opening and migrations --- */

/* Applies the migrations the database lacks, all in one transaction. */
static int migrate(struct directory *d, char *err, size_t errlen)
{
    sqlite3_stmt *get = NULL;
    sqlite3_stmt *put = NULL;
    const char *what = "starting the migration";
    int rc = sqlu_script(d->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        goto fail;
    what = "creating the schema_version table";
    rc = sqlu_script(d->db, "CREATE TABLE IF NOT EXISTS schema_version ("
                            " version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)");
    if (rc != SQLITE_OK)
        goto fail;
    what = "reading the schema version";
    rc = sqlite3_prepare_v2(d->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &get,
                            NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_step(get)) != SQLITE_ROW)
        goto fail;
    int version = sqlite3_column_int(get, 0);
    if (version > DIR_MIGRATIONS) {
        snprintf(err, errlen, "directory schema version %d is newer than this program's (%d)",
                 version, DIR_MIGRATIONS);
        sqlite3_finalize(get);
        sqlu_script(d->db, "ROLLBACK");
        return -1;
    }
    rc = sqlite3_prepare_v2(d->db, "INSERT INTO schema_version (version, applied) VALUES (?1, ?2)",
                            -1, &put, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    for (; version < DIR_MIGRATIONS; version++) {
        what = "applying a schema migration";
        rc = sqlu_script(d->db, dir_migrations[version]);
        if (rc != SQLITE_OK)
            goto fail;
        sqlite3_bind_int(put, 1, version + 1);
        sqlite3_bind_int64(put, 2, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(put);
        sqlite3_reset(put);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    what = "committing the migration";
    rc = sqlu_script(d->db, "COMMIT");
    if (rc != SQLITE_OK)
        goto fail;
    d->schema_version = version;
    sqlite3_finalize(get);
    sqlite3_finalize(put);
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(d->db));
    sqlite3_finalize(get);
    sqlite3_finalize(put);
    if (!sqlite3_get_autocommit(d->db))
        sqlu_script(d->db, "ROLLBACK");
    return -1;
}

struct directory *directory_open(const char *datadir, char *err, size_t errlen)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", datadir, DIR_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, errlen, "directory path too long: %s/%s", datadir, DIR_FILE_NAME);
        return NULL;
    }
    struct directory *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "opening %s: out of memory", path);
        return NULL;
    }
    const char *failed;
    int rc = sqlu_open_wal(path, DIR_BUSY_TIMEOUT_MS, "PRAGMA foreign_keys=ON;", &d->db, &failed);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s %s: %s", failed, path, sqlu_errmsg(d->db, rc));
        goto fail;
    }
    char why[400];
    if (migrate(d, why, sizeof why) != 0) {
        snprintf(err, errlen, "migrating %s: %s", path, why);
        goto fail;
    }
    int bad = 0;
    if (sqlu_prepare_all(d->db, dir_sql, d->st, ST_COUNT, &bad) != SQLITE_OK) {
        snprintf(err, errlen, "preparing statement %d on %s: %s", bad, path, sqlite3_errmsg(d->db));
        goto fail;
    }
    return d;
fail:
    directory_close(d);
    return NULL;
}

void directory_close(struct directory *d)
{
    if (d == NULL)
        return;
    sqlu_close(d->db, d->st, ST_COUNT);
    free(d);
}

const char *dir_error(struct directory *d)
{
    return d->err;
}

int dir_schema_version(struct directory *d)
{
    return d->schema_version;
}

enum dir_status dir_generation(struct directory *d, int64_t *out)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_GEN_GET);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlu_finish(s);
    return rc == SQLITE_ROW ? DIR_OK : dsql_db_error(d, rc, "reading the directory generation");
}

/* --- normalization and validation --- */

/* RFC 1035 2.3.1 / RFC 5321 4.1.2 Domain: dot-separated labels of letters, digits and hyphens
 * (not first or last), 1-63 octets each, at most 255 in all. Lower-cased into out. */
static bool domain_normalize(const char *in, char out[SMTP_DOMAIN_MAX + 1])
{
    if (in == NULL)
        return false;
    size_t len = strnlen(in, SMTP_DOMAIN_MAX + 1);
    if (len == 0 || len > SMTP_DOMAIN_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = in[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || in[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    return true;
}

enum dir_status dsql_norm_domain(struct directory *d, const char *in, char out[SMTP_DOMAIN_MAX + 1])
{
    if (!domain_normalize(in, out))
        return dsql_invalid(d, "'%.300s' is not a valid domain", in != NULL ? in : "");
    return DIR_OK;
}

/* Normalizes an address (lower case) and checks its syntax; *domain points at its domain part. */
static bool address_normalize(const char *in, char out[SMTP_PATH_MAX + 1], const char **domain)
{
    if (in == NULL || !smtp_address_normalize(in, out, SMTP_PATH_MAX + 1))
        return false;
    const char *at = strrchr(out, '@');
    if (at == NULL || !smtp_mailbox_valid(out, strlen(out), true))
        return false;
    *domain = at + 1;
    return true;
}

enum dir_status dsql_norm_address(struct directory *d, const char *in, char out[SMTP_PATH_MAX + 1],
                                  const char **domain)
{
    if (!address_normalize(in, out, domain))
        return dsql_invalid(d, "'%.300s' is not a valid mailbox address", in != NULL ? in : "");
    return DIR_OK;
}

/* Exactly APP_PASSWORD_HASH_HEX lower-case hex digits. */
bool dsql_hash_hex_valid(const char *hex)
{
    if (hex == NULL || strnlen(hex, DSQL_HASH_HEX + 1) != DSQL_HASH_HEX)
        return false;
    return strspn(hex, "0123456789abcdef") == DSQL_HASH_HEX;
}

/* --- row loaders (usable inside a transaction) --- */

/* Four limit columns from `first` on; a NULL (or out-of-range) value reads as 0, "inherit". */
static void limits_row(sqlite3_stmt *s, int first, struct dir_limits *l)
{
    unsigned *field[] = {&l->sessions, &l->messages_per_minute, &l->recipients_per_day,
                         &l->recipients_per_message};
    for (int i = 0; i < 4; i++) {
        int64_t v = sqlite3_column_int64(s, first + i);
        *field[i] = v >= 1 && v <= DSQL_LIMIT_MAX ? (unsigned)v : 0;
    }
}

void dsql_tenant_row(sqlite3_stmt *s, struct dir_tenant *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(s, 0);
    COL_COPY(s, 1, t->domain);
    t->smtp_auth = sqlite3_column_int(s, 2) != 0;
    t->security_defaults = sqlite3_column_int(s, 3) != 0;
    t->app_passwords = sqlite3_column_int(s, 4) != 0;
    COL_COPY(s, 5, t->default_policy);
    const unsigned char *rd = sqlite3_column_text(s, 6);
    t->reply_detail = rd != NULL && strcmp((const char *)rd, "generic") == 0 ? REPLY_DETAIL_GENERIC
                                                                             : REPLY_DETAIL_FULL;
    t->created = sqlite3_column_int64(s, 7);
    COL_COPY(s, 8, t->oauth_issuer);
    COL_COPY(s, 9, t->oauth_jwks);
    COL_COPY(s, 10, t->oauth_audience);
    COL_COPY(s, 11, t->oauth_scope);
    COL_COPY(s, 12, t->oauth_identity_claim);
    limits_row(s, 13, &t->limits);
}

/* The tenant that has `domain` (normalized) as one of its accepted domains. */
enum dir_status dsql_tenant_load(struct directory *d, const char *domain, struct dir_tenant *out)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_TENANT_BY_DOMAIN);
    dsql_bind_text(s, 1, domain);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        dsql_tenant_row(s, out);
    return dsql_found(d, s, rc, "reading a tenant");
}

void dsql_mailbox_row(sqlite3_stmt *s, struct dir_mailbox *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(s, 0);
    m->tenant_id = sqlite3_column_int64(s, 1);
    COL_COPY(s, 2, m->address);
    m->enabled = sqlite3_column_int(s, 3) != 0;
    const unsigned char *sa = sqlite3_column_text(s, 4);
    m->smtp_auth = sa == NULL                             ? SWITCH_INHERIT
                   : strcmp((const char *)sa, "on") == 0  ? SWITCH_ON
                   : strcmp((const char *)sa, "off") == 0 ? SWITCH_OFF
                                                          : SWITCH_INHERIT;
    COL_COPY(s, 5, m->policy);
    COL_COPY(s, 6, m->password_hash);
    m->created = sqlite3_column_int64(s, 7);
    m->password_changed = sqlite3_column_int64(s, 8);
    limits_row(s, 9, &m->limits);
}

enum dir_status dsql_mailbox_load(struct directory *d, const char *address, struct dir_mailbox *out)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_MAILBOX_GET);
    dsql_bind_text(s, 1, address);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        dsql_mailbox_row(s, out);
    return dsql_found(d, s, rc, "reading a mailbox");
}

enum dir_status dsql_policy_load(struct directory *d, const char *name, struct dir_policy *out)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_POLICY_GET);
    dsql_bind_text(s, 1, name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        COL_COPY(s, 0, out->name);
        out->allow_basic_smtp = sqlite3_column_int(s, 1) != 0;
        out->builtin = sqlite3_column_int(s, 2) != 0;
    }
    return dsql_found(d, s, rc, "reading a policy");
}

/* The mailbox an alias belongs to (its address in owner). */
enum dir_status dsql_alias_load(struct directory *d, const char *alias,
                                char owner[SMTP_PATH_MAX + 1])
{
    sqlite3_stmt *s = dsql_stmt(d, ST_ALIAS_GET);
    dsql_bind_text(s, 1, alias);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        sqlu_col_copy(s, 0, owner, SMTP_PATH_MAX + 1);
    return dsql_found(d, s, rc, "reading an alias");
}

void dsql_rule_row(sqlite3_stmt *s, struct dir_rule *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    r->tenant_id = sqlite3_column_int64(s, 1);
    r->position = sqlite3_column_int(s, 2);
    const unsigned char *action = sqlite3_column_text(s, 3);
    r->allow = action != NULL && strcmp((const char *)action, "allow-basic") == 0;
    r->outside = sqlite3_column_int(s, 4) != 0;
    COL_COPY(s, 5, r->networks);
    COL_COPY(s, 6, r->mailboxes);
    COL_COPY(s, 7, r->comment);
}

/* Calls cb for each rule of a tenant, in order. */
enum dir_status dsql_rules_each(struct directory *d, int64_t tenant_id,
                                void (*cb)(const struct dir_rule *, void *), void *arg)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_RULE_LIST);
    sqlite3_bind_int64(s, 1, tenant_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct dir_rule r;
        dsql_rule_row(s, &r);
        cb(&r, arg);
    }
    return dsql_done(d, s, rc, "reading access rules");
}

_Static_assert(SMTP_DOMAIN_MAX <= SMTP_PATH_MAX && DSQL_PRINCIPAL_MAX <= SMTP_PATH_MAX,
               "dsql_list_text's buffer holds a domain, an address and a principal");

enum dir_status dsql_list_text(struct directory *d, enum dir_stmt id, int64_t owner_id,
                               void (*cb)(const char *, void *), void *arg, const char *what)
{
    sqlite3_stmt *s = dsql_stmt(d, id);
    sqlite3_bind_int64(s, 1, owner_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char text[SMTP_PATH_MAX + 1];
        COL_COPY(s, 0, text);
        cb(text, arg);
    }
    return dsql_done(d, s, rc, what);
}

/* --- what the server asks --- */

static void view_add_rule(const struct dir_rule *r, void *arg)
{
    struct dir_auth_view *v = arg;
    if (v->n_rules < DIR_RULES_MAX)
        v->rules[v->n_rules++] = *r;
}

static enum dir_status view_read(struct directory *d, const char *address, const char *domain,
                                 struct dir_auth_view *out)
{
    enum dir_status st = dsql_tenant_load(d, domain, &out->tenant);
    if (st != DIR_OK)
        return st == DIR_NOTFOUND ? DIR_OK : st;
    out->tenant_found = true;
    st = dsql_policy_load(d, out->tenant.default_policy, &out->tenant_policy);
    if (st == DIR_NOTFOUND) {
        /* Cannot happen with foreign keys on; fail closed if it does. */
        snprintf(out->tenant_policy.name, sizeof out->tenant_policy.name, "%s",
                 out->tenant.default_policy);
        out->tenant_policy.allow_basic_smtp = false;
    } else if (st != DIR_OK) {
        return st;
    }
    st = dsql_rules_each(d, out->tenant.id, view_add_rule, out);
    if (st != DIR_OK)
        return st;
    st = dsql_mailbox_load(d, address, &out->mailbox);
    if (st == DIR_NOTFOUND || (st == DIR_OK && out->mailbox.tenant_id != out->tenant.id)) {
        memset(&out->mailbox, 0, sizeof out->mailbox);
        return DIR_OK;
    }
    if (st != DIR_OK)
        return st;
    out->mailbox_found = true;
    if (out->mailbox.policy[0] != '\0') {
        out->mailbox_policy_inherit = false;
        st = dsql_policy_load(d, out->mailbox.policy, &out->mailbox_policy);
        if (st == DIR_NOTFOUND) {
            snprintf(out->mailbox_policy.name, sizeof out->mailbox_policy.name, "%s",
                     out->mailbox.policy);
            out->mailbox_policy.allow_basic_smtp = false;
            st = DIR_OK;
        }
    }
    return st;
}

enum dir_status dir_auth_view(struct directory *d, const char *address, struct dir_auth_view *out)
{
    memset(out, 0, sizeof *out);
    out->mailbox_policy_inherit = true;
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    if (!address_normalize(address, addr, &domain))
        return DIR_OK; /* no tenant has it */
    /* One read transaction: a concurrent change is seen whole or not at all. */
    enum dir_status st = dsql_run(d, dsql_stmt(d, ST_BEGIN_READ), "starting a directory read");
    if (st != DIR_OK)
        return st;
    st = view_read(d, addr, domain, out);
    if (st == DIR_OK)
        st = dsql_run(d, dsql_stmt(d, ST_COMMIT), "ending a directory read");
    if (st != DIR_OK) {
        dsql_tx_rollback(d);
        memset(out, 0, sizeof *out);
        out->mailbox_policy_inherit = true;
    }
    return st;
}

/* The mailbox itself, one of its aliases, or an address granted with dir_send_as_grant: exactly
 * that address (a grant of another mailbox does not extend to that mailbox's aliases). */
enum dir_status dir_may_send_as(struct directory *d, int64_t mailbox_id, const char *address)
{
    char addr[SMTP_PATH_MAX + 1];
    const char *domain;
    if (!address_normalize(address, addr, &domain))
        return DIR_NOTFOUND;
    sqlite3_stmt *s = dsql_stmt(d, ST_MAY_SEND_AS);
    sqlite3_bind_int64(s, 1, mailbox_id);
    dsql_bind_text(s, 2, addr);
    return dsql_found(d, s, sqlite3_step(s), "checking a sender address");
}

/* SPEC 4 defaults; a tenant row always has its own values, these cover a view without one. */
static const struct dir_limits default_limits = {
    .sessions = 3,
    .messages_per_minute = 30,
    .recipients_per_day = 10000,
    .recipients_per_message = 500,
};

static unsigned limit_pick(unsigned mailbox, unsigned tenant, unsigned fallback)
{
    return mailbox != 0 ? mailbox : tenant != 0 ? tenant : fallback;
}

void dir_effective_limits(const struct dir_auth_view *v, struct dir_limits *out)
{
    static const struct dir_limits none = {0};
    const struct dir_limits *m = v->mailbox_found ? &v->mailbox.limits : &none;
    const struct dir_limits *t = v->tenant_found ? &v->tenant.limits : &none;
    out->sessions = limit_pick(m->sessions, t->sessions, default_limits.sessions);
    out->messages_per_minute = limit_pick(m->messages_per_minute, t->messages_per_minute,
                                          default_limits.messages_per_minute);
    out->recipients_per_day =
        limit_pick(m->recipients_per_day, t->recipients_per_day, default_limits.recipients_per_day);
    out->recipients_per_message = limit_pick(m->recipients_per_message, t->recipients_per_message,
                                             default_limits.recipients_per_message);
}

/* Steps a statement bound by the caller; DIR_OK when it yields a row (*id from column 0 when
 * id is not NULL), DIR_NOTFOUND when none. */
static enum dir_status exists(struct directory *d, sqlite3_stmt *s, int64_t *id, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && id != NULL)
        *id = sqlite3_column_int64(s, 0);
    return dsql_found(d, s, rc, what);
}

enum dir_status dir_may_act_as(struct directory *d, int64_t mailbox_id, const char *principal)
{
    if (principal == NULL || principal[0] == '\0' ||
        strnlen(principal, DSQL_PRINCIPAL_MAX + 1) > DSQL_PRINCIPAL_MAX)
        return DIR_NOTFOUND;
    sqlite3_stmt *s = dsql_stmt(d, ST_MAY_ACT_AS);
    sqlite3_bind_int64(s, 1, mailbox_id);
    dsql_bind_text(s, 2, principal);
    return exists(d, s, NULL, "checking an OAuth principal");
}

enum dir_status dir_app_password_match(struct directory *d, int64_t mailbox_id,
                                       const char *hash_hex, int64_t *id)
{
    if (!dsql_hash_hex_valid(hash_hex))
        return DIR_NOTFOUND;
    sqlite3_stmt *s = dsql_stmt(d, ST_APP_PW_MATCH);
    sqlite3_bind_int64(s, 1, mailbox_id);
    dsql_bind_text(s, 2, hash_hex);
    int64_t found = 0;
    enum dir_status st = exists(d, s, &found, "checking an app password");
    if (st == DIR_OK && id != NULL)
        *id = found;
    return st;
}

/* Not a setting: no write transaction of its own and no generation bump (caches stay valid). */
enum dir_status dir_app_password_touch(struct directory *d, int64_t id, int64_t when)
{
    sqlite3_stmt *s = dsql_stmt(d, ST_APP_PW_TOUCH);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, when);
    enum dir_status st = dsql_run(d, s, "recording an app password's use");
    if (st == DIR_OK && sqlite3_changes(d->db) == 0)
        return DIR_NOTFOUND;
    return st;
}

static bool list_has(const char *list, const char *address)
{
    size_t alen = strlen(address);
    bool empty = true;
    const char *p = list;
    while (*p != '\0') {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0)
            continue;
        empty = false;
        if (len == alen && strncasecmp(start, address, len) == 0)
            return true;
    }
    return empty;
}

size_t dir_rules_for_policy(const struct dir_auth_view *v, const char *address,
                            struct policy_rule *out, struct netmask nets[][DIR_RULE_NETS_MAX])
{
    char addr[SMTP_PATH_MAX + 1];
    if (address == NULL || !smtp_address_normalize(address, addr, sizeof addr))
        addr[0] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < v->n_rules && i < DIR_RULES_MAX; i++) {
        const struct dir_rule *r = &v->rules[i];
        /* Stored networks were validated; should one not parse, the rule keeps no networks
         * (an "outside" rule then matches every client, an inside one none). */
        int k = netmask_parse_list(r->networks, nets[i], DIR_RULE_NETS_MAX, NULL, 0);
        out[n++] = (struct policy_rule){
            .id = r->id,
            .allow = r->allow,
            .outside = r->outside,
            .applies = addr[0] != '\0' ? list_has(r->mailboxes, addr) : r->mailboxes[0] == '\0',
            .nets = nets[i],
            .n_nets = k > 0 ? (size_t)k : 0,
        };
    }
    return n;
}
