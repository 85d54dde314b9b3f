"""Threshold root documents (k-of-n), as TUF roots are: who may sign for a registry.

A **root document** lists ``n`` public keys and a threshold ``k``, for one
jurisdiction, with a version. It is a JWS in the general JSON serialization
(RFC 7515 section 7.2.1), every signature's protected header carrying
``typ: clearance-rootdoc+jws``; its payload::

    {"schema": 1, "jurisdiction": "JP", "version": 1, "iat": int,
     "threshold": 2, "keys": [JWK, JWK, JWK]}

The payload is canonical JSON (RFC 8785-style: sorted members, no spaces),
and a document whose payload is not is refused, so one document has exactly
one encoding. Its **fingerprint** (what a node pins) is the SHA-256 of those
bytes, base64url-encoded; it does not depend on the signatures.

Rules (TUF specification 1.0, section 5.3 "Update the root role"):

* version 1 is valid with ``k`` valid signatures of its own keys;
* version ``v + 1`` is valid only with ``k`` valid signatures of version
  ``v``'s keys **and** ``k'`` of its own, and only if its version is exactly
  ``v + 1`` and its jurisdiction is the same;
* a payload is signed by a root set when at least ``k`` **distinct** keys of
  that set made valid signatures over it; a key counted twice counts once,
  and signatures by keys outside the set (an unknown key, a key of an older
  set) do not count.

A single-key root is simply a 1-of-1 document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.credentials import check_jurisdiction
from clearance.encoding import b64url_decode, b64url_encode, canonical_json
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import MultiSignedJWS, add_signature, decode_general
from clearance.keys import PublicKey, Signer, alg_matches

ROOT_DOCUMENT_TYP = "clearance-rootdoc+jws"
SCHEMA = 1
MAX_ROOT_KEYS = 16
MAX_SIGNATURES = 2 * MAX_ROOT_KEYS
"""A rotation carries signatures of two sets; an agreement, of two parties' sets."""


def fingerprint_of(payload_b64: str) -> str:
    """The fingerprint of a document whose payload is ``payload_b64``."""
    return b64url_encode(hashlib.sha256(b64url_decode(payload_b64, what="payload")).digest())


@dataclass(frozen=True, slots=True)
class RootDocument:
    """One version of a registry's root set. Signatures live in :attr:`document`."""

    jurisdiction: str
    version: int
    threshold: int
    keys: tuple[PublicKey, ...]
    issued_at: int
    document: MultiSignedJWS | None = None
    """The signed form; ``None`` for a draft not yet signed."""

    def __post_init__(self) -> None:
        check_jurisdiction(self.jurisdiction)
        if type(self.version) is not int or self.version < 1:
            raise MalformedError("root document version must be a positive integer")
        if not 1 <= len(self.keys) <= MAX_ROOT_KEYS:
            raise MalformedError(f"a root document lists 1 to {MAX_ROOT_KEYS} keys")
        if type(self.threshold) is not int or not 1 <= self.threshold <= len(self.keys):
            raise MalformedError("root document threshold must be between 1 and the number of keys")
        if len({k.thumbprint for k in self.keys}) != len(self.keys):
            raise MalformedError("root document lists a key twice")
        if self.document is not None and self.document.payload_b64 != self.payload_b64:
            raise MalformedError("root document signatures are over another payload")

    # -- wire form -----------------------------------------------------------

    def to_payload(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "jurisdiction": self.jurisdiction,
            "version": self.version,
            "iat": self.issued_at,
            "threshold": self.threshold,
            "keys": [k.jwk for k in self.keys],
        }

    @property
    def payload_b64(self) -> str:
        """The exact payload every signature covers."""
        return b64url_encode(canonical_json(self.to_payload()))

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical payload, base64url: what a node pins."""
        return fingerprint_of(self.payload_b64)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], document: MultiSignedJWS | None = None) -> RootDocument:
        """Build from a decoded payload, checking every field.

        Raises:
            MalformedError: a missing or ill-typed field, an unknown schema, bad keys.
        """
        if not isinstance(payload, Mapping) or payload.get("schema") != SCHEMA:
            raise MalformedError("unsupported root document schema")
        keys, version = payload.get("keys"), payload.get("version")
        threshold, iat = payload.get("threshold"), payload.get("iat")
        if not isinstance(keys, list) or len(keys) > MAX_ROOT_KEYS:
            raise MalformedError(f"root document keys must be an array of at most {MAX_ROOT_KEYS}")
        if type(version) is not int or type(threshold) is not int or type(iat) is not int or iat < 0:
            raise MalformedError("root document version, threshold and iat must be integers")
        extra = set(payload) - {"schema", "jurisdiction", "version", "iat", "threshold", "keys"}
        if extra:
            raise MalformedError(f"root document has unknown members {sorted(extra)[:5]}")
        return cls(
            check_jurisdiction(payload.get("jurisdiction")),
            version,
            threshold,
            tuple(PublicKey.from_jwk(k) for k in keys),
            iat,
            document,
        )

    @classmethod
    def parse(cls, obj: Any) -> RootDocument:
        """Decode a signed root document without verifying its signatures.

        Raises:
            MalformedError: wrong shape or fields, or a payload that is not canonical.
            VerificationError: a forbidden algorithm or a wrong ``typ``.
        """
        doc = decode_general(obj, what="root document", typ=ROOT_DOCUMENT_TYP, max_signatures=MAX_SIGNATURES)
        if b64url_encode(canonical_json(doc.payload)) != doc.payload_b64:
            raise MalformedError("root document payload is not canonical JSON")
        return cls.from_payload(doc.payload, doc)

    def to_json(self) -> dict[str, Any]:
        """The signed document (general JSON JWS).

        Raises:
            MalformedError: a draft that carries no signature yet.
        """
        if self.document is None or not self.document.signatures:
            raise MalformedError("an unsigned root document cannot be serialized")
        return self.document.to_json()

    # -- signing -------------------------------------------------------------

    def unsigned(self) -> MultiSignedJWS:
        """The document with no signatures: what a signing request carries."""
        return MultiSignedJWS(self.to_payload(), self.payload_b64, ())

    def sign(self, signers: Sequence[Signer]) -> RootDocument:
        """Return this document with signatures by ``signers`` added.

        A first version is signed by its own keys; a rotation by keys of the
        previous version and of its own (:meth:`verify_successor` checks both).
        """
        doc = self.document or self.unsigned()
        for signer in signers:
            doc = add_signature(doc, signer, {"typ": ROOT_DOCUMENT_TYP})
        return RootDocument(self.jurisdiction, self.version, self.threshold, self.keys, self.issued_at, doc)

    # -- checks --------------------------------------------------------------

    def key(self, kid: str | None) -> PublicKey | None:
        """The key of this set with thumbprint ``kid``, if any."""
        return next((k for k in self.keys if k.thumbprint == kid), None)

    def verify_self_signed(self) -> frozenset[str]:
        """Check that ``k`` of this document's own keys signed it (a first version, or a pinned one).

        Returns:
            The thumbprints whose signatures counted.

        Raises:
            VerificationError: ``threshold_not_met``.
        """
        return verify_threshold(self._signed(), self, typ=ROOT_DOCUMENT_TYP, what=f"root v{self.version}")

    def verify_successor(self, new: RootDocument) -> RootDocument:
        """Check that ``new`` validly follows this (trusted) document; return it.

        Raises:
            VerificationError: another jurisdiction (``rotation_invalid``), a version
                other than this one's plus one (``version_not_next``), fewer than ``k``
                valid signatures of this set or fewer than ``k'`` of its own
                (``threshold_not_met``).
        """
        if new.jurisdiction != self.jurisdiction:
            raise VerificationError(Reason.ROTATION_INVALID, "root rotation is for another jurisdiction")
        if new.version != self.version + 1:
            raise VerificationError(
                Reason.VERSION_NOT_NEXT,
                f"root v{new.version} cannot follow v{self.version}; only v{self.version + 1} can",
            )
        signed = new._signed()
        verify_threshold(
            signed, self, typ=ROOT_DOCUMENT_TYP, what=f"root v{new.version} (by the keys of v{self.version})"
        )
        verify_threshold(signed, new, typ=ROOT_DOCUMENT_TYP, what=f"root v{new.version} (by its own keys)")
        return new

    def _signed(self) -> MultiSignedJWS:
        if self.document is None:
            raise VerificationError(Reason.THRESHOLD_NOT_MET, f"root v{self.version} is not signed")
        return self.document


def verify_threshold(doc: MultiSignedJWS, root: RootDocument, *, typ: str, what: str) -> frozenset[str]:
    """Check that at least ``root.threshold`` distinct keys of ``root`` validly signed ``doc``.

    Signatures by keys outside the set, with another ``typ`` or ``alg`` than
    their key's, or that do not verify, do not count; a key's second signature
    counts once.

    Returns:
        The thumbprints whose signatures counted.

    Raises:
        VerificationError: ``threshold_not_met``, saying how many counted and why others did not.
    """
    valid: set[str] = set()
    unknown = bad = 0
    for sig in doc.signatures:
        key = root.key(sig.kid)
        if key is None:
            unknown += 1
            continue
        if sig.kid in valid:
            continue
        if sig.header.get("typ") != typ or not alg_matches(sig.header.get("alg"), key.alg):
            bad += 1
            continue
        try:
            key.verify(sig.signature, (sig.protected + "." + doc.payload_b64).encode("ascii"))
        except VerificationError:
            bad += 1
            continue
        valid.add(key.thumbprint)
    if len(valid) < root.threshold:
        why = [f"{unknown} by keys outside the set"] if unknown else []
        why += [f"{bad} that do not verify"] if bad else []
        raise VerificationError(
            Reason.THRESHOLD_NOT_MET,
            f"{what} carries {len(valid)} valid signature(s) of {root.jurisdiction} root v{root.version}'s "
            f"keys; {root.threshold} of {len(root.keys)} required" + (f" ({', '.join(why)})" if why else ""),
        )
    return frozenset(valid)


def follow_root_chain(pinned_fingerprint: str, documents: Sequence[RootDocument]) -> RootDocument:
    """The newest root reachable from a pinned one through ``documents`` (oldest first).

    The history may begin before the pinned document (a registry publishes
    all of it); documents before the pinned one are ignored. The pinned one
    must be signed by ``k`` of its own keys, and each later one must follow
    its predecessor (:meth:`RootDocument.verify_successor`).

    Raises:
        VerificationError: the pinned document is not in ``documents``
            (``root_mismatch``), or a link is refused (``threshold_not_met``,
            ``version_not_next``, ``rotation_invalid``).
    """
    start = next((i for i, d in enumerate(documents) if d.fingerprint == pinned_fingerprint), None)
    if start is None:
        raise VerificationError(Reason.ROOT_MISMATCH, "the root history does not contain the pinned root")
    current = documents[start]
    current.verify_self_signed()
    for document in documents[start + 1 :]:
        current = current.verify_successor(document)
    return current
