/* lockout.c: owns smart lockout (SPEC 3, issue 6 Hardening item 2) over the sign-in log in
 * DIR/log.db, on its own SQLite connection: counting credential failures per account and per
 * client address over a window, the familiar-address exception, the failure-reply delay, the
 * list of accounts at the threshold and the clear markers (table lockout_clears). The sign-in
 * log itself (table signins, schema in eventlog.c) is only read, never edited. No RFC.
 *
 * What counts as a failure: a signins row with success = 0 whose deciding gate is
 * "credentials" or "lockout" (an attempt answered while locked is still an attempt); a policy
 * denial (SMTP AUTH disabled, account disabled, ...) is not an attack and does not count. A
 * failure counts while it is inside the window and later than the newest clear marker of its
 * account or the newest global one (account '*'). A threshold of 0 turns its lock off.
 *
 * Indexes: this module adds three partial indexes to signins so that every question it asks is
 * one index range, however busy the log: failures by client address and by account
 * (success = 0: written only on failures), and successes by (account, address) for "familiar"
 * (one more index entry per successful sign-in). */
#include "lockout.h"

#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "eventlog.h"
#include "sqlite_util.h"

#define LO_BUSY_TIMEOUT_MS 5000
#define LO_DELAY_MAX_SHIFT 3 /* the delay doubles at most three times: 8x */
#define LO_MS_PER_DAY (86400LL * 1000)

static const char lo_schema[] =
    "CREATE TABLE IF NOT EXISTS lockout_clears (account TEXT NOT NULL, time_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS lockout_clears_account ON lockout_clears(account, time_ms);";

static const char lo_signin_indexes[] =
    "CREATE INDEX IF NOT EXISTS signins_failed_ip ON signins(client_ip, time_ms)"
    " WHERE success = 0;"
    "CREATE INDEX IF NOT EXISTS signins_failed_user ON signins(lower(user), time_ms)"
    " WHERE success = 0;"
    "CREATE INDEX IF NOT EXISTS signins_ok_user_ip ON signins(lower(user), client_ip, time_ms)"
    " WHERE success = 1;";

/* A counted failure (the partial indexes above serve `success = 0` written out literally). */
#define LO_COUNTED "success = 0 AND gate IN ('credentials', 'lockout')"
/* Later than the newest clear of the account `who` (an SQL expression) or of every account. */
#define LO_AFTER_CLEAR(who)                                                                        \
    "time_ms > (SELECT coalesce(max(c.time_ms), -9223372036854775807) FROM lockout_clears c"       \
    " WHERE c.account IN (lower(" who "), '*'))"

enum lo_stmt {
    LO_HAS_SIGNINS,
    LO_CLEAR,
    LO_BASE_COUNT, /* the statements below read signins: prepared once it exists */
    LO_ACCOUNT = LO_BASE_COUNT,
    LO_ADDRESS,
    LO_FAMILIAR,
    LO_LIST,
    LO_STMT_COUNT
};

static const char *const lo_sql[LO_STMT_COUNT] = {
    [LO_HAS_SIGNINS] = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                       " AND name = 'signins'",
    [LO_CLEAR] = "INSERT INTO lockout_clears (account, time_ms) VALUES (lower(?1), ?2)",
    /* ?1 account, ?2 client address, ?3 start of the window: count, oldest, from ?2 */
    [LO_ACCOUNT] = "SELECT count(*), min(time_ms), coalesce(sum(client_ip = ?2), 0) FROM signins"
                   " WHERE lower(user) = lower(?1) AND time_ms > ?3 AND " LO_COUNTED
                   " AND " LO_AFTER_CLEAR("?1"),
    /* ?1 client address, ?2 start of the window: count, oldest (each row after its own
     * account's clear) */
    [LO_ADDRESS] =
        "SELECT count(*), min(time_ms) FROM signins s"
        " WHERE client_ip = ?1 AND time_ms > ?2 AND " LO_COUNTED " AND " LO_AFTER_CLEAR("s.user"),
    /* ?1 account, ?2 client address, ?3 start of the familiar period */
    [LO_FAMILIAR] = "SELECT EXISTS (SELECT 1 FROM signins WHERE lower(user) = lower(?1)"
                    " AND client_ip = ?2 AND success = 1 AND time_ms > ?3)",
    /* ?1 start of the window, ?2 threshold: account, failures, last failure, its address */
    [LO_LIST] = "SELECT a.account, a.n, a.last,"
                " (SELECT client_ip FROM signins WHERE lower(user) = a.account"
                "  AND time_ms = a.last AND " LO_COUNTED " ORDER BY id DESC LIMIT 1)"
                " FROM (SELECT lower(user) AS account, count(*) AS n, max(time_ms) AS last"
                "  FROM signins s WHERE time_ms > ?1 AND " LO_COUNTED
                "  AND " LO_AFTER_CLEAR("s.user") " GROUP BY lower(user) HAVING count(*) >= ?2) a"
                                                  " ORDER BY a.last DESC, a.account",
};

struct lockout {
    sqlite3 *db;
    sqlite3_stmt *st[LO_STMT_COUNT];
    struct lockout_config c;
    bool ready; /* signins exists and its statements are prepared */
    char path[4096];
    char err[512]; /* the last failure, for lockout_errmsg */
};

void lockout_defaults(struct lockout_config *c)
{
    c->account_failures = 10;
    c->address_failures = 30;
    c->window_seconds = 900;
    c->familiar_days = 30;
    c->delay_ms = 500;
}

void lockout_config_from(struct lockout_config *c, const struct config *cfg)
{
    c->account_failures = cfg->lockout_account_failures;
    c->address_failures = cfg->lockout_address_failures;
    c->window_seconds = cfg->lockout_window;
    c->familiar_days = cfg->lockout_familiar_days;
    c->delay_ms = cfg->lockout_delay;
}

static int lo_fail(struct lockout *l, const char *what, int rc)
{
    snprintf(l->err, sizeof l->err, "%s in %s: %s", what, l->path, sqlu_errmsg(l->db, rc));
    return -1;
}

const char *lockout_errmsg(const struct lockout *l)
{
    return l->err;
}

/* Runs script in one write transaction. Returns an SQLite result code. */
static int lo_script_tx(sqlite3 *db, const char *script)
{
    int rc = sqlu_script(db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlu_script(db, script);
    if (rc != SQLITE_OK) {
        sqlu_script(db, "ROLLBACK");
        return rc;
    }
    return sqlu_script(db, "COMMIT");
}

/* 1 when the sign-in log exists (adding our indexes and preparing its statements the first
 * time), 0 when the event log has not created it yet (nothing to count), -1 on failure. */
static int lo_ready(struct lockout *l)
{
    if (l->ready)
        return 1;
    sqlite3_stmt *s = l->st[LO_HAS_SIGNINS];
    int rc = sqlite3_step(s);
    bool exists = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return lo_fail(l, "looking for the sign-in log", rc);
    if (!exists)
        return 0;
    rc = lo_script_tx(l->db, lo_signin_indexes);
    if (rc != SQLITE_OK)
        return lo_fail(l, "indexing the sign-in log", rc);
    int bad = 0;
    rc = sqlu_prepare_all(l->db, lo_sql + LO_BASE_COUNT, l->st + LO_BASE_COUNT,
                          LO_STMT_COUNT - LO_BASE_COUNT, &bad);
    if (rc != SQLITE_OK) {
        lo_fail(l, "preparing the lockout queries", rc);
        for (int i = LO_BASE_COUNT; i < LO_STMT_COUNT; i++) {
            sqlite3_finalize(l->st[i]);
            l->st[i] = NULL;
        }
        return -1;
    }
    l->ready = true;
    return 1;
}

struct lockout *lockout_open(const char *datadir, const struct lockout_config *c, char *err,
                             size_t errlen)
{
    struct lockout *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errlen, "opening the lockout store in %s: out of memory", datadir);
        return NULL;
    }
    int n = snprintf(l->path, sizeof l->path, "%s/%s", datadir, EVENTLOG_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof l->path) {
        snprintf(err, errlen, "lockout store path too long: %s/%s", datadir, EVENTLOG_FILE_NAME);
        free(l);
        return NULL;
    }
    if (c != NULL)
        l->c = *c;
    else
        lockout_defaults(&l->c);
    const char *step = "opening";
    int rc = sqlu_open_wal(l->path, LO_BUSY_TIMEOUT_MS, NULL, &l->db, &step);
    if (rc == SQLITE_OK) {
        step = "creating the lockout tables";
        rc = lo_script_tx(l->db, lo_schema);
    }
    if (rc == SQLITE_OK) {
        step = "preparing";
        int bad = 0;
        rc = sqlu_prepare_all(l->db, lo_sql, l->st, LO_BASE_COUNT, &bad);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "lockout store %s: %s: %s", l->path, step, sqlu_errmsg(l->db, rc));
        lockout_close(l);
        return NULL;
    }
    if (lo_ready(l) < 0) {
        snprintf(err, errlen, "%s", l->err);
        lockout_close(l);
        return NULL;
    }
    return l;
}

void lockout_close(struct lockout *l)
{
    if (l == NULL)
        return;
    sqlu_close(l->db, l->st, LO_STMT_COUNT);
    free(l);
}

/* Steps a one-row aggregate query. Returns SQLITE_ROW or the failing result code. */
static int lo_row(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    return rc == SQLITE_ROW ? rc : (rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
}

static unsigned lo_col_count(sqlite3_stmt *s, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(s, i);
    return v < 0 ? 0 : v > UINT_MAX ? UINT_MAX : (unsigned)v;
}

int lockout_check(struct lockout *l, const char *account, const char *client_ip, int64_t now_ms,
                  struct lockout_state *out)
{
    memset(out, 0, sizeof *out);
    out->verdict = LOCKOUT_OPEN;
    int ready = lo_ready(l);
    if (ready <= 0)
        return ready; /* no sign-in log yet: nothing counted */
    int64_t window_ms = (int64_t)l->c.window_seconds * 1000;
    int64_t since = now_ms - window_ms;
    int64_t oldest_account = 0, oldest_address = 0;

    sqlite3_stmt *s = l->st[LO_ACCOUNT];
    sqlite3_bind_text(s, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, client_ip, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, since);
    int rc = lo_row(s);
    if (rc == SQLITE_ROW) {
        out->account_failures = lo_col_count(s, 0);
        oldest_account = sqlite3_column_int64(s, 1);
        out->pair_failures = lo_col_count(s, 2);
    }
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return lo_fail(l, "counting the failures of an account", rc);

    s = l->st[LO_ADDRESS];
    sqlite3_bind_text(s, 1, client_ip, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since);
    rc = lo_row(s);
    if (rc == SQLITE_ROW) {
        out->address_failures = lo_col_count(s, 0);
        oldest_address = sqlite3_column_int64(s, 1);
    }
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return lo_fail(l, "counting the failures from an address", rc);

    s = l->st[LO_FAMILIAR];
    sqlite3_bind_text(s, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, client_ip, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now_ms - (int64_t)l->c.familiar_days * LO_MS_PER_DAY);
    rc = lo_row(s);
    if (rc == SQLITE_ROW)
        out->familiar = sqlite3_column_int(s, 0) != 0;
    sqlu_finish(s);
    if (rc != SQLITE_ROW)
        return lo_fail(l, "looking for earlier sign-ins from an address", rc);

    const struct lockout_config *c = &l->c;
    if (c->account_failures > 0 && out->account_failures >= c->account_failures && !out->familiar) {
        out->verdict = LOCKOUT_ACCOUNT;
        out->until_ms = oldest_account + window_ms;
    } else if (c->address_failures > 0 && out->address_failures >= c->address_failures) {
        out->verdict = LOCKOUT_ADDRESS;
        out->until_ms = oldest_address + window_ms;
    } else if (out->account_failures > 0) {
        out->until_ms = oldest_account + window_ms;
    }
    return 0;
}

unsigned lockout_delay_ms(const struct lockout *l, const struct lockout_state *st)
{
    unsigned shift =
        st->pair_failures < LO_DELAY_MAX_SHIFT ? st->pair_failures : LO_DELAY_MAX_SHIFT;
    unsigned long long d = (unsigned long long)l->c.delay_ms << shift;
    return d > UINT_MAX ? UINT_MAX : (unsigned)d;
}

int lockout_list(struct lockout *l, int64_t now_ms,
                 void (*cb)(const struct lockout_entry *, void *), void *arg)
{
    int ready = lo_ready(l);
    if (ready <= 0 || l->c.account_failures == 0)
        return ready < 0 ? -1 : 0;
    sqlite3_stmt *s = l->st[LO_LIST];
    sqlite3_bind_int64(s, 1, now_ms - (int64_t)l->c.window_seconds * 1000);
    sqlite3_bind_int64(s, 2, l->c.account_failures);
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct lockout_entry e;
        memset(&e, 0, sizeof e);
        COL_COPY(s, 0, e.account);
        e.failures = lo_col_count(s, 1);
        e.last_failure_ms = sqlite3_column_int64(s, 2);
        COL_COPY(s, 3, e.last_address);
        if (cb != NULL)
            cb(&e, arg);
        n++;
    }
    sqlu_finish(s);
    if (rc != SQLITE_DONE)
        return lo_fail(l, "listing locked accounts", rc);
    return n;
}

int lockout_clear(struct lockout *l, const char *account, int64_t now_ms)
{
    sqlite3_stmt *s = l->st[LO_CLEAR];
    sqlite3_bind_text(s, 1, account != NULL ? account : "*", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    int rc = sqlite3_step(s);
    sqlu_finish(s);
    if (rc != SQLITE_DONE)
        return lo_fail(l, "recording a lockout clear", rc);
    return 0;
}
