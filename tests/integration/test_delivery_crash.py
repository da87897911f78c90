"""test_delivery_crash.py: crash safety of delivery (issue 4): submitd relays to smtp-sink while
clients submit continuously and is killed with SIGKILL several times, restarted on the same
data directory each time. At the end (queue drained): every message that got `250` was
delivered at least once; a message was delivered twice only when it was in flight at a kill
(at most delivery-threads per kill); the queue is empty, with no state files, hold or journal
leftovers (every message removed exactly once)."""

import os
import re
import threading
import time
import unittest

from .delivery_peers import SmtpSink
from .harness import PASSWORD, QUEUED_RE, Daemon, Smtp, dot_stuff

CLIENTS = 4
KILLS = 6
THREADS = 4


class DeliveryCrashTest(unittest.TestCase):
    def setUp(self):
        self.sink = SmtpSink(["-a"])
        self.sink.start()
        self.addCleanup(self.sink.cleanup)
        self.daemon = Daemon(["retry-min = 1", "retry-max = 1",
                              "delivery-threads = %d" % THREADS])
        self.daemon.start()
        self.addCleanup(self.daemon.cleanup)
        self.addCleanup(self.daemon.kill)
        self.daemon.provision_example()
        # SPEC 4's default of 30 messages a minute per mailbox would be the bottleneck here
        self.daemon.ctl("tenant", "set", "example.com", "messages-per-minute", "1000000")
        self.daemon.ctl("tenant", "route", "example.com", "relay",
                        "127.0.0.1:%d" % self.sink.port, "--tls", "none")
        self.lock = threading.Lock()
        self.accepted = {}  # marker -> queue id
        self.stop = threading.Event()

    def client(self, n):
        i = 0
        while not self.stop.is_set():
            c = None
            try:
                c = Smtp(self.daemon.cleartext_port, timeout=5)
                c.ehlo()
                if c.auth_plain("alice@example.com", PASSWORD).code != 235:
                    continue
                for _ in range(20):
                    if self.stop.is_set():
                        break
                    marker = "m-%d-%d" % (n, i)
                    i += 1
                    msg = ("From: alice@example.com\r\nTo: r@example.net\r\nSubject: %s\r\n\r\n"
                           "body of %s\r\n" % (marker, marker)).encode()
                    if c.cmd("MAIL FROM:<alice@example.com>").code != 250:
                        break
                    if c.cmd("RCPT TO:<r@example.net>").code != 250:
                        break
                    if c.cmd("DATA").code != 354:
                        break
                    c.send(dot_stuff(msg))
                    m = QUEUED_RE.match(c.reply().line)
                    if m:
                        with self.lock:
                            self.accepted[marker] = m.group("id")
            except Exception:
                time.sleep(0.05)  # killed under us: try again once it is back
            finally:
                if c is not None:
                    c.close()

    def test_kill_while_relaying(self):
        threads = [threading.Thread(target=self.client, args=(n,), daemon=True)
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for _ in range(KILLS):
            time.sleep(1.5)
            self.daemon.proc.kill()
            self.daemon.proc.wait(5)
            self.daemon.kill()
            self.daemon.start()
        time.sleep(1.0)
        self.stop.set()
        for t in threads:
            t.join(10)
        # drain: everything accepted leaves the queue
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.daemon.queue_ids():
            time.sleep(0.2)
        self.assertEqual(self.daemon.queue_ids(), set(), "queue not drained\n"
                         + self.daemon.log_tail())
        delivered = {}
        for head, data in self.sink.transactions():
            m = re.search(rb"Subject: (m-\d+-\d+)", data)
            if m:
                k = m.group(1).decode()
                delivered[k] = delivered.get(k, 0) + 1
        with self.lock:
            accepted = dict(self.accepted)
        self.assertGreater(len(accepted), 20, "too few messages to say anything")
        lost = [k for k in accepted if k not in delivered]
        self.assertEqual(lost, [], "accepted (250) but never delivered")
        twice = sum(n - 1 for n in delivered.values() if n > 1)
        self.assertLessEqual(twice, KILLS * THREADS, "more duplicates than deliveries in flight")
        spool = os.path.join(self.daemon.dir, "spool")
        for sub in ("state", "hold", "tmp"):
            left = os.listdir(os.path.join(spool, sub)) if os.path.isdir(
                os.path.join(spool, sub)) else []
            self.assertEqual(left, [], "left in spool/%s" % sub)
        print("\n  delivery crash: %d kills, %d accepted, %d delivered, %d duplicates"
              % (KILLS, len(accepted), sum(delivered.values()), twice), end=" ", flush=True)


if __name__ == "__main__":
    unittest.main()
