"""Issuing an organization's facility credential, bound to the key of one of its nodes."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from clearance.credentials import ClearanceClaim, StatusReference, issue_facility_credential
from clearance.errors import NotFoundError, WorkflowError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.policy import Caller
from registry.store import audit
from registry.store.columns import load_list, new_id
from registry.store.db import retry_conflicts
from registry.store.idempotency import IdempotencyKey
from registry.store.lookup import existing
from registry.store.models import CredentialRecord, Node, Organization
from registry.store.statuslists import OpenStatusList
from registry.workflows.issuance.records import IssuedCredential, Minted, earlier, insert_all


def issue_facility(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, node_id: str, idempotency_key: str = ""
) -> IssuedCredential:
    """Issue an organization's facility credential bound to its node's key (idempotent per caller and key).

    Raises:
        InvalidArgumentError: the idempotency key is too long.
        NotFoundError: unknown organization, or a node not of it.
        WorkflowError: the organization holds no valid facility clearance.
        ConflictError: the idempotency key was used for another request.
        WriteConflictError: the status index was taken again and again.
    """
    idempotency = IdempotencyKey.of(
        caller.principal, idempotency_key, "issue_facility", {"org": organization_id, "node": node_id}
    )

    def attempt() -> IssuedCredential:
        now = ctx.now()
        open_list = ctx.open_list.get(now)  # before the transaction: it may open one of its own
        with ctx.db.transaction() as session:
            earlier_id = idempotency.earlier(session)
            if earlier_id is not None:
                return earlier(ctx, session, earlier_id, now)
            minted = mint_facility(ctx, session, organization_id, node_id, open_list, now)
            insert_all(session, [minted])
            session.flush()
            idempotency.remember(session, minted.record.id, now)
            audit.append(
                session,
                at=now,
                actor=caller.label,
                action="credential.issue_facility",
                object_type="credential",
                object_id=minted.record.id,
                details={"organization_id": organization_id, "node_id": node_id},
            )
        ctx.open_list.count()
        return minted.issued(open_list.uri, now)

    return retry_conflicts(attempt)


def mint_facility(
    ctx: RegistryContext,
    session: Session,
    organization_id: str,
    node_id: str,
    open_list: OpenStatusList,
    now: int,
) -> Minted:
    """The signed facility credential of an organization's node, and its row (not written yet).

    A sealed copy is always kept: the credential names no person, and the
    organization may ask for it again.

    Raises:
        NotFoundError: unknown organization, or a node not of it.
        WorkflowError: the organization holds no valid facility clearance.
    """
    org = existing(session, Organization, organization_id, "organization")
    node = session.get(Node, node_id) if node_id else None
    if node is None or node.organization_id != org.id:
        raise NotFoundError(f"node {node_id!r} of {org.name} not found")
    if not org.facility_active or org.facility_level is None or (org.facility_valid_until or 0) <= now:
        raise WorkflowError(f"{org.name} holds no valid facility clearance")
    key = ctx.keys.issuing_key
    index = ctx.random_index(open_list.size)
    expires = min(now + ctx.config.credential_lifetime, org.facility_valid_until or now)
    credential_id = new_id("crd")
    sd_jwt = issue_facility_credential(
        key,
        issuer=ctx.config.issuer,
        subject=f"org_{org.id}",
        node_key=PublicKey.from_jwk(json.loads(node.public_jwk)),
        organization={"id": org.id, "name": org.name, "kind": org.kind, "country": org.country},
        clearance=ClearanceClaim(
            ctx.config.jurisdiction, org.facility_level, load_list(org.facility_categories)
        ),
        status=StatusReference(open_list.uri, index),
        issued_at=now,
        expires_at=expires,
    ).serialize()
    record = CredentialRecord(
        id=credential_id,
        kind="facility",
        person_id=None,
        organization_id=org.id,
        assessment_id=None,
        node_id=node.id,
        jurisdiction=ctx.config.jurisdiction,
        level=org.facility_level,
        categories=org.facility_categories or "[]",
        state="valid",
        state_reason=None,
        status_list_id=open_list.id,
        status_index=index,
        issued_at=now,
        expires_at=expires,
        holder_thumbprint=node.key_thumbprint,
        issuing_kid=key.kid,
        suspended_by=None,
        sealed_sd_jwt=ctx.keys.kek.seal(credential_id, sd_jwt.encode()).to_blob(),
    )
    return Minted(record, sd_jwt)
