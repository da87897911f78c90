/* test_dsn.c: dsn_wanted's truth table (RFC 3461 NOTIFY, null sender, a DSN itself) and
 * dsn_compose's notices parsed back: header fields, the multipart/report structure and its
 * boundaries, the per-message and per-recipient delivery-status fields, what part 3 returns
 * (RET=FULL / HDRS / absent / too big / odd originals), folding and the 998-octet limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

#define T_ARRIVAL 1740830398000LL /* Sat, 01 Mar 2025 11:59:58 +0000 */
#define T_NOW 1740830400000LL     /* Sat, 01 Mar 2025 12:00:00 +0000 */

static const char ORIG[] = "From: Alice <alice@example.com>\r\n"
                           "To: bob@example.net\r\n"
                           "Subject: hello\r\n"
                           "\r\n"
                           "Body line 1\r\n"
                           ".leading dot\r\n";
static const char ORIG_HEADERS[] = "From: Alice <alice@example.com>\r\n"
                                   "To: bob@example.net\r\n"
                                   "Subject: hello\r\n";

/* An envelope with up to 4 recipients; notify and orcpt arrays always present. */
struct fixture {
    struct spool_envelope env;
    char *rcpts[4];
    unsigned notify[4];
    char *orcpt[4];
};

static void fixture_init(struct fixture *f, size_t n)
{
    static char *addrs[] = {"bob@example.net", "carol@example.net", "dave@example.org",
                            "erin@example.org"};
    memset(f, 0, sizeof *f);
    snprintf(f->env.queue_id, sizeof f->env.queue_id, "18F3A2B4C72B3C4D");
    snprintf(f->env.sender, sizeof f->env.sender, "alice@example.com");
    f->env.received_ms = T_ARRIVAL;
    for (size_t i = 0; i < n; i++)
        f->rcpts[i] = addrs[i];
    f->env.rcpts = f->rcpts;
    f->env.n_rcpts = n;
    f->env.notify = f->notify;
    f->env.orcpt = f->orcpt;
}

static FILE *file_of(const char *data, size_t n)
{
    FILE *fp = tmpfile();
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    rewind(fp);
    return fp;
}

static struct dsn_rcpt failed_rcpt(size_t index)
{
    struct dsn_rcpt r = {
        .index = index,
        .action = DSN_FAILED,
        .status = "5.1.1",
        .remote_mta = "smarthost.example.net",
        .diagnostic = "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
        .last_attempt_ms = T_NOW,
    };
    return r;
}

/* Composes a notice of `original` (n octets; env->size is set to n unless already set). */
static char *compose(struct fixture *f, const struct dsn_rcpt *rc, size_t nrc, const char *original,
                     size_t n, size_t full_limit, size_t *len)
{
    if (f->env.size == 0)
        f->env.size = n;
    struct dsn_report r = {
        .env = &f->env,
        .reporting_mta = "mail.example.com",
        .now_ms = T_NOW,
        .rcpts = rc,
        .n_rcpts = nrc,
        .full_limit = full_limit,
    };
    FILE *fp = file_of(original, n);
    char *out = dsn_compose(&r, fp, len);
    fclose(fp);
    return out;
}

/* --- a small MIME reader for the notices --- */

struct part {
    const char *head, *body; /* head: its header block; body: its content */
    size_t head_len, body_len;
};

struct notice {
    const char *msg;
    size_t len;
    const char *head;
    size_t head_len;
    char boundary[128];
    struct part parts[6];
    int n_parts;
    bool closed;
};

/* Every line ends in CRLF, no bare CR or LF, none over 998 octets. */
static void assert_lines_ok(const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r') {
            if (i + 1 >= n || p[i + 1] != '\n')
                fail_msg("bare CR at %zu", i);
        } else if (p[i] == '\n') {
            if (i == 0 || p[i - 1] != '\r')
                fail_msg("bare LF at %zu", i);
            if (i - 1 - start > 998)
                fail_msg("line at %zu is %zu octets", start, i - 1 - start);
            start = i + 1;
        }
    }
    assert_int_equal(start, n); /* ends with CRLF */
}

/* The unfolded value of field `name` in a header block, or NULL. out: a static buffer. */
static const char *field(const char *head, size_t len, const char *name)
{
    static char out[8192];
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < len) {
        const char *line = head + i;
        const char *eol = memmem(line, len - i, "\r\n", 2);
        size_t ll = eol ? (size_t)(eol - line) : len - i;
        if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            size_t o = 0;
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            memcpy(out, v, (size_t)(line + ll - v));
            o = (size_t)(line + ll - v);
            size_t j = i + ll + 2;
            while (j < len && (head[j] == ' ' || head[j] == '\t')) {
                const char *e2 = memmem(head + j, len - j, "\r\n", 2);
                size_t l2 = e2 ? (size_t)(e2 - (head + j)) : len - j;
                assert_true(o + l2 < sizeof out);
                memcpy(out + o, head + j, l2);
                o += l2;
                j += l2 + 2;
            }
            out[o] = '\0';
            return out;
        }
        i += ll + 2;
    }
    return NULL;
}

static void parse_notice(struct notice *n, const char *msg, size_t len)
{
    memset(n, 0, sizeof *n);
    n->msg = msg;
    n->len = len;
    assert_lines_ok(msg, len);
    const char *sep = memmem(msg, len, "\r\n\r\n", 4);
    assert_non_null(sep);
    n->head = msg;
    n->head_len = (size_t)(sep - msg) + 2;
    const char *ct = field(n->head, n->head_len, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "multipart/report"));
    assert_non_null(strstr(ct, "report-type=delivery-status"));
    const char *b = strstr(ct, "boundary=\"");
    assert_non_null(b);
    b += strlen("boundary=\"");
    const char *q = strchr(b, '"');
    assert_non_null(q);
    assert_true(q - b > 0 && q - b <= 70); /* RFC 2046 5.1.1 */
    snprintf(n->boundary, sizeof n->boundary, "\r\n--%.*s", (int)(q - b), b);
    size_t bl = strlen(n->boundary);
    const char *p = sep + 2; /* keep the CRLF before a first delimiter */
    const char *end = msg + len;
    const char *d = memmem(p, (size_t)(end - p), n->boundary, bl);
    assert_non_null(d);
    while (d != NULL) {
        const char *after = d + bl;
        if (end - after >= 2 && memcmp(after, "--", 2) == 0) {
            n->closed = true;
            assert_true(end - after == 4 && memcmp(after + 2, "\r\n", 2) == 0);
            break;
        }
        assert_true(end - after >= 2 && memcmp(after, "\r\n", 2) == 0);
        const char *start = after + 2;
        const char *next = memmem(start, (size_t)(end - start), n->boundary, bl);
        assert_non_null(next);
        assert_true(n->n_parts < 6);
        struct part *pt = &n->parts[n->n_parts++];
        pt->head = start;
        const char *hsep = memmem(start, (size_t)(next - start) + 2, "\r\n\r\n", 4);
        if (start[0] == '\r' && start[1] == '\n')
            hsep = start - 2;
        assert_non_null(hsep);
        pt->head_len = (size_t)(hsep - start) + 2;
        pt->body = hsep + 4;
        pt->body_len = next >= pt->body ? (size_t)(next - pt->body) : 0;
        d = next;
    }
    assert_true(n->closed);
}

static const char *part_field(const struct notice *n, int i, const char *name)
{
    return field(n->parts[i].head, n->parts[i].head_len, name);
}

/* Block k (0 = per-message) of the delivery-status part, into blk/blk_len. */
static void status_block(const struct notice *n, int k, const char **blk, size_t *blk_len)
{
    const char *p = n->parts[1].body, *end = p + n->parts[1].body_len;
    for (int i = 0; i < k; i++) {
        const char *s = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        assert_non_null(s);
        p = s + 4;
    }
    const char *s = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    *blk = p;
    *blk_len = s ? (size_t)(s - p) + 2 : (size_t)(end - p);
}

static int status_blocks(const struct notice *n)
{
    int k = 1;
    const char *p = n->parts[1].body, *end = p + n->parts[1].body_len;
    const char *s;
    while ((s = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) != NULL) {
        k++;
        p = s + 4;
    }
    return k;
}

static void assert_field(const char *blk, size_t len, const char *name, const char *want)
{
    const char *v = field(blk, len, name);
    if (want == NULL) {
        if (v != NULL)
            fail_msg("%s present: %s", name, v);
        return;
    }
    if (v == NULL)
        fail_msg("%s missing", name);
    if (strcmp(v, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", name, v, want);
}

/* --- dsn_wanted --- */

static void test_wanted_default_notify(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    assert_true(dsn_wanted(&f.env, 0, DSN_FAILED, false));
    assert_false(dsn_wanted(&f.env, 0, DSN_DELAYED, false));
    assert_true(dsn_wanted(&f.env, 0, DSN_DELAYED, true));
    assert_false(dsn_wanted(&f.env, 0, DSN_DELIVERED, true));
    assert_false(dsn_wanted(&f.env, 0, DSN_RELAYED, true));
    assert_false(dsn_wanted(&f.env, 0, DSN_EXPANDED, true));
    f.env.notify = NULL; /* a version 1 queue file */
    assert_true(dsn_wanted(&f.env, 0, DSN_FAILED, false));
    assert_false(dsn_wanted(&f.env, 0, DSN_DELAYED, false));
    assert_true(dsn_wanted(&f.env, 0, DSN_DELAYED, true));
}

static void test_wanted_never(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    f.notify[0] = DSN_NOTIFY_NEVER;
    for (int a = DSN_FAILED; a <= DSN_EXPANDED; a++) {
        assert_false(dsn_wanted(&f.env, 0, (enum dsn_action)a, false));
        assert_false(dsn_wanted(&f.env, 0, (enum dsn_action)a, true));
    }
}

static void test_wanted_explicit_bits(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 3);
    f.notify[0] = DSN_NOTIFY_SUCCESS;
    f.notify[1] = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
    f.notify[2] = DSN_NOTIFY_DELAY;
    /* SUCCESS only */
    assert_false(dsn_wanted(&f.env, 0, DSN_FAILED, true));
    assert_false(dsn_wanted(&f.env, 0, DSN_DELAYED, true));
    assert_true(dsn_wanted(&f.env, 0, DSN_DELIVERED, false));
    assert_true(dsn_wanted(&f.env, 0, DSN_RELAYED, false));
    assert_true(dsn_wanted(&f.env, 0, DSN_EXPANDED, false));
    /* FAILURE,DELAY: DELAY honoured even when delay warnings are off by default */
    assert_true(dsn_wanted(&f.env, 1, DSN_FAILED, false));
    assert_true(dsn_wanted(&f.env, 1, DSN_DELAYED, false));
    assert_false(dsn_wanted(&f.env, 1, DSN_DELIVERED, false));
    /* DELAY only: no failure notice */
    assert_false(dsn_wanted(&f.env, 2, DSN_FAILED, true));
    assert_true(dsn_wanted(&f.env, 2, DSN_DELAYED, false));
}

static void test_wanted_null_sender_and_dsn(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    f.notify[0] = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
    assert_true(dsn_wanted(&f.env, 0, DSN_FAILED, false));
    f.env.sender[0] = '\0';
    for (int a = DSN_FAILED; a <= DSN_EXPANDED; a++)
        assert_false(dsn_wanted(&f.env, 0, (enum dsn_action)a, true));
    fixture_init(&f, 1);
    f.env.is_dsn = true;
    assert_false(dsn_wanted(&f.env, 0, DSN_FAILED, true));
    assert_false(dsn_wanted(&f.env, 0, DSN_DELAYED, true));
}

static void test_wanted_bad_index(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    assert_false(dsn_wanted(&f.env, 1, DSN_FAILED, true));
    assert_false(dsn_wanted(NULL, 0, DSN_FAILED, true));
}

/* --- dsn_compose --- */

static void test_compose_structure(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len = 0;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_field(n.head, n.head_len, "From",
                 "Mail Delivery System <MAILER-DAEMON@mail.example.com>");
    assert_field(n.head, n.head_len, "To", "<alice@example.com>");
    assert_field(n.head, n.head_len, "Subject", "Undelivered Mail Returned to Sender");
    assert_field(n.head, n.head_len, "Date", "Sat, 01 Mar 2025 12:00:00 +0000");
    assert_field(n.head, n.head_len, "Auto-Submitted", "auto-replied");
    assert_field(n.head, n.head_len, "MIME-Version", "1.0");
    const char *mid = field(n.head, n.head_len, "Message-ID");
    assert_non_null(mid);
    assert_true(strncmp(mid, "<18F3A2B4C72B3C4D.", 18) == 0);
    assert_non_null(strstr(mid, ".dsn@mail.example.com>"));
    assert_int_equal(n.n_parts, 3);
    assert_string_equal(part_field(&n, 0, "Content-Type"), "text/plain; charset=us-ascii");
    assert_string_equal(part_field(&n, 1, "Content-Type"), "message/delivery-status");
    assert_string_equal(part_field(&n, 2, "Content-Type"), "message/rfc822");
    /* the explanation names the recipient and the reply */
    char text[4096];
    snprintf(text, sizeof text, "%.*s", (int)n.parts[0].body_len, n.parts[0].body);
    assert_non_null(strstr(text, "mail.example.com"));
    assert_non_null(strstr(text, "<bob@example.net>: host smarthost.example.net said: 550 5.1.1"));
    /* the report: one per-message block and one recipient block */
    assert_int_equal(status_blocks(&n), 2);
    const char *blk;
    size_t bl;
    status_block(&n, 0, &blk, &bl);
    assert_field(blk, bl, "Reporting-MTA", "dns; mail.example.com");
    assert_field(blk, bl, "X-Submitd-Queue-ID", "18F3A2B4C72B3C4D");
    assert_field(blk, bl, "Arrival-Date", "Sat, 01 Mar 2025 11:59:58 +0000");
    assert_field(blk, bl, "Original-Envelope-Id", NULL);
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Final-Recipient", "rfc822; bob@example.net");
    assert_field(blk, bl, "Action", "failed");
    assert_field(blk, bl, "Status", "5.1.1");
    assert_field(blk, bl, "Remote-MTA", "dns; smarthost.example.net");
    assert_field(blk, bl, "Diagnostic-Code",
                 "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown");
    assert_field(blk, bl, "Last-Attempt-Date", "Sat, 01 Mar 2025 12:00:00 +0000");
    assert_field(blk, bl, "Final-Log-ID", "18F3A2B4C72B3C4D");
    assert_field(blk, bl, "Will-Retry-Until", NULL);
    assert_field(blk, bl, "Original-Recipient", NULL);
    free(out);
}

static void test_ret_absent_returns_full(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Description"), "Undelivered Message");
    assert_null(part_field(&n, 2, "Content-Transfer-Encoding"));
    assert_int_equal(n.parts[2].body_len, strlen(ORIG));
    assert_memory_equal(n.parts[2].body, ORIG, strlen(ORIG));
    free(out);
}

static void test_ret_full_explicit(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "FULL");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    /* exactly at the limit is still returned whole */
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), strlen(ORIG), &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Type"), "message/rfc822");
    assert_int_equal(n.parts[2].body_len, strlen(ORIG));
    assert_memory_equal(n.parts[2].body, ORIG, strlen(ORIG));
    free(out);
}

static void test_ret_hdrs(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "HDRS");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Type"), "text/rfc822-headers");
    assert_string_equal(part_field(&n, 2, "Content-Description"), "Undelivered Message Headers");
    assert_int_equal(n.parts[2].body_len, strlen(ORIG_HEADERS));
    assert_memory_equal(n.parts[2].body, ORIG_HEADERS, strlen(ORIG_HEADERS));
    assert_null(memmem(out, len, "Body line 1", 11));
    free(out);
}

static void test_ret_full_too_big(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "FULL");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), strlen(ORIG) - 1, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Type"), "text/rfc822-headers");
    assert_memory_equal(n.parts[2].body, ORIG_HEADERS, strlen(ORIG_HEADERS));
    assert_int_equal(n.parts[2].body_len, strlen(ORIG_HEADERS));
    assert_non_null(memmem(n.parts[0].body, n.parts[0].body_len, "too large", 9));
    free(out);
}

static void test_envid_and_orcpt(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 2);
    snprintf(f.env.envid, sizeof f.env.envid, "QQ314159");
    f.orcpt[0] = "rfc822;bob@example.net";
    f.orcpt[1] = NULL;
    struct dsn_rcpt rc[2] = {failed_rcpt(0), failed_rcpt(1)};
    size_t len;
    char *out = compose(&f, rc, 2, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_int_equal(status_blocks(&n), 3);
    const char *blk;
    size_t bl;
    status_block(&n, 0, &blk, &bl);
    assert_field(blk, bl, "Original-Envelope-Id", "QQ314159");
    /* RFC 3464 2.2: the per-message fields in ABNF order */
    assert_true(memmem(blk, bl, "Original-Envelope-Id", 20) < memmem(blk, bl, "Reporting-MTA", 13));
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Original-Recipient", "rfc822; bob@example.net");
    assert_field(blk, bl, "Final-Recipient", "rfc822; bob@example.net");
    status_block(&n, 2, &blk, &bl);
    assert_field(blk, bl, "Original-Recipient", NULL);
    assert_field(blk, bl, "Final-Recipient", "rfc822; carol@example.net");
    free(out);
}

static void test_orcpt_array_absent(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    f.env.orcpt = NULL;
    f.env.notify = NULL;
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Original-Recipient", NULL);
    free(out);
}

static void test_mixed_actions(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 3);
    struct dsn_rcpt rc[3] = {failed_rcpt(2), failed_rcpt(0), failed_rcpt(1)};
    rc[1].action = DSN_DELAYED;
    rc[1].status = "4.4.1";
    rc[1].remote_mta = "";
    rc[1].diagnostic = "";
    rc[1].will_retry_until_ms = T_ARRIVAL + 5LL * 86400 * 1000;
    rc[2].action = DSN_DELAYED;
    rc[2].status = "4.2.2";
    rc[2].diagnostic = "452 4.2.2 Mailbox full";
    rc[2].will_retry_until_ms = T_ARRIVAL + 5LL * 86400 * 1000;
    size_t len;
    char *out = compose(&f, rc, 3, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    /* failure wins the subject */
    assert_field(n.head, n.head_len, "Subject", "Undelivered Mail Returned to Sender");
    assert_int_equal(status_blocks(&n), 4);
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Final-Recipient", "rfc822; dave@example.org");
    assert_field(blk, bl, "Action", "failed");
    assert_field(blk, bl, "Will-Retry-Until", NULL);
    status_block(&n, 2, &blk, &bl);
    assert_field(blk, bl, "Final-Recipient", "rfc822; bob@example.net");
    assert_field(blk, bl, "Action", "delayed");
    assert_field(blk, bl, "Status", "4.4.1");
    assert_field(blk, bl, "Remote-MTA", NULL);
    assert_field(blk, bl, "Diagnostic-Code", NULL);
    assert_field(blk, bl, "Will-Retry-Until", "Thu, 06 Mar 2025 11:59:58 +0000");
    status_block(&n, 3, &blk, &bl);
    assert_field(blk, bl, "Action", "delayed");
    assert_field(blk, bl, "Diagnostic-Code", "smtp; 452 4.2.2 Mailbox full");
    /* the explanation has every recipient */
    char text[8192];
    snprintf(text, sizeof text, "%.*s", (int)n.parts[0].body_len, n.parts[0].body);
    assert_non_null(strstr(text, "<dave@example.org>"));
    assert_non_null(strstr(text, "<bob@example.net>: delayed (status 4.4.1)"));
    assert_non_null(strstr(text, "<carol@example.net>: host smarthost.example.net said: 452"));
    assert_non_null(strstr(text, "Thu, 06 Mar 2025"));
    free(out);
}

static void test_subject_by_action(void **state)
{
    (void)state;
    static const struct {
        enum dsn_action a;
        const char *subject, *action;
    } cases[] = {
        {DSN_DELAYED, "Delayed Mail (still being retried)", "delayed"},
        {DSN_DELIVERED, "Successful Mail Delivery Report", "delivered"},
        {DSN_RELAYED, "Successful Mail Delivery Report", "relayed"},
        {DSN_EXPANDED, "Successful Mail Delivery Report", "expanded"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fixture f;
        fixture_init(&f, 1);
        struct dsn_rcpt rc = failed_rcpt(0);
        rc.action = cases[i].a;
        rc.status = cases[i].a == DSN_DELAYED ? "4.4.1" : "2.0.0";
        size_t len;
        char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
        struct notice n;
        parse_notice(&n, out, len);
        assert_field(n.head, n.head_len, "Subject", cases[i].subject);
        const char *blk;
        size_t bl;
        status_block(&n, 1, &blk, &bl);
        assert_field(blk, bl, "Action", cases[i].action);
        free(out);
    }
}

static void test_invalid_status_defaults(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 2);
    struct dsn_rcpt rc[2] = {failed_rcpt(0), failed_rcpt(1)};
    rc[0].status = "";
    rc[1].status = "4.4.1\r\nX-Evil: 1"; /* not a status: replaced */
    rc[1].action = DSN_DELAYED;
    size_t len;
    char *out = compose(&f, rc, 2, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Status", "5.0.0");
    status_block(&n, 2, &blk, &bl);
    assert_field(blk, bl, "Status", "4.0.0");
    assert_null(memmem(out, len, "X-Evil", 6));
    free(out);
}

static void test_remote_mta_host_only(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    rc.remote_mta = "smarthost.example.net[192.0.2.7]:587";
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Remote-MTA", "dns; smarthost.example.net");
    free(out);
}

static void test_long_diagnostic_folded(void **state)
{
    (void)state;
    char diag[3000];
    size_t o = (size_t)snprintf(diag, sizeof diag, "550 5.7.1");
    while (o + 12 < sizeof diag)
        o += (size_t)snprintf(diag + o, sizeof diag - o, " word%05zu", o);
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    rc.diagnostic = diag;
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len); /* no line over 998 */
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    /* folded at spaces: unfolding gives the reply back exactly */
    char want[3100];
    snprintf(want, sizeof want, "smtp; %s", diag);
    assert_field(blk, bl, "Diagnostic-Code", want);
    /* and every line of the report stays under 78 octets where spaces allow */
    const char *p = n.parts[1].body, *end = p + n.parts[1].body_len;
    while (p < end) {
        const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
        assert_non_null(e);
        assert_true(e - p <= 78);
        p = e + 2;
    }
    /* the explanation's lines too */
    p = n.parts[0].body, end = p + n.parts[0].body_len;
    while (p < end) {
        const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
        assert_true(e - p <= 78);
        p = e + 2;
    }
    free(out);
}

static void test_long_word_hard_limit(void **state)
{
    (void)state;
    static char diag[2500];
    memset(diag, 'x', sizeof diag - 1);
    memcpy(diag, "550 ", 4);
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    rc.diagnostic = diag;
    size_t len;
    char *out = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len); /* asserts no line over 998, all CRLF */
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    const char *v = field(blk, bl, "Diagnostic-Code");
    assert_non_null(v);
    /* nothing lost: every x is still there */
    size_t xs = 0;
    for (const char *p = v; *p; p++)
        xs += *p == 'x';
    assert_int_equal(xs, sizeof diag - 1 - 4);
    free(out);
}

static void test_header_only_original(void **state)
{
    (void)state;
    static const char hdr_only[] = "From: a@example.com\r\nSubject: no body\r\n";
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "HDRS");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, hdr_only, strlen(hdr_only), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_int_equal(n.parts[2].body_len, strlen(hdr_only));
    assert_memory_equal(n.parts[2].body, hdr_only, strlen(hdr_only));
    free(out);
    /* and returned whole */
    fixture_init(&f, 1);
    out = compose(&f, &rc, 1, hdr_only, strlen(hdr_only), 50000, &len);
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Type"), "message/rfc822");
    assert_int_equal(n.parts[2].body_len, strlen(hdr_only));
    free(out);
}

static void test_original_without_empty_line_or_crlf(void **state)
{
    (void)state;
    static const char odd[] = "Subject: x\r\nX-Last: no line end";
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "HDRS");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, odd, strlen(odd), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len); /* the part still ends in CRLF */
    static const char want[] = "Subject: x\r\nX-Last: no line end\r\n";
    assert_int_equal(n.parts[2].body_len, strlen(want));
    assert_memory_equal(n.parts[2].body, want, strlen(want));
    free(out);
    /* RET=FULL: the whole, its last line closed by the delimiter's CRLF */
    fixture_init(&f, 1);
    out = compose(&f, &rc, 1, odd, strlen(odd), 50000, &len);
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Type"), "message/rfc822");
    assert_int_equal(n.parts[2].body_len, strlen(odd));
    free(out);
}

static void test_original_without_headers(void **state)
{
    (void)state;
    static const char body_only[] = "\r\njust a body\r\n";
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "HDRS");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, body_only, strlen(body_only), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_int_equal(n.parts[2].body_len, 0);
    assert_null(memmem(out, len, "just a body", 11));
    free(out);
}

static void test_header_cap(void **state)
{
    (void)state;
    size_t big = 100 * 1024;
    char *orig = malloc(big + 32);
    assert_non_null(orig);
    size_t o = 0;
    while (o + 80 < big)
        o += (size_t)snprintf(orig + o, big + 32 - o, "X-Filler-%06zu: %060d\r\n", o, 7);
    o += (size_t)snprintf(orig + o, big + 32 - o, "\r\nbody\r\n");
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.ret, sizeof f.env.ret, "HDRS");
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, orig, o, 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_true(n.parts[2].body_len <= 64 * 1024);
    assert_true(n.parts[2].body_len > 60 * 1024);
    /* cut at a line end: whole lines of the original */
    assert_memory_equal(n.parts[2].body, orig, n.parts[2].body_len);
    assert_memory_equal(n.parts[2].body + n.parts[2].body_len - 2, "\r\n", 2);
    free(out);
    free(orig);
}

static void test_smtputf8_global_types(void **state)
{
    (void)state;
    static const char utf8_orig[] = "From: j\xc3\xb6rg@example.com\r\nSubject: gr\xc3\xbc\xc3\x9f"
                                    "e\r\n\r\nHallo\r\n";
    struct fixture f;
    fixture_init(&f, 1);
    f.env.smtputf8 = true;
    f.rcpts[0] = "j\xc3\xb6rg@example.net";
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, utf8_orig, strlen(utf8_orig), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 0, "Content-Type"), "text/plain; charset=utf-8");
    assert_string_equal(part_field(&n, 1, "Content-Type"), "message/global-delivery-status");
    assert_string_equal(part_field(&n, 2, "Content-Type"), "message/global");
    assert_string_equal(part_field(&n, 2, "Content-Transfer-Encoding"), "8bit");
    const char *blk;
    size_t bl;
    status_block(&n, 1, &blk, &bl);
    assert_field(blk, bl, "Final-Recipient", "utf-8; j\xc3\xb6rg@example.net");
    free(out);
    /* headers only: message/global-headers */
    fixture_init(&f, 1);
    f.env.smtputf8 = true;
    snprintf(f.env.ret, sizeof f.env.ret, "HDRS");
    out = compose(&f, &rc, 1, utf8_orig, strlen(utf8_orig), 50000, &len);
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Type"), "message/global-headers");
    free(out);
}

static void test_8bit_original_marked(void **state)
{
    (void)state;
    static const char eight[] = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n";
    struct fixture f;
    fixture_init(&f, 1);
    snprintf(f.env.body, sizeof f.env.body, "8BITMIME");
    struct dsn_rcpt rc = failed_rcpt(0);
    rc.diagnostic = "550 caf\xc3\xa9 refused"; /* 8-bit in a 7-bit report becomes '?' */
    size_t len;
    char *out = compose(&f, &rc, 1, eight, strlen(eight), 50000, &len);
    struct notice n;
    parse_notice(&n, out, len);
    assert_string_equal(part_field(&n, 2, "Content-Transfer-Encoding"), "8bit");
    assert_null(part_field(&n, 1, "Content-Transfer-Encoding"));
    for (size_t i = 0; i < n.parts[1].body_len; i++)
        assert_true((unsigned char)n.parts[1].body[i] < 0x80);
    free(out);
}

static void test_refusals(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    /* null sender: never a notice */
    f.env.sender[0] = '\0';
    errno = 0;
    assert_null(compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len));
    assert_int_equal(errno, EINVAL);
    /* a recipient index beyond the envelope */
    fixture_init(&f, 1);
    rc.index = 1;
    errno = 0;
    assert_null(compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len));
    assert_int_equal(errno, EINVAL);
    /* no recipients */
    rc.index = 0;
    errno = 0;
    assert_null(compose(&f, &rc, 0, ORIG, strlen(ORIG), 50000, &len));
    assert_int_equal(errno, EINVAL);
}

static void test_short_queue_file(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    f.env.size = strlen(ORIG) + 100; /* the file is shorter than the envelope says */
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    errno = 0;
    assert_null(compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &len));
    assert_int_equal(errno, EIO);
}

static void test_boundary_and_id_unique(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t l1, l2;
    char *a = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &l1);
    char *b = compose(&f, &rc, 1, ORIG, strlen(ORIG), 50000, &l2);
    struct notice na, nb;
    parse_notice(&na, a, l1);
    parse_notice(&nb, b, l2);
    assert_string_not_equal(na.boundary, nb.boundary);
    char mid[256];
    snprintf(mid, sizeof mid, "%s", field(na.head, na.head_len, "Message-ID"));
    assert_string_not_equal(mid, field(nb.head, nb.head_len, "Message-ID"));
    /* the boundary occurs only as delimiters: 3 parts + the close + the Content-Type */
    size_t count = 0;
    const char *bd = na.boundary + 4;
    for (const char *p = a; (p = strstr(p, bd)) != NULL; p++)
        count++;
    assert_int_equal(count, 5);
    free(a);
    free(b);
}

static void test_long_line_original_not_returned_whole(void **state)
{
    (void)state;
    size_t n = 1200;
    char *orig = malloc(n + 64);
    assert_non_null(orig);
    size_t o = (size_t)snprintf(orig, n + 64, "Subject: x\r\n\r\n");
    memset(orig + o, 'y', 1100);
    o += 1100;
    memcpy(orig + o, "\r\n", 2);
    o += 2;
    struct fixture f;
    fixture_init(&f, 1);
    struct dsn_rcpt rc = failed_rcpt(0);
    size_t len;
    char *out = compose(&f, &rc, 1, orig, o, 50000, &len);
    struct notice n2;
    parse_notice(&n2, out, len); /* no line over 998 */
    assert_string_equal(part_field(&n2, 2, "Content-Type"), "text/rfc822-headers");
    assert_int_equal(n2.parts[2].body_len, strlen("Subject: x\r\n"));
    free(out);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wanted_default_notify),
        cmocka_unit_test(test_wanted_never),
        cmocka_unit_test(test_wanted_explicit_bits),
        cmocka_unit_test(test_wanted_null_sender_and_dsn),
        cmocka_unit_test(test_wanted_bad_index),
        cmocka_unit_test(test_compose_structure),
        cmocka_unit_test(test_ret_absent_returns_full),
        cmocka_unit_test(test_ret_full_explicit),
        cmocka_unit_test(test_ret_hdrs),
        cmocka_unit_test(test_ret_full_too_big),
        cmocka_unit_test(test_envid_and_orcpt),
        cmocka_unit_test(test_orcpt_array_absent),
        cmocka_unit_test(test_mixed_actions),
        cmocka_unit_test(test_subject_by_action),
        cmocka_unit_test(test_invalid_status_defaults),
        cmocka_unit_test(test_remote_mta_host_only),
        cmocka_unit_test(test_long_diagnostic_folded),
        cmocka_unit_test(test_long_word_hard_limit),
        cmocka_unit_test(test_header_only_original),
        cmocka_unit_test(test_original_without_empty_line_or_crlf),
        cmocka_unit_test(test_original_without_headers),
        cmocka_unit_test(test_header_cap),
        cmocka_unit_test(test_smtputf8_global_types),
        cmocka_unit_test(test_8bit_original_marked),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_short_queue_file),
        cmocka_unit_test(test_boundary_and_id_unique),
        cmocka_unit_test(test_long_line_original_not_returned_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
