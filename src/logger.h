/* logger.h: the daemon's operational log: one line per event, "TIME LEVEL key=value ...", each
 * line written with a single write(2) so threads never interleave. Values that may hold client
 * text go through log_sanitize. Never pass a secret here. */
#ifndef SUBMITD_LOGGER_H
#define SUBMITD_LOGGER_H

#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* fd to write to (stderr with -f, the log file otherwise). */
void log_init(int fd, enum log_level min);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies client text into out with anything outside printable ASCII (and '"', '\\') escaped
 * as \xHH, truncated to fit. Returns out. */
char *log_sanitize(const char *in, size_t len, char *out, size_t cap);

#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
