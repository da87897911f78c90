"""test_delivery_oauth.py: relay with XOAUTH2 (issue 4): the upstream is a second submitd whose
tenant refuses basic authentication (the built-in block-basic policy), so only an OAuth token
gets in; the token comes from a token endpoint on loopback (the OAuth 2.0 client-credentials
grant, RFC 6749 4.4) that mints it with the upstream's `submitctl token issue`. Checks that
the message arrives upstream intact over verified STARTTLS, that the token is fetched once for
several messages (cached), and that an endpoint refusing the client leaves mail deferred, not
bounced."""

import base64
import json
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .harness import Daemon, DaemonTestCase, QUEUED_RE, message

CLIENT_ID = "submitd-relay"
CLIENT_SECRET = "s3cret/with+odd=chars"


class TokenEndpoint:
    def __init__(self, upstream):
        self.upstream = upstream
        self.requests = []
        self.refuse = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = urllib.parse.parse_qs(self.rfile.read(n).decode())
                auth = self.headers.get("Authorization", "")
                outer.requests.append((body, auth))
                want = "Basic " + base64.b64encode(
                    ("%s:%s" % (urllib.parse.quote(CLIENT_ID, safe=""),
                                urllib.parse.quote(CLIENT_SECRET, safe=""))).encode()).decode()
                if outer.refuse or auth != want or body.get("grant_type") != ["client_credentials"]:
                    self.send_response(401)
                    payload = {"error": "invalid_client", "error_description": "who are you"}
                else:
                    token = outer.upstream.ctl("token", "issue", "alice@example.com", "--ttl",
                                               "600").stdout.decode().strip()
                    self.send_response(200)
                    payload = {"access_token": token, "token_type": "Bearer", "expires_in": 600}
                data = json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class XOAuth2UpstreamTest(DaemonTestCase):
    CONF = ("retry-min = 1", "retry-max = 2")

    @classmethod
    def setUpClass(cls):
        cls.upstream = Daemon()
        cls.upstream.start()
        cls.upstream.provision_example()
        # basic authentication refused: only XOAUTH2/OAUTHBEARER get in
        cls.upstream.ctl("tenant", "set", "example.com", "default-policy", "block-basic")
        cls.endpoint = TokenEndpoint(cls.upstream)
        super().setUpClass()
        cls.daemon.ctl("tenant", "route", "example.com", "relay",
                       "localhost:%d" % cls.upstream.starttls_port, "--tls", "required",
                       "--cafile", cls.upstream.dir + "/tls/cert.pem", "--auth", "xoauth2",
                       "--user", "alice@example.com", "--token-url",
                       "http://127.0.0.1:%d/token" % cls.endpoint.port, "--client-id", CLIENT_ID,
                       "--secret-stdin", input=CLIENT_SECRET.encode() + b"\n")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.endpoint.close()
            cls.upstream.stop()
            cls.upstream.cleanup()

    def submit(self, msg):
        c = self.login()
        r = self.send_message(c, msg)
        c.quit()
        return QUEUED_RE.match(r.line).group("id")

    def wait_upstream(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = self.upstream.queue_ids()
            if len(ids) >= n:
                return ids
            time.sleep(0.1)
        raise AssertionError("upstream holds %d messages, expected %d\n%s"
                             % (len(self.upstream.queue_ids()), n, self.daemon.log_tail()))

    def test_a_relayed_with_a_cached_token(self):
        before = len(self.upstream.queue_ids())
        self.endpoint.requests.clear()
        msgs = [message(subject="via xoauth2 %d" % i, body=b"token relay %d\r\n" % i)
                for i in range(3)]
        ids = [self.submit(m) for m in msgs]
        up = self.wait_upstream(before + 3)
        bodies = [self.upstream.read_queue_file(i)[1] for i in up]
        for i, m in enumerate(msgs):
            queued_here = self.daemon.read_queue_file(ids[i])[1] if ids[i] in \
                self.daemon.queue_ids() else None
            self.assertTrue(any(b.endswith(m) for b in bodies), "message %d not upstream" % i)
            del queued_here
        # the upstream saw an XOAUTH2 login from alice (its sign-in log) over TLS
        # (the upstream writes its log in batches: wait a little for it)
        deadline = time.monotonic() + 5
        while True:
            signins = self.upstream.ctl_json("signins", "--mailbox", "alice@example.com")
            if any(s.get("mech") == "XOAUTH2" and s.get("success") for s in signins) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(any(s.get("mech") == "XOAUTH2" and s.get("success") for s in signins),
                        signins[:3])
        self.assertEqual(len(self.endpoint.requests), 1, "the token was not reused")

    def test_b_refused_client_defers(self):
        self.endpoint.refuse = True
        self.daemon.ctl("tenant", "route", "example.com", "relay",
                        "localhost:%d" % self.upstream.starttls_port, "--tls", "required",
                        "--cafile", self.upstream.dir + "/tls/cert.pem", "--auth", "xoauth2",
                        "--user", "alice@example.com", "--token-url",
                        "http://127.0.0.1:%d/token" % self.endpoint.port, "--client-id",
                        "someone-else", "--secret-stdin", input=b"wrong\n")
        try:
            qid = self.submit(message(subject="no token for me"))
            deadline = time.monotonic() + 30
            events = []
            while time.monotonic() < deadline:
                events = [e for e in self.daemon.ctl_json("queue", "log", qid)
                          if e["action"] == "deferred"]
                if events:
                    break
                time.sleep(0.1)
            self.assertTrue(events, "not deferred")
            self.assertEqual(events[0]["reply_enhanced"], "4.7.0")
            self.assertIn("invalid_client", events[0]["reply_text"])
            self.assertNotIn("wrong", events[0]["reply_text"])
            self.assertIn(qid, self.daemon.queue_ids())
        finally:
            self.endpoint.refuse = False


if __name__ == "__main__":
    unittest.main()
