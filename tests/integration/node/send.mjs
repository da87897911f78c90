// send.mjs: submits one message with nodemailer (npm), authenticating with OAuth 2.0 (nodemailer
// speaks SASL XOAUTH2 when auth.type is 'OAuth2' and an accessToken is given), after STARTTLS.
//
// Reads one JSON request on standard input:
//   {"port": N, "user": ADDRESS, "accessToken": TOKEN, "from": ADDRESS, "to": ADDRESS,
//    "subject": TEXT, "text": TEXT}
// Writes one JSON object on standard output: {"ok": true, "response": "250 ...", "accepted": [..]}
// or {"ok": false, "code": ..., "responseCode": N, "response": "535 ...", "message": ...}.
// The server's certificate is self-signed, so it is not verified (loopback only).
import nodemailer from 'nodemailer';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const r = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const transport = nodemailer.createTransport({
  host: '127.0.0.1',
  port: r.port,
  secure: false,
  requireTLS: true,
  name: 'nodemailer.test',
  tls: { rejectUnauthorized: false },
  auth: { type: 'OAuth2', user: r.user, accessToken: r.accessToken },
  connectionTimeout: 10000,
  greetingTimeout: 10000,
  socketTimeout: 10000,
});
try {
  const info = await transport.sendMail({
    from: r.from,
    to: r.to,
    subject: r.subject,
    text: r.text,
  });
  process.stdout.write(JSON.stringify({ ok: true, response: info.response, accepted: info.accepted }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({
    ok: false, code: e.code || null, responseCode: e.responseCode || null,
    response: e.response || null, message: String(e.message),
  }) + '\n');
} finally {
  transport.close();
}
