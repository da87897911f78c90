/* sqlite_util.c: owns what the SQLite-backed stores (directory_sqlite.c, eventlog.c) share:
 * opening a database in WAL mode with its pragmas, constant scripts, the table of prepared
 * statements, and bounded text columns. No RFC; see sqlite_util.h. */
#include "sqlite_util.h"

#include <stdio.h>

#include <sqlite3.h>

/* Pause between tries to switch a database to WAL while another connection holds it. */
#define SQLU_SETUP_RETRY_MS 20

int sqlu_open_wal(const char *path, int busy_ms, const char *more_pragmas, sqlite3 **db,
                  const char **failed)
{
    const char *step = "opening";
    int rc = sqlite3_open_v2(
        path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(*db, 1);
        sqlite3_busy_timeout(*db, busy_ms);
        step = "setting up";
        /* Switching to WAL needs a lock that SQLite's busy handler does not wait for (another
         * process creating the same database at that moment): wait here, as long as for any
         * other lock. */
        for (int waited = 0;; waited += SQLU_SETUP_RETRY_MS) {
            rc = sqlu_script(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
            if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
                break;
            if (waited >= busy_ms)
                break;
            sqlite3_sleep(SQLU_SETUP_RETRY_MS);
        }
        if (rc == SQLITE_OK && more_pragmas != NULL)
            rc = sqlu_script(*db, more_pragmas);
    }
    if (failed != NULL)
        *failed = step;
    return rc;
}

const char *sqlu_errmsg(sqlite3 *db, int rc)
{
    return db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

int sqlu_script(sqlite3 *db, const char *sql)
{
    const char *tail = sql;
    while (tail != NULL && *tail != '\0') {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(db, tail, -1, &s, &tail);
        if (rc != SQLITE_OK)
            return rc;
        if (s == NULL)
            break; /* only whitespace or comments left */
        do
            rc = sqlite3_step(s);
        while (rc == SQLITE_ROW);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
            return rc;
    }
    return SQLITE_OK;
}

int sqlu_prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n, int *failed)
{
    for (int i = 0; i < n; i++) {
        int rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);
        if (rc != SQLITE_OK) {
            *failed = i;
            return rc;
        }
    }
    return SQLITE_OK;
}

void sqlu_close(sqlite3 *db, sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
}

void sqlu_finish(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

void sqlu_col_copy(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}
