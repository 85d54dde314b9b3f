// Callbacks the @openid4vc libraries need, made with node:crypto and jose (no clearance code).
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { CompactSign, importJWK, compactVerify, calculateJwkThumbprint } from "jose";

const HASHES = { "sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512" };

export function hash(data, alg) {
  return new Uint8Array(createHash(HASHES[alg] ?? alg).update(data).digest());
}

export function generateRandom(length) {
  return new Uint8Array(randomBytes(length));
}

// Signs with the one private JWK this wallet holds; the library supplies header and payload.
export function signerWith(privateJwk) {
  return async (jwtSigner, { header, payload }) => {
    const key = await importJWK(privateJwk, jwtSigner.alg);
    const jwt = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader(header)
      .sign(key);
    const { d, ...publicJwk } = privateJwk;
    return { jwt, signerJwk: publicJwk };
  };
}

// Verifies a JWT signed by the leaf of an x5c chain (the verifier's request object).
export async function verifyJwt(jwtSigner, { compact }) {
  let publicJwk;
  if (jwtSigner.method === "x5c") {
    const leaf = new X509Certificate(Buffer.from(jwtSigner.x5c[0], "base64"));
    const exported = leaf.publicKey.export({ format: "jwk" });
    publicJwk = exported;
  } else if (jwtSigner.publicJwk) {
    publicJwk = jwtSigner.publicJwk;
  } else {
    return { verified: false };
  }
  try {
    await compactVerify(compact, await importJWK(publicJwk, jwtSigner.alg));
    return { verified: true, signerJwk: publicJwk };
  } catch {
    return { verified: false };
  }
}

export function x509Metadata(certificate) {
  const cert = new X509Certificate(Buffer.from(certificate, "base64"));
  const names = (cert.subjectAltName ?? "").split(", ");
  return {
    sanDnsNames: names.filter((n) => n.startsWith("DNS:")).map((n) => n.slice(4)),
    sanUriNames: names.filter((n) => n.startsWith("URI:")).map((n) => n.slice(4)),
  };
}

export { calculateJwkThumbprint };
