"""test_smtp_dsn.py: the DSN SMTP extension on the receiving side (RFC 3461, SPEC section 6):
DSN in EHLO; RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT, stored in the queue file (format
version 2, docs/spool.md) and shown by `submitctl queue show`; malformed values 501 5.5.4 and
unknown ones 555 5.5.4, each with a reference; the longer MAIL/RCPT command lines RFC 3461 5
needs (other commands keep 512 octets); the accepted submission's reference in the envelope and
in the submission log."""

import re

from .harness import DaemonTestCase, dot_stuff, message, split_reference

SYNTAX = "501 5.5.4 Syntax error in parameters or arguments"
UNSUPPORTED = "555 5.5.4 Unsupported MAIL or RCPT parameter"
TOO_LONG = "500 5.5.2 Line too long"
DSN_LINE_MAX = 512 + 100 + 500 + 88  # SMTP_DSN_COMMAND_LINE_MAX, CRLF included
REF_ID = re.compile(r"^[0-9A-F]{16}$")


def body(reply):
    """The reply line without its reference (if any)."""
    return split_reference(reply.line)[0]


class DsnTest(DaemonTestCase):
    CONF = ("max-errors = 100",)

    def send(self, c, mail, rcpts, msg=None):
        """MAIL and RCPT lines as given (each must get 250), DATA; returns the queue id."""
        self.assertEqual(c.cmd(mail).line, "250 2.1.0 Sender OK")
        for r in rcpts:
            self.assertEqual(c.cmd(r).line, "250 2.1.5 Recipient OK", r)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(msg or message(subject="dsn")))
        return self.assertQueued(c.reply())

    def refused(self, c, line, expected):
        """`line` is refused with `expected` and a reference that finds the submission event;
        the session stays in sync."""
        _, event = self.assertRefReply(c.cmd(line), expected, log="submissions")
        self.assertIs(event.get("accepted"), False)
        self.assertInSync(c)
        return event

    # --- EHLO ---
    def test_ehlo_lists_dsn_before_and_after_tls(self):
        c = self.connect()
        c.ehlo()
        self.assertIn("DSN", c.caps)
        self.assertEqual(c.caps["DSN"], [])
        c = self.connect_tls()
        self.assertIn("DSN", c.caps)

    # --- accepted parameters reach the queue file ---
    def test_parameters_stored_in_queue_file(self):
        c = self.login()
        qid = self.send(c, "MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ+2B314159",
                        ["RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE "
                         "ORCPT=rfc822;A+2BTag@Example.net",
                         "RCPT TO:<b@example.net> notify=never",
                         "RCPT TO:<c@example.net>",
                         "RCPT TO:<d@example.net> ORCPT=utf-8;d\\x{00E9}@example.net "
                         "NOTIFY=DELAY,FAILURE"])
        env, _ = self.daemon.read_queue_file(qid)
        self.assertEqual(env["rcpts"], ["a@example.net", "b@example.net", "c@example.net",
                                        "d@example.net"])
        self.assertEqual(env["ret"], "HDRS")
        self.assertEqual(env["envid"], "QQ+314159")  # decoded
        self.assertEqual(env["notify"], [["SUCCESS", "FAILURE"], ["NEVER"], [],
                                         ["FAILURE", "DELAY"]])
        self.assertEqual(env["orcpt"], ["rfc822;A+Tag@Example.net", None, None,
                                        "utf-8;d\\x{00E9}@example.net"])
        self.assertIs(env["is_dsn"], False)
        self.assertRegex(env["ref"], REF_ID)

        shown = self.daemon.ctl_json("queue", "show", qid)[0]
        for key in ("ret", "envid", "notify", "orcpt", "ref", "is_dsn"):
            self.assertEqual(shown[key], env[key], key)
        self.assertEqual(shown["recipients"], env["rcpts"])
        text = self.daemon.ctl("queue", "show", qid).stdout.decode()
        self.assertRegex(text, r"\nrecipients\s+<a@example\.net> NOTIFY=SUCCESS,FAILURE "
                               r"ORCPT=rfc822;A\+Tag@Example\.net\n")
        self.assertRegex(text, r"\n\s+<b@example\.net> NOTIFY=NEVER\n")
        self.assertRegex(text, r"\n\s+<c@example\.net>\n")
        self.assertRegex(text, r"\nenvid\s+QQ\+314159\n")
        self.assertRegex(text, r"\nret\s+HDRS\n")
        self.assertRegex(text, r"\nreference\s+%s\n" % env["ref"])

    def test_no_parameters_stored_as_not_given(self):
        c = self.login()
        qid = self.send(c, "MAIL FROM:<alice@example.com>", ["RCPT TO:<x@example.net>"])
        env, _ = self.daemon.read_queue_file(qid)
        self.assertEqual((env["ret"], env["envid"], env["notify"], env["orcpt"]),
                         ("", "", [[]], [None]))
        text = self.daemon.ctl("queue", "show", qid).stdout.decode()
        self.assertRegex(text, r"\nenvid\s+-\n")
        self.assertRegex(text, r"\nret\s+-\n")
        self.assertRegex(text, r"recipients\s+<x@example\.net>\n")

    def test_parameters_do_not_leak_into_the_next_transaction(self):
        c = self.login()
        self.send(c, "MAIL FROM:<alice@example.com> RET=FULL ENVID=first",
                  ["RCPT TO:<x@example.net> NOTIFY=SUCCESS ORCPT=rfc822;x@example.net"])
        qid = self.send(c, "MAIL FROM:<alice@example.com>", ["RCPT TO:<y@example.net>"])
        env, _ = self.daemon.read_queue_file(qid)
        self.assertEqual((env["ret"], env["envid"], env["notify"], env["orcpt"]),
                         ("", "", [[]], [None]))

    # --- the accepted submission's reference ---
    def test_accepted_submission_reference(self):
        c = self.login()
        qid = self.send(c, "MAIL FROM:<alice@example.com> ENVID=ref-test",
                        ["RCPT TO:<x@example.net>"])
        env, _ = self.daemon.read_queue_file(qid)
        ref = env["ref"]
        self.assertRegex(ref, REF_ID)
        self.assertNotEqual(ref, env["session"])
        event = self.daemon.find_event("submissions", ref)
        self.assertIsNotNone(event, "`submitctl submissions --ref %s` finds nothing" % ref)
        self.assertEqual(event["queue_id"], qid)
        self.assertIs(event["accepted"], True)
        self.assertEqual((event["stage"], event["reply_code"]), ("data", 250))
        self.assertEqual(event["reply_text"], "OK " + qid)
        # each accepted message has its own reference
        qid2 = self.send(c, "MAIL FROM:<alice@example.com>", ["RCPT TO:<x@example.net>"])
        self.assertNotEqual(self.daemon.read_queue_file(qid2)[0]["ref"], ref)

    # --- refusals ---
    def test_mail_parameter_errors(self):
        c = self.login()
        for line, expected in (
                ("MAIL FROM:<alice@example.com> RET=FOO", UNSUPPORTED),
                ("MAIL FROM:<alice@example.com> RET=NONE", UNSUPPORTED),
                ("MAIL FROM:<alice@example.com> RET=", SYNTAX),
                ("MAIL FROM:<alice@example.com> RET", SYNTAX),
                ("MAIL FROM:<alice@example.com> RET=FULL RET=HDRS", SYNTAX),
                ("MAIL FROM:<alice@example.com> ENVID=a+2b", SYNTAX),  # lower-case hex
                ("MAIL FROM:<alice@example.com> ENVID=a+4", SYNTAX),
                ("MAIL FROM:<alice@example.com> ENVID=a+0Db", SYNTAX),  # CR decoded
                ("MAIL FROM:<alice@example.com> ENVID", SYNTAX),
                ("MAIL FROM:<alice@example.com> ENVID=a ENVID=b", SYNTAX),
                ("MAIL FROM:<alice@example.com> NOTIFY=NEVER", UNSUPPORTED),  # RCPT's
                ("MAIL FROM:<alice@example.com> ORCPT=rfc822;a@b", UNSUPPORTED)):
            self.refused(c, line, expected)
        # the session is still usable: no transaction was begun
        self.send(c, "MAIL FROM:<alice@example.com> RET=FULL", ["RCPT TO:<x@example.net>"])

    def test_rcpt_parameter_errors(self):
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        for line, expected in (
                ("RCPT TO:<x@example.net> NOTIFY=NEVER,SUCCESS", SYNTAX),
                ("RCPT TO:<x@example.net> NOTIFY=FAILURE,NEVER", SYNTAX),
                ("RCPT TO:<x@example.net> NOTIFY=SUCCESS,SUCCESS", SYNTAX),
                ("RCPT TO:<x@example.net> NOTIFY=SUCCESS,", SYNTAX),
                ("RCPT TO:<x@example.net> NOTIFY=", SYNTAX),
                ("RCPT TO:<x@example.net> NOTIFY=ALWAYS", UNSUPPORTED),
                ("RCPT TO:<x@example.net> NOTIFY=SUCCESS,SOMETIMES", UNSUPPORTED),
                ("RCPT TO:<x@example.net> NOTIFY=SUCCESS NOTIFY=FAILURE", SYNTAX),
                ("RCPT TO:<x@example.net> ORCPT=x@example.net", SYNTAX),  # no addr-type
                ("RCPT TO:<x@example.net> ORCPT=rfc822;", SYNTAX),
                ("RCPT TO:<x@example.net> ORCPT=rfc822;x+2b@example.net", SYNTAX),
                ("RCPT TO:<x@example.net> ORCPT=rfc822;x+0A@example.net", SYNTAX),
                ("RCPT TO:<x@example.net> ORCPT=rfc822;a ORCPT=rfc822;b", SYNTAX),
                ("RCPT TO:<x@example.net> RET=FULL", UNSUPPORTED),  # MAIL's
                ("RCPT TO:<x@example.net> X-UNKNOWN=1", UNSUPPORTED)):
            event = self.refused(c, line, expected)
            self.assertEqual(event["stage"], "rcpt")
        # the refused recipients were not added; a good one is
        self.assertEqual(c.cmd("RCPT TO:<y@example.net> NOTIFY=FAILURE").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message(subject="after refusals")))
        env, _ = self.daemon.read_queue_file(self.assertQueued(c.reply()))
        self.assertEqual(env["rcpts"], ["y@example.net"])
        self.assertEqual(env["notify"], [["FAILURE"]])

    def test_length_limits_of_envid_and_orcpt(self):
        c = self.login()
        self.refused(c, "MAIL FROM:<alice@example.com> ENVID=" + "e" * 101, SYNTAX)
        # 34 "+2B" are 102 characters as sent (34 decoded): over the limit too
        self.refused(c, "MAIL FROM:<alice@example.com> ENVID=" + "+2B" * 34, SYNTAX)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com> ENVID=" + "e" * 100).code, 250)
        orcpt = "rfc822;" + "o" * (500 - len("rfc822;"))
        self.refused(c, "RCPT TO:<x@example.net> ORCPT=%so" % orcpt, SYNTAX)
        self.assertEqual(c.cmd("RCPT TO:<x@example.net> ORCPT=" + orcpt).code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message(subject="limits")))
        env, _ = self.daemon.read_queue_file(self.assertQueued(c.reply()))
        self.assertEqual(env["envid"], "e" * 100)
        self.assertEqual(env["orcpt"], [orcpt])

    # --- command line length ---
    def test_600_octet_mail_line_accepted(self):
        c = self.login()
        # RET, a 99-character ENVID, and AUTH= with an xtext-heavy mailbox (RFC 4954 5)
        line = "MAIL FROM:<alice@example.com> RET=FULL ENVID=" + "+41" * 33 + " AUTH="
        pad = 598 - len(line) - len("@example.com")
        line += "+61" * (pad // 3) + "a" * (pad % 3) + "@example.com"
        self.assertEqual(len(line) + 2, 600)
        self.assertEqual(c.cmd(line).line, "250 2.1.0 Sender OK")
        rcpt = "RCPT TO:<x@example.net> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;" + \
            "+78" * 160 + "@example.net"
        self.assertGreater(len(rcpt) + 2, 512)
        self.assertEqual(c.cmd(rcpt).line, "250 2.1.5 Recipient OK")
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message(subject="long lines")))
        env, _ = self.daemon.read_queue_file(self.assertQueued(c.reply()))
        self.assertEqual(env["envid"], "A" * 33)
        self.assertEqual(env["orcpt"], ["rfc822;" + "x" * 160 + "@example.net"])

    def test_1300_octet_mail_line_refused(self):
        c = self.login()
        line = "MAIL FROM:<alice@example.com> RET=FULL ENVID=x" + " " * 1000 + "SIZE=1"
        line += " " * (1298 - len(line))
        self.assertEqual(len(line) + 2, 1300)
        self.assertEqual(body(c.cmd(line)), TOO_LONG)
        self.assertInSync(c)
        # no transaction was begun
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)

    def test_dsn_line_limit_boundary(self):
        c = self.login()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>").code, 250)
        head = "RCPT TO:<x@example.net> NOTIFY=SUCCESS"
        # runs of spaces between parameters are tolerated: pad to the exact limit
        exact = head + " " * (DSN_LINE_MAX - 2 - len(head) - len("ORCPT=rfc822;x@y")) + \
            "ORCPT=rfc822;x@y"
        self.assertEqual(len(exact) + 2, DSN_LINE_MAX)
        self.assertEqual(c.cmd(exact).line, "250 2.1.5 Recipient OK")
        over = head + " " * (DSN_LINE_MAX - 1 - len(head) - len("ORCPT=rfc822;x@y")) + \
            "ORCPT=rfc822;x@y"
        self.assertEqual(len(over) + 2, DSN_LINE_MAX + 1)
        self.assertEqual(body(c.cmd(over)), TOO_LONG)
        self.assertInSync(c)
        # other commands keep 512
        self.assertEqual(body(c.cmd("NOOP " + "x" * 506)), TOO_LONG)
        self.assertEqual(c.cmd("NOOP " + "x" * 505).code, 250)
        self.assertInSync(c)
