"""People: pseudonymous records whose personal data is sealed, and read only with a stated purpose."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.errors import InvalidArgumentError
from registry.context import RegistryContext
from registry.policy import Caller, Role, require_scope
from registry.store import audit
from registry.store.columns import new_id
from registry.store.envelope import Sealed
from registry.store.idempotency import IdempotencyKey
from registry.store.lookup import existing
from registry.store.models import Person
from registry.workflows import lifecycle
from registry.workflows.arguments import Page, PageRequest, of_organization, require_text
from registry.workflows.organizations import get_organization

_COUNTRY = re.compile(r"[A-Z]{2}")
MAX_FAMILY = 50


@dataclass(frozen=True)
class FamilyMember:
    relation: str
    name: str
    nationality: str
    cohabitant: bool


@dataclass(frozen=True)
class PersonalData:
    """What the assessment needs to know about a person; stored only sealed."""

    given_name: str
    family_name: str
    birthdate: str
    nationality: str
    family: tuple[FamilyMember, ...] = field(default=())

    def __post_init__(self) -> None:
        require_text(self.given_name, "personal_data.given_name", max_length=100)
        require_text(self.family_name, "personal_data.family_name", max_length=100)
        try:
            born = date.fromisoformat(self.birthdate)
        except ValueError:
            raise InvalidArgumentError("personal_data.birthdate", "must be a date YYYY-MM-DD") from None
        if not date(1900, 1, 1) <= born <= date.today():
            raise InvalidArgumentError("personal_data.birthdate", "is not a plausible birth date")
        if not _COUNTRY.fullmatch(self.nationality):
            raise InvalidArgumentError("personal_data.nationality", "must be a two-letter ISO 3166 code")
        if len(self.family) > MAX_FAMILY:
            raise InvalidArgumentError("personal_data.family", f"at most {MAX_FAMILY} entries")
        for i, member in enumerate(self.family):
            require_text(member.relation, f"personal_data.family[{i}].relation", max_length=50)
            require_text(member.name, f"personal_data.family[{i}].name", max_length=200)
            if not _COUNTRY.fullmatch(member.nationality):
                raise InvalidArgumentError(
                    f"personal_data.family[{i}].nationality", "must be a two-letter ISO code"
                )

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonalData:
        raw = json.loads(data)
        family = tuple(FamilyMember(**m) for m in raw.pop("family", []))
        return cls(**raw, family=family)


@dataclass(frozen=True)
class PersonView:
    """A person as the registry shows them: a pseudonymous record, never their personal data."""

    id: str
    subject: str
    organization_id: str | None
    enrolled_at: int

    @classmethod
    def of(cls, person: Person) -> PersonView:
        return cls(person.id, person.subject, person.organization_id, person.enrolled_at)


def get_person(session: Session, person_id: str) -> Person:
    """Raises NotFoundError for an unknown id."""
    return existing(session, Person, person_id, "person")


def enroll_person(
    ctx: RegistryContext,
    caller: Caller,
    *,
    organization_id: str,
    data: PersonalData,
    idempotency_key: str = "",
) -> PersonView:
    """Enroll a person of an organization, their personal data sealed (idempotent per caller and key).

    Raises:
        InvalidArgumentError: the idempotency key is too long.
        NotFoundError: unknown organization.
        PermissionDeniedError: another organization's officer.
        ConflictError: the key was used for another request.
    """
    require_scope(caller, organization_id)
    idempotency = IdempotencyKey.of(
        caller.principal,
        idempotency_key,
        "enroll_person",
        {"org": organization_id, "data": data.to_bytes().decode()},
    )
    now = ctx.now()
    with ctx.db.transaction() as session:
        earlier = idempotency.earlier(session)
        if earlier is not None:
            return PersonView.of(get_person(session, earlier))
        get_organization(session, organization_id)
        person_id = new_id("per")
        sealed = ctx.keys.kek.seal(person_id, data.to_bytes())
        person = Person(
            id=person_id,
            subject=ctx.keys.pseudonym(person_id),
            organization_id=organization_id,
            enrolled_at=now,
            personal_data=sealed.ciphertext,
            wrapped_key=sealed.wrapped_key,
            kek_id=sealed.kek_id,
        )
        session.add(person)
        session.flush()
        idempotency.remember(session, person_id, now)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="person.enroll",
            object_type="person",
            object_id=person_id,
            details={"organization_id": organization_id, "subject": person.subject},
        )
        return PersonView.of(person)


def read_person(ctx: RegistryContext, caller: Caller, person_id: str) -> PersonView:
    """Raises NotFoundError, or PermissionDeniedError for another organization's officer."""
    with ctx.db.transaction(readonly=True) as session:
        person = get_person(session, person_id)
        require_scope(caller, person.organization_id)
        return PersonView.of(person)


def list_people(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, page: PageRequest
) -> Page[PersonView]:
    """People, in enrollment order (of one organization; always the officer's own for an officer).

    Raises:
        PermissionDeniedError: an officer naming another organization.
    """
    query = select(Person).order_by(Person.enrolled_at, Person.id)
    query = of_organization(query, Person.organization_id, caller, organization_id)
    return page.read(ctx.db, query, PersonView.of)


def unseal(ctx: RegistryContext, person: Person) -> PersonalData:
    return PersonalData.from_bytes(
        ctx.keys.kek.open(person.id, Sealed(person.personal_data, person.wrapped_key, person.kek_id))
    )


def read_personal_data(ctx: RegistryContext, caller: Caller, *, person_id: str, purpose: str) -> PersonalData:
    """Decrypt a person's data. The read is audited (who, why) in the same transaction.

    Raises:
        InvalidArgumentError: no purpose given.
        NotFoundError: unknown person.
    """
    purpose = require_text(purpose, "purpose", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        person = get_person(session, person_id)
        require_scope(caller, person.organization_id)
        data = unseal(ctx, person)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="person.read_personal_data",
            object_type="person",
            object_id=person.id,
            details={"purpose": purpose},
        )
    return data


def set_affiliation(
    ctx: RegistryContext, caller: Caller, *, person_id: str, organization_id: str, reason: str
) -> tuple[PersonView, int]:
    """Move a person to another organization or end their affiliation.

    Ending or changing the affiliation suspends the person's valid credentials
    (their employer vouched for them; a new employer must ask anew).
    """
    reason = require_text(reason, "reason", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        person = get_person(session, person_id)
        require_scope(caller, person.organization_id)
        if organization_id:
            if caller.role is Role.SECURITY_OFFICER:
                raise InvalidArgumentError(
                    "organization_id",
                    "a security officer can only end an affiliation with their organization",
                )
            get_organization(session, organization_id)
        previous = person.organization_id
        person.organization_id = organization_id or None
        suspended = 0
        if previous != person.organization_id:
            suspended = lifecycle.suspend_for_person(
                ctx, session, person.id, cause="affiliation", reason=reason, now=now
            )
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="person.affiliation",
            object_type="person",
            object_id=person.id,
            details={
                "from": previous,
                "to": organization_id or None,
                "reason": reason,
                "suspended": suspended,
            },
        )
        return PersonView.of(person), suspended
