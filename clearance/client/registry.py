"""The typed registry client: one object, one attribute per service, domain objects in and out."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import grpc

from clearance.channel import open_channel
from clearance.client.assessments import Assessments
from clearance.client.audit import Audit
from clearance.client.credentials import Credentials
from clearance.client.enrollment import Enrollment
from clearance.client.federation import Federation
from clearance.client.interceptor import ErrorMapping
from clearance.client.organizations import Organizations
from clearance.client.personnel import Personnel
from clearance.client.publication import Publication
from clearance.client.staff import StaffAccounts
from clearance.v1 import registry_pb2_grpc as rpc

DEFAULT_TIMEOUT = 30.0
"""Seconds a call may take unless a method says otherwise."""


class RegistryClient:
    """A registry's v1 API over one channel.

    ::

        with RegistryClient.connect("registry.example:7443", ca_pem=ca, token=tokens) as registry:
            org = registry.organizations.create("Kaiyo Quantum KK", kind=OrganizationKind.COMPANY, country="JP")
            registry.credentials.revoke(credential_id, reason="left the programme")

    Every method raises a :class:`~clearance.errors.ClearanceError` when the
    call fails: the exact error the registry raised (rebuilt from its error
    details), or a :class:`~clearance.errors.TransportError` when the registry
    could not be reached.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        endpoint: str,
        timeout: float = DEFAULT_TIMEOUT,
        peer: str | None = None,
    ) -> None:
        """Use ``channel`` (it is closed with the client).

        Errors name the registry as ``peer`` (default ``registry ENDPOINT``;
        partner sync says ``partner JP``).
        """
        self.endpoint = endpoint
        self._raw = channel
        self.channel = grpc.intercept_channel(channel, ErrorMapping(peer or f"registry {endpoint}"))
        self.organizations = Organizations(rpc.OrganizationServiceStub(self.channel), timeout)
        self.staff = StaffAccounts(rpc.StaffServiceStub(self.channel), timeout)
        self.personnel = Personnel(rpc.PersonnelServiceStub(self.channel), timeout)
        self.assessments = Assessments(rpc.AssessmentServiceStub(self.channel), timeout)
        self.credentials = Credentials(rpc.CredentialServiceStub(self.channel), timeout)
        self.publication = Publication(rpc.PublicationServiceStub(self.channel), timeout)
        self.enrollment = Enrollment(rpc.EnrollmentServiceStub(self.channel), timeout)
        self.audit = Audit(rpc.AuditServiceStub(self.channel), timeout)
        self.federation = Federation(rpc.FederationServiceStub(self.channel), timeout)

    @classmethod
    def connect(
        cls,
        endpoint: str,
        *,
        ca_pem: bytes | None = None,
        insecure: bool = False,
        token: Callable[[], str] | None = None,
        server_name: str | None = None,
        own_connection: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        peer: str | None = None,
    ) -> RegistryClient:
        """A client of the registry at ``endpoint`` (see :func:`clearance.channel.open_channel`).

        ``token`` signs each call's bearer token (staff, node); without it only
        the public calls (publication, enrollment) are allowed.
        """
        channel = open_channel(
            endpoint,
            ca_pem=ca_pem,
            insecure=insecure,
            token=token,
            server_name=server_name,
            own_connection=own_connection,
        )
        return cls(channel, endpoint=endpoint, timeout=timeout, peer=peer)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
