"""test_doctor_postfix.py: smtp-doctor against a real, private Postfix (STARTTLS submission and
implicit-TLS submissions listeners on loopback ports) with Dovecot SASL (postfix_instance.py):
recognising Postfix, success, a wrong password (535 5.7.8), a sender the login does not own
(553 5.7.1 at RCPT, reject_sender_login_mismatch), MAIL without AUTH (553 5.7.1 not logged in,
554 5.7.1 relay access denied), AUTH before
TLS refused client-side, the implicit-TLS port. Skipped with the reason when Postfix and Dovecot
cannot be had (see postfix_instance.ensure_installed)."""

import os
import unittest

from .doctor_tools import (SCHEMA_PATH, diagnoses_of, entry_ids, json_text, load_schema,
                           require_doctor, run_doctor, steps_of, validate)
from .postfix_instance import OTHER_USER, PASSWORD, USER, PostfixInstance, ensure_installed

RCPT = "rcpt@example.net"


class DoctorPostfixTest(unittest.TestCase):
    pfx = None

    @classmethod
    def setUpClass(cls):
        require_doctor()
        cls.schema = load_schema()
        ensure_installed()
        cls.pfx = PostfixInstance()
        try:
            cls.pfx.start()
        except BaseException:
            cls.pfx.stop()
            raise
        cls.cafile = os.path.join(cls.pfx.dir, "etc", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        if cls.pfx is not None:
            cls.pfx.stop()
            cls.pfx.cleanup()

    def doctor(self, *args, user=USER, password=PASSWORD, tls=None, port=None, expect=None):
        argv = ["--timeout", "5", "--json", "--to", RCPT]
        if tls != "none":
            argv += ["--cafile", self.cafile]
        if tls:
            argv += ["--tls", tls]
        stdin = None
        if user:
            argv += ["--user", user, "--password-stdin"]
            stdin = password + "\n"
        argv += list(args) + ["127.0.0.1:%d" % (port or self.pfx.port)]
        r = run_doctor(*argv, input=stdin)
        if expect is not None:
            self.assertEqual(r.code, expect, "%r\n%s" % (r, self.pfx.log_tail()))
        self.assertNotIn(PASSWORD, r.text)
        doc = r.json()
        errors = validate(doc, self.schema)
        self.assertEqual(errors, [], "--json does not match %s:\n%s" % (SCHEMA_PATH,
                                                                        "\n".join(errors[:20])))
        return r, doc

    def step(self, doc, name):
        steps, order = steps_of(doc)
        self.assertIn(name, steps, "no step %r in %s" % (name, order))
        return steps[name]

    def test_success(self):
        r, doc = self.doctor(expect=0)
        self.assertEqual(doc.get("provider"), "postfix", r)
        self.assertEqual(self.step(doc, "auth").get("reply"),
                         "235 2.7.0 Authentication successful")
        self.assertEqual(self.step(doc, "rcpt").get("status"), "pass", r)

    def test_send(self):
        r, doc = self.doctor("--send", expect=0)
        data = self.step(doc, "data")
        self.assertEqual(data.get("status"), "pass", r)
        self.assertTrue(data.get("reply", "").startswith("250 2.0.0 Ok: queued as "), data)

    def test_wrong_password(self):
        r, doc = self.doctor(password="not the password", expect=1)
        auth = self.step(doc, "auth")
        self.assertEqual(auth.get("status"), "fail")
        self.assertTrue(auth.get("reply", "").startswith(
            "535 5.7.8 Error: authentication failed:"), auth)
        self.assertEqual(entry_ids(doc)[0], "postfix-535-5.7.8-auth-failed", r)
        self.assertEqual(diagnoses_of(doc)[0].get("provider"), "postfix")

    def test_sender_not_owned_by_the_login(self):
        r, doc = self.doctor("--from", OTHER_USER, expect=1)
        steps, _ = steps_of(doc)
        self.assertTrue([n for n, s in steps.items() if s.get("status") == "warn"
                         and OTHER_USER in json_text(s)], r)
        rcpt = self.step(doc, "rcpt")
        self.assertEqual(rcpt.get("status"), "fail", r)
        self.assertEqual(rcpt.get("reply"), "553 5.7.1 <%s>: Sender address rejected: not owned "
                         "by user %s" % (OTHER_USER, USER))
        self.assertIn("postfix-553-5.7.1-not-owned", entry_ids(doc))

    def test_without_auth(self):
        # A sender that belongs to a login (smtpd_sender_login_maps): "not logged in".
        r, doc = self.doctor("--from", USER, user=None, expect=1)
        rcpt = self.step(doc, "rcpt")
        self.assertEqual(rcpt.get("reply"), "553 5.7.1 <%s>: Sender address rejected: not "
                         "logged in" % USER)
        self.assertIn("postfix-553-5.7.1-not-logged-in", entry_ids(doc))
        # Any other sender: relaying is refused.
        r, doc = self.doctor("--from", "someone@elsewhere.example", user=None, expect=1)
        rcpt = self.step(doc, "rcpt")
        self.assertEqual(rcpt.get("reply"), "554 5.7.1 <%s>: Relay access denied" % RCPT)
        self.assertIn("postfix-554-5.7.1-relay-denied", entry_ids(doc))

    def test_auth_before_tls_is_not_sent(self):
        r, doc = self.doctor(tls="none", expect=1)
        self.assertEqual(self.step(doc, "mechanisms").get("status"), "fail", r)
        self.assertIn("STARTTLS", json_text(doc))
        self.assertNotEqual(self.step(doc, "auth").get("status"), "pass", r)

    def test_implicit_tls_port(self):
        r, doc = self.doctor(tls="implicit", port=self.pfx.port_tls, expect=0)
        self.assertEqual(self.step(doc, "tls").get("status"), "pass")
        r, doc = self.doctor(tls="starttls", port=self.pfx.port_tls, expect=1)
        self.assertIn("implicit", json_text(doc).lower())


if __name__ == "__main__":
    unittest.main()
