/* directory_sqlite_int.h: private to the SQLite directory backend (directory_sqlite.c, the
 * connection, schema, validation and server-side reads; directory_admin.c, the administrative
 * writes; directory_grants.c, send-as and access grants and app passwords; directory_routes.c,
 * the delivery routes). Not for any other module: use directory.h. */
#ifndef SUBMITD_DIRECTORY_SQLITE_INT_H
#define SUBMITD_DIRECTORY_SQLITE_INT_H

#include <sqlite3.h>

#include "app_password.h"
#include "directory.h"
#include "sqlite_util.h"

/* Every statement, prepared once per connection (directory_open) and reset after each use. */
enum dir_stmt {
    ST_BEGIN_READ,
    ST_BEGIN_WRITE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_GEN_GET,
    ST_GEN_BUMP,
    ST_TENANT_BY_DOMAIN,
    ST_TENANT_LIST,
    ST_TENANT_INSERT,
    ST_TENANT_UPDATE,
    ST_DOMAIN_INSERT,
    ST_DOMAIN_DELETE,
    ST_DOMAIN_LIST,
    ST_DOMAIN_IN_USE,
    ST_MAILBOX_GET,
    ST_MAILBOX_INSERT,
    ST_MAILBOX_UPDATE,
    ST_MAILBOX_PASSWORD,
    ST_MAILBOX_DELETE,
    ST_MAILBOX_LIST_ALL,
    ST_MAILBOX_LIST_TENANT,
    ST_MAY_SEND_AS,
    ST_MAY_ACT_AS,
    ST_APP_PW_MATCH,
    ST_APP_PW_TOUCH,
    ST_APP_PW_COUNT,
    ST_APP_PW_INSERT,
    ST_APP_PW_DELETE,
    ST_APP_PW_LIST,
    ST_SEND_AS_INSERT,
    ST_SEND_AS_DELETE,
    ST_SEND_AS_LIST,
    ST_SEND_AS_DROP_TARGET,
    ST_ACCESS_INSERT,
    ST_ACCESS_DELETE,
    ST_ACCESS_LIST,
    ST_ALIAS_GET,
    ST_ALIAS_INSERT,
    ST_ALIAS_DELETE,
    ST_ALIAS_LIST,
    ST_POLICY_GET,
    ST_POLICY_INSERT,
    ST_POLICY_UPDATE,
    ST_POLICY_DELETE,
    ST_POLICY_LIST,
    ST_POLICY_TENANT_USER,
    ST_POLICY_MAILBOX_USER,
    ST_RULE_LIST,
    ST_RULE_COUNT,
    ST_RULE_SHIFT,
    ST_RULE_INSERT,
    ST_RULE_POSITION,
    ST_RULE_DELETE,
    ST_ROUTE_GET,
    ST_ROUTE_PUT,
    ST_ROUTE_DELETE,
    ST_ROUTE_REFRESH,
    ST_COUNT
};

struct directory {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int schema_version;
    char err[1024]; /* room for two addresses and a sentence */
};

/* Errors: dsql_invalid sets the reason and returns DIR_INVALID; dsql_db_error maps an SQLite
 * result code (unique key: DIR_EXISTS, other constraint: DIR_INVALID, else DIR_TEMPFAIL). */
__attribute__((format(printf, 2, 3))) enum dir_status dsql_invalid(struct directory *d,
                                                                   const char *fmt, ...);
enum dir_status dsql_db_error(struct directory *d, int rc, const char *what);

sqlite3_stmt *dsql_stmt(struct directory *d, enum dir_stmt id);
/* Steps a statement that returns no rows, then resets it. */
enum dir_status dsql_run(struct directory *d, sqlite3_stmt *s, const char *what);
/* Reset s after its last step, which returned rc, and answer: dsql_done (a list, or a statement
 * without rows) DIR_OK when the rows ran out; dsql_found (a lookup of one row) DIR_OK for a
 * row, DIR_NOTFOUND for none. Any other rc is dsql_db_error(what). */
enum dir_status dsql_done(struct directory *d, sqlite3_stmt *s, int rc, const char *what);
enum dir_status dsql_found(struct directory *d, sqlite3_stmt *s, int rc, const char *what);
void dsql_bind_text(sqlite3_stmt *s, int i, const char *text);

/* A write: dsql_tx_begin (BEGIN IMMEDIATE), the work, then dsql_tx_end with the work's status:
 * on DIR_OK it bumps the generation and commits, else it rolls back. Returns the final status. */
enum dir_status dsql_tx_begin(struct directory *d, const char *what);
enum dir_status dsql_tx_end(struct directory *d, enum dir_status st);
void dsql_tx_rollback(struct directory *d);

/* A write keyed by an address or a domain: dsql_write runs work(d, key, arg) between
 * dsql_tx_begin(what) and dsql_tx_end when st (the checks of key and arg) is DIR_OK, else
 * answers st; dsql_address_tx and dsql_domain_tx first normalize the key (DIR_INVALID with the
 * reason). */
typedef enum dir_status (*dsql_work_fn)(struct directory *d, const char *key, const void *arg);
enum dir_status dsql_write(struct directory *d, enum dir_status st, const char *key,
                           const char *what, dsql_work_fn work, const void *arg);
enum dir_status dsql_address_tx(struct directory *d, const char *address, const char *what,
                                dsql_work_fn work, const void *arg);
enum dir_status dsql_domain_tx(struct directory *d, const char *domain, const char *what,
                               dsql_work_fn work, const void *arg);

/* Normalize (lower case) and validate; DIR_INVALID with a reason. *domain points into out. */
enum dir_status dsql_norm_domain(struct directory *d, const char *in,
                                 char out[SMTP_DOMAIN_MAX + 1]);
enum dir_status dsql_norm_address(struct directory *d, const char *in, char out[SMTP_PATH_MAX + 1],
                                  const char **domain);

/* Values of the settings added with OAuth (directory_grants.c; docs/directory.md, "Validation"):
 * each writes the canonical stored form into out (cap bytes) or answers DIR_INVALID with the
 * reason. */
#define DSQL_LIMIT_MAX 1000000
#define DSQL_PRINCIPAL_MAX 256
#define DSQL_HASH_HEX APP_PASSWORD_HASH_HEX
enum dir_status dsql_check_issuer(struct directory *d, const char *v, char *out, size_t cap);
enum dir_status dsql_check_jwks(struct directory *d, const char *v, char *out, size_t cap);
enum dir_status dsql_check_audience(struct directory *d, const char *v, char *out, size_t cap);
enum dir_status dsql_check_scope(struct directory *d, const char *v, char *out, size_t cap);
enum dir_status dsql_check_claim(struct directory *d, const char *v, char *out, size_t cap);
/* 1..DSQL_LIMIT_MAX, or (inherit_ok) "inherit" as 0. */
enum dir_status dsql_check_limit(struct directory *d, const char *v, bool inherit_ok,
                                 unsigned *out);
bool dsql_hash_hex_valid(const char *hex);

/* Loaders of one row by key (normalized): DIR_OK, DIR_NOTFOUND or DIR_TEMPFAIL. */
enum dir_status dsql_tenant_load(struct directory *d, const char *domain, struct dir_tenant *out);
enum dir_status dsql_mailbox_load(struct directory *d, const char *address,
                                  struct dir_mailbox *out);
enum dir_status dsql_policy_load(struct directory *d, const char *name, struct dir_policy *out);
enum dir_status dsql_alias_load(struct directory *d, const char *alias,
                                char owner[SMTP_PATH_MAX + 1]);
void dsql_tenant_row(sqlite3_stmt *s, struct dir_tenant *t);
void dsql_mailbox_row(sqlite3_stmt *s, struct dir_mailbox *m);
void dsql_rule_row(sqlite3_stmt *s, struct dir_rule *r);
enum dir_status dsql_rules_each(struct directory *d, int64_t tenant_id,
                                void (*cb)(const struct dir_rule *, void *), void *arg);
/* Calls cb with column 0 (text: a domain, an address or a principal) of each row of a list
 * statement whose ?1 is the owner's id (a tenant's or a mailbox's). */
enum dir_status dsql_list_text(struct directory *d, enum dir_stmt id, int64_t owner_id,
                               void (*cb)(const char *, void *), void *arg, const char *what);

#endif
