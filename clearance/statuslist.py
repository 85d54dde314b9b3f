"""Token Status List (draft-ietf-oauth-status-list): the list, and the signed token that carries it.

A status list is a byte array where each referenced token has ``bits`` bits
(1, 2, 4 or 8) at index ``idx``, packed least significant bit first: index
``i`` lives in byte ``i * bits // 8`` at bit offset ``i * bits % 8``. On the
wire it is ``{"bits": b, "lst": base64url(zlib(bytes))}`` (DEFLATE with the
ZLIB format, unpadded base64url).

The Status List Token is a JWT with header ``typ: statuslist+jwt`` and claims
``sub`` (the list's URI, equal to the ``uri`` in referenced tokens), ``iat``,
``exp``, ``ttl`` and ``status_list``. We add one private claim, ``seq``, a
counter that increases with every publication of a list, so a verifier can
tell two lists of the same second apart and refuse the older (rollback).

Values: 0 valid, 1 revoked ("INVALID" in the draft), 2 suspended.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.certificates import x5c_value
from clearance.encoding import b64url_decode, b64url_encode
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import CompactJWS, decode_compact, encode_compact, verify_compact
from clearance.keys import PublicKey, Signer

STATUS_LIST_TYP = "statuslist+jwt"
ALLOWED_BITS = (1, 2, 4, 8)
MIN_HERD_SIZE = 131_072
"""Smallest list we allocate from: large enough that an index says nothing about who holds it."""
MAX_LIST_BYTES = 8 * 1024 * 1024
"""Cap on the inflated list (32 million entries at 2 bits): anything larger is a zlib bomb."""
MAX_TOKEN_BYTES = 4 * 1024 * 1024


class Status(enum.IntEnum):
    """Status values of draft-ietf-oauth-status-list section 7.1."""

    VALID = 0
    REVOKED = 1  # "INVALID" in the draft
    SUSPENDED = 2


class StatusList:
    """A mutable list of statuses, ``bits`` bits each."""

    __slots__ = ("_data", "bits", "size")

    def __init__(self, bits: int, size: int, data: bytearray | None = None) -> None:
        if bits not in ALLOWED_BITS:
            raise MalformedError(f"status list bits must be one of {ALLOWED_BITS}, not {bits!r}")
        nbytes = (size * bits + 7) // 8
        if size <= 0 or nbytes > MAX_LIST_BYTES:
            raise MalformedError(f"status list size {size} is out of range", Reason.TOO_LARGE)
        if data is not None and len(data) != nbytes:
            raise MalformedError("status list data does not match its size")
        self.bits = bits
        self.size = size
        self._data = data if data is not None else bytearray(nbytes)

    def get(self, index: int) -> int:
        """The status at ``index``.

        Raises:
            VerificationError: ``index`` is outside the list (``status_index_out_of_range``).
        """
        if type(index) is not int or not 0 <= index < self.size:
            raise VerificationError(
                Reason.STATUS_INDEX_OUT_OF_RANGE, f"status index {index!r} is outside the list"
            )
        bits = self.bits
        position = index * bits
        mask = (1 << bits) - 1
        return (self._data[position >> 3] >> (position & 7)) & mask

    def set(self, index: int, status: int) -> None:
        """Set the status at ``index``.

        Raises:
            VerificationError: ``index`` is outside the list.
            MalformedError: ``status`` does not fit in ``bits``.
        """
        self.get(index)
        if not 0 <= status < (1 << self.bits):
            raise MalformedError(f"status {status} does not fit in {self.bits} bits")
        position = index * self.bits
        mask = ((1 << self.bits) - 1) << (position & 7)
        byte = position >> 3
        self._data[byte] = (self._data[byte] & ~mask & 0xFF) | (status << (position & 7))

    def non_zero(self) -> Iterator[tuple[int, int]]:
        """Every ``(index, status)`` whose status is not 0, in index order."""
        bits = self.bits
        per_byte = 8 // bits
        mask = (1 << bits) - 1
        data = self._data
        start = 0
        while True:
            start = _next_non_zero_byte(data, start)
            if start < 0:
                return
            value = data[start]
            for slot in range(per_byte):
                status = (value >> (slot * bits)) & mask
                index = start * per_byte + slot
                if status and index < self.size:
                    yield index, status
            start += 1

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def encode(self, *, level: int = 9) -> dict[str, Any]:
        """The ``status_list`` JSON object: ``{"bits", "lst"}``."""
        return {"bits": self.bits, "lst": b64url_encode(zlib.compress(bytes(self._data), level))}

    @classmethod
    def decode(cls, obj: Any, *, max_bytes: int = MAX_LIST_BYTES) -> StatusList:
        """Parse a ``status_list`` object, refusing zlib bombs.

        Raises:
            MalformedError: wrong shape, invalid ``bits``, bad encoding or compression,
                or a list that inflates past ``max_bytes`` (``too_large``).
        """
        if not isinstance(obj, Mapping):
            raise MalformedError("status_list is not a JSON object")
        bits, lst = obj.get("bits"), obj.get("lst")
        if type(bits) is not int or bits not in ALLOWED_BITS:
            raise MalformedError(f"status_list bits must be one of {ALLOWED_BITS}")
        if not isinstance(lst, str):
            raise MalformedError("status_list lst is not a string")
        compressed = b64url_decode(lst, what="status_list lst")
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(compressed, max_bytes)
        except zlib.error as exc:
            raise MalformedError("status_list lst is not zlib data") from exc
        if inflater.unconsumed_tail:
            raise MalformedError(f"status list inflates past {max_bytes} bytes", Reason.TOO_LARGE)
        if not inflater.eof:
            raise MalformedError("status_list lst is truncated")
        if not data:
            raise MalformedError("status list is empty")
        return cls(bits, len(data) * 8 // bits, bytearray(data))

    def copy(self) -> StatusList:
        return StatusList(self.bits, self.size, bytearray(self._data))


def _next_non_zero_byte(data: bytearray, start: int) -> int:
    """Index of the first non-zero byte at or after ``start``, or -1 (fast on sparse lists)."""
    length = len(data)
    chunk = 4096
    zero = bytes(chunk)
    while start < length:
        end = min(start + chunk, length)
        if data[start:end] != zero[: end - start]:
            for i in range(start, end):
                if data[i]:
                    return i
        start = end
    return -1


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A decoded Status List Token (its signature is checked by whoever holds the key)."""

    uri: str
    issued_at: int
    expires_at: int | None
    ttl: int | None
    seq: int
    status_list: StatusList
    kid: str | None
    jws: CompactJWS
    deltas: tuple[str, ...] = ()
    """Signed status deltas applied on top of ``jws`` (see :mod:`clearance.statusdelta`)."""

    def status_of(self, index: int) -> int:
        """The status at ``index`` (raises ``status_index_out_of_range``)."""
        return self.status_list.get(index)

    def freshness_problem(self, now: int, max_age: int) -> VerificationError | None:
        """Why this list may not be relied on at ``now`` given ``max_age`` seconds, or None."""
        if self.expires_at is not None and now >= self.expires_at:
            return VerificationError(Reason.STATUS_LIST_EXPIRED, f"status list {self.uri} has expired")
        if now - self.issued_at > max_age:
            return VerificationError(
                Reason.STATUS_LIST_STALE,
                f"status list {self.uri} is {now - self.issued_at}s old; policy allows {max_age}s",
            )
        return None


def sign_status_list(
    status_list: StatusList,
    key: Signer,
    *,
    uri: str,
    issued_at: int,
    ttl: int,
    expires_at: int,
    seq: int,
    level: int = 9,
    x5c: Sequence[bytes] = (),
) -> str:
    """Sign ``status_list`` as a Status List Token for ``uri``.

    ``x5c`` is the issuing key's certificate chain (DER, leaf first) on the HAIP profile.
    """
    payload = {
        "sub": uri,
        "iat": issued_at,
        "exp": expires_at,
        "ttl": ttl,
        "seq": seq,
        "status_list": status_list.encode(level=level),
    }
    header: dict[str, Any] = {"typ": STATUS_LIST_TYP, "kid": key.kid}
    if x5c:
        header["x5c"] = x5c_value(x5c)
    return encode_compact(header, payload, key)


def parse_status_list_token(token: str, *, max_list_bytes: int = MAX_LIST_BYTES) -> StatusListToken:
    """Decode a Status List Token without checking its signature.

    Raises:
        MalformedError: bad structure, claims or list.
        VerificationError: forbidden algorithm or wrong ``typ``.
    """
    jws = decode_compact(token, what="status list token", max_bytes=MAX_TOKEN_BYTES, typ=STATUS_LIST_TYP)
    claims = jws.payload
    uri, iat, exp, ttl = claims.get("sub"), claims.get("iat"), claims.get("exp"), claims.get("ttl")
    seq = claims.get("seq", 0)
    if not isinstance(uri, str) or not uri:
        raise MalformedError("status list token lacks sub (the list URI)")
    if type(iat) is not int:
        raise MalformedError("status list token lacks an integer iat")
    for name, value in (("exp", exp), ("ttl", ttl)):
        if value is not None and (type(value) is not int or value < 0):
            raise MalformedError(f"status list token {name} is not a non-negative integer")
    if type(seq) is not int or seq < 0:
        raise MalformedError("status list token seq is not a non-negative integer")
    status_list = StatusList.decode(claims.get("status_list"), max_bytes=max_list_bytes)
    return StatusListToken(uri, iat, exp, ttl, seq, status_list, jws.kid, jws)


def verify_status_list_token(token: str, key: PublicKey) -> StatusListToken:
    """Decode a Status List Token and check its signature with ``key``.

    Raises:
        MalformedError: as :func:`parse_status_list_token`.
        VerificationError: bad signature or algorithm.
    """
    parsed = parse_status_list_token(token)
    verify_compact(parsed.jws, key, what="status list token")
    return parsed
