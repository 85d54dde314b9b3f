"""Inspecting credentials, presentations and visit assurances: what an issuer vouches for about a person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearance.encoding import MAX_JSON_DEPTH
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.inspect.report import Inspector, Report
from clearance.inspect.trust import Trust, check_x5c

if TYPE_CHECKING:
    from clearance.credentials import CredentialClaims
    from clearance.jws import CompactJWS
    from clearance.sdjwt import SdJwtParts
    from clearance.visit import VisitAssurance


_CREDENTIAL_KINDS = {"personnel": "personnel_credential", "facility": "facility_credential"}


class SdJwtInspector(Inspector):
    """A credential (SD-JWT VC) with or without disclosures, or a presentation (with a KB-JWT)."""

    anchor = "the issuer signature needs --jwks (a JWK Set or the issuer's trust bundle)"

    def __init__(self, text: str) -> None:
        from clearance.sdjwt import split

        self.parts: SdJwtParts = split(text)
        self.kind = "presentation" if self.parts.key_binding else "credential"
        self.jws: CompactJWS | None = None
        self.claims: CredentialClaims | None = None

    def decode(self, report: Report) -> None:
        from clearance.credentials import SD_JWT_VC_TYP, CredentialClaims
        from clearance.credentialtypes import kind_of
        from clearance.jws import decode_compact
        from clearance.sdjwt import Disclosure, digest, resolve_claims

        jws = self.jws = decode_compact(self.parts.jwt, what="credential", typ=SD_JWT_VC_TYP)
        named = kind_of(jws.payload.get("vct"), jws.payload.get("iss"))
        credential_kind = _CREDENTIAL_KINDS.get(named.value if named else "", "credential")
        if self.parts.key_binding is None:
            report.kind = credential_kind
        else:
            report.fields["credential_kind"] = credential_kind
        report.fields.update(header=jws.header, payload=jws.payload)
        resolved = resolve_claims(jws.payload, self.parts.disclosures, payload_json=jws.payload_json)
        if _nesting_depth(resolved) > MAX_JSON_DEPTH:
            # Each disclosure is capped like any JSON, but disclosures nest inside each other.
            raise MalformedError(
                f"disclosed claims nest deeper than {MAX_JSON_DEPTH} levels", Reason.TOO_DEEP
            )
        disclosed = [Disclosure.parse(d).name or "(array element)" for d in self.parts.disclosures]
        sd = jws.payload.get("_sd")
        hidden = set(sd) - {digest(d) for d in self.parts.disclosures} if isinstance(sd, list) else set()
        report.fields.update(claims=resolved, disclosed=disclosed, undisclosed_digests=len(hidden))
        report.passed.append(f"{len(disclosed)} disclosure(s) match digests the issuer signed")
        claims = self.claims = CredentialClaims.from_payload(resolved)
        state = (
            "not yet valid"
            if report.at < claims.not_before
            else "expired"
            if report.at >= claims.expires_at
            else "current"
        )
        report.fields.update(
            holder_key=claims.holder_key.thumbprint,
            status={"uri": claims.status.uri, "idx": claims.status.idx},
            validity={"nbf": claims.not_before, "exp": claims.expires_at, "state": state},
        )
        report.passed.append("claims have the shape of a clearance credential")
        if self.parts.key_binding is not None:
            self._decode_key_binding(self.parts.key_binding, claims, report)
        report.not_checked.append(
            f"status: inspect the status list {claims.status.uri} (index {claims.status.idx})"
        )

    def _decode_key_binding(self, token: str, claims: CredentialClaims, report: Report) -> None:
        from clearance.jws import decode_compact
        from clearance.sdjwt import verify_key_binding

        kb = decode_compact(token, what="key-binding JWT", max_bytes=4096)
        audience = kb.payload.get("aud")
        report.fields["key_binding"] = {
            "header": kb.header,
            "aud": audience,
            "nonce": kb.payload.get("nonce"),
            "iat": kb.payload.get("iat"),
            "sd_hash": kb.payload.get("sd_hash"),
            "nonce_freshness": "not checked",
        }
        if not isinstance(audience, str):
            raise VerificationError(Reason.KEY_BINDING_INVALID, "key-binding JWT aud is not a single string")
        verify_key_binding(self.parts, claims.holder_key, audience=audience)
        report.passed.append(
            "key-binding JWT is signed by the holder key (cnf.jwk) and covers exactly these disclosures"
        )
        report.not_checked.append(
            "nonce freshness: not checked (only the verifier that issued the nonce can tell)"
        )

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.checks import CredentialCase, check_credential
        from clearance.jws import verify_compact
        from clearance.verify import DEFAULT_LEEWAY

        assert self.jws is not None
        assert self.claims is not None
        jws, claims = self.jws, self.claims
        issuing = trust.require_issuing("a credential")
        verify_compact(jws, issuing.key(jws.kid, "the credential"), what="credential")
        report.passed.append(f"issuer signature by {jws.kid} from {issuing.source}")
        check_x5c(jws.header, issuing, jws.kid, trust.at, report)
        bundle = issuing.bundle
        signer = bundle.issuing_key(jws.kid) if bundle is not None else None
        # The checks a node makes (clearance.checks); those needing the issuer's bundle only with one.
        check_credential(
            CredentialCase(claims, trust.at, DEFAULT_LEEWAY, None, bundle, signer, say_when=True)
        )
        if bundle is not None:
            report.passed.append(f"issuer, key window, level and categories fit {issuing.source}")
        return f"signed by issuing key {jws.kid} from {issuing.source}; valid at {trust.at}"


def _nesting_depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects (counted without recursion: it may be deep)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class VisitAssuranceInspector(Inspector):
    """A visit assurance: the visitor's home registry vouches for one visit to a named host."""

    kind = "visit_assurance"
    anchor = "the issuer signature needs --jwks (a JWK Set or the issuing registry's trust bundle)"

    def __init__(self, text: str) -> None:
        self.text = text
        self.assurance: VisitAssurance | None = None
        self.jws: CompactJWS | None = None

    def decode(self, report: Report) -> None:
        from clearance.jws import decode_compact
        from clearance.visit import VISIT_TYP, parse_visit_assurance

        assurance = self.assurance = parse_visit_assurance(self.text)
        self.jws = decode_compact(self.text, what="visit assurance", max_bytes=8192, typ=VISIT_TYP)
        report.fields.update(
            header=self.jws.header,
            payload=self.jws.payload,
            issuer=assurance.issuer,
            subject=assurance.subject,
            assurance_id=assurance.assurance_id,
            iat=assurance.issued_at,
            holder_key=assurance.holder_thumbprint,
            clearance=assurance.clearance.to_json(),
            host={
                "jurisdiction": assurance.host_jurisdiction,
                "organization": assurance.host_organization,
            },
            programme=assurance.programme,
            visit_kind=assurance.kind.value,
            window={
                "nbf": assurance.not_before,
                "exp": assurance.expires_at,
                "state": _window_state(report.at, assurance.not_before, assurance.expires_at),
            },
        )
        report.passed.append("claims have the shape of a visit assurance")
        report.not_checked.append(
            "the visitor and the host: only the host node can check them, with the visitor's "
            "presentation (same pseudonym and holder key, and itself the named host)"
        )

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact

        assert self.assurance is not None
        assert self.jws is not None
        assurance = self.assurance
        issuing = trust.require_issuing("a visit assurance")
        verify_compact(self.jws, issuing.key(assurance.kid, "the visit assurance"), what="visit assurance")
        report.passed.append(f"issuer signature by {assurance.kid} from {issuing.source}")
        bundle = issuing.bundle
        if bundle is not None:
            if assurance.issuer != bundle.issuer:
                raise VerificationError(
                    Reason.UNTRUSTED_ISSUER,
                    f"visit assurance iss {assurance.issuer[:80]!r} is not {bundle.issuer!r}",
                )
            if not bundle.issuing_key(assurance.kid).covers(assurance.issued_at):
                raise VerificationError(
                    Reason.KEY_NOT_VALID_AT_ISSUANCE,
                    f"issuing key {assurance.kid} was not valid when the visit assurance was signed",
                )
            if assurance.clearance.jurisdiction != bundle.jurisdiction:
                raise VerificationError(
                    Reason.INVALID_CLAIM,
                    f"{bundle.jurisdiction} may not vouch for a {assurance.clearance.jurisdiction} clearance",
                )
            report.passed.append(f"issuer and key window fit {issuing.source}")
        if trust.at < assurance.not_before:
            raise VerificationError(Reason.NOT_YET_VALID, f"the visit has not started at {trust.at}")
        if trust.at >= assurance.expires_at:
            raise VerificationError(Reason.EXPIRED, f"the visit window has ended at {trust.at}")
        return f"signed by issuing key {assurance.kid} from {issuing.source}; inside its window at {trust.at}"


def _window_state(at: int, not_before: int, expires_at: int) -> str:
    if at < not_before:
        return "not yet started"
    if at >= expires_at:
        return "ended"
    return "current"
