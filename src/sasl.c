/* sasl.c: SASL mechanism names and the PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER mechanisms as pure
 * state machines over decoded client responses, and the OAUTHBEARER JSON error. They know nothing
 * of SMTP: the session owns the framing (334, base64, '*', the 12288-octet limit) and the token
 * check (the mechanisms only take the message apart).
 * RFC 4422 (SASL), RFC 4616 (PLAIN), draft-murchison-sasl-login-00 (LOGIN), RFC 4954 4 (initial
 * responses), RFC 7628 (OAUTHBEARER), RFC 5801 4 (GS2 header), RFC 6750 2.1 (b64token),
 * Google's and Microsoft's XOAUTH2 message format, RFC 8259 7 (JSON strings). */
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
enum oauth_step { OAUTH_START = 0, OAUTH_WANT_MESSAGE, OAUTH_FINISHED };

/* RFC 7628 3.1 kvsep, also XOAUTH2's separator */
#define KVSEP 0x01

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

static bool is_alpha(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static uint8_t ascii_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

/* The user of an OAuth message names a mailbox: an identity as above, non-empty, and without
 * ASCII control characters (no address has them; ^A is the separator). */
static bool set_oauth_user(struct sasl_credentials *c, const uint8_t *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return set_identity(c->authcid, s, n);
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '.' ||
                     s[i] == '_' || s[i] == '~' || s[i] == '+' || s[i] == '/'))
        i++;
    if (i == 0)
        return false;
    while (i < n && s[i] == '=')
        i++;
    return i == n;
}

/* The auth value: credentials = "Bearer" 1*SP b64token (RFC 6750 2.1); the scheme name is
 * case-insensitive (RFC 7235 2.1). The token goes into c->secret. */
static bool set_bearer(struct sasl_credentials *c, const uint8_t *v, size_t n)
{
    static const char scheme[] = "bearer";
    size_t k = sizeof scheme - 1;
    if (n <= k)
        return false;
    for (size_t i = 0; i < k; i++)
        if (ascii_lower(v[i]) != (uint8_t)scheme[i])
            return false;
    if (v[k] != ' ')
        return false;
    while (k < n && v[k] == ' ')
        k++;
    return is_b64token(v + k, n - k) && set_secret(c, v + k, n - k);
}

/* RFC 7628 3.1: value = *(VCHAR / SP / HTAB / CR / LF) */
static bool kv_value_valid(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 0x21 && v[i] <= 0x7e) || v[i] == ' ' || v[i] == '\t' || v[i] == '\r' ||
              v[i] == '\n'))
            return false;
    return true;
}

/* One kvpair at m[*pos] (RFC 7628 3.1): key = 1*ALPHA, "=", the value up to and without the
 * next kvsep, which is consumed. Values are not checked here. */
static bool next_kvpair(const uint8_t *m, size_t len, size_t *pos, const uint8_t **key,
                        size_t *klen, const uint8_t **val, size_t *vlen)
{
    size_t i = *pos;
    while (i < len && is_alpha(m[i]))
        i++;
    if (i == *pos || i == len || m[i] != '=')
        return false;
    *key = m + *pos;
    *klen = i - *pos;
    i++;
    const uint8_t *end = i < len ? memchr(m + i, KVSEP, len - i) : NULL;
    if (end == NULL)
        return false;
    *val = m + i;
    *vlen = (size_t)(end - (m + i));
    *pos = (size_t)(end - m) + 1;
    return true;
}

static bool key_is(const uint8_t *key, size_t klen, const char *want)
{
    return klen == strlen(want) && memcmp(key, want, klen) == 0;
}

/* The kvpairs of either message from m[*pos], then the final kvsep, which must end the message.
 * "auth" is required once; "user" (XOAUTH2 only, want_user) is required once; other keys are
 * ignored (RFC 7628 3.1: host, port and extensions) but must be well-formed. */
static bool decode_kvpairs(const uint8_t *m, size_t len, size_t pos, bool want_user,
                           struct sasl_credentials *out)
{
    bool have_user = false, have_auth = false;
    /* every pair takes at least three octets, so this ends */
    while (pos < len && m[pos] != KVSEP) {
        const uint8_t *key, *val;
        size_t klen, vlen;
        if (!next_kvpair(m, len, &pos, &key, &klen, &val, &vlen))
            return false;
        if (key_is(key, klen, "auth")) {
            if (have_auth || !set_bearer(out, val, vlen))
                return false;
            have_auth = true;
        } else if (want_user && key_is(key, klen, "user")) {
            if (have_user || !set_oauth_user(out, val, vlen))
                return false;
            have_user = true;
        } else if (!kv_value_valid(val, vlen)) {
            return false;
        }
    }
    return pos + 1 == len && have_auth && (have_user || !want_user);
}

bool sasl_xoauth2_decode(const uint8_t *msg, size_t len, struct sasl_credentials *out)
{
    sodium_memzero(out, sizeof *out);
    if (!decode_kvpairs(msg, len, 0, true, out)) {
        sodium_memzero(out, sizeof *out);
        return false;
    }
    return true;
}

/* The saslname of the GS2 header from m[*pos] to the next ',' (consumed), with "=2C" and "=3D"
 * decoded (RFC 5801 4); any other '=' is malformed. */
static bool decode_saslname(const uint8_t *m, size_t len, size_t *pos, struct sasl_credentials *out)
{
    uint8_t name[SASL_ID_MAX + 1];
    size_t n = 0, i = *pos;
    bool ok = false;
    while (i < len && m[i] != ',') {
        uint8_t c = m[i++];
        if (c == '=') {
            if (len - i < 2)
                goto done;
            if (m[i] == '2' && m[i + 1] == 'C')
                c = ',';
            else if (m[i] == '3' && m[i + 1] == 'D')
                c = '=';
            else
                goto done;
            i += 2;
        }
        if (n == sizeof name)
            goto done; /* longer than SASL_ID_MAX */
        name[n++] = c;
    }
    if (i == len)
        goto done;
    *pos = i + 1;
    ok = set_oauth_user(out, name, n);
done:
    sodium_memzero(name, sizeof name);
    return ok;
}

bool sasl_oauthbearer_decode(const uint8_t *msg, size_t len, struct sasl_credentials *out)
{
    sodium_memzero(out, sizeof *out);
    /* gs2-header = gs2-cbind-flag "," [authzid] ","; we offer no channel binding, so "p=" is
     * refused (RFC 5801 4), and the authzid "a=" is required: it names the mailbox */
    size_t pos = 0;
    bool ok = len >= 4 && (msg[0] == 'n' || msg[0] == 'y') && msg[1] == ',' && msg[2] == 'a' &&
              msg[3] == '=';
    if (ok) {
        pos = 4;
        ok = decode_saslname(msg, len, &pos, out);
    }
    /* client-resp = gs2-header kvsep *kvpair kvsep */
    ok = ok && pos < len && msg[pos] == KVSEP && decode_kvpairs(msg, len, pos + 1, false, out);
    if (!ok)
        sodium_memzero(out, sizeof *out);
    return ok;
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

/* XOAUTH2 and OAUTHBEARER: one client message, the initial response or the answer to an empty
 * challenge. XOAUTH2 also takes an empty initial response as "no initial response". */
static enum sasl_status oauth_step(struct sasl_exchange *x, const uint8_t *resp, size_t len,
                                   const uint8_t **ch, size_t *ch_len)
{
    if (x->step == OAUTH_START && (resp == NULL || (len == 0 && x->mech == SASL_MECH_XOAUTH2))) {
        x->step = OAUTH_WANT_MESSAGE;
        return challenge(x, "", ch, ch_len);
    }
    if ((x->step != OAUTH_START && x->step != OAUTH_WANT_MESSAGE) || resp == NULL)
        return malformed(x);
    bool ok = x->mech == SASL_MECH_XOAUTH2 ? sasl_xoauth2_decode(resp, len, &x->cred)
                                           : sasl_oauthbearer_decode(resp, len, &x->cred);
    if (!ok)
        return malformed(x);
    x->step = OAUTH_FINISHED;
    return SASL_DONE;
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
    case SASL_MECH_XOAUTH2:
    case SASL_MECH_OAUTHBEARER:
        return oauth_step(x, resp, len, challenge_out, challenge_len);
    default:
        return malformed(x);
    }
}

/* Appends n octets to out, keeping room for the terminating NUL. */
static bool json_put(char *out, size_t cap, size_t *used, const char *s, size_t n)
{
    if (n >= cap - *used)
        return false;
    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
    return true;
}

/* Appends s as a JSON string (RFC 8259 7): '"' and '\\' escaped, control characters as \u00XX.
 * s must be valid UTF-8. */
static bool json_put_string(char *out, size_t cap, size_t *used, const char *s)
{
    size_t n = strlen(s);
    if (!smtp_utf8_valid(s, n) || !json_put(out, cap, used, "\"", 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        bool ok;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            ok = json_put(out, cap, used, esc, 2);
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            ok = json_put(out, cap, used, esc, 6);
        } else {
            ok = json_put(out, cap, used, s + i, 1);
        }
        if (!ok)
            return false;
    }
    return json_put(out, cap, used, "\"", 1);
}

size_t sasl_oauthbearer_error(char *out, size_t cap, const char *scope, const char *openid_url)
{
    static const char status[] = "{\"status\":\"invalid_token\"";
    static const char scope_key[] = ",\"scope\":";
    static const char openid_key[] = ",\"openid-configuration\":";
    size_t used = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    bool ok = json_put(out, cap, &used, status, sizeof status - 1);
    if (ok && scope != NULL && scope[0] != '\0')
        ok = json_put(out, cap, &used, scope_key, sizeof scope_key - 1) &&
             json_put_string(out, cap, &used, scope);
    if (ok && openid_url != NULL && openid_url[0] != '\0')
        ok = json_put(out, cap, &used, openid_key, sizeof openid_key - 1) &&
             json_put_string(out, cap, &used, openid_url);
    ok = ok && json_put(out, cap, &used, "}", 1);
    if (!ok) {
        out[0] = '\0';
        return 0;
    }
    return used;
}
