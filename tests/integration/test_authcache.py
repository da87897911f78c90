"""The verified-credential cache (issue 6) never outlives a change: a device that signed in
before keeps signing in, but a password change or a setting change applies at the very next
AUTH, cached or not."""
import unittest

from tests.integration.harness import PASSWORD, DaemonTestCase

FAILED = "535 5.7.3 Authentication unsuccessful"


class AuthCacheTest(DaemonTestCase):
    def attempt(self, password):
        c = self.connect()
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.auth_plain("alice@example.com", password)
        c.close()
        return r.line

    def test_password_change_applies_at_once(self):
        d = self.daemon
        for _ in range(3):  # verified once, then cached
            self.assertTrue(self.attempt(PASSWORD).startswith("235 "))
        d.ctl("mailbox", "passwd", "alice@example.com", input="another-password-1\n")
        self.assertTrue(self.attempt(PASSWORD).startswith(FAILED))
        self.assertTrue(self.attempt("another-password-1").startswith("235 "))
        d.ctl("mailbox", "passwd", "alice@example.com", input=PASSWORD + "\n")
        self.assertTrue(self.attempt(PASSWORD).startswith("235 "))

    def test_setting_change_applies_to_cached_credentials(self):
        d = self.daemon
        self.assertTrue(self.attempt(PASSWORD).startswith("235 "))
        self.assertTrue(self.attempt(PASSWORD).startswith("235 "))
        d.ctl("mailbox", "set", "alice@example.com", "smtp-auth", "off")
        try:
            line = self.attempt(PASSWORD)
            self.assertIn("SmtpClientAuthentication is disabled for the Mailbox", line)
        finally:
            d.ctl("mailbox", "set", "alice@example.com", "smtp-auth", "inherit")
        self.assertTrue(self.attempt(PASSWORD).startswith("235 "))


if __name__ == "__main__":
    unittest.main()
