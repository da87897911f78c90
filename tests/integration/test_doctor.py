"""test_doctor.py: smtp-doctor against the real submitd in every state of SPEC section 3. For each
denial the doctor must name the gate that really decided (the one the server's sign-in log
records for the reference id in the reply), the submitctl command that fixes it, and that
reference id with `submitctl signins --ref ID`. Also: success (exit 0), OAuth through
--token-stdin (which security defaults, policies and rules never block, SPEC 2), 530 5.7.57
without AUTH, 550 5.7.60 for a From the login may not use, --send storing exactly one message,
client-side mistakes (AUTH before TLS, implicit TLS on the STARTTLS listener and the reverse, a
mechanism not offered), recognising submitd, and every --json document against the schema."""

import os
import time

from .doctor_tools import (SCHEMA_PATH, check_schema_keywords, diagnoses_of, entry_ids,
                           fix_commands, json_text, load_schema, require_doctor, run_doctor,
                           steps_of, validate)
from .harness import PASSWORD, DaemonTestCase, split_reference

FAST = ("--timeout", "5")

# (what, user, password, gate in the sign-in log, knowledge-base entry, fix command that must
#  be named (rendered), reply prefix)
DENIALS = (
    ("a new tenant: SMTP AUTH off (security defaults and block-basic too, but gate 4 decides)",
     "carol@fresh.example", PASSWORD, "smtp-auth", "submitd-535-5.7.139-tenant",
     "submitctl tenant set fresh.example smtp-auth on",
     "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant."),
    ("mailbox smtp-auth off beats tenant on", "mboff@example.com", PASSWORD, "smtp-auth",
     "submitd-535-5.7.139-mailbox", "submitctl mailbox set mboff@example.com smtp-auth on",
     "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Mailbox."),
    ("disabled account (checked before the tenant switch)", "disabled@toff.example", PASSWORD,
     "account-enabled", "submitd-535-5.7.139-account-disabled",
     "submitctl mailbox set disabled@toff.example enabled yes",
     "535 5.7.139 Authentication unsuccessful, account is disabled."),
    ("policy blocks basic auth", "blockpol@example.com", PASSWORD, "basic-auth-policy",
     "submitd-535-5.7.139-basic-disabled",
     "submitctl mailbox set blockpol@example.com policy allow-basic",
     "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."),
    ("security defaults", "user@sd.example", PASSWORD, "security-defaults",
     "submitd-535-5.7.139-security-defaults",
     "submitctl tenant set sd.example security-defaults off",
     "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security "
     "defaults policy."),
    ("access rule", "user@rule.example", PASSWORD, "access-rule",
     "submitd-535-5.7.139-access-rule", "submitctl rule ",
     "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria"),
    ("wrong password", "alice@example.com", "not the password", "credentials",
     "submitd-535-5.7.3", "submitctl mailbox passwd alice@example.com",
     "535 5.7.3 Authentication unsuccessful"),
    ("unknown mailbox: same reply as a wrong password", "nobody@example.com", PASSWORD,
     "credentials", "submitd-535-5.7.3", "submitctl signins --ref",
     "535 5.7.3 Authentication unsuccessful"),
    ("reply-detail generic: the client sees 5.7.3, the log has the real gate",
     "user@generic.example", PASSWORD, "smtp-auth", "submitd-535-5.7.3",
     "submitctl tenant show generic.example", "535 5.7.3 Authentication unsuccessful"),
)


class DoctorSubmitdTest(DaemonTestCase):

    @classmethod
    def provision(cls, d):
        d.provision_example()
        ctl = d.ctl
        for m in ("mboff", "blockpol"):
            d.add_mailbox(m + "@example.com")
        ctl("mailbox", "set", "mboff@example.com", "smtp-auth", "off")
        ctl("mailbox", "set", "blockpol@example.com", "policy", "block-basic")
        # As created: SMTP AUTH off, security defaults on, block-basic.
        ctl("tenant", "add", "fresh.example")
        d.add_mailbox("carol@fresh.example")
        # Tenants that each fail exactly one gate.
        for t in ("toff.example", "sd.example", "rule.example", "generic.example"):
            ctl("tenant", "add", t)
            ctl("tenant", "set", t, "default-policy", "allow-smtp")
            if t not in ("toff.example", "generic.example"):
                ctl("tenant", "set", t, "smtp-auth", "on")
            if t != "sd.example":
                ctl("tenant", "set", t, "security-defaults", "off")
        d.add_mailbox("disabled@toff.example")
        ctl("mailbox", "set", "disabled@toff.example", "enabled", "no")
        d.add_mailbox("user@sd.example")
        d.add_mailbox("user@rule.example")
        ctl("rule", "add", "rule.example", "block", "from", "127.0.0.0/8")
        ctl("tenant", "set", "generic.example", "reply-detail", "generic")
        d.add_mailbox("user@generic.example")

    @classmethod
    def setUpClass(cls):
        require_doctor()
        cls.schema = load_schema()
        check_schema_keywords(cls.schema)
        super().setUpClass()
        cls.cafile = os.path.join(cls.daemon.dir, "tls", "cert.pem")

    # --- running the doctor ---
    def doctor(self, *args, port=None, user="alice@example.com", password=PASSWORD, token=None,
               to="rcpt@example.net", json=True, tls=None, expect=None):
        argv = list(FAST) + (["--cafile", self.cafile] if tls != "none" else [])
        if tls:
            argv += ["--tls", tls]
        stdin = None
        if user:
            argv += ["--user", user]
        if token is not None:
            argv += ["--token-stdin"]
            stdin = token + "\n"
        elif password is not None and user:
            argv += ["--password-stdin"]
            stdin = password + "\n"
        if to:
            argv += ["--to", to]
        if json:
            argv.append("--json")
        argv += list(args) + ["127.0.0.1:%d" % (port or self.daemon.starttls_port)]
        r = run_doctor(*argv, input=stdin)
        if expect is not None:
            self.assertEqual(r.code, expect, r)
        for secret in (PASSWORD, token):
            if secret:
                self.assertNotIn(secret, r.text, "a secret appears in the doctor's output")
        doc = None
        if json:
            doc = r.json()
            errors = validate(doc, self.schema)
            self.assertEqual(errors, [], "--json does not match %s:\n%s\n%r"
                             % (SCHEMA_PATH, "\n".join(errors[:20]), r))
        return r, doc

    def step(self, doc, name):
        steps, order = steps_of(doc)
        self.assertIn(name, steps, "no step %r in %s" % (name, order))
        return steps[name]

    # --- the gates ---
    def test_every_denial_names_the_gate_that_decided(self):
        for what, user, password, gate, entry, command, reply in DENIALS:
            with self.subTest(what, user=user):
                r, doc = self.doctor(user=user, password=password, expect=1)
                self.assertEqual(doc.get("provider"), "submitd", r)
                self.assertEqual(doc.get("result"), "fail")
                auth = self.step(doc, "auth")
                self.assertEqual(auth.get("status"), "fail", r)
                self.assertTrue(auth.get("reply", "").startswith(reply), (auth, reply))
                # The reference in the reply finds the server's own record of the decision.
                _, ref, _ = split_reference(auth["reply"])
                self.assertIsNotNone(ref, auth)
                event = self.daemon.find_event("signins", ref)
                self.assertIsNotNone(event, "reference %s not in the sign-in log" % ref)
                self.assertEqual(event.get("gate"), gate, event)
                # The doctor names that gate: its knowledge-base entry first, its fix, the ref.
                diags = diagnoses_of(doc)
                self.assertTrue(diags, r)
                self.assertEqual(diags[0].get("reference"), ref)
                self.assertEqual(diags[0].get("step"), "auth")
                ids = entry_ids(doc)
                self.assertTrue(ids and ids[0] == entry, "entries %s, expected %s first\n%r"
                                % (ids, entry, r))
                commands = fix_commands(doc)
                self.assertTrue(any(c.startswith(command) for c in commands),
                                "%r not among the fixes %s" % (command, commands))
                self.assertIn("submitctl signins --ref " + ref, commands)
                # Rendered: no template placeholders left where the values are known.
                for c in commands:
                    self.assertNotIn("{user}", c)
                    self.assertNotIn("{ref}", c)
                # And for people.
                h, _ = self.doctor(user=user, password=password, json=False, expect=1)
                self.assertIn(reply, h.out)
                self.assertIn(command, h.out)
                self.assertIn("submitctl signins --ref ", h.out)

    def test_a_fix_for_an_earlier_gate_is_not_offered_as_the_decider(self):
        """The fresh tenant fails gates 4, 5 and 6; the doctor must not send the administrator
        to security defaults or the policy first (SPEC 3: the first failing gate decides)."""
        r, doc = self.doctor(user="carol@fresh.example", expect=1)
        ids = entry_ids(doc)
        self.assertEqual(ids[0], "submitd-535-5.7.139-tenant", r)
        self.assertNotIn("submitd-535-5.7.139-security-defaults", ids[:1])
        first = [c for c in fix_commands(doc) if "smtp-auth on" in c or "security-defaults" in c
                 or "policy" in c]
        self.assertTrue(first and "smtp-auth on" in first[0], first)

    def test_success_exits_0(self):
        r, doc = self.doctor(expect=0)
        self.assertEqual(doc.get("provider"), "submitd")
        self.assertEqual(doc.get("result"), "pass")
        for name in ("connect", "greeting", "ehlo", "tls", "certificate", "ehlo-tls",
                     "mechanisms", "auth", "mail", "rcpt"):
            self.assertEqual(self.step(doc, name).get("status"), "pass", (name, r))
        self.assertEqual(self.step(doc, "auth").get("reply"),
                         "235 2.7.0 Authentication successful")
        self.assertEqual(diagnoses_of(doc), [])
        h, _ = self.doctor(json=False, expect=0)
        self.assertIn("235 2.7.0 Authentication successful", h.out)

    def test_implicit_tls_listener(self):
        r, doc = self.doctor(port=self.daemon.tls_port, tls="implicit", expect=0)
        self.assertEqual(self.step(doc, "tls").get("status"), "pass")
        self.assertIn("TLSv1.", json_text(self.step(doc, "tls")))

    def test_oauth_token(self):
        """XOAUTH2 with a token from the built-in issuer: allowed where security defaults are
        on (they gate only basic auth), refused where the tenant switch is off (it gates the
        protocol)."""
        for user, expect, entry in (("alice@example.com", 0, None),
                                    ("user@sd.example", 0, None),
                                    ("carol@fresh.example", 1, "submitd-535-5.7.139-tenant")):
            with self.subTest(user=user):
                token = self.daemon.ctl("token", "issue", user).stdout.decode().strip()
                self.assertTrue(token)
                r, doc = self.doctor("--mech", "XOAUTH2", user=user, token=token, expect=expect)
                if entry:
                    self.assertEqual(entry_ids(doc)[0], entry, r)
                    self.assertIn("submitctl tenant set fresh.example smtp-auth on",
                                  fix_commands(doc))

    def test_token_cmd_and_oauthbearer(self):
        """--token-cmd runs a command for the token (here the documented
        `submitctl token issue`); OAUTHBEARER (RFC 7628) works as well as XOAUTH2."""
        from .harness import SUBMITCTL
        cmd = "%s -d %s token issue alice@example.com" % (SUBMITCTL, self.daemon.dir)
        for mech in ("XOAUTH2", "OAUTHBEARER"):
            with self.subTest(mech):
                argv = list(FAST) + ["--cafile", self.cafile, "--json", "--user",
                                     "alice@example.com", "--token-cmd", cmd, "--mech", mech,
                                     "--to", "rcpt@example.net",
                                     "127.0.0.1:%d" % self.daemon.starttls_port]
                r = run_doctor(*argv)
                self.assertEqual(r.code, 0, r)
                doc = r.json()
                self.assertEqual(validate(doc, self.schema), [])
                self.assertIn(mech, self.step(doc, "auth").get("detail", ""))
        r = run_doctor("--user", "alice@example.com", "--token-cmd", "exit 3",
                       "127.0.0.1:%d" % self.daemon.starttls_port)
        self.assertEqual(r.code, 2, r)

    def test_530_5_7_57_without_auth(self):
        r, doc = self.doctor("--from", "alice@example.com", user=None, expect=1)
        mail = self.step(doc, "mail")
        self.assertEqual(mail.get("status"), "fail")
        self.assertTrue(mail.get("reply", "").startswith(
            "530 5.7.57 Client not authenticated to send mail."), mail)
        self.assertIn("submitd-530-5.7.57", entry_ids(doc))

    def test_from_the_login_may_not_use(self):
        """Client side: From differs from the login (warn); server side: 550 5.7.60 at MAIL."""
        r, doc = self.doctor("--from", "bob@example.com", expect=1)
        steps, _ = steps_of(doc)
        flagged = [n for n, s in steps.items() if s.get("status") in ("warn", "fail")
                   and "bob@example.com" in json_text(s) and n != "mail"]
        self.assertTrue(flagged, "From differing from the login not flagged before MAIL\n%r" % r)
        mail = self.step(doc, "mail")
        self.assertEqual(mail.get("status"), "fail", r)
        self.assertTrue(mail.get("reply", "").startswith(
            "550 5.7.60 Client does not have permissions to send as this sender"), mail)
        self.assertIn("submitd-550-5.7.60", entry_ids(doc))
        # An alias of the login is fine.
        r, doc = self.doctor("--from", "sales@example.com", expect=0)

    def test_send_stores_exactly_one_message(self):
        before = self.daemon.queue_ids()
        self.doctor(expect=0)
        self.assertEqual(self.daemon.queue_ids(), before, "a message stored without --send")
        r, doc = self.doctor("--send", expect=0)
        new = self.daemon.queue_ids() - before
        self.assertEqual(len(new), 1, r)
        env, msg = self.daemon.read_queue_file(new.pop())
        self.assertIn(b"alice@example.com", msg)
        data = self.step(doc, "data")
        self.assertEqual(data.get("status"), "pass")
        self.assertTrue(data.get("reply", "").startswith("250 2.0.0 OK "), data)

    # --- client-side mistakes ---
    def test_auth_before_tls_is_not_sent(self):
        before = self.daemon.ctl_json("signins", "--mailbox", "alice@example.com")
        r, doc = self.doctor(tls="none", expect=1)
        self.assertMentions(json_text(doc), "STARTTLS")
        time.sleep(0.3)  # a sign-in is written at once; this leaves it time to show
        after = self.daemon.ctl_json("signins", "--mailbox", "alice@example.com")
        self.assertEqual(len(after), len(before), "an AUTH attempt reached the server")

    def test_implicit_tls_against_the_starttls_listener(self):
        r, doc = self.doctor(tls="implicit", expect=1)
        self.assertEqual(self.step(doc, "tls").get("status"), "fail", r)
        self.assertMentions(json_text(doc), "STARTTLS")

    def test_starttls_against_the_implicit_listener(self):
        r, doc = self.doctor(port=self.daemon.tls_port, tls="starttls", expect=1)
        self.assertMentions(json_text(doc), "implicit")

    def test_transcript(self):
        r, _ = self.doctor("--transcript", json=False, expect=0)
        self.assertIn("ESMTP submitd ready", r.out)
        self.assertIn("STARTTLS", r.out)
        self.assertIn("AUTH ", r.out)
        self.assertNotIn(PASSWORD, r.out)

    def assertMentions(self, text, *needles):
        for n in needles:
            self.assertIn(n.lower(), text.lower(), "%r not mentioned in:\n%s" % (n, text[-4000:]))
