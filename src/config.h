/* config.h: submitd's configuration: one immutable object, built from DIR/submitd.conf over
 * named defaults, swapped whole on SIGHUP. The parser is pure (text in, object or error out). */
#ifndef SUBMITD_CONFIG_H
#define SUBMITD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_LISTENERS_MAX 16
#define CONFIG_FILE_NAME "submitd.conf"

enum listener_tls {
    LISTENER_STARTTLS = 0, /* submission, RFC 6409 + RFC 3207 */
    LISTENER_IMPLICIT_TLS  /* submissions, RFC 8314 */
};

struct listener_config {
    char host[64];           /* numeric address: "127.0.0.1", "::1", "0.0.0.0", "::" */
    int port;
    enum listener_tls tls;
    bool require_tls;        /* MAIL before STARTTLS gets 530 5.7.0 (default yes) */
    bool allow_cleartext_auth; /* offer AUTH before TLS (default no; for tests and sockets
                                * behind a TLS-terminating proxy) */
    char name[80];           /* "127.0.0.1:2587" as written, for logs */
};

struct config {
    char hostname[256];          /* greeting, Received:, reply references; default gethostname() */
    struct listener_config listeners[CONFIG_LISTENERS_MAX];
    size_t n_listeners;
    uint64_t max_message_size;   /* SIZE; default 35 MiB */
    unsigned max_recipients;     /* per message; default 500 */
    unsigned max_errors;         /* per session before 421; default 10 */
    unsigned command_timeout;    /* seconds; default 300 (RFC 5321 4.5.3.2.7) */
    unsigned data_timeout;       /* seconds between data blocks; default 180 (4.5.3.2.5) */
    unsigned max_connections;    /* per listener; default 1000 */
    unsigned max_connections_per_ip; /* default 50 */
    unsigned io_threads;         /* event loops; default number of cores */
    unsigned auth_threads;       /* password hashing / directory workers; default cores */
    uint64_t auth_memlimit;      /* argon2id memory for new hashes; default 64 MiB */
    char tls_cert[PATH_MAX];     /* default DIR/tls/cert.pem (made if missing) */
    char tls_key[PATH_MAX];      /* default DIR/tls/key.pem */
    /* smart lockout (lockout.h); 0 turns a threshold or the delay off */
    unsigned lockout_account_failures; /* default 10 */
    unsigned lockout_address_failures; /* default 30 */
    unsigned lockout_window;           /* seconds, default 900 */
    unsigned lockout_familiar_days;    /* default 30 */
    unsigned lockout_delay;            /* milliseconds, default 500 */
    char user[33];               /* started as root: the user to run as after binding ("" =
                                  * stay, with a warning) */
    bool spool_journal;          /* acknowledge small messages from the journal (default on) */
    unsigned delivery_threads;   /* deliveries at once, all routes (default 16; 0 = paused) */
    unsigned queue_lifetime;     /* seconds a message may wait before it bounces (5 days) */
    unsigned retry_min;          /* first retry after this many seconds (300), doubling ... */
    unsigned retry_max;          /* ... up to this (4000) */
    unsigned delay_warning;      /* seconds before a "delayed" notice; 0 = none (default) */
    uint64_t bounce_size_limit;  /* a bounce returns the whole message up to this (50000) */
    char datadir[PATH_MAX];      /* set by config_load */
};

/* Named defaults (hostname from gethostname(), listeners 127.0.0.1:2587 starttls and
 * 127.0.0.1:2465 tls, paths under datadir). */
void config_defaults(struct config *c, const char *datadir);

/* Parses the text of a configuration file on top of what *c holds (call config_defaults first).
 * Format: one "key = value" a line, '#' comments, blank lines. Keys: hostname, listen (repeatable;
 * the first listen line replaces the default listeners), max-message-size, max-recipients,
 * max-errors, command-timeout, data-timeout, max-connections, max-connections-per-ip, io-threads,
 * auth-threads, auth-memlimit, tls-cert, tls-key, user,
 * lockout-account-failures, lockout-address-failures, lockout-window, lockout-familiar-days,
 * lockout-delay, spool-journal (on/off), delivery-threads, queue-lifetime, retry-min,
 * retry-max, delay-warning, bounce-size-limit. Sizes accept K/M/G suffixes; every number has
 * a minimum and maximum. listen = ADDRESS:PORT | [IPV6]:PORT, then "starttls" or "tls", then
 * optional flags "allow-cleartext-auth", "no-require-tls". Returns 0, or -1 with
 * "line N: reason" in err. */
int config_parse(const char *text, size_t len, struct config *c, char *err, size_t errlen);

/* config_defaults + DIR/submitd.conf if it exists. Returns 0 or -1 with err. */
int config_load(const char *datadir, struct config *c, char *err, size_t errlen);

#endif
