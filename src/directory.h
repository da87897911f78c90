/* directory.h: the one narrow interface to the directory (tenants, domains, mailboxes, aliases,
 * authentication policies, access rules). The SQLite backend (directory_sqlite.c) is the only
 * one today; a PostgreSQL backend can implement the same functions. A `struct directory` is one
 * connection: use it from one thread at a time (each worker thread opens its own).
 * Every lookup answers found / not found / temporary failure; the server turns a temporary
 * failure into a 4xx, never a 5xx and never an acceptance. */
#ifndef SUBMITD_DIRECTORY_H
#define SUBMITD_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"
#include "policy.h"

#define DIR_FILE_NAME "directory.db"
#define DIR_RULES_MAX 32
#define DIR_RULE_NETS_MAX 32
#define DIR_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define DIR_TEXT_MAX 1024

enum dir_status {
    DIR_OK = 0,
    DIR_NOTFOUND,
    DIR_EXISTS,   /* add of something that exists */
    DIR_INVALID,  /* bad key or value; a reason is in dir_error() */
    DIR_TEMPFAIL  /* database busy, I/O error: try again */
};

enum reply_detail { REPLY_DETAIL_FULL = 0, REPLY_DETAIL_GENERIC };

/* Submission limits (SPEC 4). In a tenant every field is set (defaults 3, 30, 10000, 500); in a
 * mailbox 0 means "inherit the tenant's". */
struct dir_limits {
    unsigned sessions;               /* concurrent sessions submitting for one mailbox */
    unsigned messages_per_minute;
    unsigned recipients_per_day;     /* over any 24 hours */
    unsigned recipients_per_message;
};

struct dir_tenant {
    int64_t id;
    char domain[SMTP_DOMAIN_MAX + 1]; /* the tenant's primary domain (its name) */
    bool smtp_auth;                   /* default off */
    bool security_defaults;           /* default on */
    bool app_passwords;               /* default off */
    char default_policy[POLICY_NAME_MAX + 1]; /* default "block-basic" */
    enum reply_detail reply_detail;   /* default full */
    int64_t created;                  /* unix seconds */
    /* OAuth (SPEC 5) */
    char oauth_issuer[256];           /* "" = the built-in issuer, "submitd:DOMAIN" */
    char oauth_jwks[1024];            /* "" = the built-in key; an absolute file path or URL */
    char oauth_audience[256];         /* default "submitd" */
    char oauth_scope[64];             /* default "SMTP.Send" */
    char oauth_identity_claim[32];    /* "" = email, then upn, then preferred_username */
    struct dir_limits limits;
};

struct dir_mailbox {
    int64_t id;
    int64_t tenant_id;
    char address[SMTP_PATH_MAX + 1];  /* normalized (lower case) */
    bool enabled;                     /* default yes */
    enum setting_switch smtp_auth;    /* default inherit */
    char policy[POLICY_NAME_MAX + 1]; /* "" = inherit */
    char password_hash[DIR_HASH_MAX + 1]; /* argon2id string; "" = no password set */
    int64_t created;
    int64_t password_changed;         /* unix seconds */
    struct dir_limits limits;         /* 0 fields inherit the tenant's */
};

struct dir_app_password {
    int64_t id;
    int64_t mailbox_id;
    char label[64];
    int64_t created;
    int64_t last_used;                /* 0 = never */
};

struct dir_policy {
    char name[POLICY_NAME_MAX + 1];
    bool allow_basic_smtp;
    bool builtin; /* "block-basic" and "allow-basic" exist from the start and cannot be removed */
};

struct dir_rule {
    int64_t id;
    int64_t tenant_id;
    int position;     /* evaluation order within the tenant, 1 = first */
    bool allow;       /* action allow-basic / block-basic */
    bool outside;     /* matches clients not in networks */
    char networks[DIR_TEXT_MAX]; /* "192.0.2.0/24,2001:db8::/32" as validated */
    char mailboxes[DIR_TEXT_MAX]; /* comma-separated addresses; "" = all mailboxes */
    char comment[256];
};

/* Everything one AUTH attempt needs, read in one consistent snapshot. */
struct dir_auth_view {
    bool tenant_found;  /* the address's domain belongs to a tenant */
    bool mailbox_found;
    struct dir_tenant tenant;
    struct dir_mailbox mailbox;
    struct dir_policy tenant_policy;  /* the tenant's default policy */
    bool mailbox_policy_inherit;
    struct dir_policy mailbox_policy; /* when !mailbox_policy_inherit */
    struct dir_rule rules[DIR_RULES_MAX];
    size_t n_rules;
};

struct directory;

/* Opens (creating and migrating the schema as needed) DIR/directory.db in WAL mode. Returns NULL
 * with a reason in err. */
struct directory *directory_open(const char *datadir, char *err, size_t errlen);
void directory_close(struct directory *d);
/* The reason for the last DIR_INVALID or DIR_TEMPFAIL on this connection. */
const char *dir_error(struct directory *d);
/* Schema version after migrations. */
int dir_schema_version(struct directory *d);

/* --- what the server asks --- */
/* address is as the client gave it; it is normalized here. DIR_OK even when the tenant or
 * mailbox is not found (see the flags); DIR_TEMPFAIL on a database error. */
enum dir_status dir_auth_view(struct directory *d, const char *address, struct dir_auth_view *out);
/* DIR_OK when the mailbox may use `address` as a sender (itself or one of its aliases),
 * DIR_NOTFOUND when not. */
enum dir_status dir_may_send_as(struct directory *d, int64_t mailbox_id, const char *address);
/* The effective limits of a view's mailbox: its own where set, else its tenant's. */
void dir_effective_limits(const struct dir_auth_view *v, struct dir_limits *out);
/* DIR_OK when `principal` (an OAuth token's identity) may act as the mailbox: it is the mailbox
 * itself, or was granted access (dir_access_grant). Compared case-insensitively. */
enum dir_status dir_may_act_as(struct directory *d, int64_t mailbox_id, const char *principal);
/* DIR_OK with *id when hash_hex (app_password_hash of the secret) is one of the mailbox's app
 * passwords, DIR_NOTFOUND otherwise. */
enum dir_status dir_app_password_match(struct directory *d, int64_t mailbox_id,
                                       const char *hash_hex, int64_t *id);
/* Records the time an app password was last used. */
enum dir_status dir_app_password_touch(struct directory *d, int64_t id, int64_t when);
/* Increments on every change that may alter an authentication decision (for caches). */
enum dir_status dir_generation(struct directory *d, int64_t *out);

/* --- tenants and their domains --- */
enum dir_status dir_tenant_add(struct directory *d, const char *domain);
enum dir_status dir_tenant_get(struct directory *d, const char *domain, struct dir_tenant *out);
/* key: smtp-auth on|off, security-defaults on|off, app-passwords on|off,
 * default-policy NAME (must exist), reply-detail full|generic. */
enum dir_status dir_tenant_set(struct directory *d, const char *domain, const char *key,
                               const char *value);
enum dir_status dir_tenant_list(struct directory *d,
                                void (*cb)(const struct dir_tenant *, void *), void *arg);
/* Extra accepted domains of a tenant (the primary one is added by dir_tenant_add). A domain
 * belongs to at most one tenant. */
enum dir_status dir_domain_add(struct directory *d, const char *tenant_domain, const char *domain);
enum dir_status dir_domain_remove(struct directory *d, const char *domain);
enum dir_status dir_domain_list(struct directory *d, const char *tenant_domain,
                                void (*cb)(const char *domain, void *), void *arg);

/* Tenant keys added by the OAuth issue: issuer URL|builtin, jwks FILE|URL|builtin, audience TEXT,
 * scope TEXT, identity-claim email|upn|preferred_username|any, max-sessions N,
 * messages-per-minute N, recipients-per-day N, recipients-per-message N (all 1..1000000). */

/* --- delivery routes (one per tenant; docs/delivery.md) --- */
enum dir_route_kind { ROUTE_NONE = 0, ROUTE_RELAY, ROUTE_LMTP, ROUTE_MAILDIR };

struct dir_route {
    enum dir_route_kind kind;
    char host[256];           /* relay, lmtp: name or address */
    int port;                 /* default 587 (relay) or 24 (lmtp) */
    char tls[16];             /* "required" (default for relay), "opportunistic", "none"
                               * (default for lmtp), "implicit" */
    bool verify;              /* certificate verification; default on */
    char cafile[1024];        /* "" = the system store */
    char auth[16];            /* "none" (default), "plain", "login", "xoauth2" */
    char user[SMTP_PATH_MAX + 1];
    char secret[1024];        /* plain/login: the password; xoauth2: the client secret. Stored
                               * as given (it must be presented upstream); never printed */
    char token_url[1024];     /* xoauth2 */
    char client_id[256];
    char scope[512];
    char grant[24];           /* "client_credentials" (default) or "refresh_token" */
    char refresh_token[4096]; /* refresh_token grant; replaced when the endpoint rotates it */
    bool secret_in_body;      /* client_secret_post */
    char maildir[1024];       /* maildir: the path template (%d, %u, %a) */
    unsigned max_connections; /* to this route at once; default 10 */
};

/* DIR_NOTFOUND for an unknown tenant; kind ROUTE_NONE when the tenant has no route. */
enum dir_status dir_route_get(struct directory *d, const char *tenant_domain,
                              struct dir_route *out);
/* Replaces the tenant's route (validated: host/port for relay and lmtp, an absolute template
 * with at least one of %u/%a for maildir, token_url https (or http on loopback) and client_id
 * for xoauth2, ...; DIR_INVALID with dir_error() otherwise). kind ROUTE_NONE removes it. */
enum dir_status dir_route_set(struct directory *d, const char *tenant_domain,
                              const struct dir_route *r);
/* Stores a rotated refresh token. */
enum dir_status dir_route_set_refresh_token(struct directory *d, const char *tenant_domain,
                                            const char *token);

/* --- mailboxes --- */
/* The address's domain must be an accepted domain of a tenant (else DIR_INVALID). */
enum dir_status dir_mailbox_add(struct directory *d, const char *address, const char *hash);
enum dir_status dir_mailbox_get(struct directory *d, const char *address, struct dir_mailbox *out);
/* key: smtp-auth on|off|inherit, policy NAME|inherit, enabled yes|no, max-sessions,
 * messages-per-minute, recipients-per-day, recipients-per-message N|inherit. */
enum dir_status dir_mailbox_set(struct directory *d, const char *address, const char *key,
                                const char *value);
enum dir_status dir_mailbox_set_password(struct directory *d, const char *address,
                                         const char *hash);
enum dir_status dir_mailbox_remove(struct directory *d, const char *address);
/* tenant_domain NULL = all tenants. */
enum dir_status dir_mailbox_list(struct directory *d, const char *tenant_domain,
                                 void (*cb)(const struct dir_mailbox *, void *), void *arg);

/* --- aliases (addresses a mailbox may send as, in an accepted domain of its tenant) --- */
enum dir_status dir_alias_add(struct directory *d, const char *address, const char *alias);
enum dir_status dir_alias_remove(struct directory *d, const char *alias);
enum dir_status dir_alias_list(struct directory *d, const char *address,
                               void (*cb)(const char *alias, void *), void *arg);

/* --- send-as grants: a mailbox may send as another mailbox (or alias) of its tenant --- */
enum dir_status dir_send_as_grant(struct directory *d, const char *address, const char *other);
enum dir_status dir_send_as_revoke(struct directory *d, const char *address, const char *other);
enum dir_status dir_send_as_list(struct directory *d, const char *address,
                                 void (*cb)(const char *other, void *), void *arg);

/* --- access grants: an OAuth principal (e.g. a delegate's address, or an application's subject)
 * may authenticate as the mailbox (XOAUTH2 user= / OAUTHBEARER a=) --- */
enum dir_status dir_access_grant(struct directory *d, const char *address, const char *principal);
enum dir_status dir_access_revoke(struct directory *d, const char *address,
                                  const char *principal);
enum dir_status dir_access_list(struct directory *d, const char *address,
                                void (*cb)(const char *principal, void *), void *arg);

/* --- app passwords (SPEC 2): per-device secrets; only their hash is stored --- */
/* DIR_EXISTS when the mailbox has an app password with that label. */
enum dir_status dir_app_password_add(struct directory *d, const char *address, const char *label,
                                     const char *hash_hex);
enum dir_status dir_app_password_revoke(struct directory *d, const char *address,
                                        const char *label);
enum dir_status dir_app_password_list(struct directory *d, const char *address,
                                      void (*cb)(const struct dir_app_password *, void *),
                                      void *arg);

/* --- authentication policies (global, like Exchange Online's per-organization list) --- */
enum dir_status dir_policy_add(struct directory *d, const char *name, bool allow_basic_smtp);
enum dir_status dir_policy_get(struct directory *d, const char *name, struct dir_policy *out);
/* key: allow-basic-smtp yes|no */
enum dir_status dir_policy_set(struct directory *d, const char *name, const char *key,
                               const char *value);
/* DIR_INVALID when built in or still assigned to a tenant or mailbox. */
enum dir_status dir_policy_remove(struct directory *d, const char *name);
enum dir_status dir_policy_list(struct directory *d,
                                void (*cb)(const struct dir_policy *, void *), void *arg);

/* --- access rules (per tenant, ordered) --- */
/* rule->networks and rule->mailboxes are validated; position 0 = append at the end, else
 * insert at that position. The new id is stored in rule->id. */
enum dir_status dir_rule_add(struct directory *d, const char *tenant_domain, struct dir_rule *rule);
enum dir_status dir_rule_remove(struct directory *d, const char *tenant_domain, int64_t id);
enum dir_status dir_rule_list(struct directory *d, const char *tenant_domain,
                              void (*cb)(const struct dir_rule *, void *), void *arg);

/* Turns the rules of a view into policy_rule entries for `address` (nets parsed into the
 * caller's storage nets[DIR_RULES_MAX][DIR_RULE_NETS_MAX]). Returns the number of rules. */
size_t dir_rules_for_policy(const struct dir_auth_view *v, const char *address,
                            struct policy_rule *out,
                            struct netmask nets[][DIR_RULE_NETS_MAX]);

#endif
