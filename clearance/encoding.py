"""Strict base64url and JSON for everything that arrives from outside.

Inputs are hostile until proven otherwise: base64url must be unpadded and use
only the URL-safe alphabet; JSON must be UTF-8, no larger than a cap, nested
no deeper than a cap, free of duplicate member names (RFC 7515 section 5.2
lets us reject them, and we do) and free of NaN/Infinity.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from clearance.errors import MalformedError, Reason

MAX_JSON_DEPTH = 32
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
"""base64url to base64; ``+``, ``/`` and ``=`` become ``*``, which strict decoding refuses."""
_PADDING = (b"", b"", b"==", b"=")
"""Per length mod 4 (1 is impossible), the padding that standard base64 wants."""
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTETS = bytes(_ALPHABET.find(bytes([c])) & 0xFF for c in range(256))
"""The 6-bit value of each base64url character (255 for a byte outside the alphabet)."""
_UNUSED_BITS = (0, 0, 0b1111, 0b11)
"""Per length mod 4, the bits of the last character that carry no data."""


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without padding (RFC 7515 section 2)."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE, b"=").decode("ascii")


def b64url_decode(text: str | bytes, *, what: str = "value") -> bytes:
    """Decode unpadded base64url, refusing anything else.

    Raises:
        MalformedError: padding, characters outside the alphabet, an
            impossible length, or non-zero unused bits in the last character.
    """
    try:
        raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except UnicodeEncodeError as exc:
        raise MalformedError(f"{what} is not unpadded base64url") from exc
    tail = len(raw) % 4
    if tail == 1:
        raise MalformedError(f"{what} is not unpadded base64url")
    try:
        # One pass refuses padding, "+" and "/" (translated to "*") and anything else
        # outside the alphabet.
        data = binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[tail], strict_mode=True)
    except binascii.Error as exc:
        raise MalformedError(f"{what} is not unpadded base64url") from exc
    # RFC 4648 section 3.5: the bits of the last character that encode no data must be
    # zero. Otherwise several texts decode to the same bytes, and a signature or list
    # could be re-encoded into a "different" token that still verifies.
    unused = _UNUSED_BITS[tail]
    if unused and _SEXTETS[raw[-1]] & unused:
        raise MalformedError(f"{what} is not canonical base64url")
    return data


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"JSON constant {name} is not allowed")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # Only reached on a duplicate: find it to name it.
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedError(f"duplicate JSON member {key[:40]!r}", Reason.DUPLICATE_MEMBER)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_reject_constant)
_SCAN: Any = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner, set in __init__


def _depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in item)
    return True


def parse_json(
    data: bytes | str,
    *,
    what: str = "JSON",
    max_bytes: int = 1 << 20,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON strictly.

    Raises:
        MalformedError: too large, too deep, not UTF-8, not JSON, duplicate
            member names, or NaN/Infinity.
    """
    if len(data) > max_bytes:
        raise MalformedError(f"{what} is larger than {max_bytes} bytes", Reason.TOO_LARGE)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # surrounding white space or garbage: take the careful path
            value = _DECODER.decode(text)
    except RecursionError as exc:
        raise MalformedError(f"{what} is nested too deeply", Reason.TOO_DEEP) from exc
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{what} is not UTF-8") from exc
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise MalformedError(f"{what} is not valid JSON") from exc
    # Cheap bound first: fewer openers than the limit cannot nest past it.
    if text.count("{") + text.count("[") > max_depth and not _depth_ok(value, max_depth):
        raise MalformedError(f"{what} is nested deeper than {max_depth}", Reason.TOO_DEEP)
    return value


def parse_json_object(data: bytes | str, *, what: str = "JSON", max_bytes: int = 1 << 20) -> dict[str, Any]:
    """Parse JSON that must be an object.

    Raises:
        MalformedError: as :func:`parse_json`, or when the value is not an object.
    """
    value = parse_json(data, what=what, max_bytes=max_bytes)
    if not isinstance(value, dict):
        raise MalformedError(f"{what} is not a JSON object")
    return value


_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)
"""Built once: ``json.dumps`` with these options builds a new encoder on every call."""


def canonical_json(value: Any) -> bytes:
    """Compact, key-sorted UTF-8 JSON: what we sign, hash and store."""
    return _CANONICAL.encode(value).encode()
