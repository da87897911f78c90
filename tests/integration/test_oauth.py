"""test_oauth.py: SMTP OAuth (issue 3; SPEC sections 3 and 5) against the real daemon: XOAUTH2 and
OAUTHBEARER (RFC 7628) with and without initial response, the JWT checks (RFC 7519/7515: expiry
and skew, audience, issuer, signature, kid, scope, alg none, HMAC confusion, identity) with the
sign-in log naming the failed check and never holding the token, the gates that do and do not
apply to OAuth, delegation, the built-in issuer (`submitctl token issue`, `tenant jwks`), an
external issuer whose tokens the npm `jose` package mints and whose JWKS a local HTTPS server
serves (or a file holds), and real clients: curl, Python smtplib and nodemailer."""

import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

from .harness import (HOSTNAME, PASSWORD, DaemonTestCase, Smtp, b64, json_strings, message,
                      split_reference)
from .oauth_tools import (ACCESS_RULE, BAD, BASIC_OFF, DISABLED, MAILBOX_OFF, OAUTH_MECHS, OK,
                          SECURITY_DEFAULTS, TENANT_OFF, JwksServer, Node, alg_none_token,
                          auth_oauth, b64url_decode, builtin_key, claims_for, eddsa_token,
                          hs256_token, issue_token, jwt_parts, make_ca_and_server_cert,
                          oauthbearer_message, tamper_signature, token_leaks, xoauth2_message)

NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."
QUEUED_IN_TRANSCRIPT = re.compile(r"< 250 2\.0\.0 OK ([0-9A-F]{16})")


def is_true(v):
    return v is True or v == 1 or (isinstance(v, str) and v.lower() in ("true", "yes", "1"))


class OAuthTestCase(DaemonTestCase):
    """Shared assertions; every token a test uses goes through `remember` so that the class can
    check at the end that none reached the daemon's files."""

    tokens = None

    @classmethod
    def setUpClass(cls):
        cls.tokens = []
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        leaks = token_leaks(cls.daemon, cls.tokens) if cls.daemon and cls.tokens else []
        super().tearDownClass()
        if leaks:
            raise AssertionError("a bearer token was written to %s" % leaks)

    def remember(self, token):
        type(self).tokens.append(token)
        return token

    def token(self, address, *options):
        return self.remember(issue_token(self.daemon, address, *options))

    def assertOAuth(self, mech, user, token, expected, gate=None, detail=None, initial=True,
                    c=None):
        """One OAuth exchange. A token failure (expected BAD with gate 'credentials') must be a
        direct 535 for XOAUTH2 and the RFC 7628 challenge then 535 for OAUTHBEARER; a gate
        failure never has the challenge. A failure's reference finds the sign-in event, whose
        gate, mech and user are checked and whose detail must contain `detail`. Returns
        (reference, event) or (None, None) on success."""
        self.remember(token)
        c = c or self.connect_tls()
        res = auth_oauth(c, mech, user, token, initial=initial)
        if expected == OK:
            self.assertEqual(res.line, OK, res)
            self.assertIsNone(res.challenge, res)
            return None, None
        token_failure = expected == BAD and gate == "credentials"
        if mech == "OAUTHBEARER" and token_failure:
            self.assertIsNotNone(res.challenge, "OAUTHBEARER token failure without the RFC 7628 "
                                                "challenge: %r" % (res,))
            self.assertEqual(res.challenge.get("status"), "invalid_token", res.challenge)
        else:
            self.assertIsNone(res.challenge, "unexpected 334 challenge: %r" % (res,))
        ref, event = self.assertRefReply(res.reply, expected, log="signins")
        self.assertEqual(event.get("mech"), mech, event)
        self.assertEqual(event.get("user"), user, event)
        self.assertFalse(is_true(event.get("success")), event)
        self.assertEqual(event.get("reply_code"), int(expected[:3]), event)
        if gate is not None:
            self.assertEqual(event.get("gate"), gate, event)
        if detail is not None:
            self.assertIn(detail, str(event.get("detail")), event)
        self.assertNotIn(token, json.dumps(event))
        return ref, event


class BuiltinIssuerTest(OAuthTestCase):
    """Tokens of the tenant's built-in issuer (`submitctl token issue`) and tokens made here with
    the tenant's own key (DIR/keys/DOMAIN.pem) whose claims are wrong in one way each."""

    @classmethod
    def provision(cls, d):
        d.provision_example()
        ctl = d.ctl
        for m in ("mboff", "disabled", "blockpol", "owner", "delegate", "logme", "dyn"):
            d.add_mailbox(m + "@example.com")
        ctl("mailbox", "set", "mboff@example.com", "smtp-auth", "off")
        ctl("mailbox", "set", "disabled@example.com", "enabled", "no")
        ctl("mailbox", "set", "blockpol@example.com", "policy", "block-basic")
        # SMTP AUTH off for the tenant; one mailbox turns it on.
        ctl("tenant", "add", "toff.example")
        ctl("tenant", "set", "toff.example", "default-policy", "allow-smtp")
        ctl("tenant", "set", "toff.example", "security-defaults", "off")
        d.add_mailbox("inherit@toff.example")
        d.add_mailbox("mbon@toff.example")
        ctl("mailbox", "set", "mbon@toff.example", "smtp-auth", "on")
        # Security defaults on (the rest allows).
        ctl("tenant", "add", "sd.example")
        ctl("tenant", "set", "sd.example", "smtp-auth", "on")
        ctl("tenant", "set", "sd.example", "default-policy", "allow-smtp")
        d.add_mailbox("user@sd.example")
        # An access rule blocking the test client (the rest allows).
        ctl("tenant", "add", "rule.example")
        ctl("tenant", "set", "rule.example", "smtp-auth", "on")
        ctl("tenant", "set", "rule.example", "security-defaults", "off")
        ctl("tenant", "set", "rule.example", "default-policy", "allow-smtp")
        ctl("rule", "add", "rule.example", "block", "from", "127.0.0.0/8")
        d.add_mailbox("user@rule.example")
        # A tenant as created (SMTP AUTH off, security defaults on, block-basic).
        ctl("tenant", "add", "fresh.example")
        d.add_mailbox("carol@fresh.example")
        # Token settings other than the defaults.
        ctl("tenant", "add", "conf.example")
        ctl("tenant", "set", "conf.example", "smtp-auth", "on")
        d.add_mailbox("user@conf.example")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key_path, cls.kid = builtin_key(cls.daemon, "example.com")

    def signed(self, claims, header_extra=None):
        """A token signed with example.com's built-in key."""
        return self.remember(eddsa_token(self.key_path, self.kid, claims, header_extra))

    def alice_claims(self, **kw):
        return claims_for("alice@example.com", "submitd:example.com", **kw)

    # --- the offer ---
    def test_ehlo_offers_oauth_only_after_tls(self):
        c = self.connect()
        c.ehlo()
        self.assertNotIn("AUTH", c.caps)
        r = c.cmd("AUTH XOAUTH2 " + b64(xoauth2_message("alice@example.com", "x.y.z")))
        self.assertRefReply(r, "538 5.7.11 Encryption required for requested authentication "
                               "mechanism")
        c.starttls()
        c.ehlo()
        self.assertEqual(c.caps.get("AUTH"), ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"])
        c = self.connect_implicit()
        self.assertEqual(c.caps.get("AUTH"), ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"])

    # --- the built-in issuer ---
    def test_token_issue_and_tenant_jwks(self):
        before = int(time.time())
        token = self.token("alice@example.com")
        header, claims = jwt_parts(token)
        self.assertEqual(header.get("alg"), "EdDSA")
        self.assertEqual(header.get("kid"), self.kid)
        self.assertEqual(claims.get("iss"), "submitd:example.com")
        self.assertEqual(claims.get("aud"), "submitd")
        self.assertEqual(claims.get("email"), "alice@example.com")
        self.assertIn("SMTP.Send", str(claims.get("scp")).split())
        self.assertLessEqual(before - 2, claims["iat"])
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        # The JWKS is public: no private part.
        doc = json.loads(self.daemon.ctl("tenant", "jwks", "example.com").stdout.decode())
        self.assertEqual(len(doc["keys"]), 1)
        key = doc["keys"][0]
        self.assertEqual((key.get("kty"), key.get("crv")), ("OKP", "Ed25519"))
        self.assertNotIn("d", key)
        self.assertEqual(len(b64url_decode(key["x"])), 32)
        # Each tenant has its own key.
        _, other_kid = builtin_key(self.daemon, "toff.example")
        self.assertNotEqual(other_kid, self.kid)
        # Options.
        _, c = jwt_parts(self.token("alice@example.com", "--ttl", "120", "--scope",
                                    "Mail.Submit", "--audience", "api://other"))
        self.assertEqual(c["exp"] - c["iat"], 120)
        self.assertEqual(c.get("aud"), "api://other")
        self.assertEqual(c.get("scp"), "Mail.Submit")
        # Unknown mailbox, bad ttl: refused with a reason and no token.
        for args in (("nobody@example.com",), ("alice@example.com", "--ttl", "0"),
                     ("alice@example.com", "--ttl", "100000000"), ("alice@nowhere.test",)):
            with self.subTest(args=args):
                r = self.daemon.ctl("token", "issue", *args, check=False)
                self.assertIn(r.returncode, (1, 2), r)
                self.assertEqual(r.stdout.strip(), b"")
                self.assertNotEqual(r.stderr.strip(), b"")

    # --- good tokens ---
    def test_good_token_each_mechanism_with_and_without_initial_response(self):
        token = self.token("alice@example.com")
        for mech in OAUTH_MECHS:
            for initial in (True, False):
                with self.subTest(mech=mech, initial=initial):
                    c = self.connect_tls()
                    self.assertOAuth(mech, "alice@example.com", token, OK, initial=initial, c=c)
                    msg = message(subject="oauth %s %s" % (mech, initial))
                    qid = self.assertQueued(self.send_message(c, msg))
                    self.assertStoredExactly(qid, msg)
                    c.quit()

    def test_continuation_is_an_empty_334(self):
        c = self.connect_tls()
        for mech in OAUTH_MECHS:
            r = c.cmd("AUTH " + mech)
            self.assertEqual(r.line, "334 ", (mech, r))
            self.assertRefReply(c.cmd("*"), "501 5.7.0 Authentication cancelled")
        self.assertEqual(auth_oauth(c, "XOAUTH2", "alice@example.com",
                                    self.token("alice@example.com")).line, OK)

    def test_successful_oauth_is_logged_with_issuer_and_kid(self):
        token = self.token("logme@example.com")
        c = self.connect_tls()
        self.assertEqual(auth_oauth(c, "OAUTHBEARER", "logme@example.com", token).line, OK)
        records = []
        for _ in range(50):
            records = self.daemon.ctl_json("signins", "--mailbox", "logme@example.com")
            if records:
                break
            time.sleep(0.1)
        self.assertEqual(len(records), 1, records)
        rec = records[0]
        self.assertTrue(is_true(rec.get("success")), rec)
        self.assertEqual(rec.get("mech"), "OAUTHBEARER")
        self.assertIn("submitd:example.com", str(rec.get("detail")), rec)
        self.assertIn(self.kid, str(rec.get("detail")), rec)
        self.assertNotIn(token, json.dumps(rec))

    def test_clock_skew_up_to_60_seconds(self):
        now = int(time.time())
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech):
                # Expired 20 s ago / valid from 20 s on: inside the skew.
                self.assertOAuth(mech, "alice@example.com",
                                 self.signed(self.alice_claims(exp=now - 20, iat=now - 100,
                                                               nbf=now - 100)), OK)
                self.assertOAuth(mech, "alice@example.com",
                                 self.signed(self.alice_claims(nbf=now + 20)), OK)

    def test_app_role_instead_of_scope(self):
        token = self.signed(self.alice_claims(scp=None, roles=["SMTP.SendAsApp"]))
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech):
                self.assertOAuth(mech, "alice@example.com", token, OK)

    # --- bad tokens ---
    def bad_tokens(self):
        """(name, token, the check the sign-in log must name)."""
        now = int(time.time())
        raw_public = b64url_decode(json.loads(self.daemon.ctl(
            "tenant", "jwks", "example.com").stdout.decode())["keys"][0]["x"])
        pem_public = subprocess.run(["openssl", "pkey", "-in", self.key_path, "-pubout"],
                                    capture_output=True, timeout=30, check=True).stdout
        good = self.alice_claims()
        return (
            ("expired", self.signed(self.alice_claims(exp=now - 120, iat=now - 3600,
                                                      nbf=now - 3600)), "token=expired"),
            ("not yet valid", self.signed(self.alice_claims(nbf=now + 600)),
             "token=not-yet-valid"),
            ("wrong audience", self.token("alice@example.com", "--audience", "api://else"),
             "token=wrong-audience"),
            ("wrong issuer", self.signed(claims_for("alice@example.com", "submitd:toff.example")),
             "token=wrong-issuer"),
            ("bad signature", tamper_signature(self.signed(good)), "token=bad-signature"),
            ("unknown kid", self.signed(good, {"kid": "no-such-key"}), "token=unknown-kid"),
            ("missing scope", self.token("alice@example.com", "--scope", "Mail.Read"),
             "token=no-scope"),
            ("alg none", self.remember(alg_none_token(self.kid, good)), "token=alg-rejected"),
            ("HS256 keyed with the raw public key",
             self.remember(hs256_token(self.kid, good, raw_public)), "token=alg-rejected"),
            ("HS256 keyed with the PEM public key",
             self.remember(hs256_token(self.kid, good, pem_public)), "token=alg-rejected"),
            ("another mailbox's token", self.token("bob@example.com"),
             "token=principal-not-permitted"),
            ("not a JWT", "not-a-jwt", "token=malformed"),
        )

    def test_token_problems_xoauth2_fail_with_535_directly(self):
        for name, token, detail in self.bad_tokens():
            with self.subTest(name):
                _, event = self.assertOAuth("XOAUTH2", "alice@example.com", token, BAD,
                                            gate="credentials", detail=detail)
                if "unknown-kid" in detail:
                    self.assertIn("no-such-key", str(event.get("detail")))

    def test_token_problems_oauthbearer_send_the_rfc7628_challenge(self):
        for name, token, detail in self.bad_tokens():
            with self.subTest(name):
                self.assertOAuth("OAUTHBEARER", "alice@example.com", token, BAD,
                                 gate="credentials", detail=detail)

    def test_oauthbearer_failure_without_initial_response(self):
        token = self.token("alice@example.com", "--audience", "api://else")
        self.assertOAuth("OAUTHBEARER", "alice@example.com", token, BAD, gate="credentials",
                         detail="token=wrong-audience", initial=False)

    def test_unknown_user_and_tenant_fail_like_a_bad_token(self):
        token = self.token("alice@example.com")
        for user in ("nobody@example.com", "someone@no-such-tenant.test"):
            for mech in OAUTH_MECHS:
                with self.subTest(user=user, mech=mech):
                    self.assertOAuth(mech, user, token, BAD, gate="credentials")

    def test_failed_oauth_then_mail_names_the_failure_and_retry_works(self):
        c = self.connect_tls()
        token = self.token("alice@example.com", "--scope", "Mail.Read")
        res = auth_oauth(c, "XOAUTH2", "alice@example.com", token)
        ref, _ = self.assertRefReply(res.reply, BAD)
        r = c.cmd("MAIL FROM:<alice@example.com>")
        _, event = self.assertRefReply(r, NOT_AUTHENTICATED + " Error: " + BAD, log="submissions")
        self.assertIn(ref, list(json_strings(event)))
        res = auth_oauth(c, "OAUTHBEARER", "alice@example.com", self.token("alice@example.com"))
        self.assertEqual(res.line, OK)
        self.assertInSync(c)

    def test_malformed_sasl_messages(self):
        token = self.token("alice@example.com")
        malformed = "501 5.5.2"
        for mech, msg in (("XOAUTH2", "user=alice@example.com auth=Bearer " + token),
                          ("XOAUTH2", "auth=Bearer %s\x01\x01" % token),
                          ("OAUTHBEARER", "n,a=alice@example.com,auth=Bearer " + token),
                          ("OAUTHBEARER", "x,a=alice@example.com,\x01auth=Bearer %s\x01\x01"
                           % token)):
            with self.subTest(mech=mech, msg=msg[:40]):
                c = self.connect_tls()
                self.assertEqual(c.cmd("AUTH " + mech).code, 334)
                r = c.cmd(b64(msg))
                if r.code == 334:  # OAUTHBEARER may answer with its error challenge
                    r = c.cmd("AQ==")
                body = split_reference(r.line)[0]
                self.assertTrue(body.startswith(malformed) or body == BAD, r)
                self.assertInSync(c)
        c = self.connect_tls()
        self.assertRefReply(c.cmd("AUTH XOAUTH2 !!!not-base64!!!"),
                            "501 5.5.2 Cannot decode the authentication response")

    # --- the gates (SPEC 3) ---
    def test_smtp_auth_switch_blocks_oauth_without_a_challenge(self):
        for user, expected in (("inherit@toff.example", TENANT_OFF),
                               ("carol@fresh.example", TENANT_OFF),
                               ("mboff@example.com", MAILBOX_OFF)):
            token = self.token(user)
            for mech in OAUTH_MECHS:
                with self.subTest(user=user, mech=mech):
                    self.assertOAuth(mech, user, token, expected, gate="smtp-auth")

    def test_mailbox_on_beats_tenant_off_for_oauth(self):
        token = self.token("mbon@toff.example")
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech):
                self.assertOAuth(mech, "mbon@toff.example", token, OK)

    def test_disabled_account(self):
        token = self.token("disabled@example.com")
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech):
                self.assertOAuth(mech, "disabled@example.com", token, DISABLED,
                                 gate="account-enabled")

    def test_basic_auth_gates_never_block_oauth(self):
        for user, basic_reply in (("user@sd.example", SECURITY_DEFAULTS),
                                  ("blockpol@example.com", BASIC_OFF),
                                  ("user@rule.example", ACCESS_RULE),
                                  ("carol@fresh.example", TENANT_OFF)):
            with self.subTest(user=user):
                c = self.connect_tls()
                self.assertRefReply(c.auth_plain(user, PASSWORD), basic_reply)
                if user == "carol@fresh.example":
                    continue  # the switch blocks OAuth too (the test above)
                token = self.token(user)
                for mech in OAUTH_MECHS:
                    self.assertOAuth(mech, user, token, OK, c=self.connect_tls())
                # And the session can submit.
                c = self.connect_tls()
                self.assertEqual(auth_oauth(c, "XOAUTH2", user, token).line, OK)
                self.assertQueued(self.send_message(c, message(sender=user), sender=user))

    def test_settings_apply_to_the_next_oauth_attempt(self):
        user = "dyn@example.com"
        token = self.token(user)
        ctl = self.daemon.ctl
        self.addCleanup(ctl, "mailbox", "set", user, "smtp-auth", "inherit")
        self.addCleanup(ctl, "mailbox", "set", user, "enabled", "yes")
        c = self.connect_tls()
        for setting, expected, gate in ((("smtp-auth", "off"), MAILBOX_OFF, "smtp-auth"),
                                        (("smtp-auth", "inherit"), OK, None),
                                        (("enabled", "no"), DISABLED, "account-enabled"),
                                        (("enabled", "yes"), OK, None)):
            with self.subTest(setting=setting):
                ctl("mailbox", "set", user, *setting)
                self.assertOAuth("XOAUTH2", user, token, expected, gate=gate)

    # --- delegation ---
    def test_delegated_access(self):
        token = self.token("delegate@example.com")
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech, granted=False):
                self.assertOAuth(mech, "owner@example.com", token, BAD, gate="credentials",
                                 detail="principal-not-permitted")
        self.daemon.ctl("mailbox", "grant-access", "owner@example.com", "delegate@example.com")
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech, granted=True):
                self.assertOAuth(mech, "owner@example.com", token, OK)
        # The grant is one-way: the owner's token does not open the delegate's mailbox.
        self.assertOAuth("XOAUTH2", "delegate@example.com", self.token("owner@example.com"),
                         BAD, gate="credentials")

    # --- tenant token settings ---
    def test_tenant_audience_scope_and_identity_claim(self):
        ctl = self.daemon.ctl
        user = "user@conf.example"
        ctl("tenant", "set", "conf.example", "audience", "api://submit-test")
        token = self.token(user)
        self.assertEqual(jwt_parts(token)[1].get("aud"), "api://submit-test")
        self.assertOAuth("XOAUTH2", user, token, OK)
        self.assertOAuth("XOAUTH2", user, self.token(user, "--audience", "submitd"), BAD,
                         gate="credentials", detail="token=wrong-audience")
        ctl("tenant", "set", "conf.example", "scope", "Mail.Submit")
        self.assertOAuth("OAUTHBEARER", user, self.token(user, "--scope", "SMTP.Send"), BAD,
                         gate="credentials", detail="token=no-scope")
        self.assertOAuth("OAUTHBEARER", user, self.token(user, "--scope", "Mail.Submit"), OK)
        # identity-claim upn: the upn decides, not the email.
        key, kid = builtin_key(self.daemon, "conf.example")
        claims = claims_for("other@conf.example", "submitd:conf.example",
                            audience="api://submit-test", scope="Mail.Submit", upn=user)
        token = self.remember(eddsa_token(key, kid, claims))
        self.assertOAuth("XOAUTH2", user, token, BAD, gate="credentials")
        ctl("tenant", "set", "conf.example", "identity-claim", "upn")
        self.assertOAuth("XOAUTH2", user, token, OK)

    # --- secrets ---
    def test_tokens_never_reach_the_logs(self):
        good = self.token("alice@example.com")
        bad = self.token("alice@example.com", "--audience", "api://else")
        refs = []
        for mech in OAUTH_MECHS:
            self.assertOAuth(mech, "alice@example.com", good, OK)
            ref, _ = self.assertOAuth(mech, "alice@example.com", bad, BAD, gate="credentials")
            refs.append(ref)
        for ref in refs:
            self.assertIsNotNone(self.daemon.find_event("signins", ref))
        self.assertEqual(token_leaks(self.daemon, [good, bad]), [])
        out = self.daemon.ctl("signins", "--json").stdout.decode()
        self.assertNotIn(good, out)
        self.assertNotIn(bad, out)


class OAuthClientsTest(OAuthTestCase):
    """Real clients with a token from `submitctl token issue`: curl (OAUTHBEARER or XOAUTH2, as
    offered), Python smtplib with a custom auth object, nodemailer (XOAUTH2)."""

    def curl(self, token, msg, *extra, port=None):
        path = os.path.join(self.daemon.dir, "curl-oauth.eml")
        with open(path, "wb") as f:
            f.write(msg)
        argv = ["curl", "-sS", "-v", "smtp://127.0.0.1:%d" % (port or self.daemon.starttls_port),
                "--ssl-reqd", "-k", "--max-time", "20", "--oauth2-bearer", token,
                "--user", "alice@example.com:", "--mail-from", "alice@example.com",
                "--mail-rcpt", "r@example.net", "-T", path] + list(extra)
        r = subprocess.run(argv, capture_output=True, timeout=30)
        return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")

    def test_curl(self):
        """curl picks OAUTHBEARER or XOAUTH2 from the offer (it prefers OAUTHBEARER); a token
        failure through OAUTHBEARER goes through the RFC 7628 challenge, which curl answers."""
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        token = self.token("alice@example.com")
        for extra in ((), ("--sasl-ir",)):
            with self.subTest(extra=extra):
                msg = message(subject="curl oauth %s" % (extra,))
                status, out = self.curl(token, msg, *extra)
                self.assertEqual(status, 0, out)
                self.assertRegex(out, r"> AUTH (OAUTHBEARER|XOAUTH2)")
                m = QUEUED_IN_TRANSCRIPT.search(out)
                self.assertIsNotNone(m, out)
                self.assertStoredExactly(m.group(1), msg)
        before = self.daemon.queue_ids()
        bad = self.token("alice@example.com", "--scope", "Mail.Read")
        status, out = self.curl(bad, message())
        self.assertEqual(status, 67, out)  # CURLE_LOGIN_DENIED
        self.assertIn("< 535 5.7.3 Authentication unsuccessful [%s " % HOSTNAME, out)
        if "> AUTH OAUTHBEARER" in out:
            self.assertIn("< 334 ", out)  # the RFC 7628 challenge, answered by curl
        self.assertEqual(self.daemon.queue_ids(), before)

    def smtplib_session(self):
        s = smtplib.SMTP("127.0.0.1", self.daemon.starttls_port, local_hostname="client.test",
                         timeout=10)
        self.addCleanup(s.close)
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo()
        return s

    def test_python_smtplib(self):
        token = self.token("alice@example.com")
        variants = [(mech, make, initial)
                    for mech, make in (("XOAUTH2", xoauth2_message),
                                       ("OAUTHBEARER", oauthbearer_message))
                    for initial in (True, False)]
        for mech, make, initial in variants:
            with self.subTest(mech=mech, initial_response=initial):
                s = self.smtplib_session()
                self.assertTrue(s.has_extn("auth"))
                self.assertIn(mech, s.esmtp_features["auth"].split())
                code, text = s.auth(mech, lambda challenge=None: make("alice@example.com", token),
                                    initial_response_ok=initial)
                self.assertEqual((code, text), (235, b"2.7.0 Authentication successful"))
                msg = message(subject="smtplib " + mech)
                refused = s.sendmail("alice@example.com", ["r@example.net"], msg)
                self.assertEqual(refused, {})
                s.quit()
        # A bad token through OAUTHBEARER: smtplib hands the 334 challenge to the auth object,
        # which answers %x01 (RFC 7628 3.2.3); then 535.
        bad = self.token("alice@example.com", "--audience", "api://else")
        challenges = []

        def bearer(challenge=None):
            if not challenge:  # the initial response, or the answer to the empty 334
                return oauthbearer_message("alice@example.com", bad)
            challenges.append(challenge)
            return "\x01"

        for initial in (True, False):
            with self.subTest("bad token", initial_response=initial):
                del challenges[:]
                s = self.smtplib_session()
                with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                    s.auth("OAUTHBEARER", bearer, initial_response_ok=initial)
                self.assertEqual(cm.exception.smtp_code, 535)
                self.assertTrue(cm.exception.smtp_error.startswith(
                    b"5.7.3 Authentication unsuccessful"), cm.exception.smtp_error)
                self.assertEqual(len(challenges), 1)
                self.assertEqual(json.loads(challenges[0]).get("status"), "invalid_token")
                s = self.smtplib_session()
                with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                    s.auth("XOAUTH2",
                           lambda challenge=None: xoauth2_message("alice@example.com", bad),
                           initial_response_ok=initial)
                self.assertEqual(cm.exception.smtp_code, 535)

    def test_nodemailer(self):
        node = Node.get()
        token = self.token("alice@example.com")
        before = self.daemon.queue_ids()
        res = node.send(port=self.daemon.starttls_port, user="alice@example.com",
                        accessToken=token, **{"from": "alice@example.com"},
                        to="r@example.net", subject="nodemailer oauth", text="via nodemailer")
        self.assertTrue(res.get("ok"), res)
        m = re.match(r"^250 2\.0\.0 OK ([0-9A-F]{16})$", res["response"])
        self.assertIsNotNone(m, res)
        qid = m.group(1)
        self.assertEqual(self.daemon.queue_ids() - before, {qid})
        env, stored = self.daemon.read_queue_file(qid)
        self.assertIn(b"Subject: nodemailer oauth", stored)
        self.assertIn(b"via nodemailer", stored)
        self.assertIn("alice@example.com", list(json_strings(env)))
        bad = self.token("alice@example.com", "--scope", "Mail.Read")
        res = node.send(port=self.daemon.starttls_port, user="alice@example.com",
                        accessToken=bad, **{"from": "alice@example.com"},
                        to="r@example.net", subject="bad", text="bad")
        self.assertFalse(res.get("ok"), res)
        self.assertEqual(res.get("responseCode"), 535, res)
        self.assertEqual(self.daemon.queue_ids() - before, {qid})


class ExternalIssuerTest(OAuthTestCase):
    """An external identity provider: keys generated by the npm `jose` package (RS256, ES256,
    EdDSA), their JWKS served over HTTPS by a local server whose certificate comes from a
    throwaway CA (SUBMITD_JWKS_CAFILE), or held in a file; tokens minted by jose."""

    @classmethod
    def setUpClass(cls):
        cls.node = Node.get()
        cls.tmp = tempfile.mkdtemp(prefix="submitd-jwks-")
        ca, cert, key = make_ca_and_server_cert(cls.tmp)
        cls.server = JwksServer(cert, key)
        cls.ENV = {"SUBMITD_JWKS_CAFILE": ca}
        cls.issuer = cls.server.url("")
        keys = [{"kid": "rsa-1", "alg": "RS256"}, {"kid": "ec-1", "alg": "ES256"},
                {"kid": "ed-1", "alg": "EdDSA"}]
        cls.minted = cls.node.mint(keys)
        cls.jwks = cls.minted["jwks"]
        cls.server.put("/jwks.json", cls.jwks)
        cls.server.put("/flood/jwks.json", cls.jwks)
        cls.server.put("/rotate/jwks.json", {"keys": [cls.jwks["keys"][2]]})
        cls.jwks_file = os.path.join(cls.tmp, "file-jwks.json")
        with open(cls.jwks_file, "w") as f:
            json.dump({"keys": cls.jwks["keys"][1:]}, f)
        try:
            super().setUpClass()
        except BaseException:
            cls.server.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        # rotate.example fetches its JWKS (ed-1 only) now, so that the key rotation test, which
        # runs last, waits out the 30 s refetch bound while the other tests run.
        user, iss = "user@rotate.example", "https://login.rotate.example/"
        out = cls.node.mint(cls.own_keys(), [{"key": k, "claims": claims_for(user, iss)}
                                             for k in ("ed-1", "rsa-1")])
        cls.rotate_tokens = out["tokens"]
        cls.tokens.extend(out["tokens"])
        c = Smtp(cls.daemon.starttls_port)
        try:
            c.ehlo()
            c.starttls()
            c.ehlo()
            cls.rotate_first_auth = auth_oauth(c, "XOAUTH2", user, out["tokens"][0]).line
        finally:
            c.close()
        cls.rotate_fetched_at = time.monotonic()
        cls.tokens.append(cls.switch_token)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.server.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def provision(cls, d):
        d.provision_example()
        ctl = d.ctl
        ctl("tenant", "set", "example.com", "issuer", cls.issuer)
        ctl("tenant", "set", "example.com", "jwks", cls.server.url("/jwks.json"))
        for t, source in (("flood.example", cls.server.url("/flood/jwks.json")),
                          ("rotate.example", cls.server.url("/rotate/jwks.json")),
                          ("file.example", cls.jwks_file)):
            ctl("tenant", "add", t)
            ctl("tenant", "set", t, "smtp-auth", "on")
            ctl("tenant", "set", t, "issuer", "https://login.%s/" % t)
            ctl("tenant", "set", t, "jwks", source)
            d.add_mailbox("user@" + t)
        # A built-in token issued before the tenant moves to an external issuer.
        ctl("tenant", "add", "switch.example")
        ctl("tenant", "set", "switch.example", "smtp-auth", "on")
        d.add_mailbox("user@switch.example")
        cls.switch_token = issue_token(d, "user@switch.example")
        ctl("tenant", "set", "switch.example", "issuer", "https://login.switch.example/")
        ctl("tenant", "set", "switch.example", "jwks", cls.server.url("/jwks.json"))

    def mint(self, key_kids, claims, header=None, keys=None):
        """Tokens signed by jose with the class's keys (or `keys`), one per kid in key_kids."""
        out = self.node.mint(keys or self.own_keys(),
                             [{"key": k, "claims": claims, "header": header or {}}
                              for k in key_kids])
        return [self.remember(t) for t in out["tokens"]]

    @classmethod
    def own_keys(cls):
        """The class's jose keys, as mint.mjs takes them back."""
        return [{"kid": k["kid"], "alg": k["alg"], "pkcs8": cls.minted["pkcs8"][k["kid"]]}
                for k in cls.jwks["keys"]]

    def test_jose_tokens_for_each_algorithm(self):
        claims = claims_for("alice@example.com", self.issuer)
        tokens = self.mint(["rsa-1", "ec-1", "ed-1"], claims)
        for alg, token in zip(("RS256", "ES256", "EdDSA"), tokens):
            self.assertEqual(jwt_parts(token)[0]["alg"], alg)
            for mech in OAUTH_MECHS:
                with self.subTest(alg=alg, mech=mech):
                    c = self.connect_tls()
                    self.assertOAuth(mech, "alice@example.com", token, OK, c=c)
                    self.assertQueued(self.send_message(c, message(subject=alg + " " + mech)))
                    c.quit()
        self.assertGreaterEqual(self.server.count("/jwks.json"), 1)

    def test_jose_token_problems(self):
        now = int(time.time())
        user = "alice@example.com"
        spki = self.minted["spki"]["rsa-1"].encode()
        stranger = self.node.mint([{"kid": "rsa-1", "alg": "RS256"}],
                                  [{"key": "rsa-1", "claims": claims_for(user, self.issuer)}])
        cases = (
            ("kid not in the JWKS", self.mint(["ed-1"], claims_for(user, self.issuer),
                                              {"kid": "not-published"})[0], "token=unknown-kid"),
            ("a published kid, someone else's key", self.remember(stranger["tokens"][0]),
             "token=bad-signature"),
            ("issuer without the trailing slash",
             self.mint(["ec-1"], claims_for(user, self.issuer.rstrip("/")))[0],
             "token=wrong-issuer"),
            ("expired", self.mint(["rsa-1"], claims_for(user, self.issuer, exp=now - 300,
                                                        iat=now - 900, nbf=now - 900))[0],
             "token=expired"),
            ("audience array without ours",
             self.mint(["ed-1"], claims_for(user, self.issuer, audience=["a", "b"]))[0],
             "token=wrong-audience"),
            ("HS256 keyed with the RSA public key PEM",
             self.remember(hs256_token("rsa-1", claims_for(user, self.issuer), spki)),
             "token=alg-rejected"),
        )
        for name, token, detail in cases:
            for mech in OAUTH_MECHS:
                with self.subTest(name, mech=mech):
                    self.assertOAuth(mech, user, token, BAD, gate="credentials", detail=detail)
        # An audience array holding ours is fine.
        token = self.mint(["ed-1"], claims_for(user, self.issuer, audience=["x", "submitd"]))[0]
        self.assertOAuth("XOAUTH2", user, token, OK)

    def test_unknown_kid_flood_refetches_at_most_once_per_30_seconds(self):
        user = "user@flood.example"
        iss = "https://login.flood.example/"
        good = self.mint(["ed-1"], claims_for(user, iss))[0]
        self.assertOAuth("XOAUTH2", user, good, OK)
        fetched = self.server.count("/flood/jwks.json")
        self.assertEqual(fetched, 1, "the first token fetches the JWKS once")
        # Twenty distinct unknown kids (one jose call), signed by a published key.
        out = self.node.mint(self.own_keys(), [{"key": "ed-1", "claims": claims_for(user, iss),
                                                "header": {"kid": "ghost-%d" % i}}
                                               for i in range(20)])
        ghosts = [self.remember(t) for t in out["tokens"]]
        start = time.monotonic()
        c = None
        for i, token in enumerate(ghosts):
            if i % 5 == 0:
                c = self.connect_tls()
            res = auth_oauth(c, "XOAUTH2", user, token)
            self.assertEqual(split_reference(res.line)[0], BAD, (i, res))
        self.assertLess(time.monotonic() - start, 30)
        self.assertLessEqual(self.server.count("/flood/jwks.json") - fetched, 1,
                             "20 unknown kids within 30 s made %d JWKS fetches"
                             % (self.server.count("/flood/jwks.json") - fetched))
        # The cached keys still serve good tokens.
        self.assertOAuth("OAUTHBEARER", user, good, OK)

    def test_jwks_file_source(self):
        user = "user@file.example"
        iss = "https://login.file.example/"
        ec, ed = self.mint(["ec-1", "ed-1"], claims_for(user, iss))
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech):
                self.assertOAuth(mech, user, ec, OK)
                self.assertOAuth(mech, user, ed, OK)
        rsa = self.mint(["rsa-1"], claims_for(user, iss))[0]  # not in the file
        self.assertOAuth("XOAUTH2", user, rsa, BAD, gate="credentials",
                         detail="token=unknown-kid")

    def test_builtin_tokens_are_refused_once_the_tenant_uses_an_external_issuer(self):
        user = "user@switch.example"
        for mech in OAUTH_MECHS:
            with self.subTest(mech=mech):
                self.assertOAuth(mech, user, self.switch_token, BAD, gate="credentials")
        r = self.daemon.ctl("token", "issue", user, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout.strip(), b"")

    def test_zz_key_rotation_refetches_on_an_unknown_kid(self):
        """A kid published after the first fetch is found by a refetch once 30 s have passed
        since the last one. The first fetch was in setUpClass and this test runs last in the
        class, so the other tests fill most of the wait."""
        user = "user@rotate.example"
        ed, rsa = self.rotate_tokens
        self.assertEqual(self.rotate_first_auth, OK)
        self.assertEqual(self.server.count("/rotate/jwks.json"), 1)
        self.server.put("/rotate/jwks.json", self.jwks)  # rsa-1 and ec-1 are published now
        if time.monotonic() - self.rotate_fetched_at < 25:
            # Within 30 s of the fetch the new kid is not fetched for.
            self.assertOAuth("XOAUTH2", user, rsa, BAD, gate="credentials",
                             detail="token=unknown-kid")
            self.assertEqual(self.server.count("/rotate/jwks.json"), 1)
        time.sleep(max(0.0, self.rotate_fetched_at + 31 - time.monotonic()))
        self.assertOAuth("OAUTHBEARER", user, rsa, OK)
        self.assertEqual(self.server.count("/rotate/jwks.json"), 2)
        self.assertOAuth("XOAUTH2", user, ed, OK)
        self.assertEqual(self.server.count("/rotate/jwks.json"), 2)

if __name__ == "__main__":
    unittest.main()
