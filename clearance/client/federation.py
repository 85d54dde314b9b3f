"""``FederationService``: agreements with partner registries, and visit assurances."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from clearance.client.common import AgreementState, from_wire, seconds_of, timestamp
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


class VisitKind(enum.StrEnum):
    ONE_TIME = "one_time"
    RECURRING = "recurring"
    EMERGENCY = "emergency"

    def to_pb(self) -> pb.VisitKind.ValueType:
        return pb.VisitKind.Value(f"VISIT_KIND_{self.value.upper()}")


@dataclass(frozen=True, slots=True)
class AgreementRecord:
    """An agreement as this registry holds it, with how partner sync is going."""

    id: str
    partner_jurisdiction: str
    partner_endpoint: str
    state: AgreementState
    document: str
    """The agreement signed by both roots (JWS JSON)."""
    last_partner_sync: int | None
    partner_problem: str

    @classmethod
    def from_pb(cls, m: pb.AgreementRecord) -> AgreementRecord:
        return cls(
            id=m.id,
            partner_jurisdiction=m.partner_jurisdiction,
            partner_endpoint=m.partner_endpoint,
            state=from_wire(AgreementState, m.state),
            document=m.document,
            last_partner_sync=seconds_of(m.last_partner_sync, m.HasField("last_partner_sync")),
            partner_problem=m.partner_problem,
        )


class Federation:
    """Calls of ``FederationService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.FederationServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def import_agreement(
        self, document: str, *, partner_endpoint: str, partner_ca_pem: str = ""
    ) -> AgreementRecord:
        """Bring an agreement signed by both roots into force, saying where the partner publishes."""
        request = pb.ImportAgreementRequest(
            document=document, partner_endpoint=partner_endpoint, partner_ca_pem=partner_ca_pem
        )
        return AgreementRecord.from_pb(self._stub.ImportAgreement(request, timeout=self._timeout).agreement)

    def list_agreements(self) -> list[AgreementRecord]:
        response = self._stub.ListAgreements(pb.ListAgreementsRequest(), timeout=self._timeout)
        return [AgreementRecord.from_pb(a) for a in response.agreements]

    def terminate_agreement(self, agreement_id: str, *, reason: str) -> AgreementRecord:
        request = pb.TerminateAgreementRequest(id=agreement_id, reason=reason)
        return AgreementRecord.from_pb(
            self._stub.TerminateAgreement(request, timeout=self._timeout).agreement
        )

    def issue_visit_assurance(
        self,
        credential_id: str,
        *,
        host_jurisdiction: str,
        host_organization: str,
        programme: str,
        kind: VisitKind,
        not_before: int,
        not_after: int,
    ) -> str:
        """A signed visit assurance (compact JWS) for a cleared person's credential."""
        request = pb.IssueVisitAssuranceRequest(
            credential_id=credential_id,
            host_jurisdiction=host_jurisdiction,
            host_organization=host_organization,
            programme=programme,
            kind=kind.to_pb(),
            not_before=timestamp(not_before),
            not_after=timestamp(not_after),
        )
        return self._stub.IssueVisitAssurance(request, timeout=self._timeout).assurance
