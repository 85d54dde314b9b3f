"""Organizations, their facility clearances, and staff accounts."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearance.credentials import check_jurisdiction
from clearance.errors import (
    ConflictError,
    InvalidArgumentError,
    MalformedError,
    WorkflowError,
)
from registry.context import RegistryContext
from registry.policy import Caller, Role, require_scope
from registry.store import audit
from registry.store.columns import dump_list, load_list, new_id
from registry.store.idempotency import IdempotencyKey
from registry.store.lookup import existing
from registry.store.models import Organization, Staff
from registry.workflows.arguments import (
    Page,
    PageRequest,
    check_level_and_categories,
    parse_public_jwk,
    require_text,
)


class OrganizationKind(enum.StrEnum):
    GOVERNMENT = "government"
    COMPANY = "company"
    UNIVERSITY = "university"
    LABORATORY = "laboratory"


@dataclass(frozen=True)
class FacilityClearance:
    """The clearance an organization holds to handle designated information."""

    level: str
    categories: tuple[str, ...]
    valid_until: int | None
    active: bool


@dataclass(frozen=True)
class OrganizationView:
    id: str
    name: str
    kind: str
    country: str
    created_at: int
    facility: FacilityClearance | None
    """None until a facility clearance is first granted (it stays, inactive, once withdrawn)."""

    @classmethod
    def of(cls, org: Organization) -> OrganizationView:
        facility = None
        if org.facility_level:
            facility = FacilityClearance(
                org.facility_level,
                load_list(org.facility_categories),
                org.facility_valid_until,
                bool(org.facility_active),
            )
        return cls(org.id, org.name, org.kind, org.country, org.created_at, facility)


@dataclass(frozen=True)
class StaffView:
    id: str
    name: str
    role: Role
    organization_id: str | None
    key_thumbprint: str
    disabled: bool

    @classmethod
    def of(cls, staff: Staff) -> StaffView:
        return cls(
            staff.id,
            staff.name,
            Role(staff.role),
            staff.organization_id,
            staff.key_thumbprint,
            staff.disabled,
        )


def get_organization(session: Session, organization_id: str) -> Organization:
    """Raises NotFoundError for an unknown id."""
    return existing(session, Organization, organization_id, "organization")


def create_organization(
    ctx: RegistryContext, caller: Caller, *, name: str, kind: str, country: str, idempotency_key: str = ""
) -> OrganizationView:
    """Register an organization (idempotent per caller and key).

    Raises:
        InvalidArgumentError: a bad name, kind, country or idempotency key.
        ConflictError: the name is taken, or the key was used for another request.
    """
    name = require_text(name, "name", max_length=200)
    try:
        org_kind = OrganizationKind(kind)
    except ValueError:
        raise InvalidArgumentError("kind", f"must be one of {[k.value for k in OrganizationKind]}") from None
    try:
        check_jurisdiction(country, what="country")
    except MalformedError as exc:
        raise InvalidArgumentError("country", exc.detail) from exc
    idempotency = IdempotencyKey.of(
        caller.principal,
        idempotency_key,
        "create_organization",
        {"name": name, "kind": kind, "country": country},
    )
    now = ctx.now()
    with ctx.db.transaction() as session:
        earlier = idempotency.earlier(session)
        if earlier is not None:
            return OrganizationView.of(get_organization(session, earlier))
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
        idempotency.remember(session, org.id, now)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="organization.create",
            object_type="organization",
            object_id=org.id,
            details={"name": name, "kind": org_kind.value, "country": country},
        )
        return OrganizationView.of(org)


def read_organization(ctx: RegistryContext, caller: Caller, organization_id: str) -> OrganizationView:
    """Raises NotFoundError, or PermissionDeniedError for another organization's officer."""
    with ctx.db.transaction(readonly=True) as session:
        org = get_organization(session, organization_id)
        require_scope(caller, org.id)
        return OrganizationView.of(org)


def list_organizations(ctx: RegistryContext, page: PageRequest) -> Page[OrganizationView]:
    query = select(Organization).order_by(Organization.created_at, Organization.id)
    return page.read(ctx.db, query, OrganizationView.of)


def grant_facility_clearance(
    ctx: RegistryContext,
    caller: Caller,
    *,
    organization_id: str,
    level: str,
    categories: list[str],
    valid_until: int,
) -> OrganizationView:
    """Grant (or renew) an organization's facility clearance.

    Raises:
        InvalidArgumentError: an unknown level or category, or a validity out of bounds.
        NotFoundError: unknown organization.
    """
    check_level_and_categories(ctx.config, level, categories)
    now = ctx.now()
    if valid_until <= now:
        raise InvalidArgumentError("valid_until", "must be in the future")
    if valid_until > now + ctx.config.clearance_validity:
        raise InvalidArgumentError("valid_until", "must be within the clearance validity period (10 years)")
    with ctx.db.transaction() as session:
        org = get_organization(session, organization_id)
        org.facility_level = level
        org.facility_categories = dump_list(categories)
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
        return OrganizationView.of(org)


# -- staff ---------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who a caller is to this registry, and which registry it is."""

    caller: Caller
    jurisdiction: str


def who_am_i(ctx: RegistryContext, caller: Caller) -> Identity:
    return Identity(caller, ctx.config.jurisdiction)


def create_staff(
    ctx: RegistryContext, caller: Caller, *, name: str, role: str, organization_id: str, public_jwk: str
) -> StaffView:
    """A staff account for the holder of ``public_jwk``.

    Raises:
        InvalidArgumentError: a bad name, role, key, or an organization for a role without one.
        NotFoundError: a security officer's unknown organization.
        ConflictError: the key already belongs to a staff member.
    """
    name = require_text(name, "name", max_length=200)
    staff_role = _staff_role(role)
    key = parse_public_jwk(public_jwk, "public_jwk")
    now = ctx.now()
    with ctx.db.transaction() as session:
        _check_role_and_key(session, staff_role, organization_id, key.thumbprint)
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
        return StaffView.of(staff)


def _staff_role(role: str) -> Role:
    """Raises InvalidArgumentError for an unknown role or the node role."""
    try:
        staff_role = Role(role)
    except ValueError:
        raise InvalidArgumentError(
            "role", f"must be one of {[r.value for r in Role if r is not Role.NODE]}"
        ) from None
    if staff_role is Role.NODE:
        raise InvalidArgumentError("role", "nodes enroll with a token, they are not staff")
    return staff_role


def _check_role_and_key(session: Session, role: Role, organization_id: str, thumbprint: str) -> None:
    """Raises InvalidArgumentError, NotFoundError or ConflictError (a key already in use)."""
    if role is Role.SECURITY_OFFICER:
        get_organization(session, organization_id)
    elif organization_id:
        raise InvalidArgumentError("organization_id", "only security officers belong to an organization")
    if session.execute(select(Staff.id).where(Staff.key_thumbprint == thumbprint)).first():
        raise ConflictError("this key already belongs to a staff member")


def reassign_staff(
    ctx: RegistryContext, caller: Caller, *, staff_id: str, role: str, organization_id: str, public_jwk: str
) -> StaffView:
    """Move a staff account to another role, with a new key (a staff member changes post).

    The account keeps its id, so the separation-of-duties rules, which compare
    ids, still count what it did in its old role. Its old key stops working as
    a disabled account's does (within seconds, once caches expire).

    Raises:
        InvalidArgumentError: a bad role or key, or an organization for a role without one.
        NotFoundError: unknown staff member or organization.
        ConflictError: the key already belongs to a staff member.
        WorkflowError: one's own account (so an administrator always remains), or a disabled one.
    """
    new_role = _staff_role(role)
    key = parse_public_jwk(public_jwk, "public_jwk")
    now = ctx.now()
    with ctx.db.transaction() as session:
        staff = existing(session, Staff, staff_id, "staff", lock=True)
        if staff.id == caller.principal:
            raise WorkflowError("you cannot reassign your own account")
        if staff.disabled:
            raise WorkflowError(f"staff {staff.id} is disabled")
        _check_role_and_key(session, new_role, organization_id, key.thumbprint)
        previous = staff.role
        staff.role, staff.organization_id = new_role.value, organization_id or None
        staff.public_jwk, staff.key_thumbprint = json.dumps(key.jwk), key.thumbprint
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="staff.reassign",
            object_type="staff",
            object_id=staff.id,
            details={
                "from": previous,
                "role": new_role.value,
                "organization_id": organization_id,
                "key": key.thumbprint,
            },
        )
        return StaffView.of(staff)


def list_staff(ctx: RegistryContext, page: PageRequest) -> Page[StaffView]:
    return page.read(ctx.db, select(Staff).order_by(Staff.created_at, Staff.id), StaffView.of)


def disable_staff(ctx: RegistryContext, caller: Caller, staff_id: str) -> StaffView:
    """Disable a staff account (its tokens stop working).

    Raises:
        NotFoundError: unknown staff member.
        WorkflowError: one's own account, or the last administrator.
    """
    now = ctx.now()
    with ctx.db.transaction() as session:
        staff = existing(session, Staff, staff_id, "staff")
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
        return StaffView.of(staff)
