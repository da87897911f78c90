"""test_smtp_harness.py: the harness's own failure detection, which every other integration test
relies on: a sanitizer report or an unexpected exit of the daemon must be noticed, and the SMTP
client must read replies exactly."""

import socket
import subprocess
import threading
import unittest

from .harness import (PASSWORD, Daemon, Reply, Smtp, SmtpError, dot_stuff, plain_response,
                      split_reference)


class HarnessTest(unittest.TestCase):

    def fake_daemon(self, script):
        """A Daemon object whose 'submitd' is a shell script (nothing listens)."""
        d = Daemon()
        self.addCleanup(d.cleanup)
        self.addCleanup(d.kill)
        d.log_file = open(d.log_path, "ab")
        d.proc = subprocess.Popen(["sh", "-c", script], stdout=d.log_file, stderr=d.log_file)
        return d

    def test_detects_sanitizer_reports(self):
        for line in ("==12==ERROR: AddressSanitizer: heap-use-after-free on address 0x1",
                     "src/session.c:10:5: runtime error: signed integer overflow",
                     "==12==ERROR: LeakSanitizer: detected memory leaks"):
            with self.subTest(line):
                d = self.fake_daemon("echo '%s' >&2; exec sleep 30" % line)
                for _ in range(100):
                    if d.sanitizer_report():
                        break
                    d.proc.poll()
                    threading.Event().wait(0.02)
                self.assertIn(line.split(": ")[0], d.sanitizer_report() or "")
                self.assertIn("sanitizer", d.health_problem())
                self.assertEqual(d.stop(), -15)

    def test_detects_an_unexpected_exit(self):
        d = self.fake_daemon("echo bye >&2; exit 3")
        d.proc.wait(10)
        self.assertIn("exited unexpectedly with status 3", d.health_problem())
        self.assertIsNone(d.sanitizer_report())

    def test_clean_log_is_healthy(self):
        d = self.fake_daemon("echo 'event=ready' >&2; exec sleep 30")
        self.assertIsNone(d.health_problem())
        self.assertEqual(d.stop(), -15)

    def test_detects_secrets_in_logs(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        self.assertEqual(d.secret_leaks(), [])
        with open(d.log_path, "w") as f:
            f.write("event=auth payload=%s\n" % plain_response("alice@example.com", PASSWORD))
        self.assertEqual(d.secret_leaks(), ["submitd.stderr"])

    def test_reply_parsing_and_references(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        self.addCleanup(srv.close)

        def serve():
            conn, _ = srv.accept()
            conn.sendall(b"220 ready\r\n250-first\r\n250-second\r\n250 last\r\n500 bare LF\n")
            conn.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        c = Smtp(srv.getsockname()[1])
        self.addCleanup(c.close)
        self.assertEqual(c.greeting.line, "220 ready")
        r = c.reply()
        self.assertEqual(r.lines, ["250-first", "250-second", "250 last"])
        self.assertEqual(r.texts, ["first", "second", "last"])
        with self.assertRaises(SmtpError):
            c.reply()
        t.join(10)
        line = ("535 5.7.3 Authentication unsuccessful "
                "[localhost 2024-01-02T03:04:05.678Z 0123456789ABCDEF]")
        self.assertEqual(split_reference(line),
                         ("535 5.7.3 Authentication unsuccessful", "0123456789ABCDEF",
                          "2024-01-02T03:04:05.678Z"))
        self.assertEqual(split_reference("535 5.7.3 Authentication unsuccessful")[1], None)
        self.assertEqual(Reply(["221 2.0.0 Bye"]).code, 221)

    def test_dot_stuffing(self):
        self.assertEqual(dot_stuff(b"a\r\n.b\r\n.\r\n"), b"a\r\n..b\r\n..\r\n.\r\n")


if __name__ == "__main__":
    unittest.main()
