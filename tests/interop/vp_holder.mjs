// An OpenID4VP 1.0 wallet made with @openid4vc/openid4vp (request and response handling) and
// @sd-jwt/sd-jwt-vc (the key-bound presentation). Checks the verifier's certificate chain to a
// CA it is given, answers the DCQL query, posts the response.
//   node vp_holder.mjs AUTHORIZATION_URI CREDENTIAL PRIVATE_JWK_JSON VERIFIER_CA_PEM NOW MODE
// MODE: "once", "twice" (post the same response again), "tampered" (flip a signature byte).
// Prints {"statuses": [...], "bodies": [...], "client_id", "disclosed"}.
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { Openid4vpClient } from "@openid4vc/openid4vp";
import { SDJwtVcInstance } from "@sd-jwt/sd-jwt-vc";
import { ES256, digest, generateSalt } from "@sd-jwt/crypto-nodejs";
import { hash, verifyJwt, x509Metadata } from "./callbacks.mjs";

const [uri, credential, privateJwkJson, caPem, now, mode] = process.argv.slice(2);
const ca = new X509Certificate(readFileSync(caPem));

// The wallet's trust decision: the request object's leaf must be issued by the verifier CA.
async function verifyJwtTrustingCa(jwtSigner, jwt) {
  if (jwtSigner.method !== "x5c") return { verified: false };
  const leaf = new X509Certificate(Buffer.from(jwtSigner.x5c[0], "base64"));
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return { verified: false };
  return verifyJwt(jwtSigner, jwt);
}

const client = new Openid4vpClient({
  callbacks: { fetch, hash, verifyJwt: verifyJwtTrustingCa, getX509CertificateMetadata: x509Metadata },
});

const parsed = client.parseOpenid4vpAuthorizationRequest({ authorizationRequest: uri });
const resolved = await client.resolveOpenId4vpAuthorizationRequest({
  authorizationRequestPayload: parsed.params,
});
const request = resolved.authorizationRequestPayload;
const query = resolved.dcql.query.credentials[0];

// Disclose exactly the personal claims the query asks for (the clearance claim is always visible).
const frame = {};
for (const claim of query.claims) {
  if (claim.path.length === 1) frame[claim.path[0]] = true;
}
const sdjwt = new SDJwtVcInstance({
  hasher: digest,
  saltGenerator: generateSalt,
  kbSigner: await ES256.getSigner(JSON.parse(privateJwkJson)),
  kbSignAlg: "ES256",
});
let presentation = await sdjwt.present(credential, frame, {
  kb: { payload: { iat: Number(now), aud: resolved.client.effective, nonce: request.nonce } },
});
if (mode === "tampered") {
  const [jwt, ...rest] = presentation.split("~");
  const [h, p, s] = jwt.split(".");
  const flipped = s.slice(0, 5) + (s[5] === "A" ? "B" : "A") + s.slice(6);
  presentation = [`${h}.${p}.${flipped}`, ...rest].join("~");
}

const { authorizationResponsePayload } = await client.createOpenid4vpAuthorizationResponse({
  authorizationRequestPayload: request,
  authorizationResponsePayload: { vp_token: { [query.id]: [presentation] } },
});
const statuses = [];
const bodies = [];
for (let i = 0; i < (mode === "twice" ? 2 : 1); i++) {
  const { response } = await client.submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload,
  });
  statuses.push(response.status);
  bodies.push(await response.json());
}
process.stdout.write(
  JSON.stringify({ statuses, bodies, client_id: resolved.client.effective, disclosed: Object.keys(frame) }),
);
