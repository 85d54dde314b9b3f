"""The typed registry client against a real registry: domain objects in and out, our errors exactly."""

from __future__ import annotations

import json
import socket

import pytest

from clearance.access import TokenSource
from clearance.client import RegistryClient
from clearance.client.common import OrganizationKind, Role
from clearance.client.organizations import Organization
from clearance.client.publication import UpdateKind
from clearance.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransportError,
)
from clearance.keys import SigningKey
from tests.registry.conftest import Registry

pytestmark = pytest.mark.database


def administrator(registry: Registry) -> RegistryClient:
    first = registry.first_admin
    token = TokenSource(
        first.key, principal=first.principal, audience=registry.audience, clock=registry.clock
    )
    return RegistryClient.connect(registry.endpoint, insecure=True, token=token)


def test_calls_take_and_return_domain_objects(registry: Registry) -> None:
    with administrator(registry) as client:
        created = client.organizations.create("Kaiyo Quantum KK", kind=OrganizationKind.COMPANY, country="JP")
        granted = client.organizations.grant_facility(
            created.id, level="SECRET", categories=["cyber-threat"], valid_until=registry.clock() + 86_400
        )
        listed = client.organizations.list()

    assert isinstance(created, Organization)
    assert (created.name, created.kind, created.country, created.facility_clearance) == (
        "Kaiyo Quantum KK",
        OrganizationKind.COMPANY,
        "JP",
        None,
    )
    assert granted.facility_clearance is not None
    assert granted.facility_clearance.clearance.level == "SECRET"
    assert granted.facility_clearance.active
    assert [o.id for o in listed] == [created.id]


def test_a_refusal_comes_back_as_the_error_the_registry_raised(registry: Registry) -> None:
    with administrator(registry) as client:
        org = client.organizations.create("Lab", kind=OrganizationKind.LABORATORY, country="JP")
        with pytest.raises(NotFoundError):
            client.organizations.get("org_nonexistent")
        with pytest.raises(InvalidArgumentError) as bad_level:
            client.organizations.grant_facility(org.id, level="COSMIC", categories=["x"], valid_until=1)
        key = SigningKey.generate()
        oversight = client.staff.create(
            "Oversight", role=Role.OVERSIGHT, public_jwk=json.dumps(key.public.jwk)
        )

    assert bad_level.value.field == "level"
    token = TokenSource(key, principal=oversight.id, audience=registry.audience, clock=registry.clock)
    with (
        RegistryClient.connect(registry.endpoint, insecure=True, token=token) as overseer,
        pytest.raises(PermissionDeniedError),
    ):
        overseer.organizations.create("Nope", kind=OrganizationKind.COMPANY, country="JP")


def test_a_storage_failure_is_not_an_unreachable_registry(registry: Registry) -> None:
    with (
        administrator(registry) as client,
        registry.database_fails_at("INSERT INTO audit_events"),
        pytest.raises(StorageError) as failed,
    ):
        client.organizations.create("Kaiyo", kind=OrganizationKind.COMPANY, country="JP")

    assert "cannot reach" not in str(failed.value)


def test_an_unreachable_registry_is_a_transport_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{probe.getsockname()[1]}"

    with (
        RegistryClient.connect(endpoint, insecure=True, timeout=5) as client,
        pytest.raises(TransportError, match=f"cannot reach registry {endpoint}"),
    ):
        client.publication.trust_bundle()


def test_the_watch_stream_yields_updates_and_ends_with_our_error_when_cancelled(registry: Registry) -> None:
    with RegistryClient.connect(registry.endpoint, insecure=True) as public:
        stream = public.publication.watch()
        updates = iter(stream)
        first = next(updates)
        stream.cancel()
        with pytest.raises(TransportError, match="cancelled"):
            for _ in updates:
                pass

    assert first.kind is UpdateKind.TRUST_BUNDLE
    assert first.document == public_bundle(registry)


def public_bundle(registry: Registry) -> str:
    with RegistryClient.connect(registry.endpoint, insecure=True) as public:
        return public.publication.trust_bundle()
