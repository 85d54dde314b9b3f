"""Node to node: two organizations' nodes authenticate each other, then exchange presentations.

The exchange, node A (the caller) and node B (the server)::

    A -> B  PeerChallenge                      B: nonce_B, audience_B
    A -> B  OpenSession(A's facility presentation bound to (audience_B, nonce_B),
                        nonce_A, audience_A)
            B verifies it like any facility presentation (issuer trusted, not
            revoked, fresh, key-bound to A's node key, nonce single-use)
    B -> A  session_id, B's facility presentation bound to (audience_A, nonce_A)
            A verifies it against its own trust store and nonce: mutual.
    A -> B  PeerChallenge                      a nonce for A's person
    A -> B  Present(session_id, label, person's presentation bound to (audience_B, nonce))
            B decides whether the labelled item may go to that person, with A's
            organization as the recipient (its facility credential re-checked
            now), logs the decision, and answers.

B's nonces come from its peer store (``Gatekeeper.peer_challenge``), never
from the store of its local API, so callers of the peer port cannot evict a
nonce B's own organization is waiting on; the calls are admitted and limited
per caller before anything is read (:mod:`node.server`, :mod:`node.ratelimit`).

The session id is a bearer secret for :data:`SESSION_TTL` seconds: serve the
peer API over TLS beyond loopback (``peer_listen`` with ``peer_insecure =
false``), as ``node init`` sets up.

:class:`PeerSessions` is B's side (domain only); :class:`PeerClient` is A's
side, a gRPC client.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

import grpc

from clearance.errors import AuthenticationError, InvalidArgumentError
from clearance.rpc import to_error
from clearance.v1 import node_pb2 as pb
from clearance.v1 import node_pb2_grpc as rpc
from clearance.verify import VerifiedPresentation
from node.client import label_pb
from node.decisions import Label
from node.facility import FacilityIdentity
from node.gatekeeper import Gatekeeper, LoggedDecision

SESSION_TTL = 600
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class PeerSession:
    session_id: str
    facility: VerifiedPresentation
    expires_at: int

    @property
    def organization(self) -> dict[str, Any]:
        return dict(self.facility.credential.organization or {})


class PeerSessions:
    """B's side: sessions opened by mutually authenticated peer nodes."""

    def __init__(self, gatekeeper: Gatekeeper, *, ttl: int = SESSION_TTL) -> None:
        self._gatekeeper = gatekeeper
        self._ttl = ttl
        self._sessions: dict[str, PeerSession] = {}
        self._lock = threading.Lock()

    def open(
        self, facility_presentation: str, *, caller_nonce: str, caller_audience: str
    ) -> tuple[PeerSession, str]:
        """Authenticate a calling node; return the session and our facility presentation for it.

        Raises:
            VerificationError: the caller's facility presentation failed a check.
            WorkflowError: this node holds no facility credential to answer with.
            InvalidArgumentError: no nonce or audience to bind our answer to.
        """
        if not caller_nonce or not caller_audience or len(caller_nonce) > 256 or len(caller_audience) > 256:
            raise InvalidArgumentError(
                "caller_nonce", "a nonce and audience of at most 256 characters are required"
            )
        facility = self._gatekeeper.facility.verify_peer(
            facility_presentation, nonces=self._gatekeeper.peer_nonces
        )
        answer = self._gatekeeper.facility.present(audience=caller_audience, nonce=caller_nonce)
        now = self._gatekeeper.clock()
        session = PeerSession(secrets.token_urlsafe(24), facility, now + self._ttl)
        with self._lock:
            self._prune(now)
            self._sessions[session.session_id] = session
        return session, answer

    def session(self, session_id: str) -> PeerSession:
        """The live session ``session_id``.

        Raises:
            AuthenticationError: unknown or expired.
        """
        now = self._gatekeeper.clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires_at <= now:
                self._sessions.pop(session_id, None)
                raise AuthenticationError("unknown or expired peer session; open a new one")
            return session

    def present(self, session_id: str, label: Label, presentation: str) -> LoggedDecision:
        """Decide on a person of the session's organization (logged).

        Raises:
            AuthenticationError: no such session.
            StorageError: the decision could not be logged.
        """
        session = self.session(session_id)
        return self._gatekeeper.authorize_for_peer(label, presentation, session.facility)

    def _prune(self, now: int) -> None:
        expired = [sid for sid, s in self._sessions.items() if s.expires_at <= now]
        for sid in expired:
            del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))


@dataclass(frozen=True)
class OpenedSession:
    session_id: str
    peer: VerifiedPresentation
    """The peer organization's facility presentation, verified by us."""
    expires_at: int

    @property
    def organization(self) -> dict[str, Any]:
        return dict(self.peer.credential.organization or {})


class PeerClient:
    """A's side: open a mutually authenticated session with a peer node and present to it."""

    def __init__(self, channel: grpc.Channel, identity: FacilityIdentity, *, endpoint: str = "peer") -> None:
        self._stub = rpc.PeerServiceStub(channel)
        self._identity = identity
        self._endpoint = endpoint

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=30)
        except grpc.RpcError as exc:
            raise to_error(exc, peer=f"peer node {self._endpoint}") from None

    def challenge(self) -> tuple[str, str]:
        """A nonce of the peer and its audience, for a person's presentation.

        Raises:
            TransportError: the peer is unreachable.
        """
        response = self._call(self._stub.PeerChallenge, pb.PeerChallengeRequest())
        return response.nonce, response.audience

    def open_session(self) -> OpenedSession:
        """Authenticate both ways with the organizations' facility credentials.

        Raises:
            VerificationError: the peer's facility presentation failed our checks.
            AuthorizationError, TransportError, WorkflowError: as the peer answered.
        """
        nonce, audience = self.challenge()
        ours = self._identity.present(audience=audience, nonce=nonce)
        my_nonce = self._identity.issue_nonce()  # the peer binds its answer to it
        response = self._call(
            self._stub.OpenSession,
            pb.OpenSessionRequest(
                facility_presentation=ours, caller_nonce=my_nonce, caller_audience=self._identity.audience
            ),
        )
        peer = self._identity.verify_peer(response.facility_presentation)
        return OpenedSession(response.session_id, peer, int(response.expires_at.seconds))

    def present(self, session_id: str, label: Label, presentation: str) -> pb.AuthorizeResponse:
        """Send a person's presentation (bound to a nonce from :meth:`challenge`) for a decision."""
        response = self._call(
            self._stub.Present,
            pb.PresentRequest(
                session_id=session_id,
                label=label_pb(label),
                presentation=presentation,
            ),
        )
        decision: pb.AuthorizeResponse = response.decision
        return decision
