"""Signed bearer tokens: how staff, nodes and registries authenticate a call.

The caller holds a private key whose public half the server knows (a staff
account, an enrolled node). For each call (or each minute) it signs a short
JWT (header ``typ: clearance-access+jwt``, ``kid`` = key thumbprint; claims
``iss`` = principal id, ``aud`` = the server's identifier, ``iat``, ``exp``
at most 10 minutes later, ``jti``) and sends it as
``authorization: Bearer <token>``. A stolen token is useless after minutes,
and the private key never travels.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from clearance.errors import AuthenticationError, ClearanceError
from clearance.jws import CompactJWS, decode_compact, encode_compact, verify_compact
from clearance.keys import PublicKey, Signer

ACCESS_TYP = "clearance-access+jwt"
MAX_LIFETIME = 600
LEEWAY = 30


def sign_access_token(key: Signer, *, principal: str, audience: str, now: int, lifetime: int = 300) -> str:
    return encode_compact(
        {"typ": ACCESS_TYP, "kid": key.kid},
        {"iss": principal, "aud": audience, "iat": now, "exp": now + lifetime, "jti": secrets.token_hex(8)},
        key,
    )


@dataclass(frozen=True)
class AccessClaims:
    principal: str
    kid: str
    expires_at: int


def parse_access_token(token: str) -> CompactJWS:
    """Decode a bearer token's structure.

    Raises:
        AuthenticationError: anything malformed.
    """
    try:
        return decode_compact(token, what="access token", max_bytes=4096, typ=ACCESS_TYP)
    except ClearanceError as exc:
        raise AuthenticationError(f"invalid access token: {exc}") from exc


def verify_access_token(jws: CompactJWS, key: PublicKey, *, audience: str, now: int) -> AccessClaims:
    """Check a decoded bearer token against the key the server has for its ``kid``.

    Raises:
        AuthenticationError: bad signature, audience, or times.
    """
    try:
        verify_compact(jws, key, what="access token")
    except ClearanceError as exc:
        raise AuthenticationError("access token signature does not verify") from exc
    claims = jws.payload
    iss, aud, iat, exp = claims.get("iss"), claims.get("aud"), claims.get("iat"), claims.get("exp")
    if not isinstance(iss, str) or type(iat) is not int or type(exp) is not int:
        raise AuthenticationError("access token lacks iss, iat or exp")
    if aud != audience:
        raise AuthenticationError("access token is for another server")
    if exp - iat > MAX_LIFETIME or iat > now + LEEWAY:
        raise AuthenticationError("access token lifetime is not acceptable")
    if now >= exp:
        raise AuthenticationError("access token has expired")
    return AccessClaims(iss, key.thumbprint, exp)


class TokenSource:
    """Client side: a bearer token for every call, re-signed when near expiry."""

    def __init__(
        self, key: Signer, *, principal: str, audience: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._key, self._principal, self._audience, self._clock = key, principal, audience, clock
        self._token: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        now = int(self._clock())
        with self._lock:
            if self._token is None or self._token[1] - now < 60:
                self._token = (
                    sign_access_token(self._key, principal=self._principal, audience=self._audience, now=now),
                    now + 300,
                )
            return self._token[0]

    def metadata(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self()}"),)
