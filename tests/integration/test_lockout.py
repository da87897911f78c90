"""Smart lockout through the real daemon (issue 6, SPEC 3): decided before the credentials and
answered like a wrong password; the owner's familiar address keeps getting in while the account
is under attack; failure replies are delayed; `submitctl lockout list|clear` see and lift it."""
import time
import unittest

from tests.integration.harness import PASSWORD, DaemonTestCase

FAILED = "535 5.7.3 Authentication unsuccessful"


class LockoutTest(DaemonTestCase):
    CONF = ("lockout-account-failures = 4", "lockout-address-failures = 1000",
            "lockout-delay = 100")

    def attempt(self, password, user="alice@example.com"):
        c = self.connect()
        c.ehlo()
        c.starttls()
        c.ehlo()
        start = time.monotonic()
        r = c.auth_plain(user, password)
        elapsed = time.monotonic() - start
        c.close()
        return r, elapsed

    def signin(self, ref):
        return self.daemon.find_event("signins", ref)

    def test_lock_familiar_clear(self):
        d = self.daemon
        # Never signed in from 127.0.0.1 before: not familiar. Four wrong passwords lock it.
        for _ in range(4):
            r, _ = self.attempt("wrong")
            self.assertTrue(r.line.startswith(FAILED), r.line)
        r, _ = self.attempt(PASSWORD)  # the right password, but locked: same reply as wrong
        self.assertTrue(r.line.startswith(FAILED), r.line)
        ref = r.line.rsplit(" ", 1)[-1].rstrip("]")
        self.assertEqual(self.signin(ref)["gate"], "lockout")
        listed = d.ctl_json("lockout", "list")
        self.assertIn("alice@example.com", [e["account"] for e in listed], listed)
        # Failure replies are delayed (100 ms doubling per recent failure, at most 8x).
        r, elapsed = self.attempt("wrong")
        self.assertGreaterEqual(elapsed, 0.1, "failure answered without delay")
        d.ctl("lockout", "clear", "alice@example.com")
        r, _ = self.attempt(PASSWORD)
        self.assertTrue(r.line.startswith("235 "), r.line)
        # 127.0.0.1 is now familiar: an attack on the account no longer locks the owner out.
        for _ in range(6):
            self.attempt("wrong")
        r, _ = self.attempt(PASSWORD)
        self.assertTrue(r.line.startswith("235 "), r.line)


if __name__ == "__main__":
    unittest.main()
