/* sasl.c: SASL mechanism names and the PLAIN and LOGIN mechanisms as pure state machines over
 * decoded client responses. They know nothing of SMTP: the session owns the framing (334,
 * base64, '*', the 12288-octet limit). XOAUTH2 and OAUTHBEARER are named here; their exchanges
 * are implemented separately and are refused as malformed until then.
 * RFC 4422 (SASL), RFC 4616 (PLAIN), draft-murchison-sasl-login-00 (LOGIN), RFC 4954 4 (initial
 * responses). */
#include "sasl.h"

#include <string.h>

#include <sodium.h>

#include "smtp_parse.h"

static const char *const mech_names[SASL_MECH_COUNT] = {
    [SASL_MECH_NONE] = "NONE",
    [SASL_MECH_PLAIN] = "PLAIN",
    [SASL_MECH_LOGIN] = "LOGIN",
    [SASL_MECH_XOAUTH2] = "XOAUTH2",
    [SASL_MECH_OAUTHBEARER] = "OAUTHBEARER",
};

/* LOGIN's challenges; the draft leaves them free, these are what every client expects. */
static const char login_username[] = "Username:";
static const char login_password[] = "Password:";

enum login_step { LOGIN_START = 0, LOGIN_WANT_USER, LOGIN_WANT_PASSWORD, LOGIN_FINISHED };
enum plain_step { PLAIN_START = 0, PLAIN_WANT_MESSAGE, PLAIN_FINISHED };

enum sasl_mech sasl_mech_from_name(const char *name, size_t len)
{
    for (int m = SASL_MECH_NONE + 1; m < SASL_MECH_COUNT; m++) {
        const char *want = mech_names[m];
        if (strlen(want) != len)
            continue;
        size_t i = 0;
        while (i < len) {
            char c = name[i];
            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            if (c != want[i])
                break;
            i++;
        }
        if (i == len)
            return (enum sasl_mech)m;
    }
    return SASL_MECH_NONE;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
    if ((int)mech < 0 || mech >= SASL_MECH_COUNT)
        return mech_names[SASL_MECH_NONE];
    return mech_names[mech];
}

bool sasl_mech_is_basic(enum sasl_mech mech)
{
    return mech == SASL_MECH_PLAIN || mech == SASL_MECH_LOGIN;
}

void sasl_begin(struct sasl_exchange *x, enum sasl_mech mech)
{
    sodium_memzero(x, sizeof *x);
    x->mech = mech;
    x->step = 0;
}

void sasl_wipe(struct sasl_exchange *x)
{
    sodium_memzero(&x->cred, sizeof x->cred);
    sodium_memzero(x->challenge, sizeof x->challenge);
}

/* An identity (authzid, authcid, LOGIN user name): at most SASL_ID_MAX octets of valid UTF-8
 * without NUL, copied NUL-terminated into out. */
static bool set_identity(char out[SASL_ID_MAX + 1], const uint8_t *s, size_t n)
{
    if (n > SASL_ID_MAX || (n > 0 && memchr(s, '\0', n) != NULL) ||
        !smtp_utf8_valid((const char *)s, n))
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static bool set_secret(struct sasl_credentials *c, const uint8_t *s, size_t n)
{
    if (n == 0 || n > sizeof c->secret)
        return false;
    memcpy(c->secret, s, n);
    c->secret_len = n;
    return true;
}

bool sasl_plain_decode(const uint8_t *msg, size_t len, struct sasl_credentials *out)
{
    sodium_memzero(out, sizeof *out);
    /* message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 2): exactly two NULs */
    const uint8_t *nul1 = len > 0 ? memchr(msg, '\0', len) : NULL;
    if (nul1 == NULL)
        return false;
    size_t a = (size_t)(nul1 - msg);
    const uint8_t *nul2 = memchr(nul1 + 1, '\0', len - a - 1);
    if (nul2 == NULL)
        return false;
    size_t b = (size_t)(nul2 - msg);
    size_t plen = len - b - 1;
    if (plen > 0 && memchr(nul2 + 1, '\0', plen) != NULL)
        return false;
    if (b - a - 1 == 0 || !set_identity(out->authzid, msg, a) ||
        !set_identity(out->authcid, nul1 + 1, b - a - 1) || !set_secret(out, nul2 + 1, plen)) {
        sodium_memzero(out, sizeof *out);
        return false;
    }
    return true;
}

static enum sasl_status challenge(struct sasl_exchange *x, const char *text, const uint8_t **out,
                                  size_t *out_len)
{
    size_t n = strlen(text);
    memcpy(x->challenge, text, n);
    *out = x->challenge;
    *out_len = n;
    return SASL_CONTINUE;
}

static enum sasl_status malformed(struct sasl_exchange *x)
{
    sasl_wipe(x);
    x->step = -1; /* nothing more is accepted in this exchange */
    return SASL_MALFORMED;
}

static enum sasl_status plain_step(struct sasl_exchange *x, const uint8_t *resp, size_t len,
                                   const uint8_t **ch, size_t *ch_len)
{
    if (x->step == PLAIN_START && resp == NULL) {
        x->step = PLAIN_WANT_MESSAGE;
        return challenge(x, "", ch, ch_len); /* RFC 4954 4: "334 " with nothing after it */
    }
    if ((x->step != PLAIN_START && x->step != PLAIN_WANT_MESSAGE) || resp == NULL ||
        !sasl_plain_decode(resp, len, &x->cred))
        return malformed(x);
    x->step = PLAIN_FINISHED;
    return SASL_DONE;
}

static enum sasl_status login_step(struct sasl_exchange *x, const uint8_t *resp, size_t len,
                                   const uint8_t **ch, size_t *ch_len)
{
    switch (x->step) {
    case LOGIN_START:
        if (resp == NULL) {
            x->step = LOGIN_WANT_USER;
            return challenge(x, login_username, ch, ch_len);
        }
        /* an initial response is the user name (RFC 4954 4 lets any mechanism start with one) */
        /* fall through */
    case LOGIN_WANT_USER:
        if (resp == NULL || len == 0 || !set_identity(x->cred.authcid, resp, len))
            return malformed(x);
        x->step = LOGIN_WANT_PASSWORD;
        return challenge(x, login_password, ch, ch_len);
    case LOGIN_WANT_PASSWORD:
        /* a NUL could never be sent with PLAIN, so it is refused here too */
        if (resp == NULL || (len > 0 && memchr(resp, '\0', len) != NULL) ||
            !set_secret(&x->cred, resp, len))
            return malformed(x);
        x->step = LOGIN_FINISHED;
        return SASL_DONE;
    default:
        return malformed(x);
    }
}

enum sasl_status sasl_step(struct sasl_exchange *x, const uint8_t *resp, size_t len,
                           const uint8_t **challenge_out, size_t *challenge_len)
{
    *challenge_out = x->challenge;
    *challenge_len = 0;
    switch (x->mech) {
    case SASL_MECH_PLAIN:
        return plain_step(x, resp, len, challenge_out, challenge_len);
    case SASL_MECH_LOGIN:
        return login_step(x, resp, len, challenge_out, challenge_len);
    default:
        /* XOAUTH2 and OAUTHBEARER are implemented in their own files (a later change) */
        return malformed(x);
    }
}
