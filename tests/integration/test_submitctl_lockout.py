"""test_submitctl_lockout.py: `submitctl lockout list [--json]` and `submitctl lockout clear
ADDRESS|--all` (issue 6, smart lockout) run as a program.

The sign-in log is seeded by writing rows into DIR/log.db with sqlite3, in the schema that
src/eventlog.c creates (made here by running `submitctl signins` first, so the real schema is
used). Checks: which accounts are listed (credential failures at the default threshold of 10
within 15 minutes; policy denials, successes and old failures not counted), the fields of the
listing and of --json, clearing one account (case-insensitively) and every account, failures
after a clear counting again, the log itself left unedited, and the usage errors (exit 2) and
a missing data directory (exit 1).

Environment: SUBMITD_BUILD (directory holding submitctl, default ./build). Python standard
library only.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("SUBMITD_BUILD") or os.path.join(REPO, "build"))
SUBMITCTL = os.path.join(BUILD, "submitctl")
TIMEOUT = 30
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

ATTACKER = "198.51.100.66"
OTHER = "203.0.113.5"


class LockoutCtlCase(unittest.TestCase):
    def setUp(self):
        if not os.access(SUBMITCTL, os.X_OK):
            self.fail("%s is not built (SUBMITD_BUILD=%s)" % (SUBMITCTL, BUILD))
        self.dir = tempfile.mkdtemp(prefix="submitctl-lockout-it-")
        self.seq = 0

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_ctl(self, *args, datadir=None):
        argv = [SUBMITCTL, "-d", datadir or self.dir] + [str(a) for a in args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
        out, err = r.stdout.decode(), r.stderr.decode()
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, err, "submitctl %s: %s" % (" ".join(argv[3:]), err))
        return r.returncode, out, err

    def ok(self, *args):
        rc, out, err = self.run_ctl(*args)
        self.assertEqual(rc, 0, "submitctl %s: rc %d: %s%s" % (" ".join(args), rc, err, out))
        return out

    def usage(self, *args, datadir=None):
        rc, out, err = self.run_ctl(*args, datadir=datadir)
        self.assertEqual(rc, 2, "submitctl %s: expected 2, got %d: %s%s"
                         % (" ".join(args), rc, err, out))
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, "not one line on stderr: %r" % err)
        self.assertTrue(lines[0].startswith("submitctl: "), err)
        return err

    # --- the sign-in log ---

    def db(self):
        """The event log, created with its real schema by the event log module."""
        path = os.path.join(self.dir, "log.db")
        if not os.path.exists(path):
            self.ok("signins")
        con = sqlite3.connect(path, timeout=5)
        self.addCleanup(con.close)
        return con

    def signin(self, con, t_ms, user, ip, success=False, gate="credentials"):
        self.seq += 1
        con.execute(
            "INSERT INTO signins (time_ms, ref, session, client_ip, client_port, listener, tls,"
            " mech, user, tenant, success, gate, level, reply_code, reply_enhanced, reply_text,"
            " reason, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (t_ms, "REF%08d" % self.seq, "S%08d" % self.seq, ip, 40000 + self.seq,
             "submission", "TLSv1.3", "PLAIN", user, "example.com", 1 if success else 0, gate,
             "mailbox", 235 if success else 535, "2.7.0" if success else "5.7.139",
             "Authentication successful" if success else "Authentication unsuccessful",
             "" if success else "wrong password", ""))
        con.commit()

    def fail_n(self, con, n, t_ms, user, ip, gate="credentials"):
        for i in range(n):
            self.signin(con, t_ms + i, user, ip, gate=gate)

    def seed_attack(self):
        """alice 12 failures, bob 15 (newer), carol 9 (below), dave 20 old, erin 20 denials."""
        con = self.db()
        now = int(time.time() * 1000)
        self.fail_n(con, 11, now - 120000, "Alice@Example.com", ATTACKER)
        self.signin(con, now - 100000, "alice@example.com", "198.51.100.67")
        self.fail_n(con, 15, now - 60000, "bob@example.com", OTHER)
        self.fail_n(con, 9, now - 30000, "carol@example.com", OTHER)
        self.fail_n(con, 20, now - 3600 * 1000, "dave@example.com", OTHER)
        self.fail_n(con, 20, now - 20000, "erin@example.com", OTHER, gate="smtp-auth")
        for i in range(20):
            self.signin(con, now - 10000 + i, "frank@example.com", OTHER, success=True,
                        gate="none")
        return con, now

    def listed(self):
        out = self.ok("lockout", "list", "--json")
        return json.loads(out)

    # --- tests ---

    def test_list_empty(self):
        out = self.ok("lockout", "list")
        self.assertIn("no account is locked out", out)
        self.assertEqual(self.listed(), [])
        self.db()  # the log exists but holds nothing
        self.assertEqual(self.listed(), [])

    def test_list_shows_locked_accounts(self):
        con, now = self.seed_attack()
        entries = self.listed()
        self.assertEqual([e["account"] for e in entries], ["bob@example.com", "alice@example.com"])
        bob, alice = entries
        self.assertEqual(bob["failures"], 15)
        self.assertEqual(bob["last_address"], OTHER)
        self.assertEqual(alice["failures"], 12)
        self.assertEqual(alice["last_address"], "198.51.100.67")
        t = now - 100000
        self.assertEqual(alice["last_failure"],
                         time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000))
                         + ".%03dZ" % (t % 1000))
        self.assertEqual(set(alice), {"account", "failures", "last_failure", "last_address"})
        out = self.ok("lockout", "list")
        lines = out.strip().splitlines()
        self.assertEqual(lines[0].split()[:2], ["ACCOUNT", "FAILURES"])
        self.assertEqual(len(lines), 3, out)
        self.assertEqual(lines[1].split()[:2], ["bob@example.com", "15"])
        self.assertEqual(lines[2].split()[1], "12")
        self.assertEqual(lines[2].split()[-1], "198.51.100.67")
        for absent in ("carol", "dave", "erin", "frank"):
            self.assertNotIn(absent, out)

    def test_threshold_boundary(self):
        con = self.db()
        now = int(time.time() * 1000)
        self.fail_n(con, 9, now - 5000, "alice@example.com", ATTACKER)
        self.assertEqual(self.listed(), [])
        self.signin(con, now - 1000, "alice@example.com", ATTACKER)
        self.assertEqual([(e["account"], e["failures"]) for e in self.listed()],
                         [("alice@example.com", 10)])

    def test_clear_one_account(self):
        con, now = self.seed_attack()
        out = self.ok("lockout", "clear", "ALICE@example.com")
        self.assertIn("lockout cleared for ALICE@example.com", out)
        self.assertIn("12 recent failures forgotten", out)
        self.assertEqual([e["account"] for e in self.listed()], ["bob@example.com"])
        # a marker was recorded; the sign-in log itself is not edited
        self.assertEqual(con.execute("SELECT count(*) FROM signins").fetchone()[0], 96)
        self.assertEqual(con.execute("SELECT account FROM lockout_clears").fetchall(),
                         [("alice@example.com",)])
        # clearing again forgets nothing more, and still succeeds
        self.assertIn("(0 recent failures forgotten)", self.ok("lockout", "clear",
                                                               "alice@example.com"))
        # failures after the clear count again
        self.fail_n(con, 10, int(time.time() * 1000) + 1000, "alice@example.com", ATTACKER)
        self.assertEqual([(e["account"], e["failures"]) for e in self.listed()],
                         [("alice@example.com", 10), ("bob@example.com", 15)])

    def test_clear_user_name(self):
        con = self.db()
        now = int(time.time() * 1000)
        self.fail_n(con, 10, now - 5000, "admin", ATTACKER)
        self.assertEqual([e["account"] for e in self.listed()], ["admin"])
        self.assertIn("10 recent failures", self.ok("lockout", "clear", "admin"))
        self.assertEqual(self.listed(), [])

    def test_clear_all(self):
        self.seed_attack()
        out = self.ok("lockout", "clear", "--all")
        self.assertIn("lockout cleared for every account (2 were locked out)", out)
        self.assertEqual(self.listed(), [])
        self.assertIn("no account is locked out", self.ok("lockout", "list"))

    def test_usage_errors(self):
        self.usage("lockout", "clear")
        self.usage("lockout", "clear", "alice@example.com", "--all")
        self.usage("lockout", "clear", "alice@example.com", "bob@example.com")
        self.usage("lockout", "clear", "*")
        self.usage("lockout", "clear", "not an address")
        self.usage("lockout", "clear", "bad@@example.com")
        self.usage("lockout", "clear", "--everything")
        self.usage("lockout", "list", "extra")
        self.usage("lockout", "clear", "--json", "--all")
        self.usage("lockout", "frobnicate")
        # nothing was created by a refused command
        self.assertFalse(os.path.exists(os.path.join(self.dir, "log.db")))

    def test_missing_data_directory(self):
        missing = os.path.join(self.dir, "nope")
        for args in (("lockout", "list"), ("lockout", "clear", "--all")):
            rc, out, err = self.run_ctl(*args, datadir=missing)
            self.assertEqual(rc, 1, err + out)
            self.assertIn(missing, err)
        self.assertFalse(os.path.exists(missing))

    def test_help_lists_the_commands(self):
        out = self.ok("help", "lockout")
        self.assertIn("lockout list [--json]", out)
        self.assertIn("lockout clear ADDRESS|--all", out)


if __name__ == "__main__":
    unittest.main()
