"""Selective Disclosure for JWTs (SD-JWT, RFC 9901) with key binding.

Serialization (section 4)::

    <issuer-signed JWT>~<disclosure>~...~<disclosure>~[<KB-JWT>]

A disclosure is ``base64url(JSON [salt, name, value])`` for an object property
(``[salt, value]`` for an array element); the issuer-signed payload carries
the base64url SHA-256 digest of each disclosure in an ``_sd`` array (or
``{"...": digest}`` in an array). Verification (section 7.1) rebuilds the
claims and refuses a disclosure that matches no digest, a digest referenced
twice, a disclosure sent twice, a reserved or clashing claim name.

The key-binding JWT (section 4.3) proves possession of the holder key named
in ``cnf.jwk``: header ``typ: kb+jwt``; payload ``iat``, ``aud``, ``nonce`` and
``sd_hash``, the digest of everything before it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.checks import KEY_BINDING_CHECKS, KeyBindingCase, first_refusal
from clearance.encoding import b64url_decode, b64url_encode, canonical_json, parse_json
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import decode_compact, encode_compact, verify_signature
from clearance.keys import PublicKey, Signer

SD_ALG = "sha-256"
KB_TYP = "kb+jwt"
MAX_PRESENTATION_BYTES = 64 * 1024
MAX_DISCLOSURES = 64
MAX_KB_BYTES = 4096
_RESERVED = frozenset({"_sd", "...", "_sd_alg"})
_STRINGS_ONLY = frozenset({str})

SaltSource = Callable[[], str]
"""Returns a fresh salt; injected so tests can be deterministic."""


class _SaltPool:
    """Salts drawn from the OS in blocks: one system call per 256 salts, not per salt."""

    def __init__(self, block: int = 256) -> None:
        self._block = block
        self._salts: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            if not self._salts:
                data = secrets.token_bytes(16 * self._block)
                self._salts = [b64url_encode(data[i : i + 16]) for i in range(0, len(data), 16)]
            return self._salts.pop()


_SALTS = _SaltPool()


def random_salt() -> str:
    """128 bits of cryptographic randomness, base64url (RFC 9901 section 9.3)."""
    return _SALTS.take()


def digest(text: str) -> str:
    """The SD-JWT digest: base64url(SHA-256(ASCII text)).

    Raises:
        MalformedError: ``text`` is not ASCII (so it cannot be base64url).
    """
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MalformedError("SD-JWT part is not ASCII base64url") from exc
    return b64url_encode(hashlib.sha256(data).digest())


@dataclass(slots=True)
class Disclosure:
    """One disclosure, decoded. ``name`` is ``None`` for an array element."""

    encoded: str
    salt: str
    name: str | None
    value: Any
    digest: str

    @classmethod
    def create(cls, name: str | None, value: Any, salt: str) -> Disclosure:
        """A new disclosure for claim ``name`` (``None``: an array element)."""
        content = [salt, value] if name is None else [salt, name, value]
        encoded = b64url_encode(canonical_json(content))
        return cls(encoded, salt, name, value, digest(encoded))

    @classmethod
    def parse(cls, encoded: str, digest_: str | None = None) -> Disclosure:
        """Decode a disclosure received from outside (``digest_``: its digest, if computed).

        Raises:
            MalformedError: not base64url JSON of a 2- or 3-element array with a
                string salt and (for 3) a non-reserved string name.
        """
        content = parse_json(b64url_decode(encoded, what="disclosure"), what="disclosure", max_bytes=8192)
        if type(content) is not list:
            raise MalformedError("disclosure is not a [salt, name, value] or [salt, value] array")
        if not isinstance(content, list) or len(content) not in (2, 3):
            raise MalformedError("disclosure is not a [salt, name, value] or [salt, value] array")
        salt = content[0]
        if not isinstance(salt, str):
            raise MalformedError("disclosure salt is not a string")
        if len(content) == 3:
            name = content[1]
            if not isinstance(name, str) or name in _RESERVED:
                raise MalformedError("disclosure names a reserved or non-string claim")
            return cls(encoded, salt, name, content[2], digest_ or digest(encoded))
        return cls(encoded, salt, None, content[1], digest_ or digest(encoded))


@dataclass(frozen=True, slots=True)
class IssuedSdJwt:
    """What an issuer hands a holder: the signed JWT and every disclosure."""

    jwt: str
    disclosures: tuple[Disclosure, ...]

    def serialize(self) -> str:
        """``<jwt>~<d1>~...~<dn>~``: the SD-JWT with all disclosures, no key binding."""
        return "~".join([self.jwt, *(d.encoded for d in self.disclosures)]) + "~"


def issue(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    disclosable: Mapping[str, Any],
    key: Signer,
    *,
    salt: SaltSource = random_salt,
    decoys: int = 0,
) -> IssuedSdJwt:
    """Sign an SD-JWT whose top-level ``disclosable`` claims are hidden behind digests.

    Args:
        header: JOSE header members (``typ``, ``kid``); ``alg`` comes from ``key``.
        claims: always-visible claims.
        disclosable: claims the holder may choose to reveal.
        key: the issuer's signing key.
        salt: salt source (injected for tests).
        decoys: number of decoy digests to add, so the count of hidden claims leaks nothing.

    Raises:
        MalformedError: a claim name is reserved or appears in both sets.
    """
    clash = (_RESERVED & (set(claims) | set(disclosable))) | (set(claims) & set(disclosable))
    if clash:
        raise MalformedError(f"claim names reserved or duplicated: {sorted(clash)}")
    disclosures = tuple(Disclosure.create(name, value, salt()) for name, value in disclosable.items())
    digests = [d.digest for d in disclosures] + [digest(salt()) for _ in range(decoys)]
    payload = dict(claims)
    if digests:
        payload["_sd"] = sorted(digests)  # sorted: order reveals nothing about which is which
    payload["_sd_alg"] = SD_ALG
    return IssuedSdJwt(encode_compact(header, payload, key), disclosures)


@dataclass(slots=True)
class SdJwtParts:
    """A serialized SD-JWT split at ``~``; nothing verified yet."""

    jwt: str
    disclosures: list[str]
    key_binding: str | None
    without_key_binding: str
    """What ``sd_hash`` covers: the SD-JWT up to and including the last ``~``."""


def split(serialized: str, *, max_bytes: int = MAX_PRESENTATION_BYTES) -> SdJwtParts:
    """Split an SD-JWT or SD-JWT+KB into its parts.

    Raises:
        MalformedError: too large, not text, no ``~`` separator, too many or empty disclosures.
    """
    if not isinstance(serialized, str):
        raise MalformedError("SD-JWT is not text")
    if len(serialized) > max_bytes:
        raise MalformedError(f"SD-JWT is larger than {max_bytes} bytes", Reason.TOO_LARGE)
    serialized = serialized.strip()
    # find and rfind skip the long JWT and KB-JWT at memchr speed; only the disclosures are split.
    first = serialized.find("~")
    if first < 0:
        raise MalformedError("not an SD-JWT: no '~' separator")
    cut = serialized.rfind("~")
    middle = serialized[first + 1 : cut].split("~") if cut > first else []
    if len(middle) > MAX_DISCLOSURES:
        raise MalformedError(f"more than {MAX_DISCLOSURES} disclosures", Reason.TOO_LARGE)
    if "" in middle:
        raise MalformedError("empty disclosure")
    return SdJwtParts(serialized[:first], middle, serialized[cut + 1 :] or None, serialized[: cut + 1])


def resolve_claims(
    payload: Mapping[str, Any], disclosures: Sequence[str], *, payload_json: str = ""
) -> dict[str, Any]:
    """Rebuild the claims from the signed payload and the disclosures (RFC 9901 section 7.1).

    Args:
        payload: the issuer-signed payload.
        disclosures: the encoded disclosures presented.
        payload_json: the payload's JSON text, if known. When it shows that the only
            ``_sd`` is the top-level one and there are no array digests (and no escapes
            that could hide either), the digests are matched against that one array
            instead of walking every nested object: the result is the same, only faster.

    Raises:
        VerificationError: a disclosure sent twice (``duplicate_disclosure``), one that
            matches no digest or a digest referenced twice (``disclosure_mismatch``).
        MalformedError: malformed disclosures or ``_sd`` structures, an unsupported ``_sd_alg``.
    """
    if payload.get("_sd_alg", SD_ALG) != SD_ALG:
        raise MalformedError("unsupported _sd_alg")
    top = dict(payload)
    top.pop("_sd_alg", None)
    if (
        payload_json
        and "\\" not in payload_json
        and '"..."' not in payload_json
        and payload_json.count('"_sd"') == 1
        and type(top.get("_sd")) is list
    ):
        flat = _resolve_flat(top, disclosures)
        if flat is not None:
            return flat
    by_digest: dict[str, Disclosure] = {}
    for encoded in disclosures:
        disclosure = Disclosure.parse(encoded)
        if disclosure.digest in by_digest:
            raise VerificationError(Reason.DUPLICATE_DISCLOSURE, "a disclosure is sent twice")
        by_digest[disclosure.digest] = disclosure
    seen: set[str] = set()
    try:
        resolved = _resolve(top, by_digest, seen)
    except RecursionError as exc:  # disclosures nested in disclosures, each within the JSON cap
        raise MalformedError("SD-JWT disclosures are nested too deeply", Reason.TOO_DEEP) from exc
    if set(by_digest) - seen:
        raise VerificationError(
            Reason.DISCLOSURE_MISMATCH, "a disclosure does not match any digest in the credential"
        )
    assert isinstance(resolved, dict)
    return resolved


def _resolve_flat(top: dict[str, Any], disclosures: Sequence[str]) -> dict[str, Any] | None:
    """Resolve a payload whose only ``_sd`` array is the top-level one.

    Returns None (take the general path) when a disclosed value is itself an
    object or array, which may hold digests of its own.
    """
    sd = top.pop("_sd")
    if not _STRINGS_ONLY.issuperset(map(type, sd)):
        raise MalformedError("an SD-JWT digest is not a string")
    digests = set(sd)
    if len(digests) != len(sd):
        raise VerificationError(Reason.DISCLOSURE_MISMATCH, "a digest is referenced twice")
    used: set[str] = set()
    found: list[tuple[str, Any]] = []
    for encoded in disclosures:
        hashed = digest(encoded)
        if hashed in used:
            raise VerificationError(Reason.DUPLICATE_DISCLOSURE, "a disclosure is sent twice")
        used.add(hashed)
        if hashed not in digests:
            raise VerificationError(
                Reason.DISCLOSURE_MISMATCH,
                "a disclosure does not match any digest in the credential",
            )
        disclosure = Disclosure.parse(encoded, hashed)
        if disclosure.name is None:
            raise MalformedError("an array-element disclosure is referenced from _sd")
        if type(disclosure.value) in _CONTAINERS:
            top["_sd"] = sd  # untouched so far: the general path starts from the payload as signed
            return None
        found.append((disclosure.name, disclosure.value))
    for name, value in found:
        if name in top:
            raise VerificationError(Reason.DISCLOSURE_MISMATCH, f"disclosed claim {name!r} already exists")
        top[name] = value
    return top


def _claim_digest(value: Any, seen: set[str]) -> str:
    if not isinstance(value, str):
        raise MalformedError("an SD-JWT digest is not a string")
    if value in seen:
        raise VerificationError(Reason.DISCLOSURE_MISMATCH, "a digest is referenced twice")
    seen.add(value)
    return value


_CONTAINERS = (dict, list)


def _resolve(node: Any, by_digest: Mapping[str, Disclosure], seen: set[str]) -> Any:
    if type(node) is dict:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "_sd":
                continue
            if key == "...":
                raise MalformedError("'...' outside an array element")
            out[key] = _resolve(value, by_digest, seen) if type(value) in _CONTAINERS else value
        sd = node.get("_sd")
        if sd is None:
            return out
        if type(sd) is not list:
            raise MalformedError("_sd is not an array")
        for entry in sd:
            disclosure = by_digest.get(_claim_digest(entry, seen))
            if disclosure is None:
                continue  # not disclosed, or a decoy
            if disclosure.name is None:
                raise MalformedError("an array-element disclosure is referenced from _sd")
            if disclosure.name in out:
                raise VerificationError(
                    Reason.DISCLOSURE_MISMATCH,
                    f"disclosed claim {disclosure.name!r} already exists",
                )
            out[disclosure.name] = _resolve(disclosure.value, by_digest, seen)
        return out
    if type(node) is list:
        items: list[Any] = []
        for element in node:
            if type(element) is dict and "..." in element:
                if len(element) != 1:
                    raise MalformedError("array element digest object has extra members")
                disclosure = by_digest.get(_claim_digest(element["..."], seen))
                if disclosure is None:
                    continue
                if disclosure.name is not None:
                    raise MalformedError("an object-property disclosure is referenced from an array")
                items.append(_resolve(disclosure.value, by_digest, seen))
            else:
                items.append(_resolve(element, by_digest, seen) if type(element) in _CONTAINERS else element)
        return items
    return node


def sd_hash(without_key_binding: str) -> str:
    """The ``sd_hash`` a KB-JWT must carry for this SD-JWT."""
    return digest(without_key_binding)


def make_key_binding(
    without_key_binding: str, holder_key: Signer, *, audience: str, nonce: str, issued_at: int
) -> str:
    """Sign a KB-JWT over ``without_key_binding`` for ``audience`` and ``nonce``."""
    return encode_compact(
        {"typ": KB_TYP},
        {
            "iat": issued_at,
            "aud": audience,
            "nonce": nonce,
            "sd_hash": sd_hash(without_key_binding),
        },
        holder_key,
    )


def present(
    issued: str,
    holder_key: Signer,
    *,
    disclose: Iterable[str] = (),
    audience: str,
    nonce: str,
    issued_at: int,
) -> str:
    """Make a presentation: keep only the disclosures named in ``disclose``, then bind it.

    Args:
        issued: the SD-JWT as issued (all disclosures).
        holder_key: the key named in the credential's ``cnf.jwk``.
        disclose: claim names to reveal; everything else stays hidden.
        audience: the verifier's identifier (``aud``).
        nonce: the verifier's challenge.
        issued_at: seconds since the epoch.

    Raises:
        MalformedError: ``issued`` is not an SD-JWT, or names a claim it does not carry.
    """
    parts = split(issued)
    wanted = set(disclose)  # claim names the holder chose to reveal
    kept: list[str] = []
    for encoded in parts.disclosures:
        disclosure = Disclosure.parse(encoded)
        if disclosure.name in wanted:
            kept.append(encoded)
            wanted.discard(disclosure.name)
    if wanted:
        raise MalformedError(f"the credential has no disclosable claim {sorted(wanted)}")
    without_kb = "~".join([parts.jwt, *kept]) + "~"
    return without_kb + make_key_binding(
        without_kb, holder_key, audience=audience, nonce=nonce, issued_at=issued_at
    )


@dataclass(slots=True)
class KeyBinding:
    """A verified key-binding JWT's claims (the nonce is not yet checked for reuse)."""

    issued_at: int
    audience: str
    nonce: str


def verify_key_binding(
    parts: SdJwtParts,
    holder_key: PublicKey,
    *,
    audience: str,
    now: int | None = None,
    leeway: int = 0,
    max_age: int = 0,
) -> KeyBinding:
    """Check the KB-JWT: present, signed by ``holder_key``, then :data:`~clearance.checks.KEY_BINDING_CHECKS`.

    With ``now``, its ``iat`` must lie within ``max_age`` before it (``leeway`` after).

    Raises:
        VerificationError: missing (``key_binding_missing``), bad signature, claims or age
            (``key_binding_invalid``), wrong ``aud`` (``audience_mismatch``), wrong
            ``sd_hash`` (``sd_hash_mismatch``).
    """
    if parts.key_binding is None:
        raise VerificationError(Reason.KEY_BINDING_MISSING, "presentation has no key-binding JWT")
    kb = decode_compact(parts.key_binding, what="key-binding JWT", max_bytes=MAX_KB_BYTES)
    if kb.typ != KB_TYP:
        raise VerificationError(Reason.KEY_BINDING_INVALID, "key-binding JWT typ is not kb+jwt")
    check_key_binding_signature(kb.header.get("alg"), kb.signing_input, kb.signature, holder_key)
    case = KeyBindingCase(kb.payload, sd_hash(parts.without_key_binding), audience, now, leeway, max_age)
    refusal = first_refusal(KEY_BINDING_CHECKS, case)
    if refusal is not None:
        raise refusal
    claims = kb.payload
    return KeyBinding(claims["iat"], claims["aud"], claims["nonce"])


def check_key_binding_signature(
    alg: object, signing_input: bytes, signature: bytes, holder_key: PublicKey
) -> None:
    """Check that ``holder_key`` signed a KB-JWT (a step of :func:`verify_key_binding`).

    Raises:
        VerificationError: ``key_binding_invalid``.
    """
    try:
        verify_signature(alg, signing_input, signature, holder_key, what="key-binding JWT")
    except VerificationError as exc:
        raise VerificationError(Reason.KEY_BINDING_INVALID, exc.detail) from exc
