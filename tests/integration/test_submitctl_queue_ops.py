"""test_submitctl_queue_ops.py: `submitctl queue flush|hold|release|delete|log` (issue 4,
docs/submitctl.md "Flush, hold, release, delete" and "Delivery log").

Without a server: flush exits 1 ("submitd is not running"), also with a stale control.sock left
behind; hold/release/delete of an unknown id exit 1, a malformed id 2; `queue log` of an id with
no event prints nothing and exits 0 (`[]` with --json). With a running server (no delivery route:
messages stay queued, deferred): hold moves the file to spool/hold/, release moves it back,
delete removes it, each answered by the server over its control socket and logged in the
delivery log, found by queue id and by the submission's reference; flush answers ok. With the
server stopped: hold/release/delete act on the spool directly and log their events, which
`queue log` shows after a restart too.

Environment: SUBMITD_BUILD (directory holding submitd and submitctl, default ./build). Python
standard library only.
"""

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from .harness import DaemonTestCase, SUBMITCTL, SANITIZER_MARKERS, message

TIMEOUT = 30
UNKNOWN = "0123456789ABCDEF"


def run_ctl(datadir, *args):
    argv = [SUBMITCTL, "-d", datadir] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    out, err = r.stdout.decode(), r.stderr.decode()
    for marker in SANITIZER_MARKERS:
        if marker in err:
            raise AssertionError("submitctl %s: %s" % (" ".join(args), err))
    return r.returncode, out, err


class QueueOpsWithoutServer(unittest.TestCase):
    def setUp(self):
        if not os.access(SUBMITCTL, os.X_OK):
            self.fail("%s is not built" % SUBMITCTL)
        self.dir = tempfile.mkdtemp(prefix="submitctl-qops-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_flush_says_not_running(self):
        for args in (("queue", "flush"), ("queue", "flush", UNKNOWN)):
            rc, out, err = run_ctl(self.dir, *args)
            self.assertEqual(rc, 1, err)
            self.assertIn("submitd is not running", err)
            self.assertEqual(out, "")
            self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_flush_with_stale_socket(self):
        path = os.path.join(self.dir, "control.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens: ECONNREFUSED
        rc, out, err = run_ctl(self.dir, "queue", "flush")
        self.assertEqual(rc, 1, err)
        self.assertIn("submitd is not running", err)

    def test_unknown_id(self):
        for op in ("hold", "release", "delete"):
            rc, out, err = run_ctl(self.dir, "queue", op, UNKNOWN)
            self.assertEqual(rc, 1, "%s: %s" % (op, err))
            self.assertIn("cannot %s %s" % (op, UNKNOWN), err)
            self.assertEqual(out, "")
        # nothing was logged for them
        rc, out, err = run_ctl(self.dir, "queue", "log", UNKNOWN)
        self.assertEqual((rc, out), (0, ""), err)

    def test_malformed_id(self):
        for args in (("queue", "hold", "xyz"), ("queue", "release", "0123"),
                     ("queue", "delete", UNKNOWN + "0"), ("queue", "flush", "G123456789ABCDEF"),
                     ("queue", "log", "not-an-id"), ("queue", "hold"),
                     ("queue", "hold", UNKNOWN, UNKNOWN)):
            rc, out, err = run_ctl(self.dir, *args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))

    def test_log_of_unknown_id(self):
        rc, out, err = run_ctl(self.dir, "queue", "log", UNKNOWN)
        self.assertEqual((rc, out, err), (0, "", ""))
        rc, out, err = run_ctl(self.dir, "queue", "log", UNKNOWN, "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), [])

    def test_missing_datadir(self):
        rc, out, err = run_ctl(os.path.join(self.dir, "nope"), "queue", "hold", UNKNOWN)
        self.assertEqual(rc, 1, err)


class QueueOpsBase(DaemonTestCase):
    def queue_one(self):
        """Submits a message; returns (queue id, submission reference or None) once it is
        queued (living in the journal, docs/spool.md)."""
        c = self.login()
        qid = self.assertQueued(self.send_message(c, message()))
        c.quit()
        self.wait_for(lambda: qid in self.daemon.queue_ids(), "queued %s" % qid)
        return qid, self.submission_ref(qid)

    def submission_ref(self, qid):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = self.daemon.ctl("submissions", "--json", check=False)
            if r.returncode == 0:
                for e in json.loads(r.stdout.decode()):
                    if e.get("queue_id") == qid and e.get("accepted") and e.get("ref"):
                        return e["ref"]
            time.sleep(0.1)
        return None

    def path(self, sub, qid):
        return os.path.join(self.daemon.dir, "spool", sub, qid)

    def wait_for(self, cond, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def ctl(self, *args):
        r = self.daemon.ctl(*args, check=False)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def log_actions(self, key, want, timeout=10.0):
        """The actions of `queue log KEY --json` once they end with `want` (the server writes
        its log in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            rc, out, err = self.ctl("queue", "log", key, "--json")
            self.assertEqual(rc, 0, err)
            events = json.loads(out)
            actions = [e["action"] for e in events if e["rcpt"] == ""]
            if actions[-len(want):] == want or time.monotonic() > deadline:
                return events, actions
            time.sleep(0.1)


class QueueOpsWithServer(QueueOpsBase):
    def test_control_socket_mode(self):
        st = os.stat(os.path.join(self.daemon.dir, "control.sock"))
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

    def test_hold_release_delete(self):
        qid, ref = self.queue_one()
        rc, out, err = self.ctl("queue", "hold", qid)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "held " + qid)
        self.assertTrue(os.path.exists(self.path("hold", qid)))
        self.assertFalse(os.path.exists(self.path("queue", qid)))
        # held twice, flushed while held: refused by the server
        rc, out, err = self.ctl("queue", "hold", qid)
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot hold " + qid, err)
        rc, out, err = self.ctl("queue", "flush", qid)
        self.assertEqual(rc, 1, out)
        self.assertIn("held", err)

        rc, out, err = self.ctl("queue", "release", qid.lower())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "released " + qid)
        self.assertTrue(os.path.exists(self.path("queue", qid)))
        self.assertFalse(os.path.exists(self.path("hold", qid)))
        rc, out, err = self.ctl("queue", "release", qid)
        self.assertEqual(rc, 1, out)

        rc, out, err = self.ctl("queue", "flush", qid)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.ctl("queue", "flush")
        self.assertEqual(rc, 0, err)

        rc, out, err = self.ctl("queue", "delete", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted " + qid, out)
        self.wait_for(lambda: not os.path.exists(self.path("queue", qid)), "removal")
        self.assertFalse(os.path.exists(self.path("hold", qid)))
        rc, out, err = self.ctl("queue", "delete", qid)
        self.assertEqual(rc, 1, out)

        events, actions = self.log_actions(qid, ["held", "released", "deleted"])
        self.assertEqual(actions, ["held", "released", "deleted"], events)
        for e in events:
            self.assertEqual(e["queue_id"], qid)
        if ref is not None:  # the accepted submission's reference finds the same events
            by_ref, _ = self.log_actions(ref, ["deleted"])
            self.assertEqual(by_ref, events)
        rc, out, err = self.ctl("queue", "log", qid)
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("TIME"), out)
        held = [l for l in lines if " held " in l]
        self.assertEqual(len(held), 1, out)
        self.assertIn(qid, held[0])
        self.assertIn("by submitctl", held[0])

    def test_unknown_id_refused_by_server(self):
        for op in ("hold", "release", "delete", "flush"):
            rc, out, err = self.ctl("queue", op, UNKNOWN)
            self.assertEqual(rc, 1, "%s: %s" % (op, out))
            self.assertEqual(len(err.strip().splitlines()), 1, err)


class QueueOpsServerStopped(QueueOpsBase):
    def test_offline_hold_release_delete(self):
        qid, ref = self.queue_one()
        keep, _ = self.queue_one()
        status = self.daemon.stop()
        self.assertEqual(status, 0)
        try:
            self.assertFalse(os.path.exists(os.path.join(self.daemon.dir, "control.sock")))
            rc, out, err = self.ctl("queue", "flush")
            self.assertEqual(rc, 1)
            self.assertIn("submitd is not running", err)

            # it lives in the journal: submitctl locks the data directory and moves it out
            self.assertIn(qid, self.daemon.journal_records())
            rc, out, err = self.ctl("queue", "hold", qid)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out.strip(), "held " + qid)
            self.assertTrue(os.path.exists(self.path("hold", qid)))
            self.assertFalse(os.path.exists(self.path("queue", qid)))
            self.assertNotIn(qid, self.daemon.journal_records())
            rc, out, err = self.ctl("queue", "hold", qid)
            self.assertEqual(rc, 1)
            self.assertIn("already held", err)

            rc, out, err = self.ctl("queue", "release", qid)
            self.assertEqual(rc, 0, err)
            self.assertTrue(os.path.exists(self.path("queue", qid)))
            self.assertFalse(os.path.exists(self.path("hold", qid)))

            rc, out, err = self.ctl("queue", "hold", qid)
            self.assertEqual(rc, 0, err)
            rc, out, err = self.ctl("queue", "delete", qid)  # deleted while held
            self.assertEqual(rc, 0, err)
            self.assertFalse(os.path.exists(self.path("hold", qid)))
            self.assertFalse(os.path.exists(self.path("queue", qid)))
            self.assertFalse(os.path.exists(self.path("state", qid)))
            rc, out, err = self.ctl("queue", "release", qid)
            self.assertEqual(rc, 1)

            rc, out, err = self.ctl("queue", "log", qid, "--json")
            self.assertEqual(rc, 0, err)
            events = json.loads(out)
            actions = [e["action"] for e in events if e["rcpt"] == ""]
            self.assertEqual(actions, ["held", "released", "held", "deleted"], events)
            if ref is not None:
                self.assertTrue(all(e["ref"] == ref for e in events if e["rcpt"] == ""), events)
                rc, out, err = self.ctl("queue", "log", ref, "--json")
                self.assertEqual(json.loads(out), events)
            self.assertIn(keep, self.daemon.queue_ids())
            self.assertNotIn(qid, self.daemon.queue_ids())
        finally:
            self.daemon.start()
            # SIGTERM before "ready" would kill it (the class stops it at the end): wait for it
            self.wait_for(lambda: self.daemon.log().count("event=ready") >= 2, "event=ready")
        # the server starts with the deleted message gone and the other one kept
        self.assertFalse(os.path.exists(self.path("queue", qid)))
        rc, out, err = self.ctl("queue", "hold", keep)
        self.assertEqual(rc, 0, err)  # through the server again
        rc, out, err = self.ctl("queue", "delete", keep)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
