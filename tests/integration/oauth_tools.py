"""oauth_tools.py: helpers for the OAuth, app password and limit integration tests (issue 3).

Owns: the SASL messages of XOAUTH2 and OAUTHBEARER (RFC 7628) and the client side of their
exchanges, JWTs made here (RFC 7519/7515: the built-in issuer's Ed25519 key signs through the
openssl command line, and forged tokens: alg none, HMAC with a public key as the secret), the npm
packages in tests/integration/node (jose mints tokens, nodemailer submits; installed once per run
into build/node), a throwaway CA and server certificate (openssl req / openssl x509), a local
HTTPS server that serves JWK Sets and counts requests, and the check that no token reached the
daemon's files.

Python standard library plus the openssl, node and npm programs. Every wait is bounded.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from .harness import (ACCESS_RULE, BAD_CREDENTIALS, BASIC_OFF, DENIED, DISABLED,  # noqa: F401
                      HERE, MAILBOX_OFF, OK, REPO, SECURITY_DEFAULTS, SEND_AS, TENANT_OFF, b64)

BAD = BAD_CREDENTIALS
OAUTH_MECHS = ("XOAUTH2", "OAUTHBEARER")
NODE_DIR = os.path.join(HERE, "node")
OPENSSL_TIMEOUT = 30
NODE_TIMEOUT = 60
NPM_TIMEOUT = 300


# --- base64url and JWTs ---
def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token):
    """(header dict, claims dict) of a compact JWS, unverified."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def compact(header, claims):
    """The JWS signing input: base64url(header).base64url(claims)."""
    return (b64url(json.dumps(header, separators=(",", ":")))
            + "." + b64url(json.dumps(claims, separators=(",", ":"))))


def sign_with_pem(pem_path, signing_input):
    """Ed25519 signature of signing_input with the private key in pem_path (openssl pkeyutl)."""
    # One-shot (Ed25519) signing needs a file whose size openssl can read, not a pipe.
    with tempfile.NamedTemporaryFile(prefix="jws-input-") as f:
        f.write(signing_input.encode())
        f.flush()
        r = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", pem_path, "-rawin",
                            "-in", f.name], capture_output=True, timeout=OPENSSL_TIMEOUT)
    if r.returncode != 0:
        raise AssertionError("openssl pkeyutl -sign with %s failed: %s"
                             % (pem_path, r.stderr.decode("utf-8", "replace")))
    return r.stdout


def eddsa_token(pem_path, kid, claims, header_extra=None):
    header = {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    header.update(header_extra or {})
    signing_input = compact(header, claims)
    return signing_input + "." + b64url(sign_with_pem(pem_path, signing_input))


def alg_none_token(kid, claims):
    return compact({"alg": "none", "kid": kid, "typ": "JWT"}, claims) + "."


def hs256_token(kid, claims, secret):
    """The algorithm-confusion forgery: HMAC-SHA256 keyed with the verifier's public key."""
    signing_input = compact({"alg": "HS256", "kid": kid, "typ": "JWT"}, claims)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def tamper_signature(token):
    """The same token with one bit of the signature flipped."""
    h, p, s = token.split(".")
    sig = bytearray(b64url_decode(s))
    sig[len(sig) // 2] ^= 0x01
    return h + "." + p + "." + b64url(bytes(sig))


def claims_for(address, issuer, audience="submitd", scope="SMTP.Send", lifetime=3600, **extra):
    now = int(time.time())
    c = {"iss": issuer, "aud": audience, "sub": address, "email": address, "scp": scope,
         "iat": now, "nbf": now, "exp": now + lifetime, "jti": os.urandom(8).hex()}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


# --- SASL ---
def xoauth2_message(user, token):
    return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)


def oauthbearer_message(user, token, port=587):
    return "n,a=%s,\x01host=localhost\x01port=%d\x01auth=Bearer %s\x01\x01" % (user, port, token)


class OAuthResult:
    """The outcome of one OAuth exchange: the final reply and, for OAUTHBEARER failures, the
    decoded RFC 7628 error challenge (a dict) the server sent before it."""

    def __init__(self, reply, challenge=None, challenge_line=None):
        self.reply = reply
        self.challenge = challenge
        self.challenge_line = challenge_line
        self.line = reply.line

    def __repr__(self):
        return "OAuthResult(%r, challenge=%r)" % (self.reply, self.challenge)


def auth_oauth(c, mech, user, token, initial=True):
    """One XOAUTH2 or OAUTHBEARER exchange on Smtp c. An OAUTHBEARER 334 error challenge is
    decoded (it must be base64 JSON) and answered with %x01 (RFC 7628 3.2.3)."""
    msg = xoauth2_message(user, token) if mech == "XOAUTH2" else oauthbearer_message(user, token)
    if initial:
        r = c.cmd("AUTH %s %s" % (mech, b64(msg)))
    else:
        r = c.cmd("AUTH " + mech)
        if r.line != "334 " and r.line != "334":
            return OAuthResult(r)
        r = c.cmd(b64(msg))
    if r.code != 334:
        return OAuthResult(r)
    payload = r.line[4:]
    try:
        challenge = json.loads(base64.b64decode(payload, validate=True))
    except ValueError as e:
        raise AssertionError("334 challenge is not base64 JSON: %r (%s)" % (r.line, e))
    final = c.cmd("AQ==")
    return OAuthResult(final, challenge, r.line)


# --- the daemon's files ---
def token_leaks(daemon, tokens, user="alice@example.com"):
    """Names of the daemon's files (stderr, log.db, directory.db and their WALs) that hold a
    token, its signature, or a SASL message carrying it."""
    needles = []
    for t in tokens:
        needles.append(t.encode())
        sig = t.rsplit(".", 1)[-1]
        if len(sig) >= 20:
            needles.append(sig.encode())
        needles.append(b64(xoauth2_message(user, t)).encode())
        needles.append(b64(oauthbearer_message(user, t)).encode())
    leaks = []
    for name in ("submitd.stderr", "log.db", "log.db-wal", "directory.db", "directory.db-wal"):
        try:
            with open(os.path.join(daemon.dir, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        if any(n in data for n in needles):
            leaks.append(name)
    return leaks


def issue_token(daemon, address, *options):
    """`submitctl token issue ADDRESS [options]`: the one token it prints."""
    out = daemon.ctl("token", "issue", address, *options).stdout.decode().strip()
    tokens = re.findall(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", out)
    if len(tokens) != 1:
        raise AssertionError("`token issue %s` printed %r, not one JWT" % (address, out[:300]))
    return tokens[0]


def builtin_key(daemon, domain):
    """(path of the tenant's private key, its kid from `submitctl tenant jwks DOMAIN`)."""
    doc = json.loads(daemon.ctl("tenant", "jwks", domain).stdout.decode())
    keys = doc["keys"]
    if len(keys) != 1:
        raise AssertionError("tenant jwks %s has %d keys" % (domain, len(keys)))
    return os.path.join(daemon.dir, "keys", domain + ".pem"), keys[0]["kid"]


# --- npm packages ---
class Node:
    """node and the npm packages of tests/integration/node, installed once per run (cached) in
    build/node of the repository. SkipTest only when npm or node is missing."""

    _ready = None

    def __init__(self):
        self.dir = os.path.join(REPO, "build", "node")

    @classmethod
    def get(cls):
        if cls._ready is None:
            n = cls()
            n.install()
            cls._ready = n
        return cls._ready

    def install(self):
        if shutil.which("npm") is None or shutil.which("node") is None:
            raise unittest.SkipTest("npm/node not installed: the jose and nodemailer tests need "
                                    "them (apt-get install nodejs npm)")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(NODE_DIR, "package.json"), "rb") as f:
            wanted = f.read()
        stamp = os.path.join(self.dir, ".installed-package.json")
        try:
            with open(stamp, "rb") as f:
                installed = f.read()
        except FileNotFoundError:
            installed = None
        have = all(os.path.isdir(os.path.join(self.dir, "node_modules", p))
                   for p in ("jose", "nodemailer"))
        if installed != wanted or not have:
            with open(os.path.join(self.dir, "package.json"), "wb") as f:
                f.write(wanted)
            r = subprocess.run(["npm", "install", "--prefix", self.dir, "--no-audit", "--no-fund",
                                "--no-package-lock", "--loglevel", "error"],
                               capture_output=True, timeout=NPM_TIMEOUT, cwd=self.dir)
            if r.returncode != 0:
                raise AssertionError("npm install of %s failed (%d): %s" % (
                    NODE_DIR, r.returncode, (r.stderr + r.stdout).decode("utf-8", "replace")))
            with open(stamp, "wb") as f:
                f.write(wanted)
        for name in os.listdir(NODE_DIR):
            if name.endswith(".mjs"):
                shutil.copyfile(os.path.join(NODE_DIR, name), os.path.join(self.dir, name))

    def run(self, script, request):
        r = subprocess.run(["node", os.path.join(self.dir, script)],
                           input=json.dumps(request).encode(), capture_output=True,
                           timeout=NODE_TIMEOUT, cwd=self.dir)
        if r.returncode != 0:
            raise AssertionError("node %s exited %d: %s" % (script, r.returncode,
                                                           r.stderr.decode("utf-8", "replace")))
        return json.loads(r.stdout.decode())

    def mint(self, keys, tokens=()):
        """jose: keys [{"kid", "alg"[, "pkcs8"]}], tokens [{"key", "claims"[, "header"]}]."""
        return self.run("mint.mjs", {"keys": list(keys), "tokens": list(tokens)})

    def send(self, **request):
        return self.run("send.mjs", request)


# --- TLS for the JWKS server ---
def make_ca_and_server_cert(directory):
    """A throwaway CA and a server certificate for IP 127.0.0.1 and localhost signed by it.
    Returns (ca.pem, server.pem, server.key)."""
    p = lambda n: os.path.join(directory, n)

    def openssl(*args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True,
                           timeout=OPENSSL_TIMEOUT, cwd=directory)
        if r.returncode != 0:
            raise AssertionError("openssl %s failed: %s" % (
                " ".join(args), r.stderr.decode("utf-8", "replace")))

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj",
            "/CN=submitd integration test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=127.0.0.1")
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("server.ext"))
    return p("ca.pem"), p("server.pem"), p("server.key")


class JwksServer:
    """An HTTPS server on 127.0.0.1 (a thread) that serves JSON documents by path and counts the
    GET requests for each path."""

    def __init__(self, certfile, keyfile):
        self.docs = {}
        self.counts = {}
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with server.lock:
                    server.counts[self.path] = server.counts.get(self.path, 0) + 1
                    doc = server.docs.get(self.path)
                if doc is None:
                    self.send_error(404)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path=""):
        return "https://127.0.0.1:%d/%s" % (self.port, path.lstrip("/"))

    def put(self, path, doc):
        with self.lock:
            self.docs[path] = doc

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
