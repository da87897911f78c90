/* address_list.c: the parser for the addresses in a From: field value (address_list.h). Owns the
 * lexical layer (CFWS, comments, quoted strings, atoms, domain literals, UTF-8) and the
 * address-list grammar. No I/O, no allocation.
 * RFC 5322 3.2.1-3.2.5 (quoted-pair, FWS, comments, atoms, quoted strings, phrases), 3.4 and
 * 3.4.1 (address-list, mailbox, name-addr, angle-addr, group, addr-spec, domain-literal), 4.4
 * (obs-phrase, obs-angle-addr with obs-route, obs-addr-list, obs-mbox-list and obs-group-list
 * empty elements), RFC 6532 3.2 (UTF-8 in atext, qtext, ctext, dtext), RFC 3629 (UTF-8).
 *
 * Strict where an address could hide from the check: the value is unfolded, so CR, LF, NUL and
 * every other control character except HTAB is refused; malformed UTF-8 is refused; a mailbox is
 * a name-addr exactly when its words are followed by "<", and then only the angle-addr is an
 * address (a display name is never returned, even one that looks like an address, and
 * "a@b.example <evil@x.example>" names evil@x.example); anything left over after a mailbox or a
 * group is an error. A value that names no address at all (only empty groups or commas) is
 * refused too: a From: field must name an author (RFC 5322 3.6.2).
 * Not accepted: obs-local-part and obs-domain (dots with CFWS between atoms), quoted-pairs and
 * whitespace inside domain literals, groups inside groups. */
#include "address_list.h"

#include <stdbool.h>
#include <string.h>

/* The brief's bound on comment nesting; RFC 5322 sets none. */
#define COMMENT_DEPTH_MAX 8

enum tok_type { TOK_END, TOK_ERROR, TOK_ATOM, TOK_QUOTED, TOK_LITERAL, TOK_SPECIAL };

/* One lexical token after any CFWS before it: value[start, end). */
struct tok {
    enum tok_type type;
    size_t start;
    size_t end;
    char special; /* for TOK_SPECIAL: one of < > @ , ; : */
};

struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    struct address_list *out;
};

/* Length of the well-formed UTF-8 sequence (RFC 3629 4) of a non-ASCII character at s, or 0. */
static size_t utf8_char_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c == 0xE0) {
        n = 3;
        lo = 0xA0; /* no overlong forms */
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        n = 3;
    } else if (c == 0xED) {
        n = 3;
        hi = 0x9F; /* no surrogates */
    } else if (c == 0xF0) {
        n = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        n = 4;
    } else if (c == 0xF4) {
        n = 4;
        hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 5322 3.2.3 atext (ASCII part). */
static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* One printable character at i: VCHAR (1 octet) or a UTF-8 character (RFC 6532 3.2); 0 if the
 * octet is a control character, DEL, or starts malformed UTF-8. */
static size_t vchar_len(const struct parser *ps, size_t i)
{
    unsigned char c = ps->s[i];
    if (c >= 0x21 && c <= 0x7E)
        return 1;
    if (c >= 0x80)
        return utf8_char_len(ps->s + i, ps->len - i);
    return 0;
}

/* RFC 5322 3.2.1 quoted-pair at i ("\" (VCHAR / WSP)): its length, or 0. */
static size_t quoted_pair_len(const struct parser *ps, size_t i)
{
    if (i + 1 >= ps->len)
        return 0;
    if (is_wsp(ps->s[i + 1]))
        return 2;
    size_t n = vchar_len(ps, i + 1);
    return n ? n + 1 : 0;
}

/* Skips CFWS (RFC 5322 3.2.2) from *pos. False on a malformed or unbalanced comment, or one
 * nested deeper than COMMENT_DEPTH_MAX. */
static bool skip_cfws(const struct parser *ps, size_t *pos)
{
    size_t i = *pos;
    int depth = 0;
    while (i < ps->len) {
        unsigned char c = ps->s[i];
        size_t n;
        if (is_wsp(c)) {
            n = 1;
        } else if (c == '(') {
            if (++depth > COMMENT_DEPTH_MAX)
                return false;
            n = 1;
        } else if (depth == 0) {
            break;
        } else if (c == ')') {
            depth--;
            n = 1;
        } else if (c == '\\') {
            n = quoted_pair_len(ps, i);
        } else {
            n = vchar_len(ps, i); /* ctext */
        }
        if (n == 0)
            return false;
        i += n;
    }
    if (depth != 0)
        return false;
    *pos = i;
    return true;
}

/* RFC 5322 3.2.4 quoted-string starting at the DQUOTE at i; returns the offset after the closing
 * DQUOTE, or 0 when it is malformed or unterminated. */
static size_t quoted_end(const struct parser *ps, size_t i)
{
    for (i++; i < ps->len;) {
        unsigned char c = ps->s[i];
        size_t n;
        if (c == '"')
            return i + 1;
        if (c == '\\')
            n = quoted_pair_len(ps, i);
        else if (is_wsp(c))
            n = 1;
        else
            n = vchar_len(ps, i); /* qtext */
        if (n == 0)
            return 0;
        i += n;
    }
    return 0;
}

/* RFC 5322 3.4.1 domain-literal starting at the "[" at i, restricted to 1*dtext (no FWS, no
 * quoted-pair); returns the offset after "]", or 0. */
static size_t literal_end(const struct parser *ps, size_t i)
{
    size_t start = ++i;
    while (i < ps->len) {
        unsigned char c = ps->s[i];
        if (c == ']')
            return i > start ? i + 1 : 0;
        if (c == '[' || c == '\\')
            return 0;
        size_t n = vchar_len(ps, i); /* dtext */
        if (n == 0)
            return 0;
        i += n;
    }
    return 0;
}

/* The token after any CFWS at pos. Atoms are runs of atext, "." and UTF-8: their shape is
 * checked where it matters (dot_atom_ok). */
static void lex(const struct parser *ps, size_t pos, struct tok *t)
{
    t->special = 0;
    if (!skip_cfws(ps, &pos)) {
        t->type = TOK_ERROR;
        return;
    }
    t->start = t->end = pos;
    if (pos == ps->len) {
        t->type = TOK_END;
        return;
    }
    unsigned char c = ps->s[pos];
    size_t end = 0;
    if (c == '"') {
        t->type = TOK_QUOTED;
        end = quoted_end(ps, pos);
    } else if (c == '[') {
        t->type = TOK_LITERAL;
        end = literal_end(ps, pos);
    } else if (c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':') {
        t->type = TOK_SPECIAL;
        t->special = (char)c;
        end = pos + 1;
    } else {
        t->type = TOK_ATOM;
        size_t i = pos;
        while (i < ps->len) {
            size_t n = 0;
            if (is_atext(ps->s[i]) || ps->s[i] == '.')
                n = 1;
            else if (ps->s[i] >= 0x80)
                n = utf8_char_len(ps->s + i, ps->len - i);
            if (n == 0)
                break;
            i += n;
        }
        /* nothing consumed: a control character, malformed UTF-8, or a stray ) ] \ */
        end = i > pos ? i : 0;
    }
    if (end == 0) {
        t->type = TOK_ERROR;
        return;
    }
    t->end = end;
}

/* Consumes the next token. */
static void take(struct parser *ps, struct tok *t)
{
    lex(ps, ps->pos, t);
    if (t->type != TOK_ERROR)
        ps->pos = t->end;
}

static bool is_special(const struct tok *t, char c)
{
    return t->type == TOK_SPECIAL && t->special == c;
}

/* RFC 5322 3.2.3 dot-atom-text: 1*atext *("." 1*atext). */
static bool dot_atom_ok(const struct parser *ps, const struct tok *t)
{
    if (t->type != TOK_ATOM)
        return false;
    const unsigned char *a = ps->s + t->start;
    size_t n = t->end - t->start;
    if (a[0] == '.' || a[n - 1] == '.')
        return false;
    for (size_t i = 1; i < n; i++)
        if (a[i] == '.' && a[i - 1] == '.')
            return false;
    return true;
}

/* RFC 5322 3.4.1 domain = dot-atom / domain-literal. */
static int take_domain(struct parser *ps, struct tok *dom)
{
    take(ps, dom);
    if (dom->type == TOK_LITERAL || dot_atom_ok(ps, dom))
        return 0;
    return -1;
}

/* Appends local "@" domain to the list. */
static int emit(struct parser *ps, const struct tok *local, const struct tok *dom)
{
    struct address_list *out = ps->out;
    size_t llen = local->end - local->start;
    size_t dlen = dom->end - dom->start;
    if (out->n >= ADDRESS_LIST_MAX || llen + 1 + dlen > SMTP_PATH_MAX)
        return -1;
    char *a = out->addr[out->n++];
    memcpy(a, ps->s + local->start, llen);
    a[llen] = '@';
    memcpy(a + llen + 1, ps->s + dom->start, dlen);
    a[llen + 1 + dlen] = '\0';
    return 0;
}

/* RFC 5322 3.4.1 addr-spec = local-part "@" domain, local-part = dot-atom / quoted-string. */
static int parse_addr_spec(struct parser *ps)
{
    struct tok local, at, dom;
    take(ps, &local);
    if (local.type != TOK_QUOTED && !dot_atom_ok(ps, &local))
        return -1;
    take(ps, &at);
    if (!is_special(&at, '@'))
        return -1;
    if (take_domain(ps, &dom) != 0)
        return -1;
    return emit(ps, &local, &dom);
}

/* The rest of an angle-addr after "<": [obs-route] addr-spec ">" (RFC 5322 3.4, 4.4).
 * obs-route = obs-domain-list ":", obs-domain-list = *(CFWS / ",") "@" domain
 * *("," [CFWS] ["@" domain]); the route is skipped, the addr-spec is the address. */
static int parse_angle_rest(struct parser *ps)
{
    struct tok t;
    lex(ps, ps->pos, &t);
    if (is_special(&t, '@') || is_special(&t, ',')) {
        bool seen_domain = false, after_domain = false;
        for (;;) {
            take(ps, &t);
            if (is_special(&t, ',')) {
                after_domain = false;
            } else if (is_special(&t, '@') && !after_domain) {
                struct tok dom;
                if (take_domain(ps, &dom) != 0)
                    return -1;
                seen_domain = after_domain = true;
            } else if (is_special(&t, ':') && seen_domain) {
                break;
            } else {
                return -1;
            }
        }
    }
    if (parse_addr_spec(ps) != 0)
        return -1;
    take(ps, &t);
    return is_special(&t, '>') ? 0 : -1;
}

enum mailbox_kind { KIND_ERROR, KIND_ADDR_SPEC, KIND_NAME_ADDR, KIND_GROUP };

/* Looks ahead from the current position to tell what the next address is. Words (atoms and
 * quoted strings, "." inside atoms for obs-phrase) and "@" followed by "<" are a display name:
 * the "@" lets "a@b.example <evil@x.example>" be read as what mail readers show, a display name
 * and the address evil@x.example. Words followed by ":" are a group's display name. Anything
 * else must be a bare addr-spec. On a name-addr or group, *after is the offset after the "<" or
 * ":". */
static enum mailbox_kind classify(const struct parser *ps, bool allow_group, size_t *after)
{
    size_t pos = ps->pos;
    size_t words = 0;
    bool at_seen = false;
    for (;;) {
        struct tok t;
        lex(ps, pos, &t);
        if (t.type == TOK_ERROR)
            return KIND_ERROR;
        if (t.type == TOK_ATOM || t.type == TOK_QUOTED) {
            words++;
        } else if (is_special(&t, '@')) {
            at_seen = true;
        } else if (is_special(&t, '<')) {
            *after = t.end;
            return KIND_NAME_ADDR;
        } else if (is_special(&t, ':') && allow_group && words > 0 && !at_seen) {
            *after = t.end;
            return KIND_GROUP;
        } else {
            return KIND_ADDR_SPEC;
        }
        pos = t.end; /* every token is at least one octet: the loop ends */
    }
}

static int parse_address(struct parser *ps, bool allow_group);

/* The rest of a group after its ":": [group-list] ";" (RFC 5322 3.4), group-list =
 * mailbox-list / CFWS / obs-group-list, with the empty elements of obs-mbox-list. */
static int parse_group_rest(struct parser *ps)
{
    for (;;) {
        struct tok t;
        lex(ps, ps->pos, &t);
        if (t.type == TOK_ERROR || t.type == TOK_END)
            return -1; /* no ";" */
        if (is_special(&t, ';')) {
            ps->pos = t.end;
            return 0;
        }
        if (is_special(&t, ',')) {
            ps->pos = t.end;
            continue;
        }
        if (parse_address(ps, false) != 0)
            return -1;
        lex(ps, ps->pos, &t);
        if (!is_special(&t, ',') && !is_special(&t, ';'))
            return -1;
    }
}

/* RFC 5322 3.4 address = mailbox / group; mailbox = name-addr / addr-spec. */
static int parse_address(struct parser *ps, bool allow_group)
{
    size_t after = 0;
    switch (classify(ps, allow_group, &after)) {
    case KIND_NAME_ADDR:
        ps->pos = after;
        return parse_angle_rest(ps);
    case KIND_GROUP:
        ps->pos = after;
        return parse_group_rest(ps);
    case KIND_ADDR_SPEC:
        return parse_addr_spec(ps);
    case KIND_ERROR:
        break;
    }
    return -1;
}

/* address-list with the empty elements of obs-addr-list: *([CFWS] ",") address *("," [address /
 * CFWS]). */
static int parse_list(struct parser *ps)
{
    for (;;) {
        struct tok t;
        lex(ps, ps->pos, &t);
        if (t.type == TOK_ERROR)
            return -1;
        if (t.type == TOK_END)
            return ps->out->n > 0 ? 0 : -1;
        if (is_special(&t, ',')) {
            ps->pos = t.end;
            continue;
        }
        if (parse_address(ps, true) != 0)
            return -1;
        lex(ps, ps->pos, &t);
        if (t.type != TOK_END && !is_special(&t, ','))
            return -1; /* text after an address: "<evil@x.example> a@b.example" */
    }
}

int address_list_parse(const char *value, size_t len, struct address_list *out)
{
    if (out == NULL)
        return -1;
    out->n = 0;
    if (value == NULL)
        return -1;
    struct parser ps = {.s = (const unsigned char *)value, .len = len, .pos = 0, .out = out};
    if (parse_list(&ps) != 0) {
        out->n = 0;
        return -1;
    }
    return 0;
}
