"""DCQL queries (OpenID4VP 1.0 section 6) derived from what a sharing decision needs, and their answers.

A decision on a labelled item needs the credential's ``clearance`` claim (jurisdiction, level,
categories): always visible, so answering discloses nothing personal. The query asks for
exactly that, from a personnel credential of an issuer the verifier may accept, plus any
personal claims the caller explicitly needs (a meeting check-in may want a name)::

    {"credentials": [{"id": "clearance", "format": "dc+sd-jwt",
                      "meta": {"vct_values": [<issuer>/types/personnel/v1, ...]},
                      "claims": [{"path": ["clearance", "jurisdiction"]}, ...]}]}

:func:`check_answer` refuses an answer that does not carry every claim the query asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clearance.credentialtypes import DISCLOSABLE_PERSONAL_CLAIMS, CredentialKind, vct_for
from clearance.errors import MalformedError, Reason, VerificationError

CREDENTIAL_QUERY_ID = "clearance"
SD_JWT_VC_FORMAT = "dc+sd-jwt"
DECISION_CLAIMS: tuple[tuple[str, ...], ...] = (
    ("clearance", "jurisdiction"),
    ("clearance", "level"),
    ("clearance", "categories"),
)
"""The claims a sharing decision reads (all always visible)."""


def query_for_decision(issuers: Sequence[str], *, disclose: Sequence[str] = ()) -> dict[str, Any]:
    """The DCQL query for a decision: a personnel credential of one of ``issuers``.

    Args:
        issuers: the issuer URLs whose credentials the decision may accept (the home registry
            and the partners the label is releasable to).
        disclose: personal claims the caller needs besides the clearance (names, ...).

    Raises:
        MalformedError: no issuer, or a claim that is not a disclosable personal claim.
    """
    if not issuers:
        raise MalformedError("a presentation request needs at least one acceptable issuer")
    unknown = set(disclose) - set(DISCLOSABLE_PERSONAL_CLAIMS)
    if unknown:
        raise MalformedError(f"cannot ask for {sorted(unknown)}: not personal claims of a credential")
    claims = [{"path": list(path)} for path in DECISION_CLAIMS]
    claims += [{"path": [name]} for name in dict.fromkeys(disclose)]
    return {
        "credentials": [
            {
                "id": CREDENTIAL_QUERY_ID,
                "format": SD_JWT_VC_FORMAT,
                "meta": {
                    "vct_values": [vct_for(CredentialKind.PERSONNEL, i) for i in dict.fromkeys(issuers)]
                },
                "claims": claims,
            }
        ]
    }


def credential_query(query: Mapping[str, Any]) -> Mapping[str, Any]:
    """The one credential query of a DCQL query we make or answer.

    Raises:
        MalformedError: not a DCQL query with one ``dc+sd-jwt`` credential query.
    """
    credentials = query.get("credentials")
    if not isinstance(credentials, list) or len(credentials) != 1 or not isinstance(credentials[0], dict):
        raise MalformedError("the DCQL query must ask for exactly one credential")
    wanted = credentials[0]
    if wanted.get("format") != SD_JWT_VC_FORMAT or not isinstance(wanted.get("id"), str):
        raise MalformedError(f"the DCQL query must ask for a {SD_JWT_VC_FORMAT} credential by id")
    return wanted


def requested_paths(query: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The claim paths the credential query asks for (object keys only).

    Raises:
        MalformedError: a claim path that is not a non-empty list of names.
    """
    claims = credential_query(query).get("claims", [])
    if not isinstance(claims, list):
        raise MalformedError("DCQL claims must be an array")
    paths = []
    for claim in claims:
        path = claim.get("path") if isinstance(claim, dict) else None
        if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
            raise MalformedError("a DCQL claim path must be a non-empty array of names")
        paths.append(tuple(path))
    return paths


def _present(claims: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = claims
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return False
        node = node[name]
    return True


def check_answer(query: Mapping[str, Any], vct: str, claims: Mapping[str, Any]) -> None:
    """Check that a verified credential answers ``query``: its type, and every claim asked for.

    Args:
        query: the DCQL query of the request.
        vct: the credential's ``vct``.
        claims: the credential's claims as verified (visible and disclosed).

    Raises:
        VerificationError: another type (``wrong_type``) or a claim asked for and not
            presented (``missing_claim``).
    """
    wanted = credential_query(query)
    meta = wanted.get("meta")
    values = meta.get("vct_values") if isinstance(meta, dict) else None
    if isinstance(values, list) and vct not in values:
        raise VerificationError(Reason.WRONG_TYPE, "the credential is not of a type the request asked for")
    missing = [".".join(path) for path in requested_paths(query) if not _present(claims, path)]
    if missing:
        raise VerificationError(Reason.MISSING_CLAIM, f"the presentation omits claims asked for: {missing}")
