/* dsn.c: delivery status notifications (dsn.h; docs/delivery.md, "Bounces (DSN)"). Owns the
 * decision whether a recipient gets a notice (RFC 3461 4.1 NOTIFY, 6.1 never for a null sender
 * or a DSN) and the notice itself: an RFC 6522 multipart/report with an RFC 3464
 * message/delivery-status part (RFC 6533 message/global-delivery-status and message/global
 * when the original used SMTPUTF8), RFC 5322 header fields with RFC 3834 5 Auto-Submitted,
 * CRLF line ends and no line over 998 octets (RFC 5322 2.1.1). Pure: reads the original from
 * the FILE* it is given, writes nothing. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "dsn.h"
#include "protocol_limits.h"

/* RFC 5322 2.1.1: lines SHOULD stay under 78 octets and MUST stay within 998. */
#define DSN_FOLD_SOFT 78
#define DSN_FOLD_HARD SMTP_TEXT_LINE_CONTENT_MAX
/* The returned header section (RET=HDRS, or a message over full_limit) is cut at this size. */
#define DSN_HEADER_CAP (64 * 1024)
/* Random octets in a boundary (hex-encoded: 32 characters). */
#define DSN_BOUNDARY_RANDOM 16

/* A growing output buffer; the first failure (ENOMEM) sticks and later appends do nothing. */
struct buf {
    char *p;
    size_t len, cap;
    int err;
};

static void buf_add(struct buf *b, const void *s, size_t n)
{
    if (b->err != 0 || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->err = ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = b->err ? b->err : EINVAL;
        return;
    }
    buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* One octet of a value as it may appear in a header field or text line: controls (CR, LF,
 * TAB, ...) become a space; octets >= 0x80 stay only in an internationalized notice (RFC
 * 6533), else they become '?'. */
static char clean_octet(unsigned char c, bool utf8)
{
    if (c < 0x20 || c == 0x7f)
        return ' ';
    if (c >= 0x80 && !utf8)
        return '?';
    return (char)c;
}

/* Appends text from column col, folded: at a space before DSN_FOLD_SOFT where possible, and
 * always before DSN_FOLD_HARD. cont == NULL: a header field body (the fold is CRLF before the
 * space, so unfolding gives the value back, except where a word alone passed the hard limit);
 * else text lines, continued with cont. Ends with CRLF. */
static void put_folded(struct buf *b, size_t col, const char *text, bool utf8, const char *cont)
{
    const char *p = text;
    while (*p == ' ')
        p++;
    size_t end = strlen(p);
    while (end > 0 && (p[end - 1] == ' ' || (unsigned char)p[end - 1] < 0x20))
        end--;
    size_t cont_len = cont ? strlen(cont) : 0;
    size_t i = 0;
    bool line_has_word = false;
    while (i < end) {
        size_t sp = 0;
        while (i + sp < end && p[i + sp] == ' ')
            sp++;
        size_t w = sp;
        while (i + w < end && p[i + w] != ' ')
            w++;
        if (sp > 0 && line_has_word && col + w > DSN_FOLD_SOFT) {
            buf_str(b, "\r\n");
            col = 0;
            if (cont != NULL) {
                buf_str(b, cont);
                col = cont_len;
                i += sp; /* the continuation replaces the spaces */
                w -= sp;
            }
        }
        for (size_t k = 0; k < w; k++) {
            if (col >= DSN_FOLD_HARD) {
                buf_str(b, "\r\n");
                buf_str(b, cont ? cont : " ");
                col = cont ? cont_len : 1;
            }
            char c = clean_octet((unsigned char)p[i + k], utf8);
            buf_add(b, &c, 1);
            col++;
        }
        line_has_word = true;
        i += w;
    }
    buf_str(b, "\r\n");
}

static void put_field(struct buf *b, const char *name, const char *value, bool utf8)
{
    buf_str(b, name);
    buf_str(b, ": ");
    put_folded(b, strlen(name) + 2, value, utf8, NULL);
}

/* RFC 5322 3.3 date-time in UTC, independent of the locale. */
static void format_date(char out[40], int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        t = 0;
        gmtime_r(&t, &tm);
    }
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* RFC 3463 status "d.ddd.ddd" with class 2, 4 or 5. */
static bool status_valid(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        size_t n = 0;
        while (p[n] >= '0' && p[n] <= '9')
            n++;
        if (n == 0 || n > 3 || (part == 0 && p[n] != '.') || (part == 1 && p[n] != '\0'))
            return false;
        p += n + 1;
    }
    return true;
}

static const char *action_name(enum dsn_action a)
{
    switch (a) {
    case DSN_FAILED:
        return "failed";
    case DSN_DELAYED:
        return "delayed";
    case DSN_DELIVERED:
        return "delivered";
    case DSN_RELAYED:
        return "relayed";
    case DSN_EXPANDED:
        return "expanded";
    }
    return "failed";
}

static const char *status_of(const struct dsn_rcpt *rc)
{
    if (status_valid(rc->status))
        return rc->status;
    switch (rc->action) {
    case DSN_FAILED:
        return "5.0.0";
    case DSN_DELAYED:
        return "4.0.0";
    default:
        return "2.0.0";
    }
}

bool dsn_wanted(const struct spool_envelope *env, size_t index, enum dsn_action action,
                bool delay_default)
{
    if (env == NULL || env->sender[0] == '\0' || env->is_dsn || index >= env->n_rcpts)
        return false;
    unsigned bits = env->notify ? env->notify[index] : 0;
    if (bits & DSN_NOTIFY_NEVER)
        return false;
    if (bits == 0) /* RFC 3461 4.1: not given means FAILURE (and DELAY, by configuration) */
        return action == DSN_FAILED || (action == DSN_DELAYED && delay_default);
    switch (action) {
    case DSN_FAILED:
        return (bits & DSN_NOTIFY_FAILURE) != 0;
    case DSN_DELAYED:
        return (bits & DSN_NOTIFY_DELAY) != 0;
    case DSN_DELIVERED:
    case DSN_RELAYED:
    case DSN_EXPANDED:
        return (bits & DSN_NOTIFY_SUCCESS) != 0;
    }
    return false;
}

/* "host" from a remote given as "host[address]:port" (delivery_result.remote) or "host". */
static void mta_name(char *out, size_t cap, const char *remote)
{
    size_t n = strcspn(remote, "[ ");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, remote, n);
    out[n] = '\0';
}

/* The subject's action: failed if any failed, else delayed if any, else a success. */
static enum dsn_action main_action(const struct dsn_report *r)
{
    enum dsn_action a = DSN_DELIVERED;
    for (size_t i = 0; i < r->n_rcpts; i++) {
        if (r->rcpts[i].action == DSN_FAILED)
            return DSN_FAILED;
        if (r->rcpts[i].action == DSN_DELAYED)
            a = DSN_DELAYED;
    }
    return a;
}

/* What the notice returns of the original (part 3). */
enum dsn_return { RETURN_FULL, RETURN_HEADERS, RETURN_HEADERS_TOO_BIG };

static const char *const group_intro[] = {
    [DSN_FAILED] = "Your message could not be delivered to the recipients below. The mail "
                   "system has given up.",
    [DSN_DELAYED] = "Your message could not be delivered yet to the recipients below. The mail "
                    "system will keep trying until %s; you need not send it again.",
    [DSN_DELIVERED] = "Your message was delivered to the recipients below.",
    [DSN_RELAYED] = "Your message was passed on to the recipients below by a system that does "
                    "not send delivery notices, so no further notice will come for them.",
    [DSN_EXPANDED] = "Your message was delivered to the recipients below, which passed it on "
                     "to further recipients.",
};

/* Part 1: the explanation for people (RFC 6522 3). */
static void compose_text(struct buf *b, const struct dsn_report *r, enum dsn_return ret, bool utf8)
{
    const struct spool_envelope *env = r->env;
    char line[600], date[40], host[SMTP_DOMAIN_MAX + 1];
    snprintf(line, sizeof line, "This is the mail system at host %s.", r->reporting_mta);
    put_folded(b, 0, line, utf8, "");
    for (int a = DSN_FAILED; a <= DSN_EXPANDED; a++) {
        int64_t until = 0;
        bool any = false;
        for (size_t i = 0; i < r->n_rcpts; i++) {
            if ((int)r->rcpts[i].action != a)
                continue;
            any = true;
            if (r->rcpts[i].will_retry_until_ms > until)
                until = r->rcpts[i].will_retry_until_ms;
        }
        if (!any)
            continue;
        format_date(date, until);
        snprintf(line, sizeof line, group_intro[a], until > 0 ? date : "it expires");
        buf_str(b, "\r\n");
        put_folded(b, 0, line, utf8, "");
        buf_str(b, "\r\n");
        for (size_t i = 0; i < r->n_rcpts; i++) {
            const struct dsn_rcpt *rc = &r->rcpts[i];
            if ((int)rc->action != a)
                continue;
            const char *addr = env->rcpts[rc->index];
            const char *diag = rc->diagnostic ? rc->diagnostic : "";
            mta_name(host, sizeof host, rc->remote_mta ? rc->remote_mta : "");
            struct buf one = {0};
            buf_fmt(&one, "<%s>: ", addr);
            if (host[0] != '\0' && diag[0] != '\0')
                buf_fmt(&one, "host %s said: ", host);
            if (diag[0] != '\0')
                buf_str(&one, diag);
            else if (host[0] != '\0')
                buf_fmt(&one, "%s by host %s (status %s)", action_name(rc->action), host,
                        status_of(rc));
            else
                buf_fmt(&one, "%s (status %s)", action_name(rc->action), status_of(rc));
            if (one.err != 0)
                b->err = one.err;
            else
                put_folded(b, 0, one.p, utf8, "    ");
            buf_free(&one);
        }
    }
    buf_str(b, "\r\n");
    if (ret == RETURN_FULL)
        put_folded(b, 0, "The message is attached below.", utf8, "");
    else if (ret == RETURN_HEADERS)
        put_folded(b, 0, "The header section of the message is attached below.", utf8, "");
    else
        put_folded(b, 0,
                   "The message was too large to return in full; its header section is "
                   "attached below.",
                   utf8, "");
}

/* "rfc822;bob@x" -> "rfc822; bob@x" (RFC 3464 2.3.1); one without a type is rfc822. */
static void put_original_recipient(struct buf *b, const char *orcpt, bool utf8)
{
    char value[DSN_ORCPT_MAX + 16];
    const char *semi = strchr(orcpt, ';');
    if (semi == NULL) {
        snprintf(value, sizeof value, "rfc822; %s", orcpt);
    } else {
        const char *addr = semi + 1;
        while (*addr == ' ')
            addr++;
        snprintf(value, sizeof value, "%.*s; %s", (int)(semi - orcpt), orcpt, addr);
    }
    put_field(b, "Original-Recipient", value, utf8);
}

/* Part 2: the machine-readable report (RFC 3464 2.1-2.3, in the ABNF's field order). */
static void compose_status(struct buf *b, const struct dsn_report *r, bool utf8)
{
    const struct spool_envelope *env = r->env;
    char date[40], value[1200], host[SMTP_DOMAIN_MAX + 1];
    if (env->envid[0] != '\0')
        put_field(b, "Original-Envelope-Id", env->envid, utf8);
    snprintf(value, sizeof value, "dns; %s", r->reporting_mta);
    put_field(b, "Reporting-MTA", value, utf8);
    if (env->received_ms > 0) {
        format_date(date, env->received_ms);
        put_field(b, "Arrival-Date", date, utf8);
    }
    put_field(b, "X-Submitd-Queue-ID", env->queue_id, utf8);
    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        const char *addr = env->rcpts[rc->index];
        buf_str(b, "\r\n");
        if (env->orcpt != NULL && env->orcpt[rc->index] != NULL && env->orcpt[rc->index][0])
            put_original_recipient(b, env->orcpt[rc->index], utf8);
        /* RFC 6533 3: a non-ASCII address is of type utf-8 */
        snprintf(value, sizeof value, "%s; %s", is_ascii(addr) ? "rfc822" : "utf-8", addr);
        put_field(b, "Final-Recipient", value, utf8);
        put_field(b, "Action", action_name(rc->action), utf8);
        put_field(b, "Status", status_of(rc), utf8);
        mta_name(host, sizeof host, rc->remote_mta ? rc->remote_mta : "");
        if (host[0] != '\0') {
            snprintf(value, sizeof value, "dns; %s", host);
            put_field(b, "Remote-MTA", value, utf8);
        }
        if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0') {
            static const char name[] = "Diagnostic-Code: smtp; ";
            buf_str(b, name);
            put_folded(b, sizeof name - 1, rc->diagnostic, utf8, NULL);
        }
        if (rc->last_attempt_ms > 0) {
            format_date(date, rc->last_attempt_ms);
            put_field(b, "Last-Attempt-Date", date, utf8);
        }
        put_field(b, "Final-Log-ID", env->queue_id, utf8);
        if (rc->action == DSN_DELAYED && rc->will_retry_until_ms > 0) {
            format_date(date, rc->will_retry_until_ms);
            put_field(b, "Will-Retry-Until", date, utf8);
        }
    }
}

/* Reads up to want octets of the original; fewer only at its end. -1 (errno) on a read
 * error, or when exact and the file is shorter than want. */
static int read_original(FILE *msg, size_t want, bool exact, struct buf *out)
{
    char chunk[16384];
    while (out->len < want && out->err == 0) {
        size_t ask = want - out->len < sizeof chunk ? want - out->len : sizeof chunk;
        size_t got = fread(chunk, 1, ask, msg);
        buf_add(out, chunk, got);
        if (got < ask) {
            if (ferror(msg)) {
                if (errno == 0)
                    errno = EIO;
                return -1;
            }
            if (exact) {
                errno = EIO; /* the queue file is shorter than its envelope says */
                return -1;
            }
            break;
        }
    }
    if (out->err != 0) {
        errno = out->err;
        return -1;
    }
    return 0;
}

/* Length of the longest line (without its CRLF). */
static size_t longest_line(const char *p, size_t n)
{
    size_t longest = 0, start = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            if (i - start > longest)
                longest = i - start;
            start = i + 1;
        }
    }
    return n - start > longest ? n - start : longest;
}

/* The header section of what `data` holds (all of it when complete): the lines before the
 * first empty one, each with its CRLF; stops before a line over 998 octets and before an
 * incomplete last line of a cut read. */
static size_t header_section(const char *data, size_t n, bool complete)
{
    size_t start = 0;
    while (start < n) {
        const char *nl = memchr(data + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - data) + 1 : n; /* after the line's LF */
        size_t content = end - start;
        if (nl != NULL)
            content -= (content >= 2 && data[end - 2] == '\r') ? 2 : 1;
        if (nl != NULL && content == 0)
            break; /* the empty line */
        if (content > DSN_FOLD_HARD || (nl == NULL && !complete))
            break;
        start = end;
    }
    return start;
}

static bool has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return true;
    return false;
}

/* Part 3's content: the whole original or its header section. */
static int compose_original(struct buf *out, const struct dsn_report *r, FILE *msg,
                            enum dsn_return *ret)
{
    const struct spool_envelope *env = r->env;
    bool want_full = strcasecmp(env->ret, "HDRS") != 0;
    if (want_full && env->size <= r->full_limit) {
        if (read_original(msg, (size_t)env->size, true, out) == -1)
            return -1;
        /* a line too long for a mail message cannot be returned whole */
        if (longest_line(out->p ? out->p : "", out->len) <= DSN_FOLD_HARD) {
            *ret = RETURN_FULL;
            return 0;
        }
        size_t keep = header_section(out->p, out->len, true);
        out->len = keep < DSN_HEADER_CAP ? keep : header_section(out->p, DSN_HEADER_CAP, false);
        *ret = RETURN_HEADERS_TOO_BIG;
    } else {
        size_t want = env->size < DSN_HEADER_CAP ? (size_t)env->size : DSN_HEADER_CAP;
        if (read_original(msg, want, false, out) == -1)
            return -1;
        out->len = header_section(out->p ? out->p : "", out->len, out->len == env->size);
        *ret = want_full ? RETURN_HEADERS_TOO_BIG : RETURN_HEADERS;
    }
    /* the section ends with its last line's CRLF; a final line without one gets one */
    if (out->len > 0 && out->p[out->len - 1] != '\n')
        buf_str(out, "\r\n");
    return 0;
}

static bool contains(const struct buf *b, const char *needle)
{
    return b->len > 0 && memmem(b->p, b->len, needle, strlen(needle)) != NULL;
}

static void put_part(struct buf *b, const char *boundary, const char *description, const char *type,
                     const struct buf *content)
{
    buf_fmt(b, "\r\n--%s\r\n", boundary);
    buf_fmt(b, "Content-Description: %s\r\n", description);
    buf_fmt(b, "Content-Type: %s\r\n", type);
    if (has_8bit(content->p, content->len))
        buf_str(b, "Content-Transfer-Encoding: 8bit\r\n");
    buf_str(b, "\r\n");
    buf_add(b, content->p, content->len);
}

static const char *part3_description(enum dsn_action a, enum dsn_return ret)
{
    bool full = ret == RETURN_FULL;
    if (a == DSN_FAILED || a == DSN_DELAYED)
        return full ? "Undelivered Message" : "Undelivered Message Headers";
    return full ? "Delivered Message" : "Delivered Message Headers";
}

static const char *subject_of(enum dsn_action a)
{
    if (a == DSN_FAILED)
        return "Undelivered Mail Returned to Sender";
    if (a == DSN_DELAYED)
        return "Delayed Mail (still being retried)";
    return "Successful Mail Delivery Report";
}

static bool report_valid(const struct dsn_report *r, FILE *msg, size_t *len)
{
    if (r == NULL || r->env == NULL || msg == NULL || len == NULL || r->rcpts == NULL ||
        r->n_rcpts == 0 || r->reporting_mta == NULL || r->reporting_mta[0] == '\0' ||
        r->env->sender[0] == '\0' || r->env->rcpts == NULL)
        return false;
    for (size_t i = 0; i < r->n_rcpts; i++)
        if (r->rcpts[i].index >= r->env->n_rcpts || r->rcpts[i].action > DSN_EXPANDED)
            return false;
    return true;
}

char *dsn_compose(const struct dsn_report *r, FILE *msg, size_t *len)
{
    if (!report_valid(r, msg, len)) {
        errno = EINVAL;
        return NULL;
    }
    if (sodium_init() < 0) {
        errno = EIO;
        return NULL;
    }
    const struct spool_envelope *env = r->env;
    bool utf8 = env->smtputf8;
    enum dsn_action main = main_action(r);
    enum dsn_return ret = RETURN_HEADERS;
    struct buf text = {0}, status = {0}, orig = {0}, out = {0};
    char *result = NULL;
    int saved = 0;

    if (compose_original(&orig, r, msg, &ret) == -1) {
        saved = errno;
        goto done;
    }
    compose_text(&text, r, ret, utf8);
    compose_status(&status, r, utf8);
    if (text.err || status.err || orig.err) {
        saved = ENOMEM;
        goto done;
    }

    /* RFC 2046 5.1.1: the boundary must not occur in any part; 128 random bits make that all
     * but certain, and the check below makes it certain */
    char boundary[64], rnd_hex[2 * DSN_BOUNDARY_RANDOM + 1];
    unsigned char rnd[DSN_BOUNDARY_RANDOM];
    for (int tries = 0;; tries++) {
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(rnd_hex, sizeof rnd_hex, rnd, sizeof rnd);
        snprintf(boundary, sizeof boundary, "=_submitd_%s", rnd_hex);
        if (!contains(&text, boundary) && !contains(&status, boundary) &&
            !contains(&orig, boundary))
            break;
        if (tries >= 8) {
            saved = EAGAIN;
            goto done;
        }
    }

    char date[40], value[SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 128];
    snprintf(value, sizeof value, "Mail Delivery System <MAILER-DAEMON@%s>", r->reporting_mta);
    put_field(&out, "From", value, utf8);
    snprintf(value, sizeof value, "<%s>", env->sender);
    put_field(&out, "To", value, utf8);
    put_field(&out, "Subject", subject_of(main), utf8);
    format_date(date, r->now_ms);
    put_field(&out, "Date", date, utf8);
    snprintf(value, sizeof value, "<%s.%lld.%.8s.dsn@%s>", env->queue_id[0] ? env->queue_id : "0",
             (long long)r->now_ms, rnd_hex + 16, r->reporting_mta);
    put_field(&out, "Message-ID", value, utf8);
    put_field(&out, "Auto-Submitted", "auto-replied", utf8);
    put_field(&out, "MIME-Version", "1.0", utf8);
    buf_fmt(&out,
            "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            "\tboundary=\"%s\"\r\n",
            boundary);
    buf_str(&out, "\r\nThis is a MIME-encapsulated message.\r\n");
    put_part(&out, boundary, "Notification",
             utf8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii", &text);
    put_part(&out, boundary, "Delivery report",
             utf8 ? "message/global-delivery-status" : "message/delivery-status", &status);
    const char *type;
    if (ret == RETURN_FULL)
        type = utf8 ? "message/global" : "message/rfc822";
    else
        type = utf8 ? "message/global-headers" : "text/rfc822-headers";
    put_part(&out, boundary, part3_description(main, ret), type, &orig);
    buf_fmt(&out, "\r\n--%s--\r\n", boundary);
    if (out.err) {
        saved = out.err;
        goto done;
    }
    result = out.p;
    *len = out.len;
    out.p = NULL;
done:
    buf_free(&text);
    buf_free(&status);
    buf_free(&orig);
    buf_free(&out);
    if (result == NULL)
        errno = saved ? saved : EIO;
    return result;
}
