/* config.c: submitd's configuration: named defaults, a table of keys (name, type, limits,
 * default, where it lives in struct config), the pure parser of DIR/submitd.conf, and the loader.
 * Listeners: submission with STARTTLS (RFC 6409, RFC 3207) and implicit TLS (RFC 8314).
 * Timeouts default to RFC 5321 4.5.3.2. Documented for administrators in docs/configuration.md. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

/* A configuration file is small; refuse anything absurd rather than read it all. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Longest line we accept (a path of PATH_MAX plus the key). */
#define CONFIG_LINE_MAX (PATH_MAX + 128)
/* Ceiling for the thread defaults taken from the number of cores. */
#define CONFIG_THREADS_MAX 256

enum key_type {
    KEY_HOSTNAME, /* char[], a DNS name */
    KEY_UINT,     /* unsigned, decimal */
    KEY_SIZE,     /* uint64_t, decimal with optional K/M/G (binary multiples) */
    KEY_PATH,     /* char[PATH_MAX], relative to the data directory unless absolute */
    KEY_LISTEN,   /* one listener, appended */
    KEY_USER,     /* char[], a POSIX portable user name */
    KEY_BOOL,     /* bool: on/off, yes/no, true/false */
};

struct config_key {
    const char *name;
    enum key_type type;
    uint64_t min, max;
    uint64_t def; /* for numbers; DEF_CORES = the number of cores */
    size_t offset;
    size_t size; /* of the field, for strings */
};

#define DEF_CORES UINT64_MAX

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct config_key config_keys[] = {
    {"hostname", KEY_HOSTNAME, 1, 255, 0, FIELD(hostname)},
    {"listen", KEY_LISTEN, 0, 0, 0, FIELD(listeners)},
    {"max-message-size", KEY_SIZE, 1 * KIB, 2 * GIB, 35 * MIB, FIELD(max_message_size)},
    {"max-recipients", KEY_UINT, 1, 100000, 500, FIELD(max_recipients)},
    {"max-errors", KEY_UINT, 1, 1000, 10, FIELD(max_errors)},
    /* RFC 5321 4.5.3.2.7: the server should wait at least 5 minutes for the next command. */
    {"command-timeout", KEY_UINT, 1, 3600, 300, FIELD(command_timeout)},
    /* RFC 5321 4.5.3.2.5: 3 minutes between data blocks. */
    {"data-timeout", KEY_UINT, 1, 3600, 180, FIELD(data_timeout)},
    {"max-connections", KEY_UINT, 1, 1000000, 1000, FIELD(max_connections)},
    {"max-connections-per-ip", KEY_UINT, 1, 1000000, 50, FIELD(max_connections_per_ip)},
    {"io-threads", KEY_UINT, 1, CONFIG_THREADS_MAX, DEF_CORES, FIELD(io_threads)},
    {"auth-threads", KEY_UINT, 1, CONFIG_THREADS_MAX, DEF_CORES, FIELD(auth_threads)},
    /* 8 KiB is libsodium's crypto_pwhash_MEMLIMIT_MIN (for tests); production wants >= 64M. */
    {"auth-memlimit", KEY_SIZE, 8 * KIB, 4 * GIB, 64 * MIB, FIELD(auth_memlimit)},
    {"tls-cert", KEY_PATH, 1, PATH_MAX - 1, 0, FIELD(tls_cert)},
    {"tls-key", KEY_PATH, 1, PATH_MAX - 1, 0, FIELD(tls_key)},
    {"user", KEY_USER, 1, 32, 0, FIELD(user)},
    /* smart lockout (docs/lockout.md); 0 turns a threshold or the delay off */
    {"lockout-account-failures", KEY_UINT, 0, 1000000, 10, FIELD(lockout_account_failures)},
    {"lockout-address-failures", KEY_UINT, 0, 1000000, 30, FIELD(lockout_address_failures)},
    {"lockout-window", KEY_UINT, 1, 86400 * 30, 900, FIELD(lockout_window)},
    {"lockout-familiar-days", KEY_UINT, 0, 3650, 30, FIELD(lockout_familiar_days)},
    {"lockout-delay", KEY_UINT, 0, 10000, 500, FIELD(lockout_delay)},
    /* small messages acknowledged from the spool's journal (docs/spool.md) */
    {"spool-journal", KEY_BOOL, 0, 1, 1, FIELD(spool_journal)},
    /* delivery (docs/delivery.md); times in seconds */
    /* 0 pauses delivery: messages are queued and kept (maintenance, benchmarks) */
    {"delivery-threads", KEY_UINT, 0, 1000, 16, FIELD(delivery_threads)},
    {"queue-lifetime", KEY_UINT, 60, 86400 * 30, 86400 * 5, FIELD(queue_lifetime)},
    {"retry-min", KEY_UINT, 1, 86400, 300, FIELD(retry_min)},
    {"retry-max", KEY_UINT, 1, 86400, 4000, FIELD(retry_max)},
    {"delay-warning", KEY_UINT, 0, 86400 * 30, 0, FIELD(delay_warning)},
    {"bounce-size-limit", KEY_SIZE, 1 * KIB, 64 * MIB, 50000, FIELD(bounce_size_limit)},
};

#define N_KEYS (sizeof config_keys / sizeof config_keys[0])

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

static unsigned cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : (unsigned)n;
}

static void add_default_listener(struct config *c, int port, enum listener_tls tls)
{
    struct listener_config *l = &c->listeners[c->n_listeners++];
    memset(l, 0, sizeof *l);
    snprintf(l->host, sizeof l->host, "127.0.0.1");
    l->port = port;
    l->tls = tls;
    l->require_tls = true;
    l->allow_cleartext_auth = false;
    snprintf(l->name, sizeof l->name, "127.0.0.1:%d", port);
}

void config_defaults(struct config *c, const char *datadir)
{
    memset(c, 0, sizeof *c);
    if (datadir == NULL || *datadir == '\0')
        datadir = "./var";
    snprintf(c->datadir, sizeof c->datadir, "%s", datadir);

    if (gethostname(c->hostname, sizeof c->hostname) != 0 || c->hostname[0] == '\0')
        snprintf(c->hostname, sizeof c->hostname, "localhost");
    c->hostname[sizeof c->hostname - 1] = '\0';

    add_default_listener(c, 2587, LISTENER_STARTTLS);
    add_default_listener(c, 2465, LISTENER_IMPLICIT_TLS);

    for (size_t i = 0; i < N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];
        char *field = (char *)c + k->offset;
        if (k->type == KEY_UINT) {
            unsigned v = k->def != DEF_CORES ? (unsigned)k->def : cores();
            memcpy(field, &v, sizeof v);
        } else if (k->type == KEY_SIZE) {
            uint64_t v = k->def;
            memcpy(field, &v, sizeof v);
        } else if (k->type == KEY_BOOL) {
            bool v = k->def != 0;
            memcpy(field, &v, sizeof v);
        }
    }
    snprintf(c->tls_cert, sizeof c->tls_cert, "%.*s/tls/cert.pem", PATH_MAX - 20, c->datadir);
    snprintf(c->tls_key, sizeof c->tls_key, "%.*s/tls/key.pem", PATH_MAX - 20, c->datadir);
}

/* Decimal digits only (no sign, no spaces) into *out; -1 on syntax or overflow. */
static int parse_decimal(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* "35M", "1024", "2g": binary multiples. */
static int parse_size(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    uint64_t mult = 1;
    if (n > 0) {
        switch (s[n - 1]) {
        case 'k':
        case 'K':
            mult = KIB;
            break;
        case 'm':
        case 'M':
            mult = MIB;
            break;
        case 'g':
        case 'G':
            mult = GIB;
            break;
        }
        if (mult != 1)
            n--;
    }
    uint64_t v;
    if (parse_decimal(s, n, &v) != 0 || v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

/* Prints a size limit the way an administrator would write it: 8K, 35M, 2G. */
static void format_size(uint64_t v, char *buf, size_t cap)
{
    if (v != 0 && v % GIB == 0)
        snprintf(buf, cap, "%lluG", (unsigned long long)(v / GIB));
    else if (v != 0 && v % MIB == 0)
        snprintf(buf, cap, "%lluM", (unsigned long long)(v / MIB));
    else if (v != 0 && v % KIB == 0)
        snprintf(buf, cap, "%lluK", (unsigned long long)(v / KIB));
    else
        snprintf(buf, cap, "%llu", (unsigned long long)v);
}

/* A DNS name (RFC 1035 2.3.1 letters, digits, hyphens, dots); what the greeting announces. */
static bool valid_hostname(const char *s)
{
    size_t label = 0;
    for (const char *p = s; *p != '\0'; p++) {
        char ch = *p;
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Splits the next whitespace-separated word off *p; returns NULL at the end. */
static char *next_word(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    char *w = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    if (*s != '\0')
        *s++ = '\0';
    *p = s;
    return w;
}

/* "ADDRESS:PORT" or "[IPV6]:PORT" into l->host and l->port. Returns NULL or a reason. */
static const char *parse_endpoint(const char *w, struct listener_config *l)
{
    const char *host, *colon;
    size_t hostlen;
    int family;
    if (w[0] == '[') {
        const char *close = strchr(w, ']');
        if (close == NULL)
            return "missing ']' after IPv6 address";
        host = w + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
        if (*colon != ':')
            return "expected ':PORT' after ']'";
        family = AF_INET6;
    } else {
        colon = strrchr(w, ':');
        if (colon == NULL)
            return "expected ADDRESS:PORT";
        host = w;
        hostlen = (size_t)(colon - w);
        if (memchr(host, ':', hostlen) != NULL)
            return "an IPv6 address must be written in brackets, e.g. [::1]:2587";
        family = AF_INET;
    }
    if (hostlen == 0 || hostlen >= sizeof l->host)
        return "missing or overlong address";
    memcpy(l->host, host, hostlen);
    l->host[hostlen] = '\0';
    unsigned char buf[16];
    if (inet_pton(family, l->host, buf) != 1)
        return family == AF_INET6 ? "not a numeric IPv6 address"
                                  : "not a numeric IPv4 address (host names are not accepted)";
    /* canonical form, so that [0:0::1] and [::1] are seen to be the same address */
    if (inet_ntop(family, buf, l->host, sizeof l->host) == NULL)
        return "cannot format the address";
    uint64_t port;
    const char *ps = colon + 1;
    if (parse_decimal(ps, strlen(ps), &port) != 0 || port < 1 || port > 65535)
        return "port must be a number between 1 and 65535";
    l->port = (int)port;
    return NULL;
}

/* listen = ENDPOINT starttls|tls [allow-cleartext-auth] [no-require-tls] */
static int parse_listen(char *value, struct config *c, bool *seen, unsigned lineno,
                        const unsigned *listen_line, char *err, size_t errlen)
{
    struct listener_config l;
    memset(&l, 0, sizeof l);
    l.require_tls = true;
    char *p = value;
    char *endpoint = next_word(&p);
    char *mode = next_word(&p);
    if (endpoint == NULL || mode == NULL) {
        set_err(err, errlen, "line %u: listen: expected ADDRESS:PORT starttls|tls [flags]", lineno);
        return -1;
    }
    const char *why = parse_endpoint(endpoint, &l);
    if (why != NULL) {
        set_err(err, errlen, "line %u: listen '%s': %s", lineno, endpoint, why);
        return -1;
    }
    snprintf(l.name, sizeof l.name, "%s", endpoint);
    if (strcmp(mode, "starttls") == 0) {
        l.tls = LISTENER_STARTTLS;
    } else if (strcmp(mode, "tls") == 0) {
        l.tls = LISTENER_IMPLICIT_TLS;
    } else {
        set_err(err, errlen, "line %u: listen: unknown mode '%s' (expected starttls or tls)",
                lineno, mode);
        return -1;
    }
    for (char *flag = next_word(&p); flag != NULL; flag = next_word(&p)) {
        if (strcmp(flag, "allow-cleartext-auth") == 0) {
            l.allow_cleartext_auth = true;
        } else if (strcmp(flag, "no-require-tls") == 0) {
            l.require_tls = false;
        } else {
            set_err(err, errlen, "line %u: listen: unknown flag '%s'", lineno, flag);
            return -1;
        }
        if (l.tls == LISTENER_IMPLICIT_TLS) {
            set_err(err, errlen, "line %u: listen: '%s' only applies to starttls listeners", lineno,
                    flag);
            return -1;
        }
    }

    if (!*seen) {
        c->n_listeners = 0; /* the first listen line replaces the defaults */
        *seen = true;
    }
    for (size_t i = 0; i < c->n_listeners; i++) {
        if (c->listeners[i].port == l.port && strcmp(c->listeners[i].host, l.host) == 0) {
            set_err(err, errlen, "line %u: listen '%s': already defined on line %u", lineno,
                    endpoint, listen_line[i]);
            return -1;
        }
    }
    if (c->n_listeners >= CONFIG_LISTENERS_MAX) {
        set_err(err, errlen, "line %u: listen: too many listeners (at most %d)", lineno,
                CONFIG_LISTENERS_MAX);
        return -1;
    }
    c->listeners[c->n_listeners++] = l;
    return 0;
}

/* Applies one non-listen key's value. */
static int apply_key(const struct config_key *k, const char *value, struct config *c,
                     unsigned lineno, char *err, size_t errlen)
{
    char *field = (char *)c + k->offset;
    uint64_t v;
    switch (k->type) {
    case KEY_HOSTNAME:
        if (strlen(value) > k->max || !valid_hostname(value)) {
            set_err(err, errlen, "line %u: %s '%s' is not a valid host name", lineno, k->name,
                    value);
            return -1;
        }
        snprintf(field, k->size, "%s", value);
        return 0;
    case KEY_USER: {
        /* POSIX 3.437 portable user name: letters, digits, '.', '_', '-', not leading '-' */
        size_t n = strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789._-");
        if (n != strlen(value) || n > k->max || value[0] == '-') {
            set_err(err, errlen, "line %u: user '%s' is not a valid user name", lineno, value);
            return -1;
        }
        snprintf(field, k->size, "%s", value);
        return 0;
    }
    case KEY_PATH: {
        size_t n = strlen(value);
        bool relative = value[0] != '/';
        size_t total = relative ? strlen(c->datadir) + 1 + n : n;
        if (total > k->max) {
            set_err(err, errlen, "line %u: %s: path too long", lineno, k->name);
            return -1;
        }
        if (relative)
            snprintf(field, k->size, "%s/%s", c->datadir, value);
        else
            snprintf(field, k->size, "%s", value);
        return 0;
    }
    case KEY_UINT:
        if (parse_decimal(value, strlen(value), &v) != 0 || v < k->min || v > k->max) {
            set_err(err, errlen, "line %u: %s must be between %llu and %llu", lineno, k->name,
                    (unsigned long long)k->min, (unsigned long long)k->max);
            return -1;
        }
        unsigned u = (unsigned)v;
        memcpy(field, &u, sizeof u);
        return 0;
    case KEY_SIZE:
        if (parse_size(value, &v) != 0 || v < k->min || v > k->max) {
            char lo[32], hi[32];
            format_size(k->min, lo, sizeof lo);
            format_size(k->max, hi, sizeof hi);
            set_err(err, errlen, "line %u: %s must be a size between %s and %s (K, M, G suffixes)",
                    lineno, k->name, lo, hi);
            return -1;
        }
        memcpy(field, &v, sizeof v);
        return 0;
    case KEY_BOOL: {
        static const char *const yes[] = {"on", "yes", "true"}, *const no[] = {"off", "no",
                                                                               "false"};
        for (size_t i = 0; i < 3; i++)
            if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
                bool b = strcmp(value, yes[i]) == 0;
                memcpy(field, &b, sizeof b);
                return 0;
            }
        set_err(err, errlen, "line %u: %s must be on or off", lineno, k->name);
        return -1;
    }
    case KEY_LISTEN:
        break;
    }
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int config_parse(const char *text, size_t len, struct config *c, char *err, size_t errlen)
{
    unsigned key_line[N_KEYS] = {0};
    unsigned listen_line[CONFIG_LISTENERS_MAX] = {0};
    bool listen_seen = false;
    char line[CONFIG_LINE_MAX];
    size_t pos = 0;
    for (unsigned lineno = 1; pos < len; lineno++) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += n + (nl != NULL);
        if (n >= sizeof line) {
            set_err(err, errlen, "line %u: line too long (at most %d octets)", lineno,
                    CONFIG_LINE_MAX - 1);
            return -1;
        }
        if (memchr(start, '\0', n) != NULL) {
            set_err(err, errlen, "line %u: NUL character", lineno);
            return -1;
        }
        memcpy(line, start, n);
        line[n] = '\0';

        /* '#' starts a comment at the start of a line or after whitespace. */
        for (char *h = strchr(line, '#'); h != NULL; h = strchr(h + 1, '#')) {
            if (h == line || h[-1] == ' ' || h[-1] == '\t') {
                *h = '\0';
                break;
            }
        }
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            set_err(err, errlen, "line %u: expected 'key = value'", lineno);
            return -1;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);

        size_t i = 0;
        while (i < N_KEYS && strcmp(config_keys[i].name, key) != 0)
            i++;
        if (i == N_KEYS) {
            set_err(err, errlen, "line %u: unknown key '%s'", lineno, key);
            return -1;
        }
        const struct config_key *k = &config_keys[i];
        if (*value == '\0') {
            set_err(err, errlen, "line %u: %s: missing value", lineno, k->name);
            return -1;
        }
        if (k->type == KEY_LISTEN) {
            if (parse_listen(value, c, &listen_seen, lineno, listen_line, err, errlen) != 0)
                return -1;
            listen_line[c->n_listeners - 1] = lineno;
            continue;
        }
        if (key_line[i] != 0) {
            set_err(err, errlen, "line %u: %s already set on line %u", lineno, k->name,
                    key_line[i]);
            return -1;
        }
        key_line[i] = lineno;
        if (apply_key(k, value, c, lineno, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Reads the whole file into a malloc'd buffer. Returns 1 when it does not exist, 0 on success,
 * -1 with err. */
static int read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    int rc = -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        set_err(err, errlen, "%s: larger than %d octets", path, CONFIG_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break; /* the file shrank while we read it: parse what is there */
        got += (size_t)r;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (close(fd) != 0 && rc == 0) {
        set_err(err, errlen, "cannot close %s: %s", path, strerror(errno));
        free(*text);
        *text = NULL;
        rc = -1;
    }
    return rc;
}

int config_load(const char *datadir, struct config *c, char *err, size_t errlen)
{
    config_defaults(c, datadir);
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", c->datadir, CONFIG_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof path) {
        set_err(err, errlen, "data directory path too long: %s", c->datadir);
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err, errlen);
    if (rc == 1)
        return 0; /* no configuration file: defaults */
    if (rc != 0)
        return -1;
    char why[512];
    rc = config_parse(text, len, c, why, sizeof why);
    free(text);
    if (rc != 0) {
        set_err(err, errlen, "%s: %s", path, why);
        return -1;
    }
    return 0;
}
