/* issuer.c: submitd's built-in OAuth issuer (SPEC 5). Owns the per-tenant Ed25519 signing keys
 * in DIR/keys/DOMAIN.pem (PKCS #8 PEM, mode 0600, directory 0700, written durably: temp file,
 * fsync, link into place without replacing, fsync the directory), their kid (RFC 7638
 * thumbprint), the tenant's public JWKS (RFC 7517), and short-lived access tokens (RFC 7519,
 * RFC 9068-style claims: iss, aud, sub, email, scp, iat, nbf, exp, jti) signed EdDSA (RFC 8037). */
#include "issuer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sodium.h>

#define ISSUER_KEY_FILE_MAX 16384 /* a PEM private key is far smaller */
#define ISSUER_JTI_BYTES 16
#define ISSUER_SCOPE_DEFAULT "SMTP.Send"
#define ISSUER_PATH_MAX 4096

void issuer_name(const char *domain, char *out, size_t cap)
{
    snprintf(out, cap, "submitd:%s", domain ? domain : "");
}

/* Domain names become file names: lower-case letters, digits, '-' and '.', no leading or
 * trailing dot, no leading '-', no "..", so a name can never leave DIR/keys. */
static bool domain_ok(const char *d)
{
    size_t n = d ? strlen(d) : 0;
    if (n == 0 || n > SMTP_DOMAIN_MAX || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok || (c == '.' && d[i + 1] == '.'))
            return false;
    }
    return true;
}

static int key_paths(const char *datadir, const char *domain, char *dir, char *file, char *err,
                     size_t errlen)
{
    if (!datadir || !*datadir) {
        snprintf(err, errlen, "no data directory");
        return -1;
    }
    if (!domain_ok(domain)) {
        snprintf(err, errlen, "invalid tenant domain for a key file name");
        return -1;
    }
    int a = snprintf(dir, ISSUER_PATH_MAX, "%s/keys", datadir);
    int b = snprintf(file, ISSUER_PATH_MAX, "%s/keys/%s.pem", datadir, domain);
    if (a < 0 || a >= ISSUER_PATH_MAX || b < 0 || b >= ISSUER_PATH_MAX) {
        snprintf(err, errlen, "data directory path too long");
        return -1;
    }
    return 0;
}

static int fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        snprintf(err, errlen, "fsync %s: %s", dir, strerror(saved));
        return -1;
    }
    return 0;
}

static int ensure_keys_dir(const char *datadir, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0)
        return fsync_dir(datadir, err, errlen);
    if (errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(err, errlen, "stat %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    if ((st.st_mode & 077) != 0 && chmod(dir, 0700) != 0) {
        snprintf(err, errlen, "chmod 0700 %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes a new key to a temp file and links it into place. link() never replaces: when another
 * process made the key first, theirs is kept (tokens it signed stay valid). */
static int create_key(const char *dir, const char *file, char *err, size_t errlen)
{
    char tmp[ISSUER_PATH_MAX];
    int rc = -1, fd = -1;
    BIO *mem = NULL;
    char *pem = NULL;
    long pemlen = 0;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (snprintf(tmp, sizeof tmp, "%s/.key.XXXXXX", dir) >= (int)sizeof tmp) {
        snprintf(err, errlen, "data directory path too long");
        goto out;
    }
    if (!key || !(mem = BIO_new(BIO_s_secmem())) ||
        PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pemlen = BIO_get_mem_data(mem, &pem)) <= 0) {
        snprintf(err, errlen, "cannot generate an Ed25519 key (OpenSSL)");
        goto out;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) { /* mode 0600 */
        snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, pem, (size_t)pemlen) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        snprintf(err, errlen, "close %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (link(tmp, file) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "link %s to %s: %s", tmp, file, strerror(errno));
        goto out_unlink;
    }
    if (unlink(tmp) != 0) {
        snprintf(err, errlen, "unlink %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = fsync_dir(dir, err, errlen);
    goto out;
out_unlink:
    if (fd >= 0)
        close(fd);
    fd = -1;
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    if (pem && pemlen > 0)
        OPENSSL_cleanse(pem, (size_t)pemlen);
    BIO_free(mem);
    EVP_PKEY_free(key);
    return rc;
}

int issuer_ensure_key(const char *datadir, const char *domain, char *err, size_t errlen)
{
    char dir[ISSUER_PATH_MAX], file[ISSUER_PATH_MAX];
    if (key_paths(datadir, domain, dir, file, err, errlen) != 0 ||
        ensure_keys_dir(datadir, dir, err, errlen) != 0)
        return -1;
    struct stat st;
    if (lstat(file, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s is not a regular file", file);
            return -1;
        }
        return 0; /* never replace a key: tokens signed with it would stop working */
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "stat %s: %s", file, strerror(errno));
        return -1;
    }
    return create_key(dir, file, err, errlen);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* an encrypted key file is refused, never prompted for */
}

EVP_PKEY *issuer_load_key(const char *datadir, const char *domain, char kid[JWT_KID_MAX + 1],
                          char *err, size_t errlen)
{
    char dir[ISSUER_PATH_MAX], file[ISSUER_PATH_MAX];
    if (key_paths(datadir, domain, dir, file, err, errlen) != 0)
        return NULL;
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", file, strerror(errno));
        return NULL;
    }
    struct stat st;
    char buf[ISSUER_KEY_FILE_MAX];
    size_t n = 0;
    EVP_PKEY *key = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "stat %s: %s", file, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s: must be a regular file of mode 0600 (is %03o)", file,
                 (unsigned)(st.st_mode & 0777));
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "read %s: %s", file, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf) {
            snprintf(err, errlen, "%s: larger than %d bytes", file, ISSUER_KEY_FILE_MAX);
            goto out;
        }
    }
    BIO *mem = BIO_new_mem_buf(buf, (int)n);
    key = mem ? PEM_read_bio_PrivateKey(mem, NULL, no_passphrase, NULL) : NULL;
    BIO_free(mem);
    if (!key) {
        snprintf(err, errlen, "%s: not a PEM private key", file);
        goto out;
    }
    if (jwk_thumbprint(key, kid) != 0) {
        snprintf(err, errlen, "%s: not an Ed25519, P-256 or RSA (2048+) key", file);
        EVP_PKEY_free(key);
        key = NULL;
    }
out:
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return key;
}

int issuer_jwks(const char *datadir, const char *domain, struct jwks *out, char *err, size_t errlen)
{
    char kid[JWT_KID_MAX + 1];
    memset(out, 0, sizeof *out);
    if (issuer_ensure_key(datadir, domain, err, errlen) != 0)
        return -1;
    EVP_PKEY *key = issuer_load_key(datadir, domain, kid, err, errlen);
    if (!key)
        return -1;
    /* Through the public JWKS text, so the set holds the public half only. */
    char *doc = jwks_export_public(key, kid);
    EVP_PKEY_free(key);
    if (!doc) {
        snprintf(err, errlen, "cannot export the public key of %s", domain);
        return -1;
    }
    int rc = jwks_parse(doc, strlen(doc), out, err, errlen);
    free(doc);
    if (rc == 0 && out->n != 1) {
        snprintf(err, errlen, "the public JWKS of %s holds no usable key", domain);
        jwks_free(out);
        rc = -1;
    }
    return rc;
}

static bool text_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return false;
    return true;
}

char *issuer_issue(const char *datadir, const char *domain, const char *address,
                   const char *audience, const char *scope, int64_t now, int ttl, char *err,
                   size_t errlen)
{
    if (!audience || !*audience)
        audience = ISSUER_DEFAULT_AUDIENCE;
    if (!scope || !*scope)
        scope = ISSUER_SCOPE_DEFAULT;
    if (ttl == 0)
        ttl = ISSUER_DEFAULT_TTL;
    if (!text_ok(address, SMTP_PATH_MAX) || !strchr(address, '@')) {
        snprintf(err, errlen, "invalid address");
        return NULL;
    }
    if (!text_ok(audience, 255) || strlen(scope) > 255 || strchr(scope, '\n')) {
        snprintf(err, errlen, "invalid audience or scope");
        return NULL;
    }
    if (ttl < 0 || ttl > ISSUER_TTL_MAX) {
        snprintf(err, errlen, "ttl must be 1 to %d seconds", ISSUER_TTL_MAX);
        return NULL;
    }
    if (issuer_ensure_key(datadir, domain, err, errlen) != 0)
        return NULL;
    char kid[JWT_KID_MAX + 1];
    EVP_PKEY *key = issuer_load_key(datadir, domain, kid, err, errlen);
    if (!key)
        return NULL;
    uint8_t raw[ISSUER_JTI_BYTES];
    char jti[sodium_base64_ENCODED_LEN(ISSUER_JTI_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char iss[SMTP_DOMAIN_MAX + 16];
    char *token = NULL;
    if (RAND_bytes(raw, sizeof raw) != 1) {
        snprintf(err, errlen, "no randomness for jti (OpenSSL RAND_bytes)");
        goto out;
    }
    sodium_bin2base64(jti, sizeof jti, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    issuer_name(domain, iss, sizeof iss);
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", iss, "aud", audience,
                  "sub", address, "email", address, "scp", scope, "iat", (json_int_t)now, "nbf",
                  (json_int_t)now, "exp", (json_int_t)(now + ttl), "jti", jti);
    char *text = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    if (!text) {
        snprintf(err, errlen, "cannot build the claims (address or scope not UTF-8?)");
        goto out;
    }
    token = jwt_sign(key, kid, text);
    free(text);
    if (!token)
        snprintf(err, errlen, "cannot sign the token");
out:
    EVP_PKEY_free(key);
    return token;
}
