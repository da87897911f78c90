"""test_crash.py: crash safety of the spool (SPEC section 7, docs/spool.md, issue 6 hardening 5).

submitd is killed with SIGKILL many times while several clients submit continuously, and
restarted on the same data directory each time. Checked after every restart: spool/tmp is empty
and every message answered `250 2.0.0 OK <id>` so far is queued (living in the journal, or a
file in spool/queue). Checked at the end, on disk: every message that got 250 is queued exactly
once, under the id of its 250, intact (the Received: field and then the client's message byte
for byte); every queued message is well formed (line 1 `SUBMITD-QUEUE 1`, line 2 the JSON
envelope naming it); and a queued message
without a 250 is one whose end of data had been handed to the kernel when the server was killed
(SMTP delivers at least once: at most one such message per client per kill). A message whose
end-of-data dot never left the client must not be queued.

SIGKILL cannot test the fsyncs (the page cache survives a process), but it does test the order:
250 only after the message is in the journal or renamed into queue/, nothing partial ever in
queue/, the journal indexed again and tmp/ cleaned at start.
"""

import json
import os
import random
import re
import threading
import time
import unittest

from .harness import (PASSWORD, QUEUED_RE, Daemon, SmtpError, Smtp, dot_stuff, split_received)

CLIENTS = 5
ROUNDS = 15
TIME_BUDGET = 40.0  # seconds for the kill rounds; fewer rounds when the build is slow
MIN_ROUNDS = 4
DOMAIN = "example.com"
ENVELOPE_KEYS = {
    "id": str, "received_ms": int, "sender": str, "rcpts": list, "auth_user": str,
    "tenant": str, "client_ip": str, "client_port": int, "helo": str, "session": str,
    "body": str, "smtputf8": bool,
}
# Body sizes: mostly small (many commits per batch), some large (writes under way at the kill).
SIZES = (100, 100, 1000, 4000, 4000, 20000, 70000, 250000)


def make_message(user, marker, size):
    """A message naming `marker` in its Message-ID, Subject and body; about `size` octets of
    body. Message-ID and Date are present, so the server adds no header field but Received:."""
    head = ("From: <%s>\r\nTo: <rcpt@example.net>\r\nSubject: crash test %s\r\n"
            "Message-ID: <%s@crash.test>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n"
            % (user, marker, marker)).encode()
    line = ("%s " % marker).encode() * 8 + b"\r\n"
    lines = [b"marker " + marker.encode() + b"\r\n"]
    # Lines starting with a dot exercise dot-stuffing across the kill too.
    lines += [(b"." if i % 7 == 0 else b"") + line for i in range(max(1, size // len(line)))]
    return head + b"".join(lines) + b"end " + marker.encode() + b"\r\n"


class Outcome:
    """What the client knows about one message."""

    def __init__(self, user, msg):
        self.user = user
        self.msg = msg
        # started | sent (the dot is in the kernel's hands) | 250 | refused | ambiguous (sent,
        # then the server was killed before its reply) | unsent (killed before the dot left)
        self.state = "started"
        self.queue_id = None
        self.reply = None
        self.kill_round = None


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.passed = False
        self.addCleanup(self._cleanup)
        self.daemon.start()
        ctl = self.daemon.ctl
        self.daemon.provision_example()
        # SPEC 4's per-mailbox limits (30 messages a minute) are not under test here.
        ctl("tenant", "set", DOMAIN, "messages-per-minute", "1000000")
        ctl("tenant", "set", DOMAIN, "recipients-per-day", "1000000")
        self.users = ["crash%d@%s" % (i, DOMAIN) for i in range(CLIENTS)]
        for u in self.users:  # one mailbox per client: at most 3 sessions per mailbox (SPEC 4)
            self.daemon.add_mailbox(u)

        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.go = threading.Event()  # clients may connect
        self.stop = threading.Event()
        self.parked = 0  # clients outside a session, waiting for `go`
        self.kill_round = 0  # number of the last kill
        self.outcomes = {}  # marker -> Outcome
        self.unexpected = []  # replies no client should ever get
        self.connect_failures = 0

    def _cleanup(self):
        self.stop.set()
        self.go.set()
        self.daemon.kill()
        self.daemon.cleanup(keep=not self.passed)  # kept for a look when the test failed

    # --- the clients ---
    def client(self, idx):
        user = self.users[idx]
        rng = random.Random(idx * 7919 + int(time.time()))
        seq = 0
        for _ in range(100000):  # bounded; ends on `stop`
            with self.cond:
                self.parked += 1
                self.cond.notify_all()
            while not self.go.wait(0.05):
                if self.stop.is_set():
                    break
            with self.cond:
                self.parked -= 1
            if self.stop.is_set():
                return
            try:
                c = Smtp(self.daemon.cleartext_port, timeout=8, greet=False)
            except (OSError, EOFError, SmtpError):
                with self.lock:
                    self.connect_failures += 1
                time.sleep(0.02)
                continue
            current = None
            try:
                if c.reply().code != 220 or c.ehlo().code != 250:
                    raise SmtpError("EHLO refused")
                r = c.auth_plain(user, PASSWORD)
                if r.code != 235:
                    self.note_unexpected(user, "AUTH", r)
                    continue
                while not self.stop.is_set() and self.go.is_set():
                    seq += 1
                    marker = "M%02d%06d%s" % (idx, seq, os.urandom(4).hex())
                    current = Outcome(user, make_message(user, marker, rng.choice(SIZES)))
                    with self.lock:
                        self.outcomes[marker] = current
                    self.submit(c, current)
                    current = None
            except (OSError, EOFError, SmtpError):
                # The daemon was killed (nothing else closes these sessions).
                if current is not None:
                    with self.lock:
                        current.kill_round = self.kill_round
                        current.state = "ambiguous" if current.state == "sent" else "unsent"
            finally:
                c.close()

    def submit(self, c, o):
        for line, want in (("MAIL FROM:<%s>" % o.user, 250), ("RCPT TO:<rcpt@example.net>", 250),
                           ("DATA", 354)):
            r = c.cmd(line)
            if r.code != want:
                self.note_unexpected(o.user, line, r)
                o.state = "refused"
                c.cmd("RSET")
                return
        c.send(dot_stuff(o.msg))
        o.state = "sent"  # the terminating dot is in the kernel's hands now
        r = c.reply()
        o.reply = r.line
        m = QUEUED_RE.match(r.line)
        if m:
            o.queue_id = m.group("id")
            o.state = "250"
        else:
            o.state = "refused"
            self.note_unexpected(o.user, "end of data", r)

    def note_unexpected(self, user, what, reply):
        with self.lock:
            self.unexpected.append("%s: %s answered %r" % (user, what, reply))

    # --- the test ---
    def kill_and_restart(self, rnd):
        d = self.daemon
        if not d.alive():
            self.fail("submitd died on its own before kill %d (status %s)\n%s"
                      % (rnd, d.proc.returncode, d.log_tail()))
        with self.lock:
            self.kill_round = rnd
        d.proc.kill()  # SIGKILL
        d.proc.wait(5)
        self.assertEqual(d.proc.returncode, -9, "submitd did not die of SIGKILL")
        self.go.clear()
        d.kill()  # closes the log file
        deadline = time.monotonic() + 10
        with self.cond:
            while self.parked < CLIENTS:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "clients did not notice the kill within 10 s")
                self.cond.wait(left)
        leftovers = d.tmp_files()
        self.start_serving()
        self.assertEqual(d.tmp_files(), [], "spool/tmp not emptied at start after kill %d" % rnd)
        queued = d.queue_ids()
        with self.lock:
            lost = [(m, o.queue_id) for m, o in self.outcomes.items()
                    if o.state == "250" and o.queue_id not in queued]
        self.assertEqual(lost, [], "messages answered 250 missing after kill %d" % rnd)
        self.go.set()
        return len(leftovers)

    def start_serving(self):
        """Starts the daemon and waits for a greeting: submitd listens before it opens the spool
        (and empties tmp/), but greets only once it serves."""
        self.daemon.start()
        Smtp(self.daemon.cleartext_port).quit()

    def test_kill_9_while_clients_submit(self):
        threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        self.go.set()
        rng = random.Random()
        started = time.monotonic()
        rounds = 0
        rounds_with_tmp_files = 0
        try:
            for rnd in range(1, ROUNDS + 1):
                time.sleep(rng.uniform(0.25, 1.5))
                if self.kill_and_restart(rnd):
                    rounds_with_tmp_files += 1
                rounds = rnd
                if time.monotonic() - started > TIME_BUDGET:
                    break
            time.sleep(0.5)
        finally:
            self.stop.set()
            self.go.set()
            for t in threads:
                t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads), "a client thread did not end")
        self.assertGreaterEqual(rounds, MIN_ROUNDS)
        d = self.daemon
        problem = d.health_problem()
        self.assertIsNone(problem)
        status = d.stop()
        self.assertEqual(status, 0, "submitd exited %s on SIGTERM\n%s" % (status, d.log_tail()))
        self.assertIsNone(d.sanitizer_report())
        self.assertEqual(self.unexpected, [], "unexpected replies")

        # A clean start on what is left must also find nothing in tmp/ and list every file.
        self.start_serving()
        self.assertEqual(d.tmp_files(), [])
        listed = d.ctl_json("queue", "list")
        self.assertEqual(d.stop(), 0)

        files = self.read_queue()
        self.assertEqual(len(listed), len(files), "`submitctl queue list` skips queue files")
        by_marker = {}
        for qid, (env, stored) in files.items():
            self.assertEqual(env["id"], qid)
            received, rest = split_received(stored)
            self.assertIn(b" with ESMTPA ", received)  # cleartext listener
            self.assertTrue(rest.startswith(b"From: <"), rest[:80])
            marker = rest.split(b"Subject: crash test ", 1)[1].split(b"\r\n", 1)[0].decode()
            by_marker.setdefault(marker, []).append(qid)
            o = self.outcomes.get(marker)
            self.assertIsNotNone(o, "queue file %s holds a message no client sent" % qid)
            self.assertEqual(rest, o.msg, "queue file %s (%s) is not the message sent"
                             % (qid, marker))
            self.assertEqual(env["auth_user"], o.user)
            self.assertEqual(env["rcpts"], ["rcpt@example.net"])
        dups = {m: q for m, q in by_marker.items() if len(q) > 1}
        self.assertEqual(dups, {}, "messages queued more than once")

        counts = {}
        extra_per_round = {}
        for marker, o in self.outcomes.items():
            counts[o.state] = counts.get(o.state, 0) + 1
            queued = by_marker.get(marker, [])
            if o.state == "250":
                self.assertEqual(queued, [o.queue_id],
                                 "%s got %r but the queue holds %s" % (marker, o.reply, queued))
            elif o.state == "ambiguous":
                if queued:
                    extra_per_round[o.kill_round] = extra_per_round.get(o.kill_round, 0) + 1
            elif o.state in ("unsent", "refused"):
                self.assertEqual(queued, [], "%s (%s, reply %r) was queued"
                                 % (marker, o.state, o.reply))
            else:  # a thread still held it when it stopped: no kill was involved
                self.assertIn(o.state, ("started", "sent"))
                self.assertLessEqual(len(queued), 1)
        for rnd, n in extra_per_round.items():
            self.assertLessEqual(n, CLIENTS, "round %d: %d messages queued without 250" % (rnd, n))
        self.assertGreaterEqual(counts.get("250", 0), 5 * rounds, counts)
        replayed = sum(int(n) for n in re.findall(r"event=spool-journal messages=(\d+)",
                                                  self.daemon.log()))
        print("\n  crash: %d kills in %.1f s, %s; %d queued without 250 (in flight at the kill); "
              "tmp/ held files at %d kills; %d messages found in the journal at restarts; %d refused "
              "connections while restarting"
              % (rounds, time.monotonic() - started, counts, sum(extra_per_round.values()),
                 rounds_with_tmp_files, replayed, self.connect_failures), end=" ", flush=True)
        self.passed = True

    def read_queue(self):
        """{id: (envelope, message)} of every queued message, living in the journal or a file in
        spool/queue, each checked for the format of docs/spool.md: none is truncated or
        unparseable."""
        qdir = self.daemon.queue_dir()
        journal = self.daemon.journal_records()
        files = {}
        for name in sorted(set(os.listdir(qdir)) | set(journal)):
            data = journal.get(name)
            if data is None:
                with open(os.path.join(qdir, name), "rb") as f:
                    data = f.read()
            self.assertRegex(name, r"^[0-9A-F]{16}$", "stray file in spool/queue")
            first, sep, rest = data.partition(b"\n")
            self.assertIn(first, (b"SUBMITD-QUEUE 1", b"SUBMITD-QUEUE 2"), "%s line 1" % name)
            self.assertEqual(sep, b"\n", "%s line 1" % name)
            env_line, sep, msg = rest.partition(b"\n")
            self.assertEqual(sep, b"\n", "%s has no complete envelope line" % name)
            env = json.loads(env_line.decode("utf-8"))
            for key, kind in ENVELOPE_KEYS.items():
                self.assertIsInstance(env.get(key), kind, "%s envelope key %s" % (name, key))
            self.assertTrue(msg.endswith(b"\r\n"), "%s is truncated" % name)
            files[name] = (env, msg)
        return files


if __name__ == "__main__":
    unittest.main()
