"""postfix_instance.py: a private Postfix (submission with STARTTLS, RFC 3207; SASL through
Dovecot, RFC 4954) on a loopback port, with its configuration, queue and Dovecot's sockets in a
temporary directory, for the smtp-doctor tests. It delivers nothing (default_transport discard).

Needs root (Postfix's master and Dovecot drop privileges to their users). When postfix or dovecot
is not installed, they are installed with apt-get only when running as root with CI or
SUBMITD_TEST_INSTALL=1 set; otherwise the tests are skipped with the reason. Every wait bounded.
"""

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
USER = "alice@pfx.test"
PASSWORD = "Corr3ct-Horse:Battery"
OTHER_USER = "bob@pfx.test"


def _installed():
    return (shutil.which("postfix") or os.path.exists("/usr/sbin/postfix")) and \
        (shutil.which("dovecot") or os.path.exists("/usr/sbin/dovecot"))


def ensure_installed():
    """Raises unittest.SkipTest with the reason when Postfix and Dovecot cannot be had."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("Postfix tests need root (a private master and Dovecot)")
    if _installed():
        return
    if not (os.environ.get("CI") or os.environ.get("SUBMITD_TEST_INSTALL") == "1"):
        raise unittest.SkipTest("postfix and dovecot-core are not installed; set "
                                "SUBMITD_TEST_INSTALL=1 (as root) to let the test install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postfix",
                            "dovecot-core"], capture_output=True, timeout=INSTALL_TIMEOUT,
                           env=env)
    except subprocess.TimeoutExpired:
        raise unittest.SkipTest("apt-get install postfix dovecot-core took over %d s"
                                % INSTALL_TIMEOUT)
    if r.returncode != 0 or not _installed():
        raise unittest.SkipTest("apt-get install postfix dovecot-core failed: %s"
                                % r.stderr.decode("utf-8", "replace")[-500:])


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
127.0.0.1:{port_tls} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
config_directory = {d}/etc
queue_directory = {d}/queue
data_directory = {d}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.pfx.test
mydomain = pfx.test
myorigin = pfx.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
default_transport = discard:test instance
relay_transport = discard:test instance
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
smtpd_tls_cert_file = {d}/etc/cert.pem
smtpd_tls_key_file = {d}/etc/key.pem
smtpd_sasl_type = dovecot
smtpd_error_sleep_time = 0s
smtpd_sasl_path = private/auth
smtpd_sender_login_maps = inline:{{ {user}={user}, {other}={other} }}
"""

DOVECOT_CONF = """\
base_dir = {d}/dovecot-run
state_dir = {d}/dovecot-run
protocols =
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {d}/etc/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {d}/queue/private/auth {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""


class PostfixInstance:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="doctor-postfix-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.port_tls = free_port()
        self.started_postfix = False
        self.dovecot_pid = None

    def _run(self, argv, **kw):
        """Runs a command with its output in a file, not a pipe: Postfix's master and Dovecot
        inherit the descriptors and would keep a pipe open for as long as they run."""
        with tempfile.TemporaryFile() as out:
            r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=60, **kw)
            out.seek(0)
            r.stdout = out.read()
            r.stderr = b""
        return r

    def start(self):
        d = self.dir
        for sub in ("etc", "queue", "data", "dovecot-run"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        shutil.chown(os.path.join(d, "data"), "postfix")
        r = self._run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                       "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/etc/key.pem",
                       "-out", d + "/etc/cert.pem", "-days", "30", "-subj", "/CN=localhost",
                       "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        if r.returncode:
            raise AssertionError("openssl req: " + r.stderr.decode())
        with open(d + "/etc/main.cf", "w") as f:
            f.write(MAIN_CF.format(d=d, user=USER, other=OTHER_USER))
        with open(d + "/etc/master.cf", "w") as f:
            f.write(MASTER_CF.format(port=self.port, port_tls=self.port_tls))
        r = self._run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD])
        if r.returncode:
            raise AssertionError("doveadm pw: " + r.stderr.decode())
        hashed = r.stdout.decode().strip()
        with open(d + "/etc/users", "w") as f:
            f.write("%s:%s\n%s:%s\n" % (USER, hashed, OTHER_USER, hashed))
        with open(d + "/etc/dovecot.conf", "w") as f:
            f.write(DOVECOT_CONF.format(d=d))
        # postfix start makes the queue directories; Dovecot then puts its socket in private/.
        r = self._run(["postfix", "-c", d + "/etc", "start"], stdin=subprocess.DEVNULL)
        self.started_postfix = True
        if r.returncode:
            raise AssertionError("postfix start exited %d: %s\n%s" % (
                r.returncode, (r.stdout + r.stderr).decode(), self.log_tail()))
        r = self._run(["dovecot", "-c", d + "/etc/dovecot.conf"], stdin=subprocess.DEVNULL)
        if r.returncode:
            raise AssertionError("dovecot exited %d: %s" % (r.returncode,
                                                            (r.stdout + r.stderr).decode()))
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        pid_file = self.dir + "/dovecot-run/master.pid"
        while True:
            sock_ok = os.path.exists(self.dir + "/queue/private/auth")
            if self.dovecot_pid is None and os.path.exists(pid_file):
                try:
                    with open(pid_file) as f:
                        self.dovecot_pid = int(f.read().strip())
                except ValueError:
                    pass
            ports_ok = True
            for p in (self.port, self.port_tls):
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                except OSError:
                    ports_ok = False
            if sock_ok and ports_ok and self.dovecot_pid:
                return
            if time.monotonic() > deadline:
                raise AssertionError("Postfix/Dovecot not ready after %.0f s\n%s"
                                     % (START_TIMEOUT, self.log_tail()))
            time.sleep(0.1)

    def log_tail(self, n=30):
        out = []
        for name in ("maillog", "dovecot.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append("--- %s ---\n%s" % (name, "".join(f.readlines()[-n:])))
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.started_postfix:
            self._run(["postfix", "-c", self.dir + "/etc", "stop"], stdin=subprocess.DEVNULL)
            self.started_postfix = False
        if self.dovecot_pid:
            try:
                os.kill(self.dovecot_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.dovecot_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            self.dovecot_pid = None

    def cleanup(self, keep=False):
        if keep or os.environ.get("SUBMITD_KEEP"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)
