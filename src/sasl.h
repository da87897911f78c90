/* sasl.h: SASL mechanisms as pure state machines over decoded bytes; they know nothing of SMTP
 * (the session owns the framing: 334, base64, '*', the 12288-octet limit).
 * RFC 4422 (SASL), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN). XOAUTH2 and
 * OAUTHBEARER (RFC 7628) share this interface. */
#ifndef SUBMITD_SASL_H
#define SUBMITD_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_limits.h"

enum sasl_mech {
    SASL_MECH_NONE = 0,
    SASL_MECH_PLAIN,
    SASL_MECH_LOGIN,
    SASL_MECH_XOAUTH2,
    SASL_MECH_OAUTHBEARER,
    SASL_MECH_COUNT
};

/* Mechanism names are matched case-insensitively (RFC 4422 3.1 names are upper case). */
enum sasl_mech sasl_mech_from_name(const char *name, size_t len);
const char *sasl_mech_name(enum sasl_mech mech); /* "PLAIN", ... */
bool sasl_mech_is_basic(enum sasl_mech mech);    /* PLAIN and LOGIN carry a password */

struct sasl_credentials {
    char authzid[SASL_ID_MAX + 1];     /* "" when not given */
    char authcid[SASL_ID_MAX + 1];     /* the user as given */
    uint8_t secret[SASL_RESPONSE_MAX]; /* password or bearer token; wiped by sasl_wipe */
    size_t secret_len;
};

enum sasl_status {
    SASL_CONTINUE, /* send *challenge to the client and feed its next response */
    SASL_DONE,     /* credentials complete in x->cred */
    SASL_MALFORMED /* the response is not a valid message of this mechanism */
};

struct sasl_exchange {
    enum sasl_mech mech;
    int step;
    struct sasl_credentials cred;
    uint8_t challenge[64];
};

void sasl_begin(struct sasl_exchange *x, enum sasl_mech mech);

/* Feeds one decoded client response. resp == NULL means "AUTH was given no initial response"
 * (the first call only); an empty initial response ("=" on the wire) is resp != NULL, len 0.
 * On SASL_CONTINUE, *challenge and *challenge_len are the raw challenge bytes (PLAIN: empty;
 * LOGIN: "Username:" then "Password:").
 * PLAIN: authzid NUL authcid NUL passwd; exactly two NULs; authcid and passwd non-empty; each
 * identity at most SASL_ID_MAX octets and valid UTF-8; passwd at most 255 octets is NOT a limit
 * (any length up to the buffer). LOGIN: username then password, each non-empty. */
enum sasl_status sasl_step(struct sasl_exchange *x, const uint8_t *resp, size_t len,
                           const uint8_t **challenge, size_t *challenge_len);

/* XOAUTH2 (Google/Microsoft): one message "user=" USER ^A "auth=Bearer " TOKEN ^A ^A, or an
 * empty initial response first (then the empty challenge). OAUTHBEARER (RFC 7628 3.1): GS2 header
 * "n,a=USER," (the a= is required here: it names the mailbox), then ^A-separated key=value pairs
 * with "auth=Bearer TOKEN" required ("host=" and "port=" optional), ending ^A ^A. For both, on
 * SASL_DONE cred.authcid is the user and cred.secret the token. The "Bearer" scheme is matched
 * case-insensitively; the token must be b64token characters (RFC 6750 2.1). */

/* Pure decoders of one XOAUTH2 / OAUTHBEARER client message, used by sasl_step and directly by
 * tests and fuzzers. Return false (and leave *out zeroed) when malformed. */
bool sasl_xoauth2_decode(const uint8_t *msg, size_t len, struct sasl_credentials *out);
bool sasl_oauthbearer_decode(const uint8_t *msg, size_t len, struct sasl_credentials *out);

/* RFC 7628 3.2.2: the JSON error a server sends (as a 334 challenge) when OAUTHBEARER fails:
 * {"status":"invalid_token","scope":SCOPE} (and "openid-configuration" when given). Returns its
 * length (out is NUL-terminated), or 0 if it does not fit in cap (NUL included) or a value is not
 * UTF-8. A NULL or empty scope or openid_url is left out. */
size_t sasl_oauthbearer_error(char *out, size_t cap, const char *scope, const char *openid_url);

/* Erases the secret (sodium_memzero) and the identities. */
void sasl_wipe(struct sasl_exchange *x);

/* Pure decoder of a PLAIN message, used by sasl_step and directly by tests and fuzzers.
 * Returns false when malformed. */
bool sasl_plain_decode(const uint8_t *msg, size_t len, struct sasl_credentials *out);

#endif
