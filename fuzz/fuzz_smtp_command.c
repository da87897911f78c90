/* fuzz_smtp_command.c: libFuzzer target for the SMTP command-line parsers (src/smtp_parse.c):
 * smtp_parse_command, then smtp_parse_mail / smtp_parse_rcpt / smtp_parse_bdat /
 * smtp_helo_valid on its argument (whatever the verb, so every parser sees every line), and the
 * mailbox, UTF-8 and normalization helpers. Checks what the header promises: the argument lies
 * inside the line, parsed addresses are valid mailboxes that fit their buffers, and sizes are the
 * exact decimal value of their digits. Input: one control octet (bit 0: the RCPT transaction
 * declared SMTPUTF8), then the command line without its CRLF.
 * RFC 5321 4.1.1-4.1.2, RFC 1870, RFC 3030, RFC 6531. */
#include <string.h>
#include <strings.h>

#include "fuzz_util.h"
#include "smtp_parse.h"

/* The value of a run of 1-20 decimal digits, or false on anything else or overflow. */
static bool decimal(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *v = acc;
    return true;
}

static void check_bdat(const char *arg, size_t len)
{
    uint64_t size = 0;
    bool last = false;
    if (!smtp_parse_bdat(arg, len, &size, &last))
        return;
    /* "BDAT <digits> [LAST]": the digits are the first word and *size is exactly their value */
    size_t n = 0;
    while (n < len && arg[n] >= '0' && arg[n] <= '9')
        n++;
    uint64_t want = 0;
    FUZZ_CHECK(decimal(arg, n, &want));
    FUZZ_CHECK(size == want);
}

static void check_mail(const char *arg, size_t len)
{
    struct smtp_mail_args m;
    memset(&m, 0, sizeof m);
    memset(m.address, 0xa5, sizeof m.address); /* an unterminated result shows */
    if (smtp_parse_mail(arg, len, &m) != SMTP_PARAM_OK)
        return;
    size_t alen = strnlen(m.address, sizeof m.address);
    FUZZ_CHECK(alen <= SMTP_PATH_MAX);
    if (alen > 0)
        FUZZ_CHECK(smtp_mailbox_valid(m.address, alen, m.smtputf8));
    FUZZ_CHECK(m.body == SMTP_BODY_7BIT || m.body == SMTP_BODY_8BITMIME ||
               m.body == SMTP_BODY_BINARYMIME);
    if (m.has_auth)
        FUZZ_CHECK(strnlen(m.auth, sizeof m.auth) <= SMTP_PATH_MAX);
    char norm[SMTP_PATH_MAX + 1];
    if (alen > 0 && smtp_address_normalize(m.address, norm, sizeof norm))
        FUZZ_CHECK(strlen(norm) == alen);
}

static void check_rcpt(const char *arg, size_t len, bool utf8)
{
    struct smtp_rcpt_args r;
    memset(r.address, 0xa5, sizeof r.address);
    if (smtp_parse_rcpt(arg, len, utf8, &r) != SMTP_PARAM_OK)
        return;
    size_t alen = strnlen(r.address, sizeof r.address);
    FUZZ_CHECK(alen > 0 && alen <= SMTP_PATH_MAX); /* <> is BAD_ADDRESS */
    if (strcasecmp(r.address, "postmaster") != 0)
        FUZZ_CHECK(smtp_mailbox_valid(r.address, alen, utf8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool utf8 = (data[0] & 1) != 0;
    const char *line = (const char *)data + 1;
    size_t len = size - 1;

    struct smtp_command cmd;
    smtp_parse_command(line, len, &cmd);
    FUZZ_CHECK(cmd.verb >= SMTP_VERB_UNKNOWN && cmd.verb < SMTP_VERB_COUNT);
    FUZZ_CHECK(smtp_verb_name(cmd.verb) != NULL);
    const char *arg = line;
    size_t arg_len = len;
    if (cmd.verb != SMTP_VERB_UNKNOWN && cmd.arg_len > 0) {
        FUZZ_CHECK(cmd.arg >= line && cmd.arg <= line + len);
        FUZZ_CHECK(cmd.arg_len <= (size_t)(line + len - cmd.arg));
        arg = cmd.arg;
        arg_len = cmd.arg_len;
    }
    if (cmd.verb != SMTP_VERB_UNKNOWN)
        FUZZ_CHECK(memchr(line, '\0', len) == NULL);

    check_mail(arg, arg_len);
    check_rcpt(arg, arg_len, utf8);
    check_bdat(arg, arg_len);
    (void)smtp_helo_valid(arg, arg_len);
    if (smtp_mailbox_valid(line, len, utf8) && utf8)
        FUZZ_CHECK(smtp_utf8_valid(line, len));
    (void)smtp_utf8_valid(line, len);
    return 0;
}
