/* smtp_parse.c: pure parsers for SMTP command lines, MAIL/RCPT paths and their parameters, the
 * EHLO/HELO and BDAT arguments, mailbox validation and address normalization. No I/O, no
 * allocation.
 * RFC 5321 4.1.1-4.1.2 and 4.5.3.1 (syntax and size limits), RFC 1870 (SIZE), RFC 6152
 * (8BITMIME), RFC 3030 (BDAT, BINARYMIME), RFC 6531 (SMTPUTF8), RFC 3629 (UTF-8), RFC 4954 5
 * (AUTH= on MAIL), RFC 3461 4 (DSN parameters RET, ENVID, NOTIFY, ORCPT; their xtext is
 * xtext.c's).
 *
 * Lenient where real clients are sloppy: lower-case verbs and keywords, spaces after "FROM:" /
 * "TO:", runs of spaces between parameters, trailing spaces, underscores and a trailing dot in the
 * EHLO name. Strict where it matters: no NUL or control characters, the 256-octet path limit
 * (which includes the angle brackets, so a mailbox is at most 254 octets), 64-octet local parts,
 * 63-octet labels, 255-octet domains, SIZE without overflow, well-formed UTF-8 only. */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>

#include "xtext.h"

/* A mailbox must fit in a path: "<" mailbox ">" is at most SMTP_PATH_MAX octets. */
#define MAILBOX_MAX (SMTP_PATH_MAX - 2)
/* RFC 1870: SIZE value; RFC 3030: chunk size. Both at most 20 digits. */
#define NUMBER_DIGITS_MAX 20
/* RFC 1035 2.3.4 */
#define LABEL_MAX 63

static const char *const verb_names[SMTP_VERB_COUNT] = {
    [SMTP_VERB_UNKNOWN] = "UNKNOWN",   [SMTP_VERB_EHLO] = "EHLO", [SMTP_VERB_HELO] = "HELO",
    [SMTP_VERB_STARTTLS] = "STARTTLS", [SMTP_VERB_AUTH] = "AUTH", [SMTP_VERB_MAIL] = "MAIL",
    [SMTP_VERB_RCPT] = "RCPT",         [SMTP_VERB_DATA] = "DATA", [SMTP_VERB_BDAT] = "BDAT",
    [SMTP_VERB_RSET] = "RSET",         [SMTP_VERB_NOOP] = "NOOP", [SMTP_VERB_QUIT] = "QUIT",
    [SMTP_VERB_VRFY] = "VRFY",         [SMTP_VERB_EXPN] = "EXPN", [SMTP_VERB_HELP] = "HELP",
};

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* Case-insensitive comparison of s[0..n) with the NUL-terminated lit (which has no upper case). */
static bool ci_equal(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s[i]) != ascii_lower(lit[i]))
            return false;
    return true;
}

static bool ci_prefix(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n >= m && ci_equal(s, m, lit);
}

static bool has_nul(const char *s, size_t n)
{
    return n > 0 && memchr(s, '\0', n) != NULL;
}

static bool has_non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 4), or 0 when it is malformed. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800-U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or F5-FF */
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

bool smtp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq_len(p + i, len - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Parses 1-20 decimal digits into *v, refusing overflow of uint64_t. */
static bool parse_number(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > NUMBER_DIGITS_MAX)
        return false;
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *v = acc;
    return true;
}

/* ---- command line ---- */

void smtp_parse_command(const char *line, size_t len, struct smtp_command *out)
{
    out->verb = SMTP_VERB_UNKNOWN;
    out->arg = line;
    out->arg_len = 0;
    if (has_nul(line, len))
        return;
    size_t vlen = 0;
    while (vlen < len && line[vlen] != ' ')
        vlen++;
    for (int v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
        if (ci_equal(line, vlen, verb_names[v])) {
            out->verb = (enum smtp_verb)v;
            break;
        }
    }
    if (out->verb == SMTP_VERB_UNKNOWN)
        return;
    size_t start = vlen;
    while (start < len && line[start] == ' ')
        start++;
    size_t end = len;
    while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    out->arg = line + start;
    out->arg_len = end - start;
}

const char *smtp_verb_name(enum smtp_verb verb)
{
    if ((int)verb < 0 || verb >= SMTP_VERB_COUNT)
        return verb_names[SMTP_VERB_UNKNOWN];
    return verb_names[verb];
}

/* ---- domains and mailboxes ---- */

/* "[1.2.3.4]" or "[IPv6:...]" (RFC 5321 4.1.3). General address literals are not supported. */
static bool address_literal_valid(const char *s, size_t n)
{
    if (n < 3 || s[0] != '[' || s[n - 1] != ']')
        return false;
    const char *in = s + 1;
    size_t m = n - 2;
    if (ci_prefix(in, m, "ipv6:")) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (m - 5 == 0 || m - 5 >= sizeof buf)
            return false;
        memcpy(buf, in + 5, m - 5);
        buf[m - 5] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1;
    }
    /* IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT with a value of 0-255 */
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= m || in[i] != '.')
                return false;
            i++;
        }
        size_t start = i;
        unsigned val = 0;
        while (i < m && is_digit((unsigned char)in[i]) && i - start < 3)
            val = val * 10 + (unsigned)(in[i++] - '0');
        if (i == start || val > 255)
            return false;
    }
    return i == m;
}

/* Domain = sub-domain *("." sub-domain); labels of letters, digits and hyphens, not starting or
 * ending with a hyphen, 1-63 octets; with utf8, U-labels (RFC 6531 3.3) may contain non-ASCII
 * UTF-8 (the 63-octet limit is then applied to the UTF-8 form). `helo` adds the leniency of
 * EHLO names seen in the wild: underscores and one trailing dot. */
static bool domain_valid(const char *s, size_t n, bool utf8, bool helo)
{
    if (n == 0)
        return false;
    if (s[0] == '[')
        return n <= SMTP_DOMAIN_MAX && address_literal_valid(s, n);
    if (helo && n > 1 && s[n - 1] == '.')
        n--;
    if (n > SMTP_DOMAIN_MAX)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    size_t label = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '.') {
            if (label == 0 || p[i - 1] == '-')
                return false;
            label = 0;
            i++;
            continue;
        }
        size_t k = 1;
        if (c >= 0x80) {
            if (!utf8 || (k = utf8_seq_len(p + i, n - i)) == 0)
                return false;
        } else if (c == '-') {
            if (label == 0)
                return false;
        } else if (!is_alnum(c) && !(helo && c == '_')) {
            return false;
        }
        label += k;
        if (label > LABEL_MAX)
            return false;
        i += k;
    }
    return label > 0 && p[n - 1] != '-';
}

/* RFC 5321 atext (RFC 5322 3.2.3) */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Parses the local part at the start of s. Returns its length (quotes included), or 0 when it is
 * not a valid Dot-string or Quoted-string followed by '@'. */
static size_t local_part_len(const unsigned char *s, size_t n, bool utf8)
{
    size_t i = 0;
    if (n > 0 && s[0] == '"') {
        /* Quoted-string: qtextSMTP = %d32-33 / %d35-91 / %d93-126; quoted-pairSMTP = "\" %d32-126
         */
        for (i = 1; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\') {
                if (++i >= n || s[i] < 32 || s[i] > 126)
                    return 0;
            } else if (s[i] < 32 || s[i] == 127 || (s[i] >= 0x80 && !utf8)) {
                return 0;
            }
        }
        if (i >= n || i == 1) /* unterminated, or the empty local part "" */
            return 0;
        i++;
    } else {
        /* Dot-string = Atom *("." Atom) */
        size_t atom = 0;
        while (i < n && s[i] != '@') {
            if (s[i] == '.') {
                if (atom == 0)
                    return 0;
                atom = 0;
            } else if (is_atext(s[i]) || (s[i] >= 0x80 && utf8)) {
                atom++;
            } else {
                return 0;
            }
            i++;
        }
        if (atom == 0)
            return 0;
    }
    if (i >= n || s[i] != '@')
        return 0;
    return i;
}

bool smtp_mailbox_valid(const char *addr, size_t len, bool utf8)
{
    if (len == 0 || len > MAILBOX_MAX || has_nul(addr, len))
        return false;
    if (utf8 ? !smtp_utf8_valid(addr, len) : has_non_ascii(addr, len))
        return false;
    const unsigned char *p = (const unsigned char *)addr;
    size_t local = local_part_len(p, len, utf8);
    if (local == 0 || local > SMTP_LOCALPART_MAX)
        return false;
    return domain_valid(addr + local + 1, len - local - 1, utf8, false);
}

bool smtp_helo_valid(const char *arg, size_t len)
{
    if (has_nul(arg, len))
        return false;
    size_t n = 0;
    while (n < len && arg[n] != ' ')
        n++;
    if (n == 0 || !smtp_utf8_valid(arg, n))
        return false;
    return domain_valid(arg, n, true, true);
}

/* ---- MAIL and RCPT ---- */

/* Parses "<" [ A-d-l ":" ] Mailbox ">" at s[*pos]; copies the mailbox (source route dropped, not
 * validated yet) into addr and moves *pos after the '>'. */
static enum smtp_param_status parse_path(const char *s, size_t n, size_t *pos, char *addr)
{
    size_t i = *pos;
    if (i >= n || s[i] != '<')
        return SMTP_PARAM_SYNTAX;
    size_t open = i++;
    bool quoted = false;
    for (; i < n; i++) {
        if (quoted) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                quoted = false;
        } else if (s[i] == '"') {
            quoted = true;
        } else if (s[i] == '>') {
            break;
        }
    }
    if (i >= n)
        return SMTP_PARAM_SYNTAX; /* no closing '>' */
    size_t close = i;
    if (close - open + 1 > SMTP_PATH_MAX)
        return SMTP_PARAM_BAD_ADDRESS;
    size_t start = open + 1;
    /* A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain (RFC 5321 4.1.2, C) */
    if (start < close && s[start] == '@') {
        size_t j = start;
        for (;;) {
            if (j >= close || s[j] != '@')
                return SMTP_PARAM_BAD_ADDRESS;
            size_t d = ++j;
            if (j < close && s[j] == '[') {
                while (j < close && s[j] != ']')
                    j++;
                if (j < close)
                    j++;
            } else {
                while (j < close && s[j] != ',' && s[j] != ':')
                    j++;
            }
            if (!domain_valid(s + d, j - d, true, false) || j >= close)
                return SMTP_PARAM_BAD_ADDRESS;
            if (s[j++] == ':')
                break;
            if (s[j - 1] != ',')
                return SMTP_PARAM_BAD_ADDRESS;
        }
        if (j >= close)
            return SMTP_PARAM_BAD_ADDRESS; /* a route without a mailbox */
        start = j;
    }
    memcpy(addr, s + start, close - start);
    addr[close - start] = '\0';
    *pos = close + 1;
    return SMTP_PARAM_OK;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
 * esmtp-value = 1*(%d33-60 / %d62-126) (RFC 5321 4.1.2) */
static bool split_param(const char *s, size_t n, size_t *klen, const char **val, size_t *vlen)
{
    size_t i = 0;
    if (n == 0 || !is_alnum((unsigned char)s[0]))
        return false;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '-'))
        i++;
    *klen = i;
    *val = NULL;
    *vlen = 0;
    if (i == n)
        return true;
    if (s[i] != '=' || i + 1 == n)
        return false;
    for (size_t j = i + 1; j < n; j++)
        if ((unsigned char)s[j] < 33 || (unsigned char)s[j] > 126 || s[j] == '=')
            return false;
    *val = s + i + 1;
    *vlen = n - i - 1;
    return true;
}

/* True when s[0..n) holds only octets in lo..126 (printable US-ASCII from lo). */
static bool all_printable(const char *s, size_t n, unsigned char lo)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < lo || (unsigned char)s[i] > 126)
            return false;
    return true;
}

/* AUTH=xtext (RFC 4954 5): the decoded mailbox is printable ASCII without spaces and fits in
 * SMTP_PATH_MAX octets. */
static bool auth_decode(const char *s, size_t n, char *out)
{
    size_t len;
    return xtext_decode(s, n, out, SMTP_PATH_MAX + 1, &len) && all_printable(out, len, 33);
}

/* ENVID=xtext (RFC 3461 4.4): at most DSN_ENVID_MAX characters as sent; the decoded value is
 * printable US-ASCII (graphic characters and space). */
static bool envid_decode(const char *s, size_t n, char *out)
{
    size_t len;
    return n <= DSN_ENVID_MAX && xtext_decode(s, n, out, DSN_ENVID_MAX + 1, &len) &&
           all_printable(out, len, 32);
}

/* True when s[0..n) is well-formed UTF-8 without control characters (C0, DEL). */
static bool utf8_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 32 || (unsigned char)s[i] == 127)
            return false;
    return smtp_utf8_valid(s, n);
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2): addr-type is an atom (RFC 5322 3.2.3; "rfc822", or
 * "utf-8" from RFC 6533, whose utf-8-addr-xtext contains no '+' and so decodes to itself); the
 * whole value is at most DSN_ORCPT_MAX characters as sent; the address is not empty and decodes
 * to UTF-8 text. Stored as "addr-type;decoded address". */
static bool orcpt_decode(const char *s, size_t n, char *out)
{
    size_t t = 0, len;
    if (n > DSN_ORCPT_MAX)
        return false;
    while (t < n && s[t] != ';') {
        if (!is_atext((unsigned char)s[t]))
            return false;
        t++;
    }
    if (t == 0 || t + 1 >= n)
        return false; /* no addr-type, no ';', or no address */
    memcpy(out, s, t + 1);
    return xtext_decode(s + t + 1, n - t - 1, out + t + 1, DSN_ORCPT_MAX + 1 - (t + 1), &len) &&
           len > 0 && utf8_text(out + t + 1, len);
}

/* NOTIFY="NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY") (RFC 3461 4.1), case-insensitive; NEVER
 * only alone, no word twice, no empty element. An unknown word is SMTP_PARAM_UNKNOWN. */
static enum smtp_param_status notify_parse(const char *s, size_t n, unsigned *bits)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {{"never", DSN_NOTIFY_NEVER},
                 {"success", DSN_NOTIFY_SUCCESS},
                 {"failure", DSN_NOTIFY_FAILURE},
                 {"delay", DSN_NOTIFY_DELAY}};
    enum smtp_param_status unknown = SMTP_PARAM_OK;
    unsigned acc = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && s[i] != ',')
            i++;
        if (i == start)
            return SMTP_PARAM_SYNTAX; /* empty element: "", ",X", "X,,Y", "X," */
        unsigned bit = 0;
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
            if (ci_equal(s + start, i - start, words[w].word))
                bit = words[w].bit;
        if (bit == 0)
            unknown = SMTP_PARAM_UNKNOWN;
        else if (acc & bit)
            return SMTP_PARAM_SYNTAX;
        acc |= bit;
        if (i == n)
            break;
        i++; /* the comma */
    }
    if ((acc & DSN_NOTIFY_NEVER) && acc != DSN_NOTIFY_NEVER)
        return SMTP_PARAM_SYNTAX;
    if (unknown != SMTP_PARAM_OK)
        return unknown;
    *bits = acc;
    return SMTP_PARAM_OK;
}

enum mail_param {
    MP_SIZE = 1,
    MP_BODY = 2,
    MP_SMTPUTF8 = 4,
    MP_AUTH = 8,
    MP_RET = 16,
    MP_ENVID = 32
};

static enum smtp_param_status mail_param(const char *s, size_t n, unsigned *seen,
                                         struct smtp_mail_args *out)
{
    size_t klen, vlen;
    const char *val;
    if (!split_param(s, n, &klen, &val, &vlen))
        return SMTP_PARAM_SYNTAX;
    unsigned which;
    if (ci_equal(s, klen, "size"))
        which = MP_SIZE;
    else if (ci_equal(s, klen, "body"))
        which = MP_BODY;
    else if (ci_equal(s, klen, "smtputf8"))
        which = MP_SMTPUTF8;
    else if (ci_equal(s, klen, "auth"))
        which = MP_AUTH;
    else if (ci_equal(s, klen, "ret"))
        which = MP_RET;
    else if (ci_equal(s, klen, "envid"))
        which = MP_ENVID;
    else
        return SMTP_PARAM_UNKNOWN;
    if (*seen & which)
        return SMTP_PARAM_SYNTAX;
    *seen |= which;
    switch (which) {
    case MP_SIZE:
        if (val == NULL || !parse_number(val, vlen, &out->size))
            return SMTP_PARAM_SYNTAX;
        out->has_size = true;
        return SMTP_PARAM_OK;
    case MP_BODY:
        if (val != NULL && ci_equal(val, vlen, "7bit"))
            out->body = SMTP_BODY_7BIT;
        else if (val != NULL && ci_equal(val, vlen, "8bitmime"))
            out->body = SMTP_BODY_8BITMIME;
        else if (val != NULL && ci_equal(val, vlen, "binarymime"))
            out->body = SMTP_BODY_BINARYMIME;
        else
            return SMTP_PARAM_SYNTAX;
        return SMTP_PARAM_OK;
    case MP_SMTPUTF8:
        if (val != NULL)
            return SMTP_PARAM_SYNTAX;
        out->smtputf8 = true;
        return SMTP_PARAM_OK;
    case MP_RET:
        if (val == NULL)
            return SMTP_PARAM_SYNTAX;
        if (ci_equal(val, vlen, "full"))
            out->ret = SMTP_RET_FULL;
        else if (ci_equal(val, vlen, "hdrs"))
            out->ret = SMTP_RET_HDRS;
        else
            return SMTP_PARAM_UNKNOWN;
        return SMTP_PARAM_OK;
    case MP_ENVID:
        if (val == NULL || !envid_decode(val, vlen, out->envid))
            return SMTP_PARAM_SYNTAX;
        return SMTP_PARAM_OK;
    default: /* MP_AUTH */
        if (val == NULL || !auth_decode(val, vlen, out->auth))
            return SMTP_PARAM_SYNTAX;
        if (strcmp(out->auth, "<>") == 0)
            out->auth[0] = '\0';
        out->has_auth = true;
        return SMTP_PARAM_OK;
    }
}

enum rcpt_param { RP_NOTIFY = 1, RP_ORCPT = 2 };

static enum smtp_param_status rcpt_param(const char *s, size_t n, unsigned *seen,
                                         struct smtp_rcpt_args *out)
{
    size_t klen, vlen;
    const char *val;
    if (!split_param(s, n, &klen, &val, &vlen))
        return SMTP_PARAM_SYNTAX;
    unsigned which;
    if (ci_equal(s, klen, "notify"))
        which = RP_NOTIFY;
    else if (ci_equal(s, klen, "orcpt"))
        which = RP_ORCPT;
    else
        return SMTP_PARAM_UNKNOWN;
    if (*seen & which)
        return SMTP_PARAM_SYNTAX;
    *seen |= which;
    if (val == NULL)
        return SMTP_PARAM_SYNTAX;
    if (which == RP_NOTIFY)
        return notify_parse(val, vlen, &out->notify);
    if (!orcpt_decode(val, vlen, out->orcpt)) {
        out->orcpt[0] = '\0';
        return SMTP_PARAM_SYNTAX;
    }
    return SMTP_PARAM_OK;
}

/* Matches the keyword ("FROM:" / "TO:"), skips the spaces after it and parses the path. */
static enum smtp_param_status path_arg(const char *arg, size_t len, const char *keyword,
                                       size_t *pos, char *addr)
{
    if (has_nul(arg, len) || !ci_prefix(arg, len, keyword))
        return SMTP_PARAM_SYNTAX;
    size_t i = strlen(keyword);
    while (i < len && arg[i] == ' ')
        i++;
    enum smtp_param_status st = parse_path(arg, len, &i, addr);
    if (st != SMTP_PARAM_OK)
        return st;
    if (i < len && arg[i] != ' ')
        return SMTP_PARAM_SYNTAX; /* junk right after '>' */
    *pos = i;
    return SMTP_PARAM_OK;
}

enum smtp_param_status smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out)
{
    memset(out, 0, sizeof *out);
    size_t i;
    enum smtp_param_status st = path_arg(arg, len, "from:", &i, out->address);
    if (st != SMTP_PARAM_OK)
        return st;
    size_t alen = strlen(out->address);
    if (alen > 0 && !smtp_mailbox_valid(out->address, alen, true))
        return SMTP_PARAM_BAD_ADDRESS;
    unsigned seen = 0;
    while (i < len) {
        while (i < len && arg[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && arg[i] != ' ')
            i++;
        if (i > start && (st = mail_param(arg + start, i - start, &seen, out)) != SMTP_PARAM_OK)
            return st;
    }
    if (!out->smtputf8 && has_non_ascii(out->address, alen))
        return SMTP_PARAM_UTF8_UNDECLARED;
    return SMTP_PARAM_OK;
}

enum smtp_param_status smtp_parse_rcpt(const char *arg, size_t len, bool utf8,
                                       struct smtp_rcpt_args *out)
{
    memset(out, 0, sizeof *out);
    size_t i;
    enum smtp_param_status st = path_arg(arg, len, "to:", &i, out->address);
    if (st != SMTP_PARAM_OK)
        return st;
    size_t alen = strlen(out->address);
    /* RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be accepted. */
    if (!ci_equal(out->address, alen, "postmaster") &&
        !smtp_mailbox_valid(out->address, alen, true))
        return SMTP_PARAM_BAD_ADDRESS;
    unsigned seen = 0;
    while (i < len) {
        while (i < len && arg[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && arg[i] != ' ')
            i++;
        if (i > start && (st = rcpt_param(arg + start, i - start, &seen, out)) != SMTP_PARAM_OK)
            return st;
    }
    if (!utf8 && has_non_ascii(out->address, alen))
        return SMTP_PARAM_UTF8_UNDECLARED;
    return SMTP_PARAM_OK;
}

/* ---- BDAT and normalization ---- */

bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last)
{
    size_t i = 0;
    while (i < len && is_digit((unsigned char)arg[i]))
        i++;
    uint64_t v;
    if (!parse_number(arg, i, &v))
        return false;
    if (i < len && arg[i] != ' ')
        return false;
    size_t j = i;
    while (j < len && arg[j] == ' ')
        j++;
    size_t k = len;
    while (k > j && arg[k - 1] == ' ')
        k--;
    bool is_last = false;
    if (j < k) {
        if (!ci_equal(arg + j, k - j, "last"))
            return false;
        is_last = true;
    }
    *size = v;
    *last = is_last;
    return true;
}

bool smtp_address_normalize(const char *addr, char *out, size_t cap)
{
    size_t n = strlen(addr);
    if (n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return false;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = ascii_lower(addr[i]);
    out[n] = '\0';
    return true;
}
