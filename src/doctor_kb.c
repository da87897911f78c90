/* doctor_kb.c: smtp-doctor's knowledge base of SMTP replies: loading data/smtp-replies.json (built
 * in, or a file), matching a reply against it, rendering fix commands, telling server kinds apart
 * from their greeting and EHLO, and finding SMTP replies inside client logs.
 * RFC 5321 4.2 (reply lines, multi-line replies), RFC 3463 (enhanced status codes). */
#include "doctor_kb.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

/* build/gen/kb_data.c, generated from data/smtp-replies.json by scripts/embed.sh */
extern const char doctor_kb_json[];
extern const unsigned long doctor_kb_json_len;

#define KB_FORMAT_VERSION 1
#define KB_OUT_LINE 512 /* kb_extract_replies: one output line, NUL included */

struct kb_item {
    struct kb_entry e;
    regex_t re;
    bool re_ok;
};

struct kb {
    json_t *root; /* owns every string the entries point to */
    struct kb_item *items;
    size_t n;
};

static const char *const provider_names[PROVIDER_COUNT] = {
    [PROVIDER_UNKNOWN] = "unknown",     [PROVIDER_EXCHANGE_ONLINE] = "exchange-online",
    [PROVIDER_GMAIL] = "gmail",         [PROVIDER_POSTFIX] = "postfix",
    [PROVIDER_OPENSMTPD] = "opensmtpd", [PROVIDER_SUBMITD] = "submitd",
};

const char *provider_name(enum provider p)
{
    if ((int)p < 0 || p >= PROVIDER_COUNT)
        return "unknown";
    return provider_names[p];
}

enum provider provider_from_name(const char *name)
{
    if (name == NULL)
        return PROVIDER_UNKNOWN;
    for (int p = 0; p < PROVIDER_COUNT; p++)
        if (strcmp(name, provider_names[p]) == 0)
            return (enum provider)p;
    return PROVIDER_UNKNOWN;
}

/* ------------------------------------------------------------------ provider detection */

static bool contains_ci(const char *hay, const char *needle)
{
    return hay != NULL && strcasestr(hay, needle) != NULL;
}

/* The host name an EHLO reply starts with ("250-host.example Hello ..."), lower-cased. */
static void ehlo_host(const char *ehlo, char *out, size_t cap)
{
    out[0] = '\0';
    if (ehlo == NULL || cap == 0)
        return;
    const char *p = ehlo;
    while (*p == ' ' || *p == '\t')
        p++;
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && (p[3] == '-' || p[3] == ' '))
        p += 4;
    size_t n = 0;
    while (p[n] != '\0' && !isspace((unsigned char)p[n]) && n + 1 < cap) {
        out[n] = (char)tolower((unsigned char)p[n]);
        n++;
    }
    while (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
}

static bool host_in_domain(const char *host, const char *domain)
{
    size_t h = strlen(host), d = strlen(domain);
    if (h == d)
        return strcmp(host, domain) == 0;
    return h > d && host[h - d - 1] == '.' && strcmp(host + h - d, domain) == 0;
}

enum provider kb_detect_provider(const char *greeting, const char *ehlo)
{
    /* Software names in banners first: they are explicit, host names are only hints. */
    if (contains_ci(greeting, "ESMTP submitd") || contains_ci(ehlo, "ESMTP submitd"))
        return PROVIDER_SUBMITD;
    if (contains_ci(greeting, "ESMTP OpenSMTPD"))
        return PROVIDER_OPENSMTPD;
    if (contains_ci(greeting, "ESMTP Postfix"))
        return PROVIDER_POSTFIX;
    if (contains_ci(greeting, "Microsoft ESMTP MAIL Service"))
        return PROVIDER_EXCHANGE_ONLINE;
    char host[256];
    ehlo_host(ehlo, host, sizeof host);
    if (host_in_domain(host, "outlook.com") || host_in_domain(host, "office365.com"))
        return PROVIDER_EXCHANGE_ONLINE;
    ehlo_host(greeting, host, sizeof host);
    if (host_in_domain(host, "outlook.com") || host_in_domain(host, "office365.com"))
        return PROVIDER_EXCHANGE_ONLINE;
    /* Hints anywhere in the text (explain mode passes a pasted reply or log as the greeting):
     * Exchange Online names its servers in the reply's [host ...] suffix and in
     * "Hostname=...PROD.OUTLOOK.COM", and its texts carry STOREDRV and aka.ms links. */
    static const char *const exchange[] = {".outlook.com", ".office365.com", "STOREDRV.",
                                           "aka.ms/smtp_auth", "aka.ms/smtp_auth_tls"};
    for (size_t i = 0; i < sizeof exchange / sizeof exchange[0]; i++)
        if (contains_ci(greeting, exchange[i]) || contains_ci(ehlo, exchange[i]))
            return PROVIDER_EXCHANGE_ONLINE;
    static const char *const google[] = {"smtp.gmail.com", "smtp-relay.gmail.com", "mx.google.com",
                                         "gsmtp", "google"};
    for (size_t i = 0; i < sizeof google / sizeof google[0]; i++)
        if (contains_ci(greeting, google[i]) || contains_ci(ehlo, google[i]))
            return PROVIDER_GMAIL;
    return PROVIDER_UNKNOWN;
}

/* ------------------------------------------------------------------ loading */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* RFC 3463 2: class "." subject (1-3 digits) "." detail (1-3 digits) within the n octets at s
 * (n bounds the read: extraction scans text that is not NUL-terminated). Returns its length or
 * 0. */
static size_t enhanced_len(const char *s, size_t n)
{
    if (n < 2 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (i < n && isdigit((unsigned char)s[i]) && d < 4)
        i++, d++;
    if (d == 0 || d > 3 || i >= n || s[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < n && isdigit((unsigned char)s[i]) && d < 4)
        i++, d++;
    if (d == 0 || d > 3)
        return 0;
    return i;
}

static const char *opt_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A JSON array of non-empty strings into a NULL-free C array. */
static int load_strings(json_t *arr, const char ***out, size_t *n)
{
    if (!json_is_array(arr))
        return -1;
    size_t count = json_array_size(arr);
    const char **v = calloc(count ? count : 1, sizeof *v);
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s) || json_string_value(s)[0] == '\0') {
            free(v);
            return -1;
        }
        v[i] = json_string_value(s);
    }
    *out = v;
    *n = count;
    return 0;
}

static int load_fixes(json_t *arr, const struct kb_fix **out, size_t *n)
{
    if (!json_is_array(arr))
        return -1;
    size_t count = json_array_size(arr);
    struct kb_fix *v = calloc(count ? count : 1, sizeof *v);
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        json_t *f = json_array_get(arr, i);
        json_t *cmd = json_object_get(f, "command");
        v[i].text = opt_string(f, "text");
        v[i].command = json_is_string(cmd) ? json_string_value(cmd) : NULL;
        if (v[i].text == NULL || v[i].text[0] == '\0' ||
            (cmd != NULL && !json_is_null(cmd) && !json_is_string(cmd))) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

static void item_free(struct kb_item *it)
{
    free(it->e.causes);
    free((void *)it->e.fixes);
    free(it->e.sources);
    if (it->re_ok)
        regfree(&it->re);
}

/* Fills one item from entry i; on failure says why, naming the entry. */
static int load_entry(struct kb *kb, size_t i, json_t *je, char *err, size_t errlen)
{
    struct kb_item *it = &kb->items[i];
    struct kb_entry *e = &it->e;
    if (!json_is_object(je)) {
        set_err(err, errlen, "entry %zu is not an object", i);
        return -1;
    }
    e->id = opt_string(je, "id");
    if (e->id == NULL || e->id[0] == '\0') {
        set_err(err, errlen, "entry %zu has no id", i);
        return -1;
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp(kb->items[j].e.id, e->id) == 0) {
            set_err(err, errlen, "entry %s: duplicate id", e->id);
            return -1;
        }
    const char *prov = opt_string(je, "provider");
    e->provider = provider_from_name(prov);
    if (prov == NULL || strcmp(provider_name(e->provider), prov) != 0) {
        set_err(err, errlen, "entry %s: unknown provider '%s'", e->id, prov ? prov : "(none)");
        return -1;
    }
    json_t *code = json_object_get(je, "code");
    if (code != NULL && !json_is_null(code) &&
        (!json_is_integer(code) ||
         (json_integer_value(code) != 0 &&
          (json_integer_value(code) < 200 || json_integer_value(code) > 599)))) {
        set_err(err, errlen, "entry %s: code must be 0 or 200-599", e->id);
        return -1;
    }
    e->code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
    e->enhanced = opt_string(je, "enhanced");
    /* The class need not agree with the code: servers send what they send (Exchange Online
     * answers "451 5.7.3 STARTTLS is required"), and the entry must match it. */
    if (e->enhanced != NULL && enhanced_len(e->enhanced, strlen(e->enhanced)) != strlen(e->enhanced)) {
        set_err(err, errlen, "entry %s: bad enhanced code '%s'", e->id, e->enhanced);
        return -1;
    }
    e->pattern = opt_string(je, "pattern");
    e->title = opt_string(je, "title");
    e->meaning = opt_string(je, "meaning");
    if (e->pattern == NULL || e->title == NULL || e->meaning == NULL || e->pattern[0] == '\0') {
        set_err(err, errlen, "entry %s: pattern, title and meaning are required", e->id);
        return -1;
    }
    if (load_strings(json_object_get(je, "causes"), &e->causes, &e->n_causes) != 0 ||
        load_fixes(json_object_get(je, "fixes"), &e->fixes, &e->n_fixes) != 0 ||
        load_strings(json_object_get(je, "sources"), &e->sources, &e->n_sources) != 0) {
        set_err(err, errlen,
                "entry %s: causes, fixes and sources must be arrays (of strings, "
                "of {text, command})",
                e->id);
        return -1;
    }
    if (e->n_sources == 0) {
        set_err(err, errlen, "entry %s: no sources (every entry cites where it comes from)", e->id);
        return -1;
    }
    int rc = regcomp(&it->re, e->pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &it->re, why, sizeof why);
        set_err(err, errlen, "entry %s: bad pattern '%s': %s", e->id, e->pattern, why);
        return -1;
    }
    it->re_ok = true;
    return 0;
}

static struct kb *kb_from_json(json_t *root, char *err, size_t errlen)
{
    json_t *version = json_object_get(root, "version");
    json_t *entries = json_object_get(root, "entries");
    if (!json_is_integer(version) || json_integer_value(version) != KB_FORMAT_VERSION) {
        set_err(err, errlen, "version must be %d", KB_FORMAT_VERSION);
        json_decref(root);
        return NULL;
    }
    if (!json_is_array(entries)) {
        set_err(err, errlen, "entries must be an array");
        json_decref(root);
        return NULL;
    }
    struct kb *kb = calloc(1, sizeof *kb);
    size_t n = json_array_size(entries);
    if (kb == NULL || (kb->items = calloc(n ? n : 1, sizeof *kb->items)) == NULL) {
        set_err(err, errlen, "out of memory loading %zu entries", n);
        free(kb);
        json_decref(root);
        return NULL;
    }
    kb->root = root;
    for (size_t i = 0; i < n; i++) {
        kb->n = i + 1; /* so kb_free releases what this entry got so far */
        if (load_entry(kb, i, json_array_get(entries, i), err, errlen) != 0) {
            kb_free(kb);
            return NULL;
        }
    }
    kb->n = n;
    return kb;
}

struct kb *kb_load_default(char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(doctor_kb_json, doctor_kb_json_len, 0, &je);
    if (root == NULL) {
        set_err(err, errlen, "built-in knowledge base: line %d: %s", je.line, je.text);
        return NULL;
    }
    return kb_from_json(root, err, errlen);
}

struct kb *kb_load_file(const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL) {
        /* jansson's text names the system error (strerror) when the file cannot be read */
        if (je.line > 0)
            set_err(err, errlen, "%s: line %d: %s", path, je.line, je.text);
        else
            set_err(err, errlen, "%s: %s", path, je.text);
        return NULL;
    }
    struct kb *kb = kb_from_json(root, err, errlen);
    if (kb == NULL && err != NULL && errlen > 0) {
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        set_err(err, errlen, "%s: %s", path, inner);
    }
    return kb;
}

void kb_free(struct kb *kb)
{
    if (kb == NULL)
        return;
    for (size_t i = 0; i < kb->n; i++)
        item_free(&kb->items[i]);
    free(kb->items);
    json_decref(kb->root);
    free(kb);
}

size_t kb_size(const struct kb *kb)
{
    return kb ? kb->n : 0;
}

const struct kb_entry *kb_entry_at(const struct kb *kb, size_t i)
{
    return kb && i < kb->n ? &kb->items[i].e : NULL;
}

/* ------------------------------------------------------------------ matching */

struct parsed_reply {
    int code;          /* 0 when the reply has none (".NET: The server response was: 5.7.57 ...") */
    char enhanced[16]; /* "" when none */
    const char *text;
};

/* "535 5.7.3 text", "535-5.7.3 text", "535 text", "5.7.57 text" or bare text. */
static void parse_reply(const char *reply, struct parsed_reply *r)
{
    const char *p = reply;
    while (*p == ' ' || *p == '\t')
        p++;
    r->code = 0;
    r->enhanced[0] = '\0';
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && (p[3] == ' ' || p[3] == '-' || p[3] == '\0')) {
        r->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        p += p[3] ? 4 : 3;
        while (*p == ' ')
            p++;
    }
    size_t n = enhanced_len(p, strlen(p));
    if (n > 0 && n < sizeof r->enhanced && (p[n] == ' ' || p[n] == '\0' || p[n] == '\n')) {
        memcpy(r->enhanced, p, n);
        r->enhanced[n] = '\0';
        p += n;
        while (*p == ' ')
            p++;
    }
    r->text = p;
}

/* Code and enhanced code are compared only when both the entry and the reply carry them. */
static bool item_matches(const struct kb_item *it, const struct parsed_reply *r)
{
    if (it->e.code != 0 && r->code != 0 && it->e.code != r->code)
        return false;
    if (it->e.enhanced != NULL && r->enhanced[0] != '\0' && strcmp(it->e.enhanced, r->enhanced))
        return false;
    return regexec(&it->re, r->text, 0, NULL, 0) == 0;
}

size_t kb_match(const struct kb *kb, const char *reply, enum provider p,
                const struct kb_entry **out, size_t max)
{
    if (kb == NULL || reply == NULL || out == NULL || max == 0)
        return 0;
    struct parsed_reply r;
    parse_reply(reply, &r);
    size_t n = 0;
    /* pass 0: entries of provider p; pass 1: the rest (p UNKNOWN: one pass, file order) */
    for (int pass = p == PROVIDER_UNKNOWN ? 1 : 0; pass < 2 && n < max; pass++)
        for (size_t i = 0; i < kb->n && n < max; i++) {
            const struct kb_item *it = &kb->items[i];
            if (p != PROVIDER_UNKNOWN && (pass == 0) != (it->e.provider == p))
                continue;
            if (item_matches(it, &r))
                out[n++] = &it->e;
        }
    return n;
}

/* ------------------------------------------------------------------ rendering */

void kb_render(const char *tmpl, const struct kb_vars *v, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    if (tmpl == NULL)
        return;
    const char *user = v ? v->user : NULL;
    const char *domain = v ? v->domain : NULL;
    const char *ref = v ? v->ref : NULL;
    if (domain == NULL && user != NULL && strrchr(user, '@') != NULL && strrchr(user, '@')[1])
        domain = strrchr(user, '@') + 1;
    static const char *const names[] = {"{user}", "{domain}", "{ref}"};
    const char *vals[] = {user, domain, ref};
    size_t o = 0;
    for (const char *p = tmpl; *p != '\0' && o + 1 < cap;) {
        const char *val = NULL;
        size_t skip = 0;
        for (size_t k = 0; k < 3; k++) {
            size_t len = strlen(names[k]);
            if (vals[k] != NULL && strncmp(p, names[k], len) == 0) {
                val = vals[k];
                skip = len;
                break;
            }
        }
        if (val == NULL) {
            out[o++] = *p++;
            continue;
        }
        for (; *val != '\0' && o + 1 < cap; val++)
            out[o++] = *val;
        p += skip;
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------ finding replies in logs */

struct outbuf {
    char (*out)[KB_OUT_LINE];
    size_t max, n;
    char cur[KB_OUT_LINE]; /* the reply being assembled (multi-line) */
    int cur_code;
    bool open; /* cur is a multi-line reply still expecting lines */
};

static void out_emit(struct outbuf *o, const char *line)
{
    if (o->n >= o->max)
        return;
    if (o->n > 0 && strcmp(o->out[o->n - 1], line) == 0)
        return; /* consecutive repeat */
    snprintf(o->out[o->n], KB_OUT_LINE, "%s", line);
    o->n++;
}

static void out_flush(struct outbuf *o)
{
    if (o->cur[0] != '\0')
        out_emit(o, o->cur);
    o->cur[0] = '\0';
    o->open = false;
    o->cur_code = 0;
}

/* Appends text (len octets) to cur, collapsing Python's literal "\n" continuation escapes and
 * a repeated enhanced code after them into one space; trims trailing white space. */
static void cur_append(struct outbuf *o, const char *s, size_t len)
{
    size_t c = strlen(o->cur);
    for (size_t i = 0; i < len && c + 1 < KB_OUT_LINE; i++) {
        if (s[i] == '\\' && i + 1 < len && (s[i + 1] == 'n' || s[i + 1] == 'r')) {
            i += 1;
            if (c > 0 && o->cur[c - 1] != ' ')
                o->cur[c++] = ' ';
            while (i + 1 < len && (s[i + 1] == '\\' || s[i + 1] == 'n' || s[i + 1] == 'r'))
                i++;
            size_t e = enhanced_len(s + i + 1, len - i - 1);
            if (e > 0 && i + 1 + e <= len)
                i += e;
            while (i + 1 < len && s[i + 1] == ' ')
                i++;
            continue;
        }
        if (s[i] == '\t' || s[i] == '\r')
            continue;
        o->cur[c++] = s[i];
    }
    while (c > 0 && o->cur[c - 1] == ' ')
        c--;
    o->cur[c] = '\0';
}

static bool is_code_at(const char *s, size_t len, size_t i)
{
    return i + 3 <= len && isdigit((unsigned char)s[i]) && isdigit((unsigned char)s[i + 1]) &&
           isdigit((unsigned char)s[i + 2]) &&
           (i == 0 || (!isalnum((unsigned char)s[i - 1]) && s[i - 1] != '.' && s[i - 1] != '-'));
}

/* Only transcript decoration before a code: "<~* ", "< ", "S: ", "<<< ". */
static bool only_prefix(const char *s, size_t i)
{
    for (size_t k = 0; k < i; k++) {
        char ch = s[k];
        if (strchr(" \t<>~*!|", ch) != NULL)
            continue;
        if ((ch == 'S' || ch == 's') && k + 1 < i && s[k + 1] == ':')
            continue;
        if (ch == ':' && k > 0 && (s[k - 1] == 'S' || s[k - 1] == 's'))
            continue;
        return false;
    }
    return true;
}

/* How far the reply text runs from `from`: to the end of the line, or for a Python bytes
 * literal to its closing quote. */
static size_t text_end(const char *s, size_t len, size_t from, char quote)
{
    for (size_t i = from; i < len; i++) {
        if (quote != 0 && s[i] == quote && s[i - 1] != '\\')
            return i;
    }
    return len;
}

/* Handles one reply found at s[i] (its 3-digit code, or its enhanced code when code == 0);
 * returns where scanning continues. */
static size_t take_reply(struct outbuf *o, const char *s, size_t len, size_t i, int code,
                         char quote)
{
    size_t p = i;
    char sep = ' ';
    if (code != 0) {
        sep = i + 3 < len ? s[i + 3] : ' ';
        p = i + 4;
        while (p < len && s[p] == ' ')
            p++;
    }
    size_t end = text_end(s, len, p, quote);
    size_t elen = p < len ? enhanced_len(s + p, len - p) : 0;
    const char *enh = elen > 0 && p + elen <= end ? s + p : NULL;
    size_t tstart = enh ? p + elen : p;
    while (tstart < end && s[tstart] == ' ')
        tstart++;
    bool report = code != 0 ? (code >= 400 && code <= 599)
                            : (p < len && (s[p] == '4' || s[p] == '5'));

    if (o->open && code == o->cur_code) {
        /* continuation of a multi-line reply: append its text */
        if (report) {
            strncat(o->cur, " ", KB_OUT_LINE - strlen(o->cur) - 1);
            cur_append(o, s + tstart, end - tstart);
        }
        if (sep != '-')
            out_flush(o);
        return end;
    }
    out_flush(o);
    if (report) {
        if (code != 0)
            snprintf(o->cur, KB_OUT_LINE, "%d ", code);
        if (enh != NULL) {
            size_t c = strlen(o->cur);
            snprintf(o->cur + c, KB_OUT_LINE - c, "%.*s ", (int)elen, enh);
        }
        cur_append(o, s + tstart, end - tstart);
        o->cur_code = code;
        o->open = code != 0 && sep == '-';
        if (!o->open)
            out_flush(o);
    }
    return end;
}

/* Scans one line of a log. */
static void scan_line(struct outbuf *o, const char *s, size_t len)
{
    bool found = false;
    for (size_t i = 0; i < len; i++) {
        /* Python smtplib: (535, b'5.7.139 ...') or (550, "5.7.60 ...") */
        if (s[i] == '(' && is_code_at(s, len, i + 1) && i + 6 < len && s[i + 4] == ',') {
            size_t q = i + 5;
            while (q < len && s[q] == ' ')
                q++;
            if (q < len && s[q] == 'b')
                q++;
            if (q < len && (s[q] == '\'' || s[q] == '"')) {
                int code = atoi(s + i + 1);
                char quote = s[q];
                /* rebuild "CODE " + text as a reply of its own */
                out_flush(o);
                size_t end = text_end(s, len, q + 1, quote);
                if (code >= 400 && code <= 599) {
                    snprintf(o->cur, KB_OUT_LINE, "%d ", code);
                    cur_append(o, s + q + 1, end - (q + 1));
                    out_flush(o);
                }
                found = true;
                i = end;
                continue;
            }
        }
        if (is_code_at(s, len, i)) {
            size_t after = i + 3;
            char sep = after < len ? s[after] : '\0';
            if (sep != ' ' && sep != '-' && sep != '\0')
                continue;
            int code = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
            if (code < 200 || code > 599)
                continue;
            size_t p = after + (sep ? 1 : 0);
            bool has_enh = p < len && enhanced_len(s + p, len - p) > 0;
            /* "NNN text" without an enhanced code: only at the start of a transcript line,
             * after ": " (an exception message), or continuing a multi-line reply */
            bool plain_ok = only_prefix(s, i) || (i >= 2 && s[i - 2] == ':' && s[i - 1] == ' ') ||
                            (o->open && code == o->cur_code);
            if (!has_enh && (!plain_ok || p >= len || !isalpha((unsigned char)s[p])))
                continue;
            i = take_reply(o, s, len, i, code, 0);
            found = true;
            continue;
        }
        /* .NET "The server response was: 5.7.57 Client not authenticated...": no code */
        size_t elen = enhanced_len(s + i, len - i);
        if (elen > 0 && (s[i] == '4' || s[i] == '5') && i + elen + 1 < len && s[i + elen] == ' ' &&
            isalpha((unsigned char)s[i + elen + 1]) &&
            (only_prefix(s, i) || (i >= 2 && s[i - 2] == ':' && s[i - 1] == ' '))) {
            i = take_reply(o, s, len, i, 0, 0);
            found = true;
            continue;
        }
    }
    if (!found && o->open)
        out_flush(o); /* a multi-line reply ends at the first line that does not continue it */
}

size_t kb_extract_replies(const char *text, size_t len, char out[][512], size_t max)
{
    if (text == NULL || out == NULL || max == 0)
        return 0;
    struct outbuf o = {.out = out, .max = max};
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n' || text[i] == '\0') {
            size_t l = i - start;
            if (l > 0 && text[start + l - 1] == '\r')
                l--;
            scan_line(&o, text + start, l);
            start = i + 1;
            if (i < len && text[i] == '\0')
                break;
        }
    }
    out_flush(&o);
    return o.n;
}
