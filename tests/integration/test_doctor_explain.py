"""test_doctor_explain.py: `smtp-doctor explain 'REPLY TEXT'` over a table of reply lines (each must
be diagnosed by the expected knowledge-base entry, whose title from data/smtp-replies.json is
printed), and `smtp-doctor explain --log FILE` over client logs: swaks output, a .NET
SmtpException, JavaMail exceptions and Python smtplib tracebacks. Exit 0 when every reply found
is known, 1 when one is unknown or none is found; --json checked against the schema."""

import json
import os
import shutil
import tempfile
import unittest

from .doctor_tools import (SCHEMA_PATH, check_schema_keywords, diagnoses_of, json_text,
                           load_schema, require_doctor, run_doctor, validate)
from .harness import REPO

KB_PATH = os.path.join(REPO, "data", "smtp-replies.json")

EXO_REF = " [BL1P221CA0016.namprd13.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]"
SUBMITD_REF = " [localhost 2025-03-01T12:00:00.123Z 18F3A2B4C50D1E2F]"

# (reply line as a client log shows it, --provider or None, expected first entry id).
# Exchange Online texts: /work/shared/reference/exchange-online-smtp-auth.md section 2.
# Gmail: the issue threads cited in scripted_smtp.py, and [GRELAY] for 5.4.5.
# Postfix: captured from Postfix 3.7 with Dovecot SASL (postfix_instance.py).
REPLIES = (
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information." + EXO_REF, None,
     "exo-535-5.7.139-tenant"),
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.", "exchange-online",
     "exo-535-5.7.139-mailbox"),
    ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled." + EXO_REF, None,
     "exo-535-5.7.139-basic-disabled"),
    ("535 5.7.139 Authentication unsuccessful, user is locked by your organization's security "
     "defaults policy. Contact your administrator.", "exchange-online",
     "exo-535-5.7.139-security-defaults"),
    ("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be "
     "authenticated successfully. Contact your administrator.", "exchange-online",
     "exo-535-5.7.139-criteria"),
    ("535 5.7.139 Authentication unsuccessful, the user credentials were incorrect." + EXO_REF,
     None, "exo-535-5.7.139-credentials"),
    ("535 5.7.3 Authentication unsuccessful" + EXO_REF, None, "exo-535-5.7.3"),
    ("530 5.7.57 Client not authenticated to send mail." + EXO_REF, None, "exo-530-5.7.57"),
    ("530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.3 Authentication "
     "unsuccessful" + EXO_REF, None, "exo-530-5.7.57-after-auth-failure"),
    ("550 5.7.60 SMTP; Client does not have permissions to send as this sender "
     "[BL1P221CA0016.outlook.office365.com]", None, "exo-550-5.7.60"),
    ("554 5.2.252 SendAsDenied; alice@contoso.com not allowed to send as ceo@contoso.com; "
     "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
     "exchange-online", "exo-554-5.2.252-sendasdenied"),
    ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
     "exchange-online", "exo-554-5.2.0-quota"),
    ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded "
     "[Hostname=BL1P221MB0016.namprd13.prod.outlook.com]", None, "exo-432-4.3.2"),
    ("421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
     "support TLS 1.2. Visit https://aka.ms/smtp_auth_tls." + EXO_REF, None, "exo-421-4.7.66"),
    ("550 5.7.30 Basic authentication is not supported for Client Submission.",
     "exchange-online", "exo-550-5.7.30"),
    ("504 5.7.4 Unrecognized authentication type" + EXO_REF, None, "exo-504-5.7.4"),
    ("451 5.7.3 STARTTLS is required to send mail" + EXO_REF, None, "exo-451-5.7.3-starttls"),
    ("535 5.7.8 Username and Password not accepted. For more information, go to "
     "https://support.google.com/mail/?p=BadCredentials af79cd13be357-794f3061475sm18893085a.74"
     " - gsmtp", None, "gmail-535-5.7.8-bad-credentials"),
    ("534 5.7.9 Application-specific password required. For more information, go to "
     "https://support.google.com/mail/?p=InvalidSecondFactor "
     "ffacd0b85a97d-368119970e7sm1809147f8f.21 - gsmtp", None, "gmail-534-5.7.9-app-password"),
    ("530 5.7.0 Must issue a STARTTLS command first. x7sm11440831pfa.98 - gsmtp", None,
     "gmail-530-5.7.0-starttls"),
    ("550 5.4.5 Daily SMTP relay limit exceeded for user", "gmail",
     "gmail-550-5.4.5-relay-limit"),
    ("535 5.7.8 Error: authentication failed: (reason unavailable)", "postfix",
     "postfix-535-5.7.8-auth-failed"),
    ("553 5.7.1 <bob@pfx.test>: Sender address rejected: not owned by user alice@pfx.test",
     "postfix", "postfix-553-5.7.1-not-owned"),
    ("554 5.7.1 <x@example.net>: Relay access denied", "postfix",
     "postfix-554-5.7.1-relay-denied"),
    ("535 5.7.139 Authentication unsuccessful, account is disabled." + SUBMITD_REF, "submitd",
     "submitd-535-5.7.139-account-disabled"),
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant." + SUBMITD_REF, "submitd", "submitd-535-5.7.139-tenant"),
    ("550 5.7.60 Client does not have permissions to send as this sender" + SUBMITD_REF,
     "submitd", "submitd-550-5.7.60"),
)

# --- client logs (the failure texts are recorded ones; see REPLIES for the sources) ---

SWAKS_LOG = """\
=== Trying smtp.office365.com:587...
=== Connected to smtp.office365.com.
<-  220 BL1P221CA0016.outlook.office365.com Microsoft ESMTP MAIL Service ready at Fri, 4 Nov 2022 10:07:41 +0000
 -> EHLO printer.example
<-  250-BL1P221CA0016.outlook.office365.com Hello [192.0.2.10]
<-  250-SIZE 157286400
<-  250-PIPELINING
<-  250-DSN
<-  250-ENHANCEDSTATUSCODES
<-  250-STARTTLS
<-  250-8BITMIME
<-  250-BINARYMIME
<-  250-CHUNKING
<-  250 SMTPUTF8
 -> STARTTLS
<-  220 2.0.0 SMTP server ready
=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256
 ~> EHLO printer.example
<~  250-BL1P221CA0016.outlook.office365.com Hello [192.0.2.10]
<~  250-SIZE 157286400
<~  250-AUTH LOGIN XOAUTH2
<~  250 SMTPUTF8
 ~> AUTH LOGIN
<~  334 VXNlcm5hbWU6
 ~> YWxpY2VAY29udG9zby5jb20=
<~  334 UGFzc3dvcmQ6
 ~> KioqKioqKio=
<~* 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [BL1P221CA0016.namprd13.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]
*** No authentication type succeeded
 ~> QUIT
<~  221 2.0.0 Service closing transmission channel
=== Connection closed with remote host.
"""

# System.Net.Mail puts the server's reply after "The server response was: ", without the
# 3-digit code ([SENDEMAILBT49][ODX3124] in the reference file).
DOTNET_LOG = """\
2024-05-02 09:14:07.112 ERROR Sending the report failed
System.Net.Mail.SmtpException: The SMTP server requires a secure connection or the client was not authenticated. The server response was: 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0501CA0054.namprd05.prod.outlook.com 2024-05-02T09:14:07.101Z 08DC6A3C1E2F4B5A]
   at System.Net.Mail.MailCommand.CheckResponse(SmtpStatusCode statusCode, String response)
   at System.Net.Mail.MailCommand.Send(SmtpConnection conn, Byte[] command, MailAddress from, Boolean allowUnicode)
   at System.Net.Mail.SmtpTransport.SendMail(MailAddress sender, MailAddressCollection recipients, String deliveryNotify, Boolean allowUnicode, SmtpFailedRecipientException& exception)
   at System.Net.Mail.SmtpClient.Send(MailMessage message)
"""

JAVA_EXO_LOG = """\
javax.mail.AuthenticationFailedException: 535 5.7.3 Authentication unsuccessful [BN6PR1101CA0011.namprd11.prod.outlook.com]

\tat com.sun.mail.smtp.SMTPTransport$Authenticator.authenticate(SMTPTransport.java:965)
\tat com.sun.mail.smtp.SMTPTransport.authenticate(SMTPTransport.java:876)
\tat com.sun.mail.smtp.SMTPTransport.protocolConnect(SMTPTransport.java:780)
\tat javax.mail.Service.connect(Service.java:388)
\tat javax.mail.Service.connect(Service.java:246)
"""

# https://github.com/virtualzone/tubewarder/issues/29 (Gmail, JavaMail at MAIL FROM)
JAVA_GMAIL_LOG = """\
2016-10-05 19:29:34,191 ERROR [stderr] (EJB default - 2) com.sun.mail.smtp.SMTPSendFailedException: 530 5.7.0 Must issue a STARTTLS command first. pe5sm5768337wjb.15 - gsmtp
2016-10-05 19:29:34,191 ERROR [stderr] (EJB default - 2) \tat com.sun.mail.smtp.SMTPTransport.issueSendCommand(SMTPTransport.java:2249)
2016-10-05 19:29:34,191 ERROR [stderr] (EJB default - 2) \tat com.sun.mail.smtp.SMTPTransport.mailFrom(SMTPTransport.java:1740)
"""

# https://github.com/leiweibau/Pi.Alert/issues/236 (smtplib against Gmail)
PYTHON_GMAIL_LOG = """\
Traceback (most recent call last):
  File "/root/pialert/back/pialert_reporting_test.py", line 274, in send_email
    smtp_connection.login (SMTP_USER, escaped_password)
  File "/usr/lib/python3.11/smtplib.py", line 750, in login
    raise last_exception
  File "/usr/lib/python3.11/smtplib.py", line 739, in login
    (code, resp) = self.auth(
                   ^^^^^^^^^^
  File "/usr/lib/python3.11/smtplib.py", line 662, in auth
    raise SMTPAuthenticationError(code, resp)
smtplib.SMTPAuthenticationError: (534, b'5.7.9 Application-specific password required. For more information, go to\\n5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor w11-20020a056512098b00b0050e8ea87dcesm1401366lft.169 - gsmtp')
"""

PYTHON_EXO_LOG = """\
Traceback (most recent call last):
  File "/opt/app/notify.py", line 41, in send
    server.login(user, password)
  File "/usr/lib/python3.11/smtplib.py", line 750, in login
    raise last_exception
  File "/usr/lib/python3.11/smtplib.py", line 739, in login
    (code, resp) = self.auth(
  File "/usr/lib/python3.11/smtplib.py", line 662, in auth
    raise SMTPAuthenticationError(code, resp)
smtplib.SMTPAuthenticationError: (535, b'5.7.139 Authentication unsuccessful, basic authentication is disabled. [MN2PR01CA0051.namprd01.prod.outlook.com 2024-01-15T08:00:00.000Z 08DC15A1B2C3D4E5]')
"""

# (name, text, expected entry ids (each must be among the diagnoses' first entries), provider)
LOGS = (
    ("swaks", SWAKS_LOG, ["exo-535-5.7.139-tenant"], "exchange-online"),
    (".NET SmtpException", DOTNET_LOG, ["exo-530-5.7.57-after-auth-failure"], "exchange-online"),
    ("JavaMail, Exchange", JAVA_EXO_LOG, ["exo-535-5.7.3"], "exchange-online"),
    ("JavaMail, Gmail", JAVA_GMAIL_LOG, ["gmail-530-5.7.0-starttls"], "gmail"),
    ("Python smtplib, Gmail", PYTHON_GMAIL_LOG, ["gmail-534-5.7.9-app-password"], "gmail"),
    ("Python smtplib, Exchange", PYTHON_EXO_LOG, ["exo-535-5.7.139-basic-disabled"],
     "exchange-online"),
)


class ExplainTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require_doctor()
        cls.schema = load_schema()
        check_schema_keywords(cls.schema)
        with open(KB_PATH, encoding="utf-8") as f:
            kb = json.load(f)
        cls.titles = {e["id"]: e["title"] for e in kb["entries"]}
        cls.tmp = tempfile.mkdtemp(prefix="doctor-explain-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def explain(self, *args, provider=None, json_out=True):
        argv = []
        if provider:
            argv += ["--provider", provider]
        if json_out:
            argv.append("--json")
        r = run_doctor(*(argv + ["explain"] + list(args)))
        doc = None
        if json_out:
            doc = r.json()
            errors = validate(doc, self.schema)
            self.assertEqual(errors, [], "explain --json does not match %s:\n%s\n%r"
                             % (SCHEMA_PATH, "\n".join(errors[:20]), r))
            self.assertEqual(doc.get("mode"), "explain")
            self.assertEqual(doc.get("exit_code"), r.code)
        return r, doc

    def test_reply_table(self):
        for reply, provider, expected in REPLIES:
            self.assertIn(expected, self.titles, "the table names an entry the data file lacks")
            with self.subTest(expected, reply=reply[:60]):
                r, doc = self.explain(reply, provider=provider)
                self.assertEqual(r.code, 0, r)
                self.assertEqual(doc.get("result"), "explained", r)
                diags = diagnoses_of(doc)
                self.assertEqual(len(diags), 1, r)
                ids = [e.get("id") for e in diags[0].get("entries") or []]
                self.assertTrue(ids and ids[0] == expected, "got %s, expected %s first\n%r"
                                % (ids, expected, r))
                e = diags[0]["entries"][0]
                for key in ("title", "meaning"):
                    self.assertTrue(e.get(key), e)
                self.assertTrue(e.get("causes"), e)
                self.assertTrue(e.get("fixes"), e)
                self.assertTrue(e.get("sources"), "entry %s cites no source" % expected)
                h, _ = self.explain(reply, provider=provider, json_out=False)
                self.assertEqual(h.code, 0, h)
                self.assertIn(self.titles[expected], h.out)

    def test_provider_is_recognised_from_the_reply(self):
        for reply, provider, expected in REPLIES:
            if provider is not None:
                continue
            with self.subTest(expected):
                _, doc = self.explain(reply)
                want = "gmail" if expected.startswith("gmail") else "exchange-online"
                self.assertEqual(diagnoses_of(doc)[0].get("provider"), want)

    def test_submitd_reference_lookup(self):
        reply = REPLIES[-3][0]
        r, doc = self.explain(reply, provider="submitd")
        d = diagnoses_of(doc)[0]
        self.assertEqual(d.get("reference"), "18F3A2B4C50D1E2F")
        self.assertEqual(d.get("lookup"), "submitctl signins --ref 18F3A2B4C50D1E2F")
        self.assertIn("submitctl signins --ref 18F3A2B4C50D1E2F", json_text(doc))
        h, _ = self.explain(reply, provider="submitd", json_out=False)
        self.assertIn("submitctl signins --ref 18F3A2B4C50D1E2F", h.out)

    def test_exchange_checklist_for_generic_replies(self):
        for reply in (REPLIES[6][0], REPLIES[7][0]):
            with self.subTest(reply=reply[:40]):
                h, _ = self.explain(reply, json_out=False)
                for needle in ("Get-TransportConfig", "Set-CASMailbox",
                               "-SmtpClientAuthenticationDisabled"):
                    self.assertIn(needle, h.out)
                low = h.out.lower()
                for topic in ("security defaults", "authentication polic", "conditional access"):
                    self.assertIn(topic, low)

    def test_unknown_reply_exits_1(self):
        for text in ("599 9.9.9 Nothing anyone has ever seen", "hello, no reply here"):
            with self.subTest(text=text):
                r, doc = self.explain(text)
                self.assertEqual(r.code, 1, r)
                self.assertIn(doc.get("result"), ("unknown", "none-found"))

    def test_bad_usage_exits_2(self):
        for argv in (("explain",), ("explain", "a", "b"),
                     ("explain", "--log", os.path.join(self.tmp, "missing.log"))):
            with self.subTest(argv=argv):
                r = run_doctor(*argv)
                self.assertEqual(r.code, 2, r)
                self.assertTrue(r.err.strip())

    def write_log(self, name, text):
        path = os.path.join(self.tmp, name.replace(" ", "_").replace(",", "") + ".log")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_logs(self):
        for name, text, expected, provider in LOGS:
            with self.subTest(name):
                path = self.write_log(name, text)
                r, doc = self.explain("--log", path)
                self.assertEqual(r.code, 0, r)
                diags = diagnoses_of(doc)
                self.assertTrue(diags, "no reply found in the %s log\n%r" % (name, r))
                firsts = [(d.get("entries") or [{}])[0].get("id") for d in diags]
                for e in expected:
                    self.assertIn(e, firsts, "%s: %s not among %s\n%r" % (name, e, firsts, r))
                self.assertEqual(doc.get("provider"), provider, r)
                for d in diags:
                    # Only refusals are diagnosed: no 220/250/334/354 from the transcript.
                    self.assertIn(d.get("reply", "")[:1], ("4", "5"), d)
                    # The extracted reply is a reply line, not the log line around it.
                    self.assertNotIn("Exception", d.get("reply", ""))
                    self.assertNotIn("b'", d.get("reply", ""))
                h, _ = self.explain("--log", path, json_out=False)
                self.assertEqual(h.code, 0, h)
                for e in expected:
                    self.assertIn(self.titles[e], h.out)

    def test_swaks_log_diagnoses_exactly_the_refusal(self):
        path = self.write_log("swaks-only", SWAKS_LOG)
        r, doc = self.explain("--log", path)
        replies = [d.get("reply") for d in diagnoses_of(doc)]
        self.assertEqual(len(replies), 1, replies)
        self.assertTrue(replies[0].startswith("535 5.7.139 Authentication unsuccessful, "
                                              "SmtpClientAuthentication is disabled for the "
                                              "Tenant."), replies)

    def test_log_without_replies_exits_1(self):
        path = self.write_log("empty", "nothing to see\njust a log line\n")
        r, doc = self.explain("--log", path)
        self.assertEqual(r.code, 1, r)
        self.assertEqual(doc.get("result"), "none-found")
        self.assertEqual(diagnoses_of(doc), [])


if __name__ == "__main__":
    unittest.main()
