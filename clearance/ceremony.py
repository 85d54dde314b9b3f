"""Signing ceremonies: the online side asks, the offline side shows and signs, the online side assembles.

A **signing request** (``type: clearance-signing-request``) is a small JSON
document::

    {"type": "clearance-signing-request", "schema": 1, "kind": "bundle",
     "payload": base64url, "sha256": hex, "summary": [str, ...], "created": int}

``payload`` is the exact JWS payload to sign (base64url, as it will appear in
the signed document), ``sha256`` the hash of its bytes, and ``summary`` what
the online side says changed since the last signed document. The offline side
trusts none of it blindly: :func:`sign_request` refuses a request whose hash
does not match its payload or whose payload is not a document of its kind,
and a person compares the facts decoded from the payload
(:func:`clearance.changes.describe_payload`) with the summary before signing.

A **detached signature** (``type: clearance-detached-signature``) is one JWS
signature (RFC 7515 section 7.2.1 ``protected`` and ``signature`` members,
payload detached as in appendix F) with the request's hash. The protected
header is ``{"alg", "kid", "typ"}`` with the ``typ`` of the kind, so a
signature over a bundle cannot be replayed as a signature over an agreement.

:func:`assemble` combines detached signatures into the signed document and
refuses any signature over anything other than exactly the request's payload,
a key's second signature, a key outside the authorities, or fewer than ``k``.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.agreement import AGREEMENT_TYP
from clearance.bundle import THRESHOLD_BUNDLE_TYP
from clearance.changes import describe_payload
from clearance.encoding import b64url_decode, b64url_encode, canonical_json, parse_json_object
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import MultiSignedJWS, Signature, verify_signature
from clearance.keys import ALLOWED_ALGS, PublicKey, Signer
from clearance.rootdoc import MAX_SIGNATURES, ROOT_DOCUMENT_TYP, RootDocument, verify_threshold

REQUEST_TYPE = "clearance-signing-request"
SIGNATURE_TYPE = "clearance-detached-signature"
SCHEMA = 1
MAX_REQUEST_BYTES = 1 << 20
MAX_SUMMARY_LINES = 200
MAX_SUMMARY_LINE = 300
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
"""Control, zero-width and bidirectional characters: nothing a summary line may use to hide text."""


class Kind(enum.StrEnum):
    """What a signing request asks to sign."""

    BUNDLE = "bundle"
    AGREEMENT = "agreement"
    ROOT = "root"

    @property
    def typ(self) -> str:
        """The ``typ`` every signature of this kind carries in its protected header."""
        return {
            Kind.BUNDLE: THRESHOLD_BUNDLE_TYP,
            Kind.AGREEMENT: AGREEMENT_TYP,
            Kind.ROOT: ROOT_DOCUMENT_TYP,
        }[self]


def payload_sha256(payload_b64: str) -> str:
    """Hex SHA-256 of the payload bytes (what both machines show, so people can compare)."""
    return hashlib.sha256(b64url_decode(payload_b64, what="request payload")).hexdigest()


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """What the online side asks the holders of root keys to sign."""

    kind: Kind
    payload_b64: str
    sha256: str
    summary: tuple[str, ...]
    created: int

    def __post_init__(self) -> None:
        if not _HEX64.fullmatch(self.sha256):
            raise MalformedError("signing request sha256 must be 64 lower-case hex digits")
        if len(self.summary) > MAX_SUMMARY_LINES:
            raise MalformedError(f"signing request summary has more than {MAX_SUMMARY_LINES} lines")
        for line in self.summary:
            if not isinstance(line, str) or len(line) > MAX_SUMMARY_LINE or _CONTROL.search(line):
                raise MalformedError("signing request summary lines must be short printable text")

    @classmethod
    def create(
        cls, kind: Kind, payload: MultiSignedJWS | str, summary: Sequence[str], *, created: int
    ) -> SigningRequest:
        """A request to sign ``payload`` (an unsigned document, or its base64url payload).

        Raises:
            MalformedError: a summary line too long or with control characters.
        """
        payload_b64 = payload if isinstance(payload, str) else payload.payload_b64
        return cls(Kind(kind), payload_b64, payload_sha256(payload_b64), tuple(summary), created)

    @property
    def payload(self) -> dict[str, Any]:
        """The decoded payload (a JSON object).

        Raises:
            MalformedError: not a JSON object.
        """
        return parse_json_object(
            b64url_decode(self.payload_b64, what="request payload"),
            what="request payload",
            max_bytes=MAX_REQUEST_BYTES,
        )

    def check_hash(self) -> None:
        """Refuse a request whose hash is not its payload's (altered on the way).

        Raises:
            VerificationError: ``payload_mismatch``.
        """
        if payload_sha256(self.payload_b64) != self.sha256:
            raise VerificationError(
                Reason.PAYLOAD_MISMATCH,
                "the request's sha256 does not match its payload: it was altered; sign nothing",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": REQUEST_TYPE,
            "schema": SCHEMA,
            "kind": self.kind.value,
            "payload": self.payload_b64,
            "sha256": self.sha256,
            "summary": list(self.summary),
            "created": self.created,
        }

    @classmethod
    def parse(cls, obj: Any) -> SigningRequest:
        """Decode a request (its hash is checked by :meth:`check_hash`).

        Raises:
            MalformedError: wrong shape or an unknown kind.
        """
        if not isinstance(obj, Mapping) or obj.get("type") != REQUEST_TYPE or obj.get("schema") != SCHEMA:
            raise MalformedError("not a clearance signing request (schema 1)")
        kind, payload, sha, summary, created = (
            obj.get("kind"),
            obj.get("payload"),
            obj.get("sha256"),
            obj.get("summary"),
            obj.get("created"),
        )
        if kind not in {k.value for k in Kind}:
            raise MalformedError(f"unknown signing request kind {str(kind)[:20]!r}")
        if not isinstance(payload, str) or not isinstance(sha, str) or type(created) is not int:
            raise MalformedError("signing request payload, sha256 and created are required")
        if not isinstance(summary, list) or not all(isinstance(line, str) for line in summary):
            raise MalformedError("signing request summary must be an array of strings")
        b64url_decode(payload, what="request payload")
        return cls(Kind(kind), payload, sha, tuple(summary), created)

    @classmethod
    def loads(cls, text: str | bytes) -> SigningRequest:
        """Parse a request file's content.

        Raises:
            MalformedError: not JSON, too large, or not a request.
        """
        return cls.parse(parse_json_object(text, what="signing request", max_bytes=MAX_REQUEST_BYTES))


@dataclass(frozen=True, slots=True)
class DetachedSignature:
    """One official's signature over a request's payload, carried without the payload."""

    sha256: str
    protected: str
    signature: bytes
    header: dict[str, Any]

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": SIGNATURE_TYPE,
            "schema": SCHEMA,
            "sha256": self.sha256,
            "protected": self.protected,
            "signature": b64url_encode(self.signature),
        }

    @classmethod
    def parse(cls, obj: Any) -> DetachedSignature:
        """Decode a detached signature (verified only by :func:`assemble`).

        Raises:
            MalformedError: wrong shape, a header without ``kid``, or an
                algorithm outside the allow-list.
        """
        if not isinstance(obj, Mapping) or obj.get("type") != SIGNATURE_TYPE or obj.get("schema") != SCHEMA:
            raise MalformedError("not a clearance detached signature (schema 1)")
        sha, protected, signature = obj.get("sha256"), obj.get("protected"), obj.get("signature")
        if not isinstance(sha, str) or not isinstance(protected, str) or not isinstance(signature, str):
            raise MalformedError("detached signature needs sha256, protected and signature")
        header = parse_json_object(
            b64url_decode(protected, what="signature header"), what="signature header", max_bytes=4096
        )
        if not isinstance(header.get("kid"), str) or header.get("alg") not in ALLOWED_ALGS:
            raise MalformedError("detached signature header needs a kid and an allowed alg")
        return cls(sha, protected, b64url_decode(signature, what="signature"), header)

    @classmethod
    def loads(cls, text: str | bytes) -> DetachedSignature:
        """Parse a signature file's content.

        Raises:
            MalformedError: not JSON or not a detached signature.
        """
        return cls.parse(parse_json_object(text, what="detached signature", max_bytes=16_384))


def sign_request(request: SigningRequest, signer: Signer) -> DetachedSignature:
    """Sign exactly the request's payload (the offline side, after a person confirmed).

    Raises:
        VerificationError: the hash does not match the payload (``payload_mismatch``).
        MalformedError: the payload is not a document of the request's kind.
        ClearanceError: the key could not sign (a token error, say).
    """
    request.check_hash()
    describe_payload(request.kind, request.payload)  # refuse what would not parse as its kind
    header = {"alg": signer.alg, "kid": signer.kid, "typ": request.kind.typ}
    protected = b64url_encode(canonical_json(header))
    signature = signer.sign((protected + "." + request.payload_b64).encode("ascii"))
    return DetachedSignature(request.sha256, protected, signature, header)


def assemble(
    request: SigningRequest, signatures: Sequence[DetachedSignature], authorities: Sequence[RootDocument]
) -> MultiSignedJWS:
    """Combine detached signatures into the signed document; each authority's threshold must be met.

    ``authorities`` are the root sets whose keys may sign: the current root for
    a bundle or our side of an agreement; the previous root and the new one for
    a rotation (see :func:`assemble_root`).

    Raises:
        VerificationError: the request was altered or a signature is over anything
            but its payload (``payload_mismatch``), a key signed twice
            (``duplicate_signature``), a key outside the authorities (``unknown_key``),
            an alg or typ that does not fit (``algorithm_not_allowed``, ``wrong_type``),
            fewer than ``k`` of an authority (``threshold_not_met``).
    """
    request.check_hash()
    known: dict[str, PublicKey] = {k.thumbprint: k for root in authorities for k in root.keys}
    seen: set[str] = set()
    parsed: list[Signature] = []
    for detached in signatures:
        who = f"signature by {str(detached.kid)[:64]}"
        if detached.sha256 != request.sha256:
            raise VerificationError(
                Reason.PAYLOAD_MISMATCH, f"{who} is over another payload than this request's"
            )
        if detached.kid in seen:
            raise VerificationError(Reason.DUPLICATE_SIGNATURE, f"{who} is given twice")
        key = known.get(detached.kid or "")
        if key is None:
            raise VerificationError(Reason.UNKNOWN_KEY, f"{who}: that key may not sign this request")
        if detached.header.get("typ") != request.kind.typ:
            raise VerificationError(Reason.WRONG_TYPE, f"{who} was made for another kind of document")
        signing_input = (detached.protected + "." + request.payload_b64).encode("ascii")
        try:
            verify_signature(detached.header.get("alg"), signing_input, detached.signature, key, what=who)
        except VerificationError as exc:
            if exc.reason is not Reason.BAD_SIGNATURE:
                raise
            raise VerificationError(
                Reason.PAYLOAD_MISMATCH, f"{who} does not verify over this request's payload"
            ) from exc
        seen.add(key.thumbprint)
        parsed.append(Signature(detached.header, detached.protected, detached.signature))
    if len(parsed) > MAX_SIGNATURES:
        raise MalformedError(f"more than {MAX_SIGNATURES} signatures")
    doc = MultiSignedJWS(request.payload, request.payload_b64, tuple(parsed))
    for root in authorities:
        verify_threshold(doc, root, typ=request.kind.typ, what=f"{request.kind.value} request")
    return doc


def assemble_root(
    request: SigningRequest, signatures: Sequence[DetachedSignature], previous: RootDocument | None
) -> RootDocument:
    """The signed root document of a ``root`` request: ``k`` of ``previous`` and ``k'`` of its own.

    ``previous`` is None only for version 1.

    Raises:
        VerificationError: as :func:`assemble`, or the new document does not follow
            ``previous`` (``version_not_next``, ``rotation_invalid``).
        MalformedError: the request is not a root request or its payload not a root document.
    """
    if request.kind is not Kind.ROOT:
        raise MalformedError("not a root signing request")
    new = RootDocument.from_payload(request.payload)
    if new.payload_b64 != request.payload_b64:
        raise MalformedError("the request's root document payload is not canonical")
    if previous is None and new.version != 1:
        raise VerificationError(Reason.VERSION_NOT_NEXT, f"root v{new.version} needs the root it follows")
    authorities = [new] if previous is None else [previous, new]
    signed = RootDocument.from_payload(request.payload, assemble(request, signatures, authorities))
    if previous is None:
        signed.verify_self_signed()
        return signed
    return previous.verify_successor(signed)
