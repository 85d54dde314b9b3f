"""Signed authorization requests (JAR, RFC 9101) for OpenID4VP 1.0 with the ``x509_hash`` client id.

The verifier signs its request with a P-256 key certified by an X.509 certificate, sends the
certificate in ``x5c``, and its client identifier is ``x509_hash:<base64url SHA-256 of the
leaf's DER>`` (OpenID4VP 1.0; the prefix HAIP 1.0 asks wallets to support). The
wallet fetches the request object at ``request_uri``::

    header  {"typ": "oauth-authz-req+jwt", "alg": "ES256", "x5c": [leaf, ...]}
    payload {"client_id", "response_type": "vp_token", "response_mode": "direct_post",
             "response_uri", "nonce", "state", "dcql_query", "client_metadata",
             "aud": "https://self-issued.me/v2", "iat", "exp"}

:func:`verify_request_object` is the wallet's check. Which verifiers a wallet trusts is decided
on purpose: the chain must reach a CA the wallet was told to trust (the verifier CAs of its
trust list), the client id must be the hash of that very leaf, and the ``response_uri`` must be
an https URL on a DNS name the leaf certifies, so a presentation goes only to the party the
certificate names. A request that fails any check is refused before anything is shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from clearance.certificates import certified_key, decode_x5c, x5c_value
from clearance.encoding import b64url_encode
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import decode_compact, encode_compact, verify_compact
from clearance.keys import Signer
from clearance.openid4vc.dcql import credential_query

REQUEST_TYP = "oauth-authz-req+jwt"
REQUEST_MEDIA_TYPE = "application/oauth-authz-req+jwt"
X509_HASH = "x509_hash"
SELF_ISSUED_AUDIENCE = "https://self-issued.me/v2"
RESPONSE_MODE = "direct_post"
MAX_REQUEST_OBJECT = 32 * 1024


def x509_hash_client_id(leaf_der: bytes) -> str:
    """The ``x509_hash:`` client identifier of a verifier whose certificate is ``leaf_der``."""
    return f"{X509_HASH}:{b64url_encode(hashlib.sha256(leaf_der).digest())}"


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """What a verifier asks for: the payload of its request object."""

    client_id: str
    response_uri: str
    nonce: str
    state: str
    dcql_query: Mapping[str, Any]
    issued_at: int
    expires_at: int
    algorithms: tuple[str, ...] = ("ES256", "EdDSA")

    def payload(self) -> dict[str, Any]:
        return {
            "iss": self.client_id,
            "aud": SELF_ISSUED_AUDIENCE,
            "client_id": self.client_id,
            "response_type": "vp_token",
            "response_mode": RESPONSE_MODE,
            "response_uri": self.response_uri,
            "nonce": self.nonce,
            "state": self.state,
            "dcql_query": dict(self.dcql_query),
            "client_metadata": {
                "vp_formats_supported": {
                    "dc+sd-jwt": {
                        "sd-jwt_alg_values": list(self.algorithms),
                        "kb-jwt_alg_values": list(self.algorithms),
                    }
                }
            },
            "iat": self.issued_at,
            "exp": self.expires_at,
        }


def sign_request_object(request: AuthorizationRequest, signer: Signer, chain: Sequence[bytes]) -> str:
    """The signed request object, with the verifier's certificate chain (leaf first) in ``x5c``.

    Raises:
        MalformedError: the client id is not the ``x509_hash`` of the chain's leaf.
    """
    if not chain or request.client_id != x509_hash_client_id(chain[0]):
        raise MalformedError("the client id must be the x509_hash of the signing certificate")
    return encode_compact({"typ": REQUEST_TYP, "x5c": x5c_value(chain)}, request.payload(), signer)


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request object that passed :func:`verify_request_object`, and who made it."""

    request: AuthorizationRequest
    verifier_names: tuple[str, ...]
    """The DNS names the verifier's certificate names (what the wallet shows the person)."""
    verifier_subject: str


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise VerificationError(Reason.MISSING_CLAIM, f"the request object lacks {name}")
    return value


def verify_request_object(
    token: str, *, client_id: str, trusted_cas: Sequence[bytes], now: int
) -> VerifiedRequest:
    """The wallet's check of a request object fetched from ``request_uri``.

    Args:
        token: the request object as fetched.
        client_id: the ``client_id`` of the authorization request URI (it must match).
        trusted_cas: DER of the verifier CAs the wallet trusts.
        now: seconds since the epoch.

    Raises:
        MalformedError: the object cannot be parsed.
        VerificationError: a wrong ``typ`` or algorithm, a chain that reaches no trusted CA,
            a bad signature, a client id that is not the leaf's hash or not the one asked
            for (``untrusted_issuer``), a ``response_uri`` the certificate does not name, a
            response mode or type we do not speak, or an expired request (``expired``).
    """
    jws = decode_compact(token, what="request object", max_bytes=MAX_REQUEST_OBJECT, typ=REQUEST_TYP)
    if jws.header.get("alg") != "ES256":
        raise VerificationError(Reason.ALGORITHM_NOT_ALLOWED, "a request object must be signed with ES256")
    key, leaf = certified_key(jws.header.get("x5c"), trusted_cas, now)
    verify_compact(jws, key, what="request object")
    payload = jws.payload
    leaf_der = decode_x5c(jws.header["x5c"])[0]
    if payload.get("client_id") != client_id or client_id != x509_hash_client_id(leaf_der):
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER, "the client id is not the x509_hash of the certificate that signed"
        )
    if payload.get("response_type") != "vp_token" or payload.get("response_mode") != RESPONSE_MODE:
        raise VerificationError(
            Reason.INVALID_CLAIM, "only response_type vp_token with direct_post is spoken"
        )
    response_uri = _text(payload, "response_uri")
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    target = urlsplit(response_uri)
    if target.scheme != "https" or target.hostname not in dns_names:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER, "the response_uri is not an https URL on a name the certificate names"
        )
    iat, exp = payload.get("iat"), payload.get("exp")
    if type(exp) is not int or now >= exp or (type(iat) is int and iat > now + 60):
        raise VerificationError(Reason.EXPIRED, "the request object has expired or has no exp")
    query = payload.get("dcql_query")
    if not isinstance(query, dict):
        raise VerificationError(Reason.MISSING_CLAIM, "the request object has no dcql_query")
    credential_query(query)
    request = AuthorizationRequest(
        client_id=client_id,
        response_uri=response_uri,
        nonce=_text(payload, "nonce"),
        state=_text(payload, "state"),
        dcql_query=query,
        issued_at=iat if type(iat) is int else now,
        expires_at=exp,
    )
    return VerifiedRequest(request, dns_names, leaf.subject.rfc4514_string())
