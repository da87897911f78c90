/* ctl_lockout.c: `submitctl lockout list` and `submitctl lockout clear` (issue 6, smart
 * lockout; SPEC 3: lockout is decided before the credentials and answered like them). The state
 * is the server's own: the sign-in log in DIR/log.db read through lockout.c, so the list shows
 * what the server decides now, and a clear (a marker; the log is not edited) applies to the
 * server's next AUTH attempt. Thresholds are lockout.c's defaults. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ctl.h"
#include "lockout.h"

extern const struct ctl_command ctl_lockout_commands[];

enum { CLEAR_OPT_ALL };
static const struct ctl_opt clear_opts[] = {{"--all", false}, {NULL, false}};

static int now_ms(const struct ctl *c, int64_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return ctl_fail(c, "clock_gettime(CLOCK_REALTIME): %s", strerror(errno));
    *out = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return 0;
}

/* Opens the lockout store of the data directory (which must exist). */
static int open_store(const struct ctl *c, struct lockout_config *cfg, struct lockout **out)
{
    int rc = ctl_datadir_exists(c);
    if (rc != 0)
        return rc;
    char err[600] = "";
    struct config conf;
    if (config_load(c->datadir, &conf, err, sizeof err) != 0)
        return ctl_fail(c, "%s", err);
    lockout_config_from(cfg, &conf); /* the server's thresholds, so both see the same */
    *out = lockout_open(c->datadir, cfg, err, sizeof err);
    if (*out == NULL)
        return ctl_fail(c, "cannot open the sign-in log in %s: %s", c->datadir, err);
    return 0;
}

struct list_out {
    json_t *arr; /* --json */
};

static void on_entry(const struct lockout_entry *e, void *arg)
{
    struct list_out *o = arg;
    char t[40];
    ctl_time_ms(e->last_failure_ms, t, sizeof t);
    if (o->arr != NULL)
        json_array_append_new(o->arr, json_pack("{s:s, s:i, s:s, s:s}", "account", e->account,
                                                "failures", (int)e->failures, "last_failure", t,
                                                "last_address", e->last_address));
    else
        printf("%-40s %8u  %-24s %s\n", e->account, e->failures, t, e->last_address);
}

static int lockout_list_run(struct ctl *c, char **pos, int npos)
{
    (void)pos, (void)npos;
    struct lockout_config cfg;
    struct lockout *l;
    int64_t now;
    int rc = now_ms(c, &now);
    if (rc != 0 || (rc = open_store(c, &cfg, &l)) != 0)
        return rc;
    struct list_out o = {.arr = c->json ? json_array() : NULL};
    if (!c->json)
        printf("%-40s %8s  %-24s %s\n", "ACCOUNT", "FAILURES", "LAST FAILURE", "LAST ADDRESS");
    int n = lockout_list(l, now, on_entry, &o);
    if (n < 0) {
        json_decref(o.arr);
        rc = ctl_fail(c, "cannot read the sign-in log: %s", lockout_errmsg(l));
        lockout_close(l);
        return rc;
    }
    lockout_close(l);
    if (c->json)
        return ctl_json_print(o.arr);
    if (n == 0)
        printf("(no account is locked out: %u or more wrong passwords within %u minutes lock "
               "one)\n",
               cfg.account_failures, cfg.window_seconds / 60);
    return CTL_EXIT_OK;
}

/* An account as the sign-in log holds it: an address, or a user name a client gave (password
 * sprayers try "admin"), printable without spaces. "*" is the store's mark for every account. */
static bool valid_account(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > SMTP_PATH_MAX || strcmp(a, "*") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a[i] <= 0x20 || (unsigned char)a[i] >= 0x7f)
            return false;
    return strchr(a, '@') == NULL || ctl_valid_address(a);
}

static void count_entry(const struct lockout_entry *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
}

static int lockout_clear_run(struct ctl *c, char **pos, int npos)
{
    bool all = c->opt[CLEAR_OPT_ALL] != NULL;
    if (all == (npos == 1))
        return ctl_usage(c, "give either an ADDRESS or --all");
    if (!all && !valid_account(pos[0]))
        return ctl_usage(c, "not a valid address or user name: %s", pos[0]);
    struct lockout_config cfg;
    struct lockout *l;
    int64_t now;
    int rc = now_ms(c, &now);
    if (rc != 0 || (rc = open_store(c, &cfg, &l)) != 0)
        return rc;
    /* What the clear forgets, for the message. */
    struct lockout_state st;
    int locked = 0;
    int read =
        all ? lockout_list(l, now, count_entry, &locked) : lockout_check(l, pos[0], "", now, &st);
    if (read < 0 || lockout_clear(l, all ? NULL : pos[0], now) != 0) {
        rc = ctl_fail(c, "cannot clear the lockout in %s: %s", c->datadir, lockout_errmsg(l));
        lockout_close(l);
        return rc;
    }
    lockout_close(l);
    if (all)
        printf("lockout cleared for every account (%d were locked out)\n", locked);
    else
        printf("lockout cleared for %s (%u recent failures forgotten)\n", pos[0],
               st.account_failures);
    return CTL_EXIT_OK;
}

const struct ctl_command ctl_lockout_commands[] = {
    {"lockout", "list", "",
     "accounts locked out now (too many wrong passwords), with the last failure and its address", 0,
     0, CTL_JSON, NULL, lockout_list_run},
    {"lockout", "clear", "ADDRESS|--all",
     "forget the failures counted against ADDRESS (or every account and address) so far", 0, 1, 0,
     clear_opts, lockout_clear_run},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
