/* doctor_kb.h: smtp-doctor's knowledge base of SMTP replies (data/smtp-replies.json, built into
 * the binary): for each known reply of each kind of server, what it means, its likely causes in
 * order, and the fixes with the exact command an administrator runs, with the sources. Also finds
 * SMTP replies inside free text (client logs, exception messages) and tells server kinds apart. */
#ifndef SUBMITD_DOCTOR_KB_H
#define SUBMITD_DOCTOR_KB_H

#include <stdbool.h>
#include <stddef.h>

enum provider {
    PROVIDER_UNKNOWN = 0,
    PROVIDER_EXCHANGE_ONLINE,
    PROVIDER_GMAIL,       /* Gmail and Google Workspace (smtp.gmail.com, smtp-relay.gmail.com) */
    PROVIDER_POSTFIX,     /* Postfix (with Dovecot SASL) */
    PROVIDER_OPENSMTPD,
    PROVIDER_SUBMITD,
    PROVIDER_COUNT
};

/* "exchange-online", "gmail", "postfix", "opensmtpd", "submitd", "unknown" (the JSON names). */
const char *provider_name(enum provider p);
enum provider provider_from_name(const char *name);
/* Recognizes the server from its greeting and EHLO reply texts (either may be NULL). */
enum provider kb_detect_provider(const char *greeting, const char *ehlo);

struct kb_fix {
    const char *text;    /* what to change, in words */
    const char *command; /* the command that shows or changes it; may hold {user}, {domain},
                          * {ref}; NULL when there is none */
};

struct kb_entry {
    const char *id;        /* stable, e.g. "exo-535-5.7.139-tenant" */
    enum provider provider;
    int code;              /* 535; 0 = any */
    const char *enhanced;  /* "5.7.139"; NULL = any */
    const char *pattern;   /* POSIX extended regex, case-insensitive, on the reply text */
    const char *title;     /* one line */
    const char *meaning;
    const char **causes;   /* likely causes, most likely first */
    size_t n_causes;
    const struct kb_fix *fixes;
    size_t n_fixes;
    const char **sources;  /* where the reply text and the advice come from */
    size_t n_sources;
};

struct kb;

/* The built-in knowledge base. NULL with err if it does not parse (a build defect). */
struct kb *kb_load_default(char *err, size_t errlen);
/* A knowledge base from a file (same format), for tests and local additions. */
struct kb *kb_load_file(const char *path, char *err, size_t errlen);
void kb_free(struct kb *kb);
size_t kb_size(const struct kb *kb);
const struct kb_entry *kb_entry_at(const struct kb *kb, size_t i);

/* The entries that match a reply ("535 5.7.139 Authentication unsuccessful, ..."): code and
 * enhanced code equal when the entry names them, pattern matching the text; entries of provider
 * p first (p UNKNOWN: every provider, in file order). Returns how many were written to out. */
size_t kb_match(const struct kb *kb, const char *reply, enum provider p,
                const struct kb_entry **out, size_t max);

struct kb_vars {
    const char *user;   /* "alice@example.com" or NULL */
    const char *domain; /* "example.com" or NULL (derived from user when NULL) */
    const char *ref;    /* submitd reference id or NULL */
};
/* Renders a fix command, replacing {user}, {domain} and {ref} (left as written when unknown). */
void kb_render(const char *tmpl, const struct kb_vars *v, char *out, size_t cap);

/* Finds SMTP replies in free text (swaks transcripts, "The server response was: 5.7.57 ...",
 * javax.mail exceptions, Python tuples like (535, b'5.7.139 ...')): each becomes one line
 * "CODE ENH TEXT" (or "CODE TEXT"; or "ENH TEXT" where the client dropped the code, as .NET's
 * SmtpException does), at most max, each at most 512 octets. */
size_t kb_extract_replies(const char *text, size_t len, char out[][512], size_t max);

#endif
