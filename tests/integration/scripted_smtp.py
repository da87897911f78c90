"""scripted_smtp.py: a small scripted SMTP server for the smtp-doctor tests. It replays recorded
conversations of real providers (Exchange Online, Gmail) on a loopback port, in plaintext with
STARTTLS (RFC 3207) or with implicit TLS (RFC 8314), and records what the client sent.

Owns: the provider profiles (greeting, EHLO lists before and after TLS, AUTH prompts, the replies
of every step) and the scripted failures the tests choose. Every reply text here is a recorded
one, with its source in a comment: the Exchange Online texts come from
/work/shared/reference/exchange-online-smtp-auth.md (source keys in [BRACKETS] are that file's),
the Gmail texts from public issue threads that quote the server verbatim (URLs given).

The server answers RFC 5321 commands itself (EHLO/HELO, STARTTLS, AUTH PLAIN/LOGIN/XOAUTH2 with
or without initial response, MAIL, RCPT, DATA, RSET, NOOP, QUIT); a scenario replaces the reply
of one step (e.g. `auth` -> a 535 5.7.139 text). It never checks credentials.

Python standard library only; every socket operation is bounded by a timeout, and the accept
loop stops when the server is closed.
"""

import base64
import os
import socket
import ssl
import subprocess
import threading
import time

IO_TIMEOUT = 10.0

# --- Exchange Online (smtp.office365.com:587) ---
# Host names as they appear in recorded replies. The reference suffix format (FQDN, ISO-8601 UTC
# with milliseconds, 16 hex) is from [EOP193][NM1484] (reference file section 2).
EXO_HOST = "BL1P221CA0016.outlook.office365.com"
EXO_REF = " [BL1P221CA0016.namprd13.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]"
# Greeting: "220 BL1P221CA0016.outlook.office365.com Microsoft ESMTP MAIL Service ready at Fri,
# 4 Nov 2022 10:07:41 +0000" [EOP93][EOP297].
EXO_GREETING = ("220 BL1P221CA0016.outlook.office365.com Microsoft ESMTP MAIL Service ready at "
                "Fri, 4 Nov 2022 10:07:41 +0000")
# EHLO before TLS [EMAYILI147][EOP416] (the reference file prints the host as XXXX).
EXO_EHLO_PRE = [
    EXO_HOST + " Hello [127.0.0.1]",
    "SIZE 157286400",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "SMTPUTF8",
]
# After STARTTLS: identical except STARTTLS replaced by AUTH LOGIN XOAUTH2 in the same position
# [ENOUGH106][BIZADMIN][PERLLOG]. No AUTH before TLS; no PLAIN since 2017 [COLOMBE60].
EXO_EHLO_POST = [l if l != "STARTTLS" else "AUTH LOGIN XOAUTH2" for l in EXO_EHLO_PRE]

# The failure replies of reference section 2, exactly as recorded (the bracketed [..] of the
# table stands for the reference suffix, EXO_REF).
EXO_REPLIES = {
    # AUTH PLAIN (or any mechanism not offered) [MM954][MAIL1357][NTFY1020]
    "504 5.7.4": "504 5.7.4 Unrecognized authentication type" + EXO_REF,
    # generic failure [XOAUTH-DOC][MK1733][AZPY70][MSSMTPNTLM]
    "535 5.7.3": "535 5.7.3 Authentication unsuccessful" + EXO_REF,
    # effective switch disabled via org setting [EOP193][NM1484]
    "535 5.7.139 tenant": ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                           "disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for "
                           "more information." + EXO_REF),
    # mailbox $true [D365-EMAIL][PMPC] (recorded without a suffix)
    "535 5.7.139 mailbox": ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                            "disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for "
                            "more information."),
    # Basic blocked [MAILR107][NM1714][RALLLY3154]
    "535 5.7.139 basic": ("535 5.7.139 Authentication unsuccessful, basic authentication is "
                          "disabled." + EXO_REF),
    # security defaults on [DISCOURSE][BYPTO]
    "535 5.7.139 security-defaults": (
        "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security "
        "defaults policy. Contact your administrator."),
    # Conditional Access / MFA [MK1733][D365-EMAIL][NETWRIX]
    "535 5.7.139 criteria": (
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be "
        "authenticated successfully. Contact your administrator."),
    # TLS < 1.2 [SENDEMAIL1][CUBESYS]; 421 closes the connection
    "421 4.7.66": ("421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your "
                   "client to support TLS 1.2. Visit https://aka.ms/smtp_auth_tls." + EXO_REF),
    # MAIL FROM without TLS [HERTZ2365]
    "451 5.7.3": "451 5.7.3 STARTTLS is required to send mail" + EXO_REF,
    # MAIL FROM without successful AUTH [SASLX96][EOP295]
    "530 5.7.57": "530 5.7.57 Client not authenticated to send mail." + EXO_REF,
    # header From != auth user, no SendAs; end of DATA [PHPM1231][SWIFT1030][FIXPRINT]
    "550 5.7.60": ("550 5.7.60 SMTP; Client does not have permissions to send as this sender"
                   " [" + EXO_HOST + "]"),
    # newer send-as denial, end of DATA [BIZADMIN][GOPHISH2900]
    "554 5.2.252": ("554 5.2.252 SendAsDenied; alice@contoso.com not allowed to send as "
                    "ceo@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException."
                    "MapiExceptionSendAsDenied; Failed to process message due to a permanent "
                    "exception with message [BeginDiagnosticData]Cannot submit message."),
    # >3 concurrent submitting connections [SUBIMP][TIMEOFF308]
    "432 4.3.2": ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded "
                  "[Hostname=BL1P221MB0016.namprd13.prod.outlook.com]"),
    # >10,000 recipients/24 h [SUBIMP]
    "554 5.2.0 quota": "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
    # Basic retired (2026+) [TC-4114750]
    "550 5.7.30": "550 5.7.30 Basic authentication is not supported for Client Submission.",
}

EXCHANGE = {
    "name": "exchange-online",
    "greeting": EXO_GREETING,
    "ehlo_pre": EXO_EHLO_PRE,
    "ehlo_post": EXO_EHLO_POST,
    "starttls": "220 2.0.0 SMTP server ready",  # [EMAYILI147]
    # AUTH LOGIN prompts "Username:" / "Password:" [NM1484]
    "login_prompts": ("334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"),
    "auth_ok": "235 2.7.0 Authentication successful",  # [XOAUTH-DOC]
    "mech_not_offered": EXO_REPLIES["504 5.7.4"],
    # Exchange offers no AUTH before TLS; a client that tries gets the same 504 [U].
    "auth_before_tls": EXO_REPLIES["504 5.7.4"],
    "mail_ok": "250 2.1.0 Sender OK",  # [BIZADMIN]
    "rcpt_ok": "250 2.1.5 Recipient OK",  # [BIZADMIN]
    "data": "354 Start mail input; end with <CRLF>.<CRLF>",  # [BIZADMIN]
    # accepted; third-party comments only [U]
    "data_ok": "250 2.0.0 OK <DM6PR13MB1234.namprd13.prod.outlook.com> "
               "[Hostname=DM6PR13MB1234.namprd13.prod.outlook.com]",
    "mail_unauth": EXO_REPLIES["530 5.7.57"],
    "mail_before_tls": EXO_REPLIES["451 5.7.3"],
    "quit": "221 2.0.0 Service closing transmission channel",
    "ehlo_first": "503 5.5.2 Send hello first",  # [HEARTBLEED62][OPAQUE35]
}

# --- Gmail (smtp.gmail.com:587) ---
# Greeting, EHLO name line and the pre-TLS AUTH reply as recorded in
# https://github.com/ArduinoHannover/ESPMailer/issues/2 :
#   "220 smtp.gmail.com ESMTP x7sm11440831pfa.98 - gsmtp"
#   "530 5.7.0 Must issue a STARTTLS command first. x7sm11440831pfa.98 - gsmtp"
GMAIL_GREETING = "220 smtp.gmail.com ESMTP x7sm11440831pfa.98 - gsmtp"
# EHLO after STARTTLS as recorded in https://github.com/WWBN/AVideo/issues/3212 . Before TLS the
# same list with STARTTLS in place of the AUTH line [U: the AUTH line's position assumed].
GMAIL_EHLO_POST = [
    "smtp.gmail.com at your service, [127.0.0.1]",
    "SIZE 35882577",
    "8BITMIME",
    "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
    "ENHANCEDSTATUSCODES",
    "PIPELINING",
    "CHUNKING",
    "SMTPUTF8",
]
GMAIL_EHLO_PRE = [l if not l.startswith("AUTH ") else "STARTTLS" for l in GMAIL_EHLO_POST]
GMAIL_REPLIES = {
    # https://github.com/dawidd6/action-send-mail/issues/205 (2024):
    "535 5.7.8": ["535-5.7.8 Username and Password not accepted. For more information, go to",
                  "535 5.7.8  https://support.google.com/mail/?p=BadCredentials "
                  "af79cd13be357-794f3061475sm18893085a.74 - gsmtp"],
    # https://github.com/Der-Henning/tgtg/issues/517 (2024, smtplib prints the lines joined
    # by \n without their codes):
    "534 5.7.9": ["534-5.7.9 Application-specific password required. For more information, go to",
                  "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor "
                  "ffacd0b85a97d-368119970e7sm1809147f8f.21 - gsmtp"],
    # https://github.com/ArduinoHannover/ESPMailer/issues/2
    "530 5.7.0": ["530 5.7.0 Must issue a STARTTLS command first. x7sm11440831pfa.98 - gsmtp"],
}

GMAIL = {
    "name": "gmail",
    "greeting": GMAIL_GREETING,
    "ehlo_pre": GMAIL_EHLO_PRE,
    "ehlo_post": GMAIL_EHLO_POST,
    "starttls": "220 2.0.0 Ready to start TLS",  # WWBN/AVideo#3212
    "login_prompts": ("334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"),  # WWBN/AVideo#3212
    "auth_ok": "235 2.7.0 Accepted",
    "mech_not_offered": "504 5.7.4 Unrecognized authentication type. x7sm11440831pfa.98 - gsmtp",
    "auth_before_tls": GMAIL_REPLIES["530 5.7.0"],
    "mail_ok": "250 2.1.0 OK x7sm11440831pfa.98 - gsmtp",
    "rcpt_ok": "250 2.1.5 OK x7sm11440831pfa.98 - gsmtp",
    "data": "354  Go ahead x7sm11440831pfa.98 - gsmtp",
    "data_ok": "250 2.0.0 OK  1700000000 x7sm11440831pfa.98 - gsmtp",
    "mail_unauth": GMAIL_REPLIES["530 5.7.0"],
    "mail_before_tls": GMAIL_REPLIES["530 5.7.0"],
    "quit": "221 2.0.0 closing connection x7sm11440831pfa.98 - gsmtp",
    "ehlo_first": "503 5.5.1 EHLO/HELO first. x7sm11440831pfa.98 - gsmtp",
}


def _lines(reply):
    return [reply] if isinstance(reply, str) else list(reply)


def make_certificate(directory, cn="localhost"):
    """A self-signed certificate for localhost, 127.0.0.1 and ::1 (openssl req). Returns
    (cert path, key path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=" + cn,
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
         "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True, capture_output=True, timeout=30)
    return cert, key


class Conversation:
    """What one client connection did: the lines it sent (with whether TLS was on), the replies
    it got, and the decoded AUTH details."""

    def __init__(self):
        self.commands = []  # (tls: bool, line)
        self.replies = []   # reply lines sent
        self.auth = []      # dicts: mech, tls, user, secret (decoded), initial
        self.data = []      # messages received (bytes)
        self.tls_version = None
        self.closed_by_server = False

    def sent(self, prefix):
        """The command lines starting with prefix (case-insensitive)."""
        return [l for _, l in self.commands if l.upper().startswith(prefix.upper())]

    def plaintext_auth(self):
        return [l for tls, l in self.commands if not tls and l.upper().startswith("AUTH")]


class ScriptedServer:
    """One listening socket on 127.0.0.1 serving `profile` with the steps in `script` replaced.

    mode: "starttls" (plaintext, STARTTLS offered), "implicit" (TLS from the first octet),
    "plain" (no TLS at all: STARTTLS not offered, AUTH offered in the clear - an old server).
    script keys: "greeting", "ehlo_pre", "ehlo_post", "auth" (the final reply to AUTH, str or
    list of lines), "mail", "rcpt", "data_end", "auth_offered_before_tls" (bool),
    "tls_max" (ssl.TLSVersion for the server context)."""

    def __init__(self, profile, mode="starttls", cert=None, key=None, script=None, port=0):
        self.profile = dict(profile)
        self.script = dict(script or {})
        self.mode = mode
        self.ctx = None
        if mode in ("starttls", "implicit"):
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
            if "tls_max" in self.script:
                self.ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                self.ctx.maximum_version = self.script["tls_max"]
                self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conversations = []
        self.errors = []
        self._stop = threading.Event()
        self._threads = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    # --- lifecycle ---
    def close(self):
        self._stop.set()
        self._accepter.join(5)
        try:
            self.sock.close()
        except OSError:
            pass
        for t in self._threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conv = Conversation()
            self.conversations.append(conv)
            t = threading.Thread(target=self._serve, args=(conn, conv), daemon=True)
            self._threads.append(t)
            t.start()

    # --- one session ---
    def _serve(self, conn, conv):
        session = _Session(self, conn, conv)
        try:
            session.run()
        except (OSError, ssl.SSLError, EOFError, socket.timeout, UnicodeDecodeError) as e:
            if not isinstance(e, EOFError):
                self.errors.append(repr(e))
        finally:
            try:
                session.sock.close()
            except OSError:
                pass

    def reply_for(self, step, default_key):
        if step in self.script:
            return _lines(self.script[step])
        return _lines(self.profile[default_key])

    def ehlo_lines(self, tls):
        key = "ehlo_post" if tls else "ehlo_pre"
        lines = list(self.script.get(key, self.profile[key]))
        if self.mode == "implicit":
            lines = list(self.script.get("ehlo_post", self.profile["ehlo_post"]))
        if self.mode == "plain":
            lines = [l for l in self.profile["ehlo_post"] if l != "STARTTLS"]
        if not tls and self.script.get("auth_offered_before_tls") and self.mode == "starttls":
            auth = [l for l in self.profile["ehlo_post"] if l.upper().startswith("AUTH ")]
            lines = lines[:1] + auth + lines[1:]
        return lines

    def offered_mechs(self, tls):
        for l in self.ehlo_lines(tls):
            if l.upper().startswith("AUTH "):
                return [m.upper() for m in l.split()[1:]]
        return []


class _Session:
    def __init__(self, server, conn, conv):
        self.server = server
        self.sock = conn
        self.conv = conv
        self.buf = b""
        self.tls = False
        self.helo = False
        self.authed = False
        self.mail = False
        self.rcpts = 0
        conn.settimeout(IO_TIMEOUT)

    def send(self, lines):
        out = []
        for l in _lines(lines):
            out.append(l)
            self.conv.replies.append(l)
        self.sock.sendall("".join(l + "\r\n" for l in out).encode())

    def send_multi(self, code, texts):
        lines = ["%d%s%s" % (code, "-" if i < len(texts) - 1 else " ", t)
                 for i, t in enumerate(texts)]
        self.send(lines)

    def readline(self):
        deadline = time.monotonic() + IO_TIMEOUT
        while b"\n" not in self.buf:
            if len(self.buf) > 100000:
                raise EOFError("line too long")
            if time.monotonic() > deadline:
                raise socket.timeout("client silent")
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("client closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def start_tls(self):
        self.sock = self.server.ctx.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.conv.tls_version = self.sock.version()

    def run(self):
        p = self.server.profile
        if self.server.mode == "implicit":
            self.start_tls()
        self.send(self.server.reply_for("greeting", "greeting"))
        for _ in range(200):
            line = self.readline()
            self.conv.commands.append((self.tls, line))
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            if verb == "EHLO":
                self.helo = True
                self.authed = False
                self.mail = False
                self.send_multi(250, self.server.ehlo_lines(self.tls))
            elif verb == "HELO":
                self.helo = True
                self.send("250 " + self.server.ehlo_lines(self.tls)[0])
            elif verb == "STARTTLS":
                if self.tls or self.server.mode != "starttls":
                    self.send("503 5.5.1 TLS already active" if self.tls
                              else "502 5.5.1 Unrecognized command")
                    continue
                if self.buf:
                    self.buf = b""  # RFC 3207 section 6: discard pipelined plaintext
                self.send(p["starttls"])
                self.start_tls()
                self.helo = False
            elif verb == "AUTH":
                if not self.auth(arg):
                    return
            elif verb == "MAIL":
                self.mail_from()
            elif verb == "RCPT":
                if not self.mail:
                    self.send("503 5.5.1 Need MAIL command")
                else:
                    self.rcpts += 1
                    self.send(self.server.reply_for("rcpt", "rcpt_ok"))
            elif verb == "DATA":
                self.data()
            elif verb == "RSET":
                self.mail = False
                self.send("250 2.0.0 Resetting")
            elif verb == "NOOP":
                self.send("250 2.0.0 OK")
            elif verb == "QUIT":
                self.send(p["quit"])
                return
            else:
                self.send("500 5.3.3 Unrecognized command")
        raise EOFError("too many commands")

    def decode(self, text):
        try:
            return base64.b64decode(text.strip(), validate=True)
        except (ValueError, base64.binascii.Error):
            return None

    def auth(self, arg):
        """Returns False when the reply closes the connection (421)."""
        p = self.server.profile
        words = arg.split()
        mech = words[0].upper() if words else ""
        initial = words[1] if len(words) > 1 else None
        record = {"mech": mech, "tls": self.tls, "initial": initial is not None,
                  "user": None, "secret": None}
        self.conv.auth.append(record)
        if not self.helo:
            self.send(p["ehlo_first"])
            return True
        offered = self.server.offered_mechs(self.tls)
        if not offered:
            self.send(self.server.reply_for("auth_before_tls", "auth_before_tls")
                      if not self.tls else p["mech_not_offered"])
            return True
        if mech not in offered:
            self.send(self.server.reply_for("mech_not_offered", "mech_not_offered"))
            return True
        if mech == "LOGIN":
            if initial is None:
                self.send(p["login_prompts"][0])
                initial = self.readline()
                self.conv.commands.append((self.tls, "<sasl>"))
            user = self.decode(initial)
            self.send(p["login_prompts"][1])
            pw = self.decode(self.readline())
            self.conv.commands.append((self.tls, "<sasl>"))
            record["user"] = user.decode("utf-8", "replace") if user is not None else None
            record["secret"] = pw.decode("utf-8", "replace") if pw is not None else None
        elif mech in ("PLAIN", "XOAUTH2", "OAUTHBEARER"):
            if initial is None:
                self.send("334 ")
                initial = self.readline()
                self.conv.commands.append((self.tls, "<sasl>"))
            raw = self.decode(initial) or b""
            if mech == "PLAIN":
                parts = raw.split(b"\0")
                if len(parts) == 3:
                    record["user"] = parts[1].decode("utf-8", "replace")
                    record["secret"] = parts[2].decode("utf-8", "replace")
            else:
                for field in raw.split(b"\x01"):
                    if field.startswith(b"user="):
                        record["user"] = field[5:].decode("utf-8", "replace")
                    elif field.startswith(b"n,a="):
                        record["user"] = field[4:].rstrip(b",").decode("utf-8", "replace")
                    elif field.startswith(b"auth=Bearer "):
                        record["secret"] = field[12:].decode("utf-8", "replace")
        else:
            self.send(self.server.reply_for("mech_not_offered", "mech_not_offered"))
            return True
        result = self.server.reply_for("auth", "auth_ok")
        self.send(result)
        code = result[-1][:3]
        if code == "235":
            self.authed = True
        if code == "421":
            self.conv.closed_by_server = True
            return False
        return True

    def mail_from(self):
        if self.server.mode == "starttls" and not self.tls:
            self.send(self.server.reply_for("mail_before_tls", "mail_before_tls"))
        elif not self.authed and self.server.mode != "plain":
            self.send(self.server.reply_for("mail_unauth", "mail_unauth"))
        else:
            self.mail = True
            self.rcpts = 0
            self.send(self.server.reply_for("mail", "mail_ok"))

    def data(self):
        if not self.mail or not self.rcpts:
            self.send("503 5.5.1 Need RCPT command")
            return
        self.send(self.server.profile["data"])
        body = []
        for _ in range(100000):
            line = self.readline()
            if line == ".":
                break
            body.append(line)
        else:
            raise EOFError("message too long")
        self.conv.data.append("\r\n".join(body).encode())
        self.mail = False
        self.send(self.server.reply_for("data_end", "data_ok"))
