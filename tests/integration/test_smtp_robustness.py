"""test_smtp_robustness.py: clients that vanish in every session state, garbage, concurrency,
the error limit and idle timeout (RFC 5321 4.5.3.2), SIGHUP reload and SIGTERM with an open
transaction. After each, the daemon must be healthy, the next client must work, and nothing
half-received may be in the queue (SPEC section 7)."""

import signal
import socket
import ssl
import struct
import threading
import time
import unittest

from .harness import (PASSWORD, Daemon, DaemonTestCase, Smtp, b64, dot_stuff, message,
                      tls_client_context, QUEUED_RE)


def client_hello():
    """The bytes of a real TLS ClientHello."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    assert len(data) > 40
    return data


def abort(sock):
    """Closes with a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class DisconnectTest(DaemonTestCase):

    @classmethod
    def provision(cls, d):
        d.provision_example()
        for i in range(6):
            d.add_mailbox("c%d@example.com" % i)

    # Each returns an open socket (or Smtp) left in the named state.
    def state_after_connect(self):
        return socket.create_connection(("127.0.0.1", self.daemon.starttls_port), timeout=10)

    def state_mid_ehlo(self):
        c = Smtp(self.daemon.starttls_port)
        c.send(b"EHLO half-a-comm")
        return c

    def state_mid_starttls_handshake(self):
        c = Smtp(self.daemon.starttls_port)
        c.ehlo()
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        hello = client_hello()
        c.send(hello[: len(hello) // 2])
        return c

    def state_mid_implicit_tls_handshake(self):
        s = socket.create_connection(("127.0.0.1", self.daemon.tls_port), timeout=10)
        hello = client_hello()
        s.sendall(hello[:20])
        return s

    def state_mid_auth_login(self):
        c = Smtp(self.daemon.starttls_port)
        c.ehlo()
        c.starttls()
        c.ehlo()
        self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
        self.assertEqual(c.cmd(b64("alice@example.com")).code, 334)
        return c

    def state_mid_auth_line(self):
        c = Smtp(self.daemon.starttls_port)
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.send(b"AUTH PLAIN AGFsaWNlQGV4YW1w")
        return c

    def _logged_in(self):
        c = Smtp(self.daemon.starttls_port)
        c.ehlo()
        c.starttls()
        c.ehlo()
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).code, 235)
        return c

    def state_after_mail(self):
        c = self._logged_in()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        return c

    def state_after_rcpt(self):
        c = self.state_after_mail()
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        return c

    def state_mid_data(self):
        c = self.state_after_rcpt()
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"Subject: never finished\r\n\r\n" + b"data line\r\n" * 2000)
        return c

    def state_mid_data_at_the_final_dot(self):
        c = self.state_after_rcpt()
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"Subject: almost\r\n\r\nbody\r\n.")
        return c

    def state_mid_bdat(self):
        c = self.state_after_rcpt()
        c.send(b"BDAT 1000 LAST\r\n" + b"x" * 100)
        return c

    def state_after_bdat_chunk(self):
        c = self.state_after_rcpt()
        c.send(b"BDAT 10\r\n0123456789")
        self.assertEqual(c.reply().code, 250)
        return c

    STATES = ("after_connect", "mid_ehlo", "mid_starttls_handshake",
              "mid_implicit_tls_handshake", "mid_auth_login", "mid_auth_line", "after_mail",
              "after_rcpt", "mid_data", "mid_data_at_the_final_dot", "mid_bdat",
              "after_bdat_chunk")

    def test_disconnect_in_every_state(self):
        before = self.daemon.queue_ids()
        for state in self.STATES:
            for how in ("close", "reset"):
                with self.subTest(state=state, how=how):
                    conn = getattr(self, "state_" + state)()
                    sock = conn.sock if isinstance(conn, Smtp) else conn
                    if how == "reset":
                        abort(sock)
                    else:
                        sock.close()
                    self.wait_spool_settled()
                    self.assertEqual(self.daemon.queue_ids(), before)
                    self.assertIsNone(self.daemon.health_problem())
                    c = self.connect()
                    self.assertEqual(c.ehlo().code, 250)
                    c.quit()
        # Nothing of it reached the queue, and a whole submission still works.
        time.sleep(0.2)
        self.wait_spool_settled()
        self.assertEqual(self.daemon.queue_ids(), before)
        c = self.login()
        msg = message(subject="after the disconnects")
        self.assertStoredExactly(self.assertQueued(self.send_message(c, msg)), msg)

    def test_garbage_and_overlong_lines(self):
        payloads = (
            bytes(range(256)) * 4 + b"\r\n",
            b"\x00\x00\x00\r\n\r\n\r\n",
            b"A" * 70000,  # no line end at all
            b"EHLO " + b"h" * 5000 + b"\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # TLS on plaintext
        )
        for i, payload in enumerate(payloads):
            with self.subTest(payload=i):
                c = self.connect()
                c.send(payload)
                data = c.pending(0.5)
                if data:
                    for line in data.split(b"\r\n"):
                        if line:
                            self.assertIn(line[:1], (b"4", b"5"), data[:300])
                c.close()
                c = self.connect()
                self.assertEqual(c.ehlo().code, 250)

    def test_concurrent_sessions(self):
        results = {}
        msgs = {i: message(subject="concurrent %d" % i, sender="c%d@example.com" % i)
                for i in range(6)}

        def session(i):
            try:
                c = Smtp(self.daemon.starttls_port)
                c.ehlo()
                c.starttls()
                c.ehlo()
                user = "c%d@example.com" % i
                assert c.auth_plain(user, PASSWORD).code == 235
                assert c.cmd("MAIL FROM:<%s>" % user).code == 250
                assert c.cmd("RCPT TO:<r@example.net>").code == 250
                assert c.cmd("DATA").code == 354
                c.send(dot_stuff(msgs[i]))
                results[i] = c.reply().line
                c.quit()
            except Exception as e:  # reported below
                results[i] = "error: %r" % (e,)

        threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 6, results)
        for i, line in sorted(results.items()):
            m = QUEUED_RE.match(line)
            self.assertIsNotNone(m, "session %d: %s" % (i, line))
            self.assertStoredExactly(m.group("id"), msgs[i], auth_user="c%d@example.com" % i)


    def test_client_that_reads_late_gets_every_reply_in_order(self):
        """A client pipelines 100,000 commands and reads nothing for two seconds: 7 MB of
        replies, more than the sockets hold, so the socket takes part of a reply, then none (the
        server queues the rest, then stops reading: bounded memory); once the client reads,
        every reply arrives, whole and in order."""
        n = 100000
        sock = socket.create_connection(("127.0.0.1", self.daemon.starttls_port), timeout=30)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        commands = b"".join(b"NOOP %d\r\n" % i if i % 2 else b"HELP\r\n" for i in range(n))
        sender = threading.Thread(target=sock.sendall, args=(commands + b"QUIT\r\n",),
                                  daemon=True)
        sender.start()
        time.sleep(2)
        data = b""
        deadline = time.monotonic() + 60
        while True:  # until the server closes, after its 221
            self.assertLess(time.monotonic(), deadline, "%d octets so far" % len(data))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sender.join(30)
        lines = data.split(b"\r\n")
        self.assertTrue(lines[0].startswith(b"220 "), lines[0])
        self.assertEqual(lines[-1], b"")
        self.assertTrue(lines[-2].startswith(b"221 "), lines[-2])
        replies = lines[1:-2]
        self.assertEqual(len(replies), n)
        for i, line in enumerate(replies):  # HELP and NOOP answer differently: order shows
            self.assertEqual(line[:3], b"250" if i % 2 else b"214", (i, line))
        self.assertTrue(self.daemon.alive())


class LimitsTest(DaemonTestCase):
    CONF = ("command-timeout = 2", "max-errors = 3")

    def test_error_limit(self):
        c = self.connect()
        c.ehlo()
        replies = []
        for _ in range(6):
            try:
                r = c.cmd("FROBNICATE")
            except (EOFError, ConnectionError):
                break
            replies.append(r.line)
            if r.code == 421:
                break
        self.assertTrue(replies and replies[-1].startswith("421 4.7.0 "), replies)
        self.assertIn(len(replies), (3, 4), "421 after max-errors=3 errors: %r" % replies)
        for line in replies[:-1]:
            self.assertTrue(line.startswith("500 5.5.1"), replies)
        self.assertTrue(c.wait_closed(5), "connection still open after 421")

    def test_idle_timeout(self):
        start = time.monotonic()
        plain = self.connect()  # idle before EHLO
        ehlo = self.connect()
        ehlo.ehlo()
        tls = self.login()
        self.assertEqual(tls.cmd("MAIL FROM:<alice@example.com>").code, 250)
        implicit = self.connect_implicit()
        for name, c in (("before EHLO", plain), ("after EHLO", ehlo), ("STARTTLS, in MAIL", tls),
                        ("implicit TLS", implicit)):
            with self.subTest(name):
                c.timeout = 10
                try:
                    r = c.reply()
                except EOFError:
                    self.fail("closed without a 421 reply")
                self.assertEqual(r.line, "421 4.4.2 Timeout exceeded, closing connection")
                self.assertTrue(c.wait_closed(5), "connection still open after 421")
        self.assertLess(time.monotonic() - start, 9)
        self.wait_spool_settled()

    def test_trickling_client_is_cut_off(self):
        """A byte every 0.7 s is not progress: with command-timeout = 2 the server answers 421
        before the command line is complete (issue 6, slow clients)."""
        c = self.connect()
        c.ehlo()
        start = time.monotonic()
        closed = False
        for ch in b"NOOP NOOP NOOP\r\n":
            try:
                c.send(bytes([ch]))
            except OSError:
                closed = True
                break
            time.sleep(0.7)
            if time.monotonic() - start > 8:
                break
        c.timeout = 5
        try:
            r = c.reply()
            self.assertEqual(r.line, "421 4.4.2 Timeout exceeded, closing connection")
        except (EOFError, ConnectionError):
            self.assertTrue(closed, "closed without a 421")
        self.assertLess(time.monotonic() - start, 8)

    def test_activity_resets_the_timer(self):
        c = self.connect()
        c.ehlo()
        for _ in range(3):
            time.sleep(1.0)
            self.assertEqual(c.cmd("NOOP").code, 250)

    def test_idle_in_data(self):
        before = self.daemon.queue_ids()
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"Subject: stalled\r\n\r\n")
        # data-timeout is the default (180 s): the session must still be open after the
        # command timeout, and finishing the message works.
        time.sleep(3)
        c.send(b"done\r\n.\r\n")
        self.assertQueued(c.reply())
        self.assertNotEqual(self.daemon.queue_ids(), before)


class LifecycleTest(unittest.TestCase):
    """Signals: each test has its own daemon."""

    def start_daemon(self, conf=()):
        d = Daemon(conf)
        self.addCleanup(d.cleanup)
        self.addCleanup(d.kill)
        d.start()
        d.provision_example()
        return d

    def assertCleanExit(self, d):
        status = d.stop()
        self.assertEqual(status, 0, d.log_tail())
        self.assertIsNone(d.sanitizer_report())

    def session(self, d):
        c = Smtp(d.starttls_port)
        self.addCleanup(c.close)
        c.ehlo()
        c.starttls()
        c.ehlo()
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).code, 235)
        return c

    def test_sighup_reload_keeps_serving_and_applies_configuration(self):
        d = self.start_daemon(["max-recipients = 5"])
        old = self.session(d)
        d.write_config(["max-recipients = 2"])
        d.signal(signal.SIGHUP)
        applied = False
        deadline = time.monotonic() + 5
        while not applied and time.monotonic() < deadline:
            c = self.session(d)
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
            codes = [c.cmd("RCPT TO:<r%d@example.net>" % i).code for i in range(3)]
            applied = codes == [250, 250, 452]
            if not applied:
                self.assertEqual(codes, [250, 250, 250])
                time.sleep(0.2)
            c.quit()
        self.assertTrue(applied, "max-recipients from the reloaded configuration not applied")
        self.assertIsNone(d.health_problem())
        # A session from before the reload still works.
        self.assertEqual(old.cmd("NOOP").code, 250)
        msg = message(subject="across reload")
        self.assertEqual(old.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(old.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(old.cmd("DATA").code, 354)
        old.send(dot_stuff(msg))
        self.assertIsNotNone(QUEUED_RE.match(old.reply().line))
        # All listeners still answer.
        for port in d.ports.values():
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        self.assertCleanExit(d)

    def test_sigterm_lets_an_open_transaction_finish(self):
        d = self.start_daemon()
        idle = Smtp(d.starttls_port)
        self.addCleanup(idle.close)
        idle.ehlo()
        c = self.session(d)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        msg = message(subject="finished during shutdown", body=b"line\r\n" * 500)
        wire = dot_stuff(msg)
        c.send(wire[:1000])
        time.sleep(0.3)
        d.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(d.proc.poll(), "exited with a transaction open")
        c.send(wire[1000:])
        r = c.reply()
        m = QUEUED_RE.match(r.line)
        self.assertIsNotNone(m, r)
        qid = m.group("id")
        self.assertIn(qid, d.queue_ids())
        try:
            r = c.cmd("QUIT")
            self.assertIn(r.code, (221, 421), r)
        except (EOFError, ConnectionError):
            pass  # closing right after the transaction is fine
        deadline = time.monotonic() + 15
        while d.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIsNotNone(d.proc.poll(), "did not exit within 15 s of SIGTERM "
                                            "(an idle session was still open)")
        self.assertCleanExit(d)
        # The message survives a restart; tmp/ is empty.
        d.start()
        self.assertIn(qid, d.queue_ids())
        self.assertEqual(d.tmp_files(), [])
        c = self.session(d)
        c.quit()
        self.assertCleanExit(d)
