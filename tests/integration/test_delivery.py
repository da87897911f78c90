"""test_delivery.py: delivery of the queue (issue 4, docs/delivery.md) against real next hops on
loopback: Postfix's smtp-sink as the smarthost (accepting, deferring with 4xx, refusing with
5xx), a private Dovecot LMTP server (per-recipient replies; the bounce notice delivered to the
sender's own mailbox and read back), and Maildir directories checked byte for byte. Checks the
per-recipient outcomes, the delivery log (`submitctl queue log` by queue id and by the
submission's reference), retries after `queue flush`, hold/release/delete through the control
socket, and that a message leaves the queue once every recipient is final."""

import email
import json
import os
import shutil
import tempfile
import time
import unittest

from .delivery_peers import DovecotLmtp, SmtpSink
from .harness import DaemonTestCase, QUEUED_RE, message

WAIT = 30.0
# Short retries so a deferred message comes back within the test.
FAST = ("retry-min = 1", "retry-max = 2", "delivery-threads = 4")


def wait_for(pred, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


class DeliveryCase(DaemonTestCase):
    CONF = FAST

    def submit(self, msg, rcpts=("rcpt@example.net",)):
        c = self.login()
        r = self.send_message(c, msg, rcpts=rcpts)
        m = QUEUED_RE.match(r.line)
        self.assertIsNotNone(m, r.line)
        c.quit()
        return m.group("id")

    def log_of(self, key):
        return self.daemon.ctl_json("queue", "log", key)

    def wait_action(self, qid, action, n=1):
        return wait_for(lambda: [e for e in self.log_of(qid) if e.get("action") == action]
                        if len([e for e in self.log_of(qid) if e.get("action") == action]) >= n
                        else None, what="%d '%s' events for %s" % (n, action, qid))

    def wait_gone(self, qid):
        wait_for(lambda: qid not in self.daemon.queue_ids(), what="%s to leave the queue" % qid)

    def route(self, *args, input=None):
        self.daemon.ctl("tenant", "route", "example.com", *args, input=input)


class RelayToSmtpSinkTest(DeliveryCase):
    # Retries far away: a deferred message comes back only when flushed or released, so those
    # are what the tests see working (not a retry that happened to come first).
    CONF = ("retry-min = 600", "retry-max = 3600", "delivery-threads = 4")

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink(["-a"])  # no AUTH offered (smtp-sink accepts any AUTH blindly)
        cls.sink.start()
        super().setUpClass()
        cls.daemon.ctl("tenant", "route", "example.com", "relay",
                       "127.0.0.1:%d" % cls.sink.port, "--tls", "none")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sink.cleanup()

    def setUp(self):
        super().setUp()
        if self.sink.proc is None or self.sink.flags != ["-a"]:
            self.sink.restart(["-a"])

    def test_relayed_byte_exact_and_removed(self):
        before = len(self.sink.transactions())
        body = b"Line one.\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n"
        msg = message(subject="relay me", body=body)
        qid = self.submit(msg, rcpts=("rcpt@example.net", "other@example.org"))
        # Received: + the message, as queued (the relay may have delivered it already)
        queued = self.daemon.read_queue_file(qid, delivered_too=True)[1]
        stored = self.sink.wait_transactions(before + 1)[-1]
        head, data = stored
        self.assertEqual(head["X-Mail-Args"][0].split()[0], "<alice@example.com>")
        self.assertEqual([a.split()[0] for a in head["X-Rcpt-Args"]],
                         ["<rcpt@example.net>", "<other@example.org>"])
        # smtp-sink stores LF line ends, dots removed, plus one empty line
        self.assertEqual(data, queued.replace(b"\r\n", b"\n") + b"\n")
        self.wait_gone(qid)
        # what the read above relies on when the relay is faster than the test
        self.assertEqual(self.daemon.read_queue_file(qid, delivered_too=True)[1], queued)
        events = self.wait_action(qid, "delivered", 2)
        self.assertEqual(sorted(e["rcpt"] for e in events),
                         ["other@example.org", "rcpt@example.net"])
        for e in events:
            self.assertEqual(e["route"], "relay")
            self.assertEqual(e["reply_code"], 250)
            self.assertIn("127.0.0.1", e["remote"])
        # the same log by the submission's reference
        ref = events[0]["ref"]
        self.assertRegex(ref, r"^[0-9A-F]{16}$")
        self.assertEqual({e["queue_id"] for e in self.log_of(ref)}, {qid})

    def test_deferred_then_flushed(self):
        self.sink.restart(["-a", "-r", "RCPT"])  # 450 4.3.0 to every RCPT
        qid = self.submit(message(subject="try again"))
        ev = self.wait_action(qid, "deferred")[0]
        self.assertEqual(ev["reply_code"], 450)
        self.assertIn(qid, self.daemon.queue_ids())
        shown = self.daemon.ctl_json("queue", "show", qid)[0]
        self.assertIn("deferred", json.dumps(shown))
        before = len(self.sink.transactions())
        self.sink.restart(["-a"])
        out = self.daemon.ctl("queue", "flush", qid).stdout.decode()
        self.assertIn(qid, out)
        self.sink.wait_transactions(before + 1)
        self.wait_gone(qid)
        self.wait_action(qid, "delivered")

    def test_refused_bounces_once(self):
        self.sink.restart(["-a", "-f", "RCPT", "-B", "550 5.1.1 no such user here"])
        qid = self.submit(message(subject="nobody home"))
        ev = self.wait_action(qid, "bounced")[0]
        self.assertEqual(ev["reply_code"], 550)
        self.assertEqual(ev["reply_enhanced"], "5.1.1")
        dsn = self.wait_action(qid, "dsn")[0]
        self.assertRegex(dsn["dsn_queue_id"], r"^[0-9A-F]{16}$")
        self.wait_gone(qid)
        # the notice itself is refused by the same sink: a notice about a notice is never sent
        dsn_id = dsn["dsn_queue_id"]
        self.wait_action(dsn_id, "bounced")
        self.wait_gone(dsn_id)
        time.sleep(0.5)
        self.assertEqual([e for e in self.log_of(dsn_id) if e["action"] == "dsn"], [])

    def test_hold_release_delete(self):
        self.sink.restart(["-a", "-r", "RCPT"])
        qid = self.submit(message(subject="hold me"))
        self.wait_action(qid, "deferred")
        self.daemon.ctl("queue", "hold", qid)
        self.assertTrue(os.path.exists(os.path.join(self.daemon.dir, "spool", "hold", qid)))
        self.sink.restart(["-a"])
        before = len(self.sink.transactions())
        self.daemon.ctl("queue", "flush")
        time.sleep(1.5)
        self.assertEqual(len(self.sink.transactions()), before, "a held message was delivered")
        self.daemon.ctl("queue", "release", qid)
        self.sink.wait_transactions(before + 1)
        self.wait_gone(qid)
        actions = [e["action"] for e in self.log_of(qid)]
        self.assertIn("held", actions)
        self.assertIn("released", actions)
        # delete: no delivery, no notice
        self.sink.restart(["-a", "-r", "RCPT"])
        qid2 = self.submit(message(subject="delete me"))
        self.wait_action(qid2, "deferred")
        self.daemon.ctl("queue", "delete", qid2)
        self.assertNotIn(qid2, self.daemon.queue_ids())
        self.assertIn("deleted", [e["action"] for e in self.log_of(qid2)])
        r = self.daemon.ctl("queue", "delete", qid2, check=False)
        self.assertEqual(r.returncode, 1)


class StopWhileRelayingTest(DeliveryCase):
    """SIGTERM while a delivery waits on a slow smarthost: the attempt is abandoned at once (the
    message stays queued and deferred, retried after the restart) instead of holding the stop
    for up to the 10 minutes RFC 5321 allows for the reply to the final dot."""

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink(["-a", "-w", "60"])  # 60 s before its reply to DATA
        cls.sink.start()
        super().setUpClass()
        cls.daemon.ctl("tenant", "route", "example.com", "relay",
                       "127.0.0.1:%d" % cls.sink.port, "--tls", "none")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sink.cleanup()

    def test_stop_abandons_the_attempt(self):
        qid = self.submit(message(subject="slow peer"))
        time.sleep(1.5)  # the attempt is now waiting for the sink's reply to DATA
        started = time.monotonic()
        status = self.daemon.stop()
        took = time.monotonic() - started
        self.assertEqual(status, 0)
        self.assertLess(took, 5.0, "the stop waited for the delivery")
        self.daemon.start()
        self.assertIn(qid, self.daemon.queue_ids())
        ev = self.wait_action(qid, "deferred")[0]
        self.assertIn("stopping", ev["reply_text"])


class NoRouteTest(DeliveryCase):
    def test_waits_without_route(self):
        qid = self.submit(message(subject="no route"))
        ev = self.wait_action(qid, "deferred")[0]
        self.assertEqual(ev["reply_enhanced"], "4.3.5")
        self.assertIn("no delivery route", ev["reply_text"])
        self.assertIn(qid, self.daemon.queue_ids())


class MaildirTest(DeliveryCase):
    def test_byte_exact_in_maildir(self):
        base = tempfile.mkdtemp(prefix="submitd-maildir-")
        self.addCleanup(shutil.rmtree, base, True)
        self.route("maildir", base + "/%d/%u/Maildir")
        msg = message(subject="to the maildir", body=b"one\r\n.two\r\n")
        qid = self.submit(msg, rcpts=("bob@example.net", "carol@example.net"))
        queued = self.daemon.read_queue_file(qid, delivered_too=True)[1]
        self.wait_gone(qid)
        for user in ("bob", "carol"):
            new = os.path.join(base, "example.net", user, "Maildir", "new")
            files = wait_for(lambda: os.listdir(new) if os.path.isdir(new) and os.listdir(new)
                             else None, what="a file in " + new)
            self.assertEqual(len(files), 1)
            with open(os.path.join(new, files[0]), "rb") as f:
                data = f.read()
            want = (b"Return-Path: <alice@example.com>\nDelivered-To: %s@example.net\n"
                    % user.encode()) + queued.replace(b"\r\n", b"\n")
            self.assertEqual(data, want)
            self.assertEqual(os.listdir(os.path.join(base, "example.net", user, "Maildir",
                                                     "tmp")), [])
        self.assertEqual(len(self.wait_action(qid, "delivered", 2)), 2)


class LmtpToDovecotTest(DeliveryCase):
    @classmethod
    def setUpClass(cls):
        cls.lmtp = DovecotLmtp(["bob@example.net", "alice@example.com"])
        cls.lmtp.start()
        super().setUpClass()
        cls.daemon.ctl("tenant", "route", "example.com", "lmtp", "127.0.0.1:%d" % cls.lmtp.port)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.lmtp.cleanup()

    def test_mixed_recipients_and_the_bounce_notice(self):
        msg = message(subject="lmtp mixed", body=b"hello over lmtp\r\n")
        qid = self.submit(msg, rcpts=("bob@example.net", "nosuchuser@example.net"))
        self.wait_gone(qid)
        events = {e["rcpt"]: e for e in self.log_of(qid) if e["rcpt"]}
        self.assertEqual(events["bob@example.net"]["action"], "delivered")
        self.assertEqual(events["nosuchuser@example.net"]["action"], "bounced")
        self.assertEqual(events["nosuchuser@example.net"]["reply_code"], 550)
        files = wait_for(lambda: self.lmtp.maildir_files("bob@example.net"), what="bob's mail")
        with open(files[0], "rb") as f:
            self.assertIn(b"hello over lmtp", f.read())
        # the notice went to alice (null sender), through the same route, into her Maildir
        notices = wait_for(lambda: self.lmtp.maildir_files("alice@example.com"),
                           what="the bounce notice in alice's Maildir\n" + self.lmtp.log_tail())
        with open(notices[0], "rb") as f:
            raw = f.read()
        dsn = email.message_from_bytes(raw)
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        self.assertEqual(dsn["Auto-Submitted"], "auto-replied")
        self.assertIn(b"Return-Path: <>", raw)
        parts = dsn.get_payload()
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        status = parts[1].as_string()
        self.assertIn("Final-Recipient: rfc822; nosuchuser@example.net", status)
        self.assertIn("Action: failed", status)
        self.assertIn("Status: 5.1.1", status)
        self.assertNotIn("bob@example.net", status)


if __name__ == "__main__":
    unittest.main()
