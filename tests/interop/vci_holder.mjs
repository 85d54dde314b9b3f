// An OpenID4VCI 1.0 wallet made with @openid4vc/openid4vci: redeems a credential offer.
//   node vci_holder.mjs OFFER_URI TX_CODE [NOW]   (NOW: seconds since the epoch for the proof's iat)
// Prints {"credential", "private_jwk"} on success, {"error", "message"} (exit 2) on refusal.
import { Openid4vciClient } from "@openid4vc/openid4vci";
import { clientAuthenticationAnonymous } from "@openid4vc/oauth2";
import { generateKeyPair, exportJWK } from "jose";
import { hash, generateRandom, signerWith } from "./callbacks.mjs";

const [offerUri, txCode, now] = process.argv.slice(2);
const issuedAt = now ? new Date(Number(now) * 1000) : new Date();
const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const privateJwk = await exportJWK(privateKey);
const { d, ...publicJwk } = privateJwk;

const client = new Openid4vciClient({
  callbacks: {
    fetch,
    hash,
    generateRandom,
    signJwt: signerWith(privateJwk),
    clientAuthentication: clientAuthenticationAnonymous(),
  },
});

try {
  const credentialOffer = await client.resolveCredentialOffer(offerUri);
  const issuerMetadata = await client.resolveIssuerMetadata(credentialOffer.credential_issuer);
  const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer,
    issuerMetadata,
    txCode: txCode || undefined,
  });
  const configurationId = credentialOffer.credential_configuration_ids[0];
  const { c_nonce } = await client.requestNonce({ issuerMetadata });
  const proof = await client.createCredentialRequestJwtProof({
    issuerMetadata,
    credentialConfigurationId: configurationId,
    nonce: c_nonce,
    issuedAt,
    signer: { method: "jwk", alg: "ES256", publicJwk },
  });
  const response = await client.retrieveCredentials({
    issuerMetadata,
    accessToken: accessTokenResponse.access_token,
    credentialConfigurationId: configurationId,
    proofs: { jwt: [proof.jwt] },
  });
  const credentials = response.credentialResponse.credentials;
  process.stdout.write(JSON.stringify({ credential: credentials[0].credential, private_jwk: privateJwk }));
} catch (error) {
  const body = error.errorResponse ?? error.response?.errorResponse ?? {};
  process.stdout.write(JSON.stringify({ error: body.error ?? error.constructor.name, message: String(error.message) }));
  process.exit(2);
}
