"""test_smtp_session.py: the SMTP session and command protocol of the real daemon (SPEC section 6,
RFC 5321 command sequencing and replies, RFC 1869/5321 EHLO, RFC 2920 PIPELINING, RFC 3463
enhanced codes)."""

from .harness import (HOSTNAME, PASSWORD, DaemonTestCase, QUEUED_RE, dot_stuff, message,
                      plain_response, split_reference)

BASE_CAPS = {"SIZE", "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "CHUNKING",
             "DSN"}


def body(reply):
    """The reply line without its reference (if any)."""
    return split_reference(reply.line)[0]


class SessionTest(DaemonTestCase):
    CONF = ("max-message-size = 1M",)

    def assertEhloFirstLine(self, r):
        self.assertEqual(r.code, 250, r)
        self.assertGreater(len(r.lines), 1, "EHLO reply without extensions")
        self.assertEqual(r.lines[0][:4], "250-")
        self.assertEqual(r.texts[0].split()[0], HOSTNAME)

    def test_greeting_names_the_host(self):
        c = self.connect()
        self.assertEqual(c.greeting.code, 220)
        self.assertEqual(c.greeting.texts[-1].split()[0], HOSTNAME)

    def test_ehlo_before_tls_offers_starttls_and_no_auth(self):
        c = self.connect()
        r = c.ehlo()
        self.assertEhloFirstLine(r)
        for cap in BASE_CAPS | {"STARTTLS"}:
            self.assertIn(cap, c.caps, r)
        self.assertNotIn("AUTH", c.caps, r)
        self.assertEqual(c.caps["SIZE"], [str(1024 * 1024)], "SIZE must advertise the maximum")

    def test_ehlo_after_starttls_offers_auth_and_no_starttls(self):
        c = self.connect_tls()
        r = c.ehlo()
        self.assertEhloFirstLine(r)
        for cap in BASE_CAPS | {"AUTH"}:
            self.assertIn(cap, c.caps, r)
        self.assertNotIn("STARTTLS", c.caps, r)
        self.assertIn("PLAIN", c.caps["AUTH"])
        self.assertIn("LOGIN", c.caps["AUTH"])

    def test_ehlo_on_implicit_tls_offers_auth_and_no_starttls(self):
        c = self.connect_implicit()
        for cap in BASE_CAPS | {"AUTH"}:
            self.assertIn(cap, c.caps)
        self.assertNotIn("STARTTLS", c.caps)
        self.assertIn("PLAIN", c.caps["AUTH"])
        self.assertIn("LOGIN", c.caps["AUTH"])

    def test_cleartext_auth_listener_offers_auth_before_tls(self):
        c = self.connect(self.daemon.cleartext_port)
        c.ehlo()
        self.assertIn("AUTH", c.caps)
        self.assertIn("STARTTLS", c.caps)
        self.assertIn("PLAIN", c.caps["AUTH"])

    def test_helo_is_accepted(self):
        c = self.connect()
        r = c.cmd("HELO client.test")
        self.assertEqual(r.code, 250)
        self.assertEqual(len(r.lines), 1)

    def test_noop_rset_help_quit(self):
        c = self.connect()
        c.ehlo()
        self.assertEqual(c.cmd("NOOP").line[:9], "250 2.0.0")
        self.assertEqual(c.cmd("RSET").line, "250 2.0.0 Reset state")
        self.assertEqual(c.cmd("HELP").line[:9], "214 2.0.0")
        self.assertEqual(c.cmd("QUIT").line, "221 2.0.0 Bye")
        self.assertTrue(c.wait_closed(5), "connection still open after QUIT")

    def test_vrfy_and_expn_never_reveal_addresses(self):
        c = self.connect_tls()
        known = c.cmd("VRFY alice@example.com")
        unknown = c.cmd("VRFY nobody-here@example.com")
        self.assertEqual(known.line[:9], "252 2.5.0")
        self.assertEqual(known.line, unknown.line)
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).code, 235)
        self.assertEqual(c.cmd("VRFY bob@example.com").line, known.line)
        self.assertEqual(c.cmd("EXPN staff@example.com").line[:9], "252 2.5.0")

    def test_unknown_command_500_and_session_continues(self):
        c = self.connect()
        c.ehlo()
        self.assertEqual(body(c.cmd("FROBNICATE now")), "500 5.5.1 Command unrecognized")
        self.assertInSync(c)

    def test_command_line_too_long(self):
        c = self.connect()
        c.ehlo()
        r = c.cmd("NOOP " + "x" * 600)
        self.assertEqual(body(r), "500 5.5.2 Line too long")
        self.assertInSync(c)

    def test_mail_before_ehlo(self):
        c = self.connect(self.daemon.cleartext_port)
        self.assertEqual(body(c.cmd("MAIL FROM:<alice@example.com>")), "503 5.5.1 Send EHLO first")
        self.assertInSync(c)

    def test_sequence_errors_in_a_transaction(self):
        c = self.login()
        self.assertRefReply(c.cmd("RCPT TO:<rcpt@example.net>"), "503 5.5.1 Need MAIL before RCPT",
                            log="submissions")
        self.assertEqual(body(c.cmd("DATA"))[:9], "503 5.5.1")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertRefReply(c.cmd("MAIL FROM:<alice@example.com>"), "503 5.5.1 Nested MAIL command")
        self.assertEqual(body(c.cmd("DATA")), "503 5.5.1 Need RCPT before DATA")
        self.assertInSync(c)
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)

    def test_syntax_errors(self):
        c = self.login()
        r = c.cmd("MAIL FROM:<alice@example.com")
        self.assertEqual(r.code, 501, r)
        self.assertTrue(split_reference(r.line)[1], "501 to MAIL without reference")
        r = c.cmd("MAIL FROM:<alice@example.com> FROBNICATE=yes")
        self.assertRefReply(r, "555 5.5.4 Unsupported MAIL or RCPT parameter")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        r = c.cmd("RCPT TO:<no-at-sign>")
        self.assertEqual(r.code, 501, r)
        r = c.cmd("RCPT TO:<rcpt@example.net> NOTIFY=NEVER,SUCCESS")  # invalid per RFC 3461
        self.assertIn(r.code, (501, 555), r)
        self.assertInSync(c)

    def test_non_ascii_sender_requires_smtputf8(self):
        c = self.login()
        r = c.cmd("MAIL FROM:<ålice@example.com>")
        self.assertEqual(split_reference(r.line)[0][:9], "553 5.6.7", r)
        self.assertInSync(c)

    def test_pipelining_one_packet(self):
        c = self.login()
        msg = message(subject="pipelined")
        c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<a@example.net>\r\n"
               b"RCPT TO:<b@example.net>\r\nDATA\r\n")
        self.assertEqual(c.reply().line, "250 2.1.0 Sender OK")
        self.assertEqual(c.reply().line, "250 2.1.5 Recipient OK")
        self.assertEqual(c.reply().line, "250 2.1.5 Recipient OK")
        self.assertEqual(c.reply().code, 354)
        # The message, the terminator and the next commands in one packet.
        c.send(dot_stuff(msg) + b"RSET\r\nNOOP\r\n")
        qid = self.assertQueued(c.reply())
        self.assertEqual(c.reply().line, "250 2.0.0 Reset state")
        self.assertEqual(c.reply().code, 250)
        self.assertInSync(c)
        self.assertStoredExactly(qid, msg)

    def test_pipelining_with_a_refused_command_keeps_order(self):
        c = self.login()
        msg = message(subject="pipelined with error")
        c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bad\r\nRCPT TO:<ok@example.net>\r\n"
               b"DATA\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 501)
        self.assertEqual(c.reply().line, "250 2.1.5 Recipient OK")
        self.assertEqual(c.reply().code, 354)
        c.send(dot_stuff(msg))
        qid = self.assertQueued(c.reply())
        env = self.assertStoredExactly(qid, msg)
        self.assertIn("ok@example.net", str(env))

    def test_pipelining_split_byte_by_byte(self):
        c = self.connect()
        for b in b"EHLO bytewise.test\r\n":
            c.send(bytes([b]))
        self.assertEqual(c.reply().code, 250)
        c.starttls()
        for b in b"EHLO bytewise.test\r\n":
            c.send(bytes([b]))
        self.assertEqual(c.reply().code, 250)
        for b in ("AUTH PLAIN " + plain_response("alice@example.com", PASSWORD) + "\r\n").encode():
            c.send(bytes([b]))
        self.assertEqual(c.reply().line, "235 2.7.0 Authentication successful")
        msg = message(subject="byte by byte", body=b"line one\r\n.dot line\r\n\r\nlast\r\n")
        wire = b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n"
        for b in wire:
            c.send(bytes([b]))
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 354)
        for b in dot_stuff(msg):
            c.send(bytes([b]))
        qid = self.assertQueued(c.reply())
        self.assertStoredExactly(qid, msg)
        self.assertInSync(c)

    def test_quit_over_tls(self):
        for how in ("connect_tls", "connect_implicit", "login"):
            with self.subTest(how):
                c = getattr(self, how)()
                self.assertEqual(c.cmd("QUIT").line, "221 2.0.0 Bye")
                self.assertTrue(c.wait_closed(5), "connection still open after QUIT")

    def test_quit_mid_transaction_stores_nothing(self):
        before = self.daemon.queue_ids()
        c = self.connect(self.daemon.cleartext_port)
        c.ehlo()
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).code, 235)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(c.wait_closed(5))
        self.assertEqual(self.daemon.queue_ids(), before)

    def test_queue_id_is_unique_per_message(self):
        c = self.login()
        ids = set()
        for i in range(3):
            r = self.send_message(c, message(subject="n%d" % i))
            m = QUEUED_RE.match(r.line)
            self.assertIsNotNone(m, r)
            ids.add(m.group("id"))
        self.assertEqual(len(ids), 3)
