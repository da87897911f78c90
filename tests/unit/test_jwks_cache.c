/* test_jwks_cache.c: the JWKS cache (src/jwks_cache.c): lifetimes and max-age clamping, the
 * unknown-kid refetch and its rate limit, stale sets on failure, snapshots outliving refetches,
 * one fetch for many concurrent getters, file and built-in sources re-read on change, bad and
 * oversized documents, source validation, and the real libcurl path against a one-shot HTTP
 * server on 127.0.0.1 (Cache-Control parsing, the 64 KiB cap, status codes). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "issuer.h"
#include "jwks_cache.h"
#include "logger.h"

#define T0 1700000000LL
/* RFC 8037 A.2's Ed25519 public key; every kid in these tests names it. */
#define ED_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

static void jwks_doc(char *out, size_t cap, const char *kid1, const char *kid2)
{
    if (kid2)
        snprintf(out, cap,
                 "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"sig\",\"kid\":\"%s\","
                 "\"x\":\"" ED_X "\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\","
                 "\"x\":\"" ED_X "\"}]}",
                 kid1, kid2);
    else
        snprintf(out, cap,
                 "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"sig\",\"kid\":\"%s\","
                 "\"x\":\"" ED_X "\"}]}",
                 kid1);
}

static bool ref_has(const struct jwks_ref *r, const char *kid)
{
    const struct jwks *k = jwks_ref_keys(r);
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->keys[i].kid, kid) == 0)
            return true;
    return false;
}

/* ---- a scripted fetcher ---- */

struct script {
    pthread_mutex_t mu;
    int calls;
    bool fail;
    char body[2048];
    size_t big;  /* when nonzero: a body of this many bytes instead */
    int max_age; /* -1: none */
    int delay_ms;
    char last_url[256];
};

static int script_fetch(void *arg, const char *url, char **body, size_t *len, int *max_age,
                        char *err, size_t errlen)
{
    struct script *s = arg;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    snprintf(s->last_url, sizeof s->last_url, "%s", url);
    bool fail = s->fail;
    int delay = s->delay_ms;
    size_t n = s->big ? s->big : strlen(s->body);
    char *b = malloc(n + 1);
    assert_non_null(b);
    if (s->big)
        memset(b, ' ', n);
    else
        memcpy(b, s->body, n);
    b[n] = '\0';
    int ma = s->max_age;
    pthread_mutex_unlock(&s->mu);
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (fail) {
        free(b);
        snprintf(err, errlen, "scripted failure");
        return -1;
    }
    *body = b;
    *len = n;
    *max_age = ma;
    return 0;
}

static struct script *script_new(const char *kid1, const char *kid2, int max_age)
{
    struct script *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    jwks_doc(s->body, sizeof s->body, kid1, kid2);
    s->max_age = max_age;
    return s;
}

static void script_free(struct script *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int script_calls(struct script *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->calls;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static struct jwks_cache *cache_with(struct script *s)
{
    struct jwks_cache *c = jwks_cache_new("/nonexistent-datadir");
    assert_non_null(c);
    jwks_cache_set_fetcher(c, script_fetch, s);
    return c;
}

#define URL "https://idp.example/discovery/keys"

/* Gets URL for kid at now; asserts success; returns the snapshot. */
static struct jwks_ref *get_ok(struct jwks_cache *c, const char *kid, int64_t now)
{
    char err[256] = "";
    struct jwks_ref *r = jwks_cache_get(c, "example.com", URL, kid, now, err, sizeof err);
    if (!r)
        fail_msg("jwks_cache_get at %lld: %s", (long long)now, err);
    return r;
}

/* ---- lifetimes ---- */

static void test_hit_within_lifetime(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 600);
    struct jwks_cache *c = cache_with(s);
    struct jwks_ref *a = get_ok(c, "k1", T0);
    assert_true(ref_has(a, "k1"));
    assert_string_equal(s->last_url, URL);
    for (int64_t t = T0; t < T0 + 600; t += 50) {
        struct jwks_ref *b = get_ok(c, "k1", t);
        assert_ptr_equal(a, b);
        jwks_ref_release(b);
    }
    struct jwks_ref *b = get_ok(c, "", T0 + 599); /* no kid wanted */
    assert_ptr_equal(a, b);
    jwks_ref_release(b);
    assert_int_equal(script_calls(s), 1);
    assert_int_equal(jwks_cache_fetches(c), 1);
    jwks_ref_release(a);
    jwks_cache_free(c);
    script_free(s);
}

static void test_expiry_triggers_refetch(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 600);
    struct jwks_cache *c = cache_with(s);
    jwks_ref_release(get_ok(c, "k1", T0));
    jwks_ref_release(get_ok(c, "k1", T0 + 599));
    assert_int_equal(script_calls(s), 1);
    jwks_ref_release(get_ok(c, "k1", T0 + 600));
    assert_int_equal(script_calls(s), 2);
    jwks_ref_release(get_ok(c, "k1", T0 + 1199));
    assert_int_equal(script_calls(s), 2);
    jwks_ref_release(get_ok(c, "k1", T0 + 1200));
    assert_int_equal(script_calls(s), 3);
    assert_int_equal(jwks_cache_fetches(c), 3);
    jwks_cache_free(c);
    script_free(s);
}

/* max-age -> the lifetime the cache keeps the set for. */
static void check_lifetime(int max_age, int64_t lifetime)
{
    struct script *s = script_new("k1", NULL, max_age);
    struct jwks_cache *c = cache_with(s);
    jwks_ref_release(get_ok(c, "k1", T0));
    jwks_ref_release(get_ok(c, "k1", T0 + lifetime - 1));
    if (script_calls(s) != 1)
        fail_msg("max-age %d: refetched before %lld s", max_age, (long long)lifetime);
    jwks_ref_release(get_ok(c, "k1", T0 + lifetime));
    if (script_calls(s) != 2)
        fail_msg("max-age %d: not refetched at %lld s", max_age, (long long)lifetime);
    jwks_cache_free(c);
    script_free(s);
}

static void test_max_age_clamping(void **state)
{
    (void)state;
    check_lifetime(-1, 3600); /* none: the default hour */
    check_lifetime(0, 300);   /* floor 5 min */
    check_lifetime(10, 300);
    check_lifetime(300, 300);
    check_lifetime(7200, 7200); /* within bounds: as given */
    check_lifetime(86400, 86400);
    check_lifetime(864000, 86400); /* ceiling 24 h */
    check_lifetime(2147483647, 86400);
}

/* ---- unknown kids ---- */

static void test_unknown_kid_refetch_rate_limited(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 3600);
    struct jwks_cache *c = cache_with(s);
    jwks_ref_release(get_ok(c, "k1", T0));
    assert_int_equal(script_calls(s), 1);

    /* Within 30 s of the first fetch: no refetch; the set as it is. */
    struct jwks_ref *r = get_ok(c, "k2", T0 + 29);
    assert_false(ref_has(r, "k2"));
    assert_true(ref_has(r, "k1"));
    jwks_ref_release(r);
    assert_int_equal(script_calls(s), 1);

    /* 30 s later: one refetch; the issuer rotated, so the new kid is there. */
    jwks_doc(s->body, sizeof s->body, "k1", "k2");
    r = get_ok(c, "k2", T0 + 30);
    assert_true(ref_has(r, "k2"));
    jwks_ref_release(r);
    assert_int_equal(script_calls(s), 2);
    r = get_ok(c, "k2", T0 + 31); /* now a hit */
    jwks_ref_release(r);
    assert_int_equal(script_calls(s), 2);

    /* A flood: 1000 tokens with unknown kids over 300 simulated seconds. */
    int64_t start = T0 + 31, last_fetch = T0 + 30;
    int before = script_calls(s), extra = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t now = start + (int64_t)i * 3 / 10;
        char kid[32];
        snprintf(kid, sizeof kid, "unknown-%d", i);
        int calls = script_calls(s);
        r = get_ok(c, kid, now);
        assert_true(ref_has(r, "k1"));
        assert_false(ref_has(r, kid));
        jwks_ref_release(r);
        int fetched = script_calls(s) - calls;
        assert_in_range(fetched, 0, 1);
        if (fetched) {
            if (now - last_fetch < JWKS_REFETCH_MIN_SECONDS)
                fail_msg("refetch at +%lld, %lld s after the last", (long long)(now - T0),
                         (long long)(now - last_fetch));
            last_fetch = now;
            extra++;
        }
    }
    int64_t span = start + 999 * 3 / 10 - (T0 + 30);
    assert_int_equal(script_calls(s) - before, extra);
    assert_true(extra >= 1);
    assert_true(extra <= span / JWKS_REFETCH_MIN_SECONDS);
    jwks_cache_free(c);
    script_free(s);
}

/* ---- failures ---- */

static void test_failure_keeps_stale_set(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 300);
    struct jwks_cache *c = cache_with(s);
    struct jwks_ref *first = get_ok(c, "k1", T0);
    s->fail = true;

    struct jwks_ref *r = get_ok(c, "k1", T0 + 300); /* expired: refetch fails, old set */
    assert_ptr_equal(r, first);
    jwks_ref_release(r);
    assert_int_equal(script_calls(s), 2);
    jwks_ref_release(get_ok(c, "k1", T0 + 310)); /* no retry within 30 s */
    assert_int_equal(script_calls(s), 2);
    jwks_ref_release(get_ok(c, "k1", T0 + 330));
    assert_int_equal(script_calls(s), 3);
    r = get_ok(c, "k1", T0 + 300 + 86400 - 1); /* last second of the stale window */
    assert_ptr_equal(r, first);
    jwks_ref_release(r);
    assert_int_equal(script_calls(s), 4);

    /* past the stale window: no set at all (the attempt 1 s ago failed; no new one yet) */
    char err[256] = "";
    r = jwks_cache_get(c, "example.com", URL, "k1", T0 + 300 + 86400, err, sizeof err);
    assert_null(r);
    assert_non_null(strstr(err, "expired"));
    assert_non_null(strstr(err, "scripted failure"));
    assert_int_equal(script_calls(s), 4);
    err[0] = '\0';
    r = jwks_cache_get(c, "example.com", URL, "k1", T0 + 300 + 86400 + 29, err, sizeof err);
    assert_null(r);
    assert_non_null(strstr(err, "expired"));
    assert_int_equal(script_calls(s), 5);

    s->fail = false;
    r = get_ok(c, "k1", T0 + 300 + 86400 + 59);
    assert_ptr_not_equal(r, first);
    assert_true(ref_has(r, "k1"));
    jwks_ref_release(r);
    assert_int_equal(script_calls(s), 6);
    jwks_ref_release(first);
    jwks_cache_free(c);
    script_free(s);
}

static void test_failure_without_set(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 300);
    s->fail = true;
    struct jwks_cache *c = cache_with(s);
    char err[256] = "";
    assert_null(jwks_cache_get(c, "example.com", URL, "k1", T0, err, sizeof err));
    assert_non_null(strstr(err, "scripted failure"));
    assert_non_null(strstr(err, URL));
    err[0] = '\0';
    assert_null(jwks_cache_get(c, "example.com", URL, "k1", T0 + 29, err, sizeof err));
    assert_non_null(strstr(err, "scripted failure")); /* the last reason, no new fetch */
    assert_int_equal(script_calls(s), 1);
    s->fail = false;
    jwks_ref_release(get_ok(c, "k1", T0 + 30));
    assert_int_equal(script_calls(s), 2);
    jwks_cache_free(c);
    script_free(s);
}

static void test_snapshot_outlives_refetch_and_cache(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 300);
    struct jwks_cache *c = cache_with(s);
    struct jwks_ref *old = get_ok(c, "k1", T0);
    jwks_doc(s->body, sizeof s->body, "k2", NULL);
    struct jwks_ref *cur = get_ok(c, "k2", T0 + 300);
    assert_ptr_not_equal(old, cur);
    assert_true(ref_has(cur, "k2"));
    assert_true(ref_has(old, "k1")); /* still intact (ASan would see a use after free) */
    jwks_ref_release(cur);
    jwks_cache_free(c);
    assert_true(ref_has(old, "k1"));
    assert_int_equal(jwks_ref_keys(old)->n, 1);
    jwks_ref_release(old);
    script_free(s);
}

static void test_bad_json_reported(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 300);
    snprintf(s->body, sizeof s->body, "{\"keys\":[{\"kty\":");
    struct jwks_cache *c = cache_with(s);
    char err[256] = "";
    assert_null(jwks_cache_get(c, "example.com", URL, "k1", T0, err, sizeof err));
    assert_non_null(strstr(err, URL));
    assert_int_equal(script_calls(s), 1);
    snprintf(s->body, sizeof s->body, "not json at all");
    err[0] = '\0';
    assert_null(jwks_cache_get(c, "example.com", URL, "k1", T0 + 30, err, sizeof err));
    assert_true(err[0] != '\0');
    assert_int_equal(script_calls(s), 2);
    jwks_cache_free(c);
    script_free(s);
}

static void test_oversized_body_refused(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 300);
    s->big = 64 * 1024 + 1;
    struct jwks_cache *c = cache_with(s);
    char err[256] = "";
    assert_null(jwks_cache_get(c, "example.com", URL, "k1", T0, err, sizeof err));
    assert_non_null(strstr(err, "larger than 65536"));
    jwks_cache_free(c);
    script_free(s);
}

/* ---- sources ---- */

static void test_source_validation(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "http://idp.example/keys",
        "ftp://127.0.0.1/keys",
        "relative/path.json",
        "http://127.0.0.1.evil.example/keys",
        "http://localhost@evil.example/keys",
        "http://evil.example/?h=127.0.0.1",
        "https://",
        "https://user:pw@idp.example/keys",
        "http://user@localhost/k",
        "file:///etc/passwd",
    };
    static const char *const accepted[] = {
        "https://idp.example/keys", "HTTPS://idp.example:8443/k", "http://127.0.0.1:8080/keys",
        "http://[::1]:8080/keys",   "http://LOCALHOST/keys",
    };
    struct script *s = script_new("k1", NULL, 300);
    struct jwks_cache *c = cache_with(s);
    char err[256];
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        err[0] = '\0';
        if (jwks_cache_get(c, "example.com", refused[i], "k1", T0, err, sizeof err))
            fail_msg("accepted %s", refused[i]);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(script_calls(s), 0);
    assert_int_equal(jwks_cache_fetches(c), 0);
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
        struct jwks_ref *r =
            jwks_cache_get(c, "example.com", accepted[i], "k1", T0, err, sizeof err);
        if (!r)
            fail_msg("refused %s: %s", accepted[i], err);
        jwks_ref_release(r);
    }
    assert_int_equal(script_calls(s), sizeof accepted / sizeof *accepted);
    /* the built-in source needs a sane domain */
    assert_null(jwks_cache_get(c, "../etc", "", "k1", T0, err, sizeof err));
    assert_null(jwks_cache_get(c, "", "", "k1", T0, err, sizeof err));
    jwks_cache_free(c);
    script_free(s);
}

static void write_file(const char *path, const char *text, int64_t mtime)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    struct timespec ts[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_file_source_reread_on_change(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_jwks_cache.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], doc[1024], err[256] = "";
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    struct jwks_cache *c = jwks_cache_new(dir);
    assert_non_null(c);

    assert_null(jwks_cache_get(c, "example.com", path, "k1", T0, err, sizeof err));
    assert_non_null(strstr(err, path)); /* missing file: says which */

    jwks_doc(doc, sizeof doc, "k1", NULL);
    write_file(path, doc, T0);
    struct jwks_ref *a = jwks_cache_get(c, "example.com", path, "k1", T0, err, sizeof err);
    assert_non_null(a);
    assert_true(ref_has(a, "k1"));
    /* unchanged: the same snapshot, whatever the time or kid (no refetch for files) */
    struct jwks_ref *b = jwks_cache_get(c, "example.com", path, "zz", T0 + 999999, err, sizeof err);
    assert_ptr_equal(a, b);
    jwks_ref_release(b);

    jwks_doc(doc, sizeof doc, "k2", NULL); /* same size; only the mtime tells */
    write_file(path, doc, T0 + 10);
    b = jwks_cache_get(c, "example.com", path, "k2", T0, err, sizeof err);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_true(ref_has(b, "k2"));
    assert_false(ref_has(b, "k1"));
    assert_true(ref_has(a, "k1"));

    /* a broken edit: the last good set stays */
    write_file(path, "{\"keys\": [", T0 + 20);
    struct jwks_ref *d = jwks_cache_get(c, "example.com", path, "k2", T0, err, sizeof err);
    assert_ptr_equal(d, b);
    jwks_ref_release(d);
    jwks_ref_release(b);
    jwks_ref_release(a);
    jwks_cache_free(c);

    /* a fresh cache with only the broken file: reported */
    c = jwks_cache_new(dir);
    err[0] = '\0';
    assert_null(jwks_cache_get(c, "example.com", path, "k2", T0, err, sizeof err));
    assert_non_null(strstr(err, path));
    /* oversized file */
    char *big = malloc(70000);
    assert_non_null(big);
    memset(big, ' ', 69999);
    big[69999] = '\0';
    write_file(path, big, T0 + 30);
    free(big);
    assert_null(jwks_cache_get(c, "example.com", path, "k2", T0, err, sizeof err));
    assert_non_null(strstr(err, "larger than"));
    /* and a directory is no file */
    assert_null(jwks_cache_get(c, "example.com", dir, "k2", T0, err, sizeof err));
    assert_int_equal(jwks_cache_fetches(c), 0);
    jwks_cache_free(c);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_builtin_source(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_jwks_builtin.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256] = "", key[160];
    assert_int_equal(issuer_ensure_key(dir, "example.com", err, sizeof err), 0);
    snprintf(key, sizeof key, "%s/keys/example.com.pem", dir);
    struct jwks_cache *c = jwks_cache_new(dir);
    assert_non_null(c);
    struct jwks_ref *a = jwks_cache_get(c, "example.com", "", "", T0, err, sizeof err);
    if (!a)
        fail_msg("built-in: %s", err);
    assert_true(jwks_ref_keys(a)->n >= 1);
    struct jwks_ref *b = jwks_cache_get(c, "example.com", "", "", T0 + 100000, err, sizeof err);
    assert_ptr_equal(a, b); /* key file unchanged: not re-read */
    jwks_ref_release(b);
    struct timespec ts[2] = {{T0 + 5, 0}, {T0 + 5, 0}};
    assert_int_equal(utimensat(AT_FDCWD, key, ts, 0), 0);
    b = jwks_cache_get(c, "example.com", "", "", T0, err, sizeof err);
    assert_non_null(b);
    assert_ptr_not_equal(a, b); /* re-read after the mtime changed */
    assert_string_equal(jwks_ref_keys(a)->keys[0].kid, jwks_ref_keys(b)->keys[0].kid);
    jwks_ref_release(b);
    /* another tenant without a key yet: the issuer makes one; its own key, not ours, and
     * remembered (the key file's state after the issuer made it) */
    b = jwks_cache_get(c, "other.example", "", "", T0, err, sizeof err);
    if (!b)
        fail_msg("built-in, new tenant: %s", err);
    assert_string_not_equal(jwks_ref_keys(b)->keys[0].kid, jwks_ref_keys(a)->keys[0].kid);
    struct jwks_ref *d = jwks_cache_get(c, "other.example", "", "", T0, err, sizeof err);
    assert_ptr_equal(b, d);
    jwks_ref_release(d);
    jwks_ref_release(b);
    jwks_ref_release(a);
    assert_int_equal(jwks_cache_fetches(c), 0);
    jwks_cache_free(c);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- concurrency ---- */

struct getter {
    struct jwks_cache *c;
    pthread_barrier_t *start;
    struct jwks_ref *got;
    const char *kid;
    int64_t now;
};

static void *getter_main(void *arg)
{
    struct getter *g = arg;
    char err[256];
    pthread_barrier_wait(g->start);
    g->got = jwks_cache_get(g->c, "example.com", URL, g->kid, g->now, err, sizeof err);
    return NULL;
}

static void run_getters(struct jwks_cache *c, const char *kid, int64_t now, struct getter *g, int n)
{
    pthread_t th[8];
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++) {
        g[i] = (struct getter){.c = c, .start = &start, .kid = kid, .now = now};
        assert_int_equal(pthread_create(&th[i], NULL, getter_main, &g[i]), 0);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
}

static void test_concurrent_getters_one_fetch(void **state)
{
    (void)state;
    struct script *s = script_new("k1", NULL, 300);
    s->delay_ms = 200;
    struct jwks_cache *c = cache_with(s);
    struct getter g[8];
    run_getters(c, "k1", T0, g, 8);
    assert_int_equal(script_calls(s), 1);
    for (int i = 0; i < 8; i++) {
        assert_non_null(g[i].got);
        assert_ptr_equal(g[i].got, g[0].got);
    }
    for (int i = 0; i < 8; i++)
        jwks_ref_release(g[i].got);

    /* An unknown kid 30 s later: one refetch among 8 that want it. */
    jwks_doc(s->body, sizeof s->body, "k1", "k2");
    run_getters(c, "k2", T0 + 30, g, 8);
    assert_int_equal(script_calls(s), 2);
    for (int i = 0; i < 8; i++) {
        assert_non_null(g[i].got);
        assert_true(ref_has(g[i].got, "k2"));
        jwks_ref_release(g[i].got);
    }
    jwks_cache_free(c);
    script_free(s);
}

/* ---- the libcurl path, against a local one-shot HTTP server ---- */

struct httpd {
    int lfd, port, conns, served;
    const char *response;
    size_t resp_len;
    char request[4096];
    pthread_t th;
};

static void *httpd_main(void *arg)
{
    struct httpd *h = arg;
    for (int i = 0; i < h->conns; i++) {
        struct pollfd p = {.fd = h->lfd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0)
            break;
        size_t got = 0;
        while (got < sizeof h->request - 1 && !strstr(h->request, "\r\n\r\n")) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            if (poll(&q, 1, 5000) <= 0)
                break;
            ssize_t n = recv(fd, h->request + got, sizeof h->request - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            h->request[got] = '\0';
            if (h->request[0] == 0x16)
                break; /* a TLS ClientHello: answer in plain HTTP at once */
        }
        for (size_t off = 0; off < h->resp_len;) {
            ssize_t n = send(fd, h->response + off, h->resp_len - off, MSG_NOSIGNAL);
            if (n <= 0)
                break; /* the client gave up (the size cap) */
            off += (size_t)n;
        }
        shutdown(fd, SHUT_WR);
        close(fd);
        h->served++;
    }
    close(h->lfd);
    return NULL;
}

static void httpd_start(struct httpd *h, const char *response, size_t len, int conns)
{
    memset(h, 0, sizeof *h);
    h->response = response;
    h->resp_len = len;
    h->conns = conns;
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(h->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(h->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(h->lfd, 8), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(h->lfd, (struct sockaddr *)&sa, &sl), 0);
    h->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&h->th, NULL, httpd_main, h), 0);
}

static void httpd_stop(struct httpd *h)
{
    assert_int_equal(pthread_join(h->th, NULL), 0);
}

/* A response with a JWKS body; cache_control NULL for none. */
static char *make_response(const char *status, const char *cache_control, const char *body,
                           bool content_length, size_t *len)
{
    size_t blen = strlen(body), cap = blen + 512;
    char *r = malloc(cap);
    assert_non_null(r);
    int n = snprintf(r, cap, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%s%s%s", status,
                     cache_control ? "Cache-Control: " : "", cache_control ? cache_control : "",
                     cache_control ? "\r\n" : "");
    if (content_length)
        n += snprintf(r + n, cap - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(r + n, cap - (size_t)n, "Connection: close\r\n\r\n");
    memcpy(r + n, body, blen);
    *len = (size_t)n + blen;
    return r;
}

static struct jwks_cache *curl_cache(void)
{
    unsetenv("SUBMITD_JWKS_CAFILE");
    struct jwks_cache *c = jwks_cache_new("/nonexistent-datadir");
    assert_non_null(c);
    return c;
}

/* Serves one response with cache_control; asserts the set lives exactly `lifetime` s. */
static void check_curl_lifetime(const char *cache_control, int64_t lifetime)
{
    char doc[1024], url[64], err[256] = "";
    jwks_doc(doc, sizeof doc, "k1", "k2");
    size_t len;
    char *resp = make_response("200 OK", cache_control, doc, true, &len);
    struct httpd h;
    httpd_start(&h, resp, len, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", h.port);
    struct jwks_cache *c = curl_cache();
    struct jwks_ref *r = jwks_cache_get(c, "example.com", url, "k2", T0, err, sizeof err);
    if (!r)
        fail_msg("%s: %s", cache_control ? cache_control : "(none)", err);
    assert_true(ref_has(r, "k1") && ref_has(r, "k2"));
    jwks_ref_release(r);
    httpd_stop(&h);
    assert_int_equal(h.served, 1);
    assert_non_null(strstr(h.request, "GET /jwks HTTP/1.1\r\n"));
    assert_non_null(strstr(h.request, "\r\nUser-Agent: submitd\r\n"));
    r = jwks_cache_get(c, "example.com", url, "k2", T0 + lifetime - 1, err, sizeof err);
    assert_non_null(r);
    jwks_ref_release(r);
    if (jwks_cache_fetches(c) != 1)
        fail_msg("%s: refetched before %lld s", cache_control, (long long)lifetime);
    /* expired: a refetch (the server is gone, so it fails and the stale set serves) */
    r = jwks_cache_get(c, "example.com", url, "k2", T0 + lifetime, err, sizeof err);
    assert_non_null(r);
    jwks_ref_release(r);
    if (jwks_cache_fetches(c) != 2)
        fail_msg("%s: no refetch at %lld s", cache_control, (long long)lifetime);
    jwks_cache_free(c);
    free(resp);
}

static void test_curl_fetch_and_cache_control(void **state)
{
    (void)state;
    check_curl_lifetime("public, max-age=600", 600);
    check_curl_lifetime("max-age=\"7200\", must-revalidate", 7200);
    check_curl_lifetime(NULL, 3600);
    check_curl_lifetime("max-age=10", 300);
    check_curl_lifetime("MAX-AGE=999999999999", 86400);
    check_curl_lifetime("max-age=600, no-cache", 300);
    check_curl_lifetime("s-maxage=600", 3600);
}

/* Serves one response; returns what jwks_cache_get said (NULL: see err). */
static struct jwks_ref *curl_get_once(const char *resp, size_t len, char *err, size_t errlen)
{
    struct httpd h;
    char url[64];
    httpd_start(&h, resp, len, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", h.port);
    struct jwks_cache *c = curl_cache();
    struct jwks_ref *r = jwks_cache_get(c, "example.com", url, "", T0, err, errlen);
    httpd_stop(&h);
    assert_int_equal(h.served, 1);
    assert_int_equal(jwks_cache_fetches(c), 1);
    jwks_cache_free(c);
    return r;
}

static void test_curl_size_cap(void **state)
{
    (void)state;
    char doc[1024], err[256];
    jwks_doc(doc, sizeof doc, "k1", NULL);
    size_t cap = 64 * 1024, dlen = strlen(doc), len;
    char *body = malloc(cap + 2);
    assert_non_null(body);
    /* exactly 64 KiB (padded with JSON whitespace): accepted, with or without a length */
    memcpy(body, doc, dlen);
    memset(body + dlen, ' ', cap - dlen);
    body[cap] = '\0';
    for (int cl = 0; cl < 2; cl++) {
        char *resp = make_response("200 OK", NULL, body, cl, &len);
        struct jwks_ref *r = curl_get_once(resp, len, err, sizeof err);
        if (!r)
            fail_msg("64 KiB body refused: %s", err);
        assert_true(ref_has(r, "k1"));
        jwks_ref_release(r);
        free(resp);
    }
    /* one byte more: refused by the length header and by the write callback */
    body[cap] = ' ';
    body[cap + 1] = '\0';
    for (int cl = 0; cl < 2; cl++) {
        char *resp = make_response("200 OK", NULL, body, cl, &len);
        err[0] = '\0';
        assert_null(curl_get_once(resp, len, err, sizeof err));
        if (!strstr(err, "larger than 65536"))
            fail_msg("content-length %d: %s", cl, err);
        free(resp);
    }
    free(body);
}

static void test_curl_http_errors(void **state)
{
    (void)state;
    char doc[1024], err[256], resp[2048];
    jwks_doc(doc, sizeof doc, "k1", NULL);
    size_t len;
    char *r404 = make_response("404 Not Found", NULL, doc, true, &len);
    assert_null(curl_get_once(r404, len, err, sizeof err));
    assert_non_null(strstr(err, "404"));
    free(r404);
    /* a redirect is not followed */
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    assert_null(curl_get_once(resp, (size_t)n, err, sizeof err));
    assert_non_null(strstr(err, "302"));
    /* bad JSON over the wire */
    char *bad = make_response("200 OK", NULL, "{\"keys\": [ {", true, &len);
    assert_null(curl_get_once(bad, len, err, sizeof err));
    assert_true(err[0] != '\0');
    free(bad);
    /* https to a plain-HTTP listener: the TLS handshake fails, nothing is accepted */
    jwks_doc(doc, sizeof doc, "k1", NULL);
    char *ok = make_response("200 OK", NULL, doc, true, &len);
    struct httpd h;
    char url[64];
    httpd_start(&h, ok, len, 1);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/jwks", h.port);
    struct jwks_cache *c = curl_cache();
    assert_null(jwks_cache_get(c, "example.com", url, "", T0, err, sizeof err));
    httpd_stop(&h);
    jwks_cache_free(c);
    free(ok);
}

int main(void)
{
    if (jwks_cache_global_init() != 0)
        return 1;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0)
        return 1;
    log_init(devnull, LOG_LEVEL_ERROR); /* the expected load-failure warnings */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_within_lifetime),
        cmocka_unit_test(test_expiry_triggers_refetch),
        cmocka_unit_test(test_max_age_clamping),
        cmocka_unit_test(test_unknown_kid_refetch_rate_limited),
        cmocka_unit_test(test_failure_keeps_stale_set),
        cmocka_unit_test(test_failure_without_set),
        cmocka_unit_test(test_snapshot_outlives_refetch_and_cache),
        cmocka_unit_test(test_bad_json_reported),
        cmocka_unit_test(test_oversized_body_refused),
        cmocka_unit_test(test_source_validation),
        cmocka_unit_test(test_file_source_reread_on_change),
        cmocka_unit_test(test_builtin_source),
        cmocka_unit_test(test_concurrent_getters_one_fetch),
        cmocka_unit_test(test_curl_fetch_and_cache_control),
        cmocka_unit_test(test_curl_size_cap),
        cmocka_unit_test(test_curl_http_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
