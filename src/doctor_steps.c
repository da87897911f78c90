/* doctor_steps.c: smtp-doctor's walk along the submission path (RFC 6409 submission, RFC 5321
 * commands, RFC 3207 STARTTLS, RFC 8314 implicit TLS, RFC 4954 AUTH with PLAIN (RFC 4616),
 * LOGIN, XOAUTH2 and OAUTHBEARER (RFC 7628)), the client-side checks that catch a mistake
 * before the server sees it, and the diagnosis of failing replies from the knowledge base.
 * Secrets are sent masked in the transcript and wiped from every buffer that held them. */
#include "doctor_steps.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <sodium.h>

#include "base64.h"

/* RFC 4954 4: an AUTH exchange line may be up to 12288 octets. */
#define SASL_RAW_MAX 9000
#define SASL_LINE_MAX 12288
#define SASL_ROUNDS_MAX 4
#define CERT_EXPIRY_WARN_DAYS 14

static const char *const step_order[] = {"resolve",     "connect",  "greeting",   "ehlo", "tls",
                                         "certificate", "ehlo-tls", "mechanisms", "auth", "sender",
                                         "mail",        "rcpt",     "data",       "quit"};

static const char *const step_order_implicit[] = {
    "resolve",    "connect", "tls",    "certificate", "greeting", "ehlo", "ehlo-tls",
    "mechanisms", "auth",    "sender", "mail",        "rcpt",     "data", "quit"};

struct walk {
    const struct doctor_opts *o;
    const struct kb *kb;
    struct doctor_result *res;
    struct dconn *c;
    struct dconn_addr addr; /* the address connected to */
    struct smtp_reply r;
    struct smtp_reply greeting;
    struct smtp_reply ehlo; /* the latest EHLO reply */
    bool tls_active;
    bool alive;
    const char *failed; /* the step that stopped the walk */
    long long t0;
    char err[512];
    char mech[16];
};

const char *dstatus_name(enum dstatus s)
{
    static const char *const names[] = {"pass", "warn", "fail", "skip"};
    return names[s];
}

const char *dresult_name(enum dresult r)
{
    static const char *const names[] = {"pass", "warn", "fail", "unreachable"};
    return names[r];
}

int dresult_exit(enum dresult r)
{
    return r == DRESULT_UNREACHABLE ? 3 : r == DRESULT_FAIL ? 1 : 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct dstep *step_begin(struct walk *w, const char *name)
{
    struct doctor_result *res = w->res;
    if (res->n_steps >= DSTEP_MAX)
        res->n_steps = DSTEP_MAX - 1; /* cannot happen: the walk has 13 steps */
    struct dstep *s = &res->steps[res->n_steps++];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->elapsed_ms = -1;
    w->t0 = now_ms();
    return s;
}

static void step_end(struct walk *w, struct dstep *s, enum dstatus st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void step_end(struct walk *w, struct dstep *s, enum dstatus st, const char *fmt, ...)
{
    s->status = st;
    s->elapsed_ms = (long)(now_ms() - w->t0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
    if (st == DSTATUS_FAIL && w->failed == NULL)
        w->failed = s->name;
}

static void step_fix(struct dstep *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step_fix(struct dstep *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fix, sizeof s->fix, fmt, ap);
    va_end(ap);
}

static void skip(struct walk *w, const char *name, const char *why)
{
    struct dstep *s = step_begin(w, name);
    s->status = DSTATUS_SKIP;
    snprintf(s->detail, sizeof s->detail, "%s", why);
}

static bool has_step(const struct doctor_result *res, const char *name)
{
    for (size_t i = 0; i < res->n_steps; i++)
        if (strcmp(res->steps[i].name, name) == 0)
            return true;
    return false;
}

/* After a failure: every step not taken, in order, as skipped (QUIT is still tried). */
static void skip_rest(struct walk *w)
{
    char why[128];
    snprintf(why, sizeof why, "not run: the %s step failed", w->failed ? w->failed : "previous");
    const char *const *order = w->o->tls == DTLS_IMPLICIT ? step_order_implicit : step_order;
    for (size_t i = 0; i < sizeof step_order / sizeof step_order[0]; i++)
        if (strcmp(order[i], "quit") != 0 && !has_step(w->res, order[i]))
            skip(w, order[i], why);
}

/* The reply as the server sent it: "250-a\n250 b". */
static void reply_wire(const struct smtp_reply *r, char *out, size_t cap)
{
    size_t off = 0;
    const char *p = r->text;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_lines && off < cap; i++) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        bool last = i + 1 == r->n_lines;
        int k = snprintf(out + off, cap - off, "%s%d%s%.*s", i ? "\n" : "", r->first_code,
                         n == 0 && last ? ""
                         : last         ? " "
                                        : "-",
                         (int)n, p);
        if (k < 0)
            break;
        off += (size_t)k;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
}

/* The reply on one line, for the knowledge base and messages. */
static void reply_one_line(const struct smtp_reply *r, char *out, size_t cap)
{
    snprintf(out, cap, "%d%s%s", r->first_code, r->text[0] ? " " : "", r->text);
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

void doctor_reference(const char *reply, char *out, size_t cap)
{
    out[0] = '\0';
    const char *open = strrchr(reply, '[');
    if (open == NULL)
        return;
    const char *close = strchr(open, ']');
    if (close == NULL)
        return;
    /* "[host time ID]": three words, the last one the id */
    char inner[200];
    snprintf(inner, sizeof inner, "%.*s", (int)(close - open - 1), open + 1);
    char *save = NULL;
    char *words[4];
    size_t n = 0;
    for (char *t = strtok_r(inner, " ", &save); t != NULL && n < 4; t = strtok_r(NULL, " ", &save))
        words[n++] = t;
    if (n != 3 || strlen(words[2]) < 6)
        return;
    for (const char *p = words[2]; *p; p++)
        if (!isalnum((unsigned char)*p))
            return;
    snprintf(out, cap, "%s", words[2]);
}

void doctor_diagnose(const struct kb *kb, const char *reply, enum provider p, struct ddiag *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->reply, sizeof d->reply, "%s", reply);
    doctor_reference(reply, d->ref, sizeof d->ref);
    d->provider = p;
    if (kb == NULL)
        return;
    const struct kb_entry *all[32];
    size_t n = kb_match(kb, reply, p, all, sizeof all / sizeof all[0]);
    if (p != PROVIDER_UNKNOWN)
        for (size_t i = 0; i < n && d->n_entries < DDIAG_ENTRIES_MAX; i++)
            if (all[i]->provider == p)
                d->entries[d->n_entries++] = all[i];
    if (d->n_entries == 0) {
        d->other_providers = p != PROVIDER_UNKNOWN && n > 0;
        for (size_t i = 0; i < n && d->n_entries < DDIAG_ENTRIES_MAX; i++)
            d->entries[d->n_entries++] = all[i];
    }
}

static void diagnose(struct walk *w, struct dstep *s, const struct smtp_reply *r)
{
    struct doctor_result *res = w->res;
    if (res->n_diags >= sizeof res->diags / sizeof res->diags[0])
        return;
    char line[1024];
    reply_one_line(r, line, sizeof line);
    struct ddiag *d = &res->diags[res->n_diags++];
    doctor_diagnose(w->kb, line, res->provider, d);
    d->step = s->name;
    if (d->ref[0])
        res->vars.ref = d->ref;
}

/* Sends a command and reads its reply into w->r; on an I/O failure the step fails. */
static bool exchange(struct walk *w, struct dstep *s, const char *line, const char *shown)
{
    enum dconn_status st = dconn_send(w->c, line, shown, w->err, sizeof w->err);
    if (st == DCONN_OK)
        st = dconn_read_reply(w->c, &w->r, w->err, sizeof w->err);
    if (st == DCONN_OK) {
        reply_wire(&w->r, s->reply, sizeof s->reply);
        return true;
    }
    if (st != DCONN_MALFORMED)
        w->alive = false;
    step_end(w, s, DSTATUS_FAIL, "%s: %s", shown ? shown : line, w->err);
    return false;
}

/* A refusing reply: the step fails with the reply and its diagnosis. */
static void refused(struct walk *w, struct dstep *s, const char *what)
{
    char first[600];
    smtp_reply_first_line(&w->r, first, sizeof first);
    step_end(w, s, DSTATUS_FAIL, "%s refused: %s", what, first);
    diagnose(w, s, &w->r);
}

/* ---- resolve and connect ---- */

static bool step_resolve(struct walk *w, struct dconn_addr *addrs, size_t *n)
{
    struct dstep *s = step_begin(w, "resolve");
    *n = dconn_resolve(w->o->host, w->o->port, addrs, DCONN_ADDRS_MAX, w->err, sizeof w->err);
    if (*n == 0) {
        step_end(w, s, DSTATUS_FAIL, "%s", w->err);
        step_fix(s, "check the server name (the mail provider's documentation names its "
                    "submission host, e.g. smtp.office365.com or smtp.gmail.com)");
        return false;
    }
    char list[700] = "";
    size_t v4 = 0, v6 = 0;
    for (size_t i = 0; i < *n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", addrs[i].text);
        if (addrs[i].family == AF_INET6)
            v6++;
        else
            v4++;
    }
    step_end(w, s, DSTATUS_PASS, "%s: %s (%zu IPv4, %zu IPv6)", w->o->host, list, v4, v6);
    return true;
}

static bool step_connect(struct walk *w, const struct dconn_addr *addrs, size_t n)
{
    struct dstep *s = step_begin(w, "connect");
    char failures[700] = "";
    for (size_t i = 0; i < n; i++) {
        long long t = now_ms();
        enum dconn_status st = dconn_connect(w->c, &addrs[i], w->err, sizeof w->err);
        if (st == DCONN_OK) {
            w->addr = addrs[i];
            w->alive = true;
            long took = (long)(now_ms() - t);
            if (failures[0]) {
                step_end(w, s, DSTATUS_WARN, "connected to %s port %s in %ld ms after failures: %s",
                         addrs[i].text, w->o->port, took, failures);
                step_fix(s, "clients that try the failing addresses first wait for their "
                            "timeouts; check the firewall for those addresses");
            } else {
                step_end(w, s, DSTATUS_PASS, "connected to %s port %s in %ld ms", addrs[i].text,
                         w->o->port, took);
            }
            return true;
        }
        size_t used = strlen(failures);
        snprintf(failures + used, sizeof failures - used, "%s%s", used ? "; " : "", w->err);
    }
    step_end(w, s, DSTATUS_FAIL, "no address of %s accepted a connection on port %s: %s",
             w->o->host, w->o->port, failures);
    step_fix(s, "check the port (587 STARTTLS, 465 implicit TLS) and that no firewall blocks "
                "outgoing connections to it; many networks block port 25");
    return false;
}

/* ---- TLS ---- */

static bool step_tls(struct walk *w, bool implicit, const char *starttls_reply)
{
    struct dstep *s = step_begin(w, "tls");
    if (starttls_reply != NULL)
        snprintf(s->reply, sizeof s->reply, "%s", starttls_reply);
    struct dtls_opts to = {.host = w->o->host, .cafile = w->o->cafile, .insecure = w->o->insecure};
    struct dtls_info info;
    enum dconn_status st = dconn_start_tls(w->c, &to, &info, w->err, sizeof w->err);
    if (st != DCONN_OK) {
        w->alive = false;
        if (info.plaintext[0]) {
            step_end(w, s, DSTATUS_FAIL,
                     "implicit TLS handshake answered with plaintext \"%s\": this port speaks "
                     "STARTTLS",
                     info.plaintext);
            step_fix(s, "use --tls starttls (port 587 is STARTTLS; implicit TLS is port 465)");
        } else {
            step_end(w, s, DSTATUS_FAIL, "%s handshake failed: %s",
                     implicit ? "implicit TLS" : "STARTTLS", w->err);
            step_fix(s,
                     "the server's TLS configuration or a TLS-intercepting middlebox; "
                     "compare with: openssl s_client -connect %s:%s%s",
                     w->o->host, w->o->port, implicit ? "" : " -starttls smtp");
        }
        return false;
    }
    w->tls_active = true;
    if (info.version_num < TLS1_2_VERSION) {
        /* caught before credentials cross it: current clients refuse it, and so do servers
         * such as Exchange Online (421 4.7.66) */
        step_end(w, s, DSTATUS_FAIL, "%s, cipher %s: below TLS 1.2", info.version, info.cipher);
        step_fix(s, "enable TLS 1.2 or 1.3 on the server; current clients and Exchange Online "
                    "refuse TLS 1.0 and 1.1");
        return false;
    } else {
        step_end(w, s, DSTATUS_PASS, "%s%s, cipher %s", implicit ? "implicit TLS, " : "",
                 info.version, info.cipher);
    }

    s = step_begin(w, "certificate");
    const char *store = w->o->cafile ? w->o->cafile : "the system store";
    char problem[400] = "";
    if (!info.have_cert)
        snprintf(problem, sizeof problem, "the server sent no certificate");
    else if (!info.chain_ok)
        snprintf(problem, sizeof problem, "not verified against %s: %s", store, info.chain_error);
    else if (!info.host_ok)
        snprintf(problem, sizeof problem, "the certificate does not name %s", w->o->host);
    else if (info.days_left < 0)
        snprintf(problem, sizeof problem, "expired %ld days ago", -info.days_left);
    char facts[700];
    snprintf(facts, sizeof facts, "subject %s; issuer %s; %d in chain; expires %s (%ld days)",
             info.subject, info.issuer, info.chain_len, info.not_after, info.days_left);
    if (problem[0] && !w->o->insecure) {
        step_end(w, s, DSTATUS_FAIL, "%s; %s", problem, facts);
        step_fix(s, "give the issuing CA with --cafile FILE, or fix the server certificate; "
                    "--insecure tests the rest without verification (credentials are not sent "
                    "to an unverified server otherwise)");
        return false;
    }
    if (problem[0]) {
        step_end(w, s, DSTATUS_WARN, "--insecure: %s; %s", problem, facts);
        step_fix(s, "clients that verify certificates will refuse this server");
    } else if (info.days_left < CERT_EXPIRY_WARN_DAYS) {
        step_end(w, s, DSTATUS_WARN, "verified against %s, names %s, but expires in %ld days; %s",
                 store, w->o->host, info.days_left, facts);
        step_fix(s, "renew the server certificate");
    } else {
        step_end(w, s, DSTATUS_PASS, "verified against %s, names %s; %s", store, w->o->host, facts);
    }
    return true;
}

/* ---- greeting and EHLO ---- */

/* No greeting on a STARTTLS connection: does the port speak implicit TLS instead? */
static bool probe_implicit(struct walk *w)
{
    struct dconn *c = dconn_new(w->o->timeout_ms, &w->res->transcript);
    if (c == NULL)
        return false;
    dtranscript_add(&w->res->transcript, "-- ", "no greeting: trying a TLS handshake instead");
    struct dtls_opts to = {.host = w->o->host, .cafile = w->o->cafile, .insecure = true};
    struct dtls_info info;
    char err[256];
    bool tls = dconn_connect(c, &w->addr, err, sizeof err) == DCONN_OK &&
               dconn_start_tls(c, &to, &info, err, sizeof err) == DCONN_OK;
    dconn_free(c);
    return tls;
}

static bool step_greeting(struct walk *w, bool implicit)
{
    struct dstep *s = step_begin(w, "greeting");
    enum dconn_status st = dconn_read_reply(w->c, &w->r, w->err, sizeof w->err);
    if (st != DCONN_OK) {
        bool nothing = dconn_buffered(w->c) == 0 && (st == DCONN_TIMEOUT || st == DCONN_CLOSED);
        w->alive = st == DCONN_MALFORMED;
        step_end(w, s, DSTATUS_FAIL, "no greeting: %s", w->err);
        if (nothing && !implicit && w->o->tls != DTLS_NONE && probe_implicit(w)) {
            snprintf(s->detail, sizeof s->detail,
                     "no greeting (%s), but a TLS handshake succeeds: this port speaks implicit "
                     "TLS",
                     w->err);
            step_fix(s, "use --tls implicit (port 465 is implicit TLS; STARTTLS is port 587)");
        } else if (nothing) {
            step_fix(s, "the server accepted the connection but said nothing; a firewall or "
                        "proxy in the way, or an overloaded server");
        }
        return false;
    }
    w->greeting = w->r;
    reply_wire(&w->r, s->reply, sizeof s->reply);
    if (w->r.code != 220) {
        refused(w, s, "the connection was");
        return false;
    }
    char first[600];
    smtp_reply_first_line(&w->r, first, sizeof first);
    step_end(w, s, DSTATUS_PASS, "%s", first);
    return true;
}

static void detect_provider(struct walk *w)
{
    if (w->o->provider != PROVIDER_UNKNOWN)
        w->res->provider = w->o->provider;
    else
        w->res->provider = kb_detect_provider(w->greeting.text, w->ehlo.text);
}

static bool step_ehlo(struct walk *w, const char *name, const char *helo)
{
    struct dstep *s = step_begin(w, name);
    char line[600];
    snprintf(line, sizeof line, "EHLO %s", helo);
    if (!exchange(w, s, line, NULL))
        return false;
    if (w->r.code != 250) {
        refused(w, s, "EHLO");
        return false;
    }
    w->ehlo = w->r;
    detect_provider(w);
    /* the keywords, on one line */
    char kw[800] = "";
    const char *p = strchr(w->r.text, '\n');
    while (p != NULL) {
        p++;
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        size_t used = strlen(kw);
        snprintf(kw + used, sizeof kw - used, "%s%.*s", used ? ", " : "", (int)n, p);
        p = end;
    }
    step_end(w, s, DSTATUS_PASS, "server: %s; extensions: %s", provider_name(w->res->provider),
             kw[0] ? kw : "(none)");
    return true;
}

static bool step_starttls(struct walk *w, const char *helo)
{
    if (!smtp_reply_has_extension(&w->ehlo, "STARTTLS", NULL, 0)) {
        struct dstep *s = step_begin(w, "tls");
        step_end(w, s, DSTATUS_FAIL, "the server does not offer STARTTLS on port %s", w->o->port);
        step_fix(s, "use --tls implicit if this port is for implicit TLS (465); a client set to "
                    "STARTTLS cannot submit here, and --tls none would send the password in "
                    "clear text");
        return false;
    }
    struct dstep *s = step_begin(w, "tls");
    if (!exchange(w, s, "STARTTLS", NULL))
        return false;
    if (w->r.code != 220) {
        refused(w, s, "STARTTLS");
        return false;
    }
    if (dconn_buffered(w->c) > 0) {
        /* RFC 3207 5: nothing may follow the 220 before the handshake (a command injection) */
        step_end(w, s, DSTATUS_FAIL, "the server sent data after its 220 to STARTTLS");
        step_fix(s, "a middlebox is tampering with the connection, or the server is faulty");
        return false;
    }
    char reply[600];
    snprintf(reply, sizeof reply, "%s", s->reply);
    w->res->n_steps--; /* step_tls records the "tls" step with the handshake facts */
    if (!step_tls(w, false, reply))
        return false;
    return step_ehlo(w, "ehlo-tls", helo);
}

/* ---- AUTH ---- */

static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strcasestr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

static bool step_mechanisms(struct walk *w)
{
    const struct doctor_opts *o = w->o;
    char offered[256] = "";
    bool has_auth = smtp_reply_has_extension(&w->ehlo, "AUTH", offered, sizeof offered);
    if (o->user == NULL) {
        char why[400];
        snprintf(why, sizeof why, "no --user given, AUTH not tried; offered: %s",
                 has_auth && offered[0] ? offered : "(none)");
        skip(w, "mechanisms", why);
        return true;
    }
    struct dstep *s = step_begin(w, "mechanisms");
    if (!has_auth || offered[0] == '\0') {
        if (!w->tls_active && smtp_reply_has_extension(&w->ehlo, "STARTTLS", NULL, 0)) {
            step_end(w, s, DSTATUS_FAIL,
                     "the server offers AUTH only after TLS: its EHLO lists STARTTLS but no AUTH");
            step_fix(s, "use --tls starttls (or --tls implicit on port 465)");
        } else {
            step_end(w, s, DSTATUS_FAIL, "the server offers no AUTH mechanism on port %s", o->port);
            step_fix(s, "use the submission port (587 with STARTTLS, 465 with implicit TLS); "
                        "port 25 is for mail between servers");
        }
        return false;
    }
    if (!w->tls_active && smtp_reply_has_extension(&w->ehlo, "STARTTLS", NULL, 0)) {
        step_end(w, s, DSTATUS_FAIL,
                 "AUTH before TLS: the server offers STARTTLS, and AUTH without it would send "
                 "the %s in clear text (offered before TLS: %s)",
                 o->secret_is_token ? "token" : "password", offered);
        step_fix(s, "use --tls starttls (or --tls implicit on port 465)");
        return false;
    }
    static const char *const for_token[] = {"XOAUTH2", "OAUTHBEARER"};
    static const char *const for_password[] = {"PLAIN", "LOGIN"};
    const char *const *fit = o->secret_is_token ? for_token : for_password;
    const char *best = NULL;
    for (size_t i = 0; i < 2 && best == NULL; i++)
        if (word_in(offered, fit[i]))
            best = fit[i];
    if (o->mech != NULL && !word_in(offered, o->mech)) {
        step_end(w, s, DSTATUS_FAIL, "the server does not offer %s; it offers: %s", o->mech,
                 offered);
        if (best != NULL)
            step_fix(s, "use --mech %s", best);
        else
            step_fix(s, "none of the offered mechanisms takes a %s; %s",
                     o->secret_is_token ? "token" : "password",
                     o->secret_is_token ? "use a password (--password-stdin)"
                                        : "use an OAuth token (--token-stdin or --token-cmd)");
        return false;
    }
    if (o->mech == NULL && best == NULL) {
        step_end(w, s, DSTATUS_FAIL, "the server offers %s; none of them takes a %s", offered,
                 o->secret_is_token ? "token (XOAUTH2, OAUTHBEARER)" : "password (PLAIN, LOGIN)");
        step_fix(s, "%s",
                 o->secret_is_token
                     ? "use a password (--password-stdin); this server offers no OAuth"
                     : "use an OAuth token (--token-stdin or --token-cmd)");
        return false;
    }
    snprintf(w->mech, sizeof w->mech, "%s", o->mech ? o->mech : best);
    if (!w->tls_active) {
        step_end(w, s, DSTATUS_WARN, "offered: %s; using %s over an unencrypted connection",
                 offered, w->mech);
        step_fix(s, "use --tls starttls: without TLS the %s crosses the network readable",
                 o->secret_is_token ? "token" : "password");
    } else {
        step_end(w, s, DSTATUS_PASS, "offered: %s; using %s", offered, w->mech);
    }
    return true;
}

/* The initial client response of the mechanism, raw (before base64). */
static size_t sasl_initial(struct walk *w, uint8_t *raw, size_t cap)
{
    const struct doctor_opts *o = w->o;
    int n;
    if (strcmp(w->mech, "PLAIN") == 0)
        n = snprintf((char *)raw, cap, "%c%s%c%s", 0, o->user, 0, o->secret);
    else if (strcmp(w->mech, "XOAUTH2") == 0)
        n = snprintf((char *)raw, cap, "user=%s\001auth=Bearer %s\001\001", o->user, o->secret);
    else if (strcmp(w->mech, "OAUTHBEARER") == 0)
        n = snprintf((char *)raw, cap, "n,a=%s,\001host=%s\001port=%s\001auth=Bearer %s\001\001",
                     o->user, o->host, o->port, o->secret);
    else
        return 0; /* LOGIN: no initial response */
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The decoded text of a 334 challenge (for OAuth error JSON), printable characters only. */
static void challenge_text(const struct smtp_reply *r, char *out, size_t cap)
{
    uint8_t buf[2048];
    size_t n = 0;
    out[0] = '\0';
    if (b64_decode(r->text, strlen(r->text), buf, sizeof buf - 1, &n) != 0)
        return;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++)
        out[j++] = buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : ' ';
    out[j] = '\0';
}

static bool step_auth(struct walk *w)
{
    const struct doctor_opts *o = w->o;
    struct dstep *s = step_begin(w, "auth");
    uint8_t raw[SASL_RAW_MAX];
    char line[SASL_LINE_MAX + 32];
    char shown[64];
    char server_error[600] = "";
    bool ok = false, io = true;
    size_t n = sasl_initial(w, raw, sizeof raw);
    if (strcmp(w->mech, "LOGIN") != 0 && n == 0) {
        step_end(w, s, DSTATUS_FAIL, "the credentials are too long for %s", w->mech);
        goto out;
    }
    snprintf(line, sizeof line, "AUTH %s ", w->mech);
    snprintf(shown, sizeof shown, "AUTH %s%s", w->mech, n ? " ***" : "");
    if (n > 0) {
        size_t used = strlen(line);
        if (b64_encode(raw, n, line + used, sizeof line - used) == 0) {
            step_end(w, s, DSTATUS_FAIL, "the credentials are too long for %s", w->mech);
            goto out;
        }
    } else {
        line[strlen(line) - 1] = '\0';
    }
    io = exchange(w, s, line, shown);
    /* RFC 4954 4: 334 continues; LOGIN asks for the user name, then the password; OAuth
     * mechanisms answer a failure with an error challenge that the client acknowledges. */
    for (int round = 0; io && w->r.code == 334 && round < SASL_ROUNDS_MAX; round++) {
        const char *reply_raw = "";
        size_t rn = 0;
        if (strcmp(w->mech, "LOGIN") == 0) {
            reply_raw = round == 0 ? o->user : o->secret;
            rn = strlen(reply_raw);
        } else if (strcmp(w->mech, "OAUTHBEARER") == 0) {
            challenge_text(&w->r, server_error, sizeof server_error);
            reply_raw = "\001"; /* RFC 7628 3.2.3: the dummy response */
            rn = 1;
        } else {
            challenge_text(&w->r, server_error, sizeof server_error);
        }
        line[0] = '\0';
        if (rn > 0 && b64_encode((const uint8_t *)reply_raw, rn, line, sizeof line) == 0) {
            step_end(w, s, DSTATUS_FAIL, "the credentials are too long for %s", w->mech);
            goto out;
        }
        io = exchange(w, s, line, rn > 0 ? "***" : "");
    }
    if (!io)
        goto out;
    if (w->r.code == 235) {
        char first[600];
        smtp_reply_first_line(&w->r, first, sizeof first);
        step_end(w, s, DSTATUS_PASS, "%s as %s: %s", w->mech, o->user, first);
        ok = true;
    } else {
        char what[64];
        snprintf(what, sizeof what, "AUTH %s", w->mech);
        refused(w, s, what);
        if (server_error[0]) {
            size_t used = strlen(s->detail);
            snprintf(s->detail + used, sizeof s->detail - used, "; the server's error: %s",
                     server_error);
        }
    }
out:
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(line, sizeof line);
    return ok;
}

/* ---- the envelope, the test message, QUIT ---- */

/* Client side, before MAIL: a sender other than the login is the usual cause of 5.7.60. */
static void step_sender(struct walk *w, const char *from)
{
    const struct doctor_opts *o = w->o;
    if (o->user == NULL) {
        skip(w, "sender", "no --user given: nothing to compare the sender with");
        return;
    }
    struct dstep *s = step_begin(w, "sender");
    if (strcasecmp(from, o->user) == 0) {
        step_end(w, s, DSTATUS_PASS, "the sender %s is the login", from);
        return;
    }
    step_end(w, s, DSTATUS_WARN, "the sender %s differs from the login %s", from, o->user);
    step_fix(s,
             "many servers refuse to let a login send as another address (550 5.7.60 "
             "SendAsDenied, at MAIL or at the end of DATA): send as %s, or use an alias of it or "
             "an address it has send as rights for",
             o->user);
}

static bool step_mail(struct walk *w, const char *from)
{
    const struct doctor_opts *o = w->o;
    struct dstep *s = step_begin(w, "mail");
    char line[600];
    snprintf(line, sizeof line, "MAIL FROM:<%s>", from);
    if (!exchange(w, s, line, NULL))
        return false;
    bool differs = o->user != NULL && strcasecmp(from, o->user) != 0;
    if (w->r.code != 250) {
        refused(w, s, "MAIL FROM");
        if (differs) {
            size_t used = strlen(s->detail);
            snprintf(s->detail + used, sizeof s->detail - used,
                     "; the sender %s differs from the login %s", from, o->user);
            step_fix(s, "send as %s, or have an administrator grant %s the right to send as %s",
                     o->user, o->user, from);
        }
        return false;
    }
    char first[600];
    smtp_reply_first_line(&w->r, first, sizeof first);
    step_end(w, s, DSTATUS_PASS, "%s", first);
    return true;
}

static bool step_rcpt(struct walk *w)
{
    struct dstep *s = step_begin(w, "rcpt");
    char line[600];
    snprintf(line, sizeof line, "RCPT TO:<%s>", w->o->to);
    if (!exchange(w, s, line, NULL))
        return false;
    if (w->r.code != 250 && w->r.code != 251) {
        refused(w, s, "RCPT TO");
        return false;
    }
    char first[600];
    smtp_reply_first_line(&w->r, first, sizeof first);
    step_end(w, s, DSTATUS_PASS, "%s", first);
    return true;
}

static bool step_data(struct walk *w, const char *from, const char *helo)
{
    struct dstep *s = step_begin(w, "data");
    if (!exchange(w, s, "DATA", NULL))
        return false;
    if (w->r.code != 354) {
        refused(w, s, "DATA");
        return false;
    }
    char date[64], id[64], msgid[160];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, sizeof id - 2 * i, "%02x", rnd[i]);
    const char *dom = strchr(from, '@');
    snprintf(msgid, sizeof msgid, "<%s.smtp-doctor@%s>", id,
             dom ? dom + 1 : (helo[0] == '[' ? "smtp-doctor.invalid" : helo));
    char hdr[5][700];
    snprintf(hdr[0], sizeof hdr[0], "From: <%s>", from);
    snprintf(hdr[1], sizeof hdr[1], "To: <%s>", w->o->to);
    snprintf(hdr[2], sizeof hdr[2], "Subject: smtp-doctor test");
    snprintf(hdr[3], sizeof hdr[3], "Date: %s", date);
    snprintf(hdr[4], sizeof hdr[4], "Message-ID: %s", msgid);
    const char *const tail[] = {"MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii",
                                "",
                                "This is a test message sent by smtp-doctor to check that "
                                "submission works.",
                                "."};
    for (size_t i = 0; i < 5; i++)
        if (dconn_send(w->c, hdr[i], NULL, w->err, sizeof w->err) != DCONN_OK)
            goto io;
    for (size_t i = 0; i < sizeof tail / sizeof tail[0] - 1; i++)
        if (dconn_send(w->c, tail[i], NULL, w->err, sizeof w->err) != DCONN_OK)
            goto io;
    if (!exchange(w, s, ".", NULL))
        return false;
    if (w->r.code != 250) {
        refused(w, s, "the message was");
        return false;
    }
    char first[600];
    smtp_reply_first_line(&w->r, first, sizeof first);
    step_end(w, s, DSTATUS_PASS, "test message %s accepted: %s", msgid, first);
    return true;
io:
    w->alive = false;
    step_end(w, s, DSTATUS_FAIL, "sending the message: %s", w->err);
    return false;
}

static void step_quit(struct walk *w)
{
    if (!w->alive) {
        skip(w, "quit", "the connection is closed");
        return;
    }
    struct dstep *s = step_begin(w, "quit");
    if (!exchange(w, s, "QUIT", NULL)) {
        s->status = DSTATUS_WARN; /* the submission result stands */
        return;
    }
    char first[600];
    smtp_reply_first_line(&w->r, first, sizeof first);
    step_end(w, s, w->r.code == 221 ? DSTATUS_PASS : DSTATUS_WARN, "%s", first);
}

/* ---- the walk ---- */

static void default_helo(struct walk *w, char *out, size_t cap)
{
    char name[256];
    if (w->o->helo != NULL) {
        snprintf(out, cap, "%s", w->o->helo);
        return;
    }
    /* RFC 5321 4.1.4: the client's FQDN, else an address literal */
    if (gethostname(name, sizeof name) == 0 && strchr(name, '.') != NULL) {
        name[sizeof name - 1] = '\0';
        snprintf(out, cap, "%s", name);
    } else {
        dconn_local_literal(w->c, out, cap);
    }
}

static void walk(struct walk *w)
{
    const struct doctor_opts *o = w->o;
    struct dconn_addr addrs[DCONN_ADDRS_MAX];
    size_t n = 0;
    if (!step_resolve(w, addrs, &n) || !step_connect(w, addrs, n)) {
        w->res->result = DRESULT_UNREACHABLE;
        return;
    }
    char helo[300];
    default_helo(w, helo, sizeof helo);
    bool implicit = o->tls == DTLS_IMPLICIT;
    bool ok = true;
    if (implicit)
        ok = step_tls(w, true, NULL);
    ok = ok && step_greeting(w, implicit) && step_ehlo(w, "ehlo", helo);
    if (ok && o->tls == DTLS_STARTTLS) {
        ok = step_starttls(w, helo);
    } else if (ok) {
        const char *why =
            implicit ? "implicit TLS: the first EHLO was already over TLS" : "--tls none: no TLS";
        if (!implicit) {
            skip(w, "tls", why);
            skip(w, "certificate", why);
        }
        skip(w, "ehlo-tls", why);
    }
    if (ok && step_mechanisms(w)) {
        if (o->user != NULL)
            ok = step_auth(w);
        else
            skip(w, "auth", "no --user given");
    } else {
        ok = false;
    }
    const char *from = o->from ? o->from : o->user;
    if (ok && from == NULL) {
        skip(w, "sender", "no --from or --user given");
        skip(w, "mail", "no --from or --user given: MAIL FROM not tried");
        skip(w, "rcpt", "no sender: RCPT TO not tried");
        skip(w, "data", "no sender: no message sent");
    } else if (ok && (step_sender(w, from), step_mail(w, from))) {
        if (o->to == NULL) {
            skip(w, "rcpt", "no --to given: RCPT TO not tried");
            skip(w, "data", "no --to given: no message sent");
        } else if (step_rcpt(w)) {
            if (o->send)
                step_data(w, from, helo);
            else
                skip(w, "data", "no message sent (give --send to send a test message)");
        }
    }
    if (w->failed != NULL)
        skip_rest(w);
    step_quit(w);
}

struct doctor_result *doctor_run(const struct doctor_opts *o, const struct kb *kb)
{
    struct doctor_result *res = calloc(1, sizeof *res);
    struct walk *w = calloc(1, sizeof *w);
    if (res == NULL || w == NULL) {
        free(res);
        free(w);
        return NULL;
    }
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(res->target, sizeof res->target, "%s%s%s:%s", v6 ? "[" : "", o->host, v6 ? "]" : "",
             o->port);
    res->provider = o->provider;
    res->vars.user = o->user;
    w->o = o;
    w->kb = kb;
    w->res = res;
    w->c = dconn_new(o->timeout_ms, &res->transcript);
    if (w->c == NULL) {
        struct dstep *s = step_begin(w, "connect");
        step_end(w, s, DSTATUS_FAIL, "out of memory");
        res->result = DRESULT_FAIL;
    } else {
        res->result = DRESULT_PASS;
        walk(w);
    }
    if (res->result != DRESULT_UNREACHABLE) {
        for (size_t i = 0; i < res->n_steps; i++) {
            if (res->steps[i].status == DSTATUS_FAIL)
                res->result = DRESULT_FAIL;
            else if (res->steps[i].status == DSTATUS_WARN && res->result == DRESULT_PASS)
                res->result = DRESULT_WARN;
        }
    } else {
        for (size_t i = 0; i < sizeof step_order / sizeof step_order[0]; i++)
            if (!has_step(res, step_order[i]))
                skip(w, step_order[i], "not run: the server cannot be reached");
    }
    dconn_free(w->c);
    sodium_memzero(w, sizeof *w); /* the last replies may echo parts of an exchange */
    free(w);
    return res;
}

void doctor_result_free(struct doctor_result *r)
{
    if (r == NULL)
        return;
    dtranscript_free(&r->transcript);
    free(r);
}
