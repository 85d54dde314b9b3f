"""``CredentialService``: issue personnel and facility credentials; suspend, reinstate, revoke."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearance.client.common import (
    Clearance,
    CredentialState,
    Page,
    from_wire,
    page_request,
    seconds_of,
)
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc

BULK_TIMEOUT = 300.0
"""Seconds a bulk issuance call may take (a batch of up to 10,000 is signed and stored)."""


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """The registry's record of a credential (never the credential's personal claims)."""

    id: str
    person_id: str
    organization_id: str
    kind: str
    state: CredentialState
    clearance: Clearance
    status_list_uri: str
    status_index: int
    issued_at: int | None
    expires_at: int | None
    state_reason: str
    holder_key_thumbprint: str

    @classmethod
    def from_pb(cls, m: pb.CredentialRecord) -> CredentialRecord:
        return cls(
            id=m.id,
            person_id=m.person_id,
            organization_id=m.organization_id,
            kind=m.kind,
            state=from_wire(CredentialState, m.state),
            clearance=Clearance.from_pb(m.clearance),
            status_list_uri=m.status_list_uri,
            status_index=m.status_index,
            issued_at=seconds_of(m.issued_at, m.HasField("issued_at")),
            expires_at=seconds_of(m.expires_at, m.HasField("expires_at")),
            state_reason=m.state_reason,
            holder_key_thumbprint=m.holder_key_thumbprint,
        )


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A new credential: the record, and the SD-JWT for the holder's wallet (shown once)."""

    record: CredentialRecord
    sd_jwt: str

    @classmethod
    def from_pb(cls, m: pb.IssueCredentialResponse | pb.IssueFacilityCredentialResponse) -> IssuedCredential:
        return cls(CredentialRecord.from_pb(m.credential), m.sd_jwt)


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """One personnel issuance: a favorable assessment and the holder's public JWK (as JSON)."""

    assessment_id: str
    holder_jwk: str
    idempotency_key: str = ""

    def to_pb(self) -> pb.IssueCredentialRequest:
        return pb.IssueCredentialRequest(
            assessment_id=self.assessment_id, holder_jwk=self.holder_jwk, idempotency_key=self.idempotency_key
        )


class Credentials:
    """Calls of ``CredentialService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.CredentialServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def issue(self, request: IssueRequest) -> IssuedCredential:
        """Issue a personnel credential for a favorable assessment, bound to the holder's key."""
        return IssuedCredential.from_pb(self._stub.IssueCredential(request.to_pb(), timeout=self._timeout))

    def bulk_issue(
        self, requests: Sequence[IssueRequest], *, timeout: float = BULK_TIMEOUT
    ) -> list[IssuedCredential]:
        """Issue a batch, all or nothing; results in the order of ``requests``."""
        response = self._stub.BulkIssueCredentials(
            pb.BulkIssueCredentialsRequest(requests=[r.to_pb() for r in requests]), timeout=timeout
        )
        return [IssuedCredential.from_pb(result) for result in response.results]

    def issue_facility(
        self, organization_id: str, *, node_id: str, idempotency_key: str = ""
    ) -> IssuedCredential:
        """Issue an organization's facility credential bound to its node's key."""
        request = pb.IssueFacilityCredentialRequest(
            organization_id=organization_id, node_id=node_id, idempotency_key=idempotency_key
        )
        return IssuedCredential.from_pb(self._stub.IssueFacilityCredential(request, timeout=self._timeout))

    def get(self, credential_id: str) -> CredentialRecord:
        response = self._stub.GetCredential(pb.GetCredentialRequest(id=credential_id), timeout=self._timeout)
        return CredentialRecord.from_pb(response.credential)

    def list(
        self,
        *,
        person_id: str = "",
        organization_id: str = "",
        state: CredentialState = CredentialState.UNSPECIFIED,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[CredentialRecord]:
        response = self._stub.ListCredentials(
            pb.ListCredentialsRequest(
                person_id=person_id,
                organization_id=organization_id,
                state=common.CredentialState.Value(state.wire_name()),
                page=page_request(page_size, page_token),
            ),
            timeout=self._timeout,
        )
        return Page(
            tuple(CredentialRecord.from_pb(c) for c in response.credentials), response.next_page_token
        )

    def suspend(self, credential_id: str, *, reason: str) -> CredentialRecord:
        """Suspend a credential (nodes deny it as soon as the update reaches them)."""
        request = pb.SuspendCredentialRequest(id=credential_id, reason=reason)
        return CredentialRecord.from_pb(
            self._stub.SuspendCredential(request, timeout=self._timeout).credential
        )

    def reinstate(self, credential_id: str, *, reason: str) -> CredentialRecord:
        """Reinstate a suspended credential (never a revoked one)."""
        request = pb.ReinstateCredentialRequest(id=credential_id, reason=reason)
        return CredentialRecord.from_pb(
            self._stub.ReinstateCredential(request, timeout=self._timeout).credential
        )

    def revoke(self, credential_id: str, *, reason: str) -> CredentialRecord:
        """Revoke a credential for good."""
        request = pb.RevokeCredentialRequest(id=credential_id, reason=reason)
        return CredentialRecord.from_pb(
            self._stub.RevokeCredential(request, timeout=self._timeout).credential
        )
