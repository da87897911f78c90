/* smtp_parse.h: pure parsers for SMTP command lines, MAIL/RCPT paths and parameters, BDAT and
 * EHLO arguments. No I/O, no allocation: each is a function of bytes, unit-tested and fuzzed.
 * RFC 5321 4.1.1-4.1.2 (syntax), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 3030 (BDAT,
 * BINARYMIME), RFC 6531 (SMTPUTF8), RFC 4954 5 (AUTH= on MAIL), RFC 3461 4 (DSN: RET, ENVID on
 * MAIL; NOTIFY, ORCPT on RCPT). */
#ifndef SUBMITD_SMTP_PARSE_H
#define SUBMITD_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_EHLO,
    SMTP_VERB_HELO,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_HELP,
    SMTP_VERB_COUNT
};

struct smtp_command {
    enum smtp_verb verb;
    const char *arg; /* points into the line, after the verb and the spaces that follow it */
    size_t arg_len;  /* trailing spaces removed; 0 when there is no argument */
};

/* Splits a command line (without its CRLF) into verb and argument. The verb is matched
 * case-insensitively and must be followed by a space or the end of the line ("MAILX" is
 * unknown). A NUL byte anywhere makes the verb unknown. */
void smtp_parse_command(const char *line, size_t len, struct smtp_command *out);

/* The upper-case name of a verb ("EHLO"), or "UNKNOWN". */
const char *smtp_verb_name(enum smtp_verb verb);

enum smtp_param_status {
    SMTP_PARAM_OK = 0,
    SMTP_PARAM_SYNTAX,         /* 501 5.5.4: e.g. missing "FROM:", junk after the path */
    SMTP_PARAM_BAD_ADDRESS,    /* 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT) */
    SMTP_PARAM_UNKNOWN,        /* 555 5.5.4: an ESMTP parameter we do not support */
    SMTP_PARAM_UTF8_UNDECLARED /* 553 5.6.7: non-ASCII address without SMTPUTF8 on MAIL */
};

enum smtp_body { SMTP_BODY_7BIT = 0, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

/* RFC 3461 4.3 RET: what a failure DSN returns of the message. */
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_args {
    char
        address[SMTP_PATH_MAX + 1]; /* mailbox without <>, source route dropped; "" = null sender */
    bool has_size;
    uint64_t size;
    enum smtp_body body;
    bool smtputf8;
    bool has_auth;                 /* AUTH=<mailbox> (RFC 4954 5), xtext-decoded */
    char auth[SMTP_PATH_MAX + 1];  /* "" for AUTH=<> */
    enum smtp_ret ret;             /* RET= (RFC 3461 4.3); SMTP_RET_NONE when not given */
    char envid[DSN_ENVID_MAX + 1]; /* ENVID= (RFC 3461 4.4), xtext-decoded; "" when not given */
};

struct smtp_rcpt_args {
    char address[SMTP_PATH_MAX + 1]; /* mailbox without <>; "postmaster" alone is allowed */
    unsigned notify; /* NOTIFY= (RFC 3461 4.1): DSN_NOTIFY_* bits; 0 when not given */
    /* ORCPT= (RFC 3461 4.2): "addr-type;address", the address xtext-decoded; "" when not given */
    char orcpt[DSN_ORCPT_MAX + 1];
};

/* arg is what follows "MAIL " (e.g. "FROM:<a@b.example> SIZE=10"). "FROM:" is matched
 * case-insensitively; spaces between the colon and '<' are tolerated (many devices send them).
 * Parameters: SIZE=digits (at most 20 digits), BODY=7BIT|8BITMIME|BINARYMIME, SMTPUTF8, AUTH=xtext,
 * RET=FULL|HDRS, ENVID=xtext (at most DSN_ENVID_MAX characters as sent; decoded, printable
 * US-ASCII); each at most once (a repeat is SMTP_PARAM_SYNTAX), keywords and the BODY/RET values
 * case-insensitive; an unknown keyword, BODY or RET value is SMTP_PARAM_UNKNOWN, a malformed
 * value SMTP_PARAM_SYNTAX. A non-ASCII address is accepted only with SMTPUTF8. */
enum smtp_param_status smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out);

/* arg is what follows "RCPT " (e.g. "TO:<a@b.example> NOTIFY=SUCCESS,FAILURE"). Parameters:
 * NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (case-insensitive, no repeats, NEVER
 * only alone); ORCPT=addr-type;xtext (addr-type an atom, at most DSN_ORCPT_MAX characters as sent,
 * the address decoded: UTF-8 without control characters). Each at most once. An unknown keyword
 * or NOTIFY word is SMTP_PARAM_UNKNOWN, a malformed value SMTP_PARAM_SYNTAX. `utf8` says whether
 * the transaction declared SMTPUTF8 (then non-ASCII addresses are allowed). The empty path <> is
 * SMTP_PARAM_BAD_ADDRESS. */
enum smtp_param_status smtp_parse_rcpt(const char *arg, size_t len, bool utf8,
                                       struct smtp_rcpt_args *out);

/* RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ), with RFC 6531's UTF-8
 * extensions when `utf8` (valid UTF-8 required then). Local part: Dot-string or
 * Quoted-string, at most 64 octets; domain at most 255 octets, labels 1-63 of letters, digits,
 * hyphen (not at either end), or an address literal [1.2.3.4] / [IPv6:...]. */
bool smtp_mailbox_valid(const char *addr, size_t len, bool utf8);

/* EHLO/HELO argument: a domain (as above) or an address literal. Trailing text after the first
 * space is tolerated (some clients send it). Returns false for an empty or invalid argument. */
bool smtp_helo_valid(const char *arg, size_t len);

/* "BDAT <chunk-size> [LAST]" (RFC 3030 2): arg is what follows "BDAT ". Size is 1-20 digits;
 * LAST is case-insensitive. Returns false on any other form. */
bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last);

/* True when s[0..len) is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF, no truncated sequence. Used for SMTPUTF8 addresses and SASL identities. */
bool smtp_utf8_valid(const char *s, size_t len);

/* Copies `addr` into out (capacity cap) with the domain part lower-cased (ASCII only) and the
 * local part lower-cased too (directory lookups are case-insensitive). Returns false if it does
 * not fit. */
bool smtp_address_normalize(const char *addr, char *out, size_t cap);

#endif
