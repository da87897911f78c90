/* fuzz_smtp_reply.c: libFuzzer target for the client-side reply parser (src/smtp_reply.c): the
 * input is split into lines at LF (a CR before it dropped, as a client reading CRLF lines does)
 * and fed to smtp_reply_feed; a completed or refused reply starts a new one. After each line the
 * first line is formatted and EHLO keywords looked up. Invariants (abort() on violation): the
 * status is one of the three; text stays NUL-terminated within SMTP_REPLY_TEXT_MAX; at most
 * SMTP_REPLY_LINES_MAX lines; a complete reply has a code 200-559 equal to its first line's;
 * the enhanced code is empty or starts with the class digit of the reply. RFC 5321 4.2, RFC 3463.
 */
#include <string.h>

#include "fuzz_util.h"
#include "smtp_reply.h"

static void check_reply(const struct smtp_reply *r)
{
    FUZZ_CHECK(memchr(r->text, '\0', sizeof r->text) != NULL);
    FUZZ_CHECK(memchr(r->enhanced, '\0', sizeof r->enhanced) != NULL);
    FUZZ_CHECK(r->n_lines <= SMTP_REPLY_LINES_MAX);
    if (r->complete) {
        FUZZ_CHECK(r->code >= 200 && r->code <= 559 && r->code == r->first_code);
    } else {
        FUZZ_CHECK(r->code == 0);
    }
    if (r->enhanced[0] != '\0')
        FUZZ_CHECK(r->enhanced[0] >= '2' && r->enhanced[0] <= '5');
    char first[600], params[256];
    smtp_reply_first_line(r, first, sizeof first);
    FUZZ_CHECK(memchr(first, '\0', sizeof first) != NULL);
    (void)smtp_reply_has_extension(r, "AUTH", params, sizeof params);
    (void)smtp_reply_has_extension(r, "SIZE", params, sizeof params);
    (void)smtp_reply_has_extension(r, "8BITMIME", NULL, 0);
    (void)smtp_reply_has_extension(r, "", params, sizeof params);
    (void)smtp_reply_has_extension(r, "AUTH", params, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct smtp_reply r; /* 8 KB */
    smtp_reply_init(&r);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        char *line = fuzz_dup((const uint8_t *)p, len); /* exact size, for ASan */
        enum smtp_reply_status st = smtp_reply_feed(&r, line, len);
        free(line);
        FUZZ_CHECK(st == SMTP_REPLY_MORE || st == SMTP_REPLY_DONE || st == SMTP_REPLY_BAD);
        check_reply(&r);
        if (st == SMTP_REPLY_DONE)
            FUZZ_CHECK(r.complete);
        if (st != SMTP_REPLY_MORE)
            smtp_reply_init(&r);
        p = nl ? nl + 1 : end;
    }
    return 0;
}
