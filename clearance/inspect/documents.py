"""Inspecting a registry's signed documents: status lists and deltas, trust bundles, agreements, root rotations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.inspect.report import Inspector, Report
from clearance.inspect.trust import Trust, bundle_header_key, check_x5c, verify_bundle_under_root

if TYPE_CHECKING:
    from clearance.agreement import Agreement
    from clearance.bundle import RootRotation, TrustBundle
    from clearance.jws import CompactJWS
    from clearance.statusdelta import StatusDelta
    from clearance.statuslist import StatusList, StatusListToken

MAX_NON_ZERO_LISTED = 1_000_000
"""Entries of ``non_zero`` printed at most; beyond it ``non_zero_truncated`` is set (counts stay exact)."""


def _status_list_fields(status_list: StatusList) -> dict[str, Any]:
    """``bits``, ``size``, ``non_zero`` (index as a string -> status) and counts per status."""
    from clearance.statuslist import Status

    names = {s.value: s.name.lower() for s in Status}
    non_zero: dict[str, int] = {}
    counts: dict[str, int] = {}
    total = 0
    for index, status in status_list.non_zero():
        total += 1
        if total <= MAX_NON_ZERO_LISTED:
            non_zero[str(index)] = status
        name = names.get(status, str(status))
        counts[name] = counts.get(name, 0) + 1
    fields: dict[str, Any] = {
        "bits": status_list.bits,
        "size": status_list.size,
        "counts": {"valid": status_list.size - total, **counts},
        "non_zero": non_zero,
    }
    if total > MAX_NON_ZERO_LISTED:
        fields["non_zero_truncated"] = True
    return fields


class StatusListTokenInspector(Inspector):
    kind = "status_list_token"
    anchor = "the signature needs --jwks (a JWK Set or the issuer's trust bundle)"

    def __init__(self, text: str) -> None:
        self.text = text
        self.token: StatusListToken | None = None

    def decode(self, report: Report) -> None:
        from clearance.statuslist import parse_status_list_token

        token = self.token = parse_status_list_token(self.text)
        report.fields.update(
            header=token.jws.header,
            payload=token.jws.payload,
            uri=token.uri,
            iat=token.issued_at,
            exp=token.expires_at,
            ttl=token.ttl,
            seq=token.seq,
            **_status_list_fields(token.status_list),
        )
        report.passed.append("the list decodes and inflates within the size cap")

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact

        assert self.token is not None
        token = self.token
        issuing = trust.require_issuing("a status list token")
        verify_compact(token.jws, issuing.key(token.kid, "the status list token"), what="status list token")
        report.passed.append(f"signature by {token.kid} from {issuing.source}")
        check_x5c(token.jws.header, issuing, token.kid, trust.at, report)
        if issuing.bundle is not None:
            location = issuing.bundle.status_list_location(token.uri)
            if location is None:
                raise VerificationError(
                    Reason.UNTRUSTED_ISSUER, f"status list {token.uri[:80]!r} is not in {issuing.source}"
                )
            if location.bits != token.status_list.bits:
                raise VerificationError(
                    Reason.INVALID_CLAIM,
                    f"status list has {token.status_list.bits} bits, the bundle announces {location.bits}",
                )
        if token.expires_at is not None and token.expires_at <= trust.at:
            raise VerificationError(Reason.STATUS_LIST_EXPIRED, f"status list has expired at {trust.at}")
        return f"signed by issuing key {token.kid} from {issuing.source}; not expired at {trust.at}"


class BareStatusListInspector(Inspector):
    kind = "status_list"
    anchor = "a bare status list is not signed: nothing can vouch for it"

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def decode(self, report: Report) -> None:
        from clearance.statuslist import StatusList

        report.fields.update(_status_list_fields(StatusList.decode(self.obj)))
        report.passed.append("the list decodes and inflates within the size cap")

    def verify(self, trust: Trust, report: Report) -> str:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER,
            "a bare status list is not signed, so no key can vouch for it; inspect the status list token",
        )


class StatusDeltaInspector(Inspector):
    kind = "status_delta"
    anchor = "the signature needs --jwks (a JWK Set or the issuer's trust bundle)"

    def __init__(self, text: str) -> None:
        self.text = text
        self.delta: StatusDelta | None = None

    def decode(self, report: Report) -> None:
        from clearance.statusdelta import parse_status_delta

        delta = self.delta = parse_status_delta(self.text)
        report.fields.update(
            header=delta.jws.header,
            payload=delta.jws.payload,
            uri=delta.uri,
            iat=delta.issued_at,
            exp=delta.expires_at,
            base_seq=delta.base_seq,
            seq=delta.seq,
            updates={str(index): status for index, status in delta.updates},
        )

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact

        assert self.delta is not None
        delta = self.delta
        issuing = trust.require_issuing("a status delta")
        verify_compact(delta.jws, issuing.key(delta.kid, "the status delta"), what="status delta")
        report.passed.append(f"signature by {delta.kid} from {issuing.source}")
        if issuing.bundle is not None and issuing.bundle.status_list_location(delta.uri) is None:
            raise VerificationError(
                Reason.UNTRUSTED_ISSUER, f"status list {delta.uri[:80]!r} is not in {issuing.source}"
            )
        if delta.expires_at <= trust.at:
            raise VerificationError(Reason.STATUS_LIST_EXPIRED, f"status delta has expired at {trust.at}")
        return f"signed by issuing key {delta.kid} from {issuing.source}; not expired at {trust.at}"


class TrustBundleInspector(Inspector):
    kind = "trust_bundle"
    anchor = "the root signature needs --root"

    def __init__(self, text: str) -> None:
        self.text = text
        self.bundle: TrustBundle | None = None
        self.jws: CompactJWS | None = None

    def decode(self, report: Report) -> None:
        from clearance.agreement import Agreement
        from clearance.bundle import TrustBundle

        bundle, jws = TrustBundle.parse(self.text)
        self.bundle, self.jws = bundle, jws
        report.fields.update(
            header=jws.header,
            payload=jws.payload,
            issuer=bundle.issuer,
            jurisdiction=bundle.jurisdiction,
            version=bundle.version,
            iat=bundle.issued_at,
            exp=bundle.expires_at,
            root=bundle.root,
            issuing_keys=[
                {"kid": k.key.thumbprint, "alg": k.key.alg, "nbf": k.not_before, "exp": k.not_after}
                for k in bundle.issuing_keys
            ],
            levels=list(bundle.levels),
            categories=list(bundle.categories),
            status_lists=[s.to_json() for s in bundle.status_lists],
            agreements=[],
        )
        if bundle_header_key(bundle, jws) is None:
            report.not_checked.append("the header carries no root key: only --root can check the signature")
        else:
            report.passed.append("signed by the root key in its header (trusted only with --root)")
        for raw in bundle.agreements:
            try:
                agreement = Agreement.parse(raw)
            except MalformedError as exc:
                raise VerificationError(
                    Reason.AGREEMENT_INVALID, f"bundle lists a bad agreement: {exc.detail}"
                ) from exc
            agreement.verify_signatures()
            report.fields["agreements"].append(_agreement_summary(agreement))
        if bundle.agreements:
            report.passed.append("every agreement listed is signed by both parties' roots")

    def verify(self, trust: Trust, report: Report) -> str:
        assert self.bundle is not None
        assert self.jws is not None
        root = trust.require_root("a trust bundle")
        verify_bundle_under_root(self.text, self.jws, root)
        report.passed.append(f"signed by the trusted root {root.thumbprint}")
        if self.bundle.expires_at <= trust.at:
            raise VerificationError(
                Reason.BUNDLE_EXPIRED, f"trust bundle v{self.bundle.version} has expired at {trust.at}"
            )
        return f"signed by the trusted root {root.thumbprint}; not expired at {trust.at}"


def _agreement_summary(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "parties": [p.jurisdiction for p in agreement.parties],
        "nbf": agreement.not_before,
        "exp": agreement.expires_at,
    }


class AgreementInspector(Inspector):
    kind = "agreement"
    anchor = "signatures verify against the parties' own roots; give --root to require one of them"

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.agreement: Agreement | None = None

    def decode(self, report: Report) -> None:
        from clearance.agreement import Agreement

        agreement = self.agreement = Agreement.parse(self.obj)
        document = agreement.document
        signed_by: list[str] = []
        report.fields.update(
            headers=[s.header for s in document.signatures],
            payload=document.payload,
            id=agreement.id,
            iat=agreement.issued_at,
            nbf=agreement.not_before,
            exp=agreement.expires_at,
            in_force=agreement.not_before <= report.at < agreement.expires_at,
            parties=[
                {
                    "jurisdiction": p.jurisdiction,
                    "issuer": p.issuer,
                    "root": p.root.thumbprint,
                    "signed": agreement.is_signed_by(p.jurisdiction),
                }
                for p in agreement.parties
            ],
            signed_by=signed_by,
            levels=[
                dict(zip((p.jurisdiction for p in agreement.parties), row, strict=True))
                for row in agreement.levels
            ],
            categories={j: list(c) for j, c in agreement.categories.items()},
        )
        for party in agreement.parties:
            if agreement.is_signed_by(party.jurisdiction):
                document.signed_by(party.root, what="agreement")
                signed_by.append(party.jurisdiction)
                report.passed.append(f"signature by {party.jurisdiction}'s root verifies")
        if len(signed_by) < len(agreement.parties):
            report.fields["note"] = "a proposal: not in force until both parties' roots have signed"

    def verify(self, trust: Trust, report: Report) -> str:
        assert self.agreement is not None
        agreement = self.agreement
        root = trust.require_root("an agreement")
        if root.thumbprint not in {p.root.thumbprint for p in agreement.parties}:
            raise VerificationError(
                Reason.AGREEMENT_INVALID, f"agreement {agreement.id} does not name --root as a party"
            )
        agreement.verify(trust.at)
        party = next(p.jurisdiction for p in agreement.parties if p.root.thumbprint == root.thumbprint)
        return f"signed by both parties' roots, {party}'s being --root; in force at {trust.at}"


class RootRotationInspector(Inspector):
    kind = "root_rotation"
    anchor = "the previous root's signature needs --root (its JWK or PEM file)"

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.rotation: RootRotation | None = None

    def decode(self, report: Report) -> None:
        from clearance.bundle import RootRotation

        rotation = self.rotation = RootRotation.parse(self.obj)
        report.fields.update(
            headers=[s.header for s in rotation.document.signatures],
            payload=rotation.document.payload,
            jurisdiction=rotation.jurisdiction,
            version=rotation.version,
            iat=rotation.issued_at,
            previous=rotation.previous,
            new_root=rotation.new_root.thumbprint,
        )
        if rotation.new_root.thumbprint == rotation.previous:
            raise VerificationError(Reason.ROTATION_INVALID, "root rotation keeps the same key")
        try:
            rotation.document.signed_by(rotation.new_root, what="root rotation")
        except VerificationError as exc:
            raise VerificationError(Reason.ROTATION_INVALID, exc.detail) from exc
        report.passed.append("signed by the new root it names")

    def verify(self, trust: Trust, report: Report) -> str:
        assert self.rotation is not None
        root = trust.require_root("a root rotation")
        if root.key is None:
            raise VerificationError(
                Reason.UNKNOWN_KEY,
                "a root rotation is checked with the previous root's public key, not its thumbprint: "
                "give --root as a JWK or PEM file",
            )
        new_root = self.rotation.verify_from(root.key)
        return f"endorsed by the trusted root {root.thumbprint}; new root {new_root.thumbprint}"
