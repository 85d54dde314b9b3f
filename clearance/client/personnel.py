"""``PersonnelService``: people (pseudonymous records) and their sealed personal data."""

from __future__ import annotations

from dataclasses import dataclass

from clearance.client.common import Page, page_request, seconds_of
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class FamilyMember:
    relation: str
    name: str
    nationality: str
    cohabitant: bool = False


@dataclass(frozen=True, slots=True)
class PersonalData:
    """What the registry seals at rest; read back only with a stated purpose (audited)."""

    given_name: str
    family_name: str
    birthdate: str
    """YYYY-MM-DD."""
    nationality: str
    family: tuple[FamilyMember, ...] = ()

    def to_pb(self) -> pb.PersonalData:
        return pb.PersonalData(
            given_name=self.given_name,
            family_name=self.family_name,
            birthdate=self.birthdate,
            nationality=self.nationality,
            family=[
                pb.FamilyMember(
                    relation=m.relation, name=m.name, nationality=m.nationality, cohabitant=m.cohabitant
                )
                for m in self.family
            ],
        )

    @classmethod
    def from_pb(cls, message: pb.PersonalData) -> PersonalData:
        return cls(
            message.given_name,
            message.family_name,
            message.birthdate,
            message.nationality,
            tuple(FamilyMember(m.relation, m.name, m.nationality, m.cohabitant) for m in message.family),
        )


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    subject: str
    """The pairwise pseudonym credentials carry as ``sub``."""
    organization_id: str
    """Empty when the person has no affiliation."""
    enrolled_at: int | None

    @classmethod
    def from_pb(cls, message: pb.Person) -> Person:
        return cls(
            message.id,
            message.subject,
            message.organization_id,
            seconds_of(message.enrolled_at, message.HasField("enrolled_at")),
        )


@dataclass(frozen=True, slots=True)
class AffiliationChange:
    person: Person
    suspended_credentials: int


class Personnel:
    """Calls of ``PersonnelService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.PersonnelServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def enroll(
        self, organization_id: str, personal_data: PersonalData, *, idempotency_key: str = ""
    ) -> Person:
        request = pb.EnrollPersonRequest(
            organization_id=organization_id,
            personal_data=personal_data.to_pb(),
            idempotency_key=idempotency_key,
        )
        return Person.from_pb(self._stub.EnrollPerson(request, timeout=self._timeout).person)

    def get(self, person_id: str) -> Person:
        return Person.from_pb(
            self._stub.GetPerson(pb.GetPersonRequest(id=person_id), timeout=self._timeout).person
        )

    def list(self, organization_id: str = "", *, page_size: int = 0, page_token: str = "") -> Page[Person]:
        response = self._stub.ListPeople(
            pb.ListPeopleRequest(organization_id=organization_id, page=page_request(page_size, page_token)),
            timeout=self._timeout,
        )
        return Page(tuple(Person.from_pb(p) for p in response.people), response.next_page_token)

    def read_personal_data(self, person_id: str, *, purpose: str) -> PersonalData:
        """Decrypt a person's data (adjudicators only; audited with who and why)."""
        response = self._stub.ReadPersonalData(
            pb.ReadPersonalDataRequest(person_id=person_id, purpose=purpose), timeout=self._timeout
        )
        return PersonalData.from_pb(response.personal_data)

    def set_affiliation(self, person_id: str, *, organization_id: str, reason: str) -> AffiliationChange:
        """Move a person (``organization_id`` empty: end the affiliation); their credentials are suspended."""
        response = self._stub.SetAffiliation(
            pb.SetAffiliationRequest(person_id=person_id, organization_id=organization_id, reason=reason),
            timeout=self._timeout,
        )
        return AffiliationChange(Person.from_pb(response.person), response.suspended_credentials)
