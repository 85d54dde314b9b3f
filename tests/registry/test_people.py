"""People: known by a pseudonym, their personal data sealed at rest and read only for a stated purpose."""

from __future__ import annotations

import json

import grpc
import pytest
from sqlalchemy import select

from clearance.v1 import registry_pb2 as pb
from registry.store.models import Base
from tests.registry.conftest import Registry, fails_with, refused_naming

pytestmark = pytest.mark.database

PERSONAL = ("Hanako", "Yamada", "1988-04-01", "Taro Yamada")


def everything_stored(registry: Registry) -> str:
    """Every row of every table, as text: what someone who steals the database reads."""
    with registry.ctx.db.engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table))
        ]
    return "\n".join(rows)


def test_personal_data_is_stored_only_encrypted(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)

    [(ciphertext,)] = registry.sql("SELECT personal_data FROM people WHERE id = :id", id=person.id)

    for value in PERSONAL:
        assert value.encode() not in bytes(ciphertext)


def test_no_table_holds_a_name_even_after_a_credential_carrying_it_was_issued(registry: Registry) -> None:
    cleared = registry.cleared_person()
    registry.issue(cleared.assessment.id, idempotency_key="first")  # a sealed copy is kept for retries
    registry.adjudicator.people.ReadPersonalData(
        pb.ReadPersonalDataRequest(person_id=cleared.person.id, purpose="checking family records")
    )

    stored = everything_stored(registry)

    for value in PERSONAL:
        assert value not in stored


def test_a_person_is_known_by_a_pseudonym_that_reveals_nothing(registry: Registry) -> None:
    org = registry.new_organization()
    person = registry.enroll_person(org.id)

    read = registry.admin.people.GetPerson(pb.GetPersonRequest(id=person.id)).person

    assert read.subject.startswith("sub_")
    assert read.subject == person.subject
    assert read.organization_id == org.id
    assert "Hanako" not in str(read)
    other = registry.enroll_person(org.id)  # same name, same birth date: another person
    assert other.subject != person.subject


def test_reading_personal_data_needs_a_purpose(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)

    refused_naming(
        "purpose",
        lambda: registry.adjudicator.people.ReadPersonalData(pb.ReadPersonalDataRequest(person_id=person.id)),
    )
    assert not [e for e in registry.audit_events() if e.action == "person.read_personal_data"]


def test_every_read_of_personal_data_is_audited_with_who_and_why(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)
    adjudicator = registry.adjudicator

    data = adjudicator.people.ReadPersonalData(
        pb.ReadPersonalDataRequest(person_id=person.id, purpose="assessment of family ties")
    ).personal_data

    assert (data.given_name, data.family_name, data.birthdate, data.nationality) == (
        "Hanako",
        "Yamada",
        "1988-04-01",
        "JP",
    )
    assert [(m.relation, m.name) for m in data.family] == [("spouse", "Taro Yamada")]
    [read] = [e for e in registry.audit_events() if e.action == "person.read_personal_data"]
    assert read.actor == f"adjudicator:{adjudicator.id}"
    assert read.object_id == person.id
    assert json.loads(read.details_json) == {"purpose": "assessment of family ties"}


def test_ciphertext_moved_to_another_person_does_not_decrypt(registry: Registry) -> None:
    org = registry.new_organization()
    victim = registry.enroll_person(org.id, given_name="Hanako")
    accomplice = registry.enroll_person(org.id, given_name="Jiro")
    registry.sql(
        "UPDATE people SET personal_data = (SELECT personal_data FROM people WHERE id = :src), "
        "wrapped_key = (SELECT wrapped_key FROM people WHERE id = :src) WHERE id = :dst",
        src=victim.id,
        dst=accomplice.id,
    )

    fails_with(
        grpc.StatusCode.UNAVAILABLE,
        lambda: registry.adjudicator.people.ReadPersonalData(
            pb.ReadPersonalDataRequest(person_id=accomplice.id, purpose="review")
        ),
        mentioning="does not decrypt",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"given_name": ""}, "personal_data.given_name"),
        ({"family_name": "\x00"}, "personal_data.family_name"),
        ({"birthdate": "01/04/1988"}, "personal_data.birthdate"),
        ({"birthdate": "1850-01-01"}, "personal_data.birthdate"),
        ({"nationality": "Japan"}, "personal_data.nationality"),
        (
            {"family": [pb.FamilyMember(relation="parent", name="X", nationality="jpn")]},
            "personal_data.family[0].nationality",
        ),
    ],
)
def test_bad_personal_data_is_refused_naming_the_field(
    registry: Registry, change: dict[str, object], field: str
) -> None:
    org = registry.new_organization()
    data = {"given_name": "Hanako", "family_name": "Yamada", "birthdate": "1988-04-01", "nationality": "JP"}
    data.update(change)  # type: ignore[arg-type]

    refused_naming(
        field,
        lambda: registry.admin.people.EnrollPerson(
            pb.EnrollPersonRequest(
                organization_id=org.id,
                personal_data=pb.PersonalData(**data),  # type: ignore[arg-type]
            )
        ),
    )
    assert registry.count("people") == 0


def test_enrolling_twice_with_one_idempotency_key_enrolls_once(registry: Registry) -> None:
    org = registry.new_organization()

    first = registry.enroll_person(org.id, idempotency_key="hr-4711")
    again = registry.enroll_person(org.id, idempotency_key="hr-4711")

    assert again.id == first.id
    assert registry.count("people") == 1
    fails_with(
        grpc.StatusCode.ALREADY_EXISTS,
        lambda: registry.enroll_person(org.id, given_name="Jiro", idempotency_key="hr-4711"),
    )


def test_a_security_officer_enrolls_and_lists_only_their_own_people(registry: Registry) -> None:
    mine, theirs = registry.new_organization(), registry.new_organization()
    officer = registry.security_officer(mine.id)
    own = registry.enroll_person(mine.id, by=officer)
    registry.enroll_person(theirs.id)

    listed = officer.people.ListPeople(pb.ListPeopleRequest()).people

    assert [p.id for p in listed] == [own.id]
    everyone = registry.admin.people.ListPeople(pb.ListPeopleRequest()).people
    assert len(everyone) == 2
