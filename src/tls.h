/* tls.h: the server's TLS context (OpenSSL 3): TLS 1.2 and 1.3 only (RFC 8996, RFC 8314),
 * session tickets for resumption, and a self-signed ECDSA P-256 certificate made on first start
 * when none is configured. */
#ifndef SUBMITD_TLS_H
#define SUBMITD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Makes cert_path/key_path (0600) with a self-signed certificate for `hostname` (plus localhost,
 * 127.0.0.1 and ::1) when cert_path does not exist. Returns 0 or -1 with a reason. */
int tls_ensure_certificate(const char *cert_path, const char *key_path, const char *hostname,
                           char *err, size_t errlen);
/* A server context for the certificate and key. Returns NULL with a reason. */
SSL_CTX *tls_server_context(const char *cert_path, const char *key_path, char *err,
                            size_t errlen);

#endif
