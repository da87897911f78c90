/* fuzz_smtp_client.c: libFuzzer target for the SMTP / LMTP client state machine
 * (src/smtp_client.c). The first octet picks the configuration (LMTP, TLS policy, AUTH
 * mechanism, TLS handshake outcome, DSN data, 8-bit / SMTPUTF8), the rest is the peer's side:
 * lines split at LF, fed to smtp_reply_feed, and every complete reply to the machine, which is
 * driven as a transport would (STARTTLS answered, DATA run through the stuffer). Invariants
 * (abort() on violation): no action after QUIT/CLOSE is requested; every recipient's enhanced
 * code has its outcome's class; `shown` never holds the secret; the stuffed data has no bare LF
 * or CR and ends with CRLF.CRLF. RFC 5321, RFC 2033, RFC 2920, RFC 3207, RFC 4954, RFC 3461. */
#include <string.h>

#include "fuzz_util.h"
#include "smtp_client.h"

#define SECRET "S3CR3T-T0KEN"

static void check_stuffed(const char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\n')
            FUZZ_CHECK(i > 0 && out[i - 1] == '\r');
        if (out[i] == '\r')
            FUZZ_CHECK(i + 1 < n && out[i + 1] == '\n');
    }
    FUZZ_CHECK(n >= 3 && memcmp(out + n - 3, ".\r\n", 3) == 0);
    FUZZ_CHECK(n == 3 || (n >= 5 && memcmp(out + n - 5, "\r\n.\r\n", 5) == 0));
}

static void stuff_rest(const uint8_t *data, size_t size)
{
    char *out = malloc(2 * size + 16);
    FUZZ_CHECK(out != NULL);
    struct smtp_stuffer s;
    smtp_stuff_init(&s);
    size_t o = smtp_client_stuff(&s, (const char *)data, size, out);
    FUZZ_CHECK(o <= 2 * size + 2);
    o += smtp_client_stuff_end(&s, out + o);
    check_stuffed(out, o);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;

    char *rcpts[3] = {"b@y.test", "c@y.test", "d@y.test"};
    unsigned notify[3] = {DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_NOTIFY_NEVER, 0};
    char *orcpt[3] = {"rfc822;B+b=@y.test", NULL, NULL};
    struct spool_envelope env = {.n_rcpts = 3, .rcpts = rcpts, .size = 1000};
    snprintf(env.sender, sizeof env.sender, "a@x.test");
    snprintf(env.body, sizeof env.body, (ctl & 0x40) ? "8BITMIME" : "7BIT");
    env.smtputf8 = (ctl & 0x80) != 0;
    if (ctl & 0x20) {
        env.notify = notify;
        env.orcpt = orcpt;
        snprintf(env.envid, sizeof env.envid, "env id");
        snprintf(env.ret, sizeof env.ret, "HDRS");
    }
    struct delivery_rcpt_result rr[3];
    struct delivery_result res = {.rcpts = rr, .n_rcpts = 3};
    struct smtp_client_config cfg = {.lmtp = (ctl & 1) != 0,
                                     .tls = (enum relay_tls)((ctl >> 1) & 3),
                                     .auth = (enum relay_auth)((ctl >> 3) & 3),
                                     .user = "u@x.test",
                                     .secret = SECRET,
                                     .helo = "client.test",
                                     .auth_failure_permanent = (ctl & 0x20) != 0};
    struct smtp_client *c = smtp_client_new(&cfg, &env, &res);
    FUZZ_CHECK(c != NULL);
    struct smtp_client_action a = smtp_client_start(c);
    static struct smtp_reply r; /* 8 KB */
    smtp_reply_init(&r);
    bool ended = false;
    const char *p = (const char *)data, *end = p + size;
    while (p < end && !ended) {
        if (a.what == SMTPC_STARTTLS) {
            a = smtp_client_tls_done(c, (ctl & 0x04) == 0, "4.7.5", "verification failed");
            continue;
        }
        if (a.what == SMTPC_DATA)
            stuff_rest((const uint8_t *)p, (size_t)(end - p) < 256 ? (size_t)(end - p) : 256);
        if (a.what == SMTPC_QUIT || a.what == SMTPC_CLOSE) {
            ended = true;
            break;
        }
        if (a.shown != NULL)
            FUZZ_CHECK(strstr(a.shown, SECRET) == NULL);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        char *line = fuzz_dup((const uint8_t *)p, len);
        enum smtp_reply_status st = smtp_reply_feed(&r, line, len);
        free(line);
        if (st == SMTP_REPLY_DONE)
            a = smtp_client_reply(c, &r);
        if (st != SMTP_REPLY_MORE)
            smtp_reply_init(&r);
        p = nl ? nl + 1 : end;
    }
    if (!ended)
        smtp_client_abort(c, "4.4.2", "connection lost");
    for (size_t i = 0; i < 3; i++) {
        char cls = rr[i].outcome == DELIVERY_OK ? '2' : rr[i].outcome == DELIVERY_PERM ? '5' : '4';
        FUZZ_CHECK(rr[i].enhanced[0] == cls);
        FUZZ_CHECK(memchr(rr[i].text, '\0', sizeof rr[i].text) != NULL);
        FUZZ_CHECK(rr[i].stage[0] != '\0');
    }
    smtp_client_free(c);
    return 0;
}
