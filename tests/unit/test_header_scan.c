/* test_header_scan.c: the streaming header scanner, fed whole, byte by byte and in every 2- and
 * 3-chunk split: field detection (case-insensitive, obsolete WSP before the colon), folding, the
 * From value (unfolded, truncated), and where the header section ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header_scan.h"

#define NOT_ENDED ((size_t)-1)

struct outcome {
    size_t end; /* absolute offset where the header section ends, or NOT_ENDED */
    struct header_scan h;
};

static void run(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct outcome *o)
{
    header_scan_init(&o->h);
    o->end = NOT_ENDED;
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        bool was_in = o->h.in_header;
        size_t r = header_scan_feed(&o->h, in + start, end - start);
        if (was_in && !o->h.in_header) {
            assert_true(r <= end - start);
            o->end = start + r;
        } else {
            assert_int_equal(r, end - start);
        }
        start = end;
    }
}

static void assert_same(const struct outcome *a, const struct outcome *b)
{
    assert_int_equal(a->end, b->end);
    assert_int_equal(a->h.in_header, b->h.in_header);
    assert_int_equal(a->h.has_message_id, b->h.has_message_id);
    assert_int_equal(a->h.has_date, b->h.has_date);
    assert_int_equal(a->h.has_from, b->h.has_from);
    assert_int_equal(a->h.blank_separator, b->h.blank_separator);
    assert_int_equal(a->h.from_len, b->h.from_len);
    assert_memory_equal(a->h.from, b->h.from, a->h.from_len + 1);
    assert_int_equal(a->h.from_truncated, b->h.from_truncated);
    assert_int_equal(a->h.from_multiple, b->h.from_multiple);
}

/* Scans `in` whole and in every split; all must agree. Returns the whole-input outcome. */
static void scan_all_splits(const char *in, size_t len, struct outcome *whole)
{
    struct outcome other;
    run(in, len, NULL, 0, whole);
    size_t *cuts = malloc((len + 2) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    run(in, len, cuts, len > 0 ? len - 1 : 0, &other);
    assert_same(whole, &other);
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        run(in, len, cuts, 1, &other);
        assert_same(whole, &other);
    }
    if (len <= 80) {
        for (size_t j = 0; j <= len; j++)
            for (size_t k = j; k <= len; k++) {
                cuts[0] = j;
                cuts[1] = k;
                run(in, len, cuts, 2, &other);
                assert_same(whole, &other);
            }
    }
    free(cuts);
}

#define SCAN(lit, o) scan_all_splits(lit, sizeof(lit) - 1, o)

static void test_complete_header(void **state)
{
    (void)state;
    static const char msg[] = "From: A <a@x.example>\r\nDate: Sat, 28 Nov 2026 00:00:00 +0000\r\n"
                              "Message-ID: <1@x.example>\r\nSubject: hi\r\n\r\nbody\r\n";
    struct outcome o;
    SCAN(msg, &o);
    assert_false(o.h.in_header);
    assert_int_equal(o.end, strstr(msg, "\r\n\r\n") - msg + 2);
    assert_true(o.h.blank_separator);
    assert_true(o.h.has_from);
    assert_true(o.h.has_date);
    assert_true(o.h.has_message_id);
    assert_string_equal(o.h.from, "A <a@x.example>");
    assert_int_equal(o.h.from_len, strlen("A <a@x.example>"));
    assert_false(o.h.from_truncated);
    assert_false(o.h.from_multiple);
}

static void test_names_case_insensitive(void **state)
{
    (void)state;
    static const char msg[] = "message-id: <x@y>\r\nDATE: now\r\nfRoM: b@x.example\r\n\r\n";
    struct outcome o;
    SCAN(msg, &o);
    assert_true(o.h.has_message_id);
    assert_true(o.h.has_date);
    assert_true(o.h.has_from);
    assert_string_equal(o.h.from, "b@x.example");
    assert_int_equal(o.end, sizeof msg - 3);
}

static void test_missing_fields(void **state)
{
    (void)state;
    /* similar names are other fields */
    static const char msg[] = "From-X: y\r\nDates: z\r\nMessage-IDs: q\r\nX-From: w\r\n"
                              "Resent-Date: r\r\n\r\n";
    struct outcome o;
    SCAN(msg, &o);
    assert_false(o.h.has_from);
    assert_false(o.h.has_date);
    assert_false(o.h.has_message_id);
    assert_int_equal(o.h.from_len, 0);
    assert_string_equal(o.h.from, "");
    assert_true(o.h.blank_separator);
}

static void test_folded_from(void **state)
{
    (void)state;
    static const char msg[] = "Subject: a\r\n folded subject\r\nFrom: A\r\n <a@x.example>,\r\n\tB "
                              "<b@y.example>\r\nTo: c@z.example\r\n continued\r\n\r\nbody";
    struct outcome o;
    SCAN(msg, &o);
    assert_true(o.h.has_from);
    assert_string_equal(o.h.from, "A <a@x.example>,\tB <b@y.example>");
    assert_true(o.h.blank_separator);
    assert_int_equal(o.end, strstr(msg, "\r\n\r\n") - msg + 2);

    /* the value may start on a continuation line: leading WSP skipped */
    static const char msg2[] = "From:\r\n  a@x.example\r\n\r\n";
    SCAN(msg2, &o);
    assert_string_equal(o.h.from, "a@x.example");
    /* WSP before the colon (RFC 5322 4.5.3) */
    static const char msg3[] = "From \t: c@x.example\r\nDate : d\r\n\r\n";
    SCAN(msg3, &o);
    assert_true(o.h.has_from);
    assert_true(o.h.has_date);
    assert_string_equal(o.h.from, "c@x.example");
    /* the empty value */
    static const char msg4[] = "From:\r\n\r\n";
    SCAN(msg4, &o);
    assert_true(o.h.has_from);
    assert_int_equal(o.h.from_len, 0);
    assert_int_equal(o.end, 7);
}

static void test_multiple_from(void **state)
{
    (void)state;
    static const char msg[] = "From: first@x.example\r\nfrom: second@x.example\r\n\r\n";
    struct outcome o;
    SCAN(msg, &o);
    assert_true(o.h.from_multiple);
    assert_string_equal(o.h.from, "first@x.example");
}

static void test_from_truncated(void **state)
{
    (void)state;
    static char msg[3000];
    struct outcome o;
    for (size_t n = HEADER_FROM_MAX - 1; n <= HEADER_FROM_MAX + 2; n++) {
        size_t len = (size_t)snprintf(msg, sizeof msg, "From: ");
        memset(msg + len, 'a', n);
        len += n;
        len += (size_t)snprintf(msg + len, sizeof msg - len, "\r\nDate: x\r\n\r\n");
        scan_all_splits(msg, len, &o);
        assert_int_equal(o.h.from_len, n > HEADER_FROM_MAX ? HEADER_FROM_MAX : n);
        assert_int_equal(o.h.from_truncated, n > HEADER_FROM_MAX);
        assert_int_equal(strlen(o.h.from), o.h.from_len);
        assert_true(o.h.has_date);
        assert_true(o.h.blank_separator);
    }
}

static void test_no_header_at_all(void **state)
{
    (void)state;
    struct outcome o;
    /* first line without a colon: exact unless split before the octet that decides */
    static const char hello[] = "Hello world\r\nFrom: a@b\r\n\r\n";
    for (size_t k = 0; k <= sizeof hello - 1; k++) {
        run(hello, sizeof hello - 1, &k, 1, &o);
        assert_int_equal(o.end, k == 0 || k > 6 ? 0 : 13); /* 'w' (6) decides */
        assert_false(o.h.blank_separator);
        assert_false(o.h.in_header);
        assert_false(o.h.has_from);
    }
    /* first line starting with a space */
    SCAN(" x: y\r\n\r\n", &o);
    assert_int_equal(o.end, 0);
    assert_false(o.h.blank_separator);
    SCAN("\tx\r\n", &o);
    assert_int_equal(o.end, 0);
    /* an empty line first: empty header section with its separator */
    SCAN("\r\nbody\r\n", &o);
    assert_int_equal(o.end, 0);
    assert_true(o.h.blank_separator);
    /* a line starting with ':' (empty field name) */
    SCAN(":x\r\n\r\n", &o);
    assert_int_equal(o.end, 0);
    assert_false(o.h.blank_separator);
    /* a first line that ends without a colon */
    run("Subject\r\n\r\n", 11, NULL, 0, &o);
    assert_int_equal(o.end, 0);
    assert_false(o.h.blank_separator);
    /* 8-bit or control octets cannot be in a field name */
    run("Subj\xc3\xa9t: x\r\n\r\n", 14, NULL, 0, &o);
    assert_int_equal(o.end, 0);
    run("Su\x01: x\r\n\r\n", 10, NULL, 0, &o);
    assert_int_equal(o.end, 0);
    run("Su\x7f: x\r\n\r\n", 10, NULL, 0, &o);
    assert_int_equal(o.end, 0);
    run("A: b\r\nSu\x7f: x\r\n\r\n", 16, NULL, 0, &o);
    assert_int_equal(o.end, 6);
    assert_false(o.h.blank_separator);
}

static void test_body_without_separator(void **state)
{
    (void)state;
    /* A line that is not a field ends the section before it. When the line's start is in an
     * earlier chunk than the octet that proves it is no field, the section ends after that line
     * instead (lines are never cut); every other split gives the exact offset. */
    static const char msg[] = "Subject: a\r\nthis is body\r\nmore\r\n";
    const size_t line = 12, decisive = 17, next_line = 26; /* "this" WSP, then 'i' */
    struct outcome whole, o;
    run(msg, sizeof msg - 1, NULL, 0, &whole);
    assert_int_equal(whole.end, line);
    assert_false(whole.h.blank_separator);
    for (size_t k = 0; k <= sizeof msg - 1; k++) {
        run(msg, sizeof msg - 1, &k, 1, &o);
        assert_false(o.h.in_header);
        assert_false(o.h.blank_separator);
        if (k > line && k <= decisive)
            assert_int_equal(o.end, next_line);
        else
            assert_int_equal(o.end, line);
    }
    /* in that fallback an empty line right after the junk line still counts as the separator */
    static const char msg2[] = "Subject: a\r\nthis is\r\n\r\nbody\r\n";
    size_t k = 14;
    run(msg2, sizeof msg2 - 1, &k, 1, &o);
    assert_int_equal(o.end, 21);
    assert_true(o.h.blank_separator);
    /* the junk line may itself end in a chunk with the CR split from its LF */
    size_t cuts[] = {14, 20, 21};
    run(msg2, sizeof msg2 - 1, cuts, 3, &o);
    assert_int_equal(o.end, 21);
    assert_true(o.h.blank_separator);
    /* the fallback when the decisive octet is the CR of a colon-less line */
    static const char msg3[] = "A: b\r\nabc\r\nrest\r\n";
    k = 8;
    run(msg3, sizeof msg3 - 1, &k, 1, &o);
    assert_int_equal(o.end, 11);
    assert_false(o.h.blank_separator);
}

static void test_unterminated_header(void **state)
{
    (void)state;
    /* the message ends inside the header: the caller sees in_header still true */
    struct outcome o;
    SCAN("From: a@b.example\r\nSubject: x\r\n", &o);
    assert_true(o.h.in_header);
    assert_int_equal(o.end, NOT_ENDED);
    assert_true(o.h.has_from);
    assert_string_equal(o.h.from, "a@b.example");
    SCAN("From: a@b.example", &o);
    assert_true(o.h.in_header);
    assert_string_equal(o.h.from, "a@b.example");
    SCAN("", &o);
    assert_true(o.h.in_header);
}

static void test_after_end(void **state)
{
    (void)state;
    struct header_scan h;
    header_scan_init(&h);
    assert_int_equal(header_scan_feed(&h, "", 0), 0);
    assert_true(h.in_header);
    assert_int_equal(header_scan_feed(&h, "A: b\r\n\r\nFrom: x\r\n", 17), 6);
    assert_false(h.in_header);
    /* later chunks are body: returned whole, nothing changes */
    assert_int_equal(header_scan_feed(&h, "From: y\r\nDate: z\r\n\r\n", 20), 20);
    assert_false(h.has_from);
    assert_false(h.has_date);
    assert_true(h.blank_separator);
}

static void test_long_field_name(void **state)
{
    (void)state;
    /* a name longer than the name buffer is still a field (and matches nothing) */
    static char msg[400];
    size_t n = 0;
    memset(msg, 'X', 200);
    n = 200;
    n += (size_t)snprintf(msg + n, sizeof msg - n, ": v\r\nFrom: f@x\r\n\r\n");
    struct outcome o;
    scan_all_splits(msg, n, &o);
    assert_true(o.h.has_from);
    assert_true(o.h.blank_separator);
    assert_int_equal(o.end, n - 2);
    /* "from" + 76 more name octets does not match From */
    memcpy(msg, "From", 4);
    memset(msg + 4, 'f', 76);
    n = 80;
    n += (size_t)snprintf(msg + n, sizeof msg - n, ": v\r\n\r\n");
    scan_all_splits(msg, n, &o);
    assert_false(o.h.has_from);
}

static void test_continuation_not_captured_after_other_field(void **state)
{
    (void)state;
    struct outcome o;
    SCAN("From: a@x\r\nTo: b@y\r\n c@z\r\n\r\n", &o);
    assert_string_equal(o.h.from, "a@x");
    SCAN("To: b@y\r\n c@z\r\nFrom: d@x\r\n\t e@y\r\n\r\n", &o);
    assert_string_equal(o.h.from, "d@x\t e@y");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_header),
        cmocka_unit_test(test_names_case_insensitive),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_folded_from),
        cmocka_unit_test(test_multiple_from),
        cmocka_unit_test(test_from_truncated),
        cmocka_unit_test(test_no_header_at_all),
        cmocka_unit_test(test_body_without_separator),
        cmocka_unit_test(test_unterminated_header),
        cmocka_unit_test(test_after_end),
        cmocka_unit_test(test_long_field_name),
        cmocka_unit_test(test_continuation_not_captured_after_other_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
