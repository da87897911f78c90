"""harness.py: runs the real submitd (and submitctl) for the integration tests.

Owns: starting a daemon on free loopback ports with a test configuration, provisioning the
directory through submitctl, a small line-exact SMTP client (RFC 5321, RFC 3207 STARTTLS,
RFC 8314 implicit TLS, RFC 4954 AUTH) that lets tests send exactly the bytes they mean, reading
the spool (SPEC section 7) and the sign-in / submission logs, and failing a test when the daemon
died, exited non-zero, or printed a sanitizer report (the suite also runs against an
ASan/UBSan build).

Environment: SUBMITD_BUILD (directory holding submitd and submitctl; default ./build),
SUBMITD_KEEP=1 keeps every data directory (they are always kept when a class fails).
Python standard library only. Every wait is bounded.
"""

import base64
import ctypes
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("SUBMITD_BUILD") or os.path.join(REPO, "build"))
SUBMITD = os.path.join(BUILD, "submitd")
SUBMITCTL = os.path.join(BUILD, "submitctl")

HOSTNAME = "localhost"
PASSWORD = "Corr3ct-Horse:Battery staple!"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 10.0
CTL_TIMEOUT = 30.0

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "ERROR: ThreadSanitizer",
    "AddressSanitizer:DEADLYSIGNAL",
)

# " [localhost 2024-01-02T03:04:05.678Z 0123456789ABCDEF]" at the end of a reply (SPEC 4).
REF_RE = re.compile(
    r" \[(?P<host>[^ \]]+) (?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<id>[0-9A-F]{16})\]$"
)
QUEUED_RE = re.compile(r"^250 2\.0\.0 OK (?P<id>[0-9A-F]{16})$")



# Reply texts of the AUTH gates (src/reply.c), shared by the suites.
OK = "235 2.7.0 Authentication successful"
BAD_CREDENTIALS = "535 5.7.3 Authentication unsuccessful"
DENIED = "535 5.7.139 Authentication unsuccessful, "
TENANT_OFF = DENIED + "SmtpClientAuthentication is disabled for the Tenant."
MAILBOX_OFF = DENIED + "SmtpClientAuthentication is disabled for the Mailbox."
DISABLED = DENIED + "account is disabled."
BASIC_OFF = DENIED + "basic authentication is disabled."
SECURITY_DEFAULTS = (DENIED + "user is locked by your organization's security defaults policy. "
                     "Contact your administrator.")
ACCESS_RULE = (DENIED + "the request did not meet the criteria to be authenticated successfully. "
               "Contact your administrator.")
NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."
SEND_AS = "550 5.7.60 Client does not have permissions to send as this sender"

def free_port():
    """A loopback TCP port that was free a moment ago (bind port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain_response(user, password, authzid=""):
    """RFC 4616 message, base64."""
    return b64(authzid.encode() + b"\0" + user.encode() + b"\0" + password.encode())


def dot_stuff(message):
    """RFC 5321 4.5.2 transparency: the wire form of a CRLF message, with the terminator."""
    assert message.endswith(b"\r\n"), "test messages end with CRLF"
    lines = message.split(b"\r\n")[:-1]
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


def split_reference(line):
    """('535 5.7.3 Authentication unsuccessful', 'ID', 'time') or (line, None, None)."""
    m = REF_RE.search(line)
    if not m:
        return line, None, None
    return line[: m.start()], m.group("id"), m.group("time")


def message(subject="integration test", body=b"Hello.\r\n", sender="alice@example.com",
            to="rcpt@example.net", extra_headers=b"", with_ids=True):
    """A small RFC 5322 message with CRLF line ends (Message-ID and Date unless with_ids=False)."""
    head = b"From: <" + sender.encode() + b">\r\nTo: <" + to.encode() + b">\r\n"
    head += b"Subject: " + subject.encode() + b"\r\n"
    if with_ids:
        head += b"Message-ID: <" + os.urandom(8).hex().encode() + b"@client.test>\r\n"
        head += b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    return head + extra_headers + b"\r\n" + body


def tls_client_context(verify=False, cafile=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        # A self-signed server certificate is its own trust anchor.
        ctx.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = max_version
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def json_records(text):
    """The records printed by a `--json` command: a JSON array, an object holding one array, one
    object, or one object per line."""
    text = text.strip()
    if not text:
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(x, dict) for x in lists[0]):
            return lists[0]
        return [doc]
    raise ValueError("unexpected JSON: %r" % text[:200])


def json_strings(value):
    """Every string inside a JSON value (for 'this address appears in the envelope')."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def _die_with_parent():
    """In the child before exec: SIGTERM when the test runner dies (Linux prctl
    PR_SET_PDEATHSIG), so an interrupted run leaves no daemon behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Reply:
    """One SMTP reply: code and its lines (without CRLF)."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])
        self.line = lines[-1]

    @property
    def texts(self):
        return [l[4:] for l in self.lines]

    def __repr__(self):
        return "Reply(%r)" % (self.lines,)


class SmtpError(Exception):
    pass


class Smtp:
    """A line-exact SMTP client over a real socket. Every read is bounded by `timeout`."""

    def __init__(self, port, implicit_tls=False, timeout=IO_TIMEOUT, greet=True, context=None):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.tls = False
        self.caps = {}
        self.greeting = None
        if implicit_tls:
            self.wrap_tls(context)
        if greet:
            self.greeting = self.reply()
            if self.greeting.code != 220:
                raise SmtpError("greeting %r" % (self.greeting,))

    # --- bytes ---
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no reply within %.1f s" % self.timeout)
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def readline(self):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            if len(self.buf) > 100000:
                raise SmtpError("reply line too long")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.endswith(b"\r"):
            raise SmtpError("reply line not ended by CRLF: %r" % line)
        return line[:-1].decode("utf-8", "replace")

    def reply(self):
        lines = []
        for _ in range(100):
            line = self.readline()
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise SmtpError("malformed reply line %r" % line)
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)
        raise SmtpError("reply with more than 100 lines")

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def pending(self, wait=0.3):
        """Whatever the server sends unprompted within `wait` seconds (b'' when nothing)."""
        data = self.buf
        self.buf = b""
        deadline = time.monotonic() + wait
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ssl.SSLWantReadError):
            pass
        return data

    def wait_closed(self, timeout=None):
        """True when the server closes the connection within timeout (data is discarded)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return True
        return False

    # --- SMTP ---
    def ehlo(self, name="client.test"):
        r = self.cmd("EHLO " + name)
        if r.code == 250:
            self.caps = {}
            for text in r.texts[1:]:
                words = text.split()
                if words:
                    self.caps[words[0].upper()] = words[1:]
        return r

    def wrap_tls(self, context=None):
        if self.buf:
            raise SmtpError("plaintext left before the TLS handshake: %r" % self.buf)
        ctx = context or tls_client_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.tls = True

    def starttls(self, context=None):
        r = self.cmd("STARTTLS")
        if r.code != 220:
            raise SmtpError("STARTTLS answered %r" % (r,))
        self.wrap_tls(context)
        return r

    def auth_plain(self, user, password, initial=True):
        resp = plain_response(user, password)
        if initial:
            return self.cmd("AUTH PLAIN " + resp)
        r = self.cmd("AUTH PLAIN")
        if r.code != 334:
            return r
        return self.cmd(resp)

    def auth_login(self, user, password, initial=False):
        r = self.cmd("AUTH LOGIN " + b64(user)) if initial else self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        if not initial:
            r = self.cmd(b64(user))
            if r.code != 334:
                return r
        return self.cmd(b64(password))

    def auth(self, mech, user, password):
        if mech == "PLAIN":
            return self.auth_plain(user, password)
        if mech == "LOGIN":
            return self.auth_login(user, password)
        raise ValueError(mech)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def quit(self):
        try:
            r = self.cmd("QUIT")
        finally:
            self.close()
        return r


class Daemon:
    """One submitd in the foreground in its own data directory, on three loopback listeners:
    starttls (require TLS), tls (implicit) and cleartext (STARTTLS offered, cleartext AUTH
    allowed, TLS not required)."""

    def __init__(self, conf_extra=(), env=None):
        for path in (SUBMITD, SUBMITCTL):
            if not os.access(path, os.X_OK):
                raise AssertionError("%s is not built (SUBMITD_BUILD=%s)" % (path, BUILD))
        self.dir = tempfile.mkdtemp(prefix="submitd-it-")
        self.ports = {"starttls": free_port(), "tls": free_port(), "cleartext": free_port()}
        self.conf_extra = list(conf_extra)
        self.env = dict(env or {})  # extra environment for submitd (not for submitctl)
        self.log_path = os.path.join(self.dir, "submitd.stderr")
        self.proc = None
        self.log_file = None
        self.ctl_problems = []
        self.write_config()

    @property
    def starttls_port(self):
        return self.ports["starttls"]

    @property
    def tls_port(self):
        return self.ports["tls"]

    @property
    def cleartext_port(self):
        return self.ports["cleartext"]

    def config_text(self, extra=None):
        lines = [
            "# written by tests/integration/harness.py",
            "hostname = " + HOSTNAME,
            "listen = 127.0.0.1:%d starttls" % self.ports["starttls"],
            "listen = 127.0.0.1:%d tls" % self.ports["tls"],
            "listen = 127.0.0.1:%d starttls allow-cleartext-auth no-require-tls"
            % self.ports["cleartext"],
            "auth-memlimit = 8M",
            # Smart lockout is tested on its own (test_lockout.py); elsewhere the many deliberate
            # failures from 127.0.0.1 must not lock the address or delay replies.
            "lockout-account-failures = 0",
            "lockout-address-failures = 0",
            "lockout-delay = 0",
            "io-threads = 2",
            "auth-threads = 2",
        ]
        extra = self.conf_extra if extra is None else list(extra)
        # a key the test sets replaces the default above (a key may appear once)
        keys = {e.split("=", 1)[0].strip() for e in extra if "=" in e}
        lines = [l for l in lines if l.split("=", 1)[0].strip() not in keys
                 or l.startswith("listen")]
        return "\n".join(lines + list(extra)) + "\n"

    def write_config(self, extra=None):
        with open(os.path.join(self.dir, "submitd.conf"), "w") as f:
            f.write(self.config_text(extra))

    # --- process ---
    def start(self):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SUBMITD, "-d", self.dir, "-f"],
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=self.log_file,
            cwd=self.dir,
            env=dict(os.environ, **self.env) if self.env else None,
            preexec_fn=_die_with_parent,
        )
        self.wait_ready()

    def restart(self):
        """SIGTERM, wait for exit 0 (bounded), start again on the same ports and data directory.
        Raises AssertionError when the old process does not exit 0."""
        status = self.stop()
        if status != 0:
            raise AssertionError("submitd exited %s on SIGTERM before a restart\n%s"
                                 % (status, self.log_tail()))
        self.start()

    def wait_ready(self):
        """Every listener accepts and the daemon logged event=ready: the listeners are bound
        early in its start, before it has opened its databases, so a connection alone does not
        mean it is up (a submitctl run then would race with its start)."""
        deadline = time.monotonic() + READY_TIMEOUT
        self._wait_ports(deadline)
        ready_before = getattr(self, "_readies", 0)
        while True:
            readies = self.log().count("event=ready ")
            if readies > ready_before:
                self._readies = readies
                return
            if self.proc.poll() is not None:
                raise AssertionError("submitd exited with %s while starting\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("submitd did not log event=ready within %.0f s\n%s"
                                     % (READY_TIMEOUT, self.log_tail()))
            time.sleep(0.02)

    def _wait_ports(self, deadline):
        pending = list(self.ports.values())
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError("submitd exited with %s while starting\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("submitd not listening on %s after %.0f s\n%s"
                                     % (pending, READY_TIMEOUT, self.log_tail()))
            port = pending[0]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait (bounded). Returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._close_log()
                return None
        self._close_log()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_log()

    def _close_log(self):
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def cleanup(self, keep=False):
        if keep or os.environ.get("SUBMITD_KEEP"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- its output ---
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        lines = self.log().splitlines()
        return "--- submitd stderr (last %d of %d lines, %s) ---\n%s" % (
            min(n, len(lines)), len(lines), self.log_path, "\n".join(lines[-n:]))

    def sanitizer_report(self):
        """The first sanitizer report in the daemon's stderr or a submitctl's, else None."""
        text = self.log()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                start = text.rfind("\n", 0, max(0, i - 200)) + 1
                return text[start:start + 4000]
        if self.ctl_problems:
            return self.ctl_problems[0]
        return None

    def secret_leaks(self):
        """Files of the data directory (daemon log, event log) that hold the test password, in
        clear or in a SASL payload. Returns their names."""
        secrets = [PASSWORD.encode(), b64(PASSWORD).encode(),
                   plain_response("alice@example.com", PASSWORD).encode()]
        leaks = []
        for name in ("submitd.stderr", "log.db", "log.db-wal", "directory.db",
                     "directory.db-wal"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if any(s in data for s in secrets):
                leaks.append(name)
        return leaks

    def health_problem(self):
        """A description of what is wrong with the daemon, or None."""
        if self.proc is None:
            return "submitd was never started"
        if self.proc.poll() is not None:
            return "submitd exited unexpectedly with status %s\n%s" % (
                self.proc.returncode, self.log_tail())
        report = self.sanitizer_report()
        if report:
            return "sanitizer report:\n" + report
        return None

    # --- submitctl ---
    def ctl(self, *args, input=None, check=True):
        argv = [SUBMITCTL, "-d", self.dir] + [str(a) for a in args]
        r = subprocess.run(argv, input=input.encode() if isinstance(input, str) else input,
                           capture_output=True, timeout=CTL_TIMEOUT, cwd=self.dir)
        err = r.stderr.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            if marker in err:
                self.ctl_problems.append("submitctl %s:\n%s" % (" ".join(args), err[:4000]))
        if check and r.returncode != 0:
            raise AssertionError("submitctl %s exited %d: %s%s" % (
                " ".join(str(a) for a in args), r.returncode, err.strip(),
                r.stdout.decode("utf-8", "replace").strip()))
        return r

    def ctl_json(self, *args):
        r = self.ctl(*(list(args) + ["--json"]))
        return json_records(r.stdout.decode("utf-8", "replace"))

    def find_event(self, kind, ref, timeout=5.0):
        """The record of `submitctl signins|submissions --ref REF --json` (the server may write
        its log in batches, so this waits a little). None when not found in time."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.ctl(kind, "--ref", ref, "--json", check=False)
            if r.returncode not in (0, 1):  # 1: nothing found (yet)
                raise AssertionError("submitctl %s --ref %s exited %d: %s" % (
                    kind, ref, r.returncode, r.stderr.decode("utf-8", "replace").strip()))
            if r.returncode == 0:
                for rec in json_records(r.stdout.decode("utf-8", "replace")):
                    if any(v == ref for v in rec.values()):
                        return rec
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def add_mailbox(self, address, password=PASSWORD):
        self.ctl("mailbox", "add", address, input=password + "\n")

    def provision_example(self):
        """example.com: SMTP AUTH on, security defaults off, a policy allowing basic SMTP;
        alice@example.com (alias sales@example.com) and bob@example.com."""
        self.ctl("tenant", "add", "example.com")
        self.ctl("tenant", "set", "example.com", "smtp-auth", "on")
        self.ctl("tenant", "set", "example.com", "security-defaults", "off")
        self.ctl("policy", "add", "allow-smtp", "--allow-basic-smtp")
        self.ctl("tenant", "set", "example.com", "default-policy", "allow-smtp")
        self.add_mailbox("alice@example.com")
        self.add_mailbox("bob@example.com")
        self.ctl("alias", "add", "alice@example.com", "sales@example.com")

    # --- the spool ---
    def queue_dir(self):
        return os.path.join(self.dir, "spool", "queue")

    def journal_records(self, gone_too=False):
        """{queue id: queue file bytes} of the messages living in DIR/spool/journal (docs/spool.md,
        "Journal"): acknowledged and not yet delivered, held, deleted or moved to queue/ (with
        gone_too, those whose tombstone says they left, as long as their record is still there).
        Decoded here independently of the C code: a 70-octet header "J2 ID LEN16 CHECK32\n",
        CHECK being BLAKE2b-128 keyed by the segment's file name over the id, the length (8
        octets little-endian) and the payload ("J1": unkeyed); a record of length 0 is a
        tombstone (the message with that id left the journal); segments (files named by 16
        uppercase hex digits; "spare" is not one) are read oldest first, each up to its first
        damaged record or a record of the file's earlier use under another name."""
        records = {}
        jdir = os.path.join(self.dir, "spool", "journal")
        try:
            names = sorted(os.listdir(jdir))
        except FileNotFoundError:
            return records
        for name in names:
            if not re.fullmatch(r"[0-9A-F]{16}", name):
                continue
            try:
                with open(os.path.join(jdir, name), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue  # emptied and removed meanwhile
            off = 0
            while off + 70 <= len(data):
                h = data[off:off + 70]
                m = re.fullmatch(rb"J([12]) ([0-9A-F]{16}) ([0-9a-f]{16}) ([0-9a-f]{32})\n", h)
                if not m:
                    break
                qid, n = m.group(2), int(m.group(3), 16)
                payload = data[off + 70:off + 70 + n]
                if len(payload) != n:
                    break
                key = name.encode() if m.group(1) == b"2" else b""
                check = hashlib.blake2b(qid + n.to_bytes(8, "little") + payload, digest_size=16,
                                        key=key)
                if check.hexdigest().encode() != m.group(4):
                    break
                if n == 0:
                    if not gone_too:
                        records.pop(qid.decode(), None)
                else:
                    records[qid.decode()] = payload
                off += 70 + n
        return records

    def queue_ids(self):
        """The ids of every acknowledged message still queued: the journal, then queue/ (in that
        order: a message moves out of the journal only after its file is in queue/, so a message
        moving between them is seen in one or the other)."""
        journal = set(self.journal_records())
        try:
            ids = set(n for n in os.listdir(self.queue_dir()) if not n.startswith("."))
        except FileNotFoundError:
            ids = set()
        return ids | journal

    def tmp_files(self):
        try:
            return os.listdir(os.path.join(self.dir, "spool", "tmp"))
        except FileNotFoundError:
            return []

    def read_queue_file(self, queue_id, delivered_too=False):
        """(envelope dict, message bytes) of DIR/spool/queue/ID (or its journal record, the
        same bytes, when the file is not written yet): line 1 'SUBMITD-QUEUE 2' (or 1, the
        format before DSN), line 2 the envelope JSON, then the message. delivered_too: also a
        message already delivered (a fast route may finish before the test looks), read from
        its journal record."""
        data = self.journal_records(gone_too=delivered_too).get(queue_id)  # first, as above
        if data is None:
            with open(os.path.join(self.queue_dir(), queue_id), "rb") as f:
                data = f.read()
        first, rest = data.split(b"\n", 1)
        if first.rstrip(b"\r") not in (b"SUBMITD-QUEUE 1", b"SUBMITD-QUEUE 2"):
            raise AssertionError("queue file %s starts with %r" % (queue_id, first[:60]))
        env_line, msg = rest.split(b"\n", 1)
        return json.loads(env_line.decode()), msg


def split_received(msg):
    """(Received header field, the rest) of a stored message that starts with Received:."""
    if not msg.startswith(b"Received:"):
        raise AssertionError("stored message does not start with Received: %r" % msg[:80])
    pos = 0
    for _ in range(50):
        eol = msg.index(b"\r\n", pos)
        pos = eol + 2
        if msg[pos:pos + 1] not in (b" ", b"\t"):
            return msg[:pos], msg[pos:]
    raise AssertionError("Received: field longer than 50 lines")


class DaemonTestCase(unittest.TestCase):
    """One daemon per test class (CONF: extra configuration lines). Every test fails when the
    daemon died or printed a sanitizer report; the class fails when it does not exit 0 on
    SIGTERM."""

    CONF = ()
    ENV = {}  # extra environment for submitd
    daemon = None

    @classmethod
    def provision(cls, d):
        d.provision_example()

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(cls.CONF, env=cls.ENV)
        try:
            cls.daemon.start()
            cls.provision(cls.daemon)
        except BaseException:
            cls.daemon.kill()
            raise

    @classmethod
    def tearDownClass(cls):
        d = cls.daemon
        if d is None:
            return
        problem = d.health_problem()
        status = d.stop()
        report = d.sanitizer_report()
        if problem is None and report:
            problem = "sanitizer report at exit:\n" + report
        if problem is None and status != 0:
            problem = "submitd exited %s on SIGTERM (expected 0)\n%s" % (status, d.log_tail())
        if problem is None and d.secret_leaks():
            problem = "a password or SASL payload was written to %s" % d.secret_leaks()
        d.cleanup(keep=problem is not None)
        if problem:
            raise AssertionError(problem)

    def setUp(self):
        problem = self.daemon.health_problem()
        if problem:
            self.fail("daemon unhealthy before the test: " + problem)

    def tearDown(self):
        problem = self.daemon.health_problem()
        if problem:
            self.fail("daemon unhealthy after the test: " + problem)

    # --- sessions ---
    def connect(self, port=None, **kw):
        c = Smtp(port or self.daemon.starttls_port, **kw)
        self.addCleanup(c.close)
        return c

    def connect_tls(self, port=None):
        """Connected, EHLO, STARTTLS, EHLO again."""
        c = self.connect(port)
        self.assertEqual(c.ehlo().code, 250)
        c.starttls()
        self.assertEqual(c.ehlo().code, 250)
        return c

    def connect_implicit(self):
        c = self.connect(self.daemon.tls_port, implicit_tls=True)
        self.assertEqual(c.ehlo().code, 250)
        return c

    def login(self, user="alice@example.com", password=PASSWORD, port=None):
        c = self.connect_tls(port)
        r = c.auth_plain(user, password)
        self.assertEqual(r.line, "235 2.7.0 Authentication successful")
        return c

    def send_message(self, c, msg, sender="alice@example.com", rcpts=("rcpt@example.net",)):
        """MAIL, RCPT..., DATA, the dot-stuffed message; returns the end-of-data reply."""
        r = c.cmd("MAIL FROM:<%s>" % sender)
        self.assertEqual(r.line, "250 2.1.0 Sender OK")
        for rcpt in rcpts:
            r = c.cmd("RCPT TO:<%s>" % rcpt)
            self.assertEqual(r.line, "250 2.1.5 Recipient OK")
        r = c.cmd("DATA")
        self.assertEqual(r.code, 354)
        c.send(dot_stuff(msg))
        return c.reply()

    def assertQueued(self, reply):
        """A 250 2.0.0 OK <queue id> whose file is in the queue; returns the id."""
        m = QUEUED_RE.match(reply.line)
        self.assertIsNotNone(m, "expected '250 2.0.0 OK <16 hex>', got %r" % reply.line)
        qid = m.group("id")
        self.assertIn(qid, self.daemon.queue_ids(), "250 sent but no queue file " + qid)
        return qid

    def assertStoredExactly(self, qid, msg, auth_user="alice@example.com", protocol=b"ESMTPSA"):
        """The queued message is a Received: field (`protocol`: ESMTPSA over TLS, ESMTPA
        without; the authenticated user) and then the client's message byte for byte. Returns
        the envelope."""
        env, stored = self.daemon.read_queue_file(qid)
        received, rest = split_received(stored)
        self.assertIn(b"with " + protocol + b" ", received)
        self.assertIn(auth_user.encode(), received)
        self.assertEqual(rest, msg, "stored message differs from what the client sent")
        return env

    def assertRefReply(self, reply, expected, log=None):
        """A single-line reply `expected` + ' [localhost <now> <16 hex>]'. With log
        ('signins' or 'submissions') the id must find the event. Returns (id, event)."""
        self.assertEqual(len(reply.lines), 1, reply)
        body, ref, when = split_reference(reply.line)
        self.assertIsNotNone(ref, "reply has no reference: %r" % reply.line)
        self.assertEqual(body, expected)
        self.assertTrue(reply.line.endswith(" [%s %s %s]" % (HOSTNAME, when, ref)))
        t = datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ")
        t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        self.assertLess(abs(t - time.time()), 120, "reference time is not now: " + when)
        event = None
        if log:
            event = self.daemon.find_event(log, ref)
            self.assertIsNotNone(event, "`submitctl %s --ref %s` finds nothing" % (log, ref))
        return ref, event

    def assertInSync(self, c):
        """Nothing unsolicited is pending and NOOP gets exactly one 250."""
        self.assertEqual(c.pending(0.2), b"", "unexpected data from the server")
        r = c.cmd("NOOP")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.pending(0.2), b"", "more than one reply to NOOP")

    def wait_spool_settled(self, timeout=5.0):
        """Waits until DIR/spool/tmp is empty (an aborted message is removed). Bounded."""
        deadline = time.monotonic() + timeout
        while self.daemon.tmp_files():
            if time.monotonic() > deadline:
                self.fail("spool/tmp still holds %s" % self.daemon.tmp_files())
            time.sleep(0.05)
