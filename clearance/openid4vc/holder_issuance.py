"""The wallet side of OpenID4VCI 1.0: redeem a credential offer and receive the credential.

:func:`receive_credential` follows the offer (by value, or fetched by reference), reads the
issuer's metadata from its well-known paths, redeems the pre-authorized code (with the
transaction code the person received by another channel), takes a ``c_nonce``, proves
possession of the wallet key and receives the ``dc+sd-jwt``. The credential is accepted only
if it is from the issuer the offer named, of the offered type, and bound to the wallet's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearance.credentials import SD_JWT_VC_TYP, CredentialClaims
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import decode_compact
from clearance.keys import Signer
from clearance.openid4vc.holder_http import HolderHttp
from clearance.openid4vc.issuer_metadata import (
    AUTHORIZATION_SERVER_METADATA_PATH,
    ISSUER_METADATA_PATH,
    SD_JWT_VC_FORMAT,
)
from clearance.openid4vc.offers import PRE_AUTHORIZED_GRANT, CredentialOffer, parse_offer_uri
from clearance.openid4vc.proofs import make_proof
from clearance.sdjwt import resolve_claims, split


@dataclass(frozen=True, slots=True)
class ReceivedCredential:
    """A credential received through an offer, checked against the offer and the wallet key."""

    sd_jwt: str
    issuer: str
    configuration_id: str
    claims: CredentialClaims


def _well_known(prefix: str, identifier: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(identifier)
    return f"{parts.scheme}://{parts.netloc}{prefix}{parts.path.rstrip('/')}"


def resolve_offer(offer_uri: str, http: HolderHttp) -> CredentialOffer:
    """The offer an offer URI carries or refers to.

    Raises:
        MalformedError: not an offer URI, or the referenced document is not an offer.
        ProtocolError, TransportError: fetching the referenced offer failed.
    """
    found = parse_offer_uri(offer_uri)
    if isinstance(found, CredentialOffer):
        return found
    return CredentialOffer.from_json(http.json("GET", found))


def _string(obj: dict[str, Any], name: str, what: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedError(f"{what} lacks {name}")
    return value


def receive_credential(
    offer_uri: str, key: Signer, *, tx_code: str | None, http: HolderHttp, now: int
) -> ReceivedCredential:
    """Redeem ``offer_uri`` and receive a credential bound to ``key``.

    Raises:
        ProtocolError: the issuer refused a step (its error code, e.g. ``invalid_grant``).
        TransportError: the issuer could not be reached.
        MalformedError: an answer that is not what the protocol says.
        VerificationError: the credential is not for this wallet or not the one offered.
    """
    offer = resolve_offer(offer_uri, http)
    issuer = offer.credential_issuer
    metadata = http.json("GET", _well_known(ISSUER_METADATA_PATH, issuer))
    if metadata.get("credential_issuer") != issuer:
        raise MalformedError("issuer metadata names another credential issuer than the offer")
    configuration_id = offer.configuration_ids[0]
    configurations = metadata.get("credential_configurations_supported")
    configuration = configurations.get(configuration_id) if isinstance(configurations, dict) else None
    if not isinstance(configuration, dict) or configuration.get("format") != SD_JWT_VC_FORMAT:
        raise MalformedError(f"the issuer does not describe the offered {SD_JWT_VC_FORMAT} credential")
    servers = metadata.get("authorization_servers") or [issuer]
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
        raise MalformedError("issuer metadata names no usable authorization server")
    server = http.json("GET", _well_known(AUTHORIZATION_SERVER_METADATA_PATH, servers[0]))
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": offer.pre_authorized_code}
    if offer.tx_code is not None:
        if tx_code is None:
            raise MalformedError("this offer needs the transaction code sent to you by another channel")
        form["tx_code"] = tx_code
    token = http.json("POST", _string(server, "token_endpoint", "server metadata"), data=form)
    access_token = _string(token, "access_token", "token response")
    nonce = http.json("POST", _string(metadata, "nonce_endpoint", "issuer metadata"))
    proof = make_proof(key, audience=issuer, nonce=_string(nonce, "c_nonce", "nonce response"), issued_at=now)
    answer = http.json(
        "POST",
        _string(metadata, "credential_endpoint", "issuer metadata"),
        json={"credential_configuration_id": configuration_id, "proofs": {"jwt": [proof]}},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    credentials = answer.get("credentials")
    if not isinstance(credentials, list) or len(credentials) != 1 or not isinstance(credentials[0], dict):
        raise MalformedError("the credential response does not carry one credential")
    sd_jwt = _string(credentials[0], "credential", "credential response")
    parts = split(sd_jwt)
    jws = decode_compact(parts.jwt, what="credential", typ=SD_JWT_VC_TYP)
    claims = CredentialClaims.from_payload(resolve_claims(jws.payload, parts.disclosures))
    if claims.issuer != issuer or claims.vct != configuration.get("vct"):
        raise VerificationError(Reason.INVALID_CLAIM, "the credential is not the one offered")
    if claims.holder_key.thumbprint != key.kid:
        raise VerificationError(
            Reason.INVALID_CLAIM, "the credential is bound to another key than this wallet's"
        )
    return ReceivedCredential(sd_jwt, issuer, configuration_id, claims)
