// mint.mjs: an independent JOSE implementation (the npm `jose` package) makes keys, their public
// JWK Set and signed JWTs for the integration tests (RFC 7515, RFC 7517, RFC 7519, RFC 8037).
//
// Reads one JSON request on standard input:
//   {"keys":   [{"kid": "rsa-1", "alg": "RS256" | "ES256" | "EdDSA", "pkcs8": PEM (optional:
//               reuse a key from an earlier call instead of generating one)}],
//    "tokens": [{"key": "rsa-1", "header": {...merged over {alg, kid, typ}}, "claims": {...}}]}
// Writes one JSON object on standard output:
//   {"jwks": {"keys": [public JWKs with kid, alg, use]}, "pkcs8": {kid: PEM}, "spki": {kid: PEM},
//    "tokens": ["header.payload.signature", ...]}
import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from 'jose';
import { createPublicKey } from 'node:crypto';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const keys = new Map();
const out = { jwks: { keys: [] }, pkcs8: {}, spki: {}, tokens: [] };
for (const spec of request.keys || []) {
  let privateKey;
  let publicKey;
  if (spec.pkcs8) {
    privateKey = await importPKCS8(spec.pkcs8, spec.alg, { extractable: true });
    publicKey = createPublicKey(privateKey);
  } else {
    const options = { extractable: true };
    if (spec.alg === 'EdDSA') options.crv = 'Ed25519';
    if (spec.alg === 'RS256') options.modulusLength = 2048;
    ({ privateKey, publicKey } = await generateKeyPair(spec.alg, options));
  }
  keys.set(spec.kid, { alg: spec.alg, privateKey });
  const jwk = await exportJWK(publicKey);
  out.jwks.keys.push({ ...jwk, kid: spec.kid, alg: spec.alg, use: 'sig' });
  out.pkcs8[spec.kid] = await exportPKCS8(privateKey);
  out.spki[spec.kid] = await exportSPKI(publicKey);
}
for (const spec of request.tokens || []) {
  const key = keys.get(spec.key);
  if (!key) throw new Error(`no key ${spec.key}`);
  const header = { alg: key.alg, kid: spec.key, typ: 'JWT', ...(spec.header || {}) };
  out.tokens.push(await new SignJWT(spec.claims).setProtectedHeader(header).sign(key.privateKey));
}
process.stdout.write(JSON.stringify(out) + '\n');
