"""A lean JWS layer (RFC 7515) for the hot path, over PyJWT's algorithm objects.

Two serializations:

* **compact** (``header.payload.signature``): credentials, key-binding JWTs,
  status list tokens, trust bundles. Decoding checks the structure, the
  header and the algorithm allow-list *before* any key is looked up; the
  signature is checked separately with :func:`verify_compact`, so callers can
  choose the key by ``kid`` from trusted material.
* **general JSON** (section 7.2.1): one payload, several signatures. Used where
  DESIGN.md asks for one payload signed by several roots (agreements, root
  rotations).

Only ``EdDSA`` (also spelled ``Ed25519``, RFC 9864) and ``ES256`` are accepted: ``none``, HMAC (the "HS256 signed
with the public key" confusion) and everything else are refused as
``algorithm_not_allowed`` before a signature is looked at. A header's ``alg``
must match the key that verifies it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.encoding import b64url_decode, b64url_encode, canonical_json, parse_json, parse_json_object
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.keys import ALLOWED_ALGS, PublicKey, Signer, alg_matches

MAX_TOKEN_BYTES = 64 * 1024
"""Default cap for one compact JWS: far above any credential we issue."""


@dataclass(slots=True)
class CompactJWS:
    """A decoded, *not yet verified* compact JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    raw: str
    payload_json: str = ""

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def typ(self) -> str | None:
        typ = self.header.get("typ")
        return typ if isinstance(typ, str) else None


def _check_header(header: dict[str, Any], what: str) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        raise VerificationError(Reason.ALGORITHM_NOT_ALLOWED, f"{what} uses algorithm {str(alg)[:20]!r}")
    if "crit" in header:  # we define no extensions, so any critical one is not understood
        raise MalformedError(f"{what} has critical header parameters we do not understand")


@functools.lru_cache(maxsize=1024)
def _decode_cached_header(h64: str) -> dict[str, Any]:
    return parse_json_object(b64url_decode(h64, what="header"), what="header", max_bytes=4096)


def _decode_header(h64: str, what: str) -> dict[str, Any]:
    """Decode and check a protected header. Headers repeat (one per issuing key), so
    the parse is cached; the returned dict must be treated as read-only."""
    if len(h64) > 4096:
        raise MalformedError(f"{what} header is too large", Reason.TOO_LARGE)
    try:
        header = _decode_cached_header(h64)
    except MalformedError as exc:
        raise MalformedError(f"{what} {exc.detail}", exc.reason) from exc
    _check_header(header, what)
    return header


def encode_compact(header: Mapping[str, Any], payload: Mapping[str, Any], key: Signer) -> str:
    """Sign ``payload`` as a compact JWS; ``alg`` comes from the key."""
    full_header = {**header, "alg": key.alg}
    try:
        encoded_header = _encoded_header(tuple(full_header.items()))
    except TypeError:  # a member that cannot be a cache key (a list, say): encode it here
        encoded_header = b64url_encode(canonical_json(full_header))
    signing_input = (encoded_header + "." + b64url_encode(canonical_json(payload))).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url_encode(key.sign(signing_input))


@functools.lru_cache(maxsize=256)
def _encoded_header(members: tuple[tuple[str, Any], ...]) -> str:
    """The encoded protected header: an issuer signs many tokens under one header."""
    return b64url_encode(canonical_json(dict(members)))


def decode_compact(
    token: str, *, what: str = "token", max_bytes: int = MAX_TOKEN_BYTES, typ: str | None = None
) -> CompactJWS:
    """Parse a compact JWS without verifying it.

    Args:
        token: the serialized JWS.
        what: how to name it in errors.
        max_bytes: refuse anything longer.
        typ: if given, the header ``typ`` that must be present.

    Raises:
        MalformedError: too large, wrong number of parts, bad base64url or JSON.
        VerificationError: an algorithm outside the allow-list (``algorithm_not_allowed``)
            or the wrong ``typ`` (``wrong_type``).
    """
    if not isinstance(token, str):
        raise MalformedError(f"{what} is not text")
    if len(token) > max_bytes:
        raise MalformedError(f"{what} is larger than {max_bytes} bytes", Reason.TOO_LARGE)
    # Three finds (memchr) rather than a split that walks the token character by character.
    first = token.find(".")
    second = token.find(".", first + 1)
    if first < 0 or second < 0 or token.find(".", second + 1) >= 0:
        raise MalformedError(f"{what} is not a compact JWS (expected 3 parts)")
    h64, p64, s64 = token[:first], token[first + 1 : second], token[second + 1 :]
    header = _decode_header(h64, what)
    if typ is not None and header.get("typ") != typ:
        raise VerificationError(
            Reason.WRONG_TYPE, f"{what} has typ {str(header.get('typ'))[:40]!r}, expected {typ!r}"
        )
    try:
        payload_json = b64url_decode(p64).decode("utf-8")
        payload = parse_json_object(payload_json, max_bytes=max_bytes)
        signature = b64url_decode(s64)
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{what}: payload is not UTF-8") from exc
    except MalformedError as exc:  # name the part only when something is wrong
        raise MalformedError(f"{what}: {exc.detail}", exc.reason) from exc
    return CompactJWS(header, payload, token[:second].encode("ascii"), signature, token, payload_json)


UnverifiedCompact = tuple[str, str | None, dict[str, Any], str, bytes, bytes, object]
"""``(alg, kid, payload, payload_json, signing_input, signature, x5c)`` of a compact JWS, not yet
verified (``x5c`` is the header's value as sent, or None)."""


def try_decode_compact(token: str, typ: str, max_bytes: int = MAX_TOKEN_BYTES) -> UnverifiedCompact | None:
    """What :func:`decode_compact` finds in ``token``, or None where it would raise.

    For a hot path, which calls :func:`decode_compact` to learn why. Leaner: no object
    is built, and a protected header is checked once, not once per token that carries it
    (there is one per issuing key, one per holder algorithm).
    """
    if len(token) > max_bytes:
        return None
    first = token.find(".")
    second = token.find(".", first + 1)
    if first < 0 or second < 0 or token.find(".", second + 1) >= 0:
        return None
    try:
        alg, kid, header_typ, x5c = _accepted_header(token[:first])
        if header_typ != typ:
            return None
        payload_json = b64url_decode(token[first + 1 : second]).decode("utf-8")
        payload = parse_json(payload_json, max_bytes=max_bytes)
        signature = b64url_decode(token[second + 1 :])
    except (VerificationError, UnicodeDecodeError):
        return None
    if type(payload) is not dict:
        return None
    return alg, kid, payload, payload_json, token[:second].encode("ascii"), signature, x5c


@functools.lru_cache(maxsize=1024)
def _accepted_header(h64: str) -> tuple[str, str | None, object, object]:
    """``(alg, kid, typ, x5c)`` of a protected header that :func:`decode_compact` accepts.

    Raises:
        VerificationError: as :func:`decode_compact` (a refusal is not cached).
    """
    header = _decode_header(h64, "token")
    kid = header.get("kid")
    return header["alg"], kid if isinstance(kid, str) else None, header.get("typ"), header.get("x5c")


def verify_compact(jws: CompactJWS, key: PublicKey, *, what: str = "token") -> None:
    """Check the signature of ``jws`` with ``key``; the header ``alg`` must match the key.

    Raises:
        VerificationError: ``algorithm_not_allowed`` on a mismatch, ``bad_signature``.
    """
    verify_signature(jws.header.get("alg"), jws.signing_input, jws.signature, key, what=what)


def verify_signature(
    alg: object, signing_input: bytes, signature: bytes, key: PublicKey, *, what: str
) -> None:
    """Check ``signature`` over ``signing_input`` with ``key``, whose algorithm must be ``alg``.

    Raises:
        VerificationError: ``algorithm_not_allowed`` on a mismatch, ``bad_signature``.
    """
    if not alg_matches(alg, key.alg):
        raise VerificationError(
            Reason.ALGORITHM_NOT_ALLOWED, f"{what} alg does not match its key ({key.alg})"
        )
    try:
        key.verify(signature, signing_input)
    except VerificationError as exc:
        raise VerificationError(Reason.BAD_SIGNATURE, f"{what} signature does not verify") from exc


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of a general JSON JWS, with its protected header."""

    header: dict[str, Any]
    protected: str
    signature: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


@dataclass(frozen=True, slots=True)
class MultiSignedJWS:
    """A decoded, not yet verified, general JSON serialization JWS."""

    payload: dict[str, Any]
    payload_b64: str
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The RFC 7515 section 7.2.1 object."""
        return {
            "payload": self.payload_b64,
            "signatures": [
                {"protected": s.protected, "signature": b64url_encode(s.signature)} for s in self.signatures
            ],
        }

    def signed_by(self, key: PublicKey, *, what: str = "document") -> Signature:
        """Return the signature made by ``key``, verified.

        Raises:
            VerificationError: no signature names this key (``unknown_key``) or it
                does not verify (``bad_signature``).
        """
        for sig in self.signatures:
            if sig.kid == key.thumbprint:
                if not alg_matches(sig.header.get("alg"), key.alg):
                    raise VerificationError(
                        Reason.ALGORITHM_NOT_ALLOWED, f"{what} signature alg does not match its key"
                    )
                signing_input = (sig.protected + "." + self.payload_b64).encode("ascii")
                try:
                    key.verify(sig.signature, signing_input)
                except VerificationError as exc:
                    raise VerificationError(
                        Reason.BAD_SIGNATURE,
                        f"{what} signature by {key.thumbprint} does not verify",
                    ) from exc
                return sig
        raise VerificationError(Reason.UNKNOWN_KEY, f"{what} is not signed by {key.thumbprint}")


def sign_general(
    payload: Mapping[str, Any], signers: Sequence[tuple[Signer, Mapping[str, Any]]]
) -> MultiSignedJWS:
    """Sign one payload with several keys (general JSON serialization)."""
    payload_b64 = b64url_encode(canonical_json(payload))
    doc = MultiSignedJWS(dict(payload), payload_b64, ())
    for key, header in signers:
        doc = add_signature(doc, key, header)
    return doc


def add_signature(doc: MultiSignedJWS, key: Signer, header: Mapping[str, Any]) -> MultiSignedJWS:
    """Return ``doc`` with one more signature by ``key`` (``kid`` = its thumbprint)."""
    full_header = {**header, "alg": key.alg, "kid": key.kid}
    protected = b64url_encode(canonical_json(full_header))
    signature = key.sign((protected + "." + doc.payload_b64).encode("ascii"))
    kept = tuple(s for s in doc.signatures if s.kid != key.kid)
    return MultiSignedJWS(doc.payload, doc.payload_b64, (*kept, Signature(full_header, protected, signature)))


def decode_general(
    obj: Any, *, what: str = "document", typ: str | None = None, max_signatures: int = 8
) -> MultiSignedJWS:
    """Parse a general JSON serialization JWS without verifying it.

    Raises:
        MalformedError: wrong shape, bad base64url or JSON, too many signatures.
        VerificationError: a signature header with a forbidden algorithm or wrong ``typ``.
    """
    if not isinstance(obj, Mapping) or not isinstance(obj.get("payload"), str):
        raise MalformedError(f"{what} is not a JWS JSON serialization")
    sigs = obj.get("signatures")
    if not isinstance(sigs, list) or not 1 <= len(sigs) <= max_signatures:
        raise MalformedError(f"{what} must carry 1 to {max_signatures} signatures")
    payload_b64: str = obj["payload"]
    payload = parse_json_object(b64url_decode(payload_b64, what=f"{what} payload"), what=f"{what} payload")
    parsed: list[Signature] = []
    for entry in sigs:
        if not isinstance(entry, Mapping) or set(entry) - {"protected", "signature", "header"}:
            raise MalformedError(f"{what} signature entry has an unexpected shape")
        protected, signature = entry.get("protected"), entry.get("signature")
        if not isinstance(protected, str) or not isinstance(signature, str) or "header" in entry:
            raise MalformedError(f"{what} signatures must use protected headers only")
        header = parse_json_object(b64url_decode(protected, what=f"{what} header"), what=f"{what} header")
        _check_header(header, what)
        if typ is not None and header.get("typ") != typ:
            raise VerificationError(Reason.WRONG_TYPE, f"{what} signature has the wrong typ")
        parsed.append(Signature(header, protected, b64url_decode(signature, what=f"{what} signature")))
    kids = [s.kid for s in parsed]
    if None in kids or len(set(kids)) != len(kids):
        raise MalformedError(f"{what} signatures must name distinct keys by kid")
    return MultiSignedJWS(payload, payload_b64, tuple(parsed))
