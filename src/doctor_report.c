/* doctor_report.c: smtp-doctor's output for people (colour only when asked) and for scripts
 * (one JSON document, described in docs/smtp-doctor.md and docs/smtp-doctor.schema.json), the
 * rendering of knowledge-base diagnoses with their fix commands, and the explain mode. Secrets
 * never reach this module: the walk masks them before they are recorded. */
#include "doctor_report.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define EXPLAIN_MAX 64

static const char *col(const struct dout_opts *o, const char *code)
{
    return o->color ? code : "";
}

static const char *status_colour(enum dstatus s)
{
    switch (s) {
    case DSTATUS_PASS:
        return C_GREEN;
    case DSTATUS_WARN:
        return C_YELLOW;
    case DSTATUS_FAIL:
        return C_RED;
    default:
        return C_DIM;
    }
}

static void upper(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)toupper((unsigned char)in[i]);
    out[i] = '\0';
}

/* Prints each line of text with a prefix. */
static void print_lines(FILE *f, const char *prefix, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "%s%.*s\n", prefix, (int)n, p);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
}

static void lookup_command(const struct ddiag *d, char *out, size_t cap)
{
    out[0] = '\0';
    if (d->ref[0] && d->provider == PROVIDER_SUBMITD)
        snprintf(out, cap, "submitctl signins --ref %s", d->ref);
}

static void print_diag(FILE *f, const struct ddiag *d, const struct kb_vars *vars,
                       const struct dout_opts *o)
{
    struct kb_vars v = *vars;
    if (d->ref[0])
        v.ref = d->ref;
    if (d->step != NULL)
        fprintf(f, "\n%sDiagnosis%s of the %s step: %s\n", col(o, C_BOLD), col(o, C_RESET), d->step,
                d->reply);
    else
        fprintf(f, "\n%s%s%s\n", col(o, C_BOLD), d->reply, col(o, C_RESET));
    if (d->n_entries == 0)
        fprintf(f, "  This reply is not in the knowledge base (server: %s).\n",
                provider_name(d->provider));
    if (d->other_providers)
        fprintf(f, "  No entry for %s; what the reply means on other servers:\n",
                provider_name(d->provider));
    for (size_t i = 0; i < d->n_entries; i++) {
        const struct kb_entry *e = d->entries[i];
        fprintf(f, "  %s%s%s (%s, %s)\n", col(o, C_BOLD), e->title, col(o, C_RESET),
                provider_name(e->provider), e->id);
        fprintf(f, "    Meaning: %s\n", e->meaning);
        if (e->n_causes > 0)
            fprintf(f, "    Likely causes, most likely first:\n");
        for (size_t k = 0; k < e->n_causes; k++)
            fprintf(f, "      %zu. %s\n", k + 1, e->causes[k]);
        if (e->n_fixes > 0)
            fprintf(f, "    Fixes:\n");
        for (size_t k = 0; k < e->n_fixes; k++) {
            fprintf(f, "      - %s\n", e->fixes[k].text);
            if (e->fixes[k].command != NULL) {
                char cmd[1024];
                kb_render(e->fixes[k].command, &v, cmd, sizeof cmd);
                fprintf(f, "          %s$ %s%s\n", col(o, C_BOLD), cmd, col(o, C_RESET));
            }
        }
        for (size_t k = 0; k < e->n_sources; k++)
            fprintf(f, "    %s%s %s%s\n", col(o, C_DIM), k ? "       " : "Source:", e->sources[k],
                    col(o, C_RESET));
    }
    if (d->ref[0]) {
        char cmd[128];
        lookup_command(d, cmd, sizeof cmd);
        if (cmd[0])
            fprintf(f, "  Reference id %s: an administrator runs: %s\n", d->ref, cmd);
        else
            fprintf(f, "  Reference id %s (quote it to the server's administrator)\n", d->ref);
    }
}

static int print_text(FILE *f, const struct doctor_result *r, const struct dout_opts *o)
{
    fprintf(f, "%ssmtp-doctor %s%s\n", col(o, C_BOLD), r->target, col(o, C_RESET));
    for (size_t i = 0; i < r->n_steps; i++) {
        const struct dstep *s = &r->steps[i];
        char st[8];
        upper(dstatus_name(s->status), st, sizeof st);
        fprintf(f, "%s%-4s%s  %-11s %s", col(o, status_colour(s->status)), st, col(o, C_RESET),
                s->name, s->detail);
        if (s->elapsed_ms >= 0 && s->status != DSTATUS_SKIP)
            fprintf(f, " %s(%ld ms)%s", col(o, C_DIM), s->elapsed_ms, col(o, C_RESET));
        fputc('\n', f);
        /* the detail holds the first line; a longer reply is shown whole */
        if (strchr(s->reply, '\n') != NULL && s->status != DSTATUS_PASS)
            print_lines(f, "                  ", s->reply);
        if (s->fix[0])
            fprintf(f, "                  %sfix:%s %s\n", col(o, C_BOLD), col(o, C_RESET), s->fix);
    }
    for (size_t i = 0; i < r->n_diags; i++)
        print_diag(f, &r->diags[i], &r->vars, o);
    if (o->transcript) {
        fprintf(f, "\n%sTranscript%s (secrets masked as ***):\n", col(o, C_BOLD), col(o, C_RESET));
        if (r->transcript.buf != NULL)
            print_lines(f, "  ", r->transcript.buf);
    }
    char res[16];
    upper(dresult_name(r->result), res, sizeof res);
    const char *c = r->result == DRESULT_PASS   ? C_GREEN
                    : r->result == DRESULT_WARN ? C_YELLOW
                                                : C_RED;
    fprintf(f, "\n%sResult: %s%s (server: %s)\n", col(o, c), res, col(o, C_RESET),
            provider_name(r->provider));
    return ferror(f) ? -1 : 0;
}

/* ---- JSON ---- */

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] ? json_string(s) : json_null();
}

static json_t *strings(const char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *diag_json(const struct ddiag *d, const struct kb_vars *vars)
{
    struct kb_vars v = *vars;
    if (d->ref[0])
        v.ref = d->ref;
    char cmd[128];
    lookup_command(d, cmd, sizeof cmd);
    json_t *entries = json_array();
    for (size_t i = 0; i < d->n_entries; i++) {
        const struct kb_entry *e = d->entries[i];
        json_t *fixes = json_array();
        for (size_t k = 0; k < e->n_fixes; k++) {
            json_t *command = json_null();
            if (e->fixes[k].command != NULL) {
                char buf[1024];
                kb_render(e->fixes[k].command, &v, buf, sizeof buf);
                command = json_string(buf);
            }
            json_array_append_new(
                fixes, json_pack("{s:s, s:o}", "text", e->fixes[k].text, "command", command));
        }
        json_array_append_new(entries, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id", e->id,
                                                 "provider", provider_name(e->provider), "title",
                                                 e->title, "meaning", e->meaning, "causes",
                                                 strings(e->causes, e->n_causes), "fixes", fixes,
                                                 "sources", strings(e->sources, e->n_sources)));
    }
    return json_pack("{s:o, s:s, s:s, s:o, s:o, s:b, s:o}", "step", str_or_null(d->step), "reply",
                     d->reply, "provider", provider_name(d->provider), "reference",
                     str_or_null(d->ref), "lookup", str_or_null(cmd), "other_providers",
                     d->other_providers, "entries", entries);
}

static json_t *transcript_json(const struct dtranscript *t)
{
    json_t *a = json_array();
    const char *p = t->buf;
    while (p != NULL && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, n));
        p = nl ? nl + 1 : NULL;
    }
    return a;
}

static int dump(FILE *f, json_t *doc)
{
    if (doc == NULL)
        return -1;
    int rc = json_dumpf(doc, f, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(doc);
    fputc('\n', f);
    return rc == 0 && !ferror(f) ? 0 : -1;
}

static int print_json(FILE *f, const struct doctor_result *r, const struct dout_opts *o)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < r->n_steps; i++) {
        const struct dstep *s = &r->steps[i];
        json_array_append_new(steps,
                              json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "name", s->name, "status",
                                        dstatus_name(s->status), "detail", s->detail, "reply",
                                        str_or_null(s->reply), "elapsed_ms",
                                        s->elapsed_ms >= 0 && s->status != DSTATUS_SKIP
                                            ? json_integer(s->elapsed_ms)
                                            : json_null(),
                                        "fix", str_or_null(s->fix)));
    }
    json_t *diags = json_array();
    for (size_t i = 0; i < r->n_diags; i++)
        json_array_append_new(diags, diag_json(&r->diags[i], &r->vars));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:i}", "mode", "check", "target",
                            r->target, "provider", provider_name(r->provider), "user",
                            str_or_null(r->vars.user), "steps", steps, "diagnosis", diags, "result",
                            dresult_name(r->result), "exit_code", dresult_exit(r->result));
    if (doc != NULL && o->transcript)
        json_object_set_new(doc, "transcript", transcript_json(&r->transcript));
    return dump(f, doc);
}

int doctor_report(FILE *f, const struct doctor_result *r, const struct dout_opts *o)
{
    return o->json ? print_json(f, r, o) : print_text(f, r, o);
}

/* ---- explain ---- */

static bool starts_with_reply(const char *text, size_t len)
{
    while (len > 0 && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    return len >= 3 && text[0] >= '2' && text[0] <= '5' && isdigit((unsigned char)text[1]) &&
           isdigit((unsigned char)text[2]) && (len == 3 || text[3] == ' ' || text[3] == '-');
}

/* One pasted reply, possibly multi-line ("535-5.7.8 ...\n535 5.7.8 ..."), onto one line. */
static void one_reply(const char *text, size_t len, char *out, size_t cap)
{
    size_t j = 0;
    bool first = true;
    const char *p = text, *end = text + len;
    while (p < end && j + 1 < cap) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        while (p < le && isspace((unsigned char)*p))
            p++;
        size_t n = (size_t)(le - p);
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        /* continuation lines repeat the code: keep only their text */
        if (!first && n >= 4 && starts_with_reply(p, n)) {
            p += 4;
            n -= 4;
        }
        if (n > 0) {
            if (!first && j + 1 < cap)
                out[j++] = ' ';
            for (size_t i = 0; i < n && j + 1 < cap; i++)
                out[j++] = p[i] == '-' && first && i == 3 ? ' ' : p[i];
            first = false;
        }
        p = nl ? nl + 1 : end;
    }
    out[j] = '\0';
}

int doctor_explain(FILE *f, const struct kb *kb, const char *text, size_t len, bool from_log,
                   enum provider p, const struct dout_opts *o)
{
    static char found[EXPLAIN_MAX][512];
    size_t n = 0;
    if (!from_log && starts_with_reply(text, len)) {
        one_reply(text, len, found[0], sizeof found[0]);
        n = 1;
    } else {
        n = kb_extract_replies(text, len, found, EXPLAIN_MAX);
    }
    if (p == PROVIDER_UNKNOWN) {
        /* a log often names the server ("outlook.office365.com", "smtp.gmail.com") */
        char *copy = strndup(text, len);
        if (copy != NULL)
            p = kb_detect_provider(copy, NULL);
        free(copy);
    }
    static struct ddiag diags[EXPLAIN_MAX];
    int status = n > 0 ? 0 : 1;
    for (size_t i = 0; i < n; i++) {
        doctor_diagnose(kb, found[i], p, &diags[i]);
        if (diags[i].n_entries == 0)
            status = 1;
    }
    struct kb_vars vars = {0};
    if (o->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, diag_json(&diags[i], &vars));
        return dump(f, json_pack("{s:s, s:s, s:o, s:s, s:i}", "mode", "explain", "provider",
                                 provider_name(p), "diagnosis", a, "result",
                                 n == 0        ? "none-found"
                                 : status == 0 ? "explained"
                                               : "unknown",
                                 "exit_code", status)) == 0
                   ? status
                   : 1;
    }
    if (n == 0)
        fprintf(f, "No SMTP reply found%s.\n", from_log ? " in the log" : " in the text");
    for (size_t i = 0; i < n; i++)
        print_diag(f, &diags[i], &vars, o);
    return ferror(f) ? 1 : status;
}
