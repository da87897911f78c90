/* test_oauth_client.c: the OAuth 2.0 token client (src/oauth_client.c) against a scripted token
 * endpoint on 127.0.0.1 run in a thread of this test (plain HTTP, allowed on loopback by
 * design, and once HTTPS with a self-signed certificate): the exact requests of the
 * client-credentials and refresh grants with Basic and in-body client authentication
 * (form-urlencoding of awkward secrets), refresh-token rotation, the cache (hits, the 60 s
 * margin, expiry, invalidation, keys and parameters), one fetch for concurrent callers (and its
 * error shared), RFC 6749 5.2 errors as permanent, outages as temporary, unusable responses,
 * the 64 KiB bound, and URLs refused before any I/O. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "oauth_client.h"
#include "tls.h"

#define SCOPE "https://outlook.office365.com/.default"
#define SCOPE_ENC "https%3A%2F%2Foutlook.office365.com%2F.default"
#define RESP_MAX 8

/* ---- a scripted token endpoint ---- */

struct endpoint {
    int lfd, port;
    SSL_CTX *ssl; /* NULL: plain HTTP */
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    int requests;
    int delay_ms;         /* before each answer */
    char *resp[RESP_MAX]; /* request i gets resp[min(i, nresp - 1)] */
    size_t resp_len[RESP_MAX];
    int nresp;
    /* the last request */
    char method[16], path[256], content_type[128], authorization[512], body[4096];
    bool has_authorization;
};

static ssize_t conn_read(SSL *s, int fd, char *buf, size_t cap)
{
    if (s) {
        int n = SSL_read(s, buf, (int)cap);
        return n > 0 ? n : -1;
    }
    struct pollfd q = {.fd = fd, .events = POLLIN};
    if (poll(&q, 1, 5000) <= 0)
        return -1;
    return recv(fd, buf, cap, 0);
}

static void conn_write(SSL *s, int fd, const char *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = s ? SSL_write(s, buf + off, (int)(len - off))
                      : send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client gave up (the size cap) */
        off += (size_t)n;
    }
}

/* Copies header `name` (with ": ") of the request head into out; false when absent. */
static bool header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':') {
            const char *v = l + 3 + nl;
            v += strspn(v, " ");
            size_t vl = strcspn(v, "\r");
            snprintf(out, cap, "%.*s", (int)vl, v);
            return true;
        }
    }
    out[0] = '\0';
    return false;
}

static void serve_one(struct endpoint *ep, int fd)
{
    SSL *s = NULL;
    if (ep->ssl) {
        s = SSL_new(ep->ssl);
        assert_non_null(s);
        SSL_set_fd(s, fd);
        if (SSL_accept(s) != 1) {
            SSL_free(s);
            return; /* the client refused the certificate */
        }
    }
    char req[16384];
    size_t got = 0;
    req[0] = '\0';
    char *end = NULL;
    size_t clen = 0;
    for (int i = 0; i < 1000 && got < sizeof req - 1; i++) {
        ssize_t n = conn_read(s, fd, req + got, sizeof req - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (!end && (end = strstr(req, "\r\n\r\n")) != NULL) {
            char cl[32];
            if (header_value(req, "Content-Length", cl, sizeof cl))
                clen = strtoul(cl, NULL, 10);
        }
        if (end && got >= (size_t)(end + 4 - req) + clen)
            break;
    }
    pthread_mutex_lock(&ep->mu);
    int idx = ep->requests < ep->nresp ? ep->requests : ep->nresp - 1;
    ep->requests++;
    sscanf(req, "%15s %255s", ep->method, ep->path);
    header_value(req, "Content-Type", ep->content_type, sizeof ep->content_type);
    ep->has_authorization =
        header_value(req, "Authorization", ep->authorization, sizeof ep->authorization);
    snprintf(ep->body, sizeof ep->body, "%s", end ? end + 4 : "");
    int delay = ep->delay_ms;
    const char *resp = ep->resp[idx];
    size_t resp_len = ep->resp_len[idx];
    pthread_mutex_unlock(&ep->mu);
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    conn_write(s, fd, resp, resp_len);
    if (s) {
        SSL_shutdown(s);
        SSL_free(s);
    }
}

static void *endpoint_main(void *arg)
{
    struct endpoint *ep = arg;
    while (!atomic_load(&ep->stop)) {
        struct pollfd p = {.fd = ep->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(ep->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(ep, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    close(ep->lfd);
    return NULL;
}

/* A complete HTTP response with a JSON (or any) body. */
static char *http_response(const char *status, const char *body, size_t *len)
{
    size_t blen = strlen(body), cap = blen + 256;
    char *r = malloc(cap);
    assert_non_null(r);
    int n = snprintf(r, cap,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, blen);
    memcpy(r + n, body, blen);
    *len = (size_t)n + blen;
    return r;
}

/* Adds a scripted answer (before the endpoint is used). */
static void endpoint_answer(struct endpoint *ep, const char *status, const char *body)
{
    assert_true(ep->nresp < RESP_MAX);
    ep->resp[ep->nresp] = http_response(status, body, &ep->resp_len[ep->nresp]);
    ep->nresp++;
}

static struct endpoint *endpoint_start(SSL_CTX *ssl)
{
    struct endpoint *ep = calloc(1, sizeof *ep);
    assert_non_null(ep);
    ep->ssl = ssl;
    pthread_mutex_init(&ep->mu, NULL);
    ep->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ep->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ep->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ep->lfd, 16), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(ep->lfd, (struct sockaddr *)&sa, &sl), 0);
    ep->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&ep->th, NULL, endpoint_main, ep), 0);
    return ep;
}

static void endpoint_stop(struct endpoint *ep)
{
    atomic_store(&ep->stop, true);
    assert_int_equal(pthread_join(ep->th, NULL), 0);
    for (int i = 0; i < ep->nresp; i++)
        free(ep->resp[i]);
    pthread_mutex_destroy(&ep->mu);
    free(ep);
}

static int endpoint_requests(struct endpoint *ep)
{
    pthread_mutex_lock(&ep->mu);
    int n = ep->requests;
    pthread_mutex_unlock(&ep->mu);
    return n;
}

/* ---- helpers ---- */

struct fixture {
    struct endpoint *ep;
    struct oauth_tokens *c;
    char url[128];
    struct oauth_client_params p;
};

/* An endpoint answering `body` with 200, a cache, and client-credentials parameters with
 * Basic authentication. */
static void fixture_start(struct fixture *f, const char *status, const char *body)
{
    memset(f, 0, sizeof *f);
    f->ep = endpoint_start(NULL);
    if (body)
        endpoint_answer(f->ep, status, body);
    f->c = oauth_tokens_new();
    assert_non_null(f->c);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/tenant/oauth2/v2.0/token", f->ep->port);
    f->p = (struct oauth_client_params){
        .token_url = f->url, .client_id = "app-id", .client_secret = "app-secret", .scope = SCOPE};
}

static void fixture_stop(struct fixture *f)
{
    oauth_tokens_free(f->c);
    endpoint_stop(f->ep);
}

struct rotation {
    int calls;
    char key[64], token[128];
};

static void on_rotated(const char *key, const char *refresh_token, void *arg)
{
    struct rotation *r = arg;
    r->calls++;
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->token, sizeof r->token, "%s", refresh_token);
}

/* Gets key's token; asserts success and that it is `want`. */
static void get_ok(struct fixture *f, const char *key, const char *want)
{
    bool temporary = false;
    char err[512] = "";
    char *t = oauth_tokens_get(f->c, key, &f->p, NULL, NULL, &temporary, err, sizeof err);
    if (!t)
        fail_msg("oauth_tokens_get(%s): %s", key, err);
    assert_string_equal(t, want);
    free(t);
}

/* Gets key's token; asserts failure, its kind, and that err contains `want`. */
static void get_fails(struct fixture *f, bool want_temporary, const char *want)
{
    bool temporary = !want_temporary;
    char err[512] = "";
    char *t = oauth_tokens_get(f->c, "example.com", &f->p, NULL, NULL, &temporary, err, sizeof err);
    if (t)
        fail_msg("got a token, wanted an error with \"%s\"", want);
    if (!strstr(err, want))
        fail_msg("err \"%s\" lacks \"%s\"", err, want);
    if (temporary != want_temporary)
        fail_msg("err \"%s\": temporary=%d", err, temporary);
    assert_null(strstr(err, "app-secret"));
}

#define TOKEN_OK "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"expires_in\":3599}"

/* ---- requests ---- */

static void test_client_credentials_basic(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    f.p.client_id = "my client";
    f.p.client_secret = "s3cr&t=+/ \xc3\xa9:%~";
    get_ok(&f, "example.com", "at-1");
    assert_int_equal(endpoint_requests(f.ep), 1);
    assert_string_equal(f.ep->method, "POST");
    assert_string_equal(f.ep->path, "/tenant/oauth2/v2.0/token");
    assert_string_equal(f.ep->content_type, "application/x-www-form-urlencoded");
    /* base64("my+client:s3cr%26t%3D%2B%2F+%C3%A9%3A%25%7E"): RFC 6749 2.3.1 */
    assert_string_equal(f.ep->authorization,
                        "Basic bXkrY2xpZW50OnMzY3IlMjZ0JTNEJTJCJTJGKyVDMyVBOSUzQSUyNSU3RQ==");
    assert_string_equal(f.ep->body, "grant_type=client_credentials&scope=" SCOPE_ENC);
    fixture_stop(&f);
}

static void test_client_credentials_secret_in_body(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    f.p.secret_in_body = true;
    f.p.client_secret = "a+b c&d";
    f.p.scope = "";
    get_ok(&f, "example.com", "at-1");
    assert_false(f.ep->has_authorization);
    assert_string_equal(f.ep->body,
                        "grant_type=client_credentials&client_id=app-id&client_secret=a%2Bb+c%26d");
    fixture_stop(&f);
}

static void test_refresh_grant_public_client(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    f.p.client_secret = "";
    f.p.refresh_token = "rt/1=";
    f.p.scope = "https://outlook.office.com/SMTP.Send offline_access";
    get_ok(&f, "example.com", "at-1");
    assert_false(f.ep->has_authorization);
    assert_string_equal(f.ep->body, "grant_type=refresh_token&refresh_token=rt%2F1%3D"
                                    "&client_id=app-id"
                                    "&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send"
                                    "+offline_access");
    fixture_stop(&f);
}

static void test_refresh_grant_rotation(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK",
                  "{\"access_token\":\"at-1\",\"token_type\":\"bearer\",\"expires_in\":3600,"
                  "\"refresh_token\":\"rt-2\"}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-2\",\"refresh_token\":\"rt-2\"}");
    f.p.refresh_token = "rt-1";
    struct rotation rot = {0};
    bool temporary;
    char err[256];
    char *t =
        oauth_tokens_get(f.c, "example.com", &f.p, on_rotated, &rot, &temporary, err, sizeof err);
    assert_non_null(t);
    assert_string_equal(t, "at-1");
    free(t);
    assert_string_equal(f.ep->authorization, "Basic YXBwLWlkOmFwcC1zZWNyZXQ=");
    assert_string_equal(f.ep->body, "grant_type=refresh_token&refresh_token=rt-1&scope=" SCOPE_ENC);
    assert_int_equal(rot.calls, 1);
    assert_string_equal(rot.key, "example.com");
    assert_string_equal(rot.token, "rt-2");

    /* The caller stored rt-2; the peer refused the token; the refresh returns rt-2 again: no
     * rotation to report. */
    f.p.refresh_token = "rt-2";
    oauth_tokens_invalidate(f.c, "example.com");
    t = oauth_tokens_get(f.c, "example.com", &f.p, on_rotated, &rot, &temporary, err, sizeof err);
    assert_non_null(t);
    assert_string_equal(t, "at-2");
    free(t);
    assert_int_equal(endpoint_requests(f.ep), 2);
    assert_string_equal(f.ep->body, "grant_type=refresh_token&refresh_token=rt-2&scope=" SCOPE_ENC);
    assert_int_equal(rot.calls, 1);
    fixture_stop(&f);
}

/* ---- the cache ---- */

static void test_cache_hit(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", "{\"access_token\":\"at-1\"}"); /* no expires_in: 1 h */
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-2\"}");
    get_ok(&f, "example.com", "at-1");
    get_ok(&f, "example.com", "at-1");
    assert_int_equal(endpoint_requests(f.ep), 1);
    /* another key has its own token */
    get_ok(&f, "example.org", "at-2");
    get_ok(&f, "example.org", "at-2");
    get_ok(&f, "example.com", "at-1");
    assert_int_equal(endpoint_requests(f.ep), 2);
    fixture_stop(&f);
}

static void test_expiry_margin(void **state)
{
    (void)state;
    struct fixture f;
    /* 61 s: usable for 1 s (the last 60 s are the margin) */
    fixture_start(&f, "200 OK", "{\"access_token\":\"at-1\",\"expires_in\":61}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-2\",\"expires_in\":\"30\"}");
    get_ok(&f, "example.com", "at-1");
    get_ok(&f, "example.com", "at-1");
    assert_int_equal(endpoint_requests(f.ep), 1);
    struct timespec ts = {1, 200000000L};
    nanosleep(&ts, NULL);
    get_ok(&f, "example.com", "at-2");
    assert_int_equal(endpoint_requests(f.ep), 2);
    /* 30 s (as a string) is clamped to 60 s, all margin: every get fetches */
    get_ok(&f, "example.com", "at-2");
    assert_int_equal(endpoint_requests(f.ep), 3);
    fixture_stop(&f);
}

static void test_invalidate_refetches(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    endpoint_answer(f.ep, "200 OK",
                    "{\"access_token\":\"at-2\",\"token_type\":\"Bearer\",\"expires_in\":3599}");
    oauth_tokens_invalidate(f.c, "never-seen.example"); /* nothing to forget */
    get_ok(&f, "example.com", "at-1");
    oauth_tokens_invalidate(f.c, "example.org"); /* another key: no effect */
    get_ok(&f, "example.com", "at-1");
    assert_int_equal(endpoint_requests(f.ep), 1);
    oauth_tokens_invalidate(f.c, "example.com");
    get_ok(&f, "example.com", "at-2");
    get_ok(&f, "example.com", "at-2");
    assert_int_equal(endpoint_requests(f.ep), 2);
    fixture_stop(&f);
}

static void test_changed_parameters_refetch(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", "{\"access_token\":\"at-1\"}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-2\"}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-3\"}");
    get_ok(&f, "example.com", "at-1");
    f.p.client_secret = "rotated-secret"; /* the token stays good */
    get_ok(&f, "example.com", "at-1");
    assert_int_equal(endpoint_requests(f.ep), 1);
    f.p.scope = "https://outlook.office.com/SMTP.Send"; /* another scope: another token */
    get_ok(&f, "example.com", "at-2");
    f.p.client_id = "other-app";
    get_ok(&f, "example.com", "at-3");
    assert_int_equal(endpoint_requests(f.ep), 3);
    fixture_stop(&f);
}

/* ---- concurrency ---- */

struct getter {
    struct oauth_tokens *c;
    const struct oauth_client_params *p;
    pthread_barrier_t *start;
    char *token;
    bool temporary;
    char err[256];
};

static void *getter_main(void *arg)
{
    struct getter *g = arg;
    pthread_barrier_wait(g->start);
    g->token = oauth_tokens_get(g->c, "example.com", g->p, NULL, NULL, &g->temporary, g->err,
                                sizeof g->err);
    return NULL;
}

static void run_getters(struct fixture *f, struct getter *g, int n)
{
    pthread_t th[8];
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++) {
        g[i] = (struct getter){.c = f->c, .p = &f->p, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, getter_main, &g[i]), 0);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
}

static void test_concurrent_callers_one_fetch(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    f.ep->delay_ms = 300;
    struct getter g[8];
    run_getters(&f, g, 8);
    assert_int_equal(endpoint_requests(f.ep), 1);
    for (int i = 0; i < 8; i++) {
        if (!g[i].token)
            fail_msg("getter %d: %s", i, g[i].err);
        assert_string_equal(g[i].token, "at-1");
        free(g[i].token);
    }
    fixture_stop(&f);
}

static void test_concurrent_callers_share_error(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "400 Bad Request", "{\"error\":\"invalid_client\"}");
    f.ep->delay_ms = 300;
    struct getter g[8];
    run_getters(&f, g, 8);
    assert_int_equal(endpoint_requests(f.ep), 1);
    for (int i = 0; i < 8; i++) {
        assert_null(g[i].token);
        assert_false(g[i].temporary);
        assert_non_null(strstr(g[i].err, "invalid_client"));
    }
    /* a later caller asks again */
    get_fails(&f, false, "invalid_client");
    assert_int_equal(endpoint_requests(f.ep), 2);
    fixture_stop(&f);
}

/* ---- errors ---- */

static void test_oauth_errors_permanent(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "400 Bad Request",
                  "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70000: The grant "
                  "is\\nexpired.\\u0007\",\"error_codes\":[70000]}");
    endpoint_answer(f.ep, "401 Unauthorized",
                    "{\"error\":\"invalid_client\",\"error_description\":\"bad secret "
                    "app-secret for app-id\"}");
    char long_desc[1200];
    int n = snprintf(long_desc, sizeof long_desc,
                     "{\"error\":\"invalid_scope\","
                     "\"error_description\":\"");
    memset(long_desc + n, 'x', 1000);
    snprintf(long_desc + n + 1000, sizeof long_desc - (size_t)n - 1000, "END\"}");
    endpoint_answer(f.ep, "400 Bad Request", long_desc);
    get_fails(&f, false, "token endpoint: invalid_grant: AADSTS70000: The grant is?expired.?");
    get_fails(&f, false, "invalid_client: (withheld)");
    bool temporary = true;
    char err[512] = "";
    assert_null(oauth_tokens_get(f.c, "k", &f.p, NULL, NULL, &temporary, err, sizeof err));
    assert_false(temporary);
    assert_non_null(strstr(err, "invalid_scope: xxxx"));
    assert_non_null(strstr(err, "..."));
    assert_null(strstr(err, "END"));
    assert_true(strlen(err) < 300);
    assert_int_equal(endpoint_requests(f.ep), 3);
    fixture_stop(&f);
}

static void test_server_trouble_temporary(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "500 Internal Server Error", "<html>oops</html>");
    endpoint_answer(f.ep, "429 Too Many Requests", "{}");
    endpoint_answer(f.ep, "503 Service Unavailable",
                    "{\"error\":\"temporarily_unavailable\",\"error_description\":\"busy\"}");
    endpoint_answer(f.ep, "404 Not Found", "not here");
    endpoint_answer(f.ep, "502 Bad Gateway", "{\"error\":\"invalid_client\"}");
    get_fails(&f, true, "HTTP 500");
    get_fails(&f, true, "HTTP 429");
    get_fails(&f, true, "temporarily_unavailable: busy");
    get_fails(&f, true, "HTTP 404");
    get_fails(&f, true, "invalid_client (HTTP 502"); /* a 5xx is never the final word */
    assert_int_equal(endpoint_requests(f.ep), 5);
    fixture_stop(&f);
}

static void test_connection_refused_temporary(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd); /* nobody listens on that port now */
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:%d/token", ntohs(sa.sin_port));
    get_fails(&f, true, "token endpoint 127.0.0.1:");
    assert_int_equal(endpoint_requests(f.ep), 0);
    fixture_stop(&f);
}

static void test_unusable_success_responses(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", "<html>login</html>");
    endpoint_answer(f.ep, "200 OK", "{\"token_type\":\"Bearer\",\"expires_in\":3600}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"with space\"}");
    endpoint_answer(f.ep, "200 OK", "[\"at-1\"]");
    get_fails(&f, true, "not a JSON object");
    get_fails(&f, true, "no usable access_token");
    get_fails(&f, true, "no usable access_token");
    get_fails(&f, true, "not a JSON object");
    fixture_stop(&f);
}

static void test_token_type_not_bearer(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, "200 OK", "{\"access_token\":\"at-1\",\"token_type\":\"MAC\"}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-1\",\"token_type\":7}");
    endpoint_answer(f.ep, "200 OK", "{\"access_token\":\"at-3\",\"token_type\":\"BEARER\"}");
    get_fails(&f, false, "token_type \"MAC\" is not Bearer");
    get_fails(&f, false, "is not Bearer");
    get_ok(&f, "example.com", "at-3");
    fixture_stop(&f);
}

static void test_oversized_response(void **state)
{
    (void)state;
    size_t cap = 64 * 1024;
    char *body = malloc(cap + 2);
    assert_non_null(body);
    static const char doc[] = "{\"access_token\":\"at-big\"}";
    memcpy(body, doc, sizeof doc - 1);
    memset(body + sizeof doc - 1, ' ', cap - (sizeof doc - 1));
    body[cap] = '\0';
    struct fixture f;
    fixture_start(&f, "200 OK", body); /* exactly 64 KiB: accepted */
    body[cap] = ' ';
    body[cap + 1] = '\0';
    endpoint_answer(f.ep, "200 OK", body); /* one byte more: refused */
    get_ok(&f, "a.example", "at-big");
    get_fails(&f, true, "larger than 65536");
    assert_int_equal(endpoint_requests(f.ep), 2);
    fixture_stop(&f);
    free(body);
}

static void test_urls_refused_before_io(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "http://example.com/token",
        "http://127.0.0.1.evil.example/token",
        "http://localhost@evil.example/token",
        "https://user:pw@login.example/token",
        "ftp://127.0.0.1/token",
        "file:///etc/passwd",
        "not a url",
        "",
    };
    struct fixture f;
    fixture_start(&f, "200 OK", TOKEN_OK);
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        f.p.token_url = refused[i];
        bool temporary = true;
        char err[256] = "";
        char *t =
            oauth_tokens_get(f.c, "example.com", &f.p, NULL, NULL, &temporary, err, sizeof err);
        if (t)
            fail_msg("accepted %s", refused[i]);
        if (temporary || !err[0])
            fail_msg("%s: temporary=%d err=%s", refused[i], temporary, err);
        assert_null(strstr(err, "pw"));
    }
    assert_int_equal(endpoint_requests(f.ep), 0);
    /* NULL as the temporary pointer is tolerated; err says why */
    f.p.token_url = "http://example.com/token";
    char err[256] = "";
    assert_null(oauth_tokens_get(f.c, "example.com", &f.p, NULL, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "plain http is allowed only for localhost"));
    fixture_stop(&f);
}

/* ---- HTTPS ---- */

static void test_https_with_cafile(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_oauth_client.XXXXXX", cert[64], key[64], err[512] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    if (tls_ensure_certificate(cert, key, "localhost", err, sizeof err) != 0)
        fail_msg("certificate: %s", err);
    SSL_CTX *ctx = tls_server_context(cert, key, err, sizeof err);
    if (!ctx)
        fail_msg("TLS context: %s", err);
    struct endpoint *ep = endpoint_start(ctx);
    endpoint_answer(ep, "200 OK", TOKEN_OK);
    struct oauth_tokens *c = oauth_tokens_new();
    assert_non_null(c);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/token", ep->port);
    struct oauth_client_params p = {
        .token_url = url, .client_id = "app-id", .client_secret = "app-secret", .scope = SCOPE};
    bool temporary = false;

    /* the system store does not know the self-signed certificate: refused, temporary */
    char *t = oauth_tokens_get(c, "a", &p, NULL, NULL, &temporary, err, sizeof err);
    assert_null(t);
    assert_true(temporary);
    assert_non_null(strstr(err, "token endpoint 127.0.0.1:"));
    assert_int_equal(endpoint_requests(ep), 0);

    p.cafile = cert;
    t = oauth_tokens_get(c, "a", &p, NULL, NULL, &temporary, err, sizeof err);
    if (!t)
        fail_msg("https: %s", err);
    assert_string_equal(t, "at-1");
    free(t);
    assert_int_equal(endpoint_requests(ep), 1);
    assert_string_equal(ep->authorization, "Basic YXBwLWlkOmFwcC1zZWNyZXQ=");
    assert_string_equal(ep->body, "grant_type=client_credentials&scope=" SCOPE_ENC);

    oauth_tokens_free(c);
    endpoint_stop(ep);
    SSL_CTX_free(ctx);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_credentials_basic),
        cmocka_unit_test(test_client_credentials_secret_in_body),
        cmocka_unit_test(test_refresh_grant_public_client),
        cmocka_unit_test(test_refresh_grant_rotation),
        cmocka_unit_test(test_cache_hit),
        cmocka_unit_test(test_expiry_margin),
        cmocka_unit_test(test_invalidate_refetches),
        cmocka_unit_test(test_changed_parameters_refetch),
        cmocka_unit_test(test_concurrent_callers_one_fetch),
        cmocka_unit_test(test_concurrent_callers_share_error),
        cmocka_unit_test(test_oauth_errors_permanent),
        cmocka_unit_test(test_server_trouble_temporary),
        cmocka_unit_test(test_connection_refused_temporary),
        cmocka_unit_test(test_unusable_success_responses),
        cmocka_unit_test(test_token_type_not_bearer),
        cmocka_unit_test(test_oversized_response),
        cmocka_unit_test(test_urls_refused_before_io),
        cmocka_unit_test(test_https_with_cafile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
