/* ctl.h: what submitctl's command files share: the command table row, the parsed command line,
 * exit codes, one-line errors, the data directory, JSON output, time formatting and reading a
 * new password. SPEC section 8 fixes the exit codes: 0 success, 1 when the thing asked about
 * says no (or an operation failed), 2 bad usage. */
#ifndef SUBMITD_CTL_H
#define SUBMITD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "directory.h"
#include "jwt.h"
#include "password.h"
#include "policy.h"

enum ctl_exit { CTL_EXIT_OK = 0, CTL_EXIT_NO = 1, CTL_EXIT_USAGE = 2 };

#define CTL_OPTS_MAX 16 /* `tenant route` has 12 */
#define CTL_POS_MAX 20 /* `tenant set DOMAIN KEY VALUE ...` takes up to 9 pairs */
#define CTL_DEFAULT_DATADIR "./var"

/* One --option of a command; its value lands in ctl.opt[index in the command's list]. */
struct ctl_opt {
    const char *name; /* "--mailbox" */
    bool has_value;   /* takes the next argument */
};

enum ctl_flags {
    CTL_WRITES = 1, /* changes the directory: creates the data directory (0700) if missing */
    CTL_JSON = 2    /* accepts --json */
};

struct ctl;
typedef int (*ctl_fn)(struct ctl *c, char **pos, int npos);

/* A row of the command table: `GROUP [NAME] ARGS`. */
struct ctl_command {
    const char *group; /* "tenant" */
    const char *name;  /* "add"; NULL for a one-word command such as "explain" */
    const char *args;  /* "DOMAIN" (for the usage line) */
    const char *help;  /* one line */
    int min_pos, max_pos;
    unsigned flags;
    const struct ctl_opt *opts; /* terminated by a row with name NULL; NULL when none */
    ctl_fn run;
};

struct ctl {
    const char *datadir;
    const struct ctl_command *cmd;
    bool json;
    const char *opt[CTL_OPTS_MAX]; /* NULL = not given; "" for a flag that was given */
    struct directory *dir;         /* opened by ctl_dir */
};

/* Command tables of each file, terminated by a row with group NULL. */
extern const struct ctl_command ctl_tenant_commands[];
extern const struct ctl_command ctl_mailbox_commands[];
extern const struct ctl_command ctl_alias_commands[];
extern const struct ctl_command ctl_policy_commands[];
extern const struct ctl_command ctl_rule_commands[];
extern const struct ctl_command ctl_explain_commands[];
extern const struct ctl_command ctl_log_commands[];
extern const struct ctl_command ctl_queue_commands[];
extern const struct ctl_command ctl_grant_commands[]; /* mailbox grant-... (ctl_grant.c) */
extern const struct ctl_command ctl_app_password_commands[];
extern const struct ctl_command ctl_token_commands[];

/* "submitctl: GROUP NAME: reason" on stderr; return CTL_EXIT_USAGE / CTL_EXIT_NO. */
int ctl_usage(const struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_fail(const struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks the data directory (a read command needs it to exist; a writing command creates it)
 * and opens the directory database into c->dir. Returns 0 or an exit code (message printed). */
int ctl_dir(struct ctl *c);
/* Checks that the data directory exists (for the log and the spool). Returns 0 or exit code. */
int ctl_datadir_exists(const struct ctl *c);
/* Maps a directory answer to an exit code, printing a reason for anything but DIR_OK.
 * `what` names the object for not-found / exists messages ("tenant example.com"). */
int ctl_dir_status(const struct ctl *c, enum dir_status st, const char *what);

/* Prints one JSON document on stdout and frees it. Returns CTL_EXIT_OK or CTL_EXIT_NO. */
int ctl_json_print(json_t *j);

/* Validation of arguments before they reach the directory (syntax only). */
bool ctl_valid_domain(const char *domain);
bool ctl_valid_address(const char *address);
bool ctl_valid_policy_name(const char *name);
/* Parses a decimal integer in [min, max]. */
bool ctl_parse_int(const char *s, long min, long max, long *out);

const char *ctl_onoff(bool v);
const char *ctl_yesno(bool v);
const char *ctl_switch_name(enum setting_switch s); /* "on", "off", "inherit" */
/* UTC ISO-8601: "2025-01-31T12:00:00.123Z" (ms) / "2025-01-31T12:00:00Z" (seconds). */
void ctl_time_ms(int64_t ms, char *buf, size_t cap);
void ctl_time_s(int64_t secs, char *buf, size_t cap);

/* Submission limits (SPEC 4) by setting name, shared by `tenant` and `mailbox` set and show. */
#define CTL_LIMITS 4
#define CTL_LIMIT_MAX 1000000
struct ctl_limit_key {
    const char *key;  /* "max-sessions" */
    const char *json; /* "max_sessions" */
};
extern const struct ctl_limit_key ctl_limit_keys[CTL_LIMITS];
/* The i-th limit of l (in the order of ctl_limit_keys). */
unsigned ctl_limit_get(const struct dir_limits *l, size_t i);
/* Index of a limit's setting name, or -1. */
int ctl_limit_index(const char *key);

/* Reads a new password: on a terminal, asks twice without echo; otherwise one line of standard
 * input with its line end removed. Refuses an empty password. Returns 0 (out holds len octets,
 * NUL-terminated; the caller wipes it) or an exit code (message printed). */
int ctl_read_password(const struct ctl *c, char out[PASSWORD_MAX + 1], size_t *len);
/* The same for any secret of up to cap - 1 octets ("the WHAT is longer than ..." messages; on a
 * terminal "New WHAT:" and "Repeat the WHAT:"). */
int ctl_read_secret(const struct ctl *c, const char *what, char *out, size_t cap, size_t *len);

/* --- token verification exactly as the server does it (ctl_token.c), for `explain` --- */
enum ctl_token_check {
    TOKEN_CHECK_FORMAT = 0, /* size and structure */
    TOKEN_CHECK_ALG,
    TOKEN_CHECK_KEY, /* a key with the token's kid in the tenant's key source */
    TOKEN_CHECK_SIGNATURE,
    TOKEN_CHECK_EXP,
    TOKEN_CHECK_NBF,
    TOKEN_CHECK_ISS,
    TOKEN_CHECK_AUD,
    TOKEN_CHECK_SCOPE, /* scope, or the app role */
    TOKEN_CHECK_IDENTITY,
    TOKEN_CHECK_ACT_AS, /* the identity is the mailbox or was granted access to it */
    TOKEN_CHECK_COUNT
};
enum ctl_check_outcome { CHECK_SKIPPED = 0, CHECK_PASS, CHECK_FAIL };

struct ctl_token_report {
    enum jwt_error error;  /* jwt_verify's answer (JWT_OK when the token itself is valid) */
    bool keys_unavailable; /* the key source failed: the server answers a temporary failure */
    bool valid;            /* token valid and its identity may act as the mailbox */
    bool delegated;        /* valid through an access grant */
    struct jwt_claims claims;
    char principal[SMTP_PATH_MAX + 1];
    enum ctl_check_outcome outcome[TOKEN_CHECK_COUNT];
    char detail[TOKEN_CHECK_COUNT][240];
};

/* "format", "alg", "key", "signature", "exp", "nbf", "iss", "aud", "scope", "identity",
 * "act-as". */
const char *ctl_token_check_name(enum ctl_token_check check);
/* Verifies token (len octets) for the view's mailbox as the server's AUTH would (SPEC 5): the
 * tenant's key source through a jwks_cache, its issuer, audience, scope and identity claim, now,
 * 60 s skew; then whether the identity may act as the mailbox. Fills out; never copies the
 * token. Returns 0, or -1 on a directory failure (message printed). */
int ctl_token_verify(struct ctl *c, const struct dir_auth_view *v, const char *token, size_t len,
                     struct ctl_token_report *out);

#endif
