"""test_submitctl_route.py: `submitctl tenant route` (issue 4, delivery routes) run as a program.

Setting, showing (text and --json), replacing and removing each kind of route (relay with no
AUTH, PLAIN, LOGIN, XOAUTH2 by client credentials or refresh token; LMTP; Maildir), the route
line of `tenant show`, the exit codes (0 yes, 1 no or refused by the directory, 2 bad usage),
and that a secret given on standard input never appears in any output of submitctl, nor in the
logs of a running daemon whose directory holds it.

Environment: SUBMITD_BUILD (directory holding submitctl and submitd, default ./build). Python
standard library only.
"""

import json
import os
import stat
import unittest

from tests.integration.harness import DaemonTestCase
from tests.integration.test_submitctl import CtlCase

SECRET = "Upstream-S3cret pass:word"
CLIENT_SECRET = "client.Secret~value-42"
REFRESH_TOKEN = "0.ARoA-refresh.TOKEN_value-7"
ROTATED = "rotated-refresh-token-8"
SECRETS = (SECRET, CLIENT_SECRET, REFRESH_TOKEN, ROTATED)

XOAUTH2 = ["--auth", "xoauth2", "--user", "relay@example.com", "--token-url",
           "http://127.0.0.1:8080/token", "--client-id", "client-1"]


class RouteCase(CtlCase):
    def setUp(self):
        super().setUp()
        self.outputs = []
        self.ok("tenant", "add", "example.com")

    def run_ctl(self, *args, input=None, datadir=None):
        rc, out, err = super().run_ctl(*args, input=input, datadir=datadir)
        self.outputs.append(out + err)
        return rc, out, err

    def tearDown(self):
        try:
            for text in self.outputs:
                for secret in SECRETS:
                    self.assertNotIn(secret, text, "a secret was printed")
        finally:
            super().tearDown()

    def route(self, *args, input=None):
        return self.ok("tenant", "route", "example.com", *args, input=input)

    def shown(self):
        return self.js("tenant", "route", "example.com")

    def fields(self):
        """The text show as {name: value}."""
        out = self.ok("tenant", "route", "example.com")
        return {line[:18].strip(): line[18:] for line in out.splitlines() if line[:18].strip()}


class TestShow(RouteCase):
    def test_no_route(self):
        out = self.ok("tenant", "route", "example.com")
        self.assertIn("route             none", out)
        self.assertEqual(self.shown(), {"kind": "none", "tenant": "example.com"})
        self.assertIn("route               none", self.ok("tenant", "show", "example.com"))
        self.assertEqual(self.js("tenant", "show", "example.com")["route"], {"kind": "none"})

    def test_unknown_tenant_and_missing_data_directory(self):
        self.no("tenant", "route", "nobody.test", stderr="no such tenant nobody.test")
        self.no("tenant", "route", "nobody.test", "maildir", "/srv/%u",
                stderr="no such tenant nobody.test")
        missing = os.path.join(self.dir, "missing")
        rc, _, err = self.run_ctl("tenant", "route", "example.com", datadir=missing)
        self.assertEqual(rc, 1, err)
        self.assertFalse(os.path.exists(missing), "showing made the data directory")


class TestRelay(RouteCase):
    def test_relay_defaults_then_replace_then_remove(self):
        out = self.route("relay", "smtp.example.net")
        self.assertEqual(out, "tenant example.com: route relay smtp.example.net:587, tls required, "
                              "max-connections 10\n")
        self.assertEqual(self.shown(), {
            "kind": "relay", "host": "smtp.example.net", "port": 587, "tls": "required",
            "verify": True, "cafile": None, "auth": "none", "max_connections": 10,
            "tenant": "example.com"})
        # replaced whole: options not given go back to their defaults
        self.route("relay", "[2001:db8::25]:2525", "--tls", "opportunistic", "--no-verify",
                   "--max-connections", "3")
        j = self.shown()
        self.assertEqual((j["host"], j["port"], j["tls"], j["verify"], j["max_connections"]),
                         ("2001:db8::25", 2525, "opportunistic", False, 3))
        self.route("relay", "192.0.2.7", "--tls", "implicit")
        j = self.shown()
        self.assertEqual((j["host"], j["port"], j["tls"], j["verify"]),
                         ("192.0.2.7", 465, "implicit", True))
        self.assertIn("route               relay 192.0.2.7:465, tls implicit",
                      self.ok("tenant", "show", "example.com"))
        self.assertEqual(self.route("none"), "tenant example.com: delivery route removed\n")
        self.assertEqual(self.shown()["kind"], "none")
        self.no("tenant", "route", "example.com", "none",
                stderr="tenant example.com has no delivery route")

    def test_cafile_made_absolute(self):
        ca = os.path.join(self.dir, "ca.pem")
        with open(ca, "w") as f:
            f.write("not checked here\n")
        self.route("relay", "smtp.example.net:25", "--cafile", ca)
        self.assertEqual(self.shown()["cafile"], os.path.realpath(ca))
        self.no("tenant", "route", "example.com", "relay", "smtp.example.net", "--cafile",
                os.path.join(self.dir, "nope.pem"), stderr="cafile")

    def test_plain_and_login(self):
        for mech in ("plain", "login"):
            out = self.route("relay", "smtp.example.net:587", "--auth", mech, "--user",
                             "relay@example.com", "--secret-stdin", input=SECRET + "\n")
            self.assertIn("auth %s, user relay@example.com, secret (set)" % mech, out)
            j = self.shown()
            self.assertEqual((j["auth"], j["user"], j["secret_set"]),
                             (mech, "relay@example.com", True))
            self.assertNotIn("secret", [k for k in j if k != "secret_set"])
            f = self.fields()
            self.assertEqual(f["secret"], "(set)")
            self.assertEqual(f["auth"], mech)
        # the secret is stored as given (it must be presented upstream)
        self.assertIn(SECRET.encode(), self.directory_bytes())

    def test_xoauth2_client_credentials(self):
        self.route("relay", "smtp.example.net", *XOAUTH2, "--scope",
                   "https://outlook.office365.com/.default", "--secret-stdin",
                   "--secret-in-body", input=CLIENT_SECRET + "\n")
        j = self.shown()
        self.assertEqual(j["auth"], "xoauth2")
        self.assertEqual(j["grant"], "client_credentials")
        self.assertEqual(j["token_url"], "http://127.0.0.1:8080/token")
        self.assertEqual(j["client_id"], "client-1")
        self.assertEqual(j["scope"], "https://outlook.office365.com/.default")
        self.assertTrue(j["secret_set"])
        self.assertFalse(j["refresh_token_set"])
        self.assertTrue(j["secret_in_body"])
        f = self.fields()
        self.assertEqual(f["grant"], "client_credentials")
        self.assertEqual(f["secret-in-body"], "yes")

    def test_xoauth2_refresh_token(self):
        self.route("relay", "smtp.example.net", *XOAUTH2, "--refresh-token-stdin",
                   input=REFRESH_TOKEN + "\n")
        j = self.shown()
        self.assertEqual((j["grant"], j["refresh_token_set"], j["secret_set"]),
                         ("refresh_token", True, False))
        self.assertIsNone(j["scope"])
        # a confidential client: the client secret first, then the refresh token
        self.route("relay", "smtp.example.net", *XOAUTH2, "--secret-stdin",
                   "--refresh-token-stdin", input=CLIENT_SECRET + "\n" + REFRESH_TOKEN + "\n")
        j = self.shown()
        self.assertEqual((j["grant"], j["refresh_token_set"], j["secret_set"]),
                         ("refresh_token", True, True))
        self.assertEqual(self.fields()["refresh-token"], "(set)")
        data = self.directory_bytes()
        self.assertIn(CLIENT_SECRET.encode(), data)
        self.assertIn(REFRESH_TOKEN.encode(), data)

    def test_long_refresh_token(self):
        """Entra's refresh tokens run to well over 1,000 characters: up to 4,095 are taken whole
        (the directory's field), one more is refused."""
        token = "0.AR" + "x" * 3000 + "-end"
        self.route("relay", "smtp.example.net", *XOAUTH2, "--refresh-token-stdin",
                   input=token + "\n")
        self.assertIn(token.encode(), self.directory_bytes())
        self.no("tenant", "route", "example.com", "relay", "smtp.example.net", *XOAUTH2,
                "--refresh-token-stdin", input="y" * 4096 + "\n", code=2,
                stderr="refresh token longer than 4095 octets")

    def test_set_with_json_prints_the_route(self):
        j = json.loads(self.route("relay", "smtp.example.net", "--auth", "plain", "--user", "u",
                                  "--secret-stdin", "--json", input=SECRET + "\n"))
        self.assertEqual((j["kind"], j["auth"], j["secret_set"]), ("relay", "plain", True))

    def directory_bytes(self):
        data = b""
        for name in ("directory.db", "directory.db-wal"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                pass
        return data


class TestLmtpAndMaildir(RouteCase):
    def test_lmtp(self):
        out = self.route("lmtp", "mailstore.internal")
        self.assertEqual(out, "tenant example.com: route lmtp mailstore.internal:24, tls none, "
                              "max-connections 10\n")
        self.assertEqual(self.shown(), {
            "kind": "lmtp", "host": "mailstore.internal", "port": 24, "tls": "none",
            "verify": True, "cafile": None, "auth": "none", "max_connections": 10,
            "tenant": "example.com"})
        self.route("lmtp", "127.0.0.1:2424", "--tls", "required", "--max-connections", "1")
        j = self.shown()
        self.assertEqual((j["host"], j["port"], j["tls"], j["max_connections"]),
                         ("127.0.0.1", 2424, "required", 1))
        self.assertNotIn("verify", self.fields().get("tls", ""))
        self.route("none")
        self.assertEqual(self.shown()["kind"], "none")

    def test_maildir(self):
        out = self.route("maildir", "/srv/mail/%d/%u/Maildir", "--max-connections", "20")
        self.assertEqual(out, "tenant example.com: route maildir /srv/mail/%d/%u/Maildir, "
                              "max-connections 20\n")
        self.assertEqual(self.shown(), {"kind": "maildir", "maildir": "/srv/mail/%d/%u/Maildir",
                                        "max_connections": 20, "tenant": "example.com"})
        self.assertIn("route               maildir /srv/mail/%d/%u/Maildir",
                      self.ok("tenant", "show", "example.com"))
        # replacing a relay with secrets by a maildir leaves no secret behind
        self.route("relay", "smtp.example.net", "--auth", "login", "--user", "u",
                   "--secret-stdin", input=SECRET + "\n")
        self.route("maildir", "/var/mail/%a")
        self.assertEqual(self.shown()["maildir"], "/var/mail/%a")
        self.route("none")
        self.route("relay", "smtp.example.net")
        self.assertFalse(self.shown().get("secret_set", False))


class TestErrors(RouteCase):
    def test_usage_errors_exit_2(self):
        cases = [
            (["bogus", "x"], "unknown route kind bogus"),
            (["relay"], "relay and lmtp need one HOST[:PORT]"),
            (["none", "x"], "none takes no argument"),
            (["maildir"], "maildir needs one TEMPLATE"),
            (["relay", "h:0"], "the port must be a number from 1 to 65535"),
            (["relay", "h:65536"], "the port must be a number from 1 to 65535"),
            (["relay", "[::1"], "not HOST[:PORT]"),
            (["relay", "h", "--tls", "always"], "--tls must be required"),
            (["relay", "h", "--tls", "none", "--no-verify"], "need TLS"),
            (["lmtp", "h", "--cafile", "/etc/hosts"], "need TLS"),
            (["lmtp", "h", "--auth", "plain"], "--auth does not apply to lmtp routes"),
            (["maildir", "/m/%u", "--tls", "required"], "--tls does not apply to maildir routes"),
            (["none", "--max-connections", "2"], "--max-connections does not apply"),
            (["relay", "h", "--auth", "cram-md5"], "--auth must be none, plain, login or"),
            (["relay", "h", "--user", "u"], "--user needs --auth"),
            (["relay", "h", "--secret-stdin"], "--secret-stdin needs --auth"),
            (["relay", "h", "--auth", "plain", "--user", "u"], "needs --secret-stdin"),
            (["relay", "h", "--auth", "login", "--secret-stdin"], "needs --user"),
            (["relay", "h", "--auth", "plain", "--user", "u", "--secret-stdin", "--client-id",
              "c"], "--client-id is for --auth xoauth2"),
            (["relay", "h", "--auth", "xoauth2", "--user", "u", "--secret-stdin"],
             "needs --token-url and --client-id"),
            (["relay", "h"] + XOAUTH2, "needs --secret-stdin (client credentials) or"),
            (["relay", "h"] + XOAUTH2 + ["--refresh-token-stdin", "--secret-in-body"],
             "--secret-in-body needs --secret-stdin"),
            (["relay", "h", "--max-connections", "0"], "--max-connections must be"),
            (["relay", "h", "--max-connections", "1001"], "--max-connections must be"),
            (["relay", "h", "--client-id"], "--client-id needs a value"),
            (["relay", "h", "--frobnicate"], "unknown option --frobnicate"),
            (["--tls", "none"], "--tls is for setting a route"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.no("tenant", "route", "example.com", *args, code=2, stderr=message)
        self.no("tenant", "route", "not_a domain", code=2, stderr="not a valid domain")
        self.no("tenant", "route", "example.com", "relay", "h", "x", code=2,
                stderr="too many arguments")
        # an empty secret
        self.no("tenant", "route", "example.com", "relay", "h", "--auth", "plain", "--user", "u",
                "--secret-stdin", input="\n", code=2, stderr="empty secret refused")
        self.assertEqual(self.shown()["kind"], "none")

    def test_directory_refusals_exit_1(self):
        cases = [
            (["relay", "bad_host.example"], "is not a valid host name or IP address"),
            (["relay", "h"] + XOAUTH2[:5] + ["http://login.example.net/token"] + XOAUTH2[6:]
             + ["--secret-stdin"], "xoauth2 needs a token URL: https://"),
            (["maildir", "srv/%u"], "needs an absolute path template"),
            (["maildir", "/srv/mail/%d"], "must contain %u or %a"),
            (["maildir", "/srv/../%u"], "may not contain . or .. segments"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.no("tenant", "route", "example.com", *args, input=CLIENT_SECRET + "\n",
                        code=1, stderr=message)
        self.assertEqual(self.shown()["kind"], "none")

    def test_directory_file_is_private(self):
        self.route("relay", "smtp.example.net", "--auth", "plain", "--user", "u",
                   "--secret-stdin", input=SECRET + "\n")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.dir, "directory.db")).st_mode),
                         0o600)
        fresh = os.path.join(self.dir, "fresh")
        rc, _, err = self.run_ctl("tenant", "add", "example.org", datadir=fresh)
        self.assertEqual(rc, 0, err)
        self.assertEqual(stat.S_IMODE(os.stat(fresh).st_mode), 0o700)


class TestRouteSecretsWithDaemon(DaemonTestCase):
    """Routes with secrets set while the daemon runs: nothing of them in its logs."""

    def test_secrets_not_logged(self):
        d = self.daemon
        outputs = []

        def ctl(*args, input=None):
            r = d.ctl("tenant", "route", "example.com", *args, input=input)
            outputs.append(r.stdout + r.stderr)
            return r

        ctl("relay", "127.0.0.1:%d" % d.cleartext_port, "--tls", "none", "--auth", "plain",
            "--user", "alice@example.com", "--secret-stdin", input=SECRET + "\n")
        ctl("relay", "127.0.0.1:%d" % d.cleartext_port, "--tls", "none", *XOAUTH2,
            "--secret-stdin", "--refresh-token-stdin",
            input=CLIENT_SECRET + "\n" + REFRESH_TOKEN + "\n")
        ctl()
        ctl("--json")
        outputs.append(d.ctl("tenant", "show", "example.com").stdout)
        outputs.append(d.ctl("tenant", "show", "example.com", "--json").stdout)
        # the daemon keeps serving (a session reads the directory after the change)
        c = self.connect(port=d.cleartext_port)
        c.ehlo()
        c.quit()
        for blob in outputs:
            for secret in SECRETS:
                self.assertNotIn(secret.encode(), blob)
        for name in ("submitd.stderr", "log.db", "log.db-wal"):
            try:
                with open(os.path.join(d.dir, name), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            for secret in SECRETS:
                self.assertNotIn(secret.encode(), data, "%s holds a route secret" % name)


if __name__ == "__main__":
    unittest.main()
