/* smtp_reply.h: the client side of RFC 5321 4.2: parsing (possibly multi-line) replies and their
 * enhanced status codes (RFC 3463), incrementally, as they arrive. Pure: no I/O. Used by
 * smtp-doctor, and by the relay client. */
#ifndef SUBMITD_SMTP_REPLY_H
#define SUBMITD_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_LINES_MAX 64
#define SMTP_REPLY_TEXT_MAX 8192

struct smtp_reply {
    int code;                       /* 0 while incomplete */
    char enhanced[16];              /* "5.7.139" when the first line carries one, else "" */
    char text[SMTP_REPLY_TEXT_MAX]; /* the lines' texts (after code and separator) joined by
                                     * '\n', the enhanced code kept as sent */
    size_t n_lines;
    bool complete;
    int first_code; /* the first line's code, set from the first line on (code stays 0 until
                     * the last line) */
    bool truncated; /* text did not fit in SMTP_REPLY_TEXT_MAX and was cut */
};

enum smtp_reply_status {
    SMTP_REPLY_MORE = 0, /* feed the next line */
    SMTP_REPLY_DONE,     /* r is complete */
    SMTP_REPLY_BAD       /* not a reply line, or a line whose code differs from the first */
};

void smtp_reply_init(struct smtp_reply *r);
/* Feeds one line without its CRLF. "250-..." continues, "250 ..." (or "250" alone) ends. */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);
/* The first line as "CODE TEXT" (for messages), into out. */
void smtp_reply_first_line(const struct smtp_reply *r, char *out, size_t cap);
/* For an EHLO reply: whether a keyword is advertised (case-insensitive), and its parameters
 * ("PLAIN LOGIN" for AUTH) copied into params when not NULL. */
bool smtp_reply_has_extension(const struct smtp_reply *r, const char *keyword, char *params,
                              size_t cap);

#endif
