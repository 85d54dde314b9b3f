"""Proof of possession at issuance: ``c_nonce`` values and ``openid4vci-proof+jwt`` (OpenID4VCI 1.0).

The wallet takes a ``c_nonce`` from the nonce endpoint and signs a proof JWT with the key it
wants bound::

    header  {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": <the key to bind>}
    payload {"aud": <credential issuer identifier>, "iat": <now>, "nonce": <c_nonce>}

A ``c_nonce`` is made without storing anything (the nonce endpoint needs no authentication,
so it must cost the issuer no memory): ``base64url(expiry || random || MAC)``, the MAC keyed by
a secret of the issuer. It is accepted once: :func:`verify_proof` returns its identifier and
expiry, and the issuer records it as used (only callers holding an access token get that far,
so the record is bounded).

:func:`verify_proof` refuses, with ``invalid_proof``: a wrong ``typ``, an ``alg`` outside the
allow-list, a ``jwk`` header that is missing, private or accompanied by ``kid``/``x5c``, a bad
signature, a wrong ``aud``, an ``iat`` outside the window; with ``invalid_nonce``: a nonce that
is not one of ours, has expired, or is missing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass

from clearance.encoding import b64url_decode, b64url_encode
from clearance.errors import (
    MalformedError,
    OAuthErrorCode,
    ProtocolError,
    Reason,
    VerificationError,
)
from clearance.jws import decode_compact, encode_compact, verify_compact
from clearance.keys import PublicKey, Signer

PROOF_TYP = "openid4vci-proof+jwt"
MAX_PROOF_BYTES = 4096
DEFAULT_NONCE_TTL = 300
PROOF_MAX_AGE = 300
PROOF_LEEWAY = 60
_NONCE_RANDOM = 16
_NONCE_MAC = 16


@dataclass(frozen=True, slots=True)
class NonceMinter:
    """Makes and checks ``c_nonce`` values with a secret key; stores nothing."""

    key: bytes
    ttl: int = DEFAULT_NONCE_TTL
    random_bytes: Callable[[int], bytes] = secrets.token_bytes

    def __post_init__(self) -> None:
        if len(self.key) < 32 or self.ttl <= 0:
            raise MalformedError("a nonce key has at least 32 bytes and a positive lifetime")

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.key, b"c_nonce\x00" + body, hashlib.sha256).digest()[:_NONCE_MAC]

    def mint(self, now: int) -> str:
        """A fresh ``c_nonce``, valid for :attr:`ttl` seconds."""
        body = (now + self.ttl).to_bytes(8, "big") + self.random_bytes(_NONCE_RANDOM)
        return b64url_encode(body + self._mac(body))

    def check(self, nonce: object, now: int) -> tuple[str, int]:
        """``(identifier, expires_at)`` of a nonce we made that has not expired.

        Raises:
            ProtocolError: ``invalid_nonce``.
        """
        if not isinstance(nonce, str) or len(nonce) > 64:
            raise ProtocolError(OAuthErrorCode.INVALID_NONCE, "the proof carries no c_nonce of ours")
        try:
            raw = b64url_decode(nonce, what="c_nonce")
        except MalformedError as exc:
            raise ProtocolError(OAuthErrorCode.INVALID_NONCE, "the proof carries no c_nonce of ours") from exc
        body, mac = raw[:-_NONCE_MAC], raw[-_NONCE_MAC:]
        if len(body) != 8 + _NONCE_RANDOM or not hmac.compare_digest(mac, self._mac(body)):
            raise ProtocolError(
                OAuthErrorCode.INVALID_NONCE, "the c_nonce was not issued here", reason=Reason.NONCE_UNKNOWN
            )
        expires_at = int.from_bytes(body[:8], "big")
        if now >= expires_at:
            raise ProtocolError(
                OAuthErrorCode.INVALID_NONCE, "the c_nonce has expired", reason=Reason.NONCE_EXPIRED
            )
        return hashlib.sha256(raw).hexdigest(), expires_at


@dataclass(frozen=True, slots=True)
class ProvenKey:
    """A holder key whose possession a proof showed, and the nonce the proof used."""

    key: PublicKey
    nonce_id: str
    nonce_expires_at: int


def make_proof(key: Signer, *, audience: str, nonce: str, issued_at: int) -> str:
    """The wallet's proof JWT for ``key`` (``jwk`` header), for issuer ``audience``."""
    return encode_compact(
        {"typ": PROOF_TYP, "jwk": key.public.bare_jwk},
        {"aud": audience, "iat": issued_at, "nonce": nonce},
        key,
    )


def _invalid(detail: str, reason: Reason | None = None) -> ProtocolError:
    return ProtocolError(OAuthErrorCode.INVALID_PROOF, detail, reason=reason)


def verify_proof(
    token: object,
    *,
    audience: str,
    nonces: NonceMinter,
    now: int,
    algorithms: Collection[str],
) -> ProvenKey:
    """Check a proof JWT; return the key it proves and its nonce (not yet recorded as used).

    Args:
        token: the ``jwt`` proof as sent.
        audience: the credential issuer identifier (``aud`` must be exactly it).
        nonces: the issuer's nonce minter.
        now: seconds since the epoch.
        algorithms: the ``alg`` values the issuer accepts for proofs.

    Raises:
        ProtocolError: ``invalid_proof`` or ``invalid_nonce`` (see the module docstring).
    """
    if not isinstance(token, str):
        raise _invalid("the proof is not a JWT")
    try:
        jws = decode_compact(token, what="proof", max_bytes=MAX_PROOF_BYTES)
    except VerificationError as exc:
        raise _invalid(f"the proof does not parse: {exc.detail}", exc.reason) from exc
    header, claims = jws.header, jws.payload
    if jws.typ != PROOF_TYP:
        raise _invalid(f"the proof typ must be {PROOF_TYP}", Reason.WRONG_TYPE)
    if header.get("alg") not in algorithms:
        raise _invalid("the proof alg is not one this issuer accepts", Reason.ALGORITHM_NOT_ALLOWED)
    if "kid" in header or "x5c" in header or "jwk" not in header:
        raise _invalid("the proof must name the key to bind in jwk, and nothing else")
    try:
        key = PublicKey.from_jwk(header["jwk"])
        verify_compact(jws, key, what="proof")
    except VerificationError as exc:
        raise _invalid(f"the proof does not verify: {exc.detail}", exc.reason) from exc
    if claims.get("aud") != audience:
        raise _invalid("the proof is for another credential issuer", Reason.AUDIENCE_MISMATCH)
    iat = claims.get("iat")
    if type(iat) is not int or not now - PROOF_MAX_AGE <= iat <= now + PROOF_LEEWAY:
        raise _invalid("the proof iat is missing or not recent", Reason.INVALID_CLAIM)
    nonce_id, expires_at = nonces.check(claims.get("nonce"), now)
    return ProvenKey(key, nonce_id, expires_at)
