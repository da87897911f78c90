"""test_doctor_scripted.py: smtp-doctor against scripted servers (scripted_smtp.py) that replay
recorded Exchange Online and Gmail conversations, plaintext with STARTTLS (RFC 3207) and implicit
TLS (RFC 8314): provider recognition, the exact server reply in every failing step, the
Exchange Online checklist with its PowerShell commands, Gmail's advice, the client-side mistakes
caught before they reach the server (AUTH before TLS, a mechanism not offered, implicit TLS
against a STARTTLS port and the reverse, TLS below 1.2, From differing from the login), masked
transcripts, exit statuses 0/1/2/3, and every --json document checked against
docs/smtp-doctor.schema.json."""

import base64
import json
import shutil
import ssl
import tempfile
import unittest

from . import scripted_smtp as ss
from .doctor_tools import (SCHEMA_PATH, check_schema_keywords, diagnoses_of, entry_ids,
                           json_text, load_schema, require_doctor,
                           run_doctor, steps_of, validate)
from .harness import free_port

EXO_USER = "alice@contoso.com"
GMAIL_USER = "alice@gmail.com"
SECRET = "S3cret-Pa55word!xyz"
RCPT = "rcpt@example.net"
FAST = ("--timeout", "3")


class ScriptedCase(unittest.TestCase):
    """Makes a certificate once; each test starts the scripted servers it needs."""

    @classmethod
    def setUpClass(cls):
        require_doctor()
        cls.schema = load_schema()
        check_schema_keywords(cls.schema)
        cls.tmp = tempfile.mkdtemp(prefix="doctor-scripted-")
        try:
            cls.cert, cls.key = ss.make_certificate(cls.tmp)
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def server(self, profile, mode="starttls", **script):
        s = ss.ScriptedServer(profile, mode=mode, cert=self.cert, key=self.key, script=script)
        self.addCleanup(s.close)
        return s

    def target(self, s):
        return "127.0.0.1:%d" % s.port

    def doctor(self, s, *args, user=EXO_USER, secret=SECRET, tls=None, json=True, to=RCPT,
               cafile=True, expect=None):
        """Runs the doctor against scripted server s. Validates --json against the schema.
        Returns (run, doc or None)."""
        argv = list(FAST)
        if tls:
            argv += ["--tls", tls]
        if cafile and tls != "none":
            argv += ["--cafile", self.cert]
        if user:
            argv += ["--user", user]
        if secret is not None:
            argv += ["--password-stdin"]
        if to:
            argv += ["--to", to]
        if json:
            argv += ["--json"]
        argv += list(args) + [self.target(s)]
        r = run_doctor(*argv, input=(secret + "\n") if secret is not None else None)
        if expect is not None:
            self.assertEqual(r.code, expect, r)
        doc = None
        if json:
            doc = r.json()
            errors = validate(doc, self.schema)
            self.assertEqual(errors, [], "--json does not match %s:\n%s\n%r"
                             % (SCHEMA_PATH, "\n".join(errors[:20]), r))
            self.assertNotIn(SECRET, r.text, "the secret appears in the output")
        return r, doc

    def assertStep(self, doc, name, status, r=None):
        steps, order = steps_of(doc)
        self.assertIn(name, steps, "no step %r in %s\n%r" % (name, order, r))
        self.assertEqual(steps[name].get("status"), status, "step %s: %r\n%r"
                         % (name, steps[name], r))
        return steps[name]

    def assertMentions(self, text, *needles):
        low = text.lower()
        for n in needles:
            self.assertIn(n.lower(), low, "%r not mentioned in:\n%s" % (n, text[-6000:]))

    def assertNoPlaintextAuth(self, s):
        for conv in s.conversations:
            self.assertEqual(conv.plaintext_auth(), [], "AUTH sent before TLS")
            for a in conv.auth:
                self.assertTrue(a["tls"], "credentials sent without TLS: %r" % a)


class ExchangeOnlineTest(ScriptedCase):
    """The replies of /work/shared/reference/exchange-online-smtp-auth.md section 2, replayed."""

    CHECKLIST_COMMANDS = ("Get-TransportConfig", "Set-CASMailbox",
                          "-SmtpClientAuthenticationDisabled")
    CHECKLIST_TOPICS = ("security defaults", "authentication polic", "conditional access")

    def test_success_passes_every_step_and_exits_0(self):
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, expect=0)
        self.assertEqual(doc.get("provider"), "exchange-online", r)
        for name in ("connect", "greeting", "ehlo", "tls", "ehlo-tls", "mechanisms", "auth",
                     "mail", "rcpt"):
            self.assertStep(doc, name, "pass", r)
        self.assertEqual(doc.get("result"), "pass", r)
        # The credentials went over TLS, by the mechanism Exchange offers (LOGIN).
        self.assertNoPlaintextAuth(s)
        auths = [a for c in s.conversations for a in c.auth]
        self.assertEqual(len(auths), 1, auths)
        self.assertEqual(auths[0]["mech"], "LOGIN")
        self.assertEqual(auths[0]["user"], EXO_USER)
        self.assertEqual(auths[0]["secret"], SECRET)
        # Without --send no message is sent.
        self.assertEqual([d for c in s.conversations for d in c.data], [])
        self.assertEqual([l for c in s.conversations for l in c.sent("DATA")], [])

    def test_send_delivers_one_test_message(self):
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, "--from", EXO_USER, "--send", expect=0)
        data = [d for c in s.conversations for d in c.data]
        self.assertEqual(len(data), 1, r)
        self.assertIn(b"From:", data[0])
        self.assertIn(EXO_USER.encode(), data[0])

    def test_human_output_shows_steps_and_reply(self):
        s = self.server(ss.EXCHANGE, auth=ss.EXO_REPLIES["535 5.7.139 tenant"])
        r, _ = self.doctor(s, json=False, expect=1)
        self.assertIn(ss.EXO_REPLIES["535 5.7.139 tenant"], r.out)
        self.assertMentions(r.out, "pass", "fail", "exchange", "Set-TransportConfig",
                            "-SmtpClientAuthenticationDisabled $false")
        self.assertNotIn("\x1b[", r.out, "colour escape codes when stdout is not a terminal")

    # (scripted reply key, commands the diagnosis must name, topics it must name)
    AUTH_FAILURES = (
        ("535 5.7.139 tenant", ("Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
                                "Get-TransportConfig"), ()),
        ("535 5.7.139 mailbox", ("Set-CASMailbox", "-SmtpClientAuthenticationDisabled $false"),
         ()),
        ("535 5.7.139 basic", ("AllowBasicAuthSmtp",), ("authentication polic",)),
        ("535 5.7.139 security-defaults", (), ("security defaults",)),
        ("535 5.7.139 criteria", (), ("conditional access",)),
        ("535 5.7.3", ("Get-TransportConfig", "Set-CASMailbox",
                       "-SmtpClientAuthenticationDisabled"),
         ("security defaults", "authentication polic", "conditional access")),
        ("550 5.7.30", (), ("basic authentication", "oauth")),
    )

    def test_each_auth_failure_is_diagnosed_as_exchange_online(self):
        for key, commands, topics in self.AUTH_FAILURES:
            with self.subTest(key):
                reply = ss.EXO_REPLIES[key]
                s = self.server(ss.EXCHANGE, auth=reply)
                r, doc = self.doctor(s, expect=1)
                self.assertEqual(doc.get("provider"), "exchange-online", r)
                self.assertEqual(doc.get("result"), "fail", r)
                step = self.assertStep(doc, "auth", "fail", r)
                self.assertEqual(step.get("reply"), reply, "the server's exact reply")
                diags = diagnoses_of(doc)
                self.assertTrue(diags, "no diagnosis for %r\n%r" % (reply, r))
                self.assertEqual(diags[0].get("step"), "auth")
                self.assertEqual(diags[0].get("provider"), "exchange-online")
                self.assertTrue(entry_ids(doc), "no knowledge-base entry for %r" % reply)
                text = json_text(doc)
                for c in commands:
                    self.assertIn(c, text, "%s: command %r not named\n%r" % (key, c, r))
                self.assertMentions(text, *topics)
                # MAIL is not tried after a failed AUTH as if it had worked.
                self.assertNotEqual(steps_of(doc)[0].get("mail", {}).get("status"), "pass")

    def test_generic_failure_prints_the_whole_checklist(self):
        """5.7.3 and 5.7.57 do not say which setting blocked: the diagnosis is the checklist of
        the tenant setting, the mailbox setting, security defaults, authentication policies and
        Conditional Access, with the PowerShell commands (reference section 0, [ALCH-v1])."""
        for what, kwargs, user in (
                ("535 5.7.3 at AUTH", {"auth": ss.EXO_REPLIES["535 5.7.3"]}, EXO_USER),
                ("530 5.7.57 at MAIL without AUTH", {}, None)):
            with self.subTest(what):
                s = self.server(ss.EXCHANGE, **kwargs)
                r, _ = self.doctor(s, "--from", EXO_USER, json=False, user=user,
                                   secret=SECRET if user else None, expect=1)
                for c in self.CHECKLIST_COMMANDS:
                    self.assertIn(c, r.out, "%s: %r missing\n%r" % (what, c, r))
                self.assertMentions(r.out, "tenant", "mailbox", *self.CHECKLIST_TOPICS)
                if user is None:
                    self.assertIn(ss.EXO_REPLIES["530 5.7.57"], r.out)

    def test_530_5_7_57_at_mail(self):
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, "--from", EXO_USER, user=None, secret=None, expect=1)
        step = self.assertStep(doc, "mail", "fail", r)
        self.assertEqual(step.get("reply"), ss.EXO_REPLIES["530 5.7.57"])
        self.assertEqual(diagnoses_of(doc)[0].get("step"), "mail")
        self.assertEqual(s.conversations[0].auth, [], "AUTH sent without --user")

    def test_421_4_7_66_tls_version(self):
        s = self.server(ss.EXCHANGE, auth=ss.EXO_REPLIES["421 4.7.66"])
        r, doc = self.doctor(s, expect=1)
        step = self.assertStep(doc, "auth", "fail", r)
        self.assertEqual(step.get("reply"), ss.EXO_REPLIES["421 4.7.66"])
        self.assertMentions(json_text(doc), "TLS 1.2")

    def test_send_as_denied_at_end_of_data(self):
        for key in ("550 5.7.60", "554 5.2.252"):
            with self.subTest(key):
                s = self.server(ss.EXCHANGE, data_end=ss.EXO_REPLIES[key])
                r, doc = self.doctor(s, "--send", expect=1)
                step = self.assertStep(doc, "data", "fail", r)
                self.assertEqual(step.get("reply"), ss.EXO_REPLIES[key])
                self.assertTrue(entry_ids(doc), r)
                self.assertMentions(json_text(doc), "send as")

    def test_limits_at_end_of_data(self):
        for key in ("432 4.3.2", "554 5.2.0 quota"):
            with self.subTest(key):
                s = self.server(ss.EXCHANGE, data_end=ss.EXO_REPLIES[key])
                r, doc = self.doctor(s, "--send", expect=1)
                self.assertEqual(self.assertStep(doc, "data", "fail", r).get("reply"),
                                 ss.EXO_REPLIES[key])
                self.assertTrue(entry_ids(doc), "no entry for %s\n%r" % (key, r))

    # --- client-side mistakes: caught before they reach the server ---
    def test_mechanism_not_offered_is_caught_before_auth(self):
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, "--mech", "PLAIN", expect=1)
        self.assertStep(doc, "mechanisms", "fail", r)
        self.assertEqual([a for c in s.conversations for a in c.auth], [],
                         "AUTH PLAIN was sent although Exchange offers only LOGIN XOAUTH2")
        self.assertMentions(json_text(doc), "LOGIN", "XOAUTH2")

    def test_auth_before_tls_is_caught(self):
        """--tls none against a server that offers STARTTLS and no AUTH in plaintext: the doctor
        must not send credentials in the clear."""
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, tls="none", expect=1)
        self.assertNoPlaintextAuth(s)
        self.assertMentions(json_text(doc), "STARTTLS")
        failed = [n for n, st in steps_of(doc)[0].items() if st.get("status") == "fail"]
        self.assertTrue(failed, r)

    def test_auth_before_tls_even_when_offered_in_plaintext(self):
        """A server that (wrongly) offers AUTH before TLS: the doctor still refuses to send the
        password in the clear when STARTTLS is available."""
        s = self.server(ss.EXCHANGE, auth_offered_before_tls=True)
        r, doc = self.doctor(s, tls="none", expect=1)
        self.assertNoPlaintextAuth(s)

    def test_implicit_tls_against_the_starttls_port(self):
        """Port 465 / --tls implicit where only STARTTLS is served ([MFD]: "If your device
        recommends or defaults to port 465, it does not support SMTP AUTH client submission")."""
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, tls="implicit", expect=1)
        self.assertStep(doc, "tls", "fail", r)
        self.assertMentions(json_text(doc), "STARTTLS")
        self.assertEqual([a for c in s.conversations for a in c.auth], [])

    def test_starttls_against_the_implicit_tls_port(self):
        s = self.server(ss.EXCHANGE, mode="implicit")
        r, doc = self.doctor(s, tls="starttls", expect=1)
        self.assertMentions(json_text(doc), "implicit")
        self.assertEqual([a for c in s.conversations for a in c.auth], [])
        # and --tls implicit works there
        r, doc = self.doctor(s, tls="implicit", expect=0)
        self.assertStep(doc, "tls", "pass", r)

    def test_from_differing_from_login_is_flagged(self):
        s = self.server(ss.EXCHANGE)
        r, doc = self.doctor(s, "--from", "ceo@contoso.com")
        steps, _ = steps_of(doc)
        flagged = [n for n, st in steps.items() if st.get("status") in ("warn", "fail")
                   and "ceo@contoso.com" in json_text(st)]
        self.assertTrue(flagged, "From differing from the login not flagged\n%r" % r)
        self.assertMentions(json_text(doc), "send as")

    def test_tls_below_1_2_is_named(self):
        try:
            s = self.server(ss.EXCHANGE, tls_max=ssl.TLSVersion.TLSv1_1)
        except ssl.SSLError as e:
            self.skipTest("this OpenSSL cannot serve TLS 1.1: %s" % e)
        r, doc = self.doctor(s, expect=1)
        self.assertStep(doc, "tls", "fail", r)
        self.assertMentions(json_text(doc), "1.2")
        self.assertNoPlaintextAuth(s)
        self.assertEqual([a for c in s.conversations for a in c.auth], [])

    def test_certificate_checked_against_the_store(self):
        s = self.server(ss.EXCHANGE)
        _, doc = self.doctor(s, expect=0)
        cert = self.assertStep(doc, "certificate", "pass")
        self.assertMentions(json_text(cert), "day")
        # Not in the system store: the chain does not verify, and the doctor does not go on to
        # send the password to a server it cannot authenticate (unless --insecure).
        r, doc = self.doctor(s, cafile=False)
        st = steps_of(doc)[0].get("certificate", {}).get("status")
        self.assertIn(st, ("fail", "warn"), r)
        if st == "fail":
            self.assertEqual(r.code, 1, r)
        r, doc = self.doctor(s, "--insecure", cafile=False, expect=0)
        self.assertEqual(steps_of(doc)[0]["certificate"]["status"], "warn", r)

    def test_transcript_masks_secrets(self):
        s = self.server(ss.EXCHANGE, auth=ss.EXO_REPLIES["535 5.7.3"])
        r, _ = self.doctor(s, "--transcript", json=False, expect=1)
        secret_b64 = base64.b64encode(SECRET.encode()).decode()
        self.assertNotIn(SECRET, r.text)
        self.assertNotIn(secret_b64, r.text)
        self.assertIn("AUTH LOGIN", r.out)
        self.assertIn("334 UGFzc3dvcmQ6", r.out)
        self.assertIn(ss.EXO_GREETING, r.out)
        self.assertIn(ss.EXO_REPLIES["535 5.7.3"], r.out)


class GmailTest(ScriptedCase):

    def test_535_5_7_8_bad_credentials(self):
        s = self.server(ss.GMAIL, auth=ss.GMAIL_REPLIES["535 5.7.8"])
        r, doc = self.doctor(s, user=GMAIL_USER, expect=1)
        self.assertEqual(doc.get("provider"), "gmail", r)
        step = self.assertStep(doc, "auth", "fail", r)
        self.assertEqual(step.get("reply"), "\n".join(ss.GMAIL_REPLIES["535 5.7.8"]))
        self.assertTrue(entry_ids(doc), r)
        self.assertMentions(json_text(doc), "app password")

    def test_534_5_7_9_application_specific_password(self):
        s = self.server(ss.GMAIL, auth=ss.GMAIL_REPLIES["534 5.7.9"])
        r, doc = self.doctor(s, user=GMAIL_USER, expect=1)
        self.assertEqual(doc.get("provider"), "gmail", r)
        self.assertEqual(self.assertStep(doc, "auth", "fail", r).get("reply"),
                         "\n".join(ss.GMAIL_REPLIES["534 5.7.9"]))
        self.assertMentions(json_text(doc), "app password", "2-step")

    def test_human_output_names_gmail_advice(self):
        s = self.server(ss.GMAIL, auth=ss.GMAIL_REPLIES["534 5.7.9"])
        r, _ = self.doctor(s, user=GMAIL_USER, json=False, expect=1)
        self.assertMentions(r.out, "gmail", "app password")
        self.assertNotIn("Set-CASMailbox", r.out, "Exchange advice for a Gmail server")

    def test_success_uses_an_offered_mechanism(self):
        s = self.server(ss.GMAIL)
        r, doc = self.doctor(s, user=GMAIL_USER, expect=0)
        self.assertEqual(doc.get("provider"), "gmail")
        auths = [a for c in s.conversations for a in c.auth]
        self.assertEqual(len(auths), 1)
        self.assertIn(auths[0]["mech"], ("PLAIN", "LOGIN"))
        self.assertEqual((auths[0]["user"], auths[0]["secret"]), (GMAIL_USER, SECRET))

    def test_auth_before_tls(self):
        s = self.server(ss.GMAIL)
        r, doc = self.doctor(s, user=GMAIL_USER, tls="none", expect=1)
        self.assertNoPlaintextAuth(s)


class ExitStatusTest(ScriptedCase):

    def test_closed_port_exits_3(self):
        port = free_port()
        r = run_doctor(*FAST, "--json", "127.0.0.1:%d" % port)
        self.assertEqual(r.code, 3, r)
        doc = r.json()
        self.assertEqual(validate(doc, self.schema), [])
        self.assertEqual(doc.get("result"), "unreachable")
        self.assertEqual(steps_of(doc)[0]["connect"]["status"], "fail")
        r = run_doctor(*FAST, "127.0.0.1:%d" % port)
        self.assertEqual(r.code, 3, r)
        self.assertMentions(r.text, "127.0.0.1", str(port))

    def test_bad_usage_exits_2(self):
        for argv in ((), ("--no-such-option", "127.0.0.1:25"), ("--tls", "sometimes",
                     "127.0.0.1:25"), ("--mech",), ("127.0.0.1:99999",),
                     ("--password-stdin", "--token-stdin", "--user", "a@b.c", "127.0.0.1:25"),
                     ("127.0.0.1:25", "extra-argument")):
            with self.subTest(argv=argv):
                r = run_doctor(*argv, input="x\n")
                self.assertEqual(r.code, 2, r)
                self.assertTrue(r.err.strip(), "no reason on stderr")
                self.assertEqual(len(r.err.strip().splitlines()), 1, r)

    def test_a_step_failing_exits_1_success_exits_0(self):
        s = self.server(ss.EXCHANGE)
        self.doctor(s, expect=0)
        s2 = self.server(ss.EXCHANGE, rcpt="550 5.1.1 User unknown")
        r, doc = self.doctor(s2, expect=1)
        self.assertStep(doc, "rcpt", "fail", r)


class RealSchemaTest(ScriptedCase):
    """docs/smtp-doctor.schema.json itself rejects what it should: a document of the doctor,
    tampered, must fail the check (else validating against it proves nothing)."""

    def test_tampered_documents_fail(self):
        s = self.server(ss.EXCHANGE, auth=ss.EXO_REPLIES["535 5.7.139 tenant"])
        _, doc = self.doctor(s, expect=1)
        tampered = []
        d = json.loads(json.dumps(doc))
        d["steps"][0]["status"] = "fine"
        tampered.append(("bad step status", d))
        d = json.loads(json.dumps(doc))
        d["result"] = "maybe"
        tampered.append(("bad result", d))
        d = json.loads(json.dumps(doc))
        del d["steps"]
        tampered.append(("no steps", d))
        d = json.loads(json.dumps(doc))
        d["exit_code"] = "1"
        tampered.append(("exit_code a string", d))
        d = json.loads(json.dumps(doc))
        d["provider"] = "hotmail"
        tampered.append(("unknown provider", d))
        d = json.loads(json.dumps(doc))
        d["diagnosis"][0]["entries"] = [{"id": 1}]
        tampered.append(("bad entry", d))
        for what, d in tampered:
            with self.subTest(what):
                self.assertNotEqual(validate(d, self.schema), [], "schema accepts: " + what)

    def test_localhost_resolves_and_connects(self):
        s = self.server(ss.EXCHANGE)
        argv = list(FAST) + ["--cafile", self.cert, "--json", "localhost:%d" % s.port]
        r = run_doctor(*argv)
        self.assertEqual(r.code, 0, r)
        doc = r.json()
        self.assertEqual(validate(doc, self.schema), [])
        steps = steps_of(doc)[0]
        self.assertEqual(steps["resolve"]["status"], "pass", r)
        self.assertIn("127.0.0.1", steps["resolve"]["detail"])
        self.assertIn(steps["connect"]["status"], ("pass", "warn"), r)
        self.assertEqual(steps["certificate"]["status"], "pass", r)


class SchemaCheckerTest(unittest.TestCase):
    """The stdlib JSON Schema checker itself: it must be able to fail."""

    SCHEMA = {
        "type": "object",
        "required": ["a", "steps"],
        "properties": {
            "a": {"type": "string", "enum": ["x", "y"]},
            "n": {"type": "integer", "minimum": 0},
            "steps": {"type": "array", "items": {"$ref": "#/definitions/step"}},
        },
        "additionalProperties": False,
        "definitions": {"step": {"type": "object", "required": ["name"],
                                 "properties": {"name": {"type": "string"},
                                                "reply": {"type": ["string", "null"]}}}},
    }

    def test_valid(self):
        self.assertEqual(validate({"a": "x", "n": 3, "steps": [{"name": "s", "reply": None}]},
                                  self.SCHEMA), [])

    def test_violations(self):
        for doc in ({"steps": []}, {"a": "z", "steps": []}, {"a": "x", "steps": [{}]},
                    {"a": "x", "steps": [{"name": 1}]}, {"a": "x", "steps": {}},
                    {"a": "x", "steps": [], "n": -1}, {"a": "x", "steps": [], "n": True},
                    {"a": "x", "steps": [], "extra": 1}, []):
            with self.subTest(doc=doc):
                self.assertNotEqual(validate(doc, self.SCHEMA), [])

    def test_unknown_keyword_is_refused(self):
        from .doctor_tools import SchemaError
        with self.assertRaises(SchemaError):
            check_schema_keywords({"type": "object", "dependentSchemas": {}})


if __name__ == "__main__":
    unittest.main()
