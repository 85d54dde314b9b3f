"""Organizations and their facility clearances, staff accounts, and node enrollment with one-time tokens."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.keys import SigningKey
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import YEAR, Registry, fails_with, refused_naming

pytestmark = pytest.mark.database


# -- organizations and facility clearance ------------------------------------------


def test_an_organization_starts_without_a_facility_clearance(registry: Registry) -> None:
    org = registry.new_organization(name="Example KK", facility_level=None)

    read = registry.admin.organizations.GetOrganization(pb.GetOrganizationRequest(id=org.id)).organization

    assert (read.name, read.kind, read.country) == ("Example KK", common.ORGANIZATION_KIND_COMPANY, "JP")
    assert not read.HasField("facility_clearance")


def test_a_granted_facility_clearance_is_shown_with_its_level_categories_and_end(registry: Registry) -> None:
    org = registry.new_organization(facility_level=None)
    until = registry.clock() + 3 * YEAR

    granted = registry.admin.organizations.GrantFacilityClearance(
        pb.GrantFacilityClearanceRequest(
            organization_id=org.id,
            level="TOP_SECRET",
            categories=["supply-chain"],
            valid_until=Timestamp(seconds=until),
        )
    ).organization

    facility = granted.facility_clearance
    assert facility.active
    assert (facility.clearance.jurisdiction, facility.clearance.level) == ("JP", "TOP_SECRET")
    assert list(facility.clearance.categories) == ["supply-chain"]
    assert facility.valid_until.seconds == until


def test_withdrawing_a_facility_clearance_deactivates_it_once(registry: Registry) -> None:
    org = registry.new_organization()
    withdraw = pb.WithdrawFacilityClearanceRequest(organization_id=org.id, reason="failed inspection")

    withdrawn = registry.admin.organizations.WithdrawFacilityClearance(withdraw)

    assert not withdrawn.organization.facility_clearance.active
    assert withdrawn.suspended_credentials == 0
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.admin.organizations.WithdrawFacilityClearance(withdraw),
        mentioning="holds no facility clearance",
    )


def test_organization_names_are_unique(registry: Registry) -> None:
    registry.new_organization(name="Example KK", facility_level=None)

    fails_with(
        grpc.StatusCode.ALREADY_EXISTS,
        lambda: registry.new_organization(name="Example KK", facility_level=None),
        mentioning="Example KK",
    )


def test_creating_an_organization_twice_with_one_idempotency_key_creates_it_once(registry: Registry) -> None:
    request = pb.CreateOrganizationRequest(
        name="Example KK", kind=common.ORGANIZATION_KIND_LABORATORY, country="JP", idempotency_key="org-1"
    )

    first = registry.admin.organizations.CreateOrganization(request).organization
    again = registry.admin.organizations.CreateOrganization(request).organization

    assert again.id == first.id
    assert registry.count("organizations") == 1


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"name": "", "kind": common.ORGANIZATION_KIND_COMPANY, "country": "JP"}, "name"),
        ({"name": "X", "kind": common.ORGANIZATION_KIND_UNSPECIFIED, "country": "JP"}, "kind"),
        ({"name": "X", "kind": common.ORGANIZATION_KIND_COMPANY, "country": "Japan"}, "country"),
        ({"name": "X", "kind": common.ORGANIZATION_KIND_COMPANY, "country": "jp"}, "country"),
    ],
)
def test_a_bad_organization_is_refused_naming_the_field(
    registry: Registry, request_fields: dict[str, object], field: str
) -> None:
    refused_naming(
        field,
        lambda: registry.admin.organizations.CreateOrganization(
            pb.CreateOrganizationRequest(**request_fields)  # type: ignore[arg-type]  # hostile values
        ),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": "COSMIC"}, "level"),
        ({"categories": []}, "categories"),
        ({"categories": ["astrology"]}, "categories"),
        ({"categories": ["cyber-threat", "cyber-threat"]}, "categories"),
        ({"valid_until": None}, "valid_until"),
        ({"valid_until": -1}, "valid_until"),
        ({"valid_until": 11 * YEAR}, "valid_until"),
    ],
)
def test_a_bad_facility_clearance_is_refused_naming_the_field(
    registry: Registry, change: dict[str, object], field: str
) -> None:
    org = registry.new_organization(facility_level=None)
    values: dict[str, object] = {
        "level": "SECRET",
        "categories": ["cyber-threat"],
        "valid_until": YEAR,
        **change,
    }
    request = pb.GrantFacilityClearanceRequest(
        organization_id=org.id,
        level=values["level"],  # type: ignore[arg-type]  # hostile values on purpose
        categories=values["categories"],  # type: ignore[arg-type]
    )
    if values["valid_until"] is not None:
        request.valid_until.seconds = registry.clock() + int(values["valid_until"])  # type: ignore[call-overload]

    refused_naming(field, lambda: registry.admin.organizations.GrantFacilityClearance(request))


def test_organizations_are_listed_in_pages(registry: Registry) -> None:
    created = [registry.new_organization(facility_level=None).id for _ in range(3)]

    first = registry.admin.organizations.ListOrganizations(
        pb.ListOrganizationsRequest(page=common.PageRequest(page_size=2))
    )
    second = registry.admin.organizations.ListOrganizations(
        pb.ListOrganizationsRequest(page=common.PageRequest(page_size=2, page_token=first.next_page_token))
    )

    pages = [o.id for o in first.organizations] + [o.id for o in second.organizations]
    assert sorted(pages) == sorted(created), "every organization once, none twice"
    assert first.next_page_token
    assert not second.next_page_token
    refused_naming(
        "page.page_token",
        lambda: registry.admin.organizations.ListOrganizations(
            pb.ListOrganizationsRequest(page=common.PageRequest(page_token="not-ours"))
        ),
    )


# -- staff -------------------------------------------------------------------------


def test_a_staff_member_calls_with_their_own_key_and_role(registry: Registry) -> None:
    org = registry.new_organization()
    officer = registry.security_officer(org.id)

    me = officer.staff.WhoAmI(pb.WhoAmIRequest())

    assert (me.principal, me.role, me.organization_id, me.jurisdiction) == (
        officer.id,
        common.ROLE_SECURITY_OFFICER,
        org.id,
        "JP",
    )
    listed = {s.id: s for s in registry.admin.staff.ListStaff(pb.ListStaffRequest()).staff}
    assert listed[officer.id].key_thumbprint == officer.key.kid
    assert listed[officer.id].organization_id == org.id


@pytest.mark.parametrize(
    ("role", "organization", "key", "field"),
    [
        (common.ROLE_UNSPECIFIED, "", "fresh", "role"),
        (common.ROLE_NODE, "", "fresh", "role"),
        (common.ROLE_ADJUDICATOR, "the org", "fresh", "organization_id"),
        (common.ROLE_ADJUDICATOR, "", "not json", "public_jwk"),
        (common.ROLE_ADJUDICATOR, "", "private", "public_jwk"),
    ],
)
def test_a_bad_staff_account_is_refused_naming_the_field(
    registry: Registry, role: common.Role.ValueType, organization: str, key: str, field: str
) -> None:
    org = registry.new_organization()
    signing = SigningKey.generate()
    jwk = {
        "fresh": json.dumps(signing.public.jwk),
        "not json": "{",
        "private": json.dumps(signing.private_jwk()),
    }[key]

    refused_naming(
        field,
        lambda: registry.admin.staff.CreateStaff(
            pb.CreateStaffRequest(
                name="Someone", role=role, organization_id=org.id if organization else "", public_jwk=jwk
            )
        ),
    )


def test_a_security_officer_belongs_to_an_existing_organization(registry: Registry) -> None:
    fails_with(grpc.StatusCode.NOT_FOUND, lambda: registry.security_officer("org_unknown"))


def test_one_key_belongs_to_one_staff_member(registry: Registry) -> None:
    key = SigningKey.generate()
    request = pb.CreateStaffRequest(
        name="A", role=common.ROLE_ADJUDICATOR, public_jwk=json.dumps(key.public.jwk)
    )
    registry.admin.staff.CreateStaff(request)

    fails_with(grpc.StatusCode.ALREADY_EXISTS, lambda: registry.admin.staff.CreateStaff(request))


def test_a_disabled_staff_member_is_no_longer_let_in(registry: Registry) -> None:
    adjudicator = registry.new_staff("adjudicator")

    disabled = registry.admin.staff.DisableStaff(pb.DisableStaffRequest(id=adjudicator.id)).staff

    assert disabled.disabled
    fails_with(grpc.StatusCode.UNAUTHENTICATED, lambda: adjudicator.staff.WhoAmI(pb.WhoAmIRequest()))


def test_an_administrator_cannot_lock_themselves_out(registry: Registry) -> None:
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.admin.staff.DisableStaff(pb.DisableStaffRequest(id=registry.admin.id)),
        mentioning="your own account",
    )


# -- node enrollment -----------------------------------------------------------------


def enrollment_token(
    registry: Registry, organization_id: str, ttl: int = 0
) -> pb.CreateEnrollmentTokenResponse:
    return registry.admin.organizations.CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(organization_id=organization_id, ttl_seconds=ttl)
    )


def enroll(registry: Registry, token: str, key: SigningKey | None = None) -> pb.EnrollNodeResponse:
    key = key or SigningKey.generate()
    return registry.public.enrollment.EnrollNode(
        pb.EnrollNodeRequest(token=token, name="gateway", public_jwk=json.dumps(key.public.jwk))
    )


def test_a_node_enrolls_with_a_one_time_token_and_receives_its_trust_material(registry: Registry) -> None:
    org = registry.new_organization()
    issued = enrollment_token(registry, org.id)
    node_key = SigningKey.generate()

    enrolled = enroll(registry, issued.token, node_key)

    assert issued.expires_at.seconds == registry.clock() + 86_400
    assert registry.ctx.keys.root is not None
    assert issued.root_fingerprint == registry.ctx.keys.root.kid
    assert json.loads(enrolled.root_jwk)["x"] == registry.ctx.keys.root.public.jwk["x"]
    assert enrolled.trust_bundle
    assert enrolled.node.organization_id == org.id
    assert enrolled.node.key_thumbprint == node_key.kid
    assert enrolled.facility_credential, "a cleared organization's node gets its facility credential"
    node = registry.principal(node_key, id=enrolled.node.id, role="node")
    assert node.staff.WhoAmI(pb.WhoAmIRequest()).role == common.ROLE_NODE
    nodes = registry.admin.organizations.ListNodes(pb.ListNodesRequest(organization_id=org.id)).nodes
    assert [n.id for n in nodes] == [enrolled.node.id]


def test_a_node_of_an_uncleared_organization_enrolls_without_a_facility_credential(
    registry: Registry,
) -> None:
    org = registry.new_organization(facility_level=None)

    enrolled = enroll(registry, enrollment_token(registry, org.id).token)

    assert enrolled.node.id
    assert enrolled.facility_credential == ""


def test_an_enrollment_token_works_once(registry: Registry) -> None:
    token = enrollment_token(registry, registry.new_organization().id).token
    enroll(registry, token)

    fails_with(grpc.StatusCode.UNAUTHENTICATED, lambda: enroll(registry, token))


def test_an_enrollment_token_expires(registry: Registry) -> None:
    token = enrollment_token(registry, registry.new_organization().id, ttl=60).token
    registry.clock.advance(60)

    fails_with(grpc.StatusCode.UNAUTHENTICATED, lambda: enroll(registry, token))


def test_an_unknown_enrollment_token_is_refused(registry: Registry) -> None:
    fails_with(grpc.StatusCode.UNAUTHENTICATED, lambda: enroll(registry, "enr_made-up"))
    fails_with(grpc.StatusCode.UNAUTHENTICATED, lambda: enroll(registry, ""))


def test_a_node_key_enrolls_once(registry: Registry) -> None:
    org = registry.new_organization()
    key = SigningKey.generate()
    enroll(registry, enrollment_token(registry, org.id).token, key)
    second = enrollment_token(registry, org.id).token

    fails_with(grpc.StatusCode.ALREADY_EXISTS, lambda: enroll(registry, second, key))
    enroll(registry, second)  # the refusal did not use the token up


@pytest.mark.parametrize("ttl", [59, 7 * 86_400 + 1, -5])
def test_an_enrollment_token_lives_between_a_minute_and_a_week(registry: Registry, ttl: int) -> None:
    org = registry.new_organization()

    refused_naming("ttl_seconds", lambda: enrollment_token(registry, org.id, ttl=ttl))


def test_a_security_officer_issues_enrollment_tokens_for_their_organization(registry: Registry) -> None:
    org = registry.new_organization()
    officer = registry.security_officer(org.id)

    token = officer.organizations.CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(organization_id=org.id)
    ).token

    assert enroll(registry, token).node.organization_id == org.id
