/* reply.c: the reply catalogue (every fixed reply submitd sends) and reply line formatting.
 * Texts of the 5.7.57 / 5.7.139 / 5.7.3 family follow Exchange Online's wording (see
 * docs/replies.md) so that existing knowledge and tools carry over. */
#include "reply.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "random_ids.h"

#define DENIED "Authentication unsuccessful, "

const struct reply_entry reply_catalogue[REPLY_COUNT] = {
    [REPLY_AUTH_OK] = {235, "2.7.0", "Authentication successful"},
    [REPLY_AUTH_FAILED] = {535, "5.7.3", "Authentication unsuccessful"},
    [REPLY_AUTH_ACCOUNT_DISABLED] = {535, "5.7.139", DENIED "account is disabled."},
    [REPLY_AUTH_DISABLED_MAILBOX] = {535, "5.7.139",
                                     DENIED "SmtpClientAuthentication is disabled for the Mailbox."},
    [REPLY_AUTH_DISABLED_TENANT] = {535, "5.7.139",
                                    DENIED "SmtpClientAuthentication is disabled for the Tenant."},
    [REPLY_AUTH_BASIC_DISABLED] = {535, "5.7.139", DENIED "basic authentication is disabled."},
    [REPLY_AUTH_SECURITY_DEFAULTS] = {535, "5.7.139",
                                      DENIED "user is locked by your organization's security "
                                             "defaults policy. Contact your administrator."},
    [REPLY_AUTH_ACCESS_RULE] = {535, "5.7.139",
                                DENIED "the request did not meet the criteria to be authenticated "
                                       "successfully. Contact your administrator."},
    [REPLY_AUTH_ENCRYPTION_REQUIRED] = {538, "5.7.11",
                                        "Encryption required for requested authentication "
                                        "mechanism"},
    [REPLY_AUTH_UNRECOGNIZED] = {504, "5.5.4", "Unrecognized authentication type"},
    [REPLY_AUTH_ALREADY] = {503, "5.5.1", "Already authenticated"},
    [REPLY_AUTH_IN_TRANSACTION] = {503, "5.5.1", "AUTH not permitted during a mail transaction"},
    [REPLY_AUTH_CANCELLED] = {501, "5.7.0", "Authentication cancelled"},
    [REPLY_AUTH_MALFORMED] = {501, "5.5.2", "Cannot decode the authentication response"},
    [REPLY_AUTH_TOO_LONG] = {500, "5.5.6", "Authentication exchange line is too long"},
    [REPLY_AUTH_TEMPFAIL] = {454, "4.7.0", "Temporary authentication failure, try again later"},
    [REPLY_NOT_AUTHENTICATED] = {530, "5.7.57", "Client not authenticated to send mail."},
    [REPLY_STARTTLS_FIRST] = {530, "5.7.0", "Must issue a STARTTLS command first"},
    [REPLY_SEND_AS_DENIED] = {550, "5.7.60",
                              "Client does not have permissions to send as this sender"},
    [REPLY_TOO_MANY_RECIPIENTS] = {452, "4.5.3", "Too many recipients"},
    [REPLY_SENDER_THREAD_LIMIT] = {432, "4.3.2",
                                   "sender thread limit exceeded: too many sessions are "
                                   "submitting for this mailbox at once"},
    [REPLY_RATE_LIMITED] = {451, "4.7.0", "Message rate limit exceeded for this mailbox;"},
    [REPLY_QUOTA_EXCEEDED] = {554, "5.2.0",
                              "SubmissionQuotaExceeded; the mailbox has reached its limit of "
                              "recipients in 24 hours"},
    [REPLY_SIZE_EXCEEDED] = {552, "5.3.4", "Message size exceeds fixed maximum message size"},
    [REPLY_DATA_BARE_LF] = {550, "5.6.0",
                            "Bare LF in message data; lines must end with CRLF (RFC 5321 2.3.8)"},
    [REPLY_DATA_BARE_CR] = {550, "5.6.0",
                            "Bare CR in message data; lines must end with CRLF (RFC 5321 2.3.8)"},
    [REPLY_DATA_LINE_TOO_LONG] = {550, "5.6.0",
                                  "Message line longer than 998 octets (RFC 5322 2.1.1)"},
    [REPLY_UNKNOWN_COMMAND] = {500, "5.5.1", "Command unrecognized"},
    [REPLY_LINE_TOO_LONG] = {500, "5.5.2", "Line too long"},
    [REPLY_BARE_LF_COMMAND] = {500, "5.5.2", "Command lines must end with CRLF"},
    [REPLY_SYNTAX] = {501, "5.5.4", "Syntax error in parameters or arguments"},
    [REPLY_BAD_SEQUENCE] = {503, "5.5.1", "Bad sequence of commands"},
    [REPLY_HELLO_FIRST] = {503, "5.5.1", "Send EHLO first"},
    [REPLY_MAIL_FIRST] = {503, "5.5.1", "Need MAIL before RCPT"},
    [REPLY_RCPT_FIRST] = {503, "5.5.1", "Need RCPT before DATA"},
    [REPLY_NESTED_MAIL] = {503, "5.5.1", "Nested MAIL command"},
    [REPLY_BAD_SENDER_SYNTAX] = {501, "5.1.7", "Bad sender address syntax"},
    [REPLY_BAD_RCPT_SYNTAX] = {501, "5.1.3", "Bad recipient address syntax"},
    [REPLY_UNKNOWN_PARAMETER] = {555, "5.5.4", "Unsupported MAIL or RCPT parameter"},
    [REPLY_UTF8_NOT_DECLARED] = {553, "5.6.7",
                                 "Non-ASCII address requires the SMTPUTF8 parameter"},
    [REPLY_TOO_MANY_ERRORS] = {421, "4.7.0", "Too many errors, closing connection"},
    [REPLY_TIMEOUT] = {421, "4.4.2", "Timeout exceeded, closing connection"},
    [REPLY_SHUTTING_DOWN] = {421, "4.3.2", "Service shutting down, closing connection"},
    [REPLY_TOO_MANY_CONNECTIONS] = {421, "4.7.0", "Too many connections, try again later"},
    [REPLY_NO_STORAGE] = {452, "4.3.1", "Insufficient system storage"},
    [REPLY_LOCAL_ERROR] = {451, "4.3.0", "Local error in processing, try again later"},
    [REPLY_TLS_UNAVAILABLE] = {454, "4.7.0", "TLS not available due to temporary reason"},
    [REPLY_TLS_ALREADY] = {503, "5.5.1", "TLS already active"},
    [REPLY_TLS_READY] = {220, "2.0.0", "Ready to start TLS"},
    [REPLY_SENDER_OK] = {250, "2.1.0", "Sender OK"},
    [REPLY_RCPT_OK] = {250, "2.1.5", "Recipient OK"},
    [REPLY_START_DATA] = {354, NULL, "Start mail input; end with <CRLF>.<CRLF>"},
    [REPLY_OK] = {250, "2.0.0", "OK"},
    [REPLY_RESET_OK] = {250, "2.0.0", "Reset state"},
    [REPLY_VRFY] = {252, "2.5.0",
                    "Cannot VRFY user, but will accept message and attempt delivery"},
    [REPLY_HELP] = {214, "2.0.0", "See https://www.rfc-editor.org/rfc/rfc6409 ; commands: EHLO "
                                  "HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"},
    [REPLY_BYE] = {221, "2.0.0", "Bye"},
    [REPLY_BDAT_OK] = {250, "2.0.0", "Chunk received"},
    [REPLY_BDAT_AFTER_FAILURE] = {503, "5.5.1", "Message already refused; send RSET"},
    [REPLY_GREETING] = {220, NULL, "ESMTP submitd ready"},
};

static bool digits(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool reply_class_agrees(int code, const char *enhanced)
{
    if (code < 200 || code > 599 || enhanced == NULL)
        return false;
    int cls = code / 100;
    if (cls == 3 || enhanced[0] - '0' != cls || enhanced[1] != '.')
        return false;
    /* RFC 3463 2: class "." subject(1-3 digits) "." detail(1-3 digits) */
    const char *subject = enhanced + 2;
    const char *dot = strchr(subject, '.');
    if (dot == NULL || !digits(subject, (size_t)(dot - subject), 3))
        return false;
    return digits(dot + 1, strlen(dot + 1), 3);
}

size_t reply_format(char *buf, size_t cap, int code, const char *enhanced, const char *text,
                    const char *reference, bool more)
{
    /* RFC 2034 3: the greeting (220), EHLO/HELO lines (250), SASL challenges (334) and 354
     * carry no enhanced code; everything else must, in the right class. */
    if (enhanced != NULL ? !reply_class_agrees(code, enhanced)
                         : (code != 220 && code != 250 && code != 334 && code != 354))
        return 0;
    int n = snprintf(buf, cap, "%d%c%s%s%s%s%s\r\n", code, more ? '-' : ' ',
                     enhanced ? enhanced : "", enhanced ? " " : "", text,
                     reference && *reference ? " " : "", reference ? reference : "");
    if (n < 0 || (size_t)n >= cap || (size_t)n > SMTP_REPLY_LINE_MAX)
        return 0;
    return (size_t)n;
}

void reply_new_id(char id[REF_ID_LEN + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(ts.tv_nsec / 1000);
    uint8_t rnd[4];
    random_ids_buf(rnd, sizeof rnd);
    /* 10 digits of time (so ids sort roughly by time), 6 of randomness */
    for (int i = 0; i < 10; i++)
        id[i] = hex[(v >> (4 * (9 - i) + 8)) & 0xF];
    for (int i = 0; i < 6; i++)
        id[10 + i] = hex[(rnd[i / 2] >> ((i % 2) ? 0 : 4)) & 0xF];
    id[REF_ID_LEN] = '\0';
}

size_t reply_reference(char *buf, size_t cap, const char *host, int64_t time_ms, const char *id)
{
    time_t secs = (time_t)(time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n = snprintf(buf, cap, "[%s %04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s]", host,
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(time_ms % 1000), id);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}
