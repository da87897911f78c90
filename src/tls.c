/* tls.c: server TLS context and first-start self-signed certificate (RFC 5280 profile:
 * ECDSA P-256, SHA-256, subjectAltName DNS/IP, 825-day validity). */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define PATH_MAX_TEXT 4200

static void tls_reason(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s: %s", what, buf);
    ERR_clear_error();
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -1;
    int ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

static int write_pem(const char *path, int (*writer)(FILE *, void *), void *obj, char *err,
                     size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int ok = writer(f, obj);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s", path);
        unlink(path);
        return -1;
    }
    return 0;
}

static int write_key(FILE *f, void *k)
{
    return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}

static int write_cert(FILE *f, void *c)
{
    return PEM_write_X509(f, c);
}

int tls_ensure_certificate(const char *cert_path, const char *key_path, const char *hostname,
                           char *err, size_t errlen)
{
    struct stat st;
    if (stat(cert_path, &st) == 0)
        return 0;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIGNUM *bn = NULL;
    int rc = -1;
    if (!key || !cert) {
        tls_reason(err, errlen, "cannot generate a key");
        goto out;
    }
    unsigned char serial[16];
    ASN1_INTEGER *sn = X509_get_serialNumber(cert);
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, sn))
        goto fail;
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 825L * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    char san[600];
    snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
    if (add_ext(cert, NID_subject_alt_name, san) != 0 ||
        add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(cert, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(cert, NID_ext_key_usage, "serverAuth") != 0)
        goto fail;
    if (!X509_sign(cert, key, EVP_sha256()))
        goto fail;
    if (write_pem(key_path, write_key, key, err, errlen) != 0)
        goto out;
    if (write_pem(cert_path, write_cert, cert, err, errlen) != 0)
        goto out;
    rc = 0;
    goto out;
fail:
    tls_reason(err, errlen, "cannot make a self-signed certificate");
out:
    BN_free(bn);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

SSL_CTX *tls_server_context(const char *cert_path, const char *key_path, char *err,
                            size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_reason(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* TLS 1.2: forward-secret AEAD suites only (RFC 7525 4.2). */
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM")) {
        tls_reason(err, errlen, "cannot set the cipher list");
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* An idle session keeps no 16 KiB read and write buffers: OpenSSL frees each once it is
     * empty and allocates it again for the next record (scenario d of docs/performance.md). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"submitd", 7);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        char what[PATH_MAX_TEXT];
        snprintf(what, sizeof what, "cannot load the certificate %s", cert_path);
        tls_reason(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[PATH_MAX_TEXT];
        snprintf(what, sizeof what, "cannot load the key %s", key_path);
        tls_reason(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
