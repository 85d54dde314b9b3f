"""Whether a credential may be issued from an assessment, read in one query for a whole batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from clearance.errors import NotFoundError, WorkflowError
from registry.config import RegistryConfig
from registry.store.columns import load_list
from registry.store.envelope import KeyEncryptionKeys, Sealed
from registry.store.models import Assessment, Organization, Person
from registry.workflows.people import PersonalData


@dataclass(frozen=True)
class IssuanceInputs:
    """What issuing from one assessment needs: the assessment, its person, their organization."""

    assessment_id: str
    state: str
    consent_at: int | None
    withdrawn_at: int | None
    valid_until: int | None
    level: str
    categories: str
    person_id: str
    subject: str
    organization_id: str | None
    personal_data: bytes
    wrapped_key: bytes
    kek_id: str
    org_name: str | None
    facility_active: bool | None
    facility_level: str | None
    facility_categories: str | None
    facility_valid_until: int | None


@dataclass(frozen=True)
class Eligible:
    """Inputs that passed :func:`check`: a favorable assessment of an affiliated person."""

    inputs: IssuanceInputs
    organization_id: str
    valid_until: int

    @property
    def person_id(self) -> str:
        return self.inputs.person_id


_COLUMNS = (
    select(
        Assessment.id,
        Assessment.state,
        Assessment.consent_at,
        Assessment.withdrawn_at,
        Assessment.valid_until,
        Assessment.level,
        Assessment.categories,
        Person.id,
        Person.subject,
        Person.organization_id,
        Person.personal_data,
        Person.wrapped_key,
        Person.kek_id,
        Organization.name,
        Organization.facility_active,
        Organization.facility_level,
        Organization.facility_categories,
        Organization.facility_valid_until,
    )
    .join(Person, Person.id == Assessment.person_id)
    .outerjoin(Organization, Organization.id == Person.organization_id)
)
_LOAD_MANY = _COLUMNS.where(Assessment.id.in_(bindparam("ids", expanding=True)))
_LOAD_ONE = _COLUMNS.where(Assessment.id == bindparam("id"))
"""Built once: issuance is the registry's hottest path."""


def load(session: Session | Connection, assessment_ids: set[str]) -> dict[str, IssuanceInputs]:
    """The inputs of each of ``assessment_ids`` that exists, by assessment id."""
    connection = session.connection() if isinstance(session, Session) else session
    if len(assessment_ids) == 1:
        (only,) = assessment_ids
        rows = connection.execute(_LOAD_ONE, {"id": only}).all()
    else:
        rows = connection.execute(_LOAD_MANY, {"ids": list(assessment_ids)}).all()
    return {row[0]: IssuanceInputs(*row) for row in rows}  # type: ignore[call-arg]


def check(config: RegistryConfig, inputs: IssuanceInputs | None, assessment_id: str, now: int) -> Eligible:
    """The inputs, if a credential may be issued from them now.

    Raises:
        NotFoundError: no such assessment.
        WorkflowError: no consent, not favorable, expired, not affiliated, or the
            organization's facility clearance is missing, lower or narrower.
    """
    if inputs is None:
        raise NotFoundError(f"assessment {assessment_id!r} not found")
    if inputs.consent_at is None or inputs.withdrawn_at is not None:
        raise WorkflowError("no credential without the person's consent")
    if inputs.state != "favorable" or inputs.valid_until is None:
        raise WorkflowError(f"assessment {inputs.assessment_id} is {inputs.state}, not favorable")
    if inputs.valid_until <= now:
        raise WorkflowError("the assessment has expired; a reassessment is needed")
    if inputs.organization_id is None or inputs.org_name is None:
        raise WorkflowError("the person is not affiliated with an organization")
    name = inputs.org_name
    if (
        not inputs.facility_active
        or (inputs.facility_valid_until or 0) <= now
        or inputs.facility_level is None
    ):
        raise WorkflowError(f"{name} holds no valid facility clearance")
    levels = config.levels
    if levels.index(inputs.level) > levels.index(inputs.facility_level):
        raise WorkflowError(f"{name}'s facility clearance ({inputs.facility_level}) is below {inputs.level}")
    missing = sorted(set(load_list(inputs.categories)) - set(load_list(inputs.facility_categories)))
    if missing:
        raise WorkflowError(f"{name}'s facility clearance does not cover {missing}")
    return Eligible(inputs, inputs.organization_id, inputs.valid_until)


def personal_claims(kek: KeyEncryptionKeys, eligible: Eligible) -> dict[str, Any]:
    """The selectively disclosable claims of the person's credential (their sealed data, opened)."""
    inputs = eligible.inputs
    data = PersonalData.from_bytes(
        kek.open(inputs.person_id, Sealed(inputs.personal_data, inputs.wrapped_key, inputs.kek_id))
    )
    return {
        "given_name": data.given_name,
        "family_name": data.family_name,
        "birthdate": data.birthdate,
        "nationalities": [data.nationality],
        "employer": inputs.org_name or "",
    }
