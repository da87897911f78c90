/* test_util.h: fixtures the store tests share (test_directory.c, test_directory_grants.c,
 * test_eventlog.c): a fresh temporary directory per test, removing it with a database's WAL
 * files, and a raw SQLite connection to a database for what the module's API cannot do or see.
 * Include after <cmocka.h>. Everything is static inline: each test binary takes what it uses. */
#ifndef SUBMITD_TEST_UTIL_H
#define SUBMITD_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#define TU_DIR_MAX 64

/* Makes /tmp/NAME.XXXXXX into dir (TU_DIR_MAX bytes); 0, or -1 with the reason on stderr. */
static inline int tu_temp_dir(char dir[TU_DIR_MAX], const char *name)
{
    snprintf(dir, TU_DIR_MAX, "/tmp/%s.XXXXXX", name);
    if (mkdtemp(dir) != NULL)
        return 0;
    perror(dir);
    return -1;
}

/* Removes the database file db_name (and its -wal and -shm files) from dir, then dir. */
static inline void tu_remove_dir(const char *dir, const char *db_name)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    char path[256];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, db_name, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* A raw read-write connection to dir/db_name, waiting up to 5 s for a lock. */
static inline sqlite3 *tu_raw_open(const char *dir, const char *db_name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, db_name);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static inline void tu_raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg);
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

/* Column col of the first row of a query (there must be a row). */
static inline int tu_raw_int(sqlite3 *db, const char *sql, int col)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, col);
    sqlite3_finalize(s);
    return n;
}

#endif
