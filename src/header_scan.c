/* header_scan.c: streaming scan of a message's header section as it is received: notes whether
 * Message-ID:, Date: and From: are present, captures the first From: value unfolded, and finds
 * where the header section ends, so that submission can add the missing fields there without
 * buffering the message. RFC 5322 2.2 (fields, folding), 3.6 (field counts), 4.5.3 (WSP before
 * the colon), RFC 6409 8.2-8.3 (Date and Message-ID added by the MSA).
 *
 * The section ends at the first empty line (blank_separator), at a line that starts with WSP
 * when no field came before it, or at a line that is not a field ("name:" with printable ASCII
 * names). The end offset is exact wherever the chunks are split, except in one case: when a line
 * turns out not to be a field only after a chunk boundary inside it (its start was in an earlier
 * chunk, already passed through), the section then ends after that line instead of before it, so
 * that no line is ever cut in two. A CR at the start of a line is taken as the empty line at
 * once (the data decoder rejects the message if a LF does not follow).
 *
 * The From value has the CRLF of each fold removed (the WSP kept) and leading WSP skipped. */
#include "header_scan.h"

#include <string.h>

enum header_state {
    HS_FIRST_LINE = 0, /* start of the first line */
    HS_LINE_START,     /* start of a later line */
    HS_NAME,           /* reading a field name */
    HS_NAME_WSP,       /* WSP after the name, before the colon (obsolete syntax) */
    HS_VALUE,          /* in a field body */
    HS_VALUE_CR,       /* in a field body, after a CR */
    HS_JUNK,           /* in a non-field line that began in an earlier chunk */
    HS_JUNK_CR,        /* likewise, after a CR */
    HS_END_AT_LINE,    /* after such a line: the section ends at this line start */
    HS_DONE            /* after the header section */
};

void header_scan_init(struct header_scan *h)
{
    memset(h, 0, sizeof *h);
    h->state = HS_FIRST_LINE;
    h->in_header = true;
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* ftext = %d33-57 / %d59-126 (RFC 5322 3.6.8) */
static bool is_ftext(char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

static bool name_is(const struct header_scan *h, const char *lit)
{
    size_t n = strlen(lit);
    if (h->name_len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h->name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

static void name_add(struct header_scan *h, char c)
{
    if (h->name_len + 1 < sizeof h->name) {
        h->name[h->name_len++] = c;
        h->name[h->name_len] = '\0';
    } else {
        h->name_len = sizeof h->name; /* too long to be a name we look for */
    }
}

static void from_add(struct header_scan *h, char c)
{
    if (h->from_len == 0 && is_wsp(c))
        return;
    if (h->from_len < HEADER_FROM_MAX) {
        h->from[h->from_len++] = c;
        h->from[h->from_len] = '\0';
    } else {
        h->from_truncated = true;
    }
}

static void field_complete_name(struct header_scan *h)
{
    if (name_is(h, "message-id")) {
        h->has_message_id = true;
    } else if (name_is(h, "date")) {
        h->has_date = true;
    } else if (name_is(h, "from")) {
        if (h->has_from) {
            h->from_multiple = true;
        } else {
            h->has_from = true;
            h->capturing_from = true;
        }
    }
    h->state = HS_VALUE;
}

static size_t finish(struct header_scan *h, size_t at, bool blank)
{
    h->in_header = false;
    h->blank_separator = blank;
    h->capturing_from = false;
    h->state = HS_DONE;
    return at;
}

#define LINE_START_UNKNOWN ((size_t)-1)

size_t header_scan_feed(struct header_scan *h, const char *chunk, size_t len)
{
    if (!h->in_header)
        return len;
    /* where the current line began in this chunk, if it did */
    size_t line_start =
        (h->state == HS_FIRST_LINE || h->state == HS_LINE_START || h->state == HS_END_AT_LINE)
            ? 0
            : LINE_START_UNKNOWN;
    for (size_t i = 0; i < len; i++) {
        char c = chunk[i];
        switch (h->state) {
        case HS_FIRST_LINE:
        case HS_LINE_START:
        case HS_END_AT_LINE:
            line_start = i;
            if (c == '\r')
                return finish(h, i, true);
            if (h->state == HS_END_AT_LINE || (h->state == HS_FIRST_LINE && is_wsp(c)))
                return finish(h, i, false);
            if (is_wsp(c)) { /* continuation of the previous field */
                if (h->capturing_from)
                    from_add(h, c);
                h->state = HS_VALUE;
                break;
            }
            h->capturing_from = false;
            h->name_len = 0;
            h->name[0] = '\0';
            if (!is_ftext(c))
                return finish(h, i, false);
            name_add(h, c);
            h->state = HS_NAME;
            break;
        case HS_NAME:
        case HS_NAME_WSP:
            if (c == ':') {
                field_complete_name(h);
            } else if (is_wsp(c)) {
                h->state = HS_NAME_WSP;
            } else if (h->state == HS_NAME && is_ftext(c)) {
                name_add(h, c);
            } else if (line_start != LINE_START_UNKNOWN) {
                return finish(h, line_start, false);
            } else {
                h->state = c == '\r' ? HS_JUNK_CR : HS_JUNK;
            }
            break;
        case HS_VALUE:
            if (c == '\r')
                h->state = HS_VALUE_CR;
            else if (h->capturing_from)
                from_add(h, c);
            break;
        case HS_VALUE_CR:
            if (c == '\n') {
                h->state = HS_LINE_START;
            } else if (c != '\r') { /* a bare CR: the data decoder rejects the message */
                h->state = HS_VALUE;
                if (h->capturing_from)
                    from_add(h, c);
            }
            break;
        case HS_JUNK:
            if (c == '\r')
                h->state = HS_JUNK_CR;
            break;
        case HS_JUNK_CR:
            if (c == '\n')
                h->state = HS_END_AT_LINE;
            else if (c != '\r')
                h->state = HS_JUNK;
            break;
        default:
            return len;
        }
    }
    return len;
}
