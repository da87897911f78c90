"""test_smtp_auth.py: the SMTP AUTH gates of SPEC sections 2-4 through real AUTH PLAIN (RFC 4616)
and AUTH LOGIN exchanges (RFC 4954), their replies and references, the sign-in log, changes with
submitctl taking effect on the very next AUTH, 530 5.7.57, and send-as (550 5.7.60)."""

import time

from .harness import (ACCESS_RULE, BAD_CREDENTIALS, BASIC_OFF, DENIED, DISABLED,
                      MAILBOX_OFF, NOT_AUTHENTICATED, OK, PASSWORD, SECURITY_DEFAULTS, SEND_AS,
                      TENANT_OFF, DaemonTestCase, b64, dot_stuff, json_strings, message,
                      split_reference)

MECHS = ("PLAIN", "LOGIN")

# (what is tested, user, expected reply without reference, gate named in the sign-in log)
GATE_CASES = (
    ("a new tenant has SMTP AUTH off", "carol@fresh.example", TENANT_OFF, "smtp-auth"),
    ("tenant off, mailbox inherits", "inherit@toff.example", TENANT_OFF, "smtp-auth"),
    ("mailbox on beats tenant off", "mbon@toff.example", OK, None),
    ("mailbox off beats tenant on", "mboff@example.com", MAILBOX_OFF, "smtp-auth"),
    ("disabled account", "disabled@example.com", DISABLED, "account-enabled"),
    ("disabled account is checked before the SMTP AUTH switch", "disabled@toff.example",
     DISABLED, "account-enabled"),
    ("policy blocks basic auth", "blockpol@example.com", BASIC_OFF, "basic-auth-policy"),
    ("security defaults", "user@sd.example", SECURITY_DEFAULTS, "security-defaults"),
    ("access rule", "user@rule.example", ACCESS_RULE, "access-rule"),
    ("reply-detail generic hides the tenant switch", "user@generic.example", BAD_CREDENTIALS,
     "smtp-auth"),
    ("reply-detail generic hides a disabled account", "disabled@generic.example",
     BAD_CREDENTIALS, "account-enabled"),
    ("everything allows", "alice@example.com", OK, None),
)


def is_true(v):
    return v is True or v == 1 or (isinstance(v, str) and v.lower() in ("true", "yes", "1"))


class AuthTest(DaemonTestCase):

    @classmethod
    def provision(cls, d):
        d.provision_example()
        ctl = d.ctl
        for m in ("mboff", "disabled", "blockpol", "wrongpw", "dyn", "logme", "timing"):
            d.add_mailbox(m + "@example.com")
        ctl("mailbox", "set", "mboff@example.com", "smtp-auth", "off")
        ctl("mailbox", "set", "disabled@example.com", "enabled", "no")
        ctl("mailbox", "set", "blockpol@example.com", "policy", "block-basic")
        # A tenant as created: SMTP AUTH off, security defaults on, block-basic.
        ctl("tenant", "add", "fresh.example")
        d.add_mailbox("carol@fresh.example")
        # Tenants that each fail exactly one gate (everything else allows).
        for t in ("toff.example", "sd.example", "rule.example", "generic.example", "dyn.example"):
            ctl("tenant", "add", t)
            ctl("tenant", "set", t, "default-policy", "allow-smtp")
            if t != "toff.example" and t != "generic.example":
                ctl("tenant", "set", t, "smtp-auth", "on")
            if t != "sd.example":
                ctl("tenant", "set", t, "security-defaults", "off")
        for m in ("inherit", "mbon", "disabled"):
            d.add_mailbox(m + "@toff.example")
        ctl("mailbox", "set", "mbon@toff.example", "smtp-auth", "on")
        ctl("mailbox", "set", "disabled@toff.example", "enabled", "no")
        d.add_mailbox("user@sd.example")
        d.add_mailbox("user@rule.example")
        ctl("rule", "add", "rule.example", "block", "from", "127.0.0.0/8")
        ctl("tenant", "set", "generic.example", "reply-detail", "generic")
        d.add_mailbox("user@generic.example")
        d.add_mailbox("disabled@generic.example")
        ctl("mailbox", "set", "disabled@generic.example", "enabled", "no")
        d.add_mailbox("user@dyn.example")

    def assertAuth(self, c, mech, user, expected, gate, password=PASSWORD):
        """One AUTH exchange; a failure must carry a reference that finds the sign-in event with
        the expected gate. Returns the reference (None on success)."""
        r = c.auth(mech, user, password)
        if expected == OK:
            self.assertEqual(r.line, OK)
            return None
        ref, event = self.assertRefReply(r, expected, log="signins")
        self.assertEqual(event.get("gate"), gate, event)
        self.assertFalse(is_true(event.get("success")), event)
        self.assertEqual(event.get("mech"), mech, event)
        self.assertEqual(event.get("user"), user, event)
        self.assertEqual(event.get("reply_code"), int(expected[:3]), event)
        if expected == BAD_CREDENTIALS and gate != "credentials":
            # reply-detail generic: the log keeps the real reason.
            self.assertIn("5.7.139", str(event.get("reason")) + str(event.get("detail")), event)
        return ref

    # --- the gates ---
    def test_every_gate_through_plain_and_login(self):
        for what, user, expected, gate in GATE_CASES:
            for mech in MECHS:
                with self.subTest(what, mech=mech, user=user):
                    c = self.connect_tls()
                    self.assertAuth(c, mech, user, expected, gate)
                    c.quit()

    def test_wrong_password_and_unknown_users_get_the_same_reply(self):
        for mech in MECHS:
            for user, password in (("wrongpw@example.com", "not the password"),
                                   ("nobody@example.com", PASSWORD),
                                   ("someone@no-such-tenant.test", PASSWORD),
                                   ("carol@fresh.example", "wrong too")):
                with self.subTest(mech=mech, user=user):
                    c = self.connect_tls()
                    self.assertAuth(c, mech, user, BAD_CREDENTIALS, "credentials", password)
                    c.quit()

    def test_unknown_user_costs_the_same_work_as_a_wrong_password(self):
        """SPEC 3: an unknown user is verified against a dummy hash, so the reply time does not
        tell which addresses exist. Medians of 3, a factor of 3 allowed."""
        c = self.connect_tls()
        times = {"wrong password": [], "unknown user": []}
        for _ in range(3):
            for what, user in (("wrong password", "timing@example.com"),
                               ("unknown user", "nobody-timing@example.com")):
                start = time.monotonic()
                r = c.auth_plain(user, "not the password")
                times[what].append(time.monotonic() - start)
                self.assertEqual(split_reference(r.line)[0], BAD_CREDENTIALS)
        wrong = sorted(times["wrong password"])[1]
        unknown = sorted(times["unknown user"])[1]
        self.assertLess(max(wrong, unknown) / max(min(wrong, unknown), 0.001), 3.0,
                        "AUTH takes %.0f ms for a wrong password but %.0f ms for an unknown user"
                        % (wrong * 1000, unknown * 1000))

    def test_plain_and_login_variants_of_the_exchange(self):
        c = self.connect_tls()
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD, initial=False).line, OK)
        c = self.connect_tls()
        self.assertEqual(c.auth_login("alice@example.com", PASSWORD, initial=True).line, OK)
        c = self.connect_tls()
        r = c.cmd("AUTH LOGIN")
        self.assertEqual(r.code, 334)
        self.assertEqual(r.line, "334 VXNlcm5hbWU6")  # "Username:"
        r = c.cmd(b64("alice@example.com"))
        self.assertEqual(r.line, "334 UGFzc3dvcmQ6")  # "Password:"
        self.assertEqual(c.cmd(b64(PASSWORD)).line, OK)

    def test_failed_auth_can_be_retried_in_the_same_session(self):
        c = self.connect_tls()
        self.assertAuth(c, "PLAIN", "alice@example.com", BAD_CREDENTIALS, "credentials",
                        "nope")
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)

    # --- settings apply to the very next AUTH ---
    def test_mailbox_settings_apply_to_the_next_auth(self):
        user = "dyn@example.com"
        ctl = self.daemon.ctl
        steps = (
            (("smtp-auth", "off"), MAILBOX_OFF, "smtp-auth"),
            (("smtp-auth", "inherit"), OK, None),
            (("enabled", "no"), DISABLED, "account-enabled"),
            (("enabled", "yes"), OK, None),
            (("policy", "block-basic"), BASIC_OFF, "basic-auth-policy"),
            (("policy", "inherit"), OK, None),
        )
        for setting, expected, gate in steps:
            with self.subTest(setting=setting):
                ctl("mailbox", "set", user, *setting)
                c = self.connect_tls()
                self.assertAuth(c, "PLAIN", user, expected, gate)
                c.quit()

    def test_tenant_settings_apply_to_the_next_auth_in_the_same_session(self):
        user = "user@dyn.example"
        ctl = self.daemon.ctl
        c = self.connect_tls()
        self.addCleanup(ctl, "tenant", "set", "dyn.example", "smtp-auth", "on")
        ctl("tenant", "set", "dyn.example", "smtp-auth", "off")
        self.assertAuth(c, "LOGIN", user, TENANT_OFF, "smtp-auth")
        ctl("tenant", "set", "dyn.example", "security-defaults", "on")
        ctl("tenant", "set", "dyn.example", "smtp-auth", "on")
        self.assertAuth(c, "LOGIN", user, SECURITY_DEFAULTS, "security-defaults")
        ctl("tenant", "set", "dyn.example", "security-defaults", "off")
        ctl("tenant", "set", "dyn.example", "reply-detail", "generic")
        ctl("mailbox", "set", user, "smtp-auth", "off")
        self.assertAuth(c, "PLAIN", user, BAD_CREDENTIALS, "smtp-auth")
        ctl("mailbox", "set", user, "smtp-auth", "inherit")
        ctl("tenant", "set", "dyn.example", "reply-detail", "full")
        self.assertAuth(c, "PLAIN", user, OK, None)

    # --- the sign-in log ---
    def test_signin_log_records_each_attempt(self):
        user = "logme@example.com"
        c = self.connect_tls()
        ref = self.assertAuth(c, "LOGIN", user, BAD_CREDENTIALS, "credentials", "bad")
        self.assertEqual(c.auth_login(user, PASSWORD).line, OK)
        records = []
        for _ in range(50):
            records = self.daemon.ctl_json("signins", "--mailbox", user)
            if len(records) >= 2:
                break
            time.sleep(0.1)
        self.assertEqual(len(records), 2, records)
        failed = [r for r in records if not is_true(r.get("success"))]
        ok = [r for r in records if is_true(r.get("success"))]
        self.assertEqual(len(failed), 1, records)
        self.assertEqual(len(ok), 1, records)
        self.assertIn(ref, list(json_strings(failed[0])))
        self.assertEqual(failed[0].get("gate"), "credentials")
        self.assertEqual(ok[0].get("gate"), "none")
        for r in records:
            self.assertEqual(r.get("mech"), "LOGIN", r)
            text = str(r)
            self.assertNotIn(PASSWORD, text)
            self.assertNotIn(b64(PASSWORD), text)
            self.assertNotIn("bad", [v for v in json_strings(r)])

    # --- protocol errors around AUTH ---
    def test_auth_before_tls_is_refused(self):
        c = self.connect()
        c.ehlo()
        self.assertNotIn("AUTH", c.caps)
        r = c.auth_plain("alice@example.com", PASSWORD)
        self.assertRefReply(r, "538 5.7.11 Encryption required for requested authentication "
                               "mechanism", log="signins")

    def test_cleartext_auth_listener_allows_auth_and_mail_without_tls(self):
        c = self.connect(self.daemon.cleartext_port)
        c.ehlo()
        self.assertEqual(c.auth_login("alice@example.com", PASSWORD).line, OK)
        msg = message(subject="cleartext")
        qid = self.assertQueued(self.send_message(c, msg))
        env, stored = self.daemon.read_queue_file(qid)
        self.assertTrue(stored.endswith(msg))
        received = stored[: len(stored) - len(msg)]
        self.assertIn(b"ESMTPA", received, "RFC 3848: AUTH without TLS is ESMTPA")
        self.assertNotIn(b"ESMTPSA", received)

    def test_mail_before_starttls_on_require_tls_listener(self):
        c = self.connect()
        c.ehlo()
        r = c.cmd("MAIL FROM:<alice@example.com>")
        self.assertRefReply(r, "530 5.7.0 Must issue a STARTTLS command first", log="submissions")

    def test_unknown_mechanism(self):
        c = self.connect_tls()
        self.assertRefReply(c.cmd("AUTH CRAM-MD5"), "504 5.5.4 Unrecognized authentication type")
        self.assertRefReply(c.cmd("AUTH NOSUCHMECH " + b64("x")),
                            "504 5.5.4 Unrecognized authentication type")
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)

    def test_auth_twice(self):
        c = self.connect_tls()
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)
        self.assertRefReply(c.auth_plain("alice@example.com", PASSWORD),
                            "503 5.5.1 Already authenticated")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        r = c.auth_login("alice@example.com", PASSWORD)
        self.assertEqual(split_reference(r.line)[0][:9], "503 5.5.1")
        self.assertInSync(c)

    def test_cancelled_with_star(self):
        c = self.connect_tls()
        self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
        self.assertRefReply(c.cmd("*"), "501 5.7.0 Authentication cancelled")
        self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
        self.assertEqual(c.cmd(b64("alice@example.com")).code, 334)
        self.assertRefReply(c.cmd("*"), "501 5.7.0 Authentication cancelled")
        self.assertEqual(c.cmd("AUTH PLAIN").code, 334)
        self.assertRefReply(c.cmd("*"), "501 5.7.0 Authentication cancelled")
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)

    def test_malformed_responses(self):
        malformed = "501 5.5.2 Cannot decode the authentication response"
        c = self.connect_tls()
        self.assertRefReply(c.cmd("AUTH PLAIN !!!not-base64!!!"), malformed)
        self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
        self.assertRefReply(c.cmd("%%%%"), malformed)
        # Valid base64, but not an RFC 4616 message (no NUL separators).
        self.assertRefReply(c.cmd("AUTH PLAIN " + b64("alice@example.com")), malformed)
        self.assertInSync(c)
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)

    def test_sasl_response_too_long(self):
        c = self.connect_tls()
        self.assertEqual(c.cmd("AUTH PLAIN").code, 334)
        r = c.cmd("A" * 13000)
        self.assertEqual(split_reference(r.line)[0][:9], "500 5.5.6", r)
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)

    # --- 530 5.7.57 ---
    def test_mail_without_auth(self):
        c = self.connect_tls()
        r = c.cmd("MAIL FROM:<alice@example.com>")
        self.assertRefReply(r, NOT_AUTHENTICATED, log="submissions")

    def test_mail_after_failed_auth_appends_the_error(self):
        for user, password, failed in (("carol@fresh.example", PASSWORD, TENANT_OFF),
                                       ("wrongpw@example.com", "wrong", BAD_CREDENTIALS),
                                       ("user@generic.example", PASSWORD, BAD_CREDENTIALS)):
            with self.subTest(user=user):
                c = self.connect_tls()
                auth_ref, _ = self.assertRefReply(c.auth_plain(user, password), failed)
                r = c.cmd("MAIL FROM:<%s>" % user)
                _, event = self.assertRefReply(r, NOT_AUTHENTICATED + " Error: " + failed,
                                               log="submissions")
                self.assertIn(auth_ref, list(json_strings(event)),
                              "submission event does not name the failed AUTH")

    def test_mail_after_failed_then_successful_auth(self):
        c = self.connect_tls()
        self.assertRefReply(c.auth_plain("alice@example.com", "wrong"), BAD_CREDENTIALS)
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).line, OK)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").line, "250 2.1.0 Sender OK")

    # --- send-as ---
    def test_send_as_another_mailbox_is_refused(self):
        c = self.login()
        r = c.cmd("MAIL FROM:<bob@example.com>")
        _, event = self.assertRefReply(r, SEND_AS, log="submissions")
        self.assertIn("bob@example.com", list(json_strings(event)))
        r = c.cmd("MAIL FROM:<someone@elsewhere.test>")
        self.assertRefReply(r, SEND_AS)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)

    def test_send_as_alias_is_allowed(self):
        c = self.login()
        msg = message(sender="sales@example.com", subject="from the alias")
        qid = self.assertQueued(self.send_message(c, msg, sender="sales@example.com"))
        env = self.assertStoredExactly(qid, msg)
        strings = list(json_strings(env))
        self.assertIn("sales@example.com", strings)
        self.assertIn("alice@example.com", strings)

    def test_header_from_not_allowed_is_refused_at_end_of_data(self):
        before = self.daemon.queue_ids()
        c = self.login()
        msg = message(sender="bob@example.com", subject="forged From")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(msg))
        self.assertRefReply(c.reply(), SEND_AS, log="submissions")
        self.assertInSync(c)
        self.assertEqual(self.daemon.queue_ids(), before)
        # The session goes on: the same message with an allowed From is accepted.
        good = message(sender="alice@example.com", subject="proper From")
        self.assertQueued(self.send_message(c, good))
