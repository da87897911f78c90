/* doctor_steps.h: smtp-doctor's walk along the submission path, the way a mail client takes it:
 * resolve, connect, greeting, EHLO, TLS (STARTTLS or implicit) and the certificate, EHLO again,
 * the AUTH mechanisms, the AUTH exchange, MAIL FROM, RCPT TO, optionally a test message, QUIT.
 * Each step ends pass / warn / fail / skip with the server's exact reply; a failing reply gets
 * its diagnosis from the knowledge base (doctor_kb.h). */
#ifndef SUBMITD_DOCTOR_STEPS_H
#define SUBMITD_DOCTOR_STEPS_H

#include <stdbool.h>
#include <stddef.h>

#include "doctor_conn.h"
#include "doctor_kb.h"

enum dtls_mode { DTLS_STARTTLS, DTLS_IMPLICIT, DTLS_NONE };

struct doctor_opts {
    const char *host; /* name or address literal, without brackets */
    const char *port; /* "587" */
    enum dtls_mode tls;
    const char *cafile;
    bool insecure;
    const char *mech; /* upper case, or NULL for the best offered */
    const char *user;
    /* The secret, owned and wiped by the caller: a password (PLAIN, LOGIN) or a bearer token
     * (XOAUTH2, OAUTHBEARER). NULL when none was given. */
    const char *secret;
    bool secret_is_token;
    const char *from; /* NULL: user */
    const char *to;   /* NULL: RCPT not tried */
    bool send;
    const char *helo; /* NULL: the local host name, or an address literal */
    int timeout_ms;
    enum provider provider; /* PROVIDER_UNKNOWN: detect from greeting and EHLO */
};

enum dstatus { DSTATUS_PASS, DSTATUS_WARN, DSTATUS_FAIL, DSTATUS_SKIP };
const char *dstatus_name(enum dstatus s); /* "pass", "warn", "fail", "skip" */

#define DSTEP_MAX 16
#define DDIAG_ENTRIES_MAX 6

struct dstep {
    const char *name; /* "resolve", "connect", "greeting", "ehlo", "tls", "certificate",
                       * "ehlo-tls", "mechanisms", "auth", "mail", "rcpt", "data", "quit" */
    enum dstatus status;
    char detail[1024];
    char fix[512];                         /* what to change, for a client-side finding; "" */
    char reply[SMTP_REPLY_TEXT_MAX + 512]; /* the reply as sent, lines joined by '\n'; "" */
    long elapsed_ms;                       /* -1 when not timed */
};

/* The diagnosis of one failing (or refusing) reply. */
struct ddiag {
    const char *step;
    char reply[1024]; /* one line: "535 5.7.139 Authentication unsuccessful, ..." */
    char ref[64];     /* the id of a "[host time ID]" suffix, or "" */
    enum provider provider;
    const struct kb_entry *entries[DDIAG_ENTRIES_MAX];
    size_t n_entries;
    bool other_providers; /* no entry for the provider: these are other servers' */
};

enum dresult { DRESULT_PASS, DRESULT_WARN, DRESULT_FAIL, DRESULT_UNREACHABLE };
const char *dresult_name(enum dresult r); /* "pass", "warn", "fail", "unreachable" */
int dresult_exit(enum dresult r);         /* 0, 0, 1, 3 */

struct doctor_result {
    char target[300]; /* "host:port" */
    enum provider provider;
    struct dstep steps[DSTEP_MAX];
    size_t n_steps;
    struct ddiag diags[4];
    size_t n_diags;
    enum dresult result;
    struct dtranscript transcript;
    struct kb_vars vars; /* for rendering fix commands (user; ref of the last diagnosis) */
};

/* Runs the walk. kb may be NULL (no diagnoses). The result is heap-allocated; NULL only when
 * memory runs out. */
struct doctor_result *doctor_run(const struct doctor_opts *o, const struct kb *kb);
void doctor_result_free(struct doctor_result *r);

/* Shared with explain: the diagnosis of one reply line, for provider p. */
void doctor_diagnose(const struct kb *kb, const char *reply, enum provider p, struct ddiag *d);
/* The reference id in a reply's "[host time ID]" suffix, into out ("" when none). */
void doctor_reference(const char *reply, char *out, size_t cap);

#endif
