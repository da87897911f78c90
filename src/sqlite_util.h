/* sqlite_util.h: what the SQLite-backed stores (the directory, the event log) do alike: opening a
 * database in WAL mode, running a constant script, preparing and finalizing a table of
 * statements, and copying a text column into a bounded buffer. SQL only through prepared
 * statements; nothing here binds a value. */
#ifndef SUBMITD_SQLITE_UTIL_H
#define SUBMITD_SQLITE_UTIL_H

#include <stddef.h>

#include <sqlite3.h>

/* Opens (creating) the database at path for one thread at a time, with extended result codes,
 * a busy timeout of busy_ms and write-ahead logging (synchronous=NORMAL), then runs more_pragmas
 * (NULL for none). Returns an SQLite result code; on failure *failed (when failed is not NULL)
 * names the step that failed, "opening" or "setting up", and *db may still be set (sqlu_close
 * it). */
int sqlu_open_wal(const char *path, int busy_ms, const char *more_pragmas, sqlite3 **db,
                  const char **failed);
/* The message for a result code: the connection's when there is a connection, else the code's. */
const char *sqlu_errmsg(sqlite3 *db, int rc);
/* Runs a constant script (pragmas, a schema, BEGIN/COMMIT) statement by statement through
 * prepared statements. Returns an SQLite result code. */
int sqlu_script(sqlite3 *db, const char *sql);
/* Prepares sql[0..n-1] into st[] (persistent). On failure returns the result code with *failed
 * the index of the statement that did not prepare. */
int sqlu_prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n, int *failed);
/* Finalizes st[0..n-1] (NULL entries allowed) and closes db (NULL allowed). */
void sqlu_close(sqlite3 *db, sqlite3_stmt **st, int n);
/* Resets a statement after use and clears its bindings. */
void sqlu_finish(sqlite3_stmt *s);
/* Column i as text into out (cap bytes, always terminated; NULL reads as ""). */
void sqlu_col_copy(sqlite3_stmt *s, int i, char *out, size_t cap);
#define COL_COPY(s, i, field) sqlu_col_copy((s), (i), (field), sizeof(field))

#endif
