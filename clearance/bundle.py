"""Trust bundles and root rotation: what a registry's offline root key signs.

A **trust bundle** (compact JWS, header ``typ: clearance-bundle+jwt``, ``kid``
and ``jwk`` = the root key) tells a verifier everything it needs to decide
offline for one jurisdiction: the issuing keys with their validity windows,
the ordered clearance levels (lowest first), the information categories, the
status lists, and the agreements with other registries in force. It carries a
monotonically increasing ``version`` and an ``exp``: a verifier refuses a
bundle older than the one it holds (rollback) and refuses to decide once its
bundle has expired (freeze).

A **threshold bundle** (general JSON JWS, every signature's header ``typ:
clearance-bundle+jws``) carries the same payload, with ``root`` = the
fingerprint of the root document (:mod:`clearance.rootdoc`) whose keys sign
it; it is valid with ``k`` distinct valid signatures of that document's keys.
It sits beside the compact form until registries and nodes switch to it.

A **root rotation** (general JSON JWS, ``typ: clearance-root+jws``) names a new
root key and the thumbprint of the previous one and is signed by *both*, as
TUF does: a verifier that pins the old root follows the chain one step at a
time and never accepts a new root that the old one did not endorse.

Schema (``schema: 1``) of the bundle payload::

    {"schema": 1, "iss": str, "jurisdiction": "JP", "version": int, "iat": int,
     "exp": int, "root": thumbprint,
     "issuing_keys": [{"jwk": JWK, "nbf": int, "exp": int}],
     "levels": [str, ...], "categories": [str, ...],
     "status_lists": [{"uri": str, "bits": int}],
     "agreements": [general JWS, ...], "registry": {"endpoint": str} (optional),
     "issuer_cas": [base64 DER, ...] (optional)}

``issuer_cas`` (additive, present only when the registry issues on the HAIP profile) lists
the registry's issuer CA certificates (:mod:`clearance.certificates`): the ``x5c`` chains of
its credentials and status list tokens must reach one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearance.certificates import check_issuer_ca, decode_x5c, x5c_value
from clearance.credentials import check_jurisdiction, check_token
from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import (
    CompactJWS,
    MultiSignedJWS,
    add_signature,
    decode_compact,
    decode_general,
    encode_compact,
    sign_general,
    verify_compact,
)
from clearance.keys import PublicKey, Signer
from clearance.rootdoc import MAX_SIGNATURES, RootDocument, verify_threshold
from clearance.statuslist import ALLOWED_BITS

BUNDLE_TYP = "clearance-bundle+jwt"
THRESHOLD_BUNDLE_TYP = "clearance-bundle+jws"
ROOT_TYP = "clearance-root+jws"
SCHEMA = 1
MAX_BUNDLE_BYTES = 512 * 1024


def _int(obj: Mapping[str, Any], name: str, what: str) -> int:
    value = obj.get(name)
    if type(value) is not int or value < 0:
        raise MalformedError(f"{what} {name} must be a non-negative integer")
    return value


def _str_list(value: Any, what: str, *, check: Any = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedError(f"{what} must be an array of strings")
    if len(set(value)) != len(value):
        raise MalformedError(f"{what} repeat an entry")
    if check is not None:
        for v in value:
            check(v, what=what)
    return tuple(value)


@dataclass(frozen=True, slots=True)
class IssuingKey:
    """An online issuing key and the window in which it may issue."""

    key: PublicKey
    not_before: int
    not_after: int

    def __post_init__(self) -> None:
        if self.not_after <= self.not_before:
            raise MalformedError("issuing key window ends before it starts")

    def covers(self, issued_at: int) -> bool:
        return self.not_before <= issued_at <= self.not_after

    def to_json(self) -> dict[str, Any]:
        return {"jwk": self.key.jwk, "nbf": self.not_before, "exp": self.not_after}

    @classmethod
    def from_json(cls, obj: Any) -> IssuingKey:
        if not isinstance(obj, Mapping):
            raise MalformedError("issuing key entry is not an object")
        return cls(
            PublicKey.from_jwk(obj.get("jwk")),
            _int(obj, "nbf", "issuing key"),
            _int(obj, "exp", "issuing key"),
        )


@dataclass(frozen=True, slots=True)
class StatusListLocation:
    uri: str
    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri:
            raise MalformedError("status list uri must be a non-empty string")
        if self.bits not in ALLOWED_BITS:
            raise MalformedError(f"status list bits must be one of {ALLOWED_BITS}")

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "bits": self.bits}


@dataclass(frozen=True, slots=True)
class TrustBundle:
    """The signed description of one registry. Construct from trusted values or :meth:`verify`."""

    issuer: str
    jurisdiction: str
    version: int
    issued_at: int
    expires_at: int
    root: str
    issuing_keys: tuple[IssuingKey, ...]
    levels: tuple[str, ...]
    categories: tuple[str, ...]
    status_lists: tuple[StatusListLocation, ...]
    agreements: tuple[dict[str, Any], ...] = ()
    endpoint: str | None = None
    raw: str | None = field(default=None, compare=False)
    issuer_cas: tuple[bytes, ...] = ()
    """DER of the issuer CA certificates (HAIP profile); empty for an Ed25519-only registry."""

    def __post_init__(self) -> None:
        check_jurisdiction(self.jurisdiction)
        if not self.issuer:
            raise MalformedError("bundle iss must not be empty")
        if self.expires_at <= self.issued_at:
            raise MalformedError("bundle expires before it is issued")
        if not self.levels:
            raise MalformedError("bundle names no clearance levels")
        kids = [k.key.thumbprint for k in self.issuing_keys]
        if len(set(kids)) != len(kids):
            raise MalformedError("bundle lists an issuing key twice")
        uris = [s.uri for s in self.status_lists]
        if len(set(uris)) != len(uris):
            raise MalformedError("bundle lists a status list twice")
        if len(set(self.issuer_cas)) != len(self.issuer_cas) or len(self.issuer_cas) > 8:
            raise MalformedError("bundle lists an issuer CA twice, or more than 8")
        for der in self.issuer_cas:
            check_issuer_ca(der)

    # -- lookups -------------------------------------------------------------

    def issuing_key(self, kid: str | None) -> IssuingKey:
        """The issuing key with thumbprint ``kid``.

        Raises:
            VerificationError: no such key in this bundle (``unknown_key``).
        """
        for entry in self.issuing_keys:
            if entry.key.thumbprint == kid:
                return entry
        raise VerificationError(
            Reason.UNKNOWN_KEY,
            f"key {str(kid)[:64]!r} is not an issuing key of {self.jurisdiction}",
        )

    def level_rank(self, level: str) -> int:
        """Position of ``level`` in the ordered levels (0 = lowest).

        Raises:
            VerificationError: the level is not one of this jurisdiction's (``invalid_claim``).
        """
        try:
            return self.levels.index(level)
        except ValueError:
            raise VerificationError(
                Reason.INVALID_CLAIM, f"{level!r} is not a clearance level of {self.jurisdiction}"
            ) from None

    def status_list_location(self, uri: str) -> StatusListLocation | None:
        for location in self.status_lists:
            if location.uri == uri:
                return location
        return None

    # -- wire form -----------------------------------------------------------

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "schema": SCHEMA,
            "iss": self.issuer,
            "jurisdiction": self.jurisdiction,
            "version": self.version,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "root": self.root,
            "issuing_keys": [k.to_json() for k in self.issuing_keys],
            "levels": list(self.levels),
            "categories": list(self.categories),
            "status_lists": [s.to_json() for s in self.status_lists],
            "agreements": list(self.agreements),
        }
        if self.endpoint:
            payload["registry"] = {"endpoint": self.endpoint}
        if self.issuer_cas:
            payload["issuer_cas"] = x5c_value(self.issuer_cas)
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], raw: str | None = None) -> TrustBundle:
        """Build from a decoded payload, checking every field.

        Raises:
            MalformedError: a missing or ill-typed field, or an unknown schema.
        """
        if payload.get("schema") != SCHEMA:
            raise MalformedError(f"unsupported trust bundle schema {str(payload.get('schema'))[:20]!r}")
        keys = payload.get("issuing_keys")
        lists = payload.get("status_lists")
        agreements = payload.get("agreements", [])
        if not isinstance(keys, list) or not isinstance(lists, list) or not isinstance(agreements, list):
            raise MalformedError("bundle issuing_keys, status_lists and agreements must be arrays")
        if not all(isinstance(a, Mapping) for a in agreements):
            raise MalformedError("bundle agreements must be JWS objects")
        for entry in lists:
            if not isinstance(entry, Mapping):
                raise MalformedError("bundle status list entry is not an object")
        registry = payload.get("registry")
        endpoint = registry.get("endpoint") if isinstance(registry, Mapping) else None
        issuer, root = payload.get("iss"), payload.get("root")
        if not isinstance(issuer, str) or not isinstance(root, str):
            raise MalformedError("bundle iss and root must be strings")
        return cls(
            issuer=issuer,
            jurisdiction=payload.get("jurisdiction"),  # type: ignore[arg-type]  # checked in __post_init__
            version=_int(payload, "version", "bundle"),
            issued_at=_int(payload, "iat", "bundle"),
            expires_at=_int(payload, "exp", "bundle"),
            root=root,
            issuing_keys=tuple(IssuingKey.from_json(k) for k in keys),
            levels=_str_list(payload.get("levels"), "bundle levels", check=check_token),
            categories=_str_list(payload.get("categories"), "bundle categories", check=check_token),
            status_lists=tuple(StatusListLocation(e.get("uri"), e.get("bits")) for e in lists),
            agreements=tuple(dict(a) for a in agreements),
            endpoint=endpoint if isinstance(endpoint, str) else None,
            raw=raw,
            issuer_cas=decode_x5c(payload["issuer_cas"], max_items=8) if "issuer_cas" in payload else (),
        )

    def sign(self, root_key: Signer) -> str:
        """Sign this bundle with the root key (which must be the one it names)."""
        if root_key.kid != self.root:
            raise MalformedError("bundle names another root than the key signing it")
        header = {"typ": BUNDLE_TYP, "kid": root_key.kid, "jwk": root_key.public.jwk}
        return encode_compact(header, self.to_payload(), root_key)

    @classmethod
    def parse(cls, token: str) -> tuple[TrustBundle, CompactJWS]:
        """Decode a bundle without checking who signed it (for inspection).

        Raises:
            MalformedError: bad structure or fields.
            VerificationError: forbidden algorithm or wrong ``typ``.
        """
        jws = decode_compact(token, what="trust bundle", max_bytes=MAX_BUNDLE_BYTES, typ=BUNDLE_TYP)
        return cls.from_payload(jws.payload, raw=token), jws

    @classmethod
    def verify(cls, token: str, root: PublicKey) -> TrustBundle:
        """Decode a bundle and check that ``root`` signed it and that it names ``root``.

        Raises:
            MalformedError: bad structure or fields.
            VerificationError: signed by another key (``root_mismatch``) or a bad signature.
        """
        bundle, jws = cls.parse(token)
        if jws.kid != root.thumbprint or bundle.root != root.thumbprint:
            raise VerificationError(Reason.ROOT_MISMATCH, "trust bundle is not signed by the trusted root")
        verify_compact(jws, root, what="trust bundle")
        return bundle

    @staticmethod
    def header_root(token: str) -> PublicKey:
        """The root key a bundle claims to be signed by (trust it only after checking it).

        Raises:
            MalformedError: no usable ``jwk`` in the header.
        """
        jws = decode_compact(token, what="trust bundle", max_bytes=MAX_BUNDLE_BYTES, typ=BUNDLE_TYP)
        return PublicKey.from_jwk(jws.header.get("jwk"))


@dataclass(frozen=True, slots=True)
class RootRotation:
    """A new root endorsed by the previous one (both sign the same payload)."""

    jurisdiction: str
    version: int
    new_root: PublicKey
    previous: str
    issued_at: int
    document: MultiSignedJWS

    @classmethod
    def create(
        cls, *, jurisdiction: str, version: int, old: Signer, new: Signer, issued_at: int
    ) -> RootRotation:
        payload = {
            "schema": SCHEMA,
            "jurisdiction": jurisdiction,
            "version": version,
            "root": new.public.jwk,
            "previous": old.kid,
            "iat": issued_at,
        }
        header = {"typ": ROOT_TYP}
        doc = sign_general(payload, [(old, header), (new, header)])
        return cls(jurisdiction, version, new.public, old.kid, issued_at, doc)

    @classmethod
    def parse(cls, obj: Any) -> RootRotation:
        """Decode without verifying.

        Raises:
            MalformedError: wrong shape or fields.
        """
        doc = decode_general(obj, what="root rotation", typ=ROOT_TYP, max_signatures=2)
        p = doc.payload
        if p.get("schema") != SCHEMA or not isinstance(p.get("previous"), str):
            raise MalformedError("root rotation has an unsupported schema or no previous root")
        return cls(
            check_jurisdiction(p.get("jurisdiction")),
            _int(p, "version", "root rotation"),
            PublicKey.from_jwk(p.get("root")),
            p["previous"],
            _int(p, "iat", "root rotation"),
            doc,
        )

    def verify_from(self, current: PublicKey) -> PublicKey:
        """Check this rotation follows ``current``; return the new root.

        Raises:
            VerificationError: it does not name ``current`` as previous, or is not
                signed by both the current and the new root (``rotation_invalid``).
        """
        if self.previous != current.thumbprint:
            raise VerificationError(Reason.ROTATION_INVALID, "root rotation does not follow the trusted root")
        if self.new_root == current:
            raise VerificationError(Reason.ROTATION_INVALID, "root rotation keeps the same key")
        try:
            self.document.signed_by(current, what="root rotation")
            self.document.signed_by(self.new_root, what="root rotation")
        except VerificationError as exc:
            raise VerificationError(Reason.ROTATION_INVALID, exc.detail) from exc
        return self.new_root


def follow_rotations(current: PublicKey, rotations: Sequence[RootRotation]) -> PublicKey:
    """Walk a chain of rotations from ``current``; return the last root.

    Raises:
        VerificationError: any link is not endorsed by its predecessor.
    """
    for rotation in rotations:
        current = rotation.verify_from(current)
    return current


# -- threshold bundles (k-of-n roots) ------------------------------------------


def unsigned_threshold_bundle(bundle: TrustBundle) -> MultiSignedJWS:
    """``bundle`` as a general JWS with no signatures yet: what a signing request carries.

    ``bundle.root`` must be the fingerprint of the root document that will sign it.
    """
    payload = bundle.to_payload()
    return MultiSignedJWS(payload, b64url_encode(canonical_json(payload)), ())


def sign_threshold_bundle(bundle: TrustBundle, signers: Sequence[Signer]) -> MultiSignedJWS:
    """Sign ``bundle`` with several root keys at once (where they are all at hand)."""
    doc = unsigned_threshold_bundle(bundle)
    for signer in signers:
        doc = add_signature(doc, signer, {"typ": THRESHOLD_BUNDLE_TYP})
    return doc


def parse_threshold_bundle(obj: Any) -> tuple[TrustBundle, MultiSignedJWS]:
    """Decode a threshold bundle without checking who signed it (for inspection).

    Raises:
        MalformedError: bad structure or fields.
        VerificationError: a forbidden algorithm or a wrong ``typ``.
    """
    doc = decode_general(obj, what="trust bundle", typ=THRESHOLD_BUNDLE_TYP, max_signatures=MAX_SIGNATURES)
    raw = canonical_json(doc.to_json()).decode("ascii")
    return TrustBundle.from_payload(doc.payload, raw=raw), doc


def verify_threshold_bundle(obj: Any, root: RootDocument) -> TrustBundle:
    """Decode a threshold bundle and check that ``k`` distinct keys of ``root`` signed it.

    Raises:
        MalformedError: bad structure or fields.
        VerificationError: the bundle names another root document or jurisdiction
            (``root_mismatch``: another registry's bundle), or fewer than ``k``
            valid signatures by keys of ``root`` (``threshold_not_met``).
    """
    bundle, doc = parse_threshold_bundle(obj)
    if bundle.root != root.fingerprint or bundle.jurisdiction != root.jurisdiction:
        raise VerificationError(
            Reason.ROOT_MISMATCH, "trust bundle names another root than the trusted root document"
        )
    verify_threshold(doc, root, typ=THRESHOLD_BUNDLE_TYP, what=f"trust bundle v{bundle.version}")
    return bundle
