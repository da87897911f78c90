"""test_app_passwords.py: the mailbox grants of SPEC section 2 against the real daemon: app
passwords (`submitctl app-password add|list|revoke`) through AUTH PLAIN (RFC 4616) and LOGIN
(RFC 4954) and every gate of SPEC 3 with the tenant's `app-passwords` off and on, and send-as
grants (`submitctl mailbox grant-send-as`) for the envelope sender and the header From."""

import re
import time

from .harness import PASSWORD, DaemonTestCase, dot_stuff, json_strings, message
from .oauth_tools import (ACCESS_RULE, BAD, BASIC_OFF, DISABLED, MAILBOX_OFF, OK,
                          SECURITY_DEFAULTS, SEND_AS, TENANT_OFF)

SECRET_RE = re.compile(r"^secret: ([a-z2-7]{20})$", re.M)
MECHS = ("PLAIN", "LOGIN")


def is_true(v):
    return v is True or v == 1 or (isinstance(v, str) and v.lower() in ("true", "yes", "1"))


class AppPasswordTest(DaemonTestCase):

    secrets = None

    @classmethod
    def provision(cls, d):
        d.provision_example()
        ctl = d.ctl

        def tenant(domain, smtp_auth="on", sd="off", policy="allow-smtp", app="off"):
            ctl("tenant", "add", domain)
            ctl("tenant", "set", domain, "smtp-auth", smtp_auth)
            ctl("tenant", "set", domain, "security-defaults", sd)
            ctl("tenant", "set", domain, "default-policy", policy)
            ctl("tenant", "set", domain, "app-passwords", app)

        # app-passwords off: an app password is basic authentication like any other.
        tenant("pol-off.example", policy="block-basic")
        tenant("sd-off.example", sd="on")
        # app-passwords on: app passwords pass the policy and security defaults...
        tenant("on.example", sd="on", policy="block-basic", app="on")
        # ...but never the SMTP AUTH switch or an access rule.
        tenant("toff-on.example", smtp_auth="off", app="on")
        tenant("rule-on.example", sd="on", policy="block-basic", app="on")
        ctl("rule", "add", "rule-on.example", "block", "from", "127.0.0.0/8")
        users = ("user@pol-off.example", "user@sd-off.example", "user@on.example",
                 "sdonly@on.example", "mboff@on.example", "disabled@on.example",
                 "user@toff-on.example", "user@rule-on.example")
        for u in users:
            d.add_mailbox(u)
        ctl("mailbox", "set", "sdonly@on.example", "policy", "allow-smtp")
        ctl("mailbox", "set", "mboff@on.example", "smtp-auth", "off")
        ctl("mailbox", "set", "disabled@on.example", "enabled", "no")
        for m in ("listme", "revokeme", "carol"):
            d.add_mailbox(m + "@example.com")
        cls.secrets = {}
        for u in users + ("alice@example.com", "bob@example.com"):
            cls.secrets[u] = cls.add(d, u, "phone")

    @staticmethod
    def add(d, address, label):
        out = d.ctl("app-password", "add", address, label).stdout.decode()
        m = SECRET_RE.search(out)
        if not m:
            raise AssertionError("app-password add printed no 'secret: ...' line: %r" % out)
        return m.group(1)

    @classmethod
    def tearDownClass(cls):
        d = cls.daemon
        leaks = []
        if d is not None and cls.secrets:
            for name in ("submitd.stderr", "log.db", "log.db-wal", "directory.db",
                         "directory.db-wal"):
                try:
                    with open("%s/%s" % (d.dir, name), "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    continue
                if any(s.encode() in data for s in cls.secrets.values()):
                    leaks.append(name)
        super().tearDownClass()
        if leaks:
            raise AssertionError("an app password secret was written to %s" % leaks)

    def assertAuth(self, mech, user, secret, expected, gate=None, credential=None):
        c = self.connect_tls()
        r = c.auth(mech, user, secret)
        if expected == OK:
            self.assertEqual(r.line, OK, (user, mech))
            c.quit()
            return None
        _, event = self.assertRefReply(r, expected, log="signins")
        self.assertEqual(event.get("mech"), mech, event)
        self.assertFalse(is_true(event.get("success")), event)
        if gate:
            self.assertEqual(event.get("gate"), gate, event)
        if credential:
            self.assertIn("credential=" + credential, str(event.get("detail")), event)
        c.quit()
        return event

    # --- gates ---
    def test_tenant_app_passwords_off_blocks_them_where_passwords_are_blocked(self):
        for user, expected, gate in (("user@pol-off.example", BASIC_OFF, "basic-auth-policy"),
                                     ("user@sd-off.example", SECURITY_DEFAULTS,
                                      "security-defaults")):
            for mech in MECHS:
                with self.subTest(user=user, mech=mech):
                    self.assertAuth(mech, user, self.secrets[user], expected, gate,
                                    credential="app-password")
                    self.assertAuth(mech, user, PASSWORD, expected, gate, credential="password")

    def test_everything_allowing_tenant_accepts_app_passwords_even_when_off(self):
        for mech in MECHS:
            with self.subTest(mech=mech):
                self.assertAuth(mech, "alice@example.com", self.secrets["alice@example.com"], OK)

    def test_tenant_app_passwords_on_passes_policy_and_security_defaults(self):
        for user, main_reply, gate in (("user@on.example", BASIC_OFF, "basic-auth-policy"),
                                       ("sdonly@on.example", SECURITY_DEFAULTS,
                                        "security-defaults")):
            for mech in MECHS:
                with self.subTest(user=user, mech=mech):
                    self.assertAuth(mech, user, self.secrets[user], OK)
                    # The main password is still basic authentication, and still blocked.
                    self.assertAuth(mech, user, PASSWORD, main_reply, gate, credential="password")
        # And the session can submit.
        c = self.connect_tls()
        self.assertEqual(c.auth_plain("user@on.example", self.secrets["user@on.example"]).line, OK)
        msg = message(sender="user@on.example")
        qid = self.assertQueued(self.send_message(c, msg, sender="user@on.example"))
        self.assertStoredExactly(qid, msg, auth_user="user@on.example")

    def test_app_passwords_never_bypass_the_switch_access_rules_or_a_disabled_account(self):
        for user, expected, gate in (("user@toff-on.example", TENANT_OFF, "smtp-auth"),
                                     ("mboff@on.example", MAILBOX_OFF, "smtp-auth"),
                                     ("disabled@on.example", DISABLED, "account-enabled"),
                                     ("user@rule-on.example", ACCESS_RULE, "access-rule")):
            for mech in MECHS:
                with self.subTest(user=user, mech=mech):
                    self.assertAuth(mech, user, self.secrets[user], expected, gate,
                                    credential="app-password")

    def test_wrong_or_foreign_app_password(self):
        for mech in MECHS:
            with self.subTest(mech=mech):
                self.assertAuth(mech, "alice@example.com", "abcdefghijklmnopqrst", BAD,
                                "credentials")
                # bob's app password is not alice's.
                self.assertAuth(mech, "alice@example.com", self.secrets["bob@example.com"], BAD,
                                "credentials")

    def test_secret_is_accepted_as_users_paste_it(self):
        secret = self.secrets["bob@example.com"]
        pasted = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)).upper()
        self.assertAuth("PLAIN", "bob@example.com", pasted, OK)

    # --- the commands ---
    def test_add_list_and_last_used(self):
        user = "listme@example.com"
        before = time.time()
        r = self.daemon.ctl("app-password", "add", user, "laptop")
        out = r.stdout.decode()
        secret = SECRET_RE.search(out).group(1)
        type(self).secrets[user] = secret
        second = self.add(self.daemon, user, "printer")
        type(self).secrets[user + " printer"] = second
        self.assertNotEqual(secret, second)
        # The same label twice is refused.
        r = self.daemon.ctl("app-password", "add", user, "laptop", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIsNone(SECRET_RE.search(r.stdout.decode()))
        rows = {r["label"]: r for r in self.daemon.ctl_json("app-password", "list", user)}
        self.assertEqual(set(rows), {"laptop", "printer"})
        self.assertIsNone(rows["laptop"].get("last_used"))
        text = self.daemon.ctl("app-password", "list", user).stdout.decode()
        self.assertIn("laptop", text)
        self.assertIn("never", text)
        self.assertNotIn(secret, text)
        self.assertNotIn(secret, str(rows))
        self.assertAuth("LOGIN", user, secret, OK)
        rows = {}
        for _ in range(50):
            rows = {r["label"]: r for r in self.daemon.ctl_json("app-password", "list", user)}
            if rows["laptop"].get("last_used"):
                break
            time.sleep(0.1)
        self.assertTrue(rows["laptop"].get("last_used"), rows)
        self.assertIsNone(rows["printer"].get("last_used"), rows)
        self.assertNotEqual(rows["laptop"]["created"], "")
        self.assertGreater(time.time(), before)

    def test_revoked_app_password_fails_at_the_next_attempt(self):
        user = "revokeme@example.com"
        keep = self.add(self.daemon, user, "tablet")
        gone = self.add(self.daemon, user, "old phone")
        type(self).secrets[user] = keep
        type(self).secrets[user + " old"] = gone
        session = self.connect_tls()  # open before the revocation
        self.assertAuth("PLAIN", user, gone, OK)
        self.daemon.ctl("app-password", "revoke", user, "old phone")
        for mech in MECHS:
            with self.subTest(mech=mech):
                self.assertAuth(mech, user, gone, BAD, "credentials")
        self.assertRefReply(session.auth_plain(user, gone), BAD)
        self.assertAuth("PLAIN", user, keep, OK)
        self.assertAuth("PLAIN", user, PASSWORD, OK)
        labels = [r["label"] for r in self.daemon.ctl_json("app-password", "list", user)]
        self.assertEqual(labels, ["tablet"])
        r = self.daemon.ctl("app-password", "revoke", user, "old phone", check=False)
        self.assertEqual(r.returncode, 1, r)


class SendAsGrantTest(DaemonTestCase):
    """`submitctl mailbox grant-send-as ADDRESS OTHER` for the envelope sender (MAIL) and the
    header From (end of DATA); without it 550 5.7.60."""

    @classmethod
    def provision(cls, d):
        d.provision_example()
        d.add_mailbox("shared@example.com")

    def refused_at_mail(self, sender):
        c = self.login()
        _, event = self.assertRefReply(c.cmd("MAIL FROM:<%s>" % sender), SEND_AS,
                                       log="submissions")
        self.assertIn(sender, list(json_strings(event)))
        c.quit()

    def refused_header_from(self, sender):
        before = self.daemon.queue_ids()
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message(sender=sender)))
        self.assertRefReply(c.reply(), SEND_AS, log="submissions")
        c.quit()
        self.assertEqual(self.daemon.queue_ids(), before)

    def test_grant_send_as(self):
        self.refused_at_mail("shared@example.com")
        self.refused_header_from("shared@example.com")
        self.daemon.ctl("mailbox", "grant-send-as", "alice@example.com", "shared@example.com")
        c = self.login()
        msg = message(sender="shared@example.com", subject="as shared")
        qid = self.assertQueued(self.send_message(c, msg, sender="shared@example.com"))
        env = self.assertStoredExactly(qid, msg)
        self.assertIn("shared@example.com", list(json_strings(env)))
        # Envelope alice, header From shared: allowed too.
        msg = message(sender="shared@example.com", subject="header only")
        self.assertQueued(self.send_message(c, msg, sender="alice@example.com"))
        c.quit()
        # The grant is alice's only.
        c = self.login("bob@example.com")
        self.assertRefReply(c.cmd("MAIL FROM:<shared@example.com>"), SEND_AS)
        c.quit()
        self.daemon.ctl("mailbox", "revoke-send-as", "alice@example.com", "shared@example.com")
        self.refused_at_mail("shared@example.com")
        self.refused_header_from("shared@example.com")

    def test_grant_outside_the_tenant_is_refused(self):
        self.daemon.ctl("tenant", "add", "other.example")
        r = self.daemon.ctl("mailbox", "grant-send-as", "alice@example.com",
                            "someone@other.example", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.refused_at_mail("someone@other.example")
