/* smtp-doctor.c: the smtp-doctor command line (SPEC section 8, docs/smtp-doctor.md):
 *   smtp-doctor [options] HOST[:PORT]     walk the submission path and diagnose what fails
 *   smtp-doctor explain 'REPLY TEXT'      diagnose a reply without connecting
 *   smtp-doctor explain --log FILE        every reply found in a client's log
 * Reads the password or token (standard input or a command), wipes it after use, never prints
 * it. Exit: 0 submission works, 1 a step fails (explain: a reply is unknown), 2 bad usage,
 * 3 the server cannot be reached. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "doctor_kb.h"
#include "doctor_report.h"
#include "doctor_steps.h"

#define SECRET_MAX 16384
#define LOG_MAX (16u * 1024 * 1024)
#define TIMEOUT_DEFAULT 10
#define TIMEOUT_MAX 3600

static const char usage_text[] =
    "usage: smtp-doctor [options] HOST[:PORT]\n"
    "       smtp-doctor [--provider NAME] [--json] explain 'REPLY TEXT'\n"
    "       smtp-doctor [--provider NAME] [--json] explain --log FILE\n"
    "options:\n"
    "  --tls starttls|implicit|none   (default: implicit on port 465, else starttls)\n"
    "  --cafile FILE   verify the server certificate against FILE, not the system store\n"
    "  --insecure      do not require a verified certificate (warns)\n"
    "  --user ADDRESS  --password-stdin | --token-stdin | --token-cmd CMD\n"
    "  --mech plain|login|xoauth2|oauthbearer   (default: the best offered)\n"
    "  --from ADDRESS (default --user)  --to ADDRESS  --send (send a test message)\n"
    "  --helo NAME  --timeout SECONDS (default 10)  --provider NAME\n"
    "  --json  --transcript  --no-color\n"
    "exit: 0 submission works, 1 a step fails, 2 bad usage, 3 server cannot be reached\n";

/* A one-line reason on standard error, exit 2 (SPEC section 8). */
static _Noreturn void usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "smtp-doctor: ");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, " (smtp-doctor --help for usage)\n");
    exit(2);
}

enum {
    OPT_TLS = 256,
    OPT_CAFILE,
    OPT_INSECURE,
    OPT_MECH,
    OPT_USER,
    OPT_PASSWORD_STDIN,
    OPT_TOKEN_STDIN,
    OPT_TOKEN_CMD,
    OPT_FROM,
    OPT_TO,
    OPT_SEND,
    OPT_HELO,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_TRANSCRIPT,
    OPT_NO_COLOR,
    OPT_PROVIDER,
    OPT_LOG,
};

static const struct option long_opts[] = {
    {"tls", required_argument, NULL, OPT_TLS},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"mech", required_argument, NULL, OPT_MECH},
    {"user", required_argument, NULL, OPT_USER},
    {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
    {"token-stdin", no_argument, NULL, OPT_TOKEN_STDIN},
    {"token-cmd", required_argument, NULL, OPT_TOKEN_CMD},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"send", no_argument, NULL, OPT_SEND},
    {"helo", required_argument, NULL, OPT_HELO},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"transcript", no_argument, NULL, OPT_TRANSCRIPT},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"log", required_argument, NULL, OPT_LOG},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct cli {
    struct doctor_opts d;
    struct dout_opts out;
    bool tls_given;
    int secret_sources;
    bool password_stdin, token_stdin;
    const char *token_cmd;
    const char *log;
    char host[256];
    char port[8];
};

/* The first line of f into buf, without its line end. 0, or -1 (nothing, too long, error). */
static int first_line(FILE *f, char *buf, size_t cap)
{
    setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the secret */
    if (fgets(buf, (int)cap, f) == NULL)
        return -1;
    size_t n = strlen(buf);
    bool ended = n > 0 && buf[n - 1] == '\n';
    if (!ended && n + 1 >= cap)
        return -1;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return n > 0 ? 0 : -1;
}

static void read_secret(struct cli *c, char *secret, size_t cap)
{
    if (c->password_stdin || c->token_stdin) {
        if (first_line(stdin, secret, cap) != 0) {
            sodium_memzero(secret, cap);
            usage("no %s on the first line of standard input (or longer than 16 KiB)",
                  c->password_stdin ? "password" : "token");
        }
        return;
    }
    FILE *p = popen(c->token_cmd, "r");
    if (p == NULL) {
        fprintf(stderr, "smtp-doctor: cannot run --token-cmd: %s\n", strerror(errno));
        exit(2);
    }
    int got = first_line(p, secret, cap);
    char drain[512];
    while (fread(drain, 1, sizeof drain, p) > 0) /* let the command finish writing */
        ;
    sodium_memzero(drain, sizeof drain);
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != 0) {
        sodium_memzero(secret, cap);
        if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            fprintf(stderr, "smtp-doctor: --token-cmd exited with status %d\n",
                    WEXITSTATUS(status));
            exit(2);
        }
        usage("--token-cmd printed no token on its first line%s", "");
    }
}

/* HOST, HOST:PORT, [IPv6]:PORT, [IPv6], or a bare IPv6 address. */
static void parse_target(struct cli *c, const char *arg)
{
    const char *port = NULL;
    size_t hlen;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            usage("bad target \"%s\": expected [ADDRESS]:PORT", arg);
        hlen = (size_t)(close - arg - 1);
        arg++;
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(arg, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hlen = (size_t)(colon - arg);
            port = colon + 1;
        } else {
            hlen = strlen(arg); /* no port, or a bare IPv6 address */
        }
    }
    if (hlen == 0 || hlen >= sizeof c->host)
        usage("bad target \"%s\": no host name", arg);
    memcpy(c->host, arg, hlen);
    c->host[hlen] = '\0';
    if (port == NULL) {
        snprintf(c->port, sizeof c->port, "587");
        return;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (port[0] == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 65535)
        usage("bad port \"%s\": expected 1 to 65535", port);
    snprintf(c->port, sizeof c->port, "%ld", p);
}

static void parse_options(struct cli *c, int argc, char **argv)
{
    int ch;
    c->d.timeout_ms = TIMEOUT_DEFAULT * 1000;
    bool no_color = false;
    opterr = 0; /* one line of our own on bad usage */
    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (ch) {
        case OPT_TLS:
            c->tls_given = true;
            if (strcmp(optarg, "starttls") == 0)
                c->d.tls = DTLS_STARTTLS;
            else if (strcmp(optarg, "implicit") == 0)
                c->d.tls = DTLS_IMPLICIT;
            else if (strcmp(optarg, "none") == 0)
                c->d.tls = DTLS_NONE;
            else
                usage("--tls %s: expected starttls, implicit or none", optarg);
            break;
        case OPT_CAFILE:
            if (access(optarg, R_OK) != 0)
                usage("--cafile %s: cannot be read", optarg);
            c->d.cafile = optarg;
            break;
        case OPT_INSECURE:
            c->d.insecure = true;
            break;
        case OPT_MECH: {
            static const char *const known[] = {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"};
            c->d.mech = NULL;
            for (size_t i = 0; i < 4; i++)
                if (strcasecmp(optarg, known[i]) == 0)
                    c->d.mech = known[i];
            if (c->d.mech == NULL)
                usage("--mech %s: expected plain, login, xoauth2 or oauthbearer", optarg);
            break;
        }
        case OPT_USER:
            c->d.user = optarg;
            break;
        case OPT_PASSWORD_STDIN:
            c->password_stdin = true;
            c->secret_sources++;
            break;
        case OPT_TOKEN_STDIN:
            c->token_stdin = true;
            c->secret_sources++;
            break;
        case OPT_TOKEN_CMD:
            c->token_cmd = optarg;
            c->secret_sources++;
            break;
        case OPT_FROM:
            c->d.from = optarg;
            break;
        case OPT_TO:
            c->d.to = optarg;
            break;
        case OPT_SEND:
            c->d.send = true;
            break;
        case OPT_HELO:
            c->d.helo = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end = NULL;
            errno = 0;
            long t = strtol(optarg, &end, 10);
            if (optarg[0] == '\0' || *end != '\0' || errno != 0 || t < 1 || t > TIMEOUT_MAX)
                usage("--timeout %s: expected 1 to 3600 seconds", optarg);
            c->d.timeout_ms = (int)t * 1000;
            break;
        }
        case OPT_JSON:
            c->out.json = true;
            break;
        case OPT_TRANSCRIPT:
            c->out.transcript = true;
            break;
        case OPT_NO_COLOR:
            no_color = true;
            break;
        case OPT_PROVIDER:
            c->d.provider = provider_from_name(optarg);
            if (c->d.provider == PROVIDER_UNKNOWN && strcmp(optarg, "unknown") != 0)
                usage("--provider %s: expected exchange-online, gmail, postfix, opensmtpd, "
                      "submitd or unknown",
                      optarg);
            break;
        case OPT_LOG:
            c->log = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            if (optopt != 0 && optopt < OPT_TLS)
                usage("-%s: unknown option", (char[]){(char)optopt, '\0'});
            usage(optopt != 0 ? "%s needs an argument" : "%s: unknown option", argv[optind - 1]);
        }
    }
    const char *nc = getenv("NO_COLOR");
    c->out.color = !no_color && !c->out.json && isatty(STDOUT_FILENO) && (nc == NULL || !nc[0]);
}

static void check_walk_options(struct cli *c)
{
    struct doctor_opts *d = &c->d;
    if (c->log != NULL)
        usage("--log belongs to explain%s", "");
    if (c->secret_sources > 1)
        usage("give only one of --password-stdin, --token-stdin and --token-cmd%s", "");
    if (c->secret_sources == 1 && d->user == NULL)
        usage("a password or token needs --user ADDRESS%s", "");
    if (d->user != NULL && c->secret_sources == 0)
        usage("--user needs --password-stdin, --token-stdin or --token-cmd%s", "");
    d->secret_is_token = c->token_stdin || c->token_cmd != NULL;
    if (d->mech != NULL && c->secret_sources == 0)
        usage("--mech needs --user and a password or token%s", "");
    if (d->mech != NULL) {
        bool oauth = strcmp(d->mech, "XOAUTH2") == 0 || strcmp(d->mech, "OAUTHBEARER") == 0;
        if (oauth != d->secret_is_token)
            usage(oauth ? "--mech %s takes a token: use --token-stdin or --token-cmd"
                        : "--mech %s takes a password: use --password-stdin",
                  d->mech);
    }
    if (d->send && d->to == NULL)
        usage("--send needs --to ADDRESS%s", "");
    if (d->send && d->from == NULL && d->user == NULL)
        usage("--send needs --from or --user%s", "");
    if (d->insecure && d->cafile != NULL)
        usage("--insecure and --cafile contradict each other%s", "");
    if (!c->tls_given)
        d->tls = strcmp(c->port, "465") == 0 ? DTLS_IMPLICIT : DTLS_STARTTLS;
    if (d->tls == DTLS_NONE && (d->cafile != NULL || d->insecure))
        usage("--cafile and --insecure need TLS, not --tls none%s", "");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "smtp-doctor: cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char *buf = malloc(LOG_MAX + 1);
    if (buf == NULL) {
        fprintf(stderr, "smtp-doctor: out of memory reading %s\n", path);
        exit(2);
    }
    *len = fread(buf, 1, LOG_MAX, f);
    if (ferror(f)) {
        fprintf(stderr, "smtp-doctor: cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    buf[*len] = '\0';
    if (f != stdin)
        fclose(f);
    return buf;
}

static int explain(struct cli *c, struct kb *kb, int nargs, char **args)
{
    if (kb == NULL)
        return 1;
    if (c->log != NULL) {
        if (nargs != 0)
            usage("explain takes either 'REPLY TEXT' or --log FILE%s", "");
        size_t len = 0;
        char *text = read_file(c->log, &len);
        int rc = doctor_explain(stdout, kb, text, len, true, c->d.provider, &c->out);
        free(text);
        return rc;
    }
    if (nargs != 1)
        usage("explain takes one argument: 'REPLY TEXT' (quoted), or --log FILE%s", "");
    return doctor_explain(stdout, kb, args[0], strlen(args[0]), false, c->d.provider, &c->out);
}

int main(int argc, char **argv)
{
    static struct cli c;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "smtp-doctor: cannot ignore SIGPIPE: %s\n", strerror(errno));
        return 2;
    }
    parse_options(&c, argc, argv);
    int nargs = argc - optind;
    char **args = argv + optind;
    bool is_explain = nargs > 0 && strcmp(args[0], "explain") == 0;
    if (!is_explain && nargs != 1)
        usage(nargs == 0 ? "no server given: smtp-doctor [options] HOST[:PORT]%s"
                         : "one server at a time: smtp-doctor [options] HOST[:PORT]%s",
              "");
    if (!is_explain) {
        parse_target(&c, args[0]);
        check_walk_options(&c);
    }

    char err[256] = "";
    struct kb *kb = kb_load_default(err, sizeof err);
    if (kb == NULL)
        fprintf(stderr,
                "smtp-doctor: the built-in knowledge base does not load (%s); no "
                "diagnoses\n",
                err);
    if (is_explain) {
        int rc = explain(&c, kb, nargs - 1, args + 1);
        kb_free(kb);
        return rc;
    }

    static char secret[SECRET_MAX];
    if (c.secret_sources == 1) {
        read_secret(&c, secret, sizeof secret);
        c.d.secret = secret;
    }
    c.d.host = c.host;
    c.d.port = c.port;
    struct doctor_result *r = doctor_run(&c.d, kb);
    sodium_memzero(secret, sizeof secret);
    c.d.secret = NULL;
    if (r == NULL) {
        fprintf(stderr, "smtp-doctor: out of memory\n");
        kb_free(kb);
        return 1;
    }
    int rc = dresult_exit(r->result);
    if (doctor_report(stdout, r, &c.out) != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "smtp-doctor: cannot write the report: %s\n", strerror(errno));
        if (rc == 0)
            rc = 1;
    }
    doctor_result_free(r);
    kb_free(kb);
    return rc;
}
