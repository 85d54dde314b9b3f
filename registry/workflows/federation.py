"""Mutual recognition: agreements with partner registries, their trust material, visit assurances.

* **Agreements** are negotiated offline with the roots (``clearance agreement
  propose`` / ``sign``), then imported here. Import checks both root
  signatures and that one party is this registry; the agreement then enters
  the next trust bundle, which is pushed to our nodes at once. Terminating it
  publishes a bundle without it: nodes stop trusting the partner as soon as
  that bundle reaches them, like a revocation.
* **Partner sync** lives in :mod:`registry.publication.partners`.
* **Visit assurances** (:mod:`clearance.visit`) are signed here for a valid
  credential and a host in a partner jurisdiction.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.agreement import Agreement
from clearance.bundle import TrustBundle
from clearance.credentials import ClearanceClaim, check_jurisdiction, check_token
from clearance.errors import (
    ClearanceError,
    ConflictError,
    InvalidArgumentError,
    MalformedError,
    VerificationError,
    WorkflowError,
)
from clearance.keys import PublicKey
from clearance.visit import VisitKind, issue_visit_assurance
from registry.context import RegistryContext
from registry.policy import Caller
from registry.publication import publisher
from registry.store import audit
from registry.store.columns import load_list
from registry.store.lookup import existing
from registry.store.models import AgreementRow, ForeignDocument, Person
from registry.workflows.arguments import require_text
from registry.workflows.credentials import CredentialState, effective_state
from registry.workflows.lifecycle import get_credential

log = logging.getLogger("clearance.registry.federation")

VISIT_DEFAULT = 30 * 86400
"""How long a visit assurance lasts when the request names no end."""


class AgreementState(enum.StrEnum):
    IN_FORCE = "in_force"
    TERMINATED = "terminated"


IN_FORCE, TERMINATED = AgreementState.IN_FORCE.value, AgreementState.TERMINATED.value


@dataclass(frozen=True)
class AgreementView:
    """An agreement as this registry holds it, and how its partner sync went."""

    id: str
    partner_jurisdiction: str
    partner_endpoint: str
    partner_ca_pem: str | None
    document: str
    state: AgreementState
    """As stored: in force until terminated (see :attr:`expired`)."""
    expired: bool
    """Past the agreement's own end, as of when it was read (an unreadable document counts as not)."""
    problem: str | None
    last_sync: int | None

    @classmethod
    def of(cls, row: AgreementRow, now: int) -> AgreementView:
        try:
            expired = Agreement.parse(json.loads(row.document)).expires_at <= now
        except (ValueError, ClearanceError):
            expired = False
        return cls(
            id=row.id,
            partner_jurisdiction=row.partner_jurisdiction,
            partner_endpoint=row.partner_endpoint,
            partner_ca_pem=row.partner_ca_pem,
            document=row.document,
            state=AgreementState(row.state),
            expired=expired,
            problem=row.problem,
            last_sync=row.last_sync,
        )


def our_root(ctx: RegistryContext) -> PublicKey:
    """This registry's root public key (from the key file, or the current bundle when offline).

    Raises:
        NotFoundError: the root is offline and no bundle was published yet.
    """
    if ctx.keys.root is not None:
        return ctx.keys.root.public
    return TrustBundle.header_root(publisher.bundle_token(ctx))


def root_jwk_json(ctx: RegistryContext) -> str:
    """:func:`our_root` as a JWK in JSON (what a node pins).

    Raises:
        NotFoundError: the root is offline and no bundle was published yet.
    """
    return json.dumps(our_root(ctx).jwk)


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
) -> AgreementView:
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
                return AgreementView.of(existing, now)  # importing the same document again changes nothing
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
        return AgreementView.of(row, now)


def terminate_agreement(
    ctx: RegistryContext, who: Caller, *, agreement_id: str, reason: str
) -> AgreementView:
    """End an agreement: the next bundle (published now) no longer lists it.

    Raises:
        InvalidArgumentError: no reason given.
        NotFoundError: unknown agreement.
        WorkflowError: it has already ended.
    """
    reason = require_text(reason, "reason", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        row = end_agreement(ctx, session, agreement_id, reason=reason, actor=who.label, now=now)
        return AgreementView.of(row, now)


def end_agreement(
    ctx: RegistryContext, session: Session, agreement_id: str, *, reason: str, actor: str, now: int
) -> AgreementRow:
    """Terminate an agreement in the caller's transaction, drop the partner's material, publish a bundle.

    Raises:
        NotFoundError: unknown agreement.
        WorkflowError: it has already ended.
    """
    row = existing(session, AgreementRow, agreement_id, "agreement")
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


def list_agreements(ctx: RegistryContext) -> list[AgreementView]:
    now = ctx.now()
    with ctx.db.transaction(readonly=True) as session:
        rows = session.execute(select(AgreementRow).order_by(AgreementRow.imported_at)).scalars()
        return [AgreementView.of(row, now) for row in rows]


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
    """Sign a visit assurance for a valid personnel credential and a partner host.

    ``not_before`` 0 means now, ``not_after`` 0 means :data:`VISIT_DEFAULT` from now;
    the assurance never outlives the credential.

    Raises:
        InvalidArgumentError: a bad kind, host, programme or window, or not a personnel credential.
        NotFoundError: unknown credential.
        WorkflowError: the credential is not valid, or no agreement with the host is in force.
    """
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
    not_after = not_after or now + VISIT_DEFAULT
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
                    credential.jurisdiction, credential.level, load_list(credential.categories)
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
