/* eventlog.c: owns the sign-in log, the submission log and the delivery log in DIR/log.db
 * (SQLite, WAL): the schema, writing events (one at a time or batched in one transaction) and
 * querying them: sign-ins and submissions newest first by mailbox, reference id (the id printed
 * in SPEC section 4 replies) and time; deliveries oldest first by queue id or by the reference of
 * the submission that queued the message. No secret is a
 * field of any event. Every string field is bound with its length bounded by its array, so a
 * field the caller forgot to terminate cannot overrun. */
#include "eventlog.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sqlite_util.h"

#define EL_BUSY_TIMEOUT_MS 5000
#define EL_DEFAULT_LIMIT 100

static const char el_schema[] =
    "CREATE TABLE IF NOT EXISTS signins ("
    " id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, ref TEXT NOT NULL,"
    " session TEXT NOT NULL, client_ip TEXT NOT NULL, client_port INTEGER NOT NULL,"
    " listener TEXT NOT NULL, tls TEXT NOT NULL, mech TEXT NOT NULL, user TEXT NOT NULL,"
    " tenant TEXT NOT NULL, success INTEGER NOT NULL, gate TEXT NOT NULL, level TEXT NOT NULL,"
    " reply_code INTEGER NOT NULL, reply_enhanced TEXT NOT NULL, reply_text TEXT NOT NULL,"
    " reason TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS signins_ref ON signins(ref);"
    "CREATE INDEX IF NOT EXISTS signins_user_time ON signins(lower(user), time_ms);"
    "CREATE INDEX IF NOT EXISTS signins_time ON signins(time_ms);"
    "CREATE TABLE IF NOT EXISTS submissions ("
    " id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, ref TEXT NOT NULL,"
    " session TEXT NOT NULL, client_ip TEXT NOT NULL, client_port INTEGER NOT NULL,"
    " user TEXT NOT NULL, stage TEXT NOT NULL, accepted INTEGER NOT NULL,"
    " reply_code INTEGER NOT NULL, reply_enhanced TEXT NOT NULL, reply_text TEXT NOT NULL,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, recipients INTEGER NOT NULL,"
    " size INTEGER NOT NULL, queue_id TEXT NOT NULL, last_auth_ref TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS submissions_ref ON submissions(ref);"
    "CREATE INDEX IF NOT EXISTS submissions_user_time ON submissions(lower(user), time_ms);"
    "CREATE INDEX IF NOT EXISTS submissions_sender_time ON submissions(lower(sender), time_ms);"
    "CREATE INDEX IF NOT EXISTS submissions_time ON submissions(time_ms);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    " id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, queue_id TEXT NOT NULL,"
    " ref TEXT NOT NULL, rcpt TEXT NOT NULL, route TEXT NOT NULL, action TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, reply_code INTEGER NOT NULL, reply_enhanced TEXT NOT NULL,"
    " reply_text TEXT NOT NULL, remote TEXT NOT NULL, dsn_queue_id TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS deliveries_queue_id ON deliveries(queue_id);"
    "CREATE INDEX IF NOT EXISTS deliveries_ref ON deliveries(ref);";

#define SIGNIN_COLS                                                                                \
    "time_ms, ref, session, client_ip, client_port, listener, tls, mech, user, tenant, success, "  \
    "gate, level, reply_code, reply_enhanced, reply_text, reason, detail"
#define SUBMISSION_COLS                                                                            \
    "time_ms, ref, session, client_ip, client_port, user, stage, accepted, reply_code, "           \
    "reply_enhanced, reply_text, sender, recipient, recipients, size, queue_id, last_auth_ref"
#define DELIVERY_COLS                                                                              \
    "time_ms, queue_id, ref, rcpt, route, action, attempt, reply_code, reply_enhanced, "           \
    "reply_text, remote, dsn_queue_id"

/* Query parameters, the same in every variant: ?1 mailbox (lower case) or NULL, ?2 ref or NULL,
 * ?3 since_ms, ?4 limit. Each variant leads with the condition its index serves. */
enum el_stmt {
    EL_BEGIN,
    EL_COMMIT,
    EL_ROLLBACK,
    EL_INSERT_SIGNIN,
    EL_INSERT_SUBMISSION,
    EL_SIGNINS_BY_REF,
    EL_SIGNINS_BY_USER,
    EL_SIGNINS_ALL,
    EL_SUBMISSIONS_BY_REF,
    EL_SUBMISSIONS_BY_USER,
    EL_SUBMISSIONS_ALL,
    EL_INSERT_DELIVERY,
    EL_DELIVERIES_BY_KEY,
    EL_STMT_COUNT
};

static const char *const el_sql[EL_STMT_COUNT] = {
    [EL_BEGIN] = "BEGIN IMMEDIATE",
    [EL_COMMIT] = "COMMIT",
    [EL_ROLLBACK] = "ROLLBACK",
    [EL_INSERT_SIGNIN] = "INSERT INTO signins (" SIGNIN_COLS ") VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [EL_INSERT_SUBMISSION] = "INSERT INTO submissions (" SUBMISSION_COLS ") VALUES "
                             "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [EL_SIGNINS_BY_REF] = "SELECT " SIGNIN_COLS " FROM signins WHERE ref = ?2"
                          " AND (?1 IS NULL OR lower(user) = ?1) AND time_ms >= ?3"
                          " ORDER BY time_ms DESC, id DESC LIMIT ?4",
    [EL_SIGNINS_BY_USER] = "SELECT " SIGNIN_COLS " FROM signins WHERE lower(user) = ?1"
                           " AND time_ms >= ?3 AND ?2 IS NULL"
                           " ORDER BY time_ms DESC, id DESC LIMIT ?4",
    [EL_SIGNINS_ALL] = "SELECT " SIGNIN_COLS " FROM signins WHERE time_ms >= ?3"
                       " AND ?1 IS NULL AND ?2 IS NULL ORDER BY time_ms DESC, id DESC LIMIT ?4",
    [EL_SUBMISSIONS_BY_REF] = "SELECT " SUBMISSION_COLS " FROM submissions WHERE ref = ?2"
                              " AND (?1 IS NULL OR lower(user) = ?1 OR lower(sender) = ?1)"
                              " AND time_ms >= ?3 ORDER BY time_ms DESC, id DESC LIMIT ?4",
    [EL_SUBMISSIONS_BY_USER] = "SELECT " SUBMISSION_COLS " FROM submissions"
                               " WHERE (lower(user) = ?1 OR lower(sender) = ?1)"
                               " AND time_ms >= ?3 AND ?2 IS NULL"
                               " ORDER BY time_ms DESC, id DESC LIMIT ?4",
    [EL_SUBMISSIONS_ALL] = "SELECT " SUBMISSION_COLS " FROM submissions WHERE time_ms >= ?3"
                           " AND ?1 IS NULL AND ?2 IS NULL"
                           " ORDER BY time_ms DESC, id DESC LIMIT ?4",
    [EL_INSERT_DELIVERY] = "INSERT INTO deliveries (" DELIVERY_COLS ") VALUES "
                           "(?,?,?,?,?,?,?,?,?,?,?,?)",
    /* ?1 a queue id or a reference: the message's own events (by queue id, or by the ref they
     * carry) and those of the message an accepted submission with that ref queued */
    [EL_DELIVERIES_BY_KEY] = "SELECT " DELIVERY_COLS " FROM deliveries WHERE queue_id = ?1"
                             " OR ref = ?1 OR queue_id IN (SELECT queue_id FROM submissions"
                             " WHERE ref = ?1 AND stage = 'data' AND accepted = 1"
                             " AND queue_id != '') ORDER BY time_ms, id",
};

/* The columns of each table, in the order of SIGNIN_COLS and SUBMISSION_COLS, with the event
 * field each one holds: the INSERT binds them and the queries read them back by this one list.
 * The kind of each column follows from its field's type; a text field is bound with its length
 * bounded by its array. */
enum el_type { EL_INT, EL_INT64, EL_BOOL, EL_TEXT };

struct el_col {
    enum el_type type;
    size_t off;
    size_t cap; /* the field's size */
};

#define EL_TYPE(x) _Generic((x), int : EL_INT, int64_t : EL_INT64, bool : EL_BOOL, char * : EL_TEXT)
#define EL_COL(event, field)                                                                       \
    {                                                                                              \
        EL_TYPE(((struct event *)0)->field), offsetof(struct event, field),                        \
            sizeof(((struct event *)0)->field)                                                     \
    }
#define SIGNIN(field) EL_COL(signin_event, field)
#define SUBMISSION(field) EL_COL(submission_event, field)
#define DELIVERY(field) EL_COL(delivery_event, field)

static const struct el_col signin_cols[] = {
    SIGNIN(time_ms),    SIGNIN(ref),    SIGNIN(session), SIGNIN(client_ip),  SIGNIN(client_port),
    SIGNIN(listener),   SIGNIN(tls),    SIGNIN(mech),    SIGNIN(user),       SIGNIN(tenant),
    SIGNIN(success),    SIGNIN(gate),   SIGNIN(level),   SIGNIN(reply_code), SIGNIN(reply_enhanced),
    SIGNIN(reply_text), SIGNIN(reason), SIGNIN(detail),
};

static const struct el_col submission_cols[] = {
    SUBMISSION(time_ms),        SUBMISSION(ref),           SUBMISSION(session),
    SUBMISSION(client_ip),      SUBMISSION(client_port),   SUBMISSION(user),
    SUBMISSION(stage),          SUBMISSION(accepted),      SUBMISSION(reply_code),
    SUBMISSION(reply_enhanced), SUBMISSION(reply_text),    SUBMISSION(sender),
    SUBMISSION(recipient),      SUBMISSION(recipients),    SUBMISSION(size),
    SUBMISSION(queue_id),       SUBMISSION(last_auth_ref),
};

static const struct el_col delivery_cols[] = {
    DELIVERY(time_ms),        DELIVERY(queue_id),   DELIVERY(ref),     DELIVERY(rcpt),
    DELIVERY(route),          DELIVERY(action),     DELIVERY(attempt), DELIVERY(reply_code),
    DELIVERY(reply_enhanced), DELIVERY(reply_text), DELIVERY(remote),  DELIVERY(dsn_queue_id),
};

#define N_COLS(cols) (sizeof(cols) / sizeof((cols)[0]))

struct eventlog {
    sqlite3 *db;
    sqlite3_stmt *st[EL_STMT_COUNT];
};

struct eventlog *eventlog_open(const char *datadir, char *err, size_t errlen)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", datadir, EVENTLOG_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, errlen, "event log path too long: %s/%s", datadir, EVENTLOG_FILE_NAME);
        return NULL;
    }
    struct eventlog *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errlen, "opening %s: out of memory", path);
        return NULL;
    }
    int rc = sqlu_open_wal(path, EL_BUSY_TIMEOUT_MS, NULL, &l->db, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlu_script(l->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlu_script(l->db, el_schema);
    if (rc != SQLITE_OK) {
        sqlu_script(l->db, "ROLLBACK");
        goto fail;
    }
    rc = sqlu_script(l->db, "COMMIT");
    if (rc != SQLITE_OK)
        goto fail;
    int bad = 0;
    rc = sqlu_prepare_all(l->db, el_sql, l->st, EL_STMT_COUNT, &bad);
    if (rc != SQLITE_OK)
        goto fail;
    return l;
fail:
    snprintf(err, errlen, "opening event log %s: %s", path, sqlu_errmsg(l->db, rc));
    eventlog_close(l);
    return NULL;
}

void eventlog_close(struct eventlog *l)
{
    if (l == NULL)
        return;
    sqlu_close(l->db, l->st, EL_STMT_COUNT);
    free(l);
}

/* Binds the columns' fields of event to s's parameters 1..n. */
static void el_bind_row(sqlite3_stmt *s, const struct el_col *cols, size_t n, const void *event)
{
    for (size_t i = 0; i < n; i++) {
        const void *field = (const char *)event + cols[i].off;
        int param = (int)i + 1;
        switch (cols[i].type) {
        case EL_INT:
            sqlite3_bind_int(s, param, *(const int *)field);
            break;
        case EL_INT64:
            sqlite3_bind_int64(s, param, *(const int64_t *)field);
            break;
        case EL_BOOL:
            sqlite3_bind_int(s, param, *(const bool *)field ? 1 : 0);
            break;
        case EL_TEXT:
            sqlite3_bind_text(s, param, field, (int)strnlen(field, cols[i].cap), SQLITE_STATIC);
            break;
        }
    }
}

/* Reads s's result columns 0..n-1 into the columns' fields of event. */
static void el_read_row(sqlite3_stmt *s, const struct el_col *cols, size_t n, void *event)
{
    for (size_t i = 0; i < n; i++) {
        void *field = (char *)event + cols[i].off;
        int col = (int)i;
        switch (cols[i].type) {
        case EL_INT:
            *(int *)field = sqlite3_column_int(s, col);
            break;
        case EL_INT64:
            *(int64_t *)field = sqlite3_column_int64(s, col);
            break;
        case EL_BOOL:
            *(bool *)field = sqlite3_column_int(s, col) != 0;
            break;
        case EL_TEXT:
            sqlu_col_copy(s, col, field, cols[i].cap);
            break;
        }
    }
}

static int el_run(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlu_finish(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int insert_signin(struct eventlog *l, const struct signin_event *e)
{
    sqlite3_stmt *s = l->st[EL_INSERT_SIGNIN];
    el_bind_row(s, signin_cols, N_COLS(signin_cols), e);
    return el_run(s);
}

static int insert_submission(struct eventlog *l, const struct submission_event *e)
{
    sqlite3_stmt *s = l->st[EL_INSERT_SUBMISSION];
    el_bind_row(s, submission_cols, N_COLS(submission_cols), e);
    return el_run(s);
}

int eventlog_write_batch(struct eventlog *l, const struct signin_event *const *s, size_t ns,
                         const struct submission_event *const *m, size_t nm)
{
    if (el_run(l->st[EL_BEGIN]) != 0)
        return -1;
    for (size_t i = 0; i < ns; i++)
        if (insert_signin(l, s[i]) != 0)
            goto fail;
    for (size_t i = 0; i < nm; i++)
        if (insert_submission(l, m[i]) != 0)
            goto fail;
    if (el_run(l->st[EL_COMMIT]) != 0)
        goto fail;
    return 0;
fail:
    el_run(l->st[EL_ROLLBACK]);
    return -1;
}

int eventlog_write_deliveries(struct eventlog *l, const struct delivery_event *const *d, size_t n)
{
    if (el_run(l->st[EL_BEGIN]) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *s = l->st[EL_INSERT_DELIVERY];
        el_bind_row(s, delivery_cols, N_COLS(delivery_cols), d[i]);
        if (el_run(s) != 0)
            goto fail;
    }
    if (el_run(l->st[EL_COMMIT]) != 0)
        goto fail;
    return 0;
fail:
    el_run(l->st[EL_ROLLBACK]);
    return -1;
}

int eventlog_delivery(struct eventlog *l, const struct delivery_event *e)
{
    return eventlog_write_deliveries(l, &e, 1);
}

int eventlog_signin(struct eventlog *l, const struct signin_event *e)
{
    return eventlog_write_batch(l, &e, 1, NULL, 0);
}

int eventlog_submission(struct eventlog *l, const struct submission_event *e)
{
    return eventlog_write_batch(l, NULL, 0, &e, 1);
}

/* Picks the query variant for a filter and binds it; the mailbox is lower-cased into lower.
 * NULL when the filter cannot match anything (a mailbox longer than any stored one). */
static sqlite3_stmt *el_query(struct eventlog *l, const struct signin_filter *f,
                              enum el_stmt by_ref, enum el_stmt by_user, enum el_stmt all,
                              char *lower, size_t cap)
{
    const char *mailbox = f != NULL ? f->mailbox : NULL;
    const char *ref = f != NULL ? f->ref : NULL;
    if (mailbox != NULL) {
        size_t n = strnlen(mailbox, cap);
        if (n >= cap)
            return NULL;
        for (size_t i = 0; i < n; i++)
            lower[i] = (char)tolower((unsigned char)mailbox[i]);
        lower[n] = '\0';
    }
    sqlite3_stmt *s = l->st[ref != NULL ? by_ref : mailbox != NULL ? by_user : all];
    if (mailbox != NULL)
        sqlite3_bind_text(s, 1, lower, -1, SQLITE_STATIC);
    if (ref != NULL)
        sqlite3_bind_text(s, 2, ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, f != NULL ? f->since_ms : 0);
    sqlite3_bind_int(s, 4, f != NULL && f->limit > 0 ? f->limit : EL_DEFAULT_LIMIT);
    return s;
}

static int el_finish(sqlite3_stmt *s, int rc, int rows)
{
    sqlu_finish(s);
    return rc == SQLITE_DONE ? rows : -1;
}

int eventlog_query_signins(struct eventlog *l, const struct signin_filter *f,
                           void (*cb)(const struct signin_event *, void *), void *arg)
{
    char lower[SMTP_PATH_MAX + 1];
    sqlite3_stmt *s =
        el_query(l, f, EL_SIGNINS_BY_REF, EL_SIGNINS_BY_USER, EL_SIGNINS_ALL, lower, sizeof lower);
    if (s == NULL)
        return 0;
    int rows = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct signin_event e = {0};
        el_read_row(s, signin_cols, N_COLS(signin_cols), &e);
        rows++;
        cb(&e, arg);
    }
    return el_finish(s, rc, rows);
}

int eventlog_query_submissions(struct eventlog *l, const struct signin_filter *f,
                               void (*cb)(const struct submission_event *, void *), void *arg)
{
    char lower[SMTP_PATH_MAX + 1];
    sqlite3_stmt *s = el_query(l, f, EL_SUBMISSIONS_BY_REF, EL_SUBMISSIONS_BY_USER,
                               EL_SUBMISSIONS_ALL, lower, sizeof lower);
    if (s == NULL)
        return 0;
    int rows = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct submission_event e = {0};
        el_read_row(s, submission_cols, N_COLS(submission_cols), &e);
        rows++;
        cb(&e, arg);
    }
    return el_finish(s, rc, rows);
}

int eventlog_query_deliveries(struct eventlog *l, const char *key,
                              void (*cb)(const struct delivery_event *, void *), void *arg)
{
    if (key[0] == '\0') /* every event without a ref would match */
        return 0;
    sqlite3_stmt *s = l->st[EL_DELIVERIES_BY_KEY];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rows = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct delivery_event e = {0};
        el_read_row(s, delivery_cols, N_COLS(delivery_cols), &e);
        rows++;
        cb(&e, arg);
    }
    return el_finish(s, rc, rows);
}

int eventlog_accepted_since(struct eventlog *l, int64_t since_ms,
                            void (*cb)(const char *user, int64_t time_ms, int recipients, void *),
                            void *arg)
{
    static const char sql[] = "SELECT user, time_ms, recipients FROM submissions"
                              " WHERE time_ms >= ?1 AND accepted = 1 AND stage = 'data'"
                              " ORDER BY time_ms";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(l->db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, since_ms);
    int rows = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *user = sqlite3_column_text(s, 0);
        cb(user ? (const char *)user : "", sqlite3_column_int64(s, 1), sqlite3_column_int(s, 2),
           arg);
        rows++;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? rows : -1;
}

const char *eventlog_error(struct eventlog *l)
{
    return l && l->db ? sqlite3_errmsg(l->db) : "no database";
}
