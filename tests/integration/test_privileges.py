"""Least privilege (issue 6): started as root, submitd binds its listeners, then runs as the
configured user; it refuses a data directory that others can read or that belongs to someone
else, and private keys that others can read. The root-only cases skip when not run as root."""
import os
import pwd
import subprocess
import tempfile
import time
import unittest

from tests.integration.harness import BUILD, free_port


class PermissionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="submitd-priv-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])

    def run_once(self, conf, timeout=5.0):
        """Runs submitd; returns (exit status or None if still running after 1.5 s, stderr)."""
        with open(os.path.join(self.dir, "submitd.conf"), "w") as f:
            f.write(conf)
        p = subprocess.Popen([os.path.join(BUILD, "submitd"), "-d", self.dir, "-f"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            rc = p.wait(1.5)
        except subprocess.TimeoutExpired:
            rc = None
            p.terminate()
        _, err = p.communicate(timeout=timeout)
        return rc, err

    def test_refuses_a_data_directory_others_can_read(self):
        os.chmod(self.dir, 0o755)
        rc, err = self.run_once("listen = 127.0.0.1:%d starttls\n" % free_port())
        self.assertEqual(rc, 1, err)
        self.assertIn("chmod 700 %s" % self.dir, err)

    def test_refuses_a_private_key_others_can_read(self):
        os.makedirs(os.path.join(self.dir, "tls"), mode=0o700)
        key = os.path.join(self.dir, "tls", "key.pem")
        with open(key, "w") as f:
            f.write("not really a key\n")
        os.chmod(key, 0o644)
        rc, err = self.run_once("listen = 127.0.0.1:%d starttls\n" % free_port())
        self.assertEqual(rc, 1, err)
        self.assertIn("chmod 600 %s" % key, err)

    def test_files_it_makes_are_private(self):
        rc, err = self.run_once("listen = 127.0.0.1:%d starttls\nauth-memlimit = 8M\n"
                                % free_port())
        self.assertIsNone(rc, err)  # it was serving until terminated
        for name in ("directory.db", "log.db", "tls/key.pem", "tls/cert.pem", "spool"):
            mode = os.stat(os.path.join(self.dir, name)).st_mode & 0o777
            self.assertEqual(mode & 0o077, 0, "%s is mode %o" % (name, mode))

    @unittest.skipUnless(os.geteuid() == 0, "needs root (CI runs as root)")
    def test_root_binds_then_runs_as_the_user(self):
        user = "nobody"
        uid = pwd.getpwnam(user).pw_uid
        os.chown(self.dir, uid, -1)
        port = free_port()
        with open(os.path.join(self.dir, "submitd.conf"), "w") as f:
            f.write("listen = 127.0.0.1:%d starttls\nuser = %s\nauth-memlimit = 8M\n"
                    % (port, user))
        p = subprocess.Popen([os.path.join(BUILD, "submitd"), "-d", self.dir, "-f"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        import socket
        deadline = time.monotonic() + 10
        banner = b""
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    banner = s.recv(200)
                break
            except OSError:
                time.sleep(0.1)
        self.assertTrue(banner.startswith(b"220 "), banner)
        with open("/proc/%d/status" % p.pid) as f:
            status = f.read()
        uids = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(uid)}, "real/effective/saved/fs uid: %r" % uids)
        self.assertEqual(os.stat(os.path.join(self.dir, "directory.db")).st_uid, uid)
        p.terminate()
        _, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)

    @unittest.skipUnless(os.geteuid() == 0, "needs root (CI runs as root)")
    def test_root_refuses_a_directory_the_user_does_not_own(self):
        rc, err = self.run_once("listen = 127.0.0.1:%d starttls\nuser = nobody\n" % free_port())
        self.assertEqual(rc, 1, err)
        self.assertIn("chown -R nobody %s" % self.dir, err)


if __name__ == "__main__":
    unittest.main()
