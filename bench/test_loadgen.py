"""test_loadgen.py: tests bench/loadgen.c against bench/fake_smtpd.py (no submitd needed).
Run: python3 -m unittest bench/test_loadgen.py -v   (builds loadgen into a temp dir first).
Covers: the built-in self-test, plaintext / STARTTLS / implicit TLS sessions, that messages
arrive intact after dot-stuffing, that refusals, dropped connections, malformed replies and bad
passwords count as failures and never as successes, that runs are bounded in time, and the
NOOP-latency mode, and the idle mode (every connection authenticated and held open at once, at
most --inflight being opened at a time, the ready file, drops while held, refusals, the file
descriptor limit)."""

import os
import re
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_smtpd import FakeSMTPD  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
USER, PASSWORD = "user@bench.example", "correct horse battery staple"
TMP = None
LOADGEN = None
TLS_CTX = None


def setUpModule():
    global TMP, LOADGEN, TLS_CTX
    TMP = tempfile.mkdtemp(prefix="loadgen-test-")
    LOADGEN = os.path.join(TMP, "loadgen")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "openssl"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wshadow",
                    "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wvla", "-O2", "-g"] +
                   os.environ.get("LOADGEN_SAN", "").split() + ["-o", LOADGEN,
                    os.path.join(HERE, "loadgen.c"), os.path.join(HERE, "loadgen_idle.c")] +
                   [f for f in flags if f] +
                   ["-pthread", "-lm"], check=True)
    cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", key, "-out", cert], check=True,
                   capture_output=True)
    TLS_CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    TLS_CTX.load_cert_chain(cert, key)


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def run_loadgen(port, *args, timeout=60):
    env = dict(os.environ, LOADGEN_PASSWORD=PASSWORD)
    t0 = time.monotonic()
    p = subprocess.run([LOADGEN, "--port", str(port), "--user", USER] + list(args),
                       capture_output=True, text=True, timeout=timeout, env=env)
    elapsed = time.monotonic() - t0
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    assert m, "no RESULT line:\n" + p.stdout + p.stderr
    res = dict(kv.split("=", 1) for kv in m.group(1).split())
    return p.returncode, res, elapsed, p.stdout + p.stderr


class LoadgenTest(unittest.TestCase):
    def server(self, **kw):
        s = FakeSMTPD(USER, PASSWORD, **kw)
        self.addCleanup(s.close)
        return s

    def test_self_test(self):
        p = subprocess.run([LOADGEN, "--self-test"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^\d+ passed, 0 failed$")

    def assert_intact(self, srv, n, size=4096):
        self.assertEqual(len(srv.messages), n)
        for msg in srv.messages:
            self.assertEqual(len(msg), size)
            self.assertIn(b"\r\n.\r\n", msg)  # a lone-dot line survived stuffing
            self.assertTrue(msg.startswith(b"From: <" + USER.encode() + b">\r\n"))
        self.assertEqual(srv.violations, [])

    def test_plaintext_counts_every_message(self):
        srv = self.server(cleartext_auth=True)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "3",
                                      "--per-conn", "5", "--connections", "6")
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["msgs_ok"], "30")
        self.assertEqual(res["failures"], "0")
        self.assertEqual(res["conns_ok"], "6")
        self.assertEqual(srv.auths_ok, 6)
        self.assert_intact(srv, 30)
        self.assertGreater(float(res["msgs_per_s"]), 0)
        self.assertLessEqual(float(res["txn_p50_ms"]), float(res["txn_p99_ms"]))

    def test_starttls(self):
        srv = self.server(tls=TLS_CTX)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "starttls", "--clients", "2",
                                      "--per-conn", "4", "--connections", "4")
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["msgs_ok"], "16")
        self.assert_intact(srv, 16)

    def test_implicit_tls_and_other_size(self):
        srv = self.server(tls=TLS_CTX, implicit=True)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "implicit", "--clients", "2",
                                      "--per-conn", "3", "--connections", "2", "--size", "10000")
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["msgs_ok"], "6")
        self.assert_intact(srv, 6, size=10000)

    def test_starttls_refused_when_not_offered(self):
        srv = self.server(cleartext_auth=True)  # no TLS at all
        rc, res, _, out = run_loadgen(srv.port, "--tls", "starttls", "--clients", "1",
                                      "--per-conn", "2")
        self.assertEqual(rc, 1, out)
        self.assertEqual(res["msgs_ok"], "0")
        self.assertEqual(res["conns_failed"], "1")

    def test_refused_rcpt_is_a_failure_and_session_goes_on(self):
        srv = self.server(cleartext_auth=True, fail_rcpt_every=3)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "1",
                                      "--per-conn", "9", "--connections", "1")
        self.assertEqual(rc, 1, out)
        self.assertEqual(res["msgs_ok"], "6")
        self.assertEqual(res["msgs_failed"], "3")
        self.assertIn("451=3", out)
        self.assert_intact(srv, 6)

    def test_wrong_password_fails_every_connection(self):
        srv = self.server(cleartext_auth=True)
        env = dict(os.environ, LOADGEN_PASSWORD="wrong")
        p = subprocess.run([LOADGEN, "--port", str(srv.port), "--user", USER, "--tls", "none",
                            "--clients", "2", "--per-conn", "3", "--connections", "4"],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("msgs_ok=0 ", p.stdout)
        self.assertIn("conns_failed=4 ", p.stdout)
        self.assertIn("535=4", p.stdout)
        self.assertEqual(srv.messages, [])

    def test_dropped_connection_in_data_is_not_a_success(self):
        srv = self.server(cleartext_auth=True, drop_in_data_every=2)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "1",
                                      "--per-conn", "5", "--connections", "3")
        self.assertEqual(rc, 1, out)
        self.assertEqual(int(res["msgs_ok"]), len(srv.messages))
        self.assertGreater(int(res["msgs_failed"]), 0)
        self.assertGreater(int(res["conns_failed"]), 0)

    def test_malformed_reply_is_a_failure(self):
        srv = self.server(cleartext_auth=True, bad_multiline_eod=True)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "1",
                                      "--per-conn", "2", "--connections", "1")
        self.assertEqual(rc, 1, out)
        self.assertEqual(res["msgs_ok"], "0")
        self.assertEqual(res["msgs_failed"], "1")
        self.assertIn("io=1", out)

    def test_stalled_server_is_bounded_in_time(self):
        srv = self.server(cleartext_auth=True, stall_data=True)
        rc, res, elapsed, out = run_loadgen(srv.port, "--tls", "none", "--clients", "2",
                                            "--per-conn", "5", "--connections", "100",
                                            "--duration", "1", "--timeout", "2")
        self.assertEqual(rc, 1, out)
        self.assertEqual(res["msgs_ok"], "0")
        self.assertLess(elapsed, 10)

    def test_duration_caps_a_long_run(self):
        srv = self.server(cleartext_auth=True)
        rc, res, elapsed, out = run_loadgen(srv.port, "--tls", "none", "--clients", "2",
                                            "--per-conn", "1000000", "--connections", "2",
                                            "--duration", "1")
        self.assertEqual(rc, 0, out)
        self.assertLess(elapsed, 5)
        self.assertEqual(int(res["msgs_ok"]), len(srv.messages))

    def test_sync_start_excludes_auth_from_the_rate(self):
        srv = self.server(cleartext_auth=True, auth_delay=0.3)
        rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "4",
                                      "--per-conn", "20", "--connections", "4", "--sync-start",
                                      "--server-pid", str(os.getpid()))  # the fake runs here
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["msgs_ok"], "80")
        self.assert_intact(srv, 80)
        # 0.3 s of AUTH is in the wall-clock rate but not in the rate after the barrier
        self.assertGreater(float(res["mail_msgs_per_s"]), float(res["msgs_per_s"]))
        self.assertGreater(float(res["elapsed_s"]), 0.3)
        cpu = float(res["server_cpu_ms_per_msg"])  # "nan" would fail the comparison
        self.assertTrue(0 <= cpu < 1000, res)

    def test_cpu_cmd_is_sampled_at_the_barrier_and_at_the_end(self):
        srv = self.server(cleartext_auth=True)
        with tempfile.TemporaryDirectory() as d:
            # prints 0 the first time and 800 the second: 800 ms over 80 messages
            cmd = ("n=$(cat %s/n 2>/dev/null || echo 0); echo $((n + 800)) >%s/n; echo $n"
                   % (d, d))
            rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "4",
                                          "--per-conn", "20", "--connections", "4",
                                          "--sync-start", "--cpu-cmd", cmd)
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["msgs_ok"], "80")
        self.assertEqual(res["server_cpu_ms_per_msg"], "10.00")
        rc, res, _, out = run_loadgen(srv.port, "--tls", "none", "--clients", "2",
                                      "--per-conn", "2", "--connections", "2", "--sync-start",
                                      "--cpu-cmd", "exit 3")
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["server_cpu_ms_per_msg"], "nan")

    def test_sync_start_does_not_hang_when_sessions_fail(self):
        srv = self.server(cleartext_auth=True)
        env = dict(os.environ, LOADGEN_PASSWORD="wrong")
        p = subprocess.run([LOADGEN, "--port", str(srv.port), "--user", USER, "--tls", "none",
                            "--clients", "3", "--per-conn", "5", "--connections", "3",
                            "--sync-start"], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("conns_failed=3 ", p.stdout)
        self.assertIn("mail_msgs_per_s=nan ", p.stdout)

    def test_noop_mode(self):
        srv = self.server(tls=TLS_CTX, auth_delay=0.02)
        rc, res, _, out = run_loadgen(srv.port, "--mode", "noop", "--tls", "starttls",
                                      "--clients", "3", "--connections", "30")
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["auths_ok"], "31")  # 30 connections and the NOOP prober
        self.assertEqual(srv.auths_ok, 31)
        self.assertGreater(int(res["noops_ok"]), 0)
        self.assertEqual(int(res["noops_ok"]), srv.noops)
        self.assertGreaterEqual(float(res["auth_p50_ms"]), 20)
        self.assertLess(float(res["noop_p50_ms"]), float(res["auth_p50_ms"]))

    def test_noop_baseline_without_auth_clients(self):
        srv = self.server(tls=TLS_CTX)
        rc, res, _, out = run_loadgen(srv.port, "--mode", "noop", "--clients", "0",
                                      "--noops", "50", "--noop-interval-ms", "0")
        self.assertEqual(rc, 0, out)
        self.assertEqual(res["noops_ok"], "50")

    def idle(self, srv, *args, password=PASSWORD, user=USER, **popen):
        env = dict(os.environ, LOADGEN_PASSWORD=password)
        return subprocess.Popen([LOADGEN, "--mode", "idle", "--port", str(srv.port), "--user",
                                 user] + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, **popen)

    def finish(self, p, timeout=30):
        out, err = p.communicate(timeout=timeout)
        m = re.search(r"^RESULT (.*)$", out, re.M)
        self.assertTrue(m, out + err)
        return p.returncode, dict(kv.split("=", 1) for kv in m.group(1).split()), out + err

    def test_idle_mode_holds_every_connection_open_at_once(self):
        srv = self.server(tls=TLS_CTX, auth_delay=0.02)
        srv.user = None  # any user: the test checks which ones loadgen used
        ready = os.path.join(TMP, "ready-holds")
        t0 = time.monotonic()
        p = self.idle(srv, "--tls", "starttls", "--connections", "40", "--clients", "3",
                      "--inflight", "8", "--hold", "60", "--ready-file", ready,
                      user="idle%d@bench.example")
        for _ in range(300):
            if os.path.exists(ready) or p.poll() is not None:
                break
            time.sleep(0.05)
        with open(ready) as f:
            self.assertEqual(f.read(), "open=40\n")
        time.sleep(0.3)  # held: nothing is sent, nothing dropped
        self.assertEqual(srv.open_now, 40)
        self.assertEqual(srv.unauthed_now, 0)
        self.assertLessEqual(srv.unauthed_peak, 8)  # --inflight bounds the sessions being opened
        self.assertEqual(srv.auth_users, {"idle0@bench.example": 14, "idle1@bench.example": 13,
                                          "idle2@bench.example": 13})
        os.unlink(ready)  # ends the hold long before 60 s
        rc, res, out = self.finish(p)
        self.assertEqual(rc, 0, out)
        self.assertIn("READY open=40\n", out)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(res["held"], "40")
        self.assertEqual(res["conns_ok"], "40")
        self.assertEqual(res["auths_ok"], "40")
        self.assertEqual(res["failures"], "0")
        self.assertGreaterEqual(float(res["auth_p50_ms"]), 20)
        self.assertEqual(srv.violations, [])
        for _ in range(100):  # every session got its QUIT
            if srv.open_now == 0:
                break
            time.sleep(0.05)
        self.assertEqual(srv.open_now, 0)

    def test_idle_mode_plaintext_and_implicit_tls(self):
        for kw, tls in (({"cleartext_auth": True}, "none"),
                        ({"tls": TLS_CTX, "implicit": True}, "implicit")):
            srv = self.server(**kw)
            rc, res, out = self.finish(self.idle(srv, "--tls", tls, "--connections", "25",
                                                 "--clients", "5", "--hold", "0"))
            self.assertEqual(rc, 0, out)
            self.assertEqual((res["held"], res["conns_ok"]), ("25", "25"), out)
            self.assertEqual(srv.auths_ok, 25)
            self.assertEqual(srv.open_peak, 25)  # all open at once
            self.assertEqual(srv.violations, [])

    def test_idle_sessions_dropped_while_held_are_failures(self):
        srv = self.server(cleartext_auth=True, idle_timeout=0.5)
        t0 = time.monotonic()
        rc, res, out = self.finish(self.idle(srv, "--tls", "none", "--connections", "10",
                                             "--clients", "2", "--hold", "2"))
        self.assertEqual(rc, 1, out)
        self.assertEqual(res["held"], "10")
        self.assertEqual(res["dropped"], "10")
        self.assertEqual(res["conns_ok"], "0")
        self.assertEqual(res["failures"], "10")
        self.assertLess(time.monotonic() - t0, 10)  # --hold bounds it without a ready file

    def test_idle_refused_auth_opens_nothing(self):
        srv = self.server(cleartext_auth=True)
        rc, res, out = self.finish(self.idle(srv, "--tls", "none", "--connections", "6",
                                             "--clients", "2", "--hold", "5",
                                             password="wrong"))
        self.assertEqual(rc, 1, out)
        self.assertEqual(res["held"], "0")
        self.assertEqual(res["conns_failed"], "6")
        self.assertIn("535=6", out)

    def test_idle_needs_the_file_descriptors(self):
        srv = self.server(cleartext_auth=True)

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        p = self.idle(srv, "--tls", "none", "--connections", "500", preexec_fn=low_limit)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 2, out + err)
        self.assertIn("RLIMIT_NOFILE is 64", err)
        self.assertEqual(srv.sessions, 0)

    def test_bad_usage(self):
        p = subprocess.run([LOADGEN, "--port", "1", "--user", USER, "--clients", "x"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([LOADGEN, "--port", "1", "--user", USER, "--duration", "0"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([LOADGEN, "--port", "1", "--user", USER, "--clients", "4",
                            "--connections", "3", "--sync-start"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([LOADGEN, "--port", "1", "--user", USER, "--mode", "idle",
                            "--clients", "0"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
