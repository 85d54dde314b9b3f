"""Organizations, their facility clearances, staff accounts, and node enrollment."""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearance.credentials import check_jurisdiction
from clearance.errors import (
    AuthenticationError,
    ConflictError,
    InvalidArgumentError,
    MalformedError,
    NotFoundError,
    WorkflowError,
)
from clearance.keys import PublicKey
from registry.context import (
    RegistryContext,
    dumps,
    find_idempotent,
    loads_list,
    new_id,
    remember_idempotent,
    request_hash,
    require_text,
)
from registry.policy import Caller, Role, require_scope
from registry.store import audit
from registry.store.models import EnrollmentToken, Node, Organization, Staff


class OrganizationKind(enum.StrEnum):
    GOVERNMENT = "government"
    COMPANY = "company"
    UNIVERSITY = "university"
    LABORATORY = "laboratory"


MAX_PAGE = 500


def page_bounds(page_size: int, page_token: str) -> tuple[int, int]:
    """(limit, offset) for a page request.

    Raises:
        InvalidArgumentError: a negative size or a token that is not ours.
    """
    if page_size < 0:
        raise InvalidArgumentError("page.page_size", "must not be negative")
    limit = min(page_size or 100, MAX_PAGE)
    if not page_token:
        return limit, 0
    if not page_token.isdigit() or len(page_token) > 12:
        raise InvalidArgumentError("page.page_token", "is not a token this registry issued")
    return limit, int(page_token)


def next_token(offset: int, limit: int, returned: int) -> str:
    return str(offset + limit) if returned == limit else ""


def get_organization(session: Session, organization_id: str) -> Organization:
    """Raises NotFoundError for an unknown id."""
    org = session.get(Organization, organization_id) if organization_id else None
    if org is None:
        raise NotFoundError(f"organization {organization_id!r} not found")
    return org


def create_organization(
    ctx: RegistryContext, caller: Caller, *, name: str, kind: str, country: str, idempotency_key: str = ""
) -> Organization:
    name = require_text(name, "name", max_length=200)
    try:
        org_kind = OrganizationKind(kind)
    except ValueError:
        raise InvalidArgumentError("kind", f"must be one of {[k.value for k in OrganizationKind]}") from None
    try:
        check_jurisdiction(country, what="country")
    except MalformedError as exc:
        raise InvalidArgumentError("country", exc.detail) from exc
    fingerprint = request_hash("create_organization", {"name": name, "kind": kind, "country": country})
    now = ctx.now()
    with ctx.db.transaction() as session:
        earlier = find_idempotent(session, caller, idempotency_key, "create_organization", fingerprint)
        if earlier is not None:
            return get_organization(session, earlier)
        if session.execute(select(Organization.id).where(Organization.name == name)).first():
            raise ConflictError(f"an organization named {name!r} already exists")
        org = Organization(
            id=new_id("org"),
            name=name,
            kind=org_kind.value,
            country=country,
            created_at=now,
            facility_active=False,
        )
        session.add(org)
        session.flush()
        remember_idempotent(session, caller, idempotency_key, "create_organization", fingerprint, org.id, now)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="organization.create",
            object_type="organization",
            object_id=org.id,
            details={"name": name, "kind": org_kind.value, "country": country},
        )
    return org


def read_organization(ctx: RegistryContext, caller: Caller, organization_id: str) -> Organization:
    with ctx.db.transaction() as session:
        org = get_organization(session, organization_id)
        require_scope(caller, org.id)
        return org


def list_organizations(
    ctx: RegistryContext, page_size: int, page_token: str
) -> tuple[list[Organization], str]:
    limit, offset = page_bounds(page_size, page_token)
    with ctx.db.transaction() as session:
        rows = list(
            session.execute(
                select(Organization)
                .order_by(Organization.created_at, Organization.id)
                .limit(limit)
                .offset(offset)
            )
            .scalars()
            .all()
        )
    return rows, next_token(offset, limit, len(rows))


def facility_categories(org: Organization) -> list[str]:
    return loads_list(org.facility_categories)


def check_level_and_categories(ctx: RegistryContext, level: str, categories: list[str]) -> None:
    """Raises InvalidArgumentError unless the level and categories are this jurisdiction's."""
    if level not in ctx.config.levels:
        raise InvalidArgumentError("level", f"must be one of {list(ctx.config.levels)}")
    if not categories:
        raise InvalidArgumentError("categories", "at least one category is required")
    unknown = sorted(set(categories) - set(ctx.config.categories))
    if unknown:
        raise InvalidArgumentError(
            "categories", f"unknown categories {unknown}; known: {list(ctx.config.categories)}"
        )
    if len(set(categories)) != len(categories):
        raise InvalidArgumentError("categories", "repeat an entry")


def grant_facility_clearance(
    ctx: RegistryContext,
    caller: Caller,
    *,
    organization_id: str,
    level: str,
    categories: list[str],
    valid_until: int,
) -> Organization:
    check_level_and_categories(ctx, level, categories)
    now = ctx.now()
    if valid_until <= now:
        raise InvalidArgumentError("valid_until", "must be in the future")
    if valid_until > now + ctx.config.clearance_validity:
        raise InvalidArgumentError("valid_until", "must be within the clearance validity period (10 years)")
    with ctx.db.transaction() as session:
        org = get_organization(session, organization_id)
        org.facility_level = level
        org.facility_categories = dumps(categories)
        org.facility_valid_until = valid_until
        org.facility_active = True
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="facility.grant",
            object_type="organization",
            object_id=org.id,
            details={"level": level, "categories": categories, "valid_until": valid_until},
        )
    return org


@dataclass(frozen=True)
class EnrollmentTokenIssued:
    token: str
    expires_at: int


def create_enrollment_token(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, ttl_seconds: int
) -> EnrollmentTokenIssued:
    ttl = ttl_seconds or 86400
    if not 60 <= ttl <= 7 * 86400:
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
    return EnrollmentTokenIssued(token, now + ttl)


def enroll_node(ctx: RegistryContext, *, token: str, name: str, public_jwk: str) -> Node:
    """Redeem a one-time enrollment token for the node key ``public_jwk``.

    Raises:
        AuthenticationError: unknown, used or expired token (all look the same from outside).
        InvalidArgumentError: a bad name or key.
    """
    now = ctx.now()
    with ctx.db.transaction() as session:
        return redeem_enrollment_token(session, token=token, name=name, public_jwk=public_jwk, now=now)


def redeem_enrollment_token(session: Session, *, token: str, name: str, public_jwk: str, now: int) -> Node:
    """:func:`enroll_node` inside the caller's transaction (so more can join it atomically).

    Raises:
        AuthenticationError: unknown, used or expired token (all look the same from outside).
        InvalidArgumentError: a bad name or key.
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
    ctx: RegistryContext, caller: Caller, *, organization_id: str, page_size: int, page_token: str
) -> tuple[list[Node], str]:
    if caller.role is Role.SECURITY_OFFICER:
        organization_id = organization_id or (caller.organization_id or "")
        require_scope(caller, organization_id)
    limit, offset = page_bounds(page_size, page_token)
    with ctx.db.transaction() as session:
        query = select(Node).order_by(Node.enrolled_at, Node.id)
        if organization_id:
            query = query.where(Node.organization_id == organization_id)
        rows = list(session.execute(query.limit(limit).offset(offset)).scalars().all())
    return rows, next_token(offset, limit, len(rows))


def parse_public_jwk(text: str, field_name: str) -> PublicKey:
    """Raises InvalidArgumentError unless ``text`` is a public Ed25519 or P-256 JWK."""
    try:
        return PublicKey.from_jwk(json.loads(text))
    except (ValueError, MalformedError) as exc:
        detail = exc.detail if isinstance(exc, MalformedError) else "is not JSON"
        raise InvalidArgumentError(field_name, f"not a public Ed25519/P-256 JWK: {detail}") from exc


# -- staff ---------------------------------------------------------------------


def create_staff(
    ctx: RegistryContext, caller: Caller, *, name: str, role: str, organization_id: str, public_jwk: str
) -> Staff:
    name = require_text(name, "name", max_length=200)
    try:
        staff_role = Role(role)
    except ValueError:
        raise InvalidArgumentError(
            "role", f"must be one of {[r.value for r in Role if r is not Role.NODE]}"
        ) from None
    if staff_role is Role.NODE:
        raise InvalidArgumentError("role", "nodes enroll with a token, they are not staff")
    key = parse_public_jwk(public_jwk, "public_jwk")
    now = ctx.now()
    with ctx.db.transaction() as session:
        if staff_role is Role.SECURITY_OFFICER:
            get_organization(session, organization_id)
        elif organization_id:
            raise InvalidArgumentError("organization_id", "only security officers belong to an organization")
        if session.execute(select(Staff.id).where(Staff.key_thumbprint == key.thumbprint)).first():
            raise ConflictError("this key already belongs to a staff member")
        staff = Staff(
            id=new_id("staff"),
            name=name,
            role=staff_role.value,
            organization_id=organization_id or None,
            public_jwk=json.dumps(key.jwk),
            key_thumbprint=key.thumbprint,
            disabled=False,
            created_at=now,
        )
        session.add(staff)
        session.flush()
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="staff.create",
            object_type="staff",
            object_id=staff.id,
            details={"role": staff_role.value, "organization_id": organization_id, "key": key.thumbprint},
        )
    return staff


def list_staff(ctx: RegistryContext, page_size: int, page_token: str) -> tuple[list[Staff], str]:
    limit, offset = page_bounds(page_size, page_token)
    with ctx.db.transaction() as session:
        rows = list(
            session.execute(select(Staff).order_by(Staff.created_at, Staff.id).limit(limit).offset(offset))
            .scalars()
            .all()
        )
    return rows, next_token(offset, limit, len(rows))


def disable_staff(ctx: RegistryContext, caller: Caller, staff_id: str) -> Staff:
    now = ctx.now()
    with ctx.db.transaction() as session:
        staff = session.get(Staff, staff_id)
        if staff is None:
            raise NotFoundError(f"staff {staff_id!r} not found")
        if staff.id == caller.principal:
            raise WorkflowError("you cannot disable your own account")
        if staff.role == Role.ADMINISTRATOR.value:
            active_admins = session.execute(
                select(func.count())
                .select_from(Staff)
                .where(Staff.role == Role.ADMINISTRATOR.value, Staff.disabled.is_(False))
            ).scalar_one()
            if active_admins <= 1:
                raise WorkflowError("cannot disable the last administrator")
        staff.disabled = True
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="staff.disable",
            object_type="staff",
            object_id=staff.id,
        )
    return staff
