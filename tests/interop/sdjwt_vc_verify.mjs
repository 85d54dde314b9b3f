// An SD-JWT VC verifier made with @sd-jwt/sd-jwt-vc: verifies a key-bound presentation whose
// issuer key comes in x5c (checked here against the issuer CA it is given), loads the type
// metadata from the vct URL and checks vct#integrity, and reads the status from the status list.
//   node sdjwt_vc_verify.mjs PRESENTATION ISSUER_CA_PEM NONCE NOW
// Prints {"ok": true, "payload", "type_name"} or {"ok": false, "message"}.
//
// The type metadata is fetched with Node's fetch and its `integrity` option (W3C Subresource
// Integrity, as SD-JWT VC says): this version of the library compares the digest in hex, not in
// the base64 that SRI and the SD-JWT VC drafts use, so its own check cannot pass a correct value.
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { SDJwtVcInstance } from "@sd-jwt/sd-jwt-vc";
import { ES256, digest } from "@sd-jwt/crypto-nodejs";

const [presentation, caPem, nonce, now] = process.argv.slice(2);
const ca = new X509Certificate(readFileSync(caPem));

// The issuer key: the x5c leaf, if the CA issued it.
async function x5cVerifier(data, signature) {
  const header = JSON.parse(Buffer.from(data.split(".")[0], "base64url").toString());
  if (!Array.isArray(header.x5c) || header.alg !== "ES256") return false;
  const leaf = new X509Certificate(Buffer.from(header.x5c[0], "base64"));
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return false;
  const jwk = leaf.publicKey.export({ format: "jwk" });
  return (await ES256.getVerifier(jwk))(data, signature);
}

// The holder key: cnf.jwk of the credential.
async function kbVerifier(data, signature, payload) {
  return (await ES256.getVerifier(payload.cnf.jwk))(data, signature);
}

const sdjwt = new SDJwtVcInstance({
  hasher: digest,
  verifier: x5cVerifier,
  statusVerifier: x5cVerifier,
  kbVerifier,
  loadTypeMetadataFormat: true,
  vctFetcher: async (uri, integrity) => {
    const response = await fetch(uri, integrity ? { integrity } : {});
    if (!response.ok) throw new Error(`type metadata ${uri}: HTTP ${response.status}`);
    return response.json();
  },
});
try {
  const result = await sdjwt.verify(presentation, { keyBindingNonce: nonce, currentDate: Number(now) });
  process.stdout.write(
    JSON.stringify({ ok: true, payload: result.payload, type_name: result.typeMetadata?.mergedTypeMetadata?.name }),
  );
} catch (error) {
  const cause = error.cause ? `: ${error.cause.message}` : "";
  process.stdout.write(JSON.stringify({ ok: false, message: `${error.message}${cause}` }));
}
