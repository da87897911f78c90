/* test_issuer.c: the built-in issuer: a tenant's Ed25519 key is made once (DIR/keys 0700, the
 * key 0600) and reused; its tokens verify with issuer_jwks and carry the expected claims; tenant
 * keys are separate; domain names that could escape DIR/keys are refused before any file
 * system access; a key file readable by others is refused. Runs in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "issuer.h"
#include "jwt.h"

#define NOW 1700000000

static char dir[64];
static char err[512];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_issuer.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", dir, rel);
}

static int teardown(void **state)
{
    (void)state;
    char p[256];
    path(p, sizeof p, "keys");
    DIR *d = opendir(p);
    struct dirent *e;
    int bound = 1000;
    while (d && (e = readdir(d)) && bound-- > 0) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char f[512];
        snprintf(f, sizeof f, "%s/%s", p, e->d_name);
        unlink(f);
    }
    if (d)
        closedir(d);
    rmdir(p);
    rmdir(dir);
    return 0;
}

static mode_t mode_of(const char *rel)
{
    char p[256];
    struct stat st;
    path(p, sizeof p, rel);
    assert_int_equal(lstat(p, &st), 0);
    return st.st_mode & 07777;
}

static void test_key_made_once(void **state)
{
    (void)state;
    assert_int_equal(issuer_ensure_key(dir, "example.com", err, sizeof err), 0);
    assert_int_equal(mode_of("keys"), 0700);
    assert_int_equal(mode_of("keys/example.com.pem"), 0600);
    char p[256];
    struct stat a, b;
    path(p, sizeof p, "keys/example.com.pem");
    assert_int_equal(stat(p, &a), 0);
    char kid1[JWT_KID_MAX + 1], kid2[JWT_KID_MAX + 1];
    EVP_PKEY *k1 = issuer_load_key(dir, "example.com", kid1, err, sizeof err);
    assert_non_null(k1);
    assert_true(EVP_PKEY_is_a(k1, "ED25519"));
    /* again: the same file, the same key */
    assert_int_equal(issuer_ensure_key(dir, "example.com", err, sizeof err), 0);
    assert_int_equal(stat(p, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    assert_int_equal(a.st_mtime, b.st_mtime);
    EVP_PKEY *k2 = issuer_load_key(dir, "example.com", kid2, err, sizeof err);
    assert_non_null(k2);
    assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
    assert_string_equal(kid1, kid2);
    char thumb[JWT_KID_MAX + 1];
    assert_int_equal(jwk_thumbprint(k1, thumb), 0);
    assert_string_equal(kid1, thumb);
    /* no temporary file is left behind */
    path(p, sizeof p, "keys");
    DIR *d = opendir(p);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

static void test_issue_and_verify(void **state)
{
    (void)state;
    char *tok =
        issuer_issue(dir, "example.com", "alice@example.com", NULL, NULL, NOW, 0, err, sizeof err);
    assert_non_null(tok);
    struct jwks set;
    assert_int_equal(issuer_jwks(dir, "example.com", &set, err, sizeof err), 0);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.keys[0].alg, JWT_ALG_EDDSA);
    /* the set holds the public half only */
    uint8_t priv[64];
    size_t privlen = sizeof priv;
    assert_int_not_equal(EVP_PKEY_get_raw_private_key(set.keys[0].pkey, priv, &privlen), 1);

    char iss[300];
    issuer_name("example.com", iss, sizeof iss);
    assert_string_equal(iss, "submitd:example.com");
    struct jwt_expect x = {
        .issuer = iss, .audience = ISSUER_DEFAULT_AUDIENCE, .now = NOW, .skew = 60};
    struct jwt_claims c;
    assert_int_equal(jwt_verify(tok, strlen(tok), &set, &x, &c), JWT_OK);
    assert_int_equal(c.alg, JWT_ALG_EDDSA);
    assert_string_equal(c.kid, set.keys[0].kid);
    assert_string_equal(c.iss, iss);
    assert_string_equal(c.sub, "alice@example.com");
    assert_string_equal(c.identity, "alice@example.com");
    assert_false(c.app_only);
    assert_int_equal(c.iat, NOW);
    assert_int_equal(c.nbf, NOW);
    assert_int_equal(c.exp, NOW + ISSUER_DEFAULT_TTL);
    x.now = NOW + ISSUER_DEFAULT_TTL + 61;
    assert_int_equal(jwt_verify(tok, strlen(tok), &set, &x, &c), JWT_EXPIRED);

    /* the payload, decoded here: scp, email, a 16-octet jti */
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char p64[2048];
    size_t n = (size_t)(d2 - d1 - 1);
    memcpy(p64, d1 + 1, n);
    for (size_t i = 0; i < n; i++)
        p64[i] = p64[i] == '-' ? '+' : p64[i] == '_' ? '/' : p64[i];
    while (n % 4)
        p64[n++] = '=';
    unsigned char pj[2048];
    int pn = EVP_DecodeBlock(pj, (unsigned char *)p64, (int)n);
    assert_true(pn > 0);
    while (pn > 0 && pj[pn - 1] == '\0')
        pn--;
    json_t *pl = json_loadb((const char *)pj, (size_t)pn, 0, NULL);
    assert_non_null(pl);
    assert_string_equal(json_string_value(json_object_get(pl, "scp")), "SMTP.Send");
    assert_string_equal(json_string_value(json_object_get(pl, "email")), "alice@example.com");
    assert_string_equal(json_string_value(json_object_get(pl, "aud")), "submitd");
    const char *jti = json_string_value(json_object_get(pl, "jti"));
    assert_non_null(jti);
    assert_int_equal(strlen(jti), 22);
    char *tok2 =
        issuer_issue(dir, "example.com", "alice@example.com", NULL, NULL, NOW, 0, err, sizeof err);
    assert_non_null(tok2);
    assert_string_not_equal(tok, tok2); /* a fresh jti */
    json_decref(pl);
    free(tok2);
    free(tok);

    /* audience, scope and ttl as asked */
    tok = issuer_issue(dir, "example.com", "bob@example.com", "https://mail.example.com",
                       "Mail.Submit", NOW, 120, err, sizeof err);
    assert_non_null(tok);
    x.now = NOW;
    assert_int_equal(jwt_verify(tok, strlen(tok), &set, &x, &c), JWT_WRONG_AUDIENCE);
    x.audience = "https://mail.example.com";
    assert_int_equal(jwt_verify(tok, strlen(tok), &set, &x, &c), JWT_NO_SCOPE);
    x.scope = "Mail.Submit";
    assert_int_equal(jwt_verify(tok, strlen(tok), &set, &x, &c), JWT_OK);
    assert_int_equal(c.exp, NOW + 120);
    assert_string_equal(c.identity, "bob@example.com");
    free(tok);
    jwks_free(&set);

    /* bounds */
    assert_null(issuer_issue(dir, "example.com", "a@example.com", NULL, NULL, NOW,
                             ISSUER_TTL_MAX + 1, err, sizeof err));
    assert_non_null(strstr(err, "ttl"));
    assert_null(
        issuer_issue(dir, "example.com", "a@example.com", NULL, NULL, NOW, -1, err, sizeof err));
    tok = issuer_issue(dir, "example.com", "a@example.com", NULL, NULL, NOW, ISSUER_TTL_MAX, err,
                       sizeof err);
    assert_non_null(tok);
    free(tok);
    const char *bad_addrs[] = {"", "alice", "a b@example.com", "a@example.com\r\n", NULL};
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++)
        assert_null(
            issuer_issue(dir, "example.com", bad_addrs[i], NULL, NULL, NOW, 0, err, sizeof err));
}

/* Each tenant has its own key: one tenant's token does not verify with another's keys. */
static void test_tenants_separate(void **state)
{
    (void)state;
    char *tok =
        issuer_issue(dir, "example.com", "alice@example.com", NULL, NULL, NOW, 0, err, sizeof err);
    assert_non_null(tok);
    struct jwks other;
    assert_int_equal(issuer_jwks(dir, "example.org", &other, err, sizeof err), 0);
    assert_int_equal(mode_of("keys/example.org.pem"), 0600);
    struct jwt_expect x = {
        .issuer = "submitd:example.com", .audience = "submitd", .now = NOW, .skew = 60};
    assert_int_equal(jwt_verify(tok, strlen(tok), &other, &x, NULL), JWT_UNKNOWN_KID);
    /* even with the kid forced to match, the signature does not */
    strcpy(other.keys[0].kid, "");
    char kid[JWT_KID_MAX + 1];
    enum jwt_alg alg;
    assert_int_equal(jwt_peek(tok, strlen(tok), &alg, kid), JWT_OK);
    strcpy(other.keys[0].kid, kid);
    assert_int_equal(jwt_verify(tok, strlen(tok), &other, &x, NULL), JWT_BAD_SIGNATURE);
    jwks_free(&other);
    free(tok);
}

static void test_bad_domains(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         ".",
                         "..",
                         "../etc",
                         "a/b",
                         "Example.com",
                         ".example.com",
                         "example..com",
                         "-x.com",
                         "example.com.",
                         "a b",
                         "a\\b",
                         "x.com/..",
                         "\xc3\xa9.com",
                         NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char kid[JWT_KID_MAX + 1];
        struct jwks s;
        err[0] = '\0';
        assert_int_equal(issuer_ensure_key(dir, bad[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "domain"));
        assert_null(issuer_load_key(dir, bad[i], kid, err, sizeof err));
        assert_int_equal(issuer_jwks(dir, bad[i], &s, err, sizeof err), -1);
        assert_null(
            issuer_issue(dir, bad[i], "a@example.com", NULL, NULL, NOW, 0, err, sizeof err));
    }
    /* nothing was made for them: the data directory holds only keys/ */
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            assert_string_equal(e->d_name, "keys");
    closedir(d);
    assert_int_equal(issuer_ensure_key(dir, "xn--bcher-kva.example", err, sizeof err), 0);
    assert_int_equal(issuer_ensure_key(dir, "a-b.c0.example", err, sizeof err), 0);
}

static void test_permissions(void **state)
{
    (void)state;
    char p[256], kid[JWT_KID_MAX + 1];
    assert_int_equal(issuer_ensure_key(dir, "example.net", err, sizeof err), 0);
    path(p, sizeof p, "keys/example.net.pem");
    /* a key others can read is refused */
    assert_int_equal(chmod(p, 0644), 0);
    assert_null(issuer_load_key(dir, "example.net", kid, err, sizeof err));
    assert_non_null(strstr(err, "0600"));
    assert_int_equal(chmod(p, 0600), 0);
    EVP_PKEY *k = issuer_load_key(dir, "example.net", kid, err, sizeof err);
    assert_non_null(k);
    EVP_PKEY_free(k);
    /* a keys directory opened up is closed again */
    path(p, sizeof p, "keys");
    assert_int_equal(chmod(p, 0755), 0);
    assert_int_equal(issuer_ensure_key(dir, "example.net", err, sizeof err), 0);
    assert_int_equal(mode_of("keys"), 0700);
    /* a symbolic link in place of a key is neither followed nor replaced */
    char link_path[256];
    path(link_path, sizeof link_path, "keys/link.example.pem");
    path(p, sizeof p, "keys/example.net.pem");
    assert_int_equal(symlink(p, link_path), 0);
    assert_null(issuer_load_key(dir, "link.example", kid, err, sizeof err));
    assert_int_equal(issuer_ensure_key(dir, "link.example", err, sizeof err), -1);
    assert_int_equal(unlink(link_path), 0);
    /* a missing key is reported, not invented, by issuer_load_key */
    assert_null(issuer_load_key(dir, "missing.example", kid, err, sizeof err));
    assert_non_null(strstr(err, "missing.example.pem"));
    /* garbage in the key file */
    path(p, sizeof p, "keys/junk.example.pem");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(chmod(p, 0600), 0);
    assert_null(issuer_load_key(dir, "junk.example", kid, err, sizeof err));
    assert_non_null(strstr(err, "PEM"));
    /* and a missing data directory is an error, not created */
    assert_int_equal(issuer_ensure_key("/nonexistent/submitd", "example.com", err, sizeof err), -1);
    assert_non_null(strstr(err, "mkdir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_made_once),    cmocka_unit_test(test_issue_and_verify),
        cmocka_unit_test(test_tenants_separate), cmocka_unit_test(test_bad_domains),
        cmocka_unit_test(test_permissions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
