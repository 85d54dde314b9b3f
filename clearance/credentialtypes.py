"""Our credential types: their ``vct`` URLs and their type metadata (SD-JWT VC draft-18).

A ``vct`` is an HTTPS URL under the issuer, so anyone can resolve it to the type's metadata::

    {issuer}/types/personnel/v1     a person's clearance
    {issuer}/types/facility/v1      an organization's facility clearance (binds its node key)

The version is part of the path: a type whose claims change gets a new path, and a credential
issued under ``v1`` keeps meaning what ``v1`` says. Credentials carry ``vct#integrity``, the
W3C Subresource Integrity string (``sha256-<base64>``) of the metadata document served at that
URL, so a wallet or verifier that fetches it can tell it is the document the issuer meant.

:func:`type_metadata_documents` returns the documents keyed by URL path, with their media type,
for the registry's HTTPS publication to serve as they are: the bytes are fixed (canonical
JSON), so their integrity string never changes for a given issuer.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from typing import Any
from urllib.parse import urlsplit

from clearance.encoding import canonical_json
from clearance.errors import MalformedError

TYPE_METADATA_MEDIA_TYPE = "application/json"


class CredentialKind(enum.StrEnum):
    """What a credential is about. The value is the path segment of its ``vct``."""

    PERSONNEL = "personnel"
    FACILITY = "facility"


TYPE_VERSION = "v1"

DISCLOSABLE_PERSONAL_CLAIMS = ("given_name", "family_name", "birthdate", "nationalities", "employer")
"""The only personal claims a personnel credential may carry, each selectively disclosable.

``nationalities`` is the registered JWT claim (an array of ISO 3166-1 alpha-2 codes, OpenID
Connect for Identity Assurance / IANA JWT claims registry)."""


def _base(issuer: str) -> str:
    return issuer.rstrip("/")


def vct_for(kind: CredentialKind, issuer: str) -> str:
    """The ``vct`` URL of credentials of ``kind`` issued by ``issuer``."""
    return f"{_base(issuer)}/types/{kind.value}/{TYPE_VERSION}"


LEGACY_VCT = {
    "urn:clearance:vct:personnel:1": CredentialKind.PERSONNEL,
    "urn:clearance:vct:facility:1": CredentialKind.FACILITY,
}
"""The ``vct`` values credentials carried before the HTTPS URLs. Still read (a credential issued
with one stays valid until it expires); never issued."""


def kind_of(vct: object, issuer: object) -> CredentialKind | None:
    """The kind ``vct`` names for ``issuer``, or None when it names none of ours."""
    if type(vct) is not str or type(issuer) is not str:
        return None
    legacy = LEGACY_VCT.get(vct)
    if legacy is not None:
        return legacy
    prefix = _base(issuer) + "/types/"
    if not vct.startswith(prefix):
        return None
    for kind in CredentialKind:
        if vct == f"{prefix}{kind.value}/{TYPE_VERSION}":
            return kind
    return None


def integrity(document: bytes) -> str:
    """The W3C Subresource Integrity string of ``document`` (sha256)."""
    return "sha256-" + base64.b64encode(hashlib.sha256(document).digest()).decode("ascii")


def _display(en: tuple[str, str], ja: tuple[str, str]) -> list[dict[str, str]]:
    return [
        {"locale": "en-US", "name": en[0], "description": en[1]},
        {"locale": "ja-JP", "name": ja[0], "description": ja[1]},
    ]


def _claim(path: list[str], en: str, ja: str, *, sd: str, mandatory: bool = False) -> dict[str, Any]:
    return {
        "path": path,
        "display": [{"locale": "en-US", "label": en}, {"locale": "ja-JP", "label": ja}],
        "sd": sd,
        "mandatory": mandatory,
    }


_CLEARANCE_CLAIMS = [
    _claim(["clearance"], "Clearance", "クリアランス", sd="never", mandatory=True),
    _claim(["clearance", "jurisdiction"], "Issuing country", "発行国", sd="never", mandatory=True),
    _claim(["clearance", "level"], "Clearance level", "クリアランスの区分", sd="never", mandatory=True),
    _claim(["clearance", "categories"], "Information categories", "情報の分野", sd="never", mandatory=True),
    _claim(["status"], "Status", "有効性の状態", sd="never", mandatory=True),
]

_PERSONAL_CLAIMS = [
    _claim(["given_name"], "Given name", "名", sd="always"),
    _claim(["family_name"], "Family name", "姓", sd="always"),
    _claim(["birthdate"], "Date of birth", "生年月日", sd="always"),
    _claim(["nationalities"], "Nationalities", "国籍", sd="always"),
    _claim(["employer"], "Employer", "所属組織", sd="always"),
]


def type_metadata(kind: CredentialKind, issuer: str) -> dict[str, Any]:
    """The type metadata document of ``kind`` for ``issuer`` (SD-JWT VC draft-18)."""
    if kind is CredentialKind.PERSONNEL:
        document: dict[str, Any] = {
            "vct": vct_for(kind, issuer),
            "name": "Personnel security clearance",
            "description": "A person's security clearance, granted after an aptitude assessment.",
            "display": _display(
                (
                    "Personnel security clearance",
                    "A person's security clearance, granted after an aptitude assessment.",
                ),
                (
                    "適性評価に基づく人的クリアランス",
                    "適性評価を経て付与される個人のセキュリティ・クリアランス",
                ),
            ),
            "claims": [*_CLEARANCE_CLAIMS, *_PERSONAL_CLAIMS],
        }
    else:
        document = {
            "vct": vct_for(kind, issuer),
            "name": "Facility security clearance",
            "description": "An organization's facility clearance, binding the key of its node.",
            "display": _display(
                (
                    "Facility security clearance",
                    "An organization's facility clearance, binding the key of its node.",
                ),
                ("施設クリアランス", "組織の施設クリアランス(ノードの鍵に結び付く)"),
            ),
            "claims": [
                *_CLEARANCE_CLAIMS,
                _claim(["organization"], "Organization", "組織", sd="never", mandatory=True),
            ],
        }
    return document


def type_metadata_bytes(kind: CredentialKind, issuer: str) -> bytes:
    """The exact bytes served at the ``vct`` URL (canonical JSON, UTF-8)."""
    return _cached_bytes(kind, _base(issuer))


_CACHE: dict[tuple[CredentialKind, str], bytes] = {}
_CACHE_LIMIT = 64


def _cached_bytes(kind: CredentialKind, issuer: str) -> bytes:
    key = (kind, issuer)
    found = _CACHE.get(key)
    if found is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        found = _CACHE[key] = canonical_json(type_metadata(kind, issuer))
    return found


def vct_integrity(kind: CredentialKind, issuer: str) -> str:
    """The ``vct#integrity`` value credentials of ``kind`` from ``issuer`` carry."""
    return integrity(type_metadata_bytes(kind, issuer))


def type_metadata_documents(issuer: str) -> dict[str, tuple[str, bytes]]:
    """``{URL path: (media type, bytes)}`` of every type metadata document ``issuer`` publishes.

    The paths are relative to the host (they include the issuer URL's own path, if any).

    Raises:
        MalformedError: ``issuer`` is not an https URL.
    """
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.netloc:
        raise MalformedError("type metadata is published under an https issuer URL")
    out = {}
    for kind in CredentialKind:
        path = urlsplit(vct_for(kind, issuer)).path
        out[path] = (TYPE_METADATA_MEDIA_TYPE, type_metadata_bytes(kind, issuer))
    return out
