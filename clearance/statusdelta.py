"""Signed status deltas: the small updates a registry pushes between full status lists.

A full Status List Token of 10 million entries is about 2.5 MB inflated; a
revocation changes one entry. Between full lists the registry pushes a
**status delta** (compact JWS, header ``typ: clearance-status-delta+jwt``,
signed by an issuing key)::

    {"sub": <list uri>, "iat": int, "exp": int,
     "base_seq": n, "seq": n + 1, "updates": [[idx, status], ...]}

A verifier applies it only on top of exactly the list it holds
(``base_seq`` = its ``seq``); otherwise it asks for the full list. A delta
with no updates is how the registry proves a list is still current (it
renews freshness without resending the list). Deltas are our own format:
peers outside our nodes read the standard full Status List Token.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearance.errors import MalformedError, Reason
from clearance.jws import CompactJWS, decode_compact, encode_compact
from clearance.keys import Signer

STATUS_DELTA_TYP = "clearance-status-delta+jwt"
MAX_UPDATES = 10_000
MAX_DELTA_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class StatusDelta:
    """A decoded, not yet verified, status delta."""

    uri: str
    issued_at: int
    expires_at: int
    base_seq: int
    seq: int
    updates: tuple[tuple[int, int], ...]
    kid: str | None
    jws: CompactJWS


def sign_status_delta(
    key: Signer,
    *,
    uri: str,
    issued_at: int,
    expires_at: int,
    base_seq: int,
    updates: list[tuple[int, int]],
) -> str:
    """Sign the changes that turn list ``base_seq`` into ``base_seq + 1``."""
    payload = {
        "sub": uri,
        "iat": issued_at,
        "exp": expires_at,
        "base_seq": base_seq,
        "seq": base_seq + 1,
        "updates": [[idx, status] for idx, status in updates],
    }
    return encode_compact({"typ": STATUS_DELTA_TYP, "kid": key.kid}, payload, key)


def parse_status_delta(token: str) -> StatusDelta:
    """Decode a status delta without checking its signature.

    Raises:
        MalformedError: bad structure, fields, or too many updates.
        VerificationError: forbidden algorithm or wrong ``typ``.
    """
    jws = decode_compact(token, what="status delta", max_bytes=MAX_DELTA_BYTES, typ=STATUS_DELTA_TYP)
    p = jws.payload
    uri, iat, exp = p.get("sub"), p.get("iat"), p.get("exp")
    base_seq, seq, updates = p.get("base_seq"), p.get("seq"), p.get("updates")
    if not isinstance(uri, str) or not uri:
        raise MalformedError("status delta lacks sub (the list URI)")
    for name, value in (("iat", iat), ("exp", exp), ("base_seq", base_seq), ("seq", seq)):
        if type(value) is not int or value < 0:
            raise MalformedError(f"status delta {name} is not a non-negative integer")
    assert isinstance(base_seq, int)
    assert isinstance(seq, int)
    assert isinstance(iat, int)
    assert isinstance(exp, int)
    if seq != base_seq + 1:
        raise MalformedError("status delta must advance the list by exactly one")
    if not isinstance(updates, list):
        raise MalformedError("status delta updates must be an array")
    if len(updates) > MAX_UPDATES:
        raise MalformedError(f"status delta carries more than {MAX_UPDATES} updates", Reason.TOO_LARGE)
    parsed: list[tuple[int, int]] = []
    for entry in updates:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or type(entry[0]) is not int
            or type(entry[1]) is not int
            or entry[0] < 0
            or not 0 <= entry[1] <= 255
        ):
            raise MalformedError("status delta update must be [index, status]")
        parsed.append((entry[0], entry[1]))
    return StatusDelta(uri, iat, exp, base_seq, seq, tuple(parsed), jws.kid, jws)
