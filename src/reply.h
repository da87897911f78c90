/* reply.h: the SMTP reply catalogue and the checks of the one reply path.
 * RFC 5321 4.2 (reply codes), RFC 3463 and RFC 5248 (enhanced status codes), RFC 4954 (AUTH). */
#ifndef SUBMITD_REPLY_H
#define SUBMITD_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

enum reply_id {
    REPLY_AUTH_OK,                /* 235 2.7.0 */
    REPLY_AUTH_FAILED,            /* 535 5.7.3: bad credentials (and every 535 under generic) */
    REPLY_AUTH_ACCOUNT_DISABLED,  /* 535 5.7.139 */
    REPLY_AUTH_DISABLED_MAILBOX,  /* 535 5.7.139 */
    REPLY_AUTH_DISABLED_TENANT,   /* 535 5.7.139 */
    REPLY_AUTH_BASIC_DISABLED,    /* 535 5.7.139 */
    REPLY_AUTH_SECURITY_DEFAULTS, /* 535 5.7.139 */
    REPLY_AUTH_ACCESS_RULE,       /* 535 5.7.139 */
    REPLY_AUTH_ENCRYPTION_REQUIRED, /* 538 5.7.11 */
    REPLY_AUTH_UNRECOGNIZED,      /* 504 5.5.4 */
    REPLY_AUTH_ALREADY,           /* 503 5.5.1 */
    REPLY_AUTH_IN_TRANSACTION,    /* 503 5.5.1 */
    REPLY_AUTH_CANCELLED,         /* 501 5.7.0 */
    REPLY_AUTH_MALFORMED,         /* 501 5.5.2 */
    REPLY_AUTH_TOO_LONG,          /* 500 5.5.6 (RFC 4954 4) */
    REPLY_AUTH_TEMPFAIL,          /* 454 4.7.0 (RFC 4954 6) */
    REPLY_NOT_AUTHENTICATED,      /* 530 5.7.57 */
    REPLY_STARTTLS_FIRST,         /* 530 5.7.0 */
    REPLY_SEND_AS_DENIED,         /* 550 5.7.60 */
    REPLY_TOO_MANY_RECIPIENTS,    /* 452 4.5.3 */
    REPLY_SENDER_THREAD_LIMIT,    /* 432 4.3.2 */
    REPLY_RATE_LIMITED,           /* 451 4.7.0 (the text gets the seconds to wait) */
    REPLY_QUOTA_EXCEEDED,         /* 554 5.2.0 */
    REPLY_SIZE_EXCEEDED,          /* 552 5.3.4 */
    REPLY_DATA_BARE_LF,           /* 550 5.6.0 */
    REPLY_DATA_BARE_CR,           /* 550 5.6.0 */
    REPLY_DATA_LINE_TOO_LONG,     /* 550 5.6.0 */
    REPLY_UNKNOWN_COMMAND,        /* 500 5.5.1 */
    REPLY_LINE_TOO_LONG,          /* 500 5.5.2 */
    REPLY_BARE_LF_COMMAND,        /* 500 5.5.2 */
    REPLY_SYNTAX,                 /* 501 5.5.4 */
    REPLY_BAD_SEQUENCE,           /* 503 5.5.1 */
    REPLY_HELLO_FIRST,            /* 503 5.5.1 */
    REPLY_MAIL_FIRST,             /* 503 5.5.1 */
    REPLY_RCPT_FIRST,             /* 503 5.5.1 */
    REPLY_NESTED_MAIL,            /* 503 5.5.1 */
    REPLY_BAD_SENDER_SYNTAX,      /* 501 5.1.7 */
    REPLY_BAD_RCPT_SYNTAX,        /* 501 5.1.3 */
    REPLY_UNKNOWN_PARAMETER,      /* 555 5.5.4 */
    REPLY_UTF8_NOT_DECLARED,      /* 553 5.6.7 */
    REPLY_TOO_MANY_ERRORS,        /* 421 4.7.0 */
    REPLY_TIMEOUT,                /* 421 4.4.2 */
    REPLY_SHUTTING_DOWN,          /* 421 4.3.2 */
    REPLY_TOO_MANY_CONNECTIONS,   /* 421 4.7.0 */
    REPLY_NO_STORAGE,             /* 452 4.3.1 */
    REPLY_LOCAL_ERROR,            /* 451 4.3.0 */
    REPLY_TLS_UNAVAILABLE,        /* 454 4.7.0 */
    REPLY_TLS_ALREADY,            /* 503 5.5.1 */
    REPLY_TLS_READY,              /* 220 2.0.0 */
    REPLY_SENDER_OK,              /* 250 2.1.0 */
    REPLY_RCPT_OK,                /* 250 2.1.5 */
    REPLY_START_DATA,             /* 354 */
    REPLY_OK,                     /* 250 2.0.0 */
    REPLY_RESET_OK,               /* 250 2.0.0 */
    REPLY_VRFY,                   /* 252 2.5.0 */
    REPLY_HELP,                   /* 214 2.0.0 */
    REPLY_BYE,                    /* 221 2.0.0 */
    REPLY_BDAT_OK,                /* 250 2.0.0 (chunk received) */
    REPLY_BDAT_AFTER_FAILURE,     /* 503 5.5.1 */
    REPLY_GREETING,               /* 220 (no enhanced code: RFC 2034 3) */
    REPLY_COUNT
};

struct reply_entry {
    int code;
    const char *enhanced; /* NULL only for 354 (RFC 2034 3: no enhanced code on 354) */
    const char *text;
};

extern const struct reply_entry reply_catalogue[REPLY_COUNT];

/* True when `enhanced` is a well-formed enhanced status code (class.subject.detail, RFC 3463 2)
 * whose class agrees with the reply code's first digit (2xx/2., 4xx/4., 5xx/5.). */
bool reply_class_agrees(int code, const char *enhanced);

/* Builds one reply line "CODE ENH TEXT[ REFERENCE]\r\n" into buf; with `more` the separator after
 * CODE is '-' (a continuation line of a multi-line reply). Returns the length written, or 0 when
 * the code and enhanced code disagree or the line does not fit (the caller then answers 451). */
size_t reply_format(char *buf, size_t cap, int code, const char *enhanced, const char *text,
                    const char *reference, bool more);

/* Makes a fresh reference id: REF_ID_LEN uppercase hex digits from the clock and randomness. */
void reply_new_id(char id[REF_ID_LEN + 1]);

/* Formats "[HOST YYYY-MM-DDTHH:MM:SS.mmmZ ID]" for the given time in milliseconds since 1970. */
size_t reply_reference(char *buf, size_t cap, const char *host, int64_t time_ms, const char *id);

#endif
