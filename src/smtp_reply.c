/* smtp_reply.c: the client side of RFC 5321 4.2 (reply lines, multi-line replies, 4.2.1) and
 * RFC 3463 enhanced status codes (as carried per RFC 2034), and EHLO keyword lookup (RFC 5321
 * 4.1.1.1). Pure functions of the lines given: no I/O. */
#include "smtp_reply.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void smtp_reply_init(struct smtp_reply *r)
{
    memset(r, 0, sizeof *r);
}

/* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39. */
static int reply_code_of(const char *line, size_t len)
{
    if (len < 3)
        return -1;
    if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || line[2] < '0' ||
        line[2] > '9')
        return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* Digits from s (at most max of them, at least one); returns how many, 0 when none. */
static size_t digits(const char *s, size_t len, size_t max)
{
    size_t n = 0;
    while (n < len && n <= max && isdigit((unsigned char)s[n]))
        n++;
    return n > max ? 0 : n;
}

/* RFC 3463 2: status-code = class "." subject "." detail; class 2 / 4 / 5, subject and detail
 * 1 to 3 digits, followed by a space or the end of the line. Returns its length or 0. */
static size_t enhanced_len(const char *s, size_t len)
{
    if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    size_t i = 2;
    size_t n = digits(s + i, len - i, 3);
    if (n == 0)
        return 0;
    i += n;
    if (i >= len || s[i] != '.')
        return 0;
    i++;
    n = digits(s + i, len - i, 3);
    if (n == 0)
        return 0;
    i += n;
    if (i < len && s[i] != ' ')
        return 0;
    return i;
}

static void append_text(struct smtp_reply *r, const char *s, size_t n)
{
    size_t used = strlen(r->text);
    size_t sep = r->n_lines > 0 ? 1 : 0;
    if (used + sep + n >= sizeof r->text) {
        r->truncated = true;
        if (used + sep >= sizeof r->text)
            return;
        n = sizeof r->text - 1 - used - sep;
    }
    if (sep)
        r->text[used++] = '\n';
    memcpy(r->text + used, s, n);
    r->text[used + n] = '\0';
}

enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
    if (r->complete)
        return SMTP_REPLY_BAD;
    int code = reply_code_of(line, len);
    if (code < 0 || (len > 3 && line[3] != ' ' && line[3] != '-'))
        return SMTP_REPLY_BAD;
    if (memchr(line, '\0', len) != NULL || memchr(line, '\n', len) != NULL)
        return SMTP_REPLY_BAD;
    if (r->n_lines > 0 && code != r->first_code)
        return SMTP_REPLY_BAD; /* RFC 5321 4.2.1: every line of a reply has the same code */
    if (r->n_lines >= SMTP_REPLY_LINES_MAX)
        return SMTP_REPLY_BAD;
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    if (r->n_lines == 0) {
        r->first_code = code;
        size_t e = enhanced_len(text, tlen);
        if (e > 0 && e < sizeof r->enhanced) {
            memcpy(r->enhanced, text, e);
            r->enhanced[e] = '\0';
        }
    }
    append_text(r, text, tlen);
    r->n_lines++;
    if (len > 3 && line[3] == '-')
        return SMTP_REPLY_MORE;
    r->code = code;
    r->complete = true;
    return SMTP_REPLY_DONE;
}

void smtp_reply_first_line(const struct smtp_reply *r, char *out, size_t cap)
{
    if (cap == 0)
        return;
    const char *nl = strchr(r->text, '\n');
    size_t n = nl ? (size_t)(nl - r->text) : strlen(r->text);
    int code = r->code ? r->code : r->first_code;
    if (n == 0)
        snprintf(out, cap, "%d", code);
    else
        snprintf(out, cap, "%d %.*s", code, (int)n, r->text);
}

bool smtp_reply_has_extension(const struct smtp_reply *r, const char *keyword, char *params,
                              size_t cap)
{
    size_t klen = strlen(keyword);
    if (klen == 0)
        return false;
    /* RFC 5321 4.1.1.1: the first line greets; each following line is "keyword [params]". */
    const char *p = strchr(r->text, '\n');
    bool found_legacy = false;
    while (p != NULL) {
        p++;
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= klen && strncasecmp(p, keyword, klen) == 0 &&
            (n == klen || p[klen] == ' ' || p[klen] == '=')) {
            const char *v = p + klen;
            size_t vn = n - klen;
            bool legacy = vn > 0 && v[0] == '='; /* "AUTH=LOGIN PLAIN" from older servers */
            while (vn > 0 && (*v == ' ' || *v == '=')) {
                v++;
                vn--;
            }
            while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\r'))
                vn--;
            if (!legacy || !found_legacy) {
                if (params != NULL && cap > 0)
                    snprintf(params, cap, "%.*s", (int)vn, v);
                if (!legacy)
                    return true; /* the standard form wins over a legacy one */
                found_legacy = true;
            }
        }
        p = end;
    }
    return found_legacy;
}
