"""delivery_peers.py: real next hops on loopback for the delivery tests (issue 4): Postfix's
smtp-sink (a smarthost that stores each transaction in a file, optionally answering 4xx/5xx)
and a private Dovecot LMTP server (Debian dovecot-lmtpd) with Maildir storage. Both need root
(they drop privileges to nobody); when not installed they are installed with apt-get only as
root with CI or SUBMITD_TEST_INSTALL=1 set, else the tests are skipped with the reason. Every
wait is bounded."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from .harness import free_port

INSTALL_TIMEOUT = 600
START_TIMEOUT = 20.0


def _have(*paths):
    return all(os.path.exists(p) for p in paths)


def ensure_installed(packages, paths):
    """Raises unittest.SkipTest unless every path exists (installing packages when allowed)."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("delivery peers need root (they drop privileges to nobody)")
    if _have(*paths):
        return
    if not (os.environ.get("CI") or os.environ.get("SUBMITD_TEST_INSTALL") == "1"):
        raise unittest.SkipTest("%s not installed; set SUBMITD_TEST_INSTALL=1 (as root) to let "
                                "the test install them" % " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + packages,
                           capture_output=True, timeout=INSTALL_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise unittest.SkipTest("apt-get install %s took over %d s" % (packages, INSTALL_TIMEOUT))
    if r.returncode != 0 or not _have(*paths):
        raise unittest.SkipTest("apt-get install %s failed: %s"
                                % (packages, r.stderr.decode("utf-8", "replace")[-500:]))


def wait_port(port, proc=None, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("peer exited with %s while starting" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on 127.0.0.1:%d after %.0f s" % (port, timeout))


SMTP_SINK = "/usr/sbin/smtp-sink"


class SmtpSink:
    """smtp-sink on a free loopback port; every transaction lands in a file of dump_dir:
    X-Client-Addr, X-Client-Proto, X-Helo-Args, X-Mail-Args, one X-Rcpt-Args per RCPT, a
    3-line Received:, then the message with LF line ends and dots removed, then one empty
    line."""

    def __init__(self, flags=()):
        ensure_installed(["postfix"], [SMTP_SINK])
        self.dir = tempfile.mkdtemp(prefix="submitd-sink-")
        os.chmod(self.dir, 0o755)
        self.dump_dir = os.path.join(self.dir, "dump")
        os.mkdir(self.dump_dir)
        shutil.chown(self.dump_dir, "nobody")
        self.port = free_port()
        self.flags = list(flags)
        self.proc = None

    def start(self, flags=None):
        if flags is not None:
            self.flags = list(flags)
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-d", os.path.join(self.dump_dir, "%Y%m%d%H%M%S.")]
            + self.flags + ["127.0.0.1:%d" % self.port, "100"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, flags):
        self.stop()
        self.start(flags)

    def transactions(self):
        """[(headers dict of lists, message bytes)] of every stored transaction. smtp-sink
        writes a dump file as the transaction goes, so files are read only once none has
        changed for SETTLE seconds (a file read too early lacks headers or the message)."""
        out = []
        settle = 0.5
        while True:
            paths = sorted(glob.glob(os.path.join(self.dump_dir, "*")))
            newest = max((os.stat(p).st_mtime for p in paths), default=0.0)
            young = time.time() - newest
            if young >= settle:
                break
            time.sleep(settle - young)
        for path in paths:
            with open(path, "rb") as f:
                data = f.read()
            head, msg = {}, data
            lines = data.split(b"\n")
            i = 0
            while i < len(lines) and lines[i].startswith(b"X-"):
                k, _, v = lines[i].partition(b": ")
                head.setdefault(k.decode(), []).append(v.decode("utf-8", "replace"))
                i += 1
            # the sink's own Received: (3 lines) follows
            if i < len(lines) and lines[i].startswith(b"Received:"):
                i += 3
            msg = b"\n".join(lines[i:])
            out.append((head, msg))
        return out

    def wait_transactions(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.transactions()
            if len(t) >= n:
                return t
            time.sleep(0.1)
        raise AssertionError("smtp-sink stored %d transactions, expected %d within %.0f s"
                             % (len(self.transactions()), n, timeout))

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


DOVECOT = "/usr/sbin/dovecot"
DOVECOT_LMTP = "/usr/lib/dovecot/lmtp"

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/run
log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
default_internal_user = nobody
default_login_user = nobody
mail_location = maildir:{d}/mail/%d/%n/Maildir
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
  default_fields = uid=nobody gid=nogroup
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0600
  }}
}}
"""


class DovecotLmtp:
    """A private Dovecot LMTP server; users are the addresses given (others get 550 5.1.1).
    Mail lands in DIR/mail/DOMAIN/LOCAL/Maildir."""

    def __init__(self, users):
        ensure_installed(["dovecot-lmtpd"], [DOVECOT, DOVECOT_LMTP])
        self.dir = tempfile.mkdtemp(prefix="submitd-lmtp-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        os.mkdir(os.path.join(self.dir, "mail"))
        shutil.chown(os.path.join(self.dir, "mail"), "nobody")
        with open(os.path.join(self.dir, "users"), "w") as f:
            for u in users:
                local, domain = u.split("@")
                f.write("%s:::::%s/mail/%s/%s::\n" % (u, self.dir, domain, local))
        with open(os.path.join(self.dir, "dovecot.conf"), "w") as f:
            f.write(DOVECOT_CONF.format(d=self.dir, port=self.port))
        self.started = False

    def start(self):
        # the master forks and keeps its descriptors: no pipes, or run() would wait for it
        err_path = os.path.join(self.dir, "start.err")
        with open(err_path, "wb") as err:
            r = subprocess.run([DOVECOT, "-c", os.path.join(self.dir, "dovecot.conf")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                               timeout=START_TIMEOUT)
        if r.returncode != 0:
            with open(err_path, "rb") as f:
                raise AssertionError("dovecot failed to start: %s" % f.read().decode()[-500:])
        self.started = True
        wait_port(self.port)

    def maildir_files(self, address):
        local, domain = address.split("@")
        base = os.path.join(self.dir, "mail", domain, local, "Maildir", "new")
        return sorted(glob.glob(os.path.join(base, "*")))

    def log_tail(self, n=20):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def cleanup(self):
        if self.started:
            pid_path = os.path.join(self.dir, "run", "master.pid")
            try:
                with open(pid_path) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
