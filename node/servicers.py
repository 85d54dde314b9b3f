"""The node's gRPC servicers: wire types in, domain calls, wire types out. Nothing else.

``NodeService`` (the local API) and ``PeerService`` (node to node). Each
method takes the whole request message and returns the response; it runs on
a worker thread only once :mod:`node.server` has admitted the call and
received its request. Domain errors propagate as
:class:`~clearance.errors.ClearanceError` and become status codes in
:mod:`node.server` (:func:`clearance.rpc.status_code`); a peer's facility
presentation that fails verification is an authentication failure
(UNAUTHENTICATED), not a bad argument. Authentication of local callers, rate
limits and admission sit in :mod:`node.server`, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from clearance.errors import AuthenticationError, InvalidArgumentError, VerificationError
from clearance.v1 import common_pb2 as common
from clearance.v1 import node_pb2 as pb
from clearance.verify import VerifiedPresentation
from node.decisions import Label
from node.gatekeeper import MAX_BATCH, Gatekeeper, LoggedDecision
from node.peers import PeerSessions
from node.status import NodeStatus, TrustedRegistry


def label_from(message: common.Label) -> Label:
    """Raises InvalidArgumentError for a missing or malformed label."""
    if not message.jurisdiction or not message.level or not message.category:
        raise InvalidArgumentError("label", "needs jurisdiction, level, category and releasable_to")
    return Label(message.jurisdiction, message.level, message.category, tuple(message.releasable_to))


def verification_pb(result: VerifiedPresentation | VerificationError) -> pb.Verification:
    message = pb.Verification()
    _set_verification(message, result)
    return message


def verify_response(results: Sequence[VerifiedPresentation | VerificationError]) -> pb.VerifyResponse:
    """One :func:`verification_pb` per result, in order, each built in place in the response."""
    response = pb.VerifyResponse()
    add = response.results.add
    for result in results:
        _set_verification(add(), result)
    return response


_disclosed_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
"""``json.dumps(claims, ensure_ascii=False, sort_keys=True)``, without a new encoder per call."""


def _set_verification(message: pb.Verification, result: VerifiedPresentation | VerificationError) -> None:
    if isinstance(result, VerificationError):
        message.valid = False
        message.reason = result.reason.value
        message.detail = result.detail
        return
    credential = result.credential
    clearance = credential.clearance
    message.valid = True
    message.clearance.jurisdiction = clearance.jurisdiction
    message.clearance.level = clearance.level
    message.clearance.categories.extend(clearance.categories)
    message.subject = credential.subject
    message.issuer = credential.issuer
    disclosed = credential.disclosed
    message.disclosed_json = _disclosed_json(disclosed) if disclosed else "{}"
    message.checks.extend(result.checks)


def decision_pb(logged: LoggedDecision) -> pb.AuthorizeResponse:
    decision = logged.decision
    return pb.AuthorizeResponse(
        allowed=decision.allowed,
        code=decision.code,
        reasons=decision.reasons,
        log_sequence=logged.sequence,
        presenter_jurisdiction=decision.presenter_jurisdiction,
        agreement_id=decision.agreement_id,
        mapped_level=decision.mapped_level,
    )


def _registry_pb(view: TrustedRegistry) -> pb.TrustedRegistry:
    return pb.TrustedRegistry(
        jurisdiction=view.jurisdiction,
        issuer=view.issuer,
        root_fingerprint=view.root_fingerprint,
        bundle_version=view.bundle_version,
        bundle_expires_at=Timestamp(seconds=view.bundle_expires_at),
        agreement_id=view.agreement_id,
    )


def status_pb(status: NodeStatus) -> pb.GetSyncStatusResponse:
    return pb.GetSyncStatusResponse(
        home=_registry_pb(status.home) if status.home else None,
        foreign=[_registry_pb(f) for f in status.foreign],
        status_lists=[
            pb.StatusListFreshness(
                uri=s.uri,
                issued_at=Timestamp(seconds=s.issued_at),
                age_seconds=s.age_seconds,
                sequence=s.sequence,
            )
            for s in status.status_lists
        ],
        last_sync=Timestamp(seconds=status.last_sync) if status.last_sync else None,
        connected=status.connected,
        problems=status.problems,
        staleness_policy=status.staleness_policy,
    )


class NodeServicer:
    """The local API for the organization's own systems."""

    def __init__(self, gatekeeper: Gatekeeper, status: Callable[[], NodeStatus]) -> None:
        self._gatekeeper = gatekeeper
        self._status = status

    def Challenge(self, request: pb.ChallengeRequest) -> pb.ChallengeResponse:
        challenge = self._gatekeeper.challenge()
        return pb.ChallengeResponse(
            nonce=challenge.nonce,
            audience=challenge.audience,
            expires_at=Timestamp(seconds=challenge.expires_at),
        )

    def Verify(self, request: pb.VerifyRequest) -> pb.VerifyResponse:
        if len(request.presentations) > MAX_BATCH:
            raise InvalidArgumentError("presentations", f"at most {MAX_BATCH} per call")
        return verify_response(self._gatekeeper.verify_many(request.presentations))

    def Authorize(self, request: pb.AuthorizeRequest) -> pb.AuthorizeResponse:
        if not request.presentation:
            raise InvalidArgumentError("presentation", "is required")
        label = label_from(request.label)
        return decision_pb(
            self._gatekeeper.authorize(label, request.presentation, request.facility_presentation)
        )

    def GetSyncStatus(self, request: pb.GetSyncStatusRequest) -> pb.GetSyncStatusResponse:
        return status_pb(self._status())

    def VerifyVisit(self, request: pb.VerifyVisitRequest) -> pb.VerifyVisitResponse:
        if not request.assurance:
            raise InvalidArgumentError("assurance", "is required")
        if not request.presentation:
            raise InvalidArgumentError("presentation", "is required")
        result = self._gatekeeper.verify_visit(request.assurance, request.presentation)
        response = pb.VerifyVisitResponse(
            allowed=result.allowed,
            code=result.code,
            reasons=result.reasons,
            log_sequence=result.sequence,
            visitor_jurisdiction=result.visitor_jurisdiction,
        )
        visit = result.assurance
        if visit is not None:
            response.programme = visit.programme
            response.visit_kind = visit.kind.value
            response.not_before.seconds = visit.not_before
            response.not_after.seconds = visit.expires_at
            response.clearance.CopyFrom(
                common.Clearance(
                    jurisdiction=visit.clearance.jurisdiction,
                    level=visit.clearance.level,
                    categories=visit.clearance.categories,
                )
            )
        return response


class PeerServicer:
    """Node to node: mutual authentication by facility credentials, then decisions."""

    def __init__(self, gatekeeper: Gatekeeper, sessions: PeerSessions) -> None:
        self._gatekeeper = gatekeeper
        self._sessions = sessions

    def PeerChallenge(self, request: pb.PeerChallengeRequest) -> pb.PeerChallengeResponse:
        challenge = self._gatekeeper.peer_challenge()
        return pb.PeerChallengeResponse(nonce=challenge.nonce, audience=challenge.audience)

    def OpenSession(self, request: pb.OpenSessionRequest) -> pb.OpenSessionResponse:
        try:
            session, answer = self._sessions.open(
                request.facility_presentation,
                caller_nonce=request.caller_nonce,
                caller_audience=request.caller_audience,
            )
        except VerificationError as exc:
            raise AuthenticationError(f"facility presentation refused: {exc}") from exc
        return pb.OpenSessionResponse(
            session_id=session.session_id,
            facility_presentation=answer,
            expires_at=Timestamp(seconds=session.expires_at),
        )

    def Present(self, request: pb.PresentRequest) -> pb.PresentResponse:
        if not request.presentation:
            raise InvalidArgumentError("presentation", "is required")
        label = label_from(request.label)
        return pb.PresentResponse(
            decision=decision_pb(self._sessions.present(request.session_id, label, request.presentation))
        )
