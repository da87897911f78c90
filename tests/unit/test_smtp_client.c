/* test_smtp_client.c: the SMTP / LMTP client state machine (smtp_client.c) driven by scripted
 * replies: command order and exact lines, PIPELINING groups (RFC 2920), SIZE (RFC 1870), DSN
 * parameters and xtext (RFC 3461), 8BITMIME and SMTPUTF8, STARTTLS policies (RFC 3207), AUTH
 * PLAIN / LOGIN / XOAUTH2 (RFC 4954, initial response limit, 334 JSON error), LMTP per-recipient
 * replies (RFC 2033), 421, HELO fallback, transport aborts, masking, and dot-stuffing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "smtp_client.h"

#define NR 4

struct drv {
    struct spool_envelope env;
    char *rcpts[NR];
    char rcpt_buf[NR][64];
    unsigned notify[NR];
    char *orcpt[NR];
    struct delivery_rcpt_result rr[NR];
    struct delivery_result res;
    struct smtp_client_config cfg;
    struct smtp_client *c;
    struct smtp_client_action a;
    char shown_all[16384]; /* every `shown` and every `out`, to look for secrets */
};

static struct drv *drv_new(size_t n)
{
    struct drv *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->env.sender, sizeof d->env.sender, "a@x.test");
    for (size_t i = 0; i < n; i++) {
        snprintf(d->rcpt_buf[i], sizeof d->rcpt_buf[i], "r%zu@y.test", i);
        d->rcpts[i] = d->rcpt_buf[i];
    }
    d->env.rcpts = d->rcpts;
    d->env.n_rcpts = n;
    snprintf(d->env.body, sizeof d->env.body, "7BIT");
    d->env.size = 100;
    d->res.rcpts = d->rr;
    d->res.n_rcpts = n;
    d->cfg.tls = RELAY_TLS_NONE;
    d->cfg.auth = RELAY_AUTH_NONE;
    d->cfg.helo = "client.test";
    d->cfg.user = "";
    return d;
}

static void record(struct drv *d)
{
    size_t used = strlen(d->shown_all);
    if (d->a.shown != NULL)
        snprintf(d->shown_all + used, sizeof d->shown_all - used, "%s|", d->a.shown);
}

static void drv_start(struct drv *d)
{
    d->c = smtp_client_new(&d->cfg, &d->env, &d->res);
    assert_non_null(d->c);
    d->a = smtp_client_start(d->c);
}

static void drv_free(struct drv *d)
{
    smtp_client_free(d->c);
    free(d);
}

/* Feeds a reply given as lines separated by '\n' ("250-a\n250 b"). */
static void reply(struct drv *d, const char *text)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, "\n");
        enum smtp_reply_status st = smtp_reply_feed(&r, p, n);
        if (st == SMTP_REPLY_DONE)
            break;
        assert_int_equal(st, SMTP_REPLY_MORE);
        assert_true(p[n] == '\n');
        p += n + 1;
    }
    d->a = smtp_client_reply(d->c, &r);
    record(d);
}

static void tls_done(struct drv *d, bool ok, const char *enh, const char *why)
{
    d->a = smtp_client_tls_done(d->c, ok, enh, why);
    record(d);
}

static void expect_send(struct drv *d, const char *out)
{
    assert_int_equal(d->a.what, SMTPC_SEND);
    assert_non_null(d->a.out);
    assert_int_equal(d->a.out_len, strlen(out));
    assert_memory_equal(d->a.out, out, strlen(out));
}

static void expect_what(struct drv *d, enum smtp_client_do what)
{
    assert_int_equal(d->a.what, what);
}

static void expect_quit(struct drv *d)
{
    assert_int_equal(d->a.what, SMTPC_QUIT);
    assert_string_equal(d->a.out, "QUIT\r\n");
}

static void expect_rcpt(struct drv *d, size_t i, enum delivery_outcome o, int code, const char *enh,
                        const char *stage)
{
    assert_int_equal(d->rr[i].outcome, o);
    assert_int_equal(d->rr[i].code, code);
    assert_string_equal(d->rr[i].enhanced, enh);
    assert_string_equal(d->rr[i].stage, stage);
}

/* Greeting and EHLO with the capability lines given ("PIPELINING\nSIZE 10"). */
static void hello(struct drv *d, const char *caps)
{
    drv_start(d);
    expect_what(d, SMTPC_READ);
    assert_int_equal(d->a.wait, SMTPC_WAIT_GREETING);
    reply(d, "220 mx.test ESMTP");
    expect_send(d, d->cfg.lmtp ? "LHLO client.test\r\n" : "EHLO client.test\r\n");
    char buf[1024] = "250-mx.test hello";
    const char *p = caps;
    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "\n250-%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "\n250 "); /* as smtp-sink ends */
    reply(d, buf);
}

/* DATA accepted: the machine wants the message; then the final reply. */
static void data_ok(struct drv *d)
{
    reply(d, "354 go ahead");
    expect_what(d, SMTPC_DATA);
    assert_int_equal(d->a.wait, SMTPC_WAIT_DATA_FINAL);
}

/* ---------------------------------------------------------------- transactions */

static void test_plain_no_pipelining(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "8BITMIME\nENHANCEDSTATUSCODES");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    assert_false(smtp_client_pipelining(d->c));
    reply(d, "250 2.1.0 ok");
    expect_send(d, "RCPT TO:<r0@y.test>\r\n");
    reply(d, "250 2.1.5 ok");
    expect_send(d, "RCPT TO:<r1@y.test>\r\n");
    reply(d, "250 2.1.5 ok");
    expect_send(d, "DATA\r\n");
    assert_int_equal(d->a.wait, SMTPC_WAIT_DATA_INIT);
    data_ok(d);
    reply(d, "250 2.0.0 queued as X");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    expect_rcpt(d, 1, DELIVERY_OK, 250, "2.0.0", "dot");
    assert_string_equal(d->rr[0].text, "2.0.0 queued as X");
    assert_false(d->rr[0].dsn_passed);
    drv_free(d);
}

static void test_pipelining_group(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    expect_send(d, "MAIL FROM:<a@x.test>\r\nRCPT TO:<r0@y.test>\r\nRCPT TO:<r1@y.test>\r\n"
                   "DATA\r\n");
    assert_true(smtp_client_pipelining(d->c));
    reply(d, "250 ok");
    expect_what(d, SMTPC_READ);
    assert_int_equal(d->a.wait, SMTPC_WAIT_COMMAND);
    reply(d, "250 ok");
    expect_what(d, SMTPC_READ);
    reply(d, "250 ok");
    expect_what(d, SMTPC_READ);
    assert_int_equal(d->a.wait, SMTPC_WAIT_DATA_INIT);
    data_ok(d);
    reply(d, "250 done");
    expect_quit(d);
    expect_rcpt(d, 1, DELIVERY_OK, 250, "2.0.0", "dot");
    drv_free(d);
}

static void test_pipelining_one_refused(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    reply(d, "250 ok");
    reply(d, "250 ok");
    reply(d, "550-5.1.1 <r1@y.test> unknown\n550 5.1.1 really");
    data_ok(d);
    reply(d, "250 done");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    expect_rcpt(d, 1, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    assert_string_equal(d->rr[1].text, "5.1.1 <r1@y.test> unknown; 5.1.1 really");
    drv_free(d);
}

static void test_pipelining_all_refused_lone_dot(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    reply(d, "250 ok");
    reply(d, "550 5.1.1 no");
    reply(d, "450 4.2.0 later");
    reply(d, "354 go ahead"); /* RFC 2920 3.1: a lone dot, not the message */
    expect_send(d, ".\r\n");
    reply(d, "554 5.5.0 no valid recipients");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    expect_rcpt(d, 1, DELIVERY_TEMP, 450, "4.2.0", "rcpt");
    drv_free(d);
}

static void test_pipelining_all_refused_data_refused(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "PIPELINING");
    reply(d, "250 ok");
    reply(d, "550 5.1.1 no");
    reply(d, "554 5.5.1 no valid recipients");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    drv_free(d);
}

static void test_all_refused_no_data(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "8BITMIME");
    reply(d, "250 ok");
    reply(d, "550 5.1.1 no");
    expect_send(d, "RCPT TO:<r1@y.test>\r\n");
    reply(d, "551 5.1.6 moved");
    expect_quit(d); /* no DATA */
    expect_rcpt(d, 1, DELIVERY_PERM, 551, "5.1.6", "rcpt");
    drv_free(d);
}

static void test_pipelining_mail_refused(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    reply(d, "550 5.7.1 sender refused");
    expect_what(d, SMTPC_READ);
    reply(d, "503 5.5.1 need MAIL");
    reply(d, "503 5.5.1 need MAIL");
    reply(d, "503 5.5.1 need RCPT");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.7.1", "mail");
    expect_rcpt(d, 1, DELIVERY_PERM, 550, "5.7.1", "mail");
    drv_free(d);
}

static void test_mail_temp_failure(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "8BITMIME");
    reply(d, "451 4.3.0 try later");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_TEMP, 451, "4.3.0", "mail");
    expect_rcpt(d, 1, DELIVERY_TEMP, 451, "4.3.0", "mail");
    drv_free(d);
}

static void test_data_final_failure_smtp(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    reply(d, "250 ok");
    reply(d, "550 no"); /* no enhanced code: derived from the class */
    reply(d, "250 ok");
    data_ok(d);
    reply(d, "452 4.3.1 disk full");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.0.0", "rcpt");
    expect_rcpt(d, 1, DELIVERY_TEMP, 452, "4.3.1", "dot");
    drv_free(d);
}

static void test_data_refused(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "");
    reply(d, "250 ok");
    reply(d, "250 ok");
    expect_send(d, "DATA\r\n");
    reply(d, "554 5.7.0 no data for you");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 554, "5.7.0", "data");
    drv_free(d);
}

static void test_enhanced_class_mismatch(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "");
    reply(d, "250 ok");
    reply(d, "550 4.1.1 odd server");
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.0.0", "rcpt");
    drv_free(d);
}

/* ---------------------------------------------------------------- SIZE, BODY, SMTPUTF8 */

static void test_size_param(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "SIZE 1000000");
    expect_send(d, "MAIL FROM:<a@x.test> SIZE=100\r\n");
    drv_free(d);
}

static void test_size_without_limit(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->env.size = 5000000000ULL;
    hello(d, "SIZE");
    expect_send(d, "MAIL FROM:<a@x.test> SIZE=5000000000\r\n");
    drv_free(d);
}

static void test_size_too_big(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "SIZE 50\nPIPELINING");
    expect_quit(d); /* no MAIL at all */
    expect_rcpt(d, 0, DELIVERY_PERM, 0, "5.3.4", "mail");
    expect_rcpt(d, 1, DELIVERY_PERM, 0, "5.3.4", "mail");
    assert_non_null(strstr(d->rr[0].text, "100"));
    assert_non_null(strstr(d->rr[0].text, "50"));
    drv_free(d);
}

static void test_body_8bitmime(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    snprintf(d->env.body, sizeof d->env.body, "8BITMIME");
    hello(d, "8BITMIME");
    expect_send(d, "MAIL FROM:<a@x.test> BODY=8BITMIME\r\n");
    drv_free(d);
}

static void test_body_7bit_no_param(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "8BITMIME");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    drv_free(d);
}

static void test_8bit_not_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    snprintf(d->env.body, sizeof d->env.body, "8BITMIME");
    hello(d, "PIPELINING");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 0, "5.6.3", "mail");
    drv_free(d);
}

static void test_smtputf8_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->env.smtputf8 = true;
    snprintf(d->env.body, sizeof d->env.body, "8BITMIME");
    hello(d, "8BITMIME\nSMTPUTF8");
    expect_send(d, "MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8\r\n");
    drv_free(d);
}

static void test_smtputf8_not_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    d->env.smtputf8 = true;
    hello(d, "8BITMIME\nPIPELINING");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 0, "5.6.7", "mail");
    expect_rcpt(d, 1, DELIVERY_PERM, 0, "5.6.7", "mail");
    drv_free(d);
}

/* ---------------------------------------------------------------- DSN */

static void dsn_env(struct drv *d)
{
    snprintf(d->env.ret, sizeof d->env.ret, "HDRS");
    snprintf(d->env.envid, sizeof d->env.envid, "id+1=x y");
    d->notify[0] = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
    d->notify[1] = DSN_NOTIFY_NEVER;
    d->orcpt[0] = "rfc822;Orig+Box@x.test";
    d->env.notify = d->notify;
    d->env.orcpt = d->orcpt;
}

static void test_dsn_params(void **state)
{
    (void)state;
    struct drv *d = drv_new(3);
    dsn_env(d);
    d->notify[2] = DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE;
    hello(d, "PIPELINING\nDSN");
    expect_send(d, "MAIL FROM:<a@x.test> RET=HDRS ENVID=id+2B1+3Dx+20y\r\n"
                   "RCPT TO:<r0@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+2BBox@x.test\r\n"
                   "RCPT TO:<r1@y.test> NOTIFY=NEVER ORCPT=rfc822;r1@y.test\r\n"
                   "RCPT TO:<r2@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;r2@y.test\r\n"
                   "DATA\r\n");
    reply(d, "250 ok");
    reply(d, "250 ok");
    reply(d, "250 ok");
    reply(d, "250 ok");
    data_ok(d);
    reply(d, "250 ok");
    assert_true(d->rr[0].dsn_passed);
    assert_true(d->rr[2].dsn_passed);
    drv_free(d);
}

static void test_dsn_not_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    dsn_env(d);
    hello(d, "PIPELINING");
    expect_send(d, "MAIL FROM:<a@x.test>\r\nRCPT TO:<r0@y.test>\r\nRCPT TO:<r1@y.test>\r\n"
                   "DATA\r\n");
    reply(d, "250 ok");
    reply(d, "250 ok");
    reply(d, "250 ok");
    data_ok(d);
    reply(d, "250 ok");
    expect_rcpt(d, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    assert_false(d->rr[0].dsn_passed);
    drv_free(d);
}

static void test_dsn_no_params_given(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "DSN"); /* v1 queue file: no notify / orcpt arrays */
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    reply(d, "250 ok");
    expect_send(d, "RCPT TO:<r0@y.test> ORCPT=rfc822;r0@y.test\r\n");
    drv_free(d);
}

static void test_null_sender(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->env.sender[0] = '\0';
    hello(d, "");
    expect_send(d, "MAIL FROM:<>\r\n");
    drv_free(d);
}

/* ---------------------------------------------------------------- TLS */

static void test_starttls_required(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.tls = RELAY_TLS_REQUIRED;
    hello(d, "PIPELINING\nSTARTTLS");
    expect_send(d, "STARTTLS\r\n");
    reply(d, "220 2.0.0 ready");
    expect_what(d, SMTPC_STARTTLS);
    assert_false(smtp_client_tls_active(d->c));
    tls_done(d, true, NULL, NULL);
    assert_true(smtp_client_tls_active(d->c));
    expect_send(d, "EHLO client.test\r\n");
    reply(d, "250-mx.test\n250 SIZE 1000"); /* after TLS: no PIPELINING any more */
    expect_send(d, "MAIL FROM:<a@x.test> SIZE=100\r\n");
    assert_false(smtp_client_pipelining(d->c));
    drv_free(d);
}

static void test_starttls_required_not_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    d->cfg.tls = RELAY_TLS_REQUIRED;
    hello(d, "PIPELINING");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_TEMP, 0, "4.7.4", "starttls");
    expect_rcpt(d, 1, DELIVERY_TEMP, 0, "4.7.4", "starttls");
    assert_non_null(strstr(d->rr[0].text, "STARTTLS not offered"));
    drv_free(d);
}

static void test_starttls_required_refused(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.tls = RELAY_TLS_REQUIRED;
    hello(d, "STARTTLS");
    reply(d, "454 4.7.0 TLS not available");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_TEMP, 454, "4.7.0", "starttls");
    drv_free(d);
}

static void test_starttls_opportunistic_not_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.tls = RELAY_TLS_OPPORTUNISTIC;
    hello(d, "8BITMIME");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    drv_free(d);
}

static void test_starttls_opportunistic_refused(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.tls = RELAY_TLS_OPPORTUNISTIC;
    hello(d, "STARTTLS");
    expect_send(d, "STARTTLS\r\n");
    reply(d, "454 4.7.0 not now");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    drv_free(d);
}

static void test_tls_none_ignores_starttls(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    hello(d, "STARTTLS");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    drv_free(d);
}

static void test_tls_verify_failed(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    d->cfg.tls = RELAY_TLS_REQUIRED;
    hello(d, "STARTTLS");
    reply(d, "220 go");
    tls_done(d, false, "4.7.5", "certificate verification failed: self-signed");
    expect_what(d, SMTPC_CLOSE);
    expect_rcpt(d, 0, DELIVERY_TEMP, 0, "4.7.5", "starttls");
    expect_rcpt(d, 1, DELIVERY_TEMP, 0, "4.7.5", "starttls");
    drv_free(d);
}

static void test_implicit_tls(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.tls = RELAY_TLS_IMPLICIT;
    drv_start(d);
    expect_what(d, SMTPC_STARTTLS);
    tls_done(d, true, NULL, NULL);
    expect_what(d, SMTPC_READ);
    assert_int_equal(d->a.wait, SMTPC_WAIT_GREETING);
    reply(d, "220 mx.test");
    expect_send(d, "EHLO client.test\r\n");
    reply(d, "250-mx.test\n250 STARTTLS");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n"); /* no second TLS */
    drv_free(d);
}

/* ---------------------------------------------------------------- AUTH */

static void assert_no_secret(struct drv *d, const char *secret, const char *b64)
{
    assert_null(strstr(d->shown_all, secret));
    if (b64 != NULL)
        assert_null(strstr(d->shown_all, b64));
    for (size_t i = 0; i < d->env.n_rcpts; i++) {
        assert_null(strstr(d->rr[i].text, secret));
        if (b64 != NULL)
            assert_null(strstr(d->rr[i].text, b64));
    }
}

static void auth_setup(struct drv *d, enum relay_auth a, const char *secret)
{
    d->cfg.auth = a;
    d->cfg.user = "u@x.test";
    d->cfg.secret = secret;
}

static void test_auth_plain_success(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    hello(d, "AUTH LOGIN PLAIN");
    char b64[64];
    b64_encode((const uint8_t *)"\0u@x.test\0s3cret", 16, b64, sizeof b64);
    char line[128];
    snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", b64);
    expect_send(d, line);
    assert_string_equal(d->a.shown, "AUTH PLAIN ****");
    reply(d, "235 2.7.0 ok");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    assert_no_secret(d, "s3cret", b64);
    drv_free(d);
}

static void test_auth_plain_rejected(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    hello(d, "AUTH PLAIN");
    reply(d, "535 5.7.8 Authentication credentials invalid");
    expect_quit(d);
    assert_true(d->res.auth_rejected);
    expect_rcpt(d, 0, DELIVERY_TEMP, 535, "4.7.0", "auth");
    expect_rcpt(d, 1, DELIVERY_TEMP, 535, "4.7.0", "auth");
    assert_non_null(strstr(d->rr[0].text, "credentials invalid"));
    assert_no_secret(d, "s3cret", NULL);
    drv_free(d);
}

static void test_auth_failure_permanent(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    d->cfg.auth_failure_permanent = true;
    hello(d, "AUTH PLAIN");
    reply(d, "535 5.7.8 no");
    expect_rcpt(d, 0, DELIVERY_PERM, 535, "5.7.8", "auth");
    assert_true(d->res.auth_rejected);
    drv_free(d);
}

static void test_auth_temp_failure(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    hello(d, "AUTH PLAIN");
    reply(d, "454 4.7.0 Temporary authentication failure");
    expect_rcpt(d, 0, DELIVERY_TEMP, 454, "4.7.0", "auth");
    assert_false(d->res.auth_rejected); /* not a verdict on the credentials */
    drv_free(d);
}

static void test_auth_login_success(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_LOGIN, "pa55word");
    hello(d, "AUTH=LOGIN\nAUTH LOGIN PLAIN");
    expect_send(d, "AUTH LOGIN\r\n");
    reply(d, "334 VXNlcm5hbWU6");
    expect_send(d, "dUB4LnRlc3Q=\r\n"); /* base64("u@x.test") */
    assert_string_equal(d->a.shown, "****");
    reply(d, "334 UGFzc3dvcmQ6");
    expect_send(d, "cGE1NXdvcmQ=\r\n"); /* base64("pa55word") */
    assert_string_equal(d->a.shown, "****");
    reply(d, "235 2.7.0 ok");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    assert_no_secret(d, "pa55word", "cGE1NXdvcmQ=");
    drv_free(d);
}

static void test_auth_login_rejected(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_LOGIN, "pa55word");
    hello(d, "AUTH LOGIN");
    reply(d, "334 VXNlcm5hbWU6");
    reply(d, "334 UGFzc3dvcmQ6");
    reply(d, "535 5.7.3 Authentication unsuccessful");
    expect_quit(d);
    assert_true(d->res.auth_rejected);
    expect_rcpt(d, 0, DELIVERY_TEMP, 535, "4.7.0", "auth");
    assert_no_secret(d, "pa55word", "cGE1NXdvcmQ=");
    drv_free(d);
}

static void xoauth2_b64(const char *user, const char *token, char *out, size_t cap)
{
    char raw[2048];
    int n = snprintf(raw, sizeof raw, "user=%s\001auth=Bearer %s\001\001", user, token);
    assert_true(b64_encode((const uint8_t *)raw, (size_t)n, out, cap) > 0);
}

static void test_auth_xoauth2_success(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_XOAUTH2, "ya29.token");
    hello(d, "AUTH PLAIN XOAUTH2");
    char b64[256], line[300];
    xoauth2_b64("u@x.test", "ya29.token", b64, sizeof b64);
    snprintf(line, sizeof line, "AUTH XOAUTH2 %s\r\n", b64);
    expect_send(d, line);
    reply(d, "235 2.7.0 Authentication successful");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    assert_no_secret(d, "ya29.token", b64);
    drv_free(d);
}

static void test_auth_xoauth2_long_token(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    char token[601];
    memset(token, 'T', 600);
    token[600] = '\0';
    auth_setup(d, RELAY_AUTH_XOAUTH2, token);
    hello(d, "AUTH XOAUTH2");
    expect_send(d, "AUTH XOAUTH2\r\n"); /* RFC 4954 4: the line would exceed 512 octets */
    reply(d, "334 ");
    char b64[2048], line[2100];
    xoauth2_b64("u@x.test", token, b64, sizeof b64);
    snprintf(line, sizeof line, "%s\r\n", b64);
    expect_send(d, line);
    assert_string_equal(d->a.shown, "****");
    reply(d, "235 2.7.0 ok");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    assert_no_secret(d, token, b64);
    drv_free(d);
}

static void test_auth_xoauth2_json_error(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_XOAUTH2, "expired");
    hello(d, "AUTH XOAUTH2");
    char json[128];
    const char *err = "{\"status\":\"401\",\"schemes\":\"bearer\"}";
    b64_encode((const uint8_t *)err, strlen(err), json, sizeof json);
    char line[200];
    snprintf(line, sizeof line, "334 %s", json);
    reply(d, line);
    expect_send(d, "\r\n"); /* the empty response */
    reply(d, "535 5.7.8 Username and Password not accepted");
    expect_quit(d);
    assert_true(d->res.auth_rejected);
    expect_rcpt(d, 0, DELIVERY_TEMP, 535, "4.7.0", "auth");
    assert_non_null(strstr(d->rr[0].text, "\"status\":\"401\""));
    assert_non_null(strstr(d->rr[0].text, "not accepted"));
    assert_no_secret(d, "expired", NULL);
    drv_free(d);
}

static void test_auth_plain_unexpected_challenge(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    hello(d, "AUTH PLAIN");
    reply(d, "334 ");
    expect_send(d, "*\r\n"); /* cancel */
    reply(d, "501 5.7.0 cancelled");
    expect_rcpt(d, 0, DELIVERY_TEMP, 501, "4.7.0", "auth");
    drv_free(d);
}

static void test_auth_mech_not_offered(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_XOAUTH2, "tok");
    hello(d, "AUTH PLAIN LOGIN");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_TEMP, 0, "4.7.0", "auth");
    assert_false(d->res.auth_rejected);
    assert_non_null(strstr(d->rr[0].text, "XOAUTH2"));
    drv_free(d);
}

static void test_auth_not_in_clear(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    d->cfg.tls = RELAY_TLS_OPPORTUNISTIC;
    hello(d, "AUTH PLAIN");
    expect_quit(d); /* no AUTH line ever sent */
    expect_rcpt(d, 0, DELIVERY_TEMP, 0, "4.7.0", "auth");
    assert_null(strstr(d->shown_all, "AUTH"));
    drv_free(d);
}

static void test_auth_unexpected_250(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    hello(d, "AUTH PLAIN");
    reply(d, "250 2.0.0 Ok"); /* smtp-sink's answer to any AUTH */
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_TEMP, 250, "4.7.0", "auth");
    assert_false(d->res.auth_rejected);
    drv_free(d);
}

static void test_auth_after_starttls(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    auth_setup(d, RELAY_AUTH_PLAIN, "s3cret");
    d->cfg.tls = RELAY_TLS_REQUIRED;
    hello(d, "STARTTLS"); /* AUTH only offered after TLS */
    expect_send(d, "STARTTLS\r\n");
    reply(d, "220 go");
    tls_done(d, true, NULL, NULL);
    reply(d, "250-mx\n250 AUTH PLAIN");
    assert_int_equal(d->a.what, SMTPC_SEND);
    assert_memory_equal(d->a.out, "AUTH PLAIN ", 11);
    reply(d, "235 ok");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n");
    drv_free(d);
}

/* ---------------------------------------------------------------- LMTP, HELO, 421 */

static void test_lmtp_mixed(void **state)
{
    (void)state;
    struct drv *d = drv_new(3);
    d->cfg.lmtp = true;
    hello(d, "8BITMIME\nENHANCEDSTATUSCODES\nPIPELINING");
    expect_send(d, "MAIL FROM:<a@x.test>\r\nRCPT TO:<r0@y.test>\r\nRCPT TO:<r1@y.test>\r\n"
                   "RCPT TO:<r2@y.test>\r\nDATA\r\n");
    reply(d, "250 2.1.0 ok");
    reply(d, "250 2.1.5 ok");
    reply(d, "550 5.1.1 <r1@y.test> User doesn't exist");
    reply(d, "250 2.1.5 ok");
    data_ok(d);
    reply(d, "250 2.0.0 <r0@y.test> Saved");
    expect_what(d, SMTPC_READ); /* one reply per accepted recipient */
    assert_int_equal(d->a.wait, SMTPC_WAIT_DATA_FINAL);
    reply(d, "451 4.2.0 <r2@y.test> Internal error");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    expect_rcpt(d, 1, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    expect_rcpt(d, 2, DELIVERY_TEMP, 451, "4.2.0", "dot");
    drv_free(d);
}

static void test_lmtp_no_helo_fallback(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.lmtp = true;
    drv_start(d);
    reply(d, "220 lmtp");
    expect_send(d, "LHLO client.test\r\n");
    reply(d, "500 5.5.1 unknown command");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 500, "5.5.1", "ehlo");
    drv_free(d);
}

static void test_lmtp_421_after_dot(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    d->cfg.lmtp = true;
    hello(d, "PIPELINING");
    reply(d, "250 ok");
    reply(d, "250 ok");
    reply(d, "250 ok");
    data_ok(d);
    reply(d, "250 2.0.0 saved");
    reply(d, "421 4.3.2 shutting down");
    expect_what(d, SMTPC_CLOSE);
    expect_rcpt(d, 0, DELIVERY_OK, 250, "2.0.0", "dot");
    expect_rcpt(d, 1, DELIVERY_TEMP, 421, "4.3.2", "dot");
    drv_free(d);
}

static void test_helo_fallback(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    drv_start(d);
    reply(d, "220 old.test");
    expect_send(d, "EHLO client.test\r\n");
    reply(d, "502 5.5.2 command not recognized");
    expect_send(d, "HELO client.test\r\n");
    reply(d, "250 old.test");
    expect_send(d, "MAIL FROM:<a@x.test>\r\n"); /* no extensions: no SIZE, no pipelining */
    reply(d, "250 ok");
    expect_send(d, "RCPT TO:<r0@y.test>\r\n");
    drv_free(d);
}

static void test_helo_fallback_tls_required(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    d->cfg.tls = RELAY_TLS_REQUIRED;
    drv_start(d);
    reply(d, "220 old.test");
    reply(d, "500 no");
    expect_send(d, "HELO client.test\r\n");
    reply(d, "250 old.test");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_TEMP, 0, "4.7.4", "starttls");
    drv_free(d);
}

static void test_helo_refused_too(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    drv_start(d);
    reply(d, "220 x");
    reply(d, "500 no");
    reply(d, "550 5.7.1 go away");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.7.1", "ehlo");
    drv_free(d);
}

static void test_greeting_554(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    drv_start(d);
    reply(d, "554 5.7.1 no service for you");
    expect_quit(d);
    expect_rcpt(d, 0, DELIVERY_PERM, 554, "5.7.1", "greeting");
    expect_rcpt(d, 1, DELIVERY_PERM, 554, "5.7.1", "greeting");
    drv_free(d);
}

static void test_greeting_421(void **state)
{
    (void)state;
    struct drv *d = drv_new(1);
    drv_start(d);
    reply(d, "421 4.3.2 busy");
    expect_what(d, SMTPC_CLOSE); /* no QUIT after 421 */
    expect_rcpt(d, 0, DELIVERY_TEMP, 421, "4.3.2", "greeting");
    drv_free(d);
}

static void test_421_mid_transaction(void **state)
{
    (void)state;
    struct drv *d = drv_new(3);
    hello(d, "8BITMIME");
    reply(d, "250 ok");
    reply(d, "550 5.1.1 unknown"); /* r0 refused: stays permanent */
    reply(d, "250 ok");            /* r1 accepted, not yet delivered */
    reply(d, "421 4.4.2 timeout, closing");
    expect_what(d, SMTPC_CLOSE);
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.1.1", "rcpt");
    expect_rcpt(d, 1, DELIVERY_TEMP, 421, "4.4.2", "rcpt");
    expect_rcpt(d, 2, DELIVERY_TEMP, 421, "4.4.2", "rcpt");
    drv_free(d);
}

static void test_421_pipelined_mail(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    reply(d, "421 4.7.0 too many errors");
    expect_what(d, SMTPC_CLOSE);
    expect_rcpt(d, 0, DELIVERY_TEMP, 421, "4.7.0", "mail");
    expect_rcpt(d, 1, DELIVERY_TEMP, 421, "4.7.0", "mail");
    drv_free(d);
}

/* ---------------------------------------------------------------- transport failures */

static void test_abort_connect(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    d->c = smtp_client_new(&d->cfg, &d->env, &d->res);
    expect_rcpt(d, 0, DELIVERY_TEMP, 0, "4.4.1", "connect");
    smtp_client_abort(d->c, "4.4.1", "connect to 127.0.0.1: Connection refused");
    expect_rcpt(d, 1, DELIVERY_TEMP, 0, "4.4.1", "connect");
    assert_string_equal(d->rr[1].text, "connect to 127.0.0.1: Connection refused");
    drv_free(d);
}

static void test_abort_after_dot(void **state)
{
    (void)state;
    struct drv *d = drv_new(2);
    hello(d, "PIPELINING");
    reply(d, "250 ok");
    reply(d, "550 5.1.1 no");
    reply(d, "250 ok");
    data_ok(d);
    smtp_client_abort(d->c, "4.4.2", "no reply within 600 s");
    expect_rcpt(d, 0, DELIVERY_PERM, 550, "5.1.1", "rcpt"); /* decided earlier: kept */
    expect_rcpt(d, 1, DELIVERY_TEMP, 0, "4.4.2", "dot");
    assert_string_equal(smtp_client_stage(d->c), "quit");
    drv_free(d);
}

/* ---------------------------------------------------------------- dot-stuffing */

static void stuff_chunks(const char *const *chunks, size_t n, const char *expect)
{
    struct smtp_stuffer s;
    smtp_stuff_init(&s);
    char out[1024];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(chunks[i]);
        assert_true(o + 2 * len + 2 <= sizeof out);
        o += smtp_client_stuff(&s, chunks[i], len, out + o);
    }
    o += smtp_client_stuff_end(&s, out + o);
    assert_int_equal(o, strlen(expect));
    assert_memory_equal(out, expect, o);
}

static void test_stuff_dots(void **state)
{
    (void)state;
    const char *in[] = {".a\r\n..b\r\nc.\r\n.\r\n"};
    stuff_chunks(in, 1, "..a\r\n...b\r\nc.\r\n..\r\n.\r\n");
}

static void test_stuff_across_chunks(void **state)
{
    (void)state;
    const char *in[] = {"x\r", "\n", ".y\r\n", "", "."};
    stuff_chunks(in, 5, "x\r\n..y\r\n..\r\n.\r\n");
}

static void test_stuff_bare_lf_and_cr(void **state)
{
    (void)state;
    const char *in[] = {"a\nb\rc\r"};
    stuff_chunks(in, 1, "a\r\nb\r\nc\r\n.\r\n");
}

static void test_stuff_empty(void **state)
{
    (void)state;
    stuff_chunks(NULL, 0, ".\r\n");
}

static void test_stuff_no_final_crlf(void **state)
{
    (void)state;
    const char *in[] = {"Subject: t\r\n\r\nbody"};
    stuff_chunks(in, 1, "Subject: t\r\n\r\nbody\r\n.\r\n");
}

static void test_stuff_worst_case(void **state)
{
    (void)state;
    /* every octet doubling: "\n." pairs, and a pending CR from the previous chunk */
    struct smtp_stuffer s;
    smtp_stuff_init(&s);
    char out[64];
    size_t o = smtp_client_stuff(&s, "\r", 1, out);
    assert_int_equal(o, 0);
    o = smtp_client_stuff(&s, ".", 1, out);
    assert_true(o <= 2 * 1 + 2);
    assert_memory_equal(out, "\r\n..", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_no_pipelining),
        cmocka_unit_test(test_pipelining_group),
        cmocka_unit_test(test_pipelining_one_refused),
        cmocka_unit_test(test_pipelining_all_refused_lone_dot),
        cmocka_unit_test(test_pipelining_all_refused_data_refused),
        cmocka_unit_test(test_all_refused_no_data),
        cmocka_unit_test(test_pipelining_mail_refused),
        cmocka_unit_test(test_mail_temp_failure),
        cmocka_unit_test(test_data_final_failure_smtp),
        cmocka_unit_test(test_data_refused),
        cmocka_unit_test(test_enhanced_class_mismatch),
        cmocka_unit_test(test_size_param),
        cmocka_unit_test(test_size_without_limit),
        cmocka_unit_test(test_size_too_big),
        cmocka_unit_test(test_body_8bitmime),
        cmocka_unit_test(test_body_7bit_no_param),
        cmocka_unit_test(test_8bit_not_offered),
        cmocka_unit_test(test_smtputf8_offered),
        cmocka_unit_test(test_smtputf8_not_offered),
        cmocka_unit_test(test_dsn_params),
        cmocka_unit_test(test_dsn_not_offered),
        cmocka_unit_test(test_dsn_no_params_given),
        cmocka_unit_test(test_null_sender),
        cmocka_unit_test(test_starttls_required),
        cmocka_unit_test(test_starttls_required_not_offered),
        cmocka_unit_test(test_starttls_required_refused),
        cmocka_unit_test(test_starttls_opportunistic_not_offered),
        cmocka_unit_test(test_starttls_opportunistic_refused),
        cmocka_unit_test(test_tls_none_ignores_starttls),
        cmocka_unit_test(test_tls_verify_failed),
        cmocka_unit_test(test_implicit_tls),
        cmocka_unit_test(test_auth_plain_success),
        cmocka_unit_test(test_auth_plain_rejected),
        cmocka_unit_test(test_auth_failure_permanent),
        cmocka_unit_test(test_auth_temp_failure),
        cmocka_unit_test(test_auth_login_success),
        cmocka_unit_test(test_auth_login_rejected),
        cmocka_unit_test(test_auth_xoauth2_success),
        cmocka_unit_test(test_auth_xoauth2_long_token),
        cmocka_unit_test(test_auth_xoauth2_json_error),
        cmocka_unit_test(test_auth_plain_unexpected_challenge),
        cmocka_unit_test(test_auth_mech_not_offered),
        cmocka_unit_test(test_auth_not_in_clear),
        cmocka_unit_test(test_auth_unexpected_250),
        cmocka_unit_test(test_auth_after_starttls),
        cmocka_unit_test(test_lmtp_mixed),
        cmocka_unit_test(test_lmtp_no_helo_fallback),
        cmocka_unit_test(test_lmtp_421_after_dot),
        cmocka_unit_test(test_helo_fallback),
        cmocka_unit_test(test_helo_fallback_tls_required),
        cmocka_unit_test(test_helo_refused_too),
        cmocka_unit_test(test_greeting_554),
        cmocka_unit_test(test_greeting_421),
        cmocka_unit_test(test_421_mid_transaction),
        cmocka_unit_test(test_421_pipelined_mail),
        cmocka_unit_test(test_abort_connect),
        cmocka_unit_test(test_abort_after_dot),
        cmocka_unit_test(test_stuff_dots),
        cmocka_unit_test(test_stuff_across_chunks),
        cmocka_unit_test(test_stuff_bare_lf_and_cr),
        cmocka_unit_test(test_stuff_empty),
        cmocka_unit_test(test_stuff_no_final_crlf),
        cmocka_unit_test(test_stuff_worst_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
