"""Personnel and facility clearance credentials: SD-JWT VCs (RFC 9901 + SD-JWT VC draft).

Header ``typ: dc+sd-jwt``, ``alg: EdDSA`` (or ``ES256`` on the HAIP profile, with the
issuing key's certificate chain in ``x5c``), ``kid`` = the issuing key's RFC 7638
thumbprint. Always visible: ``iss``, ``iat``, ``nbf``, ``exp``, ``vct`` (an HTTPS URL, see
:mod:`clearance.credentialtypes`) and ``vct#integrity``, ``sub`` (a pseudonym, never a
national ID), ``cnf.jwk`` (the holder key, RFC 7800), ``status.status_list {idx, uri}`` and
``clearance {jurisdiction, level, categories}``. A personnel credential's names, birth date,
nationalities and employer are selectively disclosable: a verifier learns them only when
the holder chooses. A facility credential names its organization openly (an
organization is not a person) and binds the key of the organization's node.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearance.certificates import x5c_value
from clearance.credentialtypes import (
    DISCLOSABLE_PERSONAL_CLAIMS,
    CredentialKind,
    kind_of,
    vct_for,
    vct_integrity,
)
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.keys import PublicKey, Signer
from clearance.sdjwt import IssuedSdJwt, SaltSource, issue, random_salt

SD_JWT_VC_TYP = "dc+sd-jwt"
PERSONNEL_VCT = CredentialKind.PERSONNEL
"""The personnel credential type (its ``vct`` URL depends on the issuer: see :func:`vct_for`)."""
FACILITY_VCT = CredentialKind.FACILITY
"""The facility credential type (its ``vct`` URL depends on the issuer: see :func:`vct_for`)."""
VCT_INTEGRITY = "vct#integrity"

_DISCLOSABLE = frozenset(DISCLOSABLE_PERSONAL_CLAIMS)

_JURISDICTION = re.compile(r"[A-Z]{2}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_DECOYS = 3
_REQUIRED_CLAIMS = frozenset({"iss", "iat", "nbf", "exp", "vct", "sub", "cnf", "status", "clearance"})
_CLEARANCE_MEMBERS = frozenset({"jurisdiction", "level", "categories"})


def check_jurisdiction(value: Any, *, what: str = "jurisdiction") -> str:
    """An ISO 3166-1 alpha-2 code, upper case.

    Raises:
        MalformedError: anything else.
    """
    if not isinstance(value, str) or not _JURISDICTION.fullmatch(value):
        raise MalformedError(f"{what} must be a two-letter ISO 3166 code such as JP")
    return value


def check_token(value: Any, *, what: str) -> str:
    """A short identifier (levels, categories): letters, digits, ``_.:-``, at most 64.

    Raises:
        MalformedError: anything else.
    """
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise MalformedError(f"{what} must be 1-64 characters of letters, digits and _.:-")
    return value


@dataclass(frozen=True, slots=True)
class ClearanceClaim:
    """What a credential clears its holder for, in the issuer's own terms."""

    jurisdiction: str
    level: str
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        check_jurisdiction(self.jurisdiction)
        check_token(self.level, what="clearance level")
        if not isinstance(self.categories, tuple) or not self.categories:
            raise MalformedError("a clearance covers at least one category")
        for category in self.categories:
            check_token(category, what="category")
        if len(set(self.categories)) != len(self.categories):
            raise MalformedError("clearance categories repeat")

    def to_json(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "level": self.level,
            "categories": list(self.categories),
        }

    @classmethod
    def of(cls, jurisdiction: str, level: str, categories: tuple[str, ...]) -> ClearanceClaim:
        """The claim for these values: one shared, checked instance per distinct clearance.

        Raises:
            MalformedError: as the constructor.
        """
        if cls is ClearanceClaim and type(categories) is tuple and len(categories) <= _SHARED_CATEGORIES:
            try:
                return _shared_clearance(jurisdiction, level, categories)
            except TypeError:  # an unhashable member: not a valid claim, which cls() explains
                pass
        return cls(jurisdiction, level, categories)

    @classmethod
    def from_json(cls, obj: Any) -> ClearanceClaim:
        """Parse the ``clearance`` claim.

        Raises:
            MalformedError: wrong shape or values.
        """
        if not isinstance(obj, dict) or obj.keys() != _CLEARANCE_MEMBERS:
            raise MalformedError("clearance claim must have exactly jurisdiction, level, categories")
        categories = obj["categories"]
        if not isinstance(categories, list):
            raise MalformedError("clearance categories must be an array")
        return cls.of(obj["jurisdiction"], obj["level"], tuple(categories))


_SHARED_CATEGORIES = 16


@functools.lru_cache(maxsize=256)
def _shared_clearance(jurisdiction: str, level: str, categories: tuple[str, ...]) -> ClearanceClaim:
    """One immutable :class:`ClearanceClaim` for every credential that grants the same clearance.

    A claim is checked when first built; a credential of a clearance seen before reuses it.
    Keyed on the claim's values (which many credentials share), never on a credential.
    """
    return ClearanceClaim(jurisdiction, level, categories)


def _status_reference_problem(uri: object, idx: object) -> str | None:
    """Why ``(uri, idx)`` is not a status reference, or None when it is one."""
    if not isinstance(uri, str) or not uri or len(uri) > 512:
        return "status uri must be a non-empty string"
    if type(idx) is not int or idx < 0:
        return "status idx must be a non-negative integer"
    return None


@dataclass(frozen=True, slots=True)
class StatusReference:
    """Where a credential's status lives: index ``idx`` of the list at ``uri``."""

    uri: str
    idx: int

    def __post_init__(self) -> None:
        problem = _status_reference_problem(self.uri, self.idx)
        if problem is not None:
            raise MalformedError(problem)

    def to_json(self) -> dict[str, Any]:
        return {"status_list": {"idx": self.idx, "uri": self.uri}}

    @classmethod
    def from_json(cls, obj: Any) -> StatusReference:
        """Parse the ``status`` claim.

        Raises:
            MalformedError: wrong shape or values.
        """
        ref = obj.get("status_list") if isinstance(obj, dict) else None
        if not isinstance(ref, dict):
            raise MalformedError("status claim lacks status_list")
        uri, idx = ref.get("uri"), ref.get("idx")
        if cls is StatusReference and _status_reference_problem(uri, idx) is None:
            # Checked as __post_init__ checks: skip the frozen dataclass's slower __init__
            # (every presentation a node verifies passes through here).
            reference = object.__new__(cls)
            object.__setattr__(reference, "uri", uri)
            object.__setattr__(reference, "idx", idx)
            return reference
        return cls(uri, idx)  # type: ignore[arg-type]  # __post_init__ refuses wrong types


@dataclass(slots=True)
class CredentialClaims:
    """The always-visible claims of one of our credentials, checked for shape (not for trust)."""

    issuer: str
    vct: str
    subject: str
    issued_at: int
    not_before: int
    expires_at: int
    holder_key: PublicKey
    status: StatusReference
    clearance: ClearanceClaim
    organization: dict[str, Any] | None = None
    disclosed: dict[str, Any] = field(default_factory=dict)
    kind: CredentialKind = CredentialKind.PERSONNEL
    """What ``vct`` names (``vct`` must be one of the issuer's own type URLs)."""

    @classmethod
    def from_payload(cls, claims: Mapping[str, Any]) -> CredentialClaims:
        """Read and check the claims of a resolved credential payload.

        Raises:
            VerificationError: a missing (``missing_claim``) or invalid (``invalid_claim``) claim.
        """
        try:
            return cls._from_payload(claims)
        except MalformedError as exc:
            raise VerificationError(Reason.INVALID_CLAIM, exc.detail) from exc

    @classmethod
    def _from_payload(cls, claims: Mapping[str, Any]) -> CredentialClaims:
        if not claims.keys() >= _REQUIRED_CLAIMS:
            missing = sorted(_REQUIRED_CLAIMS - claims.keys())
            raise VerificationError(Reason.MISSING_CLAIM, f"credential lacks the claims {missing}")
        iss, vct, sub = claims["iss"], claims["vct"], claims["sub"]
        iat, nbf, exp = claims["iat"], claims["nbf"], claims["exp"]
        if not isinstance(iss, str) or not isinstance(sub, str) or not sub or len(sub) > 256:
            raise MalformedError("iss and sub must be strings")
        kind = kind_of(vct, iss)
        if kind is None:
            raise MalformedError(f"unknown credential type vct {str(vct)[:60]!r}")
        integrity = claims.get(VCT_INTEGRITY)
        if integrity is not None and type(integrity) is not str:
            raise MalformedError("vct#integrity must be a string")
        if type(iat) is not int or type(nbf) is not int or type(exp) is not int or nbf > exp:
            raise MalformedError("iat, nbf and exp must be integers with nbf <= exp")
        cnf = claims["cnf"]
        if not isinstance(cnf, dict) or "jwk" not in cnf:
            raise MalformedError("cnf must carry the holder jwk")
        organization = claims.get("organization")
        if kind is CredentialKind.FACILITY:
            if not isinstance(organization, dict) or not isinstance(organization.get("id"), str):
                raise MalformedError("a facility credential names its organization id")
            organization = dict(organization)
        elif organization is not None:
            raise MalformedError("a personnel credential carries no organization claim")
        # Most presentations disclose nothing: skip building the dict then.
        disclosed = (
            {}
            if claims.keys().isdisjoint(_DISCLOSABLE)
            else {k: claims[k] for k in DISCLOSABLE_PERSONAL_CLAIMS if k in claims}
        )
        return cls(
            issuer=iss,
            vct=vct,
            subject=sub,
            issued_at=iat,
            not_before=nbf,
            expires_at=exp,
            holder_key=PublicKey.from_jwk(cnf["jwk"]),
            status=StatusReference.from_json(claims["status"]),
            clearance=ClearanceClaim.from_json(claims["clearance"]),
            organization=organization,
            disclosed=disclosed,
            kind=kind,
        )


def _header(key: Signer, x5c: Sequence[bytes]) -> dict[str, Any]:
    header: dict[str, Any] = {"typ": SD_JWT_VC_TYP, "kid": key.kid}
    if x5c:
        header["x5c"] = x5c_value(x5c)
    return header


def _check_nationalities(value: Any) -> None:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 8
        or not all(isinstance(v, str) and re.fullmatch(r"[A-Z]{2}", v) for v in value)
    ):
        raise MalformedError("nationalities must be an array of ISO 3166-1 alpha-2 codes")


def issue_personnel_credential(
    key: Signer,
    *,
    issuer: str,
    subject: str,
    holder: PublicKey,
    clearance: ClearanceClaim,
    status: StatusReference,
    issued_at: int,
    expires_at: int,
    personal: Mapping[str, Any] | None = None,
    not_before: int | None = None,
    salt: SaltSource = random_salt,
    x5c: Sequence[bytes] = (),
) -> IssuedSdJwt:
    """Issue a personnel clearance credential to ``holder``.

    Args:
        key: the registry's current issuing key.
        issuer: the registry's identifier (``iss``).
        subject: the person's pseudonym (``sub``).
        holder: the person's wallet key (``cnf.jwk``).
        clearance: what the person is cleared for.
        status: the credential's place in a status list.
        issued_at: ``iat``; ``not_before`` defaults to it.
        expires_at: ``exp``; never later than the clearance's own end.
        personal: selectively disclosable personal claims
            (see :data:`DISCLOSABLE_PERSONAL_CLAIMS`); ``nationalities`` is an array.
        salt: salt source (injected for tests).
        x5c: the issuing key's certificate chain, leaf first (DER), on the HAIP profile.

    Raises:
        MalformedError: unknown or ill-formed personal claims or ``exp`` before ``nbf``.
    """
    personal = dict(personal or {})
    unknown = set(personal) - set(DISCLOSABLE_PERSONAL_CLAIMS)
    if unknown:
        raise MalformedError(f"personal claims not allowed in a credential: {sorted(unknown)}")
    if personal.get("nationalities") not in (None, []):
        _check_nationalities(personal["nationalities"])
    nbf = issued_at if not_before is None else not_before
    if expires_at <= nbf:
        raise MalformedError("credential would expire before it becomes valid")
    claims = {
        "iss": issuer,
        "iat": issued_at,
        "nbf": nbf,
        "exp": expires_at,
        "vct": vct_for(CredentialKind.PERSONNEL, issuer),
        VCT_INTEGRITY: vct_integrity(CredentialKind.PERSONNEL, issuer),
        "sub": subject,
        "cnf": {"jwk": holder.bare_jwk},
        "status": status.to_json(),
        "clearance": clearance.to_json(),
    }
    personal = {k: v for k, v in personal.items() if v not in (None, "", [])}
    return issue(_header(key, x5c), claims, personal, key, salt=salt, decoys=_DECOYS)


def issue_facility_credential(
    key: Signer,
    *,
    issuer: str,
    subject: str,
    node_key: PublicKey,
    organization: Mapping[str, Any],
    clearance: ClearanceClaim,
    status: StatusReference,
    issued_at: int,
    expires_at: int,
    salt: SaltSource = random_salt,
    x5c: Sequence[bytes] = (),
) -> IssuedSdJwt:
    """Issue a facility clearance credential binding an organization's node key.

    Raises:
        MalformedError: the organization lacks an ``id`` or ``exp`` is not after ``iat``.
    """
    if not isinstance(organization.get("id"), str):
        raise MalformedError("organization needs an id")
    if expires_at <= issued_at:
        raise MalformedError("credential would expire before it becomes valid")
    claims = {
        "iss": issuer,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": expires_at,
        "vct": vct_for(CredentialKind.FACILITY, issuer),
        VCT_INTEGRITY: vct_integrity(CredentialKind.FACILITY, issuer),
        "sub": subject,
        "cnf": {"jwk": node_key.bare_jwk},
        "status": status.to_json(),
        "clearance": clearance.to_json(),
        "organization": dict(organization),
    }
    return issue(_header(key, x5c), claims, {}, key, salt=salt)
