"""Nodes: a one-time enrollment token, the node's key, and its organization's facility credential.

A security officer (or an administrator) asks for a token; the node redeems
it once with its public key and receives, in the same transaction, its
organization's facility credential when the organization is cleared, plus the
trust bundle and root key it pins.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.errors import AuthenticationError, ConflictError, InvalidArgumentError, WorkflowError
from registry.context import RegistryContext
from registry.policy import SYSTEM, Caller, require_scope
from registry.publication import publisher
from registry.store import audit
from registry.store.columns import new_id
from registry.store.db import retry_conflicts
from registry.store.models import EnrollmentToken, Node
from registry.workflows.arguments import Page, PageRequest, of_organization, parse_public_jwk, require_text
from registry.workflows.federation import root_jwk_json
from registry.workflows.issuance.facility import mint_facility
from registry.workflows.issuance.records import insert_all
from registry.workflows.organizations import get_organization

MIN_TOKEN_TTL = 60
MAX_TOKEN_TTL = 7 * 86400
DEFAULT_TOKEN_TTL = 86400


@dataclass(frozen=True)
class NodeView:
    id: str
    organization_id: str
    name: str
    key_thumbprint: str
    enrolled_at: int

    @classmethod
    def of(cls, node: Node) -> NodeView:
        return cls(node.id, node.organization_id, node.name, node.key_thumbprint, node.enrolled_at)


@dataclass(frozen=True)
class EnrollmentTokenIssued:
    """A one-time token for a node of an organization, and the root its node is to pin."""

    token: str
    expires_at: int
    root_fingerprint: str
    """Empty when the root key is offline (the operator gives it out of band)."""


@dataclass(frozen=True)
class Enrollment:
    """What a node receives when it enrolls."""

    node: NodeView
    trust_bundle: str
    root_jwk: str
    """The registry's root public key (JSON), which the node pins."""
    facility_credential: str
    """Empty while the organization holds no facility clearance."""


def create_enrollment_token(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, ttl_seconds: int
) -> EnrollmentTokenIssued:
    """A one-time token with which one node of the organization enrolls.

    Raises:
        InvalidArgumentError: a lifetime out of bounds.
        NotFoundError: unknown organization.
        PermissionDeniedError: another organization's officer.
    """
    ttl = ttl_seconds or DEFAULT_TOKEN_TTL
    if not MIN_TOKEN_TTL <= ttl <= MAX_TOKEN_TTL:
        raise InvalidArgumentError("ttl_seconds", "must be between 60 seconds and 7 days")
    token = "enr_" + secrets.token_urlsafe(24)
    now = ctx.now()
    with ctx.db.transaction() as session:
        org = get_organization(session, organization_id)
        require_scope(caller, org.id)
        row = EnrollmentToken(
            id=new_id("tok"),
            organization_id=org.id,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=now + ttl,
        )
        session.add(row)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="node.enrollment_token",
            object_type="organization",
            object_id=org.id,
            details={"token_id": row.id, "expires_at": now + ttl},
        )
    root = ctx.keys.root
    return EnrollmentTokenIssued(token, now + ttl, root.kid if root else "")


def enroll_node(ctx: RegistryContext, *, token: str, name: str, public_jwk: str) -> Enrollment:
    """Enroll a node and, if its organization is cleared, issue its facility credential: one transaction.

    Enrollment stands without a facility credential when the organization is
    not cleared (yet). Any other failure rolls both back and leaves the
    one-time token unused, so the operator can simply try again.

    Raises:
        AuthenticationError: unknown, used or expired token.
        InvalidArgumentError: a bad name or key.
        ConflictError: the node key is already enrolled.
        StorageError: the database failed.
    """

    def attempt() -> tuple[NodeView, str]:
        now = ctx.now()
        open_list = ctx.open_list.get(now)  # before the transaction: it may open one of its own
        with ctx.db.transaction() as session:
            node = _redeem(session, token=token, name=name, public_jwk=public_jwk, now=now)
            try:
                minted = mint_facility(ctx, session, node.organization_id, node.id, open_list, now)
            except WorkflowError:
                return NodeView.of(node), ""
            insert_all(session, [minted])
            audit.append(
                session,
                at=now,
                actor=SYSTEM.label,
                action="credential.issue_facility",
                object_type="credential",
                object_id=minted.record.id,
                details={"organization_id": node.organization_id, "node_id": node.id},
            )
        ctx.open_list.count()
        return NodeView.of(node), minted.sd_jwt

    node, facility = retry_conflicts(attempt)
    return Enrollment(node, publisher.bundle_token(ctx), root_jwk_json(ctx), facility)


def _redeem(session: Session, *, token: str, name: str, public_jwk: str, now: int) -> Node:
    """Redeem a one-time enrollment token for the node key ``public_jwk`` (in the caller's transaction).

    Raises:
        AuthenticationError: unknown, used or expired token (all look the same from outside).
        InvalidArgumentError: a bad name or key.
        ConflictError: the node key is already enrolled.
    """
    name = require_text(name, "name", max_length=200)
    key = parse_public_jwk(public_jwk, "public_jwk")
    digest = hashlib.sha256((token or "").encode()).hexdigest()
    row = session.execute(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == digest).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise AuthenticationError("enrollment token is unknown, already used or expired")
    if session.execute(select(Node.id).where(Node.key_thumbprint == key.thumbprint)).first():
        raise ConflictError("this node key is already enrolled")
    node = Node(
        id=new_id("node"),
        organization_id=row.organization_id,
        name=name,
        public_jwk=json.dumps(key.jwk),
        key_thumbprint=key.thumbprint,
        enrolled_at=now,
        disabled=False,
    )
    session.add(node)
    row.used_at, row.node_id = now, node.id
    audit.append(
        session,
        at=now,
        actor=f"node:{node.id}",
        action="node.enroll",
        object_type="node",
        object_id=node.id,
        details={"organization_id": row.organization_id, "key": key.thumbprint, "token_id": row.id},
    )
    return node


def list_nodes(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, page: PageRequest
) -> Page[NodeView]:
    """The enrolled nodes (of one organization, always the officer's own for a security officer).

    Raises:
        PermissionDeniedError: an officer naming another organization.
    """
    query = select(Node).order_by(Node.enrolled_at, Node.id)
    query = of_organization(query, Node.organization_id, caller, organization_id)
    return page.read(ctx.db, query, NodeView.of)
