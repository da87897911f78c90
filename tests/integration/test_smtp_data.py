"""test_smtp_data.py: message transfer and the spool: DATA end-of-data and dot-unstuffing
(RFC 5321 4.1.1.4, 4.5.2), bare CR/LF and line length (RFC 5321 2.3.8, RFC 5322 2.1.1), SIZE
(RFC 1870), recipient limit, BDAT (RFC 3030), 8BITMIME/SMTPUTF8, the Received: field (RFC 5321
4.4, RFC 3848) and added Message-ID/Date (RFC 6409 8), and the queue file (SPEC section 7)."""

import smtplib
import time

from .harness import (PASSWORD, DaemonTestCase, QUEUED_RE, dot_stuff, json_strings, message,
                      split_received, tls_client_context)

MAX_SIZE = 1024 * 1024
BARE_LF = "550 5.6.0 Bare LF in message data; lines must end with CRLF (RFC 5321 2.3.8)"
BARE_CR = "550 5.6.0 Bare CR in message data; lines must end with CRLF (RFC 5321 2.3.8)"
LONG_LINE = "550 5.6.0 Message line longer than 998 octets (RFC 5322 2.1.1)"
TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"


class DataTest(DaemonTestCase):
    CONF = ("max-message-size = 1M", "max-recipients = 3")

    def start_data(self, c, sender="alice@example.com", rcpts=("r@example.net",), params=""):
        self.assertEqual(c.cmd("MAIL FROM:<%s>%s" % (sender, params)).code, 250)
        for r in rcpts:
            self.assertEqual(c.cmd("RCPT TO:<%s>" % r).code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)

    def assertRefused(self, c, wire, expected):
        """Sends raw DATA content (ending with CRLF.CRLF) and expects `expected` at its end,
        nothing queued, and the session in sync."""
        before = self.daemon.queue_ids()
        self.start_data(c)
        c.send(wire)
        self.assertRefReply(c.reply(), expected, log="submissions")
        self.assertInSync(c)
        self.wait_spool_settled()
        self.assertEqual(self.daemon.queue_ids(), before)

    # --- accepted messages land byte for byte ---
    def test_smtplib_message_lands_byte_exact(self):
        msg = message(subject="smtplib", body=b"Hello from smtplib.\r\n\r\n-- \r\nalice\r\n")
        s = smtplib.SMTP("127.0.0.1", self.daemon.starttls_port, local_hostname="client.test",
                         timeout=10)
        self.addCleanup(s.close)
        s.starttls(context=tls_client_context())
        s.login("alice@example.com", PASSWORD)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("friend@example.net")[0], 250)
        code, text = s.data(msg)
        self.assertEqual(code, 250)
        m = QUEUED_RE.match("250 " + text.decode())
        self.assertIsNotNone(m, text)
        self.assertIn(m.group("id"), self.daemon.queue_ids())
        env = self.assertStoredExactly(m.group("id"), msg)
        strings = list(json_strings(env))
        self.assertIn("friend@example.net", strings)
        self.assertIn("alice@example.com", strings)
        s.quit()

    def test_accepted_message_in_queue_listing_and_submission_log(self):
        c = self.login()
        msg = message(subject="listed")
        qid = self.assertQueued(self.send_message(c, msg, rcpts=("x@example.net", "y@example.net")))
        listed = [r for r in self.daemon.ctl_json("queue", "list") if qid in json_strings(r)]
        self.assertEqual(len(listed), 1)
        shown = self.daemon.ctl_json("queue", "show", qid)
        self.assertEqual(len(shown), 1, shown)
        strings = list(json_strings(shown[0]))
        for s in (qid, "alice@example.com", "x@example.net", "y@example.net"):
            self.assertIn(s, strings)
        deadline = time.monotonic() + 5
        accepted = []
        while not accepted and time.monotonic() < deadline:
            accepted = [r for r in self.daemon.ctl_json("submissions")
                        if r.get("queue_id") == qid]
            time.sleep(0.05)
        self.assertEqual(len(accepted), 1, "no submission event for " + qid)
        self.assertIs(accepted[0].get("accepted"), True)
        self.assertEqual(accepted[0].get("reply_code"), 250)
        r = self.daemon.ctl("queue", "show", "0123456789ABCDEF", "--json", check=False)
        self.assertEqual(r.returncode, 1, "queue show of an unknown id")

    def test_dot_unstuffing_is_byte_exact(self):
        body = (b".\r\n..\r\n...\r\n.hidden\r\n..double\r\n .space\r\n\r\n.\r\nend .\r\n"
                b"trailing dot.\r\n.")
        msg = message(subject="dots", body=body + b"\r\n")
        c = self.login()
        wire = dot_stuff(msg)
        self.assertIn(b"\r\n..hidden\r\n", wire)
        qid = self.assertQueued(self.send_message(c, msg))
        self.assertStoredExactly(qid, msg)

    def test_binary_safe_8bit_and_long_but_legal_lines(self):
        body = ("Grüße, naïve café — ☃\r\n".encode() + b"\x80\xff\x01\tctl\r\n"
                + b"x" * 998 + b"\r\n" + b"y" * 997 + b"\r\n")
        msg = message(subject="8bit", body=body)
        c = self.login()
        self.start_data(c, params=" BODY=8BITMIME")
        c.send(dot_stuff(msg))
        qid = self.assertQueued(c.reply())
        self.assertStoredExactly(qid, msg)

    def test_smtputf8_addresses(self):
        c = self.login()
        msg = message(subject="utf8", to="jörg@example.net")
        self.start_data(c, rcpts=("jörg@example.net",), params=" SMTPUTF8")
        c.send(dot_stuff(msg))
        qid = self.assertQueued(c.reply())
        env = self.assertStoredExactly(qid, msg)
        self.assertIn("jörg@example.net", list(json_strings(env)))

    def test_message_id_and_date_added_when_missing(self):
        msg = message(subject="no ids", with_ids=False, body=b"body\r\n")
        head, body = msg.split(b"\r\n\r\n", 1)
        c = self.login()
        qid = self.assertQueued(self.send_message(c, msg))
        _, stored = self.daemon.read_queue_file(qid)
        _, rest = split_received(stored)
        self.assertTrue(rest.startswith(head + b"\r\n"), rest[:300])
        added, stored_body = rest[len(head) + 2:].split(b"\r\n\r\n", 1)
        self.assertEqual(stored_body, body)
        fields = sorted(line.split(b":", 1)[0].lower() for line in added.split(b"\r\n"))
        self.assertEqual(fields, [b"date", b"message-id"], added)
        ids = [l for l in added.split(b"\r\n") if l.lower().startswith(b"message-id:")]
        self.assertRegex(ids[0].decode(), r"(?i)^Message-ID: *<[^<>@\s]+@[^<>@\s]+>$")

    def test_only_the_missing_one_is_added(self):
        msg = message(subject="date only", with_ids=False,
                      extra_headers=b"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n")
        head, body = msg.split(b"\r\n\r\n", 1)
        c = self.login()
        qid = self.assertQueued(self.send_message(c, msg))
        _, stored = self.daemon.read_queue_file(qid)
        _, rest = split_received(stored)
        self.assertTrue(rest.startswith(head + b"\r\n"), rest[:300])
        added, stored_body = rest[len(head) + 2:].split(b"\r\n\r\n", 1)
        self.assertEqual(stored_body, body)
        self.assertTrue(added.lower().startswith(b"message-id:"), added)
        self.assertNotIn(b"\r\n", added)

    def test_received_field(self):
        c = self.login()
        msg = message(subject="received")
        qid = self.assertQueued(self.send_message(c, msg))
        _, stored = self.daemon.read_queue_file(qid)
        received, _ = split_received(stored)
        text = b" ".join(received.split())  # unfold
        self.assertIn(b"from client.test", text)
        self.assertIn(b"127.0.0.1", text)
        self.assertIn(b"by localhost", text)
        self.assertIn(b"with ESMTPSA", text)
        self.assertIn(b"alice@example.com", text)
        self.assertEqual(stored.count(b"\r\nReceived:"), 0, "more than one Received: added")

    def test_rset_discards_the_transaction(self):
        before = self.daemon.queue_ids()
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        self.assertEqual(c.cmd("RSET").line, "250 2.0.0 Reset state")
        self.assertRefReply(c.cmd("RCPT TO:<r@example.net>"), "503 5.5.1 Need MAIL before RCPT")
        self.assertEqual(self.daemon.queue_ids(), before)

    # --- refused content ---
    def test_bare_lf_refused_at_end_of_data(self):
        c = self.login()
        # "\n.\n", "\r\n.\n" and "\n.\r\n" must never end the data.
        wire = (b"Subject: bare lf\r\n\r\nfoo\n.\nMAIL FROM:<x@example.com>\nbar\r\n.\nbaz\n.\r\n"
                b"RSET\r\nqux\r\n.\r\n")
        self.assertRefused(c, wire, BARE_LF)
        # The session goes on in sync and accepts a clean message.
        msg = message(subject="after bare lf")
        self.assertStoredExactly(self.assertQueued(self.send_message(c, msg)), msg)

    def test_bare_cr_refused_at_end_of_data(self):
        c = self.login()
        self.assertRefused(c, b"Subject: bare cr\r\n\r\nfoo\rbar\r\n\r.\r\r\n.\r\n", BARE_CR)
        msg = message(subject="after bare cr")
        self.assertQueued(self.send_message(c, msg))

    def test_line_over_998_octets_refused(self):
        c = self.login()
        self.assertRefused(c, b"Subject: long\r\n\r\n" + b"z" * 999 + b"\r\nshort\r\n.\r\n",
                           LONG_LINE)
        self.assertRefused(c, b"Subject: " + b"h" * 1100 + b"\r\n\r\nbody\r\n.\r\n", LONG_LINE)
        self.assertQueued(self.send_message(c, message(subject="after long line")))

    def test_size_parameter_over_maximum(self):
        c = self.login()
        r = c.cmd("MAIL FROM:<alice@example.com> SIZE=%d" % (MAX_SIZE + 1))
        self.assertRefReply(r, TOO_BIG, log="submissions")
        r = c.cmd("MAIL FROM:<alice@example.com> SIZE=99999999999999999999")
        self.assertEqual(r.code // 100, 5, r)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com> SIZE=%d" % MAX_SIZE).code, 250)

    def test_message_over_maximum_refused_at_end_of_data(self):
        c = self.login()
        line = b"o" * 78 + b"\r\n"
        big = b"Subject: big\r\n\r\n" + line * (MAX_SIZE // len(line) + 2000)
        self.assertRefused(c, big + b".\r\n", TOO_BIG)
        # Just under the maximum is fine.
        msg = message(subject="almost max", body=line * ((MAX_SIZE - 4096) // len(line)))
        qid = self.assertQueued(self.send_message(c, msg))
        self.assertStoredExactly(qid, msg)

    def test_large_message_read_in_large_pieces(self):
        """On a plaintext connection the server reads message content up to 64 KiB at a time,
        not libevent 2.1's 4096 octets a read (and an event-loop turn and a FIONREAD between
        each): a message of almost 1 MiB takes it a few dozen read system calls (the process's
        syscr in /proc/PID/io, which counts readv), where 4 KiB reads take more than 250. The
        message arrives byte for byte."""
        c = self.connect(self.daemon.cleartext_port)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.auth_plain("alice@example.com", PASSWORD).code, 235)
        line = b"p" * 78 + b"\r\n"
        msg = message(subject="large", body=line * ((MAX_SIZE - 4096) // len(line)))

        def reads():
            with open("/proc/%d/io" % self.daemon.proc.pid) as f:
                return next(int(v.split()[1]) for v in f if v.startswith("syscr:"))

        before = reads()
        qid = self.assertQueued(self.send_message(c, msg))
        self.assertLess(reads() - before, 64)
        self.assertStoredExactly(qid, msg, protocol=b"ESMTPA")

    def test_too_many_recipients(self):
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        for i in range(3):
            self.assertEqual(c.cmd("RCPT TO:<r%d@example.net>" % i).line, "250 2.1.5 Recipient OK")
        r = c.cmd("RCPT TO:<r3@example.net>")
        self.assertRefReply(r, "452 4.5.3 Too many recipients", log="submissions")
        self.assertEqual(c.cmd("DATA").code, 354)
        msg = message(subject="three recipients")
        c.send(dot_stuff(msg))
        qid = self.assertQueued(c.reply())
        env = self.assertStoredExactly(qid, msg)
        strings = list(json_strings(env))
        for i in range(3):
            self.assertIn("r%d@example.net" % i, strings)
        self.assertNotIn("r3@example.net", strings)

    # --- BDAT (RFC 3030) ---
    def test_bdat_chunks_and_zero_last(self):
        msg = message(subject="chunked", body=b".not stuffed\r\n..two\r\nend\r\n")
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        # Split inside a CRLF and inside a header: chunk boundaries carry no meaning.
        cut1 = msg.index(b"\r\n") + 1
        cut2 = cut1 + 7
        for chunk in (msg[:cut1], msg[cut1:cut2], msg[cut2:]):
            c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            self.assertEqual(c.reply().line[:10], "250 2.0.0 ")
        qid = self.assertQueued(c.cmd("BDAT 0 LAST"))
        self.assertStoredExactly(qid, msg)
        self.assertInSync(c)

    def test_bdat_last_pipelined_in_one_packet(self):
        msg = message(subject="bdat pipelined", body=b"one packet\r\n")
        c = self.login()
        half = len(msg) // 2
        c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<r@example.net>\r\n"
               + b"BDAT %d\r\n" % half + msg[:half]
               + b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:] + b"NOOP\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().line[:10], "250 2.0.0 ")  # the first chunk
        qid = self.assertQueued(c.reply())
        self.assertEqual(c.reply().code, 250)  # the NOOP
        self.assertStoredExactly(qid, msg)
        self.assertInSync(c)

    def test_bdat_over_maximum_size(self):
        before = self.daemon.queue_ids()
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        chunk = b"Subject: big\r\n\r\n" + b"b" * (MAX_SIZE + 10)
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        self.assertEqual(r.code, 552, r)
        self.assertInSync(c)
        self.wait_spool_settled()
        self.assertEqual(self.daemon.queue_ids(), before)

    def test_data_after_bdat_is_a_sequence_error(self):
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>").code, 250)
        c.send(b"BDAT 4\r\nabcd")
        self.assertEqual(c.reply().code, 250)
        r = c.cmd("DATA")
        self.assertEqual(r.code, 503, r)
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertInSync(c)
