/* test_config.c: configuration defaults, every key, every error, listener syntax, and loading
 * DIR/submitd.conf (src/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static int parse(const char *text, struct config *c, char *err, size_t errlen)
{
    config_defaults(c, "/data");
    err[0] = '\0';
    return config_parse(text, strlen(text), c, err, errlen);
}

/* Parses text that must fail, and checks the error message exactly. */
static void expect_error(const char *text, const char *want)
{
    struct config c;
    char err[512];
    if (parse(text, &c, err, sizeof err) != -1)
        fail_msg("accepted: %s", text);
    if (strcmp(err, want) != 0)
        fail_msg("for %s\n got: %s\nwant: %s", text, err, want);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c, "/srv/submitd");
    assert_string_equal(c.datadir, "/srv/submitd");
    assert_true(c.hostname[0] != '\0');
    assert_int_equal(c.n_listeners, 2);
    assert_string_equal(c.listeners[0].host, "127.0.0.1");
    assert_int_equal(c.listeners[0].port, 2587);
    assert_int_equal(c.listeners[0].tls, LISTENER_STARTTLS);
    assert_true(c.listeners[0].require_tls);
    assert_false(c.listeners[0].allow_cleartext_auth);
    assert_string_equal(c.listeners[0].name, "127.0.0.1:2587");
    assert_string_equal(c.listeners[1].host, "127.0.0.1");
    assert_int_equal(c.listeners[1].port, 2465);
    assert_int_equal(c.listeners[1].tls, LISTENER_IMPLICIT_TLS);
    assert_string_equal(c.listeners[1].name, "127.0.0.1:2465");
    assert_int_equal(c.max_message_size, 35ull * 1024 * 1024);
    assert_int_equal(c.max_recipients, 500);
    assert_true(c.spool_journal);
    assert_int_equal(c.max_errors, 10);
    assert_int_equal(c.command_timeout, 300);
    assert_int_equal(c.data_timeout, 180);
    assert_int_equal(c.max_connections, 1000);
    assert_int_equal(c.max_connections_per_ip, 50);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cores < 1 ? 1 : cores > 256 ? 256 : (unsigned)cores;
    assert_int_equal(c.io_threads, want);
    assert_int_equal(c.auth_threads, want);
    assert_int_equal(c.auth_memlimit, 64ull * 1024 * 1024);
    assert_string_equal(c.tls_cert, "/srv/submitd/tls/cert.pem");
    assert_string_equal(c.tls_key, "/srv/submitd/tls/key.pem");

    config_defaults(&c, NULL);
    assert_string_equal(c.datadir, "./var"); /* SPEC section 8 */
    assert_string_equal(c.tls_key, "./var/tls/key.pem");

    /* empty text, comments and blank lines change nothing */
    struct config d;
    char err[256];
    config_defaults(&c, "/data");
    assert_int_equal(parse("\n# comment\n   \n\t# another\n", &d, err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
}

static void test_every_key(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    const char *text = "hostname = mail.example.org\n"
                       "max-message-size = 50M\n"
                       "max-recipients = 1000\n"
                       "max-errors = 20\n"
                       "command-timeout = 600\n"
                       "data-timeout = 240\n"
                       "max-connections = 5000\n"
                       "max-connections-per-ip = 100\n"
                       "io-threads = 4\n"
                       "auth-threads = 3\n"
                       "auth-memlimit = 128M\n"
                       "tls-cert = /etc/ssl/submitd.pem\n"
                       "tls-key = keys/submitd.key\n"
                       "spool-journal = off\n";
    assert_int_equal(parse(text, &c, err, sizeof err), 0);
    assert_false(c.spool_journal);
    assert_string_equal(c.hostname, "mail.example.org");
    assert_int_equal(c.max_message_size, 50ull * 1024 * 1024);
    assert_int_equal(c.max_recipients, 1000);
    assert_int_equal(c.max_errors, 20);
    assert_int_equal(c.command_timeout, 600);
    assert_int_equal(c.data_timeout, 240);
    assert_int_equal(c.max_connections, 5000);
    assert_int_equal(c.max_connections_per_ip, 100);
    assert_int_equal(c.io_threads, 4);
    assert_int_equal(c.auth_threads, 3);
    assert_int_equal(c.auth_memlimit, 128ull * 1024 * 1024);
    assert_string_equal(c.tls_cert, "/etc/ssl/submitd.pem");
    assert_string_equal(c.tls_key, "/data/keys/submitd.key"); /* relative to the data dir */
    assert_int_equal(c.n_listeners, 2);                       /* untouched without listen */
}

static void test_syntax(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    /* whitespace around '=', CRLF line ends, trailing comments, no final newline */
    assert_int_equal(parse("  max-recipients\t=\t7  # seven\r\nmax-errors=3", &c, err, sizeof err),
                     0);
    assert_int_equal(c.max_recipients, 7);
    assert_int_equal(c.max_errors, 3);
    /* '#' inside a value (not after whitespace) is part of the value */
    assert_int_equal(parse("tls-cert = /etc/a#b.pem\n", &c, err, sizeof err), 0);
    assert_string_equal(c.tls_cert, "/etc/a#b.pem");
}

static void test_sizes(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    struct {
        const char *text;
        uint64_t want;
    } ok[] = {
        {"max-message-size = 1024", 1024},     {"max-message-size = 1K", 1024},
        {"max-message-size = 1k", 1024},       {"max-message-size = 150M", 150ull << 20},
        {"max-message-size = 2g", 2ull << 30}, {"max-message-size = 2G", 2ull << 30},
        {"auth-memlimit = 8K", 8192},          {"auth-memlimit = 4G", 4ull << 30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(parse(ok[i].text, &c, err, sizeof err), 0);
        uint64_t got = strstr(ok[i].text, "memlimit") ? c.auth_memlimit : c.max_message_size;
        assert_int_equal(got, ok[i].want);
    }
    const char *msg = "line 1: max-message-size must be a size between 1K and 2G (K, M, G "
                      "suffixes)";
    expect_error("max-message-size = 1023", msg);
    expect_error("max-message-size = 3G", msg);
    expect_error("max-message-size = 10T", msg);
    expect_error("max-message-size = M", msg);
    expect_error("max-message-size = 1.5M", msg);
    expect_error("max-message-size = -1", msg);
    expect_error("max-message-size = 99999999999999999999G", msg);
    expect_error("max-message-size = 18014398509481984K", msg); /* overflows when multiplied */
    expect_error("max-message-size = 10 M", msg);
    expect_error("spool-journal = maybe", "line 1: spool-journal must be on or off");
    expect_error("spool-journal = ON", "line 1: spool-journal must be on or off");
    expect_error("auth-memlimit = 4097M",
                 "line 1: auth-memlimit must be a size between 8K and 4G (K, M, G suffixes)");
}

static void test_number_limits(void **state)
{
    (void)state;
    struct {
        const char *key;
        unsigned min, max;
        size_t offset;
    } keys[] = {
        {"max-recipients", 1, 100000, offsetof(struct config, max_recipients)},
        {"max-errors", 1, 1000, offsetof(struct config, max_errors)},
        {"command-timeout", 1, 3600, offsetof(struct config, command_timeout)},
        {"data-timeout", 1, 3600, offsetof(struct config, data_timeout)},
        {"max-connections", 1, 1000000, offsetof(struct config, max_connections)},
        {"max-connections-per-ip", 1, 1000000, offsetof(struct config, max_connections_per_ip)},
        {"io-threads", 1, 256, offsetof(struct config, io_threads)},
        {"auth-threads", 1, 256, offsetof(struct config, auth_threads)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct config c;
        char text[128], err[256], want[256];
        unsigned edge[2] = {keys[i].min, keys[i].max};
        for (int e = 0; e < 2; e++) {
            snprintf(text, sizeof text, "%s = %u\n", keys[i].key, edge[e]);
            assert_int_equal(parse(text, &c, err, sizeof err), 0);
            unsigned got;
            memcpy(&got, (char *)&c + keys[i].offset, sizeof got);
            assert_int_equal(got, edge[e]);
        }
        snprintf(want, sizeof want, "line 2: %s must be between %u and %u", keys[i].key,
                 keys[i].min, keys[i].max);
        snprintf(text, sizeof text, "# first\n%s = %u\n", keys[i].key, keys[i].min - 1);
        expect_error(text, want);
        snprintf(text, sizeof text, "# first\n%s = %u\n", keys[i].key, keys[i].max + 1);
        expect_error(text, want);
        const char *junk[] = {"abc", "-1", "+5", "12x", "1 2", "0x10", "99999999999999999999999"};
        for (size_t j = 0; j < sizeof junk / sizeof junk[0]; j++) {
            snprintf(text, sizeof text, "\n%s = %s\n", keys[i].key, junk[j]);
            expect_error(text, want);
        }
    }
    expect_error("max-recipients = 0", "line 1: max-recipients must be between 1 and 100000");
    expect_error("max-recipients = 100001", "line 1: max-recipients must be between 1 and 100000");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("max-recipient = 5", "line 1: unknown key 'max-recipient'");
    expect_error("\n\nfoo = bar\n", "line 3: unknown key 'foo'");
    expect_error("max-recipients 5", "line 1: expected 'key = value'");
    expect_error("max-recipients =", "line 1: max-recipients: missing value");
    expect_error("max-recipients = # nothing", "line 1: max-recipients: missing value");
    expect_error("= 5", "line 1: unknown key ''");
    expect_error("max-errors = 5\nmax-errors = 6\n", "line 2: max-errors already set on line 1");
    expect_error("hostname = bad host", "line 1: hostname 'bad host' is not a valid host name");
    expect_error("hostname = a..b", "line 1: hostname 'a..b' is not a valid host name");
    expect_error("hostname = a_b.example", "line 1: hostname 'a_b.example' is not a valid host "
                                           "name");
    char longname[300];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "hostname = ", 11);
    longname[sizeof longname - 1] = '\0';
    struct config c;
    char err[512];
    assert_int_equal(parse(longname, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "is not a valid host name"));

    /* a path that does not fit */
    size_t n = PATH_MAX + 11; /* a value of PATH_MAX octets: one too many */
    char *text = malloc(PATH_MAX + 512);
    assert_non_null(text);
    int off = snprintf(text, n + 32, "tls-cert = /");
    memset(text + off, 'p', n - (size_t)off);
    text[n] = '\0';
    assert_int_equal(parse(text, &c, err, sizeof err), -1);
    assert_string_equal(err, "line 1: tls-cert: path too long");
    /* a line longer than any valid line */
    memset(text, 'x', PATH_MAX + 500);
    text[PATH_MAX + 500] = '\0';
    assert_int_equal(parse(text, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1: line too long"));
    free(text);

    /* NUL inside the text */
    config_defaults(&c, "/data");
    assert_int_equal(config_parse("max-errors = 1\0\n", 16, &c, err, sizeof err), -1);
    assert_string_equal(err, "line 1: NUL character");

    /* a small error buffer truncates, terminated */
    char small[8];
    config_defaults(&c, "/data");
    assert_int_equal(config_parse("foo = 1", 7, &c, small, sizeof small), -1);
    assert_string_equal(small, "line 1:");
    config_defaults(&c, "/data");
    assert_int_equal(config_parse("foo = 1", 7, &c, NULL, 0), -1);
}

static void test_listen(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    assert_int_equal(parse("listen = 0.0.0.0:587 starttls\n"
                           "listen = [::]:465 tls\n"
                           "listen = [::1]:2587 starttls allow-cleartext-auth no-require-tls\n"
                           "listen = 192.0.2.1:25 starttls no-require-tls\n",
                           &c, err, sizeof err),
                     0);
    assert_int_equal(c.n_listeners, 4); /* the defaults were replaced */
    assert_string_equal(c.listeners[0].host, "0.0.0.0");
    assert_int_equal(c.listeners[0].port, 587);
    assert_int_equal(c.listeners[0].tls, LISTENER_STARTTLS);
    assert_true(c.listeners[0].require_tls);
    assert_false(c.listeners[0].allow_cleartext_auth);
    assert_string_equal(c.listeners[0].name, "0.0.0.0:587");
    assert_string_equal(c.listeners[1].host, "::");
    assert_int_equal(c.listeners[1].port, 465);
    assert_int_equal(c.listeners[1].tls, LISTENER_IMPLICIT_TLS);
    assert_string_equal(c.listeners[1].name, "[::]:465");
    assert_string_equal(c.listeners[2].host, "::1");
    assert_true(c.listeners[2].allow_cleartext_auth);
    assert_false(c.listeners[2].require_tls);
    assert_false(c.listeners[3].allow_cleartext_auth);
    assert_false(c.listeners[3].require_tls);

    /* one listen line replaces both defaults */
    assert_int_equal(
        parse("max-errors = 2\nlisten = 127.0.0.1:3587 starttls\n", &c, err, sizeof err), 0);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 3587);

    /* the same port on different addresses is fine */
    assert_int_equal(parse("listen = 127.0.0.1:587 starttls\nlisten = [::1]:587 starttls\n", &c,
                           err, sizeof err),
                     0);
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(parse("listen = [2001:db8::25]:65535 tls", &c, err, sizeof err), 0);
    assert_string_equal(c.listeners[0].host, "2001:db8::25");
    assert_int_equal(c.listeners[0].port, 65535);

    /* up to the maximum, then an error */
    char text[CONFIG_LISTENERS_MAX * 48 + 64];
    size_t off = 0;
    for (int i = 0; i < CONFIG_LISTENERS_MAX; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "listen = 127.0.0.1:%d tls\n",
                                4000 + i);
    assert_int_equal(parse(text, &c, err, sizeof err), 0);
    assert_int_equal(c.n_listeners, CONFIG_LISTENERS_MAX);
    snprintf(text + off, sizeof text - off, "listen = 127.0.0.1:5000 tls\n");
    expect_error(text, "line 17: listen: too many listeners (at most 16)");
}

static void test_listen_errors(void **state)
{
    (void)state;
    struct {
        const char *text, *want;
    } rows[] = {
        {"listen = 127.0.0.1:2587", "line 1: listen: expected ADDRESS:PORT starttls|tls [flags]"},
        {"listen = 127.0.0.1 starttls", "line 1: listen '127.0.0.1': expected ADDRESS:PORT"},
        {"listen = 127.0.0.1:0 tls",
         "line 1: listen '127.0.0.1:0': port must be a number between 1 and 65535"},
        {"listen = 127.0.0.1:65536 tls",
         "line 1: listen '127.0.0.1:65536': port must be a number between 1 and 65535"},
        {"listen = 127.0.0.1:-1 tls",
         "line 1: listen '127.0.0.1:-1': port must be a number between 1 and 65535"},
        {"listen = 127.0.0.1: tls",
         "line 1: listen '127.0.0.1:': port must be a number between 1 and 65535"},
        {"listen = 127.0.0.1:smtp tls",
         "line 1: listen '127.0.0.1:smtp': port must be a number between 1 and 65535"},
        {"listen = :587 tls", "line 1: listen ':587': missing or overlong address"},
        {"listen = localhost:587 tls", "line 1: listen 'localhost:587': not a numeric IPv4 "
                                       "address (host names are not accepted)"},
        {"listen = 256.0.0.1:587 tls", "line 1: listen '256.0.0.1:587': not a numeric IPv4 "
                                       "address (host names are not accepted)"},
        {"listen = ::1:587 tls", "line 1: listen '::1:587': an IPv6 address must be written in "
                                 "brackets, e.g. [::1]:2587"},
        {"listen = [::1:587 tls", "line 1: listen '[::1:587': missing ']' after IPv6 address"},
        {"listen = [::1]587 tls", "line 1: listen '[::1]587': expected ':PORT' after ']'"},
        {"listen = [127.0.0.1]:587 tls",
         "line 1: listen '[127.0.0.1]:587': not a numeric IPv6 address"},
        {"listen = []:587 tls", "line 1: listen '[]:587': missing or overlong address"},
        {"listen = [::1]:99999 tls",
         "line 1: listen '[::1]:99999': port must be a number between 1 and 65535"},
        {"listen = 127.0.0.1:587 ssl",
         "line 1: listen: unknown mode 'ssl' (expected starttls or tls)"},
        {"listen = 127.0.0.1:587 starttls cleartext", "line 1: listen: unknown flag 'cleartext'"},
        {"listen = 127.0.0.1:465 tls allow-cleartext-auth",
         "line 1: listen: 'allow-cleartext-auth' only applies to starttls listeners"},
        {"listen = 127.0.0.1:465 tls no-require-tls",
         "line 1: listen: 'no-require-tls' only applies to starttls listeners"},
        {"listen = 127.0.0.1:587 starttls\nlisten = 127.0.0.1:587 tls",
         "line 2: listen '127.0.0.1:587': already defined on line 1"},
        {"listen = [::1]:587 tls\n\nlisten = [0:0::1]:587 starttls",
         "line 3: listen '[0:0::1]:587': already defined on line 1"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        expect_error(rows[i].text, rows[i].want);
}

/* A fresh directory under /tmp for config_load. */
static void make_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/test_config.XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void write_conf(const char *dir, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/submitd.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void remove_dir(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/submitd.conf", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        fail_msg("unlink %s: %s", path, strerror(errno));
    assert_int_equal(rmdir(dir), 0);
}

static void test_load(void **state)
{
    (void)state;
    char dir[64], err[512];
    struct config c;
    make_dir(dir, sizeof dir);

    /* no file: the defaults */
    assert_int_equal(config_load(dir, &c, err, sizeof err), 0);
    assert_string_equal(c.datadir, dir);
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(c.max_recipients, 500);

    write_conf(dir, "max-recipients = 42\nlisten = [::1]:2465 tls\n");
    assert_int_equal(config_load(dir, &c, err, sizeof err), 0);
    assert_int_equal(c.max_recipients, 42);
    assert_int_equal(c.n_listeners, 1);
    assert_string_equal(c.listeners[0].host, "::1");

    /* errors name the file */
    write_conf(dir, "max-recipients = 42\nbogus = 1\n");
    assert_int_equal(config_load(dir, &c, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s/submitd.conf: line 2: unknown key 'bogus'", dir);
    assert_string_equal(err, want);

    /* unreadable: an error with the errno text (a directory in the file's place) */
    char path[128];
    snprintf(path, sizeof path, "%s/submitd.conf", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(config_load(dir, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: not a regular file", path);
    assert_string_equal(err, want);
    assert_int_equal(rmdir(path), 0);

    /* permission denied (skipped when running as root, who can read anything) */
    write_conf(dir, "max-errors = 3\n");
    assert_int_equal(chmod(path, 0), 0);
    if (geteuid() != 0) {
        assert_int_equal(config_load(dir, &c, err, sizeof err), -1);
        snprintf(want, sizeof want, "cannot open %s: %s", path, strerror(EACCES));
        assert_string_equal(err, want);
    }
    assert_int_equal(chmod(path, 0600), 0);

    /* a data directory that is not a directory */
    assert_int_equal(config_load(path, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "cannot open %s/submitd.conf: %s", path, strerror(ENOTDIR));
    assert_string_equal(err, want);

    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_syntax),        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_number_limits), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_listen),        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
