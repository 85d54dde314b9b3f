"""Visit assurances: a home registry vouches that one of its cleared people may visit a named
foreign organization for a named programme, within a window.

It replaces the paper "request for visit" with a signed, machine-verifiable
document (compact JWS, header ``typ: clearance-visit+jwt``, signed by an
issuing key of the home registry)::

    {"iss": home registry, "sub": the person's pseudonym, "jti": id,
     "iat", "nbf", "exp",
     "cnf": {"jkt": RFC 7638 thumbprint of the holder key},
     "clearance": {"jurisdiction", "level", "categories"},
     "host": {"jurisdiction": "JP", "organization": "org_..."},
     "programme": "quantum-sensing-2027", "visit_kind": "one_time"|"recurring"|"emergency"}

The host node verifies it offline, together with a presentation by the same
holder (same ``sub`` and holder key), against the home registry's bundle
that it trusts through an agreement.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from clearance.bundle import TrustBundle
from clearance.credentials import ClearanceClaim, check_jurisdiction, check_token
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import decode_compact, encode_compact, verify_compact
from clearance.keys import Signer

VISIT_TYP = "clearance-visit+jwt"
MAX_VISIT_SECONDS = 366 * 86400


class VisitKind(enum.StrEnum):
    ONE_TIME = "one_time"
    RECURRING = "recurring"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class VisitAssurance:
    issuer: str
    subject: str
    assurance_id: str
    issued_at: int
    not_before: int
    expires_at: int
    holder_thumbprint: str
    clearance: ClearanceClaim
    host_jurisdiction: str
    host_organization: str
    programme: str
    kind: VisitKind
    kid: str | None

    def to_payload(self) -> dict[str, object]:
        return {
            "iss": self.issuer,
            "sub": self.subject,
            "jti": self.assurance_id,
            "iat": self.issued_at,
            "nbf": self.not_before,
            "exp": self.expires_at,
            "cnf": {"jkt": self.holder_thumbprint},
            "clearance": self.clearance.to_json(),
            "host": {"jurisdiction": self.host_jurisdiction, "organization": self.host_organization},
            "programme": self.programme,
            "visit_kind": self.kind.value,
        }


def issue_visit_assurance(
    key: Signer,
    *,
    issuer: str,
    subject: str,
    holder_thumbprint: str,
    clearance: ClearanceClaim,
    host_jurisdiction: str,
    host_organization: str,
    programme: str,
    kind: VisitKind,
    issued_at: int,
    not_before: int,
    expires_at: int,
) -> str:
    """Sign a visit assurance.

    Raises:
        MalformedError: a bad window, programme or host.
    """
    if not issued_at - 86400 <= not_before < expires_at or expires_at - not_before > MAX_VISIT_SECONDS:
        raise MalformedError("a visit window must start no earlier than a day ago and last at most a year")
    check_jurisdiction(host_jurisdiction, what="host jurisdiction")
    check_token(host_organization, what="host organization")
    check_token(programme, what="programme")
    assurance = VisitAssurance(
        issuer,
        subject,
        "visit_" + secrets.token_hex(8),
        issued_at,
        not_before,
        expires_at,
        holder_thumbprint,
        clearance,
        host_jurisdiction,
        host_organization,
        programme,
        kind,
        key.kid,
    )
    return encode_compact({"typ": VISIT_TYP, "kid": key.kid}, assurance.to_payload(), key)


def parse_visit_assurance(token: str) -> VisitAssurance:
    """Decode without checking the signature.

    Raises:
        MalformedError: bad structure or fields.
        VerificationError: forbidden algorithm or wrong ``typ``.
    """
    jws = decode_compact(token, what="visit assurance", max_bytes=8192, typ=VISIT_TYP)
    p = jws.payload
    try:
        cnf, host = p["cnf"], p["host"]
        times = (p["iat"], p["nbf"], p["exp"])
        if not isinstance(cnf, dict) or not isinstance(host, dict) or any(type(t) is not int for t in times):
            raise MalformedError("visit assurance has malformed cnf, host or times")
        strings = (p["iss"], p["sub"], p["jti"], cnf["jkt"], host["organization"], p["programme"])
        if not all(isinstance(s, str) and s for s in strings):
            raise MalformedError("visit assurance lacks a required string")
        return VisitAssurance(
            issuer=p["iss"],
            subject=p["sub"],
            assurance_id=p["jti"],
            issued_at=p["iat"],
            not_before=p["nbf"],
            expires_at=p["exp"],
            holder_thumbprint=cnf["jkt"],
            clearance=ClearanceClaim.from_json(p["clearance"]),
            host_jurisdiction=check_jurisdiction(host.get("jurisdiction"), what="host jurisdiction"),
            host_organization=host["organization"],
            programme=p["programme"],
            kind=VisitKind(p["visit_kind"]),
            kid=jws.kid,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedError(f"visit assurance is malformed: {exc}") from exc


def verify_visit_assurance(
    token: str,
    bundle: TrustBundle,
    *,
    host_jurisdiction: str,
    host_organization: str,
    subject: str,
    holder_thumbprint: str,
    now: int,
) -> VisitAssurance:
    """Check a visit assurance against the home registry's ``bundle`` for this host and holder.

    Raises:
        VerificationError: wrong issuer or key, bad signature, outside its window,
            for another host, or for another person or key.
    """
    assurance = parse_visit_assurance(token)
    if assurance.issuer != bundle.issuer:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER, "visit assurance is from another registry than the credential"
        )
    issuing = bundle.issuing_key(assurance.kid)
    verify_compact(
        decode_compact(token, what="visit assurance", max_bytes=8192, typ=VISIT_TYP),
        issuing.key,
        what="visit assurance",
    )
    if not issuing.covers(assurance.issued_at):
        raise VerificationError(
            Reason.KEY_NOT_VALID_AT_ISSUANCE, "visit assurance key was not valid when it was signed"
        )
    if now < assurance.not_before:
        raise VerificationError(Reason.NOT_YET_VALID, "the visit has not started")
    if now >= assurance.expires_at:
        raise VerificationError(Reason.EXPIRED, "the visit window has ended")
    if (assurance.host_jurisdiction, assurance.host_organization) != (host_jurisdiction, host_organization):
        raise VerificationError(Reason.INVALID_CLAIM, "visit assurance is for another host organization")
    if assurance.subject != subject or assurance.holder_thumbprint != holder_thumbprint:
        raise VerificationError(Reason.INVALID_CLAIM, "visit assurance is for another person or key")
    return assurance
