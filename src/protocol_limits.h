/* protocol_limits.h: every protocol limit submitd enforces, named, with the RFC that sets it. */
#ifndef SUBMITD_PROTOCOL_LIMITS_H
#define SUBMITD_PROTOCOL_LIMITS_H

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF. */
#define SMTP_COMMAND_LINE_MAX 512
/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF (998 without). */
#define SMTP_TEXT_LINE_MAX 1000
#define SMTP_TEXT_LINE_CONTENT_MAX 998
/* RFC 5321 4.5.3.1.1-3: local part 64, domain 255, path 256 octets. */
#define SMTP_LOCALPART_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
/* RFC 4954 4: a SASL response line may be 12288 octets; we accept that much base64. */
#define SASL_RESPONSE_MAX 12288
/* Longest SASL identity (authcid / authzid) we accept: an address. */
#define SASL_ID_MAX SMTP_PATH_MAX
/* Authentication policy names. */
#define POLICY_NAME_MAX 64
/* Reference ids in replies: 16 hex digits, as Exchange Online prints them. */
#define REF_ID_LEN 16
/* Queue ids: 16 uppercase hex digits (time in microseconds, then randomness). */
#define QUEUE_ID_LEN 16
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF. */
#define SMTP_REPLY_LINE_MAX 512

/* RFC 3461 (DSN): ENVID at most 100 characters (4.4), ORCPT at most 500 (4.2); NOTIFY values. */
#define DSN_ENVID_MAX 100
#define DSN_ORCPT_MAX 500
#define DSN_NOTIFY_NEVER 0x1u
#define DSN_NOTIFY_SUCCESS 0x2u
#define DSN_NOTIFY_FAILURE 0x4u
#define DSN_NOTIFY_DELAY 0x8u
/* MAIL and RCPT lines may carry DSN parameters beyond 512 octets (RFC 3461 5). */
#define SMTP_DSN_COMMAND_LINE_MAX (SMTP_COMMAND_LINE_MAX + DSN_ENVID_MAX + DSN_ORCPT_MAX + 88)

#endif
