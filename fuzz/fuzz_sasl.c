/* fuzz_sasl.c: libFuzzer target for the SASL mechanisms (src/sasl.c): the PLAIN, XOAUTH2 and
 * OAUTHBEARER decoders on the whole input, then a full exchange (sasl_step) of one mechanism over
 * the input split into client responses. Checks the promises of sasl.h: a failed decode leaves
 * the credentials zeroed; a decoded PLAIN message re-encodes to exactly the input; identities are
 * NUL-terminated valid UTF-8 within SASL_ID_MAX; secrets are non-empty and fit; tokens are
 * b64token; an exchange that failed or finished accepts nothing more.
 * Input: control octet c0 (bits 0-1: mechanism PLAIN/LOGIN/XOAUTH2/OAUTHBEARER; bit 2: AUTH
 * without an initial response), split octets c1 c2 (see fuzz_util.h), then the decoded bytes.
 * RFC 4616, draft-murchison-sasl-login, RFC 7628, RFC 6750 2.1. */
#include <string.h>

#include "fuzz_util.h"
#include "sasl.h"
#include "smtp_parse.h"

/* One memcmp, not a byte loop: libFuzzer traces every comparison in instrumented code, and a
 * loop over the 12 KB secret buffer would cost most of the time of an execution. */
static bool all_zero(const void *p, size_t n)
{
    static const uint8_t zero[sizeof(struct sasl_exchange)];
    return n <= sizeof zero && memcmp(p, zero, n) == 0;
}

static void check_identity(const char id[SASL_ID_MAX + 1])
{
    size_t n = strnlen(id, SASL_ID_MAX + 1);
    FUZZ_CHECK(n <= SASL_ID_MAX);
    FUZZ_CHECK(smtp_utf8_valid(id, n));
}

static void check_credentials(const struct sasl_credentials *c)
{
    check_identity(c->authzid);
    check_identity(c->authcid);
    FUZZ_CHECK(c->authcid[0] != '\0');
    FUZZ_CHECK(c->secret_len > 0 && c->secret_len <= sizeof c->secret);
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n &&
           ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
            (s[i] >= '0' && s[i] <= '9') || strchr("-._~+/", s[i]) != NULL) &&
           s[i] != '\0')
        i++;
    if (i == 0)
        return false;
    while (i < n && s[i] == '=')
        i++;
    return i == n;
}

static void check_decoders(const uint8_t *msg, size_t len)
{
    static struct sasl_credentials c; /* 13 KB: off the stack */
    if (sasl_plain_decode(msg, len, &c)) {
        check_credentials(&c);
        /* authzid NUL authcid NUL passwd, exactly: nothing dropped, nothing added */
        size_t za = strlen(c.authzid), ca = strlen(c.authcid);
        FUZZ_CHECK(za + 1 + ca + 1 + c.secret_len == len);
        FUZZ_CHECK(memcmp(msg, c.authzid, za) == 0 && msg[za] == '\0');
        FUZZ_CHECK(memcmp(msg + za + 1, c.authcid, ca) == 0 && msg[za + 1 + ca] == '\0');
        FUZZ_CHECK(memcmp(msg + za + ca + 2, c.secret, c.secret_len) == 0);
    } else {
        FUZZ_CHECK(all_zero(&c, sizeof c));
    }
    if (sasl_xoauth2_decode(msg, len, &c)) {
        check_credentials(&c);
        FUZZ_CHECK(is_b64token(c.secret, c.secret_len));
    } else {
        FUZZ_CHECK(all_zero(&c, sizeof c));
    }
    if (sasl_oauthbearer_decode(msg, len, &c)) {
        check_credentials(&c);
        FUZZ_CHECK(is_b64token(c.secret, c.secret_len));
    } else {
        FUZZ_CHECK(all_zero(&c, sizeof c));
    }
}

static void run_exchange(enum sasl_mech mech, bool no_initial, struct fuzz_split *sp,
                         const uint8_t *msg, size_t len)
{
    static struct sasl_exchange x;
    sasl_begin(&x, mech);
    const uint8_t *ch = NULL;
    size_t ch_len = 0;
    enum sasl_status st = SASL_CONTINUE;
    if (no_initial) {
        st = sasl_step(&x, NULL, 0, &ch, &ch_len);
        FUZZ_CHECK(st == SASL_CONTINUE && ch != NULL && ch_len <= sizeof x.challenge);
    }
    size_t off = 0;
    int steps = 0;
    while (st == SASL_CONTINUE && steps++ < 8) {
        size_t n = fuzz_split_next(sp, len - off);
        st = sasl_step(&x, msg + off, n, &ch, &ch_len);
        FUZZ_CHECK(ch != NULL && ch_len <= sizeof x.challenge);
        off += n;
    }
    if (st == SASL_DONE)
        check_credentials(&x.cred);
    if (st != SASL_CONTINUE) {
        /* finished or failed: the exchange is over, whatever comes next */
        FUZZ_CHECK(sasl_step(&x, msg, len, &ch, &ch_len) == SASL_MALFORMED);
        FUZZ_CHECK(sasl_step(&x, NULL, 0, &ch, &ch_len) == SASL_MALFORMED);
    }
    sasl_wipe(&x);
    FUZZ_CHECK(all_zero(&x.cred, sizeof x.cred));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    enum sasl_mech mech = (enum sasl_mech)(SASL_MECH_PLAIN + (data[0] & 3));
    bool no_initial = (data[0] & 4) != 0;
    struct fuzz_split sp;
    fuzz_split_init(&sp, data[1], data[2]);
    const uint8_t *msg = data + 3;
    size_t len = size - 3;

    check_decoders(msg, len);
    run_exchange(mech, no_initial, &sp, msg, len);
    FUZZ_CHECK(sasl_mech_from_name(sasl_mech_name(mech), strlen(sasl_mech_name(mech))) == mech);
    (void)sasl_mech_from_name((const char *)msg, len);
    return 0;
}
