"""fake_smtpd.py: a small, strict SMTP submission server for testing bench/loadgen.c without
submitd (RFC 5321, RFC 3207 STARTTLS, RFC 8314 implicit TLS, RFC 4954/4616 AUTH PLAIN).
It checks what the client sends (CRLF line ends, command order, AUTH only after TLS unless told
otherwise, end of data only at CRLF.CRLF) and can inject faults: refusals, dropped connections,
stalls, malformed replies, slow AUTH and idle sessions dropped after a timeout. It counts the
sessions open at once and those not yet authenticated (for loadgen's idle mode). Listens on 127.0.0.1 only; used by test_loadgen.py."""

import base64
import socket
import ssl
import threading


class FakeSMTPD:
    def __init__(self, user, password, tls=None, implicit=False, cleartext_auth=False,
                 fail_rcpt_every=0, drop_in_data_every=0, stall_data=False,
                 bad_multiline_eod=False, auth_delay=0.0, idle_timeout=20.0, port=0):
        self.user, self.password = user, password
        self.tls, self.implicit, self.cleartext_auth = tls, implicit, cleartext_auth
        self.fail_rcpt_every = fail_rcpt_every
        self.drop_in_data_every = drop_in_data_every
        self.stall_data = stall_data
        self.bad_multiline_eod = bad_multiline_eod
        self.auth_delay = auth_delay
        self.idle_timeout = idle_timeout  # a session silent this long is dropped
        self.lock = threading.Lock()
        self.messages = []          # unstuffed message bodies accepted with 250
        self.rcpts = 0
        self.datas = 0
        self.auths_ok = self.auths_failed = 0
        self.noops = 0
        self.violations = []        # protocol errors the client made
        self.sessions = 0
        self.open_now = self.open_peak = 0        # sessions connected at once
        self.unauthed_now = self.unauthed_peak = 0  # of those, not yet authenticated
        self.auth_users = {}                      # user -> successful AUTHs
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()

    def _accept_loop(self):
        while not self.stopping:
            conn, _ = self.sock.accept()
            if self.stopping:
                conn.close()
                break
            threading.Thread(target=self._session_safe, args=(conn,), daemon=True).start()

    def _violation(self, what):
        with self.lock:
            self.violations.append(what)

    def _session_safe(self, conn):
        conn.settimeout(self.idle_timeout)
        open_socks = [conn]  # the raw socket, then the TLS one wrapping it
        authed = [False]     # set by _session at 235
        self._count(1, 1)
        try:
            self._session(conn, open_socks, authed)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for s in reversed(open_socks):
                s.close()
            self._count(-1, 0 if authed[0] else -1)

    def _count(self, d_open, d_unauthed):
        with self.lock:
            self.open_now += d_open
            self.unauthed_now += d_unauthed
            self.open_peak = max(self.open_peak, self.open_now)
            self.unauthed_peak = max(self.unauthed_peak, self.unauthed_now)

    def _session(self, conn, open_socks, counted_authed):
        with self.lock:
            self.sessions += 1
            session_no = self.sessions
        if self.implicit:
            conn = self.tls.wrap_socket(conn, server_side=True)
            open_socks.append(conn)
        rf = conn.makefile("rb")
        open_socks.append(rf)
        secure = self.implicit
        authed = False
        mail = rcpt = False

        def send(text):
            conn.sendall(text.encode() + b"\r\n")

        def readline():
            line = rf.readline(2000)
            if not line:
                raise OSError("eof")
            if not line.endswith(b"\r\n"):
                self._violation("line without CRLF: %r" % line[:40])
            return line[:-2]

        send("220 fake.test ESMTP")
        while True:
            line = readline().decode("ascii", "replace")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                caps = ["250-fake.test", "250-PIPELINING", "250-SIZE 36700160"]
                if self.tls is not None and not secure:
                    caps.append("250-STARTTLS")
                if secure or self.cleartext_auth:
                    caps.append("250-AUTH LOGIN PLAIN")
                caps.append("250 ENHANCEDSTATUSCODES")
                send("\r\n".join(caps))
            elif verb == "STARTTLS":
                if self.tls is None or secure:
                    send("503 5.5.1 no")
                    continue
                send("220 2.0.0 go ahead")
                conn = self.tls.wrap_socket(conn, server_side=True)
                rf = conn.makefile("rb")
                open_socks += [conn, rf]
                secure, authed, mail, rcpt = True, False, False, False
            elif verb == "AUTH":
                parts = line.split(" ")
                if not (secure or self.cleartext_auth):
                    self._violation("AUTH before TLS")
                    send("538 5.7.11 Encryption required")
                    continue
                if len(parts) != 3 or parts[1].upper() != "PLAIN":
                    self._violation("AUTH without PLAIN initial response")
                    send("504 5.5.4 Unrecognized authentication type")
                    continue
                if self.auth_delay:
                    threading.Event().wait(self.auth_delay)
                got = base64.b64decode(parts[2]).split(b"\0")
                user_ok = self.user is None or got[1:2] == [self.user.encode()]
                if len(got) == 3 and user_ok and got[2] == self.password.encode():
                    authed = True
                    with self.lock:
                        self.auths_ok += 1
                        user = got[1].decode("utf-8", "replace")
                        self.auth_users[user] = self.auth_users.get(user, 0) + 1
                    if not counted_authed[0]:
                        counted_authed[0] = True
                        self._count(0, -1)
                    send("235 2.7.0 Authentication successful")
                else:
                    with self.lock:
                        self.auths_failed += 1
                    send("535 5.7.3 Authentication unsuccessful")
            elif verb == "MAIL":
                if not authed:
                    send("530 5.7.57 Client not authenticated to send mail.")
                    continue
                mail = True
                send("250 2.1.0 Sender OK")
            elif verb == "RCPT":
                if not mail:
                    self._violation("RCPT before MAIL")
                    send("503 5.5.1 bad sequence")
                    continue
                with self.lock:
                    self.rcpts += 1
                    n = self.rcpts
                if self.fail_rcpt_every and n % self.fail_rcpt_every == 0:
                    send("451 4.7.0 Try again later")
                    continue
                rcpt = True
                send("250 2.1.5 Recipient OK")
            elif verb == "DATA":
                if not rcpt:
                    self._violation("DATA without RCPT")
                    send("503 5.5.1 bad sequence")
                    continue
                with self.lock:
                    self.datas += 1
                    n = self.datas
                send("354 Start mail input; end with <CRLF>.<CRLF>")
                body = []
                while True:
                    dl = readline()
                    if dl == b".":
                        break
                    if dl.startswith(b"."):
                        dl = dl[1:]
                    body.append(dl)
                    if self.drop_in_data_every and n % self.drop_in_data_every == 0:
                        return
                if self.stall_data:
                    threading.Event().wait(30)
                    return
                msg = b"".join(x + b"\r\n" for x in body)
                mail = rcpt = False
                if self.bad_multiline_eod:
                    send("250-2.0.0 first\r\n550 5.0.0 second")
                    continue
                with self.lock:
                    self.messages.append(msg)
                send("250 2.0.0 OK %016X" % (session_no * 1000 + n))
            elif verb == "RSET":
                mail = rcpt = False
                send("250 2.0.0 OK")
            elif verb == "NOOP":
                with self.lock:
                    self.noops += 1
                send("250 2.0.0 OK")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("500 5.5.1 unknown command")
