"""test_submitctl.py: the admin tool `submitctl` (SPEC section 8) run as a program.

Every command and its error paths, the exit codes (0 yes, 1 no, 2 bad usage), --json output,
`mailbox show` precedence (SPEC section 2), `explain` for each failing gate with the fix it
prints (SPEC section 3), the sign-in / submission logs and the queue; the OAuth side of issue 3
(SPEC sections 4, 5 and 8): tenant OAuth settings and limits, the built-in issuer (`tenant
jwks`, `token issue`), app passwords, send-as and access grants, mailbox limit overrides, and
`explain --token-stdin` with tokens signed here by the openssl command.

Environment: SUBMITD_BUILD (directory holding submitctl, default ./build). Each test gets a fresh
data directory from tempfile.mkdtemp(). Python standard library only.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("SUBMITD_BUILD") or os.path.join(REPO, "build"))
SUBMITCTL = os.path.join(BUILD, "submitctl")
SUBMITD = os.path.join(BUILD, "submitd")
TIMEOUT = 30
PASSWORD = "s3cret pass:word"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

TENANT_DISABLED = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                   "disabled for the Tenant.")
MAILBOX_DISABLED = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                    "disabled for the Mailbox.")


class CtlCase(unittest.TestCase):
    def setUp(self):
        if not os.access(SUBMITCTL, os.X_OK):
            self.fail("%s is not built (SUBMITD_BUILD=%s)" % (SUBMITCTL, BUILD))
        self.dir = tempfile.mkdtemp(prefix="submitctl-it-")
        # Hash passwords at the test cost (8 MiB), as the daemon tests do: 64 MiB argon2id per
        # `mailbox add` made this suite take minutes.
        with open(os.path.join(self.dir, "submitd.conf"), "w") as f:
            f.write("auth-memlimit = 8M\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_ctl(self, *args, input=None, datadir=None):
        args = [str(a) for a in args]
        argv = [SUBMITCTL, "-d", datadir or self.dir] + args
        r = subprocess.run(argv, input=(input or "").encode(), capture_output=True,
                           timeout=TIMEOUT)
        out, err = r.stdout.decode(), r.stderr.decode()
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, err, "submitctl %s: %s" % (" ".join(args), err))
        return r.returncode, out, err

    def ok(self, *args, input=None):
        args = [str(a) for a in args]
        rc, out, err = self.run_ctl(*args, input=input)
        self.assertEqual(rc, 0, "submitctl %s: rc %d, %s%s" % (" ".join(args), rc, err, out))
        return out

    def no(self, *args, input=None, code=1, stderr=None):
        """Runs a command expected to exit `code` with one line on stderr (containing `stderr`)."""
        args = [str(a) for a in args]
        rc, out, err = self.run_ctl(*args, input=input)
        self.assertEqual(rc, code, "submitctl %s: expected %d, got %d: %s%s"
                         % (" ".join(args), code, rc, err, out))
        if code == 2 or stderr is not None:
            lines = err.strip().splitlines()
            self.assertEqual(len(lines), 1, "not one line on stderr: %r" % err)
            self.assertTrue(lines[0].startswith("submitctl: "), err)
            if stderr is not None:
                self.assertIn(stderr, lines[0])
        return out, err

    def js(self, *args):
        return json.loads(self.ok(*(list(args) + ["--json"])))

    def base(self, tenant_on=False):
        """example.com with alice@example.com (password set)."""
        self.ok("tenant", "add", "example.com")
        self.ok("mailbox", "add", "alice@example.com", input=PASSWORD + "\n")
        if tenant_on:
            self.ok("tenant", "set", "example.com", "smtp-auth", "on")

    def open_all(self):
        """Tenant and mailbox settings that let a basic AUTH through every gate."""
        self.base(tenant_on=True)
        self.ok("tenant", "set", "example.com", "security-defaults", "off")
        self.ok("tenant", "set", "example.com", "default-policy", "allow-basic")


class TestUsage(CtlCase):
    def test_help_lists_every_command(self):
        out = self.ok("help")
        for cmd in ("tenant add", "tenant show", "tenant list", "tenant set", "tenant domain-add",
                    "tenant domain-remove", "mailbox add", "mailbox passwd", "mailbox remove",
                    "mailbox set", "mailbox show", "mailbox list", "alias add", "alias remove",
                    "alias list", "policy add", "policy set", "policy show", "policy list",
                    "policy remove", "rule add", "rule list", "rule remove", "explain",
                    "signins", "submissions", "queue list", "queue show", "tenant jwks",
                    "token issue", "app-password add", "app-password list",
                    "app-password revoke", "mailbox grant-send-as", "mailbox revoke-send-as",
                    "mailbox grant-access", "mailbox revoke-access"):
            self.assertIn("  " + cmd, out)
        self.assertIn("mailbox", self.ok("help", "mailbox"))
        self.assertNotIn("tenant add", self.ok("help", "mailbox"))

    def test_usage_errors_exit_2(self):
        rc, _, err = self.run_ctl()
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)
        self.no("frobnicate", code=2, stderr="unknown command frobnicate")
        self.no("tenant", code=2, stderr="missing subcommand")
        self.no("tenant", "explode", code=2, stderr="unknown subcommand explode")
        self.no("tenant", "add", code=2, stderr="tenant add: missing arguments")
        self.no("tenant", "add", "a.example", "b.example", code=2, stderr="too many arguments")
        self.no("tenant", "list", "--bogus", code=2, stderr="unknown option --bogus")
        self.no("tenant", "add", "a.example", "--json", code=2, stderr="unknown option --json")
        self.no("signins", "--limit", code=2, stderr="--limit needs a value")
        rc, _, err = self.run_ctl("-x", "tenant", "list")
        self.assertEqual(rc, 2)

    def test_read_command_on_missing_dir_is_an_error(self):
        missing = os.path.join(self.dir, "var")
        for args in (("tenant", "list"), ("signins",), ("queue", "list"),
                     ("explain", "a@example.com")):
            rc, _, err = self.run_ctl(*args, datadir=missing)
            self.assertEqual(rc, 1, args)
            self.assertIn("No such file or directory", err)
        self.assertFalse(os.path.exists(missing))

    def test_first_write_creates_dir_0700(self):
        target = os.path.join(self.dir, "var")
        rc, _, err = self.run_ctl("tenant", "add", "example.com", datadir=target)
        self.assertEqual(rc, 0, err)
        self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o700)

    def test_default_dir_is_var(self):
        r = subprocess.run([SUBMITCTL, "tenant", "add", "example.com"], cwd=self.dir,
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "var")))


class TestTenant(CtlCase):
    def test_add_show_list(self):
        self.assertIn("tenant example.com added", self.ok("tenant", "add", "example.com"))
        self.no("tenant", "add", "example.com", stderr="already exists")
        self.no("tenant", "add", "not a domain", code=2, stderr="not a valid domain")
        t = self.js("tenant", "show", "example.com")
        self.assertEqual(t["domain"], "example.com")
        self.assertEqual(t["smtp_auth"], "off")  # SPEC 2 defaults
        self.assertEqual(t["security_defaults"], "on")
        self.assertEqual(t["app_passwords"], "off")
        self.assertEqual(t["default_policy"], "block-basic")
        self.assertEqual(t["reply_detail"], "full")
        self.assertEqual(t["domains"], ["example.com"])
        self.assertEqual((t["mailboxes"], t["rules"]), (0, 0))
        out = self.ok("tenant", "show", "example.com")
        self.assertRegex(out, r"smtp-auth\s+off")
        self.assertRegex(out, r"default-policy\s+block-basic \(blocks basic SMTP\)")
        self.no("tenant", "show", "nowhere.example", stderr="no such tenant nowhere.example")
        self.ok("tenant", "add", "other.example")
        names = [t["domain"] for t in self.js("tenant", "list")]
        self.assertEqual(sorted(names), ["example.com", "other.example"])
        self.assertIn("other.example", self.ok("tenant", "list"))

    def test_set_every_key(self):
        self.ok("tenant", "add", "example.com")
        self.ok("policy", "add", "legacy", "--allow-basic-smtp")
        for key, value, field in (("smtp-auth", "on", "smtp_auth"),
                                  ("security-defaults", "off", "security_defaults"),
                                  ("app-passwords", "on", "app_passwords"),
                                  ("default-policy", "legacy", "default_policy"),
                                  ("reply-detail", "generic", "reply_detail")):
            self.ok("tenant", "set", "example.com", key, value)
            self.assertEqual(self.js("tenant", "show", "example.com")[field], value)
        self.assertTrue(self.js("tenant", "show", "example.com")[
            "default_policy_allows_basic_smtp"])

    def test_set_errors(self):
        self.ok("tenant", "add", "example.com")
        self.no("tenant", "set", "example.com", "smtp-auth", "maybe", code=2,
                stderr="submitctl: tenant set: value must be on or off")
        self.no("tenant", "set", "example.com", "reply-detail", "terse", code=2,
                stderr="value must be full or generic")
        self.no("tenant", "set", "example.com", "colour", "blue", code=2,
                stderr="unknown setting colour")
        self.no("tenant", "set", "example.com", "default-policy", "no-such-policy")
        self.no("tenant", "set", "nowhere.example", "smtp-auth", "on",
                stderr="no such tenant nowhere.example")

    def test_domains(self):
        self.ok("tenant", "add", "example.com")
        self.ok("tenant", "add", "other.example")
        self.ok("tenant", "domain-add", "example.com", "example.net")
        self.assertEqual(sorted(self.js("tenant", "show", "example.com")["domains"]),
                         ["example.com", "example.net"])
        self.no("tenant", "domain-add", "other.example", "example.net")
        self.no("tenant", "domain-add", "example.com", "other.example")
        self.no("tenant", "domain-add", "example.com", "bad domain", code=2)
        # a mailbox in the extra domain belongs to the tenant
        self.ok("mailbox", "add", "bob@example.net", input=PASSWORD + "\n")
        self.assertEqual(self.js("mailbox", "show", "bob@example.net")["tenant"], "example.com")
        self.ok("mailbox", "remove", "bob@example.net")
        self.no("tenant", "domain-remove", "example.com", "example.com", stderr="primary domain")
        self.no("tenant", "domain-remove", "example.com", "other.example",
                stderr="not a domain of tenant")
        self.ok("tenant", "domain-remove", "example.com", "example.net")
        self.assertEqual(self.js("tenant", "show", "example.com")["domains"], ["example.com"])


class TestMailbox(CtlCase):
    def test_add_and_password(self):
        self.ok("tenant", "add", "example.com")
        self.assertIn("mailbox alice@example.com added",
                      self.ok("mailbox", "add", "alice@example.com", input=PASSWORD + "\n"))
        self.no("mailbox", "add", "alice@example.com", input=PASSWORD + "\n",
                stderr="already exists")
        self.no("mailbox", "add", "bob@example.com", input="\n", code=2,
                stderr="empty password refused")
        self.no("mailbox", "add", "bob@example.com", input="", code=2)
        self.no("mailbox", "add", "bob@nowhere.example", input=PASSWORD + "\n",
                stderr="not an accepted domain")
        self.no("mailbox", "add", "not-an-address", input=PASSWORD + "\n", code=2,
                stderr="not a valid address")
        self.no("mailbox", "add", "bob@example.com", input="x" * 1100 + "\n", code=2,
                stderr="password longer")
        show = self.js("mailbox", "show", "alice@example.com")
        self.assertTrue(show["password_set"])
        self.assertNotIn("$argon2", json.dumps(show))
        self.assertNotIn("$argon2", self.ok("mailbox", "show", "alice@example.com"))
        self.assertNotIn(PASSWORD, self.ok("mailbox", "list"))
        self.ok("mailbox", "passwd", "alice@example.com", input="new one\r\n")
        self.no("mailbox", "passwd", "alice@example.com", input="\n", code=2)
        self.no("mailbox", "passwd", "ghost@example.com", input="pw\n", stderr="no such mailbox")

    def test_set_list_remove(self):
        self.base()
        self.ok("tenant", "add", "other.example")
        self.ok("mailbox", "add", "carol@other.example", input="pw\n")
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "off")
        self.ok("mailbox", "set", "alice@example.com", "enabled", "no")
        self.ok("mailbox", "set", "alice@example.com", "policy", "allow-basic")
        self.no("mailbox", "set", "alice@example.com", "smtp-auth", "maybe", code=2,
                stderr="submitctl: mailbox set: value must be on, off or inherit")
        self.no("mailbox", "set", "alice@example.com", "enabled", "perhaps", code=2,
                stderr="value must be yes or no")
        self.no("mailbox", "set", "alice@example.com", "policy", "bad name!", code=2)
        self.no("mailbox", "set", "alice@example.com", "policy", "no-such-policy")
        self.no("mailbox", "set", "alice@example.com", "hat", "red", code=2,
                stderr="unknown setting hat")
        self.no("mailbox", "set", "ghost@example.com", "enabled", "no")
        rows = {m["address"]: m for m in self.js("mailbox", "list")}
        self.assertEqual(set(rows), {"alice@example.com", "carol@other.example"})
        self.assertEqual(rows["alice@example.com"]["smtp_auth"], "off")
        self.assertEqual(rows["alice@example.com"]["policy"], "allow-basic")
        self.assertFalse(rows["alice@example.com"]["enabled"])
        self.assertEqual([m["address"] for m in self.js("mailbox", "list", "--tenant",
                                                         "other.example")],
                         ["carol@other.example"])
        self.assertIn("carol@other.example", self.ok("mailbox", "list"))
        self.no("mailbox", "list", "--tenant", "nowhere.example", stderr="no such tenant")
        self.ok("mailbox", "remove", "alice@example.com")
        self.no("mailbox", "remove", "alice@example.com", stderr="no such mailbox")
        self.no("mailbox", "show", "alice@example.com", stderr="no such mailbox")

    def assert_precedence(self, tenant, mailbox, effective, by):
        show = self.js("mailbox", "show", "alice@example.com")["smtp_auth"]
        self.assertEqual(show, {"tenant": tenant, "mailbox": mailbox, "effective": effective,
                                "decided_by": by})
        out = self.ok("mailbox", "show", "alice@example.com")
        self.assertRegex(out, r"\n  tenant\s+%s\n  mailbox\s+%s\n  effective\s+%s \(decided by "
                              r"the %s setting\)" % (tenant, mailbox, effective, by))

    def test_show_smtp_auth_precedence(self):
        self.base()
        self.assert_precedence("off", "inherit", "off", "tenant")
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "on")
        self.assert_precedence("off", "on", "on", "mailbox")  # mailbox on beats tenant off
        self.ok("tenant", "set", "example.com", "smtp-auth", "on")
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "off")
        self.assert_precedence("on", "off", "off", "mailbox")  # mailbox off beats tenant on
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "inherit")
        self.assert_precedence("on", "inherit", "on", "tenant")

    def test_show_policy_and_the_rest(self):
        self.base()
        p = self.js("mailbox", "show", "alice@example.com")
        self.assertEqual(p["policy"], {"tenant_default": "block-basic", "mailbox": "inherit",
                                       "effective": "block-basic", "decided_by": "tenant",
                                       "allows_basic_smtp": False})
        self.assertEqual((p["security_defaults"], p["enabled"]), ("on", True))
        self.ok("mailbox", "set", "alice@example.com", "policy", "allow-basic")
        self.ok("alias", "add", "alice@example.com", "sales@example.com")
        p = self.js("mailbox", "show", "alice@example.com")
        self.assertEqual(p["policy"], {"tenant_default": "block-basic", "mailbox": "allow-basic",
                                       "effective": "allow-basic", "decided_by": "mailbox",
                                       "allows_basic_smtp": True})
        self.assertEqual(p["aliases"], ["sales@example.com"])
        out = self.ok("mailbox", "show", "alice@example.com")
        self.assertRegex(out, r"effective\s+allow-basic \(decided by the mailbox setting\): "
                              r"basic SMTP allowed")
        self.assertRegex(out, r"security-defaults\s+on")
        self.assertRegex(out, r"aliases\s+sales@example.com")
        self.assertRegex(out, r"password\s+set")


class TestAlias(CtlCase):
    def test_alias_commands(self):
        self.base()
        self.ok("tenant", "add", "other.example")
        self.ok("mailbox", "add", "bob@example.com", input="pw\n")
        self.ok("alias", "add", "alice@example.com", "sales@example.com")
        self.ok("alias", "add", "alice@example.com", "info@example.com")
        self.assertEqual(sorted(self.js("alias", "list", "alice@example.com")["aliases"]),
                         ["info@example.com", "sales@example.com"])
        self.assertIn("sales@example.com", self.ok("alias", "list", "alice@example.com"))
        self.no("alias", "add", "bob@example.com", "sales@example.com")  # taken
        self.no("alias", "add", "alice@example.com", "x@other.example")  # foreign tenant
        self.no("alias", "add", "ghost@example.com", "y@example.com")
        self.no("alias", "add", "alice@example.com", "no-at-sign", code=2)
        self.no("alias", "list", "ghost@example.com", stderr="no such mailbox")
        self.ok("alias", "remove", "sales@example.com")
        self.no("alias", "remove", "sales@example.com", stderr="no such alias")
        self.assertEqual(self.js("alias", "list", "alice@example.com")["aliases"],
                         ["info@example.com"])


class TestPolicy(CtlCase):
    def test_policy_commands(self):
        self.base()
        names = {p["name"]: p for p in self.js("policy", "list")}
        self.assertFalse(names["block-basic"]["allow_basic_smtp"])
        self.assertTrue(names["allow-basic"]["allow_basic_smtp"])
        self.assertTrue(names["block-basic"]["builtin"])
        self.ok("policy", "add", "strict")
        self.ok("policy", "add", "legacy", "--allow-basic-smtp")
        self.no("policy", "add", "legacy", stderr="already exists")
        self.no("policy", "add", "inherit", code=2)
        self.no("policy", "add", "bad name", code=2, stderr="not a valid policy name")
        self.assertFalse(self.js("policy", "show", "strict")["allow_basic_smtp"])
        self.assertTrue(self.js("policy", "show", "legacy")["allow_basic_smtp"])
        self.ok("policy", "set", "strict", "allow-basic-smtp", "yes")
        self.assertTrue(self.js("policy", "show", "strict")["allow_basic_smtp"])
        self.no("policy", "set", "strict", "allow-basic-smtp", "sometimes", code=2,
                stderr="value must be yes or no")
        self.no("policy", "set", "strict", "allow-imap", "yes", code=2)
        self.no("policy", "set", "ghost", "allow-basic-smtp", "yes", stderr="no such policy")
        self.ok("mailbox", "set", "alice@example.com", "policy", "strict")
        self.ok("tenant", "set", "example.com", "default-policy", "legacy")
        show = self.js("policy", "show", "strict")
        self.assertEqual(show["mailboxes"], ["alice@example.com"])
        self.assertEqual(self.js("policy", "show", "legacy")["default_of_tenants"],
                         ["example.com"])
        self.assertRegex(self.ok("policy", "show", "strict"), r"mailboxes\s+alice@example.com")
        self.no("policy", "remove", "strict")  # in use
        self.no("policy", "remove", "block-basic")  # built in
        self.ok("mailbox", "set", "alice@example.com", "policy", "inherit")
        self.ok("policy", "remove", "strict")
        self.no("policy", "show", "strict", stderr="no such policy")
        self.assertIn("legacy", self.ok("policy", "list"))


class TestRule(CtlCase):
    def test_rule_commands(self):
        self.base()
        out = self.ok("rule", "add", "example.com", "block", "outside",
                      "192.0.2.0/24,2001:db8::/32", "--comment", "office only")
        self.assertIn("rule", out)
        self.ok("rule", "add", "example.com", "allow", "from", "198.51.100.7", "--position", "1",
                "--mailboxes", "alice@example.com")
        rules = self.js("rule", "list", "example.com")["rules"]
        self.assertEqual([(r["position"], r["action"], r["match"]) for r in rules],
                         [(1, "allow", "from"), (2, "block", "outside")])
        self.assertEqual(rules[1]["comment"], "office only")
        self.assertEqual(rules[0]["mailboxes"], "alice@example.com")
        self.assertIn("office only", self.ok("rule", "list", "example.com"))
        self.assertEqual(self.js("tenant", "show", "example.com")["rules"], 2)
        self.no("rule", "add", "example.com", "deny", "from", "10.0.0.0/8", code=2,
                stderr="action must be block or allow")
        self.no("rule", "add", "example.com", "block", "near", "10.0.0.0/8", code=2,
                stderr="match must be from or outside")
        self.no("rule", "add", "example.com", "block", "from", "10.0.0.1/8", code=2,
                stderr="not a valid network")
        self.no("rule", "add", "example.com", "block", "from", "banana", code=2)
        self.no("rule", "add", "example.com", "block", "from", "10.0.0.0/8", "--position", "0",
                code=2)
        self.no("rule", "add", "example.com", "block", "from", "10.0.0.0/8", "--mailboxes",
                "nobody", code=2)
        self.no("rule", "add", "nowhere.example", "block", "from", "10.0.0.0/8")
        self.no("rule", "list", "nowhere.example", stderr="no such tenant")
        self.no("rule", "remove", "example.com", "abc", code=2)
        self.ok("rule", "remove", "example.com", rules[0]["id"])
        self.no("rule", "remove", "example.com", rules[0]["id"])
        self.assertEqual(len(self.js("rule", "list", "example.com")["rules"]), 1)


class TestExplain(CtlCase):
    def explain(self, *args, code):
        rc, out, err = self.run_ctl("explain", *args)
        self.assertEqual(rc, code, "explain %s: %s%s" % (" ".join(args), err, out))
        return out

    def gate_line(self, out, gate):
        for line in out.splitlines():
            fields = line.split()
            if gate in fields[:2]:
                return line
        self.fail("no line for gate %s in\n%s" % (gate, out))

    def assert_fails(self, out, gate, fix, reply):
        line = self.gate_line(out, gate)
        self.assertRegex(line, r"\b%s\s+FAIL\b" % gate)
        self.assertIn("fix: " + fix, out)
        last = out.strip().splitlines()[-1]
        self.assertTrue(last.startswith("Result: DENIED by gate %s" % gate), last)
        self.assertIn("`%s`" % reply, last)

    def test_every_gate_in_order(self):
        self.base()
        out = self.explain("alice@example.com", code=1)
        order = [l.split()[1] if l[:1].isdigit() else l.split()[0]
                 for l in out.splitlines()
                 if l.split() and l.split()[0] in ("1", "2", "3", "4", "5", "6", "7", "lockout")]
        self.assertEqual(order, ["tls", "lockout", "credentials", "account-enabled", "smtp-auth",
                                 "basic-auth-policy", "security-defaults", "access-rule"])
        self.assertIn("unknown (explain takes no secret)", self.gate_line(out, "credentials"))
        self.assertIn("TLS", self.gate_line(out, "tls"))

    def test_tenant_smtp_auth(self):
        self.base()
        out = self.explain("alice@example.com", code=1)
        self.assert_fails(out, "smtp-auth", "submitctl tenant set example.com smtp-auth on",
                          TENANT_DISABLED)
        self.assertIn("submitctl mailbox set alice@example.com smtp-auth on", out)

    def test_mailbox_smtp_auth(self):
        self.open_all()
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "off")
        out = self.explain("alice@example.com", code=1)
        self.assert_fails(out, "smtp-auth", "submitctl mailbox set alice@example.com smtp-auth on",
                          MAILBOX_DISABLED)

    def test_account_disabled(self):
        self.open_all()
        self.ok("mailbox", "set", "alice@example.com", "enabled", "no")
        out = self.explain("alice@example.com", code=1)
        self.assert_fails(out, "account-enabled",
                          "submitctl mailbox set alice@example.com enabled yes",
                          "535 5.7.139 Authentication unsuccessful, account is disabled.")

    def test_basic_policy_tenant_default_and_mailbox(self):
        self.base(tenant_on=True)
        self.ok("tenant", "set", "example.com", "security-defaults", "off")
        out = self.explain("alice@example.com", code=1)
        basic = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
        self.assert_fails(out, "basic-auth-policy",
                          "submitctl tenant set example.com default-policy allow-basic", basic)
        self.assertIn("block-basic", self.gate_line(out, "basic-auth-policy"))
        self.ok("policy", "add", "strict")
        self.ok("tenant", "set", "example.com", "default-policy", "allow-basic")
        self.ok("mailbox", "set", "alice@example.com", "policy", "strict")
        out = self.explain("alice@example.com", code=1)
        self.assert_fails(out, "basic-auth-policy",
                          "submitctl mailbox set alice@example.com policy allow-basic", basic)
        self.assertIn("submitctl policy set strict allow-basic-smtp yes", out)
        self.assertIn("decided by policy strict", out.strip().splitlines()[-1])

    def test_security_defaults(self):
        self.open_all()
        self.ok("tenant", "set", "example.com", "security-defaults", "on")
        out = self.explain("alice@example.com", code=1)
        self.assert_fails(out, "security-defaults",
                          "submitctl tenant set example.com security-defaults off",
                          "535 5.7.139 Authentication unsuccessful, user is locked by your "
                          "organization's security defaults policy. Contact your administrator.")

    def test_access_rule(self):
        self.open_all()
        self.ok("rule", "add", "example.com", "block", "outside", "192.0.2.0/24,2001:db8::/32")
        rid = self.js("rule", "list", "example.com")["rules"][0]["id"]
        out = self.explain("alice@example.com", "--ip", "203.0.113.9", code=1)
        self.assert_fails(out, "access-rule", "submitctl rule remove example.com %d" % rid,
                          "535 5.7.139 Authentication unsuccessful, the request did not meet "
                          "the criteria to be authenticated successfully. Contact your "
                          "administrator.")
        self.explain("alice@example.com", "--ip", "192.0.2.44", code=0)
        self.explain("alice@example.com", "--ip", "2001:db8::5", code=0)
        out = self.explain("alice@example.com", code=0)  # address unknown: said so
        self.assertRegex(self.gate_line(out, "access-rule"), r"unknown")
        self.assertIn("--ip", out.strip().splitlines()[-1])

    def test_no_password_fails_credentials(self):
        self.open_all()
        db = sqlite3.connect(os.path.join(self.dir, "directory.db"))
        with db:
            db.execute("UPDATE mailboxes SET password_hash = '' WHERE address = ?",
                       ("alice@example.com",))
        db.close()
        out = self.explain("alice@example.com", code=1)
        self.assert_fails(out, "credentials", "submitctl mailbox passwd alice@example.com",
                          "535 5.7.3 Authentication unsuccessful")
        self.assertIn("every basic attempt", self.gate_line(out, "credentials"))

    def test_allowed(self):
        self.open_all()
        out = self.explain("ALICE@example.com", "--ip", "127.0.0.1", code=0)
        last = out.strip().splitlines()[-1]
        self.assertTrue(last.startswith("Result: ALLOWED"), last)
        self.assertIn("`235 2.7.0 Authentication successful`", last)
        self.assertNotIn("FAIL", out)

    def test_oauth_skips_basic_gates_but_not_smtp_auth(self):
        self.base()  # security defaults on, block-basic, tenant smtp-auth off
        out = self.explain("alice@example.com", "--mech", "xoauth2", code=1)
        self.assert_fails(out, "smtp-auth", "submitctl tenant set example.com smtp-auth on",
                          TENANT_DISABLED)
        for gate in ("basic-auth-policy", "security-defaults", "access-rule"):
            self.assertRegex(self.gate_line(out, gate), r"\bn/a\b")
        self.ok("tenant", "set", "example.com", "smtp-auth", "on")
        self.explain("alice@example.com", "--mech", "oauthbearer", code=0)
        self.explain("alice@example.com", "--mech", "login", code=1)

    def test_app_password(self):
        self.base(tenant_on=True)
        self.explain("alice@example.com", "--app-password", code=1)
        self.ok("tenant", "set", "example.com", "app-passwords", "on")
        out = self.explain("alice@example.com", "--app-password", code=0)
        self.assertRegex(self.gate_line(out, "security-defaults"), r"\bpass\b")
        self.explain("alice@example.com", code=1)  # the main password stays blocked

    def test_generic_reply_detail(self):
        self.base()
        self.ok("tenant", "set", "example.com", "reply-detail", "generic")
        out = self.explain("alice@example.com", code=1)
        last = out.strip().splitlines()[-1]
        self.assertIn("`535 5.7.3 Authentication unsuccessful`", last)
        self.assertIn("generic", last)
        self.assertIn(TENANT_DISABLED, last)

    def test_unknown_domain_and_mailbox(self):
        self.base()
        for address in ("bob@example.com", "alice@nowhere.example"):
            out = self.explain(address, code=1)
            self.assertIn("`535 5.7.3 Authentication unsuccessful`", out)
        self.assertIn("not an accepted domain", self.explain("a@nowhere.example", code=1))
        self.assertIn("no mailbox", self.explain("bob@example.com", code=1))
        rc, out, _ = self.run_ctl("explain", "bob@example.com", "--json")
        self.assertEqual(rc, 1)
        doc = json.loads(out)
        self.assertEqual((doc["mailbox_found"], doc["allowed"]), (False, False))
        self.assertEqual(doc["reply"]["enhanced"], "5.7.3")

    def test_json(self):
        self.base()
        rc, out, _ = self.run_ctl("explain", "alice@example.com", "--json")
        self.assertEqual(rc, 1)
        doc = json.loads(out)
        self.assertEqual([g["gate"] for g in doc["gates"]],
                         ["tls", "lockout", "credentials", "account-enabled", "smtp-auth",
                          "basic-auth-policy", "security-defaults", "access-rule"])
        self.assertEqual((doc["allowed"], doc["gate"], doc["level"]),
                         (False, "smtp-auth", "tenant"))
        smtp = doc["gates"][4]
        self.assertEqual(smtp["outcome"], "FAIL")
        self.assertIn("submitctl tenant set example.com smtp-auth on", smtp["fix"])
        self.assertEqual(doc["reply"]["code"], 535)
        self.assertEqual(doc["gates"][2]["outcome"], "unknown")

    def test_usage(self):
        self.base()
        self.no("explain", "alice@example.com", "--mech", "cram-md5", code=2, stderr="--mech")
        self.no("explain", "alice@example.com", "--ip", "300.1.1.1", code=2, stderr="--ip")
        self.no("explain", "alice@example.com", "--mech", "xoauth2", "--app-password", code=2)
        self.no("explain", "not-an-address", code=2)


# --- issue 3: OAuth, the built-in issuer, app passwords, grants, submission limits ---

def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_parts(token):
    header, payload, sig = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)), sig


class OAuthCase(CtlCase):
    def keyfile(self, domain="example.com"):
        return os.path.join(self.dir, "keys", domain + ".pem")

    def kid(self, domain="example.com"):
        return json.loads(self.ok("tenant", "jwks", domain))["keys"][0]["kid"]

    def sign(self, claims, domain="example.com", header=None):
        """A compact JWS signed with a tenant's built-in Ed25519 key by the openssl command
        (an implementation independent of submitd's)."""
        header = header or {"alg": "EdDSA", "typ": "JWT", "kid": self.kid(domain)}
        signing_input = (b64url(json.dumps(header).encode()) + "."
                         + b64url(json.dumps(claims).encode()))
        msg = os.path.join(self.dir, "signing-input")
        with open(msg, "w") as f:
            f.write(signing_input)
        r = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey",
                            self.keyfile(domain), "-in", msg], capture_output=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), 64)
        return signing_input + "." + b64url(r.stdout)

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": "submitd:example.com", "aud": "submitd", "sub": "alice@example.com",
             "email": "alice@example.com", "scp": "SMTP.Send", "iat": now, "nbf": now,
             "exp": now + 600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def issue(self, *args):
        out = self.ok("token", "issue", *args)
        self.assertEqual(len(out.splitlines()), 1, out)
        return out.strip()


class TestOAuthTenant(OAuthCase):
    def test_add_makes_signing_key_and_show_has_oauth_and_limits(self):
        out = self.ok("tenant", "add", "example.com")
        self.assertIn("built-in issuer submitd:example.com", out)
        self.assertEqual(stat.S_IMODE(os.stat(self.keyfile()).st_mode), 0o600)
        t = self.js("tenant", "show", "example.com")
        self.assertEqual(t["oauth"], {"issuer": "builtin", "issuer_name": "submitd:example.com",
                                      "jwks": "builtin", "audience": "submitd",
                                      "scope": "SMTP.Send", "identity_claim": "any"})
        self.assertEqual(t["limits"], {"max_sessions": 3, "messages_per_minute": 30,
                                       "recipients_per_day": 10000,
                                       "recipients_per_message": 500})  # SPEC 4 defaults
        self.assertEqual(t["app_passwords"], "off")
        out = self.ok("tenant", "show", "example.com")
        self.assertRegex(out, r"\n  issuer\s+builtin \(submitd:example.com\)\n")
        self.assertRegex(out, r"\n  jwks\s+builtin \(submitctl tenant jwks example.com\)\n")
        self.assertRegex(out, r"\n  audience\s+submitd\n")
        self.assertRegex(out, r"\n  scope\s+SMTP.Send")
        self.assertRegex(out, r"\n  identity claim\s+any")
        self.assertRegex(out, r"\n  recipients-per-day\s+10000\n")
        self.assertRegex(out, r"\napp-passwords\s+off\n")

    def test_set_oauth_and_limits(self):
        self.ok("tenant", "add", "example.com")
        out = self.ok("tenant", "set", "example.com", "issuer",
                      "https://login.example.net/t1/v2.0", "jwks",
                      "https://login.example.net/t1/keys")  # several pairs in one command
        self.assertIn("issuer = https://login.example.net/t1/v2.0", out)
        self.assertIn("jwks = https://login.example.net/t1/keys", out)
        self.assertNotIn("note:", out)
        for key, value in (("audience", "api://submit"), ("scope", "Mail.Submit"),
                           ("identity-claim", "upn"), ("max-sessions", "5"),
                           ("messages-per-minute", "60"), ("recipients-per-day", "200"),
                           ("recipients-per-message", "50")):
            self.ok("tenant", "set", "example.com", key, value)
        t = self.js("tenant", "show", "example.com")
        self.assertEqual(t["oauth"], {"issuer": "https://login.example.net/t1/v2.0",
                                      "issuer_name": "https://login.example.net/t1/v2.0",
                                      "jwks": "https://login.example.net/t1/keys",
                                      "audience": "api://submit", "scope": "Mail.Submit",
                                      "identity_claim": "upn"})
        self.assertEqual(t["limits"], {"max_sessions": 5, "messages_per_minute": 60,
                                       "recipients_per_day": 200, "recipients_per_message": 50})
        out = self.ok("tenant", "show", "example.com")
        self.assertRegex(out, r"\n  issuer\s+https://login.example.net/t1/v2.0\n")
        self.assertRegex(out, r"\n  max-sessions\s+5\n")
        # half a switch is pointed out
        out = self.ok("tenant", "set", "example.com", "jwks", "builtin")
        self.assertIn("note: tokens of issuer https://login.example.net/t1/v2.0 are checked "
                      "against the built-in key", out)
        self.ok("tenant", "set", "example.com", "issuer", "builtin", "identity-claim", "any")
        t = self.js("tenant", "show", "example.com")
        self.assertEqual((t["oauth"]["issuer"], t["oauth"]["jwks"], t["oauth"]["identity_claim"]),
                         ("builtin", "builtin", "any"))

    def test_jwks_file_is_checked_and_made_absolute(self):
        self.ok("tenant", "add", "example.com")
        self.ok("tenant", "add", "idp.example")
        with open(os.path.join(self.dir, "idp.json"), "w") as f:
            f.write(self.ok("tenant", "jwks", "idp.example"))
        with open(os.path.join(self.dir, "junk.json"), "w") as f:
            f.write("{not json")
        with open(os.path.join(self.dir, "empty.json"), "w") as f:
            f.write('{"keys": []}')
        r = subprocess.run([SUBMITCTL, "-d", self.dir, "tenant", "set", "example.com", "jwks",
                            "idp.json"], cwd=self.dir, capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.js("tenant", "show", "example.com")["oauth"]["jwks"],
                         os.path.join(os.path.realpath(self.dir), "idp.json"))
        self.no("tenant", "set", "example.com", "jwks", os.path.join(self.dir, "junk.json"),
                stderr="junk.json")
        self.no("tenant", "set", "example.com", "jwks", os.path.join(self.dir, "empty.json"),
                stderr="no usable signing key")
        self.no("tenant", "set", "example.com", "jwks", os.path.join(self.dir, "missing.json"),
                stderr="No such file or directory")
        with open(self.keyfile("idp.example")) as f:  # a private key is refused
            private = f.read()
        self.assertIn("PRIVATE KEY", private)
        self.no("tenant", "set", "example.com", "jwks", self.keyfile("idp.example"))

    def test_set_errors(self):
        self.ok("tenant", "add", "example.com")
        for args, why in ((("identity-claim", "sid"), "email, upn, preferred_username or any"),
                          (("max-sessions", "0"), "from 1 to 1000000"),
                          (("recipients-per-day", "1000001"), "from 1 to 1000000"),
                          (("messages-per-minute", "many"), "from 1 to 1000000"),
                          (("audience", "two words"), "without spaces"),
                          (("scope", "x" * 64), "1-63"),
                          (("issuer", ""), "issuer"),
                          (("smtp-auth", "on", "scope"), "has no value"),
                          (("color", "red"), "unknown setting color")):
            self.no("tenant", "set", "example.com", *args, code=2, stderr=why)
        # the directory's own checks: exit 1 with its reason
        self.no("tenant", "set", "example.com", "issuer", "1bad:issuer", stderr="not a URI")
        self.no("tenant", "set", "nowhere.example", "max-sessions", "4", stderr="no such tenant")
        # a bad pair anywhere changes nothing
        self.no("tenant", "set", "example.com", "max-sessions", "7", "scope", "a b", code=2)
        self.assertEqual(self.js("tenant", "show", "example.com")["limits"]["max_sessions"], 3)

    def test_tenant_jwks(self):
        self.ok("tenant", "add", "example.com")
        doc = json.loads(self.ok("tenant", "jwks", "example.com"))
        self.assertEqual(len(doc["keys"]), 1)
        key = doc["keys"][0]
        self.assertEqual((key["kty"], key["crv"]), ("OKP", "Ed25519"))
        self.assertEqual(len(b64url_decode(key["x"])), 32)
        self.assertNotIn("d", key)  # never the private part
        self.assertTrue(key["kid"])
        self.assertEqual(json.loads(self.ok("tenant", "jwks", "example.com")), doc)  # stable
        self.ok("tenant", "add", "other.example")
        self.assertNotEqual(self.kid("other.example"), key["kid"])  # one key per tenant
        self.no("tenant", "jwks", "nowhere.example", stderr="no such tenant")
        self.no("tenant", "jwks", "bad domain", code=2)

    def test_jwks_made_when_first_needed(self):
        self.ok("tenant", "add", "example.com")
        os.unlink(self.keyfile())  # as for a tenant made before the built-in issuer existed
        self.assertTrue(json.loads(self.ok("tenant", "jwks", "example.com"))["keys"])
        self.assertTrue(os.path.exists(self.keyfile()))


class TestTokenIssue(OAuthCase):
    def test_token_has_the_expected_claims(self):
        self.base()
        before = int(time.time())
        token = self.issue("ALICE@example.com")
        self.assertRegex(token, r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
        header, claims, sig = token_parts(token)
        self.assertEqual(header["alg"], "EdDSA")
        self.assertEqual(header["kid"], self.kid())
        self.assertEqual(len(b64url_decode(sig)), 64)
        self.assertEqual(claims["iss"], "submitd:example.com")
        self.assertEqual(claims["aud"], "submitd")
        self.assertEqual(claims["sub"], "alice@example.com")
        self.assertEqual(claims["email"], "alice@example.com")
        self.assertEqual(claims["scp"], "SMTP.Send")
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertLessEqual(abs(claims["iat"] - before), 5)
        self.assertLessEqual(claims["nbf"], claims["iat"])
        self.assertTrue(claims["jti"])
        self.assertNotEqual(token_parts(self.issue("alice@example.com"))[1]["jti"], claims["jti"])

    def test_options_and_tenant_defaults(self):
        self.base()
        _, claims, _ = token_parts(self.issue("alice@example.com", "--ttl", "60", "--scope",
                                              "Custom.Scope", "--audience", "api://other"))
        self.assertEqual(claims["exp"] - claims["iat"], 60)
        self.assertEqual((claims["scp"], claims["aud"]), ("Custom.Scope", "api://other"))
        _, claims, _ = token_parts(self.issue("alice@example.com", "--ttl", "86400"))
        self.assertEqual(claims["exp"] - claims["iat"], 86400)
        self.ok("tenant", "set", "example.com", "audience", "api://submit", "scope", "Mail.Submit")
        _, claims, _ = token_parts(self.issue("alice@example.com"))
        self.assertEqual((claims["scp"], claims["aud"]), ("Mail.Submit", "api://submit"))

    def test_refusals(self):
        self.base()
        for ttl in ("0", "86401", "-5", "soon"):
            self.no("token", "issue", "alice@example.com", "--ttl", ttl, code=2, stderr="--ttl")
        self.no("token", "issue", "alice@example.com", "--scope", "two scopes", code=2,
                stderr="--scope")
        self.no("token", "issue", "alice@example.com", "--audience", "", code=2)
        self.no("token", "issue", "not-an-address", code=2, stderr="not a valid address")
        self.no("token", "issue", "ghost@example.com", stderr="no such mailbox: ghost@example.com")
        self.no("token", "issue", "alice@nowhere.example", stderr="not an accepted domain")
        self.ok("tenant", "set", "example.com", "issuer", "https://login.example.net/t1/v2.0")
        out, _ = self.no("token", "issue", "alice@example.com",
                         stderr="uses the external issuer https://login.example.net/t1/v2.0")
        self.assertEqual(out, "")  # nothing on stdout
        self.ok("tenant", "set", "example.com", "issuer", "builtin")
        self.issue("alice@example.com")


class TestAppPassword(OAuthCase):
    def add(self, label, address="alice@example.com"):
        out = self.ok("app-password", "add", address, label)
        secrets = re.findall(r"^secret: (\S+)$", out, re.M)
        self.assertEqual(len(secrets), 1, out)
        return secrets[0], out

    def test_add_prints_the_secret_once_and_list_never(self):
        self.base()
        secret, out = self.add("phone")
        self.assertRegex(secret, r"^[a-z2-7]{20}$")  # base32, ~100 bits
        self.assertEqual(out.count(secret), 1)
        self.assertIn("cannot be shown again", out)
        self.assertIn("app-passwords off", out)
        self.assertIn("submitctl tenant set example.com app-passwords on", out)
        digest = hashlib.blake2b(secret.encode(), digest_size=32).hexdigest()
        listing = self.ok("app-password", "list", "alice@example.com")
        self.assertRegex(listing, r"\nphone\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+never\n")
        rows = self.js("app-password", "list", "alice@example.com")
        self.assertEqual([(r["label"], r["last_used"]) for r in rows["app_passwords"]],
                         [("phone", None)])
        self.assertRegex(rows["app_passwords"][0]["created"], r"^\d{4}-\d\d-\d\dT")
        for text in (listing, json.dumps(rows), self.ok("mailbox", "show", "alice@example.com"),
                     json.dumps(self.js("mailbox", "show", "alice@example.com"))):
            self.assertNotIn(secret, text)
            self.assertNotIn(digest, text)
        with open(os.path.join(self.dir, "directory.db"), "rb") as f:
            self.assertNotIn(secret.encode(), f.read())  # only the hash is stored
        self.ok("tenant", "set", "example.com", "app-passwords", "on")
        secret2, out = self.add("laptop")
        self.assertNotEqual(secret, secret2)
        self.assertIn("app-passwords on", out)
        doc = self.js("app-password", "add", "alice@example.com", "tablet")
        self.assertRegex(doc["secret"], r"^[a-z2-7]{20}$")
        self.assertEqual((doc["label"], doc["tenant_app_passwords"]), ("tablet", "on"))
        self.assertEqual(self.js("mailbox", "show", "alice@example.com")["app_password_count"], 3)
        self.assertRegex(self.ok("mailbox", "show", "alice@example.com"), r"3 app passwords")

    def test_revoke_and_errors(self):
        self.base()
        self.add("phone")
        self.no("app-password", "add", "alice@example.com", "phone", stderr="already exists")
        self.no("app-password", "add", "ghost@example.com", "phone", stderr="no such mailbox")
        self.no("app-password", "add", "not-an-address", "phone", code=2)
        self.no("app-password", "add", "alice@example.com", "", code=2, stderr="label")
        self.no("app-password", "add", "alice@example.com", "x" * 64, code=2, stderr="label")
        self.no("app-password", "add", "alice@example.com", "tab\there", code=2, stderr="label")
        self.no("app-password", "add", "alice@example.com", code=2, stderr="missing arguments")
        self.no("app-password", "list", "ghost@example.com", stderr="no such mailbox")
        self.ok("app-password", "revoke", "alice@example.com", "phone")
        self.no("app-password", "revoke", "alice@example.com", "phone",
                stderr='no such app password "phone" of alice@example.com')
        self.assertEqual(self.js("app-password", "list", "alice@example.com")["app_passwords"],
                         [])
        self.add("phone")  # the label is free again


class TestGrants(CtlCase):
    def test_send_as_and_access_grants_in_mailbox_show(self):
        self.base()
        self.ok("mailbox", "add", "bob@example.com", input="pw\n")
        self.ok("tenant", "add", "other.example")
        self.ok("mailbox", "add", "carol@other.example", input="pw\n")
        self.assertIn("may now send as bob@example.com",
                      self.ok("mailbox", "grant-send-as", "alice@example.com", "bob@example.com"))
        self.ok("mailbox", "grant-access", "alice@example.com", "bob@example.com")
        self.ok("mailbox", "grant-access", "alice@example.com", "app-7f3a9c")
        show = self.js("mailbox", "show", "alice@example.com")
        self.assertEqual(show["send_as"], ["bob@example.com"])
        self.assertEqual(sorted(show["access"]), ["app-7f3a9c", "bob@example.com"])
        out = self.ok("mailbox", "show", "alice@example.com")
        self.assertRegex(out, r"\nsend-as grants\s+bob@example.com\n")
        self.assertRegex(out, r"\naccess grants\s+.*app-7f3a9c")
        self.assertEqual(self.js("mailbox", "show", "bob@example.com")["send_as"], [])
        self.assertRegex(self.ok("mailbox", "show", "bob@example.com"),
                         r"\nsend-as grants\s+\(none\)\n")
        self.ok("mailbox", "revoke-send-as", "alice@example.com", "bob@example.com")
        self.ok("mailbox", "revoke-access", "alice@example.com", "app-7f3a9c")
        show = self.js("mailbox", "show", "alice@example.com")
        self.assertEqual((show["send_as"], show["access"]), ([], ["bob@example.com"]))

    def test_errors(self):
        self.base()
        self.ok("tenant", "add", "other.example")
        self.no("mailbox", "grant-send-as", "alice@example.com", "x@other.example")  # foreign
        self.no("mailbox", "grant-send-as", "ghost@example.com", "alice@example.com",
                stderr="no such mailbox ghost@example.com")
        self.no("mailbox", "grant-send-as", "alice@example.com", "no-at-sign", code=2,
                stderr="not a valid address")
        self.no("mailbox", "grant-access", "alice@example.com", "two words", code=2,
                stderr="not a valid principal")
        self.no("mailbox", "grant-access", "alice@example.com", code=2)
        self.no("mailbox", "revoke-send-as", "alice@example.com", "bob@example.com")
        self.no("mailbox", "revoke-access", "alice@example.com", "nobody@example.com")


class TestLimits(CtlCase):
    def limits(self):
        return self.js("mailbox", "show", "alice@example.com")["limits"]

    def test_inherit_and_override(self):
        self.base()
        lim = self.limits()
        self.assertEqual(lim["max_sessions"], {"tenant": 3, "mailbox": "inherit",
                                               "effective": 3, "decided_by": "tenant"})
        self.assertEqual([lim[k]["effective"] for k in ("messages_per_minute",
                                                        "recipients_per_day",
                                                        "recipients_per_message")],
                         [30, 10000, 500])
        self.assertRegex(self.ok("mailbox", "show", "alice@example.com"),
                         r"\n  max-sessions\s+3 \(tenant\)\n")
        self.ok("tenant", "set", "example.com", "max-sessions", "5")
        self.assertEqual(self.limits()["max_sessions"]["effective"], 5)
        self.ok("mailbox", "set", "alice@example.com", "max-sessions", "2")
        self.ok("mailbox", "set", "alice@example.com", "recipients-per-message", "1000")
        lim = self.limits()
        self.assertEqual(lim["max_sessions"], {"tenant": 5, "mailbox": 2, "effective": 2,
                                               "decided_by": "mailbox"})
        self.assertEqual(lim["recipients_per_message"]["effective"], 1000)  # above the tenant's
        self.assertEqual(lim["messages_per_minute"]["decided_by"], "tenant")
        out = self.ok("mailbox", "show", "alice@example.com")
        self.assertRegex(out, r"\n  max-sessions\s+2 \(mailbox; tenant 5\)\n")
        self.assertRegex(out, r"\n  messages-per-minute\s+30 \(tenant\)\n")
        self.ok("mailbox", "set", "alice@example.com", "max-sessions", "inherit")
        self.assertEqual(self.limits()["max_sessions"], {"tenant": 5, "mailbox": "inherit",
                                                         "effective": 5,
                                                         "decided_by": "tenant"})

    def test_errors(self):
        self.base()
        for value in ("0", "1000001", "lots", "-1"):
            self.no("mailbox", "set", "alice@example.com", "max-sessions", value, code=2,
                    stderr="value must be a number from 1 to 1000000, or inherit")
        self.no("mailbox", "set", "ghost@example.com", "recipients-per-day", "5")


class TestExplainToken(OAuthCase):
    def setUp(self):
        super().setUp()
        self.base(tenant_on=True)

    def explain(self, token, *args, code, address="alice@example.com"):
        rc, out, err = self.run_ctl("explain", address, "--token-stdin", *args,
                                    input=token + "\n")
        self.assertEqual(rc, code, "explain %s: %s%s" % (" ".join(args), err, out))
        for part in token.split("."):  # the token is never printed
            if len(part) >= 16:
                self.assertNotIn(part, out + err)
        return out

    def check(self, out, name):
        for line in out.splitlines():
            fields = line.split()
            if fields and fields[0] == name and len(fields) > 1:
                return fields[1], line
        self.fail("no check %s in\n%s" % (name, out))

    def gate(self, out, gate):
        for line in out.splitlines():
            if gate in line.split()[:2]:
                return line
        self.fail("no gate %s in\n%s" % (gate, out))

    def assert_check_fails(self, out, name):
        names = ["format", "alg", "key", "signature", "exp", "nbf", "iss", "aud", "scope",
                 "identity", "act-as"]
        at = names.index(name)
        for i, n in enumerate(names):
            self.assertEqual(self.check(out, n)[0], "pass" if i < at else
                             "FAIL" if i == at else "-", out)
        self.assertRegex(self.gate(out, "credentials"), r"\bFAIL\b.*fails check %s" % name)
        self.assertIn("`535 5.7.3 Authentication unsuccessful`", out.strip().splitlines()[-1])

    def test_issued_token_passes_credentials(self):
        token = self.issue("alice@example.com")
        out = self.explain(token, code=0)
        self.assertNotIn(token, out)
        for name in ("format", "alg", "key", "signature", "exp", "nbf", "iss", "aud", "scope",
                     "identity", "act-as"):
            self.assertEqual(self.check(out, name)[0], "pass", out)
        self.assertIn("EdDSA", self.check(out, "alg")[1])
        self.assertIn(self.kid(), self.check(out, "key")[1])
        self.assertIn("submitd:example.com", self.check(out, "iss")[1])
        self.assertIn("is the mailbox itself", self.check(out, "act-as")[1])
        self.assertRegex(self.gate(out, "credentials"), r"\bpass\b.*token valid")
        self.assertIn("the OAuth token from standard input", out.splitlines()[0])
        last = out.strip().splitlines()[-1]
        self.assertTrue(last.startswith("Result: ALLOWED"), last)
        self.assertNotIn("the token is valid", last)  # known now, not assumed
        # OAUTHBEARER, and JSON
        self.explain(token, "--mech", "oauthbearer", code=0)
        doc = json.loads(self.explain(token, "--json", code=0))
        self.assertEqual(doc["gates"][2]["outcome"], "pass")
        self.assertTrue(doc["token"]["valid"])
        self.assertEqual(doc["token"]["result"], "ok")
        self.assertIsNone(doc["token"].get("failed_check"))
        self.assertEqual({c["outcome"] for c in doc["token"]["checks"]}, {"pass"})
        self.assertEqual(doc["token"]["identity"], "alice@example.com")
        self.assertNotIn(token, json.dumps(doc))

    def test_smtp_auth_still_decides_after_a_valid_token(self):
        token = self.issue("alice@example.com")
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "off")
        out = self.explain(token, code=1)
        self.assertRegex(self.gate(out, "credentials"), r"\bpass\b")
        self.assertIn("Result: DENIED by gate smtp-auth", out)

    def test_expired_token_names_the_exp_check(self):
        now = int(time.time())
        token = self.sign(self.claims(iat=now - 900, nbf=now - 900, exp=now - 120))
        out = self.explain(token, code=1)
        self.assert_check_fails(out, "exp")
        self.assertIn("expired at", self.check(out, "exp")[1])
        self.assertIn("fix: submitctl token issue alice@example.com", out)
        doc = json.loads(self.explain(token, "--json", code=1))
        self.assertEqual((doc["token"]["result"], doc["token"]["failed_check"]),
                         ("expired", "exp"))
        self.assertEqual(doc["gates"][2]["outcome"], "FAIL")
        # within the 60 s skew it still passes
        self.explain(self.sign(self.claims(exp=now - 30)), code=0)

    def test_short_ttl_token_expires(self):
        token = self.issue("alice@example.com", "--ttl", "1")
        self.explain(token, code=0)  # exp is 1 s away; skew covers a little more
        _, claims, _ = token_parts(token)
        self.assertEqual(claims["exp"] - claims["iat"], 1)

    def test_each_claim_check(self):
        now = int(time.time())
        for claims, name in ((self.claims(nbf=now + 600), "nbf"),
                             (self.claims(iss="submitd:other.example"), "iss"),
                             (self.claims(aud="someone-else"), "aud"),
                             (self.claims(scp="Mail.Read"), "scope"),
                             (self.claims(email=None), "identity")):
            out = self.explain(self.sign(claims), code=1)
            self.assert_check_fails(out, name)
        out = self.explain(self.sign(self.claims(iss="submitd:other.example")), code=1)
        self.assertIn("the tenant expects 'submitd:example.com'", self.check(out, "iss")[1])
        # an app-only token (roles SMTP.SendAsApp, no scope) passes the scope check
        out = self.explain(self.sign(self.claims(scp=None, roles=["SMTP.SendAsApp"])), code=0)
        self.assertIn("SMTP.SendAsApp", self.check(out, "scope")[1])

    def test_signature_key_alg_and_format(self):
        token = self.issue("alice@example.com")
        head, body, sig = token.split(".")
        bad = bytearray(b64url_decode(sig))
        bad[0] ^= 1
        self.assert_check_fails(self.explain(head + "." + body + "." + b64url(bytes(bad)),
                                             code=1), "signature")
        self.ok("tenant", "add", "other.example")  # signed by another tenant's key
        self.assert_check_fails(self.explain(self.sign(self.claims(), domain="other.example"),
                                             code=1), "key")
        none = (b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "."
                + b64url(json.dumps(self.claims()).encode()) + ".")
        self.assert_check_fails(self.explain(none, code=1), "alg")
        hs = (b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + body + "."
              + sig)
        self.assert_check_fails(self.explain(hs, code=1), "alg")
        self.assert_check_fails(self.explain("not-a-token", code=1), "format")
        out = self.explain("a" * 9000, code=1)
        self.assert_check_fails(out, "format")
        self.assertIn("longer than 8192", self.check(out, "format")[1])

    def test_delegation_through_an_access_grant(self):
        self.ok("mailbox", "add", "bob@example.com", input="pw\n")
        token = self.issue("bob@example.com")
        out = self.explain(token, code=1)
        self.assert_check_fails(out, "act-as")
        self.assertIn("fix: submitctl mailbox grant-access alice@example.com bob@example.com",
                      out)
        self.ok("mailbox", "grant-access", "alice@example.com", "bob@example.com")
        out = self.explain(token, code=0)
        self.assertIn("bob@example.com was granted access to alice@example.com",
                      self.check(out, "act-as")[1])
        self.assertTrue(json.loads(self.explain(token, "--json", code=0))["token"]["delegated"])

    def test_external_issuer_with_a_jwks_file(self):
        """A tenant switched to another issuer: its iss, audience, identity claim and keys."""
        self.ok("tenant", "add", "idp.example")  # its key plays the external provider's
        jwks = os.path.join(self.dir, "idp-jwks.json")
        with open(jwks, "w") as f:
            f.write(self.ok("tenant", "jwks", "idp.example"))
        self.ok("tenant", "set", "example.com", "issuer", "https://idp.example/v2.0", "jwks", jwks,
                "audience", "api://submit", "identity-claim", "upn")
        good = self.claims(iss="https://idp.example/v2.0", aud=["api://submit", "x"],
                           email="someone@else.example", upn="Alice@Example.com")
        out = self.explain(self.sign(good, domain="idp.example"), code=0)
        self.assertIn("alice@example.com is the mailbox itself", self.check(out, "act-as")[1])
        self.assertIn(jwks, self.check(out, "key")[1])
        # a token of the built-in issuer is now refused, and no fix offers token issue
        out = self.explain(self.issue_builtin_for_test(), code=1)
        self.assert_check_fails(out, "key")
        self.assertNotIn("fix: submitctl token issue", out)

    def issue_builtin_for_test(self):
        return self.sign(self.claims())  # the tenant's own built-in key, no longer trusted

    def test_keys_unavailable_is_a_temporary_failure(self):
        self.ok("tenant", "set", "example.com", "jwks", "http://127.0.0.1:9/jwks.json")
        out = self.explain(self.issue_builtin_for_test(), code=1)
        self.assertEqual(self.check(out, "key")[0], "FAIL")
        self.assertIn("cannot get the keys", self.check(out, "key")[1])
        self.assertIn("`454 4.7.0", out.strip().splitlines()[-1])

    def test_usage(self):
        self.no("explain", "alice@example.com", "--token-stdin", input="", code=2,
                stderr="no token on standard input")
        self.no("explain", "alice@example.com", "--token-stdin", input=" \n\n", code=2)
        self.no("explain", "alice@example.com", "--token-stdin", "--mech", "plain", input="x",
                code=2, stderr="--token-stdin needs an OAuth mechanism")
        out = self.explain(self.issue("alice@example.com"), code=1, address="bob@example.com")
        self.assertIn("no mailbox", out)


SIGNIN_COLS = ("time_ms, ref, session, client_ip, client_port, listener, tls, mech, user, "
               "tenant, success, gate, level, reply_code, reply_enhanced, reply_text, reason, "
               "detail")
SUBMISSION_COLS = ("time_ms, ref, session, client_ip, client_port, user, stage, accepted, "
                   "reply_code, reply_enhanced, reply_text, sender, recipient, recipients, size, "
                   "queue_id, last_auth_ref")


@unittest.skipIf(os.access(SUBMITD, os.X_OK), "submitd is built: TestLogsLive covers the logs")
class TestLogsFromRows(CtlCase):
    """Without the server, rows are written straight into log.db (schema made by submitctl)."""

    def setUp(self):
        super().setUp()
        self.ok("signins")  # creates log.db with the event log's schema
        db = sqlite3.connect(os.path.join(self.dir, "log.db"))
        now = int(time.time() * 1000)
        with db:
            db.execute("INSERT INTO signins (%s) VALUES (%s)" % (SIGNIN_COLS, ",".join("?" * 18)),
                       (now - 2000, "0000000000000001", "00000000000000S1", "192.0.2.1", 50000,
                        "127.0.0.1:2587", "TLSv1.3", "PLAIN", "alice@example.com",
                        "example.com", 0, "smtp-auth", "tenant", 535, "5.7.139",
                        TENANT_DISABLED[12:], "", ""))
            db.execute("INSERT INTO signins (%s) VALUES (%s)" % (SIGNIN_COLS, ",".join("?" * 18)),
                       (now - 1000, "0000000000000002", "00000000000000S2", "192.0.2.2", 50001,
                        "127.0.0.1:2587", "TLSv1.3", "LOGIN", "bob@example.com", "example.com",
                        1, "none", "none", 235, "2.7.0", "Authentication successful", "", ""))
            db.execute("INSERT INTO submissions (%s) VALUES (%s)"
                       % (SUBMISSION_COLS, ",".join("?" * 17)),
                       (now, "0000000000000003", "00000000000000S1", "192.0.2.1", 50000, "",
                        "mail", 0, 530, "5.7.57", "Client not authenticated to send mail.",
                        "alice@example.com", "", 0, 0, "", "0000000000000001"))
        db.close()

    def test_signins(self):
        out = self.ok("signins")
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertIn("0000000000000002", lines[1])  # newest first
        self.assertIn("192.0.2.1:50000", lines[2])
        self.assertRegex(lines[2], r"PLAIN\s+alice@example.com\s+failure\s+smtp-auth\s+535 5.7.139")
        self.assertRegex(lines[2], r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
        rows = self.js("signins", "--mailbox", "ALICE@example.com")
        self.assertEqual([r["ref"] for r in rows], ["0000000000000001"])
        self.assertEqual(len(self.js("signins", "--limit", "1")), 1)
        one = self.js("signins", "--ref", "0000000000000002")
        self.assertEqual((one["user"], one["success"]), ("bob@example.com", True))
        self.assertRegex(self.ok("signins", "--ref", "0000000000000001"), r"gate\s+smtp-auth")
        # a submission's reference is found from signins too
        self.assertEqual(self.js("signins", "--ref", "0000000000000003")["log"], "submissions")
        self.no("signins", "--ref", "00000000000000FF", stderr="no event with reference")
        self.no("signins", "--limit", "0", code=2)

    def test_submissions(self):
        out = self.ok("submissions")
        self.assertRegex(out, r"mail\s+refused\s+530 5.7.57")
        self.assertEqual(self.js("submissions", "--mailbox", "alice@example.com")[0]["ref"],
                         "0000000000000003")
        self.assertEqual(self.js("submissions", "--ref", "0000000000000001")["log"], "signins")
        self.assertEqual(self.js("submissions", "--mailbox", "nobody@example.com"), [])
        self.no("submissions", "--ref", "00000000000000FF")


class TestQueue(CtlCase):
    def test_empty_queue_and_errors(self):
        self.ok("tenant", "add", "example.com")
        self.assertEqual(self.js("queue", "list"), [])
        self.assertIn("ID", self.ok("queue", "list"))
        self.no("queue", "show", "0123456789ABCDEF", stderr="no message")
        self.no("queue", "show", "../../etc/passwd", code=2, stderr="not a queue id")

    @unittest.skipIf(os.access(SUBMITD, os.X_OK), "submitd is built: TestLogsLive covers it")
    def test_queued_file(self):
        """A queue file in the format of docs/spool.md."""
        self.ok("queue", "list")  # creates spool/{tmp,queue}
        qid = "0123456789ABCDEF"
        env = {"id": qid, "received_ms": 1700000000123, "sender": "alice@example.com",
               "rcpts": ["x@example.org", "y@example.org"], "auth_user": "alice@example.com",
               "tenant": "example.com", "client_ip": "192.0.2.1", "client_port": 4242,
               "helo": "client.test", "session": "00000000000000S1", "body": "8BITMIME",
               "smtputf8": False}
        message = b"Subject: hi\r\n\r\nHello.\r\n"
        with open(os.path.join(self.dir, "spool", "queue", qid), "wb") as f:
            f.write(b"SUBMITD-QUEUE 1\n" + json.dumps(env).encode() + b"\n" + message)
        self.check_queue(qid, "alice@example.com", 2, message)

    def check_queue(self, qid, sender, n_rcpts, message):
        rows = self.js("queue", "list")
        self.assertEqual([(r["id"], r["sender"], r["recipient_count"]) for r in rows],
                         [(qid, sender, n_rcpts)])
        self.assertEqual(rows[0]["size"], len(message))
        self.assertIn(qid, self.ok("queue", "list"))
        show = self.js("queue", "show", qid)
        self.assertEqual(len(show["recipients"]), n_rcpts)
        self.assertNotIn("message", show)
        self.assertEqual(self.js("queue", "show", qid, "--body")["message"].encode(), message)
        out = self.ok("queue", "show", qid, "--body")
        self.assertIn("sender              <%s>" % sender, out)
        self.assertTrue(out.encode().endswith(message))


@unittest.skipUnless(os.access(SUBMITD, os.X_OK), "submitd is not built")
class TestLogsLive(CtlCase):
    """The real server writes the events; submitctl finds them by the reference in a reply."""

    def setUp(self):
        super().setUp()
        from tests.integration import harness  # only when the server exists
        self.harness = harness
        self.daemon = harness.Daemon()
        self.dir = self.daemon.dir
        self.open_all()
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "off")
        self.daemon.start()

    def tearDown(self):
        self.daemon.stop()
        self.daemon.cleanup()

    def wait_event(self, kind, ref):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rc, out, _ = self.run_ctl(kind, "--ref", ref, "--json")
            if rc == 0:
                return json.loads(out)
            time.sleep(0.1)
        self.fail("%s --ref %s never found" % (kind, ref))

    def test_refs_from_replies(self):
        h = self.harness
        s = h.Smtp(self.daemon.cleartext_port)
        s.ehlo()
        line = s.auth_plain("alice@example.com", PASSWORD).line
        self.assertTrue(line.startswith(MAILBOX_DISABLED), line)
        ref = h.split_reference(line)[1]
        self.assertIsNotNone(ref, line)
        signin = self.wait_event("signins", ref)
        self.assertEqual((signin["gate"], signin["reply_code"]), ("smtp-auth", 535))
        r = s.cmd("MAIL FROM:<alice@example.com>")
        m = h.REF_RE.search(r.lines[-1])
        self.assertIsNotNone(m, r.lines)
        sub = self.wait_event("signins", m.group("id"))  # found in the other log
        self.assertEqual(sub["log"], "submissions")
        self.assertEqual(sub["reply_code"], 530)
        s.close()
        rows = self.js("signins", "--mailbox", "alice@example.com")
        self.assertTrue(any(r["ref"] == ref for r in rows))
        self.assertIn(ref, self.ok("signins"))
        self.assertIn(m.group("id"), self.ok("submissions"))

    def test_queue_from_server(self):
        h = self.harness
        self.ok("mailbox", "set", "alice@example.com", "smtp-auth", "on")
        s = h.Smtp(self.daemon.cleartext_port)
        s.ehlo()
        r = s.auth_plain("alice@example.com", PASSWORD)
        self.assertTrue(r.lines[-1].startswith("235"), r.lines)
        self.assertTrue(s.cmd("MAIL FROM:<alice@example.com>").lines[-1].startswith("250"))
        self.assertTrue(s.cmd("RCPT TO:<x@example.org>").lines[-1].startswith("250"))
        self.assertTrue(s.cmd("DATA").lines[-1].startswith("354"))
        s.send(h.dot_stuff(b"Subject: hi\r\n\r\nHello.\r\n"))
        r = s.reply()
        m = h.QUEUED_RE.match(r.lines[-1])
        self.assertIsNotNone(m, r.lines)
        s.close()
        qid = m.group("id")
        rows = self.js("queue", "list")
        self.assertIn(qid, [r["id"] for r in rows])
        show = self.js("queue", "show", qid, "--body")
        self.assertEqual(show["recipients"], ["x@example.org"])
        self.assertIn("Hello.", show["message"])


if __name__ == "__main__":
    unittest.main()
