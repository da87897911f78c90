"""test_smtp_clients.py: real third-party SMTP clients against the daemon: swaks (STARTTLS and
implicit TLS, AUTH PLAIN and LOGIN) and curl (smtp:// with --ssl-reqd, smtps://), for accepted
messages and for the replies administrators see when AUTH or MAIL is refused."""

import os
import re
import shutil
import subprocess
import unittest

from .harness import PASSWORD, DaemonTestCase, message

QUEUED_IN_TRANSCRIPT = re.compile(r"250 2\.0\.0 OK ([0-9A-F]{16})\b")


def run(argv, timeout=30):
    r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


class SwaksTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        if shutil.which("swaks") is None:
            raise unittest.SkipTest("swaks not installed")
        super().setUpClass()

    @classmethod
    def provision(cls, d):
        d.provision_example()
        d.ctl("tenant", "add", "fresh.example")
        d.add_mailbox("carol@fresh.example")

    def swaks(self, *args, port=None, user="alice@example.com", password=PASSWORD):
        argv = ["swaks", "--server", "127.0.0.1:%d" % (port or self.daemon.starttls_port),
                "--helo", "swaks.test", "--from", "alice@example.com", "--to", "r@example.net",
                "--timeout", "20"]
        if user:
            argv += ["-au", user, "-ap", password]
        return run(argv + list(args))

    def assertSwaksQueued(self, status, out):
        self.assertEqual(status, 0, out)
        m = QUEUED_IN_TRANSCRIPT.search(out)
        self.assertIsNotNone(m, out)
        qid = m.group(1)
        self.assertIn(qid, self.daemon.queue_ids())
        env, stored = self.daemon.read_queue_file(qid)
        self.assertIn(b"ESMTPSA", stored.split(b"\r\n\r\n", 1)[0])
        self.assertIn(b"X-Swaks-Test: yes", stored)
        return qid

    def test_starttls_auth_plain(self):
        status, out = self.swaks("--tls", "-a", "PLAIN", "--add-header", "X-Swaks-Test: yes")
        self.assertSwaksQueued(status, out)

    def test_starttls_auth_login(self):
        status, out = self.swaks("--tls", "-a", "LOGIN", "--add-header", "X-Swaks-Test: yes")
        self.assertSwaksQueued(status, out)

    def test_implicit_tls(self):
        status, out = self.swaks("--tls-on-connect", "-a", "PLAIN", "--add-header",
                                 "X-Swaks-Test: yes", port=self.daemon.tls_port)
        self.assertSwaksQueued(status, out)

    def test_wrong_password(self):
        status, out = self.swaks("--tls", "-a", "LOGIN", password="wrong")
        self.assertNotEqual(status, 0, out)
        self.assertIn("535 5.7.3 Authentication unsuccessful [localhost ", out)

    def test_tenant_without_smtp_auth(self):
        status, out = self.swaks("--tls", "-a", "PLAIN", user="carol@fresh.example")
        self.assertNotEqual(status, 0, out)
        self.assertIn("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                      "disabled for the Tenant. [localhost ", out)

    def test_no_auth(self):
        status, out = self.swaks("--tls", user=None)
        self.assertNotEqual(status, 0, out)
        self.assertIn("530 5.7.57 Client not authenticated to send mail. [localhost ", out)

    def test_pipelining_client(self):
        status, out = self.swaks("--tls", "-a", "PLAIN", "--pipeline", "--add-header",
                                 "X-Swaks-Test: yes")
        self.assertSwaksQueued(status, out)


class CurlTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        if shutil.which("curl") is None:
            raise unittest.SkipTest("curl not installed")
        super().setUpClass()

    def curl(self, url, msg, *extra, password=PASSWORD):
        path = os.path.join(self.daemon.dir, "curl-message.eml")
        with open(path, "wb") as f:
            f.write(msg)
        return run(["curl", "-sS", "-v", url, "-k", "--max-time", "20",
                    "--user", "alice@example.com:" + password,
                    "--mail-from", "alice@example.com", "--mail-rcpt", "r@example.net",
                    "-T", path] + list(extra))

    def assertCurlQueued(self, status, out, msg):
        self.assertEqual(status, 0, out)
        m = QUEUED_IN_TRANSCRIPT.search(out)
        self.assertIsNotNone(m, out)
        self.assertStoredExactly(m.group(1), msg)

    def test_smtp_ssl_reqd(self):
        msg = message(subject="curl starttls", body=b"via curl\r\n.leading dot\r\n")
        status, out = self.curl("smtp://127.0.0.1:%d" % self.daemon.starttls_port, msg,
                                "--ssl-reqd")
        self.assertCurlQueued(status, out, msg)

    def test_smtp_ssl_reqd_auth_plain(self):
        msg = message(subject="curl plain")
        status, out = self.curl("smtp://127.0.0.1:%d" % self.daemon.starttls_port, msg,
                                "--ssl-reqd", "--login-options", "AUTH=PLAIN")
        self.assertCurlQueued(status, out, msg)

    def test_smtps(self):
        msg = message(subject="curl smtps")
        status, out = self.curl("smtps://127.0.0.1:%d" % self.daemon.tls_port, msg,
                                "--login-options", "AUTH=LOGIN")
        self.assertCurlQueued(status, out, msg)

    def test_wrong_password(self):
        before = self.daemon.queue_ids()
        status, out = self.curl("smtps://127.0.0.1:%d" % self.daemon.tls_port, message(),
                                password="wrong")
        self.assertEqual(status, 67, out)  # CURLE_LOGIN_DENIED
        self.assertIn("535 5.7.3 Authentication unsuccessful [localhost ", out)
        self.assertEqual(self.daemon.queue_ids(), before)
