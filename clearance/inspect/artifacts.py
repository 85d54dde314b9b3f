"""Recognizing an artifact's kind from its content (never from a file name), and inspecting it."""

from __future__ import annotations

from typing import IO, Any

from clearance.encoding import b64url_decode, parse_json_object
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.inspect.credentials import SdJwtInspector, VisitAssuranceInspector
from clearance.inspect.documents import (
    AgreementInspector,
    BareStatusListInspector,
    RootRotationInspector,
    StatusDeltaInspector,
    StatusListTokenInspector,
    TrustBundleInspector,
)
from clearance.inspect.report import Inspector, Report
from clearance.inspect.trust import Trust

MAX_INPUT_BYTES = 4 * 1024 * 1024 + 1024
"""The largest artifact (a status list token, ``clearance.statuslist.MAX_TOKEN_BYTES``) plus white space."""


def read_artifact(stream: IO[bytes]) -> str:
    """The input as text, stripped of surrounding white space.

    Raises:
        MalformedError: too large, not UTF-8, or empty.
    """
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise MalformedError(f"input is larger than {MAX_INPUT_BYTES} bytes", Reason.TOO_LARGE)
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise MalformedError("input is not UTF-8 text") from exc
    if not text:
        raise MalformedError("input is empty")
    return text


def detect(text: str) -> Inspector:
    """The inspector for the artifact ``text`` holds.

    Raises:
        MalformedError: not a clearance artifact, or undecodable.
        VerificationError: a ``typ`` we do not know (``wrong_type``).
    """
    if text.startswith("{"):
        return _detect_json(parse_json_object(text, what="input", max_bytes=MAX_INPUT_BYTES))
    if "~" in text:
        return SdJwtInspector(text)
    if text.count(".") == 2:
        return _detect_compact(text)
    raise MalformedError(
        "input is not a clearance artifact: expected a compact JWS, an SD-JWT (with '~') or a JSON document"
    )


def _detect_compact(text: str) -> Inspector:
    from clearance.bundle import BUNDLE_TYP
    from clearance.credentials import SD_JWT_VC_TYP
    from clearance.sdjwt import KB_TYP
    from clearance.statusdelta import STATUS_DELTA_TYP
    from clearance.statuslist import STATUS_LIST_TYP
    from clearance.visit import VISIT_TYP

    encoded = text.split(".", 1)[0]
    if len(encoded) > 4096:
        raise MalformedError("token header is too large", Reason.TOO_LARGE)
    header = parse_json_object(
        b64url_decode(encoded, what="token header"), what="token header", max_bytes=4096
    )
    typ = header.get("typ")
    if typ == STATUS_LIST_TYP:
        return StatusListTokenInspector(text)
    if typ == STATUS_DELTA_TYP:
        return StatusDeltaInspector(text)
    if typ == BUNDLE_TYP:
        return TrustBundleInspector(text)
    if typ == VISIT_TYP:
        return VisitAssuranceInspector(text)
    if typ == SD_JWT_VC_TYP:
        raise MalformedError("an SD-JWT VC ends with '~' (RFC 9901 section 4); this one has none")
    if typ == KB_TYP:
        raise VerificationError(
            Reason.WRONG_TYPE, "a key-binding JWT alone proves nothing; inspect the whole presentation"
        )
    raise VerificationError(Reason.WRONG_TYPE, f"unknown token typ {str(typ)[:40]!r}")


def _detect_json(obj: dict[str, Any]) -> Inspector:
    from clearance.agreement import AGREEMENT_TYP
    from clearance.bundle import ROOT_TYP

    if "signatures" in obj or "payload" in obj:
        signatures = obj.get("signatures")
        first = signatures[0] if isinstance(signatures, list) and signatures else None
        protected = first.get("protected") if isinstance(first, dict) else None
        if not isinstance(protected, str):
            raise MalformedError("input is not a JWS JSON serialization with protected headers")
        header = parse_json_object(
            b64url_decode(protected, what="signature header"), what="signature header", max_bytes=4096
        )
        typ = header.get("typ")
        if typ == AGREEMENT_TYP:
            return AgreementInspector(obj)
        if typ == ROOT_TYP:
            return RootRotationInspector(obj)
        raise VerificationError(Reason.WRONG_TYPE, f"unknown JWS JSON document typ {str(typ)[:40]!r}")
    if "bits" in obj or "lst" in obj:
        return BareStatusListInspector(obj)
    raise MalformedError(
        'JSON input is not a clearance artifact: expected an agreement, a root rotation or a status list {"bits", "lst"}'
    )


def inspect_artifact(stream: IO[bytes], trust: Trust) -> Report:
    """Decode, self-check and (with trust material) verify the artifact in ``stream``.

    Never raises :class:`VerificationError`: a refusal is recorded in the report.
    """
    report = Report(trust.at)
    try:
        inspector = detect(read_artifact(stream))
        report.kind = inspector.kind
        report.unanchored = f"no --root or --jwks given: {inspector.anchor}"
        inspector.decode(report)
        if trust.given:
            if trust.problem is not None:
                raise trust.problem
            report.anchored = inspector.verify(trust, report)
    except VerificationError as exc:
        report.failure = exc
    return report
