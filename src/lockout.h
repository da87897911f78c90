/* lockout.h: smart lockout (SPEC 3, issue 6), decided before the credentials are checked and
 * answered like a wrong password. The state is the sign-in log itself (DIR/log.db): failures per
 * account and per client address over a window, and the addresses where an account signed in
 * successfully before ("familiar"). So it survives restarts, is shared by every worker, and
 * `submitctl lockout list|clear` sees and changes what the server sees. Queries block: call from
 * workers. One struct lockout per thread (its own SQLite connection). */
#ifndef SUBMITD_LOCKOUT_H
#define SUBMITD_LOCKOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

struct lockout_config {
    unsigned account_failures;  /* failures of one account within window: locked (default 10) */
    unsigned address_failures;  /* failures from one address, any accounts (spraying; default 30) */
    unsigned window_seconds;    /* default 900 */
    unsigned familiar_days;     /* a successful sign-in from an address makes it familiar (30) */
    unsigned delay_ms;          /* added to every failure reply, doubling per recent failure of
                                 * the account from that address, at most 8x (default 500) */
};

enum lockout_verdict {
    LOCKOUT_OPEN = 0,
    LOCKOUT_ACCOUNT,  /* the account is under attack and this address is not familiar */
    LOCKOUT_ADDRESS   /* this address fails across many accounts (password spraying) */
};

struct lockout_state {
    enum lockout_verdict verdict;
    unsigned account_failures;  /* in the window, since the last clear */
    unsigned address_failures;
    bool familiar;
    int64_t until_ms;           /* when the oldest counted failure leaves the window */
    unsigned pair_failures;     /* of this account from this address (for the delay) */
};

struct lockout;

void lockout_defaults(struct lockout_config *c);
struct config;
/* The thresholds submitd.conf sets (lockout-* keys); server and submitctl both use this. */
void lockout_config_from(struct lockout_config *c, const struct config *cfg);
struct lockout *lockout_open(const char *datadir, const struct lockout_config *c, char *err,
                             size_t errlen);
void lockout_close(struct lockout *l);
/* What the last call that returned -1 failed at, on what and why (for the caller's log). */
const char *lockout_errmsg(const struct lockout *l);
/* Decides for an attempt on `account` (normalized address or the user as given) from
 * client_ip at now_ms. Returns 0, or -1 when the log cannot be read (the caller then lets the
 * attempt through to the other gates: a lockout store failure must not lock everyone out). */
int lockout_check(struct lockout *l, const char *account, const char *client_ip, int64_t now_ms,
                  struct lockout_state *out);
/* The delay before a failure reply, from the state lockout_check returned. */
unsigned lockout_delay_ms(const struct lockout *l, const struct lockout_state *st);

struct lockout_entry {
    char account[SMTP_PATH_MAX + 1];
    unsigned failures;
    int64_t last_failure_ms;
    char last_address[64];
};
/* Accounts at or over the threshold now (for `submitctl lockout list`). Returns count or -1. */
int lockout_list(struct lockout *l, int64_t now_ms,
                 void (*cb)(const struct lockout_entry *, void *), void *arg);
/* Forgets the failures counted so far for account (NULL: every account), by recording a clear
 * marker; the sign-in log itself is not edited. Returns 0 or -1. */
int lockout_clear(struct lockout *l, const char *account, int64_t now_ms);

#endif
