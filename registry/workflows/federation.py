"""Mutual recognition: agreements with partner registries, their trust material, visit assurances.

* **Agreements** are negotiated offline with the roots (``clearance agreement
  propose`` / ``sign``), then imported here. Import checks both root
  signatures and that one party is this registry; the agreement then enters
  the next trust bundle, which is pushed to our nodes at once. Terminating it
  publishes a bundle without it: nodes stop trusting the partner as soon as
  that bundle reaches them, like a revocation.
* **Partner sync** lives in :mod:`registry.partners`.
* **Visit assurances** (:mod:`clearance.visit`) are signed here for a valid
  credential and a host in a partner jurisdiction.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.agreement import Agreement
from clearance.bundle import TrustBundle
from clearance.credentials import ClearanceClaim, check_jurisdiction, check_token
from clearance.errors import (
    ConflictError,
    InvalidArgumentError,
    MalformedError,
    NotFoundError,
    VerificationError,
    WorkflowError,
)
from clearance.keys import PublicKey
from clearance.visit import VisitKind, issue_visit_assurance
from registry.context import RegistryContext, loads_list, require_text
from registry.policy import Caller
from registry.publication import publisher
from registry.store import audit
from registry.store.models import AgreementRow, ForeignDocument, Person
from registry.workflows.lifecycle import CredentialState, effective_state, get_credential

log = logging.getLogger("clearance.registry.federation")

IN_FORCE, TERMINATED = "in_force", "terminated"


def our_root(ctx: RegistryContext) -> PublicKey:
    """This registry's root public key (from the key file, or the current bundle when offline)."""
    if ctx.keys.root is not None:
        return ctx.keys.root.public
    return TrustBundle.header_root(publisher.bundle_token(ctx))


def _parse_document(document: str) -> Agreement:
    try:
        raw = json.loads(document)
    except ValueError as exc:
        raise InvalidArgumentError(
            "document", "is not JSON (an agreement is a JWS JSON serialization)"
        ) from exc
    try:
        return Agreement.parse(raw)
    except (MalformedError, VerificationError) as exc:
        raise InvalidArgumentError("document", f"not a valid agreement: {exc}") from exc


def import_agreement(
    ctx: RegistryContext, who: Caller, *, document: str, partner_endpoint: str, partner_ca_pem: str
) -> AgreementRow:
    """Bring an agreement signed by both roots into force here.

    Raises:
        InvalidArgumentError: not an agreement, not signed by both, not ours, or ended.
        ConflictError: another agreement with this partner is in force.
    """
    agreement = _parse_document(document)
    mine = our_root(ctx)
    try:
        party = agreement.party(ctx.config.jurisdiction)
    except VerificationError as exc:
        raise InvalidArgumentError(
            "document", f"this registry ({ctx.config.jurisdiction}) is not a party"
        ) from exc
    if party.root != mine:
        raise InvalidArgumentError("document", "the agreement names another root for this registry")
    try:
        agreement.verify_signatures()
    except VerificationError as exc:
        raise InvalidArgumentError("document", exc.detail) from exc
    now = ctx.now()
    if agreement.expires_at <= now:
        raise InvalidArgumentError("document", f"agreement {agreement.id} has already ended")
    endpoint = require_text(partner_endpoint, "partner_endpoint", max_length=300)
    partner = agreement.counterpart(ctx.config.jurisdiction)
    with ctx.db.transaction() as session:
        existing = session.get(AgreementRow, agreement.id)
        if existing is not None:
            if existing.document == document and existing.state == IN_FORCE:
                return existing  # importing the same document again changes nothing
            raise ConflictError(f"agreement {agreement.id} was already imported ({existing.state})")
        other = session.execute(
            select(AgreementRow.id).where(
                AgreementRow.partner_jurisdiction == partner.jurisdiction, AgreementRow.state == IN_FORCE
            )
        ).first()
        if other is not None:
            raise ConflictError(
                f"agreement {other[0]} with {partner.jurisdiction} is in force; terminate it first"
            )
        row = AgreementRow(
            id=agreement.id,
            partner_jurisdiction=partner.jurisdiction,
            partner_endpoint=endpoint,
            partner_ca_pem=partner_ca_pem or None,
            document=json.dumps(agreement.to_json(), sort_keys=True),
            state=IN_FORCE,
            imported_at=now,
        )
        session.add(row)
        session.flush()
        audit.append(
            session,
            at=now,
            actor=who.label,
            action="agreement.import",
            object_type="agreement",
            object_id=agreement.id,
            details={
                "partner": partner.jurisdiction,
                "endpoint": endpoint,
                "expires_at": agreement.expires_at,
            },
        )
        publisher.publish_bundle(ctx, session, now=now, reason=f"agreement {agreement.id} in force")
    return row


def terminate_agreement(ctx: RegistryContext, who: Caller, *, agreement_id: str, reason: str) -> AgreementRow:
    """End an agreement: the next bundle (published now) no longer lists it."""
    reason = require_text(reason, "reason", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        row = end_agreement(ctx, session, agreement_id, reason=reason, actor=who.label, now=now)
    return row


def end_agreement(
    ctx: RegistryContext, session: Session, agreement_id: str, *, reason: str, actor: str, now: int
) -> AgreementRow:
    row = session.get(AgreementRow, agreement_id) if agreement_id else None
    if row is None:
        raise NotFoundError(f"agreement {agreement_id!r} not found")
    if row.state != IN_FORCE:
        raise WorkflowError(f"agreement {row.id} is already {row.state}")
    row.state, row.terminated_at, row.reason = TERMINATED, now, reason
    for doc in session.execute(
        select(ForeignDocument).where(ForeignDocument.jurisdiction == row.partner_jurisdiction)
    ).scalars():
        session.delete(doc)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor,
        action="agreement.terminate",
        object_type="agreement",
        object_id=row.id,
        details={"reason": reason, "partner": row.partner_jurisdiction},
    )
    publisher.publish_bundle(ctx, session, now=now, reason=f"agreement {row.id} terminated")
    return row


def list_agreements(ctx: RegistryContext) -> list[AgreementRow]:
    with ctx.db.transaction(readonly=True) as session:
        return list(session.execute(select(AgreementRow).order_by(AgreementRow.imported_at)).scalars().all())


def issue_visit(
    ctx: RegistryContext,
    who: Caller,
    *,
    credential_id: str,
    host_jurisdiction: str,
    host_organization: str,
    programme: str,
    kind: str,
    not_before: int,
    not_after: int,
) -> str:
    """Sign a visit assurance for a valid personnel credential and a partner host."""
    try:
        visit_kind = VisitKind(kind)
    except ValueError:
        raise InvalidArgumentError("kind", f"must be one of {[k.value for k in VisitKind]}") from None
    for field_name, value, check in (
        ("host_jurisdiction", host_jurisdiction, check_jurisdiction),
        ("host_organization", host_organization, check_token),
        ("programme", programme, check_token),
    ):
        try:
            check(value, what=field_name)
        except MalformedError as exc:
            raise InvalidArgumentError(field_name, exc.detail) from exc
    now = ctx.now()
    with ctx.db.transaction() as session:
        credential = get_credential(session, credential_id)
        if credential.kind != "personnel":
            raise InvalidArgumentError("credential_id", "a visit assurance is for a personnel credential")
        if effective_state(credential, now) is not CredentialState.VALID:
            raise WorkflowError(f"credential {credential.id} is not valid")
        partner = session.execute(
            select(AgreementRow.id).where(
                AgreementRow.partner_jurisdiction == host_jurisdiction, AgreementRow.state == IN_FORCE
            )
        ).first()
        if partner is None:
            raise WorkflowError(f"no agreement in force with {host_jurisdiction}")
        person = session.get(Person, credential.person_id)
        assert person is not None
        try:
            token = issue_visit_assurance(
                ctx.keys.issuing_key,
                issuer=ctx.config.issuer,
                subject=person.subject,
                holder_thumbprint=credential.holder_thumbprint,
                clearance=ClearanceClaim(
                    credential.jurisdiction, credential.level, tuple(loads_list(credential.categories))
                ),
                host_jurisdiction=host_jurisdiction,
                host_organization=host_organization,
                programme=programme,
                kind=visit_kind,
                issued_at=now,
                not_before=not_before or now,
                expires_at=min(not_after, credential.expires_at),
            )
        except MalformedError as exc:  # only the window is left to refuse
            raise InvalidArgumentError("not_after", exc.detail) from exc
        audit.append(
            session,
            at=now,
            actor=who.label,
            action="visit.assure",
            object_type="credential",
            object_id=credential.id,
            details={
                "host": [host_jurisdiction, host_organization],
                "programme": programme,
                "kind": visit_kind.value,
            },
        )
    return token
